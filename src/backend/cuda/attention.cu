/* attention.cu — causal (optionally windowed, soft-capped) attention over a layer's KV cache with grouped
 * KV heads. Row t sits at position pos[t] (device memory) and sees cache positions
 * [max(0, pos[t] + 1 - window), pos[t]].
 * One block of 16 warps per (query head, token row). Keys are visited in tiles of 512: the warps score them
 * (where head_dim is 32 PL, a group of 8 lanes per key with 16-byte loads, each lane holding a quarter of
 * every 32 query values, summed in three shuffles, 8 keys in flight per warp; otherwise lanes split the head
 * dims, every K row one coalesced read, four keys in flight per warp), the block takes the tile's max and
 * turns the scores into exp(s - max) with an online softmax (running max and sum, f32), and each warp
 * accumulates its keys' V rows into a partial output held in registers (lane owns dims lane, lane + 32, ...;
 * head_dim <= 512); the partials are summed at the end. Many warps per block keep enough loads in flight for
 * a decode step (one row, few heads), which is latency-bound rather than bandwidth-bound. Calls of up to 8
 * rows (decode) also split each row's keys into up to 16 ranges, one block each (flash-decoding): each writes
 * its unnormalized output with its max and sum, and the last of them to finish (an atomic count per row and
 * head) combines them, so that a long context is read by up to 16 times as many blocks. The caches hold f32
 * or f16 values (a template parameter of every kernel; the sums are f32 either way). A decode row's attention
 * may also take over the head-row batch before it (fuse.cu, ck_attn_prep): each block then prepares its query
 * row and its KV head's new key and value row in shared memory and takes the new key and value from there
 * (attn_prep). Decode calls whose shape attention_group.cu's kernel takes (a block per KV head instead of
 * per query head) go there, with the same splits and the same prologue. Calls of more than 8 rows (prefill
 * chunks) with head_dim <= 256 take attn_prefill_kernel
 * instead: a block per tile of 16 rows, so that K and V are read once per tile rather than once per row; on
 * the fast path (not CAKE_EXACT) attention_tc.cu's tensor-core kernel takes those calls first. The reference
 * is the CPU backend's attention (cpu/attention.c); test_backend checks both against a double-precision loop. */
#include "backend/cuda/cuda_internal.h"

#define WARPS 16
#define KTILE 512
#define MAX_PER_LANE 16 /* head_dim <= 32 * MAX_PER_LANE */

/* The fused head-row prologue (one row, t = 0; qr = pp.x[0]'s row h when there is a q part): the block's
 * query row into pq and its KV head's new key and value rows into pk and pv, as the head-row kernel would
 * make them (warps 0, 1, 2), and as the cache holds them into rk and rv (f16 caches; else rk = pk, rv = pv):
 * the attention reads those, as it reads every other cache row. Then the prepared rows go back: into the
 * caches at position p (by one block per KV head, the last split of its first query head: no block of the
 * launch reads those cache rows), and into x where the part is normalized or rotated, once every block that
 * reads the source row has read it. A query row's readers are the S splits of its head (S = 1: the block
 * alone), a KV row's the grp * S blocks of its query heads; a count per head in pp.counter (nh for q, then
 * nkv) finds the last of them. The last warp writes and counts while the others go on; every warp returns
 * with pq, pk and pv made. */
