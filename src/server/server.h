/* server.h — `cake serve`: the OpenAI-compatible HTTP API and the web UI over libmicrohttpd. The server
 * listens first and answers 503 while the model loads; requests then go through the batch scheduler
 * (sched.h). It reaches the engine only through include/cake.h; what it cannot know by itself (how to
 * load the model, a cluster's workers) comes from the caller as callbacks. */
#ifndef CK_SERVER_SERVER_H
#define CK_SERVER_SERVER_H

#include "cake.h"

#include <signal.h>
#include <stddef.h>

struct ck_oai_defaults;

typedef struct ck_server_opts {
    const char *api;           /* listen address HOST:PORT ("0.0.0.0:8080", "[::1]:8080") */
    const char *model_id;      /* the id in responses and /v1/models */
    const char *api_key;       /* NULL, or the Bearer token every API request must carry */
    const char *ui_auth;       /* NULL, or "user:pass" for HTTP basic auth (UI and API) */
    size_t parallel;           /* sequences decoded together at most */
    size_t max_ctx;            /* positions per sequence (0: the model's maximum) */
    size_t max_body;           /* request bodies above this get a 413 */
    const struct ck_oai_defaults *defaults; /* sampling for the fields a request leaves out (NULL: OpenAI's) */
    /* Loads the model (called after the socket listens). */
    int (*load)(void *user, ck_engine **e, char *err, size_t errlen);
    /* Optional: opens a session for a slot (a cluster master attaches its workers). */
    int (*session_open)(void *user, ck_engine *e, size_t max_ctx, ck_session **s, char *err, size_t errlen);
    /* Optional: the workers for /api/v1/topology as a malloc'd JSON array, or NULL. */
    char *(*workers_json)(void *user);
    void *user;
    /* Called once the API answers requests (tests wait for it through the log). */
    void (*on_ready)(void *user, const char *address);
} ck_server_opts;

/* Serves until *stop becomes nonzero (a signal handler sets it). Returns 0, or -1 with why (the address
 * cannot be bound, the model does not load). The engine is closed before returning. */
int ck_server_run(const ck_server_opts *o, volatile sig_atomic_t *stop, char *err, size_t errlen);

#endif
