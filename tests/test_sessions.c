/* test_sessions.c — sessions of one engine: several threads decoding their own sessions at once get
 * exactly (bit for bit) what each gets alone; truncating a sequence and decoding again reproduces the
 * logits of the first pass (attention models rewind; the Qwen3.5 hybrid restarts at 0 and is replayed);
 * a forward that fails on a non-finite input leaves the position unchanged, refuses to run until the
 * session is truncated, and then computes what a fresh session computes; a session opened for the whole
 * context of the model takes memory only as it fills. */
#include "cake.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_THREADS 4
#define N_STEPS 40

typedef struct job {
    ck_engine *e;
    const int32_t *ids;   /* N_STEPS ids */
    float *logits;        /* [N_STEPS, vocab] */
    int rc;
    char err[256];
} job;

/* Decodes the job's ids one by one in a fresh session, keeping every step's logits. */
static void *decode_job(void *arg) {
    job *j = arg;
    ck_session *s;
    size_t V = ck_engine_vocab(j->e);
    j->rc = ck_session_open(j->e, N_STEPS, &s, j->err, sizeof j->err);
    for (size_t t = 0; j->rc == 0 && t < N_STEPS; t++)
        j->rc = ck_session_forward(s, j->ids + t, 1, j->logits + t * V, 0, j->err, sizeof j->err);
    ck_session_close(s);
    return NULL;
}

static int32_t *ref_ids(const char *name, size_t *n) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s/reference.json", CK_TEST_DATA, name);
    cJSON *ref = ck_test_json(path);
    const cJSON *a = cJSON_GetObjectItem(ref, "ppl_ids");
    *n = (size_t)cJSON_GetArraySize(a);
    int32_t *ids = malloc(*n * sizeof *ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(a, (int)i)->valuedouble;
    cJSON_Delete(ref);
    return ids;
}

static ck_engine *open_model(const char *name) {
    char dir[512], err[512];
    ck_engine *e = NULL;
    snprintf(dir, sizeof dir, "%s/%s", CK_TEST_DATA, name);
    if (ck_engine_open(dir, NULL, &e, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        exit(1);
    }
    return e;
}

static void check_concurrent(const char *name) {
    size_t n;
    int32_t *ids = ref_ids(name, &n);
    ck_engine *e = open_model(name);
    size_t V = ck_engine_vocab(e);
    job alone[N_THREADS], together[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        alone[i] = (job){e, ids + i * 10, malloc(N_STEPS * V * sizeof(float)), 0, ""};
        together[i] = (job){e, ids + i * 10, malloc(N_STEPS * V * sizeof(float)), 0, ""};
        decode_job(&alone[i]);
    }
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) pthread_create(&th[i], NULL, decode_job, &together[i]);
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_THREADS; i++) {
        CK_EXPECT(alone[i].rc == 0 && together[i].rc == 0, "%s: %s %s", name, alone[i].err, together[i].err);
        CK_EXPECT(!memcmp(alone[i].logits, together[i].logits, N_STEPS * V * sizeof(float)),
                  "%s: session %d decoded beside others differs from alone", name, i);
        free(alone[i].logits);
        free(together[i].logits);
    }
    printf("%s: %d sessions on %d threads equal their sequential runs\n", name, N_THREADS, N_THREADS);
    ck_engine_close(e);
    free(ids);
}

/* Decodes ids[from..to) one by one, comparing each step with want (or filling it when fill). */
static int decode_cmp(ck_session *s, const int32_t *ids, size_t from, size_t to, float *want, size_t V, int fill,
                      float *buf) {
    char err[256];
    for (size_t t = from; t < to; t++) {
        if (ck_session_forward(s, ids + t, 1, fill ? want + t * V : buf, 0, err, sizeof err) != 0) {
            CK_EXPECT(0, "decode: %s", err);
            return -1;
        }
        if (!fill && memcmp(buf, want + t * V, V * sizeof *buf)) return (int)t + 1;
    }
    return 0;
}

