/* quant.cu — Q4_0 and the K-quants (Q4_K, Q5_K, Q6_K) on the GPU, their blocks resident as ggml stores
 * them: the decode GEMV, embedding rows, and the f16 copy a prefill GEMM multiplies (gemm.cu).
 * GEMV: as on the CPU (tensor/quant.h), each input row is first quantized (Q8 blocks of 32 for Q4_0, Q8K
 * blocks of 256 for the K-quants), then each weight block's integer sum is exact (dp4a) and combined in
 * float without fused multiply-adds: (wd * xd) * isum for Q4_0 and Q6_K, (xd * d) * isum - (xd * dmin) *
 * msum for Q4_K and Q5_K. A warp takes a row; a lane takes a unit of 32 values (a Q4_0 block, or a
 * K-quant sub-block: eight lanes side by side hold one super-block and add their integer sums exactly
 * before one of them makes the block's float). The blocks' floats are added per lane, then over the warp:
 * another order than the CPU's lanes, so the results agree within the GPU tolerance, not bit for bit.
 * Embedding rows and the f16 copies equal the CPU's dequantization (tensor/quant.c) exactly (before the
 * f16 rounding). The scalar reference of all of it is tensor/quant.c; test_backend checks against it. */
#include "backend/cuda/gemv.cuh"

#include "tensor/quant.h"

static __device__ __forceinline__ float h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }

/* 4 bytes at p (2-byte aligned: ggml blocks are), as one word. */
static __device__ __forceinline__ int ld4(const uint8_t *p) {
    const uint16_t *h = (const uint16_t *)p;
    return (int)((uint32_t)__ldg(h) | ((uint32_t)__ldg(h + 1) << 16));
}

/* The traits of one format: block bytes, values per block, units (32 values) per block, the activation
 * block (32 or 256), and the integer sums of unit u of block w with the unit's 32 quantized activations
 * x (as 8 words): *is (scales applied) and *ms (the mins' sum, K-quants with mins only). */
template <ck_dtype D> struct qf;

template <> struct qf<CK_Q4_0> {
    enum { bytes = 18, values = 32, units = 1, act = 32 };
    static __device__ __forceinline__ void sums(const uint8_t *w, int u, const int *x, int *is, int *ms) {
        (void)u;
        int dot = 0, sx = 0;
#pragma unroll
        for (int j = 0; j < 4; j++) { /* qs[4j..4j+3]: low nibbles are values 4j.., high ones 16 + 4j.. */
            int q = ld4(w + 2 + 4 * j);
            dot = __dp4a(q & 0x0F0F0F0F, x[j], dot);
            dot = __dp4a((q >> 4) & 0x0F0F0F0F, x[4 + j], dot);
            sx = __dp4a(0x01010101, x[j], __dp4a(0x01010101, x[4 + j], sx));
        }
        *is = dot - 8 * sx, *ms = 0; /* levels 0..15 stand for -8..7 */
    }
    static __device__ __forceinline__ float block(const uint8_t *w, float xd, int is, int ms) {
        (void)ms;
        return __fmul_rn(__fmul_rn(h2f(*(const uint16_t *)w), xd), (float)is);
    }
    static __device__ __forceinline__ float value(const uint8_t *w, int i) {
        int q = w[2 + (i & 15)];
        return __fmul_rn(h2f(*(const uint16_t *)w), (float)((i < 16 ? q & 0xF : q >> 4) - 8));
    }
};

/* Q4_K / Q5_K: scale and min of sub-block j (ck_q4k_scale_min). */
static __device__ __forceinline__ void scale_min(const uint8_t *sc, int j, int *s, int *m) {
    if (j < 4) *s = sc[j] & 63, *m = sc[j + 4] & 63;
    else *s = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4), *m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
}

/* Sub-block u of a Q4_K (qh NULL) or Q5_K block: value l is nibble (u & 1) of qs[32 (u / 2) + l], plus 16
 * when bit u of qh[l] is set. */
