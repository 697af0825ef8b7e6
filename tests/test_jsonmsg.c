/*
 * test_jsonmsg.c: unit tests for ringload's reader of poll answers and
 * ringcast.json WebSocket frames.
 *
 * Table-driven. Every input is copied into an exact-size heap block, so ASan
 * catches a read past its end; every proper prefix of a valid input must be
 * refused (the reader takes whole objects only), and data strings holding
 * quotes, braces and key-like text must not confuse it.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "jsonmsg.h"

static char *dup_exact(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    cr_assert(b);
    memcpy(b, s, n);
    return b;
}

/* Reads a frame from an exact-size copy of s[0..n); the data is copied to
 * data_out (the copy is freed before returning). */
static char data_out[256];

static int frame(const char *s, size_t n, struct jsonmsg *m)
{
    char *b = dup_exact(s, n);
    int r = jsonmsg_frame(span_of(b, n), m);
    if (r == 1) { /* the data span must lie inside the input */
        cr_assert(m->data.base >= b && m->data.base + m->data.len <= b + n);
        cr_assert(m->data.len < sizeof(data_out));
        memcpy(data_out, m->data.base, m->data.len);
        m->data.base = data_out;
    }
    free(b);
    return r;
}

struct frame_case {
    const char *in;
    int want;
    uint64_t id;
    const char *data;
};

static const struct frame_case frames[] = {
    {"{\"channel\":\"ch3\",\"id\":7,\"data\":\"s=1 t=2 c=3 xxxx\"}", 1, 7, "s=1 t=2 c=3 xxxx"},
    {"{\"channel\":\"news\",\"id\":3,\"event\":\"e\",\"data\":\"\"}", 1, 3, ""},
    {"{\"channel\":\"a\",\"id\":18446744073709551615,\"data\":\"x\"}", 1, UINT64_MAX, "x"},
    {"{\"channel\":\"a\",\"id\":1,\"data\":\"\\\"id\\\":9,{\\\"data\\\":\\\"}]\"}", 1, 1,
     "\\\"id\\\":9,{\\\"data\\\":\\\"}]"},
    {"{\"channel\":\"a\",\"id\":1,\"event\":\"\\\"data\\\":\",\"data\":\"y\"}", 1, 1, "y"},
    {"{\"gap\":{\"channel\":\"news\",\"requested\":3,\"first\":41}}", 0, 0, NULL},
    {"{\"channel\":\"a\",\"id\":18446744073709551616,\"data\":\"x\"}", -1, 0, NULL},
    {"{\"channel\":\"a\",\"data\":\"x\"}", -1, 0, NULL},
    {"{\"channel\":\"a\",\"id\":1}", -1, 0, NULL},
    {"{\"channel\":\"a\",\"id\":\"1\",\"data\":\"x\"}", -1, 0, NULL},
    {"{\"channel\":\"a\",\"id\":1,\"data\":2}", -1, 0, NULL},
    {"{\"channel\":\"a\",\"id\":1,\"data\":\"x\"} junk", -1, 0, NULL},
    {"[1]", -1, 0, NULL},
    {"", -1, 0, NULL},
};

Test(jsonmsg, frames)
{
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        const struct frame_case *c = &frames[i];
        struct jsonmsg m = {0};
        int r = frame(c->in, strlen(c->in), &m);
        cr_assert_eq(r, c->want, "case %zu (%s): %d, want %d", i, c->in, r, c->want);
        if (r == 1) {
            cr_assert_eq(m.id, c->id, "case %zu id", i);
            cr_assert(span_eq(m.data, span_cstr(c->data)), "case %zu data %.*s", i, (int)m.data.len,
                      m.data.base);
        }
    }
}

Test(jsonmsg, frame_prefixes_are_refused)
{
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        if (frames[i].want < 0)
            continue;
        size_t n = strlen(frames[i].in);
        for (size_t k = 0; k < n; k++) {
            struct jsonmsg m;
            cr_assert_eq(frame(frames[i].in, k, &m), -1, "case %zu cut at %zu", i, k);
        }
    }
}

static const char *answer_ok =
    "{\"channel\":\"ch0\",\"messages\":[{\"id\":2,\"event\":\"p\",\"data\":\"a{]\\\"\"},"
    "{\"id\":3,\"data\":\"b\"}],\"last_id\":3,\"gap\":{\"requested\":1,\"first\":2}}\n";

Test(jsonmsg, answer)
{
    size_t n = strlen(answer_ok);
    char *b = dup_exact(answer_ok, n);
    struct jsonmsg_answer a;
    struct jsonmsg m;
    cr_assert_eq(jsonmsg_answer(span_of(b, n), &a), 0);
    cr_assert_eq(a.last_id, 3);
    cr_assert_eq(a.gap, 1);
    cr_assert_eq(jsonmsg_next(&a, &m), 1);
    cr_assert_eq(m.id, 2);
    cr_assert(span_eq(m.data, SPAN_LIT("a{]\\\"")));
    cr_assert_eq(jsonmsg_next(&a, &m), 1);
    cr_assert_eq(m.id, 3);
    cr_assert(span_eq(m.data, SPAN_LIT("b")));
    cr_assert_eq(jsonmsg_next(&a, &m), 0);
    cr_assert_eq(jsonmsg_next(&a, &m), 0);
    free(b);
}

Test(jsonmsg, answer_empty_and_refused)
{
    struct jsonmsg_answer a;
    struct jsonmsg m;
    const char *empty = "{\"channel\":\"c\",\"messages\":[],\"last_id\":0}\n";
    cr_assert_eq(jsonmsg_answer(span_cstr(empty), &a), 0);
    cr_assert_eq(a.last_id, 0);
    cr_assert_eq(a.gap, 0);
    cr_assert_eq(jsonmsg_next(&a, &m), 0);
    const char *bad[] = {
        "{\"channels\":[{\"channel\":\"c\",\"messages\":[],\"last_id\":0}]}",
        "{\"channel\":\"c\",\"messages\":[],\"last_id\":\"0\"}",
        "{\"channel\":\"c\",\"messages\":{},\"last_id\":0}",
        "{\"channel\":\"c\",\"last_id\":0}",
        "{\"error\":\"bad since\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(jsonmsg_answer(span_cstr(bad[i]), &a), -1, "bad %zu", i);
    const char *bad_elem = "{\"channel\":\"c\",\"messages\":[{\"id\":1},7],\"last_id\":1}";
    cr_assert_eq(jsonmsg_answer(span_cstr(bad_elem), &a), 0);
    cr_assert_eq(jsonmsg_next(&a, &m), -1);
}

Test(jsonmsg, answer_prefixes_are_refused)
{
    size_t n = strlen(answer_ok) - 1; /* without the newline it is still whole */
    for (size_t k = 0; k < n; k++) {
        char *b = dup_exact(answer_ok, k);
        struct jsonmsg_answer a;
        cr_assert_eq(jsonmsg_answer(span_of(b, k), &a), -1, "cut at %zu", k);
        free(b);
    }
}
