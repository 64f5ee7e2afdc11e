/* quant_gemm_vnni_k.c — the Q4_K / Q5_K and Q6_K matmuls for prefill with AVX512-VNNI, equal bit for bit to the
 * reference dot products (tensor/quant.h's exactness contract), so ck_cpu_matmul_quant may use it for any
 * T without breaking batch invariance.
 *
 * As in quant_gemm_vnni.c, one 512-bit VPDPBUSD adds four u8 x s8 products into each of 16 int32 lanes,
 * and both operands are packed so that lane l belongs to one sub-block of 32 values: a "group" is two
 * super-blocks (lanes 0-7: the sub-blocks of the first, 8-15: of the second), step s (0..7) holds bytes
 * 4s..4s+3 of each sub-block, and after the 8 steps every lane holds its sub-block's exact level . x sum
 * (the levels 0..31 are unsigned already). Then per lane: times the sub-block's scale, and the sub-block's
 * min times its activation sum (packed with the activations), both int32 multiplies; the eight lanes of a
 * super-block are summed (a transposing reduction: 16 tile entries x 2 super-blocks in two vectors), which
 * gives each super-block's exact isum and msum.
 *
 * The float combine is the reference's, per super-block b: (xd * d) * isum - (xd * dmin) * msum into lane
 * b % 8 of the accumulators, blocks in increasing order (a missing second super-block of the last group is
 * masked out), and ck_qlanes_sum + bias; no fused multiply-adds (-ffp-contract=off).
 * Register tile: PR = 4 weight rows x PT = 4 tokens. Compiled with AVX-512 F/BW/VL/VNNI and F16C; only
 * called when ck_cpu_has_vnni(). */
#include "backend/cpu/kernels.h"
#include "backend/cpu/quant_panels.h"
#include "backend/cpu/quant_vnni.h"
#include "tensor/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define PR VNNI_PR
#define PT VNNI_PT
#define GL 16               /* sub-blocks of a group: the int32 lanes of a 512-bit vector */
#define GE (GL * 32)        /* values (and level / quant bytes) of a group: two super-blocks */

/* A packed weight row, per group: GE unsigned levels, GL int32 scales, GL int32 mins, then the two
 * super-blocks' d and dmin as floats (d0 d1 dmin0 dmin1), padded to 64 bytes. */
#define WG_BYTES (GE + 2 * GL * 4 + 64)
/* A packed activation row, per group: GE int8 quants, GL int32 sub-block sums, the two d's, padded. */
#define XG_BYTES (GE + GL * 4 + 64)

typedef struct qk { /* the call's parameters (ck_qpanels' ctx) */
    const uint8_t *w;      /* weight rows, rb bytes each */
    size_t rb, n, nsb, ng; /* n values: nsb super-blocks in ng groups */
    ck_dtype dt;
} qk;

/* 32 values v of sub-block l into the group layout: out[64 s + 4 l + i] = v[4 s + i]. */
static void put_sub(uint8_t *out, size_t l, const uint8_t *v) {
    for (size_t s = 0; s < 8; s++) memcpy(out + 64 * s + 4 * l, v + 4 * s, 4);
}

/* The 32 levels of sub-block j of a Q4_K / Q5_K block (qh NULL for Q4_K). */
static void levels(uint8_t *v, const uint8_t *qs, const uint8_t *qh, int j) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
    __m256i l = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0f));
    if (qh) {
        __m256i h = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)qh), j), _mm256_set1_epi8(1));
        l = _mm256_or_si256(l, _mm256_slli_epi16(h, 4));
    }
    _mm256_storeu_si256((__m256i *)v, l);
}

