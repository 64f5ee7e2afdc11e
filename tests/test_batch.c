/* test_batch.c — batched decoding is batch-invariant: sequences decoded together (ck_session_step), joining
 * and leaving at different steps and at different positions, get logits bit-identical to the same
 * sequences decoded alone, for dense, sliding-window, MoE and Gated DeltaNet families; and generations
 * stepped together (ck_gen_step) stream exactly the text ck_generate gives for each alone, greedy and
 * sampled, with stop strings and max_tokens ending them at different steps, and with prompts that run in
 * the steps (ck_gen_queue: chunked prefill sharing forwards with the others' tokens). Models spread over
 * devices (CPU engines here) batch the same way, part after part. The argmax a feed asks the backend for
 * (greedy decoding without copying the logits out) is the logits' argmax, alone and batched. */
#include "cake.h"
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SEQ 5
#define N_STEPS 8

static const size_t prompt_len[N_SEQ] = {3, 17, 1, 70, 9};
static const size_t join_at[N_SEQ] = {0, 0, 2, 3, 5}; /* global step at which each sequence starts */

static uint32_t rng = 12345;
static int on_gpu; /* CK_TEST_BACKEND names a GPU */
static int32_t rand_id(size_t V) {
    rng = rng * 1664525u + 1013904223u;
    return (int32_t)((rng >> 8) % V);
}

static int32_t argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

/* Decodes every sequence alone, then all together on the join schedule, comparing logits bitwise; on one
 * engine, or (devices) on one spread over devices, whose batches pass through every part. */
