/* tok_load.c — loads DIR/tokenizer.json (+ DIR/tokenizer_config.json, DIR/chat_template.jinja) into an
 * immutable ck_tok: BPE vocabulary and merges, added tokens, normalizer, pre-tokenizer, post-processor
 * and decoder. Every component type we do not implement is refused with an error naming it, instead of
 * being silently ignored, so a tokenizer that loads is one we encode faithfully.
 * Invariants: ids read from the file are checked to lie in [0, CK_TOK_MAX_IDS); a merge whose parts or
 * result are not in the vocabulary is an error (as in HF); all strings are copied into the arena, so
 * the cJSON tree is freed before returning. Limitation: cJSON strings are NUL-terminated, so a token
 * containing U+0000 is truncated at it (no supported tokenizer has one). */
#include "base/err.h"
#include "base/file.h"
#include "jinja/jinja.h"
#include "tok/tok_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK_TOK_MAX_IDS (1 << 26)

/* Size limits, far above real files, that only stop a runaway read: tokenizer.json is at most a few
 * tens of MB (Gemma 3's 262k-token vocabulary: 33 MB); tokenizer_config.json lists the added tokens
 * (Gemma 3: 1.2 MB); a chat template is a few KB. Optional files that are absent are skipped, but one that
 * is present and not a regular file (a directory, a FIFO, a broken link) is an error. */
#define TOKENIZER_MAX_BYTES ((size_t)512 << 20)
#define TOKENIZER_CONFIG_MAX_BYTES ((size_t)32 << 20)
#define CHAT_TEMPLATE_MAX_BYTES ((size_t)4 << 20)

static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char *type_of(const cJSON *o) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(ty) ? ty->valuestring : "";
}

static int get_bool(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

static int get_id(const cJSON *v, int32_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d < CK_TOK_MAX_IDS) || d != (double)(int32_t)d) return -1;
    *out = (int32_t)d;
    return 0;
}

static int add_str(ck_tok *t, const char *s, uint32_t *off, uint32_t *len, char *err, size_t errlen) {
    size_t n = strlen(s);
    if (ck_tok_arena_add(t, s, n, off) != 0) return ck_err(err, errlen, "tokenizer: out of memory");
    *len = (uint32_t)n;
    return 0;
}

/* Compiles a Split/ByteLevel pattern; literal = 1 for {"String": ...} patterns. */
static int compile_re(const char *pat, int literal, pcre2_code **out, char *err, size_t errlen) {
    int ec;
    PCRE2_SIZE eo;
    uint32_t flags = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, flags, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return ck_err(err, errlen, "tokenizer: bad pre-tokenizer regex at offset %zu: %s", (size_t)eo,
                      (const char *)msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up; the interpreter is the fallback */
    *out = re;
    return 0;
}

/* ---- normalizer ---- */

static int parse_normalizer(ck_tok *t, const cJSON *n, char *err, size_t errlen) {
    if (!n || cJSON_IsNull(n)) return 0;
    const char *ty = type_of(n);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(n, "normalizers"))
            if (parse_normalizer(t, it, err, errlen) != 0) return -1;
        return 0;
    }
    if (t->n_norm == CK_TOK_MAX_STEPS) return ck_err(err, errlen, "tokenizer: too many normalizers");
    ck_tok_norm *s = &t->norm[t->n_norm];
    memset(s, 0, sizeof *s);
    if (!strcmp(ty, "NFC")) s->kind = CK_NORM_NFC;
    else if (!strcmp(ty, "NFKC")) s->kind = CK_NORM_NFKC;
    else if (!strcmp(ty, "NFD")) s->kind = CK_NORM_NFD;
    else if (!strcmp(ty, "NFKD")) s->kind = CK_NORM_NFKD;
    else if (!strcmp(ty, "Replace")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "pattern"), "String");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(n, "content");
        if (!cJSON_IsString(p) || !cJSON_IsString(c) || !p->valuestring[0])
            return ck_err(err, errlen, "tokenizer: unsupported Replace normalizer (only non-empty String patterns)");
        s->kind = CK_NORM_REPLACE;
        if (add_str(t, p->valuestring, &s->pat_off, &s->pat_len, err, errlen) != 0) return -1;
        if (add_str(t, c->valuestring, &s->str_off, &s->str_len, err, errlen) != 0) return -1;
    } else if (!strcmp(ty, "Prepend")) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(n, "prepend");
        if (!cJSON_IsString(c)) return ck_err(err, errlen, "tokenizer: Prepend normalizer without a string");
        s->kind = CK_NORM_PREPEND;
        if (add_str(t, c->valuestring, &s->str_off, &s->str_len, err, errlen) != 0) return -1;
    } else {
        return ck_err(err, errlen, "tokenizer: unsupported normalizer type '%s'", ty);
    }
    t->n_norm++;
    return 0;
}

