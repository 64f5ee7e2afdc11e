/* rope.c — RoPE inverse frequencies with the scaling rules of HF's rope utilities (see rope.h). */
#include "model/rope.h"
#include "base/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* *out = KEY of the parameter object o, else of the config, else def; present but not a number (null
 * included: HF computes with it) is an error naming the key. */
static int num(const cJSON *o, const ck_config *c, const char *key, double def, double *out, char *err, size_t errlen) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    char got[64];
    if (!v) v = ck_cfg_get(c, key);
    *out = def;
    if (!v) return 0;
    if (!cJSON_IsNumber(v))
        return ck_err(err, errlen, "config.json: RoPE parameter %s must be a number (got %s)", key,
                      ck_json_type_name(v, got, sizeof got));
    *out = v->valuedouble;
    return 0;
}

/* The rope_type (or the older `type`) of the parameter object o: "default" when absent. */
static int rope_type(const cJSON *o, const char **type, char *err, size_t errlen) {
    const cJSON *t = o ? cJSON_GetObjectItemCaseSensitive(o, "rope_type") : NULL;
    char got[64];
    if (o && !t) t = cJSON_GetObjectItemCaseSensitive(o, "type");
    *type = "default";
    if (!t) return 0;
    if (!cJSON_IsString(t))
        return ck_err(err, errlen, "config.json: rope_type must be a string (got %s)", ck_json_type_name(t, got, sizeof got));
    *type = t->valuestring;
    return 0;
}

const cJSON *ck_rope_params_for(const ck_config *c, const char *layer_type) {
    const cJSON *rp = ck_cfg_get(c, "rope_parameters");
    const cJSON *p = cJSON_IsObject(rp) ? cJSON_GetObjectItemCaseSensitive(rp, layer_type) : NULL;
    return cJSON_IsObject(p) ? p : NULL;
}

int ck_rope_init(ck_rope *r, const ck_config *c, const cJSON *params, size_t head_dim, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (!params) {
        params = ck_cfg_get(c, "rope_parameters");
        if (!cJSON_IsObject(params)) params = ck_cfg_get(c, "rope_scaling");
        if (!cJSON_IsObject(params)) params = NULL;
    }
    const char *type;
    double theta, partial, factor = 1.0, lo_f = 1.0, hi_f = 4.0, old = 8192;
    if (rope_type(params, &type, err, errlen) != 0) return -1;
    int llama3 = !strcmp(type, "llama3"), linear = !strcmp(type, "linear");
    if (!llama3 && !linear && strcmp(type, "default"))
        return ck_err(err, errlen, "config.json: rope_type '%s' is not supported (default, linear, llama3)", type);
    if (num(params, c, "rope_theta", 10000.0, &theta, err, errlen) != 0 ||
        num(params, c, "partial_rotary_factor", 1.0, &partial, err, errlen) != 0)
        return -1;
    if (!(theta > 0) || !(partial > 0 && partial <= 1))
        return ck_err(err, errlen, "config.json: rope_theta or partial_rotary_factor out of range");
    if ((linear || llama3) && num(params, c, "factor", 1.0, &factor, err, errlen) != 0) return -1;
    if (llama3 && (num(params, c, "low_freq_factor", 1.0, &lo_f, err, errlen) != 0 ||
                   num(params, c, "high_freq_factor", 4.0, &hi_f, err, errlen) != 0 ||
                   num(params, c, "original_max_position_embeddings", 8192, &old, err, errlen) != 0))
        return -1;
    if ((linear || llama3) && !(factor > 0)) return ck_err(err, errlen, "config.json: rope factor out of range");
    if (llama3 && !(hi_f > lo_f && lo_f > 0 && old > 0))
        return ck_err(err, errlen, "config.json: llama3 rope parameters out of range");
    size_t dim = (size_t)((double)head_dim * partial) & ~(size_t)1;
    if (dim == 0) return ck_err(err, errlen, "config.json: no dims left to rotate");
    /* freq_factors (from a GGUF file's rope_freqs): inv_freq[i] is divided by factor i, as llama.cpp does */
    const cJSON *ff = params ? cJSON_GetObjectItemCaseSensitive(params, "freq_factors") : NULL;
    if (ff && (!cJSON_IsArray(ff) || (size_t)cJSON_GetArraySize(ff) != dim / 2))
        return ck_err(err, errlen, "config.json: freq_factors must hold one number per rotated pair (%zu)", dim / 2);
    for (int i = 0; ff && i < cJSON_GetArraySize(ff); i++) {
        const cJSON *v = cJSON_GetArrayItem(ff, i);
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0)) return ck_err(err, errlen, "config.json: bad freq_factors");
    }
    r->rot_dim = dim;
    r->inv_freq = malloc(dim / 2 * sizeof *r->inv_freq);
    if (!r->inv_freq) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < dim / 2; i++) {
        double f = 1.0 / pow(theta, (double)(2 * i) / (double)dim);
        if (linear) f /= factor;
        if (llama3) { /* long wavelengths scaled down, short kept, a smooth blend between */
            double lo = old / lo_f, hi = old / hi_f, wavelen = 2.0 * M_PI / f;
            if (wavelen > lo) {
                f /= factor;
            } else if (wavelen >= hi) {
                double sm = (old / wavelen - lo_f) / (hi_f - lo_f);
                f = (1.0 - sm) * f / factor + sm * f;
            }
        }
        if (ff) f /= cJSON_GetArrayItem(ff, (int)i)->valuedouble;
        r->inv_freq[i] = f;
    }
    return 0;
}

void ck_rope_free(ck_rope *r) {
    free(r->inv_freq);
    memset(r, 0, sizeof *r);
}
