/*
 * test_tls.c: unit tests for the TLS layer, entirely in memory: a server
 * connection and a client connection (ours, or a bare wolfSSL client for
 * what ours refuses to offer) pass ciphertext to each other through their
 * pending spans, whole or one byte at a time.
 *
 * Throwaway certificates are made once per run by the openssl command-line
 * tool (a PRE_ALL hook in the runner process; every test process inherits
 * the directory through the environment): an RSA leaf under an RSA
 * intermediate under a root, an ECDSA leaf under the root, an expired
 * self-signed one, a key that matches nothing, a CA nobody signed with.
 *
 * The memory test counts every byte wolfSSL and the module allocate
 * (wolfSSL_SetAllocators) while N server connections sit idle after their
 * handshakes, and prints the per-connection figure and the blocks behind
 * it. RINGCAST_TLS_MEM_N=1000 ./build/asan/test_tls --filter 'tls/memory*'
 * --verbose runs it on more connections.
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "tls.h"

#define CERT_ENV "RINGCAST_TLS_TEST_CERTS"

/* ---- certificates, made once per run ---- */

static const char gen_script[] =
    "set -e\n"
    "cd \"$1\"\n"
    "q() { \"$@\" >/dev/null 2>&1; }\n"
    "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' "
    "> ca.ext\n"
    "printf 'subjectAltName=DNS:localhost,DNS:example.test\\nbasicConstraints=CA:FALSE\\n"
    "extendedKeyUsage=serverAuth\\n' > leaf.ext\n"
    "q openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem "
    "-subj /CN=ringcast-test-root -days 2 -addext basicConstraints=critical,CA:TRUE "
    "-addext keyUsage=critical,keyCertSign,cRLSign\n"
    "q openssl req -new -newkey rsa:2048 -nodes -keyout int.key -out int.csr "
    "-subj /CN=ringcast-test-intermediate\n"
    "q openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial "
    "-out int.pem -days 2 -extfile ca.ext\n"
    "q openssl req -new -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.csr -subj /CN=localhost\n"
    "q openssl x509 -req -in rsa.csr -CA int.pem -CAkey int.key -CAcreateserial "
    "-out rsa.crt -days 2 -extfile leaf.ext\n"
    "cat rsa.crt int.pem > rsa-chain.pem\n"
    "q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key "
    "-out ec.csr -subj /CN=localhost\n"
    "q openssl x509 -req -in ec.csr -CA root.pem -CAkey root.key -CAcreateserial "
    "-out ec.pem -days 2 -extfile leaf.ext\n"
    "q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key "
    "-out other-ca.pem -subj /CN=ringcast-other-root -days 2\n"
    /* openssl req refuses a negative -days; openssl ca takes explicit dates. */
    "touch index.txt; echo 01 > serial\n"
    "printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=index.txt\\nnew_certs_dir=.\\nserial=serial\\n"
    "default_md=sha256\\npolicy=p\\n[p]\\ncommonName=supplied\\n' > ca.cnf\n"
    "q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout expired.key "
    "-out expired.csr -subj /CN=localhost\n"
    "q openssl ca -batch -config ca.cnf -cert root.pem -keyfile root.key -in expired.csr "
    "-startdate 20200101000000Z -enddate 20200102000000Z -extfile leaf.ext -out expired.pem "
    "-notext\n"
    "q openssl ecparam -name prime256v1 -genkey -noout -out ec-other.key.sec1\n"
    "q openssl pkcs8 -topk8 -nocrypt -in ec-other.key.sec1 -out ec-other.key\n"
    "echo 'this is not PEM' > notpem.txt\n"
    "printf 'GET / HTTP/1.1\\r\\n' > http.txt\n"
    "touch ok\n";

static char cert_dir[64];

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    strcpy(cert_dir, "/tmp/ringcast-tls-test-XXXXXX");
    if (!mkdtemp(cert_dir))
        return;
    char cmd[200];
    /* The script goes through the environment: quoting it into argv would
     * need every quote in it escaped. */
    setenv("RINGCAST_TLS_GEN", gen_script, 1);
    snprintf(cmd, sizeof(cmd), "sh -c \"$RINGCAST_TLS_GEN\" sh %s", cert_dir);
    if (system(cmd) == 0)
        setenv(CERT_ENV, cert_dir, 1);
    unsetenv("RINGCAST_TLS_GEN");
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    if (cert_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", cert_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "test_tls: could not remove %s\n", cert_dir);
    }
}

/* The path of a generated file; a few of these may be live at once. */
static const char *P(const char *name)
{
    static char bufs[8][256];
    static int next;
    const char *dir = getenv(CERT_ENV);
    if (!dir)
        cr_skip_test("the openssl tool could not make test certificates");
    char *b = bufs[next++ % 8];
    snprintf(b, 256, "%s/%s", dir, name);
    return b;
}

/* ---- plumbing ---- */

static struct tls_server *server(const char *cert, const char *key)
{
    char err[512];
    struct tls_server *s = tls_server_new(P(cert), P(key), err, sizeof(err));
    cr_assert(s, "tls_server_new: %s", err);
    cr_assert_str_empty(err, "unexpected warning: %s", err);
    return s;
}

static struct tls_client *client(const char *ca)
{
    char err[512];
    struct tls_client *cl = tls_client_new(P(ca), 0, err, sizeof(err));
    cr_assert(cl, "tls_client_new: %s", err);
    return cl;
}

/* Moves from's pending ciphertext into to, step bytes per call (0: all at
 * once), reading after each call whatever plaintext it gave into out (when
 * out is not NULL; *outlen grows). Returns the ciphertext bytes moved, or
 * the first error. */
static ssize_t move(struct tls_conn *from, struct tls_conn *to, size_t step, char *out, size_t cap,
                    size_t *outlen)
{
    ssize_t moved = 0;
    for (;;) {
        span_t p = tls_conn_pending(from);
        if (p.len == 0)
            return moved;
        size_t n = step && step < p.len ? step : p.len;
        /* An exact-size heap copy: ASan sees a read past what was given. */
        char *copy = malloc(n);
        memcpy(copy, p.base, n);
        int rc = tls_conn_input(to, span_of(copy, n));
        free(copy);
        tls_conn_sent(from, n);
        if (rc < 0)
            return rc;
        moved += (ssize_t)n;
        if (out && tls_conn_state(to) != TLS_HANDSHAKE) {
            ssize_t r;
            while ((r = tls_conn_read(to, out + *outlen, cap - *outlen)) > 0)
                *outlen += (size_t)r;
            if (r < 0)
                return r;
        }
    }
}

static ssize_t drain(struct tls_conn *c, char *out, size_t cap)
{
    size_t got = 0;
    ssize_t r;
    while (got < cap && (r = tls_conn_read(c, out + got, cap - got)) > 0)
        got += (size_t)r;
    return (ssize_t)got;
}

/* Runs the handshake to the end; also delivers a TLS 1.3 server's tickets
 * to the client. Returns 0 or the first error. */
