/* cpu.c — the CPU backend: activations in host memory, ops threaded with OpenMP over independent rows
 * (output features of a matmul, (tokens, KV head) pairs of attention, or a decode row's key segments:
 * attention_split). Each op applies a kernel per row: the kernel set picked for this CPU (kernels.h) for
 * the matmul (through the GEMM driver, gemm.c), attention, GLU and RMSNorm, else the scalar ones of ref.c.
 * The matmul is exact or fast as chosen for the whole process (ck_cpu_exact), never by batch size. RoPE
 * angles are cached per instance (rope_lookup): every layer of a forward rotates with the same positions
 * and frequencies. Prepare checks that a weight's dtype has kernels and copies it into huge-page memory
 * (wmem.h), or keeps the mapped view. Every parallel region names its thread count (ck_cpu_threads), so
 * the count is the same for every calling thread of the process. Ops run synchronously; sync only reports
 * the sticky error. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/wmem.h"
#include "backend/moe_route.h"
#include "base/err.h"
#include "base/grow.h"
#include "sample/sample.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Token rows of a prefill chunk: each chunk reads every weight once, so longer chunks read them less
 * often (the packed activations of 256 rows stay in L2/L3). bf16 pp512 of Qwen3-0.6B on 2 cores of an
 * AMD EPYC, five alternating pairs: 256 rows 1.11x 64 (every pair faster); q8_0 also faster; peak RSS
 * +13 MB (the scratch). */
#define CK_CPU_PREFILL_ROWS 256
/* Multiply-adds below which an op runs on one thread: forking a team costs more than it saves. */
#define CK_CPU_PAR_MIN (1u << 18)
/* Elements below which an elementwise or per-row op (norms, RoPE, GLU) runs on one thread: decode rows
 * stay serial (no extra parallel region per token), prefill chunks are split. */
#define CK_CPU_ELEM_PAR_MIN (1u << 16)
/* Query-key multiply-adds (rows x positions x heads x head dim) below which attention runs on one
 * thread: a decode step's attention is split from a handful of cached positions on (each (row, KV head)
 * pair is computed whole by one thread, so the split never changes a result). */
#define CK_CPU_ATTN_PAR_MIN (1u << 14)
#define CK_CPU_ATTN_TOKENS 16 /* query rows per work item of attention (walking the keys together) */
/* State elements (rows x heads x key dim x value dim) from which the gated delta rule is split over its
 * value heads: each element is read and written twice per row, so a decode step of Qwen3.5-0.8B's (16
 * heads of 128 x 128) is worth a fork. */
#define CK_CPU_GDN_PAR_MIN (1u << 16)

/* RoPE angles of one (positions, frequencies) pair: cos and sin [T, half] */
typedef struct rope_angles {
    int32_t *pos;      /* [T] the key: positions ... */
    double *inv_freq;  /* [half] ... and frequencies */
    float *cs, *sn;
    size_t T, half;    /* 0: empty */
    size_t pos_cap, freq_cap, cs_cap, sn_cap;
    uint64_t used;     /* tick of the last use */
} rope_angles;

/* Entries of the angle cache: a model has at most two kinds of RoPE (Gemma 3's local and global bases). */
#define CK_CPU_ROPE_CACHE 2

typedef struct cpu_instance {
    ck_backend b;
    rope_angles rope[CK_CPU_ROPE_CACHE];
    uint64_t tick;
    ck_scratch attn_work;  /* attention's work memory, a slice per thread */
    ck_scratch attn_split; /* the segments' states of a split attention */
} cpu_instance;

static void *cpu_alloc(ck_backend *b, size_t bytes) {
    (void)b;
    void *p = NULL;
    size_t n = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    memset(p, 0, n ? n : 64);
    return p;
}

static void cpu_free(ck_backend *b, void *p) {
    (void)b;
    free(p);
}

static void cpu_copy(ck_backend *b, void *dst, const void *src, size_t bytes) {
    (void)b;
    memcpy(dst, src, bytes);
}

