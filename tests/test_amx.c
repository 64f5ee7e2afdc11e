/* test_amx.c — the AMX kernels (gemm_amx.c), on a CPU that has AMX (else it says so and
 * checks nothing):
 *  - bf16 fast path: against its scalar definition (ck_mm_ref_bf16_fast: activations rounded to bf16,
 *    f32 sums) within 2^-16 of sum |x w| (TDPBF16PS rounds inside a 32-element chunk in its own way, not
 *    the SDM's sequential model, so there is no exact scalar twin), on lengths, weight rows and token
 *    counts around the tiles (n not a multiple of 32 or odd, rows not a multiple of 16, T = 1..40);
 *  - bf16 batch invariance: each token row's outputs are the same bits computed alone (T = 1), in any
 *    batch, and for any sub-range of weight rows (as the threads split them). */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "tensor/quant.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng = 77;
static uint32_t next_u32(void) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return rng;
}
static float frand(void) { return (float)(next_u32() >> 8) / 8388608.0f - 1.0f; }

/* The AMX kernel's packed batch of x[T, n]. */
static uint8_t *pack_amx(const float *x, size_t n, size_t T) {
    const ck_mm_kernel *mk = &ck_mm_amx_bf16_fast;
    uint8_t *a = malloc(mk->act_batch_bytes(n, T));
    mk->pack_batch(a, x, n, T, 0, T);
    return a;
}

static void check_bf16(size_t n, size_t rows, size_t T) {
    const ck_mm_kernel *mk = &ck_mm_amx_bf16_fast, *ref = &ck_mm_ref_bf16_fast;
    float *x = malloc(T * n * sizeof *x), *bias = malloc(rows * sizeof *bias);
    uint16_t *w = malloc(rows * n * 2);
    for (size_t i = 0; i < T * n; i++) x[i] = frand();
    for (size_t i = 0; i < rows * n; i++) w[i] = ck_f32_to_bf16_rne(frand());
    for (size_t i = 0; i < rows; i++) bias[i] = frand();
    const float *b = (n + rows + T) % 2 ? bias : NULL;
    size_t ras = ref->act_row_bytes(n);
    uint8_t *a = pack_amx(x, n, T), *ra = malloc(T * ras);
    for (size_t t = 0; t < T; t++) ref->pack(ra + t * ras, x + t * n, n);
    float *y = malloc(T * rows * sizeof *y), *want = malloc(T * rows * sizeof *want), *one = malloc(rows * sizeof *one);
    mk->gemm(y, rows, a, 0, w, n * 2, n, T, rows, b);
    ref->gemm(want, rows, ra, ras, w, n * 2, n, T, rows, b);
    int bad = 0;
    for (size_t t = 0; t < T && !bad; t++)
        for (size_t j = 0; j < rows && !bad; j++) {
            double mag = b ? fabs(b[j]) : 0;
            for (size_t i = 0; i < n; i++) mag += fabs(ck_bf16_to_f32(w[j * n + i]) * x[t * n + i]);
            double e = fabs((double)y[t * rows + j] - want[t * rows + j]);
            bad = !(e <= mag * (1.0 / 65536) + 1e-30);
            CK_EXPECT(!bad, "bf16 n=%zu rows=%zu T=%zu (%zu, %zu): %.9g vs reference %.9g", n, rows, T, t, j,
                      y[t * rows + j], want[t * rows + j]);
        }
    /* batch invariance: every token alone, and a sub-range of the weight rows */
    for (size_t t = 0; t < T; t++) {
        uint8_t *a1 = pack_amx(x + t * n, n, 1);
        mk->gemm(one, rows, a1, 0, w, n * 2, n, 1, rows, b);
        CK_EXPECT(memcmp(one, y + t * rows, rows * sizeof *one) == 0, "bf16 n=%zu rows=%zu: token %zu of %zu alone differs",
                  n, rows, t, T);
        free(a1);
    }
    if (rows > 16) {
        size_t j0 = 16, j1 = rows - 1;
        float *ys = malloc(T * rows * sizeof *ys);
        mk->gemm(ys + j0, rows, a, 0, (const uint8_t *)w + j0 * n * 2, n * 2, n, T, j1 - j0, b ? b + j0 : NULL);
        for (size_t t = 0; t < T; t++)
            CK_EXPECT(memcmp(ys + t * rows + j0, y + t * rows + j0, (j1 - j0) * sizeof *ys) == 0,
                      "bf16 n=%zu rows=%zu T=%zu: rows [%zu, %zu) alone differ", n, rows, T, j0, j1);
        free(ys);
    }
    free(x), free(bias), free(w), free(a), free(ra), free(y), free(want), free(one);
}

int main(void) {
    if (!ck_cpu_has_amx()) {
        printf("test_amx: this CPU (or OS) has no AMX: skipped, nothing checked\n");
        return ck_test_done("test_amx");
    }
    size_t lens[] = {1, 2, 17, 31, 32, 33, 63, 64, 65, 100, 130, 1000}, rowss[] = {1, 5, 15, 16, 17, 31, 32, 33, 48, 50};
    size_t Ts[] = {1, 2, 7, 15, 16, 17, 31, 32, 33, 40};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (size_t ri = 0; ri < sizeof rowss / sizeof rowss[0]; ri++)
            for (size_t ti = (li + ri) % 3; ti < sizeof Ts / sizeof Ts[0]; ti += 2)
                check_bf16(lens[li], rowss[ri], Ts[ti]);
    return ck_test_done("test_amx");
}
