/* vexp.h — exp of a float vector for the ISA the including file is compiled for: ck_exp16 (AVX-512F, 16
 * lanes) and ck_exp8 (AVX2 + FMA, 8 lanes). exp(x) = 2^n p(r) with n = round(x / ln 2) and
 * r = x - n ln 2 (ln 2 in two parts, the first exact in n ln 2), p Cephes' expf polynomial: about 1 ulp from
 * libm's expf. x is clamped to [-104, 100] first (min and max return their second operand, x, when it is
 * NaN: a NaN stays one), so that 2^n p rounds to 0 or a subnormal at the bottom and overflows to +inf past
 * ln(FLT_MAX), as expf does: AVX-512's scalef forms it; AVX2 multiplies p by two powers of two (n split in
 * halves, each a normal float's exponent). */
#ifndef CK_BACKEND_CPU_VEXP_H
#define CK_BACKEND_CPU_VEXP_H

#include <immintrin.h>

/* Cephes' expf polynomial: e^r = 1 + r + r^2 (c0 r^5 + c1 r^4 + ... + c5) */
static const float ck_vexp_c[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                   4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

#if defined(__AVX512F__)
static inline __m512 ck_exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_min_ps(_mm512_set1_ps(100.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(ck_vexp_c[0]);
    for (int i = 1; i < 6; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ck_vexp_c[i]));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
static inline __m256 ck_exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), _mm256_min_ps(_mm256_set1_ps(100.0f), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(ck_vexp_c[0]);
    for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ck_vexp_c[i]));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n), n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1); /* in [-75, 73] */
    __m256i e1 = _mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23);
    __m256i e2 = _mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e1)), _mm256_castsi256_ps(e2));
}
#endif

#endif
