/* test_push.c — the zero-config weight push (src/cluster/push.h) over real TCP on 127.0.0.1, the worker
 * side in a thread, into temporary cache roots:
 *   - CRC-32 check value and incrementality;
 *   - plans of layers 1-2 of qwen3-s (one file) and qwen3moe-s (three shards: only the two that hold
 *     layers 1-2 get mapped); the pushed model.safetensors holds exactly the range's tensors, byte for
 *     byte, config.json is identical, `cake list`'s scan shows the directory complete, and an engine
 *     opened on it for layers 1-2 gives bit-identical ck_session_layers output to the original;
 *   - an interrupted push leaves a partial that the next push continues (it sends only the rest);
 *   - a corrupted partial is caught by the SHA-256 check, reported to the master, deleted, and the next
 *     push starts over and succeeds;
 *   - a push when everything is there sends no chunks;
 *   - keyed (encrypted) connections;
 *   - a misbehaving master (wrong offset, bad CRC, bad or short zstd data) is refused with a reason;
 *   - a GGUF model (qwen3-s in Q8_0, qwen3moe-s in Q4_0, llama3-s in F16, written here): one model.gguf
 *     with the source's metadata as stored (the same model id) and exactly the range's blk.N tensors and
 *     the tensors every layer uses (rope_freqs), byte for byte, at the file's alignment, whose layers give
 *     bit-identical ck_session_layers output to the source. */
#include "cake.h"
#include "base/crc32.h"
#include "base/file.h"
#include "cluster/node.h"
#include "cluster/push.h"
#include "format/gguf.h"
#include "hub/scan.h"
#include "model/gguf_convert.h"
#include "testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static char g_addr[64];
static int g_lfd = -1;

/* ---- the worker thread ---- */

typedef struct wjob {
    const char *key, *root, *tag;
    int rc;
    char err[1024], dir[4096];
    int64_t first, last;
    int replaced;
    ck_msg assign;
    pthread_t th;
} wjob;

static void *worker_main(void *arg) {
    wjob *w = arg;
    ck_conn *c = NULL;
    w->rc = -1;
    if (ck_conn_accept(g_lfd, 10000, &c, w->err, sizeof w->err) != 0) return NULL;
    if (ck_conn_handshake(c, w->key, 1, 5000, w->err, sizeof w->err) == 0 &&
        ck_msg_recv(c, NULL, 1 << 16, &w->assign, 60000, w->err, sizeof w->err) == 0 &&
        ck_push_receive(c, &w->assign, w->root, w->tag, w->dir, sizeof w->dir, &w->first, &w->last, &w->replaced,
                        w->err, sizeof w->err) == 0)
        w->rc = ck_push_ready(c, w->err, sizeof w->err);
    ck_conn_close(c);
    return NULL;
}

/* ---- the master side ---- */

typedef struct prog {
    uint64_t first_done, last_done, total;
    int calls;
    uint64_t wire_bytes; /* sent on the socket, after the handshake */
} prog;

static void on_progress(void *user, uint64_t done, uint64_t total) {
    prog *p = user;
    if (p->calls++ == 0) p->first_done = done;
    p->last_done = done;
    p->total = total;
}

/* One push of plan to a worker thread writing into root/tag; returns the master's status. */
static int push_once(const ck_push_plan *plan, const uint8_t id[32], int64_t first, int64_t last, const char *key,
                     const char *root, const char *tag, uint64_t stop, prog *pg, wjob *w, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    memset(pg, 0, sizeof *pg);
    w->key = key, w->root = root, w->tag = tag;
    if (pthread_create(&w->th, NULL, worker_main, w) != 0) return snprintf(err, errlen, "pthread_create"), -1;
    ck_conn *c = NULL;
    int rc = ck_conn_connect(g_addr, 5000, &c, err, errlen);
    if (rc == 0) rc = ck_conn_handshake(c, key, 0, 5000, err, errlen);
    uint64_t before = c ? ck_conn_bytes_sent(c) : 0;
    if (rc == 0) rc = ck_push_send(c, plan, id, first, last, on_progress, pg, stop, err, errlen);
    if (c) pg->wire_bytes = ck_conn_bytes_sent(c) - before;
    ck_conn_close(c);
    pthread_join(w->th, NULL);
    return rc;
}

