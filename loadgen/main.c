/*
 * main.c: ringload's command line, phases, progress line and results. Reads
 * the scenario (file, then flags), checks the server answers, starts one
 * engine thread per core (engine.c), steps them through connect, warm-up,
 * measurement and drain, then merges their histograms and counters into a
 * summary and, with json = FILE, a JSON result. Exits 1 when any delivery
 * was lost, duplicated or out of order, 2 on bad input or an unreachable
 * server.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "engine.h"
#include "util.h"

static void usage(void)
{
    printf("usage: ringload [--scenario FILE] [--KEY VALUE]... [--server-pid PID]\n"
           "               [--connect-timeout S]\n\n"
           "Keys (file: key = value; flags: --key-name value):\n");
    for (size_t i = 0;; i++) {
        const struct scenario_key_doc *k = scenario_key(i);
        if (!k)
            break;
        printf("  %-15s %-10s %-32s %s\n", k->name, k->type, k->def, k->help);
    }
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = cap < (1u << 24) ? realloc(buf, cap *= 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        return -EFBIG;
    *out = buf;
    *len = n;
    return 0;
}

static int resolve(const struct scenario_url *u, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    char port[8];
    snprintf(port, sizeof(port), "%u", u->port);
    int rc = getaddrinfo(u->host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "ringload: %s: cannot resolve %s: %s\n", u->text, u->host,
                gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* A plain connect with a deadline, so an unreachable server is an error in
 * seconds rather than a run of failures. */
static int probe(const struct sockaddr_storage *ss, socklen_t len, const char *what)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (const struct sockaddr *)ss, len);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd p = {fd, POLLOUT, 0};
        rc = poll(&p, 1, 3000);
        int err = 0;
        socklen_t el = sizeof(err);
        if (rc == 1)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        rc = rc == 1 && err == 0 ? 0 : -1;
        errno = rc == 0 ? 0 : (err ? err : ETIMEDOUT);
    }
    int e = errno;
    close(fd);
    if (rc < 0) {
        fprintf(stderr, "ringload: cannot reach the server at %s: %s\n", what, strerror(e));
        return -e;
    }
    return 0;
}

