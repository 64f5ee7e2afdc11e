/* attention_avx512.c — grouped-query attention of one query row and one KV head with AVX-512, for head
 * dims that are multiples of 16 up to CK_ATTN_MAX_HD (see kernels.h). The same online softmax as
 * ck_attention_row_ref, taken in blocks of 16 keys instead of one key at a time: the 16 scores of a
 * block come from 16 independent dot-product accumulators reduced together by one transpose-and-add
 * network (lane j = key j), the running maximum is raised once per block, the block's 16 weights come
 * from one vector exp (ck_exp16, vexp.h), and the weighted values are accumulated key by key. The query heads of
 * the KV head walk the keys together, block by block, so that each block is read from memory once.
 * Every query row runs this same code whatever the batch (prefill or decode), so a row's output never
 * depends on the rows computed beside it. The cache holds f32 or f16 rows (one copy of the loop per
 * type).
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mfma; only called when the CPU has them. */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__) /* other architectures build this file empty; kernels.c never names it */
#include "backend/cpu/vexp.h"

#include <immintrin.h>
#include <math.h>

#define KB 16                        /* keys per block: one score per lane */
#define MAX_HEADS 8                  /* query heads walking the keys together (larger groups: in turns) */
#define PF_AHEAD 16                  /* keys prefetched ahead */

