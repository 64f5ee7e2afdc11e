/* tok_decode.c — ids -> text as HF `tokenizers` decode: ids become token strings (added tokens first, as
 * id_to_token does; special ones dropped on request), then the decoder chain runs over the list of
 * strings: ByteLevel (GPT-2 characters back to bytes, fused, lossy UTF-8), Replace, ByteFallback
 * (<0xNN> runs to bytes, U+FFFD per byte when a run is not valid UTF-8), Fuse, Strip, Metaspace.
 * Without a decoder tokens are joined with " ". Streaming decode runs the same chain on one id at a time
 * in "raw" mode (byte tokens stay raw bytes) and holds back an incomplete UTF-8 character between calls.
 * Invariants: output of ck_tok_decode is valid UTF-8; a stream never emits part of a character; a stream
 * differs from a whole decode only on invalid byte sequences (a broken <0xNN> run yields U+FFFD for the
 * broken character only, not for every byte of the run) and for a trailing Strip after Fuse. */
#include "base/err.h"
#include "base/grow.h"
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct toks {
    ck_tok_buf data;
    size_t *off, *len;
    size_t n, cap;
} toks;

static int toks_add(toks *l, const void *s, size_t n) {
    if (l->n == l->cap) { /* off and len share one capacity */
        size_t cap_off = l->cap, cap_len = l->cap;
        size_t *o = ck_grow(l->off, &cap_off, l->n + 1, sizeof *o, 16);
        if (!o) return -1;
        l->off = o;
        size_t *q = ck_grow(l->len, &cap_len, l->n + 1, sizeof *q, 16);
        if (!q) return -1;
        l->len = q;
        l->cap = cap_off < cap_len ? cap_off : cap_len;
    }
    l->off[l->n] = l->data.len;
    l->len[l->n] = n;
    if (ck_tok_buf_put(&l->data, s, n) != 0) return -1;
    l->n++;
    return 0;
}

/* Appends s[0..n) to the last token (creating one when the list is empty). */
static int toks_append(toks *l, const void *s, size_t n) {
    if (l->n == 0) return toks_add(l, s, n);
    if (ck_tok_buf_put(&l->data, s, n) != 0) return -1;
    l->len[l->n - 1] += n;
    return 0;
}

/* Buffers reused across decodes: a stream keeps one, so decoding a token allocates nothing once they
 * have grown to size. Lists and buffers are cleared (length 0), never freed, between uses. */
struct ck_tok_scratch {
    toks a, b;             /* token strings before/after a decoder step */
    ck_tok_buf tmp, tmp2;  /* a step's byte runs and lossy text */
    ck_tok_buf raw, txt;   /* joined bytes; streaming: complete characters */
};

static void toks_clear(toks *l) {
    l->n = 0;
    l->data.len = 0;
}

static void toks_free(toks *l) {
    free(l->data.p);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof *l);
}

static const char *tok_s(const toks *l, size_t i) { return l->data.p + l->off[i]; }

static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Runs one decoder step from `in` into `out` (cleared). stream: keep bytes raw; cont: not the first
 * token of the stream; *fused: a previous step produced a single string. */
