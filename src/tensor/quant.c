/* quant.c — scalar reference of the block-quantized formats (see quant.h): half conversion, activation
 * and weight quantization, dequantization, integer block sums and the dot products that define the
 * numerics every SIMD kernel must reproduce exactly. Compiled with -ffp-contract=off (CMakeLists.txt).
 * Block pointers are at least 2-byte aligned (ggml blocks have even sizes; GGUF aligns tensor data). */
#include "tensor/quant.h"
#include "tensor/dtype.h"

#include <math.h>

uint16_t ck_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000, e = (x >> 23) & 0xff, m = x & 0x7fffff;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0));
    int32_t ex = (int32_t)e - 127 + 15;
    if (ex >= 31) return (uint16_t)(sign | 0x7c00);
    if (ex <= 0) { /* subnormal or zero */
        if (ex < -10) return (uint16_t)sign;
        m |= 0x800000;
        uint32_t shift = (uint32_t)(14 - ex), half = 1u << (shift - 1);
        uint32_t r = m >> shift, rest = m & ((1u << shift) - 1);
        if (rest > half || (rest == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)ex << 10) | (m >> 13), rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) r++; /* may carry into the exponent: correct */
    return (uint16_t)(sign | r);
}

uint16_t ck_f32_to_f16_sat(float f) {
    if (f > 65504.0f) f = 65504.0f;
    if (f < -65504.0f) f = -65504.0f;
    return ck_f32_to_f16(f);
}

static inline float h2f(uint16_t h) { return ck_f16_to_f32(h); }

/* x * id rounded to nearest even and clamped to [-lim, lim] (NaN -> -lim, never UB). */
static inline int8_t q_round(float v, float lim) {
    if (!(v >= -lim)) v = -lim;
    if (v > lim) v = lim;
    return (int8_t)lrintf(v);
}

static float amax_of(const float *x, size_t n) {
    float a = 0.0f;
    for (size_t i = 0; i < n; i++) a = fabsf(x[i]) > a ? fabsf(x[i]) : a;
    return a;
}

/* The value of largest magnitude, with its sign (the first of equal magnitudes); 0 for none. */
static float signed_amax(const float *x, size_t n) {
    float mx = 0.0f;
    for (size_t i = 0; i < n; i++) mx = fabsf(x[i]) > fabsf(mx) ? x[i] : mx;
    return mx;
}

/* ---- activations ---- */

void ck_quantize_q8(void *dst, const float *x, size_t n) {
    size_t nb = n / CK_QK;
    float *d = dst;
    int8_t *q = (int8_t *)(d + nb);
    for (size_t b = 0; b < nb; b++) {
        float a = amax_of(x + b * CK_QK, CK_QK), db = a / 127.0f, id = db > 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        for (size_t i = 0; i < CK_QK; i++) q[b * CK_QK + i] = q_round(x[b * CK_QK + i] * id, 127.0f);
    }
}

void ck_quantize_q8k(void *dst, const float *x, size_t n) {
    size_t nb = n / CK_QKK;
    float *d = dst;
    int8_t *q = (int8_t *)(d + nb);
    int16_t *bs = (int16_t *)(q + nb * CK_QKK);
    for (size_t b = 0; b < nb; b++) {
        float a = amax_of(x + b * CK_QKK, CK_QKK), db = a / 127.0f, id = db > 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        for (size_t i = 0; i < CK_QKK; i++) q[b * CK_QKK + i] = q_round(x[b * CK_QKK + i] * id, 127.0f);
        for (size_t g = 0; g < 16; g++) {
            int s = 0;
            for (size_t i = 0; i < 16; i++) s += q[b * CK_QKK + g * 16 + i];
            bs[b * 16 + g] = (int16_t)s;
        }
    }
}

/* ---- weights ---- */

