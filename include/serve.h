/*
 * serve.h: what the two halves of a worker's request handling share
 * (serve.c: HTTP, SSE and polling; serve_ws.c: WebSocket). Not a public API:
 * the worker loop calls the entry points in worker.h.
 */
#ifndef RINGCAST_SERVE_H
#define RINGCAST_SERVE_H

#include "worker.h"

#define SERVE_MAX_CHANNELS 16

/* The channels a request names, with what each client has already seen. */
struct target {
    int n;
    span_t names[SERVE_MAX_CHANNELS];
    uint32_t hash[SERVE_MAX_CHANNELS];
    uint8_t have[SERVE_MAX_CHANNELS];
    uint64_t since[SERVE_MAX_CHANNELS];
};

/* How a streaming transport puts a gap notice and a message on the wire. */
struct stream_ops {
    void (*gap)(struct worker *w, struct conn *c, span_t name, const struct chan_range *r);
    void (*msg)(struct worker *w, struct conn *c, struct subnode *node, struct msg *m);
};

/* serve.c */
/* An error answer with a JSON body. 400, 413, 417, 431, 501 and 503 close
 * the connection after it. */
void serve_error(struct worker *w, struct conn *c, int status, const char *extra,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A publish of body on channel name, for the channel's home worker; NULL
 * without memory. serve_pubreq_send hands it over. */
struct pubreq *serve_pubreq_new(struct worker *w, span_t name, span_t event, span_t body,
                                int binary);
void serve_pubreq_send(struct worker *w, struct pubreq *r);
/* This worker's replicas of t's channels, created if need be; answers 503
 * itself and returns -ENOMEM without memory. */
int serve_local_chans(struct worker *w, struct conn *c, const struct target *t,
                      struct chan **chans);
/* Subscribes c to t's channels and queues, channel by channel, what the
 * client has not seen (a gap notice if some is gone, then the held
 * messages). 0, or -ENOMEM after closing c. */
int serve_subscribe_backlog(struct worker *w, struct conn *c, const struct target *t,
                            struct chan **chans, const struct stream_ops *ops);

/* serve_ws.c */
/* GET /sub/... with Upgrade: the handshake, then a WebSocket subscriber. */
void serve_ws_open(struct worker *w, struct conn *c, const struct http_request *req,
                   const struct target *t);
/* Frames the client sent, in c->rx. */
void serve_ws_input(struct worker *w, struct conn *c);
/* A message for a WebSocket subscriber (node: see serve_deliver). */
void serve_ws_deliver(struct worker *w, struct conn *c, struct subnode *node, struct msg *m);
/* SIGTERM: close 1001 and wait for the client's close. */
void serve_ws_drain(struct worker *w, struct conn *c);

#endif
