/* attention_group.cu — decode attention by KV head (calls of up to 8 rows): one block per (KV head, token
 * row, split of the keys) takes all G query heads of its KV head (G of 1, 2 or 4), so that every key and
 * value row is read once for the group instead of once per query head. The math is attention.cu's: row t
 * at position pos[t] sees cache positions [max(0, pos[t] + 1 - window), pos[t]], scores scaled (and
 * soft-capped), an online softmax in f32 over f32 or f16 caches; the split count S and the combining of
 * the splits' partial outputs (the last split of a row to finish combines) are attention.cu's as well.
 *
 * Each warp walks its own keys, eight at a time (a key per group of 8 lanes, two per group, 16-byte loads,
 * each lane holding its part of every query row of the group), with its own running max and sum per query
 * head, so the keys are never staged in shared memory and the block never waits on itself inside the walk;
 * the eight value rows of a step come in 16-byte loads too (a row over hd * sizeof(cache value) / 16 lanes)
 * and every lane multiplies them by all G probabilities. At the end the warps' states are merged in warp
 * order. Before anything else each warp asks the L2 for the key and value rows it will walk and loads those
 * of its first step (CK_CUDA_ATTN_EARLY=0: after the prologue), so their latency overlaps the prologue's
 * work; the row of the new key, which the prologue makes, is filled in after it. A decode row
 * (T = 1) may also take over the head-row batch before it (ck_attn_prep), as attention.cu's kernel does:
 * warps 0 .. G - 1 prepare the group's query rows, warps G and G + 1 the new key and value rows, the block
 * of the last split stores those into the caches at pos[0], and the last block of the KV head to finish
 * writes the prepared rows back. Shapes it does not take (another G, head dims other than 64, 128, 256, an
 * f32 cache with 256 dims, unaligned caches) go to attention.cu's kernel. */
#include "backend/cuda/cuda_internal.h"

#define GW 8    /* warps per block */
#define GSTEP 8 /* keys per warp and step: two per group of 8 lanes */

/* 16 bytes of cache values as floats (8 halves or 4 floats). */
static __device__ __forceinline__ void grp_unpack(uint4 u, float *f, const __half *) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        float2 t = __half22float2(*(const __half2 *)&w[k]);
        f[2 * k] = t.x, f[2 * k + 1] = t.y;
    }
}
static __device__ __forceinline__ void grp_unpack(uint4 u, float *f, const float *) {
    f[0] = __uint_as_float(u.x), f[1] = __uint_as_float(u.y), f[2] = __uint_as_float(u.z), f[3] = __uint_as_float(u.w);
}

/* The head-row prologue for a group (T = 1, position p): the G query rows into pq, the KV head's new key
 * and value rows into pk and pv (and as the cache holds them into rk and rv), by ck_head_row as the
 * head-row kernel makes them. The block of the last split stores the cache rows at p (no block of the launch
 * reads those rows: the row at p is taken from rk and rv); the last of the S blocks of the KV head to get
 * here writes the prepared rows back to x where a part was normalized or rotated (every block has read its
 * source rows by then). */
