/* moe.cu — mixture-of-experts routing on the device: per token row, the top-k experts of
 * softmax(logits[t, :E]) (ties to the lower index) and their probabilities, renormalized over the k
 * when asked. One thread per row, through the CPU backend's own function (backend/moe_route.h), so both
 * pick the same experts. */
#include "backend/cuda/cuda_internal.h"
#include "backend/moe_route.h"

static __global__ void route_kernel(int32_t *choice, float *weight, const float *logits, size_t T, size_t E, size_t K,
                                    int norm) {
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < T; t += (size_t)gridDim.x * blockDim.x)
        ck_moe_route_row(choice + t * K, weight + t * K, logits + t * E, E, K, norm);
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
