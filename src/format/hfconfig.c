/* hfconfig.c — config.json / generation_config.json parsing (see hfconfig.h). */
#include "format/hfconfig.h"
#include "base/err.h"
#include "format/gguf_model.h"
#include "base/file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cJSON *ck_cfg_get(const ck_config *c, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->text, key);
    if (!v && c->text != c->root) v = cJSON_GetObjectItemCaseSensitive(c->root, key);
    return v;
}

/* An integral JSON number that int64 holds exactly. */
static int is_int(const cJSON *v) {
    return cJSON_IsNumber(v) && floor(v->valuedouble) == v->valuedouble && fabs(v->valuedouble) <= 9e15;
}

int64_t ck_cfg_int(const ck_config *c, const char *key, int64_t def) {
    const cJSON *v = ck_cfg_get(c, key);
    return is_int(v) ? (int64_t)v->valuedouble : def;
}

double ck_cfg_num(const ck_config *c, const char *key, double def) {
    const cJSON *v = ck_cfg_get(c, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

int ck_cfg_bool(const ck_config *c, const char *key, int def) {
    const cJSON *v = ck_cfg_get(c, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

const char *ck_cfg_str(const ck_config *c, const char *key, const char *def) {
    const cJSON *v = ck_cfg_get(c, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}

const char *ck_json_type_name(const cJSON *v, char *buf, size_t cap) {
    const char *name = "an object";
    if (cJSON_IsString(v)) name = "a string";
    else if (cJSON_IsNull(v)) name = "null";
    else if (cJSON_IsBool(v)) name = cJSON_IsTrue(v) ? "true" : "false";
    else if (cJSON_IsArray(v)) name = "a list";
    if (cJSON_IsNumber(v)) snprintf(buf, cap, "%.15g", v->valuedouble);
    else snprintf(buf, cap, "%s", name);
    return buf;
}

/* ---- the type of each key ---- */

typedef enum { T_INT, T_NUM, T_BOOL, T_STR, T_OBJ, T_INT_LIST, T_STR_LIST, T_IDS } key_type;

static const char *const type_words[] = {
    "an integer", "a number", "true or false", "a string", "an object", "a list of integers", "a list of strings",
    "a token id (or a list of them)",
};

/* Every key the model code reads from the text config, with the type it must have when present. Absent
 * keys take their defaults; null stands for absent only where HF treats None as "not set" (nullable).
 * sliding_window is read by read_sliding_window, the RoPE parameters by model/rope.c. */
static const struct { const char *key; key_type type; int nullable; } typed_keys[] = {
    {"model_type", T_STR, 0},           {"vocab_size", T_INT, 0},
    {"hidden_size", T_INT, 0},          {"intermediate_size", T_INT, 0},
    {"num_hidden_layers", T_INT, 0},    {"num_attention_heads", T_INT, 0},
    {"num_key_value_heads", T_INT, 1},  {"head_dim", T_INT, 1},
    {"max_position_embeddings", T_INT, 0}, {"rms_norm_eps", T_NUM, 0},
    {"tie_word_embeddings", T_BOOL, 0}, {"attention_bias", T_BOOL, 0},
    {"mlp_bias", T_BOOL, 0},            {"use_sliding_window", T_BOOL, 0},
    {"bos_token_id", T_NUM, 1},         {"eos_token_id", T_IDS, 1},
    {"hidden_act", T_STR, 1},           {"hidden_activation", T_STR, 1},
    {"layer_types", T_STR_LIST, 1},     {"rope_parameters", T_OBJ, 1},
    {"rope_scaling", T_OBJ, 1},         {"rope_local_base_freq", T_NUM, 0},
    {"query_pre_attn_scalar", T_NUM, 0}, {"attn_logit_softcapping", T_NUM, 1},
    {"final_logit_softcapping", T_NUM, 1},
    /* mixture of experts */
    {"num_experts", T_INT, 0},          {"num_local_experts", T_INT, 0},
    {"num_experts_per_tok", T_INT, 0},  {"moe_intermediate_size", T_INT, 0},
    {"shared_expert_intermediate_size", T_INT, 0}, {"norm_topk_prob", T_BOOL, 0},
    {"decoder_sparse_step", T_INT, 0},  {"mlp_only_layers", T_INT_LIST, 1},
    /* Gated DeltaNet (Qwen3.5) */
    {"linear_num_key_heads", T_INT, 0}, {"linear_num_value_heads", T_INT, 0},
    {"linear_key_head_dim", T_INT, 0},  {"linear_value_head_dim", T_INT, 0},
    {"linear_conv_kernel_dim", T_INT, 0}, {"full_attention_interval", T_INT, 0},
    {"attn_output_gate", T_BOOL, 0},    {"linear_out_proj_tiled", T_BOOL, 0},
};

static int is_list_of(const cJSON *v, int (*ok)(const cJSON *)) {
    if (!cJSON_IsArray(v)) return 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) if (!ok(e)) return 0;
    return 1;
}

static int is_num(const cJSON *v) { return cJSON_IsNumber(v); }
static int is_str(const cJSON *v) { return cJSON_IsString(v); }

static int has_type(const cJSON *v, key_type t) {
    switch (t) {
    case T_INT: return is_int(v);
    case T_NUM: return cJSON_IsNumber(v);
    case T_BOOL: return cJSON_IsBool(v);
    case T_STR: return cJSON_IsString(v);
    case T_OBJ: return cJSON_IsObject(v);
    case T_INT_LIST: return is_list_of(v, is_int);
    case T_STR_LIST: return is_list_of(v, is_str);
    case T_IDS: return cJSON_IsNumber(v) || is_list_of(v, is_num);
    }
    return 0;
}

/* v (the value of KEY in FILE, NULL when absent) is absent, null where allowed, or of type t. */
static int check_type(const cJSON *v, const char *file, const char *key, key_type t, int nullable, char *err,
                      size_t errlen) {
    char got[64];
    if (!v || (nullable && cJSON_IsNull(v)) || has_type(v, t)) return 0;
    return ck_err(err, errlen, "%s: %s must be %s%s (got %s)", file, key, type_words[t], nullable ? " or null" : "",
                  ck_json_type_name(v, got, sizeof got));
}

static int check_types(const ck_config *c, char *err, size_t errlen) {
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(c->root, "text_config");
    if (check_type(tc, "config.json", "text_config", T_OBJ, 1, err, errlen) != 0) return -1;
    for (size_t i = 0; i < sizeof typed_keys / sizeof typed_keys[0]; i++)
        if (check_type(ck_cfg_get(c, typed_keys[i].key), "config.json", typed_keys[i].key, typed_keys[i].type,
                       typed_keys[i].nullable, err, errlen) != 0)
            return -1;
    return 0;
}

/* sliding_window: a positive integer, or null / absent for no window. Ignored, as HF does, when
 * use_sliding_window is false: the Qwen families' default (their configs carry the key). */
static int read_sliding_window(ck_config *c, char *err, size_t errlen) {
    const cJSON *v = ck_cfg_get(c, "sliding_window");
    char got[64];
    c->sliding_window = 0;
    int qwen = !strncmp(c->arch, "Qwen2", 5) || !strncmp(c->arch, "Qwen3", 5);
    if (!ck_cfg_bool(c, "use_sliding_window", !qwen) || !v || cJSON_IsNull(v)) return 0;
    if (!is_int(v) || v->valuedouble < 1 || v->valuedouble > 2147483648.0)
        return ck_err(err, errlen, "config.json: sliding_window must be a positive integer or null (got %s)",
                      ck_json_type_name(v, got, sizeof got));
    c->sliding_window = (int64_t)v->valuedouble;
    return 0;
}

/* layer_types, when given: one entry per layer (the families check the entries' names). */
static int check_layer_types(const ck_config *c, char *err, size_t errlen) {
    const cJSON *lt = ck_cfg_get(c, "layer_types");
    if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) == c->n_layers) return 0;
    return ck_err(err, errlen, "config.json: layer_types has %d entries but num_hidden_layers is %lld",
                  cJSON_GetArraySize(lt), (long long)c->n_layers);
}

/* A token id: an integral JSON number in [0, 2^31); else -1. */
static int32_t token_id(const cJSON *v) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 2147483648.0) ||
        floor(v->valuedouble) != v->valuedouble)
        return -1;
    return (int32_t)v->valuedouble;
}

