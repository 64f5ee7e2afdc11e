/* test_wmem.c — where the CPU backend keeps its weights (backend/cpu/wmem.h): copies hold the bytes they
 * were given (awkward sizes, 64-byte aligned, readable slack after them), the bytes held are accounted and
 * return to zero when every copy is released; the pages of a mapped file dropped after a copy leave the
 * process (RSS falls) and read back the same; a GGUF tensor converted at load is freed once copied and
 * made again, the same, when found again; and fixtures of every kind (bf16, f32, mixture of experts, the
 * Qwen3.5 hybrid, GGUF files with and without converted tensors) compute the same logits, bit for bit,
 * with their weights copied and mapped, in prefill and in decode, with no copy left once the engines are
 * closed. */
#include "backend/cpu/wmem.h"
#include "base/file.h"
#include "cake.h"
#include "format/safetensors.h"
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_copies(void) {
    static const size_t sizes[] = {1, 63, 64, 65, 4097, (size_t)3 << 20, 12345};
    enum { N = sizeof sizes / sizeof sizes[0] };
    const void *copy[N];
    size_t total = 0, before = ck_cpu_wmem_bytes();
    for (int i = 0; i < N; i++) {
        uint8_t *src = malloc(sizes[i]);
        for (size_t j = 0; j < sizes[i]; j++) src[j] = (uint8_t)(j * 131 + i);
        copy[i] = ck_cpu_wmem_copy(src, sizes[i]);
        CK_EXPECT(copy[i] != NULL, "copy of %zu bytes", sizes[i]);
        if (copy[i]) {
            CK_EXPECT((uintptr_t)copy[i] % 64 == 0, "copy of %zu bytes at %p", sizes[i], copy[i]);
            CK_EXPECT(memcmp(copy[i], src, sizes[i]) == 0, "bytes of the copy of %zu", sizes[i]);
            volatile uint8_t slack = ((const uint8_t *)copy[i])[sizes[i] + 63]; /* readable, never faults */
            (void)slack;
        }
        free(src);
        total += sizes[i];
    }
    for (int i = 1; i < N; i++) /* packed, not overlapping */
        CK_EXPECT((const uint8_t *)copy[i] >= (const uint8_t *)copy[i - 1] + sizes[i - 1] ||
                      (const uint8_t *)copy[i] + sizes[i] <= (const uint8_t *)copy[i - 1],
                  "copies %d and %d overlap", i - 1, i);
    CK_EXPECT(ck_cpu_wmem_bytes() == before + total, "bytes held %zu, want %zu", ck_cpu_wmem_bytes(), before + total);
    int x = 0;
    ck_cpu_wmem_release(&x, sizeof x); /* not a copy: ignored */
    for (int i = 0; i < N; i++) ck_cpu_wmem_release(copy[i], sizes[i]);
    CK_EXPECT(ck_cpu_wmem_bytes() == before, "bytes held after release: %zu", ck_cpu_wmem_bytes());
}

static long rss_pages(void) {
    long size = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &size, &rss) != 2) rss = -1;
    if (f) fclose(f);
    return rss;
}

static void test_map_drop(void) {
    char path[] = "/tmp/ck_wmem_XXXXXX", err[256];
    int fd = mkstemp(path);
    size_t n = (size_t)16 << 20;
    uint8_t *want = malloc(n);
    for (size_t i = 0; i < n; i++) want[i] = (uint8_t)(i * 7 + (i >> 12));
    CK_EXPECT(fd >= 0 && write(fd, want, n) == (ssize_t)n, "temp file");
    close(fd);
    ck_map m;
    CK_EXPECT(ck_map_open(path, &m, err, sizeof err) == 0, "%s", err);
    unlink(path);
    long page = sysconf(_SC_PAGESIZE);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i += (size_t)page) sum += ((const volatile uint8_t *)m.data)[i]; /* every page in */
    CK_EXPECT(sum > 0, "the mapping reads");
    long before = rss_pages();
    CK_EXPECT(ck_map_drop(&m, m.data + 100, n - 200) == 1, "drop inside the mapping");
    long after = rss_pages();
    long dropped_kb = (before - after) * page / 1024;
    CK_EXPECT(dropped_kb >= 15 * 1024, "RSS fell by %ld KiB, want >= 15 MiB", dropped_kb);
    CK_EXPECT(memcmp(m.data, want, n) == 0, "the mapping reads the file's bytes after the drop");
    CK_EXPECT(ck_map_drop(&m, want, 100) == 0, "memory outside the mapping is not dropped");
    CK_EXPECT(ck_map_drop(&m, m.data + n - 10, 11) == 0, "a range past the mapping's end is not dropped");
    ck_map_close(&m);
    free(want);
}

