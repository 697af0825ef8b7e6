/*
 * test_spsc.c: unit and two-thread stress tests of the SPSC ring.
 *
 * Built twice: under ASan+UBSan (with every module) and under ThreadSanitizer
 * (with spsc.c only), where the stress, payload and doorbell tests are the
 * race detector's input. Worker threads never call cr_assert (it must run on
 * the test's own thread): they record what they saw and the test thread
 * checks it after the join. Thread tests stop at an item count or a deadline,
 * whichever comes first, so a slow box makes them shorter, not hung.
 * The TSan build carries two shims (below) without which Criterion either
 * cannot start under TSan or passes a test that TSan reported.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "spsc.h"
#include "util.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#if UNDER_TSAN
/*
 * A race report alone does not fail a Criterion test: the test process goes
 * on and exits 0. Stopping at the first report makes that test crash, which
 * Criterion counts. TSAN_OPTIONS in the environment still overrides this.
 */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "halt_on_error=1";
}

/*
 * Criterion 2.4 maps its inheritable arena (BoxFort's bxf_arena_init) at
 * 0x200000000000 + (rand_r() & 0x3fffff) * 16 MiB and gives up after 10
 * candidates that are already mapped. ThreadSanitizer reserves nearly all of
 * that range (shadow, metadata, guard gaps), so an unmodified test binary
 * aborts at start-up with "Could not initialize inheritable arena" about 19
 * runs in 20 (Snaipe/Criterion#274). This rand_r, which the executable
 * exports ahead of libtsan's and libc's, steers those candidates into the PIE
 * range 0x550000000000-0x568000000000: application memory to TSan, and empty
 * apart from the binary itself, here and in the test processes BoxFort
 * re-executes, which map the arena at the same address. Only BoxFort calls
 * rand_r in this binary; the tests use their own generator.
 */
int rand_r(unsigned *seed)
{
    unsigned step = (*seed)++ % 16;

    /* 0x550000000000 + step * 64 GiB, in BoxFort's 16 MiB units from its base. */
    return (int)(((0x550000000000ull - 0x200000000000ull) >> 24) + step * 0x1000u);
}
#endif

/* TSan runs this code 5-15x slower; it needs fewer items to find races. */
#define STRESS_ITEMS   (UNDER_TSAN ? 10000000u : 20000000u)
#define STRESS_SECONDS 20
#define PAYLOAD_ITEMS  (UNDER_TSAN ? 200000u : 500000u)
#define DOORBELL_ITEMS (UNDER_TSAN ? 20000u : 50000u)
#define BATCH_MAX      2048

static void *item(uintptr_t seq)
{
    return (void *)seq;
}

/* xorshift64*: cheap, per thread, reproducible from the logged seed. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Mostly small batches, sometimes up to twice the ring, so partial pushes happen. */
static size_t rnd_batch(uint64_t *s, size_t cap)
{
    uint64_t r = rnd(s);
    size_t big = 2 * cap < BATCH_MAX ? 2 * cap : BATCH_MAX;

    if (r & 1)
        return 1 + (r >> 1) % 8;
    return 1 + (r >> 1) % big;
}

/* Spin briefly, then give the CPU away: the box may have fewer cores than threads. */
static void backoff(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        return;
    }
    *spins = 0;
    sched_yield();
}

/* ---------------------------------------------------------------- single thread */

Test(spsc, init_rounds_capacity_up_to_power_of_two)
{
    static const struct {
        size_t ask, got;
    } cases[] = {{0, 2},   {1, 2},   {2, 2},    {3, 4},       {4, 4},      {5, 8},
                 {63, 64}, {64, 64}, {65, 128}, {1000, 1024}, {4096, 4096}};

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct spsc q;
        cr_assert_eq(spsc_init(&q, cases[i].ask), 0);
        cr_expect_eq(spsc_capacity(&q), cases[i].got, "capacity %zu: got %zu, want %zu",
                     cases[i].ask, spsc_capacity(&q), cases[i].got);
        cr_expect(spsc_empty(&q));
        spsc_destroy(&q);
    }
}

Test(spsc, init_refuses_impossible_capacity)
{
    /* Sizes whose rounding or byte count overflow, caught before any allocation. */
    static const size_t asks[] = {SIZE_MAX, SIZE_MAX / 2 + 2, SIZE_MAX / sizeof(void *)};

    for (size_t i = 0; i < ARRAY_SIZE(asks); i++) {
        struct spsc q;
        cr_expect_eq(spsc_init(&q, asks[i]), -ENOMEM, "capacity %zu", asks[i]);
        spsc_destroy(&q); /* harmless after a failed init */
    }
}

