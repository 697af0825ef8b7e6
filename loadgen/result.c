/*
 * result.c: one run's figures (struct result, see result.h): built from a
 * finished run, printed, written as JSON and read back with Jansson (Debian's
 * libjansson), merged across shards and compared with a baseline.
 *
 * Runs on the main thread only, after the engine threads have joined. The
 * JSON keeps every field ringload wrote before (same names, same meaning) and
 * adds new ones beside them, so older readers keep working and older files
 * read back with the new figures unknown. It does not sample /proc itself
 * (main.c does, at the phase changes) and never decides how a run is paced.
 */
#include "result.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "util.h"

static const char *const kind_name[LK_N] = {"sse", "ws", "longpoll", "poll"};
static const char *const tls_kind_name[ENGINE_TLS_KINDS] = {"sse", "ws", "longpoll", "poll",
                                                            "publishers"};

/* ---- exit status ------------------------------------------------------------- */

static int status_rank(int s)
{
    switch (s) {
    case RESULT_OK:
        return 0;
    case RESULT_REGRESS:
        return 1;
    case RESULT_DELIVERY:
        return 2;
    case RESULT_INPUT:
        return 3;
    case RESULT_TIMEOUT:
        return 4;
    default:
        return 5; /* RESULT_DIED, and anything unknown */
    }
}

int result_worse_status(int a, int b)
{
    return status_rank(a) >= status_rank(b) ? a : b;
}

static void add_reason(struct result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_reason(struct result *res, const char *fmt, ...)
{
    char one[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one, sizeof(one), fmt, ap);
    va_end(ap);
    size_t n = strlen(res->reasons);
    if (strstr(res->reasons, one))
        return; /* merged shards often fail alike */
    snprintf(res->reasons + n, sizeof(res->reasons) - n, "%s%s", n ? "; " : "", one);
}

/* ---- building ------------------------------------------------------------------ */

int result_init(struct result *res)
{
    memset(res, 0, sizeof(*res));
    res->lat = hist_new();
    if (!res->lat)
        return -ENOMEM;
    for (int k = 0; k < ENGINE_TLS_KINDS; k++)
        if (!(res->tls[k].lat = hist_new()) || !(res->conn[k].connect = hist_new()) ||
            !(res->conn[k].ready = hist_new())) {
            result_free(res);
            return -ENOMEM;
        }
    res->shard_count = 1;
    res->server_rss_before_kb = res->server_rss_after_ramp_kb = -1;
    res->own_rss_before_kb = res->own_rss_after_ramp_kb = -1;
    res->server_bytes_per_connection = res->ringload_bytes_per_client = -1;
    res->machine_busy_pct = -1;
    res->lat_p99_ms_ = -1;
    return 0;
}

void result_free(struct result *res)
{
    hist_free(res->lat);
    for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
        hist_free(res->tls[k].lat);
        hist_free(res->conn[k].connect);
        hist_free(res->conn[k].ready);
        res->tls[k].lat = res->conn[k].connect = res->conn[k].ready = NULL;
    }
    free(res->scenario);
    res->lat = NULL;
    res->scenario = NULL;
}

#define SUM(r, field) RUN_SUM(r, field)

/* Server bytes per connection and ringload bytes per client from the RSS samples. */
static void derive_memory(struct result *res)
{
    res->server_bytes_per_connection = -1;
    res->ringload_bytes_per_client = -1;
    if (res->server_rss_after_ramp_kb > 0 && res->server_rss_before_kb > 0 && res->connected)
        res->server_bytes_per_connection =
            (double)((res->server_rss_after_ramp_kb - res->server_rss_before_kb) * 1024 /
                     (long)res->connected);
    if (res->own_rss_after_ramp_kb > 0 && res->own_rss_before_kb > 0 && res->clients)
        res->ringload_bytes_per_client =
            (double)((res->own_rss_after_ramp_kb - res->own_rss_before_kb) * 1024 /
                     (long)res->clients);
}

int result_from_run(struct result *res, const struct run *r, const struct scenario *full,
                    const struct result_samples *smp)
{
    const struct scenario *sc = &r->sc;
    struct utsname un;
    if (uname(&un) == 0) {
        snprintf(res->kernel, sizeof(res->kernel), "%s", un.release);
        snprintf(res->hostname, sizeof(res->hostname), "%s", un.nodename);
    }
    res->cpus = smp->cpus;
    res->clk_tck = sysconf(_SC_CLK_TCK);
    res->threads = r->nthreads;
    res->merged = 1;
    res->shard_index = full->shard_index;
    res->shard_count = full->shard_count;
    size_t tl = scenario_format(full, NULL, 0);
    res->scenario = malloc(tl + 1);
    if (!res->scenario)
        return -ENOMEM;
    scenario_format(full, res->scenario, tl + 1);

    uint32_t npubs =
        sc->publish_rate > 0 ? (sc->publishers < sc->channels ? sc->publishers : sc->channels) : 0;
    /* A split run's process has only its side's clients (role). */
    const uint32_t kwant[LK_N] = {sc->sse, sc->ws, sc->longpoll, sc->poll};
    uint64_t nsubs = (uint64_t)kwant[0] + kwant[1] + kwant[2] + kwant[3];
    int subs_here = sc->role != SCENARIO_ROLE_PUBLISH,
        pubs_here = sc->role != SCENARIO_ROLE_SUBSCRIBE;
    res->clients = (subs_here ? nsubs : 0) + (pubs_here ? npubs : 0);
    res->connected = SUM(r, connected);
    res->subscribers = SUM(r, subscribed);
    res->published = SUM(r, published);
    res->acknowledged = SUM(r, acked);
    res->publish_failed = SUM(r, publish_failed);
    res->unanswered = res->published - res->acknowledged - res->publish_failed;
    res->deliveries = SUM(r, deliveries);
    res->lost = SUM(r, lost);
    res->dup = SUM(r, reordered);
    res->id_mismatches = SUM(r, id_mismatch);
    res->gaps = SUM(r, server_gaps);
    res->connect_failed = SUM(r, connect_failed);
    res->refused = SUM(r, refused);
    res->bad_status = SUM(r, bad_status);
    res->protocol = SUM(r, protocol_errors);
    res->closed_by_server = SUM(r, closed_by_server);
    for (int k = 0; k < LK_N; k++) {
        struct result_kind *rk = &res->kinds[k];
        rk->clients = subs_here ? kwant[k] : 0;
        rk->connect_failed = SUM(r, kind[k].connect_failed);
        rk->subscribed = SUM(r, kind[k].subscribed);
        rk->deliveries = SUM(r, kind[k].deliveries);
        rk->lost = SUM(r, kind[k].lost);
        rk->dup = SUM(r, kind[k].dup);
    }
    res->polls = SUM(r, polls);
    res->pongs = SUM(r, pongs);
    res->ws_closes = SUM(r, ws_closes);
    res->reconnects = SUM(r, reconnects);
    res->reconnect_failed = SUM(r, reconnect_failed);
    res->churn_drops = SUM(r, churn_drops);
    res->missed_offline = SUM(r, missed_offline);
    res->undelivered = SUM(r, undelivered);
    res->gap_skipped = SUM(r, gap_skipped);
    res->ws_inflated = SUM(r, ws_inflated);
    for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
        struct result_tls *rt = &res->tls[k];
        rt->handshakes = SUM(r, tls[k].handshakes);
        rt->failed = SUM(r, tls[k].failed);
        rt->resumed = SUM(r, tls[k].resumed);
        for (int i = 0; i < r->nthreads; i++)
            if (r->threads[i].tls_lat[k])
                hist_merge(rt->lat, r->threads[i].tls_lat[k]);
        for (int i = 0; i < r->nthreads; i++) {
            if (r->threads[i].connect_lat[k])
                hist_merge(res->conn[k].connect, r->threads[i].connect_lat[k]);
            if (r->threads[i].ready_lat[k])
                hist_merge(res->conn[k].ready, r->threads[i].ready_lat[k]);
        }
    }
    for (int k = 0; k < ENGINE_TLS_REASONS; k++)
        res->tls_errors[k] = SUM(r, tls_errors[k]);
    /* Publishers that never got going; for a subscribe-only process, a
     * publishing process whose messages never came. */
    res->silent_publishers = sc->publish_rate > 0 && sc->publishers > 0 &&
                             (pubs_here ? res->published == 0 : res->deliveries == 0);
    res->wall_s = smp->wall_s;
    res->polls_per_s = smp->wall_s > 0 ? (double)res->polls / smp->wall_s : 0;
    for (int i = 0; i < r->nthreads; i++)
        hist_merge(res->lat, r->threads[i].lat);
    res->duration_s = (double)sc->duration_ns / 1e9;
    res->deliveries_per_s = (double)hist_count(res->lat) / res->duration_s;
    res->window_s = smp->window_s;
    res->window_deliveries = smp->window_deliveries;
    res->window_published = smp->window_published;

    res->server_pid = smp->server_pid;
    res->server_rss_before_kb = smp->server_rss_before_kb;
    res->server_rss_after_ramp_kb = smp->server_rss_after_ramp_kb;
    res->own_rss_before_kb = smp->own_rss_before_kb;
    res->own_rss_after_ramp_kb = smp->own_rss_after_ramp_kb;
    derive_memory(res);
    res->ringload_cpu_s = smp->own_cpu_s;
    res->ringload_cpu_window_s = smp->own_cpu_window_s;
    res->ringload_thread_busy_max_pct = smp->window_s > 0 ? smp->thread_busy_max_pct : -1;
    {
        long usable = r->nthreads < smp->cpus ? r->nthreads : smp->cpus;
        res->ringload_saturated =
            smp->window_s <= 0 ? -1
                               : (res->ringload_thread_busy_max_pct >= 90 ||
                                  smp->own_cpu_window_s >=
                                      0.9 * smp->window_s * (double)(usable > 0 ? usable : 1));
    }
    res->server_cpu = smp->server;
    res->machine_cpu = smp->machine;
    res->machine_busy_pct = result_machine_busy_pct(res);
    res->server_died = smp->server_died;
    result_judge(res);
    return 0;
}

