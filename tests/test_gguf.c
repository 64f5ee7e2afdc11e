/* test_gguf.c — GGUF files:
 *  - the parser on a file holding every metadata type (values read back exactly), then on every
 *    truncation of it and on hand-broken headers: each is refused with a clear error, none crashes;
 *  - fixtures converted to GGUF (model/gguf_convert.h) give the safetensors logits (exact f32-activation
 *    path): F32 and the checkpoint's own type within 1e-4, other float types within a mean-NLL bound;
 *    Llama's permuted Q/K and its rope_freqs go through the same path;
 *  - files written by llama.cpp's own converter (convert_hf_to_gguf.py, bf16; kept in tests/data/gguf-llama)
 *    of the Qwen3.5 fixtures give the safetensors logits within 1e-4: its qwen35 layout (tiled value
 *    heads, A as -exp(A_log), norms as 1 + w) is undone at load; requantized to Q8_0 (ssm_out alone, then
 *    every matrix), whose ssm_out blocks span two value heads of 16, they stay within a mean-NLL bound
 *    and near their dequantized twins; so do K-quants on a random Qwen3.5 of Qwen3.5's head size (128);
 *  - quantized files stay within a stated mean-NLL distance of the float model on the fixture's
 *    perplexity text (Q8_0, Q4_0 on the fixtures; Q4_K, Q5_K, Q6_K on a wider random model written here,
 *    since the fixtures' rows of 64 are not whole K-quant blocks). */
#include "engine/engine_internal.h"
#include "format/gguf.h"
#include "format/gguf_model.h"
#include "format/gguf_write.h"
#include "model/gguf_convert.h"
#include "tensor/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char out_dir[512];

/* ---- parser ---- */

static void build_sample(ck_gguf_w *w) {
    ck_gguf_w_init(w);
    ck_gguf_w_str(w, "general.architecture", "qwen3");
    ck_gguf_w_u32(w, "u32", 7);
    ck_gguf_w_i32(w, "i32", -5);
    ck_gguf_w_f32(w, "f32", 0.25f);
    ck_gguf_w_bool(w, "bool", 1);
    uint64_t u64 = 1ull << 40;
    ck_gguf_w_raw(w, "u64", CK_GGUF_U64, &u64, 8);
    double f64 = -1.5;
    ck_gguf_w_raw(w, "f64", CK_GGUF_F64, &f64, 8);
    int16_t i16 = -300;
    ck_gguf_w_raw(w, "i16", CK_GGUF_I16, &i16, 2);
    const char *strs[] = {"a", "", "hello"};
    ck_gguf_w_arr_str(w, "strs", strs, NULL, 3);
    int32_t ints[] = {1, -2, 3};
    ck_gguf_w_arr_i32(w, "ints", ints, 3);
    /* an array of two arrays of u8: [[1, 2], [3]] */
    uint8_t nested[] = {CK_GGUF_U8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2,
                        CK_GGUF_U8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3};
    uint8_t head[12] = {CK_GGUF_ARRAY, 0, 0, 0, 2};
    uint8_t val[sizeof head + sizeof nested];
    memcpy(val, head, sizeof head);
    memcpy(val + sizeof head, nested, sizeof nested);
    ck_gguf_w_raw(w, "nested", CK_GGUF_ARRAY, val, sizeof val);
    float data[64];
    for (int i = 0; i < 64; i++) data[i] = (float)i;
    uint64_t ne[2] = {32, 2};
    ck_gguf_w_tensor(w, "t.f32", 0, 2, ne, data, sizeof data);
    uint8_t q[34 * 2] = {0};
    ck_gguf_w_tensor(w, "t.q8", 8, 2, ne, q, sizeof q);
}

static void test_parse_values(const uint8_t *img, size_t len) {
    ck_gguf g;
    char err[256];
    if (ck_gguf_parse(img, len, &g, err, sizeof err) != 0) {
        CK_EXPECT(0, "parse: %s", err);
        return;
    }
    int64_t iv = 0;
    double dv = 0;
    ck_gguf_str s;
    CK_EXPECT(g.n_kv == 11 && g.n_tensors == 2 && g.version == 3, "counts %zu %zu", g.n_kv, g.n_tensors);
    CK_EXPECT(ck_gguf_int(&g, "u32", &iv) && iv == 7, "u32 %lld", (long long)iv);
    CK_EXPECT(ck_gguf_int(&g, "i32", &iv) && iv == -5, "i32 %lld", (long long)iv);
    CK_EXPECT(ck_gguf_int(&g, "u64", &iv) && iv == (1ll << 40), "u64");
    CK_EXPECT(ck_gguf_int(&g, "i16", &iv) && iv == -300, "i16");
    CK_EXPECT(ck_gguf_int(&g, "bool", &iv) && iv == 1, "bool");
    CK_EXPECT(ck_gguf_num(&g, "f32", &dv) && dv == 0.25, "f32");
    CK_EXPECT(ck_gguf_num(&g, "f64", &dv) && dv == -1.5, "f64");
    CK_EXPECT(!ck_gguf_int(&g, "f32", &iv) && !ck_gguf_int(&g, "absent", &iv), "int of a float / absent key");
    CK_EXPECT(ck_gguf_string(&g, "general.architecture", &s) && ck_gguf_str_eq(s, "qwen3"), "string");
    const ck_gguf_kv *kv = ck_gguf_find(&g, "strs");
    CK_EXPECT(kv && kv->n == 3 && ck_gguf_str_eq(kv->strs[2], "hello") && kv->strs[1].len == 0, "string array");
    kv = ck_gguf_find(&g, "ints");
    CK_EXPECT(kv && kv->n == 3 && ck_gguf_arr_int(kv, 1) == -2 && ck_gguf_arr_num(kv, 2) == 3.0, "int array");
    kv = ck_gguf_find(&g, "nested");
    CK_EXPECT(kv && kv->elem_type == CK_GGUF_ARRAY && kv->n == 2, "nested array");
    CK_EXPECT(g.tensors[0].nbytes == 256 && g.tensors[1].nbytes == 68 && g.tensors[1].dtype == CK_Q8_0, "tensor sizes");
    float f;
    memcpy(&f, g.tensors[0].data + 4 * 33, 4);
    CK_EXPECT(f == 33.0f && (size_t)(g.tensors[0].data - img) % 32 == 0, "tensor data");
    ck_gguf_free(&g);
}

static void expect_error(const uint8_t *img, size_t len, const char *want, const char *what) {
    ck_gguf g;
    char err[256] = "";
    int rc = ck_gguf_parse(img, len, &g, err, sizeof err);
    CK_EXPECT(rc == -1 && strstr(err, want), "%s: rc %d, error '%s' (want '%s')", what, rc, err, want);
    if (rc == 0) ck_gguf_free(&g);
}

/* A copy of img with the 4 or 8 bytes at `at` replaced. */
static uint8_t *patched(const uint8_t *img, size_t len, size_t at, uint64_t v, int bytes) {
    uint8_t *p = malloc(len);
    memcpy(p, img, len);
    memcpy(p + at, &v, (size_t)bytes);
    return p;
}

/* Offset of the first occurrence of s (as a length-prefixed GGUF string) in img. */
static size_t find_key(const uint8_t *img, size_t len, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 8; i + n <= len; i++)
        if (!memcmp(img + i, s, n) && img[i - 8] == n) return i - 8;
    return 0;
}

