/* test_kernels.c — every CPU kernel set against the scalar reference: dot products (one row and four
 * rows at a time) of each weight dtype over lengths around the SIMD block sizes (tails included), within
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
        float *x = malloc((4 * n + 1) * sizeof *x), *wf = malloc((n + 1) * sizeof *wf);
        uint16_t *wb = malloc((n + 1) * 2), *wh = malloc((n + 1) * 2);
        double mag = 0;
        for (size_t i = n; i < 4 * n; i++) x[i] = frand();
        for (size_t i = 0; i < n; i++) {
            x[i] = frand();
            wf[i] = frand();
            wb[i] = to_bf16(wf[i]);
            wh[i] = to_f16(wf[i]);
            mag += fabs(x[i] * wf[i]);
        }
        const void *w[CK_DTYPE_COUNT] = {[CK_F32] = wf, [CK_F16] = wh, [CK_BF16] = wb};
        for (int dt = 0; dt < CK_DTYPE_COUNT; dt++) {
            double want = ck_dot_ref(x, w[dt], (ck_dtype)dt, n);
            for (size_t s = 0; s < n_sets; s++) {
                double got = sets[s]->dot[dt](x, w[dt], n);
                CK_EXPECT(fabs(got - want) <= 1e-5 * (mag + 1), "%s dot %s n=%zu: %.9g vs %.9g", sets[s]->name,
                          ck_dtype_name((ck_dtype)dt), n, got, want);
                float four[4];
                sets[s]->dot4[dt](x, n, w[dt], n, four);
                for (size_t r = 0; r < 4; r++) {
                    double want_r = ck_dot_ref(x + r * n, w[dt], (ck_dtype)dt, n), mag_r = 0;
                    for (size_t i = 0; i < n; i++) mag_r += fabs(x[r * n + i] * wf[i]);
                    CK_EXPECT(fabs(four[r] - want_r) <= 1e-5 * (mag_r + 1), "%s dot4 %s n=%zu row %zu: %.9g vs %.9g",
                              sets[s]->name, ck_dtype_name((ck_dtype)dt), n, r, four[r], want_r);
                }
            }
        }
        free(x);
        free(wf);
        free(wb);
        free(wh);
    }
    return ck_test_done("test_kernels");
}
