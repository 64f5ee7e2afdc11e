/* gemv.cu — the embedding lookup and the matmul op: decode-sized calls (T <= CK_CUDA_GEMV_ROWS token
 * rows, in groups of CK_CUDA_GEMV_MAX_T) run our own GEMV, larger ones go to cuBLAS (gemm.cu).
 * GEMV: each lane reads weight rows in 16-byte pieces (8 bf16/f16 or 4 f32 values) and multiplies them
 * with the matching input values, accumulating in f32 for up to 8 token rows at once, so each weight byte
 * is read once per call. Three kernels: the split kernel (decode-sized weights: a row's pieces over 1-16
 * warps), the shared-memory kernel (a warp per row or two; the output head) and the plain kernel (rows
 * not 16-byte aligned, or inputs too long for shared memory); Q8_0 has its own. The scalar reference is
 * the CPU backend's dot product (ref.c); test_backend checks all of them against double-precision loops. */
#include "backend/cuda/gemv.cuh"

/* Calls of up to this many rows (a decode batch) run the GEMV in groups of 8 rows, so that every row's
 * result is that of the row alone (backend.h's batch invariance); larger ones (prefill chunks) go to
 * cuBLAS, whose sums are ordered differently (within the GPU tolerance, not bit for bit). */
#define CK_CUDA_GEMV_ROWS 64
#define ROWS_PER_BLOCK 8

template <typename T> struct wt;
template <> struct wt<float> {
    static __device__ __forceinline__ float get(const float *p, size_t i) { return p[i]; }
    enum { per16 = 4 };
};
struct bf16_t { uint16_t v; };
struct f16_t { uint16_t v; };
template <> struct wt<bf16_t> {
    static __device__ __forceinline__ float get(const bf16_t *p, size_t i) { return ck_bf16f(p[i].v); }
    enum { per16 = 8 };
};
template <> struct wt<f16_t> {
    static __device__ __forceinline__ float get(const f16_t *p, size_t i) { return ck_f16f(p[i].v); }
    enum { per16 = 8 };
};

/* The 8 (or 4) values of one 16-byte piece, as floats. */
static __device__ __forceinline__ void unpack(const uint4 &u, float *f, bf16_t *) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) f[2 * i] = __uint_as_float(w[i] << 16), f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
}
static __device__ __forceinline__ void unpack(const uint4 &u, float *f, f16_t *) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __half2float(__ushort_as_half((unsigned short)(w[i] & 0xffff)));
        f[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(w[i] >> 16)));
    }
}
static __device__ __forceinline__ void unpack(const uint4 &u, float *f, float *) {
    f[0] = __uint_as_float(u.x), f[1] = __uint_as_float(u.y), f[2] = __uint_as_float(u.z), f[3] = __uint_as_float(u.w);
}

/* The fast path's activations (gemm.cu): rounded to the 16-bit weights' type before they multiply them
 * (rnd 1: bf16, 2: f16 clamped to its range; 0: as they are), so that a decode row meets the rounding of a
 * prefill GEMM. The producer's output (ck_fused_in.out) keeps the unrounded values. */
static __device__ __forceinline__ float round16(float v, int rnd) {
    if (rnd == 1) return __bfloat162float(__float2bfloat16_rn(v));
    return __half2float(__float2half_rn(ck_clamp_f16(v)));
}
static __device__ __forceinline__ float4 round16(float4 v, int rnd) {
    if (rnd) v.x = round16(v.x, rnd), v.y = round16(v.y, rnd), v.z = round16(v.z, rnd), v.w = round16(v.w, rnd);
    return v;
}

/* The staged input rows xs [n] rounded in place as round16 does (rnd 0: left as they are), once per block
 * instead of once per weight piece. Starts and ends with the block synchronized (the producer's output,
 * which keeps the unrounded values, has been written from xs by then). */
static __device__ __forceinline__ void round16_rows(float *xs, int n, int rnd) {
    if (!rnd) return;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) xs[i] = round16(xs[i], rnd);
    __syncthreads();
}

/* acc[t] += the dot product of weight piece p (u: 16 bytes) with the matching values of input row t in
 * shared memory (xs4: T rows of n_in floats, already rounded), each piece's 4-value groups summed left to
 * right. */
template <typename W, int MT>
static __device__ __forceinline__ void piece_dot(const uint4 &u, const float4 *xs4, int p, int n_in, int T,
                                                 float *acc) {
    const int P = wt<W>::per16;
    float f[P];
    unpack(u, f, (W *)0);
#pragma unroll
    for (int t = 0; t < MT; t++) {
        if (t >= T) break;
        const float4 *xp = xs4 + (t * n_in + p * P) / 4;
        float s = 0.0f;
#pragma unroll
        for (int q = 0; q < P / 4; q++) {
            float4 xv = xp[q];
            s += f[4 * q] * xv.x + f[4 * q + 1] * xv.y + f[4 * q + 2] * xv.z + f[4 * q + 3] * xv.w;
        }
        acc[t] += s;
    }
}