static int dec_step(const ck_tok *t, const ck_tok_dec *d, const toks *in, toks *out, int stream, int cont,
                    int *fused, struct ck_tok_scratch *sc) {
    switch (d->kind) {
    case CK_DEC_BYTELEVEL: {
        ck_tok_buf bytes = sc->tmp;
        bytes.len = 0;
        int rc = 0;
        for (size_t i = 0; i < in->n && !rc; i++) {
            const uint8_t *s = (const uint8_t *)tok_s(in, i);
            size_t n = in->len[i], mark = bytes.len, j = 0;
            int ok = 1;
            while (j < n && ok && !rc) {
                int k = ck_tok_utf8_next(s + j, n - j);
                int b = k > 0 ? ck_tok_cp_to_byte(ck_tok_utf8_cp(s + j, k)) : -1;
                if (b < 0) {
                    ok = 0;
                    break;
                }
                uint8_t c = (uint8_t)b;
                rc = ck_tok_buf_put(&bytes, &c, 1);
                j += (size_t)k;
            }
            if (!ok && !rc) { /* a character outside the alphabet: the token's own bytes */
                bytes.len = mark;
                rc = ck_tok_buf_put(&bytes, s, n);
            }
        }
        if (!rc) {
            if (stream) {
                rc = toks_add(out, bytes.p ? bytes.p : "", bytes.len);
            } else {
                ck_tok_buf txt = sc->tmp2;
                txt.len = 0;
                rc = ck_tok_utf8_lossy(&txt, (const uint8_t *)bytes.p, bytes.len);
                if (!rc) rc = toks_add(out, txt.p ? txt.p : "", txt.len);
                sc->tmp2 = txt;
            }
        }
        sc->tmp = bytes;
        *fused = 1;
        return rc;
    }
    case CK_DEC_REPLACE: {
        const char *pat = t->arena + d->pat_off, *rep = t->arena + d->str_off;
        for (size_t i = 0; i < in->n; i++) {
            const char *s = tok_s(in, i);
            size_t n = in->len[i], j = 0;
            if (toks_add(out, "", 0) != 0) return -1;
            while (j < n) {
                const char *hit = d->pat_len <= n - j ? memmem(s + j, n - j, pat, d->pat_len) : NULL;
                size_t at = hit ? (size_t)(hit - s) : n;
                if (toks_append(out, s + j, at - j) != 0) return -1;
                if (!hit) break;
                if (toks_append(out, rep, d->str_len) != 0) return -1;
                j = at + d->pat_len;
            }
        }
        return 0;
    }
    case CK_DEC_BYTEFALLBACK: {
        ck_tok_buf run = sc->tmp;
        run.len = 0;
        int rc = 0;
        for (size_t i = 0; i <= in->n && !rc; i++) {
            int b = i < in->n ? byte_token(tok_s(in, i), in->len[i]) : -1;
            if (b >= 0) {
                uint8_t c = (uint8_t)b;
                if (stream)
                    rc = toks_add(out, &c, 1);
                else
                    rc = ck_tok_buf_put(&run, &c, 1);
                continue;
            }
            if (run.len) {
                if (ck_tok_utf8_valid((const uint8_t *)run.p, run.len)) {
                    rc = toks_add(out, run.p, run.len);
                } else {
                    for (size_t k = 0; k < run.len && !rc; k++) rc = toks_add(out, "\xEF\xBF\xBD", 3);
                }
                run.len = 0;
            }
            if (i < in->n && !rc) rc = toks_add(out, tok_s(in, i), in->len[i]);
        }
        sc->tmp = run;
        return rc;
    }
    case CK_DEC_FUSE:
        if (toks_add(out, "", 0) != 0) return -1;
        for (size_t i = 0; i < in->n; i++)
            if (toks_append(out, tok_s(in, i), in->len[i]) != 0) return -1;
        *fused = 1;
        return 0;
    case CK_DEC_STRIP: {
        const char *c = t->arena + d->pat_off;
        size_t cl = d->pat_len;
        for (size_t i = 0; i < in->n; i++) {
            const char *s = tok_s(in, i);
            size_t a = 0, z = in->len[i];
            int skip_start = stream && cont && *fused;
            int skip_stop = stream && *fused;
            for (size_t k = 0; !skip_start && k < d->start && cl && z - a >= cl && !memcmp(s + a, c, cl); k++) a += cl;
            for (size_t k = 0; !skip_stop && k < d->stop && cl && z - a >= cl && !memcmp(s + z - cl, c, cl); k++) z -= cl;
            if (toks_add(out, s + a, z - a) != 0) return -1;
        }
        return 0;
    }
    case CK_DEC_METASPACE: {
        const char *r = t->arena + d->pat_off;
        size_t rl = d->pat_len;
        for (size_t i = 0; i < in->n; i++) {
            const char *s = tok_s(in, i);
            size_t n = in->len[i], j = 0;
            if (toks_add(out, "", 0) != 0) return -1;
            if (d->start && i == 0 && !cont && rl && n >= rl && !memcmp(s, r, rl)) j = rl;
            while (j < n) {
                if (rl && n - j >= rl && !memcmp(s + j, r, rl)) {
                    if (toks_append(out, " ", 1) != 0) return -1;
                    j += rl;
                } else {
                    if (toks_append(out, s + j, 1) != 0) return -1;
                    j++;
                }
            }
        }
        return 0;
    }
    }
    return -1;
}

/* Decodes ids into out (cleared), using sc's buffers. Returns -1 with err for unknown ids or allocation
 * failure. */
static int decode_ids(const ck_tok *t, const int32_t *ids, size_t n_ids, int skip_special, int stream, int cont,
                      ck_tok_buf *out, struct ck_tok_scratch *sc, char *err, size_t errlen) {
    toks_clear(&sc->a);
    out->len = 0;
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (id < 0) return ck_err(err, errlen, "tokenizer: negative token id %d", (int)id);
        if (id >= t->n_ids || t->id_len[id] == CK_TOK_NO_ID) continue; /* no token (a model's padding) */
        if (skip_special && (t->id_flags[id] & CK_TOKF_SPECIAL)) continue;
        if (toks_add(&sc->a, t->arena + t->id_off[id], t->id_len[id]) != 0) goto oom;
    }
    int fused = 0;
    for (size_t k = 0; t->has_decoder && k < t->n_dec; k++) {
        toks_clear(&sc->b);
        if (dec_step(t, &t->dec[k], &sc->a, &sc->b, stream, cont, &fused, sc) != 0) goto oom;
        toks sw = sc->a;
        sc->a = sc->b;
        sc->b = sw;
    }
    ck_tok_buf *raw = &sc->raw;
    raw->len = 0;
    for (size_t i = 0; i < sc->a.n; i++) {
        if (!t->has_decoder && i > 0 && ck_tok_buf_putc(raw, ' ') != 0) goto oom;
        if (ck_tok_buf_put(raw, tok_s(&sc->a, i), sc->a.len[i]) != 0) goto oom;
    }
    int rc;
    if (stream) {
        rc = ck_tok_buf_put(out, raw->p ? raw->p : "", raw->len);
    } else {
        rc = ck_tok_utf8_lossy(out, (const uint8_t *)(raw->p ? raw->p : ""), raw->len);
        if (!rc) rc = ck_tok_buf_put(out, "", 0); /* NUL-terminate even when empty */
    }
    if (rc == 0) return 0;
