/* kernels.h — the CPU backend's kernel table, chosen once at start-up from the CPU's features (the scalar
 * reference, or ISA-specific versions that live in their own files and are tested against the reference).
 * CAKE_CPU_KERNELS=ref|avx2|avx512|avx512bf16|amx picks one (when the CPU has it).
 *
 * Block-quantized weights (tensor/quant.h) take their own path: qdot / qdot4 / qgemv per dtype and a
 * SIMD activation quantizer (quant_*.c; the AVX-512 sets use AVX512-VNNI where the CPU has it, else the
 * AVX2 kernels), driven by ck_cpu_matmul_quant(_n), equal to the dtype's scalar reference bit for bit
 * and batch-invariant.
 *
 * The matmul goes through one ck_mm_kernel per weight dtype: an optional activation packer (f32 rows to
 * the kernel's activation format: bf16 for the AVX512_BF16 path, quantized blocks for quantized weight
 * types) and a block GEMM over packed rows. Each set has an exact table (f32 activations, f32
 * accumulation) and may have a fast table (e.g. activations rounded to bf16 for bf16 weights); which one
 * runs is a process-wide choice (ck_cpu_exact), never a function of the batch size.
 *
 * Batch invariance (the contract every gemm keeps): the value of output (t, j) is the same bits whatever
 * T, whatever the number of weight rows in the call and wherever row t and weight row j sit in them; it
 * depends only on activation row t, weight row j, n and bias[j]. The SIMD kernels keep it by giving
 * every output one accumulator with one lane layout, one k order, one tail treatment and one horizontal
 * reduction, whichever register tile it is computed in. */
#ifndef CK_BACKEND_CPU_KERNELS_H
#define CK_BACKEND_CPU_KERNELS_H

#include "backend/cpu/ref.h"
#include "tensor/quant.h"

/* sum_i x[i] * w[i] with w[n] in the table entry's dtype (one row; attention uses the f32 one) */
typedef float (*ck_dot_fn)(const float *x, const void *w, size_t n);

/* y[i] += a * x[i] for i < n (f32) */
typedef void (*ck_axpy_fn)(float *y, float a, const float *x, size_t n);
/* y[i] += a * x[i] for i < n, x in f16 (the value rows of a 16-bit KV cache) */
typedef void (*ck_axpy16_fn)(float *y, float a, const uint16_t *x, size_t n);
/* dst[i] = ck_f32_to_f16_sat(x[i]) for i < n, bit for bit but for a NaN's payload (stores into a 16-bit
 * KV cache) */
typedef void (*ck_to_f16_fn)(uint16_t *dst, const float *x, size_t n);
/* out[i] = act(gate[i]) * up[i] for i < n (ck_glu_ref's function) within a few ulp of the exact value: SiLU
 * and GELU-tanh are both g * u / (1 + exp(-z)) (z = g; z = 2 sqrt(2/pi) (g + 0.044715 g^3)), with exp from
 * a polynomial (vexp.h; GELU-tanh this way avoids the cancellation of 1 + tanh near -1). Each
 * element's bits depend only on its own inputs, never on n or its index (tails run the vector code), so
 * a split of the elements between threads or batches changes nothing. out may equal gate or up. */
typedef void (*ck_glu_fn)(float *out, const float *gate, const float *up, size_t n, ck_act act);
/* One row of ck_rmsnorm_ref: the sum of squares in double (in another order: the scale may differ from
 * the reference's in its last bit), then y[i] = x[i] * scale * w[i] (or 1 + w[i]) as there. y may equal x. */
typedef void (*ck_rmsnorm_fn)(float *y, const float *x, const float *w, size_t n, float eps, int one_plus);

/* Block-quantized weights: the dot product of weight row w[n] (in the entry's dtype) with activation row
 * xq (x[n] quantized by that dtype's traits->quantize_act); equal bit for bit to traits->qdot. */
typedef float (*ck_qdot_fn)(const void *w, const void *xq, size_t n);
/* out[r] = qdot(w, xq + r * stride bytes, n) for r < 4, bit for bit (one weight row read for four
 * activation rows: prefill). */
