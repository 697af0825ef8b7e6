/*
 * scenario.c: scenario files and flags (see scenario.h for the format).
 *
 * Owns nothing; the main thread calls it before workers start. One table
 * describes every key: where its value goes, its type and limits, its
 * default as text and the words an error uses. Defaults, file lines and flags
 * all go through the same setter, so a default is validated like any value
 * and scenario_format can write back what was read. Numbers are parsed by
 * hand, not with strtoul's leniency (no signs, no hex, no trailing junk). It
 * does not read files, resolve names or check that the server is there.
 */
#include "scenario.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum scenario_type {
    SC_COUNT,    /* uint32_t or uint64_t whole number */
    SC_REAL,     /* double */
    SC_DURATION, /* uint64_t nanoseconds */
    SC_SIZE,     /* uint32_t bytes, k/m suffixes */
    SC_ENUM,     /* int, one of names[] */
    SC_URL,      /* struct scenario_url */
    SC_SRC,      /* has_src, src_first, src_last */
    SC_FILE,     /* char[SCENARIO_PATH_MAX] */
    SC_NAME,     /* char[SCENARIO_PREFIX_MAX + 1], channel-name alphabet */
    SC_SHARD,    /* shard_index, shard_count: "I/N" */
    SC_RANGE,    /* subs_min, subs_max: "A-B", or empty (subs_max = 0) */
};

enum { URL_ANY = 0, URL_HTTP_ONLY = 1 };

struct scenario_key {
    struct scenario_key_doc doc;
    enum scenario_type type;
    size_t off, size;
    double lo, hi;            /* numeric limits; durations in ns */
    uint64_t unit;            /* durations: ns per bare number */
    const char *const *names; /* enums, NULL-terminated */
    const char *noun;         /* what the number counts, for messages */
    const char *example;
    int url_mode;
    int optional; /* SC_REAL: an empty value stores -1 ("not given") */
};

static const char *const spread_names[] = {"round-robin", "random", "one", NULL};
static const char *const resume_names[] = {"none", "last-event-id", "since", NULL};
static const char *const onoff_names[] = {"off", "on", NULL};
static const char *const via_names[] = {"http", "ws", NULL};
static const char *const dialect_names[] = {"ringcast", "nchan", NULL};
static const char *const order_names[] = {"sequential", "random", NULL};
static const char *const role_names[] = {"both", "publish", "subscribe", NULL};
static const char *const clock_names[] = {"monotonic", "realtime", NULL};

#define NS_MS  UINT64_C(1000000)
#define NS_S   UINT64_C(1000000000)
#define NS_H   (3600 * NS_S)
#define MAXCLI 10000000.0

#define FIELD(f) offsetof(struct scenario, f), sizeof(((struct scenario *)0)->f)

#define COUNT(key, f, lo_, hi_, def_, noun_, ex_, help_)                                           \
    {                                                                                              \
        .doc = {key, "count", def_, help_}, .type = SC_COUNT, FIELD(f), .lo = lo_, .hi = hi_,      \
        .noun = noun_, .example = ex_                                                              \
    }
#define REAL(key, f, hi_, def_, noun_, ex_, help_)                                                 \
    {                                                                                              \
        .doc = {key, "number", def_, help_}, .type = SC_REAL, FIELD(f), .lo = 0, .hi = hi_,        \
        .noun = noun_, .example = ex_                                                              \
    }
#define DURATION(key, f, lo_, hi_, unit_, def_, ex_, help_)                                        \
    {                                                                                              \
        .doc = {key, "duration", def_, help_}, .type = SC_DURATION, FIELD(f), .lo = (double)(lo_), \
        .hi = (double)(hi_), .unit = unit_, .example = ex_                                         \
    }
#define ENUM(key, f, names_, def_, help_)                                                          \
    {                                                                                              \
        .doc = {key, "enum", def_, help_}, .type = SC_ENUM, FIELD(f), .names = names_              \
    }
#define URL(key, f, mode_, def_, help_)                                                            \
    {                                                                                              \
        .doc = {key, "URL", def_, help_}, .type = SC_URL, FIELD(f), .url_mode = mode_,             \
        .example = def_                                                                            \
    }
/* A percentage that may be left empty, stored as -1: "use max_regress". */
#define TOLERANCE(key, f, help_)                                                                   \
    {                                                                                              \
        .doc = {key, "percent", "", help_}, .type = SC_REAL, FIELD(f), .lo = 0, .hi = 100000,      \
        .noun = "percent", .example = "200", .optional = 1                                         \
    }
#define FILEKEY(key, f, help_)                                                                     \
    {                                                                                              \
        .doc = {key, "file", "", help_}, .type = SC_FILE, FIELD(f)                                 \
    }

