/* elementwise.cu — the small ops: RMSNorm (plain and gated), RoPE with its angles computed on the device
 * from positions and inverse frequencies, KV-cache row stores at device positions, GLU activations, row
 * gathers/scatters for MoE, zero/add, strided row copies, sigmoid gates and the Gated DeltaNet gates.
 * Each follows its contract in backend.h; the scalar references are the CPU backend's (ref.c / cpu.c).
 * Norms run one block per row (f32 sums); everything else is a grid-stride loop over elements. */
#include "backend/cuda/cuda_internal.h"

#define GRID(n) ck_cuda_blocks((n), 256), 256, 0, ck_cu(b)->st
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
    rmsnorm_kernel<<<(unsigned)rows, norm_threads(n), 0, ck_cu(b)->st>>>(y, x, w, n, eps, one_plus);
    ck_cuda_launched(b, "rmsnorm");
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
    rmsnorm_gated_kernel<<<(unsigned)rows, norm_threads(n), 0, ck_cu(b)->st>>>(y, x, z, w, n, eps);
    ck_cuda_launched(b, "rmsnorm_gated");
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
    rope_kernel<<<GRID(T * (rot_dim / 2))>>>(x, T, n_heads, head_dim, rot_dim / 2, pos, inv_freq);
    ck_cuda_launched(b, "rope");
}

static __global__ void store_rows_kernel(float *cache, const float *src, const int32_t *pos, size_t T, size_t row) {
    FOR_N(i, T * row) cache[(size_t)pos[i / row] * row + i % row] = src[i];
}

void ck_cuda_store_rows(ck_backend *b, float *cache, const float *src, const int32_t *pos, size_t T, size_t row) {
    if (b->failed || T == 0 || row == 0) return;
    store_rows_kernel<<<GRID(T * row)>>>(cache, src, pos, T, row);
    ck_cuda_launched(b, "store_rows");
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
    glu_kernel<<<GRID(n)>>>(out, gate, up, n, act == CK_ACT_GELU_TANH);
    ck_cuda_launched(b, "glu");
}

static __global__ void gather_kernel(float *dst, const float *src, const int32_t *rows, size_t n, size_t row) {
    FOR_N(i, n * row) dst[i] = src[(size_t)rows[i / row] * row + i % row];
}

void ck_cuda_gather_rows(ck_backend *b, float *dst, const float *src, const int32_t *rows, size_t n, size_t row) {
    if (b->failed || n == 0 || row == 0) return;
    const int32_t *d = (const int32_t *)ck_cuda_stage(b, rows, n * sizeof *rows);
    if (!d) return;
    gather_kernel<<<GRID(n * row)>>>(dst, src, d, n, row);
    ck_cuda_launched(b, "gather_rows");
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
    ck_cuda *c = ck_cu(b);
    size_t off = (n * sizeof(int32_t) + 15) / 16 * 16; /* rows, then w at a 16-byte boundary */
    char *d = (char *)ck_cuda_scratch(b, &c->args, &c->args_bytes, off + n * sizeof(float));
    if (!d) return;
    if (ck_cuda_check(b, cudaMemcpyAsync(d, rows, n * sizeof(int32_t), cudaMemcpyHostToDevice, c->st), "staging") ||
        ck_cuda_check(b, cudaMemcpyAsync(d + off, w, n * sizeof(float), cudaMemcpyHostToDevice, c->st), "staging"))
        return;
    scatter_add_kernel<<<GRID(row)>>>(dst, src, (const int32_t *)d, (const float *)(d + off), n, row);
    ck_cuda_launched(b, "scatter_add_rows");
}

static __global__ void add_kernel(float *y, const float *x, size_t n) { FOR_N(i, n) y[i] += x[i]; }

void ck_cuda_zero(ck_backend *b, float *y, size_t n) {
    if (b->failed || n == 0) return;
    ck_cuda_check(b, cudaMemsetAsync(y, 0, n * sizeof *y, ck_cu(b)->st), "zero");
}

void ck_cuda_add(ck_backend *b, float *y, const float *x, size_t n) {
    if (b->failed || n == 0) return;
    add_kernel<<<GRID(n)>>>(y, x, n);
    ck_cuda_launched(b, "add");
}

void ck_cuda_copy_rows(ck_backend *b, float *dst, size_t dst_stride, const float *src, size_t src_stride,
                       size_t rows, size_t n) {
    if (b->failed || rows == 0 || n == 0) return;
    ck_cuda_check(b, cudaMemcpy2DAsync(dst, dst_stride * sizeof(float), src, src_stride * sizeof(float),
                                       n * sizeof(float), rows, cudaMemcpyDeviceToDevice, ck_cu(b)->st),
                  "copy_rows");
}

static __global__ void sigmoid_mul_kernel(float *y, const float *g, size_t g_stride, size_t rows, size_t n) {
    FOR_N(i, rows * n) y[i] *= 1.0f / (1.0f + expf(-g[(i / n) * g_stride + i % n]));
}

void ck_cuda_sigmoid_mul(ck_backend *b, float *y, const float *g, size_t g_stride, size_t rows, size_t n) {
    if (b->failed || rows == 0 || n == 0) return;
    sigmoid_mul_kernel<<<GRID(rows * n)>>>(y, g, g_stride, rows, n);
    ck_cuda_launched(b, "sigmoid_mul");
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
    gdn_gates_kernel<<<GRID(T * n)>>>(g, beta, a, bl, A_log, dt_bias, T, n);
    ck_cuda_launched(b, "gdn_gates");
}
