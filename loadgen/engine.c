/*
 * engine.c: one ringload thread: its io_uring, its clients (SSE, WebSocket,
 * long-poll and short-poll subscribers, publishers), its latency histogram.
 * This file has the sockets, the ring, reconnects, the publishers and TLS;
 * proto.c has what subscribers speak and check (engine_int.h between them).
 * Sockets are made with socket(), bound and moved into the ring's
 * direct-descriptor table, so a thread holds up to `ulimit -n` connections of
 * its own and the process' file table stays nearly empty. Receives are
 * multishot on the ring's provided buffers.
 *
 * Checks: publisher j owns channels j, j+P, j+2P, ... and sends each of them
 * messages with sequence 1, 2, 3, ... (its only source), so every subscriber
 * knows what must come: each sequence from its baseline on, exactly once, in
 * order, with a server id that moves in step. A message carries its sequence
 * and intended send time ("s=SEQ t=NS c=CHAN " padded with 'x').
 *
 * Split runs (role = publish / subscribe, in different processes): the
 * subscribers know what was sent from the schedule (engine_scheduled), not
 * from a publisher of their own; see eng_announced and eng_acked.
 *
 * Baselines: an SSE or WebSocket subscriber expects every sequence published
 * after its subscription answer (200, 101) arrived. A poller has no such
 * moment: it anchors at the first message it sees (a short poll's first
 * answer, without since, holds history: it anchors after its last message),
 * and from then on each answer must hold every message the server had
 * acknowledged when the request was sent.
 *
 * TLS: a client whose URL is https or wss has a tls_conn. Its tx buffer
 * holds plaintext as for any client; submit_send encrypts it and sends the
 * connection's pending ciphertext instead (still one send in flight), and
 * received ciphertext is decrypted into the same byte handlers. The
 * protocol starts once the handshake is done (state S_HANDSHAKE until then).
 */
#include "engine_int.h"

#include <errno.h>
#include <math.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "jsonmsg.h"
#include "sseparse.h"
#include "ws.h"

/* ---- the publishing schedule ----
 *
 * Publisher j of P owns channels j, j+P, j+2P, ... (nowned of them) and
 * sends its request k at t0 + phase + k * period: each channel gets
 * publish_rate / channels messages per second, and publisher j starts j/P of
 * a period late, so P publishers send evenly spread in time, not all together
 * once a period (1,000 publishers at 0.2 msg/s each would otherwise send
 * 1,000 messages in one burst every 5 s, and measure their own queueing).
 * Requests come in rounds of nowned: round m visits each owned channel once
 * (in turn, or in a shuffled order with publish_order = random) and gives it
 * sequence m + 1. Everything here is a pure function of the scenario and t0,
 * so a subscribe-only process knows what a publish-only one sends. */

static uint32_t pub_owned(const struct scenario *sc, uint32_t j)
{
    return j < sc->channels ? (sc->channels - j + sc->publishers - 1) / sc->publishers : 0;
}

static uint64_t pub_period(const struct scenario *sc, uint32_t nowned)
{
    return (uint64_t)(1e9 * sc->channels / (sc->publish_rate * nowned));
}

