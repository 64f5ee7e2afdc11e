/* dense.c — decoder-only transformers with dense attention and a gated MLP, described by a table of
 * per-architecture settings instead of one file each: Llama (incl. llama3 RoPE scaling; Falcon 3 uses
 * it), Mistral (sliding window), Qwen2 (QKV bias), Qwen3 (per-head QK norm), Phi-3/Phi-4 (fused qkv and
 * gate_up, partial rotary), OLMo 2 (post-norms, QK norm over the whole projection), EXAONE 4 (post-norms,
 * sliding/global layers, no RoPE on global layers when a window is configured) and Gemma 3 (four norms
 * per block, (1+w) norms, GELU-tanh, scaled embeddings, local/global RoPE bases) and Qwen3-MoE (Qwen3 with
 * a sparse mixture-of-experts MLP on the layers `decoder_sparse_step` / `mlp_only_layers` select).
 * Block, with each norm present or not per architecture:
 *   x += post_attn_norm(attn(pre_attn_norm(x)));  x += post_mlp_norm(mlp(pre_mlp_norm(x))) */
#include "base/err.h"
#include "model/blocks.h"
#include "model/family.h"
#include "model/moe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PRE_ATTN, POST_ATTN, PRE_MLP, POST_MLP, N_NORMS };

typedef struct dense_arch {
    const char *arch;
    const char *norms[N_NORMS]; /* tensor names under model.layers.N., NULL when absent */
    unsigned attn_flags;
    int fused_mlp;
    ck_act act;
    int gemma;                  /* (1+w) norms, sqrt(hidden) embedding scale, per-layer-type RoPE */
    int nope_global;            /* global layers skip RoPE when a sliding window is configured */
    int moe;                    /* sparse MoE MLP on the selected layers */
    /* the layers a window slides on when config.json has no layer_types, as HF derives them: */
    int slide;                  /* SLIDE_ALL, SLIDE_PERIOD (every layer but each slide_n-th), SLIDE_FROM
                                   (layers slide_n onwards) */
    const char *slide_key;      /* the config key that gives slide_n */
    int64_t slide_n;            /* its default */
    int bias_key;               /* HF reads config.json's attention_bias: biases on q, k, v and o when set */
} dense_arch;

enum { SLIDE_ALL, SLIDE_PERIOD, SLIDE_FROM };

#define PRE_NORMS {"input_layernorm", NULL, "post_attention_layernorm", NULL}
#define POST_NORMS {NULL, "post_attention_layernorm", NULL, "post_feedforward_layernorm"}

static const dense_arch archs[] = {
    {"LlamaForCausalLM", PRE_NORMS, 0, 0, CK_ACT_SILU, 0, 0, 0, SLIDE_ALL, NULL, 0, 1},
    {"MistralForCausalLM", PRE_NORMS, 0, 0, CK_ACT_SILU, 0, 0, 0, SLIDE_ALL, NULL, 0, 0},
    {"Qwen2ForCausalLM", PRE_NORMS, CK_ATTN_BIAS, 0, CK_ACT_SILU, 0, 0, 0, SLIDE_FROM, "max_window_layers", 28, 0},
    {"Qwen3ForCausalLM", PRE_NORMS, CK_ATTN_QK_NORM, 0, CK_ACT_SILU, 0, 0, 0, SLIDE_FROM, "max_window_layers", 28, 1},
    {"Phi3ForCausalLM", PRE_NORMS, CK_ATTN_FUSED_QKV, 1, CK_ACT_SILU, 0, 0, 0, SLIDE_ALL, NULL, 0, 0},
    {"Olmo2ForCausalLM", POST_NORMS, CK_ATTN_QK_NORM_WHOLE, 0, CK_ACT_SILU, 0, 0, 0, SLIDE_ALL, NULL, 0, 1},
    {"Exaone4ForCausalLM", POST_NORMS, CK_ATTN_QK_NORM, 0, CK_ACT_SILU, 0, 1, 0, SLIDE_PERIOD, "sliding_window_pattern",
     4, 0},
    {"Gemma3ForCausalLM",
     {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"},
     CK_ATTN_QK_NORM, 0, CK_ACT_GELU_TANH, 1, 0, 0, SLIDE_PERIOD, "sliding_window_pattern", 6, 1},
    {"Qwen3MoeForCausalLM", PRE_NORMS, CK_ATTN_QK_NORM, 0, CK_ACT_SILU, 0, 0, 1, SLIDE_FROM, "max_window_layers", 28,
     1},
};

typedef struct dense_layer {
    float *norm[N_NORMS]; /* [hidden] each, or NULL */
    ck_attn_w attn;
    ck_mlp_w mlp;
    ck_moe_w moe;         /* used instead of mlp when moe.n_experts > 0 */
} dense_layer;

typedef struct dense_model {
    const dense_arch *a;
    dense_layer *layers;
} dense_model;

static const dense_arch *find_arch(const char *name) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].arch, name)) return &archs[i];
    return NULL;
}

