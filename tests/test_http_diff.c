/*
 * test_http_diff.c: differential test of our parser against Debian's
 * libhttp-parser (nodejs/http-parser 2.9), which has parsed a great deal of
 * real traffic.
 *
 * Every input, the fuzz seed corpus and a table of tricky requests, goes
 * through both: the head through http_parse_request, then the body (by
 * Content-Length or http_decode_chunked); and libhttp-parser paused at the end
 * of the first message. Both must agree on the outcome and, for a complete
 * message, on its length, method, target, version, headers, framing,
 * keep-alive, upgrade and body. Where we differ on purpose, the case says so
 * with a one-line reason, and the test asserts that very difference, so a new
 * unexplained one fails. Set HTTP_DIFF_VERBOSE=1 to print every verdict.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

enum outcome { OUT_OK, OUT_INCOMPLETE, OUT_ERROR };
static const char *outcome_name[] = {"ok", "incomplete", "error"};

/* Fields of a complete message that can differ; a mask of these says which. */
enum {
    DF_LEN = 1 << 0, /* bytes of the first message, head plus body */
    DF_METHOD = 1 << 1,
    DF_TARGET = 1 << 2,
    DF_VERSION = 1 << 3,
    DF_HEADERS = 1 << 4,
    DF_CL = 1 << 5,
    DF_CHUNKED = 1 << 6, /* F_CHUNKED is libhttp-parser's */
    DF_KEEP_ALIVE = 1 << 7,
    DF_UPGRADE = 1 << 8,
    DF_BODY = 1 << 9,
};

#define VIEW_CAP 16384

/* What one parser made of an input. Headers are flattened to "name: value\n"
 * lines so the two are compared as strings. */
struct view {
    enum outcome outcome;
    size_t len;
    char method[64];
    char target[VIEW_CAP];
    size_t target_len;
    int minor;
    char headers[VIEW_CAP];
    size_t headers_len;
    int64_t content_length; /* -1 when absent */
    int chunked, keep_alive, upgrade;
    char body[VIEW_CAP];
    size_t body_len;
    const char *detail;
};

static void append(char *dst, size_t *len, const char *src, size_t n)
{
    if (n > VIEW_CAP - *len)
        n = VIEW_CAP - *len;
    memcpy(dst + *len, src, n);
    *len += n;
}

/* ---- ours ---------------------------------------------------------------- */

static void view_ours(const char *raw, size_t len, struct view *v)
{
    static struct http_request req;
    static char scratch[1 << 16];
    memset(v, 0, sizeof(*v));
    int r = http_parse_request(raw, len, 0, &req);
    if (r < 0) {
        v->outcome = r == HTTP_INCOMPLETE ? OUT_INCOMPLETE : OUT_ERROR;
        v->detail = r == HTTP_INCOMPLETE             ? "incomplete head"
                    : r == HTTP_ERR_BAD_FRAMING      ? "HTTP_ERR_BAD_FRAMING"
                    : r == HTTP_ERR_TOO_MANY_HEADERS ? "HTTP_ERR_TOO_MANY_HEADERS"
                                                     : "HTTP_ERR_SYNTAX";
        return;
    }
    snprintf(v->method, sizeof(v->method), "%.*s", (int)req.method.len, req.method.base);
    append(v->target, &v->target_len, req.target.base, req.target.len);
    v->minor = req.minor_version;
    for (size_t i = 0; i < req.num_headers; i++) {
        append(v->headers, &v->headers_len, req.headers[i].name.base, req.headers[i].name.len);
        append(v->headers, &v->headers_len, ": ", 2);
        append(v->headers, &v->headers_len, req.headers[i].value.base, req.headers[i].value.len);
        append(v->headers, &v->headers_len, "\n", 1);
    }
    v->content_length = req.content_length;
    v->chunked = req.chunked;
    v->keep_alive = req.keep_alive;
    v->upgrade = req.upgrade;

    size_t tail = len - (size_t)r;
    if (req.chunked) {
        struct http_chunked d = {0};
        cr_assert(tail <= sizeof(scratch));
        memcpy(scratch, raw + r, tail);
        size_t n = tail;
        ssize_t rest = http_decode_chunked(&d, scratch, &n);
        if (rest < 0) {
            v->outcome = rest == HTTP_INCOMPLETE ? OUT_INCOMPLETE : OUT_ERROR;
            v->detail = rest == HTTP_INCOMPLETE ? "incomplete chunked body" : "bad chunked body";
            return;
        }
        append(v->body, &v->body_len, scratch, n);
        v->len = len - (size_t)rest;
    } else if (req.content_length > 0) {
        if ((uint64_t)req.content_length > tail) {
            v->outcome = OUT_INCOMPLETE;
            v->detail = "incomplete body";
            return;
        }
        append(v->body, &v->body_len, raw + r, (size_t)req.content_length);
        v->len = (size_t)r + (size_t)req.content_length;
    } else {
        v->len = (size_t)r;
    }
    v->outcome = OUT_OK;
}

