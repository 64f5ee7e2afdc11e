/* deltanet.cu — the recurrent pieces of Gated DeltaNet layers: the causal depthwise conv1d with its carried
 * state, and the gated delta rule (see ck_gdn_args in backend.h).
 * conv1d: one thread per (channel, chunk of CONV_ROWS rows) walks its rows with the last K-1 inputs in
 * registers (K <= 16); the first chunk's thread also moves the carried state on.
 * gated delta: a column j of the state S[:, j] evolves on its own given the normalized q and k, so each
 * warp owns one column, held in registers (lane: rows lane, lane + 32, ...; head dims <= 1024), and walks
 * the tokens in order: per token the norms of q and k, S^T k and S^T q are warp sums, so a token costs a
 * few shuffles instead of a pass over the column in memory. One block per (value head, GD_COLS columns)
 * moves its columns in and out through shared memory, whole 32-byte rows at a time.
 * References: ck_conv1d_channel_ref and ck_gated_delta_head_ref in cpu/ref.c. */
#include "backend/cuda/cuda_internal.h"

#define MAX_K 16
#define CONV_ROWS 16 /* conv1d: rows per thread (> MAX_K - 1, so only the first chunk reads the state) */
#define GD_COLS 8 /* state columns per block of the gated delta rule, a warp each */

static __global__ void conv1d_kernel(float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                                     int K, int silu) {
    size_t c = blockIdx.x * (size_t)blockDim.x + threadIdx.x, t0 = (size_t)blockIdx.y * CONV_ROWS;
    if (c >= C) return;
    int S = K - 1;
    float win[MAX_K], wc[MAX_K];
    for (int j = 0; j < K; j++) wc[j] = w[c * K + j];
    for (int j = 0; j < S; j++) { /* xx rows t0 .. t0 + S - 1: the state below row S, x from there */
        size_t r = t0 + j;
        win[j] = r < (size_t)S ? state[r * C + c] : x[(r - S) * C + c];
    }
    size_t t1 = t0 + CONV_ROWS < T ? t0 + CONV_ROWS : T;
    for (size_t t = t0; t < t1; t++) {
        win[S] = x[t * C + c];
        float acc = 0.0f;
        for (int j = 0; j < K; j++) acc += wc[j] * win[j];
        y[t * C + c] = silu ? acc / (1.0f + expf(-acc)) : acc;
        for (int j = 0; j < S; j++) win[j] = win[j + 1];
    }
    if (t0 != 0) return;
    /* the first chunk's thread, the only one that read the state, moves it on: xx rows T .. T + S - 1 */
    float ns[MAX_K];
    for (int j = 0; j < S; j++) {
        size_t r = T + j;
        ns[j] = r < (size_t)S ? state[r * C + c] : x[(r - S) * C + c];
    }
    for (int j = 0; j < S; j++) state[j * C + c] = ns[j];
}

void ck_cuda_conv1d_causal(ck_backend *b, float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                           size_t K, int silu) {
    if (b->failed || T == 0 || C == 0) return;
    if (K == 0 || K > MAX_K) {
        ck_backend_fail(b, "conv1d_causal: kernel size %zu is not supported (1..%d)", K, MAX_K);
        return;
    }
    ck_cuda_run(b, "conv1d_causal", [=](cudaStream_t st) {
        dim3 grid((unsigned)((C + 127) / 128), (unsigned)((T + CONV_ROWS - 1) / CONV_ROWS));
        conv1d_kernel<<<grid, 128, 0, st>>>(y, x, state, w, T, C, (int)K, silu);
        ck_cuda_launched(b, "conv1d_causal");
    }, y, x, state, w, T, C, (int)K, silu);
}

