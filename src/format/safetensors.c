/* safetensors.c — safetensors parsing and multi-file weight sets (see safetensors.h). */
#include "format/safetensors.h"
#include "base/err.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dtype_from_name(const char *s) {
    if (!strcmp(s, "F32")) return CK_F32;
    if (!strcmp(s, "F16")) return CK_F16;
    if (!strcmp(s, "BF16")) return CK_BF16;
    return -1;
}

/* Element sizes of every safetensors dtype, so sizes are checked even for dtypes we do not use. */
static size_t dtype_bytes(const char *s) {
    static const struct { const char *n; size_t b; } t[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
        {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8},
        {"F8_E4M3", 1}, {"F8_E5M2", 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].n)) return t[i].b;
    return 0;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_entry(const cJSON *e, const uint8_t *data, uint64_t data_len, ck_st_entry *out,
                       char *err, size_t errlen) {
    const char *name = e->string;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs))
        return ck_err(err, errlen, "tensor '%s': header entry needs dtype, shape and data_offsets", name);
    size_t esize = dtype_bytes(dt->valuestring);
    if (!esize) return ck_err(err, errlen, "tensor '%s': unknown dtype '%s'", name, dt->valuestring);
    int nd = cJSON_GetArraySize(shape);
    if (nd > CK_ST_MAX_DIMS)
        return ck_err(err, errlen, "tensor '%s': %d dimensions (at most %d supported)", name, nd, CK_ST_MAX_DIMS);
    uint64_t numel = 1;
    out->ndim = nd;
    for (int i = 0; i < nd; i++) {
        if (json_u64(cJSON_GetArrayItem(shape, i), &out->shape[i]) != 0)
            return ck_err(err, errlen, "tensor '%s': bad shape", name);
        if (__builtin_mul_overflow(numel, out->shape[i], &numel))
            return ck_err(err, errlen, "tensor '%s': shape overflows", name);
    }
    uint64_t b, en, nbytes;
    if (cJSON_GetArraySize(offs) != 2 || json_u64(cJSON_GetArrayItem(offs, 0), &b) != 0 ||
        json_u64(cJSON_GetArrayItem(offs, 1), &en) != 0 || b > en)
        return ck_err(err, errlen, "tensor '%s': bad data_offsets", name);
    if (en > data_len)
        return ck_err(err, errlen, "tensor '%s': data [%llu, %llu) runs past the end of the file (%llu data bytes)",
                      name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_len);
    if (__builtin_mul_overflow(numel, (uint64_t)esize, &nbytes) || nbytes != en - b)
        return ck_err(err, errlen, "tensor '%s': %llu bytes of data do not match %s x shape", name,
                      (unsigned long long)(en - b), dt->valuestring);
    out->name = strdup(name);
    if (!out->name) return ck_err(err, errlen, "out of memory");
    out->dtype = dtype_from_name(dt->valuestring);
    snprintf(out->dtype_name, sizeof out->dtype_name, "%s", dt->valuestring);
    out->data = data + b;
    out->nbytes = nbytes;
    return 0;
}

int ck_st_parse(const uint8_t *buf, size_t len, ck_st *out, char *err, size_t errlen) {
    out->entries = NULL;
    out->n = 0;
    if (len < 8) return ck_err(err, errlen, "file too short for a safetensors header (%zu bytes)", len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > len - 8)
        return ck_err(err, errlen, "header length %llu exceeds the file size %zu (truncated file?)",
                      (unsigned long long)hlen, len);
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ck_err(err, errlen, "header is not a JSON object");
    }
    const uint8_t *data = buf + 8 + hlen;
    uint64_t data_len = len - 8 - hlen;
    size_t cap = (size_t)cJSON_GetArraySize(root);
    out->entries = calloc(cap ? cap : 1, sizeof *out->entries);
    if (!out->entries) {
        cJSON_Delete(root);
        return ck_err(err, errlen, "out of memory");
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!strcmp(e->string, "__metadata__")) continue;
        if (parse_entry(e, data, data_len, &out->entries[out->n], err, errlen) != 0) {
            cJSON_Delete(root);
            ck_st_free(out);
            return -1;
        }
        out->n++;
    }
    cJSON_Delete(root);
    return 0;
}

void ck_st_free(ck_st *st) {
    for (size_t i = 0; i < st->n; i++) free(st->entries[i].name);
    free(st->entries);
    st->entries = NULL;
    st->n = 0;
}

/* ---- multi-file weight sets ---- */

static int cmp_entry(const void *a, const void *b) {
    return strcmp((*(const ck_st_entry *const *)a)->name, (*(const ck_st_entry *const *)b)->name);
}

static int add_file(ck_weights *w, const char *path, char *err, size_t errlen) {
    char why[512];
    size_t i = w->n_files;
    if (ck_map_open(path, &w->maps[i], why, sizeof why) != 0) return ck_err(err, errlen, "%s", why);
    if (ck_st_parse(w->maps[i].data, w->maps[i].size, &w->files[i], why, sizeof why) != 0) {
        ck_map_close(&w->maps[i]);
        return ck_err(err, errlen, "%s: %s", path, why);
    }
    w->n_files++;
    return 0;
}

