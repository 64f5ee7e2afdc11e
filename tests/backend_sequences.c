/* backend_sequences.c — test_backend's block-quantized matmuls (against quant.h's integer references) and
 * its op sequences run without syncs against the same ops with a sync after each (what a backend that
 * queues, fuses and replays ops must keep). Shares backend_harness.h with tests/test_backend.c. */
#include "backend_harness.h"

#include "sample/sample.h"
#include "tensor/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- block-quantized weights (tensor/quant.h: Q8_0, Q4_0, Q4_K, Q5_K, Q6_K): the matmul quantizes each
 * activation row to the format's activation blocks and sums integer block sums; the reference is quant.h's
 * scalar dot of the row so quantized. The CPU must match it exactly, another backend within RTOL_GPU of
 * the magnitude sum |w xq xd| (its block sums are added in another order). Rows of the embedding
 * dequantize exactly. ---- */
/* One block-quantized format: its name, block, weight quantization, dequantization, activation format and
 * reference dot product (tensor/quant.h). */
typedef struct qtype {
    const char *name;
    ck_dtype dt;
    size_t block, block_bytes, act; /* values and bytes of a weight block; values of an activation block */
    void (*quantize)(void *dst, const float *x, size_t n);
    void (*dequant)(float *dst, const void *src, size_t n);
    float (*dot)(const void *w, const void *xq, size_t n);
} qtype;

static void test_quant(const qtype *q) {
    /* (then long inputs over few rows, as an attention output projection has, and such a weight over more
     * rows than one GEMV launch takes: several launches' worth of rows batched) */
    struct { size_t T, n_in, n_out; } cs[] = {{1, 256, 1}, {3, 512, 7}, {9, 768, 300}, {1, 1024, 37}, {70, 256, 33},
                                               {8, 3072, 5}, {3, 2048, 300}, {1, 4096, 19}, {20, 2048, 1024}};
    for (size_t c = 0; c < N_OF(cs); c++) {
        size_t T = cs[c].T, n_in = cs[c].n_in, n_out = cs[c].n_out, nb = n_in / q->block, na = n_in / q->act;
        if (q->block == 32 && c < 2) n_in = cs[c].n_in / 8, nb = n_in / 32, na = n_in / 32; /* short rows too */
        snprintf(desc, sizeof desc, "%s T=%zu n_in=%zu n_out=%zu", q->name, T, n_in, n_out);
        float *wf = hrand(n_out * n_in, 1.0f), *x = hrand(T * n_in, 2.0f), *bias = hrand(n_out, 1.0f);
        size_t wbytes = n_out * nb * q->block_bytes;
        void *wq = xmalloc(wbytes), *xq = xmalloc(q->act == 32 ? CK_Q8_ROW_BYTES(na) : CK_Q8K_ROW_BYTES(na));
        float *wd = xmalloc(n_out * n_in * sizeof *wd);
        q->quantize(wq, wf, n_out * n_in);
        q->dequant(wd, wq, n_out * n_in);
        ck_tensor W = {.dtype = q->dt, .ndim = 2, .shape = {n_out, n_in}, .data = wq};
        char err[256] = "";
        if (B->prepare_weight(B, &W, err, sizeof err) != 0) {
            CK_EXPECT(0, "prepare_weight %s: %s", q->name, err);
            free(wf), free(x), free(bias), free(wq), free(xq), free(wd);
            return;
        }
        float *dx = dev(x, T * n_in), *db = dev(bias, n_out), *dy = dev(NULL, T * n_out);
        B->matmul(B, dy, dx, &W, c & 1 ? db : NULL, T);
        synced("matmul quantized");
        float *got = down(dy, T * n_out);
        double *want = dnew(T * n_out), *mag = dnew(T * n_out);
        for (size_t t = 0; t < T; t++) {
            (q->act == 32 ? ck_quantize_q8 : ck_quantize_q8k)(xq, x + t * n_in, n_in);
            const float *xd = xq;
            const int8_t *xs = (const int8_t *)(xd + na);
            for (size_t o = 0; o < n_out; o++) {
                float v = q->dot((const char *)wq + o * nb * q->block_bytes, xq, n_in);
                /* every product of a dequantized weight and a quantized activation, and (a GPU's fast path
                 * multiplying the unquantized activations in f16) the weights times each block's max |x|:
                 * the activations' quantization moves a product by at most xd / 2 */
                double m = 0, mf = 0;
                for (size_t i = 0; i < n_in; i++) {
                    m += fabs((double)wd[o * n_in + i] * xs[i] * xd[i / q->act]);
                    mf += fabs((double)wd[o * n_in + i]) * 127.0 * xd[i / q->act];
                }
                if (!on_cpu && mm_rtol > RTOL) m = fmax(m, 2 * mf);
                if (c & 1) v += bias[o], m += fabs(bias[o]);
                want[t * n_out + o] = v, mag[t * n_out + o] = m;
            }
        }
        if (on_cpu) cmp("matmul quantized", got, want, NULL, T * n_out);
        else cmp("matmul quantized", got, want, mag, T * n_out);
        /* batch invariance: each row alone gives the same bits as in the call of T rows (decode-sized calls
         * on the fast path: a GPU sends longer ones, prefill chunks, to a GEMM over a 16-bit copy) */
        if (T <= 64 || mm_rtol == RTOL) {
            for (size_t t = 0; t < T; t++) B->matmul(B, dy + t * n_out, dx + t * n_in, &W, c & 1 ? db : NULL, 1);
            synced("matmul quantized, one row at a time");
            float *alone = down(dy, T * n_out);
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < T * n_out; i++)
                if (memcmp(&got[i], &alone[i], sizeof(float)) && !bad++) first = i;
            CK_EXPECT(bad == 0, "matmul quantized batch invariance %s: %zu values differ from the row alone, first [%zu]: "
                      "%.9g vs %.9g", desc, bad, first, bad ? got[first] : 0.0, bad ? alone[first] : 0.0);
            free(alone);
        }
        /* embedding rows of the same weight, scaled: the dequantized values exactly */
        int32_t ids[3] = {(int32_t)(n_out - 1), 0, (int32_t)(n_out / 2)};
        float *de = dev(NULL, 3 * n_in);
        B->embed(B, de, &W, ids, 3, 0.5f);
        synced("embed quantized");
        float *ge = down(de, 3 * n_in);
        double *we = dnew(3 * n_in);
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < n_in; j++) we[i * n_in + j] = wd[(size_t)ids[i] * n_in + j] * 0.5f;
        cmp("embed quantized", ge, we, NULL, 3 * n_in);
        B->release_weight(B, &W);
        B->free(B, dx), B->free(B, db), B->free(B, dy), B->free(B, de);
        free(wf), free(x), free(bias), free(wq), free(xq), free(wd), free(got), free(want), free(mag), free(ge), free(we);
    }
}