static __device__ __forceinline__ void sums_k(const uint8_t *w, const uint8_t *qs, const uint8_t *qh, int u,
                                              const int *x, int *is, int *ms) {
    int sc, m, dot = 0, sx = 0;
    scale_min(w + 4, u, &sc, &m);
#pragma unroll
    for (int j = 0; j < 8; j++) {
        int q = (ld4(qs + 32 * (u >> 1) + 4 * j) >> (4 * (u & 1))) & 0x0F0F0F0F;
        if (qh) q |= ((ld4(qh + 4 * j) >> u) & 0x01010101) << 4;
        dot = __dp4a(q, x[j], dot);
        sx = __dp4a(0x01010101, x[j], sx);
    }
    *is = sc * dot, *ms = m * sx;
}
static __device__ __forceinline__ float block_k(const uint8_t *w, float xd, int is, int ms) {
    return __fsub_rn(__fmul_rn(__fmul_rn(xd, h2f(*(const uint16_t *)w)), (float)is),
                     __fmul_rn(__fmul_rn(xd, h2f(*(const uint16_t *)(w + 2))), (float)ms));
}
static __device__ __forceinline__ float value_k(const uint8_t *w, const uint8_t *qs, const uint8_t *qh, int i) {
    int u = i / 32, l = i % 32, sc, m;
    scale_min(w + 4, u, &sc, &m);
    int q = (qs[32 * (u >> 1) + l] >> (4 * (u & 1))) & 0xF;
    if (qh) q += ((qh[l] >> u) & 1) << 4;
    float d1 = __fmul_rn(h2f(*(const uint16_t *)w), (float)sc), m1 = __fmul_rn(h2f(*(const uint16_t *)(w + 2)), (float)m);
    return __fsub_rn(__fmul_rn(d1, (float)q), m1);
}

template <> struct qf<CK_Q4_K> { /* d, dmin, scales[12], qs[128] */
    enum { bytes = 144, values = 256, units = 8, act = 256 };
    static __device__ __forceinline__ void sums(const uint8_t *w, int u, const int *x, int *is, int *ms) {
        sums_k(w, w + 16, NULL, u, x, is, ms);
    }
    static __device__ __forceinline__ float block(const uint8_t *w, float xd, int is, int ms) { return block_k(w, xd, is, ms); }
    static __device__ __forceinline__ float value(const uint8_t *w, int i) { return value_k(w, w + 16, NULL, i); }
};

template <> struct qf<CK_Q5_K> { /* d, dmin, scales[12], qh[32], qs[128] */
    enum { bytes = 176, values = 256, units = 8, act = 256 };
    static __device__ __forceinline__ void sums(const uint8_t *w, int u, const int *x, int *is, int *ms) {
        sums_k(w, w + 48, w + 16, u, x, is, ms);
    }
    static __device__ __forceinline__ float block(const uint8_t *w, float xd, int is, int ms) { return block_k(w, xd, is, ms); }
    static __device__ __forceinline__ float value(const uint8_t *w, int i) { return value_k(w, w + 48, w + 16, i); }
};

/* Q6_K: ql[128], qh[64], int8 scales[16], d. Value 128 c + 32 k + l (k < 4, l < 32) is nibble k / 2 of
 * ql[64 c + 32 (k & 1) + l] with bits 2k, 2k + 1 of qh[32 c + l] above it, minus 32; its scale is
 * scales[8 c + 2 k + l / 16]. Sub-block u = 4 c + k. */