template <typename KV, int G>
static __device__ void grp_prep(const ck_attn_prep &pp, const float *q, float *pq, float *pk, float *pv, KV *rk,
                                KV *rv, KV *kc, KV *vc, int kvh, int nh, int nkv, int hd, int p, int S, int si) {
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31, h0 = kvh * G;
    if (w < G) {
        ck_head_row(pq + w * hd, q + (size_t)w * hd, hd, pp.w[0], pp.eps, pp.one_plus, pp.rope[0], p, pp.inv_freq,
                    pp.half);
    } else if (w <= G + 1) {
        int k = w - G + 1;
        float *r = k == 1 ? pk : pv;
        ck_head_row(r, pp.x[k] + (size_t)kvh * hd, hd, pp.w[k], pp.eps, pp.one_plus, pp.rope[k], p, pp.inv_freq,
                    pp.half);
        if (sizeof(KV) != sizeof(float)) {
            KV *o = k == 1 ? rk : rv;
            for (int d = lane; d < hd; d += 32) o[d] = ck_kv_make<KV>(r[d]);
        }
    }
    __syncthreads();
    if (w != GW - 1) return;
    int wq = pp.x[0] && (pp.w[0] || pp.rope[0]), wk = pp.w[1] || pp.rope[1], wv = pp.w[2] || pp.rope[2];
    if (si == S - 1) {
        size_t row = ((size_t)p * nkv + kvh) * hd;
        for (int d = lane; d < hd; d += 32) kc[row + d] = rk[d], vc[row + d] = rv[d];
    }
    unsigned last = 1;
    if (S > 1) {
        if (lane == 0) {
            __threadfence();
            last = atomicAdd(&pp.counter[nh + kvh], 1u) == (unsigned)S - 1;
            if (last) __threadfence();
        }
        __syncwarp();
        last = __shfl_sync(0xffffffffu, last, 0);
    }
    if (!last) return;
    if (wq)
        for (int i = lane; i < G * hd; i += 32) pp.x[0][(size_t)h0 * hd + i] = pq[i];
    for (int d = lane; d < hd; d += 32) {
        if (wk) pp.x[1][(size_t)kvh * hd + d] = pk[d];
        if (wv) pp.x[2][(size_t)kvh * hd + d] = pv[d];
    }
    if (lane == 0 && S > 1) pp.counter[nh + kvh] = 0;
}

