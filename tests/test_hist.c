/*
 * test_hist.c: unit tests for the latency histogram.
 *
 * Percentiles of uniform, exponential and bimodal data sets are checked
 * against the exact, sort-based ones: the histogram's answer must lie in the
 * exact value's sub-bucket, at most 0.1% above it. Merging must equal
 * recording everything in one histogram, byte for byte; the text form must
 * round-trip and refuse what is malformed or inconsistent. The V2 encoding is
 * taken apart layer by layer (base64, zlib stored blocks and Adler-32, the V2
 * header, the ZigZag varints) and its counts compared with the original.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

/* ---- helpers --------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Uniform in (0, 1]. */
static double rng_unit(uint64_t *s)
{
    return (double)((rng_next(s) >> 11) + 1) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static struct hist *new_hist(void)
{
    struct hist *h = hist_new();
    cr_assert_not_null(h);
    return h;
}

/* The exact value at quantile q of sorted[0..n), with HdrHistogram's rank:
 * ceil(q n), at least 1. */
static uint64_t exact_at(const uint64_t *sorted, size_t n, double q)
{
    double r = ceil(nextafter(q, 0) * (double)n);
    size_t rank = r < 1 ? 1 : (size_t)r;
    return sorted[rank - 1];
}

static void check_percentiles(const char *name, uint64_t *v, size_t n)
{
    static const double qs[] = {0,   0.001, 0.01, 0.1,   0.25,   0.5, 0.75,
                                0.9, 0.95,  0.99, 0.999, 0.9999, 1,   0.123456};
    struct hist *h = new_hist();
    for (size_t i = 0; i < n; i++)
        hist_record(h, v[i]);
    qsort(v, n, sizeof(*v), cmp_u64);
    cr_assert_eq(hist_count(h), (int64_t)n);
    cr_assert_eq(hist_min(h), v[0], "%s: min", name);
    cr_assert_eq(hist_max(h), v[n - 1], "%s: max", name);
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        uint64_t want = exact_at(v, n, qs[k]), got = hist_value_at(h, qs[k]);
        /* Same sub-bucket as the exact value ... */
        cr_assert_eq(hist_lowest_equivalent(got), hist_lowest_equivalent(want),
                     "%s q=%g: got %llu, exact %llu", name, qs[k], (unsigned long long)got,
                     (unsigned long long)want);
        /* ... which means within 3 significant digits. */
        cr_assert(fabs((double)got - (double)want) <= (double)want / 1000.0 + 1,
                  "%s q=%g: got %llu, exact %llu", name, qs[k], (unsigned long long)got,
                  (unsigned long long)want);
        if (qs[k] > 0)
            cr_assert_eq(got, hist_highest_equivalent(want));
        else
            cr_assert_eq(got, hist_lowest_equivalent(want));
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    double mean = sum / (double)n;
    cr_assert(fabs(hist_mean(h) - mean) <= mean / 1000.0, "%s: mean %g vs exact %g", name,
              hist_mean(h), mean);
    hist_free(h);
}

/* ---- layout ---------------------------------------------------------------- */

Test(hist, layout_is_contiguous_and_three_digits)
{
    /* Walk every sub-bucket from 0 to HIST_MAX_VALUE: each starts right after
     * the previous one ends and is at most 1/1024 of its values wide. */
    uint64_t v = 0;
    size_t buckets = 0;
    for (;;) {
        uint64_t lo = hist_lowest_equivalent(v), hi = hist_highest_equivalent(v);
        cr_assert_eq(lo, v);
        cr_assert(hi >= lo);
        if (v < 2048)
            cr_assert_eq(hi, lo, "values below 2048 are exact");
        else
            cr_assert((hi - lo + 1) * 1024 <= lo, "sub-bucket of %llu too wide",
                      (unsigned long long)v);
        cr_assert_eq(hist_lowest_equivalent(hi), lo);
        buckets++;
        if (hi >= HIST_MAX_VALUE)
            break;
        v = hi + 1;
    }
    cr_assert(buckets <= HIST_COUNTS_LEN);
    cr_assert_eq(hist_lowest_equivalent(HIST_MAX_VALUE + 5),
                 hist_lowest_equivalent(HIST_MAX_VALUE));
}

/* ---- edge cases ------------------------------------------------------------ */

Test(hist, empty)
{
    struct hist *h = new_hist();
    cr_assert_eq(hist_count(h), 0);
    cr_assert_eq(hist_min(h), 0);
    cr_assert_eq(hist_max(h), 0);
    cr_assert_eq(hist_value_at(h, 0.5), 0);
    cr_assert_eq(hist_value_at(h, 1), 0);
    cr_assert(hist_mean(h) == 0);
    char buf[64];
    cr_assert_eq(hist_encode(h, buf, sizeof(buf)), strlen("H1 0 0 0 0"));
    cr_assert_str_eq(buf, "H1 0 0 0 0");
    struct hist *d = new_hist();
    hist_record(d, 5);
    cr_assert_eq(hist_decode(d, buf, strlen(buf)), 0);
    cr_assert_eq(memcmp(d, h, sizeof(*h)), 0);
    hist_free(h);
    hist_free(d);
}

Test(hist, single_value)
{
    struct hist *h = new_hist();
    hist_record(h, 1234567);
    cr_assert_eq(hist_count(h), 1);
    cr_assert_eq(hist_min(h), 1234567);
    cr_assert_eq(hist_max(h), 1234567);
    uint64_t lo = hist_lowest_equivalent(1234567), hi = hist_highest_equivalent(1234567);
    cr_assert(lo <= 1234567 && 1234567 <= hi);
    cr_assert_eq(hist_value_at(h, 0), lo);
    cr_assert_eq(hist_value_at(h, 0.5), hi);
    cr_assert_eq(hist_value_at(h, 1), hi);
    cr_assert_eq(hist_value_at(h, 7), hi, "q above 1 is clamped");
    cr_assert_eq(hist_value_at(h, -1), lo, "q below 0 is clamped");
    cr_assert_eq(hist_value_at(h, NAN), lo);
    cr_assert(fabs(hist_mean(h) - 1234567) <= 1234567 / 1000.0);
    hist_free(h);
}

Test(hist, value_zero)
{
    struct hist *h = new_hist();
    hist_record(h, 0);
    cr_assert_eq(hist_count(h), 1);
    cr_assert_eq(hist_min(h), 0);
    cr_assert_eq(hist_max(h), 0);
    cr_assert_eq(hist_value_at(h, 1), 0);
    cr_assert_eq(hist_value_at(h, 0), 0);
    cr_assert(hist_mean(h) == 0);
    hist_record(h, 1);
    cr_assert_eq(hist_value_at(h, 0.5), 0);
    cr_assert_eq(hist_value_at(h, 1), 1);
    hist_free(h);
}

Test(hist, small_values_are_exact)
{
    struct hist *h = new_hist();
    for (uint64_t v = 0; v < 2048; v++)
        hist_record(h, v);
    for (uint64_t v = 0; v < 2048; v++)
        cr_assert_eq(hist_value_at(h, (double)(v + 1) / 2048), v);
    hist_free(h);
}

Test(hist, overflow_is_clamped_and_counted)
{
    struct hist *h = new_hist();
    hist_record(h, 1000);
    hist_record(h, HIST_MAX_VALUE);
    hist_record(h, HIST_MAX_VALUE + 1);
    hist_record(h, UINT64_MAX);
    hist_record_n(h, HIST_MAX_VALUE * 2, 3);
    cr_assert_eq(hist_count(h), 7);
    cr_assert_eq(h->overflow, 5);
    cr_assert_eq(hist_max(h), HIST_MAX_VALUE);
    cr_assert_eq(hist_value_at(h, 1), hist_highest_equivalent(HIST_MAX_VALUE));
    cr_assert_eq(hist_value_at(h, 0.1), hist_highest_equivalent(1000));
    char buf[256];
    hist_encode(h, buf, sizeof(buf));
    struct hist *d = new_hist();
    cr_assert_eq(hist_decode(d, buf, strlen(buf)), 0, "%s", buf);
    cr_assert_eq(memcmp(d, h, sizeof(*h)), 0);
    hist_free(h);
    hist_free(d);
}

Test(hist, record_n_and_reset)
{
    struct hist *a = new_hist(), *b = new_hist();
    for (int i = 0; i < 5; i++)
        hist_record(a, 777777);
    hist_record_n(b, 777777, 5);
    hist_record_n(b, 3, 0);
    hist_record_n(b, 3, -4);
    cr_assert_eq(memcmp(a, b, sizeof(*a)), 0);
    hist_reset(a);
    struct hist *e = new_hist();
    cr_assert_eq(memcmp(a, e, sizeof(*a)), 0);
    hist_free(a);
    hist_free(b);
    hist_free(e);
}

/* ---- percentiles against exact ones ----------------------------------------- */

#define NSAMPLES 200000

Test(hist, percentiles_uniform)
{
    uint64_t s = 0x9e3779b97f4a7c15u, *v = malloc(NSAMPLES * sizeof(*v));
    for (size_t i = 0; i < NSAMPLES; i++)
        v[i] = 1000 + rng_next(&s) % 1000000000; /* 1 us .. 1 s */
    check_percentiles("uniform", v, NSAMPLES);
    free(v);
}

Test(hist, percentiles_exponential)
{
    uint64_t s = 42, *v = malloc(NSAMPLES * sizeof(*v));
    for (size_t i = 0; i < NSAMPLES; i++)
        v[i] = (uint64_t)(-log(rng_unit(&s)) * 250000.0); /* mean 250 us */
    check_percentiles("exponential", v, NSAMPLES);
    free(v);
}

Test(hist, percentiles_bimodal)
{
    uint64_t s = 7, *v = malloc(NSAMPLES * sizeof(*v));
    for (size_t i = 0; i < NSAMPLES; i++) {
        /* 90% around 80 us, 10% around 40 ms: a fast path and a slow path. */
        uint64_t r = rng_next(&s);
        v[i] = r % 10 ? 70000 + r / 10 % 20000 : 35000000 + r / 10 % 10000000;
    }
    check_percentiles("bimodal", v, NSAMPLES);
    free(v);
}

Test(hist, percentiles_small_sets)
{
    uint64_t s = 99, v[37];
    for (size_t n = 1; n <= 37; n++) {
        for (size_t i = 0; i < n; i++)
            v[i] = rng_next(&s) % 5000000;
        check_percentiles("small", v, n);
    }
}

Test(hist, one_second_outlier)
{
    /* 8999 replies near 1 ms and one that took 1 s: the outlier is more than
     * 0.01% of the samples, so p99.99 must be it, and max too. */
    struct hist *h = new_hist();
    uint64_t s = 5;
    for (int i = 0; i < 8999; i++)
        hist_record(h, 900000 + rng_next(&s) % 200000);
    hist_record(h, 1000000000);
    cr_assert_eq(hist_max(h), 1000000000);
    uint64_t p9999 = hist_value_at(h, 0.9999);
    cr_assert(p9999 >= 1000000000 && p9999 <= 1001000000, "p99.99 = %llu",
              (unsigned long long)p9999);
    cr_assert(hist_value_at(h, 0.99) < 1100000);
    cr_assert(hist_value_at(h, 0.999) < 1100000);
    hist_free(h);
}

/* ---- merge ------------------------------------------------------------------ */

Test(hist, merge_equals_recording_both)
{
    struct hist *a = new_hist(), *b = new_hist(), *both = new_hist();
    uint64_t s = 1234;
    for (int i = 0; i < 50000; i++) {
        uint64_t x = rng_next(&s) % 3000000, y = 5000000 + rng_next(&s) % 900000000;
        hist_record(a, x);
        hist_record(both, x);
        hist_record(b, y);
        hist_record(both, y);
    }
    hist_record(b, HIST_MAX_VALUE + 10);
    hist_record(both, HIST_MAX_VALUE + 10);
    hist_merge(a, b);
    cr_assert_eq(memcmp(a, both, sizeof(*a)), 0);

    /* Merging into an empty one copies; merging an empty one changes nothing. */
    struct hist *e = new_hist();
    hist_merge(e, both);
    cr_assert_eq(memcmp(e, both, sizeof(*e)), 0);
    hist_reset(b);
    hist_merge(e, b);
    cr_assert_eq(memcmp(e, both, sizeof(*e)), 0);
    hist_free(a);
    hist_free(b);
    hist_free(both);
    hist_free(e);
}

/* ---- text serialisation ------------------------------------------------------ */

static void roundtrip(const struct hist *h)
{
    size_t n = hist_encode(h, NULL, 0);
    char *buf = malloc(n + 1);
    cr_assert_eq(hist_encode(h, buf, n + 1), n);
    cr_assert_eq(strlen(buf), n);
    for (size_t i = 0; i < n; i++)
        cr_assert(buf[i] >= ' ' && buf[i] < 0x7f && buf[i] != '"' && buf[i] != '\\');
    struct hist *d = new_hist();
    cr_assert_eq(hist_decode(d, buf, n), 0, "%.200s", buf);
    cr_assert_eq(memcmp(d, h, sizeof(*h)), 0);
    /* A trailing newline, as from a pipe, is fine. */
    buf = realloc(buf, n + 3);
    memcpy(buf + n, "\r\n", 2);
    hist_reset(d);
    cr_assert_eq(hist_decode(d, buf, n + 2), 0);
    cr_assert_eq(memcmp(d, h, sizeof(*h)), 0);
    /* Too small a buffer: the length is still reported, nothing half-written. */
    char small[8];
    cr_assert_eq(hist_encode(h, small, sizeof(small)), n);
    if (n >= sizeof(small))
        cr_assert_str_eq(small, "");
    free(buf);
    hist_free(d);
}

Test(hist, text_roundtrip)
{
    struct hist *h = new_hist();
    roundtrip(h);
    hist_record(h, 0);
    roundtrip(h);
    uint64_t s = 77;
    for (int i = 0; i < 100000; i++)
        hist_record(h, rng_next(&s) % (HIST_MAX_VALUE + HIST_MAX_VALUE / 100));
    cr_assert(h->overflow > 0);
    roundtrip(h);
    hist_reset(h);
    hist_record_n(h, 123456789, INT64_MAX / 2);
    hist_record_n(h, 5, INT64_MAX / 2);
    roundtrip(h);
    hist_free(h);
}

Test(hist, text_known_form)
{
    struct hist *h = new_hist();
    hist_record(h, 3);
    hist_record(h, 3);
    hist_record(h, 10);
    hist_record(h, 5000);
    char buf[128];
    hist_encode(h, buf, sizeof(buf));
    /* 5000 is in bucket 2 (2^12 <= 5000 < 2^13), sub-bucket 5000 >> 2 = 1250:
     * index 3 * 1024 + 1250 - 1024 = 3298, 3288 after index 10. */
    cr_assert_str_eq(buf, "H1 4 0 3 5000 3:2 7:1 3288:1");
    hist_free(h);
}

Test(hist, text_rejects)
{
    static const char *bad[] = {
        "",
        "H1",
        "H2 0 0 0 0",
        "H1 0 0 0",
        "H1 0 0 0 0 x",
        "H1 0 0 1 0",                                 /* empty but with a min */
        "H1 1 0 0 0",                                 /* count without buckets */
        "H1 1 0 5 5 5:2",                             /* counts do not add up */
        "H1 2 0 5 6 5:1 1:1 ",                        /* fine but for ... */
        "H1 1 0 5 5 5:0",                             /* zero count listed */
        "H1 2 0 5 5 5:1 0:1",                         /* index repeated */
        "H1 1 0 5 6 5:1",                             /* max outside the last bucket */
        "H1 1 0 4 5 5:1",                             /* min outside the first bucket */
        "H1 2 0 6 5 5:1 1:1",                         /* min > max */
        "H1 1 1 5 5 5:1",                             /* overflow below the top */
        "H1 1 0 5 5 33792:1",                         /* index out of range */
        "H1 1 0 5 5 -5:1",                            /* sign */
        "H1 1 0 5 5 5:1:1",                           /* junk */
        "H1 1 0 5 5 5:99999999999999999999",          /* count too large */
        "H1 99999999999999999999 0 5 5 5:1",          /* count too large */
        "H1 1 0 5 5 5 :1",                            /* space inside an entry */
        "H1 1 0 5 5 5:",                              /* missing count */
        "H1 1 0 3600000000001 3600000000001 33791:1", /* above the top */
    };
    struct hist *h = new_hist();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *s = bad[i];
        int ok = strcmp(s, "H1 2 0 5 6 5:1 1:1 ") == 0;
        cr_assert_eq(hist_decode(h, s, strlen(s)), ok ? 0 : -EINVAL, "\"%s\"", s);
    }
    hist_free(h);
}

