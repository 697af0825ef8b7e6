/*
 * chan.h: one worker's table of channels and each channel's history.
 *
 * Every worker holds a replica of every channel that has messages: the
 * channel's home worker assigns ids and broadcasts each message to all
 * workers, which append it to their replica's history in the same order. So a
 * resume or a poll on any worker is answered locally, with no cross-worker
 * round trip. Only the owning worker thread touches a table. Subscriber lists
 * are threaded through the worker's connection records; a channel keeps only
 * the head and a count.
 */
#ifndef RINGCAST_CHAN_H
#define RINGCAST_CHAN_H

#include <stdint.h>

#include "msg.h"
#include "span.h"

#define CHAN_NONE UINT32_MAX

struct chan {
    struct chan *next;   /* hash chain */
    uint32_t hash;
    uint32_t nsubs;      /* local subscribers, every transport */
    uint32_t sub_head;   /* first subscriber's connection slot, or CHAN_NONE */
    uint32_t hcap, hstart, hcount;
    uint64_t last_id;    /* last id this worker has seen (on the home worker: assigned) */
    struct msg **hist;   /* ring of held messages, oldest at hist[hstart] */
    uint16_t name_len;
    uint8_t reap;        /* queued for chan_maybe_free by its worker */
    char name[];
};

struct chan_table {
    struct chan **buckets;
    uint32_t nbuckets;
    uint32_t count;
    uint32_t history_max; /* --history */
    uint64_t ttl_ms;      /* --history-ttl, 0 for none */
};

/* What a client that has seen ids up to `since` gets from history. */
struct chan_range {
    uint32_t first;          /* index into history (0 = oldest held) */
    uint32_t count;          /* how many held messages follow */
    int gap;                 /* 1 when some wanted ids are no longer held */
    uint64_t gap_requested;  /* the first id asked for */
    uint64_t gap_first;      /* the first id that will follow */
};

/* FNV-1a: the channel's hash, also used to pick its home worker. */
uint32_t chan_hash(span_t name);

int chan_table_init(struct chan_table *t, uint32_t history_max, uint64_t ttl_ms);
void chan_table_destroy(struct chan_table *t);

struct chan *chan_find(const struct chan_table *t, span_t name, uint32_t hash);
/* Finds or creates; NULL on ENOMEM. */
struct chan *chan_get(struct chan_table *t, span_t name, uint32_t hash);
/* Frees c when nothing refers to it: no subscribers, no history, and no
 * message ever seen. A channel that had messages keeps its record (and so its
 * id counter) even when its history empties, so that ids never restart while
 * some client may still resume from one. Returns 1 if freed. */
int chan_maybe_free(struct chan_table *t, struct chan *c);

/* Appends m (taking the caller's reference), sets last_id, evicts past
 * --history. Returns 0 or -ENOMEM (then the reference is dropped). */
int chan_append(struct chan_table *t, struct chan *c, struct msg *m);
/* Drops messages older than the TTL. */
void chan_expire(struct chan_table *t, struct chan *c, uint64_t now_ms);

static inline struct msg *chan_hist_at(const struct chan *c, uint32_t i)
{
    return c->hist[(c->hstart + i) % c->hcap];
}

/* Oldest held id, or last_id + 1 when nothing is held. */
uint64_t chan_first_id(const struct chan *c);

/* What to send a client resuming after `since`; see README "Gap". */
void chan_since(const struct chan *c, uint64_t since, struct chan_range *r);

/* Calls fn on every channel (for TTL sweeps and shutdown). fn may free c. */
void chan_foreach(struct chan_table *t, void (*fn)(struct chan_table *, struct chan *, void *),
                  void *arg);

#endif
