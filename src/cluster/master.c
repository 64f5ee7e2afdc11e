/* master.c — connections to the workers of a static topology, the workers as stages of the master's
 * session, and recovery of a lost worker by replay (see master.h). */
#include "cluster/master.h"

#include "base/err.h"
#include "base/grow.h"
#include "cluster/node.h"
#include "cluster/push.h"

#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SESSION_ID 1

typedef struct remote {
    const ck_cluster_opts *o;
    const ck_topo_worker *tw;
    uint8_t model_id[32];
    ck_conn *c;
    ck_msgbuf out;
    ck_wire_limits lim;
    uint8_t *packed; /* [CK_WIRE_ROWS, hidden] in the wire dtype */
    size_t pos; /* positions the worker holds */
    /* replay log: the inputs sent for positions [0, pos) and the row count of each call */
    float *sent;
    size_t cap_sent;
    uint32_t *calls;
    size_t n_calls, cap_calls;
    ck_worker_stats st;      /* the session's thread's figures ... */
    ck_worker_stats pub;     /* ... as other threads see them (publish) */
    pthread_mutex_t *mu;     /* the cluster's, guarding pub */
    uint64_t sent_base, received_base; /* bytes of the connections before the current one */
    ck_push_plan *plan; /* zero-config: the files this worker needs */
    double last_note; /* push progress notes, at most one a second */
    int introduced;   /* the worker's devices were logged (its first HELLO_OK) */
} remote;

#define MAX_LOCAL 8

struct ck_cluster {
    ck_cluster_opts o;
    /* ranges the master runs itself besides its own engine's: engines and sessions of this process */
    ck_engine *local_e[MAX_LOCAL];
    ck_session *local_s[MAX_LOCAL];
    int64_t local_first[MAX_LOCAL], local_last[MAX_LOCAL]; /* copies: the caller's arrays may go */
    size_t n_local;
    ck_topo_worker *workers; /* the cluster's own copy of the topology's workers */
    char *model_dir;
    size_t n_workers;
    remote *r;
    size_t n;
    pthread_mutex_t mu;      /* guards every remote's pub */
};

/* Copies the workers of t (the caller's topology may be freed after ck_cluster_open). */
static int copy_workers(ck_cluster *c, const ck_topology *t, char *err, size_t errlen) {
    c->workers = calloc(t->n ? t->n : 1, sizeof *c->workers);
    if (!c->workers) return ck_err(err, errlen, "out of memory");
    for (size_t i = 0; i < t->n; i++, c->n_workers++) {
        const ck_topo_worker *w = &t->workers[i];
        ck_topo_worker *d = &c->workers[i];
        *d = (ck_topo_worker){.first = w->first, .last = w->last};
        d->name = strdup(w->name);
        d->host = strdup(w->host);
        if (!d->name || !d->host) return ck_err(err, errlen, "out of memory");
    }
    return 0;
}

size_t ck_cluster_local_ranges(const ck_topology *t, int64_t n_layers, int64_t *first, int64_t *last, size_t cap) {
    size_t n = 0;
    for (int64_t l = 0; l < n_layers; l++) {
        int held = 0;
        for (size_t i = 0; i < t->n && !held; i++) held = l >= t->workers[i].first && l <= t->workers[i].last;
        if (held) continue;
        if (n && last[n - 1] == l - 1) {
            last[n - 1] = l;
        } else {
            if (n < cap) first[n] = last[n] = l;
            n++;
        }
    }
    return n;
}

/* Prefixes err with the worker's name and address. */
/* Makes r's figures visible to other threads. */
static void publish(remote *r) {
    pthread_mutex_lock(r->mu);
    r->st.bytes_sent = r->sent_base + (r->c ? ck_conn_bytes_sent(r->c) : 0);
    r->st.bytes_received = r->received_base + (r->c ? ck_conn_bytes_received(r->c) : 0);
    r->pub = r->st;
    pthread_mutex_unlock(r->mu);
}

/* Closes r's connection, keeping its byte counts. */
static void disconnect(remote *r) {
    if (!r->c) return;
    r->sent_base += ck_conn_bytes_sent(r->c);
    r->received_base += ck_conn_bytes_received(r->c);
    ck_conn_close(r->c);
    r->c = NULL;
}