/* Every block-quantized format the CPU computes; a backend without kernels for one fails its test. */
void test_quant_types(void) {
    static const qtype qs[] = {
        {"q8_0", CK_Q8_0, 32, sizeof(ck_block_q8_0), 32, ck_quantize_q8_0, ck_dequant_q8_0, ck_qdot_q8_0_ref},
        {"q4_0", CK_Q4_0, 32, sizeof(ck_block_q4_0), 32, ck_quantize_q4_0, ck_dequant_q4_0, ck_qdot_q4_0_ref},
        {"q4_k", CK_Q4_K, 256, sizeof(ck_block_q4_k), 256, ck_quantize_q4_k, ck_dequant_q4_k, ck_qdot_q4_k_ref},
        {"q5_k", CK_Q5_K, 256, sizeof(ck_block_q5_k), 256, ck_quantize_q5_k, ck_dequant_q5_k, ck_qdot_q5_k_ref},
        {"q6_k", CK_Q6_K, 256, sizeof(ck_block_q6_k), 256, ck_quantize_q6_k, ck_dequant_q6_k, ck_qdot_q6_k_ref},
    };
    for (size_t i = 0; i < N_OF(qs); i++) test_quant(&qs[i]);
}

/* ---- op sequences without a sync in between ----
 * A backend may run consecutive ops together (the CUDA queue fuses norm + matmul, glu + matmul, matmul +
 * residual add + check_finite, gate/up matmuls + glu, per-head norm + RoPE + KV store, and that with the
 * attention after it). The decode sequences of a layer run here once without syncs and once with a sync
 * after every op; every buffer either run writes must agree within 1e-5 of the buffer's largest value
 * (summation order inside a norm may differ; a race or a reordered write gives errors of the size of the
 * values). T rows 1 and 3, f32, bf16, Q8_0 and Q4_K weights, full and partial rotary dims, in-place GLU, a short
 * context and ones long enough for split-K attention, each sequence three times at later positions (a
 * backend that records a step may replay it, and a fused kernel's counters must be back at zero for the
 * next step). Then a non-finite residual must be reported with its tag. */

