/*
 * test_scenario.c: unit tests for scenario files and flags.
 *
 * Table-driven: every key with values it must accept (and how it writes them
 * back) and values it must refuse (and what the message must say), through
 * scenario_set as a flag and through scenario_parse as a file line. Then the
 * defaults, durations with units, URL templates, source ranges, comments and
 * blanks, duplicate and unknown keys with their hints, the cross-key check,
 * and that scenario_format writes what scenario_parse reads back.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

/* The value line "key = ..." of scenario_format's output, without the key. */
static const char *formatted(const struct scenario *s, const char *key, char *buf, size_t cap)
{
    char text[16384], pat[64];
    cr_assert(scenario_format(s, text, sizeof(text)) < sizeof(text));
    snprintf(pat, sizeof(pat), "\n%s = ", key);
    char tmp[16400];
    snprintf(tmp, sizeof(tmp), "\n%s", text);
    const char *p = strstr(tmp, pat);
    cr_assert_not_null(p, "key %s not in the formatted text", key);
    p += strlen(pat);
    const char *e = strchr(p, '\n');
    snprintf(buf, cap, "%.*s", (int)(e - p), p);
    return buf;
}

/* ---- every key: accepted values ------------------------------------------------- */

struct good {
    const char *key, *value, *written;
};

static const struct good goods[] = {
    {"sse", "0", "0"},
    {"sse", "10000000", "10000000"},
    {"ws", "5", "5"},
    {"longpoll", "7", "7"},
    {"poll", "3", "3"},
    {"publishers", "0", "0"},
    {"publishers", "100000", "100000"},
    {"channels", "1", "1"},
    {"channels", "10000000", "10000000"},
    {"channel_prefix", "news-", "news-"},
    {"channel_prefix", "a.b:c_D9", "a.b:c_D9"},
    {"spread", "random", "random"},
    {"spread", "one", "one"},
    {"spread", "round-robin", "round-robin"},
    {"ramp", "0", "0"},
    {"ramp", "2.5", "2.5"},
    {"ramp", "1e3", "1000"},
    {"ramp", "10000000", "10000000"},
    {"poll_interval", "250", "250ms"},
    {"poll_interval", "1s", "1s"},
    {"poll_interval", "1.5s", "1500ms"},
    {"poll_interval", "1ms", "1ms"},
    {"poll_interval", "1h", "1h"},
    {"jitter_pct", "0", "0"},
    {"jitter_pct", "100", "100"},
    {"jitter_pct", "12.5", "12.5"},
    {"publish_rate", "0", "0"},
    {"publish_rate", "0.5", "0.5"},
    {"publish_rate", "250000", "250000"},
    {"message_size", "32", "32"},
    {"message_size", "4k", "4096"},
    {"message_size", "2KiB", "2048"},
    {"message_size", "1M", "1048576"},
    {"message_size", "64m", "67108864"},
    {"warmup", "0", "0ns"},
    {"warmup", "2.5", "2500ms"},
    {"warmup", "500ms", "500ms"},
    {"warmup", "90s", "90s"},
    {"warmup", "1h", "1h"},
    {"duration", "30s", "30s"},
    {"duration", "2m", "2m"},
    {"duration", "0.1", "100ms"},
    {"duration", "24h", "24h"},
    {"duration", "1.0000000005", "1000000001ns"},
    {"sub_url", "ws://[::1]:9000/sub/{ch}", "ws://[::1]:9000/sub/{ch}"},
    {"sub_url", "https://example.com/sub/{ch}?since=0", "https://example.com/sub/{ch}?since=0"},
    {"pub_url", "https://10.1.2.3:8443/pub/{ch}", "https://10.1.2.3:8443/pub/{ch}"},
    {"poll_url", "http://localhost/poll/{ch}", "http://localhost/poll/{ch}"},
    {"resume", "last-event-id", "last-event-id"},
    {"resume", "since", "since"},
    {"resume", "none", "none"},
    {"reconnect", "on", "on"},
    {"reconnect", "off", "off"},
    {"backoff_ms", "0", "0ns"},
    {"backoff_ms", "250", "250ms"},
    {"backoff_ms", "1.5s", "1500ms"},
    {"churn", "0", "0ns"},
    {"churn", "30", "30s"},
    {"churn", "250ms", "250ms"},
    {"ws_deflate", "on", "on"},
    {"ws_deflate", "off", "off"},
    {"publish_via", "ws", "ws"},
    {"publish_via", "http", "http"},
    {"ws_protocol", "nchan", "nchan"},
    {"ws_protocol", "ringcast", "ringcast"},
    {"poll_protocol", "nchan", "nchan"},
    {"poll_protocol", "ringcast", "ringcast"},
    {"tls_ca", "certs/root ca.pem", "certs/root ca.pem"},
    {"tls_ca", "", ""},
    {"tls_insecure", "on", "on"},
    {"tls_insecure", "off", "off"},
    {"src", "127.0.0.2-127.0.0.250", "127.0.0.2-127.0.0.250"},
    {"src", "10.0.0.1", "10.0.0.1-10.0.0.1"},
    {"src", "10.0.0.1 - 10.0.0.5", "10.0.0.1-10.0.0.5"},
    {"src", "0.0.0.0-255.255.255.255", "0.0.0.0-255.255.255.255"},
    {"src", "none", ""},
    {"src", "", ""},
    {"procs", "1", "1"},
    {"procs", "1024", "1024"},
    {"threads", "0", "0"},
    {"threads", "1024", "1024"},
    {"seed", "0", "0"},
    {"seed", "18446744073709551615", "18446744073709551615"},
    {"json", "out/result.json", "out/result.json"},
    {"json", "", ""},
    {"compare", "results/base line#1.json", "results/base line#1.json"},
    {"max_regress", "0", "0"},
    {"max_regress", "1000", "1000"},
    {"max_regress", "2.5", "2.5"},
    {"max_regress_latency", "200", "200"},
    {"max_regress_latency", "", ""},
    {"max_regress_memory", "0", "0"},
    {"max_regress_cpu", "12.5", "12.5"},
    {"max_regress_rate", "100000", "100000"},
    {"shard", "0/1", "0/1"},
    {"shard", "3/4", "3/4"},
    {"shard", "1023/1024", "1023/1024"},
    {"hdr_log", "lat.hlog", "lat.hlog"},
    {"hdr_log", "", ""},
    {"subs_per_channel", "1-10", "1-10"},
    {"subs_per_channel", "0-1", "0-1"},
    {"subs_per_channel", "5-5", "5-5"},
    {"subs_per_channel", "", ""},
    {"publish_order", "random", "random"},
    {"publish_order", "sequential", "sequential"},
    {"role", "subscribe", "subscribe"},
    {"role", "publish", "publish"},
    {"role", "both", "both"},
    {"clock", "realtime", "realtime"},
    {"clock", "monotonic", "monotonic"},
    {"start_at", "1795000000.5", "1795000000.5"},
    {"start_at", "0", "0"},
    {"start_at", "", ""},
};

