/* gemm_avx512.c — the exact matmul (f32 activations, f32 accumulation) for f32, f16 and bf16 weights with
 * AVX-512 F/BW/VL, in register tiles of 4 activation rows x 4 weight rows (16 accumulators; each weight
 * vector serves 4 rows, each activation vector 4 weight rows), edge tiles of 1 x 4, 4 x 1 and 1 x 1.
 * Batch invariance: every output, in any tile, is one 16-lane accumulator fed with k in steps of 16 in
 * increasing order, the last partial step through masked (zeroing) loads, then one _mm512_reduce_add_ps
 * and the bias; so its bits do not depend on the tile it was computed in (decode's T = 1 included).
 * With fewer than 4 token rows the 1 x 4 tile prefetches the next 4 weight rows line for line, as the
 * bf16 fast path does (gemm_avx512bf16.c).
 * Compiled with -mavx512f -mavx512bw -mavx512vl; only called when the CPU has them (kernels.c). */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__) /* other architectures build this file empty; kernels.c never names it */
#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* 16 weights at element i (masked: lanes past the mask read as zero, nothing past them is touched) */
AI __m512 ld_f32(const void *w, size_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, (const float *)w + i); }
AI __m512 ld_bf16(const void *w, size_t i, __mmask16 m) {
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
AI __m512 ld_f16(const void *w, size_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i));
}

typedef __m512 (*ld_fn)(const void *w, size_t i, __mmask16 m);

/* The R x C tile at y: y[r * ys + c] = dot(x_r, w_c) (+ bias[c]); x rows xs floats apart, w rows ws bytes of
 * esz-byte elements. pf (or NULL): C weight rows ws bytes apart to prefetch, each line beside the same line of w. */
AI void tile(int R, int C, ld_fn ld, float *y, size_t ys, const float *x, size_t xs, const uint8_t *w, size_t ws,
             size_t n, const float *bias, size_t esz, const uint8_t *pf) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 wv[4];
        for (int c = 0; c < C; c++) wv[c] = ld(w + c * ws, i, 0xffff);
        if (pf && (i * esz) % 64 == 0) /* prefetches never fault */
            for (int c = 0; c < C; c++) _mm_prefetch((const char *)(pf + c * ws + i * esz), _MM_HINT_T0);
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_loadu_ps(x + r * xs + i);
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 wv[4];
        for (int c = 0; c < C; c++) wv[c] = ld(w + c * ws, i, m);
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + r * xs + i);
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) y[r * ys + c] = _mm512_reduce_add_ps(acc[r][c]) + (bias ? bias[c] : 0.0f);
}

/* The tiles of one weight dtype (activation rows as bytes apart, f32) and its gemm: 4 x 4 tiles. */
#define TILE(name, LD, ESZ, R, C)                                                                                      \
    static void t##R##C##_##name(float *y, size_t ys, const uint8_t *a, size_t as, const uint8_t *w, size_t ws,       \
                                 size_t n, const float *b, const uint8_t *pf) {                                       \
        tile(R, C, LD, y, ys, (const float *)a, as / sizeof(float), w, ws, n, b, ESZ, pf);                            \
    }
#define GEMM(name, LD, ESZ)                                                                                           \
    TILE(name, LD, ESZ, 4, 4)                                                                                         \
    TILE(name, LD, ESZ, 1, 4)                                                                                         \
    TILE(name, LD, ESZ, 4, 1)                                                                                         \
    TILE(name, LD, ESZ, 1, 1)                                                                                         \
    static const ck_tile_set set_##name = {4, 4, t44_##name, t14_##name, t41_##name, t11_##name};                    \
    static void name(float *y, size_t ys, const void *a, size_t as, const void *w, size_t ws, size_t n, size_t T,     \
                     size_t rows, const float *bias) {                                                                \
        ck_tile_gemm(&set_##name, y, ys, a, as, w, ws, n, T, rows, bias);                                             \
    }
GEMM(gemm_f32, ld_f32, 4)
GEMM(gemm_f16, ld_f16, 2)
GEMM(gemm_bf16, ld_bf16, 2)

const ck_mm_kernel ck_mm_avx512[CK_DTYPE_COUNT] = {
    [CK_F32] = {.gemm = gemm_f32},
    [CK_F16] = {.gemm = gemm_f16},
    [CK_BF16] = {.gemm = gemm_bf16},
};

#endif /* __x86_64__ */
