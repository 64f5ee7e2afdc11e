/* engine.c — the public engine and session API of include/cake.h over the model, its backend instance,
 * the tokenizer and one workspace per engine. Every forward of any session of an engine takes the
 * engine's lock, so the workspace and the compute threads are shared, never doubled. */
#include "engine/engine_internal.h"

#include "backend/cpu/wmem.h"
#include "base/err.h"
#include "base/file.h"
#include "base/grow.h"
#include "base/jsontext.h"
#include "format/gguf_model.h"
#include "jinja/jinja.h"
#include "model/moe.h"

#include <cjson/cJSON.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *ck_supported_archs(void) { return ck_model_supported(); }

int ck_set_threads(int n, char *note, size_t notelen) { return ck_cpu_threads_set(n, note, notelen); }

static char default_kind[8] = "cpu";
static int default_device;

int ck_set_backend(const char *kind, int device, char *err, size_t errlen) {
    if (!kind) return ck_err(err, errlen, "no backend given");
    if (strcmp(kind, "cpu") && strcmp(kind, "cuda")) return ck_err(err, errlen, "unknown backend '%s'", kind);
    int n = ck_backend_devices(kind);
    if (n == 0) return ck_err(err, errlen, "no %s device in this build or on this machine", kind);
    if (device < 0 || device >= n)
        return ck_err(err, errlen, "%s device %d does not exist (this machine has %d)", kind, device, n);
    snprintf(default_kind, sizeof default_kind, "%s", kind);
    default_device = device;
    return 0;
}

int ck_backend_count(const char *kind) { return ck_backend_devices(kind); }

/* Appends the name of device kind/index to the '+'-joined list in buf: "cpu", or "cuda:N" in a list of several
 * devices (tag), else "cuda". */
static void append_device(char *buf, size_t cap, const char *kind, int index, int tag) {
    size_t at = strlen(buf);
    if (!strcmp(kind, "cpu") || !tag) snprintf(buf + at, cap - at, "%s%s", at ? "+" : "", kind);
    else snprintf(buf + at, cap - at, "%s%s:%d", at ? "+" : "", kind, index);
}

/* Adds device kind/index to *out (see ck_devices_info_get); `tag` names it in a list of several; `again`:
 * the list named it before (two instances of one device: its memory and speed counted once). */
static int add_device(ck_devices_info *out, const char *kind, int index, int tag, int again, char *err, size_t errlen) {
    if (!strcmp(kind, "cpu")) {
        if (!out->cpu) out->mem_bytes += (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
        out->cpu = 1;
        append_device(out->backend, sizeof out->backend, kind, index, tag);
        return 0;
    }
#ifdef CK_HAVE_CUDA
    char name[96];
    uint64_t mem;
    double tf;
    if (ck_cuda_device_info(index, name, sizeof name, &mem, &tf) != 0)
        return ck_err(err, errlen, "CUDA device %d cannot be queried (this machine has %d)", index,
                      ck_cuda_device_count());
    if (!again) {
        out->mem_bytes += mem, out->gpu_tflops += tf;
        size_t g = strlen(out->gpus);
        snprintf(out->gpus + g, sizeof out->gpus - g, "%s%s", g ? "+" : "", name);
    }
    append_device(out->backend, sizeof out->backend, kind, index, tag);
    return 0;
#else
    (void)index, (void)tag, (void)again;
    return ck_err(err, errlen, "this build has no %s backend", kind);
#endif
}

int ck_devices_info_get(const char *devices, ck_devices_info *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!devices) return add_device(out, default_kind, default_device, 0, 0, err, errlen);
    const char *kind[CK_MAX_DEVICES];
    int index[CK_MAX_DEVICES], n = ck_parse_devices(devices, kind, index, CK_MAX_DEVICES, err, errlen);
    for (int i = 0; i < n; i++) {
        int again = 0;
        for (int j = 0; j < i; j++) again |= !strcmp(kind[j], kind[i]) && index[j] == index[i];
        if (add_device(out, kind[i], index[i], n > 1, again, err, errlen) != 0) return -1;
    }
    return n < 0 ? -1 : 0;
}

const char *ck_backends_built(void) {
#ifdef CK_HAVE_CUDA
    return "cpu,cuda";
#else
    return "cpu";
#endif
}
void ck_set_exact(int exact) { ck_cpu_exact_set(exact); }
int ck_exact(void) { return ck_cpu_exact(); }

void ck_set_weights_mapped(int mapped) { ck_cpu_wmem_set(mapped ? CK_WMEM_OFF : CK_WMEM_AUTO); }
int ck_weights_mapped(void) { return !ck_cpu_wmem_enabled(); }

int ck_set_kv_type(const char *name, char *err, size_t errlen) {
    if (!name) return ck_err(err, errlen, "no KV cache type given (f16, f32 or auto)");
    int dt = !strcmp(name, "auto") ? -1 : !strcmp(name, "f16") ? CK_F16 : !strcmp(name, "f32") ? CK_F32 : -2;
    if (dt == -2) return ck_err(err, errlen, "unknown KV cache type '%s' (f16, f32 or auto)", name);
    ck_model_set_kv_dtype(dt);
    return 0;
}

/* tokenizer.json (1), else a GGUF model's own vocabulary (2), else none (0); -1 on errors. */
static int open_tokenizer(ck_engine *e, const char *dir, char *err, size_t errlen) {
    char path[4096];
    if (ck_path_join(path, sizeof path, dir, "tokenizer.json", err, errlen) != 0) return -1;
    if (ck_path_exists_any(path)) return ck_tok_load(dir, &e->tok, err, errlen) != 0 ? -1 : 1;
    int gguf = ck_gguf_locate(dir, path, sizeof path, err, errlen);
    if (gguf <= 0) return gguf;
    ck_gguf_file f;
    if (ck_gguf_open(path, &f, err, errlen) != 0) return -1;
    int rc = 0;
    if (ck_gguf_find(&f.g, "tokenizer.ggml.tokens")) {
        char why[512];
        rc = ck_tok_load_gguf(&f.g, &e->tok, why, sizeof why) != 0 ? ck_err(err, errlen, "%s: %s", path, why) : 2;
    }
    ck_gguf_close(&f);
    return rc;
}

/* The vocabulary of the tokenizer (opened first; from tokenizer.json when src is 1, a GGUF file when 2) fits
 * the model's. */
static int check_tokenizer(ck_engine *e, int src, char *err, size_t errlen) {
    int32_t tv = e->tok ? ck_tok_vocab_size(e->tok) : 0;
    if ((size_t)tv > ck_engine_vocab(e))
        return ck_err(err, errlen, src == 2 ? "the GGUF file's tokenizer.ggml.tokens has ids up to %d but its "
                                              "vocabulary (the rows of token_embd.weight) is %zu"
                                            : "tokenizer.json has ids up to %d but the model's vocabulary (vocab_size) is %zu",
                      tv - 1, ck_engine_vocab(e));
    return 0;
}