static const struct scenario_key keys[] = {
    COUNT("sse", sse, 0, MAXCLI, "100", "SSE subscribers", "1000", "SSE subscribers"),
    COUNT("ws", ws, 0, MAXCLI, "0", "WebSocket subscribers", "1000", "WebSocket subscribers"),
    COUNT("longpoll", longpoll, 0, MAXCLI, "0", "long-poll subscribers", "1000",
          "long-poll subscribers"),
    COUNT("poll", poll, 0, MAXCLI, "0", "short-poll clients", "1000", "short-poll clients"),
    COUNT("publishers", publishers, 0, 100000, "1", "publisher connections", "4",
          "publisher connections"),
    COUNT("channels", channels, 1, MAXCLI, "10", "channels", "100", "channels the run uses"),
    {.doc = {"channel_prefix", "name", "ch", "channel i is named <prefix><i>"},
     .type = SC_NAME,
     FIELD(channel_prefix),
     .example = "news"},
    ENUM("spread", spread, spread_names, "round-robin",
         "how subscribers pick a channel: round-robin, random or one"),
    {.doc = {"subs_per_channel", "range", "",
             "A-B: each channel gets A to B subscribers, drawn uniformly (empty: spread)"},
     .type = SC_RANGE,
     FIELD(subs_min),
     .example = "1-10"},
    REAL("ramp", ramp, MAXCLI, "1000", "connections per second", "500",
         "new connections per second while connecting; 0 = all at once"),
    DURATION("poll_interval", poll_interval_ns, NS_MS, NS_H, NS_MS, "1s", "250ms",
             "time between a short-poll client's requests"),
    REAL("jitter_pct", jitter_pct, 100, "10", "percent", "10",
         "poll intervals vary uniformly by +- this percentage"),
    REAL("publish_rate", publish_rate, MAXCLI, "100", "messages per second", "1000",
         "messages per second, all publishers together; 0 = none"),
    {.doc = {"message_size", "size", "64", "bytes per message body"},
     .type = SC_SIZE,
     FIELD(message_size),
     .lo = SCENARIO_MIN_MESSAGE_SIZE,
     .hi = 64 << 20,
     .example = "1024 or 4k"},
    DURATION("warmup", warmup_ns, 0, NS_H, NS_S, "2s", "5s", "unmeasured time after connecting"),
    DURATION("duration", duration_ns, 100 * NS_MS, 24 * NS_H, NS_S, "10s", "30s",
             "measured run time"),
    URL("sub_url", sub_url, URL_ANY, "http://127.0.0.1:8080/sub/{ch}",
        "subscribe URL (sse, ws, longpoll): http, https, ws or wss"),
    URL("pub_url", pub_url, URL_HTTP_ONLY, "http://127.0.0.1:8080/pub/{ch}",
        "publish URL (POST): http or https"),
    URL("poll_url", poll_url, URL_HTTP_ONLY, "http://127.0.0.1:8080/poll/{ch}",
        "short-poll URL: http or https"),
    ENUM("resume", resume, resume_names, "none",
         "after a reconnect ask for missed messages: none, last-event-id or since"),
    ENUM("reconnect", reconnect, onoff_names, "off", "on: reconnect dropped subscribers"),
    DURATION("backoff_ms", backoff_ns, 0, NS_H, NS_MS, "100ms", "250",
             "first wait before a reconnect, doubled after each failed try"),
    DURATION("churn", churn_ns, 0, 24 * NS_H, NS_S, "0ns", "30s",
             "mean time a subscriber keeps its connection before reconnecting; 0 = forever"),
    ENUM("ws_deflate", ws_deflate, onoff_names, "off",
         "on: WebSocket subscribers offer permessage-deflate and require it"),
    ENUM("ws_protocol", ws_nchan, dialect_names, "ringcast",
         "what WebSocket subscribers speak: ringcast (ringcast.json) or nchan (ws+meta.nchan)"),
    ENUM("poll_protocol", poll_nchan, dialect_names, "ringcast",
         "what pollers speak: ringcast (since, JSON) or nchan (one message, Etag)"),
    ENUM("publish_via", publish_ws, via_names, "http",
         "http: POST to pub_url; ws: a WebSocket per publisher, its echo is the ack"),
    ENUM("publish_order", publish_order, order_names, "sequential",
         "which of its channels a publisher sends to next: sequential or random"),
    ENUM("role", role, role_names, "both",
         "this process runs both sides, only the publishers or only the subscribers"),
    ENUM("clock", clock, clock_names, "monotonic",
         "send times in messages: monotonic (one box) or realtime (synchronized boxes)"),
    {.doc = {"start_at", "time", "",
             "when publishing starts, in Unix seconds (empty: once connected)"},
     .type = SC_REAL,
     FIELD(start_at),
     .lo = 0,
     .hi = 1e11,
     .noun = "Unix time in seconds",
     .example = "1795000000.5",
     .optional = 1},
    FILEKEY("tls_ca", tls_ca,
            "CA certificates (PEM) that https and wss servers must chain to (empty: the "
            "system's)"),
    ENUM("tls_insecure", tls_insecure, onoff_names, "off",
         "on: skip certificate verification (self-signed test servers)"),
    {.doc = {"src", "IPv4 range", "", "source addresses to bind (empty: the kernel picks)"},
     .type = SC_SRC,
     FIELD(src_first)},
    COUNT("procs", procs, 1, 1024, "1", "processes", "4", "processes"),
    COUNT("threads", threads, 0, 1024, "0", "threads per process", "2",
          "threads per process; 0 = one per online CPU"),
    COUNT("seed", seed, 0, 18446744073709551615.0, "1", "", "42",
          "random seed for spread and jitter"),
    FILEKEY("json", json, "write the result as JSON to this file (empty: none)"),
    FILEKEY("compare", compare, "baseline result to compare with (empty: none)"),
    REAL("max_regress", max_regress, 1000, "10", "percent", "10",
         "compare fails when a result is this many percent worse"),
    TOLERANCE("max_regress_latency", max_regress_latency,
              "tolerance for p99 latency (empty: max_regress)"),
    TOLERANCE("max_regress_memory", max_regress_memory,
              "tolerance for bytes per connection and per client (empty: max_regress)"),
    TOLERANCE("max_regress_cpu", max_regress_cpu,
              "tolerance for server CPU per delivery (empty: max_regress)"),
    TOLERANCE("max_regress_rate", max_regress_rate,
              "tolerance for deliveries per second (empty: max_regress)"),
    {.doc = {"shard", "I/N", "0/1", "run slice I of N of the scenario (channels I, I+N, ...)"},
     .type = SC_SHARD,
     FIELD(shard_index),
     .example = "0/2"},
    FILEKEY("hdr_log", hdr_log, "write an HdrHistogram interval log here (empty: none)"),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

const struct scenario_key_doc *scenario_key(size_t i)
{
    return i < NKEYS ? &keys[i].doc : NULL;
}

/* ---- messages -------------------------------------------------------------- */

static void sc_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sc_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A value as a message shows it: printable ASCII, anything else as '?',
 * long ones cut, the empty one as "". */
static void sc_show(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    if (n == 0) {
        snprintf(out, cap, "\"\"");
        return;
    }
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        if (i == 60 && n > 64) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[o] = 0;
}

/* ---- numbers --------------------------------------------------------------- */

/* Digits [ "." digits ]: the integer part, the fraction as a numerator over
 * 10^fdigits (at most 18 of them kept). Returns the bytes used, 0 if none. */
static size_t sc_decimal(const char *s, uint64_t *ip, uint64_t *fp, int *fdigits)
{
    size_t i = 0;
    *ip = 0;
    *fp = 0;
    *fdigits = 0;
    if (s[0] < '0' || s[0] > '9')
        return 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (*ip > (UINT64_MAX - d) / 10)
            return 0;
        *ip = *ip * 10 + d;
    }
    if (s[i] == '.') {
        i++;
        if (s[i] < '0' || s[i] > '9')
            return 0;
        for (; s[i] >= '0' && s[i] <= '9'; i++)
            if (*fdigits < 18) {
                *fp = *fp * 10 + (uint64_t)(s[i] - '0');
                (*fdigits)++;
            }
    }
    return i;
}

