/* deltanet.cu — the recurrent pieces of Gated DeltaNet layers: the causal depthwise conv1d with its carried
 * state, and the gated delta rule (see ck_gdn_args in backend.h).
 * conv1d: one thread per channel walks the T rows with the last K-1 inputs in registers (K <= 16).
 * gated delta: one block per (value head, 64 value columns); a column j of the state S[:, j] evolves on its
 * own given the normalized q and k, so each thread owns one column and walks the tokens in order (the
 * column stays in global memory, read twice per token: decay + S^T k, then the rank-1 update + S^T q).
 * The block first normalizes q and k of the token into shared memory (head dims <= 1024).
 * References: ck_conv1d_channel_ref and ck_gated_delta_head_ref in cpu/ref.c. */
#include "backend/cuda/cuda_internal.h"

#define MAX_K 16
#define COLS 64

static __global__ void conv1d_kernel(float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                                     int K, int silu) {
    size_t c = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (c >= C) return;
    int S = K - 1;
    float win[MAX_K], wc[MAX_K];
    for (int j = 0; j < K; j++) wc[j] = w[c * K + j];
    for (int j = 0; j < S; j++) win[j] = state[j * C + c];
    for (size_t t = 0; t < T; t++) {
        win[S] = x[t * C + c];
        float acc = 0.0f;
        for (int j = 0; j < K; j++) acc += wc[j] * win[j];
        y[t * C + c] = silu ? acc / (1.0f + expf(-acc)) : acc;
        for (int j = 0; j < S; j++) win[j] = win[j + 1];
    }
    for (int j = 0; j < S; j++) state[j * C + c] = win[j];
}

void ck_cuda_conv1d_causal(ck_backend *b, float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                           size_t K, int silu) {
    if (b->failed || T == 0 || C == 0) return;
    if (K == 0 || K > MAX_K) {
        ck_backend_fail(b, "conv1d_causal: kernel size %zu is not supported (1..%d)", K, MAX_K);
        return;
    }
    ck_cuda_run(b, "conv1d_causal", [=](cudaStream_t st) {
        conv1d_kernel<<<(unsigned)((C + 127) / 128), 128, 0, st>>>(y, x, state, w, T, C, (int)K, silu);
        ck_cuda_launched(b, "conv1d_causal");
    }, y, x, state, w, T, C, (int)K, silu);
}

static __global__ void __launch_bounds__(COLS) gated_delta_kernel(ck_gdn_args a) {
    extern __shared__ float sm[]; /* q [dk], k [dk], red [32] */
    int dk = (int)a.k_head_dim, dv = (int)a.v_head_dim, nv = (int)a.n_v_heads;
    int h = blockIdx.x, j = blockIdx.y * COLS + threadIdx.x, kh = h / (nv / (int)a.n_k_heads);
    float *qs = sm, *ks = sm + dk, *red = ks + dk;
    float *S = a.state + (size_t)h * dk * dv + j; /* column j, stride dv */
    for (size_t t = 0; t < a.T; t++) {
        const float *qt = a.q + t * a.q_stride + (size_t)kh * dk, *kt = a.k + t * a.k_stride + (size_t)kh * dk;
        float nq = 0.0f, nk = 0.0f;
        for (int i = threadIdx.x; i < dk; i += COLS) {
            float u = qt[i], v = kt[i];
            qs[i] = u, ks[i] = v;
            nq += u * u, nk += v * v;
        }
        float sq = a.q_scale, sk = 1.0f;
        if (a.l2norm) {
            nq = ck_block_sum(nq, red);
            nk = ck_block_sum(nk, red);
            sq *= 1.0f / sqrtf(nq + 1e-6f);
            sk = 1.0f / sqrtf(nk + 1e-6f);
        }
        __syncthreads();
        float decay = expf(a.g[t * nv + h]), beta = a.beta[t * nv + h];
        if (j < dv) {
            float mem = 0.0f;
            for (int i = 0; i < dk; i++) mem += S[(size_t)i * dv] * decay * (ks[i] * sk);
            float d = (a.v[t * a.v_stride + (size_t)h * dv + j] - mem) * beta, o = 0.0f;
            for (int i = 0; i < dk; i++) {
                float s = S[(size_t)i * dv] * decay + (ks[i] * sk) * d;
                S[(size_t)i * dv] = s;
                o += s * (qs[i] * sq);
            }
            a.out[(t * nv + h) * dv + j] = o;
        }
        __syncthreads(); /* qs, ks are rewritten for the next token */
    }
}

void ck_cuda_gated_delta(ck_backend *b, const ck_gdn_args *a) {
    if (b->failed || a->T == 0) return;
    if (a->k_head_dim == 0 || a->k_head_dim > 1024 || a->v_head_dim == 0 || a->n_k_heads == 0 ||
        a->n_v_heads % a->n_k_heads || a->n_v_heads > 65535) {
        ck_backend_fail(b, "gated_delta: heads %zu/%zu of %zu/%zu dims are not supported by the CUDA kernel",
                        a->n_k_heads, a->n_v_heads, a->k_head_dim, a->v_head_dim);
        return;
    }
    dim3 grid((unsigned)a->n_v_heads, (unsigned)((a->v_head_dim + COLS - 1) / COLS));
    size_t smem = (2 * a->k_head_dim + 32) * sizeof(float);
    ck_gdn_args ga = *a;
    ck_cuda_run(b, "gated_delta", [=](cudaStream_t st) {
        gated_delta_kernel<<<grid, COLS, smem, st>>>(ga);
        ck_cuda_launched(b, "gated_delta");
    }, a->q, a->k, a->v, a->q_stride, a->k_stride, a->v_stride, a->g, a->beta, a->state, a->out, a->T, a->n_k_heads, a->n_v_heads, a->k_head_dim, a->v_head_dim, a->l2norm, a->q_scale, smem);
}
