/* tok_gguf.c — a tokenizer from GGUF metadata (tokenizer.ggml.*), built as the tokenizer.json and
 * tokenizer_config.json documents HF would have for it and handed to ck_tok_load_json, so one loader
 * defines the behaviour:
 *   model "gpt2" (byte-level BPE): tokens, merges ("a b"), token_type (3 control -> special added token,
 *     4 user-defined -> added token), the pre-tokenizer regex named by tokenizer.ggml.pre (as llama.cpp
 *     maps it), Qwen2's NFC normalizer, Llama 3's ignore_merges;
 *   model "llama" (SentencePiece): tokens and scores; merges are derived as HF's converter does (every
 *     split of a token into two vocabulary pieces, ordered by the merged token's score), spaces as U+2581,
 *     U+2581 prepended unless tokenizer.ggml.add_space_prefix is false (Gemma), byte fallback and the
 *     matching decoder.
 * BOS is prepended when tokenizer.ggml.add_bos_token says so (the default for "llama"). Token strings
 * with a NUL byte are refused (cJSON strings end at NUL). */
#include "base/err.h"
#include "format/gguf_model.h"
#include "tok/tok_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* A NUL-terminated copy of a GGUF string, or NULL (NUL inside / no memory). */
static char *cstr(ck_gguf_str s) {
    if (memchr(s.p, 0, (size_t)s.len)) return NULL;
    char *p = malloc((size_t)s.len + 1);
    if (p) memcpy(p, s.p, (size_t)s.len), p[s.len] = 0;
    return p;
}

static cJSON *obj_type(const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

/* vocab {token: id} and added_tokens from tokens + token_type. */
static int add_vocab(cJSON *model, cJSON *root, const ck_gguf_kv *toks, const ck_gguf_kv *types, char *err,
                     size_t errlen) {
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab"), *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (uint64_t i = 0; i < toks->n; i++) {
        char *s = cstr(toks->strs[i]);
        if (!s) return ck_err(err, errlen, "GGUF tokenizer: token %llu holds a NUL byte", (unsigned long long)i);
        int64_t ty = types ? ck_gguf_arr_int(types, i) : TT_NORMAL;
        if (ty == TT_CONTROL || ty == TT_USER) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", (double)i);
            cJSON_AddStringToObject(a, "content", s);
            cJSON_AddBoolToObject(a, "special", ty == TT_CONTROL);
            cJSON_AddBoolToObject(a, "normalized", 0);
            cJSON_AddItemToArray(added, a);
        }
        cJSON_AddNumberToObject(vocab, s, (double)i); /* a repeated string keeps its first id (as the loader does) */
        free(s);
    }
    return 0;
}

static int add_merges(cJSON *model, const ck_gguf_kv *merges, char *err, size_t errlen) {
    cJSON *m = cJSON_AddArrayToObject(model, "merges");
    for (uint64_t i = 0; merges && i < merges->n; i++) {
        char *s = cstr(merges->strs[i]);
        if (!s) return ck_err(err, errlen, "GGUF tokenizer: merge %llu holds a NUL byte", (unsigned long long)i);
        cJSON_AddItemToArray(m, cJSON_CreateString(s));
        free(s);
    }
    return 0;
}

