/* sample.c — see sample.h. The repeat penalty follows the common rule: a seen token's logit is divided
 * by the penalty when positive and multiplied when negative (each distinct token once). */
#include "sample/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ck_sampler_init(ck_sampler *s, const ck_sample_params *p, size_t vocab) {
    memset(s, 0, sizeof *s);
    s->p = *p;
    s->vocab = vocab;
    s->rng = p->seed ? p->seed : 0x9e3779b97f4a7c15ull;
    s->probs = malloc(vocab * sizeof *s->probs);
    s->idx = malloc(vocab * sizeof *s->idx);
    if (!s->probs || !s->idx) {
        ck_sampler_free(s);
        return -1;
    }
    return 0;
}

void ck_sampler_free(ck_sampler *s) {
    free(s->probs);
    free(s->idx);
    s->probs = NULL;
    s->idx = NULL;
}

/* The first index of the largest value; NaNs never win, and a NaN at index 0 is returned as the scalar
 * loop `if (x[i] > x[best]) best = i` would. One pass the compiler vectorizes, since nothing is carried
 * from element to element but sixteen running maxima: each block of 256 values gets its largest value
 * (`>` as in that loop, so a NaN never replaces one), and the first block whose largest beats every block
 * before it is remembered; then that block is searched for the first index holding the value (-0 and +0
 * compare equal, as they do for that loop, which keeps the first of them). 151936 logits: ~30 us from
 * cache, ~55 from memory (that scalar loop ~220). */
int32_t ck_argmax(const float *x, size_t n) {
    enum { L = 16, BLOCK = 256 };
    if (n == 0 || x[0] != x[0]) return 0;
    float best = x[0];
    size_t at = 0; /* the block holding best's first occurrence */
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t len = n - b < BLOCK ? n - b : BLOCK;
        float m[L], bm = -INFINITY;
        for (int k = 0; k < L; k++) m[k] = -INFINITY;
        size_t i = 0;
        for (; i + L <= len; i += L)
            for (int k = 0; k < L; k++) m[k] = x[b + i + k] > m[k] ? x[b + i + k] : m[k];
        for (; i < len; i++) m[0] = x[b + i] > m[0] ? x[b + i] : m[0];
        for (int k = 0; k < L; k++) bm = m[k] > bm ? m[k] : bm;
        if (bm > best) best = bm, at = b;
    }
    for (size_t i = at;; i++)
        if (x[i] == best) return (int32_t)i;
}

static double next_uniform(ck_sampler *s) {
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0; /* [0, 1) */
}

static void apply_penalty(ck_sampler *s, float *logits, const int32_t *hist, size_t n) {
    if (s->p.repeat_penalty == 1.0f || s->p.repeat_last_n <= 0) return;
    size_t from = n > (size_t)s->p.repeat_last_n ? n - (size_t)s->p.repeat_last_n : 0;
    /* idx doubles as a "seen" marker so that each distinct token is penalized once */
    for (size_t i = from; i < n; i++)
        if (hist[i] >= 0 && (size_t)hist[i] < s->vocab) s->idx[hist[i]] = -1;
    for (size_t i = from; i < n; i++) {
        int32_t t = hist[i];
        if (t < 0 || (size_t)t >= s->vocab || s->idx[t] != -1) continue;
        s->idx[t] = 0;
        logits[t] = logits[t] >= 0 ? logits[t] / s->p.repeat_penalty : logits[t] * s->p.repeat_penalty;
    }
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *p = ctx;
    float x = p[*(const int32_t *)a], y = p[*(const int32_t *)b];
    return x < y ? 1 : x > y ? -1 : (*(const int32_t *)a - *(const int32_t *)b);
}

int32_t ck_sampler_next(ck_sampler *s, float *logits, const int32_t *history, size_t n_history) {
    apply_penalty(s, logits, history, n_history);
    if (s->p.temperature <= 0.0f) return ck_argmax(logits, s->vocab);
    size_t V = s->vocab, n = V;
    float mx = logits[ck_argmax(logits, V)];
    double sum = 0.0;
    for (size_t i = 0; i < V; i++) {
        s->probs[i] = expf((logits[i] - mx) / s->p.temperature);
        s->idx[i] = (int32_t)i;
    }
    int need_sort = (s->p.top_k > 0 && (size_t)s->p.top_k < V) || s->p.top_p < 1.0f;
    if (need_sort) {
        qsort_r(s->idx, V, sizeof *s->idx, cmp_desc, s->probs);
        if (s->p.top_k > 0 && (size_t)s->p.top_k < n) n = (size_t)s->p.top_k;
        if (s->p.top_p < 1.0f) {
            double tot = 0.0, run = 0.0;
            for (size_t i = 0; i < n; i++) tot += s->probs[s->idx[i]];
            for (size_t i = 0; i < n; i++) {
                run += s->probs[s->idx[i]];
                if (run >= s->p.top_p * tot) {
                    n = i + 1;
                    break;
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++) sum += s->probs[s->idx[i]];
    double r = next_uniform(s) * sum, acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        acc += s->probs[s->idx[i]];
        if (r < acc) return s->idx[i];
    }
    return s->idx[n - 1];
}
