/* gguf_convert.c — HF checkpoint -> GGUF (see gguf_convert.h): metadata from config.json, every tensor
 * read as f32, un-permuted Q/K rows permuted the GGUF way for Llama, quantized row by row, and the
 * tokenizer (tokenizer.json + tokenizer_config.json) as tokenizer.ggml.* (gguf_tok_write.c). */
#include "model/gguf_convert.h"
#include "base/err.h"
#include "format/gguf_model.h"
#include "format/gguf_write.h"
#include "format/hfconfig.h"
#include "format/safetensors.h"
#include "model/moe.h"
#include "model/rope.h"
#include "tensor/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ck_gguf_write_tokenizer(ck_gguf_w *w, const char *hf_dir, const ck_config *c, char *err, size_t errlen);

uint32_t ck_gguf_ggml_type(ck_dtype t) {
    static const uint32_t ids[CK_DTYPE_COUNT] = {[CK_F32] = 0, [CK_F16] = 1, [CK_BF16] = 30, [CK_Q8_0] = 8,
                                                 [CK_Q4_0] = 2, [CK_Q4_K] = 12, [CK_Q5_K] = 13, [CK_Q6_K] = 14};
    return (unsigned)t < CK_DTYPE_COUNT ? ids[t] : 0;
}

static void arch_key(char *key, size_t cap, const ck_gguf_arch *a, const char *suffix) {
    snprintf(key, cap, "%s.%s", a->gguf, suffix);
}

static void put_u32(ck_gguf_w *w, const ck_gguf_arch *a, const char *suffix, int64_t v) {
    char key[160];
    arch_key(key, sizeof key, a, suffix);
    ck_gguf_w_u32(w, key, (uint32_t)v);
}

static void put_f32(ck_gguf_w *w, const ck_gguf_arch *a, const char *suffix, double v) {
    char key[160];
    arch_key(key, sizeof key, a, suffix);
    ck_gguf_w_f32(w, key, (float)v);
}

/* RoPE: the base, linear scaling as metadata, anything else (Llama 3) as per-pair divisors of the
 * unscaled frequencies in a rope_freqs tensor, as llama.cpp stores them. */
static int put_rope(ck_gguf_w *w, const ck_gguf_arch *a, const ck_config *c, char *err, size_t errlen) {
    ck_rope r;
    if (ck_rope_init(&r, c, NULL, (size_t)c->head_dim, err, errlen) != 0) return -1;
    const cJSON *rp = ck_cfg_get(c, "rope_parameters");
    if (!cJSON_IsObject(rp)) rp = ck_cfg_get(c, "rope_scaling");
    const cJSON *th = cJSON_IsObject(rp) ? cJSON_GetObjectItemCaseSensitive(rp, "rope_theta") : NULL;
    const cJSON *ty = cJSON_IsObject(rp) ? cJSON_GetObjectItemCaseSensitive(rp, "rope_type") : NULL;
    const cJSON *fa = cJSON_IsObject(rp) ? cJSON_GetObjectItemCaseSensitive(rp, "factor") : NULL;
    double theta = cJSON_IsNumber(th) ? th->valuedouble : ck_cfg_num(c, "rope_theta", 10000.0);
    put_f32(w, a, "rope.freq_base", theta);
    put_u32(w, a, "rope.dimension_count", (int64_t)r.rot_dim);
    int rc = 0;
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "linear") && cJSON_IsNumber(fa)) {
        char key[160];
        arch_key(key, sizeof key, a, "rope.scaling.type");
        ck_gguf_w_str(w, key, "linear");
        put_f32(w, a, "rope.scaling.factor", fa->valuedouble);
    } else if (cJSON_IsString(ty) && strcmp(ty->valuestring, "default")) {
        size_t n = r.rot_dim / 2;
        float *f = malloc(n * sizeof *f);
        if (!f) rc = ck_err(err, errlen, "out of memory");
        for (size_t i = 0; f && i < n; i++)
            f[i] = (float)(1.0 / pow(theta, (double)(2 * i) / (double)r.rot_dim) / r.inv_freq[i]);
        uint64_t ne[1] = {n};
        if (f) ck_gguf_w_tensor(w, "rope_freqs.weight", 0, 1, ne, f, n * sizeof *f);
        free(f);
    }
    ck_rope_free(&r);
    return rc;
}

