/*
 * test_utf8.c: unit tests for the incremental UTF-8 validator.
 *
 * Table-driven: each valid text must be accepted whole, byte by byte and split
 * at every point; each invalid one must be rejected at exactly the byte the
 * table names, which is what lets a WebSocket text fail at the first bad
 * frame. Every case goes through both the ASCII fast path (utf8_validate) and
 * the plain DFA (utf8__validate_dfa). A differential test compares both with
 * a reference written here from the code point rules rather than from byte
 * ranges, over many random byte strings.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"
#include "util.h"

typedef uint32_t (*validate_fn)(uint32_t *, const uint8_t *, size_t);

static const struct {
    const char *name;
    validate_fn fn;
} paths[] = {
    {"fast", utf8_validate},
    {"dfa", utf8__validate_dfa},
};

struct ucase {
    const char *s;
    size_t len; /* 0: strlen(s) */
};

static size_t case_len(const char *s, size_t len)
{
    return len ? len : strlen(s);
}

static const struct ucase valid_cases[] = {
    {"", 0},
    {"a", 0},
    {"\x00", 1},
    {"\x7f", 0},
    {"hello, world: a line long enough for several 8-byte words", 0},
    {"\xc2\x80", 0},                                     /* U+0080, smallest 2-byte */
    {"\xdf\xbf", 0},                                     /* U+07FF */
    {"\xe0\xa0\x80", 0},                                 /* U+0800, smallest 3-byte */
    {"\xe1\x80\x80", 0},                                 /* U+1000 */
    {"\xec\xbf\xbf", 0},                                 /* U+CFFF */
    {"\xed\x80\x80", 0},                                 /* U+D000 */
    {"\xed\x9f\xbf", 0},                                 /* U+D7FF, just below the surrogates */
    {"\xee\x80\x80", 0},                                 /* U+E000, just above them */
    {"\xef\xbf\xbf", 0},                                 /* U+FFFF */
    {"\xef\xbb\xbf", 0},                                 /* BOM: valid, not special here */
    {"\xf0\x90\x80\x80", 0},                             /* U+10000, smallest 4-byte */
    {"\xf1\x80\x80\x80", 0},                             /* U+40000 */
    {"\xf3\xbf\xbf\xbf", 0},                             /* U+FFFFF */
    {"\xf4\x80\x80\x80", 0},                             /* U+100000 */
    {"\xf4\x8f\xbf\xbf", 0},                             /* U+10FFFF, the largest */
    {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 0}, /* "kosme" in Greek */
    {"abcdefgh\xe2\x82\xac"
     "abcdefghijklmnop\xf0\x9f\x98\x80z",
     0},
    {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 0},
};

/* bad: the index of the first byte that makes the text ill-formed. */
struct icase {
    const char *s;
    size_t len; /* 0: strlen(s) */
    size_t bad;
};