/* Another CPU instance's memory is host memory too, and its ops are done when they return. */
static void cpu_copy_peer(ck_backend *b, void *dst, ck_backend *from, const void *src, size_t bytes) {
    (void)b, (void)from;
    memcpy(dst, src, bytes);
}

static void cpu_clear(ck_backend *b, void *dst, size_t bytes) {
    (void)b;
    memset(dst, 0, bytes);
}

/* ---- threads ---- */

static atomic_int n_threads;       /* 0 until the default is computed */
static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static char default_note[160];

static int max_threads(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return (int)(cores > 0 ? cores : 1) * CK_MAX_THREADS_PER_CORE;
}

/* Clamps n to [1, max_threads()], describing a clamp in note. */
static int clamp_threads(long n, const char *what, char *note, size_t notelen) {
    int hi = max_threads();
    if (n >= 1 && n <= hi) return (int)n;
    if (note) snprintf(note, notelen, "%s %ld is out of range; using %d threads", what, n, n < 1 ? 1 : hi);
    return n < 1 ? 1 : hi;
}

static void default_threads(void) {
    const char *env = getenv("OMP_NUM_THREADS");
    long n = 0;
    if (env && *env) {
        char *end;
        n = strtol(env, &end, 10);
        if (end == env) n = 0;
    }
    if (n == 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    atomic_store(&n_threads, clamp_threads(n, "OMP_NUM_THREADS", default_note, sizeof default_note));
}

int ck_cpu_threads_set(int n, char *note, size_t notelen) {
    if (note && notelen) note[0] = 0;
    pthread_once(&threads_once, default_threads);
    if (n > 0) atomic_store(&n_threads, clamp_threads(n, "thread count", note, notelen));
    else if (note && notelen) snprintf(note, notelen, "%s", default_note);
    return atomic_load(&n_threads);
}

int ck_cpu_threads(void) {
    pthread_once(&threads_once, default_threads);
    return atomic_load(&n_threads);
}

/* ---- exact or fast matmul, process-wide ---- */

static atomic_int exact_mode = -1; /* -1 until read from CAKE_EXACT */

int ck_cpu_exact(void) {
    int m = atomic_load(&exact_mode);
    if (m < 0) {
        const char *env = getenv("CAKE_EXACT");
        int want = env && *env && strcmp(env, "0") != 0;
        atomic_compare_exchange_strong(&exact_mode, &m, want);
        m = atomic_load(&exact_mode);
    }
    return m;
}

void ck_cpu_exact_set(int exact) { atomic_store(&exact_mode, exact ? 1 : 0); }

/* ---- the compute thread: every CPU forward of the process runs here, so parallel regions always fork
 * from one master thread and reuse one OpenMP team, however many threads call in ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t job_cv, done_cv;
    void (*fn)(void *);
    void *arg;
    uint64_t posted, done; /* tickets: job `posted` is pending until done == posted */
    pthread_t thread;
    int running;           /* 0 when the thread could not be started: jobs run in their caller */
} compute = {.mu = PTHREAD_MUTEX_INITIALIZER, .job_cv = PTHREAD_COND_INITIALIZER, .done_cv = PTHREAD_COND_INITIALIZER};
static pthread_once_t compute_once = PTHREAD_ONCE_INIT;

static void *compute_main(void *unused) {
    (void)unused;
    pthread_mutex_lock(&compute.mu);
    for (;;) {
        while (compute.done == compute.posted) pthread_cond_wait(&compute.job_cv, &compute.mu);
        void (*fn)(void *) = compute.fn;
        void *arg = compute.arg;
        pthread_mutex_unlock(&compute.mu);
        fn(arg);
        pthread_mutex_lock(&compute.mu);
        compute.done++;
        pthread_cond_broadcast(&compute.done_cv);
    }
    return NULL;
}

