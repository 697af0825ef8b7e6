/*
 * fuzz_jsonmsg.c: libFuzzer driver for ringload's poll-answer and
 * ringcast.json frame reader.
 *
 * The input, in an exact-size heap block (so ASan sees a read past it), is
 * read as a frame and as a poll answer whose messages are all walked. Every
 * span handed back must lie inside the input, and a frame or answer read
 * whole must be refused once its last byte is cut off.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_jsonmsg: check failed at line %d: %s\n", __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int inside(span_t s, const char *b, size_t n)
{
    return s.base >= b && s.base + s.len <= b + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *b = malloc(size ? size : 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    struct jsonmsg m;
    int r = jsonmsg_frame(span_of(b, size), &m);
    FUZZ_CHECK(r >= -1 && r <= 1);
    if (r == 1)
        FUZZ_CHECK(inside(m.data, b, size));
    /* A whole object ending at the last byte: without that byte it is cut. */
    if (r >= 0 && size && b[size - 1] == '}')
        FUZZ_CHECK(jsonmsg_frame(span_of(b, size - 1), &m) == -1);
    struct jsonmsg_answer a;
    if (jsonmsg_answer(span_of(b, size), &a) == 0) {
        int k = 0;
        while ((r = jsonmsg_next(&a, &m)) == 1 && k++ < 100000)
            FUZZ_CHECK(inside(m.data, b, size));
        FUZZ_CHECK(r == 0 || r == -1 || k > 100000);
        if (size && b[size - 1] == '}')
            FUZZ_CHECK(jsonmsg_answer(span_of(b, size - 1), &a) == -1);
    }
    free(b);
    return 0;
}
