/* gemm_amx.c — the bf16 fast path for bf16 weights with AMX (TDPBF16PS: a 16 x 32 bf16 tile times a
 * 32 x 16 bf16 tile into a 16 x 16 f32 tile per instruction).
 *
 * It computes C^T = W . X^T so that the weights are the A operand: 16 weight rows x 32 elements load
 * straight from the row-major weight with one tile load (stride = row bytes; no repacked copy). The
 * activations of the whole call are packed once into the B operand's pair-interleaved layout: the
 * packed batch is a matrix P of 32-bit pairs, P[p][t] = (x_t[2p], x_t[2p + 1]) rounded to bf16 (nearest
 * even, like VCVTNE2PS2BF16), p < 16 * ceil(n / 32) and t < T rounded up to 16, zero where p or t is
 * past the data; the B tile of k-chunk c (32 elements) and tokens 16g..16g+15 is the 16 x 64-byte
 * block at row 16c, column 16g of P.
 *
 * Register blocking: 2 x 2 output tiles (32 weight rows x 32 tokens: 4 C tiles, 2 A tiles, 2 B tiles,
 * the 8 tile registers), over all of k in increasing order, then the C tiles are stored and written out
 * transposed with the bias. Weight panels of 32 rows outer (the panel stays in L2 for the token
 * groups), token groups inner. A k tail (n % 32) goes through a zero-padded copy of the last chunk of
 * the panel's rows (so no load reads past the weight); a row tail (a weight's last panel) through a
 * tile configuration of fewer rows.
 *
 * Batch invariance: every output (t, j) is one f32 element of a C tile that starts at zero and receives
 * the same TDPBF16PS sequence (k-chunks in increasing order, zero padding past n), whatever T, the tile
 * it sits in, or the number of rows; each tile element depends only on its own A row and B column. The
 * exact rounding of TDPBF16PS inside a 32-element chunk is not a simple scalar model (measured: not the
 * SDM's sequential pair accumulation), so this path is tested against the bf16 fast path's definition
 * (ck_mm_ref_bf16_fast) within a tolerance, and for bit equality across batch shapes.
 *
 * Compiled with -mamx-tile -mamx-bf16 -mamx-int8 and AVX-512 (BF16, VL, BW); only called when
 * ck_cpu_has_amx() (amx.c) says the CPU and the OS allow it. */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__) /* other architectures build this file empty; kernels.c never names it */
#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* Tiles 0-3: C (0, 1 for the first 16 weight rows, 2, 3 for the next), 4-5: A, 6-7: B; r0 / r1 weight
 * rows in the first / second A tile (16 but in a weight's last panel). Tile state is per thread; every
 * kernel call loads its configuration. */
static void cfg_load(int r0, int r1) {
    uint8_t rows[8] = {16, 16, 16, 16, 16, 16, 16, 16};
    uint16_t colsb[8] = {64, 64, 64, 64, 64, 64, 64, 64};
    rows[0] = rows[1] = rows[4] = (uint8_t)r0;
    rows[2] = rows[3] = rows[5] = (uint8_t)(r1 ? r1 : 16);
    ck_amx_tiles_load(rows, colsb);
}

static size_t pad16(size_t T) { return (T + 15) / 16 * 16; }
static size_t pairs_of(size_t n) { return (n + 31) / 32 * 16; }

static size_t batch_bytes(size_t n, size_t T) { return pairs_of(n) * pad16(T) * 4; }

/* Token rows [t0, t1) of x into P (rows past T up to t1's group end are zero when t1 == T). */
static void pack_batch(void *dst, const float *x, size_t n, size_t T, size_t t0, size_t t1) {
    size_t np = pairs_of(n), ts = pad16(T);
    uint32_t *P = dst;
    const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32((int)ts));
    for (size_t t = t0; t < t1; t++) {
        const float *r = x + t * n;
        for (size_t i = 0; i < np * 2; i += 32) {
            size_t k = n > i ? n - i : 0;
            __mmask16 lo = (__mmask16)(k >= 16 ? 0xffffu : (1u << k) - 1);
            __mmask16 hi = (__mmask16)(k >= 32 ? 0xffffu : k > 16 ? (1u << (k - 16)) - 1 : 0);
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, r + i + 16), _mm512_maskz_loadu_ps(lo, r + i));
            _mm512_i32scatter_epi32(P + (i / 2) * ts + t, idx, (__m512i)v, 4);
        }
    }
    if (t1 == T)
        for (size_t p = 0; p < np; p++)
            for (size_t t = T; t < ts; t++) P[p * ts + t] = 0;
}

/* y[t * ys + r] = c[r * 16 + t] (+ bias[r]) for t < nt, r < nr: one C tile written out transposed. */
AI void put(float *y, size_t ys, const float *c, size_t nt, size_t nr, const float *bias) {
    const __m512i ri = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(16));
    __mmask16 m = (__mmask16)(nr >= 16 ? 0xffffu : (1u << nr) - 1);
    __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias) : _mm512_setzero_ps();
    for (size_t t = 0; t < nt; t++)
        _mm512_mask_storeu_ps(y + t * ys, m, _mm512_add_ps(_mm512_i32gather_ps(ri, c + t, 4), b));
}

