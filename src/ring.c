/*
 * ring.c: io_uring setup with feature probing and fallbacks, the provided
 * buffer ring, and SQE allocation that flushes when the queue is full.
 *
 * Which practice needs which kernel:
 *   SINGLE_ISSUER + DEFER_TASKRUN      6.1   (else COOP_TASKRUN 5.19, else none)
 *   sparse direct descriptor table     5.19  (else registered array of -1, 5.15)
 *   ring-mapped provided buffers       5.19  (liburing 2.3 has no setup helper:
 *                                             we mmap and register ourselves)
 *   IORING_OP_MSG_RING                 5.18
 */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "config.h"

/* Setup flags from the newest kernel down; the first that the kernel takes
 * (and the configuration allows) wins. A 0 feature is always allowed. */
static const struct {
    uint32_t feature;
    unsigned flags;
} ladder[] = {
    {FEAT_SINGLE_ISSUER, IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
                             IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN},
    {FEAT_COOP_TASKRUN, IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
                            IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG},
    {0, IORING_SETUP_CQSIZE},
    {0, 0}, /* 5.4 and older: no CQSIZE either */
};

static int setup(struct ring *r, uint32_t entries, uint32_t allowed)
{
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof(ladder) / sizeof(ladder[0]); i++) {
        if (ladder[i].feature && !(allowed & ladder[i].feature))
            continue;
        struct io_uring_params p = {.flags = ladder[i].flags, .cq_entries = entries * 4};
        rc = io_uring_queue_init_params(entries, &r->uring, &p);
        if (rc == 0) {
            r->feat |= ladder[i].feature;
            return 0;
        }
        if (rc != -EINVAL)
            return rc; /* not a missing flag: no point trying fewer */
    }
    return rc;
}

static int register_files(struct ring *r, uint32_t n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n)
        n = (uint32_t)rl.rlim_cur; /* the kernel refuses larger tables */
    int rc = io_uring_register_files_sparse(&r->uring, n);
    if (rc < 0) {
        int *fds = malloc(n * sizeof(int));
        if (!fds)
            return -ENOMEM;
        memset(fds, 0xff, n * sizeof(int)); /* -1: empty slot */
        rc = io_uring_register_files(&r->uring, fds, n);
        free(fds);
    }
    if (rc == 0)
        r->nfiles = n;
    return rc;
}

static int setup_buf_ring(struct ring *r, uint32_t nbufs, uint32_t bufsize)
{
    r->nbufs = nbufs;
    r->bufsize = bufsize;
    size_t ring_bytes = r->nbufs * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    r->bufs = mmap(NULL, (size_t)r->nbufs * r->bufsize, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (r->bufs == MAP_FAILED) {
        munmap(mem, ring_bytes);
        r->bufs = NULL;
        return -errno;
    }
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = r->nbufs,
                                   .bgid = RING_BGID};
    int rc = io_uring_register_buf_ring(&r->uring, &reg, 0);
    if (rc < 0) {
        munmap(mem, ring_bytes);
        munmap(r->bufs, (size_t)r->nbufs * r->bufsize);
        r->bufs = NULL;
        return rc;
    }
    r->br = mem;
    io_uring_buf_ring_init(r->br);
    for (uint32_t i = 0; i < r->nbufs; i++)
        io_uring_buf_ring_add(r->br, ring_buf(r, (uint16_t)i), r->bufsize, (uint16_t)i,
                              io_uring_buf_ring_mask(r->nbufs), (int)i);
    io_uring_buf_ring_advance(r->br, (int)r->nbufs);
    return 0;
}

int ring_init(struct ring *r, const struct ring_params *p)
{
    uint32_t allowed = p->allowed;
    memset(r, 0, sizeof(*r));
    int rc = setup(r, p->sq_entries, allowed);
    if (rc < 0)
        return rc;
    struct io_uring_probe *probe = io_uring_get_probe_ring(&r->uring);
    int has_socket = probe && io_uring_opcode_supported(probe, IORING_OP_SOCKET);
    int has_send_zc = probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    int has_msg_ring = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
    int has_linkat = probe && io_uring_opcode_supported(probe, IORING_OP_LINKAT);
    if (probe)
        io_uring_free_probe(probe);

    if ((allowed & FEAT_DIRECT) && register_files(r, p->nfiles) == 0)
        r->feat |= FEAT_DIRECT;
    if ((allowed & FEAT_ACCEPT_MULTISHOT) && has_socket)
        r->feat |= FEAT_ACCEPT_MULTISHOT;
    if ((allowed & FEAT_RECV_MULTISHOT) && has_send_zc &&
        setup_buf_ring(r, p->nbufs, p->bufsize) == 0)
        r->feat |= FEAT_RECV_MULTISHOT;
    if ((allowed & FEAT_MSG_RING) && has_msg_ring)
        r->feat |= FEAT_MSG_RING;
    /* Multishot poll (5.13) has no opcode of its own; LINKAT (5.15) implies
     * a kernel past it. Without it, polls are re-armed one by one. */
    if ((allowed & FEAT_POLL_MULTISHOT) && has_linkat)
        r->feat |= FEAT_POLL_MULTISHOT;
    return 0;
}

void ring_exit(struct ring *r)
{
    io_uring_queue_exit(&r->uring);
    if (r->br)
        munmap(r->br, r->nbufs * sizeof(struct io_uring_buf));
    if (r->bufs)
        munmap(r->bufs, (size_t)r->nbufs * r->bufsize);
}

struct io_uring_sqe *ring_sqe(struct ring *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
    while (!sqe) {
        io_uring_submit(&r->uring);
        sqe = io_uring_get_sqe(&r->uring);
    }
    return sqe;
}

void ring_buf_recycle(struct ring *r, uint16_t bid)
{
    io_uring_buf_ring_add(r->br, ring_buf(r, bid), r->bufsize, bid,
                          io_uring_buf_ring_mask(r->nbufs), 0);
    io_uring_buf_ring_advance(r->br, 1);
}
