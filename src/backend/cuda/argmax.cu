/* argmax.cu — greedy sampling on the device: the first index of each row's largest value (ck_argmax's
 * pick), so that a greedy decode step copies out one id per row instead of the row's logits.
 * A row is cut into up to ARGMAX_SLICES slices of float4s (the row's unaligned head goes to slice 0, its
 * tail to the last one), a block per slice: each thread keeps the best (value, index) of its elements, the
 * block reduces them into the row's partials, and the row's last block to finish (a count per row, reset
 * by that block) reduces the partials. Equal values go to the lower index, an associative and commutative
 * choice, so the result does not depend on the order of any reduction. */
#include "backend/cuda/cuda_internal.h"

#define ARGMAX_THREADS 512
#define ARGMAX_SLICES 32
#define ARGMAX_PER_THREAD 4 /* float4s a thread reads, at least, before the row takes another slice */
#define ARGMAX_ROWS 65535   /* rows of one call (a grid's y), each with a count at a fixed place */

/* (v, i) better than (bv, bi): larger, or equal at a lower index */
static __device__ __forceinline__ void take(float v, uint32_t i, float &bv, uint32_t &bi) {
    if (v > bv || (v == bv && i < bi)) bv = v, bi = i;
}

/* The warp's best into (bv, bi) of every lane. */
static __device__ __forceinline__ void warp_best(float &bv, uint32_t &bi) {
    for (int o = 16; o; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, bv, o);
        uint32_t i = __shfl_xor_sync(0xffffffffu, bi, o);
        take(v, i, bv, bi);
    }
}

/* The block's best into (bv, bi) of thread 0. */
static __device__ void block_best(float &bv, uint32_t &bi) {
    __shared__ float sv[32];
    __shared__ uint32_t si[32];
    warp_best(bv, bi);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    if (lane == 0) sv[warp] = bv, si[warp] = bi;
    __syncthreads();
    if (warp) return;
    bv = lane < nw ? sv[lane] : -INFINITY, bi = lane < nw ? si[lane] : UINT32_MAX;
    warp_best(bv, bi);
}

/* Row blockIdx.y, slice blockIdx.x of gridDim.x; pv, pi: [rows, gridDim.x] partials; count: [rows]. */
static __global__ void __launch_bounds__(ARGMAX_THREADS) argmax_kernel(int32_t *top, const float *x, size_t n,
                                                                      float *pv, uint32_t *pi, unsigned *count) {
    const float *row = x + blockIdx.y * n;
    size_t head = (size_t)((16 - ((uintptr_t)row & 15)) & 15) / sizeof(float);
    if (head > n) head = n;
    size_t n4 = (n - head) / 4, tail = head + 4 * n4, per = (n4 + gridDim.x - 1) / gridDim.x;
    size_t j0 = blockIdx.x * per, j1 = j0 + per < n4 ? j0 + per : n4;
    float bv = -INFINITY;
    uint32_t bi = UINT32_MAX;
    if (blockIdx.x == 0)
        for (size_t i = threadIdx.x; i < head; i += blockDim.x) take(row[i], (uint32_t)i, bv, bi);
    const float4 *r4 = (const float4 *)(row + head);
    for (size_t j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        float4 v = r4[j];
        uint32_t i = (uint32_t)(head + 4 * j);
        take(v.x, i, bv, bi), take(v.y, i + 1, bv, bi), take(v.z, i + 2, bv, bi), take(v.w, i + 3, bv, bi);
    }
    if (blockIdx.x == gridDim.x - 1)
        for (size_t i = tail + threadIdx.x; i < n; i += blockDim.x) take(row[i], (uint32_t)i, bv, bi);
    block_best(bv, bi);
    if (gridDim.x == 1) {
        if (threadIdx.x == 0) top[blockIdx.y] = (int32_t)(bi == UINT32_MAX ? 0 : bi);
        return;
    }
    __shared__ int last;
    size_t p = (size_t)blockIdx.y * gridDim.x;
    if (threadIdx.x == 0) {
        pv[p + blockIdx.x] = bv, pi[p + blockIdx.x] = bi;
        __threadfence();
        last = atomicAdd(&count[blockIdx.y], 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    bv = -INFINITY, bi = UINT32_MAX;
    if (threadIdx.x < gridDim.x) bv = __ldcg(&pv[p + threadIdx.x]), bi = __ldcg(&pi[p + threadIdx.x]);
    __syncthreads(); /* (block_best's shared memory is reused) */
    block_best(bv, bi);
    if (threadIdx.x == 0) {
        top[blockIdx.y] = (int32_t)(bi == UINT32_MAX ? 0 : bi);
        count[blockIdx.y] = 0;
    }
}

void ck_cuda_argmax(ck_backend *b, int32_t *top, const float *x, size_t rows, size_t n) {
    if (b->failed || rows == 0) return;
    if (n == 0 || n > UINT32_MAX - 1 || rows > ARGMAX_ROWS) {
        ck_backend_fail(b, "argmax: %zu rows of %zu values", rows, n);
        return;
    }
    ck_cuda *c = ck_cu(b);
    size_t slices = n / (4 * ARGMAX_THREADS * ARGMAX_PER_THREAD);
    slices = slices < 1 ? 1 : slices > ARGMAX_SLICES ? ARGMAX_SLICES : slices;
    /* scratch, grown once: the counts of every row a call may have (zeroed, and zero between launches: the
     * same place whatever the call's rows), then the partials */
    size_t counts = (size_t)ARGMAX_ROWS * sizeof(unsigned);
    size_t need = counts + rows * slices * (sizeof(float) + sizeof(uint32_t));
    if (slices > 1 && need > c->amax_bytes) {
        void *nb = ck_cuda_scratch(b, &c->amax, &c->amax_bytes, need);
        if (!nb || ck_cuda_check(b, cudaMemsetAsync(nb, 0, counts, c->st), "argmax scratch")) return;
    }
    unsigned *count = (unsigned *)c->amax;
    float *pv = slices > 1 ? (float *)((char *)c->amax + counts) : NULL;
    uint32_t *pi = slices > 1 ? (uint32_t *)(pv + rows * slices) : NULL;
    dim3 grid((unsigned)slices, (unsigned)rows);
    ck_cuda_run(b, "argmax", [=](cudaStream_t st) {
        argmax_kernel<<<grid, ARGMAX_THREADS, 0, st>>>(top, x, n, pv, pi, count);
        ck_cuda_launched(b, "argmax");
    }, top, x, rows, n, slices, pv, count);
}
