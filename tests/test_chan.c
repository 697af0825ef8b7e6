/*
 * test_chan.c: unit tests for a worker's channel table and history.
 *
 * The table: find/get/free with colliding hashes, growth far past its first
 * 1024 buckets, and chan_foreach. History: the ring bounded by --history and
 * by --history-ttl (times given explicitly), checked against a plain model
 * under random appends and expiries, and chan_since() against the README's
 * resume and gap rules, case by case.
 *
 * Every test opens its table through table_open() and closes it through
 * table_close(), which demands that ASan's count of allocated bytes is back
 * where it was: a message reference or a ring that leaked, or was freed twice,
 * fails the test that caused it.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "msg.h"

/* From ASan's allocator interface (sanitizer/allocator_interface.h, which
 * GCC does not ship). Weak, so a build without ASan skips instead of failing
 * to link. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static size_t allocated(void)
{
    if (!__sanitizer_get_current_allocated_bytes)
        cr_skip_test("needs AddressSanitizer to count allocated bytes");
    return __sanitizer_get_current_allocated_bytes();
}

static size_t bytes_at_open;

static void table_open(struct chan_table *t, uint32_t history_max, uint64_t ttl_ms)
{
    bytes_at_open = allocated();
    cr_assert_eq(chan_table_init(t, history_max, ttl_ms), 0);
    cr_assert_eq(t->count, 0);
    cr_assert_eq(t->history_max, history_max);
    cr_assert_eq(t->ttl_ms, ttl_ms);
}

static void table_close(struct chan_table *t)
{
    chan_table_destroy(t);
    cr_assert_null(t->buckets);
    size_t now = allocated();
    cr_assert_eq(now, bytes_at_open, "%ld bytes leaked", (long)(now - bytes_at_open));
}

/* A message with id `id` published at time_ms on channel "c". */
static struct msg *mk(uint64_t id, uint64_t time_ms)
{
    char payload[32];
    int n = snprintf(payload, sizeof(payload), "m%llu", (unsigned long long)id);
    struct msg *m = msg_new(SPAN_LIT("c"), chan_hash(SPAN_LIT("c")), id, SPAN_NULL,
                            span_of(payload, (size_t)n), 0, time_ms);
    cr_assert(m != NULL);
    return m;
}

/* Appends ids from..to, all published at time_ms. */
static void append_ids(struct chan_table *t, struct chan *c, uint64_t from, uint64_t to,
                       uint64_t time_ms)
{
    for (uint64_t id = from; id <= to; id++) {
        cr_assert_eq(chan_append(t, c, mk(id, time_ms)), 0);
        cr_assert_eq(c->last_id, id);
    }
}

/* The channel holds exactly ids first..last, oldest first (none when
 * first > last), and the ring never grew past --history. */
static void assert_held(const struct chan_table *t, const struct chan *c, uint64_t first,
                        uint64_t last)
{
    uint64_t want = first > last ? 0 : last - first + 1;
    cr_assert_eq(c->hcount, want, "holds %u, want %llu (%llu..%llu)", c->hcount,
                 (unsigned long long)want, (unsigned long long)first, (unsigned long long)last);
    cr_assert_leq(c->hcount, c->hcap);
    cr_assert_leq(c->hcap, t->history_max);
    for (uint32_t i = 0; i < c->hcount; i++) {
        const struct msg *m = chan_hist_at(c, i);
        cr_assert_eq(m->id, first + i, "slot %u holds id %llu, want %llu", i,
                     (unsigned long long)m->id, (unsigned long long)(first + i));
        char want_payload[32];
        int n = snprintf(want_payload, sizeof(want_payload), "m%llu", (unsigned long long)m->id);
        cr_assert(span_eq(m->payload, span_of(want_payload, (size_t)n)));
    }
    cr_assert_eq(chan_first_id(c), c->hcount ? first : c->last_id + 1);
}

static struct chan *get(struct chan_table *t, const char *name)
{
    span_t s = span_cstr(name);
    struct chan *c = chan_get(t, s, chan_hash(s));
    cr_assert(c != NULL);
    return c;
}

/* ---- hash ------------------------------------------------------------------ */

