/* instance.cu — the CUDA backend instance: device selection, its stream and cuBLAS handle, device memory
 * (alloc/free/upload/download/copy/clear), weights copied to the device in their stored dtype
 * (prepare/release, row views; Q8_0 rows regrouped as quants then scales for aligned loads), the sticky
 * error channel (sync, check_finite) and the ops table.
 * Invariants: all work goes to the instance's stream in call order; download returns only once the bytes
 * are on the host; a prepared weight's data points at device memory owned by the instance and freed by
 * release_weight (row views share it); the current device is set on entry to every call that allocates or
 * runs work, so instances on several GPUs can live in one process. */
#include "backend/cuda/cuda_internal.h"
extern "C" {
#include "base/err.h"
}

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows of a prefill chunk: cuBLAS keeps the tensor cores busy only with GEMMs of hundreds of rows. */
#define CK_CUDA_PREFILL_ROWS 512

extern "C" int ck_backend_cuda_create(int device, ck_backend **out, char *err, size_t errlen);
extern "C" int ck_cuda_device_count(void);
extern "C" int ck_cuda_device_info(int device, char *name, size_t cap, uint64_t *free_bytes, double *tflops);

int ck_cuda_check(ck_backend *b, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 0;
    ck_backend_fail(b, "%s: %s", what, cudaGetErrorString(e));
    return 1;
}

void ck_cuda_launched(ck_backend *b, const char *what) { ck_cuda_check(b, cudaGetLastError(), what); }

void *ck_cuda_scratch(ck_backend *b, void **buf, size_t *have, size_t bytes) {
    if (bytes <= *have && *buf) return *buf;
    ck_cuda *c = ck_cu(b);
    ck_cuda_flush(b); /* queued ops may use the old buffer */
    size_t want = bytes < 4096 ? 4096 : bytes + bytes / 2;
    if (*buf) {
        cudaStreamSynchronize(c->st); /* earlier ops may still read the old buffer */
        cudaFree(*buf);
        *buf = NULL, *have = 0;
    }
    if (ck_cuda_check(b, cudaMalloc(buf, want), "scratch allocation")) {
        *buf = NULL;
        return NULL;
    }
    *have = want;
    return *buf;
}

void *ck_cuda_stage(ck_backend *b, const void *host, size_t bytes, int slot) {
    ck_cuda *c = ck_cu(b);
    if (c->g) { /* pinned copy now, device copy queued */
        void *p = ck_cuda_pin(b, host, bytes);
        if (!p) return NULL;
        void *d = ck_cuda_pin_dev(b, p);
        ck_cuda_run(b, "stage", [=](cudaStream_t st) {
            ck_cuda_check(b, cudaMemcpyAsync(d, p, bytes, cudaMemcpyHostToDevice, st), "staging host arguments");
        }, d, p, bytes);
        return d;
    }
    void *d = ck_cuda_scratch(b, &c->args[slot], &c->args_bytes[slot], bytes);
    if (!d) return NULL;
    if (ck_cuda_check(b, cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, c->st), "staging host arguments"))
        return NULL;
    return d;
}

/* ---- memory ---- */

static void *cu_alloc(ck_backend *b, size_t bytes) {
    ck_cuda *c = ck_cu(b);
    void *p = NULL;
    cudaSetDevice(c->dev);
    ck_cuda_flush(b);
    if (cudaMalloc(&p, bytes ? bytes : 16) != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is reported by the NULL, not kept sticky */
        return NULL;
    }
    if (cudaMemsetAsync(p, 0, bytes ? bytes : 16, c->st) != cudaSuccess) {
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cu_free(ck_backend *b, void *p) {
    cudaSetDevice(ck_cu(b)->dev);
    ck_cuda_flush(b);   /* queued ops may read p */
    if (p) cudaFree(p); /* waits for the device */
}

static void cu_upload(ck_backend *b, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    if (ck_cu(b)->g) {
        void *p = ck_cuda_pin(b, src, bytes);
        if (p)
            ck_cuda_run(b, "upload", [=](cudaStream_t st) {
                ck_cuda_check(b, cudaMemcpyAsync(dst, p, bytes, cudaMemcpyHostToDevice, st), "upload");
            }, dst, p, bytes);
        return;
    }
    ck_cuda_check(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ck_cu(b)->st), "upload");
}

static void cu_download(ck_backend *b, void *dst, const void *src, size_t bytes) {
    ck_cuda *c = ck_cu(b);
    if (!bytes) return;
    if (c->g && bytes <= CK_CUDA_DOWNLOAD_PINNED && c->dl_host) { /* (a sampled id): the copy joins the queue */
        void *h = c->dl_host;
        ck_cuda_run(b, "download", [=](cudaStream_t st) {
            ck_cuda_check(b, cudaMemcpyAsync(h, src, bytes, cudaMemcpyDeviceToHost, st), "download");
        }, h, src, bytes);
        ck_cuda_flush(b);
        if (b->failed) memset(dst, 0, bytes);
        else memcpy(dst, h, bytes);
        return;
    }
    ck_cuda_flush(b);
    if (ck_cuda_check(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->st), "download")) {
        memset(dst, 0, bytes);
        return;
    }
    if (ck_cuda_check(b, cudaStreamSynchronize(c->st), "download")) memset(dst, 0, bytes);
}