template <typename KV>
static __device__ void attn_prep(const ck_attn_prep &pp, const float *qr, float *pq, float *pk, float *pv, KV *rk,
                                 KV *rv, KV *kc, KV *vc, int h, int kvh, int nh, int nkv, int hd, int p, int S, int si) {
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31, grp = nh / nkv;
    if (w == 0) {
        ck_head_row(pq, qr, hd, pp.w[0], pp.eps, pp.one_plus, pp.rope[0], p, pp.inv_freq, pp.half);
    } else if (w <= 2) {
        float *r = w == 1 ? pk : pv;
        ck_head_row(r, pp.x[w] + (size_t)kvh * hd, hd, pp.w[w], pp.eps, pp.one_plus, pp.rope[w], p, pp.inv_freq,
                    pp.half);
        if (sizeof(KV) != sizeof(float)) { /* the cache's values (each lane its own dims) */
            KV *o = w == 1 ? rk : rv;
            for (int d = lane; d < hd; d += 32) o[d] = ck_kv_make<KV>(r[d]);
        }
    }
    __syncthreads();
    if (w != WARPS - 1) return;
    int wq = pp.x[0] && (pp.w[0] || pp.rope[0]), wk = pp.w[1] || pp.rope[1], wv = pp.w[2] || pp.rope[2];
    size_t at = (size_t)kvh * hd;
    if (h % grp == 0 && si == S - 1) {
        size_t row = ((size_t)p * nkv + kvh) * hd;
        for (int d = lane; d < hd; d += 32) kc[row + d] = rk[d], vc[row + d] = rv[d];
    }
    unsigned last_q = 0, last_kv = 0;
    if (lane == 0) {
        __threadfence();
        if (wq && S > 1) last_q = atomicAdd(&pp.counter[h], 1u) == (unsigned)S - 1;
        if (wk || wv) last_kv = atomicAdd(&pp.counter[nh + kvh], 1u) == (unsigned)(grp * S) - 1;
        if (last_q || last_kv) __threadfence();
    }
    __syncwarp(); /* the other lanes' writes below come after lane 0's fence */
    last_q = wq && (S == 1 || __shfl_sync(0xffffffffu, last_q, 0));
    last_kv = __shfl_sync(0xffffffffu, last_kv, 0);
    if (last_q) {
        for (int d = lane; d < hd; d += 32) pp.x[0][(size_t)h * hd + d] = pq[d];
        if (lane == 0 && S > 1) pp.counter[h] = 0;
    }
    if (last_kv) {
        for (int d = lane; d < hd; d += 32) {
            if (wk) pp.x[1][at + d] = pk[d];
            if (wv) pp.x[2][at + d] = pv[d];
        }
        if (lane == 0) pp.counter[nh + kvh] = 0;
    }
}