template <int HD, typename KV, int G>
static __global__ void __launch_bounds__(GW * 32)
attn_group_kernel(const float *q, const KV *__restrict__ kc, const KV *__restrict__ vc, float *out,
                  const int32_t *__restrict__ pos, int nh, int nkv, float scale, int window, float softcap,
                  ck_attn_split sp, ck_attn_prep pp, int early) {
    constexpr int QG = HD / 8;              /* query and key values per lane: a key over 8 lanes */
    constexpr int KL = QG * sizeof(KV) / 16; /* its 16-byte loads */
    constexpr int DV = 16 / sizeof(KV);      /* value dims per lane and load */
    constexpr int LV = HD / DV;              /* lanes per value row */
    constexpr int RV = 32 / LV;              /* value rows per warp load */
    constexpr int VL = GSTEP / RV;           /* value loads per lane and step */
    static_assert(KL >= 1 && LV <= 32 && 32 % LV == 0 && RV <= 4, "attn_group_kernel: unsupported shape");
    /* shared memory: pq [G][HD], pk, pv [HD], the warps' outputs wo [GW][G][HD], maxima wm and sums wl
     * [GW][G] (f32), then for an f16 cache rk, rv [HD] */
    extern __shared__ float4 sm4[];
    float *pq = (float *)sm4, *pk = pq + G * HD, *pv = pk + HD, *wo = pv + HD, *wm = wo + GW * G * HD,
          *wl = wm + GW * G;
    KV *rk = sizeof(KV) == sizeof(float) ? (KV *)pk : (KV *)(wl + GW * G);
    KV *rv = sizeof(KV) == sizeof(float) ? (KV *)pv : rk + HD;
    int kvh = blockIdx.x, t = blockIdx.y, S = gridDim.z, si = blockIdx.z, h0 = kvh * G;
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    ck_pdl_trigger(); /* the output projection after it may start loading its weights */
    int p = pos[t], pnew = pp.x[1] ? p : -1, start = window > 0 && p + 1 > window ? p + 1 - window : 0;
    if (S > 1) { /* split si of S: keys [start + si * per, ...] */
        int per = (p - start + S) / S;
        start += si * per;
        if (start + per - 1 < p) p = start + per - 1;
    }
    size_t kv_row = (size_t)nkv * HD;
    const KV *kb = kc + (size_t)kvh * HD, *vb = vc + (size_t)kvh * HD;
    { /* this warp's key and value rows towards L2: the walk below reads them eight keys at a time */
        constexpr int per = 128 / (int)sizeof(KV), lines = (HD + per - 1) / per;
        for (int j0 = start + w * GSTEP; j0 <= p; j0 += GW * GSTEP)
            for (int i = lane; i < GSTEP * lines; i += 32) {
                int j = j0 + i / lines;
                if (j > p) break;
                size_t at = (size_t)j * kv_row + (size_t)(i % lines) * per;
                ck_prefetch_l2(kb + at), ck_prefetch_l2(vb + at);
            }
    }
    const int kg = lane >> 3, sub = lane & 7;
    const uint4 zero = make_uint4(0, 0, 0, 0);
    uint4 kr[2][KL], vr[VL]; /* a step's loads, all issued before any of them is used */
    /* The key and value rows of keys j0 .. j0 + GSTEP - 1 into kr and vr (zero past p). The row at pnew is
     * taken from rk and rv, unless from_cache: then it is left zero, to be filled in after the prologue. */
    auto load = [&](int j0, bool from_cache) {
#pragma unroll
        for (int u = 0; u < 2; u++) {
            int j = j0 + 4 * u + kg;
            bool mine = j == pnew && !from_cache;
            const uint4 *src = (const uint4 *)((mine ? rk : kb + (size_t)j * kv_row) + sub * QG);
#pragma unroll
            for (int i = 0; i < KL; i++) kr[u][i] = j <= p && !(from_cache && j == pnew) ? src[i] : zero;
        }
#pragma unroll
        for (int i = 0; i < VL; i++) {
            int j = j0 + i * RV + lane / LV;
            bool mine = j == pnew && !from_cache;
            const uint4 *src = (const uint4 *)((mine ? rv : vb + (size_t)j * kv_row) + (lane % LV) * DV);
            vr[i] = j <= p && !(from_cache && j == pnew) ? *src : zero;
        }
    };
    int j0 = start + w * GSTEP;
    /* early: the warp's first step of keys is loaded before the prologue, so that its latency overlaps the
     * head rows' preparation (the new key's row is filled in after it) */
    if (early && j0 <= p) load(j0, true);
    const float *qr = q + ((size_t)t * nh + h0) * HD;
    if (pnew >= 0) { /* a decode row prepares its own rows: q from pq, the key and value at pnew from rk, rv */
        grp_prep<KV, G>(pp, qr, pq, pk, pv, rk, rv, (KV *)kc, (KV *)vc, kvh, nh, nkv, HD, pnew, S, si);
        qr = pq;
    }
    if (early && j0 <= p && pnew >= j0 && pnew < j0 + GSTEP) { /* the new key's rows, made by the prologue */
#pragma unroll
        for (int u = 0; u < 2; u++)
            if (j0 + 4 * u + kg == pnew)
#pragma unroll
                for (int i = 0; i < KL; i++) kr[u][i] = ((const uint4 *)(rk + sub * QG))[i];
#pragma unroll
        for (int i = 0; i < VL; i++)
            if (j0 + i * RV + lane / LV == pnew) vr[i] = *(const uint4 *)(rv + (lane % LV) * DV);
    }
    float qg[G][QG];
#pragma unroll
    for (int g = 0; g < G; g++)
#pragma unroll
        for (int i = 0; i < QG; i++) qg[g][i] = qr[g * HD + sub * QG + i];
    float m[G], l[G], o[G][DV];
#pragma unroll
    for (int g = 0; g < G; g++) {
        m[g] = -INFINITY, l[g] = 0.0f;
#pragma unroll
        for (int d = 0; d < DV; d++) o[g][d] = 0.0f;
    }
    for (bool first = true; j0 <= p; j0 += GW * GSTEP, first = false) {
        if (!(early && first)) load(j0, false);
        float pr[2][G];
#pragma unroll
        for (int u = 0; u < 2; u++) {
            float kf[QG];
#pragma unroll
            for (int i = 0; i < KL; i++) grp_unpack(kr[u][i], kf + i * (16 / sizeof(KV)), (const KV *)0);
#pragma unroll
            for (int g = 0; g < G; g++) {
                float s = 0.0f;
#pragma unroll
                for (int i = 0; i < QG; i++) s += qg[g][i] * kf[i];
                s += __shfl_xor_sync(0xffffffffu, s, 1);
                s += __shfl_xor_sync(0xffffffffu, s, 2);
                s += __shfl_xor_sync(0xffffffffu, s, 4);
                s *= scale;
                if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
                pr[u][g] = j0 + 4 * u + kg <= p ? s : -INFINITY;
            }
        }
#pragma unroll
        for (int g = 0; g < G; g++) { /* the warp's running max and sum over its eight new keys */
            float mt = fmaxf(pr[0][g], pr[1][g]);
            mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 8));
            mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 16));
            float mn = fmaxf(m[g], mt), corr = expf(m[g] - mn); /* 0 on the first step (m = -inf) */
            pr[0][g] = expf(pr[0][g] - mn), pr[1][g] = expf(pr[1][g] - mn);
            float ls = pr[0][g] + pr[1][g];
            ls += __shfl_xor_sync(0xffffffffu, ls, 8);
            ls += __shfl_xor_sync(0xffffffffu, ls, 16);
            l[g] = l[g] * corr + ls;
            m[g] = mn;
