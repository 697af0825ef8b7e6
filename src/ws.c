/*
 * ws.c: the WebSocket (RFC 6455) codec.
 *
 * Owns nothing: every function works on the caller's bytes and state, so any
 * thread may call it. The frame parser checks each rule as soon as the byte it
 * depends on is in, in wire order, which is what makes a prefix of any input
 * give "incomplete" or the final answer and nothing else. The assembler keeps
 * what must survive between frames (the message in progress, its size and its
 * UTF-8 state). SHA-1 and base64 come from wolfCrypt; this file has no crypto
 * of its own. Neither sockets nor buffers nor the closing handshake are here:
 * that is the connection code's job.
 */
#include "ws.h"

#include <errno.h>
#include <string.h>
/* wolfSSL's headers read its build options, which must come first. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/sha.h>

#include "utf8.h"
#include "util.h"

#define WS_GUID    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN 24 /* base64 of 16 bytes: 22 characters and "==" */

static int ws_is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int ws_accept_key(span_t client_key, char out[WS_ACCEPT_LEN])
{
    char buf[WS_KEY_LEN + sizeof(WS_GUID) - 1];
    byte nonce[WS_KEY_LEN], digest[WC_SHA_DIGEST_SIZE];
    word32 nonce_len = sizeof(nonce), out_len = WS_ACCEPT_LEN;
    wc_Sha sha;

    if (client_key.len != WS_KEY_LEN || client_key.base[22] != '=' || client_key.base[23] != '=')
        return -EINVAL;
    for (size_t i = 0; i < 22; i++)
        if (!ws_is_base64_char(client_key.base[i]))
            return -EINVAL;
    if (Base64_Decode((const byte *)client_key.base, WS_KEY_LEN, nonce, &nonce_len) != 0 ||
        nonce_len != 16)
        return -EINVAL;

    memcpy(buf, client_key.base, WS_KEY_LEN);
    memcpy(buf + WS_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
    if (wc_InitSha(&sha) != 0)
        return -EINVAL;
    int rc = wc_ShaUpdate(&sha, (const byte *)buf, sizeof(buf));
    if (rc == 0)
        rc = wc_ShaFinal(&sha, digest);
    wc_ShaFree(&sha);
    /* 20 bytes encode to exactly 28 characters; given exactly that room,
     * wolfSSL writes no NUL after them. */
    if (rc != 0 || Base64_Encode_NoNl(digest, sizeof(digest), (byte *)out, &out_len) != 0 ||
        out_len != WS_ACCEPT_LEN)
        return -EINVAL;
    return 0;
}

static inline int ws_is_control(unsigned opcode)
{
    return opcode & 0x8;
}

static inline int ws_is_known_opcode(unsigned opcode)
{
    return opcode <= WS_OP_BINARY || (opcode >= WS_OP_CLOSE && opcode <= WS_OP_PONG);
}

static inline uint64_t ws_load_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Checks the first byte: FIN, RSV1-3 and the opcode. */
static int ws_check_byte0(uint8_t b0, unsigned flags)
{
    unsigned opcode = b0 & 0x0f;

    /* RSV2 and RSV3 belong to no extension we negotiate. RSV1 is
     * permessage-deflate's "compressed" bit (RFC 7692 section 6): set on the
     * first frame of a message only, never on a continuation or control
     * frame. */
    if (b0 & 0x30)
        return WS_ERR_RSV;
    if ((b0 & 0x40) && (!(flags & WS_DEFLATE) || (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY)))
        return WS_ERR_RSV;
    if (!ws_is_known_opcode(opcode))
        return WS_ERR_OPCODE;
    if (ws_is_control(opcode) && !(b0 & 0x80))
        return WS_ERR_CONTROL;
    return 0;
}

int ws_parse_frame(const char *buf, size_t len, unsigned flags, uint64_t max_payload,
                   struct ws_frame *f)
{
    const uint8_t *p = (const uint8_t *)buf;
    int rc;

    f->header_len = 0;
    if (len < 1)
        return WS_INCOMPLETE;
    if ((rc = ws_check_byte0(p[0], flags)) < 0)
        return rc;
    if (len < 2)
        return WS_INCOMPLETE;

    unsigned opcode = p[0] & 0x0f, masked = p[1] >> 7, len7 = p[1] & 0x7f;
    if (masked != !!(flags & WS_FROM_CLIENT))
        return WS_ERR_MASK;
    if (ws_is_control(opcode) && len7 > WS_CONTROL_MAX_PAYLOAD)
        return WS_ERR_CONTROL;

    size_t hdr = 2;
    uint64_t plen = len7;
    if (len7 == 126) {
        if (len < 4)
            return WS_INCOMPLETE;
        plen = ws_load_be(p + 2, 2);
        if (plen < 126) /* RFC 6455 section 5.2: the minimal number of bytes MUST be used */
            return WS_ERR_LENGTH;
        hdr = 4;
    } else if (len7 == 127) {
        /* The top bit is known from the first length byte: refuse it at once. */
        if (len >= 3 && (p[2] & 0x80))
            return WS_ERR_LENGTH;
        if (len < 10)
            return WS_INCOMPLETE;
        plen = ws_load_be(p + 2, 8);
        if (plen <= 0xffff)
            return WS_ERR_LENGTH;
        hdr = 10;
    }
    if (!ws_is_control(opcode) && plen > max_payload)
        return WS_ERR_TOO_BIG;
    if (masked) {
        if (len < hdr + 4)
            return WS_INCOMPLETE;
        memcpy(f->mask, p + hdr, 4);
        hdr += 4;
    }

    f->payload_len = plen;
    f->header_len = hdr;
    f->opcode = (uint8_t)opcode;
    f->fin = p[0] >> 7;
    f->rsv1 = (p[0] >> 6) & 1;
    f->masked = (uint8_t)masked;
    if (len - hdr < plen)
        return WS_INCOMPLETE;
    return (int)hdr;
}

void ws_unmask(char *p, size_t n, const uint8_t key[4], size_t offset)
{
    /* The key repeated over 8 bytes and rotated to offset: since 8 is a
     * multiple of 4, byte i of the word-aligned loop below needs k[i % 8]. */
    uint8_t k[8];
    uint64_t kw;
    size_t i = 0;

    for (int j = 0; j < 8; j++)
        k[j] = key[(offset + (size_t)j) & 3];
    memcpy(&kw, k, 8);
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= kw;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= (char)k[i & 7];
}

void ws_reader_init(struct ws_reader *r, uint64_t max_message)
{
    memset(r, 0, sizeof(*r));
    r->_max = max_message;
}

int ws_close_code_valid(unsigned code)
{
    /* 1004 is reserved, 1005, 1006 and 1015 only ever describe a closure
     * locally, 1016-2999 are unassigned or for extensions we lack, and 3000-
     * 4999 are for libraries and applications (RFC 6455 section 7.4). */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static int ws_reader_close(struct ws_reader *r, span_t payload)
{
    if (payload.len == 0) {
        r->close_code = WS_CLOSE_NO_STATUS;
        r->close_reason = span_of(payload.base, 0);
        return WS_EV_CLOSE;
    }
    if (payload.len == 1)
        return WS_ERR_CLOSE_PAYLOAD;
    unsigned code = (unsigned)ws_load_be((const uint8_t *)payload.base, 2);
    if (!ws_close_code_valid(code))
        return WS_ERR_CLOSE_CODE;
    span_t reason = span_of(payload.base + 2, payload.len - 2);
    if (!utf8_is_valid((const uint8_t *)reason.base, reason.len))
        return WS_ERR_UTF8;
    r->close_code = (uint16_t)code;
    r->close_reason = reason;
    return WS_EV_CLOSE;
}

/* A text, binary or continuation frame. */
static int ws_reader_data(struct ws_reader *r, const struct ws_frame *f, span_t payload)
{
    if (f->opcode == WS_OP_CONT) {
        if (!r->_in_message)
            return WS_ERR_CONTINUATION;
    } else {
        if (r->_in_message)
            return WS_ERR_INTERLEAVED;
        r->_in_message = 1;
        r->opcode = f->opcode;
        r->compressed = f->rsv1;
        r->_size = 0;
        r->_utf8 = UTF8_ACCEPT;
    }
    /* _size never exceeds _max, so the subtraction cannot wrap. */
    if (payload.len > r->_max - r->_size)
        return WS_ERR_TOO_BIG;
    r->_size += payload.len;
    if (r->opcode == WS_OP_TEXT && !r->compressed) {
        uint32_t s = utf8_validate(&r->_utf8, (const uint8_t *)payload.base, payload.len);
        if (s == UTF8_REJECT || (f->fin && s != UTF8_ACCEPT))
            return WS_ERR_UTF8;
    }
    if (!f->fin)
        return WS_EV_FRAGMENT;
    r->_in_message = 0;
    return WS_EV_MESSAGE;
}

int ws_reader_frame(struct ws_reader *r, const struct ws_frame *f, span_t payload)
{
    int rc;

    if (unlikely(r->_error))
        return r->_error;
    switch (f->opcode) {
    case WS_OP_PING:
        return WS_EV_PING;
    case WS_OP_PONG:
        return WS_EV_PONG;
    case WS_OP_CLOSE:
        rc = ws_reader_close(r, payload);
        break;
    default:
        rc = ws_reader_data(r, f, payload);
        break;
    }
    if (rc < 0)
        r->_error = (int8_t)rc;
    return rc;
}

int ws_error_close_code(int err)
{
    switch (err) {
    case WS_ERR_RSV:
    case WS_ERR_OPCODE:
    case WS_ERR_MASK:
    case WS_ERR_LENGTH:
    case WS_ERR_CONTROL:
    case WS_ERR_CONTINUATION:
    case WS_ERR_INTERLEAVED:
    case WS_ERR_CLOSE_PAYLOAD:
    case WS_ERR_CLOSE_CODE:
        return WS_CLOSE_PROTOCOL;
    case WS_ERR_UTF8:
        return WS_CLOSE_INVALID_DATA;
    case WS_ERR_TOO_BIG:
        return WS_CLOSE_TOO_BIG;
    }
    return 0;
}

size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], int opcode, int fin, int rsv1, uint64_t len,
                       const uint8_t *mask)
{
    size_t n = 2;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
    if (len <= 125) {
        out[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask != NULL) {
        out[1] |= 0x80;
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

ssize_t ws_control_frame(uint8_t out[WS_CONTROL_FRAME_MAX], int opcode, span_t payload,
                         const uint8_t *mask)
{
    if (!ws_is_control((unsigned)opcode) || !ws_is_known_opcode((unsigned)opcode) ||
        payload.len > WS_CONTROL_MAX_PAYLOAD)
        return -EINVAL;
    size_t n = ws_frame_header(out, opcode, 1, 0, payload.len, mask);
    span_put((char *)out + n, payload);
    if (mask != NULL)
        ws_unmask((char *)out + n, payload.len, mask, 0);
    return (ssize_t)(n + payload.len);
}

ssize_t ws_pong_frame(uint8_t out[WS_CONTROL_FRAME_MAX], span_t ping_payload, const uint8_t *mask)
{
    return ws_control_frame(out, WS_OP_PONG, ping_payload, mask);
}

ssize_t ws_close_frame(uint8_t out[WS_CONTROL_FRAME_MAX], unsigned code, span_t reason,
                       const uint8_t *mask)
{
    char payload[WS_CONTROL_MAX_PAYLOAD];

    if (code == 0)
        return reason.len == 0 ? ws_control_frame(out, WS_OP_CLOSE, SPAN_NULL, mask) : -EINVAL;
    if (!ws_close_code_valid(code))
        return -EINVAL;
    size_t rlen = reason.len;
    if (rlen > WS_CLOSE_REASON_MAX) {
        /* Back off to the start of a character, so a valid reason stays
         * valid: the peer fails the connection on a broken one (1007). */
        rlen = WS_CLOSE_REASON_MAX;
        while (rlen > 0 && ((unsigned char)reason.base[rlen] & 0xc0) == 0x80)
            rlen--;
    }
    payload[0] = (char)(code >> 8);
    payload[1] = (char)code;
    span_put(payload + 2, span_of(reason.base, rlen));
    return ws_control_frame(out, WS_OP_CLOSE, span_of(payload, 2 + rlen), mask);
}
