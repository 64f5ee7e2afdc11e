/* test_backend.c — op-level conformance of one backend instance: every op of the ck_backend table
 * (backend.h) runs on random inputs of awkward sizes (1, odd, just past powers of two, GQA groups 1/2/4,
 * windows, soft-capping, partial rotary dims, K=1 and K=4 convolutions, ...) and is compared with plain
 * double-precision loops written here from the contracts in backend.h (not from the CPU backend's code).
 * The instance comes from ck_backend_create(CK_TEST_BACKEND (default "cpu"), CK_TEST_DEVICE (default 0));
 * data moves only through alloc/upload/download/copy/free, weights are host views handed to prepare_weight
 * (and weight_rows for fused-weight row views), and every op is followed by a sync that must return 0, so
 * the same file checks a GPU backend unchanged.
 * Tolerance: |got - want| <= 1e-5 * mag, with mag the magnitude of the terms that produced the value
 * (sum |x w| for a dot product, the same recurrence on absolute values for the delta rule, ...): what f32
 * summation order and f32 exp/tanh rounding can move. Pure data movement must match exactly. On any
 * backend but the CPU the tolerance is 2e-5 * mag, and 5e-5 * mag for matmul: a GPU's prefill matmul
 * (T > 8 rows) feeds the tensor cores the activations as two 16-bit parts (hi + lo), which leaves out
 * about 2^-16 of each product. With CAKE_EXACT=0 (the fast path) matmul gets 2^-8 * mag (activations
 * rounded to 16 bits), and so does a GPU's attention: its prefill kernel then rounds q, k, v and the
 * probabilities to f16 for the tensor cores (about 2^-10 of the magnitude in all).
 * MoE routing must pick exactly the experts of the reference (ties to the lower index).
 * Also checked: carried state (conv1d, gated delta) split over two calls equals one call; the error channel
 * (check_finite -> sync -1 with its tag, then 0); weight_rows out of range and prepare_weight of an unknown
 * dtype fail with a message. The worst error/mag ratio per op is printed at the end. CK_TEST_ONLY=a,b,...
 * runs only the named tests (memory, matmul, fused_chains, ...: the function names without test_), in the
 * file's order, to narrow a failure down. The shared harness is backend_harness.c; the block-quantized
 * matmuls and the op sequences without syncs are in backend_sequences.c. */
#include "backend_harness.h"
#include "sample/sample.h"
#include "tensor/quant.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- embed, matmul, weight_rows ---- */

static void test_embed(void) {
    size_t dims[] = {1, 7, 65}, Ts[] = {1, 5}, V = 17;
    float scales[] = {1.0f, 0.37f};
    for (int dt = 0; dt < CK_DTYPE_COUNT; dt++)
        if (!ck_dtype_is_quant((ck_dtype)dt)) /* quantized weights: test_quant, test_gguf */
        for (size_t di = 0; di < N_OF(dims); di++)
            for (size_t ti = 0; ti < N_OF(Ts); ti++)
                for (size_t si = 0; si < N_OF(scales); si++) {
                    size_t d = dims[di], T = Ts[ti];
                    snprintf(desc, sizeof desc, "%s d=%zu T=%zu scale=%g", ck_dtype_name(dt), d, T, scales[si]);
                    hw E;
                    double *ev = dnew(V * d), *want = dnew(T * d), *mag = dnew(T * d);
                    weight_new(&E, (ck_dtype)dt, V, d, ev);
                    int32_t ids[5] = {16, 3, 0, 3, 16};
                    if (T == 1) ids[0] = (int32_t)(rng % V);
                    float *y = dev(NULL, T * d);
                    B->embed(B, y, &E.t, ids, T, scales[si]);
                    synced("embed");
                    float *got = down(y, T * d);
                    for (size_t i = 0; i < T * d; i++) {
                        want[i] = ev[(size_t)ids[i / d] * d + i % d] * scales[si];
                        mag[i] = fabs(want[i]);
                    }
                    cmp("embed", got, want, mag, T * d);
                    weight_free(&E);
                    B->free(B, y);
                    free(ev), free(want), free(mag), free(got);
                }
}

/* want[T, n_out] = x . W^T (+ bias), mag = sum |x w| + |bias| */
static void matmul_ref(double *want, double *mag, const float *x, const double *W, const float *bias, size_t T,
                       size_t n_in, size_t n_out) {
    for (size_t t = 0; t < T; t++)
        for (size_t o = 0; o < n_out; o++) {
            double s = bias ? bias[o] : 0, m = bias ? fabs(bias[o]) : 0;
            for (size_t i = 0; i < n_in; i++) {
                s += (double)x[t * n_in + i] * W[o * n_in + i];
                m += fabs((double)x[t * n_in + i] * W[o * n_in + i]);
            }
            want[t * n_out + o] = s, mag[t * n_out + o] = m;
        }
}

static void matmul_case(ck_dtype dt, size_t T, size_t n_in, size_t n_out, int use_bias) {
    snprintf(desc, sizeof desc, "%s T=%zu n_in=%zu n_out=%zu bias=%d", ck_dtype_name(dt), T, n_in, n_out, use_bias);
    hw W;
    double *wv = dnew(n_out * n_in), *want = dnew(T * n_out), *mag = dnew(T * n_out);
    weight_new(&W, dt, n_out, n_in, wv);
    float *x = hrand(T * n_in, 1.0f), *bias = use_bias ? hrand(n_out, 1.0f) : NULL;
    float *dx = dev(x, T * n_in), *db = use_bias ? dev(bias, n_out) : NULL, *dy = dev(NULL, T * n_out);
    B->matmul(B, dy, dx, &W.t, db, T);
    synced("matmul");
    float *got = down(dy, T * n_out);
    matmul_ref(want, mag, x, wv, bias, T, n_in, n_out);
    cmp("matmul", got, want, mag, T * n_out);
    weight_free(&W);
    B->free(B, dx), B->free(B, dy);
    if (db) B->free(B, db);
    free(wv), free(want), free(mag), free(x), free(bias), free(got);
}

static void test_matmul(void) {
    size_t Ts[] = {1, 3, 4, 5, 9}, ins[] = {1, 3, 17, 33, 64, 65, 130}, outs[] = {1, 5, 7, 17};
    for (int dt = 0; dt < CK_DTYPE_COUNT; dt++) {
        if (ck_dtype_is_quant((ck_dtype)dt)) continue;
        for (size_t a = 0; a < N_OF(Ts); a++)
            for (size_t b = 0; b < N_OF(ins); b++)
                for (size_t c = 0; c < N_OF(outs); c++)
                    for (int bias = 0; bias < 2; bias++) matmul_case((ck_dtype)dt, Ts[a], ins[b], outs[c], bias);
        matmul_case((ck_dtype)dt, 64, 520, 257, 1); /* big enough to be split across threads / blocks */
        /* rows long enough that a GPU gives one row several warps (an o or down projection's input) */
        matmul_case((ck_dtype)dt, 3, 2048, 37, 1);
        matmul_case((ck_dtype)dt, 1, 4096, 19, 0);
    }
}

/* Batch invariance (backend.h's matmul contract, which continuous batching relies on): each row of a
 * batch of T rows, taken at any offset of a 64-row pool, is bit-identical to the same row multiplied
 * alone (T = 1), for every dtype, with and without bias, lengths with awkward tails. */