static void test_parse_errors(const uint8_t *img, size_t len) {
    size_t bad = 0, need = len;
    ck_gguf full;
    char why[256];
    if (ck_gguf_parse(img, len, &full, why, sizeof why) == 0) { /* the padding after the last tensor may go */
        const ck_gguf_tensor *last = &full.tensors[full.n_tensors - 1];
        need = (size_t)(last->data - img) + last->nbytes;
        ck_gguf_free(&full);
    }
    for (size_t n = 0; n < need; n++) { /* every truncation */
        ck_gguf g;
        char err[256];
        if (ck_gguf_parse(img, n, &g, err, sizeof err) == 0) bad++, ck_gguf_free(&g);
    }
    CK_EXPECT(bad == 0, "%zu truncations parsed", bad);
    expect_error(img, 10, "truncated GGUF", "short header");
    struct { size_t at; uint64_t v; int bytes; const char *want, *what; } cases[] = {
        {0, 0x46554746, 4, "bad magic", "magic"},
        {4, 1, 4, "version 1 is not supported", "version 1"},
        {4, 0, 4, "GGUF version 0 is not supported (2 and 3 are)", "version 0"},
        {4, 4, 4, "GGUF version 4 is not supported (2 and 3 are)", "version 4"},
        {4, 0x03000000, 4, "big-endian", "big-endian"},
        {8, 1ull << 40, 8, "do not fit", "huge tensor count"},
        {16, 1ull << 40, 8, "do not fit", "huge metadata count"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *p = patched(img, len, cases[i].at, cases[i].v, cases[i].bytes);
        expect_error(p, len, cases[i].want, cases[i].what);
        free(p);
    }
    ck_gguf g0; /* version 0 is not a byte-swapped 2 or 3: no word about endianness */
    char why0[256] = "";
    uint8_t *v0 = patched(img, len, 4, 0, 4);
    CK_EXPECT(ck_gguf_parse(v0, len, &g0, why0, sizeof why0) == -1 &&
                  !strcmp(why0, "GGUF version 0 is not supported (2 and 3 are)"), "version 0: '%s'", why0);
    free(v0);
    size_t k = find_key(img, len, "u32");
    uint8_t *p = patched(img, len, k + 8 + 3, 99, 4); /* value type 99 */
    expect_error(p, len, "unknown value type", "value type");
    free(p);
    p = patched(img, len, k, 1ull << 50, 8); /* key length past the end */
    expect_error(p, len, "truncated GGUF", "key length");
    free(p);
    p = patched(img, len, find_key(img, len, "i32") + 8, 0x00323375, 3); /* "i32" -> "u32": duplicate key */
    expect_error(p, len, "duplicate key", "duplicate key");
    free(p);
    size_t t = find_key(img, len, "t.q8");
    p = patched(img, len, t + 8 + 4, 0, 4); /* 0 dims */
    expect_error(p, len, "dimensions", "0 dims");
    free(p);
    p = patched(img, len, t + 8 + 4 + 4, 33, 8); /* ne0 = 33: not whole Q8_0 blocks */
    expect_error(p, len, "whole number", "partial block");
    free(p);
    p = patched(img, len, t + 8 + 4 + 4 + 16, 77, 4); /* ggml type 77 */
    expect_error(p, len, "unknown ggml type", "ggml type");
    free(p);
    p = patched(img, len, t + 8 + 4 + 4 + 16 + 4, 16, 8); /* offset 16: misaligned */
    expect_error(p, len, "alignment", "misaligned offset");
    free(p);
    p = patched(img, len, t + 8 + 4 + 4 + 16 + 4, 1ull << 40, 8); /* past the end */
    expect_error(p, len, "past the end", "offset past the end");
    free(p);
    p = patched(img, len, t + 8 + 4 + 4 + 8, 1ull << 62, 8); /* ne1 = 2^62: size overflows */
    expect_error(p, len, "overflows", "shape overflow");
    free(p);
    ck_gguf_w w; /* two tensors of one name; an alignment that is not a power of two */
    ck_gguf_w_init(&w);
    float z[32] = {0};
    uint64_t ne[1] = {32};
    ck_gguf_w_tensor(&w, "same", 0, 1, ne, z, sizeof z);
    ck_gguf_w_tensor(&w, "same", 0, 1, ne, z, sizeof z);
    uint8_t *img2;
    size_t len2;
    ck_gguf_w_image(&w, &img2, &len2);
    expect_error(img2, len2, "duplicate tensor", "duplicate tensor");
    free(img2);
    ck_gguf_w_free(&w);
    ck_gguf_w_init(&w);
    ck_gguf_w_u32(&w, "general.alignment", 24);
    ck_gguf_w_image(&w, &img2, &len2);
    expect_error(img2, len2, "power of two", "alignment 24");
    free(img2);
    ck_gguf_w_free(&w);
}

static void test_parser(void) {
    ck_gguf_w w;
    build_sample(&w);
    uint8_t *img;
    size_t len;
    CK_EXPECT(ck_gguf_w_image(&w, &img, &len) == 0, "image");
    test_parse_values(img, len);
    test_parse_errors(img, len);
    free(img);
    ck_gguf_w_free(&w);
}

/* ---- models ---- */

typedef struct run {
    float *logits;             /* [T, V] over the fixture's all_ids */
    double nll;                /* mean NLL over its ppl_ids */
    size_t V;
} run;

static int32_t *json_ids(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(arr, (int)i)->valuedouble;
    return ids;
}

static double mean_nll(const float *pl, const int32_t *ids, size_t n, size_t V) {
    double nll = 0;
    for (size_t t = 0; t + 1 < n; t++) {
        const float *r = pl + t * V;
        double mx = r[0], se = 0;
        for (size_t i = 1; i < V; i++) mx = fmax(mx, r[i]);
        for (size_t i = 0; i < V; i++) se += exp((double)r[i] - mx);
        nll += mx + log(se) - r[ids[t + 1]];
    }
    return nll / (double)(n - 1);
}

/* Logits of `all` and the mean NLL of `ppl` for the model at path. */
static int run_model(const char *path, const int32_t *all, size_t T, const int32_t *ppl, size_t n_ppl, run *r) {
    ck_engine *e;
    ck_session *s;
    char err[512];
    memset(r, 0, sizeof *r);
    if (ck_engine_open(path, NULL, &e, err, sizeof err) != 0) {
        CK_EXPECT(0, "open %s: %s", path, err);
        return -1;
    }
    r->V = ck_engine_vocab(e);
    CK_EXPECT(ck_session_open(e, T > n_ppl ? T : n_ppl, &s, err, sizeof err) == 0, "session: %s", err);
    r->logits = malloc(T * r->V * sizeof *r->logits);
    float *pl = malloc(n_ppl * r->V * sizeof *pl);
    CK_EXPECT(ck_session_forward(s, all, T, r->logits, 1, err, sizeof err) == 0, "%s: %s", path, err);
    ck_session_reset(s);
    CK_EXPECT(ck_session_forward(s, ppl, n_ppl, pl, 1, err, sizeof err) == 0, "%s: %s", path, err);
    r->nll = mean_nll(pl, ppl, n_ppl, r->V);
    free(pl);
    ck_session_close(s);
    ck_engine_close(e);
    return 0;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]));
    return w;
}

/* Tolerances: a lossless conversion (F32, or the checkpoint's own type) keeps the logits within 1e-4
 * of the safetensors model (1e-2 on a GPU, whose kernels for the two dtypes add in other orders); a lossy
 * one keeps the mean NLL within the type's bound of the float model's. */
static double LOSSLESS_TOL = 1e-4;
static const struct { const char *type; double nll_tol; } fixture_types[] = {
    {"F32", 0}, {"BF16", 0.01}, {"F16", 0.01}, {"Q8_0", 0.02}, {"Q4_0", 0.2},
};

/* The dtype of the checkpoint's embedding (all fixture tensors share one type). */
static int source_dtype(const char *dir) {
    ck_weights w;
    ck_tensor t;
    char err[256];
    int dt = -1;
    if (ck_weights_open(dir, &w, err, sizeof err) != 0) return -1;
    if (ck_weights_find(&w, "model.embed_tokens.weight", &t, err, sizeof err) == 1) dt = (int)t.dtype;
    ck_weights_close(&w);
    return dt;
}

/* A fixture's reference ids and its safetensors run (base.logits NULL when the run failed). */
typedef struct fixture {
    char dir[512];
    cJSON *ref;
    int32_t *all, *ppl;
    size_t T, n_ppl;
    run base;
} fixture;

static int fixture_open(fixture *f, const char *name) {
    char path[1024];
    snprintf(f->dir, sizeof f->dir, "%s/%s", CK_TEST_DATA, name);
    snprintf(path, sizeof path, "%s/reference.json", f->dir);
    f->ref = ck_test_json(path);
    f->all = json_ids(cJSON_GetObjectItem(f->ref, "all_ids"), &f->T);
    f->ppl = json_ids(cJSON_GetObjectItem(f->ref, "ppl_ids"), &f->n_ppl);
    return run_model(f->dir, f->all, f->T, f->ppl, f->n_ppl, &f->base);
}

static void fixture_close(fixture *f) {
    free(f->base.logits), free(f->all), free(f->ppl);
    cJSON_Delete(f->ref);
}

static void check_fixture(const char *name) {
    char path[1024], err[512];
    fixture f;
    if (fixture_open(&f, name) == 0) {
        int src = source_dtype(f.dir);
        for (size_t i = 0; i < sizeof fixture_types / sizeof fixture_types[0]; i++) {
            const char *ty = fixture_types[i].type;
            snprintf(path, sizeof path, "%s/%s-%s.gguf", out_dir, name, ty);
            if (ck_gguf_convert(f.dir, path, (ck_dtype)ck_dtype_from_name(ty), err, sizeof err) != 0) {
                CK_EXPECT(0, "%s %s: convert: %s", name, ty, err);
                continue;
            }
            run r;
            if (run_model(path, f.all, f.T, f.ppl, f.n_ppl, &r) != 0) continue;
            int dt = ck_dtype_from_name(ty), lossless = dt == CK_F32 || dt == src;
            double d = lossless ? max_diff(r.logits, f.base.logits, f.T * f.base.V) : fabs(r.nll - f.base.nll);
            double tol = lossless ? LOSSLESS_TOL : fixture_types[i].nll_tol;
            printf("%s %s: %s %.3g (mean NLL %.6f, float %.6f)\n", name, ty, lossless ? "max |logit diff|" : "|NLL diff|",
                   d, r.nll, f.base.nll);
            CK_EXPECT(d <= tol, "%s %s: %.3g over %.3g", name, ty, d, tol);
            free(r.logits);
        }
    }
    fixture_close(&f);
}

