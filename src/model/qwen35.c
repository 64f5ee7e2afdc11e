/* qwen35.c — the Qwen3.5 hybrid family (Qwen3_5ForConditionalGeneration's language model, and the
 * text-only Qwen3_5ForCausalLM): `layer_types` picks each layer's token mixer, a Gated DeltaNet
 * ("linear_attention", deltanet.c) or gated full attention ("full_attention": q_proj carries a sigmoid
 * output gate per head, per-head (1+w) QK norms, partial rotary). Every norm outside the DeltaNet is a
 * (1+w) RMSNorm. Qwen3.5-MoE replaces the MLP with routed experts plus a sigmoid-gated shared expert
 * (moe.c). The vision tower's tensors are ignored; M-RoPE reduces to plain RoPE on the rotated
 * dims because text positions are equal in all three sections.
 * Block: x += mixer(input_layernorm(x));  x += mlp(post_attention_layernorm(x))
 * Sequence state: KV caches for the full-attention layers only (m->no_kv marks the others), and per
 * DeltaNet layer of the range a ck_deltanet_state in s->fam (conv window, recurrent state), cleared on
 * reset. Workspace: one DeltaNet scratch and the MoE scratch, in w->fam. */
#include "base/err.h"
#include "model/blocks.h"
#include "model/deltanet.h"
#include "model/family.h"
#include "model/moe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct q35_layer {
    int linear;            /* 1: Gated DeltaNet, 0: full attention */
    float *in_norm, *post_norm; /* [hidden] each, (1+w) */
    ck_deltanet_w dn;
    ck_attn_w attn;
    ck_mlp_w mlp;
    ck_moe_w moe;          /* used instead of mlp when moe.n_experts > 0 */
} q35_layer;

typedef struct q35_model {
    q35_layer *layers;     /* [n_layers] */
} q35_model;

typedef struct q35_state {
    ck_deltanet_state *dn; /* [n_layers]; allocated for the range's linear layers only */
} q35_state;

typedef struct q35_scratch {
    ck_deltanet_scratch dn; /* shared by the DeltaNet layers (all have the same sizes) */
    ck_moe_scratch moe;     /* router/expert scratch (MoE checkpoints) */
} q35_scratch;

/* The tensor-name prefix of the language model for the checkpoint's architecture. */
static const char *text_prefix(const ck_config *c) {
    return strstr(c->arch, "ForCausalLM") ? "model." : "model.language_model.";
}

/* 1 for a DeltaNet layer, 0 for full attention, -1 for an unknown layer type. Without `layer_types`,
 * every full_attention_interval-th layer (default 4) is full attention. */
static int layer_linear(const ck_config *c, int64_t i) {
    const cJSON *lt = ck_cfg_get(c, "layer_types");
    if (!lt || cJSON_IsNull(lt)) {
        int64_t every = ck_cfg_int(c, "full_attention_interval", 4);
        return every > 0 && (i + 1) % every == 0 ? 0 : 1;
    }
    const cJSON *t = cJSON_IsArray(lt) ? cJSON_GetArrayItem(lt, (int)i) : NULL;
    if (!cJSON_IsString(t)) return -1;
    if (!strcmp(t->valuestring, "linear_attention")) return 1;
    if (!strcmp(t->valuestring, "full_attention")) return 0;
    return -1;
}