static int handshake(struct tls_conn *s, struct tls_conn *c, size_t step)
{
    char sink[64];
    size_t got = 0;
    for (int i = 0; i < 50; i++) {
        ssize_t a = move(c, s, step, sink, sizeof(sink), &got);
        if (a < 0)
            return (int)a;
        ssize_t b = move(s, c, step, sink, sizeof(sink), &got);
        if (b < 0)
            return (int)b;
        if (a == 0 && b == 0)
            return tls_conn_state(s) == TLS_OPEN && tls_conn_state(c) == TLS_OPEN ? 0 : -EAGAIN;
    }
    return -ELOOP;
}

struct pair {
    struct tls_server *srv;
    struct tls_client *cli;
    struct tls_conn *s, *c;
};

static void pair_open(struct pair *p, const char *cert, const char *key, const char *ca,
                      int version, size_t step)
{
    p->srv = server(cert, key);
    p->cli = client(ca);
    if (version)
        cr_assert_eq(tls_client_set_versions(p->cli, version, version), 0);
    p->s = tls_conn_new_server(p->srv);
    p->c = tls_conn_new_client(p->cli, "localhost");
    cr_assert(p->s && p->c);
    int rc = handshake(p->s, p->c, step);
    char d1[200], d2[200];
    cr_assert_eq(rc, 0, "handshake: %d, server %s (%s), client %s (%s)", rc,
                 tls_error_name(tls_conn_error(p->s)), tls_conn_error_detail(p->s, d1, 200),
                 tls_error_name(tls_conn_error(p->c)), tls_conn_error_detail(p->c, d2, 200));
}

/* New connections in place of the pair's, handshake done: the client may
 * resume the session the last one saved. */
static void pair_reconnect(struct pair *p)
{
    tls_conn_free(p->c);
    tls_conn_free(p->s);
    p->s = tls_conn_new_server(p->srv);
    p->c = tls_conn_new_client(p->cli, "localhost");
    cr_assert_eq(handshake(p->s, p->c, 0), 0);
}

static void pair_close(struct pair *p)
{
    tls_conn_free(p->s);
    tls_conn_free(p->c);
    tls_server_free(p->srv);
    tls_client_free(p->cli);
}

/* Sends len bytes from one side as n iovecs of varied sizes and checks the
 * other side gets exactly them, moving ciphertext step bytes at a time. */
static void send_check(struct tls_conn *from, struct tls_conn *to, size_t len, int n, size_t step)
{
    char *data = malloc(len + 1), *got = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 7 + i / 251);
    struct iovec iov[64];
    cr_assert(n >= 1 && n <= 64);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t part = i == n - 1 ? len - at : (len / (size_t)n) + (size_t)(i % 3) - 1;
        if (part > len - at)
            part = len - at;
        iov[i] = (struct iovec){data + at, part};
        at += part;
    }
    cr_assert_eq(tls_conn_write(from, iov, n), (ssize_t)len);
    size_t gotlen = 0;
    cr_assert_geq(move(from, to, step, got, len + 1, &gotlen), 0);
    cr_assert_eq(gotlen, len, "got %zu of %zu bytes", gotlen, len);
    cr_assert(memcmp(data, got, len) == 0);
    free(data);
    free(got);
}

/* ---- a bare wolfSSL client, for what ours never offers ---- */

struct raw {
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    char in[1 << 16];
    size_t in_off, in_len;
    char out[1 << 16];
    size_t out_len;
};

static int raw_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    (void)ssl;
    struct raw *r = arg;
    size_t n = r->in_len - r->in_off;
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > (size_t)sz)
        n = (size_t)sz;
    memcpy(buf, r->in + r->in_off, n);
    r->in_off += n;
    return (int)n;
}

static int raw_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    (void)ssl;
    struct raw *r = arg;
    if (r->out_len + (size_t)sz > sizeof(r->out))
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    memcpy(r->out + r->out_len, buf, (size_t)sz);
    r->out_len += (size_t)sz;
    return sz;
}

static struct raw *raw_new(WOLFSSL_METHOD *m, const char *ciphers, const char *alpn)
{
    struct raw *r = calloc(1, sizeof(*r));
    r->ctx = wolfSSL_CTX_new(m);
    cr_assert(r->ctx);
    wolfSSL_CTX_set_verify(r->ctx, WOLFSSL_VERIFY_NONE, NULL);
    if (ciphers)
        cr_assert_eq(wolfSSL_CTX_set_cipher_list(r->ctx, ciphers), WOLFSSL_SUCCESS);
    wolfSSL_CTX_SetIORecv(r->ctx, raw_recv);
    wolfSSL_CTX_SetIOSend(r->ctx, raw_send);
    r->ssl = wolfSSL_new(r->ctx);
    cr_assert(r->ssl);
    wolfSSL_SetIOReadCtx(r->ssl, r);
    wolfSSL_SetIOWriteCtx(r->ssl, r);
    if (alpn)
        cr_assert_eq(wolfSSL_UseALPN(r->ssl, (char *)alpn, (unsigned)strlen(alpn),
                                     WOLFSSL_ALPN_CONTINUE_ON_MISMATCH),
                     WOLFSSL_SUCCESS);
    return r;
}

static void raw_free(struct raw *r)
{
    wolfSSL_free(r->ssl);
    wolfSSL_CTX_free(r->ctx);
    free(r);
}

/* Runs a bare client against a server connection until the server opens
 * or fails, or nothing moves. Returns the server's state. */
static enum tls_state raw_handshake(struct raw *r, struct tls_conn *s)
{
    for (int i = 0; i < 20; i++) {
        wolfSSL_connect(r->ssl);
        if (r->out_len) {
            tls_conn_input(s, span_of(r->out, r->out_len));
            r->out_len = 0;
        }
        span_t p = tls_conn_pending(s);
        if (p.len) {
            cr_assert_leq(r->in_len + p.len, sizeof(r->in));
            memcpy(r->in + r->in_len, p.base, p.len);
            r->in_len += p.len;
            tls_conn_sent(s, p.len);
        } else if (tls_conn_state(s) != TLS_HANDSHAKE) {
            break;
        }
    }
    return tls_conn_state(s);
}

TestSuite(tls, .timeout = 60);

/* ---- handshakes ---- */

Test(tls, handshake_tls13_rsa_chain)
{
    struct pair p;
    pair_open(&p, "rsa-chain.pem", "rsa.key", "root.pem", 0, 0);
    cr_assert_str_eq(tls_conn_version(p.s), "TLSv1.3");
    cr_assert_str_eq(tls_conn_version(p.c), "TLSv1.3");
    cr_assert(span_eq(tls_conn_alpn(p.s), SPAN_LIT("http/1.1")));
    cr_assert(span_eq(tls_conn_alpn(p.c), SPAN_LIT("http/1.1")));
    cr_assert_str_eq(tls_conn_sni(p.s), "localhost");
    cr_assert_null(tls_conn_sni(p.c));
    cr_assert_str_eq(tls_conn_cipher(p.s), "TLS13-AES128-GCM-SHA256");
    cr_assert_eq(tls_conn_resumed(p.s), 0);
    cr_assert_eq(tls_conn_error(p.s), TLS_ERR_NONE);
    pair_close(&p);
}

