/* test_kernels.c — every CPU kernel set against the scalar reference: dot products (one row, and tiles
 * of 4 activation rows x tile_w weight rows) of each weight dtype over lengths around the SIMD block sizes (tails included), within
 * f32 summation-order rounding. */
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

int main(void) {
    const ck_cpu_kernels *const *sets = ck_cpu_kernels_all();
    size_t n_sets = 0;
    while (sets[n_sets]) printf("kernel set this CPU runs: %s\n", sets[n_sets++]->name);
    printf("picked: %s\n", ck_cpu_kernels_get()->name);
    size_t lens[] = {0, 1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 127, 1000, 1024, 4099};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        /* x: 4 rows; weights: 4 rows (the others only for the tiles) */
        float *x = malloc((4 * n + 1) * sizeof *x), *wf = malloc((4 * n + 1) * sizeof *wf);
        uint16_t *wb = malloc((4 * n + 1) * 2), *wh = malloc((4 * n + 1) * 2);
        double mag = 0;
        for (size_t i = n; i < 4 * n; i++) x[i] = frand();
        for (size_t i = n; i < 4 * n; i++) wf[i] = frand(), wb[i] = to_bf16(wf[i]), wh[i] = to_f16(wf[i]);
        for (size_t i = 0; i < n; i++) {
            x[i] = frand();
            wf[i] = frand();
            wb[i] = to_bf16(wf[i]);
            wh[i] = to_f16(wf[i]);
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
                float tile[16];
                sets[s]->tile[dt](x, n, w[dt], n, n, tile);
                for (size_t j = 0; j < sets[s]->tile_w; j++)
                    for (size_t r = 0; r < 4; r++) {
                        size_t rb = 0;
                        CK_EXPECT(ck_dtype_row_bytes((ck_dtype)dt, n, &rb) == 0, "row bytes of %zu", n);
                        const void *wj = (const uint8_t *)w[dt] + j * rb;
                        double want_r = ck_dot_ref(x + r * n, wj, (ck_dtype)dt, n), mag_r = 0;
                        for (size_t i = 0; i < n; i++) mag_r += fabs(x[r * n + i] * wf[j * n + i]);
                        CK_EXPECT(fabs(tile[j * 4 + r] - want_r) <= 1e-5 * (mag_r + 1),
                                  "%s tile %s n=%zu row %zu weight %zu: %.9g vs %.9g", sets[s]->name,
                                  ck_dtype_name((ck_dtype)dt), n, r, j, tile[j * 4 + r], want_r);
                    }
            }
        }
        free(x);
        free(wf);
        free(wb);
        free(wh);
    }
    /* axpy */
    for (size_t s = 0; s < n_sets; s++) {
        float y[37], y_ref[37], x[37];
        for (size_t i = 0; i < 37; i++) y[i] = y_ref[i] = frand(), x[i] = frand();
        sets[s]->axpy(y, 0.37f, x, 37);
        ck_axpy_ref(y_ref, 0.37f, x, 37);
        double worst = 0;
        for (size_t i = 0; i < 37; i++) worst = fmax(worst, fabs(y[i] - y_ref[i]));
        CK_EXPECT(worst <= 1e-6, "%s axpy differs by %g", sets[s]->name, worst);
    }

    /* grouped attention against the per-head reference: GQA groups, window, soft-capping, positions */
    struct { size_t T, pos0, nh, nkv, hd, window; float softcap; } cases[] = {
        {1, 0, 4, 2, 32, 0, 0}, {5, 3, 8, 2, 16, 0, 0}, {3, 40, 4, 4, 64, 8, 0}, {7, 9, 6, 1, 24, 0, 30.0f},
        {1, 200, 16, 8, 128, 0, 0}, {2, 100, 130, 2, 8, 50, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t T = cases[c].T, ctx = cases[c].pos0 + T, nh = cases[c].nh, nkv = cases[c].nkv, hd = cases[c].hd;
        float *q = malloc(T * nh * hd * sizeof *q), *kc = malloc(ctx * nkv * hd * sizeof *kc);
        float *vc = malloc(ctx * nkv * hd * sizeof *vc), *out = malloc(T * nh * hd * sizeof *out);
        float *want = malloc(T * nh * hd * sizeof *want);
        for (size_t i = 0; i < T * nh * hd; i++) q[i] = frand();
        for (size_t i = 0; i < ctx * nkv * hd; i++) kc[i] = frand(), vc[i] = frand();
        int32_t pos[8];
        for (size_t t = 0; t < T; t++) pos[t] = (int32_t)(cases[c].pos0 + t);
        ck_attn_args a = {.q = q, .k_cache = kc, .v_cache = vc, .out = want, .T = T, .pos = pos,
                          .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
                          .window = cases[c].window, .softcap = cases[c].softcap};
        for (size_t t = 0; t < T; t++)
            for (size_t h = 0; h < nh; h++) ck_attention_row_ref(&a, t, h);
        a.out = out;
        for (size_t s = 0; s < n_sets; s++) {
            for (size_t t = 0; t < T; t++)
                for (size_t g = 0; g < nkv; g++) ck_attention_group(&a, t, g, sets[s]);
            double worst = 0;
            for (size_t i = 0; i < T * nh * hd; i++) worst = fmax(worst, fabs(out[i] - want[i]));
            CK_EXPECT(worst <= 1e-5, "%s attention case %zu differs by %g", sets[s]->name, c, worst);
        }
        free(q), free(kc), free(vc), free(out), free(want);
    }
    return ck_test_done("test_kernels");
}