void ck_quantize_q8_0(void *dst, const float *x, size_t n) {
    ck_block_q8_0 *y = dst;
    for (size_t b = 0; b < n / CK_QK; b++, x += CK_QK) {
        y[b].d = ck_f32_to_f16(amax_of(x, CK_QK) / 127.0f);
        float d = h2f(y[b].d), id = d > 0.0f ? 1.0f / d : 0.0f;
        for (size_t i = 0; i < CK_QK; i++) y[b].qs[i] = q_round(x[i] * id, 127.0f);
    }
}

void ck_quantize_q4_0(void *dst, const float *x, size_t n) {
    ck_block_q4_0 *y = dst;
    for (size_t b = 0; b < n / CK_QK; b++, x += CK_QK) {
        float mx = signed_amax(x, CK_QK); /* it maps to -8 */
        y[b].d = ck_f32_to_f16(mx / -8.0f);
        float d = h2f(y[b].d), id = d != 0.0f ? 1.0f / d : 0.0f;
        for (size_t i = 0; i < 16; i++) {
            int lo = q_round(x[i] * id, 8.0f) + 8, hi = q_round(x[i + 16] * id, 8.0f) + 8;
            lo = lo > 15 ? 15 : lo, hi = hi > 15 ? 15 : hi;
            y[b].qs[i] = (uint8_t)(lo | (hi << 4));
        }
    }
}

/* Level of x in a sub-block with dequantization scale s and min m: round((x + m) / s) in [0, levels]. */
static inline int k_level(float x, float s, float m, int levels) {
    if (!(s > 0.0f)) return 0;
    float v = (x + m) / s;
    if (!(v >= 0.0f)) v = 0.0f;
    if (v > (float)levels) v = (float)levels;
    return (int)lrintf(v);
}

/* Scale s and min m (x ~ s * l - m, level l in [0, levels], m >= 0) of one sub-block of 32 values: from
 * the range [min(x, 0), max(x)], then from 21 level assignments of slightly different scales around it,
 * each refit by weighted least squares (weights |x| + rms(x): large values count more); the fit of least
 * weighted squared error wins. */
static void k_fit(const float *x, int levels, float *s, float *m) {
    float lo = 0.0f, hi = 0.0f, w[32], sw = 0.0f, swx = 0.0f, ss = 0.0f;
    for (int i = 0; i < 32; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]), ss += x[i] * x[i];
    *s = (hi - lo) / (float)levels, *m = -lo;
    if (!(hi > lo)) return;
    float rms = sqrtf(ss / 32.0f), best = 0.0f;
    for (int i = 0; i < 32; i++) {
        w[i] = fabsf(x[i]) + rms, sw += w[i], swx += w[i] * x[i];
        float e = *s * (float)k_level(x[i], *s, *m, levels) - *m - x[i];
        best += w[i] * e * e;
    }
    for (int step = 0; step <= 20; step++) {
        float is = ((float)levels - 1.0f + 0.1f * (float)step) / (hi - lo), sl = 0.0f, sll = 0.0f, sxl = 0.0f;
        int l[32];
        for (int i = 0; i < 32; i++) {
            int v = (int)lrintf(is * (x[i] - lo));
            l[i] = v < 0 ? 0 : v > levels ? levels : v;
            sl += w[i] * (float)l[i], sll += w[i] * (float)(l[i] * l[i]), sxl += w[i] * (float)l[i] * x[i];
        }
        float det = sw * sll - sl * sl;
        if (!(det > 0.0f)) continue;
        float fs = (sw * sxl - swx * sl) / det, fo = (sll * swx - sl * sxl) / det; /* x ~ fs * l + fo */
        if (fo > 0.0f) fo = 0.0f, fs = sxl / sll; /* the min must not be negative: fit the scale alone */
        float err = 0.0f;
        for (int i = 0; i < 32; i++) {
            float e = fs * (float)l[i] + fo - x[i];
            err += w[i] * e * e;
        }
        if (err < best && fs > 0.0f) best = err, *s = fs, *m = -fo;
    }
}

