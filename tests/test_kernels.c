/* test_kernels.c — every CPU kernel set against the scalar reference: one-row dot products and the
 * matmul kernels (exact and fast; T x rows outputs around the register tiles) of each weight dtype over
 * lengths around the SIMD block sizes (tails included), within f32 summation-order rounding; packed
 * activations byte-equal to the reference packing; the GLU and RMSNorm row kernels; axpy and grouped
 * attention. */
#include "backend/cpu/kernels.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng = 12345;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

static uint16_t to_f16(float f) { /* values in [-1, 1]: normal or zero halves */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, e = (u >> 23) & 0xff, man = (u >> 13) & 0x3ff;
    if (e < 127 - 14) return (uint16_t)sign;
    return (uint16_t)(sign | ((e - 127 + 15) << 10) | man);
}

/* Every set's one-row dot products against the reference over lengths around the SIMD block sizes. */
static void check_dots(const ck_cpu_kernels *const *sets, size_t n_sets) {
    size_t lens[] = {0, 1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 127, 1000, 1024, 4099};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        float *x = malloc((n + 1) * sizeof *x), *wf = malloc((n + 1) * sizeof *wf);
        uint16_t *wb = malloc((n + 1) * 2), *wh = malloc((n + 1) * 2);
        double mag = 0;
        for (size_t i = 0; i < n; i++) {
            x[i] = frand(), wf[i] = frand(), wb[i] = to_bf16(wf[i]), wh[i] = to_f16(wf[i]);
            mag += fabs(x[i] * wf[i]);
        }
        const void *w[CK_DTYPE_COUNT] = {[CK_F32] = wf, [CK_F16] = wh, [CK_BF16] = wb};
        for (int dt = 0; dt < CK_DTYPE_COUNT; dt++) {
            if (ck_dtype_is_quant((ck_dtype)dt)) continue; /* test_quant checks those */
            double want = ck_dot_ref(x, w[dt], (ck_dtype)dt, n);
            for (size_t s = 0; s < n_sets; s++) {
                double got = sets[s]->dot[dt](x, w[dt], n);
                CK_EXPECT(fabs(got - want) <= 1e-5 * (mag + 1), "%s dot %s n=%zu: %.9g vs %.9g", sets[s]->name,
                          ck_dtype_name((ck_dtype)dt), n, got, want);
            }
        }
        free(x), free(wf), free(wb), free(wh);
    }
}

/* One matmul kernel against the reference kernel ref on T x rows outputs of length n, through the
 * kernels' own packing, within tol * sum |x w| (fast: the reference of the same rounding). */
static void check_gemm(const char *what, const ck_mm_kernel *mk, const ck_mm_kernel *ref, ck_dtype dt,
                       const float *x, const void *w, const float *wf, size_t T, size_t rows, size_t n,
                       const float *bias, double tol) {
    size_t rb = 0, as = n * sizeof(float), ras = as;
    ck_dtype_row_bytes(dt, n, &rb);
    if (mk->pack) as = mk->act_row_bytes(n);
    if (ref->pack) ras = ref->act_row_bytes(n);
    uint8_t *a = malloc(mk->pack_batch ? mk->act_batch_bytes(n, T) : T * as + 1), *ra = malloc(T * ras + 1);
    if (mk->pack_batch) mk->pack_batch(a, x, n, T, 0, T);
    for (size_t t = 0; t < T; t++) {
        if (mk->pack_batch) (void)0;
        else if (mk->pack) mk->pack(a + t * as, x + t * n, n);
        else memcpy(a + t * as, x + t * n, n * sizeof(float));
        if (ref->pack) ref->pack(ra + t * ras, x + t * n, n);
        else memcpy(ra + t * ras, x + t * n, n * sizeof(float));
    }
    if (mk->pack && ref->pack && as == ras)
        CK_EXPECT(memcmp(a, ra, T * as) == 0, "%s %s n=%zu: packed activations differ from the reference", what,
                  ck_dtype_name(dt), n);
    float *y = malloc((T * rows + 1) * sizeof *y), *want = malloc((T * rows + 1) * sizeof *want);
    /* decode read row by row (AMD CPUs) or in tiles with prefetches: the same bits */
    ck_cpu_stream_decode_set(1);
    mk->gemm(want, rows, a, as, w, rb, n, T, rows, bias);
    ck_cpu_stream_decode_set(0);
    mk->gemm(y, rows, a, as, w, rb, n, T, rows, bias);
    ck_cpu_stream_decode_set(-1);
    CK_EXPECT(memcmp(y, want, T * rows * sizeof *y) == 0, "%s %s T=%zu rows=%zu n=%zu: row-by-row decode differs from tiles",
              what, ck_dtype_name(dt), T, rows, n);
    ref->gemm(want, rows, ra, ras, w, rb, n, T, rows, bias);
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < rows; j++) {
            double mag = bias ? fabs(bias[j]) : 0;
            for (size_t i = 0; i < n; i++) mag += fabs(x[t * n + i] * wf[j * n + i]);
            double e = fabs((double)y[t * rows + j] - want[t * rows + j]);
            CK_EXPECT(e <= tol * (mag + 1), "%s %s T=%zu rows=%zu n=%zu (%zu, %zu): %.9g vs %.9g", what,
                      ck_dtype_name(dt), T, rows, n, t, j, y[t * rows + j], want[t * rows + j]);
        }
    free(a), free(ra), free(y), free(want);
}

