/*
 * engine_int.h: the private part of ringload's engine, shared by engine.c
 * (sockets, the ring, reconnects, publishers, the thread's loop, TLS) and
 * proto.c (the subscriber protocols: SSE, WebSocket, long and short polls,
 * and the delivery checks). Not an interface: only these two files include
 * it, and everything here is touched by the one engine thread that owns the
 * client.
 */
#ifndef RINGLOAD_ENGINE_INT_H
#define RINGLOAD_ENGINE_INT_H

#include "engine.h"
#include "ring.h"
#include "util.h"
#include "wsdeflate.h"

enum { K_SSE = LK_SSE, K_WS = LK_WS, K_LP = LK_LONGPOLL, K_POLL = LK_POLL, K_PUB = LK_N };
enum { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_HEAD, S_STREAM, S_DEAD };
enum { OP_CONNECT = 1, OP_SEND, OP_RECV, OP_IGNORE };
/* Completions a thread waits for before it wakes (or 1 ms, see engine_main). */
#define WAIT_BATCH  64
#define CF_SENDING  1u
#define CF_RECV     2u
#define CF_WAITING  4u    /* poller: a request is out, its answer not read yet */
#define CF_CLOSE_TX 8u    /* WebSocket: our close frame is queued */
#define CF_CLOSE_RX 16u   /* WebSocket: the server's close frame came */
#define CF_SUBBED   32u   /* subscribed (SSE, WebSocket) */
#define CF_ANCHORED 64u   /* poller: next_seq is known */
#define CF_SINCE    128u  /* poller: last_id is known, requests carry since */
#define CF_DEFLATE  256u  /* WebSocket: permessage-deflate negotiated */
#define CF_RESYNC   512u  /* after a gap: the next message sets next_seq again */
#define CF_HAVEID   1024u /* SSE, WebSocket: last_id holds the last id received */
#define CF_RESUMING 2048u /* reconnected asking for what it missed (scenario resume) */
#define CF_BYE      4096u /* WebSocket: ended by us at the end of the run (goodbye) */
#define HEAD_MAX    8192
#define PLAIN_MAX   16384 /* one TLS record's plaintext */

struct lclient {
    uint8_t kind, state;
    uint16_t flags;
    uint8_t attempts; /* reconnects tried since the last subscription */
    uint32_t chan;    /* SSE: its channel; publisher: its index j */
    int fd;           /* direct slot, or a descriptor without FEAT_DIRECT */
    char *rx;         /* response head, then (publisher) answers */
    uint32_t rxlen, rxcap;
    char *tx;     /* bytes to send */
    char *tx_old; /* the block a send in flight reads, after tx grew (tx_append) */
    uint32_t txlen, txcap, txoff, txinflight;
    struct tls_conn *tls; /* https, wss: this connection's TLS, else NULL */
    uint64_t tls_t0;      /* when its TCP connect started */
    /* subscribers */
    struct sse_parser *p;
    uint64_t baseline, next_seq, id_offset;
    uint8_t have_offset;
    uint8_t id_form; /* SSE: 0 none yet, 1 decimal ids, 2 "A:B" ids (see parse_id) */
    char wskey[24];  /* WebSocket: the Sec-WebSocket-Key sent */
    /* pollers: the last id seen, when the next short poll is due, and what the
     * publishers had acknowledged when the last answered request was sent */
    uint64_t last_id, next_poll, acked_req, acked_checked;
    /* SSE, WebSocket, long poll: while dead, when to reconnect; while
     * subscribed, with churn, when to drop (see struct due) */
    uint64_t due;
    /* publisher */
    uint32_t nowned;
    uint64_t k, answered; /* requests scheduled, answers read */
};

/* A min-heap of (time, client): a client to look at again at a time. An
 * entry goes stale when the client's own time moved on meanwhile (it died,
 * reconnected, was rescheduled); it is then skipped when it comes up. */
struct due_ent {
    uint64_t due;
    uint32_t i;
};
struct dueheap {
    struct due_ent *v;
    uint32_t n, cap;
};

struct engine {
    struct ring ring;
    struct lclient *cl;
    uint32_t ncl, nopened;
    uint32_t npub;        /* the first npub clients are publishers */
    struct dueheap polls; /* idle short pollers, on next_poll */
    struct dueheap dues;  /* reconnects and churn drops, on due */
    struct wsdeflate z;   /* inflates permessage-deflate frames */
    uint64_t rng;         /* xorshift64* state: WebSocket keys and masks, jitter */
    int closing;          /* the run is over: closes are expected */
    struct hist *interval;
    uint64_t next_tick;
    char host_hdr[300], poll_host_hdr[300];
    char *body;        /* a message being built */
    char *pad;         /* what fills each message after its header (see make_pad) */
    char *plain;       /* TLS: decrypted bytes on their way to a handler */
    _Atomic int ready; /* 1 once the ring is up, or a negative errno */
};

