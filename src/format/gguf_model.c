/* gguf_model.c — a GGUF file as an HF checkpoint (see gguf_model.h): the architecture and name tables,
 * config.json from the metadata, and the weights under HF names with Llama's Q/K rows un-permuted. */
#include "format/gguf_model.h"
#include "base/err.h"
#include "base/file.h"
#include "tensor/dtype.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ck_gguf_arch archs[] = {
    {"llama", "LlamaForCausalLM", "llama", 1, 0, 0, 1},
    {"qwen2", "Qwen2ForCausalLM", "qwen2", 0, 0, 0, 1},
    {"qwen3", "Qwen3ForCausalLM", "qwen3", 0, 0, 0, 1},
    {"qwen3moe", "Qwen3MoeForCausalLM", "qwen3_moe", 0, 0, 0, 1},
    {"qwen35", "Qwen3_5ForCausalLM", "qwen3_5_text", 0, 1, 1, 1},
    {"qwen35moe", "Qwen3_5MoeForCausalLM", "qwen3_5_moe_text", 0, 1, 1, 1},
    {"phi3", "Phi3ForCausalLM", "phi3", 0, 0, 0, 0},
    {"olmo2", "Olmo2ForCausalLM", "olmo2", 0, 0, 0, 0},
    {"exaone4", "Exaone4ForCausalLM", "exaone4", 0, 0, 0, 0},
    {"gemma3", "Gemma3ForCausalLM", "gemma3_text", 0, 0, 1, 0},
};
#define N_ARCHS (sizeof archs / sizeof archs[0])

const ck_gguf_arch *ck_gguf_arch_by_gguf(const char *name, size_t len) {
    for (size_t i = 0; i < N_ARCHS; i++)
        if (strlen(archs[i].gguf) == len && !memcmp(archs[i].gguf, name, len)) return &archs[i];
    return NULL;
}

const ck_gguf_arch *ck_gguf_arch_by_hf(const char *hf) {
    for (size_t i = 0; i < N_ARCHS; i++)
        if (!strcmp(archs[i].hf, hf)) return &archs[i];
    return NULL;
}

const char *ck_gguf_archs_supported(void) {
    return "llama, qwen2, qwen3, qwen3moe, qwen35, qwen35moe, phi3, olmo2, exaone4, gemma3";
}

const char ck_gguf_pre_qwen2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
                                 "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Qwen3.5's: letters and combining marks together ([\p{L}\p{M}]+) */
const char ck_gguf_pre_qwen35[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}"
                                  "\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char ck_gguf_pre_llama3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
                                  "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ---- tensor names ---- */

static const char *const global_names[][2] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

/* per layer: "blk.N." + gguf  <->  "model.layers.N." + hf, for every architecture or only those whose name
 * starts with `arch` (listed first: they win over the general pair of the same name). In the HF -> GGUF
 * direction the first pair of an HF name is the one written. */
static const struct { const char *g, *h, *arch; } layer_names[] = {
    /* Gemma 3: four norms a layer */
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight", "gemma3"},
    /* Phi-3: fused projections */
    {"attn_qkv.weight", "self_attn.qkv_proj.weight", "phi3"},
    {"ffn_up.weight", "mlp.gate_up_proj.weight", "phi3"},
    /* Qwen3.5's Gated DeltaNet layers (qwen35, qwen35moe) */
    {"attn_qkv.weight", "linear_attn.in_proj_qkv.weight", "qwen35"},
    {"attn_gate.weight", "linear_attn.in_proj_z.weight", "qwen35"},
    {"ssm_alpha.weight", "linear_attn.in_proj_a.weight", "qwen35"},
    {"ssm_beta.weight", "linear_attn.in_proj_b.weight", "qwen35"},
    {"ssm_conv1d.weight", "linear_attn.conv1d.weight", "qwen35"},
    {"ssm_a", "linear_attn.A_log", "qwen35"},
    {"ssm_dt.bias", "linear_attn.dt_bias", "qwen35"},
    {"ssm_norm.weight", "linear_attn.norm.weight", "qwen35"},
    {"ssm_out.weight", "linear_attn.out_proj.weight", "qwen35"},
    {"attn_norm.weight", "input_layernorm.weight", NULL},
    {"post_attention_norm.weight", "post_attention_layernorm.weight", "qwen35"}, /* (written so for qwen35) */
    {"ffn_norm.weight", "post_attention_layernorm.weight", NULL},
    {"post_attention_norm.weight", "post_attention_layernorm.weight", NULL}, /* post-norm and qwen35 files */
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight", NULL},
    {"attn_q.weight", "self_attn.q_proj.weight", NULL},
    {"attn_q.bias", "self_attn.q_proj.bias", NULL},
    {"attn_k.weight", "self_attn.k_proj.weight", NULL},
    {"attn_k.bias", "self_attn.k_proj.bias", NULL},
    {"attn_v.weight", "self_attn.v_proj.weight", NULL},
    {"attn_v.bias", "self_attn.v_proj.bias", NULL},
    {"attn_output.weight", "self_attn.o_proj.weight", NULL},
    {"attn_output.bias", "self_attn.o_proj.bias", NULL},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", NULL},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", NULL},
    {"ffn_gate.weight", "mlp.gate_proj.weight", NULL},
    {"ffn_up.weight", "mlp.up_proj.weight", NULL},
    {"ffn_down.weight", "mlp.down_proj.weight", NULL},
    {"ffn_gate_inp.weight", "mlp.gate.weight", NULL},
    {"ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj.weight", NULL},
    {"ffn_up_shexp.weight", "mlp.shared_expert.up_proj.weight", NULL},
    {"ffn_down_shexp.weight", "mlp.shared_expert.down_proj.weight", NULL},
    {"ffn_gate_inp_shexp.weight", "mlp.shared_expert_gate.weight", NULL},
};