Test(chan_hash, fnv1a_vectors)
{
    /* The published FNV-1a 32-bit test vectors. */
    cr_assert_eq(chan_hash(SPAN_LIT("")), 0x811c9dc5u);
    cr_assert_eq(chan_hash(SPAN_NULL), 0x811c9dc5u);
    cr_assert_eq(chan_hash(SPAN_LIT("a")), 0xe40c292cu);
    cr_assert_eq(chan_hash(SPAN_LIT("foobar")), 0xbf9cf968u);
    cr_assert_eq(chan_hash(SPAN_LIT("\xff")), (0x811c9dc5u ^ 0xffu) * 16777619u);
}

/* ---- table ----------------------------------------------------------------- */

Test(chan_table, get_find_and_fields)
{
    struct chan_table t;
    table_open(&t, 100, 0);
    cr_assert_eq(t.nbuckets, 1024);
    cr_assert_null(chan_find(&t, SPAN_LIT("news"), chan_hash(SPAN_LIT("news"))));

    struct chan *c = get(&t, "news");
    cr_assert_eq(t.count, 1);
    cr_assert(span_eq(span_of(c->name, c->name_len), SPAN_LIT("news")));
    cr_assert_eq(c->hash, chan_hash(SPAN_LIT("news")));
    cr_assert_eq(c->nsubs, 0);
    cr_assert_eq(c->sub_head, CHAN_NONE);
    cr_assert_eq(c->last_id, 0);
    cr_assert_eq(c->hcount, 0);
    cr_assert_eq(chan_first_id(c), 1);
    cr_assert_eq(chan_find(&t, SPAN_LIT("news"), c->hash), c);
    cr_assert_eq(get(&t, "news"), c, "a second get finds the first");
    cr_assert_eq(t.count, 1);
    cr_assert_null(chan_find(&t, SPAN_LIT("new"), chan_hash(SPAN_LIT("new"))));
    cr_assert_null(chan_find(&t, SPAN_LIT("newsx"), chan_hash(SPAN_LIT("newsx"))));

    /* The name is copied: the caller's buffer may go. */
    char *name = strdup("temp");
    struct chan *d = chan_get(&t, span_cstr(name), chan_hash(span_cstr(name)));
    free(name);
    cr_assert_eq(chan_find(&t, SPAN_LIT("temp"), chan_hash(SPAN_LIT("temp"))), d);

    /* Longest channel name. */
    char longname[129];
    memset(longname, 'x', 128);
    longname[128] = 0;
    struct chan *l = get(&t, longname);
    cr_assert_eq(l->name_len, 128);
    cr_assert_eq(chan_find(&t, span_of(longname, 128), chan_hash(span_of(longname, 128))), l);
    cr_assert_eq(t.count, 3);
    table_close(&t);
}

/* Different names under one hash share a chain; each is found by its name,
 * and unlinking one from the head, middle or tail keeps the rest. */
Test(chan_table, colliding_hashes)
{
    static const char *names[] = {"a", "ab", "abc", "b", "ba", "x.y", "x:y", "x-y"};
    enum { N = sizeof(names) / sizeof(names[0]) };
    static const int free_order[N] = {3, 0, 7, 5, 1, 6, 2, 4};
    struct chan_table t;
    table_open(&t, 100, 0);
    struct chan *c[N];
    for (int i = 0; i < N; i++)
        c[i] = chan_get(&t, span_cstr(names[i]), 42);
    for (int i = 0; i < N; i++)
        cr_assert_eq(chan_find(&t, span_cstr(names[i]), 42), c[i], "%s", names[i]);
    cr_assert_null(chan_find(&t, SPAN_LIT("abcd"), 42));
    cr_assert_null(chan_find(&t, SPAN_LIT("a"), 43), "same name, other hash");

    int gone[N] = {0};
    for (int k = 0; k < N; k++) {
        int v = free_order[k];
        cr_assert_eq(chan_maybe_free(&t, c[v]), 1);
        gone[v] = 1;
        cr_assert_eq(t.count, (uint32_t)(N - k - 1));
        for (int i = 0; i < N; i++)
            cr_assert_eq(chan_find(&t, span_cstr(names[i]), 42), gone[i] ? NULL : c[i],
                         "after freeing %s, %s", names[v], names[i]);
    }
    table_close(&t);
}

