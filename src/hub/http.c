/* http.c — libcurl wrapper for the Hub client (see http.h). One CURL easy handle per ck_http, reset
 * before every request; header parsing restarts at each status line so that, across redirects, the
 * fields describe the last response. */
#include "hub/http.h"
#include "base/err.h"
#include "base/grow.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define BODY_CAP ((size_t)64 << 20)
#define ERR_BODY_CAP ((size_t)64 << 10)

/* seconds of CK_HTTP_LOW_SPEED_BYTES/s or less after which a transfer is given up (see http.h) */
static long low_speed_time_s(void) {
    const char *v = getenv("CAKE_HUB_LOW_SPEED_TIME");
    if (!v || !*v) return CK_HTTP_LOW_SPEED_TIME_S;
    char *end;
    errno = 0;
    long t = strtol(v, &end, 10);
    return (errno || *end || t < 1 || t > 86400) ? CK_HTTP_LOW_SPEED_TIME_S : t;
}

int ck_url_encode(const char *s, int keep_slash, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep_slash && *p == '/');
        if (o + (plain ? 1 : 3) + 1 > cap) return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int ck_http_open(ck_http *h, const char *endpoint, const char *token, char *err, size_t errlen) {
    memset(h, 0, sizeof *h);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) return ck_err(err, errlen, "cannot initialize libcurl");
    h->curl = curl_easy_init();
    if (!h->curl) return ck_err(err, errlen, "cannot initialize libcurl");
    if (token && *token) {
        if (strlen(token) + 1 > sizeof h->token) return ck_err(err, errlen, "token too long");
        strcpy(h->token, token);
    }
    /* origin = scheme://authority of the endpoint */
    const char *s = strstr(endpoint, "://");
    const char *e = s ? strchr(s + 3, '/') : NULL;
    size_t n = e ? (size_t)(e - endpoint) : strlen(endpoint);
    if (n + 1 > sizeof h->origin) return ck_err(err, errlen, "endpoint URL too long");
    memcpy(h->origin, endpoint, n);
    h->origin[n] = 0;
    return 0;
}

void ck_http_close(ck_http *h) {
    if (h->curl) curl_easy_cleanup(h->curl);
    h->curl = NULL;
}

