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

int64_t ck_cfg_int(const ck_config *c, const char *key, int64_t def) {
    const cJSON *v = ck_cfg_get(c, key);
    if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble || fabs(v->valuedouble) > 9e15) return def;
    return (int64_t)v->valuedouble;
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

    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(c->root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) {
        ck_config_free(c);
        return ck_err(err, errlen, "config.json has no architectures[0]");
    }
    snprintf(c->arch, sizeof c->arch, "%s", a0->valuestring);
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
    c->sliding_window = ck_cfg_int(c, "sliding_window", 0);
    if (!ck_cfg_bool(c, "use_sliding_window", 1)) c->sliding_window = 0;
    c->bos_id = token_id(ck_cfg_get(c, "bos_token_id"));
    read_eos(ck_cfg_get(c, "eos_token_id"), c);

    struct { const char *name; int64_t v; } need[] = {
        {"vocab_size", c->vocab_size}, {"hidden_size", c->hidden_size},
        {"num_hidden_layers", c->n_layers}, {"num_attention_heads", c->n_heads},
        {"num_key_value_heads", c->n_kv_heads}, {"head_dim", c->head_dim},
        {"max_position_embeddings", c->max_pos},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (need[i].v <= 0 || need[i].v > (1LL << 31)) {
            int rc = ck_err(err, errlen, "config.json: %s missing or out of range", need[i].name);
            ck_config_free(c);
            return rc;
        }
    if (c->n_heads % c->n_kv_heads != 0) {
        int rc = ck_err(err, errlen, "config.json: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                        (long long)c->n_heads, (long long)c->n_kv_heads);
        ck_config_free(c);
        return rc;
    }
    if (!(c->rms_eps > 0)) {
        ck_config_free(c);
        return ck_err(err, errlen, "config.json: rms_norm_eps out of range");
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
    read_eos(cJSON_GetObjectItemCaseSensitive(g, "eos_token_id"), c);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(g, "bos_token_id");
    if (token_id(b) >= 0) c->bos_id = token_id(b);
    cJSON_Delete(g);
    return 0;
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