static void cu_copy(ck_backend *b, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    ck_cuda_run(b, "copy", [=](cudaStream_t st) {
        ck_cuda_check(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st), "copy");
    }, dst, src, bytes);
}

/* From another CUDA instance, synced by the caller (backend.h): a copy on this stream that a graph may hold
 * (unified addressing tells the devices apart); between two devices it goes over the peer path (NVLink or
 * PCIe) when they allow peer access, else the driver stages it. */
static void cu_copy_peer(ck_backend *b, void *dst, ck_backend *from, const void *src, size_t bytes) {
    ck_cuda *c = ck_cu(b);
    int src_dev = ck_cu(from)->dev;
    if (!bytes) return;
    cudaSetDevice(c->dev);
    if (src_dev != c->dev) {
        int can = 0;
        if (cudaDeviceCanAccessPeer(&can, c->dev, src_dev) == cudaSuccess && can) {
            cudaError_t e = cudaDeviceEnablePeerAccess(src_dev, 0);
            if (e == cudaErrorPeerAccessAlreadyEnabled) cudaGetLastError();
            else if (ck_cuda_check(b, e, "enabling peer access")) return;
        }
    }
    ck_cuda_run(b, "copy_peer", [=](cudaStream_t st) {
        ck_cuda_check(b, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, st), "copy from another device");
    }, dst, src, bytes);
}

static void cu_clear(ck_backend *b, void *dst, size_t bytes) {
    if (!bytes) return;
    ck_cuda_run(b, "clear", [=](cudaStream_t st) {
        ck_cuda_check(b, cudaMemsetAsync(dst, 0, bytes, st), "clear");
    }, dst, bytes);
}

/* ---- weights ---- */

static int has_kernels(ck_dtype t) {
    return t == CK_F32 || t == CK_F16 || t == CK_BF16 || t == CK_Q8_0 || ck_cuda_is_quant(t);
}

/* Bytes of one row of a prepared weight: as stored, except Q8_0 (gemv.cu's row layout). */
static int device_row_bytes(ck_dtype t, uint64_t n, size_t *rb) {
    if (t != CK_Q8_0) return ck_dtype_row_bytes(t, n, rb);
    if (n % 32) return -1;
    *rb = ck_cuda_q8_stride((size_t)n);
    return 0;
}

/* Q8_0 blocks (d, qs[32]) of `rows` rows of n values into the device layout: per row the quants, then
 * the scales, padded (gemv.cu). Returns a malloc'd buffer of rows * stride bytes, or NULL. */
static void *q8_repack(const void *src, uint64_t rows, size_t n, size_t stride) {
    char *dst = (char *)calloc(rows ? rows : 1, stride);
    if (!dst) return NULL;
    size_t nb = n / 32;
    const unsigned char *s = (const unsigned char *)src;
    for (uint64_t r = 0; r < rows; r++) {
        char *d = dst + r * stride;
        for (size_t b = 0; b < nb; b++) {
            const unsigned char *blk = s + (r * nb + b) * 34;
            memcpy(d + 32 * b, blk + 2, 32);
            memcpy(d + n + 2 * b, blk, 2);
        }
    }
    return dst;
}