static void test_matmul_invariance(void) {
    size_t Ts[] = {1, 2, 3, 4, 5, 7, 8, 9, 17, 64}, ins[] = {1, 13, 67, 130, 1031, 2048}, outs[] = {1, 7, 37, 300, 1024};
    const size_t P = 64;
    for (int dt = 0; dt < CK_DTYPE_COUNT; dt++)
        if (!ck_dtype_is_quant((ck_dtype)dt)) /* quantized weights: test_quant checks their invariance */
        for (size_t b = 0; b < N_OF(ins); b++)
            for (size_t c = 0; c < N_OF(outs); c++) {
                size_t n_in = ins[b], n_out = outs[c];
                /* the last pair only (an o projection's shape: a GPU spreads its rows over several warps,
                 * as many for one row as for a batch of them) */
                if ((b == N_OF(ins) - 1) != (c == N_OF(outs) - 1)) continue;
                int use_bias = (b + c) & 1;
                hw W;
                double *wv = dnew(n_out * n_in);
                weight_new(&W, (ck_dtype)dt, n_out, n_in, wv);
                float *x = hrand(P * n_in, 1.0f), *bias = use_bias ? hrand(n_out, 1.0f) : NULL;
                float *dx = dev(x, P * n_in), *db = use_bias ? dev(bias, n_out) : NULL, *dy = dev(NULL, P * n_out);
                for (size_t t = 0; t < P; t++) B->matmul(B, dy + t * n_out, dx + t * n_in, &W.t, db, 1);
                snprintf(desc, sizeof desc, "%s n_in=%zu n_out=%zu one row at a time", ck_dtype_name(dt), n_in, n_out);
                synced("matmul");
                float *alone = down(dy, P * n_out);
                for (size_t ti = 0; ti < N_OF(Ts); ti++) {
                    size_t T = Ts[ti], off = (T * 7 + n_in) % (P - T + 1);
                    snprintf(desc, sizeof desc, "%s T=%zu rows [%zu, %zu) n_in=%zu n_out=%zu bias=%d",
                             ck_dtype_name(dt), T, off, off + T, n_in, n_out, use_bias);
                    B->clear(B, dy, P * n_out * sizeof *dy);
                    B->matmul(B, dy, dx + off * n_in, &W.t, db, T);
                    synced("matmul");
                    float *got = down(dy, T * n_out);
                    size_t bad = 0, first = 0;
                    for (size_t i = 0; i < T * n_out; i++)
                        if (memcmp(&got[i], &alone[off * n_out + i], sizeof(float)) && !bad++) first = i;
                    CK_EXPECT(bad == 0, "matmul batch invariance %s: %zu values differ from the row alone, first "
                              "[%zu]: %.9g vs %.9g", desc, bad, first, bad ? got[first] : 0.0,
                              bad ? alone[off * n_out + first] : 0.0);
                    free(got);
                }
                weight_free(&W);
                B->free(B, dx), B->free(B, dy);
                if (db) B->free(B, db);
                free(wv), free(x), free(bias), free(alone);
            }
}

/* ck_matmul_n (the backend's fused op when it has one) equals one matmul per weight, bit for bit: three
 * weights of different heights, with and without biases, T around the tiles. */
static void test_matmul_n(void) {
    size_t Ts[] = {1, 5, 64}, n_in = 67, outs[3] = {37, 16, 300};
    for (int dt = 0; dt < CK_DTYPE_COUNT; dt++)
        if (!ck_dtype_is_quant((ck_dtype)dt))
        for (size_t ti = 0; ti < N_OF(Ts); ti++) {
            size_t T = Ts[ti];
            snprintf(desc, sizeof desc, "%s T=%zu n_in=%zu", ck_dtype_name(dt), T, n_in);
            hw W[3];
            float *y[3], *y1[3], *db[3] = {NULL, NULL, NULL};
            const ck_tensor *wp[3];
            float *x = hrand(T * n_in, 1.0f), *dx = dev(x, T * n_in);
            for (size_t i = 0; i < 3; i++) {
                double *wv = dnew(outs[i] * n_in);
                weight_new(&W[i], (ck_dtype)dt, outs[i], n_in, wv);
                free(wv);
                wp[i] = &W[i].t;
                y[i] = dev(NULL, T * outs[i]), y1[i] = dev(NULL, T * outs[i]);
                if (i != 1) {
                    float *b = hrand(outs[i], 1.0f);
                    db[i] = dev(b, outs[i]);
                    free(b);
                }
            }
            ck_matmul_n(B, 3, y, dx, wp, (const float *const *)db, T);
            for (size_t i = 0; i < 3; i++) B->matmul(B, y1[i], dx, wp[i], db[i], T);
            synced("matmul_n");
            for (size_t i = 0; i < 3; i++) {
                float *got = down(y[i], T * outs[i]), *want = down(y1[i], T * outs[i]);
                cmp_f("matmul_n", got, want, T * outs[i]);
                free(got), free(want);
                weight_free(&W[i]);
                B->free(B, y[i]), B->free(B, y1[i]);
                if (db[i]) B->free(B, db[i]);
            }
            B->free(B, dx);
            free(x);
        }
}

/* Splits a fused [5 + 3 + 7, n_in] weight into row views and multiplies through each. */
static void test_weight_rows(void) {
    size_t n_in = 33, T = 5, parts[] = {5, 3, 7}, rows = 15;
    for (int dt = 0; dt < CK_DTYPE_COUNT; dt++) {
        if (ck_dtype_is_quant((ck_dtype)dt)) continue;
        hw W;
        double *wv = dnew(rows * n_in);
        weight_new(&W, (ck_dtype)dt, rows, n_in, wv);
        float *x = hrand(T * n_in, 1.0f), *dx = dev(x, T * n_in);
        char err[256];
        for (size_t p = 0, r0 = 0; p < N_OF(parts); r0 += parts[p++]) {
            size_t n = parts[p];
            snprintf(desc, sizeof desc, "%s view rows [%zu, +%zu) of %zu", ck_dtype_name(dt), r0, n, rows);
            ck_tensor view;
            err[0] = 0;
            int rc = B->weight_rows(B, &view, &W.t, r0, n, err, sizeof err);
            CK_EXPECT(rc == 0, "weight_rows %s: %s", desc, err);
            if (rc) continue;
            float *dy = dev(NULL, T * n);
            double *want = dnew(T * n), *mag = dnew(T * n);
            B->matmul(B, dy, dx, &view, NULL, T);
            synced("matmul(view)");
            float *got = down(dy, T * n);
            matmul_ref(want, mag, x, wv + r0 * n_in, NULL, T, n_in, n);
            cmp("matmul(view)", got, want, mag, T * n);
            B->free(B, dy);
            free(want), free(mag), free(got);
        }
        ck_tensor view;
        err[0] = 0;
        CK_EXPECT(B->weight_rows(B, &view, &W.t, rows - 2, 3, err, sizeof err) != 0 && err[0],
                  "weight_rows past the end of %s [%zu, %zu] should fail with a message", ck_dtype_name(dt), rows, n_in);
        weight_free(&W);
        B->free(B, dx);
        free(wv), free(x);
    }
}

/* ---- norms, rope ---- */

static void test_rmsnorm(void) {
    size_t rows_[] = {1, 3, 5}, ns[] = {1, 7, 64, 65, 131};
    float eps = 1e-6f;
    for (size_t a = 0; a < N_OF(rows_); a++)
        for (size_t b = 0; b < N_OF(ns); b++)
            for (int one_plus = 0; one_plus < 2; one_plus++)
                for (int alias = 0; alias < 2; alias++) {
                    size_t rows = rows_[a], n = ns[b];
                    snprintf(desc, sizeof desc, "rows=%zu n=%zu one_plus=%d y==x:%d", rows, n, one_plus, alias);
                    float *x = hrand(rows * n, 3.0f), *w = hrand(n, 1.0f);
                    float *dx = dev(x, rows * n), *dw = dev(w, n), *dy = alias ? dx : dev(NULL, rows * n);
                    B->rmsnorm(B, dy, dx, dw, rows, n, eps, one_plus);
                    synced("rmsnorm");
                    float *got = down(dy, rows * n);
                    double *want = dnew(rows * n), *mag = dnew(rows * n);
                    for (size_t r = 0; r < rows; r++) {
                        double ss = 0;
                        for (size_t i = 0; i < n; i++) ss += (double)x[r * n + i] * x[r * n + i];
                        double inv = 1.0 / sqrt(ss / (double)n + eps);
                        for (size_t i = 0; i < n; i++) {
                            double xi = x[r * n + i] * inv;
                            want[r * n + i] = xi * (one_plus ? 1.0 + w[i] : w[i]);
                            mag[r * n + i] = fabs(xi) * (one_plus ? 1.0 + fabs(w[i]) : fabs(w[i]));
                        }
                    }
                    cmp("rmsnorm", got, want, mag, rows * n);
                    B->free(B, dx), B->free(B, dw);
                    if (!alias) B->free(B, dy);
                    free(x), free(w), free(got), free(want), free(mag);
                }
}