void result_judge(struct result *res)
{
    int st = RESULT_OK;
    if (res->server_died) {
        st = RESULT_DIED;
        add_reason(res, "the server died or closed every connection");
    }
    if (res->lost)
        add_reason(res, "%llu lost", (unsigned long long)res->lost);
    if (res->dup)
        add_reason(res, "%llu duplicated or reordered", (unsigned long long)res->dup);
    if (res->id_mismatches)
        add_reason(res, "%llu id mismatches", (unsigned long long)res->id_mismatches);
    if (res->publish_failed)
        add_reason(res, "%llu publishes failed", (unsigned long long)res->publish_failed);
    if (res->unanswered)
        add_reason(res, "%llu publishes never answered", (unsigned long long)res->unanswered);
    if (res->undelivered)
        add_reason(res,
                   "%llu acknowledged deliveries had not arrived when the drain was cut off "
                   "with deliveries still coming (the server is behind: late, not known lost)",
                   (unsigned long long)res->undelivered);
    if (res->silent_publishers)
        add_reason(res, res->published || res->deliveries
                            ? "nothing was published: the publishers never got going (closed by "
                              "the server?)"
                            : "nothing was published, or (role = subscribe) nothing came from "
                              "the publishing process (not started? another start_at?)");
    uint64_t want = 0;
    for (int k = 0; k < LK_N; k++)
        want += res->kinds[k].clients;
    int unsubscribed = res->subscribers < want;
    if (unsubscribed)
        add_reason(res, "only %llu of %llu subscribers ever subscribed",
                   (unsigned long long)res->subscribers, (unsigned long long)want);
    if (res->lost || res->dup || res->id_mismatches || res->publish_failed || res->unanswered ||
        res->silent_publishers || unsubscribed || res->undelivered)
        st = result_worse_status(st, RESULT_DELIVERY);
    res->exit_status = result_worse_status(res->exit_status, st);
}

/* ---- derived figures ------------------------------------------------------------ */

double result_server_cpu_us_per_delivery(const struct result *res, int which)
{
    const struct result_ticks *t = &res->server_cpu;
    if (!t->valid || res->window_deliveries == 0 || res->clk_tck <= 0)
        return NAN;
    uint64_t u = t->user1 - t->user0, s = t->sys1 - t->sys0;
    uint64_t ticks = which == 1 ? u : which == 2 ? s : u + s;
    return (double)ticks * 1e6 / (double)res->clk_tck / (double)res->window_deliveries;
}

double result_machine_busy_pct(const struct result *res)
{
    const struct result_ticks *t = &res->machine_cpu;
    if (!t->valid)
        return res->machine_busy_pct;
    uint64_t busy = t->user1 - t->user0, total = t->sys1 - t->sys0;
    return total ? 100.0 * (double)busy / (double)total : -1;
}

/* Machine CPU used by neither the server nor ringload over the window, in
 * percent of the machine: what disturbed the run. NAN when unknown. */
static double machine_other_pct(const struct result *res)
{
    const struct result_ticks *m = &res->machine_cpu, *s = &res->server_cpu;
    if (!m->valid || res->clk_tck <= 0 || m->sys1 == m->sys0)
        return NAN;
    double busy = (double)(m->user1 - m->user0), total = (double)(m->sys1 - m->sys0);
    double server = s->valid ? (double)(s->user1 - s->user0 + s->sys1 - s->sys0) : 0;
    double own = res->ringload_cpu_window_s * (double)res->clk_tck;
    double other = busy - server - own;
    return 100.0 * (other > 0 ? other : 0) / total;
}

/* A percentile, never above the exact maximum (buckets report their top). */
static double pct_ms(const struct hist *h, double q)
{
    if (!hist_count(h))
        return 0;
    uint64_t v = hist_value_at(h, q), m = hist_max(h);
    return (double)(v < m ? v : m) / 1e6;
}

double result_p99_ms(const struct result *res)
{
    if (hist_count(res->lat))
        return pct_ms(res->lat, 0.99);
    return res->lat_p99_ms_ >= 0 ? res->lat_p99_ms_ : NAN;
}

/* ---- the summary ----------------------------------------------------------------- */

