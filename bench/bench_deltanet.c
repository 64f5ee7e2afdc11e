/* bench_deltanet.c — times one Gated DeltaNet layer (deltanet.c on the CPU backend) shaped like
 * Qwen3.5-0.8B's (hidden 1024, 16 key / 16 value heads of dim 128, conv kernel 4; override with
 * `bench_deltanet HIDDEN NK NV DK DV K`) with random bf16 weights: a 512-token prefill in CK_CHUNK-row
 * steps, then token-by-token decode. Prints ms/token for both, the bytes each decode step reads
 * (weights + recurrent state) and the bandwidth that implies beside a measured read bandwidth.
 * Not a test: built by CMake, never run by CTest. */
#include "backend/backend.h"
#include "model/deltanet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

/* A random bf16 [rows, cols] weight scaled by `scale`. */
static ck_tensor rand_w(size_t rows, size_t cols, float scale) {
    uint16_t *d = malloc(rows * cols * sizeof *d);
    if (!d) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < rows * cols; i++) d[i] = to_bf16(frand() * scale);
    ck_tensor t = {.dtype = CK_BF16, .ndim = 2, .shape = {rows, cols}, .data = d};
    return t;
}

static float *rand_vec(ck_backend *be, size_t n, float lo, float hi) {
    float *h = malloc(n * sizeof *h), *d = be->alloc(be, n * sizeof *d);
    if (!h || !d) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * (frand() + 1.0f) * 0.5f;
    be->upload(be, d, h, n * sizeof *h);
    free(h);
    return d;
}

/* Read bandwidth in GB/s: sum over a 256 MiB buffer, best of 3. */
static double read_bw(void) {
    size_t n = (256u << 20) / sizeof(float);
    float *a = malloc(n * sizeof *a);
    if (!a) return 0;
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);
    double best = 0;
    volatile float sink = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        float s = 0;
#pragma omp parallel for reduction(+ : s)
        for (long long i = 0; i < (long long)n; i++) s += a[i];
        double dt = now_s() - t0;
        sink += s;
        if ((double)(n * sizeof *a) / dt > best) best = (double)(n * sizeof *a) / dt;
    }
    (void)sink;
    free(a);
    return best / 1e9;
}

