/* forward.c — sequences, workspaces and the shared forward pass (see model.h): input (embedding or a
 * hidden state) -> the family's block per layer of the range -> hidden state out and/or final norm +
 * output head, in chunks of m->chunk rows (CK_CHUNK, or more where the backend asks) so that prefill and
 * decode run through the same code and decode allocates nothing once the KV caches have grown. */
#include "base/err.h"
#include "model/family.h"
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- sequences ---- */

static size_t kv_row_values(const ck_model *m) { return (size_t)m->cfg.n_kv_heads * (size_t)m->cfg.head_dim; }

static int has_kv(const ck_model *m, int64_t l) { return ck_model_has_layer(m, l) && !(m->no_kv && m->no_kv[l]); }

size_t ck_model_kv_bytes(const ck_model *m) {
    size_t n = 0;
    for (int64_t l = m->range.first; l <= m->range.last; l++) n += has_kv(m, l);
    return n * 2 * kv_row_values(m) * ck_kv_bytes(m->kv_dtype);
}

int ck_seq_init(ck_seq *s, const ck_model *m, size_t max_ctx, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->max_ctx = max_ctx;
    size_t bytes, row = kv_row_values(m) * ck_kv_bytes(m->kv_dtype);
    if (max_ctx == 0 || max_ctx > INT32_MAX || ck_mul_size(max_ctx, row, &bytes) != 0)
        return ck_err(err, errlen, "context size %zu out of range", max_ctx);
    s->kv = calloc((size_t)m->cfg.n_layers, sizeof *s->kv);
    if (!s->kv) return ck_err(err, errlen, "out of memory");
    if (m->family->seq_init && m->family->seq_init(m, s, err, errlen) != 0) {
        ck_seq_free(s);
        return -1;
    }
    return 0;
}

void ck_seq_free(ck_seq *s) {
    if (!s->m) return;
    ck_backend *be = s->m->be;
    if (s->m->family->seq_free) s->m->family->seq_free(s->m, s);
    for (size_t l = 0; s->kv && l < (size_t)s->m->cfg.n_layers; l++) {
        if (s->kv[l].k) be->free(be, s->kv[l].k);
        if (s->kv[l].v) be->free(be, s->kv[l].v);
    }
    free(s->kv);
    memset(s, 0, sizeof *s);
}

void ck_seq_reset(ck_seq *s) {
    if (s->m->family->seq_reset) s->m->family->seq_reset(s->m, s);
    s->pos = 0;
    s->broken = 0;
    memset(&s->stats, 0, sizeof s->stats);
}

void ck_seq_truncate(ck_seq *s, size_t pos) {
    if (pos > s->pos) pos = s->pos;
    if (s->m->recurrent && (pos < s->pos || s->broken)) {
        ck_seq_reset(s); /* recurrent state cannot rewind: start over, the caller replays */
        return;
    }
    s->pos = pos;
    s->broken = 0;
}

/* Grows one layer's cache to hold at least `need` positions, keeping the first s->pos. */
static int kv_grow(ck_seq *s, ck_layer_kv *kv, size_t need) {
    ck_backend *be = s->m->be;
    size_t cap = kv->cap ? kv->cap : CK_KV_MIN, row = kv_row_values(s->m) * ck_kv_bytes(s->m->kv_dtype);
    while (cap < need) cap = cap > s->max_ctx / 2 ? s->max_ctx : cap * 2;
    if (cap > s->max_ctx) cap = s->max_ctx;
    void *k = be->alloc(be, cap * row), *v = be->alloc(be, cap * row);
    if (!k || !v) {
        if (k) be->free(be, k);
        if (v) be->free(be, v);
        return -1;
    }
    if (kv->k) {
        be->copy(be, k, kv->k, s->pos * row);
        be->copy(be, v, kv->v, s->pos * row);
        be->free(be, kv->k);
        be->free(be, kv->v);
    }
    kv->k = k, kv->v = v, kv->cap = cap;
    return 0;
}

/* Makes every KV cache of the range hold `need` positions. */
static int seq_reserve(ck_seq *s, size_t need, char *err, size_t errlen) {
    for (int64_t l = s->m->range.first; l <= s->m->range.last; l++)
        if (has_kv(s->m, l) && s->kv[l].cap < need && kv_grow(s, &s->kv[l], need) != 0)
            return ck_err(err, errlen, "out of memory growing the KV cache to %zu positions", need);
    return 0;
}

