/*
 * serve.c: the HTTP side of a worker: reading requests out of a connection's
 * buffer (pipelining, Content-Length and chunked bodies, the limits), routing
 * them, and answering: publish, SSE, long poll, short poll, channel info,
 * stats, metrics, the index page. Runs on the worker that owns the
 * connection; never touches a socket (worker.c does) and never blocks.
 *
 * Messages go out as their shared wire forms (msg.h): an SSE subscriber's
 * queue holds pointers into the message, not copies. Poll answers are built
 * per answer, since their framing (Content-Length, last_id) is per answer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wire.h"
#include "worker.h"

#define MAX_HEAD 8192

static const char index_html[] =
    "<!doctype html><meta charset=utf-8><title>ringcast</title>\n"
    "<style>body{font:15px system-ui;margin:2em}pre{background:#f4f4f4;padding:1em}</style>\n"
    "<h1>ringcast</h1>\n"
    "<p>Channel <input id=ch value=demo> <button id=sub>subscribe (EventSource)</button></p>\n"
    "<form id=pub><input id=msg placeholder=message> <button>publish</button></form>\n"
    "<pre id=log></pre>\n"
    "<script>\n"
    "const log = t => { document.getElementById('log').textContent += t + '\\n'; };\n"
    "let es;\n"
    "document.getElementById('sub').onclick = () => {\n"
    "  if (es) es.close();\n"
    "  const ch = document.getElementById('ch').value;\n"
    "  es = new EventSource('/sub/' + encodeURIComponent(ch));\n"
    "  es.onopen = () => log('subscribed to ' + ch);\n"
    "  es.onmessage = e => log('#' + e.lastEventId + ' ' + e.data);\n"
    "  es.addEventListener('gap', e => log('gap: ' + e.data));\n"
    "};\n"
    "document.getElementById('pub').onsubmit = e => {\n"
    "  e.preventDefault();\n"
    "  const ch = document.getElementById('ch').value;\n"
    "  fetch('/pub/' + encodeURIComponent(ch), {method: 'POST',\n"
    "    body: document.getElementById('msg').value}).then(r => r.json())\n"
    "    .then(j => log('published id ' + j.id + ' to ' + j.subscribers));\n"
    "};\n"
    "</script>\n";

void serve_init(struct server *s)
{
    int n = snprintf(s->sse_head, sizeof(s->sse_head),
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                     "Connection: close\r\n\r\n: ringcast\nretry: %u\n\n",
                     s->cfg.sse_retry_ms);
    s->sse_head_len = (uint32_t)n;
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* Starts an answer: allocates head + body_len bytes in one blob and writes
 * the head; the caller writes body_len bytes at the returned pointer, then
 * calls answer_end(). NULL (and the connection closed) on ENOMEM. */
static char *answer_begin(struct worker *w, struct conn *c, int status, const char *ctype,
                          const char *extra, size_t body_len, struct blob **out)
{
    char head[512];
    int close = (c->flags & CF_CLOSE_AFTER) != 0;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-cache\r\n%s%s\r\n",
                     status, status_text(status), ctype, body_len, extra ? extra : "",
                     close ? "Connection: close\r\n" : "");
    struct blob *b = blob_new((size_t)n + body_len);
    if (!b) {
        STAT_ADD(&w->stats, drops_nomem, 1);
        conn_close(w, c);
        return NULL;
    }
    memcpy(b->data, head, (size_t)n);
    *out = b;
    return b->data + n;
}

static void answer_end(struct worker *w, struct conn *c, struct blob *b)
{
    conn_queue(w, c, &b->rc, b->data, b->len);
}

static void answer(struct worker *w, struct conn *c, int status, const char *ctype,
                   const char *extra, const char *body, size_t len)
{
    struct blob *b;
    char *p = answer_begin(w, c, status, ctype, extra, len, &b);
    if (!p)
        return;
    memcpy(p, body, len);
    answer_end(w, c, b);
}