/* err, prefixed with the worker; the worker counts as down until a call succeeds again. */
static int fail(remote *r, char *err, size_t errlen) {
    r->st.up = 0;
    publish(r);
    char why[1024];
    snprintf(why, sizeof why, "%s", err);
    return ck_err(err, errlen, "worker %s (%s): %s", r->tw->name, r->tw->host, why);
}

static void push_progress(void *user, uint64_t done, uint64_t total) {
    remote *r = user;
    double t = ck_now_s();
    if (done < total && t - r->last_note < 1.0) return;
    r->last_note = t;
    ck_logf(r->o->log, r->o->log_user, "pushing to %s (%s): %.1f / %.1f MiB", r->tw->name, r->tw->host,
            (double)done / 1048576.0, (double)total / 1048576.0);
}

/* Milliseconds left until `until` (seconds), at least 1. */
static int left_ms(double until) {
    double ms = (until - ck_now_s()) * 1000.0;
    return ms < 1 ? 1 : (int)ms;
}

/* Connects and handshakes within wait_ms, then (a zero-config push between keeps its own deadlines)
 * says HELLO within wait_ms. Returns 0, -1 (with err) when the worker could not be reached or did not
 * answer, -2 when it answered and refused (another key, model or layers: waiting will not change that). */
static int connect_worker(remote *r, int wait_ms, char *err, size_t errlen) {
    const ck_cluster_opts *o = r->o;
    ck_msg m = {.type = CK_MSG_HELLO}, reply;
    ck_wire_limits none = {0, 0, 0};
    double until = ck_now_s() + wait_ms / 1000.0;
    if (ck_conn_connect(r->tw->host, left_ms(until), &r->c, err, errlen) != 0) return fail(r, err, errlen);
    int hs = ck_conn_handshake(r->c, o->key, 0, left_ms(until), err, errlen);
    if (hs != 0) { /* a refusal (another key, not a cake node) is not waited out */
        fail(r, err, errlen);
        return hs == -2 ? -2 : -1;
    }
    if (r->plan) {
        if (ck_push_send(r->c, r->plan, r->model_id, r->tw->first, r->tw->last, push_progress, r, 0, err, errlen) != 0)
            return fail(r, err, errlen);
        until = ck_now_s() + wait_ms / 1000.0;
    }
    m.u.hello.version = CK_WIRE_VERSION;
    memcpy(m.u.hello.model_id, r->model_id, 32);
    m.u.hello.first_layer = (uint32_t)r->tw->first;
    m.u.hello.last_layer = (uint32_t)r->tw->last;
    m.u.hello.hidden = (uint32_t)o->hidden;
    m.u.hello.wire_dtype = (uint8_t)o->wire_dtype;
    m.u.hello.max_ctx = (uint32_t)o->max_ctx;
    m.u.hello.max_rows = CK_WIRE_ROWS;
    m.u.hello.name = (ck_wire_str){r->tw->name, (uint16_t)strnlen(r->tw->name, CK_WIRE_MAX_STR)};
    if (ck_msg_send(r->c, &r->out, &m, left_ms(until), err, errlen) != 0 ||
        ck_msg_recv(r->c, &none, 1 << 16, &reply, left_ms(until), err, errlen) != 0)
        return fail(r, err, errlen);
    if (reply.type != CK_MSG_HELLO_OK || reply.u.hello_ok.first_layer != (uint32_t)r->tw->first ||
        reply.u.hello_ok.last_layer != (uint32_t)r->tw->last) { /* refused: down until it takes a HELLO */
        r->st.up = 0;
        publish(r);
    }
    if (reply.type == CK_MSG_ERROR) {
        ck_err(err, errlen, "worker %s (%s) refused: %.*s", r->tw->name, r->tw->host, reply.u.error.message.n,
               reply.u.error.message.p);
        return -2;
    }
    if (reply.type != CK_MSG_HELLO_OK)
        return ck_err(err, errlen, "worker %s (%s): %s in reply to HELLO", r->tw->name, r->tw->host,
                      ck_msg_name(reply.type));
    if (reply.u.hello_ok.first_layer != (uint32_t)r->tw->first || reply.u.hello_ok.last_layer != (uint32_t)r->tw->last) {
        ck_err(err, errlen, "worker %s (%s) answered for layers %u-%u, not %lld-%lld", r->tw->name, r->tw->host,
               reply.u.hello_ok.first_layer, reply.u.hello_ok.last_layer, (long long)r->tw->first,
               (long long)r->tw->last);
        return -2;
    }
    r->lim = (ck_wire_limits){(uint32_t)o->hidden, CK_WIRE_ROWS, (uint32_t)o->max_ctx};
    r->pos = 0;
    snprintf(r->st.backend, sizeof r->st.backend, "%.*s", reply.u.hello_ok.backend.n, reply.u.hello_ok.backend.p);
    r->st.up = 1;
    publish(r);
    if (!r->introduced++)
        ck_logf(o->log, o->log_user, "worker %s (%s): layers %lld-%lld on %.*s, %.1f GB, %u threads", r->tw->name,
                r->tw->host, (long long)r->tw->first, (long long)r->tw->last, reply.u.hello_ok.backend.n,
                reply.u.hello_ok.backend.p, (double)reply.u.hello_ok.mem_bytes * 1e-9, reply.u.hello_ok.threads);
    return 0;
}

