/* blocks.h — sub-blocks shared by the families: grouped-query attention with a KV cache and the gated
 * MLP. Each reads the normed input s->xn[T, hidden] and leaves its output projection in s->xn.
 * Attention options: QKV bias, QK RMSNorm per head or over the whole projection, a fused qkv_proj, RoPE
 * from one of the model's tables (or none), a sliding window, a sigmoid output gate fused into q_proj. MLP options: fused gate_up_proj, SiLU or
 * GELU-tanh gate. Fused weights are split into row views of the same mapped tensor: no copies. */
#ifndef CK_MODEL_BLOCKS_H
#define CK_MODEL_BLOCKS_H

#include "model/model.h"

enum {
    CK_ATTN_BIAS = 1,          /* q/k/v_proj.bias */
    CK_ATTN_QK_NORM = 2,       /* q_norm/k_norm over each head ([head_dim] weights) */
    CK_ATTN_QK_NORM_WHOLE = 4, /* q_norm/k_norm over the whole projection ([heads*head_dim]) */
    CK_ATTN_FUSED_QKV = 8,     /* one qkv_proj [(heads + 2 kv) * head_dim, hidden] */
    CK_ATTN_OUT_GATE = 16,     /* q_proj [heads * 2 * head_dim, hidden] yields per head [q, gate]; the
                                  attention output is multiplied by sigmoid(gate) before o_proj (Qwen3.5,
                                  Qwen3-Next); needs m->attn_out_gate so that the workspace has qg */
    CK_ATTN_BIAS_O = 32,       /* o_proj.bias */
};
/* The biases of config.json's attention_bias in HF's families that read it (Llama, Qwen3, Gemma 3, OLMo 2,
 * Qwen3.5, the MoE variants): all four projections; Qwen2's q/k/v biases are its architecture's. */
#define CK_ATTN_BIAS_ALL (CK_ATTN_BIAS | CK_ATTN_BIAS_O)

typedef struct ck_attn_w {
    ck_tensor q, k, v, o;            /* [heads*hd, hidden], [kv*hd, hidden] x2, [hidden, heads*hd] */
    float *q_bias, *k_bias, *v_bias; /* [heads*hd], [kv*hd] x2, or NULL */
    float *o_bias;                   /* [hidden], or NULL */
    float *q_norm, *k_norm;          /* [head_dim] or [heads*hd] / [kv*hd] RMSNorm weights, or NULL */
    int norm_whole;                  /* q/k norms span the whole projection */
    int norm_one_plus;               /* norms scale by (1 + w) */
    int out_gate;                    /* q holds [heads, 2 * hd]: per head q then its output gate */
    int rope;                        /* index into m->rope, or -1 for no RoPE */
    size_t window;                   /* sliding window in positions, 0 = full */
} ck_attn_w;

typedef struct ck_mlp_w {
    ck_tensor gate, up, down;        /* [ffn, hidden] x2, [hidden, ffn] */
    size_t ffn;                      /* at most m->max_ffn (the size of the workspace's gate/up scratch) */
    ck_act act;
} ck_mlp_w;

/* Loads PREFIX{q,k,v,o}_proj (or qkv_proj + o_proj) and the optional bias/norm tensors per flags. */
int ck_attn_load(ck_model *m, const char *prefix, unsigned flags, ck_attn_w *w, char *err, size_t errlen);
/* w->xn = attention(w->xn) for the rows of r (positions in w->pos) in layer `layer`; each span's rows go
 * into its sequence's KV cache of that layer. */
void ck_attn_forward(const ck_model *m, const ck_rows *r, ck_ws *w, size_t layer, const ck_attn_w *a);

/* Loads PREFIX{gate,up,down}_proj (fused: gate_up_proj + down_proj) with intermediate size ffn. */
int ck_mlp_load(ck_model *m, const char *prefix, int fused, ck_act act, size_t ffn, ck_mlp_w *w, char *err,
                size_t errlen);
/* out[T, hidden] = down(act(gate(in)) * up(in)) for in[T, hidden]; out may equal in. */
void ck_mlp_forward(const ck_model *m, ck_ws *w, const ck_mlp_w *mw, const float *in, float *out, size_t T);

#endif
