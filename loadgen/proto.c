/*
 * proto.c: what ringload's subscribers speak and check, for one engine
 * thread: SSE (the request, the response head, events), WebSocket (the
 * handshake, frames, pings, the close; a WebSocket publisher's echo), long
 * and short polls (requests, Content-Length answers, JSON messages), and the
 * delivery checks every kind shares (check_seq: loss, duplicates, order,
 * server ids in step, latency). WebSocket and polls also speak nginx +
 * nchan's dialects (scenario keys ws_protocol, poll_protocol = nchan; the
 * formats are read by nchanmsg.c): the same checks on the same payloads,
 * only the framing and the resume points differ. The engine (engine.c)
 * owns the sockets and hands plaintext bytes here; nothing here touches
 * io_uring but through it.
 * Which baseline each kind checks from is told in engine.c's header.
 */
#include "engine_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonmsg.h"
#include "nchanmsg.h"
#include "sseparse.h"
#include "ws.h"

/* A subscriber's last id as the server wrote it: "N", or "A:B" (see
 * parse_id). */
static void id_text(const struct lclient *c, char out[48])
{
    if (c->id_form == 2)
        snprintf(out, 48, "%llu:%llu", (unsigned long long)(c->last_id >> 24),
                 (unsigned long long)(c->last_id & 0xffffff));
    else
        snprintf(out, 48, "%llu", (unsigned long long)c->last_id);
}

/* A reconnecting SSE or WebSocket subscriber asks for what it missed when
 * the scenario says how (resume) and it knows where it stopped; else it
 * starts afresh and the messages it missed are counted as such. WebSocket
 * has no Last-Event-ID: it always resumes with ?since. */
static int resuming(const struct scenario *sc, struct lclient *c)
{
    int yes =
        sc->resume != SCENARIO_RESUME_NONE && (c->flags & CF_SUBBED) && (c->flags & CF_HAVEID);
    c->flags = (uint16_t)(yes ? c->flags | CF_RESUMING : c->flags & ~CF_RESUMING);
    return yes;
}

/* Appends "?since=ID" (or "&since=ID") to path. */
static void add_since(const struct lclient *c, char *path, size_t cap)
{
    char id[48];
    size_t n = strlen(path);
    id_text(c, id);
    snprintf(path + n, cap - n, "%csince=%s", strchr(path, '?') ? '&' : '?', id);
}

void proto_start_sse(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i)
{
    const struct scenario *sc = &t->run->sc;
    char name[160], path[1300], req[1900], last[80] = "", id[48];
    scenario_channel_name(sc, c->chan, name, sizeof(name));
    scenario_url_path(&sc->sub_url, name, path, sizeof(path));
    if (resuming(sc, c)) {
        if (sc->resume == SCENARIO_RESUME_SINCE) {
            add_since(c, path, sizeof(path));
        } else {
            id_text(c, id);
            snprintf(last, sizeof(last), "Last-Event-ID: %s\r\n", id);
        }
    }
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n", path,
                     e->host_hdr, last);
    eng_tx_append(c, req, (size_t)n);
    c->state = S_HEAD;
    eng_submit_send(e, c, i);
    eng_arm_recv(e, c, i);
}

/* "s=SEQ t=NS ..." */
static int parse_payload(span_t d, uint64_t *seq, uint64_t *tns)
{
    const char *p = d.base, *end = d.base + d.len;
    uint64_t v[2] = {0, 0};
    for (int f = 0; f < 2; f++) {
        if (end - p < 3 || p[1] != '=')
            return -1;
        p += 2;
        if (p == end || *p < '0' || *p > '9')
            return -1;
        while (p < end && *p >= '0' && *p <= '9')
            v[f] = v[f] * 10 + (uint64_t)(*p++ - '0');
        if (p == end || *p != ' ')
            return -1;
        p++;
    }
    *seq = v[0];
    *tns = v[1];
    return 0;
}

/* A server's SSE id: decimal (ringcast: 1, 2, 3, ...; returns 1, *a = it)
 * or two decimal fields "A:B" (nchan: "1700000000:0"; returns 2, B below
 * 2^24). 0 for anything else, an empty id included. */
