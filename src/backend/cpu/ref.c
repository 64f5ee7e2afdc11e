/* ref.c — scalar reference kernels (see ref.h). Simple loops, no SIMD intrinsics. */
#include "backend/cpu/ref.h"
#include "tensor/quant.h"

#include <math.h>

float ck_dot_ref(const float *x, const void *w, ck_dtype wt, size_t n) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(wt);
    return tr ? tr->dot(x, w, n) : NAN; /* an unknown type poisons the result instead of reading as zeros */
}

void ck_matvec_ref(float *y, const float *x, const ck_tensor *W, const float *bias) {
    size_t n_out = W->shape[0], n_in = W->shape[1], rb = 0;
    const uint8_t *base = W->data;
    if (ck_dtype_row_bytes(W->dtype, n_in, &rb) != 0) {
        for (size_t o = 0; o < n_out; o++) y[o] = NAN;
        return;
    }
    for (size_t o = 0; o < n_out; o++)
        y[o] = ck_dot_ref(x, base + o * rb, W->dtype, n_in) + (bias ? bias[o] : 0.0f);
}

void ck_rmsnorm_ref(float *y, const float *x, const float *w, size_t n, float eps, int one_plus) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = ck_rms_scale(ss, n, eps);
    for (size_t i = 0; i < n; i++) y[i] = x[i] * inv * (one_plus ? 1.0f + w[i] : w[i]);
}

void ck_rope_head_ref(float *x, size_t rot_dim, const float *cos, const float *sin) {
    size_t half = rot_dim / 2;
    for (size_t i = 0; i < half; i++) {
        float a = x[i], b = x[i + half];
        x[i] = a * cos[i] - b * sin[i];
        x[i + half] = b * cos[i] + a * sin[i];
    }
}

void ck_rope_angles_ref(float *cos_out, float *sin_out, int32_t pos, const double *inv_freq, size_t half) {
    for (size_t i = 0; i < half; i++) {
        double a = (double)pos * inv_freq[i];
        cos_out[i] = (float)cos(a);
        sin_out[i] = (float)sin(a);
    }
}