static void check_covers_every_key(const char *const *names, size_t n)
{
    for (size_t i = 0; scenario_key(i) != NULL; i++) {
        size_t j;
        for (j = 0; j < n; j++)
            if (strcmp(names[j], scenario_key(i)->name) == 0)
                break;
        cr_assert(j < n, "no test for key %s", scenario_key(i)->name);
    }
}

Test(scenario, every_key_accepts)
{
    const char *names[sizeof(goods) / sizeof(goods[0])];
    for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
        const struct good *g = &goods[i];
        names[i] = g->key;
        struct scenario s;
        char err[SCENARIO_ERR_MAX] = "", got[1200], text[2048];
        /* As a flag, with dashes. */
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", g->key);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        scenario_init(&s);
        cr_assert_eq(scenario_set(&s, flag, g->value, err, sizeof(err)), 0, "%s %s: %s", flag,
                     g->value, err);
        cr_assert_str_eq(formatted(&s, g->key, got, sizeof(got)), g->written, "%s %s", flag,
                         g->value);
        /* As a file line, after a comment. */
        snprintf(text, sizeof(text), "# test\n%s = %s\n", g->key, g->value);
        cr_assert_eq(scenario_parse(&s, text, strlen(text), err, sizeof(err)), 0, "%s", err);
        cr_assert_str_eq(formatted(&s, g->key, got, sizeof(got)), g->written);
    }
    check_covers_every_key(names, sizeof(goods) / sizeof(goods[0]));
}

/* ---- every key: refused values ---------------------------------------------------- */

struct bad {
    const char *key, *value, *says;
};

