/*
 * thread_churn.c — N threads started and joined one after another, each making one malloc/free
 * pair: a thread-per-task program, where what a thread's start and end cost the recorder (its
 * chunk of the trace, the pages given back at its end) adds up. Used by bench/threads.sh.
 *
 * usage: thread_churn N
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;

static void *body(void *arg) {
    sink = malloc((size_t)arg);
    free(sink);
    return NULL;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    for (long i = 0; i < n; i++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, body, (void *)(16 + i % 100)) != 0) {
            perror("pthread_create");
            return 1;
        }
        pthread_join(thread, NULL);
    }
    return 0;
}
