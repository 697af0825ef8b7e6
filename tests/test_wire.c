/*
 * test_wire.c: unit tests for the wire encoders (SSE event, JSON element, JSON
 * string escaping), the channel-name check and the id parser.
 *
 * Every encoder is a size/write pair, so each is run into a buffer of exactly
 * size() bytes from inputs copied to buffers of exactly their length: ASan sees
 * any read or write past either end, and write() must end exactly at size().
 * Outputs are read back by small reference decoders written here from the
 * specs (the WHATWG event-stream parser, an RFC 8259 string unescaper, an
 * RFC 3629 validator that works from code points rather than from wire.c's
 * byte ranges), so the encoder and its check cannot share a mistake.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "ref_utf8.h"

/* ---- helpers ------------------------------------------------------------- */

#define LIT(s) s, sizeof(s) - 1

/* A heap copy of exactly len bytes (ASan gives malloc(0) a real, empty
 * block), so any read past the end of an input is caught. */
static span_t heap_span(const void *p, size_t len)
{
    char *b = malloc(len);
    cr_assert(b != NULL);
    if (len)
        memcpy(b, p, len);
    return span_of(b, len);
}

static void heap_free(span_t s)
{
    free((void *)s.base);
}

enum enc { ENC_ESCAPE, ENC_SSE, ENC_JSON_MSG };

/* Runs one encoder into a buffer of exactly its size() and fails the test when
 * write() does not end there. Returns the malloc'd output; *len its length. */
static char *encode(enum enc which, uint64_t id, const void *ev, size_t ev_len, const void *data,
                    size_t data_len, size_t *len)
{
    span_t e = heap_span(ev, ev_len), d = heap_span(data, data_len);
    size_t n = 0;
    switch (which) {
    case ENC_ESCAPE:
        n = wire_json_escape_size(d);
        break;
    case ENC_SSE:
        n = wire_sse_size(id, e, d);
        break;
    case ENC_JSON_MSG:
        n = wire_json_msg_size(id, e, d);
        break;
    }
    char *out = malloc(n), *end = NULL;
    cr_assert(out != NULL);
    switch (which) {
    case ENC_ESCAPE:
        end = wire_json_escape_write(out, d);
        break;
    case ENC_SSE:
        end = wire_sse_write(out, id, e, d);
        break;
    case ENC_JSON_MSG:
        end = wire_json_msg_write(out, id, e, d);
        break;
    }
    cr_assert_eq((size_t)(end - out), n, "encoder %d: size() said %zu, write() wrote %zu", which, n,
                 (size_t)(end - out));
    heap_free(e);
    heap_free(d);
    *len = n;
    return out;
}

static void assert_bytes(const char *got, size_t got_len, const char *want, size_t want_len,
                         const char *what)
{
    cr_assert(got_len == want_len && memcmp(got, want, want_len) == 0,
              "%s: got %zu bytes \"%.*s\", want %zu bytes \"%.*s\"", what, got_len, (int)got_len,
              got, want_len, (int)want_len, want);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random bytes, half of them drawn from the ones the encoders treat apart:
 * line ends, JSON specials, and lead and continuation bytes at the edges of
 * the valid UTF-8 ranges. */
static void random_bytes(char *buf, size_t n)
{
    static const unsigned char special[] = {'\r', '\n', '"',  '\\', 0,    0x1f, 0x7f, 0x80, 0x8f,
                                            0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
                                            0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 'a',  ' ',  ':'};
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng();
        buf[i] = (char)((r & 1) ? special[(r >> 8) % sizeof(special)] : (r >> 16) & 0xff);
    }
}

/* ---- reference UTF-8 validation (RFC 3629) -------------------------------- */


static int ref_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = ref_utf8_len(p, n, i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---- reference JSON string decoding (RFC 8259) --------------------------- */

/* Decodes a JSON string body (no quotes) into out (at least n bytes). Returns
 * the decoded length, or -1 when the body is not valid JSON: a raw control
 * byte, an unescaped quote, a bad escape, a \u surrogate (the encoder never
 * needs one) or bytes that are not UTF-8. */
static long json_unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    if (!ref_utf8_valid(s, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"')
            return -1;
        if (c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        if (++i == n)
            return -1;
        switch (s[i]) {
        case '"':
            out[o++] = '"';
            break;
        case '\\':
            out[o++] = '\\';
            break;
        case '/':
            out[o++] = '/';
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            uint32_t cp = 0;
            if (n - i < 5)
                return -1;
            for (int k = 1; k <= 4; k++) {
                char h = s[i + k];
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0)
                    return -1;
                cp = cp << 4 | (uint32_t)d;
            }
            if (cp >= 0xd800 && cp <= 0xdfff)
                return -1;
            o += utf8_put(out + o, cp);
            i += 4;
            break;
        }
        default:
            return -1;
        }
    }
    return (long)o;
}

/* Length of the JSON string body starting at s[0] (just after its opening
 * quote), up to the closing quote; n when there is none. */
static size_t json_string_body(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] != '"')
        i += s[i] == '\\' ? 2 : 1;
    return i < n ? i : n;
}

/* Splits {"id":N[,"event":"E"],"data":"D"} into its parts (E and D still
 * escaped). Returns 0, or -1 when the element has another shape. */
