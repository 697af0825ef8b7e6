/*
 * worker.c: one thread per core, each running its own io_uring loop over its
 * own connections, channel replicas and timers; and the W x W SPSC mesh that
 * carries publishes to a channel's home worker and messages back to all.
 *
 * io_uring practices here and the kernel each needs (fallbacks in brackets):
 *   multishot accept, into direct descriptors      5.19  [accept re-armed; regular fds]
 *   multishot recv on a ring-mapped buffer ring    6.0   [poll, then recv into the
 *                                                         connection's own buffer]
 *   multishot poll                                 5.13  [poll re-armed]
 *   MSG_RING doorbell between workers              5.18  [eventfd]
 * user_data encodes (operation, generation, slot). A connection record is
 * freed only when its last in-flight operation has completed; at most one
 * send is in flight per connection, and every send a loop iteration makes
 * leaves in one io_uring_enter. This file knows nothing of HTTP: serve.c does;
 * subscriptions and the mesh between workers are in mesh.c.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"
#include "worker_int.h"

#define SQ_ENTRIES 4096
#define TICK_MS    100
#define RX_MIN     4096

/* Points sqe at the connection's socket, direct or regular, and tags it. */
static void sqe_conn(struct worker *w, struct io_uring_sqe *sqe, struct conn *c, int op)
{
    if (has(w, FEAT_DIRECT))
        sqe->flags |= IOSQE_FIXED_FILE;
    sqe->user_data = ud(op, conn_slot(w, c), c->gen);
}

/* ---- timers: one FIFO per constant timeout ---- */

static void timer_unlink(struct worker *w, struct conn *c)
{
    struct tlist *l = &w->tl[c->tlist];
    uint32_t slot = conn_slot(w, c);
    if (c->tlist == T_NONE)
        return;
    if (c->tprev != SLOT_NONE)
        w->conns[c->tprev].tnext = c->tnext;
    else
        l->head = c->tnext;
    if (c->tnext != SLOT_NONE)
        w->conns[c->tnext].tprev = c->tprev;
    else
        l->tail = c->tprev;
    c->tprev = c->tnext = SLOT_NONE;
    c->tlist = T_NONE;
    (void)slot;
}

void conn_timer_set(struct worker *w, struct conn *c, int list)
{
    timer_unlink(w, c);
    if (list == T_NONE)
        return;
    struct tlist *l = &w->tl[list];
    uint32_t slot = conn_slot(w, c);
    c->tlist = (uint8_t)list;
    c->deadline = w->now + l->timeout_ms;
    c->tprev = l->tail;
    c->tnext = SLOT_NONE;
    if (l->tail != SLOT_NONE)
        w->conns[l->tail].tnext = slot;
    else
        l->head = slot;
    l->tail = slot;
}

static const char heartbeat_bytes[] = ": hb\n";

static void timers_run(struct worker *w)
{
    for (int list = T_HEADER; list < T_COUNT; list++) {
        struct tlist *l = &w->tl[list];
        /* Bounded: every entry handled is removed or re-queued behind now. */
        while (l->head != SLOT_NONE) {
            struct conn *c = &w->conns[l->head];
            if ((int32_t)(c->deadline - w->now) > 0)
                break;
            switch (list) {
            case T_HEADER:
                STAT_ADD(&w->stats, header_timeouts, 1);
                conn_close(w, c);
                break;
            case T_KEEPALIVE:
                STAT_ADD(&w->stats, keepalive_timeouts, 1);
                conn_close(w, c);
                break;
            case T_LONGPOLL:
                timer_unlink(w, c);
                serve_longpoll_timeout(w, c);
                break;
            case T_HEARTBEAT:
                conn_timer_set(w, c, T_HEARTBEAT);
                conn_queue(w, c, NULL, heartbeat_bytes, sizeof(heartbeat_bytes) - 1);
                break;
            case T_TLS:
                STAT_ADD(&w->stats, tls_fail_timeout, 1);
                conn_close(w, c);
                break;
            default:
                timer_unlink(w, c);
                serve_ws_timer(w, c, list);
                break;
            }
        }
    }
}

/* ---- connections ---- */

void conn_mark_dirty(struct worker *w, struct conn *c)
{
    if (c->flags & CF_DIRTY)
        return;
    if (w->ndirty == w->dirtycap) {
        uint32_t ncap = w->dirtycap ? w->dirtycap * 2 : 1024;
        uint32_t *d = realloc(w->dirty, ncap * sizeof(*d));
        if (!d)
            FATAL("out of memory growing the flush list to %u", ncap);
        w->dirty = d;
        w->dirtycap = ncap;
    }
    c->flags |= CF_DIRTY;
    w->dirty[w->ndirty++] = conn_slot(w, c);
}

static void arm_recv(struct worker *w, struct conn *c)
{
    if (c->flags & (CF_RECV_ARMED | CF_RECV_BUSY | CF_PAUSED) || c->state == C_CLOSING)
        return;
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);
    if (has(w, FEAT_RECV_MULTISHOT)) {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = RING_BGID;
        sqe_conn(w, sqe, c, OP_RECV);
    } else {
        if (has(w, FEAT_POLL_MULTISHOT))
            io_uring_prep_poll_multishot(sqe, c->fd, POLLIN | POLLRDHUP);
        else
            io_uring_prep_poll_add(sqe, c->fd, POLLIN | POLLRDHUP);
        sqe_conn(w, sqe, c, OP_POLL);
    }
    c->flags |= CF_RECV_ARMED;
    c->inflight++;
}

/* Makes room for at least `room` more bytes in the connection's buffer. */
static int rx_reserve(struct conn *c, size_t room)
{
    struct rxbuf *rx = c->rx;
    uint32_t len = rx ? rx->len : 0;
    if (rx && rx->cap - len >= room)
        return 0;
    size_t ncap = rx ? rx->cap : RX_MIN;
    while (ncap - len < room)
        ncap *= 2;
    struct rxbuf *n = realloc(rx, sizeof(*n) + ncap);
    if (!n)
        return -ENOMEM;
    if (!rx)
        memset(n, 0, sizeof(*n));
    n->cap = (uint32_t)ncap;
    c->rx = n;
    return 0;
}

