/* quant.cu — Q4_0 and the K-quants (Q4_K, Q5_K, Q6_K) on the GPU, their blocks resident as ggml stores
 * them: the decode GEMV, embedding rows, and the f16 copy a prefill GEMM multiplies (gemm.cu).
 * GEMV: as on the CPU (tensor/quant.h), each input row is first quantized (Q8 blocks of 32 for Q4_0, Q8K
 * blocks of 256 for the K-quants), then each weight block's integer sum is exact (dp4a) and combined in
 * float without fused multiply-adds: (wd * xd) * isum for Q4_0 and Q6_K, (xd * d) * isum - (xd * dmin) *
 * msum for Q4_K and Q5_K. A row goes to 1 to 16 warps (gemv.cuh's gemv_warp_rows); a lane takes a unit of
 * 32 values (a Q4_0 block, or a K-quant sub-block: eight lanes side by side hold one super-block and add
 * their integer sums exactly before one of them makes the block's float). The blocks' floats are added per
 * lane, then over the warp, then over the row's warps: another order than the CPU's lanes, so the results
 * agree within the GPU tolerance, not bit for bit.
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

/* Byte i of a 16-byte piece held in registers (i may differ between lanes: selects, not an array). */
static __device__ __forceinline__ int hbyte(const uint4 &h, int i) {
    uint32_t v = i < 4 ? h.x : i < 8 ? h.y : i < 12 ? h.z : h.w;
    return (int)((v >> (8 * (i & 3))) & 0xFF);
}
/* Word j (0..7, known at compile time) of two 16-byte pieces. */
static __device__ __forceinline__ int word(const uint4 *p, int j) {
    const uint4 &h = p[j >> 2];
    return (int)((j & 3) == 0 ? h.x : (j & 3) == 1 ? h.y : (j & 3) == 2 ? h.z : h.w);
}

/* The traits of one format: block bytes, values per block, units (32 values) per block, the activation
 * block (32 or 256); raw, the bytes of one unit a lane holds in registers; load(w, u, r): the bytes of
 * unit u of block w (loads only, so that they can be issued before the wait for the kernel ahead);
 * sums(r, u, x, is, ms): the unit's integer sums with its 32 quantized activations x (8 words), scales
 * applied (*is), and the mins' sum (*ms, K-quants with mins); block(r, xd, is, ms): the block's float from
 * its whole integer sums; value(w, i): value i of block w, dequantized as tensor/quant.c does. */
template <ck_dtype D> struct qf;

template <> struct qf<CK_Q4_0> { /* d, qs[16] (18 bytes: 2-byte aligned) */
    enum { bytes = 18, values = 32, units = 1, act = 32 };
    struct raw { int q[4]; uint16_t d; };
    static __device__ __forceinline__ void load(const uint8_t *w, int u, raw &r) {
        (void)u;
#pragma unroll
        for (int j = 0; j < 4; j++) r.q[j] = ld4(w + 2 + 4 * j);
        r.d = __ldg((const uint16_t *)w);
    }
    static __device__ __forceinline__ void sums(const raw &r, int u, const int *x, int *is, int *ms) {
        (void)u;
        int dot = 0, sx = 0;
#pragma unroll
        for (int j = 0; j < 4; j++) { /* qs[4j..4j+3]: low nibbles are values 4j.., high ones 16 + 4j.. */
            dot = __dp4a(r.q[j] & 0x0F0F0F0F, x[j], dot);
            dot = __dp4a((r.q[j] >> 4) & 0x0F0F0F0F, x[4 + j], dot);
            sx = __dp4a(0x01010101, x[j], __dp4a(0x01010101, x[4 + j], sx));
        }
        *is = dot - 8 * sx, *ms = 0; /* levels 0..15 stand for -8..7 */
    }
    static __device__ __forceinline__ float block(const raw &r, float xd, int is, int ms) {
        (void)ms;
        return __fmul_rn(__fmul_rn(h2f(r.d), xd), (float)is);
    }
    static __device__ __forceinline__ float value(const uint8_t *w, int i) {
        int q = w[2 + (i & 15)];
        return __fmul_rn(h2f(*(const uint16_t *)w), (float)((i < 16 ? q & 0xF : q >> 4) - 8));
    }
};

