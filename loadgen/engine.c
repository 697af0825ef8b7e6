/*
 * engine.c: one ringload thread: its io_uring, its clients (SSE subscribers
 * and publishers), its latency histogram. Sockets are made with socket(),
 * bound and moved into the ring's direct-descriptor table, so a thread holds
 * up to `ulimit -n` connections of its own and the process' file table stays
 * nearly empty. Receives are multishot on the ring's provided buffers.
 *
 * Checks: publisher j owns channels j, j+P, j+2P, ... and sends each of them
 * messages with sequence 1, 2, 3, ... (its only source), so every subscriber
 * knows what must come: each sequence from its baseline on, exactly once, in
 * order, with a server id that moves in step. A message carries its sequence
 * and intended send time ("s=SEQ t=NS c=CHAN " padded with 'x').
 */
#include "engine.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ring.h"
#include "sseparse.h"
#include "util.h"

enum { K_SSE = 1, K_PUB };
enum { S_IDLE, S_CONNECTING, S_HEAD, S_STREAM, S_DEAD };
enum { OP_CONNECT = 1, OP_SEND, OP_RECV, OP_IGNORE };
#define CF_SENDING 1u
#define CF_RECV 2u
#define HEAD_MAX 8192

struct lclient {
    uint8_t kind, state, flags;
    uint32_t chan;       /* SSE: its channel; publisher: its index j */
    int fd;              /* direct slot, or a descriptor without FEAT_DIRECT */
    char *rx;            /* response head, then (publisher) answers */
    uint32_t rxlen, rxcap;
    char *tx;            /* bytes to send */
    uint32_t txlen, txcap, txoff, txinflight;
    /* SSE */
    struct sse_parser *p;
    uint64_t baseline, next_seq, id_offset;
    uint8_t have_offset;
    /* publisher */
    uint32_t nowned;
    uint64_t k, answered; /* requests scheduled, answers read */
};

struct engine {
    struct ring ring;
    struct lclient *cl;
    uint32_t ncl, nopened;
    uint32_t npub;        /* the first npub clients are publishers */
    struct hist *interval;
    uint64_t next_tick;
    char host_hdr[300];
    char *body;           /* a message being built */
    _Atomic int ready;    /* 1 once the ring is up, or a negative errno */
};

/* Each channel gets publish_rate / channels messages per second, so a
 * publisher owning nowned of them sends one every period. */
static uint64_t pub_period(const struct run *r, const struct lclient *c)
{
    return (uint64_t)(1e9 * r->sc.channels / (r->sc.publish_rate * c->nowned));
}

static uint64_t ud(int op, uint32_t i)
{
    return ((uint64_t)op << 32) | i;
}

static void fd_sqe(struct engine *e, struct io_uring_sqe *sqe, struct lclient *c)
{
    if (e->ring.feat & FEAT_DIRECT)
        sqe->flags |= IOSQE_FIXED_FILE;
    (void)c;
}

static int append(char **buf, uint32_t *len, uint32_t *cap, const char *p, size_t n)
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

static void kill_client(struct engine_thread *t, struct lclient *c, int by_server)
{
    if (c->state == S_DEAD)
        return;
    if (by_server)
        atomic_fetch_add_explicit(&t->c.closed_by_server, 1, memory_order_relaxed);
    c->state = S_DEAD;
}

static void submit_send(struct engine *e, struct lclient *c, uint32_t i)
{
    if ((c->flags & CF_SENDING) || c->txoff == c->txlen || c->state == S_DEAD)
        return;
    struct io_uring_sqe *sqe = ring_sqe(&e->ring);
    c->txinflight = c->txlen - c->txoff;
    io_uring_prep_send(sqe, c->fd, c->tx + c->txoff, c->txinflight, MSG_NOSIGNAL);
    fd_sqe(e, sqe, c);
    sqe->user_data = ud(OP_SEND, i);
    c->flags |= CF_SENDING;
}

static void arm_recv(struct engine *e, struct lclient *c, uint32_t i)
{
    struct io_uring_sqe *sqe = ring_sqe(&e->ring);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RING_BGID;
    fd_sqe(e, sqe, c);
    sqe->user_data = ud(OP_RECV, i);
    c->flags |= CF_RECV;
}