static void compute_start(void) {
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 16u << 20);
    compute.running = pthread_create(&compute.thread, &at, compute_main, NULL) == 0;
    pthread_attr_destroy(&at);
}

static void cpu_exec(ck_backend *b, void (*fn)(void *), void *arg) {
    (void)b;
    pthread_once(&compute_once, compute_start);
    if (!compute.running || pthread_equal(pthread_self(), compute.thread)) {
        fn(arg);
        return;
    }
    pthread_mutex_lock(&compute.mu);
    while (compute.done != compute.posted) pthread_cond_wait(&compute.done_cv, &compute.mu); /* one job at a time */
    compute.fn = fn, compute.arg = arg;
    uint64_t ticket = ++compute.posted;
    pthread_cond_signal(&compute.job_cv);
    while (compute.done < ticket) pthread_cond_wait(&compute.done_cv, &compute.mu);
    pthread_mutex_unlock(&compute.mu);
}

/* ---- memory, weights, errors ---- */

static int cpu_prepare_weight(ck_backend *b, ck_tensor *w, char *err, size_t errlen) {
    (void)b;
    size_t rb;
    const ck_cpu_kernels *k = ck_cpu_kernels_get();
    int quant = ck_dtype_is_quant(w->dtype);
    if (!(quant ? k->qdot[w->dtype] != NULL : ck_cpu_mm_kernel(k, w->dtype, 1) != NULL) || w->ndim < 1 ||
        ck_dtype_row_bytes(w->dtype, w->shape[w->ndim - 1], &rb))
        return ck_err(err, errlen, "the CPU backend has no kernels for dtype %s", ck_dtype_name(w->dtype));
    if (quant && ((uintptr_t)w->data & 1)) /* ggml blocks hold 16-bit scales */
        return ck_err(err, errlen, "a %s weight at an odd address (the file's alignment is broken)", ck_dtype_name(w->dtype));
    size_t n = ck_tensor_bytes(w);
    const void *copy = n && ck_cpu_wmem_enabled() ? ck_cpu_wmem_copy(w->data, n) : NULL;
    if (copy) w->data = copy; /* else the mapped view stays (wmem.h) */
    return 0;
}

static void cpu_release_weight(ck_backend *b, ck_tensor *w) {
    (void)b;
    ck_cpu_wmem_release(w->data, ck_tensor_bytes(w)); /* a mapped view belongs to the model's weights */
}

static int cpu_weight_rows(ck_backend *b, ck_tensor *view, const ck_tensor *w, uint64_t r0, uint64_t n, char *err,
                           size_t errlen) {
    (void)b;
    size_t rb;
    if (w->ndim != 2 || r0 > w->shape[0] || n > w->shape[0] - r0 || ck_dtype_row_bytes(w->dtype, w->shape[1], &rb))
        return ck_err(err, errlen, "rows [%llu, +%llu) are not a view of a 2-D weight", (unsigned long long)r0,
                      (unsigned long long)n);
    *view = *w;
    view->shape[0] = n;
    view->data = (const uint8_t *)w->data + r0 * rb;
    return 0;
}

/* Blocks of 1024 values are tested without a branch (an exponent of all ones: the compiler vectorizes it),
 * and only a block that has a NaN or an infinity element by element. */
static void cpu_check_finite(ck_backend *b, const float *x, size_t n, int tag) {
    if (b->failed) return;
    for (size_t i0 = 0; i0 < n; i0 += 1024) {
        size_t i1 = n - i0 > 1024 ? i0 + 1024 : n;
        uint32_t bad = 0;
        for (size_t i = i0; i < i1; i++) {
            uint32_t u;
            memcpy(&u, x + i, sizeof u);
            bad |= (u & 0x7f800000u) == 0x7f800000u;
        }
        for (size_t i = i0; bad && i < i1; i++)
            if (!isfinite(x[i])) {
                ck_backend_fail(b, "non-finite value (%g) at element %zu", (double)x[i], i);
                b->bad_tag = tag;
                return;
            }
    }
}

