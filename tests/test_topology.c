/* test_topology.c — the static topology YAML: the original cake's example, a Qwen3.5-style prefix, every
 * rejected shape with the fragment its message must carry (worker, field, line), malformed YAML, the checks
 * against a model (prefix, bounds, a layer held twice), lookup by name and loading from a file. */
#include "cluster/topology.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse(const char *yaml, ck_topology *t, char *err, size_t errlen) {
    return ck_topology_parse(yaml, strlen(yaml), t, err, errlen);
}

/* Expects yaml to be rejected with a message holding every fragment in frags (NULL-terminated). */
static void expect_error(const char *yaml, const char *const *frags) {
    ck_topology t;
    char err[512] = "";
    int rc = parse(yaml, &t, err, sizeof err);
    CK_EXPECT(rc == -1, "accepted: %s", yaml);
    if (rc == 0) {
        ck_topology_free(&t);
        return;
    }
    CK_EXPECT(t.n == 0 && t.workers == NULL, "output not cleared on error");
    for (const char *const *f = frags; *f; f++) CK_EXPECT(strstr(err, *f), "'%s' not in '%s'", *f, err);
}
#define BAD(yaml, ...) expect_error(yaml, (const char *const[]){__VA_ARGS__, NULL})

static const char *EXAMPLE =
    "linux_server_1:\n"
    "  host: 'linux_server.host:10128'\n"
    "  description: 'NVIDIA Titan X Pascal (12GB)'\n"
    "  layers:\n"
    "    - 'model.layers.0-5'\n"
    "linux_server_2:\n"
    "  host: '192.168.1.2:10128'\n"
    "  vram_bytes: 12000000000\n"
    "  tflops: 11.5\n"
    "  layers:\n"
    "    - 'model.layers.6-12'\n"
    "    - 'model.layers.13'\n";

static void test_example(void) {
    ck_topology t;
    char err[512] = "";
    CK_EXPECT(parse(EXAMPLE, &t, err, sizeof err) == 0, "example: %s", err);
    CK_EXPECT(t.n == 2, "n %zu", t.n);
    if (t.n != 2) return;
    const ck_topo_worker *a = &t.workers[0], *b = &t.workers[1];
    CK_EXPECT(!strcmp(a->name, "linux_server_1") && !strcmp(a->host, "linux_server.host:10128"), "worker 1");
    CK_EXPECT(a->description && !strcmp(a->description, "NVIDIA Titan X Pascal (12GB)"), "description");
    CK_EXPECT(!strcmp(a->prefix, "model.layers") && a->first == 0 && a->last == 5, "range 1 %lld-%lld",
              (long long)a->first, (long long)a->last);
    CK_EXPECT(a->vram_bytes == 0 && a->tflops == 0, "defaults");
    CK_EXPECT(!strcmp(b->name, "linux_server_2") && !strcmp(b->host, "192.168.1.2:10128"), "worker 2");
    CK_EXPECT(b->description == NULL, "no description");
    CK_EXPECT(b->vram_bytes == 12000000000ull && b->tflops == 11.5, "vram %llu tflops %g",
              (unsigned long long)b->vram_bytes, b->tflops);
    CK_EXPECT(b->first == 6 && b->last == 13, "merged range 2 %lld-%lld", (long long)b->first, (long long)b->last);
    CK_EXPECT(ck_topology_find(&t, "linux_server_2") == b && ck_topology_find(&t, "nope") == NULL &&
              ck_topology_find(&t, "linux_server") == NULL && ck_topology_find(NULL, "x") == NULL, "find");
    CK_EXPECT(ck_topology_check(&t, "model.layers", 14, err, sizeof err) == 0, "check 14: %s", err);
    CK_EXPECT(ck_topology_check(&t, "model.layers", 32, err, sizeof err) == 0, "check 32: %s", err);
    CK_EXPECT(ck_topology_check(&t, "model.layers", 13, err, sizeof err) == -1 && strstr(err, "linux_server_2") &&
              strstr(err, "6-13") && strstr(err, "13 layers"), "out of range: %s", err);
    CK_EXPECT(ck_topology_check(&t, "model.language_model.layers", 32, err, sizeof err) == -1 &&
              strstr(err, "linux_server_1") && strstr(err, "'model.layers'") &&
              strstr(err, "'model.language_model.layers'"), "prefix: %s", err);
    ck_topology_free(&t);
    ck_topology_free(&t); /* idempotent */
}

