/*
 * fuzz_wire.c: libFuzzer driver for the wire encoders.
 *
 * Each input is used twice: whole, as a payload with no event, and split into
 * an event and a payload (byte 0 gives the event's length, bytes 1..8 the id).
 * Every encoder writes into a buffer of exactly its size() from inputs copied
 * to buffers of exactly their length, so ASan sees any overrun, and write()
 * must end at size(). The JSON string must hold no raw control byte or DEL,
 * be valid UTF-8, and decode to the input with each byte of an invalid
 * sequence as U+FFFD; the JSON element must split into id, event and data
 * that decode the same way. The SSE event, read back by a small event-stream
 * parser (WHATWG rules), must be one event with the id, the event type and
 * the payload with its line ends normalised to \n. The event goes into SSE
 * only when wire_name_ok() accepts it, as the server demands of publishers.
 * Any disagreement aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "../ref_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* The fuzz build leaves UBSan recoverable: make a report stop the run. */
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_wire: check failed at line %d: %s\n", __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- reference decoders (more in ../ref_utf8.h) ------------------------------ */

static int hexval(char h)
{
    return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : -1;
}

/* Decodes a JSON string body into out (n bytes suffice); aborts on anything
 * RFC 8259 forbids there, on DEL, and on invalid UTF-8. */
static size_t json_unescape(const char *s, size_t n, char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = ref_utf8_len(p, n, i);
        FUZZ_CHECK(k != 0);
        FUZZ_CHECK(p[i] >= 0x20 && p[i] != 0x7f && p[i] != '"');
        if (p[i] != '\\') {
            memcpy(out + o, s + i, k);
            o += k, i += k;
            continue;
        }
        FUZZ_CHECK(i + 1 < n);
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case '"':
            out[o++] = '"';
            break;
        case '\\':
            out[o++] = '\\';
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
            FUZZ_CHECK(n - i >= 4);
            for (int d = 0; d < 4; d++) {
                int v = hexval(s[i + d]);
                FUZZ_CHECK(v >= 0);
                cp = cp << 4 | (uint32_t)v;
            }
            i += 4;
            /* The encoder escapes only control bytes, DEL and U+FFFD. */
            if (cp == 0xfffd) {
                memcpy(out + o, "\xef\xbf\xbd", 3);
                o += 3;
            } else {
                FUZZ_CHECK(cp < 0x20 || cp == 0x7f);
                out[o++] = (char)cp;
            }
            break;
        }
        default:
            FUZZ_CHECK(!"unknown escape");
        }
    }
    return o;
}

/* Checks that body (a JSON string body) decodes to in with invalid UTF-8
 * replaced. */
static void check_json_string(const char *body, size_t body_len, const char *in, size_t n)
{
    char *dec = malloc(body_len + 1), *want = malloc(3 * n + 1);
    FUZZ_CHECK(dec != NULL && want != NULL);
    size_t dl = json_unescape(body, body_len, dec), wl = ref_replace(in, n, want);
    FUZZ_CHECK(dl == wl && memcmp(dec, want, wl) == 0);
    free(dec);
    free(want);
}

/* Length of a JSON string body starting just after its opening quote. */
static size_t json_string_body(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] != '"')
        i += s[i] == '\\' ? 2 : 1;
    FUZZ_CHECK(i < n);
    return i;
}

/* ---- encoders, each into a buffer of exactly its size ------------------------ */

static span_t heap_copy(const char *p, size_t n)
{
    char *b = malloc(n);
    FUZZ_CHECK(b != NULL);
    if (n)
        memcpy(b, p, n);
    return span_of(b, n);
}

static void fuzz_escape(span_t in)
{
    size_t n = wire_json_escape_size(in);
    char *out = malloc(n);
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(wire_json_escape_write(out, in) == out + n);
    check_json_string(out, n, in.base, in.len);
    free(out);
}

static void fuzz_json_msg(uint64_t id, span_t ev, span_t in)
{
    size_t n = wire_json_msg_size(id, ev, in);
    char *out = malloc(n);
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(wire_json_msg_write(out, id, ev, in) == out + n);

    char idbuf[32];
    int idn = snprintf(idbuf, sizeof(idbuf), "{\"id\":%llu", (unsigned long long)id);
    FUZZ_CHECK(n > (size_t)idn && memcmp(out, idbuf, (size_t)idn) == 0);
    size_t i = (size_t)idn;
    if (ev.len) {
        FUZZ_CHECK(n - i > 10 && memcmp(out + i, ",\"event\":\"", 10) == 0);
        i += 10;
        size_t k = json_string_body(out + i, n - i);
        check_json_string(out + i, k, ev.base, ev.len);
        i += k + 1;
    }
    FUZZ_CHECK(n - i > 9 && memcmp(out + i, ",\"data\":\"", 9) == 0);
    i += 9;
    size_t k = json_string_body(out + i, n - i);
    check_json_string(out + i, k, in.base, in.len);
    i += k;
    FUZZ_CHECK(n - i == 2 && memcmp(out + i, "\"}", 2) == 0);
    free(out);
}