/* ---- HdrHistogram V2 encoding ------------------------------------------------ */

static int b64_val(char c)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(a, c);
    return c && p ? (int)(p - a) : -1;
}

static size_t b64_decode(const char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    cr_assert_eq(n % 4, 0);
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s[i + k] == '=' ? 0 : b64_val(s[i + k]);
        for (int k = 0; k < 4; k++)
            cr_assert(v[k] >= 0, "bad base64 char at %zu", i + (size_t)k);
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (s[i + 2] != '=')
            out[o++] = (unsigned char)(w >> 8);
        if (s[i + 3] != '=')
            out[o++] = (unsigned char)w;
    }
    return o;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Undoes every layer and checks the counts against h. */
static void check_v2(const struct hist *h)
{
    size_t n = hist_encode_v2_base64(h, NULL, 0);
    char *text = malloc(n + 1);
    cr_assert_eq(hist_encode_v2_base64(h, text, n + 1), n);
    cr_assert_eq(strncmp(text, "HISTF", 5), 0, "%.20s", text);
    unsigned char *bin = malloc(n);
    size_t len = b64_decode(text, n, bin);

    cr_assert_eq(be(bin, 4), 0x1c849314);
    size_t zlen = (size_t)be(bin + 4, 4);
    cr_assert_eq(8 + zlen, len);
    const unsigned char *z = bin + 8;
    cr_assert_eq(z[0], 0x78);
    cr_assert_eq((z[0] * 256 + z[1]) % 31, 0);
    cr_assert_eq(z[1] & 0x20, 0, "no preset dictionary");

    /* Stored blocks, then the Adler-32 of what they held. */
    unsigned char *raw = malloc(zlen);
    size_t rlen = 0, pos = 2;
    for (;;) {
        cr_assert(pos + 5 <= zlen - 4);
        unsigned hdr = z[pos], blen = z[pos + 1] | z[pos + 2] << 8,
                 nlen = z[pos + 3] | z[pos + 4] << 8;
        cr_assert_eq(hdr & 6, 0, "BTYPE stored");
        cr_assert_eq(blen ^ 0xffff, nlen);
        pos += 5;
        cr_assert(pos + blen <= zlen - 4);
        memcpy(raw + rlen, z + pos, blen);
        rlen += blen;
        pos += blen;
        if (hdr & 1)
            break;
    }
    cr_assert_eq(pos + 4, zlen);
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < rlen; i++) {
        a = (a + raw[i]) % 65521;
        b = (b + a) % 65521;
    }
    cr_assert_eq(be(z + pos, 4), (uint64_t)(b << 16 | a));

    /* The V2 header. */
    cr_assert_eq(be(raw, 4), 0x1c849313);
    size_t plen = (size_t)be(raw + 4, 4);
    cr_assert_eq(40 + plen, rlen);
    cr_assert_eq(be(raw + 8, 4), 0);
    cr_assert_eq(be(raw + 12, 4), 3);
    cr_assert_eq(be(raw + 16, 8), 1);
    cr_assert_eq(be(raw + 24, 8), HIST_MAX_VALUE);
    cr_assert_eq(be(raw + 32, 8), 0x3ff0000000000000);

    /* The counts. */
    int64_t *counts = calloc(HIST_COUNTS_LEN, sizeof(*counts));
    size_t idx = 0;
    for (size_t p = 40; p < rlen;) {
        uint64_t zz = 0;
        int shift = 0;
        for (int k = 0; k < 9; k++) {
            unsigned char c = raw[p++];
            if (k == 8) {
                zz |= (uint64_t)c << 56;
                break;
            }
            zz |= (uint64_t)(c & 0x7f) << shift;
            shift += 7;
            if (!(c & 0x80))
                break;
        }
        int64_t v = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
        if (v < 0) {
            cr_assert(v < -1, "a single zero is written as 0");
            idx += (size_t)-v;
        } else {
            cr_assert(idx < HIST_COUNTS_LEN);
            counts[idx++] = v;
        }
    }
    cr_assert(idx <= HIST_COUNTS_LEN);
    cr_assert_eq(memcmp(counts, h->counts, sizeof(h->counts)), 0);
    free(counts);
    free(raw);
    free(bin);
    free(text);
}

