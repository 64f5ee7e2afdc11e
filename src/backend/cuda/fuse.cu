/* fuse.cu — fusion of consecutive ops in the CUDA backend's queue (see cuda_internal.h): the pending batch
 * absorbs the next op when one kernel can do both with the results and the memory writes of the two
 * launches. The forward pass stays one sequence of backend ops for every backend; only this queue knows
 * which of them a GPU would rather run as one kernel, and it can prove from the ops' byte ranges that a
 * fusion changes nothing but the launch count (the CPU backend runs the same calls one by one).
 * Rules (T <= 8 token rows for the GEMV ones, decode):
 *   rmsnorm (one part, rows = T, row = n_in)  + matmul(s) of its output  -> GEMV with a norm prologue
 *   glu (n = T * n_in)                         + matmul of its output     -> GEMV with a GLU prologue
 *   sigmoid_mul (rows * n = T * n_in)          + matmul of its output     -> GEMV with a gating prologue
 *   matmul(s)                                  + add(y += a part's output) -> GEMV with a residual epilogue
 *   that GEMV                                  + check_finite(y)          -> the epilogue checks y
 *   matmuls gate and up (two parts, one shape) + glu(out, gate, up)       -> GEMV with a GLU epilogue
 *   rmsnorm(s) per head in place / rope(s)     + rope / store_rows        -> one head-row kernel
 *   that head-row kernel (T = 1)               + attention over its stores -> attention with a prologue
 * A fusion is refused (and the pending batch launched as it is) whenever an output of the absorbed op
 * could touch memory the pending op reads or writes, or an input of it could be written by the pending
 * op in a way the fused kernel would order differently. */
#include "backend/cuda/cuda_internal.h"

#define F(x) ((uint64_t)(uintptr_t)(x))
#define HP_MAX_HD 1024 /* head rows the head-row kernel stages in shared memory */

/* The pending batch becomes a GEMV batch of one part p with input producer in. */
static int become_gemv(ck_batch *bt, const uint64_t *compat, const ck_batch_part *p, const ck_fused_in *in) {
    bt->emit = ck_cuda_gemv_emit;
    memcpy(bt->compat, compat, sizeof bt->compat);
    bt->n = 1;
    bt->parts[0] = *p;
    bt->in = *in;
    return 1;
}

/* rmsnorm y = norm(x) (part a: y, x, w, rows; compat: n, eps, one_plus), then a matmul of y. */
static int norm_gemv(ck_backend *b, ck_batch *bt, const uint64_t *compat, const ck_batch_part *p) {
    if (bt->n != 1) return 0;
    const ck_batch_part *q = &bt->parts[0];
    float *y = (float *)q->a[0];
    const float *x = (const float *)q->a[1], *w = (const float *)q->a[2];
    size_t rows = q->a[3], n = bt->compat[0], n_in = compat[1], T = compat[2], bytes = rows * n * sizeof(float);
    if (!compat[3] || p->a[1] != F(y) || n != n_in || rows != T || !ck_cuda_gemv_smem_ok(b, T, n_in)) return 0;
    if (ck_cuda_overlap(p->out, p->out_bytes, x, bytes) || ck_cuda_overlap(p->out, p->out_bytes, y, bytes) ||
        ck_cuda_overlap(p->out, p->out_bytes, w, n * sizeof(float)))
        return 0;
    uint32_t eb = (uint32_t)bt->compat[1];
    ck_fused_in in;
    memset(&in, 0, sizeof in);
    in.kind = CK_IN_NORM, in.a = x, in.b = w, in.a_bytes = bytes, in.b_bytes = n * sizeof(float), in.out = y;
    memcpy(&in.eps, &eb, 4);
    in.flag = (int)bt->compat[2];
    return become_gemv(bt, compat, p, &in);
}

