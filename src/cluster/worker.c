/* worker.c — the cluster worker (see worker.h): accept loop, one thread per master connection, the
 * HELLO check and the FORWARD/TRUNCATE/PING service over the engine API. */
#include "cluster/worker.h"

#include "base/err.h"
#include "base/grow.h"
#include "cake.h"
#include "cluster/node.h"
#include "cluster/push.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESSIONS 16 /* per connection */
#define MAX_CONNS 32

/* A model range being served: the static one, or one that masters pushed (zero-config). */
typedef struct served {
    ck_engine *e; /* over the worker's devices when it names them */
    uint8_t model_id[32];
    int64_t first, last;
    size_t hidden, max_ctx;
    char dir[4096];
    int refs; /* connections using it (under worker.mu) */
} served;

#define MAX_ROUTES MAX_CONNS

typedef struct wconn wconn;

typedef struct worker {
    const ck_worker_opts *o;
    uint64_t mem_bytes; /* of the devices it runs layers on (ck_devices_info_get), for HELLO_OK */
    served *sv; /* the static model, or the last pushed one */
    pthread_mutex_t mu;
    pthread_mutex_t assign; /* zero-config: one push and the engine it leads to at a time, so that a push
                               that finds the files complete also finds the engine opened on them */
    int n_conns;
    /* chain forwarding: master connections by the route id their CHAIN named (under mu) */
    uint64_t route_ids[MAX_ROUTES];
    wconn *routes[MAX_ROUTES];
} worker;

struct wconn {
    worker *w;
    served *sv;
    ck_conn *c;
    ck_msgbuf out;
    ck_wire_limits lim;
    uint32_t ids[MAX_SESSIONS];
    ck_session *sess[MAX_SESSIONS];
    size_t n_sess;
    float *rows; /* [max_rows, hidden] f32 */
    uint8_t *packed; /* [max_rows, hidden] in the wire dtype */
    /* chain forwarding (a CHAIN from the master): outputs go on to the next worker instead of back */
    ck_conn *next;
    ck_msgbuf next_out;
    int refs;                /* this connection's thread, plus link threads feeding it (under w->mu) */
    pthread_mutex_t use;     /* one forward at a time on the sessions, one sender at a time on c */
};

/* Checks a master's HELLO against this worker; on success fixes the connection's limits. */
static int check_hello(wconn *wc, const ck_msg *m, char *err, size_t errlen) {
    const worker *w = wc->w;
    char mine[17], theirs[17];
    if (m->type != CK_MSG_HELLO) return ck_err(err, errlen, "expected HELLO, got %s", ck_msg_name(m->type));
    if (m->u.hello.version != CK_WIRE_VERSION)
        return ck_err(err, errlen, "protocol version %u, this worker speaks %u", m->u.hello.version, CK_WIRE_VERSION);
    if (memcmp(m->u.hello.model_id, wc->sv->model_id, 32)) {
        ck_model_id_short(wc->sv->model_id, mine);
        ck_model_id_short(m->u.hello.model_id, theirs);
        return ck_err(err, errlen, "model mismatch: the master runs model %s, this worker %s (ids of config.json or "
                                   "of a GGUF file's metadata)", theirs, mine);
    }
    const served *sv = wc->sv;
    if (m->u.hello.first_layer != (uint64_t)sv->first || m->u.hello.last_layer != (uint64_t)sv->last)
        return ck_err(err, errlen, "the master asked for layers %u-%u; this worker (%s) holds %lld-%lld",
                      m->u.hello.first_layer, m->u.hello.last_layer, w->o->name, (long long)sv->first,
                      (long long)sv->last);
    if (m->u.hello.hidden != sv->hidden || !ck_wire_dtype_size(m->u.hello.wire_dtype))
        return ck_err(err, errlen, "hidden size %u / wire dtype %u do not match this model (%zu)", m->u.hello.hidden,
                      m->u.hello.wire_dtype, sv->hidden);
    if (m->u.hello.max_ctx == 0 || m->u.hello.max_ctx > sv->max_ctx || m->u.hello.max_rows == 0)
        return ck_err(err, errlen, "context %u / rows %u out of range (the model holds %zu positions)",
                      m->u.hello.max_ctx, m->u.hello.max_rows, sv->max_ctx);
    wc->lim =
        (ck_wire_limits){(uint32_t)sv->hidden, m->u.hello.max_rows > CK_WIRE_ROWS ? CK_WIRE_ROWS : m->u.hello.max_rows,
                         m->u.hello.max_ctx};
    size_t cells = (size_t)wc->lim.max_rows * sv->hidden;
    wc->rows = malloc(cells * sizeof *wc->rows);
    wc->packed = malloc(cells * sizeof(float));
    return wc->rows && wc->packed ? 0 : ck_err(err, errlen, "out of memory");
}

