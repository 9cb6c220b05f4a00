//! Fuzzes the analyzer's load (decoding, replay with its reordering, index) and the queries on
//! what it loaded: any bytes must give an error or an analysis, never a panic.
#![no_main]

use leakview_analyzer::{Analysis, GroupBy, LoadOptions, NoProgress, SymbolizeOptions};
use leakview_format::TraceReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = TraceReader::from_bytes(data.to_vec()) else { return };
    // Suspects symbolize every outstanding stack: reading the module files an input names (real
    // libraries, in inputs grown from recorded seeds) would parse their debug info every run.
    let options = LoadOptions {
        symbolize: SymbolizeOptions { read_module_files: false, ..SymbolizeOptions::default() },
    };
    let Ok(analysis) = Analysis::from_reader(&reader, &options, &NoProgress) else { return };
    let end = analysis.duration_ns();
    for t in [0, end / 2, end] {
        let snapshot = analysis.outstanding_at(t);
        let _ = analysis.live_at(t);
        for by in [GroupBy::Stack, GroupBy::Size, GroupBy::SizeClass, GroupBy::Thread] {
            let grouping = analysis.group(&snapshot, by);
            let _ = grouping.top(3);
        }
        for suspect in analysis.suspects(t).iter().take(3) {
            let _ = leakview_analyzer::suspects::evidence(suspect, t);
        }
    }
});