static const struct bad bads[] = {
    {"sse", "-1", "expected a whole number of SSE subscribers from 0 to 10000000 (e.g. 1000)"},
    {"sse", "1.5", "whole number"},
    {"sse", "abc", "whole number"},
    {"sse", "", "whole number"},
    {"sse", "10000001", "from 0 to 10000000"},
    {"sse", "1e3", "whole number"},
    {"sse", "0x10", "whole number"},
    {"sse", "+5", "whole number"},
    {"sse", "99999999999999999999999", "whole number"},
    {"ws", "many", "WebSocket subscribers"},
    {"longpoll", "-3", "long-poll subscribers"},
    {"poll", "1 000", "short-poll clients"},
    {"publishers", "100001", "publisher connections from 0 to 100000"},
    {"channels", "0", "channels from 1 to 10000000"},
    {"channel_prefix", "", "expected 1 to 100 bytes of A-Z a-z 0-9 _ . : -"},
    {"channel_prefix", "a/b", "A-Z a-z"},
    {"channel_prefix", "caf\xc3\xa9", "A-Z a-z"},
    {"channel_prefix",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aa"
     "aaaaaa",
     "1 to 100 bytes"},
    {"spread", "rr", "expected round-robin, random or one"},
    {"spread", "Round-Robin", "expected round-robin, random or one"},
    {"ramp", "-1", "expected a number of connections per second from 0 to 1e+07 (e.g. 500)"},
    {"ramp", "fast", "connections per second"},
    {"ramp", "1e8", "connections per second"},
    {"ramp", "inf", "connections per second"},
    {"ramp", "nan", "connections per second"},
    {"ramp", "1e400", "connections per second"},
    {"ramp", "1.", "connections per second"},
    {"ramp", ".5", "connections per second"},
    {"poll_interval", "0",
     "expected a duration from 1ms to 1h: a number of milliseconds, or one with a unit ns, us, "
     "ms, s, m or h (e.g. 250ms)"},
    {"poll_interval", "0.5ms", "from 1ms to 1h"},
    {"poll_interval", "2h", "from 1ms to 1h"},
    {"poll_interval", "5 s", "duration"},
    {"poll_interval", "5sec", "duration"},
    {"poll_interval", "5S", "duration"},
    {"poll_interval", "1e3", "duration"},
    {"jitter_pct", "101", "percent from 0 to 100"},
    {"jitter_pct", "-5", "percent"},
    {"publish_rate", "fast",
     "expected a number of messages per second from 0 to 1e+07 (e.g. 1000)"},
    {"message_size", "31", "expected a size in bytes from 32 to 67108864"},
    {"message_size", "65M", "size in bytes"},
    {"message_size", "4kb", "size in bytes"},
    {"message_size", "1.5k", "size in bytes"},
    {"message_size", "99999999999999999999k", "size in bytes"},
    {"warmup", "3601s", "expected a duration from 0 to 1h: a number of seconds"},
    {"warmup", "-1", "duration"},
    {"duration", "50ms", "from 100ms to 24h"},
    {"duration", "25h", "from 100ms to 24h"},
    {"duration", "99999999999999999999h", "duration"},
    {"sub_url", "ftp://x/{ch}", "the scheme must be http://, https://, ws:// or wss://"},
    {"sub_url", "http://127.0.0.1:8080/sub/", "the path must contain {ch}"},
    {"pub_url", "ws://127.0.0.1/pub/{ch}",
     "the scheme must be http:// or https:// (e.g. "
     "http://127.0.0.1:8080/pub/{ch})"},
    {"poll_url", "http://h/poll", "{ch}"},
    {"resume", "last_event_id", "expected none, last-event-id or since"},
    {"reconnect", "yes", "expected off or on"},
    {"reconnect", "1", "expected off or on"},
    {"backoff_ms", "1.5h", "from 0 to 1h: a number of milliseconds"},
    {"churn", "25h", "from 0 to 24h"},
    {"churn", "-1", "from 0 to 24h"},
    {"ws_deflate", "yes", "expected off or on"},
    {"publish_via", "sse", "expected http or ws"},
    {"ws_protocol", "ws+meta.nchan", "expected ringcast or nchan"},
    {"ws_protocol", "", "expected ringcast or nchan"},
    {"poll_protocol", "NCHAN", "expected ringcast or nchan"},
    {"poll_protocol", "json", "expected ringcast or nchan"},
    {"tls_ca", "#ca.pem", "file name"},
    {"tls_insecure", "yes", "expected off or on"},
    {"src", "127.0.0.9-127.0.0.2", "the range is reversed: 127.0.0.9 is above 127.0.0.2"},
    {"src", "256.0.0.1", "expected an IPv4 address or range like 127.0.0.2-127.0.0.250"},
    {"src", "1.2.3", "IPv4"},
    {"src", "01.2.3.4", "IPv4"},
    {"src", "1.2.3.4-", "IPv4"},
    {"src", "1.2.3.4-5", "IPv4"},
    {"src", "1.2.3.4/24", "IPv4"},
    {"src", "localhost", "IPv4"},
    {"procs", "0", "processes from 1 to 1024"},
    {"procs", "1025", "processes from 1 to 1024"},
    {"threads", "1025", "threads per process from 0 to 1024"},
    {"seed", "18446744073709551616", "expected a whole number from 0 to 18446744073709551615"},
    {"seed", "-1", "whole number"},
    {"json", "a\tb", "file name"},
    {"json", " x", "file name"},
    {"json", "x ", "file name"},
    {"compare", "a #b", "file name"},
    {"compare", "#b", "file name"},
    {"max_regress", "1001", "percent from 0 to 1000"},
    {"max_regress_latency", "-1", "percent from 0 to 100000, or nothing"},
    {"max_regress_memory", "x", "percent from 0 to 100000"},
    {"max_regress_cpu", "100001", "percent from 0 to 100000"},
    {"max_regress_rate", "1%", "percent"},
    {"shard", "2/2", "expected I/N"},
    {"shard", "0/0", "expected I/N"},
    {"shard", "1", "expected I/N"},
    {"shard", "0/1025", "expected I/N"},
    {"shard", "a/2", "expected I/N"},
    {"shard", "1/2/3", "expected I/N"},
    {"hdr_log", "#x", "file name"},
    {"subs_per_channel", "10-1", "expected A-B"},
    {"subs_per_channel", "0-0", "expected A-B"},
    {"subs_per_channel", "5", "expected A-B"},
    {"subs_per_channel", "1-10-2", "expected A-B"},
    {"subs_per_channel", "-3", "expected A-B"},
    {"subs_per_channel", "1-1000001", "expected A-B"},
    {"publish_order", "shuffled", "expected sequential or random"},
    {"role", "sub", "expected both, publish or subscribe"},
    {"clock", "utc", "expected monotonic or realtime"},
    {"start_at", "now", "Unix time in seconds"},
    {"start_at", "-5", "Unix time in seconds"},
};

