/*
 * leakview.h — the C API of libleakview_preload.so.
 *
 * These functions exist only while a program runs under the leakview recorder
 * (`leakview record -- ./program`). To call them from a program that must also run without
 * leakview, declare them weak and check for NULL before calling:
 *
 *     #define LEAKVIEW_WEAK
 *     #include "leakview.h"
 *     ...
 *     if (leakview_mark) leakview_mark("after startup");
 *
 * With LEAKVIEW_WEAK defined before the include, every declaration below is weak; without it
 * they are ordinary declarations (link with -lleakview_preload, or use dlsym).
 */
#ifndef LEAKVIEW_H
#define LEAKVIEW_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef LEAKVIEW_WEAK
#define LEAKVIEW_DECL __attribute__((weak))
#else
#define LEAKVIEW_DECL
#endif

/* Places a labelled mark in the trace at this moment (labels longer than 1024 bytes are cut). */
LEAKVIEW_DECL void leakview_mark(const char *label);

/* Resumes recording allocations (recording is on by default). */
LEAKVIEW_DECL void leakview_enable(void);

/* Stops recording allocations until leakview_enable(). Frees are still recorded, so blocks
 * allocated while recording was on never look outstanding by mistake. Process-wide. */
LEAKVIEW_DECL void leakview_disable(void);

/* Reports a block handed out by the program's own allocator (a pool, an arena), like
 * valgrind's VALGRIND_MALLOCLIKE_BLOCK: it is recorded with the caller's stack. */
LEAKVIEW_DECL void leakview_alloc(void *ptr, size_t size);

/* Reports that a block reported with leakview_alloc() was released. */
LEAKVIEW_DECL void leakview_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* LEAKVIEW_H */
