/* quant_amx.c — the Q8_0 matmul for prefill with AMX-INT8 (TDPBSSD: int8 x int8 into int32 tiles), equal
 * bit for bit to the Q8_0 dot product of the reference (tensor/quant.h's exactness contract), so
 * ck_cpu_matmul_quant may use it for any T without breaking batch invariance.
 *
 * As in gemm_amx.c the weights are the A operand, loaded in place: the 32 int8 of block b of 16
 * consecutive rows sit rb (row bytes) apart, one 16 x 32-byte tile load. The activations are quantized
 * once (the dtype's quantize_act, as for the other path) and packed per call: Q[8b + q][t] = int8 x4
 * q of token t's block b (the B operand's quad-interleaved layout; 8 x 64-byte tile of block b and 16
 * tokens), XD[b][t] = token t's block scale; tokens padded with zeros to a multiple of 16.
 *
 * Per block b one TDPBSSD per C tile gives the exact int32 sums isum(j, t) of 32 products; the float
 * combine then follows the reference per output: acc[b % 8] += (wd(j, b) * xd(t, b)) * (float)isum,
 * blocks in increasing order, result ck_qlanes_sum(acc) + bias, without fused multiply-adds (compiled
 * with -ffp-contract=off). Register blocking 2 x 2 C tiles (32 weight rows x 32 tokens).
 *
 * Compiled with -mamx-tile -mamx-int8 and AVX-512 F/BW/VL and F16C; only called when ck_cpu_has_amx(). */
#include "backend/cpu/kernels.h"
#include "tensor/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define ROW_UNIT 16 /* weight rows per unit of the thread split */

/* Tiles 0-3: C (int32, 16 x 16; 0, 1 for the first r0 weight rows, 2, 3 for the next r1), 4-5: A (16 x 32
 * bytes), 6-7: B (8 x 64 bytes). */
static void cfg_load(int r0, int r1) {
    uint8_t rows[8] = {16, 16, 16, 16, 16, 16, 8, 8};
    uint16_t colsb[8] = {64, 64, 64, 64, 32, 32, 64, 64};
    rows[0] = rows[1] = rows[4] = (uint8_t)r0;
    rows[2] = rows[3] = rows[5] = (uint8_t)(r1 ? r1 : 16);
    ck_amx_tiles_load(rows, colsb);
}

/* acc[l][r * 16 + t] += (wd[r] * xd[t]) * (float)isum[r * 16 + t] for r < 16, l = the block's lane. */
AI void combine(float *acc, const int32_t *isum, const float *wd, __m512 xd) {
    for (int r = 0; r < 16; r++) {
        __m512 s = _mm512_mul_ps(_mm512_set1_ps(wd[r]), xd);
        __m512 f = _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_load_si512((const void *)(isum + r * 16))));
        _mm512_store_ps(acc + r * 16, _mm512_add_ps(_mm512_load_ps(acc + r * 16), f));
    }
}

/* The scales of block b of 16 weight rows (rows past nr read as 0). */
AI void scales(float *wd, const uint8_t *w, size_t rb, size_t b, size_t nr) {
    uint16_t h[16];
    for (size_t r = 0; r < 16; r++) {
        h[r] = 0;
        if (r < nr) memcpy(&h[r], w + r * rb + b * sizeof(ck_block_q8_0), 2);
    }
    _mm512_storeu_ps(wd, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h)));
}

/* y[t * ys + r] = qlanes_sum(acc[.][r * 16 + t]) + bias[r] for t < nt, r < nr: one tile's outputs. */
static void put(float *y, size_t ys, const float *acc, size_t nt, size_t nr, const float *bias) {
    for (size_t r = 0; r < nr; r++)
        for (size_t t = 0; t < nt; t++) {
            float a[CK_QLANES];
            for (int l = 0; l < CK_QLANES; l++) a[l] = acc[l * 1024 + r * 16 + t];
            y[t * ys + r] = ck_qlanes_sum(a) + (bias ? bias[r] : 0.0f);
        }
}

