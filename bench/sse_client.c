/*
 * sse_client.c: a small epoll SSE load client for ringcast benchmarks.
 *
 * A stand-in until ringload exists. One thread, one epoll loop:
 *   - opens N SSE subscribers (GET /sub/{ch}, Accept: text/event-stream) to
 *     host:port, ramping at a given rate, non-blocking connects; a subscriber
 *     counts as subscribed once its stream carried the `retry:` preamble line;
 *   - optionally publishes open-loop at R msgs/s for D seconds over one
 *     keep-alive connection (POST /pub/{ch}); message i is due at t0 + i/R
 *     (CLOCK_MONOTONIC) and carries "seq=I t=DUE" padded to S bytes, so
 *     latency is measured from the intended send time (no coordinated
 *     omission: a late send or a stalled server shows up as latency);
 *   - parses every stream incrementally; each `data:` line is a delivery whose
 *     latency (receive time - intended send time) goes into a log-linear
 *     histogram (< 0.4 % error); per subscriber a bitmap of sequence numbers
 *     tells loss, duplicates and reordering;
 *   - optionally samples the server's utime+stime (/proc/PID/stat) right before
 *     the first publish and right after the last expected delivery;
 *   - prints one JSON object at the end (stdout or --out).
 *
 * Every phase has a deadline; SIGTERM/SIGINT/SIGUSR1 end the run early (the
 * JSON is still printed). Build: gcc -O2 -Wall -Wextra -Werror (bench/run-sse).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* ---- options ---- */

static struct {
    const char *host;
    int port;
    int conns;
    int channels;
    const char *prefix;
    double ramp;          /* connections per second */
    double connect_timeout;
    int src_addrs;        /* spread source addresses over 127.0.0.1 .. 127.0.0.K */
    double hold;          /* seconds to stay connected after the run (idle tests) */
    const char *ready_file;
    double pub_rate;
    double pub_seconds;
    int size;
    const char *pub_channel;
    double settle;        /* seconds between "all subscribed" and the first publish */
    double drain;         /* seconds after the last due publish to wait for deliveries */
    int server_pid;
    const char *out;
    int progress;
} opt = {
    .host = "127.0.0.1", .port = 8080, .conns = 1000, .channels = 1, .prefix = "bench",
    .ramp = 5000, .connect_timeout = 60, .src_addrs = 1, .hold = 0, .pub_rate = 0,
    .pub_seconds = 0, .size = 64, .settle = 1, .drain = 10,
};

static void usage(void)
{
    fprintf(stderr,
            "usage: sse_client [options]\n"
            "  --host ADDR            server IPv4 address (127.0.0.1)\n"
            "  --port N               server port (8080)\n"
            "  --conns N              SSE subscribers (1000)\n"
            "  --channels N           spread subscribers over N channels PREFIX-i (1: PREFIX)\n"
            "  --prefix NAME          channel name prefix (bench)\n"
            "  --ramp R               new connections per second (5000)\n"
            "  --connect-timeout S    give up waiting for all subscribed after S s (60)\n"
            "  --src-addrs K          bind sources to 127.0.0.1..127.0.0.K (1: no bind)\n"
            "  --ready-file PATH      write 'subscribed N' there once all are (or timeout)\n"
            "  --hold S               stay connected S s after the run (until a signal)\n"
            "  --pub-rate R           publish R msgs/s (0: no publishing)\n"
            "  --pub-seconds D        for D seconds\n"
            "  --size S               payload bytes (64, at least 40)\n"
            "  --pub-channel NAME     channel to publish to (the first subscribed one)\n"
            "  --settle S             pause between all subscribed and publishing (1)\n"
            "  --drain S              wait up to S s after the last publish (10)\n"
            "  --server-pid PID       sample its utime+stime around the publishing phase\n"
            "  --out PATH             write the JSON result there (stdout)\n"
            "  --progress             one progress line per second on stderr\n");
    exit(2);
}

/* ---- time ---- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* ---- log-linear histogram of nanoseconds: 128 sub-buckets per power of 2 ---- */

#define H_SUB 128
#define H_BUCKETS (2 * H_SUB + 57 * H_SUB)
static uint64_t hist[H_BUCKETS];
static uint64_t hist_count, hist_max, hist_min = UINT64_MAX;
static double hist_sum;

static int h_index(uint64_t v)
{
    if (v < 2 * H_SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v); /* >= 8 */
    int shift = e - 7;               /* v >> shift in [128, 255] */
    return 2 * H_SUB + (shift - 1) * H_SUB + (int)((v >> shift) - H_SUB);
}

/* Midpoint of a bucket. */
static double h_value(int i)
{
    if (i < 2 * H_SUB)
        return i;
    int j = i - 2 * H_SUB;
    int shift = j / H_SUB + 1;
    uint64_t low = (uint64_t)(j % H_SUB + H_SUB) << shift;
    return (double)low + (double)(1ull << shift) / 2.0;
}

static void h_add(uint64_t v)
{
    hist[h_index(v)]++;
    hist_count++;
    hist_sum += (double)v;
    if (v > hist_max)
        hist_max = v;
    if (v < hist_min)
        hist_min = v;
}

