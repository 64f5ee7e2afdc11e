/* moe.h — the sparse mixture-of-experts MLP of Qwen3-MoE and Qwen3.5-MoE: a router picks the top-k
 * experts per token from softmax(router(x)) (renormalized over the k when norm_topk), each expert is a
 * gated MLP, and an optional shared expert is added scaled by sigmoid(shared_gate(x)). Routing runs on
 * the backend (its moe_route op); the chosen experts and weights come back to the host, which groups
 * the rows per expert; the experts run through the backend on the rows routed to
 * them, gathered into a contiguous block, so prefill batches every expert's rows. */
#ifndef CK_MODEL_MOE_H
#define CK_MODEL_MOE_H

#include "model/blocks.h"

typedef struct ck_moe_w {
    ck_tensor router;       /* [n_experts, hidden] */
    ck_mlp_w *experts;      /* [n_experts] */
    size_t n_experts, top_k;
    int norm_topk;
    int has_shared;
    ck_mlp_w shared;        /* shared expert */
    ck_tensor shared_gate;  /* [1, hidden] */
} ck_moe_w;

/* Workspace scratch for the MoE forward (sized for m->chunk rows; CK_CHUNK below stands for that). */
typedef struct ck_moe_scratch {
    float *logits;          /* backend [CK_CHUNK, n_experts + 1] router (+ shared gate) logits */
    float *host_logits;     /* host copy */
    float *in, *out;        /* backend [CK_CHUNK, hidden] gathered rows and their expert output */
    float *acc;             /* backend [CK_CHUNK, hidden] the block's output */
    int32_t *rows;          /* host [CK_CHUNK * top_k] rows routed to one expert */
    float *w;               /* host [CK_CHUNK * top_k] their routing weights */
    int32_t *choice;        /* host [CK_CHUNK, top_k] chosen experts */
    float *choice_w;        /* host [CK_CHUNK, top_k] their weights */
    int32_t *dev_choice;    /* backend [CK_CHUNK, top_k]: moe_route's output, downloaded into choice */
    float *dev_choice_w;    /* backend [CK_CHUNK, top_k] */
    size_t n_experts, top_k;
} ck_moe_scratch;

/* Reads the MoE sizes from the config: num_experts / num_local_experts, num_experts_per_tok,
 * moe_intermediate_size, shared_expert_intermediate_size (all 0 when the model has no experts). */
int ck_moe_sizes(const ck_config *c, size_t *n_experts, size_t *top_k, size_t *ffn, size_t *shared_ffn, char *err,
                 size_t errlen);
/* ck_moe_sizes, and raises m->max_ffn to fit. */
int ck_moe_config(ck_model *m, size_t *n_experts, size_t *top_k, size_t *ffn, size_t *shared_ffn, char *err,
                  size_t errlen);
/* Loads PREFIX{gate, experts.E.{gate,up,down}_proj, shared_expert.*, shared_expert_gate}. */
int ck_moe_load(ck_model *m, const char *prefix, int norm_topk, ck_moe_w *w, char *err, size_t errlen);
void ck_moe_free(ck_moe_w *w);

int ck_moe_scratch_init(const ck_model *m, ck_moe_scratch *sc, char *err, size_t errlen);
void ck_moe_scratch_free(const ck_model *m, ck_moe_scratch *sc);

/* w->xn[T, hidden] = moe(w->xn) */
void ck_moe_forward(const ck_model *m, ck_ws *w, const ck_moe_w *mw, ck_moe_scratch *sc, size_t T);

#endif