/* Mixture-of-experts projections: one GGUF tensor [E, rows, cols] per layer holds expert e's weight
 * "model.layers.N.mlp.experts.e." + hf at slice e. */
static const char *const expert_names[][2] = {
    {"ffn_gate_exps.weight", "gate_proj.weight"},
    {"ffn_up_exps.weight", "up_proj.weight"},
    {"ffn_down_exps.weight", "down_proj.weight"},
};
#define N_EXPERT (sizeof expert_names / sizeof expert_names[0])

#define N_GLOBAL (sizeof global_names / sizeof global_names[0])
#define N_LAYER (sizeof layer_names / sizeof layer_names[0])

static int row_applies(const char *row_arch, const ck_gguf_arch *a) {
    return !row_arch || (a && !strncmp(a->gguf, row_arch, strlen(row_arch)));
}

/* from = 0: GGUF -> HF; 1: HF -> GGUF, for architecture a (NULL: the general pairs only) */
static int map_name(const ck_gguf_arch *a, const char *in, int from, char *out, size_t cap) {
    static const char *const prefix[2] = {"blk.", "model.layers."};
    for (size_t i = 0; i < N_GLOBAL; i++)
        if (!strcmp(in, global_names[i][from])) return snprintf(out, cap, "%s", global_names[i][!from]) < (int)cap;
    size_t pl = strlen(prefix[from]);
    if (strncmp(in, prefix[from], pl) || in[pl] < '0' || in[pl] > '9') return 0;
    char *end;
    long layer = strtol(in + pl, &end, 10);
    if (*end != '.' || layer < 0 || layer > 1000000) return 0;
    for (size_t i = 0; i < N_LAYER; i++) {
        const char *mine = from ? layer_names[i].h : layer_names[i].g, *other = from ? layer_names[i].g : layer_names[i].h;
        if (row_applies(layer_names[i].arch, a) && !strcmp(end + 1, mine))
            return snprintf(out, cap, "%s%ld.%s", prefix[!from], layer, other) < (int)cap;
    }
    return 0;
}

int ck_gguf_expert_name(const char *g, uint64_t e, char *out, size_t cap) {
    char *end;
    if (strncmp(g, "blk.", 4) || g[4] < '0' || g[4] > '9') return 0;
    long layer = strtol(g + 4, &end, 10);
    for (size_t i = 0; *end == '.' && layer <= 1000000 && i < N_EXPERT; i++)
        if (!strcmp(end + 1, expert_names[i][0]))
            return snprintf(out, cap, "model.layers.%ld.mlp.experts.%llu.%s", layer, (unsigned long long)e,
                            expert_names[i][1]) < (int)cap;
    return 0;
}

int ck_gguf_expert_from_hf(const char *h, long *layer, long *expert, char *out, size_t cap) {
    char *end, *end2;
    static const char pre[] = "model.layers.";
    if (strncmp(h, pre, sizeof pre - 1)) return 0;
    *layer = strtol(h + sizeof pre - 1, &end, 10);
    if (strncmp(end, ".mlp.experts.", 13) || end[13] < '0' || end[13] > '9') return 0;
    *expert = strtol(end + 13, &end2, 10);
    for (size_t i = 0; *end2 == '.' && i < N_EXPERT; i++)
        if (!strcmp(end2 + 1, expert_names[i][1]))
            return snprintf(out, cap, "blk.%ld.%s", *layer, expert_names[i][0]) < (int)cap;
    return 0;
}

int ck_gguf_name_to_hf(const ck_gguf_arch *a, const char *g, char *out, size_t cap) { return map_name(a, g, 0, out, cap); }
int ck_gguf_name_from_hf(const ck_gguf_arch *a, const char *h, char *out, size_t cap) {
    return map_name(a, h, 1, out, cap);
}

void ck_gguf_permute_rows(uint8_t *dst, const uint8_t *src, size_t n_heads, size_t hd, size_t rb, int to_gguf) {
    for (size_t h = 0; h < n_heads; h++)
        for (size_t half = 0; half < 2; half++)
            for (size_t j = 0; j < hd / 2; j++) {
                size_t hf = h * hd + half * (hd / 2) + j, gg = h * hd + 2 * j + half;
                memcpy(dst + (to_gguf ? gg : hf) * rb, src + (to_gguf ? hf : gg) * rb, rb);
            }
}

/* ---- locating the file ---- */

/* 1 when the file starts with GGUF's magic, 0 when not (shorter files included), -1 (err) when it cannot
 * be read. */
