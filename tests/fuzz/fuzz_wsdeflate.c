/*
 * fuzz_wsdeflate.c: libFuzzer driver for permessage-deflate.
 *
 * The first input byte picks what the rest is. Even: a Sec-WebSocket-
 * Extensions value, parsed from an exact-size copy (ASan sees any read past
 * its end); an accepted offer must give parameters in range and an answer
 * that fits and re-parses to the same parameters. Odd: a client's compressed
 * message, inflated under a cap drawn from the byte, with and without a kept
 * context; the result must be an error or at most the cap, and whatever
 * inflated must compress and inflate back to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsdeflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_wsdeflate: check failed at line %d: %s\n", __LINE__, #cond);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void fuzz_offer(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    struct wsdeflate_params p;
    int rc = wsdeflate_negotiate(span_of(copy, size), &p);
    free(copy);
    FUZZ_CHECK(rc == 0 || rc == 1);
    if (!rc)
        return;
    FUZZ_CHECK(p.client_no_context_takeover <= 1);
    FUZZ_CHECK(p.server_max_window_bits == 0 ||
               (p.server_max_window_bits >= 9 && p.server_max_window_bits <= 15));
    FUZZ_CHECK(p.client_max_window_bits == 0 ||
               (p.client_max_window_bits >= 8 && p.client_max_window_bits <= 15));
    char out[WSDEFLATE_RESPONSE_MAX];
    size_t n = wsdeflate_response(&p, out);
    FUZZ_CHECK(n < WSDEFLATE_RESPONSE_MAX);
    struct wsdeflate_params q;
    FUZZ_CHECK(wsdeflate_negotiate(span_of(out, n), &q) == 1);
    FUZZ_CHECK(q.client_no_context_takeover == p.client_no_context_takeover);
    FUZZ_CHECK(q.server_max_window_bits == p.server_max_window_bits);
}

static struct wsdeflate z; /* kept across inputs, as a worker keeps it */

static void fuzz_inflate(uint8_t sel, const uint8_t *data, size_t size)
{
    static const size_t caps[4] = {0, 100, 4096, 65536};
    size_t cap = caps[(sel >> 1) & 3];
    span_t in = span_of((const char *)data, size), out;
    struct wsdeflate_inflater *d = (sel & 8) ? wsdeflate_inflater_new() : NULL;
    size_t before = z.icap;
    int rc = wsdeflate_inflate(&z, d, in, cap, &out);
    wsdeflate_inflater_free(d);
    FUZZ_CHECK(rc == 0 || rc == WSDEFLATE_ERR_TOO_BIG || rc == WSDEFLATE_ERR_DATA);
    FUZZ_CHECK(z.icap <= (before > cap + 1 ? before : cap + 1)); /* never past the cap */
    if (rc)
        return;
    FUZZ_CHECK(out.len <= cap);
    char *copy = malloc(out.len ? out.len : 1);
    memcpy(copy, out.base, out.len);
    span_t part = span_of(copy, out.len), c, back;
    FUZZ_CHECK(wsdeflate_compress(&z, (sel >> 4) & 1, &part, 1, &c) == 0);
    char *cc = malloc(c.len ? c.len : 1);
    memcpy(cc, c.base, c.len);
    FUZZ_CHECK(wsdeflate_inflate(&z, NULL, span_of(cc, c.len), cap, &back) == 0);
    FUZZ_CHECK(back.len == out.len && memcmp(back.base, copy, out.len) == 0);
    free(cc);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_inflate(data[0], data + 1, size - 1);
    else
        fuzz_offer(data + 1, size - 1);
    return 0;
}