/* ---- pre-tokenizer ---- */

static int parse_pre(ck_tok *t, const cJSON *p, char *err, size_t errlen) {
    if (!p || cJSON_IsNull(p)) return 0;
    const char *ty = type_of(p);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"))
            if (parse_pre(t, it, err, errlen) != 0) return -1;
        return 0;
    }
    if (t->n_pre == CK_TOK_MAX_STEPS) return ck_err(err, errlen, "tokenizer: too many pre-tokenizers");
    ck_tok_pre *s = &t->pre[t->n_pre];
    memset(s, 0, sizeof *s);
    if (!strcmp(ty, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(pat, "String");
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(p, "behavior");
        const char *b = cJSON_IsString(beh) ? beh->valuestring : "";
        s->kind = CK_PRE_SPLIT;
        if (!strcmp(b, "Removed")) s->behavior = CK_SPLIT_REMOVED;
        else if (!strcmp(b, "Isolated")) s->behavior = CK_SPLIT_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) s->behavior = CK_SPLIT_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) s->behavior = CK_SPLIT_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) s->behavior = CK_SPLIT_CONTIGUOUS;
        else return ck_err(err, errlen, "tokenizer: unsupported Split behavior '%s'", b);
        s->invert = get_bool(p, "invert", 0);
        if (cJSON_IsString(rx)) {
            if (compile_re(rx->valuestring, 0, &s->re, err, errlen) != 0) return -1;
        } else if (cJSON_IsString(st) && st->valuestring[0]) {
            if (compile_re(st->valuestring, 1, &s->re, err, errlen) != 0) return -1;
        } else {
            return ck_err(err, errlen, "tokenizer: Split pre-tokenizer without a pattern");
        }
    } else if (!strcmp(ty, "ByteLevel")) {
        s->kind = CK_PRE_BYTELEVEL;
        s->behavior = CK_SPLIT_ISOLATED; /* HF keeps every piece of GPT-2's regex */
        s->add_prefix_space = get_bool(p, "add_prefix_space", 1);
        if (get_bool(p, "use_regex", 1) && compile_re(GPT2_REGEX, 0, &s->re, err, errlen) != 0) return -1;
        t->byte_level = 1;
    } else {
        return ck_err(err, errlen, "tokenizer: unsupported pre_tokenizer type '%s'", ty);
    }
    t->n_pre++;
    return 0;
}

/* ---- post-processor ---- */

static int parse_template(ck_tok *t, const cJSON *p, char *err, size_t errlen) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    int seen_seq = 0;
    t->n_post_pre = t->n_post_post = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, single) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        if (cJSON_GetObjectItemCaseSensitive(it, "Sequence")) {
            seen_seq = 1;
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
        if (!cJSON_IsString(name)) return ck_err(err, errlen, "tokenizer: malformed TemplateProcessing item");
        const cJSON *def = cJSON_GetObjectItemCaseSensitive(specials, name->valuestring);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
        if (!cJSON_IsArray(ids))
            return ck_err(err, errlen, "tokenizer: TemplateProcessing special token '%s' undefined",
                          name->valuestring);
        const cJSON *idv;
        cJSON_ArrayForEach(idv, ids) {
            int32_t id;
            if (get_id(idv, &id) != 0) return ck_err(err, errlen, "tokenizer: bad id in TemplateProcessing");
            int32_t *arr = seen_seq ? t->post_post : t->post_pre;
            size_t *n = seen_seq ? &t->n_post_post : &t->n_post_pre;
            if (*n == 8) return ck_err(err, errlen, "tokenizer: too many template special tokens");
            arr[(*n)++] = id;
        }
    }
    return 0;
}

