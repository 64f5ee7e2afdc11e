/* tok_encode.c — text -> ids, following HF `tokenizers` encode step by step:
 *   1. added tokens with normalized=false are cut out of the raw text (leftmost-longest, with single_word,
 *      lstrip and rstrip as HF's AddedVocabulary applies them) and map straight to their ids;
 *   2. each remaining segment is normalized (NFC/NFKC/NFD/NFKD via utf8proc, Replace, Prepend), then
 *      added tokens with normalized=true are cut out of the normalized text the same way;
 *   3. each remaining piece is pre-tokenized (Split by a PCRE2 regex or literal with HF's delimiter
 *      behaviours; ByteLevel with optional prefix space and GPT-2 regex);
 *   4. each pre-token goes through the BPE model (tok_bpe.c);
 *   5. add_special wraps the ids with the TemplateProcessing special tokens.
 * Invariants: input must be valid UTF-8 (HF takes a Rust &str); pieces are (offset, length) pairs into
 * one work buffer that only grows during a call, so offsets stay valid across reallocations; PCRE2
 * match data is per call, keeping ck_tok read-only and shareable. */
#include "base/err.h"
#include "base/grow.h"
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

typedef struct piece {
    size_t off, len;
} piece;

typedef struct pieces {
    piece *p;
    size_t len, cap;
} pieces;

static int pieces_push(pieces *v, size_t off, size_t len) {
    if (len == 0) return 0; /* HF drops empty splits */
    piece *p = ck_grow(v->p, &v->cap, v->len + 1, sizeof *p, 32);
    if (!p) return -1;
    v->p = p;
    v->p[v->len++] = (piece){off, len};
    return 0;
}

/* ---- normalizer ---- */

static int replace_all(ck_tok_buf *out, const char *s, size_t n, const char *pat, size_t pl, const char *rep,
                       size_t rl) {
    size_t i = 0;
    while (i < n) {
        const char *hit = pl <= n - i ? memmem(s + i, n - i, pat, pl) : NULL;
        if (!hit) break;
        size_t at = (size_t)(hit - s);
        if (ck_tok_buf_put(out, s + i, at - i) != 0 || ck_tok_buf_put(out, rep, rl) != 0) return -1;
        i = at + pl;
    }
    return ck_tok_buf_put(out, s + i, n - i);
}

int ck_tok_normalize(const ck_tok *t, const char *s, size_t n, ck_tok_buf *out, char *err, size_t errlen) {
    ck_tok_buf tmp = {0};
    out->len = 0;
    if (ck_tok_buf_put(out, s, n) != 0) return ck_err(err, errlen, "tokenizer: out of memory");
    for (size_t k = 0; k < t->n_norm; k++) {
        const ck_tok_norm *nm = &t->norm[k];
        tmp.len = 0;
        int rc = 0;
        switch (nm->kind) {
        case CK_NORM_NFC: case CK_NORM_NFKC: case CK_NORM_NFD: case CK_NORM_NFKD: {
            if (out->len == 0) continue;
            utf8proc_option_t opt = UTF8PROC_STABLE;
            opt |= (nm->kind == CK_NORM_NFC || nm->kind == CK_NORM_NFKC) ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE;
            if (nm->kind == CK_NORM_NFKC || nm->kind == CK_NORM_NFKD) opt |= UTF8PROC_COMPAT;
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)out->p, (utf8proc_ssize_t)out->len, &dst, opt);
            if (r < 0) {
                free(tmp.p);
                return ck_err(err, errlen, "tokenizer: normalization failed: %s", utf8proc_errmsg(r));
            }
            rc = ck_tok_buf_put(&tmp, dst, (size_t)r);
            free(dst);
            break;
        }
        case CK_NORM_REPLACE:
            rc = replace_all(&tmp, out->p, out->len, t->arena + nm->pat_off, nm->pat_len, t->arena + nm->str_off,
                             nm->str_len);
            break;
        case CK_NORM_PREPEND:
            if (out->len == 0) continue;
            rc = ck_tok_buf_put(&tmp, t->arena + nm->str_off, nm->str_len);
            if (!rc) rc = ck_tok_buf_put(&tmp, out->p, out->len);
            break;
        }
        if (rc != 0) {
            free(tmp.p);
            return ck_err(err, errlen, "tokenizer: out of memory");
        }
        ck_tok_buf swap = *out;
        *out = tmp;
        tmp = swap;
    }
    free(tmp.p);
    return 0;
}