static void test_rmsnorm_gated(void) {
    size_t rows_[] = {1, 3, 10}, ns[] = {1, 7, 64, 65};
    float eps = 1e-6f;
    for (size_t a = 0; a < N_OF(rows_); a++)
        for (size_t b = 0; b < N_OF(ns); b++)
            for (int alias = 0; alias < 2; alias++) {
                size_t rows = rows_[a], n = ns[b], N = rows * n;
                snprintf(desc, sizeof desc, "rows=%zu n=%zu y==x:%d", rows, n, alias);
                float *x = hrand(N, 2.0f), *z = hrand(N, 6.0f), *w = hrand(n, 1.0f);
                float *dx = dev(x, N), *dz = dev(z, N), *dw = dev(w, n), *dy = alias ? dx : dev(NULL, N);
                B->rmsnorm_gated(B, dy, dx, dz, dw, rows, n, eps);
                synced("rmsnorm_gated");
                float *got = down(dy, N);
                double *want = dnew(N), *mag = dnew(N);
                for (size_t r = 0; r < rows; r++) {
                    double ss = 0;
                    for (size_t i = 0; i < n; i++) ss += (double)x[r * n + i] * x[r * n + i];
                    double inv = 1.0 / sqrt(ss / (double)n + eps);
                    for (size_t i = 0; i < n; i++) {
                        double zi = z[r * n + i], xw = x[r * n + i] * inv * w[i];
                        want[r * n + i] = xw * zi / (1.0 + exp(-zi));
                        mag[r * n + i] = fabs(xw * zi);
                    }
                }
                cmp("rmsnorm_gated", got, want, mag, N);
                B->free(B, dx), B->free(B, dz), B->free(B, dw);
                if (!alias) B->free(B, dy);
                free(x), free(z), free(w), free(got), free(want), free(mag);
            }
}

/* Rotates host rows x [T, nh, hd] on B with device positions dpos and frequencies dfreq (whose host
 * values are pos and freq) and compares with the reference. */
static void check_rope(const float *x, size_t T, size_t nh, size_t hd, size_t rot, const int32_t *pos,
                       const double *freq, const int32_t *dpos, const double *dfreq) {
    size_t half = rot / 2, N = T * nh * hd;
    float *dx = dev(x, N);
    B->rope(B, dx, T, nh, hd, rot, dpos, dfreq);
    synced("rope");
    float *got = down(dx, N);
    double *want = dnew(N), *mag = dnew(N);
    for (size_t i = 0; i < N; i++) want[i] = x[i]; /* dims past rot_dim: unchanged, exactly */
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < nh; h++)
            for (size_t i = 0; i < half; i++) {
                size_t o = (t * nh + h) * hd;
                double ang = (double)pos[t] * freq[i], co = cos(ang), si = sin(ang);
                double a = x[o + i], b = x[o + i + half];
                want[o + i] = a * co - b * si, want[o + i + half] = b * co + a * si;
                mag[o + i] = mag[o + i + half] = fabs(a * co) + fabs(b * si) + fabs(a * si) + fabs(b * co);
            }
    cmp("rope", got, want, mag, N);
    B->free(B, dx);
    free(got), free(want), free(mag);
}

static void test_rope(void) {
    struct { size_t T, nh, hd, rot; } cs[] = {{1, 1, 2, 2},   {3, 2, 7, 4},   {5, 3, 64, 64},
                                               {4, 2, 65, 32}, {9, 1, 17, 16}, {1, 4, 128, 64}};
    for (size_t c = 0; c < N_OF(cs); c++) {
        size_t T = cs[c].T, nh = cs[c].nh, hd = cs[c].hd, rot = cs[c].rot, half = rot / 2, N = T * nh * hd;
        snprintf(desc, sizeof desc, "T=%zu heads=%zu head_dim=%zu rot_dim=%zu", T, nh, hd, rot);
        float *x = hrand(N, 2.0f);
        int32_t *pos = xmalloc(T * sizeof *pos);
        double *freq = dnew(half);
        for (size_t t = 0; t < T; t++) pos[t] = (int32_t)((t * 7919 + c * 131) % 40000); /* any order */
        for (size_t i = 0; i < half; i++) freq[i] = pow(10000.0, -(double)(2 * i) / (double)rot);
        int32_t *dpos = dev_bytes(pos, T * sizeof *pos);
        double *dfreq = dev_bytes(freq, half * sizeof *freq);
        check_rope(x, T, nh, hd, rot, pos, freq, dpos, dfreq);
        B->free(B, dpos), B->free(B, dfreq);
        free(x), free(pos), free(freq);
    }
    /* A backend may keep what it derives from positions and frequencies (the CPU caches the angles): the
     * positions rewritten in place between calls, three frequency tables (three RoPE kinds) taking turns,
     * one of them rewritten in place, each rotation as the reference's. */
    enum { T = 3, NH = 2, HD = 16, HALF = 8, KINDS = 3 };
    float *x = hrand(T * NH * HD, 2.0f);
    int32_t pos[T] = {0, 1, 2};
    double freq[KINDS][HALF];
    double *dfreq[KINDS];
    for (size_t k = 0; k < KINDS; k++) {
        for (size_t i = 0; i < HALF; i++) freq[k][i] = pow(1000.0 * (double)(k + 1), -(double)(2 * i) / (2.0 * HALF));
        dfreq[k] = dev_bytes(freq[k], sizeof freq[k]);
    }
    int32_t *dpos = dev_bytes(pos, sizeof pos);
    static const size_t kind_at[] = {0, 1, 0, 1, 2, 2, 0, 1, 0, 2, 1, 1}; /* repeats, and more kinds than two */
    for (int step = 0; step < (int)N_OF(kind_at); step++) {
        if (step % 4 == 3) { /* the next decode step: same buffer, new positions */
            for (size_t t = 0; t < T; t++) pos[t] += 5;
            B->upload(B, dpos, pos, sizeof pos);
        }
        if (step == 2) { /* kind 0 again, its table rewritten in place (same buffer and positions, new values) */
            for (size_t i = 0; i < HALF; i++) freq[0][i] *= 1.5;
            B->upload(B, dfreq[0], freq[0], sizeof freq[0]);
        }
        size_t k = kind_at[step];
        snprintf(desc, sizeof desc, "reused buffers, step %d, kind %zu, pos %d", step, k, pos[0]);
        check_rope(x, T, NH, HD, 2 * HALF, pos, freq[k], dpos, dfreq[k]);
    }
    for (size_t k = 0; k < KINDS; k++) B->free(B, dfreq[k]);
    B->free(B, dpos);
    free(x);
}

/* ---- attention (the reference and the caches: backend_harness.c) ---- */

static int f16_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

static void test_attention(void) {
    struct { size_t T, pos0, nh, nkv, hd, window; float scale, softcap; } cs[] = {
        {1, 0, 1, 1, 1, 0, 1.0f, 0},      {3, 0, 2, 1, 7, 0, 0.4f, 0},      {5, 4, 4, 1, 17, 0, 0.25f, 0},
        {4, 9, 4, 2, 33, 3, 0.2f, 0},     {9, 2, 3, 3, 64, 4, 1.0f, 2.0f},  {1, 40, 8, 2, 65, 16, 1.0f, 3.0f},
        {64, 0, 8, 2, 64, 0, 0.15f, 0},   {64, 5, 4, 4, 33, 17, 0.5f, 5.0f}, {3, 0, 4, 2, 8, 1, 1.0f, 0},
        {1, 70, 2, 1, 128, 0, 0.1f, 0},   {1, 600, 4, 2, 64, 0, 0.1f, 0},   {2, 1100, 2, 1, 32, 0, 0.2f, 0},
        {1, 2300, 2, 2, 16, 1000, 1.0f, 0},
        /* prefill chunks: several tiles of rows (a partial last one) and of keys, head dims up to 256 */
        {100, 40, 4, 2, 128, 0, 0.1f, 0}, {40, 0, 2, 1, 256, 0, 0.06f, 0}, {70, 10, 2, 2, 48, 20, 0.3f, 1.5f},
        {130, 200, 8, 2, 32, 0, 0.2f, 0}, {77, 3, 4, 1, 16, 50, 0.5f, 0}, {65, 0, 2, 1, 80, 0, 0.1f, 0},
        {129, 0, 2, 2, 96, 70, 0.1f, 30.0f},
        /* decode rows over many splits (up to 16), with the widest head, a soft-cap, a window */
        {1, 3500, 4, 2, 256, 0, 0.06f, 50.0f}, {2, 900, 4, 1, 128, 300, 0.1f, 0},
        /* decode rows by KV head (CUDA: a block takes 1, 2 or 4 query heads): every group size, a short
         * context and split ones */
        {3, 130, 4, 4, 64, 0, 0.2f, 0}, {1, 1000, 8, 2, 128, 0, 0.1f, 0}, {1, 5, 16, 8, 128, 0, 0.09f, 0},
        {4, 2000, 8, 4, 128, 700, 0.1f, 0},
    };
    /* each case with the context unknown to the backend (keys_max 0) and known (CUDA sizes its split-K
     * decode attention to it: one split per 128 keys by default, at most 16), over f32
     * caches and over f16 ones */
    for (size_t c = 0; c < 4 * N_OF(cs); c++) {
        size_t pass = c / N_OF(cs);
        int known = pass & 1;
        ck_dtype kt = pass & 2 ? CK_F16 : CK_F32;
        c -= pass * N_OF(cs);
        size_t T = cs[c].T, nh = cs[c].nh, nkv = cs[c].nkv, hd = cs[c].hd, ctx = cs[c].pos0 + T, cap = ctx + 3;
        snprintf(desc, sizeof desc, "T=%zu pos0=%zu heads=%zu/%zu head_dim=%zu window=%zu softcap=%g keys_max=%zu %s cache",
                 T, cs[c].pos0, nh, nkv, hd, cs[c].window, cs[c].softcap, known ? ctx : 0, ck_dtype_name(kt));
        size_t NQ = T * nh * hd, NC = cap * nkv * hd;
        float *q = hrand(NQ, 2.0f), *kc = hrand(NC, 2.0f), *vc = hrand(NC, 1.0f);
        for (size_t i = ctx * nkv * hd; i < NC; i++) kc[i] = vc[i] = NAN; /* unfilled rows: never to be read */
        float *dq = dev(q, NQ), *dout = dev(NULL, NQ);
        void *dk = dev_kv(kc, NC, kt), *dv = dev_kv(vc, NC, kt);
        int32_t *pos = xmalloc(T * sizeof *pos);
        for (size_t t = 0; t < T; t++) pos[t] = (int32_t)(cs[c].pos0 + t);
        int32_t *dpos = dev_bytes(pos, T * sizeof *pos);
        ck_attn_args a = {.q = dq, .k_cache = dk, .v_cache = dv, .kv_dtype = kt, .out = dout, .T = T, .pos = dpos,
                          .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = cs[c].scale,
                          .window = cs[c].window, .softcap = cs[c].softcap, .keys_max = known ? ctx : 0};
        B->attention(B, &a);
        synced("attention");
        float *got = down(dout, NQ);
        double *want = dnew(NQ), *mag = dnew(NQ);
        a.q = q, a.out = NULL, a.pos = pos;
        attn_ref(&a, kc, vc, want, mag);
        cmp("attention", got, want, mag, NQ);
        B->free(B, dq), B->free(B, dk), B->free(B, dv), B->free(B, dout), B->free(B, dpos);
        free(q), free(kc), free(vc), free(got), free(want), free(mag), free(pos);
        c += pass * N_OF(cs);
    }
}

