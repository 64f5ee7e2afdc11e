/* elementwise.cu — the small ops: RMSNorm (plain and gated), RoPE with its angles computed on the device
 * from positions and inverse frequencies, KV-cache row stores at device positions, GLU activations, row
 * gathers/scatters for MoE, zero/add, strided row copies and sigmoid gates (the Gated DeltaNet gates are in
 * deltanet.cu).
 * Each follows its contract in backend.h; the scalar references are the CPU backend's (ref.c / cpu.c).
 * Norms run one block per row (f32 sums); everything else is a grid-stride loop over elements. */
#include "backend/cuda/cuda_internal.h"

#define GRID(n) ck_cuda_blocks((n), 256), 256, 0, st
#define FOR_N(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* Up to CK_BATCH_MAX RMSNorms of one row length in one launch: blocks [r0[i], r0[i+1]) are part i's rows. */
typedef struct norm_batch {
    float *y[CK_BATCH_MAX];
    const float *x[CK_BATCH_MAX], *w[CK_BATCH_MAX];
    unsigned r0[CK_BATCH_MAX + 1];
    int n;
} norm_batch;

static __global__ void rmsnorm_kernel(norm_batch nb, size_t n, float eps, int one_plus) {
    __shared__ float sh[32];
    int bi = 0;
    while (bi + 1 < nb.n && blockIdx.x >= nb.r0[bi + 1]) bi++;
    size_t r = blockIdx.x - nb.r0[bi];
    const float *xr = nb.x[bi] + r * n, *w = nb.w[bi];
    float *yr = nb.y[bi] + r * n;
    float ss = 0.0f;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = ck_block_sum(ss, sh);
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * inv * (one_plus ? 1.0f + w[i] : w[i]);
}

/* part.a: y, x, w, rows; compat: n, eps bits, one_plus */
void ck_cuda_rmsnorm_emit(ck_backend *b, const ck_batch_part *parts, int np, const uint64_t *compat) {
    norm_batch nb;
    memset(&nb, 0, sizeof nb);
    nb.n = np;
    uint64_t k[4 * 4] = {0};
    for (int i = 0; i < np; i++) {
        nb.y[i] = (float *)parts[i].a[0], nb.x[i] = (const float *)parts[i].a[1], nb.w[i] = (const float *)parts[i].a[2];
        nb.r0[i + 1] = nb.r0[i] + (unsigned)parts[i].a[3];
        for (int j = 0; j < 4; j++) k[i * 4 + j] = parts[i].a[j];
    }
    size_t n = compat[0];
    float eps;
    uint32_t eb = (uint32_t)compat[1];
    memcpy(&eps, &eb, 4);
    int one_plus = (int)compat[2];
    unsigned rows = nb.r0[np];
    ck_cuda_run(b, "rmsnorm", [=](cudaStream_t st) {
        rmsnorm_kernel<<<rows, ck_norm_threads(n), 0, st>>>(nb, n, eps, one_plus);
        ck_cuda_launched(b, "rmsnorm");
    }, n, eps, one_plus, np, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12], k[13],
       k[14], k[15]);
}

void ck_cuda_rmsnorm(ck_backend *b, float *y, const float *x, const float *w, size_t rows, size_t n, float eps,
                     int one_plus) {
    if (b->failed || rows == 0) return;
    if (rows > 65535u * 8) {
        ck_backend_fail(b, "rmsnorm: %zu rows is too many", rows);
        return;
    }
    ck_batch_part part = {x, rows * n * sizeof(float), y, rows * n * sizeof(float),
                          {(uint64_t)(uintptr_t)y, (uint64_t)(uintptr_t)x, (uint64_t)(uintptr_t)w, rows, 0, 0}};
    uint64_t compat[8] = {n, ck_kw(eps), (uint64_t)one_plus, 0, 0, 0, 0, 0};
    if (!ck_cuda_batch_add(b, ck_cuda_rmsnorm_emit, compat, &part)) ck_cuda_rmsnorm_emit(b, &part, 1, compat);
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
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * inv * w[i] * ck_silu(zr[i]);
}