template <int PL, typename KV>
static __global__ void __launch_bounds__(WARPS * 32)
attn_kernel(const float *q, const KV *__restrict__ kc, const KV *__restrict__ vc, float *out,
            const int32_t *__restrict__ pos, int nh, int nkv, int hd, float scale, int window, float softcap,
            ck_attn_split sp, ck_attn_prep pp, int vec) {
    /* q is not restrict: with pp, its rows are written back through pp.x[0]. The caches are written only
     * at row pos[0] (attn_prep), which no block of the launch reads. */
    extern __shared__ float4 sm4[]; /* sc [KTILE], red [32], part [WARPS][hd], then with pp: pq, pk, pv [hd]
                                       (f32), and for an f16 cache rk, rv [hd] (f16); 16-byte aligned */
    float *sm = (float *)sm4;
    float *sc = sm, *red = sm + KTILE, *part = red + 32, *pq = part + WARPS * hd, *pk = pq + hd, *pv = pk + hd;
    KV *rk = sizeof(KV) == sizeof(float) ? (KV *)pk : (KV *)(pv + hd);
    KV *rv = sizeof(KV) == sizeof(float) ? (KV *)pv : rk + hd;
    constexpr bool KVEC = PL >= 2 && PL <= 8 && (4 * PL * sizeof(KV)) % 16 == 0;
    int h = blockIdx.x, t = blockIdx.y, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    ck_pdl_trigger(); /* the output projection after it may start loading its weights */
    int kvh = h / (nh / nkv);
    int p = pos[t], pnew = pp.x[1] ? p : -1, start = window > 0 && p + 1 > window ? p + 1 - window : 0;
    int S = gridDim.z, si = blockIdx.z;
    if (S > 1) { /* split si of S: keys [start + si * per, ...] */
        int per = (p - start + S) / S;
        start += si * per;
        if (start + per - 1 < p) p = start + per - 1;
    }
    size_t kv_row = (size_t)nkv * hd;
    const float *qr = q + ((size_t)t * nh + h) * hd;
    const KV *kb = kc + (size_t)kvh * hd, *vb = vc + (size_t)kvh * hd;
    if (pnew >= 0) { /* a decode row prepares its own rows: q from pq, the key and value at pnew from rk, rv */
        attn_prep<KV>(pp, qr, pq, pk, pv, rk, rv, (KV *)kc, (KV *)vc, h, kvh, nh, nkv, hd, pnew, S, si);
        qr = pq;
    }
    float qv[PL], o[PL];
#pragma unroll
    for (int k = 0; k < PL; k++) {
        int d = lane + 32 * k;
        qv[k] = d < hd ? qr[d] : 0.0f;
        o[k] = 0.0f;
    }
    /* The vector scoring path: head_dim = 32 PL, split over 8 lanes of 4 PL values each, in 16-byte pieces
     * (PL of 2-8; for f16 caches an even PL), each lane holding its part of the query. */
    constexpr int QG = KVEC ? 4 * PL : 1;
    const bool kvec = KVEC && vec && hd == 32 * PL;
    float qg[QG];
    if (kvec)
#pragma unroll
        for (int i = 0; i < QG; i++) qg[i] = qr[(lane & 7) * QG + i];
    float m = -INFINITY, l = 0.0f;
    for (int j0 = start; j0 <= p; j0 += KTILE) {
        int n = p - j0 + 1 < KTILE ? p - j0 + 1 : KTILE;
        { /* the warp's K and V rows of the tile towards L2 first: the loads below come four keys at a time */
            const int per = 128 / (int)sizeof(KV); /* values per 128-byte line */
            int lines = (hd + per - 1) / per, mine = (n - w + WARPS - 1) / WARPS;
            for (int i = lane; i < mine * lines; i += 32) {
                size_t at = (size_t)(j0 + w + (i / lines) * WARPS) * kv_row + (size_t)(i % lines) * per;
                ck_prefetch_l2(kb + at), ck_prefetch_l2(vb + at);
            }
        }
        if (kvec) { /* scores: a key per group of 8 lanes (16-byte loads), 4 keys a warp, 8 in flight */
          if constexpr (KVEC) {
            const int kk = lane >> 3;
            for (int jb = w * 4; jb < n; jb += 2 * 4 * WARPS) { /* the whole warp iterates: it shuffles */
                float s[2];
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    int j = jb + kk + u * 4 * WARPS;
                    s[u] = 0.0f;
                    if (j < n) {
                        const KV *kr = j0 + j == pnew ? rk : kb + (size_t)(j0 + j) * kv_row;
                        float kf[QG];
                        ck_kv_load<QG>(kr + (lane & 7) * QG, kf);
#pragma unroll
                        for (int i = 0; i < QG; i++) s[u] += qg[i] * kf[i];
                    }
                }
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    int j = jb + kk + u * 4 * WARPS;
                    float v = s[u];
                    v += __shfl_xor_sync(0xffffffffu, v, 1);
                    v += __shfl_xor_sync(0xffffffffu, v, 2);
                    v += __shfl_xor_sync(0xffffffffu, v, 4);
                    v *= scale;
                    if (softcap > 0.0f) v = softcap * tanhf(v / softcap);
                    if ((lane & 7) == 0 && j < n) sc[j] = v;
                }
            }
          }
        } else { /* scores: lanes over the head dims, four keys per warp in flight */
            for (int jj = w; jj < n; jj += 4 * WARPS) {
                float s[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    int j = jj + u * WARPS;
                    s[u] = 0.0f;
                    if (j < n) {
                        const KV *kr = j0 + j == pnew ? rk : kb + (size_t)(j0 + j) * kv_row;
#pragma unroll
                        for (int k = 0; k < PL; k++) {
                            int d = lane + 32 * k;
                            if (d < hd) s[u] += qv[k] * ck_kvf(kr[d]);
                        }
                    }
                }
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    int j = jj + u * WARPS;
                    float v = ck_warp_sum(s[u]) * scale;
                    if (softcap > 0.0f) v = softcap * tanhf(v / softcap);
                    if (lane == 0 && j < n) sc[j] = v;
                }
            }
        }
        __syncthreads();
        float mt = -INFINITY;
        for (int j = threadIdx.x; j < n; j += WARPS * 32) mt = fmaxf(mt, sc[j]);
        mt = ck_block_max(mt, red);
        float mn = fmaxf(m, mt), lt = 0.0f;
        for (int j = threadIdx.x; j < n; j += WARPS * 32) {
            float e = expf(sc[j] - mn);
            sc[j] = e;
            lt += e;
        }
        lt = ck_block_sum(lt, red); /* its barriers also publish sc */
        float corr = expf(m - mn);  /* 0 on the first tile (m = -inf) */
        l = l * corr + lt;
        m = mn;
