/* cake.h — the engine API used by the CLI, the server, the terminal chat and cluster workers. It stands
 * alone: opaque types, the few structs a caller fills, no internal headers.
 *
 * An engine is a checkpoint opened for a range of its layers (the whole model by default), plus the
 * embedding and/or the output head when this process holds them; it owns the weights, a backend instance
 * and the scratch of one forward. It is immutable after open and safe to share between threads: forwards
 * of its sessions run one at a time (each uses every compute thread).
 * A session is one sequence's state in one engine (KV caches and recurrent state of the layers the engine
 * holds, its position), growing with use up to the context it was opened with.
 * A model split into ranges is exactly embedding -> range -> range -> ... -> head: running the ranges back
 * to back gives the same logits, bit for bit, as one engine holding everything.
 * Every call that can fail returns 0 or -1 with a reason in err (at most errlen bytes). */
#ifndef CAKE_H
#define CAKE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_engine ck_engine;
typedef struct ck_session ck_session;

/* Compute threads, process-wide: n > 0 sets them; n <= 0 changes nothing (the count is the default,
 * OMP_NUM_THREADS else one per core, until set) and returns it. Counts beyond a sane maximum (4 per core)
 * are clamped, and *note (when not NULL) then says so (for n <= 0: whether the default was); otherwise it is
 * set to "". Returns the count in use. */
int ck_set_threads(int n, char *note, size_t notelen);

/* The backend engines open on when their options name none: "cpu" (the default) or "cuda" with its device
 * index. Returns 0, or -1 with a reason (a kind this build lacks, no such device). Process-wide; set it
 * before opening engines. */
int ck_set_backend(const char *kind, int device, char *err, size_t errlen);
/* Devices of a backend kind on this machine in this build: "cpu" 1, "cuda" 0 without CUDA or a GPU. */
int ck_backend_count(const char *kind);
/* Comma-separated backend kinds compiled into this build ("cpu" or "cpu,cuda"). */
const char *ck_backends_built(void);
/* Matmul numerics of the CPU, process-wide: exact = 1 keeps f32 activations everywhere; exact = 0 (the
 * default, unless CAKE_EXACT is set to something other than 0) lets bf16 weights meet activations
 * rounded to bf16 where the CPU multiplies bf16 natively (MoE models always run exact). Never depends
 * on batch size, so a row's result never depends on its batch. Set it before the first forward. */
void ck_set_exact(int exact);
int ck_exact(void);
/* The KV cache type of engines opened from now on, process-wide: "f16" (half the memory and the bytes
 * attention reads; keys and values rounded to nearest, clamped to +-65504), "f32", or "auto" (the
 * default: f16, but f32 on the exact path (ck_set_exact) and for mixture-of-experts models). Returns 0,
 * or -1 for another name. */
int ck_set_kv_type(const char *name, char *err, size_t errlen);

/* Where CPU engines opened from now on keep their weights, process-wide: mapped = 0 (the default) copies
 * each weight out of the file into memory backed by transparent huge pages, when the kernel offers them
 * (decode streams every weight; 2 MiB pages read faster than the file's 4 KiB ones), returning the file's
 * pages, so memory use stays that of the model; mapped = 1 keeps views of the mapped files (faster start,
 * pages shared with the page cache). ck_weights_mapped() says which one CPU engines get (1 also when the
 * kernel offers no huge pages). */
void ck_set_weights_mapped(int mapped);
int ck_weights_mapped(void);

/* Comma-separated list of the config.json architectures cake runs. */
const char *ck_supported_archs(void);

/* ---- engines ---- */

typedef struct ck_engine_opts {
    int partial;                     /* 0: the whole model (the four fields below are ignored) */
    int64_t first_layer, last_layer; /* layers held, inclusive; last_layer < first_layer: none */
    int embed;                       /* holds the token embedding */
    int head;                        /* holds the final norm and the output head */
    const char *backend;             /* "cpu" or "cuda"; NULL: the process default (ck_set_backend) */
    int device;                      /* device index for a GPU backend (ignored when backend is NULL) */
    const char *devices;             /* the model (or the partial range) spread over these devices, in layer
                                      * order: GPU indices or cpu, e.g. "0,1" (ck_parse_devices); each holds a
                                      * consecutive part of the layers (as equal as can be), the first also
                                      * the embedding and the head (when held), and a session runs the parts
                                      * in turn; NULL: one engine on backend and device above */
    int tokenizer_only;              /* only the tokenizer files (no config.json or weights needed): text
                                      * and chat templates work, sessions cannot be opened */
} ck_engine_opts;

