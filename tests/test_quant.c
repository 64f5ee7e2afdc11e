/* test_quant.c — block-quantized formats (tensor/quant.h) and their CPU kernels:
 *  - our dequantization equals llama.cpp's (gguf-py's) on random blocks (tests/data/quant, made by
 *    tools/gen_quant_ref.py), so the layouts are ggml's bit for bit;
 *  - quantize -> dequantize stays within each format's error bound, f32 -> f16 rounds to nearest even;
 *  - every kernel set's quantized dot product equals the scalar reference exactly (memcmp of the float)
 *    on random weights (quantized floats and raw random blocks) of awkward lengths;
 *  - the reference dot is close to the float dot of the dequantized row;
 *  - the quantized matmul is batch-invariant: a row's output is the same alone or among T rows, with
 *    any thread count. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "tensor/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng = 2024;
static uint32_t next_u32(void) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return rng;
}
static float frand(void) { return (float)(next_u32() >> 8) / 8388608.0f - 1.0f; }

static const ck_dtype QTYPES[] = {CK_Q8_0, CK_Q4_0, CK_Q4_K, CK_Q5_K, CK_Q6_K};
#define N_QTYPES (sizeof QTYPES / sizeof QTYPES[0])

static void *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

static void test_ggml_layouts(void) {
    for (size_t k = 0; k < N_QTYPES; k++) {
        const ck_dtype_traits *tr = ck_dtype_traits_of(QTYPES[k]);
        char path[512];
        size_t nb = 0, nf = 0;
        snprintf(path, sizeof path, "%s/quant/%s.bin", CK_TEST_DATA, tr->name);
        uint8_t *blocks = read_all(path, &nb);
        snprintf(path, sizeof path, "%s/quant/%s.f32", CK_TEST_DATA, tr->name);
        float *want = read_all(path, &nf);
        CK_EXPECT(blocks && want, "%s: reference files", tr->name);
        if (!blocks || !want) continue;
        size_t n = nf / 4;
        CK_EXPECT(nb == n / tr->block * tr->block_bytes, "%s: %zu bytes for %zu values", tr->name, nb, n);
        float *got = malloc(n * sizeof *got);
        tr->to_f32(got, blocks, n);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += memcmp(&got[i], &want[i], 4) != 0;
        CK_EXPECT(bad == 0, "%s: %zu of %zu values differ from gguf-py's dequantization", tr->name, bad, n);
        free(got), free(blocks), free(want);
    }
}

static void test_f16(void) {
    float vals[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65520.0f, 1e-8f, 5.96e-8f, 2.98e-8f, 1.0009765625f, 1.00048828125f,
                    1.00146484375f, -3.14159f, 6.1e-5f};
    uint16_t want[] = {0x0000, 0x8000, 0x3c00, 0x7bff, 0x7c00, 0x0000, 0x0001, 0x0000, 0x3c01, 0x3c00, 0x3c02, 0xc248, 0x03ff};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        CK_EXPECT(ck_f32_to_f16(vals[i]) == want[i], "f16(%g) = 0x%04x, want 0x%04x", (double)vals[i],
                  ck_f32_to_f16(vals[i]), want[i]);
    for (uint32_t h = 0; h < 0x7c00; h++) { /* every finite half round-trips */
        float f = ck_f16_to_f32((uint16_t)h);
        if (ck_f32_to_f16(f) != h) {
            CK_EXPECT(0, "half 0x%04x does not round-trip", h);
            break;
        }
    }
}

