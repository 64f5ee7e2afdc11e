/* test_gguf_tok.c — the tokenizer a GGUF file carries (tokenizer.ggml.*) behaves as the tokenizer.json
 * it was written from: for the Qwen3 and Llama 3.1 vocabularies (byte-level, "gpt2") and Gemma 3's
 * (SentencePiece, "llama", no space prefix), tokenizer.json is written as GGUF metadata (the converter's
 * writer), read back by ck_tok_load_gguf, and every reference string of
 * tests/data/tokenizers/reference.json encodes to the same ids (with and without special tokens), decodes
 * to the same text, and every reference chat renders the same. A small SentencePiece vocabulary (tokens +
 * scores) encodes as its merges by score dictate, with byte fallback; broken tokenizer metadata is refused. */
#include "format/gguf.h"
#include "format/gguf_write.h"
#include "format/hfconfig.h"
#include "testutil.h"
#include "tok/tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ck_gguf_write_tokenizer(ck_gguf_w *w, const char *hf_dir, const ck_config *c, char *err, size_t errlen);

/* The tokenizer of a GGUF image made by w; the image stays alive in *img. */
static ck_tok *load_image(ck_gguf_w *w, uint8_t **img, char *err, size_t errlen) {
    size_t len;
    ck_gguf g;
    ck_tok *t = NULL;
    if (ck_gguf_w_image(w, img, &len) != 0) return NULL;
    if (ck_gguf_parse(*img, len, &g, err, errlen) != 0) return NULL;
    if (ck_tok_load_gguf(&g, &t, err, errlen) != 0) t = NULL;
    ck_gguf_free(&g);
    return t;
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || !memcmp(a, b, na * sizeof *a));
}

static void compare_encode(const char *name, ck_tok *a, ck_tok *b, const char *text) {
    char err[256];
    for (int special = 0; special < 2; special++) {
        int32_t *ia = NULL, *ib = NULL;
        size_t na = 0, nb = 0;
        int ra = ck_tok_encode(a, text, strlen(text), special, &ia, &na, err, sizeof err);
        int rb = ck_tok_encode(b, text, strlen(text), special, &ib, &nb, err, sizeof err);
        CK_EXPECT(ra == rb && (ra != 0 || same_ids(ia, na, ib, nb)), "%s: '%.40s' (special %d): %zu vs %zu ids", name,
                  text, special, na, nb);
        if (ra == 0 && rb == 0) {
            char *ta = NULL, *tb = NULL;
            size_t la = 0, lb = 0;
            ck_tok_decode(a, ia, na, 1, &ta, &la, err, sizeof err);
            ck_tok_decode(b, ib, nb, 1, &tb, &lb, err, sizeof err);
            CK_EXPECT(ta && tb && la == lb && !memcmp(ta, tb, la), "%s: decode of '%.40s' differs", name, text);
            free(ta), free(tb);
        }
        free(ia), free(ib);
    }
}

static void compare_chat(const char *name, ck_tok *a, ck_tok *b, const cJSON *chat) {
    const cJSON *c;
    CK_EXPECT(ck_tok_has_chat(a) == ck_tok_has_chat(b), "%s: chat template support differs", name);
    cJSON_ArrayForEach(c, chat) {
        const cJSON *msgs = cJSON_GetObjectItem(c, "messages"), *m;
        ck_chat_msg list[8];
        size_t n = 0;
        cJSON_ArrayForEach(m, msgs) if (n < 8) {
            list[n].role = cJSON_GetObjectItem(m, "role")->valuestring;
            list[n].content = cJSON_GetObjectItem(m, "content")->valuestring;
            n++;
        }
        int gen = cJSON_IsTrue(cJSON_GetObjectItem(c, "add_generation_prompt"));
        char *ra = NULL, *rb = NULL, err[256];
        int ca = ck_tok_chat_render(a, list, n, gen, 1, &ra, err, sizeof err);
        int cb = ck_tok_chat_render(b, list, n, gen, 1, &rb, err, sizeof err);
        CK_EXPECT(ca == cb && (ca != 0 || !strcmp(ra, rb)), "%s: chat render differs", name);
        free(ra), free(rb);
    }
}