static void check_truncate(const char *name, int recurrent) {
    size_t n, V;
    int32_t *ids = ref_ids(name, &n);
    ck_engine *e = open_model(name);
    ck_session *s;
    char err[256];
    V = ck_engine_vocab(e);
    CK_EXPECT(ck_session_open(e, 0, &s, err, sizeof err) == 0, "%s", err);
    float *want = malloc(100 * V * sizeof *want), *buf = malloc(V * sizeof *buf);
    decode_cmp(s, ids, 0, 100, want, V, 1, buf);
    CK_EXPECT(ck_session_truncate(s, 101, err, sizeof err) != 0, "truncating past the position must fail");
    CK_EXPECT(ck_session_truncate(s, 50, err, sizeof err) == 0, "%s", err);
    size_t pos = ck_session_pos(s);
    CK_EXPECT(pos == (recurrent ? 0u : 50u), "%s: position after truncate(50) is %zu", name, pos);
    if (pos < 50) CK_EXPECT(decode_cmp(s, ids, pos, 50, want, V, 0, buf) == 0, "%s: replay differs", name);
    int bad = decode_cmp(s, ids, 50, 100, want, V, 0, buf);
    CK_EXPECT(bad == 0, "%s: decode after truncate differs at step %d", name, bad - 1);

    /* a non-finite input fails without moving the position; the session then needs a truncate */
    ck_engine_opts layers_only = {.partial = 1, .first_layer = 0, .last_layer = (int64_t)ck_engine_n_layers(e) - 1};
    ck_engine *le;
    ck_session *ls;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", CK_TEST_DATA, name);
    CK_EXPECT(ck_engine_open(dir, &layers_only, &le, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(ck_session_open(le, 0, &ls, err, sizeof err) == 0, "%s", err);
    size_t D = ck_engine_hidden(le);
    float *h = calloc(3 * D, sizeof *h), *h2 = calloc(3 * D, sizeof *h2), *h3 = calloc(3 * D, sizeof *h3);
    for (size_t i = 0; i < 3 * D; i++) h[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
    memcpy(h3, h, 3 * D * sizeof *h);
    CK_EXPECT(ck_session_layers(ls, h, 3, h2, err, sizeof err) == 0, "%s", err); /* positions 0-2 */
    h[D + 5] = NAN;
    int rc = ck_session_layers(ls, h, 3, h2, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, "non-finite"), "NaN input: rc %d '%s'", rc, rc ? err : "");
    CK_EXPECT(ck_session_pos(ls) == 3, "position after a failed forward: %zu", ck_session_pos(ls));
    h[D + 5] = 0.25f;
    rc = ck_session_layers(ls, h, 3, h2, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, "truncate"), "a broken session must refuse: rc %d '%s'", rc, rc ? err : "");
    CK_EXPECT(ck_session_truncate(ls, 0, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(ck_session_layers(ls, h3, 3, h2, err, sizeof err) == 0, "%s", err);
    ck_session *fresh;
    CK_EXPECT(ck_session_open(le, 0, &fresh, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(ck_session_layers(fresh, h3, 3, h3, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(!memcmp(h2, h3, 3 * D * sizeof *h2), "%s: after truncate(0) the session differs from a fresh one", name);
    printf("%s: truncate and failed-forward recovery ok (truncate(50) -> position %zu)\n", name, pos);
    ck_session_close(fresh);
    ck_session_close(ls);
    ck_engine_close(le);
    free(h), free(h2), free(h3), free(want), free(buf), free(ids);
    ck_session_close(s);
    ck_engine_close(e);
}

/* Resident memory now, in KiB. */
static long rss_kb(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    if (f) fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* qwen3-s with max_position_embeddings raised to 4M: a session for all of them (its KV caches would take
 * 4M positions x 4 layers x (K + V) x 2 heads x 32 floats = 8 GiB up front) must cost only what it uses. */
static void check_lazy_kv(void) {
    char tmp[] = "/tmp/ck_lazykvXXXXXX", path[600], src[600], err[256];
    CK_EXPECT(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(src, sizeof src, "%s/qwen3-s/config.json", CK_TEST_DATA);
    cJSON *cfg = ck_test_json(src);
    cJSON_ReplaceItemInObject(cfg, "max_position_embeddings", cJSON_CreateNumber(4194304));
    char *js = cJSON_Print(cfg);
    snprintf(path, sizeof path, "%s/config.json", tmp);
    FILE *f = fopen(path, "w");
    fputs(js, f);
    fclose(f);
    free(js);
    cJSON_Delete(cfg);
    snprintf(src, sizeof src, "%s/qwen3-s/model.safetensors", CK_TEST_DATA);
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    CK_EXPECT(symlink(src, path) == 0, "symlink");
    ck_engine *e;
    ck_session *s;
    CK_EXPECT(ck_engine_open(tmp, NULL, &e, err, sizeof err) == 0, "%s", err);
    long before = rss_kb();
    CK_EXPECT(ck_session_open(e, 0, &s, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(ck_session_max_ctx(s) == 4194304, "max_ctx %zu", ck_session_max_ctx(s));
    int32_t ids[100];
    for (int i = 0; i < 100; i++) ids[i] = i * 7 % 1000;
    float lg[1024];
    CK_EXPECT(ck_session_forward(s, ids, 100, lg, 0, err, sizeof err) == 0, "%s", err);
    long grew = rss_kb() - before;
    CK_EXPECT(grew < 8 * 1024, "a %zu-position session grew the RSS by %ld KiB", ck_session_max_ctx(s), grew);
    printf("a %zu-position session scoring 100 tokens grew the RSS by %ld KiB\n", ck_session_max_ctx(s), grew);
    ck_session_close(s);
    ck_engine_close(e);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", tmp);
    unlink(path);
    rmdir(tmp);
}

int main(void) {
    /* ck_set_threads(0) reads the count without changing it */
    int dflt = ck_set_threads(0, NULL, 0), three = ck_set_threads(3, NULL, 0), now = ck_set_threads(0, NULL, 0);
    CK_EXPECT(dflt >= 1 && three == 3 && now == 3, "threads: default %d, set 3 -> %d, then read -> %d", dflt, three, now);
    ck_set_threads(dflt, NULL, 0);
    check_lazy_kv();
    check_concurrent("qwen3-s");
    check_concurrent("qwen3_5moe-s");
    check_truncate("qwen3-s", 0);
    check_truncate("gemma3-s", 0);
    check_truncate("qwen3_5-s", 1);
    return ck_test_done("test_sessions");
}
