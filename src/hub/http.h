/* http.h — the little HTTP the Hub needs, over libcurl: GET into memory, HEAD without following
 * redirects (to read X-Repo-Commit / ETag / X-Linked-* / Location), and a resumable download into an
 * open file descriptor. Nothing here knows Hub semantics beyond collecting its headers.
 *
 * Invariants: the Bearer token is sent only to URLs on the token's origin (the endpoint) — curl also
 * drops it when a redirect leaves that host; a download writes into the file only the body of a 200
 * or 206 response (an error page never lands in a blob), truncating first when a ranged request is
 * answered 200; a write failure (ENOSPC, EIO...) aborts the transfer and is reported as CK_HTTP_DISK;
 * a transfer slower than CK_HTTP_LOW_SPEED_BYTES per second for $CAKE_HUB_LOW_SPEED_TIME seconds
 * (default CK_HTTP_LOW_SPEED_TIME_S) is given up, as CK_HTTP_CUT once an answer has begun. */
#ifndef CK_HUB_HTTP_H
#define CK_HUB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define CK_HTTP_LOW_SPEED_BYTES 1024
#define CK_HTTP_LOW_SPEED_TIME_S 30

typedef enum {
    CK_HTTP_OK = 0,   /* a response arrived (look at status) */
    CK_HTTP_NET,      /* no connection: DNS, refused, unreachable, timeout before any answer */
    CK_HTTP_CUT,      /* the connection broke or stalled mid-transfer: retrying with Range may help */
    CK_HTTP_DISK,     /* writing the file failed (errno in ck_http_resp.write_errno) */
    CK_HTTP_FAIL,     /* anything else (bad URL, TLS, out of memory) */
} ck_http_kind;

typedef struct ck_http_resp {
    long status;                /* HTTP status of the last response, 0 when none */
    char *body;                 /* GET body / error body of a download (NUL-terminated, malloc'd) */
    size_t body_len;
    char etag[160];             /* ETag, raw */
    char linked_etag[160];      /* X-Linked-Etag, raw */
    char repo_commit[64];       /* X-Repo-Commit */
    char error_code[64];        /* X-Error-Code (RepoNotFound, EntryNotFound, RevisionNotFound, GatedRepo) */
    char error_message[512];    /* X-Error-Message */
    char location[2048];        /* absolute redirect target of a 3xx (HEAD only) */
    char link_next[2048];       /* URL of rel="next" in a Link header (pagination) */
    char content_range[128];    /* Content-Range */
    int64_t linked_size;        /* X-Linked-Size, -1 when absent */
    int64_t content_length;     /* Content-Length, -1 when absent */
    int write_errno;            /* errno of a failed file write (CK_HTTP_DISK) */
} ck_http_resp;

typedef struct ck_http {
    void *curl;                 /* CURL * */
    char token[1024];           /* "" when none */
    char origin[512];           /* scheme://host[:port] the token may be sent to */
} ck_http;

/* endpoint: the Hub base URL (its origin receives the token); token may be NULL or "". */
int ck_http_open(ck_http *h, const char *endpoint, const char *token, char *err, size_t errlen);
void ck_http_close(ck_http *h);
void ck_http_resp_free(ck_http_resp *r);

/* GET url into r->body (at most 64 MiB), following redirects. On any result but CK_HTTP_OK, r holds
 * no body (nothing to free). */
ck_http_kind ck_http_get(ck_http *h, const char *url, ck_http_resp *r, char *err, size_t errlen);
/* HEAD url, not following redirects. */
ck_http_kind ck_http_head(ck_http *h, const char *url, ck_http_resp *r, char *err, size_t errlen);

/* Called as bytes land: done_bytes = bytes now in the file. */
typedef void (*ck_http_progress_fn)(void *ud, uint64_t done_bytes);

/* GET url into fd, which already holds *have_bytes valid bytes: asks for "Range: bytes=<have>-" when
 * *have_bytes > 0, follows redirects, and updates *have_bytes to the bytes in the file afterwards
 * (also after a failure, so the caller can resume). */
ck_http_kind ck_http_download(ck_http *h, const char *url, int fd, uint64_t *have_bytes, ck_http_progress_fn fn,
                              void *ud, ck_http_resp *r, char *err, size_t errlen);

/* Percent-encodes s into out: keeps [A-Za-z0-9-._~] and, when keep_slash, '/'. */
int ck_url_encode(const char *s, int keep_slash, char *out, size_t cap);

#endif
