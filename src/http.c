/*
 * http.c: the HTTP/1.1 request-head parser and the chunked body decoder.
 *
 * Owns nothing: every function works on the caller's bytes and state, so any
 * thread may call it. A head is parsed in two passes. The first scans only the
 * bytes that are new since the last call for the blank line that ends the
 * head, rejecting control bytes on the way; the second, run once per head,
 * checks the grammar and fills struct http_request. The decoder is a byte
 * state machine that never needs to see an input byte twice. Neither knows
 * about sockets, limits or responses: that is the connection code's job.
 */
#include "http.h"

#include <limits.h>
#include <string.h>

#include "util.h"

/* RFC 9110 tchar: what a method, header name or extension name is made of. */
static const unsigned char http_tchar_map[128] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 */ 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, /*  !"#$%&'()*+,-./ */
    /* 0x30 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0123456789:;<=>? */
    /* 0x40 */ 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* @ABCDEFGHIJKLMNO */
    /* 0x50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, /* PQRSTUVWXYZ[\]^_ */
    /* 0x60 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* `abcdefghijklmno */
    /* 0x70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, /* pqrstuvwxyz{|}~  */
};

static inline int http_is_tchar(char c)
{
    unsigned char u = (unsigned char)c;
    return u < 128 && http_tchar_map[u];
}

static inline int http_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Bytes that may appear in a field value or the visible part of a line:
 * HTAB, SP, VCHAR and obs-text; i.e. everything but the other CTLs and DEL. */
static inline int http_is_field_char(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= 0x20 && u != 0x7f) || u == '\t';
}

static inline int http_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Skips the empty lines a client may send before a request line (a stray CRLF
 * after a previous body is the classic case). Returns where the request line
 * starts, HTTP_INCOMPLETE, or HTTP_ERR_SYNTAX past the bound or on a bare CR.
 */
static ssize_t http_skip_empty_lines(const char *buf, size_t len)
{
    size_t i = 0;
    for (int lines = 0;; lines++) {
        if (i == len)
            return HTTP_INCOMPLETE;
        if (buf[i] != '\r' && buf[i] != '\n')
            return (ssize_t)i;
        if (lines == HTTP_MAX_LEADING_EMPTY_LINES)
            return HTTP_ERR_SYNTAX;
        if (buf[i] == '\r') {
            if (i + 1 == len)
                return HTTP_INCOMPLETE;
            if (buf[i + 1] != '\n')
                return HTTP_ERR_SYNTAX;
            i++;
        }
        i++;
    }
}

/*
 * Scans buf[from..len) for the LF that ends the head's blank line. The bytes
 * from start up to from were scanned by an earlier call and held neither the
 * end nor an error, and buf[start] is a tchar, so looking back two bytes never
 * leaves the request. Every check depends on a byte and the one before it
 * only, which is why a byte-by-byte feed finds exactly what a single call
 * finds. Returns the head length, 0 when not found yet, or HTTP_ERR_SYNTAX.
 */
static ssize_t http_find_head_end(const char *buf, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++) {
        char c = buf[i];
        if (unlikely(buf[i - 1] == '\r') && c != '\n')
            return HTTP_ERR_SYNTAX; /* a bare CR ends a line for some parsers, not for others */
        if (likely(http_is_field_char(c)) || c == '\r')
            continue;
        if (c != '\n')
            return HTTP_ERR_SYNTAX;
        if (buf[i - 1] == '\n' || (buf[i - 1] == '\r' && buf[i - 2] == '\n'))
            return (ssize_t)(i + 1);
    }
    return 0;
}

/* Consumes a line end at *p, CRLF or bare LF. The scan guarantees that a CR in
 * the head is followed by LF, so reading past it stays inside the head. */
static inline int http_eat_eol(const char **p)
{
    if (**p == '\r')
        (*p)++;
    if (**p != '\n')
        return -1;
    (*p)++;
    return 0;
}

