/*
 * ws.h: the WebSocket (RFC 6455) codec: handshake key, frame parser, message
 * assembler and frame encoder.
 *
 * Pure functions over byte spans, in the picohttpparser shape: nothing here
 * allocates, reads a socket or keeps global state, and the frame parser only
 * looks at the caller's bytes. Any thread may call these on its own buffers
 * and state. Every protocol violation comes back as a negative WS_ERR_* that
 * ws_error_close_code() turns into the status code to fail the connection
 * with; what to send, when to close and how to buffer is the connection
 * code's job. permessage-deflate is only provided for as far as RSV1 goes:
 * nothing here inflates (wsdeflate.h does).
 */
#ifndef RINGCAST_WS_H
#define RINGCAST_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "span.h"

#define WS_ACCEPT_LEN          28 /* base64 of a SHA-1 digest, no NUL */
#define WS_MAX_HEADER          14 /* 2 + 8 (64-bit length) + 4 (mask key) */
#define WS_CONTROL_MAX_PAYLOAD 125
#define WS_CONTROL_FRAME_MAX   (2 + 4 + WS_CONTROL_MAX_PAYLOAD)
#define WS_CLOSE_REASON_MAX    (WS_CONTROL_MAX_PAYLOAD - 2)

enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xa
};

/* Status codes (RFC 6455 section 7.4.1) this codebase sends or reports. */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* reported for an empty close frame; never sent */
    WS_CLOSE_ABNORMAL = 1006,  /* never sent: the connection dropped without a close */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_MANDATORY_EXT = 1010,
    WS_CLOSE_INTERNAL = 1011
};

/* Results of ws_parse_frame and ws_reader_frame. Each error's close code is
 * in the comment and in ws_error_close_code(). */
enum {
    WS_INCOMPLETE = -2,
    WS_ERR_RSV = -3,            /* 1002: RSV bit that no negotiated extension defines */
    WS_ERR_OPCODE = -4,         /* 1002: reserved opcode */
    WS_ERR_MASK = -5,           /* 1002: client frame unmasked, or server frame masked */
    WS_ERR_LENGTH = -6,         /* 1002: length not in its minimal form, or top bit set */
    WS_ERR_CONTROL = -7,        /* 1002: control frame fragmented or over 125 bytes */
    WS_ERR_TOO_BIG = -8,        /* 1009: frame or message over the caller's limit */
    WS_ERR_CONTINUATION = -9,   /* 1002: continuation frame with no message started */
    WS_ERR_INTERLEAVED = -10,   /* 1002: new data message inside a fragmented one */
    WS_ERR_UTF8 = -11,          /* 1007: text or close reason not valid UTF-8 */
    WS_ERR_CLOSE_PAYLOAD = -12, /* 1002: close frame with a 1-byte payload */
    WS_ERR_CLOSE_CODE = -13     /* 1002: close code a peer may not send */
};

/* Flags for ws_parse_frame. WS_FROM_CLIENT: the frames come from a client, so
 * each must be masked (a server sets it); without it none may be (a client's
 * view of a server). WS_DEFLATE: permessage-deflate was negotiated, so RSV1 may
 * be set on the first frame of a data message. */
#define WS_FROM_CLIENT 0x1u
#define WS_DEFLATE     0x2u

struct ws_frame {
    uint64_t payload_len;
    size_t header_len; /* 2..14, or 0 while the header itself is incomplete */
    uint8_t opcode;    /* WS_OP_* */
    uint8_t fin;       /* 0 or 1 */
    uint8_t rsv1;      /* 0 or 1; 1 only with WS_DEFLATE on a text or binary frame */
    uint8_t masked;    /* 0 or 1 */
    uint8_t mask[4];   /* the masking key when masked */
};

/*
 * Computes the Sec-WebSocket-Accept value for a Sec-WebSocket-Key: base64 of
 * the SHA-1 of the key (as sent) followed by the RFC 6455 GUID. Writes exactly
 * WS_ACCEPT_LEN characters to out, without a NUL. Returns 0, or -EINVAL when
 * the key does not decode to exactly 16 bytes, which in base64 is 22 alphabet
 * characters and "==". That form is checked before decoding because wolfSSL's
 * decoder skips whitespace and ignores whatever follows the first '='.
 */
int ws_accept_key(span_t client_key, char out[WS_ACCEPT_LEN]);

/*
 * Parses the frame at the start of buf[0..len).
 *
 * flags are WS_FROM_CLIENT and WS_DEFLATE above. max_payload bounds the
 * payload of a data frame (UINT64_MAX for none); a larger one is refused as
 * soon as its length field is in, so nobody waits for 2^63 bytes that will
 * never fit.
 *
 * Returns:
 *  - the header length (> 0) once the whole frame is in buf: the payload is
 *    buf[ret .. ret + f->payload_len), still masked (see ws_unmask), and the
 *    next frame starts right after it;
 *  - WS_INCOMPLETE when more bytes are needed. If the header is complete,
 *    *f is filled in and the frame needs f->header_len + f->payload_len
 *    bytes in all, which a caller can reserve; otherwise f->header_len is 0;
 *  - a negative WS_ERR_* (RSV, OPCODE, MASK, LENGTH, CONTROL, TOO_BIG) as
 *    soon as the bytes that show it are in, so a prefix of an input gives
 *    either WS_INCOMPLETE or the same result as the whole. *f is then
 *    unspecified.
 * Reads nothing outside buf[0..len).
 */
