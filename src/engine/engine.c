/* engine.c — the public engine and session API of include/cake.h over the model, its backend instance,
 * the tokenizer and one workspace per engine. Every forward of any session of an engine takes the
 * engine's lock, so the workspace and the compute threads are shared, never doubled. */
#include "engine/engine_internal.h"

#include "base/err.h"
#include "base/file.h"
#include "base/grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ck_supported_archs(void) { return ck_model_supported(); }

int ck_set_threads(int n, char *note, size_t notelen) { return ck_cpu_threads_set(n, note, notelen); }

static int load_tokenizer(ck_engine *e, const char *dir, char *err, size_t errlen) {
    char path[4096];
    if (ck_path_join(path, sizeof path, dir, "tokenizer.json", err, errlen) != 0) return -1;
    if (!ck_path_exists_any(path)) return 0;
    if (ck_tok_load(dir, &e->tok, err, errlen) != 0) return -1;
    int32_t tv = ck_tok_vocab_size(e->tok);
    if ((size_t)tv > ck_engine_vocab(e))
        return ck_err(err, errlen, "tokenizer.json has ids up to %d but the model's vocabulary (vocab_size) is %zu",
                      tv - 1, ck_engine_vocab(e));
    return 0;
}

static int engine_load(ck_engine *e, const char *dir, const ck_engine_opts *o, char *err, size_t errlen) {
    ck_range r = {0, INT64_MAX, 1, 1};
    if (o && o->partial) r = (ck_range){o->first_layer, o->last_layer, o->embed != 0, o->head != 0};
    if (ck_backend_create(o && o->backend ? o->backend : "cpu", o ? o->device : 0, &e->be, err, errlen) != 0)
        return -1;
    ck_config cfg; /* the whole-model range needs the layer count first */
    if (!(o && o->partial)) {
        if (ck_config_load(dir, &cfg, err, errlen) != 0) return -1;
        r.last = cfg.n_layers - 1;
        ck_config_free(&cfg);
    }
    if (ck_model_load(dir, e->be, &r, &e->model, err, errlen) != 0) return -1;
    if (ck_ws_init(&e->ws, &e->model, err, errlen) != 0) return -1;
    return load_tokenizer(e, dir, err, errlen);
}

int ck_engine_open(const char *dir, const ck_engine_opts *opts, ck_engine **out, char *err, size_t errlen) {
    *out = NULL;
    if (!ck_is_dir(dir)) return ck_err(err, errlen, "model directory %s not found", dir);
    ck_engine *e = calloc(1, sizeof *e);
    if (!e) return ck_err(err, errlen, "out of memory");
    pthread_mutex_init(&e->lock, NULL);
    if (engine_load(e, dir, opts, err, errlen) != 0) {
        ck_engine_close(e);
        return -1;
    }
    *out = e;
    return 0;
}

void ck_engine_close(ck_engine *e) {
    if (!e) return;
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
const char *ck_engine_backend(const ck_engine *e) { return e->be->name; }

void ck_engine_range(const ck_engine *e, int64_t *first, int64_t *last, int *embed, int *head) {
    *first = e->model.range.first;
    *last = e->model.range.last;
    *embed = e->model.range.embed;
    *head = e->model.range.head;
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

int ck_engine_chat_ids(const ck_engine *e, const ck_message *msgs, size_t n_msgs, int enable_thinking,
                       int32_t **ids, size_t *n, char *err, size_t errlen) {
    *ids = NULL;
    *n = 0;
    if (need_tok(e, err, errlen) != 0) return -1;
    if (ck_engine_chat(e) != CK_CHAT_RENDERED) return ck_err(err, errlen, "the model has no chat template cake renders");
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

/* ---- sessions ---- */

int ck_session_open(ck_engine *e, size_t max_ctx, ck_session **out, char *err, size_t errlen) {
    *out = NULL;
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
    *out = s;
    return 0;
}

void ck_session_close(ck_session *s) {
    if (!s) return;
    ck_seq_free(&s->seq);
    free(s->ids);
    free(s);
}

size_t ck_session_pos(const ck_session *s) { return s->seq.pos; }
size_t ck_session_max_ctx(const ck_session *s) { return s->seq.max_ctx; }

void ck_session_reset(ck_session *s) {
    ck_seq_reset(&s->seq);
    s->n_ids = 0;
}

int ck_session_truncate(ck_session *s, size_t pos, char *err, size_t errlen) {
    if (pos > s->seq.pos)
        return ck_err(err, errlen, "cannot truncate to position %zu: the session holds %zu", pos, s->seq.pos);
    ck_seq_truncate(&s->seq, pos);
    if (s->n_ids > s->seq.pos) s->n_ids = s->seq.pos;
    return 0;
}

ck_timing ck_session_timing(const ck_session *s) {
    ck_timing t = {s->seq.stats.embed_s, s->seq.stats.layers_s, s->seq.stats.head_s};
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

int ck_session_forward(ck_session *s, const int32_t *ids, size_t n, float *logits, int all, char *err,
                       size_t errlen) {
    const ck_range *r = &s->e->model.range;
    if (!r->embed || !r->head || r->first != 0 || r->last != s->e->model.cfg.n_layers - 1)
        return ck_err(err, errlen, "this engine holds part of the model; run it with ck_session_embed/layers/head");
    size_t pos0 = s->seq.pos;
    ck_fwd f = {.ids = ids, .n = n, .run_layers = 1, .logits = logits, .all = all};
    if (run(s, &f, err, errlen) != 0) return -1;
    remember_ids(s, pos0, ids, n);
    return 0;
}

int ck_session_embed(ck_session *s, const int32_t *ids, size_t n, float *hidden, char *err, size_t errlen) {
    ck_fwd f = {.ids = ids, .n = n, .hidden_out = hidden};
    return run(s, &f, err, errlen);
}

int ck_session_layers(ck_session *s, const float *hidden_in, size_t n, float *hidden_out, char *err,
                      size_t errlen) {
    ck_fwd f = {.hidden_in = hidden_in, .n = n, .run_layers = 1, .hidden_out = hidden_out};
    s->n_ids = 0; /* the ids behind these positions are not known here */
    return run(s, &f, err, errlen);
}

int ck_session_head(ck_session *s, const float *hidden, size_t n, float *logits, int all, char *err,
                    size_t errlen) {
    ck_fwd f = {.hidden_in = hidden, .n = n, .logits = logits, .all = all};
    return run(s, &f, err, errlen);
}
