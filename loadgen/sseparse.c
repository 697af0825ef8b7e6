/*
 * sseparse.c: the incremental Server-Sent Events parser (see sseparse.h).
 *
 * Owns nothing but the parser struct; the thread that owns the stream calls
 * it. A small state machine reads a line's field name a byte at a time, then
 * takes the value in runs up to the next CR or LF (found with memchr), so it
 * never buffers a line: values go straight where they belong (the data
 * buffer, the event type, the id) and comments are skipped as they stream
 * by. A data line that lies whole in the chunk is not copied until a second
 * data line or the end of the chunk forces it. It enforces the limits it was
 * given and nothing else: no timeouts, no reconnects.
 */
#include "sseparse.h"

#include <errno.h>
#include <string.h>

#include "util.h"

_Static_assert(SSE_PARSE_ERR_TOO_BIG == -EMSGSIZE, "SSE_PARSE_ERR_TOO_BIG is -EMSGSIZE");
_Static_assert(SSE_PARSE_FIELD_MAX <= 255, "field lengths are uint8_t");

enum {
    SSE_S_BOM,         /* stream start: matching a byte order mark */
    SSE_S_LINE_START,  /* at the first byte of a line */
    SSE_S_NAME,        /* reading a field name */
    SSE_S_VALUE_START, /* right after the colon: one space may follow */
    SSE_S_VALUE,       /* reading a field value */
    SSE_S_COMMENT,     /* in a comment line */
};

enum { SSE_F_IGNORE, SSE_F_DATA, SSE_F_EVENT, SSE_F_ID, SSE_F_RETRY };

/* Longer names than this are none of the four fields. */
#define SSE_NAME_KEEP 6

static const unsigned char sse_bom[3] = {0xef, 0xbb, 0xbf};

void sse_parse_init(struct sse_parser *p, char *buf, size_t max_event)
{
    memset(p, 0, sizeof(*p));
    p->retry_ms = -1;
    p->_data = buf;
    p->_cap = max_event;
    p->_state = SSE_S_BOM;
}

span_t sse_parse_last_id(const struct sse_parser *p)
{
    return span_of(p->_last, p->_last_len);
}

/* Copies zero-copy data into the buffer, before the chunk it points into is
 * gone or before more data joins it. */
static void sse_materialize(struct sse_parser *p)
{
    if (p->_ext.base == NULL)
        return;
    if (p->_ext.len)
        memcpy(p->_data, p->_ext.base, p->_ext.len);
    p->_len = p->_ext.len;
    p->_ext = SPAN_NULL;
}

static int sse_data_append(struct sse_parser *p, const char *s, size_t n)
{
    sse_materialize(p);
    if (n > p->_cap - p->_len)
        return p->_err = SSE_PARSE_ERR_TOO_BIG;
    if (n)
        memcpy(p->_data + p->_len, s, n);
    p->_len += n;
    return 0;
}

/* The field name is complete (a colon or the line end follows): decide which
 * field this line is and prepare its value. */
static int sse_field_begin(struct sse_parser *p)
{
    const char *n = p->_name;
    size_t len = p->_name_len;
    p->_field = SSE_F_IGNORE;
    if (len == 4 && memcmp(n, "data", 4) == 0) {
        p->_field = SSE_F_DATA;
        /* Lines are joined with LF: the separator goes before every data
         * line but the first, which spares removing a trailing LF. */
        if (p->_ndata++ > 0 && sse_data_append(p, "\n", 1) < 0)
            return p->_err;
    } else if (len == 5 && memcmp(n, "event", 5) == 0) {
        p->_field = SSE_F_EVENT;
        p->_type_len = 0;
    } else if (len == 2 && memcmp(n, "id", 2) == 0) {
        p->_field = SSE_F_ID;
        p->_tmp_len = 0;
        p->_id_nul = 0;
    } else if (len == 5 && memcmp(n, "retry", 5) == 0) {
        p->_field = SSE_F_RETRY;
        p->_retry = 0;
        p->_retry_ok = 1;
    }
    return 0;
}

/* Appends to a small field buffer (event type or id). */
static int sse_small_append(struct sse_parser *p, char *dst, uint8_t *dlen, const char *s, size_t n)
{
    if (n > SSE_PARSE_FIELD_MAX - (size_t)*dlen)
        return p->_err = SSE_PARSE_ERR_TOO_BIG;
    memcpy(dst + *dlen, s, n);
    *dlen = (uint8_t)(*dlen + n);
    return 0;
}

/* Value bytes s[0..n), which hold no line end. ends_here is set when the
 * line ends right after them, inside the caller's chunk; if no byte of the
 * value came before them either, a first data line can stay where it is. */
static int sse_value(struct sse_parser *p, const char *s, size_t n, int ends_here)
{
    switch (p->_field) {
    case SSE_F_DATA:
        if (ends_here && p->_ndata == 1 && p->_len == 0 && p->_ext.base == NULL) {
            if (n > p->_cap)
                return p->_err = SSE_PARSE_ERR_TOO_BIG;
            p->_ext = span_of(s, n);
            return 0;
        }
        return sse_data_append(p, s, n);
    case SSE_F_EVENT:
        return sse_small_append(p, p->_type, &p->_type_len, s, n);
    case SSE_F_ID:
        if (n && memchr(s, 0, n) != NULL)
            p->_id_nul = 1;
        return sse_small_append(p, p->_tmp, &p->_tmp_len, s, n);
    case SSE_F_RETRY:
        /* _retry_ok: bit 0 while only digits came, bit 1 once one did. */
        for (size_t i = 0; i < n && p->_retry_ok; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (d > 9) {
                p->_retry_ok = 0;
                break;
            }
            p->_retry_ok |= 2;
            p->_retry = p->_retry > ((uint64_t)INT64_MAX - d) / 10 ? (uint64_t)INT64_MAX
                                                                   : p->_retry * 10 + d;
        }
        return 0;
    default:
        return 0;
    }
}

