/* gemm.c — the CPU matmul driver: y[T, n_out] = x[T, n_in] . W[n_out, n_in]^T (+ bias) with one
 * ck_mm_kernel (kernels.h). Activations are packed once into the kernel's format (when it has one) in a
 * scratch buffer of the calling thread that only grows (decode allocates nothing); the weight rows are
 * split evenly over the threads in units of 16 rows. Each kernel walks its rows in blocks of its
 * register tile's width (kept in L1) over all T activation rows (kept in L2/L3: a prefill chunk is at most
 * the backend's prefill_rows), so every weight byte comes from memory once and each loaded weight vector serves
 * several token rows, each activation vector several weight rows. One parallel region per call; a call
 * may carry several weights that read the same activations (q/k/v, gate/up), packed once and split over
 * the threads as one long weight. Batch invariance comes from the kernels: how rows are split between
 * threads does not change any output's bits. */
#include "backend/cpu/kernels.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

#define CK_ROW_UNIT 16              /* rows per unit of the thread split */
#define CK_GEMM_PAR_MIN (1u << 18)  /* multiply-adds below which one thread does it all */
#define CK_PACK_PAR_MIN (1u << 16)  /* activation elements below which the caller packs alone */
#define CK_GEMM_MAX_N 8             /* weights per fused call */

static _Thread_local ck_scratch scratch; /* the packed activations */

/* Rows [r0, r1) of the weight through the kernel. */
static void run_rows(const ck_mm_kernel *mk, float *y, const void *a, size_t as, const ck_tensor *W, size_t rb,
                     const float *bias, size_t T, size_t r0, size_t r1) {
    mk->gemm(y + r0, W->shape[0], a, as, (const uint8_t *)W->data + r0 * rb, rb, W->shape[1], T, r1 - r0,
             bias ? bias + r0 : NULL);
}

int ck_cpu_gemm_run_n(const ck_mm_kernel *mk, size_t n, float *const *y, const float *x, const ck_tensor *const *W,
                      const float *const *bias, size_t T, int n_threads) {
    size_t n_in = W[0]->shape[1], rb[CK_GEMM_MAX_N], units[CK_GEMM_MAX_N + 1] = {0}, as = n_in * sizeof(float);
    double work = 0;
    if (n < 1 || n > CK_GEMM_MAX_N) return -1;
    for (size_t i = 0; i < n; i++) {
        if (W[i]->shape[1] != n_in || ck_dtype_row_bytes(W[i]->dtype, n_in, &rb[i]) != 0) return -1;
        units[i + 1] = units[i] + (W[i]->shape[0] + CK_ROW_UNIT - 1) / CK_ROW_UNIT; /* prefix sums */
        work += (double)W[i]->shape[0] * (double)n_in * (double)T;
    }
    const void *a = x;
    uint8_t *packed = NULL;
    if (mk->pack_batch) { /* one packed block for the whole batch, packed by groups of 16 rows */
        size_t bytes = mk->act_batch_bytes(n_in, T);
        if (!bytes || !(packed = ck_scratch_get(&scratch, bytes))) return -1;
        a = packed;
    } else if (mk->pack) {
        as = mk->act_row_bytes(n_in);
        if (!as || T > SIZE_MAX / as || !(packed = ck_scratch_get(&scratch, T * as))) return -1;
        a = packed;
    }
    int nt = work > CK_GEMM_PAR_MIN ? n_threads : 1;
    int pack_par = packed && T * n_in >= CK_PACK_PAR_MIN;
    if (packed && !pack_par) {
        if (mk->pack_batch) mk->pack_batch(packed, x, n_in, T, 0, T);
        else
            for (size_t t = 0; t < T; t++) mk->pack(packed + t * as, x + t * n_in, n_in);
    }
#pragma omp parallel num_threads(nt)
    {
        size_t id = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        if (pack_par) {
            if (mk->pack_batch) {
                size_t ng = (T + 15) / 16, g0 = ng * id / nth, g1 = ng * (id + 1) / nth;
                if (g0 < g1) mk->pack_batch(packed, x, n_in, T, g0 * 16, g1 * 16 < T ? g1 * 16 : T);
            } else
                for (size_t t = id; t < T; t += nth) mk->pack(packed + t * as, x + t * n_in, n_in);
#pragma omp barrier
        }
        /* this thread's units [u0, u1) of the concatenated rows of every weight */
        size_t u0 = units[n] * id / nth, u1 = units[n] * (id + 1) / nth;
        for (size_t i = 0; i < n; i++) {
            size_t lo = u0 > units[i] ? u0 : units[i], hi = u1 < units[i + 1] ? u1 : units[i + 1];
            if (lo >= hi) continue;
            size_t n_out = W[i]->shape[0], r0 = (lo - units[i]) * CK_ROW_UNIT, r1 = (hi - units[i]) * CK_ROW_UNIT;
            run_rows(mk, y[i], a, as, W[i], rb[i], bias ? bias[i] : NULL, T, r0, r1 < n_out ? r1 : n_out);
        }
    }
    return 0;
}

void ck_tile_gemm(const ck_tile_set *s, float *y, size_t ys, const void *a, size_t as, const void *w, size_t ws,
                  size_t n, size_t T, size_t rows, const float *bias) {
    const uint8_t *A = a, *W = w;
    size_t R = s->R, C = s->C, j = 0;
    if (T < R && ck_cpu_stream_decode()) { /* decode on AMD CPUs: one row after the other (kernels.h) */
        for (size_t t = 0; t < T; t++)
            for (j = 0; j < rows; j++) s->one(y + t * ys + j, ys, A + t * as, as, W + j * ws, ws, n, bias ? bias + j : NULL, NULL);
        return;
    }
    for (; j + C <= rows; j += C) {
        const float *b = bias ? bias + j : NULL;
        const uint8_t *next = T < R && j + 2 * C <= rows ? W + (j + C) * ws : NULL;
        size_t t = 0;
        for (; t + R <= T; t += R) s->full(y + t * ys + j, ys, A + t * as, as, W + j * ws, ws, n, b, NULL);
        for (; t < T; t++) s->row(y + t * ys + j, ys, A + t * as, as, W + j * ws, ws, n, b, t ? NULL : next);
    }
    for (; j < rows; j++) {
        const float *b = bias ? bias + j : NULL;
        size_t t = 0;
        for (; t + R <= T; t += R) s->col(y + t * ys + j, ys, A + t * as, as, W + j * ws, ws, n, b, NULL);
        for (; t < T; t++) s->one(y + t * ys + j, ys, A + t * as, as, W + j * ws, ws, n, b, NULL);
    }
}

int ck_cpu_gemm_run(const ck_mm_kernel *mk, float *y, const float *x, const ck_tensor *W, const float *bias,
                    size_t T, int n_threads) {
    const float *b[1] = {bias};
    return ck_cpu_gemm_run_n(mk, 1, &y, x, &W, b, T, n_threads);
}