Test(tls, handshake_tls12_rsa_chain)
{
    struct pair p;
    pair_open(&p, "rsa-chain.pem", "rsa.key", "root.pem", 12, 0);
    cr_assert_str_eq(tls_conn_version(p.s), "TLSv1.2");
    cr_assert_str_eq(tls_conn_cipher(p.s), "ECDHE-RSA-AES128-GCM-SHA256");
    cr_assert(span_eq(tls_conn_alpn(p.s), SPAN_LIT("http/1.1")));
    cr_assert_str_eq(tls_conn_sni(p.s), "localhost");
    pair_close(&p);
}

Test(tls, handshake_ecdsa_both_versions)
{
    for (int v = 12; v <= 13; v++) {
        struct pair p;
        pair_open(&p, "ec.pem", "ec.key", "root.pem", v, 0);
        cr_assert_str_eq(tls_conn_version(p.s), v == 12 ? "TLSv1.2" : "TLSv1.3");
        if (v == 12)
            cr_assert_str_eq(tls_conn_cipher(p.s), "ECDHE-ECDSA-AES128-GCM-SHA256");
        pair_close(&p);
    }
}

Test(tls, handshake_one_byte_at_a_time)
{
    for (int v = 12; v <= 13; v++) {
        struct pair p;
        pair_open(&p, "rsa-chain.pem", "rsa.key", "root.pem", v, 1);
        send_check(p.c, p.s, 3000, 3, 1);
        send_check(p.s, p.c, 3000, 5, 1);
        pair_close(&p);
    }
}

Test(tls, chacha20_poly1305)
{
    struct tls_server *srv = server("ec.pem", "ec.key");
    struct tls_conn *s = tls_conn_new_server(srv);
    struct raw *r =
        raw_new(wolfTLSv1_3_client_method(), "TLS13-CHACHA20-POLY1305-SHA256", "http/1.1");
    cr_assert_eq(raw_handshake(r, s), TLS_OPEN);
    cr_assert_str_eq(tls_conn_cipher(s), "TLS13-CHACHA20-POLY1305-SHA256");
    raw_free(r);
    tls_conn_free(s);
    tls_server_free(srv);
}

Test(tls, weak_suite_refused)
{
    struct tls_server *srv = server("rsa-chain.pem", "rsa.key");
    struct tls_conn *s = tls_conn_new_server(srv);
    struct raw *r = raw_new(wolfTLSv1_2_client_method(), "ECDHE-RSA-AES128-SHA256", NULL);
    cr_assert_eq(raw_handshake(r, s), TLS_FAILED);
    cr_assert_eq(tls_conn_error(s), TLS_ERR_CIPHER, "%s", tls_error_name(tls_conn_error(s)));
    raw_free(r);
    tls_conn_free(s);
    tls_server_free(srv);
}

Test(tls, tls11_client_refused)
{
    struct tls_server *srv = server("rsa-chain.pem", "rsa.key");
    struct tls_conn *s = tls_conn_new_server(srv);
    struct raw *r = raw_new(wolfTLSv1_1_client_method(), NULL, NULL);
    cr_assert_eq(raw_handshake(r, s), TLS_FAILED);
    cr_assert_eq(tls_conn_error(s), TLS_ERR_VERSION, "%s", tls_error_name(tls_conn_error(s)));
    cr_assert_gt(r->in_len, 0, "the client gets an alert");
    raw_free(r);
    tls_conn_free(s);
    tls_server_free(srv);
}

Test(tls, alpn_without_http11_refused)
{
    struct tls_server *srv = server("rsa-chain.pem", "rsa.key");
    struct tls_conn *s = tls_conn_new_server(srv);
    struct raw *r = raw_new(wolfSSLv23_client_method(), NULL, "h2");
    cr_assert_eq(raw_handshake(r, s), TLS_FAILED);
    cr_assert_eq(tls_conn_error(s), TLS_ERR_ALPN, "%s", tls_error_name(tls_conn_error(s)));
    raw_free(r);
    tls_conn_free(s);
    tls_server_free(srv);
}

Test(tls, no_alpn_accepted)
{
    struct tls_server *srv = server("rsa-chain.pem", "rsa.key");
    struct tls_conn *s = tls_conn_new_server(srv);
    struct raw *r = raw_new(wolfSSLv23_client_method(), NULL, NULL);
    cr_assert_eq(raw_handshake(r, s), TLS_OPEN);
    cr_assert(span_eq(tls_conn_alpn(s), SPAN_LIT("")));
    cr_assert_null(tls_conn_sni(s));
    raw_free(r);
    tls_conn_free(s);
    tls_server_free(srv);
}

Test(tls, alpn_list_with_http11_picks_it)
{
    struct tls_server *srv = server("rsa-chain.pem", "rsa.key");
    struct tls_conn *s = tls_conn_new_server(srv);
    struct raw *r = raw_new(wolfSSLv23_client_method(), NULL, "h2,http/1.1");
    cr_assert_eq(raw_handshake(r, s), TLS_OPEN);
    cr_assert(span_eq(tls_conn_alpn(s), SPAN_LIT("http/1.1")));
    raw_free(r);
    tls_conn_free(s);
    tls_server_free(srv);
}

/* ---- data ---- */

Test(tls, data_both_ways)
{
    for (int v = 12; v <= 13; v++) {
        struct pair p;
        pair_open(&p, "rsa-chain.pem", "rsa.key", "root.pem", v, 0);
        send_check(p.c, p.s, 1, 1, 0);
        send_check(p.s, p.c, 100, 1, 0);
        send_check(p.s, p.c, 5000, 7, 0);
        send_check(p.c, p.s, 5000, 7, 0);
        pair_close(&p);
    }
}

Test(tls, several_iovecs_share_one_record)
{
    struct pair p;
    pair_open(&p, "ec.pem", "ec.key", "root.pem", 13, 0);
    struct iovec iov[3] = {{"data: one\n\n", 11}, {"data: two\n\n", 11}, {"data: 3\n\n", 9}};
    cr_assert_eq(tls_conn_write(p.s, iov, 3), 31);
    /* TLS 1.3: 5-byte header, content type byte, 16-byte tag. */
    cr_assert_eq(tls_conn_pending(p.s).len, 31 + 22);
    char got[64];
    size_t n = 0;
    cr_assert_geq(move(p.s, p.c, 0, got, sizeof(got), &n), 0);
    cr_assert_eq(n, 31);
    cr_assert(memcmp(got, "data: one\n\ndata: two\n\ndata: 3\n\n", 31) == 0);
    pair_close(&p);
}

