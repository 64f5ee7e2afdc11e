/* moe.c — sparse mixture-of-experts MLP (see moe.h). */
#include "model/moe.h"
#include "base/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ck_moe_sizes(const ck_config *c, size_t *n_experts, size_t *top_k, size_t *ffn, size_t *shared_ffn, char *err,
                 size_t errlen) {
    int64_t e = ck_cfg_int(c, "num_experts", ck_cfg_int(c, "num_local_experts", 0));
    int64_t k = ck_cfg_int(c, "num_experts_per_tok", 0), f = ck_cfg_int(c, "moe_intermediate_size", 0);
    int64_t sf = ck_cfg_int(c, "shared_expert_intermediate_size", 0);
    *n_experts = *top_k = *ffn = *shared_ffn = 0;
    if (e == 0) return 0;
    if (e < 0 || e > 4096 || k <= 0 || k > e || f <= 0 || f > (1 << 20) || sf < 0 || sf > (1 << 20))
        return ck_err(err, errlen, "config.json: num_experts / num_experts_per_tok / moe_intermediate_size out of range");
    *n_experts = (size_t)e;
    *top_k = (size_t)k;
    *ffn = (size_t)f;
    *shared_ffn = (size_t)sf;
    return 0;
}

int ck_moe_config(ck_model *m, size_t *n_experts, size_t *top_k, size_t *ffn, size_t *shared_ffn, char *err,
                  size_t errlen) {
    if (ck_moe_sizes(&m->cfg, n_experts, top_k, ffn, shared_ffn, err, errlen) != 0) return -1;
    if (*ffn > m->max_ffn) m->max_ffn = *ffn;
    if (*shared_ffn > m->max_ffn) m->max_ffn = *shared_ffn;
    return 0;
}

int ck_moe_load(ck_model *m, const char *prefix, int norm_topk, ck_moe_w *w, char *err, size_t errlen) {
    size_t E, K, F, SF;
    if (ck_moe_config(m, &E, &K, &F, &SF, err, errlen) != 0) return -1;
    if (E == 0) return ck_err(err, errlen, "config.json: no experts configured");
    uint64_t hid = (uint64_t)m->cfg.hidden_size, rd[2] = {E, hid}, gd[2] = {1, hid};
    char name[256];
    memset(w, 0, sizeof *w);
    w->n_experts = E;
    w->top_k = K;
    w->norm_topk = norm_topk;
    snprintf(name, sizeof name, "%sgate.weight", prefix);
    if (ck_model_tensor(m, name, 0, &w->router, 2, rd, err, errlen) < 0) return -1;
    w->experts = calloc(E, sizeof *w->experts);
    if (!w->experts) return ck_err(err, errlen, "out of memory");
    for (size_t e = 0; e < E; e++) {
        snprintf(name, sizeof name, "%sexperts.%zu.", prefix, e);
        if (ck_mlp_load(m, name, 0, CK_ACT_SILU, F, &w->experts[e], err, errlen) != 0) return -1;
    }
    if (SF > 0) {
        w->has_shared = 1;
        snprintf(name, sizeof name, "%sshared_expert.", prefix);
        if (ck_mlp_load(m, name, 0, CK_ACT_SILU, SF, &w->shared, err, errlen) != 0) return -1;
        snprintf(name, sizeof name, "%sshared_expert_gate.weight", prefix);
        if (ck_model_tensor(m, name, 0, &w->shared_gate, 2, gd, err, errlen) < 0) return -1;
    }
    return 0;
}

void ck_moe_free(ck_moe_w *w) {
    free(w->experts);
    w->experts = NULL;
}

