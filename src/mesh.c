/*
 * mesh.c: a worker's subscriptions and the W x W SPSC mesh between workers.
 * A channel's subscribers on one worker form an intrusive list through the
 * connection records (or pooled nodes for multi-channel subscribers); a
 * publish goes to the channel's home worker, which numbers it and sends the
 * message back to every worker with subscribers, each delivering to its own
 * list. Items that find a ring full wait in an overflow list; a worker that
 * was sent something is woken once per loop iteration (MSG_RING, else an
 * eventfd). Everything here runs on the worker's own thread; only the SPSC
 * rings cross threads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util.h"
#include "worker_int.h"

/* ---- subscriptions ---- */

static uint32_t *link_next(struct worker *w, uint32_t id)
{
    return id & SUB_POOL ? &w->subs[id & ~SUB_POOL].next : &w->conns[id].snext;
}

static uint32_t *link_prev(struct worker *w, uint32_t id)
{
    return id & SUB_POOL ? &w->subs[id & ~SUB_POOL].prev : &w->conns[id].sprev;
}

static void list_insert(struct worker *w, struct chan *ch, uint32_t id)
{
    *link_prev(w, id) = SLOT_NONE;
    *link_next(w, id) = ch->sub_head;
    if (ch->sub_head != CHAN_NONE)
        *link_prev(w, ch->sub_head) = id;
    ch->sub_head = id;
    ch->nsubs++;
}

static void list_remove(struct worker *w, struct chan *ch, uint32_t id)
{
    uint32_t prev = *link_prev(w, id), next = *link_next(w, id);
    if (prev != SLOT_NONE)
        *link_next(w, prev) = next;
    else
        ch->sub_head = next;
    if (next != SLOT_NONE)
        *link_prev(w, next) = prev;
    if (--ch->nsubs == 0 && !ch->reap) {
        /* Not freed here: callers still hold ch for this round. */
        if (w->nreap == w->reapcap) {
            uint32_t n = w->reapcap ? w->reapcap * 2 : 64;
            struct chan **r = realloc(w->reap, n * sizeof(*r));
            if (!r)
                return; /* stays allocated: harmless */
            w->reap = r;
            w->reapcap = n;
        }
        ch->reap = 1;
        w->reap[w->nreap++] = ch;
    }
}

void mesh_reap_channels(struct worker *w)
{
    for (uint32_t i = 0; i < w->nreap; i++)
        chan_maybe_free(&w->chans, w->reap[i]);
    w->nreap = 0;
    atomic_store_explicit(&w->stats.channels, w->chans.count, memory_order_relaxed);
}

void conn_subscribe(struct worker *w, struct conn *c, struct chan *ch)
{
    c->chan = ch;
    list_insert(w, ch, conn_slot(w, c));
}

static uint32_t subnode_alloc(struct worker *w)
{
    if (w->sub_free == SLOT_NONE) {
        uint32_t n = w->nsubnodes ? w->nsubnodes * 2 : 256;
        struct subnode *p = realloc(w->subs, n * sizeof(*p));
        if (!p)
            return SLOT_NONE;
        for (uint32_t i = w->nsubnodes; i < n; i++)
            p[i].next = i + 1 < n ? i + 1 : SLOT_NONE;
        w->sub_free = w->nsubnodes;
        w->subs = p;
        w->nsubnodes = n;
    }
    uint32_t i = w->sub_free;
    w->sub_free = w->subs[i].next;
    return i;
}

int conn_subscribe_multi(struct worker *w, struct conn *c, struct chan **chans,
                         const uint64_t *last_ids, int n)
{
    uint32_t first = SLOT_NONE, *tail = &first;
    for (int i = 0; i < n; i++) {
        uint32_t k = subnode_alloc(w);
        if (k == SLOT_NONE) {
            c->flags |= CF_MULTI;
            c->snext = first;
            conn_unsubscribe(w, c);
            return -ENOMEM;
        }
        struct subnode *node = &w->subs[k];
        node->slot = conn_slot(w, c);
        node->ch = chans[i];
        node->last_id = last_ids[i];
        node->cnext = SLOT_NONE;
        list_insert(w, chans[i], k | SUB_POOL);
        *tail = k;
        tail = &node->cnext;
    }
    c->flags |= CF_MULTI;
    c->snext = first;
    return 0;
}

