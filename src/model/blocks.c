/* blocks.c — attention and gated-MLP sub-blocks (see blocks.h), written against the backend ops. */
#include "model/blocks.h"

#include <stdio.h>

int ck_attn_load(ck_model *m, const char *prefix, int bias, int qk_norm, ck_attn_w *w, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    uint64_t hid = (uint64_t)c->hidden_size, qd = (uint64_t)(c->n_heads * c->head_dim),
             kd = (uint64_t)(c->n_kv_heads * c->head_dim);
    char name[256];
    struct { const char *n; ck_tensor *t; uint64_t rows, cols; float **b; uint64_t blen; } p[] = {
        {"q_proj", &w->q, qd, hid, &w->q_bias, qd},
        {"k_proj", &w->k, kd, hid, &w->k_bias, kd},
        {"v_proj", &w->v, kd, hid, &w->v_bias, kd},
        {"o_proj", &w->o, hid, qd, NULL, 0},
    };
    for (size_t i = 0; i < 4; i++) {
        uint64_t dims[2] = {p[i].rows, p[i].cols};
        snprintf(name, sizeof name, "%s%s.weight", prefix, p[i].n);
        if (ck_model_tensor(m, name, 0, p[i].t, 2, dims, err, errlen) < 0) return -1;
        if (bias && p[i].b) {
            snprintf(name, sizeof name, "%s%s.bias", prefix, p[i].n);
            if (ck_model_vector(m, name, 0, p[i].blen, p[i].b, err, errlen) != 0) return -1;
        }
    }
    if (qk_norm) {
        snprintf(name, sizeof name, "%sq_norm.weight", prefix);
        if (ck_model_vector(m, name, 0, (size_t)c->head_dim, &w->q_norm, err, errlen) != 0) return -1;
        snprintf(name, sizeof name, "%sk_norm.weight", prefix);
        if (ck_model_vector(m, name, 0, (size_t)c->head_dim, &w->k_norm, err, errlen) != 0) return -1;
    }
    return 0;
}

void ck_attn_forward(const ck_model *m, ck_state *s, size_t layer, const ck_attn_w *w, size_t T) {
    ck_backend *be = m->be;
    const ck_config *c = &m->cfg;
    size_t nh = (size_t)c->n_heads, nkv = (size_t)c->n_kv_heads, hd = (size_t)c->head_dim;
    float eps = (float)c->rms_eps;
    be->matmul(be, s->q, s->xn, &w->q, w->q_bias, T);  /* q [T, nh, hd] */
    be->matmul(be, s->k, s->xn, &w->k, w->k_bias, T);  /* k [T, nkv, hd] */
    be->matmul(be, s->v, s->xn, &w->v, w->v_bias, T);  /* v [T, nkv, hd] */
    if (w->q_norm) be->rmsnorm(be, s->q, s->q, w->q_norm, T * nh, hd, eps, 0);
    if (w->k_norm) be->rmsnorm(be, s->k, s->k, w->k_norm, T * nkv, hd, eps, 0);
    be->rope(be, s->q, T, nh, hd, m->rot_dim, s->cos, s->sin);
    be->rope(be, s->k, T, nkv, hd, m->rot_dim, s->cos, s->sin);
    ck_layer_kv *kv = &s->kv[layer];
    be->store_rows(be, kv->k, s->k, s->pos, T, nkv * hd);
    be->store_rows(be, kv->v, s->v, s->pos, T, nkv * hd);
    ck_attn_args a = {
        .q = s->q, .k_cache = kv->k, .v_cache = kv->v, .out = s->att, .T = T, .pos0 = s->pos,
        .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = m->attn_scale, .window = w->window,
    };
    be->attention(be, &a);                               /* att [T, nh, hd] */
    be->matmul(be, s->xn, s->att, &w->o, NULL, T);      /* xn [T, hidden] */
}

int ck_mlp_load(ck_model *m, const char *prefix, ck_mlp_w *w, char *err, size_t errlen) {
    uint64_t hid = (uint64_t)m->cfg.hidden_size, ffn = (uint64_t)m->cfg.intermediate_size;
    uint64_t gd[2] = {ffn, hid}, dd[2] = {hid, ffn};
    char name[256];
    snprintf(name, sizeof name, "%sgate_proj.weight", prefix);
    if (ck_model_tensor(m, name, 0, &w->gate, 2, gd, err, errlen) < 0) return -1;
    snprintf(name, sizeof name, "%sup_proj.weight", prefix);
    if (ck_model_tensor(m, name, 0, &w->up, 2, gd, err, errlen) < 0) return -1;
    snprintf(name, sizeof name, "%sdown_proj.weight", prefix);
    if (ck_model_tensor(m, name, 0, &w->down, 2, dd, err, errlen) < 0) return -1;
    return 0;
}

void ck_mlp_forward(const ck_model *m, ck_state *s, const ck_mlp_w *w, size_t T) {
    ck_backend *be = m->be;
    size_t ffn = (size_t)m->cfg.intermediate_size;
    be->matmul(be, s->gate, s->xn, &w->gate, NULL, T); /* gate [T, ffn] */
    be->matmul(be, s->up, s->xn, &w->up, NULL, T);     /* up [T, ffn] */
    be->swiglu(be, s->gate, s->gate, s->up, T * ffn);
    be->matmul(be, s->xn, s->gate, &w->down, NULL, T); /* xn [T, hidden] */
}