static double h_pct_ms(double p)
{
    if (!hist_count)
        return 0;
    uint64_t rank = (uint64_t)(p * (double)hist_count + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t cum = 0;
    for (int i = 0; i < H_BUCKETS; i++) {
        cum += hist[i];
        if (cum >= rank) {
            double v = h_value(i);
            if (v > (double)hist_max)
                v = (double)hist_max;
            return v / 1e6;
        }
    }
    return (double)hist_max / 1e6;
}

/* ---- connections ---- */

enum { S_NEW, S_CONNECTING, S_HEAD, S_STREAM, S_CLOSED };

struct sub {
    int fd;
    uint8_t state;
    uint8_t subscribed;
    uint8_t eligible; /* subscribed before the first publish: loss is counted for it */
    uint8_t retries;
    uint32_t plen, pcap;
    char *pbuf;       /* partial line (or the response head while in S_HEAD) */
    uint32_t max_seen;
    uint32_t distinct;
    uint64_t *seen;   /* bitmap of received sequence numbers, eligible subscribers only */
};

static struct sub *subs;
static int epfd, tfd = -1;
static volatile sig_atomic_t stop_flag;

#define ID_PUB ((uint64_t)1 << 40)
#define ID_TIMER ((uint64_t)2 << 40)

/* counters */
static struct {
    uint64_t connect_attempts, connect_errors, connect_eaddrnotavail, refused;
    uint64_t http_non200, closed_before_subscribed, closed_after_subscribed, read_errors;
    int first_bad_status;
    uint64_t subscribed, late_subscribed;
    uint64_t deliveries, duplicates, reordered, malformed, out_of_range, comments, gaps;
    uint64_t deliveries_late_subs, overlong_lines;
    uint64_t pub_sent, pub_acked, pub_failed, pub_reached;
    int pub_first_bad_status;
    int pub_conn_lost;
    uint64_t first_delivery_ns, last_delivery_ns;
} st;

/* per second of intended send time, during publishing */
struct tl_sec {
    uint64_t deliveries;
    double lat_sum;
    uint64_t lat_max;
    uint64_t send_lag_max; /* how late the publisher wrote a message due in this second */
    uint64_t ack_lag_max;  /* due time -> its publish answer read */
};
static struct tl_sec *timeline;
static uint32_t timeline_len;

static int open_subs; /* connected and not closed */
static int connecting;
static int *retry_q; /* failed connects waiting to be retried (a ring) */
static int rq_head, rq_len;

static char req_buf[512];

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sse_client: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void chan_name(int i, char *out, size_t cap)
{
    if (opt.channels <= 1)
        snprintf(out, cap, "%s", opt.prefix);
    else
        snprintf(out, cap, "%s-%d", opt.prefix, i % opt.channels);
}

static struct sockaddr_in server_addr;

static int sock_connect(int idx, int *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (opt.src_addrs > 1) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(idx % opt.src_addrs));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            *err = errno;
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0 &&
        errno != EINPROGRESS) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- publishing state ---- */

static uint32_t npub;          /* messages scheduled */
static uint64_t *acked;        /* bitmap of acked sequence numbers */
static uint64_t pub_t0;        /* due time of message 1 */
static uint64_t pub_interval;  /* ns */
static uint32_t pub_next = 1;  /* next sequence to send */
static int pub_fd = -1;
static char *pub_out;
static size_t pub_out_len, pub_out_cap, pub_out_off;
static char *pub_in;
static size_t pub_in_len, pub_in_cap;
static uint64_t pub_resp_seq; /* responses are in order on the keep-alive connection */
static char pub_chan[160];
static int publishing_started;

static int bit_get(const uint64_t *b, uint32_t i)
{
    return (int)((b[i >> 6] >> (i & 63)) & 1);
}
static void bit_set(uint64_t *b, uint32_t i)
{
    b[i >> 6] |= 1ull << (i & 63);
}

static void sub_close(struct sub *s, int counted_open)
{
    if (s->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->fd = -1;
    }
    if (counted_open)
        open_subs--;
    s->state = S_CLOSED;
}

/* ---- SSE parsing ---- */

static int starts(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(p, lit, l) == 0;
}

static uint64_t parse_u64(const char **pp, const char *end, int *ok)
{
    const char *p = *pp;
    uint64_t v = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
        digits++;
    }
    *ok = digits > 0 && digits <= 20;
    *pp = p;
    return v;
}

static void on_line(struct sub *s, const char *p, size_t n, uint64_t now)
{
    if (n && p[n - 1] == '\r')
        n--;
    if (n == 0)
        return;
    if (p[0] == ':') {
        st.comments++;
        return;
    }
    if (starts(p, n, "data:")) {
        const char *q = p + 5, *end = p + n;
        if (q < end && *q == ' ')
            q++;
        int ok1 = 0, ok2 = 0;
        uint64_t seq = 0, due = 0;
        if (end - q > 4 && memcmp(q, "seq=", 4) == 0) {
            q += 4;
            seq = parse_u64(&q, end, &ok1);
            if (end - q > 3 && memcmp(q, " t=", 3) == 0) {
                q += 3;
                due = parse_u64(&q, end, &ok2);
            }
        }
        if (!ok1 || !ok2) {
            st.malformed++;
            return;
        }
        st.deliveries++;
        if (!st.first_delivery_ns)
            st.first_delivery_ns = now;
        st.last_delivery_ns = now;
        uint64_t lat = now > due ? now - due : 0;
        h_add(lat);
        if (timeline && due >= pub_t0) {
            uint64_t k = (due - pub_t0) / 1000000000ull;
            if (k < timeline_len) {
                timeline[k].deliveries++;
                timeline[k].lat_sum += (double)lat;
                if (lat > timeline[k].lat_max)
                    timeline[k].lat_max = lat;
            }
        }
        if (seq < 1 || seq > npub) {
            st.out_of_range++;
            return;
        }
        if (!s->eligible) {
            st.deliveries_late_subs++;
            return;
        }
        uint32_t q32 = (uint32_t)seq;
        if (bit_get(s->seen, q32)) {
            st.duplicates++;
            return;
        }
        bit_set(s->seen, q32);
        s->distinct++;
        if (q32 < s->max_seen)
            st.reordered++;
        else
            s->max_seen = q32;
        return;
    }
    if (starts(p, n, "retry:")) {
        if (!s->subscribed) {
            s->subscribed = 1;
            st.subscribed++;
            if (publishing_started)
                st.late_subscribed++;
        }
        return;
    }
    if (starts(p, n, "event:")) {
        const char *q = p + 6;
        size_t m = n - 6;
        if (m && *q == ' ')
            q++, m--;
        if (m == 3 && memcmp(q, "gap", 3) == 0)
            st.gaps++;
        return;
    }
    /* id: and anything else: ignored */
}

