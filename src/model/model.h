/* model.h — a checkpoint loaded for a range of layers (ck_model), the state of one sequence in it (ck_seq)
 * and the scratch of a forward (ck_ws). The forward pass is the same for every family: embed, the
 * family's block per layer of the range, final norm, output head; a family (family.h) supplies the block,
 * its weights and any per-sequence state of its own. Internal to the engine: the public surface is
 * include/cake.h.
 * Ownership: the model owns its weights (prepared on its backend, released at free) and every backend
 * buffer it allocates for them; a ck_seq owns the KV caches and recurrent state of the range's layers; a
 * ck_ws owns the activation scratch, shared by every sequence its owner runs one after the other.
 * Invariants: seq->pos counts the positions held by every layer of the range; a KV cache holds at least
 * pos rows and grows (doubling, up to seq->max_ctx) before a forward writes past its capacity. */
#ifndef CK_MODEL_H
#define CK_MODEL_H

#include "backend/backend.h"
#include "format/hfconfig.h"
#include "format/safetensors.h"
#include "model/rope.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ck_model ck_model;
typedef struct ck_seq ck_seq;
typedef struct ck_ws ck_ws;
typedef struct ck_family ck_family;

#define CK_CHUNK 64        /* token rows processed per step of a prefill */
#define CK_HEAD_ROWS 8     /* rows of logits computed per step of the output head */
#define CK_MAX_ROPES 2     /* distinct RoPE tables (e.g. Gemma 3's local and global bases) */
#define CK_KV_MIN 64       /* positions a KV cache starts with */

/* The part of a checkpoint one process holds: layers [first, last] (none when last < first), plus the
 * embedding and/or the final norm + output head. */
typedef struct ck_range {
    int64_t first, last;
    int embed, head;
} ck_range;

struct ck_model {
    ck_config cfg;
    ck_weights weights;
    ck_backend *be;
    const ck_family *family;
    ck_range range;
    char layer_prefix[64]; /* tensor-name prefix of layer N without the number, e.g. "model.layers." */
    void *layers;          /* family-owned per-layer weights ([n_layers]; only the range is loaded) */
    ck_tensor embed;       /* [vocab, hidden] when range.embed (or tied and range.head) */
    ck_tensor lm_head;     /* [vocab, hidden] when range.head; equals embed when tied */
    float *final_norm;     /* [hidden] f32, backend memory, when range.head */
    int final_norm_one_plus;
    float embed_scale;     /* 1, or sqrt(hidden) for Gemma */
    ck_rope rope[CK_MAX_ROPES]; /* RoPE tables; a family that sets none gets rope[0] from the config */
    const double *rope_freq[CK_MAX_ROPES]; /* rope[i].inv_freq as backend memory */
    int n_ropes;
    float attn_scale;      /* multiplies q.k; 1/sqrt(head_dim) unless the family says otherwise */
    size_t max_ffn;        /* largest MLP intermediate size (sizes the gate/up scratch); family may raise */
    size_t chunk;          /* rows of a prefill chunk and of the workspace: CK_CHUNK, or more where the
                              backend asks (prefill_rows); a batch (ck_model_batch) stays <= CK_CHUNK */
    unsigned char *no_kv;  /* [n_layers] 1 where a layer keeps no KV cache (set by the family), or NULL */
    ck_dtype kv_dtype;     /* of the KV caches: CK_F32 or CK_F16 (ck_model_set_kv_dtype) */
    int attn_out_gate;     /* set by the family when q_proj carries an output gate: the workspace gets qg */
    int recurrent;         /* set by the family when a layer of the range carries recurrent state */
    /* what the model prepared or allocated on the backend, released at free */
    ck_tensor *prepared;
    size_t n_prepared, cap_prepared;
    uint64_t expert_bytes;   /* of the prepared weights, those of MoE experts (a token reads top_k of them) */
    void **owned;
    size_t n_owned, cap_owned;
};

/* One layer's attention cache, owned by the sequence. */
typedef struct ck_layer_kv {
    void *k;               /* [cap, n_kv_heads, head_dim] of the model's kv_dtype */
    void *v;               /* [cap, n_kv_heads, head_dim] */
    size_t cap;            /* positions allocated */
} ck_layer_kv;

