/* deltanet.cu — the recurrent pieces of Gated DeltaNet layers: the gates, the causal depthwise conv1d with
 * its carried state, the gated delta rule (see ck_gdn_args in backend.h), and a decode row's chain of the
 * four as one kernel.
 * conv1d: one thread per (channel, chunk of CONV_ROWS rows) walks its rows with the last K-1 inputs in
 * registers (K <= 16); the first chunk's thread also moves the carried state on.
 * gated delta: a column j of the state S[:, j] evolves on its own given the normalized q and k, so each
 * warp owns one column, held in registers (lane: rows lane, lane + 32, ...; head dims <= 1024), and walks
 * the tokens in order: per token the norms of q and k, S^T k and S^T q are warp sums, so a token costs a
 * few shuffles instead of a pass over the column in memory. Over many tokens a first launch normalizes q
 * and k once per (token, key head) instead of once per column, and the columns then take one round of
 * shuffles a token (gated_delta_kernel). One block per (value head, GD_COLS columns)
 * moves its columns in and out through shared memory, whole 32-byte rows at a time.
 * The decode chain (CK_FUSE_GDN, see ck_gdn_chain): gates, conv, delta rule and gated norm of one row in
 * the delta rule's blocks, with the arithmetic of the separate kernels: each block computes its value
 * head's gates, the conv of the q and k channels of its key head and of its own v channels, then its
 * columns as above; what several blocks read (the q/k conv state, the gates' inputs in place, the head's
 * output row for the norm) is written by the last of them to finish (a count per head, as in argmax.cu).
 * References: ck_conv1d_channel_ref and ck_gated_delta_head_ref in cpu/ref.c. */
#include "backend/cuda/cuda_internal.h"

#define MAX_K 16
#define CONV_ROWS 16 /* conv1d: rows per thread (> MAX_K - 1, so only the first chunk reads the state) */
#define GD_COLS 8 /* state columns per block of the gated delta rule, a warp each */

/* The gates of one value: log decay g = -exp(A_log) * softplus(a + dt_bias), write strength sigmoid(b). */
static __device__ __forceinline__ float gdn_decay(float a, float dt_bias, float A_log) {
    float z = a + dt_bias;
    float sp = z > 20.0f ? z : log1pf(expf(z));
    return -expf(A_log) * sp;
}
static __device__ __forceinline__ float gdn_beta(float b) { return ck_sigmoid(b); }

static __global__ void gdn_gates_kernel(float *g, float *beta, const float *a, const float *bl, const float *A_log,
                                        const float *dt_bias, size_t T, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < T * n; i += (size_t)gridDim.x * blockDim.x) {
        size_t h = i % n;
        float bv = bl[i], gv = gdn_decay(a[i], dt_bias[h], A_log[h]);
        g[i] = gv;
        beta[i] = gdn_beta(bv);
    }
}

static void gates_launch(ck_backend *b, float *g, float *beta, const float *a, const float *bl, const float *A_log,
                         const float *dt_bias, size_t T, size_t n) {
    ck_cuda_run(b, "gdn_gates", [=](cudaStream_t st) {
        gdn_gates_kernel<<<ck_cuda_blocks(T * n, 256), 256, 0, st>>>(g, beta, a, bl, A_log, dt_bias, T, n);
        ck_cuda_launched(b, "gdn_gates");
    }, g, beta, a, bl, A_log, dt_bias, T, n);
}

void ck_cuda_gdn_gates(ck_backend *b, float *g, float *beta, const float *a, const float *bl, const float *A_log,
                       const float *dt_bias, size_t T, size_t n) {
    if (b->failed || T == 0 || n == 0) return;
    ck_cuda *c = ck_cu(b);
    if (T == 1 && (c->fuse & CK_FUSE_GDN) && ck_cuda_batch_start(b, ck_cuda_gdn_emit)) { /* a chain begins */
        ck_gdn_chain *ch = &c->gdn;
        memset(ch, 0, sizeof *ch);
        ch->stage = 1, ch->g = g, ch->beta = beta, ch->a = a, ch->bl = bl, ch->A_log = A_log, ch->dt_bias = dt_bias;
        ch->n = n;
        return;
    }
    gates_launch(b, g, beta, a, bl, A_log, dt_bias, T, n);
}