static void mark_visit(struct chan_table *t, struct chan *c, void *arg)
{
    unsigned *visits = arg;
    (void)t;
    unsigned n = 0;
    for (uint16_t i = 3; i < c->name_len; i++) /* "ch-NNNNN", not NUL-terminated */
        n = n * 10 + (unsigned)(c->name[i] - '0');
    visits[n]++;
}

static void free_visit(struct chan_table *t, struct chan *c, void *arg)
{
    unsigned *freed = arg;
    *freed += (unsigned)chan_maybe_free(t, c);
}

Test(chan_table, grows_past_1024_buckets_with_10k_channels)
{
    enum { N = 10000 };
    struct chan_table t;
    table_open(&t, 4, 0);
    static struct chan *c[N];
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "ch-%05d", i);
        c[i] = get(&t, name);
        cr_assert_eq(t.count, (uint32_t)i + 1);
        if (i % 3 == 0)
            append_ids(&t, c[i], 1, (uint64_t)(i % 7), 0); /* some carry history */
    }
    cr_assert_gt(t.nbuckets, 1024);
    cr_assert_geq(t.nbuckets, t.count);
    cr_assert_eq(t.nbuckets & (t.nbuckets - 1), 0, "bucket count %u not a power of two",
                 t.nbuckets);

    /* Every channel sits in the bucket of its hash, and is found again. */
    uint32_t seen = 0;
    for (uint32_t b = 0; b < t.nbuckets; b++)
        for (struct chan *p = t.buckets[b]; p; p = p->next, seen++)
            cr_assert_eq(p->hash & (t.nbuckets - 1), b);
    cr_assert_eq(seen, N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "ch-%05d", i);
        cr_assert_eq(chan_find(&t, span_cstr(name), chan_hash(span_cstr(name))), c[i], "%s", name);
        cr_assert_eq(get(&t, name), c[i]);
        uint64_t want_last = i % 3 == 0 ? (uint64_t)(i % 7) : 0;
        cr_assert_eq(c[i]->last_id, want_last);
        assert_held(&t, c[i], want_last > 4 ? want_last - 3 : 1, want_last);
    }
    cr_assert_eq(t.count, N);

    static unsigned visits[N];
    memset(visits, 0, sizeof(visits));
    chan_foreach(&t, mark_visit, visits);
    for (int i = 0; i < N; i++)
        cr_assert_eq(visits[i], 1, "channel %d visited %u times", i, visits[i]);

    /* chan_foreach may free the channel it is called on; those that ever
     * had a message stay. */
    unsigned freed = 0;
    chan_foreach(&t, free_visit, &freed);
    unsigned with_history = 0;
    for (int i = 0; i < N; i++)
        with_history += i % 3 == 0 && i % 7 != 0;
    cr_assert_eq(freed, N - with_history);
    cr_assert_eq(t.count, with_history);
    table_close(&t);
}

/* A channel is freed only when nothing refers to it: no subscribers, no
 * history, and no message ever seen, so that its ids never restart while a
 * client may still resume from one. */
Test(chan_table, maybe_free_only_when_nothing_refers_to_it)
{
    struct chan_table t;
    table_open(&t, 10, 1000);
    struct chan *c = get(&t, "c");
    c->nsubs = 1;
    cr_assert_eq(chan_maybe_free(&t, c), 0, "freed with a subscriber");
    cr_assert_eq(chan_find(&t, SPAN_LIT("c"), c->hash), c);
    c->nsubs = 0;
    cr_assert_eq(chan_maybe_free(&t, c), 1, "an unused channel stays");
    cr_assert_eq(t.count, 0);
    cr_assert_null(chan_find(&t, SPAN_LIT("c"), chan_hash(SPAN_LIT("c"))));

    struct chan *h = get(&t, "h");
    append_ids(&t, h, 1, 2, 0);
    cr_assert_eq(chan_maybe_free(&t, h), 0, "freed with history");
    chan_expire(&t, h, 999);
    cr_assert_eq(chan_maybe_free(&t, h), 0, "freed with history not yet expired");
    chan_expire(&t, h, 1000);
    assert_held(&t, h, 3, 2);
    cr_assert_eq(chan_maybe_free(&t, h), 0, "freed after its history expired: ids would restart");
    cr_assert_eq(chan_find(&t, SPAN_LIT("h"), h->hash), h);
    cr_assert_eq(h->last_id, 2);
    append_ids(&t, h, 3, 3, 2000);
    assert_held(&t, h, 3, 3);
    cr_assert_eq(t.count, 1);
    table_close(&t);
}