static int sc_parse_count(const char *v, uint64_t *out)
{
    uint64_t ip, fp;
    int fd;
    size_t n = sc_decimal(v, &ip, &fp, &fd);
    if (n == 0 || v[n] != 0 || fd != 0)
        return -EINVAL;
    *out = ip;
    return 0;
}

/* digits [. digits] [e [+-] digits], then strtod, which has checked its own
 * range; no sign, inf or nan. */
static int sc_parse_real(const char *v, double *out)
{
    uint64_t ip, fp;
    int fd;
    size_t n = sc_decimal(v, &ip, &fp, &fd);
    if (n == 0)
        return -EINVAL;
    if (v[n] == 'e' || v[n] == 'E') {
        size_t m = n + 1;
        if (v[m] == '+' || v[m] == '-')
            m++;
        if (v[m] < '0' || v[m] > '9')
            return -EINVAL;
        while (v[m] >= '0' && v[m] <= '9')
            m++;
        n = m;
    }
    if (v[n] != 0)
        return -EINVAL;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (*end != 0 || errno == ERANGE)
        return -EINVAL;
    *out = d;
    return 0;
}

static const struct {
    const char *name;
    uint64_t ns;
} sc_units[] = {{"ns", 1}, {"us", 1000}, {"ms", NS_MS}, {"s", NS_S}, {"m", 60 * NS_S}, {"h", NS_H}};

static int sc_parse_duration(const char *v, uint64_t bare_unit, uint64_t *out)
{
    uint64_t ip, fp, unit = bare_unit;
    int fd;
    size_t n = sc_decimal(v, &ip, &fp, &fd);
    if (n == 0)
        return -EINVAL;
    if (v[n] != 0) {
        size_t u;
        for (u = 0; u < ARRAY_SIZE(sc_units); u++)
            if (strcmp(v + n, sc_units[u].name) == 0)
                break;
        if (u == ARRAY_SIZE(sc_units))
            return -EINVAL;
        unit = sc_units[u].ns;
    }
    unsigned __int128 pow10 = 1;
    for (int i = 0; i < fd; i++)
        pow10 *= 10;
    /* Rounded to the nearest nanosecond. */
    unsigned __int128 ns =
        (unsigned __int128)ip * unit + ((unsigned __int128)fp * unit + pow10 / 2) / pow10;
    if (ns > UINT64_MAX)
        return -EINVAL;
    *out = (uint64_t)ns;
    return 0;
}

static int sc_parse_size(const char *v, uint64_t *out)
{
    uint64_t ip, fp, mul = 1;
    int fd;
    size_t n = sc_decimal(v, &ip, &fp, &fd);
    if (n == 0 || fd != 0)
        return -EINVAL;
    const char *u = v + n;
    if (*u == 'k' || *u == 'K')
        mul = 1024, u++;
    else if (*u == 'm' || *u == 'M')
        mul = 1024 * 1024, u++;
    if (mul > 1 && (strcmp(u, "iB") == 0 || strcmp(u, "B") == 0))
        u += strlen(u);
    if (*u != 0 || ip > UINT64_MAX / mul)
        return -EINVAL;
    *out = ip * mul;
    return 0;
}

/* Writes a duration in the largest unit that holds it exactly. */
static int sc_format_duration(char *out, size_t cap, uint64_t ns)
{
    for (size_t u = ARRAY_SIZE(sc_units); u-- > 1;)
        if (ns % sc_units[u].ns == 0 && ns > 0)
            return snprintf(out, cap, "%llu%s", (unsigned long long)(ns / sc_units[u].ns),
                            sc_units[u].name);
    return snprintf(out, cap, "%lluns", (unsigned long long)ns);
}

/* ---- IPv4 ------------------------------------------------------------------- */

/* Dotted quad, each part 0..255 in decimal without leading zeros. */
static size_t sc_ipv4(const char *s, uint32_t *out)
{
    size_t i = 0;
    uint32_t a = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && s[i++] != '.')
            return 0;
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned v = 0, digits = 0;
        while (s[i] >= '0' && s[i] <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(s[i++] - '0');
            digits++;
        }
        if (v > 255 || digits > 3 || (digits > 1 && s[i - digits] == '0'))
            return 0;
        a = a << 8 | v;
    }
    *out = a;
    return i;
}

