/* backend.h — the operations a forward pass is written against. A backend is an instance (the CPU now, a
 * CUDA device next) created per engine; it owns its activation memory (alloc/free/upload/download/copy),
 * prepares weights for its kernels and releases them, makes row views of fused weights, and implements
 * each op. The model code never touches activation bytes directly, so the same forward pass runs on any
 * backend through this table.
 * Errors: ops return nothing and may run asynchronously; a failing op (or a check_finite that finds a NaN
 * or Inf) records a sticky error in the instance, and sync() reports the first one since the last sync.
 * A forward calls sync() once at its end (per chunk), so no op needs a host round trip.
 * Shapes are row-major; T is the number of token rows processed at once (prefill chunk or 1 in decode).
 * Unless an op says otherwise its outputs do not alias its inputs. */
#ifndef CK_BACKEND_H
#define CK_BACKEND_H

#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ck_backend ck_backend;

typedef enum ck_act { CK_ACT_SILU = 0, CK_ACT_GELU_TANH } ck_act;

/* Bytes of one value of a KV cache of dtype dt (CK_F32 or CK_F16). */
static inline size_t ck_kv_bytes(ck_dtype dt) { return dt == CK_F16 ? 2 : 4; }

/* Arguments of one attention call over a layer's KV cache. */
typedef struct ck_attn_args {
    const float *q;      /* [T, n_heads, head_dim] */
    const void *k_cache; /* [cap, n_kv_heads, head_dim] of kv_dtype, rows 0 .. pos0+T-1 filled */
    const void *v_cache; /* [cap, n_kv_heads, head_dim] of kv_dtype */
    ck_dtype kv_dtype;   /* CK_F32 or CK_F16 (see store_rows) */
    float *out;          /* [T, n_heads, head_dim] */
    const int32_t *pos;  /* [T] backend memory: row t is at position pos[t] and sees cache rows <= pos[t] */
    size_t T;
    size_t n_heads, n_kv_heads, head_dim;
    float scale;         /* multiplies q.k */
    size_t window;       /* 0: full causal; else only the last `window` positions (incl. its own) */
    float softcap;       /* 0: none; else scores = softcap * tanh(scores / softcap) */
    size_t keys_max;     /* no row sees more cache rows than this (known on the host; 0: unknown), so a
                            backend may size its work to the context without reading pos */
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

/* Tags of check_finite for the parts of a forward that are not layers (layers use their index). */
enum { CK_TAG_NONE = -1000, CK_TAG_INPUT = -3, CK_TAG_EMBED = -2, CK_TAG_HEAD = -1 };

struct ck_backend {
    const char *name;
    void *impl;                                    /* instance state of the implementation */
    size_t prefill_rows;                           /* token rows a prefill chunk should hold on this backend
                                                      (0: CK_CHUNK); a GPU wants large GEMMs */
    /* sticky error: the first failure since the last sync (see ck_backend_fail) */
    int failed;
    int bad_tag;                                   /* tag of the first failed check_finite, else CK_TAG_NONE */
    char why[256];

    void (*destroy)(ck_backend *b);                /* releases the instance itself */
    /* Runs fn(arg) in the backend's compute context and returns when it is done: the CPU backend runs
     * every forward of the process on one compute thread, so all of them share one thread team; a GPU
     * backend runs fn in the caller. fn may call exec again (it then runs inline). */
    void (*exec)(ck_backend *b, void (*fn)(void *arg), void *arg);
    /* Waits for queued work. Returns 0, or -1 with the first failure since the last sync in err; *tag (when
     * not NULL) gets the tag of a failed check_finite, else CK_TAG_NONE. Clears the failure. */
    int (*sync)(ck_backend *b, int *tag, char *err, size_t errlen);

    void *(*alloc)(ck_backend *b, size_t bytes);   /* zeroed; NULL on failure */
    void (*free)(ck_backend *b, void *p);
    void (*upload)(ck_backend *b, void *dst, const void *src, size_t bytes);
    void (*download)(ck_backend *b, void *dst, const void *src, size_t bytes);
    void (*copy)(ck_backend *b, void *dst, const void *src, size_t bytes); /* backend to backend memory */
    /* Copies bytes at src, memory of `from` (another instance of the same implementation: the same
     * copy_peer, e.g. another GPU), into dst of this instance, before this instance's later work, without
     * passing through the host. The caller has synced `from` since it last wrote src (a forward ends with
     * sync); this instance never touches from's queue, which another thread may be filling. NULL: no such
     * path (rows between instances then go through host memory). */
    void (*copy_peer)(ck_backend *b, void *dst, ck_backend *from, const void *src, size_t bytes);
    void (*clear)(ck_backend *b, void *dst, size_t bytes);          /* zeroes backend memory */
    /* Makes a weight usable by the ops (copy to device, repack); the CPU keeps the mapped view. Fails for a
     * dtype the backend has no kernels for. A prepared weight is released with release_weight. */
    int (*prepare_weight)(ck_backend *b, ck_tensor *w, char *err, size_t errlen);
    void (*release_weight)(ck_backend *b, ck_tensor *w);
    /* *view = rows [r0, r0 + n) of the prepared 2-D weight w (split a fused qkv or gate_up projection);
     * the view shares w's memory and is never released on its own. */
    int (*weight_rows)(ck_backend *b, ck_tensor *view, const ck_tensor *w, uint64_t r0, uint64_t n, char *err,
                       size_t errlen);
    /* Records a failure (tag: see CK_TAG_*, or a layer index) when x[0..n) holds a NaN or an infinity and no
     * failure is recorded yet. */
    void (*check_finite)(ck_backend *b, const float *x, size_t n, int tag);

    /* y[T, d] = E[ids[t], :] * scale; ids is host memory */
    void (*embed)(ck_backend *b, float *y, const ck_tensor *E, const int32_t *ids, size_t T, float scale);
    /* y[T, n_out] = x[T, n_in] . W[n_out, n_in]^T (+ bias[n_out] when bias is non-NULL). For a
     * block-quantized W (tensor/quant.h) each row of x is first quantized to W's activation format and
     * the dot products are those of quant.h (integer block sums); row t's result depends only on row t. */
    void (*matmul)(ck_backend *b, float *y, const float *x, const ck_tensor *W, const float *bias, size_t T);
    /* Several matmuls of one input: y[i][T, n_out_i] = x[T, n_in] . W[i]^T (+ bias[i] when not NULL) for
     * i < n (n <= CK_MATMUL_MAX), every W[i] with x's n_in; results equal n matmul calls. Optional: NULL
     * when the backend has no fused version (use ck_matmul_n, which falls back to matmul). */
    void (*matmul_n)(ck_backend *b, size_t n, float *const *y, const float *x, const ck_tensor *const *W,
                     const float *const *bias, size_t T);
    /* y[rows, n] = x / rms(x) * (w or 1 + w); y may equal x; w is f32 [n] */
    void (*rmsnorm)(ck_backend *b, float *y, const float *x, const float *w, size_t rows, size_t n, float eps,
                    int one_plus);
    /* Rotate-half RoPE in place on x[T, n_heads, head_dim]: the first rot_dim dims of each head are
     * rotated by the angles a[t, i] = (double)pos[t] * inv_freq[i], i < rot_dim/2, whose cosine and sine
     * are computed in double and rounded to float. pos [T] int32 and inv_freq [rot_dim/2] f64 are backend
     * memory, so a decode step needs no host data. */
    void (*rope)(ck_backend *b, float *x, size_t T, size_t n_heads, size_t head_dim, size_t rot_dim,
                 const int32_t *pos, const double *inv_freq);
    /* cache[pos[t], :] = src[t, :] for t < T; rows of `row` values; pos [T] int32 backend memory. The cache
     * holds dt: CK_F32 as is, or CK_F16 (ck_f32_to_f16_sat: to nearest even, values beyond f16's range,
     * infinities too, clamped to +-65504, so an overflowed key or value is stored finite; a NaN stays a NaN). */
    void (*store_rows)(ck_backend *b, void *cache, ck_dtype dt, const float *src, const int32_t *pos, size_t T,
                       size_t row);
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
    /* Mixture-of-experts top-k routing per row t < T: with p = softmax(logits[t, :E]) (in double),
     * choice[t, k] = the index of the k-th largest logit (ties to the lower index) and
     * weight[t, k] = p[choice[t, k]] (divided by the sum of the K picked when norm), rounded to float.
     * logits [T, E]; choice int32 [T, K] and weight f32 [T, K] are backend memory; 1 <= K <= E. */
    void (*moe_route)(ck_backend *b, int32_t *choice, float *weight, const float *logits, size_t T, size_t E,
                      size_t K, int norm);
    /* top[r] = the first index of the largest value of x[r, 0..n) for r < rows (ck_argmax's pick: greedy
     * sampling where the logits are, so that they need not be copied out); x is finite (the forward checks
     * it); top int32 [rows] is backend memory. */
    void (*argmax)(ck_backend *b, int32_t *top, const float *x, size_t rows, size_t n);
};

/* Creates a backend instance: kind "cpu" (device ignored), or a GPU kind with its device index. */
int ck_backend_create(const char *kind, int device, ck_backend **out, char *err, size_t errlen);
void ck_backend_destroy(ck_backend *b);

#define CK_MATMUL_MAX 4

/* b->matmul_n when the backend has it, else n calls of b->matmul. */
void ck_matmul_n(ck_backend *b, size_t n, float *const *y, const float *x, const ck_tensor *const *W,
                 const float *const *bias, size_t T);

/* Records the first failure of an op in b (printf-style reason); later ones are ignored until sync. */
void ck_backend_fail(ck_backend *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Devices of a kind this build can create: 1 for "cpu", the CUDA devices for "cuda" (0 when the build has
 * no CUDA backend or the machine no GPU), else 0. */
int ck_backend_devices(const char *kind);

/* The CUDA backend on device `device` (cuda/instance.cu; only in builds with CK_HAVE_CUDA). */
int ck_backend_cuda_create(int device, ck_backend **out, char *err, size_t errlen);
int ck_cuda_device_count(void);
/* CUDA device `device`: its name, its free memory now, and its peak f32 TFLOPS (multiprocessors x FP32
 * lanes x 2 x clock). -1 when it cannot be queried. */
int ck_cuda_device_info(int device, char *name, size_t cap, uint64_t *free_bytes, double *tflops);

/* The CPU backend (scalar references in cpu/ref.c, threaded with OpenMP). */
int ck_backend_cpu_create(ck_backend **out, char *err, size_t errlen);

/* Compute threads of the CPU backend, process-wide: n > 0 sets them; n <= 0 changes nothing (the default,
 * OMP_NUM_THREADS else one per core, until set). Counts above CK_MAX_THREADS_PER_CORE per core are clamped;
 * then *note (when not NULL) says so. Returns the count in use. */
#define CK_MAX_THREADS_PER_CORE 4
int ck_cpu_threads_set(int n, char *note, size_t notelen);
int ck_cpu_threads(void);

/* Matmul numerics of the CPU backend, process-wide: exact (f32 activations everywhere) or fast (the
 * default: bf16 weights meet activations rounded to bf16 where the CPU multiplies bf16 natively, as HF's
 * bf16 inference and llama.cpp do). The default comes from CAKE_EXACT (set and not "0": exact). Chosen
 * per process, never per batch, so a row's result never depends on the batch it runs in; change it only
 * while no forward runs. */
int ck_cpu_exact(void);
void ck_cpu_exact_set(int exact);

#endif