/* --history 0 holds nothing, yet the channel must keep its id counter. */
Test(chan_table, maybe_free_keeps_history_zero_channel_that_had_messages)
{
    struct chan_table t;
    table_open(&t, 0, 0);
    struct chan *c = get(&t, "c");
    append_ids(&t, c, 1, 5, 0);
    cr_assert_eq(c->hcount, 0);
    cr_assert_eq(chan_maybe_free(&t, c), 0);
    cr_assert_eq(get(&t, "c")->last_id, 5);
    table_close(&t);
}

Test(chan_table, destroy_frees_channels_with_history)
{
    struct chan_table t;
    table_open(&t, 5, 0);
    append_ids(&t, get(&t, "a"), 1, 3, 0);
    append_ids(&t, get(&t, "b"), 1, 12, 0);
    get(&t, "c");
    table_close(&t);
}

/* ---- history bounded by count ---------------------------------------------- */

Test(chan_history, bounded_by_history_table)
{
    static const struct {
        uint32_t history;
        uint64_t appends;
    } cases[] = {
        {100, 250}, {100, 100}, {100, 101}, {100, 99}, {100, 1}, {1, 1},    {1, 5},
        {2, 3},     {3, 10},    {4, 4},     {4, 5},    {5, 17},  {7, 1000}, {1000, 2500},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct chan_table t;
        table_open(&t, cases[i].history, 0);
        struct chan *c = get(&t, "c");
        uint64_t n = cases[i].appends, h = cases[i].history;
        append_ids(&t, c, 1, n, 0);
        cr_assert_eq(c->last_id, n);
        assert_held(&t, c, n > h ? n - h + 1 : 1, n);
        table_close(&t);
    }
}

Test(chan_history, append_250_with_history_100_holds_151_to_250)
{
    struct chan_table t;
    table_open(&t, 100, 0);
    struct chan *c = get(&t, "c");
    append_ids(&t, c, 1, 250, 0);
    assert_held(&t, c, 151, 250);
    cr_assert_eq(chan_first_id(c), 151);
    table_close(&t);
}

/* --history 0: every message is dropped at once, ids still advance. */
Test(chan_history, history_zero_holds_nothing)
{
    struct chan_table t;
    table_open(&t, 0, 0);
    struct chan *c = get(&t, "c");
    size_t before = allocated();
    append_ids(&t, c, 1, 3, 0);
    cr_assert_eq(allocated(), before, "messages not released");
    cr_assert_eq(c->hcount, 0);
    cr_assert_eq(c->last_id, 3);
    cr_assert_eq(chan_first_id(c), 4);
    table_close(&t);
}

/* ---- history bounded by age ------------------------------------------------ */

Test(chan_history, ttl_expiry_with_explicit_times)
{
    struct chan_table t;
    table_open(&t, 100, 1000);
    struct chan *c = get(&t, "c");
    cr_assert_eq(chan_append(&t, c, mk(1, 0)), 0);
    cr_assert_eq(chan_append(&t, c, mk(2, 500)), 0);
    cr_assert_eq(chan_append(&t, c, mk(3, 1000)), 0);

    static const struct {
        uint64_t now;
        uint64_t first, last; /* held afterwards */
    } steps[] = {
        {0, 1, 3},    {999, 1, 3},  {1000, 2, 3}, /* exactly ttl old: gone */
        {1000, 2, 3}, {1499, 2, 3}, {1500, 3, 3}, {1999, 3, 3}, {2000, 4, 3}, {99999, 4, 3},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        chan_expire(&t, c, steps[i].now);
        assert_held(&t, c, steps[i].first, steps[i].last);
        cr_assert_eq(c->last_id, 3);
    }
    cr_assert_eq(chan_first_id(c), 4);

    /* After expiry emptied the ring, appends carry on from the right id. */
    append_ids(&t, c, 4, 6, 3000);
    assert_held(&t, c, 4, 6);
    table_close(&t);
}