static void test_qwen35(void) {
    ck_topology t;
    char err[512] = "";
    const char *y = "gpu0:\n  host: 10.0.0.2:10128\n  layers: [model.language_model.layers.0-7]\n"
                    "gpu1:\n  host: \"10.0.0.3:10128\"\n  layers:\n  - model.language_model.layers.12-15\n"
                    "  - model.language_model.layers.8-11\n";
    CK_EXPECT(parse(y, &t, err, sizeof err) == 0, "qwen3.5: %s", err);
    CK_EXPECT(t.n == 2 && t.workers[0].first == 0 && t.workers[0].last == 7 && t.workers[1].first == 8 &&
              t.workers[1].last == 15, "ranges");
    CK_EXPECT(t.n == 2 && !strcmp(t.workers[1].prefix, "model.language_model.layers"), "prefix");
    CK_EXPECT(ck_topology_check(&t, "model.language_model.layers", 24, err, sizeof err) == 0, "check: %s", err);
    CK_EXPECT(ck_topology_check(&t, "model.layers", 24, err, sizeof err) == -1 && strstr(err, "gpu0") &&
              strstr(err, "model.language_model.layers") && strstr(err, "'model.layers'"), "prefix: %s", err);
    CK_EXPECT(ck_topology_check(&t, "model.language_model.layers", 15, err, sizeof err) == -1 &&
              strstr(err, "gpu1") && strstr(err, "8-15"), "bounds: %s", err);
    ck_topology_free(&t);
}

static void test_accepted_shapes(void) {
    ck_topology t;
    char err[512] = "";
    /* no layers (missing, empty list, null), unknown keys of any shape, IPv6, a single worker with 1 layer */
    const char *y = "a:\n  host: h:1\nb:\n  host: 'h:65535'\n  layers: []\n  future: {x: [1, 2]}\n"
                    "c:\n  host: '[::1]:10128'\n  layers:\n  description: ~\n  tflops: 0\n  vram_bytes: '0'\n"
                    "d:\n  host: h:2\n  layers: ['x.y.z.4']\n";
    CK_EXPECT(parse(y, &t, err, sizeof err) == 0, "shapes: %s", err);
    CK_EXPECT(t.n == 4, "n %zu", t.n);
    for (size_t i = 0; i < 3 && t.n == 4; i++)
        CK_EXPECT(t.workers[i].first == 0 && t.workers[i].last == -1 && t.workers[i].prefix &&
                  !t.workers[i].prefix[0], "worker %zu has no layers", i);
    CK_EXPECT(t.n == 4 && t.workers[2].description == NULL, "null description");
    CK_EXPECT(t.n == 4 && !strcmp(t.workers[3].prefix, "x.y.z") && t.workers[3].first == 4 && t.workers[3].last == 4,
              "single layer");
    CK_EXPECT(ck_topology_check(&t, "x.y.z", 5, err, sizeof err) == 0, "check: %s", err);
    ck_topology_free(&t);

    CK_EXPECT(parse("{}", &t, err, sizeof err) == 0 && t.n == 0, "empty mapping: %s", err);
    ck_topology_free(&t);
    CK_EXPECT(parse("# just a comment\n---\n{}\n...\n", &t, err, sizeof err) == 0 && t.n == 0, "explicit doc: %s",
              err);
    ck_topology_free(&t);
    CK_EXPECT(ck_topology_check(&t, "model.layers", 0, err, sizeof err) == 0, "empty check: %s", err);
}

