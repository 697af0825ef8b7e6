/*
 * test_ws.c: unit tests for the WebSocket codec: accept key, frame parser,
 * unmasking, message assembler and encoder.
 *
 * Table-driven in the picohttpparser manner: each valid frame must report
 * "incomplete" for every truncated prefix and parse to the table's fields when
 * whole, placed at the end of a page followed by a PROT_NONE page so any read
 * past len crashes. Each violation must give its own error and close code, on
 * the whole input and on the prefixes that already show it. The assembler is
 * driven through frame sequences (fragments, interleaved control frames, size
 * limits, UTF-8 split anywhere) and the encoder's output is parsed back.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "utf8.h"
#include "util.h"
#include "ws.h"

/* ---- helpers ------------------------------------------------------------- */

/* Writable pages followed by a PROT_NONE page. Inputs are copied so they end
 * exactly at the boundary: a read of buf[len] faults. */
struct guard {
    char *base;
    size_t size, page;
};

static struct guard guard_new(size_t need)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = (need + ps - 1) / ps * ps;
    if (size == 0)
        size = ps;
    char *p = mmap(NULL, size + ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(p != MAP_FAILED);
    cr_assert(mprotect(p + size, ps, PROT_NONE) == 0);
    return (struct guard){p, size, ps};
}

static void guard_free(struct guard g)
{
    munmap(g.base, g.size + g.page);
}

static char *guard_place(struct guard g, const void *data, size_t len)
{
    cr_assert(len <= g.size);
    char *dst = g.base + g.size - len;
    if (len)
        memcpy(dst, data, len);
    return dst;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill_random(void *p, size_t n, uint64_t *rng)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(rng_next(rng) >> 24);
}

static void naive_xor(char *p, size_t n, const uint8_t key[4], size_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= (char)key[(offset + i) % 4];
}

/*
 * Builds a frame by hand, independently of ws_frame_header: b0 is the first
 * byte as sent, len_form 0 picks the minimal length form, or forces 7, 16 or
 * 64 bits. The payload is masked when key is not NULL. Returns the length.
 */
static size_t build_frame(uint8_t *out, uint8_t b0, int len_form, const uint8_t *key,
                          const void *payload, size_t plen)
{
    size_t n = 0;
    uint8_t mbit = key ? 0x80 : 0;
    out[n++] = b0;
    if (len_form == 0)
        len_form = plen < 126 ? 7 : plen < 65536 ? 16 : 64;
    if (len_form == 7) {
        out[n++] = mbit | (uint8_t)plen;
    } else if (len_form == 16) {
        out[n++] = mbit | 126;
        out[n++] = (uint8_t)(plen >> 8);
        out[n++] = (uint8_t)plen;
    } else {
        out[n++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)plen >> (8 * i));
    }
    if (key) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    if (plen)
        memcpy(out + n, payload, plen);
    if (key)
        naive_xor((char *)out + n, plen, key, 0);
    return n + plen;
}

/* ---- accept key ---------------------------------------------------------- */

/* RFC 6455 sections 1.3 and 4.2.2 give this pair. (The issue quoted
 * "s3pPLMBiTxaYhlbv2KIwDYdxC4Q=", which is not the SHA-1 of anything here:
 * Python's hashlib and openssl agree with the RFC.) The others were computed
 * with Python's hashlib and base64, the second is MDN's example. */