#define MAX_LINE (1u << 20)

static int pbuf_append(struct sub *s, const char *p, size_t n)
{
    if (s->plen + n > MAX_LINE) {
        st.overlong_lines++;
        s->plen = 0;
        return -1;
    }
    if (s->plen + n > s->pcap) {
        uint32_t cap = s->pcap ? s->pcap : 128;
        while (cap < s->plen + n)
            cap *= 2;
        char *nb = realloc(s->pbuf, cap);
        if (!nb)
            die("out of memory");
        s->pbuf = nb;
        s->pcap = cap;
    }
    memcpy(s->pbuf + s->plen, p, n);
    s->plen += (uint32_t)n;
    return 0;
}

static void feed_stream(struct sub *s, const char *p, size_t n, uint64_t now)
{
    const char *end = p + n;
    if (s->plen) {
        const char *nl = memchr(p, '\n', n);
        if (!nl) {
            pbuf_append(s, p, n);
            return;
        }
        if (pbuf_append(s, p, (size_t)(nl - p)) == 0)
            on_line(s, s->pbuf, s->plen, now);
        s->plen = 0;
        p = nl + 1;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            pbuf_append(s, p, (size_t)(end - p));
            return;
        }
        on_line(s, p, (size_t)(nl - p), now);
        p = nl + 1;
    }
}

/* Feeds received bytes: first the response head (kept in pbuf until it is
 * complete; a non-200 status closes the subscriber), then the event stream. */
static void feed(struct sub *s, const char *p, size_t n, uint64_t now)
{
    if (s->state == S_HEAD) {
        uint32_t old = s->plen;
        if (pbuf_append(s, p, n) < 0) {
            sub_close(s, 1);
            return;
        }
        char *h = memmem(s->pbuf, s->plen, "\r\n\r\n", 4);
        if (!h)
            return;
        size_t headlen = (size_t)(h - s->pbuf) + 4;
        int status = 0;
        if (s->plen >= 12 && memcmp(s->pbuf, "HTTP/1.", 7) == 0)
            status = atoi(s->pbuf + 9);
        if (status != 200) {
            st.http_non200++;
            if (!st.first_bad_status)
                st.first_bad_status = status ? status : -1;
            sub_close(s, 1);
            return;
        }
        s->state = S_STREAM;
        size_t body_off = headlen - old; /* offset into p where the body starts */
        s->plen = 0;
        if (body_off < n)
            feed_stream(s, p + body_off, n - body_off, now);
        return;
    }
    feed_stream(s, p, n, now);
}

static char rbuf[1 << 16];

static void on_sub_event(struct sub *s, uint32_t ev)
{
    if (s->state == S_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            st.connect_errors++;
            if (err == ECONNREFUSED)
                st.refused++;
            epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
            close(s->fd);
            s->fd = -1;
            s->state = S_NEW;
            s->retries++;
            connecting--;
            if (s->retries < 20) { /* retried by the ramp while its deadline lasts */
                retry_q[(rq_head + rq_len) % opt.conns] = (int)(s - subs);
                rq_len++;
            }
            return;
        }
        if (!(ev & EPOLLOUT))
            return;
        connecting--;
        open_subs++;
        int idx = (int)(s - subs);
        char ch[160];
        chan_name(idx, ch, sizeof(ch));
        int n = snprintf(req_buf, sizeof(req_buf),
                         "GET /sub/%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n",
                         ch, opt.host);
        ssize_t w = write(s->fd, req_buf, (size_t)n);
        if (w != n) { /* a fresh socket takes ~100 bytes; anything else is an error */
            st.read_errors++;
            sub_close(s, 1);
            return;
        }
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)idx};
        epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &e);
        s->state = S_HEAD;
        return;
    }
    if (s->state != S_HEAD && s->state != S_STREAM)
        return;
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t r = read(s->fd, rbuf, sizeof(rbuf));
        if (r > 0) {
            feed(s, rbuf, (size_t)r, mono_ns());
            if (s->state == S_CLOSED)
                return;
            if ((size_t)r < sizeof(rbuf))
                break;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (r < 0)
            st.read_errors++;
        if (s->subscribed)
            st.closed_after_subscribed++;
        else
            st.closed_before_subscribed++;
        sub_close(s, 1);
        return;
    }
}

/* ---- publisher ---- */