static const struct icase invalid_cases[] = {
    {"\xc0\x80", 0, 0},                 /* overlong NUL */
    {"\xc1\xbf", 0, 0},                 /* overlong U+007F */
    {"\xe0\x80\x80", 0, 1},             /* overlong NUL, 3 bytes */
    {"\xe0\x9f\xbf", 0, 1},             /* overlong U+07FF */
    {"\xf0\x80\x80\x80", 0, 1},         /* overlong NUL, 4 bytes */
    {"\xf0\x8f\xbf\xbf", 0, 1},         /* overlong U+FFFF */
    {"\xed\xa0\x80", 0, 1},             /* U+D800, first surrogate */
    {"\xed\xbf\xbf", 0, 1},             /* U+DFFF, last surrogate */
    {"\xed\xad\xbf\xed\xb0\x80", 0, 1}, /* a surrogate pair, CESU-8 style */
    {"\xf4\x90\x80\x80", 0, 1},         /* U+110000 */
    {"\xf4\xbf\xbf\xbf", 0, 1},
    {"\xf5\x80\x80\x80", 0, 0},
    {"\xf7\xbf\xbf\xbf", 0, 0},
    {"\xf8\x88\x80\x80\x80", 0, 0}, /* old 5-byte form */
    {"\xfc\x84\x80\x80\x80\x80", 0, 0},
    {"\xfe", 0, 0},
    {"\xff", 0, 0},
    {"\x80", 0, 0}, /* lone continuation bytes */
    {"\xbf", 0, 0},
    {"a\x80", 0, 1},
    {"\xc2\x80\x80", 0, 2}, /* one continuation too many */
    {"\xc2"
     "a",
     0, 1}, /* truncated, then ASCII */
    {"\xe1\x80"
     "a",
     0, 2},
    {"\xf1\x80\x80"
     "a",
     0, 3},
    {"\xc2\xc2\x80", 0, 1}, /* truncated, then a new lead */
    {"\xe1\xe1\x80\x80", 0, 1},
    {"\xf4\x8f\xbf\xc0", 0, 3},
    {"\xc2\x00", 2, 1},
    {"abcdefghij\xc0\x80", 0, 10},   /* after a skipped word */
    {"0123456789abcdef\xff", 0, 16}, /* right after two words */
    {"0123456\xe2\x82"
     "0123456789",
     0, 9}, /* a word would hide it */
    {"\xe2\x82\xac"
     "0123456789abcdef\x80",
     0, 19},
    {"01234567\xf0\x9f\x98\x80"
     "01234567\xed\xa0\x80",
     0, 21},
};

/* Feeds p[0..n) one byte at a time; returns the index of the byte that
 * produced UTF8_REJECT, or n if none did, with the final state in *state. */
static size_t feed_bytewise(validate_fn fn, const uint8_t *p, size_t n, uint32_t *state)
{
    *state = UTF8_ACCEPT;
    for (size_t i = 0; i < n; i++)
        if (fn(state, p + i, 1) == UTF8_REJECT)
            return i;
    return n;
}

Test(utf8, valid_whole_bytewise_and_split)
{
    for (size_t p = 0; p < ARRAY_SIZE(paths); p++) {
        for (size_t i = 0; i < ARRAY_SIZE(valid_cases); i++) {
            const uint8_t *s = (const uint8_t *)valid_cases[i].s;
            size_t n = case_len(valid_cases[i].s, valid_cases[i].len);
            uint32_t st = UTF8_ACCEPT;
            cr_expect_eq(paths[p].fn(&st, s, n), UTF8_ACCEPT, "%s: case %zu whole", paths[p].name,
                         i);
            cr_expect_eq(st, UTF8_ACCEPT);
            cr_expect_eq(feed_bytewise(paths[p].fn, s, n, &st), n);
            cr_expect_eq(st, UTF8_ACCEPT, "%s: case %zu byte by byte", paths[p].name, i);
            for (size_t cut = 0; cut <= n; cut++) {
                st = UTF8_ACCEPT;
                paths[p].fn(&st, s, cut);
                cr_expect_neq(st, UTF8_REJECT);
                cr_expect_eq(paths[p].fn(&st, s + cut, n - cut), UTF8_ACCEPT,
                             "%s: case %zu split at %zu", paths[p].name, i, cut);
            }
        }
        cr_expect(utf8_is_valid((const uint8_t *)"", 0));
    }
}

