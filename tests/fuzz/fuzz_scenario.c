/*
 * fuzz_scenario.c: libFuzzer driver for scenario files, flags and URL
 * templates.
 *
 * The input is parsed as a scenario file; its first line is also split at
 * the first blank into a flag and a value for scenario_set, and taken whole
 * as a URL template. Nothing may crash, read past the input (it is parsed
 * from an exact-size copy) or fail without a message, and every message must
 * be one line of printable ASCII. Whatever parses must survive the round
 * trip: scenario_format's text parses back to the same text.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_scenario: check failed at line %d: %s\n", __LINE__, #cond);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char fmt_a[65536], fmt_b[65536];

static void fuzz_message(int rc, const char *err)
{
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0)
        return;
    size_t n = strlen(err);
    FUZZ_CHECK(n > 0 && n < SCENARIO_ERR_MAX);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(err[i] >= 0x20 && err[i] < 0x7f);
}

/* A scenario that was accepted writes out as text that parses back to it. */
static void fuzz_roundtrip(const struct scenario *s)
{
    struct scenario back;
    char err[SCENARIO_ERR_MAX];
    size_t n = scenario_format(s, fmt_a, sizeof(fmt_a));
    FUZZ_CHECK(n < sizeof(fmt_a) && strlen(fmt_a) == n);
    int rc = scenario_parse(&back, fmt_a, n, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "%s\n%s\n", err, fmt_a);
    FUZZ_CHECK(rc == 0);
    scenario_format(&back, fmt_b, sizeof(fmt_b));
    FUZZ_CHECK(strcmp(fmt_a, fmt_b) == 0);
    rc = scenario_check(s, err, sizeof(err));
    fuzz_message(rc, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct scenario s;
    char err[SCENARIO_ERR_MAX];
    char *text = malloc(size ? size : 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);

    /* The whole input as a file. */
    err[0] = 0;
    int rc = scenario_parse(&s, text, size, err, sizeof(err));
    fuzz_message(rc, err);
    if (rc == 0)
        fuzz_roundtrip(&s);
    /* A short error buffer still gets a terminated message. */
    char tiny[5] = "xxxx";
    int rc2 = scenario_parse(&s, text, size, tiny, sizeof(tiny));
    FUZZ_CHECK(rc2 == rc && strlen(tiny) < sizeof(tiny));

    /* The first line as "flag value", then as a URL template. */
    size_t line = 0;
    while (line < size && text[line] != '\n' && line < 2000)
        line++;
    char *first = malloc(line + 1);
    FUZZ_CHECK(first != NULL);
    memcpy(first, text, line);
    first[line] = 0;
    char *value = strchr(first, ' ');
    if (value != NULL)
        *value++ = 0;
    scenario_init(&s);
    err[0] = 0;
    rc = scenario_set(&s, first, value, err, sizeof(err));
    fuzz_message(rc, err);
    if (rc == 0)
        fuzz_roundtrip(&s);

    memcpy(first, text, line);
    first[line] = 0;
    struct scenario_url u;
    int flags = size ? data[size - 1] : 0;
    err[0] = 0;
    rc = scenario_url_parse(&u, first, flags & 1, flags & 2, err, sizeof(err));
    fuzz_message(rc, err);
    if (rc == 0) {
        FUZZ_CHECK(u.path[0] == '/' && u.port > 0 && u.host[0]);
        FUZZ_CHECK(strcmp(u.text, first) == 0);
        char out[64];
        size_t n = scenario_url_path(&u, "news", out, sizeof(out));
        FUZZ_CHECK(strlen(out) == (n < sizeof(out) ? n : sizeof(out) - 1));
        FUZZ_CHECK(n >= strlen(u.path) || strstr(u.path, "{ch}") != NULL);
    }
    free(first);
    free(text);
    return 0;
}