/* ---- workspaces ---- */

int ck_ws_init(ck_ws *w, const ck_model *m, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    w->m = m;
    const ck_config *c = &m->cfg;
    ck_backend *be = m->be;
    size_t d = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    size_t qd = (size_t)c->n_heads * hd, kd = (size_t)c->n_kv_heads * hd, ffn = m->max_ffn;
    size_t R = m->chunk;
    struct { float **p; size_t floats; } bufs[] = {
        {&w->x, R * d}, {&w->xn, R * d}, {&w->q, R * qd}, {&w->k, R * kd},
        {&w->v, R * kd}, {&w->att, R * qd}, {&w->gate, R * ffn}, {&w->up, R * ffn},
        {&w->qg, m->attn_out_gate ? R * 2 * qd : 0},
        {&w->logits, m->range.head ? CK_HEAD_ROWS * (size_t)c->vocab_size : 0},
    };
    int ok = 1;
    for (size_t i = 0; ok && i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i].floats) ok = (*bufs[i].p = be->alloc(be, bufs[i].floats * sizeof(float))) != NULL;
    w->pos = be->alloc(be, R * sizeof *w->pos);
    if (m->range.head) ok = ok && (w->top = be->alloc(be, CK_HEAD_ROWS * sizeof *w->top)) != NULL;
    w->host_pos = malloc(R * sizeof *w->host_pos);
    if (!ok || !w->pos || !w->host_pos) {
        ck_ws_free(w);
        return ck_err(err, errlen, "out of memory for the forward scratch");
    }
    if (m->family->ws_init && m->family->ws_init(m, w, err, errlen) != 0) {
        ck_ws_free(w);
        return -1;
    }
    return 0;
}

void ck_ws_free(ck_ws *w) {
    if (!w->m) return;
    ck_backend *be = w->m->be;
    if (w->m->family->ws_free) w->m->family->ws_free(w->m, w);
    void *bufs[] = {w->x, w->xn, w->q, w->k, w->v, w->att, w->gate, w->up, w->qg, w->logits, w->top, w->pos};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) be->free(be, bufs[i]);
    free(w->host_pos);
    memset(w, 0, sizeof *w);
}

/* ---- the forward pass ---- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void capture(const ck_model *m, ck_seq *s, size_t slot, const float *x, size_t row0, size_t T) {
    size_t d = (size_t)m->cfg.hidden_size;
    if (!s->capture || row0 + T > s->capture_rows) return;
    m->be->download(m->be, s->capture + (slot * s->capture_rows + row0) * d, x, T * d * sizeof(float));
}

/* Positions of the rows of r into w->pos. */
static void upload_positions(const ck_model *m, ck_ws *w, const ck_rows *r) {
    for (size_t i = 0; i < r->n_spans; i++)
        for (size_t t = 0; t < r->spans[i].n; t++) w->host_pos[r->spans[i].row0 + t] = (int32_t)(r->spans[i].pos0 + t);
    m->be->upload(m->be, w->pos, w->host_pos, r->T * sizeof *w->host_pos);
}

/* The output head of k <= CK_HEAD_ROWS normed rows x into w->logits; with `top`, the index of each row's
 * largest logit too, in w->host_top once the backend has synced. */
static void head_logits(const ck_model *m, ck_ws *w, const float *x, size_t k, int top) {
    ck_backend *be = m->be;
    size_t V = (size_t)m->cfg.vocab_size;
    be->matmul(be, w->logits, x, &m->lm_head, NULL, k);
    be->check_finite(be, w->logits, k * V, CK_TAG_HEAD);
    if (!top) return;
    be->argmax(be, w->top, w->logits, k, V);
    be->download(be, w->host_top, w->top, k * sizeof *w->top);
}

/* Final norm and output head for rows [r0, r0+n) of w->x: logits rows land in out (host) and the indices
 * of their largest in top (host), each unless NULL. */