/* Sub-block scales and mins of an asymmetric K-quant block with `levels` + 1 levels per sub-block of 32:
 * writes the packed 6-bit scales, d and dmin, and the dequantization scale / min of each sub-block. */
static void k_scales(const float *x, float levels, uint8_t scales[12], uint16_t *dh, uint16_t *dminh,
                     float sd[8], float sm[8]) {
    float sc[8], mn[8], msc = 0.0f, mmn = 0.0f;
    for (int j = 0; j < 8; j++) {
        k_fit(x + j * 32, (int)levels, &sc[j], &mn[j]);
        msc = fmaxf(msc, sc[j]), mmn = fmaxf(mmn, mn[j]);
    }
    *dh = ck_f32_to_f16(msc / 63.0f), *dminh = ck_f32_to_f16(mmn / 63.0f);
    float d = h2f(*dh), dmin = h2f(*dminh);
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        int a = d > 0.0f ? (int)lrintf(fminf(sc[j] / d, 63.0f)) : 0, b = dmin > 0.0f ? (int)lrintf(fminf(mn[j] / dmin, 63.0f)) : 0;
        ls[j] = (uint8_t)a, lm[j] = (uint8_t)b;
        sd[j] = d * (float)a, sm[j] = dmin * (float)b;
    }
    for (int j = 0; j < 4; j++) {
        scales[j] = (uint8_t)((ls[j] & 63) | ((ls[j + 4] >> 4) << 6));
        scales[j + 4] = (uint8_t)((lm[j] & 63) | ((lm[j + 4] >> 4) << 6));
        scales[j + 8] = (uint8_t)((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
    }
}

void ck_quantize_q4_k(void *dst, const float *x, size_t n) {
    ck_block_q4_k *y = dst;
    for (size_t b = 0; b < n / CK_QKK; b++, x += CK_QKK) {
        float sd[8], sm[8];
        k_scales(x, 15.0f, y[b].scales, &y[b].d, &y[b].dmin, sd, sm);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = k_level(x[64 * c + l], sd[2 * c], sm[2 * c], 15);
                int hi = k_level(x[64 * c + 32 + l], sd[2 * c + 1], sm[2 * c + 1], 15);
                y[b].qs[32 * c + l] = (uint8_t)(lo | (hi << 4));
            }
    }
}

