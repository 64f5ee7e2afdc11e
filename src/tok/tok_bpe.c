/* tok_bpe.c — the BPE model: turns one pre-token into ids the way HF `tokenizers` BPE::merge_word does.
 * Initial symbols are the bytes' GPT-2 characters (byte-level) or the UTF-8 characters (sentencepiece
 * style, with byte fallback to <0xNN> and optional fused <unk>). Merges are applied from a min-heap
 * ordered by (rank, position); a popped merge is dropped when its symbols have changed since it was
 * pushed. With ignore_merges a pre-token found whole in the vocabulary is emitted directly.
 * Invariants: symbols form a doubly linked list over sym[0..n); a merged-away symbol has len 0; all
 * scratch memory comes from ck_tok_bpe_scratch and is reused across pre-tokens. */
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>

struct ck_tok_sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    size_t len;         /* bytes covered; 0 once merged into its left neighbour */
};

struct ck_tok_merge_item {
    int32_t rank, pos, new_id;
};

static int item_less(const struct ck_tok_merge_item *a, const struct ck_tok_merge_item *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct ck_tok_merge_item *h, size_t *n, struct ck_tok_merge_item it) {
    size_t i = (*n)++;
    h[i] = it;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!item_less(&h[i], &h[p])) break;
        struct ck_tok_merge_item tmp = h[i];
        h[i] = h[p];
        h[p] = tmp;
        i = p;
    }
}

static struct ck_tok_merge_item heap_pop(struct ck_tok_merge_item *h, size_t *n) {
    struct ck_tok_merge_item top = h[0];
    h[0] = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && item_less(&h[l], &h[m])) m = l;
        if (r < *n && item_less(&h[r], &h[m])) m = r;
        if (m == i) break;
        struct ck_tok_merge_item tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
    return top;
}