static void head(const ck_model *m, ck_ws *w, size_t r0, size_t n, float *out, int32_t *top) {
    size_t d = (size_t)m->cfg.hidden_size, V = (size_t)m->cfg.vocab_size;
    m->be->rmsnorm(m->be, w->xn + r0 * d, w->x + r0 * d, m->final_norm, n, d, (float)m->cfg.rms_eps,
                   m->final_norm_one_plus);
    for (size_t i = 0; (out || top) && i < n; i += CK_HEAD_ROWS) {
        size_t k = n - i < CK_HEAD_ROWS ? n - i : CK_HEAD_ROWS;
        head_logits(m, w, w->xn + (r0 + i) * d, k, top != NULL);
        if (out) m->be->download(m->be, out + i * V, w->logits, k * V * sizeof(float));
        if (top) memcpy(top + i, w->host_top, k * sizeof *top);
    }
}

/* Rows in the memory of in_be (NULL: host) can be loaded into m's workspace (load_rows). */
static int check_rows_in(const ck_model *m, const ck_backend *in_be, char *err, size_t errlen) {
    if (in_be && in_be != m->be && (!m->be->copy_peer || in_be->copy_peer != m->be->copy_peer))
        return ck_err(err, errlen, "internal: rows in another backend's memory without a direct copy");
    return 0;
}

static int check_fwd(const ck_model *m, const ck_seq *s, const ck_fwd *f, char *err, size_t errlen) {
    size_t V = (size_t)m->cfg.vocab_size;
    if (f->n == 0) return ck_err(err, errlen, "no tokens to run");
    if (!f->ids == !f->hidden_in) return ck_err(err, errlen, "internal: give either token ids or a hidden state");
    if (check_rows_in(m, f->in_be, err, errlen) != 0) return -1;
    if (f->ids && !m->range.embed) return ck_err(err, errlen, "this engine does not hold the embedding");
    if ((f->logits || f->top) && !m->range.head) return ck_err(err, errlen, "this engine does not hold the output head");
    if (f->run_layers && s->broken)
        return ck_err(err, errlen, "the sequence was left undefined by a failed forward; truncate or reset it");
    if (f->run_layers && f->n > s->max_ctx - s->pos)
        return ck_err(err, errlen, "context full: %zu positions held, %zu more requested, %zu available", s->pos,
                      f->n, s->max_ctx);
    for (size_t i = 0; f->ids && i < f->n; i++)
        if (f->ids[i] < 0 || (size_t)f->ids[i] >= V)
            return ck_err(err, errlen, "token id %d out of range (vocabulary %zu)", f->ids[i], V);
    return 0;
}

/* The error of a failed chunk, naming where a non-finite value first appeared. */
static int chunk_error(const ck_model *m, int tag, const char *why, char *err, size_t errlen) {
    switch (tag) {
    case CK_TAG_NONE: return ck_err(err, errlen, "%s backend: %s", m->be->name, why);
    case CK_TAG_INPUT: return ck_err(err, errlen, "the input hidden state holds a %s", why);
    case CK_TAG_EMBED: return ck_err(err, errlen, "the embedding produced a %s (NaN or Inf in the weights?)", why);
    case CK_TAG_HEAD: return ck_err(err, errlen, "the output head produced a %s in the logits", why);
    default: return ck_err(err, errlen, "layer %d produced a %s (NaN or Inf in its weights?)", tag, why);
    }
}

/* The range's layers over the rows of r in w->x; captures each layer's input for the test hook when
 * `cap` (a single-sequence forward, rows from c0 of the call). */
static void run_layers(const ck_model *m, const ck_rows *r, ck_ws *w, ck_seq *cap, size_t c0) {
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size;
    upload_positions(m, w, r);
    for (int64_t l = m->range.first; l <= m->range.last; l++) {
        m->family->layer(m, r, w, (size_t)l);
        be->check_finite(be, w->x, r->T * d, (int)l);
        if (cap && l + 1 < m->cfg.n_layers) capture(m, cap, (size_t)l + 1, w->x, c0, r->T);
    }
}

/* T rows of hidden state into w->x: host memory (in_be NULL), this backend's, or another instance's. */
static void load_rows(const ck_model *m, ck_ws *w, const float *src, ck_backend *in_be, size_t T) {
    ck_backend *be = m->be;
    size_t bytes = T * (size_t)m->cfg.hidden_size * sizeof(float);
    if (!in_be) be->upload(be, w->x, src, bytes);
    else if (in_be == be) be->copy(be, w->x, src, bytes);
    else be->copy_peer(be, w->x, in_be, src, bytes);
    be->check_finite(be, w->x, T * (size_t)m->cfg.hidden_size, CK_TAG_INPUT);
}