typedef void (*ck_qdot4_fn)(const void *w, const void *xq, size_t stride, size_t n, float *out);
/* y[j] = qdot(w + j * ws bytes, xq, n) for j < rows, bit for bit (many weight rows read for one
 * activation row: decode). */
typedef void (*ck_qgemv_fn)(float *y, const void *w, size_t ws, const void *xq, size_t n, size_t rows);

/* A whole matmul y[T, n_out] = x[T, n_in] . W^T (+ bias) for a block-quantized W, equal bit for bit to
 * the qdot path (ck_cpu_matmul_quant uses it from CK_QMATMUL_MIN_T rows on); -1 when it cannot run
 * (scratch memory), then the qdot path runs instead. */
typedef int (*ck_qmatmul_fn)(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T, int n_threads);
#define CK_QMATMUL_MIN_T 8

typedef struct ck_mm_kernel {
    /* Bytes of one packed activation row of n elements (0 when n does not suit the format). NULL when
     * the kernel reads f32 rows as they are (then a row is n floats). */
    size_t (*act_row_bytes)(size_t n);
    /* dst[act_row_bytes(n)] = x[n] in the kernel's activation format (with any padding it needs). */
    void (*pack)(void *dst, const float *x, size_t n);
    /* y[t * ys + j] = dot(a_t, w_j) (+ bias[j] when bias is not NULL) for t < T, j < rows, where a_t is
     * activation row t (a + t * as bytes, packed or f32) and w_j weight row j (w + j * ws bytes), both
     * of n elements. Batch-invariant (see above). */
    void (*gemm)(float *y, size_t ys, const void *a, size_t as, const void *w, size_t ws, size_t n, size_t T,
                 size_t rows, const float *bias);
    /* A kernel whose activation format spans the whole batch (tokens interleaved, e.g. AMX's B tiles)
     * has these instead of act_row_bytes / pack: the bytes of T packed rows of n elements, and the packer
     * of rows [t0, t1) of x[T, n] into it (t0 a multiple of 16; t1 one too, or T, which also writes the
     * padding past T). Its gemm then gets the packed batch at a, as unused. */
    size_t (*act_batch_bytes)(size_t n, size_t T);
    void (*pack_batch)(void *dst, const float *x, size_t n, size_t T, size_t t0, size_t t1);
} ck_mm_kernel;

/* The vector gemms (gemm_avx2.c, gemm_avx512.c, gemm_avx512bf16.c) are register tiles over one walk. A
 * tile computes y[r * ys + c] = dot(a_r, w_c) (+ bias[c]) for its token rows r and weight rows c: a_r at a +
 * r * as bytes (packed or f32, as its kernel's), w_c at w + c * ws bytes, n elements; pf (or NULL): the
 * weight rows to prefetch, line for line beside its own loads. */
/* 1 on CPUs whose hardware prefetchers follow one sequential stream per core best (AMD's): decode (fewer
 * token rows than a full tile) then reads the weight rows one after the other with the 1 x 1 tile and no
 * software prefetch. Measured on an AMD EPYC (Zen 4 class) streaming Qwen3-0.6B's bf16 weights on 2 cores:
 * 1.86x the 1 x 6 tile whose next-tile prefetches pay on Intel CPUs (+20 % there over their hardware
 * prefetchers). Every output is the same one-accumulator sum in any tile, so the bits do not change. */
int ck_cpu_stream_decode(void);
/* Overrides it (0 or 1; tests run both ways on any CPU); -1 goes back to the CPU's vendor. */
void ck_cpu_stream_decode_set(int on);
typedef void (*ck_tile_fn)(float *y, size_t ys, const uint8_t *a, size_t as, const uint8_t *w, size_t ws, size_t n,
                           const float *bias, const uint8_t *pf);
typedef struct ck_tile_set {
    size_t R, C;                    /* the full tile: R token rows x C weight rows */
    ck_tile_fn full, row, col, one; /* R x C, 1 x C, R x 1, 1 x 1 */
} ck_tile_set;
/* ck_mm_kernel.gemm over a tile set (gemm.c): weight rows in blocks of C outer (they stay in L1), token rows
 * in tiles of R inner (the call's activations stay in L2), leftover rows through the edge tiles. With fewer
 * than R token rows (decode: each weight byte used once, straight from memory) the first 1 x C tile of a
 * block prefetches the next block's rows when a whole one follows. */