/* One line per kind that made TLS handshakes, and the failures by reason. */
/* Per kind: how long connecting and getting ready took. */
static void print_connect(const struct result *res, FILE *out)
{
    for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
        const struct result_conn *rc = &res->conn[k];
        if (!hist_count(rc->connect))
            continue;
        fprintf(out,
                "ringload: connect %-10s ms p50 %.3f p99 %.3f max %.3f; ready ms p50 %.3f p99 "
                "%.3f max %.3f (%llu connections)\n",
                tls_kind_name[k], pct_ms(rc->connect, 0.5), pct_ms(rc->connect, 0.99),
                (double)hist_max(rc->connect) / 1e6, pct_ms(rc->ready, 0.5),
                pct_ms(rc->ready, 0.99), (double)hist_max(rc->ready) / 1e6,
                (unsigned long long)hist_count(rc->connect));
    }
}

static void print_tls(const struct result *res, FILE *out)
{
    for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
        const struct result_tls *rt = &res->tls[k];
        if (!rt->handshakes && !rt->failed)
            continue;
        fprintf(out,
                "ringload: TLS %-10s %llu handshakes (%llu resumed), %llu failed; handshake ms "
                "mean %.3f p50 %.3f p99 %.3f max %.3f\n",
                tls_kind_name[k], (unsigned long long)rt->handshakes,
                (unsigned long long)rt->resumed, (unsigned long long)rt->failed,
                hist_mean(rt->lat) / 1e6, pct_ms(rt->lat, 0.5), pct_ms(rt->lat, 0.99),
                (double)hist_max(rt->lat) / 1e6);
    }
    const char *sep = "ringload: TLS handshake failures:";
    for (int k = 0; k < ENGINE_TLS_REASONS; k++)
        if (res->tls_errors[k]) {
            fprintf(out, "%s %s %llu", sep, engine_tls_reason_name(k),
                    (unsigned long long)res->tls_errors[k]);
            sep = ",";
        }
    if (sep[0] == ',')
        fprintf(out, "\n");
}

void result_print(const struct result *res, FILE *out)
{
    static const double q[] = {0.5, 0.9, 0.99, 0.999, 0.9999};
    static const char *const qn[] = {"p50", "p90", "p99", "p99_9", "p99_99"};
    if (res->merged > 1)
        fprintf(out, "ringload: %d shards merged\n", res->merged);
    fprintf(out,
            "ringload: %llu subscribers, %llu published (%llu acknowledged, %llu unanswered), "
            "%llu deliveries (%llu measured)\n",
            (unsigned long long)res->subscribers, (unsigned long long)res->published,
            (unsigned long long)res->acknowledged, (unsigned long long)res->unanswered,
            (unsigned long long)res->deliveries, (unsigned long long)hist_count(res->lat));
    fprintf(out,
            "ringload: lost %llu, duplicated or reordered %llu, id mismatches %llu, gaps "
            "signalled %llu\n",
            (unsigned long long)res->lost, (unsigned long long)res->dup,
            (unsigned long long)res->id_mismatches, (unsigned long long)res->gaps);
    for (int k = 0; k < LK_N; k++) {
        const struct result_kind *rk = &res->kinds[k];
        if (rk->clients)
            fprintf(out,
                    "ringload: %-8s %llu clients: %llu subscribed, %llu connect failures, %llu "
                    "deliveries, lost %llu, duplicated or reordered %llu\n",
                    kind_name[k], (unsigned long long)rk->clients,
                    (unsigned long long)rk->subscribed, (unsigned long long)rk->connect_failed,
                    (unsigned long long)rk->deliveries, (unsigned long long)rk->lost,
                    (unsigned long long)rk->dup);
    }
    if (res->kinds[LK_POLL].clients)
        fprintf(out, "ringload: %.1f short polls/s\n", res->polls_per_s);
    if (res->kinds[LK_WS].clients)
        fprintf(out, "ringload: %llu WebSocket pongs sent, %llu close handshakes completed\n",
                (unsigned long long)res->pongs, (unsigned long long)res->ws_closes);
    if (res->reconnects || res->reconnect_failed || res->churn_drops || res->missed_offline ||
        res->gap_skipped || res->ws_inflated)
        fprintf(out,
                "ringload: %llu reconnects (%llu failed tries), %llu churn drops, %llu messages "
                "missed while away without resume, %llu skipped over signalled gaps, %llu "
                "compressed WebSocket frames\n",
                (unsigned long long)res->reconnects, (unsigned long long)res->reconnect_failed,
                (unsigned long long)res->churn_drops, (unsigned long long)res->missed_offline,
                (unsigned long long)res->gap_skipped, (unsigned long long)res->ws_inflated);
    print_connect(res, out);
    print_tls(res, out);
    fprintf(out, "ringload: latency ms (SSE, WebSocket, long poll):");
    for (size_t i = 0; i < ARRAY_SIZE(q); i++)
        fprintf(out, " %s %.3f", qn[i], pct_ms(res->lat, q[i]));
    fprintf(out, " max %.3f\n", hist_count(res->lat) ? (double)hist_max(res->lat) / 1e6 : 0.0);
    fprintf(out,
            "ringload: memory: server %.0f B/connection, ringload %.0f B/client; ringload CPU "
            "%.1f s over %.1f s on %d threads%s\n",
            res->server_bytes_per_connection, res->ringload_bytes_per_client, res->ringload_cpu_s,
            res->wall_s, res->threads,
            res->ringload_saturated == 1
                ? " (SATURATED in the window: these figures are ringload's, not the server's)"
                : "");
    if (res->ringload_thread_busy_max_pct >= 0)
        fprintf(out, "ringload: busiest thread %.0f%% of a CPU over the window\n",
                res->ringload_thread_busy_max_pct);
    double cpu = result_server_cpu_us_per_delivery(res, 0);
    if (!isnan(cpu))
        fprintf(out,
                "ringload: server CPU %.2f us per delivery (user %.2f, system %.2f) over %llu "
                "deliveries in the %.1f s window\n",
                cpu, result_server_cpu_us_per_delivery(res, 1),
                result_server_cpu_us_per_delivery(res, 2),
                (unsigned long long)res->window_deliveries, res->window_s);
    double busy = result_machine_busy_pct(res), other = machine_other_pct(res);
    if (busy >= 0)
        fprintf(out, "ringload: machine CPU busy %.1f%% over the window", busy);
    if (busy >= 0 && !isnan(other))
        fprintf(out, ", %.1f%% of it neither the server nor ringload%s", other,
                other > 10 ? " (DISTURBED: something else ran; CPU figures are suspect)" : "");
    if (busy >= 0)
        fprintf(out, "\n");
}

/* ---- JSON out -------------------------------------------------------------------- */

static json_t *jreal(double v)
{
    if (isnan(v) || isinf(v))
        return json_null();
    return json_real(round(v * 1000) / 1000);
}

static json_t *jint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static json_t *ticks_json(const struct result_ticks *t, const char *a, const char *b)
{
    char a0[32], a1[32], b0[32], b1[32];
    snprintf(a0, sizeof(a0), "%s0", a);
    snprintf(a1, sizeof(a1), "%s1", a);
    snprintf(b0, sizeof(b0), "%s0", b);
    snprintf(b1, sizeof(b1), "%s1", b);
    return json_pack("{s:I,s:I,s:I,s:I}", a0, (json_int_t)t->user0, b0, (json_int_t)t->sys0, a1,
                     (json_int_t)t->user1, b1, (json_int_t)t->sys1);
}

/* A histogram as hist_encode's text (NULL when out of memory). */
static json_t *hist_json(const struct hist *h)
{
    size_t hl = hist_encode(h, NULL, 0);
    char *text = malloc(hl + 1);
    if (!text)
        return NULL;
    hist_encode(h, text, hl + 1);
    json_t *j = json_string(text);
    free(text);
    return j;
}