Test(hist, v2_encoding)
{
    struct hist *h = new_hist();
    check_v2(h);
    hist_record(h, 0);
    check_v2(h);
    hist_record_n(h, 1, 2);
    hist_record_n(h, 3600000000000, INT64_MAX / 4); /* a nine-byte varint */
    check_v2(h);
    hist_reset(h);
    /* 20000 sub-buckets with six-byte varints: the V2 encoding outgrows one
     * 65535-byte stored block. */
    uint64_t v = 0;
    for (int i = 0; i < 20000; i++, v = hist_highest_equivalent(v) + 1)
        hist_record_n(h, v, (INT64_C(1) << 40) + i * 7919);
    cr_assert(hist_encode_v2_base64(h, NULL, 0) > 4 * 65535 / 3 + 100);
    check_v2(h);
    hist_free(h);
}

Test(hist, log_format)
{
    char buf[4096];
    size_t n = hist_log_header(1441812123.0, buf, sizeof(buf));
    cr_assert_eq(n, strlen(buf));
    cr_assert_str_eq(buf, "#[Histogram log format version 1.3]\n"
                          "#[StartTime: 1441812123.000 (seconds since epoch), Wed Sep 09 "
                          "15:22:03 UTC 2015]\n"
                          "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
                          "\"Interval_Compressed_Histogram\"\n");
    struct hist *h = new_hist();
    hist_record(h, 2500000);
    hist_record(h, 1000);
    n = hist_log_interval(h, "sse", 0.127, 1.0, buf, sizeof(buf));
    cr_assert_eq(n, strlen(buf));
    char v2[1024];
    hist_encode_v2_base64(h, v2, sizeof(v2));
    char want[2048];
    snprintf(want, sizeof(want), "Tag=sse,0.127,1.000,2.500,%s\n", v2);
    cr_assert_str_eq(buf, want);
    /* A tag that would break the line is dropped. */
    hist_log_interval(h, "a,b", 12.5, 0.25, buf, sizeof(buf));
    snprintf(want, sizeof(want), "12.500,0.250,2.500,%s\n", v2);
    cr_assert_str_eq(buf, want);
    hist_log_interval(h, NULL, 12.5, 0.25, buf, sizeof(buf));
    cr_assert_str_eq(buf, want);
    hist_free(h);
}