/* Up to 32 weight rows x up to 32 tokens (the packed Q / XD at token column t0). */
AI void block(int TWO_A, int TWO_B, float *y, size_t ys, const uint8_t *w, size_t rb, size_t nb, const uint8_t *Q,
              const float *XD, size_t ts, size_t nr, size_t nt, const float *bias, float *acc) {
    _Alignas(64) int32_t isum[4][256];
    _Alignas(64) float wd[2][16];
    size_t qs = ts * 4; /* bytes between rows of Q */
    /* acc[l * 1024 + tile * 256 + r * 16 + t]: lane l of tile (A a, B g) = 2a + g */
    memset(acc, 0, CK_QLANES * 1024 * sizeof(float));
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *a = w + b * sizeof(ck_block_q8_0) + 2, *q = Q + b * 8 * qs;
        _tile_zero(0);
        _tile_loadd(4, a, rb);
        _tile_loadd(6, q, qs);
        _tile_dpbssd(0, 4, 6);
        _tile_stored(0, isum[0], 64);
        if (TWO_B) {
            _tile_zero(1);
            _tile_loadd(7, q + 64, qs);
            _tile_dpbssd(1, 4, 7);
            _tile_stored(1, isum[1], 64);
        }
        if (TWO_A) {
            _tile_zero(2);
            _tile_loadd(5, a + 16 * rb, rb);
            _tile_dpbssd(2, 5, 6);
            _tile_stored(2, isum[2], 64);
            if (TWO_B) {
                _tile_zero(3);
                _tile_dpbssd(3, 5, 7);
                _tile_stored(3, isum[3], 64);
            }
        }
        float *al = acc + (b % CK_QLANES) * 1024;
        scales(wd[0], w, rb, b, nr);
        __m512 x0 = _mm512_loadu_ps(XD + b * ts), x1 = TWO_B ? _mm512_loadu_ps(XD + b * ts + 16) : x0;
        combine(al, isum[0], wd[0], x0);
        if (TWO_B) combine(al + 256, isum[1], wd[0], x1);
        if (TWO_A) {
            scales(wd[1], w + 16 * rb, rb, b, nr - 16);
            combine(al + 512, isum[2], wd[1], x0);
            if (TWO_B) combine(al + 768, isum[3], wd[1], x1);
        }
    }
    size_t r0 = nr < 16 ? nr : 16, t0 = nt < 16 ? nt : 16;
    put(y, ys, acc, t0, r0, bias);
    if (TWO_B) put(y + 16 * ys, ys, acc + 256, nt - 16, r0, bias);
    if (TWO_A) put(y + 16, ys, acc + 512, t0, nr - 16, bias ? bias + 16 : NULL);
    if (TWO_A && TWO_B) put(y + 16 * ys + 16, ys, acc + 768, nt - 16, nr - 16, bias ? bias + 16 : NULL);
}

/* Weight rows [j0, j1) of y = xq . W^T, from the packed activations. */
static void rows_q8_0(float *y, size_t ys, const uint8_t *w, size_t rb, size_t n, const uint8_t *Q, const float *XD,
                      size_t T, size_t j0, size_t j1, const float *bias, float *acc) {
    size_t nb = n / CK_QK, ts = (T + 15) / 16 * 16;
    int cfg = 16;
    cfg_load(16, 16);
    for (size_t j = j0; j < j1; j += 32) {
        size_t nr = j1 - j < 32 ? j1 - j : 32;
        if (nr != 32 && (int)nr != cfg) cfg_load(nr < 16 ? (int)nr : 16, nr > 16 ? (int)nr - 16 : 0), cfg = (int)nr;
        const uint8_t *wp = w + j * rb;
        const float *bj = bias ? bias + j : NULL;
        for (size_t t = 0; t < T; t += 32) {
            size_t nt = T - t < 32 ? T - t : 32;
            float *yo = y + t * ys + j;
            const uint8_t *q = Q + t * 4;
            const float *xd = XD + t;
            if (nr > 16 && nt > 16) block(1, 1, yo, ys, wp, rb, nb, q, xd, ts, nr, nt, bj, acc);
            else if (nr > 16) block(1, 0, yo, ys, wp, rb, nb, q, xd, ts, nr, nt, bj, acc);
            else if (nt > 16) block(0, 1, yo, ys, wp, rb, nb, q, xd, ts, nr, nt, bj, acc);
            else block(0, 0, yo, ys, wp, rb, nb, q, xd, ts, nr, nt, bj, acc);
        }
    }
    _tile_release(); /* tile state back to its init state: cheap context switches (and VM exits) */
}

