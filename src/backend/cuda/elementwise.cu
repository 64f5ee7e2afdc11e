/* elementwise.cu — the small ops: RMSNorm (plain and gated), RoPE with its angles computed on the device
 * from positions and inverse frequencies, KV-cache row stores at device positions, GLU activations, row
 * gathers/scatters for MoE, zero/add, strided row copies, sigmoid gates and the Gated DeltaNet gates.
 * Each follows its contract in backend.h; the scalar references are the CPU backend's (ref.c / cpu.c).
 * Norms run one block per row (f32 sums); everything else is a grid-stride loop over elements. */
#include "backend/cuda/cuda_internal.h"

#define GRID(n) ck_cuda_blocks((n), 256), 256, 0, st
#define FOR_N(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static unsigned norm_threads(size_t n) { return n >= 1024 ? 512 : n >= 256 ? 256 : n > 64 ? 128 : 64; }

static __global__ void rmsnorm_kernel(float *y, const float *x, const float *w, size_t n, float eps, int one_plus) {
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float ss = 0.0f;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = ck_block_sum(ss, sh);
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * inv * (one_plus ? 1.0f + w[i] : w[i]);
}

void ck_cuda_rmsnorm(ck_backend *b, float *y, const float *x, const float *w, size_t rows, size_t n, float eps,
                     int one_plus) {
    if (b->failed || rows == 0) return;
    ck_cuda_run(b, "rmsnorm", [=](cudaStream_t st) {
        rmsnorm_kernel<<<(unsigned)rows, norm_threads(n), 0, st>>>(y, x, w, n, eps, one_plus);
        ck_cuda_launched(b, "rmsnorm");
    }, y, x, w, n, eps, one_plus, rows);
}

static __global__ void rmsnorm_gated_kernel(float *y, const float *x, const float *z, const float *w, size_t n,
                                            float eps) {
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * n, *zr = z + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float ss = 0.0f;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = ck_block_sum(ss, sh);
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        float zi = zr[i];
        yr[i] = xr[i] * inv * w[i] * (zi / (1.0f + expf(-zi)));
    }
}

void ck_cuda_rmsnorm_gated(ck_backend *b, float *y, const float *x, const float *z, const float *w, size_t rows,
                           size_t n, float eps) {
    if (b->failed || rows == 0) return;
    ck_cuda_run(b, "rmsnorm_gated", [=](cudaStream_t st) {
        rmsnorm_gated_kernel<<<(unsigned)rows, norm_threads(n), 0, st>>>(y, x, z, w, n, eps);
        ck_cuda_launched(b, "rmsnorm_gated");
    }, y, x, z, w, n, eps, rows);
}

/* One thread per (token, frequency): the angle pos * inv_freq in double, its cos/sin rounded to float,
 * applied to that pair of every head. */
static __global__ void rope_kernel(float *x, size_t T, size_t nh, size_t hd, size_t half, const int32_t *pos,
                                   const double *inv_freq) {
    FOR_N(k, T * half) {
        size_t t = k / half, i = k % half;
        double s, c, a = (double)pos[t] * inv_freq[i];
        sincos(a, &s, &c);
        float co = (float)c, si = (float)s;
        for (size_t h = 0; h < nh; h++) {
            float *p = x + (t * nh + h) * hd;
            float u = p[i], v = p[i + half];
            p[i] = u * co - v * si;
            p[i + half] = v * co + u * si;
        }
    }
}

void ck_cuda_rope(ck_backend *b, float *x, size_t T, size_t n_heads, size_t head_dim, size_t rot_dim,
                  const int32_t *pos, const double *inv_freq) {
    if (b->failed || T == 0 || rot_dim < 2) return;
    ck_cuda_run(b, "rope", [=](cudaStream_t st) {
        rope_kernel<<<GRID(T * (rot_dim / 2))>>>(x, T, n_heads, head_dim, rot_dim / 2, pos, inv_freq);
        ck_cuda_launched(b, "rope");
    }, x, T, n_heads, head_dim, rot_dim / 2, pos, inv_freq);
}

static __global__ void store_rows_kernel(float *cache, const float *src, const int32_t *pos, size_t T, size_t row) {
    FOR_N(i, T * row) cache[(size_t)pos[i / row] * row + i % row] = src[i];
}

void ck_cuda_store_rows(ck_backend *b, float *cache, const float *src, const int32_t *pos, size_t T, size_t row) {
    if (b->failed || T == 0 || row == 0) return;
    ck_cuda_run(b, "store_rows", [=](cudaStream_t st) {
        store_rows_kernel<<<GRID(T * row)>>>(cache, src, pos, T, row);
        ck_cuda_launched(b, "store_rows");
    }, cache, src, pos, T, row);
}

static __global__ void glu_kernel(float *out, const float *gate, const float *up, size_t n, int gelu) {
    FOR_N(i, n) {
        float g = gate[i], u = up[i];
        if (gelu) out[i] = 0.5f * g * (1.0f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g))) * u;
        else out[i] = g / (1.0f + expf(-g)) * u;
    }
}

void ck_cuda_glu(ck_backend *b, float *out, const float *gate, const float *up, size_t n, ck_act act) {
    if (b->failed || n == 0) return;
    ck_cuda_run(b, "glu", [=](cudaStream_t st) {
        glu_kernel<<<GRID(n)>>>(out, gate, up, n, act == CK_ACT_GELU_TANH);
        ck_cuda_launched(b, "glu");
    }, out, gate, up, n, act == CK_ACT_GELU_TANH);
}

