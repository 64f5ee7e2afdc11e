/* dot_avx2.c — dot products of an f32 vector with a weight row in f32, f16 or bf16, for x86-64 CPUs with
 * AVX2 + FMA + F16C. Compiled with those ISA flags (see CMakeLists.txt) and only called when the CPU
 * reports them (cpu.c picks at start-up). Same contract as ck_dot_ref; the sum is split over 32 lanes,
 * so results differ from the reference only by f32 rounding of the summation order. */
#include "backend/cpu/kernels.h"

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

/* CPUID: FMA (leaf 1 ecx bit 12), F16C (ecx 29), OSXSAVE (ecx 27) with the OS saving YMM state (XCR0
 * bits 1-2), AVX2 (leaf 7 ebx bit 5). */
/* A 4 x 2 tile: four rows of x (x, x + xs, ...) against two weight rows (w, w + ws): each weight block
 * serves four token rows and each activation block two weight rows, so loads per multiply-add halve. */
#define TILE_BODY(LOAD, W, TAIL)                                                                       \
    const float *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs;                             \
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                                            \
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();                                            \
    size_t i = 0;                                                                                      \
    for (; i + 8 <= n; i += 8) {                                                          \
        __m256 u = LOAD(W + i), v = LOAD(W + ws + i), t;                                                  \
        t = _mm256_loadu_ps(x0 + i), a0 = _mm256_fmadd_ps(t, u, a0), b0 = _mm256_fmadd_ps(t, v, b0);                               \
        t = _mm256_loadu_ps(x1 + i), a1 = _mm256_fmadd_ps(t, u, a1), b1 = _mm256_fmadd_ps(t, v, b1);                               \
        t = _mm256_loadu_ps(x2 + i), a2 = _mm256_fmadd_ps(t, u, a2), b2 = _mm256_fmadd_ps(t, v, b2);                               \
        t = _mm256_loadu_ps(x3 + i), a3 = _mm256_fmadd_ps(t, u, a3), b3 = _mm256_fmadd_ps(t, v, b3);                               \
    }                                                                                                 \
    out[0] = hsum(a0), out[1] = hsum(a1), out[2] = hsum(a2), out[3] = hsum(a3);        \
    out[4] = hsum(b0), out[5] = hsum(b1), out[6] = hsum(b2), out[7] = hsum(b3);        \
    for (; i < n; i++) {                                                                              \
        float u = TAIL(W[i]), v = TAIL(W[ws + i]);                                                     \
        out[0] += x0[i] * u, out[1] += x1[i] * u, out[2] += x2[i] * u, out[3] += x3[i] * u;            \
        out[4] += x0[i] * v, out[5] += x1[i] * v, out[6] += x2[i] * v, out[7] += x3[i] * v;            \
    }

static inline float same(float f) { return f; }

void ck_tile_f32_avx2(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out) {
    const float *Wt = w;
    TILE_BODY(_mm256_loadu_ps, Wt, same)
}

void ck_tile_bf16_avx2(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out) {
    const uint16_t *Wt = w;
    TILE_BODY(load_bf16, Wt, ck_bf16_to_f32)
}

void ck_tile_f16_avx2(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out) {
    const uint16_t *Wt = w;
    TILE_BODY(load_f16, Wt, ck_f16_to_f32)
}

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
