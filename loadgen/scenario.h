/*
 * scenario.h: what a ringload run does, read from a scenario file and from
 * command-line flags through the same validation.
 *
 * Pure: parses text the caller has read and strings the caller hands over,
 * never opens a file or a socket, keeps no global state. The main thread
 * fills a struct scenario before any worker starts; workers only read it.
 * It does not resolve host names, check that files exist, or decide how
 * clients are spread over processes and threads: that is the runner's job.
 *
 * File format: one "key = value" per line; blank lines and lines whose first
 * non-blank character is '#' are ignored, and so is everything from a '#'
 * that follows a blank (so "sse = 100  # subscribers" works). Blanks around
 * key and value are dropped. A key may appear once per file; flags applied
 * afterwards with scenario_set override the file. On the command line a key
 * is written with dashes or underscores: --publish-rate 100.
 *
 * Durations are a decimal number with an optional unit, ns, us, ms, s, m or
 * h ("2.5", "500ms", "30s", "2m"); a bare number is in the unit the key
 * names (seconds for warmup and duration, milliseconds for poll_interval and
 * backoff_ms). Sizes are bytes, optionally with k or m (times 1024).
 *
 * key            type        default                         meaning
 * ---            ----        -------                         -------
 * sse            count       100                             SSE subscribers (0..10000000)
 * ws             count       0                               WebSocket subscribers (0..10000000)
 * longpoll       count       0                               long-poll subscribers (0..10000000)
 * poll           count       0                               short-poll clients (0..10000000)
 * publishers     count       1                               publisher connections (0..100000)
 * channels       count       10                              channels the run uses (1..10000000)
 * channel_prefix name        ch                              channel i is named <prefix><i>:
 *                                                            ch0, ch1, ...; 1..100 bytes of
 *                                                            A-Z a-z 0-9 _ . : -
 * spread         enum        round-robin                     how subscribers pick a channel:
 *                                                            round-robin (client i takes channel
 *                                                            i mod channels), random (uniform,
 *                                                            from seed), one (all on channel 0)
 * subs_per_channel range     (empty: spread decides)         A-B: channel c gets A to B
 *                                                            subscribers (uniform, from seed);
 *                                                            subscribers fill channels 0, 1, ...
 *                                                            in turn (kinds mixed), starting
 *                                                            over at 0 if they outnumber the
 *                                                            draw; later channels may get none
 * ramp           rate        1000                            new connections per second while
 *                                                            connecting; 0 = all at once
 *                                                            (0..10000000)
 * poll_interval  duration    1s                              time between a short-poll client's
 *                                                            requests (1ms..1h)
 * jitter_pct     percent     10                              each poll interval is drawn
 *                                                            uniformly within +-jitter_pct% of it
 *                                                            (0..100)
 * publish_rate   rate        100                             messages per second, all publishers
 *                                                            together, on a fixed (open-loop)
 *                                                            schedule; 0 = publish nothing
 *                                                            (0..10000000)
 * message_size   size        64                              bytes per message body
 *                                                            (SCENARIO_MIN_MESSAGE_SIZE..64m)
 * warmup         duration    2s                              connect and run unmeasured (0..1h)
 * duration       duration    10s                             measured run time (100ms..24h)
 * sub_url        URL         http://127.0.0.1:8080/sub/{ch}  subscribe URL for sse, ws and
 *                                                            longpoll: http, https, ws or wss
 *                                                            (ws clients upgrade an http URL,
 *                                                            SSE/long-poll treat ws as http)
 * pub_url        URL         http://127.0.0.1:8080/pub/{ch}  publish URL (POST): http or https
 * poll_url       URL         http://127.0.0.1:8080/poll/{ch} short-poll URL: http or https
 * resume         enum        none                            after a reconnect, ask for missed
 *                                                            messages: none, last-event-id
 *                                                            (SSE header), since (?since=N)
 * reconnect      enum        off                             on: reconnect dropped subscribers
 * backoff_ms     duration    100ms                           first wait before a reconnect,
 *                                                            doubled after each failed try (up
 *                                                            to 64x), each drawn within +-50%
 *                                                            (0..1h)
 * churn          duration    0ns (never)                     subscribers drop their connection
 *                                                            after a random time with this mean
 *                                                            (exponential) and reconnect
 *                                                            (needs reconnect = on) (0..24h)
 * ws_deflate     enum        off                             on: WebSocket subscribers offer
 *                                                            permessage-deflate and require it
 * ws_protocol    enum        ringcast                        ringcast: WebSocket subscribers ask
 *                                                            for ringcast.json (JSON frames with
 *                                                            ids); nchan: for ws+meta.nchan
 *                                                            ("id: T:N", content-type, blank
 *                                                            line, body; nginx + nchan)
 * poll_protocol  enum        ringcast                        ringcast: polls send since and
 *                                                            read JSON answers; nchan: one body
 *                                                            per answer, the next request sends
 *                                                            If-Modified-Since/If-None-Match from
 *                                                            its Last-Modified/Etag (304, 408:
 *                                                            nothing new); long and short polls
 * publish_order enum        sequential                      sequential: a publisher sends to
 *                                                            its channels in turn; random: each
 *                                                            round visits every one of them once
 *                                                            in a shuffled order (per round, from
 *                                                            seed)
 * publish_via    enum        http                            http: POST to pub_url; ws: each
 *                                                            publisher sends on a WebSocket to
 *                                                            its channel's sub_url, and its own
 *                                                            message coming back is the ack
 *                                                            (one channel per publisher: needs
 *                                                            publishers >= channels; no short
 *                                                            pollers, see scenario_check)
 * role           enum        both                            both; publish: only the publishers;
 *                                                            subscribe: only the subscribers
 *                                                            (they check against the publishers'
 *                                                            schedule, see engine.c); needs
 *                                                            start_at
 * clock          enum        monotonic                       send times written into messages:
 *                                                            monotonic (one box) or realtime
 *                                                            (boxes with synchronized clocks)
 * start_at       time        (empty: once connected)         when message 1 is due, Unix seconds
 *                                                            (fraction allowed); the same in
 *                                                            every process of a split run
 * tls_ca         file        (empty: the system's CAs)       CA certificates (PEM) that https
 *                                                            and wss servers must chain to
 * tls_insecure   enum        off                             on: skip certificate verification
 *                                                            (self-signed test servers)
 * src            IPv4 range  (empty: the kernel picks)       source addresses to bind, one or
 *                                                            a range: 127.0.0.2-127.0.0.250
 * procs          count       1                               processes (1..1024)
 * threads        count       0                               threads per process; 0 = one per
 *                                                            online CPU (0..1024)
 * seed           count       1                               random seed (spread, jitter)
 * json           file        (empty: none)                   write the result as JSON here
 * compare        file        (empty: none)                   baseline result to compare with
 * max_regress    percent     10                              compare fails when a result is
 *                                                            this much worse (0..1000)
 * max_regress_latency, max_regress_memory, max_regress_cpu, max_regress_rate
 *                percent     (empty: max_regress)            per-figure tolerances (0..100000)
 * shard          I/N         0/1                             run slice I of N (see
 *                                                            scenario_slice)
 * hdr_log        file        (empty: none)                   HdrHistogram interval log
 *
 * A URL template is scheme://host[:port]/path, where host is a name, an IPv4
 * address or [IPv6], the port defaults to 80 (http, ws) or 443 (https, wss),
 * and the path (query allowed, no fragment, no blanks) contains {ch} at least
 * once, which is replaced by the channel name.
 */