static __global__ void gather_kernel(float *dst, const float *src, const int32_t *rows, size_t n, size_t row) {
    FOR_N(i, n * row) dst[i] = src[(size_t)rows[i / row] * row + i % row];
}

void ck_cuda_gather_rows(ck_backend *b, float *dst, const float *src, const int32_t *rows, size_t n, size_t row) {
    if (b->failed || n == 0 || row == 0) return;
    const int32_t *d = (const int32_t *)ck_cuda_stage(b, rows, n * sizeof *rows, 0);
    if (!d) return;
    ck_cuda_run(b, "gather_rows", [=](cudaStream_t st) {
        gather_kernel<<<GRID(n * row)>>>(dst, src, d, n, row);
        ck_cuda_launched(b, "gather_rows");
    }, dst, src, d, n, row);
}

/* One thread per column: the rows are added in index order, so repeated rows accumulate as on the CPU. */
static __global__ void scatter_add_kernel(float *dst, const float *src, const int32_t *rows, const float *w, size_t n,
                                          size_t row) {
    FOR_N(j, row)
    for (size_t i = 0; i < n; i++) dst[(size_t)rows[i] * row + j] += w[i] * src[i * row + j];
}

void ck_cuda_scatter_add_rows(ck_backend *b, float *dst, const float *src, const int32_t *rows, const float *w,
                              size_t n, size_t row) {
    if (b->failed || n == 0 || row == 0) return;
    const int32_t *dr = (const int32_t *)ck_cuda_stage(b, rows, n * sizeof *rows, 0);
    const float *dw = dr ? (const float *)ck_cuda_stage(b, w, n * sizeof *w, 1) : NULL;
    if (!dw) return;
    ck_cuda_run(b, "scatter_add_rows", [=](cudaStream_t st) {
        scatter_add_kernel<<<GRID(row)>>>(dst, src, dr, dw, n, row);
        ck_cuda_launched(b, "scatter_add_rows");
    }, dst, src, dr, dw, n, row);
}

static __global__ void add_kernel(float *y, const float *x, size_t n) { FOR_N(i, n) y[i] += x[i]; }

void ck_cuda_zero(ck_backend *b, float *y, size_t n) {
    if (b->failed || n == 0) return;
    ck_cuda_run(b, "zero", [=](cudaStream_t st) {
        ck_cuda_check(b, cudaMemsetAsync(y, 0, n * sizeof *y, st), "zero");
    }, y, n);
}

void ck_cuda_add(ck_backend *b, float *y, const float *x, size_t n) {
    if (b->failed || n == 0) return;
    ck_cuda_run(b, "add", [=](cudaStream_t st) {
        add_kernel<<<GRID(n)>>>(y, x, n);
        ck_cuda_launched(b, "add");
    }, y, x, n);
}

void ck_cuda_copy_rows(ck_backend *b, float *dst, size_t dst_stride, const float *src, size_t src_stride,
                       size_t rows, size_t n) {
    if (b->failed || rows == 0 || n == 0) return;
    ck_cuda_run(b, "copy_rows", [=](cudaStream_t st) {
        ck_cuda_check(b, cudaMemcpy2DAsync(dst, dst_stride * sizeof(float), src, src_stride * sizeof(float),
                                           n * sizeof(float), rows, cudaMemcpyDeviceToDevice, st), "copy_rows");
    }, dst, dst_stride, src, src_stride, rows, n);
}

static __global__ void sigmoid_mul_kernel(float *y, const float *g, size_t g_stride, size_t rows, size_t n) {
    FOR_N(i, rows * n) y[i] *= 1.0f / (1.0f + expf(-g[(i / n) * g_stride + i % n]));
}

void ck_cuda_sigmoid_mul(ck_backend *b, float *y, const float *g, size_t g_stride, size_t rows, size_t n) {
    if (b->failed || rows == 0 || n == 0) return;
    ck_cuda_run(b, "sigmoid_mul", [=](cudaStream_t st) {
        sigmoid_mul_kernel<<<GRID(rows * n)>>>(y, g, g_stride, rows, n);
        ck_cuda_launched(b, "sigmoid_mul");
    }, y, g, g_stride, rows, n);
}

static __global__ void gdn_gates_kernel(float *g, float *beta, const float *a, const float *bl, const float *A_log,
                                        const float *dt_bias, size_t T, size_t n) {
    FOR_N(i, T * n) {
        size_t h = i % n;
        float bv = bl[i], z = a[i] + dt_bias[h];
        float sp = z > 20.0f ? z : log1pf(expf(z));
        g[i] = -expf(A_log[h]) * sp;
        beta[i] = 1.0f / (1.0f + expf(-bv));
    }
}

void ck_cuda_gdn_gates(ck_backend *b, float *g, float *beta, const float *a, const float *bl, const float *A_log,
                       const float *dt_bias, size_t T, size_t n) {
    if (b->failed || T == 0 || n == 0) return;
    ck_cuda_run(b, "gdn_gates", [=](cudaStream_t st) {
        gdn_gates_kernel<<<GRID(T * n)>>>(g, beta, a, bl, A_log, dt_bias, T, n);
        ck_cuda_launched(b, "gdn_gates");
    }, g, beta, a, bl, A_log, dt_bias, T, n);
}