/* The line that carried the field ended. */
static void sse_field_end(struct sse_parser *p)
{
    if (p->_field == SSE_F_ID && !p->_id_nul) {
        /* WHATWG: an id with a NUL is ignored; any other, empty included,
         * replaces the last event ID buffer. */
        memcpy(p->_id, p->_tmp, p->_tmp_len);
        p->_id_len = p->_tmp_len;
        p->_has_id = 1;
    } else if (p->_field == SSE_F_RETRY && p->_retry_ok == 3) {
        p->retry_ms = (int64_t)p->_retry;
    }
    p->_field = SSE_F_IGNORE;
}

/* A blank line: the last event ID string takes the buffer's value, and the
 * event is dispatched if it has data. Returns 1 when *ev was filled. */
static int sse_blank_line(struct sse_parser *p, struct sse_event *ev)
{
    int dispatch = p->_ndata > 0;
    memcpy(p->_last, p->_id, p->_id_len);
    p->_last_len = p->_id_len;
    if (dispatch) {
        ev->type = span_of(p->_type, p->_type_len);
        ev->data = p->_ext.base != NULL ? p->_ext : span_of(p->_data, p->_len);
        ev->id = span_of(p->_last, p->_last_len);
        ev->has_id = p->_has_id;
        p->events++;
    }
    p->_ext = SPAN_NULL;
    p->_len = 0;
    p->_ndata = 0;
    p->_type_len = 0;
    p->_has_id = 0;
    return dispatch;
}

/* Where the run of bytes from s up to end stops: the first CR or LF, or end. */
static const char *sse_line_end(const char *s, const char *end)
{
    const char *lf = memchr(s, '\n', (size_t)(end - s));
    if (lf == NULL)
        lf = end;
    const char *cr = memchr(s, '\r', (size_t)(lf - s));
    return cr != NULL ? cr : lf;
}

int sse_parse(struct sse_parser *p, const char *chunk, size_t len, size_t *consumed,
              struct sse_event *ev)
{
    const char *s = chunk, *end = chunk + len;
    *consumed = 0;
    if (p->_err)
        return p->_err;
    while (s < end) {
        char c = *s;
        if (p->_after_cr) {
            /* The LF of a CRLF whose CR ended the line before. */
            p->_after_cr = 0;
            if (c == '\n') {
                s++;
                continue;
            }
        }
        switch (p->_state) {
        case SSE_S_BOM:
            if ((unsigned char)c == sse_bom[p->_bom]) {
                s++;
                if (++p->_bom == 3)
                    p->_state = SSE_S_LINE_START;
                continue;
            }
            /* Not a BOM after all: the bytes matched so far (EF, EF BB) are
             * ordinary bytes of the first field name. */
            p->_state = SSE_S_LINE_START;
            if (p->_bom > 0) {
                memcpy(p->_name, sse_bom, p->_bom);
                p->_name_len = p->_bom;
                p->_state = SSE_S_NAME;
            }
            continue;
        case SSE_S_LINE_START:
            if (c == '\r' || c == '\n') {
                p->_after_cr = c == '\r';
                s++;
                if (sse_blank_line(p, ev)) {
                    *consumed = (size_t)(s - chunk);
                    return SSE_PARSE_EVENT;
                }
                continue;
            }
            if (c == ':') {
                p->_state = SSE_S_COMMENT;
                s++;
                continue;
            }
            p->_state = SSE_S_NAME;
            p->_name_len = 0;
            continue;
        case SSE_S_NAME:
            if (c == '\r' || c == '\n' || c == ':') {
                /* A line without a colon is a field with an empty value. */
                if (sse_field_begin(p) < 0)
                    goto fail;
                s++;
                if (c == ':') {
                    p->_state = SSE_S_VALUE_START;
                } else {
                    sse_field_end(p);
                    p->_after_cr = c == '\r';
                    p->_state = SSE_S_LINE_START;
                }
                continue;
            }
            if (p->_name_len < SSE_NAME_KEEP)
                p->_name[p->_name_len++] = c;
            s++;
            continue;
        case SSE_S_VALUE_START:
            p->_state = SSE_S_VALUE;
            if (c == ' ')
                s++;
            continue;
        case SSE_S_VALUE: {
            const char *e = sse_line_end(s, end);
            if (sse_value(p, s, (size_t)(e - s), e < end) < 0)
                goto fail;
            s = e;
            if (e < end) {
                sse_field_end(p);
                p->_after_cr = *e == '\r';
                p->_state = SSE_S_LINE_START;
                s++;
            }
            continue;
        }
        case SSE_S_COMMENT: {
            const char *e = sse_line_end(s, end);
            s = e;
            if (e < end) {
                p->comments++;
                p->_after_cr = *e == '\r';
                p->_state = SSE_S_LINE_START;
                s++;
            }
            continue;
        }
        }
    }
    sse_materialize(p);
    *consumed = len;
    return SSE_PARSE_MORE;
fail:
    *consumed = (size_t)(s - chunk);
    return p->_err;
}
