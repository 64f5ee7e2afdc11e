/* attention_tc.cu — prefill attention on tensor cores, the fast path's (activations rounded to 16 bits, as
 * the GEMMs of gemm.cu round them; CAKE_EXACT / --exact keeps the f32 kernels of attention.cu).
 * Same semantics as attention.cu: row t at position pos[t] sees cache positions
 * [max(0, pos[t] + 1 - window), pos[t]], grouped KV heads, optional soft-cap.
 * One block of TC_WARPS warps per (query head, tile of TC_ROWS consecutive rows); each warp owns 16 rows. The
 * block stages its query rows as f16, then walks the keys its rows can see in tiles of TC_KEYS: the tile's K
 * and V rows are staged as f16 (clamped to its range, a NaN kept; an f16 cache's as they are), each warp
 * computes its 16 x TC_KEYS scores with mma.sync m16n8k16 (f16 inputs, f32 sums), masks, scales and soft-caps
 * them in f32, updates each row's online softmax (running max and sum, f32), rounds the probabilities to f16
 * — they are the next product's A operand straight from the score registers, and the sum counts the rounded
 * values — and accumulates P V with the same instruction, V's fragments read by ldmatrix.trans.
 * Fragment layouts (PTX ISA, mma.m16n8k16 with .f16 inputs): lane = 4 g + c holds A (16 x 16, row-major)
 * elements (g, 2c..2c+1), (g + 8, 2c..), (g, 2c + 8..), (g + 8, 2c + 8..); B (16 x 8) elements
 * (2c..2c+1, g), (2c + 8.., g); C (16 x 8, f32) elements (g, 2c..2c+1), (g + 8, 2c..2c+1).
 * Rounding q, k, v and p to f16 costs about 2^-11 relative per product, summed in f32: test_backend
 * (CAKE_EXACT=0) checks it against the double-precision reference at the fast path's tolerance. */
#include "backend/cuda/cuda_internal.h"

#define TC_WARPS 4
#define TC_ROWS (16 * TC_WARPS) /* query rows per block */
#define TC_KEYS 64              /* keys per tile */

static __device__ __forceinline__ uint32_t h2pack(float a, float b) {
    __half2 h = __floats2half2_rn(ck_clamp_f16(a), ck_clamp_f16(b));
    return *(uint32_t *)&h;
}
static __device__ __forceinline__ uint32_t lds32(const __half *p) { return *(const uint32_t *)p; }

