/*
 * tls.h: TLS for the server and the load generator, as a pure module over
 * byte buffers: the caller feeds ciphertext it received, reads plaintext out,
 * hands plaintext to encrypt, and collects ciphertext to send. Sockets and
 * io_uring never appear here (wolfSSL is driven through custom I/O callbacks
 * over the connection's own buffers), so the worker loop decides when bytes
 * move and the whole layer is unit-tested and fuzzed in memory.
 *
 * A struct tls_server (or tls_client) is made once at start-up, before the
 * workers run, and is then shared read-only by every worker. A struct
 * tls_conn belongs to the worker that owns its connection. Memory is the
 * point of the design: an idle connection holds no buffer, and a server
 * connection gives up its WOLFSSL object (~54 KB) once the handshake is done,
 * keeping only its record keys: 266 bytes idle (tests/test_tls.c measures).
 */
#ifndef RINGCAST_TLS_H
#define RINGCAST_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "span.h"

struct tls_server;
struct tls_client;
struct tls_conn;

/* Where a connection is. Only TLS_OPEN reads and writes application data. */
enum tls_state {
    TLS_HANDSHAKE = 0, /* waiting for (more of) the peer's handshake */
    TLS_OPEN,          /* handshake done: read and write */
    TLS_PEER_CLOSED,   /* the peer sent close_notify: flush, then close TCP */
    TLS_FAILED         /* see tls_conn_error(); flush what is pending, then close */
};

/* Why a connection failed, one counter each in the server's stats. */
enum tls_error {
    TLS_ERR_NONE = 0,
    TLS_ERR_PLAIN_HTTP, /* an HTTP request on the TLS port (a 400 is pending) */
    TLS_ERR_NOT_TLS,    /* the first bytes are neither TLS nor HTTP */
    TLS_ERR_BAD_HELLO,  /* a malformed or unexpected handshake message */
    TLS_ERR_VERSION,    /* no shared protocol version (e.g. a TLS 1.1 client) */
    TLS_ERR_CIPHER,     /* no shared cipher suite or group */
    TLS_ERR_ALPN,       /* the client offered ALPN without http/1.1 */
    TLS_ERR_ALERT,      /* the peer sent a fatal alert */
    TLS_ERR_CERT,       /* client side: the server's certificate failed verification */
    TLS_ERR_RECORD,     /* after the handshake: a record failed to decrypt or parse */
    TLS_ERR_NOMEM,
    TLS_ERR_OTHER,
    TLS_ERR__COUNT
};

/* A short stable name for stats and logs ("plain_http", "bad_hello", ...). */
const char *tls_error_name(enum tls_error e);

/* The canned answer a plain-HTTP client gets on the TLS port: a 400 saying
 * that the port speaks TLS, with Connection: close. */
span_t tls_plain_http_response(void);

/*
 * The server side: certificate chain and key in PEM, TLS 1.2 and 1.3 only,
 * ECDHE with AES-GCM or ChaCha20-Poly1305 only, ALPN http/1.1 (clients that
 * offer no ALPN are welcome; a client offering ALPN without http/1.1 is
 * refused with no_application_protocol), SNI accepted whatever the name,
 * session tickets for resumption. Returns NULL with err saying which file
 * and what is wrong (missing, unreadable, not PEM, key not matching the
 * certificate). On success err is "" or a warning worth logging (an expired
 * certificate still loads). Call before the workers start: it initialises
 * wolfSSL.
 */
struct tls_server *tls_server_new(const char *cert_file, const char *key_file, char *err,
                                  size_t errlen);
/* Frees it after every connection made from it is freed; NULL is ignored. */
void tls_server_free(struct tls_server *s);

/* A thread that made or served TLS connections is ending: frees its share of
 * wolfSSL's per-thread caches (the fixed-point ECC tables, some MB). */
void tls_thread_done(void);

/*
 * The client side for the load generator: verifies the server's chain
 * against ca_file (PEM), or the system's CAs when ca_file is NULL, and its
 * name against the host given to tls_conn_new_client(), unless insecure.
 * Offers ALPN http/1.1 and tickets; keeps the latest session so reconnects
 * resume. Returns NULL with a message in err. The session store is locked,
 * so one client may serve every thread.
 */
struct tls_client *tls_client_new(const char *ca_file, int insecure, char *err, size_t errlen);
/* Limits the versions offered: 12 or 13 for each bound (default 12..13). For
 * tests and for measuring one version; call before making connections.
 * Returns 0 or -EINVAL. */