#ifndef RINGLOAD_SCENARIO_H
#define RINGLOAD_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#define SCENARIO_URL_MAX    512  /* longest URL template */
#define SCENARIO_HOST_MAX   256  /* longest host name */
#define SCENARIO_PATH_MAX   1024 /* longest json / compare file name */
#define SCENARIO_PREFIX_MAX 100  /* longest channel_prefix */
#define SCENARIO_VALUE_MAX  1024 /* longest value */
/* The smallest message_size: room for the channel sequence and send time
 * that the load generator writes into every message it publishes. */
#define SCENARIO_MIN_MESSAGE_SIZE 32
/* An err buffer this large holds any message in full. */
#define SCENARIO_ERR_MAX 384

enum scenario_spread { SCENARIO_SPREAD_ROUND_ROBIN, SCENARIO_SPREAD_RANDOM, SCENARIO_SPREAD_ONE };
enum scenario_resume { SCENARIO_RESUME_NONE, SCENARIO_RESUME_LAST_EVENT_ID, SCENARIO_RESUME_SINCE };
enum scenario_scheme { SCENARIO_HTTP, SCENARIO_HTTPS, SCENARIO_WS, SCENARIO_WSS };
enum scenario_order { SCENARIO_ORDER_SEQUENTIAL, SCENARIO_ORDER_RANDOM };
enum scenario_role { SCENARIO_ROLE_BOTH, SCENARIO_ROLE_PUBLISH, SCENARIO_ROLE_SUBSCRIBE };
enum scenario_clock { SCENARIO_CLOCK_MONOTONIC, SCENARIO_CLOCK_REALTIME };

