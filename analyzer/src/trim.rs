//! Which frames belong to the allocator or to leakview itself, so they can be trimmed from the
//! top of a stack: the user wants to see who called `malloc`, not `malloc`. Further out, only
//! leakview's own frames go (the preload library's wrapper around the program's signal
//! handlers sits between a handler and the frame it interrupted).

use leakview_format::allocator_names::{is_allocator_function, is_allocator_source};

use crate::symbolize::Frame;

/// File name of the preload recorder.
const PRELOAD_MODULE: &str = "libleakview_preload.so";

fn is_leakview_module(module: &str) -> bool {
    let file = module.rsplit('/').next().unwrap_or(module);
    file == PRELOAD_MODULE || file.starts_with("libleakview_preload.so.")
}

/// Whether `frame` belongs to the allocator or to leakview: by name, by module (the preload
/// library), or by source file (the Rust global allocator's inlined entry points, which
/// line-tables-only builds name without their module).
pub fn is_trimmed_frame(frame: &Frame) -> bool {
    frame.function.as_deref().is_some_and(is_allocator_function)
        || frame.module.as_deref().is_some_and(is_leakview_module)
        || frame.file.as_deref().is_some_and(is_allocator_source)
}

/// Whether `frame` is leakview's own (the preload library): dropped wherever it is on a stack.
pub(crate) fn is_leakview_frame(frame: &Frame) -> bool {
    frame.module.as_deref().is_some_and(is_leakview_module)
}

/// The number of leading (innermost) frames to drop.
pub fn trimmed_prefix_len(frames: &[Frame]) -> usize {
    frames.iter().take_while(|f| is_trimmed_frame(f)).count()
}

/// `frames` as shown: without the trimmed prefix, nor leakview's own frames further out.
pub fn trimmed(frames: &[Frame]) -> Vec<Frame> {
    frames[trimmed_prefix_len(frames)..].iter().filter(|f| !is_leakview_frame(f)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: Option<&str>, module: Option<&str>) -> Frame {
        Frame {
            function: function.map(str::to_string),
            file: None,
            line: None,
            module: module.map(str::to_string),
            address: 1,
            module_offset: None,
            inlined: false,
        }
    }

    #[test]
    fn only_the_top_is_trimmed() {
        let frames = vec![
            frame(None, Some("/usr/lib/libleakview_preload.so")),
            frame(Some("malloc"), Some("/lib/libc.so.6")),
            frame(Some("make_leak"), Some("/bin/app")),
            frame(Some("free"), Some("/bin/app")),
            frame(Some("main"), Some("/bin/app")),
        ];
        assert_eq!(trimmed_prefix_len(&frames), 2);
        assert!(is_trimmed_frame(&frames[3]));
        assert!(!is_trimmed_frame(&frames[2]));
        assert_eq!(trimmed(&frames), frames[2..].to_vec());
    }

    #[test]
    fn the_signal_handler_wrapper_is_dropped_wherever_it_is() {
        let frames = vec![
            frame(Some("malloc"), Some("/usr/lib/libleakview_preload.so")),
            frame(Some("on_signal"), Some("/bin/app")),
            frame(Some("leakview_preload::signals::wrapper"), Some("/tmp/x/libleakview_preload.so")),
            frame(None, Some("/lib/libc.so.6")),
            frame(Some("main"), Some("/bin/app")),
        ];
        let names: Vec<_> = trimmed(&frames).iter().map(|f| f.function.clone()).collect();
        assert_eq!(names, vec![Some("on_signal".to_string()), None, Some("main".to_string())]);
    }

    #[test]
    fn the_rust_allocators_inlined_entry_is_trimmed_by_its_file() {
        let file =
            |f: &str, path: &str| Frame { file: Some(path.to_string()), ..frame(Some(f), Some("/bin/app")) };
        let frames = vec![
            file("alloc", "/rustc/0123/library/alloc/src/alloc.rs"),
            file("alloc_impl", "/rustc/0123/library/alloc/src/alloc.rs"),
            file("with_capacity_in<u8>", "/rustc/0123/library/alloc/src/raw_vec/mod.rs"),
            file("app::load", "/home/me/src/load.rs"),
        ];
        assert_eq!(trimmed_prefix_len(&frames), 2);
    }
}