/* A fixture as llama.cpp's converter wrote it (tests/data/gguf-llama/NAME-bf16.gguf; its token list is a
 * placeholder: the fixtures have no tokenizer) against the fixture's safetensors. */
static void check_llama_file(const char *name) {
    char path[1024];
    fixture f;
    run r;
    snprintf(path, sizeof path, "%s/gguf-llama/%s-bf16.gguf", CK_TEST_DATA, name);
    if (fixture_open(&f, name) == 0 && run_model(path, f.all, f.T, f.ppl, f.n_ppl, &r) == 0) {
        double d = r.V == f.base.V ? max_diff(r.logits, f.base.logits, f.T * f.base.V) : INFINITY;
        printf("%s, llama.cpp's bf16 file: max |logit diff| %.3g (mean NLL %.6f, safetensors %.6f)\n", name, d, r.nll,
               f.base.nll);
        CK_EXPECT(d <= LOSSLESS_TOL, "%s (llama.cpp's file): %.3g over %.3g", name, d, LOSSLESS_TOL);
        free(r.logits);
    }
    fixture_close(&f);
}

/* Our conversion of a fixture against llama.cpp's own file of it (same weights, BF16): every tensor with the
 * same name, type, shape and bytes (F32 values within 1e-6 relative: -exp(A_log) in another libm), and the
 * architecture's metadata equal (numbers, number arrays). */
static void check_llama_layout(const char *name, const char *arch) {
    char src[1024], ours[1024], want_p[1024], err[512];
    snprintf(src, sizeof src, "%s/%s", CK_TEST_DATA, name);
    snprintf(ours, sizeof ours, "%s/%s-ours-bf16.gguf", out_dir, name);
    snprintf(want_p, sizeof want_p, "%s/gguf-llama/%s-bf16.gguf", CK_TEST_DATA, name);
    ck_gguf_file a, b;
    if (ck_gguf_convert(src, ours, CK_BF16, err, sizeof err) != 0) {
        CK_EXPECT(0, "%s: convert: %s", name, err);
        return;
    }
    if (ck_gguf_open(ours, &a, err, sizeof err) != 0 || ck_gguf_open(want_p, &b, err, sizeof err) != 0) {
        CK_EXPECT(0, "%s: open: %s", name, err);
        return;
    }
    CK_EXPECT(a.g.n_tensors == b.g.n_tensors, "%s: %zu tensors, llama.cpp's file %zu", name, a.g.n_tensors, b.g.n_tensors);
    size_t same = 0;
    for (size_t i = 0; i < b.g.n_tensors; i++) {
        const ck_gguf_tensor *y = &b.g.tensors[i], *x = ck_gguf_tensor_named(&a.g, y->name);
        if (!x) {
            CK_EXPECT(0, "%s: no tensor %s in our file", name, y->name);
            continue;
        }
        int shape = x->ggml_type == y->ggml_type && x->n_dims == y->n_dims && x->nbytes == y->nbytes;
        for (int d = 0; shape && d < y->n_dims; d++) shape = x->ne[d] == y->ne[d];
        CK_EXPECT(shape, "%s %s: type %s, %d dims, %llu bytes; llama.cpp's %s, %d, %llu", name, y->name,
                  ck_gguf_type_name(x->ggml_type), x->n_dims, (unsigned long long)x->nbytes,
                  ck_gguf_type_name(y->ggml_type), y->n_dims, (unsigned long long)y->nbytes);
        if (!shape) continue;
        int eq = !memcmp(x->data, y->data, x->nbytes);
        if (!eq && y->ggml_type == 0) { /* F32 */
            const float *fx = (const float *)x->data, *fy = (const float *)y->data;
            eq = 1;
            for (uint64_t k = 0; k < x->nbytes / 4; k++) eq &= fabsf(fx[k] - fy[k]) <= 1e-6f * fabsf(fy[k]);
        }
        CK_EXPECT(eq, "%s %s: values differ from llama.cpp's", name, y->name);
        same += eq;
    }
    size_t keys = 0;
    for (size_t i = 0; i < b.g.n_kv; i++) {
        const ck_gguf_kv *y = &b.g.kv[i], *x = ck_gguf_find(&a.g, y->key);
        if (strncmp(y->key, arch, strlen(arch)) || y->key[strlen(arch)] != '.') continue;
        keys++;
        int eq = x && x->n == y->n;
        for (uint64_t k = 0; eq && k < y->n; k++)
            eq = y->type == CK_GGUF_ARRAY ? ck_gguf_arr_num(x, k) == ck_gguf_arr_num(y, k) : 1;
        double vx = 0, vy = 0;
        if (eq && y->type != CK_GGUF_ARRAY) eq = ck_gguf_num(&a.g, y->key, &vx) && ck_gguf_num(&b.g, y->key, &vy) && vx == vy;
        CK_EXPECT(eq, "%s: metadata %s differs from llama.cpp's (%g vs %g)", name, y->key, vx, vy);
    }
    printf("%s, our BF16 conversion against llama.cpp's: %zu of %zu tensors equal, %zu %s.* keys compared\n", name,
           same, b.g.n_tensors, keys, arch);
    ck_gguf_close(&a), ck_gguf_close(&b);
}

/* j written to path as JSON. */
static void write_json(const char *path, const cJSON *j) {
    char *txt = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    CK_EXPECT(f && txt, "cannot write %s", path);
    if (f && txt) fputs(txt, f);
    if (f) fclose(f);
    free(txt);
}

/* Fixture `name` with text_config.key set to v (JSON), converted: refused with a message holding `want`. */
static void check_refusal(const char *name, const char *key, const char *v, const char *want) {
    char dir[900], path[1024], src[1024], out[1024], err[512] = "";
    snprintf(dir, sizeof dir, "%s/%s-%s", out_dir, name, key);
    mkdir(dir, 0755);
    snprintf(src, sizeof src, "%s/%s/config.json", CK_TEST_DATA, name);
    cJSON *cfg = ck_test_json(src), *tc = cJSON_GetObjectItem(cfg, "text_config");
    cJSON_DeleteItemFromObject(tc, key);
    cJSON_AddItemToObject(tc, key, cJSON_Parse(v));
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_json(path, cfg);
    cJSON_Delete(cfg);
    snprintf(src, sizeof src, "%s/%s/model.safetensors", CK_TEST_DATA, name);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    CK_EXPECT(symlink(src, path) == 0, "symlink %s", path);
    snprintf(out, sizeof out, "%s.gguf", dir);
    int rc = ck_gguf_convert(dir, out, CK_BF16, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, want), "%s with %s = %s: rc %d, '%s' (want '%s')", name, key, v, rc, err, want);
}

/* What GGUF cannot say is refused with a message: Qwen3.5 layers in another pattern than one full attention
 * every full_attention_interval layers, a Qwen3.5 mixture of experts without normalized top-k weights, RoPE
 * sections that are not whole numbers. */
static void check_qwen35_refusals(void) {
    check_refusal("qwen3_5-s", "layer_types",
                  "[\"full_attention\", \"linear_attention\", \"linear_attention\", \"full_attention\"]", "layer_types");
    check_refusal("qwen3_5moe-s", "norm_topk_prob", "false", "norm_topk_prob");
    check_refusal("qwen3_5-s", "rope_parameters",
                  "{\"mrope_interleaved\": true, \"mrope_section\": [2, \"one\", 1], \"partial_rotary_factor\": 0.25, "
                  "\"rope_theta\": 10000000.0, \"rope_type\": \"default\"}", "mrope_section");
}

/* ---- Qwen3.5 files with quantized weights ---- */

/* The RMS of a - b over the RMS of b: how far logits a are from logits b as a whole (a single max would
 * be ruled by the fixtures' outliers). */
static double rel_rms(const float *a, const float *b, size_t n) {
    double se = 0, sb = 0;
    for (size_t i = 0; i < n; i++) se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), sb += (double)b[i] * b[i];
    return sb > 0 ? sqrt(se / sb) : INFINITY;
}

/* SRC rewritten to DST under its metadata pairs as stored: each float tensor of 2 or more dims whose name
 * ends with `suffix` (NULL: every one but the MoE routers, which llama.cpp keeps in float) and whose rows
 * are whole blocks of `to` is quantized to `to`, or with `dequant` stored as F32 holding exactly the values
 * of that quantization (the same weights, unquantized); the others are copied as they are. Returns how
 * many were quantized, or -1. */
