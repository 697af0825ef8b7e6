/*
 * config.h: the server's settings, filled from the command line once at
 * start, before any worker runs, and read-only afterwards.
 */
#ifndef RINGCAST_CONFIG_H
#define RINGCAST_CONFIG_H

#include <stdint.h>

/* io_uring features, each switchable off for testing the fallbacks. */
enum feature {
    FEAT_SINGLE_ISSUER = 1u << 0,   /* SINGLE_ISSUER + DEFER_TASKRUN (6.1) */
    FEAT_COOP_TASKRUN = 1u << 1,    /* COOP_TASKRUN + TASKRUN_FLAG (5.19) */
    FEAT_ACCEPT_MULTISHOT = 1u << 2,/* multishot accept (5.19) */
    FEAT_RECV_MULTISHOT = 1u << 3,  /* multishot recv from a ring-mapped buffer ring (6.0) */
    FEAT_POLL_MULTISHOT = 1u << 4,  /* multishot poll (5.13) */
    FEAT_DIRECT = 1u << 5,          /* direct descriptors (5.15; alloc by kernel 5.19) */
    FEAT_MSG_RING = 1u << 6,        /* IORING_OP_MSG_RING doorbell (5.18) */
    FEAT_ALL = (1u << 7) - 1,
};

struct config {
    char bind[64];
    int port;
    int workers;
    uint32_t max_conns;      /* per worker */
    uint32_t max_message;
    uint32_t header_timeout; /* seconds */
    uint32_t keepalive_timeout;
    uint32_t history;
    uint32_t history_ttl;
    uint32_t heartbeat;
    uint32_t poll_timeout;
    uint64_t max_queue;
    uint32_t drain;
    uint32_t sse_retry_ms;
    uint32_t ws_ping;        /* seconds between server pings */
    uint32_t ws_timeout;     /* seconds to wait for a pong */
    uint32_t close_timeout;  /* seconds to wait for the client's close frame */
    int ws_publish;          /* client messages are published */
    int ws_deflate;          /* permessage-deflate is negotiated when offered */
    char allow_origin[1024]; /* comma-separated origins, or "*" */
    uint32_t fault_drop;     /* testing load generators: skip every Nth delivery (0 = off) */
    char tls_cert[512];      /* PEM certificate (chain) for the TLS port; empty: no TLS */
    char tls_key[512];       /* PEM private key */
    int tls_port;            /* TLS listening port (0 picks a free one) */
    uint32_t tls_handshake_timeout; /* seconds to finish a TLS handshake */
    uint32_t tls_max_handshakes;    /* per worker: TLS accepts wait beyond this many */
    uint32_t features;       /* allowed: FEAT_ALL minus --compat and --disable */
};

/* Parses argv into c (defaults first). Returns 0, 1 for --help (printed), or
 * -EINVAL after printing which flag and value were wrong and what is accepted. */
int config_parse(struct config *c, int argc, char **argv);

/* "single_issuer,direct,..." for the names of the bits in mask. */
void config_feature_names(uint32_t mask, char *out, unsigned outlen);

#endif