Test(ws, accept_key_known_answers)
{
    static const struct {
        const char *key, *accept;
    } kat[] = {
        {"dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
        {"x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
        {"AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
        {"/////////////////////w==", "XXpj4jYzLM2yUE0C7TIgMwTQh2g="},
    };
    for (size_t i = 0; i < ARRAY_SIZE(kat); i++) {
        char out[WS_ACCEPT_LEN + 1];
        out[WS_ACCEPT_LEN] = '#';
        cr_assert_eq(ws_accept_key(span_cstr(kat[i].key), out), 0, "key %s", kat[i].key);
        cr_expect(memcmp(out, kat[i].accept, WS_ACCEPT_LEN) == 0, "key %s: got %.28s", kat[i].key,
                  out);
        cr_expect_eq(out[WS_ACCEPT_LEN], '#', "wrote past the 28 characters");
    }
}

Test(ws, accept_key_rejects_what_is_not_16_bytes)
{
    static const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ",       /* padding missing */
        "dGhlIHNhbXBsZSBub25jZQ=",      /* half the padding */
        "dGhlIHNhbXBsZSBub25jZQ==AAAA", /* trailing data wolfSSL would ignore */
        "dGhlIHNhbXBsZSBub25jZQ== ",    /* trailing space */
        " dGhlIHNhbXBsZSBub25jZQ==",
        "dGhlIHNh bXBsZSBub25jZ==",     /* inner space, still 24 long */
        "dGhlIHNhbXBsZSBub25j*Q==",     /* not base64 */
        "dGhlIHNhbXBsZSBub25jZ===",     /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZQAA",     /* 18 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 21 bytes */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char out[WS_ACCEPT_LEN];
        cr_expect_eq(ws_accept_key(span_cstr(bad[i]), out), -EINVAL, "key \"%s\"", bad[i]);
    }
    /* Any 16 bytes are a fine nonce, including ones that look odd. */
    char out[WS_ACCEPT_LEN];
    cr_expect_eq(ws_accept_key(SPAN_LIT("+/+/+/+/+/+/+/+/+/+/+w=="), out), 0);
}

/* ---- frame parser: valid frames ----------------------------------------- */

struct valid_frame {
    const char *name;
    uint8_t b0;
    int len_form; /* 0 minimal */
    int masked;
    size_t plen;
    unsigned flags;
    int want_hdr;
};

static const uint8_t key1[4] = {0x37, 0xfa, 0x21, 0x3d};

static const struct valid_frame valid_frames[] = {
    {"text, server", 0x81, 0, 0, 5, 0, 2},
    {"text, client", 0x81, 0, 1, 5, WS_FROM_CLIENT, 6},
    {"empty text", 0x81, 0, 1, 0, WS_FROM_CLIENT, 6},
    {"first fragment", 0x01, 0, 1, 3, WS_FROM_CLIENT, 6},
    {"continuation", 0x00, 0, 1, 3, WS_FROM_CLIENT, 6},
    {"last continuation", 0x80, 0, 1, 2, WS_FROM_CLIENT, 6},
    {"binary", 0x82, 0, 1, 100, WS_FROM_CLIENT, 6},
    {"binary 125", 0x82, 0, 1, 125, WS_FROM_CLIENT, 6},
    {"binary 126", 0x82, 0, 1, 126, WS_FROM_CLIENT, 8},
    {"binary 256, server", 0x82, 0, 0, 256, 0, 4},
    {"binary 65535", 0x82, 0, 1, 65535, WS_FROM_CLIENT, 8},
    {"binary 65536", 0x82, 0, 1, 65536, WS_FROM_CLIENT, 14},
    {"binary 65536, server", 0x82, 0, 0, 65536, 0, 10},
    {"ping", 0x89, 0, 1, 5, WS_FROM_CLIENT, 6},
    {"ping 125", 0x89, 0, 1, 125, WS_FROM_CLIENT, 6},
    {"empty ping", 0x89, 0, 1, 0, WS_FROM_CLIENT, 6},
    {"pong, server", 0x8a, 0, 0, 5, 0, 2},
    {"close", 0x88, 0, 1, 2, WS_FROM_CLIENT, 6},
    {"empty close", 0x88, 0, 1, 0, WS_FROM_CLIENT, 6},
    {"compressed text", 0xc1, 0, 1, 10, WS_FROM_CLIENT | WS_DEFLATE, 6},
    {"compressed first fragment", 0x42, 0, 1, 10, WS_FROM_CLIENT | WS_DEFLATE, 6},
    {"deflate, plain text", 0x81, 0, 1, 10, WS_FROM_CLIENT | WS_DEFLATE, 6},
};

static void expect_fields(const struct valid_frame *c, const struct ws_frame *f)
{
    cr_expect_eq(f->opcode, c->b0 & 0x0f, "%s: opcode", c->name);
    cr_expect_eq(f->fin, c->b0 >> 7, "%s: fin", c->name);
    cr_expect_eq(f->rsv1, (c->b0 >> 6) & 1, "%s: rsv1", c->name);
    cr_expect_eq(f->masked, c->masked, "%s: masked", c->name);
    cr_expect_eq(f->payload_len, c->plen, "%s: payload_len", c->name);
    cr_expect_eq(f->header_len, (size_t)c->want_hdr, "%s: header_len", c->name);
    if (c->masked)
        cr_expect(memcmp(f->mask, key1, 4) == 0, "%s: mask", c->name);
}

Test(ws, valid_frames_whole_prefixes_and_guard_page)
{
    uint64_t rng = 1;
    for (size_t i = 0; i < ARRAY_SIZE(valid_frames); i++) {
        const struct valid_frame *c = &valid_frames[i];
        uint8_t *payload = malloc(c->plen + 1), *raw = malloc(c->plen + WS_MAX_HEADER + 8);
        cr_assert(payload && raw);
        fill_random(payload, c->plen, &rng);
        size_t n = build_frame(raw, c->b0, c->len_form, c->masked ? key1 : NULL, payload, c->plen);
        struct guard g = guard_new(n);
        struct ws_frame f;

        /* Whole, ending at the guard page. */
        char *buf = guard_place(g, raw, n);
        int r = ws_parse_frame(buf, n, c->flags, UINT64_MAX, &f);
        cr_assert_eq(r, c->want_hdr, "%s: returned %d", c->name, r);
        expect_fields(c, &f);
        if (c->masked)
            ws_unmask(buf + r, c->plen, f.mask, 0);
        cr_expect(c->plen == 0 || memcmp(buf + r, payload, c->plen) == 0, "%s: payload", c->name);

        /* Every truncated prefix, each against the guard page too. Once the
         * header is in, the fields are already there. */
        for (size_t k = 0; k < n; k++) {
            if (k > 64 && k < n - 64 && k != (size_t)c->want_hdr)
                continue; /* the middle of a long payload tells nothing new */
            buf = guard_place(g, raw, k);
            r = ws_parse_frame(buf, k, c->flags, UINT64_MAX, &f);
            cr_assert_eq(r, WS_INCOMPLETE, "%s: prefix %zu returned %d", c->name, k, r);
            if (k >= (size_t)c->want_hdr)
                expect_fields(c, &f);
            else
                cr_expect_eq(f.header_len, 0, "%s: prefix %zu header_len", c->name, k);
        }

        /* With the next frame behind it, the same answer. */
        memcpy(raw + n, "\x81\x80xxxx", 6);
        r = ws_parse_frame((const char *)raw, n + 6, c->flags, UINT64_MAX, &f);
        cr_expect_eq(r, c->want_hdr, "%s: followed by another frame", c->name);

        /* A limit at exactly the payload length lets it through. */
        r = ws_parse_frame((const char *)raw, n, c->flags, c->plen, &f);
        cr_expect_eq(r, c->want_hdr, "%s: at the limit", c->name);

        guard_free(g);
        free(payload);
        free(raw);
    }
}

/* The RFC 6455 section 5.7 examples, byte for byte. */
Test(ws, rfc6455_examples)
{
    static const struct {
        const char *raw;
        size_t len;
        unsigned flags;
        int opcode, fin;
        const char *payload;
    } ex[] = {
        {"\x81\x05\x48\x65\x6c\x6c\x6f", 7, 0, WS_OP_TEXT, 1, "Hello"},
        {"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11, WS_FROM_CLIENT, WS_OP_TEXT, 1,
         "Hello"},
        {"\x01\x03\x48\x65\x6c", 5, 0, WS_OP_TEXT, 0, "Hel"},
        {"\x80\x02\x6c\x6f", 4, 0, WS_OP_CONT, 1, "lo"},
        {"\x89\x05\x48\x65\x6c\x6c\x6f", 7, 0, WS_OP_PING, 1, "Hello"},
        {"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11, WS_FROM_CLIENT, WS_OP_PONG, 1,
         "Hello"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ex); i++) {
        char buf[16];
        struct ws_frame f;
        memcpy(buf, ex[i].raw, ex[i].len);
        int r = ws_parse_frame(buf, ex[i].len, ex[i].flags, UINT64_MAX, &f);
        cr_assert_gt(r, 0, "example %zu", i);
        cr_expect_eq(f.opcode, ex[i].opcode);
        cr_expect_eq(f.fin, ex[i].fin);
        cr_expect_eq((size_t)r + f.payload_len, ex[i].len);
        if (f.masked)
            ws_unmask(buf + r, f.payload_len, f.mask, 0);
        cr_expect(memcmp(buf + r, ex[i].payload, f.payload_len) == 0, "example %zu", i);
    }
}

/* ---- frame parser: violations -------------------------------------------- */

struct bad_frame {
    const char *name;
    const char *raw;
    size_t len;
    unsigned flags;
    uint64_t max; /* 0: none */
    int err;
    int close_code;
};

#define C  WS_FROM_CLIENT
#define MK "\x01\x02\x03\x04"

static const struct bad_frame bad_frames[] = {
    {"RSV1 without deflate", "\xc1\x80" MK, 6, C, 0, WS_ERR_RSV, 1002},
    {"RSV2", "\xa1\x80" MK, 6, C | WS_DEFLATE, 0, WS_ERR_RSV, 1002},
    {"RSV3", "\x91\x80" MK, 6, C | WS_DEFLATE, 0, WS_ERR_RSV, 1002},
    {"RSV1 on a continuation", "\x40\x80" MK, 6, C | WS_DEFLATE, 0, WS_ERR_RSV, 1002},
    {"RSV1 on a ping", "\xc9\x80" MK, 6, C | WS_DEFLATE, 0, WS_ERR_RSV, 1002},
    {"RSV1 on a close", "\xc8\x80" MK, 6, C | WS_DEFLATE, 0, WS_ERR_RSV, 1002},
    {"opcode 3", "\x83\x80" MK, 6, C, 0, WS_ERR_OPCODE, 1002},
    {"opcode 7", "\x87\x80" MK, 6, C, 0, WS_ERR_OPCODE, 1002},
    {"opcode B", "\x8b\x80" MK, 6, C, 0, WS_ERR_OPCODE, 1002},
    {"opcode F", "\x8f\x80" MK, 6, C, 0, WS_ERR_OPCODE, 1002},
    {"client frame unmasked", "\x81\x05Hello", 7, C, 0, WS_ERR_MASK, 1002},
    {"client ping unmasked", "\x89\x00", 2, C, 0, WS_ERR_MASK, 1002},
    {"server frame masked", "\x81\x85" MK "Hello", 11, 0, 0, WS_ERR_MASK, 1002},
    {"ping without FIN", "\x09\x80" MK, 6, C, 0, WS_ERR_CONTROL, 1002},
    {"close without FIN", "\x08\x80" MK, 6, C, 0, WS_ERR_CONTROL, 1002},
    {"pong without FIN", "\x0a\x80" MK, 6, C, 0, WS_ERR_CONTROL, 1002},
    {"ping of 126 (16-bit)", "\x89\xfe\x00\x7e" MK, 8, C, 0, WS_ERR_CONTROL, 1002},
    {"ping of 64-bit length", "\x89\xff\x00\x00\x00\x00\x00\x00\x00\x7e" MK, 14, C, 0,
     WS_ERR_CONTROL, 1002},
    {"close of 126", "\x88\xfe\x00\x7e" MK, 8, C, 0, WS_ERR_CONTROL, 1002},
    {"16-bit length 0", "\x82\xfe\x00\x00" MK, 8, C, 0, WS_ERR_LENGTH, 1002},
    {"16-bit length 125", "\x82\xfe\x00\x7d" MK, 8, C, 0, WS_ERR_LENGTH, 1002},
    {"64-bit length 0", "\x82\xff\x00\x00\x00\x00\x00\x00\x00\x00" MK, 14, C, 0, WS_ERR_LENGTH,
     1002},
    {"64-bit length 126", "\x82\xff\x00\x00\x00\x00\x00\x00\x00\x7e" MK, 14, C, 0, WS_ERR_LENGTH,
     1002},
    {"64-bit length 65535", "\x82\xff\x00\x00\x00\x00\x00\x00\xff\xff" MK, 14, C, 0, WS_ERR_LENGTH,
     1002},
    {"64-bit top bit", "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00" MK, 14, C, 0, WS_ERR_LENGTH,
     1002},
    {"64-bit all ones", "\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff" MK, 14, C, 0, WS_ERR_LENGTH,
     1002},
    {"over the limit, 7-bit", "\x82\x8b" MK "hello world", 17, C, 10, WS_ERR_TOO_BIG, 1009},
    {"over the limit, 16-bit", "\x82\xfe\x03\xe9" MK, 8, C, 1000, WS_ERR_TOO_BIG, 1009},
    {"over the limit, 64-bit", "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff" MK, 14, C, 1 << 20,
     WS_ERR_TOO_BIG, 1009},
    {"continuation over the limit", "\x00\xfe\x01\x00" MK, 8, C, 255, WS_ERR_TOO_BIG, 1009},
};

#undef C
#undef MK

Test(ws, violations_give_their_error_and_close_code)
{
    for (size_t i = 0; i < ARRAY_SIZE(bad_frames); i++) {
        const struct bad_frame *c = &bad_frames[i];
        uint64_t max = c->max ? c->max : UINT64_MAX;
        struct guard g = guard_new(c->len);
        struct ws_frame f;
        char *buf = guard_place(g, c->raw, c->len);
        int r = ws_parse_frame(buf, c->len, c->flags, max, &f);
        cr_expect_eq(r, c->err, "%s: returned %d, want %d", c->name, r, c->err);
        cr_expect_eq(ws_error_close_code(r), c->close_code, "%s: close code", c->name);
        /* Each prefix says "incomplete" or already the same error; once it has
         * said the error, every longer prefix does too. */
        int said = 0;
        for (size_t k = 0; k <= c->len; k++) {
            buf = guard_place(g, c->raw, k);
            r = ws_parse_frame(buf, k, c->flags, max, &f);
            cr_expect(r == WS_INCOMPLETE || r == c->err, "%s: prefix %zu returned %d", c->name, k,
                      r);
            cr_expect(!said || r == c->err, "%s: prefix %zu went back to %d", c->name, k, r);
            said |= r == c->err;
        }
        guard_free(g);
    }
}

Test(ws, errors_are_reported_early)
{
    struct ws_frame f;
    /* From the first byte alone. */
    cr_expect_eq(ws_parse_frame("\x83", 1, WS_FROM_CLIENT, UINT64_MAX, &f), WS_ERR_OPCODE);
    cr_expect_eq(ws_parse_frame("\xc1", 1, WS_FROM_CLIENT, UINT64_MAX, &f), WS_ERR_RSV);
    cr_expect_eq(ws_parse_frame("\x09", 1, WS_FROM_CLIENT, UINT64_MAX, &f), WS_ERR_CONTROL);
    /* From the second. */
    cr_expect_eq(ws_parse_frame("\x81\x05", 2, WS_FROM_CLIENT, UINT64_MAX, &f), WS_ERR_MASK);
    cr_expect_eq(ws_parse_frame("\x89\xfe", 2, WS_FROM_CLIENT, UINT64_MAX, &f), WS_ERR_CONTROL);
    /* The top bit of a 64-bit length from its first byte. */
    cr_expect_eq(ws_parse_frame("\x82\xff\x80", 3, WS_FROM_CLIENT, UINT64_MAX, &f), WS_ERR_LENGTH);
    /* A length over the limit before the mask key or the payload. */
    cr_expect_eq(ws_parse_frame("\x82\xfe\x10\x00", 4, WS_FROM_CLIENT, 4095, &f), WS_ERR_TOO_BIG);
}

Test(ws, every_reserved_opcode_refused)
{
    for (unsigned op = 0; op < 16; op++) {
        char raw[6] = {(char)(0x80 | op), (char)0x80, 1, 2, 3, 4};
        struct ws_frame f;
        int r = ws_parse_frame(raw, sizeof(raw), WS_FROM_CLIENT, UINT64_MAX, &f);
        int known = op <= 2 || (op >= 8 && op <= 10);
        if (known)
            cr_expect_eq(r, 6, "opcode %u", op);
        else
            cr_expect_eq(r, WS_ERR_OPCODE, "opcode %u", op);
    }
}

Test(ws, control_frames_ignore_the_data_limit)
{
    struct ws_frame f;
    uint8_t raw[WS_CONTROL_FRAME_MAX];
    char payload[125] = {0};
    size_t n = build_frame(raw, 0x89, 0, key1, payload, 125);
    cr_expect_eq(ws_parse_frame((const char *)raw, n, WS_FROM_CLIENT, 0, &f), 6);
}

/* ---- length forms at the boundaries -------------------------------------- */

Test(ws, length_forms_at_the_boundaries)
{
    static const struct {
        uint64_t len;
        const char *field; /* the length bytes after the first byte, unmasked */
        size_t field_len;
    } b[] = {
        {0, "\x00", 1},
        {125, "\x7d", 1},
        {126, "\x7e\x00\x7e", 3},
        {127, "\x7e\x00\x7f", 3},
        {65535, "\x7e\xff\xff", 3},
        {65536, "\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 9},
        {65537, "\x7f\x00\x00\x00\x00\x00\x01\x00\x01", 9},
    };
    uint64_t rng = 7;
    for (size_t i = 0; i < ARRAY_SIZE(b); i++) {
        for (int masked = 0; masked <= 1; masked++) {
            uint8_t hdr[WS_MAX_HEADER];
            size_t hl = ws_frame_header(hdr, WS_OP_BINARY, 1, 0, b[i].len, masked ? key1 : NULL);
            cr_assert_eq(hl, 1 + b[i].field_len + (masked ? 4 : 0), "len %lu",
                         (unsigned long)b[i].len);
            cr_expect_eq(hdr[0], 0x82);
            cr_expect_eq(hdr[1] & 0x80, masked ? 0x80 : 0);
            cr_expect_eq(hdr[1] & 0x7f, (uint8_t)b[i].field[0]);
            cr_expect(memcmp(hdr + 2, b[i].field + 1, b[i].field_len - 1) == 0);

            /* And parsed back with a payload of that size. */
            size_t total = hl + b[i].len;
            char *frame = malloc(total);
            cr_assert(frame);
            memcpy(frame, hdr, hl);
            fill_random(frame + hl, b[i].len, &rng);
            struct ws_frame f;
            unsigned flags = masked ? WS_FROM_CLIENT : 0;
            cr_expect_eq(ws_parse_frame(frame, total, flags, UINT64_MAX, &f), (int)hl);
            cr_expect_eq(f.payload_len, b[i].len);
            cr_expect_eq(ws_parse_frame(frame, total - 1, flags, UINT64_MAX, &f), WS_INCOMPLETE);
            free(frame);
        }
    }
}

Test(ws, non_minimal_lengths_rejected_for_every_small_value)
{
    struct ws_frame f;
    for (unsigned v = 0; v < 126; v++) {
        char raw16[8] = {(char)0x82, (char)0xfe, 0, (char)v, 1, 2, 3, 4};
        cr_expect_eq(ws_parse_frame(raw16, 8, WS_FROM_CLIENT, UINT64_MAX, &f), WS_ERR_LENGTH,
                     "16-bit %u", v);
    }
    for (unsigned v = 0; v < 65536; v += 257) {
        char raw64[14] = {(char)0x82, (char)0xff, 0, 0, 0, 0, 0, 0, (char)(v >> 8), (char)v};
        cr_expect_eq(ws_parse_frame(raw64, 14, WS_FROM_CLIENT, UINT64_MAX, &f), WS_ERR_LENGTH,
                     "64-bit %u", v);
    }
}

Test(ws, huge_length_is_incomplete_with_header_known)
{
    /* 2^63 - 1: legal, and the caller learns the size without the payload. */
    const char raw[] = "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x02\x03\x04";
    struct ws_frame f;
    cr_expect_eq(ws_parse_frame(raw, 14, WS_FROM_CLIENT, UINT64_MAX, &f), WS_INCOMPLETE);
    cr_expect_eq(f.header_len, 14);
    cr_expect_eq(f.payload_len, INT64_MAX);
    cr_expect_eq(ws_parse_frame(raw, 14, WS_FROM_CLIENT, INT64_MAX - 1, &f), WS_ERR_TOO_BIG);
}

/* ---- masking -------------------------------------------------------------- */

Test(ws, unmask_matches_naive_loop_at_every_alignment_and_offset)
{
    uint64_t rng = 42;
    char src[96 + 8], a[96 + 8], b[96 + 8];
    for (int rounds = 0; rounds < 20; rounds++) {
        uint8_t key[4];
        fill_random(key, 4, &rng);
        fill_random(src, sizeof(src), &rng);
        for (size_t n = 0; n <= 96; n++)
            for (size_t align = 0; align < 8; align++)
                for (size_t offset = 0; offset < 8; offset++) {
                    size_t off = offset == 7 ? SIZE_MAX - 2 : offset; /* wraps, too */
                    memcpy(a, src, sizeof(src));
                    memcpy(b, src, sizeof(src));
                    ws_unmask(a + align, n, key, off);
                    naive_xor(b + align, n, key, off);
                    cr_assert(memcmp(a, b, sizeof(a)) == 0, "n %zu align %zu offset %zu", n, align,
                              off);
                }
    }
}

Test(ws, mask_roundtrip_in_random_pieces)
{
    uint64_t rng = 99;
    size_t n = 100000;
    char *orig = malloc(n), *buf = malloc(n);
    cr_assert(orig && buf);
    for (int rounds = 0; rounds < 10; rounds++) {
        uint8_t key[4];
        fill_random(key, 4, &rng);
        fill_random(orig, n, &rng);
        memcpy(buf, orig, n);
        ws_unmask(buf, n, key, 0); /* mask in one go */
        for (size_t pos = 0; pos < n;) {
            size_t k = 1 + (size_t)(rng_next(&rng) % 4000);
            if (k > n - pos)
                k = n - pos;
            ws_unmask(buf + pos, k, key, pos); /* unmask piecewise */
            pos += k;
        }
        cr_assert(memcmp(buf, orig, n) == 0);
    }
    free(orig);
    free(buf);
}

/* ---- assembler ------------------------------------------------------------ */

/* Feeds one frame to r as the server would: builds it masked, parses it,
 * unmasks it and hands it over. Returns the event or error. */
static int feed(struct ws_reader *r, uint8_t b0, const void *payload, size_t len)
{
    uint8_t *raw = malloc(len + WS_MAX_HEADER);
    cr_assert(raw);
    size_t n = build_frame(raw, b0, 0, key1, payload, len);
    struct ws_frame f;
    int hl = ws_parse_frame((const char *)raw, n, WS_FROM_CLIENT | WS_DEFLATE, UINT64_MAX, &f);
    cr_assert_gt(hl, 0, "frame b0=%02x len %zu did not parse: %d", b0, len, hl);
    ws_unmask((char *)raw + hl, f.payload_len, f.mask, 0);
    int ev = ws_reader_frame(r, &f, span_of((const char *)raw + hl, f.payload_len));
    free(raw);
    return ev;
}

/* Like feed, for a payload that must stay valid afterwards (close reason). */
static int feed_keep(struct ws_reader *r, uint8_t b0, const char *payload, size_t len)
{
    struct ws_frame f = {.payload_len = len,
                         .header_len = 6,
                         .opcode = b0 & 0x0f,
                         .fin = b0 >> 7,
                         .rsv1 = (b0 >> 6) & 1,
                         .masked = 1};
    return ws_reader_frame(r, &f, span_of(payload, len));
}

Test(ws, fragmented_message_with_control_frames_between)
{
    struct ws_reader r;
    ws_reader_init(&r, 1 << 20);
    cr_expect_eq(feed(&r, 0x01, "Hel", 3), WS_EV_FRAGMENT);
    cr_expect_eq(r.opcode, WS_OP_TEXT);
    cr_expect_eq(feed(&r, 0x89, "p1", 2), WS_EV_PING);
    cr_expect_eq(feed(&r, 0x00, "lo ", 3), WS_EV_FRAGMENT);
    cr_expect_eq(feed(&r, 0x8a, "", 0), WS_EV_PONG);
    cr_expect_eq(feed(&r, 0x89, "", 0), WS_EV_PING);
    cr_expect_eq(feed(&r, 0x00, "", 0), WS_EV_FRAGMENT); /* empty fragments are legal */
    cr_expect_eq(feed(&r, 0x80, "world", 5), WS_EV_MESSAGE);
    cr_expect_eq(r.opcode, WS_OP_TEXT);
    /* And the next message starts clean. */
    cr_expect_eq(feed(&r, 0x82, "\xff\xfe", 2), WS_EV_MESSAGE);
    cr_expect_eq(r.opcode, WS_OP_BINARY);
    cr_expect_eq(feed(&r, 0x81, "", 0), WS_EV_MESSAGE);
    cr_expect_eq(r.opcode, WS_OP_TEXT);
    /* A close between fragments is reported too. */
    cr_expect_eq(feed(&r, 0x02, "ab", 2), WS_EV_FRAGMENT);
    cr_expect_eq(feed_keep(&r, 0x88, "\x03\xe8", 2), WS_EV_CLOSE);
    cr_expect_eq(r.close_code, 1000);
}

Test(ws, continuation_without_a_message)
{
    struct ws_reader r;
    ws_reader_init(&r, UINT64_MAX);
    int ev = feed(&r, 0x80, "x", 1);
    cr_expect_eq(ev, WS_ERR_CONTINUATION);
    cr_expect_eq(ws_error_close_code(ev), 1002);
    /* Errors are sticky. */
    cr_expect_eq(feed(&r, 0x81, "ok", 2), WS_ERR_CONTINUATION);

    ws_reader_init(&r, UINT64_MAX);
    cr_expect_eq(feed(&r, 0x00, "x", 1), WS_ERR_CONTINUATION);
    /* After a complete message, too. */
    ws_reader_init(&r, UINT64_MAX);
    cr_expect_eq(feed(&r, 0x81, "a", 1), WS_EV_MESSAGE);
    cr_expect_eq(feed(&r, 0x80, "b", 1), WS_ERR_CONTINUATION);
}

Test(ws, new_data_frame_inside_a_fragmented_message)
{
    static const uint8_t second[] = {0x81, 0x01, 0x82, 0x02};
    for (size_t i = 0; i < ARRAY_SIZE(second); i++) {
        struct ws_reader r;
        ws_reader_init(&r, UINT64_MAX);
        cr_expect_eq(feed(&r, 0x01, "a", 1), WS_EV_FRAGMENT);
        int ev = feed(&r, second[i], "b", 1);
        cr_expect_eq(ev, WS_ERR_INTERLEAVED, "second frame %02x", second[i]);
        cr_expect_eq(ws_error_close_code(ev), 1002);
    }
}

/* A 1 MiB limit; messages of max-1, max and max+1 bytes in 64 KiB fragments.
 * The one over must fail at the fragment that crosses the limit. */
Test(ws, message_size_limit_across_fragments)
{
    const uint64_t max = 1 << 20;
    const size_t frag = 1 << 16;
    char *chunk = malloc(frag);
    cr_assert(chunk);
    memset(chunk, 'x', frag);
    for (int delta = -1; delta <= 1; delta++) {
        for (int op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
            struct ws_reader r;
            ws_reader_init(&r, max);
            uint64_t total = max + (uint64_t)(int64_t)delta, sent = 0;
            int ev = 0;
            for (int first = 1; sent < total; first = 0) {
                size_t k = total - sent < frag ? (size_t)(total - sent) : frag;
                int last = sent + k == total;
                uint8_t b0 = (uint8_t)((last ? 0x80 : 0) | (first ? op : 0));
                ev = feed(&r, b0, chunk, k);
                sent += k;
                if (ev < 0 || last)
                    break;
                cr_assert_eq(ev, WS_EV_FRAGMENT);
            }
            if (delta <= 0) {
                cr_expect_eq(ev, WS_EV_MESSAGE, "delta %d op %d", delta, op);
                cr_expect_eq(sent, total);
            } else {
                cr_expect_eq(ev, WS_ERR_TOO_BIG, "delta %d op %d", delta, op);
                cr_expect_eq(ws_error_close_code(ev), 1009);
                cr_expect_eq(sent, total, "failed at %lu", (unsigned long)sent);
            }
        }
    }
    /* Crossing the limit in an early fragment fails there, not at the end. */
    struct ws_reader r;
    ws_reader_init(&r, 100);
    cr_expect_eq(feed(&r, 0x02, chunk, 60), WS_EV_FRAGMENT);
    cr_expect_eq(feed(&r, 0x00, chunk, 60), WS_ERR_TOO_BIG);
    /* A single frame over it. */
    ws_reader_init(&r, 100);
    cr_expect_eq(feed(&r, 0x82, chunk, 101), WS_ERR_TOO_BIG);
    /* Control frames do not count. */
    ws_reader_init(&r, 10);
    cr_expect_eq(feed(&r, 0x01, chunk, 10), WS_EV_FRAGMENT);
    cr_expect_eq(feed(&r, 0x89, chunk, 100), WS_EV_PING);
    cr_expect_eq(feed(&r, 0x80, "", 0), WS_EV_MESSAGE);
    free(chunk);
}

/* "a" U+1F600 "b": split into fragments at every pair of points, and an
 * invalid 4-byte sequence the same way. */
Test(ws, utf8_split_across_fragments_at_every_position)
{
    static const char good[] = "a\xf0\x9f\x98\x80"
                               "b";
    static const char bad[] = "a\xf4\x90\x80\x80"
                              "b"; /* above U+10FFFF, bad at index 2 */
    const size_t n = 6;
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            struct ws_reader r;
            ws_reader_init(&r, UINT64_MAX);
            cr_expect_eq(feed(&r, 0x01, good, i), WS_EV_FRAGMENT, "good %zu/%zu", i, j);
            cr_expect_eq(feed(&r, 0x00, good + i, j - i), WS_EV_FRAGMENT, "good %zu/%zu", i, j);
            cr_expect_eq(feed(&r, 0x80, good + j, n - j), WS_EV_MESSAGE, "good %zu/%zu", i, j);

            /* The bad one fails in the fragment holding index 2. */
            ws_reader_init(&r, UINT64_MAX);
            const size_t at = 2;
            int e1 = feed(&r, 0x01, bad, i);
            cr_expect_eq(e1, at < i ? WS_ERR_UTF8 : WS_EV_FRAGMENT, "bad %zu/%zu", i, j);
            if (e1 < 0)
                continue;
            int e2 = feed(&r, 0x00, bad + i, j - i);
            cr_expect_eq(e2, at < j ? WS_ERR_UTF8 : WS_EV_FRAGMENT, "bad %zu/%zu", i, j);
            if (e2 < 0)
                continue;
            cr_expect_eq(feed(&r, 0x80, bad + j, n - j), WS_ERR_UTF8, "bad %zu/%zu", i, j);
        }
    }
}

Test(ws, invalid_utf8_fails_at_once_and_incomplete_fails_at_the_end)
{
    struct ws_reader r;
    ws_reader_init(&r, UINT64_MAX);
    int ev = feed(&r, 0x01, "abc\xff", 4); /* not final: must still fail now */
    cr_expect_eq(ev, WS_ERR_UTF8);
    cr_expect_eq(ws_error_close_code(ev), 1007);

    ws_reader_init(&r, UINT64_MAX);
    cr_expect_eq(feed(&r, 0x01, "a\xf0\x9f", 3), WS_EV_FRAGMENT);
    cr_expect_eq(feed(&r, 0x80, "\x98", 1), WS_ERR_UTF8); /* ends one byte short */

    ws_reader_init(&r, UINT64_MAX);
    cr_expect_eq(feed(&r, 0x81, "\xe2\x82", 2), WS_ERR_UTF8); /* unfragmented */

    /* Binary is not text. */
    ws_reader_init(&r, UINT64_MAX);
    cr_expect_eq(feed(&r, 0x82, "\xff\xc0\x80", 3), WS_EV_MESSAGE);
    /* A compressed text message is deflate data: the caller checks it after
     * inflating. */
    ws_reader_init(&r, UINT64_MAX);
    cr_expect_eq(feed(&r, 0x41, "\xff", 1), WS_EV_FRAGMENT);
    cr_expect_eq(r.compressed, 1);
    cr_expect_eq(feed(&r, 0x80, "\xc0", 1), WS_EV_MESSAGE);
    cr_expect_eq(r.compressed, 1);
    cr_expect_eq(feed(&r, 0x81, "ok", 2), WS_EV_MESSAGE);
    cr_expect_eq(r.compressed, 0);
}

Test(ws, close_codes_0_to_5000)
{
    for (unsigned code = 0; code <= 5000; code++) {
        /* Written out apart from ws_close_code_valid's ranges, as the RFC and
         * the IANA registry list them. */
        int valid = 1;
        if (code < 1000 || code == 1004 || code == 1005 || code == 1006 || code == 1015)
            valid = 0;
        if (code >= 1016 && code <= 2999)
            valid = 0;
        if (code >= 5000)
            valid = 0;
        char payload[2] = {(char)(code >> 8), (char)code};
        struct ws_reader r;
        ws_reader_init(&r, UINT64_MAX);
        int ev = feed_keep(&r, 0x88, payload, 2);
        if (valid) {
            cr_expect_eq(ev, WS_EV_CLOSE, "code %u", code);
            cr_expect_eq(r.close_code, code);
            cr_expect_eq(r.close_reason.len, 0);
        } else {
            cr_expect_eq(ev, WS_ERR_CLOSE_CODE, "code %u", code);
            cr_expect_eq(ws_error_close_code(ev), 1002);
        }
        cr_expect_eq(ws_close_code_valid(code), valid, "code %u", code);
    }
}

Test(ws, close_payloads)
{
    struct ws_reader r;
    ws_reader_init(&r, UINT64_MAX);
    cr_expect_eq(feed_keep(&r, 0x88, "", 0), WS_EV_CLOSE);
    cr_expect_eq(r.close_code, WS_CLOSE_NO_STATUS);
    cr_expect_eq(r.close_reason.len, 0);

    ws_reader_init(&r, UINT64_MAX);
    int ev = feed_keep(&r, 0x88, "\x03", 1);
    cr_expect_eq(ev, WS_ERR_CLOSE_PAYLOAD);
    cr_expect_eq(ws_error_close_code(ev), 1002);

    static const char ok[] = "\x03\xe9going away \xe2\x82\xac";
    ws_reader_init(&r, UINT64_MAX);
    cr_expect_eq(feed_keep(&r, 0x88, ok, sizeof(ok) - 1), WS_EV_CLOSE);
    cr_expect_eq(r.close_code, 1001);
    cr_expect(span_eq(r.close_reason, SPAN_LIT("going away \xe2\x82\xac")));

    static const char *bad[] = {"\x03\xe8\xc0\x80",
                                "\x03\xe8"
                                "ab\xff",
                                "\x03\xe8\xe2\x82", "\x03\xe8\xed\xa0\x80"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        ws_reader_init(&r, UINT64_MAX);
        ev = feed_keep(&r, 0x88, bad[i], strlen(bad[i]));
        cr_expect_eq(ev, WS_ERR_UTF8, "reason %zu", i);
        cr_expect_eq(ws_error_close_code(ev), 1007);
    }
    /* An invalid code is reported before the reason is looked at. */
    ws_reader_init(&r, UINT64_MAX);
    cr_expect_eq(feed_keep(&r, 0x88, "\x03\xed\xff", 3), WS_ERR_CLOSE_CODE);
}

Test(ws, error_close_code_mapping)
{
    cr_expect_eq(ws_error_close_code(WS_INCOMPLETE), 0);
    cr_expect_eq(ws_error_close_code(0), 0);
    cr_expect_eq(ws_error_close_code(14), 0);
    for (int e = WS_ERR_RSV; e >= WS_ERR_CLOSE_CODE; e--) {
        int want = e == WS_ERR_UTF8 ? 1007 : e == WS_ERR_TOO_BIG ? 1009 : 1002;
        cr_expect_eq(ws_error_close_code(e), want, "error %d", e);
    }
}

/* ---- encoder --------------------------------------------------------------- */

Test(ws, frame_header_fields)
{
    uint8_t h[WS_MAX_HEADER];
    cr_expect_eq(ws_frame_header(h, WS_OP_TEXT, 1, 0, 5, NULL), 2);
    cr_expect(memcmp(h, "\x81\x05", 2) == 0);
    cr_expect_eq(ws_frame_header(h, WS_OP_TEXT, 0, 1, 5, NULL), 2);
    cr_expect(memcmp(h, "\x41\x05", 2) == 0);
    cr_expect_eq(ws_frame_header(h, WS_OP_CONT, 1, 0, 0, key1), 6);
    cr_expect(memcmp(h, "\x80\x80\x37\xfa\x21\x3d", 6) == 0);
    cr_expect_eq(ws_frame_header(h, WS_OP_BINARY, 1, 0, INT64_MAX, key1), 14);
    cr_expect(memcmp(h, "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x37\xfa\x21\x3d", 14) == 0);
}

/* Parses out[0..n) as a client frame, unmasks it, feeds it to a reader. */
static int parse_back(const uint8_t *out, size_t n, char *copy, struct ws_reader *r)
{
    struct ws_frame f;
    memcpy(copy, out, n);
    int hl = ws_parse_frame(copy, n, WS_FROM_CLIENT, UINT64_MAX, &f);
    cr_assert_gt(hl, 0);
    cr_assert_eq((size_t)hl + f.payload_len, n);
    ws_unmask(copy + hl, f.payload_len, f.mask, 0);
    return ws_reader_frame(r, &f, span_of(copy + hl, f.payload_len));
}

Test(ws, control_and_close_frames_parse_back)
{
    uint8_t out[WS_CONTROL_FRAME_MAX];
    char copy[WS_CONTROL_FRAME_MAX];
    struct ws_reader r;

    ws_reader_init(&r, UINT64_MAX);
    ssize_t n = ws_pong_frame(out, SPAN_LIT("Hello"), NULL);
    cr_expect_eq(n, 7);
    cr_expect(memcmp(out, "\x8a\x05Hello", 7) == 0);
    n = ws_pong_frame(out, SPAN_LIT("Hello"), key1);
    cr_expect_eq(n, 11);
    cr_expect(memcmp(out, "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11) == 0);
    cr_expect_eq(parse_back(out, (size_t)n, copy, &r), WS_EV_PONG);

    char big[126];
    memset(big, 'p', sizeof(big));
    cr_expect_eq(ws_control_frame(out, WS_OP_PING, span_of(big, 125), key1), 131);
    cr_expect_eq(parse_back(out, 131, copy, &r), WS_EV_PING);
    cr_expect_eq(ws_control_frame(out, WS_OP_PING, span_of(big, 126), NULL), -EINVAL);
    cr_expect_eq(ws_control_frame(out, WS_OP_TEXT, SPAN_LIT("x"), NULL), -EINVAL);
    cr_expect_eq(ws_control_frame(out, 0xb, SPAN_LIT("x"), NULL), -EINVAL);

    n = ws_close_frame(out, 1009, SPAN_LIT("message too big"), key1);
    cr_assert_gt(n, 0);
    cr_expect_eq(parse_back(out, (size_t)n, copy, &r), WS_EV_CLOSE);
    cr_expect_eq(r.close_code, 1009);
    cr_expect(span_eq(r.close_reason, SPAN_LIT("message too big")));

    n = ws_close_frame(out, 1000, SPAN_NULL, NULL);
    cr_expect_eq(n, 4);
    cr_expect(memcmp(out, "\x88\x02\x03\xe8", 4) == 0);
    n = ws_close_frame(out, 0, SPAN_NULL, NULL);
    cr_expect_eq(n, 2);
    cr_expect(memcmp(out, "\x88\x00", 2) == 0);
    cr_expect_eq(ws_close_frame(out, 0, SPAN_LIT("why"), NULL), -EINVAL);
    cr_expect_eq(ws_close_frame(out, 1005, SPAN_NULL, NULL), -EINVAL);
    cr_expect_eq(ws_close_frame(out, 999, SPAN_NULL, NULL), -EINVAL);
}

Test(ws, long_close_reason_cut_at_a_character_boundary)
{
    /* 2-, 3- and 4-byte characters, so the cut lands inside one of each. */
    static const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "a"};
    for (size_t c = 0; c < ARRAY_SIZE(chars); c++) {
        for (size_t lead = 0; lead < 4; lead++) {
            char reason[300];
            size_t len = 0, cl = strlen(chars[c]);
            for (size_t i = 0; i < lead; i++)
                reason[len++] = 'x';
            while (len + cl <= sizeof(reason)) {
                memcpy(reason + len, chars[c], cl);
                len += cl;
            }
            uint8_t out[WS_CONTROL_FRAME_MAX];
            char copy[WS_CONTROL_FRAME_MAX];
            struct ws_reader r;
            ws_reader_init(&r, UINT64_MAX);
            ssize_t n = ws_close_frame(out, 4000, span_of(reason, len), NULL);
            cr_assert_gt(n, 0);
            cr_expect_leq(n, 2 + 125);
            cr_expect_gt(n, 2 + 125 - 4, "cut too much");
            struct ws_frame f;
            memcpy(copy, out, (size_t)n);
            int hl = ws_parse_frame(copy, (size_t)n, 0, UINT64_MAX, &f);
            cr_assert_eq(hl, 2);
            cr_expect_eq(ws_reader_frame(&r, &f, span_of(copy + 2, f.payload_len)), WS_EV_CLOSE,
                         "char %zu lead %zu", c, lead);
            cr_expect_eq(r.close_code, 4000);
            cr_expect(memcmp(r.close_reason.base, reason, r.close_reason.len) == 0);
        }
    }
}

/* A stream of frames back to back, parsed in place one after another. */
Test(ws, stream_of_frames)
{
    uint8_t buf[4096];
    size_t n = 0;
    n += build_frame(buf + n, 0x01, 0, key1, "Hel", 3);
    n += build_frame(buf + n, 0x89, 0, key1, "ping", 4);
    n += build_frame(buf + n, 0x80, 16, key1, "lo", 2); /* 16-bit form of 2: illegal */
    struct ws_reader r;
    ws_reader_init(&r, UINT64_MAX);
    size_t pos = 0;
    int events[4], ne = 0, err = 0;
    while (pos < n) {
        struct ws_frame f;
        int hl = ws_parse_frame((const char *)buf + pos, n - pos, WS_FROM_CLIENT, UINT64_MAX, &f);
        if (hl < 0) {
            err = hl;
            break;
        }
        ws_unmask((char *)buf + pos + hl, f.payload_len, f.mask, 0);
        events[ne++] = ws_reader_frame(&r, &f, span_of((char *)buf + pos + hl, f.payload_len));
        pos += (size_t)hl + f.payload_len;
    }
    cr_expect_eq(ne, 2);
    cr_expect_eq(events[0], WS_EV_FRAGMENT);
    cr_expect_eq(events[1], WS_EV_PING);
    cr_expect_eq(err, WS_ERR_LENGTH);
}