oom:
    return ck_err(err, errlen, "tokenizer: out of memory while decoding");
}

static void scratch_free(struct ck_tok_scratch *sc) {
    if (!sc) return;
    toks_free(&sc->a);
    toks_free(&sc->b);
    free(sc->tmp.p);
    free(sc->tmp2.p);
    free(sc->raw.p);
    free(sc->txt.p);
}

int ck_tok_decode(const ck_tok *t, const int32_t *ids, size_t n_ids, int skip_special, char **out, size_t *len,
                  char *err, size_t errlen) {
    ck_tok_buf b = {0};
    struct ck_tok_scratch sc = {0};
    *out = NULL;
    if (len) *len = 0;
    if (n_ids && !ids) return ck_err(err, errlen, "tokenizer: NULL ids");
    int rc = decode_ids(t, ids, n_ids, skip_special, 0, 0, &b, &sc, err, errlen);
    scratch_free(&sc);
    if (rc != 0) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    if (len) *len = b.len;
    return 0;
}

/* ---- streaming ---- */

void ck_tok_stream_init(ck_tok_stream *s, const ck_tok *t) {
    memset(s, 0, sizeof *s);
    s->tok = t;
    s->first = 1;
}

int ck_tok_stream_push(ck_tok_stream *s, int32_t id, char *buf, size_t cap) {
    const ck_tok *t = s->tok;
    if (!buf || cap == 0) return -1;
    buf[0] = 0;
    if (id < 0) return -1;
    if (id >= t->n_ids || t->id_len[id] == CK_TOK_NO_ID || (t->id_flags[id] & CK_TOKF_SPECIAL)) return 0;
    if (!s->scratch && !(s->scratch = calloc(1, sizeof *s->scratch))) return -1;
    struct ck_tok_scratch *sc = s->scratch;
    /* piece: the pending bytes of an incomplete character, then this token's bytes */
    ck_tok_buf piece = {0};
    if (decode_ids(t, &id, 1, 1, 1, !s->first, &sc->txt, sc, NULL, 0) != 0) return -1;
    piece = sc->raw; /* reuse raw's allocation for pending + token bytes */
    piece.len = 0;
    if (ck_tok_buf_put(&piece, s->pending, s->n_pending) != 0 ||
        ck_tok_buf_put(&piece, sc->txt.p ? sc->txt.p : "", sc->txt.len) != 0) {
        sc->raw = piece;
        return -1;
    }
    sc->raw = piece;
    /* emit complete characters (invalid bytes as U+FFFD), hold an incomplete tail */
    const uint8_t *r = (const uint8_t *)piece.p;
    size_t i = 0, n = piece.len, tail = n, o = 0;
    while (i < n) {
        int k = ck_tok_utf8_next(r + i, n - i);
        if (k == 0) {
            tail = i;
            break;
        }
        const char *src = k > 0 ? (const char *)r + i : "\xEF\xBF\xBD";
        size_t len = k > 0 ? (size_t)k : 3;
        if (o + len + 1 > cap) return -1;
        memcpy(buf + o, src, len);
        o += len;
        i += (size_t)(k > 0 ? k : -k);
    }
    if (n - tail > sizeof s->pending) return -1; /* cannot happen: an incomplete prefix is < 4 bytes */
    buf[o] = 0;
    memmove(s->pending, r + tail, n - tail);
    s->n_pending = n - tail;
    s->first = 0;
    return (int)o;
}

void ck_tok_stream_free(ck_tok_stream *s) {
    scratch_free(s->scratch);
    free(s->scratch);
    s->scratch = NULL;
}

int ck_tok_stream_flush(ck_tok_stream *s, char *buf, size_t cap) {
    if (!buf || cap == 0) return -1;
    buf[0] = 0;
    if (s->n_pending == 0) return 0;
    if (cap < 4) return -1;
    memcpy(buf, "\xEF\xBF\xBD", 4); /* one U+FFFD for the incomplete character, NUL included */
    s->n_pending = 0;
    return 3;
}