/* What engines opened now would run on: the devices of a list (ck_parse_devices), or, for NULL, the
 * process default (ck_set_backend). backend: "cpu" or "cuda" for one device, else each joined by '+'
 * ("cuda:0+cpu"); gpus: the GPUs' names, joined by '+'; mem_bytes: memory their weights and caches may
 * take (each GPU's free memory now, plus the host's physical memory when the CPU is among them; a device
 * named twice counts once); gpu_tflops: the GPUs' peak f32 TFLOPS (the caller measures the CPU's, see
 * cpu). */
typedef struct ck_devices_info {
    char backend[128];
    char gpus[256];
    uint64_t mem_bytes;
    double gpu_tflops;
    int cpu; /* the CPU is among them */
} ck_devices_info;
int ck_devices_info_get(const char *devices, ck_devices_info *out, char *err, size_t errlen);

/* A device list: "0,1", "cpu", "0,cpu" (GPU indices or cpu, comma-separated, in layer order) into up to cap
 * kinds ("cuda" or "cpu") and indices. Returns the count, or -1 with a reason. */
#define CK_MAX_DEVICES 8
int ck_parse_devices(const char *list, const char **kinds, int *indices, int cap, char *err, size_t errlen);

/* Opens an HF-layout model directory (config.json, safetensors, tokenizer.json when present) for
 * opts (NULL: the whole model on the CPU). Only the tensors of the range are mapped: a directory that
 * holds only the shards of the range opens, and a missing shard the range needs is named in the error. */
int ck_engine_open(const char *dir, const ck_engine_opts *opts, ck_engine **out, char *err, size_t errlen);
/* Closes e (NULL is a no-op). Its sessions must be closed first: a session does not outlive its engine. */
void ck_engine_close(ck_engine *e);

const char *ck_engine_arch(const ck_engine *e);
size_t ck_engine_vocab(const ck_engine *e);
size_t ck_engine_n_layers(const ck_engine *e);    /* of the whole model */
size_t ck_engine_hidden(const ck_engine *e);
size_t ck_engine_max_ctx(const ck_engine *e);     /* max_position_embeddings of the checkpoint */
const char *ck_engine_backend(const ck_engine *e); /* "cpu", ... */
const char *ck_engine_kv_type(const ck_engine *e); /* its KV caches' type: "f16" or "f32" */
/* Bytes of weights one decoded token reads in this engine: every weight it holds once (a tied head
 * counted once), the embedding table as one row, and of a MoE layer's experts the top_k its router picks
 * (num_experts_per_tok of num_experts). */
uint64_t ck_engine_decode_bytes(const ck_engine *e);
/* 1 when every matmul of the engine takes the exact path: ck_exact(), or a MoE model (always exact). */
int ck_engine_exact(const ck_engine *e);
/* Bytes of keys and values one position takes in the engine's KV caches: a decoded token's attention
 * reads this many per position of its context, on top of the weights. */
uint64_t ck_engine_kv_bytes(const ck_engine *e);
/* Memory bandwidth of the engine's device in GB/s (bytes read plus bytes written per second of `reps`
 * device-to-device copies of `bytes`, after one untimed copy); -1 for the CPU backend (measure the host
 * instead) or when the buffers cannot be had. */
double ck_engine_device_bandwidth_gbs(ck_engine *e, size_t bytes, int reps);
/* How the checkpoint names its layers, without the number and the trailing dot: "model.layers", or
 * "model.language_model.layers" for Qwen3.5 (the prefix cluster topologies use). */
const char *ck_engine_layer_prefix(const ck_engine *e);
/* The layers this engine holds (*last < *first when none; over devices, all of its parts' layers), and
 * whether it holds the embedding / head. */
void ck_engine_range(const ck_engine *e, int64_t *first, int64_t *last, int *embed, int *head);
/* 1 when id ends generation (generation_config.json's eos ids, else the tokenizer's EOS). */
int ck_engine_is_eos(const ck_engine *e, int32_t id);

/* ---- text ---- */

/* 1 when the directory has a tokenizer.json. The calls below fail without one. */
int ck_engine_has_tokenizer(const ck_engine *e);
/* Encodes text[0..len) as HF tokenizer.encode(text, add_special_tokens=add_special); *ids is malloc'd. */
int ck_engine_encode(const ck_engine *e, const char *text, size_t len, int add_special, int32_t **ids, size_t *n,
                     char *err, size_t errlen);
/* Decodes ids as HF decode(skip_special_tokens=1); *text is malloc'd and NUL-terminated. */
int ck_engine_decode(const ck_engine *e, const int32_t *ids, size_t n, char **text, size_t *len, char *err,
                     size_t errlen);

