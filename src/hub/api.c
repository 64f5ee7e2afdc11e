/* api.c — the Hub's JSON replies -> plain C lists (see api.h). cJSON does the parsing; everything taken
 * from it is type-checked and validated here before it leaves. */
#include "hub/api.h"
#include "base/err.h"
#include "base/grow.h"
#include "hub/paths.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

/* a JSON number as a size: -1 unless it is a whole number in [0, 2^62] */
static int64_t size_of(const cJSON *n) {
    if (!cJSON_IsNumber(n)) return -1;
    double d = n->valuedouble;
    if (!(d >= 0 && d <= 4611686018427387904.0) || d != (double)(int64_t)d) return -1;
    return (int64_t)d;
}

static int is_sha256(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return 0;
    return n == 64;
}

int ck_hub_names_has(const ck_hub_names *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], name)) return 1;
    return 0;
}

/* adds a copy of name (unless dedup and it is already there); -1 when out of memory */
static int names_add(ck_hub_names *l, const char *name, int dedup) {
    if (dedup && ck_hub_names_has(l, name)) return 0;
    char **nv = ck_grow(l->v, &l->cap, l->n + 1, sizeof *nv, 16);
    if (!nv) return -1;
    l->v = nv;
    if (!(l->v[l->n] = strdup(name))) return -1;
    l->n++;
    return 0;
}

int ck_hub_names_add(ck_hub_names *l, const char *name) { return names_add(l, name, 0); }

void ck_hub_names_free(ck_hub_names *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int is_gguf(const char *s) {
    size_t n = strlen(s);
    return !strchr(s, '/') && n > 5 && !strcmp(s + n - 5, ".gguf");
}

/* 1 when s ends in -NNNNN-of-NNNNN.gguf, llama.cpp's name for one part of a split model */
static int is_split_part(const char *s) {
    static const char pat[] = "-#####-of-#####.gguf";
    size_t n = strlen(s), m = sizeof pat - 1;
    if (n <= m) return 0;
    s += n - m;
    for (size_t i = 0; i < m; i++)
        if (pat[i] == '#' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i]) return 0;
    return 1;
}

size_t ck_hub_gguf_list(const ck_hub_names *names, char *buf, size_t cap) {
    size_t used = 0, n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < names->n; i++) {
        if (!is_gguf(names->v[i])) continue;
        n++;
        if (used >= cap) continue;
        int w = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", names->v[i]);
        used = w < 0 ? cap : used + (size_t)w;
        if (used >= cap && cap > 4) strcpy(buf + cap - 5, " ...");
    }
    return n;
}

int ck_hub_gguf_pick(const ck_hub_names *names, const char *tag, const char *where, size_t *pick, char *err,
                     size_t errlen) {
    size_t n_match = 0, n_split = 0;
    for (size_t i = 0; i < names->n; i++) {
        const char *s = names->v[i];
        if (!is_gguf(s) || !strcasestr(s, tag)) continue;
        if (n_match++ == 0) *pick = i;
        n_split += (size_t)is_split_part(s);
    }
    if (n_match == 1 && !n_split) return 1;
    char list[1536];
    if (!ck_hub_gguf_list(names, list, sizeof list)) strcpy(list, "none");
    if (n_match == 0) {
        ck_err(err, errlen, "%s: no .gguf file matches '%s' (.gguf files: %s)", where, tag, list);
        return 0;
    }
    if (n_split == n_match)
        return ck_err(err, errlen,
                      "%s: '%s' matches %s, a part of a split GGUF model (NAME-00001-of-0000N.gguf); cake loads "
                      "only single-file GGUF models: merge the parts into one file (llama.cpp's llama-gguf-split "
                      "--merge) and pass its path",
                      where, tag, names->v[*pick]);
    return ck_err(err, errlen, "%s: more than one .gguf file matches '%s' (.gguf files: %s); give a longer TAG",
                  where, tag, list);
}

