/* rowops_avx2.c — the GLU and RMSNorm row kernels of rowops_avx512.c with 8-lane AVX2 + FMA vectors. Tails
 * go through masked loads and stores, so every element runs the same instructions wherever it lies.
 * Compiled with -mavx2 -mfma and only called when the CPU supports them (kernels.c). */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__) /* other architectures build this file empty; kernels.c never names it */
#include "backend/cpu/vexp.h"

#include <immintrin.h>

/* g * u / (1 + exp(-z)), z as in rowops_avx512.c */
static inline __m256 glu8(__m256 g, __m256 u, ck_act act) {
    __m256 z = g;
    if (act == CK_ACT_GELU_TANH)
        z = _mm256_mul_ps(_mm256_set1_ps(2.0f * CK_GELU_C),
                          _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), _mm256_mul_ps(_mm256_mul_ps(g, g), g), g));
    __m256 e = ck_exp8(_mm256_sub_ps(_mm256_setzero_ps(), z));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

/* lanes below `left` (1..7) set */
static inline __m256i tail_mask(size_t left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void ck_glu_avx2(float *out, const float *gate, const float *up, size_t n, ck_act act) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, glu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i), act));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(out + i, m, glu8(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m), act));
    }
}

static inline __m256d squares(__m256d acc, __m128 v) {
    __m256d d = _mm256_cvtps_pd(v);
    return _mm256_fmadd_pd(d, d, acc); /* a float's square is exact in double */
}

static inline __m256 scaled(__m256 x, __m256 inv, __m256 w, int one_plus) {
    return _mm256_mul_ps(_mm256_mul_ps(x, inv), one_plus ? _mm256_add_ps(_mm256_set1_ps(1.0f), w) : w);
}

void ck_rmsnorm_avx2(float *y, const float *x, const float *w, size_t n, float eps, int one_plus) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        s0 = squares(s0, _mm256_castps256_ps128(v));
        s1 = squares(s1, _mm256_extractf128_ps(v, 1));
    }
    if (i < n) { /* masked-off lanes load as zeros */
        __m256 v = _mm256_maskload_ps(x + i, tail_mask(n - i));
        s0 = squares(s0, _mm256_castps256_ps128(v));
        s1 = squares(s1, _mm256_extractf128_ps(v, 1));
    }
    double s[4];
    _mm256_storeu_pd(s, _mm256_add_pd(s0, s1));
    double ss = (s[0] + s[1]) + (s[2] + s[3]);
    __m256 inv = _mm256_set1_ps(ck_rms_scale(ss, n, eps));
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, scaled(_mm256_loadu_ps(x + i), inv, _mm256_loadu_ps(w + i), one_plus));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, scaled(_mm256_maskload_ps(x + i, m), inv, _mm256_maskload_ps(w + i, m), one_plus));
    }
}

#endif /* __x86_64__ */