#pragma unroll
            for (int d = 0; d < DV; d++) o[g][d] *= corr;
        }
#pragma unroll
        for (int i = 0; i < VL; i++) { /* value rows i RV .. i RV + RV - 1 of the step: key k = 4 u + group */
            const int u = (i * RV) >> 2;
            int from = ((i * RV + lane / LV) & 3) * 8;
            float vf[DV];
            grp_unpack(vr[i], vf, (const KV *)0);
#pragma unroll
            for (int g = 0; g < G; g++) {
                float e = __shfl_sync(0xffffffffu, pr[u][g], from);
#pragma unroll
                for (int d = 0; d < DV; d++) o[g][d] += e * vf[d];
            }
        }
    }
    /* the warp's lanes that hold the same dims (other keys) summed, then the warps merged in order */
#pragma unroll
    for (int g = 0; g < G; g++)
#pragma unroll
        for (int d = 0; d < DV; d++)
            for (int off = LV; off < 32; off <<= 1) o[g][d] += __shfl_xor_sync(0xffffffffu, o[g][d], off);
    if (lane < LV)
#pragma unroll
        for (int g = 0; g < G; g++)
#pragma unroll
            for (int d = 0; d < DV; d++) wo[(w * G + g) * HD + lane * DV + d] = o[g][d];
    if (lane == 0)
#pragma unroll
        for (int g = 0; g < G; g++) wm[w * G + g] = m[g], wl[w * G + g] = l[g];
    __syncthreads();
    for (int i = threadIdx.x; i < G * HD; i += GW * 32) {
        int g = i / HD, d = i % HD;
        float M = -INFINITY, L = 0.0f, s = 0.0f;
        for (int k = 0; k < GW; k++) M = fmaxf(M, wm[k * G + g]);
        for (int k = 0; k < GW; k++) {
            float mk = wm[k * G + g];
            if (mk > -INFINITY) {
                float e = expf(mk - M);
                L += wl[k * G + g] * e;
                s += wo[(k * G + g) * HD + d] * e;
            }
        }
        size_t th = (size_t)t * nh + h0 + g;
        if (S == 1) {
            out[th * HD + d] = s / L;
        } else {
            size_t at = th * S + si;
            sp.o[at * HD + d] = s;
            if (d == 0) sp.m[at] = M, sp.l[at] = L;
        }
    }
    if (S == 1) return;
    /* the last split of (t, KV head) to finish combines its query heads' splits */
    __threadfence();
    __syncthreads();
    __shared__ int last;
    size_t tg = (size_t)t * nh + h0;
    if (threadIdx.x == 0) last = atomicAdd(&sp.count[tg], 1u) == (unsigned)S - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int i = threadIdx.x; i < G * HD; i += GW * 32) {
        size_t th = tg + i / HD;
        out[th * HD + i % HD] = ck_attn_combine(sp, th, S, HD, i % HD);
    }
    if (threadIdx.x == 0) sp.count[tg] = 0;
}