static int parse_post(ck_tok *t, const cJSON *p, char *err, size_t errlen) {
    if (!p || cJSON_IsNull(p)) return 0;
    const char *ty = type_of(p);
    if (!strcmp(ty, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "processors"))
            if (parse_post(t, it, err, errlen) != 0) return -1;
        return 0;
    }
    if (!strcmp(ty, "ByteLevel")) return 0; /* only adjusts offsets */
    if (!strcmp(ty, "TemplateProcessing")) return parse_template(t, p, err, errlen);
    return ck_err(err, errlen, "tokenizer: unsupported post_processor type '%s'", ty);
}

/* ---- decoder ---- */

static int parse_dec(ck_tok *t, const cJSON *d, char *err, size_t errlen) {
    if (!d || cJSON_IsNull(d)) return 0;
    const char *ty = type_of(d);
    t->has_decoder = 1;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "decoders"))
            if (parse_dec(t, it, err, errlen) != 0) return -1;
        return 0;
    }
    if (t->n_dec == CK_TOK_MAX_STEPS) return ck_err(err, errlen, "tokenizer: too many decoders");
    ck_tok_dec *s = &t->dec[t->n_dec];
    memset(s, 0, sizeof *s);
    if (!strcmp(ty, "ByteLevel")) {
        s->kind = CK_DEC_BYTELEVEL;
    } else if (!strcmp(ty, "ByteFallback")) {
        s->kind = CK_DEC_BYTEFALLBACK;
    } else if (!strcmp(ty, "Fuse")) {
        s->kind = CK_DEC_FUSE;
    } else if (!strcmp(ty, "Replace")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "pattern"), "String");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(d, "content");
        if (!cJSON_IsString(p) || !cJSON_IsString(c) || !p->valuestring[0])
            return ck_err(err, errlen, "tokenizer: unsupported Replace decoder (only non-empty String patterns)");
        s->kind = CK_DEC_REPLACE;
        if (add_str(t, p->valuestring, &s->pat_off, &s->pat_len, err, errlen) != 0) return -1;
        if (add_str(t, c->valuestring, &s->str_off, &s->str_len, err, errlen) != 0) return -1;
    } else if (!strcmp(ty, "Strip")) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(d, "content");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "start");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(d, "stop");
        int32_t na, nb;
        if (!cJSON_IsString(c) || get_id(a, &na) != 0 || get_id(b, &nb) != 0)
            return ck_err(err, errlen, "tokenizer: malformed Strip decoder");
        s->kind = CK_DEC_STRIP;
        s->start = (size_t)na;
        s->stop = (size_t)nb;
        if (add_str(t, c->valuestring, &s->pat_off, &s->pat_len, err, errlen) != 0) return -1;
    } else if (!strcmp(ty, "Metaspace")) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(d, "replacement");
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(d, "prepend_scheme");
        if (!cJSON_IsString(r)) return ck_err(err, errlen, "tokenizer: malformed Metaspace decoder");
        s->kind = CK_DEC_METASPACE;
        s->start = cJSON_IsString(ps) ? strcmp(ps->valuestring, "never") != 0 : get_bool(d, "add_prefix_space", 1);
        if (add_str(t, r->valuestring, &s->pat_off, &s->pat_len, err, errlen) != 0) return -1;
    } else {
        return ck_err(err, errlen, "tokenizer: unsupported decoder type '%s'", ty);
    }
    t->n_dec++;
    return 0;
}

/* ---- model + added tokens ---- */

