/*
 * tls.c: wolfSSL driven over byte buffers. wolfSSL's I/O callbacks read the
 * connection's copy of received ciphertext and append what it sends to the
 * connection's outgoing buffer; nothing here touches a socket.
 *
 * Owns: one WOLFSSL_CTX per tls_server / tls_client (made at start-up,
 * shared read-only by the workers), and per connection up to three buffers
 * (ciphertext in, ciphertext being filled, the ciphertext span handed to the
 * kernel), each freed as soon as it is empty. A connection holds its
 * WOLFSSL object (about 54 KB with Debian's build) only for the handshake
 * (a client: until the server's ticket is in, for resumption): then it keeps
 * the AEAD keys and sequence numbers (~100 bytes), frees the object, and
 * runs the record layer itself with wolfCrypt's AES-GCM and
 * ChaCha20-Poly1305, as kernel TLS offload does. A connection is used by one
 * thread only. Deliberately absent: client certificates, renegotiation,
 * 0-RTT data, TLS 1.3 KeyUpdate on a detached connection (refused).
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/pem.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "util.h"

/* TLS 1.3 suites first (wolfSSL picks the server's order); then TLS 1.2
 * ECDHE with AEAD only. */
static const char cipher_list[] =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static const char alpn_http11[] = "http/1.1";

/* The most plaintext one record carries (RFC 8446 section 5.1): writes are
 * gathered up to this so small messages share a record. */
#define TLS_RECORD_MAX 16384

/* A growable byte buffer: bytes [off, len) are live. */
struct buf {
    char *p;
    uint32_t off, len, cap;
};

struct tls_server {
    WOLFSSL_CTX *ctx;
};

struct tls_client {
    WOLFSSL_CTX *ctx;
    int insecure;
    pthread_mutex_t lock; /* guards session */
    WOLFSSL_SESSION *session;
};

/* A detached connection's record protection, one direction each. */
enum { AEAD_AES_GCM = 1, AEAD_CHACHA = 2 };
struct tls_keys {
    uint8_t key_r[32], key_w[32]; /* read: the peer's write key; write: ours */
    uint8_t iv_r[12], iv_w[12];   /* TLS 1.2 AES-GCM uses the first 4 (the salt) */
    uint64_t seq_r, seq_w;
    uint8_t key_len;
    uint8_t aead;  /* AEAD_* */
    uint8_t tls13; /* 1: TLS 1.3 record format, else TLS 1.2 */
};

struct tls_conn {
    WOLFSSL *ssl;                  /* NULL once detached */
    struct tls_client *client;     /* NULL on the server side */
    struct buf in;                 /* received ciphertext wolfSSL has not read yet */
    struct buf fill;               /* ciphertext produced, not yet handed out */
    struct buf flight;             /* the span tls_conn_pending() returned */
    int wolf_err;                  /* wolfSSL's code for the failure, for the detail */
    uint8_t state;                 /* enum tls_state */
    uint8_t err;                   /* enum tls_error */
    uint8_t nomem;                 /* the send callback could not grow fill */
    uint8_t saved;                 /* client: its session went to the tls_client */
    uint8_t ticket;                /* client: a ticket came on this connection */
    uint8_t sniffed;               /* server: the first bytes were a TLS record */
    uint8_t detached;              /* keys below, no WOLFSSL */
    uint8_t alpn_http11;           /* detached: ALPN chose http/1.1 */
    uint8_t resumed;               /* detached: the handshake resumed a session */
    uint32_t rec_len;              /* detached: bytes of the decrypted record at in.off */
    uint32_t plain_rel, plain_len; /* its plaintext not yet read, from in.off */
    const char *version, *cipher;  /* detached: wolfSSL's static names */
    char *sni;                     /* detached: the client's SNI (sni_short or heap), or NULL */
    char sni_short[40];            /* a name that fits: no block of its own */
    const char *why;               /* detached: our own failure detail */
    struct tls_keys k;
};

/* ---- names ---- */

static const char *const error_names[TLS_ERR__COUNT] = {
    [TLS_ERR_NONE] = "none",       [TLS_ERR_PLAIN_HTTP] = "plain_http",
    [TLS_ERR_NOT_TLS] = "not_tls", [TLS_ERR_BAD_HELLO] = "bad_hello",
    [TLS_ERR_VERSION] = "version", [TLS_ERR_CIPHER] = "no_shared_cipher",
    [TLS_ERR_ALPN] = "alpn",       [TLS_ERR_ALERT] = "peer_alert",
    [TLS_ERR_CERT] = "bad_cert",   [TLS_ERR_RECORD] = "bad_record",
    [TLS_ERR_NOMEM] = "nomem",     [TLS_ERR_OTHER] = "other",
};

const char *tls_error_name(enum tls_error e)
{
    return (unsigned)e < TLS_ERR__COUNT ? error_names[e] : "other";
}

static const char plain_http_400[] = "HTTP/1.1 400 Bad Request\r\n"
                                     "Content-Type: text/plain\r\n"
                                     "Content-Length: 52\r\n"
                                     "Connection: close\r\n"
                                     "\r\n"
                                     "This port speaks TLS: use https:// or wss:// here.\r\n";

span_t tls_plain_http_response(void)
{
    return SPAN_LIT(plain_http_400);
}

/* ---- buffers ---- */

/* Our own allocations go through wolfSSL's allocator too, so one counting
 * allocator (wolfSSL_SetAllocators) sees a connection's whole cost. */
static void buf_free(struct buf *b)
{
    if (b->p)
        wolfSSL_Free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Makes room for n more bytes at the end of b (moving the live bytes to
 * the front first: they usually are few); returns where they go, or NULL. */
static uint8_t *buf_reserve(struct buf *b, size_t n)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (n > (1u << 30) - (size_t)(b->len - b->off))
        return NULL;
    if (b->cap - b->len < n && b->off > 0) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len < n) {
        size_t want = (size_t)b->len + n, cap = b->cap ? b->cap : 512;
        while (cap < want)
            cap *= 2;
        char *np = wolfSSL_Realloc(b->p, cap);
        if (!np)
            return NULL;
        b->p = np;
        b->cap = (uint32_t)cap;
    }
    return (uint8_t *)b->p + b->len;
}

static int buf_append(struct buf *b, const char *p, size_t n)
{
    uint8_t *dst = buf_reserve(b, n);
    if (!dst)
        return -ENOMEM;
    memcpy(dst, p, n);
    b->len += (uint32_t)n;
    return 0;
}