static int requant_file(const char *src, const char *dst, const char *suffix, ck_dtype to, int dequant) {
    ck_gguf_file f;
    char err[512];
    if (ck_gguf_open(src, &f, err, sizeof err) != 0) {
        CK_EXPECT(0, "%s", err);
        return -1;
    }
    const ck_dtype_traits *tr = ck_dtype_traits_of(to);
    ck_gguf_w w;
    ck_gguf_w_init(&w);
    ck_gguf_w_pairs_of(&w, &f.g);
    int n = 0;
    for (size_t i = 0; i < f.g.n_tensors; i++) {
        const ck_gguf_tensor *t = &f.g.tensors[i];
        const ck_dtype_traits *st = t->dtype >= 0 ? ck_dtype_traits_of((ck_dtype)t->dtype) : NULL;
        size_t len = strlen(t->name), sl = suffix ? strlen(suffix) : 0;
        int picked = suffix ? len >= sl && !strcmp(t->name + len - sl, suffix) : !strstr(t->name, "ffn_gate_inp");
        if (!picked || !st || st->block != 1 || t->n_dims < 2 || t->ne[0] % tr->block) {
            ck_gguf_w_tensor(&w, t->name, t->ggml_type, t->n_dims, t->ne, t->data, t->nbytes);
            continue;
        }
        size_t numel = (size_t)(t->nbytes / st->block_bytes), qbytes = numel / tr->block * tr->block_bytes;
        float *v = malloc(numel * sizeof *v);
        uint8_t *q = malloc(qbytes);
        st->to_f32(v, t->data, numel);
        tr->from_f32(q, v, numel);
        if (dequant) {
            tr->to_f32(v, q, numel);
            ck_gguf_w_tensor(&w, t->name, ck_gguf_ggml_type(CK_F32), t->n_dims, t->ne, v, numel * sizeof *v);
        } else {
            ck_gguf_w_tensor(&w, t->name, ck_gguf_ggml_type(to), t->n_dims, t->ne, q, qbytes);
        }
        free(v), free(q);
        n++;
    }
    int rc = ck_gguf_w_save(&w, dst, err, sizeof err);
    CK_EXPECT(rc == 0, "%s", err);
    ck_gguf_w_free(&w);
    ck_gguf_close(&f);
    return rc == 0 ? n : -1;
}

/* 1 when the config of the GGUF file at path says linear_out_proj_tiled, 0 when not, -1 when unreadable. */
static int says_tiled(const char *path) {
    ck_gguf_file f;
    char err[256], *json = NULL;
    if (ck_gguf_open(path, &f, err, sizeof err) != 0) return -1;
    int rc = -1;
    if (ck_gguf_config_json(&f.g, &json, err, sizeof err) == 0)
        rc = strstr(json, "\"linear_out_proj_tiled\":true") != NULL;
    free(json);
    ck_gguf_close(&f);
    return rc;
}

/* A float Qwen3.5 file quantized to `to` (ssm_out only, or every matrix): its config says
 * linear_out_proj_tiled exactly when `to`'s blocks split value heads of dv (else ssm_out moves into HF
 * order as before), it loads, its mean NLL stays within nll_tol of the float file's, and its logits within
 * twin_tol (rel_rms) of its dequantized twin's (the same weights as F32, whose ssm_out columns are put in
 * HF order at load; equality is out of reach, the quantized products round their activations to 8 bits).
 * Measured: 0.01 to 0.07 with ssm_out quantized, up to 0.13 with every matrix (0.29 on the MoE fixture,
 * whose expert choices flip), and 1 to 1.2 when out_proj reads its input in another value-head order
 * than the twin's. */
static void check_qwen35_requant(const char *label, const char *src, const run *ref, const int32_t *all, size_t T,
                                 const int32_t *ppl, size_t n_ppl, size_t dv, ck_dtype to, double nll_tol,
                                 double twin_tol) {
    static const struct { const char *suffix, *what; } sel[] = {{".ssm_out.weight", "ssm_out"}, {NULL, "every matrix"}};
    for (size_t c = 0; c < sizeof sel / sizeof sel[0]; c++) {
        char pq[1024], pd[1024];
        snprintf(pq, sizeof pq, "%s/%s-%s-%s.gguf", out_dir, label, ck_dtype_name(to), c ? "all" : "ssm_out");
        snprintf(pd, sizeof pd, "%s/%s-%s-%s-dequant.gguf", out_dir, label, ck_dtype_name(to), c ? "all" : "ssm_out");
        int nq = requant_file(src, pq, sel[c].suffix, to, 0), nd = requant_file(src, pd, sel[c].suffix, to, 1);
        CK_EXPECT(nq > 0 && nq == nd, "%s %s %s: %d / %d tensors quantized", label, ck_dtype_name(to), sel[c].what, nq,
                  nd);
        int want = dv % ck_dtype_traits_of(to)->block != 0, got = says_tiled(pq);
        CK_EXPECT(got == want && says_tiled(pd) == 0, "%s %s %s: linear_out_proj_tiled %d (want %d), twin %d", label,
                  ck_dtype_name(to), sel[c].what, got, want, says_tiled(pd));
        run q, d;
        if (nq <= 0 || run_model(pq, all, T, ppl, n_ppl, &q) != 0) continue;
        if (run_model(pd, all, T, ppl, n_ppl, &d) == 0) {
            double dn = fabs(q.nll - ref->nll), dt = rel_rms(q.logits, d.logits, T * q.V);
            printf("%s, %s %s (%d tensors): |NLL diff| %.3g (mean NLL %.6f, float %.6f), relative RMS logit "
                   "distance to the dequantized twin %.3g\n", label, sel[c].what, ck_dtype_name(to), nq, dn, q.nll,
                   ref->nll, dt);
            CK_EXPECT(dn <= nll_tol, "%s %s %s: |NLL diff| %.3g over %.3g", label, sel[c].what, ck_dtype_name(to), dn,
                      nll_tol);
            CK_EXPECT(dt <= twin_tol, "%s %s %s: %.3g from its dequantized twin, over %.3g", label, sel[c].what,
                      ck_dtype_name(to), dt, twin_tol);
            free(d.logits);
        }
        free(q.logits);
    }
}

/* llama.cpp's Qwen3.5 fixtures (value heads of 16 dims, rows of 64) with Q8_0 weights: ssm_out's head
 * columns are half a block, so they cannot be put in HF order; the model reads its input in the file's
 * order instead. */
static void check_llama_file_q8(const char *name, double nll_tol, double twin_tol) {
    char src[1024], cfg_path[1024];
    fixture f;
    run bf;
    snprintf(src, sizeof src, "%s/gguf-llama/%s-bf16.gguf", CK_TEST_DATA, name);
    if (fixture_open(&f, name) == 0 && run_model(src, f.all, f.T, f.ppl, f.n_ppl, &bf) == 0) {
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", f.dir);
        cJSON *cfg = ck_test_json(cfg_path);
        size_t dv = (size_t)cJSON_GetNumberValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "text_config"), "linear_value_head_dim"));
        cJSON_Delete(cfg);
        check_qwen35_requant(name, src, &bf, f.all, f.T, f.ppl, f.n_ppl, dv, CK_Q8_0, nll_tol, twin_tol);
        free(bf.logits);
    }
    fixture_close(&f);
}

/* Gemma 3's layer pattern as llama.cpp reads it: no sliding_window_pattern key means a period of 6 (layer
 * i is global when i % 6 == 5), a period of 0 every layer sliding; the attention scale is 1/sqrt(head_dim)
 * except for the 62-layer 27B (1/sqrt(hidden / heads)). */
static void check_gemma3_config(void) {
    struct { int64_t layers, period; const char *want; double scalar; } cs[] = {
        {8, -1, "sssssfss", 32}, {4, 0, "ssss", 32}, {5, 2, "sfsfs", 32}, {62, 6, "sssssf", 168},
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        ck_gguf_w w;
        ck_gguf_w_init(&w);
        ck_gguf_w_str(&w, "general.architecture", "gemma3");
        ck_gguf_w_u32(&w, "gemma3.block_count", (uint32_t)cs[c].layers);
        ck_gguf_w_u32(&w, "gemma3.embedding_length", cs[c].layers == 62 ? 5376 : 64);
        ck_gguf_w_u32(&w, "gemma3.feed_forward_length", 128);
        ck_gguf_w_u32(&w, "gemma3.attention.head_count", cs[c].layers == 62 ? 32 : 4);
        ck_gguf_w_u32(&w, "gemma3.attention.key_length", cs[c].layers == 62 ? 128 : 32);
        ck_gguf_w_f32(&w, "gemma3.attention.layer_norm_rms_epsilon", 1e-6f);
        ck_gguf_w_u32(&w, "gemma3.attention.sliding_window", 512);
        ck_gguf_w_f32(&w, "gemma3.rope.freq_base", 1e6f);
        if (cs[c].period >= 0) ck_gguf_w_u32(&w, "gemma3.attention.sliding_window_pattern", (uint32_t)cs[c].period);
        uint8_t *img = NULL;
        size_t len = 0;
        ck_gguf g;
        char err[256], *json = NULL, got[80] = "";
        if (ck_gguf_w_image(&w, &img, &len) == 0 && ck_gguf_parse(img, len, &g, err, sizeof err) == 0) {
            CK_EXPECT(ck_gguf_config_json(&g, &json, err, sizeof err) == 0, "gemma3 config %zu: %s", c, err);
            cJSON *cfg = json ? cJSON_Parse(json) : NULL, *lt = cJSON_GetObjectItem(cfg, "layer_types");
            for (int i = 0; i < cJSON_GetArraySize(lt) && i < (int)strlen(cs[c].want); i++)
                got[i] = cJSON_GetArrayItem(lt, i)->valuestring[0];
            CK_EXPECT(!strcmp(got, cs[c].want) || (cs[c].layers == 62 && !strncmp(got, cs[c].want, 6)),
                      "gemma3 config %zu: layer types %s, want %s", c, got, cs[c].want);
            double sc = cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "query_pre_attn_scalar"));
            CK_EXPECT(sc == cs[c].scalar, "gemma3 config %zu: query_pre_attn_scalar %g, want %g", c, sc, cs[c].scalar);
            double swa = cJSON_GetNumberValue(cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "rope_parameters"), "sliding_attention"), "rope_theta"));
            CK_EXPECT(swa == 10000.0, "gemma3 config %zu: sliding RoPE base %g (default 10000)", c, swa);
            cJSON_Delete(cfg);
            free(json);
            ck_gguf_free(&g);
        } else {
            CK_EXPECT(0, "gemma3 config %zu: image / parse", c);
        }
        free(img);
        ck_gguf_w_free(&w);
    }
}

