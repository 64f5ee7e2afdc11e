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
    if (!isfinite(p->temperature) || p->temperature < 0)
        return ck_err(err, errlen, "temperature must be a finite number >= 0 (got %g)", (double)p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1)) return ck_err(err, errlen, "top_p must be in (0, 1] (got %g)", (double)p->top_p);
    if (!isfinite(p->repeat_penalty) || !(p->repeat_penalty > 0))
        return ck_err(err, errlen, "repeat_penalty must be a finite number > 0 (got %g)", (double)p->repeat_penalty);
    if (p->top_k < 0 || p->repeat_last_n < 0) return ck_err(err, errlen, "top_k and repeat_last_n must be >= 0");
    for (size_t i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0]) return ck_err(err, errlen, "stop strings must not be empty");
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
    float *logits;         /* [vocab] */
    int32_t *hist;         /* [n_prompt + max new tokens] prompt and generated ids (repeat penalty) */
    ck_sampler smp;
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
    b->logits = malloc(V * sizeof *b->logits);
    b->hist = malloc((n_prompt + n_new + 1) * sizeof *b->hist);
    b->held = (held_text){malloc(max_stop + PIECE_BYTES + 1), 0, max_stop + PIECE_BYTES, p, 0};
    b->have_smp = b->logits && b->hist && b->held.buf && ck_sampler_init(&b->smp, &sp, V) == 0;
    if (!b->have_smp) return ck_err(err, errlen, "out of memory");
    if (s->e->tok) ck_tok_stream_init(&b->st, s->e->tok);
    return 0;
}

/* Runs the part of the prompt the session does not hold yet; the logits of its last token land in
 * b->logits. */
static int prefill(ck_session *s, const int32_t *prompt, size_t n_prompt, gen_buffers *b, ck_gen_result *r,
                   char *err, size_t errlen) {
    size_t keep = 0;
    while (keep < s->n_ids && keep < n_prompt && s->ids[keep] == prompt[keep]) keep++;
    if (keep == n_prompt) keep--; /* the last prompt token runs again: its logits are needed */
    if (keep < ck_session_pos(s) && ck_session_truncate(s, keep, err, errlen) != 0) return -1;
    if (ck_session_pos(s) > keep || s->seq.broken || s->pipe_broken) {
        ck_session_reset(s);
        if (s->pipe_broken) return ck_err(err, errlen, "cannot reset the session's stages");
    }
    r->n_reused = ck_session_pos(s);
    ck_timing t0 = ck_session_timing(s);
    double c0 = now_s();
    if (ck_session_forward(s, prompt + r->n_reused, n_prompt - r->n_reused, b->logits, 0, err, errlen) != 0) return -1;
    ck_timing t1 = ck_session_timing(s);
    r->prefill_s = now_s() - c0;
    r->prefill = (ck_timing){t1.embed_s - t0.embed_s, t1.layers_s - t0.layers_s, t1.head_s - t0.head_s,
                             t1.attn_s - t0.attn_s};
    return 0;
}

/* Samples, streams and feeds tokens until a stop condition; sets r->finish and r->n_gen. */
static int decode(ck_session *s, const ck_gen_params *p, gen_buffers *b, size_t n_hist, ck_gen_result *r, char *err,
                  size_t errlen) {
    char piece[PIECE_BYTES];
    r->finish = CK_FINISH_LENGTH;
    while (r->n_gen < p->max_tokens) {
        if (b->held.cancelled || (p->cancel && *p->cancel)) {
            r->finish = CK_FINISH_CANCEL;
            return 0;
        }
        int32_t id = ck_sampler_next(&b->smp, b->logits, b->hist, n_hist);
        if (ck_engine_is_eos(s->e, id)) {
            r->finish = CK_FINISH_STOP;
            return 0;
        }
        b->hist[n_hist++] = id;
        r->n_gen++;
        int k = s->e->tok ? ck_tok_stream_push(&b->st, id, piece, sizeof piece) : 0;
        if (k < 0) return ck_err(err, errlen, "cannot decode token %d", id);
        if (add_text(&b->held, piece, (size_t)k)) {
            r->finish = CK_FINISH_STOP;
            return 0;
        }
        if (r->n_gen == p->max_tokens || ck_session_pos(s) >= s->seq.max_ctx) break;
        if (ck_session_forward(s, &id, 1, b->logits, 0, err, errlen) != 0) return -1;
    }
    if (s->e->tok) { /* the end of the text: nothing more can complete a stop string */
        int k = ck_tok_stream_flush(&b->st, piece, sizeof piece);
        if (k > 0 && add_text(&b->held, piece, (size_t)k)) return 0;
    }
    emit(&b->held, b->held.n);
    if (b->held.cancelled) r->finish = CK_FINISH_CANCEL;
    return 0;
}

int ck_generate(ck_session *s, const int32_t *prompt, size_t n_prompt, const ck_gen_params *p, ck_gen_result *r,
                char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    r->n_prompt = n_prompt;
    if (ck_gen_params_check(p, err, errlen) != 0) return -1;
    if (n_prompt == 0) return ck_err(err, errlen, "the prompt is empty");
    if (n_prompt > s->seq.max_ctx)
        return ck_err(err, errlen, "the prompt has %zu tokens; the context holds %zu", n_prompt, s->seq.max_ctx);
    gen_buffers b = {0};
    int rc = gen_alloc(s, p, n_prompt, &b, err, errlen);
    if (rc == 0) rc = prefill(s, prompt, n_prompt, &b, r, err, errlen);
    if (rc == 0) {
        memcpy(b.hist, prompt, n_prompt * sizeof *prompt);
        double t0 = now_s();
        rc = decode(s, p, &b, n_prompt, r, err, errlen);
        r->decode_s = now_s() - t0;
    }
    gen_free(&b);
    return rc;
}
