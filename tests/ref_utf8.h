/*
 * ref_utf8.h: a deliberately plain UTF-8 decoder the tests and fuzzers check
 * the real validators against. It works from code point values rather than
 * byte ranges, so it shares no reasoning with src/wire.c or src/utf8.c.
 */
#ifndef RINGCAST_TESTS_REF_UTF8_H
#define RINGCAST_TESTS_REF_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[i] (RFC 3629), or 0. Decodes the
 * code point and rejects overlongs by the smallest value each length may
 * carry, surrogates and anything above U+10FFFF. */
static inline size_t ref_utf8_len(const unsigned char *s, size_t n, size_t i)
{
    unsigned c = s[i];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n - i < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* What a JSON string of s decodes to under wire.h's contract: valid sequences
 * as they are, each byte of an invalid one as U+FFFD. out needs 3 * n bytes. */
static inline size_t ref_replace(const char *s, size_t n, char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = ref_utf8_len(p, n, i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k, i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3, i++;
        }
    }
    return o;
}

#endif
