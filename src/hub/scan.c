/* scan.c — cache listing, completeness, name matching and deletion (see scan.h). Reads directories
 * with opendir/lstat/stat only; deletion walks with nftw(FTW_PHYS) so it never follows a symlink out
 * of the cache. */
#include "hub/scan.h"
#include "base/grow.h"
#include "base/err.h"
#include "base/file.h"
#include "hub/api.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* 1 when dir/name exists as a regular file (following links) */
static int has_file(const char *dir, const char *name) {
    char p[CK_PATH_MAX];
    if (ck_path_join(p, sizeof p, dir, name, NULL, 0) != 0) return 0;
    return ck_is_file(p);
}

static int index_complete(const char *dir, char *why, size_t whylen) {
    char p[CK_PATH_MAX], e[256];
    char *text;
    size_t len;
    if (ck_path_join(p, sizeof p, dir, "model.safetensors.index.json", NULL, 0) != 0 ||
        ck_file_read(p, &text, &len, e, sizeof e) != 0) {
        ck_err(why, whylen, "cannot read model.safetensors.index.json");
        return 0;
    }
    ck_hub_names shards;
    int parsed = ck_hub_weight_map_parse(text, len, &shards, why, whylen) == 0;
    free(text);
    if (!parsed) return 0;
    int ok = 1;
    for (size_t i = 0; ok && i < shards.n; i++)
        if (!has_file(dir, shards.v[i])) {
            ck_err(why, whylen, "missing shard %s", shards.v[i]);
            ok = 0;
        }
    ck_hub_names_free(&shards);
    return ok;
}

int ck_model_dir_complete(const char *dir, char *why, size_t whylen) {
    if (!ck_is_dir(dir)) return ck_err(why, whylen, "no directory %s", dir), 0;
    int config = has_file(dir, "config.json");
    if (config && has_file(dir, "model.safetensors.index.json")) return index_complete(dir, why, whylen);
    if (config && has_file(dir, "model.safetensors")) return 1;
    DIR *d = opendir(dir); /* a GGUF repository needs no config.json: the file carries its own */
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));)
        if (((config && ends_with(e->d_name, ".safetensors")) || ends_with(e->d_name, ".gguf")) && has_file(dir, e->d_name))
            found = 1;
    if (d) closedir(d);
    if (!found) ck_err(why, whylen, config ? "no weights (*.safetensors or *.gguf)" : "missing config.json (and no *.gguf)");
    return found;
}

static __thread uint64_t walk_total;
static int size_cb(const char *p, const struct stat *st, int type, struct FTW *f) {
    (void)p, (void)f;
    if (type == FTW_F && S_ISREG(st->st_mode)) walk_total += (uint64_t)st->st_size;
    return 0;
}

uint64_t ck_dir_size_bytes(const char *dir) {
    walk_total = 0;
    if (ck_is_dir(dir)) nftw(dir, size_cb, 16, FTW_PHYS);
    return walk_total;
}

static int push(ck_model_list *l, size_t *cap, const ck_model_entry *e) {
    ck_model_entry *nv = ck_grow(l->v, cap, l->n + 1, sizeof *nv, 8);
    if (!nv) return -1;
    l->v = nv;
    l->v[l->n++] = *e;
    return 0;
}

/* newest directory under <repo>/snapshots, "" when none */
static void newest_snapshot(const char *repo_dir, char *out, size_t cap) {
    char snaps[CK_PATH_MAX];
    out[0] = 0;
    if (ck_path_join(snaps, sizeof snaps, repo_dir, "snapshots", NULL, 0) != 0) return;
    DIR *d = opendir(snaps);
    if (!d) return;
    struct timespec best = {0, 0};
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[CK_PATH_MAX];
        struct stat st;
        if (ck_path_join(p, sizeof p, snaps, e->d_name, NULL, 0) != 0 || stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (!out[0] || st.st_mtim.tv_sec > best.tv_sec ||
            (st.st_mtim.tv_sec == best.tv_sec && st.st_mtim.tv_nsec > best.tv_nsec)) {
            best = st.st_mtim;
            snprintf(out, cap, "%s", p);
        }
    }
    closedir(d);
}

/* Judges an HF repo the way `run` would: by refs/main when it exists (whatever it holds), else (a pull
 * pinned to a commit writes no ref) by its newest snapshot. */
