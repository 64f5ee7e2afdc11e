/* tok_hash.c — the tokenizer's small containers: open-addressing hash maps (string -> id over an arena,
 * uint64 -> pair of int32), growable byte/id buffers, the string arena and the added-token byte trie.
 * Invariants: map capacities are powers of two kept at most half full, so probing always ends at an
 * empty slot; map keys are never removed; buffers keep p[len] == 0 when len < cap (byte buffers). */
#include "tok/tok_internal.h"
#include "base/grow.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, 32-bit. */
static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t cap_for(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 2) {
        if (cap > SIZE_MAX / 4) return 0;
        cap *= 2;
    }
    return cap;
}

/* ---- string map ---- */

static int strmap_alloc(ck_tok_strmap *m, size_t cap) {
    m->e = malloc(cap * sizeof *m->e);
    if (!m->e) return -1;
    for (size_t i = 0; i < cap; i++) m->e[i].len = CK_TOK_NO_ID;
    m->cap = cap;
    m->n = 0;
    return 0;
}

int ck_tok_strmap_init(ck_tok_strmap *m, size_t expected) {
    size_t cap = cap_for(expected);
    if (!cap) return -1;
    return strmap_alloc(m, cap);
}

void ck_tok_strmap_free(ck_tok_strmap *m) {
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

static int strmap_grow(ck_tok_strmap *m) {
    ck_tok_strmap nm;
    if (m->cap > SIZE_MAX / 2 / sizeof *m->e) return -1;
    if (strmap_alloc(&nm, m->cap * 2) != 0) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].len == CK_TOK_NO_ID) continue;
        size_t j = m->e[i].hash & (nm.cap - 1);
        while (nm.e[j].len != CK_TOK_NO_ID) j = (j + 1) & (nm.cap - 1);
        nm.e[j] = m->e[i];
        nm.n++;
    }
    free(m->e);
    *m = nm;
    return 0;
}

int ck_tok_strmap_put(ck_tok_strmap *m, const char *arena, uint32_t off, uint32_t len, int32_t val) {
    if (!m->cap && ck_tok_strmap_init(m, 16) != 0) return -1;
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m) != 0) return -1;
    uint32_t h = hash_bytes(arena + off, len);
    size_t j = h & (m->cap - 1);
    while (m->e[j].len != CK_TOK_NO_ID) {
        if (m->e[j].hash == h && m->e[j].len == len && memcmp(arena + m->e[j].off, arena + off, len) == 0)
            return 1;
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j].off = off;
    m->e[j].len = len;
    m->e[j].hash = h;
    m->e[j].val = val;
    m->n++;
    return 0;
}

int32_t ck_tok_strmap_get(const ck_tok_strmap *m, const char *arena, const char *s, size_t len) {
    if (!m->cap || len >= CK_TOK_NO_ID) return -1;
    uint32_t h = hash_bytes(s, len);
    size_t j = h & (m->cap - 1);
    while (m->e[j].len != CK_TOK_NO_ID) {
        if (m->e[j].hash == h && m->e[j].len == len && memcmp(arena + m->e[j].off, s, len) == 0)
            return m->e[j].val;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

/* ---- uint64 map ---- */

static int u64map_alloc(ck_tok_u64map *m, size_t cap) {
    m->e = calloc(cap, sizeof *m->e);
    if (!m->e) return -1;
    m->cap = cap;
    m->n = 0;
    return 0;
}

int ck_tok_u64map_init(ck_tok_u64map *m, size_t expected) {
    size_t cap = cap_for(expected);
    if (!cap) return -1;
    return u64map_alloc(m, cap);
}

void ck_tok_u64map_free(ck_tok_u64map *m) {
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

static int u64map_grow(ck_tok_u64map *m) {
    ck_tok_u64map nm;
    if (m->cap > SIZE_MAX / 2 / sizeof *m->e) return -1;
    if (u64map_alloc(&nm, m->cap * 2) != 0) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].used) continue;
        size_t j = hash_u64(m->e[i].key) & (nm.cap - 1);
        while (nm.e[j].used) j = (j + 1) & (nm.cap - 1);
        nm.e[j] = m->e[i];
        nm.n++;
    }
    free(m->e);
    *m = nm;
    return 0;
}

