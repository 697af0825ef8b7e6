/*
 * serve_ws.c: the WebSocket side of a worker (RFC 6455, RFC 7692): the
 * handshake on GET /sub/..., frames in (client messages published to the
 * connection's channels, pings, the close handshake, protocol errors with
 * their close codes) and messages out as the frames each message built once
 * (msg.h), shared by every subscriber. Like serve.c it never touches a socket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"
#include "utf8.h"
#include "util.h"
#include "wire.h"

static const uint8_t ws_ping_frame[] = {0x80 | WS_OP_PING, 0};

static void ws_leave(struct worker *w, struct conn *c)
{
    conn_unsubscribe(w, c);
    if (c->state == C_WS && !(c->flags & CF_WS_CLOSING))
        STAT_SUB(&w->stats, ws_subscribers, 1);
}

/* Sends a close frame and waits (--close-timeout) for the client's. */
static void ws_close_by_server(struct worker *w, struct conn *c, unsigned code, const char *why)
{
    uint8_t out[WS_CONTROL_FRAME_MAX];
    if (c->flags & CF_WS_CLOSING)
        return;
    ws_leave(w, c);
    c->flags |= CF_WS_CLOSING;
    ssize_t n = ws_close_frame(out, code, span_cstr(why), NULL);
    if (n > 0)
        conn_queue_copy(w, c, (const char *)out, (size_t)n);
    if (!(c->flags & CF_CLOSE_SENT))
        conn_timer_set(w, c, T_WSCLOSE);
}

/* Failures of a compressed message, besides ws.h's WS_ERR_*. */
enum {
    WS_ERR_INFLATE = -100, /* 1007: not valid deflate data */
    WS_ERR_NOMEM = -101    /* 1011: no memory to inflate it */
};

static void ws_fail(struct worker *w, struct conn *c, int err)
{
    STAT_ADD(&w->stats, ws_protocol_errors, 1);
    c->flags |= CF_WS_FAILED;
    int code = ws_error_close_code(err);
    const char *why = code == WS_CLOSE_INVALID_DATA ? "invalid UTF-8"
                      : code == WS_CLOSE_TOO_BIG    ? "message exceeds --max-message"
                                                    : "protocol error";
    if (err == WS_ERR_INFLATE) {
        code = WS_CLOSE_INVALID_DATA;
        why = "invalid compressed data";
    } else if (err == WS_ERR_NOMEM) {
        code = WS_CLOSE_INTERNAL;
        why = "out of memory";
    }
    ws_close_by_server(w, c, (unsigned)(code ? code : WS_CLOSE_PROTOCOL), why);
}

/* One message as a frame, from the message's shared bytes: a header and
 * the payload, or in JSON mode the channel-naming head and the JSON form.
 * With permessage-deflate, the message's compressed frame, which the first
 * subscriber to need it builds (on whatever worker) and all others share. */
void serve_ws_deliver(struct worker *w, struct conn *c, struct subnode *node, struct msg *m)
{
    if (node)
        node->last_id = m->id;
    if (c->flags & CF_WS_DEFLATE) {
        struct blob *z = msg_ws_deflated(m, (c->flags & CF_WS_JSON) ? MSG_WS_JSON : MSG_WS_RAW,
                                         !!(c->flags & CF_WS_NARROW), &w->wsz);
        if (z) {
            rc_get(&m->rc); /* the message owns z */
            conn_queue(w, c, &m->rc, z->data, z->len);
            return;
        }
    }
    rc_get_n(&m->rc, 2);
    if (c->flags & CF_WS_JSON) {
        conn_queue(w, c, &m->rc, m->ws_json_head.base, m->ws_json_head.len);
        conn_queue(w, c, &m->rc, m->json.base + 1, m->json.len - 1);
    } else {
        conn_queue(w, c, &m->rc, (const char *)m->ws_hdr, m->ws_hdr_len);
        conn_queue(w, c, &m->rc, m->payload.base, m->payload.len);
    }
}