static int cu_prepare_weight(ck_backend *b, ck_tensor *w, char *err, size_t errlen) {
    ck_cuda *c = ck_cu(b);
    size_t rb, bytes;
    if (!has_kernels(w->dtype) || w->ndim < 1)
        return ck_err(err, errlen, "the CUDA backend has no kernels for dtype %s", ck_dtype_name(w->dtype));
    if (device_row_bytes(w->dtype, w->shape[w->ndim - 1], &rb) != 0)
        return ck_err(err, errlen, "weight rows of dtype %s are out of range", ck_dtype_name(w->dtype));
    uint64_t rows = 1;
    for (int i = 0; i + 1 < w->ndim; i++) {
        if (w->shape[i] && rows > UINT64_MAX / w->shape[i]) return ck_err(err, errlen, "weight too large");
        rows *= w->shape[i];
    }
    if (rows && rb > SIZE_MAX / rows) return ck_err(err, errlen, "weight too large");
    bytes = (size_t)rows * rb;
    void *d = NULL, *host = NULL;
    if (w->dtype == CK_Q8_0 && !(host = q8_repack(w->data, rows, (size_t)w->shape[w->ndim - 1], rb)))
        return ck_err(err, errlen, "out of memory repacking a q8_0 weight");
    cudaSetDevice(c->dev);
    ck_cuda_flush(b);
    cudaError_t e = cudaMalloc(&d, bytes ? bytes : 16);
    if (e == cudaSuccess) e = cudaMemcpy(d, host ? host : w->data, bytes, cudaMemcpyHostToDevice);
    free(host);
    if (e != cudaSuccess) {
        if (d) cudaFree(d);
        cudaGetLastError();
        return ck_err(err, errlen, "cannot place %zu bytes on %s: %s", bytes, c->name, cudaGetErrorString(e));
    }
    w->data = d;
    return 0;
}

static void cu_release_weight(ck_backend *b, ck_tensor *w) {
    cudaSetDevice(ck_cu(b)->dev);
    ck_cuda_flush(b);
    if (w->data) cudaFree((void *)w->data);
    w->data = NULL;
}

static int cu_weight_rows(ck_backend *b, ck_tensor *view, const ck_tensor *w, uint64_t r0, uint64_t n, char *err,
                          size_t errlen) {
    (void)b;
    size_t rb;
    if (w->ndim != 2 || r0 > w->shape[0] || n > w->shape[0] - r0 || device_row_bytes(w->dtype, w->shape[1], &rb))
        return ck_err(err, errlen, "rows [%llu, +%llu) are not a view of a 2-D weight", (unsigned long long)r0,
                       (unsigned long long)n);
    *view = *w;
    view->shape[0] = n;
    view->data = (const uint8_t *)w->data + r0 * rb;
    return 0;
}

/* ---- errors ---- */

static __global__ void finite_kernel(ck_cuda_flags *f, const float *x, size_t n, int tag) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        if (!isfinite(v) && atomicCAS(&f->failed, 0, 1) == 0) {
            f->tag = tag, f->idx = i, f->val = v;
            return;
        }
    }
}

void ck_cuda_check_finite(ck_backend *b, const float *x, size_t n, int tag) {
    ck_cuda *c = ck_cu(b);
    if (b->failed || n == 0) return;
    if (ck_cuda_fuse_check(b, x, n, tag)) return;
    unsigned g = ck_cuda_blocks(n, 256);
    if (g > 1024) g = 1024;
    ck_cuda_flags *f = c->flags;
    ck_cuda_run(b, "check_finite", [=](cudaStream_t st) {
        finite_kernel<<<g, 256, 0, st>>>(f, x, n, tag);
        ck_cuda_launched(b, "check_finite");
    }, f, x, n, tag, g);
}

static int cu_sync(ck_backend *b, int *tag, char *err, size_t errlen) {
    ck_cuda *c = ck_cu(b);
    cudaSetDevice(c->dev);
    ck_cuda_flush(b);
    ck_cuda_check(b, cudaStreamSynchronize(c->st), "device");
    ck_cuda_flags f, *mirror = ck_cuda_flags_host(b); /* the flush copied the flags there behind its ops */
    if (mirror) f = *mirror;
    if ((mirror || !ck_cuda_check(b, cudaMemcpy(&f, c->flags, sizeof f, cudaMemcpyDeviceToHost),
                                  "reading the check flags")) &&
        f.failed) {
        if (!b->failed) {
            ck_backend_fail(b, "non-finite value (%g) at element %llu", (double)f.val, f.idx);
            b->bad_tag = f.tag;
        }
        cudaMemset(c->flags, 0, sizeof f);
        if (mirror) memset(mirror, 0, sizeof f);
    }
    if (tag) *tag = b->bad_tag;
    if (!b->failed) return 0;
    b->failed = 0;
    b->bad_tag = CK_TAG_NONE;
    return ck_err(err, errlen, "%s", b->why);
}

