/* cuda_internal.h — what the CUDA backend's files share: the instance state, the error helpers and the
 * op entry points each .cu file implements. Included only by the .cu files of src/backend/cuda (CUDA C++).
 * Invariants: every op is queued on the instance's one stream, so ops run in call order and scratch
 * buffers can be reused by the next op without waiting; a failure is recorded once (sticky, see
 * backend.h) and reported by sync; device-side checks (check_finite) write the instance's flag block,
 * which sync reads and clears. Host arrays an op takes (ids, rows, weights) are staged into `args`
 * by a stream-ordered copy before the kernel that reads them.
 * Graphs (graph.cu): unless CK_CUDA_GRAPHS=0, ops are not launched when called but queued as closures
 * with a key (the op's name and every value the closure captures); the queue runs at the next flush
 * (sync, download, alloc/free, weight changes, scratch growth). A queue whose key sequence was seen
 * before replays its instantiated CUDA graph: a decode step is one graph launch. Host arrays of queued ops
 * are copied into a pinned arena at call time (same offsets for the same op sequence), and the arena is
 * reused only after a flush has waited for the stream. */
#ifndef CK_BACKEND_CUDA_INTERNAL_H
#define CK_BACKEND_CUDA_INTERNAL_H

extern "C" {
#include "backend/backend.h"
}

#include <cublas_v2.h>
#include <new>
#include <utility>
#include <type_traits>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>
#include <stdint.h>

/* Flags written by device-side checks; read and cleared by sync. */
typedef struct ck_cuda_flags {
    int failed;             /* 0, or 1 once a check found a non-finite value */
    int tag;                /* that check's tag */
    unsigned long long idx; /* element index of the value */
    float val;
} ck_cuda_flags;

struct ck_cuda_graphs; /* graph.cu */

/* Batching (deferred mode): consecutive independent calls of one op kind with compatible shapes (q, k and
 * v projections of one input; q and k norms; RoPE of q and k; the K and V stores) are launched as one
 * kernel over up to CK_BATCH_MAX parts. A part names the byte ranges it reads and writes; a call joins
 * the pending batch only when its ranges overlap no pending part's (so the order between them is free). */
