/* quant_gemm_vnni.c — the Q8_0 and Q4_0 matmul for prefill with AVX512-VNNI (CPUs without AMX), equal bit
 * for bit to the reference dot products (tensor/quant.h's exactness contract), so ck_cpu_matmul_quant may use
 * it for any T without breaking batch invariance.
 *
 * One VPDPBUSD on 512 bits adds four u8 x s8 products into each of 16 int32 lanes. Both operands are
 * packed so that lane l belongs to block 16 g + l of a "group" g of 16 blocks: step s (0..7) of a group
 * holds bytes 4s..4s+3 of each of its 16 blocks. After the 8 steps every lane holds its block's whole
 * integer sum, with no horizontal reduction. The weights are packed per panel of PR rows, made unsigned
 * (w ^ 0x80 = w + 128, as VPDPBUSD wants them; Q4_0's levels q = w + 8 are unsigned already), with their
 * f16 scales as floats; the quantized activations are packed once per call, with each block's -128 (Q4_0:
 * -8) x (sum of its 32 values), which starts the accumulator so that it ends at the exact sum of w x x
 * (|sum| < 2^21).
 *
 * The float combine is the reference's: f_b = (wd_b * xd_b) * (float)isum_b, lane b % 8 of the eight
 * accumulators gets block 16 g + k, then 16 g + 8 + k (blocks in increasing order), padding blocks of a
 * last partial group are masked out, and the result is ck_qlanes_sum(acc) + bias, without fused
 * multiply-adds (compiled with -ffp-contract=off). Register tile: PR weight rows x PT tokens.
 *
 * Compiled with AVX-512 F/BW/VL/VNNI and F16C; only called when ck_cpu_has_vnni(). */
#include "backend/cpu/kernels.h"
#include "backend/cpu/quant_panels.h"
#include "backend/cpu/quant_vnni.h"
#include "tensor/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define PR VNNI_PR
#define PT VNNI_PT
#define GB 16          /* blocks of a group: the int32 lanes of a 512-bit vector */
#define QG (GB * CK_QK) /* quant bytes of a group: 8 steps of 64 */

/* A packed weight row, per group: QG unsigned quants, then GB float scales. */
#define WG_BYTES (QG + GB * 4)
/* A packed activation row, per group: QG int8 quants, GB int32 start values, GB float scales. */
#define XG_BYTES (QG + 2 * GB * 4)

typedef struct q32 { /* the call's parameters (ck_qpanels' ctx) */
    const uint8_t *w;  /* weight rows, rb bytes each */
    size_t rb, n, nb, ng; /* n values: nb blocks in ng groups */
    ck_dtype dt;
} q32;

/* Packs the 32-byte block values of up to 16 blocks (src[b] for b < nb, zeros after) into the group
 * layout: out[64 s + 4 l + i] = block l's byte 4 s + i (a 16 x 8 transpose of 32-bit words: blocks in
 * pairs per vector, then four-block by four-word tiles, then 128-bit chunks), made unsigned (^ 0x80,
 * padding included: a zero weight) when flip. */