void ck_cuda_rmsnorm_gated(ck_backend *b, float *y, const float *x, const float *z, const float *w, size_t rows,
                           size_t n, float eps) {
    if (b->failed || rows == 0 || ck_cuda_gdn_norm(b, y, x, z, w, rows, n, eps)) return;
    ck_cuda_run(b, "rmsnorm_gated", [=](cudaStream_t st) {
        rmsnorm_gated_kernel<<<(unsigned)rows, ck_norm_threads(n), 0, st>>>(y, x, z, w, n, eps);
        ck_cuda_launched(b, "rmsnorm_gated");
    }, y, x, z, w, n, eps, rows);
}

/* RoPE of up to CK_BATCH_MAX tensors at the same positions (q and k): one thread per (token, frequency)
 * computes the angle pos * inv_freq in double, its cos/sin rounded to float, and rotates that pair of
 * every head of every part. */
typedef struct rope_batch {
    float *x[CK_BATCH_MAX];
    int nh[CK_BATCH_MAX];
    int n;
} rope_batch;

static __global__ void rope_kernel(rope_batch rb, size_t T, size_t hd, size_t half, const int32_t *pos,
                                   const double *inv_freq) {
    size_t heads = 0;
    for (int pi = 0; pi < rb.n; pi++) heads += (size_t)rb.nh[pi];
    FOR_N(k, T * heads * half) {
        size_t i = k % half, r = k / half, t = r / heads, h = r % heads;
        int pi = 0;
        while (h >= (size_t)rb.nh[pi]) h -= (size_t)rb.nh[pi++];
        double s, c, a = (double)pos[t] * inv_freq[i];
        sincos(a, &s, &c);
        float co = (float)c, si = (float)s;
        float *p = rb.x[pi] + (t * rb.nh[pi] + h) * hd;
        float u = p[i], v = p[i + half];
        p[i] = u * co - v * si;
        p[i + half] = v * co + u * si;
    }
}

/* part.a: x, n_heads; compat: T, head_dim, half, pos, inv_freq */
void ck_cuda_rope_emit(ck_backend *b, const ck_batch_part *parts, int np, const uint64_t *compat) {
    rope_batch rb;
    memset(&rb, 0, sizeof rb);
    rb.n = np;
    uint64_t k[4 * 2] = {0};
    for (int i = 0; i < np; i++) {
        rb.x[i] = (float *)parts[i].a[0], rb.nh[i] = (int)parts[i].a[1];
        k[2 * i] = parts[i].a[0], k[2 * i + 1] = parts[i].a[1];
    }
    size_t T = compat[0], hd = compat[1], half = compat[2];
    const int32_t *pos = (const int32_t *)compat[3];
    const double *inv_freq = (const double *)compat[4];
    ck_cuda_run(b, "rope", [=](cudaStream_t st) {
        size_t heads = 0;
        for (int i = 0; i < rb.n; i++) heads += (size_t)rb.nh[i];
        rope_kernel<<<GRID(T * heads * half)>>>(rb, T, hd, half, pos, inv_freq);
        ck_cuda_launched(b, "rope");
    }, T, hd, half, pos, inv_freq, np, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]);
}

void ck_cuda_rope(ck_backend *b, float *x, size_t T, size_t n_heads, size_t head_dim, size_t rot_dim,
                  const int32_t *pos, const double *inv_freq) {
    if (b->failed || T == 0 || rot_dim < 2) return;
    size_t bytes = T * n_heads * head_dim * sizeof(float);
    ck_batch_part part = {x, bytes, x, bytes, {(uint64_t)(uintptr_t)x, n_heads, 0, 0, 0, 0}};
    uint64_t compat[8] = {T, head_dim, rot_dim / 2, (uint64_t)(uintptr_t)pos, (uint64_t)(uintptr_t)inv_freq, 0, 0, 0};
    if (!ck_cuda_batch_add(b, ck_cuda_rope_emit, compat, &part)) ck_cuda_rope_emit(b, &part, 1, compat);
}

/* KV-cache stores of up to CK_BATCH_MAX caches of one type at the same positions (K and V). */
typedef struct store_batch {
    void *cache[CK_BATCH_MAX];
    const float *src[CK_BATCH_MAX];
    int n;
} store_batch;