/* ---- checks ---- */

static int file_equal(const char *a, const char *b) {
    char *x = NULL, *y = NULL, err[256];
    size_t nx = 0, ny = 0;
    int same = ck_file_read(a, &x, &nx, err, sizeof err) == 0 && ck_file_read(b, &y, &ny, err, sizeof err) == 0 &&
               nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

static int64_t layer_num(const char *name, const char *prefix) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) || name[n] != '.') return -1;
    char *end;
    long long v = strtoll(name + n + 1, &end, 10);
    return *end == '.' ? v : -1;
}

/* The pushed directory holds the range's tensors exactly, and the same small files as src. */
static void check_dir(const char *dir, const char *src, int64_t first, int64_t last) {
    char a[4096], b[4096], err[512];
    static const char *const small[] = {"config.json", "generation_config.json", "tokenizer.json",
                                        "tokenizer_config.json"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "%s/%s", dir, small[i]);
        snprintf(b, sizeof b, "%s/%s", src, small[i]);
        CK_EXPECT(ck_is_file(a) == ck_is_file(b), "%s: present here %d, in the source %d", small[i], ck_is_file(a),
                  ck_is_file(b));
        if (ck_is_file(b)) CK_EXPECT(file_equal(a, b), "%s differs from the source", small[i]);
        snprintf(a, sizeof a, "%s/%s.partial", dir, small[i]);
        CK_EXPECT(!ck_path_exists_any(a), "%s left behind", a);
    }
    snprintf(a, sizeof a, "%s/model.safetensors.partial", dir);
    CK_EXPECT(!ck_path_exists_any(a), "%s left behind", a);
    snprintf(a, sizeof a, "%s/model.safetensors", dir);
    ck_map m;
    ck_st st = {0};
    ck_weights w;
    if (ck_map_open(a, &m, err, sizeof err) != 0) {
        CK_EXPECT(0, "%s", err);
        return;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | m.data[i];
    CK_EXPECT(hlen % 8 == 0, "header length %" PRIu64 " is not a multiple of 8", hlen);
    CK_EXPECT(ck_st_parse(m.data, m.size, &st, err, sizeof err) == 0, "parse %s: %s", a, err);
    CK_EXPECT(ck_weights_open(src, &w, err, sizeof err) == 0, "%s", err);
    size_t want = 0;
    for (size_t i = 0; i < ck_weights_count(&w); i++) {
        int64_t l = layer_num(ck_weights_name(&w, i), "model.layers");
        want += l >= first && l <= last;
    }
    CK_EXPECT(st.n == want && want > 0, "%zu tensors pushed, the range has %zu", st.n, want);
    uint64_t data_end = 0;
    for (size_t i = 0; i < st.n; i++) {
        const ck_st_entry *e = &st.entries[i];
        int64_t l = layer_num(e->name, "model.layers");
        CK_EXPECT(l >= first && l <= last, "tensor %s is not in layers %" PRId64 "-%" PRId64, e->name, first, last);
        ck_tensor t;
        if (ck_weights_find(&w, e->name, &t, err, sizeof err) != 1) {
            CK_EXPECT(0, "tensor %s not in the source", e->name);
            continue;
        }
        CK_EXPECT((int)t.dtype == e->dtype && t.ndim == e->ndim && !memcmp(t.shape, e->shape, (size_t)t.ndim * 8),
                  "%s: dtype/shape differ", e->name);
        CK_EXPECT(!memcmp(t.data, e->data, e->nbytes), "%s: bytes differ", e->name);
        uint64_t end = (uint64_t)(e->data - (m.data + 8 + hlen)) + e->nbytes;
        if (end > data_end) data_end = end;
    }
    CK_EXPECT(8 + hlen + data_end == m.size, "%zu bytes in the file, tensors end at %" PRIu64, m.size,
              8 + hlen + data_end);
    ck_weights_close(&w);
    ck_st_free(&st);
    ck_map_close(&m);
}