typedef struct chain_bufs {
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *og;
    void *kc, *vc;
    int32_t *top;
} chain_bufs;

/* Sequences over an f16 KV cache or quantized weights, and over 16-bit weights on the fast path, compare
 * within this instead: a key whose f32 value differs in its last bit between the two runs (a norm's
 * summation order) may round to the neighbouring f16 value, and so may an activation quantized for an
 * integer GEMV to the neighbouring level, or rounded to 16 bits to meet 16-bit weights. */
static double chain_tol = 1e-5;

static void chain_cmp_h(const char *what, float *a, float *b, size_t n) {
    double mx = 0, worst = 0;
    size_t first = n;
    for (size_t i = 0; i < n; i++) mx = fabs(b[i]) > mx ? fabs(b[i]) : mx;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > worst) worst = e;
        if (!(e <= chain_tol * mx) && first == n) first = i;
    }
    note("fused sequences", mx > 0 ? worst / mx : 0);
    CK_EXPECT(first == n, "fused sequence %s %s: [%zu] %.9g vs %.9g (stepwise), largest |value| %.3g", desc, what,
              first, first < n ? a[first] : 0.0, first < n ? b[first] : 0.0, mx);
    free(a), free(b);
}
static void chain_cmp(const char *what, const float *d1, const float *d2, size_t n) {
    chain_cmp_h(what, down(d1, n), down(d2, n), n);
}