/* Frees b once everything in it was consumed: an idle connection holds no
 * buffer. */
static void buf_release_if_empty(struct buf *b)
{
    if (b->off == b->len)
        buf_free(b);
}

/* ---- wolfSSL's I/O callbacks ---- */

static int io_recv(WOLFSSL *ssl, char *out, int sz, void *arg)
{
    (void)ssl;
    struct tls_conn *c = arg;
    size_t avail = c->in.len - c->in.off;
    if (avail == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = avail < (size_t)sz ? avail : (size_t)sz;
    memcpy(out, c->in.p + c->in.off, n);
    c->in.off += (uint32_t)n;
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *data, int sz, void *arg)
{
    (void)ssl;
    struct tls_conn *c = arg;
    if (buf_append(&c->fill, data, (size_t)sz) < 0) {
        c->nomem = 1;
        return WOLFSSL_CBIO_ERR_GENERAL;
    }
    return sz;
}

/* ---- start-up: files ---- */

/* Reads a whole (small) file into a NUL-terminated heap copy. */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen, const char *what)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    for (;;) {
        if (!p) {
            snprintf(err, errlen, "%s %s: out of memory", what, path);
            fclose(f);
            return NULL;
        }
        n += fread(p + n, 1, cap - n - 1, f);
        if (n < cap - 1 || cap >= (1u << 24))
            break;
        char *np = realloc(p, cap *= 2);
        if (!np)
            free(p);
        p = np;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s %s: cannot read it", what, path);
        free(p);
        return NULL;
    }
    p[n] = '\0';
    *len = n;
    return p;
}

/* Warns (in err) about a certificate outside its validity period: the
 * server starts anyway, since refusing would turn a renewal slip into an
 * outage, but whoever reads the log should know clients will balk. */
static void check_validity(WOLFSSL_X509 *leaf, const char *path, char *err, size_t errlen)
{
    if (wolfSSL_X509_cmp_current_time(wolfSSL_X509_get_notAfter(leaf)) < 0)
        snprintf(err, errlen, "warning: certificate %s has expired: clients will refuse it", path);
    else if (wolfSSL_X509_cmp_current_time(wolfSSL_X509_get_notBefore(leaf)) > 0)
        snprintf(err, errlen, "warning: certificate %s is not valid yet: clients will refuse it",
                 path);
}

/* Loads the chain into ctx; *leaf gets the first certificate, the one the
 * key must match. */
static int load_cert(WOLFSSL_CTX *ctx, const char *path, WOLFSSL_X509 **leaf, char *err,
                     size_t errlen)
{
    size_t len;
    char *pem = slurp(path, &len, err, errlen, "certificate");
    if (!pem)
        return -1;
    int rc = -1;
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----")) {
        if (strstr(pem, "PRIVATE KEY-----"))
            snprintf(err, errlen,
                     "certificate %s holds a private key, not a certificate "
                     "(are the certificate and key files swapped?)",
                     path);
        else
            snprintf(err, errlen, "certificate %s is not PEM: expected -----BEGIN CERTIFICATE-----",
                     path);
    } else if (wolfSSL_CTX_use_certificate_chain_buffer(ctx, (const unsigned char *)pem,
                                                        (long)len) != WOLFSSL_SUCCESS ||
               !(*leaf = wolfSSL_X509_load_certificate_buffer((const unsigned char *)pem, (int)len,
                                                              WOLFSSL_FILETYPE_PEM))) {
        snprintf(err, errlen, "certificate %s: cannot parse the PEM certificate chain", path);
    } else {
        err[0] = '\0';
        check_validity(*leaf, path, err, errlen);
        rc = 0;
    }
    free(pem);
    return rc;
}

/* Whether key is the private half of leaf's public key: signs a message
 * with one and verifies with the other. wolfSSL_CTX_check_private_key()
 * cannot be trusted for this: in wolfSSL 5.5.4 it accepts any ECDSA key of
 * the right curve. */
static int key_matches(WOLFSSL_X509 *leaf, WOLFSSL_EVP_PKEY *key)
{
    static const unsigned char msg[] = "ringcast: does this key match the certificate?";
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    WOLFSSL_EVP_PKEY *pub = wolfSSL_X509_get_pubkey(leaf);
    WOLFSSL_EVP_MD_CTX *m = wolfSSL_EVP_MD_CTX_new();
    int ok = pub && m &&
             wolfSSL_EVP_DigestSignInit(m, NULL, wolfSSL_EVP_sha256(), NULL, key) == 1 &&
             wolfSSL_EVP_DigestSignUpdate(m, msg, sizeof(msg)) == 1 &&
             wolfSSL_EVP_DigestSignFinal(m, sig, &siglen) == 1;
    wolfSSL_EVP_MD_CTX_free(m);
    m = ok ? wolfSSL_EVP_MD_CTX_new() : NULL;
    ok = ok && m && wolfSSL_EVP_DigestVerifyInit(m, NULL, wolfSSL_EVP_sha256(), NULL, pub) == 1 &&
         wolfSSL_EVP_DigestVerifyUpdate(m, msg, sizeof(msg)) == 1 &&
         wolfSSL_EVP_DigestVerifyFinal(m, sig, siglen) == 1;
    wolfSSL_EVP_MD_CTX_free(m);
    wolfSSL_EVP_PKEY_free(pub);
    return ok;
}

static int load_key(WOLFSSL_CTX *ctx, const char *path, WOLFSSL_X509 *leaf, const char *cert_path,
                    char *err, size_t errlen)
{
    size_t len;
    char *pem = slurp(path, &len, err, errlen, "key");
    if (!pem)
        return -1;
    int rc = -1;
    WOLFSSL_BIO *bio = NULL;
    WOLFSSL_EVP_PKEY *key = NULL;
    if (strstr(pem, "ENCRYPTED")) {
        snprintf(err, errlen, "key %s is encrypted: give an unencrypted PEM key", path);
    } else if (!strstr(pem, "PRIVATE KEY-----")) {
        snprintf(err, errlen,
                 "key %s is not a PEM private key: expected -----BEGIN ... PRIVATE KEY-----", path);
    } else if (!(bio = wolfSSL_BIO_new_mem_buf(pem, (int)len)) ||
               !(key = wolfSSL_PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL))) {
        snprintf(err, errlen, "key %s: cannot parse the PEM private key", path);
    } else if (!key_matches(leaf, key)) {
        snprintf(err, errlen, "key %s does not match certificate %s", path, cert_path);
    } else if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)pem, (long)len,
                                                 WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
        snprintf(err, errlen, "key %s: wolfSSL cannot use it", path);
    } else {
        rc = 0;
    }
    wolfSSL_EVP_PKEY_free(key);
    wolfSSL_BIO_free(bio);
    /* The key was in memory only for the parse; do not leave it in the heap. */
    memset(pem, 0, len);
    free(pem);
    return rc;
}