/* Reads the event stream back by the WHATWG rules (on bytes; the spec's UTF-8
 * decoding changes nothing that is compared here) and checks it is exactly
 * one event carrying id, ev and in with \r\n and \r as \n. */
static void check_sse(const char *s, size_t n, uint64_t id, span_t ev, span_t in)
{
    char *buf = malloc(n + 1), type[WIRE_EVENT_MAX + 1] = "", idv[32] = "";
    size_t blen = 0, i = 0;
    int events = 0;
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(memchr(s, '\r', n) == NULL);
    while (i < n) {
        size_t start = i;
        while (i < n && s[i] != '\n')
            i++;
        FUZZ_CHECK(i < n); /* every line ends */
        span_t line = span_of(s + start, i - start);
        i++;
        if (line.len == 0) {
            FUZZ_CHECK(i == n && events++ == 0); /* one event, nothing after */
            break;
        }
        const char *colon = memchr(line.base, ':', line.len);
        FUZZ_CHECK(colon != NULL && colon != line.base); /* no comments, no bare names */
        span_t field = span_of(line.base, (size_t)(colon - line.base));
        span_t value = span_of(colon + 1, line.len - field.len - 1);
        if (value.len && value.base[0] == ' ')
            value = span_of(value.base + 1, value.len - 1);
        if (span_eq(field, SPAN_LIT("data"))) {
            memcpy(buf + blen, value.base, value.len);
            blen += value.len;
            buf[blen++] = '\n';
        } else if (span_eq(field, SPAN_LIT("event"))) {
            FUZZ_CHECK(value.len <= WIRE_EVENT_MAX);
            memcpy(type, value.base, value.len);
            type[value.len] = 0;
        } else {
            FUZZ_CHECK(span_eq(field, SPAN_LIT("id")) && value.len < sizeof(idv));
            memcpy(idv, value.base, value.len);
            idv[value.len] = 0;
        }
    }
    FUZZ_CHECK(events == 1 && blen > 0);
    blen--; /* the dispatch drops the last \n */

    char want_id[32];
    snprintf(want_id, sizeof(want_id), "%llu", (unsigned long long)id);
    FUZZ_CHECK(strcmp(idv, want_id) == 0);
    FUZZ_CHECK(strlen(type) == ev.len && memcmp(type, ev.base, ev.len) == 0);

    char *want = malloc(in.len + 1);
    size_t wl = 0;
    FUZZ_CHECK(want != NULL);
    for (size_t k = 0; k < in.len; k++) {
        if (in.base[k] == '\r') {
            want[wl++] = '\n';
            if (k + 1 < in.len && in.base[k + 1] == '\n')
                k++;
        } else {
            want[wl++] = in.base[k];
        }
    }
    FUZZ_CHECK(blen == wl && memcmp(buf, want, wl) == 0);
    free(want);
    free(buf);
}

static void fuzz_sse(uint64_t id, span_t ev, span_t in)
{
    size_t n = wire_sse_size(id, ev, in);
    char *out = malloc(n);
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(wire_sse_write(out, id, ev, in) == out + n);
    check_sse(out, n, id, ev, in);
    free(out);
}

static void fuzz_all(uint64_t id, const char *ev, size_t ev_len, const char *in, size_t in_len)
{
    span_t e = heap_copy(ev, ev_len), d = heap_copy(in, in_len);
    fuzz_escape(d);
    fuzz_escape(e);
    fuzz_json_msg(id, e, d);
    fuzz_sse(id, wire_name_ok(e, WIRE_EVENT_MAX) ? e : span_of(e.base, 0), d);
    free((void *)e.base);
    free((void *)d.base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    fuzz_all(size, "", 0, buf, size);
    if (size == 0)
        return 0;

    size_t ev_len = data[0] % 80, i = 1;
    uint64_t id = 0;
    for (int k = 0; k < 8 && i < size; k++, i++)
        id |= (uint64_t)data[i] << (8 * k);
    if (ev_len > size - i)
        ev_len = size - i;
    fuzz_all(id, buf + i, ev_len, buf + i + ev_len, size - i - ev_len);
    return 0;
}
