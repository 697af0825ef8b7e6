/*
 * result.h: every figure of one ringload run, or of several merged: counts,
 * per-kind counters, errors, the latency histogram, memory, CPU (ringload's,
 * the server's and the machine's over the measured window), wall time, the
 * environment, the scenario text and why the run failed, if it did.
 *
 * A struct result is built once from a finished run (result_from_run, on the
 * main thread after every engine thread has joined), or read back from the
 * JSON a run wrote (result_read), and then printed, written, merged with
 * other shards' results or compared with a baseline. It owns its histogram
 * and scenario text (result_free). Nothing here starts threads, reads a
 * clock or touches the server: main.c samples /proc and hands the samples
 * over; the /proc parsers here are pure functions over the text.
 */
#ifndef RINGLOAD_RESULT_H
#define RINGLOAD_RESULT_H

#include <stdint.h>
#include <stdio.h>

#include "engine.h"
#include "hist.h"

/* Exit statuses, also recorded in the JSON as "exit_status". */
enum {
    RESULT_OK = 0,
    RESULT_DELIVERY = 1, /* lost, duplicated, reordered, id mismatch, or publishes unanswered */
    RESULT_INPUT = 2,    /* bad input, unreachable server, unreadable result */
    RESULT_DIED = 3,     /* the server died or closed every connection */
    RESULT_REGRESS = 4,  /* compare: a figure is worse than the baseline allows */
    RESULT_TIMEOUT = 5,  /* procs: a child process did not finish in time (killed) */
};

/* Which exit status is worse: died/timeout > input > delivery > regress > ok. */
int result_worse_status(int a, int b);

/* Cumulative CPU ticks (1/clk_tck s) at the start and end of a window. */
struct result_ticks {
    int valid;
    uint64_t user0, sys0, user1, sys1;
};

struct result_kind {
    uint64_t clients, connect_failed, subscribed, deliveries, lost, dup;
};

/* TLS of one kind of client (sse, ws, longpoll, poll, publishers): handshakes
 * done, failed (also in the kind's connect failures) and resumed, and how
 * long they took from the TCP connect's start, ns (allocated by result_init). */
struct result_tls {
    uint64_t handshakes, failed, resumed;
    struct hist *lat;
};

/* Connecting, per kind of client (as result_tls): ns from the TCP connect's
 * start to its completion, and to the client being ready (see engine.h's
 * ready_lat). Allocated by result_init. */
struct result_conn {
    struct hist *connect, *ready;
};

/* What main.c measures around the run, for result_from_run. rss in KB (-1:
 * unknown), cpu as cumulative ticks; machine user = busy, sys = total. */
struct result_samples {
    int server_pid;
    long server_rss_before_kb, server_rss_after_ramp_kb;
    long own_rss_before_kb, own_rss_after_ramp_kb;
    double own_cpu_s, own_cpu_window_s, wall_s, window_s;
    double thread_busy_max_pct; /* the busiest engine thread over the window; -1 unknown */
    uint64_t window_deliveries, window_published;
    struct result_ticks server, machine;
    int server_died;
    long cpus;
};

#define RESULT_REASONS_MAX 512

struct result {
    /* Environment. */
    char kernel[65], hostname[65];
    long cpus, clk_tck;
    int threads;
    int merged;                        /* results merged into this one; 1 for a plain run */
    uint32_t shard_index, shard_count; /* the slice this run was; 0/1 for all */
    char *scenario;                    /* scenario file text, malloc'd */
    /* Counts. */
    uint64_t clients, connected, subscribers, published, acknowledged, unanswered, deliveries;
    uint64_t lost, dup, id_mismatches, gaps;
    uint64_t connect_failed, refused, bad_status, protocol, publish_failed, closed_by_server;
    struct result_kind kinds[LK_N];
    uint64_t polls, pongs, ws_closes;
    double polls_per_s;
    /* Reconnects (see engine.h) and permessage-deflate frames inflated. */
    uint64_t reconnects, reconnect_failed, churn_drops, missed_offline, gap_skipped, ws_inflated;
    struct result_tls tls[ENGINE_TLS_KINDS];
    struct result_conn conn[ENGINE_TLS_KINDS];
    uint64_t tls_errors[ENGINE_TLS_REASONS]; /* failed handshakes by reason */
    int silent_publishers;                   /* the scenario publishes, yet nothing was published */
    uint64_t undelivered;                    /* late at the end of a cut-off drain (engine.h) */
    /* Measured window: deliveries and publishes between its start and end. */
    double window_s, duration_s;
    double measure_epoch_s; /* wall-clock start of the window (0 unknown), for hdr_log */
    uint64_t window_deliveries, window_published;
    double deliveries_per_s; /* measured latencies per second of duration (as before) */
    struct hist *lat;        /* measured latencies, ns */
    double lat_p99_ms_;      /* read from a file without a histogram; -1 otherwise */
    /* Memory: raw RSS samples (KB, -1 unknown) and the derived figures (-1 unknown). */
    int server_pid;
    long server_rss_before_kb, server_rss_after_ramp_kb;
    long own_rss_before_kb, own_rss_after_ramp_kb;
    double server_bytes_per_connection, ringload_bytes_per_client;
    /* CPU. */
    double ringload_cpu_s, ringload_cpu_window_s, wall_s;
    /* The busiest ringload thread's share of one CPU over the window (%),
     * and whether ringload ran out of CPU then (a thread >= 90 %, or all of
     * them together >= 90 % of the CPUs they could use); -1 unknown. */
    double ringload_thread_busy_max_pct;
    int ringload_saturated;
    struct result_ticks server_cpu, machine_cpu;
    double machine_busy_pct; /* -1 unknown; kept when raw ticks are not comparable */
    /* Outcome. */
    int server_died;
    int exit_status;
    char reasons[RESULT_REASONS_MAX]; /* "; "-separated, empty when all is well */
};