/* ---- start-up: contexts ---- */

/* Settings both sides share: versions, suites, our I/O. */
static WOLFSSL_CTX *ctx_new(WOLFSSL_METHOD *method, char *err, size_t errlen)
{
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
        snprintf(err, errlen, "tls: wolfSSL_Init failed");
        return NULL;
    }
    WOLFSSL_CTX *ctx = method ? wolfSSL_CTX_new(method) : NULL;
    if (!ctx) {
        snprintf(err, errlen, "tls: out of memory");
        wolfSSL_Cleanup();
        return NULL;
    }
    if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_cipher_list(ctx, cipher_list) != WOLFSSL_SUCCESS) {
        snprintf(err, errlen, "tls: this wolfSSL lacks TLS 1.2/1.3 or the AEAD suites");
        wolfSSL_CTX_free(ctx);
        wolfSSL_Cleanup();
        return NULL;
    }
    wolfSSL_CTX_SetIORecv(ctx, io_recv);
    wolfSSL_CTX_SetIOSend(ctx, io_send);
    return ctx;
}

static void ctx_free(WOLFSSL_CTX *ctx)
{
    wolfSSL_CTX_free(ctx);
    wolfSSL_Cleanup();
}

struct tls_server *tls_server_new(const char *cert_file, const char *key_file, char *err,
                                  size_t errlen)
{
    struct tls_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "tls: out of memory");
        return NULL;
    }
    s->ctx = ctx_new(wolfSSLv23_server_method(), err, errlen);
    if (!s->ctx)
        goto fail;
    WOLFSSL_X509 *leaf = NULL;
    if (load_cert(s->ctx, cert_file, &leaf, err, errlen) < 0)
        goto fail_ctx;
    char warning[256];
    snprintf(warning, sizeof(warning), "%s", err);
    int rc = load_key(s->ctx, key_file, leaf, cert_file, err, errlen);
    wolfSSL_X509_free(leaf);
    if (rc < 0)
        goto fail_ctx;
    snprintf(err, errlen, "%s", warning);
    /* Tickets carry the whole session, so the server keeps no per-session
     * state and the shared session cache (a lock per row) stays out of the
     * handshake path. */
    wolfSSL_CTX_set_session_cache_mode(s->ctx, WOLFSSL_SESS_CACHE_OFF);
    wolfSSL_CTX_UseSessionTicket(s->ctx);
    return s;
fail_ctx:
    ctx_free(s->ctx);
fail:
    free(s);
    return NULL;
}

void tls_server_free(struct tls_server *s)
{
    if (!s)
        return;
    ctx_free(s->ctx);
    free(s);
}

struct tls_client *tls_client_new(const char *ca_file, int insecure, char *err, size_t errlen)
{
    struct tls_client *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        snprintf(err, errlen, "tls: out of memory");
        return NULL;
    }
    cl->ctx = ctx_new(wolfSSLv23_client_method(), err, errlen);
    if (!cl->ctx) {
        free(cl);
        return NULL;
    }
    cl->insecure = insecure;
    if (insecure) {
        wolfSSL_CTX_set_verify(cl->ctx, WOLFSSL_VERIFY_NONE, NULL);
    } else {
        int rc = ca_file ? wolfSSL_CTX_load_verify_locations(cl->ctx, ca_file, NULL)
                         : wolfSSL_CTX_load_system_CA_certs(cl->ctx);
        if (rc != WOLFSSL_SUCCESS) {
            if (ca_file)
                snprintf(err, errlen, "CA file %s: missing, unreadable or not PEM certificates",
                         ca_file);
            else
                snprintf(err, errlen, "tls: cannot load the system's CA certificates");
            ctx_free(cl->ctx);
            free(cl);
            return NULL;
        }
        wolfSSL_CTX_set_verify(cl->ctx, WOLFSSL_VERIFY_PEER, NULL);
    }
    wolfSSL_CTX_UseSessionTicket(cl->ctx);
    pthread_mutex_init(&cl->lock, NULL);
    err[0] = '\0';
    return cl;
}

int tls_client_set_versions(struct tls_client *cl, int min, int max)
{
    if ((min != 12 && min != 13) || (max != 12 && max != 13) || min > max)
        return -EINVAL;
    if (wolfSSL_CTX_SetMinVersion(cl->ctx, min == 12 ? WOLFSSL_TLSV1_2 : WOLFSSL_TLSV1_3) !=
            WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_max_proto_version(cl->ctx, max == 12 ? TLS1_2_VERSION : TLS1_3_VERSION) !=
            WOLFSSL_SUCCESS)
        return -EINVAL;
    /* A session saved under other versions would only fail the next
     * handshake. */
    pthread_mutex_lock(&cl->lock);
    if (cl->session)
        wolfSSL_SESSION_free(cl->session);
    cl->session = NULL;
    pthread_mutex_unlock(&cl->lock);
    return 0;
}

void tls_client_free(struct tls_client *cl)
{
    if (!cl)
        return;
    if (cl->session)
        wolfSSL_SESSION_free(cl->session);
    pthread_mutex_destroy(&cl->lock);
    ctx_free(cl->ctx);
    free(cl);
}

/* ---- connections ---- */

/* Connection records come from chunks of their own, not from the heap the
 * handshakes churn through. A record made before a handshake sits among the
 * ~55 KB that the handshake then allocates and frees; once those are free,
 * that one small live block keeps its page resident, and with many
 * handshakes at once each idle connection ends up pinning a 4 KB page (the
 * RSS of a cold server, or of ringload's TLS clients, per connection). A
 * chunk holds nothing but records; the chunks are freed when no record is in
 * use. Any thread may make or free a connection, hence the lock. */
#define POOL_CHUNK 128
struct pool_chunk {
    struct pool_chunk *next;
    struct tls_conn rec[POOL_CHUNK];
};
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool_chunk *pool_chunks;
static struct tls_conn *pool_free; /* linked through their ssl field */
static size_t pool_used;