/* The qwen35 layout undone at load, on a file written here (2 key heads, 4 value heads of 2 dims, so HF
 * value head k * 2 + j is GGUF head j * 2 + k): the rows of in_proj_a come back in HF order, A_log =
 * log(-A), a (1 + w) norm minus 1; and the broken forms get errors naming the tensor: rows that do not
 * hold the value heads, an A that is not negative, a norm that is not F32. */
static void check_qwen35_layout(void) {
    struct { int kind; const char *want; } cs[] = {{0, NULL}, {1, "value heads"}, {2, "must be negative"}, {3, "expected F32"}};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        ck_gguf_w w;
        ck_gguf_w_init(&w);
        ck_gguf_w_str(&w, "general.architecture", "qwen35");
        ck_gguf_w_u32(&w, "qwen35.ssm.group_count", 2);
        ck_gguf_w_u32(&w, "qwen35.ssm.time_step_rank", 4);
        ck_gguf_w_u32(&w, "qwen35.ssm.state_size", 2);
        ck_gguf_w_u32(&w, "qwen35.ssm.inner_size", 8);
        float alpha[4] = {10, 11, 12, 13}, a[4] = {-1, -2, -4, cs[c].kind == 2 ? 0.5f : -8}, norm[2] = {1.5f, 0.25f};
        uint64_t ne_alpha[2] = {1, 4}, ne_a[1] = {4}, ne_norm[1] = {2}, ne_z[2] = {1, cs[c].kind == 1 ? 6 : 8};
        float z[8] = {0};
        uint16_t norm_bf16[2] = {0x3fc0, 0x3e80};
        ck_gguf_w_tensor(&w, "blk.0.ssm_alpha.weight", 0, 2, ne_alpha, alpha, sizeof alpha);
        ck_gguf_w_tensor(&w, "blk.0.ssm_a", 0, 1, ne_a, a, sizeof a);
        ck_gguf_w_tensor(&w, "blk.0.attn_gate.weight", 0, 2, ne_z, z, cs[c].kind == 1 ? 6 * sizeof(float) : sizeof z);
        if (cs[c].kind == 3) ck_gguf_w_tensor(&w, "blk.0.attn_norm.weight", 30, 1, ne_norm, norm_bf16, sizeof norm_bf16);
        else ck_gguf_w_tensor(&w, "blk.0.attn_norm.weight", 0, 1, ne_norm, norm, sizeof norm);
        char path[1024], err[256] = "";
        snprintf(path, sizeof path, "%s/qwen35-layout-%zu.gguf", out_dir, c);
        ck_gguf_weights gw;
        ck_tensor t;
        if (ck_gguf_w_save(&w, path, err, sizeof err) != 0 || ck_gguf_weights_open(path, &gw, err, sizeof err) != 0) {
            CK_EXPECT(0, "qwen35 layout %zu: %s", c, err);
            ck_gguf_w_free(&w);
            continue;
        }
        const char *names[] = {"model.layers.0.linear_attn.in_proj_a.weight", "model.layers.0.linear_attn.A_log",
                               "model.layers.0.linear_attn.in_proj_z.weight", "model.layers.0.input_layernorm.weight"};
        int rc[4];
        const float *v[4];
        for (int i = 0; i < 4; i++) {
            rc[i] = ck_gguf_weights_find(&gw, names[i], &t, err, sizeof err);
            v[i] = rc[i] == 1 ? (const float *)t.data : NULL;
            if (cs[c].want && rc[i] < 0)
                CK_EXPECT(strstr(err, cs[c].want), "qwen35 layout %zu: '%s' (want '%s')", c, err, cs[c].want);
        }
        if (cs[c].kind == 0) {
            CK_EXPECT(rc[0] == 1 && v[0][0] == 10 && v[0][1] == 12 && v[0][2] == 11 && v[0][3] == 13,
                      "in_proj_a rows in HF order: %g %g %g %g (want 10 12 11 13)", v[0] ? v[0][0] : -1,
                      v[0] ? v[0][1] : -1, v[0] ? v[0][2] : -1, v[0] ? v[0][3] : -1);
            CK_EXPECT(rc[1] == 1 && v[1][0] == 0.0f && fabsf(v[1][1] - logf(4)) < 1e-6f && fabsf(v[1][2] - logf(2)) < 1e-6f &&
                          fabsf(v[1][3] - logf(8)) < 1e-6f, "A_log = log(-A) in HF order");
            CK_EXPECT(rc[3] == 1 && v[3][0] == 0.5f && v[3][1] == -0.75f, "norm stored as 1 + w comes back as w");
        } else {
            int failed = 0;
            for (int i = 0; i < 4; i++) failed += rc[i] < 0;
            CK_EXPECT(failed == 1, "qwen35 layout %zu: %d tensors refused (want 1)", c, failed);
        }
        ck_gguf_weights_close(&gw);
        ck_gguf_w_free(&w);
    }
}

/* Metadata the new architectures need, missing or inconsistent, and numbers that are not finite or not
 * numbers: a clear error naming it, no crash, never a default in its place. */
static void check_broken_configs(void) {
    struct { const char *arch, *key, *want; int kind; } cs[] = {
        /* kind 0: drop the ssm keys; 1: inner_size not a multiple; 2: window without its pattern;
         * 3: a pattern of the wrong length; 4: a pattern that is a string; 5: LongRoPE factors;
         * 6: rope.freq_base NaN; 7: the norm epsilon infinite; 8: rope.freq_base_swa -inf;
         * 9: rope.freq_base a string; 10: feed_forward_length 0; 11: head_count 0; 12: head_count_kv 3;
         * 13: rope.dimension_count 0; 14: rope.dimension_count past the head; 15: a tensor of block 4 */
        {"qwen35", NULL, "ssm.conv_kernel", 0},
        {"qwen35", NULL, "multiple of time_step_rank", 1},
        {"exaone4", NULL, "sliding_window_pattern", 2},
        {"exaone4", NULL, "one value per layer", 3},
        {"gemma3", NULL, "one value per layer (4) or a period", 4},
        {"phi3", NULL, "LongRoPE", 5},
        {"qwen3", NULL, "GGUF: qwen3.rope.freq_base is nan, not a finite number", 6},
        {"llama", NULL, "GGUF: llama.attention.layer_norm_rms_epsilon is inf, not a finite number", 7},
        {"gemma3", NULL, "GGUF: gemma3.rope.freq_base_swa is -inf, not a finite number", 8},
        {"qwen3", NULL, "GGUF: qwen3.rope.freq_base must be a number", 9},
        {"qwen3", NULL, "GGUF: qwen3.feed_forward_length must be positive (got 0)", 10},
        {"qwen3", NULL, "GGUF: qwen3.attention.head_count = 0 is out of range", 11},
        {"qwen3", NULL, "GGUF: qwen3.attention.head_count 4 is not a multiple of .head_count_kv 3", 12},
        {"qwen3", NULL, "GGUF: qwen3.rope.dimension_count = 0: not an even count of 1 to 16 dims", 13},
        {"llama", NULL, "GGUF: llama.rope.dimension_count = 100: not an even count of 1 to 16 dims", 14},
        {"qwen3", NULL, "GGUF: tensor 'blk.4.attn_norm.weight' is of block 4 but qwen3.block_count = 4", 15},
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        const char *a = cs[c].arch;
        char key[128];
        ck_gguf_w w;
        ck_gguf_w_init(&w);
        ck_gguf_w_str(&w, "general.architecture", a);
#define KEY(s) (snprintf(key, sizeof key, "%s.%s", a, s), key)
        ck_gguf_w_u32(&w, KEY("block_count"), 4);
        ck_gguf_w_u32(&w, KEY("embedding_length"), 64);
        ck_gguf_w_u32(&w, KEY("feed_forward_length"), cs[c].kind == 10 ? 0 : 128);
        ck_gguf_w_u32(&w, KEY("attention.head_count"), cs[c].kind == 11 ? 0 : 4);
        if (cs[c].kind == 12) ck_gguf_w_u32(&w, KEY("attention.head_count_kv"), 3);
        if (cs[c].kind == 13 || cs[c].kind == 14) ck_gguf_w_u32(&w, KEY("rope.dimension_count"), cs[c].kind == 13 ? 0 : 100);
        ck_gguf_w_u32(&w, KEY("attention.key_length"), 16);
        ck_gguf_w_f32(&w, KEY("attention.layer_norm_rms_epsilon"), cs[c].kind == 7 ? INFINITY : 1e-6f);
        if (cs[c].kind == 6) ck_gguf_w_f32(&w, KEY("rope.freq_base"), NAN);
        if (cs[c].kind == 8) ck_gguf_w_f32(&w, KEY("rope.freq_base_swa"), -INFINITY);
        if (cs[c].kind == 9) ck_gguf_w_str(&w, KEY("rope.freq_base"), "1e6");
        if (cs[c].kind == 1) {
            ck_gguf_w_u32(&w, KEY("ssm.conv_kernel"), 4);
            ck_gguf_w_u32(&w, KEY("ssm.state_size"), 16);
            ck_gguf_w_u32(&w, KEY("ssm.group_count"), 2);
            ck_gguf_w_u32(&w, KEY("ssm.time_step_rank"), 4);
            ck_gguf_w_u32(&w, KEY("ssm.inner_size"), 62);
        }
        if (cs[c].kind >= 2 && cs[c].kind <= 4) ck_gguf_w_u32(&w, KEY("attention.sliding_window"), 8);
        if (cs[c].kind == 3) {
            int32_t pat[3] = {1, 1, 0};
            ck_gguf_w_arr_i32(&w, KEY("attention.sliding_window_pattern"), pat, 3);
        }
        if (cs[c].kind == 4) ck_gguf_w_str(&w, KEY("attention.sliding_window_pattern"), "six");
        if (cs[c].kind == 5 || cs[c].kind == 15) {
            float f[4] = {1, 1, 1, 1};
            uint64_t ne[1] = {4};
            ck_gguf_w_tensor(&w, cs[c].kind == 5 ? "rope_factors_long.weight" : "blk.4.attn_norm.weight", 0, 1, ne, f,
                             sizeof f);
        }
#undef KEY
        uint8_t *img = NULL;
        size_t len = 0;
        ck_gguf g;
        char err[256] = "", *json = NULL;
        if (ck_gguf_w_image(&w, &img, &len) == 0 && ck_gguf_parse(img, len, &g, err, sizeof err) == 0) {
            int rc = ck_gguf_config_json(&g, &json, err, sizeof err);
            CK_EXPECT(rc != 0 && strstr(err, cs[c].want), "broken %s config %zu: rc %d, '%s' (want '%s')", a, c, rc, err,
                      cs[c].want);
            free(json);
            ck_gguf_free(&g);
        } else {
            CK_EXPECT(0, "broken config %zu: image / parse: %s", c, err);
        }
        free(img);
        ck_gguf_w_free(&w);
    }
}