/* The plain kernel: x read from global memory (inputs too long for shared memory, unaligned rows). */
template <typename W>
static __global__ void __launch_bounds__(32 * ROWS_PER_BLOCK)
gemv_kernel(gemv_batch gb, int n_in, int T, int vec, int rnd) {
    int bi = 0;
    while (bi + 1 < gb.n && blockIdx.x >= gb.blk[bi + 1]) bi++;
    int row = (int)(blockIdx.x - gb.blk[bi]) * ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    int n_out = gb.n_out[bi];
    if (row >= n_out) return;
    const W *w = (const W *)gb.w[bi] + (size_t)row * n_in;
    const float *__restrict__ x = gb.x[bi];
    float acc[CK_CUDA_GEMV_MAX_T];
#pragma unroll
    for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) acc[t] = 0.0f;
    const int P = wt<W>::per16;
    if (vec) {
        const uint4 *wp = (const uint4 *)w;
        int pieces = n_in / P;
#pragma unroll 4
        for (int p = lane; p < pieces; p += 32) {
            uint4 u = __ldg(wp + p);
            float f[P];
            unpack(u, f, (W *)0);
#pragma unroll
            for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) {
                if (t >= T) break;
                const float4 *xp = (const float4 *)(x + (size_t)t * n_in + (size_t)p * P);
                float s = 0.0f;
#pragma unroll
                for (int q = 0; q < P / 4; q++) {
                    float4 xv = round16(__ldg(xp + q), rnd);
                    s += f[4 * q] * xv.x + f[4 * q + 1] * xv.y + f[4 * q + 2] * xv.z + f[4 * q + 3] * xv.w;
                }
                acc[t] += s;
            }
        }
    } else {
        for (int i = lane; i < n_in; i += 32) {
            float wv = wt<W>::get(w, i);
#pragma unroll
            for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) {
                if (t >= T) break;
                float xv = x[(size_t)t * n_in + i];
                acc[t] += wv * (rnd ? round16(xv, rnd) : xv);
            }
        }
    }
    const float *bias = gb.bias[bi];
    float *y = gb.y[bi];
#pragma unroll
    for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) {
        if (t >= T) break;
        float s = ck_warp_sum(acc[t]);
        if (lane == 0) y[(size_t)t * n_out + row] = s + (bias ? bias[row] : 0.0f);
    }
}

/* The shared-memory kernel (16-byte aligned rows of whole pieces, T * n_in floats fitting the block's
 * shared memory): each warp first issues the loads of its row's first CH pieces per lane (weights do not
 * depend on earlier kernels), then the block fills xs with the T input rows, made by the fused producer
 * when there is one (in.kind), and the warps walk their rows (a part with more rows than its blocks'
 * warps strides over them). The products are summed in the plain kernel's order: per lane, pieces
 * lane, lane + 32, ... with each piece's 4-float groups summed left to right, then the warp sum. */