/* glu out = act(gate) * up (part a: out, gate, up, n, gelu), then a matmul of out. */
static int glu_gemv(ck_backend *b, ck_batch *bt, const uint64_t *compat, const ck_batch_part *p) {
    if (bt->n != 1) return 0;
    const ck_batch_part *q = &bt->parts[0];
    float *out = (float *)q->a[0];
    const float *gate = (const float *)q->a[1], *up = (const float *)q->a[2];
    size_t n = q->a[3], n_in = compat[1], T = compat[2], bytes = n * sizeof(float);
    if (!compat[3] || p->a[1] != F(out) || T * n_in != n || !ck_cuda_gemv_smem_ok(b, T, n_in)) return 0;
    if (ck_cuda_overlap(p->out, p->out_bytes, out, bytes) || ck_cuda_overlap(p->out, p->out_bytes, gate, bytes) ||
        ck_cuda_overlap(p->out, p->out_bytes, up, bytes))
        return 0;
    ck_fused_in in;
    memset(&in, 0, sizeof in);
    in.kind = CK_IN_GLU, in.a = gate, in.b = up, in.a_bytes = in.b_bytes = bytes, in.out = out;
    in.flag = (int)q->a[4];
    return become_gemv(bt, compat, p, &in);
}

/* sigmoid_mul y *= sigmoid(g) (part a: y, g, g_stride, rows, n), then a matmul of y: the output apart from y
 * and g, and g apart from y. */
static int sigmul_gemv(ck_backend *b, ck_batch *bt, const uint64_t *compat, const ck_batch_part *p) {
    if (bt->n != 1) return 0;
    const ck_batch_part *q = &bt->parts[0];
    float *y = (float *)q->a[0];
    const float *g = (const float *)q->a[1];
    size_t stride = q->a[2], rows = q->a[3], n = q->a[4], n_in = compat[1], T = compat[2];
    size_t bytes = rows * n * sizeof(float), g_bytes = ((rows - 1) * stride + n) * sizeof(float);
    if (!compat[3] || p->a[1] != F(y) || T * n_in != rows * n || !ck_cuda_gemv_smem_ok(b, T, n_in)) return 0;
    if (ck_cuda_overlap(p->out, p->out_bytes, y, bytes) || ck_cuda_overlap(p->out, p->out_bytes, g, g_bytes) ||
        ck_cuda_overlap(y, bytes, g, g_bytes))
        return 0;
    ck_fused_in in;
    memset(&in, 0, sizeof in);
    in.kind = CK_IN_SIGMUL, in.a = y, in.b = g, in.a_bytes = bytes, in.b_bytes = g_bytes, in.out = y;
    in.row = n, in.stride = stride;
    return become_gemv(bt, compat, p, &in);
}

/* A pending GEMV batch, then add(y += x) with x a part's whole output (part a: y, x, n). */
static int gemv_add(ck_backend *b, ck_batch *bt, const ck_batch_part *p) {
    float *y = (float *)p->a[0];
    size_t n = p->a[2], bytes = n * sizeof(float);
    if (bt->in.closed || !bt->compat[3] || !ck_cuda_gemv_smem_ok(b, bt->compat[2], bt->compat[1])) return 0;
    int hit = -1;
    for (int i = 0; i < bt->n; i++) {
        const ck_batch_part *q = &bt->parts[i];
        if (q->a[0] == p->a[1] && q->out_bytes == bytes) hit = i;
        if (ck_cuda_overlap(y, bytes, q->in, q->in_bytes) || ck_cuda_overlap(y, bytes, q->out, q->out_bytes))
            return 0;
    }
    if (hit < 0 || ck_cuda_overlap(y, bytes, bt->in.a, bt->in.a_bytes) ||
        ck_cuda_overlap(y, bytes, bt->in.b, bt->in.b_bytes))
        return 0;
    bt->parts[hit].a[5] = F(y);
    bt->in.closed = 1;
    return 1;
}

/* A pending GEMV batch of two parts of n_out rows each (gate, up: either order) reading one input (the
 * kernel stages one), then glu(out, gate, up) over their whole outputs (part a: out, gate, up, n, gelu):
 * the GEMV's blocks compute a row of both parts and write out's element from them. out may be gate's or
 * up's range (in place: the element is written after both sums) but must touch nothing else a block of
 * the GEMV reads or writes. */
