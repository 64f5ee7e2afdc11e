/* generate.c — the generation loop every front end shares (cake run, the server, the chat, the cluster
 * master): prefix reuse, prefill, sampling, stop conditions (end-of-sequence ids, stop strings,
 * max_tokens, a full context, cancel), incremental UTF-8-safe text and timing.
 * Text flow: token -> the tokenizer's stream decoder (whole UTF-8 characters) -> a hold-back buffer that
 * keeps any tail which could still grow into a stop string -> on_text. Buffers are sized once per call;
 * nothing is allocated per token. */
#include "engine/engine_internal.h"

#include "base/err.h"
#include "sample/sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PIECE_BYTES 1024 /* the text of one token fits easily */

void ck_gen_params_default(ck_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->repeat_penalty = 1.1f;
    p->repeat_last_n = 128;
    p->seed = 299792458;
    p->max_tokens = 2048;
}

int ck_gen_params_check(const ck_gen_params *p, char *err, size_t errlen) {
    if (!p) return ck_err(err, errlen, "generation: NULL parameters");
    if (p->n_stop && !p->stop) return ck_err(err, errlen, "%zu stop strings but NULL stop", p->n_stop);
    if (!isfinite(p->temperature) || p->temperature < 0)
        return ck_err(err, errlen, "temperature must be a finite number >= 0 (got %g)", (double)p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1)) return ck_err(err, errlen, "top_p must be in (0, 1] (got %g)", (double)p->top_p);
    if (!isfinite(p->repeat_penalty) || !(p->repeat_penalty > 0))
        return ck_err(err, errlen, "repeat_penalty must be a finite number > 0 (got %g)", (double)p->repeat_penalty);
    if (p->top_k < 0 || p->repeat_last_n < 0) return ck_err(err, errlen, "top_k and repeat_last_n must be >= 0");
    for (size_t i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0]) return ck_err(err, errlen, "stop string %zu is %s", i, p->stop[i] ? "empty" : "NULL");
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Text not yet handed to on_text, held while it may be the start of a stop string. */
typedef struct held_text {
    char *buf;
    size_t n, cap;
    const ck_gen_params *p;
    int cancelled;
} held_text;

static void emit(held_text *h, size_t n) {
    if (n && h->p->on_text && !h->cancelled && h->p->on_text(h->p->user, h->buf, n) != 0) h->cancelled = 1;
    memmove(h->buf, h->buf + n, h->n - n);
    h->n -= n;
}