static struct tls_conn *rec_alloc(void)
{
    pthread_mutex_lock(&pool_lock);
    if (!pool_free) {
        struct pool_chunk *ch = wolfSSL_Malloc(sizeof(*ch));
        if (!ch) {
            pthread_mutex_unlock(&pool_lock);
            return NULL;
        }
        ch->next = pool_chunks;
        pool_chunks = ch;
        for (int i = POOL_CHUNK - 1; i >= 0; i--) {
            ch->rec[i].ssl = (WOLFSSL *)pool_free;
            pool_free = &ch->rec[i];
        }
    }
    struct tls_conn *c = pool_free;
    pool_free = (struct tls_conn *)c->ssl;
    pool_used++;
    pthread_mutex_unlock(&pool_lock);
    memset(c, 0, sizeof(*c));
    return c;
}

static void rec_free(struct tls_conn *c)
{
    pthread_mutex_lock(&pool_lock);
    c->ssl = (WOLFSSL *)pool_free;
    pool_free = c;
    if (--pool_used == 0) { /* nothing in use: give the chunks back */
        while (pool_chunks) {
            struct pool_chunk *next = pool_chunks->next;
            wolfSSL_Free(pool_chunks);
            pool_chunks = next;
        }
        pool_free = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
}

static struct tls_conn *conn_new(WOLFSSL_CTX *ctx)
{
    struct tls_conn *c = rec_alloc();
    if (!c)
        return NULL;
    c->ssl = wolfSSL_new(ctx);
    if (!c->ssl) {
        rec_free(c);
        return NULL;
    }
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    return c;
}

struct tls_conn *tls_conn_new_server(struct tls_server *s)
{
    struct tls_conn *c = conn_new(s->ctx);
    if (!c)
        return NULL;
    /* FAILED_ON_MISMATCH: a client that offers ALPN without http/1.1 gets
     * no_application_protocol; one that offers no ALPN is not affected. */
    if (wolfSSL_UseALPN(c->ssl, (char *)alpn_http11, sizeof(alpn_http11) - 1,
                        WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
        tls_conn_free(c);
        return NULL;
    }
    return c;
}

static int is_ip_literal(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static int handshake(struct tls_conn *c);

/* wolfSSL stored a ticket the server sent (client side): the session can
 * be handed on now. */
static int on_ticket(WOLFSSL *ssl, const unsigned char *ticket, int len, void *arg)
{
    (void)ssl, (void)ticket, (void)len;
    ((struct tls_conn *)arg)->ticket = 1;
    return 0;
}

struct tls_conn *tls_conn_new_client(struct tls_client *cl, const char *host)
{
    struct tls_conn *c = conn_new(cl->ctx);
    if (!c)
        return NULL;
    c->client = cl;
    int ok = wolfSSL_UseALPN(c->ssl, (char *)alpn_http11, sizeof(alpn_http11) - 1,
                             WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) == WOLFSSL_SUCCESS;
    /* RFC 6066 section 3: no SNI for an address; its certificate check
     * would need the address in subjectAltName, which wolfSSL's name check
     * does not look at, so only the chain is checked then. */
    if (ok && host && !is_ip_literal(host)) {
        ok = wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, host, (unsigned short)strlen(host)) ==
             WOLFSSL_SUCCESS;
        if (ok && !cl->insecure)
            ok = wolfSSL_check_domain_name(c->ssl, host) == WOLFSSL_SUCCESS;
    }
    if (ok)
        ok = wolfSSL_set_SessionTicket_cb(c->ssl, on_ticket, c) == WOLFSSL_SUCCESS;
    pthread_mutex_lock(&cl->lock);
    if (ok && cl->session)
        wolfSSL_set_session(c->ssl, cl->session); /* a stale one just means a full handshake */
    pthread_mutex_unlock(&cl->lock);
    if (!ok || handshake(c) < 0) {
        tls_conn_free(c);
        return NULL;
    }
    return c;
}

/* Gives the client's session to its tls_client once it can resume (TLS 1.3
 * tickets come after the handshake, so this is retried after reads). Under
 * TLS 1.3 it waits for this connection's own ticket: a resumed connection's
 * session holds the old ticket with the new handshake's secrets until then,
 * and offering that pair fails the server's binder check (BAD_BINDER). */
static void save_session(struct tls_conn *c)
{
    if (!c->client || c->saved || c->state == TLS_HANDSHAKE || c->state == TLS_FAILED)
        return;
    if (!c->ticket && wolfSSL_version(c->ssl) == TLS1_3_VERSION)
        return;
    WOLFSSL_SESSION *sess = wolfSSL_get_session(c->ssl);
    if (!sess || !wolfSSL_SESSION_is_resumable(sess))
        return;
    sess = wolfSSL_get1_session(c->ssl);
    if (!sess)
        return;
    pthread_mutex_lock(&c->client->lock);
    WOLFSSL_SESSION *old = c->client->session;
    c->client->session = sess;
    pthread_mutex_unlock(&c->client->lock);
    if (old)
        wolfSSL_SESSION_free(old);
    c->saved = 1;
}

void tls_conn_free(struct tls_conn *c)
{
    if (!c)
        return;
    save_session(c);
    if (c->ssl)
        wolfSSL_free(c->ssl);
    if (c->sni && c->sni != c->sni_short)
        wolfSSL_Free(c->sni);
    /* The keys are secrets: do not leave them in freed memory. */
    memset(&c->k, 0, sizeof(c->k));
    buf_free(&c->in);
    buf_free(&c->fill);
    buf_free(&c->flight);
    rec_free(c);
}

/* ---- errors ---- */

static enum tls_error classify(const struct tls_conn *c, int e)
{
    switch (e) {
    case VERSION_ERROR:
    case UNSUPPORTED_PROTO_VERSION:
        return TLS_ERR_VERSION;
    case MATCH_SUITE_ERROR:
    case UNSUPPORTED_SUITE:
    case KEY_SHARE_ERROR:
    case ECC_CURVE_ERROR:
        return TLS_ERR_CIPHER;
    case UNKNOWN_ALPN_PROTOCOL_NAME_E:
        return TLS_ERR_ALPN;
    case FATAL_ERROR:
        return TLS_ERR_ALERT;
    case MEMORY_E:
    case MEMORY_ERROR:
        return TLS_ERR_NOMEM;
    case ASN_NO_SIGNER_E:
    case ASN_AFTER_DATE_E:
    case ASN_BEFORE_DATE_E:
    case ASN_SIG_CONFIRM_E:
    case DOMAIN_NAME_MISMATCH:
    case VERIFY_CERT_ERROR:
        return c->client ? TLS_ERR_CERT : TLS_ERR_BAD_HELLO;
    default:
        break;
    }
    if (c->nomem)
        return TLS_ERR_NOMEM;
    if (c->state == TLS_HANDSHAKE)
        return c->client ? TLS_ERR_OTHER : TLS_ERR_BAD_HELLO;
    switch (e) {
    case VERIFY_MAC_ERROR:
    case DECRYPT_ERROR:
    case AES_GCM_AUTH_E:
    case MAC_CMP_FAILED_E:
    case PARSE_ERROR:
    case LENGTH_ERROR:
    case BUFFER_ERROR:
    case UNKNOWN_RECORD_TYPE:
    case SANITY_MSG_E:
    case OUT_OF_ORDER_E:
        return TLS_ERR_RECORD;
    default:
        return TLS_ERR_OTHER;
    }
}

static int fail_with(struct tls_conn *c, enum tls_error why, int wolf_err)
{
    c->err = (uint8_t)why;
    c->wolf_err = wolf_err;
    c->state = TLS_FAILED;
    /* Nothing more will be read: drop what is left of the input. */
    buf_free(&c->in);
    return why == TLS_ERR_NOMEM ? -ENOMEM : -EPROTO;
}

static int fail(struct tls_conn *c, int ret)
{
    int e = wolfSSL_get_error(c->ssl, ret);
    return fail_with(c, classify(c, e), e);
}

enum tls_state tls_conn_state(const struct tls_conn *c)
{
    return (enum tls_state)c->state;
}

enum tls_error tls_conn_error(const struct tls_conn *c)
{
    return (enum tls_error)c->err;
}

const char *tls_conn_error_detail(const struct tls_conn *c, char *buf, size_t len)
{
    if (!len)
        return buf;
    buf[0] = '\0';
    if (c->err == TLS_ERR_NONE || c->err == TLS_ERR_PLAIN_HTTP || c->err == TLS_ERR_NOT_TLS)
        return buf;
    if (c->why) {
        snprintf(buf, len, "%s", c->why);
        return buf;
    }
    if (!c->ssl)
        return buf;
    if (c->err == TLS_ERR_ALERT) {
        WOLFSSL_ALERT_HISTORY h;
        if (wolfSSL_get_alert_history(c->ssl, &h) == WOLFSSL_SUCCESS) {
            snprintf(buf, len, "alert from peer: %s",
                     wolfSSL_alert_desc_string_long(h.last_rx.code));
            return buf;
        }
    }
    wolfSSL_ERR_error_string_n((unsigned long)c->wolf_err, buf, (unsigned long)len);
    return buf;
}

/* ---- the record layer of a detached connection ---- */

/* RFC 8446 section 5: types, the largest record, the AEAD tag. */
enum { CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23 };
#define REC_HDR            5
#define REC_TAG            16
#define REC_EXPLICIT       8 /* TLS 1.2 AES-GCM's explicit nonce */
#define REC_MAX_CIPHERTEXT (TLS_RECORD_MAX + 256)

static int fail_with(struct tls_conn *c, enum tls_error why, int wolf_err);

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* The per-record nonce: RFC 8446 section 5.3 (and RFC 7905 for TLS 1.2
 * ChaCha20) XOR the sequence number into the IV; TLS 1.2 AES-GCM (RFC 5288)
 * is the 4-byte salt then the explicit nonce, for which we send the
 * sequence number too. */
static void nonce(const struct tls_keys *k, const uint8_t *iv, uint64_t seq, uint8_t out[12])
{
    if (!k->tls13 && k->aead == AEAD_AES_GCM) {
        memcpy(out, iv, 4);
        put_be64(out + 4, seq);
        return;
    }
    uint8_t s[8];
    put_be64(s, seq);
    memcpy(out, iv, 12);
    for (int i = 0; i < 8; i++)
        out[4 + i] ^= s[i];
}

/* Seals or opens n bytes at p in place, tag at tag. aad is the record
 * header (TLS 1.3) or the 13-byte pseudo-header (TLS 1.2). Returns 0 or
 * wolfCrypt's error. */
static int aead(const struct tls_keys *k, int seal, const uint8_t *key, const uint8_t iv[12],
                const uint8_t *aad, size_t aadlen, uint8_t *p, size_t n, uint8_t *tag)
{
    if (k->aead == AEAD_CHACHA)
        return seal
                   ? wc_ChaCha20Poly1305_Encrypt(key, iv, aad, (word32)aadlen, p, (word32)n, p, tag)
                   : wc_ChaCha20Poly1305_Decrypt(key, iv, aad, (word32)aadlen, p, (word32)n, tag,
                                                 p);
    Aes aes;
    int rc = wc_AesInit(&aes, NULL, INVALID_DEVID);
    if (rc == 0)
        rc = wc_AesGcmSetKey(&aes, key, k->key_len);
    if (rc == 0)
        rc = seal ? wc_AesGcmEncrypt(&aes, p, p, (word32)n, iv, 12, tag, REC_TAG, aad,
                                     (word32)aadlen)
                  : wc_AesGcmDecrypt(&aes, p, p, (word32)n, iv, 12, tag, REC_TAG, aad,
                                     (word32)aadlen);
    wc_AesFree(&aes);
    return rc;
}

static void tls12_aad(uint8_t aad[13], uint64_t seq, uint8_t type, size_t len)
{
    put_be64(aad, seq);
    aad[8] = type;
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (uint8_t)(len >> 8);
    aad[12] = (uint8_t)len;
}

/* Appends one record of type carrying the plaintext gathered from iov,
 * starting at (*i, *at), up to TLS_RECORD_MAX bytes. */
static int seal_record(struct tls_conn *c, uint8_t type, const struct iovec *iov, int n, int *i,
                       size_t *at, size_t len)
{
    struct tls_keys *k = &c->k;
    size_t explicit = !k->tls13 && k->aead == AEAD_AES_GCM ? REC_EXPLICIT : 0;
    size_t inner = len + (k->tls13 ? 1 : 0);
    size_t body = explicit + inner + REC_TAG;
    uint8_t *r = buf_reserve(&c->fill, REC_HDR + body);
    if (!r)
        return fail_with(c, TLS_ERR_NOMEM, MEMORY_E);
    r[0] = k->tls13 ? CT_APPDATA : type;
    r[1] = 3;
    r[2] = 3;
    r[3] = (uint8_t)(body >> 8);
    r[4] = (uint8_t)body;
    uint8_t *p = r + REC_HDR + explicit;
    for (size_t got = 0; got < len;) {
        size_t take = iov[*i].iov_len - *at;
        if (take > len - got)
            take = len - got;
        memcpy(p + got, (const char *)iov[*i].iov_base + *at, take);
        got += take;
        *at += take;
        if (*at == iov[*i].iov_len && *i < n - 1) {
            (*i)++;
            *at = 0;
        }
        while (*at == iov[*i].iov_len && *i < n - 1) { /* empty ranges */
            (*i)++;
            *at = 0;
        }
    }
    if (k->tls13)
        p[len] = type;
    uint8_t iv[12], aad[13];
    nonce(k, k->iv_w, k->seq_w, iv);
    if (explicit)
        memcpy(r + REC_HDR, iv + 4, REC_EXPLICIT);
    if (!k->tls13)
        tls12_aad(aad, k->seq_w, type, len);
    int rc =
        aead(k, 1, k->key_w, iv, k->tls13 ? r : aad, k->tls13 ? REC_HDR : 13, p, inner, p + inner);
    if (rc != 0)
        return fail_with(c, TLS_ERR_OTHER, rc);
    k->seq_w++;
    c->fill.len += (uint32_t)(REC_HDR + body);
    return 0;
}

static int seal_bytes(struct tls_conn *c, uint8_t type, const void *p, size_t len)
{
    struct iovec v = {(void *)(uintptr_t)p, len};
    int i = 0;
    size_t at = 0;
    return seal_record(c, type, &v, 1, &i, &at, len);
}

static ssize_t rec_write(struct tls_conn *c, const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int j = 0; j < n; j++)
        total += iov[j].iov_len;
    int i = 0;
    size_t at = 0;
    while (i < n && at == iov[i].iov_len && i < n - 1) {
        i++;
        at = 0;
    }
    for (size_t left = total; left > 0;) {
        size_t len = left < TLS_RECORD_MAX ? left : TLS_RECORD_MAX;
        int rc = seal_record(c, CT_APPDATA, iov, n, &i, &at, len);
        if (rc < 0)
            return rc;
        left -= len;
    }
    return (ssize_t)total;
}

/* Fails a detached connection, telling the peer with a fatal alert. */
static int rec_fail(struct tls_conn *c, enum tls_error why, uint8_t alert, const char *detail)
{
    uint8_t a[2] = {2, alert};
    seal_bytes(c, CT_ALERT, a, 2);
    c->why = detail;
    return fail_with(c, why, 0);
}

/* Acts on a decrypted record that is not application data. */
static int rec_control(struct tls_conn *c, uint8_t type, const uint8_t *p, size_t len)
{
    if (type == CT_ALERT) {
        if (len != 2)
            return rec_fail(c, TLS_ERR_RECORD, 50, "malformed alert");
        if (p[1] == 0) { /* close_notify */
            c->state = TLS_PEER_CLOSED;
            return 0;
        }
        if (p[0] == 1 && p[1] == 90) /* user_canceled: close_notify follows */
            return 0;
        c->why = wolfSSL_alert_desc_string_long(p[1]);
        return fail_with(c, TLS_ERR_ALERT, 0);
    }
    if (type == CT_HANDSHAKE) {
        /* A client detaches after the first TLS 1.3 ticket; a later one (an
         * OpenSSL server sends two) is not needed and is let go. */
        if (c->client && c->k.tls13 && len >= 1 && p[0] == 4)
            return 0;
        /* TLS 1.3 KeyUpdate needs the traffic secret, which this wolfSSL
         * does not hand out; TLS 1.2 renegotiation we never do. */
        if (len >= 1 && p[0] == 24)
            return rec_fail(c, TLS_ERR_OTHER, 10, "KeyUpdate is not supported");
        return rec_fail(c, TLS_ERR_OTHER, 100, "renegotiation is not supported");
    }
    return rec_fail(c, TLS_ERR_RECORD, 10, "unexpected record type");
}

/* Opens the record at in.off if all of it arrived. Returns 1 with
 * plain_rel/plain_len set (or a control record acted on), 0 to wait, or
 * an error. */
static int rec_open(struct tls_conn *c)
{
    struct tls_keys *k = &c->k;
    size_t avail = c->in.len - c->in.off;
    if (avail < REC_HDR)
        return 0;
    uint8_t *r = (uint8_t *)c->in.p + c->in.off;
    size_t body = (size_t)r[3] << 8 | r[4];
    size_t explicit = !k->tls13 && k->aead == AEAD_AES_GCM ? REC_EXPLICIT : 0;
    if (body > REC_MAX_CIPHERTEXT || body < explicit + REC_TAG + (k->tls13 ? 1 : 0))
        return rec_fail(c, TLS_ERR_RECORD, 22, "record length out of range");
    if ((k->tls13 && r[0] != CT_APPDATA) ||
        (!k->tls13 && r[0] != CT_APPDATA && r[0] != CT_ALERT && r[0] != CT_HANDSHAKE))
        return rec_fail(c, TLS_ERR_RECORD, 10, "unexpected record type");
    if (avail < REC_HDR + body)
        return 0;
    uint8_t iv[12], aad[13];
    nonce(k, k->iv_r, k->seq_r, iv);
    if (explicit)
        memcpy(iv + 4, r + REC_HDR, REC_EXPLICIT);
    uint8_t *p = r + REC_HDR + explicit;
    size_t n = body - explicit - REC_TAG;
    if (!k->tls13)
        tls12_aad(aad, k->seq_r, r[0], n);
    if (aead(k, 0, k->key_r, iv, k->tls13 ? r : aad, k->tls13 ? REC_HDR : 13, p, n, p + n) != 0)
        return rec_fail(c, TLS_ERR_RECORD, 20, "bad record MAC");
    k->seq_r++;
    uint8_t type = r[0];
    if (k->tls13) {
        /* The real type is the last non-zero byte (RFC 8446 5.4). */
        while (n > 0 && p[n - 1] == 0)
            n--;
        if (n == 0)
            return rec_fail(c, TLS_ERR_RECORD, 10, "record without a content type");
        type = p[--n];
    }
    if (n > TLS_RECORD_MAX)
        return rec_fail(c, TLS_ERR_RECORD, 22, "record too long");
    c->rec_len = (uint32_t)(REC_HDR + body);
    c->plain_rel = (uint32_t)(p - r);
    c->plain_len = 0;
    if (type == CT_APPDATA) {
        c->plain_len = (uint32_t)n;
        return 1;
    }
    int rc = rec_control(c, type, p, n);
    return rc < 0 ? rc : 1;
}

static ssize_t rec_read(struct tls_conn *c, char *buf, size_t cap)
{
    for (;;) {
        if (c->plain_len > 0) {
            size_t n = c->plain_len < cap ? c->plain_len : cap;
            memcpy(buf, c->in.p + c->in.off + c->plain_rel, n);
            c->plain_rel += (uint32_t)n;
            c->plain_len -= (uint32_t)n;
            return (ssize_t)n;
        }
        if (c->rec_len) { /* done with this record */
            c->in.off += c->rec_len;
            c->rec_len = 0;
        }
        if (c->state == TLS_PEER_CLOSED) {
            buf_free(&c->in); /* nothing after close_notify counts */
            return 0;
        }
        int rc = rec_open(c);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            buf_release_if_empty(&c->in);
            return 0;
        }
    }
}

