/*
 * fuzz_nchanmsg.c: libFuzzer driver for ringload's readers of nginx +
 * nchan's formats (nchanmsg.h).
 *
 * The input, in an exact-size heap block (so ASan sees a read past it), is
 * read as a ws+meta.nchan message, as a "TIME:TAG" id, as an HTTP date and
 * as a long poll's (Last-Modified, Etag) split at its first newline. Every
 * span handed back must lie inside the input; a message read must read the
 * same with its body cut short; a date read must format back to its bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nchanmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_nchanmsg: check failed at line %d: %s\n", __LINE__, #cond);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int inside(span_t s, const char *b, size_t n)
{
    return s.len == 0 || (s.base >= b && s.base + s.len <= b + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *b = malloc(size ? size : 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    struct nchanmsg_meta m, m2;
    if (nchanmsg_ws_meta(span_of(b, size), &m) == 0) {
        FUZZ_CHECK(inside(m.id, b, size) && inside(m.type, b, size) && inside(m.body, b, size));
        FUZZ_CHECK(m.body.base + m.body.len == b + size);
        if (m.body.len) { /* the headers do not depend on how much body follows */
            FUZZ_CHECK(nchanmsg_ws_meta(span_of(b, size - 1), &m2) == 0);
            FUZZ_CHECK(m2.id.len == m.id.len && m2.body.len == m.body.len - 1);
        }
    }
    uint64_t v;
    if (nchanmsg_id(span_of(b, size), &v) == 0)
        FUZZ_CHECK(size >= 3 && memchr(b, ':', size));
    if (nchanmsg_http_date(span_of(b, size), &v) == 0) {
        char out[30];
        nchanmsg_fmt_http_date(v, out);
        FUZZ_CHECK(size == 29 && memcmp(out, b, 29) == 0);
    }
    const char *nl = memchr(b, '\n', size);
    if (nl) {
        size_t k = (size_t)(nl - b);
        nchanmsg_poll_key(span_of(b, k), span_of(nl + 1, size - k - 1), &v);
    }
    free(b);
    return 0;
}
