/*
 * fuzz_ws.c: libFuzzer driver for the WebSocket frame parser and assembler.
 *
 * The first input byte picks the parser flags (client or server frames,
 * permessage-deflate) and the frame and message limits; the rest is a byte
 * stream off the wire. It is decoded twice: from one buffer, and as if it
 * arrived in pieces of sizes drawn from a generator seeded by the input, each
 * parse made on an exact-size copy so that ASan sees any read past len and
 * each payload unmasked in random pieces. Both runs must report the same
 * events with the same payloads and end the same way. Every consumed length
 * must lie inside the input, and every parsed header must re-encode, through
 * ws_frame_header, to exactly the bytes it came from. Any disagreement aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_ws: check failed at line %d: %s\n", __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const uint64_t fuzz_limits[8] = {UINT64_MAX, 0, 1, 125, 126, 1000, 65535, 65536};

static uint64_t fuzz_rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mostly small steps, which split headers, now and then a large one. */
static size_t fuzz_step(uint64_t *s)
{
    uint64_t r = fuzz_rng_next(s);
    return (r & 7) == 0 ? 1 + (size_t)(r >> 8) % 512 : 1 + (size_t)(r >> 8) % 12;
}

/* What a run saw, folded into a hash so two runs compare in one step. */
struct fuzz_log {
    uint64_t hash;
    size_t events;
    size_t consumed; /* bytes taken by complete frames */
    int end;         /* WS_INCOMPLETE, or the error that stopped the run */
};

static void fuzz_mix(struct fuzz_log *log, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        log->hash = (log->hash ^ b[i]) * 0x100000001b3u;
}

static void fuzz_mix_int(struct fuzz_log *log, int64_t v)
{
    fuzz_mix(log, &v, sizeof(v));
}

static void fuzz_check_frame(const char *buf, size_t len, int hl, const struct ws_frame *f,
                             unsigned flags)
{
    FUZZ_CHECK(hl >= 2 && hl <= WS_MAX_HEADER && (size_t)hl <= len);
    FUZZ_CHECK(f->header_len == (size_t)hl);
    FUZZ_CHECK(f->payload_len <= len - (size_t)hl);
    FUZZ_CHECK(f->masked == !!(flags & WS_FROM_CLIENT));
    FUZZ_CHECK(!f->rsv1 || (flags & WS_DEFLATE));
    if (f->opcode & 8)
        FUZZ_CHECK(f->fin && f->payload_len <= WS_CONTROL_MAX_PAYLOAD);
    /* Lengths are minimal, so re-encoding gives back the very same bytes. */
    uint8_t hdr[WS_MAX_HEADER];
    size_t n = ws_frame_header(hdr, f->opcode, f->fin, f->rsv1, f->payload_len,
                               f->masked ? f->mask : NULL);
    FUZZ_CHECK(n == (size_t)hl && memcmp(hdr, buf, n) == 0);
}

/* Hands one unmasked frame to the reader and logs what it said. Returns the
 * reader's result. */
static int fuzz_deliver(struct ws_reader *r, const struct ws_frame *f, const char *payload,
                        struct fuzz_log *log)
{
    span_t p = span_of(payload, (size_t)f->payload_len);
    int ev = ws_reader_frame(r, f, p);
    FUZZ_CHECK((ev >= WS_EV_FRAGMENT && ev <= WS_EV_CLOSE) || ws_error_close_code(ev) != 0);

    /* The two validator paths agree on every payload. */
    uint32_t s1 = UTF8_ACCEPT, s2 = UTF8_ACCEPT;
    FUZZ_CHECK(utf8_validate(&s1, (const uint8_t *)p.base, p.len) ==
               utf8__validate_dfa(&s2, (const uint8_t *)p.base, p.len));

    fuzz_mix_int(log, ev);
    fuzz_mix_int(log, f->opcode);
    fuzz_mix_int(log, (int64_t)p.len);
    fuzz_mix(log, p.base, p.len);
    log->events++;
    if (ev == WS_EV_FRAGMENT || ev == WS_EV_MESSAGE) {
        FUZZ_CHECK(r->opcode == WS_OP_TEXT || r->opcode == WS_OP_BINARY);
        fuzz_mix_int(log, r->opcode);
    } else if (ev == WS_EV_CLOSE) {
        FUZZ_CHECK(r->close_code == WS_CLOSE_NO_STATUS || ws_close_code_valid(r->close_code));
        FUZZ_CHECK(utf8_is_valid((const uint8_t *)r->close_reason.base, r->close_reason.len));
        FUZZ_CHECK(r->close_reason.len == 0 ||
                   (r->close_reason.base == p.base + 2 && r->close_reason.len == p.len - 2));
        fuzz_mix_int(log, r->close_code);
        /* Our own close frame with that code and reason reads back the same. */
        uint8_t out[WS_CONTROL_FRAME_MAX];
        unsigned code = r->close_code == WS_CLOSE_NO_STATUS ? 0 : r->close_code;
        ssize_t n = ws_close_frame(out, code, r->close_reason, NULL);
        FUZZ_CHECK(n >= 2 && (size_t)n == 2 + p.len);
        FUZZ_CHECK(memcmp(out + 2, p.base, p.len) == 0);
    } else if (ev == WS_EV_PING) {
        uint8_t out[WS_CONTROL_FRAME_MAX];
        FUZZ_CHECK(ws_pong_frame(out, p, NULL) == (ssize_t)(2 + p.len));
    }
    return ev;
}