/* Takes the record keys out of a connection whose handshake is done, and
 * frees the WOLFSSL object: from here on a connection costs this struct. A
 * server detaches at once; a client once its session went to its
 * tls_client (under TLS 1.3, after the server's ticket), since only wolfSSL
 * can read a ticket. Left attached (a correct but fat connection) if the
 * cipher is not one we handle or wolfSSL still holds bytes. */
static void detach(struct tls_conn *c)
{
    WOLFSSL *ssl = c->ssl;
    struct tls_keys *k = &c->k;
    int bulk = wolfSSL_GetBulkCipher(ssl), klen = wolfSSL_GetKeySize(ssl);
    int ivlen = wolfSSL_GetIVSize(ssl), v = wolfSSL_version(ssl);
    word64 seq_r = 0, seq_w = 0;
    if ((bulk != wolfssl_aes_gcm && bulk != wolfssl_chacha) || klen <= 0 || klen > 32 ||
        (v != TLS1_2_VERSION && v != TLS1_3_VERSION) || wolfSSL_pending(ssl) > 0 ||
        wolfSSL_has_pending(ssl))
        return;
    k->aead = bulk == wolfssl_aes_gcm ? AEAD_AES_GCM : AEAD_CHACHA;
    k->tls13 = v == TLS1_3_VERSION;
    if (ivlen != (!k->tls13 && k->aead == AEAD_AES_GCM ? 4 : 12))
        return;
    k->key_len = (uint8_t)klen;
    /* Read with the peer's write key, write with ours. */
    const unsigned char *ck = wolfSSL_GetClientWriteKey(ssl), *sk = wolfSSL_GetServerWriteKey(ssl);
    const unsigned char *civ = wolfSSL_GetClientWriteIV(ssl), *siv = wolfSSL_GetServerWriteIV(ssl);
    memcpy(k->key_r, c->client ? sk : ck, (size_t)klen);
    memcpy(k->key_w, c->client ? ck : sk, (size_t)klen);
    memcpy(k->iv_r, c->client ? siv : civ, (size_t)ivlen);
    memcpy(k->iv_w, c->client ? civ : siv, (size_t)ivlen);
    wolfSSL_GetPeerSequenceNumber(ssl, &seq_r);
    wolfSSL_GetSequenceNumber(ssl, &seq_w);
    k->seq_r = seq_r;
    k->seq_w = seq_w;
    const char *sni = c->client ? NULL : wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
    if (sni) {
        size_t n = strlen(sni);
        c->sni = n < sizeof(c->sni_short) ? c->sni_short : wolfSSL_Malloc(n + 1);
        if (!c->sni)
            return; /* stay attached: no worse than before */
        memcpy(c->sni, sni, n + 1);
    }
    char *alpn = NULL;
    unsigned short alen = 0;
    c->alpn_http11 = wolfSSL_ALPN_GetProtocol(ssl, &alpn, &alen) == WOLFSSL_SUCCESS && alpn &&
                     alen == sizeof(alpn_http11) - 1 && memcmp(alpn, alpn_http11, alen) == 0;
    c->resumed = wolfSSL_session_reused(ssl) ? 1 : 0;
    c->version = wolfSSL_get_version(ssl);
    c->cipher = wolfSSL_get_cipher_name(ssl);
    c->detached = 1;
    c->ssl = NULL;
    wolfSSL_free(ssl);
}