static void cu_exec(ck_backend *b, void (*fn)(void *), void *arg) {
    cudaSetDevice(ck_cu(b)->dev);
    fn(arg);
}

static void cu_destroy(ck_backend *b) {
    ck_cuda *c = ck_cu(b);
    if (c) {
        cudaSetDevice(c->dev);
        ck_cuda_graphs_free(b);
        ck_cuda_prof_report(b);
        if (c->st) cudaStreamSynchronize(c->st);
        if (c->dargs) cudaFree(c->dargs);
        if (c->blas_ws) cudaFree(c->blas_ws);
        ck_cuda_blas_free(b);
        if (c->flags) cudaFree(c->flags);
        if (c->dl_host) cudaFreeHost(c->dl_host);
        if (c->counter) cudaFree(c->counter);
        for (int i = 0; i < 2; i++)
            if (c->args[i]) cudaFree(c->args[i]);
        if (c->half) cudaFree(c->half);
        if (c->wdq) cudaFree(c->wdq);
        if (c->attn) cudaFree(c->attn);
        if (c->amax) cudaFree(c->amax);
        if (c->gd) cudaFree(c->gd);
        if (c->st) cudaStreamDestroy(c->st);
        free(c);
    }
    free(b);
}

/* ---- the table ---- */

static void fill_table(ck_backend *b) {
    b->destroy = cu_destroy;
    b->exec = cu_exec;
    b->sync = cu_sync;
    b->alloc = cu_alloc;
    b->free = cu_free;
    b->upload = cu_upload;
    b->download = cu_download;
    b->copy = cu_copy;
    b->copy_peer = cu_copy_peer;
    b->clear = cu_clear;
    b->prepare_weight = cu_prepare_weight;
    b->release_weight = cu_release_weight;
    b->weight_rows = cu_weight_rows;
    b->check_finite = ck_cuda_check_finite;
    b->embed = ck_cuda_embed;
    b->matmul = ck_cuda_matmul;
    b->rmsnorm = ck_cuda_rmsnorm;
    b->rope = ck_cuda_rope;
    b->store_rows = ck_cuda_store_rows;
    b->attention = ck_cuda_attention;
    b->glu = ck_cuda_glu;
    b->gather_rows = ck_cuda_gather_rows;
    b->scatter_add_rows = ck_cuda_scatter_add_rows;
    b->zero = ck_cuda_zero;
    b->add = ck_cuda_add;
    b->copy_rows = ck_cuda_copy_rows;
    b->sigmoid_mul = ck_cuda_sigmoid_mul;
    b->conv1d_causal = ck_cuda_conv1d_causal;
    b->gdn_gates = ck_cuda_gdn_gates;
    b->gated_delta = ck_cuda_gated_delta;
    b->rmsnorm_gated = ck_cuda_rmsnorm_gated;
    b->moe_route = ck_cuda_moe_route;
    b->argmax = ck_cuda_argmax;
}

int ck_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

/* FP32 lanes a multiprocessor of compute capability major.minor has (the CUDA programming guide's
 * arithmetic throughput table); 64 for an unknown one. */
static int fp32_lanes(int major, int minor) {
    if (major == 8 && minor == 0) return 64;         /* A100 */
    if (major >= 8 || major == 5) return 128;        /* 5.x; 8.6, 8.9, 9.0 (H100/H200), 10.x, 12.x */
    return major == 6 && minor != 0 ? 128 : 64;      /* 6.1/6.2 128; 6.0, 7.x 64 */
}

int ck_cuda_device_info(int device, char *name, size_t cap, uint64_t *free_bytes, double *tflops) {
    cudaDeviceProp prop;
    int khz = 0, prev = 0;
    size_t fr = 0, total = 0;
    cudaGetDevice(&prev);
    int ok = device >= 0 && device < ck_cuda_device_count() && cudaGetDeviceProperties(&prop, device) == cudaSuccess &&
             cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device) == cudaSuccess &&
             cudaSetDevice(device) == cudaSuccess && cudaMemGetInfo(&fr, &total) == cudaSuccess;
    cudaSetDevice(prev); /* (the calling thread's device as it was) */
    if (!ok) {
        cudaGetLastError();
        return -1;
    }
    snprintf(name, cap, "%s", prop.name);
    *free_bytes = fr;
    *tflops = 2.0 * prop.multiProcessorCount * fp32_lanes(prop.major, prop.minor) * (double)khz * 1e3 * 1e-12;
    return 0;
}

