/* topology.h — cake's static cluster topology (YAML, as the original cake reads it): a map of worker
 * name -> { host: 'addr:port', layers: ['model.layers.0-7', ...], description, vram_bytes, tflops }.
 * Layer entries name the checkpoint's layer prefix and an inclusive range ("PREFIX.N" or "PREFIX.A-B"),
 * e.g. model.layers.0-7, or model.language_model.layers.0-7 for Qwen3.5. Parsing is pure
 * (ck_topology_parse, fuzzed); validation against a model checks the prefix, that every range lies in
 * [0, n_layers), that no layer is held twice, and that each worker's layers are one contiguous range
 * (consecutive entries merge). Layers no worker holds stay on the master. */
#ifndef CK_CLUSTER_TOPOLOGY_H
#define CK_CLUSTER_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_topo_worker {
    char *name;
    char *host;                /* "addr:port" */
    char *description;         /* or NULL */
    uint64_t vram_bytes;       /* 0 when not given */
    double tflops;             /* 0 when not given */
    char *prefix;              /* layer prefix as written, e.g. "model.layers" (no trailing dot) */
    int64_t first, last;       /* merged inclusive range; last < first when the worker lists no layers */
} ck_topo_worker;

typedef struct ck_topology {
    ck_topo_worker *workers;   /* in file order */
    size_t n;
} ck_topology;

/* Parses YAML text[0..len). Errors name the worker, the field and the YAML line. */
int ck_topology_parse(const char *text, size_t len, ck_topology *out, char *err, size_t errlen);
/* Reads and parses a file (regular, at most 1 MiB). */
int ck_topology_load(const char *path, ck_topology *out, char *err, size_t errlen);
void ck_topology_free(ck_topology *t);

/* Checks t against a model whose layers are named "<prefix>.N" (prefix without trailing dot) with
 * n_layers layers: every worker's prefix matches, ranges in bounds and disjoint. */
int ck_topology_check(const ck_topology *t, const char *prefix, int64_t n_layers, char *err, size_t errlen);

/* The worker called name, or NULL. */
const ck_topo_worker *ck_topology_find(const ck_topology *t, const char *name);

#endif