static int parse_id(span_t s, uint64_t *a, uint64_t *b)
{
    const char *p = s.base, *end = s.base + s.len;
    uint64_t v[2] = {0, 0};
    int f = 0;
    for (;;) {
        if (p == end || *p < '0' || *p > '9' || end - p > 19)
            return 0;
        while (p < end && *p >= '0' && *p <= '9')
            v[f] = v[f] * 10 + (uint64_t)(*p++ - '0');
        f++;
        if (p == end)
            break;
        if (*p++ != ':' || f == 2)
            return 0;
    }
    if (f == 2 && (v[1] >> 24 || v[0] >> 39))
        return 0;
    *a = v[0];
    *b = v[1];
    return f;
}

/* Checks one delivery to subscriber c: sequence seq, intended send time
 * tns, server id id. measure: its latency goes into the histograms (not for
 * short polls, whose latency is their poll interval by design). */
static void check_seq(struct engine_thread *t, struct engine *e, struct lclient *c, uint64_t seq,
                      uint64_t tns, uint64_t id, uint64_t now, int measure)
{
    KCNT(t, c, deliveries, deliveries, 1);
    if (seq < c->baseline) {
        CNT(t, early, 1);
        return;
    }
    if (c->flags & CF_RESYNC) {
        /* The server said messages are gone (a gap): the first one after it
         * sets the position, and what was skipped is a signalled loss, not
         * a silent one. Its ids may start over (a restarted server). */
        c->flags &= ~CF_RESYNC;
        if (seq > c->next_seq) {
            CNT(t, gap_skipped, seq - c->next_seq);
            c->next_seq = seq;
        }
        c->have_offset = 0;
    }
    if (seq == c->next_seq) {
        c->next_seq++;
    } else if (seq > c->next_seq) {
        KCNT(t, c, lost, lost, seq - c->next_seq);
        c->next_seq = seq + 1;
    } else {
        KCNT(t, c, dup, reordered, 1);
        return;
    }
    if (!c->have_offset) {
        c->id_offset = id - seq;
        c->have_offset = 1;
    } else if (id - seq != c->id_offset) {
        CNT(t, id_mismatch, 1);
    }
    /* The send time on this process' monotonic clock (clock = realtime: a
     * stamp from a box whose clock is behind can come out in the future;
     * such a delivery is checked but not measured). */
    tns = tns >= t->run->clock_off ? tns - t->run->clock_off : 0;
    if (measure && tns >= t->run->measure_ns && now >= tns) {
        hist_record(t->lat, now - tns);
        hist_record(e->interval, now - tns);
        if (t->sec[0])
            hist_record(t->sec[atomic_load_explicit(&t->sec_done, memory_order_relaxed) & 1],
                        now - tns);
        CNT(t, measured, 1);
    }
}

static void on_event(struct engine_thread *t, struct engine *e, struct lclient *c,
                     const struct sse_event *ev, uint64_t now)
{
    if (span_eq(ev->type, SPAN_LIT("gap"))) {
        CNT(t, server_gaps, 1);
        c->flags |= CF_RESYNC;
        return;
    }
    uint64_t seq, tns, id, lo;
    if (parse_payload(ev->data, &seq, &tns) < 0) {
        CNT(t, protocol_errors, 1);
        return;
    }
    int form = parse_id(ev->id, &id, &lo);
    if (form == 0 || (c->id_form && form != c->id_form)) {
        CNT(t, id_mismatch, 1);  /* no id, not one of the two forms, or the form changed */
        id = seq + c->id_offset; /* nothing to step-check */
    } else if (form == 2) {
        /* "A:B" (nchan: the publish time in seconds and a counter within
         * it): not in step with the sequence, but each id must be above the
         * last one. Packed as A << 24 | B. */
        uint64_t key = id << 24 | lo;
        if (c->id_form && key <= c->last_id)
            CNT(t, id_mismatch, 1);
        c->last_id = key;
        c->flags |= CF_HAVEID;
        id = seq + c->id_offset; /* the step check below does not apply */
    } else {
        c->last_id = id;
        c->flags |= CF_HAVEID;
    }
    c->id_form = (uint8_t)(form ? form : c->id_form);
    check_seq(t, e, c, seq, tns, id, now, 1);
}

