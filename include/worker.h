/*
 * worker.h: the internals a worker's modules share (worker.c: the ring loop,
 * connections and the mesh; serve.c and serve_ws.c: the endpoints; stats.c). Not a public
 * API: every struct here is touched only by the worker thread that owns it,
 * except struct server's read-only parts, the SPSC mesh and the stats.
 */
#ifndef RINGCAST_WORKER_H
#define RINGCAST_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "chan.h"
#include "config.h"
#include "http.h"
#include "msg.h"
#include "ring.h"
#include "tls.h"
#include "ws.h"
#include "wsdeflate.h"
#include "spsc.h"
#include "stats.h"

#define SLOT_NONE UINT32_MAX
#define OUTQ_IOV  16

/* Connection states. */
enum conn_state {
    C_FREE = 0,
    C_READ,    /* reading requests (idle keep-alive included) */
    C_WAIT,    /* waiting for another worker's answer (publish, channel info) */
    C_SSE,     /* streaming Server-Sent Events */
    C_LP,      /* long poll waiting for a message */
    C_WS,      /* WebSocket subscriber */
    C_CLOSING, /* close submitted or to submit once sends finish */
};

enum conn_flags {
    CF_RECV_ARMED = 1 << 0,     /* multishot recv or poll in flight */
    CF_RECV_BUSY = 1 << 1,      /* a single recv (poll mode) in flight */
    CF_SENDING = 1 << 2,        /* a send in flight */
    CF_CLOSE_AFTER = 1 << 3,    /* close once the send queue is empty */
    CF_DIRTY = 1 << 4,          /* on the worker's flush list */
    CF_CLOSE_SENT = 1 << 5,     /* close op submitted */
    CF_EOF = 1 << 6,            /* peer finished sending */
    CF_REARM = 1 << 7,          /* recv must be re-armed (ENOBUFS) */
    CF_MORE = 1 << 8,           /* poll mode: readable again while a recv was in flight */
    CF_RESUME = 1 << 9,         /* back in C_READ: parse what was pipelined meanwhile */
    CF_MULTI = 1 << 10,         /* subscribed to several channels: see struct subnode */
    CF_WS_JSON = 1 << 11,       /* WebSocket subprotocol ringcast.json: frames are JSON */
    CF_WS_CLOSING = 1 << 12,    /* we sent a close frame and wait for the client's */
    CF_WS_FAILED = 1 << 13,     /* ... after a protocol error: nothing more is processed */
    CF_WS_DEFLATE = 1 << 14,    /* permessage-deflate negotiated */
    CF_WS_NARROW = 1 << 15,     /* ... with server_max_window_bits < 15 (wsdeflate_narrow) */
    CF_WS_CLIENT_NCT = 1 << 16, /* ... with client_no_context_takeover */
    CF_PAUSED = 1 << 17,        /* reading stopped: a full request waits behind an answer */
    CF_TLS = 1 << 18,           /* accepted on the TLS port: bytes go through w->tls[slot] */
    CF_TLS_HS = 1 << 19,        /* ... and its handshake is not done yet */
    CF_TLS_BYE = 1 << 20,       /* ... close_notify queued (or not to be sent): then TCP closes */
};

/* Timer lists: each has one constant timeout, so each is a FIFO. */
enum tlist_id {
    T_NONE = 0,
    T_HEADER,
    T_KEEPALIVE,
    T_LONGPOLL,
    T_HEARTBEAT, /* SSE comment */
    T_WSPING,    /* WebSocket: time to ping */
    T_WSPONG,    /* WebSocket: pinged, waiting for the pong */
    T_WSCLOSE,   /* WebSocket: closed by us, waiting for the client's close */
    T_TLS,       /* TLS: the handshake must finish */
    T_COUNT
};

struct outq_ent {
    struct rc *owner; /* reference held while queued; NULL for static bytes */
    const char *base;
    uint32_t len;
};

/* Unsent bytes of one connection; exists only while non-empty or sending. */
struct outq {
    uint32_t head, count, cap;
    uint32_t off;      /* bytes of ents[head] already sent */
    uint32_t inflight; /* entries covered by the send in flight */
    uint64_t bytes;    /* unsent bytes */
    struct outq_ent *ents;
    struct msghdr mh;
    struct iovec iov[OUTQ_IOV];
    struct outq_ent inl[8];
};