#define CNT(t, f, n) atomic_fetch_add_explicit(&(t)->c.f, (n), memory_order_relaxed)
/* A subscriber's counter, in the totals and in its kind's. */
#define KCNT(t, cl, f, tf, n)                                                                      \
    do {                                                                                           \
        atomic_fetch_add_explicit(&(t)->c.kind[(cl)->kind].f, (n), memory_order_relaxed);          \
        CNT(t, tf, n);                                                                             \
    } while (0)

/* ---- engine.c ---- */

/* A subscribe-only process (role = subscribe) has no publisher of its own
 * to tell it what was sent and acknowledged; it reads the schedule instead
 * (engine_scheduled), allowing this much for the publishing process' clock,
 * its lateness and the server's latency: a subscriber owes nothing due
 * within this long before its subscription, and a short poll must hold what
 * was due this long before it was asked. */
#define SPLIT_GRACE_NS 1000000000ull

/* The last sequence on channel ch that reached the server before now, as
 * far as a subscriber can know: announced by this process' publisher, or in
 * a subscribe-only process what the schedule had due by now + grace. */
uint64_t eng_announced(const struct run *r, uint32_t ch, uint64_t now);
/* The last sequence on channel ch the server has acknowledged by now:
 * this process' publisher's answers, or in a subscribe-only process what the
 * schedule had due by now - grace (0 at the end of the run: everything
 * scheduled; see engine_final_check). */
uint64_t eng_acked(const struct run *r, uint32_t ch, uint64_t now);

/* A failure before a client got going: counted in f (connect_failed,
 * refused, bad_status, protocol_errors) and, for a subscriber, in its kind's
 * connect_failed; a reconnect that failed is tried again later. */
void eng_fail_connect(struct engine_thread *t, struct lclient *c, _Atomic uint64_t *f);
/* Appends n bytes to a growing buffer. 0 or -ENOMEM. */
int eng_append(char **buf, uint32_t *len, uint32_t *cap, const char *p, size_t n);
/* Appends to c's send buffer (safe while a send is in flight). 0 or -ENOMEM. */
int eng_tx_append(struct lclient *c, const char *p, size_t n);
/* Ends c's connection (by_server: the server closed it); a subscriber
 * comes back later when the scenario says reconnect = on. */
void eng_kill_client(struct engine_thread *t, struct lclient *c, int by_server);
/* Sends c's pending bytes unless a send is in flight (then it follows). */
void eng_submit_send(struct engine *e, struct lclient *c, uint32_t i);
/* Arms c's multishot receive unless one is armed. */
void eng_arm_recv(struct engine *e, struct lclient *c, uint32_t i);
/* The dueheap: push (0 or -ENOMEM), pop the earliest, peek its time
 * (UINT64_MAX when empty). */
int eng_heap_push(struct dueheap *h, uint64_t due, uint32_t i);
struct due_ent eng_heap_pop(struct dueheap *h);
uint64_t eng_heap_next(const struct dueheap *h);
/* The thread's generator: a uniform double in [0, 1), 64 random bits. */
double eng_unif(struct engine *e);
uint64_t eng_rnd(struct engine *e);
/* c is ready (subscribed, or a publisher able to send): how long it took
 * from its connect's start goes into the thread's ready_lat. */
void eng_ready(struct engine_thread *t, struct lclient *c, uint64_t now);
/* With churn: when subscribed c drops its connection next. */
void eng_churn_later(struct engine_thread *t, struct engine *e, struct lclient *c, uint64_t now);

/* ---- proto.c ---- */

/* Sends the subscription request of an SSE or WebSocket client (a
 * WebSocket publisher too) and arms its receive. */
void proto_start_sse(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i);
void proto_sse_bytes(struct engine_thread *t, struct engine *e, struct lclient *c, const char *p,
                     size_t n, uint64_t now);
void proto_start_ws(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i);
void proto_ws_control(struct engine *e, struct lclient *c, uint32_t i, int op, span_t payload);
void proto_ws_bytes(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                    const char *p, size_t n, uint64_t now);
void proto_poll_request(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                        uint64_t now);
void proto_poll_bytes(struct engine_thread *t, struct engine *e, struct lclient *c, uint32_t i,
                      const char *p, size_t n, uint64_t now);
void proto_polls_due(struct engine_thread *t, struct engine *e, uint64_t now);
int proto_status_2xx(const char *p, size_t n);
int proto_next_response(const char *p, size_t n, size_t *head, size_t *body);

#endif