Test(utf8, invalid_rejected_at_first_bad_byte)
{
    for (size_t p = 0; p < ARRAY_SIZE(paths); p++) {
        for (size_t i = 0; i < ARRAY_SIZE(invalid_cases); i++) {
            const uint8_t *s = (const uint8_t *)invalid_cases[i].s;
            size_t n = case_len(invalid_cases[i].s, invalid_cases[i].len);
            size_t bad = invalid_cases[i].bad;
            uint32_t st = UTF8_ACCEPT;
            cr_expect_eq(paths[p].fn(&st, s, n), UTF8_REJECT, "%s: case %zu whole", paths[p].name,
                         i);
            cr_expect_eq(feed_bytewise(paths[p].fn, s, n, &st), bad,
                         "%s: case %zu rejected at the wrong byte", paths[p].name, i);
            /* The prefix before the bad byte is not rejected, the one
             * through it is, in one call as in two at every split. */
            st = UTF8_ACCEPT;
            cr_expect_neq(paths[p].fn(&st, s, bad), UTF8_REJECT);
            st = UTF8_ACCEPT;
            cr_expect_eq(paths[p].fn(&st, s, bad + 1), UTF8_REJECT);
            for (size_t cut = 0; cut <= n; cut++) {
                st = UTF8_ACCEPT;
                paths[p].fn(&st, s, cut);
                cr_expect_eq(paths[p].fn(&st, s + cut, n - cut), UTF8_REJECT,
                             "%s: case %zu split at %zu", paths[p].name, i, cut);
            }
            cr_expect_not(utf8_is_valid(s, n));
        }
    }
}

Test(utf8, every_lead_byte_c0_c1_f5_ff_rejected)
{
    for (unsigned b = 0; b < 256; b++) {
        uint8_t s[4] = {(uint8_t)b, 0x80, 0x80, 0x80};
        int bad = b == 0xc0 || b == 0xc1 || b >= 0xf5 || (b >= 0x80 && b <= 0xbf);
        for (size_t p = 0; p < ARRAY_SIZE(paths); p++) {
            uint32_t st = UTF8_ACCEPT;
            uint32_t r = paths[p].fn(&st, s, 1);
            cr_expect_eq(r == UTF8_REJECT, bad, "%s: byte %02x alone", paths[p].name, b);
        }
    }
}

static const struct ucase truncated_cases[] = {
    {"\xc2", 0},         {"\xdf", 0},         {"\xe0", 0},        {"\xe0\xa0", 0},
    {"\xe1\x80", 0},     {"\xed\x9f", 0},     {"\xf0", 0},        {"\xf0\x90", 0},
    {"\xf0\x90\x80", 0}, {"\xf4\x8f\xbf", 0}, {"abc\xe2\x82", 0}, {"0123456789abcdef\xf3", 0},
};

Test(utf8, truncated_at_end_is_neither_accept_nor_reject)
{
    for (size_t p = 0; p < ARRAY_SIZE(paths); p++) {
        for (size_t i = 0; i < ARRAY_SIZE(truncated_cases); i++) {
            const uint8_t *s = (const uint8_t *)truncated_cases[i].s;
            size_t n = case_len(truncated_cases[i].s, truncated_cases[i].len);
            uint32_t st = UTF8_ACCEPT;
            uint32_t r = paths[p].fn(&st, s, n);
            cr_expect(r != UTF8_ACCEPT && r != UTF8_REJECT, "%s: case %zu gave %u", paths[p].name,
                      i, r);
            cr_expect_not(utf8_is_valid(s, n));
        }
    }
}

Test(utf8, reject_is_sticky_and_bad_state_rejected)
{
    for (size_t p = 0; p < ARRAY_SIZE(paths); p++) {
        uint32_t st = UTF8_REJECT;
        cr_expect_eq(paths[p].fn(&st, (const uint8_t *)"abcdefghijklmnop", 16), UTF8_REJECT);
        cr_expect_eq(paths[p].fn(&st, (const uint8_t *)"", 0), UTF8_REJECT);
        st = 0xdeadbeef; /* a state no call produces */
        cr_expect_eq(paths[p].fn(&st, (const uint8_t *)"a", 1), UTF8_REJECT);
    }
}

/* ---- differential test against a reference ------------------------------ */

/*
 * The reference reasons about code point values, not byte ranges: a partial
 * sequence is acceptable while some completion of it encodes a scalar value
 * in the range its length is for (no overlong), outside the surrogates and
 * at most U+10FFFF. The completions of a prefix form the interval between
 * filling the missing bits with zeros and with ones.
 */
