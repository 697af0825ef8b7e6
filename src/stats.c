/*
 * stats.c: renders every worker's counters as /stats JSON and /metrics
 * Prometheus text. Called on whichever worker serves the request; it only
 * reads other workers' counters (relaxed atomic loads), so the figures are
 * each exact but not a single instant's snapshot across workers.
 */
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "worker.h"

#define LOAD(st, f) atomic_load_explicit(&(st)->f, memory_order_relaxed)

/* The sum over workers of the counter at offset off in struct stats. */
static uint64_t sum(const struct server *srv, size_t off)
{
    uint64_t total = 0;
    for (int i = 0; i < srv->nworkers; i++)
        total += atomic_load_explicit(
            (const _Atomic uint64_t *)((const char *)&srv->workers[i].stats + off),
            memory_order_relaxed);
    return total;
}

long stats_render_json(const struct server *srv, char **out)
{
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    if (!f)
        return -ENOMEM;
    char feats[256];
    config_feature_names(srv->features, feats, sizeof(feats));
    fprintf(f, "{\"workers\":%d,\"features\":\"%s\",\"total\":{", srv->nworkers, feats);
    const char *sep = "";
#define X(name, ...)                                                                               \
    fprintf(f, "%s\"%s\":%llu", sep, #name,                                                        \
            (unsigned long long)sum(srv, offsetof(struct stats, name)));                           \
    sep = ",";
    STATS_COUNTERS(X)
    STATS_GAUGES(X)
#undef X
    fprintf(f, "},\"per_worker\":[");
    for (int i = 0; i < srv->nworkers; i++) {
        const struct stats *st = &srv->workers[i].stats;
        fprintf(f, "%s{\"worker\":%d", i ? "," : "", i);
#define Y(name, type, help) fprintf(f, ",\"%s\":%llu", #name, (unsigned long long)LOAD(st, name));
#define Z(name, help) Y(name, gauge, help)
        STATS_COUNTERS(Y)
        STATS_GAUGES(Z)
        fputc('}', f);
    }
    fprintf(f, "]}\n");
#undef Y
#undef Z
    if (fclose(f) != 0)
        return -ENOMEM;
    return (long)len;
}

long stats_render_prometheus(const struct server *srv, char **out)
{
    size_t len = 0;
    FILE *f = open_memstream(out, &len);
    if (!f)
        return -ENOMEM;
#define X(name, type, help)                                                                        \
    fprintf(f, "# HELP ringcast_%s_total %s\n# TYPE ringcast_%s_total counter\n", #name, help,     \
            #name);                                                                                \
    for (int i = 0; i < srv->nworkers; i++)                                                        \
        fprintf(f, "ringcast_%s_total{worker=\"%d\"} %llu\n", #name, i,                           \
                (unsigned long long)LOAD(&srv->workers[i].stats, name));
    STATS_COUNTERS(X)
#undef X
#define X(name, help)                                                                              \
    fprintf(f, "# HELP ringcast_%s %s\n# TYPE ringcast_%s gauge\n", #name, help, #name);          \
    for (int i = 0; i < srv->nworkers; i++)                                                        \
        fprintf(f, "ringcast_%s{worker=\"%d\"} %llu\n", #name, i,                                 \
                (unsigned long long)LOAD(&srv->workers[i].stats, name));
    STATS_GAUGES(X)
#undef X
    if (fclose(f) != 0)
        return -ENOMEM;
    return (long)len;
}