/* PR weight rows [j, j + PR) (rows at or past n_out as zeros) into wp: ng groups per row. */
static void pack_weights(const void *ctx, uint8_t *wp, size_t j, size_t n_out) {
    const qk *k0 = ctx;
    const uint8_t *w = k0->w;
    size_t rb = k0->rb, nsb = k0->nsb, ng = k0->ng;
    ck_dtype dt = k0->dt;
    memset(wp, 0, PR * ng * WG_BYTES);
    for (size_t r = 0; r < PR && j + r < n_out; r++)
        for (size_t b = 0; b < nsb; b++) {
            uint8_t *o = wp + (r * ng + b / 2) * WG_BYTES, v[32];
            int32_t *sc = (int32_t *)(o + GE), *mn = sc + GL;
            float *dd = (float *)(mn + GL);
            const uint8_t *scales, *qs, *qh = NULL;
            uint16_t d, dmin;
            if (dt == CK_Q4_K) {
                const ck_block_q4_k *k = (const ck_block_q4_k *)(w + (j + r) * rb) + b;
                scales = k->scales, qs = k->qs, d = k->d, dmin = k->dmin;
            } else {
                const ck_block_q5_k *k = (const ck_block_q5_k *)(w + (j + r) * rb) + b;
                scales = k->scales, qs = k->qs, qh = k->qh, d = k->d, dmin = k->dmin;
            }
            for (int s = 0; s < 8; s++) {
                uint8_t sv, mv;
                ck_q4k_scale_min(s, scales, &sv, &mv);
                levels(v, qs, qh, s);
                put_sub(o, 8 * (b % 2) + (size_t)s, v);
                sc[8 * (b % 2) + s] = sv, mn[8 * (b % 2) + s] = mv;
            }
            dd[b % 2] = ck_f16_to_f32(d), dd[2 + b % 2] = ck_f16_to_f32(dmin);
        }
}

/* A token's row x quantized into xq (Q8K layout: nsb floats, nsb x 256 int8, 16-sums) and packed into xp:
 * ng groups. */
static void pack_token(const void *ctx, uint8_t *xp, uint8_t *xq, const float *x) {
    size_t nsb = ((const qk *)ctx)->nsb, ng = ((const qk *)ctx)->ng;
    ck_quantize_q8k_vnni(xq, x, ((const qk *)ctx)->n);
    const float *xd = (const float *)xq;
    const int8_t *q = (const int8_t *)(xd + nsb);
    const int16_t *bs = (const int16_t *)(q + nsb * CK_QKK);
    memset(xp, 0, ng * XG_BYTES);
    for (size_t b = 0; b < nsb; b++) {
        uint8_t *o = xp + (b / 2) * XG_BYTES;
        int32_t *sum = (int32_t *)(o + GE);
        for (size_t s = 0; s < 8; s++) {
            put_sub(o, 8 * (b % 2) + s, (const uint8_t *)(q + b * CK_QKK + 32 * s));
            sum[8 * (b % 2) + s] = bs[16 * b + 2 * s] + bs[16 * b + 2 * s + 1];
        }
        ((float *)(sum + GL))[b % 2] = xd[b];
    }
}

/* r[k] (k < 4) = the sums of each 128-bit quarter of v[k]: quarter c of the result holds, at element k,
 * the sum of quarter c of v[k]. */
static inline __m512i quarter_sums4(const __m512i v[4]) {
    __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
    __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

/* The super-block sums of eight vectors v[k] (lanes 0-7: super-block 0, 8-15: super-block 1): quarter 0
 * of the result = super-block 0 of v[0..3], quarter 1 = super-block 1 of v[0..3], quarters 2, 3 the same
 * for v[4..7]. */
static inline __m512i superblock_sums8(const __m512i v[8]) {
    __m512i a = quarter_sums4(v), b = quarter_sums4(v + 4);
    return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x88), _mm512_shuffle_i32x4(a, b, 0xdd));
}

/* y[t * ys + r] for the PR x PT tile: packed weight rows wp, packed tokens xp (xs bytes apart). Tile
 * entry p = PT r + t; the two halves h of the tile (rows 0-1, 2-3) each make one 16-lane vector: quarter
 * 2 rr + sb = row 2 h + rr, super-block sb, element = token. */
