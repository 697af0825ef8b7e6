/*
 * nchanmsg.c: readers for nginx + nchan's subscriber formats (see
 * nchanmsg.h). Pure functions over spans; the engine thread that owns a
 * connection calls them on bytes it holds. They check the shape only: what
 * a body must contain (ringload's "s=SEQ t=NS ...") is proto.c's business.
 */
#include "nchanmsg.h"

#include <string.h>
#include <strings.h>

/* A line "NAME: VALUE\n" at p[0..end): 1 with *value and *next when NAME
 * matches (case-insensitively) and the line is whole, else 0. */
static int header_line(const char *p, const char *end, const char *name, span_t *value,
                       const char **next)
{
    size_t n = strlen(name);
    if ((size_t)(end - p) < n + 2 || strncasecmp(p, name, n) != 0 || p[n] != ':' || p[n + 1] != ' ')
        return 0;
    const char *v = p + n + 2, *nl = memchr(v, '\n', (size_t)(end - v));
    if (!nl)
        return 0;
    *value = span_of(v, (size_t)(nl - v));
    *next = nl + 1;
    return 1;
}

int nchanmsg_ws_meta(span_t f, struct nchanmsg_meta *m)
{
    const char *p = f.base, *end = f.base + f.len;
    if (!header_line(p, end, "id", &m->id, &p))
        return -1;
    m->type = SPAN_NULL;
    if (p < end && *p != '\n' && !header_line(p, end, "content-type", &m->type, &p))
        return -1;
    if (p == end || *p != '\n')
        return -1;
    m->body = span_of(p + 1, (size_t)(end - p - 1));
    return 0;
}

/* Decimal digits at s, all of it, below lim: 0 with *v, else -1. */
static int decimal(span_t s, uint64_t lim, uint64_t *v)
{
    if (s.len == 0 || s.len > 19)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.base[i] < '0' || s.base[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(s.base[i] - '0');
    }
    if (x >= lim)
        return -1;
    *v = x;
    return 0;
}

int nchanmsg_id(span_t s, uint64_t *key)
{
    const char *colon = s.len ? memchr(s.base, ':', s.len) : NULL;
    uint64_t a, b;
    if (!colon || decimal(span_of(s.base, (size_t)(colon - s.base)), (uint64_t)1 << 39, &a) < 0 ||
        decimal(span_of(colon + 1, s.len - (size_t)(colon - s.base) - 1), 1u << 24, &b) < 0)
        return -1;
    *key = a << 24 | b;
    return 0;
}

static const char wdays[] = "ThuFriSatSunMonTueWed"; /* 1970-01-01 was a Thursday */
static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned mo, unsigned d)
{
    y -= mo <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int two(const char *p, unsigned *v)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return -1;
    *v = (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
    return 0;
}

int nchanmsg_http_date(span_t s, uint64_t *secs)
{
    /* "Mon, 23 Nov 2026 23:31:57 GMT": fixed width, 29 bytes. */
    const char *p = s.base;
    unsigned d, mo, yh, yl, hh, mi, ss;
    if (s.len != 29 || p[3] != ',' || p[4] != ' ' || p[7] != ' ' || p[11] != ' ' || p[16] != ' ' ||
        p[19] != ':' || p[22] != ':' || memcmp(p + 25, " GMT", 4) != 0 || two(p + 5, &d) < 0 ||
        two(p + 12, &yh) < 0 || two(p + 14, &yl) < 0 || two(p + 17, &hh) < 0 ||
        two(p + 20, &mi) < 0 || two(p + 23, &ss) < 0)
        return -1;
    const char *m = NULL;
    for (mo = 0; mo < 12 && !m; mo++)
        if (memcmp(p + 8, months + 3 * mo, 3) == 0)
            m = months + 3 * mo;
    unsigned y = yh * 100 + yl;
    static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (!m || y < 1970 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || hh > 23 ||
        mi > 59 || ss > 59) /* no leap seconds: time_t has none */
        return -1;
    int64_t days = days_from_civil(y, mo, d);
    if (memcmp(p, wdays + 3 * (days % 7), 3) != 0)
        return -1; /* the weekday must match the date */
    *secs = (uint64_t)days * 86400 + hh * 3600u + mi * 60u + ss;
    return 0;
}

void nchanmsg_fmt_http_date(uint64_t secs, char out[30])
{
    uint64_t days = secs / 86400, rem = secs % 86400;
    /* civil_from_days, the inverse of days_from_civil. */
    uint64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    unsigned mo = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    uint64_t y = yoe + era * 400 + (mo <= 2);
    const char *wd = wdays + 3 * (days % 7), *mn = months + 3 * (mo - 1);
    /* Written by hand, not snprintf: the compiler cannot see that y < 10000
     * and would warn that "%04llu" might not fit. */
    char *o = out;
    memcpy(o, wd, 3);
    o += 3;
    *o++ = ',';
    *o++ = ' ';
    *o++ = (char)('0' + d / 10);
    *o++ = (char)('0' + d % 10);
    *o++ = ' ';
    memcpy(o, mn, 3);
    o += 3;
    *o++ = ' ';
    for (uint64_t div = 1000; div; div /= 10)
        *o++ = (char)('0' + y / div % 10);
    unsigned hms[3] = {(unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60)};
    for (int i = 0; i < 3; i++) {
        *o++ = i ? ':' : ' ';
        *o++ = (char)('0' + hms[i] / 10);
        *o++ = (char)('0' + hms[i] % 10);
    }
    memcpy(o, " GMT", 5);
}

int nchanmsg_poll_key(span_t last_modified, span_t etag, uint64_t *key)
{
    uint64_t secs, tag;
    if (nchanmsg_http_date(last_modified, &secs) < 0 || secs >> 39 ||
        decimal(etag, 1u << 24, &tag) < 0)
        return -1;
    *key = secs << 24 | tag;
    return 0;
}
