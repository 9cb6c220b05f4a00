//! Fuzzes the trace reader: any bytes must give a typed error or events, never a panic or an
//! out-of-bounds read.
#![no_main]

use leakview_format::TraceReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = TraceReader::from_bytes(data.to_vec()) {
        let _ = reader.is_complete();
        let _ = reader.metadata().command_line();
        for chunk in reader.chunks() {
            for event in reader.events(chunk) {
                match event {
                    Ok(event) => {
                        let _ = event.to_owned_event();
                    }
                    Err(_) => break,
                }
            }
        }
    }
});
