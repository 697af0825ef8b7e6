/*
 * test_nchanmsg.c: unit tests for ringload's readers of nginx + nchan's
 * subscriber formats: the ws+meta.nchan message, "TIME:TAG" ids, the HTTP
 * dates and Etags of its long poll.
 *
 * Table-driven. Every input is copied into an exact-size heap block, so ASan
 * catches a read past its end. Every prefix of a valid message is fed too:
 * one cut before the blank line that ends its headers must be refused, one
 * cut inside the body is a message with that shorter body.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "nchanmsg.h"

static char *dup_exact(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    cr_assert(b);
    memcpy(b, s, n);
    return b;
}

static int span_is(span_t s, const char *want)
{
    return want ? s.len == strlen(want) && memcmp(s.base, want, s.len) == 0 : s.base == NULL;
}

struct meta_case {
    const char *in;
    int want;
    const char *id, *type, *body; /* type NULL: no content-type line */
};

static const struct meta_case metas[] = {
    {"id: 1795476707:0\ncontent-type: application/x-www-form-urlencoded\n\ns=1 t=5 c=0 xx", 0,
     "1795476707:0", "application/x-www-form-urlencoded", "s=1 t=5 c=0 xx"},
    {"id: 1:2\n\nbody", 0, "1:2", NULL, "body"},
    {"id: 1:2\n\n", 0, "1:2", NULL, ""},
    {"id: 1:2\ncontent-type: \n\nb", 0, "1:2", "", "b"},
    {"ID: 1:2\nContent-Type: text/plain\n\nb\n\nc", 0, "1:2", "text/plain", "b\n\nc"},
    {"id: \n\nb", 0, "", NULL, "b"}, /* the id's form is nchanmsg_id's business */
    {"id: 1:2\n\n\n", 0, "1:2", NULL, "\n"},
    {"", -1, NULL, NULL, NULL},
    {"s=1 t=5 c=0 xx", -1, NULL, NULL, NULL},
    {"id:1:2\n\nb", -1, NULL, NULL, NULL},
    {"id: 1:2\r\n\r\nb", -1, NULL, NULL, NULL},
    {"\nid: 1:2\n\nb", -1, NULL, NULL, NULL},
    {"id: 1:2\nevent: x\n\nb", -1, NULL, NULL, NULL},
    {"id: 1:2\ncontent-type: a\ncontent-type: b\n\nb", -1, NULL, NULL, NULL},
    {"content-type: a\nid: 1:2\n\nb", -1, NULL, NULL, NULL},
    {"id: 1:2\nb", -1, NULL, NULL, NULL},
};

Test(nchanmsg, ws_meta)
{
    for (size_t k = 0; k < sizeof(metas) / sizeof(metas[0]); k++) {
        const struct meta_case *c = &metas[k];
        size_t n = strlen(c->in);
        char *b = dup_exact(c->in, n);
        struct nchanmsg_meta m;
        int r = nchanmsg_ws_meta(span_of(b, n), &m);
        cr_assert_eq(r, c->want, "%s: %d", c->in, r);
        if (r == 0) {
            cr_assert(span_is(m.id, c->id), "%s: id", c->in);
            cr_assert(c->type ? span_is(m.type, c->type) : m.type.len == 0, "%s: type", c->in);
            cr_assert(span_is(m.body, c->body), "%s: body", c->in);
            cr_assert(m.body.base + m.body.len == b + n);
        }
        free(b);
    }
}

/* Every prefix of each valid message: refused while the blank line is not
 * whole, else the same headers and the body cut to what is left. */
Test(nchanmsg, ws_meta_every_truncation)
{
    for (size_t k = 0; k < sizeof(metas) / sizeof(metas[0]); k++) {
        const struct meta_case *c = &metas[k];
        if (c->want != 0)
            continue;
        size_t n = strlen(c->in), hdr = n - strlen(c->body);
        for (size_t cut = 0; cut < n; cut++) {
            char *b = dup_exact(c->in, cut);
            struct nchanmsg_meta m;
            int r = nchanmsg_ws_meta(span_of(b, cut), &m);
            if (cut < hdr) {
                cr_assert_eq(r, -1, "%s cut at %zu", c->in, cut);
            } else {
                cr_assert_eq(r, 0, "%s cut at %zu", c->in, cut);
                cr_assert(span_is(m.id, c->id));
                cr_assert_eq(m.body.len, cut - hdr);
            }
            free(b);
        }
    }
}

struct id_case {
    const char *in;
    int want;
    uint64_t key;
};

static const struct id_case ids[] = {
    {"1795476707:0", 0, (uint64_t)1795476707 << 24},
    {"1795476707:12", 0, (uint64_t)1795476707 << 24 | 12},
    {"0:0", 0, 0},
    {"549755813887:16777215", 0, ((uint64_t)549755813887 << 24) | 16777215},
    {"549755813888:0", -1, 0}, /* 2^39 */
    {"1:16777216", -1, 0},     /* 2^24 */
    {"", -1, 0},
    {":", -1, 0},
    {"1:", -1, 0},
    {":1", -1, 0},
    {"1", -1, 0},
    {"1:2:3", -1, 0},
    {"1:2,3:4", -1, 0},
    {" 1:2", -1, 0},
    {"1:2 ", -1, 0},
    {"-1:2", -1, 0},
    {"1:0x2", -1, 0},
    {"99999999999999999999:1", -1, 0},
};