static int set_id(ck_tok *t, int32_t id, uint32_t off, uint32_t len, uint8_t flags) {
    t->id_off[id] = off;
    t->id_len[id] = len;
    t->id_flags[id] = flags;
    return 0;
}

static int parse_merge(const cJSON *m, const char **a, const char **b, char *tmp, size_t cap) {
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2) {
        const cJSON *x = cJSON_GetArrayItem(m, 0), *y = cJSON_GetArrayItem(m, 1);
        if (!cJSON_IsString(x) || !cJSON_IsString(y)) return -1;
        *a = x->valuestring;
        *b = y->valuestring;
        return 0;
    }
    if (!cJSON_IsString(m)) return -1;
    const char *s = m->valuestring;
    const char *sp = strchr(s, ' ');
    if (!sp || strchr(sp + 1, ' ') || (size_t)(sp - s) >= cap) return -1;
    memcpy(tmp, s, (size_t)(sp - s));
    tmp[sp - s] = 0;
    *a = tmp;
    *b = sp + 1;
    return 0;
}

static int parse_model(ck_tok *t, const cJSON *model, const cJSON *added, char *err, size_t errlen) {
    if (strcmp(type_of(model), "BPE") != 0 &&
        !(type_of(model)[0] == 0 && cJSON_GetObjectItemCaseSensitive(model, "merges")))
        return ck_err(err, errlen, "tokenizer: unsupported model type '%s' (only BPE)", type_of(model));
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
        return ck_err(err, errlen, "tokenizer: BPE model without vocab object or merges array");
    const cJSON *csp = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const cJSON *ews = cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix");
    if ((cJSON_IsString(csp) && csp->valuestring[0]) || (cJSON_IsString(ews) && ews->valuestring[0]))
        return ck_err(err, errlen, "tokenizer: BPE continuing_subword_prefix/end_of_word_suffix unsupported");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return ck_err(err, errlen, "tokenizer: BPE dropout unsupported");
    t->ignore_merges = get_bool(model, "ignore_merges", 0);
    t->byte_fallback = get_bool(model, "byte_fallback", 0);
    t->fuse_unk = get_bool(model, "fuse_unk", 0);

    /* ids span */
    int32_t max_id = -1, id;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (get_id(it, &id) != 0) return ck_err(err, errlen, "tokenizer: bad id for vocab entry '%s'", it->string);
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(it, added) {
        if (get_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &id) != 0 ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(it, "content")))
            return ck_err(err, errlen, "tokenizer: malformed added_tokens entry");
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return ck_err(err, errlen, "tokenizer: empty vocabulary");
    t->n_ids = max_id + 1;
    t->id_off = malloc((size_t)t->n_ids * sizeof *t->id_off);
    t->id_len = malloc((size_t)t->n_ids * sizeof *t->id_len);
    t->id_flags = calloc((size_t)t->n_ids, 1);
    if (!t->id_off || !t->id_len || !t->id_flags) return ck_err(err, errlen, "tokenizer: out of memory");
    for (int32_t i = 0; i < t->n_ids; i++) t->id_len[i] = CK_TOK_NO_ID;

    if (ck_tok_strmap_init(&t->vocab, (size_t)cJSON_GetArraySize(vocab)) != 0)
        return ck_err(err, errlen, "tokenizer: out of memory");
    cJSON_ArrayForEach(it, vocab) {
        uint32_t off = 0, len = 0;
        (void)get_id(it, &id);
        if (add_str(t, it->string, &off, &len, err, errlen) != 0) return -1;
        if (ck_tok_strmap_put(&t->vocab, t->arena, off, len, id) < 0)
            return ck_err(err, errlen, "tokenizer: out of memory");
        set_id(t, id, off, len, 0);
    }

    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    t->unk_id = -1;
    if (cJSON_IsString(unk)) {
        t->unk_id = ck_tok_strmap_get(&t->vocab, t->arena, unk->valuestring, strlen(unk->valuestring));
        if (t->unk_id < 0) return ck_err(err, errlen, "tokenizer: unk_token '%s' not in vocab", unk->valuestring);
    }

    /* merges: (left id, right id) -> (rank, merged id) */
    size_t n_merges = (size_t)cJSON_GetArraySize(merges);
    if (n_merges > INT32_MAX) return ck_err(err, errlen, "tokenizer: too many merges");
    if (ck_tok_u64map_init(&t->merges, n_merges) != 0) return ck_err(err, errlen, "tokenizer: out of memory");
    ck_tok_buf cat = {0};
    char tmp[1024];
    int32_t rank = 0;
    int rc = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *b;
        if (parse_merge(it, &a, &b, tmp, sizeof tmp) != 0) {
            rc = ck_err(err, errlen, "tokenizer: malformed merge #%d", rank);
            break;
        }
        size_t la = strlen(a), lb = strlen(b);
        int32_t ia = ck_tok_strmap_get(&t->vocab, t->arena, a, la);
        int32_t ib = ck_tok_strmap_get(&t->vocab, t->arena, b, lb);
        cat.len = 0;
        if (ck_tok_buf_put(&cat, a, la) != 0 || ck_tok_buf_put(&cat, b, lb) != 0) {
            rc = ck_err(err, errlen, "tokenizer: out of memory");
            break;
        }
        int32_t ic = ck_tok_strmap_get(&t->vocab, t->arena, cat.p, cat.len);
        if (ia < 0 || ib < 0 || ic < 0) {
            rc = ck_err(err, errlen, "tokenizer: merge #%d ('%s' '%s') uses a token outside the vocab", rank, a, b);
            break;
        }
        uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
        int r = ck_tok_u64map_put(&t->merges, key, rank, ic);
        if (r < 0) {
            rc = ck_err(err, errlen, "tokenizer: out of memory");
            break;
        }
        if (r == 1) { /* duplicate pair: HF's HashMap keeps the last definition */
            struct ck_tok_um_entry *e = (struct ck_tok_um_entry *)ck_tok_u64map_get(&t->merges, key);
            e->a = rank;
            e->b = ic;
        }
        rank++;
    }
    free(cat.p);
    if (rc) return rc;

    for (int b = 0; b < 256; b++) {
        char u[8];
        int k = ck_tok_utf8_put(ck_tok_byte_to_cp((uint8_t)b), u);
        t->byte_id[b] = ck_tok_strmap_get(&t->vocab, t->arena, u, (size_t)k);
        snprintf(u, sizeof u, "<0x%02X>", b);
        t->fallback_id[b] = ck_tok_strmap_get(&t->vocab, t->arena, u, 6);
    }

    /* added tokens (after the normalizer is known: normalized ones are matched in normalized form) */
    size_t n_added = (size_t)cJSON_GetArraySize(added);
    t->added = calloc(n_added ? n_added : 1, sizeof *t->added);
    if (!t->added || ck_tok_trie_init(&t->trie_raw) != 0 || ck_tok_trie_init(&t->trie_norm) != 0)
        return ck_err(err, errlen, "tokenizer: out of memory");
    ck_tok_buf nb = {0};
    cJSON_ArrayForEach(it, added) {
        ck_tok_added *a = &t->added[t->n_added];
        const char *content = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        (void)get_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &a->id);
        a->special = (uint8_t)get_bool(it, "special", 0);
        a->lstrip = (uint8_t)get_bool(it, "lstrip", 0);
        a->rstrip = (uint8_t)get_bool(it, "rstrip", 0);
        a->single_word = (uint8_t)get_bool(it, "single_word", 0);
        a->normalized = (uint8_t)get_bool(it, "normalized", !a->special);
        uint32_t off = 0, len = 0;
        if (add_str(t, content, &off, &len, err, errlen) != 0) goto fail;
        set_id(t, a->id, off, len, (uint8_t)(CK_TOKF_ADDED | (a->special ? CK_TOKF_SPECIAL : 0)));
        if (ck_tok_strmap_put(&t->added_map, t->arena, off, len, a->id) < 0) goto oom;
        a->off = off;
        a->len = len;
        if (len == 0) {
            t->n_added++;
            continue;
        }
        if (a->normalized && t->n_norm) {
            if (ck_tok_normalize(t, content, len, &nb, err, errlen) != 0) goto fail;
            if (ck_tok_arena_add(t, nb.p, nb.len, &a->off) != 0) goto oom;
            a->len = (uint32_t)nb.len;
        }
        if (ck_tok_trie_add(a->normalized ? &t->trie_norm : &t->trie_raw, (const uint8_t *)t->arena + a->off,
                            a->len, (int32_t)t->n_added) != 0)
            goto oom;
        t->n_added++;
    }
    free(nb.p);
    return 0;