/* {"mean", "p50", "p99", "max", "count"} of a histogram, ms. */
static json_t *ms_json(const struct hist *h)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:I}", "mean", jreal(hist_mean(h) / 1e6), "p50",
                     jreal(pct_ms(h, 0.5)), "p99", jreal(pct_ms(h, 0.99)), "max",
                     jreal((double)hist_max(h) / 1e6), "count", (json_int_t)hist_count(h));
}

/* "tls": per kind handshakes, failed, resumed, handshake times (ms, and the
 * histogram for merging), and failures by reason. */
static json_t *tls_json(const struct result *res)
{
    json_t *kinds = json_object(), *errors = json_object();
    for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
        const struct result_tls *rt = &res->tls[k];
        json_t *ms = ms_json(rt->lat);
        json_t *ko = json_pack("{s:I,s:I,s:I,s:o}", "handshakes", (json_int_t)rt->handshakes,
                               "failed", (json_int_t)rt->failed, "resumed", (json_int_t)rt->resumed,
                               "handshake_ms", ms);
        json_t *h = hist_json(rt->lat);
        if (h)
            json_object_set_new(ko, "histogram", h);
        json_object_set_new(kinds, tls_kind_name[k], ko);
    }
    for (int k = TLS_ERR_NONE + 1; k < ENGINE_TLS_REASONS; k++)
        json_object_set_new(errors, engine_tls_reason_name(k), jint(res->tls_errors[k]));
    return json_pack("{s:o,s:o}", "kinds", kinds, "errors", errors);
}

/* "connect": per kind connect_ms and ready_ms, with their histograms. */
static json_t *connect_json(const struct result *res)
{
    json_t *kinds = json_object();
    for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
        const struct result_conn *rc = &res->conn[k];
        json_t *ko = json_pack("{s:o,s:o}", "connect_ms", ms_json(rc->connect), "ready_ms",
                               ms_json(rc->ready));
        json_t *h1 = hist_json(rc->connect), *h2 = hist_json(rc->ready);
        if (h1)
            json_object_set_new(ko, "connect_histogram", h1);
        if (h2)
            json_object_set_new(ko, "ready_histogram", h2);
        json_object_set_new(kinds, tls_kind_name[k], ko);
    }
    return kinds;
}

static json_t *result_json(const struct result *res)
{
    static const double q[] = {0.5, 0.9, 0.99, 0.999, 0.9999};
    static const char *const qn[] = {"p50", "p90", "p99", "p99_9", "p99_99"};
    json_t *o = json_object();
    json_object_set_new(o, "tool", json_string("ringload"));
    json_object_set_new(o, "format", json_integer(2));
    json_object_set_new(o, "environment",
                        json_pack("{s:s,s:I,s:i,s:s,s:I}", "kernel", res->kernel, "cpus",
                                  (json_int_t)res->cpus, "threads", res->threads, "hostname",
                                  res->hostname, "clk_tck", (json_int_t)res->clk_tck));
    json_object_set_new(o, "scenario", json_string(res->scenario ? res->scenario : ""));
    json_object_set_new(
        o, "shard",
        json_pack("{s:i,s:i}", "index", (int)res->shard_index, "count", (int)res->shard_count));
    json_object_set_new(o, "merged", json_integer(res->merged));
    json_object_set_new(o, "clients", jint(res->clients));
    json_object_set_new(o, "connected", jint(res->connected));
    json_object_set_new(o, "subscribers", jint(res->subscribers));
    json_object_set_new(o, "published", jint(res->published));
    json_object_set_new(o, "acknowledged", jint(res->acknowledged));
    json_object_set_new(o, "unanswered", jint(res->unanswered));
    json_object_set_new(o, "deliveries", jint(res->deliveries));
    json_object_set_new(o, "deliveries_per_s", jreal(res->deliveries_per_s));
    json_object_set_new(o, "lost", jint(res->lost));
    json_object_set_new(o, "duplicated_or_reordered", jint(res->dup));
    json_object_set_new(o, "id_mismatches", jint(res->id_mismatches));
    json_object_set_new(o, "gaps_signalled", jint(res->gaps));
    json_object_set_new(
        o, "errors",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "connect_failed", (json_int_t)res->connect_failed,
                  "refused", (json_int_t)res->refused, "bad_status", (json_int_t)res->bad_status,
                  "protocol", (json_int_t)res->protocol, "publish_failed",
                  (json_int_t)res->publish_failed, "closed_by_server",
                  (json_int_t)res->closed_by_server));
    json_t *kinds = json_object();
    for (int k = 0; k < LK_N; k++) {
        const struct result_kind *rk = &res->kinds[k];
        json_object_set_new(
            kinds, kind_name[k],
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "clients", (json_int_t)rk->clients,
                      "connect_failed", (json_int_t)rk->connect_failed, "subscribed",
                      (json_int_t)rk->subscribed, "deliveries", (json_int_t)rk->deliveries, "lost",
                      (json_int_t)rk->lost, "duplicated_or_reordered", (json_int_t)rk->dup));
    }
    json_object_set_new(o, "kinds", kinds);
    json_object_set_new(o, "polls", jint(res->polls));
    json_object_set_new(o, "polls_per_s", jreal(res->polls_per_s));
    json_object_set_new(o, "ws_pongs", jint(res->pongs));
    json_object_set_new(o, "ws_closes", jint(res->ws_closes));
    json_object_set_new(o, "ws_compressed_frames", jint(res->ws_inflated));
    json_object_set_new(o, "undelivered_at_cutoff", jint(res->undelivered));
    json_object_set_new(o, "reconnects",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "made", (json_int_t)res->reconnects,
                                  "failed_tries", (json_int_t)res->reconnect_failed, "churn_drops",
                                  (json_int_t)res->churn_drops, "missed_while_away",
                                  (json_int_t)res->missed_offline, "skipped_over_gaps",
                                  (json_int_t)res->gap_skipped));
    json_object_set_new(o, "tls", tls_json(res));
    json_object_set_new(o, "connect", connect_json(res));
    json_t *lat = json_object();
    for (size_t i = 0; i < ARRAY_SIZE(q); i++)
        json_object_set_new(lat, qn[i], jreal(pct_ms(res->lat, q[i])));
    json_object_set_new(lat, "max",
                        jreal(hist_count(res->lat) ? (double)hist_max(res->lat) / 1e6 : 0));
    json_object_set_new(lat, "count", json_integer(hist_count(res->lat)));
    json_object_set_new(o, "latency_ms", lat);
    json_object_set_new(o, "server_bytes_per_connection",
                        json_integer((json_int_t)llround(res->server_bytes_per_connection)));
    json_object_set_new(o, "ringload_bytes_per_client",
                        json_integer((json_int_t)llround(res->ringload_bytes_per_client)));
    json_object_set_new(o, "ringload_cpu_s", jreal(res->ringload_cpu_s));
    json_object_set_new(o, "wall_s", jreal(res->wall_s));
    json_object_set_new(o, "server_died", json_boolean(res->server_died));
    json_object_set_new(o, "window",
                        json_pack("{s:o,s:o,s:o,s:I,s:I}", "start_epoch_s",
                                  json_real(res->measure_epoch_s), "s", jreal(res->window_s),
                                  "duration_s", jreal(res->duration_s), "deliveries",
                                  (json_int_t)res->window_deliveries, "published",
                                  (json_int_t)res->window_published));
    json_object_set_new(o, "server_pid", json_integer(res->server_pid));
    json_object_set_new(o, "memory",
                        json_pack("{s:I,s:I,s:I,s:I}", "server_rss_before_kb",
                                  (json_int_t)res->server_rss_before_kb, "server_rss_after_ramp_kb",
                                  (json_int_t)res->server_rss_after_ramp_kb,
                                  "ringload_rss_before_kb", (json_int_t)res->own_rss_before_kb,
                                  "ringload_rss_after_ramp_kb",
                                  (json_int_t)res->own_rss_after_ramp_kb));
    json_object_set_new(o, "ringload_cpu_window_s", jreal(res->ringload_cpu_window_s));
    json_object_set_new(o, "ringload_thread_busy_max_pct",
                        jreal(res->ringload_thread_busy_max_pct));
    json_object_set_new(o, "ringload_saturated",
                        res->ringload_saturated < 0 ? json_null()
                                                    : json_boolean(res->ringload_saturated));
    if (res->server_cpu.valid) {
        const struct result_ticks *t = &res->server_cpu;
        double tck = res->clk_tck > 0 ? (double)res->clk_tck : 100;
        json_object_set_new(
            o, "server_cpu",
            json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "user_s",
                      jreal((double)(t->user1 - t->user0) / tck), "system_s",
                      jreal((double)(t->sys1 - t->sys0) / tck), "us_per_delivery",
                      jreal(result_server_cpu_us_per_delivery(res, 0)), "user_us_per_delivery",
                      jreal(result_server_cpu_us_per_delivery(res, 1)), "system_us_per_delivery",
                      jreal(result_server_cpu_us_per_delivery(res, 2)), "ticks",
                      ticks_json(t, "user", "system")));
    } else {
        json_object_set_new(o, "server_cpu", json_null());
    }
    double busy = result_machine_busy_pct(res);
    if (busy >= 0) {
        json_t *m = json_pack("{s:o,s:o}", "busy_pct", jreal(busy), "other_pct",
                              jreal(machine_other_pct(res)));
        if (res->machine_cpu.valid)
            json_object_set_new(m, "ticks", ticks_json(&res->machine_cpu, "busy", "total"));
        json_object_set_new(o, "machine_cpu", m);
    } else {
        json_object_set_new(o, "machine_cpu", json_null());
    }
    json_object_set_new(o, "exit_status", json_integer(res->exit_status));
    json_object_set_new(o, "exit_reasons", json_string(res->reasons));
    size_t hl = hist_encode(res->lat, NULL, 0);
    char *h = malloc(hl + 1);
    if (h) {
        hist_encode(res->lat, h, hl + 1);
        json_object_set_new(o, "histogram", json_string(h));
        free(h);
    }
    return o;
}

