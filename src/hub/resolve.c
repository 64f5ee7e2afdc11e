/* resolve.c — MODEL argument -> path (see resolve.h); ORG/NAME:TAG picks one GGUF file of a repository. */
#include "hub/resolve.h"
#include "base/err.h"
#include "hub/paths.h"
#include "hub/scan.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int copy_out(char *dir, size_t cap, const char *s, char *err, size_t errlen) {
    if (strlen(s) + 1 > cap) return ck_err(err, errlen, "path too long: %s", s);
    strcpy(dir, s);
    return 0;
}

/* The one *.gguf file of dir whose name contains tag (case-insensitive), joined onto dir in place. */
static int pick_gguf(char *dir, size_t cap, const char *tag, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) return ck_err(err, errlen, "cannot read %s", dir);
    char pick[256] = "", names[1024] = "";
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf")) continue;
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? ", " : "", e->d_name);
        if (strcasestr(e->d_name, tag) && n++ == 0) snprintf(pick, sizeof pick, "%s", e->d_name);
    }
    closedir(d);
    if (n != 1)
        return ck_err(err, errlen, "%s: %s .gguf file matches '%s' (files: %s)", dir, n ? "more than one" : "no", tag,
                      names[0] ? names : "none");
    size_t len = strlen(dir);
    if (len + 1 + strlen(pick) + 1 > cap) return ck_err(err, errlen, "path too long");
    snprintf(dir + len, cap - len, "/%s", pick);
    return 0;
}

/* ORG/NAME:TAG picks the GGUF file of the repository whose name contains TAG (e.g. Q4_K_M). */
static int resolve_tagged(const char *arg, const ck_pull_progress *progress, char *dir, size_t cap, ck_resolved *how,
                          char *err, size_t errlen) {
    const char *colon = strrchr(arg, ':');
    char repo[512];
    if ((size_t)(colon - arg) >= sizeof repo) return ck_err(err, errlen, "repo id too long");
    memcpy(repo, arg, (size_t)(colon - arg));
    repo[colon - arg] = 0;
    if (!colon[1] || ck_hub_resolve(repo, progress, dir, cap, how, err, errlen) != 0) return -1;
    return pick_gguf(dir, cap, colon + 1, err, errlen);
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
    if (ck_hub_offline())
        return ck_err(err, errlen, "%s; HF_HUB_OFFLINE is set, so it cannot be downloaded now", why);
    if (progress && progress->note) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s; pulling it", why);
        progress->note(progress->ud, msg);
    }
    ck_pull_opts o = {.repo = arg, .revision = "main", .progress = progress};
    ck_pull_result r;
    if (ck_hub_pull(&o, &r, err, errlen) != 0) return -1;
    *how = CK_RESOLVED_PULLED;
    return copy_out(dir, cap, r.snapshot, err, errlen);
}
