/*
 * span.h: the one byte-span type every module passes around.
 *
 * Layout-compatible with struct iovec so a span array can be handed to
 * sendmsg() as is. A span never owns its bytes: whoever made it says how long
 * they live. Used by every thread; holds no state.
 */
#ifndef RINGCAST_SPAN_H
#define RINGCAST_SPAN_H

#include <stddef.h>
#include <string.h>

typedef struct span {
    const char *base;
    size_t len;
} span_t;

#define SPAN_LIT(s) ((span_t){(s), sizeof(s) - 1})
#define SPAN_NULL ((span_t){NULL, 0})

static inline span_t span_of(const char *base, size_t len)
{
    return (span_t){base, len};
}

static inline span_t span_cstr(const char *s)
{
    return (span_t){s, strlen(s)};
}

static inline int span_eq(span_t a, span_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* Copies s to out (s.base may be NULL when s.len is 0); returns the end. */
static inline char *span_put(char *out, span_t s)
{
    if (s.len)
        memcpy(out, s.base, s.len);
    return out + s.len;
}

/* ASCII case-insensitive equality, for header names and tokens. */
static inline int span_eq_nocase(span_t a, span_t b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.base[i], y = (unsigned char)b.base[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return 0;
    }
    return 1;
}

#endif
