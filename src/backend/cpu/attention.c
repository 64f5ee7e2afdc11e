/* attention.c — grouped-query attention on the CPU with the kernel set's dot/axpy (see kernels.h):
 * for one query row and one KV head, every query head of the group walks the cached keys and values
 * (f32 or f16 rows) once, with an online softmax (running max m, running sum l, unnormalized accumulator
 * per head), so no score buffer is needed. Numerically the same recurrence as ck_attention_row_ref. A
 * kernel set may bring its own version for common head dims (k->attn), which then serves every row of
 * every batch. */
#include "backend/cpu/kernels.h"

#include <math.h>

#define MAX_GROUP 64   /* query heads per KV head handled in one pass; larger groups are split */

void ck_attention_group(const ck_attn_args *a, size_t t, size_t kvh, const ck_cpu_kernels *k) {
    size_t hd = a->head_dim, group = a->n_heads / a->n_kv_heads;
    if (k->attn && hd % 16 == 0 && hd <= CK_ATTN_MAX_HD) {
        k->attn(a, t, kvh);
        return;
    }
    size_t pos = (size_t)a->pos[t], start = 0, row = a->n_kv_heads * hd;
    if (a->window && pos + 1 > a->window) start = pos + 1 - a->window;
    ck_dot_fn dot = k->dot[a->kv_dtype];
    size_t eb = ck_kv_bytes(a->kv_dtype), rb = row * eb; /* bytes of a value, of a cache row */
    for (size_t g0 = 0; g0 < group; g0 += MAX_GROUP) {
        size_t ng = group - g0 < MAX_GROUP ? group - g0 : MAX_GROUP, h0 = kvh * group + g0;
        const float *q = a->q + (t * a->n_heads + h0) * hd;
        float *out = a->out + (t * a->n_heads + h0) * hd;
        float m[MAX_GROUP], l[MAX_GROUP];
        for (size_t g = 0; g < ng; g++) {
            m[g] = -INFINITY;
            l[g] = 0.0f;
            for (size_t d = 0; d < hd; d++) out[g * hd + d] = 0.0f; /* the accumulators live in out */
        }
        const char *kr = (const char *)a->k_cache + start * rb + kvh * hd * eb;
        const char *vr = (const char *)a->v_cache + start * rb + kvh * hd * eb;
        for (size_t j = start; j <= pos; j++, kr += rb, vr += rb) {
            for (size_t g = 0; g < ng; g++) {
                float s = dot(q + g * hd, kr, hd) * a->scale;
                if (a->softcap > 0) s = a->softcap * tanhf(s / a->softcap);
                float *acc = out + g * hd;
                if (s > m[g]) { /* rescale what was accumulated under the old maximum */
                    float c = expf(m[g] - s);
                    l[g] *= c;
                    for (size_t d = 0; d < hd; d++) acc[d] *= c;
                    m[g] = s;
                }
                float p = expf(s - m[g]);
                l[g] += p;
                if (a->kv_dtype == CK_F16) k->axpy_f16(acc, p, (const uint16_t *)vr, hd);
                else k->axpy(acc, p, (const float *)vr, hd);
            }
        }
        for (size_t g = 0; g < ng; g++)
            for (size_t d = 0; d < hd; d++) out[g * hd + d] /= l[g];
    }
}

void ck_attention_tokens(const ck_attn_args *a, size_t t0, size_t t1, size_t kvh, const ck_cpu_kernels *k) {
    size_t hd = a->head_dim;
    if (k->attn_tokens && hd % 16 == 0 && hd <= CK_ATTN_MAX_HD) {
        k->attn_tokens(a, t0, t1, kvh);
        return;
    }
    for (size_t t = t0; t < t1; t++) ck_attention_group(a, t, kvh, k);
}