/* Subscribed (200 or 101 read): publishers announce a sequence before
 * sending it, so everything after this read reaches the server after the
 * subscription (a subscribe-only process: see eng_announced). */
static void subscribed(struct engine_thread *t, struct lclient *c)
{
    struct engine *e = t->priv;
    uint64_t now = now_ns();
    uint64_t next = eng_announced(t->run, c->chan, now) + 1;
    if (!(c->flags & CF_SUBBED)) {
        c->baseline = c->next_seq = next;
        KCNT(t, c, subscribed, subscribed, 1);
    } else if (!(c->flags & CF_RESUMING)) {
        /* Back without asking for what it missed: that is not loss, and,
         * like a new subscriber, it may still be sent what was announced
         * before its answer came (early, not duplicated). */
        if (next > c->next_seq)
            CNT(t, missed_offline, next - c->next_seq);
        if (next > c->next_seq)
            c->baseline = c->next_seq = next;
    } /* else resumed: the server sends on from the last id, next_seq stays */
    c->attempts = 0;
    c->state = S_STREAM;
    c->flags |= CF_SUBBED;
    eng_ready(t, c, now);
    eng_churn_later(t, e, c, now);
}

/* The status line of a response head: 1 for 200, 0 otherwise. */
static int status_ok(const char *p, size_t n)
{
    return n >= 12 && (memcmp(p, "HTTP/1.1 200", 12) == 0 || memcmp(p, "HTTP/1.0 200", 12) == 0);
}

/* A publish answer: any 2xx accepts the message (ringcast answers 200;
 * nchan 201 when the channel has subscribers, 202 when it has none). */
int proto_status_2xx(const char *p, size_t n)
{
    return n >= 12 && (memcmp(p, "HTTP/1.1 2", 10) == 0 || memcmp(p, "HTTP/1.0 2", 10) == 0) &&
           p[10] >= '0' && p[10] <= '9' && p[11] >= '0' && p[11] <= '9';
}

/* Length of the response head in p[0..n) through its blank line, 0 if the
 * head is not complete yet. */
static size_t head_end(const char *p, size_t n)
{
    const char *e = memmem(p, n, "\r\n\r\n", 4);
    return e ? (size_t)(e - p) + 4 : 0;
}

void proto_sse_bytes(struct engine_thread *t, struct engine *e, struct lclient *c, const char *p,
                     size_t n, uint64_t now)
{
    if (c->state == S_HEAD) {
        size_t old = c->rxlen;
        if (eng_append(&c->rx, &c->rxlen, &c->rxcap, p, n) < 0 || c->rxlen > HEAD_MAX) {
            atomic_fetch_add_explicit(&t->c.protocol_errors, 1, memory_order_relaxed);
            eng_kill_client(t, c, 0);
            return;
        }
        size_t head = head_end(c->rx, c->rxlen);
        if (!head)
            return;
        if (!status_ok(c->rx, c->rxlen)) {
            eng_fail_connect(t, c, &t->c.bad_status);
            return;
        }
        size_t skip = head - old; /* bytes of this chunk that were head */
        p += skip;
        n -= skip;
        free(c->rx);
        c->rx = NULL;
        c->rxlen = c->rxcap = 0;
        size_t cap = t->run->sc.message_size + 16; /* an event's data is one message */
        c->p = malloc(sizeof(*c->p) + cap);
        if (!c->p) {
            eng_kill_client(t, c, 0);
            return;
        }
        sse_parse_init(c->p, (char *)(c->p + 1), cap);
        subscribed(t, c);
    }
    while (n > 0) {
        struct sse_event ev;
        size_t used;
        int r = sse_parse(c->p, p, n, &used, &ev);
        if (r < 0) {
            atomic_fetch_add_explicit(&t->c.protocol_errors, 1, memory_order_relaxed);
            eng_kill_client(t, c, 0);
            return;
        }
        if (r == SSE_PARSE_EVENT)
            on_event(t, e, c, &ev, now);
        p += used;
        n -= used;
    }
}