/* Relative RMS error of quantize -> dequantize on gaussian-ish data, against each format's bound. */
static void test_roundtrip(void) {
    /* Q8_0 Q4_0 Q4_K Q5_K Q6_K (the K-quants' fitted scales: scales from the range alone give Q4_K 0.0738,
       Q5_K 0.0366, Q6_K 0.0181) */
    const double bound[] = {0.01, 0.12, 0.07, 0.036, 0.0175};
    size_t n = 4096;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    uint8_t *q = malloc(n * 2);
    for (size_t i = 0; i < n; i++) x[i] = frand() + frand() + frand();
    for (size_t k = 0; k < N_QTYPES; k++) {
        const ck_dtype_traits *tr = ck_dtype_traits_of(QTYPES[k]);
        tr->from_f32(q, x, n);
        tr->to_f32(y, q, n);
        double se = 0, sx = 0;
        for (size_t i = 0; i < n; i++) se += (double)(y[i] - x[i]) * (y[i] - x[i]), sx += (double)x[i] * x[i];
        double rel = sqrt(se / sx);
        printf("%s: relative RMS error of quantize/dequantize %.4f\n", tr->name, rel);
        CK_EXPECT(rel < bound[k], "%s: relative RMS error %.4f over %.3f", tr->name, rel, bound[k]);
    }
    free(x), free(y), free(q);
}

/* Fills one weight row of type t: quantized random floats, or raw random blocks with finite scales. */
static void random_row(ck_dtype t, uint8_t *w, size_t n, int raw) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(t);
    if (!raw) {
        float *f = malloc(n * sizeof *f);
        for (size_t i = 0; i < n; i++) f[i] = frand() * (i % 7 == 0 ? 3.0f : 1.0f);
        tr->from_f32(w, f, n);
        free(f);
        return;
    }
    size_t nb = n / tr->block;
    for (size_t i = 0; i < nb * tr->block_bytes; i++) w[i] = (uint8_t)next_u32();
    for (size_t b = 0; b < nb; b++) { /* the f16 scales: finite */
        uint8_t *blk = w + b * tr->block_bytes;
        size_t offs[2] = {t == CK_Q6_K ? 208 : 0, 2};
        for (int j = 0; j < ((t == CK_Q4_K || t == CK_Q5_K) ? 2 : 1); j++) {
            uint16_t h = ck_f32_to_f16(frand() * 0.01f);
            memcpy(blk + offs[j], &h, 2);
        }
    }
}

/* The four-row kernel equals the reference for each of four different activation rows. */
static void check_qdot4(const ck_cpu_kernels *k, ck_dtype t, const uint8_t *w, const float *x0, size_t n) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(t);
    size_t xb = tr->act_row_bytes(n);
    uint8_t *xq = malloc(4 * xb);
    float *x = malloc(n * sizeof *x), out[4];
    for (int r = 0; r < 4; r++) {
        for (size_t i = 0; i < n; i++) x[i] = x0[i] * (float)(r + 1) + frand() * 0.1f;
        tr->quantize_act(xq + r * xb, x, n);
    }
    k->qdot4[t](w, xq, xb, n, out);
    for (int r = 0; r < 4; r++) {
        float ref = tr->qdot(w, xq + r * xb, n);
        CK_EXPECT(memcmp(&out[r], &ref, 4) == 0, "%s qdot4 %s n=%zu row %d: %.9g != reference %.9g", k->name, tr->name,
                  n, r, (double)out[r], (double)ref);
    }
    free(xq), free(x);
}

static void test_dots(void) {
    const ck_cpu_kernels *const *sets = ck_cpu_kernels_all();
    const size_t mult[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 40};
    for (size_t k = 0; k < N_QTYPES; k++) {
        ck_dtype t = QTYPES[k];
        const ck_dtype_traits *tr = ck_dtype_traits_of(t);
        for (size_t m = 0; m < sizeof mult / sizeof mult[0]; m++) {
            size_t n = mult[m] * tr->block;
            uint8_t *w = malloc(n / tr->block * tr->block_bytes);
            float *x = malloc(n * sizeof *x), *wf = malloc(n * sizeof *wf);
            void *xq = malloc(tr->act_row_bytes(n));
            for (int raw = 0; raw < 2; raw++) {
                random_row(t, w, n, raw);
                for (size_t i = 0; i < n; i++) x[i] = frand() * (i % 5 == 0 ? 4.0f : 1.0f);
                tr->quantize_act(xq, x, n);
                float ref = tr->qdot(w, xq, n);
                for (size_t s = 0; sets[s]; s++) {
                    float got = sets[s]->qdot[t](w, xq, n);
                    CK_EXPECT(memcmp(&got, &ref, 4) == 0, "%s %s n=%zu raw=%d: %.9g != reference %.9g", sets[s]->name,
                              tr->name, n, raw, (double)got, (double)ref);
                    if (sets[s]->qdot4[t]) check_qdot4(sets[s], t, w, x, n);
                }
                tr->to_f32(wf, w, n);
                double exact = 0, mag = 0;
                for (size_t i = 0; i < n; i++) exact += (double)x[i] * wf[i], mag += fabs((double)x[i] * wf[i]);
                CK_EXPECT(fabs(ref - exact) <= 0.02 * mag + 1e-6, "%s n=%zu raw=%d: quantized dot %.6g, float dot %.6g",
                          tr->name, n, raw, (double)ref, exact);
            }
            free(w), free(x), free(wf), free(xq);
        }
    }
}