/* 1 when layer i uses the sliding window (the config has one): per `layer_types` when given, else as HF
 * derives layer_types for the family (check_layer_types checked both). */
static int layer_sliding(const ck_config *c, const dense_arch *a, int64_t i) {
    if (c->sliding_window <= 0) return 0;
    const cJSON *lt = ck_cfg_get(c, "layer_types");
    if (cJSON_IsArray(lt)) {
        const cJSON *t = cJSON_GetArrayItem(lt, (int)i);
        return cJSON_IsString(t) && !strcmp(t->valuestring, "sliding_attention");
    }
    int64_t n = a->slide_key ? ck_cfg_int(c, a->slide_key, a->slide_n) : 0;
    if (a->slide == SLIDE_PERIOD) return (i + 1) % n != 0;
    if (a->slide == SLIDE_FROM) return i >= n;
    return 1;
}

/* layer_types, when given, names each layer full_attention or sliding_attention (its length and type
 * are checked with config.json); without it, the key that places the window is a positive integer. */
static int check_layer_types(const ck_config *c, const dense_arch *a, char *err, size_t errlen) {
    const cJSON *lt = ck_cfg_get(c, "layer_types");
    for (int i = 0; cJSON_IsArray(lt) && i < cJSON_GetArraySize(lt); i++) {
        const char *t = cJSON_GetArrayItem(lt, i)->valuestring;
        if (strcmp(t, "full_attention") && strcmp(t, "sliding_attention"))
            return ck_err(err, errlen, "config.json: layer_types[%d] '%s' is not supported (full_attention, "
                          "sliding_attention)", i, t);
    }
    if (cJSON_IsArray(lt) || c->sliding_window <= 0 || !a->slide_key) return 0;
    const cJSON *v = ck_cfg_get(c, a->slide_key);
    if (v && (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (a->slide == SLIDE_PERIOD)))
        return ck_err(err, errlen, "config.json: without layer_types, %s must be an integer of at least %d", a->slide_key,
                      a->slide == SLIDE_PERIOD);
    return 0;
}

/* Qwen3-MoE: experts on layer i unless it is listed in mlp_only_layers or off the sparse step. */
static int layer_moe(const ck_config *c, int64_t i) {
    const cJSON *only = ck_cfg_get(c, "mlp_only_layers"), *e;
    cJSON_ArrayForEach(e, only) if (cJSON_IsNumber(e) && (int64_t)e->valuedouble == i) return 0;
    int64_t step = ck_cfg_int(c, "decoder_sparse_step", 1);
    return step > 0 && (i + 1) % step == 0;
}

static int check_act(const ck_config *c, const dense_arch *a, char *err, size_t errlen) {
    const char *act = ck_cfg_str(c, "hidden_activation", ck_cfg_str(c, "hidden_act", NULL));
    if (!act) return 0;
    int ok = a->act == CK_ACT_SILU ? !strcmp(act, "silu")
                                   : (!strcmp(act, "gelu_pytorch_tanh") || !strcmp(act, "gelu_tanh"));
    return ok ? 0 : ck_err(err, errlen, "config.json: activation '%s' is not supported for %s", act, a->arch);
}

