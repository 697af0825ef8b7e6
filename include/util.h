/*
 * util.h: small macros and helpers shared by every module: branch hints,
 * FATAL(), array sizes, the monotonic clock. No state.
 */
#ifndef RINGCAST_UTIL_H
#define RINGCAST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CACHELINE 64

/* For the unrecoverable only: prints where and why, then aborts. */
#define FATAL(...)                                                             \
    do {                                                                       \
        fprintf(stderr, "ringcast: fatal at %s:%d: ", __FILE__, __LINE__);   \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        abort();                                                               \
    } while (0)

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_ms(void)
{
    return now_ns() / 1000000u;
}

#endif
