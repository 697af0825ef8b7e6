/*
 * stats.h: per-worker counters. Each worker writes only its own (relaxed
 * atomic stores, no contention); any worker reads all of them to answer
 * /stats and /metrics. The X-macro lists every counter once, for both the
 * struct and the two renderers.
 */
#ifndef RINGCAST_STATS_H
#define RINGCAST_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* X(name, prometheus type, help) */
#define STATS_COUNTERS(X)                                                                          \
    X(connections_accepted, counter, "Connections accepted")                                      \
    X(connections_closed, counter, "Connections closed")                                          \
    X(connections_refused, counter, "Connections answered 503 over --max-conns")                   \
    X(requests, counter, "HTTP requests parsed")                                                  \
    X(publishes, counter, "Messages published (counted on the channel's home worker)")            \
    X(deliveries, counter, "Messages queued to a subscriber")                                     \
    X(bytes_sent, counter, "Bytes written to sockets")                                            \
    X(bytes_received, counter, "Bytes read from sockets")                                         \
    X(sends, counter, "Send operations completed")                                                \
    X(drops_slow, counter, "Subscribers dropped: more than --max-queue bytes unsent")             \
    X(drops_nomem, counter, "Connections dropped: out of memory")                                 \
    X(header_timeouts, counter, "Connections closed: no complete request head in time")           \
    X(keepalive_timeouts, counter, "Idle keep-alive connections closed")                          \
    X(http_4xx, counter, "Requests answered with a 4xx status")                                   \
    X(gaps, counter, "Resumes told of a gap")                                                     \
    X(ws_messages_in, counter, "WebSocket messages received from clients")                        \
    X(ws_protocol_errors, counter, "WebSocket connections failed for a protocol error")           \
    X(ws_ping_timeouts, counter, "WebSocket connections closed: no pong in time")                 \
    X(tls_handshakes, counter, "TLS handshakes completed")                                        \
    X(tls_resumed, counter, "TLS handshakes that resumed a session (ticket)")                     \
    X(tls_attached, counter, "TLS connections left on wolfSSL after the handshake (~54 KB each)") \
    X(tls_fail_plain_http, counter, "TLS port: plain HTTP request (answered 400)")                 \
    X(tls_fail_not_tls, counter, "TLS port: bytes that are neither TLS nor HTTP")                  \
    X(tls_fail_bad_hello, counter, "TLS handshakes failed: malformed handshake")                  \
    X(tls_fail_version, counter, "TLS handshakes failed: no shared version")                      \
    X(tls_fail_cipher, counter, "TLS handshakes failed: no shared cipher or group")               \
    X(tls_fail_alpn, counter, "TLS handshakes failed: ALPN without http/1.1")                     \
    X(tls_fail_alert, counter, "TLS connections failed: the client sent a fatal alert")           \
    X(tls_fail_record, counter, "TLS connections failed: a bad record after the handshake")       \
    X(tls_fail_timeout, counter, "TLS handshakes not finished within --tls-handshake-timeout")    \
    X(tls_fail_other, counter, "TLS connections failed: other reasons (memory, KeyUpdate)")       \
    X(cq_overflows, counter, "Completion queue overflows seen")                                   \
    X(mesh_overflows, counter, "Cross-worker items that waited for room in a full ring")

/* X(name, help): current values, not counters. */
#define STATS_GAUGES(X)                                                                            \
    X(connections, "Connection records held (closing ones until their last operation ends)")                                                            \
    X(sse_subscribers, "Server-Sent Events subscribers")                                          \
    X(longpoll_waiting, "Long polls waiting for a message")                                       \
    X(ws_subscribers, "WebSocket subscribers")                                                    \
    X(tls_connections, "Connections on the TLS port (handshaking or open)")                       \
    X(channels, "Channels held by this worker (replicas included)")

struct stats {
#define X(name, type, help) _Atomic uint64_t name;
    STATS_COUNTERS(X)
#undef X
#define X(name, help) _Atomic uint64_t name;
    STATS_GAUGES(X)
#undef X
};

/* Owner-only updates: a relaxed load and store, no read-modify-write. */
#define STAT_ADD(st, field, n)                                                                     \
    atomic_store_explicit(&(st)->field,                                                           \
                          atomic_load_explicit(&(st)->field, memory_order_relaxed) + (n),          \
                          memory_order_relaxed)
#define STAT_SUB(st, field, n) STAT_ADD(st, field, -(uint64_t)(n))

struct server;
/* Renders /stats JSON or /metrics text for all workers into a malloc'd
 * buffer; returns its length, or -ENOMEM. */
long stats_render_json(const struct server *srv, char **out);
long stats_render_prometheus(const struct server *srv, char **out);

#endif