/* A decode row's attention alone (T = 1: the CPU splits a long context's key segments over its threads when
 * the row has fewer KV heads than two per thread) has the bits of the same row inside a prefill-sized call
 * (tiles of rows walking the keys together): on the CPU, at 2 and 8 threads, over both cache types. */
static void test_attention_split(void) {
    if (!on_cpu) return;
    int threads0 = ck_cpu_threads();
    struct { size_t nh, nkv, hd, pos0, window; float softcap; } cs[] = {
        {4, 1, 64, 960, 0, 0}, {8, 2, 128, 1500, 0, 30.0f}, {2, 1, 32, 700, 400, 0}, {6, 3, 16, 257, 0, 0},
    };
    size_t T = 40;
    for (int pass = 0; pass < 4; pass++) {
        ck_cpu_threads_set(pass & 1 ? 8 : 2, NULL, 0);
        ck_dtype kt = pass & 2 ? CK_F16 : CK_F32;
        for (size_t c = 0; c < N_OF(cs); c++) {
            size_t nh = cs[c].nh, nkv = cs[c].nkv, hd = cs[c].hd, ctx = cs[c].pos0 + T, NQ = T * nh * hd, NC = ctx * nkv * hd;
            snprintf(desc, sizeof desc, "split: heads=%zu/%zu head_dim=%zu rows at %zu.. window=%zu %s cache, %d threads",
                     nh, nkv, hd, cs[c].pos0, cs[c].window, ck_dtype_name(kt), ck_cpu_threads());
            float *q = hrand(NQ, 2.0f), *kc = hrand(NC, 2.0f), *vc = hrand(NC, 1.0f);
            float *dq = dev(q, NQ), *dall = dev(NULL, NQ), *done = dev(NULL, nh * hd);
            void *dk = dev_kv(kc, NC, kt), *dv = dev_kv(vc, NC, kt);
            int32_t pos[40];
            for (size_t t = 0; t < T; t++) pos[t] = (int32_t)(cs[c].pos0 + t);
            int32_t *dpos = dev_bytes(pos, sizeof pos);
            ck_attn_args a = {.q = dq, .k_cache = dk, .v_cache = dv, .kv_dtype = kt, .out = dall, .T = T, .pos = dpos,
                              .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = 0.1f,
                              .window = cs[c].window, .softcap = cs[c].softcap};
            B->attention(B, &a);
            synced("attention");
            float *all = down(dall, NQ);
            size_t same = 0;
            for (size_t t = 0; t < T; t += 13) {
                ck_attn_args a1 = a;
                a1.q = dq + t * nh * hd, a1.out = done, a1.T = 1, a1.pos = dpos + t;
                B->attention(B, &a1);
                synced("attention");
                float *one = down(done, nh * hd);
                same += !memcmp(one, all + t * nh * hd, nh * hd * sizeof *one);
                free(one);
            }
            CK_EXPECT(same == 4, "%s: %zu of 4 rows alone have the bits they have in the batch", desc, same);
            B->free(B, dq), B->free(B, dall), B->free(B, done), B->free(B, dk), B->free(B, dv), B->free(B, dpos);
            free(q), free(kc), free(vc), free(all);
        }
    }
    ck_cpu_threads_set(threads0, NULL, 0);
}

/* ---- elementwise and row movement ---- */

static void test_glu(void) {
    size_t ns[] = {1, 7, 65, 1000};
    for (size_t c = 0; c < N_OF(ns); c++)
        for (int act = 0; act < 2; act++) {
            size_t n = ns[c];
            snprintf(desc, sizeof desc, "n=%zu act=%s", n, act ? "gelu_tanh" : "silu");
            float *g = hrand(n, 6.0f), *u = hrand(n, 2.0f), *dg = dev(g, n), *du = dev(u, n), *dout = dev(NULL, n);
            B->glu(B, dout, dg, du, n, (ck_act)act);
            synced("glu");
            float *got = down(dout, n);
            double *want = dnew(n), *mag = dnew(n);
            for (size_t i = 0; i < n; i++) {
                double x = g[i], gu = x * u[i];
                if (act == CK_ACT_GELU_TANH) {
                    double arg = 0.7978845608028654 * (x + 0.044715 * x * x * x);
                    want[i] = 0.5 * gu * (1 + tanh(arg)), mag[i] = 0.5 * fabs(gu) * (2 + fabs(arg));
                } else {
                    want[i] = gu / (1 + exp(-x)), mag[i] = fabs(gu);
                }
            }
            cmp("glu", got, want, mag, n);
            B->free(B, dg), B->free(B, du), B->free(B, dout);
            free(g), free(u), free(got), free(want), free(mag);
        }
}

