/* pull.c — `cake pull`: Hub API (model info + tree, parsed by api.h), file selection, resumable verified
 * blob downloads and the snapshot/refs layout of huggingface_hub (see pull.h for the invariants). One
 * pull is one sequential pass: info -> tree -> per file (HEAD resolve -> blob) -> links -> ref. */
#include "hub/pull.h"
#include "base/grow.h"
#include "base/err.h"
#include "base/file.h"
#include "base/sha256.h"
#include "hub/api.h"
#include "hub/http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define URL_MAX 6144

typedef struct item {          /* one file this pull places in the snapshot */
    char name[1025];
    char etag[161];
    char sha256[65];           /* expected, "" when the Hub reports none */
    int64_t size;              /* expected, -1 unknown */
    char blob[CK_PATH_MAX];    /* where its bytes are once fetched */
    int linked;                /* the snapshot entry is already right */
} item;

typedef struct ctx {
    const ck_pull_opts *o;
    const ck_pull_progress *p;
    ck_http http;
    int has_token;
    char endpoint[1024], home[CK_PATH_MAX], cache[CK_PATH_MAX], repo_dir[CK_PATH_MAX];
    char blobs[CK_PATH_MAX], locks[CK_PATH_MAX], snapshot[CK_PATH_MAX];
    const char *repo, *revision;
    char commit[41];
    ck_hub_info info;          /* commit and file names at the revision */
    ck_hub_tree tree;          /* sizes and LFS hashes, when the listing was available */
    item *items;
    size_t n_items, cap_items;
    ck_pull_result *res;
} ctx;