static int ref_seq_len(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if ((b & 0xe0) == 0xc0)
        return 2;
    if ((b & 0xf0) == 0xe0)
        return 3;
    if ((b & 0xf8) == 0xf0)
        return 4;
    return 0;
}

static int ref_completable(const uint8_t *s, int k, int len)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t max_cp[5] = {0, 0x7f, 0x7ff, 0xffff, 0x10ffff};
    uint32_t lo, hi;

    for (int j = 1; j < k; j++)
        if ((s[j] & 0xc0) != 0x80)
            return 0;
    lo = hi = s[0] & (len == 1 ? 0x7f : 0x7f >> len);
    for (int j = 1; j < len; j++) {
        lo = lo << 6 | (j < k ? s[j] & 0x3fu : 0);
        hi = hi << 6 | (j < k ? s[j] & 0x3fu : 0x3f);
    }
    if (lo < min_cp[len])
        lo = min_cp[len];
    if (hi > max_cp[len])
        hi = max_cp[len];
    if (lo > hi)
        return 0;
    return !(lo >= 0xd800 && hi <= 0xdfff);
}

#define REF_VALID     ((size_t)-1)
#define REF_TRUNCATED ((size_t)-2)

/* Returns the index of the first bad byte, REF_VALID or REF_TRUNCATED. */
static size_t ref_check(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        int len = ref_seq_len(s[i]);
        if (len == 0)
            return i;
        for (int k = 1; k <= len; k++) {
            if (i + (size_t)k > n)
                return REF_TRUNCATED;
            if (!ref_completable(s + i, k, len))
                return i + (size_t)k - 1;
        }
        i += (size_t)len;
    }
    return REF_VALID;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Appends a valid encoding of a random scalar value of 1 to 4 bytes. */
static size_t put_random_char(uint8_t *out, uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    uint32_t cp;
    switch (r & 3) {
    case 0:
        cp = (uint32_t)(r >> 8) % 0x80;
        out[0] = (uint8_t)cp;
        return 1;
    case 1:
        cp = 0x80 + (uint32_t)(r >> 8) % (0x800 - 0x80);
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    case 2:
        cp = 0x800 + (uint32_t)(r >> 8) % (0x10000 - 0x800 - 0x800);
        if (cp >= 0xd800)
            cp += 0x800;
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    default:
        cp = 0x10000 + (uint32_t)(r >> 8) % (0x110000 - 0x10000);
        out[0] = (uint8_t)(0xf0 | cp >> 18);
        out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (uint8_t)(0x80 | (cp & 0x3f));
        return 4;
    }
}

/* Random text that is mostly valid, with ASCII runs long enough for the fast
 * path and now and then a random or boundary byte to break it. */
