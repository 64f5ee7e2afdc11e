/* kernels.h — the CPU backend's kernel table: for each weight dtype the dot product the matmul uses,
 * chosen once at start-up from the CPU's features (the scalar reference, or an ISA-specific version that
 * lives in its own file and is tested against the reference). CAKE_CPU_KERNELS=ref|avx2|avx512 picks
 * one (when the CPU has it). */
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

typedef struct ck_cpu_kernels {
    const char *name;            /* "ref", "avx2", "avx512" */
    ck_dot_fn dot[CK_DTYPE_COUNT];
    ck_tile_fn tile[CK_DTYPE_COUNT];
    size_t tile_w;               /* weight rows per tile: 2, or 4 where registers allow */
    ck_axpy_fn axpy;
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

/* Attention of query row t for every query head that shares KV head kvh (grouped-query attention reads
 * each cached key/value once for the whole group), with the given kernel set; online softmax. Same
 * contract as ck_attention_row_ref for each of those heads. */
void ck_attention_group(const ck_attn_args *a, size_t t, size_t kvh, const ck_cpu_kernels *k);

/* Every kernel set this CPU can run, best first, NULL-terminated (the reference is always last). */
const ck_cpu_kernels *const *ck_cpu_kernels_all(void);

#endif
