/* backend_harness.c — what tests/test_backend.c's parts share: the backend instance under test, the random
 * inputs, backend memory moved only through the ops table, the comparisons against double-precision
 * references with their worst ratios, weights as host views prepared on the backend, and the attention
 * reference with KV caches of either type. See backend_harness.h. */
#include "backend_harness.h"

#include "tensor/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double mm_rtol = RTOL;
int on_cpu = 1;

ck_backend *B;
char desc[200];
uint32_t rng = 20240611u;

float frand(void) { /* [-1, 1) */
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}
float urand(void) { return 0.5f * (frand() + 1.0f); } /* [0, 1) */

void *xmalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}
float *hrand(size_t n, float s) {
    float *h = xmalloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = s * frand();
    return h;
}
double *dnew(size_t n) { return xmalloc(n * sizeof(double)); }

/* ---- backend memory: only through the table ---- */

float *dev(const float *h, size_t n) { /* n floats, uploaded from h when not NULL */
    float *d = B->alloc(B, (n ? n : 1) * sizeof *d);
    if (!d) {
        fprintf(stderr, "%s: alloc of %zu floats failed\n", B->name, n);
        exit(2);
    }
    if (h && n) B->upload(B, d, h, n * sizeof *d);
    return d;
}
void *dev_bytes(const void *h, size_t bytes) { /* raw backend memory, uploaded from h */
    void *d = B->alloc(B, bytes ? bytes : 1);
    if (!d) {
        fprintf(stderr, "%s: alloc of %zu bytes failed\n", B->name, bytes);
        exit(2);
    }
    if (h && bytes) B->upload(B, d, h, bytes);
    return d;
}
float *down(const float *d, size_t n) {
    float *h = xmalloc(n * sizeof *h);
    if (n) B->download(B, h, d, n * sizeof *h);
    return h;
}
void synced(const char *op) {
    int tag = 12345;
    char err[256] = "";
    int rc = B->sync(B, &tag, err, sizeof err);
    CK_EXPECT(rc == 0 && tag == CK_TAG_NONE, "%s %s: sync returned %d (tag %d): %s", op, desc, rc, tag, err);
}

/* ---- comparison ---- */

stat_ stats[32];
size_t n_stats;

void note(const char *op, double r) {
    size_t i = 0;
    while (i < n_stats && strcmp(stats[i].op, op)) i++;
    if (i == n_stats && n_stats < N_OF(stats)) stats[n_stats++] = (stat_){op, 0};
    if (i < n_stats && r > stats[i].worst) stats[i].worst = r;
}

/* got (a downloaded result) against want within RTOL * mag[i]; mag NULL: exactly. */

void cmp_rtol(const char *op, const float *got, const double *want, const double *mag, size_t n, double rtol) {
    size_t bad = 0, first = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]), tol = mag ? rtol * mag[i] : 0;
        if (mag && mag[i] > 0 && e / mag[i] > worst) worst = e / mag[i];
        if (!(e <= tol) && !bad++) first = i;
    }
    note(op, worst);
    CK_EXPECT(bad == 0, "%s %s: %zu of %zu values off, first [%zu]: got %.9g want %.9g (tol %.3g)", op, desc, bad,
              n, first, bad ? got[first] : 0.0, bad ? want[first] : 0.0, bad && mag ? rtol * mag[first] : 0.0);
}
void cmp(const char *op, const float *got, const double *want, const double *mag, size_t n) {
    double rtol = strncmp(op, "matmul", 6) ? (on_cpu ? RTOL : RTOL_GPU)
                                           : (on_cpu ? mm_rtol : fmax(mm_rtol, RTOL_GPU_MATMUL));
    if (!on_cpu && !strcmp(op, "attention")) rtol = fmax(rtol, mm_rtol); /* fast path: f16 tensor cores */
    cmp_rtol(op, got, want, mag, n, rtol);
}
void cmp_f(const char *op, const float *got, const float *want, size_t n) { /* exact, float want */
    double *w = dnew(n);
    for (size_t i = 0; i < n; i++) w[i] = want[i];
    cmp(op, got, w, NULL, n);
    free(w);
}

/* ---- weights: host views prepared on B ---- */

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}
static uint16_t to_f16(float f) { /* |f| <= 1: normal or zero halves */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, e = (u >> 23) & 0xff, man = (u >> 13) & 0x3ff;
    if (e < 127 - 14) return (uint16_t)sign;
    return (uint16_t)(sign | ((e - 127 + 15) << 10) | man);
}

/* A random [rows, cols] weight of dtype dt; vals gets the values as stored (after rounding to dt). */
/* vals: the weight's values as the backend holds them (16-bit and quantized ones as they decode). Q8_0 and
 * Q4_K weights: the random values quantized (cols a multiple of the block). */
