//! Finds the program `leakview record` is asked to run (the way a shell would, through `PATH`) and
//! checks up front that LD_PRELOAD can reach it: not statically linked, not setuid/setgid to
//! another user, built for this machine. Scripts are judged by their `#!` interpreter.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rustix::fs::Access;

use crate::elf;

/// How many `#!` interpreters deep the checks follow (the kernel allows 4).
const MAX_INTERPRETER_DEPTH: u32 = 4;

/// Resolves `name` like `execvp` does: a name with a slash is a path, otherwise the first executable
/// regular file of that name in `PATH`.
pub fn resolve(name: &OsStr) -> anyhow::Result<PathBuf> {
    let shown = Path::new(name).display();
    if name.is_empty() {
        bail!("the command is empty");
    }
    if name.as_bytes().contains(&b'/') {
        let path = PathBuf::from(name);
        let meta = fs::metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("{shown}: no such file"),
            _ => anyhow::anyhow!("{shown}: {e}"),
        })?;
        if meta.is_dir() {
            bail!("{shown} is a directory");
        }
        if rustix::fs::access(&path, Access::EXEC_OK).is_err() || !meta.is_file() {
            bail!("{shown} is not executable");
        }
        return Ok(path);
    }
    let search_path =
        std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let mut found_but_not_executable = None;
    for dir in std::env::split_paths(&search_path) {
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let candidate = dir.join(name);
        let Ok(meta) = fs::metadata(&candidate) else { continue };
        if !meta.is_file() {
            continue;
        }
        if rustix::fs::access(&candidate, Access::EXEC_OK).is_ok() {
            return Ok(candidate);
        }
        found_but_not_executable.get_or_insert(candidate);
    }
    match found_but_not_executable {
        Some(path) => bail!("{} is not executable", path.display()),
        None => bail!("command not found: {shown}"),
    }
}

/// Refuses, with a one-line reason, a program that LD_PRELOAD cannot record.
pub fn check_recordable(path: &Path) -> anyhow::Result<()> {
    check_at_depth(path, 0)
}

fn check_at_depth(path: &Path, depth: u32) -> anyhow::Result<()> {
    let shown = path.display();
    let meta = fs::metadata(path).with_context(|| format!("{shown}"))?;
    check_identity_change(path, &meta)?;
    match elf::inspect_file(path).with_context(|| format!("reading {shown}"))? {
        Some(info) => {
            if !info.has_interpreter {
                bail!(
                    "{shown} is statically linked: LD_PRELOAD cannot record it (link it dynamically, \
                     or record a Rust program with the leakview crate's global allocator)"
                );
            }
            let native_64 = cfg!(target_pointer_width = "64");
            let foreign_machine = elf::native_machine().is_some_and(|m| m != info.machine);
            if info.is_64_bit != native_64 || foreign_machine {
                bail!(
                    "{shown} is built for another architecture (ELF machine {}, {}-bit): this leakview \
                     records {} programs only",
                    info.machine,
                    if info.is_64_bit { 64 } else { 32 },
                    std::env::consts::ARCH
                );
            }
            Ok(())
        }
        None => match script_interpreter(path) {
            Some(interpreter) if depth < MAX_INTERPRETER_DEPTH && interpreter.is_absolute() => {
                check_at_depth(&interpreter, depth + 1)
            }
            // Anything else is left to exec, which reports what is wrong with it.
            _ => Ok(()),
        },
    }
}

/// The dynamic loader ignores LD_PRELOAD (secure-execution mode) when exec changes the user or
/// group id, which a setuid/setgid bit does unless the file already belongs to us.
fn check_identity_change(path: &Path, meta: &fs::Metadata) -> anyhow::Result<()> {
    let mode = meta.mode();
    let setuid = mode & 0o4000 != 0 && meta.uid() != rustix::process::geteuid().as_raw();
    let setgid = mode & 0o2000 != 0 && mode & 0o010 != 0 && meta.gid() != rustix::process::getegid().as_raw();
    if setuid || setgid {
        bail!(
            "{} is {}: the dynamic loader ignores LD_PRELOAD for it, so leakview cannot record it \
             (record a copy without that bit instead)",
            path.display(),
            if setuid { "setuid" } else { "setgid" }
        );
    }
    Ok(())
}

/// The interpreter path of a `#!` script, if `path` is one (the kernel reads at most 256 bytes).
fn script_interpreter(path: &Path) -> Option<PathBuf> {
    let mut line = Vec::new();
    BufReader::new(File::open(path).ok()?.take(256)).read_until(b'\n', &mut line).ok()?;
    let rest = line.strip_prefix(b"#!")?;
    let word = rest.split(|b| b.is_ascii_whitespace()).find(|w| !w.is_empty())?;
    Some(PathBuf::from(OsStr::from_bytes(word)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_sh_in_path() {
        let path = resolve(OsStr::new("sh")).expect("sh is in PATH");
        assert!(path.ends_with("sh"));
    }

    #[test]
    fn missing_commands_are_named() {
        let err = resolve(OsStr::new("leakview-no-such-command-xyz")).expect_err("missing");
        assert!(err.to_string().contains("command not found: leakview-no-such-command-xyz"));
        let err = resolve(OsStr::new("./leakview-no-such-file")).expect_err("missing");
        assert!(err.to_string().contains("no such file"));
    }

    #[test]
    fn non_executable_files_and_directories_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("data.txt");
        fs::write(&file, b"hello").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        // root may execute anything with an x bit, but this file has none.
        assert!(resolve(file.as_os_str()).is_err());
        assert!(resolve(dir.path().as_os_str()).expect_err("dir").to_string().contains("directory"));
    }

    #[test]
    fn scripts_are_judged_by_their_interpreter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("run.sh");
        fs::write(&script, b"#!/bin/sh -e\necho hi\n").expect("write");
        assert_eq!(script_interpreter(&script), Some(PathBuf::from("/bin/sh")));
        check_recordable(&script).expect("/bin/sh is dynamically linked");
    }

    #[test]
    fn dynamically_linked_programs_pass() {
        let sh = resolve(OsStr::new("sh")).expect("sh");
        check_recordable(&sh).expect("recordable");
    }
}
