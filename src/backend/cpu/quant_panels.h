/* quant_panels.h — the parallel driver shared by the whole-matmul quantized kernels that pack their
 * operands (quant_gemm_vnni.c, quant_gemm_vnni_k.c). A kernel describes itself (its register tile, the
 * bytes of a packed token and of a packed panel of weight rows, and three functions); the driver
 * quantizes and packs every token once per call (the tokens that pad the last tile are zeros), splits the
 * weight rows over the threads in units of 16, and has each thread pack its rows a panel at a time and
 * multiply each panel with every tile of tokens. */
#ifndef CK_BACKEND_CPU_QUANT_PANELS_H
#define CK_BACKEND_CPU_QUANT_PANELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_qpanels {
    size_t pr, pt;    /* register tile: weight rows x tokens */
    size_t xq_bytes;  /* a token's quantized activation row */
    size_t xp_bytes;  /* a token's packed row */
    size_t wp_bytes;  /* a packed panel of pr weight rows */
    const void *ctx;  /* the kernel's own parameters */
    /* quantize x (one token) into xq and pack it into xp */
    void (*pack_token)(const void *ctx, uint8_t *xp, uint8_t *xq, const float *x);
    /* pack weight rows [j, j + pr) into wp, rows at or past `end` as zeros */
    void (*pack_panel)(const void *ctx, uint8_t *wp, size_t j, size_t end);
    /* y[t * ys + r] (r < nr, t < nt) for the panel wp and the packed tokens xp (xs bytes apart), + bias[r] */
    void (*tile)(const void *ctx, float *y, size_t ys, const uint8_t *wp, const uint8_t *xp, size_t xs, size_t nr,
                 size_t nt, const float *bias);
} ck_qpanels;

/* y[T, n_out] for the activations x[T, n_in] (bias may be NULL); 0, or -1 when scratch memory fails. */
int ck_qpanels_run(const ck_qpanels *p, float *y, const float *x, size_t n_in, size_t n_out, const float *bias,
                   size_t T, int n_threads);

#endif
