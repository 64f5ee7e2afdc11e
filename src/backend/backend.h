/* backend.h — the operations a forward pass is written against. A backend owns its activation memory
 * (alloc/free/upload/download) and implements each op; the model code never touches activation bytes
 * directly, so the same forward pass runs on the CPU now and on a GPU backend through this table.
 * Shapes are row-major; T is the number of token rows processed at once (prefill chunk or 1 in decode).
 * Weights are ck_tensor views prepared once with prepare_weight (a GPU backend uploads them there). */
#ifndef CK_BACKEND_H
#define CK_BACKEND_H

#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ck_backend ck_backend;

typedef enum ck_act { CK_ACT_SILU = 0, CK_ACT_GELU_TANH } ck_act;

/* Arguments of one attention call over a layer's KV cache. */
typedef struct ck_attn_args {
    const float *q;      /* [T, n_heads, head_dim] */
    const float *k_cache; /* [max_ctx, n_kv_heads, head_dim], rows 0 .. pos0+T-1 filled */
    const float *v_cache; /* [max_ctx, n_kv_heads, head_dim] */
    float *out;          /* [T, n_heads, head_dim] */
    size_t T, pos0;      /* row t is at absolute position pos0 + t and sees positions <= its own */
    size_t n_heads, n_kv_heads, head_dim;
    float scale;         /* multiplies q.k */
    size_t window;       /* 0: full causal; else only the last `window` positions (incl. its own) */
    float softcap;       /* 0: none; else scores = softcap * tanh(scores / softcap) */
} ck_attn_args;

/* Arguments of the gated delta rule (Gated DeltaNet's recurrence) over T tokens, per value head h with
 * its key head h / (n_v_heads / n_k_heads) (grouped value heads, repeat_interleave order):
 *   q, k <- l2norm(q), l2norm(k) (when l2norm; x / sqrt(sum x^2 + 1e-6));  q <- q * q_scale
 *   S <- S * exp(g[t, h]);  S <- S + k (beta[t, h] (v - S^T k))^T;  out[t, h] = S^T q
 * with S = state[h] of shape [k_head_dim, v_head_dim]. Rows of q, k, v are `*_stride` floats apart so
 * that they can be read straight out of a fused projection. */
typedef struct ck_gdn_args {
    const float *q, *k;  /* [T, stride]: row t holds [n_k_heads, k_head_dim] at offset 0 */
    const float *v;      /* [T, stride]: row t holds [n_v_heads, v_head_dim] at offset 0 */
    size_t q_stride, k_stride, v_stride;
    const float *g;      /* [T, n_v_heads] log decay (<= 0) */
    const float *beta;   /* [T, n_v_heads] */
    float *state;        /* [n_v_heads, k_head_dim, v_head_dim], updated in place */
    float *out;          /* [T, n_v_heads, v_head_dim] */
    size_t T, n_k_heads, n_v_heads, k_head_dim, v_head_dim;
    int l2norm;          /* normalize q and k first */
    float q_scale;
} ck_gdn_args;

struct ck_backend {
    const char *name;
    void *(*alloc)(ck_backend *b, size_t bytes);   /* zeroed; NULL on failure */
    void (*free)(ck_backend *b, void *p);
    void (*upload)(ck_backend *b, void *dst, const void *src, size_t bytes);
    void (*download)(ck_backend *b, void *dst, const void *src, size_t bytes);
    void (*clear)(ck_backend *b, void *dst, size_t bytes);          /* zeroes backend memory */
    /* Makes a weight usable by the ops (copy to device, repack); the default keeps the view. */
    int (*prepare_weight)(ck_backend *b, ck_tensor *w, char *err, size_t errlen);