/* When publisher j (owning nowned channels) has its request k due. */
static uint64_t pub_due_at(const struct run *r, uint32_t j, uint32_t nowned, uint64_t k)
{
    uint64_t period = pub_period(&r->sc, nowned);
    uint64_t phase = (uint64_t)((double)period * j / r->sc.publishers);
    return r->t0_ns + phase + k * period;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Round m's order of publisher j's n channels: position p visits owned
 * channel (a * p + b) mod n, a coprime to n (an affine shuffle: cheap, exact,
 * and invertible, which the schedule needs; not a uniformly random
 * permutation, but consecutive publishes land far apart). */
struct round_order {
    uint64_t a, b;
};

static struct round_order pub_order(const struct scenario *sc, uint32_t j, uint32_t n, uint64_t m)
{
    struct round_order o = {1, 0};
    if (sc->publish_order != SCENARIO_ORDER_RANDOM || n < 2)
        return o;
    uint64_t h = mix64(sc->seed ^ mix64((uint64_t)j << 32 ^ m));
    o.a = 1 + h % (n - 1);
    while (gcd64(o.a, n) != 1)
        o.a = o.a + 1 < n ? o.a + 1 : 1;
    o.b = mix64(h) % n;
    return o;
}

/* The position of owned channel q in round order o (the inverse). */
static uint64_t pub_position(struct round_order o, uint32_t n, uint64_t q)
{
    /* a^-1 mod n by the extended Euclid algorithm. */
    int64_t t0 = 0, t1 = 1, r0 = n, r1 = (int64_t)o.a;
    while (r1) {
        int64_t qq = r0 / r1, tmp = t0 - qq * t1;
        t0 = t1, t1 = tmp;
        tmp = r0 - qq * r1;
        r0 = r1, r1 = tmp;
    }
    uint64_t inv = (uint64_t)(t0 < 0 ? t0 + n : t0);
    return inv * ((q + n - o.b) % n) % n;
}

/* The channel (run index) of publisher j's request k. */
static uint32_t pub_chan(const struct scenario *sc, uint32_t j, uint32_t n, uint64_t k)
{
    struct round_order o = pub_order(sc, j, n, k / n);
    uint64_t q = (o.a * (k % n) + o.b) % n;
    return j + (uint32_t)q * sc->publishers;
}

uint64_t engine_scheduled(const struct run *r, uint32_t ch, uint64_t before)
{
    const struct scenario *sc = &r->sc;
    if (sc->publish_rate <= 0 || sc->publishers == 0)
        return 0;
    uint32_t j = ch % sc->publishers, n = pub_owned(sc, j);
    uint64_t lim = before < r->stop_ns ? before : r->stop_ns;
    uint64_t first = pub_due_at(r, j, n, 0);
    if (n == 0 || lim <= first)
        return 0;
    /* K = how many requests are due before lim: an estimate, then made exact
     * against the very arithmetic pub_due uses. */
    uint64_t K = (lim - first + pub_period(sc, n) - 1) / pub_period(sc, n);
    while (K > 0 && pub_due_at(r, j, n, K - 1) >= lim)
        K--;
    while (pub_due_at(r, j, n, K) < lim)
        K++;
    uint64_t m = K / n, rem = K % n;
    uint64_t pos = pub_position(pub_order(sc, j, n, m), n, ch / sc->publishers);
    return m + (pos < rem);
}

uint64_t eng_announced(const struct run *r, uint32_t ch, uint64_t now)
{
    if (r->sc.role == SCENARIO_ROLE_SUBSCRIBE)
        return engine_scheduled(r, ch, now + SPLIT_GRACE_NS);
    return atomic_load(&r->chan_sent[ch]);
}

uint64_t eng_acked(const struct run *r, uint32_t ch, uint64_t now)
{
    if (r->sc.role == SCENARIO_ROLE_SUBSCRIBE)
        return now ? engine_scheduled(r, ch, now - SPLIT_GRACE_NS)
                   : engine_scheduled(r, ch, UINT64_MAX);
    return atomic_load(&r->chan_acked[ch]);
}

void eng_ready(struct engine_thread *t, struct lclient *c, uint64_t now)
{
    hist_record(t->ready_lat[c->kind], now > c->tls_t0 ? now - c->tls_t0 : 0);
}

static uint64_t ud(int op, uint32_t i)
{
    return ((uint64_t)op << 32) | i;
}

uint64_t eng_rnd(struct engine *e)
{
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return e->rng * 2685821657736338717ull;
}

/* A failure before a client got going: counted in f (connect_failed,
 * refused, bad_status, protocol_errors) and, for a subscriber, in its kind's
 * connect_failed. */
static void retry_later(struct engine_thread *t, struct engine *e, struct lclient *c);

static void tls_fail(struct engine_thread *t, struct lclient *c, int reason);

void eng_fail_connect(struct engine_thread *t, struct lclient *c, _Atomic uint64_t *f)
{
    struct engine *e = t->priv;
    if (c->state == S_HEAD || c->state == S_STREAM)
        CNT(t, ended, 1);
    c->state = S_DEAD;
    if (c->attempts) { /* a reconnect that did not make it: try again later */
        CNT(t, reconnect_failed, 1);
        retry_later(t, e, c);
        return;
    }
    atomic_fetch_add_explicit(f, 1, memory_order_relaxed);
    if (c->kind < K_PUB)
        atomic_fetch_add_explicit(&t->c.kind[c->kind].connect_failed, 1, memory_order_relaxed);
}

static void fd_sqe(struct engine *e, struct io_uring_sqe *sqe, struct lclient *c)
{
    if (e->ring.feat & FEAT_DIRECT)
        sqe->flags |= IOSQE_FIXED_FILE;
    (void)c;
}

int eng_append(char **buf, uint32_t *len, uint32_t *cap, const char *p, size_t n)
{
    if (*len + n > *cap) {
        uint32_t ncap = *cap ? *cap : 1024;
        while (ncap < *len + n)
            ncap *= 2;
        char *b = realloc(*buf, ncap);
        if (!b)
            return -ENOMEM;
        *buf = b;
        *cap = ncap;
    }
    memcpy(*buf + *len, p, n);
    *len += (uint32_t)n;
    return 0;
}

/* Appends to c's send buffer. While a send is in flight the kernel may still
 * read that buffer (a send that waits for room is retried from the same
 * address), so growing it then moves to a new block and keeps the old one
 * until the send completes, instead of realloc freeing it under the kernel. */
int eng_tx_append(struct lclient *c, const char *p, size_t n)
{
    if ((c->flags & CF_SENDING) && !c->tls && !c->tx_old && c->txlen + n > c->txcap) {
        uint32_t ncap = c->txcap * 2;
        while (ncap < c->txlen + n)
            ncap *= 2;
        char *b = malloc(ncap);
        if (!b)
            return -ENOMEM;
        memcpy(b, c->tx, c->txlen);
        c->tx_old = c->tx;
        c->tx = b;
        c->txcap = ncap;
    }
    return eng_append(&c->tx, &c->txlen, &c->txcap, p, n);
}

/* Ends c's connection: closed by the server (by_server), or given up by
 * this side (a protocol error, a churn drop). A subscriber comes back later
 * when the scenario says reconnect = on. */
void eng_kill_client(struct engine_thread *t, struct lclient *c, int by_server)
{
    struct engine *e = t->priv;
    if (c->state == S_DEAD)
        return;
    if (c->state == S_HANDSHAKE) { /* the server gave up on the handshake without an alert */
        tls_fail(t, c, ENGINE_TLS_CLOSED);
        return;
    }
    if (by_server && !e->closing)
        atomic_fetch_add_explicit(&t->c.closed_by_server, 1, memory_order_relaxed);
    if (c->state == S_HEAD || c->state == S_STREAM)
        CNT(t, ended, 1);
    c->state = S_DEAD;
    retry_later(t, e, c);
}

/* TLS: encrypts c's plaintext (all of it) into its pending ciphertext.
 * Before the handshake is done the plaintext waits. A failure (out of
 * memory) shuts the socket down, so the receive ends and kills c. */
static void tls_seal(struct engine *e, struct lclient *c, uint32_t i)
{
    if (tls_conn_state(c->tls) != TLS_OPEN)
        return;
    struct iovec iov = {c->tx + c->txoff, c->txlen - c->txoff};
    if (tls_conn_write(c->tls, &iov, 1) < 0) {
        struct io_uring_sqe *sqe = ring_sqe(&e->ring);
        io_uring_prep_shutdown(sqe, c->fd, SHUT_RDWR);
        fd_sqe(e, sqe, c);
        sqe->user_data = ud(OP_IGNORE, i);
    }
    c->txoff = c->txlen = 0;
    if (c->kind != K_PUB) { /* subscribers send rarely: no idle buffer */
        free(c->tx);
        c->tx = NULL;
        c->txcap = 0;
    }
}

/* Sends what c has to send, unless a send is in flight already: its tx
 * bytes, or over TLS its pending ciphertext, which stays put until
 * tls_conn_sent() has covered it. */
void eng_submit_send(struct engine *e, struct lclient *c, uint32_t i)
{
    if ((c->flags & CF_SENDING) || c->state == S_DEAD)
        return;
    const char *p = c->tx + c->txoff;
    uint32_t n = c->txlen - c->txoff;
    if (c->tls) {
        if (n)
            tls_seal(e, c, i);
        span_t pend = tls_conn_pending(c->tls);
        p = pend.base;
        n = (uint32_t)pend.len;
    }
    if (n == 0)
        return;
    struct io_uring_sqe *sqe = ring_sqe(&e->ring);
    c->txinflight = n;
    io_uring_prep_send(sqe, c->fd, p, n, MSG_NOSIGNAL);
    fd_sqe(e, sqe, c);
    sqe->user_data = ud(OP_SEND, i);
    c->flags |= CF_SENDING;
}

/* Arms c's multishot receive unless it is armed already (a TLS client arms
 * it for the handshake, before its protocol starts). */
void eng_arm_recv(struct engine *e, struct lclient *c, uint32_t i)
{
    if (c->flags & CF_RECV)
        return;
    struct io_uring_sqe *sqe = ring_sqe(&e->ring);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RING_BGID;
    fd_sqe(e, sqe, c);
    sqe->user_data = ud(OP_RECV, i);
    c->flags |= CF_RECV;
}

/* ---- reconnects and churn ---- */

int eng_heap_push(struct dueheap *h, uint64_t due, uint32_t i)
{
    if (h->n == h->cap) {
        uint32_t ncap = h->cap ? h->cap * 2 : 64;
        struct due_ent *v = realloc(h->v, ncap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = ncap;
    }
    uint32_t k = h->n++;
    while (k > 0 && h->v[(k - 1) / 2].due > due) {
        h->v[k] = h->v[(k - 1) / 2];
        k = (k - 1) / 2;
    }
    h->v[k] = (struct due_ent){due, i};
    return 0;
}

/* Removes and returns the earliest entry; h must not be empty. */
struct due_ent eng_heap_pop(struct dueheap *h)
{
    struct due_ent top = h->v[0], x = h->v[--h->n];
    uint32_t k = 0, n = h->n;
    for (;;) {
        uint32_t l = 2 * k + 1, m = k;
        uint64_t md = x.due;
        if (l < n && h->v[l].due < md)
            m = l, md = h->v[l].due;
        if (l + 1 < n && h->v[l + 1].due < md)
            m = l + 1;
        if (m == k)
            break;
        h->v[k] = h->v[m];
        k = m;
    }
    if (n)
        h->v[k] = x;
    return top;
}

/* When the earliest entry is due; UINT64_MAX for none. */
uint64_t eng_heap_next(const struct dueheap *h)
{
    return h->n ? h->v[0].due : UINT64_MAX;
}

/* A uniform double in [0, 1). */
double eng_unif(struct engine *e)
{
    return (double)(eng_rnd(e) >> 11) * 0x1p-53;
}

/* c just died: with reconnect = on, a subscriber shuts its socket down (so
 * the server sees it go, and receives in flight end) and comes back after
 * backoff_ms, doubled for each failed try up to 64 times, drawn within
 * +-50% so a crowd dropped at once does not return at once. */
static void retry_later(struct engine_thread *t, struct engine *e, struct lclient *c)
{
    const struct scenario *sc = &t->run->sc;
    if (!sc->reconnect || c->kind >= K_PUB || e->closing)
        return;
    uint32_t i = (uint32_t)(c - e->cl);
    struct io_uring_sqe *sqe = ring_sqe(&e->ring);
    io_uring_prep_shutdown(sqe, c->fd, SHUT_RDWR);
    fd_sqe(e, sqe, c);
    sqe->user_data = ud(OP_IGNORE, i);
    uint64_t base = sc->backoff_ns << (c->attempts < 6 ? c->attempts : 6);
    if (c->attempts < 255)
        c->attempts++;
    c->due = now_ns() + (uint64_t)((double)base * (0.5 + eng_unif(e)));
    if (eng_heap_push(&e->dues, c->due, i) < 0)
        CNT(t, reconnect_failed, 1); /* out of memory: it stays down */
}

void eng_churn_later(struct engine_thread *t, struct engine *e, struct lclient *c, uint64_t now)
{
    uint64_t mean = t->run->sc.churn_ns;
    if (!mean)
        return;
    double u = eng_unif(e);
    c->due = now + (uint64_t)(-log(1 - u) * (double)mean); /* exponential, mean churn */
    eng_heap_push(&e->dues, c->due, (uint32_t)(c - e->cl));
}

static void open_client(struct engine_thread *t, struct engine *e, uint32_t i);

/* A new connection for dead client i. What it knows of its stream (its
 * position, its id offset) stays, so the check goes on where it stopped. */
static void reopen(struct engine_thread *t, struct engine *e, uint32_t i)
{
    struct lclient *c = &e->cl[i];
    if (!(e->ring.feat & FEAT_DIRECT))
        close(c->fd);
    c->rxlen = 0;
    c->txlen = c->txoff = 0;
    free(c->p); /* the SSE parser is made again on the 200 */
    c->p = NULL;
    c->flags &= CF_SUBBED | CF_ANCHORED | CF_SINCE | CF_HAVEID;
    CNT(t, reconnects, 1);
    open_client(t, e, i);
}

/* Reconnects and churn drops that are due. A dead client whose operations
 * have not all completed yet is looked at again a millisecond later. */
static void dues(struct engine_thread *t, struct engine *e, uint64_t now)
{
    int phase = atomic_load(&t->run->phase);
    while (eng_heap_next(&e->dues) <= now) {
        struct due_ent d = eng_heap_pop(&e->dues);
        struct lclient *c = &e->cl[d.i];
        if (c->due != d.due)
            continue; /* stale: the client moved on */
        if (c->state == S_HANDSHAKE) {
            tls_fail(t, c, ENGINE_TLS_TIMEOUT);
        } else if (c->state == S_DEAD && !e->closing) {
            if (c->flags & (CF_SENDING | CF_RECV)) {
                c->due = now + 1000000;
                eng_heap_push(&e->dues, c->due, d.i);
            } else {
                reopen(t, e, d.i);
            }
        } else if (c->state == S_STREAM && phase < PH_DRAIN && !e->closing) {
            CNT(t, churn_drops, 1);
            eng_kill_client(t, c, 0);
        }
    }
}

/* Opens client i: a socket in the ring's table, then an asynchronous
 * connect. */
static void open_client(struct engine_thread *t, struct engine *e, uint32_t i)
{
    struct run *r = t->run;
    struct lclient *c = &e->cl[i];
    /* A WebSocket publisher connects where WebSocket subscribers do. */
    int http_pub = c->kind == K_PUB && !r->sc.publish_ws;
    const struct sockaddr_storage *addr = http_pub            ? &r->pub_addr
                                          : c->kind == K_POLL ? &r->poll_addr
                                                              : &r->sub_addr;
    socklen_t alen = http_pub            ? r->pub_addrlen
                     : c->kind == K_POLL ? r->poll_addrlen
                                         : r->sub_addrlen;
    const struct scenario_url *url = http_pub            ? &r->sc.pub_url
                                     : c->kind == K_POLL ? &r->sc.poll_url
                                                         : &r->sc.sub_url;
    c->tls_t0 = now_ns();
    tls_conn_free(c->tls); /* a reconnect's old one: nothing is in flight now */
    c->tls = NULL;
    if (url->tls && !(c->tls = tls_conn_new_client(r->tls, url->host))) {
        eng_fail_connect(t, c, &t->c.connect_failed);
        return;
    }
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        eng_fail_connect(t, c, &t->c.connect_failed);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (r->sc.has_src && addr->ss_family == AF_INET) {
        /* Many source addresses: more than 64K connections to one server. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        uint32_t span = r->sc.src_last - r->sc.src_first + 1;
        src.sin_addr.s_addr =
            htonl(r->sc.src_first + (uint32_t)(i * (uint32_t)r->nthreads + (uint32_t)t->id) % span);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            close(fd);
            eng_fail_connect(t, c, &t->c.connect_failed);
            return;
        }
    }
    c->fd = fd;
    if (e->ring.feat & FEAT_DIRECT) {
        if (io_uring_register_files_update(&e->ring.uring, i, &fd, 1) != 1) {
            close(fd);
            eng_fail_connect(t, c, &t->c.connect_failed);
            return;
        }
        close(fd); /* the ring's table holds the socket now */
        c->fd = (int)i;
    }
    struct io_uring_sqe *sqe = ring_sqe(&e->ring);
    io_uring_prep_connect(sqe, c->fd, (const struct sockaddr *)addr, alen);
    fd_sqe(e, sqe, c);
    sqe->user_data = ud(OP_CONNECT, i);
    c->state = S_CONNECTING;
}

static void pub_answers(struct engine_thread *t, struct lclient *c, const char *p, size_t n)
{
    if (eng_append(&c->rx, &c->rxlen, &c->rxcap, p, n) < 0) {
        eng_kill_client(t, c, 0);
        return;
    }
    size_t off = 0;
    for (;;) {
        size_t head, body;
        if (!proto_next_response(c->rx + off, c->rxlen - off, &head, &body))
            break;
        int ok = proto_status_2xx(c->rx + off, head);
        uint64_t k = c->answered++;
        if (ok) {
            uint32_t ch = pub_chan(&t->run->sc, c->chan, c->nowned, k);
            atomic_store_explicit(&t->run->chan_acked[ch], k / c->nowned + 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&t->c.acked, 1, memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&t->c.publish_failed, 1, memory_order_relaxed);
        }
        off += head + body;
    }
    memmove(c->rx, c->rx + off, c->rxlen - off);
    c->rxlen -= (uint32_t)off;
}

/* Appends every request due by now (open loop: answers are not awaited). */
static void pub_due(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                    uint64_t now)
{
    struct run *r = t->run;
    char name[160], path[1200], head[1700];
    size_t size = r->sc.message_size;
    char *body = e->body;
    for (;;) {
        uint64_t due = pub_due_at(r, c->chan, c->nowned, c->k);
        if (due > now || due >= r->stop_ns)
            break;
        uint32_t ch = pub_chan(&r->sc, c->chan, c->nowned, c->k);
        uint64_t seq = c->k / c->nowned + 1;
        int bn = snprintf(body, size + 1, "s=%llu t=%llu c=%u ", (unsigned long long)seq,
                          (unsigned long long)(due + r->clock_off), ch);
        if ((size_t)bn < size)
            memcpy(body + bn, e->pad, size - (size_t)bn);
        if (r->sc.publish_ws) { /* one masked text frame on the channel's WebSocket */
            uint8_t hdr[WS_MAX_HEADER], mask[4];
            uint32_t m = (uint32_t)eng_rnd(e);
            memcpy(mask, &m, 4);
            size_t hl = ws_frame_header(hdr, WS_OP_TEXT, 1, 0, size, mask);
            ws_unmask(body, size, mask, 0); /* masking is the same XOR */
            atomic_store(&r->chan_sent[ch], seq);
            if (eng_tx_append(c, (const char *)hdr, hl) < 0 || eng_tx_append(c, body, size) < 0) {
                eng_kill_client(t, c, 0);
                return;
            }
            c->k++;
            atomic_fetch_add_explicit(&t->c.published, 1, memory_order_relaxed);
            continue;
        }
        scenario_channel_name(&r->sc, ch, name, sizeof(name));
        scenario_url_path(&r->sc.pub_url, name, path, sizeof(path));
        int hn = snprintf(head, sizeof(head),
                          "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          path, e->host_hdr, size);
        /* Announce before sending: see sse_bytes. */
        atomic_store(&r->chan_sent[ch], seq);
        if (eng_tx_append(c, head, (size_t)hn) < 0 || eng_tx_append(c, body, size) < 0) {
            eng_kill_client(t, c, 0);
            return;
        }
        c->k++;
        atomic_fetch_add_explicit(&t->c.published, 1, memory_order_relaxed);
    }
    eng_submit_send(e, c, i);
}

/* Connected (over TLS: the handshake is done): the kind's protocol starts. */
static void start_protocol(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                           uint64_t now)
{
    switch (c->kind) {
    case K_SSE:
        proto_start_sse(t, e, c, i);
        break;
    case K_WS:
        proto_start_ws(t, e, c, i);
        break;
    case K_PUB:
        if (t->run->sc.publish_ws) {
            proto_start_ws(t, e, c, i); /* S_STREAM on its 101 */
            break;
        }
        c->state = S_STREAM;
        eng_arm_recv(e, c, i);
        eng_ready(t, c, now);
        break;
    case K_LP: /* subscribed once asked: its first answer sets the baseline */
        c->state = S_STREAM;
        eng_arm_recv(e, c, i);
        proto_poll_request(t, e, c, i, now);
        eng_ready(t, c, now);
        if (!c->attempts) /* else a reconnect: it asks with since as before */
            KCNT(t, c, subscribed, subscribed, 1);
        c->attempts = 0;
        eng_churn_later(t, e, c, now);
        break;
    case K_POLL: /* the first poll now, for the baseline */
        c->state = S_STREAM;
        eng_arm_recv(e, c, i);
        proto_poll_request(t, e, c, i, now);
        c->attempts = 0;
        eng_churn_later(t, e, c, now);
        break;
    }
}

/* Plaintext bytes from the server, to the kind's handler. */
static void got_bytes(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                      const char *b, size_t n, uint64_t now)
{
    if (c->kind == K_SSE)
        proto_sse_bytes(t, e, c, b, n, now);
    else if (c->kind == K_WS)
        proto_ws_bytes(t, e, c, i, b, n, now);
    else if (c->kind == K_PUB && !t->run->sc.publish_ws)
        pub_answers(t, c, b, n);
    else if (c->kind == K_PUB)
        proto_ws_bytes(t, e, c, i, b, n, now);
    else
        proto_poll_bytes(t, e, c, i, b, n, now);
}

/* ---- TLS ---- */

static const char *const tls_extra_names[] = {"timeout", "closed"};

const char *engine_tls_reason_name(int reason)
{
    if (reason >= TLS_ERR__COUNT && reason < ENGINE_TLS_REASONS)
        return tls_extra_names[reason - TLS_ERR__COUNT];
    return tls_error_name((enum tls_error)reason);
}

/* A handshake that did not make it: counted by kind and reason, and as a
 * connect failure of the kind. The thread keeps the first one's details for
 * the final message. */
static void tls_fail(struct engine_thread *t, struct lclient *c, int reason)
{
    if (reason <= TLS_ERR_NONE || reason >= ENGINE_TLS_REASONS)
        reason = TLS_ERR_OTHER;
    atomic_fetch_add_explicit(&t->c.tls[c->kind].failed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->c.tls_errors[reason], 1, memory_order_relaxed);
    if (!t->tls_failed) {
        char d[160] = "";
        if (reason < TLS_ERR__COUNT)
            tls_conn_error_detail(c->tls, d, sizeof(d));
        snprintf(t->tls_first_error, sizeof(t->tls_first_error), "%s%s%s",
                 engine_tls_reason_name(reason), d[0] ? ": " : "", d);
        t->tls_failed = 1;
    }
    eng_fail_connect(t, c, &t->c.connect_failed);
}

/* The handshake is done: counted, timed, and the protocol starts. */
static void tls_open(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                     uint64_t now)
{
    struct engine_tls_counts *k = &t->c.tls[c->kind];
    atomic_fetch_add_explicit(&k->handshakes, 1, memory_order_relaxed);
    if (tls_conn_resumed(c->tls))
        atomic_fetch_add_explicit(&k->resumed, 1, memory_order_relaxed);
    hist_record(t->tls_lat[c->kind], now > c->tls_t0 ? now - c->tls_t0 : 0);
    c->due = 0; /* the handshake timeout's heap entry is stale now */
    CNT(t, connected, 1);
    start_protocol(t, e, c, i, now);
}

/* Ciphertext from the server: advances the handshake, then decrypts into
 * the kind's handler. Whatever became pending (the client's Finished, a
 * request the protocol queued, an answer to a KeyUpdate) is sent. */
static void tls_bytes(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                      const char *b, size_t n, uint64_t now)
{
    if (tls_conn_input(c->tls, span_of(b, n)) < 0) {
        if (c->state == S_HANDSHAKE) {
            tls_fail(t, c, (int)tls_conn_error(c->tls));
        } else {
            CNT(t, protocol_errors, 1);
            eng_kill_client(t, c, 0);
        }
        return;
    }
    if (c->state == S_HANDSHAKE) {
        if (tls_conn_state(c->tls) != TLS_OPEN) {
            eng_submit_send(e, c, i);
            return;
        }
        tls_open(t, e, c, i, now);
    }
    ssize_t r = 0;
    while (c->state != S_DEAD && (r = tls_conn_read(c->tls, e->plain, PLAIN_MAX)) > 0)
        got_bytes(t, e, c, i, e->plain, (size_t)r, now);
    if (c->state == S_DEAD)
        return;
    if (r < 0) {
        CNT(t, protocol_errors, 1);
        eng_kill_client(t, c, 0);
        return;
    }
    if (tls_conn_state(c->tls) == TLS_PEER_CLOSED) {
        eng_kill_client(t, c, 1);
        return;
    }
    eng_submit_send(e, c, i);
}

static void on_cqe(struct engine_thread *t, struct engine *e, struct io_uring_cqe *cqe,
                   uint64_t now)
{
    int op = (int)(cqe->user_data >> 32);
    uint32_t i = (uint32_t)cqe->user_data;
    if (op == OP_IGNORE)
        return;
    struct lclient *c = &e->cl[i];
    int res = cqe->res;
    switch (op) {
    case OP_CONNECT:
        if (res < 0) {
            eng_fail_connect(t, c, res == -ECONNREFUSED ? &t->c.refused : &t->c.connect_failed);
            return;
        }
        hist_record(t->connect_lat[c->kind], now > c->tls_t0 ? now - c->tls_t0 : 0);
        if (c->tls) { /* the ClientHello first; the protocol once it is done */
            c->state = S_HANDSHAKE;
            eng_arm_recv(e, c, i);
            eng_submit_send(e, c, i);
            c->due = now + ENGINE_TLS_TIMEOUT_NS;
            if (eng_heap_push(&e->dues, c->due, i) < 0)
                tls_fail(t, c, TLS_ERR_NOMEM);
            break;
        }
        CNT(t, connected, 1);
        start_protocol(t, e, c, i, now);
        break;
    case OP_SEND:
        c->flags &= ~CF_SENDING;
        free(c->tx_old);
        c->tx_old = NULL;
        if (res < 0) {
            eng_kill_client(t, c, 1);
            return;
        }
        if (c->tls) {
            tls_conn_sent(c->tls, (size_t)res);
        } else if ((c->txoff += (uint32_t)res) == c->txlen) {
            c->txoff = c->txlen = 0;
            if (c->kind != K_PUB) { /* subscribers send rarely: no idle buffer */
                free(c->tx);
                c->tx = NULL;
                c->txcap = 0;
            }
        }
        eng_submit_send(e, c, i);
        break;
    case OP_RECV:
        if (!(cqe->flags & IORING_CQE_F_MORE))
            c->flags &= ~CF_RECV;
        if (res > 0) {
            uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
            const char *b = ring_buf(&e->ring, bid);
            if (c->state != S_DEAD && c->tls)
                tls_bytes(t, e, c, i, b, (size_t)res, now);
            else if (c->state != S_DEAD)
                got_bytes(t, e, c, i, b, (size_t)res, now);
            ring_buf_recycle(&e->ring, bid);
        } else if (res == 0 || (res < 0 && res != -ENOBUFS)) {
            eng_kill_client(t, c, 1);
            return;
        }
        if (!(c->flags & CF_RECV) && c->state != S_DEAD)
            eng_arm_recv(e, c, i);
        break;
    }
}

static void tick(struct engine_thread *t, struct engine *e, uint64_t now)
{
    if (now < e->next_tick)
        return;
    e->next_tick = now + 1000000000ull;
    atomic_store_explicit(&t->c.p99_ns,
                          hist_count(e->interval) ? hist_value_at(e->interval, 0.99) : 0,
                          memory_order_relaxed);
    hist_reset(e->interval);
}

/* hdr_log: at each second's end after measure_ns, second k is handed to
 * the main thread and recording moves to the other half (see engine.h). */
static void sec_tick(struct engine_thread *t, uint64_t now)
{
    struct run *r = t->run;
    if (!t->sec[0] || atomic_load(&r->phase) < PH_WARMUP)
        return;
    uint64_t k = atomic_load_explicit(&t->sec_done, memory_order_relaxed);
    if (now < r->measure_ns + (k + 1) * 1000000000ull)
        return;
    if (atomic_load_explicit(&t->sec_taken, memory_order_acquire) < k)
        return; /* the other half still holds second k - 1 */
    atomic_store_explicit(&t->sec_done, k + 1, memory_order_release);
}

static void process_cqes(struct engine_thread *t, struct engine *e)
{
    uint64_t now = now_ns();
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&e->ring.uring, head, cqe)
    {
        on_cqe(t, e, cqe, now);
        n++;
    }
    io_uring_cq_advance(&e->ring.uring, n);
}

/* The run is over: each WebSocket subscriber sends a close 1000 and waits
 * (up to a second in all) for the server's, so the server sees clean
 * closes. */
static void goodbye(struct engine_thread *t, struct engine *e)
{
    e->closing = 1;
    int open = 0;
    for (uint32_t i = 0; i < e->ncl; i++) {
        struct lclient *c = &e->cl[i];
        if (c->kind != K_WS || c->state != S_STREAM || (c->flags & CF_CLOSE_TX))
            continue;
        c->flags |= CF_CLOSE_TX | CF_BYE;
        proto_ws_control(e, c, i, WS_OP_CLOSE, SPAN_NULL);
        open++;
    }
    uint64_t deadline = now_ns() + 1000000000ull;
    while (open && now_ns() < deadline) {
        struct __kernel_timespec ts = {0, 10000000};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&e->ring.uring, &cqe, 1, &ts, NULL);
        process_cqes(t, e);
        open = 0;
        for (uint32_t i = 0; i < e->ncl; i++)
            if (e->cl[i].kind == K_WS && e->cl[i].state == S_STREAM &&
                !(e->cl[i].flags & CF_CLOSE_RX))
                open++;
    }
    for (uint32_t i = 0; i < e->ncl; i++)
        if (e->cl[i].kind == K_WS && (e->cl[i].flags & CF_CLOSE_RX))
            CNT(t, ws_closes, 1);
}

static void *engine_main(void *arg)
{
    struct engine_thread *t = arg;
    struct engine *e = t->priv;
    struct run *r = t->run;
    /* The ring is made here: SINGLE_ISSUER wants its only submitter. */
    /* A fan-out lands on many subscribers at once, one buffer each: with too
     * few, multishot receives end in ENOBUFS and are re-armed (correct, but
     * slower); with too many they are most of the memory per client at
     * 100,000 clients. A quarter of the clients, 512 to 8192 buffers, of 512
     * bytes for small messages. */
    uint32_t nbufs = 512;
    while (nbufs < e->ncl / 4 && nbufs < 8192)
        nbufs *= 2;
    struct ring_params rp = {.allowed = FEAT_ALL,
                             .sq_entries = 4096,
                             .nfiles = e->ncl + 16,
                             .nbufs = nbufs,
                             .bufsize = r->sc.message_size <= 256 ? 512 : 1024};
    int rc = ring_init(&e->ring, &rp);
    if (rc == 0 && !(e->ring.feat & FEAT_RECV_MULTISHOT))
        rc = -EOPNOTSUPP;
    if (rc == 0 && (e->ring.feat & FEAT_DIRECT) && e->ring.nfiles < e->ncl)
        rc = -EMFILE;
    atomic_store(&e->ready, rc < 0 ? rc : 1);
    if (rc < 0)
        return NULL;
    double per_thread_ramp = r->sc.ramp > 0 ? r->sc.ramp / r->nthreads : 0;
    uint64_t ramp_start = now_ns();
    for (;;) {
        int phase = atomic_load(&r->phase);
        uint64_t now = now_ns();
        if (phase == PH_DONE)
            break;
        /* Open connections at the ramp's pace, publishers last: one idle
         * through a long ramp would meet the server's header timeout. */
        uint32_t allowed = e->ncl;
        if (per_thread_ramp > 0) {
            double n = (double)(now - ramp_start) / 1e9 * per_thread_ramp + 1;
            allowed = n < e->ncl ? (uint32_t)n : e->ncl;
        }
        while (e->nopened < allowed) {
            uint32_t i = (e->nopened++ + e->npub) % e->ncl;
            if (e->cl[i].state != S_DEAD) /* publishers with nothing to publish stay unopened */
                open_client(t, e, i);
        }
        if (phase == PH_WARMUP || phase == PH_MEASURE || phase == PH_DRAIN)
            for (uint32_t i = 0; i < e->npub; i++)
                if (e->cl[i].state == S_STREAM)
                    pub_due(t, e, &e->cl[i], i, now);
        proto_polls_due(t, e, now);
        dues(t, e, now);
        tick(t, e, now);
        sec_tick(t, now);
        /* Sleep until the next publish or poll is due, at most 10 ms. */
        uint64_t wait = 10000000;
        if (e->nopened < e->ncl)
            wait = 1000000;
        for (uint32_t i = 0; i < e->npub; i++) {
            if (e->cl[i].state != S_STREAM)
                continue;
            uint64_t due = pub_due_at(r, e->cl[i].chan, e->cl[i].nowned, e->cl[i].k);
            if ((phase == PH_WARMUP || phase == PH_MEASURE) && due > now && due - now < wait)
                wait = due - now;
        }
        uint64_t next = eng_heap_next(&e->polls) < eng_heap_next(&e->dues)
                            ? eng_heap_next(&e->polls)
                            : eng_heap_next(&e->dues);
        if (next > now && next - now < wait)
            wait = next - now;
        /* Wake for a batch of completions or within 1 ms, not for each one:
         * a wake-up per delivery costs the sending server more than the send
         * (it is charged to the sender), and that would skew its figures.
         * The latency this adds is at most the 1 ms. */
        if (wait > 1000000)
            wait = 1000000;
        struct __kernel_timespec ts = {(long long)(wait / 1000000000),
                                       (long long)(wait % 1000000000)};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&e->ring.uring, &cqe, WAIT_BATCH, &ts, NULL);
        process_cqes(t, e);
    }
    goodbye(t, e);
    tls_thread_done();
    return NULL;
}