static int json_msg_split(const char *s, size_t n, uint64_t *id, span_t *ev, span_t *data)
{
    size_t i = 6, start;
    if (n < 6 || memcmp(s, "{\"id\":", 6) != 0)
        return -1;
    for (start = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        ;
    if (wire_parse_u64(span_of(s + start, i - start), id) < 0)
        return -1;
    *ev = SPAN_NULL;
    if (n - i >= 10 && memcmp(s + i, ",\"event\":\"", 10) == 0) {
        i += 10;
        size_t k = json_string_body(s + i, n - i);
        if (k == n - i)
            return -1;
        *ev = span_of(s + i, k);
        i += k + 1;
    }
    if (n - i < 9 || memcmp(s + i, ",\"data\":\"", 9) != 0)
        return -1;
    i += 9;
    size_t k = json_string_body(s + i, n - i);
    *data = span_of(s + i, k);
    i += k;
    return n - i == 2 && memcmp(s + i, "\"}", 2) == 0 ? 0 : -1;
}

/* ---- reference event-stream parser (WHATWG HTML, 9.2.6) ------------------- */

/* The first event an event stream dispatches, and what else it held. Works on
 * bytes: the spec decodes UTF-8 first, which changes nothing here since data
 * are compared as bytes. */
struct sse_result {
    int events;        /* events dispatched */
    int other_lines;   /* comments, retry and unknown fields */
    size_t unfinished; /* bytes after the last dispatch */
    char id[32];       /* last event ID at the first dispatch */
    char type[128];    /* the first event's type ("message" by default) */
    char *data;        /* the first event's data (malloc'd) */
    size_t data_len;
};

static void sse_field(struct sse_result *r, span_t field, span_t value, char *buf, size_t *blen,
                      char *type, char *id)
{
    if (span_eq(field, SPAN_LIT("event"))) {
        cr_assert(value.len < 128);
        memcpy(type, value.base, value.len);
        type[value.len] = 0;
    } else if (span_eq(field, SPAN_LIT("data"))) {
        memcpy(buf + *blen, value.base, value.len);
        *blen += value.len;
        buf[(*blen)++] = '\n';
    } else if (span_eq(field, SPAN_LIT("id")) && !memchr(value.base, 0, value.len)) {
        cr_assert(value.len < 32);
        memcpy(id, value.base, value.len);
        id[value.len] = 0;
    } else {
        r->other_lines++;
    }
}

static void sse_parse(const char *s, size_t n, struct sse_result *r)
{
    char *buf = malloc(n + 1), type[128] = "", id[32] = "";
    size_t blen = 0, i = 0, dispatched_at = 0;
    cr_assert(buf != NULL);
    memset(r, 0, sizeof(*r));
    while (i < n) {
        size_t start = i;
        while (i < n && s[i] != '\r' && s[i] != '\n')
            i++;
        if (i == n)
            break; /* a line without its end is never processed */
        span_t line = span_of(s + start, i - start);
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        i++;
        if (line.len == 0) {
            dispatched_at = i;
            if (blen == 0) {
                type[0] = 0;
                continue;
            }
            if (buf[blen - 1] == '\n')
                blen--;
            if (r->events++ == 0) {
                memcpy(r->id, id, sizeof(id));
                strcpy(r->type, type[0] ? type : "message");
                r->data = malloc(blen + 1);
                memcpy(r->data, buf, blen);
                r->data_len = blen;
            }
            blen = 0;
            type[0] = 0;
        } else if (line.base[0] == ':') {
            r->other_lines++;
        } else {
            const char *colon = memchr(line.base, ':', line.len);
            span_t field = line, value = span_of(line.base + line.len, 0);
            if (colon) {
                field.len = (size_t)(colon - line.base);
                value = span_of(colon + 1, line.len - field.len - 1);
                if (value.len && value.base[0] == ' ')
                    value = span_of(value.base + 1, value.len - 1);
            }
            sse_field(r, field, value, buf, &blen, type, id);
        }
    }
    r->unfinished = n - dispatched_at;
    free(buf);
}

/* Payload line ends as an event-stream reader gives them back: \r\n and \r
 * become \n. Returns the new length; out needs n bytes. */
static size_t normalise_newlines(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            out[o++] = '\n';
            if (i + 1 < n && s[i + 1] == '\n')
                i++;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

/* Encodes one event and demands that the reference parser reads back exactly
 * one event, with nothing else in the stream, carrying id, type and the
 * payload with its line ends normalised. Returns the encoding (malloc'd). */
static char *sse_roundtrip(uint64_t id, const char *ev, size_t ev_len, const char *data,
                           size_t data_len, size_t *len)
{
    char *out = encode(ENC_SSE, id, ev, ev_len, data, data_len, len);
    struct sse_result r;
    sse_parse(out, *len, &r);
    cr_assert_eq(r.events, 1, "\"%.*s\": %d events", (int)*len, out, r.events);
    cr_assert_eq(r.other_lines, 0, "\"%.*s\": stray lines", (int)*len, out);
    cr_assert_eq(r.unfinished, 0, "\"%.*s\": %zu bytes after the event", (int)*len, out,
                 r.unfinished);
    char idstr[32];
    snprintf(idstr, sizeof(idstr), "%llu", (unsigned long long)id);
    cr_assert_str_eq(r.id, idstr);
    char type[128];
    if (ev_len)
        snprintf(type, sizeof(type), "%.*s", (int)ev_len, ev);
    else
        strcpy(type, "message");
    cr_assert_str_eq(r.type, type);
    char *want = malloc(data_len + 1);
    size_t want_len = normalise_newlines(data, data_len, want);
    assert_bytes(r.data, r.data_len, want, want_len, "SSE data read back");
    cr_assert(memchr(out, '\r', *len) == NULL, "SSE output holds a raw \\r");
    free(want);
    free(r.data);
    return out;
}

/* Escapes s and demands that the result is valid JSON string content that
 * decodes to s with invalid UTF-8 replaced, holding no raw control byte or DEL. */
static void json_roundtrip(const char *s, size_t n)
{
    size_t len;
    char *out = encode(ENC_ESCAPE, 0, NULL, 0, s, n, &len);
    for (size_t i = 0; i < len; i++)
        cr_assert((unsigned char)out[i] >= 0x20 && out[i] != 0x7f, "raw byte %#x in output",
                  (unsigned char)out[i]);
    char *dec = malloc(len + 1), *want = malloc(3 * n + 1);
    long dl = json_unescape(out, len, dec);
    cr_assert(dl >= 0, "not a valid JSON string body: \"%.*s\"", (int)len, out);
    size_t wl = ref_replace(s, n, want);
    assert_bytes(dec, (size_t)dl, want, wl, "JSON string decoded");
    free(dec);
    free(want);
    free(out);
}

/* The JSON element must split into id, event and data that decode back. */
static void json_msg_roundtrip(uint64_t id, const char *ev, size_t ev_len, const char *data,
                               size_t data_len)
{
    size_t len;
    char *out = encode(ENC_JSON_MSG, id, ev, ev_len, data, data_len, &len);
    uint64_t got_id;
    span_t got_ev, got_data;
    cr_assert_eq(json_msg_split(out, len, &got_id, &got_ev, &got_data), 0, "bad element: %.*s",
                 (int)len, out);
    cr_assert_eq(got_id, id);
    cr_assert_eq(got_ev.base != NULL, ev_len != 0, "event present iff given: %.*s", (int)len, out);
    char *dec = malloc(len + 1), *want = malloc(3 * (ev_len + data_len) + 1);
    long dl = json_unescape(got_ev.base, got_ev.len, dec);
    size_t wl = ref_replace(ev, ev_len, want);
    cr_assert(dl >= 0);
    assert_bytes(dec, (size_t)dl, want, wl, "event");
    dl = json_unescape(got_data.base, got_data.len, dec);
    wl = ref_replace(data, data_len, want);
    cr_assert(dl >= 0);
    assert_bytes(dec, (size_t)dl, want, wl, "data");
    free(dec);
    free(want);
    free(out);
}

/* ---- wire_u64 -------------------------------------------------------------- */

static const struct {
    uint64_t v;
    const char *s;
} u64_cases[] = {
    {0, "0"},
    {9, "9"},
    {10, "10"},
    {99, "99"},
    {100, "100"},
    {12345, "12345"},
    {4294967295u, "4294967295"},
    {4294967296u, "4294967296"},
    {9999999999999999999u, "9999999999999999999"},
    {10000000000000000000u, "10000000000000000000"},
    {UINT64_MAX, "18446744073709551615"},
};

Test(wire_u64, table)
{
    for (size_t i = 0; i < sizeof(u64_cases) / sizeof(u64_cases[0]); i++) {
        size_t want = strlen(u64_cases[i].s);
        cr_assert_eq(wire_u64_len(u64_cases[i].v), want, "%s", u64_cases[i].s);
        char *out = malloc(want);
        char *end = wire_u64_write(out, u64_cases[i].v);
        cr_assert_eq((size_t)(end - out), want);
        assert_bytes(out, want, u64_cases[i].s, want, "wire_u64_write");
        free(out);
    }
}

Test(wire_u64, powers_of_ten_and_neighbours)
{
    uint64_t p = 1;
    for (size_t digits = 1; digits <= 20; digits++, p *= 10) {
        uint64_t vs[3] = {p - 1, p, p + 1};
        for (int k = 0; k < 3; k++) {
            char want[32];
            int n = snprintf(want, sizeof(want), "%llu", (unsigned long long)vs[k]);
            cr_assert_eq(wire_u64_len(vs[k]), (size_t)n, "%s", want);
            char out[32];
            cr_assert_eq(wire_u64_write(out, vs[k]) - out, n);
            cr_assert(memcmp(out, want, (size_t)n) == 0, "%s", want);
        }
        if (digits == 20)
            break; /* 10^20 does not fit */
    }
}

/* ---- wire_parse_u64 ------------------------------------------------------- */

static const struct {
    const char *s;
    size_t len;
    int ret;
    uint64_t v;
} parse_cases[] = {
    {LIT("0"), 0, 0},
    {LIT("1"), 0, 1},
    {LIT("42"), 0, 42},
    {LIT("007"), 0, 7},
    {LIT("00000000000000000042"), 0, 42}, /* 20 characters */
    {LIT("4294967296"), 0, 4294967296u},
    {LIT("18446744073709551614"), 0, UINT64_MAX - 1},
    {LIT("18446744073709551615"), 0, UINT64_MAX},
    {LIT("18446744073709551616"), -EINVAL, 0}, /* max + 1 */
    {LIT("18446744073709551620"), -EINVAL, 0},
    {LIT("19000000000000000000"), -EINVAL, 0},
    {LIT("99999999999999999999"), -EINVAL, 0},
    {LIT("100000000000000000000"), -EINVAL, 0}, /* 21 digits */
    {LIT("184467440737095516150"), -EINVAL, 0},
    {LIT(""), -EINVAL, 0},
    {LIT("+1"), -EINVAL, 0},
    {LIT("-1"), -EINVAL, 0},
    {LIT("-0"), -EINVAL, 0},
    {LIT(" 1"), -EINVAL, 0},
    {LIT("1 "), -EINVAL, 0},
    {LIT("\t1"), -EINVAL, 0},
    {LIT("1a"), -EINVAL, 0},
    {LIT("a"), -EINVAL, 0},
    {LIT("0x10"), -EINVAL, 0},
    {LIT("1.0"), -EINVAL, 0},
    {LIT("1e3"), -EINVAL, 0},
    {LIT("1\0"), -EINVAL, 0},
    {LIT("\0"
         "1"),
     -EINVAL, 0},
    {LIT("\xef\xbc\x91"), -EINVAL, 0}, /* fullwidth digit one */
};

Test(wire_parse_u64, table)
{
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        span_t s = heap_span(parse_cases[i].s, parse_cases[i].len);
        uint64_t v = 12345;
        int ret = wire_parse_u64(s, &v);
        cr_assert_eq(ret, parse_cases[i].ret, "case %zu \"%s\": got %d", i, parse_cases[i].s, ret);
        if (ret == 0)
            cr_assert_eq(v, parse_cases[i].v, "case %zu \"%s\"", i, parse_cases[i].s);
        heap_free(s);
    }
}

Test(wire_parse_u64, every_non_digit_byte_anywhere)
{
    for (int b = 0; b < 256; b++) {
        if (b >= '0' && b <= '9')
            continue;
        char in[3][3] = {{(char)b, '1', '2'}, {'1', (char)b, '2'}, {'1', '2', (char)b}};
        for (int k = 0; k < 3; k++) {
            span_t s = heap_span(in[k], 3);
            uint64_t v;
            cr_assert_eq(wire_parse_u64(s, &v), -EINVAL, "byte %#x at %d", b, k);
            heap_free(s);
        }
    }
}

Test(wire_parse_u64, roundtrips_with_writer)
{
    for (int i = 0; i < 10000; i++) {
        uint64_t x = rng() >> (rng() % 64);
        char buf[32];
        size_t n = (size_t)(wire_u64_write(buf, x) - buf);
        span_t s = heap_span(buf, n);
        uint64_t y;
        cr_assert_eq(wire_parse_u64(s, &y), 0);
        cr_assert_eq(y, x);
        heap_free(s);
    }
}

/* ---- wire_name_ok --------------------------------------------------------- */

static int name_byte_ok(int b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '_' ||
           b == '.' || b == ':' || b == '-';
}

Test(wire_name_ok, lengths)
{
    static const struct {
        size_t len, max;
        int ok;
    } cases[] = {
        {0, WIRE_CHANNEL_MAX, 0},
        {1, WIRE_CHANNEL_MAX, 1},
        {2, WIRE_CHANNEL_MAX, 1},
        {WIRE_CHANNEL_MAX - 1, WIRE_CHANNEL_MAX, 1},
        {WIRE_CHANNEL_MAX, WIRE_CHANNEL_MAX, 1},
        {WIRE_CHANNEL_MAX + 1, WIRE_CHANNEL_MAX, 0},
        {WIRE_EVENT_MAX, WIRE_EVENT_MAX, 1},
        {WIRE_EVENT_MAX + 1, WIRE_EVENT_MAX, 0},
        {1, 1, 1},
        {2, 1, 0},
        {1, 0, 0},
        {0, 0, 0},
    };
    char buf[WIRE_CHANNEL_MAX + 1];
    memset(buf, 'a', sizeof(buf));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        span_t s = heap_span(buf, cases[i].len);
        cr_assert_eq(wire_name_ok(s, cases[i].max), cases[i].ok, "len %zu max %zu", cases[i].len,
                     cases[i].max);
        heap_free(s);
    }
    cr_assert_eq(wire_name_ok(SPAN_NULL, WIRE_CHANNEL_MAX), 0);
}