/* Q4_K / Q5_K (16-byte aligned blocks): the head (d, dmin, scales[12]) and the unit's 32 bytes of qs (and
 * Q5_K's 32 bytes of qh) in 16-byte loads. Sub-block u: value l is nibble (u & 1) of qs[32 (u / 2) + l], plus
 * 16 when bit u of qh[l] is set; its scale and min are ck_q4k_scale_min's. */
static __device__ __forceinline__ void scale_min(const uint4 &h, int j, int *s, int *m) {
    if (j < 4) *s = hbyte(h, 4 + j) & 63, *m = hbyte(h, 8 + j) & 63;
    else
        *s = (hbyte(h, 8 + j) & 0xF) | ((hbyte(h, j) >> 6) << 4), *m = (hbyte(h, 8 + j) >> 4) | ((hbyte(h, 4 + j) >> 6) << 4);
}
static __device__ __forceinline__ void sums_k(const uint4 &head, const uint4 *qs, const uint4 *qh, int u, const int *x,
                                              int *is, int *ms) {
    int sc, m, dot = 0, sx = 0;
    scale_min(head, u, &sc, &m);
#pragma unroll
    for (int j = 0; j < 8; j++) {
        int q = (word(qs, j) >> (4 * (u & 1))) & 0x0F0F0F0F;
        if (qh) q |= ((word(qh, j) >> u) & 0x01010101) << 4;
        dot = __dp4a(q, x[j], dot);
        sx = __dp4a(0x01010101, x[j], sx);
    }
    *is = sc * dot, *ms = m * sx;
}
static __device__ __forceinline__ float block_k(const uint4 &head, float xd, int is, int ms) {
    return __fsub_rn(__fmul_rn(__fmul_rn(xd, h2f((uint16_t)(head.x & 0xFFFF))), (float)is),
                     __fmul_rn(__fmul_rn(xd, h2f((uint16_t)(head.x >> 16))), (float)ms));
}
static __device__ __forceinline__ float value_k(const uint8_t *w, const uint8_t *qs, const uint8_t *qh, int i) {
    int u = i / 32, l = i % 32, sc, m;
    scale_min(*(const uint4 *)w, u, &sc, &m);
    int q = (qs[32 * (u >> 1) + l] >> (4 * (u & 1))) & 0xF;
    if (qh) q += ((qh[l] >> u) & 1) << 4;
    float d1 = __fmul_rn(h2f(*(const uint16_t *)w), (float)sc), m1 = __fmul_rn(h2f(*(const uint16_t *)(w + 2)), (float)m);
    return __fsub_rn(__fmul_rn(d1, (float)q), m1);
}

template <> struct qf<CK_Q4_K> { /* d, dmin, scales[12], qs[128] */
    enum { bytes = 144, values = 256, units = 8, act = 256 };
    struct raw { uint4 head, qs[2]; };
    static __device__ __forceinline__ void load(const uint8_t *w, int u, raw &r) {
        const uint4 *p = (const uint4 *)w;
        r.head = __ldg(p), r.qs[0] = __ldg(p + 1 + 2 * (u >> 1)), r.qs[1] = __ldg(p + 2 + 2 * (u >> 1));
    }
    static __device__ __forceinline__ void sums(const raw &r, int u, const int *x, int *is, int *ms) {
        sums_k(r.head, r.qs, NULL, u, x, is, ms);
    }
    static __device__ __forceinline__ float block(const raw &r, float xd, int is, int ms) { return block_k(r.head, xd, is, ms); }
    static __device__ __forceinline__ float value(const uint8_t *w, int i) { return value_k(w, w + 16, NULL, i); }
};

