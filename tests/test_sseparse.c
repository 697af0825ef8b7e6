/*
 * test_sseparse.c: unit tests for the incremental SSE parser.
 *
 * Table-driven: each stream is parsed whole, split in two at every byte
 * position, split in three at every pair of positions (short streams), and
 * fed one byte at a time; every way must give the same events, comment
 * count, retry value and last event id. Each chunk is copied into its own
 * exact-size heap block that is freed as soon as the parser has returned, so
 * ASan catches a read past a chunk or an event span that outlives its chunk.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sseparse.h"

/* ---- harness ----------------------------------------------------------------- */

#define OUT_MAX 4096

struct run {
    char out[OUT_MAX]; /* the events, rendered */
    size_t n;
    int err;
    uint64_t comments, events;
    int64_t retry;
    char last_id[SSE_PARSE_FIELD_MAX + 1];
};

static void put(struct run *r, const char *s, size_t n)
{
    cr_assert(r->n + n < OUT_MAX);
    memcpy(r->out + r->n, s, n);
    r->n += n;
    r->out[r->n] = 0;
}

/* Bytes with \n, \r, \0 and other controls escaped, so a line per event. */
static void put_escaped(struct run *r, span_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.base[i];
        char tmp[8];
        if (c == '\n')
            put(r, "\\n", 2);
        else if (c == '\r')
            put(r, "\\r", 2);
        else if (c < 0x20 || c >= 0x7f)
            put(r, tmp, (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c));
        else
            put(r, (const char *)&c, 1);
    }
}

/* "t=<type> i=<id>[*] d=<data>\n"; the star says the event carried its id. */
static void render(struct run *r, const struct sse_event *ev)
{
    put(r, "t=", 2);
    put_escaped(r, ev->type);
    put(r, " i=", 3);
    put_escaped(r, ev->id);
    if (ev->has_id)
        put(r, "*", 1);
    put(r, " d=", 3);
    put_escaped(r, ev->data);
    put(r, "\n", 1);
}

/* Feeds stream[0..len) in the chunks that end at cuts[0..ncuts) and len. */
static void run_cuts(struct run *r, const char *stream, size_t len, size_t max_event,
                     const size_t *cuts, size_t ncuts)
{
    struct sse_parser p;
    char *buf = malloc(max_event ? max_event : 1);
    sse_parse_init(&p, buf, max_event);
    memset(r, 0, sizeof(*r));
    size_t from = 0;
    for (size_t k = 0; k <= ncuts && !r->err; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        size_t clen = to - from;
        char *chunk = malloc(clen ? clen : 1);
        memcpy(chunk, stream + from, clen);
        const char *s = chunk;
        size_t left = clen;
        do {
            struct sse_event ev;
            size_t used = 12345;
            int rc = sse_parse(&p, s, left, &used, &ev);
            if (rc < 0) {
                cr_assert_eq(rc, SSE_PARSE_ERR_TOO_BIG);
                r->err = rc;
                /* Sticky. */
                cr_assert_eq(sse_parse(&p, "\n\n", 2, &used, &ev), rc);
                break;
            }
            cr_assert(used <= left);
            if (rc == SSE_PARSE_EVENT) {
                cr_assert(used > 0);
                render(r, &ev);
            } else {
                cr_assert_eq(rc, SSE_PARSE_MORE);
                cr_assert_eq(used, left);
            }
            s += used;
            left -= used;
        } while (left > 0);
        free(chunk);
        from = to;
    }
    r->comments = p.comments;
    r->events = p.events;
    r->retry = p.retry_ms;
    span_t id = sse_parse_last_id(&p);
    memcpy(r->last_id, id.base, id.len);
    r->last_id[id.len] = 0;
    free(buf);
}

static void same(const struct run *a, const struct run *b, const char *how)
{
    cr_assert_str_eq(b->out, a->out, "%s", how);
    cr_assert_eq(b->err, a->err, "%s", how);
    if (!a->err) {
        cr_assert_eq(b->comments, a->comments, "%s", how);
        cr_assert_eq(b->retry, a->retry, "%s", how);
        cr_assert_str_eq(b->last_id, a->last_id, "%s", how);
    }
    cr_assert_eq(b->events, a->events, "%s", how);
}

