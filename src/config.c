/*
 * config.c: command-line flags. Every error names the flag, the value and
 * what would be accepted. Runs on the main thread before workers start.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    uint32_t bit;
} features[] = {
    {"single_issuer", FEAT_SINGLE_ISSUER}, {"coop_taskrun", FEAT_COOP_TASKRUN},
    {"accept_multishot", FEAT_ACCEPT_MULTISHOT}, {"recv_multishot", FEAT_RECV_MULTISHOT},
    {"poll_multishot", FEAT_POLL_MULTISHOT}, {"direct", FEAT_DIRECT},
    {"msg_ring", FEAT_MSG_RING},
};

/* What each --compat tier may use: the features its kernel has. */
static const struct {
    const char *tier;
    uint32_t mask;
} tiers[] = {
    {"6.1", FEAT_ALL},
    {"5.19", FEAT_COOP_TASKRUN | FEAT_ACCEPT_MULTISHOT | FEAT_POLL_MULTISHOT | FEAT_DIRECT |
                 FEAT_MSG_RING},
    {"5.15", FEAT_POLL_MULTISHOT | FEAT_DIRECT},
    {"5.10", 0},
};

static const char usage[] =
    "usage: ringcast [flags]\n"
    "  --port N               TCP port (default 8080; 0 picks a free one)\n"
    "  --bind ADDR            address to listen on (default 0.0.0.0)\n"
    "  --workers N            worker threads (default: online CPUs)\n"
    "  --max-conns N          connections per worker before 503 (default 100000)\n"
    "  --max-message BYTES    largest message (default 65536)\n"
    "  --header-timeout S     seconds to send a request head (default 10)\n"
    "  --keepalive-timeout S  idle keep-alive connection lifetime (default 60)\n"
    "  --history N            messages held per channel (default 100)\n"
    "  --history-ttl S        seconds a message is held, 0 = no limit (default 0)\n"
    "  --heartbeat S          SSE heartbeat interval (default 15)\n"
    "  --poll-timeout S       long-poll wait (default 30)\n"
    "  --max-queue BYTES      unsent bytes per connection (default 1048576)\n"
    "  --drain S              shutdown grace period (default 5)\n"
    "  --sse-retry MS         SSE retry: field (default 3000)\n"
    "  --ws-publish on|off    publish what WebSocket subscribers send (default on)\n"
    "  --ws-deflate on|off    negotiate permessage-deflate when offered (default on)\n"
    "  --ws-ping S            seconds between WebSocket pings (default 25)\n"
    "  --ws-timeout S         seconds to wait for a pong (default 10)\n"
    "  --close-timeout S      seconds to wait for a client's close frame (default 5)\n"
    "  --allow-origin LIST    WebSocket origins allowed, comma-separated (default: any)\n"
    "  --tls-cert FILE        PEM certificate (chain) to serve TLS with\n"
    "  --tls-key FILE         PEM private key for it\n"
    "  --tls-port N           TLS port, beside the plain one (default 8443; 0 picks a free one)\n"
    "  --tls-handshake-timeout S  seconds to finish a TLS handshake (default 10)\n"
    "  --tls-max-handshakes N handshakes in progress per worker before new TLS\n"
    "                         connections wait in the listen queue (default 128)\n"
    "  --fault-drop N         FOR TESTING: silently skip every Nth delivery (default 0: off)\n"
    "  --compat TIER          force a kernel tier: 5.10, 5.15, 5.19, 6.1\n"
    "  --disable LIST         switch features off: single_issuer, coop_taskrun,\n"
    "                         accept_multishot, recv_multishot, poll_multishot,\n"
    "                         direct, msg_ring\n";

static int num(const char *flag, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = v && *v != '-' ? strtoull(v, &end, 10) : 0;
    if (!v || *v == '-' || errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "ringcast: %s %s: expected a whole number from %llu to %llu\n", flag,
                v ? v : "(missing)", (unsigned long long)lo, (unsigned long long)hi);
        return -EINVAL;
    }
    *out = x;
    return 0;
}

static int disable(struct config *c, const char *list)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t i;
        for (i = 0; i < sizeof(features) / sizeof(features[0]); i++)
            if (strcmp(tok, features[i].name) == 0)
                break;
        if (i == sizeof(features) / sizeof(features[0])) {
            fprintf(stderr,
                    "ringcast: --disable %s: unknown feature; known: single_issuer, coop_taskrun, "
                    "accept_multishot, recv_multishot, poll_multishot, direct, msg_ring\n",
                    tok);
            return -EINVAL;
        }
        c->features &= ~features[i].bit;
    }
    return 0;
}