void ck_http_resp_free(ck_http_resp *r) {
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static void resp_reset_headers(ck_http_resp *r) {
    r->etag[0] = r->linked_etag[0] = r->repo_commit[0] = r->error_code[0] = r->error_message[0] = 0;
    r->location[0] = r->link_next[0] = r->content_range[0] = 0;
    r->linked_size = r->content_length = -1;
}

static void resp_init(ck_http_resp *r) {
    memset(r, 0, sizeof *r);
    resp_reset_headers(r);
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

/* Link: <url>; rel="next", <url2>; rel="prev" */
static void parse_link(ck_http_resp *r, const char *v, size_t n) {
    char tmp[4096];
    copy_value(tmp, sizeof tmp, v, n);
    for (char *p = tmp; (p = strchr(p, '<'));) {
        char *q = strchr(p, '>');
        if (!q) return;
        char *next = strchr(q, ',');
        if (next) *next = 0;
        if (strstr(q, "rel=\"next\"") || strstr(q, "rel=next")) {
            copy_value(r->link_next, sizeof r->link_next, p + 1, (size_t)(q - p - 1));
            return;
        }
        if (!next) return;
        p = next + 1;
    }
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
    ck_http_resp *r = ud;
    size_t len = size * nitems;
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
        resp_reset_headers(r);
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon) return len;
    size_t klen = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vlen = len - klen - 1;
    while (vlen && (*v == ' ' || *v == '\t')) v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ')) vlen--;
#define IS(name) (klen == sizeof(name) - 1 && !strncasecmp(buf, name, klen))
    char num[32];
    if (IS("etag")) copy_value(r->etag, sizeof r->etag, v, vlen);
    else if (IS("x-linked-etag")) copy_value(r->linked_etag, sizeof r->linked_etag, v, vlen);
    else if (IS("x-repo-commit")) copy_value(r->repo_commit, sizeof r->repo_commit, v, vlen);
    else if (IS("x-error-code")) copy_value(r->error_code, sizeof r->error_code, v, vlen);
    else if (IS("x-error-message")) copy_value(r->error_message, sizeof r->error_message, v, vlen);
    else if (IS("content-range")) copy_value(r->content_range, sizeof r->content_range, v, vlen);
    else if (IS("link")) parse_link(r, v, vlen);
    else if (IS("x-linked-size") || IS("content-length")) {
        copy_value(num, sizeof num, v, vlen);
        char *end;
        errno = 0;
        long long x = strtoll(num, &end, 10);
        if (!errno && end != num && *end == 0 && x >= 0) {
            if (IS("x-linked-size")) r->linked_size = x;
            else r->content_length = x;
        }
    }
#undef IS
    return len;
}

typedef struct sink {
    ck_http_resp *r;
    CURL *curl;
    size_t cap;           /* memory cap for r->body */
    size_t body_cap;      /* bytes allocated for r->body */
    int fd;               /* -1: everything to memory */
    int decided;          /* download: whether the first body byte chose file vs memory */
    int to_file;
    uint64_t pos;         /* bytes valid in the file */
    ck_http_progress_fn fn;
    void *ud;
} sink;

static size_t to_memory(sink *s, const char *data, size_t len) {
    ck_http_resp *r = s->r;
    if (len > s->cap - r->body_len) return 0; /* body_len <= cap always */
    char *nb = ck_grow(r->body, &s->body_cap, r->body_len + len + 1, 1, 4096);
    if (!nb) return 0;
    memcpy(nb + r->body_len, data, len);
    r->body = nb;
    r->body_len += len;
    nb[r->body_len] = 0;
    return len;
}

/* Content-Range: bytes START-END/TOTAL -> START, or -1 */
static int64_t range_start(const char *cr) {
    if (strncasecmp(cr, "bytes ", 6) != 0) return -1;
    char *end;
    long long x = strtoll(cr + 6, &end, 10);
    return (end != cr + 6 && *end == '-' && x >= 0) ? x : -1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    sink *s = ud;
    size_t len = size * nmemb;
    if (s->fd < 0) return to_memory(s, data, len);
    if (!s->decided) {
        long code = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
        s->decided = 1;
        s->to_file = code == 200 || code == 206;
        if (code == 200 && s->pos > 0) {         /* server ignored Range: start over */
            if (ftruncate(s->fd, 0) != 0) {
                s->r->write_errno = errno;
                return 0;
            }
            s->pos = 0;
        } else if (code == 206) {
            int64_t st = range_start(s->r->content_range);
            if (st < 0 || (uint64_t)st > s->pos) return 0;  /* a range we did not ask for */
            if ((uint64_t)st < s->pos) {
                if (ftruncate(s->fd, st) != 0) {
                    s->r->write_errno = errno;
                    return 0;
                }
                s->pos = (uint64_t)st;
            }
        }
    }
    if (!s->to_file) {
        size_t room = s->r->body_len < s->cap ? s->cap - s->r->body_len : 0;
        to_memory(s, data, len < room ? len : room);  /* keep the start of an error page */
        return len;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(s->fd, data + done, len - done, (off_t)(s->pos + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            s->r->write_errno = w < 0 ? errno : ENOSPC;
            s->pos += done;
            return 0;
        }
        done += (size_t)w;
    }
    s->pos += len;
    if (s->fn) s->fn(s->ud, s->pos);
    return len;
}

static void common_opts(ck_http *h, const char *url, struct curl_slist **hdrs, char *ebuf, ck_http_resp *r) {
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "cake/0.1 (hf-cache compatible)");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)CK_HTTP_LOW_SPEED_BYTES);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, low_speed_time_s());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    size_t ol = strlen(h->origin);
    if (h->token[0] && !strncmp(url, h->origin, ol) && (url[ol] == '/' || url[ol] == 0 || url[ol] == '?')) {
        char auth[1100];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", h->token);
        *hdrs = curl_slist_append(*hdrs, auth);
    }
    if (*hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
}