/* Parses the stream every way and checks all agree; returns the whole run. */
static void run_all_ways(struct run *whole, const char *stream, size_t len, size_t max_event)
{
    run_cuts(whole, stream, len, max_event, NULL, 0);
    struct run *r = malloc(sizeof(*r));
    char how[64];
    for (size_t i = 0; i <= len; i++) {
        run_cuts(r, stream, len, max_event, &i, 1);
        snprintf(how, sizeof(how), "split at %zu", i);
        same(whole, r, how);
    }
    if (len <= 48)
        for (size_t i = 0; i <= len; i++)
            for (size_t j = i; j <= len; j++) {
                size_t cuts[2] = {i, j};
                run_cuts(r, stream, len, max_event, cuts, 2);
                snprintf(how, sizeof(how), "split at %zu and %zu", i, j);
                same(whole, r, how);
            }
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    run_cuts(r, stream, len, max_event, cuts, len);
    same(whole, r, "byte by byte");
    free(cuts);
    free(r);
}

/* ---- the table ------------------------------------------------------------------ */

struct sse_case {
    const char *stream;
    size_t len; /* 0: strlen */
    const char *events;
    uint64_t comments;
    int64_t retry;
    const char *last_id;
};

#define S(lit) lit, sizeof(lit) - 1

static const struct sse_case cases[] = {
    /* Basics, and the one optional space after the colon. */
    {S("data: hello\n\n"), "t= i= d=hello\n", 0, -1, ""},
    {S("data:hello\n\n"), "t= i= d=hello\n", 0, -1, ""},
    {S("data:  two\n\n"), "t= i= d= two\n", 0, -1, ""},
    {S("data: a:b\n\ndata::x\n\n"), "t= i= d=a:b\nt= i= d=:x\n", 0, -1, ""},
    {S("data: \n\n"), "t= i= d=\n", 0, -1, ""},
    /* Data lines are joined with LF; a bare "data" is an empty line. */
    {S("data: a\ndata: b\ndata\ndata:\n\n"), "t= i= d=a\\nb\\n\\n\n", 0, -1, ""},
    {S("data\n\n"), "t= i= d=\n", 0, -1, ""},
    /* Event types, which do not carry over. */
    {S("event: price\ndata: 3\n\ndata: 4\n\n"), "t=price i= d=3\nt= i= d=4\n", 0, -1, ""},
    {S("event: a\nevent: b\ndata: x\n\n"), "t=b i= d=x\n", 0, -1, ""},
    {S("event\ndata: x\n\n"), "t= i= d=x\n", 0, -1, ""},
    {S("data: x\nevent: late\n\n"), "t=late i= d=x\n", 0, -1, ""},
    /* Ids persist; an empty id resets; an id with NUL is ignored. */
    {S("id: 1\ndata: a\n\ndata: b\n\n"), "t= i=1* d=a\nt= i=1 d=b\n", 0, -1, "1"},
    {S("id: 5\ndata: a\n\nid\ndata: b\n\n"), "t= i=5* d=a\nt= i=* d=b\n", 0, -1, ""},
    {S("id: 7\ndata: a\n\nid: 8\0x\ndata: b\n\n"), "t= i=7* d=a\nt= i=7 d=b\n", 0, -1, "7"},
    {S("id: 2\nid: 3\ndata: a\n\n"), "t= i=3* d=a\n", 0, -1, "3"},
    /* No data, no event; the id still becomes the last event id, and the
     * event type is forgotten. */
    {S("event: x\nid: 3\n\ndata: y\n\n"), "t= i=3 d=y\n", 0, -1, "3"},
    {S("id: 4\n\n"), "", 0, -1, "4"},
    /* Set but not yet ended by a blank line: not the last event id yet. */
    {S("id: 1\ndata: a\n\nid: 2\n"), "t= i=1* d=a\n", 0, -1, "1"},
    /* Line ends: LF, CRLF, CR, and mixes. */
    {S("data: a\r\n\r\n"), "t= i= d=a\n", 0, -1, ""},
    {S("data: a\r\r"), "t= i= d=a\n", 0, -1, ""},
    {S("data: a\r\ndata: b\rdata: c\n\r\n"), "t= i= d=a\\nb\\nc\n", 0, -1, ""},
    {S("data: a\r\r\ndata: b\n\n"), "t= i= d=a\nt= i= d=b\n", 0, -1, ""},
    {S("data: a\n\r\n\rdata: b\r\n\n"), "t= i= d=a\nt= i= d=b\n", 0, -1, ""},
    {S("id: 1\r\nevent: e\rdata: x\r\r\n"), "t=e i=1* d=x\n", 0, -1, "1"},
    {S("data: a\rb\n\n"), "t= i= d=a\n", 0, -1, ""}, /* "b" is a field named b */
    /* Comments, counted, and heartbeats that dispatch nothing. */
    {S(": ringcast\nretry: 3000\n\nid: 1\ndata: hello\n\n: hb\n\n"), "t= i=1* d=hello\n", 2, 3000,
     "1"},
    {S(":\n:\r:x\r\ndata: y\n:between\n\n"), "t= i= d=y\n", 4, -1, ""},
    /* retry: only digits, at least one; saturates. */
    {S("retry: 1500\n\n"), "", 0, 1500, ""},
    {S("retry:0\n"), "", 0, 0, ""},
    {S("retry: 1500\nretry: 30x\nretry:\nretry:  5\nretry: -1\nretry\n"), "", 0, 1500, ""},
    {S("retry: 99999999999999999999999\n"), "", 0, INT64_MAX, ""},
    {S("retry: 12\nretry: 9223372036854775807\n"), "", 0, INT64_MAX, ""},
    /* Unknown and near-miss names are ignored; names are case-sensitive. */
    {S("foo: bar\ndata: x\n\n"), "t= i= d=x\n", 0, -1, ""},
    {S("dat: x\ndatas: x\nData: x\n data: x\ndata : x\n\n"), "", 0, -1, ""},
    {S("eventX: a\nidd: 3\nretryy: 7\nverylongfieldname: 1\n\n"), "", 0, -1, ""},
    /* A byte order mark: skipped once at the start, nowhere else. */
    {S("\xEF\xBB\xBF"
       "data: a\n\n"),
     "t= i= d=a\n", 0, -1, ""},
    {S("\xEF\xBB\xBF\xEF\xBB\xBF"
       "data: a\n\ndata: b\n\n"),
     "t= i= d=b\n", 0, -1, ""},
    {S("\xEF\xBB"
       "data: a\n\ndata: b\n\n"),
     "t= i= d=b\n", 0, -1, ""},
    {S("\xEF"
       "data: a\n\ndata: b\n\n"),
     "t= i= d=b\n", 0, -1, ""},
    {S("\xEF\xBB\xBF:c\n\xEF\xBB\xBF"
       "data: a\n\n"),
     "", 1, -1, ""},
    {S("\xEF\xBB\n"
       "data: a\n\n"),
     "t= i= d=a\n", 0, -1, ""},
    {S("\xEF\n"
       "data: a\n\n"),
     "t= i= d=a\n", 0, -1, ""},
    {S("\xEF\xBB\xBF\n"
       "data: a\n\n"),
     "t= i= d=a\n", 0, -1, ""},
    {S("data: \xEF\xBB\xBF\n\n"), "t= i= d=\\xef\\xbb\\xbf\n", 0, -1, ""},
    /* Blank lines before anything, and an unfinished event at the end. */
    {S("\n\r\n\rdata: a\n\n"), "t= i= d=a\n", 0, -1, ""},
    {S("data: a\n"), "", 0, -1, ""},
    {S("data: a\n\ndata: b"), "t= i= d=a\n", 0, -1, ""},
    {S(""), "", 0, -1, ""},
    /* Bytes are bytes: NUL and high bytes in data pass through. */
    {S("data: a\0b\xff\n\n"), "t= i= d=a\\x00b\\xff\n", 0, -1, ""},
    /* What ringcast sends, gap event included. */
    {S(": ringcast\nretry: 3000\n\nid: 41\ndata: x\n\nevent: gap\n"
       "data: {\"channel\":\"news\",\"requested\":3,\"first\":41}\n\nid: 42\nevent: price\n"
       "data: {\"p\":3}\n\n"),
     "t= i=41* d=x\nt=gap i=41 d={\"channel\":\"news\",\"requested\":3,\"first\":41}\n"
     "t=price i=42* d={\"p\":3}\n",
     1, 3000, "42"},
};

