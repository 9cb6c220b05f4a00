/*
 * coroutine_workload.c — N malloc/free pairs made two calls deep, either on a coroutine stack
 * the program made itself (swapcontext onto a static 256 KiB array: the recorder does not
 * know its bounds and walks a copy of it) or, with a second argument, on the thread's own
 * stack. Used by bench/coroutines.sh.
 *
 * usage: coroutine_workload N [thread]
 */
#include <stdlib.h>
#include <ucontext.h>

void *volatile sink;
static ucontext_t main_context, coroutine_context;
static long pairs;

__attribute__((noinline)) void leaf(void) {
    sink = malloc(32);
    free(sink);
}

__attribute__((noinline)) void middle(void) {
    leaf();
    __asm__ volatile("" ::: "memory"); /* keeps the call from becoming a tail call */
}

static void body(void) {
    for (long i = 0; i < pairs; i++) {
        middle();
    }
}

int main(int argc, char **argv) {
    static char stack[256 * 1024];
    pairs = argc > 1 ? atol(argv[1]) : 200000;
    if (argc > 2) {
        body();
        return 0;
    }
    getcontext(&coroutine_context);
    coroutine_context.uc_stack.ss_sp = stack;
    coroutine_context.uc_stack.ss_size = sizeof stack;
    coroutine_context.uc_link = &main_context;
    makecontext(&coroutine_context, body, 0);
    swapcontext(&main_context, &coroutine_context);
    return 0;
}
