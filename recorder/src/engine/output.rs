//! Where a trace goes: expanding `%p`, never clobbering an existing file (`<stem>.<pid>.bin`,
//! then `<stem>.<pid>.<n>.bin` beside it), and announcing the trace in the manifest file.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use leakview_format::{TraceMetadata, TraceWriter, WriteError, WriterOptions};

/// Most numbered alternatives tried before giving up.
const MAX_ALTERNATIVES: u32 = 1000;

/// The first path to try: `LEAKVIEW_OUTPUT` with `%p` replaced by `pid`, or
/// `leakview-<program>-<pid>.bin`; where `LEAKVIEW_OUTPUT` names a directory (one that exists,
/// or any path ending in `/`), that name inside it.
pub fn primary_path(spec: Option<&[u8]>, program: &[u8], pid: u32) -> PathBuf {
    let Some(spec) = spec else { return default_file_name(program, pid) };
    let pid_text = pid.to_string();
    let mut bytes = Vec::with_capacity(spec.len() + 8);
    let mut i = 0;
    while i < spec.len() {
        if spec[i] == b'%' && spec.get(i + 1) == Some(&b'p') {
            bytes.extend_from_slice(pid_text.as_bytes());
            i += 2;
        } else {
            bytes.push(spec[i]);
            i += 1;
        }
    }
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes));
    if bytes.ends_with(b"/") || path.is_dir() { path.join(default_file_name(program, pid)) } else { path }
}

/// `leakview-<program>-<pid>.bin`, after the program's file name.
fn default_file_name(program: &[u8], pid: u32) -> PathBuf {
    let name = Path::new(std::ffi::OsStr::from_bytes(program))
        .file_name()
        .map(|n| n.as_bytes().to_vec())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| b"program".to_vec());
    let mut out = b"leakview-".to_vec();
    out.extend_from_slice(&name);
    out.extend_from_slice(format!("-{pid}.bin").as_bytes());
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// The `n`-th alternative to an existing `primary`: `<stem>.<pid>.bin` (n = 0), then
/// `<stem>.<pid>.<n>.bin`.
pub fn alternative_path(primary: &Path, pid: u32, n: u32) -> PathBuf {
    let stem = primary.file_stem().map(|s| s.as_bytes().to_vec()).unwrap_or_default();
    let mut name = stem;
    name.extend_from_slice(format!(".{pid}").as_bytes());
    if n > 0 {
        name.extend_from_slice(format!(".{n}").as_bytes());
    }
    name.extend_from_slice(b".bin");
    primary.with_file_name(std::ffi::OsStr::from_bytes(&name))
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir().map(|dir| dir.join(path)).unwrap_or_else(|_| path.to_path_buf())
}

/// Creates the trace, trying the primary path and then the alternatives. Returns the writer and
/// the absolute path, or a one-line reason.
pub fn create_trace(
    primary: &Path,
    pid: u32,
    metadata: &TraceMetadata,
    options: &WriterOptions,
) -> Result<(TraceWriter, PathBuf), String> {
    let candidates = std::iter::once(primary.to_path_buf())
        .chain((0..MAX_ALTERNATIVES).map(|n| alternative_path(primary, pid, n)));
    for path in candidates {
        let existed = std::fs::symlink_metadata(&path).is_ok();
        match TraceWriter::create(&path, metadata, options) {
            Ok(writer) => return Ok((writer, absolute(&path))),
            Err(WriteError::Create { error, .. }) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                continue;
            }
            Err(err) => {
                // Creation got as far as making the file (e.g. the disk is full): do not leave
                // an empty trace behind.
                if !existed && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                    let _ = std::fs::remove_file(&path);
                }
                return Err(err.to_string());
            }
        }
    }
    Err(format!("cannot create trace {}: too many files with that name", primary.display()))
}

/// Appends `<trace>\n` to the manifest with a single write(2).
pub fn announce(manifest: &[u8], trace: &Path) -> std::io::Result<()> {
    append_line(manifest, trace.as_os_str().as_bytes())
}

/// Appends `!<reason>\n` to the manifest: this process could not record (`leakview record`
/// says so once for all its processes, instead of each process on the program's stderr).
pub fn announce_failure(manifest: &[u8], reason: &str) -> std::io::Result<()> {
    let mut line = b"!".to_vec();
    line.extend(reason.bytes().filter(|&b| b != b'\n'));
    append_line(manifest, &line)
}

/// Appends `text` and a newline to the manifest with a single write(2).
fn append_line(manifest: &[u8], text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut line = text.to_vec();
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(std::ffi::OsStr::from_bytes(manifest))?;
    let written = file.write(&line)?;
    if written != line.len() {
        return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "short write to the manifest"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_p_becomes_the_pid() {
        assert_eq!(primary_path(Some(b"/tmp/t-%p.bin"), b"x", 42), PathBuf::from("/tmp/t-42.bin"));
        assert_eq!(primary_path(Some(b"a%%p%q"), b"x", 7), PathBuf::from("a%7%q"));
    }

    #[test]
    fn default_name_uses_the_program() {
        assert_eq!(primary_path(None, b"/usr/bin/sqlite3", 9), PathBuf::from("leakview-sqlite3-9.bin"));
    }

    #[test]
    fn a_directory_gets_the_default_name_inside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = dir.path().as_os_str().as_bytes();
        assert_eq!(primary_path(Some(spec), b"/usr/bin/jq", 5), dir.path().join("leakview-jq-5.bin"));
        // Not there yet, but a trailing slash says it is one (creating it then fails, reported).
        assert_eq!(
            primary_path(Some(b"/data/traces-%p/"), b"jq", 5),
            PathBuf::from("/data/traces-5/leakview-jq-5.bin")
        );
        // A file that exists is a file name, as before.
        let file = dir.path().join("t.bin");
        std::fs::write(&file, b"").expect("write");
        assert_eq!(primary_path(Some(file.as_os_str().as_bytes()), b"jq", 5), file);
    }

    #[test]
    fn alternatives_sit_beside_the_primary() {
        let primary = Path::new("/data/run.bin");
        assert_eq!(alternative_path(primary, 5, 0), PathBuf::from("/data/run.5.bin"));
        assert_eq!(alternative_path(primary, 5, 2), PathBuf::from("/data/run.5.2.bin"));
    }

    fn metadata() -> TraceMetadata {
        TraceMetadata { pid: 1, recorder: "test".into(), ..TraceMetadata::default() }
    }

    #[test]
    fn existing_files_are_never_clobbered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let primary = dir.path().join("t.bin");
        std::fs::write(&primary, b"keep").expect("write");
        std::fs::write(dir.path().join("t.77.bin"), b"keep too").expect("write");
        let options = WriterOptions::default();
        let (_writer, path) = create_trace(&primary, 77, &metadata(), &options).expect("created");
        assert_eq!(path, dir.path().join("t.77.1.bin"));
        assert_eq!(std::fs::read(&primary).expect("read"), b"keep");
        let manifest = dir.path().join("manifest");
        std::fs::write(&manifest, b"").expect("write");
        announce(manifest.as_os_str().as_bytes(), &path).expect("announce");
        announce(manifest.as_os_str().as_bytes(), &primary).expect("announce");
        let text = std::fs::read_to_string(&manifest).expect("read");
        assert_eq!(text, format!("{}\n{}\n", path.display(), primary.display()));
    }

    #[test]
    fn other_errors_are_reported() {
        let err =
            create_trace(Path::new("/nonexistent-dir/x.bin"), 1, &metadata(), &WriterOptions::default());
        assert!(err.is_err());
    }
}
