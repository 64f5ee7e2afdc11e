/* gguf_tok_write.c — the GGUF converter's tokenizer: DIR/tokenizer.json (+ tokenizer_config.json) as
 * tokenizer.ggml.* metadata, the way llama.cpp's converter writes it:
 *   a byte-level BPE as "gpt2": tokens by id (holes as [PADn]), token_type (1 normal, 3 special added
 *     token, 4 other added token), merges as "a b", the pre-tokenizer's name (qwen2, qwen35, llama-bpe or
 *     gpt-2, recognised by its regex);
 *   a SentencePiece BPE (byte fallback, spaces made U+2581 by the normalizer: Gemma's Replace, Llama 2's
 *     Prepend + Replace) as "llama": tokens, token_type (also 2 unknown, 6 byte), scores and
 *     add_space_prefix. There is no tokenizer.model to take scores from, so a token's score is minus the
 *     rank of the first merge that makes it: the order the merges are derived back from scores on load.
 *     Added tokens that are not special are written with U+2581 as spaces and score -1000, as llama.cpp's
 *     converter writes user-defined pieces;
 * and bos/eos ids, add_bos_token and the chat template. A directory without tokenizer.json, or with a
 * tokenizer of another kind (an unknown regex, a Metaspace pre-tokenizer, WordPiece), gets no tokenizer
 * metadata. */
#include "base/err.h"
#include "base/file.h"
#include "format/gguf_model.h"
#include "format/gguf_write.h"
#include "format/hfconfig.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX_IDS (1 << 24)

int ck_gguf_write_tokenizer(ck_gguf_w *w, const char *hf_dir, const ck_config *c, char *err, size_t errlen);

static cJSON *read_json(const char *dir, const char *name, char *err, size_t errlen, int *rc) {
    char path[4096], *text;
    size_t len;
    *rc = 0;
    if (ck_path_join(path, sizeof path, dir, name, err, errlen) != 0) return *rc = -1, NULL;
    if (!ck_path_exists_any(path)) return NULL;
    if (ck_file_read_max(path, (size_t)512 << 20, &text, &len, err, errlen) != 0) return *rc = -1, NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) *rc = ck_err(err, errlen, "%s: malformed JSON", path);
    return j;
}

/* "qwen2", "llama-bpe", "gpt-2" from the pre-tokenizer, or NULL when it is none of those. */
static const char *pre_name(const cJSON *pre) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (!cJSON_IsString(ty)) return NULL;
    if (!strcmp(ty->valuestring, "ByteLevel")) {
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(pre, "use_regex");
        return !cJSON_IsFalse(ur) ? "gpt-2" : NULL;
    }
    if (strcmp(ty->valuestring, "Sequence")) return NULL;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    const cJSON *split = cJSON_GetArrayItem(list, 0), *bl = cJSON_GetArrayItem(list, 1);
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(split, "pattern"), "Regex");
    const cJSON *blt = cJSON_GetObjectItemCaseSensitive(bl, "type");
    if (cJSON_GetArraySize(list) != 2 || !cJSON_IsString(re) || !cJSON_IsString(blt) || strcmp(blt->valuestring, "ByteLevel"))
        return NULL;
    if (!strcmp(re->valuestring, ck_gguf_pre_qwen2)) return "qwen2";
    if (!strcmp(re->valuestring, ck_gguf_pre_qwen35)) return "qwen35";
    if (!strcmp(re->valuestring, ck_gguf_pre_llama3)) return "llama-bpe";
    return NULL;
}

/* The token list as written: tokens[id] (borrowed from the JSON, or owned[id]) and types[id]. */
typedef struct vocab {
    char **tokens, **owned;
    int32_t *types;
    size_t n;
} vocab;

static void vocab_free(vocab *v) {
    for (size_t i = 0; v->owned && i < v->n; i++) free(v->owned[i]);
    free(v->owned), free(v->tokens), free(v->types);
}

/* Token i as an owned copy that may be edited in place. */
static char *vocab_own(vocab *v, size_t i) {
    if (!v->owned[i]) v->tokens[i] = v->owned[i] = strdup(v->tokens[i]);
    return v->owned[i];
}

/* The vocabulary and the added tokens by id, up to the model's vocab_size (the embedding's rows;
 * llama.cpp refuses a file whose token list is shorter); ids nothing names are [PADn], type 5. */