/* Message filler that compresses about like JSON text (deflate: about 3:1),
 * not like a run of one letter (100:1), so permessage-deflate figures mean
 * something: words from a small vocabulary, picked by a fixed generator, with
 * nothing SSE or JSON would have to escape. */
static void make_pad(char *out, size_t n)
{
    static const char *const words[] = {
        "id",     "user",  "name",    "value", "count", "status", "ok",      "true",
        "false",  "null",  "price",   "time",  "room",  "text",   "message", "type",
        "update", "delta", "score",   "level", "item",  "list",   "data",    "event",
        "alpha",  "bravo", "charlie", "delta", "echo",  "fox",    "golf",    "hotel"};
    uint64_t x = 0x2545f4914f6cdd1dull;
    size_t k = 0;
    while (k < n) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        uint64_t r = x * 2685821657736338717ull;
        const char *w = words[(r >> 59) & 31];
        char num[24];
        int nn = snprintf(num, sizeof(num), "%s:%u,", w, (unsigned)(r >> 40) % 1000);
        for (int j = 0; j < nn && k < n; j++)
            out[k++] = num[j];
    }
}

static void host_header(const struct scenario_url *u, char *out, size_t cap)
{
    int v6 = strchr(u->host, ':') != NULL;
    if (u->port == (u->tls ? 443 : 80))
        snprintf(out, cap, v6 ? "[%s]" : "%s", u->host);
    else
        snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", u->host, u->port);
}