Test(wire_name_ok, whole_alphabet)
{
    static const char all[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";
    span_t s = heap_span(all, sizeof(all) - 1);
    cr_assert_eq(wire_name_ok(s, WIRE_CHANNEL_MAX), 1);
    heap_free(s);
}

Test(wire_name_ok, every_byte_everywhere)
{
    for (int b = 0; b < 256; b++) {
        char in[4][5] = {{(char)b},
                         {(char)b, 'a', 'b', 'c', 'd'},
                         {'a', 'b', (char)b, 'c', 'd'},
                         {'a', 'b', 'c', 'd', (char)b}};
        size_t lens[4] = {1, 5, 5, 5};
        for (int k = 0; k < 4; k++) {
            span_t s = heap_span(in[k], lens[k]);
            cr_assert_eq(wire_name_ok(s, WIRE_CHANNEL_MAX), name_byte_ok(b), "byte %#x, form %d", b,
                         k);
            heap_free(s);
        }
    }
}

/* ---- JSON string escaping ------------------------------------------------- */

#define FFFD "\\ufffd"

static const struct {
    const char *name;
    const char *in;
    size_t in_len;
    const char *out;
    size_t out_len;
} escape_cases[] = {
    {"empty", LIT(""), LIT("")},
    {"plain", LIT("hello world"), LIT("hello world")},
    {"quote", LIT("\""), LIT("\\\"")},
    {"backslash", LIT("\\"), LIT("\\\\")},
    {"slash kept", LIT("/"), LIT("/")},
    {"newline", LIT("\n"), LIT("\\n")},
    {"carriage return", LIT("\r"), LIT("\\r")},
    {"tab", LIT("\t"), LIT("\\t")},
    {"nul", LIT("\0"), LIT("\\u0000")},
    {"backspace", LIT("\b"), LIT("\\u0008")},
    {"form feed", LIT("\f"), LIT("\\u000c")},
    {"unit separator", LIT("\x1f"), LIT("\\u001f")},
    {"space", LIT(" "), LIT(" ")},
    {"del", LIT("\x7f"), LIT("\\u007f")},
    {"mixed", LIT("a\"b\\c\nd"), LIT("a\\\"b\\\\c\\nd")},
    {"json payload", LIT("{\"p\":3}"), LIT("{\\\"p\\\":3}")},
    /* valid UTF-8 passes through */
    {"2-byte min", LIT("\xc2\x80"), LIT("\xc2\x80")},
    {"2-byte e-acute", LIT("\xc3\xa9"), LIT("\xc3\xa9")},
    {"2-byte max", LIT("\xdf\xbf"), LIT("\xdf\xbf")},
    {"3-byte min", LIT("\xe0\xa0\x80"), LIT("\xe0\xa0\x80")},
    {"3-byte euro", LIT("\xe2\x82\xac"), LIT("\xe2\x82\xac")},
    {"3-byte below surrogates", LIT("\xed\x9f\xbf"), LIT("\xed\x9f\xbf")},
    {"3-byte above surrogates", LIT("\xee\x80\x80"), LIT("\xee\x80\x80")},
    {"3-byte U+FFFD itself", LIT("\xef\xbf\xbd"), LIT("\xef\xbf\xbd")},
    {"3-byte max", LIT("\xef\xbf\xbf"), LIT("\xef\xbf\xbf")},
    {"U+2028 kept", LIT("\xe2\x80\xa8"), LIT("\xe2\x80\xa8")},
    {"4-byte min", LIT("\xf0\x90\x80\x80"), LIT("\xf0\x90\x80\x80")},
    {"4-byte emoji", LIT("\xf0\x9f\x98\x80"), LIT("\xf0\x9f\x98\x80")},
    {"4-byte max", LIT("\xf4\x8f\xbf\xbf"), LIT("\xf4\x8f\xbf\xbf")},
    {"utf8 between escapes", LIT("\"\xc3\xa9\n"), LIT("\\\"\xc3\xa9\\n")},
    /* overlong forms */
    {"overlong C0 80", LIT("\xc0\x80"), LIT(FFFD FFFD)},
    {"overlong C1 BF", LIT("\xc1\xbf"), LIT(FFFD FFFD)},
    {"overlong E0 80 80", LIT("\xe0\x80\x80"), LIT(FFFD FFFD FFFD)},
    {"overlong E0 9F BF", LIT("\xe0\x9f\xbf"), LIT(FFFD FFFD FFFD)},
    {"overlong F0 80 80 80", LIT("\xf0\x80\x80\x80"), LIT(FFFD FFFD FFFD FFFD)},
    {"overlong F0 8F BF BF", LIT("\xf0\x8f\xbf\xbf"), LIT(FFFD FFFD FFFD FFFD)},
    /* surrogates */
    {"surrogate ED A0 80", LIT("\xed\xa0\x80"), LIT(FFFD FFFD FFFD)},
    {"surrogate ED BF BF", LIT("\xed\xbf\xbf"), LIT(FFFD FFFD FFFD)},
    {"surrogate pair", LIT("\xed\xa0\xbd\xed\xb8\x80"), LIT(FFFD FFFD FFFD FFFD FFFD FFFD)},
    /* beyond U+10FFFF and bytes that never lead */
    {"F4 90 80 80", LIT("\xf4\x90\x80\x80"), LIT(FFFD FFFD FFFD FFFD)},
    {"F5 80 80 80", LIT("\xf5\x80\x80\x80"), LIT(FFFD FFFD FFFD FFFD)},
    {"F7 BF BF BF", LIT("\xf7\xbf\xbf\xbf"), LIT(FFFD FFFD FFFD FFFD)},
    {"5-byte form", LIT("\xf8\x88\x80\x80\x80"), LIT(FFFD FFFD FFFD FFFD FFFD)},
    {"FE", LIT("\xfe"), LIT(FFFD)},
    {"FF", LIT("\xff"), LIT(FFFD)},
    /* truncated sequences */
    {"truncated 2 at end", LIT("a\xc3"), LIT("a" FFFD)},
    {"truncated 3/2 at end", LIT("\xe2\x82"), LIT(FFFD FFFD)},
    {"truncated 3/1 at end", LIT("\xe2"), LIT(FFFD)},
    {"truncated 4/3 at end", LIT("\xf0\x9f\x98"), LIT(FFFD FFFD FFFD)},
    {"truncated 2 before ascii",
     LIT("\xc3"
         "a"),
     LIT(FFFD "a")},
    {"truncated 3 before ascii",
     LIT("\xe2\x82"
         "a"),
     LIT(FFFD FFFD "a")},
    {"truncated 4 before quote", LIT("\xf0\x9f\x98\""), LIT(FFFD FFFD FFFD "\\\"")},
    {"truncated 2 before newline", LIT("\xc3\n"), LIT(FFFD "\\n")},
    {"truncated 3 then valid 2", LIT("\xe0\xa0\xc2\xa9"), LIT(FFFD FFFD "\xc2\xa9")},
    {"lead then lead", LIT("\xc3\xc3\xa9"), LIT(FFFD "\xc3\xa9")},
    /* lone continuation bytes */
    {"lone 80", LIT("\x80"), LIT(FFFD)},
    {"lone BF", LIT("\xbf"), LIT(FFFD)},
    {"continuations after valid", LIT("\xc3\xa9\x80\x80"), LIT("\xc3\xa9" FFFD FFFD)},
    {"latin-1 text", LIT("caf\xe9"), LIT("caf" FFFD)},
};

Test(wire_json_escape, table)
{
    for (size_t i = 0; i < sizeof(escape_cases) / sizeof(escape_cases[0]); i++) {
        size_t len;
        char *out =
            encode(ENC_ESCAPE, 0, NULL, 0, escape_cases[i].in, escape_cases[i].in_len, &len);
        assert_bytes(out, len, escape_cases[i].out, escape_cases[i].out_len, escape_cases[i].name);
        free(out);
        json_roundtrip(escape_cases[i].in, escape_cases[i].in_len);
    }
}

/* The expected escape of one byte on its own, from the rules in wire.h. */
static size_t escape_one(int b, char *out)
{
    switch (b) {
    case '"':
        return (size_t)sprintf(out, "\\\"");
    case '\\':
        return (size_t)sprintf(out, "\\\\");
    case '\n':
        return (size_t)sprintf(out, "\\n");
    case '\r':
        return (size_t)sprintf(out, "\\r");
    case '\t':
        return (size_t)sprintf(out, "\\t");
    default:
        break;
    }
    if (b < 0x20 || b == 0x7f)
        return (size_t)sprintf(out, "\\u%04x", b);
    if (b >= 0x80)
        return (size_t)sprintf(out, "\\ufffd");
    out[0] = (char)b;
    return 1;
}

Test(wire_json_escape, every_single_byte)
{
    for (int b = 0; b < 256; b++) {
        char in = (char)b, want[8], name[32];
        size_t want_len = escape_one(b, want), len;
        snprintf(name, sizeof(name), "byte %#x", b);
        char *out = encode(ENC_ESCAPE, 0, NULL, 0, &in, 1, &len);
        assert_bytes(out, len, want, want_len, name);
        free(out);
        json_roundtrip(&in, 1);
    }
}

Test(wire_json_escape, every_byte_pair)
{
    for (int a = 0; a < 256; a++) {
        for (int b = 0; b < 256; b++) {
            char in[2] = {(char)a, (char)b};
            json_roundtrip(in, 2);
        }
    }
}

/* Every scalar value passes through as it is; every surrogate, and every
 * overlong form of a smaller value, becomes one U+FFFD per byte. */
Test(wire_json_escape, every_code_point)
{
    char in[4], out[4 * 6];
    for (uint32_t cp = 0x80; cp <= 0x10ffff; cp++) {
        size_t n = utf8_put(in, cp);
        span_t s = span_of(in, n);
        size_t size = wire_json_escape_size(s);
        char *end = wire_json_escape_write(out, s);
        cr_assert_eq((size_t)(end - out), size);
        if (cp >= 0xd800 && cp <= 0xdfff) {
            cr_assert(size == 18 && memcmp(out, FFFD FFFD FFFD, 18) == 0, "U+%04X", cp);
        } else {
            cr_assert(size == n && memcmp(out, in, n) == 0, "U+%04X", cp);
        }
    }
}

/* Writes cp in `len` bytes even when it needs fewer (an overlong form). */
static void utf8_put_long(char *out, uint32_t cp, size_t len)
{
    static const unsigned char lead[] = {0, 0, 0xc0, 0xe0, 0xf0};
    for (size_t k = len - 1; k > 0; k--, cp >>= 6)
        out[k] = (char)(0x80 | (cp & 0x3f));
    out[0] = (char)(lead[len] | cp);
}

Test(wire_json_escape, every_overlong_and_out_of_range_form)
{
    static const struct {
        size_t len;
        uint32_t from, to;
    } ranges[] = {{2, 0, 0x7f}, {3, 0, 0x7ff}, {4, 0, 0xffff}, {4, 0x110000, 0x1fffff}};
    char in[4], out[4 * 6];
    for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
        for (uint32_t cp = ranges[r].from; cp <= ranges[r].to; cp++) {
            size_t n = ranges[r].len;
            utf8_put_long(in, cp, n);
            span_t s = span_of(in, n);
            size_t size = wire_json_escape_size(s);
            cr_assert_eq((size_t)(wire_json_escape_write(out, s) - out), size);
            cr_assert(size == 6 * n && memcmp(out, FFFD FFFD FFFD FFFD, 6 * n) == 0,
                      "%zu-byte form of %#x", n, cp);
        }
    }
}