int ck_moe_scratch_init(const ck_model *m, ck_moe_scratch *sc, char *err, size_t errlen) {
    size_t E, K, F, SF;
    memset(sc, 0, sizeof *sc);
    if (ck_moe_sizes(&m->cfg, &E, &K, &F, &SF, err, errlen) != 0) return -1;
    if (E == 0) return 0;
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size;
    sc->n_experts = E;
    sc->top_k = K;
    sc->logits = be->alloc(be, m->chunk * (E + 1) * sizeof(float));
    sc->in = be->alloc(be, m->chunk * d * sizeof(float));
    sc->out = be->alloc(be, m->chunk * d * sizeof(float));
    sc->acc = be->alloc(be, m->chunk * d * sizeof(float));
    sc->host_logits = malloc(m->chunk * (E + 1) * sizeof(float));
    sc->rows = malloc(m->chunk * K * sizeof(int32_t));
    sc->w = malloc(m->chunk * K * sizeof(float));
    sc->choice = malloc(m->chunk * K * sizeof(int32_t));
    sc->choice_w = malloc(m->chunk * K * sizeof(float));
    sc->dev_choice = be->alloc(be, m->chunk * K * sizeof(int32_t));
    sc->dev_choice_w = be->alloc(be, m->chunk * K * sizeof(float));
    if (!sc->logits || !sc->in || !sc->out || !sc->acc || !sc->host_logits || !sc->rows || !sc->w || !sc->choice ||
        !sc->choice_w || !sc->dev_choice || !sc->dev_choice_w) {
        ck_moe_scratch_free(m, sc);
        return ck_err(err, errlen, "out of memory");
    }
    return 0;
}

void ck_moe_scratch_free(const ck_model *m, ck_moe_scratch *sc) {
    ck_backend *be = m->be;
    void *dev[] = {sc->logits, sc->in, sc->out, sc->acc, sc->dev_choice, sc->dev_choice_w};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i]) be->free(be, dev[i]);
    free(sc->host_logits);
    free(sc->rows);
    free(sc->w);
    free(sc->choice);
    free(sc->choice_w);
    memset(sc, 0, sizeof *sc);
}

void ck_moe_forward(const ck_model *m, ck_ws *ws, const ck_moe_w *w, ck_moe_scratch *sc, size_t T) {
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size, E = w->n_experts, K = w->top_k;
    be->matmul(be, sc->logits, ws->xn, &w->router, NULL, T); /* logits [T, E] */
    be->moe_route(be, sc->dev_choice, sc->dev_choice_w, sc->logits, T, E, K, w->norm_topk);
    be->download(be, sc->choice, sc->dev_choice, T * K * sizeof(int32_t));
    be->download(be, sc->choice_w, sc->dev_choice_w, T * K * sizeof(float));
    be->zero(be, sc->acc, T * d);
    for (size_t e = 0; e < E; e++) {
        size_t n = 0;
        for (size_t i = 0; i < T * K; i++)
            if (sc->choice[i] == (int32_t)e) {
                sc->rows[n] = (int32_t)(i / K);
                sc->w[n++] = sc->choice_w[i];
            }
        if (n == 0) continue;
        be->gather_rows(be, sc->in, ws->xn, sc->rows, n, d);        /* in [n, hidden] */
        ck_mlp_forward(m, ws, &w->experts[e], sc->in, sc->out, n);  /* out [n, hidden] */
        be->scatter_add_rows(be, sc->acc, sc->out, sc->rows, sc->w, n, d);
    }
    if (w->has_shared) { /* acc += sigmoid(shared_gate . x) * shared(x) */
        be->matmul(be, sc->logits, ws->xn, &w->shared_gate, NULL, T); /* [T, 1] */
        be->download(be, sc->host_logits, sc->logits, T * sizeof(float));
        for (size_t t = 0; t < T; t++) {
            sc->rows[t] = (int32_t)t;
            sc->w[t] = 1.0f / (1.0f + expf(-sc->host_logits[t]));
        }
        ck_mlp_forward(m, ws, &w->shared, ws->xn, sc->out, T);
        be->scatter_add_rows(be, sc->acc, sc->out, sc->rows, sc->w, T, d);
    }
    be->copy(be, ws->xn, sc->acc, T * d * sizeof(float));
}