static void check_family(const char *name, const char *devices) {
    char dir[512], err[512];
    ck_test_fixture(dir, sizeof dir, name);
    ck_engine *e;
    ck_engine_opts o = {.devices = devices};
    if (ck_engine_open(dir, devices ? &o : NULL, &e, err, sizeof err) != 0) {
        CK_EXPECT(0, "%s: %s", name, err);
        return;
    }
    size_t V = ck_engine_vocab(e);
    int32_t *prompts[N_SEQ];
    float *ref = malloc((size_t)N_SEQ * (N_STEPS + 1) * V * sizeof *ref), *got[N_SEQ];
    for (size_t i = 0; i < N_SEQ; i++) {
        prompts[i] = malloc(prompt_len[i] * sizeof(int32_t));
        for (size_t j = 0; j < prompt_len[i]; j++) prompts[i][j] = rand_id(V);
        got[i] = malloc(V * sizeof(float));
    }
    /* alone: ref[i][0] = the prompt's last logits, ref[i][k] = after k greedy tokens */
    for (size_t i = 0; i < N_SEQ; i++) {
        ck_session *s;
        CK_EXPECT(ck_session_open(e, 0, &s, err, sizeof err) == 0, "%s", err);
        float *r = ref + (size_t)i * (N_STEPS + 1) * V;
        CK_EXPECT(ck_session_forward(s, prompts[i], prompt_len[i], r, 0, err, sizeof err) == 0, "%s", err);
        for (size_t k = 1; k <= N_STEPS; k++) {
            int32_t id = argmax(r + (k - 1) * V, V);
            CK_EXPECT(ck_session_forward(s, &id, 1, r + k * V, 0, err, sizeof err) == 0, "%s", err);
        }
        ck_session_close(s);
        /* greedy on the backend: the argmax of those logits without copying them out */
        int32_t top = -1, next = argmax(r, V);
        CK_EXPECT(ck_session_open(e, 0, &s, err, sizeof err) == 0, "%s", err);
        CK_EXPECT(ck_session_forward_top(s, prompts[i], prompt_len[i], &top, err, sizeof err) == 0 && top == next,
                  "%s: sequence %zu: prompt's top %d, argmax %d (%s)", name, i, top, next, err);
        CK_EXPECT(ck_session_forward_top(s, &top, 1, &top, err, sizeof err) == 0 && top == argmax(r + V, V),
                  "%s: sequence %zu: step's top %d, argmax %d (%s)", name, i, top, argmax(r + V, V), err);
        ck_session_close(s);
    }
    /* together: at global step g, sequences that join run their prompt, the others step as one batch */
    ck_session *ss[N_SEQ];
    size_t done[N_SEQ] = {0};
    int exact = 1;
    for (size_t i = 0; i < N_SEQ; i++) CK_EXPECT(ck_session_open(e, 0, &ss[i], err, sizeof err) == 0, "%s", err);
    for (size_t g = 0; g < join_at[N_SEQ - 1] + N_STEPS; g++) {
        ck_session *batch[N_SEQ];
        int32_t ids[N_SEQ];
        float *out[N_SEQ];
        size_t who[N_SEQ], n = 0;
        for (size_t i = 0; i < N_SEQ; i++) {
            const float *r = ref + (size_t)i * (N_STEPS + 1) * V;
            if (g == join_at[i]) {
                CK_EXPECT(ck_session_forward(ss[i], prompts[i], prompt_len[i], got[i], 0, err, sizeof err) == 0, "%s", err);
                exact &= !memcmp(got[i], r, V * sizeof(float));
            } else if (g > join_at[i] && done[i] < N_STEPS) {
                batch[n] = ss[i], ids[n] = argmax(got[i], V), out[n] = got[i], who[n++] = i;
            }
        }
        if (n == 0) continue;
        /* odd steps as feeds that also take the argmax on the backend */
        ck_feed f[N_SEQ];
        int32_t top[N_SEQ];
        for (size_t j = 0; j < n; j++) f[j] = (ck_feed){batch[j], &ids[j], 1, out[j], g % 2 ? &top[j] : NULL};
        CK_EXPECT((g % 2 ? ck_session_batch(f, n, err, sizeof err) : ck_session_step(batch, n, ids, out, err, sizeof err)) == 0,
                  "%s step %zu: %s", name, g, err);
        for (size_t j = 0; j < n; j++) {
            size_t i = who[j], k = ++done[i];
            CK_EXPECT(g % 2 == 0 || top[j] == argmax(got[i], V), "%s: sequence %zu, token %zu: top %d, argmax %d", name, i,
                      k, top[j], argmax(got[i], V));
            int same = !memcmp(got[i], ref + ((size_t)i * (N_STEPS + 1) + k) * V, V * sizeof(float));
            CK_EXPECT(same, "%s: sequence %zu, token %zu differs in a batch of %zu", name, i, k, n);
            exact &= same;
        }
    }
    printf("%s%s%s%s: %d sequences batched, logits %s\n", name, devices ? " over " : "", devices ? devices : "",
           devices && getenv("CK_PARTS_VIA_HOST") ? " (rows through the host)" : "", N_SEQ,
           exact ? "bit-identical" : "DIFFER");
    /* bad steps are refused */
    ck_session *twice[2] = {ss[0], ss[0]};
    int32_t two[2] = {1, 1};
    float *outs[2] = {got[0], got[1]};
    CK_EXPECT(ck_session_step(twice, 2, two, outs, err, sizeof err) != 0 && strstr(err, "twice"), "duplicate accepted");
    int32_t bad = (int32_t)V;
    CK_EXPECT(ck_session_step(ss, 1, &bad, outs, err, sizeof err) != 0 && strstr(err, "out of range"), "bad id accepted (%s)", err);
    for (size_t i = 0; i < N_SEQ; i++) ck_session_close(ss[i]), free(prompts[i]), free(got[i]);
    free(ref);
    ck_engine_close(e);
}

typedef struct sink {
    char text[4096];
    size_t n;
} sink;

static int on_text(void *user, const char *t, size_t len) {
    sink *s = user;
    if (s->n + len < sizeof s->text) memcpy(s->text + s->n, t, len), s->n += len;
    s->text[s->n] = 0;
    return 0;
}