Test(wire_json_escape, random_buffers)
{
    char buf[300];
    for (int i = 0; i < 20000; i++) {
        size_t n = rng() % sizeof(buf);
        random_bytes(buf, n);
        json_roundtrip(buf, n);
    }
}

/* ---- SSE event ------------------------------------------------------------ */

static const struct {
    const char *name;
    uint64_t id;
    const char *event;
    const char *data;
    size_t data_len;
    const char *want; /* the exact encoding */
    size_t want_len;
} sse_cases[] = {
    {"empty payload", 1, "", LIT(""), LIT("id: 1\ndata: \n\n")},
    {"empty payload, event", 1, "e", LIT(""), LIT("id: 1\nevent: e\ndata: \n\n")},
    {"one line", 1, "", LIT("hello"), LIT("id: 1\ndata: hello\n\n")},
    {"README example", 2, "price", LIT("{\"p\":3}"),
     LIT("id: 2\nevent: price\ndata: {\"p\":3}\n\n")},
    {"id 0", 0, "", LIT("x"), LIT("id: 0\ndata: x\n\n")},
    {"id max", UINT64_MAX, "", LIT("x"), LIT("id: 18446744073709551615\ndata: x\n\n")},
    {"LF", 3, "", LIT("a\nb"), LIT("id: 3\ndata: a\ndata: b\n\n")},
    {"CRLF", 3, "", LIT("a\r\nb"), LIT("id: 3\ndata: a\ndata: b\n\n")},
    {"CR", 3, "", LIT("a\rb"), LIT("id: 3\ndata: a\ndata: b\n\n")},
    {"mixed", 4, "ev", LIT("a\nb\r\nc\rd"),
     LIT("id: 4\nevent: ev\ndata: a\ndata: b\ndata: c\ndata: d\n\n")},
    {"trailing LF", 5, "", LIT("a\n"), LIT("id: 5\ndata: a\ndata: \n\n")},
    {"trailing CRLF", 5, "", LIT("a\r\n"), LIT("id: 5\ndata: a\ndata: \n\n")},
    {"trailing CR", 5, "", LIT("a\r"), LIT("id: 5\ndata: a\ndata: \n\n")},
    {"only LF", 6, "", LIT("\n"), LIT("id: 6\ndata: \ndata: \n\n")},
    {"only CRLF", 6, "", LIT("\r\n"), LIT("id: 6\ndata: \ndata: \n\n")},
    {"only CR", 6, "", LIT("\r"), LIT("id: 6\ndata: \ndata: \n\n")},
    {"LF CR is two breaks", 7, "", LIT("\n\r"), LIT("id: 7\ndata: \ndata: \ndata: \n\n")},
    {"CR CR LF is two breaks", 7, "", LIT("\r\r\n"), LIT("id: 7\ndata: \ndata: \ndata: \n\n")},
    {"blank line inside", 8, "", LIT("a\n\nb"), LIT("id: 8\ndata: a\ndata: \ndata: b\n\n")},
    {"leading space kept", 9, "", LIT(" x"), LIT("id: 9\ndata:  x\n\n")},
    {"looks like a field", 9, "", LIT("data: x\nid: 7\nevent: y"),
     LIT("id: 9\ndata: data: x\ndata: id: 7\ndata: event: y\n\n")},
    {"looks like a comment", 9, "", LIT(":x\r\n:y"), LIT("id: 9\ndata: :x\ndata: :y\n\n")},
    {"NUL byte", 10, "", LIT("a\0b"), LIT("id: 10\ndata: a\0b\n\n")},
};