static int cpu_sync(ck_backend *b, int *tag, char *err, size_t errlen) {
    if (tag) *tag = b->bad_tag;
    if (!b->failed) return 0;
    b->failed = 0;
    b->bad_tag = CK_TAG_NONE;
    return ck_err(err, errlen, "%s", b->why);
}

/* ---- ops ---- */

static void cpu_embed(ck_backend *b, float *y, const ck_tensor *E, const int32_t *ids, size_t T, float scale) {
    size_t d = E->shape[1], rb;
    const ck_dtype_traits *tr = ck_dtype_traits_of(E->dtype);
    if (!tr || ck_dtype_row_bytes(E->dtype, d, &rb) != 0) {
        ck_backend_fail(b, "embedding: dtype %s has no conversion", ck_dtype_name(E->dtype));
        return;
    }
    for (size_t t = 0; t < T; t++) {
        tr->to_f32(y + t * d, (const uint8_t *)E->data + (size_t)ids[t] * rb, d);
        if (scale != 1.0f)
            for (size_t i = 0; i < d; i++) y[t * d + i] *= scale;
    }
}

static void cpu_matmul(ck_backend *b, float *y, const float *x, const ck_tensor *W, const float *bias, size_t T) {
    if (ck_dtype_is_quant(W->dtype)) { /* quantized activations, integer dots (quant_ref.c) */
        char why[160];
        if (ck_cpu_matmul_quant(y, x, W, bias, T, ck_cpu_kernels_get(), ck_cpu_threads(), why, sizeof why) != 0)
            ck_backend_fail(b, "%s", why);
        return;
    }
    const ck_mm_kernel *mk = ck_cpu_mm_kernel(ck_cpu_kernels_get(), W->dtype, W->exact || ck_cpu_exact());
    if (!mk) {
        ck_backend_fail(b, "matmul: no CPU kernel for dtype %s", ck_dtype_name(W->dtype));
        return;
    }
    if (ck_cpu_gemm_run(mk, y, x, W, bias, T, ck_cpu_threads()) != 0)
        ck_backend_fail(b, "matmul: out of memory for %zu packed activation rows of %llu", T,
                        (unsigned long long)W->shape[1]);
}

static void cpu_matmul_n(ck_backend *b, size_t n, float *const *y, const float *x, const ck_tensor *const *W,
                         const float *const *bias, size_t T) {
    const ck_cpu_kernels *k = ck_cpu_kernels_get();
    int quant = n > 0;
    for (size_t i = 0; i < n && quant; i++) quant = ck_dtype_is_quant(W[i]->dtype);
    if (quant) { /* activations quantized once for all of them (quant_ref.c) */
        char why[160];
        if (ck_cpu_matmul_quant_n(n, y, x, W, bias, T, k, ck_cpu_threads(), why, sizeof why) != 0)
            for (size_t i = 0; i < n; i++) cpu_matmul(b, y[i], x, W[i], bias ? bias[i] : NULL, T);
        return;
    }
    const ck_mm_kernel *mk = n ? ck_cpu_mm_kernel(k, W[0]->dtype, W[0]->exact || ck_cpu_exact()) : NULL;
    int same = mk != NULL;
    for (size_t i = 1; i < n && same; i++)
        same = ck_cpu_mm_kernel(k, W[i]->dtype, W[i]->exact || ck_cpu_exact()) == mk && W[i]->shape[1] == W[0]->shape[1];
    if (!same) { /* different kernels: one call each */
        for (size_t i = 0; i < n; i++) cpu_matmul(b, y[i], x, W[i], bias ? bias[i] : NULL, T);
        return;
    }
    if (ck_cpu_gemm_run_n(mk, n, y, x, W, bias, T, ck_cpu_threads()) != 0)
        ck_backend_fail(b, "matmul: out of memory for %zu packed activation rows of %llu", T,
                        (unsigned long long)W[0]->shape[1]);
}