int result_write(const struct result *res, const char *path)
{
    json_t *o = result_json(res);
    if (!o)
        return -ENOMEM;
    FILE *f = fopen(path, "w");
    if (!f) {
        int e = errno;
        json_decref(o);
        return -e;
    }
    int rc = json_dumpf(o, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(o);
    if (fputc('\n', f) == EOF)
        rc = -1;
    if (fclose(f) != 0 || rc < 0)
        return -EIO;
    return 0;
}

/* ---- JSON in --------------------------------------------------------------------- */

static int get_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v) && json_real_value(v) >= 0) {
        *out = (uint64_t)json_real_value(v);
        return 1;
    }
    return 0;
}

static int get_real(json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return 0;
    *out = json_number_value(v);
    return 1;
}

static void get_long(json_t *o, const char *key, long *out)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        *out = (long)json_integer_value(v);
}

static void get_ticks(json_t *o, const char *a, const char *b, struct result_ticks *t)
{
    char a0[32], a1[32], b0[32], b1[32];
    json_t *tk = json_object_get(o, "ticks");
    snprintf(a0, sizeof(a0), "%s0", a);
    snprintf(a1, sizeof(a1), "%s1", a);
    snprintf(b0, sizeof(b0), "%s0", b);
    snprintf(b1, sizeof(b1), "%s1", b);
    t->valid = json_is_object(tk) && get_u64(tk, a0, &t->user0) && get_u64(tk, a1, &t->user1) &&
               get_u64(tk, b0, &t->sys0) && get_u64(tk, b1, &t->sys1) && t->user1 >= t->user0 &&
               t->sys1 >= t->sys0;
}

/* The "tls" object, when the file has one (older ones do not). */
static void read_hist(struct hist *h, json_t *text)
{
    if (json_is_string(text) &&
        hist_decode(h, json_string_value(text), json_string_length(text)) < 0)
        hist_reset(h); /* a damaged one: no times rather than wrong ones */
}

static void read_connect(struct result *res, json_t *kinds)
{
    for (int k = 0; k < ENGINE_TLS_KINDS && json_is_object(kinds); k++) {
        json_t *ko = json_object_get(kinds, tls_kind_name[k]);
        if (!json_is_object(ko))
            continue;
        read_hist(res->conn[k].connect, json_object_get(ko, "connect_histogram"));
        read_hist(res->conn[k].ready, json_object_get(ko, "ready_histogram"));
    }
}

static void read_tls(struct result *res, json_t *tls)
{
    json_t *kinds = json_object_get(tls, "kinds"), *errors = json_object_get(tls, "errors"), *h;
    for (int k = 0; k < ENGINE_TLS_KINDS && json_is_object(kinds); k++) {
        json_t *ko = json_object_get(kinds, tls_kind_name[k]);
        struct result_tls *rt = &res->tls[k];
        if (!json_is_object(ko))
            continue;
        get_u64(ko, "handshakes", &rt->handshakes);
        get_u64(ko, "failed", &rt->failed);
        get_u64(ko, "resumed", &rt->resumed);
        if (json_is_string(h = json_object_get(ko, "histogram")) &&
            hist_decode(rt->lat, json_string_value(h), json_string_length(h)) < 0)
            hist_reset(rt->lat); /* a damaged one: no times rather than wrong ones */
    }
    for (int k = TLS_ERR_NONE + 1; k < ENGINE_TLS_REASONS && json_is_object(errors); k++)
        get_u64(errors, engine_tls_reason_name(k), &res->tls_errors[k]);
}

