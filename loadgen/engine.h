/*
 * engine.h: ringload's clients on io_uring, one thread per core: SSE,
 * WebSocket, long-poll and short-poll subscribers and HTTP publishers; the
 * subscribers check every delivery (loss, duplicates, order) and measure
 * latency from each message's intended send time. The main thread (main.c) sets up a struct run,
 * starts the threads, steps the phases and reads the counters; each engine thread owns its clients,
 * ring and histogram and shares only the atomics below.
 *
 * Over TLS (https, wss URLs) each client keeps its own tls_conn (tls.h)
 * made from the run's one tls_client, which keeps the latest session so
 * reconnects resume.
 *
 * Not yet: several-channel subscriptions.
 */
#ifndef RINGLOAD_ENGINE_H
#define RINGLOAD_ENGINE_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hist.h"
#include "scenario.h"
#include "tls.h"

enum run_phase { PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };

/* The kinds of subscriber, for the per-kind counters. */
enum { LK_SSE, LK_WS, LK_LONGPOLL, LK_POLL, LK_N };

/* TLS figures are kept for the publishers too: index ENGINE_TLS_PUB. */
#define ENGINE_TLS_PUB   LK_N
#define ENGINE_TLS_KINDS (LK_N + 1)
/* Why a handshake failed: tls_error values, and two the engine sees itself. */
enum {
    ENGINE_TLS_TIMEOUT = TLS_ERR__COUNT, /* no handshake within ENGINE_TLS_TIMEOUT_NS */
    ENGINE_TLS_CLOSED,                   /* the server closed TCP before it was done */
    ENGINE_TLS_REASONS
};
#define ENGINE_TLS_TIMEOUT_NS (10 * 1000000000ull)
/* "cert", "alert", ..., "timeout", "closed". */
const char *engine_tls_reason_name(int reason);

/* Per kind of client, TLS handshakes: done, failed (also counted in the
 * kind's connect_failed), and done by resuming a session. */
struct engine_tls_counts {
    _Atomic uint64_t handshakes, failed, resumed;
};

/* Per kind of subscriber. connect_failed: refused, failed or answered with
 * anything but a subscription (status, handshake). subscribed: SSE on its
 * 200, WebSocket on its 101, a long poller once its first request is out, a
 * short poller on its first answer. dup: duplicated or reordered. */
struct engine_kind_counts {
    _Atomic uint64_t connect_failed, subscribed, deliveries, lost, dup;
};

/* Counters one thread writes and the main thread reads (relaxed). */
struct engine_counts {
    struct engine_kind_counts kind[LK_N];
    _Atomic uint64_t polls, pongs; /* short-poll requests sent, WebSocket pongs sent */
    _Atomic uint64_t ws_closes;    /* close handshakes completed at the end of the run */
    _Atomic uint64_t connected, subscribed, connect_failed, refused, closed_by_server;
    _Atomic uint64_t ended; /* connections that ended (connected - ended are open) */
    _Atomic uint64_t bad_status, protocol_errors;
    _Atomic uint64_t published, acked, publish_failed;
    _Atomic uint64_t deliveries, measured;
    _Atomic uint64_t lost, duplicates, reordered, id_mismatch, server_gaps, early;
    /* Reconnects (scenario reconnect = on): made, failed, and voluntary drops
     * (churn); messages a subscriber missed while away without resuming, and
     * messages skipped over a gap the server signalled. */
    _Atomic uint64_t reconnects, reconnect_failed, churn_drops, missed_offline, gap_skipped;
    /* Acknowledged messages still missing when a drain was cut off while
     * deliveries were coming: late (the server is behind), not known lost. */
    _Atomic uint64_t undelivered;
    _Atomic uint64_t ws_inflated; /* permessage-deflate frames inflated */
    struct engine_tls_counts tls[ENGINE_TLS_KINDS];
    _Atomic uint64_t tls_errors[ENGINE_TLS_REASONS]; /* failed handshakes by reason */
    _Atomic uint64_t p99_ns;                         /* of the last second, this thread */
};

struct engine_thread;

