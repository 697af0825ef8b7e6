/*
 * main.c: ringload's command line, phases, progress line and processes.
 * Reads the scenario (file, then flags), checks the server answers, starts
 * one engine thread per core (engine.c), steps them through connect,
 * warm-up, measurement and drain, and samples memory and CPU (its own, the
 * server's, the machine's) at the phase changes; result.c turns that into
 * the summary, the JSON and the comparison with a baseline. With procs = N
 * it forks N children, each running slice i/N, and merges their results.
 * Subcommands "compare" and "merge" work on result files alone. Exit
 * statuses: see usage() and result.h.
 */
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "result.h"
#include "util.h"

static void usage(void)
{
    printf("usage: ringload [--scenario FILE] [--KEY VALUE]... [--server-pid PID]\n"
           "               [--connect-timeout S]\n"
           "       ringload compare BASELINE.json RESULT.json [--max-regress PCT]\n"
           "               [--max-regress-latency PCT] [--max-regress-memory PCT]\n"
           "               [--max-regress-cpu PCT] [--max-regress-rate PCT]\n"
           "       ringload merge A.json B.json... [--json OUT] [--hdr-log FILE]\n\n"
           "Exit status: 0 all delivered (and no regression), 1 lost, duplicated, reordered\n"
           "or unanswered, 2 bad input or unreachable server, 3 the server died, 4 compare\n"
           "found a regression, 5 a child process (procs) timed out, 130 interrupted.\n\n"
           "Keys (file: key = value; flags: --key-name value):\n");
    for (size_t i = 0;; i++) {
        const struct scenario_key_doc *k = scenario_key(i);
        if (!k)
            break;
        printf("  %-19s %-10s %-32s %s\n", k->name, k->type, k->def, k->help);
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

/* Cumulative utime and stime of pid, in ticks. 0 or -errno. */
static int pid_ticks(int pid, uint64_t *user, uint64_t *sys)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    return result_parse_pid_stat(buf, n, user, sys);
}

/* The machine's busy and total ticks, all CPUs together. 0 or -errno. */
static int machine_ticks(uint64_t *busy, uint64_t *total)
{
    char buf[512];
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    char *nl = memchr(buf, '\n', n);
    return result_parse_proc_stat(buf, nl ? (size_t)(nl - buf) : n, busy, total);
}

#define SUM(r, field) RUN_SUM(r, field)

static const char *phase_name[] = {"connect", "warmup", "measure", "drain", "done"};

static void progress(struct run *r, const char *tag, double t, uint64_t want, uint64_t *last_pub,
                     uint64_t *last_del)
{
    uint64_t pub = SUM(r, published), del = SUM(r, deliveries), p99 = 0;
    for (int i = 0; i < r->nthreads; i++) {
        uint64_t v = atomic_load(&r->threads[i].c.p99_ns);
        p99 = v > p99 ? v : p99;
    }
    fprintf(stderr,
            "%s[%6.1fs] %-7s conns %llu/%llu subscribed %llu pub %llu/s deliv %llu/s p99 %.2fms "
            "lost %llu dup/reord %llu errors %llu\n",
            tag, t, phase_name[atomic_load(&r->phase)],
            (unsigned long long)(SUM(r, connected) - SUM(r, ended)), (unsigned long long)want,
            (unsigned long long)SUM(r, subscribed), (unsigned long long)(pub - *last_pub),
            (unsigned long long)(del - *last_del), (double)p99 / 1e6,
            (unsigned long long)SUM(r, lost), (unsigned long long)SUM(r, reordered),
            (unsigned long long)(SUM(r, connect_failed) + SUM(r, refused) + SUM(r, bad_status) +
                                 SUM(r, protocol_errors) + SUM(r, publish_failed) +
                                 SUM(r, closed_by_server)));
    *last_pub = pub;
    *last_del = del;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double epoch_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What the command line says besides the scenario. */
struct opts {
    int server_pid;
    double connect_timeout;
    const char *tag; /* progress line prefix ("" or "shard 1/4 ") */
};

/* The start and end of the measured window, sampled by the phase loop. */
struct window_mark {
    uint64_t ns, deliveries, published;
    double own_cpu;
    struct result_ticks *server, *machine;
};

static void mark(struct run *r, const struct opts *o, struct window_mark *m, int end)
{
    uint64_t a, b;
    m->ns = now_ns();
    m->deliveries = SUM(r, deliveries);
    m->published = SUM(r, published);
    m->own_cpu = cpu_seconds();
    for (int i = 0; i < r->nthreads; i++) {
        clockid_t id;
        struct timespec ts;
        r->threads[i].cpu_mark[end] = -1;
        if (pthread_getcpuclockid(r->threads[i].thread, &id) == 0 && clock_gettime(id, &ts) == 0)
            r->threads[i].cpu_mark[end] = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    if (o->server_pid && pid_ticks(o->server_pid, &a, &b) == 0) {
        *(end ? &m->server->user1 : &m->server->user0) = a;
        *(end ? &m->server->sys1 : &m->server->sys0) = b;
        m->server->valid = end ? m->server->valid : 1;
    } else {
        m->server->valid = 0;
    }
    if (machine_ticks(&a, &b) == 0) {
        *(end ? &m->machine->user1 : &m->machine->user0) = a;
        *(end ? &m->machine->sys1 : &m->machine->sys0) = b;
        m->machine->valid = end ? m->machine->valid : 1;
    } else {
        m->machine->valid = 0;
    }
}

/* hdr_log: the interval lines, one per second of the measured window and of
 * the drain after it (so that each measured latency is in exactly one),
 * written as the engine threads hand their seconds over (engine.h). */
struct hdr_seconds {
    char *text;
    size_t len, cap;
    uint64_t next;    /* the next second to write */
    struct hist *sum; /* that second, all threads together */
    int failed;       /* out of memory: finish() falls back to one interval */
};

static void seconds_line(struct hdr_seconds *hs, double start_s, double length_s)
{
    size_t n = hist_log_interval(hs->sum, NULL, start_s, length_s, NULL, 0);
    if (hs->len + n + 1 > hs->cap) {
        size_t cap = hs->cap ? hs->cap : 4096;
        while (cap < hs->len + n + 1)
            cap *= 2;
        char *t = realloc(hs->text, cap);
        if (!t) {
            hs->failed = 1;
            return;
        }
        hs->text = t;
        hs->cap = cap;
    }
    hist_log_interval(hs->sum, NULL, start_s, length_s, hs->text + hs->len, n + 1);
    hs->len += n;
}

/* Writes each second every thread has handed over: merges and resets its
 * half, then tells the thread (sec_taken) that the half is free again. With
 * final (after join) the seconds in progress too, the last one as long as it
 * lasted until end_ns. */
static void seconds_collect(struct run *r, struct hdr_seconds *hs, int final, uint64_t end_ns)
{
    if (!hs || !hs->sum || hs->failed || !r->measure_ns)
        return;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < r->nthreads; i++) {
        uint64_t d = atomic_load_explicit(&r->threads[i].sec_done, memory_order_acquire);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    while (hs->next < lo || (final && hs->next <= hi)) {
        uint64_t k = hs->next++;
        hist_reset(hs->sum);
        for (int i = 0; i < r->nthreads; i++) {
            struct engine_thread *t = &r->threads[i];
            hist_merge(hs->sum, t->sec[k & 1]);
            hist_reset(t->sec[k & 1]);
            atomic_store_explicit(&t->sec_taken, k + 1, memory_order_release);
        }
        double len = 1.0;
        if (final && k == hi) {
            len = (double)(end_ns - r->measure_ns) / 1e9 - (double)k;
            len = len > 0.001 ? len : 0.001;
        }
        seconds_line(hs, (double)k, len);
    }
}

/* Starts the threads and steps the phases until the run is over. Fills smp
 * with what it sampled; *no_conn when no connection succeeded. */
/* clock = realtime: the offset from CLOCK_MONOTONIC to CLOCK_REALTIME that
 * send times carry. start_at: the schedule is fixed now, on this process'
 * monotonic clock (and checked not to be over already). -1 with a message
 * if start_at is past. */
static int start_clock(struct run *r)
{
    const struct scenario *sc = &r->sc;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    uint64_t mono = now_ns(), real = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
    if (sc->clock == SCENARIO_CLOCK_REALTIME)
        r->clock_off = real - mono;
    if (sc->start_at < 0)
        return 0;
    double ahead = sc->start_at - (double)real / 1e9;
    if (ahead < 0) {
        fprintf(stderr,
                "ringload: start_at %.3f was %.1f s ago: give a time far enough ahead for every "
                "process to start and connect (e.g. --start-at $(( $(date +%%s) + 20 )))\n",
                sc->start_at, -ahead);
        return -1;
    }
    r->t0_ns = mono + (uint64_t)(ahead * 1e9);
    r->measure_ns = r->t0_ns + sc->warmup_ns;
    r->stop_ns = r->measure_ns + sc->duration_ns;
    return 0;
}

static void phases(struct run *r, const struct opts *o, struct result_samples *smp,
                   double *measure_epoch, int *no_conn, struct hdr_seconds *hs)
{
    const struct scenario *sc = &r->sc;
    uint64_t nsubs = (uint64_t)sc->sse + sc->ws + sc->longpoll + sc->poll;
    /* Publishers that own no channel, or have nothing to publish, never connect. */
    uint32_t npubs =
        sc->publish_rate > 0 ? (sc->publishers < sc->channels ? sc->publishers : sc->channels) : 0;
    if (sc->role == SCENARIO_ROLE_PUBLISH)
        nsubs = 0;
    if (sc->role == SCENARIO_ROLE_SUBSCRIBE)
        npubs = 0;
    int waiting = 0; /* connected, waiting for start_at */
    uint64_t want = nsubs + npubs, last_pub = 0, last_del = 0;
    uint64_t drain_seen = 0, drain_quiet_since = 0;
    uint64_t start = now_ns(), next_print = start + 1000000000ull;
    struct window_mark w0 = {.server = &smp->server, .machine = &smp->machine}, w1 = w0;
    int marked = 0;
    for (;;) {
        usleep(20000);
        uint64_t now = now_ns();
        int phase = atomic_load(&r->phase);
        if (o->server_pid && !alive(o->server_pid)) {
            smp->server_died = 1;
            fprintf(stderr, "ringload: %sthe server (pid %d) is gone\n", o->tag, o->server_pid);
            atomic_store(&r->phase, PH_DONE);
            break;
        }
        if (phase == PH_CONNECT && waiting) {
            if (now >= r->t0_ns)
                atomic_store(&r->phase, PH_WARMUP);
        } else if (phase == PH_CONNECT) {
            uint64_t done = SUM(r, connected);
            uint64_t failed = SUM(r, refused) + SUM(r, connect_failed) + SUM(r, bad_status);
            int all = SUM(r, subscribed) >= nsubs && SUM(r, connected) >= want;
            if (all || done + failed >= want || (now - start) / 1e9 > o->connect_timeout) {
                if (SUM(r, connected) == 0) {
                    fprintf(stderr,
                            "ringload: %sno connection succeeded (%llu refused, %llu "
                            "failed)\n",
                            o->tag, (unsigned long long)SUM(r, refused),
                            (unsigned long long)SUM(r, connect_failed));
                    *no_conn = 1;
                    atomic_store(&r->phase, PH_DONE);
                    break;
                }
                usleep(300000); /* let the last subscriptions settle before measuring RSS */
                smp->server_rss_after_ramp_kb = o->server_pid ? rss_kb(o->server_pid) : -1;
                /* What the clients hold, not what the ramp once needed: a TLS
                 * handshake's ~55 KB of wolfSSL state is freed when it is done,
                 * but glibc keeps freed heap mapped until asked. */
                malloc_trim(0);
                smp->own_rss_after_ramp_kb = rss_kb(getpid());
                if (sc->start_at < 0) {
                    r->t0_ns = now_ns();
                    r->measure_ns = r->t0_ns + sc->warmup_ns;
                    r->stop_ns = r->measure_ns + sc->duration_ns;
                    atomic_store(&r->phase, PH_WARMUP);
                } else if (now_ns() > r->t0_ns) {
                    /* Publishing began without some of this process' clients:
                     * a split run's check would be wrong from the start. */
                    fprintf(stderr,
                            "ringload: %sstart_at passed %.1f s before connecting ended (%llu of "
                            "%llu connected): give it more time\n",
                            o->tag, (double)(now_ns() - r->t0_ns) / 1e9,
                            (unsigned long long)SUM(r, connected), (unsigned long long)want);
                    *no_conn = 1;
                    atomic_store(&r->phase, PH_DONE);
                    break;
                } else {
                    waiting = 1;
                }
            }
        } else if (SUM(r, closed_by_server) >= SUM(r, connected) && SUM(r, connected)) {
            fprintf(stderr, "ringload: %sthe server closed every connection\n", o->tag);
            smp->server_died = 1;
            atomic_store(&r->phase, PH_DONE);
            break;
        } else if (phase == PH_WARMUP && now >= r->measure_ns) {
            atomic_store(&r->phase, PH_MEASURE);
            mark(r, o, &w0, 0);
            /* When measure_ns was, on the wall clock (the hdr_log's seconds count from it). */
            *measure_epoch = epoch_s() - (double)(now_ns() - r->measure_ns) / 1e9;
            marked = 1;
        } else if (phase == PH_MEASURE && now >= r->stop_ns) {
            atomic_store(&r->phase, PH_DRAIN);
            mark(r, o, &w1, 1);
            marked = 2;
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
                /* Cut off while messages were still arriving: what has not
                 * come is late, not known lost (see engine_final_check). */
                r->drain_cut = now < drain_quiet_since + 500000000ull;
                atomic_store(&r->phase, PH_DONE);
                break;
            }
        }
        if (phase >= PH_MEASURE)
            seconds_collect(r, hs, 0, 0);
        if (now >= next_print) {
            next_print += 1000000000ull;
            progress(r, o->tag, (double)(now - start) / 1e9, want, &last_pub, &last_del);
        }
    }
    smp->wall_s = (double)(now_ns() - start) / 1e9;
    if (marked == 2) {
        smp->window_s = (double)(w1.ns - w0.ns) / 1e9;
        smp->window_deliveries = w1.deliveries - w0.deliveries;
        smp->window_published = w1.published - w0.published;
        smp->own_cpu_window_s = w1.own_cpu - w0.own_cpu;
        /* The busiest engine thread: one at ~100 % of a core is the limit,
         * whatever the process' total says. */
        smp->thread_busy_max_pct = -1;
        for (int i = 0; i < r->nthreads && smp->window_s > 0; i++) {
            const double *cm = r->threads[i].cpu_mark;
            double pct = 100 * (cm[1] - cm[0]) / smp->window_s;
            if (cm[0] >= 0 && cm[1] >= 0 && pct > smp->thread_busy_max_pct)
                smp->thread_busy_max_pct = pct;
        }
    } else {
        smp->server.valid = smp->machine.valid = 0; /* the window never closed */
    }
}

/* After the threads joined: says why TLS handshakes failed, if any did. */
static void tls_report(const struct run *r, const struct opts *o)
{
    uint64_t n[ENGINE_TLS_REASONS] = {0}, all = 0;
    const char *first = NULL;
    for (int i = 0; i < r->nthreads; i++) {
        for (int k = 0; k < ENGINE_TLS_REASONS; k++)
            n[k] += atomic_load(&r->threads[i].c.tls_errors[k]);
        if (!first && r->threads[i].tls_failed)
            first = r->threads[i].tls_first_error;
    }
    for (int k = 0; k < ENGINE_TLS_REASONS; k++)
        all += n[k];
    if (!all)
        return;
    fprintf(stderr, "ringload: %s%llu TLS handshakes failed (", o->tag, (unsigned long long)all);
    const char *sep = "";
    for (int k = 0; k < ENGINE_TLS_REASONS; k++)
        if (n[k]) {
            fprintf(stderr, "%s%s %llu", sep, engine_tls_reason_name(k), (unsigned long long)n[k]);
            sep = ", ";
        }
    fprintf(stderr, "); the first: %s\n", first ? first : "?");
    if (n[TLS_ERR_CERT])
        fprintf(stderr,
                "ringload: %sthe server's certificate was refused: give the CA that signed it "
                "with --tls-ca FILE (now: %s), or --tls-insecure on for a self-signed test "
                "server\n",
                o->tag, r->sc.tls_ca[0] ? r->sc.tls_ca : "the system's CAs");
}

/* One process's run of scenario full (its slice full->shard_index of
 * full->shard_count). Fills res; returns 0 or RESULT_INPUT after saying why. */
static int run_one(const struct scenario *full, const struct opts *o, struct result *res,
                   double *measure_epoch, struct hdr_seconds *hs)
{
    static struct run run;
    struct run *r = &run;
    char err[SCENARIO_ERR_MAX];
    if (scenario_slice(full, &r->sc, err, sizeof(err)) < 0) {
        fprintf(stderr, "ringload: %s\n", err);
        return RESULT_INPUT;
    }
    struct scenario *sc = &r->sc;
    if (resolve(&sc->sub_url, &r->sub_addr, &r->sub_addrlen) < 0 ||
        resolve(&sc->pub_url, &r->pub_addr, &r->pub_addrlen) < 0 ||
        (sc->poll && resolve(&sc->poll_url, &r->poll_addr, &r->poll_addrlen) < 0))
        return RESULT_INPUT;
    if (probe(&r->sub_addr, r->sub_addrlen, sc->sub_url.text) < 0 ||
        probe(&r->pub_addr, r->pub_addrlen, sc->pub_url.text) < 0 ||
        (sc->poll && probe(&r->poll_addr, r->poll_addrlen, sc->poll_url.text) < 0))
        return RESULT_INPUT;
    if (sc->sub_url.tls || sc->pub_url.tls || sc->poll_url.tls) {
        r->tls =
            tls_client_new(sc->tls_ca[0] ? sc->tls_ca : NULL, sc->tls_insecure, err, sizeof(err));
        if (!r->tls) {
            fprintf(stderr, "ringload: --tls-ca %s: %s\n", sc->tls_ca[0] ? sc->tls_ca : "(system)",
                    err);
            return RESULT_INPUT;
        }
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    r->nthreads = sc->threads ? (int)sc->threads : (int)(ncpu > 0 ? ncpu : 1);
    r->threads = calloc((size_t)r->nthreads, sizeof(*r->threads));
    r->chan_sent = calloc(sc->channels, sizeof(*r->chan_sent));
    r->chan_acked = calloc(sc->channels, sizeof(*r->chan_acked));
    if (!r->threads || !r->chan_sent || !r->chan_acked || engine_prepare(r) < 0) {
        fprintf(stderr, "ringload: out of memory for %u channels\n", sc->channels);
        return RESULT_INPUT;
    }
    if (start_clock(r) < 0)
        return RESULT_INPUT;
    struct result_samples smp = {
        .server_pid = o->server_pid,
        .cpus = ncpu,
        .server_rss_before_kb = o->server_pid ? rss_kb(o->server_pid) : -1,
        .own_rss_before_kb = rss_kb(getpid()),
        .server_rss_after_ramp_kb = -1,
        .own_rss_after_ramp_kb = -1,
    };
    double cpu_before = cpu_seconds();
    atomic_store(&r->phase, PH_CONNECT);
    for (int i = 0; i < r->nthreads; i++) {
        r->threads[i].run = r;
        r->threads[i].id = i;
        int rc = engine_start(r, &r->threads[i]);
        if (rc < 0) {
            fprintf(stderr,
                    "ringload: thread %d: %s (io_uring with multishot recv, kernel 6.0+, and a "
                    "direct descriptor table of ulimit -n per thread: use more --threads or "
                    "--procs for more clients)\n",
                    i, strerror(-rc));
            return RESULT_INPUT;
        }
    }
    int no_conn = 0;
    phases(r, o, &smp, measure_epoch, &no_conn, hs);
    for (int i = 0; i < r->nthreads; i++)
        engine_join(&r->threads[i]);
    seconds_collect(r, hs, 1, now_ns());
    tls_report(r, o);
    for (int i = 0; i < r->nthreads; i++)
        engine_final_check(&r->threads[i]);
    tls_client_free(r->tls); /* after every connection made from it */
    r->tls = NULL;
    tls_thread_done();
    smp.own_cpu_s = cpu_seconds() - cpu_before;
    int rc = result_from_run(res, r, full, &smp);
    if (rc == 0 && no_conn) {
        res->exit_status = result_worse_status(res->exit_status, RESULT_INPUT);
        snprintf(res->reasons, sizeof(res->reasons), "no connection succeeded");
    }
    for (int i = 0; i < r->nthreads; i++) {
        hist_free(r->threads[i].lat);
        hist_free(r->threads[i].sec[0]);
        hist_free(r->threads[i].sec[1]);
        for (int k = 0; k < ENGINE_TLS_KINDS; k++) {
            hist_free(r->threads[i].tls_lat[k]);
            hist_free(r->threads[i].connect_lat[k]);
            hist_free(r->threads[i].ready_lat[k]);
        }
    }
    free(r->threads);
    free((void *)r->chan_sent);
    free((void *)r->chan_acked);
    free(r->chan_cum);
    return rc < 0 ? RESULT_INPUT : 0;
}

/* ---- several processes ------------------------------------------------------------ */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/* Ends the children still running: SIGTERM, then SIGKILL after 2 s. */
static void end_children(pid_t *pids, int *status, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (int round = 0; round < 200; round++) {
        int left = 0;
        for (int i = 0; i < n; i++)
            if (pids[i] > 0) {
                if (waitpid(pids[i], &status[i], WNOHANG) == pids[i])
                    pids[i] = 0;
                else
                    left++;
            }
        if (!left)
            return;
        if (round == 199)
            break;
        usleep(10000);
    }
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], &status[i], 0);
            pids[i] = 0;
        }
}