void conn_unsubscribe(struct worker *w, struct conn *c)
{
    if (c->flags & CF_MULTI) {
        for (uint32_t k = c->snext, next; k != SLOT_NONE; k = next) {
            struct subnode *node = &w->subs[k];
            next = node->cnext;
            list_remove(w, node->ch, k | SUB_POOL);
            node->next = w->sub_free;
            w->sub_free = k;
        }
        c->flags &= ~CF_MULTI;
        c->snext = SLOT_NONE;
        return;
    }
    if (!c->chan)
        return;
    list_remove(w, c->chan, conn_slot(w, c));
    c->sprev = c->snext = SLOT_NONE;
    c->chan = NULL;
}

/* ---- the mesh ---- */

void mesh_send(struct worker *w, int dst, struct rc *item)
{
    __typeof__(w->overflow[0]) *ov = &w->overflow[dst];
    w->bell[dst] = 1;
    if (ov->n == 0 && spsc_push(mesh_ring(w->srv, w->id, dst), item))
        return;
    /* Keep order: once anything waits, everything after it waits too. */
    if (ov->n == ov->cap) {
        uint32_t ncap = ov->cap ? ov->cap * 2 : 256;
        struct rc **it = realloc(ov->items, ncap * sizeof(*it));
        if (!it)
            FATAL("out of memory queueing for worker %d", dst);
        ov->items = it;
        ov->cap = ncap;
    }
    ov->items[ov->n++] = item;
    STAT_ADD(&w->stats, mesh_overflows, 1);
}

void mesh_flush_overflow(struct worker *w)
{
    for (int dst = 0; dst < w->srv->nworkers; dst++) {
        __typeof__(w->overflow[0]) *ov = &w->overflow[dst];
        if (!ov->n)
            continue;
        size_t k = spsc_push_batch(mesh_ring(w->srv, w->id, dst), (void *const *)ov->items, ov->n);
        memmove(ov->items, ov->items + k, (ov->n - k) * sizeof(*ov->items));
        ov->n -= (uint32_t)k;
        w->bell[dst] = 1;
    }
}

/* Wakes the targets of this round's items that announced they sleep. */
void mesh_ring_bells(struct worker *w)
{
    atomic_thread_fence(memory_order_seq_cst);
    for (int dst = 0; dst < w->srv->nworkers; dst++) {
        if (!w->bell[dst])
            continue;
        w->bell[dst] = 0;
        struct worker *t = &w->srv->workers[dst];
        if (!atomic_load_explicit(&t->sleeping, memory_order_relaxed))
            continue;
        if (has(w, FEAT_MSG_RING)) {
            struct io_uring_sqe *sqe = ring_sqe(&w->ring);
            io_uring_prep_msg_ring(sqe, t->ring_fd, 0, ud(OP_DOORBELL, 0, 0), 0);
            sqe->user_data = ud(OP_IGNORE, 0, 0);
        } else {
            uint64_t one = 1;
            ssize_t r = write(t->efd, &one, sizeof(one));
            (void)r; /* a full counter already means "wake up" */
        }
    }
}

void mesh_arm_doorbell(struct worker *w)
{
    if (has(w, FEAT_MSG_RING))
        return;
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);
    io_uring_prep_read(sqe, w->efd, &w->efd_buf, sizeof(w->efd_buf), 0);
    sqe->user_data = ud(OP_DOORBELL, 0, 0);
}

/* Hands m to every local subscriber, answers the publish's gather, then
 * keeps m in history (taking this worker's reference). */
static void deliver(struct worker *w, struct msg *m)
{
    struct chan *ch = chan_get(&w->chans, msg_channel(m), m->chan_hash);
    uint64_t reached = 0;
    if (ch) {
        chan_expire(&w->chans, ch, w->start_ms + w->now);
        for (uint32_t id = ch->sub_head, next; id != CHAN_NONE; id = next) {
            struct subnode *node = id & SUB_POOL ? &w->subs[id & ~SUB_POOL] : NULL;
            struct conn *c = &w->conns[node ? node->slot : id];
            next = *link_next(w, id); /* serve_deliver may unsubscribe c */
            if (unlikely(w->cfg->fault_drop) && ++w->fault_count % w->cfg->fault_drop == 0)
                continue; /* a deliberate, silent loss for testing checkers */
            serve_deliver(w, c, node, m);
            reached++;
        }
    }
    STAT_ADD(&w->stats, deliveries, reached);
    struct gather *g = m->gather;
    if (g) {
        atomic_fetch_add_explicit(&g->sum, reached, memory_order_relaxed);
        if (atomic_fetch_sub_explicit(&g->pending, 1, memory_order_acq_rel) == 1) {
            if (g->origin == w->id)
                serve_gather_done(w, g);
            else
                mesh_send(w, g->origin, &g->rc);
        }
    }
    if (ch)
        chan_append(&w->chans, ch, m);
    else
        rc_put(&m->rc);
    atomic_store_explicit(&w->stats.channels, w->chans.count, memory_order_relaxed);
}