oom:
    ck_err(err, errlen, "tokenizer: out of memory");
fail:
    free(nb.p);
    return -1;
}

/* ---- tokenizer_config.json ---- */

static char *special_str(const cJSON *v) {
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

/* The special tokens HF's special_tokens_map passes to chat templates, as strings (an AddedToken dict
 * gives its content), additional_special_tokens as a list of strings. */
static int load_specials(ck_tok *t, const cJSON *cfg) {
    static const char *const names[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                                        "cls_token", "mask_token", NULL};
    t->chat_specials = cJSON_CreateObject();
    if (!t->chat_specials) return -1;
    for (int i = 0; names[i]; i++) {
        char *s = special_str(cJSON_GetObjectItemCaseSensitive(cfg, names[i]));
        int ok = !s || cJSON_AddStringToObject(t->chat_specials, names[i], s);
        free(s);
        if (!ok) return -1;
    }
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(cfg, "additional_special_tokens"), *it;
    if (cJSON_IsArray(extra)) {
        cJSON *arr = cJSON_AddArrayToObject(t->chat_specials, "additional_special_tokens");
        if (!arr) return -1;
        cJSON_ArrayForEach(it, extra) {
            char *s = special_str(it);
            cJSON *str = s ? cJSON_CreateString(s) : NULL;
            free(s);
            if (str && !cJSON_AddItemToArray(arr, str)) { cJSON_Delete(str); return -1; }
        }
    }
    return 0;
}

/* A JSON value's kind, for messages. */
static const char *json_kind(const cJSON *v) {
    return cJSON_IsString(v) ? "a string" : cJSON_IsNumber(v) ? "a number" : cJSON_IsBool(v) ? "a boolean"
         : cJSON_IsArray(v) ? "a list" : cJSON_IsObject(v) ? "an object" : "null";
}

/* The chat templates of a parsed tokenizer_config.json into t: a string, or HF's named list
 * [{"name", "template"}, ...] whose "default" is the template and whose "tool_use" is rendered when tools
 * are given (as HF's get_chat_template picks). None when the key is absent or null. A value of another
 * shape, or a list without "default", is kept as a template that cannot be used, with the reason (HF
 * refuses such a list when it renders): a run says why instead of going on without a template. 0, or -1
 * when out of memory. */
static int config_templates(ck_tok *t, const cJSON *cfg) {
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template"), *it;
    char why[256];
    if (!ct || cJSON_IsNull(ct)) return 0;
    if (cJSON_IsString(ct))
        return ck_tok_tmpl_set(&t->chat, ct->valuestring, strlen(ct->valuestring), why, sizeof why) != 0 && !t->chat.src
                   ? -1 : 0;
    if (!cJSON_IsArray(ct)) {
        snprintf(why, sizeof why, "tokenizer_config.json: chat_template is %s, not a string or a list of "
                                  "{\"name\", \"template\"}", json_kind(ct));
        return ck_tok_tmpl_fail(&t->chat, why);
    }
    const cJSON *def = NULL, *tool = NULL;
    int i = 0;
    char names[160] = "";
    cJSON_ArrayForEach(it, ct) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *tp = cJSON_GetObjectItemCaseSensitive(it, "template");
        if (!cJSON_IsString(nm) || !cJSON_IsString(tp)) {
            snprintf(why, sizeof why, "tokenizer_config.json: chat_template[%d] is not {\"name\": string, "
                                      "\"template\": string}", i);
            return ck_tok_tmpl_fail(&t->chat, why);
        }
        if (!strcmp(nm->valuestring, "default")) def = tp;
        if (!strcmp(nm->valuestring, "tool_use")) tool = tp;
        size_t n = strlen(names);
        snprintf(names + n, sizeof names - n, "%s'%s'", n ? ", " : "", nm->valuestring);
        i++;
    }
    if (!def) {
        snprintf(why, sizeof why, "tokenizer_config.json: chat_template names templates [%s] but none \"default\"",
                 names);
        if (ck_tok_tmpl_fail(&t->chat, why) != 0) return -1;
    } else if (ck_tok_tmpl_set(&t->chat, def->valuestring, strlen(def->valuestring), why, sizeof why) != 0 &&
               !t->chat.src) {
        return -1;
    }
    if (tool && ck_tok_tmpl_set(&t->chat_tool, tool->valuestring, strlen(tool->valuestring), why, sizeof why) != 0 &&
        !t->chat_tool.src)
        return -1;
    return 0;
}