/* An error answer. 400, 413, 431 and 503 close the connection after it. */
static void answer_error(struct worker *w, struct conn *c, int status, const char *extra,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void answer_error(struct worker *w, struct conn *c, int status, const char *extra,
                         const char *fmt, ...)
{
    char msg[256], body[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *e = wire_json_escape_write(body + 10, span_cstr(msg)); /* fits: 256 * 2 bytes */
    memcpy(body, "{\"error\":\"", 10);
    memcpy(e, "\"}\n", 3);
    if (status == 400 || status == 413 || status == 431 || status == 503 || status == 501)
        c->flags |= CF_CLOSE_AFTER;
    if (status >= 400 && status < 500)
        STAT_ADD(&w->stats, http_4xx, 1);
    answer(w, c, status, "application/json", extra, body, (size_t)(e + 3 - body));
}

void serve_refuse(struct worker *w, struct conn *c)
{
    conn_timer_set(w, c, T_NONE);
    answer_error(w, c, 503, NULL, "too many connections");
}

/* ---- poll answers ---- */

/* Answers a long or short poll with history[r->first .. +count) of ch (or
 * just m when m is set) and the gap, if any. */
static void answer_poll(struct worker *w, struct conn *c, const struct chan *ch, span_t name,
                        const struct chan_range *r, struct msg *m)
{
    uint32_t count = m ? 1 : r->count;
    uint64_t last_id = m ? m->id : ch->last_id;
    /* {"channel":"NAME","messages":[M,M],"last_id":N GAP}\n */
    size_t len = 12 + name.len + 14 + 12 + wire_u64_len(last_id) + 2 + (count ? count - 1 : 0);
    for (uint32_t i = 0; i < count; i++)
        len += (m ? m : chan_hist_at(ch, r->first + i))->json.len;
    char gap[96] = "";
    if (r && r->gap)
        snprintf(gap, sizeof(gap), ",\"gap\":{\"requested\":%llu,\"first\":%llu}",
                 (unsigned long long)r->gap_requested, (unsigned long long)r->gap_first);
    len += strlen(gap);
    struct blob *b;
    char *p = answer_begin(w, c, 200, "application/json", NULL, len, &b), *start = p;
    if (!p)
        return;
    memcpy(p, "{\"channel\":\"", 12);
    p += 12;
    memcpy(p, name.base, name.len); /* names need no escaping: see wire_name_ok */
    p += name.len;
    memcpy(p, "\",\"messages\":[", 14);
    p += 14;
    for (uint32_t i = 0; i < count; i++) {
        struct msg *x = m ? m : chan_hist_at(ch, r->first + i);
        if (i)
            *p++ = ',';
        memcpy(p, x->json.base, x->json.len);
        p += x->json.len;
    }
    memcpy(p, "],\"last_id\":", 12);
    p = wire_u64_write(p + 12, last_id);
    memcpy(p, gap, strlen(gap));
    p += strlen(gap);
    *p++ = '}';
    *p++ = '\n';
    if ((size_t)(p - start) != len)
        FATAL("poll answer of %zu bytes, %zu announced", (size_t)(p - start), len);
    answer_end(w, c, b);
}

/* ---- requests ---- */

static int parse_since(struct worker *w, struct conn *c, const struct http_request *req,
                       int *have, uint64_t *since)
{
    span_t v;
    *have = 0;
    if (http_query_get(req->query, SPAN_LIT("since"), &v)) {
        if (wire_parse_u64(v, since) < 0) {
            answer_error(w, c, 400, NULL, "since=%.*s: expected a message id (a whole number)",
                         (int)(v.len > 40 ? 40 : v.len), v.base);
            return -EINVAL;
        }
        *have = 1;
        return 0;
    }
    const struct http_header *h = http_header_find(req, SPAN_LIT("Last-Event-ID"));
    if (h) {
        if (wire_parse_u64(h->value, since) < 0) {
            answer_error(w, c, 400, NULL,
                         "Last-Event-ID: %.*s: expected a message id (a whole number)",
                         (int)(h->value.len > 40 ? 40 : h->value.len), h->value.base);
            return -EINVAL;
        }
        *have = 1;
    }
    return 0;
}

static struct chan *local_chan(struct worker *w, span_t name, int create)
{
    uint32_t hash = chan_hash(name);
    struct chan *ch = create ? chan_get(&w->chans, name, hash) : chan_find(&w->chans, name, hash);
    if (ch)
        chan_expire(&w->chans, ch, w->start_ms + w->now);
    if (create)
        atomic_store_explicit(&w->stats.channels, w->chans.count, memory_order_relaxed);
    return ch;
}

static const struct chan no_chan; /* a channel nobody published on: last id 0 */

static void do_publish(struct worker *w, struct conn *c, const struct http_request *req,
                       span_t name, span_t body)
{
    span_t event = SPAN_NULL;
    const struct http_header *h = http_header_find(req, SPAN_LIT("X-Event"));
    if (h) {
        if (!wire_name_ok(h->value, WIRE_EVENT_MAX)) {
            answer_error(w, c, 400, NULL,
                         "X-Event: expected 1-64 bytes of A-Z a-z 0-9 _ . : -");
            return;
        }
        event = h->value;
    }
    const struct http_header *ct = http_header_find(req, SPAN_LIT("Content-Type"));
    struct pubreq *r = malloc(sizeof(*r) + name.len + event.len + body.len);
    if (!r) {
        answer_error(w, c, 503, NULL, "out of memory");
        return;
    }
    atomic_init(&r->rc.refs, 1);
    r->rc.type = RC_PUBREQ;
    r->binary = ct && span_eq_nocase(ct->value, SPAN_LIT("application/octet-stream"));
    r->origin = (uint16_t)w->id;
    r->chan_len = (uint16_t)name.len;
    r->event_len = (uint16_t)event.len;
    r->payload_len = (uint32_t)body.len;
    r->slot = conn_slot(w, c);
    r->gen = c->gen;
    r->hash = chan_hash(name);
    span_put(span_put(span_put(r->data, name), event), body);
    c->state = C_WAIT;
    int home = (int)(r->hash % (uint32_t)w->srv->nworkers);
    if (home == w->id) {
        worker_publish_local(w, r);
        rc_put(&r->rc);
    } else {
        mesh_send(w, home, &r->rc);
    }
}

static void do_sse(struct worker *w, struct conn *c, span_t name, int have_since, uint64_t since)
{
    struct chan *ch = local_chan(w, name, 1);
    if (!ch) {
        answer_error(w, c, 503, NULL, "out of memory");
        return;
    }
    conn_queue(w, c, NULL, w->srv->sse_head, w->srv->sse_head_len);
    if (have_since) {
        struct chan_range r;
        chan_since(ch, since, &r);
        if (r.gap) {
            char ev[300];
            int n = snprintf(ev, sizeof(ev),
                             "event: gap\ndata: {\"channel\":\"%.*s\",\"requested\":%llu,"
                             "\"first\":%llu}\n\n",
                             (int)name.len, name.base, (unsigned long long)r.gap_requested,
                             (unsigned long long)r.gap_first);
            conn_queue_copy(w, c, ev, (size_t)n);
            STAT_ADD(&w->stats, gaps, 1);
        }
        for (uint32_t i = 0; i < r.count; i++) {
            struct msg *m = chan_hist_at(ch, r.first + i);
            rc_get(&m->rc);
            conn_queue(w, c, &m->rc, m->sse.base, m->sse.len);
        }
    }
    if (c->flags & CF_CLOSE_SENT)
        return;
    c->state = C_SSE;
    conn_subscribe(w, c, ch);
    conn_timer_set(w, c, T_HEARTBEAT);
    STAT_ADD(&w->stats, sse_subscribers, 1);
}

static void do_longpoll(struct worker *w, struct conn *c, span_t name, int have_since,
                        uint64_t since)
{
    struct chan *ch = local_chan(w, name, 1);
    if (!ch) {
        answer_error(w, c, 503, NULL, "out of memory");
        return;
    }
    if (!have_since)
        since = ch->last_id;
    struct chan_range r;
    chan_since(ch, since, &r);
    if (r.gap)
        STAT_ADD(&w->stats, gaps, 1);
    if (r.count || r.gap) {
        answer_poll(w, c, ch, name, &r, NULL);
        return;
    }
    c->state = C_LP;
    conn_subscribe(w, c, ch);
    conn_timer_set(w, c, T_LONGPOLL);
    STAT_ADD(&w->stats, longpoll_waiting, 1);
}

static void do_poll(struct worker *w, struct conn *c, span_t name, int have_since, uint64_t since)
{
    const struct chan *ch = local_chan(w, name, 0);
    if (!ch)
        ch = &no_chan;
    if (!have_since)
        since = chan_first_id(ch) - 1;
    struct chan_range r;
    chan_since(ch, since, &r);
    if (r.gap)
        STAT_ADD(&w->stats, gaps, 1);
    answer_poll(w, c, ch, name, &r, NULL);
}

static void do_channel_info(struct worker *w, struct conn *c, span_t name)
{
    int nw = w->srv->nworkers;
    struct gather *g = calloc(1, sizeof(*g) + name.len);
    if (!g) {
        answer_error(w, c, 503, NULL, "out of memory");
        return;
    }
    atomic_init(&g->rc.refs, 1);
    g->rc.type = RC_GATHER;
    g->kind = G_CHANNEL;
    g->origin = (uint16_t)w->id;
    g->slot = conn_slot(w, c);
    g->gen = c->gen;
    g->hash = chan_hash(name);
    g->chan_len = (uint16_t)name.len;
    memcpy(g->name, name.base, name.len);
    atomic_init(&g->pending, (uint32_t)nw);
    c->state = C_WAIT;
    worker_gather_answer(w, g); /* our own share first; may finish at once */
    if (nw > 1)
        for (int dst = 0; dst < nw; dst++)
            if (dst != w->id)
                mesh_send(w, dst, &g->rc);
}

static void do_stats(struct worker *w, struct conn *c, int prometheus)
{
    char *body = NULL;
    long n = prometheus ? stats_render_prometheus(w->srv, &body)
                        : stats_render_json(w->srv, &body);
    if (n < 0) {
        answer_error(w, c, 503, NULL, "out of memory");
        return;
    }
    answer(w, c, 200, prometheus ? "text/plain; version=0.0.4" : "application/json", NULL, body,
           (size_t)n);
    free(body);
}

/* Splits "/prefix/NAME" and checks NAME; answers 400 itself when bad. */
static int channel_of(struct worker *w, struct conn *c, span_t path, size_t prefix, span_t *name)
{
    *name = span_of(path.base + prefix, path.len - prefix);
    if (memchr(name->base, ',', name->len)) {
        answer_error(w, c, 400, NULL, "several channels in one request are not supported yet");
        return -EINVAL;
    }
    if (!wire_name_ok(*name, WIRE_CHANNEL_MAX)) {
        answer_error(w, c, 400, NULL,
                     "bad channel name: expected 1-128 bytes of A-Z a-z 0-9 _ . : -");
        return -EINVAL;
    }
    return 0;
}

static int has_prefix(span_t s, const char *p, size_t n)
{
    return s.len >= n && memcmp(s.base, p, n) == 0;
}

static void route(struct worker *w, struct conn *c, const struct http_request *req, span_t body)
{
    span_t path = req->path, name;
    int get = span_eq(req->method, SPAN_LIT("GET"));
    int post = span_eq(req->method, SPAN_LIT("POST"));
    int have_since;
    uint64_t since = 0;
    STAT_ADD(&w->stats, requests, 1);
    if (has_prefix(path, "/pub/", 5)) {
        if (!post)
            answer_error(w, c, 405, "Allow: POST\r\n", "use POST to publish");
        else if (channel_of(w, c, path, 5, &name) == 0)
            do_publish(w, c, req, name, body);
        return;
    }
    int sub = has_prefix(path, "/sub/", 5), poll = has_prefix(path, "/poll/", 6);
    int info = has_prefix(path, "/channels/", 10);
    if (sub || poll || info || span_eq(path, SPAN_LIT("/stats")) ||
        span_eq(path, SPAN_LIT("/metrics")) || span_eq(path, SPAN_LIT("/"))) {
        if (!get) {
            answer_error(w, c, 405, "Allow: GET\r\n", "use GET here");
            return;
        }
    } else {
        answer_error(w, c, 404, NULL, "no such endpoint: see README for /pub, /sub, /poll");
        return;
    }
    if (info) {
        if (channel_of(w, c, path, 10, &name) == 0)
            do_channel_info(w, c, name);
    } else if (sub || poll) {
        if (channel_of(w, c, path, sub ? 5 : 6, &name) < 0 ||
            parse_since(w, c, req, &have_since, &since) < 0)
            return;
        const struct http_header *acc = http_header_find(req, SPAN_LIT("Accept"));
        if (poll)
            do_poll(w, c, name, have_since, since);
        else if (acc && memmem(acc->value.base, acc->value.len, "text/event-stream", 17))
            do_sse(w, c, name, have_since, since);
        else
            do_longpoll(w, c, name, have_since, since);
    } else if (span_eq(path, SPAN_LIT("/stats"))) {
        do_stats(w, c, 0);
    } else if (span_eq(path, SPAN_LIT("/metrics"))) {
        do_stats(w, c, 1);
    } else {
        answer(w, c, 200, "text/html; charset=utf-8", NULL, index_html, sizeof(index_html) - 1);
    }
}

static void rx_reset_request(struct rxbuf *rx, uint32_t consumed)
{
    memmove(rx->data, rx->data + consumed, rx->len - consumed);
    rx->len -= consumed;
    rx->scanned = rx->head_len = rx->body_need = rx->body_have = 0;
    rx->chunked = 0;
}

/* Reads the head; 1 when it is complete and its body framing recorded. */
static int read_head(struct worker *w, struct conn *c, struct rxbuf *rx)
{
    struct http_request req;
    int r = http_parse_request(rx->data, rx->len, rx->scanned, &req);
    if (r == HTTP_INCOMPLETE) {
        if (rx->len > MAX_HEAD) {
            answer_error(w, c, 431, NULL, "request line and headers exceed 8 KiB");
            return 0;
        }
        rx->scanned = rx->len;
        if (c->tlist != T_HEADER)
            conn_timer_set(w, c, T_HEADER);
        return 0;
    }
    if (r == HTTP_ERR_TOO_MANY_HEADERS || r > MAX_HEAD) {
        answer_error(w, c, 431, NULL, "request line and headers exceed 8 KiB or 32 headers");
        return 0;
    }
    if (r < 0) {
        answer_error(w, c, 400, NULL, r == HTTP_ERR_BAD_FRAMING
                                          ? "conflicting or invalid Content-Length or "
                                            "Transfer-Encoding"
                                          : "malformed request");
        return 0;
    }
    if (req.te_other) {
        answer_error(w, c, 501, NULL, "only the chunked transfer coding is supported");
        return 0;
    }
    if (req.content_length > (int64_t)w->cfg->max_message) {
        answer_error(w, c, 413, NULL, "body of %lld bytes exceeds --max-message %u",
                     (long long)req.content_length, w->cfg->max_message);
        return 0;
    }
    if (c->tlist != T_HEADER)
        conn_timer_set(w, c, T_HEADER); /* the body shares the head's deadline */
    rx->head_len = (uint32_t)r;
    rx->chunked = req.chunked;
    rx->body_need = req.content_length > 0 ? (uint32_t)req.content_length : 0;
    memset(&rx->ch, 0, sizeof(rx->ch));
    return 1;
}

/* Length of the whole request once its body is in, else 0. */
static uint32_t read_body(struct worker *w, struct conn *c, struct rxbuf *rx)
{
    if (!rx->chunked)
        return rx->len >= rx->head_len + rx->body_need ? rx->head_len + rx->body_need : 0;
    uint32_t raw = rx->head_len + rx->body_have;
    size_t n = rx->len - raw;
    ssize_t r = http_decode_chunked(&rx->ch, rx->data + raw, &n);
    if (r < 0 && r != HTTP_INCOMPLETE) {
        answer_error(w, c, 400, NULL, "malformed chunked body");
        return 0;
    }
    rx->body_have += (uint32_t)n;
    if (rx->body_have > w->cfg->max_message) {
        answer_error(w, c, 413, NULL, "body exceeds --max-message %u", w->cfg->max_message);
        return 0;
    }
    if (r == HTTP_INCOMPLETE) {
        rx->len = rx->head_len + rx->body_have; /* consumed raw bytes are gone */
        if (rx->len > MAX_HEAD + w->cfg->max_message + 4096) {
            answer_error(w, c, 413, NULL, "chunked framing too large");
            return 0;
        }
        return 0;
    }
    rx->len = rx->head_len + rx->body_have + (uint32_t)r;
    return rx->head_len + rx->body_have;
}

void serve_input(struct worker *w, struct conn *c)
{
    /* Bounded: every round consumes a whole request or returns. */
    for (;;) {
        struct rxbuf *rx = c->rx;
        if (c->state == C_CLOSING || (c->flags & CF_CLOSE_AFTER)) {
            if (rx)
                rx->len = 0; /* nothing after a closing answer is read */
            return;
        }
        if (c->state == C_SSE) {
            if (rx)
                rx->len = 0; /* a stream's client has nothing more to say */
            return;
        }
        if (!rx || rx->len == 0) {
            if (c->state == C_READ && c->tlist != T_KEEPALIVE) {
                if (w->draining && !c->q)
                    conn_close(w, c);
                else
                    conn_timer_set(w, c, T_KEEPALIVE);
            }
            return;
        }
        if (c->state != C_READ) {
            /* Pipelined behind a request still being answered: hold it. */
            if (rx->len > MAX_HEAD + w->cfg->max_message)
                conn_close(w, c);
            return;
        }
        if (!rx->head_len && !read_head(w, c, rx))
            return;
        uint32_t total = read_body(w, c, rx);
        if (!total)
            return;
        struct http_request req;
        if (http_parse_request(rx->data, rx->head_len, 0, &req) != (int)rx->head_len)
            FATAL("a complete head no longer parses");
        conn_timer_set(w, c, T_NONE);
        if (!req.keep_alive)
            c->flags |= CF_CLOSE_AFTER;
        route(w, c, &req, span_of(rx->data + rx->head_len, total - rx->head_len));
        if (c->flags & CF_CLOSE_SENT)
            return;
        rx_reset_request(c->rx, total);
    }
}

void serve_deliver(struct worker *w, struct conn *c, struct msg *m)
{
    if (c->state == C_SSE) {
        rc_get(&m->rc);
        conn_queue(w, c, &m->rc, m->sse.base, m->sse.len);
        return;
    }
    if (c->state != C_LP)
        return;
    struct chan *ch = c->chan;
    conn_unsubscribe(w, c);
    conn_timer_set(w, c, T_NONE);
    c->state = C_READ;
    STAT_SUB(&w->stats, longpoll_waiting, 1);
    answer_poll(w, c, ch, span_of(ch->name, ch->name_len), NULL, m);
    c->flags |= CF_RESUME;
    conn_mark_dirty(w, c);
}

void serve_longpoll_timeout(struct worker *w, struct conn *c)
{
    struct chan *ch = c->chan;
    struct chan_range none = {0};
    conn_unsubscribe(w, c);
    c->state = C_READ;
    STAT_SUB(&w->stats, longpoll_waiting, 1);
    answer_poll(w, c, ch, span_of(ch->name, ch->name_len), &none, NULL);
    c->flags |= CF_RESUME;
    conn_mark_dirty(w, c);
}

void serve_gather_done(struct worker *w, struct gather *g)
{
    struct conn *c = conn_at(w, g->slot);
    if (c->gen == g->gen && c->state == C_WAIT) {
        char body[400];
        int n;
        span_t name = span_of(g->name, g->chan_len);
        c->state = C_READ;
        if (g->kind == G_PUBLISH && g->id == 0) {
            answer_error(w, c, 503, NULL, "out of memory");
        } else if (g->kind == G_PUBLISH) {
            n = snprintf(body, sizeof(body), "{\"channel\":\"%.*s\",\"id\":%llu,\"subscribers\":%llu}\n",
                         (int)name.len, name.base, (unsigned long long)g->id,
                         (unsigned long long)atomic_load(&g->sum));
            answer(w, c, 200, "application/json", NULL, body, (size_t)n);
        } else {
            const struct chan *ch = local_chan(w, name, 0);
            uint64_t subs = atomic_load(&g->sum);
            if (!ch && subs == 0) {
                answer_error(w, c, 404, NULL, "no such channel");
            } else {
                if (!ch)
                    ch = &no_chan;
                n = snprintf(body, sizeof(body),
                             "{\"channel\":\"%.*s\",\"subscribers\":%llu,\"last_id\":%llu,"
                             "\"history\":%u,\"first_id\":%llu}\n",
                             (int)name.len, name.base, (unsigned long long)subs,
                             (unsigned long long)ch->last_id, ch->hcount,
                             (unsigned long long)chan_first_id(ch));
                answer(w, c, 200, "application/json", NULL, body, (size_t)n);
            }
        }
        c->flags |= CF_RESUME;
        conn_mark_dirty(w, c);
    }
    rc_put(&g->rc);
}

void serve_drain(struct worker *w, struct conn *c)
{
    c->flags |= CF_CLOSE_AFTER;
    switch (c->state) {
    case C_SSE:
        conn_unsubscribe(w, c);
        conn_timer_set(w, c, T_NONE);
        c->state = C_READ;
        STAT_SUB(&w->stats, sse_subscribers, 1);
        conn_mark_dirty(w, c);
        break;
    case C_LP:
        conn_timer_set(w, c, T_NONE);
        serve_longpoll_timeout(w, c);
        break;
    case C_READ:
        if (c->rx && c->rx->len)
            conn_close(w, c); /* half a request: nobody will answer it */
        else
            conn_mark_dirty(w, c);
        break;
    default:
        break; /* C_WAIT: closes after its answer */
    }
}