/* The whole stream from one buffer. */
static void fuzz_whole(const char *s, size_t n, unsigned flags, uint64_t max_frame,
                       uint64_t max_msg, struct fuzz_log *log)
{
    char *buf = malloc(n ? n : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, s, n);
    struct ws_reader r;
    ws_reader_init(&r, max_msg);
    size_t pos = 0;
    log->end = WS_INCOMPLETE;
    for (;;) {
        struct ws_frame f;
        int hl = ws_parse_frame(buf + pos, n - pos, flags, max_frame, &f);
        if (hl == WS_INCOMPLETE) {
            FUZZ_CHECK(f.header_len == 0 ||
                       (f.header_len <= n - pos && f.payload_len > n - pos - f.header_len));
            break;
        }
        if (hl < 0) {
            FUZZ_CHECK(ws_error_close_code(hl) != 0);
            log->end = hl;
            break;
        }
        fuzz_check_frame(buf + pos, n - pos, hl, &f, flags);
        char *payload = buf + pos + hl;
        if (f.masked)
            ws_unmask(payload, (size_t)f.payload_len, f.mask, 0);
        pos += (size_t)hl + (size_t)f.payload_len;
        int ev = fuzz_deliver(&r, &f, payload, log);
        if (ev < 0) {
            log->end = ev;
            /* Errors stick. */
            FUZZ_CHECK(ws_reader_frame(&r, &f, span_of(payload, (size_t)f.payload_len)) == ev);
            break;
        }
    }
    log->consumed = pos;
    free(buf);
}

/* The same stream arriving in pieces: a receive buffer is topped up, every
 * complete frame at its front is handled and consumed. */
static void fuzz_split(const char *s, size_t n, unsigned flags, uint64_t max_frame,
                       uint64_t max_msg, uint64_t *seed, struct fuzz_log *log)
{
    char *rx = malloc(n ? n : 1);
    FUZZ_CHECK(rx != NULL);
    struct ws_reader r;
    ws_reader_init(&r, max_msg);
    size_t have = 0, fed = 0, consumed = 0;
    log->end = WS_INCOMPLETE;
    while (fed < n && log->end == WS_INCOMPLETE) {
        size_t k = fuzz_step(seed);
        if (k > n - fed)
            k = n - fed;
        memcpy(rx + have, s + fed, k);
        have += k;
        fed += k;
        for (;;) {
            /* An exact-size copy: ASan catches a read of copy[have]. */
            char *copy = malloc(have ? have : 1);
            FUZZ_CHECK(copy != NULL);
            memcpy(copy, rx, have);
            struct ws_frame f;
            int hl = ws_parse_frame(copy, have, flags, max_frame, &f);
            if (hl == WS_INCOMPLETE) {
                free(copy);
                break;
            }
            if (hl < 0) {
                log->end = hl;
                free(copy);
                break;
            }
            fuzz_check_frame(copy, have, hl, &f, flags);
            size_t plen = (size_t)f.payload_len;
            char *payload = copy + hl;
            /* Unmask in random pieces, as a caller would when the payload
             * lands in several buffers. */
            for (size_t off = 0; f.masked && off < plen;) {
                size_t piece = fuzz_step(seed);
                if (piece > plen - off)
                    piece = plen - off;
                ws_unmask(payload + off, piece, f.mask, off);
                off += piece;
            }
            int ev = fuzz_deliver(&r, &f, payload, log);
            size_t used = (size_t)hl + plen;
            memmove(rx, rx + used, have - used);
            have -= used;
            consumed += used;
            free(copy);
            if (ev < 0) {
                log->end = ev;
                break;
            }
        }
    }
    log->consumed = consumed;
    free(rx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned cfg = data[0];
    unsigned flags = (cfg & 1 ? WS_FROM_CLIENT : 0) | (cfg & 2 ? WS_DEFLATE : 0);
    uint64_t max_frame = fuzz_limits[(cfg >> 2) & 7];
    uint64_t max_msg = cfg & 0x20 ? max_frame : UINT64_MAX;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;

    uint64_t seed = 0xcbf29ce484222325u; /* FNV-1a of the input seeds the steps */
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3u;
    seed |= 1;

    struct fuzz_log whole = {0xcbf29ce484222325u, 0, 0, 0};
    struct fuzz_log split = {0xcbf29ce484222325u, 0, 0, 0};
    fuzz_whole(s, n, flags, max_frame, max_msg, &whole);
    fuzz_split(s, n, flags, max_frame, max_msg, &seed, &split);
    FUZZ_CHECK(whole.consumed <= n);
    FUZZ_CHECK(whole.end == split.end);
    FUZZ_CHECK(whole.events == split.events);
    FUZZ_CHECK(whole.consumed == split.consumed);
    FUZZ_CHECK(whole.hash == split.hash);
    return 0;
}