int ck_backend_cuda_create(int device, ck_backend **out, char *err, size_t errlen) {
    *out = NULL;
    int n = ck_cuda_device_count();
    if (n == 0) return ck_err(err, errlen, "no CUDA device found");
    if (device < 0 || device >= n)
        return ck_err(err, errlen, "CUDA device %d does not exist (this machine has %d: 0..%d)", device, n, n - 1);
    ck_backend *b = (ck_backend *)calloc(1, sizeof *b);
    ck_cuda *c = (ck_cuda *)calloc(1, sizeof *c);
    if (!b || !c) {
        free(b), free(c);
        return ck_err(err, errlen, "out of memory");
    }
    b->impl = c;
    b->bad_tag = CK_TAG_NONE;
    b->prefill_rows = CK_CUDA_PREFILL_ROWS;
    fill_table(b);
    c->dev = device;
    cudaDeviceProp prop;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaMalloc((void **)&c->flags, sizeof *c->flags);
    if (e == cudaSuccess) e = cudaMemset(c->flags, 0, sizeof *c->flags);
    if (e == cudaSuccess) e = cudaMallocHost(&c->dl_host, CK_CUDA_DOWNLOAD_PINNED);
    if (e == cudaSuccess) e = cudaMalloc((void **)&c->counter, (1 + CK_ATTN_PREP_HEADS) * sizeof *c->counter);
    if (e == cudaSuccess) e = cudaMemset(c->counter, 0, (1 + CK_ATTN_PREP_HEADS) * sizeof *c->counter);
    if (e != cudaSuccess) {
        cudaGetLastError();
        cu_destroy(b);
        return ck_err(err, errlen, "CUDA device %d: %s", device, cudaGetErrorString(e));
    }
    if (ck_cuda_blas_init(b, err, errlen) != 0) {
        cu_destroy(b);
        return -1;
    }
    ck_cuda_graphs_init(b);
    ck_cuda_gemv_init(b);
    const char *fz = getenv("CK_CUDA_FUSE");
    c->fuse = fz && *fz ? atoi(fz) : CK_FUSE_DEFAULT;
    const char *sk = getenv("CK_CUDA_SPLIT");
    c->split_ok = !(sk && !strcmp(sk, "0"));
    const char *ta = getenv("CK_CUDA_TILED_ATTN");
    c->tiled_attn = !(ta && !strcmp(ta, "0"));
    const char *tc = getenv("CK_CUDA_TC_ATTN");
    c->tc_attn = !(tc && !strcmp(tc, "0")) && prop.major >= 8;
    const char *ak = getenv("CK_CUDA_ATTN_KEYS");
    c->split_keys = ak && atol(ak) > 0 ? (size_t)atol(ak) : 128; /* 1.00-1.07x 256 at depths 0 and 512 */
    const char *av = getenv("CK_CUDA_ATTN_VEC");
    c->attn_vec = !(av && !strcmp(av, "0"));
    const char *ag = getenv("CK_CUDA_ATTN_GROUP");
    c->attn_group = !(ag && !strcmp(ag, "0"));
    const char *ae = getenv("CK_CUDA_ATTN_EARLY");
    c->attn_early = !(ae && !strcmp(ae, "0"));
    const char *as = getenv("CK_CUDA_ATTN_SPLITS");
    c->split_max = as && atol(as) > 0 ? (size_t)atol(as) : 16; /* at 4096 keys: 16 splits 1.07x 8, 32 0.89x */
    if (c->split_max > 32) c->split_max = 32; /* attention.cu's SPLITS */
    const char *pd = getenv("CK_CUDA_PDL");
    c->pdl = !(pd && !strcmp(pd, "0")) && prop.major >= 9;
    const char *sg = getenv("CK_CUDA_SPLIT_GEMV");
    c->split_gemv = !(sg && !strcmp(sg, "0"));
    const char *sw = getenv("CK_CUDA_SPLIT_WPR");
    c->split_wpr_fill = sw && !strcmp(sw, "fill");
    snprintf(c->name, sizeof c->name, "cuda");
    b->name = c->name;
    *out = b;
    return 0;
}
