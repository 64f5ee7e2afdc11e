/* moe.cu — mixture-of-experts routing on the device: per token row, the top-k experts of
 * softmax(logits[t, :E]) (ties to the lower index) and their probabilities, renormalized over the k
 * when asked. One thread per row, computing in double exactly as the CPU reference (cpu.c's moe_route),
 * so both pick the same experts. */
#include "backend/cuda/cuda_internal.h"

static __global__ void route_kernel(int32_t *choice, float *weight, const float *logits, size_t T, size_t E, size_t K,
                                    int norm) {
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < T; t += (size_t)gridDim.x * blockDim.x) {
        const float *l = logits + t * E;
        int32_t *ch = choice + t * K;
        float *cw = weight + t * K;
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
}

void ck_cuda_moe_route(ck_backend *b, int32_t *choice, float *weight, const float *logits, size_t T, size_t E,
                       size_t K, int norm) {
    if (b->failed || T == 0) return;
    if (E == 0 || K == 0 || K > E) {
        ck_backend_fail(b, "moe_route: top-%zu of %zu experts", K, E);
        return;
    }
    ck_cuda_run(b, "moe_route", [=](cudaStream_t st) {
        route_kernel<<<(unsigned)((T + 63) / 64), 64, 0, st>>>(choice, weight, logits, T, E, K, norm);
        ck_cuda_launched(b, "moe_route");
    }, choice, weight, logits, T, E, K, norm);
}