/* Opens client i: a socket in the ring's table, then an asynchronous
 * connect. */
static void open_client(struct engine_thread *t, struct engine *e, uint32_t i)
{
    struct run *r = t->run;
    struct lclient *c = &e->cl[i];
    const struct sockaddr_storage *addr = c->kind == K_PUB ? &r->pub_addr : &r->sub_addr;
    socklen_t alen = c->kind == K_PUB ? r->pub_addrlen : r->sub_addrlen;
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        atomic_fetch_add_explicit(&t->c.connect_failed, 1, memory_order_relaxed);
        c->state = S_DEAD;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (r->sc.has_src && addr->ss_family == AF_INET) {
        /* Many source addresses: more than 64K connections to one server. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        uint32_t span = r->sc.src_last - r->sc.src_first + 1;
        src.sin_addr.s_addr = htonl(r->sc.src_first + (uint32_t)(i * (uint32_t)r->nthreads + (uint32_t)t->id) % span);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            close(fd);
            atomic_fetch_add_explicit(&t->c.connect_failed, 1, memory_order_relaxed);
            c->state = S_DEAD;
            return;
        }
    }
    c->fd = fd;
    if (e->ring.feat & FEAT_DIRECT) {
        if (io_uring_register_files_update(&e->ring.uring, i, &fd, 1) != 1) {
            close(fd);
            atomic_fetch_add_explicit(&t->c.connect_failed, 1, memory_order_relaxed);
            c->state = S_DEAD;
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

static void start_sse(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i)
{
    char name[160], path[1200], req[1700];
    scenario_channel_name(&t->run->sc, c->chan, name, sizeof(name));
    scenario_url_path(&t->run->sc.sub_url, name, path, sizeof(path));
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path,
                     e->host_hdr);
    append(&c->tx, &c->txlen, &c->txcap, req, (size_t)n);
    c->state = S_HEAD;
    submit_send(e, c, i);
    arm_recv(e, c, i);
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

static void on_event(struct engine_thread *t, struct engine *e, struct lclient *c,
                     const struct sse_event *ev, uint64_t now)
{
    struct engine_counts *k = &t->c;
    if (span_eq(ev->type, SPAN_LIT("gap"))) {
        atomic_fetch_add_explicit(&k->server_gaps, 1, memory_order_relaxed);
        return;
    }
    uint64_t seq, tns, id = 0;
    if (parse_payload(ev->data, &seq, &tns) < 0) {
        atomic_fetch_add_explicit(&k->protocol_errors, 1, memory_order_relaxed);
        return;
    }
    for (size_t i = 0; i < ev->id.len; i++)
        id = id * 10 + (uint64_t)(ev->id.base[i] - '0');
    atomic_fetch_add_explicit(&k->deliveries, 1, memory_order_relaxed);
    if (seq < c->baseline) {
        atomic_fetch_add_explicit(&k->early, 1, memory_order_relaxed);
        return;
    }
    if (seq == c->next_seq) {
        c->next_seq++;
    } else if (seq > c->next_seq) {
        atomic_fetch_add_explicit(&k->lost, seq - c->next_seq, memory_order_relaxed);
        c->next_seq = seq + 1;
    } else {
        atomic_fetch_add_explicit(&k->reordered, 1, memory_order_relaxed);
        return;
    }
    if (!c->have_offset) {
        c->id_offset = id - seq;
        c->have_offset = 1;
    } else if (id - seq != c->id_offset) {
        atomic_fetch_add_explicit(&k->id_mismatch, 1, memory_order_relaxed);
    }
    if (tns >= t->run->measure_ns && now >= tns) {
        hist_record(t->lat, now - tns);
        hist_record(e->interval, now - tns);
        atomic_fetch_add_explicit(&k->measured, 1, memory_order_relaxed);
    }
}

/* The status line of a response head: 1 for 200, 0 otherwise. */
static int status_ok(const char *p, size_t n)
{
    return n >= 12 && (memcmp(p, "HTTP/1.1 200", 12) == 0 || memcmp(p, "HTTP/1.0 200", 12) == 0);
}

/* Length of the response head in p[0..n) through its blank line, 0 if the
 * head is not complete yet. */
static size_t head_end(const char *p, size_t n)
{
    const char *e = memmem(p, n, "\r\n\r\n", 4);
    return e ? (size_t)(e - p) + 4 : 0;
}

static void sse_bytes(struct engine_thread *t, struct engine *e, struct lclient *c, const char *p,
                      size_t n, uint64_t now)
{
    if (c->state == S_HEAD) {
        size_t old = c->rxlen;
        if (append(&c->rx, &c->rxlen, &c->rxcap, p, n) < 0 || c->rxlen > HEAD_MAX) {
            atomic_fetch_add_explicit(&t->c.protocol_errors, 1, memory_order_relaxed);
            kill_client(t, c, 0);
            return;
        }
        size_t head = head_end(c->rx, c->rxlen);
        if (!head)
            return;
        if (!status_ok(c->rx, c->rxlen)) {
            atomic_fetch_add_explicit(&t->c.bad_status, 1, memory_order_relaxed);
            kill_client(t, c, 0);
            return;
        }
        size_t skip = head - old; /* bytes of this chunk that were head */
        p += skip;
        n -= skip;
        free(c->rx);
        c->rx = NULL;
        c->rxlen = c->rxcap = 0;
        size_t cap = t->run->sc.message_size + 256;
        c->p = malloc(sizeof(*c->p) + cap);
        if (!c->p) {
            kill_client(t, c, 0);
            return;
        }
        sse_parse_init(c->p, (char *)(c->p + 1), cap);
        /* Publishers announce a sequence before sending it, so everything
         * after this read reaches the server after our subscription. */
        c->baseline = atomic_load(&t->run->chan_sent[c->chan]) + 1;
        c->next_seq = c->baseline;
        c->state = S_STREAM;
        atomic_fetch_add_explicit(&t->c.subscribed, 1, memory_order_relaxed);
    }
    while (n > 0) {
        struct sse_event ev;
        size_t used;
        int r = sse_parse(c->p, p, n, &used, &ev);
        if (r < 0) {
            atomic_fetch_add_explicit(&t->c.protocol_errors, 1, memory_order_relaxed);
            kill_client(t, c, 0);
            return;
        }
        if (r == SSE_PARSE_EVENT)
            on_event(t, e, c, &ev, now);
        p += used;
        n -= used;
    }
}

/* Publisher j's owned channels are j, j+P, ...: request k goes to channel
 * j + (k mod nowned) * P with sequence k / nowned + 1. */
static uint32_t pub_chan(struct engine_thread *t, struct lclient *c, uint64_t k)
{
    return c->chan + (uint32_t)(k % c->nowned) * t->run->sc.publishers;
}

static void pub_answers(struct engine_thread *t, struct lclient *c, const char *p, size_t n)
{
    if (append(&c->rx, &c->rxlen, &c->rxcap, p, n) < 0) {
        kill_client(t, c, 0);
        return;
    }
    size_t off = 0;
    for (;;) {
        size_t head = head_end(c->rx + off, c->rxlen - off);
        if (!head)
            break;
        const char *cl = memmem(c->rx + off, head, "Content-Length:", 15);
        size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
        if (c->rxlen - off < head + body)
            break;
        int ok = status_ok(c->rx + off, head);
        uint64_t k = c->answered++;
        if (ok) {
            uint32_t ch = pub_chan(t, c, k);
            atomic_store_explicit(&t->run->chan_acked[ch], k / c->nowned + 1,
                                  memory_order_relaxed);
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
        uint64_t due = r->t0_ns + c->k * pub_period(r, c);
        if (due > now || due >= r->stop_ns)
            break;
        uint32_t ch = pub_chan(t, c, c->k);
        uint64_t seq = c->k / c->nowned + 1;
        int bn = snprintf(body, size + 1, "s=%llu t=%llu c=%u ", (unsigned long long)seq,
                          (unsigned long long)due, ch);
        if ((size_t)bn < size)
            memset(body + bn, 'x', size - (size_t)bn);
        scenario_channel_name(&r->sc, ch, name, sizeof(name));
        scenario_url_path(&r->sc.pub_url, name, path, sizeof(path));
        int hn = snprintf(head, sizeof(head),
                          "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          path, e->host_hdr, size);
        /* Announce before sending: see sse_bytes. */
        atomic_store(&r->chan_sent[ch], seq);
        if (append(&c->tx, &c->txlen, &c->txcap, head, (size_t)hn) < 0 ||
            append(&c->tx, &c->txlen, &c->txcap, body, size) < 0) {
            kill_client(t, c, 0);
            return;
        }
        c->k++;
        atomic_fetch_add_explicit(&t->c.published, 1, memory_order_relaxed);
    }
    submit_send(e, c, i);
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
            atomic_fetch_add_explicit(res == -ECONNREFUSED ? &t->c.refused : &t->c.connect_failed,
                                      1, memory_order_relaxed);
            kill_client(t, c, 0);
            return;
        }
        atomic_fetch_add_explicit(&t->c.connected, 1, memory_order_relaxed);
        if (c->kind == K_SSE) {
            start_sse(t, e, c, i);
        } else {
            c->state = S_STREAM;
            arm_recv(e, c, i);
        }
        break;
    case OP_SEND:
        c->flags &= ~CF_SENDING;
        if (res < 0) {
            kill_client(t, c, 1);
            return;
        }
        c->txoff += (uint32_t)res;
        if (c->txoff == c->txlen) {
            c->txoff = c->txlen = 0;
            if (c->kind == K_SSE) { /* the request is all an SSE client sends */
                free(c->tx);
                c->tx = NULL;
                c->txcap = 0;
            }
        }
        submit_send(e, c, i);
        break;
    case OP_RECV:
        if (!(cqe->flags & IORING_CQE_F_MORE))
            c->flags &= ~CF_RECV;
        if (res > 0) {
            uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
            if (c->state != S_DEAD) {
                if (c->kind == K_SSE)
                    sse_bytes(t, e, c, ring_buf(&e->ring, bid), (size_t)res, now);
                else
                    pub_answers(t, c, ring_buf(&e->ring, bid), (size_t)res);
            }
            ring_buf_recycle(&e->ring, bid);
        } else if (res == 0 || (res < 0 && res != -ENOBUFS)) {
            kill_client(t, c, 1);
            return;
        }
        if (!(c->flags & CF_RECV) && c->state != S_DEAD)
            arm_recv(e, c, i);
        break;
    }
}

static void tick(struct engine_thread *t, struct engine *e, uint64_t now)
{
    if (now < e->next_tick)
        return;
    e->next_tick = now + 1000000000ull;
    atomic_store_explicit(&t->c.p99_ns, hist_count(e->interval) ? hist_value_at(e->interval, 0.99) : 0,
                          memory_order_relaxed);
    hist_reset(e->interval);
}

static void *engine_main(void *arg)
{
    struct engine_thread *t = arg;
    struct engine *e = t->priv;
    struct run *r = t->run;
    /* The ring is made here: SINGLE_ISSUER wants its only submitter. */
    /* A fan-out lands on every subscriber at once, one buffer each: with too
     * few, multishot receives end in ENOBUFS and are re-armed over and over. */
    uint32_t nbufs = 1024;
    while (nbufs < e->ncl && nbufs < 32768)
        nbufs *= 2;
    struct ring_params rp = {.allowed = FEAT_ALL, .sq_entries = 4096, .nfiles = e->ncl + 16,
                             .nbufs = nbufs, .bufsize = 1024};
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
        /* Open connections at the ramp's pace, publishers first. */
        uint32_t allowed = e->ncl;
        if (per_thread_ramp > 0) {
            double n = (double)(now - ramp_start) / 1e9 * per_thread_ramp + 1;
            allowed = n < e->ncl ? (uint32_t)n : e->ncl;
        }
        while (e->nopened < allowed)
            open_client(t, e, e->nopened++);
        if (phase == PH_WARMUP || phase == PH_MEASURE || phase == PH_DRAIN)
            for (uint32_t i = 0; i < e->npub; i++)
                if (e->cl[i].state == S_STREAM)
                    pub_due(t, e, &e->cl[i], i, now);
        tick(t, e, now);
        /* Sleep until the next publish is due, at most 10 ms. */
        uint64_t wait = 10000000;
        if (e->nopened < e->ncl)
            wait = 1000000;
        for (uint32_t i = 0; i < e->npub; i++) {
            if (e->cl[i].state != S_STREAM)
                continue;
            uint64_t due = r->t0_ns + e->cl[i].k * pub_period(r, &e->cl[i]);
            if ((phase == PH_WARMUP || phase == PH_MEASURE) && due > now && due - now < wait)
                wait = due - now;
        }
        struct __kernel_timespec ts = {(long long)(wait / 1000000000), (long long)(wait % 1000000000)};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&e->ring.uring, &cqe, 1, &ts, NULL);
        now = now_ns();
        unsigned head, n = 0;
        io_uring_for_each_cqe(&e->ring.uring, head, cqe)
        {
            on_cqe(t, e, cqe, now);
            n++;
        }
        io_uring_cq_advance(&e->ring.uring, n);
    }
    return NULL;
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
    /* Publishers j = id, id + T, ...; subscribers likewise. */
    uint32_t npub = 0, nsub = 0;
    for (uint32_t j = (uint32_t)t->id; j < sc->publishers; j += (uint32_t)r->nthreads)
        npub++;
    for (uint32_t j = (uint32_t)t->id; j < sc->sse; j += (uint32_t)r->nthreads)
        nsub++;
    e->npub = npub;
    e->ncl = npub + nsub;
    e->cl = calloc(e->ncl ? e->ncl : 1, sizeof(*e->cl));
    if (!e->cl)
        return -ENOMEM;
    uint32_t k = 0;
    for (uint32_t j = (uint32_t)t->id; j < sc->publishers; j += (uint32_t)r->nthreads, k++) {
        struct lclient *c = &e->cl[k];
        c->kind = K_PUB;
        c->chan = j;
        c->nowned = j < sc->channels ? (sc->channels - j + sc->publishers - 1) / sc->publishers : 0;
    }
    uint64_t seed = sc->seed * 2654435761u + (uint64_t)t->id;
    for (uint32_t j = (uint32_t)t->id; j < sc->sse; j += (uint32_t)r->nthreads, k++) {
        struct lclient *c = &e->cl[k];
        c->kind = K_SSE;
        if (sc->spread == SCENARIO_SPREAD_ONE)
            c->chan = 0;
        else if (sc->spread == SCENARIO_SPREAD_RANDOM) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            c->chan = (uint32_t)((seed >> 33) % sc->channels);
        } else
            c->chan = j % sc->channels;
    }
    for (uint32_t i = 0; i < e->npub; i++)
        if (e->cl[i].nowned == 0 || sc->publish_rate <= 0)
            e->cl[i].state = S_DEAD; /* nothing to publish */
    e->body = malloc(sc->message_size + 1);
    if (!e->body)
        return -ENOMEM;
    const struct scenario_url *u = &sc->sub_url;
    if (u->port == 80)
        snprintf(e->host_hdr, sizeof(e->host_hdr), "%s", u->host);
    else
        snprintf(e->host_hdr, sizeof(e->host_hdr), strchr(u->host, ':') ? "[%s]:%u" : "%s:%u",
                 u->host, u->port);
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
    for (uint32_t i = e->npub; i < e->ncl; i++) {
        struct lclient *c = &e->cl[i];
        if (!c->p)
            continue; /* never subscribed */
        uint64_t acked = atomic_load(&t->run->chan_acked[c->chan]);
        if (acked >= c->next_seq)
            atomic_fetch_add_explicit(&t->c.lost, acked - c->next_seq + 1, memory_order_relaxed);
    }
    for (uint32_t i = 0; i < e->ncl; i++) {
        free(e->cl[i].rx);
        free(e->cl[i].tx);
        free(e->cl[i].p);
    }
    free(e->cl);
    free(e->body);
    hist_free(e->interval);
    if (atomic_load(&e->ready) == 1)
        ring_exit(&e->ring);
    free(e);
    t->priv = NULL;
}