static void sc_ipv4_text(char *out, size_t cap, uint32_t a)
{
    snprintf(out, cap, "%u.%u.%u.%u", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255);
}

static int sc_parse_src(struct scenario *s, const char *v, char *err, size_t errlen)
{
    uint32_t first, last;
    static const char want[] = "expected an IPv4 address or range like 127.0.0.2-127.0.0.250, or "
                               "nothing for the kernel's choice";
    if (*v == 0 || strcmp(v, "none") == 0) {
        s->has_src = 0;
        s->src_first = s->src_last = 0;
        return 0;
    }
    size_t n = sc_ipv4(v, &first);
    if (n == 0) {
        sc_err(err, errlen, "%s", want);
        return -EINVAL;
    }
    const char *p = v + n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == 0) {
        last = first;
    } else {
        if (*p++ != '-') {
            sc_err(err, errlen, "%s", want);
            return -EINVAL;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        n = sc_ipv4(p, &last);
        if (n == 0 || p[n] != 0) {
            sc_err(err, errlen, "%s", want);
            return -EINVAL;
        }
        if (last < first) {
            char a[16], b[16];
            sc_ipv4_text(a, sizeof(a), first);
            sc_ipv4_text(b, sizeof(b), last);
            sc_err(err, errlen, "the range is reversed: %s is above %s", a, b);
            return -EINVAL;
        }
    }
    s->has_src = 1;
    s->src_first = first;
    s->src_last = last;
    return 0;
}

/* ---- URLs ------------------------------------------------------------------- */

static int sc_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* Path bytes: visible ASCII but '#' (a fragment is never sent) and braces
 * outside "{ch}"; bytes >= 0x80 pass, as in the server's parser. */
static int sc_path_char(unsigned char c)
{
    return (c > 0x20 && c < 0x7f && c != '#') || c >= 0x80;
}