void ck_tile_gemm(const ck_tile_set *s, float *y, size_t ys, const void *a, size_t as, const void *w, size_t ws,
                  size_t n, size_t T, size_t rows, const float *bias);

typedef struct ck_cpu_kernels {
    const char *name;               /* "ref", "avx2", "avx512", "avx512bf16", "amx" */
    ck_dot_fn dot[CK_DTYPE_COUNT];  /* one-row dot products (attention, tests) */
    ck_mm_kernel mm[CK_DTYPE_COUNT];      /* exact matmul per weight dtype (gemm NULL: none) */
    ck_mm_kernel mm_fast[CK_DTYPE_COUNT]; /* fast matmul where the set has one (gemm NULL: use mm) */
    ck_axpy_fn axpy;
    ck_axpy16_fn axpy_f16;
    ck_to_f16_fn to_f16;
    ck_glu_fn glu;
    ck_rmsnorm_fn rmsnorm;
    ck_qdot_fn qdot[CK_DTYPE_COUNT];   /* block-quantized dtypes only (quant_*.c) */
    ck_qdot4_fn qdot4[CK_DTYPE_COUNT]; /* where a four-row kernel exists, else NULL */
    /* The state of query row t over keys [j0, j1) (one segment, see CK_ATTN_SEG) for every query head of
     * KV head kvh, for head dims that are multiples of 16 up to CK_ATTN_MAX_HD, or NULL (then
     * ck_attention_seg's generic loop over dot/axpy runs). */
    void (*attn_seg)(const ck_attn_args *a, size_t t, size_t kvh, size_t j0, size_t j1, float *m, float *l, float *acc);
    /* The attention of query rows [t0, t1) walking the keys together (each row's bits as
     * ck_attention_group's alone), with work memory (ck_attn_work_floats); returns -1 where it does not
     * take these rows (then they go one by one). NULL: none. */
    int (*attn_tokens)(const ck_attn_args *a, size_t t0, size_t t1, size_t kvh, float *work);
    ck_qmatmul_fn qmatmul[CK_DTYPE_COUNT]; /* a whole quantized matmul for T >= CK_QMATMUL_MIN_T, or NULL */
    ck_qgemv_fn qgemv[CK_DTYPE_COUNT]; /* where a many-row decode kernel exists, else NULL */
    /* activation quantization per ck_act_format, equal to the traits' quantize_act byte for byte (NULL:
     * use the traits') */
    void (*quantize_act[CK_ACT_Q8K + 1])(void *dst, const float *x, size_t n);
} ck_cpu_kernels;

#define CK_ATTN_MAX_HD 256
#define CK_ATTN_TILE_ROWS 128 /* query rows (tokens x heads of a group) an attn_tokens kernel walks together */

/* The kernels for this CPU (picked on the first call). */
const ck_cpu_kernels *ck_cpu_kernels_get(void);
/* The scalar reference kernels, whatever the CPU. */
const ck_cpu_kernels *ck_cpu_kernels_ref(void);
/* Every kernel set this CPU can run, best first, NULL-terminated (the reference is always last). */
const ck_cpu_kernels *const *ck_cpu_kernels_all(void);

/* A scratch buffer that only grows, 64-byte aligned: each user keeps one per thread (_Thread_local) or per
 * backend instance, so a decode step allocates nothing once the first has run. Returns NULL when it cannot
 * grow. */
typedef struct ck_scratch {
    uint8_t *p;
    size_t cap;
} ck_scratch;
void *ck_scratch_get(ck_scratch *s, size_t bytes);

/* The matmul kernel of set k for dtype dt: the fast one unless exact (or the set has none), else NULL
 * when the set has no kernel for dt. */
const ck_mm_kernel *ck_cpu_mm_kernel(const ck_cpu_kernels *k, ck_dtype dt, int exact);

/* y[T, n_out] = x[T, n_in] . W^T (+ bias) with kernel mk, threaded over weight-row panels; packed
 * activations go to a scratch buffer of the calling thread. Returns -1 when that buffer cannot grow. */
