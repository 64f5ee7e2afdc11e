/* hfconfig.h — the fields of an HF config.json (and generation_config.json) that the model code needs.
 * Fields may sit at the top level or under `text_config` (multimodal checkpoints); `text` points at the
 * object that holds them so family code can read extra fields with ck_cfg_*(). RoPE parameters are read
 * by model/rope.c.
 * Invariants after ck_config_load(): every size is positive and head counts divide evenly
 * (intermediate_size may be 0: absent, for models whose every MLP is a mixture of experts); every key the
 * model code reads (the table in hfconfig.c) is absent, null where HF allows it, or of its type — a value
 * of another type is an error naming the key, never its default; sliding_window is positive or 0 (none);
 * layer_types, when given, has one entry per layer. */
#ifndef CK_FORMAT_HFCONFIG_H
#define CK_FORMAT_HFCONFIG_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define CK_MAX_EOS 8

typedef struct ck_config {
    char arch[96];            /* architectures[0] */
    char model_type[48];
    int64_t vocab_size, hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, head_dim;
    int64_t max_pos;          /* max_position_embeddings */
    double rms_eps;
    int tie_embeddings;
    int attention_bias;
    int64_t sliding_window;   /* 0 = none */
    int32_t bos_id;           /* -1 when absent */
    int32_t eos_ids[CK_MAX_EOS];
    int n_eos;
    cJSON *root;              /* the parsed config.json, owned */
    const cJSON *text;        /* root or root.text_config */
} ck_config;

/* Loads DIR/config.json and, when present, DIR/generation_config.json (EOS ids there win). Either file
 * present but not a regular file (FIFO, directory, broken link, device) or over its size limit is an error. */
int ck_config_load(const char *dir, ck_config *c, char *err, size_t errlen);
/* Parses config.json text (pure; for tests and fuzzing). */
int ck_config_parse(const char *json, size_t len, ck_config *c, char *err, size_t errlen);
void ck_config_free(ck_config *c);

/* Extra fields of the text config: the value, or def when absent or null. A key read through these must be
 * in hfconfig.c's table of typed keys, so that ck_config_parse() refuses a value of another type. */
int64_t ck_cfg_int(const ck_config *c, const char *key, int64_t def);
double ck_cfg_num(const ck_config *c, const char *key, double def);
int ck_cfg_bool(const ck_config *c, const char *key, int def);
const char *ck_cfg_str(const ck_config *c, const char *key, const char *def);
const cJSON *ck_cfg_get(const ck_config *c, const char *key);
/* A JSON value's type for error messages ("a string", "null", "a list", ...; a number as itself), in buf. */
const char *ck_json_type_name(const cJSON *v, char *buf, size_t cap);

#endif