/* kind: the tokenizer.ggml.model the writer must pick; prefix: its add_space_prefix ("llama" only) */
static void check_vocab(const char *name, const char *dir, const cJSON *ref, const char *kind, int prefix) {
    char err[512];
    ck_tok *want = NULL, *got = NULL;
    CK_EXPECT(ck_tok_load(dir, &want, err, sizeof err) == 0, "%s: %s", name, err);
    ck_config c;
    memset(&c, 0, sizeof c);
    c.bos_id = -1;
    ck_gguf_w w;
    ck_gguf_w_init(&w);
    uint8_t *img = NULL, *img2 = NULL;
    CK_EXPECT(ck_gguf_write_tokenizer(&w, dir, &c, err, sizeof err) == 0, "%s: write: %s", name, err);
    got = load_image(&w, &img, err, sizeof err);
    CK_EXPECT(got != NULL, "%s: GGUF tokenizer: %s", name, err);
    size_t len;
    ck_gguf g;
    if (ck_gguf_w_image(&w, &img2, &len) == 0 && ck_gguf_parse(img2, len, &g, err, sizeof err) == 0) {
        ck_gguf_str model = {"", 0};
        int64_t p = -1;
        ck_gguf_string(&g, "tokenizer.ggml.model", &model);
        CK_EXPECT(ck_gguf_str_eq(model, kind), "%s: written as '%.*s', want '%s'", name, (int)model.len, model.p, kind);
        CK_EXPECT(!strcmp(kind, "gpt2") || (ck_gguf_int(&g, "tokenizer.ggml.add_space_prefix", &p) && p == prefix),
                  "%s: add_space_prefix %lld, want %d", name, (long long)p, prefix);
        ck_gguf_free(&g);
    }
    if (want && got) {
        CK_EXPECT(ck_tok_vocab_size(want) == ck_tok_vocab_size(got), "%s: vocab %d vs %d", name, ck_tok_vocab_size(want),
                  ck_tok_vocab_size(got));
        CK_EXPECT(ck_tok_bos_id(want) == ck_tok_bos_id(got) && ck_tok_eos_id(want) == ck_tok_eos_id(got), "%s: bos/eos",
                  name);
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(ref, "encode"))
            compare_encode(name, want, got, cJSON_GetObjectItem(e, "text")->valuestring);
        compare_chat(name, want, got, cJSON_GetObjectItem(ref, "chat"));
    }
    ck_tok_free(want), ck_tok_free(got);
    free(img), free(img2);
    ck_gguf_w_free(&w);
}