/* One channel of the conv over one row (T = 1 of conv1d_kernel, the same sums): its K - 1 carried inputs
 * state[j * C] into win (loops unrolled to MAX_K, so win stays in registers and the loads go together);
 * the output from its K weights, win and the new input x; the carried inputs moved on by one row. */
static __device__ __forceinline__ void conv_window(float *win, const float *state, size_t C, int K) {
#pragma unroll
    for (int j = 0; j < MAX_K - 1; j++) win[j] = j < K - 1 ? state[j * C] : 0.0f;
}
static __device__ __forceinline__ float conv_out(const float *win, const float *w, int K, float x, int silu) {
    float acc = 0.0f;
#pragma unroll
    for (int j = 0; j < MAX_K; j++)
        if (j < K) acc += w[j] * (j < K - 1 ? win[j] : x);
    return silu ? ck_silu(acc) : acc;
}
static __device__ __forceinline__ void conv_move(float *state, const float *win, size_t C, int K, float x) {
#pragma unroll
    for (int j = 0; j < MAX_K - 1; j++)
        if (j < K - 1) state[j * C] = j + 1 < K - 1 ? win[j + 1] : x;
}

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
        y[t * C + c] = silu ? ck_silu(acc) : acc;
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

static int gdn_conv(ck_backend *b, float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                    size_t K, int silu);

static void conv_launch(ck_backend *b, float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                        size_t K, int silu) {
    ck_cuda_run(b, "conv1d_causal", [=](cudaStream_t st) {
        dim3 grid((unsigned)((C + 127) / 128), (unsigned)((T + CONV_ROWS - 1) / CONV_ROWS));
        conv1d_kernel<<<grid, 128, 0, st>>>(y, x, state, w, T, C, (int)K, silu);
        ck_cuda_launched(b, "conv1d_causal");
    }, y, x, state, w, T, C, (int)K, silu);
}

void ck_cuda_conv1d_causal(ck_backend *b, float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                           size_t K, int silu) {
    if (b->failed || T == 0 || C == 0) return;
    if (K == 0 || K > MAX_K) {
        ck_backend_fail(b, "conv1d_causal: kernel size %zu is not supported (1..%d)", K, MAX_K);
        return;
    }
    if (!gdn_conv(b, y, x, state, w, T, C, K, silu)) conv_launch(b, y, x, state, w, T, C, K, silu);
}

/* A block's nc <= GD_COLS state columns (rows of dv floats from S) into shared memory sm [GD_COLS][dk], and
 * back: whole 32-byte row pieces at a time. */
static __device__ __forceinline__ void cols_load(float *sm, const float *S, int dk, int dv, int nc) {
    for (int x = threadIdx.x; x < dk * GD_COLS; x += GD_COLS * 32) {
        int i = x / GD_COLS, c = x % GD_COLS;
        if (c < nc) sm[c * dk + i] = S[(size_t)i * dv + c];
    }
}
static __device__ __forceinline__ void cols_store(float *S, const float *sm, int dk, int dv, int nc) {
    for (int x = threadIdx.x; x < dk * GD_COLS; x += GD_COLS * 32) {
        int i = x / GD_COLS, c = x % GD_COLS;
        if (c < nc) S[(size_t)i * dv + c] = sm[c * dk + i];
    }
}

/* Warp w's column between shared memory sm [GD_COLS][dk] and its lanes' registers s (rows lane, lane + 32,
 * ...); a warp without a column (w >= nc) holds zeros and stores nothing. */
template <int EPL> static __device__ __forceinline__ void col_get(float *s, const float *sm, int w, int nc, int dk) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        int i = lane + 32 * e;
        s[e] = i < dk && w < nc ? sm[w * dk + i] : 0.0f;
    }
}
template <int EPL> static __device__ __forceinline__ void col_put(float *sm, const float *s, int w, int nc, int dk) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        int i = lane + 32 * e;
        if (i < dk && w < nc) sm[w * dk + i] = s[e];
    }
}