Test(sseparse, table_every_split)
{
    struct run *whole = malloc(sizeof(*whole));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct sse_case *c = &cases[i];
        run_all_ways(whole, c->stream, c->len, 1024);
        cr_assert_eq(whole->err, 0, "case %zu", i);
        cr_assert_str_eq(whole->out, c->events, "case %zu", i);
        cr_assert_eq(whole->comments, c->comments, "case %zu", i);
        cr_assert_eq(whole->retry, c->retry, "case %zu", i);
        cr_assert_str_eq(whole->last_id, c->last_id, "case %zu", i);
    }
    free(whole);
}

/* ---- limits ----------------------------------------------------------------------- */

struct limit_case {
    const char *stream;
    size_t max_event;
    const char *events; /* dispatched before the error, if any */
    int err;
};

static const struct limit_case limits[] = {
    {"data: 12345678\n\n", 8, "t= i= d=12345678\n", 0},
    {"data: 123456789\n\n", 8, "", SSE_PARSE_ERR_TOO_BIG},
    {"data: 1234\ndata: 567\n\n", 8, "t= i= d=1234\\n567\n", 0},
    {"data: 1234\ndata: 5678\n\n", 8, "", SSE_PARSE_ERR_TOO_BIG},
    {"data: ok\n\ndata: 123456789\n\ndata: never\n\n", 8, "t= i= d=ok\n", SSE_PARSE_ERR_TOO_BIG},
    {"data\ndata\n\n", 1, "t= i= d=\\n\n", 0},
    {"data\ndata\ndata\n\n", 1, "", SSE_PARSE_ERR_TOO_BIG},
    {"data:\n\n", 0, "t= i= d=\n", 0},
    {"data: x\n\n", 0, "", SSE_PARSE_ERR_TOO_BIG},
    /* Comments and unknown fields are not held, so need no room. */
    {": a very long comment that is much longer than the limit\n"
     "x: a very long field that is much longer than the limit\ndata: y\n\n",
     4, "t= i= d=y\n", 0},
    /* Ids and event types up to SSE_PARSE_FIELD_MAX (64) bytes. */
    {"id: 1234567890123456789012345678901234567890123456789012345678901234\ndata: y\n\n", 4,
     "t= i=1234567890123456789012345678901234567890123456789012345678901234* d=y\n", 0},
    {"id: 12345678901234567890123456789012345678901234567890123456789012345\ndata: y\n\n", 4, "",
     SSE_PARSE_ERR_TOO_BIG},
    {"event: 1234567890123456789012345678901234567890123456789012345678901234\ndata: y\n\n", 4,
     "t=1234567890123456789012345678901234567890123456789012345678901234 i= d=y\n", 0},
    {"event: 12345678901234567890123456789012345678901234567890123456789012345\n\n", 4, "",
     SSE_PARSE_ERR_TOO_BIG},
};