/* ---- a wider random model, for the K-quants (rows of 256 and 512) ---- */

#define W_D 256
#define W_F 512
#define W_V 512
#define W_HEADS 4
#define W_KV 2
#define W_HD 64
#define W_LAYERS 2

static uint32_t wrng;
static uint32_t wnext(void) { return wrng = wrng * 1664525u + 1013904223u; }
static float wrand(float a) { return a * ((float)(wnext() >> 8) / 8388608.0f - 1.0f); }

/* n random token ids below vocab, from seed. */
static void wide_ids(int32_t *ids, size_t n, uint32_t seed, uint32_t vocab) {
    wrng = seed;
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)((wnext() >> 8) % vocab);
}

/* Saves the file being written to path and frees it; 0 or -1 (a test failure). */
static int save_wide(ck_gguf_w *w, const char *path) {
    char err[512];
    int rc = ck_gguf_w_save(w, path, err, sizeof err);
    CK_EXPECT(rc == 0, "%s: %s", path, err);
    ck_gguf_w_free(w);
    return rc;
}

/* A tensor of rows x cols random values in [-a, a] (or 1 + that for norms), stored as type t. */
static void wide_tensor(ck_gguf_w *w, const char *name, size_t rows, size_t cols, float a, int norm, ck_dtype t) {
    float *f = malloc(rows * cols * sizeof *f);
    for (size_t i = 0; i < rows * cols; i++) f[i] = (norm ? 1.0f : 0.0f) + wrand(a);
    ck_dtype ty = rows == 1 ? CK_F32 : t;
    const ck_dtype_traits *tr = ck_dtype_traits_of(ty);
    size_t rb = cols / tr->block * tr->block_bytes;
    uint8_t *q = malloc(rows * rb);
    for (size_t r = 0; r < rows; r++) tr->from_f32(q + r * rb, f + r * cols, cols);
    uint64_t ne[2] = {cols, rows};
    ck_gguf_w_tensor(w, name, ck_gguf_ggml_type(ty), rows == 1 ? 1 : 2, ne, q, rows * rb);
    free(f), free(q);
}

static int write_wide_model(const char *path, ck_dtype t) {
    ck_gguf_w w;
    char name[64];
    ck_gguf_w_init(&w);
    ck_gguf_w_str(&w, "general.architecture", "qwen3");
    ck_gguf_w_u32(&w, "qwen3.block_count", W_LAYERS);
    ck_gguf_w_u32(&w, "qwen3.embedding_length", W_D);
    ck_gguf_w_u32(&w, "qwen3.feed_forward_length", W_F);
    ck_gguf_w_u32(&w, "qwen3.attention.head_count", W_HEADS);
    ck_gguf_w_u32(&w, "qwen3.attention.head_count_kv", W_KV);
    ck_gguf_w_u32(&w, "qwen3.attention.key_length", W_HD);
    ck_gguf_w_u32(&w, "qwen3.context_length", 1024);
    ck_gguf_w_f32(&w, "qwen3.attention.layer_norm_rms_epsilon", 1e-6f);
    ck_gguf_w_f32(&w, "qwen3.rope.freq_base", 1e6f);
    wrng = 99;
    wide_tensor(&w, "token_embd.weight", W_V, W_D, 1.0f, 0, t);
    wide_tensor(&w, "output_norm.weight", 1, W_D, 0.1f, 1, t);
    wide_tensor(&w, "output.weight", W_V, W_D, 0.2f, 0, t);
    static const struct { const char *n; size_t rows, cols; int norm; } lt[] = {
        {"attn_norm.weight", 1, W_D, 1}, {"attn_q.weight", W_HEADS * W_HD, W_D, 0},
        {"attn_k.weight", W_KV * W_HD, W_D, 0}, {"attn_v.weight", W_KV * W_HD, W_D, 0},
        {"attn_output.weight", W_D, W_HEADS * W_HD, 0}, {"attn_q_norm.weight", 1, W_HD, 1},
        {"attn_k_norm.weight", 1, W_HD, 1}, {"ffn_norm.weight", 1, W_D, 1}, {"ffn_gate.weight", W_F, W_D, 0},
        {"ffn_up.weight", W_F, W_D, 0}, {"ffn_down.weight", W_D, W_F, 0},
    };
    for (int l = 0; l < W_LAYERS; l++)
        for (size_t i = 0; i < sizeof lt / sizeof lt[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s", l, lt[i].n);
            wide_tensor(&w, name, lt[i].rows, lt[i].cols, lt[i].norm ? 0.1f : 0.12f, lt[i].norm, t);
        }
    return save_wide(&w, path);
}

static void check_wide(void) {
    /* bounds on the mean NLL's distance and on the logits' relative RMS distance to the float model (the
       K-quants' scale fits keep Q4_K at 0.194 and Q6_K at 0.053; scales from the range alone give 0.216 and
       0.058) */
    static const struct { ck_dtype t; double nll_tol, logit_tol; } types[] = {
        {CK_F32, 0, 0},          {CK_Q8_0, 0.01, 0.03}, {CK_Q6_K, 0.01, 0.056},
        {CK_Q5_K, 0.03, 0.115}, {CK_Q4_K, 0.08, 0.205}, {CK_Q4_0, 0.1, 0.25},
    };
    size_t n = 200;
    int32_t ids[200];
    wide_ids(ids, n, 7, W_V);
    run base = {0};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/wide-%s.gguf", out_dir, ck_dtype_name(types[i].t));
        run r;
        if (write_wide_model(path, types[i].t) != 0 || run_model(path, ids, 16, ids, n, &r) != 0) continue;
        if (i == 0) {
            base = r;
            printf("wide F32: mean NLL %.6f\n", r.nll);
            continue;
        }
        if (!base.logits) { /* the float model did not run (its failure is counted): nothing to compare with */
            free(r.logits);
            continue;
        }
        double d = fabs(r.nll - base.nll), dl = rel_rms(r.logits, base.logits, 16 * r.V);
        printf("wide %s: |NLL diff| %.3g (mean NLL %.6f, float %.6f), relative RMS logit distance to the float "
               "model %.4f\n", ck_dtype_name(types[i].t), d, r.nll, base.nll, dl);
        CK_EXPECT(d <= types[i].nll_tol, "wide %s: |NLL diff| %.3g over %.3g", ck_dtype_name(types[i].t), d,
                  types[i].nll_tol);
        CK_EXPECT(dl <= types[i].logit_tol, "wide %s: relative RMS logit distance %.4f over %.3g", ck_dtype_name(types[i].t),
                  dl, types[i].logit_tol);
        free(r.logits);
    }
    free(base.logits);
}

