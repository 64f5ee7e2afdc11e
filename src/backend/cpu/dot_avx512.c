/* dot_avx512.c — the dot products of dot_avx2.c with 16-lane AVX-512F vectors: f32 activations against
 * f32, f16 or bf16 weight rows, one row (attention and tests; the matmul is gemm_avx512.c). Compiled with
 * -mavx512f -mavx512bw -mavx512vl and only called when the CPU and the OS support them (kernels.c). Same contracts as the
 * reference; results differ only by f32 rounding of the summation order. */
#include "backend/cpu/kernels.h"
#include "tensor/quant.h"

#if defined(__x86_64__) /* other architectures build this file empty; kernels.c never names it */
#include <cpuid.h>
#include <immintrin.h>

static inline __m512 load_bf16(const uint16_t *p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

static inline __m512 load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

static inline float same(float f) { return f; }

#define DOT_BODY(LOAD, W, TAIL)                                                                        \
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),               \
           a3 = _mm512_setzero_ps();                                                                   \
    size_t i = 0;                                                                                      \
    for (; i + 64 <= n; i += 64) {                                                                     \
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), LOAD(W + i), a0);                                 \
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), LOAD(W + i + 16), a1);                       \
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), LOAD(W + i + 32), a2);                       \
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), LOAD(W + i + 48), a3);                       \
    }                                                                                                  \
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), LOAD(W + i), a0);        \
    float acc = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));     \
    for (; i < n; i++) acc += x[i] * TAIL(W[i]);                                                       \
    return acc;

float ck_dot_f32_avx512(const float *x, const void *w, size_t n) {
    const float *W = w;
    DOT_BODY(_mm512_loadu_ps, W, same)
}

float ck_dot_bf16_avx512(const float *x, const void *w, size_t n) {
    const uint16_t *W = w;
    DOT_BODY(load_bf16, W, ck_bf16_to_f32)
}

float ck_dot_f16_avx512(const float *x, const void *w, size_t n) {
    const uint16_t *W = w;
    DOT_BODY(load_f16, W, ck_f16_to_f32)
}

void ck_axpy_avx512(float *y, float a, const float *x, size_t n) {
    __m512 av = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

void ck_axpy_f16_avx512(float *y, float a, const uint16_t *x, size_t n) {
    __m512 av = _mm512_set1_ps(a);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, load_f16(x + i), _mm512_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * ck_f16_to_f32(x[i]);
}

/* Clamped to +-65504 first (max and min return their second operand, x, when it is NaN), then rounded to
 * nearest even: the bits of ck_f32_to_f16_sat. */
void ck_to_f16_avx512(uint16_t *dst, const float *x, size_t n) {
    const __m512 hi = _mm512_set1_ps(65504.0f), lo = _mm512_set1_ps(-65504.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_loadu_ps(x + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) dst[i] = ck_f32_to_f16_sat(x[i]);
}

/* CPUID leaf 7 ebx bits 16 (AVX-512F), 30 (BW) and 31 (VL), with OSXSAVE and the OS saving opmask/ZMM state (XCR0 bits 1-2,
 * 5-7). */
int ck_cpu_has_avx512(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6u) != 0xe6u) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    unsigned want = (1u << 16) | (1u << 30) | (1u << 31);
    return (b & want) == want;
}

#endif /* __x86_64__ */
