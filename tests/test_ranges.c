/* test_ranges.c — a model split into layer ranges run back to back in one process gives the same logits,
 * bit for bit, as one engine holding everything: every fixture split into two ranges, into three (a
 * master holding only the embedding and the head plus two workers, and three layer ranges where the model
 * has three layers or more, which splits the Qwen3.5 hybrid inside its DeltaNet/attention pattern), in
 * one prefill of every position and in token-by-token decode, and the whole model over two and three engines
 * (ck_engine_opts.devices, CPU engines). Then a sharded checkpoint: a directory with
 * only the shards of a range opens for that range, and refuses another, naming the missing shard. */
#include "cake.h"
#include "engine/engine_internal.h"
#include "format/safetensors.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PARTS 4

typedef struct part {
    ck_engine *e;
    ck_session *s;
} part;

typedef struct pipeline {
    part p[MAX_PARTS];
    size_t n;
} pipeline;

static int open_part(part *p, const char *dir, int64_t first, int64_t last, int embed, int head) {
    char err[512];
    ck_engine_opts o = {.partial = 1, .first_layer = first, .last_layer = last, .embed = embed, .head = head};
    if (ck_engine_open(dir, &o, &p->e, err, sizeof err) != 0) {
        CK_EXPECT(0, "open %s [%lld, %lld]: %s", dir, (long long)first, (long long)last, err);
        return -1;
    }
    if (ck_session_open(p->e, 0, &p->s, err, sizeof err) != 0) {
        CK_EXPECT(0, "session: %s", err);
        return -1;
    }
    return 0;
}

static void close_pipeline(pipeline *pl) {
    for (size_t i = 0; i < pl->n; i++) {
        ck_session_close(pl->p[i].s);
        ck_engine_close(pl->p[i].e);
    }
    pl->n = 0;
}

/* Opens ranges split at cuts[0..n_cuts) (layer indices where a new range starts); the first range holds
 * the embedding and the last the head. A cut at 0 gives a first range with no layers. */
static int open_pipeline(pipeline *pl, const char *dir, size_t L, const size_t *cuts, size_t n_cuts) {
    pl->n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : L; /* [start, end) */
        if (open_part(&pl->p[pl->n++], dir, (int64_t)start, (int64_t)end - 1, i == 0, i == n_cuts) != 0) {
            close_pipeline(pl);
            return -1;
        }
        start = end;
    }
    return 0;
}

/* embed -> each range's layers -> head, for n ids; logits as ck_session_forward lays them out. */
static int run_pipeline(pipeline *pl, const int32_t *ids, size_t n, float *hidden, float *logits, int all) {
    char err[512];
    int rc = ck_session_embed(pl->p[0].s, ids, n, hidden, err, sizeof err);
    for (size_t i = 0; rc == 0 && i < pl->n; i++) rc = ck_session_layers(pl->p[i].s, hidden, n, hidden, err, sizeof err);
    if (rc == 0) rc = ck_session_head(pl->p[pl->n - 1].s, hidden, n, logits, all, err, sizeof err);
    CK_EXPECT(rc == 0, "pipeline: %s", err);
    return rc;
}

static void check_split(const char *name, const char *dir, size_t L, const size_t *cuts, size_t n_cuts,
                        const int32_t *ids, size_t T, const float *want_prefill, const float *want_decode, size_t V,
                        size_t D) {
    pipeline pl;
    if (open_pipeline(&pl, dir, L, cuts, n_cuts) != 0) return;
    float *hidden = malloc(T * D * sizeof *hidden), *logits = malloc(T * V * sizeof *logits);
    char desc[64] = "";
    for (size_t i = 0; i < n_cuts; i++) snprintf(desc + strlen(desc), sizeof desc - strlen(desc), " %zu", cuts[i]);
    if (run_pipeline(&pl, ids, T, hidden, logits, 1) == 0)
        CK_EXPECT(!memcmp(logits, want_prefill, T * V * sizeof *logits), "%s split at%s: prefill logits differ", name,
                  desc);
    for (size_t i = 0; i < pl.n; i++) ck_session_reset(pl.p[i].s);
    int same = 1;
    for (size_t t = 0; t < T && same; t++) {
        if (run_pipeline(&pl, ids + t, 1, hidden, logits, 0) != 0) break;
        same = !memcmp(logits, want_decode + t * V, V * sizeof *logits);
    }
    CK_EXPECT(same, "%s split at%s: decode logits differ", name, desc);
    printf("%s: split at%s (%zu ranges): prefill and decode bit-identical\n", name, desc, n_cuts + 1);
    free(hidden);
    free(logits);
    close_pipeline(&pl);
}