/* Read buffer; exists only while bytes of an unfinished request are held. */
struct rxbuf {
    uint32_t len, cap;
    union {
        struct {
            uint32_t scanned;   /* bytes of the head already scanned (last_len) */
            uint32_t head_len;  /* 0 until the head is complete */
            uint32_t body_need; /* Content-Length */
            uint32_t body_have; /* chunked: decoded bytes, right after the head */
            uint8_t chunked;
            struct http_chunked ch;
        } http;
        struct {
            /* data[0..assembled) holds the unmasked fragments of a message
             * in progress; raw frames follow. */
            uint32_t assembled;
            uint8_t mid;   /* a fragmented message is in progress */
            uint64_t skip; /* after a failure: bytes of a refused frame still to come */
            struct ws_reader r;
        } ws;
    };
    char data[];
};

/* One connection record, kept small: an idle subscriber costs this and
 * nothing else. */
struct conn {
    uint32_t gen; /* bumped on free: stale completions are recognised */
    uint8_t state;
    uint32_t flags; /* CF_*; still 64 bytes in all: it takes padding */
    uint8_t tlist;
    uint8_t inflight;      /* operations in flight; the record is freed at 0 once closed */
    int32_t fd;            /* regular descriptor, or -1 with a direct one (= slot) */
    uint32_t tprev, tnext; /* timer list */
    uint32_t deadline;     /* ms since the worker started */
    uint32_t sprev, snext; /* channel subscriber list; CF_MULTI: snext = first subnode */
    struct chan *chan;     /* the one subscribed channel (NULL with CF_MULTI) */
    struct rxbuf *rx;
    struct outq *q;
};
_Static_assert(sizeof(struct conn) == 64, "struct conn: one cache line");

/*
 * A channel's subscriber list holds ids: a connection slot for a connection
 * subscribed to one channel (its links live in struct conn, the cheap common
 * case), or SUB_POOL | index of a subnode for each channel of a connection
 * subscribed to several (up to SERVE_MAX_CHANNELS).
 */
#define SUB_POOL 0x80000000u
struct subnode {
    uint32_t prev, next; /* channel subscriber list */
    uint32_t slot;       /* the connection */
    uint32_t cnext;      /* the connection's next subnode, or SLOT_NONE */
    struct chan *ch;
    uint64_t last_id; /* last id this connection was given on ch */
};

struct tlist {
    uint32_t head, tail;
    uint32_t timeout_ms;
};

struct server;

struct worker {
    int id;
    struct server *srv;
    const struct config *cfg;
    struct ring ring;
    pthread_t thread;
    int listen_fd;
    int tls_listen_fd; /* -1 without TLS */
    int efd;           /* eventfd doorbell (without FEAT_MSG_RING) */
    uint64_t efd_buf;
    int ring_fd;          /* for other workers' MSG_RING */
    _Atomic int sleeping; /* set before blocking; see spsc.h doorbells */
    _Atomic int ready;

    struct conn *conns; /* nslots records, mmap'd: untouched ones cost nothing */
    uint32_t nslots;
    uint32_t *freelist;
    uint32_t nfree;
    uint32_t nconns;
    int accept_armed, tls_accept_armed;
    uint32_t tls_handshaking; /* connections with CF_TLS_HS: bounded, see arm_accept_on */
    int accept_paused;
    uint32_t accept_paused_at;

    struct chan_table chans;
    struct chan **reap; /* channels whose last subscriber left, freed between rounds */
    uint32_t nreap, reapcap;
    struct subnode *subs; /* pool of subnodes; free ones chained through next */
    uint32_t nsubnodes, sub_free;
    struct tlist tl[T_COUNT];
    uint32_t *dirty; /* connections with bytes to send */
    uint32_t ndirty, dirtycap;
    uint64_t start_ms;
    uint32_t now;           /* ms since start_ms, refreshed each loop */
    const char *ws_origins; /* --allow-origin, NULL for any */

    /* Cross-worker items that did not fit their ring yet, per target. */
    struct {
        struct rc **items;
        uint32_t n, cap;
    } * overflow;
    uint8_t *bell; /* targets to wake this round */
    int draining;
    uint32_t fault_count; /* --fault-drop */

    /* permessage-deflate: this worker's zlib streams, and per connection
     * slot the inflate context of a client that keeps its context between
     * messages (allocated on its first compressed message; nslots pointers,
     * mmap'd like conns so untouched ones cost nothing). */
    struct wsdeflate wsz;
    struct wsdeflate_inflater **inflaters;
    /* Per connection slot, the TLS state of a connection on the TLS port
     * (nslots pointers, mmap'd like conns). */
    struct tls_conn **tls;

    struct stats stats;
};

