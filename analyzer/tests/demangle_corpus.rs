//! Demangling against a corpus of real names (tests/data/demangle/README.md says where they come
//! from): C++ names must read exactly as GNU c++filt prints them, Rust names as rustc-demangle's
//! alternate form. Names listed in `cpp_known_differences.tsv` still differ, each for a reason
//! class:
//! - `pack-expansion-qualifier`: `Args&&...` over several arguments prints the reference on the
//!   last one only (`int, long&&` for `int&&, long&&`);
//! - `qualifier-on-substituted-prefix`: a reference or const on a type whose prefix is a back
//!   reference lands inside the name (`A&::B` for `A::B&`);
//! - `expression`, `local-name-in-template-argument`, `local-name-return-type`,
//!   `function-type-in-special-name`, `other`: printing of decltype expressions, of local
//!   entities inside template arguments, of a local name's enclosing template function (a return
//!   type c++filt leaves out), of function types in typeinfo names, and of a conversion to a
//!   member function pointer.

use std::collections::HashMap;
use std::path::Path;

use leakview_analyzer::symbolize::demangle;

fn read_pairs(file: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/demangle").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let (left, right) = line.split_once('\t').unwrap_or_else(|| panic!("{file}: no tab in {line:?}"));
            (left.to_owned(), right.to_owned())
        })
        .collect()
}

#[test]
fn cpp_names_read_as_cxxfilt_prints_them() {
    let corpus = read_pairs("cpp_cxxfilt.tsv");
    let known: HashMap<String, String> = read_pairs("cpp_known_differences.tsv").into_iter().collect();
    assert!(corpus.len() > 10_000, "corpus too small: {}", corpus.len());

    let mut wrong = Vec::new();
    let mut now_right = Vec::new();
    let mut demangled = 0;
    for (mangled, expected) in &corpus {
        let ours = demangle(mangled);
        if ours != mangled.as_str() {
            demangled += 1;
        }
        match (ours == expected.as_str(), known.get(mangled)) {
            (false, None) => wrong.push(format!("{mangled}\n  c++filt:  {expected}\n  leakview: {ours}")),
            (true, Some(class)) => now_right.push(format!("{mangled} ({class})")),
            _ => {}
        }
    }
    assert!(demangled > corpus.len() / 2, "only {demangled} of {} names demangled", corpus.len());
    assert!(
        wrong.is_empty(),
        "{} names differ from c++filt; first ones:\n{}",
        wrong.len(),
        wrong.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        now_right.is_empty(),
        "now read as c++filt prints them, remove from cpp_known_differences.tsv:\n{}",
        now_right.join("\n")
    );
    assert!(
        known.keys().all(|name| corpus.iter().any(|(m, _)| m == name)),
        "a known difference is not in the corpus"
    );
}

#[test]
fn rust_names_read_as_rustfilt_prints_them() {
    let corpus = read_pairs("rust_rustc_demangle.tsv");
    assert!(corpus.len() > 1_000, "corpus too small: {}", corpus.len());
    assert!(
        corpus.iter().any(|(m, _)| m.starts_with("_ZN")) && corpus.iter().any(|(m, _)| m.starts_with("_R"))
    );
    let wrong: Vec<String> = corpus
        .iter()
        .filter(|(mangled, expected)| demangle(mangled) != expected.as_str())
        .map(|(mangled, expected)| {
            format!("{mangled}\n  expected: {expected}\n  leakview: {}", demangle(mangled))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} Rust names differ:\n{}",
        wrong.len(),
        wrong.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    for (_, readable) in &corpus {
        let last = readable.rsplit("::").next().unwrap_or_default();
        let is_hash =
            last.len() == 17 && last.starts_with('h') && last[1..].bytes().all(|b| b.is_ascii_hexdigit());
        assert!(!is_hash, "hash left in {readable}");
    }
}