static void tile(const void *ctx, float *y, size_t ys, const uint8_t *wp, const uint8_t *xp, size_t xs, size_t nr,
                 size_t nt, const float *bias) {
    size_t nsb = ((const qk *)ctx)->nsb, ng = ((const qk *)ctx)->ng;
    __m512 acc[4][2]; /* [g % 4][half]: lane (2 (g % 4) + sb) of the reference's accumulators */
    for (int k = 0; k < 4; k++) acc[k][0] = acc[k][1] = _mm512_setzero_ps();
    for (size_t g = 0; g < ng; g++) {
        const uint8_t *x[PT], *w[PR];
        for (int t = 0; t < PT; t++) x[t] = xp + t * xs + g * XG_BYTES;
        for (int r = 0; r < PR; r++) w[r] = wp + (r * ng + g) * WG_BYTES;
        __m512i a[PR][PT];
        for (int r = 0; r < PR; r++)
            for (int t = 0; t < PT; t++) a[r][t] = _mm512_setzero_si512();
        vnni_steps(a, w, x, 8);
        __m512i xsum[PT];
        for (int t = 0; t < PT; t++) xsum[t] = _mm512_loadu_si512(x[t] + GE);
        /* tokens' d: quarter 2 rr + sb, element t = xd of token t, super-block sb */
        float xd[2][4];
        for (int t = 0; t < PT; t++) memcpy(&xd[0][t], x[t] + GE + GL * 4, 4), memcpy(&xd[1][t], x[t] + GE + GL * 4 + 4, 4);
        __m128 x0 = _mm_loadu_ps(xd[0]), x1 = _mm_loadu_ps(xd[1]);
        __m512 XD = _mm512_insertf32x4(_mm512_insertf32x4(_mm512_castps128_ps512(x0), x1, 1), x0, 2);
        XD = _mm512_insertf32x4(XD, x1, 3);
        int last = g + 1 == ng && nsb % 2; /* the group's second super-block is padding */
        __mmask16 m = last ? 0x0f0f : 0xffff;
        for (int h = 0; h < 2; h++) {
            __m512i P[8], M[8];
            for (int rr = 0; rr < 2; rr++) {
                int r = 2 * h + rr;
                __m512i sc = _mm512_loadu_si512(w[r] + GE), mn = _mm512_loadu_si512(w[r] + GE + GL * 4);
                for (int t = 0; t < PT; t++) {
                    P[4 * rr + t] = _mm512_mullo_epi32(a[r][t], sc);
                    M[4 * rr + t] = _mm512_mullo_epi32(mn, xsum[t]);
                }
            }
            __m512 is = _mm512_cvtepi32_ps(superblock_sums8(P)), ms = _mm512_cvtepi32_ps(superblock_sums8(M));
            /* rows' d and dmin: quarter 2 rr + sb = row 2 h + rr, super-block sb, in every element */
            const float *d0 = (const float *)(w[2 * h] + GE + 2 * GL * 4), *d1 = (const float *)(w[2 * h + 1] + GE + 2 * GL * 4);
            __m512 D = _mm512_setr_ps(d0[0], d0[0], d0[0], d0[0], d0[1], d0[1], d0[1], d0[1], d1[0], d1[0], d1[0], d1[0],
                                      d1[1], d1[1], d1[1], d1[1]);
            __m512 DM = _mm512_setr_ps(d0[2], d0[2], d0[2], d0[2], d0[3], d0[3], d0[3], d0[3], d1[2], d1[2], d1[2], d1[2],
                                       d1[3], d1[3], d1[3], d1[3]);
            __m512 f = _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(XD, D), is), _mm512_mul_ps(_mm512_mul_ps(XD, DM), ms));
            acc[g % 4][h] = _mm512_mask_add_ps(acc[g % 4][h], m, acc[g % 4][h], f);
        }
    }
    float a[4][2][16];
    for (int k = 0; k < 4; k++) _mm512_storeu_ps(a[k][0], acc[k][0]), _mm512_storeu_ps(a[k][1], acc[k][1]);
    for (size_t r = 0; r < nr; r++)
        for (size_t t = 0; t < nt; t++) {
            float lanes[CK_QLANES];
            for (int k = 0; k < 4; k++)
                for (int sb = 0; sb < 2; sb++) lanes[2 * k + sb] = a[k][r / 2][4 * (2 * (r % 2) + sb) + t];
            y[t * ys + r] = ck_qlanes_sum(lanes) + (bias ? bias[r] : 0.0f);
        }
}

