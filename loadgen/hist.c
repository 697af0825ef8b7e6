/*
 * hist.c: the latency histogram: HdrHistogram's log-linear layout at one
 * fixed size, its percentile rules, a text form for merging and HdrHistogram's
 * V2 encoding for its interval logs.
 *
 * Owns nothing but the memory hist_new hands out; any thread may use its own
 * histograms. The V2 encoder streams: counts become ZigZag varints, which are
 * framed as stored deflate blocks inside a zlib stream, which is base64'd
 * straight into the caller's buffer, so it needs neither zlib nor scratch
 * memory. It does not compress (see hist.h) and does not decode V2.
 */
#include "hist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- layout ------------------------------------------------------------- */

/* The power-of-two bucket of v (v <= HIST_MAX_VALUE): 0 for v < 2048, else
 * the number of bits above the 11 a sub-bucket index keeps. */
static inline int hist_bucket_of(uint64_t v)
{
    return 64 - __builtin_clzll(v | (HIST_SUB_BUCKETS - 1)) - 11;
}

static inline size_t hist_index_of(uint64_t v)
{
    int b = hist_bucket_of(v);
    return ((size_t)(b + 1) << HIST_SUB_HALF_SHIFT) + (size_t)(v >> b) - HIST_SUB_BUCKETS / 2;
}

/* The lowest value of the sub-bucket at counts index i. */
static inline uint64_t hist_value_of(size_t i)
{
    int b = (int)(i >> HIST_SUB_HALF_SHIFT) - 1;
    uint64_t sub = (i & (HIST_SUB_BUCKETS / 2 - 1)) + HIST_SUB_BUCKETS / 2;
    if (b < 0) {
        sub -= HIST_SUB_BUCKETS / 2;
        b = 0;
    }
    return sub << b;
}

static inline uint64_t hist_clamp(uint64_t v)
{
    return v > HIST_MAX_VALUE ? HIST_MAX_VALUE : v;
}

uint64_t hist_lowest_equivalent(uint64_t v)
{
    return hist_value_of(hist_index_of(hist_clamp(v)));
}

uint64_t hist_highest_equivalent(uint64_t v)
{
    v = hist_clamp(v);
    return hist_lowest_equivalent(v) + (UINT64_C(1) << hist_bucket_of(v)) - 1;
}

/* ---- recording and queries ---------------------------------------------- */

struct hist *hist_new(void)
{
    struct hist *h = calloc(1, sizeof(*h));
    if (h != NULL)
        h->min = UINT64_MAX;
    return h;
}

void hist_free(struct hist *h)
{
    free(h);
}