typedef struct ck_message {
    const char *role;                /* "system", "user", "assistant" */
    const char *content;
} ck_message;

enum { CK_CHAT_NONE = 0, CK_CHAT_RENDERED = 1, CK_CHAT_UNSUPPORTED = 2 };
/* Whether the checkpoint has a chat template (CK_CHAT_NONE), and whether it parses (CK_CHAT_RENDERED) or
 * not (CK_CHAT_UNSUPPORTED, ck_engine_chat_error() says why). Templates are Jinja, run by cake's own
 * interpreter exactly as HF transformers renders them. */
int ck_engine_chat(const ck_engine *e);
const char *ck_engine_chat_error(const ck_engine *e); /* "" unless CK_CHAT_UNSUPPORTED */
/* Replaces the checkpoint's chat template with Jinja text (set_chat_template) or the text of a file
 * (set_chat_template_file, as llama.cpp's --chat-template-file). Call right after ck_engine_open, before
 * the engine is shared. A template that does not parse is an error (and leaves CK_CHAT_UNSUPPORTED). */
int ck_engine_set_chat_template(ck_engine *e, const char *text, size_t len, char *err, size_t errlen);
int ck_engine_set_chat_template_file(ck_engine *e, const char *path, char *err, size_t errlen);
/* Renders msgs with the checkpoint's template exactly as HF apply_chat_template(msgs, tokenize=False,
 * add_generation_prompt=1) and encodes the text (no special tokens added: the template has them).
 * enable_thinking=0 passes enable_thinking=False; 1 leaves it out (HF's default). Fails when
 * ck_engine_chat(e) != CK_CHAT_RENDERED, or with the template's own message when it raises. *ids is
 * malloc'd. */
int ck_engine_chat_ids(const ck_engine *e, const ck_message *msgs, size_t n_msgs, int enable_thinking,
                       int32_t **ids, size_t *n, char *err, size_t errlen);
/* A conversation for a model without a chat template cake renders: the messages' contents back to back as
 * one plain prompt, encoded with the tokenizer's special tokens (e.g. BOS) as ck_engine_encode. *ids is
 * malloc'd. */
int ck_engine_plain_ids(const ck_engine *e, const ck_message *msgs, size_t n_msgs, int32_t **ids, size_t *n,
                        char *err, size_t errlen);
/* The general form, with the conversation as JSON, as HF apply_chat_template(messages, tools=tools,
 * add_generation_prompt=..., tokenize=False, **kwargs):
 *   messages_json  a JSON array of message objects; every field reaches the template (role, content,
 *                  reasoning_content, tool_calls, name, tool_call_id, ...);
 *   tools_json     NULL (tools=None) or a JSON array of tool schemas;
 *   kwargs_json    NULL or a JSON object of extra template variables ({"enable_thinking": false}).
 * *text (when text is not NULL) gets the rendered prompt, malloc'd and NUL-terminated, *text_len (may be
 * NULL) its length; *ids and *n_ids (when ids is not NULL) its encoding (no special tokens added). */
int ck_engine_chat_render(const ck_engine *e, const char *messages_json, const char *tools_json,
                          const char *kwargs_json, int add_generation_prompt, char **text, size_t *text_len,
                          int32_t **ids, size_t *n_ids, char *err, size_t errlen);

/* ck_engine_chat_render without a model: renders Jinja template text tmpl[0..tmpl_len) with the
 * variables HF passes, except special tokens (give them in kwargs_json when the template needs them). */
int ck_chat_template_render(const char *tmpl, size_t tmpl_len, const char *messages_json, const char *tools_json,
                            const char *kwargs_json, int add_generation_prompt, char **text, size_t *text_len,
                            char *err, size_t errlen);

/* ---- sessions ---- */

/* A session that may hold up to max_ctx positions (0: the model's max_position_embeddings). Memory is
 * taken as positions are filled, not up front. */
int ck_session_open(ck_engine *e, size_t max_ctx, ck_session **out, char *err, size_t errlen);
/* Closes s (NULL is a no-op), before its engine; once. */
void ck_session_close(ck_session *s);
size_t ck_session_pos(const ck_session *s);
size_t ck_session_max_ctx(const ck_session *s);
void ck_session_reset(ck_session *s);
/* Keeps positions [0, pos) and drops the rest (pos <= ck_session_pos). Sessions with recurrent layers
 * (Gated DeltaNet) cannot rewind their state: they restart at 0 instead, so afterwards
 * ck_session_pos(s) is pos or 0, and the caller replays positions [ck_session_pos(s), pos) to keep them.
 * After a failed forward a session must be truncated (or reset) before the next one. */