static int has_magic(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return ck_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
    char m[4] = {0};
    int ok = fread(m, 1, 4, f) == 4 && !memcmp(m, "GGUF", 4);
    fclose(f);
    return ok;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int ck_gguf_locate(const char *path, char *out, size_t cap, char *err, size_t errlen) {
    if (ck_is_file(path)) {
        int magic = has_magic(path, err, errlen);
        if (magic <= 0)
            return magic < 0 ? -1 : ck_err(err, errlen, "%s is not a model: not a GGUF file (bad magic) and not a "
                                           "directory", path);
        return snprintf(out, cap, "%s", path) < (int)cap ? 1 : ck_err(err, errlen, "path too long: %s", path);
    }
    char cfg[4096];
    if (!ck_is_dir(path) || ck_path_join(cfg, sizeof cfg, path, "config.json", NULL, 0) != 0 || ck_path_exists_any(cfg))
        return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".gguf")) continue;
        if (found++) {
            closedir(d);
            return ck_err(err, errlen, "%s holds several .gguf files: name the one to load", path);
        }
        if (ck_path_join(out, cap, path, e->d_name, err, errlen) != 0) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return found;
}

/* ---- config.json from the metadata ---- */

/* {arch}.suffix as an integer / number */
static int arch_int(const ck_gguf *g, const char *arch, const char *suffix, int64_t *v) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ck_gguf_int(g, key, v);
}

/* {arch}.suffix as a finite number: 1 when present, 0 when absent (v untouched), -1 (err names the key) when
 * of another type, NaN or infinite. */
static int arch_num(const ck_gguf *g, const char *arch, const char *suffix, double *v, char *err, size_t errlen) {
    char key[160];
    double d;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!ck_gguf_find(g, key)) return 0;
    if (!ck_gguf_num(g, key, &d)) return ck_err(err, errlen, "GGUF: %s must be a number", key);
    if (!isfinite(d)) return ck_err(err, errlen, "GGUF: %s is %g, not a finite number", key, d);
    *v = d;
    return 1;
}

/* Whether the attention projections have biases (beyond Qwen2, whose q/k/v biases are its architecture's,
 * HF's attention_bias: on q, k, v and o together). */
static int has_attn_bias(const ck_gguf *g) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (ends_with(g->tensors[i].name, ".attn_q.bias") || ends_with(g->tensors[i].name, ".attn_output.bias")) return 1;
    return 0;
}

static int64_t vocab_size(const ck_gguf *g, const char *arch) {
    int64_t v;
    if (arch_int(g, arch, "vocab_size", &v)) return v;
    const ck_gguf_tensor *e = ck_gguf_tensor_named(g, "token_embd.weight");
    if (e && e->n_dims == 2) return (int64_t)e->ne[1];
    const ck_gguf_kv *t = ck_gguf_find(g, "tokenizer.ggml.tokens");
    return t ? (int64_t)t->n : 0;
}

static int add_rope(const ck_gguf *g, const char *arch, cJSON *root, char *err, size_t errlen) {
    double theta = 10000.0, factor = 1.0;
    if (arch_num(g, arch, "rope.freq_base", &theta, err, errlen) < 0) return -1;
    cJSON *rp = cJSON_AddObjectToObject(root, "rope_parameters");
    cJSON_AddNumberToObject(rp, "rope_theta", theta);
    char key[160];
    ck_gguf_str type = {"none", 4};
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    ck_gguf_string(g, key, &type);
    int has_factor = arch_num(g, arch, "rope.scaling.factor", &factor, err, errlen);
    if (has_factor < 0) return -1;
    if (ck_gguf_str_eq(type, "linear") && has_factor) {
        cJSON_AddStringToObject(rp, "rope_type", "linear");
        cJSON_AddNumberToObject(rp, "factor", factor);
    } else if (!ck_gguf_str_eq(type, "none") && !ck_gguf_str_eq(type, "linear")) {
        return ck_err(err, errlen, "GGUF: RoPE scaling '%.*s' is not supported (none, linear)", (int)type.len, type.p);
    } else {
        cJSON_AddStringToObject(rp, "rope_type", "default");
    }
    const ck_gguf_tensor *ff = ck_gguf_tensor_named(g, "rope_freqs.weight"); /* per-pair divisors (Llama 3 scaling) */
    if (ff) {
        if (ff->ggml_type != 0 || ff->n_dims != 1 || ff->ne[0] > 4096)
            return ck_err(err, errlen, "GGUF: rope_freqs.weight must be a 1-D F32 tensor");
        cJSON *a = cJSON_AddArrayToObject(rp, "freq_factors");
        for (uint64_t i = 0; i < ff->ne[0]; i++) {
            float f;
            memcpy(&f, ff->data + 4 * i, 4);
            cJSON_AddItemToArray(a, cJSON_CreateNumber(f));
        }
    }
    return 0;
}

static void add_special_ids(const ck_gguf *g, cJSON *root) {
    int64_t v;
    if (ck_gguf_int(g, "tokenizer.ggml.bos_token_id", &v)) cJSON_AddNumberToObject(root, "bos_token_id", (double)v);
    cJSON *eos = cJSON_AddArrayToObject(root, "eos_token_id");
    int64_t e = -1;
    if (ck_gguf_int(g, "tokenizer.ggml.eos_token_id", &e)) cJSON_AddItemToArray(eos, cJSON_CreateNumber((double)e));
    if (ck_gguf_int(g, "tokenizer.ggml.eot_token_id", &v) && v != e)
        cJSON_AddItemToArray(eos, cJSON_CreateNumber((double)v));
}

/* Qwen3.5 with tiled value heads (n_v > n_k): 1 when an ssm_out tensor's type has blocks that do not
 * divide a value head's dv columns, so its head column groups cannot move into HF order without breaking
 * blocks. Every ssm_out of such a file then stays as stored and the model reads out_proj's input in the
 * file's head order (config.json "linear_out_proj_tiled"); other files keep HF order throughout. */