static void pack_group(uint8_t *out, const int8_t *const *src, size_t nb, uint8_t flip) {
    static const int8_t zero[CK_QK];
    __m512i r[8], a[4][2];
    for (size_t k = 0; k < 8; k++) { /* r[k]: words 0-7 of block 2k, then of block 2k + 1 */
        const int8_t *b0 = 2 * k < nb ? src[2 * k] : zero, *b1 = 2 * k + 1 < nb ? src[2 * k + 1] : zero;
        r[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b0)),
                                  _mm256_loadu_si256((const __m256i *)b1), 1);
    }
    /* a[m][h], element 4 s' + b' = word 4 h + s' of block 4 m + b' (b' < 2 from r[2m], else r[2m + 1]) */
    for (int h = 0; h < 2; h++) {
        int idx[16];
        for (int e = 0; e < 16; e++) {
            int sw = 4 * h + e / 4, bl = e % 4;
            idx[e] = (bl < 2 ? 0 : 16) + 8 * (bl % 2) + sw;
        }
        __m512i vi = _mm512_loadu_si512(idx);
        for (int m = 0; m < 4; m++) a[m][h] = _mm512_permutex2var_epi32(r[2 * m], vi, r[2 * m + 1]);
    }
    /* word s of blocks 0-15 = chunk s % 4 of a[0][h], a[1][h], a[2][h], a[3][h] (h = s / 4) */
    const __m512i f = _mm512_set1_epi8(flip ? (char)0x80 : 0);
    for (int h = 0; h < 2; h++) {
        __m512i x01 = _mm512_shuffle_i32x4(a[0][h], a[1][h], 0x44), y01 = _mm512_shuffle_i32x4(a[2][h], a[3][h], 0x44);
        __m512i x23 = _mm512_shuffle_i32x4(a[0][h], a[1][h], 0xee), y23 = _mm512_shuffle_i32x4(a[2][h], a[3][h], 0xee);
        uint8_t *o = out + 64 * 4 * h; /* x01: chunks 0, 1 of a[0], a[1]; y01 of a[2], a[3]; x23, y23: 2, 3 */
        _mm512_storeu_si512(o, _mm512_xor_si512(_mm512_shuffle_i32x4(x01, y01, 0x88), f));
        _mm512_storeu_si512(o + 64, _mm512_xor_si512(_mm512_shuffle_i32x4(x01, y01, 0xdd), f));
        _mm512_storeu_si512(o + 128, _mm512_xor_si512(_mm512_shuffle_i32x4(x23, y23, 0x88), f));
        _mm512_storeu_si512(o + 192, _mm512_xor_si512(_mm512_shuffle_i32x4(x23, y23, 0xdd), f));
    }
}

/* PR weight rows [j, j + PR) (rows past n_out as zeros) into wp: ng groups per row. Q8_0 values are made
 * unsigned (w ^ 0x80); Q4_0's levels (0..15, nibbles unpacked) are already. */
static void pack_weights(const void *ctx, uint8_t *wp, size_t j, size_t n_out) {
    const q32 *k = ctx;
    const uint8_t *w = k->w;
    size_t rb = k->rb, nb = k->nb, ng = k->ng;
    ck_dtype dt = k->dt;
    int8_t lv[GB][CK_QK];
    for (size_t r = 0; r < PR; r++)
        for (size_t g = 0; g < ng; g++) {
            uint8_t *o = wp + (r * ng + g) * WG_BYTES;
            float *wd = (float *)(o + QG);
            const int8_t *src[GB];
            size_t n = nb - g * GB < GB ? nb - g * GB : GB;
            if (j + r >= n_out) n = 0;
            for (size_t l = 0; l < GB; l++) {
                src[l] = NULL, wd[l] = 0.0f;
                if (l >= n) continue;
                if (dt == CK_Q8_0) {
                    const ck_block_q8_0 *b = (const ck_block_q8_0 *)(w + (j + r) * rb) + g * GB + l;
                    src[l] = b->qs, wd[l] = ck_f16_to_f32(b->d);
                } else {
                    const ck_block_q4_0 *b = (const ck_block_q4_0 *)(w + (j + r) * rb) + g * GB + l;
                    __m128i q = _mm_loadu_si128((const __m128i *)b->qs), m4 = _mm_set1_epi8(0x0f);
                    _mm_storeu_si128((__m128i *)lv[l], _mm_and_si128(q, m4)); /* values 0-15: low nibbles */
                    _mm_storeu_si128((__m128i *)(lv[l] + 16), _mm_and_si128(_mm_srli_epi16(q, 4), m4));
                    src[l] = lv[l], wd[l] = ck_f16_to_f32(b->d);
                }
            }
            pack_group(o, src, n, dt == CK_Q8_0);
        }
}

/* A token's row x quantized into xq (Q8 layout: nb floats, then nb x 32 int8) and packed into xp: ng
 * groups, each block with its start value -off x (the sum of its values): off = 128 for Q8_0 (the
 * weights' flip), 8 for Q4_0 (its levels are q + 8). */