Test(chan_history, ttl_zero_never_expires)
{
    struct chan_table t;
    table_open(&t, 100, 0);
    struct chan *c = get(&t, "c");
    append_ids(&t, c, 1, 5, 0);
    chan_expire(&t, c, UINT64_MAX);
    assert_held(&t, c, 1, 5);
    table_close(&t);
}

Test(chan_history, ttl_and_count_together)
{
    struct chan_table t;
    table_open(&t, 3, 100);
    struct chan *c = get(&t, "c");
    for (uint64_t id = 1; id <= 5; id++)
        cr_assert_eq(chan_append(&t, c, mk(id, id * 10)), 0);
    assert_held(&t, c, 3, 5);
    chan_expire(&t, c, 139); /* id 3 (time 30) is past the TTL, id 4 (time 40) not yet */
    assert_held(&t, c, 4, 5);
    table_close(&t);
}

/* ---- history against a model ------------------------------------------------ */

static uint64_t rng_state = 0x2545f4914f6cdd1du;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random appends and expiries (which move the ring's start before it is full,
 * so growth copies a wrapped ring) against a plain array of (id, time). */
Test(chan_history, random_against_model)
{
    static const uint32_t histories[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100};
    enum { MAXN = 4000 };
    static uint64_t model_t[MAXN];
    for (size_t hi = 0; hi < sizeof(histories) / sizeof(histories[0]); hi++) {
        uint32_t h = histories[hi];
        uint64_t ttl = 50 + rng() % 200, now = 0, last = 0, lo = 1; /* model holds lo..last */
        struct chan_table t;
        table_open(&t, h, ttl);
        struct chan *c = get(&t, "c");
        for (int op = 0; op < 3000; op++) {
            now += rng() % 7;
            if (rng() % 4) {
                last++;
                cr_assert_eq(chan_append(&t, c, mk(last, now)), 0);
                model_t[last] = now;
                if (last - lo + 1 > h)
                    lo++;
            } else {
                chan_expire(&t, c, now);
                while (lo <= last && model_t[lo] + ttl <= now)
                    lo++;
            }
            assert_held(&t, c, lo, last);
        }
        table_close(&t);
    }
}

/* ---- chan_since ------------------------------------------------------------- */

struct since_case {
    const char *name;
    uint32_t history;
    uint64_t appends; /* ids 1..appends published at time 0 */
    int expire_all;   /* then every message aged out */
    uint64_t since;
    int gap;
    uint64_t requested; /* when gap */
    uint64_t gap_first; /* when gap */
    uint32_t first, count;
};

static const struct since_case since_cases[] = {
    /* history 100 holding 1..10 */
    {"at last id: nothing", 100, 10, 0, 10, 0, 0, 0, 10, 0},
    {"inside history", 100, 10, 0, 5, 0, 0, 0, 5, 5},
    {"since 0, all held", 100, 10, 0, 0, 0, 0, 0, 0, 10},
    {"one past last id", 100, 10, 0, 11, 1, 12, 1, 0, 10},
    {"far past last id", 100, 10, 0, 1000, 1, 1001, 1, 0, 10},
    /* history 100 holding 151..250 */
    {"evicted: at last id", 100, 250, 0, 250, 0, 0, 0, 100, 0},
    {"evicted: inside", 100, 250, 0, 200, 0, 0, 0, 50, 50},
    {"evicted: just before oldest", 100, 250, 0, 150, 0, 0, 0, 0, 100},
    {"evicted: one too old", 100, 250, 0, 149, 1, 150, 151, 0, 100},
    {"evicted: since 0", 100, 250, 0, 0, 1, 1, 151, 0, 100},
    {"evicted: past last id", 100, 250, 0, 251, 1, 252, 151, 0, 100},
    /* nothing ever published */
    {"empty, since 0", 100, 0, 0, 0, 0, 0, 0, 0, 0},
    {"empty, since 5", 100, 0, 0, 5, 1, 6, 1, 0, 0},
    /* --history 0 */
    {"history 0, at last id", 0, 10, 0, 10, 0, 0, 0, 0, 0},
    {"history 0, one behind", 0, 10, 0, 9, 1, 10, 11, 0, 0},
    {"history 0, since 0", 0, 10, 0, 0, 1, 1, 11, 0, 0},
    {"history 0, past last id", 0, 10, 0, 12, 1, 13, 11, 0, 0},
    /* --history 1 holding 3 */
    {"history 1, just before", 1, 3, 0, 2, 0, 0, 0, 0, 1},
    {"history 1, one too old", 1, 3, 0, 1, 1, 2, 3, 0, 1},
    {"history 1, at last id", 1, 3, 0, 3, 0, 0, 0, 1, 0},
    /* everything aged out */
    {"expired, at last id", 100, 3, 1, 3, 0, 0, 0, 0, 0},
    {"expired, one behind", 100, 3, 1, 2, 1, 3, 4, 0, 0},
    {"expired, past last id", 100, 3, 1, 7, 1, 8, 4, 0, 0},
};

