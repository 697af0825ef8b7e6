/*
 * msg.h: reference-counted, immutable objects that cross workers: published
 * messages with their wire forms built once, and plain byte blobs.
 *
 * Every object that travels through the SPSC mesh or sits in a connection's
 * send queue starts with a struct rc: an atomic count and a type tag. A worker
 * that hands an object to another worker or to a send queue takes a reference
 * first; whoever drops the last one frees it, on whatever thread that is.
 * Messages are never written after msg_new() returns, so any thread may read
 * them without further synchronisation beyond the ring hand-off. The one
 * exception is the permessage-deflate frames (ws_deflated): each is set at
 * most once, by compare-and-swap, on whichever worker first needs it.
 */
#ifndef RINGCAST_MSG_H
#define RINGCAST_MSG_H

#include <stdatomic.h>
#include <stdint.h>

#include "span.h"

enum rc_type {
    RC_MSG = 1,   /* struct msg: a published message */
    RC_BLOB,      /* struct blob: bytes owned by one connection's send queue */
    RC_PUBREQ,    /* struct pubreq: a publish on its way to the channel's home worker */
    RC_GATHER,    /* struct gather: a question every worker answers (mesh.h) */
    RC_GATHER_DONE,
};

struct rc {
    _Atomic uint32_t refs;
    uint8_t type;
};

struct gather;
struct blob;
struct wsdeflate;

/* Indexes of struct msg's ws_deflated. */
enum { MSG_WS_RAW = 0, MSG_WS_JSON = 1 };

/* A published message. Fields are read-only after msg_new(). */
struct msg {
    struct rc rc;
    uint8_t binary;      /* published as application/octet-stream */
    uint16_t event_len;
    uint16_t chan_len;
    uint32_t chan_hash;
    uint64_t id;
    uint64_t time_ms;    /* CLOCK_MONOTONIC ms at publish, for --history-ttl */
    struct gather *gather; /* the publish's answer collector; see mesh.h */
    span_t payload;
    span_t sse;          /* "id: N\nevent: ...\ndata: ...\n\n" */
    span_t sse_body;     /* sse without its "id: N\n" line, for composite ids */
    span_t json;         /* {"id":N,"event":"...","data":"..."} */
    /* WebSocket: a frame of the raw payload is ws_hdr + payload; a frame of
     * the JSON form (subprotocol ringcast.json) is ws_json_head + json
     * without its first byte, ws_json_head ending in {"channel":"NAME", */
    span_t ws_json_head;
    uint8_t ws_hdr_len;
    uint8_t ws_hdr[14];  /* WS_MAX_HEADER; a server frame uses at most 10 */
    /* permessage-deflate: the whole compressed frame of each form (raw,
     * JSON) and window (15, narrow), NULL until a deflate subscriber first
     * needs it; see msg_ws_deflated(). Owned by the message. */
    struct blob *_Atomic ws_deflated[2][2];
    char data[];         /* channel, event, payload, sse, json */
};

/* Bytes owned by a send queue entry, freed with the last reference. */
struct blob {
    struct rc rc;
    uint32_t len;
    char data[];
};

/* Builds a message with refs = 1 and its wire forms. NULL on ENOMEM. */
struct msg *msg_new(span_t channel, uint32_t chan_hash, uint64_t id, span_t event, span_t payload,
                    int binary, uint64_t time_ms);

static inline span_t msg_channel(const struct msg *m)
{
    return span_of(m->data, m->chan_len);
}

static inline span_t msg_event(const struct msg *m)
{
    return span_of(m->data + m->chan_len, m->event_len);
}

/*
 * The permessage-deflate frame of m in one form (MSG_WS_RAW or MSG_WS_JSON)
 * and window (narrow: wsdeflate_narrow()): a text or binary frame with RSV1
 * whose payload is the form's payload compressed alone (no context takeover).
 * Built on the first call, with z (the calling worker's streams), and kept
 * with the message: every later call, on any worker, returns the same bytes.
 * Two workers that race both compress; one copy is kept and the other freed.
 *
 * Returns NULL when the frame should go uncompressed: the payload is under
 * WSDEFLATE_MIN_SIZE, compressing does not make it smaller (remembered), or
 * memory ran out (not remembered: a later call tries again). The blob lives
 * as long as m: a send queue holds a reference to m, not to the blob.
 */
struct blob *msg_ws_deflated(struct msg *m, int form, int narrow, struct wsdeflate *z);

/* A blob of len uninitialised bytes with refs = 1. NULL on ENOMEM. */
struct blob *blob_new(size_t len);

static inline void rc_get(struct rc *rc)
{
    atomic_fetch_add_explicit(&rc->refs, 1, memory_order_relaxed);
}

static inline void rc_get_n(struct rc *rc, uint32_t n)
{
    atomic_fetch_add_explicit(&rc->refs, n, memory_order_relaxed);
}

/* Drops a reference; frees the object with the last one. NULL is ignored. */
void rc_put(struct rc *rc);

#endif