static int reserve(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

void ck_tok_bpe_scratch_free(ck_tok_bpe_scratch *sc) {
    free(sc->sym);
    free(sc->heap);
    free(sc->word.p);
    memset(sc, 0, sizeof *sc);
}

static void add_sym(struct ck_tok_sym *sym, size_t *n, int32_t id, size_t len) {
    size_t i = (*n)++;
    sym[i].id = id;
    sym[i].len = len;
    sym[i].prev = (int32_t)i - 1;
    sym[i].next = -1;
    if (i > 0) sym[i - 1].next = (int32_t)i;
}

/* Pushes the merge of symbols a and its right neighbour, when one exists. */
static void push_pair(const ck_tok *t, struct ck_tok_sym *sym, int32_t a, struct ck_tok_merge_item *heap,
                      size_t *n_heap) {
    if (a < 0 || sym[a].next < 0) return;
    uint64_t key = ((uint64_t)(uint32_t)sym[a].id << 32) | (uint32_t)sym[sym[a].next].id;
    const struct ck_tok_um_entry *e = ck_tok_u64map_get(&t->merges, key);
    if (e) heap_push(heap, n_heap, (struct ck_tok_merge_item){e->a, a, e->b});
}

int ck_tok_bpe(const ck_tok *t, const uint8_t *s, size_t n, ck_tok_bpe_scratch *sc, ck_tok_ids *out) {
    if (n == 0) return 0;
    if (n > INT32_MAX / 4) return -1;

    /* ignore_merges: the whole pre-token as one vocabulary entry */
    if (t->ignore_merges) {
        int32_t id;
        if (t->byte_level) {
            sc->word.len = 0;
            for (size_t i = 0; i < n; i++) {
                char u[4];
                int k = ck_tok_utf8_put(ck_tok_byte_to_cp(s[i]), u);
                if (ck_tok_buf_put(&sc->word, u, (size_t)k) != 0) return -1;
            }
            id = ck_tok_strmap_get(&t->vocab, t->arena, sc->word.p, sc->word.len);
        } else {
            id = ck_tok_strmap_get(&t->vocab, t->arena, (const char *)s, n);
        }
        if (id >= 0) return ck_tok_ids_push(out, id);
    }

    /* at most one symbol per byte */
    if (reserve((void **)&sc->sym, &sc->cap_sym, n, sizeof *sc->sym) != 0) return -1;
    struct ck_tok_sym *sym = sc->sym;
    size_t n_sym = 0;

    if (t->byte_level) {
        for (size_t i = 0; i < n; i++) {
            int32_t id = t->byte_id[s[i]];
            if (id >= 0) {
                add_sym(sym, &n_sym, id, 1);
            } else if (t->unk_id >= 0) {
                if (t->fuse_unk && n_sym && sym[n_sym - 1].id == t->unk_id)
                    sym[n_sym - 1].len += 1;
                else
                    add_sym(sym, &n_sym, t->unk_id, 1);
            }
        }
    } else {
        int32_t unk_pending = 0; /* HF keeps one pending <unk> symbol and flushes it lazily */
        size_t unk_len = 0;
        size_t i = 0;
        while (i < n) {
            int k = ck_tok_utf8_next(s + i, n - i);
            size_t cl = k > 0 ? (size_t)k : 1; /* input was validated; be defensive anyway */
            int32_t id = ck_tok_strmap_get(&t->vocab, t->arena, (const char *)s + i, cl);
            if (id >= 0) {
                if (unk_pending) {
                    add_sym(sym, &n_sym, t->unk_id, unk_len);
                    unk_pending = 0;
                }
                add_sym(sym, &n_sym, id, cl);
            } else {
                int done = 0;
                if (t->byte_fallback) {
                    done = 1;
                    for (size_t j = 0; j < cl; j++)
                        if (t->fallback_id[s[i + j]] < 0) done = 0;
                    if (done)
                        for (size_t j = 0; j < cl; j++) add_sym(sym, &n_sym, t->fallback_id[s[i + j]], 1);
                }
                if (!done && t->unk_id >= 0) {
                    if (unk_pending && t->fuse_unk) {
                        unk_len += cl;
                    } else {
                        if (unk_pending) add_sym(sym, &n_sym, t->unk_id, unk_len);
                        unk_pending = 1;
                        unk_len = cl;
                    }
                }
            }
            i += cl;
        }
        if (unk_pending) add_sym(sym, &n_sym, t->unk_id, unk_len);
    }
    if (n_sym == 0) return 0;

    /* every live pair is in the heap at most once per push; pushes <= 3 * n_sym */
    if (reserve((void **)&sc->heap, &sc->cap_heap, 3 * n_sym + 1, sizeof *sc->heap) != 0) return -1;
    struct ck_tok_merge_item *heap = sc->heap;
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < n_sym; i++) push_pair(t, sym, (int32_t)i, heap, &n_heap);

    while (n_heap) {
        struct ck_tok_merge_item top = heap_pop(heap, &n_heap);
        struct ck_tok_sym *a = &sym[top.pos];
        if (a->len == 0 || a->next < 0) continue;
        int32_t bi = a->next;
        uint64_t key = ((uint64_t)(uint32_t)a->id << 32) | (uint32_t)sym[bi].id;
        const struct ck_tok_um_entry *e = ck_tok_u64map_get(&t->merges, key);
        if (!e || e->b != top.new_id) continue; /* stale */
        a->id = top.new_id;
        a->len += sym[bi].len;
        a->next = sym[bi].next;
        sym[bi].len = 0;
        if (a->next >= 0) sym[a->next].prev = top.pos;
        if (n_heap + 2 > sc->cap_heap) {
            if (reserve((void **)&sc->heap, &sc->cap_heap, n_heap + 2, sizeof *sc->heap) != 0) return -1;
            heap = sc->heap;
        }
        push_pair(t, sym, a->prev, heap, &n_heap);
        push_pair(t, sym, top.pos, heap, &n_heap);
    }

    for (int32_t i = 0; i >= 0; i = sym[i].next)
        if (ck_tok_ids_push(out, sym[i].id) != 0) return -1;
    return 0;
}