int ck_tok_u64map_put(ck_tok_u64map *m, uint64_t key, int32_t a, int32_t b) {
    if (!m->cap && ck_tok_u64map_init(m, 16) != 0) return -1;
    if ((m->n + 1) * 2 > m->cap && u64map_grow(m) != 0) return -1;
    size_t j = hash_u64(key) & (m->cap - 1);
    while (m->e[j].used) {
        if (m->e[j].key == key) return 1;
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j].key = key;
    m->e[j].a = a;
    m->e[j].b = b;
    m->e[j].used = 1;
    m->n++;
    return 0;
}

const struct ck_tok_um_entry *ck_tok_u64map_get(const ck_tok_u64map *m, uint64_t key) {
    if (!m->cap) return NULL;
    size_t j = hash_u64(key) & (m->cap - 1);
    while (m->e[j].used) {
        if (m->e[j].key == key) return &m->e[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

/* ---- buffers ---- */

int ck_tok_buf_put(ck_tok_buf *b, const void *s, size_t n) {
    if (n > SIZE_MAX - b->len - 1) return -1;
    char *p = ck_grow(b->p, &b->cap, b->len + n + 1, 1, 64);
    if (!p) return -1;
    b->p = p;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int ck_tok_buf_putc(ck_tok_buf *b, char c) { return ck_tok_buf_put(b, &c, 1); }

int ck_tok_buf_puts(ck_tok_buf *b, const char *s) { return ck_tok_buf_put(b, s, strlen(s)); }

int ck_tok_ids_push(ck_tok_ids *v, int32_t id) {
    int32_t *p = ck_grow(v->p, &v->cap, v->len + 1, sizeof *p, 64);
    if (!p) return -1;
    v->p = p;
    v->p[v->len++] = id;
    return 0;
}

/* ---- arena ---- */

int ck_tok_arena_add(ck_tok *t, const void *s, size_t n, uint32_t *off) {
    if (n >= CK_TOK_NO_ID || t->arena_len > (size_t)CK_TOK_NO_ID - 1 - n) return -1;
    char *p = ck_grow(t->arena, &t->arena_cap, t->arena_len + n + 1, 1, 1 << 16);
    if (!p) return -1;
    t->arena = p;
    *off = (uint32_t)t->arena_len;
    if (n) memcpy(t->arena + t->arena_len, s, n);
    t->arena_len += n;
    t->arena[t->arena_len] = 0;
    return 0;
}

/* ---- trie ---- */

static int trie_new_node(ck_tok_trie *tr, int32_t *out) {
    if (tr->n_nodes == tr->cap_nodes) {
        size_t cap = tr->cap_nodes ? tr->cap_nodes * 2 : 64;
        if (cap > INT32_MAX) return -1;
        int32_t *p = realloc(tr->term, cap * sizeof *p);
        if (!p) return -1;
        tr->term = p;
        tr->cap_nodes = cap;
    }
    tr->term[tr->n_nodes] = -1;
    *out = (int32_t)tr->n_nodes++;
    return 0;
}

int ck_tok_trie_init(ck_tok_trie *tr) {
    memset(tr, 0, sizeof *tr);
    int32_t root;
    return trie_new_node(tr, &root);
}

void ck_tok_trie_free(ck_tok_trie *tr) {
    ck_tok_u64map_free(&tr->edges);
    free(tr->term);
    memset(tr, 0, sizeof *tr);
}

int ck_tok_trie_add(ck_tok_trie *tr, const uint8_t *s, size_t n, int32_t added_index) {
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = ((uint64_t)(uint32_t)node << 8) | s[i];
        const struct ck_tok_um_entry *e = ck_tok_u64map_get(&tr->edges, key);
        if (e) {
            node = e->a;
        } else {
            int32_t child;
            if (trie_new_node(tr, &child) != 0) return -1;
            if (ck_tok_u64map_put(&tr->edges, key, child, 0) < 0) return -1;
            node = child;
        }
    }
    if (tr->term[node] < 0) tr->term[node] = added_index; /* first definition wins */
    return 0;
}

int32_t ck_tok_trie_longest(const ck_tok_trie *tr, const uint8_t *s, size_t n, size_t *len) {
    int32_t node = 0, best = -1;
    if (!tr->edges.n) return -1;
    for (size_t i = 0; i < n; i++) {
        const struct ck_tok_um_entry *e =
            ck_tok_u64map_get(&tr->edges, ((uint64_t)(uint32_t)node << 8) | s[i]);
        if (!e) break;
        node = e->a;
        if (tr->term[node] >= 0) {
            best = tr->term[node];
            *len = i + 1;
        }
    }
    return best;
}