struct scenario_url {
    char text[SCENARIO_URL_MAX]; /* the template as given */
    enum scenario_scheme scheme;
    int tls;                      /* https or wss */
    char host[SCENARIO_HOST_MAX]; /* as given, an IPv6 address without its brackets */
    uint16_t port;                /* as given, or the scheme's default */
    char path[SCENARIO_URL_MAX];  /* from the first '/', query included, {ch} not replaced */
};

struct scenario {
    /* Clients. */
    uint32_t sse, ws, longpoll, poll, publishers;
    /* Channels. */
    uint32_t channels;
    char channel_prefix[SCENARIO_PREFIX_MAX + 1];
    enum scenario_spread spread;
    /* subs_per_channel A-B (subs_max 0: not given, spread applies): channel c
     * gets A..B subscribers (drawn from seed), filled in channel order. */
    uint32_t subs_min, subs_max;
    /* Pace. */
    double ramp;               /* connections per second, 0 = all at once */
    uint64_t poll_interval_ns; /* short-poll period */
    double jitter_pct;         /* 0..100 */
    double publish_rate;       /* messages per second, total */
    uint32_t message_size;     /* bytes */
    uint64_t warmup_ns, duration_ns;
    /* Server. */
    struct scenario_url sub_url, pub_url, poll_url;
    enum scenario_resume resume;
    int reconnect; /* 0 off, 1 on */
    uint64_t backoff_ns;
    uint64_t churn_ns; /* 0: subscribers keep their connection */
    int ws_deflate;    /* 0 off, 1 on */
    int publish_ws;    /* publish_via: 0 http, 1 ws */
    int ws_nchan;      /* ws_protocol: 0 ringcast (ringcast.json), 1 nchan (ws+meta.nchan) */
    int poll_nchan;    /* poll_protocol: 0 ringcast (since, JSON), 1 nchan (Etag) */
    int publish_order; /* enum scenario_order */
    /* Split runs: which side this process runs (enum scenario_role), the
     * clock of the send times in messages (enum scenario_clock), and when
     * publishing starts (Unix seconds; -1: once connected). */
    int role, clock;
    double start_at;
    /* TLS (https, wss): the CA file (empty: the system's), verification off. */
    char tls_ca[SCENARIO_PATH_MAX];
    int tls_insecure; /* 0 off, 1 on */
    /* Where from. */
    int has_src;                  /* src given; else the kernel picks */
    uint32_t src_first, src_last; /* IPv4, host byte order, first <= last */
    uint32_t procs, threads;
    uint64_t seed;
    /* Results. */
    char json[SCENARIO_PATH_MAX];    /* empty: none */
    char compare[SCENARIO_PATH_MAX]; /* empty: none */
    double max_regress;              /* percent */
    /* Per-figure tolerances in percent; -1: not given, max_regress applies. */
    double max_regress_latency, max_regress_memory, max_regress_cpu, max_regress_rate;
    uint32_t shard_index, shard_count; /* slice shard_index of shard_count; 0/1: all */
    char hdr_log[SCENARIO_PATH_MAX];   /* empty: none */
};

