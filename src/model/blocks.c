/* blocks.c — attention and gated-MLP sub-blocks (see blocks.h), written against the backend ops. */
#include "model/blocks.h"
#include "base/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

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
    if (flags & CK_ATTN_BIAS_O) {
        snprintf(name, sizeof name, "%so_proj.bias", prefix);
        if (ck_model_vector(m, name, 0, (size_t)c->hidden_size, &w->o_bias, err, errlen) != 0) return -1;
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
        if (ck_model_tensor(m, name, 0, &qkv, 2, dims, err, errlen) < 0 ||
            ck_model_rows(m, &w->q, &qkv, 0, qd, err, errlen) != 0 ||
            ck_model_rows(m, &w->k, &qkv, qd, kd, err, errlen) != 0 ||
            ck_model_rows(m, &w->v, &qkv, qd + kd, kd, err, errlen) != 0)
            return -1;
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

void ck_attn_forward(const ck_model *m, const ck_rows *r, ck_ws *w, size_t layer, const ck_attn_w *a) {
    ck_backend *be = m->be;
    size_t T = r->T;
    const ck_config *c = &m->cfg;
    size_t nh = (size_t)c->n_heads, nkv = (size_t)c->n_kv_heads, hd = (size_t)c->head_dim;
    float eps = (float)c->rms_eps;
    /* q [T, nh, hd] (with an output gate: qg [T, nh, 2 hd], q | gate per head), k, v [T, nkv, hd] */
    float *qkv_out[3] = {a->out_gate ? w->qg : w->q, w->k, w->v};
    const ck_tensor *qkv_w[3] = {&a->q, &a->k, &a->v};
    const float *qkv_b[3] = {a->q_bias, a->k_bias, a->v_bias};
    ck_matmul_n(be, 3, qkv_out, w->xn, qkv_w, qkv_b, T);
    if (a->out_gate) be->copy_rows(be, w->q, hd, w->qg, 2 * hd, T * nh, hd); /* q [T, nh, hd] */
    if (a->q_norm) {
        if (a->norm_whole) {
            be->rmsnorm(be, w->q, w->q, a->q_norm, T, nh * hd, eps, a->norm_one_plus);
            be->rmsnorm(be, w->k, w->k, a->k_norm, T, nkv * hd, eps, a->norm_one_plus);
        } else {
            be->rmsnorm(be, w->q, w->q, a->q_norm, T * nh, hd, eps, a->norm_one_plus);
            be->rmsnorm(be, w->k, w->k, a->k_norm, T * nkv, hd, eps, a->norm_one_plus);
        }
    }
    if (a->rope >= 0) {
        size_t rot = m->rope[a->rope].rot_dim;
        be->rope(be, w->q, T, nh, hd, rot, w->pos, m->rope_freq[a->rope]);
        be->rope(be, w->k, T, nkv, hd, rot, w->pos, m->rope_freq[a->rope]);
    }
    size_t qd = nh * hd, kd = nkv * hd;
    for (size_t i = 0; i < r->n_spans; i++) {
        const ck_span *sp = &r->spans[i];
        ck_layer_kv *kv = &sp->s->kv[layer];
        const int32_t *pos = w->pos + sp->row0;
        be->store_rows(be, kv->k, m->kv_dtype, w->k + sp->row0 * kd, pos, sp->n, kd);
        be->store_rows(be, kv->v, m->kv_dtype, w->v + sp->row0 * kd, pos, sp->n, kd);
        ck_attn_args args = {
            .q = w->q + sp->row0 * qd, .k_cache = kv->k, .v_cache = kv->v, .kv_dtype = m->kv_dtype,
            .out = w->att + sp->row0 * qd,
            .pos = pos, .T = sp->n, .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = m->attn_scale,
            .window = a->window, .keys_max = sp->pos0 + sp->n,
        };
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        be->attention(be, &args);                        /* att [T, nh, hd] */
        clock_gettime(CLOCK_MONOTONIC, &t1);
        sp->s->stats.attn_s += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    if (a->out_gate) be->sigmoid_mul(be, w->att, w->qg + hd, 2 * hd, T * nh, hd);
    be->matmul(be, w->xn, w->att, &a->o, a->o_bias, T); /* xn [T, hidden] */
}

int ck_mlp_load(ck_model *m, const char *prefix, int fused, ck_act act, size_t ffn_size, ck_mlp_w *w, char *err,
                size_t errlen) {
    uint64_t hid = (uint64_t)m->cfg.hidden_size, ffn = (uint64_t)ffn_size;
    /* expert sizes are checked with the experts (moe.c): only a dense MLP can lack its size */
    if (ffn_size == 0)
        return ck_err(err, errlen, "config.json: intermediate_size missing (needed for the MLP %.*s)",
                      (int)strlen(prefix) - 1, prefix);
    if (ffn_size > m->max_ffn) return ck_err(err, errlen, "internal: MLP size %zu out of range", ffn_size);
    w->ffn = ffn_size;
    uint64_t gd[2] = {ffn, hid}, gud[2] = {2 * ffn, hid}, dd[2] = {hid, ffn};
    char name[256];
    w->act = act;
    if (fused) {
        ck_tensor gu;
        snprintf(name, sizeof name, "%sgate_up_proj.weight", prefix);
        if (ck_model_tensor(m, name, 0, &gu, 2, gud, err, errlen) < 0 ||
            ck_model_rows(m, &w->gate, &gu, 0, ffn, err, errlen) != 0 ||
            ck_model_rows(m, &w->up, &gu, ffn, ffn, err, errlen) != 0)
            return -1;
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

void ck_mlp_forward(const ck_model *m, ck_ws *w, const ck_mlp_w *mw, const float *in, float *out, size_t T) {
    ck_backend *be = m->be;
    float *gu_out[2] = {w->gate, w->up};              /* gate, up [T, ffn] */
    const ck_tensor *gu_w[2] = {&mw->gate, &mw->up};
    ck_matmul_n(be, 2, gu_out, in, gu_w, NULL, T);
    be->glu(be, w->gate, w->gate, w->up, T * mw->ffn, mw->act);
    be->matmul(be, out, w->gate, &mw->down, NULL, T); /* out [T, hidden] */
}