/* ---- libhttp-parser ------------------------------------------------------ */

struct theirs_state {
    struct view *v;
    int state; /* 0 before the first field, 1 in a field name, 2 in a value */
    int headers_done;
    int complete;
    char name[VIEW_CAP], value[VIEW_CAP];
    size_t name_len, value_len;
};

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct theirs_state *s = p->data;
    append(s->v->target, &s->v->target_len, at, n);
    return 0;
}

/* Flattens the header collected so far, its value trimmed of OWS as ours is
 * (libhttp-parser keeps trailing whitespace). */
static void flush_header(struct theirs_state *s)
{
    struct view *v = s->v;
    const char *val = s->value;
    size_t n = s->value_len;
    while (n > 0 && (val[0] == ' ' || val[0] == '\t'))
        val++, n--;
    while (n > 0 && (val[n - 1] == ' ' || val[n - 1] == '\t'))
        n--;
    append(v->headers, &v->headers_len, s->name, s->name_len);
    append(v->headers, &v->headers_len, ": ", 2);
    append(v->headers, &v->headers_len, val, n);
    append(v->headers, &v->headers_len, "\n", 1);
    s->name_len = s->value_len = 0;
}

/* Trailers come through the same callbacks after the head; ours drops them. */
static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct theirs_state *s = p->data;
    if (s->headers_done)
        return 0;
    if (s->state == 2)
        flush_header(s);
    s->state = 1;
    append(s->name, &s->name_len, at, n);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct theirs_state *s = p->data;
    if (s->headers_done)
        return 0;
    s->state = 2;
    append(s->value, &s->value_len, at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct theirs_state *s = p->data;
    struct view *v = s->v;
    if (s->state != 0)
        flush_header(s);
    s->headers_done = 1;
    snprintf(v->method, sizeof(v->method), "%s", http_method_str((enum http_method)p->method));
    v->minor = p->http_major == 1 ? p->http_minor : -1 - (int)p->http_major;
    v->content_length = (p->flags & F_CONTENTLENGTH) ? (int64_t)p->content_length : -1;
    v->chunked = (p->flags & F_CHUNKED) != 0;
    v->keep_alive = http_should_keep_alive(p);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct theirs_state *s = p->data;
    append(s->v->body, &s->v->body_len, at, n);
    return 0;
}

/* Pausing makes http_parser_execute return right after the first message. */
static int on_message_complete(http_parser *p)
{
    struct theirs_state *s = p->data;
    s->complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

static void view_theirs(const char *raw, size_t len, struct view *v)
{
    static http_parser_settings settings = {
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
    };
    http_parser p;
    static struct theirs_state s;
    memset(&s, 0, sizeof(s));
    s.v = v;
    memset(v, 0, sizeof(*v));
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &s;
    size_t n = http_parser_execute(&p, &settings, raw, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&p);
    if (s.complete) {
        v->outcome = OUT_OK;
        v->len = n;
        v->upgrade = p.upgrade;
    } else if (err != HPE_OK) {
        v->outcome = OUT_ERROR;
        v->detail = http_errno_name(err);
    } else {
        v->outcome = OUT_INCOMPLETE;
        v->detail = "incomplete";
    }
}

/* ---- comparison ---------------------------------------------------------- */

static unsigned differing_fields(const struct view *a, const struct view *b)
{
    unsigned m = 0;
    if (a->len != b->len)
        m |= DF_LEN;
    if (strcmp(a->method, b->method) != 0)
        m |= DF_METHOD;
    if (a->target_len != b->target_len || memcmp(a->target, b->target, a->target_len) != 0)
        m |= DF_TARGET;
    if (a->minor != b->minor)
        m |= DF_VERSION;
    if (a->headers_len != b->headers_len || memcmp(a->headers, b->headers, a->headers_len) != 0)
        m |= DF_HEADERS;
    if (a->content_length != b->content_length)
        m |= DF_CL;
    if (a->chunked != b->chunked)
        m |= DF_CHUNKED;
    if (a->keep_alive != b->keep_alive)
        m |= DF_KEEP_ALIVE;
    if (a->upgrade != b->upgrade)
        m |= DF_UPGRADE;
    if (a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) != 0)
        m |= DF_BODY;
    return m;
}

