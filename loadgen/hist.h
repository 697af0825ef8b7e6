/*
 * hist.h: the load generator's latency histogram, HdrHistogram's layout fixed
 * at one size: values 0 .. HIST_MAX_VALUE (one hour in nanoseconds) with three
 * significant decimal digits, so any two histograms merge exactly.
 *
 * A struct hist belongs to whoever made it: each worker thread records into
 * its own and the main thread merges them; nothing here locks or keeps global
 * state. Histograms cross thread and process boundaries as text (hist_encode /
 * hist_decode) and leave the program as an HdrHistogram interval log line
 * (hist_log_*) that HdrHistogram's own tools read. Nothing here does I/O or
 * reads a clock: the caller writes the strings and supplies the timestamps.
 */
#ifndef RINGLOAD_HIST_H
#define RINGLOAD_HIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The layout, in HdrHistogram's terms: lowest discernible value 1, highest
 * trackable value HIST_MAX_VALUE, 3 significant digits. Each power of two
 * from 2^11 upwards is a bucket of 1024 sub-buckets (the lower half of the
 * 2048 overlaps the bucket below), values below 2048 have one sub-bucket
 * each, so a value v shares its sub-bucket with at most v/1024 others: the
 * relative error is below 1/1024 < 0.1%.
 */
#define HIST_SIG_DIGITS     3
#define HIST_SUB_BUCKETS    2048 /* 2^11, the smallest power of two >= 2 * 10^3 */
#define HIST_SUB_HALF_SHIFT 10   /* log2(HIST_SUB_BUCKETS / 2) */
#define HIST_BUCKETS        32   /* 2048 << 31 = 2^42 > HIST_MAX_VALUE */
#define HIST_COUNTS_LEN     ((HIST_BUCKETS + 1) * (HIST_SUB_BUCKETS / 2))
#define HIST_MAX_VALUE      (UINT64_C(3600) * 1000000000) /* one hour in ns */

struct hist {
    int64_t count;    /* values recorded, overflowed ones included */
    int64_t overflow; /* values above HIST_MAX_VALUE, recorded as HIST_MAX_VALUE */
    uint64_t min;     /* smallest value recorded, exactly; UINT64_MAX when empty */
    uint64_t max;     /* largest value recorded (after clamping), exactly; 0 when empty */
    int64_t counts[HIST_COUNTS_LEN];
};

/* Allocates an empty histogram (about 270 KB) with calloc; NULL when out of
 * memory. Release it with hist_free (free() does the same). A struct hist
 * may as well live anywhere else once hist_reset has been called on it. */
struct hist *hist_new(void);
void hist_free(struct hist *h);

/* Empties h (every count 0, min UINT64_MAX, max 0). */
void hist_reset(struct hist *h);

/* Records value once, or n times (n <= 0 records nothing). A value above
 * HIST_MAX_VALUE is recorded as HIST_MAX_VALUE and counted in h->overflow. */
void hist_record(struct hist *h, uint64_t value);
void hist_record_n(struct hist *h, uint64_t value, int64_t n);

/* Adds every count of src to dst, as if dst had recorded src's values too.
 * Exact: the result equals one histogram that recorded both. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at quantile q (0..1, clamped), as HdrHistogram's
 * getValueAtPercentile(100 q) defines it: the highest value equivalent to
 * (sharing the sub-bucket of) the recorded value whose rank reaches
 * ceil(q * count) (at least 1); for q == 0, the lowest equivalent value of the
 * smallest one. So the answer is never below the exact quantile and above it
 * by less than 0.1%. 0 when h is empty.
 */
uint64_t hist_value_at(const struct hist *h, double q);

/* Exact smallest and largest recorded values (0 when empty). */
uint64_t hist_min(const struct hist *h);
uint64_t hist_max(const struct hist *h);
/* Mean as HdrHistogram computes it: each value counts as the middle of its
 * sub-bucket, so it is within 0.05% of the exact mean. 0 when empty. */
double hist_mean(const struct hist *h);
int64_t hist_count(const struct hist *h);

/* The sub-bucket of value v: its lowest and highest equivalent values. Two
 * values are recorded alike iff they have the same lowest equivalent. */
uint64_t hist_lowest_equivalent(uint64_t v);
uint64_t hist_highest_equivalent(uint64_t v);

/*
 * Text serialisation, for merging across threads and processes: one line of
 * printable ASCII (no quotes or backslashes, so it also fits in a JSON
 * string), no newline:
 *
 *     H1 <count> <overflow> <min> <max>[ <gap>:<n>]...
 *
 * with one "<gap>:<n>" per non-zero sub-bucket in index order: <n> its count,
 * <gap> its index minus the previous one's (the first: its index). An empty
 * histogram is "H1 0 0 0 0".
 *
 * hist_encode writes it to out when it fits (cap > the return value, then
 * NUL-terminated) and returns its length, like snprintf; call with cap 0 to
 * learn the size. hist_decode replaces *h with what buf[0..len) holds (a
 * trailing newline or spaces are fine) and returns 0, or -EINVAL when the
 * text is malformed or inconsistent (counts not adding up to <count>, an
 * index out of range, min or max outside the recorded sub-buckets), leaving
 * *h unspecified.
 */
size_t hist_encode(const struct hist *h, char *out, size_t cap);
int hist_decode(struct hist *h, const char *buf, size_t len);

/*
 * HdrHistogram interval logs (the "Histogram log format version 1.3" text
 * that HistogramLogReader, HistogramLogProcessor and the online plotters
 * read). Both functions return the text's length and write it, NUL-terminated,
 * only when cap is larger, like snprintf.
 *
 * hist_log_header writes the preamble: the format version, "#[StartTime: ...]"
 * from start_epoch_s (seconds since the Unix epoch, shown in UTC) and the
 * column legend.
 *
 * hist_log_interval writes one interval line:
 *
 *     [Tag=<tag>,]<start_s>,<length_s>,<max in ms>,<histogram>\n
 *
 * start_s is relative to the start time, values are taken to be nanoseconds
 * (the max column is divided by 10^6, as HistogramLogWriter does by default)
 * and <histogram> is h in HdrHistogram's V2 compressed encoding, base64. The
 * "compressed" payload is a valid zlib stream made of stored deflate blocks,
 * so it needs no zlib here and any inflater reads it. tag may be NULL; it
 * must not contain ',', whitespace or control bytes (such a tag is dropped).
 */
size_t hist_log_header(double start_epoch_s, char *out, size_t cap);
size_t hist_log_interval(const struct hist *h, const char *tag, double start_s, double length_s,
                         char *out, size_t cap);

/* The base64 V2 compressed encoding of h alone (what hist_log_interval puts
 * in its last column), with snprintf's return convention. */
size_t hist_encode_v2_base64(const struct hist *h, char *out, size_t cap);

#endif
