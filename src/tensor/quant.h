/* quant.h — block-quantized weight formats, bit for bit the layouts of ggml (llama.cpp's GGUF files):
 * Q8_0 and Q4_0 (blocks of 32), Q4_K, Q5_K and Q6_K (super-blocks of 256); the activation formats they
 * are multiplied with (an activation row is quantized once per matmul: "Q8" blocks of 32 for Q8_0/Q4_0,
 * "Q8K" blocks of 256 with sums of each 16 for the K-quants); and the scalar reference of everything:
 * dequantization, weight quantization (used by the GGUF converter), activation quantization and the dot
 * product of a weight row with a quantized activation row.
 *
 * Exactness contract (every SIMD kernel is tested to equal the reference bit for bit): a dot product is
 * computed as integer sums per block (exact in int32), then combined in float, per block b:
 *   f_b = (wd_b * xd_b) * (float)isum_b                      (Q8_0, Q4_0, Q6_K)
 *   f_b = (xd_b * wd_b) * (float)isum_b - (xd_b * wmin_b) * (float)msum_b   (Q4_K, Q5_K)
 *   acc[b % CK_QLANES] += f_b;     result = ck_qlanes_sum(acc)
 * with no fused multiply-add (the quant files are compiled with -ffp-contract=off).
 *
 * Activation row layouts for n elements in nb blocks (all bytes of a row contiguous):
 *   Q8:  float d[nb]; int8 q[nb * 32]                              CK_Q8_ROW_BYTES(nb)
 *   Q8K: float d[nb]; int8 q[nb * 256]; int16 bsum[nb * 16]        CK_Q8K_ROW_BYTES(nb)
 * with q = round-to-nearest-even(x / d) in [-127, 127] and d = max|x| / 127 of the block. */
#ifndef CK_TENSOR_QUANT_H
#define CK_TENSOR_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CK_QK 32    /* elements of a Q8_0 / Q4_0 block */
#define CK_QKK 256  /* elements of a K-quant super-block */
#define CK_QLANES 8 /* float accumulators of a quantized dot product */

typedef struct { uint16_t d; int8_t qs[32]; } ck_block_q8_0;                                /* 34 bytes */
typedef struct { uint16_t d; uint8_t qs[16]; } ck_block_q4_0;                               /* 18 bytes */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } ck_block_q4_k;    /* 144 bytes */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } ck_block_q5_k; /* 176 */
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } ck_block_q6_k; /* 210 bytes */

#define CK_Q8_ROW_BYTES(nb) ((nb) * (4 + 32))
#define CK_Q8K_ROW_BYTES(nb) ((nb) * (4 + 256 + 32))

/* The activation format a weight type is multiplied with. */
typedef enum { CK_ACT_Q8 = 1, CK_ACT_Q8K = 2 } ck_act_format;

/* The fixed reduction order of the lane accumulators. */
static inline float ck_qlanes_sum(const float a[CK_QLANES]) {
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block (ggml's get_scale_min_k4). */
static inline void ck_q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* f32 -> IEEE half, round to nearest even (overflow to inf, NaN kept). */
uint16_t ck_f32_to_f16(float f);
/* The same with finite values (and infinities) beyond f16's range clamped to +-65504: a 16-bit KV cache. */
uint16_t ck_f32_to_f16_sat(float f);

/* Activation quantization of one row x[n] (n a multiple of the block) into dst (layout above). */
void ck_quantize_q8(void *dst, const float *x, size_t n);
void ck_quantize_q8k(void *dst, const float *x, size_t n);

/* Weight quantization of one row x[n] (n a multiple of the block) into ggml blocks. */
void ck_quantize_q8_0(void *dst, const float *x, size_t n);
void ck_quantize_q4_0(void *dst, const float *x, size_t n);
void ck_quantize_q4_k(void *dst, const float *x, size_t n);
void ck_quantize_q5_k(void *dst, const float *x, size_t n);
void ck_quantize_q6_k(void *dst, const float *x, size_t n);

/* Dequantization of n elements (a multiple of the block). */
void ck_dequant_q8_0(float *dst, const void *src, size_t n);
void ck_dequant_q4_0(float *dst, const void *src, size_t n);
void ck_dequant_q4_k(float *dst, const void *src, size_t n);
void ck_dequant_q5_k(float *dst, const void *src, size_t n);
void ck_dequant_q6_k(float *dst, const void *src, size_t n);

/* Reference dot products of a weight row w[n] with an activation row xq (quantized from n elements in
 * the weight type's activation format), per the exactness contract above. */
float ck_qdot_q8_0_ref(const void *w, const void *xq, size_t n);
float ck_qdot_q4_0_ref(const void *w, const void *xq, size_t n);
float ck_qdot_q4_k_ref(const void *w, const void *xq, size_t n);
float ck_qdot_q5_k_ref(const void *w, const void *xq, size_t n);
float ck_qdot_q6_k_ref(const void *w, const void *xq, size_t n);

/* The integer sums of one block, shared by the references and the SIMD tails. */
int32_t ck_qsum_q8_0(const ck_block_q8_0 *w, const int8_t *x);
int32_t ck_qsum_q4_0(const ck_block_q4_0 *w, const int8_t *x);
/* K-quants: *isum = sum_j scale_j * (q . x over sub-block j); *msum = sum_j min_j * (sum of x over j). */
void ck_qsum_q4_k(const ck_block_q4_k *w, const int8_t *x, const int16_t *bsum, int32_t *isum, int32_t *msum);
void ck_qsum_q5_k(const ck_block_q5_k *w, const int8_t *x, const int16_t *bsum, int32_t *isum, int32_t *msum);
int32_t ck_qsum_q6_k(const ck_block_q6_k *w, const int8_t *x);

#endif