Test(chan_since, table)
{
    for (size_t i = 0; i < sizeof(since_cases) / sizeof(since_cases[0]); i++) {
        const struct since_case *k = &since_cases[i];
        struct chan_table t;
        table_open(&t, k->history, 1000);
        struct chan *c = get(&t, "c");
        append_ids(&t, c, 1, k->appends, 0);
        if (k->expire_all)
            chan_expire(&t, c, 1000);

        struct chan_range r;
        memset(&r, 0xa5, sizeof(r));
        chan_since(c, k->since, &r);
        cr_assert_eq(r.gap, k->gap, "%s: gap %d", k->name, r.gap);
        cr_assert_eq(r.gap_requested, k->gap ? k->requested : 0, "%s: requested %llu", k->name,
                     (unsigned long long)r.gap_requested);
        cr_assert_eq(r.gap_first, k->gap ? k->gap_first : 0, "%s: gap first %llu", k->name,
                     (unsigned long long)r.gap_first);
        cr_assert_eq(r.first, k->first, "%s: first %u", k->name, r.first);
        cr_assert_eq(r.count, k->count, "%s: count %u", k->name, r.count);
        cr_assert_leq(r.first + r.count, c->hcount, "%s: range past the ring", k->name);

        /* What follows starts at since + 1 without a gap, at gap_first with
         * one, and runs to the last id. */
        uint64_t next = k->gap ? k->gap_first : k->since + 1;
        for (uint32_t j = 0; j < r.count; j++)
            cr_assert_eq(chan_hist_at(c, r.first + j)->id, next + j, "%s", k->name);
        if (r.count)
            cr_assert_eq(chan_hist_at(c, r.first + r.count - 1)->id, c->last_id);
        table_close(&t);
    }
}

/* A since beyond every id is a gap too, whatever the arithmetic on since + 1
 * does at the top of the range. */
Test(chan_since, since_max_is_a_gap)
{
    struct chan_table t;
    table_open(&t, 100, 0);
    struct chan *c = get(&t, "c");
    append_ids(&t, c, 1, 3, 0);
    struct chan_range r;
    chan_since(c, UINT64_MAX, &r);
    cr_assert_eq(r.gap, 1);
    cr_assert_eq(r.gap_first, 1);
    cr_assert_eq(r.first, 0);
    cr_assert_eq(r.count, 3);
    table_close(&t);
}

/* Every since from 0 to past the end, on a ring that has wrapped, against the
 * README's rule stated directly. */
Test(chan_since, every_since_on_a_wrapped_ring)
{
    static const uint32_t histories[] = {1, 3, 8, 10};
    for (size_t hi = 0; hi < sizeof(histories) / sizeof(histories[0]); hi++) {
        struct chan_table t;
        table_open(&t, histories[hi], 0);
        struct chan *c = get(&t, "c");
        append_ids(&t, c, 1, 37, 0);
        uint64_t oldest = 37 - histories[hi] + 1;
        for (uint64_t since = 0; since <= 40; since++) {
            struct chan_range r;
            chan_since(c, since, &r);
            int want_gap = since + 1 < oldest || since > 37;
            cr_assert_eq(r.gap, want_gap, "history %u since %llu", histories[hi],
                         (unsigned long long)since);
            if (want_gap) {
                cr_assert_eq(r.gap_requested, since + 1);
                cr_assert_eq(r.gap_first, oldest);
                cr_assert_eq(r.first, 0);
                cr_assert_eq(r.count, histories[hi]);
            } else {
                cr_assert_eq(r.count, 37 - since);
                if (r.count)
                    cr_assert_eq(chan_hist_at(c, r.first)->id, since + 1);
            }
        }
        table_close(&t);
    }
}