/* Generations with their own parameters stepped together give the text each gives alone. */
static void check_gens(void) {
    char dir[512], err[512];
    snprintf(dir, sizeof dir, "%s/qwen3-tiny", CK_TEST_UNPACKED);
    ck_engine *e;
    if (ck_engine_open(dir, NULL, &e, err, sizeof err) != 0) {
        CK_EXPECT(0, "%s", err);
        return;
    }
    char long_text[2048] = "";
    for (int i = 0; i < 20; i++) strcat(long_text, "Write a haiku about the sea, please, in English. ");
    const char *texts[4] = {"Explain quantum computing in simple terms.", "Hello", "The capital of France is",
                            long_text}; /* the last one's prompt runs in several chunks */
    static const char *const stops[1] = {"e"};
    ck_gen_params p[4];
    for (int i = 0; i < 4; i++) {
        ck_gen_params_default(&p[i]);
        p[i].max_tokens = 10 + 7 * (size_t)i;
        p[i].temperature = i % 2 ? 0.8f : 0.0f;
        p[i].seed = 7 + (uint64_t)i;
    }
    p[2].stop = stops, p[2].n_stop = 1;
    p[2].repeat_penalty = 1; /* greedy without a penalty: the argmax is taken on the backend (0: on the host) */
    int32_t *ids[4];
    size_t n_ids[4];
    sink alone[4] = {{{0}, 0}}, together[4] = {{{0}, 0}};
    for (int i = 0; i < 4; i++) {
        CK_EXPECT(ck_engine_encode(e, texts[i], strlen(texts[i]), 0, &ids[i], &n_ids[i], err, sizeof err) == 0, "%s", err);
        ck_session *s;
        ck_gen_result r;
        CK_EXPECT(ck_session_open(e, 0, &s, err, sizeof err) == 0, "%s", err);
        p[i].on_text = on_text, p[i].user = &alone[i];
        CK_EXPECT(ck_generate(s, ids[i], n_ids[i], &p[i], &r, err, sizeof err) == 0, "%s", err);
        ck_session_close(s);
    }
    ck_session *ss[4];
    ck_gen *g[4];
    size_t n = 0;
    for (int step = 0; n < 4 || ck_gen_step(g, n) > 0; step++) {
        if (n < 4 && step % 2 == 0) { /* one joins every other step */
            CK_EXPECT(ck_session_open(e, 0, &ss[n], err, sizeof err) == 0, "%s", err);
            p[n].user = &together[n];
            /* odd ones queue their prompt: it runs in the steps, beside the others' tokens */
            int rc = n % 2 ? ck_gen_queue(ss[n], ids[n], n_ids[n], &p[n], &g[n], err, sizeof err)
                           : ck_gen_start(ss[n], ids[n], n_ids[n], &p[n], &g[n], err, sizeof err);
            CK_EXPECT(rc == 0, "%s", err);
            n++;
        }
        if (n < 4) ck_gen_step(g, n);
    }
    for (int i = 0; i < 4; i++) {
        CK_EXPECT(ck_gen_done(g[i]) && !ck_gen_error(g[i]), "generation %d not done", i);
        /* (on a GPU the long prompt runs on cuBLAS alone but in GEMV groups when its chunks share forwards:
         * within the GPU tolerance, not bit for bit, so its random-weight text may part) */
        CK_EXPECT((on_gpu && i == 3) || (alone[i].n > 0 && !strcmp(alone[i].text, together[i].text)),
                  "generation %d: alone '%s', together '%s'", i, alone[i].text, together[i].text);
        ck_gen_free(g[i]);
        ck_session_close(ss[i]);
        free(ids[i]);
    }
    ck_engine_close(e);
}

/* A batch that would fail (a repeated session in a later chunk, an id out of range in its last feed, a
 * feed past the context) is refused before anything runs: every session keeps its position, and
 * ck_session_step takes NULL logits. */