static void test_rows(void) {
    size_t rows_[] = {1, 7, 65};
    for (size_t c = 0; c < N_OF(rows_); c++) {
        size_t row = rows_[c], V = 17, n = 5;
        snprintf(desc, sizeof desc, "row=%zu", row);
        /* gather_rows: repeated and extreme indices */
        int32_t idx[5] = {16, 0, 3, 3, 7};
        float *src = hrand(V * row, 1.0f), *dsrc = dev(src, V * row), *ddst = dev(NULL, n * row);
        B->gather_rows(B, ddst, dsrc, idx, n, row);
        synced("gather_rows");
        float *got = down(ddst, n * row), *want = xmalloc(n * row * sizeof *want);
        for (size_t i = 0; i < n; i++) memcpy(want + i * row, src + (size_t)idx[i] * row, row * sizeof(float));
        cmp_f("gather_rows", got, want, n * row);
        /* store_rows: rows pos[t] of a cache, in any order; the others untouched */
        size_t T = c == 0 ? 1 : 5, cap = 2 * T + 3;
        int32_t at[5] = {(int32_t)(row % 4), 9, 2, 12, 5};
        float *cache = hrand(cap * row, 1.0f), *dcache = dev(cache, cap * row);
        int32_t *dat = dev_bytes(at, sizeof at);
        B->store_rows(B, dcache, CK_F32, dsrc, dat, T, row);
        synced("store_rows");
        float *gc = down(dcache, cap * row);
        for (size_t t = 0; t < T; t++) memcpy(cache + (size_t)at[t] * row, src + t * row, row * sizeof(float));
        cmp_f("store_rows", gc, cache, cap * row);
        /* into an f16 cache: the bits of ck_f32_to_f16_sat, with values past f16's range, ties, subnormals,
         * a NaN and an infinity among the rows */
        static const float odd[] = {70000.0f, -1e30f, 65519.0f, 65520.0f, -65504.0f, 1.00048828125f, 2.9802322e-08f,
                                    -6.1e-5f, 1e-9f, -0.0f, NAN, INFINITY, -INFINITY, 0.333333f};
        float *hs = hrand(T * row, 3.0f);
        for (size_t i = 0; i < T * row && i < N_OF(odd); i++) hs[i * 7 % (T * row)] = odd[i];
        float *ds = dev(hs, T * row);
        uint16_t *hc = xmalloc(cap * row * sizeof *hc), *gh = xmalloc(cap * row * sizeof *gh);
        for (size_t i = 0; i < cap * row; i++) hc[i] = (uint16_t)(0x3c00 + i % 977);
        void *dc16 = dev_bytes(hc, cap * row * sizeof *hc);
        B->store_rows(B, dc16, CK_F16, ds, dat, T, row);
        synced("store_rows f16");
        B->download(B, gh, dc16, cap * row * sizeof *gh);
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < row; i++) hc[(size_t)at[t] * row + i] = ck_f32_to_f16_sat(hs[t * row + i]);
        size_t bad16 = 0, first16 = 0;
        for (size_t i = 0; i < cap * row; i++) /* a NaN must stay a NaN, with any payload */
            if (gh[i] != hc[i] && !(f16_nan(gh[i]) && f16_nan(hc[i])) && !bad16++) first16 = i;
        CK_EXPECT(bad16 == 0, "store_rows f16 %s: %zu of %zu values differ, first [%zu]: got 0x%04x want 0x%04x", desc,
                  bad16, cap * row, first16, bad16 ? gh[first16] : 0, bad16 ? hc[first16] : 0);
        B->free(B, dat), B->free(B, ds), B->free(B, dc16);
        free(hs), free(hc), free(gh);
        /* scatter_add_rows: rows hit several times */
        int32_t to[9] = {3, 0, 3, 6, 3, 1, 0, 6, 3};
        float w[9], *dst0 = hrand(7 * row, 1.0f), *dd = dev(dst0, 7 * row);
        for (size_t i = 0; i < 9; i++) w[i] = frand();
        B->scatter_add_rows(B, dd, dsrc, to, w, 9, row);
        synced("scatter_add_rows");
        float *gs = down(dd, 7 * row);
        double *ws = dnew(7 * row), *ms = dnew(7 * row);
        for (size_t i = 0; i < 7 * row; i++) ws[i] = dst0[i], ms[i] = fabs(dst0[i]);
        for (size_t i = 0; i < 9; i++)
            for (size_t j = 0; j < row; j++) {
                ws[(size_t)to[i] * row + j] += (double)w[i] * src[i * row + j];
                ms[(size_t)to[i] * row + j] += fabs((double)w[i] * src[i * row + j]);
            }
        cmp("scatter_add_rows", gs, ws, ms, 7 * row);
        B->free(B, dsrc), B->free(B, ddst), B->free(B, dcache), B->free(B, dd);
        free(src), free(got), free(want), free(cache), free(gc), free(dst0), free(gs), free(ws), free(ms);
    }
}

static void test_zero_add(void) {
    size_t ns[] = {1, 7, 65, 1000};
    for (size_t c = 0; c < N_OF(ns); c++) {
        size_t n = ns[c], N = n + 5;
        snprintf(desc, sizeof desc, "n=%zu of %zu", n, N);
        float *y = hrand(N, 1.0f), *x = hrand(N, 1.0f), *dy = dev(y, N), *dx = dev(x, N);
        B->add(B, dy, dx, n);
        synced("add");
        float *got = down(dy, N);
        double *want = dnew(N), *mag = dnew(N);
        for (size_t i = 0; i < N; i++) {
            want[i] = i < n ? (double)y[i] + x[i] : y[i];
            mag[i] = i < n ? fabs(y[i]) + fabs(x[i]) : 0;
        }
        cmp("add", got, want, mag, N);
        B->zero(B, dy, n);
        synced("zero");
        float *gz = down(dy, N);
        for (size_t i = 0; i < N; i++) want[i] = i < n ? 0 : y[i];
        cmp("zero", gz, want, NULL, N);
        B->free(B, dy), B->free(B, dx);
        free(y), free(x), free(got), free(gz), free(want), free(mag);
    }
}

static void test_copy_rows_sigmoid_mul(void) {
    struct { size_t rows, n, ss, ds; } cs[] = {{1, 1, 1, 1}, {5, 7, 7, 7}, {5, 7, 10, 9}, {3, 17, 33, 20}, {64, 5, 65, 5}};
    for (size_t c = 0; c < N_OF(cs); c++) {
        size_t rows = cs[c].rows, n = cs[c].n, ss = cs[c].ss, ds = cs[c].ds;
        snprintf(desc, sizeof desc, "rows=%zu n=%zu src_stride=%zu dst_stride=%zu", rows, n, ss, ds);
        float *src = hrand(rows * ss, 1.0f), *dst = hrand(rows * ds, 1.0f);
        float *dsrc = dev(src, rows * ss), *ddst = dev(dst, rows * ds);
        B->copy_rows(B, ddst, ds, dsrc, ss, rows, n);
        synced("copy_rows");
        float *got = down(ddst, rows * ds);
        for (size_t r = 0; r < rows; r++) memcpy(dst + r * ds, src + r * ss, n * sizeof(float));
        cmp_f("copy_rows", got, dst, rows * ds);
        /* sigmoid_mul with the gates read at stride ss out of src */
        snprintf(desc, sizeof desc, "rows=%zu n=%zu g_stride=%zu", rows, n, ss);
        for (size_t i = 0; i < rows * ss; i++) src[i] *= 8.0f;
        float *y = hrand(rows * n, 2.0f), *dy = dev(y, rows * n);
        B->upload(B, dsrc, src, rows * ss * sizeof(float));
        B->sigmoid_mul(B, dy, dsrc, ss, rows, n);
        synced("sigmoid_mul");
        float *gy = down(dy, rows * n);
        double *want = dnew(rows * n), *mag = dnew(rows * n);
        for (size_t r = 0; r < rows; r++)
            for (size_t i = 0; i < n; i++) {
                double g = src[r * ss + i];
                want[r * n + i] = y[r * n + i] / (1 + exp(-g));
                mag[r * n + i] = fabs(want[r * n + i]) * (1 + fabs(g));
            }
        cmp("sigmoid_mul", gy, want, mag, rows * n);
        B->free(B, dsrc), B->free(B, ddst), B->free(B, dy);
        free(src), free(dst), free(got), free(y), free(gy), free(want), free(mag);
    }
}

/* ---- Gated DeltaNet pieces ---- */

static void test_conv1d(void) {
    struct { size_t C, K, T1, T2; int silu; } cs[] = {{1, 1, 1, 3, 0},  {5, 4, 1, 3, 1},  {33, 4, 3, 5, 1},
                                                      {7, 3, 2, 1, 0},  {17, 4, 9, 4, 0}, {5, 1, 4, 4, 1},
                                                      {6, 5, 1, 1, 1},  {1100, 4, 64, 5, 1}, {40, 16, 35, 17, 1}};
    for (size_t c = 0; c < N_OF(cs); c++) {
        size_t C = cs[c].C, K = cs[c].K, S = K - 1, T1 = cs[c].T1, T2 = cs[c].T2, T = T1 + T2;
        int silu = cs[c].silu;
        snprintf(desc, sizeof desc, "C=%zu K=%zu T=%zu+%zu silu=%d", C, K, T1, T2, silu);
        /* xx = [state0; x] as one host array; x = xx + S * C */
        float *xx = hrand((S + T) * C, 2.0f), *w = hrand(C * K, 1.0f), *x = xx + S * C;
        double *want = dnew(T * C), *mag = dnew(T * C);
        for (size_t t = 0; t < T; t++)
            for (size_t ch = 0; ch < C; ch++) {
                double s = 0, m = 0;
                for (size_t j = 0; j < K; j++) {
                    s += (double)w[ch * K + j] * xx[(t + j) * C + ch];
                    m += fabs((double)w[ch * K + j] * xx[(t + j) * C + ch]);
                }
                want[t * C + ch] = silu ? s / (1 + exp(-s)) : s;
                mag[t * C + ch] = silu ? 1.1 * m : m;
            }
        float *dx = dev(x, T * C), *dw = dev(w, C * K), *dy = dev(NULL, T * C);
        for (int split = 0; split < 2; split++) { /* one call over T, then two calls T1 + T2 */
            float *dst = dev(xx, S * C);
            if (split) {
                B->conv1d_causal(B, dy, dx, dst, dw, T1, C, K, silu);
                synced("conv1d_causal");
                float *st = down(dst, S * C);
                cmp_f("conv1d_causal state", st, xx + T1 * C, S * C); /* the last K-1 rows of [state0; x1] */
                free(st);
                B->conv1d_causal(B, dy + T1 * C, dx + T1 * C, dst, dw, T2, C, K, silu);
            } else {
                B->conv1d_causal(B, dy, dx, dst, dw, T, C, K, silu);
            }
            synced("conv1d_causal");
            float *got = down(dy, T * C), *st = down(dst, S * C);
            cmp("conv1d_causal", got, want, mag, T * C);
            cmp_f("conv1d_causal state", st, xx + T * C, S * C);
            B->free(B, dst);
            free(got), free(st);
        }
        B->free(B, dx), B->free(B, dw), B->free(B, dy);
        free(xx), free(w), free(want), free(mag);
    }
}

