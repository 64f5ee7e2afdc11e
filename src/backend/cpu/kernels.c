/* kernels.c — picks the CPU kernel set at start-up (see kernels.h): the best set the CPU runs, or the
 * one CAKE_CPU_KERNELS names. */
#include "backend/cpu/kernels.h"
#include "tensor/quant.h"

#include <pthread.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <stdlib.h>
#include <string.h>

static float dot_f32_ref(const float *x, const void *w, size_t n) { return ck_dot_ref(x, w, CK_F32, n); }
static float dot_f16_ref(const float *x, const void *w, size_t n) { return ck_dot_ref(x, w, CK_F16, n); }
static float dot_bf16_ref(const float *x, const void *w, size_t n) { return ck_dot_ref(x, w, CK_BF16, n); }

static ck_cpu_kernels ref_kernels = {
    .name = "ref",
    .dot = {[CK_F32] = dot_f32_ref, [CK_F16] = dot_f16_ref, [CK_BF16] = dot_bf16_ref},
    .axpy = ck_axpy_ref,
    .axpy_f16 = ck_axpy_f16_ref,
    .to_f16 = ck_to_f16_ref,
    .glu = ck_glu_rows_ref,
    .rmsnorm = ck_rmsnorm_ref,
    .qdot = {[CK_Q8_0] = ck_qdot_q8_0_ref, [CK_Q4_0] = ck_qdot_q4_0_ref, [CK_Q4_K] = ck_qdot_q4_k_ref,
             [CK_Q5_K] = ck_qdot_q5_k_ref, [CK_Q6_K] = ck_qdot_q6_k_ref},
};
#if defined(__x86_64__)
/* The quantized dot products of one ISA (quant_avx2.c: maddubs; quant_avx512.c: AVX512-VNNI). */
#define QDOT_TABLES(isa)                                                                                   \
    .qdot = {[CK_Q8_0] = ck_qdot_q8_0_##isa, [CK_Q4_0] = ck_qdot_q4_0_##isa, [CK_Q4_K] = ck_qdot_q4_k_##isa,  \
             [CK_Q5_K] = ck_qdot_q5_k_##isa, [CK_Q6_K] = ck_qdot_q6_k_##isa},                              \
    .qdot4 = {[CK_Q8_0] = ck_qdot4_q8_0_##isa, [CK_Q4_0] = ck_qdot4_q4_0_##isa, [CK_Q4_K] = ck_qdot4_q4_k_##isa, \
              [CK_Q5_K] = ck_qdot4_q5_k_##isa, [CK_Q6_K] = ck_qdot4_q6_k_##isa},                           \
    .qgemv = {[CK_Q8_0] = ck_qgemv_q8_0_##isa, [CK_Q4_0] = ck_qgemv_q4_0_##isa, [CK_Q4_K] = ck_qgemv_q4_k_##isa, \
              [CK_Q5_K] = ck_qgemv_q5_k_##isa, [CK_Q6_K] = ck_qgemv_q6_k_##isa},                           \
    .quantize_act = {[CK_ACT_Q8] = ck_quantize_q8_##isa, [CK_ACT_Q8K] = ck_quantize_q8k_##isa}
static const ck_cpu_kernels vnni_qdot = {QDOT_TABLES(vnni)};
static ck_cpu_kernels avx2_kernels = {
    .name = "avx2",
    .dot = {[CK_F32] = ck_dot_f32_avx2, [CK_F16] = ck_dot_f16_avx2, [CK_BF16] = ck_dot_bf16_avx2},
    .axpy = ck_axpy_avx2,
    .axpy_f16 = ck_axpy_f16_avx2,
    .to_f16 = ck_to_f16_avx2,
    .glu = ck_glu_avx2,
    .rmsnorm = ck_rmsnorm_avx2,
    QDOT_TABLES(avx2),
};
static ck_cpu_kernels avx512_kernels = {
    .name = "avx512",
    .dot = {[CK_F32] = ck_dot_f32_avx512, [CK_F16] = ck_dot_f16_avx512, [CK_BF16] = ck_dot_bf16_avx512},
    .axpy = ck_axpy_avx512,
    .axpy_f16 = ck_axpy_f16_avx512,
    .to_f16 = ck_to_f16_avx512,
    .glu = ck_glu_avx512,
    .rmsnorm = ck_rmsnorm_avx512,
    .attn_seg = ck_attention_seg_avx512,
    .attn_tokens = ck_attention_tokens_avx512,
    QDOT_TABLES(avx2), /* AVX512-VNNI ones replace these in fill() where the CPU has it */
};
static ck_cpu_kernels avx512bf16_kernels; /* avx512 plus the bf16 fast path */
static ck_cpu_kernels amx_kernels;        /* avx512bf16 with the bf16 fast path on AMX tiles */
#endif

const ck_cpu_kernels *ck_cpu_kernels_ref(void) {
    ck_cpu_kernels_all();
    return &ref_kernels;
}

static const ck_cpu_kernels *all_sets[6]; /* best first, NULL-terminated */
/* "AuthenticAMD": CPUID leaf 0's EBX, EDX, ECX. */
static int amd, stream_override = -1;
static pthread_once_t vendor_once = PTHREAD_ONCE_INIT;
static void read_vendor(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    amd = __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;
#endif
}
int ck_cpu_stream_decode(void) {
    pthread_once(&vendor_once, read_vendor);
    int o = __atomic_load_n(&stream_override, __ATOMIC_RELAXED);
    return o >= 0 ? o : amd;
}
void ck_cpu_stream_decode_set(int on) { __atomic_store_n(&stream_override, on < 0 ? -1 : on != 0, __ATOMIC_RELAXED); }

static const ck_cpu_kernels *picked;
static pthread_once_t pick_once = PTHREAD_ONCE_INIT;

/* The tables' matmul rows (their kernels live in other files, so they are filled here once). */
static void fill(void) {
    memcpy(ref_kernels.mm, ck_mm_ref_exact, sizeof ref_kernels.mm);
    ref_kernels.mm_fast[CK_BF16] = ck_mm_ref_bf16_fast;
#if defined(__x86_64__)
    memcpy(avx2_kernels.mm, ck_mm_avx2, sizeof avx2_kernels.mm);
    memcpy(avx512_kernels.mm, ck_mm_avx512, sizeof avx512_kernels.mm);
    if (ck_cpu_has_vnni()) {
        memcpy(avx512_kernels.qdot, vnni_qdot.qdot, sizeof avx512_kernels.qdot);
        memcpy(avx512_kernels.qdot4, vnni_qdot.qdot4, sizeof avx512_kernels.qdot4);
        memcpy(avx512_kernels.qgemv, vnni_qdot.qgemv, sizeof avx512_kernels.qgemv);
        memcpy(avx512_kernels.quantize_act, vnni_qdot.quantize_act, sizeof avx512_kernels.quantize_act);
        avx512_kernels.qmatmul[CK_Q8_0] = avx512_kernels.qmatmul[CK_Q4_0] = ck_qmatmul_q32_vnni;
        avx512_kernels.qmatmul[CK_Q4_K] = avx512_kernels.qmatmul[CK_Q5_K] = ck_qmatmul_k_vnni;
        avx512_kernels.qmatmul[CK_Q6_K] = ck_qmatmul_q6_k_vnni;
    }
    avx512bf16_kernels = avx512_kernels;
    avx512bf16_kernels.name = "avx512bf16";
    avx512bf16_kernels.mm_fast[CK_BF16] = ck_mm_avx512bf16_fast;
    amx_kernels = avx512bf16_kernels;
    amx_kernels.name = "amx";
    amx_kernels.mm_fast[CK_BF16] = ck_mm_amx_bf16_fast;
    /* Quantized prefill stays on the AVX512-VNNI kernels: on a 16-core Xeon they were 1.3x faster than
       an AMX-INT8 Q8_0 kernel at 16 threads and as fast at 4 (that kernel combined each 32-value block's
       tile of sums in float through memory, which the exactness contract asks per block) */
#endif
}

static void pick(void) {
    size_t n = 0;
    fill();
#if defined(__x86_64__)
    if (ck_cpu_has_avx2()) {
        if (ck_cpu_has_amx()) all_sets[n++] = &amx_kernels;
        if (ck_cpu_has_avx512bf16()) all_sets[n++] = &avx512bf16_kernels;
        if (ck_cpu_has_avx512()) all_sets[n++] = &avx512_kernels;
        all_sets[n++] = &avx2_kernels;
    }
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

const ck_mm_kernel *ck_cpu_mm_kernel(const ck_cpu_kernels *k, ck_dtype dt, int exact) {
    if ((unsigned)dt >= CK_DTYPE_COUNT) return NULL;
    if (!exact && k->mm_fast[dt].gemm) return &k->mm_fast[dt];
    return k->mm[dt].gemm ? &k->mm[dt] : NULL;
}

void *ck_scratch_get(ck_scratch *s, size_t bytes) {
    if (bytes > s->cap) {
        void *p = NULL;
        if (posix_memalign(&p, 64, bytes) != 0) return NULL;
        free(s->p);
        s->p = p;
        s->cap = bytes;
    }
    return s->p;
}