static void judge_hf(const char *root, ck_model_entry *e) {
    char ref[CK_PATH_MAX], why[512];
    struct stat st;
    if (ck_path_join(ref, sizeof ref, e->path, "refs/main", NULL, 0) == 0 && lstat(ref, &st) == 0) {
        e->complete = ck_hub_find(root, e->name, "main", e->snapshot, sizeof e->snapshot, e->why, sizeof e->why) == 0;
        if (!e->complete) e->snapshot[0] = 0;
        return;
    }
    newest_snapshot(e->path, e->snapshot, sizeof e->snapshot);
    if (!e->snapshot[0]) ck_err(e->why, sizeof e->why, "%s has no snapshot (an earlier pull did not finish)", e->name);
    else if (!(e->complete = ck_model_dir_complete(e->snapshot, why, sizeof why)))
        ck_err(e->why, sizeof e->why, "%s is incomplete: %s", e->name, why);
}

/* opendir of a cache directory: NULL with *rc 0 when it does not exist (an empty cache), NULL with *rc -1
 * and err when it cannot be read or is not a directory */
static DIR *open_cache(const char *dir, const char *what, int *rc, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    *rc = 0;
    if (d || errno == ENOENT) return d;
    if (errno == ENOTDIR) *rc = ck_err(err, errlen, "%s %s is not a directory", what, dir);
    else *rc = ck_err(err, errlen, "cannot read %s %s: %s", what, dir, strerror(errno));
    return NULL;
}

static int scan_hf(const char *root, ck_model_list *l, size_t *cap, char *err, size_t errlen) {
    int rc;
    DIR *d = open_cache(root, "the HF cache (HF_HUB_CACHE / HF_HOME)", &rc, err, errlen);
    if (!d) return rc;
    for (struct dirent *de; (de = readdir(d));) {
        ck_model_entry e;
        memset(&e, 0, sizeof e);
        if (!ck_hub_repo_from_dirname(de->d_name, e.name, sizeof e.name)) continue;
        if (ck_path_join(e.path, sizeof e.path, root, de->d_name, NULL, 0) != 0 || !ck_is_dir(e.path)) continue;
        e.source = CK_SRC_HF;
        judge_hf(root, &e);
        char blobs[CK_PATH_MAX];
        if (ck_path_join(blobs, sizeof blobs, e.path, "blobs", NULL, 0) == 0) e.size_bytes = ck_dir_size_bytes(blobs);
        if (push(l, cap, &e) != 0) {
            closedir(d);
            return ck_err(err, errlen, "out of memory");
        }
    }
    closedir(d);
    return 0;
}

static int scan_worker(const char *root, ck_model_list *l, size_t *cap, char *err, size_t errlen) {
    char models[CK_PATH_MAX];
    if (ck_path_join(models, sizeof models, root, "models", err, errlen) != 0) return -1;
    int rc;
    DIR *d = open_cache(models, "cake's worker cache (CAKE_CACHE)", &rc, err, errlen);
    if (!d) return rc;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        ck_model_entry e;
        memset(&e, 0, sizeof e);
        char fake[300];
        snprintf(fake, sizeof fake, "models--%s", de->d_name);
        if (!ck_hub_repo_from_dirname(fake, e.name, sizeof e.name)) continue;
        if (ck_path_join(e.path, sizeof e.path, models, de->d_name, NULL, 0) != 0 || !ck_is_dir(e.path)) continue;
        e.source = CK_SRC_WORKER;
        snprintf(e.snapshot, sizeof e.snapshot, "%s", e.path);
        char why[256];
        if (!(e.complete = ck_model_dir_complete(e.path, why, sizeof why)))
            ck_err(e.why, sizeof e.why, "%s is incomplete: %s", e.name, why);
        e.size_bytes = ck_dir_size_bytes(e.path);
        if (push(l, cap, &e) != 0) {
            closedir(d);
            return ck_err(err, errlen, "out of memory");
        }
    }
    closedir(d);
    return 0;
}

static int cmp_entry(const void *a, const void *b) {
    const ck_model_entry *x = a, *y = b;
    if (x->source != y->source) return (int)x->source - (int)y->source;
    return strcmp(x->name, y->name);
}

