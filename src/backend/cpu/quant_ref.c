/* quant_ref.c — the CPU matmul for block-quantized weights (see ck_cpu_matmul_quant in kernels.h).
 * Each activation row is quantized once per call into a per-thread scratch buffer (kept between calls,
 * so decode allocates only when a larger matmul than any before comes); a call may carry several
 * weights that read the same activations (q/k/v, gate/up): quantized once, and their rows split over the
 * threads as one long weight, in units of 16 rows, by bytes (weights of different types cost what they
 * read), in one parallel region: one piece of equal bytes per thread, or with QCHUNK_THREADS threads or
 * more QCHUNKS pieces per thread, each thread taking the next from a shared counter, so that a thread that
 * gets less of the memory bus takes fewer. For one activation
 * row (decode) each thread runs the kernel set's many-row kernel (qgemv) over its rows; for more, each
 * weight row is read once for all T activation rows, four rows at a time where the kernel set has a
 * four-row kernel. Every kernel equals the one-row kernel bit for bit, so every
 * y[t, o] = qdot(W[o], xq[t]) (+ bias[o]) depends only on row t: batch-invariant by construction.
 * The scalar reference dot products are the dtype traits' qdot (tensor/quant.c); the SIMD ones are in
 * quant_avx2.c / quant_avx512.c. */
#include "backend/cpu/kernels.h"
#include "base/err.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define QROWS 16                /* weight rows per unit of the thread split */
#define QPAR_MIN (1u << 18)     /* multiply-adds below which one thread does it all */
#define QPACK_PAR_MIN (1u << 16) /* activation elements below which the caller quantizes alone */
/* Pieces of the weights' bytes per thread, handed out in turn, from QCHUNK_THREADS threads on. Qwen3-0.6B
 * decode (q8_0, Q4_K_M) against one share per thread: a 16-core Xeon at 4, 8 and 16 threads 1.13x (median
 * of 12 rounds), two cores of an AMD EPYC 0.93-0.95x (docs/benchmarks.md). */
#define QCHUNKS 4
#define QCHUNK_THREADS 4

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

typedef struct scratch {
    void *p;
    size_t cap;
} scratch;

static void scratch_free(void *s) {
    if (!s) return;
    free(((scratch *)s)->p);
    free(s);
}

static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

/* At least `bytes` of this thread's scratch, or NULL. */
static void *scratch_get(size_t bytes) {
    pthread_once(&scratch_once, scratch_init);
    scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->cap < bytes) {
        void *p = NULL;
        size_t cap = bytes + bytes / 4 + 64;
        if (posix_memalign(&p, 64, cap) != 0) return NULL;
        free(s->p);
        s->p = p, s->cap = cap;
    }
    return s->p;
}

/* Outputs [r0, r1) of y[T, n_out] from weight rows w (rb bytes each) and quantized activation rows xq
 * (xb bytes each): T = 1 through the many-row kernel where there is one, else each weight row read once
 * for four activation rows at a time (qdot4) and the rest one by one; all equal to qdot bit for bit. */
static void rows_run(float *y, size_t n_out, const uint8_t *xq, size_t xb, const uint8_t *w, size_t rb,
                     const float *bias, size_t n_in, size_t T, size_t r0, size_t r1, ck_qdot_fn qdot,
                     ck_qdot4_fn qdot4, ck_qgemv_fn qgemv) {
    if (T == 1 && qgemv) {
        qgemv(y + r0, w + r0 * rb, rb, xq, n_in, r1 - r0);
        if (bias)
            for (size_t o = r0; o < r1; o++) y[o] += bias[o];
        return;
    }
    for (size_t o = r0; o < r1; o++) {
        float b = bias ? bias[o] : 0.0f, r4[4];
        size_t t = 0;
        for (; qdot4 && t + 4 <= T; t += 4) { /* equal to four qdot calls, bit for bit */
            qdot4(w + o * rb, xq + t * xb, xb, n_in, r4);
            for (size_t r = 0; r < 4; r++) y[(t + r) * n_out + o] = r4[r] + b;
        }
        for (; t < T; t++) y[t * n_out + o] = qdot(w + o * rb, xq + t * xb, n_in) + b;
    }
}

/* Quantized matmuls that fit in one call: at most 8 weights sharing n_in and one activation format. */
#define QMAX_N 8