/* bos/eos strings, the special tokens and the chat template from a parsed tokenizer_config.json (cfg may
 * be NULL); a separate template text (tmpl_file: chat_template.jinja) wins over the config's, as in HF
 * transformers. */
static int apply_config(ck_tok *t, const cJSON *cfg, const char *tmpl_file, char *err, size_t errlen) {
    if (cfg) {
        t->bos_str = special_str(cJSON_GetObjectItemCaseSensitive(cfg, "bos_token"));
        t->eos_str = special_str(cJSON_GetObjectItemCaseSensitive(cfg, "eos_token"));
        if (load_specials(t, cfg) != 0) return ck_err(err, errlen, "tokenizer: out of memory");
    }
    t->bos_id = t->bos_str ? ck_tok_id(t, t->bos_str) : -1;
    t->eos_id = t->eos_str ? ck_tok_id(t, t->eos_str) : -1;
    /* a template that does not parse is kept and reported, not a load failure */
    char cerr[256];
    if (tmpl_file ? ck_tok_tmpl_set(&t->chat, tmpl_file, strlen(tmpl_file), cerr, sizeof cerr) != 0 && !t->chat.src
                  : cfg && config_templates(t, cfg) != 0)
        return ck_err(err, errlen, "tokenizer: out of memory");
    return 0;
}