/* One FORWARD of n <= CK_WIRE_ROWS rows at r->pos and its reply, in place. */
static int call(remote *r, float *hidden, size_t n, char *err, size_t errlen) {
    size_t cells = n * r->o->hidden;
    ck_msg m = {.type = CK_MSG_FORWARD}, reply;
    m.u.hidden.session = SESSION_ID;
    m.u.hidden.pos = (uint32_t)r->pos;
    m.u.hidden.n = (uint32_t)n;
    m.u.hidden.dtype = (uint8_t)r->o->wire_dtype;
    m.u.hidden.data = r->packed;
    m.u.hidden.data_len = cells * ck_wire_dtype_size(r->o->wire_dtype);
    ck_wire_pack(r->packed, hidden, cells, r->o->wire_dtype);
    double t0 = ck_now_s();
    size_t max_frame = m.u.hidden.data_len + 256;
    if (ck_msg_send(r->c, &r->out, &m, CK_REPLY_MS, err, errlen) != 0 ||
        ck_msg_recv(r->c, &r->lim, max_frame, &reply, CK_REPLY_MS + CK_REPLY_MS_PER_ROW * (int)(n - 1), err, errlen) !=
            0)
        return -1;
    if (reply.type == CK_MSG_ERROR)
        return ck_err(err, errlen, "%.*s", reply.u.error.message.n, reply.u.error.message.p);
    if (reply.type != CK_MSG_HIDDEN || reply.u.hidden.session != SESSION_ID || reply.u.hidden.pos != r->pos ||
        reply.u.hidden.n != n || reply.u.hidden.dtype != r->o->wire_dtype)
        return ck_err(err, errlen, "unexpected %s in reply to FORWARD", ck_msg_name(reply.type));
    ck_wire_unpack(hidden, reply.u.hidden.data, cells, reply.u.hidden.dtype);
    r->st.rtt_s += ck_now_s() - t0;
    r->st.compute_s += (double)reply.u.hidden.compute_us * 1e-6;
    r->st.calls++;
    r->st.rows += n;
    r->pos += n;
    publish(r);
    return 0;
}

/* Appends the inputs of a call to the replay log. */
static int log_call(remote *r, const float *hidden, size_t n, char *err, size_t errlen) {
    size_t D = r->o->hidden;
    void *p = ck_grow(r->sent, &r->cap_sent, (r->pos + n) * D, sizeof *r->sent, 64 * D);
    void *q = p ? ck_grow(r->calls, &r->cap_calls, r->n_calls + 1, sizeof *r->calls, 64) : NULL;
    if (p) r->sent = p;
    if (!q) return ck_err(err, errlen, "out of memory for the replay log");
    r->calls = q;
    memcpy(r->sent + r->pos * D, hidden, n * D * sizeof *hidden);
    r->calls[r->n_calls++] = (uint32_t)n;
    return 0;
}

/* One call of a replay: a worker's FORWARD (call) or a chain step (chain_call). */
typedef int (*replay_fn)(void *ctx, float *hidden, size_t n, char *err, size_t errlen);
static int call_fn(void *ctx, float *hidden, size_t n, char *err, size_t errlen) {
    return call(ctx, hidden, n, err, errlen);
}