static void test_field_errors(void) {
    BAD("w:\n  layers: ['model.layers.0']\n", "worker w", "host is missing", "line 2");
    BAD("w:\n  host: 'localhost'\n", "worker w", "host 'localhost' has no port", "line 2");
    BAD("w:\n  host: ':10128'\n", "worker w", "no address", "line 2");
    BAD("w:\n  host: 'h:0'\n", "worker w", "port must be a number in 1..65535", "line 2");
    BAD("w:\n  host: 'h:65536'\n", "worker w", "port", "line 2");
    BAD("w:\n  host: 'h:99999999999999999999'\n", "worker w", "port", "line 2");
    BAD("w:\n  host: 'h:-1'\n", "worker w", "port", "line 2");
    BAD("w:\n  host: 'h:'\n", "worker w", "port", "line 2");
    BAD("w:\n  host: 'h:12x'\n", "worker w", "port", "line 2");
    BAD("w:\n  host: '::1:10128'\n", "worker w", "bracketed", "line 2");
    BAD("w:\n  host: 'a b:1'\n", "worker w", "whitespace", "line 2");
    BAD("w:\n  host: [h, 1]\n", "worker w", "host must be a scalar, found a sequence", "line 2");
    BAD("w:\n  host: \"h\\0x:1\"\n", "worker w", "host contains a NUL byte", "line 2");
    BAD("w:\n  host: h:1\n  description: {a: b}\n", "worker w", "description must be a scalar, found a mapping",
        "line 3");
    BAD("w:\n  host: h:1\n  vram_bytes: -5\n", "worker w", "vram_bytes '-5' is not a non-negative integer", "line 3");
    BAD("w:\n  host: h:1\n  vram_bytes: 1.5e9\n", "worker w", "vram_bytes", "line 3");
    BAD("w:\n  host: h:1\n  vram_bytes: 18446744073709551616\n", "worker w", "vram_bytes", "line 3");
    BAD("w:\n  host: h:1\n  vram_bytes: [1]\n", "worker w", "vram_bytes must be a scalar", "line 3");
    BAD("w:\n  host: h:1\n  tflops: -1.5\n", "worker w", "tflops '-1.5' is not a non-negative finite number",
        "line 3");
    BAD("w:\n  host: h:1\n  tflops: .inf\n", "worker w", "tflops", "line 3");
    BAD("w:\n  host: h:1\n  tflops: nan\n", "worker w", "tflops", "line 3");
    BAD("w:\n  host: h:1\n  tflops: 1e999\n", "worker w", "tflops", "line 3");
    BAD("w:\n  host: h:1\n  tflops: 11.5x\n", "worker w", "tflops", "line 3");
    BAD("w:\n  host: h:1\n  tflops: ' 1'\n", "worker w", "tflops", "line 3");
    BAD("w:\n  host: h:1\n  tflops: {}\n", "worker w", "tflops must be a scalar", "line 3");
}

static void test_layer_errors(void) {
    BAD("w:\n  host: h:1\n  layers: 'model.layers.0-5'\n", "worker w", "layers must be a sequence, found a scalar",
        "line 3");
    BAD("w:\n  host: h:1\n  layers:\n    - [model.layers.0]\n", "worker w",
        "layers entries must be scalars, found a sequence", "line 4");
    BAD("w:\n  host: h:1\n  layers: ['model.layers']\n", "worker w", "'model.layers' is not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['5']\n", "worker w", "'5' is not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['.5']\n", "worker w", "'.5' is not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['model.layers.']\n", "worker w", "not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['model.layers.-3']\n", "worker w", "not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['model.layers.+3']\n", "worker w", "not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['model.layers.3-']\n", "worker w", "not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['model.layers.1-2-3']\n", "worker w", "not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['model.layers.0x5']\n", "worker w", "not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['model.layers.1000000']\n", "worker w", "not PREFIX.N", "below 1000000",
        "line 3");
    BAD("w:\n  host: h:1\n  layers: ['model.layers.99999999999999999999999']\n", "worker w", "not PREFIX.N",
        "line 3");
    BAD("w:\n  host: h:1\n  layers: [\"model.layers.1\\0\"]\n", "worker w", "not PREFIX.N", "line 3");
    BAD("w:\n  host: h:1\n  layers: ['model.layers.7-3']\n", "worker w", "start 7 after end 3", "line 3");
    BAD("w:\n  host: h:1\n  layers:\n    - model.layers.0-3\n    - model.language_model.layers.4-7\n", "worker w",
        "has prefix 'model.language_model.layers' but earlier entries use 'model.layers'", "line 5");
    BAD("w:\n  host: h:1\n  layers:\n    - model.layers.0-5\n    - model.layers.7-9\n", "worker w",
        "worker w: layers 0-5 and 7-9 are not contiguous", "lines 4 and 5");
    BAD("w:\n  host: h:1\n  layers:\n    - model.layers.7-9\n    - model.layers.0-5\n", /* any order */
        "worker w: layers 0-5 and 7-9 are not contiguous", "lines 5 and 4");
    BAD("w:\n  host: h:1\n  layers:\n    - model.layers.0-5\n    - model.layers.5-9\n", "worker w",
        "layers 0-5 and 5-9 overlap", "lines 4 and 5");
    BAD("w:\n  host: h:1\n  layers:\n    - model.layers.3\n    - model.layers.3\n", "worker w", "layers 3 and 3 overlap");
    BAD("w:\n  host: h:1\n  layers:\n    - model.layers.0-9\n    - model.layers.2-4\n", "worker w", "overlap");
}