Test(scenario, every_key_refuses)
{
    const char *names[sizeof(bads) / sizeof(bads[0])];
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        const struct bad *b = &bads[i];
        names[i] = b->key;
        struct scenario s, before;
        char err[SCENARIO_ERR_MAX] = "", flag[64], want[SCENARIO_ERR_MAX], text[1024];
        snprintf(flag, sizeof(flag), "--%s", b->key);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        scenario_init(&s);
        before = s;
        cr_assert_eq(scenario_set(&s, flag, b->value, err, sizeof(err)), -EINVAL, "%s %s", flag,
                     b->value);
        cr_assert_eq(memcmp(&s, &before, sizeof(s)), 0, "%s changed on error", flag);
        cr_assert_not_null(strstr(err, b->says), "%s %s: \"%s\"", flag, b->value, err);
        /* The flag message starts with the flag and the value. */
        snprintf(want, sizeof(want), "%s %s: ", flag, b->value[0] ? b->value : "\"\"");
        if (strspn(b->value, " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~") == strlen(b->value) &&
            strlen(b->value) < 60)
            cr_assert_eq(strncmp(err, want, strlen(want)), 0, "\"%s\" vs \"%s\"", err, want);

        /* The same as line 3 of a file: the message names line, key and value. */
        size_t vl = strlen(b->value);
        if (strchr(b->value, '\t') || strstr(b->value, " #") || b->value[0] == '#' ||
            (vl > 0 && (b->value[0] == ' ' || b->value[vl - 1] == ' ')))
            continue; /* a file line cannot carry these */
        snprintf(text, sizeof(text), "# first\n\n%s = %s\n", b->key, b->value);
        cr_assert_eq(scenario_parse(&s, text, strlen(text), err, sizeof(err)), -EINVAL);
        snprintf(want, sizeof(want), "line 3: %s = %s: ", b->key, b->value[0] ? b->value : "\"\"");
        if (strlen(b->value) < 60 && !strchr(b->value, '\xc3'))
            cr_assert_eq(strncmp(err, want, strlen(want)), 0, "\"%s\" vs \"%s\"", err, want);
        cr_assert_not_null(strstr(err, b->says), "\"%s\"", err);
    }
    check_covers_every_key(names, sizeof(bads) / sizeof(bads[0]));
}

Test(scenario, the_issue_example)
{
    static const char text[] = "# a scenario\n"
                               "sse = 1000\n"
                               "\n"
                               "channels = 10\n"
                               "   # indented comment\n"
                               "ramp = 500\n"
                               "publish_rate = fast\n";
    struct scenario s;
    char err[SCENARIO_ERR_MAX];
    cr_assert_eq(scenario_parse(&s, text, sizeof(text) - 1, err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "line 7: publish_rate = fast: expected a number of messages per second "
                          "from 0 to 1e+07 (e.g. 1000)");
    /* What came before the bad line was applied. */
    cr_assert_eq(s.sse, 1000);
    cr_assert(s.ramp == 500);
}

/* ---- defaults ---------------------------------------------------------------------- */

Test(scenario, defaults)
{
    struct scenario s, p;
    char err[SCENARIO_ERR_MAX];
    scenario_init(&s);
    cr_assert_eq(s.sse, 100);
    cr_assert_eq(s.ws, 0);
    cr_assert_eq(s.longpoll, 0);
    cr_assert_eq(s.poll, 0);
    cr_assert_eq(s.publishers, 1);
    cr_assert_eq(s.channels, 10);
    cr_assert_str_eq(s.channel_prefix, "ch");
    cr_assert_eq(s.spread, SCENARIO_SPREAD_ROUND_ROBIN);
    cr_assert(s.ramp == 1000);
    cr_assert_eq(s.poll_interval_ns, 1000000000u);
    cr_assert(s.jitter_pct == 10);
    cr_assert(s.publish_rate == 100);
    cr_assert_eq(s.message_size, 64);
    cr_assert_eq(s.warmup_ns, 2000000000u);
    cr_assert_eq(s.duration_ns, 10000000000u);
    cr_assert_eq(s.sub_url.scheme, SCENARIO_HTTP);
    cr_assert_str_eq(s.sub_url.host, "127.0.0.1");
    cr_assert_eq(s.sub_url.port, 8080);
    cr_assert_str_eq(s.sub_url.path, "/sub/{ch}");
    cr_assert_str_eq(s.pub_url.path, "/pub/{ch}");
    cr_assert_str_eq(s.poll_url.path, "/poll/{ch}");
    cr_assert_eq(s.resume, SCENARIO_RESUME_NONE);
    cr_assert_eq(s.reconnect, 0);
    cr_assert_eq(s.backoff_ns, 100000000u);
    cr_assert_eq(s.churn_ns, 0);
    cr_assert_eq(s.ws_deflate, 0);
    cr_assert_eq(s.publish_ws, 0);
    cr_assert_eq(s.ws_nchan, 0);
    cr_assert_eq(s.poll_nchan, 0);
    cr_assert_str_eq(s.tls_ca, "");
    cr_assert_eq(s.tls_insecure, 0);
    cr_assert_eq(s.has_src, 0);
    cr_assert_eq(s.procs, 1);
    cr_assert_eq(s.threads, 0);
    cr_assert_eq(s.seed, 1);
    cr_assert_str_eq(s.json, "");
    cr_assert_str_eq(s.compare, "");
    cr_assert(s.max_regress == 10);
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), 0);

    /* An empty file, or one of comments and blanks, is the defaults. */
    static const char *empties[] = {"", "\n", "# nothing\n\n   \t\r\n  # more\r\n", "#"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        cr_assert_eq(scenario_parse(&p, empties[i], strlen(empties[i]), err, sizeof(err)), 0);
        cr_assert_eq(memcmp(&p, &s, sizeof(s)), 0);
    }

    /* The documented defaults are the ones in force. */
    for (size_t i = 0; scenario_key(i) != NULL; i++) {
        const struct scenario_key_doc *k = scenario_key(i);
        char got[1200];
        cr_assert(k->help && k->help[0] && k->type && k->type[0]);
        cr_assert_str_eq(formatted(&s, k->name, got, sizeof(got)), k->def, "%s", k->name);
    }
}