template <> struct qf<CK_Q5_K> { /* d, dmin, scales[12], qh[32], qs[128] */
    enum { bytes = 176, values = 256, units = 8, act = 256 };
    struct raw { uint4 head, qh[2], qs[2]; };
    static __device__ __forceinline__ void load(const uint8_t *w, int u, raw &r) {
        const uint4 *p = (const uint4 *)w;
        r.head = __ldg(p), r.qh[0] = __ldg(p + 1), r.qh[1] = __ldg(p + 2);
        r.qs[0] = __ldg(p + 3 + 2 * (u >> 1)), r.qs[1] = __ldg(p + 4 + 2 * (u >> 1));
    }
    static __device__ __forceinline__ void sums(const raw &r, int u, const int *x, int *is, int *ms) {
        sums_k(r.head, r.qs, r.qh, u, x, is, ms);
    }
    static __device__ __forceinline__ float block(const raw &r, float xd, int is, int ms) { return block_k(r.head, xd, is, ms); }
    static __device__ __forceinline__ float value(const uint8_t *w, int i) { return value_k(w, w + 48, w + 16, i); }
};

/* Q6_K (210-byte blocks: 2-byte aligned): ql[128], qh[64], int8 scales[16], d. Value 128 c + 32 k + l (k < 4,
 * l < 32) is nibble k / 2 of ql[64 c + 32 (k & 1) + l] with bits 2k, 2k + 1 of qh[32 c + l] above it, minus
 * 32; its scale is scales[8 c + 2 k + l / 16]. Sub-block u = 4 c + k. */