    /* y[T, d] = E[ids[t], :] * scale */
    void (*embed)(ck_backend *b, float *y, const ck_tensor *E, const int32_t *ids, size_t T, float scale);
    /* y[T, n_out] = x[T, n_in] . W[n_out, n_in]^T (+ bias[n_out] when bias is non-NULL) */
    void (*matmul)(ck_backend *b, float *y, const float *x, const ck_tensor *W, const float *bias, size_t T);
    /* y[rows, n] = x / rms(x) * (w or 1 + w); y may equal x; w is f32 [n] */
    void (*rmsnorm)(ck_backend *b, float *y, const float *x, const float *w, size_t rows, size_t n, float eps,
                    int one_plus);
    /* Rotate-half RoPE in place on x[T, n_heads, head_dim]: the first rot_dim dims of each head are
     * rotated by the angles whose cos/sin are given as [T, rot_dim/2]. */
    void (*rope)(ck_backend *b, float *x, size_t T, size_t n_heads, size_t head_dim, size_t rot_dim,
                 const float *cos, const float *sin);
    /* cache[pos0 + t, :] = src[t, :] for t < T; rows of `row` floats */
    void (*store_rows)(ck_backend *b, float *cache, const float *src, size_t pos0, size_t T, size_t row);
    void (*attention)(ck_backend *b, const ck_attn_args *a);
    /* out[i] = act(gate[i]) * up[i] for i < n (SwiGLU, GeGLU) */
    void (*glu)(ck_backend *b, float *out, const float *gate, const float *up, size_t n, ck_act act);
    /* dst[i, :] = src[rows[i], :] for i < n; rows is host memory */
    void (*gather_rows)(ck_backend *b, float *dst, const float *src, const int32_t *rows, size_t n, size_t row);
    /* dst[rows[i], :] += w[i] * src[i, :] for i < n; rows and w are host memory */
    void (*scatter_add_rows)(ck_backend *b, float *dst, const float *src, const int32_t *rows, const float *w,
                             size_t n, size_t row);
    /* y[i] = 0 for i < n */
    void (*zero)(ck_backend *b, float *y, size_t n);
    /* y[i] += x[i] for i < n */
    void (*add)(ck_backend *b, float *y, const float *x, size_t n);

    /* dst[r * dst_stride + i] = src[r * src_stride + i] for r < rows, i < n (strided row copy: split a
     * fused projection, de-interleave heads). dst and src do not overlap. */
    void (*copy_rows)(ck_backend *b, float *dst, size_t dst_stride, const float *src, size_t src_stride, size_t rows,
                      size_t n);
    /* y[r * n + i] *= sigmoid(g[r * g_stride + i]) for r < rows, i < n (output gates) */
    void (*sigmoid_mul)(ck_backend *b, float *y, const float *g, size_t g_stride, size_t rows, size_t n);
    /* Causal depthwise conv1d over time with a carried state, optionally followed by SiLU:
     *   y[t, c] = act(sum_j w[c, j] * xx[t + j, c]), j < K, where xx = [state; x] ([K-1 + T, C]);
     * then state <- the last K-1 rows of xx. x [T, C], y [T, C] (y != x), state [K-1, C], w f32 [C, K]. */
    void (*conv1d_causal)(ck_backend *b, float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                          size_t K, int silu);
    /* Gated DeltaNet gates per token and value head:
     *   g[t, h] = -exp(A_log[h]) * softplus(a[t, h] + dt_bias[h]);  beta[t, h] = sigmoid(bl[t, h])
     * a, bl, g, beta [T, n]; A_log, dt_bias f32 [n]. g may equal a and beta may equal bl. */
    void (*gdn_gates)(ck_backend *b, float *g, float *beta, const float *a, const float *bl, const float *A_log,
                      const float *dt_bias, size_t T, size_t n);
    void (*gated_delta)(ck_backend *b, const ck_gdn_args *a);
    /* Gated RMSNorm: y[r, :] = x[r, :] / rms(x[r, :]) * w * silu(z[r, :]); x, z, y [rows, n], w f32 [n];
     * y may equal x. */
    void (*rmsnorm_gated)(ck_backend *b, float *y, const float *x, const float *z, const float *w, size_t rows,
                          size_t n, float eps);
};

/* The CPU backend (scalar references in cpu/ref.c, threaded with OpenMP). */
ck_backend *ck_backend_cpu(void);
/* Threads the CPU backend uses; n <= 0 keeps the default (OMP_NUM_THREADS, else one per core). */
void ck_backend_cpu_set_threads(int n);

#endif