static int send_hello_ok(wconn *wc, char *err, size_t errlen) {
    const worker *w = wc->w;
    ck_msg m = {.type = CK_MSG_HELLO_OK};
    m.u.hello_ok.version = CK_WIRE_VERSION;
    memcpy(m.u.hello_ok.model_id, wc->sv->model_id, 32);
    m.u.hello_ok.first_layer = (uint32_t)wc->sv->first;
    m.u.hello_ok.last_layer = (uint32_t)wc->sv->last;
    m.u.hello_ok.mem_bytes = w->mem_bytes;
    m.u.hello_ok.threads = (uint32_t)ck_set_threads(0, NULL, 0);
    const char *be = ck_engine_backend(wc->sv->e), *name = w->o->name ? w->o->name : "";
    m.u.hello_ok.backend = (ck_wire_str){be, (uint16_t)strlen(be)};
    m.u.hello_ok.name = (ck_wire_str){name, (uint16_t)strnlen(name, CK_WIRE_MAX_STR)};
    return ck_msg_send(wc->c, &wc->out, &m, CK_HANDSHAKE_MS, err, errlen);
}

/* The session called id on this connection, opened on first use. */
static ck_session *session_of(wconn *wc, uint32_t id, char *err, size_t errlen) {
    for (size_t i = 0; i < wc->n_sess; i++)
        if (wc->ids[i] == id) return wc->sess[i];
    if (wc->n_sess == MAX_SESSIONS) {
        ck_err(err, errlen, "more than %d sessions on one connection", MAX_SESSIONS);
        return NULL;
    }
    if (ck_session_open(wc->sv->e, wc->lim.max_ctx, &wc->sess[wc->n_sess], err, errlen) != 0) return NULL;
    wc->ids[wc->n_sess] = id;
    return wc->sess[wc->n_sess++];
}

static int serve_forward(wconn *wc, const ck_msg *m, char *err, size_t errlen) {
    ck_session *s = session_of(wc, m->u.hidden.session, err, errlen);
    if (!s) return -1;
    if (ck_session_pos(s) != m->u.hidden.pos)
        return ck_err(err, errlen, "session %u holds %zu positions; FORWARD at position %u", m->u.hidden.session,
                      ck_session_pos(s), m->u.hidden.pos);
    size_t n = m->u.hidden.n, cells = n * wc->sv->hidden;
    ck_wire_unpack(wc->rows, m->u.hidden.data, cells, m->u.hidden.dtype);
    double t0 = ck_now_s();
    if (ck_session_layers(s, wc->rows, n, wc->rows, err, errlen) != 0) return -1;
    double dt = ck_now_s() - t0;
    ck_wire_pack(wc->packed, wc->rows, cells, m->u.hidden.dtype);
    ck_msg r = {.type = wc->next ? CK_MSG_FORWARD : CK_MSG_HIDDEN};
    r.u.hidden = m->u.hidden;
    r.u.hidden.compute_us = wc->next ? 0 : (uint64_t)(dt * 1e6);
    r.u.hidden.data = wc->packed;
    r.u.hidden.data_len = cells * ck_wire_dtype_size(m->u.hidden.dtype);
    if (wc->next && ck_msg_send(wc->next, &wc->next_out, &r, CK_REPLY_MS, err, errlen) != 0)
        return ck_err(err, errlen, "passing the rows on to the next worker: %s", err);
    return wc->next ? 0 : ck_msg_send(wc->c, &wc->out, &r, CK_REPLY_MS, err, errlen);
}