/* The delta rule's arithmetic per state element, rounded explicitly (the compiler contracts a * b + c * d
 * either way round), so that kernels walking the tokens differently round every step alike: the sums of
 * squares of q and k; the normalized values q sq and k sk (kn, qn below); S^T k's terms, the update
 * s decay + kn d and S^T q's terms; and the norms' scales from the warp sums of the squares. */
static __device__ __forceinline__ float gd_sq(float acc, float x) { return __fmaf_rn(x, x, acc); }
static __device__ __forceinline__ float gd_mem(float acc, float s, float decay, float kn) {
    return __fmaf_rn(__fmul_rn(s, decay), kn, acc);
}
static __device__ __forceinline__ float gd_update(float s, float decay, float kn, float d) {
    return __fmaf_rn(s, decay, __fmul_rn(kn, d));
}
static __device__ __forceinline__ float gd_out(float acc, float s, float qn) { return __fmaf_rn(s, qn, acc); }
static __device__ __forceinline__ void gd_scales(float nq, float nk, const ck_gdn_args &a, float *sq, float *sk) {
    *sq = a.q_scale, *sk = 1.0f;
    if (a.l2norm) {
        *sq = __fmul_rn(*sq, __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(nq, 1e-6f))));
        *sk = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(nk, 1e-6f)));
    }
}

/* One token's step of a column held by a warp (state s, the q and k values qv, kv of the lanes' rows, the
 * column's value v, the token's decay and write strength): the norms of q and k, S^T k, the update of s and
 * S^T q as warp sums; every lane gets the output. */
template <int EPL>
static __device__ __forceinline__ float gd_token(float *s, const float *qv, const float *kv, float v, float decay,
                                                 float beta, const ck_gdn_args &a) {
    float nq = 0.0f, nk = 0.0f, sq, sk;
#pragma unroll
    for (int e = 0; e < EPL; e++) nq = gd_sq(nq, qv[e]), nk = gd_sq(nk, kv[e]);
    gd_scales(ck_warp_sum(nq), ck_warp_sum(nk), a, &sq, &sk);
    float mem = 0.0f, o = 0.0f;
#pragma unroll
    for (int e = 0; e < EPL; e++) mem = gd_mem(mem, s[e], decay, __fmul_rn(kv[e], sk));
    mem = ck_warp_sum(mem);
    float d = __fmul_rn(__fsub_rn(v, mem), beta);
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        s[e] = gd_update(s[e], decay, __fmul_rn(kv[e], sk), d);
        o = gd_out(o, s[e], __fmul_rn(qv[e], sq));
    }
    return ck_warp_sum(o);
}

/* The delta rule over T tokens, in two launches. First gd_prep_kernel, a warp per (token, key head) and
 * one per (token, value head): the normalized q and k of every token and key head (the norms once, not
 * once per state column: gd_token's sums, its lanes' rows, its order) into qn and kn [T, n_k_heads, dk],
 * and the decay exp(g) into dc [T, n_v_heads]. */
static __global__ void gd_prep_kernel(ck_gdn_args a, float *qn, float *kn, float *dc) {
    int lane = threadIdx.x & 31, nk = (int)a.n_k_heads, nv = (int)a.n_v_heads, dk = (int)a.k_head_dim;
    size_t T = a.T, n = T * nk + T, step = (size_t)gridDim.x * blockDim.x / 32;
    for (size_t wi = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; wi < n; wi += step) {
        if (wi < T * nk) {
            size_t t = wi / nk, kh = wi % nk;
            const float *qt = a.q + t * a.q_stride + kh * dk, *kt = a.k + t * a.k_stride + kh * dk;
            float nq = 0.0f, nkk = 0.0f, sq, sk;
            for (int i = lane; i < dk; i += 32) nq = gd_sq(nq, qt[i]), nkk = gd_sq(nkk, kt[i]);
            gd_scales(ck_warp_sum(nq), ck_warp_sum(nkk), a, &sq, &sk);
            float *qo = qn + wi * dk, *ko = kn + wi * dk;
            for (int i = lane; i < dk; i += 32) qo[i] = __fmul_rn(qt[i], sq), ko[i] = __fmul_rn(kt[i], sk);
        } else { /* a warp per token for the decays */
            size_t t = wi - T * nk;
            for (int h = lane; h < nv; h += 32) dc[t * nv + h] = expf(a.g[t * nv + h]);
        }
    }
}

