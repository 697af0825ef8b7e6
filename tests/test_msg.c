/*
 * test_msg.c: unit tests for messages and blobs: the wire forms msg_new()
 * builds once must be byte for byte what the wire encoders produce, the
 * message must own copies of everything it was given, and the last reference
 * dropped, on any thread, must free it exactly once.
 *
 * Frees are checked directly: ASan's count of allocated bytes must stay put
 * while references remain and fall back to where it started with the last
 * one, and the freed block must be poisoned (ASan holds it in quarantine). A
 * double free or a use after free is ASan's to report.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "wire.h"

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

#define LIT(s) s, sizeof(s) - 1

/* A heap copy of exactly len bytes, freed by the caller right after
 * msg_new(), so a message that kept a pointer into its inputs instead of
 * copying them is a use after free. */
static span_t heap_span(const char *p, size_t len)
{
    char *b = malloc(len);
    cr_assert(b != NULL);
    if (len)
        memcpy(b, p, len);
    return span_of(b, len);
}

static void assert_span(span_t got, span_t want, const char *what)
{
    cr_assert(span_eq(got, want), "%s: got \"%.*s\" (%zu bytes), want \"%.*s\" (%zu bytes)", what,
              (int)got.len, got.base, got.len, (int)want.len, want.base, want.len);
}

/* Whether s lies inside the message's own allocation, after its header. */
static int inside(const struct msg *m, span_t s, size_t total)
{
    return s.base >= m->data && s.base + s.len <= m->data + total;
}

static const struct {
    const char *name;
    const char *channel;
    size_t channel_len;
    const char *event;
    size_t event_len;
    const char *payload;
    size_t payload_len;
    uint64_t id;
    int binary;
} cases[] = {
    {"plain", LIT("news"), LIT(""), LIT("hello"), 1, 0},
    {"event", LIT("news"), LIT("price"), LIT("{\"p\":3}"), 2, 0},
    {"empty payload", LIT("c"), LIT(""), LIT(""), 3, 0},
    {"empty payload, event", LIT("c"), LIT("e"), LIT(""), 4, 0},
    {"multi-line", LIT("a.b:c-d_e"), LIT("ev"), LIT("a\r\nb\rc\nd\n"), 5, 0},
    {"binary", LIT("bin"), LIT(""), LIT("\0\x01\xff\xfe\r\n\x80"), 6, 1},
    {"binary flag normalised", LIT("bin"), LIT(""), LIT("x"), 7, 5},
    {"invalid utf-8", LIT("u"), LIT(""), LIT("caf\xe9 \xed\xa0\x80"), 8, 0},
    {"id 0", LIT("z"), LIT(""), LIT("x"), 0, 0},
    {"id max", LIT("z"), LIT("e"), LIT("x"), UINT64_MAX, 0},
    {"long names",
     LIT("0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
         "5678901234567890123456789012345678901234567"),
     LIT("0123456789012345678901234567890123456789012345678901234567890123"), LIT("x"), 9, 0},
};

Test(msg, wire_forms_match_the_encoders)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        span_t ch = heap_span(cases[i].channel, cases[i].channel_len);
        span_t ev = heap_span(cases[i].event, cases[i].event_len);
        span_t pl = heap_span(cases[i].payload, cases[i].payload_len);
        uint32_t hash = 0x9e3779b9u + (uint32_t)i;
        struct msg *m = msg_new(ch, hash, cases[i].id, ev, pl, cases[i].binary, 1000 + i);
        cr_assert(m != NULL);

        /* Expected forms, from the encoders themselves. */
        size_t sse_len = wire_sse_size(cases[i].id, ev, pl);
        size_t json_len = wire_json_msg_size(cases[i].id, ev, pl);
        char *sse = malloc(sse_len), *json = malloc(json_len);
        cr_assert_eq((size_t)(wire_sse_write(sse, cases[i].id, ev, pl) - sse), sse_len);
        cr_assert_eq((size_t)(wire_json_msg_write(json, cases[i].id, ev, pl) - json), json_len);
        size_t id_line = 5 + wire_u64_len(cases[i].id);

        free((void *)ch.base);
        free((void *)ev.base);
        free((void *)pl.base);

        cr_assert_eq(atomic_load(&m->rc.refs), 1, "%s", cases[i].name);
        cr_assert_eq(m->rc.type, RC_MSG);
        cr_assert_eq(m->binary, cases[i].binary ? 1 : 0, "%s", cases[i].name);
        cr_assert_eq(m->chan_hash, hash);
        cr_assert_eq(m->id, cases[i].id);
        cr_assert_eq(m->time_ms, 1000 + i);
        cr_assert_null(m->gather);
        assert_span(msg_channel(m), span_of(cases[i].channel, cases[i].channel_len), "channel");
        assert_span(msg_event(m), span_of(cases[i].event, cases[i].event_len), "event");
        assert_span(m->payload, span_of(cases[i].payload, cases[i].payload_len), "payload");
        assert_span(m->sse, span_of(sse, sse_len), "sse");
        assert_span(m->json, span_of(json, json_len), "json");
        assert_span(m->sse_body, span_of(sse + id_line, sse_len - id_line), "sse_body");
        cr_assert(m->sse_body.base == m->sse.base + id_line, "sse_body is a view into sse");
        cr_assert(memcmp(m->sse.base, "id: ", 4) == 0 && m->sse.base[id_line - 1] == '\n');

        size_t total =
            cases[i].channel_len + cases[i].event_len + cases[i].payload_len + sse_len + json_len;
        cr_assert(inside(m, msg_channel(m), total) && inside(m, msg_event(m), total) &&
                      inside(m, m->payload, total) && inside(m, m->sse, total) &&
                      inside(m, m->json, total),
                  "%s: every span lies in the message's one allocation", cases[i].name);
        free(sse);
        free(json);
        rc_put(&m->rc);
    }
}