Test(spsc, struct_is_one_line_per_writer)
{
    cr_expect_eq(sizeof(struct spsc), 3 * CACHELINE);
    cr_expect_eq(_Alignof(struct spsc), CACHELINE);
    cr_expect_eq(offsetof(struct spsc, _tail) / CACHELINE, 1);
    cr_expect_eq(offsetof(struct spsc, _head_cache) / CACHELINE, 1);
    cr_expect_eq(offsetof(struct spsc, _head) / CACHELINE, 2);
    cr_expect_eq(offsetof(struct spsc, _tail_cache) / CACHELINE, 2);
}

Test(spsc, push_until_full_then_pop_fifo)
{
    struct spsc q;
    cr_assert_eq(spsc_init(&q, 8), 0);

    for (uintptr_t i = 1; i <= 8; i++)
        cr_assert_eq(spsc_push(&q, item(i)), 1, "push %zu", (size_t)i);
    cr_expect_eq(spsc_push(&q, item(9)), 0, "push into a full ring");
    cr_expect_eq(spsc_push_batch(&q, (void *[]){item(9)}, 1), 0, "batch into a full ring");
    cr_expect_not(spsc_empty(&q));

    void *out;
    for (uintptr_t i = 1; i <= 8; i++) {
        cr_assert_eq(spsc_pop(&q, &out), 1);
        cr_expect_eq(out, item(i), "pop %zu got %p", (size_t)i, out);
    }
    cr_expect_eq(spsc_pop(&q, &out), 0);
    cr_expect(spsc_empty(&q));

    /* Room again after the pops. */
    cr_expect_eq(spsc_push(&q, item(9)), 1);
    spsc_destroy(&q);
}

Test(spsc, batch_push_is_a_prefix_when_nearly_full)
{
    struct spsc q;
    void *in[8], *out[8];
    cr_assert_eq(spsc_init(&q, 8), 0);

    for (uintptr_t i = 0; i < 8; i++)
        in[i] = item(100 + i);
    cr_assert_eq(spsc_push_batch(&q, in, 6), 6);
    cr_expect_eq(spsc_push_batch(&q, in, 5), 2, "only 2 of 5 fit");
    cr_expect_eq(spsc_push_batch(&q, in, 5), 0, "full");

    cr_assert_eq(spsc_pop_batch(&q, out, 8), 8);
    for (size_t i = 0; i < 6; i++)
        cr_expect_eq(out[i], in[i]);
    cr_expect_eq(out[6], in[0], "the prefix, not some other two");
    cr_expect_eq(out[7], in[1]);
    spsc_destroy(&q);
}

Test(spsc, pop_batch_returns_what_is_there)
{
    struct spsc q;
    void *out[16];
    cr_assert_eq(spsc_init(&q, 16), 0);

    cr_expect_eq(spsc_pop_batch(&q, out, 16), 0, "empty");
    cr_assert_eq(spsc_push_batch(&q, (void *[]){item(1), item(2), item(3)}, 3), 3);
    cr_expect_eq(spsc_pop_batch(&q, out, 0), 0, "max 0 pops nothing");
    cr_expect_eq(spsc_pop_batch(&q, out, 2), 2);
    cr_expect_eq(out[0], item(1));
    cr_expect_eq(out[1], item(2));
    cr_expect_eq(spsc_pop_batch(&q, out, 16), 1);
    cr_expect_eq(out[0], item(3));
    cr_expect_eq(spsc_push_batch(&q, out, 0), 0, "n 0 pushes nothing");
    cr_expect(spsc_empty(&q));
    spsc_destroy(&q);
}

Test(spsc, empty_tracks_pushes_and_pops)
{
    struct spsc q;
    void *out;
    cr_assert_eq(spsc_init(&q, 4), 0);

    cr_expect(spsc_empty(&q));
    spsc_push(&q, item(1));
    cr_expect_not(spsc_empty(&q));
    spsc_push(&q, item(2));
    spsc_pop(&q, &out);
    cr_expect_not(spsc_empty(&q));
    spsc_pop(&q, &out);
    cr_expect(spsc_empty(&q));
    spsc_destroy(&q);
}

