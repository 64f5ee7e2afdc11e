/* gemv.cuh — what the GEMV kernels of gemv.cu (16-bit, f32 and Q8_0 weights) and quant.cu (Q4_0 and the
 * K-quants) share: the batch of parts one launch computes, the staging of the input rows (made by a
 * fused producer), the quantization of those rows into Q8 blocks, and the store with its epilogues.
 * Included only by those .cu files. */
#ifndef CK_BACKEND_CUDA_GEMV_CUH
#define CK_BACKEND_CUDA_GEMV_CUH

#include "backend/cuda/cuda_internal.h"

#define CK_CUDA_GEMV_MAX_T 8

/* Up to CK_BATCH_MAX matmuls of one input shape (n_in, T, dtype) in one launch; blocks [blk[i], blk[i+1])
 * compute part i. res[i] (or NULL): the fused residual, res += y. */
typedef struct gemv_batch {
    float *y[CK_BATCH_MAX];
    const float *x[CK_BATCH_MAX];
    const void *w[CK_BATCH_MAX];
    const float *bias[CK_BATCH_MAX];
    float *res[CK_BATCH_MAX];
    int n_out[CK_BATCH_MAX];
    int wpr[CK_BATCH_MAX];       /* warps per row of part i (the quantized kernels, gemv_warp_rows) */
    unsigned blk[CK_BATCH_MAX + 1];
    int n;
} gemv_batch;

/* The block's input rows into xs [T, n_in] (shared memory): x itself, or made by the fused producer
 * (norm of in.a, GLU of in.a and in.b, or in.a gated by the sigmoid of in.b); then, when the producer's
 * output must be written too, the last block to get here (warp 0 counts) writes it. Ends with the block
 * synchronized. */
static __device__ void gemv_input(float *xs, float *red, const ck_fused_in &in, unsigned *counter, const float *x,
                                  int n_in, int T) {
    int nx = T * n_in;
    if (in.kind == CK_IN_NORM) {
        for (int t = 0; t < T; t++) {
            const float *a = in.a + (size_t)t * n_in;
            float *xt = xs + t * n_in, ss = 0.0f;
            for (int i = threadIdx.x; i < n_in; i += blockDim.x) {
                float v = a[i];
                xt[i] = v;
                ss += v * v;
            }
            ss = ck_block_sum(ss, red);
            float inv = 1.0f / sqrtf(ss / (float)n_in + in.eps);
            for (int i = threadIdx.x; i < n_in; i += blockDim.x)
                xt[i] = xt[i] * inv * (in.flag ? 1.0f + in.b[i] : in.b[i]);
            __syncthreads(); /* red is reused by the next row's sum */
        }
    } else if (in.kind == CK_IN_GLU) {
        for (int i = threadIdx.x; i < nx; i += blockDim.x) {
            xs[i] = ck_glu(in.a[i], in.b[i], in.flag);
        }
    } else if (in.kind == CK_IN_SIGMUL) {
        for (int i = threadIdx.x; i < nx; i += blockDim.x)
            xs[i] = ck_sigmoid_gate(in.a[i], in.b[(size_t)i / in.row * in.stride + (size_t)i % in.row]);
    } else if (((uintptr_t)x & 15) == 0 && nx % 4 == 0) {
        const float4 *x4 = (const float4 *)x;
        for (int i = threadIdx.x; i < nx / 4; i += blockDim.x) ((float4 *)xs)[i] = x4[i];
    } else {
        for (int i = threadIdx.x; i < nx; i += blockDim.x) xs[i] = x[i];
    }
    __syncthreads();
    if (in.out && threadIdx.x < 32) { /* the last block to have read the producer's inputs writes its output;
                                         only warp 0 waits for the count, the others go on with their rows */
        unsigned seen = 0;
        if (threadIdx.x == 0) seen = atomicAdd(counter, 1u);
        seen = __shfl_sync(0xffffffffu, seen, 0);
        if (seen == gridDim.x - 1) {
            for (int i = threadIdx.x; i < nx; i += 32) in.out[i] = xs[i];
            if (threadIdx.x == 0) *counter = 0;
        }
    }
}