void test_fused_chains(void) {
    struct { size_t T, d, nh, nkv, hd, rot, ffn; int dt; size_t pos0; int kt; } cs[] = {
        {1, 256, 4, 2, 64, 64, 512, CK_BF16, 5, CK_F32}, {3, 256, 4, 2, 64, 32, 512, CK_F32, 5, CK_F32},
        {1, 512, 8, 2, 128, 128, 768, CK_F16, 5, CK_F32}, {1, 256, 4, 1, 64, 32, 512, CK_F32, 700, CK_F32},
        {1, 256, 4, 4, 64, 64, 512, CK_BF16, 600, CK_F32},
        /* over f16 KV caches: a short context, a split-K one, and three rows */
        {1, 256, 4, 2, 64, 64, 512, CK_BF16, 5, CK_F16}, {1, 256, 4, 1, 64, 32, 512, CK_F32, 700, CK_F16},
        {3, 256, 4, 2, 64, 32, 512, CK_BF16, 40, CK_F16},
        /* quantized weights: the integer GEMVs with their prologues and epilogues (GLU as a pair of warps) */
        {1, 256, 4, 2, 64, 64, 512, CK_Q8_0, 5, CK_F32}, {3, 256, 4, 2, 64, 64, 768, CK_Q8_0, 40, CK_F16},
        {1, 256, 4, 2, 64, 64, 512, CK_Q4_K, 5, CK_F32}, {2, 512, 8, 2, 64, 32, 768, CK_Q4_K, 600, CK_F32},
        /* long inputs over few rows: a GPU spreads a row over several warps (with the GLU, the residual) */
        {1, 2048, 8, 2, 64, 64, 512, CK_Q8_0, 5, CK_F32}, {2, 2048, 8, 2, 64, 64, 512, CK_Q4_K, 40, CK_F32},
        {1, 256, 4, 2, 64, 64, 4096, CK_Q8_0, 5, CK_F32}, {3, 256, 4, 2, 64, 64, 4096, CK_Q4_K, 5, CK_F32}};
    for (size_t c = 0; c < N_OF(cs); c++) {
        size_t T = cs[c].T, d = cs[c].d, nh = cs[c].nh, nkv = cs[c].nkv, hd = cs[c].hd, rot = cs[c].rot;
        size_t ffn = cs[c].ffn, qd = nh * hd, kd = nkv * hd, pos0 = cs[c].pos0, cap = pos0 + 27;
        ck_dtype dt = (ck_dtype)cs[c].dt, kt = (ck_dtype)cs[c].kt;
        chain_tol = kt == CK_F16 || ck_dtype_is_quant(dt) || (mm_rtol > RTOL && dt != CK_F32) ? 2e-3 : 1e-5;
        snprintf(desc, sizeof desc, "T=%zu d=%zu heads=%zu/%zu hd=%zu rot=%zu ffn=%zu %s pos=%zu %s cache", T, d, nh,
                 nkv, hd, rot, ffn, ck_dtype_name(dt), pos0, ck_dtype_name(kt));
        hw Wq, Wk, Wv, Wo, Wg, Wu, Wd;
        double *scratch = dnew(ffn * (d > qd ? d : qd));
        weight_new(&Wq, dt, qd, d, scratch), weight_new(&Wk, dt, kd, d, scratch), weight_new(&Wv, dt, kd, d, scratch);
        weight_new(&Wo, dt, d, qd, scratch), weight_new(&Wg, dt, ffn, d, scratch), weight_new(&Wu, dt, ffn, d, scratch);
        weight_new(&Wd, dt, d, ffn, scratch);
        float *hx = hrand(T * d, 1.0f), *hnw = hrand(d, 1.0f), *hqn = hrand(hd, 1.0f), *hkn = hrand(hd, 1.0f);
        float *hkc = hrand(cap * kd, 1.0f), *hatt = hrand(T * qd, 1.0f), *hog = hrand(2 * T * qd, 4.0f);
        int gated = c % 2 == 1; /* an output gate on the attention (Qwen3.5's): sigmoid of every other head row */
        float *dnw = dev(hnw, d), *dqn = dev(hqn, hd), *dkn = dev(hkn, hd);
        int32_t pos[3] = {0};
        double freq[64];
        for (size_t i = 0; i < rot / 2; i++) freq[i] = pow(10000.0, -(double)(2 * i) / (double)rot);
        int32_t *dpos = dev_bytes(pos, T * sizeof *pos);
        double *dfreq = dev_bytes(freq, rot / 2 * sizeof *freq);
        chain_bufs bb[2];
        for (int r = 0; r < 2; r++) {
            chain_bufs *u = &bb[r];
            u->x = dev(hx, T * d), u->xn = dev(NULL, T * d), u->q = dev(NULL, T * qd), u->k = dev(NULL, T * kd);
            u->v = dev(NULL, T * kd), u->kc = dev_kv(hkc, cap * kd, kt), u->vc = dev_kv(hkc, cap * kd, kt);
            u->att = dev(hatt, T * qd), u->og = dev(hog, 2 * T * qd);
            u->gate = dev(NULL, T * ffn), u->up = dev(NULL, T * ffn);
            u->top = dev_bytes(NULL, T * sizeof(int32_t));
        }
        for (int r = 0; r < 2; r++) /* r 0: a sync after each step only; r 1: a sync after every op */
        for (size_t st = 0; st < 3; st++) {
            chain_bufs *u = &bb[r];
            for (size_t t = 0; t < T; t++) pos[t] = (int32_t)(pos0 + 3 * t + 9 * st); /* any rows of the cache */
            B->upload(B, dpos, pos, T * sizeof *pos);
#define STEP(op) do { op; if (r) synced(#op); } while (0)
            STEP(B->rmsnorm(B, u->xn, u->x, dnw, T, d, 1e-6f, 0));
            STEP(B->matmul(B, u->q, u->xn, &Wq.t, NULL, T));
            STEP(B->matmul(B, u->k, u->xn, &Wk.t, NULL, T));
            STEP(B->matmul(B, u->v, u->xn, &Wv.t, NULL, T));
            STEP(B->rmsnorm(B, u->q, u->q, dqn, T * nh, hd, 1e-6f, 0));
            STEP(B->rmsnorm(B, u->k, u->k, dkn, T * nkv, hd, 1e-6f, 0));
            STEP(B->rope(B, u->q, T, nh, hd, rot, dpos, dfreq));
            STEP(B->rope(B, u->k, T, nkv, hd, rot, dpos, dfreq));
            STEP(B->store_rows(B, u->kc, kt, u->k, dpos, T, kd));
            STEP(B->store_rows(B, u->vc, kt, u->v, dpos, T, kd));
            ck_attn_args aa = {.q = u->q, .k_cache = u->kc, .v_cache = u->vc, .kv_dtype = kt, .out = u->att, .pos = dpos, .T = T,
                               .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
                               .keys_max = pos0 + 3 * (T - 1) + 9 * st + 1};
            STEP(B->attention(B, &aa));
            if (gated) STEP(B->sigmoid_mul(B, u->att, u->og + hd, 2 * hd, T * nh, hd));
            STEP(B->matmul(B, u->xn, u->att, &Wo.t, NULL, T));
            STEP(B->add(B, u->x, u->xn, T * d));
            STEP(B->check_finite(B, u->x, T * d, 1));
            STEP(B->rmsnorm(B, u->xn, u->x, dnw, T, d, 1e-6f, 1));
            STEP(B->matmul(B, u->gate, u->xn, &Wg.t, NULL, T));
            STEP(B->matmul(B, u->up, u->xn, &Wu.t, NULL, T));
            STEP(B->glu(B, u->gate, u->gate, u->up, T * ffn, c == 2 ? CK_ACT_GELU_TANH : CK_ACT_SILU));
            STEP(B->matmul(B, u->xn, u->gate, &Wd.t, NULL, T));
            STEP(B->add(B, u->x, u->xn, T * d));
            STEP(B->check_finite(B, u->x, T * d, 2));
            /* an output head: final norm, a matmul whose output is checked on its own, its argmax */
            STEP(B->rmsnorm(B, u->xn, u->x, dnw, T, d, 1e-6f, 0));
            STEP(B->matmul(B, u->up, u->xn, &Wg.t, NULL, T));
            STEP(B->check_finite(B, u->up, T * ffn, 3));
            STEP(B->argmax(B, u->top, u->up, T, ffn));
#undef STEP
            synced("sequence");
        }
        chain_cmp("q", bb[0].q, bb[1].q, T * qd), chain_cmp("k", bb[0].k, bb[1].k, T * kd);
        chain_cmp("v", bb[0].v, bb[1].v, T * kd);
        chain_cmp_h("k cache", down_kv(bb[0].kc, cap * kd, kt), down_kv(bb[1].kc, cap * kd, kt), cap * kd);
        chain_cmp_h("v cache", down_kv(bb[0].vc, cap * kd, kt), down_kv(bb[1].vc, cap * kd, kt), cap * kd);
        chain_cmp("gate", bb[0].gate, bb[1].gate, T * ffn);
        chain_cmp("attention", bb[0].att, bb[1].att, T * qd);
        chain_cmp("xn", bb[0].xn, bb[1].xn, T * d), chain_cmp("x", bb[0].x, bb[1].x, T * d);
        for (int r = 0; r < 2; r++) { /* each run's argmax is that of its own head output */
            float *hl = down(bb[r].up, T * ffn);
            int32_t top[3];
            B->download(B, top, bb[r].top, T * sizeof *top);
            for (size_t t = 0; t < T; t++)
                CK_EXPECT(top[t] == ck_argmax(hl + t * ffn, ffn), "fused sequence %s, run %d: argmax %d, want %d", desc,
                          r, top[t], ck_argmax(hl + t * ffn, ffn));
            free(hl);
        }
        { /* the last step's attention of the run without syncs (fused where the backend fuses) against the
           * reference over what it read: its q rows and the caches (so a new key or value used at another
           * rounding than the cache's shows: about 1e-5 of mag) */
            float *hq = down(bb[0].q, T * qd), *got = down(bb[0].att, T * qd);
            float *hk = down_kv(bb[0].kc, cap * kd, kt), *hv = down_kv(bb[0].vc, cap * kd, kt);
            double *want = dnew(T * qd), *mag = dnew(T * qd);
            ck_attn_args ra = {.q = hq, .pos = pos, .T = T, .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd,
                               .scale = 1.0f / sqrtf((float)hd)};
            attn_ref(&ra, hk, hv, want, mag);
            for (size_t i = 0; gated && i < T * qd; i++) { /* the gate's factor, in float as the backends take it */
                float f = 1.0f / (1.0f + expf(-hog[i / hd * 2 * hd + hd + i % hd]));
                want[i] *= f, mag[i] *= f;
            }
            cmp_rtol("attention (sequence)", got, want, mag, T * qd, 2e-6);
            free(hq), free(got), free(hk), free(hv), free(want), free(mag);
        }
        /* a NaN reaching the residual through a fused epilogue is reported with the check's tag (an infinity
         * for quantized weights: quantizing the activations clamps a NaN to a level, an infinity makes its
         * block's scale infinite) */
        float nanv = ck_dtype_is_quant(dt) ? INFINITY : NAN;
        B->upload(B, bb[0].att + T * qd - 1, &nanv, sizeof nanv);
        B->matmul(B, bb[0].xn, bb[0].att, &Wo.t, NULL, T);
        B->add(B, bb[0].x, bb[0].xn, T * d);
        B->check_finite(B, bb[0].x, T * d, 9);
        int tag = 0;
        char err[256] = "";
        int rc = B->sync(B, &tag, err, sizeof err);
        CK_EXPECT(rc == -1 && tag == 9, "fused sequence %s: NaN in the residual: sync returned %d, tag %d", desc, rc, tag);
        /* ... and one in a matmul's own output (the head's check) */
        B->upload(B, bb[0].xn + T * d - 1, &nanv, sizeof nanv);
        B->matmul(B, bb[0].up, bb[0].xn, &Wg.t, NULL, T);
        B->check_finite(B, bb[0].up, T * ffn, 10);
        B->argmax(B, bb[0].top, bb[0].up, T, ffn);
        rc = B->sync(B, &tag, err, sizeof err);
        CK_EXPECT(rc == -1 && tag == 10, "fused sequence %s: NaN in the head: sync returned %d, tag %d", desc, rc, tag);
        for (int r = 0; r < 2; r++) {
            chain_bufs *u = &bb[r];
            void *all[] = {u->x, u->xn, u->q, u->k, u->v, u->kc, u->vc, u->att, u->gate, u->up, u->top, u->og};
            for (size_t i = 0; i < N_OF(all); i++) B->free(B, all[i]);
        }
        weight_free(&Wq), weight_free(&Wk), weight_free(&Wv), weight_free(&Wo), weight_free(&Wg), weight_free(&Wu);
        weight_free(&Wd);
        B->free(B, dnw), B->free(B, dqn), B->free(B, dkn), B->free(B, dpos), B->free(B, dfreq);
        free(scratch), free(hx), free(hnw), free(hqn), free(hkn), free(hkc), free(hatt), free(hog);
    }
}