/* One block of up to 32 weight rows x up to 32 tokens over all nk chunks: chunks c < nkf straight from
 * the weight (rows ws bytes apart), the last one (when n % 32) from tail (rows 64 bytes apart); B from P
 * (rows pstride apart). TWO_A / TWO_B: the second A / B tile is used. pf: the next panel (its rows are
 * contiguous), prefetched into L2 over the chunks, pf_lines cache lines (decode reads weights from
 * memory in 32 strided streams, more than the hardware prefetcher follows). */
AI void block(int TWO_A, int TWO_B, const uint8_t *w, size_t ws, size_t nkf, const uint8_t *tail, const uint8_t *P,
              size_t pstride, size_t nk, float *cbuf, const uint8_t *pf, size_t pf_lines) {
    _tile_zero(0);
    if (TWO_B) _tile_zero(1);
    if (TWO_A) _tile_zero(2);
    if (TWO_A && TWO_B) _tile_zero(3);
    for (size_t c = 0; c < nk; c++) {
        const uint8_t *a = c < nkf ? w + c * 64 : tail;
        size_t as = c < nkf ? ws : 64;
        const uint8_t *b = P + c * 16 * pstride;
        if (pf)
            for (size_t l = c * pf_lines / nk, e = (c + 1) * pf_lines / nk; l < e; l++)
                _mm_prefetch((const char *)pf + l * 64, _MM_HINT_T1);
        _tile_loadd(4, a, as); /* every load first, then the products */
        if (TWO_A) _tile_loadd(5, a + 16 * as, as);
        _tile_loadd(6, b, pstride);
        if (TWO_B) _tile_loadd(7, b + 64, pstride);
        _tile_dpbf16ps(0, 4, 6);
        if (TWO_B) _tile_dpbf16ps(1, 4, 7);
        if (TWO_A) _tile_dpbf16ps(2, 5, 6);
        if (TWO_A && TWO_B) _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, cbuf, 64);
    if (TWO_B) _tile_stored(1, cbuf + 256, 64);
    if (TWO_A) _tile_stored(2, cbuf + 512, 64);
    if (TWO_A && TWO_B) _tile_stored(3, cbuf + 768, 64);
}

static void gemm(float *y, size_t ys, const void *a, size_t as, const void *w, size_t ws, size_t n, size_t T,
                 size_t rows, const float *bias) {
    (void)as;
    size_t pstride = pad16(T) * 4, nk = (n + 31) / 32, nkf = n / 32;
    const uint8_t *P = a, *W = w;
    _Alignas(64) uint8_t tail[32 * 64]; /* the last chunk of n % 32 elements of each panel row, zero-padded */
    _Alignas(64) float cbuf[4 * 256];
    int cfg = 16;
    cfg_load(16, 16);
    for (size_t j = 0; j < rows; j += 32) {
        size_t nr = rows - j < 32 ? rows - j : 32, r0 = nr < 16 ? nr : 16;
        const uint8_t *wp = W + j * ws;
        if (nr != 32 && (int)nr != cfg) cfg_load((int)r0, (int)(nr - r0)), cfg = (int)nr; /* a weight's last panel */
        if (nk > nkf) {
            memset(tail, 0, sizeof tail);
            for (size_t r = 0; r < nr; r++) memcpy(tail + r * 64, wp + r * ws + nkf * 64, (n - nkf * 32) * 2);
        }
        /* the next panel's bytes, prefetched during the first token group */
        size_t next = rows - j > 32 ? (rows - j - 32 < 32 ? rows - j - 32 : 32) : 0;
        const uint8_t *pf = next ? wp + 32 * ws : NULL;
        size_t pf_lines = (next * ws + 63) / 64;
        for (size_t t = 0; t < T; t += 32) {
            size_t nt = T - t < 32 ? T - t : 32, t0 = nt < 16 ? nt : 16;
            const uint8_t *pb = P + t * 4, *p = t ? NULL : pf;
            int two_a = nr > 16, two_b = nt > 16;
            if (two_a && two_b) block(1, 1, wp, ws, nkf, tail, pb, pstride, nk, cbuf, p, pf_lines);
            else if (two_a) block(1, 0, wp, ws, nkf, tail, pb, pstride, nk, cbuf, p, pf_lines);
            else if (two_b) block(0, 1, wp, ws, nkf, tail, pb, pstride, nk, cbuf, p, pf_lines);
            else block(0, 0, wp, ws, nkf, tail, pb, pstride, nk, cbuf, p, pf_lines);
            float *yo = y + t * ys + j;
            const float *b = bias ? bias + j : NULL;
            put(yo, ys, cbuf, t0, r0, b);
            if (two_b) put(yo + 16 * ys, ys, cbuf + 256, nt - 16, r0, b);
            if (two_a) put(yo + 16, ys, cbuf + 512, t0, nr - 16, b ? b + 16 : NULL);
            if (two_a && two_b) put(yo + 16 * ys + 16, ys, cbuf + 768, nt - 16, nr - 16, b ? b + 16 : NULL);
        }
    }
    _tile_release(); /* tile state back to its init state: cheap context switches (and VM exits) */
}

const ck_mm_kernel ck_mm_amx_bf16_fast = {.gemm = gemm, .act_batch_bytes = batch_bytes, .pack_batch = pack_batch};

#endif /* __x86_64__ */