static void pub_flush(void)
{
    while (pub_out_off < pub_out_len) {
        ssize_t w = write(pub_fd, pub_out + pub_out_off, pub_out_len - pub_out_off);
        if (w > 0) {
            pub_out_off += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        st.pub_conn_lost = 1;
        return;
    }
    if (pub_out_off == pub_out_len)
        pub_out_off = pub_out_len = 0;
    struct epoll_event e = {.events = EPOLLIN | (pub_out_len ? EPOLLOUT : 0), .data.u64 = ID_PUB};
    epoll_ctl(epfd, EPOLL_CTL_MOD, pub_fd, &e);
}

static void pub_append(const char *p, size_t n)
{
    if (pub_out_len + n > pub_out_cap) {
        size_t cap = pub_out_cap ? pub_out_cap : 4096;
        while (cap < pub_out_len + n)
            cap *= 2;
        pub_out = realloc(pub_out, cap);
        if (!pub_out)
            die("out of memory");
        pub_out_cap = cap;
    }
    memcpy(pub_out + pub_out_len, p, n);
    pub_out_len += n;
}

static void pub_send_due(uint64_t now)
{
    char head[256];
    char *body = malloc((size_t)opt.size + 1);
    if (!body)
        die("out of memory");
    while (pub_next <= npub && !st.pub_conn_lost) {
        uint64_t due = pub_t0 + (uint64_t)(pub_next - 1) * pub_interval;
        if (due > now)
            break;
        int bl = snprintf(body, (size_t)opt.size + 1, "seq=%010" PRIu32 " t=%020" PRIu64 " ",
                          pub_next, due);
        if (bl < opt.size)
            memset(body + bl, 'x', (size_t)(opt.size - bl));
        int hl = snprintf(head, sizeof(head),
                          "POST /pub/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n",
                          pub_chan, opt.host, opt.size);
        pub_append(head, (size_t)hl);
        pub_append(body, (size_t)opt.size);
        uint64_t k = (due - pub_t0) / 1000000000ull;
        if (k < timeline_len && now - due > timeline[k].send_lag_max)
            timeline[k].send_lag_max = now - due;
        st.pub_sent++;
        pub_next++;
    }
    free(body);
    pub_flush();
    if (pub_next <= npub) {
        uint64_t due = pub_t0 + (uint64_t)(pub_next - 1) * pub_interval;
        struct itimerspec its = {.it_value = {.tv_sec = (time_t)(due / 1000000000ull),
                                              .tv_nsec = (long)(due % 1000000000ull)}};
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
    }
}

static void pub_read(void)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        if (pub_in_cap - pub_in_len < 4096) {
            pub_in_cap = pub_in_cap ? pub_in_cap * 2 : 16384;
            pub_in = realloc(pub_in, pub_in_cap);
            if (!pub_in)
                die("out of memory");
        }
        ssize_t r = read(pub_fd, pub_in + pub_in_len, pub_in_cap - pub_in_len);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (r <= 0) {
            st.pub_conn_lost = 1;
            epoll_ctl(epfd, EPOLL_CTL_DEL, pub_fd, NULL);
            return;
        }
        pub_in_len += (size_t)r;
        /* parse complete responses */
        size_t off = 0;
        for (;;) {
            char *h = memmem(pub_in + off, pub_in_len - off, "\r\n\r\n", 4);
            if (!h)
                break;
            size_t headlen = (size_t)(h - (pub_in + off)) + 4;
            size_t clen = 0;
            for (char *p = pub_in + off; p < h; p++) {
                if ((*p == 'C' || *p == 'c') && strncasecmp(p, "Content-Length:", 15) == 0) {
                    clen = (size_t)strtoul(p + 15, NULL, 10);
                    break;
                }
            }
            if (pub_in_len - off < headlen + clen)
                break;
            int status = atoi(pub_in + off + 9);
            pub_resp_seq++;
            if (pub_resp_seq <= npub) {
                uint64_t due = pub_t0 + (pub_resp_seq - 1) * pub_interval, now = mono_ns();
                uint64_t k = (due - pub_t0) / 1000000000ull;
                if (k < timeline_len && now > due && now - due > timeline[k].ack_lag_max)
                    timeline[k].ack_lag_max = now - due;
            }
            if (status == 200 && pub_resp_seq <= npub) {
                st.pub_acked++;
                bit_set(acked, (uint32_t)pub_resp_seq);
                char *body = pub_in + off + headlen;
                char *sp = memmem(body, clen, "\"subscribers\":", 14);
                if (sp)
                    st.pub_reached += strtoull(sp + 14, NULL, 10);
            } else {
                st.pub_failed++;
                if (!st.pub_first_bad_status)
                    st.pub_first_bad_status = status ? status : -1;
            }
            off += headlen + clen;
        }
        if (off) {
            memmove(pub_in, pub_in + off, pub_in_len - off);
            pub_in_len -= off;
        }
    }
}

/* ---- server CPU ---- */

static int read_proc_ticks(int pid, uint64_t *ut, uint64_t *stt)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2; /* field 3 */
    unsigned long long u = 0, s = 0;
    /* fields 3..13 skipped, 14 utime, 15 stime */
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &u, &s) != 2)
        return -1;
    *ut = u;
    *stt = s;
    return 0;
}

/* Per-thread utime+stime of the server, to see how the work splits over
 * its workers. */
#define MAX_TASKS 64
struct task_ticks {
    int n;
    int tid[MAX_TASKS];
    uint64_t ut[MAX_TASKS], stt[MAX_TASKS];
};

static void read_task_ticks(int pid, struct task_ticks *t)
{
    char path[64];
    t->n = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && t->n < MAX_TASKS) {
        int tid = atoi(e->d_name);
        if (tid <= 0)
            continue;
        char tp[96], buf[2048];
        snprintf(tp, sizeof(tp), "/proc/%d/task/%d/stat", pid, tid);
        int fd = open(tp, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        unsigned long long u, s;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &u, &s) != 2)
            continue;
        t->tid[t->n] = tid;
        t->ut[t->n] = u;
        t->stt[t->n] = s;
        t->n++;
    }
    closedir(d);
}

/* Machine-wide busy time (all CPUs, every state but idle and iowait), in
 * ticks, and this process's CPU time in ticks: so a run can tell how much CPU
 * something else on the box took meanwhile. */
static uint64_t machine_steal;

static uint64_t machine_busy_ticks(void)
{
    char buf[512];
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    unsigned long long v[10] = {0};
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) < 8)
        return 0;
    /* user nice system idle iowait irq softirq steal (guest* are inside user);
     * steal (the hypervisor running something else) is kept apart */
    machine_steal = v[7];
    return v[0] + v[1] + v[2] + v[5] + v[6];
}

