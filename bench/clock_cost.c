/*
 * clock_cost.c — what a timestamp costs inside an allocation loop: 5M malloc/free pairs, each
 * pair taking two readings of one kind, against the same loop with none. Prints nanoseconds per
 * pair added by each kind of reading.
 *
 *   cc -O2 bench/clock_cost.c -o clock_cost && ./clock_cost
 *
 * Kinds: clock_gettime(CLOCK_MONOTONIC) through the vDSO (what the recorder used before the TSC
 * clock), RDTSC (the recorder's read before a release), RDTSCP (its read after an allocation).
 * x86_64 only. Each kind runs three times; the fastest run counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#define PAIRS 5000000L

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline unsigned long long reading(int kind) {
    unsigned aux;
    switch (kind) {
    case 1: return (unsigned long long)now_ns();
    case 2: return __rdtsc();
    case 3: return __rdtscp(&aux);
    default: return 0;
    }
}

static void *volatile blocks[64];
static volatile unsigned long long sink;

static double ns_per_pair(int kind) {
    double best = 1e18;
    for (int run = 0; run < 3; run++) {
        unsigned long long acc = 0;
        long start = now_ns();
        for (long i = 0; i < PAIRS; i++) {
            void *p = malloc(16 + (i & 255));
            acc += reading(kind);
            blocks[i & 63] = p;
            void *q = blocks[(i + 1) & 63];
            acc += reading(kind);
            free(q);
            blocks[(i + 1) & 63] = NULL;
        }
        sink = acc;
        double ns = (double)(now_ns() - start) / PAIRS;
        if (ns < best) best = ns;
    }
    return best;
}

int main(void) {
    static const char *names[] = {"none", "clock_gettime", "RDTSC", "RDTSCP"};
    double base = ns_per_pair(0);
    printf("loop without readings: %.1f ns per pair\n", base);
    for (int kind = 1; kind <= 3; kind++)
        printf("two %-13s readings per pair: +%.1f ns\n", names[kind], ns_per_pair(kind) - base);
    return 0;
}
