/*
 * test_result.c: ringload's results (loadgen/result.c): the JSON written and
 * read back, files from before the new fields, merging shards (percentiles
 * from the merged histogram against the exact ones of all the data),
 * comparing with a baseline figure by figure, the /proc parsers, the
 * HdrHistogram interval log (decoded here with zlib, as HdrHistogram's tools
 * would) and scenario_slice (every channel in exactly one shard).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "result.h"
#include "scenario.h"

/* ---- helpers ---------------------------------------------------------------------- */

static char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int n;
    char *p = buf[n++ % 4];
    snprintf(p, 256, "/tmp/test_result.%d.%s", (int)getpid(), name);
    return p;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A plausible single-process result. */
static void sample(struct result *r, uint64_t scale)
{
    cr_assert_eq(result_init(r), 0);
    snprintf(r->kernel, sizeof(r->kernel), "6.1.0");
    snprintf(r->hostname, sizeof(r->hostname), "box");
    r->cpus = 2;
    r->clk_tck = 100;
    r->threads = 2;
    r->merged = 1;
    r->scenario = strdup("sse = 100\nchannels = 4\n");
    r->clients = 102 * scale;
    r->connected = 102 * scale;
    r->subscribers = 100 * scale;
    r->published = 1000 * scale;
    r->acknowledged = 1000 * scale;
    r->deliveries = 25000 * scale;
    r->gaps = 1;
    r->refused = 2;
    r->protocol = 3;
    r->kinds[LK_SSE] = (struct result_kind){100 * scale, 0, 100 * scale, 25000 * scale, 0, 0};
    r->polls = 7;
    r->polls_per_s = 0.5;
    r->pongs = 9;
    r->ws_closes = 11;
    r->window_s = 10.02;
    r->duration_s = 10;
    r->measure_epoch_s = 1700000000.25;
    r->window_deliveries = 20000 * scale;
    r->window_published = 800 * scale;
    r->deliveries_per_s = 2000.0 * (double)scale;
    for (int i = 0; i < 1000; i++)
        hist_record(r->lat, 1000000 + (uint64_t)i * 1000);
    r->server_pid = 4242;
    r->server_rss_before_kb = 10000;
    r->server_rss_after_ramp_kb = 10000 + 100 * (long)scale;
    r->own_rss_before_kb = 5000;
    r->own_rss_after_ramp_kb = 5000 + 200 * (long)scale;
    r->server_bytes_per_connection = (double)(100 * 1024 / 102);
    r->ringload_bytes_per_client = (double)(200 * 1024 / 102);
    r->ringload_cpu_s = 1.5;
    r->ringload_cpu_window_s = 1.25;
    r->ringload_thread_busy_max_pct = 97.5;
    r->ringload_saturated = 1;
    r->wall_s = 13.5;
    r->server_cpu = (struct result_ticks){1, 1000, 500, 1100, 560};
    r->machine_cpu = (struct result_ticks){1, 50000, 90000, 50900, 92000};
    r->machine_busy_pct = result_machine_busy_pct(r);
}

static char *capture_compare(const struct result *base, const struct result *now,
                             const struct result_tolerance *tol, int *bad)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    *bad = result_compare(base, now, tol, f);
    fclose(f);
    return text;
}

/* ---- JSON ------------------------------------------------------------------------- */