struct server {
    struct config cfg;
    int nworkers;
    int port;
    struct worker *workers;
    struct spsc *mesh;      /* mesh[src * nworkers + dst] */
    _Atomic int stop;       /* set by the main thread on SIGINT/SIGTERM */
    uint32_t features;      /* worker 0's, for logs and /stats */
    struct tls_server *tls; /* NULL without --tls-cert */
    int tls_port;
    char sse_head[256]; /* the SSE response head and preamble, built once */
    uint32_t sse_head_len;
};

static inline struct spsc *mesh_ring(struct server *s, int src, int dst)
{
    return &s->mesh[src * s->nworkers + dst];
}

/* A question every worker answers (a publish's reach, a channel's
 * subscribers); the last to answer sends it back to the origin worker. */
enum gather_kind { G_PUBLISH = 1, G_CHANNEL };
struct gather {
    struct rc rc;
    uint8_t kind;
    uint16_t origin;
    _Atomic uint32_t pending;
    _Atomic uint64_t sum;
    uint32_t slot, gen;
    uint64_t id;
    uint32_t hash;
    uint16_t chan_len;
    char name[];
};

/* A publish travelling to the channel's home worker. */
struct pubreq {
    struct rc rc;
    uint8_t binary;
    uint16_t origin;
    uint16_t chan_len, event_len;
    uint32_t slot, gen;
    uint32_t hash;
    uint32_t payload_len;
    char data[]; /* channel, event, payload */
};

/* worker.c */
int server_start(struct server *s);
/* Starts the workers on their listeners (tls_fds: NULL without TLS). */
int server_run(struct server *s, const int *listen_fds, const int *tls_fds);
void server_wait(struct server *s);
void conn_mark_dirty(struct worker *w, struct conn *c);
/* Stops reading from c (TCP then holds the client back) / starts again. */
void conn_pause(struct worker *w, struct conn *c);
void conn_resume(struct worker *w, struct conn *c);
void conn_queue(struct worker *w, struct conn *c, struct rc *owner, const char *base, size_t len);
void conn_queue_copy(struct worker *w, struct conn *c, const char *base, size_t len);
/* Drops what is queued for c and not yet handed to the kernel. */
void conn_drop_unsent(struct conn *c);
void conn_close(struct worker *w, struct conn *c);
void conn_timer_set(struct worker *w, struct conn *c, int list);
void conn_subscribe(struct worker *w, struct conn *c, struct chan *ch);
/* Subscribes c to n channels with per-channel last ids; -ENOMEM. */
int conn_subscribe_multi(struct worker *w, struct conn *c, struct chan **chans,
                         const uint64_t *last_ids, int n);
void conn_unsubscribe(struct worker *w, struct conn *c);
void mesh_send(struct worker *w, int dst, struct rc *item);
void worker_publish_local(struct worker *w, struct pubreq *r);
void worker_gather_answer(struct worker *w, struct gather *g);

static inline struct conn *conn_at(struct worker *w, uint32_t slot)
{
    return &w->conns[slot];
}

static inline uint32_t conn_slot(struct worker *w, struct conn *c)
{
    return (uint32_t)(c - w->conns);
}

/* serve.c, serve_ws.c */
/* Builds what serve.c shares read-only between workers. Before they start. */
void serve_init(struct server *s);
/* Parses and answers every complete request in c->rx; returns when it needs
 * more bytes or the connection changed state (streaming, waiting, closing). */
void serve_input(struct worker *w, struct conn *c);
/* A message arrived for a long poll or SSE subscriber on this worker; node is
 * the subscription's subnode for a several-channel subscriber, else NULL. */
void serve_deliver(struct worker *w, struct conn *c, struct subnode *node, struct msg *m);
/* The origin side of a finished gather: answer the waiting request. */
void serve_gather_done(struct worker *w, struct gather *g);
/* Long poll timed out: empty answer. */
void serve_longpoll_timeout(struct worker *w, struct conn *c);
/* Over --max-conns: 503, then close. */
void serve_refuse(struct worker *w, struct conn *c);
/* SIGTERM: finish what this connection is doing. */
void serve_drain(struct worker *w, struct conn *c);
/* WebSocket timers: time to ping, the pong never came, the close never came. */
void serve_ws_timer(struct worker *w, struct conn *c, int list);
/* A WebSocket subscriber fell --max-queue behind: close 1008, or TCP at the
 * close timeout if even that cannot be sent. */
void serve_ws_slow(struct worker *w, struct conn *c);

#endif