static int ssm_out_tiled(const ck_gguf *g, int64_t nk, int64_t nv, int64_t dv) {
    if (nk <= 0 || nv <= nk || nv % nk || dv <= 0) return 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        const ck_gguf_tensor *t = &g->tensors[i];
        const ck_dtype_traits *tr = t->dtype >= 0 ? ck_dtype_traits_of((ck_dtype)t->dtype) : NULL;
        if (tr && !strncmp(t->name, "blk.", 4) && ends_with(t->name, ".ssm_out.weight") && (uint64_t)dv % tr->block)
            return 1;
    }
    return 0;
}

/* Qwen3.5's DeltaNet sizes and layer pattern (every full_attention_interval-th layer is full attention). */
static int add_qwen35(const ck_gguf *g, const char *arch, int64_t layers, int64_t head_dim, cJSON *root, char *err,
                      size_t errlen) {
    int64_t K, dk, nk, nv, inner, every = 4;
    if (!arch_int(g, arch, "ssm.conv_kernel", &K) || !arch_int(g, arch, "ssm.state_size", &dk) ||
        !arch_int(g, arch, "ssm.group_count", &nk) || !arch_int(g, arch, "ssm.time_step_rank", &nv) ||
        !arch_int(g, arch, "ssm.inner_size", &inner) || nv <= 0 || inner % nv || head_dim <= 0)
        return ck_err(err, errlen, "GGUF: %s.ssm.conv_kernel, .state_size, .group_count, .time_step_rank and "
                      ".inner_size (a multiple of time_step_rank) and a head size are required", arch);
    arch_int(g, arch, "full_attention_interval", &every);
    if (every <= 0 || layers <= 0 || layers > 100000)
        return ck_err(err, errlen, "GGUF: %s.full_attention_interval / block_count out of range", arch);
    cJSON_AddNumberToObject(root, "linear_conv_kernel_dim", (double)K);
    cJSON_AddNumberToObject(root, "linear_key_head_dim", (double)dk);
    cJSON_AddNumberToObject(root, "linear_num_key_heads", (double)nk);
    cJSON_AddNumberToObject(root, "linear_num_value_heads", (double)nv);
    cJSON_AddNumberToObject(root, "linear_value_head_dim", (double)(inner / nv));
    cJSON_AddNumberToObject(root, "full_attention_interval", (double)every);
    if (ssm_out_tiled(g, nk, nv, inner / nv)) cJSON_AddBoolToObject(root, "linear_out_proj_tiled", 1);
    cJSON *lt = cJSON_AddArrayToObject(root, "layer_types");
    for (int64_t i = 0; i < layers; i++)
        cJSON_AddItemToArray(lt, cJSON_CreateString((i + 1) % every ? "linear_attention" : "full_attention"));
    return 0;
}

/* A sliding window and which layers use it, as llama.cpp reads them: {arch}.attention.sliding_window_pattern
 * is a per-layer array (true = sliding; EXAONE 4) or a period p (layer i slides unless i % p == p - 1; 0:
 * every layer), which Gemma 3 files may omit for llama.cpp's default of 6. A window of 0 is none. Other
 * architectures' files carry no window. */
static int add_sliding(const ck_gguf *g, const char *arch, int64_t layers, cJSON *root, char *err, size_t errlen) {
    int64_t swa = 0, period = 6;
    char key[160];
    snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", arch);
    const ck_gguf_kv *pat = ck_gguf_find(g, key);
    int gemma = !strcmp(arch, "gemma3");
    if (!arch_int(g, arch, "attention.sliding_window", &swa) || swa <= 0) return 0;
    if (!pat && !gemma) {
        if (!strcmp(arch, "exaone4"))
            return ck_err(err, errlen, "GGUF: %s.attention.sliding_window without its sliding_window_pattern", arch);
        return 0;
    }
    int arr = pat && pat->type == CK_GGUF_ARRAY;
    if ((arr && pat->n != (uint64_t)layers) || (pat && !arr && (!ck_gguf_int(g, key, &period) || period < 0)))
        return ck_err(err, errlen, "GGUF: %s must be one value per layer (%lld) or a period", key, (long long)layers);
    cJSON_AddNumberToObject(root, "sliding_window", (double)swa);
    cJSON *lt = cJSON_AddArrayToObject(root, "layer_types");
    for (int64_t i = 0; i < layers; i++) {
        int slide = arr ? ck_gguf_arr_int(pat, (uint64_t)i) != 0 : period == 0 || i % period < period - 1;
        cJSON_AddItemToArray(lt, cJSON_CreateString(slide ? "sliding_attention" : "full_attention"));
    }
    return 0;
}

/* Gemma 3 as llama.cpp computes it: RoPE bases per layer kind (rope.freq_base_swa, default 10000, for the
 * sliding layers), the attention scale 1/sqrt(head_dim) except for the 62-layer 27B (1/sqrt(hidden /
 * heads)), and the final logit soft-cap when the file has one. */