template <typename W, int RW, int MT>
static __global__ void __launch_bounds__(32 * ROWS_PER_BLOCK)
gemv_smem_kernel(gemv_batch gb, ck_fused_in in, unsigned *counter, ck_cuda_flags *flags, int n_in, int T, int rnd) {
    extern __shared__ float4 xs4[];
    float *xs = (float *)xs4;
    __shared__ float red[32];
    int bi = 0;
    while (bi + 1 < gb.n && blockIdx.x >= gb.blk[bi + 1]) bi++;
    const int P = wt<W>::per16, CH = RW == 2 ? 8 : 16, CPR = CH / RW; /* load slots per lane, per row */
    int nblk = (int)(gb.blk[bi + 1] - gb.blk[bi]), step = nblk * ROWS_PER_BLOCK * RW;
    int row = ((int)(blockIdx.x - gb.blk[bi]) * ROWS_PER_BLOCK + (threadIdx.x >> 5)) * RW, lane = threadIdx.x & 31;
    int n_out = gb.n_out[bi], pieces = n_in / P;
    const uint4 *W0 = (const uint4 *)gb.w[bi];
    size_t rp = (size_t)pieces; /* pieces per row */
    uint4 u[CH];
    ck_pdl_trigger();
#pragma unroll
    for (int c = 0; c < CH; c++) {
        int r = row + c / CPR, p = lane + 32 * (c % CPR);
        u[c] = r < n_out && p < pieces ? __ldg(W0 + (size_t)r * rp + p) : make_uint4(0, 0, 0, 0);
    }
    gemv_prefetch_in(in, n_in);
    ck_pdl_wait(); /* weights are never written by a kernel: everything else waits for the one before */
    gemv_prefetch_res(gb.res[bi], row, n_out, T);
    gemv_input(xs, red, in, counter, gb.x[bi], n_in, T);
    round16_rows(xs, T * n_in, rnd);
    const float *bias = gb.bias[bi];
    float *y = gb.y[bi], *res = gb.res[bi];
    for (; row < n_out; row += step) {
        float acc[RW][MT];
#pragma unroll
        for (int r = 0; r < RW; r++)
#pragma unroll
            for (int t = 0; t < MT; t++) acc[r][t] = 0.0f;
        for (int base = 0;;) {
#pragma unroll
            for (int c = 0; c < CH; c++) {
                int p = base + lane + 32 * (c % CPR);
                if (p >= pieces) continue;
                piece_dot<W, MT>(u[c], xs4, p, n_in, T, acc[c / CPR]);
            }
            base += 32 * CPR;
            if (base >= pieces) break;
#pragma unroll
            for (int c = 0; c < CH; c++) {
                int r = row + c / CPR, p = base + lane + 32 * (c % CPR);
                u[c] = r < n_out && p < pieces ? __ldg(W0 + (size_t)r * rp + p) : make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int r = 0; r < RW; r++)
            if (row + r < n_out) gemv_store(acc[r], T, row + r, n_out, lane, bias, y, res, in, flags);
#pragma unroll
        for (int c = 0; c < CH; c++) { /* the next rows' first pieces */
            int r = row + step + c / CPR, p = lane + 32 * (c % CPR);
            u[c] = r < n_out && p < pieces ? __ldg(W0 + (size_t)r * rp + p) : make_uint4(0, 0, 0, 0);
        }
    }
}

/* The split kernel, for decode-sized weights: SPLIT_WARPS warps per block, a row's 16-byte pieces spread
 * over gb.wpr[i] of them (1 to 16, chosen by split_wpr from part i's weight shape) so that every warp has a
 * short instruction stream and each lane's share of a row fits the SPLIT_NJ pieces it loads at once: a small
 * GEMV is bound by the latency of each warp's chain (rounds of loads included), not by the bytes. As in the
 * shared-memory kernel, the lanes issue their first weight loads before
 * waiting for the kernel before it, the block stages the input rows (made by the fused producer) in shared
 * memory, and blocks are capped at what the device holds at once, the row groups strided over. Order of
 * the sums: per lane its pieces in order (each piece's 4-value groups left to right), the warp sum, then
 * the row's warps in order; it depends on the weight's shape only, never on T or the other parts, so a
 * row's result does not depend on its batch. With the GLU epilogue (fuse.cu's gemv_glu: a gate and an up
 * part) the two parts' rows are interleaved so that a row group holds both of its rows, and after storing
 * them the block writes their GLU (gemv.cuh's gemv_rows_end). */
#define SPLIT_WARPS 16
#define SPLIT_NJ 4 /* pieces per lane loaded at once */
template <typename W, int MT>
static __global__ void __launch_bounds__(32 * SPLIT_WARPS, 2)
gemv_split_kernel(gemv_batch gb, ck_fused_in in, unsigned *counter, ck_cuda_flags *flags, int n_in, int T, int rnd) {
    extern __shared__ float4 xs4[];
    float *xs = (float *)xs4;
    __shared__ float part[SPLIT_WARPS][MT];
    __shared__ float red[32];
    int bi = 0;
    while (bi + 1 < gb.n && blockIdx.x >= gb.blk[bi + 1]) bi++;
    const int P = wt<W>::per16;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wpr = gb.wpr[bi], rpb = SPLIT_WARPS / wpr;
    /* rows are virtual: with the GLU epilogue (in.glu_out) the two parts' rows interleave (virtual row v is
     * row v / 2 of part v % 2; a row group holds both parts of its rows), else they are the part's rows */
    int sh = in.glu_out ? 1 : 0, pi = sh ? (((int)(blockIdx.x - gb.blk[bi]) * rpb + warp / wpr) & 1) : bi;
    int nblk = (int)(gb.blk[bi + 1] - gb.blk[bi]), step = nblk * rpb;
    int row = (int)(blockIdx.x - gb.blk[bi]) * rpb + warp / wpr, kw = warp % wpr;
    int n_out = gb.n_out[pi], V = n_out << sh, pieces = n_in / P, stride = 32 * wpr, p0 = kw * 32 + lane;
    const uint4 *W0 = (const uint4 *)gb.w[pi];
    uint4 u[SPLIT_NJ];
#pragma unroll
    for (int j = 0; j < SPLIT_NJ; j++) {
        int p = p0 + j * stride;
        u[j] = row < V && p < pieces ? __ldg(W0 + (size_t)(row >> sh) * pieces + p) : make_uint4(0, 0, 0, 0);
    }
    ck_pdl_trigger();
    gemv_prefetch_in(in, n_in);
    ck_pdl_wait(); /* weights are never written by a kernel: everything else waits for the one before */
    if (kw == 0) gemv_prefetch_res(gb.res[pi], row >> sh, n_out, T);
    gemv_input(xs, red, in, counter, gb.x[bi], n_in, T);
    round16_rows(xs, T * n_in, rnd);
    const float *bias = gb.bias[pi];
    float *y = gb.y[pi], *res = gb.res[pi];
    for (int r0 = row - warp / wpr; r0 < V; r0 += step, row += step) { /* r0: the block's first row */
        float acc[MT];
#pragma unroll
        for (int t = 0; t < MT; t++) acc[t] = 0.0f;
        for (int base = 0;;) {
#pragma unroll
            for (int j = 0; j < SPLIT_NJ; j++) {
                int p = p0 + base + j * stride;
                if (row >= V || p >= pieces) break;
                piece_dot<W, MT>(u[j], xs4, p, n_in, T, acc);
            }
            base += SPLIT_NJ * stride;
            int more = base < pieces, r = more ? row : row + step, b0 = more ? base : 0;
#pragma unroll
            for (int j = 0; j < SPLIT_NJ; j++) { /* the next pieces, or the next row group's first */
                int p = p0 + b0 + j * stride;
                u[j] = r < V && p < pieces ? __ldg(W0 + (size_t)(r >> sh) * pieces + p) : make_uint4(0, 0, 0, 0);
            }
            if (!more) break;
        }
        gemv_rows rows = {pi, row >> sh, r0 >> sh, step >> sh, wpr, kw}; /* (real rows) */
        gemv_rows_end<true, MT>(rows, acc, T, n_out, bias, y, res, gb, in, flags, part);
    }
}

/* The shared-memory kernel for rw rows per warp, specialized for one token row (decode). */
template <typename W>
static cudaError_t launch_smem(int rw, int T, dim3 g, dim3 bl, size_t smem, cudaStream_t st, int pdl,
                               const gemv_batch &gb, const ck_fused_in &in, unsigned *counter, ck_cuda_flags *flags,
                               int n_in, int rnd) {
    const int M = CK_CUDA_GEMV_MAX_T;
    if (rw == 2)
        return T == 1 ? ck_cuda_launch(gemv_smem_kernel<W, 2, 1>, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T, rnd)
                      : ck_cuda_launch(gemv_smem_kernel<W, 2, M>, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T, rnd);
    return T == 1 ? ck_cuda_launch(gemv_smem_kernel<W, 1, 1>, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T, rnd)
                  : ck_cuda_launch(gemv_smem_kernel<W, 1, M>, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T, rnd);
}

/* Launches a split kernel of the weight type W (T == 1 specialized). */
template <typename W>
static cudaError_t launch_split(int T, dim3 g, dim3 bl, size_t smem, cudaStream_t st, int pdl, const gemv_batch &gb,
                                const ck_fused_in &in, unsigned *counter, ck_cuda_flags *flags, int n_in, int rnd) {
    return T == 1 ? ck_cuda_launch(gemv_split_kernel<W, 1>, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T, rnd)
                  : ck_cuda_launch(gemv_split_kernel<W, CK_CUDA_GEMV_MAX_T>, g, bl, smem, st, pdl, gb, in, counter, flags,
                                   n_in, T, rnd);
}

template <typename W> static int smem_limit(int bytes) {
    return cudaFuncSetAttribute(gemv_split_kernel<W, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ||
           cudaFuncSetAttribute(gemv_split_kernel<W, CK_CUDA_GEMV_MAX_T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                bytes) ||
           cudaFuncSetAttribute(gemv_smem_kernel<W, 1, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ||
           cudaFuncSetAttribute(gemv_smem_kernel<W, 2, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ||
           cudaFuncSetAttribute(gemv_smem_kernel<W, 1, CK_CUDA_GEMV_MAX_T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                bytes) ||
           cudaFuncSetAttribute(gemv_smem_kernel<W, 2, CK_CUDA_GEMV_MAX_T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                bytes);
}

/* Q8_0 weights, resident in their format but laid out per row for aligned loads (prepare_weight): the
 * row's 32-value blocks' int8 quants [n_in], then their f16 scales [n_in / 32], the row padded to 16 bytes
 * (ck_cuda_q8_stride). As on the CPU (tensor/quant.h), each input row is first quantized to Q8 blocks (d =
 * max|x| / 127, q = round-to-nearest-even(x / d)) and each block's integer sum (dp4a, exact) is combined in
 * float as (wd * xd) * isum without fused multiply-adds; the lane's blocks are summed in order, then the
 * warp's lanes, then the row's warps (gemv.cuh's gemv_warp_rows: wpr warps a row). Shared memory: the
 * float rows, their int8 quants, their block scales. */
#define Q8_CH 2 /* blocks per lane loaded ahead */
#define Q8_WARPS 16 /* two blocks per multiprocessor: short chains, many in flight */

/* The lane's next Q8_CH blocks of row wr from block b0 on (lb: the lane's first block, bs: the stride). */
static __device__ __forceinline__ void q8_load(uint4 (*u)[2], unsigned short *wd, const char *wr, int n_in, int nb,
                                               int b0, int bs) {
#pragma unroll
    for (int c = 0; c < Q8_CH; c++) {
        int b = b0 + c * bs;
        if (b < nb) {
            u[c][0] = __ldg((const uint4 *)(wr + 32 * b)), u[c][1] = __ldg((const uint4 *)(wr + 32 * b + 16));
            wd[c] = __ldg((const unsigned short *)(wr + n_in) + b);
        }
    }
}

template <bool S> /* S: some part has wpr > 1 */
static __global__ void __launch_bounds__(32 * Q8_WARPS, 2)
gemv_q8_kernel(gemv_batch gb, ck_fused_in in, unsigned *counter, ck_cuda_flags *flags, int n_in, int T) {
    extern __shared__ float4 xs4[];
    float *xs = (float *)xs4;
    __shared__ float red[32];
    __shared__ float part[Q8_WARPS][CK_CUDA_GEMV_MAX_T];
    gemv_rows r = gemv_warp_rows<S>(gb, in, Q8_WARPS);
    int bi = r.bi, lane = threadIdx.x & 31, n_out = gb.n_out[bi], nb = n_in / 32;
    int lb = r.kw * 32 + lane, bs = 32 * r.wpr; /* the lane's blocks: lb, lb + bs, lb + 2 bs, ... */
    size_t stride = ck_cuda_q8_stride((size_t)n_in);
    const char *W = (const char *)gb.w[bi];
    uint4 u[Q8_CH][2] = {};
    unsigned short wd[Q8_CH] = {};
    ck_pdl_trigger();
    if (r.row < n_out) q8_load(u, wd, W + (size_t)r.row * stride, n_in, nb, lb, bs);
    gemv_prefetch_in(in, n_in);
    ck_pdl_wait();
    if (r.kw == 0) gemv_prefetch_res(gb.res[bi], r.row, n_out, T);
    int8_t *xq;
    float *xd;
    gemv_input_quantized(xs, red, in, counter, gb.x[bi], n_in, T, 32, &xq, &xd);
    const float *bias = gb.bias[bi];
    float *y = gb.y[bi], *res = gb.res[bi];
    for (; r.first < n_out; r.first += r.step, r.row += r.step) {
        float acc[CK_CUDA_GEMV_MAX_T];
#pragma unroll
        for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) acc[t] = 0.0f;
        const char *wr = W + (size_t)r.row * stride;
        for (int base = lb; r.row < n_out;) {
#pragma unroll
            for (int c = 0; c < Q8_CH; c++) {
                int b = base + c * bs;
                if (b >= nb) break;
                const int *wq0 = (const int *)&u[c][0], *wq1 = (const int *)&u[c][1];
                float w_d = __half2float(__ushort_as_half(wd[c]));
#pragma unroll
                for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) {
                    if (t >= T) break;
                    const int *xi = (const int *)(xq + t * n_in + 32 * b);
                    int is = 0;
#pragma unroll
                    for (int j = 0; j < 4; j++) is = __dp4a(wq0[j], xi[j], is);
#pragma unroll
                    for (int j = 0; j < 4; j++) is = __dp4a(wq1[j], xi[4 + j], is);
                    acc[t] = __fadd_rn(acc[t], __fmul_rn(__fmul_rn(w_d, xd[t * nb + b]), (float)is));
                }
            }
            base += Q8_CH * bs;
            if (base >= nb) break;
            q8_load(u, wd, wr, n_in, nb, base, bs);
        }
        if (r.row + r.step < n_out) /* the next row's first blocks, before this row's sums are stored */
            q8_load(u, wd, W + (size_t)(r.row + r.step) * stride, n_in, nb, lb, bs);
        gemv_rows_end<S, CK_CUDA_GEMV_MAX_T>(r, acc, T, n_out, bias, y, res, gb, in, flags, part);
    }
}

static __global__ void add_bias_kernel(float *y, const float *bias, size_t T, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < T * n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += bias[i % n];
}

/* Blocks of a part of n_out rows in the shared-memory kernel: a block per 8 rows up to as many blocks
 * as the device holds at once (c->gemv_blocks), the warps striding over the rest (the input rows are
 * staged once per block). */

/* Shared memory of a GEMV launch: the float input rows, and for Q8_0 their quants and block scales. */
static size_t gemv_smem_bytes(size_t T, size_t n_in, int q8) {
    return T * n_in * sizeof(float) + (q8 ? T * n_in + T * (n_in / 32) * sizeof(float) : 0);
}

/* (The Q8_0 size, so that a fusion decided before the weight's dtype is looked at always fits.) */
int ck_cuda_gemv_smem_ok(ck_backend *b, size_t T, size_t n_in) {
    return T >= 1 && T <= CK_CUDA_GEMV_MAX_T && gemv_smem_bytes(T, n_in, 1) <= ck_cu(b)->gemv_smem;
}

/* Whether the batch runs on the split kernel (rows fitting shared memory, 16-bit or f32 weights): not when
 * one of its weights has more than CK_CUDA_SPLIT_MAX_BYTES (the output head), which streams better from
 * the shared-memory kernel's long warps. CK_CUDA_SPLIT_GEMV=0 turns the split kernel off. */
#define CK_CUDA_SPLIT_MAX_BYTES (64u << 20)
static int split_ok(ck_backend *b, const ck_batch_part *parts, int n, int dt, int n_in) {
    if (!ck_cu(b)->split_gemv || dt == CK_Q8_0) return 0;
    for (int i = 0; i < n; i++)
        if ((size_t)parts[i].a[4] * (size_t)n_in * (dt == CK_F32 ? 4 : 2) > CK_CUDA_SPLIT_MAX_BYTES) return 0;
    return 1;
}
/* Warps per row of the split kernel for a weight of n_out rows of n_in: no more than a lane's SPLIT_NJ
 * pieces a row need (each lane loads its share of the row in one round, before the wait for the kernel
 * ahead), and no more than keep the weight's rows within one wave of warps, each lane with at least one
 * piece. More warps per row would leave a lane fewer pieces than it loads at once while the rows of a
 * batch (q, k and v) overflow the wave and wait for another round of loads after the wait. From the weight
 * alone, never from the batch it joins, so that a row's sum is the same in every batch (backend.h's batch
 * invariance). CK_CUDA_SPLIT_WPR=fill: the wave's rule alone. */
static int split_wpr(ck_backend *b, size_t n_out, int dt, int n_in) {
    int pieces = n_in / (dt == CK_F32 ? 4 : 8), wpr = 1;
    while (wpr < SPLIT_WARPS && n_out * (size_t)wpr * 2 <= (size_t)ck_cu(b)->split_blocks * SPLIT_WARPS &&
           pieces >= 64 * wpr && (ck_cu(b)->split_wpr_fill || pieces > 32 * SPLIT_NJ * wpr))
        wpr *= 2;
    return wpr;
}

/* Warps per row of the quantized GEMVs for a weight of n_out rows of n_in (1 to Q8_WARPS / 2, so that the
 * GLU epilogue's row groups pair up in a block): doubled while the weight's rows still fit one wave of the
 * device and its warps' lanes still have more than one 32-value unit each, so that a weight of few rows
 * with long inputs (the o and down projections) runs on all multiprocessors with short chains of loads.
 * From the weight alone, never from the batch it joins, so that a row's sum is the same in every batch.
 * CK_CUDA_SPLIT_GEMV=0: a warp per row. */
static int quant_wpr(ck_backend *b, size_t n_out, int n_in) {
    ck_cuda *c = ck_cu(b);
    int units = n_in / 32, wpr = 1;
    while (c->split_gemv && wpr < Q8_WARPS / 2 && n_out * (size_t)wpr * 2 <= (size_t)c->q8_blocks * Q8_WARPS &&
           units > 32 * wpr)
        wpr *= 2;
    return wpr;
}

/* The blocks of a launch of wpb-warp blocks whose part i runs gb->wpr[i] warps per row: a block per
 * wpb / wpr rows, no more blocks than the device holds at once (cap; the rows are strided over), and with
 * the GLU epilogue (glu: a gate and an up part of one shape, taken when a block holds at least two row
 * groups) both parts' rows in one range of blocks. Returns whether the GLU epilogue is taken. */
static int gemv_blocks(gemv_batch *gb, const ck_batch_part *parts, int n, int wpb, unsigned cap, int glu) {
    unsigned want[CK_BATCH_MAX], tot = 0;
    for (int i = 0; i < n; i++) {
        unsigned rpb = (unsigned)(wpb / gb->wpr[i]);
        want[i] = (unsigned)((parts[i].a[4] + rpb - 1) / rpb), tot += want[i];
    }
    for (int i = 0; i < n; i++) {
        unsigned nb = want[i];
        if (tot > cap) nb = (unsigned)((uint64_t)want[i] * cap / tot);
        gb->blk[i + 1] = gb->blk[i] + (nb ? nb : 1);
    }
    unsigned rpb = (unsigned)(wpb / gb->wpr[0]);
    if (!glu || n != 2 || rpb < 2) return 0;
    unsigned nb = (unsigned)((2 * parts[0].a[4] + rpb - 1) / rpb);
    gb->blk[1] = gb->blk[2] = nb < cap ? nb : cap;
    return 1;
}

/* part.a: y, x, w, bias, n_out, res; compat: dtype, n_in, T, vec */
/* Returns 1 when the launch includes the GLU epilogue asked for (in.glu_out; 0: the caller runs the glu). */
static int gemv_launch(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat) {
    ck_cuda *c = ck_cu(b);
    ck_fused_in in = c->emit_in; /* set by ck_cuda_batch_emit; zero for a direct call */
    float *glu_out = in.glu_out;
    in.glu_out = NULL; /* the split and the quantized kernels take the GLU epilogue */
    gemv_batch gb;
    memset(&gb, 0, sizeof gb);
    gb.n = n;
    int dt = (int)compat[0], n_in = (int)compat[1], T = (int)compat[2], vec = (int)compat[3];
    int quant = dt == CK_Q8_0 || ck_cuda_is_quant((ck_dtype)dt); /* block-quantized: inputs quantized too */
    size_t smem = gemv_smem_bytes((size_t)T, (size_t)n_in, quant);
    int use_smem = vec && smem <= c->gemv_smem;
    /* rows per warp: two when a row takes at most half the load slots (n_in <= 1024 for 16-bit weights), so
     * that as many bytes are in flight per warp and the blocks fit the device at once */
    int pieces = dt == CK_F32 ? n_in / 4 : n_in / 8, rw = use_smem && !quant && pieces <= 32 * 4 ? 2 : 1;
    unsigned want[CK_BATCH_MAX], total = 0;
    for (int i = 0; i < n; i++) {
        gb.y[i] = (float *)parts[i].a[0], gb.x[i] = (const float *)parts[i].a[1], gb.w[i] = (const void *)parts[i].a[2];
        gb.bias[i] = (const float *)parts[i].a[3], gb.n_out[i] = (int)parts[i].a[4], gb.res[i] = (float *)parts[i].a[5];
        want[i] = (unsigned)((parts[i].a[4] + ROWS_PER_BLOCK * rw - 1) / (ROWS_PER_BLOCK * rw));
        total += want[i];
    }
    for (int i = 0; i < n; i++) { /* the shared-memory kernels stride over rows: no more blocks than fit at once */
        unsigned nb = want[i];
        if ((use_smem || quant) && total > c->gemv_blocks) {
            nb = (unsigned)((uint64_t)want[i] * c->gemv_blocks / total);
            if (nb == 0) nb = 1;
        }
        gb.blk[i + 1] = gb.blk[i] + nb;
    }
    unsigned blocks = gb.blk[n];
    unsigned *counter = c->counter;
    ck_cuda_flags *flags = c->flags;
    uint64_t k[4 * 6] = {0};
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 6; j++) k[i * 6 + j] = parts[i].a[j];
    if (quant) { /* ck_cuda_matmul sized the groups of rows for shared memory; wpr warps a row */
        int split = 0;
        for (int i = 0; i < n; i++) gb.wpr[i] = quant_wpr(b, parts[i].a[4], n_in), split |= gb.wpr[i] > 1;
        if (gemv_blocks(&gb, parts, n, Q8_WARPS, c->q8_blocks, glu_out != NULL)) in.glu_out = glu_out;
        unsigned blocks = gb.blk[n];
        int pdl = c->pdl;
        ck_cuda_run(b, "gemv", [=](cudaStream_t st) {
            cudaError_t e = dt == CK_Q8_0 ? ck_cuda_launch(split ? gemv_q8_kernel<true> : gemv_q8_kernel<false>,
                                                           dim3(blocks), dim3(32 * Q8_WARPS), smem, st, pdl, gb, in,
                                                           counter, flags, n_in, T)
                                          : ck_cuda_gemv_quant((ck_dtype)dt, blocks, smem, st, pdl, gb, in, counter,
                                                               flags, n_in, T, split);
            ck_cuda_check(b, e, "matmul (quantized gemv)");
        }, dt, n_in, T, n, pdl, split, gb.wpr[0], gb.wpr[1], gb.wpr[2], gb.wpr[3], in.glu_out, in.glu_gelu, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13],
           k[14], k[15], k[16], k[17], k[18], k[19], k[20], k[21], k[22], k[23], in.kind, in.a, in.b, in.row, in.stride, in.out, in.eps,
           in.flag, in.chk, in.chk_tag, counter, flags);
        return in.glu_out != NULL;
    }
    /* the fast path rounds activations meeting 16-bit weights, as the prefill GEMM does (gemm.cu) */
    int rnd = ck_cpu_exact() ? 0 : dt == CK_BF16 ? 1 : dt == CK_F16 ? 2 : 0;
    int pdl = c->pdl;
    if (use_smem && split_ok(b, parts, n, dt, n_in)) { /* decode-sized weights: the split kernel, a block per
                                                          16 / wpr rows of every part */
        for (int i = 0; i < n; i++) gb.wpr[i] = split_wpr(b, parts[i].a[4], dt, n_in);
        if (gemv_blocks(&gb, parts, n, SPLIT_WARPS, c->split_blocks, glu_out != NULL)) in.glu_out = glu_out;
        unsigned sblocks = gb.blk[n];
        ck_cuda_run(b, "gemv", [=](cudaStream_t st) {
            cudaError_t e;
            dim3 g(sblocks), bl(32 * SPLIT_WARPS);
            if (dt == CK_F32) e = launch_split<float>(T, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, rnd);
            else if (dt == CK_BF16) e = launch_split<bf16_t>(T, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, rnd);
            else e = launch_split<f16_t>(T, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, rnd);
            ck_cuda_check(b, e, "matmul (gemv)");
        }, dt, n_in, T, n, pdl, gb.wpr[0], gb.wpr[1], gb.wpr[2], gb.wpr[3], rnd, in.glu_out, in.glu_gelu, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13],
           k[14], k[15], k[16], k[17], k[18], k[19], k[20], k[21], k[22], k[23], in.kind, in.a, in.b, in.row, in.stride, in.out, in.eps,
           in.flag, in.chk, in.chk_tag, counter, flags);
        return in.glu_out != NULL;
    }
    if (!use_smem) { /* fuse.cu fuses only what the shared-memory kernel can take, and no residual */
        ck_cuda_run(b, "gemv", [=](cudaStream_t st) {
            if (dt == CK_F32) gemv_kernel<float><<<blocks, 32 * ROWS_PER_BLOCK, 0, st>>>(gb, n_in, T, vec, rnd);
            else if (dt == CK_BF16) gemv_kernel<bf16_t><<<blocks, 32 * ROWS_PER_BLOCK, 0, st>>>(gb, n_in, T, vec, rnd);
            else gemv_kernel<f16_t><<<blocks, 32 * ROWS_PER_BLOCK, 0, st>>>(gb, n_in, T, vec, rnd);
            ck_cuda_launched(b, "matmul (gemv)");
        }, dt, n_in, T, vec, n, rnd, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13],
           k[14], k[15], k[16], k[17], k[18], k[19], k[20], k[21], k[22], k[23]);
        return 0;
    }
    ck_cuda_run(b, "gemv", [=](cudaStream_t st) {
        cudaError_t e;
        dim3 g(blocks), bl(32 * ROWS_PER_BLOCK);
        if (dt == CK_F32) e = launch_smem<float>(rw, T, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, rnd);
        else if (dt == CK_BF16) e = launch_smem<bf16_t>(rw, T, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, rnd);
        else e = launch_smem<f16_t>(rw, T, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, rnd);
        ck_cuda_check(b, e, "matmul (gemv)");
    }, dt, n_in, T, n, pdl, rnd, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13], k[14],
       k[15], k[16], k[17], k[18], k[19], k[20], k[21], k[22], k[23], in.kind, in.a, in.b, in.row, in.stride, in.out, in.eps, in.flag,
       in.chk, in.chk_tag, counter, flags);
    return 0;
}