/* Two warp sums at once, each in ck_warp_sum's order, their shuffles interleaved so that the two chains'
 * latencies overlap. */
static __device__ __forceinline__ void warp_sum2(float &a, float &b) {
    for (int o = 16; o > 0; o >>= 1) {
        float x = __shfl_xor_sync(0xffffffffu, a, o), y = __shfl_xor_sync(0xffffffffu, b, o);
        a += x, b += y;
    }
}

/* A token's inputs as a warp of the delta rule holds them: the normalized q and k values of its lanes'
 * rows, its column's v, the decay and the write strength (zeros past the last token). */
template <int EPL> struct gd_in {
    float q[EPL], k[EPL], v, dc, b;
};

/* Then the columns: EPL state elements per lane (k_head_dim <= 32 * EPL), warp w of the block owns column
 * j = c0 + w. gd_token's arithmetic token for token (the same values as the fused decode kernel's, whether
 * tokens come one a call or many), reordered across tokens so that a token costs one round of warp sums:
 * the output of token t and S^T k of token t + 1 go through one interleaved butterfly after token t's
 * update, while token t + 3's inputs load. */
template <int EPL>
static __global__ void __launch_bounds__(GD_COLS * 32) gated_delta_kernel(ck_gdn_args a, const float *qn,
                                                                          const float *kn, const float *dc) {
    extern __shared__ float sm[]; /* the block's columns, column-major: [GD_COLS][dk] */
    int dk = (int)a.k_head_dim, dv = (int)a.v_head_dim, nv = (int)a.n_v_heads, nk = (int)a.n_k_heads;
    int h = blockIdx.x, c0 = blockIdx.y * GD_COLS, lane = threadIdx.x & 31, w = threadIdx.x >> 5, j = c0 + w;
    int kh = h / (nv / nk), nc = dv - c0 < GD_COLS ? dv - c0 : GD_COLS;
    float *S = a.state + (size_t)h * dk * dv + c0;
    cols_load(sm, S, dk, dv, nc);
    __syncthreads();
    float s[EPL];
    col_get<EPL>(s, sm, w, nc, dk);
    auto load = [&](gd_in<EPL> &x, size_t t) {
        int in = t < a.T;
        const float *qt = qn + (t * nk + kh) * dk, *kt = kn + (t * nk + kh) * dk;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            int i = lane + 32 * e;
            x.q[e] = in && i < dk ? qt[i] : 0.0f, x.k[e] = in && i < dk ? kt[i] : 0.0f;
        }
        x.v = in ? a.v[t * a.v_stride + (size_t)h * dv + j] : 0.0f;
        x.dc = in ? dc[t * nv + h] : 0.0f, x.b = in ? a.beta[t * nv + h] : 0.0f;
    };
    if (w < nc) {
        gd_in<EPL> c, n1, n2; /* tokens t, t + 1 and t + 2 */
        load(c, 0), load(n1, 1), load(n2, 2);
        float mem = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; e++) mem = gd_mem(mem, s[e], c.dc, c.k[e]);
        mem = ck_warp_sum(mem);
        for (size_t t = 0; t < a.T; t++) {
            float d = __fmul_rn(__fsub_rn(c.v, mem), c.b), o = 0.0f, m = 0.0f;
#pragma unroll
            for (int e = 0; e < EPL; e++) {
                s[e] = gd_update(s[e], c.dc, c.k[e], d);
                o = gd_out(o, s[e], c.q[e]);
            }
#pragma unroll
            for (int e = 0; e < EPL; e++) m = gd_mem(m, s[e], n1.dc, n1.k[e]);
            warp_sum2(o, m);
            if (lane == 0) a.out[(t * nv + h) * dv + j] = o;
            c = n1, mem = m;
            n1 = n2, load(n2, t + 3);
        }
    }
    col_put<EPL>(sm, s, w, nc, dk);
    __syncthreads();
    cols_store(S, sm, dk, dv, nc);
}

