/*
 * worker_int.h: what worker.c (connections, completions, the loop) and
 * mesh.c (subscriptions and the cross-worker mesh) share and nobody else
 * uses: the operation tags in user_data, and the mesh's calls from the loop.
 */
#ifndef RINGCAST_WORKER_INT_H
#define RINGCAST_WORKER_INT_H

#include <stdint.h>

#include "worker.h"

/* user_data: (operation << 56) | (generation, 24 bits) << 32 | slot. */
enum op {
    OP_ACCEPT = 1,
    OP_RECV,
    OP_POLL,
    OP_SEND,
    OP_CLOSE,
    OP_IGNORE,
    OP_DOORBELL,
    OP_ACCEPT_TLS
};

static inline uint64_t ud(int op, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)op << 56) | ((uint64_t)(gen & 0xffffff) << 32) | slot;
}
static inline int ud_op(uint64_t u)
{
    return (int)(u >> 56);
}
static inline uint32_t ud_slot(uint64_t u)
{
    return (uint32_t)u;
}
static inline uint32_t ud_gen(uint64_t u)
{
    return (uint32_t)(u >> 32) & 0xffffff;
}

static inline int has(struct worker *w, uint32_t feat)
{
    return (w->ring.feat & feat) != 0;
}

/* ---- mesh.c, called from the loop ---- */

/* Frees the replicas of channels that lost their last subscriber. */
void mesh_reap_channels(struct worker *w);
/* Retries the items that did not fit a full SPSC ring. */
void mesh_flush_overflow(struct worker *w);
/* Wakes the workers that were sent something this iteration. */
void mesh_ring_bells(struct worker *w);
/* Arms this worker's doorbell (eventfd read) where MSG_RING is missing. */
void mesh_arm_doorbell(struct worker *w);
/* Handles what the other workers sent; returns how many items. */
int mesh_drain_inbox(struct worker *w);
/* 1 when no other worker has anything queued for this one. */
int mesh_inbox_empty(struct worker *w);

#endif
