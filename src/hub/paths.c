/* paths.c — cache locations from the environment, name validation and repo-id <-> directory mapping
 * (see paths.h for the layout). Pure string work plus getenv/getpwuid and one small file read. */
#include "hub/paths.h"
#include "base/err.h"
#include "base/file.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int home(char *buf, size_t cap, char *err, size_t errlen) {
    const char *h = env_nonempty("HOME");
    if (!h) {
        struct passwd *pw = getpwuid(getuid());
        if (pw && pw->pw_dir && *pw->pw_dir) h = pw->pw_dir;
    }
    if (!h) return ck_err(err, errlen, "cannot find the home directory: HOME is not set");
    if (snprintf(buf, cap, "%s", h) >= (int)cap) return ck_err(err, errlen, "home path too long");
    return 0;
}

/* Copies a path from the environment, expanding a leading "~/" like Python's expanduser. */
static int expand(char *buf, size_t cap, const char *v, char *err, size_t errlen) {
    if (v[0] == '~' && (v[1] == '/' || v[1] == 0)) {
        char h[CK_PATH_MAX];
        if (home(h, sizeof h, err, errlen) != 0) return -1;
        if (snprintf(buf, cap, "%s%s", h, v + 1) >= (int)cap) return ck_err(err, errlen, "path too long: %s", v);
        return 0;
    }
    if (snprintf(buf, cap, "%s", v) >= (int)cap) return ck_err(err, errlen, "path too long: %s", v);
    return 0;
}

/* <$XDG_CACHE_HOME or ~/.cache>/<leaf> */
static int xdg_cache(char *buf, size_t cap, const char *leaf, char *err, size_t errlen) {
    char base[CK_PATH_MAX];
    const char *x = env_nonempty("XDG_CACHE_HOME");
    if (x) {
        if (expand(base, sizeof base, x, err, errlen) != 0) return -1;
    } else {
        char h[CK_PATH_MAX];
        if (home(h, sizeof h, err, errlen) != 0) return -1;
        if (ck_path_join(base, sizeof base, h, ".cache", err, errlen) != 0) return -1;
    }
    return ck_path_join(buf, cap, base, leaf, err, errlen);
}

int ck_hub_home_dir(char *buf, size_t cap, char *err, size_t errlen) {
    const char *v = env_nonempty("HF_HOME");
    if (v) return expand(buf, cap, v, err, errlen);
    return xdg_cache(buf, cap, "huggingface", err, errlen);
}

int ck_hub_cache_dir(char *buf, size_t cap, char *err, size_t errlen) {
    const char *v = env_nonempty("HF_HUB_CACHE");
    if (!v) v = env_nonempty("HUGGINGFACE_HUB_CACHE");
    if (v) return expand(buf, cap, v, err, errlen);
    char h[CK_PATH_MAX];
    if (ck_hub_home_dir(h, sizeof h, err, errlen) != 0) return -1;
    return ck_path_join(buf, cap, h, "hub", err, errlen);
}

int ck_cake_cache_dir(char *buf, size_t cap, char *err, size_t errlen) {
    const char *v = env_nonempty("CAKE_CACHE");
    if (v) return expand(buf, cap, v, err, errlen);
    return xdg_cache(buf, cap, "cake", err, errlen);
}

int ck_hub_endpoint(char *buf, size_t cap, char *err, size_t errlen) {
    const char *v = env_nonempty("HF_ENDPOINT");
    if (!v) v = CK_HUB_DEFAULT_ENDPOINT;
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '/') n--;
    if (n == 0 || n + 1 > cap) return ck_err(err, errlen, "HF_ENDPOINT is empty or too long");
    memcpy(buf, v, n);
    buf[n] = 0;
    return 0;
}

static void trim(char *s) {
    size_t n = strlen(s), i = 0;
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    while (s[i] && isspace((unsigned char)s[i])) i++;
    memmove(s, s + i, n - i + 1);
}

int ck_hub_token(char *buf, size_t cap, char *err, size_t errlen) {
    const char *v = env_nonempty("HF_TOKEN");
    if (!v) v = env_nonempty("HUGGING_FACE_HUB_TOKEN");
    if (v) {
        if (snprintf(buf, cap, "%s", v) >= (int)cap) return ck_err(err, errlen, "HF_TOKEN is too long");
        trim(buf);
        return *buf ? 1 : 0;
    }
    char path[CK_PATH_MAX];
    const char *p = env_nonempty("HF_TOKEN_PATH");
    if (p) {
        if (expand(path, sizeof path, p, err, errlen) != 0) return -1;
    } else {
        char h[CK_PATH_MAX];
        if (ck_hub_home_dir(h, sizeof h, err, errlen) != 0) return -1;
        if (ck_path_join(path, sizeof path, h, "token", err, errlen) != 0) return -1;
    }
    if (!ck_is_file(path)) return 0;
    char *text;
    size_t len;
    if (ck_file_read(path, &text, &len, err, errlen) != 0) return -1;
    trim(text);
    int found = *text != 0;
    if (strlen(text) + 1 > cap) {
        free(text);
        return ck_err(err, errlen, "the token in %s is too long", path);
    }
    strcpy(buf, text);
    free(text);
    return found;
}

