/* quant_panels.c — the parallel driver of the packing whole-matmul quantized kernels (quant_panels.h). */
#include "backend/cpu/quant_panels.h"

#include "backend/cpu/kernels.h"

#include <omp.h>
#include <string.h>

#define ROW_UNIT 16 /* weight rows per unit of the thread split */

static _Thread_local ck_scratch xscratch; /* the caller's: quantized and packed activations */
static _Thread_local ck_scratch wscratch; /* each thread's: one packed weight panel */

int ck_qpanels_run(const ck_qpanels *p, float *y, const float *x, size_t n_in, size_t n_out, const float *bias,
                   size_t T, int n_threads) {
    size_t tp = (T + p->pt - 1) / p->pt * p->pt, xs = p->xp_bytes, xq_all = (T * p->xq_bytes + 63) / 64 * 64;
    uint8_t *s = ck_scratch_get(&xscratch, xq_all + tp * xs);
    if (!s) return -1;
    uint8_t *xq = s, *xp = s + xq_all;
    size_t units = (n_out + ROW_UNIT - 1) / ROW_UNIT;
    int nt = n_out * n_in * T > (1u << 18) ? n_threads : 1, failed = 0;
#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        size_t id = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        for (size_t t = id; t < tp; t += nth) { /* this thread's tokens (padding: zeros) */
            if (t < T) p->pack_token(p->ctx, xp + t * xs, xq + t * p->xq_bytes, x + t * n_in);
            else memset(xp + t * xs, 0, xs);
        }
#pragma omp barrier
        uint8_t *wp = ck_scratch_get(&wscratch, p->wp_bytes);
        size_t u0 = units * id / nth, u1 = units * (id + 1) / nth;
        size_t j0 = u0 * ROW_UNIT, j1 = u1 * ROW_UNIT < n_out ? u1 * ROW_UNIT : n_out;
        failed = !wp && j0 < j1;
        for (size_t j = j0; wp && j < j1; j += p->pr) {
            size_t nr = j1 - j < p->pr ? j1 - j : p->pr;
            p->pack_panel(p->ctx, wp, j, j1);
            for (size_t t = 0; t < T; t += p->pt)
                p->tile(p->ctx, y + t * n_out + j, n_out, wp, xp + t * xs, xs, nr, T - t < p->pt ? T - t : p->pt,
                        bias ? bias + j : NULL);
        }
    }
    return failed ? -1 : 0;
}