static void read_fields(struct result *res, json_t *o)
{
    json_t *env = json_object_get(o, "environment"), *v;
    if (json_is_object(env)) {
        if (json_is_string(v = json_object_get(env, "kernel")))
            snprintf(res->kernel, sizeof(res->kernel), "%s", json_string_value(v));
        if (json_is_string(v = json_object_get(env, "hostname")))
            snprintf(res->hostname, sizeof(res->hostname), "%s", json_string_value(v));
        get_long(env, "cpus", &res->cpus);
        get_long(env, "clk_tck", &res->clk_tck);
        long th = 0;
        get_long(env, "threads", &th);
        res->threads = (int)th;
    }
    if (json_is_string(v = json_object_get(o, "scenario")))
        res->scenario = strdup(json_string_value(v));
    json_t *sh = json_object_get(o, "shard");
    uint64_t u;
    if (json_is_object(sh) && get_u64(sh, "index", &u))
        res->shard_index = (uint32_t)u;
    if (json_is_object(sh) && get_u64(sh, "count", &u) && u > 0)
        res->shard_count = (uint32_t)u;
    res->merged = get_u64(o, "merged", &u) ? (int)u : 1;
    get_u64(o, "clients", &res->clients);
    get_u64(o, "connected", &res->connected);
    get_u64(o, "subscribers", &res->subscribers);
    get_u64(o, "published", &res->published);
    get_u64(o, "acknowledged", &res->acknowledged);
    get_u64(o, "unanswered", &res->unanswered);
    get_u64(o, "deliveries", &res->deliveries);
    get_real(o, "deliveries_per_s", &res->deliveries_per_s);
    get_u64(o, "lost", &res->lost);
    get_u64(o, "duplicated_or_reordered", &res->dup);
    get_u64(o, "id_mismatches", &res->id_mismatches);
    get_u64(o, "gaps_signalled", &res->gaps);
    json_t *e = json_object_get(o, "errors");
    if (json_is_object(e)) {
        get_u64(e, "connect_failed", &res->connect_failed);
        get_u64(e, "refused", &res->refused);
        get_u64(e, "bad_status", &res->bad_status);
        get_u64(e, "protocol", &res->protocol);
        get_u64(e, "publish_failed", &res->publish_failed);
        get_u64(e, "closed_by_server", &res->closed_by_server);
    }
    json_t *kinds = json_object_get(o, "kinds");
    for (int k = 0; k < LK_N && json_is_object(kinds); k++) {
        json_t *ko = json_object_get(kinds, kind_name[k]);
        struct result_kind *rk = &res->kinds[k];
        if (!json_is_object(ko))
            continue;
        get_u64(ko, "clients", &rk->clients);
        get_u64(ko, "connect_failed", &rk->connect_failed);
        get_u64(ko, "subscribed", &rk->subscribed);
        get_u64(ko, "deliveries", &rk->deliveries);
        get_u64(ko, "lost", &rk->lost);
        get_u64(ko, "duplicated_or_reordered", &rk->dup);
    }
    get_u64(o, "polls", &res->polls);
    get_real(o, "polls_per_s", &res->polls_per_s);
    get_u64(o, "ws_pongs", &res->pongs);
    get_u64(o, "ws_closes", &res->ws_closes);
    get_u64(o, "ws_compressed_frames", &res->ws_inflated);
    get_u64(o, "undelivered_at_cutoff", &res->undelivered);
    json_t *rc = json_object_get(o, "reconnects");
    if (json_is_object(rc)) {
        get_u64(rc, "made", &res->reconnects);
        get_u64(rc, "failed_tries", &res->reconnect_failed);
        get_u64(rc, "churn_drops", &res->churn_drops);
        get_u64(rc, "missed_while_away", &res->missed_offline);
        get_u64(rc, "skipped_over_gaps", &res->gap_skipped);
    }
    read_tls(res, json_object_get(o, "tls"));
    read_connect(res, json_object_get(o, "connect"));
    json_t *lat = json_object_get(o, "latency_ms");
    if (json_is_object(lat))
        get_real(lat, "p99", &res->lat_p99_ms_);
    get_real(o, "server_bytes_per_connection", &res->server_bytes_per_connection);
    get_real(o, "ringload_bytes_per_client", &res->ringload_bytes_per_client);
    get_real(o, "ringload_cpu_s", &res->ringload_cpu_s);
    get_real(o, "wall_s", &res->wall_s);
    res->server_died = json_is_true(json_object_get(o, "server_died"));
    json_t *w = json_object_get(o, "window");
    if (json_is_object(w)) {
        get_real(w, "s", &res->window_s);
        get_real(w, "start_epoch_s", &res->measure_epoch_s);
        get_real(w, "duration_s", &res->duration_s);
        get_u64(w, "deliveries", &res->window_deliveries);
        get_u64(w, "published", &res->window_published);
    }
    long pid = 0;
    get_long(o, "server_pid", &pid);
    res->server_pid = (int)pid;
    json_t *m = json_object_get(o, "memory");
    if (json_is_object(m)) {
        get_long(m, "server_rss_before_kb", &res->server_rss_before_kb);
        get_long(m, "server_rss_after_ramp_kb", &res->server_rss_after_ramp_kb);
        get_long(m, "ringload_rss_before_kb", &res->own_rss_before_kb);
        get_long(m, "ringload_rss_after_ramp_kb", &res->own_rss_after_ramp_kb);
    }
    get_real(o, "ringload_cpu_window_s", &res->ringload_cpu_window_s);
    res->ringload_thread_busy_max_pct = -1;
    get_real(o, "ringload_thread_busy_max_pct", &res->ringload_thread_busy_max_pct);
    json_t *sat = json_object_get(o, "ringload_saturated");
    res->ringload_saturated = json_is_boolean(sat) ? json_is_true(sat) : -1;
    json_t *sc = json_object_get(o, "server_cpu");
    if (json_is_object(sc))
        get_ticks(sc, "user", "system", &res->server_cpu);
    json_t *mc = json_object_get(o, "machine_cpu");
    if (json_is_object(mc)) {
        get_real(mc, "busy_pct", &res->machine_busy_pct);
        get_ticks(mc, "busy", "total", &res->machine_cpu);
    }
    if (get_u64(o, "exit_status", &u))
        res->exit_status = (int)u;
    if (json_is_string(v = json_object_get(o, "exit_reasons")))
        snprintf(res->reasons, sizeof(res->reasons), "%s", json_string_value(v));
}

int result_read(struct result *res, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        if (je.line > 0)
            snprintf(err, errlen, "%s: line %d: %s", path, je.line, je.text);
        else
            snprintf(err, errlen, "%s", je.text); /* "unable to open PATH: reason" */
        return -EINVAL;
    }
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "tool")) ||
        strcmp(json_string_value(json_object_get(o, "tool")), "ringload") != 0) {
        snprintf(err, errlen, "%s: not a ringload result (no \"tool\": \"ringload\")", path);
        json_decref(o);
        return -EINVAL;
    }
    read_fields(res, o);
    json_t *h = json_object_get(o, "histogram");
    if (json_is_string(h) &&
        hist_decode(res->lat, json_string_value(h), json_string_length(h)) < 0) {
        snprintf(err, errlen, "%s: \"histogram\" is malformed", path);
        json_decref(o);
        return -EINVAL;
    }
    /* Files from before "window" and "server_cpu" lack them: the derived
     * figures stay unknown (NAN / -1), which compare skips. */
    if (res->server_bytes_per_connection < 0)
        res->server_bytes_per_connection = -1;
    if (res->ringload_bytes_per_client < 0)
        res->ringload_bytes_per_client = -1;
    json_decref(o);
    return 0;
}

/* ---- merging ---------------------------------------------------------------------- */

static int same_server(const struct result *a, const struct result *b)
{
    return a->server_pid > 0 && a->server_pid == b->server_pid &&
           strcmp(a->hostname, b->hostname) == 0;
}

/* Weighted mean of two known (>= 0) figures; an unknown one does not count. */
static double weighted(double a, double wa, double b, double wb)
{
    if (a < 0 || wa <= 0)
        return b < 0 ? -1 : b;
    if (b < 0 || wb <= 0)
        return a;
    return (a * wa + b * wb) / (wa + wb);
}