/* CHAIN: registers this connection under its route and connects on to the next worker, if any. */
static int serve_chain(wconn *wc, const ck_msg *m, char *err, size_t errlen) {
    worker *w = wc->w;
    char host[300];
    pthread_mutex_lock(&w->mu);
    int slot = -1;
    for (int i = 0; i < MAX_ROUTES && slot < 0; i++)
        if (!w->routes[i]) slot = i;
    if (slot >= 0) w->routes[slot] = wc, w->route_ids[slot] = m->u.chain.route;
    pthread_mutex_unlock(&w->mu);
    if (slot < 0) return ck_err(err, errlen, "too many chained masters");
    if (m->u.chain.next_host.n) {
        snprintf(host, sizeof host, "%.*s", (int)m->u.chain.next_host.n, m->u.chain.next_host.p);
        ck_msg link = {.type = CK_MSG_LINK, .u.link.route = m->u.chain.next_route};
        if (ck_conn_connect(host, CK_HANDSHAKE_MS, &wc->next, err, errlen) != 0 ||
            ck_conn_handshake(wc->next, w->o->key, 0, CK_HANDSHAKE_MS, err, errlen) != 0 ||
            ck_msg_send(wc->next, &wc->next_out, &link, CK_HANDSHAKE_MS, err, errlen) != 0)
            return ck_err(err, errlen, "linking to the next worker %s: %s", host, err);
    }
    ck_msg ready = {.type = CK_MSG_READY};
    return ck_msg_send(wc->c, &wc->out, &ready, CK_REPLY_MS, err, errlen);
}

static void unregister_route(worker *w, const wconn *wc) {
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < MAX_ROUTES; i++)
        if (w->routes[i] == wc) w->routes[i] = NULL;
    pthread_mutex_unlock(&w->mu);
}

/* Truncates the session (a range with recurrent layers may keep only 0, and a range over devices keeps
 * the lowest position any of its parts can) and says where it is. */
static int serve_truncate(wconn *wc, const ck_msg *m, char *err, size_t errlen) {
    ck_session *s = session_of(wc, m->u.truncate.session, err, errlen);
    if (!s) return -1;
    size_t pos = m->u.truncate.pos < ck_session_pos(s) ? m->u.truncate.pos : ck_session_pos(s);
    if (ck_session_truncate(s, pos, err, errlen) != 0) return -1;
    ck_msg r = {.type = CK_MSG_TRUNCATED};
    r.u.truncate.session = m->u.truncate.session;
    r.u.truncate.pos = (uint32_t)ck_session_pos(s);
    return ck_msg_send(wc->c, &wc->out, &r, CK_REPLY_MS, err, errlen);
}

/* The first n entries of a device list (fewer layers than devices: the first devices take them). */
static const char *first_devices(const char *list, int64_t n, char *buf, size_t cap) {
    size_t len = 0;
    while (list[len] && (n > 1 || list[len] != ',')) n -= list[len++] == ',';
    snprintf(buf, cap, "%.*s", (int)len, list);
    return buf;
}

static void served_close(served *sv) {
    if (!sv) return;
    ck_engine_close(sv->e);
    free(sv);
}

/* Opens a served range: model identity, the engine (over the devices when given; with fit, a range of fewer
 * layers than devices takes the first ones), sizes; checks the topology's prefix when given. */
static served *served_open(const char *dir, int64_t first, int64_t last, const char *prefix, const char *devices,
                           int fit, char *err, size_t errlen) {
    served *sv = calloc(1, sizeof *sv);
    if (!sv) {
        ck_err(err, errlen, "out of memory");
        return NULL;
    }
    char fitted[256];
    if (devices && fit && last >= first) devices = first_devices(devices, last - first + 1, fitted, sizeof fitted);
    snprintf(sv->dir, sizeof sv->dir, "%s", dir);
    sv->first = first, sv->last = last;
    int rc = last < first ? ck_err(err, errlen, "no layers to run") : ck_model_id(dir, sv->model_id, err, errlen);
    ck_engine_opts eo = {.partial = 1, .first_layer = first, .last_layer = last, .devices = devices};
    if (rc == 0) rc = ck_engine_open(dir, &eo, &sv->e, err, errlen);
    if (rc == 0 && prefix && strcmp(prefix, ck_engine_layer_prefix(sv->e)))
        rc = ck_err(err, errlen, "the topology names layers '%s.N' but this checkpoint calls them '%s.N'", prefix,
                    ck_engine_layer_prefix(sv->e));
    if (rc != 0) {
        served_close(sv);
        return NULL;
    }
    sv->hidden = ck_engine_hidden(sv->e);
    sv->max_ctx = ck_engine_max_ctx(sv->e);
    return sv;
}

/* Drops a connection's use of its range; a pushed range nobody uses and that is no longer the current
 * one is closed. */