static void note(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(ctx *c, const char *fmt, ...) {
    if (!c->p || !c->p->note) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->p->note(c->p->ud, msg);
}

static int mkdir_p(const char *path, char *err, size_t errlen) {
    char tmp[CK_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return ck_err(err, errlen, "path too long: %s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char keep = *p;
            *p = 0;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return ck_err(err, errlen, "cannot create directory %s: %s", tmp, strerror(errno));
            if (!ck_is_dir(tmp)) return ck_err(err, errlen, "%s exists and is not a directory", tmp);
            *p = keep;
            if (!keep) return 0;
        }
    }
}

/* ---- errors a user can act on ---- */

static int http_error(ctx *c, const ck_http_resp *r, const char *file, const char *url, char *err, size_t errlen) {
    char extra[600] = "";
    if (r->error_message[0]) snprintf(extra, sizeof extra, " (Hub: %s)", r->error_message);
    const char *code = r->error_code;
    if (!strcmp(code, "GatedRepo") || ((r->status == 401 || r->status == 403) && strcmp(code, "RepoNotFound") &&
                                       r->error_message[0] && strstr(r->error_message, "gated"))) {
        if (!c->has_token)
            return ck_err(err, errlen,
                          "%s is a gated model: accept its terms at %s/%s, then set HF_TOKEN to an access token "
                          "(or save it in %s/token)%s",
                          c->repo, c->endpoint, c->repo, c->home, extra);
        return ck_err(err, errlen,
                      "%s is a gated model and the token in HF_TOKEN has no access to it: accept its terms at "
                      "%s/%s with the account the token belongs to%s",
                      c->repo, c->endpoint, c->repo, extra);
    }
    if (!strcmp(code, "RepoNotFound") || (!file && r->status == 404 && !code[0]))
        return ck_err(err, errlen, "repository %s not found on %s%s", c->repo, c->endpoint,
                      c->has_token ? "" : " (if it is private, set HF_TOKEN)");
    if (!strcmp(code, "RevisionNotFound"))
        return ck_err(err, errlen, "revision '%s' not found in %s%s", c->revision, c->repo, extra);
    if (!strcmp(code, "EntryNotFound") || r->status == 404)
        return ck_err(err, errlen, "file %s not found in %s at revision %s%s", file ? file : "?", c->repo,
                      c->revision, extra);
    if (r->status == 401 || r->status == 403) {
        if (!c->has_token)
            return ck_err(err, errlen, "access to %s denied (HTTP %ld): set HF_TOKEN to an access token%s", c->repo,
                          r->status, extra);
        return ck_err(err, errlen, "access to %s denied (HTTP %ld): the token in HF_TOKEN was refused%s", c->repo,
                      r->status, extra);
    }
    if (r->status == 429) return ck_err(err, errlen, "the Hub is rate-limiting requests (HTTP 429): try again later");
    if (r->status >= 500)
        return ck_err(err, errlen, "the Hub answered HTTP %ld for %s: try again later%s", r->status, url, extra);
    return ck_err(err, errlen, "unexpected HTTP %ld from %s%s", r->status, url, extra);
}

static int net_error(ctx *c, ck_http_kind k, const char *why, char *err, size_t errlen) {
    if (k == CK_HTTP_NET)
        return ck_err(err, errlen,
                      "%s — is the network up? (set HF_ENDPOINT to use a mirror, HF_HUB_OFFLINE=1 to stay offline)",
                      why);
    (void)c;
    return ck_err(err, errlen, "%s", why);
}

/* ---- Hub API ---- */

/* GET url expecting 200: returns 0 with the body in r (the caller frees it), or -1 with err and r empty */
static int get_ok(ctx *c, const char *url, ck_http_resp *r, char *err, size_t errlen) {
    char why[1024];
    ck_http_kind k = ck_http_get(&c->http, url, r, why, sizeof why);
    if (k != CK_HTTP_OK) return net_error(c, k, why, err, errlen);
    if (r->status != 200) {
        http_error(c, r, NULL, url, err, errlen);
        ck_http_resp_free(r);
        return -1;
    }
    return 0;
}

static int model_info(ctx *c, char *err, size_t errlen) {
    char url[URL_MAX], rev[800], repo[400], why[256];
    ck_url_encode(c->revision, 0, rev, sizeof rev);
    ck_url_encode(c->repo, 1, repo, sizeof repo);
    snprintf(url, sizeof url, "%s/api/models/%s/revision/%s", c->endpoint, repo, rev);
    ck_http_resp r;
    if (get_ok(c, url, &r, err, errlen) != 0) return -1;
    int rc = ck_hub_info_parse(r.body ? r.body : "", r.body_len, &c->info, why, sizeof why);
    ck_http_resp_free(&r);
    if (rc != 0) return ck_err(err, errlen, "unusable answer from the Hub for %s@%s: %s", c->repo, c->revision, why);
    memcpy(c->commit, c->info.commit, sizeof c->commit);
    return 0;
}

/* Sizes and LFS hashes; optional (a failure only loses the cross-checks), follows Link pagination. */
static void tree_listing(ctx *c) {
    char url[URL_MAX], repo[400];
    ck_url_encode(c->repo, 1, repo, sizeof repo);
    snprintf(url, sizeof url, "%s/api/models/%s/tree/%s?recursive=true", c->endpoint, repo, c->commit);
    for (int page = 0; page < 1000 && url[0]; page++) {
        ck_http_resp r;
        char why[1024];
        int rc = get_ok(c, url, &r, why, sizeof why);
        if (rc == 0) {
            snprintf(url, sizeof url, "%s", r.link_next);
            rc = ck_hub_tree_parse(r.body ? r.body : "", r.body_len, &c->tree, why, sizeof why);
            ck_http_resp_free(&r);
        }
        if (rc != 0) {
            note(c, "file list unavailable, sizes will come from the downloads (%s)", why);
            return;
        }
    }
}

static const ck_hub_file *tree_find(const ctx *c, const char *name) {
    for (size_t i = 0; i < c->tree.n; i++)
        if (!strcmp(c->tree.v[i].path, name)) return &c->tree.v[i];
    return NULL;
}

static int has_sibling(const ctx *c, const char *name) { return ck_hub_names_has(&c->info.siblings, name); }

static int add_item(ctx *c, const char *name, char *err, size_t errlen) {
    for (size_t i = 0; i < c->n_items; i++)
        if (!strcmp(c->items[i].name, name)) return 0;
    if (strlen(name) >= sizeof c->items[0].name) return ck_err(err, errlen, "file name too long: %s", name);
    item *ni = ck_grow(c->items, &c->cap_items, c->n_items + 1, sizeof *ni, 16);
    if (!ni) return ck_err(err, errlen, "out of memory");
    c->items = ni;
    item *it = &c->items[c->n_items++];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    it->size = -1;
    const ck_hub_file *rf = tree_find(c, name);
    if (rf) {
        it->size = rf->size;
        memcpy(it->sha256, rf->sha256, sizeof it->sha256);
    }
    return 0;
}

/* ---- blobs ---- */

static void on_bytes(void *ud, uint64_t done) {
    ctx *c = ud;
    if (c->p && c->p->file_bytes) c->p->file_bytes(c->p->ud, done);
}

static int check_space(ctx *c, uint64_t need, const char *what, char *err, size_t errlen) {
    struct statvfs v;
    if (statvfs(c->blobs, &v) != 0) return 0; /* cannot tell: let the writes report it */
    uint64_t avail = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
    if (need <= avail) return 0;
    char a[32], b[32];
    ck_format_bytes(need, a, sizeof a);
    ck_format_bytes(avail, b, sizeof b);
    return ck_err(err, errlen, "not enough disk space for %s: it needs %s, %s is free in %s", what, a, b, c->blobs);
}

static int file_hash_ok(ctx *c, const char *name, const char *path, const char *want, char got[65], char *err,
                        size_t errlen) {
    note(c, "%s: checking SHA-256", name);
    if (ck_sha256_file(path, got, err, errlen) != 0) return -1;
    return strcmp(got, want) == 0;
}

/* Transfers url into blobs/<etag> (see the invariants in pull.h). */
static int fetch_blob(ctx *c, item *f, const char *url, char *err, size_t errlen) {
    char inc[CK_PATH_MAX + 16], lock[CK_PATH_MAX + 16];
    snprintf(inc, sizeof inc, "%s.incomplete", f->blob);
    if (snprintf(lock, sizeof lock, "%s/%s.lock", c->locks, f->etag) >= (int)sizeof lock)
        return ck_err(err, errlen, "path too long");
    if (mkdir_p(c->locks, err, errlen) != 0) return -1;
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lfd < 0) return ck_err(err, errlen, "cannot create lock %s: %s", lock, strerror(errno));
    if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        close(lfd);
        return ck_err(err, errlen, "another process is downloading %s of %s right now (lock %s): wait for it to finish",
                      f->name, c->repo, lock);
    }
    int rc = -1, ifd = -1;
    struct stat st;
    if (stat(f->blob, &st) == 0 && (f->size < 0 || st.st_size == f->size)) { /* someone else finished it */
        rc = 0;
        goto out;
    }
    ifd = open(inc, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (ifd < 0 || fstat(ifd, &st) != 0) {
        ck_err(err, errlen, "cannot create %s: %s", inc, strerror(errno));
        goto out;
    }
    uint64_t have = (uint64_t)st.st_size;
    if (f->size >= 0 && have > (uint64_t)f->size) {
        if (ftruncate(ifd, 0) != 0) {
            ck_err(err, errlen, "cannot truncate %s: %s", inc, strerror(errno));
            goto out;
        }
        have = 0;
    }
    int attempts = c->o->max_attempts > 0 ? c->o->max_attempts : 3;
    int range_retry = 0;
    for (int attempt = 1;; attempt++) {
        if (f->size >= 0 && have == (uint64_t)f->size) break;
        if (f->size >= 0 && check_space(c, (uint64_t)f->size - have, f->name, err, errlen) != 0) goto out;
        if (c->p && c->p->file_start) c->p->file_start(c->p->ud, f->name, f->size > 0 ? (uint64_t)f->size : 0, have);
        uint64_t before = have;
        ck_http_resp r;
        char why[1024];
        ck_http_kind k = ck_http_download(&c->http, url, ifd, &have, on_bytes, c, &r, why, sizeof why);
        if (have > before) c->res->bytes_downloaded += have - before;
        if (k == CK_HTTP_OK && (r.status == 200 || r.status == 206)) {
            ck_http_resp_free(&r);
            break;
        }
        if (k == CK_HTTP_OK && r.status == 416 && have > 0 && !range_retry) { /* stale partial file */
            ck_http_resp_free(&r);
            range_retry = 1;
            if (ftruncate(ifd, 0) != 0) {
                ck_err(err, errlen, "cannot truncate %s: %s", inc, strerror(errno));
                goto out;
            }
            have = 0;
            attempt--;
            continue;
        }
        if (k == CK_HTTP_OK) {
            http_error(c, &r, f->name, url, err, errlen);
            ck_http_resp_free(&r);
            goto out;
        }
        ck_http_resp_free(&r);
        if (k == CK_HTTP_DISK) {
            char h[32];
            ck_format_bytes(have, h, sizeof h);
            ck_err(err, errlen, "cannot write %s: %s%s (%s kept; run the same cake pull again to resume)", inc, why,
                   r.write_errno == ENOSPC || r.write_errno == EDQUOT ? " — the disk is full, free some space" : "", h);
            goto out;
        }
        if (k == CK_HTTP_FAIL || attempt >= attempts) {
            char h[32], t[32];
            ck_format_bytes(have, h, sizeof h);
            ck_format_bytes(f->size > 0 ? (uint64_t)f->size : 0, t, sizeof t);
            if (k == CK_HTTP_FAIL) net_error(c, k, why, err, errlen);
            else
                ck_err(err, errlen,
                       "download of %s interrupted at %s of %s after %d attempts: %s — run the same cake pull again "
                       "to resume%s",
                       f->name, h, t, attempt, why,
                       k == CK_HTTP_NET ? " (is the network up?)" : "");
            goto out;
        }
        note(c, "%s: %s; retrying from byte %llu (attempt %d of %d)", f->name, why, (unsigned long long)have,
             attempt + 1, attempts);
        struct timespec ts = {0, 300000000L * attempt};
        nanosleep(&ts, NULL);
    }
    if (fsync(ifd) != 0) {
        ck_err(err, errlen, "cannot write %s: %s", inc, strerror(errno));
        goto out;
    }
    if (f->size >= 0 && have != (uint64_t)f->size) {
        if (have > (uint64_t)f->size) unlink(inc);
        ck_err(err, errlen, "%s: received %llu bytes, the Hub announced %lld%s", f->name, (unsigned long long)have,
               (long long)f->size, have > (uint64_t)f->size ? " (the download was deleted)" : "");
        goto out;
    }
    if (f->sha256[0]) {
        char got[65];
        int ok = file_hash_ok(c, f->name, inc, f->sha256, got, err, errlen);
        if (ok < 0) goto out;
        if (!ok) {
            unlink(inc);
            ck_err(err, errlen,
                   "%s is corrupt: its SHA-256 is %s but the Hub announced %s; the download was deleted, run cake "
                   "pull again",
                   f->name, got, f->sha256);
            goto out;
        }
    }
    if (close(ifd) != 0) {
        ifd = -1;
        ck_err(err, errlen, "cannot write %s: %s", inc, strerror(errno));
        goto out;
    }
    ifd = -1;
    if (rename(inc, f->blob) != 0) {
        ck_err(err, errlen, "cannot move %s into place: %s", inc, strerror(errno));
        goto out;
    }
    c->res->n_downloaded++;
    rc = 0;
out:
    if (ifd >= 0) close(ifd);
    close(lfd); /* releases the flock; the lock file stays, as huggingface_hub leaves it */
    return rc;
}

