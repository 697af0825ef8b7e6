/*
 * wire.c: encoders for the shared wire forms of a message (SSE event, JSON
 * element) and the small parsers that go with them. Pure functions over spans;
 * see wire.h for the contract. Every encoder is a size/write pair so that the
 * message is built in one allocation, once, and then shared by every
 * subscriber on every worker.
 */
#include "wire.h"

#include <errno.h>
#include <string.h>

int wire_name_ok(span_t name, size_t max)
{
    if (name.len == 0 || name.len > max)
        return 0;
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.base[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

/*
 * Length of the valid UTF-8 sequence starting at s[i], or 0 when the bytes
 * there do not form one (overlong forms, surrogates and code points above
 * U+10FFFF are invalid, as RFC 3629 says).
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n, size_t i)
{
    unsigned char c = s[i];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (i + len > n)
        return 0;
    if (s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[i + k] < 0x80 || s[i + k] > 0xbf)
            return 0;
    return len;
}

/* How one input byte or sequence at s[i] is written; returns bytes consumed. */
static size_t json_unit(const unsigned char *s, size_t n, size_t i, size_t *outlen, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[i];
    const char *esc = NULL;
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    default: break;
    }
    if (esc) {
        *outlen = 2;
        if (out)
            memcpy(out, esc, 2);
        return 1;
    }
    if (c < 0x20 || c == 0x7f) {
        *outlen = 6;
        if (out) {
            memcpy(out, "\\u00", 4);
            out[4] = hex[c >> 4];
            out[5] = hex[c & 15];
        }
        return 1;
    }
    size_t len = utf8_seq_len(s, n, i);
    if (len == 0) {
        *outlen = 6;
        if (out)
            memcpy(out, "\\ufffd", 6);
        return 1;
    }
    *outlen = len;
    if (out)
        memcpy(out, s + i, len);
    return len;
}

size_t wire_json_escape_size(span_t s)
{
    const unsigned char *p = (const unsigned char *)s.base;
    size_t total = 0, i = 0, w;
    while (i < s.len) {
        i += json_unit(p, s.len, i, &w, NULL);
        total += w;
    }
    return total;
}

char *wire_json_escape_write(char *out, span_t s)
{
    const unsigned char *p = (const unsigned char *)s.base;
    size_t i = 0, w;
    while (i < s.len) {
        i += json_unit(p, s.len, i, &w, out);
        out += w;
    }
    return out;
}

size_t wire_u64_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

char *wire_u64_write(char *out, uint64_t v)
{
    size_t n = wire_u64_len(v);
    for (size_t i = n; i > 0; i--) {
        out[i - 1] = (char)('0' + v % 10);
        v /= 10;
    }
    return out + n;
}

static char *put(char *out, const char *s, size_t n)
{
    if (n) /* s may be NULL for an empty span */
        memcpy(out, s, n);
    return out + n;
}

/* Calls back with each line of data: SSE knows \r\n, \n and \r as line ends. */
#define SSE_LINES(data, line_start, line_len, BODY)                                                \
    do {                                                                                           \
        size_t i_ = 0, s_ = 0;                                                                     \
        for (;;) {                                                                                 \
            if (i_ == (data).len || (data).base[i_] == '\n' || (data).base[i_] == '\r') {          \
                size_t line_start = s_, line_len = i_ - s_;                                        \
                BODY;                                                                              \
                if (i_ == (data).len)                                                              \
                    break;                                                                         \
                if ((data).base[i_] == '\r' && i_ + 1 < (data).len && (data).base[i_ + 1] == '\n') \
                    i_++;                                                                          \
                s_ = i_ + 1;                                                                       \
            }                                                                                      \
            i_++;                                                                                  \
        }                                                                                          \
    } while (0)

size_t wire_sse_size(uint64_t id, span_t event, span_t data)
{
    size_t n = 4 + wire_u64_len(id) + 1; /* "id: N\n" */
    if (event.len)
        n += 7 + event.len + 1;
    SSE_LINES(data, ls, ll, { (void)ls; n += 6 + ll + 1; });
    return n + 1;
}

char *wire_sse_write(char *out, uint64_t id, span_t event, span_t data)
{
    out = put(out, "id: ", 4);
    out = wire_u64_write(out, id);
    *out++ = '\n';
    if (event.len) {
        out = put(out, "event: ", 7);
        out = put(out, event.base, event.len);
        *out++ = '\n';
    }
    SSE_LINES(data, ls, ll, {
        out = put(out, "data: ", 6);
        out = put(out, data.base + ls, ll);
        *out++ = '\n';
    });
    *out++ = '\n';
    return out;
}

size_t wire_json_msg_size(uint64_t id, span_t event, span_t data)
{
    size_t n = 6 + wire_u64_len(id); /* {"id":N */
    if (event.len)
        n += 11 + wire_json_escape_size(event); /* ,"event":"" */
    return n + 9 + wire_json_escape_size(data) + 2; /* ,"data":" and "} */
}

char *wire_json_msg_write(char *out, uint64_t id, span_t event, span_t data)
{
    out = put(out, "{\"id\":", 6);
    out = wire_u64_write(out, id);
    if (event.len) {
        out = put(out, ",\"event\":\"", 10);
        out = wire_json_escape_write(out, event);
        *out++ = '"';
    }
    out = put(out, ",\"data\":\"", 9);
    out = wire_json_escape_write(out, data);
    out = put(out, "\"}", 2);
    return out;
}

int wire_parse_u64(span_t s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0 || s.len > 20)
        return -EINVAL;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned char)s.base[i] - '0';
        if (d > 9)
            return -EINVAL;
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
