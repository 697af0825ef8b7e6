/*
 * spsc.h: a bounded lock-free ring of void* for exactly one producer thread
 * and one consumer thread. The workers' W x W broadcast mesh is made of these.
 *
 * The ring owns only its slot array; the pointers in it belong to whoever
 * pushed them until the consumer pops them. One thread may push, one other
 * thread may pop; init and destroy run while neither is using the ring.
 * It does not block, allocate after init, or wake anybody up: waking a
 * sleeping consumer is the caller's job (see "Doorbells" below).
 *
 * Memory ordering (C11 atomics). Head and tail are free-running counters;
 * a slot is counter & mask, and tail - head is the fill level.
 *   - The producer writes the slots, then store-releases the tail. The
 *     consumer load-acquires the tail before it reads those slots, so it sees
 *     the pointers and everything the producer wrote through them before the
 *     push (a message built, then pushed, arrives fully built).
 *   - The consumer reads the slots, then store-releases the head. The
 *     producer load-acquires the head before it reuses those slots, so it
 *     never overwrites a pointer the consumer has not read yet.
 *   - Each side keeps a private copy of the other side's counter and reloads
 *     the shared one only when its copy says the batch does not fit
 *     (producer) or the ring is empty (consumer), so a ring that is neither
 *     costs one store to the side's own line per batch and no read of the
 *     other side's line.
 *   - A batch is published with a single release store, however many items.
 *
 * Doorbells. A consumer that wants to sleep when all its rings are empty,
 * and producers that wake it only when it sleeps, must follow this protocol
 * (the worker implements it; this module does not):
 *   producer:  spsc_push*(q, ...);  (any number of rings, then)
 *              atomic_thread_fence(memory_order_seq_cst);
 *              if (atomic_load_explicit(&consumer->sleeping, memory_order_relaxed))
 *                  ring its doorbell;
 *   consumer:  atomic_store_explicit(&self->sleeping, 1, memory_order_relaxed);
 *              atomic_thread_fence(memory_order_seq_cst);
 *              if any inbox is !spsc_empty(): clear sleeping, go back to work;
 *              else block until the doorbell; then clear sleeping.
 * Both fences are needed: each side stores, then loads what the other side
 * stores (Dekker's pattern), and release/acquire alone lets the store pass
 * the load, so the producer could miss the flag while the consumer misses
 * the item and sleeps with work queued. With the two seq_cst fences at least
 * one of them sees the other. A doorbell may arrive when the consumer is
 * already awake; the consumer must treat it as harmless.
 */
#ifndef RINGCAST_SPSC_H
#define RINGCAST_SPSC_H

#include <stdatomic.h>
#include <stddef.h>

#include "util.h"

/*
 * Defined here so it can be embedded (the mesh is an array of these); touch
 * no field directly. It is cache-line aligned and three lines long: one line
 * read-only after init, one written only by the producer, one written only by
 * the consumer. Memory holding it must honour that alignment: a static or
 * automatic object, or aligned_alloc(CACHELINE, ...), not plain malloc().
 */
struct spsc {
    /* Read by both threads, written only by spsc_init. */
    void **_slots;
    size_t _mask; /* capacity - 1 */

    /*
     * The producer's line. The consumer reads _tail only when its cached copy
     * says empty; _head_cache sits here because the producer checks it right
     * before it writes _tail, so keeping them together costs no extra miss.
     */
    _Alignas(CACHELINE) _Atomic size_t _tail;
    size_t _head_cache;

    /* The consumer's line, the mirror image of the producer's. */
    _Alignas(CACHELINE) _Atomic size_t _head;
    size_t _tail_cache;
};

/*
 * Allocates the slots for at least `capacity` pointers, rounded up to a power
 * of two of at least 2. Returns 0, or -ENOMEM when the slots cannot be
 * allocated (including a capacity too large to round up). On failure q needs
 * no spsc_destroy, but calling it is harmless.
 */
int spsc_init(struct spsc *q, size_t capacity);

/* Frees the slots. Pointers still in the ring are not touched: drain first. */
void spsc_destroy(struct spsc *q);

/*
 * Producer only. Pushes the longest prefix of items[0..n) that fits and
 * returns its length (0 when full or n == 0), published with one release
 * store. The caller keeps ownership of items[ret..n).
 */
size_t spsc_push_batch(struct spsc *q, void *const *items, size_t n);

/* Producer only. Returns 1 when pushed, 0 when full. */
int spsc_push(struct spsc *q, void *item);

/*
 * Consumer only. Pops up to max pointers into out[], oldest first, and
 * returns how many (0 when empty). Ownership of them passes to the caller.
 */
size_t spsc_pop_batch(struct spsc *q, void **out, size_t max);

/* Consumer only. Pops one pointer into *out: returns 1, or 0 when empty. */
int spsc_pop(struct spsc *q, void **out);

/*
 * Consumer only. Returns 1 when there is nothing to pop. When its cached
 * copy of the tail says empty it re-reads the tail with an acquire load, so
 * it is the right check after the doorbell fence.
 */
int spsc_empty(struct spsc *q);

/* Either thread. The usable number of slots (a power of two). */
size_t spsc_capacity(const struct spsc *q);

#endif