static void cpu_rmsnorm(ck_backend *b, float *y, const float *x, const float *w, size_t rows, size_t n, float eps,
                        int one_plus) {
    (void)b;
    ck_rmsnorm_fn norm = ck_cpu_kernels_get()->rmsnorm;
    long long nr = (long long)rows;
#pragma omp parallel for schedule(static) num_threads(ck_cpu_threads()) if (rows * n >= CK_CPU_ELEM_PAR_MIN)
    for (long long r = 0; r < nr; r++) norm(y + r * n, x + r * n, w, n, eps, one_plus);
}

/* The cached angles for T rows at positions pos with these frequencies: an entry that holds exactly them,
 * else the least recently used one refilled (its buffers only grow). NULL when a buffer cannot grow. */
static const rope_angles *rope_lookup(cpu_instance *ci, size_t T, const int32_t *pos, const double *inv_freq,
                                      size_t half) {
    rope_angles *e = &ci->rope[0];
    for (size_t i = 0; i < CK_CPU_ROPE_CACHE; i++) {
        rope_angles *c = &ci->rope[i];
        if (c->T == T && c->half == half && !memcmp(c->pos, pos, T * sizeof *pos) &&
            !memcmp(c->inv_freq, inv_freq, half * sizeof *inv_freq)) {
            c->used = ++ci->tick;
            return c;
        }
        if (c->used < e->used) e = c;
    }
    e->T = e->half = 0; /* empty until filled */
    /* each buffer grown to hold n elements (ck_grow); NULL when one cannot grow */
#define GROW(field, cap, n)                                                                               \
    do {                                                                                                  \
        void *q_ = ck_grow(e->field, &e->cap, (n), sizeof *e->field, 64);                                 \
        if (!q_) return NULL;                                                                             \
        e->field = q_;                                                                                    \
    } while (0)
    GROW(pos, pos_cap, T);
    GROW(inv_freq, freq_cap, half);
    GROW(cs, cs_cap, T * half);
    GROW(sn, sn_cap, T * half);
#undef GROW
    long long nt = (long long)T;
#pragma omp parallel for schedule(static) num_threads(ck_cpu_threads()) if (T * half >= CK_CPU_ELEM_PAR_MIN / 16)
    for (long long t = 0; t < nt; t++) ck_rope_angles_ref(e->cs + t * half, e->sn + t * half, pos[t], inv_freq, half);
    memcpy(e->pos, pos, T * sizeof *pos);
    memcpy(e->inv_freq, inv_freq, half * sizeof *inv_freq);
    e->T = T, e->half = half, e->used = ++ci->tick;
    return e;
}

/* Angles per row once (cached: q and k of every layer share them), applied to every head of the row. */
static void cpu_rope(ck_backend *b, float *x, size_t T, size_t n_heads, size_t head_dim, size_t rot_dim,
                     const int32_t *pos, const double *inv_freq) {
    size_t half = rot_dim / 2;
    if (T == 0 || half == 0) return;
    const rope_angles *a = rope_lookup(b->impl, T, pos, inv_freq, half);
    if (!a) {
        ck_backend_fail(b, "rope: out of memory for the angles of %zu rows", T);
        return;
    }
    long long nt = (long long)T;
#pragma omp parallel for schedule(static) num_threads(ck_cpu_threads()) if (T * n_heads * rot_dim >= CK_CPU_ELEM_PAR_MIN)
    for (long long t = 0; t < nt; t++)
        for (size_t h = 0; h < n_heads; h++)
            ck_rope_head_ref(x + ((size_t)t * n_heads + h) * head_dim, rot_dim, a->cs + t * half, a->sn + t * half);
}

