/* How much a page of trace costs the kernel, by the way it is written: 10 MiB written into an
 * ext4 (or any) file, one store per 64 bytes, the file reserved with fallocate in doubling steps
 * as leakview's trace writer does. Prints the time per 4 KiB page.
 *
 *   cc -O2 -o trace_page_writes bench/trace_page_writes.c
 *   ./trace_page_writes MODE      (run in a directory on the disk to measure; writes ./pages.bin)
 *
 * MODE: map       stores through a MAP_SHARED mapping (what the recorder does)
 *       zeros     per 16 KiB chunk, zeros written with pwrite first, then the stores
 *       populate  per 16 KiB chunk, madvise(MADV_POPULATE_WRITE) first, then the stores
 *       pwrite    the stores into one reused 16 KiB buffer, written with pwrite per chunk
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

enum { CHUNK = 16384 };
static const size_t LEN = 10u << 20;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void reserve(int fd) {
    size_t done = 0, step = 16 * CHUNK;
    while (done < LEN) {
        size_t n = done + step > LEN ? LEN - done : step;
        fallocate(fd, 0, done, n);
        done += n;
        step *= 2;
    }
}

static void store_chunk(char *p) {
    for (size_t i = 0; i < CHUNK; i += 64) p[i] = (char)i;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    static char zeros[CHUNK], buffer[CHUNK];
    unlink("pages.bin");
    int fd = open("pages.bin", O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) { perror("pages.bin"); return 2; }
    double start = now_ms();
    reserve(fd);
    if (strcmp(mode, "pwrite") == 0) {
        for (size_t at = 0; at < LEN; at += CHUNK) {
            store_chunk(buffer);
            pwrite(fd, buffer, CHUNK, at);
        }
    } else {
        char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) { perror("mmap"); return 2; }
        for (size_t at = 0; at < LEN; at += CHUNK) {
            if (strcmp(mode, "zeros") == 0) pwrite(fd, zeros, CHUNK, at);
            else if (strcmp(mode, "populate") == 0) madvise(p + at, CHUNK, MADV_POPULATE_WRITE);
            else if (strcmp(mode, "map") != 0) { fprintf(stderr, "usage: %s map|zeros|populate|pwrite\n", argv[0]); return 2; }
            store_chunk(p + at);
        }
        munmap(p, LEN);
    }
    double ms = now_ms() - start;
    close(fd);
    unlink("pages.bin");
    printf("%-8s %6.2f ms, %.2f us a page\n", mode, ms, ms * 1000 / (LEN / 4096));
    return 0;
}