static void test_structure_errors(void) {
    BAD("a:\n  host: h:1\nb:\n  host: h:2\na:\n  host: h:3\n", "duplicate worker name 'a'", "line 5");
    BAD("w:\n  host: h:1\n  layers: []\n  host: h:2\n", "worker w", "duplicate key 'host'", "line 4");
    BAD("w:\n  host: h:1\n  x: 1\n  x: 2\n", "worker w", "duplicate key 'x'", "line 4"); /* unknown keys too */
    BAD("w: 'h:1'\n", "worker w", "expected a mapping", "found a scalar", "line 1");
    BAD("w:\n", "worker w", "expected a mapping", "line 1");
    BAD("w: [h:1]\n", "worker w", "expected a mapping", "found a sequence", "line 1");
    BAD("? [a, b]\n: {host: 'h:1'}\n", "worker names must be scalars, found a sequence", "line 1");
    BAD("'': {host: 'h:1'}\n", "empty worker name", "line 1");
    BAD("w: {host: 'h:1', [k]: v}\n", "worker w", "keys must be scalars", "line 1");
    BAD("- a\n- b\n", "root must be a mapping", "found a sequence", "line 1");
    BAD("just text\n", "root must be a mapping", "found a scalar", "line 1");
    BAD("", "empty document");
    BAD("# nothing\n", "empty document");
    BAD("a: {host: 'h:1'}\n---\nb: {host: 'h:2'}\n", "more than one YAML document", "line 3");
}

static void test_malformed_yaml(void) {
    BAD("w:\n  host: 'h:1\n  layers: []\n", "invalid YAML", "quoted scalar", "line 2");
    BAD("w:\n\thost: 'h:1'\n", "invalid YAML", "line 2");
    BAD("w:\n  host: h:1\n layers: []\n", "invalid YAML", "line 3");
    BAD("w: {host: h:1\n", "invalid YAML", "line 2");
    BAD("w:\n  host: \"h:1\n", "invalid YAML", "line 2");
    BAD("w: *nope\n", "invalid YAML", "line 1");
    BAD("w:\n  host: 'h:1'\n  description: '\xff\xfe'\n", "invalid YAML text", "line 3");
    static const char nul[] = "w:\n  host: h:1\n  x: a\0b\n";
    ck_topology t;
    char err[256] = "";
    CK_EXPECT(ck_topology_parse(nul, sizeof nul - 1, &t, err, sizeof err) == -1 && strstr(err, "line 3"),
              "NUL byte: %s", err);
    CK_EXPECT(ck_topology_parse(NULL, 0, &t, err, sizeof err) == -1, "NULL text");
    CK_EXPECT(ck_topology_parse("{}", 2, NULL, err, sizeof err) == -1, "NULL out");
    CK_EXPECT(ck_topology_parse("w: {host: 'h:1'}", 7, &t, NULL, 0) == -1, "NULL err buffer, truncated text");
}

static void test_aliases(void) {
    ck_topology t;
    char err[512] = "";
    /* anchors and aliases are plain YAML: shared values work, a self-referencing node cannot loop */
    const char *y = "a: &w {host: 'h:1', layers: &l [m.l.0-1]}\nb: {host: 'h:2', layers: [m.l.2]}\n";
    CK_EXPECT(parse(y, &t, err, sizeof err) == 0 && t.n == 2, "aliases: %s", err);
    ck_topology_free(&t);
    BAD("a: &x {host: 'h:1', layers: *x}\n", "worker a", "layers must be a sequence, found a mapping");
    BAD("a: &x [*x]\n", "worker a", "expected a mapping");
}