static void served_release(worker *w, served *sv) {
    if (!sv) return;
    pthread_mutex_lock(&w->mu);
    int orphan = --sv->refs == 0 && sv != w->sv;
    pthread_mutex_unlock(&w->mu);
    if (orphan) served_close(sv);
}

/* Zero-config: receives the master's assignment and the weights it pushes, then serves that range
 * (reusing the open engine when the assignment is the current one). */
static int assignment(wconn *wc, const ck_msg *assign, char *why, size_t whylen) {
    worker *w = wc->w;
    char dir[4096];
    int64_t first, last;
    int replaced;
    if (ck_push_receive(wc->c, assign, w->o->cache_root, w->o->cluster_tag, dir, sizeof dir, &first, &last, &replaced,
                        why, whylen) != 0)
        return -1;
    pthread_mutex_lock(&w->mu);
    served *cur = w->sv;
    int same = cur && !replaced && cur->first == first && cur->last == last && !strcmp(cur->dir, dir);
    if (same) cur->refs++;
    pthread_mutex_unlock(&w->mu);
    if (!same) {
        served *sv = served_open(dir, first, last, NULL, w->o->devices, 1, why, whylen);
        if (!sv) {
            ck_msg_send_error(wc->c, &wc->out, 1, why);
            return -1;
        }
        ck_logf(w->o->log, w->o->log_user, "serving layers %lld-%lld of %s on %s (pushed by %s)", (long long)first,
                (long long)last, ck_engine_arch(sv->e), ck_engine_backend(sv->e), ck_conn_peer(wc->c));
        pthread_mutex_lock(&w->mu);
        sv->refs = 1;
        cur = w->sv;
        w->sv = sv;
        int orphan = cur && cur->refs == 0;
        pthread_mutex_unlock(&w->mu);
        if (orphan) served_close(cur);
        cur = sv;
    }
    wc->sv = cur;
    return ck_push_ready(wc->c, why, whylen);
}

/* The push of an ASSIGN and the engine it leads to, one connection at a time. */
static int receive_assignment(wconn *wc, const ck_msg *assign, char *why, size_t whylen) {
    pthread_mutex_lock(&wc->w->assign);
    int rc = assignment(wc, assign, why, whylen);
    pthread_mutex_unlock(&wc->w->assign);
    return rc;
}

static void wconn_release(wconn *wc);

/* A link from the previous worker of a chain: FORWARDs on it run on the sessions of the master connection
 * named by route, and their output goes on (or back to that master) as if the master had sent them. */
static void serve_link(wconn *link, uint64_t route, char *why, size_t whylen) {
    worker *w = link->w;
    wconn *target = NULL;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < MAX_ROUTES && !target; i++)
        if (w->routes[i] && w->route_ids[i] == route) target = w->routes[i];
    if (target) target->refs++;
    pthread_mutex_unlock(&w->mu);
    if (!target) {
        ck_err(why, whylen, "a link names route %llx, which no master connection holds", (unsigned long long)route);
        return;
    }
    size_t max_frame = ck_wire_hidden_size(target->lim.max_rows, target->lim.hidden, CK_WIRE_F32) + 64;
    for (;;) {
        ck_msg m;
        char msg[1200];
        int broke = ck_msg_recv(link->c, &target->lim, max_frame, &m, w->o->idle_ms ? w->o->idle_ms : 600000, why,
                                whylen) != 0;
        if (broke) /* the previous worker is gone (named here when the news travels on past this worker) */
            snprintf(msg, sizeof msg, "%s%s%sthe link from the previous worker of the chain (%s) broke: %s",
                     target->next ? "worker " : "", target->next && w->o->name ? w->o->name : "",
                     target->next ? ": " : "", ck_conn_peer(link->c), why);
        else if (m.type == CK_MSG_ERROR) /* an earlier hop's, passed down the chain */
            snprintf(msg, sizeof msg, "%.*s", m.u.error.message.n, m.u.error.message.p);
        if (broke || m.type == CK_MSG_ERROR) {
            /* the master waits on the last worker: the news goes down the chain to it, and to the master */
            pthread_mutex_lock(&target->use);
            if (target->next) ck_msg_send_error(target->next, &target->next_out, 3, msg);
            else ck_msg_send_error(target->c, &target->out, 3, msg);
            pthread_mutex_unlock(&target->use);
            snprintf(why, whylen, "%.900s", msg);
            break;
        }
        if (m.type == CK_MSG_GOODBYE) {
            snprintf(why, whylen, "link closed");
            break;
        }
        pthread_mutex_lock(&target->use);
        int rc = m.type == CK_MSG_FORWARD ? serve_forward(target, &m, why, whylen)
                                          : ck_err(why, whylen, "unexpected %s on a link", ck_msg_name(m.type));
        if (rc != 0) ck_msg_send_error(target->c, &target->out, 3, why); /* the master hears why */
        pthread_mutex_unlock(&target->use);
        if (rc != 0) break;
    }
    wconn_release(target);
}