/* Zeroes *res, every unknown figure -1, and allocates its histogram. 0 or -ENOMEM. */
int result_init(struct result *res);
void result_free(struct result *res);

/*
 * Fills *res (result_init'ed) from a finished run: sums the threads'
 * counters, merges their histograms (engine_final_check must have run),
 * derives the figures and the exit status. full is the scenario as given
 * (its text is kept), r->sc the slice that ran.
 */
int result_from_run(struct result *res, const struct run *r, const struct scenario *full,
                    const struct result_samples *smp);

/* Derived figures; -1 (or NAN for the CPU ones) when not measured. */
double result_server_cpu_us_per_delivery(const struct result *res, int which); /* 0 all, 1 user,
                                                                                   2 system */
double result_machine_busy_pct(const struct result *res);
double result_p99_ms(const struct result *res);

/* Sets exit_status and reasons from the counts (keeps a worse status already set). */
void result_judge(struct result *res);

/* The human summary, as ringload always printed it, plus the CPU lines. */
void result_print(const struct result *res, FILE *out);

/* Writes the JSON to path. 0 or a negative errno. */
int result_write(const struct result *res, const char *path);
/* Reads a JSON result back into *res (result_init'ed). Fields missing from
 * an older file stay unknown. 0, or -EINVAL with a message in err. */
int result_read(struct result *res, const char *path, char *err, size_t errlen);

/*
 * Adds src into dst (dst result_init'ed and empty, or holding earlier
 * shards): counts add, histograms merge (percentiles come from the merged
 * histogram), per-connection memory is weighted by connections (or, for
 * shards on one host against one server pid, taken from that server's RSS
 * over all of them), server and machine CPU cover the union of the windows
 * when the shards ran on one host, the worst exit status wins.
 */
int result_merge(struct result *dst, const struct result *src);

/*
 * Compares now with a baseline: lost, duplicated/reordered and id
 * mismatches must be 0 in now; server bytes per connection, ringload bytes
 * per client, server CPU per delivery and p99 latency may not grow, and
 * deliveries per second may not drop, by more than their tolerance in
 * percent. Writes one line per figure to out (regressed ones say
 * "REGRESSED" with baseline, now and percent; missing ones are skipped with
 * a note). Returns the number of figures that regressed.
 */
struct result_tolerance {
    double all, latency, memory, cpu, rate; /* percent; < 0: use all */
};
int result_compare(const struct result *base, const struct result *now,
                   const struct result_tolerance *tol, FILE *out);

/* Pure parsers of /proc text. utime and stime (ticks) from /proc/PID/stat;
 * busy and total ticks of the "cpu" line of /proc/stat (idle and iowait are
 * not busy). 0 or -EINVAL. */
int result_parse_pid_stat(const char *buf, size_t len, uint64_t *utime, uint64_t *stime);
int result_parse_proc_stat(const char *buf, size_t len, uint64_t *busy, uint64_t *total);

/* Writes an HdrHistogram interval log (header, then one line for the
 * measured window: start_s after start_epoch_s, length_s long) of h to path.
 * 0 or a negative errno. */
int result_write_hdr_log(const struct hist *h, const char *path, double start_epoch_s,
                         double start_s, double length_s);
/* The same with interval lines the caller made with hist_log_interval (one
 * per second of the window, say): the header, then lines[0..len). */
int result_write_hdr_log_lines(const char *path, double start_epoch_s, const char *lines,
                               size_t len);

#endif