static void cpu_store_rows(ck_backend *b, void *cache, ck_dtype dt, const float *src, const int32_t *pos, size_t T,
                           size_t row) {
    if (dt != CK_F32 && dt != CK_F16) {
        ck_backend_fail(b, "store_rows: a KV cache of %s is not supported", ck_dtype_name(dt));
        return;
    }
    const ck_cpu_kernels *k = ck_cpu_kernels_get();
    for (size_t t = 0; t < T; t++) {
        if (dt == CK_F16) k->to_f16((uint16_t *)cache + (size_t)pos[t] * row, src + t * row, row);
        else memcpy((float *)cache + (size_t)pos[t] * row, src + t * row, row * sizeof(float));
    }
}

/* Attention over segments in parallel: items (row t, its segment s, KV head) write their state into
 * st (a slot of group * (head_dim + 2) floats each: m, l, acc), then each (row, KV head) merges its
 * segments in order, as ck_attention_group does on one thread: the same bits. Rows are few (decode).
 * Returns -1, having done nothing, when no row has more than one segment or memory is short. */
#define CK_CPU_SPLIT_ROWS 64
static int attention_split(cpu_instance *ci, const ck_attn_args *a, const ck_cpu_kernels *k, int nt) {
    size_t T = a->T, nkv = a->n_kv_heads, hd = a->head_dim, group = a->n_heads / nkv, slot = group * (hd + 2);
    size_t off[CK_CPU_SPLIT_ROWS + 1], s0[CK_CPU_SPLIT_ROWS], s1;
    off[0] = 0;
    for (size_t t = 0; t < T; t++) {
        ck_attn_segments(a, t, &s0[t], &s1);
        off[t + 1] = off[t] + (s1 - s0[t]);
    }
    if (off[T] == T) return -1; /* nothing to split */
    float *st = ck_scratch_get(&ci->attn_split, off[T] * nkv * slot * sizeof(float));
    if (!st) return -1;
    long long n = (long long)(off[T] * nkv);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(dynamic, 1)
        for (long long i = 0; i < n; i++) {
            size_t seg = (size_t)i / nkv, kvh = (size_t)i % nkv, t = 0;
            while (off[t + 1] <= seg) t++;
            float *m = st + (size_t)i * slot, *l = m + group;
            ck_attention_seg(a, t, kvh, s0[t] + seg - off[t], m, l, l + group, k);
        }
#pragma omp for schedule(static)
        for (long long i = 0; i < (long long)(T * nkv); i++) {
            size_t t = (size_t)i / nkv, kvh = (size_t)i % nkv;
            float *out = a->out + (t * a->n_heads + kvh * group) * hd;
            memset(out, 0, group * hd * sizeof *out);
            for (size_t g = 0; g < group; g++) {
                float M = -INFINITY, L = 0.0f;
                for (size_t seg = off[t]; seg < off[t + 1]; seg++) {
                    const float *m = st + (seg * nkv + kvh) * slot, *l = m + group;
                    ck_attn_merge(&M, &L, out + g * hd, m[g], l[g], l + group + g * hd, hd);
                }
                for (size_t d = 0; d < hd; d++) out[g * hd + d] /= L;
            }
        }
    }
    return 0;
}