/*
 * procs = N: child i runs slice i/N (threads and descriptor tables of its
 * own, so N processes hold N times what one may) and writes its JSON into a
 * temporary directory; the parent waits for them within the time the run
 * can take, ends them (by pid) on a timeout or a signal, and merges what
 * they wrote into res. Returns the worst of the children's statuses.
 */
static int run_procs(const struct scenario *full, const struct opts *o, struct result *res,
                     double *measure_epoch)
{
    uint32_t n = full->procs;
    char dir[] = "/tmp/ringload.XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "ringload: procs = %u: cannot make a temporary directory: %s\n", n,
                strerror(errno));
        return RESULT_INPUT;
    }
    pid_t *pids = calloc(n, sizeof(*pids));
    int *status = calloc(n, sizeof(*status));
    if (!pids || !status) {
        free(pids);
        free(status);
        return RESULT_INPUT;
    }
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    fflush(NULL);
    for (uint32_t i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "ringload: procs = %u: fork: %s\n", n, strerror(errno));
            end_children(pids, status, (int)i);
            free(pids);
            free(status);
            rmdir(dir);
            return RESULT_INPUT;
        }
        if (pid == 0) {
            sigaction(SIGINT, &old_int, NULL);
            sigaction(SIGTERM, &old_term, NULL);
            struct scenario me = *full;
            char tag[48];
            me.procs = 1;
            me.shard_index = i;
            me.shard_count = n;
            me.compare[0] = me.hdr_log[0] = 0;
            snprintf(me.json, sizeof(me.json), "%s/shard-%u.json", dir, i);
            snprintf(tag, sizeof(tag), "shard %u/%u ", i, n);
            struct opts co = *o;
            co.tag = tag;
            struct result one;
            double epoch = 0;
            if (result_init(&one) < 0)
                _exit(RESULT_INPUT);
            int rc = run_one(&me, &co, &one, &epoch, NULL);
            if (rc == 0) {
                one.measure_epoch_s = epoch;
                rc = result_write(&one, me.json) < 0 ? RESULT_INPUT : one.exit_status;
            }
            _exit(rc);
        }
        pids[i] = pid;
    }
    /* Connecting, warm-up, measurement, the longest drain, and some slack. */
    double limit =
        o->connect_timeout + 0.5 + (double)(full->warmup_ns + full->duration_ns) / 1e9 + 5 + 30;
    if (full->start_at > epoch_s()) /* connected early, the children wait for it */
        limit += full->start_at - epoch_s();
    uint64_t deadline = now_ns() + (uint64_t)(limit * 1e9);
    int running = (int)n, worst = RESULT_OK;
    while (running && !interrupted && now_ns() < deadline) {
        usleep(20000);
        for (uint32_t i = 0; i < n; i++)
            if (pids[i] > 0 && waitpid(pids[i], &status[i], WNOHANG) == pids[i]) {
                pids[i] = 0;
                running--;
            }
    }
    if (running) {
        fprintf(stderr, "ringload: %s: ending %d child process%s\n",
                interrupted ? "interrupted" : "the children overran their time", running,
                running == 1 ? "" : "es");
        end_children(pids, status, (int)n);
        worst = interrupted ? 130 : RESULT_TIMEOUT;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    for (uint32_t i = 0; i < n; i++) {
        char path[SCENARIO_PATH_MAX + 64], err[512];
        snprintf(path, sizeof(path), "%s/shard-%u.json", dir, i);
        int st = status[i];
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "ringload: shard %u/%u was killed by signal %d\n", i, n, WTERMSIG(st));
            worst = worst == 130 ? 130 : result_worse_status(worst, RESULT_TIMEOUT);
        } else if (WIFEXITED(st) && worst != 130) {
            worst = result_worse_status(worst, WEXITSTATUS(st));
        }
        struct result one;
        if (result_init(&one) < 0)
            return RESULT_INPUT;
        if (access(path, R_OK) == 0) {
            if (result_read(&one, path, err, sizeof(err)) == 0) {
                result_merge(res, &one);
                if (one.measure_epoch_s > 0 &&
                    (*measure_epoch == 0 || one.measure_epoch_s < *measure_epoch))
                    *measure_epoch = one.measure_epoch_s;
            } else {
                fprintf(stderr, "ringload: %s\n", err);
            }
            unlink(path);
        } else if (worst != 130) {
            fprintf(stderr, "ringload: shard %u/%u wrote no result\n", i, n);
            worst = result_worse_status(worst, RESULT_INPUT);
        }
        result_free(&one);
    }
    rmdir(dir);
    free(pids);
    free(status);
    if (res->merged) {
        /* The merged figures describe the whole scenario, not slice 0. */
        free(res->scenario);
        size_t tl = scenario_format(full, NULL, 0);
        res->scenario = malloc(tl + 1);
        if (res->scenario)
            scenario_format(full, res->scenario, tl + 1);
        res->shard_index = full->shard_index;
        res->shard_count = full->shard_count;
    }
    return worst;
}

