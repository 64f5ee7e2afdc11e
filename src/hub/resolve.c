/* resolve.c — MODEL argument -> path (see resolve.h); ORG/NAME:TAG picks one GGUF file of a repository. */
#include "hub/resolve.h"
#include "base/err.h"
#include "hub/api.h"
#include "hub/paths.h"
#include "hub/scan.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int copy_out(char *dir, size_t cap, const char *s, char *err, size_t errlen) {
    if (strlen(s) + 1 > cap) return ck_err(err, errlen, "path too long: %s", s);
    strcpy(dir, s);
    return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ck_hub_gguf_pick over the files of dir: on 1 the picked file is joined onto dir in place; 0 and -1
 * (with err) as ck_hub_gguf_pick, or -1 when dir cannot be read. */
static int pick_gguf(char *dir, size_t cap, const char *tag, const char *where, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) return ck_err(err, errlen, "cannot read %s", dir);
    ck_hub_names names = {0};
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));)
        if (e->d_name[0] != '.' && ck_hub_names_add(&names, e->d_name) != 0) rc = ck_err(err, errlen, "out of memory");
    closedir(d);
    size_t i;
    if (rc == 0) {
        if (names.n) qsort(names.v, names.n, sizeof *names.v, cmp_name); /* the error lists them in order */
        rc = ck_hub_gguf_pick(&names, tag, where, &i, err, errlen);
    }
    if (rc == 1) {
        size_t len = strlen(dir);
        if (len + 1 + strlen(names.v[i]) + 1 > cap) rc = ck_err(err, errlen, "path too long");
        else snprintf(dir + len, cap - len, "/%s", names.v[i]);
    }
    ck_hub_names_free(&names);
    return rc;
}

/* Pulls repo (only the .gguf file that tag picks, when tag is not NULL) after the cache lacked it for
 * the reason why; the snapshot, or the .gguf file in it, goes to dir. */
static int pull_missing(const char *repo, const char *tag, const char *why, const ck_pull_progress *progress,
                        char *dir, size_t cap, char *err, size_t errlen) {
    if (ck_hub_offline())
        return ck_err(err, errlen, "%s; HF_HUB_OFFLINE is set, so it cannot be downloaded now", why);
    if (progress && progress->note) {
        char msg[2200];
        snprintf(msg, sizeof msg, "%s; pulling it", why);
        progress->note(progress->ud, msg);
    }
    ck_pull_opts o = {.repo = repo, .revision = "main", .gguf_tag = tag, .progress = progress};
    ck_pull_result r;
    if (ck_hub_pull(&o, &r, err, errlen) != 0) return -1;
    if (!tag) return copy_out(dir, cap, r.snapshot, err, errlen);
    if (strlen(r.snapshot) + 1 + strlen(r.gguf) + 1 > cap) return ck_err(err, errlen, "path too long");
    snprintf(dir, cap, "%s/%s", r.snapshot, r.gguf);
    return 0;
}

/* ORG/NAME:TAG picks the GGUF file of the repository whose name contains TAG (e.g. Q4_K_M): the cached
 * one when the cached snapshot holds exactly one such file, else that one file pulled alone. DIR:TAG
 * picks among the files of a local directory. */
static int resolve_tagged(const char *arg, const ck_pull_progress *progress, char *dir, size_t cap, ck_resolved *how,
                          char *err, size_t errlen) {
    const char *colon = strrchr(arg, ':'), *tag = colon + 1;
    char repo[512];
    if ((size_t)(colon - arg) >= sizeof repo) return ck_err(err, errlen, "repo id too long");
    memcpy(repo, arg, (size_t)(colon - arg));
    repo[colon - arg] = 0;
    if (!*tag)
        return ck_err(err, errlen,
                      "'%s' has no TAG after ':' (ORG/NAME:TAG picks the .gguf file whose name contains TAG, "
                      "e.g. Q8_0)",
                      arg);
    struct stat st;
    if (stat(repo, &st) == 0) {
        *how = CK_RESOLVED_LOCAL;
        if (copy_out(dir, cap, repo, err, errlen) != 0) return -1;
        return pick_gguf(dir, cap, tag, repo, err, errlen) == 1 ? 0 : -1;
    }
    if (!ck_hub_repo_id_full(repo) || repo[0] == '.')
        return ck_err(err, errlen,
                      "'%s' is not a model: no such file or directory, and '%s' is not a HuggingFace repo id "
                      "(ORG/NAME:TAG)",
                      arg, repo);
    char cache[CK_PATH_MAX], why[2048];
    if (ck_hub_cache_dir(cache, sizeof cache, err, errlen) != 0) return -1;
    int found = ck_hub_find(cache, repo, "main", dir, cap, why, sizeof why);
    if (found < 0) return ck_err(err, errlen, "%s", why);
    if (found == 0) {
        char where[600];
        snprintf(where, sizeof where, "%s in the HF cache", repo);
        int rc = pick_gguf(dir, cap, tag, where, why, sizeof why);
        if (rc < 0) return ck_err(err, errlen, "%s", why);
        if (rc == 1) {
            *how = CK_RESOLVED_CACHED;
            return 0;
        }
        /* rc 0: the cache holds other files of the repo (another quantization), not this one */
    }
    if (pull_missing(repo, tag, why, progress, dir, cap, err, errlen) != 0) return -1;
    *how = CK_RESOLVED_PULLED;
    return 0;
}

int ck_hub_resolve(const char *arg, const ck_pull_progress *progress, char *dir, size_t cap, ck_resolved *how,
                   char *err, size_t errlen) {
    struct stat st;
    ck_resolved dummy;
    if (!how) how = &dummy;
    if (!arg || !*arg) return ck_err(err, errlen, "no model given");
    if (stat(arg, &st) == 0) {
        *how = CK_RESOLVED_LOCAL;
        return copy_out(dir, cap, arg, err, errlen);
    }
    if (strchr(arg, ':') && !strchr(strrchr(arg, ':'), '/') && arg[0] != '.' && arg[0] != '/')
        return resolve_tagged(arg, progress, dir, cap, how, err, errlen);
    if (!ck_hub_repo_id_full(arg) || arg[0] == '.')
        return ck_err(err, errlen,
                      "'%s' is not a model: no such file or directory, and not a HuggingFace repo id (ORG/NAME)", arg);
    char cache[CK_PATH_MAX], why[1024];
    if (ck_hub_cache_dir(cache, sizeof cache, err, errlen) != 0) return -1;
    int found = ck_hub_find(cache, arg, "main", dir, cap, why, sizeof why);
    if (found < 0) return ck_err(err, errlen, "%s", why);
    if (found == 0) {
        *how = CK_RESOLVED_CACHED;
        return 0;
    }
    if (pull_missing(arg, NULL, why, progress, dir, cap, err, errlen) != 0) return -1;
    *how = CK_RESOLVED_PULLED;
    return 0;
}