int ck_hub_offline(void) {
    const char *v = getenv("HF_HUB_OFFLINE");
    if (!v) return 0;
    return !strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

static int name_part_valid(const char *s, size_t n) {
    if (n == 0 || n > 96) return 0;
    if (s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '_' || c == '.')) return 0;
        if (i > 0 && ((c == '-' && s[i - 1] == '-') || (c == '.' && s[i - 1] == '.'))) return 0;
    }
    return 1;
}

int ck_hub_repo_id_valid(const char *s) {
    const char *slash = strchr(s, '/');
    if (!slash) return name_part_valid(s, strlen(s));
    if (strchr(slash + 1, '/')) return 0;
    return name_part_valid(s, (size_t)(slash - s)) && name_part_valid(slash + 1, strlen(slash + 1));
}

int ck_hub_repo_id_full(const char *s) { return strchr(s, '/') && ck_hub_repo_id_valid(s); }

/* components separated by '/', none empty, "." or ".."; every char accepted by ok() */
static int relpath_valid(const char *s, size_t max_len, int (*ok)(unsigned char)) {
    size_t n = strlen(s);
    if (n == 0 || n > max_len) return 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return 0;
        for (size_t i = 0; i < len; i++)
            if (!ok((unsigned char)p[i])) return 0;
        if (!e) return 1;
        p = e + 1;
    }
}

static int rev_char(unsigned char c) { return isalnum(c) || c == '.' || c == '_' || c == '-'; }
static int file_char(unsigned char c) { return c >= 0x20 && c != 0x7f && c != '\\'; }

int ck_hub_revision_valid(const char *s) { return relpath_valid(s, 255, rev_char) && !strstr(s, ".."); }
int ck_hub_filename_valid(const char *s) { return relpath_valid(s, 1024, file_char); }

int ck_hub_etag_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 128) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_')) return 0;
    return 1;
}

int ck_hub_is_commit(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return 0;
    return n == 40;
}

void ck_hub_etag_normalize(char *etag) {
    char *p = etag;
    if (p[0] == 'W' && p[1] == '/') p += 2;
    size_t n = strlen(p);
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p++;
        n -= 2;
    }
    memmove(etag, p, n);
    etag[n] = 0;
}

int ck_hub_repo_dir(char *buf, size_t cap, const char *cache, const char *repo, char *err, size_t errlen) {
    if (!ck_hub_repo_id_valid(repo)) return ck_err(err, errlen, "invalid repo id '%s'", repo);
    char leaf[256] = "models--";
    size_t o = strlen(leaf);
    for (const char *p = repo; *p && o + 3 < sizeof leaf; p++) {
        if (*p == '/') {
            leaf[o++] = '-';
            leaf[o++] = '-';
        } else {
            leaf[o++] = *p;
        }
    }
    leaf[o] = 0;
    return ck_path_join(buf, cap, cache, leaf, err, errlen);
}

int ck_hub_repo_from_dirname(const char *dirname, char *repo, size_t cap) {
    if (strncmp(dirname, "models--", 8) != 0) return 0;
    const char *s = dirname + 8;
    const char *sep = strstr(s, "--");
    size_t n = strlen(s);
    if (n + 1 > cap) return 0;
    if (!sep) {
        memcpy(repo, s, n + 1);
    } else {
        size_t a = (size_t)(sep - s);
        if (strstr(sep + 2, "--")) return 0;
        memcpy(repo, s, a);
        repo[a] = '/';
        memcpy(repo + a + 1, sep + 2, n - a - 2 + 1);
    }
    return ck_hub_repo_id_valid(repo);
}

int ck_hub_ref_read(const char *repo_dir, const char *revision, char commit[41], char *err, size_t errlen) {
    if (ck_hub_is_commit(revision)) {
        memcpy(commit, revision, 41);
        return 0;
    }
    if (!ck_hub_revision_valid(revision)) return ck_err(err, errlen, "invalid revision '%s'", revision);
    char path[CK_PATH_MAX], rel[300];
    snprintf(rel, sizeof rel, "refs/%s", revision);
    if (ck_path_join(path, sizeof path, repo_dir, rel, err, errlen) != 0) return -1;
    if (!ck_is_file(path)) return ck_err(err, errlen, "no ref '%s' in %s", revision, repo_dir);
    char *text;
    size_t len;
    if (ck_file_read(path, &text, &len, err, errlen) != 0) return -1;
    trim(text);
    int ok = ck_hub_is_commit(text);
    if (ok) memcpy(commit, text, 41);
    free(text);
    if (!ok) return ck_err(err, errlen, "%s does not hold a commit hash", path);
    return 0;
}