int scenario_url_parse(struct scenario_url *u, const char *text, int need_ch, int http_only,
                       char *err, size_t errlen)
{
    static const struct {
        const char *prefix;
        enum scenario_scheme scheme;
        uint16_t port;
    } schemes[] = {{"http://", SCENARIO_HTTP, 80},
                   {"https://", SCENARIO_HTTPS, 443},
                   {"ws://", SCENARIO_WS, 80},
                   {"wss://", SCENARIO_WSS, 443}};
    struct scenario_url r;
    memset(&r, 0, sizeof(r));
    size_t len = strlen(text);
    if (len >= sizeof(r.text)) {
        sc_err(err, errlen, "longer than %d bytes", SCENARIO_URL_MAX - 1);
        return -EINVAL;
    }
    memcpy(r.text, text, len + 1);

    size_t i, nschemes = http_only ? 2 : 4;
    for (i = 0; i < nschemes; i++)
        if (strncmp(text, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
            break;
    if (i == nschemes) {
        sc_err(err, errlen, "the scheme must be %s",
               http_only ? "http:// or https://" : "http://, https://, ws:// or wss://");
        return -EINVAL;
    }
    r.scheme = schemes[i].scheme;
    r.tls = r.scheme == SCENARIO_HTTPS || r.scheme == SCENARIO_WSS;
    r.port = schemes[i].port;
    const char *p = text + strlen(schemes[i].prefix), *h = p;

    size_t hlen;
    if (*p == '[') {
        /* An IPv6 literal: hex digits, colons and dots (an embedded IPv4). */
        const char *q = ++p;
        while ((*q >= '0' && *q <= '9') || ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'f') ||
               *q == ':' || *q == '.')
            q++;
        if (*q != ']' || q == p || memchr(p, ':', (size_t)(q - p)) == NULL) {
            sc_err(err, errlen, "a bracketed host must be an IPv6 address, like [::1]");
            return -EINVAL;
        }
        h = p;
        hlen = (size_t)(q - p);
        p = q + 1;
    } else {
        while (sc_host_char(*p))
            p++;
        hlen = (size_t)(p - h);
        if (hlen == 0 || (*p != ':' && *p != '/' && *p != 0)) {
            sc_err(err, errlen, "expected a host name or address after the scheme");
            return -EINVAL;
        }
    }
    if (hlen >= sizeof(r.host)) {
        sc_err(err, errlen, "the host name is longer than %d bytes", SCENARIO_HOST_MAX - 1);
        return -EINVAL;
    }
    memcpy(r.host, h, hlen);

    if (*p == ':') {
        unsigned port = 0, digits = 0;
        for (p++; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
            port = port * 10 + (unsigned)(*p - '0');
        if (digits == 0 || digits > 5 || port == 0 || port > 65535) {
            sc_err(err, errlen, "the port must be a number from 1 to 65535");
            return -EINVAL;
        }
        r.port = (uint16_t)port;
    }
    if (*p != '/') {
        sc_err(err, errlen, "expected a path starting with / after the host%s",
               need_ch ? ", containing {ch}" : "");
        return -EINVAL;
    }
    int has_ch = 0;
    for (const char *q = p; *q; q++) {
        if (*q == '{' || *q == '}') {
            if (strncmp(q, "{ch}", 4) != 0) {
                sc_err(err, errlen, "braces in the path may only form {ch}, the channel name");
                return -EINVAL;
            }
            has_ch = 1;
            q += 3;
            continue;
        }
        if (!sc_path_char((unsigned char)*q)) {
            sc_err(err, errlen, "the path may not contain %s",
                   *q == '#' ? "a fragment (#)" : "blanks or control characters");
            return -EINVAL;
        }
    }
    if (need_ch && !has_ch) {
        sc_err(err, errlen, "the path must contain {ch}, where the channel name goes");
        return -EINVAL;
    }
    snprintf(r.path, sizeof(r.path), "%s", p);
    *u = r;
    return 0;
}

size_t scenario_url_path(const struct scenario_url *u, const char *ch, char *out, size_t cap)
{
    size_t n = 0, chlen = strlen(ch);
    for (const char *p = u->path; *p;) {
        const char *piece = p;
        size_t plen = 1;
        if (strncmp(p, "{ch}", 4) == 0) {
            piece = ch;
            plen = chlen;
            p += 4;
        } else {
            p++;
        }
        for (size_t k = 0; k < plen; k++, n++)
            if (n + 1 < cap)
                out[n] = piece[k];
    }
    if (cap)
        out[n < cap ? n : cap - 1] = 0;
    return n;
}

size_t scenario_channel_name(const struct scenario *s, uint32_t i, char *out, size_t cap)
{
    uint64_t global = s->shard_count > 1 ? (uint64_t)i * s->shard_count + s->shard_index : i;
    int n = snprintf(out, cap, "%s%llu", s->channel_prefix, (unsigned long long)global);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- setting one key ----------------------------------------------------------- */

/* Writes "expected ..." for a numeric key into err. */
static void sc_expected(const struct scenario_key *k, char *err, size_t errlen)
{
    char lo[32], hi[32];
    switch (k->type) {
    case SC_COUNT:
        if (k->size == sizeof(uint64_t))
            sc_err(err, errlen, "expected a whole number from 0 to %llu (e.g. %s)",
                   (unsigned long long)UINT64_MAX, k->example);
        else
            sc_err(err, errlen, "expected a whole number of %s from %.0f to %.0f (e.g. %s)",
                   k->noun, k->lo, k->hi, k->example);
        break;
    case SC_REAL:
        sc_err(err, errlen, "expected a number of %s from %g to %g%s (e.g. %s)", k->noun, k->lo,
               k->hi, k->optional ? ", or nothing" : "", k->example);
        break;
    case SC_DURATION:
        sc_format_duration(lo, sizeof(lo), (uint64_t)k->lo);
        sc_format_duration(hi, sizeof(hi), (uint64_t)k->hi);
        if (k->lo == 0)
            snprintf(lo, sizeof(lo), "0");
        sc_err(err, errlen,
               "expected a duration from %s to %s: a number of %s, or one with a unit "
               "ns, us, ms, s, m or h (e.g. %s)",
               lo, hi, k->unit == NS_S ? "seconds" : "milliseconds", k->example);
        break;
    case SC_SIZE:
        sc_err(err, errlen,
               "expected a size in bytes from %.0f to %.0f, optionally with k or m (x1024) "
               "(e.g. %s)",
               k->lo, k->hi, k->example);
        break;
    default:
        break;
    }
}

/* Checks value for key k and stores it in *s. On error writes what was
 * expected to err and leaves *s as it was. */
static int sc_apply(struct scenario *s, const struct scenario_key *k, const char *v, char *err,
                    size_t errlen)
{
    char *field = (char *)s + k->off;
    uint64_t u;
    double d;
    size_t i;
    switch (k->type) {
    case SC_COUNT:
        if (sc_parse_count(v, &u) < 0 || (double)u < k->lo || (double)u > k->hi)
            break;
        if (k->size == sizeof(uint64_t))
            memcpy(field, &u, sizeof(u));
        else {
            uint32_t u32 = (uint32_t)u;
            memcpy(field, &u32, sizeof(u32));
        }
        return 0;
    case SC_REAL:
        if (k->optional && v[0] == 0) {
            d = -1;
            memcpy(field, &d, sizeof(d));
            return 0;
        }
        if (sc_parse_real(v, &d) < 0 || d < k->lo || d > k->hi)
            break;
        memcpy(field, &d, sizeof(d));
        return 0;
    case SC_DURATION:
        if (sc_parse_duration(v, k->unit, &u) < 0 || (double)u < k->lo || (double)u > k->hi)
            break;
        memcpy(field, &u, sizeof(u));
        return 0;
    case SC_SIZE:
        if (sc_parse_size(v, &u) < 0 || (double)u < k->lo || (double)u > k->hi)
            break;
        uint32_t u32 = (uint32_t)u;
        memcpy(field, &u32, sizeof(u32));
        return 0;
    case SC_ENUM: {
        char list[128];
        size_t n = 0;
        for (i = 0; k->names[i]; i++) {
            if (strcmp(v, k->names[i]) == 0) {
                int e = (int)i;
                memcpy(field, &e, sizeof(e));
                return 0;
            }
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
                                  i == 0            ? ""
                                  : k->names[i + 1] ? ", "
                                                    : " or ",
                                  k->names[i]);
        }
        sc_err(err, errlen, "expected %s", list);
        return -EINVAL;
    }
    case SC_URL: {
        char why[160];
        struct scenario_url url;
        if (scenario_url_parse(&url, v, 1, k->url_mode == URL_HTTP_ONLY, why, sizeof(why)) < 0) {
            sc_err(err, errlen, "%s (e.g. %s)", why, k->example);
            return -EINVAL;
        }
        memcpy(field, &url, sizeof(url));
        return 0;
    }
    case SC_SRC: {
        struct scenario t = *s;
        if (sc_parse_src(&t, v, err, errlen) < 0)
            return -EINVAL;
        s->has_src = t.has_src;
        s->src_first = t.src_first;
        s->src_last = t.src_last;
        return 0;
    }
    case SC_RANGE: {
        uint64_t a, b;
        const char *dash = strchr(v, '-');
        char first[32];
        if (v[0] == 0) {
            s->subs_min = s->subs_max = 0;
            return 0;
        }
        if (dash && (size_t)(dash - v) < sizeof(first)) {
            memcpy(first, v, (size_t)(dash - v));
            first[dash - v] = 0;
            if (sc_parse_count(first, &a) == 0 && sc_parse_count(dash + 1, &b) == 0 && a <= b &&
                b >= 1 && b <= 1000000) {
                s->subs_min = (uint32_t)a;
                s->subs_max = (uint32_t)b;
                return 0;
            }
        }
        sc_err(err, errlen,
               "expected A-B, subscribers per channel from A to B (0 <= A <= B, 1 <= B <= "
               "1000000), or nothing (e.g. %s)",
               k->example);
        return -EINVAL;
    }
    case SC_SHARD: {
        uint64_t a, b;
        const char *slash = strchr(v, '/');
        char first[32];
        if (slash && (size_t)(slash - v) < sizeof(first)) {
            memcpy(first, v, (size_t)(slash - v));
            first[slash - v] = 0;
            if (sc_parse_count(first, &a) == 0 && sc_parse_count(slash + 1, &b) == 0 && b >= 1 &&
                b <= 1024 && a < b) {
                s->shard_index = (uint32_t)a;
                s->shard_count = (uint32_t)b;
                return 0;
            }
        }
        sc_err(err, errlen, "expected I/N, slice I (from 0) of N (1 to 1024), I < N (e.g. %s)",
               k->example);
        return -EINVAL;
    }
    case SC_FILE: {
        size_t n = strlen(v);
        if (n >= SCENARIO_PATH_MAX) {
            sc_err(err, errlen, "expected a file name shorter than %d bytes", SCENARIO_PATH_MAX);
            return -EINVAL;
        }
        /* What a file line could not say: blanks at the ends are trimmed and
         * a '#' after a blank starts a comment (and "key = #x" has one), so
         * refuse them here too. */
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char)v[i];
            if (c < 0x20 || c == 0x7f ||
                (c == '#' && (i == 0 || v[i - 1] == ' ' || v[i - 1] == '\t')))
                break;
        }
        if (i < n ||
            (n > 0 && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t'))) {
            sc_err(err, errlen,
                   "expected a file name without control characters, blanks at either end, or a "
                   "'#' at the start or after a blank");
            return -EINVAL;
        }
        memcpy(field, v, n + 1);
        return 0;
    }
    case SC_NAME: {
        size_t n = strlen(v);
        for (i = 0; i < n; i++)
            if (!sc_host_char(v[i]) && v[i] != ':')
                break;
        if (n == 0 || n > SCENARIO_PREFIX_MAX || i < n) {
            sc_err(err, errlen, "expected 1 to %d bytes of A-Z a-z 0-9 _ . : - (e.g. %s)",
                   SCENARIO_PREFIX_MAX, k->example);
            return -EINVAL;
        }
        memcpy(field, v, n + 1);
        return 0;
    }
    }
    sc_expected(k, err, errlen);
    return -EINVAL;
}

/* ---- key names ------------------------------------------------------------------ */

/* Finds a key given with dashes or underscores. */
static const struct scenario_key *sc_find(const char *name, size_t n)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *k = keys[i].doc.name;
        size_t j;
        for (j = 0; j < n && k[j]; j++)
            if (k[j] != (name[j] == '-' ? '_' : name[j]))
                break;
        if (j == n && k[j] == 0)
            return &keys[i];
    }
    return NULL;
}

