//! Finds separate debug files the way gdb and elfutils do: by GNU build-id under
//! `<debug_dir>/.build-id/`, by `.gnu_debuglink` next to the module, in its `.debug/` folder or
//! under `<debug_dir>/<module's dir>/`, and the dwz supplementary file named by
//! `.gnu_debugaltlink`. Every candidate is verified (build-id, or CRC32 for debuglinks) before
//! it is used, so a stale file never produces wrong names.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use super::elf_file::{self, AltLink, DebugLink, ElfInfo};
use super::warnings::{SymbolizeWarning, hex};

/// A verified separate debug file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DebugFile {
    pub path: PathBuf,
    pub info: ElfInfo,
}

/// `<debug_dir>/.build-id/xx/yyyy.debug` for each debug dir, if it exists and has that build-id.
pub(crate) fn find_by_build_id(build_id: &[u8], debug_dirs: &[PathBuf]) -> Option<DebugFile> {
    let relative = build_id_path(build_id)?;
    debug_dirs.iter().find_map(|dir| {
        let path = dir.join(&relative);
        let info = elf_file::read_info(&path).ok()?;
        (info.build_id.as_deref() == Some(build_id)).then_some(DebugFile { path, info })
    })
}

/// `.build-id/xx/yyyy.debug` for a build-id (at least two bytes long).
pub(crate) fn build_id_path(build_id: &[u8]) -> Option<PathBuf> {
    let (first, rest) = build_id.split_first()?;
    if rest.is_empty() {
        return None;
    }
    Some(PathBuf::from(".build-id").join(hex(&[*first])).join(format!("{}.debug", hex(rest))))
}

/// Follows `module`'s `.gnu_debuglink`. A candidate matches when both files have build-ids and
/// they are equal, or else when its CRC32 equals the link's. Candidates that exist but do not
/// match are reported in `warnings`.
pub(crate) fn find_by_debuglink(
    module: &Path,
    link: &DebugLink,
    module_build_id: Option<&[u8]>,
    debug_dirs: &[PathBuf],
    warnings: &mut Vec<SymbolizeWarning>,
) -> Option<DebugFile> {
    let file_name = plain_file_name(&link.file_name)?;
    let module_dir = module.parent().unwrap_or_else(|| Path::new(""));
    let mut candidates = vec![module_dir.join(file_name), module_dir.join(".debug").join(file_name)];
    candidates.extend(debug_dirs.iter().map(|d| d.join(relative(module_dir)).join(file_name)));
    let module_canonical = module.canonicalize().ok();

    for path in candidates {
        if !path.is_file() {
            continue;
        }
        if module_canonical.is_some() && path.canonicalize().ok() == module_canonical {
            continue;
        }
        let Ok(info) = elf_file::read_info(&path) else { continue };
        let matches = match (module_build_id, info.build_id.as_deref()) {
            (Some(expected), Some(found)) => expected == found,
            _ => crc32_of_file(&path).is_ok_and(|crc| crc == link.crc),
        };
        if matches {
            return Some(DebugFile { path, info });
        }
        warnings.push(SymbolizeWarning::DebugFileMismatch { path: module.to_path_buf(), debug_file: path });
    }
    None
}

/// Finds the supplementary file named by `link`, found in `debug_file`: the path as written
/// (relative paths are relative to `debug_file`'s folder), else by its build-id under the
/// debug dirs. It must carry the build-id the link names.
pub(crate) fn find_altlink(debug_file: &Path, link: &AltLink, debug_dirs: &[PathBuf]) -> Option<PathBuf> {
    let matches = |path: &Path| {
        elf_file::read_info(path).is_ok_and(|info| {
            link.build_id.is_empty() || info.build_id.as_deref() == Some(&link.build_id[..])
        })
    };
    let written = match debug_file.parent() {
        Some(dir) if link.path.is_relative() => dir.join(&link.path),
        _ => link.path.clone(),
    };
    if matches(&written) {
        return Some(written);
    }
    let relative = build_id_path(&link.build_id)?;
    debug_dirs.iter().map(|dir| dir.join(&relative)).find(|path| matches(path))
}

/// The CRC32 (the zlib/IEEE polynomial used by `.gnu_debuglink`) of a whole file.
pub(crate) fn crc32_of_file(path: &Path) -> io::Result<u32> {
    let mut file = File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buffer[..read]);
    }
}

/// The last component of a debuglink name, refusing names that would leave the folder.
fn plain_file_name(name: &Path) -> Option<&Path> {
    match name.components().next_back()? {
        Component::Normal(last) => Some(Path::new(last)),
        _ => None,
    }
}

/// `dir` without its root, so it can be appended under a debug dir.
fn relative(dir: &Path) -> PathBuf {
    dir.components().filter(|c| matches!(c, Component::Normal(_))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_paths_split_the_first_byte() {
        assert_eq!(build_id_path(&[0xab, 0xcd, 0x01]), Some(PathBuf::from(".build-id/ab/cd01.debug")));
        assert_eq!(build_id_path(&[0xab]), None);
        assert_eq!(build_id_path(&[]), None);
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("check");
        std::fs::write(&path, b"123456789").expect("write");
        assert_eq!(crc32_of_file(&path).expect("crc"), 0xcbf4_3926);
    }

    #[test]
    fn debuglink_names_cannot_escape() {
        assert_eq!(plain_file_name(Path::new("x.debug")), Some(Path::new("x.debug")));
        assert_eq!(plain_file_name(Path::new("a/b/x.debug")), Some(Path::new("x.debug")));
        assert_eq!(plain_file_name(Path::new("..")), None);
        assert_eq!(plain_file_name(Path::new("/")), None);
        assert_eq!(relative(Path::new("/usr/lib")), PathBuf::from("usr/lib"));
    }

    #[test]
    fn missing_candidates_are_not_found_and_not_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let module = dir.path().join("prog");
        let link = DebugLink { file_name: PathBuf::from("prog.debug"), crc: 1 };
        let mut warnings = Vec::new();
        let found = find_by_debuglink(&module, &link, None, &[dir.path().into()], &mut warnings);
        assert_eq!(found, None);
        assert!(warnings.is_empty());
        assert_eq!(find_by_build_id(&[1, 2, 3], &[dir.path().into()]), None);
    }

    #[test]
    fn a_candidate_with_the_wrong_crc_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let module = dir.path().join("prog");
        let exe = std::env::current_exe().expect("current exe");
        std::fs::copy(&exe, dir.path().join("prog.debug")).expect("copy");
        let link = DebugLink { file_name: PathBuf::from("prog.debug"), crc: 0 };
        let mut warnings = Vec::new();
        let found = find_by_debuglink(&module, &link, None, &[], &mut warnings);
        assert_eq!(found, None);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
}