int main(int argc, char **argv) {
    size_t p[6] = {1024, 16, 16, 128, 128, 4}; /* hidden, nk, nv, dk, dv, K */
    for (int i = 1; i < argc && i <= 6; i++) p[i - 1] = (size_t)strtoull(argv[i], NULL, 10);
    if (!p[0] || !p[1] || !p[2] || !p[3] || !p[4] || !p[5] || p[2] % p[1]) {
        fprintf(stderr, "usage: bench_deltanet [HIDDEN NK NV DK DV K] (NV a multiple of NK)\n");
        return 2;
    }
    ck_backend *be;
    char err[256];
    if (ck_backend_create("cpu", 0, &be, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    ck_deltanet_w w = {.hidden = p[0], .nk = p[1], .nv = p[2], .dk = p[3], .dv = p[4], .K = p[5], .eps = 1e-6f};
    size_t hid = w.hidden, kd = w.nk * w.dk, vd = w.nv * w.dv, cd = 2 * kd + vd;
    float s_in = 1.0f / (float)hid, s_out = 1.0f / (float)vd;
    w.qkv = rand_w(cd, hid, s_in * 16), w.z = rand_w(vd, hid, s_in * 16);
    w.b = rand_w(w.nv, hid, s_in * 16), w.a = rand_w(w.nv, hid, s_in * 16);
    w.out = rand_w(hid, vd, s_out * 16);
    w.conv = rand_vec(be, cd * w.K, -0.5f, 0.5f);
    w.A_log = rand_vec(be, w.nv, -2.0f, 2.0f);
    w.dt_bias = rand_vec(be, w.nv, 0.5f, 1.5f);
    w.norm = rand_vec(be, w.dv, 0.5f, 1.5f);

    ck_deltanet_state st;
    ck_deltanet_scratch sc;
    if (ck_deltanet_state_init(be, &w, &st, err, sizeof err) != 0 ||
        ck_deltanet_scratch_init(be, &w, CK_CHUNK, &sc, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const size_t n_prefill = 512, n_decode = 128;
    float *x = rand_vec(be, n_prefill * hid, -1.0f, 1.0f), *y = be->alloc(be, CK_CHUNK * hid * sizeof(float));

    /* one sequence: a span of CK_CHUNK rows for prefill, of one row for decode */
    ck_deltanet_state *stp = &st;
    ck_span chunk = {NULL, 0, CK_CHUNK, 0}, one = {NULL, 0, 1, 0};
    ck_rows rc = {&chunk, 1, CK_CHUNK}, r1 = {&one, 1, 1};
    /* warm-up, then prefill */
    ck_deltanet_forward(be, &w, &rc, &stp, &sc, y, x);
    ck_deltanet_state_reset(be, &w, &st);
    double t0 = now_s();
    for (size_t t = 0; t < n_prefill; t += CK_CHUNK) ck_deltanet_forward(be, &w, &rc, &stp, &sc, y, x + t * hid);
    double prefill_s = now_s() - t0;

    t0 = now_s();
    for (size_t t = 0; t < n_decode; t++) ck_deltanet_forward(be, &w, &r1, &stp, &sc, y, x + (t % n_prefill) * hid);
    double decode_s = now_s() - t0;

    /* the recurrence alone (gated_delta op) over the same prefill and decode shapes, on the scratch
     * left by the last step (values do not matter for timing) */
    ck_gdn_args ga = {
        .q = sc.mixed_c, .k = sc.mixed_c + kd, .v = sc.mixed_c + 2 * kd, .q_stride = cd, .k_stride = cd,
        .v_stride = cd, .g = sc.g, .beta = sc.beta, .state = st.S, .out = sc.o, .T = CK_CHUNK,
        .n_k_heads = w.nk, .n_v_heads = w.nv, .k_head_dim = w.dk, .v_head_dim = w.dv, .l2norm = 1,
        .q_scale = 0.088f,
    };
    t0 = now_s();
    for (size_t t = 0; t < n_prefill; t += CK_CHUNK) be->gated_delta(be, &ga);
    double rec_prefill_s = now_s() - t0;
    ga.T = 1;
    t0 = now_s();
    for (size_t t = 0; t < n_decode; t++) be->gated_delta(be, &ga);
    double rec_decode_s = now_s() - t0;

    double wbytes = (double)((cd + vd + 2 * w.nv) * hid + hid * vd) * 2.0;
    double sbytes = (double)(w.nv * w.dk * w.dv) * 4.0 * 2.0; /* state read + written */
    double bw = read_bw();
    printf("Gated DeltaNet layer: hidden %zu, key heads %zu x %zu, value heads %zu x %zu, conv %zu, bf16 weights\n",
           hid, w.nk, w.dk, w.nv, w.dv, w.K);
    printf("prefill %zu tokens: %.3f ms/token (%.1f tok/s)\n", n_prefill, 1e3 * prefill_s / (double)n_prefill,
           (double)n_prefill / prefill_s);
    printf("decode  %zu tokens: %.3f ms/token (%.1f tok/s)\n", n_decode, 1e3 * decode_s / (double)n_decode,
           (double)n_decode / decode_s);
    printf("  of which the delta-rule recurrence: prefill %.3f ms/token, decode %.3f ms/token\n",
           1e3 * rec_prefill_s / (double)n_prefill, 1e3 * rec_decode_s / (double)n_decode);
    double step_bytes = wbytes + sbytes, dec_s = decode_s / (double)n_decode;
    printf("decode reads %.1f MB/token (weights %.1f MB + state %.1f MB): %.1f GB/s achieved; "
           "measured read bandwidth %.1f GB/s -> roofline %.3f ms/token\n",
           step_bytes / 1e6, wbytes / 1e6, sbytes / 1e6, step_bytes / dec_s / 1e9, bw,
           bw > 0 ? 1e3 * step_bytes / (bw * 1e9) : 0.0);

    ck_deltanet_state_free(be, &st);
    ck_deltanet_scratch_free(be, &sc);
    be->free(be, x);
    be->free(be, y);
    const ck_tensor *ts[] = {&w.qkv, &w.z, &w.b, &w.a, &w.out};
    for (size_t i = 0; i < 5; i++) free((void *)ts[i]->data);
    float *vecs[] = {w.conv, w.A_log, w.dt_bias, w.norm};
    for (size_t i = 0; i < 4; i++) be->free(be, vecs[i]);
    ck_backend_destroy(be);
    return 0;
}