void weight_new(hw *w, ck_dtype dt, size_t rows, size_t cols, double *vals) {
    size_t n = rows * cols, bytes = 0;
    CK_EXPECT(ck_dtype_row_bytes(dt, n, &bytes) == 0, "weight_new: %s rows of %zu", ck_dtype_name(dt), cols);
    w->mem = xmalloc(bytes);
    if (dt == CK_Q8_0 || dt == CK_Q4_K) {
        float *f = hrand(n, 1.0f), *back = xmalloc(n * sizeof *back);
        (dt == CK_Q8_0 ? ck_quantize_q8_0 : ck_quantize_q4_k)(w->mem, f, n);
        (dt == CK_Q8_0 ? ck_dequant_q8_0 : ck_dequant_q4_k)(back, w->mem, n);
        for (size_t i = 0; i < n; i++) vals[i] = back[i];
        free(f), free(back);
    }
    else for (size_t i = 0; i < n; i++) {
        float f = frand();
        if (dt == CK_F32) ((float *)w->mem)[i] = f, vals[i] = f;
        else if (dt == CK_BF16) vals[i] = ck_bf16_to_f32(((uint16_t *)w->mem)[i] = to_bf16(f));
        else vals[i] = ck_f16_to_f32(((uint16_t *)w->mem)[i] = to_f16(f));
    }
    w->t = (ck_tensor){.dtype = dt, .ndim = 2, .shape = {rows, cols}, .data = w->mem};
    char err[256] = "";
    int rc = B->prepare_weight(B, &w->t, err, sizeof err);
    CK_EXPECT(rc == 0, "prepare_weight %s [%zu, %zu]: %s", ck_dtype_name(dt), rows, cols, err);
    if (rc) exit(1);
}
void weight_free(hw *w) {
    B->release_weight(B, &w->t);
    free(w->mem);
}

/* ---- attention: the reference and the caches ---- */

/* Reference over host copies (a->out, a->k_cache, a->v_cache unused: kc and vc are the caches' values as
 * floats); mag = sum p |v| / l * (1 + max_j scale * sum |q k|). */
void attn_ref(const ck_attn_args *a, const float *kc, const float *vc, double *want, double *mag) {
    size_t hd = a->head_dim, group = a->n_heads / a->n_kv_heads, ctx = 0;
    for (size_t t = 0; t < a->T; t++)
        if ((size_t)a->pos[t] + 1 > ctx) ctx = (size_t)a->pos[t] + 1;
    double *s = dnew(ctx);
    for (size_t t = 0; t < a->T; t++)
        for (size_t h = 0; h < a->n_heads; h++) {
            size_t pos = (size_t)a->pos[t], start = a->window && pos + 1 > a->window ? pos + 1 - a->window : 0;
            const float *q = a->q + (t * a->n_heads + h) * hd;
            double mx = -INFINITY, smag = 0, l = 0;
            for (size_t j = start; j <= pos; j++) {
                const float *k = kc + (j * a->n_kv_heads + h / group) * hd;
                double d = 0, m = 0;
                for (size_t i = 0; i < hd; i++) d += (double)q[i] * k[i], m += fabs((double)q[i] * k[i]);
                d *= a->scale;
                if (a->softcap > 0) d = a->softcap * tanh(d / a->softcap);
                s[j] = d;
                if (d > mx) mx = d;
                if (m * fabs(a->scale) > smag) smag = m * fabs(a->scale);
            }
            for (size_t j = start; j <= pos; j++) l += (s[j] = exp(s[j] - mx));
            for (size_t i = 0; i < hd; i++) {
                double o = 0, m = 0;
                for (size_t j = start; j <= pos; j++) {
                    double v = vc[(j * a->n_kv_heads + h / group) * hd + i];
                    o += s[j] * v, m += s[j] * fabs(v);
                }
                want[(t * a->n_heads + h) * hd + i] = o / l;
                mag[(t * a->n_heads + h) * hd + i] = m / l * (1 + smag);
            }
        }
    free(s);
}

/* A KV cache of dtype dt on the backend from host floats h[n]; for f16, h is first rounded in place to the
 * values the cache holds (ck_f32_to_f16_sat), so that the reference reads what the backend reads. */
void *dev_kv(float *h, size_t n, ck_dtype dt) {
    if (dt == CK_F32) return dev(h, n);
    uint16_t *b = xmalloc((n ? n : 1) * sizeof *b);
    for (size_t i = 0; i < n; i++) b[i] = ck_f32_to_f16_sat(h[i]), h[i] = ck_f16_to_f32(b[i]);
    void *d = dev_bytes(b, n * sizeof *b);
    free(b);
    return d;
}
/* The n values of a backend KV cache of dtype dt, as floats. */
float *down_kv(const void *d, size_t n, ck_dtype dt) {
    if (dt == CK_F32) return down(d, n);
    uint16_t *b = xmalloc((n ? n : 1) * sizeof *b);
    float *h = xmalloc((n ? n : 1) * sizeof *h);
    if (n) B->download(B, b, d, n * sizeof *b);
    for (size_t i = 0; i < n; i++) h[i] = ck_f16_to_f32(b[i]);
    free(b);
    return h;
}