Test(tls, large_writes_span_records)
{
    for (int v = 12; v <= 13; v++) {
        struct pair p;
        pair_open(&p, "ec.pem", "ec.key", "root.pem", v, 0);
        send_check(p.s, p.c, 300000, 1, 0);
        send_check(p.s, p.c, 300000, 50, 0);
        send_check(p.c, p.s, 100000, 3, 4093);
        send_check(p.s, p.c, 40000, 2, 1); /* one byte at a time across records */
        pair_close(&p);
    }
}

Test(tls, pending_span_is_stable_while_in_flight)
{
    struct pair p;
    pair_open(&p, "ec.pem", "ec.key", "root.pem", 13, 0);
    size_t idle_s = tls_conn_buffered(p.s), idle_c = tls_conn_buffered(p.c);
    struct iovec a = {"first", 5}, b = {"second", 6};
    tls_conn_write(p.s, &a, 1);
    span_t s1 = tls_conn_pending(p.s);
    char copy[64];
    cr_assert_lt(s1.len, sizeof(copy));
    memcpy(copy, s1.base, s1.len);
    tls_conn_write(p.s, &b, 1); /* queues behind, must not move s1 */
    cr_assert(memcmp(copy, s1.base, s1.len) == 0);
    span_t again = tls_conn_pending(p.s);
    cr_assert(again.base == s1.base && again.len == s1.len);
    tls_conn_sent(p.s, 3);
    cr_assert_eq(tls_conn_pending(p.s).len, s1.len - 3);
    tls_conn_input(p.c, span_of(copy, s1.len));
    tls_conn_sent(p.s, s1.len - 3);
    char got[32];
    size_t n = 0;
    cr_assert_geq(move(p.s, p.c, 0, got, sizeof(got), &n), 0);
    n += (size_t)drain(p.c, got + n, sizeof(got) - n);
    cr_assert_eq(n, 11);
    cr_assert(memcmp(got, "firstsecond", 11) == 0);
    cr_assert_eq(tls_conn_buffered(p.s), idle_s, "the server's buffers are freed");
    cr_assert_eq(tls_conn_buffered(p.c), idle_c, "the client's buffers are freed");
    pair_close(&p);
}

Test(tls, write_before_handshake_is_refused)
{
    struct tls_server *srv = server("ec.pem", "ec.key");
    struct tls_conn *s = tls_conn_new_server(srv);
    struct iovec a = {"x", 1};
    cr_assert_eq(tls_conn_write(s, &a, 1), -ENOTCONN);
    cr_assert_eq(tls_conn_shutdown(s), -ENOTCONN);
    tls_conn_free(s);
    tls_server_free(srv);
}

/* ---- resumption ---- */

Test(tls, resumption_with_tickets)
{
    for (int v = 12; v <= 13; v++) {
        struct pair p;
        pair_open(&p, "ec.pem", "ec.key", "root.pem", v, 0);
        cr_assert_eq(tls_conn_resumed(p.s), 0);
        /* Some traffic after the handshake, as a real client has. */
        send_check(p.s, p.c, 10, 1, 0);
        pair_reconnect(&p);
        cr_assert_eq(tls_conn_resumed(p.s), 1, "TLS 1.%d: not resumed", v - 10);
        cr_assert_eq(tls_conn_resumed(p.c), 1);
        send_check(p.s, p.c, 1000, 2, 0);
        pair_close(&p);
    }
}

/* ---- the detached record layer ---- */

Test(tls, finished_and_request_in_one_input)
{
    /* A TLS 1.3 client sends its Finished and its request together. */
    struct tls_server *srv = server("ec.pem", "ec.key");
    struct tls_client *cl = client("root.pem");
    struct tls_conn *s = tls_conn_new_server(srv), *c = tls_conn_new_client(cl, "localhost");
    cr_assert_geq(move(c, s, 0, NULL, 0, NULL), 0);
    cr_assert_geq(move(s, c, 0, NULL, 0, NULL), 0);
    cr_assert_eq(tls_conn_state(c), TLS_OPEN);
    cr_assert_eq(tls_conn_state(s), TLS_HANDSHAKE);
    struct iovec req = {"GET /sub/a HTTP/1.1\r\n\r\n", 23};
    cr_assert_eq(tls_conn_write(c, &req, 1), 23);
    char got[64];
    size_t n = 0;
    cr_assert_geq(move(c, s, 0, got, sizeof(got), &n), 0);
    cr_assert_eq(tls_conn_state(s), TLS_OPEN);
    cr_assert_eq(n, 23);
    cr_assert(memcmp(got, req.iov_base, 23) == 0);
    tls_conn_free(s);
    tls_conn_free(c);
    tls_client_free(cl);
    tls_server_free(srv);
}

/* Runs a bare client's reads and writes against an open server connection. */
static void raw_take(struct raw *r, struct tls_conn *s)
{
    span_t p = tls_conn_pending(s);
    cr_assert_leq(r->in_len + p.len, sizeof(r->in));
    if (p.len)
        memcpy(r->in + r->in_len, p.base, p.len);
    r->in_len += p.len;
    tls_conn_sent(s, p.len);
}

static void raw_exchange(struct raw *r, struct tls_conn *s)
{
    /* The server's tickets and anything else pending reach the client. */
    raw_take(r, s);
    char buf[256];
    cr_assert_eq(wolfSSL_write(r->ssl, "ping from raw", 13), 13);
    cr_assert_eq(tls_conn_input(s, span_of(r->out, r->out_len)), 0);
    r->out_len = 0;
    size_t n = (size_t)drain(s, buf, sizeof(buf));
    cr_assert_eq(n, 13);
    cr_assert(memcmp(buf, "ping from raw", 13) == 0);
    struct iovec a = {"pong", 4}, b = {" from server", 12};
    struct iovec two[2] = {a, b};
    cr_assert_eq(tls_conn_write(s, two, 2), 16);
    raw_take(r, s);
    int got = 0, rc;
    while ((rc = wolfSSL_read(r->ssl, buf + got, (int)sizeof(buf) - got)) > 0)
        got += rc;
    cr_assert_eq(got, 16);
    cr_assert(memcmp(buf, "pong from server", 16) == 0);
}

Test(tls, every_aead_both_versions_against_wolfssl)
{
    static const struct {
        int v13;
        const char *suite;
    } suites[] = {
        {1, "TLS13-AES128-GCM-SHA256"},        {1, "TLS13-AES256-GCM-SHA384"},
        {1, "TLS13-CHACHA20-POLY1305-SHA256"}, {0, "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {0, "ECDHE-ECDSA-AES256-GCM-SHA384"},  {0, "ECDHE-ECDSA-CHACHA20-POLY1305"},
    };
    struct tls_server *srv = server("ec.pem", "ec.key");
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        struct tls_conn *s = tls_conn_new_server(srv);
        struct raw *r =
            raw_new(suites[i].v13 ? wolfTLSv1_3_client_method() : wolfTLSv1_2_client_method(),
                    suites[i].suite, "http/1.1");
        cr_assert_eq(raw_handshake(r, s), TLS_OPEN, "%s", suites[i].suite);
        cr_assert_str_eq(tls_conn_cipher(s), suites[i].suite);
        raw_exchange(r, s);
        raw_exchange(r, s);
        raw_free(r);
        tls_conn_free(s);
    }
    tls_server_free(srv);
}