static void ws_queue_gap(struct worker *w, struct conn *c, span_t name, const struct chan_range *r)
{
    char body[256];
    uint8_t frame[WS_MAX_HEADER + sizeof(body)];
    int n = snprintf(body, sizeof(body),
                     "{\"gap\":{\"channel\":\"%.*s\",\"requested\":%llu,\"first\":%llu}}",
                     (int)name.len, name.base, (unsigned long long)r->gap_requested,
                     (unsigned long long)r->gap_first);
    size_t h = ws_frame_header(frame, WS_OP_TEXT, 1, 0, (uint64_t)n, NULL);
    memcpy(frame + h, body, (size_t)n);
    conn_queue_copy(w, c, (const char *)frame, h + (size_t)n);
    STAT_ADD(&w->stats, gaps, 1);
}

static const struct stream_ops ws_ops = {ws_queue_gap, serve_ws_deliver};

static int origin_allowed(const char *list, span_t origin)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (span_eq(span_of(p, n), origin))
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* The opening handshake (RFC 6455 section 4.2), then the backlog after
 * since, then live messages. */
void serve_ws_open(struct worker *w, struct conn *c, const struct http_request *req,
                   const struct target *t)
{
    const struct http_header *up = http_header_find(req, SPAN_LIT("Upgrade"));
    const struct http_header *ver = http_header_find(req, SPAN_LIT("Sec-WebSocket-Version"));
    const struct http_header *key = http_header_find(req, SPAN_LIT("Sec-WebSocket-Key"));
    const struct http_header *origin = http_header_find(req, SPAN_LIT("Origin"));
    const struct http_header *proto = http_header_find(req, SPAN_LIT("Sec-WebSocket-Protocol"));
    char accept[WS_ACCEPT_LEN];
    if (!up || !http_token_list_has(up->value, SPAN_LIT("websocket")) || req->minor_version != 1) {
        serve_error(w, c, 400, NULL, "Upgrade: expected websocket over HTTP/1.1");
        return;
    }
    if (!ver || !span_eq(ver->value, SPAN_LIT("13"))) {
        serve_error(w, c, 426, "Sec-WebSocket-Version: 13\r\n",
                    "Sec-WebSocket-Version: only 13 is spoken");
        return;
    }
    if (!key || ws_accept_key(key->value, accept) < 0) {
        serve_error(w, c, 400, NULL, "Sec-WebSocket-Key: expected 16 bytes in base64");
        return;
    }
    if (origin && strcmp(w->cfg->allow_origin, "*") != 0 &&
        !origin_allowed(w->cfg->allow_origin, origin->value)) {
        serve_error(w, c, 403, NULL, "Origin not allowed (see --allow-origin)");
        return;
    }
    /* Several Sec-WebSocket-Protocol lines are one list (RFC 6455 11.3.4). */
    int json = 0;
    for (size_t i = 0; proto && i < req->num_headers; i++)
        json |= span_eq_nocase(req->headers[i].name, SPAN_LIT("Sec-WebSocket-Protocol")) &&
                http_token_list_has(req->headers[i].value, SPAN_LIT("ringcast.json"));
    /* The same for extensions; the first acceptable offer wins. */
    struct wsdeflate_params zp;
    int deflate = 0;
    char ext[WSDEFLATE_RESPONSE_MAX];
    size_t ext_len = 0;
    for (size_t i = 0; w->cfg->ws_deflate && !deflate && i < req->num_headers; i++)
        if (span_eq_nocase(req->headers[i].name, SPAN_LIT("Sec-WebSocket-Extensions")))
            deflate = wsdeflate_negotiate(req->headers[i].value, &zp);
    if (deflate)
        ext_len = wsdeflate_response(&zp, ext);
    struct chan *chans[SERVE_MAX_CHANNELS];
    if (serve_local_chans(w, c, t, chans) < 0)
        return;
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %.*s\r\n%s%s%.*s%s\r\n",
                     WS_ACCEPT_LEN, accept, json ? "Sec-WebSocket-Protocol: ringcast.json\r\n" : "",
                     deflate ? "Sec-WebSocket-Extensions: " : "", (int)ext_len, ext,
                     deflate ? "\r\n" : "");
    conn_queue_copy(w, c, head, (size_t)n);
    c->flags &= ~CF_CLOSE_AFTER; /* the close handshake decides */
    if (json)
        c->flags |= CF_WS_JSON;
    if (deflate)
        c->flags |= CF_WS_DEFLATE | (wsdeflate_narrow(&zp) ? CF_WS_NARROW : 0) |
                    (zp.client_no_context_takeover ? CF_WS_CLIENT_NCT : 0);
    if (serve_subscribe_backlog(w, c, t, chans, &ws_ops) < 0 || (c->flags & CF_CLOSE_SENT))
        return;
    c->state = C_WS;
    conn_timer_set(w, c, T_WSPING);
    STAT_ADD(&w->stats, ws_subscribers, 1);
}