/* ---- durations ---------------------------------------------------------------------- */

Test(scenario, durations_with_units)
{
    static const struct {
        const char *key, *value;
        uint64_t ns;
    } cases[] = {
        {"warmup", "2.5", 2500000000u},
        {"warmup", "500ms", 500000000u},
        {"warmup", "30s", 30000000000u},
        {"warmup", "2m", 120000000000u},
        {"warmup", "1h", 3600000000000u},
        {"warmup", "250us", 250000u},
        {"warmup", "7ns", 7},
        {"warmup", "1.5ms", 1500000u},
        {"warmup", "0.0000000004", 0},
        {"warmup", "0.0000000005", 1},
        {"warmup", "0.1m", 6000000000u},
        {"poll_interval", "250", 250000000u},
        {"poll_interval", "2.5", 2500000u},
        {"backoff_ms", "3", 3000000u},
        {"duration", "2.5", 2500000000u},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct scenario s;
        char err[SCENARIO_ERR_MAX];
        scenario_init(&s);
        cr_assert_eq(scenario_set(&s, cases[i].key, cases[i].value, err, sizeof(err)), 0, "%s",
                     err);
        uint64_t got = strcmp(cases[i].key, "warmup") == 0          ? s.warmup_ns
                       : strcmp(cases[i].key, "poll_interval") == 0 ? s.poll_interval_ns
                       : strcmp(cases[i].key, "backoff_ms") == 0    ? s.backoff_ns
                                                                    : s.duration_ns;
        cr_assert_eq(got, cases[i].ns, "%s = %s: %llu", cases[i].key, cases[i].value,
                     (unsigned long long)got);
    }
}

/* ---- URL templates -------------------------------------------------------------------- */