static void test_gdn_gates(void) {
    size_t Ts[] = {1, 3, 5}, ns[] = {1, 4, 17};
    for (size_t a_ = 0; a_ < N_OF(Ts); a_++)
        for (size_t b_ = 0; b_ < N_OF(ns); b_++)
            for (int alias = 0; alias < 2; alias++) {
                size_t T = Ts[a_], n = ns[b_], N = T * n;
                snprintf(desc, sizeof desc, "T=%zu n=%zu g==a,beta==bl:%d", T, n, alias);
                float *a = hrand(N, 5.0f), *bl = hrand(N, 6.0f), *A = hrand(n, 1.0f), *dt = hrand(n, 1.0f);
                a[0] = 25.0f; /* softplus past its linear threshold */
                if (N > 1) a[1] = -30.0f;
                float *da = dev(a, N), *dbl = dev(bl, N), *dA = dev(A, n), *ddt = dev(dt, n);
                float *dg = alias ? da : dev(NULL, N), *dbeta = alias ? dbl : dev(NULL, N);
                B->gdn_gates(B, dg, dbeta, da, dbl, dA, ddt, T, n);
                synced("gdn_gates");
                float *gg = down(dg, N), *gb = down(dbeta, N);
                double *wg = dnew(N), *mg = dnew(N), *wb = dnew(N), *mb = dnew(N);
                for (size_t t = 0; t < T; t++)
                    for (size_t h = 0; h < n; h++) {
                        size_t i = t * n + h;
                        double z = (double)a[i] + dt[h];
                        wg[i] = -exp(A[h]) * log1p(exp(z));
                        mg[i] = fabs(wg[i]) * (1 + fabs(a[i]) + fabs(dt[h]));
                        wb[i] = 1 / (1 + exp(-(double)bl[i]));
                        mb[i] = wb[i] * (1 + fabs(bl[i]));
                    }
                cmp("gdn_gates g", gg, wg, mg, N);
                cmp("gdn_gates beta", gb, wb, mb, N);
                B->free(B, da), B->free(B, dbl), B->free(B, dA), B->free(B, ddt);
                if (!alias) B->free(B, dg), B->free(B, dbeta);
                free(a), free(bl), free(A), free(dt), free(gg), free(gb), free(wg), free(mg), free(wb), free(mb);
            }
}

static void test_gated_delta(void) {
    struct { size_t T1, T2, nk, nv, dk, dv; int l2; } cs[] = {
        {1, 3, 1, 1, 1, 1, 1},  {3, 5, 2, 4, 7, 5, 1},    {4, 1, 2, 2, 17, 33, 0},
        {5, 4, 1, 2, 64, 65, 1}, {2, 7, 3, 3, 16, 8, 0}, {64, 9, 2, 4, 32, 33, 1},
        {40, 1, 2, 4, 128, 128, 1}, /* Qwen3.5's head dims */
    };
    for (size_t c = 0; c < N_OF(cs); c++) {
        size_t T1 = cs[c].T1, T = T1 + cs[c].T2, nk = cs[c].nk, nv = cs[c].nv, dk = cs[c].dk, dv = cs[c].dv;
        size_t koff = nk * dk, voff = 2 * nk * dk, stride = voff + nv * dv + 3, NS = nv * dk * dv, NO = T * nv * dv;
        int l2 = cs[c].l2;
        float qs = 1.0f / sqrtf((float)dk);
        snprintf(desc, sizeof desc, "T=%zu+%zu heads k/v=%zu/%zu dims k/v=%zu/%zu l2norm=%d stride=%zu", T1, T - T1,
                 nk, nv, dk, dv, l2, stride);
        float *mix = hrand(T * stride, 1.0f), *g = xmalloc(T * nv * sizeof *g), *beta = xmalloc(T * nv * sizeof *g);
        float *S0 = hrand(NS, 0.5f);
        if (!l2) /* keep the recurrence contracting without normalization: |k|^2 <= 1 */
            for (size_t t = 0; t < T; t++)
                for (size_t i = 0; i < nk * dk; i++) mix[t * stride + koff + i] *= qs;
        for (size_t i = 0; i < T * nv; i++) g[i] = -2.0f * urand(), beta[i] = urand();
        /* reference, with M the same recurrence on magnitudes */
        double *S = dnew(NS), *M = dnew(NS), *want = dnew(NO), *mag = dnew(NO), *q = dnew(dk), *k = dnew(dk);
        double *d = dnew(dv), *dm = dnew(dv);
        for (size_t i = 0; i < NS; i++) S[i] = S0[i], M[i] = fabs(S0[i]);
        for (size_t t = 0; t < T; t++)
            for (size_t h = 0; h < nv; h++) {
                const float *qt = mix + t * stride + (h / (nv / nk)) * dk, *kt = qt + koff, *vt = mix + t * stride + voff + h * dv;
                double nq = 0, nkk = 0, decay = exp(g[t * nv + h]), bt = beta[t * nv + h];
                for (size_t i = 0; i < dk; i++) nq += (double)qt[i] * qt[i], nkk += (double)kt[i] * kt[i];
                nq = l2 ? 1 / sqrt(nq + 1e-6) : 1, nkk = l2 ? 1 / sqrt(nkk + 1e-6) : 1;
                for (size_t i = 0; i < dk; i++) q[i] = qt[i] * nq * qs, k[i] = kt[i] * nkk;
                double *Sh = S + h * dk * dv, *Mh = M + h * dk * dv;
                for (size_t j = 0; j < dv; j++) d[j] = vt[j], dm[j] = fabs(vt[j]);
                for (size_t i = 0; i < dk; i++)
                    for (size_t j = 0; j < dv; j++) {
                        Sh[i * dv + j] *= decay, Mh[i * dv + j] *= decay;
                        d[j] -= Sh[i * dv + j] * k[i], dm[j] += Mh[i * dv + j] * fabs(k[i]);
                    }
                for (size_t j = 0; j < dv; j++) want[(t * nv + h) * dv + j] = mag[(t * nv + h) * dv + j] = 0;
                for (size_t i = 0; i < dk; i++)
                    for (size_t j = 0; j < dv; j++) {
                        Sh[i * dv + j] += k[i] * bt * d[j], Mh[i * dv + j] += fabs(k[i]) * bt * dm[j];
                        want[(t * nv + h) * dv + j] += Sh[i * dv + j] * q[i];
                        mag[(t * nv + h) * dv + j] += Mh[i * dv + j] * fabs(q[i]);
                    }
            }
        float *dmix = dev(mix, T * stride), *dg = dev(g, T * nv), *db = dev(beta, T * nv), *dout = dev(NULL, NO);
        float *got0 = NULL, *st0 = NULL;
        /* one call over T, two calls T1 + T2, a call per token: the same values, bit for bit */
        for (int split = 0; split < 3; split++) {
            float *dS = dev(S0, NS);
            for (size_t t0 = 0; t0 < T;) {
                size_t n = split == 2 ? 1 : split && t0 == 0 ? T1 : T - t0;
                const float *row = dmix + t0 * stride;
                ck_gdn_args a = {.q = row, .k = row + koff, .v = row + voff, .q_stride = stride, .k_stride = stride,
                                 .v_stride = stride, .g = dg + t0 * nv, .beta = db + t0 * nv, .state = dS,
                                 .out = dout + t0 * nv * dv, .T = n, .n_k_heads = nk, .n_v_heads = nv,
                                 .k_head_dim = dk, .v_head_dim = dv, .l2norm = l2, .q_scale = qs};
                B->gated_delta(B, &a);
                synced("gated_delta");
                t0 += n;
            }
            float *got = down(dout, NO), *st = down(dS, NS);
            cmp("gated_delta", got, want, mag, NO);
            cmp("gated_delta state", st, S, M, NS);
            if (split) {
                cmp_f("gated_delta (calls)", got, got0, NO);
                cmp_f("gated_delta state (calls)", st, st0, NS);
                free(got), free(st);
            } else
                got0 = got, st0 = st;
            B->free(B, dS);
        }
        free(got0), free(st0);
        B->free(B, dmix), B->free(B, dg), B->free(B, db), B->free(B, dout);
        free(mix), free(g), free(beta), free(S0), free(S), free(M), free(want), free(mag), free(q), free(k), free(d),
            free(dm);
    }
}