static void cpu_attention(ck_backend *b, const ck_attn_args *a) {
    const ck_cpu_kernels *k = ck_cpu_kernels_get();
    if (a->T == 0) return;
    if (a->kv_dtype != CK_F32 && a->kv_dtype != CK_F16) {
        ck_backend_fail(b, "attention: a KV cache of %s is not supported", ck_dtype_name(a->kv_dtype));
        return;
    }
    int nt = ck_cpu_threads();
    int par = a->T * ((size_t)a->pos[a->T - 1] + 1) * a->n_heads * a->head_dim > CK_CPU_ATTN_PAR_MIN;
    /* fewer (row, KV head) pairs than two per thread (decode) and rows of several segments: split the
     * keys (any split gives the same bits) */
    if (par && nt > 1 && a->T <= CK_CPU_SPLIT_ROWS && a->T * a->n_kv_heads < 2 * (size_t)nt &&
        attention_split(b->impl, a, k, nt) == 0)
        return;
    /* work items: tiles of tt query rows x one KV head (rows walk the keys together where the kernel set
     * can; tiles no larger than leaves four items per thread; any tiling gives the same bits) */
    size_t tt = k->attn_tokens ? CK_CPU_ATTN_TOKENS : 1, wf = (ck_attn_work_floats(a) + 15) / 16 * 16; /* whole lines */
    while (tt > 1 && (a->T + tt - 1) / tt * a->n_kv_heads < 4 * (size_t)nt) tt /= 2;
    long long n = (long long)((a->T + tt - 1) / tt * a->n_kv_heads);
    float *work = ck_scratch_get(&((cpu_instance *)b->impl)->attn_work, (size_t)(par ? nt : 1) * wf * sizeof(float));
    if (!work) {
        ck_backend_fail(b, "attention: out of memory for its work memory");
        return;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (par)
    for (long long i = 0; i < n; i++) {
        size_t t0 = (size_t)i / a->n_kv_heads * tt, t1 = t0 + tt < a->T ? t0 + tt : a->T;
        ck_attention_tokens(a, t0, t1, (size_t)i % a->n_kv_heads, k, work + (size_t)omp_get_thread_num() * wf);
    }
}

/* Each thread takes one contiguous part (the kernel's elements do not depend on where they lie). */
static void cpu_glu(ck_backend *b, float *out, const float *gate, const float *up, size_t n, ck_act act) {
    (void)b;
    ck_glu_fn glu = ck_cpu_kernels_get()->glu;
    if (n < CK_CPU_ELEM_PAR_MIN) {
        glu(out, gate, up, n, act);
        return;
    }
#pragma omp parallel num_threads(ck_cpu_threads())
    {
        size_t id = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        size_t i0 = n * id / nth, i1 = n * (id + 1) / nth;
        glu(out + i0, gate + i0, up + i0, i1 - i0, act);
    }
}

static void cpu_gather_rows(ck_backend *b, float *dst, const float *src, const int32_t *rows, size_t n, size_t row) {
    (void)b;
    for (size_t i = 0; i < n; i++) memcpy(dst + i * row, src + (size_t)rows[i] * row, row * sizeof(float));
}

static void cpu_scatter_add_rows(ck_backend *b, float *dst, const float *src, const int32_t *rows, const float *w,
                                 size_t n, size_t row) {
    (void)b;
    for (size_t i = 0; i < n; i++) {
        float *d = dst + (size_t)rows[i] * row;
        for (size_t j = 0; j < row; j++) d[j] += w[i] * src[i * row + j];
    }
}

static void cpu_zero(ck_backend *b, float *y, size_t n) {
    (void)b;
    memset(y, 0, n * sizeof *y);
}

static void cpu_add(ck_backend *b, float *y, const float *x, size_t n) {
    (void)b;
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

static void cpu_copy_rows(ck_backend *b, float *dst, size_t dst_stride, const float *src, size_t src_stride,
                          size_t rows, size_t n) {
    (void)b;
    for (size_t r = 0; r < rows; r++) memcpy(dst + r * dst_stride, src + r * src_stride, n * sizeof(float));
}

static void cpu_sigmoid_mul(ck_backend *b, float *y, const float *g, size_t g_stride, size_t rows, size_t n) {
    (void)b;
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++) y[r * n + i] *= 1.0f / (1.0f + expf(-g[r * g_stride + i]));
}

static void cpu_conv1d_causal(ck_backend *b, float *y, const float *x, float *state, const float *w, size_t T,
                              size_t C, size_t K, int silu) {
    (void)b;
    long long n = (long long)C;
    int nt = ck_cpu_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (C * T * K > CK_CPU_PAR_MIN)
    for (long long c = 0; c < n; c++) ck_conv1d_channel_ref(y, x, state, w + (size_t)c * K, T, C, K, (size_t)c, silu);
}

static void cpu_gdn_gates(ck_backend *b, float *g, float *beta, const float *a, const float *bl, const float *A_log,
                          const float *dt_bias, size_t T, size_t n) {
    (void)b;
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < n; h++) {
            size_t i = t * n + h;
            float bv = bl[i]; /* read before writing: beta may alias bl */
            g[i] = -expf(A_log[h]) * ck_softplus_ref(a[i] + dt_bias[h]);
            beta[i] = 1.0f / (1.0f + expf(-bv));
        }
}