int ws_parse_frame(const char *buf, size_t len, unsigned flags, uint64_t max_payload,
                   struct ws_frame *f);

/*
 * XORs p[0..n) with the masking key, in place: unmasks a received payload or
 * masks one to send. offset is the position of p[0] within the payload, so a
 * payload can be done in pieces. 8 bytes at a time, then a scalar tail.
 */
void ws_unmask(char *p, size_t n, const uint8_t key[4], size_t offset);

/* Events from ws_reader_frame (all > 0). */
enum {
    WS_EV_FRAGMENT = 1, /* payload is part of a data message that continues: append it */
    WS_EV_MESSAGE = 2,  /* payload is the last (or only) part: append it, the message
                           is complete */
    WS_EV_PING = 3,     /* answer with a pong carrying the same payload */
    WS_EV_PONG = 4,
    WS_EV_CLOSE = 5 /* r->close_code and r->close_reason are set */
};

/*
 * The message assembler: the state of one direction of one connection across
 * frames. It does not copy payloads; it tells the caller what each frame is
 * and checks the rules that span frames (fragmentation, size, UTF-8 of text).
 */
struct ws_reader {
    /* Read-only for the caller, set by the event they are listed with: */
    uint8_t opcode;      /* FRAGMENT, MESSAGE: the message's WS_OP_TEXT or WS_OP_BINARY */
    uint8_t compressed;  /* FRAGMENT, MESSAGE: the message's first frame had RSV1 */
    uint16_t close_code; /* CLOSE: the peer's code, or WS_CLOSE_NO_STATUS if it sent none */
    span_t close_reason; /* CLOSE: points into the payload passed; valid UTF-8 */
    /* Private: */
    uint64_t _max;       /* message size limit */
    uint64_t _size;      /* payload bytes of the message in progress */
    uint32_t _utf8;      /* validator state of a text message in progress */
    uint8_t _in_message; /* a data message has begun and not ended */
    int8_t _error;       /* sticky: once an error is returned, every later call returns it */
};

/* Starts r with no message in progress. max_message bounds the payload of a
 * data message, summed over its frames (UINT64_MAX for none). */
void ws_reader_init(struct ws_reader *r, uint64_t max_message);

/*
 * Takes the next frame f (as ws_parse_frame returned it) and its payload,
 * already unmasked. Control frames may come between the frames of a data
 * message and do not disturb it. Text is checked as UTF-8 frame by frame,
 * so an invalid byte fails the frame that carries it, not the last one; a
 * compressed message (RSV1) is not checked, as its payload is deflate data:
 * the caller checks the inflated text with utf8_validate and bounds it.
 *
 * Returns a WS_EV_* or a negative WS_ERR_* (TOO_BIG, CONTINUATION,
 * INTERLEAVED, UTF8, CLOSE_PAYLOAD, CLOSE_CODE). After an error the caller
 * fails the connection; every later call returns the same error.
 */
int ws_reader_frame(struct ws_reader *r, const struct ws_frame *f, span_t payload);

/* Returns 1 if a peer may send code in a close frame (1000-1003, 1007-1014,
 * 3000-4999), else 0. */
int ws_close_code_valid(unsigned code);

/* Returns the status code to close with after err (a WS_ERR_*): 1002, 1007 or
 * 1009. Returns 0 for a value that is not an error. */
int ws_error_close_code(int err);

/*
 * Writes a frame header to out and returns its length (2 to 14). The length
 * field takes its minimal form. mask is the 4-byte masking key for a client's
 * frame, or NULL for a server's; the caller masks the payload (ws_unmask).
 * len must be below 2^63.
 */
size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], int opcode, int fin, int rsv1, uint64_t len,
                       const uint8_t *mask);

/*
 * Writes a whole control frame (header and payload, masked if mask is not
 * NULL) to out. Returns its length, or -EINVAL if opcode is not a control
 * opcode or the payload exceeds WS_CONTROL_MAX_PAYLOAD.
 */
ssize_t ws_control_frame(uint8_t out[WS_CONTROL_FRAME_MAX], int opcode, span_t payload,
                         const uint8_t *mask);

/* A pong answering a ping with this payload: ws_control_frame(WS_OP_PONG). */
ssize_t ws_pong_frame(uint8_t out[WS_CONTROL_FRAME_MAX], span_t ping_payload, const uint8_t *mask);

/*
 * Writes a close frame to out and returns its length. code 0 sends an empty
 * close (no code, no reason: the reply to one that had no code); otherwise code
 * must satisfy ws_close_code_valid. A reason longer than WS_CLOSE_REASON_MAX is
 * cut at a UTF-8 character boundary. Returns -EINVAL for an invalid code or a
 * reason with code 0.
 */
ssize_t ws_close_frame(uint8_t out[WS_CONTROL_FRAME_MAX], unsigned code, span_t reason,
                       const uint8_t *mask);

#endif