static void check_refused(void) {
    char err[256], dir[512];
    snprintf(dir, sizeof dir, "%s/qwen3-s", CK_TEST_DATA);
    ck_engine *e = NULL;
    ck_session *a = NULL, *b = NULL;
    if (ck_engine_open(dir, NULL, &e, err, sizeof err) != 0 || ck_session_open(e, 200, &a, err, sizeof err) != 0 ||
        ck_session_open(e, 200, &b, err, sizeof err) != 0) {
        CK_EXPECT(0, "open: %s", err);
        goto out;
    }
    int32_t ids[150];
    for (int i = 0; i < 150; i++) ids[i] = i % 100;
    int32_t bad[3] = {1, 2, -1};
    ck_feed twice[2] = {{a, ids, 64, NULL, NULL}, {a, ids, 1, NULL, NULL}};
    ck_feed badid[3] = {{a, ids, 1, NULL, NULL}, {b, ids, 150, NULL, NULL}, {b, bad, 3, NULL, NULL}};
    ck_feed full[2] = {{a, ids, 10, NULL, NULL}, {b, ids, 150, NULL, NULL}};
    CK_EXPECT(ck_session_batch(twice, 2, err, sizeof err) == -1 && strstr(err, "a session appears twice"), "twice: %s", err);
    ck_session *c = NULL;
    CK_EXPECT(ck_session_open(e, 200, &c, err, sizeof err) == 0, "%s", err);
    badid[2].s = c;
    CK_EXPECT(ck_session_batch(badid, 3, err, sizeof err) == -1 && strstr(err, "feed 2: token id -1"), "bad id: %s", err);
    CK_EXPECT(ck_session_forward(b, ids, 100, NULL, 0, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(ck_session_batch(full, 2, err, sizeof err) == -1 && strstr(err, "feed 1: context full"), "full: %s", err);
    CK_EXPECT(ck_session_pos(a) == 0 && ck_session_pos(b) == 100 && ck_session_pos(c) == 0,
              "refused batches moved sessions: %zu %zu %zu", ck_session_pos(a), ck_session_pos(b), ck_session_pos(c));
    ck_session *ss[2] = {a, c};
    CK_EXPECT(ck_session_step(ss, 2, ids, NULL, err, sizeof err) == 0 && ck_session_pos(a) == 1, "step: %s", err);
    ck_session_close(c);
out:
    ck_session_close(a);
    ck_session_close(b);
    ck_engine_close(e);
}

int main(void) {
    /* CK_TEST_BACKEND=cuda (tests/gpu/run.sh): the engines on GPU CK_TEST_DEVICE, split over two instances of it */
    const char *kind = getenv("CK_TEST_BACKEND"), *dev = getenv("CK_TEST_DEVICE");
    char err[256], two[32] = "cpu,cpu", three[48] = "cpu,cpu,cpu";
    if (kind && *kind && strcmp(kind, "cpu")) {
        int d = dev && *dev ? atoi(dev) : 0;
        if (ck_set_backend(kind, d, err, sizeof err) != 0) {
            fprintf(stderr, "test_batch: %s\n", err);
            return 1;
        }
        on_gpu = 1;
        snprintf(two, sizeof two, "%d,%d", d, d);
        snprintf(three, sizeof three, "%d,%d,%d", d, d, d);
    }
    const char *families[] = {"qwen3-s", "gemma3-s", "qwen3moe-s", "qwen3_5-s", "llama3-s"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) check_family(families[i], NULL);
    check_family("qwen3-s", two);    /* a model over devices batches too: rows part to part */
    check_family("qwen3_5-s", three); /* (recurrent state in every part) */
    setenv("CK_PARTS_VIA_HOST", "1", 1); /* ... and through the host */
    check_family("qwen3moe-s", two);
    unsetenv("CK_PARTS_VIA_HOST");
    check_gens();
    check_refused();
    return ck_test_done("test_batch");
}
