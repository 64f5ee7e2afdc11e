/* engine.c — the public engine/session API of include/cake.h over the model, tokenizer and CPU backend. */
#include "cake.h"

#include "base/err.h"
#include "base/file.h"
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>

struct ck_engine {
    ck_model model;
    ck_tok *tok;
};

struct ck_session {
    ck_engine *e;
    ck_state state;
};

const char *ck_supported_archs(void) { return ck_model_supported(); }

void ck_set_threads(int n) { ck_backend_cpu_set_threads(n); }

int ck_engine_open(const char *dir, ck_engine **out, char *err, size_t errlen) {
    *out = NULL;
    if (!ck_is_dir(dir)) return ck_err(err, errlen, "model directory %s not found", dir);
    ck_engine *e = calloc(1, sizeof *e);
    if (!e) return ck_err(err, errlen, "out of memory");
    if (ck_model_load(dir, ck_backend_cpu(), &e->model, err, errlen) != 0) {
        free(e);
        return -1;
    }
    char path[4096];
    if (ck_path_join(path, sizeof path, dir, "tokenizer.json", err, errlen) != 0) {
        ck_engine_close(e);
        return -1;
    }
    if (ck_is_file(path) && ck_tok_load(dir, &e->tok, err, errlen) != 0) {
        ck_engine_close(e);
        return -1;
    }
    *out = e;
    return 0;
}

void ck_engine_close(ck_engine *e) {
    if (!e) return;
    if (e->tok) ck_tok_free(e->tok);
    ck_model_free(&e->model);
    free(e);
}

const char *ck_engine_arch(const ck_engine *e) { return e->model.cfg.arch; }
size_t ck_engine_vocab(const ck_engine *e) { return (size_t)e->model.cfg.vocab_size; }
size_t ck_engine_n_layers(const ck_engine *e) { return (size_t)e->model.cfg.n_layers; }
size_t ck_engine_hidden(const ck_engine *e) { return (size_t)e->model.cfg.hidden_size; }
size_t ck_engine_max_ctx(const ck_engine *e) { return (size_t)e->model.cfg.max_pos; }
const ck_tok *ck_engine_tok(const ck_engine *e) { return e->tok; }

int ck_engine_is_eos(const ck_engine *e, int32_t id) {
    const ck_config *c = &e->model.cfg;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return c->n_eos == 0 && e->tok && ck_tok_eos_id(e->tok) == id;
}

int ck_session_open(ck_engine *e, size_t max_ctx, ck_session **out, char *err, size_t errlen) {
    *out = NULL;
    ck_session *s = calloc(1, sizeof *s);
    if (!s) return ck_err(err, errlen, "out of memory");
    s->e = e;
    if (ck_state_init(&s->state, &e->model, max_ctx, err, errlen) != 0) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void ck_session_close(ck_session *s) {
    if (!s) return;
    ck_state_free(&s->state);
    free(s);
}

int ck_session_forward(ck_session *s, const int32_t *ids, size_t n, float *logits, int all, char *err,
                       size_t errlen) {
    return ck_state_forward(&s->state, ids, n, logits, all, err, errlen);
}

size_t ck_session_pos(const ck_session *s) { return s->state.pos; }
void ck_session_reset(ck_session *s) { ck_state_reset(&s->state); }

ck_timing ck_session_timing(const ck_session *s) {
    ck_timing t = {s->state.stats.embed_s, s->state.stats.layers_s, s->state.stats.head_s};
    return t;
}

void ck_session_capture(ck_session *s, float *buf, size_t rows) {
    s->state.capture = buf;
    s->state.capture_rows = rows;
}
