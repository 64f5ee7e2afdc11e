/* quant_avx512.c — AVX512-VNNI integer dot products of block-quantized weights with quantized
 * activations (vpdpbusd on 256-bit vectors, AVX512VL encoding); the body is quant_simd.inc. Compiled
 * with -mavx512f -mavx512vl -mavx512bw -mavx512vnni -mavx2 -mf16c -ffp-contract=off and only called when
 * the CPU has those (ck_cpu_has_vnni); equal to the scalar reference bit for bit (test_quant). */
#if defined(__x86_64__)
#include "backend/cpu/kernels.h"

#define QNAME(f) f##_vnni
#define QDOT(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#include "backend/cpu/quant_simd.inc"

int ck_cpu_has_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
}
#endif