/* ---- after a run, and the subcommands ------------------------------------------------ */

static struct result_tolerance tolerance_of(const struct scenario *sc)
{
    return (struct result_tolerance){sc->max_regress, sc->max_regress_latency,
                                     sc->max_regress_memory, sc->max_regress_cpu,
                                     sc->max_regress_rate};
}

/* Compares res with the baseline file; returns RESULT_OK, RESULT_REGRESS or RESULT_INPUT. */
static int compare_with(const char *baseline, const struct result *res,
                        const struct result_tolerance *tol)
{
    struct result base;
    char err[512];
    if (result_init(&base) < 0)
        return RESULT_INPUT;
    if (result_read(&base, baseline, err, sizeof(err)) < 0) {
        fprintf(stderr, "ringload: compare = %s: %s\n", baseline, err);
        result_free(&base);
        return RESULT_INPUT;
    }
    int bad = result_compare(&base, res, tol, stdout);
    result_free(&base);
    if (bad)
        printf("compare: %d figure%s regressed against %s\n", bad, bad == 1 ? "" : "s", baseline);
    else
        printf("compare: no regression against %s\n", baseline);
    return bad ? RESULT_REGRESS : RESULT_OK;
}

/* Writes what a run (or a merge) produced and decides the exit status. */
static int finish(const struct scenario *sc, struct result *res, double measure_epoch, int status,
                  const struct hdr_seconds *hs)
{
    result_print(res, stdout);
    if (res->reasons[0])
        fprintf(stderr, "ringload: failed: %s\n", res->reasons);
    if (res->unanswered)
        fprintf(stderr,
                "ringload: %llu publishes were never answered: the server fell behind the "
                "publishing schedule (lower --publish-rate, or fewer subscribers)\n",
                (unsigned long long)res->unanswered);
    res->measure_epoch_s = measure_epoch;
    if (sc->json[0]) {
        int rc = result_write(res, sc->json);
        if (rc < 0) {
            fprintf(stderr, "ringload: json = %s: %s\n", sc->json, strerror(-rc));
            status = result_worse_status(status, RESULT_INPUT);
        }
    }
    if (sc->hdr_log[0]) {
        double epoch = measure_epoch > 0 ? measure_epoch : epoch_s();
        /* One line per second when this process measured them; else (merged
         * shards) one for the whole window. */
        int rc = hs && hs->len && !hs->failed
                     ? result_write_hdr_log_lines(sc->hdr_log, epoch, hs->text, hs->len)
                     : result_write_hdr_log(res->lat, sc->hdr_log, epoch, 0, res->duration_s);
        if (rc < 0) {
            fprintf(stderr, "ringload: hdr_log = %s: %s\n", sc->hdr_log, strerror(-rc));
            status = result_worse_status(status, RESULT_INPUT);
        }
    }
    status = status == 130 ? 130 : result_worse_status(status, res->exit_status);
    if (sc->compare[0]) {
        struct result_tolerance tol = tolerance_of(sc);
        int c = compare_with(sc->compare, res, &tol);
        status = status == 130 ? 130 : result_worse_status(status, c);
    }
    return status;
}