static __global__ void store_rows_kernel(store_batch sb, const int32_t *pos, size_t T, size_t row, int f16) {
    FOR_N(i, T * row) {
        size_t at = (size_t)pos[i / row] * row + i % row;
        for (int pi = 0; pi < sb.n; pi++) {
            if (f16) ((__half *)sb.cache[pi])[at] = ck_kv_half(sb.src[pi][i]);
            else ((float *)sb.cache[pi])[at] = sb.src[pi][i];
        }
    }
}

/* part.a: cache, src; compat: pos, T, row, 1 for an f16 cache */
void ck_cuda_store_emit(ck_backend *b, const ck_batch_part *parts, int np, const uint64_t *compat) {
    store_batch sb;
    memset(&sb, 0, sizeof sb);
    sb.n = np;
    uint64_t k[4 * 2] = {0};
    for (int i = 0; i < np; i++) {
        sb.cache[i] = (void *)parts[i].a[0], sb.src[i] = (const float *)parts[i].a[1];
        k[2 * i] = parts[i].a[0], k[2 * i + 1] = parts[i].a[1];
    }
    const int32_t *pos = (const int32_t *)compat[0];
    size_t T = compat[1], row = compat[2];
    int f16 = (int)compat[3];
    ck_cuda_run(b, "store_rows", [=](cudaStream_t st) {
        store_rows_kernel<<<GRID(T * row)>>>(sb, pos, T, row, f16);
        ck_cuda_launched(b, "store_rows");
    }, pos, T, row, f16, np, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]);
}

/* The written range of a cache is not known on the host (positions live on the device); a cache is its own
 * allocation, so its first byte stands for it in the batch's overlap test. */
void ck_cuda_store_rows(ck_backend *b, void *cache, ck_dtype dt, const float *src, const int32_t *pos, size_t T,
                        size_t row) {
    if (b->failed || T == 0 || row == 0) return;
    if (dt != CK_F32 && dt != CK_F16) {
        ck_backend_fail(b, "store_rows: a KV cache of %s is not supported", ck_dtype_name(dt));
        return;
    }
    ck_batch_part part = {src, T * row * sizeof(float), cache, 1,
                          {(uint64_t)(uintptr_t)cache, (uint64_t)(uintptr_t)src, 0, 0, 0, 0}};
    uint64_t compat[8] = {(uint64_t)(uintptr_t)pos, T, row, dt == CK_F16, 0, 0, 0, 0};
    if (!ck_cuda_batch_add(b, ck_cuda_store_emit, compat, &part)) ck_cuda_store_emit(b, &part, 1, compat);
}

/* Per-head norm + RoPE + KV store (fuse.cu builds it from consecutive rmsnorm, rope and store_rows
 * calls): part i is a tensor x [T, nh, hd] whose head rows are, in this order, normalized by w (when
 * not NULL; over hd, in place), rotated (when rope), written back (when either) and copied into cache
 * row pos[t] (when not NULL; f32, or f16 when c16). One warp per head row, the row staged in shared
 * memory; the arithmetic is that of the separate kernels. */
typedef struct hp_batch {
    float *x[CK_BATCH_MAX];
    const float *w[CK_BATCH_MAX];
    void *cache[CK_BATCH_MAX];
    int nh[CK_BATCH_MAX], rope[CK_BATCH_MAX], c16[CK_BATCH_MAX];
    int r0[CK_BATCH_MAX + 1];
    int n;
} hp_batch;