/* r[j] = sum of the 16 lanes of v[j], for j < 16, in one vector (two vectors' lanes per add). */
static inline __m512 reduce16(const __m512 v[16]) {
    __m512 x[8], y[4], z[2];
    for (int i = 0; i < 8; i++) /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
        x[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) /* per 128-bit lane L: the lane-L sums of four vectors */
        y[i] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0xee));
    for (int i = 0; i < 2; i++)
        z[i] = _mm512_add_ps(_mm512_shuffle_f32x4(y[2 * i], y[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(y[2 * i], y[2 * i + 1], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(z[0], z[1], 0x88), _mm512_shuffle_f32x4(z[0], z[1], 0xdd));
}

/* 16 values of a cache row at element i: f32, or f16 widened (exact). */
static inline __m512 kv16(const void *p, size_t i, int f16) {
    if (f16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
    return _mm512_loadu_ps((const float *)p + i);
}

/* One query row's step through a block of nb keys (cache rows rb bytes apart at kb, vb; f16 or f32 as
 * f16 says): its 16 scores, the running maximum m and sum l, and its unnormalized accumulator acc. */
static inline __attribute__((always_inline)) void row_block(const ck_attn_args *a, const float *qg, float *acc,
                                                            float *m, float *l, const char *kb, const char *vb,
                                                            size_t rb, size_t nb, size_t nv, int f16) {
    __m512 d[KB], qv[CK_ATTN_MAX_HD / 16]; /* the query row in registers for the block */
    for (size_t i = 0; i < nv; i++) qv[i] = _mm512_loadu_ps(qg + 16 * i);
    for (size_t j = 0; j < KB; j++) {
        d[j] = _mm512_setzero_ps();
        if (j < nb)
            for (size_t i = 0; i < nv; i++) d[j] = _mm512_fmadd_ps(qv[i], kv16(kb + j * rb, 16 * i, f16), d[j]);
    }
    float sc[KB], p[KB];
    _mm512_storeu_ps(sc, _mm512_mul_ps(reduce16(d), _mm512_set1_ps(a->scale)));
    float bm = -INFINITY;
    for (size_t j = 0; j < nb; j++) {
        if (a->softcap > 0) sc[j] = a->softcap * tanhf(sc[j] / a->softcap);
        bm = sc[j] > bm ? sc[j] : bm;
    }
    if (bm > *m) { /* rescale what was accumulated under the old maximum */
        float c = expf(*m - bm);
        *l *= c;
        for (size_t i = 0; i < nv; i++) _mm512_storeu_ps(acc + 16 * i, _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * i), _mm512_set1_ps(c)));
        *m = bm;
    }
    /* the block's weights, one vector exp; lanes past nb are 0 */
    __m512 pv = _mm512_maskz_mov_ps((__mmask16)((1u << nb) - 1), ck_exp16(_mm512_sub_ps(_mm512_loadu_ps(sc), _mm512_set1_ps(*m))));
    _mm512_storeu_ps(p, pv);
    *l += _mm512_reduce_add_ps(pv);
    /* each accumulator vector through the block's keys in order; the vectors side by side (nv chains) */
    __m512 av[CK_ATTN_MAX_HD / 16];
    for (size_t i = 0; i < nv; i++) av[i] = _mm512_loadu_ps(acc + 16 * i);
    for (size_t j = 0; j < nb; j++) {
        __m512 pj = _mm512_set1_ps(p[j]);
        for (size_t i = 0; i < nv; i++) av[i] = _mm512_fmadd_ps(pj, kv16(vb + j * rb, 16 * i, f16), av[i]);
    }
    for (size_t i = 0; i < nv; i++) _mm512_storeu_ps(acc + 16 * i, av[i]);
}

/* row_block with the common vector counts (head dims 64, 128, 256) as constants, so that the
 * accumulators stay in registers. */
#define ROW_BLOCK(a, qg, acc, m, l, kb, vb, rb, nb, nv, f16)                                                  \
    do {                                                                                                       \
        switch (nv) {                                                                                          \
        case 4: row_block(a, qg, acc, m, l, kb, vb, rb, nb, 4, f16); break;                                    \
        case 8: row_block(a, qg, acc, m, l, kb, vb, rb, nb, 8, f16); break;                                    \
        case 16: row_block(a, qg, acc, m, l, kb, vb, rb, nb, 16, f16); break;                                  \
        default: row_block(a, qg, acc, m, l, kb, vb, rb, nb, nv, f16); break;                                  \
        }                                                                                                      \
    } while (0)

/* Prefetches the nb cache rows (rb bytes apart, `lines` cache lines each) at kp and vp. */
static inline void prefetch_rows(const char *kp, const char *vp, size_t rb, size_t nb, size_t lines) {
    for (size_t j = 0; j < nb; j++)
        for (size_t i = 0; i < lines; i++) _mm_prefetch(kp + j * rb + 64 * i, _MM_HINT_T0), _mm_prefetch(vp + j * rb + 64 * i, _MM_HINT_T0);
}

/* The query heads q[g] (g < ng, head_dim apart) of one KV head against keys [0, n_keys) of its cache rows
 * (kr, vr: `row` values apart, f16 or f32 as f16 says: inlined into one copy per type), from a fresh state
 * into m[g], l[g] and acc[g] (head_dim apart, unnormalized). The keys are walked once for the whole group:
 * each block of 16 keys is fetched from memory (prefetched PF_AHEAD keys ahead) and then served from L1 to
 * every head. Per head, the arithmetic and its order are those of one head alone. */
static inline __attribute__((always_inline)) void heads(const ck_attn_args *a, const float *q, size_t ng,
                                                        const void *kr, const void *vr, size_t row, size_t n_keys,
                                                        float *m, float *l, float *acc, int f16) {
    size_t hd = a->head_dim, nv = hd / 16, eb = f16 ? 2 : 4, lines = (hd * eb + 63) / 64, rb = row * eb;
    for (size_t g = 0; g < ng; g++) {
        m[g] = -INFINITY, l[g] = 0.0f;
        for (size_t i = 0; i < hd; i++) acc[g * hd + i] = 0.0f;
    }
    for (size_t j0 = 0; j0 < n_keys; j0 += KB) {
        size_t nb = n_keys - j0 < KB ? n_keys - j0 : KB;
        const char *kb = (const char *)kr + j0 * rb, *vb = (const char *)vr + j0 * rb;
        if (j0 + PF_AHEAD < n_keys) /* the heads' rows are strided in the cache, not streamed */
            prefetch_rows(kb + PF_AHEAD * rb, vb + PF_AHEAD * rb, rb,
                          n_keys - j0 - PF_AHEAD < KB ? n_keys - j0 - PF_AHEAD : KB, lines);
        for (size_t g = 0; g < ng; g++) ROW_BLOCK(a, q + g * hd, acc + g * hd, &m[g], &l[g], kb, vb, rb, nb, nv, f16);
    }
}

static void heads_f32(const ck_attn_args *a, const float *q, size_t ng, const void *kr, const void *vr, size_t row,
                      size_t n, float *m, float *l, float *acc) {
    heads(a, q, ng, kr, vr, row, n, m, l, acc, 0);
}
static void heads_f16(const ck_attn_args *a, const float *q, size_t ng, const void *kr, const void *vr, size_t row,
                      size_t n, float *m, float *l, float *acc) {
    heads(a, q, ng, kr, vr, row, n, m, l, acc, 1);
}

void ck_attention_seg_avx512(const ck_attn_args *a, size_t t, size_t kvh, size_t j0, size_t j1, float *m, float *l,
                             float *acc) {
    size_t hd = a->head_dim, group = a->n_heads / a->n_kv_heads, row = a->n_kv_heads * hd;
    size_t eb = ck_kv_bytes(a->kv_dtype);
    const char *kr = (const char *)a->k_cache + (j0 * row + kvh * hd) * eb;
    const char *vr = (const char *)a->v_cache + (j0 * row + kvh * hd) * eb;
    void (*fn)(const ck_attn_args *, const float *, size_t, const void *, const void *, size_t, size_t, float *,
               float *, float *) = a->kv_dtype == CK_F16 ? heads_f16 : heads_f32;
    for (size_t g0 = 0; g0 < group; g0 += MAX_HEADS) { /* the group's query heads are consecutive */
        size_t ng = group - g0 < MAX_HEADS ? group - g0 : MAX_HEADS, h0 = kvh * group + g0;
        fn(a, a->q + (t * a->n_heads + h0) * hd, ng, kr, vr, row, j1 - j0, m + g0, l + g0, acc + g0 * hd);
    }
}

/* Query rows [t0, t1) of KV head kvh (every query head of its group), keys walked once for all of them:
 * each block of 16 keys is widened to f32 once (an f16 cache) into an L1 buffer and every row still
 * needing keys takes its step through it with row_block into its segment's state, which is merged into the
 * row's (in out) where the row's segment ends, so each row does the arithmetic of ck_attention_group alone,
 * in its order, on the same values: the same bits whatever the tile. Rows that would start past key 0 (a
 * window that binds), one row or too many are left to go one by one (-1). */
#define TILE_ROWS CK_ATTN_TILE_ROWS
int ck_attention_tokens_avx512(const ck_attn_args *a, size_t t0, size_t t1, size_t kvh, float *work) {
    size_t hd = a->head_dim, group = a->n_heads / a->n_kv_heads, n = (t1 - t0) * group, kmax = 0;
    if (n > TILE_ROWS || t1 - t0 < 2) return -1;
    for (size_t t = t0; t < t1; t++) {
        size_t keys = (size_t)a->pos[t] + 1;
        if (a->window && keys > a->window) return -1;
        kmax = keys > kmax ? keys : kmax;
    }
    float *sacc = work; /* the rows' segment accumulators [n, hd] */
    int f16 = a->kv_dtype == CK_F16;
    size_t nv = hd / 16, row = a->n_kv_heads * hd, eb = f16 ? 2 : 4, rb = row * eb, lines = (hd * eb + 63) / 64;
    float m[TILE_ROWS], l[TILE_ROWS], M[TILE_ROWS], L[TILE_ROWS], *out[TILE_ROWS];
    const float *q[TILE_ROWS];
    size_t keys[TILE_ROWS];
    for (size_t r = 0; r < n; r++) {
        size_t t = t0 + r / group, h = kvh * group + r % group;
        q[r] = a->q + (t * a->n_heads + h) * hd, out[r] = a->out + (t * a->n_heads + h) * hd;
        keys[r] = (size_t)a->pos[t] + 1, M[r] = -INFINITY, L[r] = 0.0f;
        for (size_t i = 0; i < hd; i++) out[r][i] = 0.0f;
    }
    _Alignas(64) float kf[KB * CK_ATTN_MAX_HD], vf[KB * CK_ATTN_MAX_HD];
    const char *kr = (const char *)a->k_cache + kvh * hd * eb, *vr = (const char *)a->v_cache + kvh * hd * eb;
    for (size_t j0 = 0; j0 < kmax; j0 += KB) {
        size_t nb = kmax - j0 < KB ? kmax - j0 : KB;
        if (j0 % CK_ATTN_SEG == 0) /* a segment starts: the rows that go on into it close the one before */
            for (size_t r = 0; r < n; r++) {
                if (keys[r] <= j0) continue;
                if (j0) ck_attn_merge(&M[r], &L[r], out[r], m[r], l[r], sacc + r * hd, hd);
                m[r] = -INFINITY, l[r] = 0.0f;
                for (size_t i = 0; i < hd; i++) sacc[r * hd + i] = 0.0f;
            }
        const char *kb = kr + j0 * rb, *vb = vr + j0 * rb, *ks = kb, *vs = vb;
        size_t stride = rb;
        if (j0 + PF_AHEAD < kmax)
            prefetch_rows(kb + PF_AHEAD * rb, vb + PF_AHEAD * rb, rb, kmax - j0 - PF_AHEAD < KB ? kmax - j0 - PF_AHEAD : KB, lines);
        if (f16) { /* widened once for every row (exact) */
            for (size_t j = 0; j < nb; j++)
                for (size_t i = 0; i < nv; i++) {
                    _mm512_store_ps(kf + j * hd + 16 * i, kv16(kb + j * rb, 16 * i, 1));
                    _mm512_store_ps(vf + j * hd + 16 * i, kv16(vb + j * rb, 16 * i, 1));
                }
            ks = (const char *)kf, vs = (const char *)vf, stride = hd * 4;
        }
        for (size_t r = 0; r < n; r++)
            if (keys[r] > j0)
                ROW_BLOCK(a, q[r], sacc + r * hd, &m[r], &l[r], ks, vs, stride, keys[r] - j0 < KB ? keys[r] - j0 : KB, nv, 0);
    }
    for (size_t r = 0; r < n; r++) { /* each row's last segment, then the normalization */
        ck_attn_merge(&M[r], &L[r], out[r], m[r], l[r], sacc + r * hd, hd);
        for (size_t i = 0; i < hd; i++) out[r][i] /= L[r];
    }
    return 0;
}

#endif /* __x86_64__ */