/* Applies "--key value" pairs from argv[from..) to sc; positional arguments
 * go to pos (up to maxpos). 0 or RESULT_INPUT after saying why. */
static int sub_options(int argc, char **argv, int from, struct scenario *sc, const char **pos,
                       int maxpos, int *npos)
{
    char err[SCENARIO_ERR_MAX];
    *npos = 0;
    for (int i = from; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            if (*npos >= maxpos) {
                fprintf(stderr, "ringload: %s: too many files (see --help)\n", argv[i]);
                return RESULT_INPUT;
            }
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (i + 1 >= argc || scenario_set(sc, argv[i], argv[i + 1], err, sizeof(err)) < 0) {
            fprintf(stderr, "ringload: %s\n", i + 1 >= argc ? "missing value" : err);
            return RESULT_INPUT;
        }
        i++;
    }
    return 0;
}

static int cmd_compare(int argc, char **argv)
{
    struct scenario sc;
    const char *files[2];
    int n;
    scenario_init(&sc);
    if (sub_options(argc, argv, 2, &sc, files, 2, &n) < 0 || n != 2) {
        fprintf(stderr, "ringload: usage: ringload compare BASELINE.json RESULT.json "
                        "[--max-regress PCT] [--max-regress-latency PCT] ...\n");
        return RESULT_INPUT;
    }
    struct result now;
    char err[512];
    if (result_init(&now) < 0)
        return RESULT_INPUT;
    if (result_read(&now, files[1], err, sizeof(err)) < 0) {
        fprintf(stderr, "ringload: compare: %s\n", err);
        result_free(&now);
        return RESULT_INPUT;
    }
    if (now.exit_status)
        printf("compare: note: %s itself exited %d (%s)\n", files[1], now.exit_status, now.reasons);
    struct result_tolerance tol = tolerance_of(&sc);
    int rc = compare_with(files[0], &now, &tol);
    result_free(&now);
    return rc;
}