/* Our client, detached after the handshake (and the TLS 1.3 ticket), against
 * a bare wolfSSL server: every AEAD both ways, the server's record layer
 * being wolfSSL's own. */
static enum tls_state raw_server_handshake(struct raw *r, struct tls_conn *c)
{
    for (int i = 0; i < 20; i++) {
        span_t p = tls_conn_pending(c);
        if (p.len) {
            cr_assert_leq(r->in_len + p.len, sizeof(r->in));
            memcpy(r->in + r->in_len, p.base, p.len);
            r->in_len += p.len;
            tls_conn_sent(c, p.len);
        }
        wolfSSL_accept(r->ssl);
        if (r->out_len) {
            char d[200];
            cr_assert_eq(tls_conn_input(c, span_of(r->out, r->out_len)), 0, "%s: %s",
                         tls_error_name(tls_conn_error(c)), tls_conn_error_detail(c, d, 200));
            r->out_len = 0;
            char sink[16]; /* reads take the ticket (TLS 1.3), then detach */
            cr_assert_eq(tls_conn_read(c, sink, sizeof(sink)), 0);
        } else if (!p.len) {
            break;
        }
    }
    return tls_conn_state(c);
}

Test(tls, detached_client_against_wolfssl_server)
{
    static const struct {
        int v13;
        const char *suite;
    } suites[] = {
        {1, "TLS13-AES128-GCM-SHA256"},        {1, "TLS13-AES256-GCM-SHA384"},
        {1, "TLS13-CHACHA20-POLY1305-SHA256"}, {0, "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {0, "ECDHE-ECDSA-AES256-GCM-SHA384"},  {0, "ECDHE-ECDSA-CHACHA20-POLY1305"},
    };
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        struct tls_client *cl = client("root.pem");
        int v = suites[i].v13 ? 13 : 12;
        cr_assert_eq(tls_client_set_versions(cl, v, v), 0);
        struct raw *r =
            raw_new(suites[i].v13 ? wolfTLSv1_3_server_method() : wolfTLSv1_2_server_method(),
                    suites[i].suite, NULL);
        cr_assert_eq(wolfSSL_use_certificate_chain_file(r->ssl, P("ec.pem")), WOLFSSL_SUCCESS);
        cr_assert_eq(wolfSSL_use_PrivateKey_file(r->ssl, P("ec.key"), WOLFSSL_FILETYPE_PEM),
                     WOLFSSL_SUCCESS);
        struct tls_conn *c = tls_conn_new_client(cl, "localhost");
        cr_assert_eq(raw_server_handshake(r, c), TLS_OPEN, "%s", suites[i].suite);
        cr_assert_str_eq(tls_conn_cipher(c), suites[i].suite);
        cr_assert_eq(tls_conn_detached(c), 1, "%s: the client kept its WOLFSSL", suites[i].suite);
        for (int round = 0; round < 3; round++) {
            struct iovec req[2] = {{"GET /sub/x ", 11}, {"HTTP/1.1\r\n\r\n", 12}};
            cr_assert_eq(tls_conn_write(c, req, 2), 23);
            span_t p = tls_conn_pending(c);
            memcpy(r->in + r->in_len, p.base, p.len);
            r->in_len += p.len;
            tls_conn_sent(c, p.len);
            char buf[64];
            cr_assert_eq(wolfSSL_read(r->ssl, buf, sizeof(buf)), 23, "%s", suites[i].suite);
            cr_assert(memcmp(buf, "GET /sub/x HTTP/1.1\r\n\r\n", 23) == 0);
            cr_assert_eq(wolfSSL_write(r->ssl, "event from wolfSSL", 18), 18);
            cr_assert_eq(tls_conn_input(c, span_of(r->out, r->out_len)), 0);
            r->out_len = 0;
            cr_assert_eq(drain(c, buf, sizeof(buf)), 18, "%s", suites[i].suite);
            cr_assert(memcmp(buf, "event from wolfSSL", 18) == 0);
        }
        /* A second TLS 1.3 ticket after detaching (OpenSSL servers send two)
         * is let go, and the stream goes on. */
        if (suites[i].v13) {
            cr_assert_eq(wolfSSL_send_SessionTicket(r->ssl), WOLFSSL_SUCCESS);
            cr_assert_eq(wolfSSL_write(r->ssl, "after", 5), 5);
            cr_assert_eq(tls_conn_input(c, span_of(r->out, r->out_len)), 0);
            r->out_len = 0;
            char buf[16];
            cr_assert_eq(drain(c, buf, sizeof(buf)), 5, "%s", suites[i].suite);
        }
        tls_conn_free(c);
        raw_free(r);
        tls_client_free(cl);
    }
}

Test(tls, client_detaches_and_still_resumes)
{
    for (int v = 12; v <= 13; v++) {
        struct pair p;
        pair_open(&p, "ec.pem", "ec.key", "root.pem", v, 0);
        cr_assert_eq(tls_conn_detached(p.c), 1, "TLS 1.%d: the client kept its WOLFSSL", v - 10);
        send_check(p.c, p.s, 3000, 3, 0);
        send_check(p.s, p.c, 20000, 5, 700);
        pair_reconnect(&p);
        cr_assert_eq(tls_conn_resumed(p.c), 1, "TLS 1.%d: not resumed", v - 10);
        cr_assert_eq(tls_conn_detached(p.c), 1);
        send_check(p.c, p.s, 100, 1, 0);
        pair_close(&p);
    }
}

Test(tls, key_update_is_refused)
{
    struct tls_server *srv = server("ec.pem", "ec.key");
    struct tls_conn *s = tls_conn_new_server(srv);
    struct raw *r = raw_new(wolfTLSv1_3_client_method(), NULL, "http/1.1");
    cr_assert_eq(raw_handshake(r, s), TLS_OPEN);
    raw_exchange(r, s);
    wolfSSL_update_keys(r->ssl);
    cr_assert_gt(r->out_len, 0);
    cr_assert_eq(tls_conn_input(s, span_of(r->out, r->out_len)), 0);
    char buf[16];
    cr_assert_eq(tls_conn_read(s, buf, sizeof(buf)), -EPROTO);
    char d[128];
    cr_assert(strstr(tls_conn_error_detail(s, d, sizeof(d)), "KeyUpdate"), "%s", d);
    cr_assert_gt(tls_conn_pending(s).len, 0, "an alert for the client");
    raw_free(r);
    tls_conn_free(s);
    tls_server_free(srv);
}

/* ---- what is not TLS ---- */