void worker_publish_local(struct worker *w, struct pubreq *r)
{
    int nw = w->srv->nworkers;
    span_t name = span_of(r->data, r->chan_len);
    span_t event = span_of(r->data + r->chan_len, r->event_len);
    span_t payload = span_of(r->data + r->chan_len + r->event_len, r->payload_len);
    struct gather *g = calloc(1, sizeof(*g) + name.len);
    struct chan *ch = g ? chan_get(&w->chans, name, r->hash) : NULL;
    struct msg *m = ch ? msg_new(name, r->hash, ch->last_id + 1, event, payload, r->binary,
                                 w->start_ms + w->now)
                       : NULL;
    if (g) {
        atomic_init(&g->rc.refs, 1);
        g->rc.type = RC_GATHER;
        g->kind = G_PUBLISH;
        g->origin = r->origin;
        g->slot = r->slot;
        g->gen = r->gen;
        g->hash = r->hash;
        g->chan_len = r->chan_len;
        memcpy(g->name, name.base, name.len);
    }
    if (!m) {
        /* id 0 tells the origin the publish failed; it answers 503. */
        if (!g)
            FATAL("out of memory publishing on worker %d", w->id);
        atomic_init(&g->pending, 0);
        if (g->origin == w->id)
            serve_gather_done(w, g);
        else
            mesh_send(w, g->origin, &g->rc);
        return;
    }
    g->id = m->id;
    atomic_init(&g->pending, (uint32_t)nw);
    m->gather = g;
    if (nw > 1)
        rc_get_n(&m->rc, (uint32_t)nw - 1);
    for (int dst = 0; dst < nw; dst++)
        if (dst != w->id)
            mesh_send(w, dst, &m->rc);
    STAT_ADD(&w->stats, publishes, 1);
    deliver(w, m);
}

void worker_gather_answer(struct worker *w, struct gather *g)
{
    struct chan *ch = chan_find(&w->chans, span_of(g->name, g->chan_len), g->hash);
    if (ch)
        atomic_fetch_add_explicit(&g->sum, ch->nsubs, memory_order_relaxed);
    if (atomic_fetch_sub_explicit(&g->pending, 1, memory_order_acq_rel) == 1) {
        if (g->origin == w->id)
            serve_gather_done(w, g);
        else
            mesh_send(w, g->origin, &g->rc);
    }
}

static void handle_item(struct worker *w, struct rc *item)
{
    switch (item->type) {
    case RC_PUBREQ:
        worker_publish_local(w, (struct pubreq *)item);
        rc_put(item);
        break;
    case RC_MSG:
        deliver(w, (struct msg *)item);
        break;
    case RC_GATHER: {
        struct gather *g = (struct gather *)item;
        /* The origin gets a gather back only once everyone answered. */
        if (g->origin == w->id)
            serve_gather_done(w, g);
        else
            worker_gather_answer(w, g);
        break;
    }
    default:
        FATAL("unknown mesh item type %d", item->type);
    }
}

int mesh_drain_inbox(struct worker *w)
{
    void *items[64];
    int total = 0;
    for (int src = 0; src < w->srv->nworkers; src++) {
        if (src == w->id)
            continue;
        size_t n = spsc_pop_batch(mesh_ring(w->srv, src, w->id), items, ARRAY_SIZE(items));
        for (size_t i = 0; i < n; i++)
            handle_item(w, items[i]);
        total += (int)n;
    }
    return total;
}

int mesh_inbox_empty(struct worker *w)
{
    for (int src = 0; src < w->srv->nworkers; src++)
        if (src != w->id && !spsc_empty(mesh_ring(w->srv, src, w->id)))
            return 0;
    return 1;
}
