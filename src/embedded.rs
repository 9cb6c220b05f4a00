//! The files this binary carries inside it (built by `build.rs`): the recorder library
//! `libleakview_preload.so` and the demo program. At run time they are extracted once into the
//! per-user cache directory `<version>-<content hash>/` (see `cache_dir`), written under a temporary
//! name and renamed into place with a modification time of their own ([`extraction_stamp`]), and
//! reused while their size, mode, owner and that time are unchanged (reading the whole file back
//! on every run cost a millisecond). At most once a day, directories of other builds that have not
//! been used for [`STALE_AFTER`] are removed.
//!
//! `LEAKVIEW_PRELOAD_PATH` overrides the library (development and tests).

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};

use crate::cache_dir;

/// The recorder library, as built by `cargo build --release -p leakview-preload`.
const PRELOAD_LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libleakview_preload.so"));
/// The demo program `fixtures/demo/*.c`, built at -O2 -g without frame pointers.
const DEMO_PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/leakview-demo"));
/// Hash of both, so two different builds of the same version never share a cache directory.
const CONTENT_HASH: &str = env!("LEAKVIEW_EMBED_HASH");

/// Environment variable naming a recorder library to use instead of the embedded one.
pub const PRELOAD_PATH_ENV: &str = "LEAKVIEW_PRELOAD_PATH";

const PRELOAD_FILE_NAME: &str = "libleakview_preload.so";
const DEMO_FILE_NAME: &str = "leakview-demo";
/// Cache directories of other leakview builds unused this long are removed.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Stale directories are looked for at most this often (the look costs a file status per build).
const TIDY_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// The file in the cache root whose modification time says when it was last tidied.
const TIDIED_MARKER: &str = ".tidied";

/// Path of the recorder library to preload: `LEAKVIEW_PRELOAD_PATH` or the extracted embedded copy.
pub fn preload_library() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(PRELOAD_PATH_ENV).filter(|p| !p.is_empty()) {
        return overridden_library(path);
    }
    let dir = build_cache_dir()?;
    extract_into(&dir, PRELOAD_FILE_NAME, PRELOAD_LIBRARY, 0o644, extraction_stamp())
        .with_context(|| format!("extracting the recorder library into {}", dir.display()))
}

/// Path of the extracted demo program (it carries its own debug info, so its stacks symbolize).
pub fn demo_program() -> anyhow::Result<PathBuf> {
    let dir = build_cache_dir()?;
    extract_into(&dir, DEMO_FILE_NAME, DEMO_PROGRAM, 0o755, extraction_stamp())
        .with_context(|| format!("extracting the demo program into {}", dir.display()))
}

fn cache_dir_name() -> String {
    format!("{}-{}", env!("CARGO_PKG_VERSION"), CONTENT_HASH)
}