int engine_prepare(struct run *r)
{
    const struct scenario *sc = &r->sc;
    if (!sc->subs_max)
        return 0;
    r->chan_cum = malloc(sc->channels * sizeof(*r->chan_cum));
    if (!r->chan_cum)
        return -ENOMEM;
    uint64_t sum = 0, span = sc->subs_max - sc->subs_min + 1;
    for (uint32_t c = 0; c < sc->channels; c++) {
        sum += sc->subs_min + mix64(sc->seed * 0x9e3779b97f4a7c15ull + c) % span;
        r->chan_cum[c] = sum;
    }
    return 0;
}

/* subs_per_channel: the channel of the run's subscriber g (all kinds in
 * order: SSE, WebSocket, long poll, short poll). g is first shuffled over
 * the subscribers (an affine permutation) so that each channel gets a mix of
 * kinds, then channels are filled in order, each with its drawn number;
 * subscribers beyond the draw start over at channel 0. */
static uint32_t sub_channel(const struct run *r, uint64_t g)
{
    const struct scenario *sc = &r->sc;
    uint64_t n = (uint64_t)sc->sse + sc->ws + sc->longpoll + sc->poll;
    uint64_t a = 1 + mix64(sc->seed) % (n > 1 ? n - 1 : 1);
    while (n > 1 && gcd64(a, n) != 1)
        a = a + 1 < n ? a + 1 : 1;
    uint64_t total = r->chan_cum[sc->channels - 1];
    if (total == 0)
        return (uint32_t)(g % sc->channels); /* subs_per_channel = 0-0 is refused; defensive */
    uint64_t x = (uint64_t)((unsigned __int128)a * g % n) % total;
    uint32_t lo = 0, hi = sc->channels - 1; /* the first c with chan_cum[c] > x */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->chan_cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int engine_start(struct run *r, struct engine_thread *t)
{
    struct engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    t->priv = e;
    t->lat = hist_new();
    e->interval = hist_new();
    if (!t->lat || !e->interval)
        return -ENOMEM;
    const struct scenario *sc = &r->sc;
    /* Publishers j = id, id + T, ...; subscribers likewise. A split run's
     * process has only its side (role), numbered as in the whole run. */
    uint32_t npub = 0, nsub = 0, step = (uint32_t)r->nthreads, id = (uint32_t)t->id;
    uint32_t nkind[LK_N] = {sc->sse, sc->ws, sc->longpoll, sc->poll};
    uint32_t first_pub = sc->role == SCENARIO_ROLE_SUBSCRIBE ? sc->publishers : id;
    if (sc->role == SCENARIO_ROLE_PUBLISH)
        memset(nkind, 0, sizeof(nkind));
    for (uint32_t j = first_pub; j < sc->publishers; j += step)
        npub++;
    for (int kd = 0; kd < LK_N; kd++)
        for (uint32_t j = id; j < nkind[kd]; j += step)
            nsub++;
    e->npub = npub;
    e->ncl = npub + nsub;
    e->cl = calloc(e->ncl ? e->ncl : 1, sizeof(*e->cl));
    if (!e->cl)
        return -ENOMEM;
    uint32_t k = 0;
    for (uint32_t j = first_pub; j < sc->publishers; j += step, k++) {
        struct lclient *c = &e->cl[k];
        c->kind = K_PUB;
        c->chan = j;
        c->nowned = pub_owned(sc, j);
    }
    uint64_t seed = sc->seed * 2654435761u + (uint64_t)t->id;
    /* Subscribers by kind, short pollers last; each kind spread on its own
     * (with subs_per_channel, all kinds together: see sub_channel). */
    uint64_t before = 0;
    for (int kd = 0; kd < LK_N; kd++) {
        for (uint32_t j = id; j < nkind[kd]; j += step, k++) {
            struct lclient *c = &e->cl[k];
            c->kind = (uint8_t)kd;
            if (r->chan_cum) {
                c->chan = sub_channel(r, before + j);
            } else if (sc->spread == SCENARIO_SPREAD_ONE) {
                c->chan = 0;
            } else if (sc->spread == SCENARIO_SPREAD_RANDOM) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                c->chan = (uint32_t)((seed >> 33) % sc->channels);
            } else {
                c->chan = j % sc->channels;
            }
        }
        before += nkind[kd];
    }
    e->rng = (seed | 1) * 0x9e3779b97f4a7c15ull;
    wsdeflate_init(&e->z);
    for (uint32_t i = 0; i < e->npub; i++)
        if (e->cl[i].nowned == 0 || sc->publish_rate <= 0)
            e->cl[i].state = S_DEAD; /* nothing to publish */
    e->body = malloc(sc->message_size + 1);
    e->pad = malloc(sc->message_size);
    if (!e->body || !e->pad)
        return -ENOMEM;
    if (sc->hdr_log[0]) { /* per-second histograms for the interval log */
        t->sec[0] = hist_new();
        t->sec[1] = hist_new();
        if (!t->sec[0] || !t->sec[1])
            return -ENOMEM;
    }
    for (int kd = 0; kd < ENGINE_TLS_KINDS; kd++)
        if (!(t->connect_lat[kd] = hist_new()) || !(t->ready_lat[kd] = hist_new()))
            return -ENOMEM;
    if (r->tls) {
        e->plain = malloc(PLAIN_MAX);
        if (!e->plain)
            return -ENOMEM;
        for (int kd = 0; kd < ENGINE_TLS_KINDS; kd++)
            if (!(t->tls_lat[kd] = hist_new()))
                return -ENOMEM;
    }
    make_pad(e->pad, sc->message_size);
    host_header(&sc->sub_url, e->host_hdr, sizeof(e->host_hdr));
    host_header(&sc->poll_url, e->poll_host_hdr, sizeof(e->poll_host_hdr));
    e->next_tick = now_ns() + 1000000000ull;
    if (pthread_create(&t->thread, NULL, engine_main, t) != 0)
        return -EAGAIN;
    int ready;
    while ((ready = atomic_load(&e->ready)) == 0)
        usleep(1000);
    if (ready < 0) {
        pthread_join(t->thread, NULL);
        return ready;
    }
    return 0;
}