/* 1 while pid runs: a zombie (killed, not yet reaped) counts as gone. */
static int alive(int pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

#define SUM(r, field)                                                                              \
    ({                                                                                             \
        uint64_t s_ = 0;                                                                           \
        for (int i_ = 0; i_ < (r)->nthreads; i_++)                                                 \
            s_ += atomic_load_explicit(&(r)->threads[i_].c.field, memory_order_relaxed);           \
        s_;                                                                                        \
    })

static const char *phase_name[] = {"connect", "warmup", "measure", "drain", "done"};

static void progress(struct run *r, double t, uint64_t *last_pub, uint64_t *last_del)
{
    uint64_t pub = SUM(r, published), del = SUM(r, deliveries), p99 = 0;
    for (int i = 0; i < r->nthreads; i++) {
        uint64_t v = atomic_load(&r->threads[i].c.p99_ns);
        p99 = v > p99 ? v : p99;
    }
    fprintf(stderr,
            "[%6.1fs] %-7s conns %llu/%u subscribed %llu pub %llu/s deliv %llu/s p99 %.2fms "
            "lost %llu dup/reord %llu errors %llu\n",
            t, phase_name[atomic_load(&r->phase)], (unsigned long long)SUM(r, connected),
            r->sc.sse + r->sc.ws + r->sc.longpoll + r->sc.poll + r->sc.publishers,
            (unsigned long long)SUM(r, subscribed), (unsigned long long)(pub - *last_pub),
            (unsigned long long)(del - *last_del), (double)p99 / 1e6,
            (unsigned long long)SUM(r, lost), (unsigned long long)SUM(r, reordered),
            (unsigned long long)(SUM(r, connect_failed) + SUM(r, refused) + SUM(r, bad_status) +
                                 SUM(r, protocol_errors) + SUM(r, publish_failed) +
                                 SUM(r, closed_by_server)));
    *last_pub = pub;
    *last_del = del;
}

/* A percentile, never above the exact maximum (buckets report their top). */
static double pct(const struct hist *h, double q)
{
    uint64_t v = hist_value_at(h, q), m = hist_max(h);
    return (double)(v < m ? v : m);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    static struct run run;
    struct run *r = &run;
    char err[SCENARIO_ERR_MAX];
    int server_pid = 0;
    double connect_timeout = 60;
    scenario_init(&r->sc);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc) {
            char *text = NULL;
            size_t len = 0;
            int rc = read_file(argv[i + 1], &text, &len);
            if (rc < 0) {
                fprintf(stderr, "ringload: --scenario %s: %s\n", argv[i + 1], strerror(-rc));
                return 2;
            }
            rc = scenario_parse(&r->sc, text, len, err, sizeof(err));
            free(text);
            if (rc < 0) {
                fprintf(stderr, "ringload: %s: %s\n", argv[i + 1], err);
                return 2;
            }
        }
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage();
            return 0;
        }
        if (!v || strncmp(f, "--", 2) != 0) {
            fprintf(stderr, "ringload: %s: expected --key value (see --help)\n", f);
            return 2;
        }
        i++;
        if (strcmp(f, "--scenario") == 0)
            continue;
        if (strcmp(f, "--server-pid") == 0) {
            server_pid = atoi(v);
            if (server_pid <= 0 || kill(server_pid, 0) < 0) {
                fprintf(stderr, "ringload: --server-pid %s: expected a running process id\n", v);
                return 2;
            }
            continue;
        }
        if (strcmp(f, "--connect-timeout") == 0) {
            connect_timeout = atof(v);
            if (connect_timeout <= 0) {
                fprintf(stderr, "ringload: --connect-timeout %s: expected seconds > 0\n", v);
                return 2;
            }
            continue;
        }
        if (scenario_set(&r->sc, f, v, err, sizeof(err)) < 0) {
            fprintf(stderr, "ringload: %s\n", err);
            return 2;
        }
    }
    if (scenario_check(&r->sc, err, sizeof(err)) < 0) {
        fprintf(stderr, "ringload: %s\n", err);
        return 2;
    }
    struct scenario *sc = &r->sc;
    if (sc->sub_url.tls || sc->pub_url.tls || (sc->poll && sc->poll_url.tls) || sc->procs > 1) {
        fprintf(stderr, "ringload: this version does not speak TLS (https, wss) or run several "
                        "processes (procs > 1) yet\n");
        return 2;
    }
    if (resolve(&sc->sub_url, &r->sub_addr, &r->sub_addrlen) < 0 ||
        resolve(&sc->pub_url, &r->pub_addr, &r->pub_addrlen) < 0 ||
        (sc->poll && resolve(&sc->poll_url, &r->poll_addr, &r->poll_addrlen) < 0))
        return 2;
    if (probe(&r->sub_addr, r->sub_addrlen, sc->sub_url.text) < 0 ||
        probe(&r->pub_addr, r->pub_addrlen, sc->pub_url.text) < 0 ||
        (sc->poll && probe(&r->poll_addr, r->poll_addrlen, sc->poll_url.text) < 0))
        return 2;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    r->nthreads = sc->threads ? (int)sc->threads : (int)(ncpu > 0 ? ncpu : 1);
    r->threads = calloc((size_t)r->nthreads, sizeof(*r->threads));
    r->chan_sent = calloc(sc->channels, sizeof(*r->chan_sent));
    r->chan_acked = calloc(sc->channels, sizeof(*r->chan_acked));
    if (!r->threads || !r->chan_sent || !r->chan_acked) {
        fprintf(stderr, "ringload: out of memory for %u channels\n", sc->channels);
        return 2;
    }
    long own_before = rss_kb(getpid()), srv_before = server_pid ? rss_kb(server_pid) : -1;
    double cpu_before = cpu_seconds();
    uint64_t start = now_ns();
    atomic_store(&r->phase, PH_CONNECT);
    for (int i = 0; i < r->nthreads; i++) {
        r->threads[i].run = r;
        r->threads[i].id = i;
        int rc = engine_start(r, &r->threads[i]);
        if (rc < 0) {
            fprintf(stderr,
                    "ringload: thread %d: %s (io_uring with multishot recv, kernel 6.0+, and a "
                    "direct descriptor table of ulimit -n per thread: use more --threads for "
                    "more clients)\n",
                    i, strerror(-rc));
            return 2;
        }
    }
    uint64_t nsubs = (uint64_t)sc->sse + sc->ws + sc->longpoll + sc->poll;
    /* Publishers that own no channel, or have nothing to publish, never connect. */
    uint32_t npubs = sc->publish_rate > 0 ? (sc->publishers < sc->channels ? sc->publishers
                                                                            : sc->channels)
                                          : 0;
    uint64_t want = nsubs + npubs, last_pub = 0, last_del = 0;
    uint64_t drain_seen = 0, drain_quiet_since = 0;
    uint64_t next_print = start + 1000000000ull, connected_at = 0;
    long srv_after_ramp = -1, own_after_ramp = -1;
    int server_died = 0;
    for (;;) {
        usleep(20000);
        uint64_t now = now_ns();
        int phase = atomic_load(&r->phase);
        if (server_pid && !alive(server_pid)) {
            server_died = 1;
            fprintf(stderr, "ringload: the server (pid %d) is gone\n", server_pid);
            atomic_store(&r->phase, PH_DONE);
            break;
        }
        if (phase == PH_CONNECT) {
            uint64_t done = SUM(r, subscribed) + SUM(r, connected) - SUM(r, subscribed);
            uint64_t failed = SUM(r, refused) + SUM(r, connect_failed) + SUM(r, bad_status);
            int all = SUM(r, subscribed) >= nsubs && SUM(r, connected) >= want;
            if (all || done + failed >= want || (now - start) / 1e9 > connect_timeout) {
                if (SUM(r, connected) == 0) {
                    fprintf(stderr,
                            "ringload: no connection succeeded (%llu refused, %llu "
                            "failed)\n",
                            (unsigned long long)SUM(r, refused),
                            (unsigned long long)SUM(r, connect_failed));
                    atomic_store(&r->phase, PH_DONE);
                    break;
                }
                connected_at = now;
                usleep(300000); /* let the last subscriptions settle before measuring RSS */
                srv_after_ramp = server_pid ? rss_kb(server_pid) : -1;
                own_after_ramp = rss_kb(getpid());
                r->t0_ns = now_ns();
                r->measure_ns = r->t0_ns + sc->warmup_ns;
                r->stop_ns = r->measure_ns + sc->duration_ns;
                atomic_store(&r->phase, PH_WARMUP);
            }
        } else if (SUM(r, closed_by_server) >= SUM(r, connected) && SUM(r, connected)) {
            fprintf(stderr, "ringload: the server closed every connection\n");
            server_died = 1;
            atomic_store(&r->phase, PH_DONE);
            break;
        } else if (phase == PH_WARMUP && now >= r->measure_ns) {
            atomic_store(&r->phase, PH_MEASURE);
        } else if (phase == PH_MEASURE && now >= r->stop_ns) {
            atomic_store(&r->phase, PH_DRAIN);
        } else if (phase == PH_DRAIN) {
            /* Done when every publish is answered and deliveries have stopped
             * coming for half a second (a late fan-out is late, not lost), or
             * after 5 s in any case. */
            uint64_t answered = SUM(r, acked) + SUM(r, publish_failed);
            uint64_t delivered = SUM(r, deliveries);
            if (delivered != drain_seen) {
                drain_seen = delivered;
                drain_quiet_since = now;
            }
            if ((answered >= SUM(r, published) && now >= r->stop_ns + 500000000ull &&
                 now >= drain_quiet_since + 500000000ull) ||
                now >= r->stop_ns + 5000000000ull) {
                atomic_store(&r->phase, PH_DONE);
                break;
            }
        }
        if (now >= next_print) {
            next_print += 1000000000ull;
            progress(r, (double)(now - start) / 1e9, &last_pub, &last_del);
        }
    }
    double wall = (double)(now_ns() - start) / 1e9;
    for (int i = 0; i < r->nthreads; i++)
        engine_join(&r->threads[i]);
    struct hist *lat = hist_new();
    for (int i = 0; i < r->nthreads; i++) {
        engine_final_check(&r->threads[i]);
        hist_merge(lat, r->threads[i].lat);
    }
    double own_cpu = cpu_seconds() - cpu_before;
    uint64_t lost = SUM(r, lost), reord = SUM(r, reordered), mism = SUM(r, id_mismatch);
    uint64_t subscribed = SUM(r, subscribed);
    double measure_s = (double)sc->duration_ns / 1e9;
    double q[] = {0.5, 0.9, 0.99, 0.999, 0.9999};
    const char *qn[] = {"p50", "p90", "p99", "p99_9", "p99_99"};
    /* Publishes never answered: the server closed a publisher, or was too slow to answer
     * before the drain ended. */
    uint64_t unanswered = SUM(r, published) - SUM(r, acked) - SUM(r, publish_failed);
    printf("ringload: %llu subscribers, %llu published (%llu acknowledged, %llu unanswered), "
           "%llu deliveries (%llu measured)\n",
           (unsigned long long)subscribed, (unsigned long long)SUM(r, published),
           (unsigned long long)SUM(r, acked), (unsigned long long)unanswered,
           (unsigned long long)SUM(r, deliveries), (unsigned long long)hist_count(lat));
    printf("ringload: lost %llu, duplicated or reordered %llu, id mismatches %llu, gaps "
           "signalled %llu\n",
           (unsigned long long)lost, (unsigned long long)reord, (unsigned long long)mism,
           (unsigned long long)SUM(r, server_gaps));
    if (sc->reconnect || sc->ws_deflate)
        printf("ringload: %llu reconnects (%llu failed tries), %llu churn drops, %llu messages "
               "missed while away without resume, %llu skipped over signalled gaps, %llu "
               "compressed WebSocket frames\n",
               (unsigned long long)SUM(r, reconnects), (unsigned long long)SUM(r, reconnect_failed),
               (unsigned long long)SUM(r, churn_drops), (unsigned long long)SUM(r, missed_offline),
               (unsigned long long)SUM(r, gap_skipped), (unsigned long long)SUM(r, ws_inflated));
    static const char *kname[LK_N] = {"sse", "ws", "longpoll", "poll"};
    const uint32_t kwant[LK_N] = {sc->sse, sc->ws, sc->longpoll, sc->poll};
    for (int k = 0; k < LK_N; k++)
        if (kwant[k])
            printf("ringload: %-8s %u clients: %llu subscribed, %llu connect failures, %llu "
                   "deliveries, lost %llu, duplicated or reordered %llu\n",
                   kname[k], kwant[k], (unsigned long long)SUM(r, kind[k].subscribed),
                   (unsigned long long)SUM(r, kind[k].connect_failed),
                   (unsigned long long)SUM(r, kind[k].deliveries),
                   (unsigned long long)SUM(r, kind[k].lost),
                   (unsigned long long)SUM(r, kind[k].dup));
    if (sc->poll)
        printf("ringload: %.1f short polls/s\n", SUM(r, polls) / wall);
    if (sc->ws)
        printf("ringload: %llu WebSocket pongs sent, %llu close handshakes completed\n",
               (unsigned long long)SUM(r, pongs), (unsigned long long)SUM(r, ws_closes));
    printf("ringload: latency ms (SSE, WebSocket, long poll):");
    for (size_t i = 0; i < ARRAY_SIZE(q); i++)
        printf(" %s %.3f", qn[i], hist_count(lat) ? pct(lat, q[i]) / 1e6 : 0.0);
    printf(" max %.3f\n", hist_count(lat) ? hist_max(lat) / 1e6 : 0.0);
    long own_per_client = -1, srv_per_conn = -1;
    if (own_after_ramp > 0 && want)
        own_per_client = (own_after_ramp - own_before) * 1024 / (long)want;
    if (srv_after_ramp > 0 && srv_before > 0 && SUM(r, connected))
        srv_per_conn = (srv_after_ramp - srv_before) * 1024 / (long)SUM(r, connected);
    printf("ringload: memory: server %ld B/connection, ringload %ld B/client; ringload CPU "
           "%.1f s over %.1f s on %d threads%s\n",
           srv_per_conn, own_per_client, own_cpu, wall, r->nthreads,
           own_cpu > 0.9 * wall * r->nthreads
               ? " (SATURATED: these figures are ringload's, not the server's)"
               : "");
    if (sc->json[0]) {
        FILE *f = fopen(sc->json, "w");
        if (!f) {
            fprintf(stderr, "ringload: json = %s: %s\n", sc->json, strerror(errno));
            return 2;
        }
        struct utsname un;
        uname(&un);
        char *text = malloc(65536), *hist = malloc(1 << 20);
        scenario_format(sc, text, 65536);
        size_t hl = hist_encode(lat, hist, 1 << 20);
        fprintf(f,
                "{\n \"tool\": \"ringload\",\n \"environment\": {\"kernel\": \"%s\", "
                "\"cpus\": %ld, \"threads\": %d},\n",
                un.release, ncpu, r->nthreads);
        fprintf(f, " \"scenario\": \"");
        for (char *p = text; *p; p++)
            fprintf(f, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : *p == '\\' ? "\\\\" : "%c", *p);
        fprintf(f,
                "\",\n \"subscribers\": %llu,\n \"published\": %llu,\n \"acknowledged\": "
                "%llu,\n \"unanswered\": %llu,\n \"deliveries\": %llu,\n",
                (unsigned long long)subscribed, (unsigned long long)SUM(r, published),
                (unsigned long long)SUM(r, acked), (unsigned long long)unanswered,
                (unsigned long long)SUM(r, deliveries));
        fprintf(f,
                " \"deliveries_per_s\": %.1f,\n \"lost\": %llu,\n \"duplicated_or_reordered\": "
                "%llu,\n \"id_mismatches\": %llu,\n \"gaps_signalled\": %llu,\n",
                hist_count(lat) / measure_s, (unsigned long long)lost, (unsigned long long)reord,
                (unsigned long long)mism, (unsigned long long)SUM(r, server_gaps));
        fprintf(f,
                " \"errors\": {\"connect_failed\": %llu, \"refused\": %llu, \"bad_status\": "
                "%llu, \"protocol\": %llu, \"publish_failed\": %llu, \"closed_by_server\": "
                "%llu},\n",
                (unsigned long long)SUM(r, connect_failed), (unsigned long long)SUM(r, refused),
                (unsigned long long)SUM(r, bad_status), (unsigned long long)SUM(r, protocol_errors),
                (unsigned long long)SUM(r, publish_failed),
                (unsigned long long)SUM(r, closed_by_server));
        fprintf(f, " \"kinds\": {");
        for (int k = 0; k < LK_N; k++)
            fprintf(f,
                    "%s\"%s\": {\"clients\": %u, \"connect_failed\": %llu, \"subscribed\": %llu, "
                    "\"deliveries\": %llu, \"lost\": %llu, \"duplicated_or_reordered\": %llu}",
                    k ? ", " : "", kname[k], kwant[k],
                    (unsigned long long)SUM(r, kind[k].connect_failed),
                    (unsigned long long)SUM(r, kind[k].subscribed),
                    (unsigned long long)SUM(r, kind[k].deliveries),
                    (unsigned long long)SUM(r, kind[k].lost),
                    (unsigned long long)SUM(r, kind[k].dup));
        fprintf(f,
                "},\n \"polls\": %llu,\n \"polls_per_s\": %.1f,\n \"ws_pongs\": %llu,\n "
                "\"ws_closes\": %llu,\n",
                (unsigned long long)SUM(r, polls), SUM(r, polls) / wall,
                (unsigned long long)SUM(r, pongs), (unsigned long long)SUM(r, ws_closes));
        fprintf(f, " \"latency_ms\": {");
        for (size_t i = 0; i < ARRAY_SIZE(q); i++)
            fprintf(f, "\"%s\": %.3f, ", qn[i], hist_count(lat) ? pct(lat, q[i]) / 1e6 : 0.0);
        fprintf(f, "\"max\": %.3f, \"count\": %lld},\n",
                hist_count(lat) ? hist_max(lat) / 1e6 : 0.0, (long long)hist_count(lat));
        fprintf(f,
                " \"server_bytes_per_connection\": %ld,\n \"ringload_bytes_per_client\": "
                "%ld,\n \"ringload_cpu_s\": %.2f,\n \"wall_s\": %.2f,\n \"server_died\": "
                "%s,\n \"histogram\": \"%.*s\"\n}\n",
                srv_per_conn, own_per_client, own_cpu, wall, server_died ? "true" : "false",
                (int)hl, hist);
        fclose(f);
        free(text);
        free(hist);
    }
    (void)connected_at;
    hist_free(lat);
    if (server_died)
        return 3;
    if (unanswered)
        fprintf(stderr, "ringload: %llu publishes were never answered: the server fell behind the "
                        "publishing schedule (lower --publish-rate, or fewer subscribers)\n",
                (unsigned long long)unanswered);
    return lost || reord || mism || SUM(r, publish_failed) || unanswered ? 1 : 0;
}