/* Poll mode: read what the socket holds into the connection's own buffer. */
static void start_recv(struct worker *w, struct conn *c)
{
    if (c->flags & (CF_RECV_BUSY | CF_PAUSED) || c->state == C_CLOSING)
        return;
    if (rx_reserve(c, RX_MIN / 2) < 0) {
        STAT_ADD(&w->stats, drops_nomem, 1);
        conn_close(w, c);
        return;
    }
    struct rxbuf *rx = c->rx;
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);
    /* Poll said readable, so this returns at once, with data or EAGAIN:
     * never parked in the kernel while serve_input waits for it. */
    io_uring_prep_recv(sqe, c->fd, rx->data + rx->len, rx->cap - rx->len, MSG_DONTWAIT);
    sqe_conn(w, sqe, c, OP_RECV);
    c->flags |= CF_RECV_BUSY;
    c->inflight++;
}

/* Appends received bytes to the connection's buffer (multishot mode). */
static int rx_append(struct conn *c, const char *p, size_t n)
{
    if (rx_reserve(c, n) < 0)
        return -ENOMEM;
    memcpy(c->rx->data + c->rx->len, p, n);
    c->rx->len += (uint32_t)n;
    return 0;
}

/* Takes slot, already removed from the free list, for socket fd; tls: it
 * came in on the TLS port. */
static struct conn *conn_new(struct worker *w, uint32_t slot, int fd, int tls)
{
    struct conn *c = &w->conns[slot];
    uint32_t gen = c->gen;
    memset(c, 0, sizeof(*c));
    c->gen = gen;
    c->state = C_READ;
    c->fd = fd;
    c->tprev = c->tnext = c->sprev = c->snext = SLOT_NONE;
    w->nconns++;
    if (w->draining)
        c->flags |= CF_CLOSE_AFTER; /* accepted just before the listener shut */
    STAT_ADD(&w->stats, connections_accepted, 1);
    STAT_ADD(&w->stats, connections, 1);
    if (tls) {
        c->flags |= CF_TLS | CF_TLS_HS;
        w->tls_handshaking++;
        STAT_ADD(&w->stats, tls_connections, 1);
        if (!(w->tls[slot] = tls_conn_new_server(w->srv->tls))) {
            STAT_ADD(&w->stats, drops_nomem, 1);
            conn_close(w, c);
            return c;
        }
    }
    conn_timer_set(w, c, tls ? T_TLS : T_HEADER);
    arm_recv(w, c);
    return c;
}

static void outq_release(struct outq *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        rc_put(q->ents[(q->head + i) % q->cap].owner);
    if (q->ents != q->inl)
        free(q->ents);
    free(q);
}

static void conn_maybe_free(struct worker *w, struct conn *c)
{
    if (c->state != C_CLOSING || !(c->flags & CF_CLOSE_SENT) || c->inflight)
        return;
    if (c->q)
        outq_release(c->q);
    free(c->rx);
    c->q = NULL;
    c->rx = NULL;
    wsdeflate_inflater_free(w->inflaters[conn_slot(w, c)]);
    w->inflaters[conn_slot(w, c)] = NULL;
    if (c->flags & CF_TLS_HS)
        w->tls_handshaking--;
    if (c->flags & CF_TLS) {
        tls_conn_free(w->tls[conn_slot(w, c)]);
        w->tls[conn_slot(w, c)] = NULL;
        STAT_SUB(&w->stats, tls_connections, 1);
    }
    c->gen++;
    c->state = C_FREE;
    w->freelist[w->nfree++] = conn_slot(w, c);
    w->nconns--;
    STAT_SUB(&w->stats, connections, 1); /* counted until the record is free */
}

static void cancel_op(struct worker *w, struct conn *c, int op)
{
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);
    io_uring_prep_cancel64(sqe, ud(op, conn_slot(w, c), c->gen), 0);
    sqe->user_data = ud(OP_IGNORE, 0, 0);
}

void conn_pause(struct worker *w, struct conn *c)
{
    if (c->flags & CF_PAUSED)
        return;
    c->flags |= CF_PAUSED;
    /* Bytes already on their way still arrive; then the socket buffer fills
     * and TCP's window holds the client. */
    if (c->flags & CF_RECV_ARMED)
        cancel_op(w, c, has(w, FEAT_RECV_MULTISHOT) ? OP_RECV : OP_POLL);
}

void conn_resume(struct worker *w, struct conn *c)
{
    if (!(c->flags & CF_PAUSED))
        return;
    c->flags &= ~CF_PAUSED;
    arm_recv(w, c);
}

void conn_close(struct worker *w, struct conn *c)
{
    if (c->state == C_CLOSING && (c->flags & CF_CLOSE_SENT))
        return;
    if (c->state == C_SSE)
        STAT_SUB(&w->stats, sse_subscribers, 1);
    if (c->state == C_LP)
        STAT_SUB(&w->stats, longpoll_waiting, 1);
    if (c->state == C_WS && !(c->flags & CF_WS_CLOSING))
        STAT_SUB(&w->stats, ws_subscribers, 1);
    conn_unsubscribe(w, c);
    timer_unlink(w, c);
    c->state = C_CLOSING;
    if (!(c->flags & CF_RECV_BUSY)) { /* else the kernel still writes into it */
        free(c->rx);
        c->rx = NULL;
    }
    if (c->flags & CF_RECV_ARMED)
        cancel_op(w, c, has(w, FEAT_RECV_MULTISHOT) ? OP_RECV : OP_POLL);
    if (c->flags & CF_RECV_BUSY)
        cancel_op(w, c, OP_RECV);
    /* A send to a peer that stopped reading would wait for room forever,
     * and the record with it. */
    if (c->flags & CF_SENDING)
        cancel_op(w, c, OP_SEND);
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);
    if (has(w, FEAT_DIRECT))
        io_uring_prep_close_direct(sqe, (unsigned)c->fd);
    else
        io_uring_prep_close(sqe, c->fd);
    sqe->user_data = ud(OP_CLOSE, conn_slot(w, c), c->gen);
    c->flags |= CF_CLOSE_SENT;
    c->inflight++;
    STAT_ADD(&w->stats, connections_closed, 1);
}