static int add_gemma3(const ck_gguf *g, const char *arch, int64_t layers, int64_t hidden, int64_t heads,
                      int64_t head_dim, cJSON *root, char *err, size_t errlen) {
    double base = 1000000.0, swa_base = 10000.0, cap = 0;
    if (arch_num(g, arch, "rope.freq_base", &base, err, errlen) < 0 ||
        arch_num(g, arch, "rope.freq_base_swa", &swa_base, err, errlen) < 0 ||
        arch_num(g, arch, "final_logit_softcapping", &cap, err, errlen) < 0)
        return -1;
    cJSON *rp = cJSON_AddObjectToObject(root, "rope_parameters");
    cJSON *full = cJSON_AddObjectToObject(rp, "full_attention"), *slide = cJSON_AddObjectToObject(rp, "sliding_attention");
    cJSON_AddNumberToObject(full, "rope_theta", base);
    cJSON_AddStringToObject(full, "rope_type", "default");
    cJSON_AddNumberToObject(slide, "rope_theta", swa_base);
    cJSON_AddStringToObject(slide, "rope_type", "default");
    cJSON_AddNumberToObject(root, "query_pre_attn_scalar",
                            (double)(layers == 62 && heads > 0 ? hidden / heads : head_dim));
    if (cap > 0) cJSON_AddNumberToObject(root, "final_logit_softcapping", cap);
    return 0;
}

/* {arch}.suffix's value v within [1, 2^31] (what config.json's sizes may be), else an error naming the key. */
static int in_range(const char *arch, const char *suffix, int64_t v, char *err, size_t errlen) {
    if (v >= 1 && v <= (1LL << 31)) return 0;
    return ck_err(err, errlen, "GGUF: %s.%s = %lld is out of range", arch, suffix, (long long)v);
}

/* No tensor of a block beyond {arch}.block_count (the model would run on part of the file). */
static int check_blocks(const ck_gguf *g, const char *arch, int64_t layers, char *err, size_t errlen) {
    for (size_t i = 0; i < g->n_tensors; i++) {
        const char *name = g->tensors[i].name;
        if (strncmp(name, "blk.", 4) || name[4] < '0' || name[4] > '9') continue;
        long long b = strtoll(name + 4, NULL, 10);
        if (b >= layers)
            return ck_err(err, errlen, "GGUF: tensor '%s' is of block %lld but %s.block_count = %lld", name, b, arch,
                          (long long)layers);
    }
    return 0;
}

static int fill_config(const ck_gguf *g, cJSON *root, char *err, size_t errlen) {
    ck_gguf_str an;
    if (!ck_gguf_string(g, "general.architecture", &an)) return ck_err(err, errlen, "GGUF: no general.architecture");
    const ck_gguf_arch *a = ck_gguf_arch_by_gguf(an.p, (size_t)an.len);
    if (!a)
        return ck_err(err, errlen, "GGUF architecture '%.*s' is not supported; supported: %s", (int)(an.len > 64 ? 64 : an.len),
                      an.p, ck_gguf_archs_supported());
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "architectures"), cJSON_CreateString(a->hf));
    cJSON_AddStringToObject(root, "model_type", a->model_type);
    int64_t layers, hidden, ffn = 0, heads, kv_heads, head_dim, ctx = 4096, experts = 0;
    double eps = 0;
    arch_int(g, a->gguf, "expert_count", &experts);
    int has_eps = arch_num(g, a->gguf, "attention.layer_norm_rms_epsilon", &eps, err, errlen);
    if (has_eps < 0) return -1;
    if (!arch_int(g, a->gguf, "block_count", &layers) || !arch_int(g, a->gguf, "embedding_length", &hidden) ||
        (!arch_int(g, a->gguf, "feed_forward_length", &ffn) && !(a->qwen35 && experts > 0)) ||
        !arch_int(g, a->gguf, "attention.head_count", &heads) || !has_eps)
        return ck_err(err, errlen, "GGUF: %s.block_count, .embedding_length, .feed_forward_length, "
                      ".attention.head_count and .attention.layer_norm_rms_epsilon are required", a->gguf);
    if (ffn < 0 || (ffn == 0 && experts <= 0))
        return ck_err(err, errlen, "GGUF: %s.feed_forward_length must be positive (got %lld)", a->gguf, (long long)ffn);
    if (!arch_int(g, a->gguf, "attention.head_count_kv", &kv_heads)) kv_heads = heads;
    if (!arch_int(g, a->gguf, "attention.key_length", &head_dim)) head_dim = heads > 0 ? hidden / heads : 0;
    arch_int(g, a->gguf, "context_length", &ctx);
    if (in_range(a->gguf, "block_count", layers, err, errlen) || in_range(a->gguf, "embedding_length", hidden, err, errlen) ||
        in_range(a->gguf, "attention.head_count", heads, err, errlen) ||
        in_range(a->gguf, "attention.head_count_kv", kv_heads, err, errlen) ||
        in_range(a->gguf, "attention.key_length", head_dim, err, errlen) ||
        in_range(a->gguf, "context_length", ctx, err, errlen) || check_blocks(g, a->gguf, layers, err, errlen))
        return -1;
    if (heads % kv_heads)
        return ck_err(err, errlen, "GGUF: %s.attention.head_count %lld is not a multiple of .head_count_kv %lld", a->gguf,
                      (long long)heads, (long long)kv_heads);
    cJSON_AddNumberToObject(root, "num_hidden_layers", (double)layers);
    cJSON_AddNumberToObject(root, "hidden_size", (double)hidden);
    if (ffn > 0) cJSON_AddNumberToObject(root, "intermediate_size", (double)ffn); /* else every MLP has experts */
    cJSON_AddNumberToObject(root, "num_attention_heads", (double)heads);
    cJSON_AddNumberToObject(root, "num_key_value_heads", (double)kv_heads);
    cJSON_AddNumberToObject(root, "head_dim", (double)head_dim);
    cJSON_AddNumberToObject(root, "max_position_embeddings", (double)ctx);
    cJSON_AddNumberToObject(root, "rms_norm_eps", eps);
    cJSON_AddNumberToObject(root, "vocab_size", (double)vocab_size(g, a->gguf));
    cJSON_AddBoolToObject(root, "tie_word_embeddings", ck_gguf_tensor_named(g, "output.weight") == NULL);
    if (has_attn_bias(g)) cJSON_AddBoolToObject(root, "attention_bias", 1);
    add_special_ids(g, root);
    int64_t used, eff;
    if (experts > 0) { /* llama.cpp: every layer, normalized */
        if (!arch_int(g, a->gguf, "expert_used_count", &used) || !arch_int(g, a->gguf, "expert_feed_forward_length", &eff))
            return ck_err(err, errlen, "GGUF: %s.expert_used_count and .expert_feed_forward_length are required", a->gguf);
        cJSON_AddNumberToObject(root, "num_experts", (double)experts);
        cJSON_AddNumberToObject(root, "num_experts_per_tok", (double)used);
        cJSON_AddNumberToObject(root, "moe_intermediate_size", (double)eff);
        cJSON_AddBoolToObject(root, "norm_topk_prob", 1);
        cJSON_AddNumberToObject(root, "decoder_sparse_step", 1);
        int64_t sff;
        if (arch_int(g, a->gguf, "expert_shared_feed_forward_length", &sff))
            cJSON_AddNumberToObject(root, "shared_expert_intermediate_size", (double)sff);
    }
    if (a->qwen35 && add_qwen35(g, a->gguf, layers, head_dim, root, err, errlen) != 0) return -1;
    if (add_sliding(g, a->gguf, layers, root, err, errlen) != 0) return -1;
    if (ck_gguf_tensor_named(g, "rope_factors_long.weight") || ck_gguf_tensor_named(g, "rope_factors_short.weight"))
        return ck_err(err, errlen, "GGUF: LongRoPE factors (rope_factors_long/short) are not supported");
    if (!strcmp(a->gguf, "gemma3")) {
        if (add_gemma3(g, a->gguf, layers, hidden, heads, head_dim, root, err, errlen) != 0) return -1;
    } else if (add_rope(g, a->gguf, root, err, errlen) != 0) {
        return -1;
    }
    int64_t rot;
    if (arch_int(g, a->gguf, "rope.dimension_count", &rot) && (rot <= 0 || rot > head_dim || rot % 2))
        return ck_err(err, errlen, "GGUF: %s.rope.dimension_count = %lld: not an even count of 1 to %lld dims (the head size)",
                      a->gguf, (long long)rot, (long long)head_dim);
    if (arch_int(g, a->gguf, "rope.dimension_count", &rot) && rot < head_dim)
        cJSON_AddNumberToObject(cJSON_GetObjectItem(root, "rope_parameters"), "partial_rotary_factor",
                                (double)rot / (double)head_dim);
    return 0;
}