static double self_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- main ---- */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static double parse_num(const char *s, const char *name)
{
    char *e;
    double v = strtod(s, &e);
    if (*e || v < 0)
        die("bad value for %s: %s", name, s);
    return v;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", 1, 0, 'h'},          {"port", 1, 0, 'p'},         {"conns", 1, 0, 'n'},
        {"channels", 1, 0, 'c'},      {"prefix", 1, 0, 'x'},       {"ramp", 1, 0, 'r'},
        {"connect-timeout", 1, 0, 'T'}, {"src-addrs", 1, 0, 'a'},  {"ready-file", 1, 0, 'f'},
        {"hold", 1, 0, 'H'},          {"pub-rate", 1, 0, 'R'},     {"pub-seconds", 1, 0, 'D'},
        {"size", 1, 0, 'S'},          {"pub-channel", 1, 0, 'C'},  {"settle", 1, 0, 's'},
        {"drain", 1, 0, 'd'},         {"server-pid", 1, 0, 'P'},   {"out", 1, 0, 'o'},
        {"progress", 0, 0, 'g'},      {"help", 0, 0, '?'},         {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = (int)parse_num(optarg, "--port"); break;
        case 'n': opt.conns = (int)parse_num(optarg, "--conns"); break;
        case 'c': opt.channels = (int)parse_num(optarg, "--channels"); break;
        case 'x': opt.prefix = optarg; break;
        case 'r': opt.ramp = parse_num(optarg, "--ramp"); break;
        case 'T': opt.connect_timeout = parse_num(optarg, "--connect-timeout"); break;
        case 'a': opt.src_addrs = (int)parse_num(optarg, "--src-addrs"); break;
        case 'f': opt.ready_file = optarg; break;
        case 'H': opt.hold = parse_num(optarg, "--hold"); break;
        case 'R': opt.pub_rate = parse_num(optarg, "--pub-rate"); break;
        case 'D': opt.pub_seconds = parse_num(optarg, "--pub-seconds"); break;
        case 'S': opt.size = (int)parse_num(optarg, "--size"); break;
        case 'C': opt.pub_channel = optarg; break;
        case 's': opt.settle = parse_num(optarg, "--settle"); break;
        case 'd': opt.drain = parse_num(optarg, "--drain"); break;
        case 'P': opt.server_pid = (int)parse_num(optarg, "--server-pid"); break;
        case 'o': opt.out = optarg; break;
        case 'g': opt.progress = 1; break;
        default: usage();
        }
    }
    if (opt.conns < 0 || opt.channels < 1 || opt.ramp <= 0 || opt.src_addrs < 1 ||
        opt.src_addrs > 250)
        usage();
    if (opt.size < 40 || opt.size > 1 << 20)
        die("--size must be 40..1048576 (the payload carries seq and send time)");
    double npub_d = opt.pub_rate * opt.pub_seconds;
    if (npub_d > 100e6)
        die("too many messages (rate x seconds > 1e8)");
    npub = (uint32_t)(npub_d + 0.5);
    if (opt.pub_channel)
        snprintf(pub_chan, sizeof(pub_chan), "%s", opt.pub_channel);
    else
        chan_name(0, pub_chan, sizeof(pub_chan));

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((uint64_t)opt.conns + 16 > (uint64_t)rl.rlim_cur)
        die("--conns %d does not fit the open-files limit %llu", opt.conns,
            (unsigned long long)rl.rlim_cur);

    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1)
        die("bad --host %s (IPv4 only)", opt.host);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    subs = calloc((size_t)opt.conns + 1, sizeof(*subs));
    if (!subs)
        die("out of memory");
    retry_q = calloc((size_t)opt.conns + 1, sizeof(int));
    if (!retry_q)
        die("out of memory");
    for (int i = 0; i < opt.conns; i++)
        subs[i].fd = -1;
    size_t words = npub ? (npub + 1 + 63) / 64 : 0;
    if (npub) {
        timeline_len = (uint32_t)(opt.pub_seconds + 1.999);
        timeline = calloc(timeline_len, sizeof(*timeline));
        if (!timeline)
            die("out of memory");
        acked = calloc(words, sizeof(uint64_t));
        if (!acked)
            die("out of memory");
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1: %s", strerror(errno));

    enum { P_RAMP, P_SETTLE, P_PUB, P_DRAIN, P_HOLD, P_DONE } phase = P_RAMP;
    const char *phase_names[] = {"ramp", "settle", "publish", "drain", "hold", "done"};
    uint64_t start = mono_ns();
    uint64_t ramp_deadline = start + (uint64_t)(opt.connect_timeout * 1e9);
    uint64_t ramp_done_ns = 0, settle_end = 0, drain_deadline = 0, hold_end = 0;
    uint64_t pub_done_ns = 0, deliveries_done_ns = 0;
    int next_new = 0;   /* next subscriber never connected */
    int started = 0;    /* connects issued for the first time */
    int have_cpu = 0;
    uint64_t srv_u0 = 0, srv_s0 = 0, srv_u1 = 0, srv_s1 = 0;
    static struct task_ticks tasks0, tasks1;
    uint64_t mach0 = 0, mach1 = 0, mach_t0 = 0, mach_t1 = 0, steal0 = 0, steal1 = 0;
    double self0 = 0, self1 = 0;
    uint64_t pub_deliveries0 = 0;
    int complete = 0;
    uint64_t last_progress = start;
    struct epoll_event evs[256];

    while (phase != P_DONE) {
        uint64_t now = mono_ns();
        if (stop_flag) {
            if (phase == P_PUB || phase == P_DRAIN) {
                if (!deliveries_done_ns && opt.server_pid &&
                    read_proc_ticks(opt.server_pid, &srv_u1, &srv_s1) == 0)
                    have_cpu |= 2;
            }
            break;
        }
        switch (phase) {
        case P_RAMP: {
            uint64_t want = (uint64_t)(secs(now - start) * opt.ramp) + 1;
            if (want > (uint64_t)opt.conns)
                want = (uint64_t)opt.conns;
            /* first-time connects up to the ramp; retries of failed ones ride along */
            /* retries of failed connects first, then new ones up to the ramp */
            int budget = 4096;
            while (budget-- > 0) {
                int idx;
                int is_retry = rq_len > 0;
                if (is_retry) {
                    idx = retry_q[rq_head];
                } else {
                    if (next_new >= opt.conns || (uint64_t)started >= want)
                        break;
                    idx = next_new;
                }
                struct sub *s = &subs[idx];
                int err = 0;
                st.connect_attempts++;
                int fd = sock_connect(idx, &err);
                if (fd < 0) {
                    if (err == EADDRNOTAVAIL || err == EAGAIN)
                        st.connect_eaddrnotavail++;
                    else
                        st.connect_errors++;
                    break; /* the same one is tried again next round */
                }
                if (is_retry) {
                    rq_head = (rq_head + 1) % opt.conns;
                    rq_len--;
                } else {
                    started++;
                    next_new++;
                }
                s->fd = fd;
                s->state = S_CONNECTING;
                connecting++;
                struct epoll_event e = {.events = EPOLLOUT | EPOLLIN, .data.u64 = (uint64_t)idx};
                epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
            }
            if (st.subscribed >= (uint64_t)opt.conns || now >= ramp_deadline) {
                ramp_done_ns = now;
                if (opt.ready_file) {
                    char tmp[4096];
                    snprintf(tmp, sizeof(tmp), "%s.tmp", opt.ready_file);
                    FILE *f = fopen(tmp, "w");
                    if (f) {
                        fprintf(f, "subscribed %" PRIu64 "\n", st.subscribed);
                        fclose(f);
                        rename(tmp, opt.ready_file);
                    }
                }
                if (npub) {
                    phase = P_SETTLE;
                    settle_end = now + (uint64_t)(opt.settle * 1e9);
                } else {
                    phase = P_HOLD;
                    hold_end = now + (uint64_t)(opt.hold * 1e9);
                }
            }
            break;
        }
        case P_SETTLE:
            if (now >= settle_end) {
                /* loss is counted for the subscribers subscribed now */
                for (int i = 0; i < opt.conns; i++) {
                    struct sub *s = &subs[i];
                    if (s->subscribed && s->state == S_STREAM) {
                        s->eligible = 1;
                        s->seen = calloc(words, sizeof(uint64_t));
                        if (!s->seen)
                            die("out of memory");
                    }
                }
                publishing_started = 1;
                pub_deliveries0 = st.deliveries;
                pub_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (pub_fd < 0)
                    die("socket: %s", strerror(errno));
                int one = 1;
                setsockopt(pub_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                if (connect(pub_fd, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0 &&
                    errno != EINPROGRESS)
                    die("publisher connect: %s", strerror(errno));
                struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.u64 = ID_PUB};
                epoll_ctl(epfd, EPOLL_CTL_ADD, pub_fd, &e);
                tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
                if (tfd < 0)
                    die("timerfd_create: %s", strerror(errno));
                struct epoll_event te = {.events = EPOLLIN, .data.u64 = ID_TIMER};
                epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &te);
                pub_interval = (uint64_t)(1e9 / opt.pub_rate);
                pub_t0 = now + 20000000ull; /* 20 ms: the publisher connects meanwhile */
                mach0 = machine_busy_ticks();
                steal0 = machine_steal;
                mach_t0 = mono_ns();
                self0 = self_cpu_seconds();
                if (opt.server_pid && read_proc_ticks(opt.server_pid, &srv_u0, &srv_s0) == 0) {
                    have_cpu |= 1;
                    read_task_ticks(opt.server_pid, &tasks0);
                }
                struct itimerspec its = {
                    .it_value = {.tv_sec = (time_t)(pub_t0 / 1000000000ull),
                                 .tv_nsec = (long)(pub_t0 % 1000000000ull)}};
                timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
                phase = P_PUB;
            }
            break;
        case P_PUB:
            if (pub_next > npub || st.pub_conn_lost) {
                pub_done_ns = now;
                drain_deadline = pub_t0 + (uint64_t)(npub ? npub - 1 : 0) * pub_interval +
                                 (uint64_t)(opt.drain * 1e9);
                phase = P_DRAIN;
            }
            break;
        case P_DRAIN: {
            int acks_in = st.pub_acked + st.pub_failed >= st.pub_sent || st.pub_conn_lost;
            if (acks_in) {
                /* every eligible open subscriber has every acked message? */
                /* complete: every scheduled message acked, and every subscriber that was
                 * there at the first publish still open and holding every one of them */
                complete = st.pub_acked == npub && !st.pub_conn_lost;
                for (int i = 0; i < opt.conns && complete; i++) {
                    struct sub *s = &subs[i];
                    if (s->eligible && (s->state != S_STREAM || s->distinct < st.pub_acked))
                        complete = 0;
                }
                if (!complete && st.pub_conn_lost) {
                    /* nothing more will come for the closed ones; wait for the open ones */
                    int waiting = 0;
                    for (int i = 0; i < opt.conns && !waiting; i++) {
                        struct sub *s = &subs[i];
                        if (s->eligible && s->state == S_STREAM && s->distinct < st.pub_acked)
                            waiting = 1;
                    }
                    if (!waiting)
                        drain_deadline = now;
                }
            }
            if (complete || now >= drain_deadline) {
                deliveries_done_ns = now;
                if (opt.server_pid && read_proc_ticks(opt.server_pid, &srv_u1, &srv_s1) == 0) {
                    have_cpu |= 2;
                    read_task_ticks(opt.server_pid, &tasks1);
                }
                mach1 = machine_busy_ticks();
                steal1 = machine_steal;
                mach_t1 = mono_ns();
                self1 = self_cpu_seconds();
                phase = P_HOLD;
                hold_end = now + (uint64_t)(opt.hold * 1e9);
            }
            break;
        }
        case P_HOLD:
            if (now >= hold_end)
                phase = P_DONE;
            break;
        case P_DONE: break;
        }
        if (opt.progress && now - last_progress >= 1000000000ull) {
            last_progress = now;
            fprintf(stderr,
                    "sse_client: %6.1fs %-7s connecting %d open %d subscribed %" PRIu64
                    " published %" PRIu64 "/%" PRIu64 " deliveries %" PRIu64 "\n",
                    secs(now - start), phase_names[phase], connecting, open_subs, st.subscribed,
                    st.pub_acked, st.pub_sent, st.deliveries);
        }
        if (phase == P_DONE)
            break;
        int timeout = phase == P_RAMP ? 2 : 20;
        int n = epoll_wait(epfd, evs, 256, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            uint64_t id = evs[i].data.u64;
            if (id == ID_TIMER) {
                uint64_t x;
                if (read(tfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
                    die("timerfd read: %s", strerror(errno));
                pub_send_due(mono_ns());
            } else if (id == ID_PUB) {
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    pub_read();
                if (!st.pub_conn_lost && (evs[i].events & EPOLLOUT))
                    pub_flush();
            } else {
                on_sub_event(&subs[id], evs[i].events);
            }
            /* a publish falling due while this batch of reads is handled leaves now,
             * not after the batch: the client's own lateness stays small */
            if ((i & 31) == 31 && phase == P_PUB && pub_next <= npub && !st.pub_conn_lost) {
                uint64_t t = mono_ns();
                if (pub_t0 + (uint64_t)(pub_next - 1) * pub_interval <= t)
                    pub_send_due(t);
            }
        }
    }
    uint64_t end = mono_ns();

    /* ---- accounting ---- */
    uint64_t lost = 0, lost_closed = 0, eligible = 0, eligible_open = 0;
    for (int i = 0; i < opt.conns; i++) {
        struct sub *s = &subs[i];
        if (!s->eligible)
            continue;
        eligible++;
        uint64_t miss = 0;
        for (uint32_t q = 1; q <= npub; q++)
            if (bit_get(acked, q) && !bit_get(s->seen, q))
                miss++;
        if (s->state == S_STREAM) {
            eligible_open++;
            lost += miss;
        } else {
            lost_closed += miss;
        }
    }
    uint64_t pub_deliveries = st.deliveries - pub_deliveries0;
    double pub_window = deliveries_done_ns && publishing_started && deliveries_done_ns > pub_t0
                            ? secs(deliveries_done_ns - pub_t0)
                            : 0;
    double deliv_span = st.last_delivery_ns > st.first_delivery_ns
                            ? secs(st.last_delivery_ns - st.first_delivery_ns)
                            : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double cpu_sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    long tck = sysconf(_SC_CLK_TCK);

    FILE *out = stdout;
    if (opt.out) {
        out = fopen(opt.out, "w");
        if (!out)
            die("cannot write %s: %s", opt.out, strerror(errno));
    }
    fprintf(out, "{\n");
    fprintf(out,
            "  \"config\": {\"host\": \"%s\", \"port\": %d, \"conns\": %d, \"channels\": %d, "
            "\"ramp_per_s\": %.0f, \"pub_rate\": %g, \"pub_seconds\": %g, \"size\": %d, "
            "\"pub_channel\": \"%s\", \"src_addrs\": %d},\n",
            opt.host, opt.port, opt.conns, opt.channels, opt.ramp, opt.pub_rate, opt.pub_seconds,
            opt.size, npub ? pub_chan : "", opt.src_addrs);
    fprintf(out, "  \"stopped_by_signal\": %s, \"phase_at_end\": \"%s\",\n",
            stop_flag ? "true" : "false", phase_names[phase]);
    fprintf(out,
            "  \"subscribers_connected\": %" PRIu64 ", \"subscribers_open_at_end\": %d, "
            "\"subscribe_seconds\": %.3f,\n",
            st.subscribed, open_subs, ramp_done_ns ? secs(ramp_done_ns - start) : 0.0);
    fprintf(out,
            "  \"connect\": {\"attempts\": %" PRIu64 ", \"errors\": %" PRIu64
            ", \"refused\": %" PRIu64 ", \"no_local_address\": %" PRIu64
            ", \"http_non200\": %" PRIu64 ", \"first_bad_status\": %d, "
            "\"closed_before_subscribed\": %" PRIu64 ", \"closed_after_subscribed\": %" PRIu64
            ", \"read_errors\": %" PRIu64 ", \"still_connecting\": %d},\n",
            st.connect_attempts, st.connect_errors, st.refused, st.connect_eaddrnotavail,
            st.http_non200, st.first_bad_status, st.closed_before_subscribed,
            st.closed_after_subscribed, st.read_errors, connecting);
    fprintf(out,
            "  \"publish\": {\"scheduled\": %" PRIu32 ", \"sent\": %" PRIu64 ", \"acked\": %" PRIu64
            ", \"failed\": %" PRIu64 ", \"first_bad_status\": %d, \"connection_lost\": %s, "
            "\"subscribers_reached_sum\": %" PRIu64 ", \"send_phase_seconds\": %.3f},\n",
            npub, st.pub_sent, st.pub_acked, st.pub_failed, st.pub_first_bad_status,
            st.pub_conn_lost ? "true" : "false", st.pub_reached,
            pub_done_ns && pub_done_ns > pub_t0 ? secs(pub_done_ns - pub_t0) : 0.0);
    fprintf(out,
            "  \"eligible_subscribers\": %" PRIu64 ", \"eligible_open_at_end\": %" PRIu64
            ", \"late_subscribers\": %" PRIu64 ",\n",
            eligible, eligible_open, st.late_subscribed);
    fprintf(out,
            "  \"deliveries\": %" PRIu64 ", \"expected_deliveries\": %" PRIu64
            ", \"complete\": %s,\n",
            st.deliveries, st.pub_acked * eligible, complete ? "true" : "false");
    fprintf(out,
            "  \"lost\": %" PRIu64 ", \"lost_on_closed_connections\": %" PRIu64
            ", \"duplicates\": %" PRIu64 ", \"reordered\": %" PRIu64 ", \"malformed\": %" PRIu64
            ", \"out_of_range\": %" PRIu64 ", \"gaps\": %" PRIu64 ", \"comments\": %" PRIu64
            ", \"deliveries_to_late_subscribers\": %" PRIu64 ", \"overlong_lines\": %" PRIu64
            ",\n",
            lost, lost_closed, st.duplicates, st.reordered, st.malformed, st.out_of_range, st.gaps,
            st.comments, st.deliveries_late_subs, st.overlong_lines);
    fprintf(out,
            "  \"latency_ms\": {\"count\": %" PRIu64 ", \"min\": %.3f, \"mean\": %.3f, "
            "\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p99_9\": %.3f, \"max\": %.3f},\n",
            hist_count, hist_count ? (double)hist_min / 1e6 : 0.0,
            hist_count ? hist_sum / (double)hist_count / 1e6 : 0.0, h_pct_ms(0.50),
            h_pct_ms(0.90), h_pct_ms(0.99), h_pct_ms(0.999), (double)hist_max / 1e6);
    fprintf(out,
            "  \"publish_window_seconds\": %.3f, \"deliveries_in_window\": %" PRIu64
            ", \"deliveries_per_s\": %.1f, \"first_to_last_delivery_seconds\": %.3f,\n",
            pub_window, pub_deliveries, pub_window > 0 ? (double)pub_deliveries / pub_window : 0.0,
            deliv_span);
    if (have_cpu == 3) {
        uint64_t du = srv_u1 - srv_u0, ds = srv_s1 - srv_s0;
        double per = pub_deliveries ? (double)(du + ds) / (double)tck * 1e6 / (double)pub_deliveries
                                    : 0.0;
        double per_u = pub_deliveries ? (double)du / (double)tck * 1e6 / (double)pub_deliveries
                                      : 0.0;
        fprintf(out,
                "  \"server_cpu\": {\"pid\": %d, \"clk_tck\": %ld, \"utime_ticks\": %" PRIu64
                ", \"stime_ticks\": %" PRIu64 ", \"seconds\": %.2f, \"us_per_delivery\": %.3f, "
                "\"user_us_per_delivery\": %.3f, \"threads\": [",
                opt.server_pid, tck, du, ds, (double)(du + ds) / (double)tck, per, per_u);
        int first = 1;
        for (int i = 0; i < tasks1.n; i++)
            for (int j = 0; j < tasks0.n; j++)
                if (tasks0.tid[j] == tasks1.tid[i]) {
                    fprintf(out, "%s{\"tid\": %d, \"utime_ticks\": %" PRIu64
                                 ", \"stime_ticks\": %" PRIu64 "}",
                            first ? "" : ", ", tasks1.tid[i], tasks1.ut[i] - tasks0.ut[j],
                            tasks1.stt[i] - tasks0.stt[j]);
                    first = 0;
                }
        fprintf(out, "]},\n");
    }
    if (mach1 && mach0 && mach_t1 > mach_t0) {
        double busy = (double)(mach1 - mach0) / (double)tck;
        double srv = have_cpu == 3 ? (double)(srv_u1 + srv_s1 - srv_u0 - srv_s0) / (double)tck : 0;
        double mine = self1 - self0;
        fprintf(out,
                "  \"machine_cpu_in_window\": {\"window_seconds\": %.3f, \"cpus\": %ld, "
                "\"busy_seconds\": %.2f, \"server_seconds\": %.2f, \"client_seconds\": %.2f, "
                "\"other_seconds\": %.2f, \"steal_seconds\": %.2f},\n",
                secs(mach_t1 - mach_t0), sysconf(_SC_NPROCESSORS_ONLN), busy, srv, mine,
                busy - srv - mine, (double)(steal1 - steal0) / (double)tck);
    }
    if (timeline) {
        fprintf(out, "  \"timeline\": [");
        for (uint32_t k = 0; k < timeline_len; k++) {
            struct tl_sec *t = &timeline[k];
            fprintf(out,
                    "%s\n    {\"second\": %u, \"deliveries\": %" PRIu64
                    ", \"latency_mean_ms\": %.3f, \"latency_max_ms\": %.3f, "
                    "\"publish_send_lag_max_ms\": %.3f, \"publish_answer_lag_max_ms\": %.3f}",
                    k ? "," : "", k, t->deliveries,
                    t->deliveries ? t->lat_sum / (double)t->deliveries / 1e6 : 0.0,
                    (double)t->lat_max / 1e6, (double)t->send_lag_max / 1e6,
                    (double)t->ack_lag_max / 1e6);
        }
        fprintf(out, "\n  ],\n");
    }
    fprintf(out,
            "  \"client_cpu_seconds\": {\"user\": %.3f, \"sys\": %.3f, \"total\": %.3f}, "
            "\"client_max_rss_kb\": %ld, \"run_seconds\": %.3f\n",
            cpu_user, cpu_sys, cpu_user + cpu_sys, ru.ru_maxrss, secs(end - start));
    fprintf(out, "}\n");
    if (out != stdout)
        fclose(out);
    return 0;
}