/* ---- send queue ---- */

void conn_queue(struct worker *w, struct conn *c, struct rc *owner, const char *base, size_t len)
{
    if ((c->state == C_CLOSING && (c->flags & CF_CLOSE_SENT)) || len == 0) {
        rc_put(owner); /* an empty entry would make an empty send */
        return;
    }
    struct outq *q = c->q;
    if (!q) {
        q = malloc(sizeof(*q));
        if (!q)
            goto nomem;
        q->head = q->count = q->off = q->inflight = 0;
        q->bytes = 0;
        q->cap = ARRAY_SIZE(q->inl);
        q->ents = q->inl;
        c->q = q;
    }
    if (q->count == q->cap) {
        uint32_t ncap = q->cap * 2;
        struct outq_ent *e = malloc(ncap * sizeof(*e));
        if (!e)
            goto nomem;
        for (uint32_t i = 0; i < q->count; i++)
            e[i] = q->ents[(q->head + i) % q->cap];
        if (q->ents != q->inl)
            free(q->ents);
        q->ents = e;
        q->cap = ncap;
        q->head = 0;
    }
    q->ents[(q->head + q->count) % q->cap] = (struct outq_ent){owner, base, (uint32_t)len};
    q->count++;
    q->bytes += len;
    if (unlikely(q->bytes > w->cfg->max_queue) &&
        (c->state == C_SSE || c->state == C_LP || c->state == C_WS) &&
        !(c->flags & CF_WS_CLOSING)) {
        /* A subscriber that does not read must not grow our memory. */
        STAT_ADD(&w->stats, drops_slow, 1);
        if (c->state == C_WS) {
            conn_drop_unsent(c);
            serve_ws_slow(w, c); /* a close frame, if it can still be sent */
        } else {
            conn_close(w, c);
        }
        return;
    }
    conn_mark_dirty(w, c);
    return;
nomem:
    rc_put(owner);
    STAT_ADD(&w->stats, drops_nomem, 1);
    conn_close(w, c);
}

void conn_drop_unsent(struct conn *c)
{
    struct outq *q = c->q;
    if (!q)
        return;
    uint32_t keep = (c->flags & CF_SENDING) ? q->inflight : 0; /* the kernel's until done */
    while (q->count > keep) {
        struct outq_ent *e = &q->ents[(q->head + q->count - 1) % q->cap];
        q->bytes -= e->len - (q->count == 1 ? q->off : 0);
        rc_put(e->owner);
        q->count--;
    }
    if (q->count == 0)
        q->off = 0;
}

void conn_queue_copy(struct worker *w, struct conn *c, const char *base, size_t len)
{
    struct blob *b = blob_new(len);
    if (!b) {
        STAT_ADD(&w->stats, drops_nomem, 1);
        conn_close(w, c);
        return;
    }
    memcpy(b->data, base, len);
    conn_queue(w, c, &b->rc, b->data, len);
}

/* ---- transports: plain TCP, or TLS over it ----
 *
 * Protocol code (serve.c, serve_ws.c) sees only plaintext: what arrived, in
 * c->rx, and what to send, queued with conn_queue(). A transport moves the
 * bytes between those and the socket: plain TCP as they are, TLS through the
 * connection's tls_conn (tls.h), which decrypts what arrives and encrypts
 * what leaves. Encryption is per connection, so a TLS subscriber's queue is
 * encrypted a batch at a time, only when the previous batch is on the wire:
 * what waits stays in the shared, refcounted form that --max-queue counts.
 */
struct transport {
    /* n bytes arrived: append the plaintext to c->rx. 0, or -1 when the
     * connection is failing or closed (the caller stops there). */
    int (*input)(struct worker *w, struct conn *c, const char *p, size_t n);
    /* Something to send now? */
    int (*has_output)(struct worker *w, struct conn *c);
    /* Submits one send of what there is. */
    void (*send)(struct worker *w, struct conn *c);
    /* n bytes of the send in flight went out. */
    void (*sent)(struct worker *w, struct conn *c, size_t n);
};

static void outq_pop(struct outq *q, uint64_t n)
{
    q->bytes -= n;
    while (n && q->count) {
        struct outq_ent *e = &q->ents[q->head];
        uint32_t avail = e->len - q->off;
        if (n < avail) {
            q->off += (uint32_t)n;
            break;
        }
        n -= avail;
        rc_put(e->owner);
        q->off = 0;
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
}

/* The iovecs of q's first entries, up to OUTQ_IOV; returns how many. */
static uint32_t outq_iov(struct outq *q, size_t *bytes)
{
    uint32_t n = q->count < OUTQ_IOV ? q->count : OUTQ_IOV;
    *bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct outq_ent *e = &q->ents[(q->head + i) % q->cap];
        uint32_t skip = i == 0 ? q->off : 0;
        q->iov[i].iov_base = (void *)(e->base + skip);
        q->iov[i].iov_len = e->len - skip;
        *bytes += e->len - skip;
    }
    return n;
}

static int tcp_input(struct worker *w, struct conn *c, const char *p, size_t n)
{
    if (rx_append(c, p, n) < 0) {
        STAT_ADD(&w->stats, drops_nomem, 1);
        conn_close(w, c);
        return -1;
    }
    return 0;
}

static int tcp_has_output(struct worker *w, struct conn *c)
{
    (void)w;
    return c->q && c->q->count;
}

