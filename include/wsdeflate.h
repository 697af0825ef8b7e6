/*
 * wsdeflate.h: permessage-deflate (RFC 7692) for the WebSocket side: choosing
 * the parameters from a client's Sec-WebSocket-Extensions offers, compressing
 * one message with no context takeover, and inflating a client's message with
 * a hard cap on its inflated size.
 *
 * The offer parser is a pure function over a byte span. The zlib streams live
 * in a struct wsdeflate that one worker owns (each worker has its own; they
 * are never shared), plus a struct wsdeflate_inflater per connection only for
 * clients that keep their compression context between messages. Nothing here
 * reads a socket or knows about connections or messages: msg.c turns a
 * compressed payload into a shared frame, serve.c decides when to call what.
 */
#ifndef RINGCAST_WSDEFLATE_H
#define RINGCAST_WSDEFLATE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "span.h"

/* Frame payloads shorter than this are sent uncompressed (RSV1 clear) even to
 * a client that negotiated permessage-deflate: below it the deflate block
 * overhead eats most of the gain and the CPU is wasted. */
#define WSDEFLATE_MIN_SIZE 64

/* The window the server compresses with when the client limits it with
 * server_max_window_bits (9 to 14): zlib's raw deflate cannot use 8, and a
 * 9-bit window's back-references fit any window the client may ask for, so
 * one narrow variant per message serves all of them. */
#define WSDEFLATE_NARROW_BITS 9

/* Longest Sec-WebSocket-Extensions value wsdeflate_response() writes. */
#define WSDEFLATE_RESPONSE_MAX 128

/* Results of wsdeflate_inflate besides 0 and -ENOMEM. */
enum {
    WSDEFLATE_ERR_TOO_BIG = -1001, /* inflates to more than the cap: close 1009 */
    WSDEFLATE_ERR_DATA = -1002     /* not valid deflate data: close 1007 */
};

/* What was agreed for one connection. The server always works with
 * server_no_context_takeover, so it is not a field. */
struct wsdeflate_params {
    uint8_t client_no_context_takeover; /* offered by the client, so agreed */
    uint8_t server_max_window_bits;     /* 9..15 as offered (and answered), 0: not offered */
    uint8_t client_max_window_bits;     /* 8..15 as offered, 15 for the bare parameter,
                                           0: not offered; never answered (we inflate
                                           with 15, which reads any client window) */
};

/*
 * Parses one Sec-WebSocket-Extensions header value (a comma-separated list of
 * offers, each a token with ;parameters) and picks the first acceptable
 * permessage-deflate offer. Offers of other extensions are skipped, and so
 * is a permessage-deflate offer that RFC 7692 section 5 calls invalid (an
 * unknown or repeated parameter, a value where none belongs, a missing or out
 * of range window size) or that we cannot honour (server_max_window_bits=8).
 * A syntax error (an empty name, a stray character, an unterminated quote)
 * ends the parse: where the next offer would begin is then a guess. Returns
 * 1 with *p filled, else 0 with *p zeroed: the extension is then declined,
 * never an error.
 */
int wsdeflate_negotiate(span_t value, struct wsdeflate_params *p);

/* Writes the Sec-WebSocket-Extensions answer for p (no CRLF, no NUL) and
 * returns its length, at most WSDEFLATE_RESPONSE_MAX. */
size_t wsdeflate_response(const struct wsdeflate_params *p, char out[WSDEFLATE_RESPONSE_MAX]);

/* 1 if the server must compress with WSDEFLATE_NARROW_BITS for p, else 0
 * (window 15). */
static inline int wsdeflate_narrow(const struct wsdeflate_params *p)
{
    return p->server_max_window_bits && p->server_max_window_bits < 15;
}

/* One worker's zlib streams and scratch buffers, each set up on first use.
 * Zero-initialised (or wsdeflate_init) is the empty state. */
struct wsdeflate {
    z_stream def[2]; /* [0]: window 15, [1]: WSDEFLATE_NARROW_BITS */
    z_stream inf;    /* for clients with client_no_context_takeover */
    uint8_t def_ready[2];
    uint8_t inf_ready;
    char *zbuf; /* wsdeflate_compress output */
    size_t zcap;
    char *ibuf; /* wsdeflate_inflate output */
    size_t icap;
};

/* A client's inflate context kept between its messages (context takeover):
 * zlib's state (~7 KB) and, from the first byte inflated, its 32 KB window. */
struct wsdeflate_inflater {
    z_stream s;
};

void wsdeflate_init(struct wsdeflate *z);
/* Frees every stream and buffer; z is then as after wsdeflate_init. */
void wsdeflate_destroy(struct wsdeflate *z);

/*
 * Compresses the concatenation of parts[0..n) as one message with no context
 * takeover (a fresh stream each time), window 15 or, with narrow,
 * WSDEFLATE_NARROW_BITS. *out gets the raw deflate data, sync-flushed and
 * without its trailing 00 00 ff ff (RFC 7692 section 7.2.1): the payload of
 * a frame with RSV1. *out points into z and is valid until the next call.
 * Returns 0 or -ENOMEM.
 */
int wsdeflate_compress(struct wsdeflate *z, int narrow, const span_t *parts, int n, span_t *out);

/* A context for a client that keeps its window between messages; NULL on
 * ENOMEM. */
struct wsdeflate_inflater *wsdeflate_inflater_new(void);
/* Frees it; NULL is ignored. */
void wsdeflate_inflater_free(struct wsdeflate_inflater *d);

/*
 * Inflates one message's payload (as sent: without the 00 00 ff ff that
 * this appends, RFC 7692 section 7.2.2). With conn NULL the message stands
 * alone (client_no_context_takeover) and z's own stream is used; otherwise
 * conn carries the window from the client's previous messages.
 *
 * Inflates at most max bytes: one byte more and it stops, returning
 * WSDEFLATE_ERR_TOO_BIG, so a small bomb costs at most max + 1 bytes of
 * output buffer. Returns 0 with *out pointing into z (valid until the next
 * call), WSDEFLATE_ERR_TOO_BIG, WSDEFLATE_ERR_DATA or -ENOMEM. After an
 * error conn must not be used again but freed.
 */
int wsdeflate_inflate(struct wsdeflate *z, struct wsdeflate_inflater *conn, span_t in, size_t max,
                      span_t *out);

#endif
