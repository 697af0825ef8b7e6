/*
 * wsdeflate.c: permessage-deflate (RFC 7692): the offer parser and the zlib
 * work. Each struct wsdeflate belongs to one worker thread; a connection's
 * inflater to the worker that owns the connection. Deliberately absent:
 * server context takeover (every message is compressed alone, so one
 * compressed frame serves every subscriber) and any per-subscriber deflate.
 */
#include "wsdeflate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the offer (RFC 7692 section 5, RFC 6455 section 9.1 grammar) ---- */

static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

struct cursor {
    const char *p, *end;
};

static void skip_ows(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static span_t token(struct cursor *c)
{
    const char *b = c->p;
    while (c->p < c->end && is_tchar((unsigned char)*c->p))
        c->p++;
    return span_of(b, (size_t)(c->p - b));
}

/* A parameter value: a token, or a quoted-string unescaped into buf (RFC
 * 7692 section 5: the unescaped value must then be a token too). Returns its
 * whole length (only the first cap bytes are stored: a longer value is
 * invalid for every parameter we know), or -1 for a syntax error. */
static int value(struct cursor *c, char *buf, size_t cap)
{
    size_t n = 0;
    if (c->p < c->end && *c->p == '"') {
        c->p++;
        for (;;) {
            if (c->p >= c->end)
                return -1; /* unterminated */
            char ch = *c->p++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (c->p >= c->end)
                    return -1;
                ch = *c->p++;
            }
            if (!is_tchar((unsigned char)ch))
                return -1;
            if (n < cap)
                buf[n] = ch;
            n++;
        }
    } else {
        span_t t = token(c);
        for (size_t i = 0; i < t.len; i++, n++)
            if (n < cap)
                buf[n] = t.base[i];
    }
    return n == 0 ? -1 : (int)(n < 1000 ? n : 1000);
}