int ck_cpu_gemm_run(const ck_mm_kernel *mk, float *y, const float *x, const ck_tensor *W, const float *bias,
                    size_t T, int n_threads);

/* For i < n: y[i] = x . W[i]^T (+ bias[i]) with kernel mk for all of them (every W[i] with x's n_in and
 * a dtype mk serves), in one parallel region: the activations are packed once and the rows of all the
 * weights are split evenly over the threads. Same results as n ck_cpu_gemm_run calls. */
int ck_cpu_gemm_run_n(const ck_mm_kernel *mk, size_t n, float *const *y, const float *x, const ck_tensor *const *W,
                      const float *const *bias, size_t T, int n_threads);

/* Reference matmul kernels (gemm_ref.c): the exact one for f32/f16/bf16 weights, and the bf16
 * fast path's definition (activations rounded to bf16 to nearest even, subnormals flushed to zero, f32
 * accumulation of the exact products in index order). */
extern const ck_mm_kernel ck_mm_ref_exact[CK_DTYPE_COUNT];
extern const ck_mm_kernel ck_mm_ref_bf16_fast;
uint16_t ck_f32_to_bf16_rne(float f);

/* x86-64 only: AVX2 + FMA + F16C versions (dot_avx2.c, gemm_avx2.c) and whether this CPU can run them. */
float ck_dot_f32_avx2(const float *x, const void *w, size_t n);
float ck_dot_bf16_avx2(const float *x, const void *w, size_t n);
float ck_dot_f16_avx2(const float *x, const void *w, size_t n);
void ck_axpy_avx2(float *y, float a, const float *x, size_t n);
void ck_axpy_f16_avx2(float *y, float a, const uint16_t *x, size_t n);
void ck_to_f16_avx2(uint16_t *dst, const float *x, size_t n);
void ck_glu_avx2(float *out, const float *gate, const float *up, size_t n, ck_act act); /* rowops_avx2.c */
void ck_rmsnorm_avx2(float *y, const float *x, const float *w, size_t n, float eps, int one_plus);
extern const ck_mm_kernel ck_mm_avx2[CK_DTYPE_COUNT];
int ck_cpu_has_avx2(void);

/* x86-64 only: AVX-512 F/BW/VL versions (dot_avx512.c, gemm_avx512.c). */
float ck_dot_f32_avx512(const float *x, const void *w, size_t n);
float ck_dot_bf16_avx512(const float *x, const void *w, size_t n);
float ck_dot_f16_avx512(const float *x, const void *w, size_t n);
void ck_axpy_avx512(float *y, float a, const float *x, size_t n);
void ck_axpy_f16_avx512(float *y, float a, const uint16_t *x, size_t n);
void ck_to_f16_avx512(uint16_t *dst, const float *x, size_t n);
void ck_glu_avx512(float *out, const float *gate, const float *up, size_t n, ck_act act); /* rowops_avx512.c */
void ck_rmsnorm_avx512(float *y, const float *x, const float *w, size_t n, float eps, int one_plus);
extern const ck_mm_kernel ck_mm_avx512[CK_DTYPE_COUNT];
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
    void ck_qdot4_q6_k_##isa(const void *w, const void *xq, size_t stride, size_t n, float *out); \
    void ck_qgemv_q8_0_##isa(float *y, const void *w, size_t ws, const void *xq, size_t n, size_t rows); \
    void ck_qgemv_q4_0_##isa(float *y, const void *w, size_t ws, const void *xq, size_t n, size_t rows); \
    void ck_qgemv_q4_k_##isa(float *y, const void *w, size_t ws, const void *xq, size_t n, size_t rows); \
    void ck_qgemv_q5_k_##isa(float *y, const void *w, size_t ws, const void *xq, size_t n, size_t rows); \
    void ck_qgemv_q6_k_##isa(float *y, const void *w, size_t ws, const void *xq, size_t n, size_t rows); \
    void ck_quantize_q8_##isa(void *dst, const float *x, size_t n);                                         \
    void ck_quantize_q8k_##isa(void *dst, const float *x, size_t n);
CK_QDOT_DECL(avx2)
CK_QDOT_DECL(vnni)
int ck_cpu_has_vnni(void);