/// The modification time this build gives the files it extracts: whole seconds from the content
/// hash, so a file written by anything else (an older leakview, an editor) almost surely differs.
fn extraction_stamp() -> SystemTime {
    let seconds = u64::from_str_radix(CONTENT_HASH.get(..7).unwrap_or("0"), 16).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

/// This build's cache directory, marked as used now; stale ones of other builds are removed
/// when the cache was last tidied more than [`TIDY_EVERY`] ago.
fn build_cache_dir() -> anyhow::Result<PathBuf> {
    let dir = cache_dir::ensure(&cache_dir_name(), usable_in_ld_preload)?;
    let now = SystemTime::now();
    if let Ok(handle) = fs::File::open(&dir) {
        let _ = handle.set_modified(now);
    }
    if let Some(root) = dir.parent()
        && tidy_due(root, now)
    {
        remove_stale_builds(&dir, now);
    }
    Ok(dir)
}

/// Whether `root` was last tidied more than [`TIDY_EVERY`] before `now` (or never); if so, its
/// marker says it is tidied now.
fn tidy_due(root: &Path, now: SystemTime) -> bool {
    let marker = root.join(TIDIED_MARKER);
    let tidied_at =
        fs::symlink_metadata(&marker).ok().filter(|m| m.is_file()).and_then(|m| m.modified().ok());
    if tidied_at.is_some_and(|at| now.duration_since(at).is_ok_and(|age| age < TIDY_EVERY)) {
        return false;
    }
    let created = OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .mode(0o600)
        .open(&marker);
    if let Ok(file) = created {
        let _ = file.set_modified(now);
    }
    true
}

/// Removes the siblings of `ours` named like a build's cache directory (`<version>-<16 hex>`) that
/// belong to us and were last used before `now - STALE_AFTER`. Failures are ignored: it is tidying.
pub fn remove_stale_builds(ours: &Path, now: SystemTime) {
    let (Some(root), Some(our_name)) = (ours.parent(), ours.file_name()) else { return };
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        if name == our_name || !looks_like_build_dir(&name.to_string_lossy()) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(entry.path()) else { continue };
        let unused_since = meta.modified().ok().and_then(|m| now.duration_since(m).ok());
        if meta.is_dir() && meta.uid() == cache_dir::current_uid() && unused_since > Some(STALE_AFTER) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn looks_like_build_dir(name: &str) -> bool {
    name.rsplit_once('-').is_some_and(|(version, hash)| {
        version.starts_with(|c: char| c.is_ascii_digit())
            && hash.len() == 16
            && hash.chars().all(|c| c.is_ascii_hexdigit())
    })
}

fn overridden_library(path: OsString) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(path);
    let path = if path.is_absolute() { path } else { std::env::current_dir()?.join(path) };
    if !path.is_file() {
        bail!("{PRELOAD_PATH_ENV}={} is not a file", path.display());
    }
    if !usable_in_ld_preload(&path) {
        bail!(
            "{PRELOAD_PATH_ENV}={} contains a space or colon, which LD_PRELOAD cannot hold",
            path.display()
        );
    }
    Ok(path)
}

/// LD_PRELOAD separates entries by spaces and colons, so a path holding either cannot be preloaded.
pub fn usable_in_ld_preload(path: &Path) -> bool {
    path.to_str().is_some_and(|s| !s.contains([':', ' ', '\t', '\n']))
}

/// Makes `dir/name` hold exactly `bytes` with `mode`, modified at `stamp`: reuses an existing
/// file that has their size, mode, owner and stamp, otherwise writes a temporary file beside it
/// and renames it into place (atomic for concurrent leakviews, and a program still running the
/// old file keeps its copy).
pub fn extract_into(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
    stamp: SystemTime,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if holds_extracted(&path, bytes.len() as u64, mode, stamp) {
        return Ok(path);
    }
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let temp =
        dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let written = write_new_file(&temp, bytes, mode, stamp).and_then(|()| fs::rename(&temp, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(path)
}

fn write_new_file(path: &Path, bytes: &[u8], mode: u32, stamp: SystemTime) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.write_all(bytes)?;
    file.set_modified(stamp)?;
    file.sync_all()
}

/// True if `path` is a regular file (not a symlink) of ours with this length, mode and
/// modification time (to the second: some filesystems keep no finer times).
fn holds_extracted(path: &Path, len: u64, mode: u32, stamp: SystemTime) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else { return false };
    let whole_seconds = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_secs());
    meta.file_type().is_file()
        && meta.len() == len
        && meta.mode() & 0o7777 == mode
        && meta.uid() == cache_dir::current_uid()
        && meta.modified().ok().and_then(whole_seconds) == whole_seconds(stamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stamp that no file written by a test has of itself.
    fn stamp() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_007)
    }

    #[test]
    fn embedded_files_are_not_empty() {
        // An ELF file starts with its magic number: the build really embedded something.
        assert_eq!(PRELOAD_LIBRARY.get(..4), Some(&b"\x7fELF"[..]));
        assert_eq!(DEMO_PROGRAM.get(..4), Some(&b"\x7fELF"[..]));
    }

    #[test]
    fn the_embedded_library_has_its_symbols_but_no_debug_info() {
        use object::{Object, ObjectSection, ObjectSymbol};
        let library = object::File::parse(PRELOAD_LIBRARY).expect("an ELF file");
        // Every `leakview record` reads the extracted copy whole to check it: no debug sections
        // (they were nine tenths of it), while the symbol table stays for profilers.
        assert!(library.sections().all(|s| !s.name().is_ok_and(|n| n.starts_with(".debug"))));
        let named = |name: &str| library.symbols().any(|s| s.name().is_ok_and(|n| n.contains(name)));
        assert!(named("CaptureState"), "the recorder's own functions keep their names");
        assert!(PRELOAD_LIBRARY.len() < 4 << 20, "{} bytes", PRELOAD_LIBRARY.len());
    }

    #[test]
    fn extracts_with_mode_and_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = extract_into(dir.path(), "lib.so", b"library bytes", 0o644, stamp()).expect("extracted");
        assert_eq!(fs::read(&path).expect("read"), b"library bytes");
        assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o644);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn reuses_a_correct_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = extract_into(dir.path(), "demo", b"program", 0o755, stamp()).expect("extracted");
        let inode = fs::metadata(&first).expect("meta").ino();
        let second = extract_into(dir.path(), "demo", b"program", 0o755, stamp()).expect("reused");
        assert_eq!(fs::metadata(&second).expect("meta").ino(), inode);
    }

    #[test]
    fn extracted_files_carry_the_stamp_and_are_rewritten_without_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = extract_into(dir.path(), "lib.so", b"library bytes", 0o644, stamp()).expect("extracted");
        assert_eq!(fs::metadata(&path).expect("meta").modified().expect("mtime"), stamp());
        // Same length and mode, but touched since: written again.
        fs::write(&path, b"library bytez").expect("write");
        let inode = fs::metadata(&path).expect("meta").ino();
        extract_into(dir.path(), "lib.so", b"library bytes", 0o644, stamp()).expect("extracted");
        assert_eq!(fs::read(&path).expect("read"), b"library bytes");
        assert_ne!(fs::metadata(&path).expect("meta").ino(), inode);
    }

    #[test]
    fn stale_builds_are_looked_for_at_most_daily() {
        let root = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::now();
        assert!(tidy_due(root.path(), now), "never tidied");
        assert!(!tidy_due(root.path(), now + Duration::from_secs(3600)), "tidied an hour ago");
        assert!(tidy_due(root.path(), now + TIDY_EVERY + Duration::from_secs(1)), "a day has passed");
    }

    #[test]
    fn replaces_a_damaged_or_wrong_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lib.so");
        fs::write(&path, b"library bytez").expect("write");
        extract_into(dir.path(), "lib.so", b"library bytes", 0o644, stamp()).expect("extracted");
        assert_eq!(fs::read(&path).expect("read"), b"library bytes");
    }

    #[test]
    fn replaces_a_symlink_without_following_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep me").expect("write");
        let path = dir.path().join("lib.so");
        std::os::unix::fs::symlink(&victim, &path).expect("symlink");
        extract_into(dir.path(), "lib.so", b"library bytes", 0o644, stamp()).expect("extracted");
        assert_eq!(fs::read(&victim).expect("read"), b"keep me");
        assert!(fs::symlink_metadata(&path).expect("meta").file_type().is_file());
    }

    #[test]
    fn concurrent_extractions_agree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = vec![7u8; 1 << 20];
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| extract_into(dir.path(), "big", &bytes, 0o644, stamp()).expect("extracted"));
            }
        });
        assert_eq!(fs::read(dir.path().join("big")).expect("read"), bytes);
    }

    #[test]
    fn stale_build_directories_are_removed() {
        let root = tempfile::tempdir().expect("tempdir");
        let make = |name: &str, age_days: u64| {
            let dir = root.path().join(name);
            fs::create_dir(&dir).expect("mkdir");
            let when = SystemTime::now() - Duration::from_secs(age_days * 24 * 3600);
            fs::File::open(&dir).expect("open").set_modified(when).expect("set mtime");
            dir
        };
        let ours = make("0.2.0-00112233445566ff", 90);
        let stale = make("0.1.0-8d98eed1d510b6f7", 31);
        let recent = make("0.1.0-d77825a593c9850e", 2);
        let unrelated = make("demo-traces", 400);
        remove_stale_builds(&ours, SystemTime::now());
        assert!(ours.exists() && recent.exists() && unrelated.exists());
        assert!(!stale.exists());
    }

    #[test]
    fn ld_preload_paths_cannot_hold_separators() {
        assert!(usable_in_ld_preload(Path::new("/home/a/.cache/leakview/x.so")));
        assert!(!usable_in_ld_preload(Path::new("/home/a b/x.so")));
        assert!(!usable_in_ld_preload(Path::new("/home/a:b/x.so")));
    }
}