#define HP_WARPS 4
static __global__ void __launch_bounds__(32 * HP_WARPS)
headprep_kernel(hp_batch hb, int hd, float eps, int one_plus, const int32_t *pos, const double *inv_freq, int half) {
    extern __shared__ float hsm[];
    int wid = threadIdx.x >> 5, lane = threadIdx.x & 31, r = blockIdx.x * HP_WARPS + wid;
    if (r >= hb.r0[hb.n]) return; /* only warp-level synchronization below */
    int pi = 0;
    while (pi + 1 < hb.n && r >= hb.r0[pi + 1]) pi++;
    int rr = r - hb.r0[pi], nh = hb.nh[pi], t = rr / nh, h = rr % nh;
    float *xr = hb.x[pi] + (size_t)rr * hd, *sr = hsm + (size_t)wid * hd;
    const float *w = hb.w[pi];
    ck_head_row(sr, xr, hd, w, eps, one_plus, hb.rope[pi], hb.rope[pi] ? pos[t] : 0, inv_freq, half);
    if (w || hb.rope[pi])
        for (int d = lane; d < hd; d += 32) xr[d] = sr[d];
    if (hb.cache[pi]) {
        size_t at = ((size_t)pos[t] * nh + h) * hd;
        if (hb.c16[pi])
            for (int d = lane; d < hd; d += 32) ((__half *)hb.cache[pi])[at + d] = ck_kv_half(sr[d]);
        else
            for (int d = lane; d < hd; d += 32) ((float *)hb.cache[pi])[at + d] = sr[d];
    }
}

/* part.a: x, nh, w, rope, cache, 1 for an f16 cache; compat: T, hd, eps bits, one_plus, pos, inv_freq, half */
void ck_cuda_headprep_emit(ck_backend *b, const ck_batch_part *parts, int np, const uint64_t *compat) {
    hp_batch hb;
    memset(&hb, 0, sizeof hb);
    hb.n = np;
    size_t T = compat[0];
    int hd = (int)compat[1], one_plus = (int)compat[3], half = (int)compat[6];
    float eps;
    uint32_t eb = (uint32_t)compat[2];
    memcpy(&eps, &eb, 4);
    const int32_t *pos = (const int32_t *)compat[4];
    const double *inv_freq = (const double *)compat[5];
    uint64_t k[4 * 6] = {0};
    for (int i = 0; i < np; i++) {
        hb.x[i] = (float *)parts[i].a[0], hb.nh[i] = (int)parts[i].a[1], hb.w[i] = (const float *)parts[i].a[2];
        hb.rope[i] = (int)parts[i].a[3], hb.cache[i] = (void *)parts[i].a[4], hb.c16[i] = (int)parts[i].a[5];
        hb.r0[i + 1] = hb.r0[i] + (int)(T * parts[i].a[1]);
        for (int j = 0; j < 6; j++) k[i * 6 + j] = parts[i].a[j];
    }
    unsigned blocks = (unsigned)((hb.r0[np] + HP_WARPS - 1) / HP_WARPS);
    size_t smem = (size_t)HP_WARPS * hd * sizeof(float);
    ck_cuda_run(b, "headprep", [=](cudaStream_t st) {
        headprep_kernel<<<blocks, 32 * HP_WARPS, smem, st>>>(hb, hd, eps, one_plus, pos, inv_freq, half);
        ck_cuda_launched(b, "norm/rope/store");
    }, T, hd, eps, one_plus, pos, inv_freq, half, np, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10],
       k[11], k[12], k[13], k[14], k[15], k[16], k[17], k[18], k[19], k[20], k[21], k[22], k[23]);
}

static __global__ void glu_kernel(float *out, const float *gate, const float *up, size_t n, int gelu) {
    FOR_N(i, n) {
        out[i] = ck_glu(gate[i], up[i], gelu);
    }
}

/* part.a: out, gate, up, n, gelu; compat: n, gelu (parts never share a launch: one kernel each) */
void ck_cuda_glu_emit(ck_backend *b, const ck_batch_part *parts, int np, const uint64_t *compat) {
    (void)compat;
    for (int i = 0; i < np; i++) {
        float *out = (float *)parts[i].a[0];
        const float *gate = (const float *)parts[i].a[1], *up = (const float *)parts[i].a[2];
        size_t n = parts[i].a[3];
        int gelu = (int)parts[i].a[4];
        ck_cuda_run(b, "glu", [=](cudaStream_t st) {
            glu_kernel<<<GRID(n)>>>(out, gate, up, n, gelu);
            ck_cuda_launched(b, "glu");
        }, out, gate, up, n, gelu);
    }
}

