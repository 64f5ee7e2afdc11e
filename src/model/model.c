/* model.c — loading a checkpoint's range into a ck_model (see model.h): config, family, the range's
 * tensors (and only those: shards are mapped on first use), checks that the checkpoint and the config
 * agree, and the bookkeeping that lets the model release everything it prepared on its backend. */
#include "model/model.h"
#include "base/err.h"
#include "base/grow.h"
#include "model/family.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ck_family *const families[] = {&ck_family_dense, &ck_family_qwen35};

static char supported[1024];
static pthread_once_t supported_once = PTHREAD_ONCE_INIT;

static void list_supported(void) {
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const char *const *a = families[f]->archs; *a; a++) {
            size_t n = strlen(supported);
            snprintf(supported + n, sizeof supported - n, "%s%s", n ? ", " : "", *a);
        }
}

const char *ck_model_supported(void) {
    pthread_once(&supported_once, list_supported);
    return supported;
}

static const ck_family *find_family(const char *arch) {
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const char *const *a = families[f]->archs; *a; a++)
            if (!strcmp(*a, arch)) return families[f];
    return NULL;
}

static void shape_str(char *out, size_t cap, const uint64_t *dims, int ndim) {
    out[0] = 0;
    for (int i = 0; i < ndim; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
}

/* The KV cache type of models loaded from now on (ck_model_set_kv_dtype): -1 picks it per model. */
static int kv_setting = -1;
void ck_model_set_kv_dtype(int dt) { kv_setting = dt == CK_F32 || dt == CK_F16 ? dt : -1; }

static int is_moe(const ck_model *m) {
    return ck_cfg_int(&m->cfg, "num_experts", ck_cfg_int(&m->cfg, "num_local_experts", 0)) > 0;
}

/* Makes room for one more element at the end of *arr (n held). */
static int room_for_one(void **arr, size_t *cap, size_t n, size_t elem) {
    void *p = ck_grow(*arr, cap, n + 1, elem, 16);
    if (!p) return -1;
    *arr = p;
    return 0;
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
        char want[96], got[96];
        shape_str(want, sizeof want, dims, ndim);
        shape_str(got, sizeof got, t->shape, t->ndim);
        return ck_err(err, errlen, "tensor '%s' has shape [%s] but config.json implies [%s]", name, got, want);
    }
    if (room_for_one((void **)&m->prepared, &m->cap_prepared, m->n_prepared, sizeof *m->prepared) != 0)
        return ck_err(err, errlen, "out of memory");
    /* Mixture-of-experts models take the exact path for every weight: with activations rounded to bf16
     * their discrete expert choices flip against HF's reference (measured on the fixtures). */
    t->exact = is_moe(m);
    char why[512];
    const void *mapped = t->data;
    if (m->be->prepare_weight(m->be, t, why, sizeof why) != 0)
        return ck_err(err, errlen, "tensor '%s': %s", name, why);
    m->prepared[m->n_prepared++] = *t;
    if (t->data != mapped) ck_weights_drop(&m->weights, mapped, ck_tensor_bytes(t)); /* copied */
    if (strstr(name, ".experts.")) m->expert_bytes += ck_tensor_bytes(t);
    return 1;
}

int ck_model_rows(ck_model *m, ck_tensor *view, const ck_tensor *w, uint64_t r0, uint64_t n, char *err,
                  size_t errlen) {
    return m->be->weight_rows(m->be, view, w, r0, n, err, errlen);
}

void *ck_model_alloc(ck_model *m, size_t bytes) {
    if (room_for_one((void **)&m->owned, &m->cap_owned, m->n_owned, sizeof *m->owned) != 0) return NULL;
    void *p = m->be->alloc(m->be, bytes);
    if (p) m->owned[m->n_owned++] = p;
    return p;
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
    const ck_dtype_traits *tr = ck_dtype_traits_of(t.dtype);
    if (!tr || n % tr->block)
        return ck_err(err, errlen, "tensor '%s': dtype %s cannot be read as a vector", name, ck_dtype_name(t.dtype));
    float *host = malloc(n * sizeof *host);
    *out = host ? ck_model_alloc(m, n * sizeof **out) : NULL;
    if (!*out) {
        free(host);
        return ck_err(err, errlen, "out of memory");
    }
    tr->to_f32(host, t.data, n);
    m->be->upload(m->be, *out, host, n * sizeof *host);
    free(host);
    return 0;
}

int ck_model_load_head(ck_model *m, const char *prefix, char *err, size_t errlen) {
    const ck_config *c = &m->cfg;
    uint64_t ed[2] = {(uint64_t)c->vocab_size, (uint64_t)c->hidden_size};
    char name[192];
    snprintf(name, sizeof name, "%sembed_tokens.weight", prefix);
    if (m->range.embed && ck_model_tensor(m, name, 0, &m->embed, 2, ed, err, errlen) < 0) return -1;
    if (!m->range.head) return 0;
    int found = ck_model_tensor(m, "lm_head.weight", c->tie_embeddings, &m->lm_head, 2, ed, err, errlen);
    if (found < 0) return -1;
    if (found == 0) { /* tied: the head is the embedding matrix */
        if (!m->range.embed && ck_model_tensor(m, name, 0, &m->embed, 2, ed, err, errlen) < 0) return -1;
        m->lm_head = m->embed;
    }
    snprintf(name, sizeof name, "%snorm.weight", prefix);
    return ck_model_vector(m, name, 0, (size_t)c->hidden_size, &m->final_norm, err, errlen);
}