/* ---- the handshake ---- */

/* Looks at the first bytes a server connection got. A TLS connection opens
 * with a handshake record (0x16); an HTTP client opens with a method: upper
 * case letters, then a space. Returns 1 for TLS, 0 to wait for more bytes,
 * or fails the connection. */
static int sniff(struct tls_conn *c)
{
    size_t n = c->in.len - c->in.off;
    if (n == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)c->in.p + c->in.off;
    if (p[0] == 0x16)
        return 1;
    for (size_t i = 0; i < n && i < 16; i++) {
        if (p[i] == ' ' && i > 0) {
            /* Answer in plain text: this is the one thing that helps a
             * person who typed http:// for an https:// URL. */
            if (buf_append(&c->fill, plain_http_400, sizeof(plain_http_400) - 1) < 0)
                return fail_with(c, TLS_ERR_NOMEM, 0);
            return fail_with(c, TLS_ERR_PLAIN_HTTP, 0);
        }
        if (p[i] < 'A' || p[i] > 'Z')
            return fail_with(c, TLS_ERR_NOT_TLS, 0);
    }
    return n < 16 ? 0 : fail_with(c, TLS_ERR_NOT_TLS, 0);
}

static void on_open(struct tls_conn *c)
{
    c->state = TLS_OPEN;
    /* wolfSSL frees most handshake state by itself at this point; the
     * arrays (randoms, pre-master secret) go too, explicitly. */
    wolfSSL_FreeArrays(c->ssl);
    save_session(c);
    if (!c->client || c->saved)
        detach(c);
}

