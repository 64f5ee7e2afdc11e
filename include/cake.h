/* cake.h — the engine API used by the CLI, and later the server, the terminal chat and cluster workers.
 * An engine is a loaded checkpoint (weights + tokenizer), immutable and shareable; a session is one
 * sequence's state (KV caches) advanced by feeding tokens. Tokens in, logits out: tokenization and chat
 * prompts go through the engine's tokenizer (tok/tok.h), next-token choice through the sampler
 * (sample/sample.h). Every call returns 0 or -1 with a reason in err (at most errlen bytes). */
#ifndef CAKE_H
#define CAKE_H

#include <stddef.h>
#include <stdint.h>

#include "sample/sample.h"
#include "tok/tok.h"

typedef struct ck_engine ck_engine;
typedef struct ck_session ck_session;

/* Threads the CPU backend computes with, process-wide; n <= 0 keeps the default (OMP_NUM_THREADS,
 * else one per core). */
void ck_set_threads(int n);

/* Comma-separated list of the config.json architectures cake runs. */
const char *ck_supported_archs(void);

/* Opens an HF-layout model directory (config.json, safetensors, tokenizer.json when present). */
int ck_engine_open(const char *dir, ck_engine **out, char *err, size_t errlen);
void ck_engine_close(ck_engine *e);

const char *ck_engine_arch(const ck_engine *e);
size_t ck_engine_vocab(const ck_engine *e);
size_t ck_engine_n_layers(const ck_engine *e);
size_t ck_engine_hidden(const ck_engine *e);
/* max_position_embeddings of the checkpoint. */
size_t ck_engine_max_ctx(const ck_engine *e);
/* The tokenizer, or NULL when the directory has no tokenizer.json. */
const ck_tok *ck_engine_tok(const ck_engine *e);
/* 1 when id ends generation (generation_config.json's eos ids, else the tokenizer's EOS). */
int ck_engine_is_eos(const ck_engine *e, int32_t id);

/* A session holding up to max_ctx positions. */
int ck_session_open(ck_engine *e, size_t max_ctx, ck_session **out, char *err, size_t errlen);
void ck_session_close(ck_session *s);
/* Feeds ids[0..n) after the positions already held. logits: NULL, or [vocab] floats for the last
 * token (all == 0), or [n, vocab] for every token (all == 1). */
int ck_session_forward(ck_session *s, const int32_t *ids, size_t n, float *logits, int all, char *err,
                       size_t errlen);
size_t ck_session_pos(const ck_session *s);
void ck_session_reset(ck_session *s);

typedef struct ck_timing {
    double embed_s, layers_s, head_s; /* wall time in the embedding, the blocks and the output head */
} ck_timing;
ck_timing ck_session_timing(const ck_session *s);

/* Test hook: dumps hidden states of the next forwards into host memory laid out as
 * [n_layers + 1, rows, hidden] (embedding output, blocks 0..L-2, final norm), rows by position. */
void ck_session_capture(ck_session *s, float *buf, size_t rows);

#endif
