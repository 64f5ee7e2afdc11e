/* test_sample.c — the sampler: greedy, repeat penalty arithmetic, top-k/top-p cutoffs, seeded
 * reproducibility, and that sampled frequencies follow softmax(logits / temperature). */
#include "sample/sample.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

/* The definition ck_argmax must equal: the first strict running maximum. */
static int32_t argmax_ref(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

/* ck_argmax against the reference on lengths around its 16-wide steps, with ties, signed zeros, NaNs and
 * infinities placed at random. */
static void test_argmax(void) {
    static float x[1200];
    uint64_t r = 12345;
    const float special[] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1.0f, 1.0f};
    for (int round = 0; round < 4000; round++) {
        size_t n = 1 + (size_t)(round % 1200);
        for (size_t i = 0; i < n; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            unsigned v = (unsigned)(r >> 33);
            x[i] = v % 5 == 0 ? special[(v >> 8) % 7] : (float)((int)(v >> 12) % 9) - 4.0f; /* many ties */
        }
        int32_t want = argmax_ref(x, n), got = ck_argmax(x, n);
        CK_EXPECT(got == want, "argmax of %zu values: %d, reference %d", n, got, want);
    }
    CK_EXPECT(ck_argmax(x, 0) == 0, "argmax of nothing");
}

static ck_sample_params params(float temp, int top_k, float top_p, float pen, uint64_t seed) {
    ck_sample_params p = {temp, top_k, top_p, pen, 64, seed};
    return p;
}

int main(void) {
    test_argmax();
    ck_sampler s;
    float l[4];
    ck_sample_params p = params(0, 0, 1, 1, 1);
    ck_sampler_init(&s, &p, 4);
    memcpy(l, (float[]){1, 3, 3, 2}, sizeof l);
    CK_EXPECT(ck_sampler_next(&s, l, NULL, 0) == 1, "greedy takes the first maximum");
    ck_sampler_free(&s);

    /* penalty: positive logits divided, negative multiplied, each seen token once */
    p = params(0, 0, 1, 2.0f, 1);
    ck_sampler_init(&s, &p, 4);
    memcpy(l, (float[]){4, -1, 3, 2}, sizeof l);
    int32_t hist[] = {0, 1, 0, 0};
    int32_t id = ck_sampler_next(&s, l, hist, 4);
    CK_EXPECT(l[0] == 2.0f && l[1] == -2.0f && l[2] == 3.0f && l[3] == 2.0f, "penalized logits %g %g %g %g", l[0],
              l[1], l[2], l[3]);
    CK_EXPECT(id == 2, "greedy after penalty picked %d", id);
    ck_sampler_free(&s);

    /* top-k 1 and a tiny top-p are greedy whatever the temperature */
    for (int mode = 0; mode < 2; mode++) {
        p = mode ? params(5, 0, 0.01f, 1, 7) : params(5, 1, 1, 1, 7);
        ck_sampler_init(&s, &p, 4);
        for (int i = 0; i < 50; i++) {
            memcpy(l, (float[]){0.1f, 0.3f, 0.2f, 0.0f}, sizeof l);
            CK_EXPECT(ck_sampler_next(&s, l, NULL, 0) == 1, "mode %d draw %d not the top token", mode, i);
        }
        ck_sampler_free(&s);
    }

    /* same seed, same draws; another seed, other draws */
    int32_t a[64], b[64], c[64];
    uint64_t seeds[3] = {42, 42, 43};
    int32_t *outs[3] = {a, b, c};
    for (int k = 0; k < 3; k++) {
        p = params(1, 0, 1, 1, seeds[k]);
        ck_sampler_init(&s, &p, 4);
        for (int i = 0; i < 64; i++) {
            memcpy(l, (float[]){0, 0, 0, 0}, sizeof l);
            outs[k][i] = ck_sampler_next(&s, l, NULL, 0);
        }
        ck_sampler_free(&s);
    }
    CK_EXPECT(!memcmp(a, b, sizeof a), "same seed gave different draws");
    CK_EXPECT(memcmp(a, c, sizeof a), "different seeds gave identical draws");

    /* frequencies follow softmax(logits / T) */
    double want[4] = {0.5, 0.3, 0.15, 0.05}, count[4] = {0};
    const float T = 0.7f;
    p = params(T, 0, 1, 1, 299792458);
    ck_sampler_init(&s, &p, 4);
    const int N = 40000;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 4; j++) l[j] = (float)(T * log(want[j]));
        count[ck_sampler_next(&s, l, NULL, 0)]++;
    }
    ck_sampler_free(&s);
    for (int j = 0; j < 4; j++)
        CK_EXPECT(fabs(count[j] / N - want[j]) < 0.01, "token %d frequency %.4f want %.4f", j, count[j] / N, want[j]);

    /* top-p 0.75 keeps {0.5, 0.3}: token 2 and 3 never drawn, the rest renormalized */
    p = params(1, 0, 0.75f, 1, 5);
    ck_sampler_init(&s, &p, 4);
    memset(count, 0, sizeof count);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 4; j++) l[j] = (float)log(want[j]);
        count[ck_sampler_next(&s, l, NULL, 0)]++;
    }
    ck_sampler_free(&s);
    CK_EXPECT(count[2] == 0 && count[3] == 0, "top-p let through %g and %g", count[2], count[3]);
    CK_EXPECT(fabs(count[0] / N - 0.625) < 0.01, "top-p renormalized frequency %.4f", count[0] / N);
    return ck_test_done("test_sample");
}
