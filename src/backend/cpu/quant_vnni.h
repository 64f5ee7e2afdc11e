/* quant_vnni.h — the register tile of the AVX512-VNNI whole-matmul kernels (quant_gemm_vnni.c,
 * quant_gemm_vnni_k.c): VNNI_PR packed weight rows x VNNI_PT packed tokens, whose packed layouts put one
 * 64-byte vector of each per step. Include only from files compiled with AVX-512 F/BW/VL/VNNI. */
#ifndef CK_BACKEND_CPU_QUANT_VNNI_H
#define CK_BACKEND_CPU_QUANT_VNNI_H

#include <immintrin.h>
#include <stdint.h>

#define VNNI_PR 4 /* weight rows of the register tile (a panel) */
#define VNNI_PT 4 /* tokens of the register tile */

/* a[r][t] += the products of w[r] (unsigned bytes) and x[t] (signed bytes) over `steps` 64-byte steps, four
 * adjacent products summed into each int32 lane per step (vpdpbusd). */
static inline __attribute__((always_inline)) void vnni_steps(__m512i a[VNNI_PR][VNNI_PT], const uint8_t *const w[VNNI_PR],
                                                             const uint8_t *const x[VNNI_PT], int steps) {
    for (int s = 0; s < steps; s++) {
        __m512i wv[VNNI_PR];
        for (int r = 0; r < VNNI_PR; r++) wv[r] = _mm512_loadu_si512(w[r] + 64 * s);
        for (int t = 0; t < VNNI_PT; t++) {
            __m512i xv = _mm512_loadu_si512(x[t] + 64 * s);
            for (int r = 0; r < VNNI_PR; r++) a[r][t] = _mm512_dpbusd_epi32(a[r][t], wv[r], xv);
        }
    }
}

#endif