/* Every set's matmul kernels (exact and fast) against the scalar reference: token counts and weight
 * rows around the register tiles, lengths around the SIMD blocks. The fast bf16 path is checked against
 * its own scalar definition (same rounding of the activations), and the fast path against the exact
 * reference within bf16 activation rounding (2^-8 of sum |x w|). */
static void check_gemms(const ck_cpu_kernels *const *sets, size_t n_sets) {
    size_t Ts[] = {1, 3, 4, 5, 9}, rowss[] = {1, 5, 6, 7, 13}, lens[] = {1, 15, 16, 17, 31, 32, 33, 65, 130, 1000};
    const ck_cpu_kernels *ref = ck_cpu_kernels_ref();
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
            for (size_t ri = 0; ri < sizeof rowss / sizeof rowss[0]; ri++) {
                size_t n = lens[li], T = Ts[ti], rows = rowss[ri];
                float *x = malloc(T * n * sizeof *x), *wf = malloc(rows * n * sizeof *wf), *bias = malloc(rows * 4);
                uint16_t *wb = malloc(rows * n * 2), *wh = malloc(rows * n * 2);
                for (size_t i = 0; i < T * n; i++) x[i] = frand();
                for (size_t i = 0; i < rows * n; i++) wf[i] = frand(), wb[i] = to_bf16(wf[i]), wh[i] = to_f16(wf[i]);
                for (size_t i = 0; i < rows; i++) bias[i] = frand();
                float *wv[CK_DTYPE_COUNT] = {[CK_F32] = wf, [CK_F16] = malloc(rows * n * 4), [CK_BF16] = malloc(rows * n * 4)};
                for (size_t i = 0; i < rows * n; i++) wv[CK_F16][i] = ck_f16_to_f32(wh[i]), wv[CK_BF16][i] = ck_bf16_to_f32(wb[i]);
                const void *w[CK_DTYPE_COUNT] = {[CK_F32] = wf, [CK_F16] = wh, [CK_BF16] = wb};
                for (int dt = 0; dt < CK_DTYPE_COUNT; dt++)
                    for (size_t s = 0; s < n_sets && !ck_dtype_is_quant((ck_dtype)dt); s++) {
                        const float *b = (ri & 1) ? bias : NULL;
                        check_gemm(sets[s]->name, &sets[s]->mm[dt], &ref->mm[dt], (ck_dtype)dt, x, w[dt], wv[dt], T,
                                   rows, n, b, 1e-5);
                        if (!sets[s]->mm_fast[dt].gemm) continue;
                        check_gemm(sets[s]->name, &sets[s]->mm_fast[dt], &ref->mm_fast[dt], (ck_dtype)dt, x, w[dt],
                                   wv[dt], T, rows, n, b, 1e-5);
                        check_gemm("fast vs exact", &sets[s]->mm_fast[dt], &ref->mm[dt], (ck_dtype)dt, x, w[dt], wv[dt],
                                   T, rows, n, b, 1.0 / 256);
                    }
                free(x), free(wf), free(bias), free(wb), free(wh), free(wv[CK_F16]), free(wv[CK_BF16]);
            }
}

/* got against the reference value want: both non-finite (a NaN or an infinity; the sign and kind may
 * differ: SiLU(-inf) is NaN in the reference and -inf in a vector kernel), or within rtol * mag, plus
 * 1e-35: where exp(-z) overflows a float (z < -88.7), g u / (1 + exp(-z)) is 0 in float arithmetic (expf's
 * reference too) while the exact value can still be ~1e-36. */
static int close_to(float got, double want, double rtol, double mag) {
    if (!isfinite((float)want) || !isfinite(got)) return !isfinite((float)want) && !isfinite(got);
    return fabs((double)got - want) <= rtol * mag + 1e-35;
}