/* Fills *s with every key's default. */
void scenario_init(struct scenario *s);

/*
 * Parses a scenario file's text[0..len) into *s: defaults first, then each
 * line in order. Returns 0, or -EINVAL on the first bad line with a message
 * in err[0..errlen) (always NUL-terminated when errlen > 0) naming the line,
 * the key, the value and what the key accepts, e.g.
 *
 *     line 7: publish_rate = fast: expected a number of messages per second
 *     from 0 to 10000000 (e.g. 1000)
 *     line 3: publsh_rate: unknown key (did you mean publish_rate?)
 *
 * On error *s holds the defaults and the lines before the bad one. Keys are
 * checked one at a time; call scenario_check once flags are applied too.
 */
int scenario_parse(struct scenario *s, const char *text, size_t len, char *err, size_t errlen);

/*
 * Sets one key from a command-line flag: key is "publish-rate",
 * "publish_rate" or "--publish-rate", value a C string. Same validation and
 * return as scenario_parse, with messages naming the flag:
 *
 *     --publish-rate fast: expected a number of messages per second ...
 *
 * On error *s is unchanged.
 */
int scenario_set(struct scenario *s, const char *key, const char *value, char *err, size_t errlen);

/* Checks what no single key can: that there is something to run, and that a
 * publish rate has publishers. Returns 0 or -EINVAL with a message. */
int scenario_check(const struct scenario *s, char *err, size_t errlen);

/* Writes *s as scenario file text, every key on its own line, such that
 * scenario_parse of it gives back *s. snprintf's return convention. */
size_t scenario_format(const struct scenario *s, char *out, size_t cap);

/*
 * Parses a URL template (the grammar above) into *u. need_ch: the path must
 * contain {ch}. http_only: ws and wss are refused. Returns 0 or -EINVAL with
 * the reason in err (without a line or key: the callers above add those).
 */
int scenario_url_parse(struct scenario_url *u, const char *text, int need_ch, int http_only,
                       char *err, size_t errlen);

/* Writes u's path with every {ch} replaced by ch (the request-target), with
 * snprintf's return convention. */
size_t scenario_url_path(const struct scenario_url *u, const char *ch, char *out, size_t cap);

/* Writes the name of channel i (<channel_prefix><i>); snprintf's convention.
 * In a slice (shard_count > 1) i is the slice's own index and the name is
 * the full run's: channel i * shard_count + shard_index. */
size_t scenario_channel_name(const struct scenario *s, uint32_t i, char *out, size_t cap);

/*
 * Cuts the slice full->shard_index of full->shard_count out of a scenario so
 * that several processes or machines can share a run and each still checks
 * its deliveries completely: slice I owns the full run's channels I, I+N,
 * I+2N, ... together with the subscribers round-robin puts on them (random
 * spread: the same share; spread = one: all of them in slice 0), each
 * channel's publish rate, and publishers j = I, I+N, ... (at least one when
 * it publishes, at most one per channel). *out is the slice, with local
 * channel indices 0 .. out->channels - 1 that scenario_channel_name maps
 * back to the full run's names, and procs = 1. Returns 0, or -EINVAL with
 * a message when there are fewer channels than shards.
 */
int scenario_slice(const struct scenario *full, struct scenario *out, char *err, size_t errlen);

/* The keys, for --help: name, type, default (as file text) and a one-line
 * meaning. scenario_key(i) for i = 0, 1, ... until it returns NULL. */
struct scenario_key_doc {
    const char *name, *type, *def, *help;
};
const struct scenario_key_doc *scenario_key(size_t i);

#endif