/* A complete message from the client: published on each of its channels,
 * as any publish, unless --ws-publish off. */
static void ws_publish(struct worker *w, struct conn *c, span_t msg, int binary)
{
    STAT_ADD(&w->stats, ws_messages_in, 1);
    if (!w->cfg->ws_publish) {
        ws_close_by_server(w, c, WS_CLOSE_POLICY, "publishing is off (--ws-publish)");
        return;
    }
    if (c->flags & CF_MULTI) {
        for (uint32_t k = c->snext; k != SLOT_NONE; k = w->subs[k].cnext) {
            struct chan *ch = w->subs[k].ch;
            struct pubreq *r =
                serve_pubreq_new(w, span_of(ch->name, ch->name_len), SPAN_NULL, msg, binary);
            if (r)
                serve_pubreq_send(w, r);
        }
    } else if (c->chan) {
        struct pubreq *r =
            serve_pubreq_new(w, span_of(c->chan->name, c->chan->name_len), SPAN_NULL, msg, binary);
        if (r)
            serve_pubreq_send(w, r);
    }
}

/* The client's close: answered with the same code, then TCP closes. Ours
 * already went out if we started: then just close. */
static void ws_on_close(struct worker *w, struct conn *c, struct ws_reader *r)
{
    if (!(c->flags & CF_WS_CLOSING)) {
        uint8_t out[WS_CONTROL_FRAME_MAX];
        unsigned code = r->close_code == WS_CLOSE_NO_STATUS ? 0 : r->close_code;
        ssize_t n = ws_close_frame(out, code, SPAN_NULL, NULL);
        ws_leave(w, c);
        if (n > 0)
            conn_queue_copy(w, c, (const char *)out, (size_t)n);
    }
    conn_timer_set(w, c, T_NONE);
    c->state = C_READ;
    c->flags |= CF_CLOSE_AFTER;
    conn_mark_dirty(w, c);
}

/*
 * Reads the client's frames. c->rx holds, in order, the unmasked fragments of
 * a message in progress (data[0..assembled)) and raw frames. A fragment's
 * payload is moved down to join the assembled ones; a complete message is
 * published from where it lies, so a one-frame message is never copied here.
 * A compressed message (permessage-deflate) is assembled compressed and
 * inflated whole once complete, into the worker's buffer (ws_inflate).
 */
/* Header plus payload length of the frame at p[0..n), from its length
 * field alone; 0 while the header is incomplete. */
static uint64_t ws_frame_extent(const uint8_t *p, size_t n)
{
    if (n < 2)
        return 0;
    uint64_t len = p[1] & 0x7f, h = 2 + ((p[1] & 0x80) ? 4 : 0);
    size_t lb = len == 126 ? 2 : len == 127 ? 8 : 0;
    if (n < 2 + lb)
        return 0;
    if (lb) {
        len = 0;
        for (size_t i = 0; i < lb; i++)
            len = len << 8 | p[2 + i];
        len &= UINT64_C(0x7fffffffffffffff);
    }
    return h + lb + len;
}

/*
 * After failing the connection (RFC 6455 7.1.7) nothing the client sends is
 * processed; but its close frame still ends our wait for it, so frames are
 * skipped by their length alone (a refused frame's payload too, whenever it
 * comes), looking only for a close.
 */
