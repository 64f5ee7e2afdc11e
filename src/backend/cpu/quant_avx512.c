/* quant_avx512.c — AVX512-VNNI integer dot products of block-quantized weights with quantized
 * activations (vpdpbusd on 256-bit vectors, AVX512VL encoding); the body is quant_simd.inc. Compiled
 * with -mavx512f -mavx512vl -mavx512bw -mavx512vnni -mavx2 -mf16c -ffp-contract=off and only called when
 * the CPU has those (ck_cpu_has_vnni); equal to the scalar reference bit for bit (test_quant). */
#if defined(__x86_64__)
#include "backend/cpu/kernels.h"

#include <cpuid.h>

#define QNAME(f) f##_vnni
#define QDOT(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#include "backend/cpu/quant_simd.inc"

/* AVX512-VNNI, VL and BW (CPUID leaf 7: ECX bit 11, EBX bits 31 and 30) on top of AVX-512F with the OS
 * saving its state (ck_cpu_has_avx512) and AVX2. */
int ck_cpu_has_vnni(void) {
    unsigned a, b, c, d;
    if (!ck_cpu_has_avx512() || !ck_cpu_has_avx2() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (c & (1u << 11)) && (b & (1u << 31)) && (b & (1u << 30));
}
#endif
