/*
 * nchanmsg.h: what ringload reads from nginx + nchan's WebSocket and
 * long-poll subscribers (scenario keys ws_protocol = nchan, poll_protocol =
 * nchan): the ws+meta.nchan frame, nchan's "TIME:TAG" message ids, and the
 * HTTP dates its long poll resumes with (Last-Modified, If-Modified-Since).
 *
 * Pure, over byte spans, in the picohttpparser shape: no socket, no
 * allocation, no global state; outputs point into the caller's bytes. A
 * WebSocket message reaches nchanmsg_ws_meta whole (the frame layer
 * reassembles it), so there is no "need more" here: a cut frame is an error.
 */
#ifndef RINGLOAD_NCHANMSG_H
#define RINGLOAD_NCHANMSG_H

#include <stddef.h>
#include <stdint.h>

#include "span.h"

/* One ws+meta.nchan message:
 *
 *   id: 1795476707:0\n
 *   content-type: text/plain\n      (this line may be absent)
 *   \n
 *   BODY
 *
 * id and type exclude their line ends; body is everything after the blank
 * line (possibly empty). */
struct nchanmsg_meta {
    span_t id, type, body;
};

/* Reads one ws+meta.nchan message from f. 0 with *m filled, or -1 when f is
 * not one: no "id: " line first, a line without its "\n", another header
 * than content-type, or no blank line before the body. */
int nchanmsg_ws_meta(span_t f, struct nchanmsg_meta *m);

/* nchan's message id "TIME:TAG" (publish time in Unix seconds, then a
 * counter within that second): 0 with *key = TIME << 24 | TAG, which orders
 * ids as nchan does; -1 for anything else (empty fields, other bytes, TIME
 * of 2^39 or more, TAG of 2^24 or more). */
int nchanmsg_id(span_t s, uint64_t *key);

/* An HTTP date in the IMF-fixdate form nchan sends (RFC 9110 5.6.7:
 * "Mon, 23 Nov 2026 23:31:57 GMT"): 0 with *secs since the Unix epoch, or
 * -1 (another form, an impossible date, a year before 1970 or after 9999). */
int nchanmsg_http_date(span_t s, uint64_t *secs);

/* Writes secs as an IMF-fixdate (29 bytes and a NUL) into out. */
void nchanmsg_fmt_http_date(uint64_t secs, char out[30]);

/* A long-poll answer's resume point from its Last-Modified and Etag
 * (decimal, nchan's counter within that second) as one key ordered like
 * nchanmsg_id's: 0, or -1 when either is missing or malformed. */
int nchanmsg_poll_key(span_t last_modified, span_t etag, uint64_t *key);

#endif