/* 8..15 written without leading zeros, or -1. */
static int window_bits(const char *v, int n)
{
    if (n == 1 && v[0] == '8')
        return 8;
    if (n == 1 && v[0] == '9')
        return 9;
    if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

enum { P_SNCT = 1, P_CNCT = 2, P_SMWB = 4, P_CMWB = 8 };

/* One parameter of a permessage-deflate offer; -1 makes the offer invalid. */
static int offer_param(span_t name, const char *v, int vlen, unsigned *seen,
                       struct wsdeflate_params *p)
{
    unsigned bit;
    int bits = vlen > 0 ? window_bits(v, vlen) : 0;
    if (span_eq_nocase(name, SPAN_LIT("server_no_context_takeover")))
        bit = P_SNCT;
    else if (span_eq_nocase(name, SPAN_LIT("client_no_context_takeover")))
        bit = P_CNCT;
    else if (span_eq_nocase(name, SPAN_LIT("server_max_window_bits")))
        bit = P_SMWB;
    else if (span_eq_nocase(name, SPAN_LIT("client_max_window_bits")))
        bit = P_CMWB;
    else
        return -1;
    if (*seen & bit)
        return -1; /* section 7: a parameter at most once */
    *seen |= bit;
    switch (bit) {
    case P_SNCT:
        return vlen ? -1 : 0;
    case P_CNCT:
        if (vlen)
            return -1;
        p->client_no_context_takeover = 1;
        return 0;
    case P_SMWB:
        /* A value is required; 8 is valid but zlib's raw deflate cannot
         * honour it, so such an offer is declined like an invalid one. */
        if (vlen <= 0 || bits < 9)
            return -1;
        p->server_max_window_bits = (uint8_t)bits;
        return 0;
    default: /* P_CMWB: the value is optional */
        if (vlen && bits < 0)
            return -1;
        p->client_max_window_bits = (uint8_t)(vlen ? bits : 15);
        return 0;
    }
}

/* Parses the offer at c up to its comma (consumed) or the end. Returns 1 for
 * an acceptable permessage-deflate offer, 0 for any other offer, -1 for a
 * syntax error (c is then left at the end: after it, where one offer ends
 * and the next begins is a guess, and guessing is how smuggling starts). */
static int offer(struct cursor *c, struct wsdeflate_params *p)
{
    unsigned seen = 0;
    int ok;
    memset(p, 0, sizeof(*p));
    skip_ows(c);
    span_t name = token(c);
    if (name.len == 0)
        goto syntax;
    ok = span_eq_nocase(name, SPAN_LIT("permessage-deflate"));
    for (;;) {
        skip_ows(c);
        if (c->p == c->end)
            return ok;
        if (*c->p == ',') {
            c->p++;
            return ok;
        }
        if (*c->p != ';')
            goto syntax;
        c->p++;
        skip_ows(c);
        span_t pname = token(c);
        if (pname.len == 0)
            goto syntax;
        skip_ows(c);
        char v[8];
        int vlen = 0;
        if (c->p < c->end && *c->p == '=') {
            c->p++;
            skip_ows(c);
            if ((vlen = value(c, v, sizeof(v))) < 0)
                goto syntax;
            if (vlen > (int)sizeof(v))
                ok = 0; /* well-formed, but no parameter of ours takes it */
        }
        if (ok && offer_param(pname, v, vlen, &seen, p) < 0)
            ok = 0;
    }
syntax:
    c->p = c->end;
    return -1;
}

int wsdeflate_negotiate(span_t v, struct wsdeflate_params *p)
{
    struct cursor c = {v.base, v.base + v.len};
    while (c.p < c.end) {
        int rc = offer(&c, p);
        if (rc == 1)
            return 1;
    }
    memset(p, 0, sizeof(*p));
    return 0;
}

size_t wsdeflate_response(const struct wsdeflate_params *p, char out[WSDEFLATE_RESPONSE_MAX])
{
    int n =
        snprintf(out, WSDEFLATE_RESPONSE_MAX, "permessage-deflate; server_no_context_takeover%s",
                 p->client_no_context_takeover ? "; client_no_context_takeover" : "");
    if (p->server_max_window_bits)
        n += snprintf(out + n, WSDEFLATE_RESPONSE_MAX - (size_t)n, "; server_max_window_bits=%u",
                      (unsigned)p->server_max_window_bits);
    return (size_t)n;
}

/* ---- zlib ---- */

static const char sync_tail[4] = {0, 0, (char)0xff, (char)0xff};

void wsdeflate_init(struct wsdeflate *z)
{
    memset(z, 0, sizeof(*z));
}

void wsdeflate_destroy(struct wsdeflate *z)
{
    for (int i = 0; i < 2; i++)
        if (z->def_ready[i])
            deflateEnd(&z->def[i]);
    if (z->inf_ready)
        inflateEnd(&z->inf);
    free(z->zbuf);
    free(z->ibuf);
    wsdeflate_init(z);
}

static int grow(char **buf, size_t *cap, size_t want)
{
    if (*cap >= want)
        return 0;
    char *n = realloc(*buf, want);
    if (!n)
        return -ENOMEM;
    *buf = n;
    *cap = want;
    return 0;
}

int wsdeflate_compress(struct wsdeflate *z, int narrow, const span_t *parts, int n, span_t *out)
{
    z_stream *s = &z->def[narrow ? 1 : 0];
    if (!z->def_ready[narrow ? 1 : 0]) {
        /* Level 6 (zlib's default): on a 1 KiB JSON-like message levels 1 and
         * 3 save a third of the time but send ~7% more; it is paid once per
         * message. The narrow window gets memLevel 4: with 8 its 512-byte
         * window slides the 64 KB hash table every few hundred bytes, which
         * doubles the time for no gain in size. */
        int bits = narrow ? WSDEFLATE_NARROW_BITS : 15;
        if (deflateInit2(s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -bits, narrow ? 4 : 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return -ENOMEM;
        z->def_ready[narrow ? 1 : 0] = 1;
    } else {
        deflateReset(s);
    }
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += parts[i].len;
    /* deflateBound assumes Z_FINISH; a sync flush adds an empty stored block
     * (at most 1 + 4 bytes after the last bits), hence the margin. */
    size_t bound = deflateBound(s, (uLong)total) + 16;
    if (grow(&z->zbuf, &z->zcap, bound) < 0)
        return -ENOMEM;
    s->next_out = (Bytef *)z->zbuf;
    s->avail_out = (uInt)z->zcap;
    for (int i = 0; i < n; i++) {
        s->next_in = (Bytef *)(uintptr_t)parts[i].base;
        s->avail_in = (uInt)parts[i].len;
        int rc = deflate(s, i == n - 1 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
        if ((rc != Z_OK && rc != Z_BUF_ERROR) || s->avail_in != 0)
            return -ENOMEM; /* cannot happen with the bound above */
    }
    if (n == 0 && deflate(s, Z_SYNC_FLUSH) != Z_OK)
        return -ENOMEM;
    size_t len = z->zcap - s->avail_out;
    if (s->avail_out == 0 || len < 4 || memcmp(z->zbuf + len - 4, sync_tail, 4) != 0)
        return -ENOMEM; /* the flush did not complete: not expected either */
    *out = span_of(z->zbuf, len - 4);
    return 0;
}

struct wsdeflate_inflater *wsdeflate_inflater_new(void)
{
    struct wsdeflate_inflater *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    if (inflateInit2(&d->s, -15) != Z_OK) {
        free(d);
        return NULL;
    }
    return d;
}

void wsdeflate_inflater_free(struct wsdeflate_inflater *d)
{
    if (!d)
        return;
    inflateEnd(&d->s);
    free(d);
}

int wsdeflate_inflate(struct wsdeflate *z, struct wsdeflate_inflater *conn, span_t in, size_t max,
                      span_t *out)
{
    z_stream *s;
    if (conn) {
        s = &conn->s;
    } else {
        s = &z->inf;
        if (!z->inf_ready) {
            if (inflateInit2(s, -15) != Z_OK)
                return -ENOMEM;
            z->inf_ready = 1;
        } else {
            inflateReset(s);
        }
    }
    /* Start small: most messages are small, and a bomb should cost its
     * victim as little as the cap allows. */
    size_t limit = max + 1, have = 0;
    if (grow(&z->ibuf, &z->icap, limit < 4096 ? limit : 4096) < 0)
        return -ENOMEM;
    s->next_in = (Bytef *)(uintptr_t)in.base;
    s->avail_in = (uInt)in.len;
    int tail = 0;
    for (;;) {
        if (s->avail_in == 0 && !tail) {
            s->next_in = (Bytef *)(uintptr_t)sync_tail;
            s->avail_in = 4;
            tail = 1;
        }
        size_t room = (z->icap < limit ? z->icap : limit) - have;
        if (room == 0) {
            if (have >= limit)
                return WSDEFLATE_ERR_TOO_BIG;
            size_t want = z->icap * 2 < limit ? z->icap * 2 : limit;
            if (grow(&z->ibuf, &z->icap, want) < 0)
                return -ENOMEM;
            continue;
        }
        s->next_out = (Bytef *)z->ibuf + have;
        s->avail_out = (uInt)room;
        int rc = inflate(s, Z_SYNC_FLUSH);
        have += room - s->avail_out;
        if (have > max)
            return WSDEFLATE_ERR_TOO_BIG;
        if (rc == Z_STREAM_END) {
            /* The client ended the stream (BFINAL); the rest of the input
             * is at most our tail. The next message starts a new stream,
             * with the window kept if the context is. */
            if (conn)
                inflateResetKeep(s);
            break;
        }
        if (rc == Z_MEM_ERROR)
            return -ENOMEM;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return WSDEFLATE_ERR_DATA;
        if (tail && s->avail_in == 0 && s->avail_out > 0)
            break; /* all input read, all output given */
        if (rc == Z_BUF_ERROR && s->avail_out > 0 && s->avail_in > 0)
            return WSDEFLATE_ERR_DATA; /* no progress possible: not expected */
    }
    *out = span_of(z->ibuf, have);
    return 0;
}