/* The GEMV launch, then the glu it did not take as its epilogue (fuse.cu's gemv_glu). */
void ck_cuda_gemv_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat) {
    ck_fused_in in = ck_cu(b)->emit_in;
    if (gemv_launch(b, parts, n, compat) || !in.glu_out) return;
    size_t n_all = (size_t)compat[2] * parts[0].a[4];
    ck_batch_part g = {(const void *)parts[0].a[0], n_all * sizeof(float), in.glu_out, n_all * sizeof(float),
                       {(uint64_t)(uintptr_t)in.glu_out, parts[0].a[0], parts[1].a[0], n_all, (uint64_t)in.glu_gelu, 0}};
    uint64_t gc[8] = {n_all, (uint64_t)in.glu_gelu, (uint64_t)(uintptr_t)in.glu_out, 0, 0, 0, 0, 0};
    ck_cuda_glu_emit(b, &g, 1, gc);
}

/* Raises the shared-memory limit of the GEMV kernels (once per instance, before any capture). */
int ck_cuda_gemv_init(ck_backend *b) {
    ck_cuda *c = ck_cu(b);
    int dev_max = 0;
    size_t want = 96 * 1024;
    if (cudaDeviceGetAttribute(&dev_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, c->dev) != cudaSuccess) {
        cudaGetLastError();
        dev_max = 48 * 1024;
    }
    if ((size_t)dev_max < want) want = (size_t)dev_max;
    if (want > 48 * 1024 &&
        (cudaFuncSetAttribute(gemv_q8_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)want) ||
         cudaFuncSetAttribute(gemv_q8_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)want) ||
         ck_cuda_gemv_quant_smem((int)want) ||
         smem_limit<float>((int)want) || smem_limit<bf16_t>((int)want) || smem_limit<f16_t>((int)want))) {
        cudaGetLastError();
        want = 48 * 1024;
    }
    c->gemv_smem = want;
    int per_sm = 0, sms = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_smem_kernel<bf16_t, 2, 1>, 32 * ROWS_PER_BLOCK,
                                                      16 * 1024) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, c->dev) != cudaSuccess) {
        cudaGetLastError();
        per_sm = 2, sms = 32;
    }
    c->gemv_blocks = (unsigned)((per_sm > 0 ? per_sm : 1) * (sms > 0 ? sms : 1));
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_split_kernel<bf16_t, 1>, 32 * SPLIT_WARPS,
                                                      16 * 1024) != cudaSuccess) {
        cudaGetLastError();
        per_sm = 1;
    }
    c->split_blocks = (unsigned)((per_sm > 0 ? per_sm : 1) * (sms > 0 ? sms : 1));
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_q8_kernel<false>, 32 * Q8_WARPS, 16 * 1024) != cudaSuccess) {
        cudaGetLastError();
        per_sm = 1;
    }
    c->q8_blocks = (unsigned)((per_sm > 0 ? per_sm : 1) * (sms > 0 ? sms : 1));
    return 0;
}