/* Layers [first, last] opened from the pushed directory and from the source give the same bits. */
static void check_engine(const char *dir, const char *src, int64_t first, int64_t last) {
    char err[512];
    ck_engine_opts o = {.partial = 1, .first_layer = first, .last_layer = last};
    ck_engine *e1 = NULL, *e2 = NULL;
    ck_session *s1 = NULL, *s2 = NULL;
    if (ck_engine_open(dir, &o, &e1, err, sizeof err) != 0 || ck_session_open(e1, 0, &s1, err, sizeof err) != 0 ||
        ck_engine_open(src, &o, &e2, err, sizeof err) != 0 || ck_session_open(e2, 0, &s2, err, sizeof err) != 0) {
        CK_EXPECT(0, "open %s: %s", dir, err);
    } else {
        size_t d = ck_engine_hidden(e1), n = 5;
        float *x = malloc(n * d * sizeof *x), *y1 = malloc(n * d * sizeof *x), *y2 = malloc(n * d * sizeof *x);
        uint32_t seed = 12345;
        for (size_t i = 0; i < n * d; i++) {
            seed = seed * 1664525u + 1013904223u;
            x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 2.0f;
        }
        int rc1 = ck_session_layers(s1, x, n, y1, err, sizeof err);
        CK_EXPECT(rc1 == 0, "layers (pushed): %s", err);
        int rc2 = ck_session_layers(s2, x, n, y2, err, sizeof err);
        CK_EXPECT(rc2 == 0, "layers (source): %s", err);
        CK_EXPECT(rc1 == 0 && rc2 == 0 && !memcmp(y1, y2, n * d * sizeof *y1), "layers %" PRId64 "-%" PRId64
                  " of the pushed directory differ from the source", first, last);
        /* and a decode step after the prefill */
        rc1 = ck_session_layers(s1, x, 1, y1, err, sizeof err);
        rc2 = ck_session_layers(s2, x, 1, y2, err, sizeof err);
        CK_EXPECT(rc1 == 0 && rc2 == 0 && !memcmp(y1, y2, d * sizeof *y1), "decode step differs: %s", err);
        free(x);
        free(y1);
        free(y2);
    }
    ck_session_close(s1);
    ck_session_close(s2);
    ck_engine_close(e1);
    ck_engine_close(e2);
}

static void expected_dir(char *out, size_t cap, const char *root, const char *tag, const uint8_t id[32]) {
    char hex[17];
    ck_model_id_short(id, hex);
    snprintf(out, cap, "%s/models/%s--%s", root, tag, hex);
}

/* ---- tests ---- */