/* A random F32 qwen35 file shaped like Qwen3.5's DeltaNet (value heads of 128 dims, so a K-quant block
 * of ssm_out's row holds two of them): 2 DeltaNet layers of 2 key heads and 4 value heads. */
#define Q35_D 256
#define Q35_NK 2
#define Q35_NV 4
#define Q35_DK 64
#define Q35_DV 128
#define Q35_F 512
#define Q35_V 512

static int write_wide_qwen35(const char *path) {
    ck_gguf_w w;
    char name[64];
    ck_gguf_w_init(&w);
    ck_gguf_w_str(&w, "general.architecture", "qwen35");
    static const struct { const char *k; uint32_t v; } keys[] = {
        {"qwen35.block_count", 2}, {"qwen35.embedding_length", Q35_D}, {"qwen35.feed_forward_length", Q35_F},
        {"qwen35.attention.head_count", 4}, {"qwen35.attention.head_count_kv", 2}, {"qwen35.attention.key_length", 64},
        {"qwen35.context_length", 1024}, {"qwen35.ssm.conv_kernel", 4}, {"qwen35.ssm.state_size", Q35_DK},
        {"qwen35.ssm.group_count", Q35_NK}, {"qwen35.ssm.time_step_rank", Q35_NV},
        {"qwen35.ssm.inner_size", Q35_NV * Q35_DV}, {"qwen35.full_attention_interval", 4},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) ck_gguf_w_u32(&w, keys[i].k, keys[i].v);
    ck_gguf_w_f32(&w, "qwen35.attention.layer_norm_rms_epsilon", 1e-6f);
    ck_gguf_w_f32(&w, "qwen35.rope.freq_base", 1e7f);
    wrng = 35;
    wide_tensor(&w, "token_embd.weight", Q35_V, Q35_D, 1.0f, 0, CK_F32);
    wide_tensor(&w, "output_norm.weight", 1, Q35_D, 0.1f, 1, CK_F32);
    wide_tensor(&w, "output.weight", Q35_V, Q35_D, 0.1f, 0, CK_F32);
    size_t vd = Q35_NV * Q35_DV, cd = 2 * Q35_NK * Q35_DK + vd;
    static const struct { const char *n; int rows, cols; float a; int norm; } lt[] = {
        {"attn_norm.weight", 1, Q35_D, 0.1f, 1}, {"post_attention_norm.weight", 1, Q35_D, 0.1f, 1},
        {"attn_qkv.weight", -1, Q35_D, 0.12f, 0}, {"attn_gate.weight", -2, Q35_D, 0.12f, 0},
        {"ssm_alpha.weight", Q35_NV, Q35_D, 0.1f, 0}, {"ssm_beta.weight", Q35_NV, Q35_D, 0.1f, 0},
        {"ssm_conv1d.weight", -1, 4, 0.5f, 0}, {"ssm_dt.bias", 1, Q35_NV, 0.5f, 0},
        {"ssm_norm.weight", 1, Q35_DV, 0.1f, 1}, {"ssm_out.weight", Q35_D, -2, 0.08f, 0},
        {"ffn_gate.weight", Q35_F, Q35_D, 0.12f, 0}, {"ffn_up.weight", Q35_F, Q35_D, 0.12f, 0},
        {"ffn_down.weight", Q35_D, Q35_F, 0.08f, 0},
    };
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; i < sizeof lt / sizeof lt[0]; i++) { /* -1: the conv channels, -2: the value dims */
            size_t rows = lt[i].rows == -1 ? cd : lt[i].rows == -2 ? vd : (size_t)lt[i].rows;
            size_t cols = lt[i].cols == -2 ? vd : (size_t)lt[i].cols;
            snprintf(name, sizeof name, "blk.%d.%s", l, lt[i].n);
            wide_tensor(&w, name, rows, cols, lt[i].a, lt[i].norm, CK_F32);
        }
        float a[Q35_NV]; /* A = -exp(A_log) < 0 */
        for (int h = 0; h < Q35_NV; h++) a[h] = -(1.0f + wrand(0.9f));
        uint64_t ne[1] = {Q35_NV};
        snprintf(name, sizeof name, "blk.%d.ssm_a", l);
        ck_gguf_w_tensor(&w, name, ck_gguf_ggml_type(CK_F32), 1, ne, a, sizeof a);
    }
    return save_wide(&w, path);
}

/* The K-quants where Qwen3.5 meets them: ssm_out rows of 512 whose 256-value blocks span two value
 * heads (and Q8_0, whose blocks do not, as before). */
static void check_wide_qwen35(void) {
    static const struct { ck_dtype t; double nll_tol; } types[] = {
        {CK_Q8_0, 0.01}, {CK_Q6_K, 0.01}, {CK_Q5_K, 0.03}, {CK_Q4_K, 0.08},
    };
    char path[1024];
    int32_t ids[200];
    size_t n = sizeof ids / sizeof ids[0];
    wide_ids(ids, n, 11, Q35_V);
    snprintf(path, sizeof path, "%s/wide-qwen35-F32.gguf", out_dir);
    run base;
    if (write_wide_qwen35(path) != 0 || run_model(path, ids, 16, ids, n, &base) != 0) return;
    printf("wide qwen35 F32: mean NLL %.6f\n", base.nll);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        check_qwen35_requant("wide-qwen35", path, &base, ids, 16, ids, n, Q35_DV, types[i].t, types[i].nll_tol, 0.1);
    free(base.logits);
}

/* DIR/bias.safetensors: the header hdr (JSON) and the n floats of b. */
static void write_bias_shard(const char *dir, const char *hdr, const float *b, size_t n) {
    char path[1024];
    uint64_t hl = (strlen(hdr) + 7) / 8 * 8;
    snprintf(path, sizeof path, "%s/bias.safetensors", dir);
    FILE *f = fopen(path, "wb");
    CK_EXPECT(f != NULL, "cannot write %s", path);
    if (!f) return;
    fwrite(&hl, 8, 1, f), fputs(hdr, f);
    for (size_t i = strlen(hdr); i < hl; i++) fputc(' ', f);
    fwrite(b, sizeof *b, n, f);
    fclose(f);
}

/* A Llama checkpoint with attention_bias (HF: biases on q, k, v and o): llama3-s with random biases added
 * in a second shard (through an index). The biases change the logits; the GGUF conversion gives the logits of
 * the safetensors model, its q and k biases stored permuted as their weights' rows are (for interleaved
 * RoPE) and o's as attn_output.bias, so a bias left in HF's order, or dropped, shows; o's biases count
 * (zeroing them moves the logits), and a missing one is an error that names it. */