static void test_check_errors(void) {
    ck_topology t;
    char err[512] = "";
    const char *y = "a: {host: 'h:1', layers: [m.l.0-7]}\nb: {host: 'h:2'}\nc: {host: 'h:3', layers: [m.l.10-12]}\n"
                    "d: {host: 'h:4', layers: [m.l.5-9]}\n";
    CK_EXPECT(parse(y, &t, err, sizeof err) == 0, "parse: %s", err);
    CK_EXPECT(ck_topology_check(&t, "m.l", 24, err, sizeof err) == -1 &&
              strstr(err, "layer 5 is held by two workers: a and d"), "twice: %s", err);
    ck_topology_free(&t);

    y = "a: {host: 'h:1', layers: [m.l.8-9]}\nb: {host: 'h:2', layers: [m.l.0-23]}\n";
    CK_EXPECT(parse(y, &t, err, sizeof err) == 0, "parse: %s", err);
    CK_EXPECT(ck_topology_check(&t, "m.l", 24, err, sizeof err) == -1 &&
              strstr(err, "layer 8 is held by two workers: a and b"), "nested: %s", err);
    CK_EXPECT(ck_topology_check(&t, "m.l", 23, err, sizeof err) == -1 && strstr(err, "worker b") &&
              strstr(err, "0-23") && strstr(err, "out of range"), "bounds first: %s", err);
    CK_EXPECT(ck_topology_check(&t, "m", 24, err, sizeof err) == -1 && strstr(err, "worker a") &&
              strstr(err, "'m.l'") && strstr(err, "'m'"), "prefix: %s", err);
    CK_EXPECT(ck_topology_check(&t, NULL, 24, err, sizeof err) == -1, "NULL prefix");
    CK_EXPECT(ck_topology_check(&t, "m.l", -1, err, sizeof err) == -1, "negative n_layers");
    ck_topology_free(&t);

    y = "a: {host: 'h:1', layers: [m.l.0-7]}\nb: {host: 'h:2', layers: [m.l.8-15]}\n"; /* master keeps 16-23 */
    CK_EXPECT(parse(y, &t, err, sizeof err) == 0 && ck_topology_check(&t, "m.l", 24, err, sizeof err) == 0,
              "adjacent: %s", err);
    ck_topology_free(&t);
}

static void test_load(void) {
    char path[] = "/tmp/ck_topo_XXXXXX";
    int fd = mkstemp(path);
    CK_EXPECT(fd >= 0, "mkstemp");
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    fputs(EXAMPLE, f);
    fclose(f);
    ck_topology t;
    char err[512] = "";
    CK_EXPECT(ck_topology_load(path, &t, err, sizeof err) == 0 && t.n == 2, "load: %s", err);
    ck_topology_free(&t);
    f = fopen(path, "w");
    fputs("w:\n  host: nope\n", f);
    fclose(f);
    CK_EXPECT(ck_topology_load(path, &t, err, sizeof err) == -1 && strstr(err, path) && strstr(err, "worker w") &&
              strstr(err, "line 2"), "load error names the path: %s", err);
    f = fopen(path, "w"); /* over the 1 MiB cap */
    for (int i = 0; i < (1 << 20) / 16 + 1; i++) fputs("# padding......\n", f);
    fclose(f);
    CK_EXPECT(ck_topology_load(path, &t, err, sizeof err) == -1 && strstr(err, path), "too big: %s", err);
    unlink(path);
    CK_EXPECT(ck_topology_load(path, &t, err, sizeof err) == -1 && strstr(err, path), "missing: %s", err);
    CK_EXPECT(ck_topology_load("/tmp", &t, err, sizeof err) == -1, "directory: %s", err);
}

int main(void) {
    test_example();
    test_qwen35();
    test_accepted_shapes();
    test_field_errors();
    test_layer_errors();
    test_structure_errors();
    test_malformed_yaml();
    test_aliases();
    test_check_errors();
    test_load();
    return ck_test_done("test_topology");
}