/* ---- the decode chain ---- */

/* Floats of the fused kernel's shared memory: the columns, q, k, v; the output row, weight and gate for the
 * norm (at most 33 KB with the head dims the chain takes: dk <= 512, dv <= 1024). */
#define FUSED_SMEM(dk, dv) ((GD_COLS + 2) * (dk) + GD_COLS + 3 * (dv))

/* The chain as the fused kernel reads it: ch with the counts (nv per value head, then nk per key head). */
typedef struct gdn_fused_args {
    ck_gdn_chain ch;
    int norm;
    unsigned *count;
} gdn_fused_args;

/* The delta rule's step for one row, with the row's inputs made in the block: grid (value head h,
 * GD_COLS columns from c0), warp w on column c0 + w. Shared memory: the columns [GD_COLS][dk], then the
 * conv outputs q [dk], k [dk] (key head kh) and v [GD_COLS] (the block's columns), then the norm's
 * staging (FUSED_SMEM). */
template <int EPL> static __global__ void __launch_bounds__(GD_COLS * 32) gdn_fused_kernel(gdn_fused_args f) {
    extern __shared__ float sm[];
    __shared__ int last[2];
    __shared__ float inv_sh;
    const ck_gdn_chain &ch = f.ch;
    const ck_gdn_args &a = ch.d;
    int dk = (int)a.k_head_dim, dv = (int)a.v_head_dim, nv = (int)a.n_v_heads, nk = (int)a.n_k_heads, K = (int)ch.K;
    int h = blockIdx.x, c0 = blockIdx.y * GD_COLS, lane = threadIdx.x & 31, w = threadIdx.x >> 5, j = c0 + w;
    int grp = nv / nk, kh = h / grp, nc = dv - c0 < GD_COLS ? dv - c0 : GD_COLS;
    size_t C = ch.C, kd = (size_t)nk * dk;
    float *S = a.state + (size_t)h * dk * dv + c0, *qs = sm + GD_COLS * dk, *ks = qs + dk, *vs = ks + dk;
    cols_load(sm, S, dk, dv, nc);
    /* the conv of the channels this block reads: q and k of its key head, v of its columns */
    for (int x = threadIdx.x; x < 2 * dk + nc; x += GD_COLS * 32) {
        size_t c = x < 2 * dk ? (size_t)(x / dk) * kd + (size_t)kh * dk + x % dk : 2 * kd + (size_t)h * dv + c0 + (x - 2 * dk);
        float win[MAX_K], xc = ch.cx[c];
        conv_window(win, ch.cstate + c, C, K);
        float y = conv_out(win, ch.cw + c * K, K, xc, ch.silu);
        (x < dk ? qs[x] : x < 2 * dk ? ks[x - dk] : vs[x - 2 * dk]) = y;
        if (x >= 2 * dk) { /* a v channel is this block's alone: its output and carried inputs now */
            ch.cy[c] = y;
            conv_move(ch.cstate + c, win, C, K, xc);
        }
    }
    float lg = gdn_decay(ch.a[h], ch.dt_bias[h], ch.A_log[h]), decay = expf(lg), beta = gdn_beta(ch.bl[h]);
    __syncthreads();
    float s[EPL];
    col_get<EPL>(s, sm, w, nc, dk);
    if (w < nc) {
        float qv[EPL], kv[EPL];
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            int i = lane + 32 * e;
            qv[e] = i < dk ? qs[i] : 0.0f, kv[e] = i < dk ? ks[i] : 0.0f;
        }
        float o = gd_token<EPL>(s, qv, kv, vs[w], decay, beta, a);
        if (lane == 0) {
            a.out[(size_t)h * dv + j] = o;
            __threadfence(); /* visible to the head's last block (below) before this block is counted */
        }
        col_put<EPL>(sm, s, w, nc, dk);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        last[0] = atomicAdd(&f.count[h], 1u) == gridDim.y - 1;
        last[1] = grp == 1 ? last[0] : atomicAdd(&f.count[nv + kh], 1u) == gridDim.y * grp - 1;
        if (last[0]) f.count[h] = 0;
        if (last[1] && grp > 1) f.count[nv + kh] = 0;
    }
    __syncthreads();
    if (last[0] || last[1]) __threadfence(); /* (the other blocks' reads and writes before their counts) */
    if (last[0]) { /* the last block of the value head: the gates (in place of their inputs, which the head's
                      blocks read), then the gated norm of the head's output row (rmsnorm_gated_kernel's
                      arithmetic), before this block's own state stores, which nothing here waits for */
        if (threadIdx.x == 0) ch.g[h] = lg, ch.beta[h] = beta;
        if (f.norm) {
            const float *orow = a.out + (size_t)h * dv, *zr = ch.nz + (size_t)h * dv;
            float *yr = ch.ny + (size_t)h * dv, *rs = vs + GD_COLS, *ws = rs + dv, *zs = ws + dv;
            for (int i = threadIdx.x; i < dv; i += GD_COLS * 32) /* row, weight and gate in one round trip */
                rs[i] = __ldcg(orow + i), ws[i] = ch.nw[i], zs[i] = ck_silu(zr[i]);
            __syncthreads();
            if (w == 0) {
                float ss = ck_norm_sumsq([&](int d) { return rs[d]; }, dv);
                if (lane == 0) inv_sh = 1.0f / sqrtf(ss / (float)dv + ch.neps);
            }
            __syncthreads();
            float inv = inv_sh;
            for (int i = threadIdx.x; i < dv; i += GD_COLS * 32) yr[i] = rs[i] * inv * ws[i] * zs[i];
        }
    }
    cols_store(S, sm, dk, dv, nc);
    if (last[1]) /* every block of the key head has read its q/k carried inputs */
        for (int x = threadIdx.x; x < 2 * dk; x += GD_COLS * 32) {
            size_t c = (size_t)(x / dk) * kd + (size_t)kh * dk + x % dk;
            float win[MAX_K];
            conv_window(win, ch.cstate + c, C, K);
            ch.cy[c] = x < dk ? qs[x] : ks[x - dk];
            conv_move(ch.cstate + c, win, C, K, ch.cx[c]);
        }
}

