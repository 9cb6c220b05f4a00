//! End-to-end: the resident set size as `leakview record` samples it, in `stats` and `report`
//! (text and JSON), on a fixture whose resident memory is known (fixtures/resident.c: 48 MiB
//! written, then freed back to the kernel).

mod common;

use std::path::Path;
use std::process::Output;

use common::{compile_fixture, leakview_in};
use serde_json::Value;

const BIG: u64 = 48 << 20;

fn run(dir: &Path, args: &[&str]) -> Output {
    let out = leakview_in(dir, &dir.join("cache")).args(args).output().expect("leakview runs");
    assert!(out.status.success(), "leakview {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rss_json(dir: &Path, trace: &str, at: &str) -> Value {
    let out = run(dir, &["report", "--at", at, "--format", "json", trace]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    doc["rss"].clone()
}

#[test]
fn resident_memory_shows_in_stats_and_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let exe = compile_fixture(dir, "resident.c", "resident", &[]);
    let exe = exe.to_str().expect("utf-8 path");
    run(dir, &["record", "--rss-interval", "5", "-o", "r.bin", "--", exe]);

    let peak_heap = rss_json(dir, "r.bin", "peak");
    let at_end = rss_json(dir, "r.bin", "end");
    let peak = peak_heap["peak_bytes"].as_u64().expect("peak_bytes");
    assert!(peak >= BIG, "{peak_heap}");
    assert!(peak_heap["samples"].as_u64().is_some_and(|n| n >= 5), "{peak_heap}");
    // At the heap's peak the big block is live and written: so was it at the sample before.
    assert!(peak_heap["at_bytes"].as_u64().is_some_and(|b| b >= BIG), "{peak_heap}");
    let sampled_before_peak =
        peak_heap["at_sample_ns"].as_u64().zip(peak_heap_moment(dir, "r.bin")).is_some_and(|(s, p)| s <= p);
    assert!(sampled_before_peak, "{peak_heap}");
    // At the end it is back with the kernel.
    assert!(at_end["at_bytes"].as_u64().is_some_and(|b| b + (40 << 20) <= peak), "{at_end}");
    assert_eq!(at_end["peak_bytes"], peak_heap["peak_bytes"]);

    let stats = stdout(&run(dir, &["stats", "r.bin"]));
    let line = stats.lines().find(|l| l.starts_with("RSS ")).expect("an RSS line");
    assert!(line.starts_with("RSS          peak ") && line.ends_with(" samples)"), "{line}");
    let report = stdout(&run(dir, &["report", "--at", "peak", "r.bin"]));
    let line = report.lines().find(|l| l.starts_with("rss ")).expect("an rss line");
    assert!(line.contains("(the last sample by then); peak "), "{line}");

    run(dir, &["record", "--rss-interval", "0", "-o", "none.bin", "--", exe]);
    assert_eq!(rss_json(dir, "none.bin", "end"), Value::Null);
    let stats = stdout(&run(dir, &["stats", "none.bin"]));
    assert!(stats.lines().any(|l| l == "RSS          not sampled"), "{stats}");
    assert!(stats.lines().any(|l| l.split_whitespace().eq(["rss-sample", "0"])), "{stats}");
    let report = stdout(&run(dir, &["report", "none.bin"]));
    assert!(!report.lines().any(|l| l.starts_with("rss ")), "{report}");
}

fn peak_heap_moment(dir: &Path, trace: &str) -> Option<u64> {
    let out = run(dir, &["report", "--at", "peak", "--format", "json", trace]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    doc["at_ns"].as_u64()
}