static void ws_skip_failed(struct worker *w, struct conn *c)
{
    struct rxbuf *rx = c->rx;
    uint64_t off = rx->ws.skip < rx->len ? rx->ws.skip : rx->len;
    rx->ws.skip -= off;
    while (off < rx->len) {
        const uint8_t *p = (const uint8_t *)rx->data + off;
        uint64_t ext = ws_frame_extent(p, rx->len - off);
        if (!ext)
            break;
        if ((p[0] & 0x0f) == WS_OP_CLOSE) {
            rx->len = 0;
            conn_timer_set(w, c, T_NONE);
            c->state = C_READ;
            c->flags |= CF_CLOSE_AFTER;
            conn_mark_dirty(w, c);
            return;
        }
        if (ext > rx->len - off) {
            rx->ws.skip = ext - (rx->len - off);
            off = rx->len;
            break;
        }
        off += ext;
    }
    memmove(rx->data, rx->data + off, rx->len - (uint32_t)off);
    rx->len -= (uint32_t)off;
}

/* Fails the connection at the frame at off: what follows is only skipped. */
static void ws_fail_at(struct worker *w, struct conn *c, int err, uint32_t off)
{
    struct rxbuf *rx = c->rx;
    ws_fail(w, c, err);
    memmove(rx->data, rx->data + off, rx->len - off);
    rx->len -= off;
    rx->ws.assembled = rx->ws.mid = 0;
    rx->ws.skip = 0;
    ws_skip_failed(w, c);
}

/*
 * A client's compressed message, inflated (RFC 7692 section 7.2.2) into the
 * worker's buffer, at most --max-message bytes, text checked as UTF-8.
 * Returns 0 with *out set (valid until the next inflate on this worker), or
 * the WS_ERR_* to fail the connection with.
 */
static int ws_inflate(struct worker *w, struct conn *c, span_t in, int text, span_t *out)
{
    struct wsdeflate_inflater *d = NULL;
    if (!(c->flags & CF_WS_CLIENT_NCT)) {
        /* The client keeps its window between messages, so must we: ~40 KB
         * for the rest of the connection, from its first compressed one. */
        struct wsdeflate_inflater **slot = &w->inflaters[conn_slot(w, c)];
        if (!*slot && !(*slot = wsdeflate_inflater_new()))
            return WS_ERR_NOMEM;
        d = *slot;
    }
    int rc = wsdeflate_inflate(&w->wsz, d, in, w->cfg->max_message, out);
    if (rc == WSDEFLATE_ERR_TOO_BIG)
        return WS_ERR_TOO_BIG;
    if (rc == WSDEFLATE_ERR_DATA)
        return WS_ERR_INFLATE;
    if (rc < 0)
        return WS_ERR_NOMEM;
    if (text && !utf8_is_valid((const uint8_t *)out->base, out->len))
        return WS_ERR_UTF8;
    return 0;
}

/* With deflate, a compressed payload may be a little longer than the
 * message it inflates to (stored blocks: 5 bytes per up to 64 KB): frames
 * get this much room over --max-message, and uncompressed messages are held
 * to --max-message by serve_ws_input itself. */
static uint64_t ws_wire_max(const struct worker *w, const struct conn *c)
{
    uint64_t max = w->cfg->max_message;
    return (c->flags & CF_WS_DEFLATE) ? max + max / 1024 + 64 : max;
}