static int collect_tokens(const cJSON *tok, int64_t vocab_size, vocab *v, char *err, size_t errlen) {
    const cJSON *voc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "model"), "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tok, "added_tokens"), *it;
    double max = -1;
    cJSON_ArrayForEach(it, voc) max = cJSON_IsNumber(it) && it->valuedouble > max ? it->valuedouble : max;
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        max = cJSON_IsNumber(id) && id->valuedouble > max ? id->valuedouble : max;
    }
    if (!(max >= 0 && max < TOK_MAX_IDS)) return ck_err(err, errlen, "tokenizer.json: no usable vocabulary");
    size_t n = (size_t)max + 1;
    if (vocab_size > 0 && vocab_size < TOK_MAX_IDS && (size_t)vocab_size > n) n = (size_t)vocab_size;
    v->n = n;
    v->tokens = calloc(n, sizeof *v->tokens);
    v->owned = calloc(n, sizeof *v->owned);
    v->types = malloc(n * sizeof *v->types);
    if (!v->tokens || !v->owned || !v->types) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) v->types[i] = 1;
    cJSON_ArrayForEach(it, voc)
        if (cJSON_IsNumber(it) && it->valuedouble >= 0) v->tokens[(size_t)it->valuedouble] = it->string;
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id"), *s = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || !cJSON_IsString(s)) continue;
        v->tokens[(size_t)id->valuedouble] = s->valuestring;
        v->types[(size_t)id->valuedouble] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")) ? 3 : 4;
    }
    for (size_t i = 0; i < n; i++)
        if (!v->tokens[i]) {
            char buf[32];
            snprintf(buf, sizeof buf, "[PAD%zu]", i);
            if (!(v->tokens[i] = v->owned[i] = strdup(buf))) return ck_err(err, errlen, "out of memory");
            v->types[i] = 5;
        }
    return 0;
}

static int put_vocab(ck_gguf_w *w, const cJSON *tok, int64_t vocab_size, char *err, size_t errlen) {
    vocab v = {0};
    int rc = collect_tokens(tok, vocab_size, &v, err, errlen);
    if (rc == 0) {
        ck_gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, NULL, v.n);
        ck_gguf_w_arr_i32(w, "tokenizer.ggml.token_type", v.types, v.n);
    }
    vocab_free(&v);
    return rc;
}

/* A merge of tokenizer.json, ["a", "b"] or "a b" (split at the first space; HF refuses a string without
 * one): its left part (*a, *la bytes) and its right part (*b, NUL-terminated). -1 when malformed. */
static int merge_parts(const cJSON *it, const char **a, size_t *la, const char **b) {
    const cJSON *x = cJSON_GetArrayItem(it, 0), *y = cJSON_GetArrayItem(it, 1);
    if (cJSON_IsString(it)) {
        const char *sp = strchr(it->valuestring, ' ');
        if (!sp) return -1;
        *a = it->valuestring, *la = (size_t)(sp - it->valuestring), *b = sp + 1;
        return 0;
    }
    if (cJSON_GetArraySize(it) != 2 || !cJSON_IsString(x) || !cJSON_IsString(y)) return -1;
    *a = x->valuestring, *la = strlen(x->valuestring), *b = y->valuestring;
    return 0;
}

static int put_merges(ck_gguf_w *w, const cJSON *tok, char *err, size_t errlen) {
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "model"), "merges"), *it;
    size_t n = (size_t)cJSON_GetArraySize(merges), k = 0;
    char **s = calloc(n + 1, sizeof *s);
    int rc = s ? 0 : ck_err(err, errlen, "out of memory");
    cJSON_ArrayForEach(it, merges) {
        if (rc) break;
        const char *a, *b;
        size_t la;
        if (merge_parts(it, &a, &la, &b) != 0) rc = ck_err(err, errlen, "tokenizer.json: malformed merge #%zu", k);
        else if (!(s[k] = malloc(la + strlen(b) + 2))) rc = ck_err(err, errlen, "out of memory");
        else sprintf(s[k], "%.*s %s", (int)la, a, b);
        k += rc == 0;
    }
    if (rc == 0) ck_gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)s, NULL, k);
    for (size_t i = 0; s && i < k; i++) free(s[i]);
    free(s);
    return rc;
}

/* The id of a special token string of tokenizer_config.json ("bos_token": "<s>" or {"content": ...}). */
static int special_id(const cJSON *tok, const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key), *it;
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v)) return -1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(tok, "added_tokens")) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "content"), *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsString(s) && !strcmp(s->valuestring, v->valuestring) && cJSON_IsNumber(id)) return (int)id->valuedouble;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "model"), "vocab"), v->valuestring);
    return cJSON_IsNumber(id) ? (int)id->valuedouble : -1;
}