template <> struct qf<CK_Q6_K> {
    enum { bytes = 210, values = 256, units = 8, act = 256 };
    static __device__ __forceinline__ void sums(const uint8_t *w, int u, const int *x, int *is, int *ms) {
        int c = u >> 2, k = u & 3, dot[2] = {0, 0}, sx[2] = {0, 0};
#pragma unroll
        for (int j = 0; j < 8; j++) { /* values 4j..4j+3 of the unit: the first 16 have one scale, the rest another */
            int lo = (ld4(w + 64 * c + 32 * (k & 1) + 4 * j) >> (4 * (k >> 1))) & 0x0F0F0F0F;
            int hi = (ld4(w + 128 + 32 * c + 4 * j) >> (2 * k)) & 0x03030303;
            dot[j >> 2] = __dp4a(lo | (hi << 4), x[j], dot[j >> 2]);
            sx[j >> 2] = __dp4a(0x01010101, x[j], sx[j >> 2]);
        }
        const int8_t *sc = (const int8_t *)(w + 192); /* levels 0..63 stand for -32..31 */
        *is = sc[8 * c + 2 * k] * (dot[0] - 32 * sx[0]) + sc[8 * c + 2 * k + 1] * (dot[1] - 32 * sx[1]), *ms = 0;
    }
    static __device__ __forceinline__ float block(const uint8_t *w, float xd, int is, int ms) {
        (void)ms;
        return __fmul_rn(__fmul_rn(h2f(*(const uint16_t *)(w + 208)), xd), (float)is);
    }
    static __device__ __forceinline__ float value(const uint8_t *w, int i) {
        int c = i / 128, k = (i % 128) / 32, l = i % 32;
        int q = ((w[64 * c + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xF) | (((w[128 + 32 * c + l] >> (2 * k)) & 3) << 4);
        float ds = __fmul_rn(h2f(*(const uint16_t *)(w + 208)), (float)((const int8_t *)(w + 192))[i / 16]);
        return __fmul_rn(ds, (float)(q - 32));
    }
};

/* ---- GEMV ---- */

#define QK_WARPS 16

template <ck_dtype D>
static __global__ void __launch_bounds__(32 * QK_WARPS, 2)
gemv_quant_kernel(gemv_batch gb, ck_fused_in in, unsigned *counter, ck_cuda_flags *flags, int n_in, int T) {
    typedef qf<D> F;
    extern __shared__ float4 xs4[];
    float *xs = (float *)xs4;
    __shared__ float red[32];
    int bi = 0;
    while (bi + 1 < gb.n && blockIdx.x >= gb.blk[bi + 1]) bi++;
    int nblk = (int)(gb.blk[bi + 1] - gb.blk[bi]), warps = nblk * QK_WARPS;
    int row = (int)(blockIdx.x - gb.blk[bi]) * QK_WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    int n_out = gb.n_out[bi], nb = n_in / F::values, units = nb * F::units, na = n_in / F::act;
    size_t stride = (size_t)nb * F::bytes;
    const uint8_t *W = (const uint8_t *)gb.w[bi];
    ck_pdl_trigger();
    gemv_prefetch_in(in, n_in);
    ck_pdl_wait();
    gemv_prefetch_res(gb.res[bi], row, n_out, T);
    gemv_input(xs, red, in, counter, gb.x[bi], n_in, T);
    int8_t *xq = (int8_t *)(xs + T * n_in);
    float *xd = (float *)(xq + T * n_in);
    quantize_rows(xs, xq, xd, T * n_in, F::act, QK_WARPS);
    __syncthreads();
    const float *bias = gb.bias[bi];
    float *y = gb.y[bi], *res = gb.res[bi];
    for (; row < n_out; row += warps) {
        float acc[CK_CUDA_GEMV_MAX_T];
#pragma unroll
        for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) acc[t] = 0.0f;
        const uint8_t *wr = W + (size_t)row * stride;
        for (int u0 = 0; u0 < units; u0 += 32) { /* every lane of the warp in each round (the shuffles) */
            int u = u0 + lane, b = u / F::units, k = u % F::units, live = u < units;
            const uint8_t *wb = wr + (size_t)b * F::bytes;
#pragma unroll
            for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) {
                if (t >= T) break;
                int is = 0, ms = 0;
                if (live) F::sums(wb, k, (const int *)(xq + (size_t)t * n_in + 32 * u), &is, &ms);
#pragma unroll
                for (int o = 1; o < F::units; o <<= 1) /* a super-block's sub-blocks: exact integer sums */
                    is += __shfl_xor_sync(0xffffffffu, is, o), ms += __shfl_xor_sync(0xffffffffu, ms, o);
                if (live && k == 0) acc[t] = __fadd_rn(acc[t], F::block(wb, xd[t * na + (b * F::values) / F::act], is, ms));
            }
        }
        gemv_store(acc, T, row, n_out, lane, bias, y, res, in, flags);
    }
}