/* act(g) * u in double as g u / (1 + exp(-z)): z = g (SiLU) or 2a, a = sqrt(2/pi) (g + 0.044715 g^3)
 * (GELU-tanh: 1 + tanh(a) = 2 / (1 + exp(-2a)), free of the cancellation where tanh(a) nears -1). */
static double glu_exact(float g, float u, int act, double *z) {
    double x = g;
    *z = act == CK_ACT_GELU_TANH ? 2 * 0.7978845608028654 * (x + 0.044715 * x * x * x) : x;
    return x * u / (1 + exp(-*z));
}

/* Every set's GLU (SiLU, GELU-tanh) and RMSNorm row kernels against the reference: every tail length,
 * values over the range where the activations bend, saturate and overflow, NaN and infinities; a GLU
 * element's bits equal wherever it lies in the call (the split of elements between threads or batch rows
 * must not change it). The vector GLUs are held to a few ulp of the exact value (relative to the result,
 * and for GELU-tanh to its condition: its argument z is computed in float, and exp(-z) magnifies z's
 * rounding |z| times); the scalar reference (expf, and 1 + tanhf, which cancels) to 3e-7 of |g u| (1 + |z|). */
static void check_rowops(const ck_cpu_kernels *const *sets, size_t n_sets) {
    static const float odd[] = {0.0f, -0.0f, 88.0f, -88.0f, 90.0f, -90.0f, 104.0f, -120.0f, 1e-30f, -1e-30f,
                                3e38f, -3e38f, 1e13f, -1e13f, -20.0f, -60.0f, NAN, INFINITY, -INFINITY};
    enum { N = 150 };
    float g[N], u[N], got[N], shifted[N], w[N], want[N];
    for (size_t s = 0; s < n_sets; s++) {
        int vec = strcmp(sets[s]->name, "ref") != 0;
        for (int act = 0; act < 2; act++)
            for (size_t n = 1; n <= N; n += n < 40 ? 1 : 37) {
                for (size_t i = 0; i < n; i++) {
                    g[i] = i % 5 == 2 ? odd[(i / 5 + n) % (sizeof odd / sizeof odd[0])] : 12.0f * frand();
                    u[i] = i % 7 == 3 ? -2.5f : 3.0f * frand();
                }
                sets[s]->glu(got, g, u, n, (ck_act)act);
                size_t bad = 0, first = 0;
                double first_want = 0;
                for (size_t i = 0; i < n; i++) {
                    double z, e = glu_exact(g[i], u[i], act, &z), zc = act == CK_ACT_GELU_TANH ? fabs(z) : 0;
                    double mag = vec ? fabs(e) * (1 + zc) : fabs((double)g[i] * u[i]) * (1 + zc);
                    if (!close_to(got[i], e, vec ? 6e-7 : 3e-7, mag) && !bad++) first = i, first_want = e;
                }
                CK_EXPECT(bad == 0, "%s glu act=%d n=%zu: %zu off, first [%zu] g=%g u=%g: %.9g vs %.9g",
                          sets[s]->name, act, n, bad, first, g[first], u[first], got[first], first_want);
                if (n < 2) continue;
                sets[s]->glu(shifted, g + 1, u + 1, n - 1, (ck_act)act); /* every element one lane over */
                CK_EXPECT(!memcmp(shifted, got + 1, (n - 1) * sizeof *got), "%s glu act=%d n=%zu: an element's "
                          "bits depend on where it lies", sets[s]->name, act, n);
            }
    }
    /* RMSNorm: plain and (1 + w), in place, rows of every tail length and of large and tiny values */
    for (size_t s = 0; s < n_sets; s++)
        for (size_t n = 1; n <= N; n += n < 40 ? 1 : 37)
            for (int kind = 0; kind < 4; kind++) {
                float scale = kind == 2 ? 1e18f : kind == 3 ? 1e-20f : 1.0f;
                for (size_t i = 0; i < n; i++) g[i] = scale * frand(), w[i] = frand();
                int one_plus = kind & 1;
                ck_rmsnorm_ref(want, g, w, n, 1e-6f, one_plus);
                memcpy(got, g, n * sizeof *g);
                sets[s]->rmsnorm(got, got, w, n, 1e-6f, one_plus);
                size_t bad = 0, first = 0;
                for (size_t i = 0; i < n; i++)
                    if (!close_to(got[i], want[i], 4e-7, fabs((double)want[i])) && !bad++) first = i;
                CK_EXPECT(bad == 0, "%s rmsnorm kind=%d n=%zu: %zu off, first [%zu]: %.9g vs %.9g", sets[s]->name,
                          kind, n, bad, first, got[first], want[first]);
            }
}