Test(tls, plain_http_detected)
{
    struct tls_server *srv = server("ec.pem", "ec.key");
    const char *reqs[] = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "POST /pub/a HTTP/1.1\r\n",
                          "OPTIONS * HTTP/1.1\r\n"};
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        for (size_t step = 0; step <= 1; step++) {
            struct tls_conn *s = tls_conn_new_server(srv);
            const char *r = reqs[i];
            int rc = 0;
            for (size_t at = 0; r[at] && rc == 0; at += step ? 1 : strlen(r))
                rc = tls_conn_input(s, span_of(r + at, step ? 1 : strlen(r)));
            cr_assert_eq(rc, -EPROTO);
            cr_assert_eq(tls_conn_state(s), TLS_FAILED);
            cr_assert_eq(tls_conn_error(s), TLS_ERR_PLAIN_HTTP);
            cr_assert(span_eq(tls_conn_pending(s), tls_plain_http_response()));
            tls_conn_free(s);
        }
    }
    span_t resp = tls_plain_http_response();
    const char *body = strstr(resp.base, "\r\n\r\n") + 4;
    cr_assert_eq((size_t)(resp.base + resp.len - body), 52, "Content-Length matches");
    tls_server_free(srv);
}

Test(tls, not_tls_detected)
{
    struct tls_server *srv = server("ec.pem", "ec.key");
    const char *inputs[] = {"\x00\x01\x02", "get / HTTP/1.1\r\n", "SSH-2.0-OpenSSH\r\n",
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct tls_conn *s = tls_conn_new_server(srv);
        size_t len = i == 0 ? 3 : strlen(inputs[i]);
        cr_assert_eq(tls_conn_input(s, span_of(inputs[i], len)), -EPROTO);
        cr_assert_eq(tls_conn_error(s), TLS_ERR_NOT_TLS, "input %zu: %s", i,
                     tls_error_name(tls_conn_error(s)));
        tls_conn_free(s);
    }
    tls_server_free(srv);
}

Test(tls, garbage_client_hello)
{
    struct tls_server *srv = server("ec.pem", "ec.key");
    /* A handshake record holding a ClientHello whose body is nonsense. */
    static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x08,
                                          0x03, 0x03, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
    struct tls_conn *s = tls_conn_new_server(srv);
    cr_assert_eq(tls_conn_input(s, span_of((const char *)hello, sizeof(hello))), -EPROTO);
    cr_assert_eq(tls_conn_error(s), TLS_ERR_BAD_HELLO, "%s", tls_error_name(tls_conn_error(s)));
    char d[200];
    cr_assert_str_not_empty(tls_conn_error_detail(s, d, sizeof(d)));
    tls_conn_free(s);
    /* A record header announcing more than a record may hold. */
    static const unsigned char huge[] = {0x16, 0x03, 0x01, 0xff, 0xff, 0x01};
    s = tls_conn_new_server(srv);
    cr_assert_eq(tls_conn_input(s, span_of((const char *)huge, sizeof(huge))), -EPROTO);
    cr_assert_eq(tls_conn_error(s), TLS_ERR_BAD_HELLO, "%s", tls_error_name(tls_conn_error(s)));
    tls_conn_free(s);
    tls_server_free(srv);
}

Test(tls, tampered_record_after_handshake)
{
    struct pair p;
    pair_open(&p, "ec.pem", "ec.key", "root.pem", 13, 0);
    struct iovec a = {"secret", 6};
    tls_conn_write(p.c, &a, 1);
    span_t ct = tls_conn_pending(p.c);
    char copy[64];
    memcpy(copy, ct.base, ct.len);
    copy[ct.len - 1] ^= 1;
    cr_assert_eq(tls_conn_input(p.s, span_of(copy, ct.len)), 0);
    char buf[16];
    cr_assert_eq(tls_conn_read(p.s, buf, sizeof(buf)), -EPROTO);
    char d[200];
    cr_assert_eq(tls_conn_error(p.s), TLS_ERR_RECORD, "%s: %s", tls_error_name(tls_conn_error(p.s)),
                 tls_conn_error_detail(p.s, d, sizeof(d)));
    pair_close(&p);
}

/* ---- certificates ---- */

Test(tls, client_rejects_unknown_ca_and_wrong_name)
{
    struct tls_server *srv = server("rsa-chain.pem", "rsa.key");
    struct tls_client *other = client("other-ca.pem");
    struct tls_conn *s = tls_conn_new_server(srv), *c = tls_conn_new_client(other, "localhost");
    cr_assert_lt(handshake(s, c, 0), 0);
    cr_assert_eq(tls_conn_error(c), TLS_ERR_CERT, "%s", tls_error_name(tls_conn_error(c)));
    tls_conn_free(s);
    tls_conn_free(c);
    tls_client_free(other);

    struct tls_client *cl = client("root.pem");
    s = tls_conn_new_server(srv);
    c = tls_conn_new_client(cl, "wrong.example");
    cr_assert_lt(handshake(s, c, 0), 0);
    cr_assert_eq(tls_conn_error(c), TLS_ERR_CERT, "%s", tls_error_name(tls_conn_error(c)));
    /* The client's alert tells the server why. */
    cr_assert_lt(move(c, s, 0, NULL, 0, NULL), 0);
    cr_assert_eq(tls_conn_error(s), TLS_ERR_ALERT, "%s", tls_error_name(tls_conn_error(s)));
    char d[200];
    cr_assert(strstr(tls_conn_error_detail(s, d, sizeof(d)), "alert"), "%s", d);
    tls_conn_free(s);
    tls_conn_free(c);

    /* The other name in subjectAltName is fine. */
    s = tls_conn_new_server(srv);
    c = tls_conn_new_client(cl, "example.test");
    cr_assert_eq(handshake(s, c, 0), 0);
    cr_assert_str_eq(tls_conn_sni(s), "example.test");
    tls_conn_free(s);
    tls_conn_free(c);
    tls_client_free(cl);
    tls_server_free(srv);
}

static void expect_server_error(const char *cert, const char *key, const char *want1,
                                const char *want2)
{
    char err[512];
    struct tls_server *s = tls_server_new(cert, key, err, sizeof(err));
    cr_assert_null(s, "tls_server_new(%s, %s) accepted them", cert, key);
    cr_assert(strstr(err, want1), "message \"%s\" lacks \"%s\"", err, want1);
    cr_assert(strstr(err, want2), "message \"%s\" lacks \"%s\"", err, want2);
}

Test(tls, certificate_and_key_errors)
{
    const char *cert = P("rsa-chain.pem"), *key = P("rsa.key");
    expect_server_error("/nonexistent/c.pem", key, "/nonexistent/c.pem",
                        "No such file or directory");
    expect_server_error(cert, "/nonexistent/k.pem", "/nonexistent/k.pem",
                        "No such file or directory");
    expect_server_error(P("notpem.txt"), key, "notpem.txt", "not PEM");
    expect_server_error(cert, P("notpem.txt"), "notpem.txt", "not a PEM private key");
    expect_server_error(key, cert, "rsa.key", "swapped");
    expect_server_error(cert, P("int.key"), "int.key", "does not match");
    expect_server_error(cert, P("ec-other.key"), "ec-other.key", "rsa-chain.pem");
    expect_server_error(P("ec.pem"), P("ec-other.key"), "ec-other.key", "ec.pem");
    if (geteuid() != 0) {
        char path[300];
        snprintf(path, sizeof(path), "%s.unreadable", P("rsa.key"));
        FILE *f = fopen(path, "w");
        fclose(f);
        chmod(path, 0);
        expect_server_error(cert, path, "unreadable", "Permission denied");
    }
}

