//! Compiles the tiny C shim that gives the engine initial-exec TLS (see `csrc/tls.c`).

/// Must match `engine::thread::TLS_BLOCK_SIZE`.
const TLS_BLOCK_SIZE: usize = 4096;

fn main() {
    println!("cargo:rerun-if-changed=csrc/tls.c");
    println!("cargo:rerun-if-changed=build.rs");
    // Test-only switches of the in-process API (see `src/api/mod.rs`).
    println!("cargo::rustc-check-cfg=cfg(leakview_portable)");
    println!("cargo::rustc-check-cfg=cfg(leakview_backtrace_capture)");
    // The engine (and so its TLS shim) is Linux-only.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    cc::Build::new()
        .file("csrc/tls.c")
        .define("LEAKVIEW_TLS_BLOCK_SIZE", Some(TLS_BLOCK_SIZE.to_string().as_str()))
        .flag_if_supported("-ftls-model=initial-exec")
        .pic(true)
        .opt_level(2)
        .warnings(true)
        .compile("leakview_tls");
}