static void pack_token(const void *ctx, uint8_t *xp, uint8_t *xq, const float *x) {
    const q32 *k = ctx;
    size_t nb = k->nb, ng = k->ng;
    uint8_t off = k->dt == CK_Q8_0 ? 0x80 : 0x08;
    ck_quantize_q8_vnni(xq, x, k->n);
    const float *xd = (const float *)xq;
    const int8_t *q = (const int8_t *)(xd + nb);
    const __m512i c80 = _mm512_set1_epi8((char)off);
    for (size_t g = 0; g < ng; g++) {
        uint8_t *o = xp + g * XG_BYTES;
        const int8_t *src[GB];
        size_t n = nb - g * GB < GB ? nb - g * GB : GB;
        for (size_t l = 0; l < GB; l++) src[l] = l < n ? q + (g * GB + l) * CK_QK : NULL;
        pack_group(o, src, n, 0);
        __m512i nc = _mm512_setzero_si512();
        for (int s = 0; s < 8; s++) nc = _mm512_dpbusd_epi32(nc, c80, _mm512_loadu_si512(o + 64 * s));
        _mm512_storeu_si512(o + QG, _mm512_sub_epi32(_mm512_setzero_si512(), nc));
        float *d = (float *)(o + QG + GB * 4);
        for (size_t l = 0; l < GB; l++) d[l] = l < n ? xd[g * GB + l] : 0.0f;
    }
}

/* y[t * ys + r] for the PR x PT tile: packed weight rows wp, packed tokens xp (xs bytes apart). */
static void tile(const void *ctx, float *y, size_t ys, const uint8_t *wp, const uint8_t *xp, size_t xs, size_t nr,
                 size_t nt, const float *bias) {
    size_t nb = ((const q32 *)ctx)->nb, ng = ((const q32 *)ctx)->ng;
    _Alignas(64) float acc[PR][PT][CK_QLANES];
    memset(acc, 0, sizeof acc);
    for (size_t g = 0; g < ng; g++) {
        __m512i a[PR][PT];
        const uint8_t *x[PT], *w[PR];
        for (int t = 0; t < PT; t++) x[t] = xp + t * xs + g * XG_BYTES;
        for (int r = 0; r < PR; r++) w[r] = wp + (r * ng + g) * WG_BYTES;
        for (int t = 0; t < PT; t++) {
            __m512i nc = _mm512_loadu_si512(x[t] + QG);
            for (int r = 0; r < PR; r++) a[r][t] = nc;
        }
        vnni_steps(a, w, x, 8);
        size_t n = nb - g * GB < GB ? nb - g * GB : GB;
        __mmask8 mlo = (__mmask8)(n >= 8 ? 0xff : (1u << n) - 1), mhi = (__mmask8)(n > 8 ? (1u << (n - 8)) - 1 : 0);
        for (int r = 0; r < PR; r++) {
            __m512 wd = _mm512_loadu_ps(w[r] + QG);
            for (int t = 0; t < PT; t++) {
                __m512 f = _mm512_mul_ps(_mm512_mul_ps(wd, _mm512_loadu_ps(x[t] + QG + GB * 4)), _mm512_cvtepi32_ps(a[r][t]));
                __m256 v = _mm256_load_ps(acc[r][t]);
                v = _mm256_mask_add_ps(v, mlo, v, _mm512_castps512_ps256(f));
                v = _mm256_mask_add_ps(v, mhi, v, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)));
                _mm256_store_ps(acc[r][t], v);
            }
        }
    }
    for (size_t r = 0; r < nr; r++)
        for (size_t t = 0; t < nt; t++) y[t * ys + r] = ck_qlanes_sum(acc[r][t]) + (bias ? bias[r] : 0.0f);
}

int ck_qmatmul_q32_vnni(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T, int n_threads) {
    ck_dtype dt = W->dtype;
    size_t n_out = W->shape[0], n = W->shape[1], nb = n / CK_QK, ng = (nb + GB - 1) / GB, rb;
    if ((dt != CK_Q8_0 && dt != CK_Q4_0) || W->ndim != 2 || n % CK_QK || ck_dtype_row_bytes(dt, n, &rb) != 0) return -1;
    q32 k = {.w = W->data, .rb = rb, .n = n, .nb = nb, .ng = ng, .dt = dt};
    ck_qpanels p = {.pr = PR, .pt = PT, .xq_bytes = ck_dtype_traits_of(dt)->act_row_bytes(n), .xp_bytes = ng * XG_BYTES,
                    .wp_bytes = PR * ng * WG_BYTES, .ctx = &k, .pack_token = pack_token, .pack_panel = pack_weights,
                    .tile = tile};
    return ck_qpanels_run(&p, y, x, n, n_out, bias, T, n_threads);
}
#endif /* __x86_64__ */
