/* gemm.cu — prefill matmuls (T > the GEMV limit) through cuBLAS: y[T, n_out] = x[T, n_in] . W^T with W in
 * its stored dtype and f32 accumulation (CUBLAS_COMPUTE_32F, no TF32). For bf16/f16 weights the f32
 * activations are rounded to the weight's type first (tensor cores take both operands in one type):
 * that rounding (2^-9 relative for bf16) is the GPU path's documented precision loss. f16 activations are
 * clamped to the f16 range. f32 weights multiply f32 activations as they are.
 * Row-major y = x W^T is column-major C[n_out, T] = op(A)=W^T-as-stored ... i.e. gemm(T, N) with A = W
 * (lda n_in), B = x (ldb n_in), C = y (ldc n_out). */
#include "backend/cuda/cuda_internal.h"

#include <cuda_bf16.h>

static __global__ void to_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

static __global__ void to_f16_kernel(__half *dst, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2half_rn(fminf(fmaxf(src[i], -65504.0f), 65504.0f));
}

static const char *blas_str(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "error";
    }
}

int ck_cuda_gemm(ck_backend *b, float *y, const float *x, const ck_tensor *W, size_t T) {
    ck_cuda *c = ck_cu(b);
    size_t n_out = W->shape[0], n_in = W->shape[1], n = T * n_in;
    if (T > INT32_MAX / 2) {
        ck_backend_fail(b, "matmul: %zu rows is too many", T);
        return -1;
    }
    const void *B = x;
    cudaDataType_t ty = CUDA_R_32F;
    if (W->dtype == CK_BF16 || W->dtype == CK_F16) {
        void *h = ck_cuda_scratch(b, &c->half, &c->half_bytes, n * 2);
        if (!h) return -1;
        if (W->dtype == CK_BF16) {
            to_bf16_kernel<<<ck_cuda_blocks(n, 256), 256, 0, c->st>>>((__nv_bfloat16 *)h, x, n);
            ty = CUDA_R_16BF;
        } else {
            to_f16_kernel<<<ck_cuda_blocks(n, 256), 256, 0, c->st>>>((__half *)h, x, n);
            ty = CUDA_R_16F;
        }
        ck_cuda_launched(b, "matmul (rounding activations)");
        B = h;
    } else if (W->dtype != CK_F32) {
        ck_backend_fail(b, "matmul: no CUDA kernel for dtype %s", ck_dtype_name(W->dtype));
        return -1;
    }
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t s = cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n_out, (int)T, (int)n_in, &one, W->data, ty,
                                    (int)n_in, B, ty, (int)n_in, &zero, y, CUDA_R_32F, (int)n_out, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) {
        ck_backend_fail(b, "matmul: cuBLAS gemm [%zu x %zu x %zu]: %s", T, n_out, n_in, blas_str(s));
        return -1;
    }
    return 0;
}
