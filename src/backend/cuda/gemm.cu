/* gemm.cu — prefill matmuls (T > the GEMV limit) through cuBLAS: y[T, n_out] = x[T, n_in] . W^T with W in
 * its stored dtype and f32 accumulation (CUBLAS_COMPUTE_32F, no TF32).
 * Tensor cores take both operands in one 16-bit type. The fast path (the process-wide choice of
 * ck_cpu_exact(), as on the CPU: the default unless CAKE_EXACT / --exact) rounds the f32 activations to
 * the weight's type, as HF's bf16 inference and llama.cpp do: 2^-9 relative per product. The exact path
 * splits x into hi = round(x) and lo = round(x - hi), both in the weight's type, and y = W.hi + W.lo (two
 * GEMMs, the second with beta = 1): what is left out is about 2^-16 |x| per product, as close as f32
 * accumulation gets. f16 parts are clamped to the f16 range. f32 weights multiply f32 activations as they
 * are. Q8_0, Q4_0 and K-quant weights (fast path only; the exact path keeps the integer GEMVs of gemv.cu
 * and quant.cu, which follow the CPU's quantized dot products) are first dequantized into an f16 scratch
 * copy (the CPU's dequantized value, rounded to f16 and clamped to its range: 2^-12 relative), then
 * multiply f16 activations. Row-major y = x W^T is the
 * column-major product C[n_out, T] = op(A) B with A = W (lda n_in, transposed), B = x (ldb n_in), C = y
 * (ldc n_out). */
#include "backend/cuda/cuda_internal.h"

#include <cuda_bf16.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define CK_STR_(x) #x
#define CK_STR(x) CK_STR_(x)

static struct {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSetWorkspace_v2) set_workspace;
    cublasStatus_t (*gemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                           const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                           cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    char why[200];
} blas;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_load(void) {
#ifdef CK_CUBLAS_DIR /* the toolkit's library folder, for machines whose loader path lacks it */
    const char *names[] = {"libcublas.so." CK_STR(CUBLAS_VER_MAJOR), "libcublas.so",
                           CK_CUBLAS_DIR "/libcublas.so." CK_STR(CUBLAS_VER_MAJOR)};
#else
    const char *names[] = {"libcublas.so." CK_STR(CUBLAS_VER_MAJOR), "libcublas.so"};
#endif
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(blas.why, sizeof blas.why, "cannot load %s: %s", names[0], dlerror());
        return;
    }
    blas.create = (decltype(blas.create))dlsym(h, "cublasCreate_v2");
    blas.destroy = (decltype(blas.destroy))dlsym(h, "cublasDestroy_v2");
    blas.set_stream = (decltype(blas.set_stream))dlsym(h, "cublasSetStream_v2");
    blas.set_workspace = (decltype(blas.set_workspace))dlsym(h, "cublasSetWorkspace_v2");
    blas.gemm = (decltype(blas.gemm))dlsym(h, "cublasGemmEx");
    if (!blas.create || !blas.destroy || !blas.set_stream || !blas.set_workspace || !blas.gemm) {
        snprintf(blas.why, sizeof blas.why, "%s lacks the functions cake needs", names[0]);
        blas.create = NULL;
    }
}

int ck_cuda_blas_init(ck_backend *b, char *err, size_t errlen) {
    ck_cuda *c = ck_cu(b);
    pthread_once(&blas_once, blas_load);
    const size_t ws_bytes = 32u << 20;
    if (!blas.create) {
        snprintf(err, errlen, "cuBLAS: %s", blas.why);
        return -1;
    }
    if (blas.create(&c->blas) != CUBLAS_STATUS_SUCCESS || blas.set_stream(c->blas, c->st) != CUBLAS_STATUS_SUCCESS ||
        cudaMalloc(&c->blas_ws, ws_bytes) != cudaSuccess ||
        blas.set_workspace(c->blas, c->blas_ws, ws_bytes) != CUBLAS_STATUS_SUCCESS) {
        cudaGetLastError();
        snprintf(err, errlen, "CUDA device %d: cuBLAS could not start", c->dev);
        return -1;
    }
    return 0;
}

void ck_cuda_blas_free(ck_backend *b) {
    ck_cuda *c = ck_cu(b);
    if (c->blas && blas.destroy) blas.destroy(c->blas);
    c->blas = NULL;
}

/* hi[i] = bf16(x[i]), and when lo: lo[i] = bf16(x[i] - hi[i]) */
static __global__ void split_bf16_kernel(__nv_bfloat16 *hi, __nv_bfloat16 *lo, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = src[i];
        __nv_bfloat16 h = __float2bfloat16_rn(x);
        hi[i] = h;
        if (lo) lo[i] = __float2bfloat16_rn(x - __bfloat162float(h));
    }
}