Test(wire_sse, table)
{
    for (size_t i = 0; i < sizeof(sse_cases) / sizeof(sse_cases[0]); i++) {
        const char *ev = sse_cases[i].event;
        size_t len;
        char *out = sse_roundtrip(sse_cases[i].id, ev, strlen(ev), sse_cases[i].data,
                                  sse_cases[i].data_len, &len);
        assert_bytes(out, len, sse_cases[i].want, sse_cases[i].want_len, sse_cases[i].name);
        free(out);
    }
}

/* The README's promise for line breaks, read back the way a browser reads
 * it: \n comes back as it is, \r\n and \r come back as \n. */
Test(wire_sse, crlf_comes_back_as_lf)
{
    size_t len;
    char *out = sse_roundtrip(1, NULL, 0, LIT("x\r\ny\rz\n"), &len);
    struct sse_result r;
    sse_parse(out, len, &r);
    assert_bytes(r.data, r.data_len, LIT("x\ny\nz\n"), "normalised data");
    free(r.data);
    free(out);
}

Test(wire_sse, every_single_byte)
{
    for (int b = 0; b < 256; b++) {
        char in = (char)b, want[32], name[32];
        size_t want_len, len;
        if (b == '\n' || b == '\r') {
            want_len = (size_t)sprintf(want, "id: 1\ndata: \ndata: \n\n");
        } else {
            memcpy(want, "id: 1\ndata: ", 12);
            want[12] = (char)b;
            memcpy(want + 13, "\n\n", 2);
            want_len = 15;
        }
        snprintf(name, sizeof(name), "byte %#x", b);
        char *out = sse_roundtrip(1, NULL, 0, &in, 1, &len);
        assert_bytes(out, len, want, want_len, name);
        free(out);
    }
}