/* Batches of every size against every fill level, so each split point of the copy is hit. */
Test(spsc, wraps_around_many_times)
{
    struct spsc q;
    void *in[8], *out[8];
    uintptr_t next_in = 1, next_out = 1;
    uint64_t seed = 42;
    cr_assert_eq(spsc_init(&q, 8), 0);

    for (int round = 0; round < 100000; round++) {
        size_t want = 1 + rnd(&seed) % 8;
        for (size_t i = 0; i < want; i++)
            in[i] = item(next_in + i);
        next_in += spsc_push_batch(&q, in, want);

        size_t got = spsc_pop_batch(&q, out, 1 + rnd(&seed) % 8);
        for (size_t i = 0; i < got; i++, next_out++)
            cr_assert_eq(out[i], item(next_out), "round %d: got %p, want %zu", round, out[i],
                         (size_t)next_out);
        cr_assert_leq(next_in - next_out, 8);
    }
    cr_expect_gt(next_out, 8 * 10000, "the ring went round %zu times", (size_t)next_out / 8);
    spsc_destroy(&q);
}

/*
 * White-box: start the free-running counters just below SIZE_MAX so they
 * overflow mid-test; fill-level arithmetic must not care.
 */
Test(spsc, counters_wrap_past_size_max)
{
    struct spsc q;
    void *in[3] = {item(1), item(2), item(3)}, *out[4];
    cr_assert_eq(spsc_init(&q, 4), 0);
    size_t start = SIZE_MAX - 5;
    atomic_store(&q._tail, start);
    atomic_store(&q._head, start);
    q._head_cache = q._tail_cache = start;

    for (int round = 0; round < 10; round++) {
        cr_assert_eq(spsc_push_batch(&q, in, 3), 3, "round %d", round);
        cr_assert_eq(spsc_push_batch(&q, in, 3), 1, "round %d: only one more fits", round);
        cr_assert_eq(spsc_pop_batch(&q, out, 4), 4);
        cr_expect_eq(out[0], in[0]);
        cr_expect_eq(out[2], in[2]);
        cr_expect_eq(out[3], in[0]);
        cr_expect(spsc_empty(&q));
    }
    spsc_destroy(&q);
}

Test(spsc, embeds_in_an_aligned_struct)
{
    struct holder {
        char before;
        struct spsc q;
        char after;
    } *h = aligned_alloc(CACHELINE, sizeof(struct holder));
    cr_assert_not_null(h);
    cr_assert_eq(spsc_init(&h->q, 2), 0);
    h->before = h->after = 1;
    cr_expect_eq(spsc_push(&h->q, item(7)), 1);
    void *out;
    cr_expect_eq(spsc_pop(&h->q, &out), 1);
    cr_expect_eq(out, item(7));
    spsc_destroy(&h->q);
    free(h);
}

/* ---------------------------------------------------------------- two threads */

struct stress {
    struct spsc q;
    size_t target;
    uint64_t deadline_ns;
    uint64_t seed;
    _Atomic int producer_done;
    _Atomic size_t pushed; /* final count, valid once producer_done */
    /* Each written by one thread, read by the test thread after the join. */
    size_t full_seen;  /* producer: pushes cut short by a full ring */
    size_t empty_seen; /* consumer: pops that found nothing */
    size_t popped;
    size_t bad_at; /* 0 = no error, else the sequence number that arrived wrong */
    uintptr_t bad_got;
};

static void *stress_producer(void *arg)
{
    struct stress *s = arg;
    void *batch[BATCH_MAX];
    uint64_t seed = s->seed;
    size_t cap = spsc_capacity(&s->q);
    uintptr_t next = 1;
    unsigned spins = 0, rounds = 0;

    while (next <= s->target) {
        size_t want = rnd_batch(&seed, cap), done;
        if (want > s->target - next + 1)
            want = s->target - next + 1;
        if (want == 1) {
            done = (size_t)spsc_push(&s->q, item(next));
        } else {
            for (size_t i = 0; i < want; i++)
                batch[i] = item(next + i);
            done = spsc_push_batch(&s->q, batch, want);
        }
        next += done;
        if (done < want)
            s->full_seen++;
        if (done == 0) {
            backoff(&spins);
            if (now_ns() > s->deadline_ns)
                break;
        }
        if ((++rounds & 0xfff) == 0 && now_ns() > s->deadline_ns)
            break;
    }
    atomic_store_explicit(&s->pushed, next - 1, memory_order_relaxed);
    atomic_store_explicit(&s->producer_done, 1, memory_order_release);
    return NULL;
}