static int engine_load(ck_engine *e, const char *dir, const ck_engine_opts *o, char *err, size_t errlen) {
    if (o && o->tokenizer_only) { /* tokenizer.json, or a GGUF file's vocabulary */
        int rc = open_tokenizer(e, dir, err, errlen);
        if (rc < 0) return -1;
        if (rc == 0) return ck_err(err, errlen, "%s has no tokenizer.json (nor a GGUF file with a vocabulary)", dir);
        snprintf(e->model.cfg.arch, sizeof e->model.cfg.arch, "%s", "tokenizer");
        return 0;
    }
    ck_range r = {0, INT64_MAX, 1, 1};
    if (o && o->partial) r = (ck_range){o->first_layer, o->last_layer, o->embed != 0, o->head != 0};
    int named = o && o->backend;
    if (ck_backend_create(named ? o->backend : default_kind, named ? o->device : default_device, &e->be, err,
                          errlen) != 0)
        return -1;
    /* the tokenizer first: the heap its parsing leaves goes back to the system before the weights are read
     * in (with weights copied into huge pages, the peak would otherwise hold both) */
    int tok_src = open_tokenizer(e, dir, err, errlen);
    if (tok_src < 0) return -1;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    ck_config cfg; /* the whole-model range needs the layer count first */
    if (!(o && o->partial)) {
        if (ck_config_load(dir, &cfg, err, errlen) != 0) return -1;
        r.last = cfg.n_layers - 1;
        ck_config_free(&cfg);
    }
    if (ck_model_load(dir, e->be, &r, &e->model, err, errlen) != 0) return -1;
    if (ck_ws_init(&e->ws, &e->model, err, errlen) != 0) return -1;
    snprintf(e->layer_prefix, sizeof e->layer_prefix, "%s", e->model.layer_prefix);
    size_t n = strlen(e->layer_prefix);
    if (n && e->layer_prefix[n - 1] == '.') e->layer_prefix[n - 1] = 0;
    return check_tokenizer(e, tok_src, err, errlen);
}

int ck_parse_devices(const char *list, const char **kinds, int *indices, int cap, char *err, size_t errlen) {
    int n = 0;
    for (const char *p = list ? list : "";;) {
        size_t len = strcspn(p, ",");
        if (n == cap) return ck_err(err, errlen, "at most %d devices", cap);
        char *end;
        long v = strtol(p, &end, 10);
        if (len == 3 && !strncmp(p, "cpu", 3)) kinds[n] = "cpu", indices[n] = 0;
        else if (len > 0 && p[0] >= '0' && p[0] <= '9' && end == p + len && v <= 1024) kinds[n] = "cuda", indices[n] = (int)v;
        else return ck_err(err, errlen, "'%.*s' is neither a GPU index nor cpu (a list is 0,1 or 0,cpu)", (int)len, p);
        n++;
        if (!p[len]) return n;
        p += len + 1;
    }
}

static int engine_open_one(const char *dir, const ck_engine_opts *opts, ck_engine **out, char *err, size_t errlen);

/* The model (or the range opts->partial names) over opts->devices: this engine the first part, with the
 * embedding and the head when the range has them, one engine per later part. */
static int engine_open_split(const char *dir, const ck_engine_opts *opts, ck_engine **out, char *err, size_t errlen) {
    const char *kind[CK_MAX_DEVICES];
    int index[CK_MAX_DEVICES], n = ck_parse_devices(opts->devices, kind, index, CK_MAX_DEVICES, err, errlen);
    if (n < 0) return -1;
    ck_config cfg;
    if (ck_config_load(dir, &cfg, err, errlen) != 0) return -1;
    int64_t L = cfg.n_layers, first = opts->partial ? opts->first_layer : 0, last = opts->partial ? opts->last_layer : L - 1;
    ck_config_free(&cfg);
    if (first < 0 || last >= L || last < first)
        return ck_err(err, errlen, "layers %lld-%lld over devices: the model has layers 0-%lld", (long long)first,
                      (long long)last, (long long)L - 1);
    int64_t count = last - first + 1;
    if (n > count)
        return ck_err(err, errlen, "%d devices for %lld layers: each device needs a layer", n, (long long)count);
    ck_engine *e = NULL;
    for (int k = 0; k < n; k++) {
        ck_engine_opts po = *opts;
        po.devices = NULL, po.partial = 1, po.first_layer = first + count * k / n;
        po.last_layer = first + count * (k + 1) / n - 1, po.backend = kind[k], po.device = index[k];
        po.embed = k == 0 && (!opts->partial || opts->embed), po.head = k == 0 && (!opts->partial || opts->head);
        ck_engine *part;
        if (engine_open_one(dir, &po, &part, err, errlen) != 0) {
            char why[512];
            snprintf(why, sizeof why, "%s", err);
            ck_err(err, errlen, "layers %lld-%lld on %s %d: %s", (long long)po.first_layer, (long long)po.last_layer,
                   kind[k], index[k], why);
            ck_engine_close(e);
            return -1;
        }
        if (k == 0) e = part;
        else e->sub[e->n_sub++] = part;
        if (k && part->tok) { /* only the first part encodes and decodes text */
            ck_tok_free(part->tok);
            part->tok = NULL;
        }
        append_device(e->backend, sizeof e->backend, ck_engine_backend(part), index[k], 1);
    }
    const char *via_host = getenv("CK_PARTS_VIA_HOST"); /* (to measure what the direct copies save) */
    e->direct = n > 1 && e->be->copy_peer && !(via_host && atoi(via_host));
    for (size_t i = 0; i < e->n_sub; i++)
        e->direct &= e->sub[i]->be->copy_peer == e->be->copy_peer && e->sub[i]->model.chunk == e->model.chunk;
    *out = e;
    return 0;
}

int ck_engine_open(const char *dir, const ck_engine_opts *opts, ck_engine **out, char *err, size_t errlen) {
    if (!out) return ck_err(err, errlen, "engine: NULL out");
    *out = NULL;
    if (!dir) return ck_err(err, errlen, "no model given");
    if (!ck_is_dir(dir) && !ck_is_file(dir))
        return ck_path_exists_any(dir) ? ck_err(err, errlen, "%s is not a model: not a directory or a GGUF file", dir)
                                       : ck_err(err, errlen, "model directory or file %s not found", dir);
    if (opts && opts->devices && !opts->tokenizer_only)
        return engine_open_split(dir, opts, out, err, errlen);
    return engine_open_one(dir, opts, out, err, errlen);
}