/* Before the wait for the kernel ahead: the fused norm's weight (never written by a kernel) towards L1, so
 * that the norm, which needs it after the row's sum, does not wait on memory a second time. */
static __device__ __forceinline__ void gemv_prefetch_in(const ck_fused_in &in, int n_in) {
    if (in.kind == CK_IN_NORM)
        for (int i = threadIdx.x * 32; i < n_in; i += blockDim.x * 32) ck_prefetch_l1(in.b + i);
}
/* After the wait: the residual values the warp's first row will add to (gemv_store reads them last,
 * behind everything else), towards L1. */
static __device__ __forceinline__ void gemv_prefetch_res(const float *res, int row, int n_out, int T) {
    int lane = threadIdx.x & 31;
    if (res && row < n_out && lane < T) ck_prefetch_l1(res + (size_t)lane * n_out + row);
}

/* Row `row` of the T outputs from the lanes' partial sums: y = sum + bias, and the fused residual (res +=
 * y); checked for non-finite values: res when in.chk is CK_CHK_RES (a part with a residual), y when it is
 * CK_CHK_OUT (a lone part without one). */
static __device__ __forceinline__ void gemv_store(const float *acc, int T, int row, int n_out, int lane,
                                                  const float *bias, float *y, float *res, const ck_fused_in &in,
                                                  ck_cuda_flags *flags) {
#pragma unroll
    for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) {
        if (t >= T) break;
        float s = ck_warp_sum(acc[t]);
        if (lane == 0) {
            size_t o = (size_t)t * n_out + row;
            float v = s + (bias ? bias[row] : 0.0f);
            y[o] = v;
            if (res) {
                v += res[o];
                res[o] = v;
            }
            if (in.chk == (res ? CK_CHK_RES : CK_CHK_OUT) && !isfinite(v) && atomicCAS(&flags->failed, 0, 1) == 0)
                flags->tag = in.chk_tag, flags->idx = o, flags->val = v;
        }
    }
}

/* The staged input rows xs [n] (n a multiple of blk: 32, or 256 for the K-quants' Q8K) quantized as
 * tensor/quant.h's activation formats do, per block of blk values: d = max|x| / 127, q = round-to-nearest-
 * even(x / d) clamped to +-127, into xq [n] and xd [n / blk]. A block of values goes to a group of L lanes
 * (a power of two, 32 at most, each lane V = blk / L adjacent values, 2 to 8), L as large as still lets the
 * block's threads take every block of the rows in one pass, so that the chain before the first product is
 * one round of loads, a few shuffles and two divisions (a warp per block of values took up to six rounds).
 * Each value's arithmetic and the maximum do not depend on the grouping. The caller synchronizes the block
 * afterwards. */