static int gemv_glu(ck_batch *bt, const ck_batch_part *p) {
    float *out = (float *)p->a[0];
    const float *gate = (const float *)p->a[1], *up = (const float *)p->a[2];
    size_t n = p->a[3], bytes = n * sizeof(float);
    if (bt->n != 2 || bt->in.closed || bt->in.glu_out || !bt->compat[3] || bt->parts[0].a[4] != bt->parts[1].a[4] ||
        bt->parts[0].a[3] || bt->parts[1].a[3] || bt->parts[0].a[1] != bt->parts[1].a[1]) /* one input x */
        return 0;
    int gi = bt->parts[0].a[0] == F(gate) ? 0 : bt->parts[1].a[0] == F(gate) ? 1 : -1;
    if (gi < 0 || bt->parts[1 - gi].a[0] != F(up) || bt->parts[0].out_bytes != bytes || bt->parts[1].out_bytes != bytes)
        return 0;
    for (int i = 0; i < 2; i++) {
        const ck_batch_part *q = &bt->parts[i];
        int same = q->out == (void *)out;
        if (ck_cuda_overlap(out, bytes, q->in, q->in_bytes) || (!same && ck_cuda_overlap(out, bytes, q->out, q->out_bytes)))
            return 0;
    }
    if (ck_cuda_overlap(out, bytes, bt->in.a, bt->in.a_bytes) || ck_cuda_overlap(out, bytes, bt->in.b, bt->in.b_bytes))
        return 0;
    if (gi == 1) { /* gate first */
        ck_batch_part t = bt->parts[0];
        bt->parts[0] = bt->parts[1], bt->parts[1] = t;
    }
    bt->in.glu_out = out, bt->in.glu_gelu = (int)p->a[4];
    bt->in.closed = 1;
    return 1;
}

int ck_cuda_fuse_check(ck_backend *b, const float *x, size_t n, int tag) {
    ck_cuda *c = ck_cu(b);
    ck_batch *bt = &c->batch;
    if (!c->g || !(c->fuse & CK_FUSE_CHECK) || bt->emit != ck_cuda_gemv_emit || bt->in.chk || bt->in.glu_out)
        return 0;
    if (!bt->in.closed) { /* a lone GEMV's own output (the output head's logits): checked as it is stored, by
                             a kernel with the fused epilogues (as for a residual, see gemv_add) */
        const ck_batch_part *q = &bt->parts[0];
        if (bt->n != 1 || q->a[5] || q->a[0] != F(x) || q->out_bytes != n * sizeof(float) || !bt->compat[3] ||
            !ck_cuda_gemv_smem_ok(b, bt->compat[2], bt->compat[1]))
            return 0;
        bt->in.chk = CK_CHK_OUT, bt->in.chk_tag = tag, bt->in.closed = 1;
        return 1;
    }
    for (int i = 0; i < bt->n; i++)
        if (bt->parts[i].a[5] == F(x) && bt->parts[i].out_bytes == n * sizeof(float)) {
            bt->in.chk = CK_CHK_RES, bt->in.chk_tag = tag;
            return 1;
        }
    return 0;
}

/* ---- head rows: norm, rope, store (headprep part a: x, nh, w, rope, cache, 1 for an f16 cache; compat: T,
 * hd, eps bits, one_plus, pos, inv_freq, half, 1 once pos is set) ---- */

static void hp_part(ck_batch_part *d, float *x, size_t T, size_t nh, size_t hd, const float *w, int rope,
                    void *cache, int c16) {
    size_t bytes = T * nh * hd * sizeof(float);
    *d = ck_batch_part{x, bytes, x, bytes, {F(x), nh, F(w), (uint64_t)rope, F(cache), (uint64_t)c16}};
}

/* 1 when [x, +bytes) touches no part's tensor. */
static int hp_disjoint(const ck_batch *bt, const void *x, size_t bytes) {
    for (int i = 0; i < bt->n; i++)
        if (ck_cuda_overlap(x, bytes, bt->parts[i].in, bt->parts[i].in_bytes)) return 0;
    return 1;
}

/* rope part a: x, nh; compat: T, hd, half, pos, inv_freq */
static int hp_rope(ck_batch *bt, const uint64_t *compat, const ck_batch_part *p) {
    size_t T = compat[0], hd = compat[1];
    if (T != bt->compat[0] || hd != bt->compat[1]) return 0;
    if (bt->compat[7] && (bt->compat[4] != compat[3] || bt->compat[5] != compat[4] || bt->compat[6] != compat[2]))
        return 0;
    int hit = -1;
    for (int i = 0; i < bt->n; i++)
        if (bt->parts[i].a[0] == p->a[0] && bt->parts[i].a[1] == p->a[1]) hit = i;
    if (hit >= 0) {
        ck_batch_part *q = &bt->parts[hit];
        if (q->a[3] || q->a[4]) return 0; /* roped twice, or stored before this rope */
        q->a[3] = 1;
    } else {
        if (bt->n == CK_BATCH_MAX || !hp_disjoint(bt, p->in, p->in_bytes)) return 0;
        hp_part(&bt->parts[bt->n++], (float *)p->a[0], T, p->a[1], hd, NULL, 1, NULL, 0);
    }
    bt->compat[4] = compat[3], bt->compat[5] = compat[4], bt->compat[6] = compat[2], bt->compat[7] = 1;
    return 1;
}