static void test_crc32(void) {
    CK_EXPECT(ck_crc32(0, "123456789", 9) == 0xCBF43926u, "crc32 check value: %08" PRIx32,
              ck_crc32(0, "123456789", 9));
    CK_EXPECT(ck_crc32(0, NULL, 0) == 0 && ck_crc32(0, "a", 1) == 0xe8b7be43u, "crc32 of '' and 'a'");
    CK_EXPECT(ck_crc32(ck_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u, "crc32 is incremental");
}

/* A whole push, then the same again (nothing to send). */
static void test_full(const char *src, const char *root, const char *key, int check_shards) {
    char err[1024], dir[4096];
    uint8_t id[32];
    ck_push_plan *plan = NULL;
    if (ck_model_id(src, id, err, sizeof err) != 0 || ck_push_plan(src, "model.layers", 1, 2, &plan, err, sizeof err) != 0) {
        CK_EXPECT(0, "plan %s: %s", src, err);
        return;
    }
    CK_EXPECT(!strcmp(plan->files[0].name, "config.json") &&
                  !strcmp(plan->files[plan->n_files - 1].name, "model.safetensors"),
              "plan files: %s ... %s", plan->files[0].name, plan->files[plan->n_files - 1].name);
    if (check_shards) {
        /* qwen3moe-s: layers 1-2 live in shards 2 and 3; shard 1 (embedding, layer 0) is never mapped */
        CK_EXPECT(ck_weights_mapped_shards(&plan->weights) == 2 && !plan->weights.opened[0],
                  "%zu shards mapped, shard 1 %s", ck_weights_mapped_shards(&plan->weights),
                  plan->weights.opened[0] ? "mapped" : "not mapped");
    }
    wjob w;
    prog pg;
    int rc = push_once(plan, id, 1, 2, key, root, "c0ffee00", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc == 0, "push %s: %s", src, err);
    CK_EXPECT(w.rc == 0, "worker: %s", w.err);
    expected_dir(dir, sizeof dir, root, "c0ffee00", id);
    CK_EXPECT(!strcmp(w.dir, dir) && w.first == 1 && w.last == 2, "worker got %s [%" PRId64 ", %" PRId64 "]", w.dir,
              w.first, w.last);
    CK_EXPECT(w.replaced == 1, "a first push reports no file written into place");
    CK_EXPECT(pg.first_done == 0 && pg.last_done == plan->total_bytes && pg.total == plan->total_bytes,
              "progress %" PRIu64 " -> %" PRIu64 " of %" PRIu64, pg.first_done, pg.last_done, pg.total);
    printf("%s: layers 1-2 pushed%s: %zu files, %" PRIu64 " bytes (%" PRIu64 " on the wire), %zu tensors\n", src,
           key ? " (keyed)" : "", plan->n_files, plan->total_bytes, pg.wire_bytes, plan->n_tensors);
    check_dir(dir, src, 1, 2);
    check_engine(dir, src, 1, 2);

    /* `cake list` sees it, complete */
    ck_model_list l;
    if (ck_models_scan(NULL, root, &l, err, sizeof err) == 0) {
        char name[64], hex[17];
        ck_model_id_short(id, hex);
        snprintf(name, sizeof name, "c0ffee00/%s", hex);
        int found = 0;
        for (size_t i = 0; i < l.n; i++)
            if (!strcmp(l.v[i].name, name)) found = 1 + l.v[i].complete;
        CK_EXPECT(found == 2, "scan: %s %s", name, found ? "incomplete" : "not listed");
        ck_models_free(&l);
    } else
        CK_EXPECT(0, "scan: %s", err);

    /* again: everything is there, nothing is sent */
    rc = push_once(plan, id, 1, 2, key, root, "c0ffee00", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc == 0 && w.rc == 0, "second push: %s / %s", err, w.err);
    CK_EXPECT(pg.calls == 1 && pg.first_done == plan->total_bytes, "second push sent chunks: %d progress calls",
              pg.calls);
    CK_EXPECT(pg.wire_bytes < 4096, "second push sent %" PRIu64 " bytes", pg.wire_bytes);
    CK_EXPECT(w.replaced == 0, "a push that sent nothing reports a file written into place");
    check_dir(dir, src, 1, 2);

    /* the worker's copy of the last file differs from the master's (other weights, same config): it is
     * sent again and reported written into place, so that the worker opens a new engine on it */
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, plan->files[plan->n_files - 1].name);
    FILE *f = fopen(path, "r+b");
    int byte = f && fseek(f, -1, SEEK_END) == 0 ? fgetc(f) : EOF;
    CK_EXPECT(byte != EOF && fseek(f, -1, SEEK_END) == 0 && fputc(byte ^ 1, f) != EOF, "cannot change %s", path);
    if (f) fclose(f);
    rc = push_once(plan, id, 1, 2, key, root, "c0ffee00", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc == 0 && w.rc == 0 && w.replaced == 1, "push over a changed file: %s / %s, replaced %d", err, w.err,
              w.replaced);
    check_dir(dir, src, 1, 2);
    ck_push_plan_free(plan);
}

/* A GGUF source converted here to type ty: the push of its layers 1-2 is one model.gguf holding the source's
 * metadata and exactly the range's tensors, byte for byte; the engines agree; a second push sends nothing. */