/* c += A B for one 16 x 8 tile (A: 4 registers, B: 2, as the file's comment lays them out) */
static __device__ __forceinline__ void mma16816(float *c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* Four 8 x 8 matrices of halves, transposed: lanes 8i..8i+7 name the rows of matrix i (16-byte aligned). */
static __device__ __forceinline__ void ldsm_x4_trans(uint32_t *r, const __half *row) {
    unsigned a = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* Rows [t0, t0 + rows) of src (f32 or f16, `stride` values apart, row r at src + r * stride) into dst (f16,
 * HD + 8 apart); rows past `valid` are zero. */
template <int HD>
static __device__ __forceinline__ void stage_rows(__half *dst, const __half *src, size_t stride, int rows, int valid) {
    for (int i = threadIdx.x; i < rows * HD / 4; i += TC_WARPS * 32) {
        int r = i / (HD / 4), d = i % (HD / 4) * 4;
        uint2 u = r < valid ? *(const uint2 *)(src + (size_t)r * stride + d) : make_uint2(0, 0);
        *(uint2 *)(dst + r * (HD + 8) + d) = u;
    }
}
template <int HD>
static __device__ __forceinline__ void stage_rows(__half *dst, const float *src, size_t stride, int rows, int valid) {
    for (int i = threadIdx.x; i < rows * HD / 4; i += TC_WARPS * 32) {
        int r = i / (HD / 4), d = i % (HD / 4) * 4;
        float4 v = r < valid ? *(const float4 *)(src + (size_t)r * stride + d) : make_float4(0.f, 0.f, 0.f, 0.f);
        uint2 u = make_uint2(h2pack(v.x, v.y), h2pack(v.z, v.w));
        *(uint2 *)(dst + r * (HD + 8) + d) = u;
    }
}

template <int HD, typename KV>
static __global__ void __launch_bounds__(TC_WARPS * 32)
attn_tc_kernel(const float *__restrict__ q, const KV *__restrict__ kc, const KV *__restrict__ vc, float *out,
               const int32_t *__restrict__ pos, int T, int nh, int nkv, float scale, int window, float softcap) {
    constexpr int RS = HD + 8; /* halves per staged row: 16-byte rows, and the 8 rows of a fragment load
                                  fall on distinct banks */
    extern __shared__ float4 sm4[];
    __half *qs = (__half *)sm4, *ks = qs + TC_ROWS * RS, *vs = ks + TC_KEYS * RS;
    __shared__ int lo_s, hi_s;
    /* the tiles with the most keys (the last rows) first, so that they do not finish last */
    int h = blockIdx.x, t0 = (gridDim.y - 1 - blockIdx.y) * TC_ROWS;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
    int kvh = h / (nh / nkv);
    size_t kv_row = (size_t)nkv * HD;
    if (threadIdx.x == 0) lo_s = INT_MAX, hi_s = -1;
    __syncthreads();
    if (threadIdx.x < TC_ROWS && t0 + (int)threadIdx.x < T) { /* the keys any row of the tile sees */
        int p = pos[t0 + threadIdx.x];
        atomicMin(&lo_s, window > 0 && p + 1 > window ? p + 1 - window : 0);
        atomicMax(&hi_s, p);
    }
    stage_rows<HD>(qs, q + ((size_t)t0 * nh + h) * HD, (size_t)nh * HD, TC_ROWS, T - t0);
    int rp[2], rs[2]; /* the thread's two rows (g and g + 8 of its warp's 16): position and first key */
#pragma unroll
    for (int i = 0; i < 2; i++) {
        int row = t0 + w * 16 + g + 8 * i;
        rp[i] = row < T ? pos[row] : -1;
        rs[i] = window > 0 && rp[i] + 1 > window ? rp[i] + 1 - window : 0;
    }
    float o[HD / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int j = 0; j < HD / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    __syncthreads();
    int lo = lo_s, hi = hi_s;
    const __half *qw = qs + w * 16 * RS;
    for (int j0 = lo; j0 <= hi; j0 += TC_KEYS) {
        int n = hi - j0 + 1 < TC_KEYS ? hi - j0 + 1 : TC_KEYS;
        const size_t at = (size_t)j0 * kv_row + (size_t)kvh * HD;
        stage_rows<HD>(ks, kc + at, kv_row, TC_KEYS, n);
        stage_rows<HD>(vs, vc + at, kv_row, TC_KEYS, n);
        __syncthreads();
        /* scores: the warp's 16 rows against the tile's keys, TC_KEYS / 8 tiles of 16 x 8 */
        float s[TC_KEYS / 8][4];
#pragma unroll
        for (int j = 0; j < TC_KEYS / 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (int k0 = 0; k0 < HD; k0 += 16) {
            const __half *qa = qw + g * RS + k0 + 2 * c;
            uint32_t a0 = lds32(qa), a1 = lds32(qa + 8 * RS), a2 = lds32(qa + 8), a3 = lds32(qa + 8 * RS + 8);
#pragma unroll
            for (int j = 0; j < TC_KEYS / 8; j++) {
                const __half *kb = ks + (j * 8 + g) * RS + k0 + 2 * c;
                mma16816(s[j], a0, a1, a2, a3, lds32(kb), lds32(kb + 8));
            }
        }
        /* mask, scale, soft-cap; online softmax per row (the four lanes of a quad share a row) */
#pragma unroll
        for (int i = 0; i < 2; i++) {
            float mt = -INFINITY;
#pragma unroll
            for (int j = 0; j < TC_KEYS / 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int key = j0 + j * 8 + 2 * c + e;
                    float v = s[j][2 * i + e] * scale;
                    if (softcap > 0.0f) v = softcap * tanhf(v / softcap);
                    v = key <= rp[i] && key >= rs[i] ? v : -INFINITY; /* rp = -1: a row past T sees nothing */
                    s[j][2 * i + e] = v;
                    mt = fmaxf(mt, v);
                }
            mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
            mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
            float mn = fmaxf(m[i], mt), base = mn == -INFINITY ? 0.0f : mn, corr = expf(m[i] - base), ls = 0.0f;
#pragma unroll
            for (int j = 0; j < TC_KEYS / 8; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float p = __half2float(__float2half_rn(expf(s[j][2 * i + e] - base))); /* -inf: 0 */
                    s[j][2 * i + e] = p;
                    ls += p;
                }
            ls += __shfl_xor_sync(0xffffffffu, ls, 1);
            ls += __shfl_xor_sync(0xffffffffu, ls, 2);
            l[i] = l[i] * corr + ls;
            m[i] = mn;
#pragma unroll
            for (int j = 0; j < HD / 8; j++) o[j][2 * i] *= corr, o[j][2 * i + 1] *= corr;
        }
        /* O += P V: P's A fragments are the score tiles 2kk and 2kk + 1; V's B fragments two dim tiles at a
         * time (lanes 0-7: keys 0-7 at dims d0, 8-15: keys 8-15 at d0, 16-23 / 24-31: the same at d0 + 8) */
#pragma unroll
        for (int kk = 0; kk < TC_KEYS / 16; kk++) {
            uint32_t a0 = h2pack(s[2 * kk][0], s[2 * kk][1]), a1 = h2pack(s[2 * kk][2], s[2 * kk][3]);
            uint32_t a2 = h2pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), a3 = h2pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
            const __half *vrow = vs + (kk * 16 + (lane & 15)) * RS + (lane >> 4) * 8;
#pragma unroll
            for (int d0 = 0; d0 < HD; d0 += 16) {
                uint32_t bv[4];
                ldsm_x4_trans(bv, vrow + d0);
                mma16816(o[d0 / 8], a0, a1, a2, a3, bv[0], bv[1]);
                mma16816(o[d0 / 8 + 1], a0, a1, a2, a3, bv[2], bv[3]);
            }
        }
        __syncthreads(); /* ks and vs are rewritten by the next tile */
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (rp[i] < 0) continue;
        float *orow = out + ((size_t)(t0 + w * 16 + g + 8 * i) * nh + h) * HD + 2 * c, inv = 1.0f / l[i];
#pragma unroll
        for (int j = 0; j < HD / 8; j++) *(float2 *)(orow + j * 8) = make_float2(o[j][2 * i] * inv, o[j][2 * i + 1] * inv);
    }
}

template <typename KV>
using tc_fn = void (*)(const float *, const KV *, const KV *, float *, const int32_t *, int, int, int, float, int, float);

template <typename KV> static tc_fn<KV> tc_kernel(size_t hd) {
    switch (hd) {
    case 16: return attn_tc_kernel<16, KV>;
    case 32: return attn_tc_kernel<32, KV>;
    case 48: return attn_tc_kernel<48, KV>;
    case 64: return attn_tc_kernel<64, KV>;
    case 80: return attn_tc_kernel<80, KV>;
    case 96: return attn_tc_kernel<96, KV>;
    case 128: return attn_tc_kernel<128, KV>;
    case 256: return attn_tc_kernel<256, KV>;
    default: return NULL;
    }
}

template <typename KV> static int attention_tc(ck_backend *b, const ck_attn_args *a) {
    tc_fn<KV> fn = tc_kernel<KV>(a->head_dim);
    if (!fn) return 0;
    if (((uintptr_t)a->q | (uintptr_t)a->k_cache | (uintptr_t)a->v_cache | (uintptr_t)a->out) % 16) return 0;
    size_t smem = (TC_ROWS + 2 * TC_KEYS) * (a->head_dim + 8) * sizeof(__half);
    if (smem > 48 * 1024 && cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    ck_attn_args aa = *a;
    dim3 grid((unsigned)a->n_heads, (unsigned)((a->T + TC_ROWS - 1) / TC_ROWS));
    ck_cuda_run(b, "attention_tc", [=](cudaStream_t st) {
        fn<<<grid, TC_WARPS * 32, smem, st>>>(aa.q, (const KV *)aa.k_cache, (const KV *)aa.v_cache, aa.out, aa.pos,
                                              (int)aa.T, (int)aa.n_heads, (int)aa.n_kv_heads, aa.scale, (int)aa.window,
                                              aa.softcap);
        ck_cuda_launched(b, "attention (tensor cores)");
    }, aa.q, aa.k_cache, aa.v_cache, (int)aa.kv_dtype, aa.out, aa.pos, aa.T, aa.n_heads, aa.n_kv_heads, aa.head_dim,
       aa.scale, aa.window, aa.softcap, smem);
    return 1;
}

int ck_cuda_attention_tc(ck_backend *b, const ck_attn_args *a) {
    ck_cuda *c = ck_cu(b);
    if (!c->tc_attn || ck_cpu_exact() || a->T <= 8) return 0;
    return a->kv_dtype == CK_F16 ? attention_tc<__half>(b, a) : attention_tc<float>(b, a);
}