void ck_axpy_ref(float *y, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void ck_axpy_f16_ref(float *y, float a, const uint16_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * ck_f16_to_f32(x[i]);
}

void ck_to_f16_ref(uint16_t *dst, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ck_f32_to_f16_sat(x[i]);
}

/* Element i of a KV cache row of dtype dt (CK_F32 or CK_F16), as a float. */
static float kv_get(const void *row, ck_dtype dt, size_t i) {
    return dt == CK_F16 ? ck_f16_to_f32(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

float ck_glu_ref(float g, float u, ck_act act) {
    if (act == CK_ACT_GELU_TANH) { /* 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) */
        float c = CK_GELU_C;
        return 0.5f * g * (1.0f + tanhf(c * (g + 0.044715f * g * g * g))) * u;
    }
    return g / (1.0f + expf(-g)) * u;
}

void ck_glu_rows_ref(float *out, const float *gate, const float *up, size_t n, ck_act act) {
    for (size_t i = 0; i < n; i++) out[i] = ck_glu_ref(gate[i], up[i], act);
}

/* The first key row t sees (its window's start). */
static size_t first_key(const ck_attn_args *a, size_t t) {
    size_t pos = (size_t)a->pos[t];
    return a->window && pos + 1 > a->window ? pos + 1 - a->window : 0;
}

void ck_attn_segments(const ck_attn_args *a, size_t t, size_t *s0, size_t *s1) {
    *s0 = first_key(a, t) / CK_ATTN_SEG;
    *s1 = (size_t)a->pos[t] / CK_ATTN_SEG + 1;
}

void ck_attn_seg_keys(const ck_attn_args *a, size_t t, size_t s, size_t *j0, size_t *j1) {
    size_t lo = first_key(a, t), hi = (size_t)a->pos[t] + 1;
    *j0 = s * CK_ATTN_SEG > lo ? s * CK_ATTN_SEG : lo;
    *j1 = (s + 1) * CK_ATTN_SEG < hi ? (s + 1) * CK_ATTN_SEG : hi;
}

void ck_attn_merge(float *M, float *L, float *ACC, float m, float l, const float *acc, size_t hd) {
    if (m == -INFINITY) return; /* a segment whose every score is -inf weighs nothing */
    float mx = m > *M ? m : *M, ca = expf(*M - mx), cb = expf(m - mx);
    *L = *L * ca + l * cb;
    for (size_t d = 0; d < hd; d++) ACC[d] = ACC[d] * ca + acc[d] * cb;
    *M = mx;
}

void ck_attention_row_ref(const ck_attn_args *a, size_t t, size_t h) {
    size_t hd = a->head_dim, group = a->n_heads / a->n_kv_heads, kvh = h / group, s0, s1;
    const float *q = a->q + (t * a->n_heads + h) * hd;
    float *out = a->out + (t * a->n_heads + h) * hd;
    float acc[hd], M = -INFINITY, L = 0.0f;
    for (size_t d = 0; d < hd; d++) out[d] = 0.0f; /* the merged accumulator lives in out */
    ck_attn_segments(a, t, &s0, &s1);
    for (size_t sg = s0; sg < s1; sg++) {
        size_t j0, j1;
        ck_attn_seg_keys(a, t, sg, &j0, &j1);
        float m = -INFINITY, l = 0.0f;
        for (size_t d = 0; d < hd; d++) acc[d] = 0.0f;
        for (size_t j = j0; j < j1; j++) {
            size_t at = (j * a->n_kv_heads + kvh) * hd * ck_kv_bytes(a->kv_dtype);
            const void *k = (const char *)a->k_cache + at, *v = (const char *)a->v_cache + at;
            float s = 0.0f;
            for (size_t d = 0; d < hd; d++) s += q[d] * kv_get(k, a->kv_dtype, d);
            s *= a->scale;
            if (a->softcap > 0) s = a->softcap * tanhf(s / a->softcap);
            if (s > m) { /* rescale what was accumulated under the old maximum */
                float c = expf(m - s);
                l *= c;
                for (size_t d = 0; d < hd; d++) acc[d] *= c;
                m = s;
            }
            float p = expf(s - m);
            l += p;
            for (size_t d = 0; d < hd; d++) acc[d] += p * kv_get(v, a->kv_dtype, d);
        }
        ck_attn_merge(&M, &L, out, m, l, acc, hd);
    }
    for (size_t d = 0; d < hd; d++) out[d] /= L;
}

void ck_conv1d_channel_ref(float *y, const float *x, float *state, const float *w_c, size_t T, size_t C, size_t K,
                           size_t c, int silu) {
    size_t S = K - 1; /* state rows */
    for (size_t t = 0; t < T; t++) {
        /* input row r of xx = [state; x] for r = t + j */
        float acc = 0.0f;
        for (size_t j = 0; j < K; j++) {
            size_t r = t + j;
            float v = r < S ? state[r * C + c] : x[(r - S) * C + c];
            acc += w_c[j] * v;
        }
        y[t * C + c] = silu ? acc / (1.0f + expf(-acc)) : acc;
    }
    /* new state: rows T .. T+S-1 of xx */
    for (size_t i = 0; i < S; i++) {
        size_t r = T + i;
        state[i * C + c] = r < S ? state[r * C + c] : x[(r - S) * C + c];
    }
}

float ck_softplus_ref(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

static float inv_l2(const float *x, size_t n) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    return (float)(1.0 / sqrt(ss + 1e-6));
}

void ck_gated_delta_head_ref(const ck_gdn_args *a, size_t h) {
    size_t dk = a->k_head_dim, dv = a->v_head_dim, nv = a->n_v_heads, kh = h / (nv / a->n_k_heads);
    float *S = a->state + h * dk * dv; /* [dk, dv] */
    float q[dk], k[dk], mem[dv];
    for (size_t t = 0; t < a->T; t++) {
        const float *qt = a->q + t * a->q_stride + kh * dk, *kt = a->k + t * a->k_stride + kh * dk;
        const float *vt = a->v + t * a->v_stride + h * dv;
        float qs = a->q_scale, ks = 1.0f;
        if (a->l2norm) {
            qs *= inv_l2(qt, dk);
            ks = inv_l2(kt, dk);
        }
        for (size_t i = 0; i < dk; i++) {
            q[i] = qt[i] * qs;
            k[i] = kt[i] * ks;
        }
        float decay = expf(a->g[t * nv + h]), beta = a->beta[t * nv + h];
        /* decay the state and read what it predicts for k: mem = S^T k */
        for (size_t j = 0; j < dv; j++) mem[j] = 0.0f;
        for (size_t i = 0; i < dk; i++) {
            float *row = S + i * dv;
            for (size_t j = 0; j < dv; j++) {
                row[j] *= decay;
                mem[j] += row[j] * k[i];
            }
        }
        for (size_t j = 0; j < dv; j++) mem[j] = (vt[j] - mem[j]) * beta; /* delta */
        /* write the correction and read out: out = S^T q */
        float *out = a->out + (t * nv + h) * dv;
        for (size_t j = 0; j < dv; j++) out[j] = 0.0f;
        for (size_t i = 0; i < dk; i++) {
            float *row = S + i * dv;
            for (size_t j = 0; j < dv; j++) {
                row[j] += k[i] * mem[j];
                out[j] += row[j] * q[i];
            }
        }
    }
}

void ck_rmsnorm_gated_ref(float *y, const float *x, const float *z, const float *w, size_t n, float eps) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float inv = ck_rms_scale(ss, n, eps);
    for (size_t i = 0; i < n; i++) y[i] = x[i] * inv * w[i] * (z[i] / (1.0f + expf(-z[i])));
}