struct run {
    struct scenario sc;
    struct sockaddr_storage sub_addr, pub_addr, poll_addr;
    socklen_t sub_addrlen, pub_addrlen, poll_addrlen;
    int nthreads;
    struct engine_thread *threads;
    _Atomic int phase;
    uint64_t t0_ns;      /* publishing starts (warmup begins) */
    uint64_t measure_ns; /* intended send times from here on are measured */
    uint64_t stop_ns;    /* no message is scheduled at or after this */
    /* What messages' send times add to CLOCK_MONOTONIC: 0, or (clock =
     * realtime) CLOCK_REALTIME - CLOCK_MONOTONIC as sampled at the start. */
    uint64_t clock_off;
    /* subs_per_channel: subscribers on channels 0 .. c - 1, for c = 1 ..
     * channels (NULL without; see engine_prepare). */
    uint64_t *chan_cum;
    /* Per channel: the last sequence a publisher sent, and the last one the
     * server acknowledged (answers come in order on a connection). */
    _Atomic uint64_t *chan_sent, *chan_acked;
    struct tls_client *tls; /* NULL unless a URL is https or wss */
    /* The drain ended at its 5 s limit with deliveries still coming. */
    int drain_cut;
};

struct engine_thread {
    struct run *run;
    int id;
    pthread_t thread;
    struct engine_counts c;
    struct hist *lat; /* measured latencies, ns; read after join */
    /* TLS handshake times (TCP connect start to handshake done), ns, per
     * kind; NULL without TLS; read after join. */
    struct hist *tls_lat[ENGINE_TLS_KINDS];
    /* Per kind (publishers at ENGINE_TLS_PUB), ns from the TCP connect's
     * start: to the connect's completion, and to the client being ready (an
     * SSE 200, a WebSocket 101, a long poll's first request out, a short
     * poll's first answer, a publisher able to send); every connection
     * counts, reconnects too. Read after join. */
    struct hist *connect_lat[ENGINE_TLS_KINDS], *ready_lat[ENGINE_TLS_KINDS];
    /* The first handshake failure's description, set once by this thread
     * (tls_failed = 1 after it is written); read after join. */
    char tls_first_error[200];
    int tls_failed;
    /* Per second of the measured window (hdr_log; NULL without): second k's
     * latencies go into sec[k & 1]. At measure_ns + (k + 1) s the thread
     * sets sec_done to k + 1 (release) and records into the other half,
     * provided the main thread has taken second k - 1 (sec_taken >= k: it
     * merged, reset and released that half); else it flips a little late
     * and second k keeps what came meanwhile. */
    struct hist *sec[2];
    _Atomic uint64_t sec_done, sec_taken;
    /* The thread's CPU time (s) when the measured window opened and closed,
     * read by the main thread (pthread_getcpuclockid); -1 unknown. */
    double cpu_mark[2];
    void *priv;
};

/* A counter summed over the run's threads (relaxed reads). */
#define RUN_SUM(r, field)                                                                          \
    ({                                                                                             \
        uint64_t s_ = 0;                                                                           \
        for (int i_ = 0; i_ < (r)->nthreads; i_++)                                                 \
            s_ += atomic_load_explicit(&(r)->threads[i_].c.field, memory_order_relaxed);           \
        s_;                                                                                        \
    })

/* Before the threads start: what the run's threads share about the
 * scenario (the subscribers per channel of subs_per_channel). 0 or
 * -ENOMEM. */
int engine_prepare(struct run *r);

/* The last sequence the schedule puts on channel ch before time `before`
 * (CLOCK_MONOTONIC ns; none at or after stop_ns): what a publisher sends,
 * whichever process it runs in. 0 for none. */
uint64_t engine_scheduled(const struct run *r, uint32_t ch, uint64_t before);

/* Creates thread t's engine and starts it. 0 or a negative errno. */
int engine_start(struct run *r, struct engine_thread *t);
void engine_join(struct engine_thread *t);
/* After join: adds this thread's end-of-run loss check to its counters. */
void engine_final_check(struct engine_thread *t);

#endif
