/*
 * jsonmsg.c: the poll-answer and ringcast.json frame reader (see jsonmsg.h).
 * Pure functions over the caller's bytes; objects are delimited by scanning
 * strings with their escapes and counting braces, so a data string that holds
 * braces, quotes or key-like text does not confuse it.
 */
#include "jsonmsg.h"

#include <string.h>

/* Index just past the string whose opening quote is at p[i], or 0 if it does
 * not end within n. */
static size_t skip_string(const char *p, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Index just past the object or array whose opening bracket is at p[i], or 0. */
static size_t skip_value(const char *p, size_t n, size_t i)
{
    int depth = 0;
    while (i < n) {
        char ch = p[i];
        if (ch == '"') {
            i = skip_string(p, n, i);
            if (!i)
                return 0;
            continue;
        }
        if (ch == '{' || ch == '[')
            depth++;
        else if ((ch == '}' || ch == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return 0;
}

/* Finds "key": at the top level of o and returns the index of its value. */
static size_t obj_find(span_t o, const char *key)
{
    size_t kl = strlen(key), i = 1;
    while (i < o.len) {
        if (o.base[i] == '{' || o.base[i] == '[') {
            i = skip_value(o.base, o.len, i);
            if (!i)
                return 0;
            continue;
        }
        if (o.base[i] != '"') {
            i++;
            continue;
        }
        size_t end = skip_string(o.base, o.len, i);
        if (!end)
            return 0;
        if (end - i == kl + 2 && memcmp(o.base + i + 1, key, kl) == 0 && end < o.len &&
            o.base[end] == ':')
            return end + 1;
        /* a value string: skip it whole so its text is never taken for a key */
        i = end;
        if (i < o.len && o.base[i] == ':') {
            i++;
            if (i < o.len && o.base[i] == '"') {
                i = skip_string(o.base, o.len, i);
                if (!i)
                    return 0;
            }
        }
    }
    return 0;
}

/* Reads "key":DIGITS at the top level of the object o. */
static int obj_u64(span_t o, const char *key, uint64_t *v)
{
    size_t j = obj_find(o, key);
    uint64_t x = 0;
    if (!j || j >= o.len || o.base[j] < '0' || o.base[j] > '9')
        return -1;
    while (j < o.len && o.base[j] >= '0' && o.base[j] <= '9') {
        uint64_t d = (uint64_t)(o.base[j++] - '0');
        if (x > UINT64_MAX / 10 || (x == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return -1; /* does not fit */
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

/* Reads one message object o: "id" and the "data" string. */
static int read_msg(span_t o, struct jsonmsg *m)
{
    size_t d = obj_find(o, "data");
    if (obj_u64(o, "id", &m->id) < 0 || !d || d >= o.len || o.base[d] != '"')
        return -1;
    size_t end = skip_string(o.base, o.len, d);
    if (!end)
        return -1;
    m->data = span_of(o.base + d + 1, end - d - 2);
    return 1;
}

/* The object that is the whole of t (trailing blanks allowed). */
static int whole_object(span_t t, span_t *o)
{
    if (t.len < 2 || t.base[0] != '{')
        return -1;
    size_t end = skip_value(t.base, t.len, 0);
    if (!end)
        return -1;
    for (size_t i = end; i < t.len; i++)
        if (t.base[i] != '\n' && t.base[i] != '\r' && t.base[i] != ' ')
            return -1;
    *o = span_of(t.base, end);
    return 0;
}

int jsonmsg_frame(span_t text, struct jsonmsg *m)
{
    span_t o;
    if (whole_object(text, &o) < 0)
        return -1;
    if (obj_find(o, "gap"))
        return 0;
    return read_msg(o, m);
}

int jsonmsg_answer(span_t body, struct jsonmsg_answer *a)
{
    span_t o;
    if (whole_object(body, &o) < 0 || obj_find(o, "channels") ||
        obj_u64(o, "last_id", &a->last_id) < 0)
        return -1;
    size_t ms = obj_find(o, "messages");
    if (!ms || ms >= o.len || o.base[ms] != '[')
        return -1;
    size_t me = skip_value(o.base, o.len, ms);
    if (!me)
        return -1;
    a->gap = obj_find(o, "gap") != 0;
    a->_rest = span_of(o.base + ms + 1, me - ms - 2); /* between the brackets */
    return 0;
}

int jsonmsg_next(struct jsonmsg_answer *a, struct jsonmsg *m)
{
    span_t r = a->_rest;
    size_t i = 0;
    while (i < r.len && (r.base[i] == ',' || r.base[i] == ' '))
        i++;
    if (i == r.len)
        return 0;
    if (r.base[i] != '{')
        return -1;
    size_t end = skip_value(r.base, r.len, i);
    if (!end)
        return -1;
    a->_rest = span_of(r.base + end, r.len - end);
    return read_msg(span_of(r.base + i, end - i), m);
}
