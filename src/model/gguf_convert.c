/* gguf_convert.c — HF checkpoint -> GGUF (see gguf_convert.h): metadata from config.json, every tensor
 * read as f32, put in llama.cpp's layout (Llama's Q/K rows permuted; Qwen3.5's value heads tiled, its
 * (1 + w) norms stored as 1 + w, A_log as -exp(A_log), conv1d as [C, K] in F32), quantized row by row,
 * and the tokenizer (tokenizer.json + tokenizer_config.json) as tokenizer.ggml.* (gguf_tok_write.c). */
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

/* Qwen3.5's DeltaNet sizes, its layer pattern (full attention every full_attention_interval-th layer, the
 * only pattern GGUF can say) and its multimodal RoPE sections (padded to four). */
static int put_qwen35(ck_gguf_w *w, const ck_gguf_arch *a, const ck_config *c, char *err, size_t errlen) {
    int64_t nk = ck_cfg_int(c, "linear_num_key_heads", 0), nv = ck_cfg_int(c, "linear_num_value_heads", 0);
    int64_t dk = ck_cfg_int(c, "linear_key_head_dim", 0), dv = ck_cfg_int(c, "linear_value_head_dim", 0);
    int64_t K = ck_cfg_int(c, "linear_conv_kernel_dim", 4), every = ck_cfg_int(c, "full_attention_interval", 4);
    if (nk <= 0 || nv <= 0 || dk <= 0 || dv <= 0 || K <= 0 || every <= 0 || nv % nk)
        return ck_err(err, errlen, "config.json: the Gated DeltaNet sizes are missing or out of range");
    const cJSON *lt = ck_cfg_get(c, "layer_types");
    for (int64_t i = 0; cJSON_IsArray(lt) && i < c->n_layers; i++) {
        const cJSON *t = cJSON_GetArrayItem(lt, (int)i);
        const char *want = (i + 1) % every ? "linear_attention" : "full_attention";
        if (!cJSON_IsString(t) || strcmp(t->valuestring, want))
            return ck_err(err, errlen, "config.json: layer_types is not full attention every %lld layers, the only "
                          "pattern a GGUF file can hold", (long long)every);
    }
    put_u32(w, a, "ssm.conv_kernel", K);
    put_u32(w, a, "ssm.state_size", dk);
    put_u32(w, a, "ssm.group_count", nk);
    put_u32(w, a, "ssm.time_step_rank", nv);
    put_u32(w, a, "ssm.inner_size", nv * dv);
    put_u32(w, a, "full_attention_interval", every);
    const cJSON *rp = ck_cfg_get(c, "rope_parameters");
    if (!cJSON_IsObject(rp)) rp = ck_cfg_get(c, "rope_scaling");
    const cJSON *ms = cJSON_IsObject(rp) ? cJSON_GetObjectItemCaseSensitive(rp, "mrope_section") : NULL;
    if (cJSON_IsArray(ms)) {
        int32_t sec[4] = {0};
        int n = cJSON_GetArraySize(ms);
        if (n > 4) return ck_err(err, errlen, "config.json: mrope_section has more than four sections");
        for (int i = 0; i < n; i++) {
            const cJSON *v = cJSON_GetArrayItem(ms, i);
            double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
            if (!(d >= 0 && d <= (double)c->head_dim && d == (double)(int32_t)d))
                return ck_err(err, errlen, "config.json: mrope_section entries must be whole numbers of rotary pairs "
                              "(0 to head_dim)");
            sec[i] = (int32_t)d;
        }
        char key[160];
        arch_key(key, sizeof key, a, "rope.dimension_sections");
        ck_gguf_w_arr_i32(w, key, sec, 4);
    }
    return 0;
}