/* ---- WebSocket subscribers ---- */

static void b64_16(const uint8_t in[16], char out[24])
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < 16)
            v |= (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        out[o++] = i + 1 < 16 ? al[v >> 6 & 63] : '=';
        out[o++] = i + 1 < 16 ? al[v & 63] : '=';
    }
}

/* The value of header name in the response head h[0..n), blanks trimmed;
 * SPAN_NULL if absent. */
static span_t head_value(const char *h, size_t n, span_t name)
{
    const char *end = h + n, *p = memchr(h, '\n', n);
    while (p && p + 1 < end) {
        const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon && span_eq_nocase(span_of(line, (size_t)(colon - line)), name)) {
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            return span_of(v, (size_t)(ve - v));
        }
        p = eol;
    }
    return SPAN_NULL;
}

/* The subprotocol a WebSocket client asks for and requires: ringcast.json,
 * or nchan's ws+meta.nchan for subscribers with ws_protocol = nchan (a
 * WebSocket publisher's echo is read as ringcast.json; scenario_check
 * refuses publish_via = ws with nchan). */
static const char *ws_subprotocol(const struct scenario *sc, const struct lclient *c)
{
    return sc->ws_nchan && c->kind != K_PUB ? "ws+meta.nchan" : "ringcast.json";
}

void proto_start_ws(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i)
{
    const struct scenario *sc = &t->run->sc;
    char name[160], path[1300], req[2100];
    uint64_t k[2] = {eng_rnd(e), eng_rnd(e)};
    b64_16((const uint8_t *)k, c->wskey);
    scenario_channel_name(sc, c->chan, name, sizeof(name));
    scenario_url_path(&sc->sub_url, name, path, sizeof(path));
    if (resuming(sc, c))
        add_since(c, path, sizeof(path));
    /* Asking for server_no_context_takeover makes every message inflate on
     * its own (RFC 7692 7.1.1.1): no window kept per client. */
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %.24s\r\n"
                     "Sec-WebSocket-Protocol: %s\r\n%s\r\n",
                     path, e->host_hdr, c->wskey, ws_subprotocol(sc, c),
                     sc->ws_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                      "server_no_context_takeover; client_no_context_takeover\r\n"
                                    : "");
    eng_tx_append(c, req, (size_t)n);
    c->state = S_HEAD;
    eng_submit_send(e, c, i);
    eng_arm_recv(e, c, i);
}

/* Queues a masked pong (echoing payload) or close 1000, with a fresh key. */
void proto_ws_control(struct engine *e, struct lclient *c, uint32_t i, int op, span_t payload)
{
    uint8_t out[WS_CONTROL_FRAME_MAX], mask[4];
    uint32_t m = (uint32_t)eng_rnd(e);
    memcpy(mask, &m, 4);
    ssize_t n = op == WS_OP_CLOSE ? ws_close_frame(out, WS_CLOSE_NORMAL, SPAN_NULL, mask)
                                  : ws_pong_frame(out, payload, mask);
    if (n > 0 && eng_tx_append(c, (const char *)out, (size_t)n) == 0)
        eng_submit_send(e, c, i);
}

/* One ws+meta.nchan message to subscriber c: its body is ringload's
 * payload, checked as any delivery; its id "TIME:TAG" must only grow, as
 * SSE's "A:B" ids (on_event). 0, or -1 when it is not such a message. */
static int nchan_ws_message(struct engine_thread *t, struct engine *e, struct lclient *c, span_t pl,
                            uint64_t now)
{
    struct nchanmsg_meta m;
    uint64_t seq, tns, key;
    if (nchanmsg_ws_meta(pl, &m) < 0 || parse_payload(m.body, &seq, &tns) < 0)
        return -1;
    if (nchanmsg_id(m.id, &key) < 0 || ((c->flags & CF_HAVEID) && key <= c->last_id)) {
        CNT(t, id_mismatch, 1);
    } else {
        c->last_id = key;
        c->id_form = 2;
        c->flags |= CF_HAVEID;
    }
    check_seq(t, e, c, seq, tns, seq + c->id_offset, now, 1);
    return 0;
}

