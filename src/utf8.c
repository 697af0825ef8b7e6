/*
 * utf8.c: the incremental UTF-8 validator.
 *
 * Owns two constant tables: a byte-class map and the DFA's transitions. Any
 * thread may call it. Each byte costs two table loads; runs of ASCII, the
 * common case for the JSON a push server carries, are skipped a 64-bit word
 * at a time whenever the DFA sits between characters. The classes split the
 * continuation bytes in three (80..8F, 90..9F, A0..BF) because that is all the
 * second byte after E0, ED, F0 and F4 needs to rule out overlongs, surrogates
 * and code points above U+10FFFF.
 */
#include "utf8.h"

#include <string.h>

#include "util.h"

/* Byte classes. */
enum {
    C_ASCII, /* 00..7F */
    C_CONT1, /* 80..8F */
    C_CONT2, /* 90..9F */
    C_CONT3, /* A0..BF */
    C_BAD,   /* C0, C1 (overlong leads), F5..FF (beyond U+10FFFF) */
    C_LEAD2, /* C2..DF */
    C_E0,    /* E0: second byte A0..BF, or it is overlong */
    C_LEAD3, /* E1..EC, EE, EF */
    C_ED,    /* ED: second byte 80..9F, or it is a surrogate */
    C_F0,    /* F0: second byte 90..BF, or it is overlong */
    C_LEAD4, /* F1..F3 */
    C_F4,    /* F4: second byte 80..8F, or it is above U+10FFFF */
    C_COUNT
};

static const uint8_t utf8_class[256] = {
    [0x00 ... 0x7f] = C_ASCII,
    [0x80 ... 0x8f] = C_CONT1,
    [0x90 ... 0x9f] = C_CONT2,
    [0xa0 ... 0xbf] = C_CONT3,
    [0xc0 ... 0xc1] = C_BAD,
    [0xc2 ... 0xdf] = C_LEAD2,
    [0xe0] = C_E0,
    [0xe1 ... 0xec] = C_LEAD3,
    [0xed] = C_ED,
    [0xee ... 0xef] = C_LEAD3,
    [0xf0] = C_F0,
    [0xf1 ... 0xf3] = C_LEAD4,
    [0xf4] = C_F4,
    [0xf5 ... 0xff] = C_BAD,
};

/* States. The first two are the public UTF8_ACCEPT and UTF8_REJECT. */
enum {
    S_OK = UTF8_ACCEPT,
    S_RJ = UTF8_REJECT,
    S_N1, /* one continuation byte (80..BF) to go */
    S_N2, /* two to go */
    S_N3, /* three to go */
    S_E0, /* after E0: A0..BF, then one more */
    S_ED, /* after ED: 80..9F, then one more */
    S_F0, /* after F0: 90..BF, then two more */
    S_F4, /* after F4: 80..8F, then two more */
    S_COUNT
};

static const uint8_t utf8_next[S_COUNT][C_COUNT] = {
    /*         ASCII  80-8F 90-9F A0-BF BAD   C2-DF E0    E1-EF ED    F0    F1-F3 F4 */
    [S_OK] = {S_OK, S_RJ, S_RJ, S_RJ, S_RJ, S_N1, S_E0, S_N2, S_ED, S_F0, S_N3, S_F4},
    [S_RJ] = {S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ},
    [S_N1] = {S_RJ, S_OK, S_OK, S_OK, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ},
    [S_N2] = {S_RJ, S_N1, S_N1, S_N1, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ},
    [S_N3] = {S_RJ, S_N2, S_N2, S_N2, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ},
    [S_E0] = {S_RJ, S_RJ, S_RJ, S_N1, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ},
    [S_ED] = {S_RJ, S_N1, S_N1, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ},
    [S_F0] = {S_RJ, S_RJ, S_N2, S_N2, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ},
    [S_F4] = {S_RJ, S_N2, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ, S_RJ},
};

/* The DFA from s over p[0..n), stopping at the first rejected byte. A state
 * out of range (a caller's uninitialised variable) is treated as rejected
 * rather than used as an index. */
static inline uint32_t utf8_run(uint32_t s, const uint8_t *p, size_t n)
{
    if (unlikely(s >= S_COUNT))
        return UTF8_REJECT;
    for (size_t i = 0; i < n && s != UTF8_REJECT; i++)
        s = utf8_next[s][utf8_class[p[i]]];
    return s;
}

uint32_t utf8__validate_dfa(uint32_t *state, const uint8_t *p, size_t n)
{
    return *state = utf8_run(*state, p, n);
}

static inline int utf8_ascii8(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8); /* an unaligned load on every target we build for */
    return (w & UINT64_C(0x8080808080808080)) == 0;
}

uint32_t utf8_validate(uint32_t *state, const uint8_t *p, size_t n)
{
    uint32_t s = *state;
    size_t i = 0;

    if (unlikely(s >= S_COUNT))
        s = UTF8_REJECT;
    while (i < n && s != UTF8_REJECT) {
        /* Only between characters may a word of ASCII be skipped: inside a
         * sequence an ASCII byte is an error the DFA must see. */
        if (s == UTF8_ACCEPT) {
            while (n - i >= 8 && utf8_ascii8(p + i))
                i += 8;
            if (i == n)
                break;
        }
        s = utf8_next[s][utf8_class[p[i++]]];
    }
    *state = s;
    return s;
}

int utf8_is_valid(const uint8_t *p, size_t n)
{
    uint32_t s = UTF8_ACCEPT;
    return utf8_validate(&s, p, n) == UTF8_ACCEPT;
}