/* Parses "method SP request-target SP HTTP-version" and its line end. */
static int http_parse_request_line(const char **pp, const char *end, struct http_request *req)
{
    const char *p = *pp, *tok = p;

    while (http_is_tchar(*p))
        p++;
    if (p == tok || *p != ' ')
        return HTTP_ERR_SYNTAX;
    req->method = span_of(tok, (size_t)(p - tok));

    /* The scan already refused CTLs and DEL, so a target byte is anything but
     * the delimiters; bytes >= 0x80 pass, as in picohttpparser. */
    tok = ++p;
    while (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
        p++;
    if (p == tok || *p != ' ')
        return HTTP_ERR_SYNTAX;
    req->target = span_of(tok, (size_t)(p - tok));
    /* Origin-form or asterisk-form only: we are an origin server, not a proxy,
     * so absolute-form and authority-form (CONNECT) have no meaning here. */
    if (tok[0] != '/' && !(req->target.len == 1 && tok[0] == '*'))
        return HTTP_ERR_SYNTAX;
    const char *q = memchr(tok, '?', req->target.len);
    if (q != NULL) {
        req->path = span_of(tok, (size_t)(q - tok));
        req->query = span_of(q + 1, (size_t)(p - q - 1));
    } else {
        req->path = req->target;
        req->query = span_of(p, 0);
    }

    p++;
    /* "HTTP/1.x" plus at least the LF, which the blank line guarantees. */
    if (end - p < 9 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
        return HTTP_ERR_SYNTAX;
    req->minor_version = p[7] - '0';
    p += 8;
    if (http_eat_eol(&p) < 0)
        return HTTP_ERR_SYNTAX;
    *pp = p;
    return 0;
}

/*
 * Steps through a comma-separated list: sets *elem to the next element with
 * OWS trimmed (possibly empty, for ",,") and returns 1, or returns 0 at the
 * end. *list shrinks as elements are taken.
 */
static int http_list_next(span_t *list, span_t *elem)
{
    if (list->base == NULL)
        return 0;
    const char *p = list->base, *end = p + list->len;
    const char *comma = memchr(p, ',', list->len);
    const char *e = comma != NULL ? comma : end;
    while (p < e && http_is_ows(*p))
        p++;
    const char *t = e;
    while (t > p && http_is_ows(t[-1]))
        t--;
    *elem = span_of(p, (size_t)(t - p));
    if (comma != NULL)
        *list = span_of(comma + 1, (size_t)(end - comma - 1));
    else
        *list = SPAN_NULL;
    return 1;
}

/* What the framing and connection headers said, gathered over all headers so
 * repeated ones combine as RFC 9110 section 5.3 says they do. */
struct http_framing {
    int bad;             /* invalid or conflicting Content-Length / Transfer-Encoding */
    int te_seen;         /* a Transfer-Encoding header was present */
    int te_last_chunked; /* the last coding so far is chunked */
    int te_chunked;      /* how many times chunked was listed */
    int te_other;        /* a coding other than chunked was listed */
    int conn_close, conn_keep_alive, conn_upgrade, upgrade_header;
};

/* Content-Length = 1*DIGIT (RFC 9110 section 8.6). No sign, no list form, no
 * overflow: any of those is a framing error, not something to guess at. */
static void http_note_content_length(span_t v, struct http_request *req, struct http_framing *f)
{
    int64_t n = 0;
    if (v.len == 0) {
        f->bad = 1;
        return;
    }
    for (size_t i = 0; i < v.len; i++) {
        int d = v.base[i] - '0';
        if (d < 0 || d > 9 || n > (INT64_MAX - d) / 10) {
            f->bad = 1;
            return;
        }
        n = n * 10 + d;
    }
    /* Repeats are tolerated only when they agree (RFC 9110 section 8.6). */
    if (req->content_length >= 0 && req->content_length != n)
        f->bad = 1;
    req->content_length = n;
}

static void http_note_transfer_encoding(span_t v, struct http_framing *f)
{
    span_t list = v, coding;
    f->te_seen = 1;
    while (http_list_next(&list, &coding)) {
        if (coding.len == 0) {
            /* RFC 9110 section 5.6.1 has recipients skip empty list elements,
             * but "chunked," is read as a coding "chunked," by some parsers:
             * on a framing header we refuse rather than pick a reading. */
            f->bad = 1;
            continue;
        }
        f->te_last_chunked = span_eq_nocase(coding, SPAN_LIT("chunked"));
        if (f->te_last_chunked)
            f->te_chunked++;
        else
            f->te_other = 1;
    }
}

static void http_note_connection(span_t v, struct http_framing *f)
{
    span_t list = v, opt;
    while (http_list_next(&list, &opt)) {
        if (span_eq_nocase(opt, SPAN_LIT("close")))
            f->conn_close = 1;
        else if (span_eq_nocase(opt, SPAN_LIT("keep-alive")))
            f->conn_keep_alive = 1;
        else if (span_eq_nocase(opt, SPAN_LIT("upgrade")))
            f->conn_upgrade = 1;
    }
}

/* Dispatches on length first so the common headers cost one compare. */
static void http_note_header(const struct http_header *h, struct http_request *req,
                             struct http_framing *f)
{
    switch (h->name.len) {
    case 7:
        if (span_eq_nocase(h->name, SPAN_LIT("upgrade")))
            f->upgrade_header = 1;
        break;
    case 10:
        if (span_eq_nocase(h->name, SPAN_LIT("connection")))
            http_note_connection(h->value, f);
        break;
    case 14:
        if (span_eq_nocase(h->name, SPAN_LIT("content-length")))
            http_note_content_length(h->value, req, f);
        break;
    case 17:
        if (span_eq_nocase(h->name, SPAN_LIT("transfer-encoding")))
            http_note_transfer_encoding(h->value, f);
        break;
    }
}

/* Parses one "name: value" line at *pp into *h. */
static int http_parse_header_line(const char **pp, struct http_header *h)
{
    const char *p = *pp, *name = p;

    /* A name right up to the colon: "Host :" is refused because some
     * implementations strip the space and others keep the header apart. */
    while (http_is_tchar(*p))
        p++;
    if (p == name || *p != ':')
        return HTTP_ERR_SYNTAX;
    h->name = span_of(name, (size_t)(p - name));
    p++;
    while (http_is_ows(*p))
        p++;
    /* The scan has refused every CTL but HTAB, so the value runs to the LF. */
    const char *value = p, *lf = p;
    while (*lf != '\n')
        lf++;
    const char *vend = lf;
    if (vend > value && vend[-1] == '\r')
        vend--;
    while (vend > value && http_is_ows(vend[-1]))
        vend--;
    h->value = span_of(value, (size_t)(vend - value));
    *pp = lf + 1;
    return 0;
}

/* The second pass over a complete head buf[start..end), which the scan has
 * checked byte by byte and which ends in a blank line. */
static int http_parse_head(const char *buf, size_t start, size_t end, struct http_request *req)
{
    const char *p = buf + start, *e = buf + end;
    struct http_framing f = {0};
    int rc;

    if ((rc = http_parse_request_line(&p, e, req)) < 0)
        return rc;
    req->num_headers = 0;
    req->content_length = -1;
    while (*p != '\r' && *p != '\n') {
        /* A line that starts with whitespace is obs-fold (or hides a header
         * from parsers that drop it): RFC 9112 section 5.2 lets us refuse. */
        if (http_is_ows(*p))
            return HTTP_ERR_SYNTAX;
        if (req->num_headers == HTTP_MAX_HEADERS)
            return HTTP_ERR_TOO_MANY_HEADERS;
        struct http_header *h = &req->headers[req->num_headers];
        if ((rc = http_parse_header_line(&p, h)) < 0)
            return rc;
        req->num_headers++;
        http_note_header(h, req, &f);
    }

    /* RFC 9112 section 6.1: chunked must be the final coding and applied once;
     * with Content-Length too the message is a smuggling attempt or broken;
     * and HTTP/1.0 has no Transfer-Encoding to rely on. */
    if (f.te_seen && (!f.te_last_chunked || f.te_chunked != 1 || req->content_length >= 0 ||
                      req->minor_version == 0))
        f.bad = 1;
    if (f.bad)
        return HTTP_ERR_BAD_FRAMING;
    req->chunked = f.te_seen;
    req->te_other = f.te_other;
    if (req->minor_version == 1)
        req->keep_alive = !f.conn_close;
    else
        req->keep_alive = f.conn_keep_alive && !f.conn_close;
    req->upgrade = f.conn_upgrade && f.upgrade_header;
    return (int)end;
}

int http_parse_request(const char *buf, size_t len, size_t last_len, struct http_request *req)
{
    /* The return type caps a head at INT_MAX bytes; past that, stop looking. */
    size_t scan_len = len > INT_MAX ? INT_MAX : len;
    ssize_t start = http_skip_empty_lines(buf, scan_len);
    if (start < 0)
        return (int)start;
    /* Refusing a non-token first byte at once turns away TLS or binary junk
     * sent to a plain-text port without waiting for a blank line. */
    if (!http_is_tchar(buf[start]))
        return HTTP_ERR_SYNTAX;

    size_t from = (size_t)start + 1;
    if (last_len > from)
        from = last_len < scan_len ? last_len : scan_len;
    ssize_t end = http_find_head_end(buf, from, scan_len);
    if (end < 0)
        return (int)end;
    if (end == 0)
        return len > INT_MAX ? HTTP_ERR_SYNTAX : HTTP_INCOMPLETE;
    return http_parse_head(buf, (size_t)start, (size_t)end, req);
}

/* Chunked decoder states (RFC 9112 section 7.1), one per place a byte can
 * fall. The extension states follow
 *   chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
 * to the letter, since disagreeing on where an extension ends is exactly how
 * chunked smuggling works. */
enum {
    HTTP_CH_SIZE_START = 0, /* first hex digit of a chunk size */
    HTTP_CH_SIZE,           /* more hex digits, or what follows them */
    HTTP_CH_EXT_BWS,        /* whitespace after a size or a value: only ';' may follow */
    HTTP_CH_EXT_NAME_START, /* after ';' */
    HTTP_CH_EXT_NAME,
    HTTP_CH_EXT_NAME_BWS, /* whitespace after a name: '=' or ';' */
    HTTP_CH_EXT_VALUE_START,
    HTTP_CH_EXT_TOKEN,
    HTTP_CH_EXT_QUOTED,
    HTTP_CH_EXT_QUOTED_PAIR,
    HTTP_CH_EXT_VALUE_END, /* after a closing quote */
    HTTP_CH_SIZE_LF,       /* CR seen at the end of a size line */
    HTTP_CH_DATA,
    HTTP_CH_DATA_CR,
    HTTP_CH_DATA_LF,
    HTTP_CH_TRAILER_START, /* start of a trailer line or of the final CRLF */
    HTTP_CH_TRAILER_NAME,
    HTTP_CH_TRAILER_VALUE,
    HTTP_CH_TRAILER_LF,
    HTTP_CH_END_LF,
    HTTP_CH_DONE,
    HTTP_CH_ERROR,
};

/* What may follow a completed extension name or value: the next state, or
 * HTTP_CH_ERROR. */
static unsigned char http_ch_after_ext(char c)
{
    if (http_is_ows(c))
        return HTTP_CH_EXT_BWS;
    if (c == ';')
        return HTTP_CH_EXT_NAME_START;
    if (c == '\r')
        return HTTP_CH_SIZE_LF;
    return HTTP_CH_ERROR;
}

/* Advances d by one byte outside chunk data. Returns the next state. */
static unsigned char http_ch_step(struct http_chunked *d, char c)
{
    int v;

    switch (d->_state) {
    case HTTP_CH_SIZE_START:
        if ((v = http_hex_value(c)) < 0)
            return HTTP_CH_ERROR;
        d->_remaining = (uint64_t)v;
        return HTTP_CH_SIZE;
    case HTTP_CH_SIZE:
        if ((v = http_hex_value(c)) >= 0) {
            d->_remaining = d->_remaining * 16 + (uint64_t)v;
            return d->_remaining > HTTP_MAX_CHUNK_SIZE ? HTTP_CH_ERROR : HTTP_CH_SIZE;
        }
        return http_ch_after_ext(c);
    case HTTP_CH_EXT_BWS:
        if (http_is_ows(c))
            return HTTP_CH_EXT_BWS;
        return c == ';' ? HTTP_CH_EXT_NAME_START : HTTP_CH_ERROR;
    case HTTP_CH_EXT_NAME_START:
        if (http_is_ows(c))
            return HTTP_CH_EXT_NAME_START;
        return http_is_tchar(c) ? HTTP_CH_EXT_NAME : HTTP_CH_ERROR;
    case HTTP_CH_EXT_NAME:
        if (http_is_tchar(c))
            return HTTP_CH_EXT_NAME;
        if (c == '=')
            return HTTP_CH_EXT_VALUE_START;
        if (http_is_ows(c))
            return HTTP_CH_EXT_NAME_BWS;
        return http_ch_after_ext(c);
    case HTTP_CH_EXT_NAME_BWS:
        if (http_is_ows(c))
            return HTTP_CH_EXT_NAME_BWS;
        if (c == '=')
            return HTTP_CH_EXT_VALUE_START;
        return c == ';' ? HTTP_CH_EXT_NAME_START : HTTP_CH_ERROR;
    case HTTP_CH_EXT_VALUE_START:
        if (http_is_ows(c))
            return HTTP_CH_EXT_VALUE_START;
        if (c == '"')
            return HTTP_CH_EXT_QUOTED;
        return http_is_tchar(c) ? HTTP_CH_EXT_TOKEN : HTTP_CH_ERROR;
    case HTTP_CH_EXT_TOKEN:
        if (http_is_tchar(c))
            return HTTP_CH_EXT_TOKEN;
        return http_ch_after_ext(c);
    case HTTP_CH_EXT_QUOTED: /* qdtext = HTAB / SP / VCHAR except '"' and '\' / obs-text */
        if (c == '"')
            return HTTP_CH_EXT_VALUE_END;
        if (c == '\\')
            return HTTP_CH_EXT_QUOTED_PAIR;
        return http_is_field_char(c) ? HTTP_CH_EXT_QUOTED : HTTP_CH_ERROR;
    case HTTP_CH_EXT_QUOTED_PAIR:
        return http_is_field_char(c) ? HTTP_CH_EXT_QUOTED : HTTP_CH_ERROR;
    case HTTP_CH_EXT_VALUE_END:
        return http_ch_after_ext(c);
    case HTTP_CH_SIZE_LF:
        if (c != '\n')
            return HTTP_CH_ERROR;
        return d->_remaining == 0 ? HTTP_CH_TRAILER_START : HTTP_CH_DATA;
    case HTTP_CH_DATA_CR:
        return c == '\r' ? HTTP_CH_DATA_LF : HTTP_CH_ERROR;
    case HTTP_CH_DATA_LF:
        return c == '\n' ? HTTP_CH_SIZE_START : HTTP_CH_ERROR;
    case HTTP_CH_TRAILER_START:
        if (c == '\r')
            return HTTP_CH_END_LF;
        return http_is_tchar(c) ? HTTP_CH_TRAILER_NAME : HTTP_CH_ERROR;
    case HTTP_CH_TRAILER_NAME:
        if (http_is_tchar(c))
            return HTTP_CH_TRAILER_NAME;
        return c == ':' ? HTTP_CH_TRAILER_VALUE : HTTP_CH_ERROR;
    case HTTP_CH_TRAILER_VALUE:
        if (c == '\r')
            return HTTP_CH_TRAILER_LF;
        return http_is_field_char(c) ? HTTP_CH_TRAILER_VALUE : HTTP_CH_ERROR;
    case HTTP_CH_TRAILER_LF:
        return c == '\n' ? HTTP_CH_TRAILER_START : HTTP_CH_ERROR;
    case HTTP_CH_END_LF:
        return c == '\n' ? HTTP_CH_DONE : HTTP_CH_ERROR;
    }
    return HTTP_CH_ERROR;
}

ssize_t http_decode_chunked(struct http_chunked *d, char *buf, size_t *len)
{
    size_t src = 0, dst = 0, n = *len;

    if (d->_state == HTTP_CH_DONE) {
        *len = 0;
        return (ssize_t)n;
    }
    while (src < n) {
        if (d->_state == HTTP_CH_ERROR)
            break;
        if (d->_state == HTTP_CH_DATA) {
            size_t take = n - src;
            if (take > d->_remaining)
                take = (size_t)d->_remaining;
            if (dst != src)
                memmove(buf + dst, buf + src, take);
            dst += take;
            src += take;
            d->_remaining -= take;
            if (d->_remaining == 0)
                d->_state = HTTP_CH_DATA_CR;
            continue;
        }
        d->_state = http_ch_step(d, buf[src++]);
        if (d->_state == HTTP_CH_DONE) {
            size_t rest = n - src;
            memmove(buf + dst, buf + src, rest);
            *len = dst;
            return (ssize_t)rest;
        }
    }
    *len = dst;
    return d->_state == HTTP_CH_ERROR ? HTTP_ERR_SYNTAX : HTTP_INCOMPLETE;
}

const struct http_header *http_header_find(const struct http_request *req, span_t name)
{
    for (size_t i = 0; i < req->num_headers; i++)
        if (span_eq_nocase(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

int http_token_list_has(span_t value, span_t token)
{
    span_t list = value, elem;
    if (token.len == 0)
        return 0;
    while (http_list_next(&list, &elem))
        if (span_eq_nocase(elem, token))
            return 1;
    return 0;
}

int http_query_get(span_t query, span_t key, span_t *value)
{
    const char *p = query.base, *end = query.base + query.len;
    if (key.len == 0 || query.len == 0)
        return 0;
    while (p <= end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pair_end = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        const char *name_end = eq != NULL ? eq : pair_end;
        if (span_eq(span_of(p, (size_t)(name_end - p)), key)) {
            *value =
                eq != NULL ? span_of(eq + 1, (size_t)(pair_end - eq - 1)) : span_of(pair_end, 0);
            return 1;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return 0;
}

ssize_t http_percent_decode(span_t src, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        char c = src.base[i];
        if (c == '%') {
            int hi, lo;
            if (src.len - i < 3 || (hi = http_hex_value(src.base[i + 1])) < 0 ||
                (lo = http_hex_value(src.base[i + 2])) < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        dst[o++] = c;
    }
    return (ssize_t)o;
}
