/* model.c — loading a checkpoint into a ck_model and the shared forward pass: embed -> the family's
 * block per layer -> final norm -> output head, in chunks of CK_CHUNK rows so that prefill and decode
 * run through the same code and decode allocates nothing. Invariant: s->pos counts the positions held in
 * every layer's cache; a forward either completes or fails before touching the state. */
#include "model/model.h"
#include "base/err.h"
#include "model/family.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const ck_family *const families[] = {&ck_family_dense, &ck_family_qwen35};

const char *ck_model_supported(void) {
    static char list[1024];
    if (!list[0])
        for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
            for (const char *const *a = families[f]->archs; *a; a++) {
                size_t n = strlen(list);
                snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", *a);
            }
    return list;
}

static const ck_family *find_family(const char *arch) {
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const char *const *a = families[f]->archs; *a; a++)
            if (!strcmp(*a, arch)) return families[f];
    return NULL;
}

int ck_model_tensor(ck_model *m, const char *name, int optional, ck_tensor *t, int ndim, const uint64_t *dims,
                    char *err, size_t errlen) {
    int found = ck_weights_find(&m->weights, name, t, err, errlen);
    if (found < 0) return -1;
    if (!found) {
        if (optional) return 0;
        return ck_err(err, errlen, "tensor '%s' is missing from the checkpoint", name);
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == dims[i];
    if (!ok) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "", (unsigned long long)t->shape[i]);
        return ck_err(err, errlen, "tensor '%s' has shape [%s] but config.json implies [%s]", name, got, want);
    }
    if (m->be->prepare_weight(m->be, t, err, errlen) != 0) return -1;
    return 1;
}

int ck_model_vector(ck_model *m, const char *name, int optional, size_t n, float **out, char *err, size_t errlen) {
    ck_tensor t;
    *out = NULL;
    int found = ck_weights_find(&m->weights, name, &t, err, errlen);
    if (found < 0) return -1;
    if (!found) return optional ? 0 : ck_err(err, errlen, "tensor '%s' is missing from the checkpoint", name);
    if (ck_tensor_numel(&t) != n)
        return ck_err(err, errlen, "tensor '%s' has %llu elements but config.json implies %zu", name,
                      (unsigned long long)ck_tensor_numel(&t), n);
    float *host = malloc(n * sizeof *host);
    *out = m->be->alloc(m->be, n * sizeof **out);
    if (!host || !*out) {
        free(host);
        return ck_err(err, errlen, "out of memory");
    }
    ck_to_f32(host, t.data, t.dtype, n);
    m->be->upload(m->be, *out, host, n * sizeof *host);
    free(host);
    return 0;
}

int ck_model_load_head(ck_model *m, const char *prefix, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    uint64_t ed[2] = {(uint64_t)c->vocab_size, (uint64_t)c->hidden_size};
    char name[192];
    snprintf(name, sizeof name, "%sembed_tokens.weight", prefix);
    if (ck_model_tensor(m, name, 0, &m->embed, 2, ed, err, errlen) < 0) return -1;
    int found = ck_model_tensor(m, "lm_head.weight", c->tie_embeddings, &m->lm_head, 2, ed, err, errlen);
    if (found < 0) return -1;
    if (found == 0) m->lm_head = m->embed;
    snprintf(name, sizeof name, "%snorm.weight", prefix);
    return ck_model_vector(m, name, 0, (size_t)c->hidden_size, &m->final_norm, err, errlen);
}

int ck_model_load(const char *dir, ck_backend *be, ck_model *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->be = be;
    if (ck_config_load(dir, &m->cfg, err, errlen) != 0) return -1;
    m->family = find_family(m->cfg.arch);
    if (!m->family) {
        int rc = ck_err(err, errlen, "architecture '%s' is not supported; supported: %s", m->cfg.arch,
                        ck_model_supported());
        ck_config_free(&m->cfg);
        return rc;
    }
    if (m->cfg.head_dim > 1024 || m->cfg.hidden_size > (1 << 16) || m->cfg.n_layers > 4096) {
        ck_config_free(&m->cfg);
        return ck_err(err, errlen, "config.json: sizes out of the supported range");
    }
    m->embed_scale = 1.0f;
    m->attn_scale = (float)(1.0 / sqrt((double)m->cfg.head_dim));
    m->max_ffn = m->cfg.intermediate_size > 0 ? (size_t)m->cfg.intermediate_size : 0;
    if (ck_weights_open(dir, &m->weights, err, errlen) != 0) {
        ck_config_free(&m->cfg);
        return -1;
    }
    if (m->family->load(m, err, errlen) != 0) {
        ck_model_free(m);
        return -1;
    }
    if (m->cfg.intermediate_size > (1 << 20) || m->max_ffn > (1 << 20)) {
        ck_model_free(m);
        return ck_err(err, errlen, "config.json: intermediate size out of the supported range");
    }
    if (m->n_ropes == 0) {
        if (ck_rope_init(&m->rope[0], &m->cfg, NULL, (size_t)m->cfg.head_dim, err, errlen) != 0) {
            ck_model_free(m);
            return -1;
        }
        m->n_ropes = 1;
    }
    return 0;
}