static void ws_frame_in(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                        const struct ws_frame *f, span_t pl, uint64_t now)
{
    if (c->flags & CF_CLOSE_RX)
        return;
    struct jsonmsg m;
    uint64_t seq, tns;
    switch (f->opcode) {
    case WS_OP_TEXT:
        if (!f->fin) /* ringcast sends each message as one frame */
            break;
        if (f->rsv1) { /* compressed: ws_parse_frame allows it only with CF_DEFLATE */
            uint64_t max = (uint64_t)t->run->sc.message_size * 8 + 4096;
            if (wsdeflate_inflate(&e->z, NULL, pl, max, &pl) != 0)
                break;
            CNT(t, ws_inflated, 1);
        }
        if (c->kind != K_PUB && t->run->sc.ws_nchan) {
            if (nchan_ws_message(t, e, c, pl, now) == 0)
                return;
            break;
        }
        switch (jsonmsg_frame(pl, &m)) {
        case 0:
            CNT(t, server_gaps, 1);
            c->flags |= CF_RESYNC;
            return;
        case 1:
            if (parse_payload(m.data, &seq, &tns) == 0 && c->kind == K_PUB) {
                /* A WebSocket publisher's own message back: the server took
                 * it (gave it an id and handed it out): its acknowledgement. */
                atomic_store_explicit(&t->run->chan_acked[c->chan], seq, memory_order_relaxed);
                CNT(t, acked, 1);
                return;
            }
            if (c->kind != K_PUB && parse_payload(m.data, &seq, &tns) == 0) {
                c->last_id = m.id;
                c->flags |= CF_HAVEID;
                check_seq(t, e, c, seq, tns, m.id, now, 1);
                return;
            }
        }
        break;
    case WS_OP_PING:
        proto_ws_control(e, c, i, WS_OP_PONG, pl);
        CNT(t, pongs, 1);
        return;
    case WS_OP_PONG:
        return;
    case WS_OP_CLOSE:
        c->flags |= CF_CLOSE_RX;
        if (!(c->flags & CF_CLOSE_TX)) {
            c->flags |= CF_CLOSE_TX;
            proto_ws_control(e, c, i, WS_OP_CLOSE, SPAN_NULL);
        }
        return;
    }
    CNT(t, protocol_errors, 1);
    eng_kill_client(t, c, 0);
}

/* Frames from p[0..n), after any partial frame held in c->rx. Whole frames
 * are read where they lie; only a partial one is copied. */
static void ws_frames(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                      const char *p, size_t n, uint64_t now)
{
    if (c->rxlen) {
        if (eng_append(&c->rx, &c->rxlen, &c->rxcap, p, n) < 0) {
            eng_kill_client(t, c, 0);
            return;
        }
        p = c->rx;
        n = c->rxlen;
    }
    uint64_t max = (uint64_t)t->run->sc.message_size * 8 + 4096;
    size_t off = 0;
    while (off < n && c->state == S_STREAM) {
        struct ws_frame f;
        int h = ws_parse_frame(p + off, n - off, (c->flags & CF_DEFLATE) ? WS_DEFLATE : 0, max, &f);
        if (h == WS_INCOMPLETE)
            break;
        if (h < 0) {
            CNT(t, protocol_errors, 1);
            eng_kill_client(t, c, 0);
            return;
        }
        span_t pl = span_of(p + off + h, (size_t)f.payload_len);
        off += (size_t)h + (size_t)f.payload_len;
        ws_frame_in(t, e, c, i, &f, pl, now);
    }
    if (c->state != S_STREAM)
        return;
    if (p == c->rx && off == n) {
        free(c->rx);
        c->rx = NULL;
        c->rxlen = c->rxcap = 0;
    } else if (p == c->rx) {
        memmove(c->rx, c->rx + off, n - off);
        c->rxlen = (uint32_t)(n - off);
    } else if (off < n && eng_append(&c->rx, &c->rxlen, &c->rxcap, p + off, n - off) < 0) {
        eng_kill_client(t, c, 0);
    }
}