int ck_hub_info_parse(const char *buf, size_t len, ck_hub_info *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    cJSON *j = cJSON_ParseWithLength(buf, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return ck_err(err, errlen, "the model info is not a JSON object");
    }
    int rc = 0;
    const cJSON *sha = get(j, "sha");
    if (cJSON_IsString(sha) && ck_hub_is_commit(sha->valuestring)) memcpy(out->commit, sha->valuestring, 41);
    else rc = ck_err(err, errlen, "the model info names no commit");
    const cJSON *sib = get(j, "siblings");
    for (const cJSON *it = !rc && cJSON_IsArray(sib) ? sib->child : NULL; it; it = it->next) {
        const cJSON *f = get(it, "rfilename");
        if (cJSON_IsString(f) && ck_hub_filename_valid(f->valuestring) && names_add(&out->siblings, f->valuestring, 0)) {
            rc = ck_err(err, errlen, "out of memory");
            break;
        }
    }
    cJSON_Delete(j);
    if (rc) ck_hub_info_free(out);
    return rc;
}

void ck_hub_info_free(ck_hub_info *info) { ck_hub_names_free(&info->siblings); }

/* one tree entry -> f (path malloc'd); 0 when it is no file or has no valid path, -1 when out of memory */
static int tree_entry(const cJSON *it, ck_hub_file *f) {
    const cJSON *path = get(it, "path"), *type = get(it, "type");
    if (!cJSON_IsString(path) || !ck_hub_filename_valid(path->valuestring)) return 0;
    if (cJSON_IsString(type) && strcmp(type->valuestring, "file")) return 0;
    memset(f, 0, sizeof *f);
    f->size = size_of(get(it, "size"));
    const cJSON *lfs = get(it, "lfs");
    const cJSON *oid = get(lfs, "oid");
    if (cJSON_IsString(oid) && is_sha256(oid->valuestring)) {
        memcpy(f->sha256, oid->valuestring, 65);
        int64_t lsize = size_of(get(lfs, "size"));
        if (lsize >= 0) f->size = lsize;
    }
    return (f->path = strdup(path->valuestring)) ? 1 : -1;
}

int ck_hub_tree_parse(const char *buf, size_t len, ck_hub_tree *t, char *err, size_t errlen) {
    cJSON *j = cJSON_ParseWithLength(buf, len);
    if (!cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return ck_err(err, errlen, "the file list is not a JSON array");
    }
    int rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        ck_hub_file *nv = ck_grow(t->v, &t->cap, t->n + 1, sizeof *nv, 64);
        if (!nv) {
            rc = ck_err(err, errlen, "out of memory");
            break;
        }
        t->v = nv;
        int got = tree_entry(it, &t->v[t->n]);
        if (got < 0) {
            rc = ck_err(err, errlen, "out of memory");
            break;
        }
        t->n += (size_t)got;
    }
    cJSON_Delete(j);
    return rc;
}

void ck_hub_tree_free(ck_hub_tree *t) {
    for (size_t i = 0; i < t->n; i++) free(t->v[i].path);
    free(t->v);
    memset(t, 0, sizeof *t);
}

int ck_hub_weight_map_parse(const char *buf, size_t len, ck_hub_names *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    cJSON *j = cJSON_ParseWithLength(buf, len);
    const cJSON *map = get(j, "weight_map");
    int rc = cJSON_IsObject(map) ? 0 : ck_err(err, errlen, "model.safetensors.index.json has no weight_map");
    for (const cJSON *it = rc ? NULL : map->child; it; it = it->next) {
        if (!cJSON_IsString(it) || !ck_hub_filename_valid(it->valuestring)) {
            rc = ck_err(err, errlen, "model.safetensors.index.json names an invalid shard file");
            break;
        }
        if (names_add(out, it->valuestring, 1) != 0) {
            rc = ck_err(err, errlen, "out of memory");
            break;
        }
    }
    cJSON_Delete(j);
    if (rc) ck_hub_names_free(out);
    return rc;
}
