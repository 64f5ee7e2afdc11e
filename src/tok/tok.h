/* tok.h — tokenizer.json (HF `tokenizers`) BPE and the chat prompt of tokenizer_config.json.
 * Supports byte-level BPE (GPT-2/Llama 3/Qwen style: NFC normalizer, Split regex pre-tokenizer via PCRE2,
 * ByteLevel) and sentencepiece-style BPE (metaspace `▁`, byte fallback). Added/special tokens are matched
 * before BPE. Encoding matches HF `tokenizer.encode(text, add_special_tokens=...)` id for id.
 * A ck_tok is immutable after load and safe to share between threads. */
#ifndef CK_TOK_H
#define CK_TOK_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_tok ck_tok;

/* Loads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json (chat template, bos/eos). */
int ck_tok_load(const char *dir, ck_tok **out, char *err, size_t errlen);

/* The same from parsed documents: tokenizer.json, tokenizer_config.json (or NULL) and a chat template
 * used when the config has none (or NULL). The documents stay the caller's. */
struct cJSON;
int ck_tok_load_json(const struct cJSON *tokenizer, const struct cJSON *config, const char *chat_template,
                     ck_tok **out, char *err, size_t errlen);

/* A tokenizer from a GGUF file's tokenizer.ggml.* metadata (tok_gguf.c): byte-level BPE ("gpt2") with
 * the pre-tokenizer its `pre` names, or SentencePiece ("llama": merges derived from the scores); the chat
 * template from tokenizer.chat_template. */
struct ck_gguf;
int ck_tok_load_gguf(const struct ck_gguf *g, ck_tok **out, char *err, size_t errlen);
void ck_tok_free(ck_tok *t);

/* Number of ids (max id + 1 over the vocabulary and added tokens). */
int32_t ck_tok_vocab_size(const ck_tok *t);

/* Id of an exact token string (vocab or added token), or -1. */
int32_t ck_tok_id(const ck_tok *t, const char *token);

/* Encodes text[0..len). add_special: apply the post-processor's special tokens (e.g. Llama 3's BOS),
 * as HF `encode(add_special_tokens=True)`. *ids is malloc'd (caller frees), non-NULL even for 0 ids.
 * text must be valid UTF-8 (HF takes a Rust &str); anything else is an error. */
int ck_tok_encode(const ck_tok *t, const char *text, size_t len, int add_special, int32_t **ids,
                  size_t *n_ids, char *err, size_t errlen);

/* Decodes ids to bytes as HF `decode(skip_special_tokens=skip_special)`; *out is malloc'd and
 * NUL-terminated, *len excludes the NUL. Unknown ids are an error. */
int ck_tok_decode(const ck_tok *t, const int32_t *ids, size_t n_ids, int skip_special, char **out,
                  size_t *len, char *err, size_t errlen);

/* 1 when id is a special added token (e.g. <|im_end|>). */
int ck_tok_is_special(const ck_tok *t, int32_t id);

/* Streaming decode: feeds one id at a time and yields only complete UTF-8 text, holding back the
 * bytes of a character split across tokens. Special tokens are skipped. The stream keeps its buffers
 * between tokens (nothing is allocated per token once they have grown); ck_tok_stream_free releases
 * them. */
typedef struct ck_tok_stream {
    const ck_tok *tok;
    uint8_t pending[8]; /* bytes of an incomplete UTF-8 character */
    size_t n_pending;
    int first;          /* no token emitted yet (for decoders that strip a leading space) */
    struct ck_tok_scratch *scratch; /* decode buffers, owned */
} ck_tok_stream;

void ck_tok_stream_init(ck_tok_stream *s, const ck_tok *t);
/* Appends the text ready after `id` into buf (cap bytes incl. NUL); returns the byte count or -1
 * (unknown id, or the text does not fit in cap). Invalid byte sequences come out as U+FFFD. */
int ck_tok_stream_push(ck_tok_stream *s, int32_t id, char *buf, size_t cap);
void ck_tok_stream_free(ck_tok_stream *s);
/* Flushes held-back bytes (as U+FFFD for an incomplete character); returns the byte count. */
int ck_tok_stream_flush(ck_tok_stream *s, char *buf, size_t cap);

/* BOS/EOS strings from tokenizer_config.json resolved to ids, -1 when absent. */
int32_t ck_tok_bos_id(const ck_tok *t);
int32_t ck_tok_eos_id(const ck_tok *t);

/* ---- chat prompt ---- */
typedef struct ck_chat_msg {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} ck_chat_msg;

/* 1 when tokenizer_config.json carries a chat template this renderer supports. */
int ck_tok_has_chat(const ck_tok *t);
/* 1 when tokenizer_config.json (or chat_template.jinja) has a template that no renderer recognises. */
int ck_tok_chat_unsupported(const ck_tok *t);

/* Renders messages exactly as HF apply_chat_template(messages, tokenize=False,
 * add_generation_prompt=..., enable_thinking=...) does for the checkpoint's template. enable_thinking is
 * 1 by default (HF's default when the kwarg is absent). *out is malloc'd, NUL-terminated. */
int ck_tok_chat_render(const ck_tok *t, const ck_chat_msg *msgs, size_t n_msgs, int add_generation_prompt,
                       int enable_thinking, char **out, char *err, size_t errlen);

#endif
