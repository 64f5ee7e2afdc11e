/* llama.c — the Llama family: Llama (incl. llama3 RoPE scaling, Falcon 3), Mistral (sliding window),
 * Qwen2 (QKV bias) and Qwen3 (per-head QK RMSNorm). Block: x += attn(rmsnorm(x)); x += mlp(rmsnorm(x)).
 * Tensor names follow HF: model.embed_tokens, model.layers.N.{input_layernorm, self_attn.*,
 * post_attention_layernorm, mlp.*}, model.norm, lm_head (absent when tied). */
#include "base/err.h"
#include "model/blocks.h"
#include "model/family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct llama_layer {
    float *attn_norm, *mlp_norm; /* [hidden] */
    ck_attn_w attn;
    ck_mlp_w mlp;
} llama_layer;

static int load_head(ck_model *m, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    uint64_t ed[2] = {(uint64_t)c->vocab_size, (uint64_t)c->hidden_size};
    if (ck_model_tensor(m, "model.embed_tokens.weight", 0, &m->embed, 2, ed, err, errlen) < 0) return -1;
    int found = ck_model_tensor(m, "lm_head.weight", c->tie_embeddings, &m->lm_head, 2, ed, err, errlen);
    if (found < 0) return -1;
    if (found == 0) m->lm_head = m->embed;
    return ck_model_vector(m, "model.norm.weight", 0, (size_t)c->hidden_size, &m->final_norm, err, errlen);
}

static int llama_load(ck_model *m, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    int qwen2 = !strcmp(c->arch, "Qwen2ForCausalLM"), qwen3 = !strcmp(c->arch, "Qwen3ForCausalLM");
    if (ck_cfg_bool(c, "mlp_bias", 0)) return ck_err(err, errlen, "config.json: mlp_bias=true is not supported");
    if (load_head(m, err, errlen) != 0) return -1;
    llama_layer *L = calloc((size_t)c->n_layers, sizeof *L);
    if (!L) return ck_err(err, errlen, "out of memory");
    m->layers = L;
    char p[128], name[192];
    for (int64_t i = 0; i < c->n_layers; i++) {
        snprintf(name, sizeof name, "model.layers.%lld.input_layernorm.weight", (long long)i);
        if (ck_model_vector(m, name, 0, (size_t)c->hidden_size, &L[i].attn_norm, err, errlen) != 0) return -1;
        snprintf(name, sizeof name, "model.layers.%lld.post_attention_layernorm.weight", (long long)i);
        if (ck_model_vector(m, name, 0, (size_t)c->hidden_size, &L[i].mlp_norm, err, errlen) != 0) return -1;
        snprintf(p, sizeof p, "model.layers.%lld.self_attn.", (long long)i);
        if (ck_attn_load(m, p, qwen2 || c->attention_bias, qwen3, &L[i].attn, err, errlen) != 0) return -1;
        L[i].attn.window = (size_t)c->sliding_window;
        snprintf(p, sizeof p, "model.layers.%lld.mlp.", (long long)i);
        if (ck_mlp_load(m, p, &L[i].mlp, err, errlen) != 0) return -1;
    }
    return 0;
}

static void llama_unload(ck_model *m) {
    llama_layer *L = m->layers;
    if (!L) return;
    for (int64_t i = 0; i < m->cfg.n_layers; i++) {
        float *v[] = {L[i].attn_norm, L[i].mlp_norm, L[i].attn.q_bias, L[i].attn.k_bias, L[i].attn.v_bias,
                      L[i].attn.q_norm, L[i].attn.k_norm};
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++)
            if (v[j]) m->be->free(m->be, v[j]);
    }
    free(L);
    m->layers = NULL;
}

static void llama_layer_fwd(const ck_model *m, ck_state *s, size_t layer, size_t T) {
    const llama_layer *L = &((const llama_layer *)m->layers)[layer];
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size;
    float eps = (float)m->cfg.rms_eps;
    be->rmsnorm(be, s->xn, s->x, L->attn_norm, T, d, eps, 0);
    ck_attn_forward(m, s, layer, &L->attn, T);
    be->add(be, s->x, s->xn, T * d);
    be->rmsnorm(be, s->xn, s->x, L->mlp_norm, T, d, eps, 0);
    ck_mlp_forward(m, s, &L->mlp, T);
    be->add(be, s->x, s->xn, T * d);
}

static const char *const llama_archs[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                          "Qwen3ForCausalLM", NULL};

const ck_family ck_family_llama = {
    .name = "llama",
    .archs = llama_archs,
    .load = llama_load,
    .unload = llama_unload,
    .layer = llama_layer_fwd,
};