static void test_gguf(const char *fixture, const char *ty, const char *root) {
    char err[1024], src[4096], dir[4096], path[4200];
    const char *base = strrchr(fixture, '/');
    snprintf(src, sizeof src, "%s/push-%s.gguf", root, base ? base + 1 : fixture);
    mkdir(root, 0700);
    if (ck_gguf_convert(fixture, src, (ck_dtype)ck_dtype_from_name(ty), err, sizeof err) != 0) {
        CK_EXPECT(0, "convert %s: %s", fixture, err);
        return;
    }
    uint8_t id[32], got_id[32];
    ck_push_plan *plan = NULL;
    if (ck_model_id(src, id, err, sizeof err) != 0 || ck_push_plan(src, "model.layers", 1, 2, &plan, err, sizeof err) != 0) {
        CK_EXPECT(0, "plan %s: %s", src, err);
        return;
    }
    CK_EXPECT(plan->n_files == 1 && !strcmp(plan->files[0].name, "model.gguf"), "GGUF plan: %zu files, %s",
              plan->n_files, plan->files[0].name);
    wjob w;
    prog pg;
    int rc = push_once(plan, id, 1, 2, NULL, root, "9999aaaa", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc == 0 && w.rc == 0, "push %s: %s / %s", src, err, w.err);
    expected_dir(dir, sizeof dir, root, "9999aaaa", id);
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    ck_gguf_file a, b;
    if (ck_gguf_open(path, &a, err, sizeof err) != 0) {
        CK_EXPECT(0, "pushed %s: %s", path, err);
    } else {
        if (ck_gguf_open(src, &b, err, sizeof err) == 0) {
            CK_EXPECT(a.g.meta_len == b.g.meta_len && !memcmp(a.g.meta, b.g.meta, a.g.meta_len) &&
                          a.g.alignment == b.g.alignment,
                      "the pushed metadata differs from the source's");
            size_t want = 0, same = 0;
            for (size_t i = 0; i < b.g.n_tensors; i++) {
                const ck_gguf_tensor *t = &b.g.tensors[i];
                int64_t l = layer_num(t->name, "blk");
                int global = l < 0 && strcmp(t->name, "token_embd.weight") && strcmp(t->name, "output.weight") &&
                             strcmp(t->name, "output_norm.weight"); /* rope_freqs.weight: every layer's */
                if (!global && (l < 1 || l > 2)) continue;
                want++;
                for (size_t j = 0; j < a.g.n_tensors; j++) {
                    const ck_gguf_tensor *u = &a.g.tensors[j];
                    if (!strcmp(u->name, t->name) && u->ggml_type == t->ggml_type && u->n_dims == t->n_dims &&
                        !memcmp(u->ne, t->ne, sizeof u->ne) && u->nbytes == t->nbytes && !memcmp(u->data, t->data, t->nbytes))
                        same++;
                }
            }
            CK_EXPECT(want > 0 && same == want && a.g.n_tensors == want,
                      "pushed %zu tensors, %zu of the range's %zu equal", a.g.n_tensors, same, want);
            ck_gguf_close(&b);
        } else
            CK_EXPECT(0, "%s: %s", src, err);
        ck_gguf_close(&a);
    }
    CK_EXPECT(ck_model_id(dir, got_id, err, sizeof err) == 0 && !memcmp(id, got_id, 32),
              "the pushed directory's model id differs from the source's");
    printf("%s (%s GGUF): layers 1-2 pushed as one model.gguf, %" PRIu64 " bytes, %zu tensors\n", fixture, ty,
           plan->total_bytes, plan->n_tensors);
    check_engine(dir, src, 1, 2);
    rc = push_once(plan, id, 1, 2, NULL, root, "9999aaaa", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc == 0 && w.rc == 0 && pg.wire_bytes < 4096, "second GGUF push: %s / %s, %" PRIu64 " bytes", err, w.err,
              pg.wire_bytes);
    /* a master whose ASSIGN names another model than the file it pushes: refused, after the hash checks */
    uint8_t other[32];
    memcpy(other, id, 32);
    other[0] ^= 1;
    rc = push_once(plan, other, 1, 2, NULL, root, "9999aaaa", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc != 0 && w.rc != 0 && strstr(w.err, "model.gguf does not have the ASSIGN's model id"),
              "a model.gguf of another model id was accepted: %s / %s", err, w.err);
    ck_push_plan_free(plan);
}

