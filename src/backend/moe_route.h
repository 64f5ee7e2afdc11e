/* moe_route.h — mixture-of-experts routing of one token row, shared by the CPU backend (cpu/cpu.c) and
 * the device kernel (cuda/moe.cu) so that both pick the same experts with the same weights: the top-K of
 * softmax(l[0..E)) (ties to the lower index), computed in double, renormalized over the K when norm.
 * ch[K]: the chosen experts, cw[K]: their probabilities. */
#ifndef CK_BACKEND_MOE_ROUTE_H
#define CK_BACKEND_MOE_ROUTE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define CK_MOE_ROUTE_FN static __host__ __device__ inline
#else
#define CK_MOE_ROUTE_FN static inline
#endif

CK_MOE_ROUTE_FN void ck_moe_route_row(int32_t *ch, float *cw, const float *l, size_t E, size_t K, int norm) {
    double mx = l[0], sum = 0.0, picked = 0.0;
    for (size_t e = 1; e < E; e++) mx = l[e] > mx ? l[e] : mx;
    for (size_t e = 0; e < E; e++) sum += exp((double)l[e] - mx);
    for (size_t k = 0; k < K; k++) {
        int32_t best = -1;
        for (size_t e = 0; e < E; e++) {
            int taken = 0;
            for (size_t j = 0; j < k; j++) taken |= ch[j] == (int32_t)e;
            if (!taken && (best < 0 || l[e] > l[best])) best = (int32_t)e;
        }
        ch[k] = best;
        cw[k] = (float)(exp((double)l[best] - mx) / sum);
        picked += cw[k];
    }
    if (norm)
        for (size_t k = 0; k < K; k++) cw[k] = (float)(cw[k] / picked);
}

#endif
