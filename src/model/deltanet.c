/* deltanet.c — the Gated DeltaNet mixer (see deltanet.h): weight loading, per-sequence state and the
 * forward pass as a sequence of backend ops. Only the setup moves bytes to or from the backend (upload of
 * converted weights, clear on reset); activations are touched through ops only. */
#include "model/deltanet.h"
#include "base/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ck_deltanet_config(const ck_config *c, ck_deltanet_w *w, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    int64_t nk = ck_cfg_int(c, "linear_num_key_heads", 0), nv = ck_cfg_int(c, "linear_num_value_heads", 0);
    int64_t dk = ck_cfg_int(c, "linear_key_head_dim", 0), dv = ck_cfg_int(c, "linear_value_head_dim", 0);
    int64_t K = ck_cfg_int(c, "linear_conv_kernel_dim", 4);
    if (nk <= 0 || nv <= 0 || dk <= 0 || dv <= 0 || nk > 4096 || nv > 4096 || dk > 1024 || dv > 1024)
        return ck_err(err, errlen, "config.json: linear_{num_key,num_value}_heads / linear_{key,value}_head_dim "
                                   "missing or out of range");
    if (nv % nk != 0)
        return ck_err(err, errlen, "config.json: linear_num_value_heads %lld is not a multiple of linear_num_key_heads %lld",
                      (long long)nv, (long long)nk);
    if (K < 1 || K > 64) return ck_err(err, errlen, "config.json: linear_conv_kernel_dim out of range");
    const char *act = ck_cfg_str(c, "hidden_act", "silu");
    if (strcmp(act, "silu") && strcmp(act, "swish"))
        return ck_err(err, errlen, "config.json: activation '%s' is not supported for Gated DeltaNet", act);
    w->hidden = (size_t)c->hidden_size;
    w->nk = (size_t)nk, w->nv = (size_t)nv, w->dk = (size_t)dk, w->dv = (size_t)dv, w->K = (size_t)K;
    w->eps = (float)c->rms_eps;
    w->out_tiled = ck_cfg_bool(c, "linear_out_proj_tiled", 0);
    return 0;
}

int ck_deltanet_load(ck_model *m, const char *prefix, ck_deltanet_w *w, char *err, size_t errlen) {
    uint64_t hid = w->hidden, kd = w->nk * w->dk, vd = w->nv * w->dv, cd = 2 * kd + vd, nv = w->nv;
    struct { const char *n; ck_tensor *t; uint64_t r, c; } mats[] = {
        {"in_proj_qkv", &w->qkv, cd, hid}, {"in_proj_z", &w->z, vd, hid}, {"in_proj_b", &w->b, nv, hid},
        {"in_proj_a", &w->a, nv, hid},     {"out_proj", &w->out, hid, vd},
    };
    char name[256];
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        uint64_t dims[2] = {mats[i].r, mats[i].c};
        snprintf(name, sizeof name, "%s%s.weight", prefix, mats[i].n);
        if (ck_model_tensor(m, name, 0, mats[i].t, 2, dims, err, errlen) < 0) return -1;
    }
    w->a.exact = w->b.exact = 1; /* the decay and write-strength gates feed exp/sigmoid of a recurrence */
    struct { const char *n; float **p; size_t len; } vecs[] = {
        {"conv1d.weight", &w->conv, (size_t)cd * w->K}, {"A_log", &w->A_log, w->nv},
        {"dt_bias", &w->dt_bias, w->nv},                {"norm.weight", &w->norm, w->dv},
    };
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, vecs[i].n);
        if (ck_model_vector(m, name, 0, vecs[i].len, vecs[i].p, err, errlen) != 0) return -1;
    }
    snprintf(name, sizeof name, "%sconv1d.bias", prefix);
    ck_tensor cb;
    int has_bias = ck_weights_find(&m->weights, name, &cb, err, errlen);
    if (has_bias < 0) return -1;
    if (has_bias) return ck_err(err, errlen, "tensor '%s': a conv1d bias is not supported", name);
    return 0;
}

/* Allocates floats[i] floats of backend memory into *ptrs[i] for i < n; on failure frees them all. */
static int alloc_all(ck_backend *be, float **const *ptrs, const size_t *floats, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(*ptrs[i] = be->alloc(be, floats[i] * sizeof(float)))) {
            for (size_t j = 0; j < i; j++) be->free(be, *ptrs[j]), *ptrs[j] = NULL;
            return -1;
        }
    return 0;
}

int ck_deltanet_state_init(ck_backend *be, const ck_deltanet_w *w, ck_deltanet_state *st, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    size_t cd = 2 * w->nk * w->dk + w->nv * w->dv;
    float **const p[] = {&st->conv, &st->S};
    size_t n[] = {(w->K - 1 ? w->K - 1 : 1) * cd, w->nv * w->dk * w->dv};
    return alloc_all(be, p, n, 2) ? ck_err(err, errlen, "out of memory for Gated DeltaNet state") : 0;
}

