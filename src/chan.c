/*
 * chan.c: a worker's channel table (chained hash, doubled when full) and each
 * channel's history ring. Owned by one worker thread; no locking.
 */
#include "chan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint32_t chan_hash(span_t name)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < name.len; i++) {
        h ^= (unsigned char)name.base[i];
        h *= 16777619u;
    }
    return h;
}

int chan_table_init(struct chan_table *t, uint32_t history_max, uint64_t ttl_ms)
{
    t->nbuckets = 1024;
    t->count = 0;
    t->history_max = history_max;
    t->ttl_ms = ttl_ms;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    return t->buckets ? 0 : -ENOMEM;
}

static void chan_free(struct chan *c)
{
    for (uint32_t i = 0; i < c->hcount; i++)
        rc_put(&chan_hist_at(c, i)->rc);
    free(c->hist);
    free(c);
}

void chan_table_destroy(struct chan_table *t)
{
    for (uint32_t b = 0; b < t->nbuckets; b++) {
        struct chan *c = t->buckets[b], *n;
        for (; c; c = n) {
            n = c->next;
            chan_free(c);
        }
    }
    free(t->buckets);
    t->buckets = NULL;
}

struct chan *chan_find(const struct chan_table *t, span_t name, uint32_t hash)
{
    for (struct chan *c = t->buckets[hash & (t->nbuckets - 1)]; c; c = c->next)
        if (c->hash == hash && c->name_len == name.len && memcmp(c->name, name.base, name.len) == 0)
            return c;
    return NULL;
}

static void grow(struct chan_table *t)
{
    uint32_t n = t->nbuckets * 2;
    struct chan **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (uint32_t i = 0; i < t->nbuckets; i++) {
        struct chan *c = t->buckets[i], *next;
        for (; c; c = next) {
            next = c->next;
            c->next = b[c->hash & (n - 1)];
            b[c->hash & (n - 1)] = c;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

struct chan *chan_get(struct chan_table *t, span_t name, uint32_t hash)
{
    struct chan *c = chan_find(t, name, hash);
    if (c)
        return c;
    c = calloc(1, sizeof(*c) + name.len);
    if (!c)
        return NULL;
    c->hash = hash;
    c->sub_head = CHAN_NONE;
    c->name_len = (uint16_t)name.len;
    memcpy(c->name, name.base, name.len);
    if (t->count >= t->nbuckets)
        grow(t);
    c->next = t->buckets[hash & (t->nbuckets - 1)];
    t->buckets[hash & (t->nbuckets - 1)] = c;
    t->count++;
    return c;
}

int chan_maybe_free(struct chan_table *t, struct chan *c)
{
    c->reap = 0;
    if (c->nsubs || c->hcount || c->last_id)
        return 0;
    struct chan **pp = &t->buckets[c->hash & (t->nbuckets - 1)];
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    t->count--;
    chan_free(c);
    return 1;
}

static void drop_oldest(struct chan *c)
{
    rc_put(&chan_hist_at(c, 0)->rc);
    c->hstart = (c->hstart + 1) % c->hcap;
    c->hcount--;
}

int chan_append(struct chan_table *t, struct chan *c, struct msg *m)
{
    c->last_id = m->id;
    if (t->history_max == 0) {
        rc_put(&m->rc);
        return 0;
    }
    if (c->hcount == t->history_max)
        drop_oldest(c);
    if (c->hcount == c->hcap) {
        /* Grow by doubling, up to --history, so quiet channels stay small. */
        uint32_t ncap = c->hcap ? c->hcap * 2 : 4;
        if (ncap > t->history_max)
            ncap = t->history_max;
        struct msg **h = malloc(ncap * sizeof(*h));
        if (!h) {
            rc_put(&m->rc);
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < c->hcount; i++)
            h[i] = chan_hist_at(c, i);
        free(c->hist);
        c->hist = h;
        c->hcap = ncap;
        c->hstart = 0;
    }
    c->hist[(c->hstart + c->hcount) % c->hcap] = m;
    c->hcount++;
    return 0;
}

void chan_expire(struct chan_table *t, struct chan *c, uint64_t now_ms)
{
    if (!t->ttl_ms)
        return;
    while (c->hcount && chan_hist_at(c, 0)->time_ms + t->ttl_ms <= now_ms)
        drop_oldest(c);
    if (c->hcount == 0 && c->hist) {
        free(c->hist); /* a quiet channel keeps only its record */
        c->hist = NULL;
        c->hcap = c->hstart = 0;
    }
}

uint64_t chan_first_id(const struct chan *c)
{
    return c->hcount ? chan_hist_at(c, 0)->id : c->last_id + 1;
}

void chan_since(const struct chan *c, uint64_t since, struct chan_range *r)
{
    uint64_t first = chan_first_id(c);
    r->gap = 0;
    r->gap_requested = r->gap_first = 0;
    if (since > c->last_id || since + 1 < first) {
        /* Either ids the client wants were evicted, or the client is ahead
         * of us (history lost, e.g. a restart): say so, then send all held. */
        r->gap = 1;
        r->gap_requested = since + 1;
        r->gap_first = first;
        r->first = 0;
        r->count = c->hcount;
        return;
    }
    r->first = (uint32_t)(since + 1 - first);
    r->count = c->hcount - r->first;
}

void chan_foreach(struct chan_table *t, void (*fn)(struct chan_table *, struct chan *, void *),
                  void *arg)
{
    for (uint32_t b = 0; b < t->nbuckets; b++) {
        struct chan *c = t->buckets[b], *n;
        for (; c; c = n) {
            n = c->next;
            fn(t, c, arg);
        }
    }
}