static size_t random_text(uint8_t *out, size_t cap, uint64_t *rng)
{
    static const uint8_t edge[] = {0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
                                   0xdf, 0xe0, 0xed, 0xee, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    size_t n = 0, want = (size_t)(rng_next(rng) % cap);
    while (n + 4 <= want) {
        uint64_t r = rng_next(rng);
        unsigned kind = (unsigned)(r % 32);
        if (kind < 8) {
            size_t run = 1 + (size_t)(r >> 8) % 20;
            for (size_t j = 0; j < run && n < want; j++)
                out[n++] = (uint8_t)(' ' + (r >> 16) % 90);
        } else if (kind < 29) {
            n += put_random_char(out + n, rng);
        } else if (kind == 29) {
            out[n++] = edge[(r >> 8) % sizeof(edge)];
        } else if (kind == 30) {
            out[n++] = (uint8_t)(r >> 8);
        } else { /* a valid character cut short */
            n += put_random_char(out + n, rng) - 1;
        }
    }
    /* A quarter of the texts end inside a character. */
    if (rng_next(rng) % 4 == 0)
        n += put_random_char(out + n, rng) - 1;
    return n;
}

Test(utf8, differential_against_reference)
{
    enum { CAP = 96, ROUNDS = 200000 };
    uint8_t buf[CAP + 16]; /* room for an offset and a last character */
    uint64_t rng = 0x9e3779b97f4a7c15u;
    size_t seen[3] = {0};

    for (int round = 0; round < ROUNDS; round++) {
        size_t off = (size_t)round & 7; /* every alignment for the word loads */
        size_t n = random_text(buf + off, CAP, &rng);
        const uint8_t *s = buf + off;
        size_t want = ref_check(s, n);
        uint32_t expect_state = want == REF_VALID ? UTF8_ACCEPT : UTF8_REJECT;
        seen[want == REF_VALID ? 0 : want == REF_TRUNCATED ? 1 : 2]++;

        for (size_t p = 0; p < ARRAY_SIZE(paths); p++) {
            uint32_t st = UTF8_ACCEPT;
            uint32_t r = paths[p].fn(&st, s, n);
            if (want == REF_TRUNCATED)
                cr_assert(r != UTF8_ACCEPT && r != UTF8_REJECT, "%s: round %d", paths[p].name,
                          round);
            else
                cr_assert_eq(r, expect_state, "%s: round %d", paths[p].name, round);

            size_t at = feed_bytewise(paths[p].fn, s, n, &st);
            cr_assert_eq(at, want < n ? want : n, "%s: round %d: rejected at %zu, not %zu",
                         paths[p].name, round, at, want);

            /* Three random pieces give the same end state as one call. */
            size_t a = n ? (size_t)(rng_next(&rng) % (n + 1)) : 0;
            size_t b = a + (n - a ? (size_t)(rng_next(&rng) % (n - a + 1)) : 0);
            uint32_t st2 = UTF8_ACCEPT;
            paths[p].fn(&st2, s, a);
            paths[p].fn(&st2, s + a, b - a);
            paths[p].fn(&st2, s + b, n - b);
            cr_assert_eq(st2, r, "%s: round %d split %zu/%zu", paths[p].name, round, a, b);
        }
    }
    cr_log_info("differential: valid %zu, truncated %zu, invalid %zu", seen[0], seen[1], seen[2]);
    /* The generator must exercise all three outcomes substantially. */
    cr_expect(seen[0] > ROUNDS / 10 && seen[1] > ROUNDS / 50 && seen[2] > ROUNDS / 10,
              "valid %zu truncated %zu invalid %zu", seen[0], seen[1], seen[2]);
}

/* The reference itself, on the code points around each boundary, so the
 * differential test does not rest on a reference that agrees by mistake. */
Test(utf8, reference_and_dfa_agree_on_every_boundary_code_point)
{
    static const uint32_t edges[] = {0x0,     0x7f,    0x80,    0x7ff,   0x800,    0xfff,
                                     0x1000,  0xd7ff,  0xd800,  0xdfff,  0xe000,   0xffff,
                                     0x10000, 0x3ffff, 0x40000, 0xfffff, 0x100000, 0x10ffff};
    for (size_t i = 0; i < ARRAY_SIZE(edges); i++) {
        uint32_t cp = edges[i];
        uint8_t s[4];
        size_t n;
        if (cp < 0x80) {
            s[0] = (uint8_t)cp;
            n = 1;
        } else if (cp < 0x800) {
            s[0] = (uint8_t)(0xc0 | cp >> 6);
            s[1] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 2;
        } else if (cp < 0x10000) {
            s[0] = (uint8_t)(0xe0 | cp >> 12);
            s[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            s[2] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 3;
        } else {
            s[0] = (uint8_t)(0xf0 | cp >> 18);
            s[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
            s[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            s[3] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 4;
        }
        int surrogate = cp >= 0xd800 && cp <= 0xdfff;
        cr_expect_eq(ref_check(s, n) == REF_VALID, !surrogate, "reference on U+%04X", cp);
        cr_expect_eq(utf8_is_valid(s, n), !surrogate, "validator on U+%04X", cp);
    }
}