Test(wire_sse, every_byte_pair_with_and_without_event)
{
    for (int a = 0; a < 256; a++) {
        for (int b = 0; b < 256; b++) {
            char in[2] = {(char)a, (char)b};
            size_t len;
            free(sse_roundtrip((uint64_t)a << 8 | (uint64_t)b, NULL, 0, in, 2, &len));
            free(sse_roundtrip(1, "e", 1, in, 2, &len));
        }
    }
}

Test(wire_sse, random_buffers_and_events)
{
    static const char alphabet[] = "abcXYZ019_.:-";
    char buf[400], ev[WIRE_EVENT_MAX];
    for (int i = 0; i < 10000; i++) {
        size_t n = rng() % sizeof(buf), evn = rng() % 3 ? 0 : 1 + rng() % WIRE_EVENT_MAX;
        random_bytes(buf, n);
        for (size_t k = 0; k < evn; k++)
            ev[k] = alphabet[rng() % (sizeof(alphabet) - 1)];
        uint64_t id = rng() >> (rng() % 64);
        size_t len;
        free(sse_roundtrip(id, ev, evn, buf, n, &len));
    }
}

/* span.h lets an empty span carry a NULL base; the encoders must accept one. */
Test(wire_sse, null_empty_spans)
{
    static const char want[] = "id: 1\ndata: \n\n";
    cr_assert_eq(wire_sse_size(1, SPAN_NULL, SPAN_NULL), sizeof(want) - 1);
    char out[sizeof(want)];
    cr_assert_eq(wire_sse_write(out, 1, SPAN_NULL, SPAN_NULL) - out, sizeof(want) - 1);
    cr_assert(memcmp(out, want, sizeof(want) - 1) == 0);
}

