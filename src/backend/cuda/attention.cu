/* attention.cu — causal (optionally windowed, soft-capped) attention over a layer's KV cache with grouped
 * KV heads. Row t sits at position pos[t] (device memory) and sees cache positions
 * [max(0, pos[t] + 1 - window), pos[t]]. One block of 128 threads per (query head, token row): the keys
 * are visited in tiles of 128, one key per thread (score = scale * q.k, soft-capped), with an online
 * softmax (running max and sum, f32) and each thread accumulating up to 4 output dims (head_dim <= 512).
 * The reference is the CPU backend's attention (cpu/attention.c); test_backend checks both against a
 * double-precision loop. */
#include "backend/cuda/cuda_internal.h"

#define TILE 128
#define MAX_DPT 4 /* output dims per thread: head_dim <= TILE * MAX_DPT */

static __global__ void __launch_bounds__(TILE)
attn_kernel(const float *__restrict__ q, const float *__restrict__ kc, const float *__restrict__ vc, float *out,
            const int32_t *__restrict__ pos, int nh, int nkv, int hd, float scale, int window, float softcap) {
    extern __shared__ float sm[]; /* q [hd], p [TILE], red [32] */
    float *qs = sm, *ps = sm + hd, *red = ps + TILE;
    int h = blockIdx.x, t = blockIdx.y, tid = threadIdx.x, kvh = h / (nh / nkv);
    int p = pos[t], start = window > 0 && p + 1 > window ? p + 1 - window : 0;
    size_t kv_row = (size_t)nkv * hd;
    const float *qr = q + ((size_t)t * nh + h) * hd;
    for (int i = tid; i < hd; i += TILE) qs[i] = qr[i];
    __syncthreads();
    float m = -INFINITY, l = 0.0f, acc[MAX_DPT];
#pragma unroll
    for (int k = 0; k < MAX_DPT; k++) acc[k] = 0.0f;
    for (int j0 = start; j0 <= p; j0 += TILE) {
        int j = j0 + tid;
        float s = -INFINITY;
        if (j <= p) {
            const float *kr = kc + (size_t)j * kv_row + (size_t)kvh * hd;
            float d = 0.0f;
            for (int i = 0; i < hd; i++) d += qs[i] * kr[i];
            s = d * scale;
            if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
        }
        float mt = ck_block_max(s, red), mn = fmaxf(m, mt);
        float e = j <= p ? expf(s - mn) : 0.0f;
        __syncthreads();
        ps[tid] = e;
        float lt = ck_block_sum(e, red); /* its barriers also publish ps */
        float corr = expf(m - mn);       /* 0 on the first tile (m = -inf) */
        l = l * corr + lt;
        int n = p - j0 + 1 < TILE ? p - j0 + 1 : TILE;
#pragma unroll
        for (int k = 0; k < MAX_DPT; k++) {
            int d = tid + k * TILE;
            if (d >= hd) break;
            float a = acc[k] * corr;
            const float *vr = vc + (size_t)j0 * kv_row + (size_t)kvh * hd + d;
            for (int jj = 0; jj < n; jj++) a += ps[jj] * vr[(size_t)jj * kv_row];
            acc[k] = a;
        }
        m = mn;
        __syncthreads(); /* ps is rewritten by the next tile */
    }
    float *o = out + ((size_t)t * nh + h) * hd;
#pragma unroll
    for (int k = 0; k < MAX_DPT; k++) {
        int d = tid + k * TILE;
        if (d < hd) o[d] = acc[k] / l;
    }
}

void ck_cuda_attention(ck_backend *b, const ck_attn_args *a) {
    if (b->failed || a->T == 0) return;
    if (a->head_dim == 0 || a->head_dim > TILE * MAX_DPT || a->n_kv_heads == 0 || a->n_heads % a->n_kv_heads ||
        a->T > 65535 || a->n_heads > 65535 || a->window > INT32_MAX) {
        ck_backend_fail(b, "attention: heads %zu/%zu of %zu dims are not supported by the CUDA kernel", a->n_heads,
                        a->n_kv_heads, a->head_dim);
        return;
    }
    dim3 grid((unsigned)a->n_heads, (unsigned)a->T);
    size_t smem = (a->head_dim + TILE + 32) * sizeof(float);
    ck_attn_args aa = *a; /* the caller's struct may be gone when a queued launch runs */
    ck_cuda_run(b, "attention", [=](cudaStream_t st) {
        attn_kernel<<<grid, TILE, smem, st>>>(aa.q, aa.k_cache, aa.v_cache, aa.out, aa.pos, (int)aa.n_heads,
                                              (int)aa.n_kv_heads, (int)aa.head_dim, aa.scale, (int)aa.window,
                                              aa.softcap);
        ck_cuda_launched(b, "attention");
    }, aa.q, aa.k_cache, aa.v_cache, aa.out, aa.pos, aa.T, aa.n_heads, aa.n_kv_heads, aa.head_dim, aa.scale,
       aa.window, aa.softcap);
}