int ck_gguf_config_json(const ck_gguf *g, char **json, char *err, size_t errlen) {
    *json = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return ck_err(err, errlen, "out of memory");
    int rc = fill_config(g, root, err, errlen);
    if (rc == 0 && !(*json = cJSON_PrintUnformatted(root))) rc = ck_err(err, errlen, "out of memory");
    cJSON_Delete(root);
    return rc;
}

/* ---- weights ---- */

static int cmp_idx_name(const void *a, const void *b, void *names) {
    char **n = names;
    return strcmp(n[*(const size_t *)a], n[*(const size_t *)b]);
}

/* Expert slices of tensor t (0 when it is not a stacked expert tensor). */
static uint64_t n_slices(const ck_gguf_tensor *t) {
    char tmp[256];
    return t->n_dims == 3 && ck_gguf_expert_name(t->name, 0, tmp, sizeof tmp) ? t->ne[2] : 0;
}

/* Fills names/tensor/slice sorted by HF name (tensors without a mapping are left out: e.g. rope_freqs). */
static int index_names(ck_gguf_weights *w, char *err, size_t errlen) {
    const ck_gguf *g = &w->file.g;
    size_t total = 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        uint64_t e = n_slices(&g->tensors[i]);
        if (e > (1u << 16)) return ck_err(err, errlen, "GGUF tensor '%s': %llu experts", g->tensors[i].name, (unsigned long long)e);
        total += e ? (size_t)e : 1;
    }
    char **names = calloc(total + 1, sizeof *names);
    size_t *order = calloc(total + 1, sizeof *order), *perm = calloc(total + 1, sizeof *perm);
    uint32_t *slice = calloc(total + 1, sizeof *slice);
    w->names = calloc(total + 1, sizeof *w->names);
    w->tensor = calloc(total + 1, sizeof *w->tensor);
    w->slice = calloc(total + 1, sizeof *w->slice);
    w->owned = calloc(total + 1, sizeof *w->owned);
    int rc = names && order && perm && slice && w->names && w->tensor && w->slice && w->owned ? 0 : ck_err(err, errlen, "out of memory");
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < g->n_tensors; i++) {
        uint64_t ns = n_slices(&g->tensors[i]);
        for (uint64_t e = 0; rc == 0 && e < (ns ? ns : 1); e++) {
            char hf[256];
            if (!(ns ? ck_gguf_expert_name(g->tensors[i].name, e, hf, sizeof hf) : ck_gguf_name_to_hf(w->arch, g->tensors[i].name, hf, sizeof hf)))
                continue;
            if (!(names[n] = strdup(hf))) rc = ck_err(err, errlen, "out of memory");
            order[n] = i, slice[n] = ns ? (uint32_t)e + 1 : 0;
            n += rc == 0;
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) perm[i] = i;
    if (rc == 0) qsort_r(perm, n, sizeof *perm, cmp_idx_name, names);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        w->names[i] = names[perm[i]], w->tensor[i] = order[perm[i]], w->slice[i] = slice[perm[i]];
        names[perm[i]] = NULL;
    }
    if (rc == 0) w->n = n;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names), free(order), free(perm), free(slice);
    return rc;
}