/* ---- stages: a session of an engine with the embedding, the head and the tail runs the first layers
 * through a stage (here another local engine's session, as a cluster worker would) ---- */

static int stage_forward(void *ctx, float *hidden, size_t n, size_t pos, char *err, size_t errlen) {
    ck_session *s = ctx;
    if (ck_session_pos(s) != pos) return snprintf(err, errlen, "stage at %zu, asked for %zu", ck_session_pos(s), pos), -1;
    return ck_session_layers(s, hidden, n, hidden, err, errlen);
}

static int stage_truncate(void *ctx, size_t pos, size_t *held, char *err, size_t errlen) {
    int rc = ck_session_truncate(ctx, pos, err, errlen);
    *held = ck_session_pos(ctx);
    return rc;
}

static void check_stages(const char *name, const char *dir, size_t L, const int32_t *ids, size_t T,
                         const float *want_prefill, const float *want_decode, size_t V) {
    part worker, master;
    size_t k = L / 2;
    char err[512];
    if (open_part(&worker, dir, 0, (int64_t)k - 1, 0, 0) != 0 || open_part(&master, dir, (int64_t)k, (int64_t)L - 1, 1, 1) != 0)
        return;
    ck_stage st = {0, (int64_t)k - 1, stage_forward, stage_truncate, worker.s};
    CK_EXPECT(ck_session_set_stages(master.s, &st, 1, err, sizeof err) == 0, "%s: stages: %s", name, err);
    float *logits = malloc(T * V * sizeof *logits);
    CK_EXPECT(ck_session_forward(master.s, ids, T, logits, 1, err, sizeof err) == 0, "%s: %s", name, err);
    CK_EXPECT(!memcmp(logits, want_prefill, T * V * sizeof *logits), "%s: staged prefill differs", name);
    /* truncate to the middle and decode the rest one token at a time, beside a whole-model session doing
     * the same (the cache rows kept come from the prefill, so the reference is the same sequence of calls) */
    ck_engine *we = NULL;
    ck_session *ws = NULL;
    int opened = ck_engine_open(dir, NULL, &we, err, sizeof err) == 0 && ck_session_open(we, 0, &ws, err, sizeof err) == 0;
    CK_EXPECT(opened, "%s", err);
    if (!opened) {
        if (we) ck_engine_close(we);
        free(logits);
        return;
    }
    float *want = malloc(V * sizeof *want);
    CK_EXPECT(ck_session_forward(ws, ids, T, NULL, 0, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(ck_session_truncate(master.s, T / 2, err, sizeof err) == 0, "%s: %s", name, err);
    CK_EXPECT(ck_session_truncate(ws, T / 2, err, sizeof err) == 0, "%s: %s", name, err);
    size_t from = ck_session_pos(master.s), bad = 0;
    CK_EXPECT(from == ck_session_pos(ws), "%s: staged truncate left %zu, whole %zu", name, from, ck_session_pos(ws));
    for (size_t t = from; t < T && !bad; t++) {
        CK_EXPECT(ck_session_forward(master.s, ids + t, 1, logits, 0, err, sizeof err) == 0, "%s: %s", name, err);
        CK_EXPECT(ck_session_forward(ws, ids + t, 1, want, 0, err, sizeof err) == 0, "%s: %s", name, err);
        if (memcmp(logits, want, V * sizeof *logits)) bad = t + 1;
    }
    CK_EXPECT(!bad, "%s: staged decode differs at %zu", name, bad - 1);
    (void)want_decode;
    free(want);
    ck_session_close(ws);
    ck_engine_close(we);
    printf("%s: embedding + head + layers %zu-%zu with layers 0-%zu as a stage: bit-identical (truncate -> %zu)\n",
           name, k, L - 1, k - 1, from);
    /* stages that do not tile the model are refused */
    ck_stage gap = {0, (int64_t)k - 2, stage_forward, stage_truncate, worker.s};
    ck_session *fresh = NULL;
    CK_EXPECT(ck_session_open(master.e, 0, &fresh, err, sizeof err) == 0, "%s", err);
    int rc = k >= 2 && fresh ? ck_session_set_stages(fresh, &gap, 1, err, sizeof err) : -1;
    CK_EXPECT(rc != 0, "%s: a gap in the stages was accepted", name);
    if (fresh) ck_session_close(fresh);
    free(logits);
    ck_session_close(worker.s), ck_engine_close(worker.e), ck_session_close(master.s), ck_engine_close(master.e);
}

/* The whole model over devices (ck_engine_opts.devices, CPU engines here): its sessions run the later parts
 * as stages; prefill and decode bit-identical, and decode again after a truncate. */
static void check_devices(const char *name, const char *dir, const char *devices, const int32_t *ids, size_t T,
                          const float *want_prefill, const float *want_decode, size_t V) {
    char err[512];
    ck_engine_opts o = {.devices = devices};
    ck_engine *e;
    ck_session *s;
    if (ck_engine_open(dir, &o, &e, err, sizeof err) != 0 || ck_session_open(e, 0, &s, err, sizeof err) != 0) {
        CK_EXPECT(0, "%s over %s: %s", name, devices, err);
        return;
    }
    int64_t first, last;
    int embed, head;
    ck_engine_range(e, &first, &last, &embed, &head);
    CK_EXPECT(first == 0 && last + 1 == (int64_t)ck_engine_n_layers(e) && embed && head,
              "%s over %s: the engine's range is %lld-%lld (embed %d, head %d)", name, devices, (long long)first,
              (long long)last, embed, head);
    CK_EXPECT(e->direct == !getenv("CK_PARTS_VIA_HOST"), "%s over %s: rows %s", name, devices,
              e->direct ? "part to part against CK_PARTS_VIA_HOST" : "through the host");
    float *logits = malloc(T * V * sizeof *logits), *rows = malloc(T * ck_engine_hidden(e) * sizeof *rows);
    /* the pieces: embedding, every part's layers, head */
    CK_EXPECT(ck_session_embed(s, ids, T, rows, err, sizeof err) == 0 &&
                  ck_session_layers(s, rows, T, rows, err, sizeof err) == 0 &&
                  ck_session_head(s, rows, T, logits, 1, err, sizeof err) == 0,
              "%s over %s: %s", name, devices, err);
    CK_EXPECT(ck_session_pos(s) == T && !memcmp(logits, want_prefill, T * V * sizeof *logits),
              "%s over %s: embed + layers + head differ", name, devices);
    free(rows);
    ck_session_reset(s);
    CK_EXPECT(ck_session_forward(s, ids, T, logits, 1, err, sizeof err) == 0, "%s: %s", name, err);
    CK_EXPECT(!memcmp(logits, want_prefill, T * V * sizeof *logits), "%s over %s: prefill differs", name, devices);
    ck_session_reset(s);
    size_t bad = 0;
    for (size_t t = 0; t < T && !bad; t++) {
        CK_EXPECT(ck_session_forward(s, ids + t, 1, logits, 0, err, sizeof err) == 0, "%s: %s", name, err);
        if (memcmp(logits, want_decode + t * V, V * sizeof *logits)) bad = t + 1;
    }
    CK_EXPECT(!bad, "%s over %s: decode differs at %zu", name, devices, bad - 1);
    CK_EXPECT(ck_session_truncate(s, T / 2, err, sizeof err) == 0, "%s: %s", name, err);
    size_t from = ck_session_pos(s);
    for (size_t t = from; t < T && !bad; t++) {
        CK_EXPECT(ck_session_forward(s, ids + t, 1, logits, 0, err, sizeof err) == 0, "%s: %s", name, err);
        if (memcmp(logits, want_decode + t * V, V * sizeof *logits)) bad = t + 1;
    }
    CK_EXPECT(!bad, "%s over %s: decode after the truncate differs at %zu", name, devices, bad - 1);
    printf("%s over --devices %s (%s, rows %s): prefill and decode bit-identical (truncate -> %zu)\n", name, devices,
           ck_engine_backend(e), getenv("CK_PARTS_VIA_HOST") ? "through the host" : "part to part", from);
    free(logits);
    ck_session_close(s);
    ck_engine_close(e);
}

/* Layers 1..L-1 alone (a worker's range) over devices against one engine holding them: the rows of a prefill,
 * of a decode and of a decode after a truncate bit-identical. */
static void check_range_devices(const char *name, const char *dir, size_t L, const char *devices, const int32_t *ids,
                                size_t T) {
    char err[512];
    ck_engine_opts one = {.partial = 1, .first_layer = 1, .last_layer = (int64_t)L - 1},
                   split = {.partial = 1, .first_layer = 1, .last_layer = (int64_t)L - 1, .devices = devices},
                   emb = {.partial = 1, .first_layer = 1, .last_layer = 0, .embed = 1};
    ck_engine *e[3] = {0};
    ck_session *s[3] = {0};
    for (int k = 0; k < 3; k++)
        if (ck_engine_open(dir, k == 0 ? &emb : k == 1 ? &one : &split, &e[k], err, sizeof err) != 0 ||
            ck_session_open(e[k], 0, &s[k], err, sizeof err) != 0) {
            CK_EXPECT(0, "%s, layers 1-%zu over %s: %s", name, L - 1, devices, err);
            goto out;
        }
    size_t D = ck_engine_hidden(e[0]);
    float *in = malloc(T * D * sizeof *in), *want = malloc(T * D * sizeof *want), *got = malloc(T * D * sizeof *got);
    CK_EXPECT(ck_session_embed(s[0], ids, T, in, err, sizeof err) == 0, "%s", err);
    size_t bad = 0;
    for (int pass = 0; pass < 3; pass++) { /* prefill; decode; decode after a truncate to T / 2 */
        size_t from = pass == 2 ? T / 2 : 0, step = pass == 0 ? T : 1;
        for (int k = 1; k < 3; k++) /* (a range with recurrent layers goes back to 0) */
            CK_EXPECT(ck_session_truncate(s[k], from, err, sizeof err) == 0, "%s over %s: %s", name, devices, err);
        CK_EXPECT(ck_session_pos(s[1]) == ck_session_pos(s[2]), "%s over %s: truncate to %zu: at %zu, not %zu", name,
                  devices, from, ck_session_pos(s[2]), ck_session_pos(s[1]));
        from = ck_session_pos(s[1]);
        for (size_t t = from; t < T && !bad; t += step) {
            CK_EXPECT(ck_session_layers(s[1], in + t * D, step, want + t * D, err, sizeof err) == 0 &&
                          ck_session_layers(s[2], in + t * D, step, got + t * D, err, sizeof err) == 0,
                      "%s over %s: %s", name, devices, err);
            if (memcmp(want + t * D, got + t * D, step * D * sizeof *got)) bad = t + 1;
        }
        CK_EXPECT(!bad, "%s, layers 1-%zu over %s: pass %d differs at row %zu", name, L - 1, devices, pass, bad - 1);
    }
    /* a range with the embedding and the head but not every layer, over devices: no whole forwards */
    ck_engine_opts eh = {.partial = 1, .first_layer = 0, .last_layer = (int64_t)L - 2, .embed = 1, .head = 1,
                         .devices = devices};
    ck_engine *pe;
    ck_session *ps;
    if (ck_engine_open(dir, &eh, &pe, err, sizeof err) == 0) {
        float *lg = malloc(ck_engine_vocab(pe) * sizeof *lg);
        CK_EXPECT(ck_session_open(pe, 0, &ps, err, sizeof err) == 0, "%s", err);
        CK_EXPECT(ck_session_forward(ps, ids, 1, lg, 0, err, sizeof err) != 0 && strstr(err, "part of the model"),
                  "%s: a whole forward over layers 0-%zu of %zu ran", name, L - 2, L);
        free(lg);
        ck_session_close(ps);
        ck_engine_close(pe);
    } else
        CK_EXPECT(0, "%s: %s", name, err);
    printf("%s, layers 1-%zu over --devices %s (%s): prefill and decode rows bit-identical\n", name, L - 1, devices,
           ck_engine_backend(e[2]));
    free(in), free(want), free(got);
out:
    for (int k = 0; k < 3; k++) ck_session_close(s[k]), ck_engine_close(e[k]);
}

static void check_model(const char *name) {
    char dir[512], path[600], err[512];
    snprintf(dir, sizeof dir, "%s/%s", CK_TEST_DATA, name);
    snprintf(path, sizeof path, "%s/reference.json", dir);
    cJSON *ref = ck_test_json(path);
    const cJSON *all = cJSON_GetObjectItem(ref, "ppl_ids"); /* longer than CK_CHUNK */
    size_t T = (size_t)cJSON_GetArraySize(all);
    int32_t *ids = malloc(T * sizeof *ids);
    for (size_t i = 0; i < T; i++) ids[i] = (int32_t)cJSON_GetArrayItem(all, (int)i)->valuedouble;
    ck_engine *e;
    ck_session *s;
    if (ck_engine_open(dir, NULL, &e, err, sizeof err) != 0 || ck_session_open(e, 0, &s, err, sizeof err) != 0) {
        CK_EXPECT(0, "%s: %s", name, err);
        exit(1);
    }
    size_t V = ck_engine_vocab(e), L = ck_engine_n_layers(e), D = ck_engine_hidden(e);
    float *prefill = malloc(T * V * sizeof *prefill), *decode = malloc(T * V * sizeof *decode);
    CK_EXPECT(ck_session_forward(s, ids, T, prefill, 1, err, sizeof err) == 0, "%s: %s", name, err);
    ck_session_reset(s);
    for (size_t t = 0; t < T; t++)
        CK_EXPECT(ck_session_forward(s, ids + t, 1, decode + t * V, 0, err, sizeof err) == 0, "%s: %s", name, err);
    ck_session_close(s);
    ck_engine_close(e);

    size_t two[1] = {L / 2}, master[2] = {0, L / 2}, three[2] = {1, 2};
    check_split(name, dir, L, two, 1, ids, T, prefill, decode, V, D);
    check_split(name, dir, L, master, 2, ids, T, prefill, decode, V, D);
    if (L >= 3) check_split(name, dir, L, three, 2, ids, T, prefill, decode, V, D);
    check_stages(name, dir, L, ids, T, prefill, decode, V);
    check_devices(name, dir, "cpu,cpu", ids, T, prefill, decode, V); /* rows part to part by copy_peer */
    setenv("CK_PARTS_VIA_HOST", "1", 1);                               /* ... and through the host */
    check_devices(name, dir, "cpu,cpu", ids, T, prefill, decode, V);
    unsetenv("CK_PARTS_VIA_HOST");
    if (L >= 3) check_devices(name, dir, "cpu,cpu,cpu", ids, T, prefill, decode, V);
    if (L >= 3) check_range_devices(name, dir, L, "cpu,cpu", ids, T);
    free(prefill);
    free(decode);
    free(ids);
    cJSON_Delete(ref);
}

/* ---- a sharded checkpoint, written here from a fixture's model.safetensors ---- */

/* The layer of a tensor name "model.layers.N.*", or -1. */
static long layer_of(const char *name) {
    const char *p = strstr(name, "layers.");
    return p ? strtol(p + 7, NULL, 10) : -1;
}

/* Writes the entries of st that belong to `shard` (by layer: below `cut` in shard 1) to path. */
static void write_shard(const char *path, const ck_st *st, int shard, long cut) {
    cJSON *h = cJSON_CreateObject();
    size_t off = 0;
    for (size_t i = 0; i < st->n; i++) {
        const ck_st_entry *en = &st->entries[i];
        long l = layer_of(en->name);
        int mine = l < 0 ? (strstr(en->name, "embed") ? 1 : 2) == shard : (l < cut ? 1 : 2) == shard;
        if (!mine) continue;
        cJSON *t = cJSON_AddObjectToObject(h, en->name);
        cJSON_AddStringToObject(t, "dtype", en->dtype_name);
        cJSON *shape = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < en->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)en->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + en->nbytes)));
        off += en->nbytes;
    }
    char *js = cJSON_PrintUnformatted(h);
    uint64_t jl = strlen(js), hl = (jl + 7) / 8 * 8; /* padded with spaces, as safetensors writers do */
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), f);
    fwrite(js, 1, jl, f);
    for (uint64_t i = jl; i < hl; i++) fputc(' ', f);
    for (size_t i = 0; i < st->n; i++) {
        const ck_st_entry *en = &st->entries[i];
        long l = layer_of(en->name);
        int mine = l < 0 ? (strstr(en->name, "embed") ? 1 : 2) == shard : (l < cut ? 1 : 2) == shard;
        if (mine) fwrite(en->data, 1, en->nbytes, f);
    }
    fclose(f);
    free(js);
    cJSON_Delete(h);
}