/* One engine on one backend (dir exists). */
static int engine_open_one(const char *dir, const ck_engine_opts *opts, ck_engine **out, char *err, size_t errlen) {
    *out = NULL;
    ck_engine *e = calloc(1, sizeof *e);
    if (!e) return ck_err(err, errlen, "out of memory");
    pthread_mutex_init(&e->lock, NULL);
    if (engine_load(e, dir, opts, err, errlen) != 0) {
        ck_engine_close(e);
        return -1;
    }
#ifdef __GLIBC__
    malloc_trim(0); /* the heap that parsing config and tokenizer files used goes back to the system */
#endif
    *out = e;
    return 0;
}

void ck_engine_close(ck_engine *e) {
    if (!e) return;
    for (size_t i = 0; i < e->n_sub; i++) ck_engine_close(e->sub[i]);
    if (e->tok) ck_tok_free(e->tok);
    ck_ws_free(&e->ws);
    if (e->model.be) ck_model_free(&e->model);
    ck_backend_destroy(e->be);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

const char *ck_engine_arch(const ck_engine *e) { return e->model.cfg.arch; }
size_t ck_engine_vocab(const ck_engine *e) { return (size_t)e->model.cfg.vocab_size; }
size_t ck_engine_n_layers(const ck_engine *e) { return (size_t)e->model.cfg.n_layers; }
size_t ck_engine_hidden(const ck_engine *e) { return (size_t)e->model.cfg.hidden_size; }
size_t ck_engine_max_ctx(const ck_engine *e) { return (size_t)e->model.cfg.max_pos; }
const char *ck_engine_backend(const ck_engine *e) { return e->n_sub ? e->backend : e->be ? e->be->name : "none"; }
const char *ck_engine_kv_type(const ck_engine *e) {
    return !e->be ? "none" : e->model.kv_dtype == CK_F16 ? "f16" : "f32";
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double ck_engine_device_bandwidth_gbs(ck_engine *e, size_t bytes, int reps) {
    ck_backend *be = e->be;
    if (!be || !strcmp(be->name, "cpu") || bytes == 0 || reps < 1) return -1;
    pthread_mutex_lock(&e->lock);
    void *a = be->alloc(be, bytes), *b = a ? be->alloc(be, bytes) : NULL;
    double gbs = -1;
    if (a && b) {
        be->copy(be, b, a, bytes); /* warm-up */
        int ok = be->sync(be, NULL, NULL, 0) == 0;
        double t0 = mono_s();
        for (int i = 0; ok && i < reps; i++) be->copy(be, i & 1 ? a : b, i & 1 ? b : a, bytes);
        ok = ok && be->sync(be, NULL, NULL, 0) == 0;
        double dt = mono_s() - t0;
        if (ok && dt > 0) gbs = 2.0 * (double)bytes * reps / dt * 1e-9;
    }
    if (a) be->free(be, a);
    if (b) be->free(be, b);
    pthread_mutex_unlock(&e->lock);
    return gbs;
}

uint64_t ck_engine_decode_bytes(const ck_engine *e) {
    const ck_model *m = &e->model;
    uint64_t total = 0, unread = 0;
    size_t E = 0, K = 0, F, SF;
    char ignored[64];
    if (m->expert_bytes && ck_moe_sizes(&m->cfg, &E, &K, &F, &SF, ignored, sizeof ignored) == 0 && E > K)
        unread = m->expert_bytes / E * (E - K); /* the experts a token's router does not choose */
    for (size_t i = 0; i < m->n_prepared; i++) {
        const ck_tensor *t = &m->prepared[i];
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = m->prepared[j].data == t->data;
        size_t rb;
        if (seen || t->ndim < 1 || ck_dtype_row_bytes(t->dtype, t->shape[t->ndim - 1], &rb) != 0) continue;
        uint64_t rows = ck_tensor_numel(t) / t->shape[t->ndim - 1];
        int embed_only = t->data == m->embed.data && !(m->range.head && m->lm_head.data == m->embed.data);
        total += embed_only ? rb : rows * rb;
    }
    total -= unread;
    for (size_t i = 0; i < e->n_sub; i++) total += ck_engine_decode_bytes(e->sub[i]);
    return total;
}

int ck_engine_exact(const ck_engine *e) {
    const ck_model *m = &e->model;
    int all = m->n_prepared > 0;
    for (size_t i = 0; all && i < m->n_prepared; i++) all = m->prepared[i].exact;
    return ck_exact() || all;
}

uint64_t ck_engine_kv_bytes(const ck_engine *e) {
    uint64_t total = e->be ? ck_model_kv_bytes(&e->model) : 0;
    for (size_t i = 0; i < e->n_sub; i++) total += ck_engine_kv_bytes(e->sub[i]);
    return total;
}

const char *ck_engine_layer_prefix(const ck_engine *e) { return e->layer_prefix; }

void ck_engine_range(const ck_engine *e, int64_t *first, int64_t *last, int *embed, int *head) {
    *first = e->model.range.first;
    *last = e->n_sub ? e->sub[e->n_sub - 1]->model.range.last : e->model.range.last; /* its parts' too */
    *embed = e->model.range.embed;
    *head = e->model.range.head;
}

/* 1 when the engine (with its parts over devices) holds the embedding, every layer and the head. */
static int holds_whole(const ck_engine *e) {
    int64_t first, last;
    int embed, head;
    ck_engine_range(e, &first, &last, &embed, &head);
    return embed && head && first == 0 && last == e->model.cfg.n_layers - 1;
}

int ck_engine_is_eos(const ck_engine *e, int32_t id) {
    const ck_config *c = &e->model.cfg;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return c->n_eos == 0 && e->tok && ck_tok_eos_id(e->tok) == id;
}

/* ---- text ---- */

int ck_engine_has_tokenizer(const ck_engine *e) { return e->tok != NULL; }

static int need_tok(const ck_engine *e, char *err, size_t errlen) {
    return e->tok ? 0 : ck_err(err, errlen, "the model directory has no tokenizer.json");
}

int ck_engine_encode(const ck_engine *e, const char *text, size_t len, int add_special, int32_t **ids, size_t *n,
                     char *err, size_t errlen) {
    *ids = NULL;
    *n = 0;
    if (need_tok(e, err, errlen) != 0) return -1;
    return ck_tok_encode(e->tok, text, len, add_special, ids, n, err, errlen);
}

int ck_engine_decode(const ck_engine *e, const int32_t *ids, size_t n, char **text, size_t *len, char *err,
                     size_t errlen) {
    *text = NULL;
    if (need_tok(e, err, errlen) != 0) return -1;
    return ck_tok_decode(e->tok, ids, n, 1, text, len, err, errlen);
}

int ck_engine_chat(const ck_engine *e) {
    if (!e->tok) return CK_CHAT_NONE;
    if (ck_tok_has_chat(e->tok)) return CK_CHAT_RENDERED;
    return ck_tok_chat_unsupported(e->tok) ? CK_CHAT_UNSUPPORTED : CK_CHAT_NONE;
}

const char *ck_engine_chat_error(const ck_engine *e) { return e->tok ? ck_tok_chat_error(e->tok) : ""; }

int ck_engine_set_chat_template(ck_engine *e, const char *text, size_t len, char *err, size_t errlen) {
    if (need_tok(e, err, errlen) != 0) return -1;
    if (!text) return ck_err(err, errlen, "chat template: NULL text");
    return ck_tok_chat_set_template(e->tok, text, len, err, errlen);
}

#define CHAT_TEMPLATE_FILE_MAX_BYTES ((size_t)4 << 20)

int ck_engine_set_chat_template_file(ck_engine *e, const char *path, char *err, size_t errlen) {
    char *text;
    size_t len;
    if (need_tok(e, err, errlen) != 0) return -1;
    if (ck_file_read_max(path, CHAT_TEMPLATE_FILE_MAX_BYTES, &text, &len, err, errlen) != 0) return -1;
    int rc = ck_tok_chat_set_template(e->tok, text, len, err, errlen);
    free(text);
    return rc;
}

int ck_engine_chat_ids(const ck_engine *e, const ck_message *msgs, size_t n_msgs, int enable_thinking,
                       int32_t **ids, size_t *n, char *err, size_t errlen) {
    *ids = NULL;
    *n = 0;
    if (need_tok(e, err, errlen) != 0) return -1;
    if (n_msgs && !msgs) return ck_err(err, errlen, "chat: NULL messages");
    ck_chat_msg *m = malloc((n_msgs ? n_msgs : 1) * sizeof *m);
    if (!m) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < n_msgs; i++) m[i] = (ck_chat_msg){msgs[i].role, msgs[i].content};
    char *text;
    int rc = ck_tok_chat_render(e->tok, m, n_msgs, 1, enable_thinking, &text, err, errlen);
    free(m);
    if (rc != 0) return -1;
    rc = ck_tok_encode(e->tok, text, strlen(text), 0, ids, n, err, errlen);
    free(text);
    return rc;
}

int ck_engine_plain_ids(const ck_engine *e, const ck_message *msgs, size_t n_msgs, int32_t **ids, size_t *n,
                        char *err, size_t errlen) {
    *ids = NULL;
    *n = 0;
    if (n_msgs && !msgs) return ck_err(err, errlen, "chat: NULL messages");
    size_t total = 1;
    for (size_t i = 0; i < n_msgs; i++) {
        if (!msgs[i].content) return ck_err(err, errlen, "chat: message %zu has no content", i);
        total += strlen(msgs[i].content);
    }
    char *text = malloc(total);
    if (!text) return ck_err(err, errlen, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n_msgs; i++) {
        size_t m = strlen(msgs[i].content);
        memcpy(text + k, msgs[i].content, m);
        k += m;
    }
    text[k] = 0;
    int rc = ck_engine_encode(e, text, k, 1, ids, n, err, errlen);
    free(text);
    return rc;
}

/* Parses an optional JSON argument; *out NULL when json is NULL. */
static int parse_json_arg(const char *json, const char *what, cJSON **out, char *err, size_t errlen) {
    *out = NULL;
    if (!json) return 0;
    if (ck_json_text_has_nul(json, strlen(json)))
        return ck_err(err, errlen, "chat: %s hold U+0000 (\\u0000), which cake's strings cannot", what);
    *out = cJSON_Parse(json);
    if (!*out) return ck_err(err, errlen, "chat: %s is not valid JSON", what);
    ck_jinja_json_mark_floats(*out, json, strlen(json)); /* 1.0 stays a float, as in Python */
    return 0;
}

/* The three JSON arguments of a render, parsed; 0, or -1 with err (and nothing left to free). */
typedef struct chat_json {
    cJSON *msgs, *tools, *kwargs;
} chat_json;

static void chat_json_free(chat_json *j) {
    cJSON_Delete(j->msgs);
    cJSON_Delete(j->tools);
    cJSON_Delete(j->kwargs);
}

static int chat_json_parse(chat_json *j, const char *messages_json, const char *tools_json, const char *kwargs_json,
                           char *err, size_t errlen) {
    *j = (chat_json){0};
    if (!messages_json) return ck_err(err, errlen, "chat: no messages");
    if (parse_json_arg(messages_json, "messages", &j->msgs, err, errlen) == 0 &&
        parse_json_arg(tools_json, "tools", &j->tools, err, errlen) == 0 &&
        parse_json_arg(kwargs_json, "the template arguments", &j->kwargs, err, errlen) == 0)
        return 0;
    chat_json_free(j);
    return -1;
}

int ck_engine_chat_render(const ck_engine *e, const char *messages_json, const char *tools_json,
                          const char *kwargs_json, int add_generation_prompt, char **text, size_t *text_len,
                          int32_t **ids, size_t *n_ids, char *err, size_t errlen) {
    if (text) *text = NULL;
    if (ids) *ids = NULL;
    if (n_ids) *n_ids = 0;
    if (need_tok(e, err, errlen) != 0) return -1;
    chat_json j;
    if (chat_json_parse(&j, messages_json, tools_json, kwargs_json, err, errlen) != 0) return -1;
    char *out = NULL;
    size_t len = 0;
    int rc = ck_tok_chat_render_json(e->tok, j.msgs, j.tools, j.kwargs, add_generation_prompt, &out, &len, err, errlen);
    chat_json_free(&j);
    if (rc == 0 && ids) rc = ck_tok_encode(e->tok, out, len, 0, ids, n_ids, err, errlen);
    if (rc == 0 && text) {
        *text = out;
        if (text_len) *text_len = len;
        out = NULL;
    }
    free(out);
    return rc;
}

int ck_chat_template_render(const char *tmpl, size_t tmpl_len, const char *messages_json, const char *tools_json,
                            const char *kwargs_json, int add_generation_prompt, char **text, size_t *text_len,
                            char *err, size_t errlen) {
    if (!text) return ck_err(err, errlen, "chat template: NULL text out");
    *text = NULL;
    if (!tmpl) return ck_err(err, errlen, "chat template: NULL template");
    ck_jinja *t;
    chat_json j;
    if (ck_jinja_parse(tmpl, tmpl_len, &t, err, errlen) != 0) return -1;
    if (chat_json_parse(&j, messages_json, tools_json, kwargs_json, err, errlen) != 0) {
        ck_jinja_free(t);
        return -1;
    }
    int rc = ck_chat_render_jinja(t, NULL, j.msgs, j.tools, j.kwargs, add_generation_prompt, text, text_len, err,
                                  errlen);
    chat_json_free(&j);
    ck_jinja_free(t);
    return rc;
}

/* ---- sessions ---- */

/* A session of this process as a stage of another (ck_session_stage). */
static int part_forward(void *ctx, float *hidden, size_t n, size_t pos, char *err, size_t errlen) {
    ck_session *p = ctx;
    if (ck_session_pos(p) != pos)
        return ck_err(err, errlen, "a part of the model holds %zu positions, the session is at %zu", ck_session_pos(p), pos);
    return ck_session_layers(p, hidden, n, hidden, err, errlen);
}
static int part_truncate(void *ctx, size_t pos, size_t *held, char *err, size_t errlen) {
    ck_session *p = ctx;
    if (pos > ck_session_pos(p)) pos = ck_session_pos(p); /* (a failed forward may have left it behind) */
    if (ck_session_truncate(p, pos, err, errlen) != 0) return -1;
    *held = ck_session_pos(p);
    return 0;
}

ck_stage ck_session_stage(ck_session *part, int64_t first_layer, int64_t last_layer) {
    return (ck_stage){first_layer, last_layer, part_forward, part_truncate, part};
}

static int set_stages(ck_session *s, const ck_stage *stages, size_t n, int64_t first, int64_t last, char *err,
                      size_t errlen);

/* Backend memory of engine e for a chunk of a part's rows, allocated and freed under the engine's lock,
 * since a backend's allocation may wait for the work another session queued. */
static float *part_rows_alloc(ck_engine *e) {
    pthread_mutex_lock(&e->lock);
    float *p = e->be->alloc(e->be, e->model.chunk * ck_engine_hidden(e) * sizeof(float));
    pthread_mutex_unlock(&e->lock);
    return p;
}
static void part_rows_free(ck_engine *e, float *p) {
    pthread_mutex_lock(&e->lock);
    e->be->free(e->be, p);
    pthread_mutex_unlock(&e->lock);
}

/* The sessions of the engine's later parts, made the session's stages (and, with direct parts, each
 * part's rows buffer). */
static int open_parts(ck_session *s, size_t max_ctx, char *err, size_t errlen) {
    ck_stage st[CK_MAX_DEVICES - 1];
    for (size_t i = 0; i < s->e->n_sub; i++) {
        ck_engine *p = s->e->sub[i];
        if (ck_session_open(p, max_ctx, &s->sub[i], err, errlen) != 0) return -1;
        st[i] = ck_session_stage(s->sub[i], p->model.range.first, p->model.range.last);
        if (s->e->direct && !(s->sub[i]->dev_rows = part_rows_alloc(p))) return ck_err(err, errlen, "out of device memory");
    }
    if (s->e->direct && !(s->dev_rows = part_rows_alloc(s->e))) return ck_err(err, errlen, "out of device memory");
    int64_t first, last;
    int embed, head;
    ck_engine_range(s->e, &first, &last, &embed, &head);
    return set_stages(s, st, s->e->n_sub, first, last, err, errlen);
}

int ck_session_open(ck_engine *e, size_t max_ctx, ck_session **out, char *err, size_t errlen) {
    if (!out) return ck_err(err, errlen, "session: NULL out");
    *out = NULL;
    if (!e) return ck_err(err, errlen, "session: NULL engine");
    if (!e->be) return ck_err(err, errlen, "the engine was opened for its tokenizer only");
    size_t model_max = ck_engine_max_ctx(e);
    if (max_ctx == 0) max_ctx = model_max;
    if (max_ctx > model_max)
        return ck_err(err, errlen, "a context of %zu positions exceeds the model's maximum (%zu)", max_ctx, model_max);
    ck_session *s = calloc(1, sizeof *s);
    if (!s) return ck_err(err, errlen, "out of memory");
    s->e = e;
    if (ck_seq_init(&s->seq, &e->model, max_ctx, err, errlen) != 0) {
        free(s);
        return -1;
    }
    if (e->n_sub && open_parts(s, max_ctx, err, errlen) != 0) {
        ck_session_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void ck_session_close(ck_session *s) {
    if (!s) return;
    for (size_t i = 0; i < s->e->n_sub; i++) ck_session_close(s->sub[i]);
    if (s->dev_rows) part_rows_free(s->e, s->dev_rows);
    ck_seq_free(&s->seq);
    free(s->ids);
    free(s->hidden);
    free(s);
}

static int staged(const ck_session *s) { return s->n_stages > 0; }

size_t ck_session_pos(const ck_session *s) { return staged(s) ? s->pipe_pos : s->seq.pos; }
size_t ck_session_max_ctx(const ck_session *s) { return s->seq.max_ctx; }

size_t ck_session_prefix(const ck_session *s, const int32_t *ids, size_t n) {
    size_t held = s->n_ids < ck_session_pos(s) ? s->n_ids : ck_session_pos(s), k = 0;
    while (k < held && k < n && s->ids[k] == ids[k]) k++;
    return k;
}

/* Truncates every part of a staged session to pos, then all of them to the lowest position any holds
 * (a part with recurrent layers restarts at 0). */
static int truncate_stages(ck_session *s, size_t pos, char *err, size_t errlen) {
    for (int pass = 0; pass < 2; pass++) {
        size_t low = pos;
        for (size_t i = 0; i < s->n_stages; i++) {
            size_t held = 0;
            if (s->stages[i].truncate(s->stages[i].ctx, pos, &held, err, errlen) != 0) return -1;
            if (held < low) low = held;
        }
        ck_seq_truncate(&s->seq, pos);
        if (s->own_at >= 0 && s->seq.pos < low) low = s->seq.pos;
        if (low == pos) break;
        pos = low;
    }
    s->pipe_pos = pos;
    s->pipe_broken = 0;
    s->reset_why[0] = 0;
    return 0;
}

int ck_session_truncate(ck_session *s, size_t pos, char *err, size_t errlen) {
    size_t held = ck_session_pos(s);
    if (pos > held) return ck_err(err, errlen, "cannot truncate to position %zu: the session holds %zu", pos, held);
    if (staged(s)) {
        if (truncate_stages(s, pos, err, errlen) != 0) return -1;
    } else {
        ck_seq_truncate(&s->seq, pos);
    }
    if (s->n_ids > ck_session_pos(s)) s->n_ids = ck_session_pos(s);
    return 0;
}

void ck_session_reset(ck_session *s) {
    ck_seq_reset(&s->seq);
    s->n_ids = 0;
    if (staged(s) && truncate_stages(s, 0, s->reset_why, sizeof s->reset_why) != 0)
        s->pipe_broken = 1; /* reported, with reset_why, by the next forward */
}

ck_timing ck_session_timing(const ck_session *s) {
    ck_timing t = {s->seq.stats.embed_s, s->seq.stats.layers_s, s->seq.stats.head_s, s->seq.stats.attn_s};
    for (size_t i = 0; i < s->e->n_sub; i++) { /* the later parts' layers */
        ck_timing p = ck_session_timing(s->sub[i]);
        t.layers_s += p.layers_s, t.attn_s += p.attn_s;
    }
    return t;
}

void ck_session_capture(ck_session *s, float *buf, size_t rows) {
    s->seq.capture = buf;
    s->seq.capture_rows = rows;
}

typedef struct fwd_job {
    ck_session *s;
    const ck_fwd *f;
    char *err;
    size_t errlen;
    int rc;
} fwd_job;

static void fwd_job_run(void *arg) {
    fwd_job *j = arg;
    ck_engine *e = j->s->e;
    j->rc = ck_model_forward(&e->model, &j->s->seq, &e->ws, j->f, j->err, j->errlen);
}

/* One forward of the engine at a time (the workspace is shared), in the backend's compute context. */
static int run(ck_session *s, const ck_fwd *f, char *err, size_t errlen) {
    ck_engine *e = s->e;
    fwd_job j = {s, f, err, errlen, -1};
    pthread_mutex_lock(&e->lock);
    e->be->exec(e->be, fwd_job_run, &j);
    pthread_mutex_unlock(&e->lock);
    return j.rc;
}

/* Remembers ids fed at positions [pos0, pos0 + n) while the history is contiguous. */
static void remember_ids(ck_session *s, size_t pos0, const int32_t *ids, size_t n) {
    if (s->n_ids != pos0) return;
    void *p = ck_grow(s->ids, &s->cap_ids, pos0 + n, sizeof *s->ids, 256);
    if (!p) return; /* the history is an optimisation (prefix reuse); without it nothing is reused */
    s->ids = p;
    memcpy(s->ids + pos0, ids, n * sizeof *ids);
    s->n_ids = pos0 + n;
}

/* ---- split models ---- */

static int cmp_stage(const void *a, const void *b) {
    const ck_stage *x = a, *y = b;
    return x->first_layer < y->first_layer ? -1 : x->first_layer > y->first_layer;
}

/* Makes stages and the engine's own range (when it holds layers) the parts of s, in layer order; together
 * they must tile layers first..last. */
static int set_stages(ck_session *s, const ck_stage *stages, size_t n, int64_t first, int64_t last, char *err,
                      size_t errlen) {
    const ck_range *r = &s->e->model.range;
    if (n == 0 || n > CK_MAX_STAGES) return ck_err(err, errlen, "between 1 and %d stages", CK_MAX_STAGES);
    if (ck_session_pos(s) != 0) return ck_err(err, errlen, "stages are set on a fresh session");
    ck_stage sorted[CK_MAX_STAGES + 1];
    memcpy(sorted, stages, n * sizeof *stages);
    size_t total = n;
    if (r->last >= r->first) sorted[total++] = (ck_stage){.first_layer = r->first, .last_layer = r->last};
    qsort(sorted, total, sizeof *sorted, cmp_stage);
    int64_t next = first;
    s->own_at = -1;
    s->n_stages = 0;
    for (size_t i = 0; i < total; i++) {
        if (sorted[i].first_layer != next || sorted[i].last_layer < sorted[i].first_layer)
            return ck_err(err, errlen, "the parts of the model do not tile its layers: layer %lld is %s", (long long)next,
                          sorted[i].first_layer > next ? "held by nobody" : "held twice");
        next = sorted[i].last_layer + 1;
        if (!sorted[i].forward) s->own_at = (long)s->n_stages;
        else s->stages[s->n_stages++] = sorted[i];
    }
    if (next != last + 1)
        return ck_err(err, errlen, "the parts of the model stop at layer %lld of %lld", (long long)next, (long long)last + 1);
    s->pipe_pos = 0;
    return 0;
}

int ck_session_set_stages(ck_session *s, const ck_stage *stages, size_t n, char *err, size_t errlen) {
    const ck_range *r = &s->e->model.range;
    if (!r->embed || !r->head) return ck_err(err, errlen, "a session with stages needs the embedding and the head");
    if (s->e->n_sub) return ck_err(err, errlen, "an engine over devices runs its own parts as stages");
    return set_stages(s, stages, n, 0, s->e->model.cfg.n_layers - 1, err, errlen);
}

static int grow_hidden(ck_session *s, size_t n, char *err, size_t errlen) {
    size_t D = ck_engine_hidden(s->e), need;
    if (ck_mul_size(n, D, &need) != 0) return ck_err(err, errlen, "too many rows");
    void *p = ck_grow(s->hidden, &s->cap_hidden, need, sizeof *s->hidden, D * 64);
    if (!p) return ck_err(err, errlen, "out of memory");
    s->hidden = p;
    return 0;
}

/* Rows a staged forward passes between parts at a time: a multiple of every engine's chunk (64 on the CPU,
 * 512 on CUDA), so that each part cuts its rows where it would have cut them all at once (the same
 * results), while the host buffer between parts stays bounded for a long prompt. */
#define CK_STAGE_ROWS 4096

/* Checks that n more positions fit a staged session that is not broken. */
static int staged_room(const ck_session *s, size_t n, char *err, size_t errlen) {
    if (s->pipe_broken && s->reset_why[0]) return ck_err(err, errlen, "the session could not be reset: %s", s->reset_why);
    if (s->pipe_broken) return ck_err(err, errlen, "an earlier forward failed midway; truncate or reset the session");
    if (n > s->seq.max_ctx - s->pipe_pos)
        return ck_err(err, errlen, "context full: %zu positions held, %zu more requested, %zu available", s->pipe_pos,
                      n, s->seq.max_ctx);
    return 0;
}

/* rows[T, hidden] (host, in place) through the parts in layer order at the session's position. */
static int pass_parts(ck_session *s, float *rows, size_t T, char *err, size_t errlen) {
    for (size_t i = 0; i <= s->n_stages; i++) {
        if ((long)i == s->own_at) {
            ck_fwd own = {.hidden_in = rows, .n = T, .run_layers = 1, .hidden_out = rows};
            if (run(s, &own, err, errlen) != 0) return -1;
        }
        if (i < s->n_stages && s->stages[i].forward(s->stages[i].ctx, rows, T, s->pipe_pos, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Rows of at most a chunk through the parts of an engine over devices that pass them device to device:
 * ids (or host rows in) -> part 0 -> ... -> the last part, whose output goes to host out, or stays in
 * its session's dev_rows (*held). Each part's chunk is the piece: every part cuts its rows where it would
 * have cut them all at once. */
static int direct_pass(ck_session *s, const int32_t *ids, const float *in, size_t T, float *out, ck_session **held,
                       char *err, size_t errlen) {
    ck_session *prev = NULL;
    for (size_t i = 0; i <= s->e->n_sub; i++) {
        ck_session *p = i ? s->sub[i - 1] : s;
        int to_host = i == s->e->n_sub && out;
        size_t held = i ? ck_session_pos(p) : s->seq.pos; /* (as part_forward) */
        if (held != s->pipe_pos)
            return ck_err(err, errlen, "a part of the model holds %zu positions, the session is at %zu", held,
                          s->pipe_pos);
        ck_fwd f = {.ids = i ? NULL : ids, .hidden_in = i ? prev->dev_rows : in, .in_be = i ? prev->e->be : NULL,
                    .n = T, .run_layers = 1, .hidden_out = to_host ? out : p->dev_rows, .out_dev = !to_host};
        if (run(p, &f, err, errlen) != 0) return -1;
        prev = p;
    }
    *held = prev;
    return 0;
}

/* Rows a staged forward passes between parts at a time (see CK_STAGE_ROWS). */
static size_t stage_rows(const ck_session *s) { return s->e->direct ? s->e->model.chunk : CK_STAGE_ROWS; }

/* embedding -> the parts in layer order -> head, a piece of stage_rows at a time: through s->hidden, or
 * device to device. */
static int staged_forward(ck_session *s, const int32_t *ids, size_t n, float *logits, int32_t *top, int all,
                          char *err, size_t errlen) {
    if (staged_room(s, n, err, errlen) != 0) return -1;
    size_t V = ck_engine_vocab(s->e), P = stage_rows(s);
    if (!s->e->direct && grow_hidden(s, n < P ? n : P, err, errlen) != 0) return -1;
    for (size_t c0 = 0; c0 < n; c0 += P) {
        size_t T = n - c0 < P ? n - c0 : P, last = c0 + T == n;
        ck_fwd head = {.hidden_in = s->hidden, .n = T, .logits = logits && all ? logits + c0 * V : logits,
                       .top = top && all ? top + c0 : top, .all = all};
        s->pipe_broken = 1; /* until every part has run */
        if (s->e->direct) {
            ck_session *held = NULL;
            if (direct_pass(s, ids + c0, NULL, T, NULL, &held, err, errlen) != 0) return -1;
            head.hidden_in = held->dev_rows, head.in_be = held->e->be;
        } else {
            ck_fwd embed = {.ids = ids + c0, .n = T, .hidden_out = s->hidden};
            if (run(s, &embed, err, errlen) != 0 || pass_parts(s, s->hidden, T, err, errlen) != 0) return -1;
        }
        if (last || (all && (logits || top))) { /* the head: every row's logits (all), else the last row's */
            if (run(s, &head, err, errlen) != 0) return -1;
        }
        s->pipe_broken = 0;
        s->pipe_pos += T;
    }
    return 0;
}

/* The layers of every part, a piece of stage_rows at a time, in place in out. */
static int staged_layers(ck_session *s, const float *in, size_t n, float *out, char *err, size_t errlen) {
    if (staged_room(s, n, err, errlen) != 0) return -1;
    size_t D = ck_engine_hidden(s->e), P = stage_rows(s);
    if (out != in) memmove(out, in, n * D * sizeof *out);
    for (size_t c0 = 0; c0 < n; c0 += P) {
        size_t T = n - c0 < P ? n - c0 : P;
        ck_session *held = NULL;
        s->pipe_broken = 1;
        if (s->e->direct ? direct_pass(s, NULL, out + c0 * D, T, out + c0 * D, &held, err, errlen)
                         : pass_parts(s, out + c0 * D, T, err, errlen))
            return -1;
        s->pipe_broken = 0;
        s->pipe_pos += T;
    }
    return 0;
}

/* ck_session_forward, and the index of the largest logit into top (as ck_fwd's top) unless it is NULL. */
static int session_forward(ck_session *s, const int32_t *ids, size_t n, float *logits, int32_t *top, int all,
                           char *err, size_t errlen) {
    size_t pos0 = ck_session_pos(s);
    if (staged(s)) {
        /* (the stages ck_session_set_stages took tile the whole model; an engine over devices may hold a range) */
        if (s->e->n_sub && !holds_whole(s->e))
            return ck_err(err, errlen, "this engine holds part of the model: run it with ck_session_embed/layers/head");
        if (staged_forward(s, ids, n, logits, top, all, err, errlen) != 0) return -1;
    } else {
        if (!holds_whole(s->e))
            return ck_err(err, errlen, "this engine holds part of the model: give it stages (ck_session_set_stages) "
                                       "or run it with ck_session_embed/layers/head");
        ck_fwd f = {.ids = ids, .n = n, .run_layers = 1, .logits = logits, .top = top, .all = all};
        if (run(s, &f, err, errlen) != 0) return -1;
    }
    remember_ids(s, pos0, ids, n);
    return 0;
}

int ck_session_forward(ck_session *s, const int32_t *ids, size_t n, float *logits, int all, char *err,
                       size_t errlen) {
    return session_forward(s, ids, n, logits, NULL, all, err, errlen);
}

int ck_session_forward_top(ck_session *s, const int32_t *ids, size_t n, int32_t *top, char *err, size_t errlen) {
    if (!top) return ck_err(err, errlen, "forward: NULL top");
    int32_t t; /* (top may be the fed id) */
    if (session_forward(s, ids, n, NULL, &t, 0, err, errlen) != 0) return -1;
    *top = t;
    return 0;
}

int ck_session_embed(ck_session *s, const int32_t *ids, size_t n, float *hidden, char *err, size_t errlen) {
    ck_fwd f = {.ids = ids, .n = n, .hidden_out = hidden};
    return run(s, &f, err, errlen);
}

int ck_session_layers(ck_session *s, const float *hidden_in, size_t n, float *hidden_out, char *err,
                      size_t errlen) {
    s->n_ids = 0; /* the ids behind these positions are not known here */
    if (staged(s)) return staged_layers(s, hidden_in, n, hidden_out, err, errlen);
    ck_fwd f = {.hidden_in = hidden_in, .n = n, .run_layers = 1, .hidden_out = hidden_out};
    return run(s, &f, err, errlen);
}

int ck_session_head(ck_session *s, const float *hidden, size_t n, float *logits, int all, char *err,
                    size_t errlen) {
    ck_fwd f = {.hidden_in = hidden, .n = n, .logits = logits, .all = all};
    return run(s, &f, err, errlen);
}

/* ---- batches ---- */

typedef struct batch_job {
    ck_engine *e;
    ck_batch_in in[CK_CHUNK];
    size_t n;
    const ck_batch_io *io; /* NULL: the whole model in one engine */
    char *err;
    size_t errlen;
    int rc;
} batch_job;

static void batch_job_run(void *arg) {
    batch_job *j = arg;
    j->rc = ck_model_batch(&j->e->model, j->in, j->n, j->io, &j->e->ws, j->err, j->errlen);
}

/* One model batch under the engine's lock. */
static int run_job(batch_job *j) {
    pthread_mutex_lock(&j->e->lock);
    j->e->be->exec(j->e->be, batch_job_run, j);
    pthread_mutex_unlock(&j->e->lock);
    return j->rc;
}

/* 1 when the feeds can share forwards: sessions of one engine holding the whole model (over devices too),
 * without stages of their own (a cluster master's). */
static int batchable(const ck_feed *f, size_t n) {
    const ck_engine *e = f[0].s->e;
    if (!holds_whole(e)) return 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].s->e != e || (staged(f[i].s) && !e->n_sub)) return 0;
    return 1;
}

static ck_session *session_of_seq(ck_seq *q) { return (ck_session *)((char *)q - offsetof(ck_session, seq)); }

/* A batch (j->in: the sessions' own sequences) through the parts of an engine over devices: part 0 embeds
 * and runs its layers, each later part runs its layers on the rows of the one before (device to device, or
 * through the host), then part 0 makes the logits. The first input's session lends its row buffers (a chunk
 * each: at least CK_CHUNK rows). A batch part 0 refuses moves nothing; a later failure leaves the sessions
 * broken until a truncate. */
static int split_batch(batch_job *j) {
    ck_engine *e = j->e;
    ck_session *s0 = session_of_seq(j->in[0].s);
    if (!e->direct && grow_hidden(s0, CK_CHUNK, j->err, j->errlen) != 0) return -1;
    for (size_t i = 0; i < j->n; i++) {
        ck_session *s = session_of_seq(j->in[i].s);
        if (staged_room(s, j->in[i].n, j->err, j->errlen) != 0) return -1;
        for (size_t k = 0; k <= e->n_sub; k++) /* (as direct_pass) */
            if ((k ? ck_session_pos(s->sub[k - 1]) : s->seq.pos) != s->pipe_pos)
                return ck_err(j->err, j->errlen, "a part of the model holds other positions than the session");
    }
    batch_job part = {.e = e, .n = j->n, .err = j->err, .errlen = j->errlen};
    float *buf = e->direct ? s0->dev_rows : s0->hidden;
    ck_backend *buf_be = NULL;
    for (size_t k = 0; k <= e->n_sub; k++) {
        ck_engine *p = k ? e->sub[k - 1] : e;
        float *out = e->direct ? (k ? s0->sub[k - 1]->dev_rows : s0->dev_rows) : s0->hidden;
        ck_batch_io io = {.rows_in = k ? buf : NULL, .in_be = e->direct ? buf_be : NULL, .layers = 1, .rows_out = out,
                          .out_dev = e->direct};
        part.e = p, part.io = &io;
        for (size_t i = 0; i < j->n; i++) {
            ck_session *s = session_of_seq(j->in[i].s);
            part.in[i] = (ck_batch_in){k ? &s->sub[k - 1]->seq : &s->seq, k ? NULL : j->in[i].ids, j->in[i].n, NULL,
                                       NULL};
        }
        if (run_job(&part) != 0) return -1; /* (part 0 checks the batch first: then nothing has moved) */
        for (size_t i = 0; !k && i < j->n; i++) session_of_seq(j->in[i].s)->pipe_broken = 1; /* parts apart */
        buf = out, buf_be = p->be;
    }
    ck_batch_io head = {.rows_in = buf, .in_be = e->direct ? buf_be : NULL};
    part.e = e, part.io = &head;
    memcpy(part.in, j->in, j->n * sizeof *j->in);
    if (run_job(&part) != 0) return -1;
    for (size_t i = 0; i < j->n; i++) {
        ck_session *s = session_of_seq(j->in[i].s);
        s->pipe_pos += j->in[i].n, s->pipe_broken = 0;
    }
    return 0;
}

/* Runs one batch; remembers the ids of the pieces that ran. */
static int run_batch(batch_job *j, const size_t *pos0) {
    if ((j->e->n_sub ? split_batch(j) : run_job(j)) != 0) return -1;
    for (size_t i = 0; i < j->n; i++) remember_ids(session_of_seq(j->in[i].s), pos0[i], j->in[i].ids, j->in[i].n);
    return 0;
}

int ck_session_batch(const ck_feed *feeds, size_t n, char *err, size_t errlen) {
    if (n == 0) return 0;
    if (!feeds) return ck_err(err, errlen, "batch: NULL feeds");
    /* every feed checked before any runs: a refused batch leaves every session as it was */
    for (size_t i = 0; i < n; i++) {
        const ck_feed *f = &feeds[i];
        if (!f->s || !f->ids || f->n == 0) return ck_err(err, errlen, "feed %zu is empty", i);
        for (size_t k = 0; k < i; k++)
            if (feeds[k].s == f->s) return ck_err(err, errlen, "a session appears twice (feeds %zu and %zu)", k, i);
        size_t V = ck_engine_vocab(f->s->e), held = ck_session_pos(f->s);
        for (size_t t = 0; t < f->n; t++)
            if (f->ids[t] < 0 || (size_t)f->ids[t] >= V)
                return ck_err(err, errlen, "feed %zu: token id %d out of range (vocabulary %zu)", i, f->ids[t], V);
        if (f->n > f->s->seq.max_ctx - held)
            return ck_err(err, errlen, "feed %zu: context full: %zu positions held, %zu more requested, %zu available", i,
                          held, f->n, f->s->seq.max_ctx);
    }
    if (!batchable(feeds, n)) { /* a cluster master or mixed engines: one forward per session */
        for (size_t i = 0; i < n; i++)
            if (session_forward(feeds[i].s, feeds[i].ids, feeds[i].n, feeds[i].logits, feeds[i].top, 0, err, errlen) != 0)
                return -1;
        return 0;
    }
    /* pack the feeds into batches of at most CK_CHUNK rows; a long feed continues in the next batch */
    batch_job j = {.e = feeds[0].s->e, .err = err, .errlen = errlen};
    size_t pos0[CK_CHUNK], rows = 0, i = 0, done = 0;
    while (i < n) {
        size_t take = feeds[i].n - done < CK_CHUNK - rows ? feeds[i].n - done : CK_CHUNK - rows;
        int last = done + take == feeds[i].n;
        pos0[j.n] = ck_session_pos(feeds[i].s);
        j.in[j.n++] = (ck_batch_in){&feeds[i].s->seq, feeds[i].ids + done, take, last ? feeds[i].logits : NULL,
                                    last ? feeds[i].top : NULL};
        rows += take;
        done = last ? 0 : done + take;
        i += last;
        if (rows == CK_CHUNK || i == n) {
            if (run_batch(&j, pos0) != 0) return -1;
            j.n = 0, rows = 0;
        }
    }
    return 0;
}

int ck_session_step(ck_session *const *ss, size_t n, const int32_t *ids, float *const *logits, char *err,
                    size_t errlen) {
    enum { GROUP = 64 };
    ck_feed f[GROUP];
    for (size_t i0 = 0; i0 < n; i0 += GROUP) {
        size_t k = n - i0 < GROUP ? n - i0 : GROUP;
        for (size_t i = 0; i < k; i++)
            f[i] = (ck_feed){ss[i0 + i], &ids[i0 + i], 1, logits ? logits[i0 + i] : NULL, NULL};
        if (ck_session_batch(f, k, err, errlen) != 0) return -1;
    }
    return 0;
}
