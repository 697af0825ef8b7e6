/*
 * test_http.c: unit tests for the request parser and chunked decoder.
 *
 * Table-driven in the picohttpparser manner: each valid request must report
 * "incomplete" for every truncated prefix, parse to the same fields when
 * trickled in byte by byte, and do so at the end of a page followed by a
 * PROT_NONE page, so any read past len crashes. Every forbidden byte in every
 * part of a request must be a syntax error, each framing rule must give its
 * own code, and the chunked decoder must give the same output however its
 * input is split.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http.h"
#include "util.h"

/* ---- guard page ---------------------------------------------------------- */

/* One writable page followed by a PROT_NONE page. Inputs are copied so they
 * end exactly at the boundary: a read of buf[len] faults. */
struct guard {
    char *page;
    size_t size;
};

static struct guard guard_new(void)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(p != MAP_FAILED);
    cr_assert(mprotect(p + ps, ps, PROT_NONE) == 0);
    return (struct guard){p, ps};
}

static void guard_free(struct guard g)
{
    munmap(g.page, 2 * g.size);
}

static char *guard_place(struct guard g, const char *data, size_t len)
{
    cr_assert(len <= g.size);
    char *dst = g.page + g.size - len;
    memcpy(dst, data, len);
    return dst;
}

/* ---- valid requests ------------------------------------------------------ */

struct want_header {
    const char *name, *value;
};

struct valid_case {
    const char *raw;
    const char *method, *target, *path, *query;
    int minor;
    int64_t content_length;
    unsigned chunked, keep_alive, upgrade;
    struct want_header headers[8]; /* ends at the first NULL name */
};

