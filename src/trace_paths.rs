//! Where traces go and how their paths are shown: the default name
//! `leakview-<program>-%p.bin`, the no-clobber rule for `-o` (only `--force` removes an existing
//! file, and a symlink is removed, never followed), the check that a trace can be created there
//! at all, and paths printed ready to paste into a shell.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The recorder replaces this with the pid of the recorded process.
pub const PID_PLACEHOLDER: &str = "%p";

/// `<dir>/leakview-<program>-%p.bin`, with the program's file name reduced to safe characters.
pub fn default_output(dir: &Path, program: &str) -> PathBuf {
    let base = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or(program);
    let mut safe: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    if safe.is_empty() || safe.chars().all(|c| c == '.') {
        safe = "program".into();
    }
    dir.join(format!("leakview-{safe}-{PID_PLACEHOLDER}.bin"))
}

/// Makes an explicit `-o` path absolute and ready to be created by the recorder: its directory
/// must exist and take new files ([`check_creatable`]); an existing file is an error unless
/// `force`, which removes it (a symlink itself is removed; what it points to is left alone). A
/// directory (an existing one, or any path ending in `/`) gets [`default_output`]'s name for
/// `program` inside it.
pub fn prepare_explicit_output(path: &Path, force: bool, program: &str) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    if path.as_os_str().is_empty() {
        bail!("{} is not a file name", path.display());
    }
    if path.as_os_str().as_encoded_bytes().ends_with(b"/") || absolute.is_dir() {
        if !absolute.is_dir() {
            bail!("cannot write into {}: the directory does not exist", path.display());
        }
        let output = default_output(&absolute, program);
        check_creatable(&output)?;
        return Ok(output);
    }
    if absolute.file_name().is_none() {
        bail!("{} is not a file name", path.display());
    }
    let parent = absolute.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        bail!("cannot write {}: directory {} does not exist", path.display(), parent.display());
    }
    check_creatable(&absolute)?;
    if absolute.to_string_lossy().contains(PID_PLACEHOLDER) {
        // Each process gets its own name; the recorder never clobbers one.
        return Ok(absolute);
    }
    match fs::symlink_metadata(&absolute) {
        Ok(meta) => {
            if !force {
                bail!("{} already exists (use --force to overwrite it)", path.display());
            }
            if meta.is_dir() {
                bail!("{} is a directory", path.display());
            }
            fs::remove_file(&absolute).with_context(|| format!("removing {}", path.display()))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    }
    Ok(absolute)
}

/// Fails unless a new file can be created in the directory `output` goes to: checked before the
/// program starts, so a read-only or special directory (`/proc`, a read-only mount, one the user
/// may not write) is a usage error rather than a run that records nothing. The check creates an
/// empty hidden file there and removes it.
pub fn check_creatable(output: &Path) -> anyhow::Result<()> {
    let dir = output.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".leakview-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("cannot create traces in {}: {}", dir.display(), io_reason(&e)))
}

/// An I/O error's reason alone: without the "(os error N)" std adds, nor what follows it (the
/// path of the probe file, which tempfile adds).
fn io_reason(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The first of `<dir>/<stem>.<ext>`, `<dir>/<stem>-2.<ext>`, ... that does not exist yet.
pub fn first_free(dir: &Path, stem: &str, ext: &str) -> Option<PathBuf> {
    (1..1000)
        .map(
            |n| {
                if n == 1 { dir.join(format!("{stem}.{ext}")) } else { dir.join(format!("{stem}-{n}.{ext}")) }
            },
        )
        .find(|p| fs::symlink_metadata(p).is_err())
}

/// `path` as the user would type it: relative to the current directory (`./x.bin`) when inside it,
/// quoted for a POSIX shell when it holds anything but plain characters.
pub fn for_shell(path: &Path) -> String {
    let shown =
        match std::env::current_dir().ok().and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        {
            Some(relative) if !relative.as_os_str().is_empty() => Path::new(".").join(relative),
            _ => path.to_path_buf(),
        };
    shell_quote(&shown.to_string_lossy())
}

fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ',' | ':' | '@' | '%')
        });
    if plain { text.to_string() } else { format!("'{}'", text.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_uses_the_program_file_name() {
        let dir = Path::new("/work");
        assert_eq!(
            default_output(dir, "./build/my server"),
            PathBuf::from("/work/leakview-my_server-%p.bin")
        );
        assert_eq!(default_output(dir, "sqlite3"), PathBuf::from("/work/leakview-sqlite3-%p.bin"));
        assert_eq!(default_output(dir, ".."), PathBuf::from("/work/leakview-program-%p.bin"));
    }

    #[test]
    fn existing_output_needs_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("trace.bin");
        fs::write(&out, b"old").expect("write");
        let err = prepare_explicit_output(&out, false, "prog").expect_err("refused");
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(fs::read(&out).expect("kept"), b"old");
        assert_eq!(prepare_explicit_output(&out, true, "prog").expect("forced"), out);
        assert!(!out.exists());
    }

    #[test]
    fn force_removes_a_symlink_not_its_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("precious");
        fs::write(&target, b"keep").expect("write");
        let link = dir.path().join("trace.bin");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(prepare_explicit_output(&link, false, "prog").is_err());
        prepare_explicit_output(&link, true, "prog").expect("forced");
        assert!(fs::symlink_metadata(&link).is_err());
        assert_eq!(fs::read(&target).expect("kept"), b"keep");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err =
            prepare_explicit_output(&dir.path().join("nope/trace.bin"), false, "prog").expect_err("refused");
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn a_directory_gets_the_default_name_inside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let expected = dir.path().join("leakview-my_tool-%p.bin");
        assert_eq!(prepare_explicit_output(dir.path(), false, "./my tool").expect("a directory"), expected);
        let mut slashed = dir.path().as_os_str().to_owned();
        slashed.push("/");
        assert_eq!(
            prepare_explicit_output(Path::new(&slashed), false, "./my tool").expect("slash"),
            expected
        );
        let err = prepare_explicit_output(&dir.path().join("new/"), false, "tool").expect_err("no such dir");
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn a_directory_that_takes_no_new_file_is_refused() {
        let err = check_creatable(Path::new("/proc/leakview-%p.bin")).expect_err("/proc takes no files");
        assert!(err.to_string().starts_with("cannot create traces in /proc: "), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        check_creatable(&dir.path().join("t.bin")).expect("a temp dir takes files");
        let left: Vec<_> = fs::read_dir(dir.path()).expect("list").collect();
        assert!(left.is_empty(), "the check leaves nothing behind: {left:?}");
    }

    #[test]
    fn first_free_skips_taken_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(first_free(dir.path(), "demo", "bin"), Some(dir.path().join("demo.bin")));
        fs::write(dir.path().join("demo.bin"), b"").expect("write");
        assert_eq!(first_free(dir.path(), "demo", "bin"), Some(dir.path().join("demo-2.bin")));
    }

    #[test]
    fn quoting_only_when_needed() {
        assert_eq!(shell_quote("/tmp/a.bin"), "/tmp/a.bin");
        assert_eq!(shell_quote("/tmp/my trace.bin"), "'/tmp/my trace.bin'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