void proto_ws_bytes(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                    const char *p, size_t n, uint64_t now)
{
    if (c->state == S_HEAD) {
        size_t old = c->rxlen;
        if (eng_append(&c->rx, &c->rxlen, &c->rxcap, p, n) < 0 || c->rxlen > HEAD_MAX) {
            eng_fail_connect(t, c, &t->c.protocol_errors);
            return;
        }
        size_t head = head_end(c->rx, c->rxlen);
        if (!head)
            return;
        if (c->rxlen < 12 || memcmp(c->rx, "HTTP/1.1 101", 12) != 0) {
            eng_fail_connect(t, c, &t->c.bad_status);
            return;
        }
        char want[WS_ACCEPT_LEN];
        span_t acc = head_value(c->rx, head, SPAN_LIT("Sec-WebSocket-Accept"));
        span_t proto = head_value(c->rx, head, SPAN_LIT("Sec-WebSocket-Protocol"));
        span_t ext = head_value(c->rx, head, SPAN_LIT("Sec-WebSocket-Extensions"));
        /* With ws_deflate the extension is required, with the window reset
         * we asked for; without, a server may not impose one. */
        int deflate = ext.len && memmem(ext.base, ext.len, "permessage-deflate", 18);
        int fresh = ext.len && memmem(ext.base, ext.len, "server_no_context_takeover", 26);
        if (ws_accept_key(span_of(c->wskey, sizeof(c->wskey)), want) < 0 ||
            !span_eq(acc, span_of(want, WS_ACCEPT_LEN)) ||
            !span_eq(proto, span_of(ws_subprotocol(&t->run->sc, c),
                                    strlen(ws_subprotocol(&t->run->sc, c)))) ||
            (t->run->sc.ws_deflate ? !(deflate && fresh) : ext.len != 0)) {
            eng_fail_connect(t, c, &t->c.protocol_errors);
            return;
        }
        if (deflate)
            c->flags |= CF_DEFLATE;
        size_t skip = head - old;
        p += skip;
        n -= skip;
        free(c->rx); /* made again only for a frame split across reads */
        c->rx = NULL;
        c->rxlen = c->rxcap = 0;
        if (c->kind == K_PUB) {
            c->state = S_STREAM; /* a WebSocket publisher: ready to send */
            eng_ready(t, c, now);
        } else
            subscribed(t, c);
    }
    ws_frames(t, e, c, i, p, n, now);
}

/* ---- long and short pollers ---- */

/* The next short poll: poll_interval +- jitter_pct, uniformly. */
static uint64_t poll_next(struct engine *e, const struct scenario *sc, uint64_t from)
{
    double u = (double)(eng_rnd(e) >> 11) * 0x1p-53;
    double f = 1 + sc->jitter_pct / 100 * (2 * u - 1);
    return from + (uint64_t)((double)sc->poll_interval_ns * f);
}

void proto_poll_request(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                        uint64_t now)
{
    const struct scenario *sc = &t->run->sc;
    char name[160], path[1200], since[48] = "", cond[120] = "", req[1800];
    scenario_channel_name(sc, c->chan, name, sizeof(name));
    scenario_url_path(c->kind == K_POLL ? &sc->poll_url : &sc->sub_url, name, path, sizeof(path));
    if ((c->flags & CF_SINCE) && sc->poll_nchan) {
        /* nchan: the message after the one these name (see nchan_answer). */
        char date[30];
        nchanmsg_fmt_http_date(c->last_id >> 24, date);
        snprintf(cond, sizeof(cond), "If-Modified-Since: %s\r\nIf-None-Match: %llu\r\n", date,
                 (unsigned long long)(c->last_id & 0xffffff));
    } else if (c->flags & CF_SINCE) {
        snprintf(since, sizeof(since), "%csince=%llu", strchr(path, '?') ? '&' : '?',
                 (unsigned long long)c->last_id);
    }
    int n = snprintf(req, sizeof(req), "GET %s%s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, since,
                     c->kind == K_POLL ? e->poll_host_hdr : e->host_hdr, cond);
    /* Read before sending: what is acknowledged now is in the server's
     * history when the request arrives, so the answer must hold it. */
    c->acked_req = eng_acked(t->run, c->chan, now);
    if (eng_tx_append(c, req, (size_t)n) < 0) {
        eng_kill_client(t, c, 0);
        return;
    }
    c->flags |= CF_WAITING;
    if (c->kind == K_POLL) {
        CNT(t, polls, 1);
        c->next_poll = poll_next(e, sc, now);
    }
    eng_submit_send(e, c, i);
}

