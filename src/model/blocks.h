/* blocks.h — sub-blocks shared by the families: grouped-query attention with a KV cache (optional QKV
 * bias, per-head QK RMSNorm, RoPE on the first rot_dim dims, sliding window) and the gated MLP. Each reads
 * the normed input s->xn[T, hidden] and leaves its output projection in s->xn. */
#ifndef CK_MODEL_BLOCKS_H
#define CK_MODEL_BLOCKS_H

#include "model/model.h"

typedef struct ck_attn_w {
    ck_tensor q, k, v, o;            /* [heads*hd, hidden], [kv*hd, hidden] x2, [hidden, heads*hd] */
    float *q_bias, *k_bias, *v_bias; /* [heads*hd], [kv*hd] x2, or NULL */
    float *q_norm, *k_norm;          /* [head_dim] per-head RMSNorm weights, or NULL */
    size_t window;                   /* sliding window in positions, 0 = full */
} ck_attn_w;

typedef struct ck_mlp_w {
    ck_tensor gate, up, down;        /* [ffn, hidden] x2, [hidden, ffn] */
} ck_mlp_w;

/* Loads PREFIX{q,k,v,o}_proj.weight (+ .bias when bias) and PREFIX{q,k}_norm.weight when qk_norm. */
int ck_attn_load(ck_model *m, const char *prefix, int bias, int qk_norm, ck_attn_w *w, char *err, size_t errlen);
void ck_attn_forward(const ck_model *m, ck_state *s, size_t layer, const ck_attn_w *w, size_t T);

/* Loads PREFIX{gate,up,down}_proj.weight. */
int ck_mlp_load(ck_model *m, const char *prefix, ck_mlp_w *w, char *err, size_t errlen);
void ck_mlp_forward(const ck_model *m, ck_state *s, const ck_mlp_w *w, size_t T);

#endif
