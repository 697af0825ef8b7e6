/*
 * fuzz_http.c: libFuzzer driver for the request parser and chunked decoder.
 *
 * Each input is parsed at once and again as if it trickled in, in step sizes
 * drawn from a generator seeded by the input itself; the two must agree on
 * the result and on every field, and every span must lie inside the head.
 * Each prefix is parsed from its own exact-size copy so that ASan sees any
 * read past len. When the head announces chunked, the rest of the input goes
 * through http_decode_chunked at once and piecewise, with the same demands.
 * Any disagreement aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http: check failed at line %d: %s\n", __LINE__, #cond);          \
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

/* Mostly small steps, which exercise the re-scan, now and then a large one. */
static size_t fuzz_step(uint64_t *s)
{
    uint64_t r = fuzz_rng_next(s);
    return (r & 7) == 0 ? 1 + (size_t)(r >> 8) % 512 : 1 + (size_t)(r >> 8) % 12;
}

static void fuzz_span_inside(span_t s, const char *base, size_t len)
{
    FUZZ_CHECK(s.base >= base && s.len <= len && (size_t)(s.base - base) <= len - s.len);
}

static void fuzz_check_request(const struct http_request *r, const char *buf, int ret)
{
    size_t n = (size_t)ret;
    FUZZ_CHECK(buf[n - 1] == '\n');
    fuzz_span_inside(r->method, buf, n);
    fuzz_span_inside(r->target, buf, n);
    fuzz_span_inside(r->path, buf, n);
    fuzz_span_inside(r->query, buf, n);
    FUZZ_CHECK(r->method.len > 0 && r->target.len > 0);
    FUZZ_CHECK(r->path.base == r->target.base && r->path.len <= r->target.len);
    FUZZ_CHECK(r->minor_version == 0 || r->minor_version == 1);
    FUZZ_CHECK(r->num_headers <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < r->num_headers; i++) {
        fuzz_span_inside(r->headers[i].name, buf, n);
        fuzz_span_inside(r->headers[i].value, buf, n);
        FUZZ_CHECK(r->headers[i].name.len > 0);
    }
    FUZZ_CHECK(!(r->chunked && r->content_length >= 0));
}

/* Spans of two parses of the same bytes at different addresses must sit at
 * the same offsets. */
static void fuzz_same_span(span_t a, const char *abase, span_t b, const char *bbase)
{
    FUZZ_CHECK(a.len == b.len && a.base - abase == b.base - bbase);
}

static void fuzz_same_request(const struct http_request *a, const char *abase,
                              const struct http_request *b, const char *bbase)
{
    fuzz_same_span(a->method, abase, b->method, bbase);
    fuzz_same_span(a->target, abase, b->target, bbase);
    fuzz_same_span(a->path, abase, b->path, bbase);
    fuzz_same_span(a->query, abase, b->query, bbase);
    FUZZ_CHECK(a->minor_version == b->minor_version && a->num_headers == b->num_headers);
    for (size_t i = 0; i < a->num_headers; i++) {
        fuzz_same_span(a->headers[i].name, abase, b->headers[i].name, bbase);
        fuzz_same_span(a->headers[i].value, abase, b->headers[i].value, bbase);
    }
    FUZZ_CHECK(a->content_length == b->content_length && a->chunked == b->chunked &&
               a->keep_alive == b->keep_alive && a->upgrade == b->upgrade &&
               a->te_other == b->te_other);
}

/* Decodes tail[0..n) at once and in random pieces (each in its own exact-size
 * buffer, the decoded bytes gathered as the calling convention describes) and
 * demands the same outcome, body and following bytes. */
