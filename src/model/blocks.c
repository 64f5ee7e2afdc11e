/* blocks.c — attention and gated-MLP sub-blocks (see blocks.h), written against the backend ops. */
#include "model/blocks.h"
#include "base/err.h"

#include "base/err.h"

#include <stdio.h>

ck_tensor ck_tensor_rows(const ck_tensor *t, uint64_t r0, uint64_t n) {
    ck_tensor v = *t;
    v.shape[0] = n;
    v.data = (const uint8_t *)t->data + r0 * t->shape[1] * ck_dtype_size(t->dtype);
    return v;
}

static int load_bias_norms(ck_model *m, const char *prefix, unsigned flags, ck_attn_w *w, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    size_t hd = (size_t)c->head_dim, qd = (size_t)c->n_heads * hd, kd = (size_t)c->n_kv_heads * hd;
    char name[256];
    if (flags & CK_ATTN_BIAS) {
        size_t qb = w->out_gate ? 2 * qd : qd;
        const char *n[3] = {"q_proj", "k_proj", "v_proj"};
        float **b[3] = {&w->q_bias, &w->k_bias, &w->v_bias};
        size_t len[3] = {qb, kd, kd};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s%s.bias", prefix, n[i]);
            if (ck_model_vector(m, name, 0, len[i], b[i], err, errlen) != 0) return -1;
        }
    }
    if (flags & (CK_ATTN_QK_NORM | CK_ATTN_QK_NORM_WHOLE)) {
        w->norm_whole = (flags & CK_ATTN_QK_NORM_WHOLE) != 0;
        snprintf(name, sizeof name, "%sq_norm.weight", prefix);
        if (ck_model_vector(m, name, 0, w->norm_whole ? qd : hd, &w->q_norm, err, errlen) != 0) return -1;
        snprintf(name, sizeof name, "%sk_norm.weight", prefix);
        if (ck_model_vector(m, name, 0, w->norm_whole ? kd : hd, &w->k_norm, err, errlen) != 0) return -1;
    }
    return 0;
}

int ck_attn_load(ck_model *m, const char *prefix, unsigned flags, ck_attn_w *w, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    uint64_t hid = (uint64_t)c->hidden_size, qd = (uint64_t)(c->n_heads * c->head_dim),
             kd = (uint64_t)(c->n_kv_heads * c->head_dim);
    char name[256];
    w->rope = 0;
    w->out_gate = (flags & CK_ATTN_OUT_GATE) != 0;
    if (w->out_gate && (flags & CK_ATTN_FUSED_QKV))
        return ck_err(err, errlen, "internal: an output gate with a fused qkv_proj is not supported");
    if (w->out_gate && !m->attn_out_gate) return ck_err(err, errlen, "internal: m->attn_out_gate is not set");
    if (flags & CK_ATTN_FUSED_QKV) {
        ck_tensor qkv;
        uint64_t dims[2] = {qd + 2 * kd, hid};
        snprintf(name, sizeof name, "%sqkv_proj.weight", prefix);
        if (ck_model_tensor(m, name, 0, &qkv, 2, dims, err, errlen) < 0) return -1;
        w->q = ck_tensor_rows(&qkv, 0, qd);
        w->k = ck_tensor_rows(&qkv, qd, kd);
        w->v = ck_tensor_rows(&qkv, qd + kd, kd);
    } else {
        struct { const char *n; ck_tensor *t; uint64_t rows; } p[] = {
            {"q_proj", &w->q, w->out_gate ? 2 * qd : qd}, {"k_proj", &w->k, kd}, {"v_proj", &w->v, kd}};
        for (size_t i = 0; i < 3; i++) {
            uint64_t dims[2] = {p[i].rows, hid};
            snprintf(name, sizeof name, "%s%s.weight", prefix, p[i].n);
            if (ck_model_tensor(m, name, 0, p[i].t, 2, dims, err, errlen) < 0) return -1;
        }
    }
    uint64_t od[2] = {hid, qd};
    snprintf(name, sizeof name, "%so_proj.weight", prefix);
    if (ck_model_tensor(m, name, 0, &w->o, 2, od, err, errlen) < 0) return -1;
    return load_bias_norms(m, prefix, flags, w, err, errlen);
}

void ck_attn_free(ck_model *m, ck_attn_w *w) {
    float *v[] = {w->q_bias, w->k_bias, w->v_bias, w->q_norm, w->k_norm};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i]) m->be->free(m->be, v[i]);
}