static void check_shards(void) {
    char src[512], tmp[] = "/tmp/ck_shardsXXXXXX", path[700], err[512];
    CK_EXPECT(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(src, sizeof src, "%s/qwen3-s/model.safetensors", CK_TEST_DATA);
    char *bytes;
    size_t len;
    ck_st st;
    CK_EXPECT(ck_file_read(src, &bytes, &len, err, sizeof err) == 0, "%s", err);
    CK_EXPECT(ck_st_parse((const uint8_t *)bytes, len, &st, err, sizeof err) == 0, "%s", err);
    const char *names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    long cut = 2; /* layers 0-1 in shard 1 with the embedding; 2-3, the norm and the head in shard 2 */
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", tmp, names[k]);
        write_shard(path, &st, k + 1, cut);
    }
    cJSON *idx = cJSON_CreateObject(), *map = cJSON_AddObjectToObject(idx, "weight_map");
    for (size_t i = 0; i < st.n; i++) {
        long l = layer_of(st.entries[i].name);
        int shard = l < 0 ? (strstr(st.entries[i].name, "embed") ? 1 : 2) : (l < cut ? 1 : 2);
        cJSON_AddStringToObject(map, st.entries[i].name, names[shard - 1]);
    }
    char *js = cJSON_Print(idx);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmp);
    FILE *f = fopen(path, "w");
    fputs(js, f);
    fclose(f);
    free(js);
    cJSON_Delete(idx);
    ck_st_free(&st);
    free(bytes);
    const char *copy[] = {"config.json", "generation_config.json"};
    for (int i = 0; i < 2; i++) {
        char from[600], to[700], *c;
        size_t n;
        snprintf(from, sizeof from, "%s/qwen3-s/%s", CK_TEST_DATA, copy[i]);
        snprintf(to, sizeof to, "%s/%s", tmp, copy[i]);
        CK_EXPECT(ck_file_read(from, &c, &n, err, sizeof err) == 0, "%s", err);
        f = fopen(to, "wb");
        fwrite(c, 1, n, f);
        fclose(f);
        free(c);
    }
    /* the whole sharded model runs and equals the single-file one */
    ck_engine *e;
    ck_engine_opts first = {.partial = 1, .first_layer = 0, .last_layer = 1, .embed = 1};
    ck_engine_opts second = {.partial = 1, .first_layer = 2, .last_layer = 3, .head = 1};
    CK_EXPECT(ck_engine_open(tmp, NULL, &e, err, sizeof err) == 0, "sharded: %s", err);
    ck_engine_close(e);
    /* without shard 2: the first range opens, the second and the whole model name the missing shard */
    snprintf(path, sizeof path, "%s/%s", tmp, names[1]);
    unlink(path);
    CK_EXPECT(ck_engine_open(tmp, &first, &e, err, sizeof err) == 0, "range 0-1 with its shard only: %s", err);
    ck_engine_close(e);
    int rc = ck_engine_open(tmp, &second, &e, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, names[1]), "range 2-3 without its shard: rc %d, '%s'", rc, rc ? err : "");
    printf("range 2-3 without its shard: %s\n", err);
    rc = ck_engine_open(tmp, NULL, &e, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, names[1]), "whole model without shard 2: rc %d, '%s'", rc, rc ? err : "");
    /* a range past the model's layers is refused */
    ck_engine_opts bad = {.partial = 1, .first_layer = 2, .last_layer = 4, .embed = 1};
    rc = ck_engine_open(tmp, &bad, &e, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, "out of range"), "range 2-4 of 4 layers: rc %d '%s'", rc, rc ? err : "");
    snprintf(path, sizeof path, "%s/%s", tmp, names[0]);
    unlink(path);
    const char *rest[] = {"model.safetensors.index.json", "config.json", "generation_config.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, rest[i]);
        unlink(path);
    }
    rmdir(tmp);
}