/* pre-tokenizer, normalizer and ignore_merges of a byte-level BPE named by tokenizer.ggml.pre */
static int gpt2_pipeline(const ck_gguf *g, cJSON *root, cJSON *model, char *err, size_t errlen) {
    ck_gguf_str pre = {"default", 7};
    ck_gguf_string(g, "tokenizer.ggml.pre", &pre);
    const char *re = NULL;
    int nfc = 0, ignore_merges = 0;
    if (ck_gguf_str_eq(pre, "qwen2")) re = ck_gguf_pre_qwen2, nfc = 1;
    else if (ck_gguf_str_eq(pre, "qwen35")) re = ck_gguf_pre_qwen35, nfc = 1;
    else if (ck_gguf_str_eq(pre, "llama-bpe") || ck_gguf_str_eq(pre, "llama3")) re = ck_gguf_pre_llama3, ignore_merges = 1;
    else if (!ck_gguf_str_eq(pre, "default") && !ck_gguf_str_eq(pre, "gpt-2"))
        return ck_err(err, errlen, "GGUF tokenizer: pre-tokenizer '%.*s' is not supported (qwen2, qwen35, llama-bpe, gpt-2)",
                      (int)(pre.len > 40 ? 40 : pre.len), pre.p);
    cJSON *bl = obj_type("ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
    cJSON_AddBoolToObject(bl, "use_regex", re == NULL);
    if (re) {
        cJSON *seq = obj_type("Sequence");
        cJSON_AddItemToObject(root, "pre_tokenizer", seq);
        cJSON *list = cJSON_AddArrayToObject(seq, "pretokenizers"), *split = obj_type("Split");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", re);
        cJSON_AddStringToObject(split, "behavior", "Isolated");
        cJSON_AddBoolToObject(split, "invert", 0);
        cJSON_AddItemToArray(list, split);
        cJSON_AddItemToArray(list, bl);
    } else {
        cJSON_AddItemToObject(root, "pre_tokenizer", bl);
    }
    if (nfc) cJSON_AddItemToObject(root, "normalizer", obj_type("NFC"));
    cJSON *dec = obj_type("ByteLevel");
    cJSON_AddBoolToObject(dec, "add_prefix_space", 0);
    cJSON_AddItemToObject(root, "decoder", dec);
    cJSON_AddBoolToObject(model, "ignore_merges", ignore_merges);
    return 0;
}

/* ---- SentencePiece: merges from scores ---- */

typedef struct spm_merge {
    float score;               /* of the merged token */
    int32_t merged, a, b;
} spm_merge;

static int cmp_merge(const void *x, const void *y) {
    const spm_merge *p = x, *q = y;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    if (p->merged != q->merged) return p->merged < q->merged ? -1 : 1;
    return (p->a > q->a) - (p->a < q->a);
}

/* Token ids ordered by their bytes, for lookups of pieces. */
static int cmp_tok(const void *x, const void *y, void *toks) {
    const ck_gguf_kv *t = toks;
    ck_gguf_str a = t->strs[*(const int32_t *)x], b = t->strs[*(const int32_t *)y];
    int c = memcmp(a.p, b.p, (size_t)(a.len < b.len ? a.len : b.len));
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int32_t find_tok(const ck_gguf_kv *toks, const int32_t *order, const char *p, uint64_t len) {
    size_t lo = 0, hi = (size_t)toks->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        ck_gguf_str t = toks->strs[order[mid]];
        int c = memcmp(t.p, p, (size_t)(t.len < len ? t.len : len));
        if (!c) c = (t.len > len) - (t.len < len);
        if (!c) return order[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* Every split of a token into two vocabulary pieces is a merge, ranked by the token's score. */
static int spm_merges(cJSON *model, const ck_gguf_kv *toks, const ck_gguf_kv *scores, char *err, size_t errlen) {
    int32_t *order = malloc((size_t)toks->n * sizeof *order);
    spm_merge *m = NULL;
    size_t n = 0, cap = 0;
    if (!order) return ck_err(err, errlen, "out of memory");
    for (uint64_t i = 0; i < toks->n; i++) order[i] = (int32_t)i;
    qsort_r(order, (size_t)toks->n, sizeof *order, cmp_tok, (void *)toks);
    for (uint64_t i = 0; i < toks->n; i++) {
        ck_gguf_str s = toks->strs[i];
        for (uint64_t k = 1; k < s.len; k++) {
            int32_t a = find_tok(toks, order, s.p, k), b = a < 0 ? -1 : find_tok(toks, order, s.p + k, s.len - k);
            if (b < 0) continue;
            if (n == cap) {
                spm_merge *p = realloc(m, (cap = cap ? 2 * cap : 1024) * sizeof *m);
                if (!p) {
                    free(m), free(order);
                    return ck_err(err, errlen, "out of memory");
                }
                m = p;
            }
            m[n++] = (spm_merge){(float)ck_gguf_arr_num(scores, i), (int32_t)i, a, b};
        }
    }
    free(order);
    qsort(m, n, sizeof *m, cmp_merge);
    cJSON *arr = cJSON_AddArrayToObject(model, "merges");
    for (size_t i = 0; i < n; i++) {
        char *a = cstr(toks->strs[m[i].a]), *b = cstr(toks->strs[m[i].b]);
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(a ? a : ""));
        cJSON_AddItemToArray(pair, cJSON_CreateString(b ? b : ""));
        free(a), free(b);
        cJSON_AddItemToArray(arr, pair);
    }
    free(m);
    return 0;
}

/* The normalizer and decoder of a SentencePiece BPE, as HF's converter writes them (Llama 2's with the
 * space prefix, Gemma's without). */
static void spm_pipeline(cJSON *root, cJSON *model, int prefix) {
    cJSON *norm = obj_type("Sequence"), *nl = cJSON_AddArrayToObject(norm, "normalizers");
    cJSON *rep = obj_type("Replace");
    if (prefix) {
        cJSON *pre = obj_type("Prepend");
        cJSON_AddStringToObject(pre, "prepend", "\xe2\x96\x81");
        cJSON_AddItemToArray(nl, pre);
    }
    cJSON_AddStringToObject(cJSON_AddObjectToObject(rep, "pattern"), "String", " ");
    cJSON_AddStringToObject(rep, "content", "\xe2\x96\x81");
    cJSON_AddItemToArray(nl, rep);
    cJSON_AddItemToObject(root, "normalizer", norm);
    cJSON *dec = obj_type("Sequence"), *dl = cJSON_AddArrayToObject(dec, "decoders");
    cJSON *r = obj_type("Replace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "pattern"), "String", "\xe2\x96\x81");
    cJSON_AddStringToObject(r, "content", " ");
    cJSON_AddItemToArray(dl, r);
    cJSON_AddItemToArray(dl, obj_type("ByteFallback"));
    cJSON_AddItemToArray(dl, obj_type("Fuse"));
    if (prefix) { /* the prepended space comes off again */
        cJSON *strip = obj_type("Strip");
        cJSON_AddStringToObject(strip, "content", " ");
        cJSON_AddNumberToObject(strip, "start", 1);
        cJSON_AddNumberToObject(strip, "stop", 0);
        cJSON_AddItemToArray(dl, strip);
    }
    cJSON_AddItemToObject(root, "decoder", dec);
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
}

/* Prepends BOS as a TemplateProcessing post-processor when the file asks for it. */
static void add_bos(const ck_gguf *g, cJSON *root, const ck_gguf_kv *toks, int dflt) {
    int64_t add = dflt, bos;
    ck_gguf_int(g, "tokenizer.ggml.add_bos_token", &add);
    if (!add || !ck_gguf_int(g, "tokenizer.ggml.bos_token_id", &bos) || bos < 0 || (uint64_t)bos >= toks->n) return;
    char *name = cstr(toks->strs[bos]);
    if (!name) return;
    cJSON *tp = obj_type("TemplateProcessing"), *single = cJSON_AddArrayToObject(tp, "single");
    cJSON *sp = cJSON_CreateObject(), *seq = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(sp, "SpecialToken"), "id", name);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(seq, "Sequence"), "id", "A");
    cJSON_AddItemToArray(single, sp);
    cJSON_AddItemToArray(single, seq);
    cJSON *def = cJSON_AddObjectToObject(cJSON_AddObjectToObject(tp, "special_tokens"), name);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(def, "ids"), cJSON_CreateNumber((double)bos));
    cJSON_AddItemToObject(root, "post_processor", tp);
    free(name);
}

/* tokenizer_config.json: bos/eos token strings and the chat template. */
static cJSON *make_config(const ck_gguf *g, const ck_gguf_kv *toks) {
    cJSON *cfg = cJSON_CreateObject();
    static const char *const keys[2][2] = {{"tokenizer.ggml.bos_token_id", "bos_token"},
                                           {"tokenizer.ggml.eos_token_id", "eos_token"}};
    for (int k = 0; k < 2; k++) {
        int64_t id;
        if (!ck_gguf_int(g, keys[k][0], &id) || id < 0 || (uint64_t)id >= toks->n) continue;
        char *s = cstr(toks->strs[id]);
        if (s) cJSON_AddStringToObject(cfg, keys[k][1], s);
        free(s);
    }
    /* the template, and llama.cpp's tokenizer.chat_template.tool_use beside it: tokenizer_config.json's
       named list, from which tok_load.c picks as HF does */
    ck_gguf_str ct, cu;
    char *tmpl = ck_gguf_string(g, "tokenizer.chat_template", &ct) ? cstr(ct) : NULL;
    char *tool = ck_gguf_string(g, "tokenizer.chat_template.tool_use", &cu) ? cstr(cu) : NULL;
    if (tmpl && !tool) {
        cJSON_AddStringToObject(cfg, "chat_template", tmpl);
    } else if (tool) {
        cJSON *list = cJSON_AddArrayToObject(cfg, "chat_template");
        const char *names[2] = {"default", "tool_use"}, *texts[2] = {tmpl, tool};
        for (int i = 0; i < 2 && list; i++) {
            cJSON *e = texts[i] ? cJSON_CreateObject() : NULL;
            if (!e) continue;
            cJSON_AddStringToObject(e, "name", names[i]);
            cJSON_AddStringToObject(e, "template", texts[i]);
            cJSON_AddItemToArray(list, e);
        }
    }
    free(tmpl);
    free(tool);
    return cfg;
}

static int build(const ck_gguf *g, cJSON *root, char *err, size_t errlen) {
    ck_gguf_str kind;
    const ck_gguf_kv *toks = ck_gguf_find(g, "tokenizer.ggml.tokens");
    if (!ck_gguf_string(g, "tokenizer.ggml.model", &kind) || !toks || toks->elem_type != CK_GGUF_STRING)
        return ck_err(err, errlen, "the GGUF file has no tokenizer (tokenizer.ggml.model and .tokens)");
    const ck_gguf_kv *types = ck_gguf_find(g, "tokenizer.ggml.token_type");
    if (types && (types->type != CK_GGUF_ARRAY || types->n != toks->n)) types = NULL;
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    if (add_vocab(model, root, toks, types, err, errlen) != 0) return -1;
    if (ck_gguf_str_eq(kind, "gpt2")) {
        const ck_gguf_kv *merges = ck_gguf_find(g, "tokenizer.ggml.merges");
        if (merges && merges->elem_type != CK_GGUF_STRING) merges = NULL;
        if (add_merges(model, merges, err, errlen) != 0 || gpt2_pipeline(g, root, model, err, errlen) != 0) return -1;
        add_bos(g, root, toks, 0);
        return 0;
    }
    if (ck_gguf_str_eq(kind, "llama")) {
        const ck_gguf_kv *scores = ck_gguf_find(g, "tokenizer.ggml.scores");
        if (!scores || scores->n != toks->n || scores->type != CK_GGUF_ARRAY)
            return ck_err(err, errlen, "GGUF tokenizer: a SentencePiece vocabulary needs tokenizer.ggml.scores");
        int64_t unk;
        if (ck_gguf_int(g, "tokenizer.ggml.unknown_token_id", &unk) && unk >= 0 && (uint64_t)unk < toks->n) {
            char *s = cstr(toks->strs[unk]);
            if (s) cJSON_AddStringToObject(model, "unk_token", s);
            free(s);
        }
        if (spm_merges(model, toks, scores, err, errlen) != 0) return -1;
        int64_t prefix = 1;
        ck_gguf_int(g, "tokenizer.ggml.add_space_prefix", &prefix);
        spm_pipeline(root, model, prefix != 0);
        add_bos(g, root, toks, 1);
        return 0;
    }
    return ck_err(err, errlen, "GGUF tokenizer model '%.*s' is not supported (gpt2, llama)", (int)(kind.len > 40 ? 40 : kind.len),
                  kind.p);
}

int ck_tok_load_gguf(const ck_gguf *g, ck_tok **out, char *err, size_t errlen) {
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) return ck_err(err, errlen, "out of memory");
    int rc = build(g, root, err, errlen);
    if (rc == 0) {
        const ck_gguf_kv *toks = ck_gguf_find(g, "tokenizer.ggml.tokens");
        cJSON *cfg = make_config(g, toks);
        rc = ck_tok_load_json(root, cfg, NULL, out, err, errlen);
        cJSON_Delete(cfg);
    }
    cJSON_Delete(root);
    return rc;
}