/* Sends the calls logged in `log` again through fn, in order, up to position want. */
static int replay(const remote *log, size_t want, replay_fn fn, void *ctx, char *err, size_t errlen) {
    size_t D = log->o->hidden, at = 0;
    float *tmp = malloc(CK_WIRE_ROWS * D * sizeof *tmp);
    if (!tmp) return ck_err(err, errlen, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < log->n_calls && at < want; i++) {
        size_t n = log->calls[i];
        memcpy(tmp, log->sent + at * D, n * D * sizeof *tmp);
        rc = fn(ctx, tmp, n, err, errlen);
        at += n;
    }
    free(tmp);
    return rc;
}

/* Milliseconds of s seconds, at least 100 and at most CK_HANDSHAKE_MS. */
static int clamp_ms(double s) {
    double ms = s * 1000.0;
    return ms < 100 ? 100 : ms > CK_HANDSHAKE_MS ? CK_HANDSHAKE_MS : (int)ms;
}

/* Connects r again, trying until give_up (seconds): each try waits no longer than the window has left (a
 * silent worker must not outlast it); a worker that answers and refuses is not waited for. */
static int reconnect(remote *r, double give_up, char *err, size_t errlen) {
    int rc;
    disconnect(r);
    while ((rc = connect_worker(r, clamp_ms(give_up - ck_now_s()), err, errlen)) != 0) {
        disconnect(r);
        if (rc == -2 || ck_now_s() > give_up || (r->o->stop && *r->o->stop)) return -1;
        usleep(250000);
    }
    return 0;
}

/* Reconnects (waiting up to recover_ms for the worker) and replays the logged calls. */
static int recover(remote *r, char *err, size_t errlen) {
    size_t want = r->pos;
    if (reconnect(r, ck_now_s() + r->o->recover_ms / 1000.0, err, errlen) != 0) return -1;
    if (replay(r, want, call_fn, r, err, errlen) != 0) return fail(r, err, errlen);
    r->st.recoveries++;
    ck_logf(r->o->log, r->o->log_user, "worker %s (%s) is back: replayed %zu positions", r->tw->name, r->tw->host,
            want);
    return 0;
}

static int stage_forward(void *ctx, float *hidden, size_t n, size_t pos, char *err, size_t errlen) {
    remote *r = ctx;
    if (pos != r->pos)
        return ck_err(err, errlen, "worker %s holds %zu positions, the master is at %zu", r->tw->name, r->pos, pos);
    for (size_t off = 0; off < n; off += CK_WIRE_ROWS) {
        size_t k = n - off < CK_WIRE_ROWS ? n - off : CK_WIRE_ROWS;
        float *h = hidden + off * r->o->hidden;
        if (log_call(r, h, k, err, errlen) != 0) return -1;
        r->n_calls--; /* logged for good only once the call succeeds */
        if (call(r, h, k, err, errlen) == 0) {
            r->n_calls++;
            continue;
        }
        if (!r->o->recover_ms) return fail(r, err, errlen);
        ck_logf(r->o->log, r->o->log_user, "worker %s (%s) lost: %s; reconnecting", r->tw->name, r->tw->host, err);
        if (recover(r, err, errlen) != 0) return -1;
        r->n_calls++;
        if (call(r, h, k, err, errlen) != 0) return fail(r, err, errlen);
    }
    return 0;
}

/* Cuts the replay log (and the positions the worker is taken to hold) to the first pos. */
static void forget_after(remote *r, size_t pos) {
    if (pos > r->pos) pos = r->pos;
    if (!r->calls) { /* no log: a chain's workers after the first (the first one's log is the chain's) */
        r->pos = pos;
        return;
    }
    size_t at = 0, i = 0; /* keep the calls that lie below the new position */
    while (i < r->n_calls && at + r->calls[i] <= pos) at += r->calls[i++];
    if (at < pos) r->calls[i++] = (uint32_t)(pos - at);
    r->n_calls = i;
    r->pos = pos;
}

/* TRUNCATE to pos; *held = what the worker keeps. may_recover: a worker lost since the last request is
 * reconnected and replayed (star topologies; a chain recovers as a whole, chain_truncate). */