typedef struct ck_stats {
    double embed_s, layers_s, head_s; /* wall time spent in each part */
    double attn_s;                    /* of layers_s, around the attention op */
} ck_stats;

struct ck_seq {
    const ck_model *m;
    size_t max_ctx;        /* positions the sequence may hold */
    size_t pos;            /* positions filled */
    ck_layer_kv *kv;       /* [n_layers]; allocated for the range's layers with a KV cache */
    void *fam;             /* family-owned state (recurrent state), or NULL */
    int broken;            /* a forward failed midway: the state past `pos` is undefined (see truncate) */
    ck_stats stats;
    float *capture;        /* test hook: host [n_layers + 1, capture_rows, hidden] (see ck_model_forward) */
    size_t capture_rows;
};

struct ck_ws {
    const ck_model *m;
    /* backend memory, CK_CHUNK rows each */
    float *x;              /* [CK_CHUNK, hidden] residual stream */
    float *xn;             /* [CK_CHUNK, hidden] normed input of a sub-block */
    float *q, *k, *v, *att;/* [CK_CHUNK, heads x head_dim] (k, v: kv heads) */
    float *gate, *up;      /* [CK_CHUNK, intermediate] */
    float *qg;             /* [CK_CHUNK, heads x 2 x head_dim] q + output gate, when m->attn_out_gate; else NULL */
    int32_t *pos;          /* [CK_CHUNK] position of each row in flight */
    float *logits;         /* [CK_HEAD_ROWS, vocab] when the model has the head */
    int32_t *top;          /* [CK_HEAD_ROWS] the argmax of each logits row, when the model has the head */
    int32_t host_top[CK_HEAD_ROWS]; /* host copy of top */
    int32_t *host_pos;     /* host staging of pos */
    void *fam;             /* family-owned scratch, or NULL */
};

/* The rows of one step of a forward: consecutive runs ("spans") of rows, each of one sequence at
 * consecutive positions. A prefill chunk is one span; a batched decode step is one span of one row per
 * sequence. Row-wise ops run over all rows at once; ops that touch a sequence's state (KV cache,
 * recurrent state) run per span. */
typedef struct ck_span {
    ck_seq *s;
    size_t row0, n;        /* rows [row0, row0 + n) of the step */
    size_t pos0;           /* position of row row0 in s */
} ck_span;

typedef struct ck_rows {
    const ck_span *spans;
    size_t n_spans;
    size_t T;              /* rows in all: the spans' n add up to T, T <= CK_CHUNK */
} ck_rows;

/* Loads the range r of DIR (config.json + safetensors) for the backend: only the tensors of the range are
 * looked up, so only their shards are mapped. Errors name the file, tensor or field. */
int ck_model_load(const char *dir, ck_backend *be, const ck_range *r, ck_model *m, char *err, size_t errlen);
void ck_model_free(ck_model *m);

/* The KV cache type of models loaded from now on, process-wide: CK_F32, CK_F16, or -1 (the default): f16
 * unless the process runs exact (ck_cpu_exact) or the model is a mixture of experts, which keep f32 (as
 * their weights keep f32 activations: a rounding flips discrete expert choices). */
void ck_model_set_kv_dtype(int dt);
/* Bytes of keys and values one position takes in the KV caches of the range's layers. */
size_t ck_model_kv_bytes(const ck_model *m);

/* Supported architecture names, comma-separated, for error messages and --help. */
const char *ck_model_supported(void);

int ck_seq_init(ck_seq *s, const ck_model *m, size_t max_ctx, char *err, size_t errlen);
void ck_seq_free(ck_seq *s);
void ck_seq_reset(ck_seq *s);
/* Keeps positions [0, pos) (pos <= s->pos). A range with recurrent layers cannot rewind its state: it
 * restarts at 0 instead, and the caller replays what it wants kept. Clears `broken`. */
void ck_seq_truncate(ck_seq *s, size_t pos);

int ck_ws_init(ck_ws *w, const ck_model *m, char *err, size_t errlen);
void ck_ws_free(ck_ws *w);