static int q35_load(ck_model *m, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    const char *pre = text_prefix(c);
    const char *act = ck_cfg_str(c, "hidden_act", "silu");
    if (strcmp(act, "silu")) return ck_err(err, errlen, "config.json: activation '%s' is not supported", act);
    if (ck_cfg_bool(c, "attn_output_gate", 1) == 0)
        return ck_err(err, errlen, "config.json: attn_output_gate=false is not supported");
    m->attn_out_gate = 1;
    size_t n_experts, top_k, moe_ffn, shared_ffn;
    if (ck_moe_config(m, &n_experts, &top_k, &moe_ffn, &shared_ffn, err, errlen) != 0) return -1;
    m->final_norm_one_plus = 1;
    if (ck_model_load_head(m, pre, err, errlen) != 0) return -1;
    q35_model *qm = calloc(1, sizeof *qm);
    if (!qm) return ck_err(err, errlen, "out of memory");
    m->layers = qm;
    size_t L = (size_t)c->n_layers;
    qm->layers = calloc(L, sizeof *qm->layers);
    m->no_kv = calloc(L, 1);
    if (!qm->layers || !m->no_kv) return ck_err(err, errlen, "out of memory");
    unsigned flags = CK_ATTN_QK_NORM | CK_ATTN_OUT_GATE | (c->attention_bias ? CK_ATTN_BIAS_ALL : 0);
    char p[160], name[224];
    for (size_t i = (size_t)m->range.first; (int64_t)i <= m->range.last; i++) {
        q35_layer *ly = &qm->layers[i];
        int lin = layer_linear(c, (int64_t)i);
        if (lin < 0) return ck_err(err, errlen, "config.json: layer_types[%zu] missing or not supported", i);
        ly->linear = lin;
        m->no_kv[i] = (unsigned char)lin;
        m->recurrent |= lin;
        snprintf(name, sizeof name, "%slayers.%zu.input_layernorm.weight", pre, i);
        if (ck_model_vector(m, name, 0, (size_t)c->hidden_size, &ly->in_norm, err, errlen) != 0) return -1;
        snprintf(name, sizeof name, "%slayers.%zu.post_attention_layernorm.weight", pre, i);
        if (ck_model_vector(m, name, 0, (size_t)c->hidden_size, &ly->post_norm, err, errlen) != 0) return -1;
        if (lin) {
            snprintf(p, sizeof p, "%slayers.%zu.linear_attn.", pre, i);
            if (ck_deltanet_config(c, &ly->dn, err, errlen) != 0) return -1;
            if (ck_deltanet_load(m, p, &ly->dn, err, errlen) != 0) return -1;
        } else {
            snprintf(p, sizeof p, "%slayers.%zu.self_attn.", pre, i);
            if (ck_attn_load(m, p, flags, &ly->attn, err, errlen) != 0) return -1;
            ly->attn.norm_one_plus = 1;
        }
        snprintf(p, sizeof p, "%slayers.%zu.mlp.", pre, i);
        if (n_experts) {
            if (ck_moe_load(m, p, ck_cfg_bool(c, "norm_topk_prob", 1), &ly->moe, err, errlen) != 0) return -1;
        } else if (ck_mlp_load(m, p, 0, CK_ACT_SILU, (size_t)c->intermediate_size, &ly->mlp, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

static void q35_unload(ck_model *m) {
    q35_model *qm = m->layers;
    if (!qm) return;
    for (int64_t i = 0; qm->layers && i < m->cfg.n_layers; i++) ck_moe_free(&qm->layers[i].moe);
    free(qm->layers);
    free(qm);
    m->layers = NULL;
}

static void q35_seq_free(const ck_model *m, ck_seq *s) {
    q35_state *qs = s->fam;
    if (!qs) return;
    for (int64_t i = 0; qs->dn && i < m->cfg.n_layers; i++) ck_deltanet_state_free(m->be, &qs->dn[i]);
    free(qs->dn);
    free(qs);
    s->fam = NULL;
}

static int q35_seq_init(const ck_model *m, ck_seq *s, char *err, size_t errlen) {
    const q35_model *qm = m->layers;
    q35_state *qs = calloc(1, sizeof *qs);
    if (!qs) return ck_err(err, errlen, "out of memory");
    s->fam = qs;
    qs->dn = calloc((size_t)m->cfg.n_layers, sizeof *qs->dn);
    if (!qs->dn) return ck_err(err, errlen, "out of memory");
    for (int64_t i = m->range.first; i <= m->range.last; i++)
        if (qm->layers[i].linear && ck_deltanet_state_init(m->be, &qm->layers[i].dn, &qs->dn[i], err, errlen) != 0)
            return -1; /* ck_seq_init frees what was allocated */
    return 0;
}

static void q35_seq_reset(const ck_model *m, ck_seq *s) {
    const q35_model *qm = m->layers;
    q35_state *qs = s->fam;
    for (int64_t i = m->range.first; i <= m->range.last; i++)
        if (qm->layers[i].linear) ck_deltanet_state_reset(m->be, &qm->layers[i].dn, &qs->dn[i]);
}

static int q35_ws_init(const ck_model *m, ck_ws *w, char *err, size_t errlen) {
    const q35_model *qm = m->layers;
    q35_scratch *sc = calloc(1, sizeof *sc);
    if (!sc) return ck_err(err, errlen, "out of memory");
    w->fam = sc;
    for (int64_t i = m->range.first; i <= m->range.last; i++)
        if (qm->layers[i].linear) {
            if (ck_deltanet_scratch_init(m->be, &qm->layers[i].dn, m->chunk, &sc->dn, err, errlen) != 0) return -1;
            break;
        }
    return ck_moe_scratch_init(m, &sc->moe, err, errlen); /* ck_ws_init frees what was allocated */
}

static void q35_ws_free(const ck_model *m, ck_ws *w) {
    q35_scratch *sc = w->fam;
    if (!sc) return;
    ck_deltanet_scratch_free(m->be, &sc->dn);
    ck_moe_scratch_free(m, &sc->moe);
    free(sc);
    w->fam = NULL;
}

static void q35_layer_fwd(const ck_model *m, const ck_rows *r, ck_ws *w, size_t layer) {
    ck_backend *be = m->be;
    size_t T = r->T;
    const q35_layer *ly = &((const q35_model *)m->layers)->layers[layer];
    q35_scratch *sc = w->fam;
    size_t d = (size_t)m->cfg.hidden_size;
    float eps = (float)m->cfg.rms_eps;
    be->rmsnorm(be, w->xn, w->x, ly->in_norm, T, d, eps, 1);
    if (ly->linear) {
        ck_deltanet_state *st[CK_CHUNK];
        for (size_t i = 0; i < r->n_spans; i++) st[i] = &((q35_state *)r->spans[i].s->fam)->dn[layer];
        ck_deltanet_forward(be, &ly->dn, r, st, &sc->dn, w->xn, w->xn);
    } else {
        ck_attn_forward(m, r, w, layer, &ly->attn);
    }
    be->add(be, w->x, w->xn, T * d);
    be->rmsnorm(be, w->xn, w->x, ly->post_norm, T, d, eps, 1);
    if (ly->moe.n_experts) ck_moe_forward(m, w, &ly->moe, &sc->moe, T);
    else ck_mlp_forward(m, w, &ly->mlp, w->xn, w->xn, T);
    be->add(be, w->x, w->xn, T * d);
}

static const char *q35_prefix(const ck_config *c) {
    static const char *const prefixes[] = {"model.layers.", "model.language_model.layers."};
    return prefixes[strstr(c->arch, "ForCausalLM") ? 0 : 1];
}

static const char *const q35_archs[] = {"Qwen3_5ForConditionalGeneration", "Qwen3_5ForCausalLM",
                                        "Qwen3_5MoeForConditionalGeneration", "Qwen3_5MoeForCausalLM", NULL};

const ck_family ck_family_qwen35 = {
    .name = "qwen35",
    .archs = q35_archs,
    .layer_prefix = q35_prefix,
    .load = q35_load,
    .unload = q35_unload,
    .layer = q35_layer_fwd,
    .seq_init = q35_seq_init,
    .seq_reset = q35_seq_reset,
    .seq_free = q35_seq_free,
    .ws_init = q35_ws_init,
    .ws_free = q35_ws_free,
};