/* Every kernel set's activation quantizer writes the reference's bytes: random rows with blocks of zeros,
 * of one non-zero value, with NaN, +-inf, subnormals, huge values, and values at rounding ties. */
static void test_quantize_act(void) {
    const ck_cpu_kernels *const *sets = ck_cpu_kernels_all();
    const int fmts[] = {CK_ACT_Q8, CK_ACT_Q8K};
    const ck_dtype of[] = {CK_Q8_0, CK_Q4_K};
    size_t tested = 0;
    for (size_t f = 0; f < 2; f++) {
        const ck_dtype_traits *tr = ck_dtype_traits_of(of[f]);
        size_t n = 40 * CK_QKK, nb = n / CK_QK, xb = tr->act_row_bytes(n);
        float *x = malloc(n * sizeof *x);
        uint8_t *ref = malloc(xb), *got = malloc(xb);
        for (int round = 0; round < 4; round++) {
            for (size_t i = 0; i < n; i++) x[i] = frand() * (round == 3 ? 1e30f : 3.0f);
            for (size_t b = 0; b < nb; b++) {
                float *blk = x + b * CK_QK;
                switch ((b + (size_t)round) % 9) {
                case 0: memset(blk, 0, CK_QK * sizeof *blk); break;
                case 1: blk[b % CK_QK] = NAN; break;
                case 2: blk[3] = INFINITY; break;
                case 3: blk[7] = -INFINITY, blk[8] = NAN; break;
                case 4: for (int i = 0; i < CK_QK; i++) blk[i] *= 1e-40f; break; /* subnormal */
                case 5: for (int i = 0; i < CK_QK; i++) blk[i] = (float)(i - 16) * 0.5f; break; /* ties at 127 / 16 steps */
                case 6: memset(blk, 0, CK_QK * sizeof *blk), blk[5] = -2.0f; break;
                default: break;
                }
            }
            tr->quantize_act(ref, x, n);
            for (size_t s = 0; sets[s]; s++) {
                if (!sets[s]->quantize_act[fmts[f]]) continue;
                tested++;
                memset(got, 0xa5, xb);
                sets[s]->quantize_act[fmts[f]](got, x, n);
                size_t bad = 0;
                for (size_t i = 0; i < xb; i++) bad += got[i] != ref[i];
                CK_EXPECT(bad == 0, "%s quantize_act %d round %d: %zu of %zu bytes differ from the reference", sets[s]->name,
                          fmts[f], round, bad, xb);
            }
        }
        free(x), free(ref), free(got);
    }
    if (!tested) printf("test_quant: no SIMD activation quantizer on this CPU\n");
}

/* The many-row decode kernels equal the reference for every row, on awkward lengths and row counts (tails
 * of the row loop and of the block loop), rows packed or with a gap between them, raw random blocks
 * (Q8_0 weights of -128 included) mixed with quantized floats. */