/* Edit distance, dashes read as underscores, capped (names are short). */
static size_t sc_distance(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b), row[40];
    if (an >= 39 || bn >= 39)
        return 99;
    for (size_t j = 0; j <= bn; j++)
        row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            char ca = a[i - 1] == '-' ? '_' : a[i - 1];
            size_t up = row[j];
            size_t best = diag + (ca != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

/* The known key closest to name, if it is a plausible typo of it. */
static const char *sc_suggest(const char *name, size_t n)
{
    const char *best = NULL;
    size_t bestd = 99;
    for (size_t i = 0; i < NKEYS; i++) {
        size_t d = sc_distance(name, n, keys[i].doc.name);
        if (d < bestd) {
            bestd = d;
            best = keys[i].doc.name;
        }
    }
    return bestd <= (n < 5 ? 1u : 2u) ? best : NULL;
}

/* ---- public entry points -------------------------------------------------------- */

void scenario_init(struct scenario *s)
{
    char err[SCENARIO_ERR_MAX];
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < NKEYS; i++)
        if (sc_apply(s, &keys[i], keys[i].doc.def, err, sizeof(err)) < 0)
            FATAL("scenario: default of %s is invalid: %s", keys[i].doc.name, err);
}

int scenario_set(struct scenario *s, const char *key, const char *value, char *err, size_t errlen)
{
    char flag[64], shown[80], why[SCENARIO_ERR_MAX];
    if (strncmp(key, "--", 2) == 0)
        key += 2;
    size_t n = strlen(key);
    /* The flag as the user would type it, for messages. */
    size_t f = 0;
    for (size_t i = 0; i < n && f + 1 < sizeof(flag); i++) {
        unsigned char c = (unsigned char)key[i];
        flag[f++] = c == '_' ? '-' : c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    flag[f] = 0;
    const struct scenario_key *k = sc_find(key, n);
    if (k == NULL) {
        const char *hint = sc_suggest(key, n);
        char dashed[64] = "";
        for (size_t i = 0; hint && hint[i] && i + 1 < sizeof(dashed); i++)
            dashed[i] = hint[i] == '_' ? '-' : hint[i], dashed[i + 1] = 0;
        if (hint)
            sc_err(err, errlen, "--%s: unknown option (did you mean --%s?)", flag, dashed);
        else
            sc_err(err, errlen, "--%s: unknown option (--help lists them)", flag);
        return -EINVAL;
    }
    if (value == NULL) {
        sc_err(err, errlen, "--%s: missing value", flag);
        return -EINVAL;
    }
    if (sc_apply(s, k, value, why, sizeof(why)) < 0) {
        sc_show(shown, sizeof(shown), value, strlen(value));
        sc_err(err, errlen, "--%s %s: %s", flag, shown, why);
        return -EINVAL;
    }
    return 0;
}

static int sc_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int scenario_parse(struct scenario *s, const char *text, size_t len, char *err, size_t errlen)
{
    unsigned seen_line[NKEYS] = {0};
    char value[SCENARIO_VALUE_MAX], shown[80], why[SCENARIO_ERR_MAX];
    const char *p = text, *end = text + len;
    scenario_init(s);
    if (errlen)
        err[0] = 0;
    for (unsigned line = 1; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        const char *b = p, *e = eol;
        p = eol < end ? eol + 1 : end;
        if (memchr(b, 0, (size_t)(e - b)) != NULL) {
            sc_err(err, errlen, "line %u: contains a NUL byte", line);
            return -EINVAL;
        }
        while (b < e && sc_blank(*b))
            b++;
        /* A comment starts at a '#' that begins the line or follows a blank. */
        for (const char *c = b; c < e; c++)
            if (*c == '#' && (c == b || sc_blank(c[-1]))) {
                e = c;
                break;
            }
        while (e > b && sc_blank(e[-1]))
            e--;
        if (b == e)
            continue;
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (eq == NULL) {
            sc_show(shown, sizeof(shown), b, (size_t)(e - b));
            sc_err(err, errlen, "line %u: %s: expected key = value", line, shown);
            return -EINVAL;
        }
        const char *ke = eq, *vb = eq + 1;
        while (ke > b && sc_blank(ke[-1]))
            ke--;
        while (vb < e && sc_blank(*vb))
            vb++;
        size_t klen = (size_t)(ke - b), vlen = (size_t)(e - vb);
        sc_show(shown, sizeof(shown), b, klen);
        const struct scenario_key *k = klen ? sc_find(b, klen) : NULL;
        if (k == NULL) {
            const char *hint = klen ? sc_suggest(b, klen) : NULL;
            if (klen == 0)
                sc_err(err, errlen, "line %u: expected key = value, the key is missing", line);
            else if (hint)
                sc_err(err, errlen, "line %u: %s: unknown key (did you mean %s?)", line, shown,
                       hint);
            else
                sc_err(err, errlen, "line %u: %s: unknown key (ringload --help lists them)", line,
                       shown);
            return -EINVAL;
        }
        size_t ki = (size_t)(k - keys);
        if (seen_line[ki]) {
            sc_err(err, errlen, "line %u: %s given twice (first on line %u)", line, k->doc.name,
                   seen_line[ki]);
            return -EINVAL;
        }
        seen_line[ki] = line;
        if (vlen >= sizeof(value)) {
            sc_err(err, errlen, "line %u: %s: the value is longer than %d bytes", line, k->doc.name,
                   SCENARIO_VALUE_MAX - 1);
            return -EINVAL;
        }
        memcpy(value, vb, vlen);
        value[vlen] = 0;
        if (sc_apply(s, k, value, why, sizeof(why)) < 0) {
            sc_show(shown, sizeof(shown), vb, vlen);
            sc_err(err, errlen, "line %u: %s = %s: %s", line, k->doc.name, shown, why);
            return -EINVAL;
        }
    }
    return 0;
}

int scenario_check(const struct scenario *s, char *err, size_t errlen)
{
    uint64_t clients = (uint64_t)s->sse + s->ws + s->longpoll + s->poll + s->publishers;
    if (clients == 0) {
        sc_err(err, errlen,
               "nothing to run: sse, ws, longpoll, poll and publishers are all 0 (e.g. sse = 100)");
        return -EINVAL;
    }
    if (s->publish_rate > 0 && s->publishers == 0) {
        sc_err(err, errlen,
               "publish_rate = %g needs publishers of at least 1 (or publish_rate = 0)",
               s->publish_rate);
        return -EINVAL;
    }
    if (s->publish_ws && s->publish_rate > 0 && s->publishers < s->channels) {
        sc_err(err, errlen,
               "publish_via = ws needs publishers >= channels (%u < %u): a message sent on a "
               "WebSocket goes to every channel of that connection, so each publisher has one",
               s->publishers, s->channels);
        return -EINVAL;
    }
    if (s->publish_ws && s->poll) {
        sc_err(err, errlen,
               "publish_via = ws cannot be checked with short pollers (poll = %u): a WebSocket "
               "publish has no answer saying every worker holds it",
               s->poll);
        return -EINVAL;
    }
    if (s->ws_nchan && s->publish_ws) {
        sc_err(err, errlen,
               "ws_protocol = nchan with publish_via = ws: a WebSocket publisher's acknowledgement "
               "is its own ringcast.json message back (use publish_via = http)");
        return -EINVAL;
    }
    if ((s->ws_nchan || s->poll_nchan) && s->resume != SCENARIO_RESUME_NONE) {
        sc_err(err, errlen,
               "resume = %s with ws_protocol or poll_protocol = nchan: ringload resumes with "
               "ringcast's since or a decimal Last-Event-ID only (use resume = none)",
               resume_names[s->resume]);
        return -EINVAL;
    }
    if (s->churn_ns && !s->reconnect) {
        sc_err(err, errlen, "churn needs reconnect = on: a subscriber that drops must come back");
        return -EINVAL;
    }
    if (s->role != SCENARIO_ROLE_BOTH && s->start_at < 0) {
        sc_err(err, errlen,
               "role = %s needs start_at (Unix seconds, the same in every process of the run): "
               "the subscribers know what to expect only from the publishers' schedule "
               "(e.g. start_at = $(( $(date +%%s) + 10 )))",
               role_names[s->role]);
        return -EINVAL;
    }
    if (s->role == SCENARIO_ROLE_SUBSCRIBE && s->publish_ws) {
        sc_err(err, errlen,
               "role = subscribe with publish_via = ws: a WebSocket publisher's echo is its "
               "acknowledgement, so it must run with its subscribers (role = both)");
        return -EINVAL;
    }
    if (s->role == SCENARIO_ROLE_PUBLISH && s->publish_rate <= 0) {
        sc_err(err, errlen, "role = publish with publish_rate = 0: nothing to do");
        return -EINVAL;
    }
    return 0;
}

size_t scenario_format(const struct scenario *s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct scenario_key *k = &keys[i];
        const char *field = (const char *)s + k->off;
        char v[SCENARIO_PATH_MAX + 64];
        uint64_t u = 0;
        double d;
        uint32_t u32;
        int e;
        switch (k->type) {
        case SC_COUNT:
            if (k->size == sizeof(uint64_t)) {
                memcpy(&u, field, sizeof(u));
            } else {
                memcpy(&u32, field, sizeof(u32));
                u = u32;
            }
            snprintf(v, sizeof(v), "%llu", (unsigned long long)u);
            break;
        case SC_SIZE:
            memcpy(&u32, field, sizeof(u32));
            snprintf(v, sizeof(v), "%u", u32);
            break;
        case SC_REAL:
            memcpy(&d, field, sizeof(d));
            if (k->optional && d < 0)
                v[0] = 0;
            else
                snprintf(v, sizeof(v), "%.17g", d);
            break;
        case SC_SHARD:
            snprintf(v, sizeof(v), "%u/%u", s->shard_index, s->shard_count);
            break;
        case SC_RANGE:
            v[0] = 0;
            if (s->subs_max)
                snprintf(v, sizeof(v), "%u-%u", s->subs_min, s->subs_max);
            break;
        case SC_DURATION:
            memcpy(&u, field, sizeof(u));
            sc_format_duration(v, sizeof(v), u);
            break;
        case SC_ENUM:
            memcpy(&e, field, sizeof(e));
            snprintf(v, sizeof(v), "%s", k->names[e]);
            break;
        case SC_URL:
            snprintf(v, sizeof(v), "%s", ((const struct scenario_url *)(const void *)field)->text);
            break;
        case SC_SRC:
            v[0] = 0;
            if (s->has_src) {
                char a[16], b[16];
                sc_ipv4_text(a, sizeof(a), s->src_first);
                sc_ipv4_text(b, sizeof(b), s->src_last);
                snprintf(v, sizeof(v), "%s-%s", a, b);
            }
            break;
        case SC_FILE:
        case SC_NAME:
            snprintf(v, sizeof(v), "%s", field);
            break;
        }
        int w =
            snprintf(out + (n < cap ? n : 0), n < cap ? cap - n : 0, "%s = %s\n", k->doc.name, v);
        n += (size_t)(w > 0 ? w : 0);
    }
    return n;
}