static void merge_ticks(struct result_ticks *d, const struct result_ticks *s, int union_)
{
    if (!s->valid) {
        d->valid = 0;
        return;
    }
    if (union_) {
        /* Cumulative counters of one process or machine: the earliest start
         * and the latest end cover every shard's window. */
        d->user0 = s->user0 < d->user0 ? s->user0 : d->user0;
        d->sys0 = s->sys0 < d->sys0 ? s->sys0 : d->sys0;
        d->user1 = s->user1 > d->user1 ? s->user1 : d->user1;
        d->sys1 = s->sys1 > d->sys1 ? s->sys1 : d->sys1;
    } else {
        /* Different servers: their CPU adds up (kept as one span from 0). */
        uint64_t u = d->user1 - d->user0 + s->user1 - s->user0;
        uint64_t y = d->sys1 - d->sys0 + s->sys1 - s->sys0;
        d->user0 = d->sys0 = 0;
        d->user1 = u;
        d->sys1 = y;
    }
}

int result_merge(struct result *dst, const struct result *src)
{
    if (dst->merged == 0) {
        /* The first: take it whole, histogram and scenario copied. */
        struct hist *lat = dst->lat, *tls_lat[ENGINE_TLS_KINDS];
        struct result_conn conn[ENGINE_TLS_KINDS];
        for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
            tls_lat[k] = dst->tls[k].lat;
            conn[k] = dst->conn[k];
        }
        *dst = *src;
        dst->lat = lat;
        hist_reset(lat);
        hist_merge(lat, src->lat);
        for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
            dst->tls[k].lat = tls_lat[k];
            hist_reset(tls_lat[k]);
            hist_merge(tls_lat[k], src->tls[k].lat);
            dst->conn[k] = conn[k];
            hist_reset(conn[k].connect);
            hist_reset(conn[k].ready);
            hist_merge(conn[k].connect, src->conn[k].connect);
            hist_merge(conn[k].ready, src->conn[k].ready);
        }
        dst->scenario = src->scenario ? strdup(src->scenario) : NULL;
        dst->merged = src->merged ? src->merged : 1;
        return 0;
    }
    int shared = same_server(dst, src);
    int one_host = strcmp(dst->hostname, src->hostname) == 0;
    double dst_conn = (double)dst->connected, dst_cli = (double)dst->clients;
    dst->merged += src->merged ? src->merged : 1;
    dst->threads += src->threads;
    dst->clients += src->clients;
    dst->connected += src->connected;
    dst->subscribers += src->subscribers;
    dst->published += src->published;
    dst->acknowledged += src->acknowledged;
    dst->unanswered += src->unanswered;
    dst->deliveries += src->deliveries;
    dst->lost += src->lost;
    dst->dup += src->dup;
    dst->id_mismatches += src->id_mismatches;
    dst->gaps += src->gaps;
    dst->connect_failed += src->connect_failed;
    dst->refused += src->refused;
    dst->bad_status += src->bad_status;
    dst->protocol += src->protocol;
    dst->publish_failed += src->publish_failed;
    dst->closed_by_server += src->closed_by_server;
    for (int k = 0; k < LK_N; k++) {
        struct result_kind *d = &dst->kinds[k];
        const struct result_kind *s = &src->kinds[k];
        d->clients += s->clients;
        d->connect_failed += s->connect_failed;
        d->subscribed += s->subscribed;
        d->deliveries += s->deliveries;
        d->lost += s->lost;
        d->dup += s->dup;
    }
    dst->polls += src->polls;
    dst->pongs += src->pongs;
    dst->ws_closes += src->ws_closes;
    dst->reconnects += src->reconnects;
    dst->reconnect_failed += src->reconnect_failed;
    dst->churn_drops += src->churn_drops;
    dst->missed_offline += src->missed_offline;
    dst->undelivered += src->undelivered;
    dst->gap_skipped += src->gap_skipped;
    dst->ws_inflated += src->ws_inflated;
    for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
        dst->tls[k].handshakes += src->tls[k].handshakes;
        dst->tls[k].failed += src->tls[k].failed;
        dst->tls[k].resumed += src->tls[k].resumed;
        hist_merge(dst->tls[k].lat, src->tls[k].lat);
        hist_merge(dst->conn[k].connect, src->conn[k].connect);
        hist_merge(dst->conn[k].ready, src->conn[k].ready);
    }
    for (int k = 0; k < ENGINE_TLS_REASONS; k++)
        dst->tls_errors[k] += src->tls_errors[k];
    /* The shards ran side by side: their rates add up. */
    dst->polls_per_s += src->polls_per_s;
    dst->deliveries_per_s += src->deliveries_per_s;
    dst->window_s = src->window_s > dst->window_s ? src->window_s : dst->window_s;
    dst->duration_s = src->duration_s > dst->duration_s ? src->duration_s : dst->duration_s;
    dst->window_deliveries += src->window_deliveries;
    dst->window_published += src->window_published;
    hist_merge(dst->lat, src->lat);
    dst->lat_p99_ms_ = -1;

    /* Memory. ringload's processes are separate: weighted by clients. One
     * server under every shard: its RSS growth over all their connections
     * (each shard sampled after its own ramp, the latest after them all). */
    dst->ringload_bytes_per_client = weighted(dst->ringload_bytes_per_client, dst_cli,
                                              src->ringload_bytes_per_client, (double)src->clients);
    dst->own_rss_before_kb = dst->own_rss_after_ramp_kb = -1; /* no longer one process */
    if (shared && dst->server_rss_before_kb > 0 && src->server_rss_before_kb > 0 &&
        dst->server_rss_after_ramp_kb > 0 && src->server_rss_after_ramp_kb > 0) {
        if (src->server_rss_before_kb < dst->server_rss_before_kb)
            dst->server_rss_before_kb = src->server_rss_before_kb;
        if (src->server_rss_after_ramp_kb > dst->server_rss_after_ramp_kb)
            dst->server_rss_after_ramp_kb = src->server_rss_after_ramp_kb;
        dst->server_bytes_per_connection =
            dst->connected ? (double)((dst->server_rss_after_ramp_kb - dst->server_rss_before_kb) *
                                      1024 / (long)dst->connected)
                           : -1;
    } else {
        dst->server_bytes_per_connection =
            weighted(dst->server_bytes_per_connection, dst_conn, src->server_bytes_per_connection,
                     (double)src->connected);
        if (!shared)
            dst->server_rss_before_kb = dst->server_rss_after_ramp_kb = -1;
    }

    /* CPU. */
    dst->ringload_cpu_s += src->ringload_cpu_s;
    dst->ringload_cpu_window_s += src->ringload_cpu_window_s;
    if (src->ringload_thread_busy_max_pct > dst->ringload_thread_busy_max_pct)
        dst->ringload_thread_busy_max_pct = src->ringload_thread_busy_max_pct;
    if (src->ringload_saturated > dst->ringload_saturated)
        dst->ringload_saturated = src->ringload_saturated; /* any process saturated */
    dst->wall_s = src->wall_s > dst->wall_s ? src->wall_s : dst->wall_s;
    if (dst->server_cpu.valid)
        merge_ticks(&dst->server_cpu, &src->server_cpu, shared);
    if (!shared)
        dst->server_pid = dst->server_pid == src->server_pid ? dst->server_pid : -1;
    double busy_d = result_machine_busy_pct(dst), busy_s = result_machine_busy_pct(src);
    if (one_host && dst->machine_cpu.valid && src->machine_cpu.valid) {
        merge_ticks(&dst->machine_cpu, &src->machine_cpu, 1);
    } else {
        /* Different machines: the most disturbed one tells. */
        dst->machine_cpu.valid = 0;
        dst->machine_busy_pct = busy_s > busy_d ? busy_s : busy_d;
    }
    if (!one_host)
        snprintf(dst->hostname, sizeof(dst->hostname), "%s", "(several)");
    dst->machine_busy_pct = result_machine_busy_pct(dst);

    dst->server_died |= src->server_died;
    dst->exit_status = result_worse_status(dst->exit_status, src->exit_status);
    if (src->reasons[0])
        add_reason(dst, "%s", src->reasons);
    return 0;
}