static void test_qgemv(void) {
    const ck_cpu_kernels *const *sets = ck_cpu_kernels_all();
    const size_t mult[] = {1, 7, 8, 9, 16, 17, 40, 96};
    const size_t n_rows[] = {1, 3, 4, 5, 8, 13};
    size_t tested = 0;
    for (size_t k = 0; k < N_QTYPES; k++) {
        ck_dtype t = QTYPES[k];
        const ck_dtype_traits *tr = ck_dtype_traits_of(t);
        for (size_t m = 0; m < sizeof mult / sizeof mult[0]; m++) {
            size_t n = mult[m] * tr->block, rb = n / tr->block * tr->block_bytes;
            for (size_t ri = 0; ri < sizeof n_rows / sizeof n_rows[0]; ri++) {
                size_t rows = n_rows[ri], ws = rb + (ri % 2) * 2 * tr->block_bytes;
                uint8_t *w = malloc(rows * ws);
                float *x = malloc(n * sizeof *x), *y = malloc(rows * sizeof *y);
                void *xq = malloc(tr->act_row_bytes(n));
                for (size_t r = 0; r < rows; r++) random_row(t, w + r * ws, n, (int)(r % 2));
                for (size_t i = 0; i < n; i++) x[i] = frand() * (i % 5 == 0 ? 4.0f : 1.0f);
                tr->quantize_act(xq, x, n);
                for (size_t s = 0; sets[s]; s++) {
                    if (!sets[s]->qgemv[t]) continue;
                    tested++;
                    sets[s]->qgemv[t](y, w, ws, xq, n, rows);
                    for (size_t r = 0; r < rows; r++) {
                        float ref = tr->qdot(w + r * ws, xq, n);
                        CK_EXPECT(memcmp(&y[r], &ref, 4) == 0, "%s qgemv %s n=%zu rows=%zu row %zu: %.9g != reference %.9g",
                                  sets[s]->name, tr->name, n, rows, r, (double)y[r], (double)ref);
                    }
                }
                free(w), free(x), free(y), free(xq);
            }
        }
    }
    if (!tested) printf("test_quant: no many-row kernel on this CPU (only the reference runs)\n");
}

static void test_batch_invariance(void) {
    ck_backend *be;
    char err[256];
    if (ck_backend_create("cpu", 0, &be, err, sizeof err) != 0) {
        CK_EXPECT(0, "cpu backend: %s", err);
        return;
    }
    size_t n_in = 512, n_out = 37, T = 11;
    float *x = malloc(T * n_in * sizeof *x), *yb = malloc(T * n_out * sizeof *yb), *y1 = malloc(n_out * sizeof *y1);
    float *bias = malloc(n_out * sizeof *bias), *wf = malloc(n_out * n_in * sizeof *wf);
    uint8_t *w = malloc(n_out * n_in * 2);
    for (size_t i = 0; i < T * n_in; i++) x[i] = frand();
    for (size_t i = 0; i < n_out; i++) bias[i] = frand();
    for (size_t i = 0; i < n_out * n_in; i++) wf[i] = frand();
    for (size_t k = 0; k < N_QTYPES; k++) {
        const ck_dtype_traits *tr = ck_dtype_traits_of(QTYPES[k]);
        size_t rb = n_in / tr->block * tr->block_bytes;
        for (size_t o = 0; o < n_out; o++) tr->from_f32(w + o * rb, wf + o * n_in, n_in);
        ck_tensor W = {.dtype = QTYPES[k], .ndim = 2, .shape = {n_out, n_in}, .data = w};
        CK_EXPECT(be->prepare_weight(be, &W, err, sizeof err) == 0, "%s: prepare: %s", tr->name, err);
        for (int threads = 1; threads <= 2; threads++) {
            ck_cpu_threads_set(threads, NULL, 0);
            be->matmul(be, yb, x, &W, bias, T);
            size_t bad = 0;
            for (size_t t = 0; t < T; t++) {
                be->matmul(be, y1, x + t * n_in, &W, bias, 1);
                bad += memcmp(y1, yb + t * n_out, n_out * sizeof *y1) != 0;
            }
            CK_EXPECT(bad == 0, "%s: %zu rows differ between batch %zu and batch 1 (%d threads)", tr->name, bad, T,
                      threads);
        }
        CK_EXPECT(be->sync(be, NULL, err, sizeof err) == 0, "%s: %s", tr->name, err);
    }
    free(x), free(yb), free(y1), free(bias), free(wf), free(w);
    ck_backend_destroy(be);
}