Test(result, json_round_trip)
{
    struct result a, b;
    char err[512];
    sample(&a, 1);
    a.lost = 3;
    a.dup = 4;
    a.id_mismatches = 5;
    a.unanswered = 6;
    a.shard_index = 1;
    a.shard_count = 3;
    result_judge(&a);
    cr_assert_eq(a.exit_status, RESULT_DELIVERY);
    const char *path = tmp_path("rt.json");
    cr_assert_eq(result_write(&a, path), 0);
    cr_assert_eq(result_init(&b), 0);
    cr_assert_eq(result_read(&b, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(b.kernel, "6.1.0");
    cr_assert_str_eq(b.hostname, "box");
    cr_assert_str_eq(b.scenario, a.scenario);
    cr_assert_eq(b.clk_tck, 100);
    cr_assert_eq(b.threads, 2);
    cr_assert_eq(b.shard_index, 1);
    cr_assert_eq(b.shard_count, 3);
    cr_assert_eq(b.clients, a.clients);
    cr_assert_eq(b.connected, a.connected);
    cr_assert_eq(b.subscribers, a.subscribers);
    cr_assert_eq(b.published, a.published);
    cr_assert_eq(b.acknowledged, a.acknowledged);
    cr_assert_eq(b.unanswered, 6);
    cr_assert_eq(b.deliveries, a.deliveries);
    cr_assert_eq(b.lost, 3);
    cr_assert_eq(b.dup, 4);
    cr_assert_eq(b.id_mismatches, 5);
    cr_assert_eq(b.gaps, 1);
    cr_assert_eq(b.refused, 2);
    cr_assert_eq(b.protocol, 3);
    cr_assert_eq(memcmp(b.kinds, a.kinds, sizeof(a.kinds)), 0);
    cr_assert_eq(b.polls, 7);
    cr_assert_eq(b.pongs, 9);
    cr_assert_eq(b.ws_closes, 11);
    cr_assert_float_eq(b.polls_per_s, 0.5, 1e-9);
    cr_assert_float_eq(b.deliveries_per_s, 2000, 1e-9);
    cr_assert_float_eq(b.window_s, 10.02, 1e-9);
    cr_assert_float_eq(b.measure_epoch_s, a.measure_epoch_s, 1e-3);
    cr_assert_eq(b.window_deliveries, a.window_deliveries);
    cr_assert_eq(b.window_published, a.window_published);
    cr_assert_eq(b.server_pid, 4242);
    cr_assert_eq(b.server_rss_before_kb, a.server_rss_before_kb);
    cr_assert_eq(b.server_rss_after_ramp_kb, a.server_rss_after_ramp_kb);
    cr_assert_eq(b.own_rss_before_kb, a.own_rss_before_kb);
    cr_assert_eq(b.own_rss_after_ramp_kb, a.own_rss_after_ramp_kb);
    cr_assert_float_eq(b.server_bytes_per_connection, a.server_bytes_per_connection, 0.5);
    cr_assert_float_eq(b.ringload_bytes_per_client, a.ringload_bytes_per_client, 0.5);
    cr_assert_float_eq(b.ringload_cpu_window_s, 1.25, 1e-9);
    cr_assert_float_eq(b.ringload_thread_busy_max_pct, 97.5, 1e-9);
    cr_assert_eq(b.ringload_saturated, 1);
    cr_assert_eq(memcmp(&b.server_cpu, &a.server_cpu, sizeof(a.server_cpu)), 0);
    cr_assert_eq(memcmp(&b.machine_cpu, &a.machine_cpu, sizeof(a.machine_cpu)), 0);
    cr_assert_float_eq(result_server_cpu_us_per_delivery(&b, 0), 160.0 / 100 * 1e6 / 20000,
                       1e-9); /* 1.6 s over 20000 */
    cr_assert_float_eq(result_server_cpu_us_per_delivery(&b, 1), 50, 1e-9);
    cr_assert_float_eq(result_server_cpu_us_per_delivery(&b, 2), 30, 1e-9);
    cr_assert_float_eq(result_machine_busy_pct(&b), 900.0 / 2000 * 100, 1e-9);
    cr_assert_eq(b.exit_status, RESULT_DELIVERY);
    cr_assert_str_eq(b.reasons, a.reasons);
    /* The histogram comes back whole. */
    cr_assert_eq(hist_count(b.lat), hist_count(a.lat));
    cr_assert_eq(memcmp(b.lat->counts, a.lat->counts, sizeof(a.lat->counts)), 0);
    cr_assert_eq(hist_min(b.lat), hist_min(a.lat));
    cr_assert_eq(hist_max(b.lat), hist_max(a.lat));
    cr_assert_float_eq(result_p99_ms(&b), result_p99_ms(&a), 1e-12);
    /* And writing what was read gives the same file. */
    const char *again = tmp_path("rt2.json");
    cr_assert_eq(result_write(&b, again), 0);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "cmp -s %s %s", path, again);
    cr_assert_eq(system(cmd), 0, "%s and %s differ", path, again);
    unlink(path);
    unlink(again);
    result_free(&a);
    result_free(&b);
}

/* What ringload wrote before this module: same names, no new fields. */
/* Connect and ready times per kind: written, read back, merged. */
Test(result, connect_times_round_trip_and_merge)
{
    struct result a, b, m;
    char err[512];
    cr_assert_eq(result_init(&a), 0);
    a.merged = 1;
    for (int i = 1; i <= 50; i++) {
        hist_record(a.conn[LK_WS].connect, (uint64_t)i * 10000); /* 0.01 .. 0.5 ms */
        hist_record(a.conn[LK_WS].ready, (uint64_t)i * 20000);
    }
    hist_record(a.conn[ENGINE_TLS_PUB].connect, 7000000);
    const char *path = tmp_path("conn.json");
    cr_assert_eq(result_write(&a, path), 0);
    cr_assert_eq(result_init(&b), 0);
    cr_assert_eq(result_read(&b, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(hist_count(b.conn[LK_WS].connect), 50);
    cr_assert_eq(hist_count(b.conn[LK_WS].ready), 50);
    cr_assert_eq(hist_max(b.conn[LK_WS].ready), 1000000);
    cr_assert_eq(hist_count(b.conn[ENGINE_TLS_PUB].connect), 1);
    cr_assert_eq(hist_count(b.conn[LK_SSE].connect), 0);
    FILE *f = fopen(path, "r");
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = 0;
    fclose(f);
    cr_assert(strstr(text, "\"connect\"") && strstr(text, "\"connect_ms\"") &&
              strstr(text, "\"ready_ms\""));
    cr_assert_eq(result_init(&m), 0);
    cr_assert_eq(result_merge(&m, &a), 0);
    cr_assert_eq(result_merge(&m, &b), 0);
    cr_assert_eq(hist_count(m.conn[LK_WS].connect), 100);
    cr_assert_eq(hist_count(m.conn[LK_WS].ready), 100);
    cr_assert(m.conn[LK_WS].ready != a.conn[LK_WS].ready, "merge copies, never shares");
    unlink(path);
    result_free(&a);
    result_free(&b);
    result_free(&m);
}

/* TLS figures: written, read back, merged (counts add, handshake histograms merge). */
Test(result, tls_round_trip_and_merge)
{
    struct result a, b, m;
    char err[512];
    cr_assert_eq(result_init(&a), 0);
    a.merged = 1;
    a.tls[LK_SSE].handshakes = 100;
    a.tls[LK_SSE].resumed = 40;
    a.tls[LK_SSE].failed = 2;
    a.tls[ENGINE_TLS_PUB].handshakes = 3;
    for (int i = 1; i <= 100; i++)
        hist_record(a.tls[LK_SSE].lat, (uint64_t)i * 100000); /* 0.1 .. 10 ms */
    a.tls_errors[TLS_ERR_CERT] = 2;
    a.tls_errors[ENGINE_TLS_TIMEOUT] = 1;
    const char *path = tmp_path("tls.json");
    cr_assert_eq(result_write(&a, path), 0);
    cr_assert_eq(result_init(&b), 0);
    cr_assert_eq(result_read(&b, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(b.tls[LK_SSE].handshakes, 100);
    cr_assert_eq(b.tls[LK_SSE].resumed, 40);
    cr_assert_eq(b.tls[LK_SSE].failed, 2);
    cr_assert_eq(b.tls[ENGINE_TLS_PUB].handshakes, 3);
    cr_assert_eq(b.tls_errors[TLS_ERR_CERT], 2);
    cr_assert_eq(b.tls_errors[ENGINE_TLS_TIMEOUT], 1);
    cr_assert_eq(hist_count(b.tls[LK_SSE].lat), 100);
    cr_assert_eq(hist_max(b.tls[LK_SSE].lat), 10000000);
    cr_assert_eq(hist_count(b.tls[LK_WS].lat), 0);
    /* The JSON names the figures as the README says. */
    FILE *f = fopen(path, "r");
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = 0;
    fclose(f);
    cr_assert(strstr(text, "\"tls\"") && strstr(text, "\"handshake_ms\"") &&
              strstr(text, "\"publishers\"") && strstr(text, "\"bad_cert\": 2") &&
              strstr(text, "\"timeout\": 1"));
    cr_assert_eq(result_init(&m), 0);
    cr_assert_eq(result_merge(&m, &a), 0);
    cr_assert_eq(result_merge(&m, &b), 0);
    cr_assert_eq(m.tls[LK_SSE].handshakes, 200);
    cr_assert_eq(m.tls[LK_SSE].resumed, 80);
    cr_assert_eq(m.tls_errors[TLS_ERR_CERT], 4);
    cr_assert_eq(hist_count(m.tls[LK_SSE].lat), 200);
    cr_assert(m.tls[LK_SSE].lat != a.tls[LK_SSE].lat, "merge copies, never shares, histograms");
    unlink(path);
    result_free(&a);
    result_free(&b);
    result_free(&m);
}

Test(result, reads_the_old_format)
{
    struct hist *h = hist_new();
    hist_record(h, 2000000);
    hist_record(h, 3000000);
    char hs[256], json[4096];
    hist_encode(h, hs, sizeof(hs));
    snprintf(json, sizeof(json),
             "{\n \"tool\": \"ringload\",\n \"environment\": {\"kernel\": \"6.1\", \"cpus\": 2, "
             "\"threads\": 2},\n \"scenario\": \"sse = 3\\n\",\n \"subscribers\": 3,\n "
             "\"published\": 10,\n \"acknowledged\": 10,\n \"unanswered\": 0,\n "
             "\"deliveries\": 30,\n \"deliveries_per_s\": 15.0,\n \"lost\": 0,\n "
             "\"duplicated_or_reordered\": 0,\n \"id_mismatches\": 0,\n \"gaps_signalled\": 0,\n"
             " \"errors\": {\"connect_failed\": 1, \"refused\": 0, \"bad_status\": 0, "
             "\"protocol\": 0, \"publish_failed\": 0, \"closed_by_server\": 0},\n \"kinds\": "
             "{\"sse\": {\"clients\": 3, \"connect_failed\": 0, \"subscribed\": 3, "
             "\"deliveries\": 30, \"lost\": 0, \"duplicated_or_reordered\": 0}},\n \"polls\": 0,"
             "\n \"polls_per_s\": 0.0,\n \"ws_pongs\": 0,\n \"ws_closes\": 0,\n \"latency_ms\": "
             "{\"p50\": 2.000, \"p99\": 3.000, \"max\": 3.000, \"count\": 2},\n "
             "\"server_bytes_per_connection\": -1,\n \"ringload_bytes_per_client\": 4000,\n "
             "\"ringload_cpu_s\": 0.20,\n \"wall_s\": 4.00,\n \"server_died\": false,\n "
             "\"histogram\": \"%s\"\n}\n",
             hs);
    const char *path = tmp_path("old.json");
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
    struct result r;
    char err[512];
    cr_assert_eq(result_init(&r), 0);
    cr_assert_eq(result_read(&r, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.subscribers, 3);
    cr_assert_eq(r.deliveries, 30);
    cr_assert_eq(r.connect_failed, 1);
    cr_assert_eq(r.kinds[LK_SSE].deliveries, 30);
    cr_assert_eq(hist_count(r.lat), 2);
    cr_assert_eq(r.merged, 1);
    cr_assert_eq(r.shard_count, 1);
    cr_assert(r.server_bytes_per_connection < 0, "-1 is unknown");
    cr_assert_float_eq(r.ringload_bytes_per_client, 4000, 1e-9);
    cr_assert(isnan(result_server_cpu_us_per_delivery(&r, 0)));
    cr_assert(result_machine_busy_pct(&r) < 0);
    unlink(path);
    result_free(&r);
    hist_free(h);
}

Test(result, read_refuses)
{
    struct result r;
    char err[512];
    const char *path = tmp_path("bad.json");
    static const char *const bad[] = {"{", "[1]", "{\"tool\": \"other\"}",
                                      "{\"tool\": \"ringload\", \"histogram\": \"H1 5 0 0 0\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        FILE *f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        cr_assert_eq(result_init(&r), 0);
        err[0] = 0;
        cr_assert_eq(result_read(&r, path, err, sizeof(err)), -EINVAL, "%s", bad[i]);
        cr_assert(strstr(err, path) != NULL, "the message names the file: %s", err);
        result_free(&r);
    }
    cr_assert_eq(result_init(&r), 0);
    cr_assert_eq(result_read(&r, "/nonexistent/x.json", err, sizeof(err)), -EINVAL);
    result_free(&r);
    unlink(path);
}

/* ---- merge -------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(result, merge_percentiles_come_from_the_merged_histogram)
{
    enum { N = 3, PER = 20000 };
    static uint64_t all[N * PER];
    struct result parts[N], m;
    cr_assert_eq(result_init(&m), 0);
    for (int s = 0; s < N; s++) {
        sample(&parts[s], 1);
        hist_reset(parts[s].lat);
        parts[s].shard_index = (uint32_t)s;
        parts[s].shard_count = N;
        for (int i = 0; i < PER; i++) {
            /* Three different shapes: the merged tail is not any part's. */
            uint64_t v = s == 0   ? 1000 + rnd() % 1000000
                         : s == 1 ? 500000 + rnd() % 2000000
                                  : (rnd() % 100 == 0 ? 50000000 + rnd() % 50000000 : 2000000);
            all[s * PER + i] = v;
            hist_record(parts[s].lat, v);
        }
        cr_assert_eq(result_merge(&m, &parts[s]), 0);
    }
    qsort(all, N * PER, sizeof(all[0]), cmp_u64);
    static const double qs[] = {0.5, 0.9, 0.99, 0.999, 1.0};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        size_t rank = (size_t)ceil(qs[i] * N * PER);
        uint64_t exact = all[rank - 1];
        uint64_t got = hist_value_at(m.lat, qs[i]);
        cr_assert(got >= exact && (double)got <= (double)exact * 1.001 + 1,
                  "q %g: merged %llu, exact %llu", qs[i], (unsigned long long)got,
                  (unsigned long long)exact);
    }
    cr_assert_eq(hist_count(m.lat), N * PER);
    cr_assert_eq(hist_max(m.lat), all[N * PER - 1]);
    cr_assert_eq(m.merged, N);
    for (int s = 0; s < N; s++)
        result_free(&parts[s]);
    result_free(&m);
}

Test(result, merge_sums_counts_weights_memory_keeps_worst_status)
{
    struct result a, b, m;
    sample(&a, 1);
    sample(&b, 3);
    /* Two machines, two servers: memory is weighted by connections. */
    snprintf(b.hostname, sizeof(b.hostname), "other");
    b.server_pid = 7;
    a.server_bytes_per_connection = 1000;
    b.server_bytes_per_connection = 2000;
    a.ringload_bytes_per_client = 100;
    b.ringload_bytes_per_client = -1; /* unknown: does not count */
    b.lost = 2;
    result_judge(&b);
    a.server_died = 0;
    cr_assert_eq(result_init(&m), 0);
    result_merge(&m, &a);
    result_merge(&m, &b);
    cr_assert_eq(m.merged, 2);
    cr_assert_eq(m.subscribers, 400);
    cr_assert_eq(m.deliveries, 100000);
    cr_assert_eq(m.connected, 408);
    cr_assert_eq(m.kinds[LK_SSE].clients, 400);
    cr_assert_eq(m.window_deliveries, 80000);
    cr_assert_eq(m.lost, 2);
    cr_assert_eq(m.refused, 4);
    cr_assert_float_eq(m.deliveries_per_s, 8000, 1e-9);
    cr_assert_float_eq(m.server_bytes_per_connection, (1000.0 * 102 + 2000.0 * 306) / 408, 1e-9);
    cr_assert_float_eq(m.ringload_bytes_per_client, 100, 1e-9);
    cr_assert_eq(m.exit_status, RESULT_DELIVERY);
    cr_assert(strstr(m.reasons, "2 lost") != NULL, "%s", m.reasons);
    /* Different servers: their CPU adds up, over every delivery. */
    cr_assert_float_eq(result_server_cpu_us_per_delivery(&m, 0),
                       (160.0 + 160.0) / 100 * 1e6 / 80000, 1e-9);
    /* Different machines: the busiest one's figure. */
    cr_assert_float_eq(result_machine_busy_pct(&m), 45, 1e-9);
    result_free(&m);

    /* A dead server in any shard is the worst. */
    b.server_died = 1;
    b.exit_status = RESULT_DIED;
    cr_assert_eq(result_init(&m), 0);
    result_merge(&m, &a);
    result_merge(&m, &b);
    cr_assert_eq(m.exit_status, RESULT_DIED);
    cr_assert(m.server_died);
    result_free(&m);
    result_free(&a);
    result_free(&b);
}

Test(result, merge_shards_of_one_server)
{
    struct result a, b, m;
    sample(&a, 1);
    sample(&b, 1);
    /* One host, one server pid: windows overlap, so the server's CPU and
     * RSS are taken over the union, not added. */
    a.server_cpu = (struct result_ticks){1, 1000, 500, 1100, 560};
    b.server_cpu = (struct result_ticks){1, 1005, 502, 1110, 565};
    a.machine_cpu = (struct result_ticks){1, 100, 1000, 200, 2000};
    b.machine_cpu = (struct result_ticks){1, 110, 1010, 250, 2010};
    a.server_rss_before_kb = 10000;
    a.server_rss_after_ramp_kb = 10100;
    b.server_rss_before_kb = 10050; /* a had ramped part of the way */
    b.server_rss_after_ramp_kb = 10204;
    cr_assert_eq(result_init(&m), 0);
    result_merge(&m, &a);
    result_merge(&m, &b);
    cr_assert_float_eq(result_server_cpu_us_per_delivery(&m, 0), (110.0 + 65.0) / 100 * 1e6 / 40000,
                       1e-9);
    cr_assert_float_eq(result_server_cpu_us_per_delivery(&m, 1), 110.0 / 100 * 1e6 / 40000, 1e-9);
    cr_assert_float_eq(result_machine_busy_pct(&m), 150.0 / 1010 * 100, 1e-9);
    cr_assert_float_eq(m.server_bytes_per_connection, (double)(204 * 1024 / 204), 1e-9);
    cr_assert_eq(m.exit_status, RESULT_OK);
    /* It survives the JSON. */
    const char *path = tmp_path("merged.json");
    struct result r;
    char err[512];
    cr_assert_eq(result_write(&m, path), 0);
    cr_assert_eq(result_init(&r), 0);
    cr_assert_eq(result_read(&r, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.merged, 2);
    cr_assert_float_eq(result_server_cpu_us_per_delivery(&r, 0),
                       result_server_cpu_us_per_delivery(&m, 0), 1e-9);
    unlink(path);
    result_free(&r);
    result_free(&m);
    result_free(&a);
    result_free(&b);
}

/* ---- compare ---------------------------------------------------------------------- */

static const struct result_tolerance tol10 = {10, -1, -1, -1, -1};

Test(result, compare_same_passes)
{
    struct result a;
    int bad;
    sample(&a, 1);
    char *out = capture_compare(&a, &a, &tol10, &bad);
    cr_assert_eq(bad, 0, "%s", out);
    cr_assert(strstr(out, "REGRESSED") == NULL, "%s", out);
    cr_assert(strstr(out, "ok server_cpu_us_per_delivery") != NULL, "%s", out);
    free(out);
    result_free(&a);
}

/* Each figure made 50% worse on its own fails, naming it with baseline, now
 * and percent; made 50% better it passes. */
Test(result, compare_each_figure)
{
    static const char *const names[] = {"server_bytes_per_connection", "ringload_bytes_per_client",
                                        "server_cpu_us_per_delivery", "deliveries_per_s",
                                        "latency_p99_ms"};
    for (int worse = 0; worse < 2; worse++)
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            struct result base, now;
            int bad;
            sample(&base, 1);
            sample(&now, 1);
            double f = worse ? 1.5 : 0.5;
            switch (i) {
            case 0:
                now.server_bytes_per_connection = base.server_bytes_per_connection * f;
                break;
            case 1:
                now.ringload_bytes_per_client = base.ringload_bytes_per_client * f;
                break;
            case 2:
                now.window_deliveries = (uint64_t)((double)base.window_deliveries / f);
                break;
            case 3:
                now.deliveries_per_s = base.deliveries_per_s / f;
                break;
            case 4:
                hist_reset(now.lat);
                for (int k = 0; k < 1000; k++)
                    hist_record(now.lat, (uint64_t)((1000000 + k * 1000) * f));
                break;
            }
            char *out = capture_compare(&base, &now, &tol10, &bad);
            char want[128];
            snprintf(want, sizeof(want), "REGRESSED %s: baseline ", names[i]);
            if (worse) {
                cr_assert_eq(bad, 1, "%s: %s", names[i], out);
                cr_assert(strstr(out, want) != NULL, "%s", out);
                cr_assert(strstr(out, i == 3 ? "(-33.3%" : "(+50.0%") != NULL, "%s", out);
            } else {
                cr_assert_eq(bad, 0, "%s improved: %s", names[i], out);
            }
            free(out);
            result_free(&base);
            result_free(&now);
        }
}

Test(result, compare_tolerance_per_figure)
{
    struct result base, now;
    int bad;
    sample(&base, 1);
    sample(&now, 1);
    hist_reset(now.lat);
    for (int k = 0; k < 1000; k++)
        hist_record(now.lat, (uint64_t)(1000000 + k * 1000) * 3); /* p99 x3: +200% */
    now.server_bytes_per_connection *= 1.2;                       /* +20% */
    struct result_tolerance t = {25, 250, -1, -1, -1};
    char *out = capture_compare(&base, &now, &t, &bad);
    cr_assert_eq(bad, 0, "%s", out);
    free(out);
    t.latency = 150;
    out = capture_compare(&base, &now, &t, &bad);
    cr_assert_eq(bad, 1, "%s", out);
    cr_assert(strstr(out, "REGRESSED latency_p99_ms") != NULL, "%s", out);
    free(out);
    t.latency = -1; /* back to max_regress: 25 */
    out = capture_compare(&base, &now, &t, &bad);
    cr_assert_eq(bad, 1, "%s", out);
    free(out);
    t = (struct result_tolerance){10, 1000, 50, -1, -1};
    out = capture_compare(&base, &now, &t, &bad);
    cr_assert_eq(bad, 0, "memory at 50%%: %s", out);
    free(out);
    result_free(&base);
    result_free(&now);
}

Test(result, compare_missing_figures_are_skipped)
{
    struct result base, now;
    int bad;
    sample(&base, 1);
    sample(&now, 1);
    base.server_cpu.valid = 0;
    base.server_bytes_per_connection = -1;
    hist_reset(base.lat);
    base.lat_p99_ms_ = -1;
    now.ringload_bytes_per_client = -1;
    now.ringload_bytes_per_client = -1;
    char *out = capture_compare(&base, &now, &tol10, &bad);
    cr_assert_eq(bad, 0, "%s", out);
    cr_assert(strstr(out, "skipped server_cpu_us_per_delivery: not in the baseline") != NULL, "%s",
              out);
    cr_assert(strstr(out, "skipped server_bytes_per_connection: not in the baseline") != NULL, "%s",
              out);
    cr_assert(strstr(out, "skipped latency_p99_ms: not in the baseline") != NULL, "%s", out);
    cr_assert(strstr(out, "skipped ringload_bytes_per_client: not measured in this run") != NULL,
              "%s", out);
    free(out);
    /* A baseline without a histogram still has its p99. */
    base.lat_p99_ms_ = 1.0;
    out = capture_compare(&base, &now, &tol10, &bad);
    cr_assert_eq(bad, 1, "p99 %g against 1.0: %s", result_p99_ms(&now), out);
    free(out);
    result_free(&base);
    result_free(&now);
}

Test(result, compare_zero_loss_whatever_the_baseline)
{
    struct result base, now;
    int bad;
    sample(&base, 1);
    sample(&now, 1);
    base.lost = 100;
    base.dup = 100;
    now.lost = 1;
    now.dup = 2;
    now.id_mismatches = 3;
    char *out = capture_compare(&base, &now, &tol10, &bad);
    cr_assert_eq(bad, 3, "%s", out);
    cr_assert(strstr(out, "REGRESSED lost: now 1, must be 0") != NULL, "%s", out);
    cr_assert(strstr(out, "REGRESSED duplicated_or_reordered: now 2") != NULL, "%s", out);
    cr_assert(strstr(out, "REGRESSED id_mismatches: now 3") != NULL, "%s", out);
    free(out);
    result_free(&base);
    result_free(&now);
}

Test(result, worse_status)
{
    cr_assert_eq(result_worse_status(RESULT_OK, RESULT_REGRESS), RESULT_REGRESS);
    cr_assert_eq(result_worse_status(RESULT_DELIVERY, RESULT_REGRESS), RESULT_DELIVERY);
    cr_assert_eq(result_worse_status(RESULT_DELIVERY, RESULT_INPUT), RESULT_INPUT);
    cr_assert_eq(result_worse_status(RESULT_DIED, RESULT_TIMEOUT), RESULT_DIED);
    cr_assert_eq(result_worse_status(RESULT_OK, RESULT_OK), RESULT_OK);
}

/* ---- /proc ------------------------------------------------------------------------ */

Test(result, proc_parsers)
{
    uint64_t u, s, busy, total;
    const char *st = "1234 (ring cast) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 731 42 0 0 20 0 3 "
                     "0 100 1000000 200 18446744073709551615\n";
    cr_assert_eq(result_parse_pid_stat(st, strlen(st), &u, &s), 0);
    cr_assert_eq(u, 731);
    cr_assert_eq(s, 42);
    cr_assert_eq(result_parse_pid_stat("1 (x) S 1 2", 11, &u, &s), -EINVAL);
    cr_assert_eq(result_parse_pid_stat("no paren", 8, &u, &s), -EINVAL);
    const char *ps = "cpu  100 5 50 1000 20 3 2 1 0 0";
    cr_assert_eq(result_parse_proc_stat(ps, strlen(ps), &busy, &total), 0);
    cr_assert_eq(total, 1181);
    cr_assert_eq(busy, 161);
    cr_assert_eq(result_parse_proc_stat("cpu0 1 2 3 4", 12, &busy, &total), -EINVAL);
    cr_assert_eq(result_parse_proc_stat("cpu  1 2", 8, &busy, &total), -EINVAL);
    /* The real files parse. */
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    cr_assert_eq(result_parse_pid_stat(buf, n, &u, &s), 0);
    f = fopen("/proc/stat", "r");
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    cr_assert_eq(result_parse_proc_stat(buf, n, &busy, &total), 0);
    cr_assert(total > busy && busy > 0);
}

/* ---- HdrHistogram log --------------------------------------------------------------- */

static size_t b64_decode(const char *in, size_t n, unsigned char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n && in[i] != '='; i++) {
        const char *p = strchr(a, in[i]);
        cr_assert(p != NULL && in[i], "bad base64 byte %d", in[i]);
        acc = acc << 6 | (uint32_t)(p - a);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
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

/* HdrHistogram's ZigZagEncoding.getLong. */
static int64_t zigzag(const unsigned char **p)
{
    uint64_t v = 0;
    int shift = 0;
    for (int i = 0; i < 8; i++, shift += 7) {
        unsigned char c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
    }
    v |= (uint64_t) * (*p)++ << 56;
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Per-second lines: the header once, then each line as given, in order. */
Test(result, hdr_log_lines_follow_one_header)
{
    struct hist *h = hist_new();
    static char lines[1 << 16];
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        hist_reset(h);
        hist_record(h, 1000000u * (uint64_t)(k + 1));
        n += hist_log_interval(h, NULL, k, 1.0, lines + n, sizeof(lines) - n);
    }
    const char *path = tmp_path("sec.hlog");
    cr_assert_eq(result_write_hdr_log_lines(path, 1441812123.5, lines, n), 0);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char line[1 << 16];
    int header = 0, k = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '"') {
            cr_assert_eq(k, 0, "header after an interval: %s", line);
            header++;
            continue;
        }
        char want[32];
        snprintf(want, sizeof(want), "%d.000,1.000,%d.000,", k, k + 1);
        cr_assert(strncmp(line, want, strlen(want)) == 0, "%s vs %s", line, want);
        k++;
    }
    fclose(f);
    cr_assert_eq(header, 3);
    cr_assert_eq(k, 3);
    cr_assert_eq(result_write_hdr_log_lines("/nonexistent/x.hlog", 0, lines, n), -ENOENT);
    unlink(path);
    hist_free(h);
}

Test(result, hdr_log_is_what_hdrhistogram_reads)
{
    struct hist *h = hist_new();
    for (int i = 0; i < 5000; i++)
        hist_record(h, 1000 + rnd() % 80000000);
    hist_record(h, 0);
    const char *path = tmp_path("lat.hlog");
    cr_assert_eq(result_write_hdr_log(h, path, 1441812123.5, 0, 30), 0);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char line[1 << 20];
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_assert_str_eq(line, "#[Histogram log format version 1.3]\n");
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_assert(strncmp(line, "#[StartTime: 1441812123.500 (seconds since epoch), ", 51) == 0, "%s",
              line);
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_assert_str_eq(line, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
                           "\"Interval_Compressed_Histogram\"\n");
    cr_assert_not_null(fgets(line, sizeof(line), f));
    char maxs[32];
    snprintf(maxs, sizeof(maxs), "0.000,30.000,%.3f,", (double)hist_max(h) / 1e6);
    cr_assert(strncmp(line, maxs, strlen(maxs)) == 0, "%s vs %s", line, maxs);
    cr_assert_null(fgets(line + strlen(line), 16, f), "one interval line only");
    fclose(f);
    /* The last column: base64 of cookie, length, zlib(V2 encoding). */
    char *b64 = line + strlen(maxs);
    size_t bl = strcspn(b64, "\n");
    static unsigned char raw[1 << 19], v2[1 << 20];
    size_t rn = b64_decode(b64, bl, raw);
    cr_assert_eq(be(raw, 4), 0x1c849314);
    cr_assert_eq(be(raw + 4, 4), rn - 8);
    uLongf vn = sizeof(v2);
    cr_assert_eq(uncompress(v2, &vn, raw + 8, rn - 8), Z_OK);
    cr_assert_eq(be(v2, 4), 0x1c849313);
    cr_assert_eq(be(v2 + 4, 4), vn - 40);
    cr_assert_eq(be(v2 + 12, 4), 3);
    cr_assert_eq(be(v2 + 16, 8), 1);
    cr_assert_eq(be(v2 + 24, 8), HIST_MAX_VALUE);
    /* The counts, zero runs expanded, equal the histogram's. */
    const unsigned char *p = v2 + 40, *end = v2 + vn;
    size_t idx = 0;
    int64_t total = 0;
    while (p < end) {
        int64_t c = zigzag(&p);
        if (c < 0) {
            for (int64_t k = 0; k < -c; k++, idx++)
                cr_assert_eq(h->counts[idx], 0, "index %zu", idx);
        } else {
            cr_assert_eq(h->counts[idx], c, "index %zu", idx);
            total += c;
            idx++;
        }
    }
    cr_assert_eq(total, hist_count(h));
    unlink(path);
    hist_free(h);
}

/* ---- shard slicing ------------------------------------------------------------------- */

Test(result, slice_every_channel_in_exactly_one_shard)
{
    static const uint32_t chans[] = {1, 2, 3, 7, 10, 64, 1001};
    static const uint32_t subs[] = {0, 1, 5, 100, 333, 10007};
    static const uint32_t pubs[] = {1, 2, 3, 13};
    char err[SCENARIO_ERR_MAX], name[64];
    for (size_t ci = 0; ci < sizeof(chans) / sizeof(chans[0]); ci++)
        for (uint32_t n = 1; n <= 8 && n <= chans[ci]; n++)
            for (size_t si = 0; si < sizeof(subs) / sizeof(subs[0]); si++)
                for (size_t pi = 0; pi < sizeof(pubs) / sizeof(pubs[0]); pi++) {
                    struct scenario full, sl;
                    scenario_init(&full);
                    full.channels = chans[ci];
                    full.sse = subs[si];
                    full.ws = subs[si] / 3;
                    full.longpoll = 1;
                    full.poll = 2;
                    full.publishers = pubs[pi];
                    full.publish_rate = 1000;
                    uint32_t c = full.channels;
                    uint8_t *seen = calloc(c, 1);
                    uint32_t *per = calloc(c, sizeof(*per));
                    uint64_t sse = 0, ws = 0, lp = 0, poll = 0;
                    double rate = 0;
                    for (uint32_t i = 0; i < n; i++) {
                        full.shard_index = i;
                        full.shard_count = n;
                        cr_assert_eq(scenario_slice(&full, &sl, err, sizeof(err)), 0, "%s", err);
                        cr_assert_eq(sl.procs, 1);
                        cr_assert(sl.publishers >= 1 && (n == 1 || sl.publishers <= sl.channels));
                        for (uint32_t l = 0; l < sl.channels; l++) {
                            scenario_channel_name(&sl, l, name, sizeof(name));
                            uint32_t g = (uint32_t)strtoul(name + 2, NULL, 10);
                            cr_assert(g < c && strncmp(name, "ch", 2) == 0, "%s", name);
                            cr_assert_eq(seen[g], 0, "channel %u in two shards", g);
                            seen[g] = 1;
                            /* Round-robin in the slice puts as many on it as in the full run. */
                            per[g] = sl.sse / sl.channels + (l < sl.sse % sl.channels);
                        }
                        sse += sl.sse;
                        ws += sl.ws;
                        lp += sl.longpoll;
                        poll += sl.poll;
                        rate += sl.publish_rate;
                    }
                    for (uint32_t g = 0; g < c; g++) {
                        cr_assert(seen[g], "channel %u in no shard (%u of %u)", g, n, c);
                        cr_assert_eq(per[g], full.sse / c + (g < full.sse % c),
                                     "channel %u: %u subscribers", g, per[g]);
                    }
                    cr_assert_eq(sse, full.sse);
                    cr_assert_eq(ws, full.ws);
                    cr_assert_eq(lp, full.longpoll);
                    cr_assert_eq(poll, full.poll);
                    cr_assert_float_eq(rate, full.publish_rate, 1e-6);
                    free(seen);
                    free(per);
                }
}

Test(result, slice_refuses_more_shards_than_channels)
{
    struct scenario full, sl;
    char err[SCENARIO_ERR_MAX];
    scenario_init(&full);
    full.channels = 2;
    full.shard_index = 0;
    full.shard_count = 3;
    cr_assert_eq(scenario_slice(&full, &sl, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "channels = 2") != NULL, "%s", err);
    /* 0/1 is the whole run, names unchanged. */
    full.shard_count = 1;
    cr_assert_eq(scenario_slice(&full, &sl, err, sizeof(err)), 0);
    cr_assert_eq(memcmp(&full, &sl, sizeof(sl)), 0);
    char name[32];
    scenario_channel_name(&sl, 1, name, sizeof(name));
    cr_assert_str_eq(name, "ch1");
    /* spread = one: every subscriber goes with channel 0. */
    full.channels = 4;
    full.shard_count = 2;
    full.spread = SCENARIO_SPREAD_ONE;
    full.sse = 10;
    cr_assert_eq(scenario_slice(&full, &sl, err, sizeof(err)), 0);
    cr_assert_eq(sl.sse, 10);
    full.shard_index = 1;
    cr_assert_eq(scenario_slice(&full, &sl, err, sizeof(err)), 0);
    cr_assert_eq(sl.sse, 0);
}