int ck_models_scan(const char *hf_cache, const char *cake_cache, ck_model_list *out, char *err, size_t errlen) {
    size_t cap = 0;
    out->v = NULL;
    out->n = 0;
    if ((hf_cache && scan_hf(hf_cache, out, &cap, err, errlen) != 0) ||
        (cake_cache && scan_worker(cake_cache, out, &cap, err, errlen) != 0)) {
        ck_models_free(out);
        return -1;
    }
    if (out->n) qsort(out->v, out->n, sizeof *out->v, cmp_entry);
    return 0;
}

void ck_models_free(ck_model_list *l) {
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

size_t ck_models_match(const ck_model_list *l, const char *query, size_t *idx, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, query)) {
            if (n < cap) idx[n] = i;
            n++;
        }
    if (n || !*query) return n;
    size_t q = strlen(query);
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->v[i].name;
        size_t len = strlen(s);
        if (len > q && s[len - q - 1] == '/' && !strcmp(s + len - q, query)) {
            if (n < cap) idx[n] = i;
            n++;
        }
    }
    return n;
}

int ck_hub_find(const char *hf_cache, const char *repo, const char *revision, char *dir, size_t cap, char *err,
                size_t errlen) {
    char repo_dir[CK_PATH_MAX], commit[41], rel[64], why[512];
    if (!ck_hub_repo_id_valid(repo)) return ck_err(err, errlen, "invalid repo id '%s'", repo);
    if (ck_hub_repo_dir(repo_dir, sizeof repo_dir, hf_cache, repo, err, errlen) != 0) return -1;
    if (!ck_is_dir(repo_dir)) {
        ck_err(err, errlen, "%s is not in the HF cache", repo);
        return 1;
    }
    if (ck_hub_ref_read(repo_dir, revision, commit, why, sizeof why) != 0) {
        ck_err(err, errlen, "%s: %s (an earlier pull did not finish)", repo, why);
        return 1;
    }
    snprintf(rel, sizeof rel, "snapshots/%s", commit);
    if (ck_path_join(dir, cap, repo_dir, rel, err, errlen) != 0) return -1;
    if (!ck_model_dir_complete(dir, why, sizeof why)) {
        ck_err(err, errlen, "%s is incomplete: %s", repo, why);
        return 1;
    }
    return 0;
}

static int rm_cb(const char *p, const struct stat *st, int type, struct FTW *f) {
    (void)st, (void)f;
    int rc = (type == FTW_DP) ? rmdir(p) : unlink(p);
    return rc == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -r of path, never following symlinks */
static int remove_tree(const char *path, char *err, size_t errlen) {
    if (nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return ck_err(err, errlen, "cannot delete everything in %s: %s", path, strerror(errno));
    return 0;
}

/* 1 when real(path)'s parent is real(root) */
static int direct_child_of(const char *path, const char *root) {
    char rp[PATH_MAX], rr[PATH_MAX];
    if (!root || !realpath(path, rp) || !realpath(root, rr)) return 0;
    char *slash = strrchr(rp, '/');
    if (!slash || slash == rp) return 0;
    *slash = 0;
    return !strcmp(rp, rr);
}

int ck_model_remove(const ck_model_entry *m, const char *hf_cache, const char *cake_cache, char *err,
                    size_t errlen) {
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    if (m->source == CK_SRC_HF) {
        char name[256];
        if (!ck_hub_repo_from_dirname(base, name, sizeof name) || !direct_child_of(m->path, hf_cache))
            return ck_err(err, errlen, "refusing to delete %s: not a model directory of the HF cache", m->path);
        if (remove_tree(m->path, err, errlen) != 0) return -1;
        char locks[CK_PATH_MAX], lock[CK_PATH_MAX];
        if (ck_path_join(locks, sizeof locks, hf_cache, ".locks", NULL, 0) == 0 &&
            ck_path_join(lock, sizeof lock, locks, base, NULL, 0) == 0 && ck_is_dir(lock))
            remove_tree(lock, NULL, 0); /* best effort: stale lock files are harmless */
        return 0;
    }
    char models[CK_PATH_MAX];
    if (!cake_cache || ck_path_join(models, sizeof models, cake_cache, "models", NULL, 0) != 0 ||
        !direct_child_of(m->path, models))
        return ck_err(err, errlen, "refusing to delete %s: not a model directory of the cake cache", m->path);
    return remove_tree(m->path, err, errlen);
}