static int put_metadata(ck_gguf_w *w, const ck_gguf_arch *a, const ck_config *c, const char *name, char *err,
                        size_t errlen) {
    ck_gguf_w_str(w, "general.architecture", a->gguf);
    ck_gguf_w_str(w, "general.name", name);
    ck_gguf_w_u32(w, "general.alignment", 32);
    put_u32(w, a, "block_count", c->n_layers);
    put_u32(w, a, "context_length", c->max_pos);
    put_u32(w, a, "embedding_length", c->hidden_size);
    size_t experts = 0, top_k, ffn, shared;
    if (ck_moe_sizes(c, &experts, &top_k, &ffn, &shared, err, errlen) != 0) return -1;
    if (!(a->qwen35 && experts > 0)) put_u32(w, a, "feed_forward_length", c->intermediate_size); /* (none in qwen35moe) */
    put_u32(w, a, "attention.head_count", c->n_heads);
    put_u32(w, a, "attention.head_count_kv", c->n_kv_heads);
    put_u32(w, a, "attention.key_length", c->head_dim);
    put_u32(w, a, "attention.value_length", c->head_dim);
    put_u32(w, a, "vocab_size", c->vocab_size);
    put_f32(w, a, "attention.layer_norm_rms_epsilon", c->rms_eps);
    if (experts > 0) { /* llama.cpp runs every layer sparse, normalized (and only Qwen3.5's with a shared
                          expert): refuse what it would compute otherwise */
        const cJSON *only = ck_cfg_get(c, "mlp_only_layers");
        if ((shared && !a->qwen35) || !ck_cfg_bool(c, "norm_topk_prob", a->qwen35) ||
            ck_cfg_int(c, "decoder_sparse_step", 1) != 1 || (cJSON_IsArray(only) && cJSON_GetArraySize(only) > 0))
            return ck_err(err, errlen, "a GGUF mixture of experts is sparse on every layer with normalized top-k "
                          "weights; this checkpoint is not (norm_topk_prob, decoder_sparse_step, mlp_only_layers, "
                          "shared experts)");
        put_u32(w, a, "expert_count", (int64_t)experts);
        put_u32(w, a, "expert_used_count", (int64_t)top_k);
        put_u32(w, a, "expert_feed_forward_length", (int64_t)ffn);
        if (shared) put_u32(w, a, "expert_shared_feed_forward_length", (int64_t)shared);
    }
    if (a->qwen35 && put_qwen35(w, a, c, err, errlen) != 0) return -1;
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

/* How a tensor's float values change on the way into GGUF (besides Llama's Q/K permutation). */
typedef struct layout {
    int64_t heads;           /* > 0: Q/K rows permuted for that many heads */
    int plus_one, neg_exp;   /* 1 + w (the (1 + w) norms); -exp(A_log) */
    uint64_t group, skip;    /* Qwen3.5's tiled value heads: groups of `group` rows (columns when cols) */
    uint64_t nk, nv;
    int cols;
} layout;

/* Qwen3.5's value-head groups (see ck_gguf_qwen35_groups) of f [rows, row] tiled into g: GGUF group p holds
 * HF group k * (nv / nk) + j, where p = j * nk + k. */
static void tile_groups(float *g, const float *f, uint64_t rows, uint64_t row, const layout *L) {
    uint64_t r = L->nv / L->nk, n = rows * row;
    memcpy(g, f, n * sizeof *f);
    for (uint64_t p = 0; p < L->nv; p++) {
        uint64_t hh = (p % L->nk) * r + p / L->nk;
        if (L->cols)
            for (uint64_t i = 0; i < rows; i++)
                memcpy(g + i * row + p * L->group, f + i * row + hh * L->group, L->group * sizeof *f);
        else
            memcpy(g + (L->skip + p * L->group) * row, f + (L->skip + hh * L->group) * row, L->group * row * sizeof *f);
    }
}

/* Qwen3.5's value heads, tiled in GGUF when there are more of them than key heads: L's groups for hf. */
static void value_head_groups(const ck_config *c, const char *hf, layout *L) {
    L->nk = (uint64_t)ck_cfg_int(c, "linear_num_key_heads", 0), L->nv = (uint64_t)ck_cfg_int(c, "linear_num_value_heads", 0);
    if (L->nk > 0 && L->nv > L->nk && L->nv % L->nk == 0)
        L->group = ck_gguf_qwen35_groups(hf, L->nk, (uint64_t)ck_cfg_int(c, "linear_key_head_dim", 0),
                                         (uint64_t)ck_cfg_int(c, "linear_value_head_dim", 0), &L->skip, &L->cols);
}

/* Converts tensor t ([rows, row] f32 after to_f32) into q as type out, with layout L. */
static int convert_rows(const ck_tensor *t, ck_dtype out, const layout *L, uint8_t *q, char *err, size_t errlen) {
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
    for (uint64_t i = 0; (L->plus_one || L->neg_exp) && i < n; i++) f[i] = L->plus_one ? 1.0f + f[i] : -expf(f[i]);
    if (L->heads > 0)
        ck_gguf_permute_rows((uint8_t *)g, (const uint8_t *)f, (size_t)L->heads, rows / (size_t)L->heads,
                             row * sizeof(float), 1);
    else if (L->group) {
        if ((L->cols ? row : rows) != (L->cols ? 0 : L->skip) + L->nv * L->group) {
            free(f), free(g);
            return ck_err(err, errlen, "a Qwen3.5 tensor's shape does not hold %llu value heads of %llu",
                          (unsigned long long)L->nv, (unsigned long long)L->group);
        }
        tile_groups(g, f, rows, row, L);
    }
    const float *src = L->heads > 0 || L->group ? g : f;
    long long nr = (long long)rows; /* rows are independent: quantized on every core (a K-quant fits scales) */
#pragma omp parallel for schedule(dynamic, 16)
    for (long long r = 0; r < nr; r++) tr->from_f32(q + (size_t)r * rb, src + (size_t)r * row, row);
    free(f), free(g);
    return 0;
}

/* Expert 0 of a projection brings all experts of its layer, stacked [E, rows, cols]; the others are
 * already written (returns 1 when hf is an expert weight and was handled). */
static int put_experts(ck_gguf_w *w, ck_weights *ws, const char *pre, const char *hf, const ck_config *c,
                       ck_dtype want, int *rc, char *err, size_t errlen) {
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
        snprintf(name, sizeof name, "%slayers.%ld.mlp.experts.%zu.%s", pre, layer, e, proj);
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
        layout plain = {0};
        if (*rc == 0) *rc = convert_rows(&t, out, &plain, q + e * per, err, errlen);
    }
    if (*rc == 0) {
        uint64_t ne[3] = {t.shape[1], t.shape[0], (uint64_t)E};
        ck_gguf_w_tensor(w, gname, ck_gguf_ggml_type(out), 3, ne, q, per * E);
    }
    free(q);
    return 1;
}

