/* model.h — a loaded transformer (config, mapped weights, prepared tensors) and the state of one
 * sequence run through it. The forward pass is the same for every family: embed, the family's block per
 * layer, final norm, output head; a family (see family.h) supplies the block and its weights.
 * Internal to the engine: the public surface is include/cake.h. */
#ifndef CK_MODEL_H
#define CK_MODEL_H

#include "backend/backend.h"
#include "format/hfconfig.h"
#include "format/safetensors.h"
#include "model/rope.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ck_model ck_model;
typedef struct ck_state ck_state;
typedef struct ck_family ck_family;

#define CK_CHUNK 64        /* token rows processed per step of a prefill */
#define CK_HEAD_ROWS 8     /* rows of logits computed per step of the output head */
#define CK_MAX_ROPES 2     /* distinct RoPE tables (e.g. Gemma 3's local and global bases) */

struct ck_model {
    ck_config cfg;
    ck_weights weights;
    ck_backend *be;
    const ck_family *family;
    void *layers;          /* family-owned per-layer weights */
    ck_tensor embed;       /* [vocab, hidden] */
    ck_tensor lm_head;     /* [vocab, hidden]; equals embed when tied */
    float *final_norm;     /* [hidden] f32, backend memory */
    int final_norm_one_plus;
    float embed_scale;     /* 1, or sqrt(hidden) for Gemma */
    ck_rope rope[CK_MAX_ROPES]; /* RoPE tables; a family that sets none gets rope[0] from the config */
    int n_ropes;
    float attn_scale;      /* multiplies q.k; 1/sqrt(head_dim) unless the family says otherwise */
    size_t max_ffn;        /* largest MLP intermediate size (sizes the gate/up scratch); family may raise */
    unsigned char *no_kv;  /* [n_layers] 1 where a layer keeps no KV cache (set by the family), or NULL */
    int attn_out_gate;     /* set by the family when q_proj carries an output gate: the state gets s->qg */
};

/* Per-layer attention cache, owned by whoever runs the layer. */
typedef struct ck_layer_kv {
    float *k;              /* [max_ctx, n_kv_heads, head_dim] */
    float *v;              /* [max_ctx, n_kv_heads, head_dim] */
} ck_layer_kv;

typedef struct ck_stats {
    double embed_s, layers_s, head_s; /* wall time spent in each part */
} ck_stats;

struct ck_state {
    const ck_model *m;
    size_t max_ctx;        /* positions the caches hold */
    size_t pos;            /* positions filled */
    ck_layer_kv *kv;       /* [n_layers] */
    /* scratch, backend memory, CK_CHUNK rows each */
    float *x;              /* [CK_CHUNK, hidden] residual stream */
    float *xn;             /* [CK_CHUNK, hidden] normed input of a sub-block */
    float *q, *k, *v, *att;/* [CK_CHUNK, heads x head_dim] (k, v: kv heads) */
    float *gate, *up;      /* [CK_CHUNK, intermediate] */
    float *qg;             /* [CK_CHUNK, heads x 2 x head_dim] q + output gate, when m->attn_out_gate; else NULL */
    float *cos[CK_MAX_ROPES], *sin[CK_MAX_ROPES]; /* [CK_CHUNK, rot_dim/2] per table, rows in flight */
    float *logits;         /* [CK_HEAD_ROWS, vocab] */
    float *host_cos, *host_sin; /* host staging, [CK_CHUNK, max rot_dim/2] */
    void *fam;             /* family-owned state (recurrent state, extra scratch), or NULL */
    ck_stats stats;
    float *capture;        /* optional host [n_layers + 1, capture_rows, hidden]: embedding, blocks 0..L-2, final norm */
    size_t capture_rows;
};

/* Loads DIR (config.json + safetensors) for the backend. Errors name the file, tensor or field. */
int ck_model_load(const char *dir, ck_backend *be, ck_model *m, char *err, size_t errlen);
void ck_model_free(ck_model *m);

/* Supported architecture names, comma-separated, for error messages and --help. */
const char *ck_model_supported(void);

int ck_state_init(ck_state *s, const ck_model *m, size_t max_ctx, char *err, size_t errlen);
void ck_state_free(ck_state *s);
void ck_state_reset(ck_state *s);

/* Runs ids[0..n) at positions pos.. and advances pos. logits: NULL, or host [vocab] for the last
 * row (all == 0), or host [n, vocab] for every row (all == 1). Fails when the cache would overflow. */
int ck_state_forward(ck_state *s, const int32_t *ids, size_t n, float *logits, int all, char *err, size_t errlen);

/* ---- helpers for family code ---- */

/* Finds `name`, checks its shape against dims[0..ndim) and prepares it on the backend. Returns 1 when
 * found, 0 when absent and optional, -1 (err names the tensor) otherwise. */
int ck_model_tensor(ck_model *m, const char *name, int optional, ck_tensor *t, int ndim, const uint64_t *dims,
                    char *err, size_t errlen);
/* Loads a tensor of n elements (any shape) as f32 backend memory (*out NULL when absent and optional). */
int ck_model_vector(ck_model *m, const char *name, int optional, size_t n, float **out, char *err, size_t errlen);
/* Loads PREFIXembed_tokens, lm_head (absent and tied: the embedding) and PREFIXnorm into m. */
int ck_model_load_head(ck_model *m, const char *prefix, char *err, size_t errlen);

#endif