/* A fused call (matmul_n: q/k/v, gate/up) equals one matmul per weight, bit for bit, for one and for
 * several activation rows and 1 or 2 threads; weights of different row counts and mixed dtypes of one
 * activation format (Q8_0 with Q4_0, Q4_K with Q6_K), and formats that do not mix (split into calls). */
static void test_matmul_n(void) {
    ck_backend *be;
    char err[256];
    if (ck_backend_create("cpu", 0, &be, err, sizeof err) != 0) {
        CK_EXPECT(0, "cpu backend: %s", err);
        return;
    }
    const size_t n_in = 512, n_out[3] = {37, 64, 5}, T_max = 6;
    const ck_dtype mixes[][3] = {{CK_Q8_0, CK_Q8_0, CK_Q8_0}, {CK_Q8_0, CK_Q4_0, CK_Q8_0},
                                 {CK_Q4_K, CK_Q6_K, CK_Q5_K}, {CK_Q8_0, CK_Q4_K, CK_Q6_K}};
    float *x = malloc(T_max * n_in * sizeof *x), *wf = malloc(64 * n_in * sizeof *wf), *bias[3], *yn[3], *y1[3];
    uint8_t *w[3];
    for (size_t i = 0; i < T_max * n_in; i++) x[i] = frand();
    for (size_t i = 0; i < 64 * n_in; i++) wf[i] = frand();
    for (int i = 0; i < 3; i++) {
        w[i] = malloc(n_out[i] * n_in * 2), bias[i] = malloc(n_out[i] * sizeof(float));
        yn[i] = malloc(T_max * n_out[i] * sizeof(float)), y1[i] = malloc(T_max * n_out[i] * sizeof(float));
        for (size_t o = 0; o < n_out[i]; o++) bias[i][o] = frand();
    }
    for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; m++) {
        ck_tensor W[3];
        const ck_tensor *Wp[3] = {&W[0], &W[1], &W[2]};
        for (int i = 0; i < 3; i++) {
            const ck_dtype_traits *tr = ck_dtype_traits_of(mixes[m][i]);
            size_t rb = n_in / tr->block * tr->block_bytes;
            for (size_t o = 0; o < n_out[i]; o++) tr->from_f32(w[i] + o * rb, wf + ((o * 7 + (size_t)i) % 64) * n_in, n_in);
            W[i] = (ck_tensor){.dtype = mixes[m][i], .ndim = 2, .shape = {n_out[i], n_in}, .data = w[i]};
        }
        for (int threads = 1; threads <= 2; threads++)
            for (size_t T = 1; T <= T_max; T += T_max - 1) {
                ck_cpu_threads_set(threads, NULL, 0);
                const float *b3[3] = {bias[0], NULL, bias[2]};
                be->matmul_n(be, 3, yn, x, Wp, b3, T);
                for (int i = 0; i < 3; i++) be->matmul(be, y1[i], x, &W[i], b3[i], T);
                for (int i = 0; i < 3; i++)
                    CK_EXPECT(memcmp(yn[i], y1[i], T * n_out[i] * sizeof(float)) == 0,
                              "matmul_n %s+%s+%s: weight %d differs from its own matmul (T=%zu, %d threads)",
                              ck_dtype_name(mixes[m][0]), ck_dtype_name(mixes[m][1]), ck_dtype_name(mixes[m][2]), i, T,
                              threads);
            }
        CK_EXPECT(be->sync(be, NULL, err, sizeof err) == 0, "matmul_n: %s", err);
    }
    for (int i = 0; i < 3; i++) free(w[i]), free(bias[i]), free(yn[i]), free(y1[i]);
    free(x), free(wf);
    ck_backend_destroy(be);
}

int main(void) {
    test_ggml_layouts();
    test_f16();
    test_roundtrip();
    test_dots();
    test_qgemv();
    test_quantize_act();
    test_batch_invariance();
    test_matmul_n();
    return ck_test_done("test_quant");
}