static void tcp_send(struct worker *w, struct conn *c)
{
    struct outq *q = c->q;
    size_t bytes;
    uint32_t n = outq_iov(q, &bytes);
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);
    if (n == 1) {
        io_uring_prep_send(sqe, c->fd, q->iov[0].iov_base, q->iov[0].iov_len, MSG_NOSIGNAL);
    } else {
        memset(&q->mh, 0, sizeof(q->mh));
        q->mh.msg_iov = q->iov;
        q->mh.msg_iovlen = n;
        io_uring_prep_sendmsg(sqe, c->fd, &q->mh, MSG_NOSIGNAL);
    }
    sqe_conn(w, sqe, c, OP_SEND);
    q->inflight = n;
    c->flags |= CF_SENDING;
    c->inflight++;
}

static void tcp_sent(struct worker *w, struct conn *c, size_t n)
{
    (void)w;
    outq_pop(c->q, n);
}

static const struct transport tcp_transport = {tcp_input, tcp_has_output, tcp_send, tcp_sent};

static struct tls_conn *conn_tls(struct worker *w, struct conn *c)
{
    return w->tls[conn_slot(w, c)];
}

/* The TLS connection failed: count why, stop reading, and close once what
 * it has to say (an alert, or the 400 a plain-HTTP client gets) is out. */
static void tls_failed(struct worker *w, struct conn *c)
{
    struct tls_conn *t = conn_tls(w, c);
    switch (tls_conn_error(t)) {
    case TLS_ERR_PLAIN_HTTP:
        STAT_ADD(&w->stats, tls_fail_plain_http, 1);
        break;
    case TLS_ERR_NOT_TLS:
        STAT_ADD(&w->stats, tls_fail_not_tls, 1);
        break;
    case TLS_ERR_BAD_HELLO:
        STAT_ADD(&w->stats, tls_fail_bad_hello, 1);
        break;
    case TLS_ERR_VERSION:
        STAT_ADD(&w->stats, tls_fail_version, 1);
        break;
    case TLS_ERR_CIPHER:
        STAT_ADD(&w->stats, tls_fail_cipher, 1);
        break;
    case TLS_ERR_ALPN:
        STAT_ADD(&w->stats, tls_fail_alpn, 1);
        break;
    case TLS_ERR_ALERT:
        STAT_ADD(&w->stats, tls_fail_alert, 1);
        break;
    case TLS_ERR_RECORD:
        STAT_ADD(&w->stats, tls_fail_record, 1);
        break;
    default:
        STAT_ADD(&w->stats, tls_fail_other, 1);
        break;
    }
    conn_drop_unsent(c);
    c->flags |= CF_CLOSE_AFTER;
    conn_pause(w, c);
    if (tls_conn_pending(t).len)
        conn_mark_dirty(w, c);
    else
        conn_close(w, c);
}

static int tls_input(struct worker *w, struct conn *c, const char *p, size_t n)
{
    struct tls_conn *t = conn_tls(w, c);
    int handshaking = tls_conn_state(t) == TLS_HANDSHAKE;
    int rc = tls_conn_input(t, span_of(p, n));
    if (rc == -ENOMEM)
        goto nomem;
    if (rc < 0) {
        tls_failed(w, c);
        return -1;
    }
    if (handshaking && tls_conn_state(t) == TLS_OPEN) {
        c->flags &= ~CF_TLS_HS;
        w->tls_handshaking--;
        STAT_ADD(&w->stats, tls_handshakes, 1);
        if (tls_conn_resumed(t))
            STAT_ADD(&w->stats, tls_resumed, 1);
        if (!tls_conn_detached(t))
            STAT_ADD(&w->stats, tls_attached, 1);
        conn_timer_set(w, c, T_HEADER); /* now a request head is due */
    }
    for (;;) {
        if (rx_reserve(c, RX_MIN) < 0)
            goto nomem;
        struct rxbuf *rx = c->rx;
        ssize_t got = tls_conn_read(t, rx->data + rx->len, rx->cap - rx->len);
        if (got == -ENOMEM)
            goto nomem;
        if (got < 0) {
            tls_failed(w, c);
            return -1;
        }
        if (got == 0)
            break;
        rx->len += (uint32_t)got;
    }
    if (tls_conn_pending(t).len) /* handshake messages, an alert */
        conn_mark_dirty(w, c);
    if (tls_conn_state(t) == TLS_PEER_CLOSED)
        c->flags |= CF_EOF | CF_CLOSE_AFTER;
    return 0;
nomem:
    STAT_ADD(&w->stats, drops_nomem, 1);
    conn_close(w, c);
    return -1;
}

static int tls_has_output(struct worker *w, struct conn *c)
{
    struct tls_conn *t = conn_tls(w, c);
    return tls_conn_pending(t).len || (c->q && c->q->count && tls_conn_state(t) == TLS_OPEN);
}

/* A graceful close over TLS says close_notify first (RFC 8446 6.1), so a
 * client can tell the end of the stream from a cut connection (curl over
 * OpenSSL 3 reports "unexpected eof" otherwise). Returns 1 when the alert
 * was queued: the TCP close then waits until it is out. Only once, and not
 * after a failed handshake (nothing was agreed to seal it with). */
static int tls_goodbye(struct worker *w, struct conn *c)
{
    if (!(c->flags & CF_TLS) || (c->flags & CF_TLS_BYE))
        return 0;
    c->flags |= CF_TLS_BYE;
    if (tls_conn_shutdown(conn_tls(w, c)) < 0)
        return 0;
    conn_mark_dirty(w, c);
    return 1;
}

/* Sends the pending ciphertext; with none, first encrypts the next batch of
 * the queue (what the kernel is given is the TLS layer's buffer). */
static void tls_send(struct worker *w, struct conn *c)
{
    struct tls_conn *t = conn_tls(w, c);
    span_t out = tls_conn_pending(t);
    struct outq *q = c->q;
    if (!out.len && q && q->count && tls_conn_state(t) == TLS_OPEN) {
        size_t bytes;
        uint32_t n = outq_iov(q, &bytes);
        ssize_t rc = tls_conn_write(t, q->iov, (int)n);
        if (rc < 0) {
            if (rc == -ENOMEM)
                STAT_ADD(&w->stats, drops_nomem, 1);
            conn_close(w, c);
            return;
        }
        outq_pop(q, bytes);
        out = tls_conn_pending(t);
    }
    if (!out.len)
        return;
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);
    io_uring_prep_send(sqe, c->fd, out.base, out.len, MSG_NOSIGNAL);
    sqe_conn(w, sqe, c, OP_SEND);
    if (q)
        q->inflight = 0; /* the queue's bytes are the TLS layer's now */
    c->flags |= CF_SENDING;
    c->inflight++;
}