/* A SentencePiece vocabulary with scores: merges follow the scores, unknown characters fall back to bytes. */
static void check_spm(void) {
    const char *toks[] = {"<unk>", "<s>", "</s>", "<0x41>", "\xe2\x96\x81", "a", "b", "c", "ab", "bc", "abc", "\342\226\201ab"};
    /* (the last is U+2581 then "ab", in octal escapes: a hex escape would take the a and b in) */
    float scores[] = {0, 0, 0, 0, -1, -2, -3, -4, -5, -0.5f, -6, -7};
    int32_t types[] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 1};
    size_t n = sizeof toks / sizeof toks[0];
    ck_gguf_w w;
    ck_gguf_w_init(&w);
    ck_gguf_w_str(&w, "tokenizer.ggml.model", "llama");
    ck_gguf_w_arr_str(&w, "tokenizer.ggml.tokens", toks, NULL, n);
    ck_gguf_w_arr_f32(&w, "tokenizer.ggml.scores", scores, n);
    ck_gguf_w_arr_i32(&w, "tokenizer.ggml.token_type", types, n);
    ck_gguf_w_u32(&w, "tokenizer.ggml.bos_token_id", 1);
    ck_gguf_w_u32(&w, "tokenizer.ggml.eos_token_id", 2);
    ck_gguf_w_u32(&w, "tokenizer.ggml.unknown_token_id", 0);
    uint8_t *img = NULL;
    char err[256];
    ck_tok *t = load_image(&w, &img, err, sizeof err);
    CK_EXPECT(t != NULL, "spm: %s", err);
    if (t) {
        /* merges by score: (b,c) -0.5, (a,b) -5, (a,bc) -6, (ab,c) -6, (▁,ab) -7 */
        struct { const char *text; int special; int32_t ids[6]; size_t n; } cases[] = {
            {"abc", 0, {4, 10}, 2},     /* ▁ a b c -> ▁ a bc -> ▁ abc */
            {"ab", 1, {1, 11}, 2},      /* <s> + ▁ a b -> ▁ ab -> ▁ab */
            {"A", 0, {4, 3}, 2},        /* ▁, then byte fallback <0x41> */
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int32_t *ids = NULL;
            size_t k = 0;
            int rc = ck_tok_encode(t, cases[i].text, strlen(cases[i].text), cases[i].special, &ids, &k, err, sizeof err);
            CK_EXPECT(rc == 0 && same_ids(ids, k, cases[i].ids, cases[i].n), "spm '%s': %zu ids, first %d", cases[i].text,
                      k, k ? ids[0] : -1);
            char *text = NULL;
            size_t len = 0;
            if (rc == 0 && ck_tok_decode(t, ids, k, 1, &text, &len, err, sizeof err) == 0)
                CK_EXPECT(len == strlen(cases[i].text) && !memcmp(text, cases[i].text, len), "spm decode '%s' -> '%.*s'",
                          cases[i].text, (int)len, text);
            free(text), free(ids);
        }
    }
    ck_tok_free(t);
    free(img);
    ck_gguf_w_free(&w);
}