static void fuzz_chunked(const char *tail, size_t n, uint64_t *seed)
{
    char *once = malloc(n + 1), *body = malloc(n + 1);
    FUZZ_CHECK(once != NULL && body != NULL);
    memcpy(once, tail, n);
    struct http_chunked d1 = {0}, d2 = {0};
    size_t once_len = n;
    ssize_t r1 = http_decode_chunked(&d1, once, &once_len);
    FUZZ_CHECK(r1 == HTTP_INCOMPLETE || r1 == HTTP_ERR_SYNTAX || r1 >= 0);
    FUZZ_CHECK(r1 < 0 || once_len + (size_t)r1 <= n);

    size_t have = 0, pos = 0;
    ssize_t r2 = HTTP_INCOMPLETE;
    while (pos < n && r2 == HTTP_INCOMPLETE) {
        size_t k = fuzz_step(seed);
        if (k > n - pos)
            k = n - pos;
        char *piece = malloc(k);
        FUZZ_CHECK(piece != NULL);
        memcpy(piece, tail + pos, k);
        size_t got = k;
        r2 = http_decode_chunked(&d2, piece, &got);
        if (r2 != HTTP_ERR_SYNTAX) {
            FUZZ_CHECK(got <= k);
            memcpy(body + have, piece, got);
            if (r2 >= 0) {
                FUZZ_CHECK(got + (size_t)r2 <= k);
                /* The following bytes: what this call left, then what was
                 * never fed. */
                memcpy(body + have + got, piece + got, (size_t)r2);
                memcpy(body + have + got + r2, tail + pos + k, n - pos - k);
                r2 += (ssize_t)(n - pos - k);
            }
            have += got;
        }
        pos += k;
        free(piece);
    }
    FUZZ_CHECK(r1 == r2);
    if (r1 != HTTP_ERR_SYNTAX) {
        FUZZ_CHECK(once_len == have && memcmp(once, body, have) == 0);
        if (r1 >= 0)
            FUZZ_CHECK(memcmp(once + have, body + have, (size_t)r1) == 0);
    }
    if (r1 > 0) {
        /* Whatever follows is the next pipelined request: parse it too. */
        struct http_request next;
        int rn = http_parse_request(once + once_len, (size_t)r1, 0, &next);
        if (rn > 0)
            fuzz_check_request(&next, once + once_len, rn);
    }
    free(once);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct http_request once, inc;
    uint64_t seed = 0xcbf29ce484222325u; /* FNV-1a of the input seeds the steps */
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3u;
    seed |= 1;

    int r1 = http_parse_request(buf, size, 0, &once);
    FUZZ_CHECK(r1 > 0 || r1 == HTTP_INCOMPLETE || r1 == HTTP_ERR_SYNTAX ||
               r1 == HTTP_ERR_TOO_MANY_HEADERS || r1 == HTTP_ERR_BAD_FRAMING);
    if (r1 > 0) {
        FUZZ_CHECK((size_t)r1 <= size);
        fuzz_check_request(&once, buf, r1);
    }

    /* The same bytes trickled in; a result other than "incomplete" ends it
     * and must be the one-shot result, since a head's end and the errors the
     * scan reports depend only on bytes already seen. */
    size_t len = 0, last_len = 0;
    int r2 = HTTP_INCOMPLETE;
    while (len < size) {
        len += fuzz_step(&seed);
        if (len > size)
            len = size;
        char *copy = malloc(len);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, buf, len);
        r2 = http_parse_request(copy, len, last_len, &inc);
        if (r2 > 0) {
            fuzz_check_request(&inc, copy, r2);
            fuzz_same_request(&once, buf, &inc, copy);
        }
        free(copy);
        if (r2 != HTTP_INCOMPLETE)
            break;
        last_len = len;
    }
    FUZZ_CHECK(r1 == r2);

    if (r1 > 0 && once.chunked)
        fuzz_chunked(buf + r1, size - (size_t)r1, &seed);
    /* Chunked bodies are rare in random inputs: decode every input as one too,
     * so the decoder's states get explored on their own. */
    fuzz_chunked(buf, size, &seed);
    return 0;
}
