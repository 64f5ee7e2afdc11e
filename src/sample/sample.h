/* sample.h — next-token sampling from logits: repeat penalty over the last tokens, then greedy
 * (temperature <= 0) or temperature -> top-k -> top-p sampling with a seeded generator, so the same seed
 * gives the same text. Works in a caller-sized scratch buffer: nothing is allocated per token. */
#ifndef CK_SAMPLE_H
#define CK_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_sample_params {
    float temperature;     /* <= 0: greedy */
    int top_k;             /* <= 0: off */
    float top_p;           /* >= 1: off */
    float repeat_penalty;  /* 1: off */
    int repeat_last_n;     /* tokens of history the penalty looks at */
    uint64_t seed;
} ck_sample_params;

typedef struct ck_sampler {
    ck_sample_params p;
    uint64_t rng;          /* xorshift64* state */
    size_t vocab;
    float *probs;          /* [vocab] scratch */
    int32_t *idx;          /* [vocab] scratch */
} ck_sampler;

int ck_sampler_init(ck_sampler *s, const ck_sample_params *p, size_t vocab);
void ck_sampler_free(ck_sampler *s);

/* Picks the next id. logits[vocab] is modified in place (penalty, temperature). history holds the
 * tokens so far (prompt and generated); the last repeat_last_n of them are penalized. */
int32_t ck_sampler_next(ck_sampler *s, float *logits, const int32_t *history, size_t n_history);

/* Index of the largest value (the lowest index on ties). */
int32_t ck_argmax(const float *x, size_t n);

#endif