static int cmd_merge(int argc, char **argv)
{
    struct scenario sc;
    const char **files = calloc((size_t)argc, sizeof(*files));
    int n;
    scenario_init(&sc);
    if (!files || sub_options(argc, argv, 2, &sc, files, argc, &n) < 0 || n < 1) {
        fprintf(stderr, "ringload: usage: ringload merge A.json B.json... [--json OUT] "
                        "[--hdr-log FILE]\n");
        free(files);
        return RESULT_INPUT;
    }
    struct result all;
    if (result_init(&all) < 0)
        return RESULT_INPUT;
    int status = RESULT_OK;
    uint32_t count = 0;
    uint64_t seen = 0;
    double epoch = 0;
    for (int i = 0; i < n; i++) {
        struct result one;
        char err[512];
        if (result_init(&one) < 0 || result_read(&one, files[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "ringload: merge: %s\n", err);
            result_free(&one);
            status = RESULT_INPUT;
            continue;
        }
        if (i == 0)
            count = one.shard_count;
        if (one.shard_count != count)
            fprintf(stderr, "ringload: merge: note: %s is shard %u/%u, the first file %u shards\n",
                    files[i], one.shard_index, one.shard_count, count);
        else if (count > 1 && one.shard_index < 64 && (seen >> one.shard_index & 1))
            fprintf(stderr, "ringload: merge: note: shard %u/%u given twice (%s)\n",
                    one.shard_index, count, files[i]);
        if (one.shard_index < 64)
            seen |= 1ull << one.shard_index;
        if (one.measure_epoch_s > 0 && (epoch == 0 || one.measure_epoch_s < epoch))
            epoch = one.measure_epoch_s;
        result_merge(&all, &one);
        result_free(&one);
    }
    if (count > 1 && count <= 64 && seen != (count == 64 ? ~0ull : (1ull << count) - 1))
        fprintf(stderr, "ringload: merge: note: not every shard of %u is here\n", count);
    free(files);
    if (!all.merged) {
        result_free(&all);
        return status;
    }
    status = finish(&sc, &all, epoch, status, NULL);
    result_free(&all);
    return status;
}

int main(int argc, char **argv)
{
    static struct scenario full;
    char err[SCENARIO_ERR_MAX];
    struct opts o = {.connect_timeout = 60, .tag = ""};
    if (argc > 1 && strcmp(argv[1], "compare") == 0)
        return cmd_compare(argc, argv);
    if (argc > 1 && strcmp(argv[1], "merge") == 0)
        return cmd_merge(argc, argv);
    scenario_init(&full);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc) {
            char *text = NULL;
            size_t len = 0;
            int rc = read_file(argv[i + 1], &text, &len);
            if (rc < 0) {
                fprintf(stderr, "ringload: --scenario %s: %s\n", argv[i + 1], strerror(-rc));
                return RESULT_INPUT;
            }
            rc = scenario_parse(&full, text, len, err, sizeof(err));
            free(text);
            if (rc < 0) {
                fprintf(stderr, "ringload: %s: %s\n", argv[i + 1], err);
                return RESULT_INPUT;
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
            return RESULT_INPUT;
        }
        i++;
        if (strcmp(f, "--scenario") == 0)
            continue;
        if (strcmp(f, "--server-pid") == 0) {
            o.server_pid = atoi(v);
            if (o.server_pid <= 0 || kill(o.server_pid, 0) < 0) {
                fprintf(stderr, "ringload: --server-pid %s: expected a running process id\n", v);
                return RESULT_INPUT;
            }
            continue;
        }
        if (strcmp(f, "--connect-timeout") == 0) {
            o.connect_timeout = atof(v);
            if (o.connect_timeout <= 0) {
                fprintf(stderr, "ringload: --connect-timeout %s: expected seconds > 0\n", v);
                return RESULT_INPUT;
            }
            continue;
        }
        if (scenario_set(&full, f, v, err, sizeof(err)) < 0) {
            fprintf(stderr, "ringload: %s\n", err);
            return RESULT_INPUT;
        }
    }
    if (scenario_check(&full, err, sizeof(err)) < 0) {
        fprintf(stderr, "ringload: %s\n", err);
        return RESULT_INPUT;
    }
    if (full.procs > 1 && full.shard_count > 1) {
        fprintf(stderr, "ringload: procs = %u with shard = %u/%u: give one or the other\n",
                full.procs, full.shard_index, full.shard_count);
        return RESULT_INPUT;
    }
    if (full.procs > 1 && full.procs > full.channels) {
        fprintf(stderr,
                "ringload: procs = %u: each process owns channels of its own, and channels = "
                "%u (use at most %u procs, or more channels)\n",
                full.procs, full.channels, full.channels);
        return RESULT_INPUT;
    }
    struct result res;
    if (result_init(&res) < 0)
        return RESULT_INPUT;
    double epoch = 0;
    struct hdr_seconds hs = {0};
    if (full.hdr_log[0] && full.procs <= 1 && !(hs.sum = hist_new()))
        hs.failed = 1;
    int status =
        full.procs > 1 ? run_procs(&full, &o, &res, &epoch) : run_one(&full, &o, &res, &epoch, &hs);
    if (res.merged || status == RESULT_OK) /* else nothing ran to the end: nothing to report */
        status = finish(&full, &res, epoch, status, &hs);
    result_free(&res);
    hist_free(hs.sum);
    free(hs.text);
    return status;
}
