/* kernels.c — picks the CPU kernel set at start-up (see kernels.h). */
#include "backend/cpu/kernels.h"
#include "tensor/quant.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static float dot_f32_ref(const float *x, const void *w, size_t n) { return ck_dot_ref(x, w, CK_F32, n); }
static float dot_f16_ref(const float *x, const void *w, size_t n) { return ck_dot_ref(x, w, CK_F16, n); }
static float dot_bf16_ref(const float *x, const void *w, size_t n) { return ck_dot_ref(x, w, CK_BF16, n); }

/* Reference tile: two weight rows ws elements apart against four activation rows. */
static void tile_ref(ck_dtype dt, const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out) {
    size_t stride = 0;
    ck_dtype_row_bytes(dt, ws, &stride);
    for (int j = 0; j < 2; j++)
        for (int r = 0; r < 4; r++) out[j * 4 + r] = ck_dot_ref(x + r * xs, (const uint8_t *)w + j * stride, dt, n);
}

#define TILE_REF(name, dt)                                                                       \
    static void name(const float *x, size_t xs, const void *w, size_t ws, size_t n, float *out) { \
        tile_ref(dt, x, xs, w, ws, n, out);                                                       \
    }
TILE_REF(tile_f32_ref, CK_F32)
TILE_REF(tile_f16_ref, CK_F16)
TILE_REF(tile_bf16_ref, CK_BF16)

static const ck_cpu_kernels ref_kernels = {
    "ref",
    {[CK_F32] = dot_f32_ref, [CK_F16] = dot_f16_ref, [CK_BF16] = dot_bf16_ref},
    {[CK_F32] = tile_f32_ref, [CK_F16] = tile_f16_ref, [CK_BF16] = tile_bf16_ref},
    2,
    ck_axpy_ref,
    {[CK_Q8_0] = ck_qdot_q8_0_ref, [CK_Q4_0] = ck_qdot_q4_0_ref, [CK_Q4_K] = ck_qdot_q4_k_ref,
     [CK_Q5_K] = ck_qdot_q5_k_ref, [CK_Q6_K] = ck_qdot_q6_k_ref},
    {0},
};
#if defined(__x86_64__)
#define QDOT_TABLE(isa)                                                                              \
    {                                                                                                \
        [CK_Q8_0] = ck_qdot_q8_0_##isa, [CK_Q4_0] = ck_qdot_q4_0_##isa, [CK_Q4_K] = ck_qdot_q4_k_##isa, \
        [CK_Q5_K] = ck_qdot_q5_k_##isa, [CK_Q6_K] = ck_qdot_q6_k_##isa                               \
    },                                                                                               \
    {                                                                                                \
        [CK_Q8_0] = ck_qdot4_q8_0_##isa, [CK_Q4_0] = ck_qdot4_q4_0_##isa, [CK_Q4_K] = ck_qdot4_q4_k_##isa, \
        [CK_Q5_K] = ck_qdot4_q5_k_##isa, [CK_Q6_K] = ck_qdot4_q6_k_##isa                             \
    }
static const ck_cpu_kernels avx2_kernels = {
    "avx2",
    {[CK_F32] = ck_dot_f32_avx2, [CK_F16] = ck_dot_f16_avx2, [CK_BF16] = ck_dot_bf16_avx2},
    {[CK_F32] = ck_tile_f32_avx2, [CK_F16] = ck_tile_f16_avx2, [CK_BF16] = ck_tile_bf16_avx2},
    2,
    ck_axpy_avx2,
    QDOT_TABLE(avx2),
};

static const ck_cpu_kernels avx512_kernels = {
    "avx512",
    {[CK_F32] = ck_dot_f32_avx512, [CK_F16] = ck_dot_f16_avx512, [CK_BF16] = ck_dot_bf16_avx512},
    {[CK_F32] = ck_tile_f32_avx512, [CK_F16] = ck_tile_f16_avx512, [CK_BF16] = ck_tile_bf16_avx512},
    4,
    ck_axpy_avx512,
    QDOT_TABLE(avx2),
};

/* AVX-512 with VNNI: the quantized dot products use vpdpbusd */
static const ck_cpu_kernels avx512vnni_kernels = {
    "avx512vnni",
    {[CK_F32] = ck_dot_f32_avx512, [CK_F16] = ck_dot_f16_avx512, [CK_BF16] = ck_dot_bf16_avx512},
    {[CK_F32] = ck_tile_f32_avx512, [CK_F16] = ck_tile_f16_avx512, [CK_BF16] = ck_tile_bf16_avx512},
    4,
    ck_axpy_avx512,
    QDOT_TABLE(vnni),
};

#endif

const ck_cpu_kernels *ck_cpu_kernels_ref(void) { return &ref_kernels; }

static const ck_cpu_kernels *all_sets[5]; /* best first, NULL-terminated */
static const ck_cpu_kernels *picked;
static pthread_once_t pick_once = PTHREAD_ONCE_INIT;

static void pick(void) {
    size_t n = 0;
#if defined(__x86_64__)
    if (ck_cpu_has_avx512() && ck_cpu_has_avx2() && ck_cpu_has_vnni()) all_sets[n++] = &avx512vnni_kernels;
    if (ck_cpu_has_avx512() && ck_cpu_has_avx2()) all_sets[n++] = &avx512_kernels;
    if (ck_cpu_has_avx2()) all_sets[n++] = &avx2_kernels;
#endif
    all_sets[n] = &ref_kernels;
    const char *want = getenv("CAKE_CPU_KERNELS");
    picked = all_sets[0];
    for (size_t i = 0; want && all_sets[i]; i++)
        if (!strcmp(all_sets[i]->name, want)) picked = all_sets[i];
}

const ck_cpu_kernels *const *ck_cpu_kernels_all(void) {
    pthread_once(&pick_once, pick);
    return all_sets;
}

const ck_cpu_kernels *ck_cpu_kernels_get(void) {
    pthread_once(&pick_once, pick);
    return picked;
}