void serve_ws_input(struct worker *w, struct conn *c)
{
    struct rxbuf *rx = c->rx;
    if (c->flags & CF_WS_FAILED) {
        ws_skip_failed(w, c);
        return;
    }
    uint32_t off = rx->ws.assembled;
    uint64_t wire_max = ws_wire_max(w, c);
    unsigned pflags = WS_FROM_CLIENT | ((c->flags & CF_WS_DEFLATE) ? WS_DEFLATE : 0);
    while (c->state == C_WS && off < rx->len) {
        struct ws_frame f;
        if (!rx->ws.mid)
            ws_reader_init(&rx->ws.r, wire_max);
        int hl = ws_parse_frame(rx->data + off, rx->len - off, pflags, wire_max, &f);
        if (hl == WS_INCOMPLETE)
            break;
        if (hl < 0) {
            ws_fail_at(w, c, hl, off); /* the refused frame included */
            return;
        }
        char *payload = rx->data + off + hl;
        uint32_t plen = (uint32_t)f.payload_len;
        uint32_t next = off + (uint32_t)hl + plen;
        ws_unmask(payload, plen, f.mask, 0);
        int ev = ws_reader_frame(&rx->ws.r, &f, span_of(payload, plen));
        /* The reader allows wire_max; an uncompressed message gets max. */
        if ((ev == WS_EV_FRAGMENT || ev == WS_EV_MESSAGE) && !rx->ws.r.compressed &&
            (rx->ws.mid ? rx->ws.assembled : 0) + (uint64_t)plen > w->cfg->max_message)
            ev = WS_ERR_TOO_BIG;
        if (ev < 0) {
            ws_fail_at(w, c, ev, next);
            return;
        }
        if ((c->flags & CF_WS_CLOSING) && ev != WS_EV_CLOSE) {
            off = next; /* after our close only the client's close matters */
            continue;
        }
        switch (ev) {
        case WS_EV_FRAGMENT:
        case WS_EV_MESSAGE:
            if (rx->ws.mid || ev == WS_EV_FRAGMENT) {
                memmove(rx->data + rx->ws.assembled, payload, plen);
                rx->ws.assembled += plen;
                rx->ws.mid = 1;
            }
            if (ev == WS_EV_MESSAGE) {
                span_t msg =
                    rx->ws.mid ? span_of(rx->data, rx->ws.assembled) : span_of(payload, plen);
                int err = rx->ws.r.compressed
                              ? ws_inflate(w, c, msg, rx->ws.r.opcode == WS_OP_TEXT, &msg)
                              : 0;
                if (err < 0) {
                    ws_fail_at(w, c, err, next);
                    return;
                }
                ws_publish(w, c, msg, rx->ws.r.opcode == WS_OP_BINARY);
                rx->ws.assembled = 0;
                rx->ws.mid = 0;
            }
            break;
        case WS_EV_PING: {
            uint8_t out[WS_CONTROL_FRAME_MAX];
            ssize_t n = ws_pong_frame(out, span_of(payload, plen), NULL);
            if (n > 0)
                conn_queue_copy(w, c, (const char *)out, (size_t)n);
            break;
        }
        case WS_EV_PONG:
            if (c->tlist == T_WSPONG)
                conn_timer_set(w, c, T_WSPING);
            break;
        case WS_EV_CLOSE:
            ws_on_close(w, c, &rx->ws.r);
            rx->len = rx->ws.assembled = rx->ws.mid = 0;
            return;
        }
        off = next;
    }
    if (c->flags & CF_CLOSE_SENT)
        return;
    /* Drop the frames read; keep the assembled part and any partial frame. */
    memmove(rx->data + rx->ws.assembled, rx->data + off, rx->len - off);
    rx->len = rx->ws.assembled + (rx->len - off);
}

void serve_ws_slow(struct worker *w, struct conn *c)
{
    c->flags |= CF_WS_FAILED; /* nothing it sends matters now but its close */
    ws_close_by_server(w, c, WS_CLOSE_POLICY, "subscriber too slow");
}

void serve_ws_timer(struct worker *w, struct conn *c, int list)
{
    if (list == T_WSPING) {
        conn_timer_set(w, c, T_WSPONG);
        conn_queue(w, c, NULL, (const char *)ws_ping_frame, sizeof(ws_ping_frame));
    } else if (list == T_WSPONG) {
        STAT_ADD(&w->stats, ws_ping_timeouts, 1);
        conn_close(w, c); /* which also counts the subscriber out */
    } else {
        conn_close(w, c); /* the client never answered our close */
    }
}

void serve_ws_drain(struct worker *w, struct conn *c)
{
    c->flags &= ~CF_CLOSE_AFTER; /* the close handshake decides */
    ws_close_by_server(w, c, WS_CLOSE_GOING_AWAY, "server shutting down");
}