/* An ERROR on a master connection once a chain's link may also send on it (serve_link): under its lock. */
static void send_error(wconn *wc, uint32_t code, const char *why) {
    pthread_mutex_lock(&wc->use);
    ck_msg_send_error(wc->c, &wc->out, code, why);
    pthread_mutex_unlock(&wc->use);
}

/* Serves one connection until GOODBYE, an error, or silence; returns why it ended. */
static void serve(wconn *wc, char *why, size_t whylen) {
    worker *w = wc->w;
    ck_msg m;
    ck_wire_limits none = {0, 0, 0};
    if (ck_conn_handshake(wc->c, w->o->key, 1, CK_HANDSHAKE_MS, why, whylen) != 0) return;
    /* the first message: a chain's LINK from the previous worker, else a master's HELLO (zero-config: its
     * ASSIGN and push first; the master may take a while to plan the push) */
    int first_ms = w->o->model_dir ? CK_HANDSHAKE_MS : CK_PUSH_CHUNK_MS;
    if (ck_msg_recv(wc->c, &none, 1 << 16, &m, first_ms, why, whylen) != 0) { /* garbage, or silence */
        if (!ck_conn_peer_closed(wc->c)) ck_msg_send_error(wc->c, &wc->out, 1, why);
        return;
    }
    if (m.type == CK_MSG_LINK) {
        serve_link(wc, m.u.link.route, why, whylen);
        return;
    }
    if (w->o->model_dir) {
        pthread_mutex_lock(&w->mu);
        wc->sv = w->sv;
        wc->sv->refs++;
        pthread_mutex_unlock(&w->mu);
    } else if (receive_assignment(wc, &m, why, whylen) != 0) {
        return;
    } else if (ck_msg_recv(wc->c, &none, 1 << 16, &m, CK_HANDSHAKE_MS, why, whylen) != 0) {
        if (!ck_conn_peer_closed(wc->c)) ck_msg_send_error(wc->c, &wc->out, 1, why);
        return;
    }
    if (check_hello(wc, &m, why, whylen) != 0) {
        ck_msg_send_error(wc->c, &wc->out, 1, why);
        return;
    }
    if (send_hello_ok(wc, why, whylen) != 0) return;
    ck_logf(w->o->log, w->o->log_user, "master %s connected (%s)", ck_conn_peer(wc->c),
            ck_conn_secure(wc->c) ? "encrypted" : "plaintext");
    size_t max_frame = ck_wire_hidden_size(wc->lim.max_rows, wc->lim.hidden, CK_WIRE_F32) + 64;
    for (;;) {
        if (ck_msg_recv(wc->c, &wc->lim, max_frame, &m, w->o->idle_ms ? w->o->idle_ms : 600000, why, whylen) != 0) {
            if (!ck_conn_peer_closed(wc->c)) send_error(wc, 2, why);
            return;
        }
        int rc = 0;
        pthread_mutex_lock(&wc->use);
        switch (m.type) {
        case CK_MSG_FORWARD: rc = serve_forward(wc, &m, why, whylen); break;
        case CK_MSG_TRUNCATE: rc = serve_truncate(wc, &m, why, whylen); break;
        case CK_MSG_CHAIN: rc = serve_chain(wc, &m, why, whylen); break;
        case CK_MSG_PING: {
            ck_msg r = {.type = CK_MSG_PONG, .u.ping = m.u.ping};
            rc = ck_msg_send(wc->c, &wc->out, &r, CK_REPLY_MS, why, whylen);
            break;
        }
        case CK_MSG_GOODBYE: rc = 1; snprintf(why, whylen, "goodbye"); break;
        default: rc = ck_err(why, whylen, "unexpected %s from the master", ck_msg_name(m.type));
        }
        pthread_mutex_unlock(&wc->use);
        if (rc == 1) return;
        if (rc != 0) {
            send_error(wc, 3, why);
            return;
        }
    }
}

