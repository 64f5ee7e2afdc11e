/* quant_avx2.c — AVX2 integer dot products of block-quantized weights with quantized activations
 * (maddubs + madd); the body is quant_simd.inc. Compiled with -mavx2 -mf16c -ffp-contract=off and only
 * called when the CPU has AVX2 (kernels.c); equal to the scalar reference bit for bit (test_quant). */
#if defined(__x86_64__)
#include "backend/cpu/kernels.h"

#define QNAME(f) f##_avx2
#define QDOT(acc, u, s) _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#include "backend/cpu/quant_simd.inc"
#endif