int main(void) {
    const ck_cpu_kernels *const *sets = ck_cpu_kernels_all();
    size_t n_sets = 0;
    while (sets[n_sets]) printf("kernel set this CPU runs: %s\n", sets[n_sets++]->name);
    printf("picked: %s\n", ck_cpu_kernels_get()->name);
    check_dots(sets, n_sets);
    check_gemms(sets, n_sets);
    check_rowops(sets, n_sets);
    /* axpy */
    for (size_t s = 0; s < n_sets; s++) {
        float y[37], y_ref[37], x[37];
        for (size_t i = 0; i < 37; i++) y[i] = y_ref[i] = frand(), x[i] = frand();
        sets[s]->axpy(y, 0.37f, x, 37);
        ck_axpy_ref(y_ref, 0.37f, x, 37);
        double worst = 0;
        for (size_t i = 0; i < 37; i++) worst = fmax(worst, fabs(y[i] - y_ref[i]));
        CK_EXPECT(worst <= 1e-6, "%s axpy differs by %g", sets[s]->name, worst);
        /* the f16 axpy (a 16-bit KV cache's values) and the saturating f16 store, every tail length */
        for (size_t n = 1; n <= 37; n++) {
            uint16_t xh[37], got[37], want[37];
            float xs[37];
            for (size_t i = 0; i < n; i++) y[i] = y_ref[i] = frand(), xh[i] = ck_f32_to_f16(frand());
            sets[s]->axpy_f16(y, -1.5f, xh, n);
            ck_axpy_f16_ref(y_ref, -1.5f, xh, n);
            worst = 0;
            for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(y[i] - y_ref[i]));
            CK_EXPECT(worst <= 1e-6, "%s axpy_f16 n=%zu differs by %g", sets[s]->name, n, worst);
            static const float odd[] = {70000.0f, -1e30f, 65519.0f, 65520.0f, 1.00048828125f, 2.9802322e-08f,
                                        -6.1e-5f, 1e-9f, -0.0f, NAN, INFINITY, -INFINITY};
            for (size_t i = 0; i < n; i++) xs[i] = i % 3 == 1 ? odd[(i + n) % 12] : 70.0f * frand();
            sets[s]->to_f16(got, xs, n);
            ck_to_f16_ref(want, xs, n);
            CK_EXPECT(!memcmp(got, want, n * sizeof *got), "%s to_f16 n=%zu differs from the reference", sets[s]->name, n);
        }
    }

    /* grouped attention against the per-head reference: GQA groups, window, soft-capping, positions */
    struct { size_t T, pos0, nh, nkv, hd, window; float softcap; } cases[] = {
        {1, 0, 4, 2, 32, 0, 0}, {5, 3, 8, 2, 16, 0, 0}, {3, 40, 4, 4, 64, 8, 0}, {7, 9, 6, 1, 24, 0, 30.0f},
        {1, 200, 16, 8, 128, 0, 0}, {2, 100, 130, 2, 8, 50, 0}, {3, 700, 8, 2, 256, 0, 0},
        {4, 333, 4, 2, 128, 100, 50.0f}, {2, 15, 2, 1, 48, 0, 0}, {1, 0, 2, 2, 16, 0, 0},
        /* groups of 12 and 8 query heads (AVX-512 walks up to 8 heads together, then the rest) */
        {2, 60, 24, 2, 64, 0, 0}, {1, 40, 16, 2, 128, 20, 30.0f},
        /* prefill-sized: rows ending mid-block and in different blocks (tiles of query rows) */
        {20, 0, 4, 2, 64, 0, 0}, {19, 30, 16, 2, 128, 0, 0}, {17, 5, 8, 1, 32, 0, 20.0f}, {18, 10, 8, 2, 64, 12, 0},
        /* tiled (at most 128 rows): 16 tokens x 8 heads with soft-capping and head dim 32; a window that
         * does not bind; group 1 with head dim 256 */
        {16, 5, 16, 2, 32, 0, 20.0f}, {12, 3, 4, 2, 64, 40, 0}, {9, 20, 4, 4, 256, 0, 0},
        /* tiles whose rows end in different key segments (CK_ATTN_SEG), and a window that crosses one */
        {20, 250, 4, 2, 64, 0, 0}, {18, 500, 8, 2, 128, 0, 0}, {16, 760, 4, 1, 32, 0, 20.0f}, {6, 600, 4, 2, 64, 300, 0},
    };
    size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t c = 0; c < 2 * n_cases; c++) { /* over f32 caches, then f16 ones */
        ck_dtype kt = c < n_cases ? CK_F32 : CK_F16;
        if (kt == CK_F16) c -= n_cases;
        size_t T = cases[c].T, ctx = cases[c].pos0 + T, nh = cases[c].nh, nkv = cases[c].nkv, hd = cases[c].hd;
        float *q = malloc(T * nh * hd * sizeof *q), *kc = malloc(ctx * nkv * hd * sizeof *kc);
        float *vc = malloc(ctx * nkv * hd * sizeof *vc), *out = malloc(T * nh * hd * sizeof *out);
        float *want = malloc(T * nh * hd * sizeof *want);
        for (size_t i = 0; i < T * nh * hd; i++) q[i] = frand();
        for (size_t i = 0; i < ctx * nkv * hd; i++) kc[i] = frand(), vc[i] = frand();
        if (kt == CK_F16) { /* the caches as f16, in place (half the bytes of the f32 buffers) */
            uint16_t *k16 = (uint16_t *)kc, *v16 = (uint16_t *)vc;
            for (size_t i = 0; i < ctx * nkv * hd; i++) k16[i] = ck_f32_to_f16_sat(kc[i]), v16[i] = ck_f32_to_f16_sat(vc[i]);
        }
        int32_t pos[32];
        for (size_t t = 0; t < T; t++) pos[t] = (int32_t)(cases[c].pos0 + t);
        ck_attn_args a = {.q = q, .k_cache = kc, .v_cache = vc, .kv_dtype = kt, .out = want, .T = T, .pos = pos,
                          .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
                          .window = cases[c].window, .softcap = cases[c].softcap};
        for (size_t t = 0; t < T; t++)
            for (size_t h = 0; h < nh; h++) ck_attention_row_ref(&a, t, h);
        a.out = out;
        float *work = malloc(ck_attn_work_floats(&a) * sizeof *work); /* (a head alone needs less) */
        for (size_t s = 0; s < n_sets; s++) {
            for (size_t t = 0; t < T; t++)
                for (size_t g = 0; g < nkv; g++) ck_attention_group(&a, t, g, sets[s], work);
            double worst = 0;
            for (size_t i = 0; i < T * nh * hd; i++) worst = fmax(worst, fabs(out[i] - want[i]));
            CK_EXPECT(worst <= 1e-5, "%s attention case %zu (%s cache) differs by %g", sets[s]->name, c,
                      ck_dtype_name(kt), worst);
            /* each query head alone (its KV head's rows copied out as a one-head cache) gives the bits of the
             * grouped call: heads walking the keys together change nothing in any head's arithmetic */
            size_t eb = kt == CK_F16 ? 2 : 4, same = 1;
            char *k1 = malloc(ctx * hd * eb), *v1 = malloc(ctx * hd * eb);
            float one[256];
            for (size_t t = 0; t < T; t++)
                for (size_t h = 0; h < nh; h++) {
                    size_t kvh = h / (nh / nkv);
                    for (size_t j = 0; j < ctx; j++) {
                        memcpy(k1 + j * hd * eb, (char *)kc + (j * nkv + kvh) * hd * eb, hd * eb);
                        memcpy(v1 + j * hd * eb, (char *)vc + (j * nkv + kvh) * hd * eb, hd * eb);
                    }
                    ck_attn_args a1 = a;
                    a1.q = q + (t * nh + h) * hd, a1.k_cache = k1, a1.v_cache = v1, a1.out = one, a1.pos = pos + t;
                    a1.T = 1, a1.n_heads = a1.n_kv_heads = 1;
                    ck_attention_group(&a1, 0, 0, sets[s], work);
                    same &= !memcmp(one, out + (t * nh + h) * hd, hd * sizeof *one);
                }
            CK_EXPECT(same, "%s attention case %zu (%s cache): a head alone differs from the grouped call",
                      sets[s]->name, c, ck_dtype_name(kt));
            free(k1), free(v1);
            /* all query rows together (the kernel set's tiles of rows) give each row's bits alone */
            float *tiled = malloc(T * nh * hd * sizeof *tiled);
            a.out = tiled;
            for (size_t g = 0; g < nkv; g++) ck_attention_tokens(&a, 0, T, g, sets[s], work);
            a.out = out;
            CK_EXPECT(!memcmp(tiled, out, T * nh * hd * sizeof *out), "%s attention case %zu (%s cache): rows together differ from row by row",
                      sets[s]->name, c, ck_dtype_name(kt));
            free(tiled);
        }
        free(q), free(kc), free(vc), free(out), free(want), free(work);
        if (kt == CK_F16) c += n_cases;
    }
    return ck_test_done("test_kernels");
}
