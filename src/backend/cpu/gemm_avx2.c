/* gemm_avx2.c — the exact matmul (f32 activations, f32 accumulation) for f32, f16 and bf16 weights with
 * AVX2 + FMA + F16C, in register tiles of 4 activation rows x 2 weight rows (8 accumulators), edge tiles
 * 1 x 2, 4 x 1, 1 x 1.
 * Batch invariance: every output, in any tile, is one 8-lane accumulator fed with k in steps of 8 in
 * increasing order, the last partial step from zero-padded copies of the tails (exact f32 values), then
 * one fixed horizontal sum and the bias; so its bits do not depend on the tile it was computed in.
 * With fewer than 4 token rows the 1 x 2 tile prefetches the next 2 weight rows line for line, as the
 * bf16 fast path does (gemm_avx512bf16.c).
 * Compiled with -mavx2 -mfma -mf16c; only called when the CPU has them (kernels.c). */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__) /* other architectures build this file empty; kernels.c never names it */
#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

AI float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 weights at element i as f32; the tail helpers write k < 8 of them as f32 and zeros after */
AI __m256 ld_f32(const void *w, size_t i) { return _mm256_loadu_ps((const float *)w + i); }
AI __m256 ld_bf16(const void *w, size_t i) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
AI __m256 ld_f16(const void *w, size_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
}
static void tl_f32(float *d, const void *w, size_t i, size_t k) {
    for (size_t e = 0; e < 8; e++) d[e] = e < k ? ((const float *)w)[i + e] : 0.0f;
}
static void tl_bf16(float *d, const void *w, size_t i, size_t k) {
    for (size_t e = 0; e < 8; e++) d[e] = e < k ? ck_bf16_to_f32(((const uint16_t *)w)[i + e]) : 0.0f;
}
static void tl_f16(float *d, const void *w, size_t i, size_t k) {
    for (size_t e = 0; e < 8; e++) d[e] = e < k ? ck_f16_to_f32(((const uint16_t *)w)[i + e]) : 0.0f;
}

typedef __m256 (*ld_fn)(const void *w, size_t i);
typedef void (*tl_fn)(float *d, const void *w, size_t i, size_t k);

/* The R x C tile at y: y[r * ys + c] = dot(x_r, w_c) (+ bias[c]); x rows xs floats apart, w rows ws bytes of
 * esz-byte elements. pf (or NULL): C weight rows ws bytes apart to prefetch, each line beside the same line of w. */
AI void tile(int R, int C, ld_fn ld, tl_fn tl, float *y, size_t ys, const float *x, size_t xs, const uint8_t *w,
             size_t ws, size_t n, const float *bias, size_t esz, const uint8_t *pf) {
    __m256 acc[4][2];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv[2];
        for (int c = 0; c < C; c++) wv[c] = ld(w + c * ws, i);
        if (pf && (i * esz) % 64 == 0) /* prefetches never fault */
            for (int c = 0; c < C; c++) _mm_prefetch((const char *)(pf + c * ws + i * esz), _MM_HINT_T0);
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_loadu_ps(x + r * xs + i);
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    if (i < n) {
        float wt[2][8], xt[8];
        __m256 wv[2];
        for (int c = 0; c < C; c++) tl(wt[c], w + c * ws, i, n - i), wv[c] = _mm256_loadu_ps(wt[c]);
        for (int r = 0; r < R; r++) {
            tl_f32(xt, x + r * xs, i, n - i);
            __m256 xv = _mm256_loadu_ps(xt);
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) y[r * ys + c] = hsum(acc[r][c]) + (bias ? bias[c] : 0.0f);
}

/* The tiles of one weight dtype (activation rows as bytes apart, f32) and its gemm: 4 x 2 tiles. */
#define TILE(name, LD, TL, ESZ, R, C)                                                                                  \
    static void t##R##C##_##name(float *y, size_t ys, const uint8_t *a, size_t as, const uint8_t *w, size_t ws,       \
                                 size_t n, const float *b, const uint8_t *pf) {                                       \
        tile(R, C, LD, TL, y, ys, (const float *)a, as / sizeof(float), w, ws, n, b, ESZ, pf);                        \
    }
#define GEMM(name, LD, TL, ESZ)                                                                                       \
    TILE(name, LD, TL, ESZ, 4, 2)                                                                                     \
    TILE(name, LD, TL, ESZ, 1, 2)                                                                                     \
    TILE(name, LD, TL, ESZ, 4, 1)                                                                                     \
    TILE(name, LD, TL, ESZ, 1, 1)                                                                                     \
    static const ck_tile_set set_##name = {4, 2, t42_##name, t12_##name, t41_##name, t11_##name};                    \
    static void name(float *y, size_t ys, const void *a, size_t as, const void *w, size_t ws, size_t n, size_t T,     \
                     size_t rows, const float *bias) {                                                                \
        ck_tile_gemm(&set_##name, y, ys, a, as, w, ws, n, T, rows, bias);                                             \
    }
GEMM(gemm_f32, ld_f32, tl_f32, 4)
GEMM(gemm_f16, ld_f16, tl_f16, 2)
GEMM(gemm_bf16, ld_bf16, tl_bf16, 2)

const ck_mm_kernel ck_mm_avx2[CK_DTYPE_COUNT] = {
    [CK_F32] = {.gemm = gemm_f32},
    [CK_F16] = {.gemm = gemm_f16},
    [CK_BF16] = {.gemm = gemm_bf16},
};

#endif /* __x86_64__ */