#define CK_BATCH_MAX 4
typedef struct ck_batch_part {
    const void *in;  /* bytes read */
    size_t in_bytes;
    void *out;       /* bytes written (may equal in: in place) */
    size_t out_bytes;
    uint64_t a[6];   /* the op's own values (pointers, sizes) */
} ck_batch_part;
struct ck_backend;
typedef void (*ck_batch_emit_fn)(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
/* Fusion (fuse.cu, deferred mode): the pending batch may also absorb the next op of another kind when
 * that op only consumes what the batch produces, so that the pair runs as one kernel with the same
 * results and the same writes:
 *   rmsnorm, glu or sigmoid_mul, then matmuls of its output (T <= 8 rows): the GEMV makes its input itself (every
 *     block computes the norm / the activation into shared memory; the block that finishes reading last
 *     also writes the producing op's output, so an in-place producer is safe);
 *   a matmul, then add(y += its output): the GEMV adds into y in its epilogue (y also keeps the plain
 *     output); then check_finite(y): the epilogue checks the sums it wrote; a lone matmul (the output
 *     head), then check_finite of its output: the epilogue checks the values it stores;
 *   per-head rmsnorm(s), RoPE(s) and KV-cache stores at one position buffer: one kernel, a warp per head
 *     row (norm, rotate, write back, store);
 *   that head-row batch, then the attention of one decode row over the caches it stored into: the
 *     attention prepares the rows it needs itself (ck_attn_prep).
 * Only for ops whose byte ranges make the reordering invisible; anything else emits the batch first. */
enum { CK_IN_X = 0, CK_IN_NORM, CK_IN_GLU, CK_IN_SIGMUL };
enum {
    CK_FUSE_NORM = 1, CK_FUSE_GLU = 2, CK_FUSE_RESIDUAL = 4, CK_FUSE_CHECK = 8, CK_FUSE_HEADS = 16,
    CK_FUSE_GLU_EPI = 32, CK_FUSE_ATTN = 64, CK_FUSE_GDN = 128, CK_FUSE_SIGMUL = 256, CK_FUSE_ALL = 511,
    /* GLU into the down GEMV makes every block recompute the whole activation: measured slower (q8_0 decode
     * 686 vs 760 tok/s, bf16 even), so it is off unless CK_CUDA_FUSE asks for it */
    CK_FUSE_DEFAULT = CK_FUSE_ALL & ~CK_FUSE_GLU
};
enum { CK_CHK_RES = 1, CK_CHK_OUT = 2 }; /* a fused check of the residual a part adds into; of a lone part's output */
typedef struct ck_fused_in {
    int kind;                      /* CK_IN_*: how a GEMV gets its input */
    const float *a, *b;            /* norm: source rows, weight; glu: gate, up; sigmul: x, the gates g */
    size_t a_bytes, b_bytes;
    size_t row, stride;            /* sigmul: x row i * row + d is x * sigmoid(g[i * stride + d]) */
    float *out;                    /* the producer's output (the parts' x); written by the GEMV too */
    float eps;
    int flag;                      /* norm: one_plus; glu: 1 for GELU-tanh */
    int closed;                    /* a residual or the GLU epilogue is attached: no more parts join */
    int chk;                       /* check_finite fused into the epilogue (CK_CHK_*), with chk_tag */
    int chk_tag;
    float *glu_out;                /* non-NULL: the GLU epilogue (gate/up GEMV of two parts, then glu):
                                      glu_out = act(part 0's output) * part 1's output, act GELU-tanh
                                      when glu_gelu (else SiLU) */
    int glu_gelu;
} ck_fused_in;
typedef struct ck_batch {
    ck_batch_emit_fn emit;         /* NULL: nothing pending */
    uint64_t compat[8];            /* values every part shares */
    int n;
    ck_batch_part parts[CK_BATCH_MAX];
    ck_fused_in in;                /* gemv batches: the fused producer / epilogue (kind CK_IN_X: none) */
} ck_batch;
struct ck_cuda_prof;   /* graph.cu: per-op GPU times (CK_CUDA_PROFILE=1) */
/* A Gated DeltaNet decode chain (deltanet.cu, CK_FUSE_GDN; one token row): gdn_gates, then conv1d_causal of
 * the row, then the gated delta rule over the conv's output and the gates, then rmsnorm_gated of the rule's
 * output in place run as one kernel. Pending (as the batch of emit ck_cuda_gdn_emit) from the gates on;
 * stage counts the ops taken so far (1 gates, 2 conv, 3 delta, 4 norm); an op that does not continue the
 * chain emits it, as launches of the ops taken (stages 1-2) or the fused kernel (3-4). */
typedef struct ck_gdn_chain {
    int stage;
    float *g, *beta;                            /* gates: outputs (may be a, bl: in place) */
    const float *a, *bl, *A_log, *dt_bias;
    size_t n;
    float *cy, *cstate;                         /* conv: output row, carried state [K - 1, C] */
    const float *cx, *cw;
    size_t C, K;
    int silu;
    ck_gdn_args d;                              /* the delta rule, reading the conv's output row */
    float *ny;                                  /* norm of d.out: output (d.out or apart), z, weight */
    const float *nz, *nw;
    float neps;
} ck_gdn_chain;

typedef struct ck_cuda {
    int dev;
    cudaStream_t st;
    cublasHandle_t blas;
    ck_cuda_flags *flags;        /* device memory, one block */
    void *dl_host;               /* pinned bounce of small downloads, CK_CUDA_DOWNLOAD_PINNED bytes */
    void *args[2];               /* device staging for host arrays (two per op), args_bytes long */
    size_t args_bytes[2];
    void *half;                  /* device scratch: activations rounded to bf16/f16 for cuBLAS */
    void *wdq;                   /* device scratch: a Q8_0 weight dequantized to f16 for cuBLAS, wdq_bytes */
    size_t wdq_bytes;
    void *attn;                  /* device scratch of split-K attention (attention.cu), attn_bytes long */
    void *amax;                  /* device scratch of argmax (argmax.cu), amax_bytes long */
    size_t amax_bytes;
    size_t attn_bytes;
    void *gd;                    /* device scratch of the delta rule (deltanet.cu), gd_bytes long */
    size_t gd_bytes;
    int split_ok;                /* split-K attention for decode rows (CK_CUDA_SPLIT=0: off) */
    size_t split_keys;           /* keys per split of that attention (CK_CUDA_ATTN_KEYS, default 128) */
    size_t split_max;            /* the most splits (CK_CUDA_ATTN_SPLITS, default 16, at most 32) */
    int attn_vec;                /* decode attention scores a key per 8 lanes (CK_CUDA_ATTN_VEC=0: off) */
    int attn_early;              /* the grouped kernel loads its first keys before the prologue (CK_CUDA_ATTN_EARLY=0: not) */
    int attn_group;              /* decode attention by KV head (attention_group.cu; CK_CUDA_ATTN_GROUP=0: off) */
    int tiled_attn;              /* prefill attention in tiles of rows (CK_CUDA_TILED_ATTN=0: off) */
    int tc_attn;                 /* fast path: prefill attention on tensor cores (CK_CUDA_TC_ATTN=0: off) */
    size_t half_bytes;
    void *dargs;                 /* device mirror of the pinned arena (deferred staging), pin capacity */
    void *blas_ws;               /* cuBLAS workspace (set, so that cuBLAS allocates nothing in a capture) */
    ck_cuda_graphs *g;           /* NULL: ops launch eagerly */
    ck_cuda_prof *prof;          /* non-NULL: ops launch eagerly between timing events */
    ck_batch batch;              /* pending batch (deferred mode only) */
    ck_gdn_chain gdn;            /* the pending DeltaNet chain (when batch.emit is ck_cuda_gdn_emit) */
    ck_fused_in emit_in;         /* the fused producer of the batch being emitted (zero otherwise) */
    unsigned *counter;           /* device: blocks of a fused GEMV that have read their input, then of a fused
                                    attention per head, or of the fused DeltaNet chain per value head and then
                                    per key head (1 + CK_ATTN_PREP_HEADS counts, reset by the last) */
    int pdl;                     /* GEMVs launched as programmatic dependents (CK_CUDA_PDL=0: not) */
    int split_gemv;              /* decode GEMVs on the split kernel (CK_CUDA_SPLIT_GEMV=0: not) */
    int split_wpr_fill;          /* the split kernel's warps per row by the wave alone (CK_CUDA_SPLIT_WPR=fill) */
    unsigned split_blocks;       /* blocks of the split GEMV the device holds at once */
    unsigned q8_blocks;          /* blocks of the Q8_0 GEMV the device holds at once */
    int fuse;                    /* CK_FUSE_* bits in use: CK_CUDA_FUSE (a number; 0 turns fusion off) */
    unsigned gemv_blocks;        /* blocks of the shared-memory GEMV the device holds at once */
    size_t gemv_smem;            /* dynamic shared memory a GEMV may use for its input rows */
    char name[96];
} ck_cuda;

static inline ck_cuda *ck_cu(ck_backend *b) { return (ck_cuda *)b->impl; }

/* Records err (when not cudaSuccess) as the instance's failure, naming what failed. Returns 1 on error. */
int ck_cuda_check(ck_backend *b, cudaError_t err, const char *what);
/* Records a launch error of the last kernel (cudaGetLastError). */
void ck_cuda_launched(ck_backend *b, const char *what);
/* Device memory of at least `bytes` in *buf (grown after the stream drained); NULL on failure. */
void *ck_cuda_scratch(ck_backend *b, void **buf, size_t *have, size_t bytes);
/* Copies n bytes of host memory to the device for the op being called (stream-ordered): into staging
 * buffer `slot` (0 or 1: an op stages at most two arrays), or the pinned arena's device mirror when
 * deferring. Returns the device address, NULL on failure. */
void *ck_cuda_stage(ck_backend *b, const void *host, size_t bytes, int slot);

/* ---- deferred execution (graph.cu) ---- */
/* A queued op is a closure over plain values (a lambda capturing by value; checked where it is queued) and
 * the function that runs it: fn(closure, stream). Its bytes live in the queue's arena until the queue has
 * run, so queuing allocates nothing once the arena has grown to a step's size. */
typedef void (*ck_cuda_op_fn)(const void *closure, cudaStream_t st);
int ck_cuda_graphs_init(ck_backend *b); /* 0, or -1 (then ops run eagerly) */
void ck_cuda_graphs_free(ck_backend *b);
/* Runs what is queued (replaying a cached graph when the keys match) and waits for the stream. */
void ck_cuda_flush(ck_backend *b);
/* The check flags as of the last flush (pinned host memory), or NULL when the flush does not copy them. */
ck_cuda_flags *ck_cuda_flags_host(ck_backend *b);
#define CK_CUDA_DOWNLOAD_PINNED 256 /* downloads of at most this many bytes join the queue (cu_download) */
/* Room for a queued closure of `bytes` (16-byte aligned) in the queue's arena, valid until the queue has
 * run; NULL when the host is out of memory. */
void *ck_cuda_op_room(ck_backend *b, size_t bytes);
void ck_cuda_enqueue(ck_backend *b, const uint64_t *key, size_t n, ck_cuda_op_fn fn, const void *closure);
/* Pinned host copy of `bytes` at src for a queued op (NULL when not deferring or on failure). */
void *ck_cuda_pin(ck_backend *b, const void *src, size_t bytes);
void *ck_cuda_pin_dev(ck_backend *b, const void *pinned);
/* CK_CUDA_PROFILE=1: every op timed with CUDA events (queued and fused as usual, but launched one by one
 * behind a busy kernel instead of as a graph); the totals per op are printed when the instance goes. */
void ck_cuda_prof_run(ck_backend *b, const char *op, ck_cuda_op_fn fn, const void *closure);
void ck_cuda_prof_report(ck_backend *b);

template <typename T> static inline uint64_t ck_kw(T v) {
    if constexpr (std::is_pointer<T>::value) return (uint64_t)(uintptr_t)v;
    else if constexpr (std::is_same<T, float>::value) {
        uint32_t u;
        memcpy(&u, &v, 4);
        return u;
    } else if constexpr (std::is_same<T, double>::value) {
        uint64_t u;
        memcpy(&u, &v, 8);
        return u;
    } else return (uint64_t)v;
}

/* The head-row batch an attention launch absorbed (fuse.cu, CK_FUSE_ATTN; decode, one row): parts 0, 1, 2
 * are q (x = the attention's q), k and v (stored into its k and v caches); x NULL: no such part. Each
 * block prepares the q row of its head and the k and v rows of its KV head (norm by w, RoPE when rope)
 * and takes the new key and value from them; one block per KV head stores the cache rows at pos[0], and
 * the last reader of each source row writes it back to x when it was normalized or rotated (attn_prep in
 * attention.cu). */
#define CK_ATTN_PREP_HEADS 4096 /* query + KV heads of a fused attention (counts in ck_cuda.counter) */
typedef struct ck_attn_prep {
    float *x[3];
    const float *w[3];
    int rope[3];
    float eps;
    int one_plus, half;
    const double *inv_freq;
    unsigned *counter;  /* nh + nkv counts, zero between launches */
} ck_attn_prep;
/* Split-K (flash-decoding) scratch of a decode attention: per (token row, head, split) the unnormalized
 * output, max and sum, and per (row, head) the count of finished splits (zero between launches: the
 * combining block resets it). */
typedef struct ck_attn_split {
    float *o, *m, *l;
    unsigned *count;
} ck_attn_split;
/* The combining step of a split decode attention, for row-head th (S splits of hd dims): the splits' largest
 * max M, their sums and unnormalized outputs rescaled to it (a split that saw no key, m = -inf, adds
 * nothing to the output), output dim d = sum / total. Read through L2 (other blocks wrote the partials). */
static __device__ __forceinline__ float ck_attn_combine(const ck_attn_split &sp, size_t th, int S, int hd, int d) {
    float M = -INFINITY, L = 0.0f, s = 0.0f;
    for (int i = 0; i < S; i++) M = fmaxf(M, __ldcg(&sp.m[th * S + i]));
    for (int i = 0; i < S; i++) L += __ldcg(&sp.l[th * S + i]) * expf(__ldcg(&sp.m[th * S + i]) - M);
    for (int i = 0; i < S; i++) {
        float mi = __ldcg(&sp.m[th * S + i]);
        if (mi > -INFINITY) s += __ldcg(&sp.o[(th * S + i) * hd + d]) * expf(mi - M);
    }
    return s / L;
}
/* The decode attention by KV head (attention_group.cu): launches it and returns 1 when it takes the call
 * (T rows of at most 8, S splits of the keys, pp as ck_cuda_fuse_attention made it), else 0. */
int ck_cuda_attention_group(ck_backend *b, const ck_attn_args *a, ck_attn_split sp, unsigned S,
                            const ck_attn_prep *pp);
/* 1 when the pending batch is such a head-row batch for attention a: it is then taken (into *pp) and no
 * longer pending. */
int ck_cuda_fuse_attention(ck_backend *b, const ck_attn_args *a, ck_attn_prep *pp);

/* Emits the pending batch (graph.cu); ck_cuda_run and flush call it first. */
void ck_cuda_batch_emit(ck_backend *b);
/* Deferred mode with batching: emits the pending batch and makes emit the pending one, with no parts (its
 * state kept by the caller), returning 1; else 0. */
int ck_cuda_batch_start(ck_backend *b, ck_batch_emit_fn emit);
/* Deferred mode: adds the part to the pending batch of emit (emitting another pending batch first) and
 * returns 1; eager mode: returns 0 and the caller launches the part alone. compat[8]: values all parts of
 * one batch must share. */
int ck_cuda_batch_add(ck_backend *b, ck_batch_emit_fn emit, const uint64_t *compat, const ck_batch_part *part);

/* 1 when the byte ranges [a, a + an) and [b, b + bn) share a byte (empty ranges share none). */
int ck_cuda_overlap(const void *a, size_t an, const void *b, size_t bn);
/* Fusion (fuse.cu): called by ck_cuda_batch_add when the part cannot join the pending batch; returns 1
 * when the pending batch absorbed it. The emit functions it recognizes: */
int ck_cuda_fuse(ck_backend *b, ck_batch_emit_fn emit, const uint64_t *compat, const ck_batch_part *part);
void ck_cuda_gemv_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
void ck_cuda_rmsnorm_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
void ck_cuda_rope_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
void ck_cuda_store_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
void ck_cuda_glu_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
void ck_cuda_sigmoid_mul_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
void ck_cuda_add_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
void ck_cuda_headprep_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
void ck_cuda_gdn_emit(ck_backend *b, const ck_batch_part *parts, int n, const uint64_t *compat);
/* rmsnorm_gated taken into a pending DeltaNet chain (deltanet.cu): 1 when taken. */
int ck_cuda_gdn_norm(ck_backend *b, float *y, const float *x, const float *z, const float *w, size_t rows, size_t n,
                     float eps);
/* Sets the GEMV kernels' shared-memory limit (gemv_smem); called once when the instance starts. */
int ck_cuda_gemv_init(ck_backend *b);
/* Whether a GEMV of T rows of n_in can take its input through shared memory (and so be fused). */
int ck_cuda_gemv_smem_ok(ck_backend *b, size_t T, size_t n_in);
/* check_finite folded into the pending GEMV's epilogue when it covers exactly x[0..n): a residual the GEMV
 * adds into, or the output of a lone GEMV without one. */
int ck_cuda_fuse_check(ck_backend *b, const float *x, size_t n, int tag);

/* Runs f(stream) now, or queues it under key[0..n) (the op's name, then every value f captures). */
template <typename F> static inline void ck_cuda_run_key(ck_backend *b, const char *op, F &&f, const uint64_t *key,
                                                          size_t n) {
    typedef typename std::decay<F>::type L;
    static_assert(std::is_trivially_copyable<L>::value && std::is_trivially_destructible<L>::value &&
                      alignof(L) <= 16, "a queued op captures plain values only");
    ck_cuda *c = (ck_cuda *)b->impl;
    if (c->batch.emit) ck_cuda_batch_emit(b);
    ck_cuda_op_fn fn = [](const void *p, cudaStream_t st) { (*(const L *)p)(st); };
    if (!c->g) {
        if (c->prof) ck_cuda_prof_run(b, op, fn, &f);
        else f(c->st);
        return;
    }
    void *room = ck_cuda_op_room(b, sizeof(L));
    if (!room) {
        ck_backend_fail(b, "%s: out of host memory queuing the op", op);
        return;
    }
    ck_cuda_enqueue(b, key, n, fn, new (room) L(std::forward<F>(f)));
}
/* ck_cuda_run_key keyed by op and args (every value f captures must be among them). */
template <typename F, typename... A> static inline void ck_cuda_run(ck_backend *b, const char *op, F &&f, A... args) {
    uint64_t key[] = {(uint64_t)(uintptr_t)op, ck_kw(args)...};
    ck_cuda_run_key(b, op, std::forward<F>(f), key, sizeof key / sizeof key[0]);
}
/* ck_cuda_run_key for an op whose captured values are the bytes of one struct v (its padding zeroed). */
template <typename F, typename S> static inline void ck_cuda_run_struct(ck_backend *b, const char *op, F &&f, const S &v) {
    uint64_t key[1 + (sizeof v + 7) / 8] = {(uint64_t)(uintptr_t)op};
    memcpy(key + 1, &v, sizeof v);
    ck_cuda_run_key(b, op, std::forward<F>(f), key, sizeof key / sizeof key[0]);
}

/* Q4_0 and the K-quants (quant.cu): whether dt is one, its block of values, embedding rows and f16 copies
 * (the GEMV is declared in gemv.cuh). */
int ck_cuda_is_quant(ck_dtype dt);
int ck_cuda_quant_block(ck_dtype dt);
void ck_cuda_embed_quant(cudaStream_t st, float *y, ck_dtype dt, const void *E, const int32_t *ids, size_t d, size_t T,
                         float scale);
void ck_cuda_dequant_f16(cudaStream_t st, __half *out, ck_dtype dt, const void *W, size_t n_out, size_t n_in);

/* ops, one file each concern */
void ck_cuda_embed(ck_backend *b, float *y, const ck_tensor *E, const int32_t *ids, size_t T, float scale);
void ck_cuda_matmul(ck_backend *b, float *y, const float *x, const ck_tensor *W, const float *bias, size_t T);
int ck_cuda_gemm(ck_backend *b, float *y, const float *x, const ck_tensor *W, size_t T); /* gemm.cu (cuBLAS) */
/* cuBLAS is loaded with dlopen when the first instance starts (so a CUDA build on a machine without a GPU
 * does not pay for loading it), then a handle on the instance's stream with a fixed workspace. */
int ck_cuda_blas_init(ck_backend *b, char *err, size_t errlen);
void ck_cuda_blas_free(ck_backend *b);
void ck_cuda_rmsnorm(ck_backend *b, float *y, const float *x, const float *w, size_t rows, size_t n, float eps,
                     int one_plus);
void ck_cuda_rmsnorm_gated(ck_backend *b, float *y, const float *x, const float *z, const float *w, size_t rows,
                           size_t n, float eps);
void ck_cuda_rope(ck_backend *b, float *x, size_t T, size_t n_heads, size_t head_dim, size_t rot_dim,
                  const int32_t *pos, const double *inv_freq);
void ck_cuda_store_rows(ck_backend *b, void *cache, ck_dtype dt, const float *src, const int32_t *pos, size_t T,
                        size_t row);
void ck_cuda_attention(ck_backend *b, const ck_attn_args *a);
/* The fast path's prefill attention on tensor cores (attention_tc.cu): 1 when it took the call (more than
 * 8 rows, a head_dim it was built for, not CAKE_EXACT), 0 to leave it to the f32 kernels. */
int ck_cuda_attention_tc(ck_backend *b, const ck_attn_args *a);
void ck_cuda_glu(ck_backend *b, float *out, const float *gate, const float *up, size_t n, ck_act act);
void ck_cuda_gather_rows(ck_backend *b, float *dst, const float *src, const int32_t *rows, size_t n, size_t row);
void ck_cuda_scatter_add_rows(ck_backend *b, float *dst, const float *src, const int32_t *rows, const float *w,
                              size_t n, size_t row);
void ck_cuda_zero(ck_backend *b, float *y, size_t n);
void ck_cuda_add(ck_backend *b, float *y, const float *x, size_t n);
void ck_cuda_copy_rows(ck_backend *b, float *dst, size_t dst_stride, const float *src, size_t src_stride,
                       size_t rows, size_t n);
void ck_cuda_sigmoid_mul(ck_backend *b, float *y, const float *g, size_t g_stride, size_t rows, size_t n);
void ck_cuda_conv1d_causal(ck_backend *b, float *y, const float *x, float *state, const float *w, size_t T, size_t C,
                           size_t K, int silu);
void ck_cuda_gdn_gates(ck_backend *b, float *g, float *beta, const float *a, const float *bl, const float *A_log,
                       const float *dt_bias, size_t T, size_t n);
void ck_cuda_gated_delta(ck_backend *b, const ck_gdn_args *a);
void ck_cuda_moe_route(ck_backend *b, int32_t *choice, float *weight, const float *logits, size_t T, size_t E,
                       size_t K, int norm);
void ck_cuda_check_finite(ck_backend *b, const float *x, size_t n, int tag);
void ck_cuda_argmax(ck_backend *b, int32_t *top, const float *x, size_t rows, size_t n);

/* Bytes of a Q8_0 weight row on the device (gemv.cu): n_in int8 quants, n_in / 32 f16 scales, padded to 16. */
static __host__ __device__ inline size_t ck_cuda_q8_stride(size_t n_in) { return (n_in + n_in / 16 + 15) / 16 * 16; }

/* Blocks of `threads` covering n items, capped so a grid-stride loop covers the rest. */
static inline unsigned ck_cuda_blocks(size_t n, unsigned threads) {
    size_t g = (n + threads - 1) / threads;
    return (unsigned)(g == 0 ? 1 : g > 65535u * 8 ? 65535u * 8 : g);
}

/* Warp and block sums/maxima (blockDim.x a multiple of 32, at most 1024; sh holds 32 floats). */
static __device__ __forceinline__ float ck_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
/* v clamped to the f16 range; a NaN stays NaN (fminf/fmaxf would turn it into a bound and hide it from
 * the finiteness checks). */
static __device__ __forceinline__ float ck_clamp_f16(float v) { return v > 65504.0f ? 65504.0f : v < -65504.0f ? -65504.0f : v; }
/* A value of an f16 KV cache: the bits of ck_f32_to_f16_sat (to nearest even, clamped, a NaN kept). */
static __device__ __forceinline__ __half ck_kv_half(float v) { return __float2half_rn(ck_clamp_f16(v)); }
/* KV cache values of either type (float or __half) read as floats, and made from floats. */
static __device__ __forceinline__ float ck_kvf(float v) { return v; }
static __device__ __forceinline__ float ck_kvf(__half v) { return __half2float(v); }
template <typename KV> static __device__ __forceinline__ KV ck_kv_make(float v);
template <> __device__ __forceinline__ float ck_kv_make<float>(float v) { return v; }
template <> __device__ __forceinline__ __half ck_kv_make<__half>(float v) { return ck_kv_half(v); }
/* N consecutive cache values from p (16-byte aligned) as floats, in 16-byte loads. */
template <int N> static __device__ __forceinline__ void ck_kv_load(const float *p, float *f) {
#pragma unroll
    for (int i = 0; i < N / 4; i++) {
        float4 v = *(const float4 *)(p + 4 * i);
        f[4 * i] = v.x, f[4 * i + 1] = v.y, f[4 * i + 2] = v.z, f[4 * i + 3] = v.w;
    }
}
template <int N> static __device__ __forceinline__ void ck_kv_load(const __half *p, float *f) {
#pragma unroll
    for (int i = 0; i < N / 8; i++) {
        uint4 u = *(const uint4 *)(p + 8 * i);
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 t = __half22float2(*(const __half2 *)&w[k]);
            f[8 * i + 2 * k] = t.x, f[8 * i + 2 * k + 1] = t.y;
        }
    }
}
/* The sigmoid and SiLU as every kernel computes them (kernels that must agree bit for bit share these). */
static __device__ __forceinline__ float ck_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static __device__ __forceinline__ float ck_silu(float x) { return x / (1.0f + expf(-x)); }
/* The gated activation of one value: GELU-tanh(g) * u when gelu, else SiLU(g) * u (the CPU's formulas). */
static __device__ __forceinline__ float ck_glu(float g, float u, int gelu) {
    return gelu ? 0.5f * g * (1.0f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g))) * u
                : ck_silu(g) * u;
}
/* A value gated by the sigmoid of g (sigmoid_mul; the GEMV's gating prologue): the same float operations. */
static __device__ __forceinline__ float ck_sigmoid_gate(float x, float g) { return x * ck_sigmoid(g); }
static __device__ __forceinline__ float ck_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
static __device__ __forceinline__ float ck_block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = ck_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return ck_warp_sum(v);
}
static __device__ __forceinline__ float ck_block_max(float v, float *sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = ck_warp_max(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    return ck_warp_max(v);
}

/* Programmatic dependent launch (sm_90): a kernel launched with the attribute (ck_cuda_launch's pdl) may
 * start while the kernel before it finishes; it must call ck_pdl_wait before it reads or writes anything
 * an earlier kernel touches (weights excepted). ck_pdl_trigger lets the next such kernel start early. */
static __device__ __forceinline__ void ck_pdl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
static __device__ __forceinline__ void ck_pdl_trigger(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

/* Launches kernel k, with programmatic stream serialization when pdl (see ck_pdl_wait). */
template <typename... P, typename... A>
static inline cudaError_t ck_cuda_launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t st, int pdl,
                                         A &&...args) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[1] = {};
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = st;
    cfg.attrs = at, cfg.numAttrs = pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, k, std::forward<A>(args)...);
}