static void *stress_consumer(void *arg)
{
    struct stress *s = arg;
    void *batch[BATCH_MAX];
    uint64_t seed = s->seed ^ 0x9e3779b97f4a7c15ull;
    size_t cap = spsc_capacity(&s->q);
    uintptr_t expect = 1;
    unsigned spins = 0;

    for (;;) {
        size_t got;
        if (rnd(&seed) % 4 == 0) {
            got = (size_t)spsc_pop(&s->q, &batch[0]);
        } else {
            got = spsc_pop_batch(&s->q, batch, rnd_batch(&seed, cap));
        }
        for (size_t i = 0; i < got; i++, expect++) {
            if ((uintptr_t)batch[i] != expect && s->bad_at == 0) {
                s->bad_at = expect;
                s->bad_got = (uintptr_t)batch[i];
            }
        }
        if (got > 0) {
            spins = 0;
            continue;
        }
        s->empty_seen++;
        /* Done once the producer has stopped and everything it pushed is here. */
        if (atomic_load_explicit(&s->producer_done, memory_order_acquire) &&
            expect - 1 == atomic_load_explicit(&s->pushed, memory_order_relaxed) &&
            spsc_empty(&s->q))
            break;
        backoff(&spins);
    }
    s->popped = expect - 1;
    return NULL;
}

static void run_stress(size_t capacity, uint64_t seed)
{
    struct stress *s = aligned_alloc(CACHELINE, sizeof(*s));
    cr_assert_not_null(s);
    memset(s, 0, sizeof(*s));
    cr_assert_eq(spsc_init(&s->q, capacity), 0);
    s->target = STRESS_ITEMS;
    s->seed = seed;
    uint64_t t0 = now_ns();
    s->deadline_ns = t0 + STRESS_SECONDS * 1000000000ull;

    pthread_t prod, cons;
    cr_assert_eq(pthread_create(&cons, NULL, stress_consumer, s), 0);
    cr_assert_eq(pthread_create(&prod, NULL, stress_producer, s), 0);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);

    double secs = (double)(now_ns() - t0) / 1e9;
    size_t pushed = atomic_load(&s->pushed);
    cr_log_info("spsc stress: capacity %zu, seed %llu: %zu items in %.2f s (%.1f M/s), "
                "found full %zu times, empty %zu times",
                spsc_capacity(&s->q), (unsigned long long)seed, pushed, secs,
                (double)pushed / secs / 1e6, s->full_seen, s->empty_seen);
    if (pushed < s->target)
        cr_log_warn("spsc stress: deadline hit after %zu of %zu items", pushed, s->target);

    cr_expect_eq(s->bad_at, 0, "item %zu arrived as %zu", s->bad_at, (size_t)s->bad_got);
    cr_expect_eq(s->popped, pushed, "pushed %zu, popped %zu", pushed, s->popped);
    cr_expect_gt(pushed, 100000, "too few items to mean anything");
    cr_expect(spsc_empty(&s->q));
    spsc_destroy(&s->q);
    free(s);
}

Test(spsc, stress_64_slots, .timeout = 90)
{
    run_stress(64, 1);
}

Test(spsc, stress_1024_slots, .timeout = 90)
{
    run_stress(1024, 2);
}

/* A message built by the producer, then pushed: the consumer must see it whole. */
struct payload {
    uint64_t seq;
    uint64_t square;
    uint32_t len;
    char text[36];
    uint64_t check;
};

struct payload_run {
    struct spsc q;
    size_t count;
    size_t bad; /* consumer: messages that arrived incomplete or out of order */
    size_t first_bad_seq;
};

static uint64_t payload_check(const struct payload *p)
{
    uint64_t h = p->seq * 31 + p->square + p->len;
    for (uint32_t i = 0; i < p->len; i++)
        h = h * 131 + (unsigned char)p->text[i];
    return h;
}

static void *payload_producer(void *arg)
{
    struct payload_run *r = arg;
    unsigned spins = 0;

    for (uint64_t seq = 1; seq <= r->count; seq++) {
        struct payload *p = malloc(sizeof(*p));
        if (p == NULL)
            abort();
        p->seq = seq;
        p->square = seq * seq;
        p->len =
            (uint32_t)snprintf(p->text, sizeof(p->text), "message %llu", (unsigned long long)seq);
        p->check = payload_check(p);
        while (!spsc_push(&r->q, p))
            backoff(&spins);
    }
    return NULL;
}

static void *payload_consumer(void *arg)
{
    struct payload_run *r = arg;
    void *batch[32];
    uint64_t expect = 1;
    unsigned spins = 0;
    char want[36];

    while (expect <= r->count) {
        size_t got = spsc_pop_batch(&r->q, batch, ARRAY_SIZE(batch));
        if (got == 0) {
            backoff(&spins);
            continue;
        }
        for (size_t i = 0; i < got; i++, expect++) {
            struct payload *p = batch[i];
            snprintf(want, sizeof(want), "message %llu", (unsigned long long)expect);
            int ok = p->seq == expect && p->square == expect * expect && p->len == strlen(want) &&
                     memcmp(p->text, want, p->len + 1) == 0 && p->check == payload_check(p);
            if (!ok && r->bad++ == 0)
                r->first_bad_seq = expect;
            free(p); /* ownership came with the pop */
        }
    }
    return NULL;
}

