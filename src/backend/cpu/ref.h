/* ref.h — plain scalar reference kernels of the CPU backend. They define the numerics (f32 values,
 * f32 accumulation unless noted) that every faster kernel is tested against. */
#ifndef CK_BACKEND_CPU_REF_H
#define CK_BACKEND_CPU_REF_H

#include "backend/backend.h"

#include <math.h>

/* sum_i x[i] * w[i], with w[n] in its stored dtype. */
float ck_dot_ref(const float *x, const void *w, ck_dtype wt, size_t n);

/* y[n_out] = W[n_out, n_in] . x[n_in] (+ bias) for one row of x. */
void ck_matvec_ref(float *y, const float *x, const ck_tensor *W, const float *bias);

void ck_rmsnorm_ref(float *y, const float *x, const float *w, size_t n, float eps, int one_plus);
/* RMSNorm's scale 1 / sqrt(ss / n + eps) from the sum of squares ss in double, rounded to float (every
 * RMSNorm kernel's, so that they differ only by the order of ss's sum). */
static inline float ck_rms_scale(double ss, size_t n, float eps) { return (float)(1.0 / sqrt(ss / (double)n + eps)); }

/* One head of RoPE: rotates x[0..rot_dim) as pairs (i, i + rot_dim/2). */
void ck_rope_head_ref(float *x, size_t rot_dim, const float *cos, const float *sin);

/* cos/sin of the angles (double)pos * inv_freq[i], i < half, rounded to float (see backend.h rope). */
void ck_rope_angles_ref(float *cos_out, float *sin_out, int32_t pos, const double *inv_freq, size_t half);

/* y[i] += a * x[i] for i < n. */
void ck_axpy_ref(float *y, float a, const float *x, size_t n);
/* y[i] += a * x[i] for i < n, x in f16. */
void ck_axpy_f16_ref(float *y, float a, const uint16_t *x, size_t n);
/* dst[i] = ck_f32_to_f16_sat(x[i]) for i < n. */
void ck_to_f16_ref(uint16_t *dst, const float *x, size_t n);

/* sqrt(2 / pi), GELU-tanh's a = CK_GELU_C (g + 0.044715 g^3) */
#define CK_GELU_C 0.7978845608028654f
/* act(g) * u for one element. */
float ck_glu_ref(float g, float u, ck_act act);
/* out[i] = ck_glu_ref(gate[i], up[i], act) for i < n. */
void ck_glu_rows_ref(float *out, const float *gate, const float *up, size_t n, ck_act act);

/* Attention in segments. A row's visible keys are walked in segments of absolute positions
 * [s CK_ATTN_SEG, (s + 1) CK_ATTN_SEG): each segment from a fresh online-softmax state (per query head the
 * running max m, the running sum l and the unnormalized accumulator acc [head_dim]), the segments' states
 * merged in increasing order (ck_attn_merge) into the row's, which is then normalized. A row's result thus
 * depends on its position and window only, and a long context can be split over threads (cpu.c) with the
 * bits of one thread walking it. A context within one segment gives the bits of a plain online softmax. */
#define CK_ATTN_SEG 256

/* The segments [*s0, *s1) query row t sees, and the keys [*j0, *j1) of its segment s. */
void ck_attn_segments(const ck_attn_args *a, size_t t, size_t *s0, size_t *s1);
void ck_attn_seg_keys(const ck_attn_args *a, size_t t, size_t s, size_t *j0, size_t *j1);
/* (M, L, ACC [hd]) <- the merge of a head's state with the state (m, l, acc) of its next segment; the
 * empty state is M = -inf, L = 0, ACC = 0, and a segment with m = -inf (every score -inf) changes nothing. */
void ck_attn_merge(float *M, float *L, float *ACC, float m, float l, const float *acc, size_t hd);

/* Attention of query row t, head h: its segments' online softmaxes (one pass, no score buffer), merged. */
void ck_attention_row_ref(const ck_attn_args *a, size_t t, size_t h);

/* Causal depthwise conv1d of channel c (see backend.h conv1d_causal): y[t, c] for t < T, then the
 * channel's column of state [K-1, C] shifted to the last K-1 inputs. w_c is the channel's [K] taps. */
void ck_conv1d_channel_ref(float *y, const float *x, float *state, const float *w_c, size_t T, size_t C, size_t K,
                           size_t c, int silu);

/* softplus(x) = log(1 + e^x), returning x above 20 like torch. */
float ck_softplus_ref(float x);

/* One value head h of the gated delta rule over all T tokens (see ck_gdn_args). */
void ck_gated_delta_head_ref(const ck_gdn_args *a, size_t h);

/* One row of gated RMSNorm: y = x / rms(x) * w * silu(z); y may equal x. */
void ck_rmsnorm_gated_ref(float *y, const float *x, const float *z, const float *w, size_t n, float eps);

#endif