/* A GGUF file's converted tensors (Qwen3.5's re-tiled heads, (1 + w) norms): dropped once a backend has
 * copied them (the owned copy is freed), and made again, the same bytes, when found again. */
static void test_gguf_owned(const char *path) {
    char err[512];
    ck_weights w;
    if (ck_weights_open(path, &w, err, sizeof err) != 0) {
        CK_EXPECT(0, "open %s: %s", path, err);
        return;
    }
    const ck_map *m = &w.gguf->file.map;
    size_t converted = 0;
    for (size_t i = 0; i < ck_weights_count(&w); i++) {
        ck_tensor t;
        const char *name = ck_weights_name(&w, i);
        size_t rb;
        if (ck_weights_find(&w, name, &t, err, sizeof err) != 1 || ck_dtype_row_bytes(t.dtype, t.shape[t.ndim - 1], &rb))
            continue;
        const uint8_t *d = t.data;
        if (d >= m->data && d < m->data + m->size) continue; /* a view of the file */
        size_t n = ck_tensor_numel(&t) / t.shape[t.ndim - 1] * rb;
        uint8_t *keep = malloc(n);
        memcpy(keep, d, n);
        ck_weights_drop(&w, d, n);
        CK_EXPECT(ck_weights_find(&w, name, &t, err, sizeof err) == 1 && memcmp(t.data, keep, n) == 0,
                  "%s: converted again after the drop, it differs", name);
        free(keep);
        converted++;
    }
    CK_EXPECT(converted > 0, "%s: no converted tensor", path);
    ck_weights_close(&w);
}

/* Logits of ids fed as one prefill and then token by token, with the weights copied or mapped. */
static float *run(const char *dir, int copied, const int32_t *ids, size_t n, size_t *vocab) {
    char err[512];
    ck_cpu_wmem_set(copied ? CK_WMEM_ALWAYS : CK_WMEM_OFF);
    size_t held = ck_cpu_wmem_bytes();
    ck_engine *e;
    ck_session *s;
    if (ck_engine_open(dir, NULL, &e, err, sizeof err) != 0) {
        CK_EXPECT(0, "open %s: %s", dir, err);
        return NULL;
    }
    CK_EXPECT(copied ? ck_cpu_wmem_bytes() > held : ck_cpu_wmem_bytes() == held, "%s: %zu bytes of copies (%s)",
              dir, ck_cpu_wmem_bytes() - held, copied ? "copied" : "mapped");
    *vocab = ck_engine_vocab(e);
    float *out = malloc(2 * n * *vocab * sizeof *out);
    int ok = ck_session_open(e, 0, &s, err, sizeof err) == 0 &&
             ck_session_forward(s, ids, n, out, 1, err, sizeof err) == 0 && ck_session_truncate(s, 0, err, sizeof err) == 0;
    for (size_t t = 0; ok && t < n; t++)
        ok = ck_session_forward(s, &ids[t], 1, out + (n + t) * *vocab, 0, err, sizeof err) == 0;
    CK_EXPECT(ok, "%s: %s", dir, err);
    ck_session_close(s);
    ck_engine_close(e);
    CK_EXPECT(ck_cpu_wmem_bytes() == held, "%s: %zu bytes of copies left after close", dir, ck_cpu_wmem_bytes() - held);
    return out;
}

static void test_same_logits(const char *name) {
    char dir[4096];
    if (strstr(name, ".gguf")) snprintf(dir, sizeof dir, "%s/%s", CK_TEST_DATA, name);
    else ck_test_fixture(dir, sizeof dir, name);
    int32_t ids[12];
    for (size_t i = 0; i < 12; i++) ids[i] = (int32_t)(i * 83 + 5) % 1000;
    size_t va = 0, vb = 0;
    float *a = run(dir, 1, ids, 12, &va), *b = run(dir, 0, ids, 12, &vb);
    if (a && b) {
        CK_EXPECT(va == vb, "%s: vocab %zu vs %zu", name, va, vb);
        CK_EXPECT(memcmp(a, b, 2 * 12 * va * sizeof *a) == 0, "%s: logits differ between copied and mapped weights", name);
    }
    free(a);
    free(b);
}

int main(void) {
    ck_set_threads(2, NULL, 0);
    test_copies();
    test_map_drop();
    char path[4096];
    snprintf(path, sizeof path, "%s/gguf-llama/qwen3_5-s-bf16.gguf", CK_TEST_DATA);
    test_gguf_owned(path);
    const char *fixtures[] = {"qwen3-s", "qwen3-f32-s", "qwen3moe-s", "qwen3_5-s", "gguf-llama/gemma3-s-bf16.gguf",
                              "gguf-llama/qwen3_5-s-bf16.gguf"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) test_same_logits(fixtures[i]);
    return ck_test_done("test_wmem");
}