static int truncate_worker(remote *r, size_t pos, int may_recover, size_t *held, char *err, size_t errlen) {
    ck_msg m = {.type = CK_MSG_TRUNCATE}, reply;
    m.u.truncate.session = SESSION_ID;
    m.u.truncate.pos = (uint32_t)pos;
    int ok = ck_msg_send(r->c, &r->out, &m, CK_REPLY_MS, err, errlen) == 0 &&
             ck_msg_recv(r->c, &r->lim, 1 << 16, &reply, CK_REPLY_MS, err, errlen) == 0;
    if (ok && reply.type == CK_MSG_ERROR) { /* e.g. its idle limit ended the connection: it said why, then closed */
        ck_err(err, errlen, "%.*s", reply.u.error.message.n, reply.u.error.message.p);
        ok = 0;
    } else if (ok && (reply.type != CK_MSG_TRUNCATED || reply.u.truncate.pos > pos)) {
        ck_err(err, errlen, "unexpected %s in reply to TRUNCATE", ck_msg_name(reply.type));
        ok = 0;
    }
    if (!ok) {
        /* lost between two requests (restarted, or idle too long): reconnect and replay what stays */
        if (!may_recover || !r->o->recover_ms) return fail(r, err, errlen);
        ck_logf(r->o->log, r->o->log_user, "worker %s (%s) lost: %s; reconnecting", r->tw->name, r->tw->host, err);
        forget_after(r, pos);
        if (recover(r, err, errlen) != 0) return -1;
        *held = r->pos;
        return 0;
    }
    forget_after(r, reply.u.truncate.pos);
    *held = r->pos;
    return 0;
}

static int stage_truncate(void *ctx, size_t pos, size_t *held, char *err, size_t errlen) {
    return truncate_worker(ctx, pos, 1, held, err, errlen);
}

/* ---- chain forwarding ---- */

static int cmp_remote(const void *a, const void *b) {
    const remote *x = a, *y = b;
    return x->tw->first < y->tw->first ? -1 : x->tw->first > y->tw->first;
}

/* Tells each worker, last first, where its output goes: the next worker (which the worker links to under
 * the next one's route) or, for the last, back to the master. */
static int link_chain(ck_cluster *c, char *err, size_t errlen) {
    qsort(c->r, c->n, sizeof *c->r, cmp_remote);
    uint64_t routes[64];
    if (c->n > 64) return ck_err(err, errlen, "at most 64 workers in a chain");
    for (size_t i = 0; i < c->n; i++) {
        randombytes_buf(&routes[i], sizeof routes[i]);
        if (i && c->r[i].tw->first != c->r[i - 1].tw->last + 1)
            return ck_err(err, errlen, "a chain needs the workers' layers back to back (%s ends at %lld, %s starts at %lld)",
                          c->r[i - 1].tw->name, (long long)c->r[i - 1].tw->last, c->r[i].tw->name,
                          (long long)c->r[i].tw->first);
    }
    for (size_t k = c->n; k-- > 0;) {
        remote *r = &c->r[k];
        const char *next = k + 1 < c->n ? c->r[k + 1].tw->host : "";
        ck_msg m = {.type = CK_MSG_CHAIN}, reply;
        m.u.chain.route = routes[k];
        m.u.chain.next_host = (ck_wire_str){next, (uint16_t)strlen(next)};
        m.u.chain.next_route = k + 1 < c->n ? routes[k + 1] : 0;
        if (ck_msg_send(r->c, &r->out, &m, CK_HANDSHAKE_MS, err, errlen) != 0 ||
            ck_msg_recv(r->c, &r->lim, 1 << 16, &reply, CK_HANDSHAKE_MS, err, errlen) != 0)
            return fail(r, err, errlen);
        if (reply.type == CK_MSG_ERROR)
            return ck_err(err, errlen, "worker %s (%s): %.*s", r->tw->name, r->tw->host, reply.u.error.message.n,
                          reply.u.error.message.p);
        if (reply.type != CK_MSG_READY)
            return ck_err(err, errlen, "worker %s: unexpected %s in reply to CHAIN", r->tw->name, ck_msg_name(reply.type));
    }
    return 0;
}

#define CHAIN_NEWS_MS 100 /* how long a worker's end may lag behind the next worker's report of it */

