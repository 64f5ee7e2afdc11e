/* resolve.c — MODEL argument -> path (see resolve.h). */
#include "hub/resolve.h"
#include "base/err.h"
#include "hub/paths.h"
#include "hub/scan.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int copy_out(char *dir, size_t cap, const char *s, char *err, size_t errlen) {
    if (strlen(s) + 1 > cap) return ck_err(err, errlen, "path too long: %s", s);
    strcpy(dir, s);
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
