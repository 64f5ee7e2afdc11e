/* quant_avx512.c — AVX512-VNNI integer dot products of block-quantized weights with quantized
 * activations (vpdpbusd on 256-bit vectors, AVX512VL encoding); the body is quant_simd.inc. Compiled
 * with -mavx512f -mavx512vl -mavx512bw -mavx512vnni -mavx2 -mf16c -ffp-contract=off and only called when
 * the CPU has those (ck_cpu_has_vnni); equal to the scalar reference bit for bit (test_quant). */
#if defined(__x86_64__)
#include "backend/cpu/kernels.h"

#include <cpuid.h>

#define QNAME(f) f##_vnni
#define QDOT(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#define QDOTW(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))
#define QGEMV32_OWN
#include "backend/cpu/quant_simd.inc"

#define QGEMV_NB_MAX 1024 /* blocks of 32 of the activation row the blocks-of-32 decode kernels take (n <= 32768) */

/* Q8_0 / Q4_0 decode: y[j] = ck_qdot_{q8_0,q4_0}_vnni(w + j * ws, xq, n) bit for bit. The weights go in
 * unsigned (Q8_0: w + 128 = w ^ 0x80; Q4_0: its levels q = w + 8, nibbles unpacked) so vpdpbusd multiplies
 * them with the signed activations directly, and each block's accumulator starts at -off * (the sums of
 * 4 activations) (off = 128, 8), computed once per call: it ends at the exact integer sums of w * x
 * (|sum| < 2^21, no overflow; no sign trick per block). The float combine is the one-row kernel's. */
#define QGEMV32_BODY(T, OFF, WVEC, QSUM)                                                                     \
    size_t nb = n / CK_QK, nb8 = nb / 8 * 8;                                                                 \
    const float *xd = xq;                                                                                    \
    const int8_t *xs = (const int8_t *)(xd + nb);                                                            \
    const __m256i off = _mm256_set1_epi8((char)(OFF)), zero = _mm256_setzero_si256();                        \
    __m256i nc[QGEMV_NB_MAX];                                                                                \
    for (size_t k = 0; k < nb8; k++)                                                                         \
        nc[k] = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, off, _mm256_loadu_si256((const __m256i *)(xs + k * CK_QK)))); \
    const uint8_t *row = w, *end = row + rows * ws;                                                          \
    prefetch_start(row, end);                                                                                \
    for (size_t j = 0; j < rows; j++, row += ws) {                                                           \
        prefetch_ahead(row, ws, end);                                                                        \
        const T *b = (const T *)row;                                                                         \
        __m256 acc = _mm256_setzero_ps();                                                                    \
        for (size_t i = 0; i < nb8; i += 8) {                                                                \
            __m256i v[8];                                                                                    \
            for (int k = 0; k < 8; k++)                                                                      \
                v[k] = _mm256_dpbusd_epi32(nc[i + k], WVEC(&b[i + k]), _mm256_loadu_si256((const __m256i *)(xs + (i + k) * CK_QK))); \
            __m256 dw = _mm256_cvtph_ps(_mm_set_epi16((short)b[i + 7].d, (short)b[i + 6].d, (short)b[i + 5].d,   \
                                                      (short)b[i + 4].d, (short)b[i + 3].d, (short)b[i + 2].d,   \
                                                      (short)b[i + 1].d, (short)b[i].d));                      \
            __m256 s = _mm256_mul_ps(dw, _mm256_loadu_ps(xd + i));                                           \
            acc = _mm256_add_ps(acc, _mm256_mul_ps(s, _mm256_cvtepi32_ps(hsum8x8(v))));                      \
        }                                                                                                    \
        float a[CK_QLANES];                                                                                  \
        _mm256_storeu_ps(a, acc);                                                                            \
        for (size_t k = nb8; k < nb; k++) a[k % CK_QLANES] += (h2f(b[k].d) * xd[k]) * (float)QSUM(&b[k], xs + k * CK_QK); \
        y[j] = ck_qlanes_sum(a);                                                                             \
    }

static inline __m256i q8_0_unsigned(const ck_block_q8_0 *b) {
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b->qs), _mm256_set1_epi8((char)0x80));
}

void ck_qgemv_q8_0_vnni(float *y, const void *w, size_t ws, const void *xq, size_t n, size_t rows) {
    if (n / CK_QK / 8 * 8 > QGEMV_NB_MAX) {
        qgemv_rows_q8_0(y, w, ws, xq, n, rows);
        return;
    }
    QGEMV32_BODY(ck_block_q8_0, 0x80, q8_0_unsigned, ck_qsum_q8_0)
}

void ck_qgemv_q4_0_vnni(float *y, const void *w, size_t ws, const void *xq, size_t n, size_t rows) {
    if (n / CK_QK / 8 * 8 > QGEMV_NB_MAX) {
        qgemv_rows_q4_0(y, w, ws, xq, n, rows);
        return;
    }
    QGEMV32_BODY(ck_block_q4_0, 0x08, q4_0_levels, ck_qsum_q4_0)
}

/* AVX512-VNNI, VL and BW (CPUID leaf 7: ECX bit 11, EBX bits 31 and 30) on top of AVX-512F with the OS
 * saving its state (ck_cpu_has_avx512) and AVX2. */
int ck_cpu_has_vnni(void) {
    unsigned a, b, c, d;
    if (!ck_cpu_has_avx512() || !ck_cpu_has_avx2() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c & (1u << 11)) && (b & (1u << 31)) && (b & (1u << 30));
}
#endif
