/* rowops_avx512.c — the GLU and RMSNorm row kernels (kernels.h: ck_glu_fn, ck_rmsnorm_fn) with 16-lane
 * AVX-512F vectors. Tails go through masked loads and stores, so every element runs the same instructions
 * wherever it lies. Compiled with -mavx512f -mavx512bw -mavx512vl and only called when the CPU and the OS
 * support them (kernels.c). */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__) /* other architectures build this file empty; kernels.c never names it */
#include "backend/cpu/vexp.h"

#include <immintrin.h>

/* g * u / (1 + exp(-z)): z = g for SiLU; for GELU-tanh, 1 + tanh(a) = 2 / (1 + exp(-2a)) gives
 * z = 2a = 2 sqrt(2/pi) (g + 0.044715 g^3). */
static inline __m512 glu16(__m512 g, __m512 u, ck_act act) {
    __m512 z = g;
    if (act == CK_ACT_GELU_TANH)
        z = _mm512_mul_ps(_mm512_set1_ps(2.0f * CK_GELU_C),
                          _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), _mm512_mul_ps(_mm512_mul_ps(g, g), g), g));
    __m512 e = ck_exp16(_mm512_sub_ps(_mm512_setzero_ps(), z));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

static inline __mmask16 tail_mask(size_t left) { return (__mmask16)((1u << left) - 1); }

void ck_glu_avx512(float *out, const float *gate, const float *up, size_t n, ck_act act) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, glu16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i), act));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(out + i, m, glu16(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i), act));
    }
}

static inline __m512d squares(__m512d acc, __m256 v) {
    __m512d d = _mm512_cvtps_pd(v);
    return _mm512_fmadd_pd(d, d, acc); /* a float's square is exact in double */
}

static inline __m512 scaled(__m512 x, __m512 inv, __m512 w, int one_plus) {
    return _mm512_mul_ps(_mm512_mul_ps(x, inv), one_plus ? _mm512_add_ps(_mm512_set1_ps(1.0f), w) : w);
}

void ck_rmsnorm_avx512(float *y, const float *x, const float *w, size_t n, float eps, int one_plus) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        s0 = squares(s0, _mm512_castps512_ps256(v));
        s1 = squares(s1, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    }
    if (i < n) { /* masked-off lanes load as zeros */
        __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
        s0 = squares(s0, _mm512_castps512_ps256(v));
        s1 = squares(s1, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    }
    double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    __m512 inv = _mm512_set1_ps(ck_rms_scale(ss, n, eps));
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, scaled(_mm512_loadu_ps(x + i), inv, _mm512_loadu_ps(w + i), one_plus));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, scaled(_mm512_maskz_loadu_ps(m, x + i), inv, _mm512_maskz_loadu_ps(m, w + i), one_plus));
    }
}

#endif /* __x86_64__ */
