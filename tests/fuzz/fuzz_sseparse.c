/*
 * fuzz_sseparse.c: libFuzzer driver for the incremental SSE parser.
 *
 * The first input byte picks the event size limit, the rest is the stream.
 * It is parsed whole, in random chunks (step sizes drawn from a generator
 * seeded by the input) and, when short, one byte at a time; every way must
 * give the same events, the same error, comment count, retry value and last
 * event id. Each chunk sits in its own exact-size heap block, freed once the
 * parser returns, so ASan sees a read past a chunk or a span that outlived
 * it. Every event must also keep the limits. Any disagreement aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sseparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_sseparse: check failed at line %d: %s\n", __LINE__, #cond);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t fuzz_rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* What one way of feeding produced: the events, serialised, and the end state. */
struct fuzz_result {
    unsigned char *log;
    size_t len, cap;
    int err;
    uint64_t comments, events;
    int64_t retry;
    char last_id[SSE_PARSE_FIELD_MAX];
    size_t last_id_len;
};

static void fuzz_log(struct fuzz_result *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2 + 64;
        r->log = realloc(r->log, r->cap);
        FUZZ_CHECK(r->log != NULL);
    }
    if (n)
        memcpy(r->log + r->len, p, n);
    r->len += n;
}

static void fuzz_log_span(struct fuzz_result *r, span_t s)
{
    fuzz_log(r, &s.len, sizeof(s.len));
    fuzz_log(r, s.base, s.len);
}

static int fuzz_inside(span_t s, const char *base, size_t len)
{
    return s.len == 0 || (s.base >= base && s.len <= len && (size_t)(s.base - base) <= len - s.len);
}

/* Feeds stream[0..len) in chunks whose sizes come from step() (0: all). */
static void fuzz_run(struct fuzz_result *r, const char *stream, size_t len, size_t max_event,
                     uint64_t seed, int mode)
{
    struct sse_parser p;
    char *buf = malloc(max_event ? max_event : 1);
    FUZZ_CHECK(buf != NULL);
    sse_parse_init(&p, buf, max_event);
    memset(r, 0, sizeof(*r));
    size_t off = 0;
    while (off < len && !r->err) {
        size_t k = len - off;
        if (mode == 1) {
            uint64_t x = fuzz_rng_next(&seed);
            k = (x & 7) == 0 ? 1 + (size_t)(x >> 8) % 300 : 1 + (size_t)(x >> 8) % 9;
        } else if (mode == 2) {
            k = 1;
        }
        if (k > len - off)
            k = len - off;
        char *chunk = malloc(k);
        FUZZ_CHECK(chunk != NULL);
        memcpy(chunk, stream + off, k);
        const char *s = chunk;
        size_t left = k;
        while (left > 0) {
            struct sse_event ev;
            size_t used;
            int rc = sse_parse(&p, s, left, &used, &ev);
            if (rc < 0) {
                FUZZ_CHECK(rc == SSE_PARSE_ERR_TOO_BIG);
                r->err = rc;
                FUZZ_CHECK(sse_parse(&p, "data\n\n", 6, &used, &ev) == rc);
                break;
            }
            FUZZ_CHECK(used <= left);
            if (rc == SSE_PARSE_MORE) {
                FUZZ_CHECK(used == left);
            } else {
                FUZZ_CHECK(rc == SSE_PARSE_EVENT && used > 0);
                FUZZ_CHECK(ev.data.len <= max_event);
                FUZZ_CHECK(ev.type.len <= SSE_PARSE_FIELD_MAX);
                FUZZ_CHECK(ev.id.len <= SSE_PARSE_FIELD_MAX);
                FUZZ_CHECK(fuzz_inside(ev.data, s, used) || fuzz_inside(ev.data, buf, max_event));
                FUZZ_CHECK(ev.type.len == 0 || memchr(ev.type.base, '\n', ev.type.len) == NULL);
                FUZZ_CHECK(ev.id.len == 0 || memchr(ev.id.base, 0, ev.id.len) == NULL);
                FUZZ_CHECK(span_eq(ev.id, sse_parse_last_id(&p)));
                fuzz_log_span(r, ev.type);
                fuzz_log_span(r, ev.id);
                fuzz_log(r, &ev.has_id, sizeof(ev.has_id));
                fuzz_log_span(r, ev.data);
            }
            s += used;
            left -= used;
        }
        free(chunk);
        off += k;
    }
    r->comments = p.comments;
    r->events = p.events;
    r->retry = p.retry_ms;
    span_t id = sse_parse_last_id(&p);
    FUZZ_CHECK(id.len <= SSE_PARSE_FIELD_MAX);
    memcpy(r->last_id, id.base, id.len);
    r->last_id_len = id.len;
    free(buf);
}

static void fuzz_same(const struct fuzz_result *a, const struct fuzz_result *b)
{
    FUZZ_CHECK(a->err == b->err);
    FUZZ_CHECK(a->len == b->len && (a->len == 0 || memcmp(a->log, b->log, a->len) == 0));
    /* An error comes from a data, event or id line, so every way has seen the
     * same comments, retry lines and blank lines when it stops. */
    FUZZ_CHECK(a->events == b->events);
    FUZZ_CHECK(a->comments == b->comments && a->retry == b->retry);
    FUZZ_CHECK(a->last_id_len == b->last_id_len &&
               memcmp(a->last_id, b->last_id, a->last_id_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* Limits from 0 to 127 bytes, where errors are common, or 64 KiB. */
    size_t max_event = data[0] < 128 ? data[0] : 65536;
    const char *stream = (const char *)data + 1;
    size_t len = size - 1;
    uint64_t seed = 0xcbf29ce484222325u;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3u;
    seed |= 1;

    struct fuzz_result whole, split;
    fuzz_run(&whole, stream, len, max_event, seed, 0);
    fuzz_run(&split, stream, len, max_event, seed, 1);
    fuzz_same(&whole, &split);
    free(split.log);
    if (len <= 4096) {
        fuzz_run(&split, stream, len, max_event, seed, 2);
        fuzz_same(&whole, &split);
        free(split.log);
    }
    free(whole.log);
    return 0;
}
