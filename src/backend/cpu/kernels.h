/* kernels.h — the CPU backend's kernel table: for each weight dtype the dot product the matmul uses,
 * chosen once at start-up from the CPU's features (the scalar reference, or an ISA-specific version that
 * lives in its own file and is tested against the reference). CAKE_CPU_KERNELS=ref forces the reference. */
#ifndef CK_BACKEND_CPU_KERNELS_H
#define CK_BACKEND_CPU_KERNELS_H

#include "backend/cpu/ref.h"

typedef float (*ck_dot_fn)(const float *x, const void *w, size_t n);

typedef struct ck_cpu_kernels {
    const char *name;            /* "ref", "avx2" */
    ck_dot_fn dot[CK_DTYPE_COUNT];
} ck_cpu_kernels;

/* The kernels for this CPU (picked on the first call). */
const ck_cpu_kernels *ck_cpu_kernels_get(void);
/* The scalar reference kernels, whatever the CPU. */
const ck_cpu_kernels *ck_cpu_kernels_ref(void);

/* AVX2 + FMA + F16C versions (dot_avx2.c) and whether this CPU can run them. */
float ck_dot_f32_avx2(const float *x, const void *w, size_t n);
float ck_dot_bf16_avx2(const float *x, const void *w, size_t n);
float ck_dot_f16_avx2(const float *x, const void *w, size_t n);
int ck_cpu_has_avx2(void);

#endif