/* A checkpoint with tensors for more layers than config.json declares would run on part of the model:
 * refuse it. */
static int check_layer_count(const ck_model *m, char *err, size_t errlen) {
    size_t plen = strlen(m->layer_prefix);
    for (size_t i = 0; i < ck_weights_count(&m->weights); i++) {
        const char *name = ck_weights_name(&m->weights, i);
        if (strncmp(name, m->layer_prefix, plen) || name[plen] < '0' || name[plen] > '9') continue;
        long long layer = strtoll(name + plen, NULL, 10);
        if (layer >= m->cfg.n_layers)
            return ck_err(err, errlen, "the checkpoint has tensors for layer %lld ('%s') but config.json says "
                          "num_hidden_layers = %lld", layer, name, (long long)m->cfg.n_layers);
    }
    return 0;
}

static int check_range(const ck_config *c, ck_range *r, char *err, size_t errlen) {
    if (r->last < r->first) {
        r->first = 0, r->last = -1; /* no layers */
    } else if (r->first < 0 || r->last >= c->n_layers) {
        return ck_err(err, errlen, "layers %lld-%lld are out of range: the model has %lld layers (0-%lld)",
                      (long long)r->first, (long long)r->last, (long long)c->n_layers, (long long)c->n_layers - 1);
    }
    if (!r->embed && !r->head && r->last < r->first) return ck_err(err, errlen, "the range holds nothing");
    return 0;
}

/* The RoPE frequencies as backend memory, read by the rope op. */
static int upload_ropes(ck_model *m, char *err, size_t errlen) {
    for (int r = 0; r < m->n_ropes; r++) {
        size_t bytes = m->rope[r].rot_dim / 2 * sizeof(double);
        double *d = ck_model_alloc(m, bytes);
        if (!d) return ck_err(err, errlen, "out of memory for the RoPE frequencies");
        m->be->upload(m->be, d, m->rope[r].inv_freq, bytes);
        m->rope_freq[r] = d;
    }
    return 0;
}

static int load_parts(const char *dir, ck_model *m, char *err, size_t errlen) {
    if (ck_config_load(dir, &m->cfg, err, errlen) != 0) return -1;
    m->family = find_family(m->cfg.arch);
    if (!m->family)
        return ck_err(err, errlen, "architecture '%s' is not supported; supported: %s", m->cfg.arch,
                      ck_model_supported());
    if (m->cfg.head_dim > 1024 || m->cfg.hidden_size > (1 << 16) || m->cfg.n_layers > 4096)
        return ck_err(err, errlen, "config.json: sizes out of the supported range");
    if (check_range(&m->cfg, &m->range, err, errlen) != 0) return -1;
    m->kv_dtype = kv_setting >= 0 ? (ck_dtype)kv_setting : ck_cpu_exact() || is_moe(m) ? CK_F32 : CK_F16;
    snprintf(m->layer_prefix, sizeof m->layer_prefix, "%s", m->family->layer_prefix(&m->cfg));
    m->embed_scale = 1.0f;
    m->attn_scale = (float)(1.0 / sqrt((double)m->cfg.head_dim));
    m->max_ffn = m->cfg.intermediate_size > 0 ? (size_t)m->cfg.intermediate_size : 0;
    if (ck_weights_open(dir, &m->weights, err, errlen) != 0) return -1;
    if (check_layer_count(m, err, errlen) != 0) return -1;
    if (m->family->load(m, err, errlen) != 0) return -1;
    if (m->cfg.intermediate_size > (1 << 20) || m->max_ffn > (1 << 20))
        return ck_err(err, errlen, "config.json: intermediate size out of the supported range");
    if (m->n_ropes == 0) {
        if (ck_rope_init(&m->rope[0], &m->cfg, NULL, (size_t)m->cfg.head_dim, err, errlen) != 0) return -1;
        m->n_ropes = 1;
    }
    return upload_ropes(m, err, errlen);
}

int ck_model_load(const char *dir, ck_backend *be, const ck_range *r, ck_model *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->be = be;
    m->range = *r;
    m->chunk = be->prefill_rows > CK_CHUNK ? be->prefill_rows : CK_CHUNK;
    if (load_parts(dir, m, err, errlen) != 0) {
        ck_model_free(m);
        return -1;
    }
    return 0;
}

void ck_model_free(ck_model *m) {
    if (m->family && m->family->unload) m->family->unload(m);
    for (size_t i = 0; i < m->n_prepared; i++) m->be->release_weight(m->be, &m->prepared[i]);
    for (size_t i = 0; i < m->n_owned; i++) m->be->free(m->be, m->owned[i]);
    free(m->prepared);
    free(m->owned);
    for (int i = 0; i < CK_MAX_ROPES; i++) ck_rope_free(&m->rope[i]);
    free(m->no_kv);
    ck_weights_close(&m->weights);
    ck_config_free(&m->cfg);
    memset(m, 0, sizeof *m);
}