static _Thread_local ck_scratch scratch; /* the quantized rows */

int ck_qmatmul_q8_0_amx(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T, int n_threads) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(CK_Q8_0);
    size_t n_out = W->shape[0], n = W->shape[1], nb = n / CK_QK, ts = (T + 15) / 16 * 16, rb, xb;
    if (W->dtype != CK_Q8_0 || W->ndim != 2 || n % CK_QK || ck_dtype_row_bytes(CK_Q8_0, n, &rb) != 0) return -1;
    xb = tr->act_row_bytes(n);
    /* scratch: the quantized rows, Q (nb * 8 rows of ts int8 x4), XD (nb rows of ts floats) */
    size_t xq_bytes = (T * xb + 63) / 64 * 64, q_bytes = nb * 8 * ts * 4, xd_bytes = nb * ts * 4;
    uint8_t *s = ck_scratch_get(&scratch, xq_bytes + q_bytes + xd_bytes);
    if (!s) return -1;
    uint8_t *xq = s, *Q = s + xq_bytes;
    float *XD = (float *)(Q + q_bytes);
    size_t units = (n_out + ROW_UNIT - 1) / ROW_UNIT;
    int nt = n_out * n * T > (1u << 18) ? n_threads : 1;
#pragma omp parallel num_threads(nt)
    {
        size_t id = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        size_t g0 = (ts / 16) * id / nth, g1 = (ts / 16) * (id + 1) / nth;
        const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                               _mm512_set1_epi32((int)ts));
        for (size_t t = g0 * 16; t < g1 * 16; t++) { /* this thread's token groups: quantize and pack */
            if (t < T) {
                uint8_t *r = xq + t * xb;
                tr->quantize_act(r, x + t * n, n);
                const float *xd = (const float *)r;
                const int32_t *qv = (const int32_t *)(xd + nb);
                for (size_t b = 0; b < nb; b++) XD[b * ts + t] = xd[b];
                for (size_t i = 0; i < nb * 8; i += 16) {
                    __mmask16 m = (__mmask16)(nb * 8 - i >= 16 ? 0xffffu : (1u << (nb * 8 - i)) - 1);
                    _mm512_mask_i32scatter_epi32((int32_t *)Q + i * ts + t, m, idx, _mm512_maskz_loadu_epi32(m, qv + i), 4);
                }
            } else {
                for (size_t b = 0; b < nb; b++) XD[b * ts + t] = 0.0f;
                for (size_t i = 0; i < nb * 8; i++) ((int32_t *)Q)[i * ts + t] = 0;
            }
        }
#pragma omp barrier
        _Alignas(64) float acc[CK_QLANES * 1024];
        size_t u0 = units * id / nth, u1 = units * (id + 1) / nth;
        size_t j0 = u0 * ROW_UNIT, j1 = u1 * ROW_UNIT < n_out ? u1 * ROW_UNIT : n_out;
        if (j0 < j1) rows_q8_0(y, n_out, W->data, rb, n, Q, XD, T, j0, j1, bias, acc);
    }
    return 0;
}
#endif /* __x86_64__ */
