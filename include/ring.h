/*
 * ring.h: one worker's io_uring, set up with the newest features the kernel
 * and the configuration allow, falling back tier by tier (DESIGN.md). Owned
 * and touched only by its worker thread, which must also be the thread that
 * calls ring_init() (SINGLE_ISSUER).
 *
 * Features are found by probing, never by reading the kernel version: setup
 * flags by retrying io_uring_queue_init_params() with fewer flags on -EINVAL,
 * opcodes with io_uring_get_probe_ring(), and flags that no probe reports by an
 * opcode of the same kernel release (IORING_OP_SOCKET came with multishot
 * accept in 5.19, IORING_OP_SEND_ZC with multishot recv in 6.0).
 */
#ifndef RINGCAST_RING_H
#define RINGCAST_RING_H

#include <liburing.h>
#include <stdint.h>

struct ring {
    struct io_uring uring;
    uint32_t feat;       /* enum feature bits in use */
    uint32_t nfiles;     /* direct descriptor table size, 0 without FEAT_DIRECT */
    /* Provided-buffer ring, with FEAT_RECV_MULTISHOT only. */
    struct io_uring_buf_ring *br;
    char *bufs;
    uint32_t nbufs, bufsize;
    uint64_t cq_overflow_seen;
};

#define RING_BGID 1

/* What a ring is set up with. */
struct ring_params {
    uint32_t allowed;    /* enum feature bits it may use */
    uint32_t sq_entries; /* the completion queue gets four times as many */
    uint32_t nfiles;     /* direct descriptor table; capped by RLIMIT_NOFILE, as the
                            kernel requires */
    uint32_t nbufs;      /* provided receive buffers (a power of two) ... */
    uint32_t bufsize;    /* ... of this many bytes */
};

/* Sets r up as p asks, falling back feature by feature. Returns 0 or a
 * negative errno. */
int ring_init(struct ring *r, const struct ring_params *p);
void ring_exit(struct ring *r);

/* An SQE, submitting first when the queue is full. Never NULL. */
struct io_uring_sqe *ring_sqe(struct ring *r);

/* Gives buffer bid back to the kernel's buffer ring. */
void ring_buf_recycle(struct ring *r, uint16_t bid);

static inline char *ring_buf(struct ring *r, uint16_t bid)
{
    return r->bufs + (size_t)bid * r->bufsize;
}

#endif