void ck_quantize_q5_k(void *dst, const float *x, size_t n) {
    ck_block_q5_k *y = dst;
    for (size_t b = 0; b < n / CK_QKK; b++, x += CK_QKK) {
        float sd[8], sm[8];
        k_scales(x, 31.0f, y[b].scales, &y[b].d, &y[b].dmin, sd, sm);
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = k_level(x[64 * c + l], sd[2 * c], sm[2 * c], 31);
                int hi = k_level(x[64 * c + 32 + l], sd[2 * c + 1], sm[2 * c + 1], 31);
                y[b].qs[32 * c + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
                y[b].qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
    }
}

/* Scale of a Q6_K group of 16 (x ~ s * l, l in [-32, 31]; s may be negative, so that the value of largest
 * magnitude can take level -32): from the largest magnitude, then from 19 level assignments with the
 * value of largest magnitude at -32 +- 0.9, each refit by weighted least squares (weights x^2); the
 * fit of least weighted squared error wins. */
static float q6_fit(const float *x) {
    float mx = signed_amax(x, 16);
    float best_s = fabsf(mx) / 31.0f, best = 0.0f;
    if (mx == 0.0f) return 0.0f;
    for (int i = 0; i < 16; i++) {
        int l = q_round(x[i] / best_s, 32.0f);
        float e = best_s * (float)(l > 31 ? 31 : l) - x[i];
        best += x[i] * x[i] * e * e;
    }
    for (int k = -9; k <= 9; k++) {
        float is = -(32.0f + 0.1f * (float)k) / mx, sxl = 0.0f, sll = 0.0f;
        int l[16];
        for (int i = 0; i < 16; i++) {
            int v = (int)lrintf(is * x[i]);
            l[i] = v < -32 ? -32 : v > 31 ? 31 : v;
            float w = x[i] * x[i];
            sxl += w * x[i] * (float)l[i], sll += w * (float)(l[i] * l[i]);
        }
        if (!(sll > 0.0f)) continue;
        float fs = sxl / sll, err = 0.0f;
        for (int i = 0; i < 16; i++) {
            float e = fs * (float)l[i] - x[i];
            err += x[i] * x[i] * e * e;
        }
        if (err < best) best = err, best_s = fs;
    }
    return best_s;
}

void ck_quantize_q6_k(void *dst, const float *x, size_t n) {
    ck_block_q6_k *y = dst;
    for (size_t b = 0; b < n / CK_QKK; b++, x += CK_QKK) {
        float gs[16];
        for (int g = 0; g < 16; g++) gs[g] = q6_fit(x + 16 * g);
        float mx = signed_amax(gs, 16); /* the group scale of largest magnitude maps to -128 */
        y[b].d = ck_f32_to_f16(mx / -128.0f);
        float d = h2f(y[b].d);
        int q[CK_QKK];
        for (int g = 0; g < 16; g++) {
            float v = d != 0.0f ? gs[g] / d : 0.0f;
            int s = (int)lrintf(!(v >= -128.0f) ? -128.0f : v > 127.0f ? 127.0f : v);
            y[b].scales[g] = (int8_t)s;
            float ds = d * (float)s, id = ds != 0.0f ? 1.0f / ds : 0.0f;
            for (int i = 0; i < 16; i++) {
                int v = q_round(x[16 * g + i] * id, 32.0f);
                q[16 * g + i] = (v > 31 ? 31 : v) + 32;
            }
        }
        for (int c = 0; c < 2; c++)
            for (int l = 0; l < 32; l++) {
                const int *e = q + 128 * c + l;
                y[b].ql[64 * c + l] = (uint8_t)((e[0] & 0xF) | ((e[64] & 0xF) << 4));
                y[b].ql[64 * c + l + 32] = (uint8_t)((e[32] & 0xF) | ((e[96] & 0xF) << 4));
                y[b].qh[32 * c + l] = (uint8_t)((e[0] >> 4) | ((e[32] >> 4) << 2) | ((e[64] >> 4) << 4) | ((e[96] >> 4) << 6));
            }
    }
}

/* ---- dequantization (ggml's dequantize_row_*) ---- */

void ck_dequant_q8_0(float *dst, const void *src, size_t n) {
    const ck_block_q8_0 *x = src;
    for (size_t b = 0; b < n / CK_QK; b++) {
        float d = h2f(x[b].d);
        for (int i = 0; i < CK_QK; i++) dst[b * CK_QK + i] = d * (float)x[b].qs[i];
    }
}

void ck_dequant_q4_0(float *dst, const void *src, size_t n) {
    const ck_block_q4_0 *x = src;
    for (size_t b = 0; b < n / CK_QK; b++) {
        float d = h2f(x[b].d);
        for (int i = 0; i < 16; i++) {
            dst[b * CK_QK + i] = d * (float)((x[b].qs[i] & 0xF) - 8);
            dst[b * CK_QK + i + 16] = d * (float)((x[b].qs[i] >> 4) - 8);
        }
    }
}

/* Q4_K and Q5_K: the 5th bit of element 64c + l (+32) is bit 2c (2c+1) of qh[l]; Q4_K has no qh. */
static void dequant_k(float *y, const uint8_t *scales, uint16_t dh, uint16_t dminh, const uint8_t *qs,
                      const uint8_t *qh) {
    float d = h2f(dh), dmin = h2f(dminh);
    for (int c = 0; c < 4; c++) {
        uint8_t s1, m1, s2, m2;
        ck_q4k_scale_min(2 * c, scales, &s1, &m1);
        ck_q4k_scale_min(2 * c + 1, scales, &s2, &m2);
        float d1 = d * s1, mm1 = dmin * m1, d2 = d * s2, mm2 = dmin * m2;
        for (int l = 0; l < 32; l++) {
            int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
            if (qh) lo += ((qh[l] >> (2 * c)) & 1) << 4, hi += ((qh[l] >> (2 * c + 1)) & 1) << 4;
            y[64 * c + l] = d1 * (float)lo - mm1;
            y[64 * c + 32 + l] = d2 * (float)hi - mm2;
        }
    }
}

void ck_dequant_q4_k(float *dst, const void *src, size_t n) {
    const ck_block_q4_k *x = src;
    for (size_t b = 0; b < n / CK_QKK; b++) dequant_k(dst + b * CK_QKK, x[b].scales, x[b].d, x[b].dmin, x[b].qs, NULL);
}

void ck_dequant_q5_k(float *dst, const void *src, size_t n) {
    const ck_block_q5_k *x = src;
    for (size_t b = 0; b < n / CK_QKK; b++)
        dequant_k(dst + b * CK_QKK, x[b].scales, x[b].d, x[b].dmin, x[b].qs, x[b].qh);
}

/* The 6-bit level (0..63) of element i of a Q6_K block. */
static inline int q6_level(const ck_block_q6_k *x, int i) {
    int c = i / 128, k = (i % 128) / 32, l = i % 32;
    int lo = (x->ql[64 * c + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 0xF;
    int hi = (x->qh[32 * c + l] >> (2 * k)) & 3;
    return lo | (hi << 4);
}

void ck_dequant_q6_k(float *dst, const void *src, size_t n) {
    const ck_block_q6_k *x = src;
    for (size_t b = 0; b < n / CK_QKK; b++) {
        float d = h2f(x[b].d);
        for (int i = 0; i < CK_QKK; i++) dst[b * CK_QKK + i] = d * (float)x[b].scales[i / 16] * (float)(q6_level(&x[b], i) - 32);
    }
}

/* ---- integer block sums ---- */

int32_t ck_qsum_q8_0(const ck_block_q8_0 *w, const int8_t *x) {
    int32_t s = 0;
    for (int i = 0; i < CK_QK; i++) s += w->qs[i] * x[i];
    return s;
}

int32_t ck_qsum_q4_0(const ck_block_q4_0 *w, const int8_t *x) {
    int32_t s = 0;
    for (int i = 0; i < 16; i++) s += ((w->qs[i] & 0xF) - 8) * x[i] + ((w->qs[i] >> 4) - 8) * x[i + 16];
    return s;
}

static void qsum_k(const uint8_t *scales, const uint8_t *qs, const uint8_t *qh, const int8_t *x, const int16_t *bsum,
                   int32_t *isum, int32_t *msum) {
    int32_t is = 0, ms = 0;
    for (int c = 0; c < 4; c++) {
        uint8_t s1, m1, s2, m2;
        ck_q4k_scale_min(2 * c, scales, &s1, &m1);
        ck_q4k_scale_min(2 * c + 1, scales, &s2, &m2);
        int32_t a = 0, b = 0;
        for (int l = 0; l < 32; l++) {
            int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
            if (qh) lo += ((qh[l] >> (2 * c)) & 1) << 4, hi += ((qh[l] >> (2 * c + 1)) & 1) << 4;
            a += lo * x[64 * c + l];
            b += hi * x[64 * c + 32 + l];
        }
        is += s1 * a + s2 * b;
        ms += m1 * (bsum[4 * c] + bsum[4 * c + 1]) + m2 * (bsum[4 * c + 2] + bsum[4 * c + 3]);
    }
    *isum = is, *msum = ms;
}

void ck_qsum_q4_k(const ck_block_q4_k *w, const int8_t *x, const int16_t *bsum, int32_t *isum, int32_t *msum) {
    qsum_k(w->scales, w->qs, NULL, x, bsum, isum, msum);
}

void ck_qsum_q5_k(const ck_block_q5_k *w, const int8_t *x, const int16_t *bsum, int32_t *isum, int32_t *msum) {
    qsum_k(w->scales, w->qs, w->qh, x, bsum, isum, msum);
}

int32_t ck_qsum_q6_k(const ck_block_q6_k *w, const int8_t *x) {
    int32_t s = 0;
    for (int g = 0; g < 16; g++) {
        int32_t a = 0;
        for (int i = 0; i < 16; i++) a += (q6_level(w, 16 * g + i) - 32) * x[16 * g + i];
        s += w->scales[g] * a;
    }
    return s;
}

/* ---- reference dot products ---- */

#define Q8_ROW(xq, nb) const float *xd = (xq); const int8_t *xs = (const int8_t *)(xd + (nb))
#define Q8K_ROW(xq, nb) Q8_ROW(xq, nb); const int16_t *xb = (const int16_t *)(xs + (nb) * CK_QKK)

float ck_qdot_q8_0_ref(const void *w, const void *xq, size_t n) {
    size_t nb = n / CK_QK;
    const ck_block_q8_0 *b = w;
    Q8_ROW(xq, nb);
    float acc[CK_QLANES] = {0};
    for (size_t i = 0; i < nb; i++) acc[i % CK_QLANES] += (h2f(b[i].d) * xd[i]) * (float)ck_qsum_q8_0(&b[i], xs + i * CK_QK);
    return ck_qlanes_sum(acc);
}

float ck_qdot_q4_0_ref(const void *w, const void *xq, size_t n) {
    size_t nb = n / CK_QK;
    const ck_block_q4_0 *b = w;
    Q8_ROW(xq, nb);
    float acc[CK_QLANES] = {0};
    for (size_t i = 0; i < nb; i++) acc[i % CK_QLANES] += (h2f(b[i].d) * xd[i]) * (float)ck_qsum_q4_0(&b[i], xs + i * CK_QK);
    return ck_qlanes_sum(acc);
}

float ck_qdot_q4_k_ref(const void *w, const void *xq, size_t n) {
    size_t nb = n / CK_QKK;
    const ck_block_q4_k *b = w;
    Q8K_ROW(xq, nb);
    float acc[CK_QLANES] = {0};
    for (size_t i = 0; i < nb; i++) {
        int32_t is, ms;
        ck_qsum_q4_k(&b[i], xs + i * CK_QKK, xb + i * 16, &is, &ms);
        acc[i % CK_QLANES] += (xd[i] * h2f(b[i].d)) * (float)is - (xd[i] * h2f(b[i].dmin)) * (float)ms;
    }
    return ck_qlanes_sum(acc);
}

float ck_qdot_q5_k_ref(const void *w, const void *xq, size_t n) {
    size_t nb = n / CK_QKK;
    const ck_block_q5_k *b = w;
    Q8K_ROW(xq, nb);
    float acc[CK_QLANES] = {0};
    for (size_t i = 0; i < nb; i++) {
        int32_t is, ms;
        ck_qsum_q5_k(&b[i], xs + i * CK_QKK, xb + i * 16, &is, &ms);
        acc[i % CK_QLANES] += (xd[i] * h2f(b[i].d)) * (float)is - (xd[i] * h2f(b[i].dmin)) * (float)ms;
    }
    return ck_qlanes_sum(acc);
}

float ck_qdot_q6_k_ref(const void *w, const void *xq, size_t n) {
    size_t nb = n / CK_QKK;
    const ck_block_q6_k *b = w;
    Q8_ROW(xq, nb);
    float acc[CK_QLANES] = {0};
    for (size_t i = 0; i < nb; i++) acc[i % CK_QLANES] += (h2f(b[i].d) * xd[i]) * (float)ck_qsum_q6_k(&b[i], xs + i * CK_QKK);
    return ck_qlanes_sum(acc);
}
