/* dot_avx2.c — dot products of an f32 vector with a weight row in f32, f16 or bf16, for x86-64 CPUs with
 * AVX2 + FMA + F16C (one row: attention and tests; the matmul is gemm_avx2.c). Compiled with those ISA flags (see CMakeLists.txt) and only called when the CPU
 * reports them (cpu.c picks at start-up). Same contract as ck_dot_ref; the sum is split over 32 lanes,
 * so results differ from the reference only by f32 rounding of the summation order. */
#include "backend/cpu/kernels.h"
#include "tensor/quant.h"

#if defined(__x86_64__) /* other architectures build this file empty; kernels.c never names it */
#include <cpuid.h>
#include <immintrin.h>

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 load_bf16(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline __m256 load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

#define DOT_BODY(LOAD, W)                                                                              \
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),               \
           a3 = _mm256_setzero_ps();                                                                   \
    size_t i = 0;                                                                                      \
    for (; i + 32 <= n; i += 32) {                                                                     \
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), LOAD(W + i), a0);                                 \
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), LOAD(W + i + 8), a1);                         \
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), LOAD(W + i + 16), a2);                       \
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), LOAD(W + i + 24), a3);                       \
    }                                                                                                  \
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), LOAD(W + i), a0);          \
    float acc = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));

float ck_dot_f32_avx2(const float *x, const void *w, size_t n) {
    const float *W = w;
    DOT_BODY(_mm256_loadu_ps, W)
    for (; i < n; i++) acc += x[i] * W[i];
    return acc;
}

float ck_dot_bf16_avx2(const float *x, const void *w, size_t n) {
    const uint16_t *W = w;
    DOT_BODY(load_bf16, W)
    for (; i < n; i++) acc += x[i] * ck_bf16_to_f32(W[i]);
    return acc;
}

float ck_dot_f16_avx2(const float *x, const void *w, size_t n) {
    const uint16_t *W = w;
    DOT_BODY(load_f16, W)
    for (; i < n; i++) acc += x[i] * ck_f16_to_f32(W[i]);
    return acc;
}

void ck_axpy_avx2(float *y, float a, const float *x, size_t n) {
    __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

void ck_axpy_f16_avx2(float *y, float a, const uint16_t *x, size_t n) {
    __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, load_f16(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * ck_f16_to_f32(x[i]);
}

/* Clamped to +-65504 first (max and min return their second operand, x, when it is NaN), then rounded to
 * nearest even: the bits of ck_f32_to_f16_sat. */
void ck_to_f16_avx2(uint16_t *dst, const float *x, size_t n) {
    const __m256 hi = _mm256_set1_ps(65504.0f), lo = _mm256_set1_ps(-65504.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_loadu_ps(x + i)));
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) dst[i] = ck_f32_to_f16_sat(x[i]);
}

/* CPUID: FMA (leaf 1 ecx bit 12), F16C (ecx 29), OSXSAVE (ecx 27) with the OS saving YMM state (XCR0
 * bits 1-2), AVX2 (leaf 7 ebx bit 5). */
int ck_cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 12)) || !(c & (1u << 29)) || !(c & (1u << 27))) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & (1u << 5)) != 0;
}

#endif /* __x86_64__ */