static void tls_sent(struct worker *w, struct conn *c, size_t n)
{
    tls_conn_sent(conn_tls(w, c), n);
}

static const struct transport tls_transport = {tls_input, tls_has_output, tls_send, tls_sent};

static const struct transport *transport_of(const struct conn *c)
{
    return (c->flags & CF_TLS) ? &tls_transport : &tcp_transport;
}

static void on_send(struct worker *w, struct conn *c, int res)
{
    c->flags &= ~CF_SENDING;
    c->inflight--;
    if (res < 0 || c->state == C_CLOSING) {
        if (c->state != C_CLOSING)
            conn_close(w, c);
        conn_maybe_free(w, c);
        return;
    }
    STAT_ADD(&w->stats, bytes_sent, (uint64_t)res);
    STAT_ADD(&w->stats, sends, 1);
    const struct transport *tr = transport_of(c);
    tr->sent(w, c, (size_t)res);
    if (tr->has_output(w, c)) {
        conn_mark_dirty(w, c);
        return;
    }
    if (c->q && c->q->count == 0) {
        outq_release(c->q);
        c->q = NULL;
    }
    if (c->q)
        return; /* TLS: waits for the handshake */
    if ((c->flags & CF_TLS) && tls_conn_state(conn_tls(w, c)) == TLS_FAILED)
        conn_close(w, c); /* its last words are out */
    else if ((c->flags & CF_CLOSE_AFTER) && c->state == C_READ && !tls_goodbye(w, c))
        conn_close(w, c);
}

/* Sends what each dirty connection has queued, re-arms receives that ran out
 * of buffers, and closes connections whose last bytes went out. */
static void flush_dirty(struct worker *w)
{
    for (uint32_t i = 0; i < w->ndirty; i++) {
        struct conn *c = &w->conns[w->dirty[i]];
        c->flags &= ~CF_DIRTY;
        if (c->state == C_FREE || (c->flags & CF_CLOSE_SENT))
            continue;
        if (c->flags & CF_REARM) {
            c->flags &= ~CF_REARM;
            arm_recv(w, c);
        }
        if (c->flags & CF_RESUME) {
            c->flags &= ~CF_RESUME;
            serve_input(w, c);
            if (c->flags & CF_CLOSE_SENT)
                continue;
        }
        const struct transport *tr = transport_of(c);
        if (!(c->flags & CF_SENDING) && tr->has_output(w, c))
            tr->send(w, c);
        else if (!c->q && !(c->flags & CF_SENDING) && (c->flags & CF_CLOSE_AFTER) &&
                 c->state == C_READ && !tls_goodbye(w, c))
            conn_close(w, c);
    }
    w->ndirty = 0;
}

/* ---- accept and completions ---- */

/* TLS accepts in flight at most (single-shot; see arm_accept_on). */
#define TLS_ACCEPTS 8

/* Submits one accept on listener fd: multishot where the kernel has it,
 * unless single (then one connection per completion). */
static void submit_accept(struct worker *w, int fd, int tls, int single)
{
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);
    uint32_t slot = 0;
    if (!single && has(w, FEAT_DIRECT))
        io_uring_prep_multishot_accept_direct(sqe, fd, NULL, NULL, 0);
    else if (!single)
        io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, 0);
    else if (has(w, FEAT_DIRECT) && has(w, FEAT_ACCEPT_MULTISHOT)) {
        /* The kernel picks the table entry, as for the multishot accept
         * beside it: entries we chose could collide with its choices.
         * (Set directly: liburing helpers differ across versions in how
         * they encode the index.) */
        io_uring_prep_accept(sqe, fd, NULL, NULL, 0);
        sqe->file_index = IORING_FILE_INDEX_ALLOC;
    } else if (has(w, FEAT_DIRECT)) {
        /* 5.15: we choose the table entry; the connection slot is unique, so
         * its number is a free entry. */
        if (w->nfree == 0) {
            w->accept_paused = 1;
            w->accept_paused_at = w->now;
            io_uring_prep_nop(sqe);
            sqe->user_data = ud(OP_IGNORE, 0, 0);
            return;
        }
        slot = w->freelist[--w->nfree]; /* reserved until the accept completes */
        io_uring_prep_accept_direct(sqe, fd, NULL, NULL, 0, slot);
    } else
        io_uring_prep_accept(sqe, fd, NULL, NULL, 0);
    sqe->user_data = ud(tls ? OP_ACCEPT_TLS : OP_ACCEPT, slot, 0);
    if (tls)
        w->tls_accept_armed++;
    else
        w->accept_armed = 1;
}

/* Arms the accepts: one (multishot where possible) on the plain listener;
 * on the TLS one, single-shot accepts, no more than TLS_ACCEPTS in flight
 * and no more than --tls-max-handshakes handshakes in progress. A worker
 * behind on handshakes leaves the other clients in the kernel's listen
 * queue, unaccepted and costing nothing, instead of each holding wolfSSL's
 * ~55 KB of handshake state while the CPU catches up (which would also
 * leave the process' memory at that peak). A multishot accept could not be
 * held back like that: re-armed, it takes the whole queue at once. */
static void arm_accept_on(struct worker *w, int tls)
{
    if (w->accept_paused || w->draining)
        return;
    if (!tls) {
        if (!w->accept_armed)
            submit_accept(w, w->listen_fd, 0, !has(w, FEAT_ACCEPT_MULTISHOT));
        return;
    }
    while (w->tls_listen_fd >= 0 && w->tls_accept_armed < TLS_ACCEPTS &&
           w->tls_handshaking + (uint32_t)w->tls_accept_armed < w->cfg->tls_max_handshakes &&
           !w->accept_paused)
        submit_accept(w, w->tls_listen_fd, 1, 1);
}

