/*
 * spsc.c: the single-producer single-consumer pointer ring (see spsc.h for
 * the memory-ordering contract and the doorbell protocol built on it).
 *
 * Owns the slot array only. spsc_push* run on the producer thread and write
 * _tail and _head_cache; spsc_pop* and spsc_empty run on the consumer thread
 * and write _head and _tail_cache; nothing else is written after init. Each
 * side reads its own counter relaxed (only it writes it) and the other
 * side's with acquire, and only when its cached copy has run out.
 */
#include "spsc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct spsc) == 3 * CACHELINE, "struct spsc: one line per writer");

int spsc_init(struct spsc *q, size_t capacity)
{
    q->_slots = NULL;
    q->_mask = 0;
    atomic_init(&q->_tail, 0);
    atomic_init(&q->_head, 0);
    q->_head_cache = 0;
    q->_tail_cache = 0;

    /* tail - head must stay below 2^(bits-1) for the free-running counters. */
    if (capacity > SIZE_MAX / 2 + 1)
        return -ENOMEM;
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    if (cap > SIZE_MAX / sizeof(void *) - CACHELINE)
        return -ENOMEM;

    /*
     * Whole cache lines of our own, so no other heap object shares a line
     * with the slots the two threads pass back and forth.
     */
    size_t bytes = (cap * sizeof(void *) + CACHELINE - 1) & ~(size_t)(CACHELINE - 1);
    q->_slots = aligned_alloc(CACHELINE, bytes);
    if (q->_slots == NULL)
        return -ENOMEM;
    q->_mask = cap - 1;
    return 0;
}

void spsc_destroy(struct spsc *q)
{
    free(q->_slots);
    q->_slots = NULL;
    q->_mask = 0;
}

size_t spsc_capacity(const struct spsc *q)
{
    return q->_mask + 1;
}

size_t spsc_push_batch(struct spsc *q, void *const *items, size_t n)
{
    size_t cap = q->_mask + 1;
    size_t tail = atomic_load_explicit(&q->_tail, memory_order_relaxed);
    size_t room = cap - (tail - q->_head_cache);

    /*
     * Only look at the consumer's line when the cached head says the batch
     * does not fit. The acquire pairs with the consumer's release of _head:
     * its reads of the slots we are about to reuse are done.
     */
    if (room < n) {
        q->_head_cache = atomic_load_explicit(&q->_head, memory_order_acquire);
        room = cap - (tail - q->_head_cache);
        if (room < n)
            n = room;
    }
    if (unlikely(n == 0))
        return 0;

    size_t at = tail & q->_mask;
    size_t first = n < cap - at ? n : cap - at;
    memcpy(&q->_slots[at], items, first * sizeof(*items));
    memcpy(q->_slots, items + first, (n - first) * sizeof(*items));

    /* Publishes the slots (and whatever they point to) to the consumer. */
    atomic_store_explicit(&q->_tail, tail + n, memory_order_release);
    return n;
}

int spsc_push(struct spsc *q, void *item)
{
    size_t tail = atomic_load_explicit(&q->_tail, memory_order_relaxed);

    if (unlikely(tail - q->_head_cache > q->_mask)) {
        q->_head_cache = atomic_load_explicit(&q->_head, memory_order_acquire);
        if (tail - q->_head_cache > q->_mask)
            return 0;
    }
    q->_slots[tail & q->_mask] = item;
    atomic_store_explicit(&q->_tail, tail + 1, memory_order_release);
    return 1;
}

/*
 * Returns how many items the consumer may read. The shared tail is reloaded
 * only when the cached one says empty: reloading whenever fewer than `max`
 * are cached would read the producer's line on nearly every call of a
 * consumer that asks for large batches from a shallow ring.
 */
static size_t spsc_available(struct spsc *q, size_t head)
{
    size_t avail = q->_tail_cache - head;

    if (avail == 0) {
        /* Pairs with the producer's release of _tail: the slots are written. */
        q->_tail_cache = atomic_load_explicit(&q->_tail, memory_order_acquire);
        avail = q->_tail_cache - head;
    }
    return avail;
}

size_t spsc_pop_batch(struct spsc *q, void **out, size_t max)
{
    if (unlikely(max == 0))
        return 0;

    size_t head = atomic_load_explicit(&q->_head, memory_order_relaxed);
    size_t n = spsc_available(q, head);
    if (n == 0)
        return 0;
    if (n > max)
        n = max;

    size_t cap = q->_mask + 1;
    size_t at = head & q->_mask;
    size_t first = n < cap - at ? n : cap - at;
    memcpy(out, &q->_slots[at], first * sizeof(*out));
    memcpy(out + first, q->_slots, (n - first) * sizeof(*out));

    /* Hands the slots back: the producer may overwrite them after this. */
    atomic_store_explicit(&q->_head, head + n, memory_order_release);
    return n;
}

int spsc_pop(struct spsc *q, void **out)
{
    size_t head = atomic_load_explicit(&q->_head, memory_order_relaxed);

    if (spsc_available(q, head) == 0)
        return 0;
    *out = q->_slots[head & q->_mask];
    atomic_store_explicit(&q->_head, head + 1, memory_order_release);
    return 1;
}

int spsc_empty(struct spsc *q)
{
    size_t head = atomic_load_explicit(&q->_head, memory_order_relaxed);

    return spsc_available(q, head) == 0;
}