static int put_metadata(ck_gguf_w *w, const ck_gguf_arch *a, const ck_config *c, const char *name, char *err,
                        size_t errlen) {
    ck_gguf_w_str(w, "general.architecture", a->gguf);
    ck_gguf_w_str(w, "general.name", name);
    ck_gguf_w_u32(w, "general.alignment", 32);
    put_u32(w, a, "block_count", c->n_layers);
    put_u32(w, a, "context_length", c->max_pos);
    put_u32(w, a, "embedding_length", c->hidden_size);
    put_u32(w, a, "feed_forward_length", c->intermediate_size);
    put_u32(w, a, "attention.head_count", c->n_heads);
    put_u32(w, a, "attention.head_count_kv", c->n_kv_heads);
    put_u32(w, a, "attention.key_length", c->head_dim);
    put_u32(w, a, "attention.value_length", c->head_dim);
    put_u32(w, a, "vocab_size", c->vocab_size);
    put_f32(w, a, "attention.layer_norm_rms_epsilon", c->rms_eps);
    size_t experts = 0, top_k, ffn, shared;
    if (ck_moe_sizes(c, &experts, &top_k, &ffn, &shared, err, errlen) != 0) return -1;
    if (experts > 0) { /* llama.cpp runs every layer sparse, normalized: refuse what it would compute otherwise */
        const cJSON *only = ck_cfg_get(c, "mlp_only_layers");
        if (shared || !ck_cfg_bool(c, "norm_topk_prob", 0) || ck_cfg_int(c, "decoder_sparse_step", 1) != 1 ||
            (cJSON_IsArray(only) && cJSON_GetArraySize(only) > 0))
            return ck_err(err, errlen, "a GGUF mixture of experts is sparse on every layer with normalized top-k "
                          "weights; this checkpoint is not (norm_topk_prob, decoder_sparse_step, mlp_only_layers)");
        put_u32(w, a, "expert_count", (int64_t)experts);
        put_u32(w, a, "expert_used_count", (int64_t)top_k);
        put_u32(w, a, "expert_feed_forward_length", (int64_t)ffn);
    }
    return put_rope(w, a, c, err, errlen);
}

/* The type a 2-D weight with rows of n elements gets: the wanted one, else Q8_0, else F16. */
static ck_dtype fit_type(ck_dtype want, uint64_t n) {
    const ck_dtype_traits *tr = ck_dtype_traits_of(want);
    if (n % tr->block == 0) return want;
    return n % CK_QK == 0 ? CK_Q8_0 : CK_F16;
}

/* Heads of a Q/K tensor that GGUF stores permuted (0 for every other tensor). */
static int64_t permute_heads(const ck_gguf_arch *a, const ck_config *c, const char *hf) {
    if (!a->permute_qk) return 0;
    size_t n = strlen(hf);
    static const char *const q[] = {".self_attn.q_proj.weight", ".self_attn.q_proj.bias"};
    static const char *const k[] = {".self_attn.k_proj.weight", ".self_attn.k_proj.bias"};
    for (int i = 0; i < 2; i++) {
        if (n > strlen(q[i]) && !strcmp(hf + n - strlen(q[i]), q[i])) return c->n_heads;
        if (n > strlen(k[i]) && !strcmp(hf + n - strlen(k[i]), k[i])) return c->n_kv_heads;
    }
    return 0;
}

/* Converts tensor t ([rows, row] f32 after to_f32) into q as type out, rows permuted first when heads > 0. */
static int convert_rows(const ck_tensor *t, ck_dtype out, int64_t heads, uint8_t *q, char *err, size_t errlen) {
    uint64_t n = ck_tensor_numel(t), row = t->shape[t->ndim - 1], rows = n / (row ? row : 1);
    const ck_dtype_traits *in = ck_dtype_traits_of(t->dtype), *tr = ck_dtype_traits_of(out);
    size_t rb = 0;
    ck_dtype_row_bytes(out, row, &rb);
    float *f = malloc(n * sizeof *f + 1), *g = malloc(n * sizeof *g + 1);
    if (!f || !g) {
        free(f), free(g);
        return ck_err(err, errlen, "out of memory");
    }
    in->to_f32(f, t->data, n);
    if (heads > 0) ck_gguf_permute_rows((uint8_t *)g, (const uint8_t *)f, (size_t)heads, rows / (size_t)heads, row * sizeof(float), 1);
    const float *src = heads > 0 ? g : f;
    long long nr = (long long)rows; /* rows are independent: quantized on every core (a K-quant fits scales) */
#pragma omp parallel for schedule(dynamic, 16)
    for (long long r = 0; r < nr; r++) tr->from_f32(q + (size_t)r * rb, src + (size_t)r * row, row);
    free(f), free(g);
    return 0;
}

/* Expert 0 of a projection brings all experts of its layer, stacked [E, rows, cols]; the others are
 * already written (returns 1 when hf is an expert weight and was handled). */