static void arm_accept(struct worker *w)
{
    arm_accept_on(w, 0);
    arm_accept_on(w, 1);
}

static void on_accept(struct worker *w, struct io_uring_cqe *cqe, int tls)
{
    int res = cqe->res;
    /* multishot: the kernel chose the table entry (the multishot era's
     * accepts, single-shot ones included); else we reserved it. */
    int direct = has(w, FEAT_DIRECT), multishot = has(w, FEAT_ACCEPT_MULTISHOT);
    if (tls)
        w->tls_accept_armed--;
    else if (!(cqe->flags & IORING_CQE_F_MORE))
        w->accept_armed = 0;
    if (res < 0 && direct && !multishot)
        w->freelist[w->nfree++] = ud_slot(cqe->user_data);
    if (res < 0) {
        if (res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS) {
            /* Out of descriptors: wait for closes rather than spin. */
            if (!w->accept_paused)
                fprintf(stderr, "ringcast: worker %d: accept: %s; pausing accepts\n", w->id,
                        strerror(-res));
            w->accept_paused = 1;
            w->accept_paused_at = w->now;
        } else if (res != -ECANCELED && res != -EINVAL)
            fprintf(stderr, "ringcast: worker %d: accept: %s\n", w->id, strerror(-res));
        return;
    }
    struct conn *c;
    if (direct && !multishot) { /* 5.15: res is 0, the entry is the slot we chose */
        uint32_t slot = ud_slot(cqe->user_data);
        c = conn_new(w, slot, (int)slot, tls);
    } else if (w->nfree) {
        c = conn_new(w, w->freelist[--w->nfree], res, tls);
    } else {
        /* No record free: only when the kernel chose the entry. */
        struct io_uring_sqe *sqe = ring_sqe(&w->ring);
        if (direct)
            io_uring_prep_close_direct(sqe, (unsigned)res);
        else
            io_uring_prep_close(sqe, res);
        sqe->user_data = ud(OP_IGNORE, 0, 0);
        STAT_ADD(&w->stats, connections_refused, 1);
        return;
    }
    if (w->nconns > w->cfg->max_conns && c->state != C_CLOSING) {
        STAT_ADD(&w->stats, connections_refused, 1);
        serve_refuse(w, c);
    }
}

static void on_recv(struct worker *w, struct conn *c, struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    int multishot = has(w, FEAT_RECV_MULTISHOT);
    if (multishot) {
        if (!(cqe->flags & IORING_CQE_F_MORE)) {
            c->flags &= ~CF_RECV_ARMED;
            c->inflight--;
        }
    } else {
        c->flags &= ~CF_RECV_BUSY;
        c->inflight--;
        if (res > 0 && c->state != C_CLOSING) {
            if (c->flags & CF_TLS) /* ciphertext, after the plaintext: see start_recv */
                tls_input(w, c, c->rx->data + c->rx->len, (size_t)res);
            else
                c->rx->len += (uint32_t)res;
        }
    }
    if (res > 0 && multishot) {
        uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (c->state != C_CLOSING)
            transport_of(c)->input(w, c, ring_buf(&w->ring, bid), (size_t)res);
        ring_buf_recycle(&w->ring, bid);
    }
    if (c->state == C_CLOSING) {
        conn_maybe_free(w, c);
        return;
    }
    if ((c->flags & CF_TLS) && tls_conn_state(conn_tls(w, c)) == TLS_FAILED)
        return; /* closes once its alert is out */
    if (res == -ENOBUFS || (res == -EAGAIN && !multishot)) {
        /* Out of buffers (multishot), or nothing to read after all (poll):
         * wait again, and meanwhile go on with what is buffered. */
        c->flags |= CF_REARM | CF_RESUME;
        conn_mark_dirty(w, c);
        return;
    }
    if (res == 0 && c->q && (c->state == C_READ || c->state == C_WAIT)) {
        /* Half-closed: the client may still read the answers it asked
         * for. They go out, then we close; nothing more is read. */
        c->flags |= CF_EOF | CF_CLOSE_AFTER;
        return;
    }
    if (res == -ECANCELED && (c->flags & CF_PAUSED))
        return; /* conn_pause's doing */
    if (res <= 0) {
        if (res == 0)
            c->flags |= CF_EOF;
        conn_close(w, c);
        return;
    }
    STAT_ADD(&w->stats, bytes_received, (uint64_t)res);
    /* Poll mode: a full buffer or a readiness seen while reading means the
     * socket may hold more, and poll will not say so again (TLS: whether the
     * buffer filled is not known after decryption; ask once more). */
    int more = !multishot &&
               ((c->flags & CF_TLS) || (c->rx && c->rx->len == c->rx->cap) || (c->flags & CF_MORE));
    c->flags &= ~CF_MORE;
    if (!(c->flags & CF_TLS) || (c->rx && c->rx->len))
        serve_input(w, c);
    if (c->state == C_CLOSING)
        return;
    if (c->rx && c->rx->len == 0 && !(c->state == C_WS && c->rx->ws.mid)) {
        free(c->rx); /* idle connections hold no buffer */
        c->rx = NULL;
    }
    if (multishot) {
        if (!(c->flags & CF_RECV_ARMED))
            arm_recv(w, c);
    } else if (more) {
        start_recv(w, c); /* there may be more: poll will not fire again */
    } else if (!(c->flags & CF_RECV_ARMED)) {
        arm_recv(w, c);
    }
}

static void on_poll(struct worker *w, struct conn *c, struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->flags &= ~CF_RECV_ARMED;
        c->inflight--;
    }
    if (c->state == C_CLOSING) {
        conn_maybe_free(w, c);
        return;
    }
    if (cqe->res == -ECANCELED && (c->flags & CF_PAUSED))
        return; /* conn_pause's doing */
    if (cqe->res < 0) {
        conn_close(w, c);
        return;
    }
    if (c->flags & CF_RECV_BUSY)
        c->flags |= CF_MORE;
    else
        start_recv(w, c);
}