/* Length of the longest tail of buf[0..n) that is a proper prefix of a stop string. */
static size_t stop_prefix_tail(const ck_gen_params *p, const char *buf, size_t n) {
    size_t best = 0;
    for (size_t i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        for (size_t k = sl - 1 < n ? sl - 1 : n; k > best; k--)
            if (!memcmp(buf + n - k, p->stop[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* Appends text; emits what can no longer be part of a stop string. Returns 1 when a stop string
 * appeared (the text before it is emitted, the rest dropped). */
static int add_text(held_text *h, const char *text, size_t len) {
    memcpy(h->buf + h->n, text, len);
    h->n += len;
    size_t cut = h->n;
    for (size_t i = 0; i < h->p->n_stop; i++) {
        const char *hit = memmem(h->buf, h->n, h->p->stop[i], strlen(h->p->stop[i]));
        if (hit && (size_t)(hit - h->buf) < cut) cut = (size_t)(hit - h->buf);
    }
    if (cut < h->n) {
        h->n = cut;
        emit(h, cut);
        return 1;
    }
    emit(h, h->n - stop_prefix_tail(h->p, h->buf, h->n));
    return 0;
}

/* Generation scratch, sized once per call. */
typedef struct gen_buffers {
    int greedy;            /* the pick is the argmax of the logits (greedy, no penalty): the backend takes it */
    int32_t top;           /* that argmax, when greedy */
    float *logits;         /* [vocab], unless greedy */
    int32_t *hist;         /* [n_prompt + max new tokens] prompt and generated ids (repeat penalty) */
    ck_sampler smp;        /* unless greedy */
    int have_smp;
    ck_tok_stream st;
    held_text held;
} gen_buffers;

static void gen_free(gen_buffers *b) {
    free(b->logits);
    free(b->hist);
    if (b->have_smp) ck_sampler_free(&b->smp);
    ck_tok_stream_free(&b->st);
    free(b->held.buf);
}

static int gen_alloc(ck_session *s, const ck_gen_params *p, size_t n_prompt, gen_buffers *b, char *err, size_t errlen) {
    size_t V = ck_engine_vocab(s->e), room = s->seq.max_ctx - n_prompt, max_stop = 0;
    size_t n_new = p->max_tokens < room ? p->max_tokens : room;
    for (size_t i = 0; i < p->n_stop; i++)
        if (strlen(p->stop[i]) > max_stop) max_stop = strlen(p->stop[i]);
    ck_sample_params sp = {p->temperature, p->top_k, p->top_p, p->repeat_penalty, p->repeat_last_n, p->seed};
    b->greedy = p->temperature <= 0 && (p->repeat_penalty == 1 || p->repeat_last_n == 0);
    b->hist = malloc((n_prompt + n_new + 1) * sizeof *b->hist);
    b->held = (held_text){malloc(max_stop + PIECE_BYTES + 1), 0, max_stop + PIECE_BYTES, p, 0};
    /* p stays valid: it is the generation's own copy */
    if (!b->hist || !b->held.buf) return ck_err(err, errlen, "out of memory");
    if (!b->greedy) { /* the logits and the sampler's scratch, three vocabulary-sized arrays */
        b->logits = malloc(V * sizeof *b->logits);
        b->have_smp = b->logits && ck_sampler_init(&b->smp, &sp, V) == 0;
        if (!b->have_smp) return ck_err(err, errlen, "out of memory");
    }
    if (s->e->tok) ck_tok_stream_init(&b->st, s->e->tok);
    return 0;
}

/* Keeps the longest prefix of the prompt the session holds (at least the last prompt token must run: its
 * logits are needed) and drops the rest; r->n_reused gets how much is kept. */
static int reuse_prefix(ck_session *s, const int32_t *prompt, size_t n_prompt, ck_gen_result *r, char *err,
                        size_t errlen) {
    size_t keep = 0;
    while (keep < s->n_ids && keep < n_prompt && s->ids[keep] == prompt[keep]) keep++;
    if (keep == n_prompt) keep--;
    if (keep < ck_session_pos(s) && ck_session_truncate(s, keep, err, errlen) != 0) return -1;
    if (ck_session_pos(s) > keep || s->seq.broken || s->pipe_broken) {
        ck_session_reset(s);
        if (s->pipe_broken) return ck_err(err, errlen, "cannot reset the session's stages: %s", s->reset_why);
    }
    r->n_reused = ck_session_pos(s);
    return 0;
}

/* What a feed whose last token is sampled next gets besides the logits (b->logits, NULL when greedy):
 * their argmax, when greedy. */
static int32_t *want_top(gen_buffers *b) { return b->greedy ? &b->top : NULL; }

/* Runs the part of the prompt the session does not hold yet; the logits of its last token land in
 * b->logits (their argmax in b->top when greedy). */
static int prefill(ck_session *s, const int32_t *prompt, size_t n_prompt, gen_buffers *b, ck_gen_result *r,
                   char *err, size_t errlen) {
    ck_timing t0 = ck_session_timing(s);
    double c0 = now_s();
    const int32_t *ids = prompt + r->n_reused;
    size_t n = n_prompt - r->n_reused;
    if ((b->greedy ? ck_session_forward_top(s, ids, n, &b->top, err, errlen)
                   : ck_session_forward(s, ids, n, b->logits, 0, err, errlen)) != 0)
        return -1;
    ck_timing t1 = ck_session_timing(s);
    r->prefill_s = now_s() - c0;
    r->prefill = (ck_timing){t1.embed_s - t0.embed_s, t1.layers_s - t0.layers_s, t1.head_s - t0.head_s,
                             t1.attn_s - t0.attn_s};
    return 0;
}

/* One generation in flight (ck_gen_start .. ck_gen_free). */
struct ck_gen {
    ck_session *s;
    ck_gen_params p;
    gen_buffers b;
    ck_gen_result r;
    size_t n_hist;         /* ids in b.hist */
    int32_t next;          /* the token to feed when `feed` */
    int feed, done, failed;
    size_t pending;        /* prompt tokens still to run (ck_gen_queue: in the steps) */
    double t0;             /* decoding started (prefill started, while pending) */
    char err[256];
};

/* The end of the text: nothing more can complete a stop string, so what is held goes out. */
static void finish_text(ck_gen *g) {
    char piece[PIECE_BYTES];
    if (g->s->e->tok) {
        int k = ck_tok_stream_flush(&g->b.st, piece, sizeof piece);
        if (k > 0 && add_text(&g->b.held, piece, (size_t)k)) return;
    }
    emit(&g->b.held, g->b.held.n);
    if (g->b.held.cancelled) g->r.finish = CK_FINISH_CANCEL;
}

static void finish(ck_gen *g, int flush) {
    if (flush) finish_text(g);
    g->done = 1;
    g->feed = 0;
    g->r.decode_s = now_s() - g->t0;
}

static void fail(ck_gen *g, const char *why) {
    snprintf(g->err, sizeof g->err, "%.255s", why);
    g->failed = 1;
    finish(g, 0);
}

/* Samples the next token from the logits at hand, streams its text and checks the stop conditions;
 * sets g->feed when the token must run through the model before the next one. */
static void advance(ck_gen *g) {
    char piece[PIECE_BYTES];
    const ck_gen_params *p = &g->p;
    if (g->b.held.cancelled || (p->cancel && *p->cancel)) {
        g->r.finish = CK_FINISH_CANCEL;
        return finish(g, 0);
    }
    if (g->r.n_gen >= p->max_tokens) return finish(g, 1);
    int32_t id = g->b.greedy ? g->b.top : ck_sampler_next(&g->b.smp, g->b.logits, g->b.hist, g->n_hist);
    if (ck_engine_is_eos(g->s->e, id)) { /* no stop string can complete now: the held text goes out */
        g->r.finish = CK_FINISH_STOP;
        return finish(g, 1);
    }
    g->b.hist[g->n_hist++] = id;
    g->r.n_gen++;
    int k = g->s->e->tok ? ck_tok_stream_push(&g->b.st, id, piece, sizeof piece) : 0;
    if (k < 0) {
        char why[64];
        snprintf(why, sizeof why, "cannot decode token %d", id);
        return fail(g, why);
    }
    if (add_text(&g->b.held, piece, (size_t)k)) {
        g->r.finish = CK_FINISH_STOP;
        return finish(g, 0);
    }
    if (g->r.n_gen == p->max_tokens || ck_session_pos(g->s) >= g->s->seq.max_ctx) return finish(g, 1);
    g->next = id;
    g->feed = 1;
}

/* A generation with its buffers, the prompt in its history and the session's prefix reused. */
static int gen_new(ck_session *s, const int32_t *prompt, size_t n_prompt, const ck_gen_params *p, ck_gen **out,
                   char *err, size_t errlen) {
    *out = NULL;
    if (ck_gen_params_check(p, err, errlen) != 0) return -1;
    if (n_prompt == 0) return ck_err(err, errlen, "the prompt is empty");
    if (n_prompt > s->seq.max_ctx)
        return ck_err(err, errlen, "the prompt has %zu tokens; the context holds %zu", n_prompt, s->seq.max_ctx);
    ck_gen *g = calloc(1, sizeof *g);
    if (!g) return ck_err(err, errlen, "out of memory");
    g->s = s;
    g->p = *p;
    g->r.n_prompt = n_prompt;
    g->r.finish = CK_FINISH_LENGTH;
    if (gen_alloc(s, &g->p, n_prompt, &g->b, err, errlen) != 0 || reuse_prefix(s, prompt, n_prompt, &g->r, err, errlen)) {
        ck_gen_free(g);
        return -1;
    }
    memcpy(g->b.hist, prompt, n_prompt * sizeof *prompt);
    g->n_hist = n_prompt;
    g->pending = n_prompt - g->r.n_reused;
    g->t0 = now_s();
    *out = g;
    return 0;
}

int ck_gen_start(ck_session *s, const int32_t *prompt, size_t n_prompt, const ck_gen_params *p, ck_gen **out,
                 char *err, size_t errlen) {
    if (gen_new(s, prompt, n_prompt, p, out, err, errlen) != 0) return -1;
    ck_gen *g = *out;
    if (prefill(s, prompt, n_prompt, &g->b, &g->r, err, errlen) != 0) {
        ck_gen_free(g);
        *out = NULL;
        return -1;
    }
    g->pending = 0;
    g->t0 = now_s();
    return 0;
}

int ck_gen_queue(ck_session *s, const int32_t *prompt, size_t n_prompt, const ck_gen_params *p, ck_gen **out,
                 char *err, size_t errlen) {
    return gen_new(s, prompt, n_prompt, p, out, err, errlen);
}

/* Feeds of one step for gens[0..n): a token of every decoding generation, then prompt chunks of the
 * prefilling ones within the step's row budget. Returns how many feeds; fed[i] is feed i's generation. */
static size_t plan(ck_gen *const *gens, size_t n, ck_feed *f, ck_gen **fed) {
    size_t k = 0, rows = 0;
    for (size_t i = 0; i < n; i++) {
        ck_gen *g = gens[i];
        if (g->done || g->pending) continue;
        advance(g);
        if (!g->feed) continue;
        f[k] = (ck_feed){g->s, &g->next, 1, g->b.logits, want_top(&g->b)};
        fed[k++] = g, rows++;
    }
    size_t budget = rows < CK_CHUNK / 2 ? CK_CHUNK - rows : CK_CHUNK / 2; /* prefill never starves decode */
    for (size_t i = 0; i < n && budget; i++) {
        ck_gen *g = gens[i];
        if (g->done || !g->pending) continue;
        size_t take = g->pending < budget ? g->pending : budget;
        int last = take == g->pending;
        f[k] = (ck_feed){g->s, g->b.hist + g->r.n_prompt - g->pending, take, last ? g->b.logits : NULL,
                         last ? want_top(&g->b) : NULL};
        fed[k++] = g;
        budget -= take;
    }
    return k;
}

int ck_gen_step(ck_gen *const *gens, size_t n) {
    enum { GROUP = 64 };
    for (size_t i0 = 0; i0 < n; i0 += GROUP) {
        ck_feed f[2 * GROUP];
        ck_gen *fed[2 * GROUP];
        size_t k = plan(gens + i0, n - i0 < GROUP ? n - i0 : GROUP, f, fed);
        char err[256];
        if (k && ck_session_batch(f, k, err, sizeof err) != 0)
            for (size_t j = 0; j < k; j++) fail(fed[j], err);
        for (size_t j = 0; j < k; j++) {
            ck_gen *g = fed[j];
            g->feed = 0;
            if (g->done || !g->pending) continue;
            g->pending -= f[j].n;
            if (g->pending == 0) { /* the prompt has run: decoding starts */
                g->r.prefill_s = now_s() - g->t0;
                g->t0 = now_s();
            }
        }
    }
    size_t running = 0;
    for (size_t i = 0; i < n; i++) running += !gens[i]->done;
    return (int)running;
}

int ck_gen_done(const ck_gen *g) { return g->done; }

const ck_gen_result *ck_gen_result_get(const ck_gen *g) { return &g->r; }

const char *ck_gen_error(const ck_gen *g) { return g->failed ? g->err : NULL; }

void ck_gen_free(ck_gen *g) {
    if (!g) return;
    gen_free(&g->b);
    free(g);
}

int ck_generate(ck_session *s, const int32_t *prompt, size_t n_prompt, const ck_gen_params *p, ck_gen_result *r,
                char *err, size_t errlen) {
    if (!r) return ck_err(err, errlen, "generation: NULL result");
    memset(r, 0, sizeof *r);
    r->n_prompt = n_prompt;
    ck_gen *g;
    if (ck_gen_start(s, prompt, n_prompt, p, &g, err, errlen) != 0) return -1;
    while (ck_gen_step(&g, 1) > 0) {}
    *r = g->r;
    int rc = g->failed ? ck_err(err, errlen, "%s", g->err) : 0;
    ck_gen_free(g);
    return rc;
}
