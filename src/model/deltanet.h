/* deltanet.h — the Gated DeltaNet token mixer (Qwen3.5 / Qwen3-Next "linear_attention" layers), written
 * against the backend ops. Per token, from the normed input x[hidden]:
 *   mixed = in_proj_qkv x                 [2 kd + vd] = q | k | v (kd = nk dk, vd = nv dv)
 *   mixed = silu(causal depthwise conv1d over time of mixed)   (kernel K, state = last K-1 inputs)
 *   q, k, v = split(mixed);  z = in_proj_z x [vd];  b = in_proj_b x [nv];  a = in_proj_a x [nv]
 *   beta = sigmoid(b);  g = -exp(A_log) softplus(a + dt_bias)
 *   o = gated delta rule(l2norm(q) / sqrt(dk), l2norm(k), v, g, beta)   (value head h reads key head
 *       h / (nv / nk), the repeat_interleave order)
 *   y = out_proj (RMSNorm(o per value head) * norm.weight * silu(z))
 * With linear_out_proj_tiled (a GGUF file whose out_proj blocks split value heads, so its columns could not
 * be put in HF order at load) out_proj's columns hold the value heads tiled, column group j * nk + k being
 * head k * (nv / nk) + j: the normed o is gathered into that order before the product.
 * Prefill runs the same sequential f32 recurrence as decode, so the two agree exactly.
 * Invariant: a ck_deltanet_state holds everything a sequence carries between calls (conv window and
 * recurrent state); zeroing it starts a new sequence. A ck_deltanet_scratch (workspace, shared by the
 * layers and the sequences of one forward at a time) is sized for `rows` tokens per call. */
#ifndef CK_MODEL_DELTANET_H
#define CK_MODEL_DELTANET_H

#include "model/model.h"

typedef struct ck_deltanet_w {
    ck_tensor qkv;        /* [2 kd + vd, hidden] */
    ck_tensor z;          /* [vd, hidden] */
    ck_tensor b, a;       /* [nv, hidden] each */
    ck_tensor out;        /* [hidden, vd] */
    float *conv;          /* [2 kd + vd, K] f32 backend memory */
    float *A_log, *dt_bias; /* [nv] f32 */
    float *norm;          /* [dv] f32, plain weight (not 1 + w) */
    size_t hidden, nk, nv, dk, dv, K;
    float eps;
    int out_tiled;        /* out_proj's columns hold the value heads tiled (linear_out_proj_tiled) */
} ck_deltanet_w;

typedef struct ck_deltanet_state {
    float *conv;          /* [K - 1, 2 kd + vd] last inputs of the conv */
    float *S;             /* [nv, dk, dv] recurrent state */
} ck_deltanet_state;

typedef struct ck_deltanet_scratch {
    float *mixed, *mixed_c; /* [rows, 2 kd + vd] before / after conv */
    float *z, *o;         /* [rows, vd] */
    float *g, *beta;      /* [rows, nv] */
    int32_t *out_rows;    /* host [rows * nv], out_tiled only: row i of out_proj's input is row out_rows[i]
                             of o seen as [rows * nv, dv] (the gather lands in mixed, free by then) */
    size_t rows;
} ck_deltanet_scratch;

/* Sizes from the text config (linear_* fields) into w; checks them. */
int ck_deltanet_config(const ck_config *c, ck_deltanet_w *w, char *err, size_t errlen);
/* Loads PREFIX{in_proj_qkv,in_proj_z,in_proj_b,in_proj_a,out_proj}.weight, conv1d.weight, A_log,
 * dt_bias and norm.weight (sizes from ck_deltanet_config; vectors owned by the model). */
int ck_deltanet_load(ck_model *m, const char *prefix, ck_deltanet_w *w, char *err, size_t errlen);

int ck_deltanet_state_init(ck_backend *be, const ck_deltanet_w *w, ck_deltanet_state *st, char *err, size_t errlen);
void ck_deltanet_state_reset(ck_backend *be, const ck_deltanet_w *w, ck_deltanet_state *st);
void ck_deltanet_state_free(ck_backend *be, ck_deltanet_state *st);

int ck_deltanet_scratch_init(ck_backend *be, const ck_deltanet_w *w, size_t rows, ck_deltanet_scratch *sc, char *err,
                             size_t errlen);
void ck_deltanet_scratch_free(ck_backend *be, ck_deltanet_scratch *sc);

/* y[T, hidden] = mixer(x[T, hidden]) for the rows of r (T = r->T <= sc->rows): span i's rows are the next
 * tokens of the sequence whose state is st[i]. y may equal x. */
void ck_deltanet_forward(ck_backend *be, const ck_deltanet_w *w, const ck_rows *r, ck_deltanet_state *const *st,
                         ck_deltanet_scratch *sc, float *y, const float *x);

#endif
