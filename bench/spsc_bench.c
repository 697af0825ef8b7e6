/*
 * spsc_bench.c: throughput and round-trip latency of the SPSC ring between
 * two pinned threads. Not built by make; from the repository root:
 *
 *   cc -std=gnu11 -D_GNU_SOURCE -O2 -g -Iinclude bench/spsc_bench.c src/spsc.c \
 *      -lpthread -o build/spsc_bench
 *   ./build/spsc_bench [producer_cpu consumer_cpu]      (default: CPUs 0 and 1)
 *
 * Throughput: one thread pushes N pointers in batches of B, the other pops
 * with batches of B, for each ring size and B. Latency: one pointer bounces
 * between two rings (there and back); the figure is the round trip. Both
 * threads spin, so run it on an otherwise idle box and on distinct cores.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "spsc.h"
#include "util.h"

#define ITEMS     (50u * 1000 * 1000)
#define ROUNDS    (1u * 1000 * 1000)
#define BATCH_MAX 256

struct bench {
    struct spsc there, back;
    size_t batch;
    int cpu[2];
};

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
        fprintf(stderr, "spsc_bench: could not pin to CPU %d, running unpinned\n", cpu);
}

static void *producer(void *arg)
{
    struct bench *b = arg;
    void *batch[BATCH_MAX];
    pin(b->cpu[0]);

    for (uintptr_t next = 1; next <= ITEMS;) {
        for (size_t i = 0; i < b->batch; i++)
            batch[i] = (void *)(next + i);
        next += spsc_push_batch(&b->there, batch, b->batch);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct bench *b = arg;
    void *batch[BATCH_MAX];
    uintptr_t expect = 1;
    pin(b->cpu[1]);

    while (expect <= ITEMS) {
        size_t got = spsc_pop_batch(&b->there, batch, b->batch);
        for (size_t i = 0; i < got; i++, expect++)
            if (unlikely((uintptr_t)batch[i] != expect))
                FATAL("spsc_bench: got %p, want %zu", batch[i], (size_t)expect);
    }
    return NULL;
}

/* Echoes every pointer from `there` back on `back`. */
static void *echo(void *arg)
{
    struct bench *b = arg;
    void *p;
    pin(b->cpu[1]);

    for (unsigned i = 0; i < ROUNDS; i++) {
        while (!spsc_pop(&b->there, &p))
            ;
        while (!spsc_push(&b->back, p))
            ;
    }
    return NULL;
}

static void throughput(struct bench *b, size_t capacity, size_t batch)
{
    pthread_t p, c;
    if (spsc_init(&b->there, capacity) < 0)
        FATAL("spsc_bench: out of memory");
    b->batch = batch;

    uint64_t t0 = now_ns();
    pthread_create(&c, NULL, consumer, b);
    pthread_create(&p, NULL, producer, b);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    double secs = (double)(now_ns() - t0) / 1e9;

    printf("throughput  capacity %5zu  batch %3zu  %7.1f M items/s\n", capacity, batch,
           ITEMS / secs / 1e6);
    spsc_destroy(&b->there);
}

static void latency(struct bench *b)
{
    pthread_t e;
    void *p;
    if (spsc_init(&b->there, 64) < 0 || spsc_init(&b->back, 64) < 0)
        FATAL("spsc_bench: out of memory");
    pthread_create(&e, NULL, echo, b);
    pin(b->cpu[0]);

    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < ROUNDS; i++) {
        spsc_push(&b->there, (void *)(uintptr_t)(i + 1));
        while (!spsc_pop(&b->back, &p))
            ;
    }
    double ns = (double)(now_ns() - t0) / ROUNDS;
    pthread_join(e, NULL);

    printf("round trip  %.0f ns\n", ns);
    spsc_destroy(&b->there);
    spsc_destroy(&b->back);
}

int main(int argc, char **argv)
{
    static const size_t capacities[] = {64, 1024}, batches[] = {1, 8, 32, 256};
    struct bench *b = aligned_alloc(CACHELINE, sizeof(*b));
    if (b == NULL)
        FATAL("spsc_bench: out of memory");
    b->cpu[0] = argc > 2 ? atoi(argv[1]) : 0;
    b->cpu[1] = argc > 2 ? atoi(argv[2]) : 1;

    for (size_t c = 0; c < ARRAY_SIZE(capacities); c++)
        for (size_t i = 0; i < ARRAY_SIZE(batches); i++)
            throughput(b, capacities[c], batches[i]);
    latency(b);
    free(b);
    return 0;
}
