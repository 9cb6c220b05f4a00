//! Traces written by format 1 writers (kept in `tests/data`) still read in full: every event
//! decodes, with the sizes those writers stored (kind 1 allocs, before sizes moved into the tag).

use std::path::PathBuf;

use leakview_format::{Event, TraceReader};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// (allocs, frees, reallocs, bytes allocated: alloc sizes plus realloc sizes) of every event.
fn tally(reader: &TraceReader) -> (usize, usize, usize, u64) {
    let mut tally = (0, 0, 0, 0);
    for chunk in reader.chunks() {
        for event in reader.events(chunk) {
            match event.expect("every event of a format 1 trace decodes") {
                Event::Alloc { size, .. } => {
                    tally.0 += 1;
                    tally.3 += size;
                }
                Event::Free { .. } => tally.1 += 1,
                Event::Realloc { size, .. } => {
                    tally.2 += 1;
                    tally.3 += size;
                }
                _ => {}
            }
        }
    }
    tally
}

#[test]
fn format_1_0_and_1_1_traces_read_with_their_sizes() {
    // The figures are what the format 1 reader made of these files (`leakview stats` and
    // `leakview report` before format 2): 8 allocations (allocs and reallocs), 896 and 912 bytes.
    for (name, minor, expected) in
        [("format-1.0.trace", 0, (6, 2, 2, 896)), ("format-1.1.trace", 1, (8, 4, 2, 912))]
    {
        let reader = TraceReader::open(&data(name)).expect("opens");
        assert_eq!((reader.header().version_major, reader.header().version_minor), (1, minor), "{name}");
        assert!(reader.is_complete(), "{name}");
        assert_eq!(tally(&reader), expected, "{name}");
    }
}