template <int V>
static __device__ __forceinline__ void quantize_pass(const float *xs, int8_t *xq, float *xd, int nblk, int blk) {
    const int L = blk / V, per_pass = (int)blockDim.x / L, g = (int)threadIdx.x % L;
    for (int k0 = 0; k0 < nblk; k0 += per_pass) { /* (the same trip count for every lane: the shuffles) */
        int k = k0 + (int)threadIdx.x / L, at = blk * k + g * V;
        bool ok = k < nblk;
        float v[V], a = 0.0f;
        if (ok) {
            if (V >= 4) {
#pragma unroll
                for (int i = 0; i < V; i += 4) {
                    float4 f = *(const float4 *)(xs + at + i);
                    v[i] = f.x, v[i + 1] = f.y, v[i + 2] = f.z, v[i + 3] = f.w;
                }
            } else {
#pragma unroll
                for (int i = 0; i < V; i++) v[i] = xs[at + i];
            }
#pragma unroll
            for (int i = 0; i < V; i++) a = fabsf(v[i]) > a ? fabsf(v[i]) : a;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            if (o >= L) continue;
            float b = __shfl_xor_sync(0xffffffffu, a, o);
            a = b > a ? b : a; /* max|x| as the CPU takes it (NaN never wins) */
        }
        if (!ok) continue;
        float db = __fdiv_rn(a, 127.0f), id = db > 0.0f ? __fdiv_rn(1.0f, db) : 0.0f;
        if (g == 0) xd[k] = db;
#pragma unroll
        for (int i = 0; i < V; i++) {
            float q = __fmul_rn(v[i], id);
            if (!(q >= -127.0f)) q = -127.0f;
            if (q > 127.0f) q = 127.0f;
            xq[at + i] = (int8_t)__float2int_rn(q);
        }
    }
}
static __device__ __forceinline__ void quantize_rows(const float *xs, int8_t *xq, float *xd, int n, int blk) {
    int nblk = n / blk, L = blk / 2 < 32 ? blk / 2 : 32;
    while (L > blk / 8 && nblk * L > (int)blockDim.x) L >>= 1;
    switch (blk / L) {
    case 2: quantize_pass<2>(xs, xq, xd, nblk, blk); break;
    case 4: quantize_pass<4>(xs, xq, xd, nblk, blk); break;
    default: quantize_pass<8>(xs, xq, xd, nblk, blk); break;
    }
}

/* The rows of the quantized GEMVs (Q8_0 in gemv.cu, Q4_0 and the K-quants in quant.cu): wpb warps a block,
 * gb.wpr[i] of them per row of part i (1 to wpb / 2, a power of two, from the weight's own shape so that a
 * row's sum never depends on the batch; 1 unless S), the row's 32-value units dealt to their lanes in
 * turns (warp kw's lane l takes units 32 (wpr j + kw) + l, j = 0, 1, ...), so that a weight of few rows
 * with long inputs still fills the device; blocks [gb.blk[i], gb.blk[i + 1]) take part i's rows in order
 * and stride over the rest. With the GLU epilogue (in.glu_out: a gate part and an up part of one shape
 * over one range of blocks) the row groups take virtual rows v = 2 row + part: groups 2j and 2j + 1 of a
 * block compute the gate and the up row of one row, each group one part for the whole launch. */
typedef struct gemv_rows {
    int bi;    /* the part this warp computes */
    int row;   /* its first row of it */
    int first; /* the block's first row: every warp of the block runs the rows loop equally often */
    int step;  /* the rows the part's blocks stride over */
    int wpr;   /* warps per row */
    int kw;    /* this warp's place among its row's warps */
} gemv_rows;
template <bool S>
static __device__ __forceinline__ gemv_rows gemv_warp_rows(const gemv_batch &gb, const ck_fused_in &in, int wpb) {
    gemv_rows r;
    int b = 0, warp = (int)(threadIdx.x >> 5);
    while (b + 1 < gb.n && blockIdx.x >= gb.blk[b + 1]) b++;
    r.wpr = S ? gb.wpr[b] : 1;
    int rpb = wpb / r.wpr, v0 = (int)(blockIdx.x - gb.blk[b]) * rpb, v = v0 + warp / r.wpr, sh = in.glu_out ? 1 : 0;
    r.bi = sh ? v & 1 : b;
    r.row = v >> sh, r.first = v0 >> sh;
    r.step = ((int)(gb.blk[b + 1] - gb.blk[b]) * rpb) >> sh;
    r.kw = warp % r.wpr;
    return r;
}

/* The end of a row of the quantized GEMVs and of gemv.cu's split kernel: the sums of the row's warps (in
 * order of kw) stored by gemv_store, then the GLU epilogue. part: shared memory for the warps' sums of MT
 * token rows (S: wpr may be > 1; acc [MT] is overwritten). With the GLU and S false (a warp per row): the
 * two warps of a pair meet at a barrier of their own (ids 1 to 8: 16 warps a block at most; __syncthreads
 * is 0) and the gate warp writes glu_out = act(gate) * up for its row; S: the block writes it for its rows
 * after its barrier. Called by every warp of the block equally often. glu_out may be the gate's or the
 * up's range: each element is read before it is written, by the same thread. */