static void check_llama_bias(void) {
    char dir[900], path[1024], src[1024], err[512];
    snprintf(dir, sizeof dir, "%s/llama3-s-bias", out_dir);
    mkdir(dir, 0755);
    snprintf(src, sizeof src, "%s/llama3-s/config.json", CK_TEST_DATA);
    cJSON *cfg = ck_test_json(src);
    cJSON_ReplaceItemInObject(cfg, "attention_bias", cJSON_CreateTrue());
    size_t L = (size_t)cJSON_GetObjectItem(cfg, "num_hidden_layers")->valuedouble,
           H = (size_t)cJSON_GetObjectItem(cfg, "num_attention_heads")->valuedouble,
           KV = (size_t)cJSON_GetObjectItem(cfg, "num_key_value_heads")->valuedouble,
           hd = (size_t)cJSON_GetObjectItem(cfg, "head_dim")->valuedouble,
           D = (size_t)cJSON_GetObjectItem(cfg, "hidden_size")->valuedouble;
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_json(path, cfg);
    cJSON_Delete(cfg);
    /* the fixture's tensors from base.safetensors, the biases from bias.safetensors */
    snprintf(src, sizeof src, "%s/llama3-s", CK_TEST_DATA);
    ck_weights w;
    if (ck_weights_open(src, &w, err, sizeof err) != 0) {
        CK_EXPECT(0, "llama3-s: %s", err);
        return;
    }
    cJSON *ix = cJSON_CreateObject(), *map = cJSON_AddObjectToObject(ix, "weight_map");
    for (size_t i = 0; i < w.index.n; i++) cJSON_AddStringToObject(map, w.index.refs[i].name, "base.safetensors");
    ck_weights_close(&w);
    const char *proj[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    size_t len[4] = {H * hd, KV * hd, KV * hd, D}, total = 0;
    cJSON *hdr = cJSON_CreateObject();
    for (size_t l = 0; l < L; l++)
        for (int k = 0; k < 4; k++) {
            char name[128];
            snprintf(name, sizeof name, "model.layers.%zu.self_attn.%s.bias", l, proj[k]);
            cJSON_AddStringToObject(map, name, "bias.safetensors");
            cJSON *e = cJSON_AddObjectToObject(hdr, name);
            cJSON_AddStringToObject(e, "dtype", "F32");
            cJSON *shape = cJSON_AddArrayToObject(e, "shape"), *off = cJSON_AddArrayToObject(e, "data_offsets");
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)len[k]));
            cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(total * 4)));
            total += len[k];
            cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(total * 4)));
        }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_json(path, ix);
    snprintf(src, sizeof src, "%s/llama3-s/model.safetensors", CK_TEST_DATA);
    snprintf(path, sizeof path, "%s/base.safetensors", dir);
    unlink(path);
    CK_EXPECT(symlink(src, path) == 0, "symlink %s", path);
    float *bias = malloc(total * sizeof *bias);
    wrng = 2024;
    for (size_t i = 0; i < total; i++) bias[i] = wrand(0.5f);
    char *htxt = cJSON_PrintUnformatted(hdr);
    cJSON_Delete(hdr);
    write_bias_shard(dir, htxt, bias, total);
    /* the safetensors model with its biases, against the fixture without them and against its GGUF */
    fixture fx;
    run rb, rg;
    if (fixture_open(&fx, "llama3-s") == 0 && run_model(dir, fx.all, fx.T, fx.ppl, fx.n_ppl, &rb) == 0) {
        size_t n = fx.T * fx.base.V;
        double moved = max_diff(rb.logits, fx.base.logits, n);
        CK_EXPECT(moved > 1e-2, "llama3-s with biases: logits moved by %.3g only", moved);
        float *no_o = malloc(total * sizeof *no_o); /* the same without o's biases: o's must count too */
        memcpy(no_o, bias, total * sizeof *no_o);
        size_t per = H * hd + 2 * KV * hd + D; /* a layer's biases: q, k, v, o */
        for (size_t l = 0; l < L; l++) memset(no_o + l * per + per - D, 0, D * sizeof *no_o);
        write_bias_shard(dir, htxt, no_o, total);
        run r0;
        if (run_model(dir, fx.all, fx.T, fx.ppl, fx.n_ppl, &r0) == 0) {
            double by_o = max_diff(rb.logits, r0.logits, n);
            CK_EXPECT(by_o > 1e-2, "llama3-s with biases: o_proj's biases moved the logits by %.3g only", by_o);
            free(r0.logits);
        }
        write_bias_shard(dir, htxt, bias, total);
        free(no_o);
        snprintf(path, sizeof path, "%s.gguf", dir);
        if (ck_gguf_convert(dir, path, CK_BF16, err, sizeof err) != 0) {
            CK_EXPECT(0, "llama3-s with biases: convert: %s", err);
        } else {
            ck_gguf_file g;
            if (ck_gguf_open(path, &g, err, sizeof err) == 0) { /* layer 1's q bias (its biases follow layer 0's) */
                const ck_gguf_tensor *tq = ck_gguf_tensor_named(&g.g, "blk.1.attn_q.bias"),
                                     *to = ck_gguf_tensor_named(&g.g, "blk.1.attn_output.bias");
                const float *hq = bias + (H * hd + 2 * KV * hd + D); /* layer 1's q, k, v, o */
                size_t bad = tq && to && tq->ggml_type == 0 && to->ggml_type == 0 ? 0 : 1; /* (F32) */
                for (size_t h = 0; !bad && h < H; h++)
                    for (size_t j = 0; j < hd / 2; j++)
                        for (size_t half = 0; half < 2; half++)
                            bad += ((const float *)tq->data)[h * hd + 2 * j + half] != hq[h * hd + half * (hd / 2) + j];
                const float *ho = hq + H * hd + 2 * KV * hd;
                for (size_t i = 0; tq && to && i < D; i++) bad += ((const float *)to->data)[i] != ho[i];
                CK_EXPECT(bad == 0, "llama3-s with biases: blk.1.attn_q.bias / attn_output.bias not as GGUF stores "
                          "them (%zu values)", bad);
                ck_gguf_close(&g);
            } else CK_EXPECT(0, "open %s: %s", path, err);
            if (run_model(path, fx.all, fx.T, fx.ppl, fx.n_ppl, &rg) == 0) {
                double d = max_diff(rg.logits, rb.logits, n);
                printf("llama3-s with q/k/v/o biases: logits moved %.3g by them; BF16 GGUF: max |logit diff| %.3g\n",
                       moved, d);
                CK_EXPECT(d <= LOSSLESS_TOL, "llama3-s with biases, GGUF: %.3g over %.3g", d, LOSSLESS_TOL);
                free(rg.logits);
            }
        }
        free(rb.logits);
    }
    fixture_close(&fx);
    /* a checkpoint that says attention_bias but lacks one of o's biases is refused, naming it */
    cJSON_DeleteItemFromObject(map, "model.layers.2.self_attn.o_proj.bias");
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_json(path, ix);
    ck_engine *e = NULL;
    err[0] = 0;
    int rc = ck_engine_open(dir, NULL, &e, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, "model.layers.2.self_attn.o_proj.bias"),
              "llama3-s with attention_bias, an o_proj bias missing: rc %d, '%s'", rc, err);
    if (rc == 0) ck_engine_close(e);
    cJSON_Delete(ix);
    free(bias), free(htxt);
}

/* A model whose embedding is in a ggml type we do not compute with, and one with an unknown
 * architecture: clear errors naming the type / architecture. */
static void check_unsupported(void) {
    static const struct { const char *arch; uint32_t type; const char *want; } cases[] = {
        {"qwen3", 3, "Q4_1"}, {"gpt-neox", 0, "not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_gguf_w w;
        char path[1024], err[512] = "", key[64];
        ck_gguf_w_init(&w);
        ck_gguf_w_str(&w, "general.architecture", cases[i].arch);
        static const char *const keys[] = {"block_count", "embedding_length", "feed_forward_length", "attention.head_count"};
        static const uint32_t vals[] = {1, 64, 64, 2};
        for (int k = 0; k < 4; k++) {
            snprintf(key, sizeof key, "%s.%s", cases[i].arch, keys[k]);
            ck_gguf_w_u32(&w, key, vals[k]);
        }
        snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", cases[i].arch);
        ck_gguf_w_f32(&w, key, 1e-6f);
        /* token_embd [16, 64]: Q4_1 blocks (20 bytes per 32) or f32 zeros */
        size_t bytes = cases[i].type == 3 ? 16 * 2 * 20 : 16 * 64 * 4;
        uint8_t *data = calloc(1, bytes);
        uint64_t ne[2] = {64, 16};
        ck_gguf_w_tensor(&w, "token_embd.weight", cases[i].type, 2, ne, data, bytes);
        free(data);
        snprintf(path, sizeof path, "%s/unsupported-%zu.gguf", out_dir, i);
        CK_EXPECT(ck_gguf_w_save(&w, path, err, sizeof err) == 0, "%s", err);
        ck_gguf_w_free(&w);
        ck_engine *e = NULL;
        int rc = ck_engine_open(path, NULL, &e, err, sizeof err);
        CK_EXPECT(rc != 0 && strstr(err, cases[i].want), "unsupported case %zu: rc %d, '%s' (want '%s')", i, rc, err,
                  cases[i].want);
        if (rc == 0) ck_engine_close(e);
    }
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    ck_set_exact(1); /* f32 activations everywhere: a bf16 checkpoint and its F32 conversion must agree */
    const char *kind = getenv("CK_TEST_BACKEND"), *dev = getenv("CK_TEST_DEVICE"); /* (tests/gpu/run.sh: cuda) */
    char err[256];
    if (kind && *kind && strcmp(kind, "cpu")) {
        if (ck_set_backend(kind, dev && *dev ? atoi(dev) : 0, err, sizeof err) != 0) {
            fprintf(stderr, "test_gguf: %s\n", err);
            return 1;
        }
        LOSSLESS_TOL = 1e-2;
        printf("backend: %s\n", kind);
    }
    snprintf(out_dir, sizeof out_dir, "%s/gguf", CK_TEST_UNPACKED);
    mkdir(CK_TEST_UNPACKED, 0755);
    mkdir(out_dir, 0755);
    test_parser();
    check_unsupported();
    check_wide();
    const char *fixtures[] = {"qwen3-s", "llama3-s", "qwen2-s", "falcon3-s", "qwen3moe-s", "qwen3_5-s", "qwen3_5moe-s"};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) check_fixture(fixtures[i]);
    check_gemma3_config();
    check_broken_configs();
    check_qwen35_layout();
    const char *llama_files[] = {"qwen3_5-s", "qwen3_5moe-s", "phi3-s", "olmo2-s", "exaone4-s", "gemma3-s"};
    for (size_t i = 0; i < sizeof llama_files / sizeof llama_files[0]; i++) check_llama_file(llama_files[i]);
    check_llama_bias();
    check_llama_layout("qwen3_5-s", "qwen35");
    check_llama_layout("qwen3_5moe-s", "qwen35moe");
    check_qwen35_refusals();
    check_llama_file_q8("qwen3_5-s", 0.02, 0.2);
    check_llama_file_q8("qwen3_5moe-s", 0.05, 0.4); /* expert choices flip: ssm_out alone moves the NLL 0.03 */
    check_wide_qwen35();
    return ck_test_done("test_gguf");
}