/* Drops one reference to a connection; the last one frees it. */
static void wconn_release(wconn *wc) {
    worker *w = wc->w;
    pthread_mutex_lock(&w->mu);
    int last = --wc->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (!last) return;
    for (size_t i = 0; i < wc->n_sess; i++)
        ck_session_close(wc->sess[i]);
    served_release(w, wc->sv);
    ck_conn_close(wc->c);
    ck_conn_close(wc->next);
    ck_msgbuf_free(&wc->out);
    ck_msgbuf_free(&wc->next_out);
    pthread_mutex_destroy(&wc->use);
    free(wc->rows);
    free(wc->packed);
    free(wc);
    pthread_mutex_lock(&w->mu);
    w->n_conns--;
    pthread_mutex_unlock(&w->mu);
}

static void *conn_main(void *arg) {
    wconn *wc = arg;
    worker *w = wc->w;
    char why[1024] = "";
    serve(wc, why, sizeof why);
    ck_logf(w->o->log, w->o->log_user, "%s %s: %s", wc->lim.hidden ? "master" : "peer", ck_conn_peer(wc->c),
            why[0] ? why : "disconnected");
    unregister_route(w, wc);
    wconn_release(wc);
    return NULL;
}

static void accept_one(worker *w, int lfd) {
    char err[512];
    ck_conn *c;
    if (ck_conn_accept(lfd, 500, &c, err, sizeof err) != 0) {
        if (!strstr(err, "timed out")) ck_logf(w->o->log, w->o->log_user, "accept: %s", err);
        return;
    }
    wconn *wc = calloc(1, sizeof *wc);
    pthread_mutex_lock(&w->mu);
    int full = w->n_conns >= MAX_CONNS;
    if (!full && wc) w->n_conns++;
    pthread_mutex_unlock(&w->mu);
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (wc && !full) {
        wc->w = w;
        wc->c = c;
        wc->refs = 1;
        pthread_mutex_init(&wc->use, NULL);
        if (pthread_create(&th, &at, conn_main, wc) == 0) {
            pthread_attr_destroy(&at);
            return;
        }
        pthread_mutex_lock(&w->mu);
        w->n_conns--;
        pthread_mutex_unlock(&w->mu);
    }
    pthread_attr_destroy(&at);
    ck_logf(w->o->log, w->o->log_user, "refused %s: %s", ck_conn_peer(c),
            full ? "too many connections" : "out of resources");
    ck_conn_close(c);
    free(wc);
}

int ck_worker_run(const ck_worker_opts *o, const volatile int *stop, char *err, size_t errlen) {
    worker *w = calloc(1, sizeof *w); /* leaked on purpose when a connection thread outlives the stop */
    if (!w) return ck_err(err, errlen, "out of memory");
    w->o = o;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->assign, NULL);
    ck_devices_info dev;
    if (ck_devices_info_get(o->devices, &dev, err, errlen) != 0) {
        free(w);
        return -1;
    }
    w->mem_bytes = dev.mem_bytes;
    if (o->model_dir && !(w->sv = served_open(o->model_dir, o->first, o->last, o->prefix, o->devices, 0, err, errlen))) {
        free(w);
        return -1;
    }
    if (!o->model_dir && (!o->cache_root || !o->key || !*o->key)) {
        free(w);
        return ck_err(err, errlen, "a zero-config worker needs a cluster key and a cache directory");
    }
    int lfd;
    if (ck_conn_listen(o->address, &lfd, err, errlen) != 0) {
        served_close(w->sv);
        free(w);
        return -1;
    }
    if (w->sv)
        ck_logf(w->o->log, w->o->log_user, "worker %s: layers %lld-%lld of %s on %s, listening on %s%s",
                o->name ? o->name : "", (long long)o->first, (long long)o->last, ck_engine_arch(w->sv->e),
                ck_engine_backend(w->sv->e), o->address, o->key && *o->key ? " (cluster key set)" : "");
    else
        ck_logf(w->o->log, w->o->log_user, "worker %s: waiting for a master to assign layers, listening on %s",
                o->name ? o->name : "", o->address);
    while (!*stop) accept_one(w, lfd);
    close(lfd);
    int left = 1;
    for (int i = 0; i < 100 && left; i++) { /* let connection threads finish their current message */
        pthread_mutex_lock(&w->mu);
        left = w->n_conns;
        pthread_mutex_unlock(&w->mu);
        if (left) usleep(50000);
    }
    if (!left) {
        served_close(w->sv);
        free(w);
    }
    return 0;
}