static void cpu_gated_delta(ck_backend *b, const ck_gdn_args *a) {
    (void)b;
    long long n = (long long)a->n_v_heads;
    int nt = ck_cpu_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (a->T * a->k_head_dim * a->v_head_dim * a->n_v_heads >= CK_CPU_GDN_PAR_MIN)
    for (long long h = 0; h < n; h++) ck_gated_delta_head_ref(a, (size_t)h);
}

static void cpu_rmsnorm_gated(ck_backend *b, float *y, const float *x, const float *z, const float *w, size_t rows,
                              size_t n, float eps) {
    (void)b;
    for (size_t r = 0; r < rows; r++) ck_rmsnorm_gated_ref(y + r * n, x + r * n, z + r * n, w, n, eps);
}

static void cpu_moe_route(ck_backend *b, int32_t *choice, float *weight, const float *logits, size_t T, size_t E,
                          size_t K, int norm) {
    if (E == 0 || K == 0 || K > E) {
        ck_backend_fail(b, "moe_route: top-%zu of %zu experts", K, E);
        return;
    }
    for (size_t t = 0; t < T; t++) ck_moe_route_row(choice + t * K, weight + t * K, logits + t * E, E, K, norm);
}

static void cpu_argmax(ck_backend *b, int32_t *top, const float *x, size_t rows, size_t n) {
    (void)b;
    for (size_t r = 0; r < rows; r++) top[r] = ck_argmax(x + r * n, n);
}

static void cpu_destroy(ck_backend *b) {
    cpu_instance *ci = b->impl;
    for (size_t i = 0; i < CK_CPU_ROPE_CACHE; i++) {
        rope_angles *e = &ci->rope[i];
        free(e->pos), free(e->inv_freq), free(e->cs), free(e->sn);
    }
    free(ci->attn_work.p), free(ci->attn_split.p);
    free(ci);
}

static const ck_backend cpu_template = {
    .name = "cpu",
    .bad_tag = CK_TAG_NONE,
    .destroy = cpu_destroy,
    .exec = cpu_exec,
    .sync = cpu_sync,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .copy_peer = cpu_copy_peer,
    .clear = cpu_clear,
    .prepare_weight = cpu_prepare_weight,
    .release_weight = cpu_release_weight,
    .weight_rows = cpu_weight_rows,
    .check_finite = cpu_check_finite,
    .embed = cpu_embed,
    .matmul = cpu_matmul,
    .matmul_n = cpu_matmul_n,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .store_rows = cpu_store_rows,
    .attention = cpu_attention,
    .glu = cpu_glu,
    .gather_rows = cpu_gather_rows,
    .scatter_add_rows = cpu_scatter_add_rows,
    .zero = cpu_zero,
    .add = cpu_add,
    .copy_rows = cpu_copy_rows,
    .sigmoid_mul = cpu_sigmoid_mul,
    .conv1d_causal = cpu_conv1d_causal,
    .gdn_gates = cpu_gdn_gates,
    .gated_delta = cpu_gated_delta,
    .rmsnorm_gated = cpu_rmsnorm_gated,
    .moe_route = cpu_moe_route,
    .argmax = cpu_argmax,
};

int ck_backend_cpu_create(ck_backend **out, char *err, size_t errlen) {
    cpu_instance *ci = calloc(1, sizeof *ci);
    if (!ci) return ck_err(err, errlen, "out of memory");
    ck_backend *b = &ci->b;
    *b = cpu_template;
    b->impl = ci;
    b->prefill_rows = CK_CPU_PREFILL_ROWS;
    ck_cpu_threads();
    *out = b;
    return 0;
}