int ck_gguf_weights_open(const char *path, ck_gguf_weights *w, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    if (ck_gguf_open(path, &w->file, err, errlen) != 0) return -1;
    const ck_gguf *g = &w->file.g;
    ck_gguf_str an = {"", 0};
    ck_gguf_string(g, "general.architecture", &an);
    w->arch = ck_gguf_arch_by_gguf(an.p, (size_t)an.len);
    if (w->arch) {
        arch_int(g, w->arch->gguf, "attention.head_count", &w->n_heads);
        if (!arch_int(g, w->arch->gguf, "attention.head_count_kv", &w->n_kv_heads)) w->n_kv_heads = w->n_heads;
        int64_t inner = 0;
        if (w->arch->qwen35 && arch_int(g, w->arch->gguf, "ssm.group_count", &w->lin_nk) &&
            arch_int(g, w->arch->gguf, "ssm.time_step_rank", &w->lin_nv) &&
            arch_int(g, w->arch->gguf, "ssm.state_size", &w->lin_dk) && arch_int(g, w->arch->gguf, "ssm.inner_size", &inner) &&
            w->lin_nv > 0)
            w->lin_dv = inner / w->lin_nv;
        w->lin_out_tiled = w->arch->qwen35 && ssm_out_tiled(g, w->lin_nk, w->lin_nv, w->lin_dv);
    }
    if (index_names(w, err, errlen) != 0) {
        ck_gguf_weights_close(w);
        return -1;
    }
    return 0;
}

void ck_gguf_weights_close(ck_gguf_weights *w) {
    for (size_t i = 0; i < w->n; i++) {
        free(w->names[i]);
        free(w->owned[i]);
    }
    free(w->names), free(w->tensor), free(w->slice), free(w->owned);
    ck_gguf_close(&w->file);
    memset(w, 0, sizeof *w);
}

void ck_gguf_weights_drop(ck_gguf_weights *w, const void *p, size_t n) {
    if (ck_map_drop(&w->file.map, p, n)) return;
    for (size_t i = 0; i < w->n; i++)
        if (w->owned[i] && w->owned[i] == p) {
            free(w->owned[i]);
            w->owned[i] = NULL;
            return;
        }
}

/* Heads of a permuted Q/K tensor (0 when `name` is not one). */
static int64_t permuted_heads(const ck_gguf_weights *w, const char *name) {
    if (!w->arch || !w->arch->permute_qk) return 0;
    if (ends_with(name, ".self_attn.q_proj.weight") || ends_with(name, ".self_attn.q_proj.bias")) return w->n_heads;
    if (ends_with(name, ".self_attn.k_proj.weight") || ends_with(name, ".self_attn.k_proj.bias")) return w->n_kv_heads;
    return 0;
}

/* Points t at an un-permuted copy of tensor e (made once, kept in w->owned[i]). */
static int unpermute(ck_gguf_weights *w, size_t i, const ck_gguf_tensor *e, int64_t heads, ck_tensor *t, char *err,
                     size_t errlen) {
    uint64_t rows = t->shape[0], row_elems = t->ndim == 2 ? t->shape[1] : 1;
    size_t rb;
    if (heads <= 0 || rows % (uint64_t)heads || (rows / (uint64_t)heads) % 2 ||
        ck_dtype_row_bytes(t->dtype, row_elems, &rb) != 0)
        return ck_err(err, errlen, "tensor '%s': %llu rows do not split into %lld heads of even size", w->names[i],
                      (unsigned long long)rows, (long long)heads);
    if (!w->owned[i]) {
        if (!(w->owned[i] = malloc(e->nbytes ? e->nbytes : 1))) return ck_err(err, errlen, "out of memory");
        ck_gguf_permute_rows(w->owned[i], e->data, (size_t)heads, (size_t)(rows / (uint64_t)heads), rb, 0);
    }
    t->data = w->owned[i];
    return 0;
}

int ck_gguf_norm_plus_one(const ck_gguf_arch *a, const char *name) {
    return a && a->norm_plus_one &&
           (ends_with(name, "layernorm.weight") || ends_with(name, ".self_attn.q_norm.weight") ||
            ends_with(name, ".self_attn.k_norm.weight") || !strcmp(name, "model.norm.weight"));
}