int ck_session_truncate(ck_session *s, size_t pos, char *err, size_t errlen);

/* How many of ids[0..n) the session already holds as its first positions (what ck_generate would reuse). */
size_t ck_session_prefix(const ck_session *s, const int32_t *ids, size_t n);
/* The whole model (an engine holding every layer, the embedding and the head): feeds ids[0..n) after the
 * positions held. logits: NULL, or [vocab] floats for the last token (all == 0), or [n, vocab] for every
 * token (all == 1). */
int ck_session_forward(ck_session *s, const int32_t *ids, size_t n, float *logits, int all, char *err,
                       size_t errlen);
/* ck_session_forward for greedy decoding: *top gets the index of the last token's largest logit (the first
 * on ties, as sampling at temperature 0 picks), taken by the backend where the logits are, so that they are
 * never copied out. */
int ck_session_forward_top(ck_session *s, const int32_t *ids, size_t n, int32_t *top, char *err, size_t errlen);
/* One decode step of n distinct sessions together: session i gets ids[i] after the positions it holds
 * and the [vocab] logits of it in logits[i]. Sessions of one engine holding the whole model share each
 * forward (the weights are read once for all of them), and each session's logits are bit-identical to
 * ck_session_forward(ss[i], &ids[i], 1, ...) run alone; other sessions (stages, other engines) run one
 * after the other. logits may be NULL (no logits wanted). On failure the sessions of the failing forward
 * are left broken (truncate or reset). */
int ck_session_step(ck_session *const *ss, size_t n, const int32_t *ids, float *const *logits, char *err,
                    size_t errlen);
/* The general form: feed i appends ids[0..n) to session s (distinct sessions) and, when logits is not
 * NULL, gets the [vocab] logits of its last token. Prompt chunks and decode tokens of different sessions
 * share forwards (at most 64 rows each, a long feed spanning several); the results are bit-identical to
 * each feed run alone through ck_session_forward. Every feed is checked first (distinct sessions, ids in
 * the vocabulary, room in the context): a refused batch leaves every session as it was. */
typedef struct ck_feed {
    ck_session *s;
    const int32_t *ids;
    size_t n;
    float *logits;
    int32_t *top; /* NULL, or gets the index of the largest of those logits (the first on ties: greedy
                     sampling, taken where the logits are, so logits may be NULL); not one of ids */
} ck_feed;
int ck_session_batch(const ck_feed *feeds, size_t n, char *err, size_t errlen);
/* The pieces a split model runs (host memory throughout, row-major):
 * embed:  hidden[n, hidden] = the embedding of ids[0..n); does not move the position.
 * layers: hidden_out[n, hidden] = the engine's layers applied to hidden_in[n, hidden] at positions
 *         pos..pos+n-1; the position advances by n. hidden_out may equal hidden_in. On a session with
 *         stages (ck_session_set_stages, or an engine over devices), every part's layers in order.
 * head:   logits of hidden[n, hidden] (the last layer's output, before the final norm): [vocab] for the
 *         last row (all == 0) or [n, vocab]; does not move the position. */
int ck_session_embed(ck_session *s, const int32_t *ids, size_t n, float *hidden, char *err, size_t errlen);
int ck_session_layers(ck_session *s, const float *hidden_in, size_t n, float *hidden_out, char *err,
                      size_t errlen);
int ck_session_head(ck_session *s, const float *hidden, size_t n, float *logits, int all, char *err,
                    size_t errlen);

/* ---- models split across processes ---- */

/* A part of the model that the session's engine does not hold (a worker's layers, or a range held by
 * another local engine), run by the caller. */
typedef struct ck_stage {
    int64_t first_layer, last_layer; /* the layers it runs, inclusive */
    /* hidden[n, hidden] (host, f32, in place) through the stage's layers at positions pos..pos+n-1. */
    int (*forward)(void *ctx, float *hidden, size_t n, size_t pos, char *err, size_t errlen);
    /* Keeps positions [0, pos); *held gets the position the stage holds afterwards (pos, or 0 for a
     * stage with recurrent layers, as ck_session_truncate). */
    int (*truncate)(void *ctx, size_t pos, size_t *held, char *err, size_t errlen);
    void *ctx;
} ck_stage;

/* A stage that runs layers first..last of this process's session `part` (of a partial engine holding
 * them): its forward runs ck_session_layers at the caller's position, its truncate ck_session_truncate. */
ck_stage ck_session_stage(ck_session *part, int64_t first_layer, int64_t last_layer);

/* Makes s (of an engine holding the embedding and the head) run the whole model in ck_session_forward
 * and ck_generate: the embedding, then the stages and the engine's own layers in layer order, then the
 * head. The stages and the engine's own range must cover [0, n_layers) exactly, without overlap. The
 * session must be at position 0. */