/* Tensor src of the checkpoint, named hf in the text model's terms (its language model's name: the
 * checkpoint's text model tensors are under `pre` instead of "model."). */
static int put_tensor(ck_gguf_w *w, ck_weights *ws, const char *pre, const char *src, const char *hf,
                      const ck_gguf_arch *a, const ck_config *c, ck_dtype want, char *err, size_t errlen) {
    char gname[256];
    ck_tensor t;
    int rc;
    if (put_experts(w, ws, pre, hf, c, want, &rc, err, errlen)) return rc;
    if (!ck_gguf_name_from_hf(a, hf, gname, sizeof gname))
        return ck_err(err, errlen, "tensor '%s' has no GGUF name (not part of a supported architecture)", src);
    if (ck_weights_find(ws, src, &t, err, errlen) != 1) return -1;
    int conv = a->qwen35 && t.ndim == 3 && t.shape[1] == 1 && strstr(hf, ".linear_attn.conv1d.weight");
    if (conv) t.ndim = 2, t.shape[1] = t.shape[2]; /* [C, 1, K] -> [C, K], kept in F32 as llama.cpp does */
    if (t.ndim < 1 || t.ndim > 2) return ck_err(err, errlen, "tensor '%s': %d dimensions (1 or 2 converted)", src, t.ndim);
    int router = strstr(hf, ".mlp.gate.weight") || strstr(hf, ".mlp.shared_expert_gate.weight"); /* kept in F32 */
    ck_dtype out = t.ndim == 1 || conv || router ? CK_F32 : fit_type(want, t.shape[t.ndim - 1]);
    ck_tensor rows_view = t; /* a vector (F32) as a column of one-value rows, so that its values move as rows */
    if (t.ndim == 1) rows_view.ndim = 2, rows_view.shape[1] = 1;
    uint64_t row = rows_view.shape[1], rows = rows_view.shape[0];
    layout L = {.heads = permute_heads(a, c, hf), .plus_one = ck_gguf_norm_plus_one(a, hf),
                .neg_exp = a->qwen35 && strstr(hf, ".linear_attn.A_log")};
    if (a->qwen35) value_head_groups(c, hf, &L);
    size_t rb = 0;
    ck_dtype_row_bytes(out, row, &rb);
    uint8_t *q = malloc(rows * rb + 1);
    rc = q ? convert_rows(&rows_view, out, &L, q, err, errlen) : ck_err(err, errlen, "out of memory");
    if (rc == 0) {
        uint64_t ne[CK_MAX_DIMS];
        for (int d = 0; d < t.ndim; d++) ne[d] = t.shape[t.ndim - 1 - d];
        ck_gguf_w_tensor(w, gname, ck_gguf_ggml_type(out), t.ndim, ne, q, rows * rb);
    }
    free(q);
    return rc;
}

