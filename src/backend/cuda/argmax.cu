/* argmax.cu — greedy sampling on the device: the first index of each row's largest value (ck_argmax's
 * pick), so that a greedy decode step copies out one id per row instead of the row's logits. One block of
 * 1024 threads per row: each thread keeps the best (value, index) of its elements, read as float4 where
 * the row is aligned, and the block reduces them; equal values go to the lower index, so the order of the
 * reduction does not matter. A row of 151 936 logits (just written, in L2) is a few microseconds. */
#include "backend/cuda/cuda_internal.h"

#define ARGMAX_THREADS 1024

/* (v, i) better than (bv, bi): larger, or equal at a lower index */
static __device__ __forceinline__ void take(float v, uint32_t i, float &bv, uint32_t &bi) {
    if (v > bv || (v == bv && i < bi)) bv = v, bi = i;
}

static __global__ void __launch_bounds__(ARGMAX_THREADS) argmax_kernel(int32_t *top, const float *x, size_t n) {
    __shared__ float sv[32];
    __shared__ uint32_t si[32];
    const float *row = x + blockIdx.x * n;
    float bv = -INFINITY;
    uint32_t bi = 0;
    /* a scalar head up to 16-byte alignment, float4s, a scalar tail */
    size_t head = (size_t)((16 - ((uintptr_t)row & 15)) & 15) / sizeof(float);
    if (head > n || ((uintptr_t)row & 3)) head = n;
    size_t n4 = (n - head) / 4, tail = head + 4 * n4;
    for (size_t i = threadIdx.x; i < head; i += blockDim.x) take(row[i], (uint32_t)i, bv, bi);
    const float4 *r4 = (const float4 *)(row + head);
    for (size_t j = threadIdx.x; j < n4; j += blockDim.x) {
        float4 v = r4[j];
        uint32_t i = (uint32_t)(head + 4 * j);
        take(v.x, i, bv, bi), take(v.y, i + 1, bv, bi), take(v.z, i + 2, bv, bi), take(v.w, i + 3, bv, bi);
    }
    for (size_t i = tail + threadIdx.x; i < n; i += blockDim.x) take(row[i], (uint32_t)i, bv, bi);
    for (int o = 16; o; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, bv, o);
        uint32_t i = __shfl_xor_sync(0xffffffffu, bi, o);
        take(v, i, bv, bi);
    }
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    if (lane == 0) sv[warp] = bv, si[warp] = bi;
    __syncthreads();
    if (warp) return;
    bv = lane < nw ? sv[lane] : -INFINITY, bi = lane < nw ? si[lane] : 0;
    for (int o = 16; o; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, bv, o);
        uint32_t i = __shfl_xor_sync(0xffffffffu, bi, o);
        take(v, i, bv, bi);
    }
    if (lane == 0) top[blockIdx.x] = (int32_t)bi;
}

void ck_cuda_argmax(ck_backend *b, int32_t *top, const float *x, size_t rows, size_t n) {
    if (b->failed || rows == 0) return;
    if (n == 0 || n > UINT32_MAX || rows > INT32_MAX) {
        ck_backend_fail(b, "argmax: %zu rows of %zu values", rows, n);
        return;
    }
    ck_cuda_run(b, "argmax", [=](cudaStream_t st) {
        argmax_kernel<<<(unsigned)rows, ARGMAX_THREADS, 0, st>>>(top, x, n);
        ck_cuda_launched(b, "argmax");
    }, top, x, rows, n);
}