static void check_broken(void) {
    struct { const char *model, *pre; int with_tokens; const char *want; } cases[] = {
        {"gpt2", "qwen2", 0, "no tokenizer"},
        {"bert", "qwen2", 1, "not supported"},
        {"gpt2", "made-up", 1, "pre-tokenizer"},
        {"llama", NULL, 1, "scores"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_gguf_w w;
        ck_gguf_w_init(&w);
        ck_gguf_w_str(&w, "tokenizer.ggml.model", cases[i].model);
        if (cases[i].pre) ck_gguf_w_str(&w, "tokenizer.ggml.pre", cases[i].pre);
        const char *toks[] = {"a", "b"};
        if (cases[i].with_tokens) ck_gguf_w_arr_str(&w, "tokenizer.ggml.tokens", toks, NULL, 2);
        uint8_t *img = NULL;
        char err[256] = "";
        ck_tok *t = load_image(&w, &img, err, sizeof err);
        CK_EXPECT(!t && strstr(err, cases[i].want), "broken case %zu: '%s' (want '%s')", i, err, cases[i].want);
        ck_tok_free(t);
        free(img);
        ck_gguf_w_free(&w);
    }
}

/* Qwen3.5's pre-tokenizer: letters and combining marks form one piece. With the vocabulary {x, y, and
 * the byte-level forms of U+0301 and of "x" U+0301 "y"} and the merges that build it, "x\u0301y" is one
 * token under "qwen35"; under "qwen2" the mark starts a second piece ("x", "\u0301y") and the text is
 * three tokens. (NFC leaves x + U+0301 alone: there is no precomposed form.) */
static void check_qwen35_pre(void) {
    for (int q35 = 0; q35 < 2; q35++) {
        ck_gguf_w w;
        ck_gguf_w_init(&w);
        ck_gguf_w_str(&w, "tokenizer.ggml.model", "gpt2");
        ck_gguf_w_str(&w, "tokenizer.ggml.pre", q35 ? "qwen35" : "qwen2");
        /* bytes 78 cc 81 79 in byte-level form: x, U+00CC, U+0123, y */
        const char *toks[] = {"x", "\xc3\x8c", "\xc4\xa3", "y", "\xc3\x8c\xc4\xa3", "x\xc3\x8c\xc4\xa3",
                              "x\xc3\x8c\xc4\xa3y"};
        const char *merges[] = {"\xc3\x8c \xc4\xa3", "x \xc3\x8c\xc4\xa3", "x\xc3\x8c\xc4\xa3 y"};
        ck_gguf_w_arr_str(&w, "tokenizer.ggml.tokens", toks, NULL, 7);
        ck_gguf_w_arr_str(&w, "tokenizer.ggml.merges", merges, NULL, 3);
        uint8_t *img = NULL;
        char err[256] = "";
        ck_tok *t = load_image(&w, &img, err, sizeof err);
        CK_EXPECT(t != NULL, "pre-tokenizer %s: %s", q35 ? "qwen35" : "qwen2", err);
        int32_t *ids = NULL;
        size_t n = 0;
        if (t && ck_tok_encode(t, "x\xcc\x81y", 4, 0, &ids, &n, err, sizeof err) == 0) {
            if (q35) CK_EXPECT(n == 1 && ids[0] == 6, "qwen35: %zu ids, first %d (want [6])", n, n ? ids[0] : -1);
            else CK_EXPECT(n == 3 && ids[0] == 0 && ids[1] == 4 && ids[2] == 3, "qwen2: %zu ids (want [0, 4, 3])", n);
        } else if (t) {
            CK_EXPECT(0, "encode: %s", err);
        }
        free(ids);
        ck_tok_free(t);
        free(img);
        ck_gguf_w_free(&w);
    }
}

/* A tokenizer.json whose merges are not "a b" strings or [a, b] pairs: the converter says which merge. */
static void check_write_broken(void) {
    static const char *const docs[] = {
        /* SentencePiece BPE (Gemma's normalizer) */
        "{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"},"
        " \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
        " \"merges\": [[\"a\", \"b\"], 42]}}",
        /* byte-level BPE */
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\", [1]]}}",
        /* a merge string without a space, in both writers */
        "{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"},"
        " \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
        " \"merges\": [\"a b\", \"ab\"]}}",
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [[\"a\", \"b\"], \"ab\"]}}",
        /* a pair of three */
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\", [\"a\", \"b\", \"c\"]]}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char dir[] = "/tmp/ck_gguf_tok_XXXXXX", path[64], err[256] = "";
        CK_EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        FILE *f = fopen(path, "w");
        if (f) fputs(docs[i], f), fclose(f);
        ck_config c;
        memset(&c, 0, sizeof c);
        c.bos_id = -1;
        ck_gguf_w w;
        ck_gguf_w_init(&w);
        int rc = ck_gguf_write_tokenizer(&w, dir, &c, err, sizeof err);
        CK_EXPECT(rc == -1 && strstr(err, "malformed merge #1"), "broken merges %zu: rc %d, '%s'", i, rc, err);
        ck_gguf_w_free(&w);
        remove(path), rmdir(dir);
    }
}

int main(void) {
    cJSON *ref = ck_test_json(CK_TEST_DATA "/tokenizers/reference.json");
    check_vocab("qwen3", CK_TEST_UNPACKED "/qwen3-tiny", cJSON_GetObjectItem(ref, "qwen3"), "gpt2", 0);
    check_vocab("llama3_1", CK_TEST_UNPACKED "/tokenizers/llama3_1", cJSON_GetObjectItem(ref, "llama3_1"), "gpt2", 0);
    check_vocab("gemma3", CK_TEST_UNPACKED "/tokenizers/gemma3", cJSON_GetObjectItem(ref, "gemma3"), "llama", 0);
    check_spm();
    check_broken();
    check_write_broken();
    check_qwen35_pre();
    cJSON_Delete(ref);
    return ck_test_done("test_gguf_tok");
}