static uint64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
}

/* Interrupted, then resumed; interrupted, corrupted, refused, then redone. */
static void test_resume(const char *src, const char *root) {
    char err[1024], dir[4096], part[4200], fin[4200];
    uint8_t id[32];
    ck_push_plan *plan = NULL;
    if (ck_model_id(src, id, err, sizeof err) != 0 || ck_push_plan(src, "model.layers", 1, 2, &plan, err, sizeof err) != 0) {
        CK_EXPECT(0, "plan %s: %s", src, err);
        return;
    }
    uint64_t small = plan->total_bytes - plan->files[plan->n_files - 1].size;
    expected_dir(dir, sizeof dir, root, "resume", id);
    snprintf(part, sizeof part, "%s/model.safetensors.partial", dir);
    snprintf(fin, sizeof fin, "%s/model.safetensors", dir);
    wjob w;
    prog pg;

    int rc = push_once(plan, id, 1, 2, NULL, root, "resume", small + 50000, &pg, &w, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, "test hook"), "interrupted push: rc %d, %s", rc, err);
    CK_EXPECT(w.rc != 0, "the worker finished an interrupted push");
    CK_EXPECT(file_size(part) == 50000 && !ck_path_exists_any(fin), "partial is %" PRIu64 " bytes, final %s",
              file_size(part), ck_path_exists_any(fin) ? "exists" : "absent");

    rc = push_once(plan, id, 1, 2, NULL, root, "resume", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc == 0 && w.rc == 0, "resumed push: %s / %s", err, w.err);
    uint64_t sent = pg.last_done - pg.first_done;
    CK_EXPECT(pg.first_done == small + 50000 && sent == plan->total_bytes - pg.first_done && sent < plan->total_bytes,
              "resume sent %" PRIu64 " of %" PRIu64 " bytes (started at %" PRIu64 ")", sent, plan->total_bytes,
              pg.first_done);
    printf("%s: interrupted after %" PRIu64 " bytes, resumed with the other %" PRIu64 "\n", src, small + 50000, sent);
    check_dir(dir, src, 1, 2);

    /* a corrupted partial: caught by the hash at the end, deleted, reported to the master */
    unlink(fin);
    rc = push_once(plan, id, 1, 2, NULL, root, "resume", 60000, &pg, &w, err, sizeof err); /* small files are there */
    CK_EXPECT(rc != 0 && file_size(part) == 60000, "second interruption: partial %" PRIu64, file_size(part));
    FILE *f = fopen(part, "r+b");
    int ch = f && fseek(f, 30000, SEEK_SET) == 0 ? fgetc(f) : EOF;
    CK_EXPECT(ch != EOF && fseek(f, 30000, SEEK_SET) == 0 && fputc(ch ^ 0x10, f) != EOF, "flip a byte");
    if (f) fclose(f);
    rc = push_once(plan, id, 1, 2, NULL, root, "resume", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, "SHA-256 mismatch") && strstr(err, "model.safetensors"),
              "corrupted partial: master says '%s'", err);
    CK_EXPECT(w.rc != 0 && strstr(w.err, "SHA-256 mismatch"), "corrupted partial: worker says '%s'", w.err);
    CK_EXPECT(!ck_path_exists_any(part) && !ck_path_exists_any(fin), "bad partial kept or renamed");
    printf("%s: corrupted partial refused: %s\n", src, err);
    rc = push_once(plan, id, 1, 2, NULL, root, "resume", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc == 0 && w.rc == 0 && pg.first_done == small, "push after the refusal: %s / %s (from %" PRIu64 ")", err,
              w.err, pg.first_done);
    check_dir(dir, src, 1, 2);

    /* a partial meant for other contents (another range) is restarted, not continued */
    unlink(fin);
    rc = push_once(plan, id, 1, 2, NULL, root, "resume", 40000, &pg, &w, err, sizeof err);
    CK_EXPECT(rc != 0 && file_size(part) == 40000, "third interruption: partial %" PRIu64, file_size(part));
    ck_push_plan *other = NULL;
    CK_EXPECT(ck_push_plan(src, "model.layers", 0, 0, &other, err, sizeof err) == 0, "plan 0-0: %s", err);
    if (other) {
        rc = push_once(other, id, 0, 0, NULL, root, "resume", 0, &pg, &w, err, sizeof err);
        CK_EXPECT(rc == 0 && w.rc == 0 && pg.first_done == small, "push of another range over a partial: %s / %s",
                  err, w.err);
        check_dir(dir, src, 0, 0);
        ck_push_plan_free(other);
    }
    ck_push_plan_free(plan);
}