uint64_t ck_gguf_qwen35_groups(const char *name, uint64_t nk, uint64_t dk, uint64_t dv, uint64_t *skip, int *cols) {
    *skip = 0, *cols = 0;
    if (ends_with(name, ".linear_attn.in_proj_qkv.weight") || ends_with(name, ".linear_attn.conv1d.weight")) {
        *skip = 2 * nk * dk;
        return dv;
    }
    if (ends_with(name, ".linear_attn.in_proj_z.weight")) return dv;
    if (ends_with(name, ".linear_attn.in_proj_a.weight") || ends_with(name, ".linear_attn.in_proj_b.weight") ||
        ends_with(name, ".linear_attn.A_log") || ends_with(name, ".linear_attn.dt_bias"))
        return 1;
    if (ends_with(name, ".linear_attn.out_proj.weight")) {
        *cols = 1;
        return dv;
    }
    return 0;
}

/* Qwen3.5 and the (1 + w) norms (see gguf_model.h): the HF form of tensor e, named `name`, into an owned
 * copy when it differs. */
static int layout_fix(ck_gguf_weights *w, size_t i, const ck_gguf_tensor *e, const char *name, ck_tensor *t, char *err,
                      size_t errlen) {
    int norm = ck_gguf_norm_plus_one(w->arch, name);
    int alog = w->arch->qwen35 && ends_with(name, ".linear_attn.A_log"), cols = 0;
    uint64_t nk = (uint64_t)w->lin_nk, nv = (uint64_t)w->lin_nv, dv = (uint64_t)w->lin_dv, skip = 0, head = 0;
    if (w->arch->qwen35 && nk > 0 && nv > nk && nv % nk == 0) { /* value heads tiled: head j * nk + k holds HF head k * (nv / nk) + j */
        head = ck_gguf_qwen35_groups(name, nk, (uint64_t)w->lin_dk, dv, &skip, &cols);
        if (cols && w->lin_out_tiled) head = 0, cols = 0;
    }
    if (!norm && !alog && !head) return 0;
    if (w->owned[i]) {
        t->data = w->owned[i];
        return 0;
    }
    if ((norm || alog) && t->dtype != CK_F32) return ck_err(err, errlen, "tensor '%s' (%s): expected F32", name, e->name);
    uint64_t rows = t->shape[0], row_elems = 1;
    for (int d = 1; d < t->ndim; d++) row_elems *= t->shape[d];
    size_t rb, hb = 0;
    if (ck_dtype_row_bytes(t->dtype, row_elems, &rb) != 0 || (cols && ck_dtype_row_bytes(t->dtype, head, &hb) != 0) ||
        (head && !cols && rows != skip + nv * head) || (cols && row_elems != nv * head))
        return ck_err(err, errlen, "tensor '%s' (%s): shape does not hold %llu value heads of %llu", name, e->name,
                      (unsigned long long)nv, (unsigned long long)head);
    uint8_t *o = malloc(e->nbytes ? e->nbytes : 1);
    if (!o) return ck_err(err, errlen, "out of memory");
    const uint8_t *src = t->data;
    memcpy(o, src, e->nbytes);
    uint64_t r = nv / (nk ? nk : 1);
    for (uint64_t hh = 0; head && hh < nv; hh++) { /* HF head hh = k * r + j comes from GGUF head j * nk + k */
        uint64_t p = (hh % r) * nk + hh / r;
        if (cols)
            for (uint64_t row = 0; row < rows; row++) memcpy(o + row * rb + hh * hb, src + row * rb + p * hb, hb);
        else
            memcpy(o + (skip + hh * head) * rb, src + (skip + p * head) * rb, head * rb);
    }
    float *f = (float *)o;
    for (uint64_t k = 0; (norm || alog) && k < rows * row_elems; k++) {
        if (alog && !(f[k] < 0.0f)) {
            free(o);
            return ck_err(err, errlen, "tensor '%s' (%s): A = -exp(A_log) must be negative", name, e->name);
        }
        f[k] = alog ? logf(-f[k]) : f[k] - 1.0f;
    }
    t->data = w->owned[i] = o;
    return 0;
}

int ck_gguf_weights_find(ck_gguf_weights *w, const char *name, ck_tensor *t, char *err, size_t errlen) {
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w->names[mid], name);
        if (c == 0) lo = hi = mid;
        else if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo >= w->n || strcmp(w->names[lo], name)) return 0;
    const ck_gguf_tensor *e = &w->file.g.tensors[w->tensor[lo]];
    if (e->dtype < 0)
        return ck_err(err, errlen, "tensor '%s' (%s) has ggml type %s; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, "
                      "Q5_K, Q6_K", name, e->name, ck_gguf_type_name(e->ggml_type));
    if (e->n_dims > CK_MAX_DIMS) return ck_err(err, errlen, "tensor '%s' has too many dimensions", name);
    memset(t, 0, sizeof *t);
    t->dtype = (ck_dtype)e->dtype;
    t->ndim = e->n_dims;
    for (int d = 0; d < e->n_dims; d++) t->shape[d] = e->ne[e->n_dims - 1 - d];
    t->data = e->data;
    if (w->slice[lo]) { /* expert slice-1 of a stacked [E, rows, cols] tensor */
        t->ndim = 2, t->shape[0] = e->ne[1], t->shape[1] = e->ne[0];
        t->data = e->data + (size_t)(w->slice[lo] - 1) * (size_t)(e->nbytes / e->ne[2]);
    }
    int64_t heads = permuted_heads(w, name);
    if (heads && unpermute(w, lo, e, heads, t, err, errlen) != 0) return -1;
    if (w->arch && (w->arch->qwen35 || w->arch->norm_plus_one) && !w->slice[lo] &&
        layout_fix(w, lo, e, name, t, err, errlen) != 0)
        return -1;
    return 1;
}
