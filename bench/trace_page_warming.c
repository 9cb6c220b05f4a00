/* Whether reading a trace's pages into the page cache from another process, ahead of the
 * writer, makes the writer's page faults cheaper. The writer stores 40 MiB through a MAP_SHARED
 * mapping, one store per 64 bytes with some work between stores (so a reader can keep ahead),
 * reserving the file with fallocate in doubling steps as it reaches the end, as leakview's trace
 * writer does. A forked reader (the `leakview record` process could be one) reads each 16 KiB
 * chunk with pread up to 64 chunks ahead of the writer, never past what is reserved. Prints the
 * writer's page faults and system time (its faults' cost, but where the kernel counts it in
 * scheduler ticks only the faults compare) and the reader's CPU time.
 *
 *   cc -O2 -o trace_page_warming bench/trace_page_warming.c
 *   ./trace_page_warming MODE      (run in a directory on the disk to measure; writes ./pages.bin)
 *
 * MODE: growing         the file grows with each reservation (fallocate extends it), no reader
 *       growing-warmed  the same, with the reader
 *       sized           the file's size set to its full length first, reservations inside it
 *                       (FALLOC_FL_KEEP_SIZE), no reader
 *       sized-warmed    the same, with the reader
 *       stepped         the file's size kept ahead in steps: set to twice the reserved end
 *                       whenever the reservation grows, reservations inside it, no reader
 *       stepped-warmed  the same, with the reader
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CHUNK = 16384, AHEAD = 64 };
static const size_t LEN = 40u << 20;

/* Shared with the reader: how far the writer got and how far the file is reserved. */
struct progress {
    volatile size_t written, reserved;
    volatile int done;
};

static double ms(struct timeval t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; }

static void read_ahead(const struct progress *at) {
    static char buf[CHUNK];
    int fd = open("pages.bin", O_RDONLY);
    if (fd < 0) _exit(1);
    size_t warmed = 0;
    while (!at->done) {
        size_t to = at->written + AHEAD * CHUNK;
        if (to > at->reserved) to = at->reserved;
        if (warmed < at->written) warmed = at->written;
        for (; warmed + CHUNK <= to; warmed += CHUNK) pread(fd, buf, CHUNK, warmed);
        usleep(1000);
    }
    _exit(0);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int sized = strncmp(mode, "sized", 5) == 0, stepped = strncmp(mode, "stepped", 7) == 0;
    int warmed = strstr(mode, "-warmed") != NULL;
    if (!sized && !stepped && strncmp(mode, "growing", 7) != 0) {
        fprintf(stderr, "usage: %s growing|sized|stepped[-warmed]\n", argv[0]);
        return 2;
    }
    unlink("pages.bin");
    int fd = open("pages.bin", O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) { perror("pages.bin"); return 2; }
    struct progress *at = mmap(NULL, sizeof *at, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) { perror("mmap"); return 2; }
    if (sized && ftruncate(fd, LEN) != 0) { perror("ftruncate"); return 2; }
    int keep = sized || stepped ? FALLOC_FL_KEEP_SIZE : 0;
    size_t reserved = 16 * CHUNK;
    if (stepped && ftruncate(fd, 2 * reserved) != 0) { perror("ftruncate"); return 2; }
    if (fallocate(fd, keep, 0, reserved) != 0) { perror("fallocate"); return 2; }
    at->reserved = reserved;
    pid_t reader = warmed ? fork() : 0;
    if (warmed && reader == 0) read_ahead(at);
    char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 2; }
    struct rusage before, after, children;
    getrusage(RUSAGE_SELF, &before);
    for (size_t pos = 0; pos < LEN; pos += CHUNK) {
        if (pos + CHUNK > reserved) {
            size_t step = reserved < LEN - reserved ? reserved : LEN - reserved;
            if (fallocate(fd, keep, reserved, step) != 0) { perror("fallocate"); return 2; }
            reserved += step;
            if (stepped && ftruncate(fd, 2 * reserved < LEN ? 2 * reserved : LEN) != 0) { perror("ftruncate"); return 2; }
            at->reserved = reserved;
        }
        at->written = pos;
        for (size_t i = 0; i < CHUNK; i += 64) {
            p[pos + i] = (char)i;
            for (volatile int work = 0; work < 200; work++) {}
        }
    }
    getrusage(RUSAGE_SELF, &after);
    at->done = 1;
    if (warmed) waitpid(reader, NULL, 0);
    getrusage(RUSAGE_CHILDREN, &children);
    munmap(p, LEN);
    close(fd);
    unlink("pages.bin");
    size_t pages = LEN / 4096;
    printf("%-15s writer: %5ld faults (%.2f a page), system %6.2f ms (%.2f us a page); reader CPU %6.2f ms\n",
           mode, after.ru_minflt - before.ru_minflt, (double)(after.ru_minflt - before.ru_minflt) / pages,
           ms(after.ru_stime) - ms(before.ru_stime), (ms(after.ru_stime) - ms(before.ru_stime)) * 1000 / pages,
           ms(children.ru_utime) + ms(children.ru_stime));
    return 0;
}