static int build_index(ck_weights *w, char *err, size_t errlen) {
    size_t total = 0;
    for (size_t i = 0; i < w->n_files; i++) total += w->files[i].n;
    w->index = malloc((total ? total : 1) * sizeof *w->index);
    if (!w->index) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < w->n_files; i++)
        for (size_t j = 0; j < w->files[i].n; j++) w->index[w->n_index++] = &w->files[i].entries[j];
    qsort(w->index, w->n_index, sizeof *w->index, cmp_entry);
    for (size_t i = 1; i < w->n_index; i++)
        if (!strcmp(w->index[i - 1]->name, w->index[i]->name))
            return ck_err(err, errlen, "tensor '%s' appears twice in the checkpoint", w->index[i]->name);
    return 0;
}

/* Collects the distinct shard names of an index.json's weight_map into a NULL-terminated array. */
static int index_shards(const char *path, char ***shards, size_t *n, char *err, size_t errlen) {
    char *text;
    size_t len;
    if (ck_file_read(path, &text, &len, err, errlen) != 0) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return ck_err(err, errlen, "%s: not JSON with a weight_map object", path);
    }
    size_t cap = (size_t)cJSON_GetArraySize(map) + 1;
    char **list = calloc(cap, sizeof *list);
    size_t k = 0;
    const cJSON *e;
    int rc = list ? 0 : ck_err(err, errlen, "out of memory");
    cJSON_ArrayForEach(e, map) {
        if (rc) break;
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !strcmp(e->valuestring, "..")) {
            rc = ck_err(err, errlen, "%s: bad shard name for '%s'", path, e->string);
            break;
        }
        size_t j = 0;
        while (j < k && strcmp(list[j], e->valuestring)) j++;
        if (j == k && !(list[k++] = strdup(e->valuestring))) rc = ck_err(err, errlen, "out of memory");
    }
    cJSON_Delete(root);
    if (rc) {
        for (size_t j = 0; list && j < k; j++) free(list[j]);
        free(list);
        return -1;
    }
    *shards = list;
    *n = k;
    return 0;
}

int ck_weights_open(const char *dir, ck_weights *w, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    char path[4096];
    char **shards = NULL;
    size_t n_shards = 1;
    if (ck_path_join(path, sizeof path, dir, "model.safetensors.index.json", err, errlen) != 0) return -1;
    if (ck_is_file(path)) {
        if (index_shards(path, &shards, &n_shards, err, errlen) != 0) return -1;
        if (n_shards == 0) {
            free(shards);
            return ck_err(err, errlen, "%s lists no shards", path);
        }
    } else if (ck_path_join(path, sizeof path, dir, "model.safetensors", err, errlen) != 0) {
        return -1;
    } else if (!ck_is_file(path)) {
        return ck_err(err, errlen, "no model.safetensors or model.safetensors.index.json in %s", dir);
    }
    w->maps = calloc(n_shards, sizeof *w->maps);
    w->files = calloc(n_shards, sizeof *w->files);
    int rc = (w->maps && w->files) ? 0 : ck_err(err, errlen, "out of memory");
    for (size_t i = 0; rc == 0 && i < n_shards; i++) {
        if (shards && ck_path_join(path, sizeof path, dir, shards[i], err, errlen) != 0) rc = -1;
        else rc = add_file(w, path, err, errlen);
    }
    for (size_t i = 0; shards && i < n_shards; i++) free(shards[i]);
    free(shards);
    if (rc == 0) rc = build_index(w, err, errlen);
    if (rc != 0) ck_weights_close(w);
    return rc;
}

void ck_weights_close(ck_weights *w) {
    for (size_t i = 0; i < w->n_files; i++) {
        ck_st_free(&w->files[i]);
        ck_map_close(&w->maps[i]);
    }
    free(w->maps);
    free(w->files);
    free(w->index);
    memset(w, 0, sizeof *w);
}

int ck_weights_find(const ck_weights *w, const char *name, ck_tensor *t, char *err, size_t errlen) {
    size_t lo = 0, hi = w->n_index;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w->index[mid]->name, name);
        if (c == 0) {
            const ck_st_entry *e = w->index[mid];
            if (e->dtype < 0)
                return ck_err(err, errlen, "tensor '%s' has dtype %s; supported: F32, F16, BF16", name,
                              e->dtype_name);
            if (e->ndim > CK_MAX_DIMS)
                return ck_err(err, errlen, "tensor '%s' has %d dimensions (at most %d supported)", name, e->ndim,
                              CK_MAX_DIMS);
            memset(t, 0, sizeof *t);
            t->dtype = (ck_dtype)e->dtype;
            t->ndim = e->ndim;
            memcpy(t->shape, e->shape, (size_t)e->ndim * sizeof t->shape[0]);
            t->data = e->data;
            return 1;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}