int ck_cuda_gemv_quant_smem(int bytes) {
    return cudaFuncSetAttribute(gemv_quant_kernel<CK_Q4_0>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ||
           cudaFuncSetAttribute(gemv_quant_kernel<CK_Q4_K>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ||
           cudaFuncSetAttribute(gemv_quant_kernel<CK_Q5_K>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ||
           cudaFuncSetAttribute(gemv_quant_kernel<CK_Q6_K>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

cudaError_t ck_cuda_gemv_quant(ck_dtype dt, unsigned blocks, size_t smem, cudaStream_t st, int pdl, const gemv_batch &gb,
                               const ck_fused_in &in, unsigned *counter, ck_cuda_flags *flags, int n_in, int T) {
    dim3 g(blocks), bl(32 * QK_WARPS);
    switch (dt) {
    case CK_Q4_0: return ck_cuda_launch(gemv_quant_kernel<CK_Q4_0>, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T);
    case CK_Q4_K: return ck_cuda_launch(gemv_quant_kernel<CK_Q4_K>, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T);
    case CK_Q5_K: return ck_cuda_launch(gemv_quant_kernel<CK_Q5_K>, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T);
    case CK_Q6_K: return ck_cuda_launch(gemv_quant_kernel<CK_Q6_K>, g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T);
    default: return cudaErrorInvalidValue;
    }
}

/* ---- embedding rows and f16 copies ---- */

/* y[t, j] = value j of row ids[t] of E [*, d], times scale when it is not 1 (as the CPU). */
template <ck_dtype D>
static __global__ void embed_quant_kernel(float *y, const uint8_t *E, const int32_t *ids, size_t d, size_t T, float scale) {
    typedef qf<D> F;
    size_t stride = d / F::values * F::bytes;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < T * d; i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / d, j = i % d;
        const uint8_t *blk = E + (size_t)ids[t] * stride + j / F::values * F::bytes;
        float v = F::value(blk, (int)(j % F::values));
        y[i] = scale != 1.0f ? __fmul_rn(v, scale) : v;
    }
}

/* out [n_out, n_in] f16 = the weight's values rounded to f16 (clamped to its range). */
template <ck_dtype D>
static __global__ void dequant_f16_kernel(__half *out, const uint8_t *W, size_t n_in, size_t n) {
    typedef qf<D> F;
    size_t stride = n_in / F::values * F::bytes;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / n_in, j = i % n_in;
        float v = F::value(W + r * stride + j / F::values * F::bytes, (int)(j % F::values));
        out[i] = __float2half_rn(ck_clamp_f16(v));
    }
}

int ck_cuda_is_quant(ck_dtype dt) { return dt == CK_Q4_0 || dt == CK_Q4_K || dt == CK_Q5_K || dt == CK_Q6_K; }

int ck_cuda_quant_block(ck_dtype dt) { return dt == CK_Q4_0 ? 32 : 256; }

void ck_cuda_embed_quant(cudaStream_t st, float *y, ck_dtype dt, const void *E, const int32_t *ids, size_t d, size_t T,
                         float scale) {
    unsigned g = ck_cuda_blocks(T * d, 256);
    const uint8_t *e = (const uint8_t *)E;
    if (dt == CK_Q4_0) embed_quant_kernel<CK_Q4_0><<<g, 256, 0, st>>>(y, e, ids, d, T, scale);
    else if (dt == CK_Q4_K) embed_quant_kernel<CK_Q4_K><<<g, 256, 0, st>>>(y, e, ids, d, T, scale);
    else if (dt == CK_Q5_K) embed_quant_kernel<CK_Q5_K><<<g, 256, 0, st>>>(y, e, ids, d, T, scale);
    else embed_quant_kernel<CK_Q6_K><<<g, 256, 0, st>>>(y, e, ids, d, T, scale);
}

void ck_cuda_dequant_f16(cudaStream_t st, __half *out, ck_dtype dt, const void *W, size_t n_out, size_t n_in) {
    size_t n = n_out * n_in;
    unsigned g = ck_cuda_blocks(n, 256);
    const uint8_t *w = (const uint8_t *)W;
    if (dt == CK_Q4_0) dequant_f16_kernel<CK_Q4_0><<<g, 256, 0, st>>>(out, w, n_in, n);
    else if (dt == CK_Q4_K) dequant_f16_kernel<CK_Q4_K><<<g, 256, 0, st>>>(out, w, n_in, n);
    else if (dt == CK_Q5_K) dequant_f16_kernel<CK_Q5_K><<<g, 256, 0, st>>>(out, w, n_in, n);
    else dequant_f16_kernel<CK_Q6_K><<<g, 256, 0, st>>>(out, w, n_in, n);
}
