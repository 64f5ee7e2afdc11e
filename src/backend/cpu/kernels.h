/* kernels.h — the CPU backend's kernel table: for each weight dtype the dot product the matmul uses,
 * chosen once at start-up from the CPU's features (the scalar reference, or an ISA-specific version that
 * lives in its own file and is tested against the reference). CAKE_CPU_KERNELS=ref|avx2|avx512|avx512vnni
 * picks one (when the CPU has it); avx512vnni differs from avx512 only in its quantized dot products. */
#ifndef CK_BACKEND_CPU_KERNELS_H
#define CK_BACKEND_CPU_KERNELS_H

#include "backend/cpu/ref.h"

/* sum_i x[i] * w[i] with w[n] in the table entry's dtype */
typedef float (*ck_dot_fn)(const float *x, const void *w, size_t n);
/* A tile for prefill: out[j * 4 + r] = sum_i x[r * xs + i] * w[j * ws + i] for r < 4, j < tile_w
 * (four activation rows against tile_w weight rows; xs and ws in elements; out has 4 * tile_w floats) */
typedef void (*ck_tile_fn)(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out);

/* y[i] += a * x[i] for i < n (f32) */
typedef void (*ck_axpy_fn)(float *y, float a, const float *x, size_t n);

/* Block-quantized weights: the dot product of weight row w[n] (in the entry's dtype) with activation row
 * xq (x[n] quantized by that dtype's traits->quantize_act); equal bit for bit to traits->qdot. */
typedef float (*ck_qdot_fn)(const void *w, const void *xq, size_t n);
/* out[r] = qdot(w, xq + r * stride bytes, n) for r < 4, bit for bit (one weight row read for four
 * activation rows: prefill). */
typedef void (*ck_qdot4_fn)(const void *w, const void *xq, size_t stride, size_t n, float *out);

typedef struct ck_cpu_kernels {
    const char *name;            /* "ref", "avx2", "avx512" */
    ck_dot_fn dot[CK_DTYPE_COUNT];
    ck_tile_fn tile[CK_DTYPE_COUNT];
    size_t tile_w;               /* weight rows per tile: 2, or 4 where registers allow */
    ck_axpy_fn axpy;
    ck_qdot_fn qdot[CK_DTYPE_COUNT];   /* block-quantized dtypes only (quant_*.c) */
    ck_qdot4_fn qdot4[CK_DTYPE_COUNT]; /* where a four-row kernel exists, else NULL */
} ck_cpu_kernels;

/* The kernels for this CPU (picked on the first call). */
const ck_cpu_kernels *ck_cpu_kernels_get(void);
/* The scalar reference kernels, whatever the CPU. */
const ck_cpu_kernels *ck_cpu_kernels_ref(void);

/* x86-64 only: AVX2 + FMA + F16C versions (dot_avx2.c) and whether this CPU can run them. */
float ck_dot_f32_avx2(const float *x, const void *w, size_t n);
float ck_dot_bf16_avx2(const float *x, const void *w, size_t n);
float ck_dot_f16_avx2(const float *x, const void *w, size_t n);
void ck_tile_f32_avx2(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out);
void ck_tile_bf16_avx2(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out);
void ck_tile_f16_avx2(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out);
void ck_axpy_avx2(float *y, float a, const float *x, size_t n);
int ck_cpu_has_avx2(void);

/* x86-64 only: AVX-512F versions (dot_avx512.c); their tiles are 4 x 4. */
float ck_dot_f32_avx512(const float *x, const void *w, size_t n);
float ck_dot_bf16_avx512(const float *x, const void *w, size_t n);
float ck_dot_f16_avx512(const float *x, const void *w, size_t n);
void ck_tile_f32_avx512(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out);
void ck_tile_bf16_avx512(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out);
void ck_tile_f16_avx512(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out);
void ck_axpy_avx512(float *y, float a, const float *x, size_t n);
int ck_cpu_has_avx512(void);

/* x86-64 only: quantized dot products (quant_avx2.c: maddubs; quant_avx512.c: AVX512-VNNI vpdpbusd). */
#define CK_QDOT_DECL(isa)                                                 \
    float ck_qdot_q8_0_##isa(const void *w, const void *xq, size_t n);    \
    float ck_qdot_q4_0_##isa(const void *w, const void *xq, size_t n);    \
    float ck_qdot_q4_k_##isa(const void *w, const void *xq, size_t n);    \
    float ck_qdot_q5_k_##isa(const void *w, const void *xq, size_t n);    \
    float ck_qdot_q6_k_##isa(const void *w, const void *xq, size_t n);    \
    void ck_qdot4_q8_0_##isa(const void *w, const void *xq, size_t stride, size_t n, float *out); \
    void ck_qdot4_q4_0_##isa(const void *w, const void *xq, size_t stride, size_t n, float *out); \
    void ck_qdot4_q4_k_##isa(const void *w, const void *xq, size_t stride, size_t n, float *out); \
    void ck_qdot4_q5_k_##isa(const void *w, const void *xq, size_t stride, size_t n, float *out); \
    void ck_qdot4_q6_k_##isa(const void *w, const void *xq, size_t stride, size_t n, float *out);
CK_QDOT_DECL(avx2)
CK_QDOT_DECL(vnni)
int ck_cpu_has_vnni(void);

/* y[T, n_out] = x[T, n_in] . W^T (+ bias) for a block-quantized W (quant_ref.c): each row of x is
 * quantized once into W's activation format, then every output is k->qdot of a weight row with it, so
 * a row's result never depends on the other rows (batch-invariant). -1 with err when W's dtype has no
 * quantized kernel in k or scratch memory runs out. */
int ck_cpu_matmul_quant(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T,
                        const ck_cpu_kernels *k, int n_threads, char *err, size_t errlen);

/* Attention of query row t for every query head that shares KV head kvh (grouped-query attention reads
 * each cached key/value once for the whole group), with the given kernel set; online softmax. Same
 * contract as ck_attention_row_ref for each of those heads. */
void ck_attention_group(const ck_attn_args *a, size_t t, size_t kvh, const ck_cpu_kernels *k);

/* Every kernel set this CPU can run, best first, NULL-terminated (the reference is always last). */
const ck_cpu_kernels *const *ck_cpu_kernels_all(void);

#endif