#pragma unroll
        for (int k = 0; k < PL; k++) o[k] *= corr;
#pragma unroll 4
        for (int j = w; j < n; j += WARPS) {
            float e = sc[j];
            const KV *vr = j0 + j == pnew ? rv : vb + (size_t)(j0 + j) * kv_row;
#pragma unroll
            for (int k = 0; k < PL; k++) {
                int d = lane + 32 * k;
                if (d < hd) o[k] += e * ck_kvf(vr[d]);
            }
        }
        __syncthreads(); /* sc is rewritten by the next tile */
    }
#pragma unroll
    for (int k = 0; k < PL; k++) {
        int d = lane + 32 * k;
        if (d < hd) part[w * hd + d] = o[k];
    }
    __syncthreads();
    float *orow = out + ((size_t)t * nh + h) * hd;
    if (S == 1) {
        for (int d = threadIdx.x; d < hd; d += WARPS * 32) {
            float s = 0.0f;
            for (int i = 0; i < WARPS; i++) s += part[i * hd + d];
            orow[d] = s / l;
        }
        return;
    }
    /* split: this block's unnormalized output, max and sum; the last split of (t, h) to finish combines */
    size_t th = (size_t)t * nh + h, at = th * S + si;
    for (int d = threadIdx.x; d < hd; d += WARPS * 32) {
        float s = 0.0f;
        for (int i = 0; i < WARPS; i++) s += part[i * hd + d];
        sp.o[at * hd + d] = s;
    }
    if (threadIdx.x == 0) sp.m[at] = m, sp.l[at] = l;
    __threadfence();
    __syncthreads();
    __shared__ int last;
    if (threadIdx.x == 0) last = atomicAdd(&sp.count[th], 1u) == (unsigned)S - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int d = threadIdx.x; d < hd; d += WARPS * 32) orow[d] = ck_attn_combine(sp, th, S, hd, d);
    if (threadIdx.x == 0) sp.count[th] = 0;
}

/* The prefill kernel (calls of more than 8 rows): one block per (query head, tile of PT_ROWS consecutive
 * rows), so that each K/V row is read from memory once per tile instead of once per row. The block stages
 * its query rows, then walks the keys its rows can see in tiles of PT_KEYS, each tile's K and V staged in
 * shared memory (K rows padded by four floats, or one when head_dim is not a multiple of 4, so that lane j
 * reading key j's dims meets no bank conflict).
 * Each warp owns PT_ROWS / 8 rows: lane j scores key j of the tile for each of them (dot products over
 * the head dims in four partial sums), the warp updates each row's online softmax (running max and sum,
 * f32), then accumulates the tile's V rows into the rows' outputs (lane owns dims lane, lane + 32, ...). Rows at or past T, and keys a row may
 * not see, are masked. */
