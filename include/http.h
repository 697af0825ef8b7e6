/*
 * http.h: the HTTP/1.1 request-head parser and the chunked body decoder.
 *
 * Pure functions over byte spans, in the picohttpparser shape: nothing here
 * allocates, reads a socket or keeps global state, and every span handed back
 * points into the caller's buffer, which the caller keeps alive and unchanged
 * for as long as it uses the spans. Any thread may call these on its own
 * buffers. The parser is strict wherever a lenient reading could let two HTTP
 * implementations disagree on where a request ends (request smuggling, RFC
 * 9112 section 11.2): conflicting framing is an error, never a guess. It
 * deliberately enforces no size limit (the caller answers 431) and decodes
 * no transfer coding but chunked.
 */
#ifndef RINGCAST_HTTP_H
#define RINGCAST_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "span.h"

#define HTTP_MAX_HEADERS 32
/* Empty lines tolerated before a request line (RFC 9112 section 2.2 asks for
 * at least one). A fixed bound keeps the re-scan of each call constant. */
#define HTTP_MAX_LEADING_EMPTY_LINES 8
/* Largest chunk size http_decode_chunked accepts (1 TiB). */
#define HTTP_MAX_CHUNK_SIZE (UINT64_C(1) << 40)

enum {
    HTTP_INCOMPLETE = -2,
    HTTP_ERR_SYNTAX = -1,
    HTTP_ERR_TOO_MANY_HEADERS = -3,
    HTTP_ERR_BAD_FRAMING = -4 /* conflicting/invalid Content-Length or Transfer-Encoding */
};

struct http_header {
    span_t name;  /* a token, as sent (compare with span_eq_nocase) */
    span_t value; /* surrounding OWS trimmed; may be empty */
};

struct http_request {
    span_t method;     /* e.g. "GET": any token, the caller answers 501 to ones it lacks */
    span_t target;     /* request-target as sent: path plus optional ?query, or "*" */
    span_t path;       /* target up to '?' */
    span_t query;      /* after '?', without it; len 0 if none */
    int minor_version; /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t num_headers;
    /* Derived while parsing: */
    int64_t content_length;  /* -1 when absent; never set together with chunked */
    unsigned chunked : 1;    /* Transfer-Encoding: chunked (final coding) */
    unsigned keep_alive : 1; /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
                                "Connection: keep-alive" (close wins over keep-alive) */
    unsigned upgrade : 1;    /* Connection has token "upgrade" and an Upgrade header is present */
    unsigned te_other : 1;   /* Transfer-Encoding names a coding before chunked (e.g. gzip);
                                we decode none, so the caller should answer 501 */
};

/*
 * Parses a request head in buf[0..len). last_len is how many bytes a previous
 * call on the same buffer returned HTTP_INCOMPLETE for (0 the first time), so
 * a re-parse only scans the new bytes for the end of the head: the cost over a
 * request trickled in byte by byte stays linear (slowloris-proof).
 *
 * Returns the head's length through the blank line (> 0; leading empty lines
 * included, so it is what the caller consumes), HTTP_INCOMPLETE, or a negative
 * HTTP_ERR_*. Control bytes, DEL and a CR not followed by LF are reported as
 * soon as they arrive, before the head is complete. Accepts CRLF and bare LF
 * line ends. On success all spans in *req point into buf; on any other return
 * *req is unspecified. Reads nothing outside buf[0..len).
 */
int http_parse_request(const char *buf, size_t len, size_t last_len, struct http_request *req);

/* Chunked body decoder state. Zero-initialise it before the first call. */
struct http_chunked {
    /* Private: the decoder keeps here everything it has seen of an unfinished
     * chunk-size line, extension, CRLF or trailer, so no input byte is ever
     * passed twice. */
    uint64_t _remaining; /* data bytes left in the current chunk, or the size being read */
    unsigned char _state;
};

/*
 * Decodes chunked data in place, like picohttpparser's phr_decode_chunked.
 *
 * Input is buf[0..*len), raw bytes that follow what earlier calls consumed.
 * The chunk data bytes among them are moved down to buf[0..), and *len becomes
 * their count (possibly 0). Chunk extensions and trailer fields are checked
 * against the RFC 9112 grammar and dropped; line ends must be CRLF.
 *
 * Returns:
 *  - >= 0 when the body ended (last chunk, trailers and the final CRLF) inside
 *    this input: the return value is how many input bytes followed the body
 *    (e.g. the next pipelined request). They are moved to sit right after the
 *    decoded data, at buf[*len .. *len + ret).
 *  - HTTP_INCOMPLETE when the body has not ended: every input byte was
 *    consumed (partial size lines and CRLFs live in *d). Keep buf[0..*len),
 *    then call again with only the bytes that arrive next. To collect the body
 *    contiguously, append them right after the decoded data:
 *
 *        struct http_chunked d = {0};
 *        size_t have = 0;                          // body[0..have) decoded
 *        for (;;) {
 *            size_t n = receive(body + have, cap - have); // raw bytes
 *            ssize_t r = http_decode_chunked(&d, body + have, &n);
 *            if (r < 0 && r != HTTP_INCOMPLETE)
 *                return 400;
 *            have += n;                            // n = decoded count
 *            if (r >= 0)
 *                break; // body[0..have); body[have..have+r) is next request
 *        }
 *
 *  - HTTP_ERR_SYNTAX on malformed input: a bad hex digit, a chunk size above
 *    HTTP_MAX_CHUNK_SIZE, a missing CRLF after data, a malformed extension or
 *    trailer, a bare LF. *len is then unspecified and later calls fail too.
 *
 * Trailers and extensions produce no output, so a caller must bound the raw
 * bytes it feeds, not only the decoded ones. Once the body has ended, further
 * calls decode nothing and return all their input as following bytes.
 */
ssize_t http_decode_chunked(struct http_chunked *d, char *buf, size_t *len);

/* Returns the first header named name (ASCII case-insensitive), or NULL. */
const struct http_header *http_header_find(const struct http_request *req, span_t name);

/* Returns 1 if the comma-separated list value holds token, compared ASCII
 * case-insensitively with OWS around elements ignored ("keep-alive, Upgrade"
 * has "upgrade"), else 0. Empty elements never match; nor does an empty token. */
int http_token_list_has(span_t value, span_t token);

/* Finds key in a query string "a=1&since=5&b" (split on '&', compared byte for
 * byte, nothing percent-decoded). Returns 1 and sets *value to the first
 * match's value (len 0 for "b" or "b="), or 0 if absent or key is empty. */
int http_query_get(span_t query, span_t key, span_t *value);

/* Percent-decodes src into dst (capacity >= src.len; dst == src.base is fine).
 * '+' stays '+' (this is not form decoding) and %00 yields a NUL byte, so
 * callers that need a C string or a name check the result. Returns the decoded
 * length or -1 on a bad escape ('%' not followed by two hex digits). */
ssize_t http_percent_decode(span_t src, char *dst);

#endif