/* Spans with a NULL base and no length, which span.h allows for "absent". */
Test(msg, null_event_and_payload)
{
    struct msg *m = msg_new(SPAN_LIT("c"), 1, 1, SPAN_NULL, SPAN_NULL, 0, 0);
    cr_assert(m != NULL);
    assert_span(m->sse, SPAN_LIT("id: 1\ndata: \n\n"), "sse");
    assert_span(m->sse_body, SPAN_LIT("data: \n\n"), "sse_body");
    assert_span(m->json, SPAN_LIT("{\"id\":1,\"data\":\"\"}"), "json");
    cr_assert_eq(m->payload.len, 0);
    cr_assert_eq(msg_event(m).len, 0);
    rc_put(&m->rc);
}

Test(msg, last_put_frees)
{
    size_t before = allocated();
    struct msg *m = msg_new(SPAN_LIT("news"), 7, 42, SPAN_LIT("e"), SPAN_LIT("payload"), 0, 0);
    cr_assert(m != NULL);
    size_t with = allocated();
    cr_assert_gt(with, before);
    rc_get(&m->rc);
    rc_get_n(&m->rc, 3);
    cr_assert_eq(atomic_load(&m->rc.refs), 5);
    for (int i = 4; i > 0; i--) {
        rc_put(&m->rc);
        cr_assert_eq(atomic_load(&m->rc.refs), (uint32_t)i);
        cr_assert_eq(allocated(), with, "freed with %d references left", i);
    }
    cr_assert_not(__asan_address_is_poisoned(m));
    rc_put(&m->rc);
    cr_assert_eq(allocated(), before, "the last reference did not free the message");
    cr_assert(__asan_address_is_poisoned(m));
}

Test(msg, put_null_is_ignored)
{
    size_t before = allocated();
    rc_put(NULL);
    cr_assert_eq(allocated(), before);
}

Test(blob, new_and_free)
{
    static const size_t lens[] = {0, 1, 17, 4096, 65536};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t before = allocated();
        struct blob *b = blob_new(lens[i]);
        cr_assert(b != NULL);
        cr_assert_eq(atomic_load(&b->rc.refs), 1);
        cr_assert_eq(b->rc.type, RC_BLOB);
        cr_assert_eq(b->len, lens[i]);
        memset(b->data, 0xab, lens[i]); /* ASan: all len bytes are ours */
        rc_get(&b->rc);
        rc_put(&b->rc);
        cr_assert_gt(allocated(), before);
        rc_put(&b->rc);
        cr_assert_eq(allocated(), before, "blob of %zu bytes not freed", lens[i]);
    }
}

/* ---- the last reference dropped on another thread ------------------------ */

#define THREADS 8
#define ROUNDS  20000

struct racer {
    struct msg *m;
    pthread_barrier_t start, done;
    _Atomic int bad; /* reads of a message that changed under us */
};

/* Takes and drops references in a tight loop while the others do the same,
 * then drops the one it was handed; whichever thread drops the last frees.
 * It then waits for the test to look at the message while all threads live. */
static void *racer_run(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(&r->start);
    struct msg *m = r->m;
    for (int i = 0; i < ROUNDS; i++) {
        rc_get(&m->rc);
        if (m->id != 99 || atomic_load(&m->rc.refs) == 0)
            atomic_fetch_add(&r->bad, 1);
        rc_put(&m->rc);
    }
    rc_put(&m->rc);
    pthread_barrier_wait(&r->done);
    return NULL;
}

/* ASan's byte count is not exact while other threads start and stop, so
 * here the freed message is recognised by its poisoned memory instead. */
Test(msg, last_put_on_any_thread_frees_once)
{
    for (int round = 0; round < 50; round++) {
        struct racer r = {.bad = 0};
        pthread_barrier_init(&r.start, NULL, THREADS + 1);
        pthread_barrier_init(&r.done, NULL, THREADS + 1);
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++)
            cr_assert_eq(pthread_create(&th[i], NULL, racer_run, &r), 0);

        r.m = msg_new(SPAN_LIT("c"), 0, 99, SPAN_NULL, SPAN_LIT("x"), 0, 0);
        cr_assert(r.m != NULL);
        rc_get_n(&r.m->rc, THREADS - 1); /* one reference per thread */
        cr_assert_not(__asan_address_is_poisoned(r.m));
        pthread_barrier_wait(&r.start);
        pthread_barrier_wait(&r.done);
        int freed = __asan_address_is_poisoned(r.m);

        for (int i = 0; i < THREADS; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&r.start);
        pthread_barrier_destroy(&r.done);
        cr_assert_eq(atomic_load(&r.bad), 0);
        cr_assert(freed, "round %d: message not freed after the last reference", round);
    }
}