Test(sseparse, limits_every_split)
{
    struct run *whole = malloc(sizeof(*whole));
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        const struct limit_case *c = &limits[i];
        run_all_ways(whole, c->stream, strlen(c->stream), c->max_event);
        cr_assert_eq(whole->err, c->err, "case %zu", i);
        cr_assert_str_eq(whole->out, c->events, "case %zu", i);
    }
    cr_assert_eq(SSE_PARSE_ERR_TOO_BIG, -EMSGSIZE);
    free(whole);
}

/* ---- calling convention and zero copy ----------------------------------------------- */

Test(sseparse, one_event_per_call_and_zero_copy)
{
    static const char stream[] = "id: 1\ndata: first\n\nid: 2\ndata: a\ndata: b\n\nda";
    char buf[64];
    struct sse_parser p;
    struct sse_event ev;
    size_t used;
    sse_parse_init(&p, buf, sizeof(buf));
    cr_assert_eq(p.retry_ms, -1);

    const char *s = stream;
    size_t left = sizeof(stream) - 1;
    cr_assert_eq(sse_parse(&p, s, left, &used, &ev), SSE_PARSE_EVENT);
    cr_assert_eq(used, strlen("id: 1\ndata: first\n\n"));
    cr_assert(span_eq(ev.data, SPAN_LIT("first")));
    cr_assert_eq(ev.data.base, stream + strlen("id: 1\ndata: "),
                 "a single data line is not copied");
    cr_assert(span_eq(ev.id, SPAN_LIT("1")) && ev.has_id);
    cr_assert(span_eq(sse_parse_last_id(&p), SPAN_LIT("1")));
    s += used, left -= used;

    cr_assert_eq(sse_parse(&p, s, left, &used, &ev), SSE_PARSE_EVENT);
    cr_assert(span_eq(ev.data, SPAN_LIT("a\nb")));
    cr_assert_eq(ev.data.base, buf, "joined lines are in the caller's buffer");
    s += used, left -= used;

    cr_assert_eq(sse_parse(&p, s, left, &used, &ev), SSE_PARSE_MORE);
    cr_assert_eq(used, left);
    cr_assert_eq(p.events, 2);

    /* An empty chunk is fine. */
    cr_assert_eq(sse_parse(&p, "", 0, &used, &ev), SSE_PARSE_MORE);
    cr_assert_eq(used, 0);
}