/* Makes sure item f has its bytes in the cache (HEAD for etag and size, then blob or download). */
static int fetch_item(ctx *c, item *f, char *err, size_t errlen) {
    char pointer[CK_PATH_MAX];
    if (ck_path_join(pointer, sizeof pointer, c->snapshot, f->name, err, errlen) != 0) return -1;
    struct stat st;
    if (stat(pointer, &st) == 0 && S_ISREG(st.st_mode) && (f->size < 0 || st.st_size == f->size)) {
        int ok = 1;
        if (c->o->verify && f->sha256[0]) {
            char got[65];
            ok = file_hash_ok(c, f->name, pointer, f->sha256, got, err, errlen);
            if (ok < 0) return -1;
            if (!ok) {
                char real[CK_PATH_MAX];
                note(c, "%s in the cache is corrupt (SHA-256 %s), downloading it again", f->name, got);
                if (realpath(pointer, real)) unlink(real);
                unlink(pointer);
            }
        }
        if (ok) {
            snprintf(f->blob, sizeof f->blob, "%s", pointer);
            f->linked = 1;
            if (c->p && c->p->file_done) c->p->file_done(c->p->ud, f->name, (uint64_t)st.st_size, 1);
            return 0;
        }
    }

    char url[URL_MAX], repo[400], file[3200];
    ck_url_encode(c->repo, 1, repo, sizeof repo);
    if (ck_url_encode(f->name, 1, file, sizeof file) != 0) return ck_err(err, errlen, "file name too long");
    snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", c->endpoint, repo, c->commit, file);
    ck_http_resp r;
    char why[1024];
    /* a 3xx without X-Linked-Etag is not the LFS redirect but a moved repo: ask the new place */
    for (int hops = 0;; hops++) {
        ck_http_kind k = ck_http_head(&c->http, url, &r, why, sizeof why);
        if (k != CK_HTTP_OK) return net_error(c, k, why, err, errlen);
        if (!(r.status >= 301 && r.status <= 308) || r.linked_etag[0] || !r.location[0] || hops == 5) break;
        snprintf(url, sizeof url, "%s", r.location);
    }
    if (r.status != 200 && !(r.status >= 301 && r.status <= 308))
        return http_error(c, &r, f->name, url, err, errlen);
    char *etag = r.linked_etag[0] ? r.linked_etag : r.etag;
    ck_hub_etag_normalize(etag);
    if (!ck_hub_etag_valid(etag))
        return ck_err(err, errlen, "the Hub sent no usable ETag for %s (got '%s')", f->name, etag);
    snprintf(f->etag, sizeof f->etag, "%s", etag);
    int64_t size = r.linked_size >= 0 ? r.linked_size : (r.status == 200 ? r.content_length : -1);
    if (size >= 0) {
        if (f->size >= 0 && f->size != size)
            note(c, "%s: the file list says %lld bytes, the download headers %lld; using the latter", f->name,
                 (long long)f->size, (long long)size);
        f->size = size;
    }
    if (!f->sha256[0] && r.linked_etag[0] && strlen(etag) == 64) memcpy(f->sha256, etag, 65);
    char dl[URL_MAX];
    snprintf(dl, sizeof dl, "%s", r.location[0] ? r.location : url);
    if (ck_path_join(f->blob, sizeof f->blob, c->blobs, f->etag, err, errlen) != 0) return -1;

    if (stat(f->blob, &st) == 0 && S_ISREG(st.st_mode) && (f->size < 0 || st.st_size == f->size)) {
        if (c->p && c->p->file_done) c->p->file_done(c->p->ud, f->name, (uint64_t)st.st_size, 1);
        return 0;
    }
    if (fetch_blob(c, f, dl, err, errlen) != 0) return -1;
    if (c->p && c->p->file_done) c->p->file_done(c->p->ud, f->name, f->size > 0 ? (uint64_t)f->size : 0, 0);
    return 0;
}