Test(tls, expired_certificate_is_a_warning)
{
    char err[512];
    struct tls_server *s = tls_server_new(P("expired.pem"), P("expired.key"), err, sizeof(err));
    cr_assert(s, "%s", err);
    cr_assert(strstr(err, "warning") && strstr(err, "expired") && strstr(err, "expired.pem"), "%s",
              err);
    /* It still serves, to a client that does not check. */
    struct tls_client *cl = tls_client_new(NULL, 1, err, sizeof(err));
    cr_assert(cl, "%s", err);
    struct tls_conn *sc = tls_conn_new_server(s), *cc = tls_conn_new_client(cl, "localhost");
    cr_assert_eq(handshake(sc, cc, 0), 0);
    tls_conn_free(sc);
    tls_conn_free(cc);
    /* A checking client refuses it. */
    struct tls_client *strict = tls_client_new(P("root.pem"), 0, err, sizeof(err));
    cr_assert(strict, "%s", err);
    sc = tls_conn_new_server(s);
    cc = tls_conn_new_client(strict, "localhost");
    cr_assert_lt(handshake(sc, cc, 0), 0);
    cr_assert_eq(tls_conn_error(cc), TLS_ERR_CERT, "%s", tls_error_name(tls_conn_error(cc)));
    tls_conn_free(sc);
    tls_conn_free(cc);
    tls_client_free(strict);
    tls_client_free(cl);
    tls_server_free(s);
}

Test(tls, client_ca_file_errors)
{
    char err[512];
    cr_assert_null(tls_client_new("/nonexistent/ca.pem", 0, err, sizeof(err)));
    cr_assert(strstr(err, "/nonexistent/ca.pem"), "%s", err);
    cr_assert_null(tls_client_new(P("notpem.txt"), 0, err, sizeof(err)));
    cr_assert(strstr(err, "notpem.txt"), "%s", err);
}

/* ---- closing ---- */

Test(tls, close_notify_both_ways)
{
    for (int v = 12; v <= 13; v++) {
        struct pair p;
        pair_open(&p, "ec.pem", "ec.key", "root.pem", v, 0);
        size_t idle_s = tls_conn_buffered(p.s), idle_c = tls_conn_buffered(p.c);
        struct iovec a = {"last words", 10};
        tls_conn_write(p.s, &a, 1);
        cr_assert_eq(tls_conn_shutdown(p.s), 0);
        char got[32];
        size_t n = 0;
        cr_assert_geq(move(p.s, p.c, 0, got, sizeof(got), &n), 0);
        cr_assert_eq(n, 10);
        cr_assert_eq(tls_conn_state(p.c), TLS_PEER_CLOSED);
        cr_assert_eq(tls_conn_read(p.c, got, sizeof(got)), 0);
        /* The client answers with its own close_notify. */
        cr_assert_eq(tls_conn_shutdown(p.c), 0);
        cr_assert_geq(move(p.c, p.s, 0, got, sizeof(got), &n), 0);
        cr_assert_eq(tls_conn_state(p.s), TLS_PEER_CLOSED);
        cr_assert_eq(tls_conn_buffered(p.s), idle_s, "no buffer left");
        cr_assert_eq(tls_conn_buffered(p.c), idle_c, "no buffer left");
        pair_close(&p);
    }
}

Test(tls, error_names)
{
    for (int e = 0; e < TLS_ERR__COUNT; e++)
        cr_assert(tls_error_name((enum tls_error)e) && *tls_error_name((enum tls_error)e));
    cr_assert_str_eq(tls_error_name(TLS_ERR_PLAIN_HTTP), "plain_http");
    cr_assert_str_eq(tls_error_name(TLS_ERR__COUNT), "other");
}

/* ---- memory per idle connection ---- */

/* A counting allocator for wolfSSL (and tls.c, which allocates through
 * it): every live block in an open-addressed table, so the blocks an idle
 * connection keeps can be listed by size. Criterion runs each test in its
 * own process, so installing it here affects this test only. */
#define LIVE_SLOTS (1u << 20)
struct live {
    void *p;
    size_t n;
    int epoch;
};
static struct live *live;
static int live_epoch; /* 1 from the baseline on: only those blocks are listed */
static size_t live_bytes, live_blocks;
#define TOMBSTONE ((void *)1)

static size_t slot_of(void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull) & (LIVE_SLOTS - 1);
}

static void live_add(void *p, size_t n)
{
    size_t i = slot_of(p);
    while (live[i].p && live[i].p != TOMBSTONE)
        i = (i + 1) & (LIVE_SLOTS - 1);
    live[i] = (struct live){p, n, live_epoch};
    live_bytes += n;
    live_blocks++;
}

/* Forgets p; returns the size it had (0 if it was not ours). */
static size_t live_del(void *p)
{
    for (size_t i = slot_of(p); live[i].p; i = (i + 1) & (LIVE_SLOTS - 1)) {
        if (live[i].p == p) {
            live_bytes -= live[i].n;
            live_blocks--;
            live[i].p = TOMBSTONE;
            return live[i].n;
        }
    }
    return 0;
}

static void *count_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        live_add(p, n);
    return p;
}

static void count_free(void *p)
{
    if (p)
        live_del(p);
    free(p);
}

static void *count_realloc(void *p, size_t n)
{
    /* Forgotten before the call: after it p may not be looked at. */
    size_t old = p ? live_del(p) : 0;
    void *q = realloc(p, n);
    if (q)
        live_add(q, n);
    else if (p && n && old)
        live_add(p, old);
    return q;
}

/* What glibc really spends on a block of n bytes: 8 bytes of header,
 * rounded up to 16, at least 32. */