/* Rows [c0, c0 + T) of the forward; returns the backend's verdict. */
static int run_chunk(const ck_model *m, ck_seq *s, ck_ws *w, const ck_fwd *f, size_t c0, size_t T, char *err,
                     size_t errlen) {
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size, V = (size_t)m->cfg.vocab_size;
    double t0 = now_s();
    if (f->ids) {
        be->embed(be, w->x, &m->embed, f->ids + c0, T, m->embed_scale);
        be->check_finite(be, w->x, T * d, CK_TAG_EMBED);
        capture(m, s, 0, w->x, c0, T);
    } else {
        load_rows(m, w, f->hidden_in + c0 * d, f->in_be, T);
    }
    double t1 = now_s();
    if (f->run_layers && m->range.last >= m->range.first) {
        ck_span span = {s, 0, T, s->pos};
        ck_rows rows = {&span, 1, T};
        run_layers(m, &rows, w, s, c0);
        s->pos += T;
    }
    if (f->hidden_out) (f->out_dev ? be->copy : be->download)(be, f->hidden_out + c0 * d, w->x, T * d * sizeof(float));
    double t2 = now_s();
    int last_chunk = c0 + T == f->n;
    int want = f->logits || f->top;
    if (m->range.head && (f->all || s->capture)) {
        head(m, w, 0, T, f->all && f->logits ? f->logits + c0 * V : NULL, f->all && f->top ? f->top + c0 : NULL);
        capture(m, s, (size_t)m->cfg.n_layers, w->xn, c0, T);
        if (!f->all && want && last_chunk) head(m, w, T - 1, 1, f->logits, f->top);
    } else if (last_chunk && want) {
        head(m, w, T - 1, 1, f->logits, f->top);
    }
    int tag;
    char why[256];
    int rc = be->sync(be, &tag, why, sizeof why);
    s->stats.embed_s += t1 - t0;
    s->stats.layers_s += t2 - t1;
    s->stats.head_s += now_s() - t2;
    return rc == 0 ? 0 : chunk_error(m, tag, why, err, errlen);
}

int ck_model_forward(const ck_model *m, ck_seq *s, ck_ws *w, const ck_fwd *f, char *err, size_t errlen) {
    if (check_fwd(m, s, f, err, errlen) != 0) return -1;
    if (f->run_layers && seq_reserve(s, s->pos + f->n, err, errlen) != 0) return -1;
    size_t start = s->pos;
    for (size_t c0 = 0; c0 < f->n; c0 += m->chunk) {
        size_t T = f->n - c0 < m->chunk ? f->n - c0 : m->chunk;
        if (run_chunk(m, s, w, f, c0, T, err, errlen) != 0) {
            s->pos = start;
            s->broken |= f->run_layers;
            return -1;
        }
    }
    return 0;
}

/* The checks of a batch: a whole model, distinct healthy sequences with room, valid ids, <= CK_CHUNK rows. */
static int check_batch(const ck_model *m, const ck_batch_in *in, size_t n_in, const ck_batch_io *io, char *err,
                       size_t errlen) {
    size_t rows = 0;
    int whole = m->range.embed && m->range.head && m->range.first == 0 && m->range.last == m->cfg.n_layers - 1;
    if (!io && !whole) return ck_err(err, errlen, "a batch needs an engine holding the whole model");
    if (io && !io->rows_in && !m->range.embed) return ck_err(err, errlen, "this engine does not hold the embedding");
    if (io && check_rows_in(m, io->in_be, err, errlen) != 0) return -1;
    for (size_t i = 0; i < n_in; i++)
        if ((in[i].logits || in[i].top) && !m->range.head)
            return ck_err(err, errlen, "this engine does not hold the output head");
    for (size_t i = 0; i < n_in; i++) {
        const ck_seq *s = in[i].s;
        if (s->m != m) return ck_err(err, errlen, "internal: a sequence of another model in the batch");
        if (s->broken) return ck_err(err, errlen, "the sequence was left undefined by a failed forward; truncate or reset it");
        if (in[i].n == 0 || ((!io || io->layers) && in[i].n > s->max_ctx - s->pos))
            return ck_err(err, errlen, "context full: %zu positions held, %zu more requested, %zu available", s->pos,
                          in[i].n, s->max_ctx);
        for (size_t t = 0; (!io || !io->rows_in) && t < in[i].n; t++)
            if (in[i].ids[t] < 0 || in[i].ids[t] >= m->cfg.vocab_size)
                return ck_err(err, errlen, "token id %d out of range (vocabulary %lld)", in[i].ids[t],
                              (long long)m->cfg.vocab_size);
        for (size_t j = 0; j < i; j++)
            if (in[j].s == s) return ck_err(err, errlen, "a sequence appears twice in one batch");
        rows += in[i].n;
    }
    if (n_in == 0 || rows > CK_CHUNK) return ck_err(err, errlen, "a batch holds 1 to %d rows (got %zu)", CK_CHUNK, rows);
    return 0;
}