/* ---- layout ---- */

static int link_item(ctx *c, const item *f, char *err, size_t errlen) {
    char pointer[CK_PATH_MAX], dir[CK_PATH_MAX], target[CK_PATH_MAX], tmp[CK_PATH_MAX + 32];
    if (ck_path_join(pointer, sizeof pointer, c->snapshot, f->name, err, errlen) != 0) return -1;
    snprintf(dir, sizeof dir, "%s", pointer);
    *strrchr(dir, '/') = 0;
    if (mkdir_p(dir, err, errlen) != 0) return -1;
    /* relative: one "../" per directory between the pointer and the repo dir (snapshots/<commit>/...) */
    size_t o = 0;
    int depth = 2;
    for (const char *p = f->name; *p; p++) depth += *p == '/';
    for (int i = 0; i < depth; i++) o += (size_t)snprintf(target + o, sizeof target - o, "../");
    snprintf(target + o, sizeof target - o, "blobs/%s", f->etag);
    char cur[CK_PATH_MAX];
    ssize_t n = readlink(pointer, cur, sizeof cur - 1);
    if (n >= 0) {
        cur[n] = 0;
        if (!strcmp(cur, target)) return 0;
    }
    snprintf(tmp, sizeof tmp, "%s.cake-%ld.tmp", pointer, (long)getpid());
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, pointer) != 0) {
        int e = errno;
        unlink(tmp);
        return ck_err(err, errlen, "cannot create %s: %s", pointer, strerror(e));
    }
    return 0;
}