static ck_http_kind classify(CURLcode rc, const ck_http_resp *r, const char *url, const char *ebuf, char *err,
                             size_t errlen) {
    const char *why = ebuf[0] ? ebuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OK:
        return CK_HTTP_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        ck_err(err, errlen, "cannot reach %s: %s", url, why);
        return CK_HTTP_NET;
    case CURLE_OPERATION_TIMEDOUT:
        ck_err(err, errlen, "transfer from %s timed out: %s", url, why);
        return r->status ? CK_HTTP_CUT : CK_HTTP_NET;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP2:
        ck_err(err, errlen, "connection to %s broke: %s", url, why);
        return r->status ? CK_HTTP_CUT : CK_HTTP_NET;
    case CURLE_WRITE_ERROR:
        if (r->write_errno) {
            ck_err(err, errlen, "%s", strerror(r->write_errno));
            return CK_HTTP_DISK;
        }
        ck_err(err, errlen, "unexpected answer from %s (range mismatch)", url);
        return CK_HTTP_FAIL;
    default:
        ck_err(err, errlen, "request to %s failed: %s", url, why);
        return CK_HTTP_FAIL;
    }
}

ck_http_kind ck_http_get(ck_http *h, const char *url, ck_http_resp *r, char *err, size_t errlen) {
    resp_init(r);
    struct curl_slist *hdrs = NULL;
    char ebuf[CURL_ERROR_SIZE] = "";
    sink s = {.r = r, .curl = h->curl, .cap = BODY_CAP, .fd = -1};
    common_opts(h, url, &hdrs, ebuf, r);
    curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
    CURLcode rc = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    ck_http_kind k;
    if (rc == CURLE_WRITE_ERROR) {
        ck_err(err, errlen, "the answer from %s is larger than %zu MiB", url, BODY_CAP >> 20);
        k = CK_HTTP_FAIL;
    } else {
        k = classify(rc, r, url, ebuf, err, errlen);
    }
    if (k != CK_HTTP_OK) ck_http_resp_free(r); /* a partial body is of no use */
    return k;
}

ck_http_kind ck_http_head(ck_http *h, const char *url, ck_http_resp *r, char *err, size_t errlen) {
    resp_init(r);
    struct curl_slist *hdrs = NULL;
    char ebuf[CURL_ERROR_SIZE] = "";
    common_opts(h, url, &hdrs, ebuf, r);
    curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
    char *loc = NULL;
    if (rc == CURLE_OK && curl_easy_getinfo(h->curl, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
        copy_value(r->location, sizeof r->location, loc, strlen(loc));
    curl_slist_free_all(hdrs);
    return classify(rc, r, url, ebuf, err, errlen);
}

ck_http_kind ck_http_download(ck_http *h, const char *url, int fd, uint64_t *have_bytes, ck_http_progress_fn fn,
                              void *ud, ck_http_resp *r, char *err, size_t errlen) {
    resp_init(r);
    struct curl_slist *hdrs = NULL;
    char ebuf[CURL_ERROR_SIZE] = "";
    sink s = {.r = r, .curl = h->curl, .cap = ERR_BODY_CAP, .fd = fd, .pos = *have_bytes, .fn = fn, .ud = ud};
    common_opts(h, url, &hdrs, ebuf, r);
    curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
    char range[64];
    if (*have_bytes > 0) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)*have_bytes);
        curl_easy_setopt(h->curl, CURLOPT_RANGE, range);
    }
    CURLcode rc = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    *have_bytes = s.pos;
    return classify(rc, r, url, ebuf, err, errlen);
}