void ck_model_free(ck_model *m) {
    if (m->family && m->family->unload) m->family->unload(m);
    if (m->final_norm) m->be->free(m->be, m->final_norm);
    for (int i = 0; i < CK_MAX_ROPES; i++) ck_rope_free(&m->rope[i]);
    free(m->no_kv);
    ck_weights_close(&m->weights);
    ck_config_free(&m->cfg);
    memset(m, 0, sizeof *m);
}

/* ---- state ---- */

int ck_state_init(ck_state *s, const ck_model *m, size_t max_ctx, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->max_ctx = max_ctx;
    const ck_config *c = &m->cfg;
    ck_backend *be = m->be;
    size_t L = (size_t)c->n_layers, d = (size_t)c->hidden_size, hd = (size_t)c->head_dim;
    size_t qd = (size_t)c->n_heads * hd, kd = (size_t)c->n_kv_heads * hd, ffn = m->max_ffn;
    size_t half = 0, kv_bytes;
    for (int i = 0; i < m->n_ropes; i++)
        if (m->rope[i].rot_dim / 2 > half) half = m->rope[i].rot_dim / 2;
    if (max_ctx == 0 || ck_mul_size(max_ctx, kd * sizeof(float), &kv_bytes) != 0)
        return ck_err(err, errlen, "context size %zu out of range", max_ctx);
    s->kv = calloc(L, sizeof *s->kv);
    s->host_cos = malloc(CK_CHUNK * half * sizeof(float));
    s->host_sin = malloc(CK_CHUNK * half * sizeof(float));
    int ok = s->kv && s->host_cos && s->host_sin;
    for (size_t l = 0; ok && l < L; l++) {
        if (m->no_kv && m->no_kv[l]) continue;
        s->kv[l].k = be->alloc(be, kv_bytes);
        s->kv[l].v = be->alloc(be, kv_bytes);
        ok = s->kv[l].k && s->kv[l].v;
    }
    float **bufs[] = {&s->x, &s->xn, &s->q, &s->k, &s->v, &s->att, &s->gate, &s->up, &s->logits,
                      &s->cos[0], &s->sin[0], &s->cos[1], &s->sin[1]};
    size_t sizes[] = {d, d, qd, kd, kd, qd, ffn, ffn, 0, half, half, half, half};
    size_t n_bufs = 9 + 2 * (size_t)m->n_ropes;
    if (ok && m->attn_out_gate) {
        s->qg = be->alloc(be, CK_CHUNK * 2 * qd * sizeof(float));
        ok = s->qg != NULL;
    }
    for (size_t i = 0; ok && i < n_bufs; i++) {
        size_t bytes = sizes[i] ? CK_CHUNK * sizes[i] * sizeof(float)
                                : CK_HEAD_ROWS * (size_t)c->vocab_size * sizeof(float);
        *bufs[i] = be->alloc(be, bytes);
        ok = *bufs[i] != NULL;
    }
    if (!ok) {
        ck_state_free(s);
        return ck_err(err, errlen, "out of memory for a %zu-position context", max_ctx);
    }
    if (m->family->state_init && m->family->state_init(m, s, err, errlen) != 0) {
        ck_state_free(s);
        return -1;
    }
    return 0;
}

void ck_state_free(ck_state *s) {
    if (!s->m) return;
    ck_backend *be = s->m->be;
    if (s->m->family->state_free) s->m->family->state_free(s->m, s);
    for (size_t l = 0; s->kv && l < (size_t)s->m->cfg.n_layers; l++) {
        if (s->kv[l].k) be->free(be, s->kv[l].k);
        if (s->kv[l].v) be->free(be, s->kv[l].v);
    }
    free(s->kv);
    float *bufs[] = {s->x, s->xn, s->q, s->k, s->v, s->att, s->gate, s->up, s->logits,
                     s->cos[0], s->sin[0], s->cos[1], s->sin[1], s->qg};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) be->free(be, bufs[i]);
    free(s->host_cos);
    free(s->host_sin);
    memset(s, 0, sizeof *s);
}