/* After a chain step failed: the worker to blame, the first in chain order whose connection to the master
 * closed (it is gone) or that sent an ERROR (its own failure, or a broken link into it). A worker's death
 * can reach the master through the next worker's report before its own connection's end does: each is
 * given wait_ms to show it. Sets err naming the worker and returns 1, or returns 0 when none says anything
 * (err untouched). */
static int chain_error(ck_cluster *c, int wait_ms, char *err, size_t errlen) {
    for (size_t i = 0; i < c->n; i++) {
        char why[1024];
        int said = 0;
        for (int k = 0; k < 16 && !said; k++) { /* what it sent before it went (if it went) */
            ck_msg m;
            if (ck_msg_recv(c->r[i].c, &c->r[i].lim, 1 << 16, &m, k ? 0 : wait_ms, why, sizeof why) != 0) {
                said = ck_conn_peer_closed(c->r[i].c);
                break; /* closed, or nothing (more) from it */
            }
            if (m.type == CK_MSG_ERROR) {
                snprintf(why, sizeof why, "%.*s", m.u.error.message.n, m.u.error.message.p);
                said = 1;
            }
        }
        if (!said) continue;
        ck_err(err, errlen, "%s", why);
        fail(&c->r[i], err, errlen);
        return 1;
    }
    return 0;
}

/* One chain step of n <= CK_WIRE_ROWS rows: FORWARD to the first worker, HIDDEN from the last. */
static int chain_call(ck_cluster *c, float *hidden, size_t n, char *err, size_t errlen) {
    remote *first = &c->r[0], *last = &c->r[c->n - 1];
    size_t cells = n * c->o.hidden;
    ck_msg m = {.type = CK_MSG_FORWARD}, reply;
    m.u.hidden = (__typeof__(m.u.hidden)){.session = SESSION_ID, .pos = (uint32_t)first->pos, .n = (uint32_t)n,
                                          .dtype = (uint8_t)c->o.wire_dtype, .data = first->packed,
                                          .data_len = cells * ck_wire_dtype_size(c->o.wire_dtype)};
    ck_wire_pack(first->packed, hidden, cells, c->o.wire_dtype);
    double t0 = ck_now_s();
    int wait_ms = CK_REPLY_MS + CK_REPLY_MS_PER_ROW * (int)(n - 1) * (int)c->n;
    if (ck_msg_send(first->c, &first->out, &m, CK_REPLY_MS, err, errlen) != 0) return fail(first, err, errlen);
    if (ck_msg_recv(last->c, &last->lim, m.u.hidden.data_len + 256, &reply, wait_ms, err, errlen) != 0) {
        if (chain_error(c, 0, err, errlen)) return -1;
        /* silence: any worker of the chain may have stalled, not only the last, on whose answer it waits */
        char why[1024], names[512] = "";
        snprintf(why, sizeof why, "%s", err);
        for (size_t i = 0; i < c->n; i++) {
            size_t k = strlen(names);
            snprintf(names + k, sizeof names - k, "%s%s", i ? " -> " : "", c->r[i].tw->name);
        }
        return ck_err(err, errlen, "the chain %s: no answer (%s); one of its workers stalled or is unreachable",
                      names, why);
    }
    if (reply.type == CK_MSG_ERROR) { /* a worker before it that is gone is the cause, else what it says */
        char why[1024];
        snprintf(why, sizeof why, "%.*s", reply.u.error.message.n, reply.u.error.message.p);
        if (chain_error(c, CHAIN_NEWS_MS, err, errlen)) return -1;
        return ck_err(err, errlen, "worker %s (%s): %s", last->tw->name, last->tw->host, why);
    }
    if (reply.type != CK_MSG_HIDDEN || reply.u.hidden.pos != first->pos || reply.u.hidden.n != n)
        return ck_err(err, errlen, "worker %s: unexpected %s at the end of the chain", last->tw->name,
                      ck_msg_name(reply.type));
    ck_wire_unpack(hidden, reply.u.hidden.data, cells, reply.u.hidden.dtype);
    last->st.rtt_s += ck_now_s() - t0;
    last->st.compute_s += (double)reply.u.hidden.compute_us * 1e-6;
    for (size_t i = 0; i < c->n; i++) {
        c->r[i].pos += n;
        c->r[i].st.calls++;
        c->r[i].st.rows += n;
        publish(&c->r[i]);
    }
    return 0;
}