void engine_join(struct engine_thread *t)
{
    pthread_join(t->thread, NULL);
}

void engine_final_check(struct engine_thread *t)
{
    struct engine *e = t->priv;
    /* What a subscribe-only process expects (engine_scheduled) must be what
     * the publishers sent: checked here on every run whose publishers lived
     * to the end, so the two cannot drift apart unseen. */
    for (uint32_t i = 0; i < e->npub; i++) {
        const struct lclient *c = &e->cl[i];
        if (c->state != S_STREAM)
            continue;
        for (uint32_t q = 0; q < c->nowned; q++) {
            uint32_t ch = c->chan + q * t->run->sc.publishers;
            uint64_t sent = atomic_load(&t->run->chan_sent[ch]);
            if (sent != engine_scheduled(t->run, ch, UINT64_MAX))
                FATAL("ringload bug: channel %u: sent %llu, the schedule says %llu", ch,
                      (unsigned long long)sent,
                      (unsigned long long)engine_scheduled(t->run, ch, UINT64_MAX));
        }
    }
    for (uint32_t i = e->npub; i < e->ncl; i++) {
        struct lclient *c = &e->cl[i];
        /* Pushed kinds (SSE, WebSocket, long poll) have had the drain to get
         * everything acknowledged; a short poller what its last answered
         * request could see. */
        uint64_t acked = c->kind == K_POLL ? c->acked_checked : eng_acked(t->run, c->chan, 0);
        if (!(c->flags & (CF_SUBBED | CF_ANCHORED)))
            continue; /* never subscribed, or a poller that never saw a message */
        if (acked < c->next_seq)
            continue;
        if (c->state == S_DEAD && t->run->sc.reconnect)
            CNT(t, missed_offline, acked - c->next_seq + 1); /* the run ended while it was away */
        else if (t->run->drain_cut && (c->state != S_DEAD || (c->flags & CF_BYE)))
            /* Still on its way; or a WebSocket subscriber that ended its own
             * connection with a close at the end of the run (goodbye) while
             * it was still coming. */
            CNT(t, undelivered, acked - c->next_seq + 1);
        else
            KCNT(t, c, lost, lost, acked - c->next_seq + 1);
    }
    /* The ring first: no send may be left reading a buffer freed below. */
    if (atomic_load(&e->ready) == 1)
        ring_exit(&e->ring);
    for (uint32_t i = 0; i < e->ncl; i++) {
        tls_conn_free(e->cl[i].tls);
        free(e->cl[i].rx);
        free(e->cl[i].tx);
        free(e->cl[i].tx_old);
        free(e->cl[i].p);
    }
    free(e->cl);
    free(e->polls.v);
    free(e->dues.v);
    wsdeflate_destroy(&e->z);
    free(e->body);
    free(e->pad);
    free(e->plain);
    hist_free(e->interval);
    free(e);
    t->priv = NULL;
}