int ck_session_set_stages(ck_session *s, const ck_stage *stages, size_t n, char *err, size_t errlen);

typedef struct ck_timing {
    double embed_s, layers_s, head_s; /* wall time in the embedding, the blocks and the output head */
    double attn_s;                    /* of layers_s, in attention over the KV cache (host wall time around
                                         the op: an asynchronous backend reports its launch time) */
} ck_timing;
ck_timing ck_session_timing(const ck_session *s);

/* ---- generation ---- */

typedef enum ck_finish {
    CK_FINISH_STOP = 0,  /* an end-of-sequence token or a stop string */
    CK_FINISH_LENGTH,    /* max_tokens generated, or the context is full */
    CK_FINISH_CANCEL,    /* on_text returned nonzero, or *cancel became nonzero */
} ck_finish;

typedef struct ck_gen_params {
    float temperature;       /* 0: greedy; else sampling (finite, >= 0) */
    int top_k;               /* 0: off */
    float top_p;             /* (0, 1]; 1: off */
    float repeat_penalty;    /* > 0; 1: off */
    int repeat_last_n;       /* tokens of history the penalty looks at */
    uint64_t seed;
    size_t max_tokens;       /* tokens to generate at most; 0: only run the prompt */
    const char *const *stop; /* n_stop strings that end generation (not emitted) */
    size_t n_stop;
    /* Called with each piece of generated text once it is final: whole UTF-8 characters, never a part of
     * a stop string, special tokens skipped. Returns nonzero to cancel. May be NULL. */
    int (*on_text)(void *user, const char *text, size_t len);
    void *user;
    const volatile int *cancel; /* optional: checked before each token */
} ck_gen_params;

/* cake's defaults: temperature 1, top_k off, top_p off, repeat penalty 1.1 over 128 tokens, seed
 * 299792458, max_tokens 2048, no stop strings. */
void ck_gen_params_default(ck_gen_params *p);
/* Rejects non-finite or out-of-range values with a message naming the field. */
int ck_gen_params_check(const ck_gen_params *p, char *err, size_t errlen);

typedef struct ck_gen_result {
    size_t n_prompt;         /* prompt tokens */
    size_t n_reused;         /* of which already held by the session (a shared prefix) */
    size_t n_gen;            /* tokens generated */
    ck_finish finish;
    double prefill_s, decode_s;
    ck_timing prefill;       /* time split of the prefill; ck_session_timing has the totals */
} ck_gen_result;

/* Generates after prompt[0..n_prompt) in s (an engine holding the whole model): reuses the longest prefix
 * the session already holds (truncating the rest), runs the remaining prompt, then samples until an
 * end-of-sequence id, a stop string, max_tokens, a full context or a cancel, streaming text through
 * p->on_text. */
int ck_generate(ck_session *s, const int32_t *prompt, size_t n_prompt, const ck_gen_params *p, ck_gen_result *r,
                char *err, size_t errlen);

/* The same loop one token at a time, so that a caller (the API server) can decode several generations
 * together: ck_gen_start checks the parameters, reuses the session's prefix and runs the rest of the
 * prompt; each ck_gen_step then samples, streams and checks the stop conditions of every unfinished
 * generation of gens[0..n) and feeds the tokens of those still running through one batched forward
 * (ck_session_step), so that each one's text is exactly what ck_generate gives alone. Generations may
 * join and leave between steps; their sessions must be distinct. The params (not the stop strings, which
 * must outlive the generation) are copied. */
typedef struct ck_gen ck_gen;
int ck_gen_start(ck_session *s, const int32_t *prompt, size_t n_prompt, const ck_gen_params *p, ck_gen **out,
                 char *err, size_t errlen);
/* As ck_gen_start, but the prompt runs in the steps, in chunks that share forwards with the tokens of the
 * generations already decoding (chunked prefill), so a long prompt joining does not stall them. */
int ck_gen_queue(ck_session *s, const int32_t *prompt, size_t n_prompt, const ck_gen_params *p, ck_gen **out,
                 char *err, size_t errlen);
/* Returns how many of gens[0..n) are still running afterwards. */
int ck_gen_step(ck_gen *const *gens, size_t n);
int ck_gen_done(const ck_gen *g);
/* The counts and timing so far (final once done). */
const ck_gen_result *ck_gen_result_get(const ck_gen *g);
/* NULL, or why the generation failed (a forward or decoding error). */
const char *ck_gen_error(const ck_gen *g);
void ck_gen_free(ck_gen *g);

#endif