/* Starts moving the 128-byte line holding p towards the multiprocessor (L1) or into L2; nothing waits. */
static __device__ __forceinline__ void ck_prefetch_l1(const void *p) { asm volatile("prefetch.global.L1 [%0];" ::"l"(p)); }
static __device__ __forceinline__ void ck_prefetch_l2(const void *p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

/* Threads of elementwise.cu's norm kernels for rows of n values (one block per row). */
static __host__ __device__ inline unsigned ck_norm_threads(size_t n) {
    return n >= 1024 ? 512 : n >= 256 ? 256 : n > 64 ? 128 : 64;
}

/* The sum of squares of a row of n values get(d), in the order of the norm kernels of elementwise.cu (a block
 * of ck_norm_threads(n) threads, thread t summing dims t, t + threads, ...; each warp's sums added by
 * ck_warp_sum, then the warps' totals by ck_block_sum's second ck_warp_sum), computed by one warp whose
 * lanes stand in for each of those warps in turn; every lane gets it. Lane l reads dims l modulo 32 only. */
template <typename G> static __device__ __forceinline__ float ck_norm_sumsq(G get, int n) {
    int lane = threadIdx.x & 31, threads = (int)ck_norm_threads((size_t)n), nw = threads / 32;
    float ss = 0.0f;
    for (int k = 0; k < nw; k++) {
        float s = 0.0f;
        for (int d = 32 * k + lane; d < n; d += threads) {
            float v = get(d);
            s += v * v;
        }
        s = ck_warp_sum(s);
        if (lane == k) ss = s;
    }
    return ck_warp_sum(ss);
}

/* One head row of hd floats, prepared by one warp into sr (shared memory): copied from src, normalized by
 * w (RMSNorm over the row; 1 + w when one_plus) when w is not NULL, its first 2 * half dims rotated
 * (rotate-half RoPE at position p) when rope. The arithmetic of the separate norm and rope kernels, bit for
 * bit: the sum of squares is taken in the norm kernel's order (ck_norm_sumsq). */
static __device__ __forceinline__ void ck_head_row(float *sr, const float *src, int hd, const float *w, float eps,
                                                   int one_plus, int rope, int p, const double *inv_freq, int half) {
    int lane = threadIdx.x & 31;
    if (w) /* the weight and the frequencies are read after the row's sum: fetch them alongside the row */
        for (int d = lane * 32; d < hd; d += 32 * 32) ck_prefetch_l1(w + d);
    if (rope)
        for (int i = lane * 16; i < half; i += 32 * 16) ck_prefetch_l1(inv_freq + i);
    for (int d = lane; d < hd; d += 32) sr[d] = src[d];
    if (w) { /* (each lane reads only dims it copied) */
        float ss = ck_norm_sumsq([&](int d) { return sr[d]; }, hd);
        float inv = 1.0f / sqrtf(ss / (float)hd + eps);
        for (int d = lane; d < hd; d += 32) sr[d] = sr[d] * inv * (one_plus ? 1.0f + w[d] : w[d]);
    }
    __syncwarp();
    if (rope) {
        double pp = (double)p;
        for (int i = lane; i < half; i += 32) {
            double sn, cs;
            sincos(pp * inv_freq[i], &sn, &cs);
            float co = (float)cs, si = (float)sn, u = sr[i], v = sr[i + half];
            sr[i] = u * co - v * si;
            sr[i + half] = v * co + u * si;
        }
        __syncwarp();
    }
}

static __device__ __forceinline__ float ck_bf16f(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
static __device__ __forceinline__ float ck_f16f(uint16_t h) { return __half2float(__ushort_as_half(h)); }

#endif