static void dispatch(struct worker *w, struct io_uring_cqe *cqe)
{
    uint64_t u = cqe->user_data;
    int op = ud_op(u);
    if (op == OP_ACCEPT || op == OP_ACCEPT_TLS) {
        on_accept(w, cqe, op == OP_ACCEPT_TLS);
        return;
    }
    if (op == OP_DOORBELL) {
        mesh_arm_doorbell(w);
        return;
    }
    if (op == OP_IGNORE)
        return;
    uint32_t slot = ud_slot(u);
    if (slot >= w->nslots)
        FATAL("completion for slot %u of %u (op %d)", slot, w->nslots, op);
    struct conn *c = &w->conns[slot];
    if ((c->gen & 0xffffff) != ud_gen(u) || c->state == C_FREE)
        FATAL("stale completion: op %d slot %u gen %u/%u", op, slot, ud_gen(u), c->gen);
    switch (op) {
    case OP_RECV:
        on_recv(w, c, cqe);
        break;
    case OP_POLL:
        on_poll(w, c, cqe);
        break;
    case OP_SEND:
        on_send(w, c, cqe->res);
        break;
    case OP_CLOSE:
        c->inflight--;
        conn_maybe_free(w, c);
        break;
    default:
        FATAL("unknown op %d", op);
    }
}

/* ---- the loop ---- */

static void begin_drain(struct worker *w)
{
    w->draining = 1;
    /* A pending accept fails (EINVAL) once its socket stops listening;
     * connections still queued on it are reset. */
    shutdown(w->listen_fd, SHUT_RDWR);
    if (w->tls_listen_fd >= 0)
        shutdown(w->tls_listen_fd, SHUT_RDWR);
    for (uint32_t s = 0; s < w->nslots; s++) {
        struct conn *c = &w->conns[s];
        if (c->state != C_FREE && c->state != C_CLOSING)
            serve_drain(w, c);
    }
}

