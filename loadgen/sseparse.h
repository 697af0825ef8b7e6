/*
 * sseparse.h: the client side of Server-Sent Events: an incremental parser
 * that turns a text/event-stream body, fed in chunks of any size, into
 * events, following the WHATWG HTML "event stream interpretation" rules.
 *
 * Pure, over byte spans: no socket, no allocation, no global state. One
 * parser per stream, used by the thread that owns the connection; the caller
 * supplies the memory that bounds an event. It does not decode UTF-8 (data is
 * handed back as the bytes that arrived), does not reconnect or send
 * Last-Event-ID (it only remembers the id to send) and knows nothing of
 * ringcast's payloads.
 */
#ifndef RINGLOAD_SSEPARSE_H
#define RINGLOAD_SSEPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "span.h"

/* Longest id or event type value accepted; a longer one is an error. Enough
 * for ringcast (event names of at most 64 bytes, decimal ids) while keeping a
 * parser near 300 bytes, since a load generator holds one per connection. */
#define SSE_PARSE_FIELD_MAX 64

enum {
    SSE_PARSE_MORE = 0,  /* every byte consumed, no event complete: feed more */
    SSE_PARSE_EVENT = 1, /* *ev holds an event */
    /* The data of one event (its data lines joined) exceeded the limit given
     * to sse_parse_init, or an id or event value exceeded
     * SSE_PARSE_FIELD_MAX. The parser stays in this error. Equal to
     * -EMSGSIZE. */
    SSE_PARSE_ERR_TOO_BIG = -90,
};

struct sse_event {
    span_t type; /* the "event" field; empty when none was given (WHATWG: "message") */
    span_t data; /* the data lines joined with "\n", no trailing newline; may be
                    empty (a bare "data" line makes an event with empty data) */
    span_t id;   /* the last event ID after this event: the value of the latest
                    id field on the stream so far, this event's or an earlier
                    one's (ids persist); empty if none or reset by an empty id */
    int has_id;  /* 1 when this event itself carried an (accepted) id field */
};

struct sse_parser {
    /* Public, read-only: what the stream has said so far. */
    uint64_t events;   /* events dispatched */
    uint64_t comments; /* comment lines (":..."), heartbeats included */
    int64_t retry_ms;  /* latest valid "retry:" value (saturating), -1 if none */

    /* Private. */
    char *_data;       /* the caller's buffer for joined data */
    size_t _cap, _len; /* its size (the event limit), bytes used */
    span_t _ext;       /* zero-copy data inside the current chunk */
    uint32_t _ndata;   /* data lines in the current event */
    int _err;          /* sticky error */
    uint8_t _state, _field, _after_cr, _bom, _name_len, _has_id, _id_nul, _retry_ok;
    char _name[8]; /* field name being read (first 6 bytes) */
    uint8_t _type_len, _id_len, _last_len, _tmp_len;
    uint64_t _retry;                 /* retry value being read */
    char _type[SSE_PARSE_FIELD_MAX]; /* event type buffer */
    char _id[SSE_PARSE_FIELD_MAX];   /* last event ID buffer (set by id lines) */
    char _last[SSE_PARSE_FIELD_MAX]; /* last event ID string (set at blank lines) */
    char _tmp[SSE_PARSE_FIELD_MAX];  /* id value being read */
};

/*
 * Starts a parser for a new stream. buf[0..max_event) holds an event's data
 * while it spans chunks; the caller keeps it alive and untouched for the
 * parser's life. max_event bounds the joined data of one event.
 */
void sse_parse_init(struct sse_parser *p, char *buf, size_t max_event);

/*
 * Parses chunk[0..len), the bytes that follow what earlier calls consumed.
 * Any split is fine: a CR at the end of one chunk and the LF that starts the
 * next make one line end, and a byte order mark at the start of the stream is
 * skipped even when it arrives one byte at a time. Events come one per call:
 *
 *  - SSE_PARSE_EVENT: *consumed is how many bytes of chunk were used, through
 *    the blank line that ended the event, and *ev describes it. Call again
 *    with chunk + *consumed for the rest (possibly nothing left).
 *  - SSE_PARSE_MORE: all len bytes were used (*consumed == len); what they
 *    held of an unfinished event is kept in the parser.
 *  - SSE_PARSE_ERR_TOO_BIG, also on every later call.
 *
 * The spans in *ev point into chunk (data that lay whole in this chunk: no
 * copy) or into the parser and buf, and stay valid until the next call. A
 * blank line with no data line before it dispatches nothing (it only ends
 * the fields seen, as WHATWG says); an event left unfinished when the stream
 * ends is simply never returned.
 *
 *     size_t used;
 *     while (len > 0) {
 *         int r = sse_parse(&p, chunk, len, &used, &ev);
 *         if (r < 0) return r;
 *         if (r == SSE_PARSE_EVENT) handle(&ev);
 *         chunk += used, len -= used;
 *     }
 */
int sse_parse(struct sse_parser *p, const char *chunk, size_t len, size_t *consumed,
              struct sse_event *ev);

/* The id a reconnecting client should send as Last-Event-ID: the last event ID
 * as of the latest blank line, whether or not it dispatched an event. Empty
 * when none. Valid until the next sse_parse call. */
span_t sse_parse_last_id(const struct sse_parser *p);

#endif