/* A multimodal checkpoint's language model is written as its text architecture: its name, and its tensors'
 * names under "model." (NULL for the tensors of the other parts, which a GGUF model file does not hold). */
static const struct { const char *arch, *text, *prefix; const char *const skip[2]; } multimodal[] = {
    {"Qwen3_5ForConditionalGeneration", "Qwen3_5ForCausalLM", "model.language_model.", {"model.visual.", "mtp."}},
    {"Qwen3_5MoeForConditionalGeneration", "Qwen3_5MoeForCausalLM", "model.language_model.", {"model.visual.", "mtp."}},
};

static const char *text_name(int mm, const char *name, char *buf, size_t cap) {
    if (mm < 0) return name;
    for (int i = 0; i < 2; i++)
        if (!strncmp(name, multimodal[mm].skip[i], strlen(multimodal[mm].skip[i]))) return NULL;
    size_t pl = strlen(multimodal[mm].prefix);
    if (strncmp(name, multimodal[mm].prefix, pl)) return name;
    return snprintf(buf, cap, "model.%s", name + pl) < (int)cap ? buf : name;
}

static int convert(const char *dir, ck_gguf_w *w, ck_dtype want, char *err, size_t errlen) {
    ck_config c;
    ck_weights ws;
    if (ck_config_load(dir, &c, err, errlen) != 0) return -1;
    int mm = -1;
    for (int i = 0; i < (int)(sizeof multimodal / sizeof multimodal[0]); i++)
        if (!strcmp(c.arch, multimodal[i].arch)) mm = i;
    const ck_gguf_arch *a = ck_gguf_arch_by_hf(mm >= 0 ? multimodal[mm].text : c.arch);
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
        for (size_t i = 0; rc == 0 && i < ck_weights_count(&ws); i++) {
            char buf[512];
            const char *src = ck_weights_name(&ws, i), *hf = text_name(mm, src, buf, sizeof buf);
            if (hf) rc = put_tensor(w, &ws, mm >= 0 ? multimodal[mm].prefix : "model.", src, hf, a, &c, want, err, errlen);
        }
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