/* ---- MoE routing ---- */

static void test_moe_route(void) {
    struct { size_t T, E, K; int norm; } cs[] = {{1, 1, 1, 0}, {1, 8, 2, 1}, {5, 8, 2, 0}, {3, 60, 4, 1},
                                                 {64, 128, 8, 1}, {7, 5, 5, 0}, {2, 3, 2, 1}};
    for (size_t c = 0; c < N_OF(cs); c++) {
        size_t T = cs[c].T, E = cs[c].E, K = cs[c].K;
        int norm = cs[c].norm;
        snprintf(desc, sizeof desc, "T=%zu E=%zu K=%zu norm=%d", T, E, K, norm);
        float *l = hrand(T * E, 4.0f);
        for (size_t i = 0; i < T * E; i++) l[i] = roundf(l[i] * 2.0f) / 2.0f; /* ties */
        float *dl = dev(l, T * E), *dw = dev(NULL, T * K);
        int32_t *dch = dev_bytes(NULL, T * K * sizeof(int32_t)), *ch = xmalloc(T * K * sizeof *ch);
        B->moe_route(B, dch, dw, dl, T, E, K, norm);
        synced("moe_route");
        B->download(B, ch, dch, T * K * sizeof *ch);
        float *got = down(dw, T * K);
        double *want = dnew(T * K), *mag = dnew(T * K);
        size_t wrong = 0;
        for (size_t t = 0; t < T; t++) {
            const float *r = l + t * E;
            double mx = -INFINITY, sum = 0, picked = 0;
            for (size_t e = 0; e < E; e++) mx = r[e] > mx ? r[e] : mx;
            for (size_t e = 0; e < E; e++) sum += exp((double)r[e] - mx);
            for (size_t k = 0; k < K; k++) { /* the k-th largest: larger logits, or equal ones at lower index */
                size_t e = (size_t)ch[t * K + k] < E ? (size_t)ch[t * K + k] : 0, rank = 0;
                for (size_t f = 0; f < E; f++) rank += r[f] > r[e] || (r[f] == r[e] && f < e);
                wrong += rank != k || (size_t)ch[t * K + k] >= E;
                want[t * K + k] = exp((double)r[e] - mx) / sum;
                picked += want[t * K + k];
            }
            for (size_t k = 0; k < K; k++) {
                if (norm) want[t * K + k] /= picked;
                mag[t * K + k] = want[t * K + k];
            }
        }
        CK_EXPECT(wrong == 0, "moe_route %s: %zu experts out of rank order", desc, wrong);
        cmp("moe_route", got, want, mag, T * K);
        B->free(B, dl), B->free(B, dw), B->free(B, dch);
        free(l), free(ch), free(got), free(want), free(mag);
    }
}

/* ---- greedy sampling ---- */

/* argmax against ck_argmax: rows of awkward lengths, at an unaligned start too (the scalar head and tail of
 * a vectorized kernel), with many ties, the largest value repeated (the first wins, also +0 after -0), and
 * the output head's shape (151 936 logits, up to 8 rows). */
static void test_argmax(void) {
    /* (calls of other row counts after each other: a kernel keeping per-row state between launches) */
    struct { size_t rows, n, off; } cs[] = {{1, 1, 0}, {1, 3, 0}, {2, 5, 1}, {5, 1001, 0}, {3, 4099, 3},
                                            {8, 151936, 0}, {1, 151936, 1}, {2, 70000, 2}, {4, 300001, 3},
                                            {3, 151936, 0}, {8, 151936, 0}};
    for (size_t c = 0; c < N_OF(cs); c++) {
        size_t R = cs[c].rows, n = cs[c].n, off = cs[c].off;
        snprintf(desc, sizeof desc, "%zu rows of %zu at +%zu", R, n, off);
        float *x = hrand(off + R * n, 8.0f);
        for (size_t i = 0; i < off + R * n; i++) x[i] = roundf(x[i] * 4.0f) / 4.0f; /* ties everywhere */
        for (size_t r = 0; r < R; r++) {
            float *row = x + off + r * n;
            switch ((r + c) % 6) {
            case 0: break;
            case 1: for (size_t i = 0; i < n; i++) row[i] = 3.0f; break; /* all equal: 0 */
            case 2: /* the largest at the end, and again near the start */
                row[n - 1] = 100.0f;
                row[n / 3] = 100.0f;
                break;
            case 3: /* -0 before +0, everything else negative */
                for (size_t i = 0; i < n; i++) row[i] = -1.0f - (float)(i % 7);
                row[(n - 1) / 2] = -0.0f;
                row[n - 1] = 0.0f;
                break;
            case 4: row[n - 1] = 50.0f; break; /* alone at the end (a scalar tail) */
            case 5: row[n > 5 ? n - 5 : 0] = 60.0f; break; /* near it (the last float4s) */
            }
        }
        float *dx = dev(x, off + R * n);
        int32_t *t = xmalloc(R * sizeof *t);
        for (size_t r = 0; r < R; r++) t[r] = -1; /* (a row the kernel leaves unwritten shows) */
        int32_t *dt = dev_bytes(t, R * sizeof(int32_t));
        B->argmax(B, dt, dx + off, R, n);
        synced("argmax");
        B->download(B, t, dt, R * sizeof *t);
        for (size_t r = 0; r < R; r++) {
            int32_t want = ck_argmax(x + off + r * n, n);
            CK_EXPECT(t[r] == want, "argmax %s: row %zu: %d, want %d", desc, r, t[r], want);
        }
        B->free(B, dx), B->free(B, dt);
        free(x), free(t);
    }
}

/* An output head of 8 rows over long inputs (more than a GEMV stages in shared memory on a GPU): its check
 * reports a NaN in the logits with the check's tag, and without one the argmax follows the logits. */
static void test_head_check(void) {
    size_t T = 8, n_in = 4096, V = 300;
    snprintf(desc, sizeof desc, "head T=%zu n_in=%zu V=%zu", T, n_in, V);
    double *vals = dnew(V * n_in);
    hw W;
    weight_new(&W, CK_BF16, V, n_in, vals);
    float *x = hrand(T * n_in, 1.0f), *dx = dev(x, T * n_in), *dy = dev(NULL, T * V);
    int32_t *dt = dev_bytes(NULL, T * sizeof(int32_t)), top[8];
    B->matmul(B, dy, dx, &W.t, NULL, T);
    B->check_finite(B, dy, T * V, 11);
    B->argmax(B, dt, dy, T, V);
    synced("head");
    float *y = down(dy, T * V);
    B->download(B, top, dt, T * sizeof *top);
    for (size_t t = 0; t < T; t++)
        CK_EXPECT(top[t] == ck_argmax(y + t * V, V), "%s: row %zu: argmax %d, want %d", desc, t, top[t], ck_argmax(y + t * V, V));
    float nanv = NAN;
    B->upload(B, dx + T * n_in - 1, &nanv, sizeof nanv);
    B->matmul(B, dy, dx, &W.t, NULL, T);
    B->check_finite(B, dy, T * V, 11);
    B->argmax(B, dt, dy, T, V);
    int tag = 0;
    char err[256] = "";
    int rc = B->sync(B, &tag, err, sizeof err);
    CK_EXPECT(rc == -1 && tag == 11, "%s: a NaN in the logits: sync returned %d, tag %d", desc, rc, tag);
    weight_free(&W);
    B->free(B, dx), B->free(B, dy), B->free(B, dt);
    free(vals), free(x), free(y);
}

/* ---- memory ops and the error channel ---- */