/* Gemma 3: global layers use rope_parameters.full_attention, sliding ones .sliding_attention (or the
 * older rope_theta / rope_local_base_freq pair). Sets each layer's table index. */
static int gemma_ropes(ck_model *m, dense_model *dm, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    size_t hd = (size_t)c->head_dim;
    const cJSON *full = ck_rope_params_for(c, "full_attention"), *slide = ck_rope_params_for(c, "sliding_attention");
    if (ck_rope_init(&m->rope[0], c, full, hd, err, errlen) != 0) return -1;
    cJSON *local = NULL;
    if (!slide) { /* older configs: rope_local_base_freq */
        local = cJSON_CreateObject();
        cJSON_AddNumberToObject(local, "rope_theta", ck_cfg_num(c, "rope_local_base_freq", 10000.0));
        cJSON_AddStringToObject(local, "rope_type", "default");
        slide = local;
    }
    int rc = ck_rope_init(&m->rope[1], c, slide, hd, err, errlen);
    cJSON_Delete(local);
    if (rc != 0) return -1;
    m->n_ropes = 2;
    for (int64_t i = m->range.first; i <= m->range.last; i++) dm->layers[i].attn.rope = layer_sliding(c, dm->a, i) ? 1 : 0;
    return 0;
}

static int dense_load(ck_model *m, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    const dense_arch *a = find_arch(c->arch);
    if (!a) return ck_err(err, errlen, "internal: no dense settings for %s", c->arch);
    if (ck_cfg_bool(c, "mlp_bias", 0)) return ck_err(err, errlen, "config.json: mlp_bias=true is not supported");
    if (check_act(c, a, err, errlen) != 0) return -1;
    if (check_layer_types(c, a, err, errlen) != 0) return -1;
    if (a->gemma) {
        if (ck_cfg_num(c, "attn_logit_softcapping", 0) > 0 || ck_cfg_num(c, "final_logit_softcapping", 0) > 0)
            return ck_err(err, errlen, "config.json: logit soft-capping is not supported");
        m->embed_scale = (float)sqrt((double)c->hidden_size);
        m->final_norm_one_plus = 1;
        m->attn_scale = (float)(1.0 / sqrt(ck_cfg_num(c, "query_pre_attn_scalar", (double)c->head_dim)));
    }
    if (ck_model_load_head(m, "model.", err, errlen) != 0) return -1;
    dense_model *dm = calloc(1, sizeof *dm);
    if (!dm) return ck_err(err, errlen, "out of memory");
    m->layers = dm;
    dm->a = a;
    dm->layers = calloc((size_t)c->n_layers, sizeof *dm->layers);
    if (!dm->layers) return ck_err(err, errlen, "out of memory");
    unsigned flags = a->attn_flags | (a->bias_key && c->attention_bias ? CK_ATTN_BIAS_ALL : 0);
    char p[128], name[192];
    for (int64_t i = m->range.first; i <= m->range.last; i++) {
        dense_layer *L = &dm->layers[i];
        for (int k = 0; k < N_NORMS; k++) {
            if (!a->norms[k]) continue;
            snprintf(name, sizeof name, "model.layers.%lld.%s.weight", (long long)i, a->norms[k]);
            if (ck_model_vector(m, name, 0, (size_t)c->hidden_size, &L->norm[k], err, errlen) != 0) return -1;
        }
        snprintf(p, sizeof p, "model.layers.%lld.self_attn.", (long long)i);
        if (ck_attn_load(m, p, flags, &L->attn, err, errlen) != 0) return -1;
        int sliding = layer_sliding(c, a, i);
        L->attn.window = sliding ? (size_t)c->sliding_window : 0;
        L->attn.norm_one_plus = a->gemma;
        if (a->nope_global && c->sliding_window > 0 && !sliding) L->attn.rope = -1;
        snprintf(p, sizeof p, "model.layers.%lld.mlp.", (long long)i);
        if (a->moe && layer_moe(c, i)) {
            if (ck_moe_load(m, p, ck_cfg_bool(c, "norm_topk_prob", 0), &L->moe, err, errlen) != 0) return -1;
        } else if (ck_mlp_load(m, p, a->fused_mlp, a->act, (size_t)c->intermediate_size, &L->mlp, err, errlen) != 0) {
            return -1;
        }
    }
    if (a->gemma && gemma_ropes(m, dm, err, errlen) != 0) return -1;
    return 0;
}