int ck_qmatmul_k_vnni(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T, int n_threads) {
    ck_dtype dt = W->dtype;
    size_t n_out = W->shape[0], n = W->shape[1], nsb = n / CK_QKK, ng = (nsb + 1) / 2, rb;
    if ((dt != CK_Q4_K && dt != CK_Q5_K) || W->ndim != 2 || n % CK_QKK || ck_dtype_row_bytes(dt, n, &rb) != 0) return -1;
    qk k = {.w = W->data, .rb = rb, .n = n, .nsb = nsb, .ng = ng, .dt = dt};
    ck_qpanels p = {.pr = PR, .pt = PT, .xq_bytes = ck_dtype_traits_of(dt)->act_row_bytes(n), .xp_bytes = ng * XG_BYTES,
                    .wp_bytes = PR * ng * WG_BYTES, .ctx = &k, .pack_token = pack_token, .pack_panel = pack_weights,
                    .tile = tile};
    return ck_qpanels_run(&p, y, x, n, n_out, bias, T, n_threads);
}
/* ---- Q6_K ----
 * The scales are per 16 values, so a lane is a group of 16 (four steps of four bytes) and a 512-bit vector
 * one super-block: after the steps, lane g holds level . x over group g (levels 0..63, unsigned); per lane
 * minus 32 x (the group's activation sum) and times the group's scale, then the 16 lanes summed (a
 * transposing reduction over the 16 tile entries) give the super-block's exact isum. Float combine:
 * (d * xd) * isum into lane b % 8, as the reference. */
#define Q6_SB_BYTES (CK_QKK + 16 * 4 + 64) /* levels / quants, 16 int32 (scales / 32 x sums), d, padding */

typedef struct q6k { /* the call's parameters (ck_qpanels' ctx) */
    const uint8_t *w;
    size_t rb, n, nsb;
} q6k;

/* 16 values v of group g into the layout: out[64 s + 4 g + i] = v[4 s + i], s < 4. */
static void put_group(uint8_t *out, size_t g, const uint8_t *v) {
    for (size_t s = 0; s < 4; s++) memcpy(out + 64 * s + 4 * g, v + 4 * s, 4);
}

static void q6_pack_weights(const void *ctx, uint8_t *wp, size_t j, size_t n_out) {
    const q6k *k = ctx;
    memset(wp, 0, PR * k->nsb * Q6_SB_BYTES);
    for (size_t r = 0; r < PR && j + r < n_out; r++)
        for (size_t b = 0; b < k->nsb; b++) {
            const ck_block_q6_k *blk = (const ck_block_q6_k *)(k->w + (j + r) * k->rb) + b;
            uint8_t *o = wp + (r * k->nsb + b) * Q6_SB_BYTES;
            _Alignas(32) uint8_t v[CK_QKK];
            int32_t *sc = (int32_t *)(o + CK_QKK);
            const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3);
            for (int c = 0; c < 2; c++) /* ggml's Q6_K layout (q6_level in tensor/quant.c), 32 values at a time */
                for (int q = 0; q < 4; q++) {
                    __m256i l = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * c + 32 * (q & 1)));
                    __m256i h = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * c));
                    __m256i lo = _mm256_and_si256(q < 2 ? l : _mm256_srli_epi16(l, 4), m4);
                    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(h, 2 * q), m2);
                    _mm256_store_si256((__m256i *)(v + 128 * c + 32 * q), _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
                }
            for (size_t g = 0; g < 16; g++) put_group(o, g, v + 16 * g), sc[g] = blk->scales[g];
            ((float *)(sc + 16))[0] = ck_f16_to_f32(blk->d);
        }
}

static void q6_pack_token(const void *ctx, uint8_t *xp, uint8_t *xq, const float *x) {
    const q6k *k = ctx;
    ck_quantize_q8k_vnni(xq, x, k->n);
    const float *xd = (const float *)xq;
    const int8_t *q = (const int8_t *)(xd + k->nsb);
    const int16_t *bs = (const int16_t *)(q + k->nsb * CK_QKK);
    memset(xp, 0, k->nsb * Q6_SB_BYTES);
    for (size_t b = 0; b < k->nsb; b++) {
        uint8_t *o = xp + b * Q6_SB_BYTES;
        int32_t *c = (int32_t *)(o + CK_QKK);
        for (size_t g = 0; g < 16; g++) put_group(o, g, (const uint8_t *)(q + b * CK_QKK + 16 * g)), c[g] = 32 * bs[16 * b + g];
        ((float *)(c + 16))[0] = xd[b];
    }
}

/* Lane k of the result (k < 16) = the sum of the 16 lanes of v[k]. */
static inline __m512i sums16(const __m512i v[16]) {
    __m512i a[4];
    for (int i = 0; i < 4; i++) a[i] = quarter_sums4(v + 4 * i); /* quarter c, element k: quarter c of v[4i + k] */
    __m512i s01 = _mm512_add_epi32(_mm512_shuffle_i32x4(a[0], a[1], 0x88), _mm512_shuffle_i32x4(a[0], a[1], 0xdd));
    __m512i s23 = _mm512_add_epi32(_mm512_shuffle_i32x4(a[2], a[3], 0x88), _mm512_shuffle_i32x4(a[2], a[3], 0xdd));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(s01, s23, 0x88), _mm512_shuffle_i32x4(s01, s23, 0xdd));
}