static size_t glibc_chunk(size_t n)
{
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

static int by_size_desc(const void *a, const void *b)
{
    const size_t *x = a, *y = b;
    return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : 0;
}

/* The blocks allocated since the baseline, taken while the connections
 * are idle; after they are freed, those still live were not theirs (FP_ECC's
 * cache keeps filling), so report_blocks() leaves them out. */
static struct live taken[LIVE_SLOTS];
static size_t ntaken;

static void take_blocks(void)
{
    ntaken = 0;
    for (size_t i = 0; i < LIVE_SLOTS; i++)
        if (live[i].p && live[i].p != TOMBSTONE && live[i].epoch)
            taken[ntaken++] = live[i];
}

static int is_live(void *p)
{
    for (size_t i = slot_of(p); live[i].p; i = (i + 1) & (LIVE_SLOTS - 1))
        if (live[i].p == p)
            return 1;
    return 0;
}

/* Prints, by size, the blocks the n connections held; returns their glibc
 * cost per connection. */
static size_t report_blocks(int n)
{
    static size_t sizes[LIVE_SLOTS];
    size_t k = 0, per_conn = 0;
    for (size_t i = 0; i < ntaken; i++)
        if (!is_live(taken[i].p))
            sizes[k++] = taken[i].n;
    qsort(sizes, k, sizeof(sizes[0]), by_size_desc);
    for (size_t i = 0; i < k;) {
        size_t j = i;
        while (j < k && sizes[j] == sizes[i])
            j++;
        fprintf(stderr, "  %.2f x %zu bytes\n", (double)(j - i) / n, sizes[i]);
        per_conn += (j - i) * glibc_chunk(sizes[i]);
        i = j;
    }
    return per_conn / (size_t)n;
}

/* Measured: 266 bytes in 2 blocks (the 256-byte struct tls_conn and the
 * SNI name) once the WOLFSSL object is gone; it was 54 KB with the object
 * kept. Since records come from chunks of 128 (and the SNI sits in the
 * record), about 300 bytes a connection with the chunks' slack at 400
 * connections; clients detach too (they kept ~65 KB before). Four times the measure, so only a real
 * regression trips it. */
#define IDLE_BYTES_BOUND 1024

Test(tls, memory_per_idle_connection, .timeout = 600)
{
    const char *env = getenv("RINGCAST_TLS_MEM_N");
    int n = env ? atoi(env) : 200;
    cr_assert(n > 0 && n <= 100000);
    live = calloc(LIVE_SLOTS, sizeof(*live));
    cr_assert(live);
    /* Before anything of wolfSSL's is allocated in this process. */
    cr_assert_eq(wolfSSL_SetAllocators(count_malloc, count_free, count_realloc), 0);
    struct tls_server *srv = server("ec.pem", "ec.key");
    struct tls_client *cli = client("root.pem");
    struct tls_conn **s = calloc((size_t)n, sizeof(*s)), **c = calloc((size_t)n, sizeof(*c));
    /* Connections made and dropped first, so the client's saved session
     * and wolfSSL's lazily built tables are not counted: FP_ECC's cache of
     * precomputed points (per thread, about 12 MB) fills on first uses. */
    for (int i = 0; i < 20; i++) {
        struct tls_conn *ws = tls_conn_new_server(srv);
        struct tls_conn *wc = tls_conn_new_client(cli, "localhost");
        cr_assert_eq(handshake(ws, wc, 0), 0);
        tls_conn_free(ws);
        tls_conn_free(wc);
    }
    size_t bytes0 = live_bytes, blocks0 = live_blocks;
    live_epoch = 1;
    for (int i = 0; i < n; i++) {
        s[i] = tls_conn_new_server(srv);
        c[i] = tls_conn_new_client(cli, "localhost");
        cr_assert_eq(handshake(s[i], c[i], 0), 0);
        /* A request and an answer, as a subscriber's connection has. */
        send_check(c[i], s[i], 80, 1, 0);
        send_check(s[i], c[i], 200, 1, 0);
    }
    /* Servers and clients alike (ringload's clients detach too): their
     * records share chunks (see rec_alloc in tls.c), so the figure is per
     * connection of either side. */
    double bytes = (double)(live_bytes - bytes0) / (2 * n);
    double blocks = (double)(live_blocks - blocks0) / (2 * n);
    for (int i = 0; i < n; i++)
        tls_conn_free(c[i]);
    take_blocks();
    for (int i = 0; i < n; i++)
        tls_conn_free(s[i]);
    fprintf(stderr,
            "tls: %d idle server and %d client connections: %.0f bytes requested in %.2f blocks "
            "each (everything allocated since the baseline, record chunks included; a record "
            "is %zu bytes); the servers' own blocks:\n",
            n, n, bytes, blocks, tls_conn_record_size());
    size_t glibc = report_blocks(n);
    fprintf(stderr, "  = %zu bytes per server connection with glibc's chunk overhead\n", glibc);
    cr_assert_lt(bytes, IDLE_BYTES_BOUND, "%.0f bytes per idle connection", bytes);
    free(s);
    free(c);
    tls_client_free(cli);
    tls_server_free(srv);
    cr_assert_eq(live_bytes, 0, "%zu bytes still allocated after freeing everything", live_bytes);
}

/* ---- the fuzzer's seeds ---- */

/* Saves one seed for tests/fuzz/fuzz_tls.c: a mode byte, then the bytes. */
static void save_seed(const char *dir, const char *name, uint8_t mode, span_t bytes)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s: %s", path, strerror(errno));
    fputc(mode, f);
    fwrite(bytes.base, 1, bytes.len, f);
    fclose(f);
}

/* Our client's first flight is a ClientHello record, for both versions.
 * With RINGCAST_TLS_SAVE_CORPUS=DIR set, the test also saves the seeds of
 * the fuzzer's corpus there (tests/fuzz/corpus/tls was made so). */
Test(tls, client_hello_capture)
{
    const char *dir = getenv("RINGCAST_TLS_SAVE_CORPUS");
    struct tls_server *srv = server("ec.pem", "ec.key");
    struct tls_client *cl = client("root.pem");
    for (int v = 12; v <= 13; v++) {
        cr_assert_eq(tls_client_set_versions(cl, v, v == 12 ? 12 : 13), 0);
        struct tls_conn *c = tls_conn_new_client(cl, "localhost");
        span_t hello = tls_conn_pending(c);
        cr_assert_gt(hello.len, 50);
        cr_assert_eq((uint8_t)hello.base[0], 0x16);
        cr_assert_eq((uint8_t)hello.base[5], 0x01, "a ClientHello");
        if (dir) {
            save_seed(dir, v == 12 ? "hello12" : "hello13", 0x00, hello);
            save_seed(dir, v == 12 ? "hello12_by3" : "hello13_by7", v == 12 ? 3 << 2 : 7 << 2,
                      hello);
        }
        struct tls_conn *s = tls_conn_new_server(srv);
        cr_assert_eq(handshake(s, c, 0), 0);
        struct iovec a = {"data: hello\n\n", 13};
        tls_conn_write(c, &a, 1);
        if (dir && v == 13)
            save_seed(dir, "record13", 0x01, tls_conn_pending(c));
        tls_conn_free(s);
        tls_conn_free(c);
    }
    if (dir) {
        save_seed(dir, "plain_http", 0x00, SPAN_LIT("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        save_seed(dir, "plaintext", 0x02, SPAN_LIT("data: hello\n\ndata: world\n\n"));
        save_seed(dir, "plaintext_by2", 2 | (2 << 2), SPAN_LIT("GET /sub/a HTTP/1.1\r\n\r\n"));
    }
    tls_client_free(cl);
    tls_server_free(srv);
}
