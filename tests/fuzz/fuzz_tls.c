/*
 * fuzz_tls.c: libFuzzer driver for the TLS layer.
 *
 * The first input byte picks what the rest is and how it is cut: its low
 * two bits the mode, its upper six the size of each piece handed to
 * tls_conn_input (0: all at once). Mode 0 (and 3): ciphertext from a client
 * into a fresh server connection (the sniffing, the handshake parser).
 * Mode 1: ciphertext into a server connection that finished a real
 * handshake with our client (the detached record layer's header and length
 * checks; a record that authenticates is out of reach). Mode 2: plaintext our
 * client sends over such a connection, cut into writes, which the server
 * must read back exactly. Nothing may crash or leak, a failed connection
 * must say why, and its pending output must stay readable.
 *
 * The certificate and key are throwaway ones made for this file only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_tls: check failed at line %d: %s\n", __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char cert_pem[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBhjCCAS2gAwIBAgIUE5ohjQcNRqBPzPuxMtWu9aq6nNcwCgYIKoZIzj0EAwIw\n"
                               "GDEWMBQGA1UEAwwNcmluZ2Nhc3QtZnV6ejAgFw0yNjExMjMxOTQ5NDFaGA8yMTI2\n"
                               "MTAzMDE5NDk0MVowGDEWMBQGA1UEAwwNcmluZ2Nhc3QtZnV6ejBZMBMGByqGSM49\n"
                               "AgEGCCqGSM49AwEHA0IABLRP1vCMaiR2ThxqwztZ9/aFhYcvplu9b/bYdbZOP0zx\n"
                               "IqC0+wO95Lp6l2UBcRjTwvn0bfDDUk0g6pQk/MsbChyjUzBRMB0GA1UdDgQWBBRG\n"
                               "uJ42u4nx70qcwOu14qlxGqfHPjAfBgNVHSMEGDAWgBRGuJ42u4nx70qcwOu14qlx\n"
                               "GqfHPjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIDKVJazpZgXo\n"
                               "5Cr1pQgWsxv/1aBFxYa0Pj/fKWitvgTRAiAH/nlPsenGJdoW82KYuvWeIqRbLPfn\n"
                               "puptl8l02idYCA==\n"
                               "-----END CERTIFICATE-----\n";

static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgR3Wr710KIxcv7UXA\n"
                              "3H7rgyg0Dwz8FAmQgmFX1GlXkg6hRANCAAS0T9bwjGokdk4casM7Wff2hYWHL6Zb\n"
                              "vW/22HW2Tj9M8SKgtPsDveS6epdlAXEY08L59G3ww1JNIOqUJPzLGwoc\n"
                              "-----END PRIVATE KEY-----\n";

static struct tls_server *srv;
static struct tls_client *cli;

static void write_file(char *path, const char *text)
{
    int fd = mkstemp(path);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char cert[] = "/tmp/fuzz_tls_cert_XXXXXX", key[] = "/tmp/fuzz_tls_key_XXXXXX", err[256];
    write_file(cert, cert_pem);
    write_file(key, key_pem);
    srv = tls_server_new(cert, key, err, sizeof(err));
    unlink(cert);
    unlink(key);
    if (!srv) {
        fprintf(stderr, "fuzz_tls: %s\n", err);
        abort();
    }
    cli = tls_client_new(NULL, 1, err, sizeof(err));
    FUZZ_CHECK(cli);
    return 0;
}

/* Takes what the connection wants to send, reading it through as a
 * kernel would (ASan checks the span). */
static size_t flush(struct tls_conn *c)
{
    size_t total = 0;
    for (span_t p; (p = tls_conn_pending(c)).len > 0;) {
        volatile char sum = 0;
        for (size_t i = 0; i < p.len; i++)
            sum ^= p.base[i];
        (void)sum;
        tls_conn_sent(c, p.len);
        total += p.len;
    }
    return total;
}

/* Moves ciphertext from one connection into the other, all at once. */
static int pass(struct tls_conn *from, struct tls_conn *to)
{
    int moved = 0;
    for (span_t p; (p = tls_conn_pending(from)).len > 0; moved = 1) {
        int rc = tls_conn_input(to, p);
        tls_conn_sent(from, p.len);
        if (rc < 0)
            return rc;
    }
    return moved;
}

static int handshake(struct tls_conn *s, struct tls_conn *c)
{
    char sink[256];
    for (int i = 0; i < 20; i++) {
        int a = pass(c, s), b = pass(s, c);
        if (a < 0 || b < 0)
            return -1;
        while (tls_conn_read(c, sink, sizeof(sink)) > 0)
            ;
        if (!a && !b)
            break;
    }
    return tls_conn_state(s) == TLS_OPEN && tls_conn_state(c) == TLS_OPEN ? 0 : -1;
}

/* Feeds data into s in pieces of step bytes, reading after each. */
static void feed(struct tls_conn *s, const uint8_t *data, size_t size, size_t step)
{
    char buf[4096];
    for (size_t at = 0; at < size;) {
        size_t n = step && step < size - at ? step : size - at;
        /* An exact-size copy: ASan sees a read past what was given. */
        char *piece = malloc(n);
        memcpy(piece, data + at, n);
        int rc = tls_conn_input(s, span_of(piece, n));
        free(piece);
        at += n;
        ssize_t r = 0;
        while (rc == 0 && (r = tls_conn_read(s, buf, sizeof(buf))) > 0)
            ;
        flush(s);
        if (rc < 0 || r < 0) {
            FUZZ_CHECK(tls_conn_state(s) == TLS_FAILED);
            FUZZ_CHECK(tls_conn_error(s) != TLS_ERR_NONE);
            char d[256];
            tls_conn_error_detail(s, d, sizeof(d));
            return;
        }
    }
}

/* The client writes data cut into pieces; the server must read it back. */
static void roundtrip(struct tls_conn *s, struct tls_conn *c, const uint8_t *data, size_t size,
                      size_t step)
{
    struct iovec iov[64];
    int n = 0;
    for (size_t at = 0; at < size && n < 64; n++) {
        size_t len = step && step < size - at ? step : size - at;
        iov[n] = (struct iovec){(void *)(uintptr_t)(data + at), len};
        at += len;
    }
    size_t want = 0;
    for (int i = 0; i < n; i++)
        want += iov[i].iov_len;
    FUZZ_CHECK(tls_conn_write(c, iov, n) == (ssize_t)want);
    FUZZ_CHECK(pass(c, s) >= 0);
    char *got = malloc(want + 1);
    size_t have = 0;
    ssize_t r;
    while ((r = tls_conn_read(s, got + have, want + 1 - have)) > 0)
        have += (size_t)r;
    FUZZ_CHECK(r == 0 && have == want);
    FUZZ_CHECK(want == 0 || memcmp(got, data, want) == 0);
    free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] & 3;
    size_t step = data[0] >> 2;
    data++;
    size--;
    struct tls_conn *s = tls_conn_new_server(srv);
    FUZZ_CHECK(s);
    if (mode == 1 || mode == 2) {
        struct tls_conn *c = tls_conn_new_client(cli, "localhost");
        FUZZ_CHECK(c);
        FUZZ_CHECK(handshake(s, c) == 0);
        if (mode == 1)
            feed(s, data, size, step);
        else
            roundtrip(s, c, data, size, step);
        tls_conn_free(c);
    } else {
        feed(s, data, size, step);
    }
    tls_conn_shutdown(s);
    flush(s);
    tls_conn_free(s);
    return 0;
}