/* store part a: cache, src; compat: pos, T, row, 1 for an f16 cache */
static int hp_store(ck_batch *bt, const uint64_t *compat, const ck_batch_part *p) {
    size_t T = compat[1], row = compat[2], hd = bt->compat[1];
    if (T != bt->compat[0] || row % hd || (bt->compat[7] && bt->compat[4] != compat[0])) return 0;
    for (int i = 0; i < bt->n; i++)
        if (bt->parts[i].a[4] == p->a[0]) return 0; /* two stores into one cache: keep their order */
    int hit = -1;
    for (int i = 0; i < bt->n; i++)
        if (bt->parts[i].a[0] == p->a[1] && bt->parts[i].a[1] * hd == row) hit = i;
    if (hit >= 0) {
        if (bt->parts[hit].a[4]) return 0;
        bt->parts[hit].a[4] = p->a[0], bt->parts[hit].a[5] = compat[3];
    } else {
        if (bt->n == CK_BATCH_MAX || !hp_disjoint(bt, p->in, p->in_bytes)) return 0;
        hp_part(&bt->parts[bt->n++], (float *)p->a[1], T, row / hd, hd, NULL, 0, (void *)p->a[0], (int)compat[3]);
    }
    bt->compat[4] = compat[0], bt->compat[7] = 1;
    return 1;
}

/* A pending batch of per-head norms in place (norm part a: y, x, w, rows; compat n, eps, one_plus) or of
 * ropes becomes a head-row batch. */
static int to_headprep(ck_batch *bt, size_t T, size_t hd) {
    ck_batch nb;
    memset(&nb, 0, sizeof nb);
    nb.emit = ck_cuda_headprep_emit;
    nb.compat[0] = T, nb.compat[1] = hd;
    if (T == 0 || hd == 0 || hd > HP_MAX_HD) return 0;
    if (bt->emit == ck_cuda_rmsnorm_emit) {
        if (bt->compat[0] != hd) return 0;
        nb.compat[2] = bt->compat[1], nb.compat[3] = bt->compat[2];
        for (int i = 0; i < bt->n; i++) {
            const ck_batch_part *q = &bt->parts[i];
            size_t rows = q->a[3];
            if (q->a[0] != q->a[1] || rows % T) return 0;
            hp_part(&nb.parts[nb.n++], (float *)q->a[0], T, rows / T, hd, (const float *)q->a[2], 0, NULL, 0);
        }
    } else { /* ropes: part a x, nh; compat T, hd, half, pos, inv_freq */
        if (bt->compat[0] != T || bt->compat[1] != hd) return 0;
        nb.compat[4] = bt->compat[3], nb.compat[5] = bt->compat[4], nb.compat[6] = bt->compat[2], nb.compat[7] = 1;
        for (int i = 0; i < bt->n; i++)
            hp_part(&nb.parts[nb.n++], (float *)bt->parts[i].a[0], T, bt->parts[i].a[1], hd, NULL, 1, NULL, 0);
    }
    *bt = nb;
    return 1;
}

/* A pending head-row batch of one row (T = 1) whose parts are q (x = a->q, no store) and the k and v rows
 * stored into a's caches (of a's cache type) at a's positions, then a's attention: every part's rows are those the attention
 * reads. The attention's output must not touch a part's rows (they are written back while other blocks
 * write their outputs) nor the caches, and k and v rows must not touch q's. */