static void fused_launch(ck_backend *b, const ck_gdn_chain *ch) {
    ck_cuda *c = ck_cu(b);
    gdn_fused_args f;
    memset(&f, 0, sizeof f);
    memcpy(&f.ch, ch, sizeof *ch); /* (with its zeroed padding: the bytes are the queue's key) */
    f.norm = ch->stage == 4, f.count = c->counter + 1;
    size_t epl = (ch->d.k_head_dim + 31) / 32;
    void (*fn)(gdn_fused_args) = epl <= 1 ? gdn_fused_kernel<1> : epl <= 2 ? gdn_fused_kernel<2>
                               : epl <= 4 ? gdn_fused_kernel<4> : epl <= 8 ? gdn_fused_kernel<8>
                               : gdn_fused_kernel<16>; /* (dk <= 512) */
    dim3 grid((unsigned)ch->d.n_v_heads, (unsigned)((ch->d.v_head_dim + GD_COLS - 1) / GD_COLS));
    size_t smem = FUSED_SMEM(ch->d.k_head_dim, ch->d.v_head_dim) * sizeof(float);
    ck_cuda_run_struct(b, "gdn_fused", [=](cudaStream_t st) {
        fn<<<grid, GD_COLS * 32, smem, st>>>(f);
        ck_cuda_launched(b, "gdn_fused");
    }, f);
}