void ck_state_reset(ck_state *s) {
    if (s->m->family->state_reset) s->m->family->state_reset(s->m, s);
    s->pos = 0;
    memset(&s->stats, 0, sizeof s->stats);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void capture(ck_state *s, size_t slot, const float *x, size_t row0, size_t T) {
    if (!s->capture) return;
    size_t d = (size_t)s->m->cfg.hidden_size;
    if (row0 + T > s->capture_rows) return;
    s->m->be->download(s->m->be, s->capture + (slot * s->capture_rows + row0) * d, x, T * d * sizeof(float));
}

/* cos/sin of the angles pos*inv_freq of every RoPE table for the T rows starting at position pos. */
static void rope_tables(ck_state *s, size_t pos, size_t T) {
    const ck_model *m = s->m;
    for (int r = 0; r < m->n_ropes; r++) {
        size_t half = m->rope[r].rot_dim / 2;
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < half; i++) {
                double a = (double)(pos + t) * m->rope[r].inv_freq[i];
                s->host_cos[t * half + i] = (float)cos(a);
                s->host_sin[t * half + i] = (float)sin(a);
            }
        m->be->upload(m->be, s->cos[r], s->host_cos, T * half * sizeof(float));
        m->be->upload(m->be, s->sin[r], s->host_sin, T * half * sizeof(float));
    }
}

/* Final norm and output head for rows [r0, r0+n) of s->x; logits rows land in out (host). */
static void head(ck_state *s, size_t r0, size_t n, float *out) {
    const ck_model *m = s->m;
    ck_backend *be = m->be;
    size_t d = (size_t)m->cfg.hidden_size, V = (size_t)m->cfg.vocab_size;
    be->rmsnorm(be, s->xn + r0 * d, s->x + r0 * d, m->final_norm, n, d, (float)m->cfg.rms_eps,
                m->final_norm_one_plus);
    if (!out) return;
    for (size_t i = 0; i < n; i += CK_HEAD_ROWS) {
        size_t k = n - i < CK_HEAD_ROWS ? n - i : CK_HEAD_ROWS;
        be->matmul(be, s->logits, s->xn + (r0 + i) * d, &m->lm_head, NULL, k);
        be->download(be, out + i * V, s->logits, k * V * sizeof(float));
    }
}

int ck_state_forward(ck_state *s, const int32_t *ids, size_t n, float *logits, int all, char *err, size_t errlen) {
    const ck_model *m = s->m;
    size_t V = (size_t)m->cfg.vocab_size, L = (size_t)m->cfg.n_layers;
    if (n == 0) return ck_err(err, errlen, "no tokens to run");
    if (n > s->max_ctx - s->pos)
        return ck_err(err, errlen, "context full: %zu positions held, %zu more requested, %zu available", s->pos, n,
                      s->max_ctx);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= V)
            return ck_err(err, errlen, "token id %d out of range (vocabulary %zu)", ids[i], V);
    size_t start = s->pos;
    for (size_t c0 = 0; c0 < n; c0 += CK_CHUNK) {
        size_t T = n - c0 < CK_CHUNK ? n - c0 : CK_CHUNK, row0 = s->pos - start;
        double t0 = now_s();
        m->be->embed(m->be, s->x, &m->embed, ids + c0, T, m->embed_scale);
        capture(s, 0, s->x, row0, T);
        rope_tables(s, s->pos, T);
        double t1 = now_s();
        for (size_t l = 0; l < L; l++) {
            m->family->layer(m, s, l, T);
            if (l + 1 < L) capture(s, l + 1, s->x, row0, T);
        }
        s->pos += T;
        double t2 = now_s();
        int last_chunk = c0 + T == n;
        if (all || s->capture) {
            head(s, 0, T, all && logits ? logits + c0 * V : NULL);
            capture(s, L, s->xn, row0, T);
            if (!all && logits && last_chunk) head(s, T - 1, 1, logits);
        } else if (last_chunk && logits) {
            head(s, T - 1, 1, logits);
        }
        s->stats.embed_s += t1 - t0;
        s->stats.layers_s += t2 - t1;
        s->stats.head_s += now_s() - t2;
    }
    return 0;
}