/* 1 when the post-processor puts a special token before the sequence (Llama 3's BOS). */
static int adds_bos(const cJSON *post) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(post, "type"), *it;
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence")) {
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(post, "processors")) if (adds_bos(it)) return 1;
        return 0;
    }
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(post, "single"), 0);
    return cJSON_IsString(ty) && !strcmp(ty->valuestring, "TemplateProcessing") &&
           cJSON_GetObjectItemCaseSensitive(first, "SpecialToken") != NULL;
}

/* ---- SentencePiece ---- */

#define SPM_SPACE "\xe2\x96\x81"

static int str_is(const cJSON *o, const char *key, const char *want) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && !strcmp(v->valuestring, want);
}

/* A normalizer step: Replace(" " -> U+2581) or Prepend(U+2581). */
static int is_replace_space(const cJSON *n) {
    return str_is(n, "type", "Replace") && str_is(cJSON_GetObjectItemCaseSensitive(n, "pattern"), "String", " ") &&
           str_is(n, "content", SPM_SPACE);
}

/* 1 when tokenizer.json is a SentencePiece BPE this writer knows; *prefix: whether it prepends U+2581. */
static int spm_kind(const cJSON *tok, int *prefix) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tok, "model");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(tok, "normalizer");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(tok, "pre_tokenizer");
    if (!str_is(model, "type", "BPE") || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"))) return 0;
    /* none, or Gemma's split at spaces, which the normalizer has already replaced */
    if (!cJSON_IsNull(pre) && pre &&
        !(str_is(pre, "type", "Split") && str_is(cJSON_GetObjectItemCaseSensitive(pre, "pattern"), "String", " ")))
        return 0;
    if (is_replace_space(norm)) return *prefix = 0, 1;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(norm, "normalizers");
    const cJSON *first = cJSON_GetArrayItem(list, 0), *second = cJSON_GetArrayItem(list, 1);
    if (str_is(norm, "type", "Sequence") && cJSON_GetArraySize(list) == 2 && str_is(first, "type", "Prepend") &&
        str_is(first, "prepend", SPM_SPACE) && is_replace_space(second))
        return *prefix = 1, 1;
    return 0;
}

static int cmp_by_token(const void *x, const void *y, void *tokens) {
    char *const *t = tokens;
    return strcmp(t[*(const int32_t *)x], t[*(const int32_t *)y]);
}

/* scores[id]: minus the rank of the first merge that makes the token; -1e9 for a token no merge makes. */
static int spm_scores(const cJSON *tok, char **tokens, size_t n, float *scores, char *err, size_t errlen) {
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "model"), "merges"), *it;
    int32_t *order = malloc(n * sizeof *order);
    char *buf = NULL;
    size_t cap = 0, rank = 0;
    if (!order) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) order[i] = (int32_t)i, scores[i] = -1e9f;
    qsort_r(order, n, sizeof *order, cmp_by_token, tokens);
    int rc = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *sa, *sb;
        size_t la;
        if (merge_parts(it, &sa, &la, &sb) != 0) {
            rc = ck_err(err, errlen, "tokenizer.json: malformed merge #%zu", rank);
            break;
        }
        size_t need = la + strlen(sb) + 1;
        if (need > cap) {
            char *p = realloc(buf, cap = need * 2);
            if (!p) {
                rc = ck_err(err, errlen, "out of memory");
                break;
            }
            buf = p;
        }
        memcpy(buf, sa, la), strcpy(buf + la, sb);
        size_t lo = 0, hi = n;
        while (lo < hi) { /* the first token in order not below buf */
            size_t mid = (lo + hi) / 2;
            if (strcmp(tokens[order[mid]], buf) < 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo < n && !strcmp(tokens[order[lo]], buf) && scores[order[lo]] == -1e9f) scores[order[lo]] = -(float)rank;
        rank++;
    }
    free(buf), free(order);
    return rc;
}

static int is_byte_token(const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    return !strncmp(s, "<0x", 3) && s[3] && strchr(hex, s[3]) && s[4] && strchr(hex, s[4]) && !strcmp(s + 5, ">");
}

/* Replaces every U+2581 of s by a space, in place (the string only shrinks). */
static void spaces_back(char *s) {
    char *o = s;
    for (const char *p = s; *p;)
        if (!strncmp(p, SPM_SPACE, 3)) *o++ = ' ', p += 3;
        else *o++ = *p++;
    *o = 0;
}

