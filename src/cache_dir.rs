//! The per-user cache directory leakview extracts its embedded files into:
//! `$XDG_CACHE_HOME/leakview/<name>`, else `~/.cache/leakview/<name>`, else
//! `/tmp/leakview-<uid>/<name>`. Each directory leakview creates is mode 0700; a directory that is
//! a symlink, belongs to another user or is open to others is never used.

use std::env;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Where the cache may live, best first.
pub fn candidate_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let absolute = |value: Option<std::ffi::OsString>| {
        value.map(PathBuf::from).filter(|p| p.is_absolute() && !p.as_os_str().is_empty())
    };
    if let Some(xdg) = absolute(env::var_os("XDG_CACHE_HOME")) {
        roots.push(xdg.join("leakview"));
    }
    if let Some(home) = absolute(env::var_os("HOME")) {
        roots.push(home.join(".cache").join("leakview"));
    }
    roots.push(env::temp_dir().join(format!("leakview-{}", current_uid())));
    roots.push(PathBuf::from(format!("/tmp/leakview-{}", current_uid())));
    roots.dedup();
    roots
}

/// Creates (or reuses) `<root>/<name>` in the first usable root and returns it.
/// `usable_path` rejects roots whose path cannot be used (e.g. LD_PRELOAD cannot hold spaces).
pub fn ensure(name: &str, usable_path: impl Fn(&Path) -> bool) -> anyhow::Result<PathBuf> {
    let mut failures = Vec::new();
    for root in candidate_roots() {
        let dir = root.join(name);
        if !usable_path(&dir) {
            failures.push(format!("{}: path not usable", dir.display()));
            continue;
        }
        match ensure_private_dir(&root).and_then(|()| ensure_private_dir(&dir)) {
            Ok(()) => return Ok(dir),
            Err(e) => failures.push(format!("{}: {e:#}", dir.display())),
        }
    }
    bail!("no usable cache directory ({})", failures.join("; "))
}

/// Makes `dir` exist as a private directory of the current user (creating parents as needed).
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let meta = fs::symlink_metadata(dir).with_context(|| format!("inspecting {}", dir.display()))?;
    if !meta.file_type().is_dir() {
        bail!("{} is not a directory (or is a symlink)", dir.display());
    }
    if meta.uid() != current_uid() {
        bail!("{} belongs to another user", dir.display());
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", dir.display()))?;
    }
    Ok(())
}

pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a").join("b");
        ensure_private_dir(&dir).expect("created");
        let mode = fs::metadata(&dir).expect("exists").mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn tightens_an_open_directory_of_ours() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("open");
        fs::create_dir(&dir).expect("mkdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        ensure_private_dir(&dir).expect("reused");
        assert_eq!(fs::metadata(&dir).expect("exists").mode() & 0o777, 0o700);
    }

    #[test]
    fn refuses_a_symlink() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let real = tmp.path().join("real");
        fs::create_dir(&real).expect("mkdir");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        assert!(ensure_private_dir(&link).is_err());
    }

    #[test]
    fn refuses_a_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("file");
        fs::write(&file, b"x").expect("write");
        assert!(ensure_private_dir(&file).is_err());
    }
}