template <typename W>
static void gemv(ck_backend *b, float *y, const float *x, const void *Wd, const float *bias, size_t n_in,
                 size_t n_out, size_t T, ck_dtype dt) {
    const int P = wt<W>::per16;
    int vec = n_in % P == 0 && ((uintptr_t)Wd & 15) == 0 && ((uintptr_t)x & 15) == 0;
    ck_batch_part part = {x, T * n_in * sizeof(float), y, T * n_out * sizeof(float),
                          {(uint64_t)(uintptr_t)y, (uint64_t)(uintptr_t)x, (uint64_t)(uintptr_t)Wd,
                           (uint64_t)(uintptr_t)bias, n_out, 0}};
    uint64_t compat[8] = {(uint64_t)dt, n_in, T, (uint64_t)vec, 0, 0, 0, 0};
    if (!ck_cuda_batch_add(b, ck_cuda_gemv_emit, compat, &part)) ck_cuda_gemv_emit(b, &part, 1, compat);
}

void ck_cuda_matmul(ck_backend *b, float *y, const float *x, const ck_tensor *W, const float *bias, size_t T) {
    size_t n_out = W->shape[0], n_in = W->shape[1];
    if (b->failed || T == 0 || n_out == 0) return;
    if (n_in > INT32_MAX || n_out > (size_t)INT32_MAX) {
        ck_backend_fail(b, "matmul: [%zu, %zu] is too large", n_out, n_in);
        return;
    }
    /* prefill through cuBLAS (gemm.cu); block-quantized weights only on the fast path (an f16 copy), the
     * exact one keeps the integer GEMV */
    int quant = W->dtype == CK_Q8_0 || ck_cuda_is_quant(W->dtype), qb = W->dtype == CK_Q8_0 ? 32 : ck_cuda_quant_block(W->dtype);
    if (T > CK_CUDA_GEMV_ROWS && (!quant || (!ck_cpu_exact() && n_in % qb == 0))) {
        if (ck_cuda_gemm(b, y, x, W, T) == 0 && bias)
            ck_cuda_run(b, "matmul bias", [=](cudaStream_t st) {
                add_bias_kernel<<<ck_cuda_blocks(T * n_out, 256), 256, 0, st>>>(y, bias, T, n_out);
                ck_cuda_launched(b, "matmul bias");
            }, y, bias, T, n_out);
        return;
    }
    if (quant) { /* GEMV (and exact prefill), in groups of rows whose quants fit shared memory */
        size_t G = CK_CUDA_GEMV_MAX_T;
        while (G > 1 && !ck_cuda_gemv_smem_ok(b, G, n_in)) G--;
        if (n_in % qb || !ck_cuda_gemv_smem_ok(b, G, n_in)) {
            ck_backend_fail(b, "matmul: %s rows of %zu values are not supported by the CUDA kernel",
                            ck_dtype_name(W->dtype), n_in);
            return;
        }
        for (size_t t0 = 0; t0 < T; t0 += G) {
            size_t n = T - t0 < G ? T - t0 : G;
            const float *xg = x + t0 * n_in;
            float *yg = y + t0 * n_out;
            ck_batch_part part = {xg, n * n_in * sizeof(float), yg, n * n_out * sizeof(float),
                                  {(uint64_t)(uintptr_t)yg, (uint64_t)(uintptr_t)xg, (uint64_t)(uintptr_t)W->data,
                                   (uint64_t)(uintptr_t)bias, n_out, 0}};
            uint64_t compat[8] = {(uint64_t)W->dtype, n_in, n, 1, 0, 0, 0, 0};
            if (!ck_cuda_batch_add(b, ck_cuda_gemv_emit, compat, &part)) ck_cuda_gemv_emit(b, &part, 1, compat);
        }
        return;
    }
    for (size_t t0 = 0; t0 < T; t0 += CK_CUDA_GEMV_MAX_T) { /* groups of 8 rows: one GEMV part each */
        size_t n = T - t0 < CK_CUDA_GEMV_MAX_T ? T - t0 : CK_CUDA_GEMV_MAX_T;
        float *yg = y + t0 * n_out;
        const float *xg = x + t0 * n_in;
        switch (W->dtype) {
        case CK_F32: gemv<float>(b, yg, xg, W->data, bias, n_in, n_out, n, CK_F32); break;
        case CK_BF16: gemv<bf16_t>(b, yg, xg, W->data, bias, n_in, n_out, n, CK_BF16); break;
        case CK_F16: gemv<f16_t>(b, yg, xg, W->data, bias, n_in, n_out, n, CK_F16); break;
        default: ck_backend_fail(b, "matmul: no CUDA kernel for dtype %s", ck_dtype_name(W->dtype)); return;
        }
    }
}