static int load_config(ck_tok *t, const char *dir, char *err, size_t errlen) {
    char path[4096];
    char *buf = NULL, *tmpl = NULL;
    size_t len;
    if (ck_path_join(path, sizeof path, dir, "tokenizer_config.json", err, errlen) != 0) return -1;
    cJSON *cfg = NULL;
    if (ck_path_exists_any(path)) {
        if (ck_file_read_max(path, TOKENIZER_CONFIG_MAX_BYTES, &buf, &len, err, errlen) != 0) return -1;
        cfg = cJSON_ParseWithLength(buf, len);
        free(buf);
        if (!cfg) return ck_err(err, errlen, "tokenizer: malformed JSON in %s", path);
    }
    if (ck_path_join(path, sizeof path, dir, "chat_template.jinja", err, errlen) != 0 ||
        (ck_path_exists_any(path) && ck_file_read_max(path, CHAT_TEMPLATE_MAX_BYTES, &tmpl, &len, err, errlen) != 0)) {
        cJSON_Delete(cfg);
        return -1;
    }
    int rc = apply_config(t, cfg, tmpl, err, errlen);
    cJSON_Delete(cfg);
    free(tmpl);
    return rc;
}

/* ---- public ---- */

/* The tokenizer of a parsed tokenizer.json; origin names it in errors. The configuration is applied by
 * the caller (it needs the vocabulary). */