/* EPL: state elements per lane (k_head_dim <= 32 * EPL). Warp w of the block owns column j = c0 + w. */
template <int EPL>
static __global__ void __launch_bounds__(GD_COLS * 32) gated_delta_kernel(ck_gdn_args a) {
    extern __shared__ float sm[]; /* the block's columns, column-major: [GD_COLS][dk] */
    int dk = (int)a.k_head_dim, dv = (int)a.v_head_dim, nv = (int)a.n_v_heads;
    int h = blockIdx.x, c0 = blockIdx.y * GD_COLS, lane = threadIdx.x & 31, w = threadIdx.x >> 5, j = c0 + w;
    int kh = h / (nv / (int)a.n_k_heads), nc = dv - c0 < GD_COLS ? dv - c0 : GD_COLS;
    float *S = a.state + (size_t)h * dk * dv + c0;
    /* the columns in: rows of nc consecutive floats (whole sectors), then each warp takes its own */
    for (int x = threadIdx.x; x < dk * GD_COLS; x += GD_COLS * 32) {
        int i = x / GD_COLS, c = x % GD_COLS;
        if (c < nc) sm[c * dk + i] = S[(size_t)i * dv + c];
    }
    __syncthreads();
    float s[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        int i = lane + 32 * e;
        s[e] = i < dk && w < nc ? sm[w * dk + i] : 0.0f;
    }
    /* token t + 1's inputs are loaded while token t's chain of sums runs */
    float qn[EPL], kn[EPL], vn = 0.0f, gn = 0.0f, bn = 0.0f;
    auto load = [&](size_t t) {
        const float *qt = a.q + t * a.q_stride + (size_t)kh * dk, *kt = a.k + t * a.k_stride + (size_t)kh * dk;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            int i = lane + 32 * e;
            qn[e] = i < dk ? qt[i] : 0.0f, kn[e] = i < dk ? kt[i] : 0.0f;
        }
        vn = a.v[t * a.v_stride + (size_t)h * dv + j], gn = a.g[t * nv + h], bn = a.beta[t * nv + h];
    };
    if (w < nc) load(0);
    for (size_t t = 0; w < nc && t < a.T; t++) {
        float qv[EPL], kv[EPL], nq = 0.0f, nk = 0.0f, v = vn, decay = expf(gn), beta = bn;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            qv[e] = qn[e], kv[e] = kn[e];
            nq += qv[e] * qv[e], nk += kv[e] * kv[e];
        }
        if (t + 1 < a.T) load(t + 1);
        float sq = a.q_scale, sk = 1.0f;
        if (a.l2norm) {
            sq *= 1.0f / sqrtf(ck_warp_sum(nq) + 1e-6f);
            sk = 1.0f / sqrtf(ck_warp_sum(nk) + 1e-6f);
        }
        float mem = 0.0f, o = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; e++) mem += s[e] * decay * (kv[e] * sk);
        mem = ck_warp_sum(mem);
        float d = (v - mem) * beta;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            s[e] = s[e] * decay + (kv[e] * sk) * d;
            o += s[e] * (qv[e] * sq);
        }
        o = ck_warp_sum(o);
        if (lane == 0) a.out[(t * nv + h) * dv + j] = o;
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        int i = lane + 32 * e;
        if (i < dk && w < nc) sm[w * dk + i] = s[e];
    }
    __syncthreads();
    for (int x = threadIdx.x; x < dk * GD_COLS; x += GD_COLS * 32) {
        int i = x / GD_COLS, c = x % GD_COLS;
        if (c < nc) S[(size_t)i * dv + c] = sm[c * dk + i];
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
    size_t epl = (a->k_head_dim + 31) / 32;
    void (*fn)(ck_gdn_args) = epl <= 1 ? gated_delta_kernel<1> : epl <= 2 ? gated_delta_kernel<2>
                            : epl <= 4 ? gated_delta_kernel<4> : epl <= 8 ? gated_delta_kernel<8>
                            : epl <= 16 ? gated_delta_kernel<16> : gated_delta_kernel<32>;
    dim3 grid((unsigned)a->n_v_heads, (unsigned)((a->v_head_dim + GD_COLS - 1) / GD_COLS));
    size_t smem = (size_t)GD_COLS * a->k_head_dim * sizeof(float); /* <= 32 KB */
    ck_gdn_args ga = *a;
    ck_cuda_run(b, "gated_delta", [=](cudaStream_t st) {
        fn<<<grid, GD_COLS * 32, smem, st>>>(ga);
        ck_cuda_launched(b, "gated_delta");
    }, a->q, a->k, a->v, a->q_stride, a->k_stride, a->v_stride, a->g, a->beta, a->state, a->out, a->T, a->n_k_heads, a->n_v_heads, a->k_head_dim, a->v_head_dim, a->l2norm, a->q_scale, smem);
}