static int put_spm_vocab(ck_gguf_w *w, const cJSON *tok, int64_t vocab_size, char *err, size_t errlen) {
    vocab v = {0};
    float *scores = NULL;
    int rc = collect_tokens(tok, vocab_size, &v, err, errlen);
    if (rc == 0 && !(scores = malloc(v.n * sizeof *scores))) rc = ck_err(err, errlen, "out of memory");
    if (rc == 0) rc = spm_scores(tok, v.tokens, v.n, scores, err, errlen);
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tok, "model"), "unk_token");
    for (size_t i = 0; rc == 0 && i < v.n; i++) {
        int32_t *ty = &v.types[i];
        if (*ty == 1 && is_byte_token(v.tokens[i])) *ty = 6;
        if (*ty == 1 && cJSON_IsString(unk) && !strcmp(v.tokens[i], unk->valuestring)) *ty = 2;
        if (*ty == 3 || *ty == 4 || *ty == 5) scores[i] = -1000.0f;
        if (*ty == 4 && strstr(v.tokens[i], SPM_SPACE)) {
            char *own = vocab_own(&v, i);
            if (!own) rc = ck_err(err, errlen, "out of memory");
            else spaces_back(own);
        }
        if (rc == 0 && *ty == 2) ck_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)i);
    }
    if (rc == 0) {
        ck_gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, NULL, v.n);
        ck_gguf_w_arr_f32(w, "tokenizer.ggml.scores", scores, v.n);
        ck_gguf_w_arr_i32(w, "tokenizer.ggml.token_type", v.types, v.n);
    }
    vocab_free(&v);
    free(scores);
    return rc;
}

/* pre: the byte-level pre-tokenizer's name, or NULL for a SentencePiece BPE with space prefix spm_prefix. */
static int put_all(ck_gguf_w *w, const cJSON *tok, const cJSON *cfg, const ck_config *c, const char *pre, int spm_prefix,
                   char *err, size_t errlen) {
    ck_gguf_w_str(w, "tokenizer.ggml.model", pre ? "gpt2" : "llama");
    ck_gguf_w_str(w, "tokenizer.ggml.pre", pre ? pre : "default");
    if (pre && (put_vocab(w, tok, c->vocab_size, err, errlen) != 0 || put_merges(w, tok, err, errlen) != 0)) return -1;
    if (!pre && put_spm_vocab(w, tok, c->vocab_size, err, errlen) != 0) return -1;
    if (!pre) ck_gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", spm_prefix);
    int bos = special_id(tok, cfg, "bos_token"), eos = special_id(tok, cfg, "eos_token");
    if (bos < 0) bos = c->bos_id;
    if (eos < 0 && c->n_eos > 0) eos = c->eos_ids[0];
    if (bos >= 0) ck_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0) ck_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    ck_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", adds_bos(cJSON_GetObjectItemCaseSensitive(tok, "post_processor")));
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template"), *it;
    if (cJSON_IsString(ct)) ck_gguf_w_str(w, "tokenizer.chat_template", ct->valuestring);
    const cJSON *named = cJSON_IsArray(ct) ? ct : NULL; /* HF's named list, as llama.cpp's converter writes it */
    cJSON_ArrayForEach(it, named) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *tp = cJSON_GetObjectItemCaseSensitive(it, "template");
        if (!cJSON_IsString(nm) || !cJSON_IsString(tp) || strlen(nm->valuestring) > 200) continue;
        char key[256];
        if (!strcmp(nm->valuestring, "default")) snprintf(key, sizeof key, "tokenizer.chat_template");
        else snprintf(key, sizeof key, "tokenizer.chat_template.%s", nm->valuestring);
        ck_gguf_w_str(w, key, tp->valuestring);
    }
    return 0;
}

int ck_gguf_write_tokenizer(ck_gguf_w *w, const char *hf_dir, const ck_config *c, char *err, size_t errlen) {
    int rc;
    cJSON *tok = read_json(hf_dir, "tokenizer.json", err, errlen, &rc), *cfg = NULL;
    if (rc != 0 || !tok) return rc;
    cfg = read_json(hf_dir, "tokenizer_config.json", err, errlen, &rc);
    const char *pre = pre_name(cJSON_GetObjectItemCaseSensitive(tok, "pre_tokenizer"));
    int prefix = 0;
    if (rc == 0 && (pre || spm_kind(tok, &prefix))) rc = put_all(w, tok, cfg, c, pre, prefix, err, errlen);
    cJSON_Delete(tok);
    cJSON_Delete(cfg);
    return rc;
}