/* ---- JSON element ---------------------------------------------------------- */

static const struct {
    const char *name;
    uint64_t id;
    const char *event;
    size_t event_len;
    const char *data;
    size_t data_len;
    const char *want;
} json_msg_cases[] = {
    {"plain", 1, LIT(""), LIT("hello"), "{\"id\":1,\"data\":\"hello\"}"},
    {"README example", 2, LIT("price"), LIT("{\"p\":3}"),
     "{\"id\":2,\"event\":\"price\",\"data\":\"{\\\"p\\\":3}\"}"},
    {"empty data", 0, LIT(""), LIT(""), "{\"id\":0,\"data\":\"\"}"},
    {"empty data, event", 3, LIT("e"), LIT(""), "{\"id\":3,\"event\":\"e\",\"data\":\"\"}"},
    {"id max", UINT64_MAX, LIT("e"), LIT("a\r\nb"),
     "{\"id\":18446744073709551615,\"event\":\"e\",\"data\":\"a\\r\\nb\"}"},
    {"invalid utf-8", 7, LIT(""),
     LIT("\xff"
         "a\xc3\xa9"),
     "{\"id\":7,\"data\":\"\\ufffda\xc3\xa9\"}"},
    {"event escaped too", 8, LIT("a\"b\x01"), LIT("x"),
     "{\"id\":8,\"event\":\"a\\\"b\\u0001\",\"data\":\"x\"}"},
};