/* ---- comparing -------------------------------------------------------------------- */

enum { TOL_MEMORY, TOL_CPU, TOL_RATE, TOL_LATENCY };

struct figure {
    const char *name;
    int tol;
    int higher_is_worse;
    double (*get)(const struct result *);
};

static double fig_server_mem(const struct result *r)
{
    return r->server_bytes_per_connection >= 0 ? r->server_bytes_per_connection : NAN;
}

static double fig_own_mem(const struct result *r)
{
    return r->ringload_bytes_per_client >= 0 ? r->ringload_bytes_per_client : NAN;
}

static double fig_cpu(const struct result *r)
{
    return result_server_cpu_us_per_delivery(r, 0);
}

static double fig_rate(const struct result *r)
{
    return r->deliveries_per_s;
}

static double fig_p99(const struct result *r)
{
    return result_p99_ms(r);
}

static const struct figure figures[] = {
    {"server_bytes_per_connection", TOL_MEMORY, 1, fig_server_mem},
    {"ringload_bytes_per_client", TOL_MEMORY, 1, fig_own_mem},
    {"server_cpu_us_per_delivery", TOL_CPU, 1, fig_cpu},
    {"deliveries_per_s", TOL_RATE, 0, fig_rate},
    {"latency_p99_ms", TOL_LATENCY, 1, fig_p99},
};

static double tolerance(const struct result_tolerance *t, int which)
{
    double v = which == TOL_MEMORY ? t->memory
               : which == TOL_CPU  ? t->cpu
               : which == TOL_RATE ? t->rate
                                   : t->latency;
    return v >= 0 ? v : t->all;
}

int result_compare(const struct result *base, const struct result *now,
                   const struct result_tolerance *tol, FILE *out)
{
    int bad = 0;
    const struct {
        const char *name;
        uint64_t v;
    } zero[] = {{"lost", now->lost},
                {"duplicated_or_reordered", now->dup},
                {"id_mismatches", now->id_mismatches}};
    for (size_t i = 0; i < ARRAY_SIZE(zero); i++) {
        if (zero[i].v) {
            fprintf(out, "compare: REGRESSED %s: now %llu, must be 0 whatever the baseline\n",
                    zero[i].name, (unsigned long long)zero[i].v);
            bad++;
        } else {
            fprintf(out, "compare: ok %s: 0\n", zero[i].name);
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(figures); i++) {
        const struct figure *f = &figures[i];
        double b = f->get(base), n = f->get(now), lim = tolerance(tol, f->tol);
        if (isnan(b)) {
            fprintf(out, "compare: skipped %s: not in the baseline\n", f->name);
            continue;
        }
        if (isnan(n)) {
            fprintf(out, "compare: skipped %s: not measured in this run%s\n", f->name,
                    f->tol == TOL_CPU ? " (give --server-pid)" : "");
            continue;
        }
        if (b <= 0) {
            fprintf(out, "compare: skipped %s: the baseline is %g, no percentage of it\n", f->name,
                    b);
            continue;
        }
        double change = (n - b) / b * 100, worse = f->higher_is_worse ? change : -change;
        int reg = worse > lim;
        fprintf(out, "compare: %s %s: baseline %.3f, now %.3f (%+.1f%%, %s is worse, limit %g%%)\n",
                reg ? "REGRESSED" : "ok", f->name, b, n, change,
                f->higher_is_worse ? "higher" : "lower", lim);
        bad += reg;
    }
    return bad;
}

/* ---- /proc ------------------------------------------------------------------------- */

static int next_u64(const char **p, const char *end, uint64_t *out)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
    if (*p >= end || **p < '0' || **p > '9')
        return -EINVAL;
    uint64_t v = 0;
    while (*p < end && **p >= '0' && **p <= '9')
        v = v * 10 + (uint64_t)(*(*p)++ - '0');
    *out = v;
    return 0;
}

int result_parse_pid_stat(const char *buf, size_t len, uint64_t *utime, uint64_t *stime)
{
    /* "pid (comm) S ppid ...": comm may hold anything, so count from the last ')'. */
    const char *end = buf + len, *p = NULL;
    for (const char *c = buf; c < end; c++)
        if (*c == ')')
            p = c + 1;
    if (!p)
        return -EINVAL;
    /* Fields 3 (state) .. 13 come first, then utime (14) and stime (15). */
    for (int field = 3; field < 14; field++) {
        while (p < end && *p == ' ')
            p++;
        if (p >= end)
            return -EINVAL;
        while (p < end && *p != ' ')
            p++;
    }
    if (next_u64(&p, end, utime) < 0 || next_u64(&p, end, stime) < 0)
        return -EINVAL;
    return 0;
}

int result_parse_proc_stat(const char *buf, size_t len, uint64_t *busy, uint64_t *total)
{
    const char *end = buf + len, *p = buf;
    if (len < 4 || memcmp(buf, "cpu ", 4) != 0)
        return -EINVAL;
    p += 4;
    /* user nice system idle iowait irq softirq steal (guest is inside user) */
    uint64_t v[8] = {0}, sum = 0;
    int n = 0;
    for (; n < 8; n++)
        if (next_u64(&p, end, &v[n]) < 0)
            break;
    if (n < 4)
        return -EINVAL;
    for (int i = 0; i < n; i++)
        sum += v[i];
    *total = sum;
    *busy = sum - v[3] - v[4];
    return 0;
}

/* ---- HdrHistogram log ---------------------------------------------------------------- */

int result_write_hdr_log_lines(const char *path, double start_epoch_s, const char *lines,
                               size_t len)
{
    size_t hn = hist_log_header(start_epoch_s, NULL, 0);
    char *head = malloc(hn + 1);
    if (!head)
        return -ENOMEM;
    hist_log_header(start_epoch_s, head, hn + 1);
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (!f)
        rc = -errno;
    else if (fwrite(head, 1, hn, f) != hn || fwrite(lines, 1, len, f) != len)
        rc = -EIO;
    if (f && fclose(f) != 0 && rc == 0)
        rc = -EIO;
    free(head);
    return rc;
}

int result_write_hdr_log(const struct hist *h, const char *path, double start_epoch_s,
                         double start_s, double length_s)
{
    size_t ln = hist_log_interval(h, NULL, start_s, length_s, NULL, 0);
    char *line = malloc(ln + 1);
    if (!line)
        return -ENOMEM;
    hist_log_interval(h, NULL, start_s, length_s, line, ln + 1);
    int rc = result_write_hdr_log_lines(path, start_epoch_s, line, ln);
    free(line);
    return rc;
}