/* What a case expects of the two parsers. */
enum expect {
    SAME,      /* same outcome; if complete, every field equal */
    WE_REJECT, /* we refuse, libhttp-parser accepts or waits for more */
    WE_ACCEPT, /* we accept, libhttp-parser refuses */
    FIELDS,    /* both accept, and exactly the fields in .fields differ */
};

struct diff_case {
    const char *name;
    const char *raw;
    size_t len;
    enum expect expect;
    unsigned fields;
    const char *why;
};

#define RAW(s) s, sizeof(s) - 1

static void print_views(const char *name, const struct view *o, const struct view *t)
{
    fprintf(stderr, "%-34s ours %-10s (%s) len %zu | theirs %-10s (%s) len %zu", name,
            outcome_name[o->outcome], o->detail ? o->detail : "-", o->len, outcome_name[t->outcome],
            t->detail ? t->detail : "-", t->len);
    if (o->outcome == OUT_OK && t->outcome == OUT_OK)
        fprintf(stderr, " fields 0x%x", differing_fields(o, t));
    fputc('\n', stderr);
}

/* Runs one input through both and checks the expectation; returns 1 if it
 * held. */
static int check_case(const char *name, const char *raw, size_t len, enum expect expect,
                      unsigned fields, const char *why)
{
    static struct view ours, theirs;
    view_ours(raw, len, &ours);
    view_theirs(raw, len, &theirs);
    if (getenv("HTTP_DIFF_VERBOSE") != NULL)
        print_views(name, &ours, &theirs);

    int both_ok = ours.outcome == OUT_OK && theirs.outcome == OUT_OK;
    unsigned diff = both_ok ? differing_fields(&ours, &theirs) : 0;
    int held;
    switch (expect) {
    case SAME:
        held = ours.outcome == theirs.outcome && diff == 0;
        break;
    case WE_REJECT:
        held = ours.outcome == OUT_ERROR && theirs.outcome != OUT_ERROR;
        break;
    case WE_ACCEPT:
        held = ours.outcome == OUT_OK && theirs.outcome == OUT_ERROR;
        break;
    case FIELDS:
        held = both_ok && diff == fields;
        break;
    default:
        held = 0;
    }
    if (!held) {
        print_views(name, &ours, &theirs);
        if (both_ok)
            fprintf(stderr, "  ours headers:\n%.*s  theirs headers:\n%.*s", (int)ours.headers_len,
                    ours.headers, (int)theirs.headers_len, theirs.headers);
        cr_log_error("%s: expectation %d does not hold (%s)", name, expect,
                     why ? why : "should behave the same");
    }
    return held;
}

/* ---- the tricky table ---------------------------------------------------- */