#define PT_ROWS 16
#define PT_KEYS 32
#define PT_WARPS 8
#define PT_RPW (PT_ROWS / PT_WARPS)
template <int PL, typename KV>
static __global__ void __launch_bounds__(PT_WARPS * 32)
attn_prefill_kernel(const float *__restrict__ q, const KV *__restrict__ kc, const KV *__restrict__ vc, float *out,
                    const int32_t *__restrict__ pos, int T, int nh, int nkv, int hd, float scale, int window,
                    float softcap) {
    extern __shared__ float4 sm4[];
    float *sm = (float *)sm4;
    const int v4 = hd % 4 == 0, kst = v4 ? hd + 4 : hd + 1; /* K row stride: 16-byte rows without bank conflicts */
    float *qs = sm, *ks = qs + PT_ROWS * hd, *vs = ks + PT_KEYS * kst;
    __shared__ int lo_s, hi_s;
    int h = blockIdx.x, t0 = blockIdx.y * PT_ROWS, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int kvh = h / (nh / nkv);
    size_t kv_row = (size_t)nkv * hd;
    for (int i = threadIdx.x; i < PT_ROWS * hd; i += PT_WARPS * 32) {
        int r = i / hd, d = i % hd;
        qs[i] = t0 + r < T ? q[((size_t)(t0 + r) * nh + h) * hd + d] : 0.0f;
    }
    if (threadIdx.x == 0) { /* the keys any row of the tile sees */
        int lo = INT_MAX, hi = -1;
        for (int r = 0; r < PT_ROWS && t0 + r < T; r++) {
            int p = pos[t0 + r], st = window > 0 && p + 1 > window ? p + 1 - window : 0;
            lo = st < lo ? st : lo, hi = p > hi ? p : hi;
        }
        lo_s = lo, hi_s = hi;
    }
    int rp[PT_RPW], rs[PT_RPW];
    float m[PT_RPW], l[PT_RPW], o[PT_RPW][PL];
#pragma unroll
    for (int i = 0; i < PT_RPW; i++) {
        int row = t0 + w * PT_RPW + i;
        rp[i] = row < T ? pos[row] : -1;
        rs[i] = row < T && window > 0 && rp[i] + 1 > window ? rp[i] + 1 - window : 0;
        m[i] = -INFINITY, l[i] = 0.0f;
#pragma unroll
        for (int k = 0; k < PL; k++) o[i][k] = 0.0f;
    }
    __syncthreads();
    int lo = lo_s, hi = hi_s;
    const float *qw = qs + w * PT_RPW * hd; /* the warp's query rows */
    for (int j0 = lo; j0 <= hi; j0 += PT_KEYS) {
        int n = hi - j0 + 1 < PT_KEYS ? hi - j0 + 1 : PT_KEYS;
        for (int i = threadIdx.x; i < n * hd; i += PT_WARPS * 32) {
            int j = i / hd, d = i % hd;
            size_t at = (size_t)(j0 + j) * kv_row + (size_t)kvh * hd + d;
            ks[j * kst + d] = ck_kvf(kc[at]);
            vs[j * hd + d] = ck_kvf(vc[at]);
        }
        __syncthreads();
        /* lane j: key j0 + j against each of the warp's rows, four partial sums per row */
        float acc[PT_RPW][4];
#pragma unroll
        for (int i = 0; i < PT_RPW; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
        if (lane < n) {
            const float *kr = ks + lane * kst;
            if (v4) {
                for (int d = 0; d < hd; d += 4) {
                    float4 kv = *(const float4 *)(kr + d);
#pragma unroll
                    for (int i = 0; i < PT_RPW; i++) {
                        float4 qv = *(const float4 *)(qw + i * hd + d);
                        acc[i][0] += qv.x * kv.x, acc[i][1] += qv.y * kv.y, acc[i][2] += qv.z * kv.z, acc[i][3] += qv.w * kv.w;
                    }
                }
            } else {
                for (int d = 0; d < hd; d++)
#pragma unroll
                    for (int i = 0; i < PT_RPW; i++) acc[i][d & 3] += qw[i * hd + d] * kr[d];
            }
        }
        float p[PT_RPW];
#pragma unroll
        for (int i = 0; i < PT_RPW; i++) {
            int key = j0 + lane;
            bool ok = rp[i] >= 0 && lane < n && key <= rp[i] && key >= rs[i];
            float sc = -INFINITY;
            if (ok) {
                sc = ((acc[i][0] + acc[i][1]) + (acc[i][2] + acc[i][3])) * scale;
                if (softcap > 0.0f) sc = softcap * tanhf(sc / softcap);
            }
            float mt = ck_warp_max(sc);
            p[i] = 0.0f;
            if (mt == -INFINITY) continue; /* no key of this tile for the row (or a row past T) */
            float mn = fmaxf(m[i], mt), corr = expf(m[i] - mn);
            p[i] = ok ? expf(sc - mn) : 0.0f;
            l[i] = l[i] * corr + ck_warp_sum(p[i]);
            m[i] = mn;
#pragma unroll
            for (int k = 0; k < PL; k++) o[i][k] *= corr;
        }
        for (int j = 0; j < n; j++) { /* each V row once for all the warp's rows */
            float pj[PT_RPW];
#pragma unroll
            for (int i = 0; i < PT_RPW; i++) pj[i] = __shfl_sync(0xffffffffu, p[i], j);
#pragma unroll
            for (int k = 0; k < PL; k++) {
                int d = lane + 32 * k;
                float v = d < hd ? vs[j * hd + d] : 0.0f;
#pragma unroll
                for (int i = 0; i < PT_RPW; i++) o[i][k] += pj[i] * v;
            }
        }
        __syncthreads(); /* the tiles are rewritten next */
    }
#pragma unroll
    for (int i = 0; i < PT_RPW; i++) {
        if (rp[i] < 0) continue;
        float *orow = out + ((size_t)(t0 + w * PT_RPW + i) * nh + h) * hd;
#pragma unroll
        for (int k = 0; k < PL; k++) {
            int d = lane + 32 * k;
            if (d < hd) orow[d] = o[i][k] / l[i];
        }
    }
}

template <typename KV>
using pt_fn = void (*)(const float *, const KV *, const KV *, float *, const int32_t *, int, int, int, int, float, int,
                       float);

template <typename KV> static pt_fn<KV> prefill_fn(size_t pl) {
    return pl <= 1 ? attn_prefill_kernel<1, KV> : pl <= 2 ? attn_prefill_kernel<2, KV>
         : pl <= 4 ? attn_prefill_kernel<4, KV> : attn_prefill_kernel<8, KV>;
}

/* The prefill kernel for a call over caches of KV, when it applies (more than 8 rows, head_dim <= 256, its
 * shared memory available; CK_CUDA_TILED_ATTN=0 turns it off): returns 1 when queued. */
template <typename KV> static int attention_prefill(ck_backend *b, const ck_attn_args *a) {
    if (a->T <= 8 || a->head_dim > 256 || !ck_cu(b)->tiled_attn) return 0;
    pt_fn<KV> fn = prefill_fn<KV>((a->head_dim + 31) / 32);
    size_t kst = a->head_dim % 4 ? a->head_dim + 1 : a->head_dim + 4; /* as the kernel pads K rows */
    size_t smem = (PT_ROWS * a->head_dim + PT_KEYS * kst + PT_KEYS * a->head_dim) * sizeof(float);
    if (smem > 48 * 1024 && cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    ck_attn_args aa = *a;
    aa.keys_max = 0; /* (not used by the launch) */
    dim3 grid((unsigned)a->n_heads, (unsigned)((a->T + PT_ROWS - 1) / PT_ROWS));
    ck_cuda_run(b, "attention", [=](cudaStream_t st) {
        fn<<<grid, PT_WARPS * 32, smem, st>>>(aa.q, (const KV *)aa.k_cache, (const KV *)aa.v_cache, aa.out, aa.pos,
                                               (int)aa.T, (int)aa.n_heads, (int)aa.n_kv_heads, (int)aa.head_dim,
                                               aa.scale, (int)aa.window, aa.softcap);
        ck_cuda_launched(b, "attention (prefill)");
    }, aa.q, aa.k_cache, aa.v_cache, (int)aa.kv_dtype, aa.out, aa.pos, aa.T, aa.n_heads, aa.n_kv_heads, aa.head_dim,
       aa.scale, aa.window, aa.softcap, grid.y, smem);
    return 1;
}

template <typename KV>
using attn_fn = void (*)(const float *, const KV *, const KV *, float *, const int32_t *, int, int, int, float, int,
                         float, ck_attn_split, ck_attn_prep, int);

template <typename KV> static attn_fn<KV> decode_fn(size_t pl) {
    return pl <= 1 ? attn_kernel<1, KV> : pl <= 2 ? attn_kernel<2, KV> : pl <= 4 ? attn_kernel<4, KV>
         : pl <= 8 ? attn_kernel<8, KV> : attn_kernel<16, KV>;
}

/* Splits of the keys per (row, head) for calls of up to 8 rows (decode): enough blocks to spread a long
 * context over the multiprocessors, one split per split_keys keys the call may see (keys_max, known on
 * the host; CK_CUDA_ATTN_KEYS), up to split_max of them (CK_CUDA_ATTN_SPLITS, at most SPLITS): a short
 * context skips the combining step. The count changes only at multiples of split_keys, so a decode
 * step's graph is re-captured a few times per context, not per token. */
#define SPLITS 32
#define SPLIT_MAX_T 8

template <typename KV> static void attention(ck_backend *b, const ck_attn_args *a) {
    if (a->head_dim == 0 || a->head_dim > 32 * MAX_PER_LANE || a->n_kv_heads == 0 || a->n_heads % a->n_kv_heads ||
        a->T > 65535 || a->n_heads > 65535 || a->window > INT32_MAX) {
        ck_backend_fail(b, "attention: heads %zu/%zu of %zu dims are not supported by the CUDA kernel", a->n_heads,
                        a->n_kv_heads, a->head_dim);
        return;
    }
    if (ck_cuda_attention_tc(b, a) || attention_prefill<KV>(b, a)) return;
    attn_fn<KV> fn = decode_fn<KV>((a->head_dim + 31) / 32);
    dim3 grid((unsigned)a->n_heads, (unsigned)a->T);
    size_t smem = (KTILE + 32 + (WARPS + 3) * a->head_dim + (sizeof(KV) == 2 ? a->head_dim : 0)) * sizeof(float);
    if (smem > 48 * 1024 && cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess) {
        cudaGetLastError();
        ck_backend_fail(b, "attention: %zu bytes of shared memory are not available", smem);
        return;
    }
    ck_attn_args aa = *a; /* the caller's struct may be gone when a queued launch runs */
    aa.keys_max = 0;      /* (the launch does not use it: it must not be captured unkeyed) */
    ck_attn_split sp = {NULL, NULL, NULL, NULL};
    size_t splits = ck_cu(b)->split_max, keys = a->window && a->window < a->keys_max ? a->window : a->keys_max;
    if (keys) {
        size_t per = ck_cu(b)->split_keys;
        splits = (keys + per - 1) / per;
        if (splits > ck_cu(b)->split_max) splits = ck_cu(b)->split_max;
    }
    if (a->T <= SPLIT_MAX_T && ck_cu(b)->split_ok && splits > 1) {
        ck_cuda *c = ck_cu(b);
        size_t th = a->T * a->n_heads, need = th * SPLITS * (a->head_dim + 2) * sizeof(float); /* for any count */
        /* grown once per shape: the counters first (zeroed), then the partials */
        if (need + SPLIT_MAX_T * 65536 * 4 > c->attn_bytes) {
            char *nb = (char *)ck_cuda_scratch(b, &c->attn, &c->attn_bytes, need + SPLIT_MAX_T * 65536 * 4);
            if (!nb || ck_cuda_check(b, cudaMemsetAsync(nb, 0, SPLIT_MAX_T * 65536 * 4, c->st), "attention scratch"))
                return;
        }
        char *base = (char *)c->attn;
        sp.count = (unsigned *)base;
        sp.o = (float *)(base + SPLIT_MAX_T * 65536 * 4);
        sp.m = sp.o + th * splits * a->head_dim;
        sp.l = sp.m + th * splits;
        grid.z = (unsigned)splits;
    }
    ck_attn_prep pp;
    memset(&pp, 0, sizeof pp);
    int fused = ck_cuda_fuse_attention(b, a, &pp); /* after the scratch, whose growth would emit the batch */
    if (ck_cuda_attention_group(b, a, sp, grid.z, &pp)) return;
    int vec = ck_cu(b)->attn_vec && (uintptr_t)a->k_cache % 16 == 0; /* (its 16-byte key loads) */
    ck_cuda_run(b, fused ? "attention+heads" : "attention", [=](cudaStream_t st) {
        fn<<<grid, WARPS * 32, smem, st>>>(aa.q, (const KV *)aa.k_cache, (const KV *)aa.v_cache, aa.out, aa.pos,
                                           (int)aa.n_heads, (int)aa.n_kv_heads, (int)aa.head_dim, aa.scale,
                                           (int)aa.window, aa.softcap, sp, pp, vec);
        ck_cuda_launched(b, "attention");
    }, aa.q, aa.k_cache, aa.v_cache, (int)aa.kv_dtype, aa.out, aa.pos, aa.T, aa.n_heads, aa.n_kv_heads, aa.head_dim, aa.scale,
       aa.window, aa.softcap, vec, sp.o, sp.count, grid.z, pp.x[0], pp.x[1], pp.x[2], pp.w[0], pp.w[1], pp.w[2], pp.rope[0],
       pp.rope[1], pp.rope[2], pp.eps, pp.one_plus, pp.half, pp.inv_freq, pp.counter);
}

void ck_cuda_attention(ck_backend *b, const ck_attn_args *a) {
    if (b->failed || a->T == 0) return;
    if (a->kv_dtype == CK_F16) attention<__half>(b, a);
    else if (a->kv_dtype == CK_F32) attention<float>(b, a);
    else ck_backend_fail(b, "attention: a KV cache of %s is not supported", ck_dtype_name(a->kv_dtype));
}