/* Device lists: GPU indices and cpu in order; anything else, an empty entry or too many is refused. */
static void check_device_lists(void) {
    const char *kinds[CK_MAX_DEVICES];
    int idx[CK_MAX_DEVICES];
    char err[256];
    int n = ck_parse_devices("0,cpu,12", kinds, idx, CK_MAX_DEVICES, err, sizeof err);
    CK_EXPECT(n == 3 && !strcmp(kinds[0], "cuda") && idx[0] == 0 && !strcmp(kinds[1], "cpu") &&
                  !strcmp(kinds[2], "cuda") && idx[2] == 12,
              "0,cpu,12: %d", n);
    const char *bad[] = {"", "cpu,", ",0", "gpu", "1x", "-1", " 1", "+1", "99999", "cpu,cpu,cpu"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        n = ck_parse_devices(bad[i], kinds, idx, i + 1 == sizeof bad / sizeof bad[0] ? 2 : CK_MAX_DEVICES, err,
                             sizeof err);
        CK_EXPECT(n == -1 && err[0], "'%s' was accepted (%d)", bad[i], n);
    }
}

int main(int argc, char **argv) {
    check_device_lists();
    const char *models[] = {"qwen3-s", "qwen3-f32-s", "qwen2-s", "llama3-s", "mistral-s", "qwen3_5-s", "phi3-s",
                            "olmo2-s", "exaone4-s", "gemma3-s", "qwen3moe-s", "qwen3_5moe-s", "falcon3-s",
                            "qwen3moe-mixed-s"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (argc < 2 || !strcmp(argv[1], models[i])) check_model(models[i]);
    if (argc < 2) check_shards();
    return ck_test_done("test_ranges");
}