static const struct diff_case tricky[] = {
    /* Agreement expected. */
    {"simple get", RAW("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), SAME, 0, NULL},
    {"query and fragment", RAW("GET /a?b=c&d#frag HTTP/1.1\r\nHost: a\r\n\r\n"), SAME, 0, NULL},
    {"lf line ends", RAW("GET / HTTP/1.1\nHost: a\n\n"), SAME, 0, NULL},
    {"mixed line ends", RAW("GET / HTTP/1.1\nHost: a\r\n\n"), SAME, 0, NULL},
    {"two leading crlf", RAW("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"http/1.0", RAW("GET / HTTP/1.0\r\n\r\n"), SAME, 0, NULL},
    {"http/1.0 keep-alive", RAW("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), SAME, 0, NULL},
    {"http/1.1 close", RAW("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), SAME, 0, NULL},
    {"connection list", RAW("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n"), SAME, 0, NULL},
    {"websocket upgrade",
     RAW("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n"), SAME,
     0, NULL},
    {"options star", RAW("OPTIONS * HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"content-length body", RAW("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), SAME, 0,
     NULL},
    {"content-length leading zeros", RAW("POST / HTTP/1.1\r\nContent-Length: 005\r\n\r\nhello"),
     SAME, 0, NULL},
    {"content-length trailing ows", RAW("POST / HTTP/1.1\r\nContent-Length: 5 \r\n\r\nhello"), SAME,
     0, NULL},
    {"content-length short body", RAW("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nhello"), SAME, 0,
     NULL},
    {"content-length zero", RAW("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), SAME, 0, NULL},
    {"content-length plus", RAW("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello"), SAME, 0,
     NULL},
    {"content-length negative", RAW("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\nhello"), SAME, 0,
     NULL},
    {"content-length inner space", RAW("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\nhello"), SAME,
     0, NULL},
    {"content-length conflict",
     RAW("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), SAME, 0, NULL},
    {"content-length huge", RAW("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
     SAME, 0, NULL},
    {"cl and te",
     RAW("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n"),
     SAME, 0, NULL},
    {"te and cl",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
         "0\r\n\r\n"),
     SAME, 0, NULL},
    {"chunked",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
         "6\r\n world\r\n0\r\n\r\n"),
     SAME, 0, NULL},
    {"chunked upper case",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n"
         "A\r\n0123456789\r\n0\r\n\r\n"),
     SAME, 0, NULL},
    {"chunked extensions",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5;a=b;c\r\nhello\r\n0\r\n\r\n"),
     SAME, 0, NULL},
    {"chunked trailers",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
     SAME, 0, NULL},
    {"chunked then get",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
     SAME, 0, NULL},
    {"chunked unfinished", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
     SAME, 0, NULL},
    {"chunked bad hex", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxy\r\n"), SAME, 0,
     NULL},
    {"chunked bare lf size",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\nhello\r\n0\r\n\r\n"),
     SAME, 0, NULL},
    {"gzip then chunked",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         "0\r\n\r\n"),
     SAME, 0, NULL},
    {"pipelined", RAW("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"duplicate host", RAW("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), SAME, 0, NULL},
    {"empty value", RAW("GET / HTTP/1.1\r\nX-E:\r\nX-F: \r\n\r\n"), SAME, 0, NULL},
    {"obs-text value", RAW("GET / HTTP/1.1\r\nX: caf\xc3\xa9\xff\r\n\r\n"), SAME, 0, NULL},
    {"tab in value", RAW("GET / HTTP/1.1\r\nX: a\tb\t\r\n\r\n"), SAME, 0, NULL},
    {"empty header name", RAW("GET / HTTP/1.1\r\n: a\r\n\r\n"), SAME, 0, NULL},
    {"no colon", RAW("GET / HTTP/1.1\r\nHost\r\n\r\n"), SAME, 0, NULL},
    {"nul in value", RAW("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), SAME, 0, NULL},
    {"ctl in value", RAW("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n"), SAME, 0, NULL},
    {"del in value", RAW("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), SAME, 0, NULL},
    {"ctl in target", RAW("GET /\x01 HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"del in target", RAW("GET /\x7f HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"tls hello", RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), SAME, 0, NULL},
    {"response", RAW("HTTP/1.1 200 OK\r\n\r\n"), SAME, 0, NULL},
    {"lower-case version", RAW("GET / http/1.1\r\n\r\n"), SAME, 0, NULL},
    {"incomplete head", RAW("GET / HTTP/1.1\r\nHost: a\r\n"), SAME, 0, NULL},
    {"utf8 target", RAW("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"backslash target", RAW("GET /a\\b|{} HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"space after version", RAW("GET / HTTP/1.1 \r\n\r\n"), SAME, 0, NULL},
    {"m-search", RAW("M-SEARCH * HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"get star", RAW("GET * HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"leading lf", RAW("\nGET / HTTP/1.1\r\n\r\n"), SAME, 0, NULL},
    {"cl list", RAW("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello"), SAME, 0, NULL},
    {"cl int64 max", RAW("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\nhello"),
     SAME, 0, NULL},
    {"cl uint64 max", RAW("POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nhello"),
     SAME, 0, NULL},
    {"te chunked chunked",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), SAME, 0, NULL},
    {"te gzip", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n"), SAME, 0, NULL},
    {"te chunked gzip", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
     SAME, 0, NULL},
    {"te identity", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n"), SAME, 0, NULL},
    {"te trailing comma", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n"),
     SAME, 0, NULL},
    {"te lookalike", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"), SAME,
     0, NULL},
    {"te param", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n"), SAME, 0,
     NULL},
    {"te empty", RAW("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n"), SAME, 0, NULL},
    {"te gzip then chunked hdrs",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n"),
     SAME, 0, NULL},
    {"tab before colon", RAW("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), SAME, 0, NULL},
    {"bare cr value", RAW("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), SAME, 0, NULL},
    {"bare cr request line", RAW("GET / HTTP/1.1\rX: a\r\n\r\n"), SAME, 0, NULL},
    {"8bit name", RAW("GET / HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n"), SAME, 0, NULL},
    {"quote in name", RAW("GET / HTTP/1.1\r\nX\"y: a\r\n\r\n"), SAME, 0, NULL},
    {"chunk ext space",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n"), SAME,
     0, NULL},
    {"chunk data bare lf",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n"), SAME, 0,
     NULL},
    {"chunk over 2^64",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello"), SAME,
     0, NULL},
    {"chunk leading zeros",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n00000000000000000005\r\nhello\r\n0\r\n\r\n"),
     SAME, 0, NULL},
    {"upgrade with body",
     RAW("GET / HTTP/1.1\r\nUpgrade: ws\r\nConnection: upgrade\r\nContent-Length: 3\r\n\r\nabc"),
     SAME, 0, NULL},
    {"connection upgrade only", RAW("GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n"), SAME, 0,
     NULL},
    {"upgrade header only", RAW("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"), SAME, 0, NULL},
    {"1.0 Keep-Alive", RAW("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), SAME, 0, NULL},
    {"two connection headers",
     RAW("GET / HTTP/1.1\r\nConnection: foo\r\nConnection: close\r\n\r\n"), SAME, 0, NULL},
    {"expect", RAW("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"), SAME,
     0, NULL},
    {"empty input", RAW(""), SAME, 0, NULL},
    {"only crlf", RAW("\r\n"), SAME, 0, NULL},
    {"trailing garbage", RAW("GET / HTTP/1.1\r\n\r\n\x01\x02garbage"), SAME, 0, NULL},
    {"head then head", RAW("HEAD / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), SAME, 0, NULL},

    /* Deliberate differences, each with its reason. */
    {"space before colon", RAW("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), WE_REJECT, 0,
     "no whitespace before the colon (RFC 9112 5.1); their non-strict build takes it into the "
     "name"},
    {"tab in target", RAW("GET /a\tb HTTP/1.1\r\n\r\n"), WE_REJECT, 0,
     "no whitespace in the target; their non-strict build allows HTAB in URLs"},
    {"ff in target", RAW("GET /a\x0c HTTP/1.1\r\n\r\n"), WE_REJECT, 0,
     "no control bytes in the target; their non-strict build allows FF and HTAB in URLs"},
    {"http/1.2", RAW("GET / HTTP/1.2\r\n\r\n"), WE_REJECT, 0,
     "only HTTP/1.0 and HTTP/1.1 are accepted; they take any 1-3 digit version"},
    {"http/2.0", RAW("GET / HTTP/2.0\r\n\r\n"), WE_REJECT, 0,
     "only HTTP/1.0 and HTTP/1.1 are accepted; they take any 1-3 digit version"},
    {"http/0.9 version", RAW("GET / HTTP/0.9\r\n\r\n"), WE_REJECT, 0,
     "only HTTP/1.0 and HTTP/1.1 are accepted; they take any 1-3 digit version"},
    {"http/0.9 line", RAW("GET /\r\n\r\n"), WE_REJECT, 0,
     "HTTP/0.9 simple requests are not served; they parse one as version 0.9"},
    {"two spaces after method", RAW("GET  / HTTP/1.1\r\n\r\n"), WE_REJECT, 0,
     "exactly one SP between request-line parts (RFC 9112 3); they skip runs of spaces"},
    {"two spaces after target", RAW("GET /  HTTP/1.1\r\n\r\n"), WE_REJECT, 0,
     "exactly one SP between request-line parts (RFC 9112 3); they skip runs of spaces"},
    {"unknown method", RAW("FOO / HTTP/1.1\r\n\r\n"), WE_ACCEPT, 0,
     "any token is a method (RFC 9110 9.1); they only know a fixed table"},
    {"lower-case method", RAW("get / HTTP/1.1\r\n\r\n"), WE_ACCEPT, 0,
     "methods are case-sensitive tokens (RFC 9110 9.1): \"get\" is a method we answer 501 to, not "
     "a syntax error"},
    {"connect", RAW("CONNECT a:443 HTTP/1.1\r\n\r\n"), WE_REJECT, 0,
     "authority-form (CONNECT) is for proxies; we take origin-form and \"*\" only"},
    {"star more", RAW("OPTIONS *x HTTP/1.1\r\n\r\n"), WE_REJECT, 0,
     "asterisk-form is exactly \"*\"; they take \"*x\" as a URL"},
    {"nine leading crlf", RAW("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
     WE_REJECT, 0,
     "we skip at most HTTP_MAX_LEADING_EMPTY_LINES empty lines so each re-parse stays O(1) there"},
    {"leading bare cr", RAW("\r\r\nGET / HTTP/1.1\r\n\r\n"), WE_REJECT, 0,
     "a bare CR is no line end even before the request line; they skip any CR or LF"},
    {"cl duplicate same",
     RAW("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"), WE_ACCEPT, 0,
     "RFC 9110 8.6 allows repeated identical Content-Length values; they refuse any repeat"},
    {"cl int64 max+1", RAW("POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\nhello"),
     WE_REJECT, 0,
     "Content-Length must fit int64_t here; they accept up to 2^64-2 and wait for the body"},
    {"te twice",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n"),
     WE_REJECT, 0, "chunked applied twice (RFC 9112 7: MUST NOT); they accept a repeated header"},
    {"te http/1.0", RAW("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
     WE_REJECT, 0,
     "HTTP/1.0 has no Transfer-Encoding (RFC 9112 6.1); a 1.0 hop would frame it differently"},
    {"obs-fold", RAW("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), WE_REJECT, 0,
     "obs-fold is refused (RFC 9112 5.2 allows it); they unfold it"},
    {"ws first header", RAW("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), WE_REJECT, 0,
     "whitespace before the first header hides it from some parsers (RFC 9112 2.2)"},
    {"te space before colon",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"), WE_REJECT, 0,
     "\"Transfer-Encoding :\" is the classic smuggling header; their non-strict build ignores the "
     "space"},
    {"bare cr blank line", RAW("GET / HTTP/1.1\r\n\rX"), WE_REJECT, 0,
     "a bare CR is no line end (RFC 9112 2.2); their non-strict build takes any byte after CR as "
     "LF"},
    {"chunk size space",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
     WE_REJECT, 0,
     "whitespace after the size with no extension is outside the grammar (BWS only before \";\")"},
    {"chunk ext lf",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nhello\r\n0\r\n\r\n"), WE_REJECT,
     0, "a bare LF inside a chunk line is a known desync vector; we refuse at once, they wait"},
    {"chunk ext quoted crlf",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\r\nhello\r\n0\r\n\r\n"),
     WE_REJECT, 0, "CR inside a quoted extension value is not qdtext; they end the line there"},
    {"chunk ext trailing ws",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b \r\nhello\r\n0\r\n\r\n"),
     WE_REJECT, 0, "whitespace before the CRLF of a chunk line is outside the chunk-ext grammar"},
    {"chunk ext empty",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"),
     WE_REJECT, 0, "\";\" without an extension name is outside the chunk-ext grammar"},
    {"chunk over 2^40",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000001\r\nhello"), WE_REJECT, 0,
     "our chunk-size cap is 2^40 (HTTP_MAX_CHUNK_SIZE); they go up to 2^64"},
    {"trailer bare lf", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\n\r\n"),
     WE_REJECT, 0, "chunked framing requires CRLF, trailers included"},
    {"trailer obs-fold",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n"), WE_REJECT,
     0, "obs-fold is refused in trailers as in the head"},
    {"chunked end bare lf", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n"),
     WE_REJECT, 0,
     "chunked framing requires CRLF; bare LF in chunk lines is a known desync vector"},
    {"chunked end bare cr", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\rX"),
     WE_REJECT, 0, "the final CRLF must be CRLF; their non-strict build skips one byte after CR"},
    {"1.0 keep-alive close", RAW("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), FIELDS,
     DF_KEEP_ALIVE,
     "\"close\" wins over keep-alive (RFC 9112 9.6); libhttp-parser lets keep-alive win in "
     "HTTP/1.0"},
};

/* Corpus files on which the two parsers differ, and why. */
struct corpus_exception {
    const char *file;
    enum expect expect;
    unsigned fields;
    const char *why;
};

static const struct corpus_exception corpus_exceptions[] = {
    {"bad_absolute_form", WE_REJECT, 0,
     "absolute-form is for proxies; an origin server takes origin-form and \"*\" only"},
    {"bad_chunk_no_crlf", WE_REJECT, 0,
     "their non-strict build takes any two bytes after chunk data as its CRLF: a desync"},
    {"bad_obs_fold", WE_REJECT, 0, "obs-fold is refused (RFC 9112 5.2 allows it); they unfold it"},
    {"bad_space_before_colon", WE_REJECT, 0,
     "no whitespace before the colon (RFC 9112 5.1); their non-strict build keeps it in the name"},
    {"bad_too_many_headers", WE_REJECT, 0, "we stop at HTTP_MAX_HEADERS; they have no count limit"},
    {"bad_version", WE_REJECT, 0,
     "only HTTP/1.0 and HTTP/1.1 are accepted; they take any 1-3 digit version"},
};

Test(http_diff, tricky_requests)
{
    int failed = 0;
    for (size_t i = 0; i < ARRAY_SIZE(tricky); i++)
        failed += !check_case(tricky[i].name, tricky[i].raw, tricky[i].len, tricky[i].expect,
                              tricky[i].fields, tricky[i].why);
    cr_assert_eq(failed, 0, "%d of %zu tricky requests broke their expectation", failed,
                 ARRAY_SIZE(tricky));
}

static const char *corpus_dir(char *buf, size_t cap)
{
    const char *src = getenv("RINGCAST_SRC");
    snprintf(buf, cap, "%s/tests/fuzz/corpus/http", src != NULL && *src ? src : ".");
    return buf;
}

Test(http_diff, seed_corpus)
{
    char dir[4096];
    corpus_dir(dir, sizeof(dir));
    DIR *d = opendir(dir);
    cr_assert(d != NULL, "cannot open %s (run from the repo root or set RINGCAST_SRC)", dir);
    int files = 0, failed = 0;
    int used[ARRAY_SIZE(corpus_exceptions)] = {0};
    static char raw[1 << 16];
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        cr_assert(f != NULL, "%s", path);
        size_t len = fread(raw, 1, sizeof(raw), f);
        fclose(f);
        enum expect expect = SAME;
        unsigned fields = 0;
        const char *why = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(corpus_exceptions); i++) {
            if (strcmp(corpus_exceptions[i].file, e->d_name) == 0) {
                expect = corpus_exceptions[i].expect;
                fields = corpus_exceptions[i].fields;
                why = corpus_exceptions[i].why;
                used[i] = 1;
            }
        }
        failed += !check_case(e->d_name, raw, len, expect, fields, why);
        files++;
    }
    closedir(d);
    cr_assert_gt(files, 12, "only %d corpus files in %s", files, dir);
    cr_assert_eq(failed, 0, "%d of %d corpus files broke their expectation", failed, files);
    for (size_t i = 0; i < ARRAY_SIZE(corpus_exceptions); i++)
        cr_assert(used[i] || corpus_exceptions[i].file[0] == '\0',
                  "exception for %s names no corpus file", corpus_exceptions[i].file);
}
