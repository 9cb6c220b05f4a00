//! `leakview report --format svg` on a real recording: the bundled demo program recorded by the
//! preload library, drawn as a flame graph whose frames carry the symbolized functions and the
//! exact bytes the demo leaks below them (fixtures/demo/leaky.c lists them).

mod common;

#[test]
fn the_demo_s_leaks_drawn_with_their_functions_and_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("cache tempdir");
    let demo =
        common::leakview_in(dir.path(), cache.path()).args(["demo", "--no-tui"]).output().expect("demo");
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let out = common::leakview_in(dir.path(), cache.path())
        .args(["report", "--format", "svg", "leakview-demo.bin"])
        .output()
        .expect("report");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = String::from_utf8_lossy(&out.stdout);
    assert!(svg.contains("Outstanding at end ("), "{svg}");
    let titles = common::frame_titles(&svg);
    let width_of = |function: &str| -> Vec<&str> {
        titles
            .iter()
            .filter_map(|t| t.strip_prefix(function)?.strip_prefix(" ("))
            .filter_map(|rest| rest.split_once(" bytes,").map(|(bytes, _)| bytes))
            .collect()
    };
    // The request buffers (20 × 1024 B) and, called from handle_request too, the cache (16
    // entries of 56 B and 16 values of 128 B); the reload's 6 keys (48 B).
    assert_eq!(width_of("handle_request"), ["23,424"], "{titles:#?}");
    assert_eq!(width_of("cache_put"), ["2,944"], "{titles:#?}");
    assert_eq!(width_of("reload_config"), ["48"], "{titles:#?}");
}