Test(sseparse, data_split_across_chunks_is_copied)
{
    char buf[64], c1[] = "data: hel", c2[] = "lo\n\n";
    struct sse_parser p;
    struct sse_event ev;
    size_t used;
    sse_parse_init(&p, buf, sizeof(buf));
    cr_assert_eq(sse_parse(&p, c1, strlen(c1), &used, &ev), SSE_PARSE_MORE);
    memset(c1, 'X', sizeof(c1) - 1); /* the caller reuses its buffer */
    cr_assert_eq(sse_parse(&p, c2, strlen(c2), &used, &ev), SSE_PARSE_EVENT);
    cr_assert(span_eq(ev.data, SPAN_LIT("hello")));

    /* A whole line in one chunk whose blank line comes in the next. */
    char c3[] = "data: world\n", c4[] = "\n";
    cr_assert_eq(sse_parse(&p, c3, strlen(c3), &used, &ev), SSE_PARSE_MORE);
    memset(c3, 'X', sizeof(c3) - 1);
    cr_assert_eq(sse_parse(&p, c4, strlen(c4), &used, &ev), SSE_PARSE_EVENT);
    cr_assert(span_eq(ev.data, SPAN_LIT("world")));
}

Test(sseparse, cr_then_lf_in_next_chunk)
{
    /* The CR ends the blank line and dispatches; the LF that follows in the
     * next chunk belongs to it and must not count as another line end. */
    char buf[16];
    struct sse_parser p;
    struct sse_event ev;
    size_t used;
    sse_parse_init(&p, buf, sizeof(buf));
    cr_assert_eq(sse_parse(&p, "data: a\r\n\r", 10, &used, &ev), SSE_PARSE_EVENT);
    cr_assert_eq(used, 10);
    cr_assert_eq(sse_parse(&p, "\ndata: b\r", 9, &used, &ev), SSE_PARSE_MORE);
    cr_assert_eq(sse_parse(&p, "\n\r", 2, &used, &ev), SSE_PARSE_EVENT);
    cr_assert(span_eq(ev.data, SPAN_LIT("b")));
    cr_assert_eq(p.events, 2);
}

Test(sseparse, large_event_in_small_chunks)
{
    /* A 60 KB event, many data lines, fed in 7-byte chunks. */
    size_t lines = 2000, cap = 70000;
    char *stream = malloc(lines * 40 + 16), *want = malloc(cap), *buf = malloc(cap);
    size_t n = 0, w = 0;
    for (size_t i = 0; i < lines; i++) {
        char line[40];
        int k = snprintf(line, sizeof(line), "line %06zu of the event", i);
        n += (size_t)sprintf(stream + n, "data: %s\r\n", line);
        if (i)
            want[w++] = '\n';
        memcpy(want + w, line, (size_t)k);
        w += (size_t)k;
    }
    n += (size_t)sprintf(stream + n, "\r\n");
    struct sse_parser p;
    struct sse_event ev;
    sse_parse_init(&p, buf, cap);
    int got = 0;
    for (size_t off = 0; off < n; off += 7) {
        size_t k = n - off < 7 ? n - off : 7, used;
        int rc = sse_parse(&p, stream + off, k, &used, &ev);
        if (rc == SSE_PARSE_EVENT) {
            cr_assert_eq(ev.data.len, w);
            cr_assert_eq(memcmp(ev.data.base, want, w), 0);
            got++;
        }
    }
    cr_assert_eq(got, 1);
    free(stream);
    free(want);
    free(buf);
}