/* How many of 0 .. n-1 are congruent to index modulo count. */
static uint64_t sc_slice_count(uint64_t n, uint32_t index, uint32_t count)
{
    return n > index ? (n - index + count - 1) / count : 0;
}

/* Subscribers of one kind in the slice: client j of the full run sits on
 * channel j mod channels (round-robin), so the slice holds those whose
 * channel is its own; random spread is split in the same proportion. */
static uint32_t sc_slice_subs(const struct scenario *full, uint32_t n)
{
    uint32_t i = full->shard_index, k = full->shard_count;
    if (full->spread == SCENARIO_SPREAD_ONE)
        return i == 0 ? n : 0; /* everyone is on channel 0, which slice 0 owns */
    uint64_t per = n / full->channels, rest = n % full->channels;
    return (uint32_t)(per * sc_slice_count(full->channels, i, k) + sc_slice_count(rest, i, k));
}

int scenario_slice(const struct scenario *full, struct scenario *out, char *err, size_t errlen)
{
    uint32_t i = full->shard_index, k = full->shard_count;
    *out = *full;
    if (k <= 1)
        return 0;
    if (k > full->channels) {
        sc_err(err, errlen,
               "shard = %u/%u: every shard needs a channel of its own, and channels = %u "
               "(use at most %u shards or procs, or more channels)",
               i, k, full->channels, full->channels);
        return -EINVAL;
    }
    uint32_t chans = (uint32_t)sc_slice_count(full->channels, i, k);
    out->channels = chans;
    out->sse = sc_slice_subs(full, full->sse);
    out->ws = sc_slice_subs(full, full->ws);
    out->longpoll = sc_slice_subs(full, full->longpoll);
    out->poll = sc_slice_subs(full, full->poll);
    /* Each channel keeps its rate, so the slice publishes its share. */
    out->publish_rate = full->publish_rate * chans / full->channels;
    uint32_t pubs = (uint32_t)sc_slice_count(full->publishers, i, k);
    if (pubs == 0 && full->publishers > 0 && full->publish_rate > 0)
        pubs = 1; /* a slice's channels need a publisher of their own */
    out->publishers = pubs < chans ? pubs : chans;
    out->seed = full->seed + (uint64_t)i * 0x9e3779b97f4a7c15ull;
    out->procs = 1;
    return 0;
}
