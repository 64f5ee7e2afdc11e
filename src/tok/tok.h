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
 * NUL-terminated, *len excludes the NUL. Ids the vocabulary lacks (the rows a model pads its vocabulary
 * with beyond the tokenizer's) decode to nothing, as HF's do; a negative id is an error. */
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
/* Appends the text ready after `id` into buf (cap bytes incl. NUL); returns the byte count (0 for an id
 * the vocabulary lacks, as ck_tok_decode) or -1 (a negative id, or the text does not fit in cap). Invalid
 * byte sequences come out as U+FFFD. */
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

/* 1 when the tokenizer has a chat template (tokenizer_config.json or chat_template.jinja, or one set by
 * the caller) and it parses. */
int ck_tok_has_chat(const ck_tok *t);
/* 1 when there is a chat template but it does not parse; ck_tok_chat_error() says why. */
int ck_tok_chat_unsupported(const ck_tok *t);
const char *ck_tok_chat_error(const ck_tok *t);

/* (Re)places the chat template with Jinja text src[0..len) and parses it. A template that does not parse
 * is kept (ck_tok_chat_unsupported) and its error returned. Only before the tokenizer is shared. */
int ck_tok_chat_set_template(ck_tok *t, const char *src, size_t len, char *err, size_t errlen);

/* Renders messages exactly as HF apply_chat_template(messages, tokenize=False,
 * add_generation_prompt=...) does for the checkpoint's template; enable_thinking=0 passes
 * enable_thinking=False, 1 leaves the argument out (HF's default). *out is malloc'd, NUL-terminated. */
int ck_tok_chat_render(const ck_tok *t, const ck_chat_msg *msgs, size_t n_msgs, int add_generation_prompt,
                       int enable_thinking, char **out, char *err, size_t errlen);

/* The general form: messages a cJSON array of message objects (every field reaches the template:
 * reasoning_content, tool_calls, ...), tools NULL (None) or a cJSON array, kwargs NULL or a cJSON object
 * of extra template variables (they override the defaults). The arguments are const cJSON *, passed as
 * void * to keep cJSON out of this header. *len (may be NULL) gets the length. A template that raises
 * fails with its own message in err. */
int ck_tok_chat_render_json(const ck_tok *t, const void *messages, const void *tools, const void *kwargs,
                            int add_generation_prompt, char **out, size_t *len, char *err, size_t errlen);

/* The render itself, for any parsed template (jinja.h) and special-token object (NULL: none): what
 * ck_tok_chat_render_json does with the tokenizer's. */
struct ck_jinja;
int ck_chat_render_jinja(const struct ck_jinja *tmpl, const void *specials, const void *messages,
                         const void *tools, const void *kwargs, int add_generation_prompt, char **out, size_t *len,
                         char *err, size_t errlen);

#endif
