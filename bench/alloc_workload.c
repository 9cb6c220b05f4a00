/*
 * Allocation-heavy workload for bench/record.sh: THREADS threads perform PAIRS malloc/free pairs in
 * total. Each allocation comes from one of SITES call sites, each a fixed call chain 5 to 30 frames
 * deep through eight distinct functions, so stacks vary and share prefixes the way a real program's
 * do, and repeat (a real program has many allocation sites, not a new stack per allocation).
 * Blocks live in a 256-slot ring per thread: each allocation frees the block it replaces, so frees
 * happen at other stacks than their allocations. Built at -O2 without frame pointers.
 *
 * usage: alloc_workload THREADS PAIRS
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 256
#define SITES 1024

struct state {
    uint64_t rng;
    void *ring[RING];
    long remaining;
    uint64_t checksum;
};

static uint64_t next(struct state *s) {
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static __attribute__((noinline)) void leaf(struct state *s) {
    uint64_t r = next(s);
    size_t size = 16 + (r % 497);
    unsigned slot = (unsigned)(r >> 32) % RING;
    free(s->ring[slot]);
    char *p = malloc(size);
    p[0] = (char)r;
    p[size - 1] = (char)(r >> 8);
    s->ring[slot] = p;
    s->remaining--;
}

typedef void (*step_fn)(struct state *, int, uint64_t);
static step_fn steps[8];

/* The path of a site is a fixed sequence derived from its number; non-tail calls (work after the
 * call) keep every frame on the stack. */
static uint64_t advance(uint64_t path) { return path * 6364136223846793005ULL + 1442695040888963407ULL; }
#define STEP(name)                                                                   \
    static __attribute__((noinline)) void name(struct state *s, int depth, uint64_t path) { \
        if (depth == 0)                                                              \
            leaf(s);                                                                 \
        else                                                                         \
            steps[advance(path) >> 61](s, depth - 1, advance(path));                 \
        s->checksum += (uint64_t)depth;                                              \
    }
STEP(step0) STEP(step1) STEP(step2) STEP(step3) STEP(step4) STEP(step5) STEP(step6) STEP(step7)
static step_fn steps[8] = {step0, step1, step2, step3, step4, step5, step6, step7};

static void *worker(void *arg) {
    struct state *s = arg;
    while (s->remaining > 0) {
        uint64_t site = next(s) % SITES;
        int depth = (int)(site % 26); /* + leaf, worker, start_thread, clone: 5..30 frames */
        steps[site & 7](s, depth, site);
    }
    for (int i = 0; i < RING; i++) free(s->ring[i]);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    long pairs = argc > 2 ? atol(argv[2]) : 5000000;
    if (threads < 1 || threads > 64 || pairs < 1) {
        fprintf(stderr, "usage: %s THREADS PAIRS\n", argv[0]);
        return 2;
    }
    struct state *states = calloc((size_t)threads, sizeof *states);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    for (int t = 0; t < threads; t++) {
        states[t].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1);
        states[t].remaining = pairs / threads;
        pthread_create(&ids[t], NULL, worker, &states[t]);
    }
    uint64_t checksum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        checksum += states[t].checksum;
    }
    printf("%d threads, %ld pairs, checksum %llu\n", threads, pairs, (unsigned long long)checksum);
    free(states);
    free(ids);
    return 0;
}
