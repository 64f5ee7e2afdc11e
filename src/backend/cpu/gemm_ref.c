/* gemm_ref.c — the scalar reference matmul kernels (see kernels.h's ck_mm_kernel): every output is one
 * ck_dot_ref call (f32 accumulation in index order), so the result of output (t, j) cannot depend on the
 * rest of the batch. Also the definition of the bf16 fast path that the AVX512_BF16 kernels are tested
 * against: activations rounded to bf16 (nearest even, subnormals flushed to zero, like VCVTNE2PS2BF16),
 * products of two bf16 values (exact in f32) summed in f32 in index order. */
#include "backend/cpu/kernels.h"

#include <string.h>

static void gemm_ref(ck_dtype dt, float *y, size_t ys, const void *a, size_t as, const void *w, size_t ws, size_t n,
                     size_t T, size_t rows, const float *bias) {
    for (size_t t = 0; t < T; t++) {
        const float *x = (const float *)((const uint8_t *)a + t * as);
        for (size_t j = 0; j < rows; j++)
            y[t * ys + j] = ck_dot_ref(x, (const uint8_t *)w + j * ws, dt, n) + (bias ? bias[j] : 0.0f);
    }
}

#define GEMM_REF(name, dt)                                                                                   \
    static void name(float *y, size_t ys, const void *a, size_t as, const void *w, size_t ws, size_t n, size_t T, \
                     size_t rows, const float *bias) {                                                       \
        gemm_ref(dt, y, ys, a, as, w, ws, n, T, rows, bias);                                                 \
    }
GEMM_REF(gemm_f32_ref, CK_F32)
GEMM_REF(gemm_f16_ref, CK_F16)
GEMM_REF(gemm_bf16_ref, CK_BF16)

const ck_mm_kernel ck_mm_ref_exact[CK_DTYPE_COUNT] = {
    [CK_F32] = {.gemm = gemm_f32_ref},
    [CK_F16] = {.gemm = gemm_f16_ref},
    [CK_BF16] = {.gemm = gemm_bf16_ref},
};

uint16_t ck_f32_to_bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000); /* zero or subnormal: signed zero */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays a (quiet) NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* A packed bf16 activation row: n values, zero-padded to a multiple of 32 (64 bytes). */
static size_t bf16_act_bytes(size_t n) { return (n + 31) / 32 * 64; }

static void bf16_pack_ref(void *dst, const float *x, size_t n) {
    uint16_t *d = dst;
    size_t i = 0;
    for (; i < n; i++) d[i] = ck_f32_to_bf16_rne(x[i]);
    for (; i % 32; i++) d[i] = 0;
}

static void gemm_bf16_fast_ref(float *y, size_t ys, const void *a, size_t as, const void *w, size_t ws, size_t n,
                               size_t T, size_t rows, const float *bias) {
    for (size_t t = 0; t < T; t++) {
        const uint16_t *x = (const uint16_t *)((const uint8_t *)a + t * as);
        for (size_t j = 0; j < rows; j++) {
            const uint16_t *wj = (const uint16_t *)((const uint8_t *)w + j * ws);
            float acc = 0.0f;
            for (size_t i = 0; i < n; i++) acc += ck_bf16_to_f32(x[i]) * ck_bf16_to_f32(wj[i]);
            y[t * ys + j] = acc + (bias ? bias[j] : 0.0f);
        }
    }
}

const ck_mm_kernel ck_mm_ref_bf16_fast = {.act_row_bytes = bf16_act_bytes, .pack = bf16_pack_ref, .gemm = gemm_bf16_fast_ref};