/* A Gated DeltaNet layer's decode rows (on a GPU: the gates, conv, delta rule and gated norm of a row as
 * one kernel, with the arithmetic of the four), six rows in turn over carried state, queued three at a time
 * (on a GPU: a graph captured, then replayed) against a sync after every op: every output, the state and
 * the conv's carried inputs are equal, bit for bit. Variants: brk 1 and 2 put an unrelated op
 * into the chain (after the gates, after the conv: the ops taken so far run as they are), brk 3 writes the
 * norm into rows of its own. */
void test_gdn_chain(void) {
    struct { size_t nk, nv, dk, dv, K, d; int brk; } cs[] = {
        {2, 4, 64, 64, 4, 256, 0}, {4, 4, 128, 128, 4, 512, 0}, {1, 3, 40, 20, 3, 96, 0}, {2, 2, 256, 72, 2, 128, 0},
        {1, 1, 32, 8, 1, 64, 0},   {1, 2, 320, 24, 4, 64, 0},   {2, 4, 64, 64, 4, 256, 1}, {2, 4, 64, 64, 4, 256, 2},
        {1, 3, 40, 20, 3, 96, 3},  {1, 1, 640, 8, 4, 64, 0}}; /* (the last: head dims a GPU does not fuse) */
    for (size_t c = 0; c < N_OF(cs); c++) {
        size_t nk = cs[c].nk, nv = cs[c].nv, dk = cs[c].dk, dv = cs[c].dv, K = cs[c].K, d = cs[c].d;
        size_t kd = nk * dk, vd = nv * dv, cd = 2 * kd + vd, sn = nv * dk * dv, cn = (K > 1 ? K - 1 : 1) * cd;
        int brk = cs[c].brk;
        snprintf(desc, sizeof desc, "DeltaNet heads %zu/%zu of %zu/%zu K=%zu d=%zu variant %d", nk, nv, dk, dv, K, d, brk);
        chain_tol = 0;
        hw Wqkv, Wz, Wb, Wa, Wo;
        double *scratch = dnew(cd * (d > vd ? d : vd));
        weight_new(&Wqkv, CK_F32, cd, d, scratch), weight_new(&Wz, CK_F32, vd, d, scratch);
        weight_new(&Wb, CK_F32, nv, d, scratch), weight_new(&Wa, CK_F32, nv, d, scratch);
        weight_new(&Wo, CK_F32, d, vd, scratch);
        float *hx = hrand(6 * d, 0.1f), *hcw = hrand(cd * K, 0.5f), *hAl = hrand(nv, 1.0f), *hdt = hrand(nv, 1.0f);
        float *hnw = hrand(dv, 1.0f), *hcs = hrand(cn, 1.0f), *hS = hrand(sn, 0.1f);
        float *cw = dev(hcw, cd * K), *Al = dev(hAl, nv), *dt = dev(hdt, nv), *nw = dev(hnw, dv);
        struct { float *x, *mixed, *mc, *z, *b, *a, *o, *y, *cst, *S, *other; } u[2];
        for (int r = 0; r < 2; r++) {
            u[r].x = dev(hx, d), u[r].mixed = dev(NULL, cd), u[r].mc = dev(NULL, cd), u[r].z = dev(NULL, vd);
            u[r].b = dev(NULL, nv), u[r].a = dev(NULL, nv), u[r].o = dev(NULL, vd), u[r].y = dev(NULL, vd);
            u[r].cst = dev(hcs, cn), u[r].S = dev(hS, sn), u[r].other = dev(hx, d);
        }
        for (int r = 0; r < 2; r++) /* r 0: a sync after rows 2 and 5; r 1: a sync after every op */
            for (int row = 0; row < 6; row++) {
                float *no = brk == 3 ? u[r].y : u[r].o;
                B->upload(B, u[r].x, hx + row * d, d * sizeof *hx);
#define STEP(op) do { op; if (r) synced(#op); } while (0)
                STEP(B->matmul(B, u[r].mixed, u[r].x, &Wqkv.t, NULL, 1));
                STEP(B->matmul(B, u[r].z, u[r].x, &Wz.t, NULL, 1));
                STEP(B->matmul(B, u[r].b, u[r].x, &Wb.t, NULL, 1));
                STEP(B->matmul(B, u[r].a, u[r].x, &Wa.t, NULL, 1));
                STEP(B->gdn_gates(B, u[r].a, u[r].b, u[r].a, u[r].b, Al, dt, 1, nv));
                if (brk == 1) STEP(B->add(B, u[r].other, u[r].x, d));
                STEP(B->conv1d_causal(B, u[r].mc, u[r].mixed, u[r].cst, cw, 1, cd, K, 1));
                if (brk == 2) STEP(B->add(B, u[r].other, u[r].x, d));
                ck_gdn_args ga = {.q = u[r].mc, .k = u[r].mc + kd, .v = u[r].mc + 2 * kd, .q_stride = cd,
                                  .k_stride = cd, .v_stride = cd, .g = u[r].a, .beta = u[r].b, .state = u[r].S,
                                  .out = u[r].o, .T = 1, .n_k_heads = nk, .n_v_heads = nv, .k_head_dim = dk,
                                  .v_head_dim = dv, .l2norm = 1, .q_scale = 1.0f / sqrtf((float)dk)};
                STEP(B->gated_delta(B, &ga));
                STEP(B->rmsnorm_gated(B, no, u[r].o, u[r].z, nw, nv, dv, 1e-6f));
                STEP(B->matmul(B, u[r].mixed, no, &Wo.t, NULL, 1)); /* (mixed is free again) */
                STEP(B->add(B, u[r].other, u[r].mixed, d));
#undef STEP
                if (row % 3 == 2) synced("DeltaNet rows");
            }
        chain_cmp("conv output", u[0].mc, u[1].mc, cd), chain_cmp("gates", u[0].a, u[1].a, nv);
        chain_cmp("write strengths", u[0].b, u[1].b, nv), chain_cmp("delta output", u[0].o, u[1].o, vd);
        if (brk == 3) chain_cmp("norm output", u[0].y, u[1].y, vd);
        chain_cmp("state", u[0].S, u[1].S, sn), chain_cmp("conv state", u[0].cst, u[1].cst, cn);
        chain_cmp("residual", u[0].other, u[1].other, d);
        for (int r = 0; r < 2; r++) {
            float *all[] = {u[r].x, u[r].mixed, u[r].mc, u[r].z, u[r].b, u[r].a, u[r].o, u[r].y, u[r].cst, u[r].S, u[r].other};
            for (size_t i = 0; i < N_OF(all); i++) B->free(B, all[i]);
        }
        weight_free(&Wqkv), weight_free(&Wz), weight_free(&Wb), weight_free(&Wa), weight_free(&Wo);
        B->free(B, cw), B->free(B, Al), B->free(B, dt), B->free(B, nw);
        free(scratch), free(hx), free(hcw), free(hAl), free(hdt), free(hnw), free(hcs), free(hS);
    }
}