static int handshake(struct tls_conn *c)
{
    int rc = wolfSSL_negotiate(c->ssl);
    if (c->nomem)
        return fail_with(c, TLS_ERR_NOMEM, MEMORY_E);
    if (rc == WOLFSSL_SUCCESS) {
        on_open(c);
        return 0;
    }
    int e = wolfSSL_get_error(c->ssl, rc);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
        return 0;
    return fail(c, rc);
}

int tls_conn_input(struct tls_conn *c, span_t in)
{
    if (c->state == TLS_FAILED)
        return c->err == TLS_ERR_NOMEM ? -ENOMEM : -EPROTO;
    if (c->state == TLS_PEER_CLOSED || in.len == 0)
        return 0; /* nothing after close_notify counts */
    if (buf_append(&c->in, in.base, in.len) < 0)
        return fail_with(c, TLS_ERR_NOMEM, MEMORY_E);
    if (c->state != TLS_HANDSHAKE)
        return 0;
    if (!c->client && !c->sniffed) {
        int rc = sniff(c);
        if (rc <= 0)
            return rc;
        c->sniffed = 1;
    }
    int rc = handshake(c);
    if (rc == 0)
        buf_release_if_empty(&c->in);
    return rc;
}

ssize_t tls_conn_read(struct tls_conn *c, char *buf, size_t cap)
{
    if (c->state == TLS_FAILED)
        return c->err == TLS_ERR_NOMEM ? -ENOMEM : -EPROTO;
    if (c->detached)
        return cap ? rec_read(c, buf, cap) : 0;
    if (c->state != TLS_OPEN || cap == 0)
        return 0;
    int n = wolfSSL_read(c->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (n > 0)
        return n;
    int e = wolfSSL_get_error(c->ssl, n);
    if (c->nomem)
        return fail_with(c, TLS_ERR_NOMEM, MEMORY_E);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
        save_session(c);
        if (c->saved) /* a client: the ticket is in, wolfSSL has done its part */
            detach(c);
        buf_release_if_empty(&c->in);
        return 0;
    }
    if (e == WOLFSSL_ERROR_ZERO_RETURN) {
        c->state = TLS_PEER_CLOSED;
        buf_free(&c->in);
        return 0;
    }
    return fail(c, n);
}