void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void hist_record_n(struct hist *h, uint64_t value, int64_t n)
{
    if (n <= 0)
        return;
    if (value > HIST_MAX_VALUE) {
        value = HIST_MAX_VALUE;
        h->overflow += n;
    }
    h->counts[hist_index_of(value)] += n;
    h->count += n;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void hist_record(struct hist *h, uint64_t value)
{
    hist_record_n(h, value, 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->count == 0)
        return;
    /* Only the occupied range: a histogram of one run's latencies spans a
     * few buckets of the 33. */
    size_t lo = hist_index_of(src->min), hi = hist_index_of(src->max);
    for (size_t i = lo; i <= hi; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->overflow += src->overflow;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_value_at(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (!(q > 0)) /* also NaN */
        q = 0;
    if (q > 1)
        q = 1;
    /* One ulp down, as HdrHistogram does, so that a product like 0.99 * 100
     * that rounds up past 99 does not push the rank into the next value. */
    double qq = nextafter(q, 0);
    int64_t rank = (int64_t)ceil(qq * (double)h->count);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    int64_t seen = 0;
    size_t hi = hist_index_of(h->max);
    for (size_t i = hist_index_of(h->min); i <= hi; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_value_of(i);
            return q == 0 ? v : hist_highest_equivalent(v);
        }
    }
    return hist_highest_equivalent(h->max); /* unreachable for a consistent h */
}

uint64_t hist_min(const struct hist *h)
{
    return h->count ? h->min : 0;
}

uint64_t hist_max(const struct hist *h)
{
    return h->count ? h->max : 0;
}

int64_t hist_count(const struct hist *h)
{
    return h->count;
}

double hist_mean(const struct hist *h)
{
    if (h->count == 0)
        return 0;
    double total = 0;
    size_t hi = hist_index_of(h->max);
    for (size_t i = hist_index_of(h->min); i <= hi; i++) {
        if (h->counts[i] == 0)
            continue;
        uint64_t lo = hist_value_of(i);
        uint64_t mid = lo + ((UINT64_C(1) << hist_bucket_of(lo)) >> 1);
        total += (double)mid * (double)h->counts[i];
    }
    return total / (double)h->count;
}

/* ---- bounded output, snprintf style -------------------------------------- */

/* Appends to out[0..cap) while it fits and counts every byte regardless, so
 * the final len is what a large enough buffer would have needed. */
struct hist_out {
    char *out;
    size_t cap, len;
};

static void hist_putc(struct hist_out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->out[o->len] = c;
    o->len++;
}

static void hist_puts(struct hist_out *o, const char *s)
{
    while (*s)
        hist_putc(o, *s++);
}

static void hist_putu(struct hist_out *o, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        hist_putc(o, tmp[--n]);
}

/* Terminates the text if all of it fit; returns its length. */
static size_t hist_finish(struct hist_out *o)
{
    if (o->len < o->cap)
        o->out[o->len] = 0;
    else if (o->cap)
        o->out[0] = 0; /* never leave a truncated text that looks whole */
    return o->len;
}

/* ---- text serialisation -------------------------------------------------- */

size_t hist_encode(const struct hist *h, char *out, size_t cap)
{
    struct hist_out o = {out, cap, 0};
    hist_puts(&o, "H1 ");
    hist_putu(&o, (uint64_t)h->count);
    hist_putc(&o, ' ');
    hist_putu(&o, (uint64_t)h->overflow);
    hist_putc(&o, ' ');
    hist_putu(&o, hist_min(h));
    hist_putc(&o, ' ');
    hist_putu(&o, hist_max(h));
    if (h->count) {
        size_t prev = 0, hi = hist_index_of(h->max);
        for (size_t i = hist_index_of(h->min); i <= hi; i++) {
            if (h->counts[i] == 0)
                continue;
            hist_putc(&o, ' ');
            hist_putu(&o, i - prev);
            hist_putc(&o, ':');
            hist_putu(&o, (uint64_t)h->counts[i]);
            prev = i;
        }
    }
    return hist_finish(&o);
}

/* Reads a decimal number (at least one digit, no sign) up to max. */
static int hist_getu(const char **p, const char *end, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (s == end || *s < '0' || *s > '9')
        return -EINVAL;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

/* Skips one or more blanks; -EINVAL when there is none. */
static int hist_blank(const char **p, const char *end)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (s == *p)
        return -EINVAL;
    *p = s;
    return 0;
}

int hist_decode(struct hist *h, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    uint64_t count, overflow, min, max;
    hist_reset(h);
    /* Trailing whitespace (a newline from a pipe, say) is not part of it. */
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    if (end - p < 2 || p[0] != 'H' || p[1] != '1')
        return -EINVAL;
    p += 2;
    if (hist_blank(&p, end) < 0 || hist_getu(&p, end, INT64_MAX, &count) < 0 ||
        hist_blank(&p, end) < 0 || hist_getu(&p, end, INT64_MAX, &overflow) < 0 ||
        hist_blank(&p, end) < 0 || hist_getu(&p, end, HIST_MAX_VALUE, &min) < 0 ||
        hist_blank(&p, end) < 0 || hist_getu(&p, end, HIST_MAX_VALUE, &max) < 0)
        return -EINVAL;

    uint64_t total = 0, index = 0;
    size_t first = 0, last = 0;
    int any = 0;
    while (p < end) {
        uint64_t gap, n;
        if (hist_blank(&p, end) < 0 || hist_getu(&p, end, HIST_COUNTS_LEN, &gap) < 0 || p == end ||
            *p++ != ':' || hist_getu(&p, end, INT64_MAX, &n) < 0)
            return -EINVAL;
        /* Gaps after the first are at least 1: indices strictly increase. */
        if ((any && gap == 0) || n == 0 || gap >= HIST_COUNTS_LEN - index ||
            n > (uint64_t)INT64_MAX - total)
            return -EINVAL;
        index += gap;
        total += n;
        h->counts[index] = (int64_t)n;
        if (!any)
            first = (size_t)index;
        last = (size_t)index;
        any = 1;
    }
    if (total != count)
        return -EINVAL;
    if (count == 0)
        return min == 0 && max == 0 && overflow == 0 ? 0 : -EINVAL;
    /* min and max must lie in the first and last occupied sub-buckets, and
     * overflowed values are all in HIST_MAX_VALUE's. */
    if (min > max || hist_index_of(min) != first || hist_index_of(max) != last)
        return -EINVAL;
    if (overflow > 0 &&
        (max != HIST_MAX_VALUE || overflow > (uint64_t)h->counts[hist_index_of(HIST_MAX_VALUE)]))
        return -EINVAL;
    h->count = (int64_t)count;
    h->overflow = (int64_t)overflow;
    h->min = min;
    h->max = max;
    return 0;
}

/* ---- HdrHistogram V2 compressed encoding, base64 -------------------------- */

/*
 * The layers, outermost first (all integers big-endian, as Java's ByteBuffer
 * writes them):
 *
 *   cookie 0x1c849314 (V2 compressed), int32 length of the zlib stream,
 *   zlib stream: header 78 01, stored blocks of at most 65535 bytes, Adler-32 of
 *   the V2 encoding: cookie 0x1c849313, int32 payload length, int32 normalizing
 *     index offset (0), int32 significant digits, int64 lowest discernible
 *     value, int64 highest trackable value, double integer-to-double ratio
 *     (1.0), then the payload: the counts from index 0 through max's as ZigZag
 *     LEB128 varints, a run of k > 1 zero counts written as -k.
 *
 * Each layer is a byte sink that feeds the next one, so nothing is buffered
 * beyond the three bytes of a base64 group.
 */
#define HIST_V2_COOKIE            0x1c849313u
#define HIST_V2_COMPRESSED_COOKIE 0x1c849314u
#define HIST_V2_HEADER_LEN        40
#define HIST_STORED_BLOCK_MAX     65535u

struct hist_v2 {
    struct hist_out o;
    unsigned char group[3]; /* base64 group being filled */
    int ngroup;
    uint64_t raw_len, raw_pos; /* V2 encoding length, bytes framed so far */
    uint32_t adler_a, adler_b;
    size_t payload_len; /* dry run: counts bytes instead of emitting */
    int dry;
};

static const char hist_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void hist_b64_group(struct hist_v2 *e, int n)
{
    unsigned char *g = e->group;
    uint32_t w = (uint32_t)g[0] << 16 | (uint32_t)(n > 1 ? g[1] : 0) << 8 | (n > 2 ? g[2] : 0);
    hist_putc(&e->o, hist_b64[w >> 18 & 63]);
    hist_putc(&e->o, hist_b64[w >> 12 & 63]);
    hist_putc(&e->o, n > 1 ? hist_b64[w >> 6 & 63] : '=');
    hist_putc(&e->o, n > 2 ? hist_b64[w & 63] : '=');
}

/* Outermost sink: base64. */
static void hist_b64_byte(struct hist_v2 *e, unsigned char c)
{
    e->group[e->ngroup++] = c;
    if (e->ngroup == 3) {
        hist_b64_group(e, 3);
        e->ngroup = 0;
    }
}

static void hist_b64_be32(struct hist_v2 *e, uint32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        hist_b64_byte(e, (unsigned char)(v >> s));
}

/* Middle sink: the zlib stream, a stored block header before every 65535
 * bytes and the Adler-32 of all of them. */
static void hist_zlib_byte(struct hist_v2 *e, unsigned char c)
{
    if (e->dry) {
        e->payload_len++;
        return;
    }
    if (e->raw_pos % HIST_STORED_BLOCK_MAX == 0) {
        uint64_t left = e->raw_len - e->raw_pos;
        unsigned blen = left > HIST_STORED_BLOCK_MAX ? HIST_STORED_BLOCK_MAX : (unsigned)left;
        hist_b64_byte(e, left <= HIST_STORED_BLOCK_MAX); /* BFINAL, BTYPE 00 */
        hist_b64_byte(e, (unsigned char)blen);
        hist_b64_byte(e, (unsigned char)(blen >> 8));
        hist_b64_byte(e, (unsigned char)~blen);
        hist_b64_byte(e, (unsigned char)(~blen >> 8));
    }
    e->adler_a = (e->adler_a + c) % 65521;
    e->adler_b = (e->adler_b + e->adler_a) % 65521;
    e->raw_pos++;
    hist_b64_byte(e, c);
}

static void hist_zlib_be(struct hist_v2 *e, uint64_t v, int bytes)
{
    for (int s = 8 * (bytes - 1); s >= 0; s -= 8)
        hist_zlib_byte(e, (unsigned char)(v >> s));
}

/* HdrHistogram's ZigZagEncoding.putLong: LEB128 groups of 7 bits, except
 * that a ninth byte carries the last 8 bits whole. */
static void hist_zigzag(struct hist_v2 *e, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    for (int i = 0; i < 8; i++) {
        if ((z >> 7) == 0) {
            hist_zlib_byte(e, (unsigned char)z);
            return;
        }
        hist_zlib_byte(e, (unsigned char)(z | 0x80));
        z >>= 7;
    }
    hist_zlib_byte(e, (unsigned char)z);
}

/* The counts, as HdrHistogram's fillBufferFromCountsArray writes them. */
static void hist_v2_payload(struct hist_v2 *e, const struct hist *h)
{
    size_t limit = hist_index_of(hist_max(h)) + 1;
    for (size_t i = 0; i < limit;) {
        int64_t c = h->counts[i++];
        int64_t zeros = 0;
        if (c == 0) {
            zeros = 1;
            while (i < limit && h->counts[i] == 0) {
                zeros++;
                i++;
            }
        }
        hist_zigzag(e, zeros > 1 ? -zeros : c);
    }
}

static void hist_v2_write(struct hist_v2 *e, const struct hist *h)
{
    /* The V2 header holds the payload's length, so measure it first. */
    e->dry = 1;
    hist_v2_payload(e, h);
    e->dry = 0;
    e->raw_len = HIST_V2_HEADER_LEN + e->payload_len;
    uint64_t blocks = (e->raw_len + HIST_STORED_BLOCK_MAX - 1) / HIST_STORED_BLOCK_MAX;
    uint64_t zlen = 2 + 5 * blocks + e->raw_len + 4;
    e->adler_a = 1;
    e->adler_b = 0;

    hist_b64_be32(e, HIST_V2_COMPRESSED_COOKIE);
    hist_b64_be32(e, (uint32_t)zlen);
    hist_b64_byte(e, 0x78); /* deflate, 32 KiB window */
    hist_b64_byte(e, 0x01); /* no dictionary, check bits: 0x7801 % 31 == 0 */
    hist_zlib_be(e, HIST_V2_COOKIE, 4);
    hist_zlib_be(e, e->payload_len, 4);
    hist_zlib_be(e, 0, 4); /* normalizing index offset */
    hist_zlib_be(e, HIST_SIG_DIGITS, 4);
    hist_zlib_be(e, 1, 8); /* lowest discernible value */
    hist_zlib_be(e, HIST_MAX_VALUE, 8);
    hist_zlib_be(e, UINT64_C(0x3ff0000000000000), 8); /* 1.0 */
    hist_v2_payload(e, h);
    hist_b64_be32(e, e->adler_b << 16 | e->adler_a);
    if (e->ngroup)
        hist_b64_group(e, e->ngroup);
    e->ngroup = 0;
}

size_t hist_encode_v2_base64(const struct hist *h, char *out, size_t cap)
{
    struct hist_v2 e = {.o = {out, cap, 0}};
    hist_v2_write(&e, h);
    return hist_finish(&e.o);
}

/* ---- interval log --------------------------------------------------------- */

/* Writes v >= 0 with three decimals, the "%.3f" HistogramLogWriter uses,
 * without printf so the locale cannot swap the decimal point. */
static void hist_put_fixed3(struct hist_out *o, double v)
{
    if (!(v >= 0) || v > 1e15)
        v = 0;
    uint64_t m = (uint64_t)llround(v * 1000);
    hist_putu(o, m / 1000);
    hist_putc(o, '.');
    hist_putc(o, (char)('0' + m / 100 % 10));
    hist_putc(o, (char)('0' + m / 10 % 10));
    hist_putc(o, (char)('0' + m % 10));
}

size_t hist_log_header(double start_epoch_s, char *out, size_t cap)
{
    struct hist_out o = {out, cap, 0};
    char date[64] = "";
    struct tm tm;
    time_t t = (time_t)start_epoch_s;
    if (gmtime_r(&t, &tm) != NULL)
        strftime(date, sizeof(date), "%a %b %d %H:%M:%S UTC %Y", &tm);
    hist_puts(&o, "#[Histogram log format version 1.3]\n#[StartTime: ");
    hist_put_fixed3(&o, start_epoch_s);
    hist_puts(&o, " (seconds since epoch), ");
    hist_puts(&o, date);
    hist_puts(&o, "]\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
                  "\"Interval_Compressed_Histogram\"\n");
    return hist_finish(&o);
}

static int hist_tag_ok(const char *tag)
{
    if (tag == NULL || *tag == 0)
        return 0;
    for (const char *s = tag; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == ',' || *s == 0x7f)
            return 0;
    return 1;
}

size_t hist_log_interval(const struct hist *h, const char *tag, double start_s, double length_s,
                         char *out, size_t cap)
{
    struct hist_v2 e = {.o = {out, cap, 0}};
    if (hist_tag_ok(tag)) {
        hist_puts(&e.o, "Tag=");
        hist_puts(&e.o, tag);
        hist_putc(&e.o, ',');
    }
    hist_put_fixed3(&e.o, start_s);
    hist_putc(&e.o, ',');
    hist_put_fixed3(&e.o, length_s);
    hist_putc(&e.o, ',');
    hist_put_fixed3(&e.o, (double)hist_max(h) / 1e6);
    hist_putc(&e.o, ',');
    hist_v2_write(&e, h);
    hist_putc(&e.o, '\n');
    return hist_finish(&e.o);
}