void ck_cuda_gdn_emit(ck_backend *b, const ck_batch_part *, int, const uint64_t *) {
    ck_cuda *c = ck_cu(b);
    ck_gdn_chain ch;
    memcpy(&ch, &c->gdn, sizeof ch);
    memset(&c->gdn, 0, sizeof c->gdn);
    if (ch.stage >= 3) {
        fused_launch(b, &ch);
        return;
    }
    gates_launch(b, ch.g, ch.beta, ch.a, ch.bl, ch.A_log, ch.dt_bias, 1, ch.n);
    if (ch.stage == 2) conv_launch(b, ch.cy, ch.cx, ch.cstate, ch.cw, 1, ch.C, ch.K, ch.silu);
}

/* The pending chain at stage st, or NULL. */
static ck_gdn_chain *chain_at(ck_backend *b, int st) {
    ck_cuda *c = ck_cu(b);
    return c->batch.emit == ck_cuda_gdn_emit && c->gdn.stage == st ? &c->gdn : NULL;
}

/* 1 when [p, +bytes) touches none of the n ranges r[i] (pointer, bytes). */
typedef struct { const void *p; size_t bytes; } range;
static int apart(const void *p, size_t bytes, const range *r, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ck_cuda_overlap(p, bytes, r[i].p, r[i].bytes)) return 0;
    return 1;
}

/* conv1d of one row after the gates: the conv writes y and its state, touching none of the gates' vectors,
 * and reads nothing the gates write. */
static int gdn_conv(ck_backend *b, float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                    size_t K, int silu) {
    ck_gdn_chain *ch = chain_at(b, 1);
    if (!ch || T != 1) return 0;
    size_t nb = ch->n * sizeof(float), cb = C * sizeof(float), sb = (K - 1) * cb;
    range gates[] = {{ch->g, nb}, {ch->beta, nb}, {ch->a, nb}, {ch->bl, nb}, {ch->A_log, nb}, {ch->dt_bias, nb}};
    range ins[] = {{x, cb}, {w, cb * K}, {state, sb}};
    if (!apart(y, cb, gates, 6) || !apart(state, sb, gates, 6) || !apart(x, cb, gates, 2) ||
        !apart(w, cb * K, gates, 2) || !apart(y, cb, ins, 3) || !apart(state, sb, ins, 2))
        return 0;
    ch->stage = 2, ch->cy = y, ch->cx = x, ch->cstate = state, ch->cw = w, ch->C = C, ch->K = K, ch->silu = silu;
    return 1;
}

/* The delta rule of one row after them: q, k and v are the conv's output row in that order (the model's
 * layout, so that every channel's output has a block to write it), the gates are the chain's, and the
 * state and output touch nothing else of the chain. */
static int gdn_delta(ck_backend *b, const ck_gdn_args *a) {
    ck_gdn_chain *ch = chain_at(b, 2);
    size_t kd = a->n_k_heads * a->k_head_dim, vd = a->n_v_heads * a->v_head_dim;
    if (!ch || a->T != 1 || a->q != ch->cy || a->k != ch->cy + kd || a->v != ch->cy + 2 * kd || ch->C != 2 * kd + vd ||
        a->g != ch->g || a->beta != ch->beta || ch->n != a->n_v_heads || a->k_head_dim > 512 || a->v_head_dim > 1024 ||
        a->n_v_heads + a->n_k_heads > CK_ATTN_PREP_HEADS)
        return 0;
    size_t nb = ch->n * sizeof(float), cb = ch->C * sizeof(float), sb = vd * a->k_head_dim * sizeof(float);
    range all[] = {{ch->g, nb}, {ch->beta, nb}, {ch->a, nb}, {ch->bl, nb}, {ch->A_log, nb}, {ch->dt_bias, nb},
                   {ch->cy, cb}, {ch->cx, cb}, {ch->cw, cb * ch->K}, {ch->cstate, (ch->K - 1) * cb}};
    if (!apart(a->state, sb, all, 10) || !apart(a->out, vd * sizeof(float), all, 10) ||
        ck_cuda_overlap(a->state, sb, a->out, vd * sizeof(float)))
        return 0;
    ch->stage = 3;
    memcpy(&ch->d, a, sizeof *a);
    return 1;
}

/* The gated norm of the delta rule's output after them, in place or into rows apart from everything the
 * chain touches; z and the weight apart from what it writes. */
