//! Prints every event of a trace, one per line, chunk by chunk (a debugging aid for recorder
//! work): `cargo run -p leakview --example dump_trace -- TRACE`.

use std::path::PathBuf;
use std::process::ExitCode;

use leakview_format::TraceReader;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: dump_trace TRACE");
        return ExitCode::from(2);
    };
    let reader = match TraceReader::open(&path) {
        Ok(reader) => reader,
        Err(err) => {
            eprintln!("dump_trace: {err}");
            return ExitCode::from(2);
        }
    };
    println!("{:?}", reader.metadata());
    println!("{:?} complete={}", reader.header(), reader.is_complete());
    for chunk in reader.chunks() {
        println!(
            "-- chunk {} tid {} seq {} closed {}",
            chunk.index, chunk.tid, chunk.seq_in_thread, chunk.closed
        );
        for event in reader.events(chunk) {
            match event {
                Ok(event) => println!("{:?}", event.to_owned_event()),
                Err(err) => println!("decode error: {err}"),
            }
        }
    }
    ExitCode::SUCCESS
}