static int tok_from_json(const cJSON *root, const char *origin, ck_tok **out, char *err, size_t errlen) {
    *out = NULL;
    ck_tok *t = calloc(1, sizeof *t);
    if (!t) return ck_err(err, errlen, "tokenizer: out of memory");
    t->bos_id = t->eos_id = t->unk_id = -1;
    int rc = -1;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) {
        ck_err(err, errlen, "tokenizer: %s has no model object", origin);
        goto done;
    }
    if (parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), err, errlen) != 0) goto done;
    if (parse_pre(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), err, errlen) != 0) goto done;
    if (parse_dec(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"), err, errlen) != 0) goto done;
    if (parse_model(t, model, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), err, errlen) != 0) goto done;
    if (parse_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), err, errlen) != 0) goto done;
    for (size_t i = 0; i < t->n_post_pre; i++)
        if (t->post_pre[i] >= t->n_ids) goto badpost;
    for (size_t i = 0; i < t->n_post_post; i++)
        if (t->post_post[i] >= t->n_ids) goto badpost;
    rc = 0;
    goto done;
badpost:
    ck_err(err, errlen, "tokenizer: post-processor id outside the vocabulary");
done:
    if (rc != 0) {
        ck_tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int ck_tok_load_json(const cJSON *tokenizer, const cJSON *config, const char *chat_template, ck_tok **out,
                     char *err, size_t errlen) {
    if (tok_from_json(tokenizer, "the tokenizer", out, err, errlen) != 0) return -1;
    if (apply_config(*out, config, chat_template, err, errlen) != 0) {
        ck_tok_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int ck_tok_load(const char *dir, ck_tok **out, char *err, size_t errlen) {
    *out = NULL;
    char path[4096];
    if (ck_path_join(path, sizeof path, dir, "tokenizer.json", err, errlen) != 0) return -1;
    char *buf;
    size_t len;
    if (ck_file_read_max(path, TOKENIZER_MAX_BYTES, &buf, &len, err, errlen) != 0) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t at = end && end >= buf ? (size_t)(end - buf) : 0;
        free(buf);
        return ck_err(err, errlen, "tokenizer: malformed JSON in %s near byte %zu", path, at);
    }
    free(buf);
    int rc = tok_from_json(root, path, out, err, errlen);
    cJSON_Delete(root);
    if (rc == 0 && load_config(*out, dir, err, errlen) != 0) {
        ck_tok_free(*out);
        *out = NULL;
        rc = -1;
    }
    return rc;
}

void ck_tok_free(ck_tok *t) {
    if (!t) return;
    free(t->arena);
    free(t->id_off);
    free(t->id_len);
    free(t->id_flags);
    ck_tok_strmap_free(&t->vocab);
    ck_tok_strmap_free(&t->added_map);
    ck_tok_u64map_free(&t->merges);
    free(t->added);
    ck_tok_trie_free(&t->trie_raw);
    ck_tok_trie_free(&t->trie_norm);
    for (size_t i = 0; i < t->n_pre; i++) pcre2_code_free(t->pre[i].re);
    free(t->bos_str);
    free(t->eos_str);
    ck_tok_tmpl_free(&t->chat);
    ck_tok_tmpl_free(&t->chat_tool);
    cJSON_Delete(t->chat_specials);
    free(t);
}

int32_t ck_tok_vocab_size(const ck_tok *t) { return t->n_ids; }

int32_t ck_tok_id(const ck_tok *t, const char *token) {
    size_t n = strlen(token);
    int32_t id = ck_tok_strmap_get(&t->added_map, t->arena, token, n);
    return id >= 0 ? id : ck_tok_strmap_get(&t->vocab, t->arena, token, n);
}

int ck_tok_is_special(const ck_tok *t, int32_t id) {
    return id >= 0 && id < t->n_ids && (t->id_flags[id] & CK_TOKF_SPECIAL);
}

int32_t ck_tok_bos_id(const ck_tok *t) { return t->bos_id; }
int32_t ck_tok_eos_id(const ck_tok *t) { return t->eos_id; }