/* One forward through the model's range, in chunks of CK_CHUNK rows:
 *   input:  ids[n] (the model holds the embedding) or hidden_in [n, hidden]: host memory, or, with in_be,
 *           memory of that backend instance (another instance with the same copy_peer, or this one)
 *   layers: when run_layers, the range's layers at positions s->pos.. (s->pos advances by n)
 *   output: hidden_out [n, hidden] (host, or this model's backend memory with out_dev; the residual
 *           stream after the last layer, before the final norm), and/or logits (the model holds the
 *           head): [vocab] of the last row, or [n, vocab] (all), and/or top: the index of the largest
 *           logit (ck_argmax's pick, taken by the backend where the logits are: greedy decoding without
 *           copying them out) of the last row, or [n] of every row (all)
 * A non-finite value in the input, the embedding, any layer's output or the logits fails the forward
 * with an error naming where it first appeared. On failure s->pos is back where it was and, when
 * layers ran, s->broken is set. */
typedef struct ck_fwd {
    const int32_t *ids;
    const float *hidden_in;
    ck_backend *in_be;
    size_t n;
    int run_layers;
    float *hidden_out;
    int out_dev;
    float *logits;
    int32_t *top;
    int all;
} ck_fwd;
int ck_model_forward(const ck_model *m, ck_seq *s, ck_ws *w, const ck_fwd *f, char *err, size_t errlen);

/* Several sequences through one forward: input i feeds ids[0..n) to sequence s at its position and,
 * when logits is not NULL, gets the [vocab] logits of its last row (host), when top is not NULL their
 * largest's index (as ck_fwd's top). The rows of all inputs add up to at most CK_CHUNK; the sequences are
 * distinct. Each row's result is bit-identical to a forward of its sequence alone (the backend's kernels
 * are batch-invariant). On failure no sequence moves and every one is marked broken.
 * io NULL: the model holds the embedding, every layer and the head. Otherwise a part of a model spread
 * over devices: the rows come from rows_in ([rows, hidden], the inputs' rows in order; host memory, or
 * in_be's as ck_fwd's hidden_in) instead of the embedding of ids (which may then be NULL), the range's
 * layers run when layers (the sequences then move), the rows go to rows_out when it is not NULL (host, or
 * this model's backend memory with out_dev), and logits are made where asked (the model holds the head). */
typedef struct ck_batch_in {
    ck_seq *s;
    const int32_t *ids;
    size_t n;
    float *logits;
    int32_t *top;
} ck_batch_in;
typedef struct ck_batch_io {
    const float *rows_in;
    ck_backend *in_be;
    int layers;
    float *rows_out;
    int out_dev;
} ck_batch_io;
int ck_model_batch(const ck_model *m, const ck_batch_in *in, size_t n_in, const ck_batch_io *io, ck_ws *w, char *err,
                   size_t errlen);

/* ---- helpers for family code ---- */

/* 1 when layer i is in the model's range. */
static inline int ck_model_has_layer(const ck_model *m, int64_t i) { return i >= m->range.first && i <= m->range.last; }

/* Finds `name`, checks its shape against dims[0..ndim) and prepares it on the backend (released at
 * ck_model_free). Returns 1 when found, 0 when absent and optional, -1 (err names the tensor) otherwise. */
int ck_model_tensor(ck_model *m, const char *name, int optional, ck_tensor *t, int ndim, const uint64_t *dims,
                    char *err, size_t errlen);
/* *view = rows [r0, r0 + n) of a prepared 2-D weight (made by the backend). */
int ck_model_rows(ck_model *m, ck_tensor *view, const ck_tensor *w, uint64_t r0, uint64_t n, char *err, size_t errlen);
/* Loads a tensor of n elements (any shape) as f32 backend memory owned by the model (*out NULL when
 * absent and optional). */
int ck_model_vector(ck_model *m, const char *name, int optional, size_t n, float **out, char *err, size_t errlen);
/* Backend memory of `bytes` owned by the model (freed at ck_model_free), or NULL. */
void *ck_model_alloc(ck_model *m, size_t bytes);
/* Loads what the range holds of PREFIXembed_tokens, lm_head (absent and tied: the embedding) and
 * PREFIXnorm into m. */
int ck_model_load_head(ck_model *m, const char *prefix, char *err, size_t errlen);

#endif