static int chain_fn(void *ctx, float *hidden, size_t n, char *err, size_t errlen) {
    return chain_call(ctx, hidden, n, err, errlen);
}

/* A chain after a failed step or truncation: every worker connected again (one that is down waited for
 * until recover_ms has passed), the chain linked again, and the logged inputs of the first worker replayed
 * through it, so every worker holds the positions it held before. */
static int chain_recover(ck_cluster *c, char *err, size_t errlen) {
    remote *first = &c->r[0];
    size_t want = first->pos;
    double give_up = ck_now_s() + c->o.recover_ms / 1000.0;
    for (size_t i = 0; i < c->n; i++) disconnect(&c->r[i]); /* every old link goes with its connection */
    for (size_t i = 0; i < c->n; i++)
        if (reconnect(&c->r[i], give_up, err, errlen) != 0) return -1;
    if (link_chain(c, err, errlen) != 0) return -1;
    if (replay(first, want, chain_fn, c, err, errlen) != 0) return -1; /* from position 0 on every worker */
    for (size_t i = 0; i < c->n; i++) c->r[i].st.recoveries++;
    ck_logf(c->o.log, c->o.log_user, "the chain is back: replayed %zu positions", want);
    return 0;
}

/* Logs a lost chain and recovers it; -1 (err kept) when recovery is off or fails. */
static int chain_lost(ck_cluster *c, char *err, size_t errlen) {
    if (!c->o.recover_ms) return -1;
    ck_logf(c->o.log, c->o.log_user, "chain broken: %s; reconnecting", err);
    return chain_recover(c, err, errlen);
}

static int chain_forward(void *ctx, float *hidden, size_t n, size_t pos, char *err, size_t errlen) {
    ck_cluster *c = ctx;
    remote *first = &c->r[0]; /* its log is the chain's: the inputs the chain was sent */
    if (pos != first->pos)
        return ck_err(err, errlen, "the chain holds %zu positions, the master is at %zu", first->pos, pos);
    for (size_t off = 0; off < n; off += CK_WIRE_ROWS) {
        size_t k = n - off < CK_WIRE_ROWS ? n - off : CK_WIRE_ROWS;
        float *h = hidden + off * c->o.hidden;
        if (log_call(first, h, k, err, errlen) != 0) return -1;
        first->n_calls--; /* logged for good only once the call succeeds */
        if (chain_call(c, h, k, err, errlen) != 0 &&
            (chain_lost(c, err, errlen) != 0 || chain_call(c, h, k, err, errlen) != 0))
            return -1;
        first->n_calls++;
    }
    return 0;
}

static int chain_truncate(void *ctx, size_t pos, size_t *held, char *err, size_t errlen) {
    ck_cluster *c = ctx;
    size_t low = pos, h;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->n; i++) {
            if (truncate_worker(&c->r[i], low, 0, &h, err, errlen) != 0) {
                if (!c->o.recover_ms) return -1;
                /* lost between two requests: the whole chain again, with what stays */
                forget_after(&c->r[0], low);
                if (chain_lost(c, err, errlen) != 0) return -1;
                *held = c->r[0].pos;
                return 0;
            }
            if (h < low) low = h;
        }
        int same = 1;
        for (size_t i = 0; i < c->n; i++) same &= c->r[i].pos == low;
        if (same) break;
    }
    *held = low;
    return 0;
}

/* ---- ranges of this process that are not the session's own ---- */

static int open_locals(ck_cluster *c, const ck_cluster_opts *o, char *err, size_t errlen) {
    if (o->n_local > MAX_LOCAL) return ck_err(err, errlen, "more than %d separate ranges on the master", MAX_LOCAL);
    for (size_t i = 0; i < o->n_local; i++, c->n_local++) {
        c->local_first[i] = o->local_first[i], c->local_last[i] = o->local_last[i];
        ck_engine_opts eo = {.partial = 1, .first_layer = o->local_first[i], .last_layer = o->local_last[i]};
        if (ck_engine_open(o->model_dir, &eo, &c->local_e[i], err, errlen) != 0 ||
            ck_session_open(c->local_e[i], o->max_ctx, &c->local_s[i], err, errlen) != 0) {
            c->n_local++;
            return -1;
        }
    }
    return 0;
}