int ck_cpu_matmul_quant_n(size_t n, float *const *y, const float *x, const ck_tensor *const *W,
                          const float *const *bias, size_t T, const ck_cpu_kernels *k, int n_threads, char *err,
                          size_t errlen) {
    if (n < 1 || n > QMAX_N) return ck_err(err, errlen, "matmul: %zu weights in one quantized call", n);
    const ck_dtype_traits *tr0 = ck_dtype_traits_of(W[0]->dtype);
    size_t n_in = W[0]->shape[1], rb[QMAX_N], cost[QMAX_N + 1] = {0};
    ck_qdot_fn qdot[QMAX_N];
    ck_qdot4_fn qdot4[QMAX_N];
    ck_qgemv_fn qgemv[QMAX_N];
    double work = 0;
    for (size_t i = 0; i < n; i++) {
        const ck_dtype_traits *tr = ck_dtype_traits_of(W[i]->dtype);
        qdot[i] = tr && tr->act ? k->qdot[W[i]->dtype] : NULL;
        if (!qdot[i] || W[i]->ndim != 2 || ck_dtype_row_bytes(W[i]->dtype, n_in, &rb[i]) != 0)
            return ck_err(err, errlen, "matmul: no quantized CPU kernel for dtype %s", ck_dtype_name(W[i]->dtype));
        if (W[i]->shape[1] != n_in || tr->act != tr0->act)
            return ck_err(err, errlen, "matmul: fused quantized weights differ in input size or activation format");
        qdot4[i] = k->qdot4[W[i]->dtype];
        qgemv[i] = k->qgemv[W[i]->dtype];
        cost[i + 1] = cost[i] + (W[i]->shape[0] + QROWS - 1) / QROWS * QROWS * rb[i]; /* prefix sums of row groups' bytes */
        work += (double)W[i]->shape[0] * (double)n_in * (double)T;
    }
    size_t first = 0; /* the weights before it were done by whole-matmul kernels: the same bits */
    if (T >= CK_QMATMUL_MIN_T)
        while (first < n && k->qmatmul[W[first]->dtype] &&
               k->qmatmul[W[first]->dtype](y[first], x, W[first], bias ? bias[first] : NULL, T, n_threads) == 0)
            first++;
    if (first == n) return 0;
    size_t xb = tr0->act_row_bytes(n_in), total;
    if (ck_mul_size(xb, T, &total) != 0) return ck_err(err, errlen, "matmul: activation scratch overflows");
    uint8_t *xq = scratch_get(total);
    if (!xq) return ck_err(err, errlen, "matmul: out of memory for quantized activations");
    int nt = work > QPAR_MIN ? n_threads : 1, quant_par = T * n_in >= QPACK_PAR_MIN;
    void (*quantize)(void *, const float *, size_t) = k->quantize_act[tr0->act] ? k->quantize_act[tr0->act] : tr0->quantize_act;
    if (!quant_par)
        for (size_t t = 0; t < T; t++) quantize(xq + t * xb, x + t * n_in, n_in);
    atomic_size_t next = 0; /* the next piece of the weights' bytes */
#pragma omp parallel num_threads(nt)
    {
        size_t id = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        if (quant_par) {
            for (size_t t = id; t < T; t += nth) quantize(xq + t * xb, x + t * n_in, n_in);
#pragma omp barrier
        }
        /* pieces [c0, c1) of the bytes of the weights from `first` on, as their row groups lie one after
           the other: a group goes to the piece that holds its first byte, so weights of different types
           (Q4_K_M's q, k in Q4_K and v in Q6_K) are split by what they cost to read */
        int deal = nth >= QCHUNK_THREADS; /* pieces dealt from the counter, else piece id for thread id */
        size_t c_first = cost[first], c_all = cost[n] - c_first, np = deal ? nth * QCHUNKS : nth;
        for (size_t p = deal ? atomic_fetch_add(&next, 1) : id; p < np; p = deal ? atomic_fetch_add(&next, 1) : np) {
            size_t c0 = c_first + c_all * p / np, c1 = c_first + c_all * (p + 1) / np;
            for (size_t i = first; i < n; i++) {
                size_t cu = QROWS * rb[i], nu = (W[i]->shape[0] + QROWS - 1) / QROWS;
                size_t lo = c0 > cost[i] ? (c0 - cost[i] + cu - 1) / cu : 0;
                size_t hi = c1 > cost[i] ? (c1 - cost[i] + cu - 1) / cu : 0;
                if (hi > nu) hi = nu;
                if (lo >= hi) continue;
                size_t n_out = W[i]->shape[0], r0 = lo * QROWS, r1 = hi * QROWS;
                rows_run(y[i], n_out, xq, xb, (const uint8_t *)W[i]->data, rb[i], bias ? bias[i] : NULL, n_in, T,
                         r0, r1 < n_out ? r1 : n_out, qdot[i], qdot4[i], qgemv[i]);
            }
        }
    }
    return 0;
}

int ck_cpu_matmul_quant(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T,
                        const ck_cpu_kernels *k, int n_threads, char *err, size_t errlen) {
    const float *b[1] = {bias};
    return ck_cpu_matmul_quant_n(1, &y, x, &W, b, T, k, n_threads, err, errlen);
}