static void test_memory(void) {
    size_t n = 37;
    snprintf(desc, sizeof desc, "%zu floats", n);
    float *h = hrand(n, 1.0f), *d1 = dev(h, n), *d2 = dev(NULL, n), *zeros = xmalloc(n * sizeof(float));
    float *g2 = down(d2, n);
    cmp_f("alloc (zeroed)", g2, zeros, n);
    B->copy(B, d2 + 3, d1 + 5, 17 * sizeof(float));
    B->clear(B, d1 + 2, 9 * sizeof(float));
    synced("copy/clear");
    float *g1 = down(d1, n), *g2b = down(d2, n), *w2 = xmalloc(n * sizeof(float));
    memcpy(w2 + 3, h + 5, 17 * sizeof(float));
    cmp_f("copy", g2b, w2, n);
    memset(h + 2, 0, 9 * sizeof(float));
    cmp_f("clear", g1, h, n);
    B->download(B, w2, d1 + 20, 4 * sizeof(float)); /* partial transfers at offsets */
    B->upload(B, d2 + 30, w2, 4 * sizeof(float));
    synced("upload/download");
    float *g3 = down(d2 + 30, 4);
    cmp_f("upload/download at offsets", g3, h + 20, 4);
    B->free(B, d1), B->free(B, d2);
    free(h), free(zeros), free(g1), free(g2), free(g2b), free(w2), free(g3);
}

/* copy_peer: from a second instance of the same backend (CK_TEST_DEVICE2, default the same device), at
 * offsets, after work done on that instance (a clear) and synced there, into this one. */
static void test_copy_peer(const char *kind) {
    if (!B->copy_peer) {
        printf("copy_peer: none on %s (rows between its instances go through the host)\n", B->name);
        return;
    }
    const char *d2 = getenv("CK_TEST_DEVICE2");
    ck_backend *from;
    char err[256];
    if (ck_backend_create(kind, d2 && *d2 ? atoi(d2) : 0, &from, err, sizeof err) != 0) {
        CK_EXPECT(0, "a second %s instance: %s", kind, err);
        return;
    }
    CK_EXPECT(from->copy_peer == B->copy_peer, "two instances of %s with different copy_peer ops", B->name);
    size_t n = 4099;
    snprintf(desc, sizeof desc, "%zu floats", n);
    float *h = hrand(n, 1.0f), *src = from->alloc(from, n * sizeof *src), *dst = dev(NULL, n);
    CK_EXPECT(src != NULL, "alloc on the second instance");
    if (src) {
        from->upload(from, src, h, n * sizeof *h);
        from->clear(from, src + 100, 50 * sizeof *src);
        CK_EXPECT(from->sync(from, NULL, err, sizeof err) == 0, "sync of the second instance: %s", err);
        B->copy_peer(B, dst + 1, from, src + 7, (n - 8) * sizeof *src);
        synced("copy_peer");
        float *got = down(dst, n), *want = xmalloc(n * sizeof *want);
        memset(want, 0, n * sizeof *want);
        memcpy(want + 1, h + 7, (n - 8) * sizeof *h);
        memset(want + 1 + 93, 0, 50 * sizeof *want);
        cmp_f("copy_peer", got, want, n);
        free(got), free(want);
        from->free(from, src);
    }
    B->free(B, dst);
    free(h);
    from->destroy(from);
}

static void test_errors(void) {
    size_t n = 65;
    float *h = hrand(n, 1.0f), *d = dev(h, n);
    int tag = 0;
    char err[256] = "";
    snprintf(desc, sizeof desc, "check_finite");
    B->check_finite(B, d, n, 7);
    synced("check_finite of a finite buffer");
    h[n - 1] = NAN;
    B->upload(B, d, h, n * sizeof *h);
    B->check_finite(B, d, n - 1, 7); /* the NaN is past the n checked */
    synced("check_finite short of the NaN");
    B->check_finite(B, d, n, 7);
    int rc = B->sync(B, &tag, err, sizeof err);
    CK_EXPECT(rc == -1 && tag == 7 && err[0], "NaN: sync returned %d, tag %d, '%s'", rc, tag, err);
    rc = B->sync(B, &tag, err, sizeof err);
    CK_EXPECT(rc == 0 && tag == CK_TAG_NONE, "sync after a reported failure returned %d (tag %d)", rc, tag);
    h[n - 1] = 1.0f, h[3] = -INFINITY;
    B->upload(B, d, h, n * sizeof *h);
    B->check_finite(B, d, n, CK_TAG_HEAD); /* the first failure wins */
    B->check_finite(B, d, n, 3);
    err[0] = 0;
    rc = B->sync(B, &tag, err, sizeof err);
    CK_EXPECT(rc == -1 && tag == CK_TAG_HEAD && err[0], "-inf: sync returned %d, tag %d, '%s'", rc, tag, err);
    rc = B->sync(B, NULL, err, sizeof err);
    CK_EXPECT(rc == 0, "second sync (tag NULL) returned %d", rc);
    B->free(B, d);
    free(h);
    /* a dtype the backend cannot know must fail with a message, not crash */
    ck_dtype bad[] = {CK_DTYPE_COUNT, (ck_dtype)99};
    uint8_t mem[64] = {0};
    for (size_t i = 0; i < N_OF(bad); i++) {
        ck_tensor t = {.dtype = bad[i], .ndim = 2, .shape = {2, 4}, .data = mem};
        err[0] = 0;
        rc = B->prepare_weight(B, &t, err, sizeof err);
        CK_EXPECT(rc != 0 && err[0], "prepare_weight of dtype %d returned %d, '%s'", (int)bad[i], rc, err);
    }
}

/* Each test starts from the same random state, so its data does not depend on which tests ran before it
 * (CK_TEST_ONLY runs a test on the data it gets in the full run). */
static void reseed(void) { rng = 20240611u; }

/* CK_TEST_ONLY=name,name...: only those tests (names without test_), to narrow a failure down */
static int wanted(const char *name) {
    const char *only = getenv("CK_TEST_ONLY");
    if (!only || !*only) return 1;
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)) != NULL; p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

int main(void) {
    const char *kind = getenv("CK_TEST_BACKEND"), *dev_s = getenv("CK_TEST_DEVICE");
    char err[256] = "";
    if (!kind || !*kind) kind = "cpu";
    const char *exact = getenv("CAKE_EXACT");
    if (!exact) setenv("CAKE_EXACT", "1", 1); /* the exact path unless a run asks for the fast one */
    else if (!strcmp(exact, "0")) mm_rtol = 1.0 / 256;
    if (ck_backend_create(kind, dev_s && *dev_s ? atoi(dev_s) : 0, &B, err, sizeof err) != 0) {
        fprintf(stderr, "test_backend: cannot create backend '%s': %s\n", kind, err);
        return 1;
    }
    printf("backend: %s (CK_TEST_BACKEND=%s)\n", B->name, kind);
    on_cpu = !strcmp(kind, "cpu");
    if (wanted("memory")) reseed(), test_memory();
    if (wanted("copy_peer")) reseed(), test_copy_peer(kind);
    if (wanted("embed")) reseed(), test_embed();
    if (wanted("matmul")) reseed(), test_matmul();
    if (wanted("matmul_invariance")) reseed(), test_matmul_invariance();
    if (wanted("matmul_n")) reseed(), test_matmul_n();
    if (wanted("weight_rows")) reseed(), test_weight_rows();
    if (wanted("rmsnorm")) reseed(), test_rmsnorm();
    if (wanted("rmsnorm_gated")) reseed(), test_rmsnorm_gated();
    if (wanted("rope")) reseed(), test_rope();
    if (wanted("attention")) reseed(), test_attention();
    if (wanted("attention_split")) reseed(), test_attention_split();
    if (wanted("glu")) reseed(), test_glu();
    if (wanted("rows")) reseed(), test_rows();
    if (wanted("zero_add")) reseed(), test_zero_add();
    if (wanted("copy_rows_sigmoid_mul")) reseed(), test_copy_rows_sigmoid_mul();
    if (wanted("conv1d")) reseed(), test_conv1d();
    if (wanted("gdn_gates")) reseed(), test_gdn_gates();
    if (wanted("gated_delta")) reseed(), test_gated_delta();
    if (wanted("moe_route")) reseed(), test_moe_route();
    if (wanted("argmax")) reseed(), test_argmax();
    if (wanted("head_check")) reseed(), test_head_check();
    if (wanted("quant_types")) reseed(), test_quant_types();
    if (wanted("fused_chains")) reseed(), test_fused_chains();
    if (wanted("gdn_chain")) reseed(), test_gdn_chain();
    if (wanted("errors")) reseed(), test_errors(); /* last: prepare_weight of unknown dtypes */
    for (size_t i = 0; i < n_stats; i++) printf("  %-26s worst |err| / mag = %.3g\n", stats[i].op, stats[i].worst);
    ck_backend_destroy(B);
    return ck_test_done("test_backend");
}