Test(wire_json_msg, table)
{
    for (size_t i = 0; i < sizeof(json_msg_cases) / sizeof(json_msg_cases[0]); i++) {
        size_t len;
        char *out = encode(ENC_JSON_MSG, json_msg_cases[i].id, json_msg_cases[i].event,
                           json_msg_cases[i].event_len, json_msg_cases[i].data,
                           json_msg_cases[i].data_len, &len);
        assert_bytes(out, len, json_msg_cases[i].want, strlen(json_msg_cases[i].want),
                     json_msg_cases[i].name);
        free(out);
        json_msg_roundtrip(json_msg_cases[i].id, json_msg_cases[i].event,
                           json_msg_cases[i].event_len, json_msg_cases[i].data,
                           json_msg_cases[i].data_len);
    }
}

Test(wire_json_msg, every_single_byte_as_data_and_event)
{
    for (int b = 0; b < 256; b++) {
        char in = (char)b;
        json_msg_roundtrip((uint64_t)b, NULL, 0, &in, 1);
        json_msg_roundtrip(1, &in, 1, "x", 1);
    }
}

Test(wire_json_msg, random_buffers)
{
    char data[300], ev[80];
    for (int i = 0; i < 10000; i++) {
        size_t n = rng() % sizeof(data), evn = rng() % 2 ? 0 : rng() % sizeof(ev);
        random_bytes(data, n);
        random_bytes(ev, evn);
        json_msg_roundtrip(rng() >> (rng() % 64), ev, evn, data, n);
    }
}

Test(wire_json_msg, null_empty_spans)
{
    static const char want[] = "{\"id\":1,\"data\":\"\"}";
    cr_assert_eq(wire_json_msg_size(1, SPAN_NULL, SPAN_NULL), sizeof(want) - 1);
    char out[sizeof(want)];
    cr_assert_eq(wire_json_msg_write(out, 1, SPAN_NULL, SPAN_NULL) - out, sizeof(want) - 1);
    cr_assert(memcmp(out, want, sizeof(want) - 1) == 0);
    cr_assert_eq(wire_json_escape_size(SPAN_NULL), 0);
    cr_assert_eq(wire_json_escape_write(out, SPAN_NULL), out);
}