void ck_attn_forward(const ck_model *m, ck_state *s, size_t layer, const ck_attn_w *w, size_t T) {
    ck_backend *be = m->be;
    const ck_config *c = &m->cfg;
    size_t nh = (size_t)c->n_heads, nkv = (size_t)c->n_kv_heads, hd = (size_t)c->head_dim;
    float eps = (float)c->rms_eps;
    if (w->out_gate) {
        be->matmul(be, s->qg, s->xn, &w->q, w->q_bias, T);     /* qg [T, nh, 2 hd]: q | gate per head */
        be->copy_rows(be, s->q, hd, s->qg, 2 * hd, T * nh, hd); /* q [T, nh, hd] */
    } else {
        be->matmul(be, s->q, s->xn, &w->q, w->q_bias, T);      /* q [T, nh, hd] */
    }
    be->matmul(be, s->k, s->xn, &w->k, w->k_bias, T);  /* k [T, nkv, hd] */
    be->matmul(be, s->v, s->xn, &w->v, w->v_bias, T);  /* v [T, nkv, hd] */
    if (w->q_norm) {
        if (w->norm_whole) {
            be->rmsnorm(be, s->q, s->q, w->q_norm, T, nh * hd, eps, w->norm_one_plus);
            be->rmsnorm(be, s->k, s->k, w->k_norm, T, nkv * hd, eps, w->norm_one_plus);
        } else {
            be->rmsnorm(be, s->q, s->q, w->q_norm, T * nh, hd, eps, w->norm_one_plus);
            be->rmsnorm(be, s->k, s->k, w->k_norm, T * nkv, hd, eps, w->norm_one_plus);
        }
    }
    if (w->rope >= 0) {
        size_t rot = m->rope[w->rope].rot_dim;
        be->rope(be, s->q, T, nh, hd, rot, s->cos[w->rope], s->sin[w->rope]);
        be->rope(be, s->k, T, nkv, hd, rot, s->cos[w->rope], s->sin[w->rope]);
    }
    ck_layer_kv *kv = &s->kv[layer];
    be->store_rows(be, kv->k, s->k, s->pos, T, nkv * hd);
    be->store_rows(be, kv->v, s->v, s->pos, T, nkv * hd);
    ck_attn_args a = {
        .q = s->q, .k_cache = kv->k, .v_cache = kv->v, .out = s->att, .T = T, .pos0 = s->pos,
        .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = m->attn_scale, .window = w->window,
    };
    be->attention(be, &a);                               /* att [T, nh, hd] */
    if (w->out_gate) be->sigmoid_mul(be, s->att, s->qg + hd, 2 * hd, T * nh, hd);
    be->matmul(be, s->xn, s->att, &w->o, NULL, T);      /* xn [T, hidden] */
}

int ck_mlp_load(ck_model *m, const char *prefix, int fused, ck_act act, size_t ffn_size, ck_mlp_w *w, char *err,
                size_t errlen) {
    uint64_t hid = (uint64_t)m->cfg.hidden_size, ffn = (uint64_t)ffn_size;
    if (ffn_size == 0 || ffn_size > m->max_ffn) return ck_err(err, errlen, "internal: MLP size %zu out of range", ffn_size);
    w->ffn = ffn_size;
    uint64_t gd[2] = {ffn, hid}, gud[2] = {2 * ffn, hid}, dd[2] = {hid, ffn};
    char name[256];
    w->act = act;
    if (fused) {
        ck_tensor gu;
        snprintf(name, sizeof name, "%sgate_up_proj.weight", prefix);
        if (ck_model_tensor(m, name, 0, &gu, 2, gud, err, errlen) < 0) return -1;
        w->gate = ck_tensor_rows(&gu, 0, ffn);
        w->up = ck_tensor_rows(&gu, ffn, ffn);
    } else {
        snprintf(name, sizeof name, "%sgate_proj.weight", prefix);
        if (ck_model_tensor(m, name, 0, &w->gate, 2, gd, err, errlen) < 0) return -1;
        snprintf(name, sizeof name, "%sup_proj.weight", prefix);
        if (ck_model_tensor(m, name, 0, &w->up, 2, gd, err, errlen) < 0) return -1;
    }
    snprintf(name, sizeof name, "%sdown_proj.weight", prefix);
    if (ck_model_tensor(m, name, 0, &w->down, 2, dd, err, errlen) < 0) return -1;
    return 0;
}

void ck_mlp_forward(const ck_model *m, ck_state *s, const ck_mlp_w *w, const float *in, float *out, size_t T) {
    ck_backend *be = m->be;
    be->matmul(be, s->gate, in, &w->gate, NULL, T); /* gate [T, ffn] */
    be->matmul(be, s->up, in, &w->up, NULL, T);     /* up [T, ffn] */
    be->glu(be, s->gate, s->gate, s->up, T * w->ffn, w->act);
    be->matmul(be, out, s->gate, &w->down, NULL, T); /* out [T, hidden] */
}