/* One answer's messages. A short poll's first answer (no since) holds what
 * was published before: it only sets the baseline after its last message of
 * this run (a message with a sequence not yet announced is an earlier run's). */
static void poll_answer(struct engine_thread *t, struct engine *e, struct lclient *c, span_t body,
                        uint64_t now)
{
    struct jsonmsg_answer a;
    struct jsonmsg m;
    if (jsonmsg_answer(body, &a) < 0) {
        CNT(t, protocol_errors, 1);
        eng_kill_client(t, c, 0);
        return;
    }
    if (a.gap) {
        CNT(t, server_gaps, 1);
        c->flags |= CF_RESYNC;
    }
    int history = c->kind == K_POLL && !(c->flags & CF_SINCE);
    uint64_t sent = history ? eng_announced(t->run, c->chan, now) : 0;
    int r;
    while ((r = jsonmsg_next(&a, &m)) == 1) {
        uint64_t seq, tns;
        if (parse_payload(m.data, &seq, &tns) < 0) {
            CNT(t, protocol_errors, 1);
            continue;
        }
        if (history) {
            if (seq <= sent) {
                c->baseline = c->next_seq = seq + 1;
                c->id_offset = m.id - seq;
                c->have_offset = 1;
                c->flags |= CF_ANCHORED;
            }
            continue;
        }
        if (!(c->flags & CF_ANCHORED)) {
            c->baseline = c->next_seq = seq;
            c->flags |= CF_ANCHORED;
        }
        check_seq(t, e, c, seq, tns, m.id, now, c->kind == K_LP);
    }
    if (r < 0)
        CNT(t, protocol_errors, 1);
    if ((c->flags & CF_SINCE) && (c->flags & CF_ANCHORED))
        c->acked_checked = c->acked_req;
    if (history) {
        KCNT(t, c, subscribed, subscribed, 1);
        eng_ready(t, c, now);
    }
    c->last_id = a.last_id;
    c->flags |= CF_SINCE;
}

/* One answer of nchan's long or short poll (poll_protocol = nchan), head h
 * (through its blank line) and body: 200 holds one message, its resume
 * point in Last-Modified and Etag, which must only grow; 304 (nothing newer)
 * and 408 (the server's long-poll timeout) hold none.
 *
 * Long poll: the first request, without If-Modified-Since, waits for the
 * next message (nchan.conf: nchan_subscriber_first_message newest), which
 * anchors the poller as a ringcast long poll's first answer does.
 *
 * Short poll: the first request gets the oldest message held (nchan.conf:
 * first_message oldest on /poll), history that only anchors the poller after
 * it when it is this run's, as poll_answer does; or a 304 when none is held,
 * after which the first message that comes is new and anchors it, as a
 * ringcast poller's first message after an empty first answer does. Each
 * later answer is the next message, so a poller behind walks forward one
 * message per poll. Only
 * a 304 says it holds everything, so only a 304 moves acked_checked (what the
 * end-of-run check may require of it). 0, or -1 for another status. */
