/* What one read of each clock costs on this machine: 10 million reads back to back, the time per
 * read. The recorder reads the TSC (plain RDTSC) once per event; clock_gettime is what it falls
 * back to, and what the in-process Rust API uses.
 *
 *   cc -O2 -o clock_reads bench/clock_reads.c && ./clock_reads
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#ifdef __x86_64__
#include <x86intrin.h>
#endif

enum { READS = 10000000 };

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static volatile uint64_t sink;

static void clock_read(const char *name, clockid_t id) {
    struct timespec t;
    uint64_t sum = 0;
    double start = now_ns();
    for (int i = 0; i < READS; i++) {
        clock_gettime(id, &t);
        sum += (uint64_t)t.tv_nsec;
    }
    sink = sum;
    printf("%-28s %6.2f ns\n", name, (now_ns() - start) / READS);
}

int main(void) {
#ifdef __x86_64__
    uint64_t sum = 0;
    unsigned aux;
    double start = now_ns();
    for (int i = 0; i < READS; i++) sum += __rdtsc();
    printf("%-28s %6.2f ns\n", "rdtsc", (now_ns() - start) / READS);
    start = now_ns();
    for (int i = 0; i < READS; i++) sum += __rdtscp(&aux);
    printf("%-28s %6.2f ns\n", "rdtscp", (now_ns() - start) / READS);
    sink = sum;
#endif
    clock_read("clock_gettime MONOTONIC", CLOCK_MONOTONIC);
    clock_read("clock_gettime MONOTONIC_COARSE", CLOCK_MONOTONIC_COARSE);
    return 0;
}