Test(nchanmsg, id)
{
    for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
        const struct id_case *c = &ids[k];
        size_t n = strlen(c->in);
        char *b = dup_exact(c->in, n);
        uint64_t key = 12345;
        int r = nchanmsg_id(span_of(b, n), &key);
        cr_assert_eq(r, c->want, "%s", c->in);
        if (r == 0)
            cr_assert_eq(key, c->key, "%s", c->in);
        else
            cr_assert_eq(key, 12345, "%s: *key written on error", c->in);
        free(b);
    }
}

struct date_case {
    const char *in;
    int want;
    uint64_t secs;
};

static const struct date_case dates[] = {
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0, 0},
    {"Mon, 23 Nov 2026 23:31:57 GMT", 0, 1795476717},
    {"Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777},
    {"Tue, 29 Feb 2000 12:00:00 GMT", 0, 951825600},
    {"Fri, 31 Dec 9999 23:59:59 GMT", 0, 253402300799},
    {"Mon, 29 Feb 2100 00:00:00 GMT", -1, 0}, /* 2100 is not a leap year */
    {"Wed, 31 Dec 1969 23:59:59 GMT", -1, 0},
    {"Tue, 23 Nov 2026 23:31:57 GMT", -1, 0}, /* wrong weekday */
    {"Mon, 23 Nov 2026 24:00:00 GMT", -1, 0},
    {"Mon, 23 Nov 2026 23:60:00 GMT", -1, 0},
    {"Mon, 23 Nov 2026 23:31:60 GMT", -1, 0}, /* a leap second would not format back */
    {"Mon, 00 Nov 2026 23:31:57 GMT", -1, 0},
    {"Mon, 31 Nov 2026 23:31:57 GMT", -1, 0},
    {"Mon, 23 Nox 2026 23:31:57 GMT", -1, 0},
    {"Mon, 23 Nov 2026 23:31:57 UTC", -1, 0},
    {"Mon, 23 Nov 2026 23:31:57 GMT ", -1, 0},
    {"Mon, 23 Nov 2026 23:31:57", -1, 0},
    {"Monday, 23-Nov-26 23:31:57 GMT", -1, 0}, /* RFC 850 form */
    {"Mon Nov 23 23:31:57 2026", -1, 0},       /* asctime form */
    {"Mon, 2x Nov 2026 23:31:57 GMT", -1, 0},
    {"", -1, 0},
};

Test(nchanmsg, http_date)
{
    for (size_t k = 0; k < sizeof(dates) / sizeof(dates[0]); k++) {
        const struct date_case *c = &dates[k];
        size_t n = strlen(c->in);
        char *b = dup_exact(c->in, n);
        uint64_t secs = 1;
        int r = nchanmsg_http_date(span_of(b, n), &secs);
        cr_assert_eq(r, c->want, "%s", c->in);
        if (r == 0) {
            cr_assert_eq(secs, c->secs, "%s: %llu", c->in, (unsigned long long)secs);
            char out[30];
            nchanmsg_fmt_http_date(secs, out);
            cr_assert_str_eq(out, c->in); /* formatting gives the same bytes back */
        }
        free(b);
    }
}

/* Formatting and reading agree on every day of 1970-2200, at varied times. */
Test(nchanmsg, http_date_round_trip)
{
    for (uint64_t day = 0; day < 84000; day++) {
        uint64_t secs = day * 86400 + (day * 7919) % 86400;
        char out[30];
        nchanmsg_fmt_http_date(secs, out);
        uint64_t back;
        cr_assert_eq(nchanmsg_http_date(span_of(out, strlen(out)), &back), 0, "%s", out);
        cr_assert_eq(back, secs, "%s", out);
    }
}

Test(nchanmsg, poll_key)
{
    uint64_t key;
    cr_assert_eq(nchanmsg_poll_key(SPAN_LIT("Mon, 23 Nov 2026 23:31:57 GMT"), SPAN_LIT("1"), &key),
                 0);
    cr_assert_eq(key, (uint64_t)1795476717 << 24 | 1);
    cr_assert_eq(nchanmsg_poll_key(SPAN_LIT("Mon, 23 Nov 2026 23:31:57 GMT"), SPAN_NULL, &key), -1);
    cr_assert_eq(nchanmsg_poll_key(SPAN_NULL, SPAN_LIT("1"), &key), -1);
    cr_assert_eq(
        nchanmsg_poll_key(SPAN_LIT("Mon, 23 Nov 2026 23:31:57 GMT"), SPAN_LIT("\"1\""), &key), -1);
    cr_assert_eq(
        nchanmsg_poll_key(SPAN_LIT("Mon, 23 Nov 2026 23:31:57 GMT"), SPAN_LIT("16777216"), &key),
        -1);
    /* A later second orders after any counter of the one before. */
    uint64_t a, b;
    nchanmsg_poll_key(SPAN_LIT("Mon, 23 Nov 2026 23:31:57 GMT"), SPAN_LIT("500"), &a);
    nchanmsg_poll_key(SPAN_LIT("Mon, 23 Nov 2026 23:31:58 GMT"), SPAN_LIT("0"), &b);
    cr_assert_lt(a, b);
}