int ck_cuda_fuse_attention(ck_backend *b, const ck_attn_args *a, ck_attn_prep *pp) {
    ck_cuda *c = ck_cu(b);
    ck_batch *bt = &c->batch;
    size_t hd = a->head_dim, out_bytes = a->n_heads * hd * sizeof(float);
    if (!(c->fuse & CK_FUSE_ATTN) || bt->emit != ck_cuda_headprep_emit || a->T != 1 || bt->compat[0] != 1 ||
        a->n_heads + a->n_kv_heads > CK_ATTN_PREP_HEADS ||
        bt->compat[1] != hd || !bt->compat[7] || bt->compat[4] != F(a->pos))
        return 0;
    memset(pp, 0, sizeof *pp);
    for (int i = 0; i < bt->n; i++) {
        const ck_batch_part *q = &bt->parts[i];
        float *x = (float *)q->a[0];
        const void *cache = (const void *)q->a[4];
        int k = cache == NULL && x == a->q ? 0 : cache == a->k_cache ? 1 : cache == a->v_cache ? 2 : -1;
        size_t bytes = q->a[1] * hd * sizeof(float);
        if (k < 0 || pp->x[k] || q->a[1] != (k ? a->n_kv_heads : a->n_heads) ||
            (k && q->a[5] != (uint64_t)(a->kv_dtype == CK_F16)) ||
            ck_cuda_overlap(a->out, out_bytes, x, bytes) || (k && ck_cuda_overlap(a->q, out_bytes, x, bytes)))
            return 0;
        for (int j = 0; j < i; j++) /* the parts' rows are apart (they are written back independently) */
            if (ck_cuda_overlap((const void *)bt->parts[j].a[0], bt->parts[j].a[1] * hd * sizeof(float), x, bytes))
                return 0;
        pp->x[k] = x, pp->w[k] = (const float *)q->a[2], pp->rope[k] = (int)q->a[3];
    }
    /* a cache is its own allocation: its first byte stands for it (as in ck_cuda_store_rows) */
    if (!pp->x[1] || !pp->x[2] || (const void *)a->out == a->k_cache || (const void *)a->out == a->v_cache) return 0;
    uint32_t eb = (uint32_t)bt->compat[2];
    memcpy(&pp->eps, &eb, 4);
    pp->one_plus = (int)bt->compat[3], pp->half = (int)bt->compat[6];
    pp->inv_freq = (const double *)bt->compat[5];
    pp->counter = c->counter + 1;
    bt->emit = NULL, bt->n = 0;
    memset(&bt->in, 0, sizeof bt->in);
    return 1;
}

int ck_cuda_fuse(ck_backend *b, ck_batch_emit_fn emit, const uint64_t *compat, const ck_batch_part *p) {
    ck_batch *bt = &ck_cu(b)->batch;
    ck_batch save = *bt;
    int ok = 0, on = ck_cu(b)->fuse;
    if (emit == ck_cuda_gemv_emit) {
        if (bt->emit == ck_cuda_rmsnorm_emit && (on & CK_FUSE_NORM)) ok = norm_gemv(b, bt, compat, p);
        else if (bt->emit == ck_cuda_glu_emit && (on & CK_FUSE_GLU)) ok = glu_gemv(b, bt, compat, p);
        else if (bt->emit == ck_cuda_sigmoid_mul_emit && (on & CK_FUSE_SIGMUL)) ok = sigmul_gemv(b, bt, compat, p);
    } else if (emit == ck_cuda_glu_emit) {
        if (bt->emit == ck_cuda_gemv_emit && (on & CK_FUSE_GLU_EPI)) ok = gemv_glu(bt, p);
    } else if (emit == ck_cuda_add_emit) {
        if (bt->emit == ck_cuda_gemv_emit && (on & CK_FUSE_RESIDUAL)) ok = gemv_add(b, bt, p);
    } else if (!(on & CK_FUSE_HEADS)) {
    } else if (emit == ck_cuda_rope_emit) {
        if (bt->emit == ck_cuda_rmsnorm_emit) ok = to_headprep(bt, compat[0], compat[1]) && hp_rope(bt, compat, p);
        else if (bt->emit == ck_cuda_headprep_emit) ok = hp_rope(bt, compat, p);
    } else if (emit == ck_cuda_store_emit) {
        if (bt->emit == ck_cuda_rope_emit)
            ok = bt->compat[3] == compat[0] && to_headprep(bt, bt->compat[0], bt->compat[1]) && hp_store(bt, compat, p);
        else if (bt->emit == ck_cuda_headprep_emit) ok = hp_store(bt, compat, p);
    }
    if (!ok) *bt = save; /* a conversion that failed half way leaves the batch as it was */
    return ok;
}
