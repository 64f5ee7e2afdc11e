/* local.c — the chat backend that runs the engine in this process, through include/cake.h only: each turn
 * renders the whole conversation with the model's chat template and calls the library's generation loop
 * (ck_generate) in one session kept across turns, so the prefix the session already holds (every earlier
 * turn) is reused instead of recomputed. A model without a chat template cake renders continues the
 * conversation's text as one plain prompt.
 * Invariants: the session is reset after a failed generation (the library's rule); the engine is the
 * caller's and outlives the backend. */
#include "tui/tui.h"

#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct local {
    ck_engine *e;
    ck_session *s;
    ck_gen_params p;
    const ck_chat_io *io;  /* the turn in progress */
} local;

static int local_text(void *user, const char *text, size_t len) {
    local *l = user;
    return l->io->on_text(l->io->ui, text, len);
}

/* The conversation as token ids: the chat template, or the messages' texts back to back. */
static int prompt_ids(local *l, const ck_message *msgs, size_t n, int32_t **ids, size_t *n_ids, char *err,
                      size_t errlen) {
    if (ck_engine_chat(l->e) == CK_CHAT_RENDERED) return ck_engine_chat_ids(l->e, msgs, n, 1, ids, n_ids, err, errlen);
    return ck_engine_plain_ids(l->e, msgs, n, ids, n_ids, err, errlen);
}

static int local_turn(void *ctx, const ck_message *msgs, size_t n, const ck_chat_io *io, ck_chat_stats *st, char *err,
                      size_t errlen) {
    local *l = ctx;
    if (!l->s && ck_session_open(l->e, 0, &l->s, err, errlen) != 0) return -1;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (prompt_ids(l, msgs, n, &ids, &n_ids, err, errlen) != 0) return -1;
    ck_gen_params p = l->p;
    p.on_text = local_text, p.user = l, p.cancel = NULL;
    l->io = io;
    ck_gen_result r;
    int rc = ck_generate(l->s, ids, n_ids, &p, &r, err, errlen);
    free(ids);
    l->io = NULL;
    if (rc != 0) {
        ck_session_reset(l->s);
        return -1;
    }
    st->n_prompt = r.n_prompt, st->n_gen = (int64_t)r.n_gen;
    st->tok_s = r.n_gen > 1 && r.decode_s > 0 ? (double)(r.n_gen - 1) / r.decode_s : 0;
    st->stopped = r.finish == CK_FINISH_CANCEL;
    st->length = r.finish == CK_FINISH_LENGTH;
    return 0;
}

static void local_reset(void *ctx) {
    local *l = ctx;
    if (l->s) ck_session_reset(l->s);
}

static void local_close(void *ctx) {
    local *l = ctx;
    ck_session_close(l->s);
    free(l);
}

int ck_chat_local_open(ck_engine *e, const ck_gen_params *p, ck_chat_backend *out, char *err, size_t errlen) {
    if (!ck_engine_has_tokenizer(e)) return ck_err(err, errlen, "the model has no tokenizer.json");
    int64_t first, last;
    int embed, head;
    ck_engine_range(e, &first, &last, &embed, &head);
    if (!embed || !head || first != 0 || last + 1 != (int64_t)ck_engine_n_layers(e))
        return ck_err(err, errlen, "the chat needs an engine holding the whole model");
    if (ck_gen_params_check(p, err, errlen) != 0) return -1;
    local *l = calloc(1, sizeof *l);
    if (!l) return ck_err(err, errlen, "out of memory");
    l->e = e, l->p = *p;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s (local)", ck_engine_arch(e));
    out->token_pieces = 1;
    out->turn = local_turn, out->reset = local_reset, out->close = local_close, out->ctx = l;
    return 0;
}