static __global__ void split_f16_kernel(__half *hi, __half *lo, const float *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = ck_clamp_f16(src[i]);
        __half h = __float2half_rn(x);
        hi[i] = h;
        if (lo) lo[i] = __float2half_rn(x - __half2float(h));
    }
}

/* Q8_0 rows in the device layout (gemv.cu: quants [n_in], then f16 scales, the row `stride` bytes) to f16
 * rows [n_out, n_in]: scale * quant in f32 (exact), rounded to f16, clamped to its range. */
static __global__ void dequant_q8_f16_kernel(__half *out, const char *W, size_t stride, size_t n_in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / n_in, j = i % n_in;
        const char *row = W + r * stride;
        float d = __half2float(__ushort_as_half(((const unsigned short *)(row + n_in))[j / 32]));
        out[i] = __float2half_rn(ck_clamp_f16(__fmul_rn(d, (float)(int8_t)row[j])));
    }
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
    const void *B = x, *B2 = NULL;
    cudaDataType_t ty = CUDA_R_32F;
    ck_dtype dt = W->dtype;
    const void *Wd = W->data;
    int exact = ck_cpu_exact();
    if (dt == CK_Q8_0 && !exact) { /* dequantized to f16 first (the caller sends exact Q8_0 to the GEMV) */
        size_t nw = n_out * n_in, stride = ck_cuda_q8_stride(n_in);
        __half *wh = (__half *)ck_cuda_scratch(b, &c->wdq, &c->wdq_bytes, nw * 2);
        if (!wh) return -1;
        const char *q = (const char *)W->data;
        ck_cuda_run(b, "gemm dequant", [=](cudaStream_t st) {
            dequant_q8_f16_kernel<<<ck_cuda_blocks(nw, 256), 256, 0, st>>>(wh, q, stride, n_in, nw);
            ck_cuda_launched(b, "matmul (dequantizing q8_0)");
        }, wh, q, stride, n_in, nw);
        Wd = wh, dt = CK_F16;
    } else if (ck_cuda_is_quant(dt) && !exact) { /* the same for Q4_0 and the K-quants (quant.cu) */
        __half *wh = (__half *)ck_cuda_scratch(b, &c->wdq, &c->wdq_bytes, n_out * n_in * 2);
        if (!wh) return -1;
        ck_dtype qt = dt;
        const void *q = W->data;
        ck_cuda_run(b, "gemm dequant", [=](cudaStream_t st) {
            ck_cuda_dequant_f16(st, wh, qt, q, n_out, n_in);
            ck_cuda_launched(b, "matmul (dequantizing)");
        }, wh, q, (int)qt, n_out, n_in);
        Wd = wh, dt = CK_F16;
    }
    if (dt == CK_BF16 || dt == CK_F16) {
        char *h = (char *)ck_cuda_scratch(b, &c->half, &c->half_bytes, n * 4);
        if (!h) return -1;
        B = h, B2 = exact ? h + n * 2 : NULL;
        ty = dt == CK_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    } else if (dt != CK_F32) {
        ck_backend_fail(b, "matmul: no CUDA kernel for dtype %s", ck_dtype_name(dt));
        return -1;
    }
    cublasHandle_t handle = c->blas;
    ck_cuda_run(b, "gemm", [=](cudaStream_t st) {
        if (dt == CK_BF16)
            split_bf16_kernel<<<ck_cuda_blocks(n, 256), 256, 0, st>>>((__nv_bfloat16 *)B, (__nv_bfloat16 *)B2, x, n);
        else if (dt == CK_F16)
            split_f16_kernel<<<ck_cuda_blocks(n, 256), 256, 0, st>>>((__half *)B, (__half *)B2, x, n);
        if (ty != CUDA_R_32F) ck_cuda_launched(b, "matmul (rounding activations)");
        const float one = 1.0f, zero = 0.0f;
        for (int part = 0; part < (B2 ? 2 : 1); part++) {
            cublasStatus_t s = blas.gemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, (int)n_out, (int)T, (int)n_in, &one, Wd, ty,
                                            (int)n_in, part ? B2 : B, ty, (int)n_in, part ? &one : &zero, y, CUDA_R_32F,
                                            (int)n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            if (s != CUBLAS_STATUS_SUCCESS) {
                ck_backend_fail(b, "matmul: cuBLAS gemm [%zu x %zu x %zu]: %s", T, n_out, n_in, blas_str(s));
                return;
            }
        }
    }, y, x, Wd, B, B2, n, n_out, n_in, T, (int)dt, (int)ty, handle);
    return 0;
}