template <> struct qf<CK_Q6_K> {
    enum { bytes = 210, values = 256, units = 8, act = 256 };
    struct raw { int ql[8], qh[8]; uint16_t sc, d; };
    static __device__ __forceinline__ void load(const uint8_t *w, int u, raw &r) {
        int c = u >> 2, k = u & 3;
#pragma unroll
        for (int j = 0; j < 8; j++) r.ql[j] = ld4(w + 64 * c + 32 * (k & 1) + 4 * j), r.qh[j] = ld4(w + 128 + 32 * c + 4 * j);
        r.sc = __ldg((const uint16_t *)(w + 192 + 8 * c + 2 * k)), r.d = __ldg((const uint16_t *)(w + 208));
    }
    static __device__ __forceinline__ void sums(const raw &r, int u, const int *x, int *is, int *ms) {
        int k = u & 3, dot[2] = {0, 0}, sx[2] = {0, 0};
#pragma unroll
        for (int j = 0; j < 8; j++) { /* values 4j..4j+3 of the unit: the first 16 have one scale, the rest another */
            int lo = (r.ql[j] >> (4 * (k >> 1))) & 0x0F0F0F0F, hi = (r.qh[j] >> (2 * k)) & 0x03030303;
            dot[j >> 2] = __dp4a(lo | (hi << 4), x[j], dot[j >> 2]);
            sx[j >> 2] = __dp4a(0x01010101, x[j], sx[j >> 2]);
        }
        int s0 = (int8_t)(r.sc & 0xFF), s1 = (int8_t)(r.sc >> 8); /* levels 0..63 stand for -32..31 */
        *is = s0 * (dot[0] - 32 * sx[0]) + s1 * (dot[1] - 32 * sx[1]), *ms = 0;
    }
    static __device__ __forceinline__ float block(const raw &r, float xd, int is, int ms) {
        (void)ms;
        return __fmul_rn(__fmul_rn(h2f(r.d), xd), (float)is);
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

template <ck_dtype D, bool S> /* S: some part has wpr > 1 */
static __global__ void __launch_bounds__(32 * QK_WARPS, 2)
gemv_quant_kernel(gemv_batch gb, ck_fused_in in, unsigned *counter, ck_cuda_flags *flags, int n_in, int T) {
    typedef qf<D> F;
    extern __shared__ float4 xs4[];
    float *xs = (float *)xs4;
    __shared__ float red[32];
    __shared__ float part[QK_WARPS][CK_CUDA_GEMV_MAX_T];
    gemv_rows r = gemv_warp_rows<S>(gb, in, QK_WARPS);
    int bi = r.bi, lane = threadIdx.x & 31, n_out = gb.n_out[bi], nb = n_in / F::values, units = nb * F::units;
    int na = n_in / F::act, lu = r.kw * 32 + lane, us = 32 * r.wpr; /* the lane's units: lu, lu + us, ... */
    size_t stride = (size_t)nb * F::bytes;
    const uint8_t *W = (const uint8_t *)gb.w[bi];
    typename F::raw q;
    int pre = r.row < n_out && lu < units; /* the first unit's bytes: weights never wait for the kernel ahead */
    if (pre) F::load(W + (size_t)r.row * stride + (size_t)(lu / F::units) * F::bytes, lu % F::units, q);
    ck_pdl_trigger();
    gemv_prefetch_in(in, n_in);
    ck_pdl_wait();
    if (r.kw == 0) gemv_prefetch_res(gb.res[bi], r.row, n_out, T);
    int8_t *xq;
    float *xd;
    gemv_input_quantized(xs, red, in, counter, gb.x[bi], n_in, T, F::act, &xq, &xd);
    const float *bias = gb.bias[bi];
    float *y = gb.y[bi], *res = gb.res[bi];
    for (; r.first < n_out; r.first += r.step, r.row += r.step) {
        float acc[CK_CUDA_GEMV_MAX_T];
#pragma unroll
        for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) acc[t] = 0.0f;
        const uint8_t *wr = W + (size_t)r.row * stride;
        /* every lane of the warp in each round (the shuffles); a warp's units of a round are 32 in a row, so
         * a super-block's eight never straddle two warps */
        for (int u0 = r.kw * 32; r.row < n_out && u0 < units; u0 += us) {
            int u = u0 + lane, b = u / F::units, k = u % F::units, live = u < units;
            if (live && !pre) F::load(wr + (size_t)b * F::bytes, k, q);
            pre = 0;
#pragma unroll
            for (int t = 0; t < CK_CUDA_GEMV_MAX_T; t++) {
                if (t >= T) break;
                int is = 0, ms = 0;
                if (live) F::sums(q, k, (const int *)(xq + (size_t)t * n_in + 32 * u), &is, &ms);
#pragma unroll
                for (int o = 1; o < F::units; o <<= 1) /* a super-block's sub-blocks: exact integer sums */
                    is += __shfl_xor_sync(0xffffffffu, is, o), ms += __shfl_xor_sync(0xffffffffu, ms, o);
                if (live && k == 0) acc[t] = __fadd_rn(acc[t], F::block(q, xd[t * na + (b * F::values) / F::act], is, ms));
            }
        }
        gemv_rows_end<S, CK_CUDA_GEMV_MAX_T>(r, acc, T, n_out, bias, y, res, gb, in, flags, part);
    }
}

template <ck_dtype D> static int quant_smem(int bytes) {
    return cudaFuncSetAttribute(gemv_quant_kernel<D, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ||
           cudaFuncSetAttribute(gemv_quant_kernel<D, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}
int ck_cuda_gemv_quant_smem(int bytes) {
    return quant_smem<CK_Q4_0>(bytes) || quant_smem<CK_Q4_K>(bytes) || quant_smem<CK_Q5_K>(bytes) ||
           quant_smem<CK_Q6_K>(bytes);
}

template <ck_dtype D>
static cudaError_t quant_launch(dim3 g, dim3 bl, size_t smem, cudaStream_t st, int pdl, const gemv_batch &gb,
                                const ck_fused_in &in, unsigned *counter, ck_cuda_flags *flags, int n_in, int T, int split) {
    return ck_cuda_launch(split ? gemv_quant_kernel<D, true> : gemv_quant_kernel<D, false>, g, bl, smem, st, pdl, gb,
                          in, counter, flags, n_in, T);
}
cudaError_t ck_cuda_gemv_quant(ck_dtype dt, unsigned blocks, size_t smem, cudaStream_t st, int pdl, const gemv_batch &gb,
                               const ck_fused_in &in, unsigned *counter, ck_cuda_flags *flags, int n_in, int T, int split) {
    dim3 g(blocks), bl(32 * QK_WARPS);
    switch (dt) {
    case CK_Q4_0: return quant_launch<CK_Q4_0>(g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T, split);
    case CK_Q4_K: return quant_launch<CK_Q4_K>(g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T, split);
    case CK_Q5_K: return quant_launch<CK_Q5_K>(g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T, split);
    case CK_Q6_K: return quant_launch<CK_Q6_K>(g, bl, smem, st, pdl, gb, in, counter, flags, n_in, T, split);
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
