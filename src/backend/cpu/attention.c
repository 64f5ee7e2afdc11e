/* attention.c — grouped-query attention on the CPU with the kernel set's dot/axpy (see kernels.h): for one
 * query row and one KV head, every query head of the group walks the cached keys and values (f32 or f16
 * rows) once per segment (ref.h's CK_ATTN_SEG), with an online softmax (running max m, running sum l,
 * unnormalized accumulator per head), so no score buffer is needed; the segments' states are merged in
 * order. Numerically the same recurrence as ck_attention_row_ref. A kernel set may bring its own segment
 * walker for common head dims (k->attn_seg), which then serves every row of every batch. */
#include "backend/cpu/kernels.h"

#include <math.h>
#include <string.h>

void ck_attention_seg(const ck_attn_args *a, size_t t, size_t kvh, size_t s, float *m, float *l, float *acc,
                      const ck_cpu_kernels *k) {
    size_t hd = a->head_dim, group = a->n_heads / a->n_kv_heads, j0, j1;
    ck_attn_seg_keys(a, t, s, &j0, &j1);
    if (k->attn_seg && hd % 16 == 0 && hd <= CK_ATTN_MAX_HD) {
        k->attn_seg(a, t, kvh, j0, j1, m, l, acc);
        return;
    }
    size_t row = a->n_kv_heads * hd;
    ck_dot_fn dot = k->dot[a->kv_dtype];
    size_t eb = ck_kv_bytes(a->kv_dtype), rb = row * eb; /* bytes of a value, of a cache row */
    const float *q = a->q + (t * a->n_heads + kvh * group) * hd;
    for (size_t g = 0; g < group; g++) {
        m[g] = -INFINITY, l[g] = 0.0f;
        memset(acc + g * hd, 0, hd * sizeof *acc);
    }
    const char *kr = (const char *)a->k_cache + j0 * rb + kvh * hd * eb;
    const char *vr = (const char *)a->v_cache + j0 * rb + kvh * hd * eb;
    for (size_t j = j0; j < j1; j++, kr += rb, vr += rb) {
        for (size_t g = 0; g < group; g++) {
            float sc = dot(q + g * hd, kr, hd) * a->scale;
            if (a->softcap > 0) sc = a->softcap * tanhf(sc / a->softcap);
            float *ag = acc + g * hd;
            if (sc > m[g]) { /* rescale what was accumulated under the old maximum */
                float c = expf(m[g] - sc);
                l[g] *= c;
                for (size_t d = 0; d < hd; d++) ag[d] *= c;
                m[g] = sc;
            }
            float p = expf(sc - m[g]);
            l[g] += p;
            if (a->kv_dtype == CK_F16) k->axpy_f16(ag, p, (const uint16_t *)vr, hd);
            else k->axpy(ag, p, (const float *)vr, hd);
        }
    }
}

size_t ck_attn_work_floats(const ck_attn_args *a) {
    size_t hd = a->head_dim, group = a->n_heads / a->n_kv_heads, tile = CK_ATTN_TILE_ROWS * hd;
    return group * (hd + 4) > tile ? group * (hd + 4) : tile;
}

void ck_attention_group(const ck_attn_args *a, size_t t, size_t kvh, const ck_cpu_kernels *k, float *work) {
    size_t hd = a->head_dim, group = a->n_heads / a->n_kv_heads, s0, s1;
    float *out = a->out + (t * a->n_heads + kvh * group) * hd; /* the group's heads are consecutive */
    float *m = work, *l = m + group, *M = l + group, *L = M + group, *acc = L + group;
    for (size_t g = 0; g < group; g++) M[g] = -INFINITY, L[g] = 0.0f; /* the merged accumulators live in out */
    memset(out, 0, group * hd * sizeof *out);
    ck_attn_segments(a, t, &s0, &s1);
    for (size_t s = s0; s < s1; s++) {
        ck_attention_seg(a, t, kvh, s, m, l, acc, k);
        for (size_t g = 0; g < group; g++) ck_attn_merge(&M[g], &L[g], out + g * hd, m[g], l[g], acc + g * hd, hd);
    }
    for (size_t g = 0; g < group; g++)
        for (size_t d = 0; d < hd; d++) out[g * hd + d] /= L[g];
}

void ck_attention_tokens(const ck_attn_args *a, size_t t0, size_t t1, size_t kvh, const ck_cpu_kernels *k,
                         float *work) {
    size_t hd = a->head_dim;
    if (k->attn_tokens && hd % 16 == 0 && hd <= CK_ATTN_MAX_HD && k->attn_tokens(a, t0, t1, kvh, work) == 0) return;
    for (size_t t = t0; t < t1; t++) ck_attention_group(a, t, kvh, k, work);
}
