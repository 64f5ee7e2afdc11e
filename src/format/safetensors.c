/* safetensors.c — safetensors parsing and multi-file weight sets (see safetensors.h). */
#include "format/safetensors.h"
#include "base/err.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    out->dtype = ck_dtype_from_name(dt->valuestring);
    snprintf(out->dtype_name, sizeof out->dtype_name, "%s", dt->valuestring);
    out->data = data + b;
    out->nbytes = nbytes;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const ck_st_entry *)a)->name, ((const ck_st_entry *)b)->name);
}

static int cmp_offset(const void *a, const void *b) {
    const ck_st_entry *x = *(const ck_st_entry *const *)a, *y = *(const ck_st_entry *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* Sorts the entries by name and refuses duplicate names and tensors whose byte ranges overlap (a header
 * that lies about offsets would otherwise let two weights share bytes silently). */
static int check_layout(ck_st *st, char *err, size_t errlen) {
    if (st->n == 0) return 0;
    qsort(st->entries, st->n, sizeof *st->entries, cmp_name);
    for (size_t i = 1; i < st->n; i++)
        if (!strcmp(st->entries[i - 1].name, st->entries[i].name))
            return ck_err(err, errlen, "tensor '%s' appears twice in the header", st->entries[i].name);
    const ck_st_entry **by = malloc(st->n * sizeof *by);
    if (!by) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < st->n; i++) by[i] = &st->entries[i];
    qsort(by, st->n, sizeof *by, cmp_offset);
    int rc = 0;
    for (size_t i = 1; i < st->n && rc == 0; i++)
        if (by[i]->data < by[i - 1]->data + by[i - 1]->nbytes)
            rc = ck_err(err, errlen, "tensors '%s' and '%s' overlap in the data section", by[i - 1]->name,
                        by[i]->name);
    free(by);
    return rc;
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
    if (memchr(buf + 8, 0, (size_t)hlen))
        return ck_err(err, errlen, "the header holds a NUL byte (not JSON text)");
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
    if (check_layout(out, err, errlen) != 0) {
        ck_st_free(out);
        return -1;
    }
    return 0;
}

void ck_st_free(ck_st *st) {
    for (size_t i = 0; i < st->n; i++) free(st->entries[i].name);
    free(st->entries);
    st->entries = NULL;
    st->n = 0;
}


/* ---- the shard index and multi-file weight sets ---- */

#define CK_ST_INDEX_MAX_BYTES (64u << 20) /* a 1T-parameter index is ~10 MB */

static int cmp_ref(const void *a, const void *b) {
    return strcmp(((const ck_st_ref *)a)->name, ((const ck_st_ref *)b)->name);
}

void ck_st_index_free(ck_st_index *ix) {
    for (size_t i = 0; ix->refs && i < ix->n; i++) free(ix->refs[i].name);
    for (size_t i = 0; ix->shards && i < ix->n_shards; i++) free(ix->shards[i]);
    free(ix->refs);
    free(ix->shards);
    memset(ix, 0, sizeof *ix);
}

/* A shard file name must stay inside the model directory. */
static int shard_name_ok(const char *s) {
    return *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

/* Appends shard `name` to ix->shards unless present; *k gets its number. */
static int add_shard(ck_st_index *ix, const char *name, size_t cap, uint32_t *k) {
    size_t j = 0;
    while (j < ix->n_shards && strcmp(ix->shards[j], name)) j++;
    if (j == ix->n_shards) {
        if (j == cap || !(ix->shards[j] = strdup(name))) return -1;
        ix->n_shards++;
    }
    *k = (uint32_t)j;
    return 0;
}

int ck_st_index_parse(const char *text, size_t len, ck_st_index *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map"), *e;
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return ck_err(err, errlen, "not JSON with a weight_map object");
    }
    size_t cap = (size_t)cJSON_GetArraySize(map);
    out->refs = calloc(cap ? cap : 1, sizeof *out->refs);
    out->shards = calloc(cap ? cap : 1, sizeof *out->shards);
    int rc = out->refs && out->shards ? 0 : ck_err(err, errlen, "out of memory");
    cJSON_ArrayForEach(e, map) {
        if (rc) break;
        if (!cJSON_IsString(e) || !shard_name_ok(e->valuestring)) {
            rc = ck_err(err, errlen, "bad shard name for '%s'", e->string);
            break;
        }
        ck_st_ref *r = &out->refs[out->n];
        if (add_shard(out, e->valuestring, cap, &r->shard) != 0 || !(r->name = strdup(e->string))) {
            rc = ck_err(err, errlen, "out of memory");
            break;
        }
        out->n++;
    }
    cJSON_Delete(root);
    if (rc == 0 && out->n == 0) rc = ck_err(err, errlen, "the weight_map lists no tensors");
    if (rc == 0) {
        qsort(out->refs, out->n, sizeof *out->refs, cmp_ref);
        for (size_t i = 1; i < out->n && rc == 0; i++)
            if (!strcmp(out->refs[i - 1].name, out->refs[i].name))
                rc = ck_err(err, errlen, "tensor '%s' is listed twice", out->refs[i].name);
    }
    if (rc) ck_st_index_free(out);
    return rc;
}

/* Maps and parses shard k (once). */
static int open_shard(ck_weights *w, uint32_t k, const char *why_name, char *err, size_t errlen) {
    if (w->opened[k]) return 0;
    char path[4096], why[1024];
    if (ck_path_join(path, sizeof path, w->dir, w->index.shards[k], err, errlen) != 0) return -1;
    if (ck_map_open(path, &w->maps[k], why, sizeof why) != 0)
        return ck_err(err, errlen, "shard %s (which holds '%s'): %s", w->index.shards[k], why_name, why);
    if (ck_st_parse(w->maps[k].data, w->maps[k].size, &w->files[k], why, sizeof why) != 0) {
        ck_map_close(&w->maps[k]);
        return ck_err(err, errlen, "%s: %s", path, why);
    }
    w->opened[k] = 1;
    return 0;
}

static int alloc_shards(ck_weights *w, char *err, size_t errlen) {
    size_t n = w->index.n_shards;
    w->maps = calloc(n, sizeof *w->maps);
    w->files = calloc(n, sizeof *w->files);
    w->opened = calloc(n, 1);
    return w->maps && w->files && w->opened ? 0 : ck_err(err, errlen, "out of memory");
}

/* A single model.safetensors: mapped now; the index lists its tensors as shard 0. */
static int open_single(ck_weights *w, const char *name, char *err, size_t errlen) {
    ck_st_index *ix = &w->index;
    ix->shards = calloc(1, sizeof *ix->shards);
    if (!ix->shards || !(ix->shards[0] = strdup(name))) return ck_err(err, errlen, "out of memory");
    ix->n_shards = 1;
    if (alloc_shards(w, err, errlen) != 0 || open_shard(w, 0, "every tensor", err, errlen) != 0) return -1;
    const ck_st *f = &w->files[0];
    ix->refs = calloc(f->n ? f->n : 1, sizeof *ix->refs);
    if (!ix->refs) return ck_err(err, errlen, "out of memory");
    for (; ix->n < f->n; ix->n++)
        if (!(ix->refs[ix->n].name = strdup(f->entries[ix->n].name))) return ck_err(err, errlen, "out of memory");
    return 0; /* entries are sorted by name already */
}

static int open_index(ck_weights *w, const char *path, char *err, size_t errlen) {
    char *text, why[1024];
    size_t len;
    if (ck_file_read_max(path, CK_ST_INDEX_MAX_BYTES, &text, &len, err, errlen) != 0) return -1;
    int rc = ck_st_index_parse(text, len, &w->index, why, sizeof why);
    free(text);
    if (rc != 0) return ck_err(err, errlen, "%s: %s", path, why);
    return alloc_shards(w, err, errlen);
}

static int open_gguf(ck_weights *w, const char *path, char *err, size_t errlen) {
    if (!(w->gguf = calloc(1, sizeof *w->gguf))) return ck_err(err, errlen, "out of memory");
    if (ck_gguf_weights_open(path, w->gguf, err, errlen) == 0) return 0;
    free(w->gguf);
    w->gguf = NULL;
    return -1;
}

int ck_weights_open(const char *dir, ck_weights *w, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    char path[4096];
    int rc = ck_gguf_locate(dir, path, sizeof path, err, errlen);
    if (rc != 0) return rc < 0 ? -1 : open_gguf(w, path, err, errlen);
    if (!(w->dir = strdup(dir))) return ck_err(err, errlen, "out of memory");
    if (ck_path_join(path, sizeof path, dir, "model.safetensors.index.json", err, errlen) != 0) rc = -1;
    else if (ck_path_exists_any(path)) rc = open_index(w, path, err, errlen);
    else if (ck_path_join(path, sizeof path, dir, "model.safetensors", err, errlen) != 0) rc = -1;
    else if (ck_path_exists_any(path)) rc = open_single(w, "model.safetensors", err, errlen);
    else rc = ck_err(err, errlen, "no model.safetensors or model.safetensors.index.json in %s", dir);
    if (rc != 0) ck_weights_close(w);
    return rc;
}

void ck_weights_close(ck_weights *w) {
    if (w->gguf) {
        ck_gguf_weights_close(w->gguf);
        free(w->gguf);
    }
    for (size_t i = 0; w->opened && i < w->index.n_shards; i++) {
        if (!w->opened[i]) continue;
        ck_st_free(&w->files[i]);
        ck_map_close(&w->maps[i]);
    }
    ck_st_index_free(&w->index);
    free(w->maps);
    free(w->files);
    free(w->opened);
    free(w->dir);
    memset(w, 0, sizeof *w);
}

void ck_weights_drop(ck_weights *w, const void *p, size_t n) {
    if (w->gguf) {
        ck_gguf_weights_drop(w->gguf, p, n);
        return;
    }
    for (size_t i = 0; w->opened && i < w->index.n_shards; i++)
        if (w->opened[i] && ck_map_drop(&w->maps[i], p, n)) return;
}

size_t ck_weights_count(const ck_weights *w) { return w->gguf ? w->gguf->n : w->index.n; }

const char *ck_weights_name(const ck_weights *w, size_t i) { return w->gguf ? w->gguf->names[i] : w->index.refs[i].name; }

static const ck_st_entry *find_entry(const ck_st *f, const char *name) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(f->entries[mid].name, name);
        if (c == 0) return &f->entries[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int ck_weights_find(ck_weights *w, const char *name, ck_tensor *t, char *err, size_t errlen) {
    if (w->gguf) return ck_gguf_weights_find(w->gguf, name, t, err, errlen);
    ck_st_ref key = {(char *)name, 0};
    const ck_st_ref *r = w->index.n ? bsearch(&key, w->index.refs, w->index.n, sizeof key, cmp_ref) : NULL;
    if (!r) return 0;
    if (open_shard(w, r->shard, name, err, errlen) != 0) return -1;
    const ck_st_entry *e = find_entry(&w->files[r->shard], name);
    if (!e)
        return ck_err(err, errlen, "the index puts tensor '%s' in %s, which does not hold it", name,
                      w->index.shards[r->shard]);
    if (e->dtype < 0)
        return ck_err(err, errlen, "tensor '%s' has dtype %s; supported: F32, F16, BF16", name, e->dtype_name);
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

size_t ck_weights_mapped_shards(const ck_weights *w) {
    size_t n = w->gguf != NULL;
    for (size_t i = 0; i < w->index.n_shards; i++) n += w->opened[i];
    return n;
}
