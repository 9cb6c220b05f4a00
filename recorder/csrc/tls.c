/*
 * Per-thread recorder state in the initial-exec TLS model.
 *
 * A malloc replacement must not use global-dynamic TLS: after a dlopen, __tls_get_addr may call
 * malloc to grow the thread's DTV, which would re-enter the hook. Rust's thread_local! in a shared
 * object goes through __tls_get_addr, so the engine keeps its per-thread state in this block
 * instead. Every access is an %fs-relative address computation (inline on x86_64, a call to
 * leakview_engine_tls_block elsewhere); nothing allocates.
 *
 * The block is zero-initialised for every new thread; the engine treats all-zero as "fresh".
 */
#include <stddef.h>

#ifndef LEAKVIEW_TLS_BLOCK_SIZE
#error "build.rs defines LEAKVIEW_TLS_BLOCK_SIZE"
#endif

/* Not static: on x86_64 the engine reaches it inline (its GOT slot, plus %fs), without a call. */
__attribute__((visibility("hidden"))) __thread unsigned char
    leakview_engine_tls_storage[LEAKVIEW_TLS_BLOCK_SIZE]
    __attribute__((tls_model("initial-exec"), aligned(64)));

__attribute__((visibility("hidden"))) void *leakview_engine_tls_block(void) {
    return leakview_engine_tls_storage;
}

__attribute__((visibility("hidden"))) size_t leakview_engine_tls_block_size(void) {
    return sizeof(leakview_engine_tls_storage);
}