/* ---- embedding ---- */

template <typename W>
static __global__ void embed_kernel(float *y, const W *E, const int32_t *ids, size_t d, size_t T, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < T * d; i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / d, j = i % d;
        y[i] = wt<W>::get(E, (size_t)ids[t] * d + j) * scale;
    }
}

/* Q8_0 rows in the device layout (see gemv_q8_kernel): value j = scale[j / 32] * q[j], as dequantized on
 * the CPU, then times the embedding scale. */
static __global__ void embed_q8_kernel(float *y, const char *E, size_t stride, const int32_t *ids, size_t d, size_t T,
                                       float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < T * d; i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / d, j = i % d;
        const char *r = E + (size_t)ids[t] * stride;
        float sc = __half2float(__ushort_as_half(((const unsigned short *)(r + d))[j / 32]));
        float v = __fmul_rn(sc, (float)(int8_t)r[j]);
        y[i] = scale != 1.0f ? __fmul_rn(v, scale) : v;
    }
}

void ck_cuda_embed(ck_backend *b, float *y, const ck_tensor *E, const int32_t *ids, size_t T, float scale) {
    size_t d = E->shape[1];
    if (b->failed || T == 0) return;
    const int32_t *dids = (const int32_t *)ck_cuda_stage(b, ids, T * sizeof *ids, 0);
    if (!dids) return;
    unsigned g = ck_cuda_blocks(T * d, 256);
    ck_dtype dt = E->dtype;
    const void *e = E->data;
    if (dt == CK_Q8_0) {
        size_t stride = ck_cuda_q8_stride(d);
        ck_cuda_run(b, "embed", [=](cudaStream_t st) {
            embed_q8_kernel<<<g, 256, 0, st>>>(y, (const char *)e, stride, dids, d, T, scale);
            ck_cuda_launched(b, "embed");
        }, y, e, dids, d, T, scale, (int)dt, g);
        return;
    }
    if (ck_cuda_is_quant(dt)) {
        ck_cuda_run(b, "embed", [=](cudaStream_t st) {
            ck_cuda_embed_quant(st, y, dt, e, dids, d, T, scale);
            ck_cuda_launched(b, "embed");
        }, y, e, dids, d, T, scale, (int)dt);
        return;
    }
    if (dt != CK_F32 && dt != CK_BF16 && dt != CK_F16) {
        ck_backend_fail(b, "embedding: no CUDA kernel for dtype %s", ck_dtype_name(dt));
        return;
    }
    ck_cuda_run(b, "embed", [=](cudaStream_t st) {
        if (dt == CK_F32) embed_kernel<float><<<g, 256, 0, st>>>(y, (const float *)e, dids, d, T, scale);
        else if (dt == CK_BF16) embed_kernel<bf16_t><<<g, 256, 0, st>>>(y, (const bf16_t *)e, dids, d, T, scale);
        else embed_kernel<f16_t><<<g, 256, 0, st>>>(y, (const f16_t *)e, dids, d, T, scale);
        ck_cuda_launched(b, "embed");
    }, y, e, dids, d, T, scale, (int)dt, g);
}