/* ---- added tokens ---- */

static int is_word_cp(uint32_t cp) {
    if (cp == '_') return 1;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* Code point of the character ending at s[end) (s valid UTF-8), with its start in *start. */
static uint32_t cp_before(const uint8_t *s, size_t end, size_t *start) {
    size_t i = end - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    *start = i;
    int k = ck_tok_utf8_next(s + i, end - i);
    return ck_tok_utf8_cp(s + i, k > 0 ? k : 1);
}

static uint32_t cp_at(const uint8_t *s, size_t n, size_t i, int *k) {
    *k = ck_tok_utf8_next(s + i, n - i);
    if (*k <= 0) *k = 1;
    return ck_tok_utf8_cp(s + i, *k);
}

typedef struct split_cb {
    /* called for a text gap s[off..off+len) and for an added token id */
    int (*text)(void *ctx, const char *s, size_t n);
    int (*token)(void *ctx, int32_t id);
    void *ctx;
} split_cb;

static int split_added(const ck_tok *t, const ck_tok_trie *tr, const char *text, size_t n, const split_cb *cb) {
    const uint8_t *s = (const uint8_t *)text;
    size_t last = 0; /* end of the previous cut */
    size_t i = 0;
    if (tr->edges.n == 0) return cb->text(cb->ctx, text, n);
    while (i < n) {
        size_t mlen = 0;
        int32_t ai = ck_tok_trie_longest(tr, s + i, n - i, &mlen);
        if (ai < 0) {
            i++;
            continue;
        }
        const ck_tok_added *a = &t->added[ai];
        size_t start = i, stop = i + mlen;
        if (a->single_word) {
            size_t ps;
            int k;
            int ok_l = start == 0 || !is_word_cp(cp_before(s, start, &ps));
            int ok_r = stop == n || !is_word_cp(cp_at(s, n, stop, &k));
            if (!ok_l || !ok_r) {
                i = stop;
                continue;
            }
        }
        if (a->lstrip) {
            while (start > last) {
                size_t ps;
                if (!ck_tok_is_space(cp_before(s, start, &ps))) break;
                start = ps;
            }
        }
        if (a->rstrip) {
            while (stop < n) {
                int k;
                if (!ck_tok_is_space(cp_at(s, n, stop, &k))) break;
                stop += (size_t)k;
            }
        }
        if (start > last && cb->text(cb->ctx, text + last, start - last) != 0) return -1;
        if (cb->token(cb->ctx, a->id) != 0) return -1;
        last = i = stop;
    }
    if (last < n) return cb->text(cb->ctx, text + last, n - last);
    return 0;
}

/* ---- pre-tokenizer + model ---- */

typedef struct enc_ctx {
    const ck_tok *t;
    ck_tok_ids *ids;
    ck_tok_bpe_scratch bpe;
    ck_tok_buf work;      /* pre-token bytes */
    pieces a, b;          /* pre-token lists, swapped per step */
    pcre2_match_data *md;
    char *err;
    size_t errlen;
} enc_ctx;

/* One segment [s,e) of piece pc (is_match already inverted when asked) through the behaviour. */
static int emit_seg(enc_ctx *c, piece pc, pieces *out, size_t first_out, int behavior, size_t s, size_t e,
                    int is_match, int *prev_match, int *pending_next, size_t *pending_start) {
    (void)c;
    int rc = 0;
    int can_extend = out->len > first_out;
    switch (behavior) {
    case CK_SPLIT_REMOVED:
        if (!is_match) rc = pieces_push(out, pc.off + s, e - s);
        break;
    case CK_SPLIT_ISOLATED:
        rc = pieces_push(out, pc.off + s, e - s);
        break;
    case CK_SPLIT_MERGED_PREV:
        if (is_match && !*prev_match && can_extend)
            out->p[out->len - 1].len = pc.off + e - out->p[out->len - 1].off;
        else
            rc = pieces_push(out, pc.off + s, e - s);
        break;
    case CK_SPLIT_CONTIGUOUS:
        if (is_match == *prev_match && can_extend)
            out->p[out->len - 1].len = pc.off + e - out->p[out->len - 1].off;
        else
            rc = pieces_push(out, pc.off + s, e - s);
        break;
    case CK_SPLIT_MERGED_NEXT:
        /* a match joins the following non-match; consecutive matches stay separate (HF's fold over the
         * reversed list merges a match into the next piece only when that piece is not a match) */
        if (*pending_next) {
            if (!is_match) {
                rc = pieces_push(out, pc.off + *pending_start, e - *pending_start);
                *pending_next = 0;
                break;
            }
            rc = pieces_push(out, pc.off + *pending_start, s - *pending_start);
            *pending_next = 0;
        }
        if (rc == 0) {
            if (is_match) {
                *pending_next = 1;
                *pending_start = s;
            } else {
                rc = pieces_push(out, pc.off + s, e - s);
            }
        }
        break;
    }
    *prev_match = is_match;
    return rc;
}

/* Splits piece (off,len) of the work buffer by regex re with HF delimiter behaviour into out. */
static int split_piece(enc_ctx *c, const ck_tok_pre *st, piece pc, pieces *out) {
    /* segments: alternating gaps and matches, as (start, end, is_match), flushed through a small state
     * machine implementing Removed / Isolated / MergedWithPrevious / MergedWithNext / Contiguous */
    size_t first_out = out->len;
    int prev_match = 0;
    size_t pos = 0, prev = 0;
    int behavior = st->behavior;
    /* MergedWithNext is computed right-to-left by HF; left-to-right with a pending match is equivalent */
    int pending_next = 0;
    size_t pending_start = 0;

#define EMIT(S, E, M)                                                                                   \
    do {                                                                                                \
        size_t s_ = (S), e_ = (E);                                                                     \
        int m_ = (M) ^ st->invert;                                                                      \
        if (e_ > s_ && emit_seg(c, pc, out, first_out, behavior, s_, e_, m_, &prev_match, &pending_next, \
                                &pending_start) != 0)                                                   \
            return -1;                                                                                  \
    } while (0)

    const uint8_t *subj = (const uint8_t *)c->work.p + pc.off;
    while (pos <= pc.len) {
        int rc = pcre2_match(st->re, subj, pc.len, pos, PCRE2_NO_UTF_CHECK, c->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return ck_err(c->err, c->errlen, "tokenizer: regex match failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > prev) EMIT(prev, ms, 0);
        if (me > ms) {
            EMIT(ms, me, 1);
            prev = pos = me;
        } else { /* empty match: split there and step over one character */
            prev = ms;
            if (ms >= pc.len) break;
            int k = ck_tok_utf8_next(subj + ms, pc.len - ms);
            pos = ms + (size_t)(k > 0 ? k : 1);
        }
    }
    if (prev < pc.len) EMIT(prev, pc.len, 0);
#undef EMIT
    if (pending_next) return pieces_push(out, pc.off + pending_start, pc.len - pending_start);
    return 0;
}

static int pretokenize_and_bpe(enc_ctx *c, const char *s, size_t n) {
    const ck_tok *t = c->t;
    c->work.len = 0;
    c->a.len = 0;
    if (ck_tok_buf_put(&c->work, s, n) != 0 || pieces_push(&c->a, 0, n) != 0)
        return ck_err(c->err, c->errlen, "tokenizer: out of memory");
    for (size_t k = 0; k < t->n_pre; k++) {
        const ck_tok_pre *st = &t->pre[k];
        c->b.len = 0;
        for (size_t i = 0; i < c->a.len; i++) {
            piece pc = c->a.p[i];
            if (st->kind == CK_PRE_BYTELEVEL && st->add_prefix_space && c->work.p[pc.off] != ' ') {
                size_t off = c->work.len;
                if (ck_tok_buf_putc(&c->work, ' ') != 0 || ck_tok_buf_put(&c->work, c->work.p + pc.off, pc.len) != 0)
                    return ck_err(c->err, c->errlen, "tokenizer: out of memory");
                pc = (piece){off, pc.len + 1};
            }
            if (st->re) {
                if (split_piece(c, st, pc, &c->b) != 0) return -1;
            } else if (pieces_push(&c->b, pc.off, pc.len) != 0) {
                return ck_err(c->err, c->errlen, "tokenizer: out of memory");
            }
        }
        pieces sw = c->a;
        c->a = c->b;
        c->b = sw;
    }
    for (size_t i = 0; i < c->a.len; i++)
        if (ck_tok_bpe(t, (const uint8_t *)c->work.p + c->a.p[i].off, c->a.p[i].len, &c->bpe, c->ids) != 0)
            return ck_err(c->err, c->errlen, "tokenizer: BPE failed (pre-token too long or out of memory)");
    return 0;
}

static int on_token(void *ctx, int32_t id) {
    enc_ctx *c = ctx;
    return ck_tok_ids_push(c->ids, id) != 0 ? ck_err(c->err, c->errlen, "tokenizer: out of memory") : 0;
}

static int on_norm_text(void *ctx, const char *s, size_t n) { return pretokenize_and_bpe(ctx, s, n); }

static int on_raw_text(void *ctx, const char *s, size_t n) {
    enc_ctx *c = ctx;
    ck_tok_buf nb = {0}; /* one buffer per raw segment (segments are separated by added tokens) */
    if (ck_tok_normalize(c->t, s, n, &nb, c->err, c->errlen) != 0) {
        free(nb.p);
        return -1;
    }
    split_cb cb = {on_norm_text, on_token, c};
    int rc = nb.len ? split_added(c->t, &c->t->trie_norm, nb.p, nb.len, &cb) : 0;
    free(nb.p);
    return rc;
}

int ck_tok_encode(const ck_tok *t, const char *text, size_t len, int add_special, int32_t **ids, size_t *n_ids,
                  char *err, size_t errlen) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return ck_err(err, errlen, "tokenizer: NULL text");
    if (len && !ck_tok_utf8_valid((const uint8_t *)text, len))
        return ck_err(err, errlen, "tokenizer: input is not valid UTF-8");
    ck_tok_ids out = {0};
    enc_ctx c = {0};
    c.t = t;
    c.ids = &out;
    c.err = err;
    c.errlen = errlen;
    int rc = -1;
    c.md = pcre2_match_data_create(4, NULL);
    if (!c.md) {
        ck_err(err, errlen, "tokenizer: out of memory");
        goto done;
    }
    if (add_special)
        for (size_t i = 0; i < t->n_post_pre; i++)
            if (ck_tok_ids_push(&out, t->post_pre[i]) != 0) goto oom;
    split_cb cb = {on_raw_text, on_token, &c};
    if (len && split_added(t, &t->trie_raw, text, len, &cb) != 0) goto done;
    if (add_special)
        for (size_t i = 0; i < t->n_post_post; i++)
            if (ck_tok_ids_push(&out, t->post_post[i]) != 0) goto oom;
    rc = 0;
    goto done;
oom:
    ck_err(err, errlen, "tokenizer: out of memory");
done:
    pcre2_match_data_free(c.md);
    ck_tok_bpe_scratch_free(&c.bpe);
    free(c.work.p);
    free(c.a.p);
    free(c.b.p);
    if (rc != 0) {
        free(out.p);
        return -1;
    }
    if (!out.p) out.p = malloc(sizeof(int32_t)); /* a valid pointer even for zero ids */
    if (!out.p) return ck_err(err, errlen, "tokenizer: out of memory");
    *ids = out.p;
    *n_ids = out.len;
    return 0;
}
