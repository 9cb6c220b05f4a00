//! Leak kinds end to end: fixtures/leak_kinds.c recorded with `record --leak-kinds` by the real
//! preload library, its blocks sorted into memcheck's kinds exactly as the fixture documents
//! them, per allocating function; and a recording without the scan has no kinds.

mod common;

use std::path::Path;
use std::process::Output;

use common::{compile_fixture, leakview_in};
use serde_json::Value;

fn run(dir: &Path, args: &[&str]) -> Output {
    let out = leakview_in(dir, &dir.join("cache")).args(args).output().expect("run leakview");
    assert!(out.status.success(), "leakview {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_slice(&run(dir, args).stdout).expect("JSON")
}

/// (blocks, bytes) of one kind in a report's `leak_kinds`.
fn kind(doc: &Value, key: &str) -> (u64, u64) {
    let k = &doc["leak_kinds"][key];
    (k["blocks"].as_u64().expect("blocks"), k["bytes"].as_u64().expect("bytes"))
}

/// Bytes and blocks by function of a `--group-by function` JSON report.
fn by_function(doc: &Value, function: &str) -> Option<(u64, u64)> {
    doc["groups"]
        .as_array()?
        .iter()
        .find(|g| g["function"] == function)
        .map(|g| (g["blocks"].as_u64().expect("blocks"), g["bytes"].as_u64().expect("bytes")))
}

#[test]
fn a_recorded_program_has_each_block_of_its_leak_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let exe = compile_fixture(dir, "leak_kinds.c", "leak_kinds", &["-pthread"]);
    let exe = exe.to_str().expect("utf-8 path");
    run(dir, &["record", "--leak-kinds", "-o", "k.bin", "--", exe]);

    let doc = json(dir, &["report", "--format", "json", "k.bin"]);
    assert_eq!(kind(&doc, "definitely_lost"), (7, 32 + 77 + 24 + 50 + 51 + 52 + 53), "{}", doc["leak_kinds"]);
    assert_eq!(kind(&doc, "indirectly_lost"), (2, 48 + 24), "{}", doc["leak_kinds"]);
    assert_eq!(kind(&doc, "still_reachable"), (6, 100 + 40 + 4 * 200), "{}", doc["leak_kinds"]);
    assert_eq!(kind(&doc, "not_scanned"), (0, 0));
    // Possibly lost: the fixture's 64 B, and each worker's DTV (glibc's size for it varies).
    let (blocks, bytes) = kind(&doc, "possibly_lost");
    assert_eq!(blocks, 1 + 4, "{}", doc["leak_kinds"]);
    assert!(bytes > 64 && (bytes - 64) % 4 == 0, "{}", doc["leak_kinds"]);

    // Which function allocated what, kind by kind.
    let lost = json(
        dir,
        &["report", "--leak-kind", "definite", "--group-by", "function", "--format", "json", "k.bin"],
    );
    assert_eq!(by_function(&lost, "worker"), Some((4, 50 + 51 + 52 + 53)), "{lost}");
    assert_eq!(by_function(&lost, "lose_outright"), Some((1, 77)), "{lost}");
    assert_eq!(by_function(&lost, "make_reachable"), None, "{lost}");
    let reachable = json(
        dir,
        &["report", "--leak-kind", "reachable", "--group-by", "function", "--format", "json", "k.bin"],
    );
    assert_eq!(by_function(&reachable, "make_reachable"), Some((2, 140)), "{reachable}");
    assert_eq!(by_function(&reachable, "worker"), Some((4, 800)), "{reachable}");
    let possible = json(
        dir,
        &["report", "--leak-kind", "possible", "--group-by", "function", "--format", "json", "k.bin"],
    );
    assert_eq!(by_function(&possible, "keep_an_interior_pointer"), Some((1, 64)), "{possible}");

    // `check --leak-kind lost` fails on the lost blocks only; reachable ones pass.
    let check = |kinds: &str| {
        leakview_in(dir, &dir.join("cache"))
            .args(["check", "--leak-kind", kinds, "k.bin"])
            .output()
            .expect("check")
    };
    assert_eq!(check("lost").status.code(), Some(1));
    assert_eq!(check("reachable").status.code(), Some(1));

    // Recorded without the scan: no kinds, and asking for them is a usage error.
    run(dir, &["record", "-o", "plain.bin", "--", exe]);
    assert_eq!(json(dir, &["report", "--format", "json", "plain.bin"])["leak_kinds"], Value::Null);
    let stats = String::from_utf8_lossy(&run(dir, &["stats", "plain.bin"]).stdout).into_owned();
    assert!(stats.contains("not recorded (record with --leak-kinds)"), "{stats}");
    let asked = leakview_in(dir, &dir.join("cache"))
        .args(["report", "--leak-kind", "lost", "plain.bin"])
        .output()
        .expect("report");
    assert_eq!(asked.status.code(), Some(2));
}