/* eos_token_id may be a number or a list of numbers; ids out of range are dropped. */
static void read_eos(const cJSON *v, ck_config *c) {
    if (cJSON_IsNumber(v)) {
        c->n_eos = 0;
        if (token_id(v) >= 0) c->eos_ids[c->n_eos++] = token_id(v);
    } else if (cJSON_IsArray(v)) {
        c->n_eos = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (token_id(e) >= 0 && c->n_eos < CK_MAX_EOS) c->eos_ids[c->n_eos++] = token_id(e);
    }
}

/* The fields of ck_config from the parsed root (c->root, c->text set). */
static int read_fields(ck_config *c, char *err, size_t errlen) {
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(c->root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) return ck_err(err, errlen, "config.json has no architectures[0]");
    snprintf(c->arch, sizeof c->arch, "%s", a0->valuestring);
    if (check_types(c, err, errlen) != 0) return -1;
    snprintf(c->model_type, sizeof c->model_type, "%s", ck_cfg_str(c, "model_type", ""));

    c->vocab_size = ck_cfg_int(c, "vocab_size", 0);
    c->hidden_size = ck_cfg_int(c, "hidden_size", 0);
    c->intermediate_size = ck_cfg_int(c, "intermediate_size", 0);
    c->n_layers = ck_cfg_int(c, "num_hidden_layers", 0);
    c->n_heads = ck_cfg_int(c, "num_attention_heads", 0);
    c->n_kv_heads = ck_cfg_int(c, "num_key_value_heads", c->n_heads);
    c->head_dim = ck_cfg_int(c, "head_dim", 0);
    if (c->head_dim == 0 && c->n_heads > 0) c->head_dim = c->hidden_size / c->n_heads;
    c->max_pos = ck_cfg_int(c, "max_position_embeddings", 4096);
    c->rms_eps = ck_cfg_num(c, "rms_norm_eps", 1e-6);
    c->tie_embeddings = ck_cfg_bool(c, "tie_word_embeddings", 0);
    c->attention_bias = ck_cfg_bool(c, "attention_bias", 0);
    c->bos_id = token_id(ck_cfg_get(c, "bos_token_id"));
    read_eos(ck_cfg_get(c, "eos_token_id"), c);

    struct { const char *name; int64_t v; } need[] = {
        {"vocab_size", c->vocab_size}, {"hidden_size", c->hidden_size},
        {"num_hidden_layers", c->n_layers}, {"num_attention_heads", c->n_heads},
        {"num_key_value_heads", c->n_kv_heads}, {"head_dim", c->head_dim},
        {"max_position_embeddings", c->max_pos},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (need[i].v <= 0 || need[i].v > (1LL << 31))
            return ck_err(err, errlen, "config.json: %s missing or out of range", need[i].name);
    /* optional (a model whose every MLP is a mixture of experts has none), but positive when given */
    if (ck_cfg_get(c, "intermediate_size") && (c->intermediate_size <= 0 || c->intermediate_size > (1LL << 31)))
        return ck_err(err, errlen, "config.json: intermediate_size out of range (%lld)", (long long)c->intermediate_size);
    if (c->n_heads % c->n_kv_heads != 0)
        return ck_err(err, errlen, "config.json: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                      (long long)c->n_heads, (long long)c->n_kv_heads);
    if (!(c->rms_eps > 0)) return ck_err(err, errlen, "config.json: rms_norm_eps out of range");
    if (read_sliding_window(c, err, errlen) != 0) return -1;
    return check_layer_types(c, err, errlen);
}

int ck_config_parse(const char *json, size_t len, ck_config *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(c->root)) {
        ck_config_free(c);
        return ck_err(err, errlen, "config.json is not a JSON object");
    }
    c->text = c->root;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(c->root, "text_config");
    if (cJSON_IsObject(tc)) c->text = tc;
    if (read_fields(c, err, errlen) != 0) {
        ck_config_free(c);
        return -1;
    }
    return 0;
}

/* Size limits: both files are a few KB in real checkpoints; the limits only stop a runaway read. */
#define CONFIG_MAX_BYTES ((size_t)4 << 20)
#define GENERATION_CONFIG_MAX_BYTES ((size_t)1 << 20)

/* Applies DIR/generation_config.json (optional: absent is fine, present but unreadable is an error). */
static int load_generation_config(const char *dir, ck_config *c, char *err, size_t errlen) {
    char path[4096];
    char *text;
    size_t len;
    if (ck_path_join(path, sizeof path, dir, "generation_config.json", err, errlen) != 0) return -1;
    if (!ck_path_exists_any(path)) return 0;
    if (ck_file_read_max(path, GENERATION_CONFIG_MAX_BYTES, &text, &len, err, errlen) != 0) return -1;
    cJSON *g = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(g)) {
        cJSON_Delete(g);
        return ck_err(err, errlen, "%s: not a JSON object", path);
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(g, "eos_token_id");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(g, "bos_token_id");
    int rc = check_type(e, path, "eos_token_id", T_IDS, 1, err, errlen);
    if (rc == 0) rc = check_type(b, path, "bos_token_id", T_NUM, 1, err, errlen);
    if (rc == 0) {
        read_eos(e, c);
        if (token_id(b) >= 0) c->bos_id = token_id(b);
    }
    cJSON_Delete(g);
    return rc;
}

/* config.json made from a GGUF file's metadata (gguf_model.h). */
static int load_gguf_config(const char *path, ck_config *c, char *err, size_t errlen) {
    ck_gguf_file f;
    char *json, why[512];
    if (ck_gguf_open(path, &f, err, errlen) != 0) return -1;
    int rc = ck_gguf_config_json(&f.g, &json, why, sizeof why);
    ck_gguf_close(&f);
    if (rc == 0) rc = ck_config_parse(json, strlen(json), c, why, sizeof why);
    free(json);
    return rc == 0 ? 0 : ck_err(err, errlen, "%s: %s", path, why);
}

int ck_config_load(const char *dir, ck_config *c, char *err, size_t errlen) {
    char path[4096], why[512];
    char *text;
    size_t len;
    int gguf = ck_gguf_locate(dir, path, sizeof path, err, errlen);
    if (gguf != 0) return gguf < 0 ? -1 : load_gguf_config(path, c, err, errlen);
    if (ck_path_join(path, sizeof path, dir, "config.json", err, errlen) != 0) return -1;
    if (ck_file_read_max(path, CONFIG_MAX_BYTES, &text, &len, err, errlen) != 0) return -1;
    int rc = ck_config_parse(text, len, c, why, sizeof why);
    free(text);
    if (rc != 0) return ck_err(err, errlen, "%s: %s", path, why);
    if (load_generation_config(dir, c, err, errlen) != 0) {
        ck_config_free(c);
        return -1;
    }
    return 0;
}

void ck_config_free(ck_config *c) {
    cJSON_Delete(c->root);
    c->root = NULL;
    c->text = NULL;
}