/* A glu waits in the batch slot so that a GEMV reading its output can make it itself (fuse.cu). */
void ck_cuda_glu(ck_backend *b, float *out, const float *gate, const float *up, size_t n, ck_act act) {
    if (b->failed || n == 0) return;
    int gelu = act == CK_ACT_GELU_TANH;
    ck_batch_part part = {gate, n * sizeof(float), out, n * sizeof(float),
                          {(uint64_t)(uintptr_t)out, (uint64_t)(uintptr_t)gate, (uint64_t)(uintptr_t)up, n,
                           (uint64_t)gelu, 0}};
    /* up is read too: a second range the generic overlap test does not see, so a glu never joins another */
    uint64_t compat[8] = {n, (uint64_t)gelu, (uint64_t)(uintptr_t)out, 0, 0, 0, 0, 0};
    if (!ck_cuda_batch_add(b, ck_cuda_glu_emit, compat, &part)) ck_cuda_glu_emit(b, &part, 1, compat);
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

/* part.a: y, x, n; compat: n, y (parts never share a launch) */
void ck_cuda_add_emit(ck_backend *b, const ck_batch_part *parts, int np, const uint64_t *compat) {
    (void)compat;
    for (int i = 0; i < np; i++) {
        float *y = (float *)parts[i].a[0];
        const float *x = (const float *)parts[i].a[1];
        size_t n = parts[i].a[2];
        ck_cuda_run(b, "add", [=](cudaStream_t st) {
            add_kernel<<<GRID(n)>>>(y, x, n);
            ck_cuda_launched(b, "add");
        }, y, x, n);
    }
}

/* An add goes through the batch slot so that the GEMV that produced x can add it in its epilogue. */
void ck_cuda_add(ck_backend *b, float *y, const float *x, size_t n) {
    if (b->failed || n == 0) return;
    ck_batch_part part = {x, n * sizeof(float), y, n * sizeof(float),
                          {(uint64_t)(uintptr_t)y, (uint64_t)(uintptr_t)x, n, 0, 0, 0}};
    uint64_t compat[8] = {n, (uint64_t)(uintptr_t)y, 0, 0, 0, 0, 0, 0};
    if (!ck_cuda_batch_add(b, ck_cuda_add_emit, compat, &part)) ck_cuda_add_emit(b, &part, 1, compat);
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
    FOR_N(i, rows * n) y[i] = ck_sigmoid_gate(y[i], g[(i / n) * g_stride + i % n]);
}

void ck_cuda_sigmoid_mul_emit(ck_backend *b, const ck_batch_part *parts, int np, const uint64_t *compat) {
    (void)compat;
    for (int i = 0; i < np; i++) {
        float *y = (float *)parts[i].a[0];
        const float *g = (const float *)parts[i].a[1];
        size_t g_stride = parts[i].a[2], rows = parts[i].a[3], n = parts[i].a[4];
        ck_cuda_run(b, "sigmoid_mul", [=](cudaStream_t st) {
            sigmoid_mul_kernel<<<GRID(rows * n)>>>(y, g, g_stride, rows, n);
            ck_cuda_launched(b, "sigmoid_mul");
        }, y, g, g_stride, rows, n);
    }
}

/* A sigmoid_mul waits in the batch slot so that a GEMV reading its output can make it itself (fuse.cu). */
void ck_cuda_sigmoid_mul(ck_backend *b, float *y, const float *g, size_t g_stride, size_t rows, size_t n) {
    if (b->failed || rows == 0 || n == 0) return;
    size_t bytes = rows * n * sizeof(float);
    ck_batch_part part = {y, bytes, y, bytes,
                          {(uint64_t)(uintptr_t)y, (uint64_t)(uintptr_t)g, g_stride, rows, n, 0}};
    /* g is read too, a range the generic overlap test does not see: a sigmoid_mul never joins another */
    uint64_t compat[8] = {(uint64_t)(uintptr_t)y, 0, 0, 0, 0, 0, 0, 0};
    if (!ck_cuda_batch_add(b, ck_cuda_sigmoid_mul_emit, compat, &part)) ck_cuda_sigmoid_mul_emit(b, &part, 1, compat);
}