Test(spsc, payload_written_before_push_is_visible_after_pop, .timeout = 90)
{
    struct payload_run *r = aligned_alloc(CACHELINE, sizeof(*r));
    cr_assert_not_null(r);
    memset(r, 0, sizeof(*r));
    cr_assert_eq(spsc_init(&r->q, 16), 0);
    r->count = PAYLOAD_ITEMS;

    pthread_t prod, cons;
    cr_assert_eq(pthread_create(&cons, NULL, payload_consumer, r), 0);
    cr_assert_eq(pthread_create(&prod, NULL, payload_producer, r), 0);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);

    cr_expect_eq(r->bad, 0, "%zu bad messages, first %zu", r->bad, r->first_bad_seq);
    cr_expect(spsc_empty(&r->q));
    spsc_destroy(&r->q);
    free(r);
}

/*
 * The doorbell protocol from spsc.h, as the worker will run it, with an
 * eventfd as the doorbell. If a wake-up were lost the consumer would sleep
 * with items queued until its watchdog timeout, which the test counts.
 */
struct doorbell_run {
    struct spsc q;
    size_t count;
    int efd;
    _Atomic int sleeping;
    /* Counters, each written by one thread only, read after the join. */
    size_t rings, sleeps, lost, received, bad;
};

static void *doorbell_producer(void *arg)
{
    struct doorbell_run *r = arg;
    uint64_t seed = 7;
    uintptr_t next = 1;

    while (next <= r->count) {
        size_t burst = 1 + rnd(&seed) % 16;
        for (size_t i = 0; i < burst && next <= r->count; i++) {
            while (!spsc_push(&r->q, item(next)))
                sched_yield();
            next++;
        }
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&r->sleeping, memory_order_relaxed)) {
            uint64_t one = 1;
            if (write(r->efd, &one, sizeof(one)) != sizeof(one))
                abort();
            r->rings++;
        }
        /* Pause now and then so the consumer runs dry and goes to sleep. */
        if (rnd(&seed) % 8 == 0)
            usleep(rnd(&seed) % 50);
    }
    return NULL;
}

static void *doorbell_consumer(void *arg)
{
    struct doorbell_run *r = arg;
    void *batch[64];
    uintptr_t expect = 1;

    while (expect <= r->count) {
        size_t got;
        while ((got = spsc_pop_batch(&r->q, batch, ARRAY_SIZE(batch))) > 0)
            for (size_t i = 0; i < got; i++, expect++)
                r->bad += batch[i] != item(expect);
        if (expect > r->count)
            break;

        atomic_store_explicit(&r->sleeping, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        if (!spsc_empty(&r->q)) {
            atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
            continue;
        }
        r->sleeps++;
        struct pollfd pfd = {.fd = r->efd, .events = POLLIN};
        int n = poll(&pfd, 1, 5000);
        if (n == 0 && !spsc_empty(&r->q))
            r->lost++;
        if (n > 0) {
            uint64_t v;
            if (read(r->efd, &v, sizeof(v)) != sizeof(v))
                abort();
        }
        atomic_store_explicit(&r->sleeping, 0, memory_order_relaxed);
    }
    r->received = expect - 1;
    return NULL;
}

Test(spsc, doorbell_protocol_loses_no_wakeup, .timeout = 90)
{
    struct doorbell_run *r = aligned_alloc(CACHELINE, sizeof(*r));
    cr_assert_not_null(r);
    memset(r, 0, sizeof(*r));
    cr_assert_eq(spsc_init(&r->q, 64), 0);
    r->count = DOORBELL_ITEMS;
    r->efd = eventfd(0, EFD_CLOEXEC);
    cr_assert_geq(r->efd, 0);

    pthread_t prod, cons;
    cr_assert_eq(pthread_create(&cons, NULL, doorbell_consumer, r), 0);
    cr_assert_eq(pthread_create(&prod, NULL, doorbell_producer, r), 0);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);

    cr_log_info("spsc doorbell: %zu items, %zu sleeps, %zu doorbells", r->received, r->sleeps,
                r->rings);
    cr_expect_eq(r->lost, 0, "%zu lost wake-ups", r->lost);
    cr_expect_eq(r->bad, 0);
    cr_expect_eq(r->received, r->count);
    cr_expect_gt(r->sleeps, 0, "the consumer never slept: the test proved nothing");
    close(r->efd);
    spsc_destroy(&r->q);
    free(r);
}