static int put_experts(ck_gguf_w *w, ck_weights *ws, const char *hf, const ck_config *c, ck_dtype want, int *rc,
                       char *err, size_t errlen) {
    char gname[256], name[256];
    long layer, expert;
    if (!ck_gguf_expert_from_hf(hf, &layer, &expert, gname, sizeof gname)) return 0;
    *rc = 0;
    if (expert != 0) return 1;
    size_t E = 0, K, F, SF;
    if (ck_moe_sizes(c, &E, &K, &F, &SF, err, errlen) != 0 || E == 0) {
        *rc = E ? -1 : ck_err(err, errlen, "'%s': an expert weight, but config.json configures no experts", hf);
        return 1;
    }
    const char *proj = strstr(hf, ".mlp.experts.") + strlen(".mlp.experts."); /* "gate_proj.weight", ... */
    while (*proj >= '0' && *proj <= '9') proj++;
    proj++;
    ck_tensor t;
    uint8_t *q = NULL;
    size_t rb = 0, per = 0;
    ck_dtype out = CK_F32;
    for (size_t e = 0; *rc == 0 && e < E; e++) {
        snprintf(name, sizeof name, "model.layers.%ld.mlp.experts.%zu.%s", layer, e, proj);
        if (ck_weights_find(ws, name, &t, err, errlen) != 1 || t.ndim != 2) {
            *rc = ck_err(err, errlen, "expert weight '%s' is missing or not 2-D", name);
            break;
        }
        if (e == 0) {
            out = fit_type(want, t.shape[1]);
            ck_dtype_row_bytes(out, t.shape[1], &rb);
            per = rb * t.shape[0];
            if (!(q = malloc(per * (size_t)E + 1))) *rc = ck_err(err, errlen, "out of memory");
        }
        if (*rc == 0) *rc = convert_rows(&t, out, 0, q + e * per, err, errlen);
    }
    if (*rc == 0) {
        uint64_t ne[3] = {t.shape[1], t.shape[0], (uint64_t)E};
        ck_gguf_w_tensor(w, gname, ck_gguf_ggml_type(out), 3, ne, q, per * E);
    }
    free(q);
    return 1;
}

static int put_tensor(ck_gguf_w *w, ck_weights *ws, const char *hf, const ck_gguf_arch *a, const ck_config *c,
                      ck_dtype want, char *err, size_t errlen) {
    char gname[256];
    ck_tensor t;
    int rc;
    if (put_experts(w, ws, hf, c, want, &rc, err, errlen)) return rc;
    if (!ck_gguf_name_from_hf(a, hf, gname, sizeof gname))
        return ck_err(err, errlen, "tensor '%s' has no GGUF name (not part of a supported architecture)", hf);
    if (ck_weights_find(ws, hf, &t, err, errlen) != 1) return -1;
    if (t.ndim < 1 || t.ndim > 2) return ck_err(err, errlen, "tensor '%s': %d dimensions (1 or 2 converted)", hf, t.ndim);
    uint64_t n = ck_tensor_numel(&t), row = t.shape[t.ndim - 1], rows = n / (row ? row : 1);
    ck_dtype out = t.ndim == 1 ? CK_F32 : fit_type(want, row);
    size_t rb = 0;
    ck_dtype_row_bytes(out, row, &rb);
    uint8_t *q = malloc(rows * rb + 1);
    rc = q ? convert_rows(&t, out, permute_heads(a, c, hf), q, err, errlen) : ck_err(err, errlen, "out of memory");
    if (rc == 0) {
        uint64_t ne[CK_MAX_DIMS];
        for (int d = 0; d < t.ndim; d++) ne[d] = t.shape[t.ndim - 1 - d];
        ck_gguf_w_tensor(w, gname, ck_gguf_ggml_type(out), t.ndim, ne, q, rows * rb);
    }
    free(q);
    return rc;
}

static int convert(const char *dir, ck_gguf_w *w, ck_dtype want, char *err, size_t errlen) {
    ck_config c;
    ck_weights ws;
    if (ck_config_load(dir, &c, err, errlen) != 0) return -1;
    const ck_gguf_arch *a = ck_gguf_arch_by_hf(c.arch);
    if (a && !a->write) { /* read only: llama.cpp's layout of it is not written */
        ck_err(err, errlen, "architecture '%s': GGUF files of it are read, not written", c.arch);
        ck_config_free(&c);
        return -1;
    }
    if (!a) {
        ck_err(err, errlen, "architecture '%s' has no GGUF conversion (supported: %s)", c.arch, ck_gguf_archs_supported());
        ck_config_free(&c);
        return -1;
    }
    const char *base = strrchr(dir, '/');
    int rc = put_metadata(w, a, &c, base && base[1] ? base + 1 : dir, err, errlen);
    if (rc == 0) rc = ck_gguf_write_tokenizer(w, dir, &c, err, errlen);
    if (rc == 0) rc = ck_weights_open(dir, &ws, err, errlen);
    if (rc == 0) {
        for (size_t i = 0; rc == 0 && i < ck_weights_count(&ws); i++)
            rc = put_tensor(w, &ws, ck_weights_name(&ws, i), a, &c, want, err, errlen);
        ck_weights_close(&ws);
    }
    ck_config_free(&c);
    return rc;
}

int ck_gguf_convert(const char *hf_dir, const char *out_path, ck_dtype weight_type, char *err, size_t errlen) {
    if (!ck_dtype_traits_of(weight_type)) return ck_err(err, errlen, "unknown weight type");
    ck_gguf_w w;
    ck_gguf_w_init(&w);
    int rc = convert(hf_dir, &w, weight_type, err, errlen);
    if (rc == 0) rc = ck_gguf_w_save(&w, out_path, err, errlen);
    ck_gguf_w_free(&w);
    return rc;
}