/* A master that breaks the rules gets an ERROR saying which one. */
typedef struct bad_push {
    uint64_t offset;
    uint32_t raw_len, crc;
    uint8_t codec;
    const uint8_t *data;
    size_t data_len;
    const char *expect;
} bad_push;

static void test_bad_master(const char *src, const char *root) {
    char err[1024];
    uint8_t id[32];
    ck_push_plan *plan = NULL;
    if (ck_model_id(src, id, err, sizeof err) != 0 || ck_push_plan(src, "model.layers", 1, 1, &plan, err, sizeof err) != 0) {
        CK_EXPECT(0, "plan: %s", err);
        return;
    }
    static uint8_t z3[64], zgood[64];
    size_t z3n = ZSTD_compress(z3, sizeof z3, "abc", 3, 1);
    size_t zgn = ZSTD_compress(zgood, sizeof zgood, plan->files[0].segs[0].data, 4, 1);
    uint32_t crc4 = ck_crc32(0, plan->files[0].segs[0].data, 4);
    const bad_push cases[] = {
        {5, 4, crc4, 0, plan->files[0].segs[0].data, 4, "offset 5, expected 0"},
        {0, 4, crc4 ^ 1, 0, plan->files[0].segs[0].data, 4, "CRC-32"},
        {0, 4, crc4, 1, (const uint8_t *)"abcd", 4, "bad zstd data"},
        {0, 4, crc4, 1, z3, z3n, "gave 3 bytes"},
        {0, 4, crc4 ^ 1, 1, zgood, zgn, "CRC-32"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        wjob w = {.root = root, .tag = "bad"};
        pthread_create(&w.th, NULL, worker_main, &w);
        ck_conn *c = NULL;
        ck_msgbuf b = {0};
        ck_msg m = {.type = CK_MSG_ASSIGN};
        memcpy(m.u.assign.model_id, id, 32);
        m.u.assign.first_layer = m.u.assign.last_layer = 1;
        m.u.assign.n_files = (uint16_t)plan->n_files;
        for (size_t i = 0; i < plan->n_files; i++) {
            m.u.assign.files[i].name = (ck_wire_str){plan->files[i].name, (uint16_t)strlen(plan->files[i].name)};
            m.u.assign.files[i].size = plan->files[i].size;
            memcpy(m.u.assign.files[i].sha256, plan->files[i].sha256, 32);
        }
        int rc = ck_conn_connect(g_addr, 5000, &c, err, sizeof err);
        if (rc == 0) rc = ck_conn_handshake(c, NULL, 0, 5000, err, sizeof err);
        if (rc == 0) rc = ck_msg_send(c, &b, &m, 5000, err, sizeof err);
        if (rc == 0) rc = ck_msg_recv(c, NULL, 1 << 16, &m, 5000, err, sizeof err);
        CK_EXPECT(rc == 0 && m.type == CK_MSG_HAVE && m.u.have.present[0] == 0, "bad master %zu: HAVE: %s", k, err);
        m = (ck_msg){.type = CK_MSG_PUSH};
        m.u.push.file = 0, m.u.push.offset = cases[k].offset, m.u.push.raw_len = cases[k].raw_len;
        m.u.push.crc32 = cases[k].crc, m.u.push.codec = cases[k].codec;
        m.u.push.data = cases[k].data, m.u.push.data_len = cases[k].data_len;
        if (rc == 0) rc = ck_msg_send(c, &b, &m, 5000, err, sizeof err);
        if (rc == 0) rc = ck_msg_recv(c, NULL, 1 << 16, &m, 5000, err, sizeof err);
        char got[1100];
        if (rc) snprintf(got, sizeof got, "%s", err);
        else if (m.type == CK_MSG_ERROR) snprintf(got, sizeof got, "%.*s", m.u.error.message.n, m.u.error.message.p);
        else snprintf(got, sizeof got, "%s", ck_msg_name(m.type));
        CK_EXPECT(rc == 0 && m.type == CK_MSG_ERROR && m.u.error.code == CK_PUSH_ERROR_CODE && strstr(got, cases[k].expect),
                  "bad master %zu: expected an ERROR with '%s': %s", k, cases[k].expect, got);
        ck_msgbuf_free(&b);
        ck_conn_close(c);
        pthread_join(w.th, NULL);
        CK_EXPECT(w.rc != 0 && strstr(w.err, cases[k].expect), "bad master %zu: worker says '%s'", k, w.err);
    }
    /* a tag that would leave the cache is refused */
    wjob w;
    prog pg;
    int rc = push_once(plan, id, 1, 1, NULL, root, "../x", 0, &pg, &w, err, sizeof err);
    CK_EXPECT(rc != 0 && strstr(err, "bad cluster tag") && w.rc != 0, "tag '../x': %s", err);
    ck_push_plan_free(plan);
}

static void test_plan_errors(void) {
    char err[512];
    ck_push_plan *p = NULL;
    CK_EXPECT(ck_push_plan(CK_TEST_DATA "/qwen3-s", "model.layers", 3, 4, &p, err, sizeof err) != 0 &&
                  strstr(err, "model.layers.4"),
              "layers past the model: %s", err);
    CK_EXPECT(ck_push_plan(CK_TEST_DATA "/qwen3-s", "model.layers", 2, 1, &p, err, sizeof err) != 0, "empty range");
    CK_EXPECT(ck_push_plan(CK_TEST_DATA "/qwen3-s", "nope.layers", 0, 0, &p, err, sizeof err) != 0 &&
                  strstr(err, "nope.layers.0"),
              "wrong prefix: %s", err);
    CK_EXPECT(ck_push_plan(CK_TEST_DATA "/no-such-model", "model.layers", 0, 0, &p, err, sizeof err) != 0 &&
                  strstr(err, "config.json"),
              "missing directory: %s", err);
    CK_EXPECT(p == NULL, "plan set on failure");
}

static int rm_rf(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

int main(void) {
    test_crc32();
    test_plan_errors();
    char err[512];
    for (int i = 0; i < 50 && g_lfd < 0; i++) {
        snprintf(g_addr, sizeof g_addr, "127.0.0.1:%d", 20000 + (int)((getpid() * 7 + i * 101) % 40000));
        if (ck_conn_listen(g_addr, &g_lfd, err, sizeof err) != 0) g_lfd = -1;
    }
    if (g_lfd < 0) {
        CK_EXPECT(0, "no port to listen on: %s", err);
        return ck_test_done("test_push");
    }
    char root[] = "/tmp/cake-test-push-XXXXXX";
    if (!mkdtemp(root)) {
        CK_EXPECT(0, "mkdtemp");
        return ck_test_done("test_push");
    }
    char cache[sizeof root + 16];
    snprintf(cache, sizeof cache, "%s/cache", root); /* created by the push, with its parents */
    test_full(CK_TEST_DATA "/qwen3-s", cache, NULL, 0);
    test_full(CK_TEST_DATA "/qwen3moe-s", cache, "sekrit key", 1);
    test_resume(CK_TEST_DATA "/qwen3-s", cache);
    test_bad_master(CK_TEST_DATA "/qwen3-s", cache);
    test_gguf(CK_TEST_DATA "/qwen3-s", "Q8_0", cache);
    test_gguf(CK_TEST_DATA "/qwen3moe-s", "Q4_0", cache);
    test_gguf(CK_TEST_DATA "/llama3-s", "F16", cache); /* Llama 3 RoPE scaling: a rope_freqs tensor */
    close(g_lfd);
    rm_rf(root);
    return ck_test_done("test_push");
}
