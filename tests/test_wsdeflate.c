/*
 * test_wsdeflate.c: unit tests for permessage-deflate.
 *
 * The offer parser is table-driven: each Sec-WebSocket-Extensions value must
 * give the parameters the table names, or be declined (invalid, unsupported
 * or malformed offers decline the extension, never fail the handshake), and
 * every prefix of an input must be parsed without reading past its end (a
 * heap copy of exactly that length, so ASan sees an overread). The zlib side
 * round-trips messages through the compressor and both kinds of inflater
 * (per message and with the context kept), checks the 00 00 ff ff tail is
 * gone, that a deflate bomb stops at the cap, and cross-checks against
 * frames produced by zlib directly, as a client would. One test prints the
 * size and CPU time of compressing a 1 KiB JSON-like message (not asserted).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "msg.h"
#include "ws.h"

/* From ASan's allocator interface, as in test_msg.c; weak so that a build
 * without ASan skips the count. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));
#include "wsdeflate.h"

struct ocase {
    const char *name;
    const char *value;
    int accepted;
    uint8_t cnct, smwb, cmwb; /* expected parameters when accepted */
    const char *response;
};

static const struct ocase offers[] = {
    {"bare", "permessage-deflate", 1, 0, 0, 0, "permessage-deflate; server_no_context_takeover"},
    {"chrome", "permessage-deflate; client_max_window_bits", 1, 0, 0, 15,
     "permessage-deflate; server_no_context_takeover"},
    {"firefox", "permessage-deflate", 1, 0, 0, 0, NULL},
    {"python websockets", "permessage-deflate; client_max_window_bits", 1, 0, 0, 15, NULL},
    {"client nct", "permessage-deflate; client_no_context_takeover", 1, 1, 0, 0,
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
    {"all four",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=10; client_max_window_bits=12",
     1, 1, 10, 12,
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=10"},
    {"smwb 15", "permessage-deflate;server_max_window_bits=15", 1, 0, 15, 0,
     "permessage-deflate; server_no_context_takeover; server_max_window_bits=15"},
    {"smwb 9", "permessage-deflate; server_max_window_bits=9", 1, 0, 9, 0, NULL},
    {"quoted value", "permessage-deflate; server_max_window_bits=\"12\"", 1, 0, 12, 0, NULL},
    {"quoted escaped", "permessage-deflate; client_max_window_bits=\"1\\3\"", 1, 0, 0, 13, NULL},
    {"spaces and tabs", " permessage-deflate \t;\tclient_max_window_bits = 9 , x", 1, 0, 0, 9,
     NULL},
    {"case", "PerMessage-Deflate; Client_No_Context_Takeover", 1, 1, 0, 0, NULL},
    {"second offer taken", "permessage-deflate; server_max_window_bits=8, permessage-deflate", 1, 0,
     0, 0, NULL},
    {"after another extension", "x-webkit-deflate-frame; max_window_bits=8, permessage-deflate", 1,
     0, 0, 0, NULL},
    {"first acceptable wins", "permessage-deflate; client_no_context_takeover, permessage-deflate",
     1, 1, 0, 0, NULL},
    {"bad offer then good", "permessage-deflate; foo, permessage-deflate; client_max_window_bits",
     1, 0, 0, 15, NULL},
    /* declined */
    {"empty", "", 0, 0, 0, 0, NULL},
    {"other extension", "x-webkit-deflate-frame", 0, 0, 0, 0, NULL},
    {"smwb 8 (zlib cannot)", "permessage-deflate; server_max_window_bits=8", 0, 0, 0, 0, NULL},
    {"smwb without value", "permessage-deflate; server_max_window_bits", 0, 0, 0, 0, NULL},
    {"smwb 7", "permessage-deflate; server_max_window_bits=7", 0, 0, 0, 0, NULL},
    {"smwb 16", "permessage-deflate; server_max_window_bits=16", 0, 0, 0, 0, NULL},
    {"smwb leading zero", "permessage-deflate; server_max_window_bits=09", 0, 0, 0, 0, NULL},
    {"smwb overlong", "permessage-deflate; server_max_window_bits=000000000010", 0, 0, 0, 0, NULL},
    {"cmwb 16", "permessage-deflate; client_max_window_bits=16", 0, 0, 0, 0, NULL},
    {"cmwb word", "permessage-deflate; client_max_window_bits=ten", 0, 0, 0, 0, NULL},
    {"snct with value", "permessage-deflate; server_no_context_takeover=1", 0, 0, 0, 0, NULL},
    {"cnct with value", "permessage-deflate; client_no_context_takeover=\"\"", 0, 0, 0, 0, NULL},
    {"repeated", "permessage-deflate; client_no_context_takeover; client_no_context_takeover", 0, 0,
     0, 0, NULL},
    {"unknown parameter", "permessage-deflate; mux", 0, 0, 0, 0, NULL},
    {"prefix of the name", "permessage-deflat", 0, 0, 0, 0, NULL},
    {"longer name", "permessage-deflate2", 0, 0, 0, 0, NULL},
    /* syntax errors stop the parse */
    {"leading comma", ",permessage-deflate", 0, 0, 0, 0, NULL},
    {"empty parameter", "permessage-deflate;", 0, 0, 0, 0, NULL},
    {"empty value", "permessage-deflate; client_max_window_bits=", 0, 0, 0, 0, NULL},
    {"unterminated quote", "permessage-deflate; client_max_window_bits=\"10", 0, 0, 0, 0, NULL},
    {"space inside quote", "permessage-deflate; client_max_window_bits=\"1 0\"", 0, 0, 0, 0, NULL},
    {"stray byte", "permessage-deflate @", 0, 0, 0, 0, NULL},
    {"garbage then offer", "permessage-deflate = 3, permessage-deflate", 0, 0, 0, 0, NULL},
    {"NUL", "permessage-deflate\0", 0, 0, 0, 0, NULL},
};

/* A heap copy of exactly n bytes: reading past it is ASan's to report. */
static int negotiate_exact(const char *s, size_t n, struct wsdeflate_params *p)
{
    char *c = malloc(n ? n : 1);
    cr_assert(c);
    memcpy(c, s, n);
    int rc = wsdeflate_negotiate(span_of(c, n), p);
    free(c);
    return rc;
}

Test(wsdeflate, offers_table)
{
    for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
        const struct ocase *o = &offers[i];
        size_t n = strlen(o->value) + (strcmp(o->name, "NUL") == 0);
        struct wsdeflate_params p;
        memset(&p, 0xaa, sizeof(p));
        int rc = negotiate_exact(o->value, n, &p);
        cr_expect_eq(rc, o->accepted, "%s: %s: got %d", o->name, o->value, rc);
        if (rc != o->accepted)
            continue;
        cr_expect_eq(p.client_no_context_takeover, o->cnct, "%s: cnct", o->name);
        cr_expect_eq(p.server_max_window_bits, o->smwb, "%s: smwb", o->name);
        cr_expect_eq(p.client_max_window_bits, o->cmwb, "%s: cmwb", o->name);
        if (o->response) {
            char out[WSDEFLATE_RESPONSE_MAX];
            size_t len = wsdeflate_response(&p, out);
            cr_expect(len == strlen(o->response) && memcmp(out, o->response, len) == 0,
                      "%s: response %.*s", o->name, (int)len, out);
        }
        /* Every prefix parses without overreading and never yields more
         * than the whole does. */
        for (size_t k = 0; k < n; k++)
            negotiate_exact(o->value, k, &p);
    }
}

Test(wsdeflate, narrow_window_choice)
{
    struct wsdeflate_params p = {0};
    cr_expect(!wsdeflate_narrow(&p));
    p.server_max_window_bits = 15;
    cr_expect(!wsdeflate_narrow(&p));
    for (uint8_t b = 9; b < 15; b++) {
        p.server_max_window_bits = b;
        cr_expect(wsdeflate_narrow(&p), "%u", b);
    }
}

Test(wsdeflate, response_fits)
{
    struct wsdeflate_params p = {1, 15, 15};
    char out[WSDEFLATE_RESPONSE_MAX];
    cr_expect_lt(wsdeflate_response(&p, out), WSDEFLATE_RESPONSE_MAX);
}

/* ---- zlib ---- */

static char *json_like(size_t n)
{
    static const char *words[] = {"price", "volume", "symbol",   "ACME", "timestamp",
                                  "bid",   "ask",    "exchange", "NYSE", "delta"};
    char *s = malloc(n + 1);
    size_t k = 0;
    unsigned seed = 7;
    s[k++] = '[';
    while (k < n - 80) {
        seed = seed * 1103515245 + 12345;
        k += (size_t)sprintf(s + k, "{\"%s\":%u,\"%s\":\"%s\",\"t\":%u},", words[seed % 10],
                             (seed >> 8) % 100000, words[(seed >> 4) % 10],
                             words[(seed >> 12) % 10], 1700000000 + (seed >> 16));
    }
    while (k < n - 1)
        s[k++] = ' ';
    s[k++] = ']';
    s[k] = 0;
    return s;
}

/* Inflates with zlib directly, as the client side does (RFC 7692 7.2.2). */
static size_t client_inflate(span_t in, int bits, char *out, size_t cap)
{
    z_stream s = {0};
    cr_assert_eq(inflateInit2(&s, -bits), Z_OK);
    char *buf = malloc(in.len + 4);
    memcpy(buf, in.base, in.len);
    memcpy(buf + in.len, "\0\0\xff\xff", 4);
    s.next_in = (Bytef *)buf;
    s.avail_in = (uInt)in.len + 4;
    s.next_out = (Bytef *)out;
    s.avail_out = (uInt)cap;
    int rc = inflate(&s, Z_SYNC_FLUSH);
    cr_assert(rc == Z_OK || rc == Z_STREAM_END, "inflate: %d", rc);
    cr_assert_eq(s.avail_in, 0);
    size_t n = cap - s.avail_out;
    inflateEnd(&s);
    free(buf);
    return n;
}

/* Compresses as a client does: sync flush, tail removed; ctx kept by the caller. */
static size_t client_deflate(z_stream *s, const char *in, size_t n, char *out, size_t cap, int fin)
{
    s->next_in = (Bytef *)(uintptr_t)in;
    s->avail_in = (uInt)n;
    s->next_out = (Bytef *)out;
    s->avail_out = (uInt)cap;
    cr_assert_eq(deflate(s, fin ? Z_FINISH : Z_SYNC_FLUSH), fin ? Z_STREAM_END : Z_OK);
    size_t len = cap - s->avail_out;
    if (!fin) {
        cr_assert(len >= 4 && memcmp(out + len - 4, "\0\0\xff\xff", 4) == 0);
        len -= 4;
    }
    return len;
}

Test(wsdeflate, compress_roundtrip_both_windows_and_parts)
{
    struct wsdeflate z;
    wsdeflate_init(&z);
    char *msg = json_like(5000);
    static char out[8192];
    for (int narrow = 0; narrow < 2; narrow++) {
        for (size_t split = 0; split <= 5000; split += 1250) {
            span_t parts[2] = {span_of(msg, split), span_of(msg + split, 5000 - split)};
            span_t c;
            cr_assert_eq(wsdeflate_compress(&z, narrow, parts, 2, &c), 0);
            cr_expect_lt(c.len, 2500, "compressed %zu", c.len);
            /* a narrow frame must inflate with the narrowest window it claims */
            size_t n = client_inflate(c, narrow ? WSDEFLATE_NARROW_BITS : 15, out, sizeof(out));
            cr_assert_eq(n, 5000);
            cr_assert(memcmp(out, msg, 5000) == 0);
            /* and through our own inflater, which must agree */
            span_t back;
            cr_assert_eq(wsdeflate_inflate(&z, NULL, c, 5000, &back), 0);
            cr_assert(back.len == 5000 && memcmp(back.base, msg, 5000) == 0);
        }
    }
    span_t empty = SPAN_NULL, c;
    cr_assert_eq(wsdeflate_compress(&z, 0, &empty, 1, &c), 0);
    span_t back;
    cr_assert_eq(wsdeflate_inflate(&z, NULL, c, 10, &back), 0);
    cr_expect_eq(back.len, 0);
    free(msg);
    wsdeflate_destroy(&z);
}

Test(wsdeflate, inflate_with_context_takeover_and_bfinal)
{
    struct wsdeflate z;
    wsdeflate_init(&z);
    z_stream cs = {0};
    cr_assert_eq(deflateInit2(&cs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    struct wsdeflate_inflater *d = wsdeflate_inflater_new();
    cr_assert(d);
    char *msg = json_like(3000);
    static char buf[8192];
    size_t first = 0;
    for (int i = 0; i < 4; i++) {
        size_t n = client_deflate(&cs, msg, 3000, buf, sizeof(buf), 0);
        if (i == 0)
            first = n;
        else /* the repeat refers back to the previous message */
            cr_expect_lt(n, first / 4, "message %d: %zu vs %zu", i, n, first);
        span_t out;
        cr_assert_eq(wsdeflate_inflate(&z, d, span_of(buf, n), 3000, &out), 0, "message %d", i);
        cr_assert(out.len == 3000 && memcmp(out.base, msg, 3000) == 0, "message %d", i);
    }
    /* A message that ends the deflate stream (BFINAL); the window survives,
     * as the client's next stream may refer to it only through a preset
     * dictionary, which zlib clients do not use: just check the next message
     * still inflates. */
    size_t n = client_deflate(&cs, msg, 100, buf, sizeof(buf), 1);
    span_t out;
    cr_assert_eq(wsdeflate_inflate(&z, d, span_of(buf, n), 3000, &out), 0);
    cr_assert(out.len == 100 && memcmp(out.base, msg, 100) == 0);
    deflateReset(&cs);
    n = client_deflate(&cs, msg + 5, 200, buf, sizeof(buf), 0);
    cr_assert_eq(wsdeflate_inflate(&z, d, span_of(buf, n), 3000, &out), 0);
    cr_assert(out.len == 200 && memcmp(out.base, msg + 5, 200) == 0);
    wsdeflate_inflater_free(d);
    deflateEnd(&cs);
    free(msg);
    wsdeflate_destroy(&z);
}

Test(wsdeflate, bomb_stops_at_the_cap)
{
    struct wsdeflate z;
    wsdeflate_init(&z);
    size_t big = 10 << 20;
    char *zeros = calloc(1, big);
    static char buf[64 << 10];
    z_stream cs = {0};
    cr_assert_eq(deflateInit2(&cs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t n = client_deflate(&cs, zeros, big, buf, sizeof(buf), 0);
    deflateEnd(&cs);
    cr_assert_lt(n, 20000, "10 MB of zeros compress to %zu", n);
    span_t out;
    cr_expect_eq(wsdeflate_inflate(&z, NULL, span_of(buf, n), 65536, &out), WSDEFLATE_ERR_TOO_BIG);
    cr_expect_leq(z.icap, 65537, "output buffer grew to %zu", z.icap);
    struct wsdeflate_inflater *d = wsdeflate_inflater_new();
    cr_expect_eq(wsdeflate_inflate(&z, d, span_of(buf, n), 65536, &out), WSDEFLATE_ERR_TOO_BIG);
    wsdeflate_inflater_free(d);
    /* exactly at the cap is fine, one over is not */
    cr_assert_eq(deflateInit2(&cs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    n = client_deflate(&cs, zeros, 1000, buf, sizeof(buf), 0);
    deflateEnd(&cs);
    cr_expect_eq(wsdeflate_inflate(&z, NULL, span_of(buf, n), 1000, &out), 0);
    cr_expect_eq(out.len, 1000);
    cr_expect_eq(wsdeflate_inflate(&z, NULL, span_of(buf, n), 999, &out), WSDEFLATE_ERR_TOO_BIG);
    free(zeros);
    wsdeflate_destroy(&z);
}

Test(wsdeflate, garbage_is_a_data_error)
{
    struct wsdeflate z;
    wsdeflate_init(&z);
    span_t out;
    /* block type 3 is reserved */
    cr_expect_eq(wsdeflate_inflate(&z, NULL, SPAN_LIT("\xff\xff\xff\xff"), 100, &out),
                 WSDEFLATE_ERR_DATA);
    /* the per-worker stream recovers for the next message */
    span_t part = SPAN_LIT("hello hello hello hello"), c;
    cr_assert_eq(wsdeflate_compress(&z, 0, &part, 1, &c), 0);
    cr_expect_eq(wsdeflate_inflate(&z, NULL, c, 100, &out), 0);
    cr_expect(span_eq(out, part));
    wsdeflate_destroy(&z);
}

/* The shared frame built from a message: once per form, header with RSV1,
 * small messages left uncompressed, freed with the message (ASan). */
Test(wsdeflate, msg_frames)
{
    struct wsdeflate z;
    wsdeflate_init(&z);
    char *body = json_like(1024);
    struct msg *m = msg_new(SPAN_LIT("news"), 1, 42, SPAN_NULL, span_of(body, 1024), 0, 0);
    cr_assert(m);
    static char out[4096];
    for (int form = 0; form < 2; form++) {
        struct blob *b = msg_ws_deflated(m, form, 0, &z);
        cr_assert(b);
        cr_expect_eq(msg_ws_deflated(m, form, 0, &z), b, "built once");
        struct ws_frame f;
        int hl = ws_parse_frame(b->data, b->len, WS_DEFLATE, UINT64_MAX, &f);
        cr_assert_gt(hl, 0);
        cr_expect(f.rsv1 && f.fin && f.opcode == WS_OP_TEXT);
        cr_assert_eq(hl + f.payload_len, b->len);
        size_t n = client_inflate(span_of(b->data + hl, f.payload_len), 15, out, sizeof(out));
        if (form == MSG_WS_RAW) {
            cr_expect(n == 1024 && memcmp(out, body, 1024) == 0);
        } else {
            size_t text = 12 + 4 + 2;
            cr_assert_eq(n, text + m->json.len - 1);
            cr_expect(memcmp(out, "{\"channel\":\"news\",", text) == 0);
            cr_expect(memcmp(out + text, m->json.base + 1, m->json.len - 1) == 0);
        }
        struct blob *nb = msg_ws_deflated(m, form, 1, &z);
        cr_assert(nb && nb != b);
        hl = ws_parse_frame(nb->data, nb->len, WS_DEFLATE, UINT64_MAX, &f);
        cr_assert(hl > 0 && f.rsv1);
        size_t nn = client_inflate(span_of(nb->data + hl, f.payload_len), WSDEFLATE_NARROW_BITS,
                                   out, sizeof(out));
        cr_expect_eq(nn, n, "the narrow frame holds the same text");
    }
    rc_put(&m->rc);
    struct msg *s = msg_new(SPAN_LIT("n"), 1, 1, SPAN_NULL, SPAN_LIT("short"), 0, 0);
    cr_expect_null(msg_ws_deflated(s, MSG_WS_RAW, 0, &z), "under WSDEFLATE_MIN_SIZE");
    cr_expect_null(msg_ws_deflated(s, MSG_WS_RAW, 0, &z));
    rc_put(&s->rc);
    /* incompressible: sent plain */
    char rnd[512];
    unsigned seed = 1;
    for (size_t i = 0; i < sizeof(rnd); i++)
        rnd[i] = (char)((seed = seed * 1103515245 + 12345) >> 16);
    struct msg *r = msg_new(SPAN_LIT("n"), 1, 1, SPAN_NULL, span_of(rnd, sizeof(rnd)), 1, 0);
    cr_expect_null(msg_ws_deflated(r, MSG_WS_RAW, 0, &z));
    rc_put(&r->rc);
    free(body);
    wsdeflate_destroy(&z);
}

struct racer {
    struct msg *m;
    pthread_barrier_t *go;
    struct blob *got[2];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct wsdeflate z;
    wsdeflate_init(&z);
    pthread_barrier_wait(r->go);
    for (int form = 0; form < 2; form++)
        r->got[form] = msg_ws_deflated(r->m, form, 0, &z);
    wsdeflate_destroy(&z);
    return NULL;
}

/* Workers racing to build the same frame all end up with the one that was
 * stored; the losers' copies are freed (ASan's leak check at exit). */
Test(wsdeflate, msg_frames_racing_workers)
{
    enum { N = 8 };
    char *body = json_like(4096);
    for (int round = 0; round < 20; round++) {
        /* Round 0 is not counted: glibc keeps what the first threads made. */
        size_t before =
            __sanitizer_get_current_allocated_bytes ? __sanitizer_get_current_allocated_bytes() : 0;
        struct msg *m = msg_new(SPAN_LIT("race"), 1, 1, SPAN_NULL, span_of(body, 4096), 0, 0);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, N);
        pthread_t th[N];
        struct racer r[N];
        for (int i = 0; i < N; i++) {
            r[i] = (struct racer){m, &go, {NULL, NULL}};
            cr_assert_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
        }
        for (int i = 0; i < N; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < N; i++)
            for (int form = 0; form < 2; form++) {
                cr_assert(r[i].got[form]);
                cr_assert_eq(r[i].got[form], r[0].got[form], "round %d racer %d form %d", round, i,
                             form);
            }
        pthread_barrier_destroy(&go);
        rc_put(&m->rc);
        if (__sanitizer_get_current_allocated_bytes && round > 0)
            cr_expect_eq(__sanitizer_get_current_allocated_bytes(), before,
                         "round %d: bytes still allocated after the last reference", round);
    }
    free(body);
}

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Figures for the README and reports; nothing is asserted but correctness.
 * Under ASan the times are several times the -O2 build's. */
Test(wsdeflate, measure_1k_json)
{
    struct wsdeflate z;
    wsdeflate_init(&z);
    char *body = json_like(1024);
    span_t part = span_of(body, 1024), c;
    cr_assert_eq(wsdeflate_compress(&z, 0, &part, 1, &c), 0); /* warm: stream set up */
    int rounds = 2000;
    double t0 = cpu_ns();
    for (int i = 0; i < rounds; i++)
        wsdeflate_compress(&z, 0, &part, 1, &c);
    double t1 = cpu_ns();
    span_t out;
    for (int i = 0; i < rounds; i++)
        wsdeflate_inflate(&z, NULL, c, 1024, &out);
    double t2 = cpu_ns();
    cr_assert(out.len == 1024 && memcmp(out.base, body, 1024) == 0);
    fprintf(stderr,
            "wsdeflate: 1024-byte JSON-like message -> %zu bytes compressed (frame %zu); "
            "compress %.1f us, inflate %.1f us (CPU per message, mean of %d)\n",
            c.len, c.len + 4, (t1 - t0) / rounds / 1e3, (t2 - t1) / rounds / 1e3, rounds);
    free(body);
    wsdeflate_destroy(&z);
}