template <bool S, int MT>
static __device__ __forceinline__ void gemv_rows_end(const gemv_rows &r, float *acc, int T, int n_out,
                                                     const float *bias, float *y, float *res, const gemv_batch &gb,
                                                     const ck_fused_in &in, ck_cuda_flags *flags, float (*part)[MT]) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (!S) {
        if (r.row < n_out) gemv_store(acc, T, r.row, n_out, lane, bias, y, res, in, flags);
        if (in.glu_out) {
            asm volatile("bar.sync %0, 64;" ::"r"(1 + (int)(threadIdx.x >> 6)) : "memory");
            if (r.bi == 0 && lane == 0 && r.row < n_out)
                for (int t = 0; t < T; t++) {
                    size_t o = (size_t)t * n_out + r.row;
                    in.glu_out[o] = ck_glu(gb.y[0][o], gb.y[1][o], in.glu_gelu);
                }
        }
    } else {
#pragma unroll
        for (int t = 0; t < MT; t++) {
            if (t >= T) break;
            float s = ck_warp_sum(acc[t]);
            if (lane == 0) part[warp][t] = s;
        }
        __syncthreads();
        if (r.kw == 0 && r.row < n_out) { /* the row's first warp: its warps' sums in order, then the epilogue */
#pragma unroll
            for (int t = 0; t < MT; t++) {
                if (t >= T) break;
                float s = 0.0f;
                for (int k = 0; k < r.wpr; k++) s += part[warp + k][t];
                acc[t] = lane == 0 ? s : 0.0f; /* gemv_store sums over the warp: lane 0 holds the total */
            }
            gemv_store(acc, T, r.row, n_out, lane, bias, y, res, in, flags);
        }
        __syncthreads(); /* part is rewritten by the next rows; the GLU reads both parts' stores */
        if (in.glu_out) {
            int rows = (int)(blockDim.x >> 5) / r.wpr / 2;
            for (int i = threadIdx.x; i < rows * T; i += blockDim.x) {
                int rr = r.first + i % rows, t = i / rows;
                if (rr >= n_out) continue;
                size_t o = (size_t)t * n_out + rr;
                in.glu_out[o] = ck_glu(gb.y[0][o], gb.y[1][o], in.glu_gelu);
            }
        }
    }
}

/* The block's input rows staged (gemv_input, with its fused producer) and quantized in blocks of blk
 * (quantize_rows) into the shared memory after xs [T * n_in] floats: *xq [T * n_in] int8,
 * then *xd [T * n_in / blk] floats, the layout gemv.cu's gemv_smem_bytes sizes for quantized weights. Ends
 * with the block synchronized. */
static __device__ __forceinline__ void gemv_input_quantized(float *xs, float *red, const ck_fused_in &in,
                                                            unsigned *counter, const float *x, int n_in, int T,
                                                            int blk, int8_t **xq, float **xd) {
    gemv_input(xs, red, in, counter, x, n_in, T);
    *xq = (int8_t *)(xs + T * n_in);
    *xd = (float *)(*xq + T * n_in);
    quantize_rows(xs, *xq, *xd, T * n_in, blk);
    __syncthreads();
}

/* The GEMV of Q4_0 / Q4_K / Q5_K / Q6_K weights (quant.cu): a launch over gb's parts, as the Q8_0 kernel
 * (16 warps a block, gemv_warp_rows's rows, shared memory as gemv.cu's gemv_smem_bytes for Q8_0); its kernels'
 * shared-memory limit is raised to bytes by ck_cuda_gemv_quant_smem (nonzero on failure). */
int ck_cuda_gemv_quant_smem(int bytes);
cudaError_t ck_cuda_gemv_quant(ck_dtype dt, unsigned blocks, size_t smem, cudaStream_t st, int pdl, const gemv_batch &gb,
                               const ck_fused_in &in, unsigned *counter, ck_cuda_flags *flags, int n_in, int T, int split);

#endif