static const struct valid_case valid_cases[] = {
    {"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
     "GET",
     "/",
     "/",
     "",
     1,
     -1,
     0,
     1,
     0,
     {{"Host", "example.com"}}},
    {"GET /events?channel=news&since=42 HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n",
     "GET",
     "/events?channel=news&since=42",
     "/events",
     "channel=news&since=42",
     1,
     -1,
     0,
     1,
     0,
     {{"Host", "a"}, {"Accept", "text/event-stream"}}},
    {"GET /x? HTTP/1.1\r\n\r\n", "GET", "/x?", "/x", "", 1, -1, 0, 1, 0, {{0}}},
    {"GET /a?b?c=d HTTP/1.1\r\n\r\n", "GET", "/a?b?c=d", "/a", "b?c=d", 1, -1, 0, 1, 0, {{0}}},
    {"GET /x HTTP/1.0\r\n\r\n", "GET", "/x", "/x", "", 0, -1, 0, 0, 0, {{0}}},
    {"GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
     "GET",
     "/x",
     "/x",
     "",
     0,
     -1,
     0,
     1,
     0,
     {{"Connection", "Keep-Alive"}}},
    {"GET /x HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
     "GET",
     "/x",
     "/x",
     "",
     0,
     -1,
     0,
     0,
     0,
     {{"Connection", "keep-alive, close"}}},
    {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
     "GET",
     "/",
     "/",
     "",
     1,
     -1,
     0,
     0,
     0,
     {{"Connection", "close"}}},
    {"GET / HTTP/1.1\r\nconnection: foo\r\nCONNECTION: CLOSE\r\n\r\n",
     "GET",
     "/",
     "/",
     "",
     1,
     -1,
     0,
     0,
     0,
     {{"connection", "foo"}, {"CONNECTION", "CLOSE"}}},
    {"GET /lf HTTP/1.1\nHost: a\nX: y\n\n",
     "GET",
     "/lf",
     "/lf",
     "",
     1,
     -1,
     0,
     1,
     0,
     {{"Host", "a"}, {"X", "y"}}},
    {"GET /mixed HTTP/1.1\nHost: a\r\n\n",
     "GET",
     "/mixed",
     "/mixed",
     "",
     1,
     -1,
     0,
     1,
     0,
     {{"Host", "a"}}},
    {"\r\n\nGET / HTTP/1.1\r\n\r\n", "GET", "/", "/", "", 1, -1, 0, 1, 0, {{0}}},
    {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
     "OPTIONS",
     "*",
     "*",
     "",
     1,
     -1,
     0,
     1,
     0,
     {{"Host", "a"}}},
    {"PURGE-ALL! /x HTTP/1.1\r\n\r\n", "PURGE-ALL!", "/x", "/x", "", 1, -1, 0, 1, 0, {{0}}},
    {"GET /\xc3\xa9t\xc3\xa9?q=%20|{} HTTP/1.1\r\n\r\n",
     "GET",
     "/\xc3\xa9t\xc3\xa9?q=%20|{}",
     "/\xc3\xa9t\xc3\xa9",
     "q=%20|{}",
     1,
     -1,
     0,
     1,
     0,
     {{0}}},
    {"GET / HTTP/1.1\r\nX-Sp:   padded \t \r\nX-Empty:\r\nX-Ws: \t\r\nX-Tab:\tin\tside\r\n"
     "X-Obs: caf\xc3\xa9\xff\r\n\r\n",
     "GET",
     "/",
     "/",
     "",
     1,
     -1,
     0,
     1,
     0,
     {{"X-Sp", "padded"},
      {"X-Empty", ""},
      {"X-Ws", ""},
      {"X-Tab", "in\tside"},
      {"X-Obs", "caf\xc3\xa9\xff"}}},
    {"POST /publish/news HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
     "POST",
     "/publish/news",
     "/publish/news",
     "",
     1,
     11,
     0,
     1,
     0,
     {{"Host", "a"}, {"Content-Length", "11"}}},
    {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
     "POST",
     "/",
     "/",
     "",
     1,
     0,
     0,
     1,
     0,
     {{"Content-Length", "0"}}},
    {"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\n",
     "POST",
     "/",
     "/",
     "",
     1,
     5,
     0,
     1,
     0,
     {{"Content-Length", "5"}, {"content-length", "005"}}},
    {"POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n",
     "POST",
     "/",
     "/",
     "",
     1,
     INT64_MAX,
     0,
     1,
     0,
     {{"Content-Length", "9223372036854775807"}}},
    {"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
     "POST",
     "/p",
     "/p",
     "",
     1,
     -1,
     1,
     1,
     0,
     {{"Transfer-Encoding", "chunked"}}},
    {"POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED \r\n\r\n",
     "POST",
     "/p",
     "/p",
     "",
     1,
     -1,
     1,
     1,
     0,
     {{"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "CHUNKED"}}},
    {"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n",
     "GET",
     "/ws",
     "/ws",
     "",
     1,
     -1,
     0,
     1,
     1,
     {{"Upgrade", "websocket"}, {"Connection", "keep-alive, Upgrade"}}},
    /* "upgrade" among Connection options without an Upgrade header: no upgrade */
    {"GET /ws HTTP/1.1\r\nConnection: upgrade\r\n\r\n",
     "GET",
     "/ws",
     "/ws",
     "",
     1,
     -1,
     0,
     1,
     0,
     {{"Connection", "upgrade"}}},
    {"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
     "GET",
     "/ws",
     "/ws",
     "",
     1,
     -1,
     0,
     1,
     0,
     {{"Upgrade", "websocket"}}},
};

static void check_span(span_t got, const char *want, const char *what, size_t idx)
{
    cr_assert(span_eq(got, span_cstr(want)), "case %zu: %s is \"%.*s\", want \"%s\"", idx, what,
              (int)got.len, got.base, want);
}

static void check_valid(const struct valid_case *c, size_t idx, const struct http_request *r)
{
    check_span(r->method, c->method, "method", idx);
    check_span(r->target, c->target, "target", idx);
    check_span(r->path, c->path, "path", idx);
    check_span(r->query, c->query, "query", idx);
    cr_assert_eq(r->minor_version, c->minor, "case %zu: minor_version", idx);
    cr_assert_eq(r->content_length, c->content_length, "case %zu: content_length", idx);
    cr_assert_eq(r->chunked, c->chunked, "case %zu: chunked", idx);
    cr_assert_eq(r->keep_alive, c->keep_alive, "case %zu: keep_alive", idx);
    cr_assert_eq(r->upgrade, c->upgrade, "case %zu: upgrade", idx);
    size_t n = 0;
    while (n < ARRAY_SIZE(c->headers) && c->headers[n].name != NULL) {
        cr_assert(n < r->num_headers, "case %zu: only %zu headers", idx, r->num_headers);
        check_span(r->headers[n].name, c->headers[n].name, "header name", idx);
        check_span(r->headers[n].value, c->headers[n].value, "header value", idx);
        n++;
    }
    cr_assert_eq(r->num_headers, n, "case %zu: num_headers", idx);
}

Test(http_parse, valid_full)
{
    struct guard g = guard_new();
    for (size_t i = 0; i < ARRAY_SIZE(valid_cases); i++) {
        const struct valid_case *c = &valid_cases[i];
        size_t len = strlen(c->raw);
        char *buf = guard_place(g, c->raw, len);
        struct http_request r;
        int ret = http_parse_request(buf, len, 0, &r);
        cr_assert_eq(ret, (int)len, "case %zu: returned %d, want %zu", i, ret, len);
        check_valid(c, i, &r);
        /* Spans point into the caller's buffer, not a copy. */
        cr_assert(r.method.base >= buf && r.method.base < buf + len);
    }
    guard_free(g);
}

Test(http_parse, every_prefix_is_incomplete)
{
    struct guard g = guard_new();
    for (size_t i = 0; i < ARRAY_SIZE(valid_cases); i++) {
        size_t len = strlen(valid_cases[i].raw);
        for (size_t n = 0; n < len; n++) {
            char *buf = guard_place(g, valid_cases[i].raw, n);
            struct http_request r;
            int ret = http_parse_request(buf, n, 0, &r);
            cr_assert_eq(ret, HTTP_INCOMPLETE, "case %zu prefix %zu: %d", i, n, ret);
        }
    }
    guard_free(g);
}

/* Feeds bytes one at a time, passing the previous length as last_len. */
Test(http_parse, byte_by_byte_with_last_len)
{
    struct guard g = guard_new();
    for (size_t i = 0; i < ARRAY_SIZE(valid_cases); i++) {
        size_t len = strlen(valid_cases[i].raw);
        struct http_request r;
        int ret = HTTP_INCOMPLETE;
        size_t n;
        for (n = 1; n <= len; n++) {
            char *buf = guard_place(g, valid_cases[i].raw, n);
            ret = http_parse_request(buf, n, n - 1, &r);
            if (ret != HTTP_INCOMPLETE)
                break;
        }
        cr_assert_eq(n, len, "case %zu: finished at %zu of %zu", i, n, len);
        cr_assert_eq(ret, (int)len, "case %zu: returned %d", i, ret);
        check_valid(&valid_cases[i], i, &r);
    }
    guard_free(g);
}

Test(http_parse, pipelined_requests)
{
    static const char two[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                              "GET /c HTTP/1.1\r\n\r\n";
    size_t len = sizeof(two) - 1;
    struct http_request r;
    int a = http_parse_request(two, len, 0, &r);
    cr_assert_eq(a, (int)strlen("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"));
    check_span(r.path, "/a", "path", 0);
    int b = http_parse_request(two + a, len - (size_t)a, 0, &r);
    cr_assert_eq(b, (int)strlen("POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\n"));
    cr_assert_eq(r.content_length, 3);
    size_t c_off = (size_t)a + (size_t)b + 3;
    int c = http_parse_request(two + c_off, len - c_off, 0, &r);
    cr_assert_eq(c, (int)(len - c_off));
    check_span(r.path, "/c", "path", 0);
}

Test(http_parse, leading_empty_lines_are_bounded)
{
    char buf[256];
    struct http_request r;
    for (int lines = 0; lines <= HTTP_MAX_LEADING_EMPTY_LINES + 1; lines++) {
        size_t n = 0;
        for (int i = 0; i < lines; i++)
            n += (size_t)sprintf(buf + n, i % 2 ? "\n" : "\r\n");
        n += (size_t)sprintf(buf + n, "GET / HTTP/1.1\r\n\r\n");
        int ret = http_parse_request(buf, n, 0, &r);
        if (lines <= HTTP_MAX_LEADING_EMPTY_LINES)
            cr_assert_eq(ret, (int)n, "%d empty lines: %d", lines, ret);
        else
            cr_assert_eq(ret, HTTP_ERR_SYNTAX, "%d empty lines: %d", lines, ret);
    }
    cr_assert_eq(http_parse_request("\r\rGET", 5, 0, &r), HTTP_ERR_SYNTAX);
    cr_assert_eq(http_parse_request("\r", 1, 0, &r), HTTP_INCOMPLETE);
}

/* ---- forbidden bytes ----------------------------------------------------- */

static int ref_tchar(int c)
{
    return c < 128 && c > 32 &&
           (strchr("!#$%&'*+-.^_`|~", c) != NULL || (c >= '0' && c <= '9') ||
            ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'));
}

/* A request with byte b placed by fmt (which holds one %c), parsed whole;
 * snprintf counts a NUL written by %c, so b = 0 is tested too. */
static int parse_with_byte(const char *fmt, int b)
{
    char buf[128];
    int n = snprintf(buf, sizeof(buf), fmt, b);
    cr_assert(n > 0 && n < (int)sizeof(buf));
    struct http_request r;
    return http_parse_request(buf, (size_t)n, 0, &r);
}

struct byte_position {
    const char *fmt;
    int (*allowed)(int b);
};

static int allowed_in_method(int b)
{
    return ref_tchar(b);
}

static int allowed_in_target(int b)
{
    return b > 0x20 && b != 0x7f;
}

/* ':' inside a name just ends it earlier, which is still a valid header. */
static int allowed_in_name(int b)
{
    return ref_tchar(b) || b == ':';
}

static int allowed_in_value(int b)
{
    return (b >= 0x20 && b != 0x7f) || b == '\t';
}

Test(http_parse, every_forbidden_byte_is_a_syntax_error)
{
    static const struct byte_position pos[] = {
        {"G%cT / HTTP/1.1\r\nHost: a\r\n\r\n", allowed_in_method},
        {"GET /a%cb HTTP/1.1\r\nHost: a\r\n\r\n", allowed_in_target},
        {"GET /a HTTP/1.1\r\nHo%cst: a\r\n\r\n", allowed_in_name},
        {"GET /a HTTP/1.1\r\nHost: a%cb\r\n\r\n", allowed_in_value},
    };
    for (size_t p = 0; p < ARRAY_SIZE(pos); p++) {
        for (int b = 0; b < 256; b++) {
            int ret = parse_with_byte(pos[p].fmt, b);
            if (pos[p].allowed(b))
                cr_assert(ret > 0, "\"%s\" with 0x%02x: %d", pos[p].fmt, b, ret);
            else
                cr_assert_eq(ret, HTTP_ERR_SYNTAX, "\"%s\" with 0x%02x: %d", pos[p].fmt, b, ret);
        }
    }
}

Test(http_parse, every_byte_in_version_is_checked)
{
    static const char good[] = "GET / HTTP/1.1\r\n\r\n";
    char buf[sizeof(good)];
    for (size_t at = 6; at < 14; at++) {
        for (int b = 0; b < 256; b++) {
            memcpy(buf, good, sizeof(good));
            buf[at] = (char)b;
            struct http_request r;
            int ret = http_parse_request(buf, sizeof(good) - 1, 0, &r);
            int ok = b == good[at] || (at == 13 && b == '0');
            if (ok)
                cr_assert(ret > 0, "0x%02x at %zu: %d", b, at, ret);
            else
                cr_assert(ret == HTTP_ERR_SYNTAX || (b == '\n' && ret == HTTP_INCOMPLETE),
                          "0x%02x at %zu: %d", b, at, ret);
        }
    }
}

/* Control bytes are refused as they arrive, without waiting for the head to
 * end, so binary junk (a TLS hello on the plain port) is turned away at once. */
Test(http_parse, control_bytes_refused_before_head_ends)
{
    static const char *early[] = {
        "\x16\x03\x01\x02", "GET /\x01", "GET / HTTP/1.1\r\nHost: a\x7f", "GET /\rX", " GET",
    };
    for (size_t i = 0; i < ARRAY_SIZE(early); i++) {
        struct http_request r;
        cr_assert_eq(http_parse_request(early[i], strlen(early[i]), 0, &r), HTTP_ERR_SYNTAX, "%zu",
                     i);
    }
}

/* ---- syntax and framing rules -------------------------------------------- */

struct error_case {
    const char *raw;
    int want;
    const char *why;
};

static const struct error_case error_cases[] = {
    {"GET  / HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "two spaces after method"},
    {"GET /  HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "two spaces after target"},
    {"GET / HTTP/1.1 \r\n\r\n", HTTP_ERR_SYNTAX, "space after version"},
    {"GET\t/ HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "tab as separator"},
    {"GET /\tx HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "tab in target"},
    {"GET / HTTP/1.2\r\n\r\n", HTTP_ERR_SYNTAX, "HTTP/1.2"},
    {"GET / HTTP/2.0\r\n\r\n", HTTP_ERR_SYNTAX, "HTTP/2.0"},
    {"GET / HTTP/0.9\r\n\r\n", HTTP_ERR_SYNTAX, "HTTP/0.9"},
    {"GET / HTTP/1.10\r\n\r\n", HTTP_ERR_SYNTAX, "HTTP/1.10"},
    {"GET / http/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "lower-case version"},
    {"GET / HTTP/1\r\n\r\n", HTTP_ERR_SYNTAX, "short version"},
    {"GET /\r\n\r\n", HTTP_ERR_SYNTAX, "HTTP/0.9 request line"},
    {"GET\r\n\r\n", HTTP_ERR_SYNTAX, "method only"},
    {"GET  HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "empty target"},
    {"GET http://a/ HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "absolute-form"},
    {"CONNECT a:443 HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "authority-form"},
    {"GET *x HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "asterisk with more"},
    {"G(T / HTTP/1.1\r\n\r\n", HTTP_ERR_SYNTAX, "non-token method"},
    {"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", HTTP_ERR_SYNTAX, "obs-fold"},
    {"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", HTTP_ERR_SYNTAX, "obs-fold with tab"},
    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTP_ERR_SYNTAX, "whitespace before first header"},
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP_ERR_SYNTAX, "space before colon"},
    {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HTTP_ERR_SYNTAX, "tab before colon"},
    {"GET / HTTP/1.1\r\n: a\r\n\r\n", HTTP_ERR_SYNTAX, "empty header name"},
    {"GET / HTTP/1.1\r\nHost a\r\n\r\n", HTTP_ERR_SYNTAX, "no colon"},
    {"GET / HTTP/1.1\r\nX\"y: a\r\n\r\n", HTTP_ERR_SYNTAX, "quote in name"},
    {"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", HTTP_ERR_SYNTAX, "bare CR in a value"},
    {"GET / HTTP/1.1\rHost: a\r\n\r\n", HTTP_ERR_SYNTAX, "bare CR after version"},
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", HTTP_ERR_SYNTAX, "bare CR in blank line"},
    {"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", HTTP_ERR_BAD_FRAMING, "CL not digits"},
    {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", HTTP_ERR_BAD_FRAMING, "CL with sign"},
    {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HTTP_ERR_BAD_FRAMING, "CL negative"},
    {"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", HTTP_ERR_BAD_FRAMING, "CL hex"},
    {"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", HTTP_ERR_BAD_FRAMING, "CL with space"},
    {"POST / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\n", HTTP_ERR_BAD_FRAMING, "CL list"},
    {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", HTTP_ERR_BAD_FRAMING, "CL empty"},
    {"POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "CL overflows int64"},
    {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "CL far too large"},
    {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "CL repeated, different"},
    {"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     HTTP_ERR_BAD_FRAMING, "CL then TE"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     HTTP_ERR_BAD_FRAMING, "TE then CL"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "TE without chunked"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", HTTP_ERR_BAD_FRAMING, "TE identity"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "chunked not last"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
     HTTP_ERR_BAD_FRAMING, "chunked not last across headers"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     HTTP_ERR_BAD_FRAMING, "chunked twice"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "chunked twice in one list"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "chunked with a parameter"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "empty list element"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", HTTP_ERR_BAD_FRAMING, "TE empty"},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "TE lookalike"},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_BAD_FRAMING,
     "TE in HTTP/1.0"},
    /* Syntax errors outrank framing errors found in the same head. */
    {"POST / HTTP/1.1\r\nContent-Length: x\r\nBad Name: 1\r\n\r\n", HTTP_ERR_SYNTAX,
     "syntax first"},
};

Test(http_parse, syntax_and_framing_errors)
{
    struct guard g = guard_new();
    for (size_t i = 0; i < ARRAY_SIZE(error_cases); i++) {
        const struct error_case *c = &error_cases[i];
        size_t len = strlen(c->raw);
        char *buf = guard_place(g, c->raw, len);
        struct http_request r;
        int ret = http_parse_request(buf, len, 0, &r);
        cr_assert_eq(ret, c->want, "%s: returned %d, want %d", c->why, ret, c->want);
        /* And the same when trickled in. */
        ret = HTTP_INCOMPLETE;
        for (size_t n = 1; n <= len && ret == HTTP_INCOMPLETE; n++)
            ret = http_parse_request(guard_place(g, c->raw, n), n, n - 1, &r);
        cr_assert_eq(ret, c->want, "%s, trickled: returned %d", c->why, ret);
    }
    guard_free(g);
}

static size_t build_headers(char *buf, size_t cap, int count)
{
    size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < count; i++)
        n += (size_t)snprintf(buf + n, cap - n, "X-H%d: %d\r\n", i, i);
    n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    cr_assert(n < cap);
    return n;
}

Test(http_parse, too_many_headers)
{
    char buf[2048];
    struct http_request r;
    size_t n = build_headers(buf, sizeof(buf), HTTP_MAX_HEADERS);
    cr_assert_eq(http_parse_request(buf, n, 0, &r), (int)n);
    cr_assert_eq(r.num_headers, HTTP_MAX_HEADERS);
    check_span(r.headers[HTTP_MAX_HEADERS - 1].value, "31", "last value", 0);
    n = build_headers(buf, sizeof(buf), HTTP_MAX_HEADERS + 1);
    cr_assert_eq(http_parse_request(buf, n, 0, &r), HTTP_ERR_TOO_MANY_HEADERS);
    n = build_headers(buf, sizeof(buf), 60);
    cr_assert_eq(http_parse_request(buf, n, 0, &r), HTTP_ERR_TOO_MANY_HEADERS);
}

Test(http_parse, te_other_codings_flagged)
{
    static const char raw[] = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    struct http_request r;
    cr_assert_eq(http_parse_request(raw, sizeof(raw) - 1, 0, &r), (int)sizeof(raw) - 1);
    cr_assert(r.chunked && r.te_other);
    static const char plain[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    cr_assert_eq(http_parse_request(plain, sizeof(plain) - 1, 0, &r), (int)sizeof(plain) - 1);
    cr_assert(r.chunked && !r.te_other);
}

/* A large head parses, and trickling it in byte by byte costs linear time:
 * with a quadratic re-scan this 1 MiB head would take minutes, not a blink. */
Test(http_parse, long_head_is_linear, .timeout = 20)
{
    size_t vlen = 1 << 20;
    size_t cap = vlen + 128;
    char *buf = malloc(cap);
    cr_assert(buf != NULL);
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nX-Big: ");
    memset(buf + n, 'v', vlen);
    n += vlen;
    n += (size_t)sprintf(buf + n, "\r\n\r\n");
    struct http_request r;
    int ret = HTTP_INCOMPLETE;
    size_t i;
    for (i = 1; i <= n && ret == HTTP_INCOMPLETE; i++)
        ret = http_parse_request(buf, i, i - 1, &r);
    cr_assert_eq(ret, (int)n);
    cr_assert_eq(r.headers[0].value.len, vlen);
    free(buf);
}

/* ---- helpers ------------------------------------------------------------- */

Test(http_helpers, header_find)
{
    static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n";
    struct http_request r;
    cr_assert_eq(http_parse_request(raw, sizeof(raw) - 1, 0, &r), (int)sizeof(raw) - 1);
    const struct http_header *h = http_header_find(&r, SPAN_LIT("X-DUP"));
    cr_assert(h != NULL);
    check_span(h->value, "1", "first match", 0);
    cr_assert(http_header_find(&r, SPAN_LIT("host")) == &r.headers[0]);
    cr_assert(http_header_find(&r, SPAN_LIT("Hos")) == NULL);
    cr_assert(http_header_find(&r, SPAN_LIT("")) == NULL);
}

Test(http_helpers, token_list_has)
{
    static const struct {
        const char *list, *token;
        int want;
    } cases[] = {
        {"keep-alive, Upgrade", "upgrade", 1},
        {"keep-alive, Upgrade", "keep-alive", 1},
        {"keep-alive,Upgrade", "UPGRADE", 1},
        {"  upgrade\t", "upgrade", 1},
        {",,upgrade,,", "upgrade", 1},
        {"upgrades", "upgrade", 0},
        {"upgrad", "upgrade", 0},
        {"xupgrade", "upgrade", 0},
        {"up grade", "upgrade", 0},
        {"", "upgrade", 0},
        {",", "", 0},
        {"a, ,b", "", 0},
        {"close", "close", 1},
        {"a;q=1, close", "close", 1},
        {"close;q=1", "close", 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        cr_assert_eq(http_token_list_has(span_cstr(cases[i].list), span_cstr(cases[i].token)),
                     cases[i].want, "\"%s\" has \"%s\"", cases[i].list, cases[i].token);
    cr_assert_eq(http_token_list_has(SPAN_NULL, SPAN_LIT("a")), 0);
}

Test(http_helpers, query_get)
{
    static const struct {
        const char *query, *key, *want; /* want NULL: absent */
    } cases[] = {
        {"a=1&since=5&b", "since", "5"},
        {"a=1&since=5&b", "a", "1"},
        {"a=1&since=5&b", "b", ""},
        {"a=1&since=5&b", "c", NULL},
        {"a=1&since=5&b", "sinc", NULL},
        {"a=1&since=5&b", "since=5", NULL},
        {"a=1&a=2", "a", "1"},
        {"a=", "a", ""},
        {"=x&a=1", "a", "1"},
        {"&&a=1&&", "a", "1"},
        {"a=b=c", "a", "b=c"},
        {"ch=news%20x", "ch", "news%20x"},
        {"A=1", "a", NULL},
        {"", "a", NULL},
        {"=x", "", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        span_t v = SPAN_NULL;
        int found = http_query_get(span_cstr(cases[i].query), span_cstr(cases[i].key), &v);
        cr_assert_eq(found, cases[i].want != NULL, "%s in %s", cases[i].key, cases[i].query);
        if (found)
            check_span(v, cases[i].want, "value", i);
    }
    /* The value points into the query. */
    span_t q = SPAN_LIT("x=1&y=22"), v;
    cr_assert(http_query_get(q, SPAN_LIT("y"), &v) && v.base == q.base + 6);
    cr_assert_eq(http_query_get(SPAN_NULL, SPAN_LIT("a"), &v), 0);
}

Test(http_helpers, percent_decode)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: -1 */
        size_t out_len;
    } cases[] = {
        {"", "", 0},
        {"plain", "plain", 5},
        {"a%20b", "a b", 3},
        {"%41%62%7e%7E", "Ab~~", 4},
        {"a+b", "a+b", 3},
        {"%00", "\0", 1},
        {"%ff%FF", "\xff\xff", 2},
        {"%25", "%", 1},
        {"%2525", "%25", 3},
        {"%", NULL, 0},
        {"%2", NULL, 0},
        {"a%2", NULL, 0},
        {"%g0", NULL, 0},
        {"%0g", NULL, 0},
        {"%%", NULL, 0},
        {"% 1", NULL, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char out[32];
        ssize_t n = http_percent_decode(span_cstr(cases[i].in), out);
        if (cases[i].out == NULL) {
            cr_assert_eq(n, -1, "\"%s\": %zd", cases[i].in, n);
        } else {
            cr_assert_eq(n, (ssize_t)cases[i].out_len, "\"%s\": %zd", cases[i].in, n);
            cr_assert(memcmp(out, cases[i].out, (size_t)n) == 0, "\"%s\"", cases[i].in);
        }
    }
    /* In place. */
    char buf[] = "x%2Fy%2fz";
    ssize_t n = http_percent_decode(span_of(buf, strlen(buf)), buf);
    cr_assert_eq(n, 5);
    cr_assert(memcmp(buf, "x/y/z", 5) == 0);
    /* A trailing escape right at the end of a guard page must not over-read. */
    struct guard g = guard_new();
    char out[8];
    char *p = guard_place(g, "ab%4", 4);
    cr_assert_eq(http_percent_decode(span_of(p, 4), out), -1);
    p = guard_place(g, "ab%", 3);
    cr_assert_eq(http_percent_decode(span_of(p, 3), out), -1);
    guard_free(g);
}

/* ---- chunked decoder ----------------------------------------------------- */

struct decoded {
    ssize_t ret;     /* the last call's result, with rest_len folded in when >= 0 */
    char body[8192]; /* decoded data, gathered over all calls */
    size_t body_len;
    char rest[8192]; /* the bytes after the body: what the decoder left, then the unfed */
    size_t rest_len;
};

/*
 * Feeds raw[0..n) to a fresh decoder in pieces ending at cuts[0] < ... <
 * cuts[ncuts - 1] == n, each piece placed at the end of a guard page, and
 * gathers what it returns. Stops at the first result other than "incomplete".
 */
static void decode_pieces(struct guard g, const char *raw, size_t n, const size_t *cuts,
                          size_t ncuts, struct decoded *out)
{
    struct http_chunked d = {0};
    size_t pos = 0;
    out->ret = HTTP_INCOMPLETE;
    out->body_len = out->rest_len = 0;
    for (size_t i = 0; i < ncuts && out->ret == HTTP_INCOMPLETE; i++) {
        size_t k = cuts[i] - pos;
        char *piece = guard_place(g, raw + pos, k);
        size_t got = k;
        out->ret = http_decode_chunked(&d, piece, &got);
        pos = cuts[i];
        if (out->ret == HTTP_ERR_SYNTAX)
            return;
        cr_assert(got <= k);
        memcpy(out->body + out->body_len, piece, got);
        out->body_len += got;
        if (out->ret >= 0) {
            cr_assert(got + (size_t)out->ret <= k);
            memcpy(out->rest, piece + got, (size_t)out->ret);
            memcpy(out->rest + out->ret, raw + pos, n - pos);
            out->rest_len = (size_t)out->ret + n - pos;
            out->ret = (ssize_t)out->rest_len;
        }
    }
}

static void decode_once(struct guard g, const char *raw, size_t n, struct decoded *out)
{
    size_t cut = n;
    decode_pieces(g, raw, n, &cut, 1, out);
}

static void assert_same_decode(const struct decoded *a, const struct decoded *b, const char *what)
{
    cr_assert_eq(a->ret, b->ret, "%s: %zd vs %zd", what, a->ret, b->ret);
    if (a->ret == HTTP_ERR_SYNTAX)
        return;
    cr_assert_eq(a->body_len, b->body_len, "%s: body %zu vs %zu", what, a->body_len, b->body_len);
    cr_assert(memcmp(a->body, b->body, a->body_len) == 0, "%s: body differs", what);
    cr_assert_eq(a->rest_len, b->rest_len, "%s", what);
    cr_assert(memcmp(a->rest, b->rest, a->rest_len) == 0, "%s: rest differs", what);
}

/* Splits raw at every point into two pieces, and into 1-byte pieces, and
 * demands the one-shot result each time. */
static void assert_split_invariant(struct guard g, const char *raw, size_t n, const char *what)
{
    static struct decoded once, split;
    static size_t cuts[8192];
    decode_once(g, raw, n, &once);
    for (size_t k = 0; k <= n; k++) {
        size_t two[2] = {k, n};
        decode_pieces(g, raw, n, two, 2, &split);
        assert_same_decode(&once, &split, what);
    }
    cr_assert(n <= ARRAY_SIZE(cuts));
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    decode_pieces(g, raw, n, cuts, n, &split);
    assert_same_decode(&once, &split, what);
}

struct chunked_case {
    const char *raw;
    ssize_t want; /* rest length, HTTP_INCOMPLETE or HTTP_ERR_SYNTAX */
    const char *body;
    const char *why;
};

static const struct chunked_case chunked_cases[] = {
    {"5\r\nhello\r\n0\r\n\r\n", 0, "hello", "single chunk"},
    {"0\r\n\r\n", 0, "", "empty body"},
    {"5\r\nhello\r\n6\r\n world\r\n1\r\n!\r\n0\r\n\r\n", 0, "hello world!", "three chunks"},
    {"A\r\n0123456789\r\na\r\nabcdefghij\r\nF\r\n0123456789abcde\r\n0\r\n\r\n", 0,
     "0123456789abcdefghij0123456789abcde", "hex digits in both cases"},
    {"0005\r\nhello\r\n000\r\n\r\n", 0, "hello", "leading zeros"},
    {"5;a=b\r\nhello\r\n3 ; x ; y = \"q\\\"; \" ;z=tok\r\nabc\r\n0;last\r\n\r\n", 0, "helloabc",
     "chunk extensions"},
    {"3;q=\"caf\xc3\xa9\t\"\r\nabc\r\n0\r\n\r\n", 0, "abc", "obs-text and HTAB in quoted ext"},
    {"3\r\nabc\r\n0\r\nX-A: 1\r\nX-B:\r\nX-C: caf\xc3\xa9\t\r\n\r\n", 0, "abc", "trailers"},
    {"3\r\na\r\n\r\n0\r\n\r\n", 0, "a\r\n", "CRLF inside data"},
    {"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", 18, "abc", "pipelined request after"},
    {"0\r\n\r\n\r\n", 2, "", "stray CRLF after"},
    {"10000000000\r\nabc", HTTP_INCOMPLETE, "abc", "chunk of exactly 2^40"},
    {"5\r\nhel", HTTP_INCOMPLETE, "hel", "unfinished data"},
    {"5;a=\"x\\", HTTP_INCOMPLETE, "", "unfinished quoted pair"},
    {"0\r\nX-A: 1\r\n", HTTP_INCOMPLETE, "", "unfinished trailers"},
    {"", HTTP_INCOMPLETE, "", "nothing yet"},
    {"g\r\nhello\r\n0\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "bad hex"},
    {"\r\n", HTTP_ERR_SYNTAX, NULL, "empty size"},
    {"-1\r\n", HTTP_ERR_SYNTAX, NULL, "negative size"},
    {"+1\r\n", HTTP_ERR_SYNTAX, NULL, "signed size"},
    {" 5\r\n", HTTP_ERR_SYNTAX, NULL, "space before size"},
    {"0x5\r\n", HTTP_ERR_SYNTAX, NULL, "0x prefix"},
    {"10000000001\r\n", HTTP_ERR_SYNTAX, NULL, "size above 2^40"},
    {"ffffffffffffffffffffffff\r\n", HTTP_ERR_SYNTAX, NULL, "size overflows 64 bits"},
    {"5\nhello\r\n0\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "bare LF after size"},
    {"5\rhello", HTTP_ERR_SYNTAX, NULL, "bare CR after size"},
    {"5\r\nhelloX\r\n0\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "no CRLF after data"},
    {"5\r\nhello\n0\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "bare LF after data"},
    {"5\r\nhello\rX", HTTP_ERR_SYNTAX, NULL, "CR without LF after data"},
    {"5\r\nhello\r\n0\r\n\n", HTTP_ERR_SYNTAX, NULL, "bare LF at the end"},
    {"5\r\nhello\r\n0\r\n\rX", HTTP_ERR_SYNTAX, NULL, "CR without LF at the end"},
    {"5 \r\nhello\r\n0\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "whitespace without an extension"},
    {"5;\r\nhello\r\n0\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "empty extension name"},
    {"5;=x\r\n", HTTP_ERR_SYNTAX, NULL, "extension value without name"},
    {"5;a=\r\n", HTTP_ERR_SYNTAX, NULL, "empty extension value"},
    {"5;a b\r\n", HTTP_ERR_SYNTAX, NULL, "two extension names"},
    {"5;a=b c\r\n", HTTP_ERR_SYNTAX, NULL, "two extension values"},
    {"5;a=b \r\n", HTTP_ERR_SYNTAX, NULL, "whitespace before CRLF"},
    {"5;a=\"x\r\nhello\"\r\n", HTTP_ERR_SYNTAX, NULL, "CRLF inside a quoted value"},
    {"5;a=\"x\"y\r\n", HTTP_ERR_SYNTAX, NULL, "text after a quoted value"},
    {"5;a=\"x\\\x01\"\r\n", HTTP_ERR_SYNTAX, NULL, "CTL in a quoted pair"},
    {"5;a\nhello", HTTP_ERR_SYNTAX, NULL, "bare LF ends an extension"},
    {"5;a=b\x7f\r\n", HTTP_ERR_SYNTAX, NULL, "DEL in an extension"},
    {"0\r\n X: a\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "obs-fold in trailers"},
    {"0\r\nX a\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "trailer without colon"},
    {"0\r\nX : a\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "space before trailer colon"},
    {"0\r\n: a\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "empty trailer name"},
    {"0\r\nX: a\n\r\n", HTTP_ERR_SYNTAX, NULL, "bare LF in trailers"},
    {"0\r\nX: a\x01\r\n\r\n", HTTP_ERR_SYNTAX, NULL, "CTL in a trailer value"},
};

Test(http_chunked, table)
{
    struct guard g = guard_new();
    static struct decoded out;
    for (size_t i = 0; i < ARRAY_SIZE(chunked_cases); i++) {
        const struct chunked_case *c = &chunked_cases[i];
        decode_once(g, c->raw, strlen(c->raw), &out);
        cr_assert_eq(out.ret, c->want, "%s: %zd, want %zd", c->why, out.ret, c->want);
        if (c->body != NULL) {
            cr_assert_eq(out.body_len, strlen(c->body), "%s: body length %zu", c->why,
                         out.body_len);
            cr_assert(memcmp(out.body, c->body, out.body_len) == 0, "%s: body", c->why);
        }
        if (c->want > 0) {
            const char *tail = c->raw + strlen(c->raw) - c->want;
            cr_assert(memcmp(out.rest, tail, out.rest_len) == 0, "%s: rest", c->why);
        }
    }
    guard_free(g);
}

Test(http_chunked, split_anywhere_gives_the_same_result)
{
    struct guard g = guard_new();
    for (size_t i = 0; i < ARRAY_SIZE(chunked_cases); i++)
        assert_split_invariant(g, chunked_cases[i].raw, strlen(chunked_cases[i].raw),
                               chunked_cases[i].why);
    guard_free(g);
}

Test(http_chunked, many_chunks)
{
    static char raw[8192], want[4096];
    size_t n = 0, w = 0;
    unsigned seed = 12345;
    for (int c = 1; c <= 60; c++) {
        size_t size = (size_t)(c * 7 % 53) + 1;
        n += (size_t)sprintf(raw + n, c % 2 ? "%zx\r\n" : "%zX;n=%d\r\n", size, c);
        for (size_t i = 0; i < size; i++) {
            seed = seed * 1103515245 + 12345;
            char b = (char)(seed >> 16); /* any byte, CR and LF included */
            raw[n++] = want[w++] = b;
        }
        n += (size_t)sprintf(raw + n, "\r\n");
    }
    n += (size_t)sprintf(raw + n, "0\r\nX-Sum: %zu\r\n\r\nNEXT", w);
    cr_assert(n < sizeof(raw));
    struct guard g = guard_new();
    static struct decoded out;
    decode_once(g, raw, n, &out);
    cr_assert_eq(out.ret, 4);
    cr_assert_eq(out.body_len, w);
    cr_assert(memcmp(out.body, want, w) == 0);
    cr_assert(memcmp(out.rest, "NEXT", 4) == 0);
    assert_split_invariant(g, raw, n, "many chunks");
    guard_free(g);
}

/* The calling convention from http.h, followed to the letter: every read is
 * appended right after the data decoded so far, in one buffer. */
Test(http_chunked, documented_calling_convention)
{
    static const char wire[] = "4\r\nwiki\r\n5;ext\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                               "0\r\nTrailer: x\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
    size_t wire_len = sizeof(wire) - 1;
    for (size_t step = 1; step <= wire_len; step++) {
        char body[sizeof(wire)];
        struct http_chunked d = {0};
        size_t have = 0, pos = 0;
        ssize_t r = HTTP_INCOMPLETE;
        while (pos < wire_len) {
            size_t n = wire_len - pos < step ? wire_len - pos : step;
            memcpy(body + have, wire + pos, n); /* "receive" */
            pos += n;
            r = http_decode_chunked(&d, body + have, &n);
            cr_assert(r >= 0 || r == HTTP_INCOMPLETE, "step %zu: %zd", step, r);
            have += n;
            if (r >= 0)
                break;
        }
        cr_assert(r >= 0, "step %zu never finished", step);
        cr_assert_eq(have, 23);
        cr_assert(memcmp(body, "wikipedia in\r\n\r\nchunks.", 23) == 0);
        /* This read's leftovers sit right after the body; the rest is unread. */
        cr_assert(memcmp(body + have, wire + pos - r, (size_t)r) == 0);
        cr_assert_eq((size_t)r + (wire_len - pos), strlen("GET /next HTTP/1.1\r\n\r\n"));
    }
}

Test(http_chunked, after_the_end_and_after_an_error)
{
    struct http_chunked d = {0};
    char buf[64];
    strcpy(buf, "0\r\n\r\nAB");
    size_t n = 7;
    cr_assert_eq(http_decode_chunked(&d, buf, &n), 2);
    cr_assert_eq(n, 0);
    cr_assert(memcmp(buf, "AB", 2) == 0);
    /* Once ended, everything passed is following bytes. */
    strcpy(buf, "5\r\nhello");
    n = 8;
    cr_assert_eq(http_decode_chunked(&d, buf, &n), 8);
    cr_assert_eq(n, 0);

    struct http_chunked e = {0};
    strcpy(buf, "z");
    n = 1;
    cr_assert_eq(http_decode_chunked(&e, buf, &n), HTTP_ERR_SYNTAX);
    strcpy(buf, "0\r\n\r\n");
    n = 5;
    cr_assert_eq(http_decode_chunked(&e, buf, &n), HTTP_ERR_SYNTAX);
}