template <typename KV>
using grp_fn = void (*)(const float *, const KV *, const KV *, float *, const int32_t *, int, int, float, int, float,
                        ck_attn_split, ck_attn_prep, int);

template <int HD, typename KV> static grp_fn<KV> pick_g(size_t G) {
    return G == 1 ? attn_group_kernel<HD, KV, 1> : G == 2 ? attn_group_kernel<HD, KV, 2>
         : G == 4 ? attn_group_kernel<HD, KV, 4> : NULL;
}
template <typename KV> static grp_fn<KV> pick(size_t hd, size_t G);
template <> grp_fn<__half> pick<__half>(size_t hd, size_t G) {
    return hd == 64 ? pick_g<64, __half>(G) : hd == 128 ? pick_g<128, __half>(G) : hd == 256 ? pick_g<256, __half>(G)
                                                                                               : NULL;
}
template <> grp_fn<float> pick<float>(size_t hd, size_t G) {
    return hd == 64 ? pick_g<64, float>(G) : hd == 128 ? pick_g<128, float>(G) : NULL;
}

template <typename KV>
static int group(ck_backend *b, const ck_attn_args *a, ck_attn_split sp, unsigned S, const ck_attn_prep *pp) {
    size_t G = a->n_heads / a->n_kv_heads, hd = a->head_dim;
    grp_fn<KV> fn = pick<KV>(hd, G);
    if (!fn || a->T > 8 || (uintptr_t)a->k_cache % 16 || (uintptr_t)a->v_cache % 16) return 0;
    size_t smem = ((G + 2) * hd + GW * G * (hd + 2) + (sizeof(KV) == 2 ? hd : 0)) * sizeof(float);
    if (smem > 48 * 1024) return 0;
    ck_attn_args aa = *a; /* the caller's struct may be gone when a queued launch runs */
    aa.keys_max = 0;      /* (the launch does not use it: it must not be captured unkeyed) */
    ck_attn_prep p = *pp;
    dim3 grid((unsigned)a->n_kv_heads, (unsigned)a->T, S);
    int early = ck_cu(b)->attn_early;
    ck_cuda_run(b, p.x[1] ? "attention+heads" : "attention", [=](cudaStream_t st) {
        fn<<<grid, GW * 32, smem, st>>>(aa.q, (const KV *)aa.k_cache, (const KV *)aa.v_cache, aa.out, aa.pos,
                                        (int)aa.n_heads, (int)aa.n_kv_heads, aa.scale, (int)aa.window, aa.softcap, sp, p,
                                        early);
        ck_cuda_launched(b, "attention");
    }, aa.q, aa.k_cache, aa.v_cache, (int)aa.kv_dtype, aa.out, aa.pos, aa.T, aa.n_heads, aa.n_kv_heads, aa.head_dim, aa.scale,
       aa.window, aa.softcap, 2, sp.o, sp.count, S, p.x[0], p.x[1], p.x[2], p.w[0], p.w[1], p.w[2], p.rope[0],
       p.rope[1], p.rope[2], p.eps, p.one_plus, p.half, p.inv_freq, p.counter, early);
    return 1;
}

int ck_cuda_attention_group(ck_backend *b, const ck_attn_args *a, ck_attn_split sp, unsigned S,
                            const ck_attn_prep *pp) {
    if (!ck_cu(b)->attn_group) return 0;
    return a->kv_dtype == CK_F16 ? group<__half>(b, a, sp, S, pp) : a->kv_dtype == CK_F32 ? group<float>(b, a, sp, S, pp)
                                                                                           : 0;
}