/* ---- sending ---- */

static int write_chunk(struct tls_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int rc = wolfSSL_write(c->ssl, p, chunk);
        if (c->nomem)
            return fail_with(c, TLS_ERR_NOMEM, MEMORY_E);
        if (rc <= 0)
            return fail(c, rc);
        p += rc;
        n -= (size_t)rc;
    }
    return 0;
}

ssize_t tls_conn_write(struct tls_conn *c, const struct iovec *iov, int n)
{
    if (c->state == TLS_FAILED)
        return c->err == TLS_ERR_NOMEM ? -ENOMEM : -EPROTO;
    if (c->state != TLS_OPEN && c->state != TLS_PEER_CLOSED)
        return -ENOTCONN;
    if (c->detached)
        return rec_write(c, iov, n);
    char gather[TLS_RECORD_MAX];
    size_t used = 0, total = 0;
    for (int i = 0; i < n; i++) {
        const char *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        total += len;
        if (used == 0 && len >= TLS_RECORD_MAX) {
            /* Whole records straight from the caller's bytes; only the
             * tail that does not fill a record is gathered. */
            size_t whole = len - len % TLS_RECORD_MAX;
            int rc = write_chunk(c, p, whole);
            if (rc < 0)
                return rc;
            p += whole;
            len -= whole;
        }
        while (len > 0) {
            size_t take = TLS_RECORD_MAX - used < len ? TLS_RECORD_MAX - used : len;
            memcpy(gather + used, p, take);
            used += take;
            p += take;
            len -= take;
            if (used == TLS_RECORD_MAX) {
                int rc = write_chunk(c, gather, used);
                if (rc < 0)
                    return rc;
                used = 0;
            }
        }
    }
    if (used > 0) {
        int rc = write_chunk(c, gather, used);
        if (rc < 0)
            return rc;
    }
    return (ssize_t)total;
}

span_t tls_conn_pending(struct tls_conn *c)
{
    if (c->flight.off == c->flight.len && c->fill.off != c->fill.len) {
        buf_free(&c->flight);
        c->flight = c->fill;
        memset(&c->fill, 0, sizeof(c->fill));
    }
    if (!c->flight.p)
        return SPAN_NULL;
    return span_of(c->flight.p + c->flight.off, c->flight.len - c->flight.off);
}

void tls_conn_sent(struct tls_conn *c, size_t n)
{
    size_t left = c->flight.len - c->flight.off;
    c->flight.off += (uint32_t)(n < left ? n : left);
    buf_release_if_empty(&c->flight);
}

int tls_conn_shutdown(struct tls_conn *c)
{
    if (c->state != TLS_OPEN && c->state != TLS_PEER_CLOSED)
        return -ENOTCONN;
    /* Returns "not done" until the peer's close_notify comes back; we do
     * not wait for it (RFC 8446 section 6.1 allows closing at once). */
    if (c->detached) {
        static const uint8_t close_notify[2] = {1, 0};
        return seal_bytes(c, CT_ALERT, close_notify, 2);
    }
    wolfSSL_shutdown(c->ssl);
    return c->nomem ? -ENOMEM : 0;
}

/* ---- what was agreed ---- */

span_t tls_conn_alpn(struct tls_conn *c)
{
    char *name = NULL;
    unsigned short len = 0;
    if (c->detached)
        return c->alpn_http11 ? SPAN_LIT("http/1.1") : SPAN_LIT("");
    if (c->state == TLS_HANDSHAKE ||
        wolfSSL_ALPN_GetProtocol(c->ssl, &name, &len) != WOLFSSL_SUCCESS || !name)
        return SPAN_LIT("");
    return span_of(name, len);
}

const char *tls_conn_sni(struct tls_conn *c)
{
    if (c->client)
        return NULL;
    if (c->detached)
        return c->sni;
    return wolfSSL_get_servername(c->ssl, WOLFSSL_SNI_HOST_NAME);
}

const char *tls_conn_version(struct tls_conn *c)
{
    return c->detached ? c->version : wolfSSL_get_version(c->ssl);
}

const char *tls_conn_cipher(struct tls_conn *c)
{
    return c->detached ? c->cipher : wolfSSL_get_cipher_name(c->ssl);
}

int tls_conn_resumed(struct tls_conn *c)
{
    if (c->detached)
        return c->resumed;
    return wolfSSL_session_reused(c->ssl) ? 1 : 0;
}

size_t tls_conn_buffered(const struct tls_conn *c)
{
    return sizeof(*c) + c->in.cap + c->fill.cap + c->flight.cap +
           (c->sni && c->sni != c->sni_short ? strlen(c->sni) + 1 : 0);
}

void tls_thread_done(void)
{
#ifdef FP_ECC
    wc_ecc_fp_free();
#endif
}

size_t tls_conn_record_size(void)
{
    return sizeof(struct tls_conn);
}

int tls_conn_detached(const struct tls_conn *c)
{
    return c->detached;
}
