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

#include "utf8.h"
#include "util.h"
#include "wire.h"
#include "serve.h"

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
    case 417: return "Expectation Failed";
    case 403: return "Forbidden";
    case 426: return "Upgrade Required";
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

void serve_error(struct worker *w, struct conn *c, int status, const char *extra, const char *fmt,
                 ...)
{
    char msg[256], body[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *e = wire_json_escape_write(body + 10, span_cstr(msg)); /* fits: 256 * 2 bytes */
    memcpy(body, "{\"error\":\"", 10);
    memcpy(e, "\"}\n", 3);
    if (status == 400 || status == 413 || status == 417 || status == 431 || status == 503 ||
        status == 501)
        c->flags |= CF_CLOSE_AFTER;
    if (status >= 400 && status < 500)
        STAT_ADD(&w->stats, http_4xx, 1);
    answer(w, c, status, "application/json", extra, body, (size_t)(e + 3 - body));
}

void serve_refuse(struct worker *w, struct conn *c)
{
    conn_timer_set(w, c, T_NONE);
    serve_error(w, c, 503, NULL, "too many connections");
}

/* ---- poll answers ---- */

/* One channel's part of a poll answer:
 * {"channel":"NAME","messages":[...],"last_id":N[,"gap":{...}]} */
struct poll_part {
    span_t name;
    const struct chan *ch;
    struct chan_range r; /* history range to send, when m is NULL */
    struct msg *m;       /* the one message to send (a woken long poll) */
    uint64_t last_id;
};

static struct msg *part_msg(const struct poll_part *p, uint32_t i)
{
    return p->m ? p->m : chan_hist_at(p->ch, p->r.first + i);
}

static uint32_t part_count(const struct poll_part *p)
{
    return p->m ? 1 : p->r.count;
}

static size_t part_gap(const struct poll_part *p, char gap[96])
{
    gap[0] = 0;
    if (!p->m && p->r.gap)
        return (size_t)snprintf(gap, 96, ",\"gap\":{\"requested\":%llu,\"first\":%llu}",
                                (unsigned long long)p->r.gap_requested,
                                (unsigned long long)p->r.gap_first);
    return 0;
}

static size_t part_size(const struct poll_part *p)
{
    char gap[96];
    uint32_t n = part_count(p);
    size_t len = 12 + p->name.len + 14 + 12 + wire_u64_len(p->last_id) + 1 + (n ? n - 1 : 0);
    for (uint32_t i = 0; i < n; i++)
        len += part_msg(p, i)->json.len;
    return len + part_gap(p, gap);
}

static char *part_write(char *out, const struct poll_part *p)
{
    char gap[96];
    size_t gl = part_gap(p, gap);
    out = span_put(out, SPAN_LIT("{\"channel\":\""));
    out = span_put(out, p->name); /* names need no escaping: see wire_name_ok */
    out = span_put(out, SPAN_LIT("\",\"messages\":["));
    for (uint32_t i = 0; i < part_count(p); i++) {
        if (i)
            *out++ = ',';
        out = span_put(out, part_msg(p, i)->json);
    }
    out = span_put(out, SPAN_LIT("],\"last_id\":"));
    out = wire_u64_write(out, p->last_id);
    out = span_put(out, span_of(gap, gl));
    *out++ = '}';
    return out;
}

/* Answers a poll: one channel's object as is, several wrapped as
 * {"channels":[...]}. Messages are shared bytes copied once into the answer,
 * since its framing (Content-Length, last ids) is this answer's own. */
static void answer_parts(struct worker *w, struct conn *c, const struct poll_part *parts, int n)
{
    size_t len = n == 1 ? 1 : 13 + 3 + (size_t)(n - 1); /* {"channels":[ ]}\n */
    for (int i = 0; i < n; i++)
        len += part_size(&parts[i]);
    struct blob *b;
    char *p = answer_begin(w, c, 200, "application/json", NULL, len, &b), *start = p;
    if (!p)
        return;
    if (n > 1)
        p = span_put(p, SPAN_LIT("{\"channels\":["));
    for (int i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        p = part_write(p, &parts[i]);
    }
    if (n > 1)
        p = span_put(p, SPAN_LIT("]}"));
    *p++ = '\n';
    if ((size_t)(p - start) != len)
        FATAL("poll answer of %zu bytes, %zu announced", (size_t)(p - start), len);
    answer_end(w, c, b);
}

/* ---- requests ---- */

/* Splits "/prefix/a,b,c" into checked, distinct names; answers 400 itself. */
static int parse_channels(struct worker *w, struct conn *c, span_t path, size_t prefix,
                          struct target *t)
{
    const char *p = path.base + prefix, *end = path.base + path.len;
    t->n = 0;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        span_t name = span_of(p, (size_t)((comma ? comma : end) - p));
        if (!wire_name_ok(name, WIRE_CHANNEL_MAX)) {
            serve_error(w, c, 400, NULL,
                        "bad channel name: expected 1-128 bytes of A-Z a-z 0-9 _ . : -, "
                        "several separated by commas");
            return -EINVAL;
        }
        int dup = 0;
        for (int i = 0; i < t->n; i++)
            dup |= span_eq(t->names[i], name);
        if (!dup && t->n == SERVE_MAX_CHANNELS) {
            serve_error(w, c, 400, NULL, "more than %d channels in one request",
                        SERVE_MAX_CHANNELS);
            return -EINVAL;
        }
        if (!dup) {
            t->names[t->n] = name;
            t->hash[t->n] = chan_hash(name);
            t->have[t->n] = 0;
            t->n++;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* "N" (every channel) or "a:N,b:M" (the named ones). 0, or -EINVAL. */
/* Ids stay below 2^63, so since + 1 never wraps. */
static int parse_id(span_t s, uint64_t *x)
{
    return wire_parse_u64(s, x) == 0 && *x < (UINT64_C(1) << 63) ? 0 : -EINVAL;
}

static int since_list(struct target *t, span_t v)
{
    uint64_t x;
    if (parse_id(v, &x) == 0) {
        for (int i = 0; i < t->n; i++) {
            t->have[i] = 1;
            t->since[i] = x;
        }
        return 0;
    }
    const char *p = v.base, *end = v.base + v.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        span_t item = span_of(p, (size_t)((comma ? comma : end) - p));
        const char *colon = item.len ? memrchr(item.base, ':', item.len) : NULL;
        if (!colon)
            return -EINVAL;
        span_t name = span_of(item.base, (size_t)(colon - item.base));
        span_t num = span_of(colon + 1, (size_t)(item.base + item.len - colon - 1));
        int i;
        for (i = 0; i < t->n && !span_eq(t->names[i], name); i++)
            ;
        if (i == t->n || parse_id(num, &x) < 0)
            return -EINVAL;
        t->have[i] = 1;
        t->since[i] = x;
        p = comma ? comma + 1 : end;
    }
    return 0;
}

static int parse_since(struct worker *w, struct conn *c, const struct http_request *req,
                       struct target *t)
{
    span_t v;
    const char *what = "since";
    if (!http_query_get(req->query, SPAN_LIT("since"), &v)) {
        const struct http_header *h = http_header_find(req, SPAN_LIT("Last-Event-ID"));
        if (!h)
            return 0;
        v = h->value;
        what = "Last-Event-ID";
    }
    if (since_list(t, v) < 0) {
        serve_error(w, c, 400, NULL,
                    "%s %.*s: expected a message id, or CHANNEL:ID pairs separated by commas "
                    "naming the requested channels",
                    what, (int)(v.len > 60 ? 60 : v.len), v.base);
        return -EINVAL;
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

/* A publish of body on channel name, for the channel's home worker. */
struct pubreq *serve_pubreq_new(struct worker *w, span_t name, span_t event, span_t body,
                                int binary)
{
    struct pubreq *r = malloc(sizeof(*r) + name.len + event.len + body.len);
    if (!r)
        return NULL;
    atomic_init(&r->rc.refs, 1);
    r->rc.type = RC_PUBREQ;
    r->binary = binary ? 1 : 0;
    r->origin = (uint16_t)w->id;
    r->chan_len = (uint16_t)name.len;
    r->event_len = (uint16_t)event.len;
    r->payload_len = (uint32_t)body.len;
    r->slot = SLOT_NONE;
    r->gen = 0;
    r->hash = chan_hash(name);
    span_put(span_put(span_put(r->data, name), event), body);
    return r;
}

void serve_pubreq_send(struct worker *w, struct pubreq *r)
{
    int home = (int)(r->hash % (uint32_t)w->srv->nworkers);
    if (home == w->id) {
        worker_publish_local(w, r);
        rc_put(&r->rc);
    } else {
        mesh_send(w, home, &r->rc);
    }
}

static void do_publish(struct worker *w, struct conn *c, const struct http_request *req,
                       span_t name, span_t body)
{
    span_t event = SPAN_NULL;
    const struct http_header *h = http_header_find(req, SPAN_LIT("X-Event"));
    if (h) {
        if (!wire_name_ok(h->value, WIRE_EVENT_MAX)) {
            serve_error(w, c, 400, NULL, "X-Event: expected 1-64 bytes of A-Z a-z 0-9 _ . : -");
            return;
        }
        event = h->value;
    }
    const struct http_header *ct = http_header_find(req, SPAN_LIT("Content-Type"));
    int binary = ct && span_eq_nocase(ct->value, SPAN_LIT("application/octet-stream"));
    struct pubreq *r = serve_pubreq_new(w, name, event, body, binary);
    if (!r) {
        serve_error(w, c, 503, NULL, "out of memory");
        return;
    }
    r->slot = conn_slot(w, c);
    r->gen = c->gen;
    c->state = C_WAIT;
    serve_pubreq_send(w, r);
}

/* A gap event: no id line, so the client's Last-Event-ID stays put. */
static void queue_gap_event(struct worker *w, struct conn *c, span_t name,
                            const struct chan_range *r)
{
    char ev[300];
    int n = snprintf(ev, sizeof(ev),
                     "event: gap\ndata: {\"channel\":\"%.*s\",\"requested\":%llu,"
                     "\"first\":%llu}\n\n",
                     (int)name.len, name.base, (unsigned long long)r->gap_requested,
                     (unsigned long long)r->gap_first);
    conn_queue_copy(w, c, ev, (size_t)n);
    STAT_ADD(&w->stats, gaps, 1);
}

/* A several-channel subscriber's event: its own id line, listing every
 * channel's last id with this event's channel first, then the message's
 * shared bytes after its id line. */
static void queue_multi_event(struct worker *w, struct conn *c, struct subnode *node,
                              struct msg *m)
{
    char line[SERVE_MAX_CHANNELS * (WIRE_CHANNEL_MAX + 22) + 8], *p = line;
    node->last_id = m->id;
    p = span_put(p, SPAN_LIT("id: "));
    p = span_put(span_put(p, span_of(node->ch->name, node->ch->name_len)), SPAN_LIT(":"));
    p = wire_u64_write(p, m->id);
    for (uint32_t k = c->snext; k != SLOT_NONE; k = w->subs[k].cnext) {
        struct subnode *o = &w->subs[k];
        if (o == node)
            continue;
        p = span_put(span_put(p, SPAN_LIT(",")), span_of(o->ch->name, o->ch->name_len));
        *p++ = ':';
        p = wire_u64_write(p, o->last_id);
    }
    *p++ = '\n';
    conn_queue_copy(w, c, line, (size_t)(p - line));
    rc_get(&m->rc);
    conn_queue(w, c, &m->rc, m->sse_body.base, m->sse_body.len);
}

int serve_local_chans(struct worker *w, struct conn *c, const struct target *t, struct chan **chans)
{
    for (int i = 0; i < t->n; i++)
        if (!(chans[i] = local_chan(w, t->names[i], 1))) {
            serve_error(w, c, 503, NULL, "out of memory");
            return -ENOMEM;
        }
    return 0;
}

int serve_subscribe_backlog(struct worker *w, struct conn *c, const struct target *t,
                            struct chan **chans, const struct stream_ops *ops)
{
    uint64_t last[SERVE_MAX_CHANNELS];
    if (t->n > 1) {
        for (int i = 0; i < t->n; i++)
            last[i] = t->have[i] ? t->since[i] : chans[i]->last_id;
        if (conn_subscribe_multi(w, c, chans, last, t->n) < 0) {
            conn_close(w, c);
            return -ENOMEM;
        }
    } else {
        conn_subscribe(w, c, chans[0]);
    }
    struct subnode *node = NULL;
    for (int i = 0; i < t->n; i++) {
        if (t->n > 1)
            node = &w->subs[i == 0 ? c->snext : node->cnext];
        if (!t->have[i])
            continue;
        struct chan_range r;
        chan_since(chans[i], t->since[i], &r);
        if (r.gap)
            ops->gap(w, c, t->names[i], &r);
        for (uint32_t k = 0; k < r.count; k++)
            ops->msg(w, c, node, chan_hist_at(chans[i], r.first + k));
    }
    return 0;
}

static void sse_queue_msg(struct worker *w, struct conn *c, struct subnode *node, struct msg *m)
{
    if (node) {
        queue_multi_event(w, c, node, m);
        return;
    }
    rc_get(&m->rc);
    conn_queue(w, c, &m->rc, m->sse.base, m->sse.len);
}

static const struct stream_ops sse_ops = {queue_gap_event, sse_queue_msg};

static void do_sse(struct worker *w, struct conn *c, const struct target *t)
{
    struct chan *chans[SERVE_MAX_CHANNELS];
    if (serve_local_chans(w, c, t, chans) < 0)
        return;
    conn_queue(w, c, NULL, w->srv->sse_head, w->srv->sse_head_len);
    if (serve_subscribe_backlog(w, c, t, chans, &sse_ops) < 0 || (c->flags & CF_CLOSE_SENT))
        return;
    c->state = C_SSE;
    conn_timer_set(w, c, T_HEARTBEAT);
    STAT_ADD(&w->stats, sse_subscribers, 1);
}

/* Long poll: answers at once when any channel has something after its
 * since (or a gap), else waits on all of them. */
static void do_longpoll(struct worker *w, struct conn *c, const struct target *t)
{
    struct chan *chans[SERVE_MAX_CHANNELS];
    struct poll_part parts[SERVE_MAX_CHANNELS];
    uint64_t last[SERVE_MAX_CHANNELS];
    int ready = 0;
    if (serve_local_chans(w, c, t, chans) < 0)
        return;
    for (int i = 0; i < t->n; i++) {
        last[i] = t->have[i] ? t->since[i] : chans[i]->last_id;
        parts[i] = (struct poll_part){.name = t->names[i], .ch = chans[i],
                                      .last_id = chans[i]->last_id};
        chan_since(chans[i], last[i], &parts[i].r);
        if (parts[i].r.gap)
            STAT_ADD(&w->stats, gaps, 1);
        ready |= parts[i].r.count || parts[i].r.gap;
    }
    if (ready) {
        answer_parts(w, c, parts, t->n);
        return;
    }
    if (t->n == 1)
        conn_subscribe(w, c, chans[0]);
    else if (conn_subscribe_multi(w, c, chans, last, t->n) < 0) {
        serve_error(w, c, 503, NULL, "out of memory");
        return;
    }
    c->state = C_LP;
    conn_timer_set(w, c, T_LONGPOLL);
    STAT_ADD(&w->stats, longpoll_waiting, 1);
}

static void do_poll(struct worker *w, struct conn *c, const struct target *t)
{
    struct poll_part parts[SERVE_MAX_CHANNELS];
    for (int i = 0; i < t->n; i++) {
        const struct chan *ch = local_chan(w, t->names[i], 0);
        if (!ch)
            ch = &no_chan;
        uint64_t since = t->have[i] ? t->since[i] : chan_first_id(ch) - 1;
        parts[i] = (struct poll_part){.name = t->names[i], .ch = ch, .last_id = ch->last_id};
        chan_since(ch, since, &parts[i].r);
        if (parts[i].r.gap)
            STAT_ADD(&w->stats, gaps, 1);
    }
    answer_parts(w, c, parts, t->n);
}

static void do_channel_info(struct worker *w, struct conn *c, span_t name)
{
    int nw = w->srv->nworkers;
    struct gather *g = calloc(1, sizeof(*g) + name.len);
    if (!g) {
        serve_error(w, c, 503, NULL, "out of memory");
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
        serve_error(w, c, 503, NULL, "out of memory");
        return;
    }
    answer(w, c, 200, prometheus ? "text/plain; version=0.0.4" : "application/json", NULL, body,
           (size_t)n);
    free(body);
}

/* The one channel of a publish or channel-info request; answers 400 itself. */
static int one_channel(struct worker *w, struct conn *c, span_t path, size_t prefix, span_t *name)
{
    struct target t;
    if (parse_channels(w, c, path, prefix, &t) < 0)
        return -EINVAL;
    if (t.n > 1) {
        serve_error(w, c, 400, NULL, "name one channel here; several are for subscribers");
        return -EINVAL;
    }
    *name = t.names[0];
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
    STAT_ADD(&w->stats, requests, 1);
    if (has_prefix(path, "/pub/", 5)) {
        if (!post)
            serve_error(w, c, 405, "Allow: POST\r\n", "use POST to publish");
        else if (one_channel(w, c, path, 5, &name) == 0)
            do_publish(w, c, req, name, body);
        return;
    }
    int sub = has_prefix(path, "/sub/", 5), poll = has_prefix(path, "/poll/", 6);
    int info = has_prefix(path, "/channels/", 10);
    if (sub || poll || info || span_eq(path, SPAN_LIT("/stats")) ||
        span_eq(path, SPAN_LIT("/metrics")) || span_eq(path, SPAN_LIT("/"))) {
        if (!get) {
            serve_error(w, c, 405, "Allow: GET\r\n", "use GET here");
            return;
        }
    } else {
        serve_error(w, c, 404, NULL, "no such endpoint: see README for /pub, /sub, /poll");
        return;
    }
    if (info) {
        if (one_channel(w, c, path, 10, &name) == 0)
            do_channel_info(w, c, name);
    } else if (sub || poll) {
        struct target t;
        if (parse_channels(w, c, path, sub ? 5 : 6, &t) < 0 || parse_since(w, c, req, &t) < 0)
            return;
        const struct http_header *acc = http_header_find(req, SPAN_LIT("Accept"));
        if (sub && req->upgrade)
            serve_ws_open(w, c, req, &t);
        else if (poll)
            do_poll(w, c, &t);
        else if (acc && memmem(acc->value.base, acc->value.len, "text/event-stream", 17))
            do_sse(w, c, &t);
        else
            do_longpoll(w, c, &t);
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
    rx->http.scanned = rx->http.head_len = rx->http.body_need = rx->http.body_have = 0;
    rx->http.chunked = 0;
}

/* Reads the head; 1 when it is complete and its body framing recorded. */
static int read_head(struct worker *w, struct conn *c, struct rxbuf *rx)
{
    struct http_request req;
    int r = http_parse_request(rx->data, rx->len, rx->http.scanned, &req);
    if (r == HTTP_INCOMPLETE) {
        if (rx->len > MAX_HEAD) {
            serve_error(w, c, 431, NULL, "request line and headers exceed 8 KiB");
            return 0;
        }
        rx->http.scanned = rx->len;
        if (c->tlist != T_HEADER)
            conn_timer_set(w, c, T_HEADER);
        return 0;
    }
    if (r == HTTP_ERR_TOO_MANY_HEADERS || r > MAX_HEAD) {
        serve_error(w, c, 431, NULL, "request line and headers exceed 8 KiB or 32 headers");
        return 0;
    }
    if (r < 0) {
        serve_error(w, c, 400, NULL,
                    r == HTTP_ERR_BAD_FRAMING ? "conflicting or invalid Content-Length or "
                                                "Transfer-Encoding"
                                              : "malformed request");
        return 0;
    }
    if (req.te_other) {
        serve_error(w, c, 501, NULL, "only the chunked transfer coding is supported");
        return 0;
    }
    if (req.content_length > (int64_t)w->cfg->max_message) {
        serve_error(w, c, 413, NULL, "body of %lld bytes exceeds --max-message %u",
                    (long long)req.content_length, w->cfg->max_message);
        return 0;
    }
    const struct http_header *expect = http_header_find(&req, SPAN_LIT("Expect"));
    if (expect && !span_eq_nocase(expect->value, SPAN_LIT("100-continue"))) {
        serve_error(w, c, 417, NULL, "only Expect: 100-continue is understood");
        return 0;
    }
    int has_body = req.chunked || req.content_length > 0;
    if (expect && has_body && rx->len == (uint32_t)r) {
        /* curl waits a second for this before sending a body over 1 KiB. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_queue(w, c, NULL, cont, sizeof(cont) - 1);
    }
    if (c->tlist != T_HEADER)
        conn_timer_set(w, c, T_HEADER); /* the body shares the head's deadline */
    rx->http.head_len = (uint32_t)r;
    rx->http.chunked = req.chunked;
    rx->http.body_need = req.content_length > 0 ? (uint32_t)req.content_length : 0;
    memset(&rx->http.ch, 0, sizeof(rx->http.ch));
    return 1;
}

/* Length of the whole request once its body is in, else 0. */
static uint32_t read_body(struct worker *w, struct conn *c, struct rxbuf *rx)
{
    if (!rx->http.chunked)
        return rx->len >= rx->http.head_len + rx->http.body_need ? rx->http.head_len + rx->http.body_need : 0;
    uint32_t raw = rx->http.head_len + rx->http.body_have;
    size_t n = rx->len - raw;
    ssize_t r = http_decode_chunked(&rx->http.ch, rx->data + raw, &n);
    if (r < 0 && r != HTTP_INCOMPLETE) {
        serve_error(w, c, 400, NULL, "malformed chunked body");
        return 0;
    }
    rx->http.body_have += (uint32_t)n;
    if (rx->http.body_have > w->cfg->max_message) {
        serve_error(w, c, 413, NULL, "body exceeds --max-message %u", w->cfg->max_message);
        return 0;
    }
    if (r == HTTP_INCOMPLETE) {
        rx->len = rx->http.head_len + rx->http.body_have; /* consumed raw bytes are gone */
        if (rx->len > MAX_HEAD + w->cfg->max_message + 4096) {
            serve_error(w, c, 413, NULL, "chunked framing too large");
            return 0;
        }
        return 0;
    }
    rx->len = rx->http.head_len + rx->http.body_have + (uint32_t)r;
    return rx->http.head_len + rx->http.body_have;
}

void serve_input(struct worker *w, struct conn *c)
{
    /* Poll mode: the kernel is writing after rx->len; consuming now would
     * move bytes under it. The recv ends promptly and calls us again. */
    if (c->flags & CF_RECV_BUSY)
        return;
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
        if (c->state == C_WS) {
            if (rx && rx->len)
                serve_ws_input(w, c);
            return;
        }
        if ((c->flags & CF_PAUSED) && c->state == C_READ &&
            (!rx || rx->len <= MAX_HEAD + w->cfg->max_message))
            conn_resume(w, c); /* the answer it waited behind is out */
        if (!rx || rx->len == 0) {
            /* Idle between requests: the keep-alive timeout (not while a
             * TLS handshake is still due). */
            if (c->state == C_READ && c->tlist != T_KEEPALIVE && c->tlist != T_TLS) {
                if (w->draining && !c->q)
                    conn_close(w, c);
                else
                    conn_timer_set(w, c, T_KEEPALIVE);
            }
            return;
        }
        if (c->state != C_READ) {
            /* Pipelined behind a request still being answered: hold it, and
             * past a full request's worth stop reading until the answer is
             * out (an open-loop publisher is slowed, not dropped). */
            if (rx->len > MAX_HEAD + w->cfg->max_message)
                conn_pause(w, c);
            return;
        }
        if (!rx->http.head_len && !read_head(w, c, rx))
            return;
        uint32_t total = read_body(w, c, rx);
        if (!total)
            return;
        struct http_request req;
        if (http_parse_request(rx->data, rx->http.head_len, 0, &req) != (int)rx->http.head_len)
            FATAL("a complete head no longer parses");
        conn_timer_set(w, c, T_NONE);
        if (!req.keep_alive)
            c->flags |= CF_CLOSE_AFTER;
        route(w, c, &req, span_of(rx->data + rx->http.head_len, total - rx->http.head_len));
        if (c->flags & CF_CLOSE_SENT)
            return;
        rx_reset_request(c->rx, total);
    }
}

/* The parts of a several-channel long poll's answer: m on its node's
 * channel, nothing on the others. */
static int multi_parts(struct worker *w, struct conn *c, struct subnode *node, struct msg *m,
                       struct poll_part *parts)
{
    int n = 0;
    for (uint32_t k = c->snext; k != SLOT_NONE; k = w->subs[k].cnext) {
        struct subnode *o = &w->subs[k];
        parts[n] = (struct poll_part){.name = span_of(o->ch->name, o->ch->name_len), .ch = o->ch,
                                      .last_id = o->last_id};
        if (o == node) {
            parts[n].m = m;
            parts[n].last_id = m->id;
        }
        n++;
    }
    return n;
}

/* Ends a long poll with an answer: woken by m on node's channel, or empty
 * (m NULL) when its time is up or the server stops. */
static void finish_longpoll(struct worker *w, struct conn *c, struct subnode *node, struct msg *m)
{
    struct poll_part parts[SERVE_MAX_CHANNELS];
    int n = 1;
    if (c->flags & CF_MULTI) {
        n = multi_parts(w, c, node, m, parts);
    } else {
        struct chan *ch = c->chan;
        parts[0] = (struct poll_part){.name = span_of(ch->name, ch->name_len), .ch = ch,
                                      .m = m, .last_id = m ? m->id : ch->last_id};
    }
    conn_unsubscribe(w, c);
    conn_timer_set(w, c, T_NONE);
    c->state = C_READ;
    STAT_SUB(&w->stats, longpoll_waiting, 1);
    answer_parts(w, c, parts, n);
    c->flags |= CF_RESUME;
    conn_mark_dirty(w, c);
}

void serve_deliver(struct worker *w, struct conn *c, struct subnode *node, struct msg *m)
{
    if (c->state == C_WS) {
        serve_ws_deliver(w, c, node, m);
        return;
    }
    if (c->state == C_SSE) {
        sse_queue_msg(w, c, node, m);
        return;
    }
    if (c->state == C_LP)
        finish_longpoll(w, c, node, m);
}

void serve_longpoll_timeout(struct worker *w, struct conn *c)
{
    finish_longpoll(w, c, NULL, NULL);
}

void serve_gather_done(struct worker *w, struct gather *g)
{
    /* SLOT_NONE: a WebSocket client's publish, which nobody answers. */
    struct conn *c = g->slot == SLOT_NONE ? NULL : conn_at(w, g->slot);
    if (c && c->gen == g->gen && c->state == C_WAIT) {
        char body[400];
        int n;
        span_t name = span_of(g->name, g->chan_len);
        c->state = C_READ;
        if (g->kind == G_PUBLISH && g->id == 0) {
            serve_error(w, c, 503, NULL, "out of memory");
        } else if (g->kind == G_PUBLISH) {
            n = snprintf(body, sizeof(body),
                         "{\"channel\":\"%.*s\",\"id\":%llu,\"subscribers\":%llu}\n", (int)name.len,
                         name.base, (unsigned long long)g->id,
                         (unsigned long long)atomic_load(&g->sum));
            answer(w, c, 200, "application/json", NULL, body, (size_t)n);
        } else {
            const struct chan *ch = local_chan(w, name, 0);
            uint64_t subs = atomic_load(&g->sum);
            if (!ch && subs == 0) {
                serve_error(w, c, 404, NULL, "no such channel");
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
        finish_longpoll(w, c, NULL, NULL);
        break;
    case C_WS:
        serve_ws_drain(w, c);
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