static int nchan_answer(struct engine_thread *t, struct engine *e, struct lclient *c, span_t h,
                        span_t body, uint64_t now)
{
    int empty = h.len >= 12 && memcmp(h.base, "HTTP/1.", 7) == 0 &&
                (memcmp(h.base + 8, " 304", 4) == 0 || memcmp(h.base + 8, " 408", 4) == 0);
    if (!empty && !status_ok(h.base, h.len))
        return -1;
    int history = c->kind == K_POLL && !(c->flags & CF_HAVEID);
    if (history) { /* its first answer */
        c->flags |= CF_HAVEID;
        KCNT(t, c, subscribed, subscribed, 1);
    }
    if (empty) {
        if (c->kind == K_POLL && (c->flags & CF_ANCHORED))
            c->acked_checked = c->acked_req;
        return 0;
    }
    uint64_t seq, tns, key;
    if (parse_payload(body, &seq, &tns) < 0) {
        CNT(t, protocol_errors, 1);
        return 0;
    }
    if (nchanmsg_poll_key(head_value(h.base, h.len, SPAN_LIT("Last-Modified")),
                          head_value(h.base, h.len, SPAN_LIT("Etag")), &key) < 0 ||
        ((c->flags & CF_SINCE) && key <= c->last_id)) {
        CNT(t, id_mismatch, 1); /* no resume point, or one that went back */
    } else {
        c->last_id = key;
        c->flags |= CF_SINCE;
    }
    if (history) {
        if (seq <= eng_announced(t->run, c->chan, now)) {
            c->baseline = c->next_seq = seq + 1;
            c->flags |= CF_ANCHORED;
        }
        return 0;
    }
    if (!(c->flags & CF_ANCHORED)) {
        c->baseline = c->next_seq = seq;
        c->flags |= CF_ANCHORED;
    }
    check_seq(t, e, c, seq, tns, seq + c->id_offset, now, c->kind == K_LP);
    return 0;
}

/* Frames the next Content-Length response in p[0..n): 1 with its head and
 * body lengths once all of it is in, else 0. */
int proto_next_response(const char *p, size_t n, size_t *head, size_t *body)
{
    *head = head_end(p, n);
    if (!*head)
        return 0;
    *body = 0;
    for (size_t i = 0; i + 15 <= *head; i++)
        if ((i == 0 || p[i - 1] == '\n') && strncasecmp(p + i, "Content-Length:", 15) == 0) {
            *body = strtoul(p + i + 15, NULL, 10);
            break;
        }
    return n - *head >= *body;
}

/* Answers on a poller's keep-alive connection: Content-Length framed. */
void proto_poll_bytes(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                      const char *p, size_t n, uint64_t now)
{
    if (eng_append(&c->rx, &c->rxlen, &c->rxcap, p, n) < 0) {
        eng_kill_client(t, c, 0);
        return;
    }
    size_t off = 0;
    while (c->state == S_STREAM) {
        size_t head, body;
        if (!proto_next_response(c->rx + off, c->rxlen - off, &head, &body))
            break;
        span_t h = span_of(c->rx + off, head), b = span_of(c->rx + off + head, body);
        if (t->run->sc.poll_nchan) {
            if (nchan_answer(t, e, c, h, b, now) < 0) {
                CNT(t, bad_status, 1);
                eng_kill_client(t, c, 0);
                return;
            }
        } else if (!status_ok(c->rx + off, head)) {
            if (c->kind == K_POLL && !(c->flags & CF_SINCE))
                eng_fail_connect(t, c, &t->c.bad_status);
            else
                CNT(t, bad_status, 1);
            eng_kill_client(t, c, 0);
            return;
        } else {
            poll_answer(t, e, c, b, now);
        }
        off += head + body;
        c->flags &= ~CF_WAITING;
        if (c->state != S_STREAM || e->closing)
            break;
        if (c->kind == K_LP)
            proto_poll_request(t, e, c, i, now);
        else if (eng_heap_push(&e->polls, c->next_poll, i) < 0)
            eng_kill_client(t, c, 0);
    }
    memmove(c->rx, c->rx + off, c->rxlen - off);
    c->rxlen -= (uint32_t)off;
}

/* Sends every short poll that is due. A poller is in the heap from its
 * answer to its next request; an entry of one that died, or reconnected and
 * was queued again, is stale and skipped. */
void proto_polls_due(struct engine_thread *t, struct engine *e, uint64_t now)
{
    while (eng_heap_next(&e->polls) <= now) {
        struct due_ent d = eng_heap_pop(&e->polls);
        struct lclient *c = &e->cl[d.i];
        if (c->next_poll == d.due && c->state == S_STREAM && !(c->flags & CF_WAITING))
            proto_poll_request(t, e, c, d.i, now);
    }
}