/* y[T, n_out] = x[T, n_in] . W^T (+ bias) for a block-quantized W (quant_ref.c): each row of x is
 * quantized once into W's activation format, then every output is k->qdot of a weight row with it, so
 * a row's result never depends on the other rows (batch-invariant). -1 with err when W's dtype has no
 * quantized kernel in k or scratch memory runs out. */
int ck_cpu_matmul_quant(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T,
                        const ck_cpu_kernels *k, int n_threads, char *err, size_t errlen);
/* For i < n (at most 8): y[i] = x . W[i]^T (+ bias[i]), every W[i] block-quantized with x's n_in and one
 * activation format: x is quantized once and the rows of all the weights are split over the threads
 * by their bytes in one parallel region. Same results as n ck_cpu_matmul_quant calls. */
int ck_cpu_matmul_quant_n(size_t n, float *const *y, const float *x, const ck_tensor *const *W,
                          const float *const *bias, size_t T, const ck_cpu_kernels *k, int n_threads, char *err,
                          size_t errlen);

/* x86-64 only: AVX512_BF16 (vdpbf16ps) bf16 fast path (gemm_avx512bf16.c). */
extern const ck_mm_kernel ck_mm_avx512bf16_fast;
int ck_cpu_has_avx512bf16(void);

/* x86-64 only: AVX-512 attention in blocks of 16 keys (attention_avx512.c). */
void ck_attention_seg_avx512(const ck_attn_args *a, size_t t, size_t kvh, size_t j0, size_t j1, float *m, float *l,
                             float *acc);
int ck_attention_tokens_avx512(const ck_attn_args *a, size_t t0, size_t t1, size_t kvh, float *work);
/* x86-64 only: AMX (amx.c: CPU, OS and process permission; gemm_amx.c: kernels). The bf16 fast path
 * with TDPBF16PS, for every T (decode included), batch-invariant; tested against ck_mm_ref_bf16_fast
 * within a tolerance (its rounding inside a 32-element chunk is the hardware's). */
extern const ck_mm_kernel ck_mm_amx_bf16_fast;
int ck_cpu_has_amx(void);
/* Configures this thread's tiles 0-7 (palette 1): rows[i] rows of colsb[i] bytes each. */
void ck_amx_tiles_load(const uint8_t rows[8], const uint16_t colsb[8]);
/* AVX512-VNNI Q8_0 / Q4_0 matmul for prefill (quant_gemm_vnni.c), a ck_qmatmul_fn. */
int ck_qmatmul_q32_vnni(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T, int n_threads);
/* AVX512-VNNI Q4_K / Q5_K matmul for prefill (quant_gemm_vnni_k.c), a ck_qmatmul_fn. */
int ck_qmatmul_k_vnni(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T, int n_threads);
/* AVX512-VNNI Q6_K matmul for prefill (quant_gemm_vnni_k.c), a ck_qmatmul_fn. */
int ck_qmatmul_q6_k_vnni(float *y, const float *x, const ck_tensor *W, const float *bias, size_t T, int n_threads);

/* The state of segment s of query row t for every query head g of KV head kvh (m[g], l[g], acc [g *
 * head_dim]), from a fresh one, with the given kernel set. */
void ck_attention_seg(const ck_attn_args *a, size_t t, size_t kvh, size_t s, float *m, float *l, float *acc,
                      const ck_cpu_kernels *k);
/* Attention of query row t for every query head that shares KV head kvh (grouped-query attention reads
 * each cached key/value once for the whole group), with the given kernel set: its segments one after the
 * other. Same contract as ck_attention_row_ref for each of those heads. */
void ck_attention_group(const ck_attn_args *a, size_t t, size_t kvh, const ck_cpu_kernels *k, float *work);
/* ck_attention_group for query rows [t0, t1), through the kernel set's attn_tokens where it takes them
 * (the same bits as row by row). */
void ck_attention_tokens(const ck_attn_args *a, size_t t0, size_t t1, size_t kvh, const ck_cpu_kernels *k,
                         float *work);
/* The floats of work memory ck_attention_group and ck_attention_tokens take for calls with these
 * arguments (each thread its own). */
size_t ck_attn_work_floats(const ck_attn_args *a);

#endif