int ck_cluster_open(const ck_cluster_opts *o, ck_cluster **out, char *err, size_t errlen) {
    *out = NULL;
    ck_cluster *c = calloc(1, sizeof *c);
    if (!c) return ck_err(err, errlen, "out of memory");
    c->o = *o;
    c->o.topo = NULL;
    c->o.local_first = c->o.local_last = NULL; /* copied by open_locals */
    c->model_dir = strdup(o->model_dir ? o->model_dir : "");
    c->o.model_dir = c->model_dir;
    pthread_mutex_init(&c->mu, NULL);
    c->r = calloc(o->topo->n ? o->topo->n : 1, sizeof *c->r);
    uint8_t id[32];
    int rc = c->r ? copy_workers(c, o->topo, err, errlen) : ck_err(err, errlen, "out of memory");
    if (rc == 0) rc = ck_model_id(o->model_dir, id, err, errlen);
    for (size_t i = 0; rc == 0 && i < c->n_workers; i++) {
        const ck_topo_worker *tw = &c->workers[i];
        if (tw->last < tw->first) continue;
        remote *r = &c->r[c->n++];
        r->o = &c->o;
        r->mu = &c->mu;
        r->tw = tw;
        memcpy(r->model_id, id, 32);
        r->st = (ck_worker_stats){.name = tw->name, .host = tw->host, .first = tw->first, .last = tw->last};
        r->packed = malloc(CK_WIRE_ROWS * o->hidden * sizeof(float));
        if (!r->packed)
            rc = ck_err(err, errlen, "out of memory");
        else if (o->push &&
                 ck_push_plan(o->model_dir, o->layer_prefix, tw->first, tw->last, &r->plan, err, errlen) != 0)
            rc = -1;
        else
            rc = connect_worker(r, CK_HANDSHAKE_MS, err, errlen);
    }
    if (rc == 0 && o->chain) rc = link_chain(c, err, errlen);
    if (rc == 0) rc = open_locals(c, o, err, errlen);
    if (rc != 0) {
        ck_cluster_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

size_t ck_cluster_stages(ck_cluster *c, ck_stage *out, size_t cap) {
    size_t k = 0;
    if (c->o.chain && c->n && cap) {
        out[k++] = (ck_stage){c->r[0].tw->first, c->r[c->n - 1].tw->last, chain_forward, chain_truncate, c};
        for (size_t i = 0; i < c->n_local && k < cap; i++)
            out[k++] = ck_session_stage(c->local_s[i], c->local_first[i], c->local_last[i]);
        return k;
    }
    for (size_t i = 0; i < c->n && k < cap; i++)
        out[k++] = (ck_stage){c->r[i].tw->first, c->r[i].tw->last, stage_forward, stage_truncate, &c->r[i]};
    for (size_t i = 0; i < c->n_local && k < cap; i++)
        out[k++] = ck_session_stage(c->local_s[i], c->local_first[i], c->local_last[i]);
    return k;
}

size_t ck_cluster_stats(ck_cluster *c, ck_worker_stats *out, size_t cap) {
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n && k < cap; i++) out[k++] = c->r[i].pub;
    pthread_mutex_unlock(&c->mu);
    return k;
}

void ck_cluster_close(ck_cluster *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        remote *r = &c->r[i];
        if (r->c) {
            char ignored[128];
            ck_msg bye = {.type = CK_MSG_GOODBYE};
            ck_msg_send(r->c, &r->out, &bye, 1000, ignored, sizeof ignored);
            ck_conn_close(r->c);
        }
        ck_msgbuf_free(&r->out);
        ck_push_plan_free(r->plan);
        free(r->packed);
        free(r->sent);
        free(r->calls);
    }
    for (size_t i = 0; i < c->n_local; i++) {
        ck_session_close(c->local_s[i]);
        ck_engine_close(c->local_e[i]);
    }
    for (size_t i = 0; i < c->n_workers; i++) {
        free(c->workers[i].name);
        free(c->workers[i].host);
    }
    free(c->workers);
    free(c->model_dir);
    free(c->r);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