/* The PR x PT tile; entry p = PT r + t is lane p of every vector. */
static void q6_tile(const void *ctx, float *y, size_t ys, const uint8_t *wp, const uint8_t *xp, size_t xs, size_t nr,
                    size_t nt, const float *bias) {
    size_t nsb = ((const q6k *)ctx)->nsb;
    __m512 acc[CK_QLANES];
    for (int l = 0; l < CK_QLANES; l++) acc[l] = _mm512_setzero_ps();
    for (size_t b = 0; b < nsb; b++) {
        const uint8_t *x[PT], *w[PR];
        for (int t = 0; t < PT; t++) x[t] = xp + t * xs + b * Q6_SB_BYTES;
        for (int r = 0; r < PR; r++) w[r] = wp + (r * nsb + b) * Q6_SB_BYTES;
        __m512i a[PR][PT];
        for (int r = 0; r < PR; r++)
            for (int t = 0; t < PT; t++) a[r][t] = _mm512_setzero_si512();
        vnni_steps(a, w, x, 4);
        __m512i P[PR * PT];
        for (int r = 0; r < PR; r++) {
            __m512i sc = _mm512_loadu_si512(w[r] + CK_QKK);
            for (int t = 0; t < PT; t++)
                P[PT * r + t] = _mm512_mullo_epi32(_mm512_sub_epi32(a[r][t], _mm512_loadu_si512(x[t] + CK_QKK)), sc);
        }
        float d[PR], xd[PT];
        for (int r = 0; r < PR; r++) memcpy(&d[r], w[r] + CK_QKK + 64, 4);
        for (int t = 0; t < PT; t++) memcpy(&xd[t], x[t] + CK_QKK + 64, 4);
        __m512 D = _mm512_setr_ps(d[0], d[0], d[0], d[0], d[1], d[1], d[1], d[1], d[2], d[2], d[2], d[2], d[3], d[3], d[3], d[3]);
        __m512 XD = _mm512_setr_ps(xd[0], xd[1], xd[2], xd[3], xd[0], xd[1], xd[2], xd[3], xd[0], xd[1], xd[2], xd[3], xd[0],
                                   xd[1], xd[2], xd[3]);
        acc[b % CK_QLANES] = _mm512_add_ps(acc[b % CK_QLANES], _mm512_mul_ps(_mm512_mul_ps(D, XD), _mm512_cvtepi32_ps(sums16(P))));
    }
    float a[CK_QLANES][16];
    for (int l = 0; l < CK_QLANES; l++) _mm512_storeu_ps(a[l], acc[l]);
    for (size_t r = 0; r < nr; r++)
        for (size_t t = 0; t < nt; t++) {
            float lanes[CK_QLANES];
            for (int l = 0; l < CK_QLANES; l++) lanes[l] = a[l][PT * r + t];
            y[t * ys + r] = ck_qlanes_sum(lanes) + (bias ? bias[r] : 0.0f);
        }
}

int ck_qmatmul_q6_k_vnni(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T, int n_threads) {
    size_t n_out = W->shape[0], n = W->shape[1], nsb = n / CK_QKK, rb;
    if (W->dtype != CK_Q6_K || W->ndim != 2 || n % CK_QKK || ck_dtype_row_bytes(CK_Q6_K, n, &rb) != 0) return -1;
    q6k k = {.w = W->data, .rb = rb, .n = n, .nsb = nsb};
    ck_qpanels p = {.pr = PR, .pt = PT, .xq_bytes = ck_dtype_traits_of(CK_Q6_K)->act_row_bytes(n),
                    .xp_bytes = nsb * Q6_SB_BYTES, .wp_bytes = PR * nsb * Q6_SB_BYTES, .ctx = &k,
                    .pack_token = q6_pack_token, .pack_panel = q6_pack_weights, .tile = q6_tile};
    return ck_qpanels_run(&p, y, x, n, n_out, bias, T, n_threads);
}
#endif /* __x86_64__ */