/* Final norm and output head of the rows idx[0..n) of w->x: row idx[i]'s logits into out[i] and the index
 * of their largest into top[i] (host), each unless NULL. */
static void head_rows(const ck_model *m, ck_ws *w, const int32_t *idx, size_t n, float *const *out,
                      int32_t *const *top) {
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size, V = (size_t)m->cfg.vocab_size;
    be->gather_rows(be, w->xn, w->x, idx, n, d);
    be->rmsnorm(be, w->xn, w->xn, m->final_norm, n, d, (float)m->cfg.rms_eps, m->final_norm_one_plus);
    for (size_t i = 0; i < n; i += CK_HEAD_ROWS) {
        size_t k = n - i < CK_HEAD_ROWS ? n - i : CK_HEAD_ROWS;
        int any_top = 0;
        for (size_t j = 0; j < k; j++) any_top |= top[i + j] != NULL;
        head_logits(m, w, w->xn + i * d, k, any_top);
        for (size_t j = 0; j < k; j++) {
            if (out[i + j]) be->download(be, out[i + j], w->logits + j * V, V * sizeof(float));
            if (top[i + j]) *top[i + j] = w->host_top[j];
        }
    }
}

int ck_model_batch(const ck_model *m, const ck_batch_in *in, size_t n_in, const ck_batch_io *io, ck_ws *w, char *err,
                   size_t errlen) {
    if (check_batch(m, in, n_in, io, err, errlen) != 0) return -1;
    int layers = !io || io->layers;
    for (size_t i = 0; layers && i < n_in; i++)
        if (seq_reserve(in[i].s, in[i].s->pos + in[i].n, err, errlen) != 0) return -1;
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size, T = 0, n_out = 0;
    ck_span spans[CK_CHUNK];
    int32_t ids[CK_CHUNK], idx[CK_CHUNK];
    float *out[CK_CHUNK];
    int32_t *top[CK_CHUNK];
    for (size_t i = 0; i < n_in; i++) {
        spans[i] = (ck_span){in[i].s, T, in[i].n, in[i].s->pos};
        if (!io || !io->rows_in) memcpy(ids + T, in[i].ids, in[i].n * sizeof *ids);
        T += in[i].n;
        if (in[i].logits || in[i].top) idx[n_out] = (int32_t)(T - 1), out[n_out] = in[i].logits, top[n_out++] = in[i].top;
    }
    ck_rows rows = {spans, n_in, T};
    double t0 = now_s();
    if (io && io->rows_in) {
        load_rows(m, w, io->rows_in, io->in_be, T);
    } else {
        be->embed(be, w->x, &m->embed, ids, T, m->embed_scale);
        be->check_finite(be, w->x, T * d, CK_TAG_EMBED);
    }
    double t1 = now_s();
    if (layers && m->range.last >= m->range.first) run_layers(m, &rows, w, NULL, 0);
    if (io && io->rows_out) (io->out_dev ? be->copy : be->download)(be, io->rows_out, w->x, T * d * sizeof(float));
    double t2 = now_s();
    if (n_out) head_rows(m, w, idx, n_out, out, top);
    int tag;
    char why[256];
    int rc = be->sync(be, &tag, why, sizeof why);
    double t3 = now_s();
    for (size_t i = 0; i < n_in; i++) {
        in[i].s->broken |= rc != 0 && layers;
        if (rc == 0 && layers) in[i].s->pos += in[i].n;
        in[i].s->stats.embed_s += t1 - t0;
        in[i].s->stats.layers_s += t2 - t1;
        in[i].s->stats.head_s += t3 - t2;
    }
    return rc == 0 ? 0 : chunk_error(m, tag, why, err, errlen);
}