static void pin(int id)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(id % (n > 0 ? n : 1), &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int worker_setup(struct worker *w)
{
    const struct config *cfg = w->cfg;
    uint32_t want = cfg->max_conns + 64;
    /* Requests are small and brief: a few buffers, reused at once. */
    struct ring_params rp = {.allowed = cfg->features,
                             .sq_entries = SQ_ENTRIES,
                             .nfiles = want,
                             .nbufs = 256,
                             .bufsize = 2048};
    int rc = ring_init(&w->ring, &rp);
    if (rc < 0) {
        fprintf(stderr, "ringcast: worker %d: io_uring setup: %s\n", w->id, strerror(-rc));
        return rc;
    }
    w->nslots = has(w, FEAT_DIRECT) && w->ring.nfiles < want ? w->ring.nfiles : want;
    w->ring_fd = w->ring.uring.ring_fd;
    /* Reserved, not committed: a record costs memory only once touched. */
    w->conns = mmap(NULL, (size_t)w->nslots * sizeof(struct conn), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    w->freelist = mmap(NULL, (size_t)w->nslots * sizeof(uint32_t), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    w->inflaters = mmap(NULL, (size_t)w->nslots * sizeof(*w->inflaters), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    w->tls = mmap(NULL, (size_t)w->nslots * sizeof(*w->tls), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (w->conns == MAP_FAILED || w->freelist == MAP_FAILED || w->inflaters == MAP_FAILED ||
        w->tls == MAP_FAILED)
        return -ENOMEM;
    wsdeflate_init(&w->wsz);
    /* Lowest slots first, so the touched part of the table stays dense. */
    for (uint32_t i = 0; i < w->nslots; i++)
        w->freelist[i] = w->nslots - 1 - i;
    w->nfree = w->nslots;
    if ((rc = chan_table_init(&w->chans, cfg->history, (uint64_t)cfg->history_ttl * 1000)) < 0)
        return rc;
    for (int i = 0; i < T_COUNT; i++)
        w->tl[i].head = w->tl[i].tail = SLOT_NONE;
    w->sub_free = SLOT_NONE;
    w->tl[T_HEADER].timeout_ms = cfg->header_timeout * 1000;
    w->tl[T_KEEPALIVE].timeout_ms = cfg->keepalive_timeout * 1000;
    w->tl[T_LONGPOLL].timeout_ms = cfg->poll_timeout * 1000;
    w->tl[T_HEARTBEAT].timeout_ms = cfg->heartbeat * 1000;
    w->tl[T_WSPING].timeout_ms = cfg->ws_ping * 1000;
    w->tl[T_WSPONG].timeout_ms = cfg->ws_timeout * 1000;
    w->tl[T_WSCLOSE].timeout_ms = cfg->close_timeout * 1000;
    w->tl[T_TLS].timeout_ms = cfg->tls_handshake_timeout * 1000;
    w->overflow = calloc((size_t)w->srv->nworkers, sizeof(*w->overflow));
    w->bell = calloc((size_t)w->srv->nworkers, 1);
    if (!w->overflow || !w->bell)
        return -ENOMEM;
    w->start_ms = now_ms();
    return 0;
}

static void worker_teardown(struct worker *w)
{
    chan_table_destroy(&w->chans);
    for (uint32_t s = 0; s < w->nslots; s++) {
        struct conn *c = &w->conns[s];
        if (c->state == C_FREE)
            continue;
        if (c->q)
            outq_release(c->q);
        free(c->rx);
        wsdeflate_inflater_free(w->inflaters[s]);
        tls_conn_free(w->tls[s]);
    }
    wsdeflate_destroy(&w->wsz);
    /* w->overflow's items are retired by server_wait, once every worker
     * has stopped. */
    free(w->bell);
    free(w->dirty);
    free(w->subs);
    free(w->reap);
    munmap(w->conns, (size_t)w->nslots * sizeof(struct conn));
    munmap(w->freelist, (size_t)w->nslots * sizeof(uint32_t));
    munmap(w->inflaters, (size_t)w->nslots * sizeof(*w->inflaters));
    munmap(w->tls, (size_t)w->nslots * sizeof(*w->tls));
    if (w->srv->tls)
        tls_thread_done();
    ring_exit(&w->ring);
}

static _Atomic int workers_ready;
static _Atomic int workers_failed;

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct server *s = w->srv;
    pin(w->id);
    if (worker_setup(w) < 0) {
        atomic_fetch_add(&workers_failed, 1);
        atomic_fetch_add(&workers_ready, 1);
        return NULL;
    }
    atomic_store(&w->ready, 1);
    atomic_fetch_add(&workers_ready, 1);
    /* Nobody may ring a doorbell before every ring exists. */
    while (atomic_load(&workers_ready) < s->nworkers)
        usleep(1000);
    if (atomic_load(&workers_failed))
        goto out;
    mesh_arm_doorbell(w);
    arm_accept(w);
    uint32_t drain_deadline = 0;
    uint64_t overflow_seen = 0;
    for (;;) {
        w->now = (uint32_t)(now_ms() - w->start_ms);
        if (atomic_load_explicit(&s->stop, memory_order_relaxed) && !w->draining) {
            begin_drain(w);
            drain_deadline = w->now + s->cfg.drain * 1000;
        }
        if (w->draining && (w->nconns == 0 || (int32_t)(w->now - drain_deadline) >= 0))
            break;
        if (w->accept_paused && w->now - w->accept_paused_at >= TICK_MS)
            w->accept_paused = 0;
        arm_accept(w);
        mesh_flush_overflow(w);
        for (int round = 0; round < 8 && mesh_drain_inbox(w); round++)
            ;
        timers_run(w);
        flush_dirty(w);
        mesh_ring_bells(w);
        mesh_reap_channels(w);

        struct __kernel_timespec ts = {0, TICK_MS * 1000000LL};
        atomic_store(&w->sleeping, 1);
        atomic_thread_fence(memory_order_seq_cst);
        int idle = mesh_inbox_empty(w) && w->ndirty == 0;
        if (!idle) {
            atomic_store(&w->sleeping, 0);
            ts.tv_nsec = 0;
        }
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(&w->ring.uring, &cqe, 1, &ts, NULL);
        atomic_store(&w->sleeping, 0);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
            FATAL("worker %d: io_uring wait: %s", w->id, strerror(-rc));
        w->now = (uint32_t)(now_ms() - w->start_ms);
        unsigned head, n = 0;
        io_uring_for_each_cqe(&w->ring.uring, head, cqe)
        {
            dispatch(w, cqe);
            n++;
        }
        io_uring_cq_advance(&w->ring.uring, n);
        uint64_t ov = w->ring.uring.cq.koverflow ? *w->ring.uring.cq.koverflow : 0;
        if (ov != overflow_seen) {
            STAT_ADD(&w->stats, cq_overflows, ov - overflow_seen);
            overflow_seen = ov;
        }
    }
out:
    worker_teardown(w);
    return NULL;
}

int server_start(struct server *s)
{
    size_t mesh_bytes = (size_t)s->nworkers * (size_t)s->nworkers * sizeof(struct spsc);
    s->mesh = aligned_alloc(CACHELINE, mesh_bytes); /* struct spsc is cache-line aligned */
    if (s->mesh)
        memset(s->mesh, 0, mesh_bytes);
    s->workers = calloc((size_t)s->nworkers, sizeof(struct worker));
    if (!s->mesh || !s->workers)
        return -ENOMEM;
    for (int i = 0; i < s->nworkers * s->nworkers; i++)
        if (i / s->nworkers != i % s->nworkers && spsc_init(&s->mesh[i], 4096) < 0)
            return -ENOMEM;
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        w->id = i;
        w->srv = s;
        w->cfg = &s->cfg;
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0)
            return -errno;
    }
    return 0;
}

int server_run(struct server *s, const int *listen_fds, const int *tls_fds)
{
    for (int i = 0; i < s->nworkers; i++) {
        s->workers[i].listen_fd = listen_fds[i];
        s->workers[i].tls_listen_fd = tls_fds ? tls_fds[i] : -1;
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0)
            return -EAGAIN;
    }
    while (atomic_load(&workers_ready) < s->nworkers)
        usleep(1000);
    if (atomic_load(&workers_failed))
        return -EIO;
    s->features = s->workers[0].ring.feat;
    return 0;
}

/*
 * An item nobody will handle any more (every worker has stopped): drop its
 * reference, and stand in for the workers that never answered a gather, so
 * the gather is freed with its last share.
 */
static void retire_item(struct rc *item)
{
    if (item->type == RC_GATHER) {
        /* One gather goes round every worker under a single reference: it
         * is freed when its count of answers to come reaches zero. */
        struct gather *g = (struct gather *)item;
        if (atomic_load(&g->pending) == 0 || atomic_fetch_sub(&g->pending, 1) == 1)
            rc_put(item);
        return;
    }
    if (item->type == RC_MSG) {
        struct gather *g = ((struct msg *)item)->gather;
        if (g && atomic_fetch_sub(&g->pending, 1) == 1)
            rc_put(&g->rc);
    }
    rc_put(item);
}

void server_wait(struct server *s)
{
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i].thread, NULL);
    for (int i = 0; i < s->nworkers * s->nworkers; i++)
        if (i / s->nworkers != i % s->nworkers) {
            void *item;
            while (spsc_pop(&s->mesh[i], &item))
                retire_item(item);
            spsc_destroy(&s->mesh[i]);
        }
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        for (int d = 0; w->overflow && d < s->nworkers; d++) {
            for (uint32_t k = 0; k < w->overflow[d].n; k++)
                retire_item(w->overflow[d].items[k]);
            free(w->overflow[d].items);
        }
        free(w->overflow);
    }
    for (int i = 0; i < s->nworkers; i++)
        close(s->workers[i].efd);
    free(s->mesh);
    free(s->workers);
}