static void dense_unload(ck_model *m) {
    dense_model *dm = m->layers;
    if (!dm) return;
    for (int64_t i = 0; dm->layers && i < m->cfg.n_layers; i++) ck_moe_free(&dm->layers[i].moe);
    free(dm->layers);
    free(dm);
    m->layers = NULL;
}

/* xn = norm(x) when the norm exists, else a copy of x. */
static void pre_norm(const ck_model *m, ck_ws *w, const float *nw, size_t T) {
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size;
    if (nw) be->rmsnorm(be, w->xn, w->x, nw, T, d, (float)m->cfg.rms_eps, ((const dense_model *)m->layers)->a->gemma);
    else be->copy(be, w->xn, w->x, T * d * sizeof(float));
}

static void post_norm_add(const ck_model *m, ck_ws *w, const float *nw, size_t T) {
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size;
    if (nw) be->rmsnorm(be, w->xn, w->xn, nw, T, d, (float)m->cfg.rms_eps, ((const dense_model *)m->layers)->a->gemma);
    be->add(be, w->x, w->xn, T * d);
}

static void dense_layer_fwd(const ck_model *m, const ck_rows *r, ck_ws *w, size_t layer) {
    const dense_layer *L = &((const dense_model *)m->layers)->layers[layer];
    size_t T = r->T;
    pre_norm(m, w, L->norm[PRE_ATTN], T);
    ck_attn_forward(m, r, w, layer, &L->attn);
    post_norm_add(m, w, L->norm[POST_ATTN], T);
    pre_norm(m, w, L->norm[PRE_MLP], T);
    if (L->moe.n_experts) ck_moe_forward(m, w, &L->moe, w->fam, T);
    else ck_mlp_forward(m, w, &L->mlp, w->xn, w->xn, T);
    post_norm_add(m, w, L->norm[POST_MLP], T);
}

/* MoE models keep router/expert scratch in the workspace. */
static int dense_ws_init(const ck_model *m, ck_ws *w, char *err, size_t errlen) {
    if (!((const dense_model *)m->layers)->a->moe) return 0;
    ck_moe_scratch *sc = calloc(1, sizeof *sc);
    if (!sc) return ck_err(err, errlen, "out of memory");
    w->fam = sc;
    return ck_moe_scratch_init(m, sc, err, errlen);
}

static void dense_ws_free(const ck_model *m, ck_ws *w) {
    if (!w->fam) return;
    ck_moe_scratch_free(m, w->fam);
    free(w->fam);
    w->fam = NULL;
}

static const char *dense_prefix(const ck_config *c) {
    (void)c;
    return "model.layers.";
}

static const char *const dense_archs[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                          "Qwen3ForCausalLM", "Phi3ForCausalLM", "Olmo2ForCausalLM",
                                          "Exaone4ForCausalLM", "Gemma3ForCausalLM", "Qwen3MoeForCausalLM", NULL};

const ck_family ck_family_dense = {
    .name = "dense",
    .archs = dense_archs,
    .layer_prefix = dense_prefix,
    .load = dense_load,
    .unload = dense_unload,
    .layer = dense_layer_fwd,
    .ws_init = dense_ws_init,
    .ws_free = dense_ws_free,
};