Test(scenario, url_templates)
{
    static const struct {
        const char *text;
        int http_only;
        enum scenario_scheme scheme;
        int tls;
        const char *host;
        unsigned port;
        const char *path;
    } ok[] = {
        {"http://127.0.0.1:8080/sub/{ch}", 1, SCENARIO_HTTP, 0, "127.0.0.1", 8080, "/sub/{ch}"},
        {"https://example.com/pub/{ch}", 1, SCENARIO_HTTPS, 1, "example.com", 443, "/pub/{ch}"},
        {"ws://[::1]:9000/sub/{ch}", 0, SCENARIO_WS, 0, "::1", 9000, "/sub/{ch}"},
        {"wss://h/{ch}", 0, SCENARIO_WSS, 1, "h", 443, "/{ch}"},
        {"http://h/a/{ch}/b?x={ch}&y=1", 0, SCENARIO_HTTP, 0, "h", 80, "/a/{ch}/b?x={ch}&y=1"},
        {"http://my-host_1.local:1/{ch}", 1, SCENARIO_HTTP, 0, "my-host_1.local", 1, "/{ch}"},
        {"http://[::ffff:127.0.0.1]:65535/{ch}", 1, SCENARIO_HTTP, 0, "::ffff:127.0.0.1", 65535,
         "/{ch}"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct scenario_url u;
        char err[SCENARIO_ERR_MAX] = "";
        cr_assert_eq(scenario_url_parse(&u, ok[i].text, 1, ok[i].http_only, err, sizeof(err)), 0,
                     "%s: %s", ok[i].text, err);
        cr_assert_str_eq(u.text, ok[i].text);
        cr_assert_eq(u.scheme, ok[i].scheme);
        cr_assert_eq(u.tls, ok[i].tls);
        cr_assert_str_eq(u.host, ok[i].host);
        cr_assert_eq(u.port, ok[i].port);
        cr_assert_str_eq(u.path, ok[i].path);
    }

    static const struct {
        const char *text;
        int http_only;
        const char *says;
    } bad[] = {
        {"ftp://h/{ch}", 0, "scheme"},
        {"HTTP://h/{ch}", 0, "scheme"},
        {"ws://h/{ch}", 1, "the scheme must be http:// or https://"},
        {"h/{ch}", 0, "scheme"},
        {"http:///{ch}", 0, "host"},
        {"http://h", 0, "path starting with /"},
        {"http://h?x/{ch}", 0, "host"},
        {"http://h/sub", 0, "must contain {ch}"},
        {"http://h/{c}", 0, "braces"},
        {"http://h/{ch", 0, "braces"},
        {"http://h/}{ch}", 0, "braces"},
        {"http://h:0/{ch}", 0, "port must be a number from 1 to 65535"},
        {"http://h:65536/{ch}", 0, "port"},
        {"http://h:/{ch}", 0, "port"},
        {"http://h:123456/{ch}", 0, "port"},
        {"http://h:80x/{ch}", 0, "path starting with /"},
        {"http://[zz]/{ch}", 0, "IPv6"},
        {"http://[127.0.0.1]/{ch}", 0, "IPv6"},
        {"http://[::1/{ch}", 0, "IPv6"},
        {"http://u@h/{ch}", 0, "host"},
        {"http://h/a b/{ch}", 0, "blanks or control characters"},
        {"http://h/{ch}#frag", 0, "fragment"},
        {"http://h/{ch}\x01", 0, "control"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct scenario_url u;
        char err[SCENARIO_ERR_MAX] = "";
        cr_assert_eq(scenario_url_parse(&u, bad[i].text, 1, bad[i].http_only, err, sizeof(err)),
                     -EINVAL, "%s", bad[i].text);
        cr_assert_not_null(strstr(err, bad[i].says), "%s: \"%s\"", bad[i].text, err);
    }

    /* {ch} is only required when asked for. */
    struct scenario_url u;
    char err[SCENARIO_ERR_MAX];
    cr_assert_eq(scenario_url_parse(&u, "http://h/stats", 0, 1, err, sizeof(err)), 0);
    /* Too long. */
    char big[SCENARIO_URL_MAX + 8];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    memcpy(big, "http://h/{ch}", 13);
    cr_assert_eq(scenario_url_parse(&u, big, 1, 0, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "longer than"));
}

Test(scenario, url_path_expansion)
{
    struct scenario_url u;
    char err[SCENARIO_ERR_MAX], out[64];
    cr_assert_eq(scenario_url_parse(&u, "http://h/sub/{ch}?x={ch}", 1, 0, err, sizeof(err)), 0);
    cr_assert_eq(scenario_url_path(&u, "news", out, sizeof(out)), strlen("/sub/news?x=news"));
    cr_assert_str_eq(out, "/sub/news?x=news");
    /* snprintf's convention: the full length, a truncated, terminated text. */
    cr_assert_eq(scenario_url_path(&u, "news", out, 6), strlen("/sub/news?x=news"));
    cr_assert_str_eq(out, "/sub/");
    cr_assert_eq(scenario_url_path(&u, "news", NULL, 0), strlen("/sub/news?x=news"));
    cr_assert_eq(scenario_url_path(&u, "", out, sizeof(out)), strlen("/sub/?x="));

    struct scenario s;
    scenario_init(&s);
    cr_assert_eq(scenario_channel_name(&s, 7, out, sizeof(out)), 3);
    cr_assert_str_eq(out, "ch7");
}

/* ---- source ranges ----------------------------------------------------------------------- */

Test(scenario, src_ranges)
{
    struct scenario s;
    char err[SCENARIO_ERR_MAX];
    scenario_init(&s);
    cr_assert_eq(scenario_set(&s, "src", "127.0.0.2-127.0.0.250", err, sizeof(err)), 0);
    cr_assert_eq(s.has_src, 1);
    cr_assert_eq(s.src_first, 0x7f000002u);
    cr_assert_eq(s.src_last, 0x7f0000fau);
    cr_assert_eq(scenario_set(&s, "src", "127.0.1.255-127.1.0.0", err, sizeof(err)), 0);
    cr_assert_eq(s.src_first, 0x7f0001ffu);
    cr_assert_eq(s.src_last, 0x7f010000u);
    cr_assert_eq(scenario_set(&s, "src", "192.168.0.7", err, sizeof(err)), 0, "non-127 is fine");
    cr_assert_eq(s.src_first, s.src_last);
    cr_assert_eq(scenario_set(&s, "src", "127.0.0.3-127.0.0.2", err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "--src 127.0.0.3-127.0.0.2: the range is reversed: 127.0.0.3 is above "
                          "127.0.0.2");
    cr_assert_eq(s.src_first, 0xc0a80007u, "unchanged on error");
    cr_assert_eq(scenario_set(&s, "src", "", err, sizeof(err)), 0);
    cr_assert_eq(s.has_src, 0);
}

/* ---- the file format ------------------------------------------------------------------------ */

Test(scenario, comments_and_blanks)
{
    static const char text[] = "  sse=5   # five subscribers\n"
                               "\t# a comment line\n"
                               "\n"
                               "ws\t=\t3\r\n"
                               "json = a#b.json\n"
                               "compare = c.json#not a comment without a blank\n"
                               "pub_url = http://h/p/{ch}  # the publish URL\n"
                               "longpoll =2#x\n";
    struct scenario s;
    char err[SCENARIO_ERR_MAX];
    cr_assert_eq(scenario_parse(&s, text, sizeof(text) - 1, err, sizeof(err)), -EINVAL);
    /* "2#x" is not a number: '#' only starts a comment after a blank. */
    cr_assert_str_eq(err, "line 8: longpoll = 2#x: expected a whole number of long-poll "
                          "subscribers from 0 to 10000000 (e.g. 1000)");
    cr_assert_eq(
        scenario_parse(&s, text, sizeof(text) - 1 - strlen("longpoll =2#x\n"), err, sizeof(err)), 0,
        "%s", err);
    cr_assert_eq(s.sse, 5);
    cr_assert_eq(s.ws, 3);
    cr_assert_str_eq(s.json, "a#b.json");
    cr_assert_str_eq(s.compare, "c.json#not a comment without a blank");
    cr_assert_str_eq(s.pub_url.path, "/p/{ch}");
    /* The last line needs no newline; flags use dashes or underscores. */
    cr_assert_eq(scenario_parse(&s, "publish_rate = 7", 16, err, sizeof(err)), 0);
    cr_assert(s.publish_rate == 7);
    cr_assert_eq(scenario_set(&s, "publish-rate", "8", err, sizeof(err)), 0);
    cr_assert(s.publish_rate == 8);
    cr_assert_eq(scenario_set(&s, "publish_rate", "9", err, sizeof(err)), 0);
    cr_assert(s.publish_rate == 9);
}

Test(scenario, line_errors)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"sse = 1\nsse\n", "line 2: sse: expected key = value"},
        {"= 5\n", "line 1: expected key = value, the key is missing"},
        {"publsh_rate = 5\n", "line 1: publsh_rate: unknown key (did you mean publish_rate?)"},
        {"\n\nchanels = 5\n", "line 3: chanels: unknown key (did you mean channels?)"},
        {"publish-rate = 5\n", NULL}, /* dashes are fine in files too */
        {"PUBLISH_RATE = 5\n", "line 1: PUBLISH_RATE: unknown key (ringload --help lists them)"},
        {"wibble = 5\n", "line 1: wibble: unknown key (ringload --help lists them)"},
        {"publish rate = 5\n", "line 1: publish rate: unknown key (did you mean publish_rate?)"},
        {"sse = 1\nws = 2\n\nsse = 3\n", "line 4: sse given twice (first on line 1)"},
        {"sse = 1\nws = \0\n", "line 2: contains a NUL byte"},
        {"sse = \n", "line 1: sse = \"\": expected a whole number"},
        {"sse = 1 2\n", "line 1: sse = 1 2: expected"},
        {"sse == 1\n", "line 1: sse = = 1: expected"},
        {"src = 127.0.0.250-127.0.0.2\n",
         "line 1: src = 127.0.0.250-127.0.0.2: the range is reversed"},
        {"sub_url = http://h/sub\n", "line 1: sub_url = http://h/sub: the path must contain {ch}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct scenario s;
        char err[SCENARIO_ERR_MAX] = "x";
        size_t len = strlen(cases[i].text);
        if (strstr(cases[i].text, "ws = ") && strstr(cases[i].msg ? cases[i].msg : "", "NUL"))
            len = strlen("sse = 1\nws = ") + 3; /* the NUL and the newline */
        int rc = scenario_parse(&s, cases[i].text, len, err, sizeof(err));
        if (cases[i].msg == NULL) {
            cr_assert_eq(rc, 0, "%s", err);
            continue;
        }
        cr_assert_eq(rc, -EINVAL, "case %zu", i);
        cr_assert_eq(strncmp(err, cases[i].msg, strlen(cases[i].msg)), 0, "\"%s\" vs \"%s\"", err,
                     cases[i].msg);
    }
}

Test(scenario, flag_errors)
{
    struct scenario s;
    char err[SCENARIO_ERR_MAX];
    scenario_init(&s);
    cr_assert_eq(scenario_set(&s, "--publsh-rate", "5", err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "--publsh-rate: unknown option (did you mean --publish-rate?)");
    cr_assert_eq(scenario_set(&s, "--bogus", "5", err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "--bogus: unknown option (--help lists them)");
    cr_assert_eq(scenario_set(&s, "--sse", NULL, err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "--sse: missing value");
    cr_assert_eq(scenario_set(&s, "publish_rate", "fast", err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "--publish-rate fast: expected a number of messages per second from 0 "
                          "to 1e+07 (e.g. 1000)");
    /* Unprintable and long values are shown tamed. */
    cr_assert_eq(scenario_set(&s, "sse", "1\n2", err, sizeof(err)), -EINVAL);
    cr_assert_eq(strncmp(err, "--sse 1?2: ", 11), 0, "%s", err);
    char big[300];
    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    cr_assert_eq(scenario_set(&s, "sse", big, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "999...: expected"), "%s", err);
    /* A small err buffer gets a terminated prefix; none at all is fine. */
    char tiny[8];
    cr_assert_eq(scenario_set(&s, "sse", "x", tiny, sizeof(tiny)), -EINVAL);
    cr_assert_str_eq(tiny, "--sse x");
    cr_assert_eq(scenario_set(&s, "sse", "x", NULL, 0), -EINVAL);
}

Test(scenario, check_across_keys)
{
    struct scenario s;
    char err[SCENARIO_ERR_MAX];
    scenario_init(&s);
    s.sse = 0;
    s.publishers = 0;
    s.publish_rate = 0;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "nothing to run"));
    s.sse = 1;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), 0);
    s.publish_rate = 5;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "publish_rate = 5 needs publishers of at least 1 (or publish_rate = 0)");
    s.publishers = 2;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), 0);
    s.publish_ws = 1;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "publish_via = ws needs publishers >= channels"));
    s.publishers = s.channels;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), 0);
    s.poll = 1;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "cannot be checked with short pollers"));
    s.poll = 0;
    s.publish_ws = 0;
    s.churn_ns = 1000000000u;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "churn needs reconnect = on"));
    s.reconnect = 1;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), 0);
}