int ck_cuda_gdn_norm(ck_backend *b, float *y, const float *x, const float *z, const float *w, size_t rows, size_t n,
                     float eps) {
    ck_gdn_chain *ch = chain_at(b, 3);
    if (!ch || x != ch->d.out || rows != ch->d.n_v_heads || n != ch->d.v_head_dim) return 0;
    size_t nb = ch->n * sizeof(float), cb = ch->C * sizeof(float), ob = rows * n * sizeof(float);
    size_t sb = ch->d.n_v_heads * ch->d.k_head_dim * ch->d.v_head_dim * sizeof(float);
    range outs[] = {{ch->g, nb}, {ch->beta, nb}, {ch->cy, cb}, {ch->cstate, (ch->K - 1) * cb}, {ch->d.state, sb},
                    {ch->d.out, ob}};
    range ins[] = {{ch->a, nb}, {ch->bl, nb}, {ch->A_log, nb}, {ch->dt_bias, nb}, {ch->cx, cb}, {ch->cw, cb * ch->K}};
    if (!apart(z, ob, outs, 6) || !apart(w, n * sizeof(float), outs, 6) ||
        (y != x && (!apart(y, ob, outs, 6) || !apart(y, ob, ins, 6) || ck_cuda_overlap(y, ob, z, ob) ||
                    ck_cuda_overlap(y, ob, w, n * sizeof(float)))))
        return 0;
    ch->stage = 4, ch->ny = y, ch->nz = z, ch->nw = w, ch->neps = eps;
    return 1;
}

void ck_cuda_gated_delta(ck_backend *b, const ck_gdn_args *a) {
    if (b->failed || a->T == 0) return;
    if (a->k_head_dim == 0 || a->k_head_dim > 1024 || a->v_head_dim == 0 || a->n_k_heads == 0 ||
        a->n_v_heads % a->n_k_heads || a->n_v_heads > 65535) {
        ck_backend_fail(b, "gated_delta: heads %zu/%zu of %zu/%zu dims are not supported by the CUDA kernel",
                        a->n_k_heads, a->n_v_heads, a->k_head_dim, a->v_head_dim);
        return;
    }
    if (gdn_delta(b, a)) return;
    ck_cuda *c = ck_cu(b);
    size_t nqk = a->T * a->n_k_heads * a->k_head_dim, bytes = (2 * nqk + a->T * a->n_v_heads) * sizeof(float);
    float *qn = (float *)ck_cuda_scratch(b, &c->gd, &c->gd_bytes, bytes); /* grown as T grows */
    if (!qn) return;
    float *kn = qn + nqk, *dc = kn + nqk;
    size_t epl = (a->k_head_dim + 31) / 32;
    void (*fn)(ck_gdn_args, const float *, const float *, const float *) =
        epl <= 1 ? gated_delta_kernel<1> : epl <= 2 ? gated_delta_kernel<2> : epl <= 4 ? gated_delta_kernel<4>
        : epl <= 8 ? gated_delta_kernel<8> : epl <= 16 ? gated_delta_kernel<16> : gated_delta_kernel<32>;
    dim3 grid((unsigned)a->n_v_heads, (unsigned)((a->v_head_dim + GD_COLS - 1) / GD_COLS));
    size_t smem = (size_t)GD_COLS * a->k_head_dim * sizeof(float); /* <= 32 KB */
    unsigned prep = ck_cuda_blocks(a->T * (a->n_k_heads + 1) * 32, 256);
    ck_gdn_args ga = *a;
    ck_cuda_run(b, "gated_delta", [=](cudaStream_t st) {
        gd_prep_kernel<<<prep, 256, 0, st>>>(ga, qn, kn, dc);
        fn<<<grid, GD_COLS * 32, smem, st>>>(ga, qn, kn, dc);
        ck_cuda_launched(b, "gated_delta");
    }, a->q, a->k, a->v, a->q_stride, a->k_stride, a->v_stride, a->g, a->beta, a->state, a->out, a->T, a->n_k_heads, a->n_v_heads, a->k_head_dim, a->v_head_dim, a->l2norm, a->q_scale, smem, qn, prep);
}