int config_parse(struct config *c, int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *c = (struct config){
        .port = 8080, .workers = ncpu > 0 ? (int)ncpu : 1, .max_conns = 100000,
        .max_message = 65536, .header_timeout = 10, .keepalive_timeout = 60, .history = 100,
        .history_ttl = 0, .heartbeat = 15, .poll_timeout = 30, .max_queue = 1 << 20,
        .drain = 5, .sse_retry_ms = 3000, .features = FEAT_ALL, .ws_ping = 25, .ws_timeout = 10,
        .close_timeout = 5, .ws_publish = 1, .ws_deflate = 1, .tls_port = 8443,
        .tls_handshake_timeout = 10, .tls_max_handshakes = 128,
    };
    snprintf(c->bind, sizeof(c->bind), "0.0.0.0");
    snprintf(c->allow_origin, sizeof(c->allow_origin), "*");
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x = 0;
        int rc = 0;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
#define NUMFLAG(name, field, lo, hi)                                                               \
    if (strcmp(f, name) == 0) {                                                                    \
        if ((rc = num(f, v, lo, hi, &x)) < 0)                                                      \
            return rc;                                                                             \
        c->field = (__typeof__(c->field))x;                                                        \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        NUMFLAG("--port", port, 0, 65535)
        NUMFLAG("--workers", workers, 1, 256)
        NUMFLAG("--max-conns", max_conns, 1, 10000000)
        NUMFLAG("--max-message", max_message, 1, 64u << 20)
        NUMFLAG("--header-timeout", header_timeout, 1, 3600)
        NUMFLAG("--keepalive-timeout", keepalive_timeout, 1, 86400)
        NUMFLAG("--history", history, 0, 1000000)
        NUMFLAG("--history-ttl", history_ttl, 0, 100000000)
        NUMFLAG("--heartbeat", heartbeat, 1, 3600)
        NUMFLAG("--poll-timeout", poll_timeout, 1, 3600)
        NUMFLAG("--max-queue", max_queue, 4096, 1ull << 34)
        NUMFLAG("--drain", drain, 0, 3600)
        NUMFLAG("--sse-retry", sse_retry_ms, 0, 3600000)
        NUMFLAG("--ws-ping", ws_ping, 1, 3600)
        NUMFLAG("--ws-timeout", ws_timeout, 1, 3600)
        NUMFLAG("--close-timeout", close_timeout, 1, 3600)
        NUMFLAG("--fault-drop", fault_drop, 0, 1000000000)
        NUMFLAG("--tls-port", tls_port, 0, 65535)
        NUMFLAG("--tls-handshake-timeout", tls_handshake_timeout, 1, 3600)
        NUMFLAG("--tls-max-handshakes", tls_max_handshakes, 1, 1000000)
#undef NUMFLAG
        if (strcmp(f, "--bind") == 0 && v) {
            snprintf(c->bind, sizeof(c->bind), "%s", v);
            i++;
        } else if (strcmp(f, "--ws-publish") == 0 && v) {
            if (strcmp(v, "on") && strcmp(v, "off")) {
                fprintf(stderr, "ringcast: --ws-publish %s: expected on or off\n", v);
                return -EINVAL;
            }
            c->ws_publish = strcmp(v, "on") == 0;
            i++;
        } else if (strcmp(f, "--ws-deflate") == 0 && v) {
            if (strcmp(v, "on") && strcmp(v, "off")) {
                fprintf(stderr, "ringcast: --ws-deflate %s: expected on or off\n", v);
                return -EINVAL;
            }
            c->ws_deflate = strcmp(v, "on") == 0;
            i++;
        } else if (strcmp(f, "--allow-origin") == 0 && v) {
            if (strlen(v) >= sizeof(c->allow_origin) || !*v) {
                fprintf(stderr, "ringcast: --allow-origin: expected 1 to %zu bytes of "
                                "comma-separated origins, or *\n",
                        sizeof(c->allow_origin) - 1);
                return -EINVAL;
            }
            snprintf(c->allow_origin, sizeof(c->allow_origin), "%s", v);
            i++;
        } else if ((strcmp(f, "--tls-cert") == 0 || strcmp(f, "--tls-key") == 0) && v) {
            char *dst = f[6] == 'c' ? c->tls_cert : c->tls_key;
            if (!*v || strlen(v) >= sizeof(c->tls_cert)) {
                fprintf(stderr, "ringcast: %s: expected a file name of 1 to %zu bytes\n", f,
                        sizeof(c->tls_cert) - 1);
                return -EINVAL;
            }
            snprintf(dst, sizeof(c->tls_cert), "%s", v);
            i++;
        } else if (strcmp(f, "--compat") == 0 && v) {
            size_t t;
            for (t = 0; t < sizeof(tiers) / sizeof(tiers[0]); t++)
                if (strcmp(v, tiers[t].tier) == 0)
                    break;
            if (t == sizeof(tiers) / sizeof(tiers[0])) {
                fprintf(stderr, "ringcast: --compat %s: expected 5.10, 5.15, 5.19 or 6.1\n", v);
                return -EINVAL;
            }
            c->features &= tiers[t].mask;
            i++;
        } else if (strcmp(f, "--disable") == 0 && v) {
            if ((rc = disable(c, v)) < 0)
                return rc;
            i++;
        } else {
            fprintf(stderr, "ringcast: %s: unknown flag or missing value (see --help)\n", f);
            return -EINVAL;
        }
    }
    if (!*c->tls_cert != !*c->tls_key) {
        fprintf(stderr, "ringcast: %s: TLS needs both --tls-cert and --tls-key\n",
                *c->tls_cert ? "--tls-cert without --tls-key" : "--tls-key without --tls-cert");
        return -EINVAL;
    }
    return 0;
}

void config_feature_names(uint32_t mask, char *out, unsigned outlen)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
        if (mask & features[i].bit)
            n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, "%s%s", n ? "," : "",
                                  features[i].name);
    if (n == 0)
        snprintf(out, outlen, "none");
}
