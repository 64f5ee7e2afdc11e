/* quant_ref.c — the CPU matmul for block-quantized weights (see ck_cpu_matmul_quant in kernels.h).
 * Each activation row is quantized once per call into a per-thread scratch buffer (kept between calls,
 * so decode allocates only when a larger matmul than any before comes), then output features are split
 * across threads in groups of 4 weight rows; each weight row is read once for all T activation rows, four
 * rows at a time where the kernel set has a four-row kernel (equal to the one-row kernel bit for bit).
 * Every y[t, o] = qdot(W[o], xq[t]) (+ bias[o]) depends only on row t: batch-invariant by construction.
 * The scalar reference dot products are the dtype traits' qdot (tensor/quant.c); the SIMD ones are in
 * quant_avx2.c / quant_avx512.c. */
#include "backend/cpu/kernels.h"
#include "base/err.h"

#include <pthread.h>
#include <stdlib.h>

#define QROWS 4 /* weight rows per unit of work */

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

int ck_cpu_matmul_quant(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T,
                        const ck_cpu_kernels *k, int n_threads, char *err, size_t errlen) {
    size_t n_out = W->shape[0], n_in = W->shape[1], rb, xb;
    const ck_dtype_traits *tr = ck_dtype_traits_of(W->dtype);
    ck_qdot_fn qdot = tr && tr->act ? k->qdot[W->dtype] : NULL;
    ck_qdot4_fn qdot4 = qdot ? k->qdot4[W->dtype] : NULL;
    if (!qdot || W->ndim != 2 || ck_dtype_row_bytes(W->dtype, n_in, &rb) != 0)
        return ck_err(err, errlen, "matmul: no quantized CPU kernel for dtype %s", ck_dtype_name(W->dtype));
    if (T >= CK_QMATMUL_MIN_T && k->qmatmul[W->dtype] && k->qmatmul[W->dtype](y, x, W, bias, T, n_threads) == 0)
        return 0; /* a whole-matmul kernel (AMX), the same bits */
    xb = tr->act_row_bytes(n_in);
    size_t total;
    if (ck_mul_size(xb, T, &total) != 0) return ck_err(err, errlen, "matmul: activation scratch overflows");
    uint8_t *xq = scratch_get(total);
    if (!xq) return ck_err(err, errlen, "matmul: out of memory for quantized activations");
    long long nT = (long long)T;
#pragma omp parallel for schedule(static) num_threads(n_threads) if (T * n_in > (1u << 16))
    for (long long t = 0; t < nT; t++) tr->quantize_act(xq + (size_t)t * xb, x + (size_t)t * n_in, n_in);
    const uint8_t *base = W->data;
    long long n_groups = (long long)((n_out + QROWS - 1) / QROWS);
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_out * n_in * T > (1u << 18))
    for (long long g = 0; g < n_groups; g++) {
        size_t o0 = (size_t)g * QROWS, o1 = o0 + QROWS < n_out ? o0 + QROWS : n_out;
        for (size_t o = o0; o < o1; o++) {
            float b = bias ? bias[o] : 0.0f, r4[4];
            size_t t = 0;
            for (; qdot4 && t + 4 <= T; t += 4) { /* equal to four qdot calls, bit for bit */
                qdot4(base + o * rb, xq + t * xb, xb, n_in, r4);
                for (size_t r = 0; r < 4; r++) y[(t + r) * n_out + o] = r4[r] + b;
            }
            for (; t < T; t++) y[t * n_out + o] = qdot(base + o * rb, xq + t * xb, n_in) + b;
        }
    }
    return 0;
}