void ck_deltanet_state_reset(ck_backend *be, const ck_deltanet_w *w, ck_deltanet_state *st) {
    size_t cd = 2 * w->nk * w->dk + w->nv * w->dv;
    if (w->K > 1) be->clear(be, st->conv, (w->K - 1) * cd * sizeof(float));
    be->clear(be, st->S, w->nv * w->dk * w->dv * sizeof(float));
}

void ck_deltanet_state_free(ck_backend *be, ck_deltanet_state *st) {
    if (st->conv) be->free(be, st->conv);
    if (st->S) be->free(be, st->S);
    memset(st, 0, sizeof *st);
}

int ck_deltanet_scratch_init(ck_backend *be, const ck_deltanet_w *w, size_t rows, ck_deltanet_scratch *sc, char *err,
                             size_t errlen) {
    memset(sc, 0, sizeof *sc);
    size_t cd = 2 * w->nk * w->dk + w->nv * w->dv, vd = w->nv * w->dv;
    sc->rows = rows;
    float **const p[] = {&sc->mixed, &sc->mixed_c, &sc->z, &sc->o, &sc->g, &sc->beta};
    size_t n[] = {rows * cd, rows * cd, rows * vd, rows * vd, rows * w->nv, rows * w->nv};
    if (alloc_all(be, p, n, 6) != 0) return ck_err(err, errlen, "out of memory for Gated DeltaNet scratch");
    if (w->out_tiled) { /* out_proj's column group h = j * nk + k holds value head k * (nv / nk) + j */
        if (!(sc->out_rows = malloc(rows * w->nv * sizeof *sc->out_rows)))
            return ck_err(err, errlen, "out of memory for Gated DeltaNet scratch");
        for (size_t t = 0; t < rows; t++)
            for (size_t h = 0; h < w->nv; h++)
                sc->out_rows[t * w->nv + h] = (int32_t)(t * w->nv + h % w->nk * (w->nv / w->nk) + h / w->nk);
    }
    return 0;
}

void ck_deltanet_scratch_free(ck_backend *be, ck_deltanet_scratch *sc) {
    float *v[] = {sc->mixed, sc->mixed_c, sc->z, sc->o, sc->g, sc->beta};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i]) be->free(be, v[i]);
    free(sc->out_rows);
    memset(sc, 0, sizeof *sc);
}

void ck_deltanet_forward(ck_backend *be, const ck_deltanet_w *w, const ck_rows *r, ck_deltanet_state *const *st,
                         ck_deltanet_scratch *sc, float *y, const float *x) {
    size_t kd = w->nk * w->dk, vd = w->nv * w->dv, cd = 2 * kd + vd, nv = w->nv, T = r->T;
    be->matmul(be, sc->mixed, x, &w->qkv, NULL, T);   /* mixed [T, q | k | v] */
    be->matmul(be, sc->z, x, &w->z, NULL, T);         /* z [T, nv, dv] */
    be->matmul(be, sc->beta, x, &w->b, NULL, T);      /* b [T, nv] */
    be->matmul(be, sc->g, x, &w->a, NULL, T);         /* a [T, nv] */
    be->gdn_gates(be, sc->g, sc->beta, sc->g, sc->beta, w->A_log, w->dt_bias, T, nv);
    for (size_t i = 0; i < r->n_spans; i++) { /* the recurrence, per sequence */
        size_t r0 = r->spans[i].row0, n = r->spans[i].n;
        float *mc = sc->mixed_c + r0 * cd;
        be->conv1d_causal(be, mc, sc->mixed + r0 * cd, st[i]->conv, w->conv, n, cd, w->K, 1); /* [n, cd] */
        ck_gdn_args a = {
            .q = mc, .k = mc + kd, .v = mc + 2 * kd, .q_stride = cd, .k_stride = cd, .v_stride = cd,
            .g = sc->g + r0 * nv, .beta = sc->beta + r0 * nv, .state = st[i]->S, .out = sc->o + r0 * vd,
            .T = n, .n_k_heads = w->nk, .n_v_heads = nv, .k_head_dim = w->dk, .v_head_dim = w->dv,
            .l2norm = 1, .q_scale = (float)(1.0 / sqrt((double)w->dk)),
        };
        be->gated_delta(be, &a);                                              /* o [n, nv, dv] */
    }
    be->rmsnorm_gated(be, sc->o, sc->o, sc->z, w->norm, T * nv, w->dv, w->eps);
    const float *o = sc->o;
    if (w->out_tiled) { /* the value heads in out_proj's order; mixed is not read again */
        be->gather_rows(be, sc->mixed, sc->o, sc->out_rows, T * nv, w->dv);
        o = sc->mixed;
    }
    be->matmul(be, y, o, &w->out, NULL, T);                                   /* y [T, hidden] */
}