Test(scenario, format_parses_back)
{
    struct scenario s, back;
    char err[SCENARIO_ERR_MAX];
    static char a[16384], b[16384];
    scenario_init(&s);
    for (int round = 0; round < 2; round++) {
        size_t n = scenario_format(&s, a, sizeof(a));
        cr_assert(n < sizeof(a));
        cr_assert_eq(strlen(a), n);
        cr_assert_eq(scenario_parse(&back, a, n, err, sizeof(err)), 0, "%s\n%s", err, a);
        cr_assert_eq(memcmp(&back, &s, sizeof(s)), 0, "%s", a);
        scenario_format(&back, b, sizeof(b));
        cr_assert_str_eq(a, b);
        /* Now with every key away from its default. */
        static const char *const sets[][2] = {
            {"sse", "1"},
            {"ws", "2"},
            {"longpoll", "3"},
            {"poll", "4"},
            {"publishers", "5"},
            {"channels", "6"},
            {"channel-prefix", "x.y"},
            {"spread", "random"},
            {"ramp", "0.1"},
            {"poll-interval", "1.25s"},
            {"jitter-pct", "33.3"},
            {"publish-rate", "1e-3"},
            {"message-size", "1k"},
            {"warmup", "0.5"},
            {"duration", "1.5m"},
            {"sub-url", "wss://[::1]:4443/s/{ch}?a=b"},
            {"pub-url", "https://x:1/p/{ch}"},
            {"poll-url", "http://y/q/{ch}/{ch}"},
            {"resume", "since"},
            {"reconnect", "on"},
            {"backoff-ms", "7"},
            {"churn", "90s"},
            {"ws-deflate", "on"},
            {"publish-via", "ws"},
            {"ws-protocol", "nchan"},
            {"poll-protocol", "nchan"},
            {"tls-ca", "ca.pem"},
            {"tls-insecure", "on"},
            {"src", "127.0.0.2-127.0.3.4"},
            {"procs", "8"},
            {"threads", "9"},
            {"seed", "12345678901234567890"},
            {"json", "r.json"},
            {"compare", "base.json"},
            {"max-regress", "0.25"},
            {"max-regress-latency", "200"},
            {"max-regress-memory", "30"},
            {"max-regress-cpu", "15"},
            {"max-regress-rate", "5"},
            {"shard", "2/3"},
            {"hdr-log", "lat.hlog"},
            {"subs-per-channel", "2-7"},
            {"publish-order", "random"},
            {"role", "subscribe"},
            {"clock", "realtime"},
            {"start-at", "1795000000.25"},
        };
        for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
            cr_assert_eq(scenario_set(&s, sets[i][0], sets[i][1], err, sizeof(err)), 0, "%s", err);
        size_t nkeys = 0;
        while (scenario_key(nkeys))
            nkeys++;
        cr_assert_eq(nkeys, sizeof(sets) / sizeof(sets[0]));
    }
    /* snprintf's convention. */
    size_t n = scenario_format(&s, NULL, 0);
    char small[10];
    cr_assert_eq(scenario_format(&s, small, sizeof(small)), n);
    cr_assert_eq(strlen(small), sizeof(small) - 1);
}

/* The nchan dialects: no WebSocket publishers, no resume. */
Test(scenario, check_nchan_protocols)
{
    struct scenario s;
    char err[SCENARIO_ERR_MAX];
    scenario_init(&s);
    s.ws = 10;
    s.longpoll = 10;
    s.ws_nchan = 1;
    s.poll_nchan = 1;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), 0, "%s", err);
    s.poll = 1; /* nchan's short poll too */
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), 0, "%s", err);
    s.poll = 0;
    s.publishers = s.channels;
    s.publish_ws = 1;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "ws_protocol = nchan with publish_via = ws"));
    s.publish_ws = 0;
    s.resume = SCENARIO_RESUME_SINCE;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "resume = since with ws_protocol or poll_protocol = nchan"));
    s.ws_nchan = 0;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), -EINVAL);
    s.poll_nchan = 0;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), 0, "%s", err);
    /* ringcast's dialect takes short pollers and WebSocket publishers as before. */
    s.resume = SCENARIO_RESUME_NONE;
    s.poll = 1;
    cr_assert_eq(scenario_check(&s, err, sizeof(err)), 0, "%s", err);
}