int tls_client_set_versions(struct tls_client *cl, int min, int max);
void tls_client_free(struct tls_client *cl);

/* A server connection (NULL on ENOMEM). Nothing is allocated beyond the
 * wolfSSL object until bytes arrive. */
struct tls_conn *tls_conn_new_server(struct tls_server *s);
/* A client connection to host (SNI and name check; an IP literal gets
 * neither SNI nor a name check, only the chain check). Its ClientHello is
 * pending at once. NULL on ENOMEM. */
struct tls_conn *tls_conn_new_client(struct tls_client *cl, const char *host);
/* Frees everything, sending nothing (call tls_conn_shutdown() first for a
 * clean close). A client connection hands its session to its tls_client for
 * the next connection. NULL is ignored. */
void tls_conn_free(struct tls_conn *c);

/*
 * Takes ciphertext received from the network. All of in is consumed: what
 * wolfSSL has not processed yet is copied, so the caller may recycle its
 * receive buffer at once. During the handshake this advances it (and may
 * make bytes pending); after it, call tls_conn_read() for the plaintext.
 * Returns 0, or -EPROTO when the connection failed (tls_conn_error() says
 * why; pending may hold an alert or the plain-HTTP 400 to flush before
 * closing), or -ENOMEM.
 */
int tls_conn_input(struct tls_conn *c, span_t in);

/*
 * Decrypts into buf up to cap bytes of application data. Returns the number
 * of bytes (> 0), 0 when no more plaintext can be had from the input given so
 * far (or the peer closed: see tls_conn_state()), or -EPROTO / -ENOMEM.
 * Call until it returns 0 after each tls_conn_input(). Reading can make
 * bytes pending (an alert when the peer misbehaves; on a client, wolfSSL's
 * answer to a TLS 1.3 KeyUpdate). A server connection refuses KeyUpdate
 * (TLS_ERR_OTHER): wolfSSL does not hand out the traffic secret it needs.
 */
ssize_t tls_conn_read(struct tls_conn *c, char *buf, size_t cap);

/*
 * Encrypts the concatenation of iov[0..n) as TLS records (several ranges
 * share one record where they fit, so small messages cost one record's
 * overhead together), appended to the pending ciphertext. Returns the number
 * of plaintext bytes taken (always all of them), -ENOTCONN unless the
 * connection is open, -EPROTO or -ENOMEM. The caller bounds what it queues.
 */
ssize_t tls_conn_write(struct tls_conn *c, const struct iovec *iov, int n);

/*
 * The ciphertext waiting to go on the wire (len 0: nothing). The span stays
 * valid and unchanged until tls_conn_sent() has accounted for all of it,
 * whatever else is called meanwhile (new ciphertext queues behind it), so it
 * can be handed to the kernel as is. Call again after a full send for more.
 */
span_t tls_conn_pending(struct tls_conn *c);
/* n bytes of the pending span went out; its buffer is freed once all did. */
void tls_conn_sent(struct tls_conn *c, size_t n);

/* Queues close_notify (flush it, then close TCP). Returns 0, or -ENOTCONN if
 * the handshake never finished (nothing to say then). */
int tls_conn_shutdown(struct tls_conn *c);

enum tls_state tls_conn_state(const struct tls_conn *c);
enum tls_error tls_conn_error(const struct tls_conn *c);
/* wolfSSL's description of the failure (for a log line), or "". */
const char *tls_conn_error_detail(const struct tls_conn *c, char *buf, size_t len);

/* After the handshake: "http/1.1" or "" (the client offered no ALPN). */
span_t tls_conn_alpn(struct tls_conn *c);
/* Server side: the host name the client sent in SNI, or NULL. */
const char *tls_conn_sni(struct tls_conn *c);
/* "TLSv1.3" or "TLSv1.2"; the cipher suite's name; 1 if the session was
 * resumed (a ticket). */
const char *tls_conn_version(struct tls_conn *c);
const char *tls_conn_cipher(struct tls_conn *c);
int tls_conn_resumed(struct tls_conn *c);

/* Bytes of user-space memory the connection holds in ringcast's own buffers
 * (not wolfSSL's; see tests/test_tls.c for the whole measurement). */
size_t tls_conn_buffered(const struct tls_conn *c);
/* The size of one connection's record (they come in chunks of 128). */
size_t tls_conn_record_size(void);
/* 1 when a server connection's handshake left it with only its record keys
 * (the small, usual case), 0 when it stayed on wolfSSL (~54 KB). */
int tls_conn_detached(const struct tls_conn *c);

#endif
