/* engine_internal.h — the engine and session structs, shared by engine.c, generate.c and tests (which
 * may also use the capture hook below). Not part of the public API. */
#ifndef CK_ENGINE_INTERNAL_H
#define CK_ENGINE_INTERNAL_H

#include "cake.h"
#include "model/model.h"
#include "tok/tok.h"

#include <pthread.h>

struct ck_engine {
    ck_model model;
    ck_backend *be;
    ck_ws ws;              /* scratch of the one forward running at a time */
    pthread_mutex_t lock;  /* held for every forward of any session */
    ck_tok *tok;           /* NULL without tokenizer.json */
    char layer_prefix[64]; /* "model.layers" */
    /* a model spread over devices (ck_engine_opts.devices): this engine holds the first part, the embedding
     * and the head; sub[i] the later parts, whose sessions each session of this engine runs as stages */
    ck_engine *sub[CK_MAX_DEVICES - 1];
    size_t n_sub;
    int direct;            /* the parts pass their rows device to device (the same copy_peer, the same chunk) */
    char backend[128];     /* the devices' backends joined by '+' ("cuda:0+cuda:1"), when n_sub */
};

#define CK_MAX_STAGES 64

struct ck_session {
    ck_engine *e;
    ck_seq seq;
    int32_t *ids;          /* token ids at positions [0, n_ids), when known (fed as ids) */
    size_t n_ids, cap_ids;
    /* a model split across stages (ck_session_set_stages): the parts in layer order; index n_stages
     * marks where the engine's own range runs (own_at), or -1 when it holds no layers */
    ck_stage stages[CK_MAX_STAGES];
    size_t n_stages;
    long own_at;
    size_t pipe_pos;       /* positions every part holds */
    int pipe_broken;       /* a staged forward failed midway: truncate before the next */
    char reset_why[512];   /* why the last reset could not truncate the stages ("" when it could) */
    float *hidden;         /* host [cap_hidden / hidden, hidden] rows in flight between parts */
    size_t cap_hidden;
    ck_session *sub[CK_MAX_DEVICES - 1]; /* sessions of the engine's later parts (its stages), e->n_sub */
    float *dev_rows;       /* a part of an engine with direct parts: [chunk, hidden] of its backend's memory,
                              the rows it passes on */
};

/* Test hook: dumps hidden states of the next forwards into host memory laid out as
 * [n_layers + 1, rows, hidden] (embedding output, blocks 0..L-2, final norm), rows by position. */
void ck_session_capture(ck_session *s, float *buf, size_t rows);

#endif