static int write_ref(ctx *c, char *err, size_t errlen) {
    if (!strcmp(c->revision, c->commit)) return 0; /* huggingface_hub writes no ref for a commit */
    char path[CK_PATH_MAX], rel[300], dir[CK_PATH_MAX], tmp[CK_PATH_MAX + 32];
    snprintf(rel, sizeof rel, "refs/%s", c->revision);
    if (ck_path_join(path, sizeof path, c->repo_dir, rel, err, errlen) != 0) return -1;
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    if (mkdir_p(dir, err, errlen) != 0) return -1;
    snprintf(tmp, sizeof tmp, "%s.cake-%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return ck_err(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    int ok = write(fd, c->commit, 40) == 40;
    int e = errno;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        if (ok) e = errno;
        unlink(tmp);
        return ck_err(err, errlen, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

/* ---- selection ---- */

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* appends to err, when the repo holds .gguf files, how to pull one of them */
static void gguf_hint(ctx *c, char *err, size_t errlen) {
    char files[1536];
    if (!err || !errlen || !ck_hub_gguf_list(&c->info.siblings, files, sizeof files)) return;
    size_t n = strlen(err);
    snprintf(err + n, errlen - n, "; it holds .gguf files (%s): pull one with %s:TAG, TAG a part of its name "
             "such as Q8_0", files, c->repo);
}

static int select_base(ctx *c, char *err, size_t errlen) {
    if (!has_sibling(c, "config.json")) {
        ck_err(err, errlen, "%s has no config.json at revision %s: not a transformers model repo", c->repo,
               c->revision);
        gguf_hint(c, err, errlen);
        return -1;
    }
    static const char *meta[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
        if (has_sibling(c, meta[i]) && add_item(c, meta[i], err, errlen) != 0) return -1;
    if (has_sibling(c, "model.safetensors.index.json"))
        return add_item(c, "model.safetensors.index.json", err, errlen);
    if (has_sibling(c, "model.safetensors")) return add_item(c, "model.safetensors", err, errlen);
    int any = 0;
    const ck_hub_names *sib = &c->info.siblings;
    for (size_t i = 0; i < sib->n; i++)
        if (!strchr(sib->v[i], '/') && ends_with(sib->v[i], ".safetensors")) {
            if (add_item(c, sib->v[i], err, errlen) != 0) return -1;
            any = 1;
        }
    if (!any) {
        ck_err(err, errlen, "%s has no safetensors weights at revision %s", c->repo, c->revision);
        gguf_hint(c, err, errlen);
        return -1;
    }
    return 0;
}

/* ORG/NAME:TAG: the one .gguf file the tag picks, alone */
static int select_gguf(ctx *c, char *err, size_t errlen) {
    char where[600];
    size_t i;
    snprintf(where, sizeof where, "%s at revision %s", c->repo, c->revision);
    if (ck_hub_gguf_pick(&c->info.siblings, c->o->gguf_tag, where, &i, err, errlen) != 1) return -1;
    snprintf(c->res->gguf, sizeof c->res->gguf, "%s", c->info.siblings.v[i]);
    return add_item(c, c->info.siblings.v[i], err, errlen);
}

static int select_shards(ctx *c, const item *index, char *err, size_t errlen) {
    char *text;
    size_t len;
    if (ck_file_read(index->blob, &text, &len, err, errlen) != 0) return -1;
    ck_hub_names shards;
    char why[256];
    int rc = ck_hub_weight_map_parse(text, len, &shards, why, sizeof why);
    free(text);
    if (rc != 0) return ck_err(err, errlen, "%s: %s", c->repo, why);
    for (size_t i = 0; i < shards.n && rc == 0; i++) {
        if (!has_sibling(c, shards.v[i]))
            rc = ck_err(err, errlen, "file %s (named by model.safetensors.index.json) not found in %s at revision %s",
                        shards.v[i], c->repo, c->revision);
        else
            rc = add_item(c, shards.v[i], err, errlen);
    }
    ck_hub_names_free(&shards);
    return rc;
}

/* Total bytes still to fetch among items[from..], as far as the tree listing tells. */
static int check_total_space(ctx *c, size_t from, char *err, size_t errlen) {
    uint64_t need = 0;
    for (size_t i = from; i < c->n_items; i++) {
        const item *f = &c->items[i];
        char pointer[CK_PATH_MAX];
        if (f->size < 0 || ck_path_join(pointer, sizeof pointer, c->snapshot, f->name, NULL, 0) != 0) continue;
        if (!ck_is_file(pointer)) need += (uint64_t)f->size;
    }
    return need ? check_space(c, need, c->repo, err, errlen) : 0;
}

int ck_hub_pull(const ck_pull_opts *o, ck_pull_result *res, char *err, size_t errlen) {
    ctx cx;
    memset(&cx, 0, sizeof cx);
    memset(res, 0, sizeof *res);
    ctx *c = &cx;
    c->o = o;
    c->p = o->progress;
    c->res = res;
    c->repo = o->repo;
    c->revision = o->revision ? o->revision : "main";
    int rc = -1;
    char token[1024] = "";

    if (!ck_hub_repo_id_valid(c->repo))
        return ck_err(err, errlen, "'%s' is not a HuggingFace repo id (expected ORG/NAME)", c->repo);
    if (!ck_hub_revision_valid(c->revision)) return ck_err(err, errlen, "invalid revision '%s'", c->revision);
    if (ck_hub_offline())
        return ck_err(err, errlen, "HF_HUB_OFFLINE is set: not downloading %s (unset it to allow downloads)", c->repo);
    if (ck_hub_home_dir(c->home, sizeof c->home, err, errlen) != 0) return -1;
    if (o->cache_dir) snprintf(c->cache, sizeof c->cache, "%s", o->cache_dir);
    else if (ck_hub_cache_dir(c->cache, sizeof c->cache, err, errlen) != 0) return -1;
    struct stat st;
    if (stat(c->cache, &st) == 0 ? !S_ISDIR(st.st_mode) : errno == ENOTDIR)
        return ck_err(err, errlen, "the HF cache %s (HF_HUB_CACHE / HF_HOME) is not a directory", c->cache);
    if (o->endpoint) snprintf(c->endpoint, sizeof c->endpoint, "%s", o->endpoint);
    else if (ck_hub_endpoint(c->endpoint, sizeof c->endpoint, err, errlen) != 0) return -1;
    if (o->token) snprintf(token, sizeof token, "%s", o->token);
    else if (ck_hub_token(token, sizeof token, err, errlen) < 0) return -1;
    c->has_token = token[0] != 0;
    if (ck_hub_repo_dir(c->repo_dir, sizeof c->repo_dir, c->cache, c->repo, err, errlen) != 0) return -1;
    if (ck_path_join(c->blobs, sizeof c->blobs, c->repo_dir, "blobs", err, errlen) != 0) return -1;
    {
        char locks[CK_PATH_MAX];
        const char *leaf = strrchr(c->repo_dir, '/') + 1;
        if (ck_path_join(locks, sizeof locks, c->cache, ".locks", err, errlen) != 0 ||
            ck_path_join(c->locks, sizeof c->locks, locks, leaf, err, errlen) != 0)
            return -1;
    }
    if (ck_http_open(&c->http, c->endpoint, token, err, errlen) != 0) return -1;

    if (model_info(c, err, errlen) != 0) goto out;
    snprintf(res->commit, sizeof res->commit, "%s", c->commit);
    {
        char rel[64];
        snprintf(rel, sizeof rel, "snapshots/%s", c->commit);
        if (ck_path_join(c->snapshot, sizeof c->snapshot, c->repo_dir, rel, err, errlen) != 0) goto out;
    }
    tree_listing(c);
    if ((o->gguf_tag ? select_gguf(c, err, errlen) : select_base(c, err, errlen)) != 0) goto out;
    if (mkdir_p(c->blobs, err, errlen) != 0) goto out;
    if (check_total_space(c, 0, err, errlen) != 0) goto out;
    for (size_t i = 0; i < c->n_items; i++) {
        size_t before = c->n_items;
        if (fetch_item(c, &c->items[i], err, errlen) != 0) goto out;
        if (!strcmp(c->items[i].name, "model.safetensors.index.json")) {
            if (select_shards(c, &c->items[i], err, errlen) != 0) goto out;
            if (check_total_space(c, before, err, errlen) != 0) goto out;
        }
    }
    for (size_t i = 0; i < c->n_items; i++)
        if (!c->items[i].linked && link_item(c, &c->items[i], err, errlen) != 0) goto out;
    if (write_ref(c, err, errlen) != 0) goto out;
    memcpy(res->snapshot, c->snapshot, sizeof res->snapshot);
    res->n_files = (int)c->n_items;
    rc = 0;
out:
    ck_http_close(&c->http);
    ck_hub_info_free(&c->info);
    ck_hub_tree_free(&c->tree);
    free(c->items);
    return rc;
}
