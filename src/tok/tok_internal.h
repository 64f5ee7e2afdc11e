/* tok_internal.h — private layout of ck_tok shared by the tokenizer files (load, hash, bpe, encode,
 * decode, chat, utf8). Not part of the public API.
 * Invariants of a loaded ck_tok:
 *  - every string (vocab tokens, added-token contents, decoder/normalizer literals) lives in `arena` and
 *    is referred to by (offset, length); the arena never moves after load;
 *  - id_len[id] == CK_TOK_NO_ID marks an id without a token (a hole); every other id in [0, n_ids) has a
 *    string; added tokens override model tokens of the same id, as in HF `id_to_token`;
 *  - the merge map holds (left id, right id) -> (rank, merged id) with every id valid;
 *  - nothing is mutated after load, so a ck_tok may be shared between threads (PCRE2 match data is
 *    allocated per encode call). */
#ifndef CK_TOK_INTERNAL_H
#define CK_TOK_INTERNAL_H

#include "tok/tok.h"

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <cjson/cJSON.h>

#define CK_TOK_NO_ID UINT32_MAX

/* ---- hash maps (tok_hash.c) ---- */

/* String -> int32 map over strings stored in an external arena (open addressing, linear probing). */
typedef struct ck_tok_strmap {
    struct ck_tok_sm_entry *e; /* cap entries; len == CK_TOK_NO_ID marks an empty slot */
    size_t cap;                /* power of two, or 0 */
    size_t n;
} ck_tok_strmap;

struct ck_tok_sm_entry {
    uint32_t off, len; /* key = arena[off .. off+len) */
    uint32_t hash;
    int32_t val;
};

int ck_tok_strmap_init(ck_tok_strmap *m, size_t expected);
void ck_tok_strmap_free(ck_tok_strmap *m);
/* Inserts key arena[off..off+len) -> val; an existing key keeps its first value (returns 1). 0 when
 * inserted, -1 on allocation failure. */
int ck_tok_strmap_put(ck_tok_strmap *m, const char *arena, uint32_t off, uint32_t len, int32_t val);
/* Value of key s[0..len), or -1. */
int32_t ck_tok_strmap_get(const ck_tok_strmap *m, const char *arena, const char *s, size_t len);

/* uint64 -> (int32, int32) map (merges: pair -> rank, new id; trie edges: node<<8|byte -> child). */
typedef struct ck_tok_u64map {
    struct ck_tok_um_entry *e; /* cap entries; used == 0 marks an empty slot */
    size_t cap;
    size_t n;
} ck_tok_u64map;

struct ck_tok_um_entry {
    uint64_t key;
    int32_t a, b;
    int32_t used;
};

int ck_tok_u64map_init(ck_tok_u64map *m, size_t expected);
void ck_tok_u64map_free(ck_tok_u64map *m);
/* Inserts or keeps the existing entry (returns 1 when the key was present); -1 on allocation failure. */
int ck_tok_u64map_put(ck_tok_u64map *m, uint64_t key, int32_t a, int32_t b);
/* Pointer to the entry of key, or NULL. */
const struct ck_tok_um_entry *ck_tok_u64map_get(const ck_tok_u64map *m, uint64_t key);

/* ---- growable buffers ---- */
typedef struct ck_tok_buf {
    char *p;
    size_t len, cap;
} ck_tok_buf;

int ck_tok_buf_put(ck_tok_buf *b, const void *s, size_t n);
int ck_tok_buf_putc(ck_tok_buf *b, char c);
int ck_tok_buf_puts(ck_tok_buf *b, const char *s);

typedef struct ck_tok_ids {
    int32_t *p;
    size_t len, cap;
} ck_tok_ids;

int ck_tok_ids_push(ck_tok_ids *v, int32_t id);

/* ---- UTF-8 (tok_utf8.c) ---- */

/* Classifies the bytes at s[0..n), n > 0: returns k > 0 when s starts with a valid k-byte character;
 * 0 when s[0..n) is a valid but incomplete prefix of a character; -k (k >= 1) when the first k bytes
 * are a maximal invalid subpart (to be replaced by one U+FFFD, as Rust's from_utf8_lossy does). */
int ck_tok_utf8_next(const uint8_t *s, size_t n);
/* Decodes the valid character at s (k = its length from ck_tok_utf8_next). */
uint32_t ck_tok_utf8_cp(const uint8_t *s, int k);
/* Encodes cp into out (>= 4 bytes); returns the length. */
int ck_tok_utf8_put(uint32_t cp, char *out);
/* 1 when s[0..n) is entirely valid UTF-8. */
int ck_tok_utf8_valid(const uint8_t *s, size_t n);
/* Appends s[0..n) to b replacing invalid sequences with U+FFFD (including a trailing incomplete one). */
int ck_tok_utf8_lossy(ck_tok_buf *b, const uint8_t *s, size_t n);
/* Unicode White_Space (Rust char::is_whitespace, Python str.isspace minus U+001C..U+001F). */
int ck_tok_is_space(uint32_t cp);
/* Python str.isspace / str.strip() whitespace. */
int ck_tok_is_pyspace(uint32_t cp);

/* GPT-2 byte-level alphabet: the code point standing for byte b, and its inverse (-1 when cp is not in
 * the alphabet). */
uint32_t ck_tok_byte_to_cp(uint8_t b);
int ck_tok_cp_to_byte(uint32_t cp);

/* ---- pipeline pieces ---- */

enum { CK_NORM_NFC, CK_NORM_NFKC, CK_NORM_NFD, CK_NORM_NFKD, CK_NORM_REPLACE, CK_NORM_PREPEND };
typedef struct ck_tok_norm {
    int kind;
    uint32_t pat_off, pat_len;  /* REPLACE: literal pattern */
    uint32_t str_off, str_len;  /* REPLACE: content; PREPEND: prepended text */
} ck_tok_norm;

enum { CK_SPLIT_REMOVED, CK_SPLIT_ISOLATED, CK_SPLIT_MERGED_PREV, CK_SPLIT_MERGED_NEXT, CK_SPLIT_CONTIGUOUS };
enum { CK_PRE_SPLIT, CK_PRE_BYTELEVEL };
typedef struct ck_tok_pre {
    int kind;
    pcre2_code *re;     /* SPLIT, or BYTELEVEL with use_regex */
    int behavior;       /* SPLIT: CK_SPLIT_* */
    int invert;         /* SPLIT */
    int add_prefix_space; /* BYTELEVEL */
} ck_tok_pre;

enum { CK_DEC_BYTELEVEL, CK_DEC_REPLACE, CK_DEC_BYTEFALLBACK, CK_DEC_FUSE, CK_DEC_STRIP, CK_DEC_METASPACE };
typedef struct ck_tok_dec {
    int kind;
    uint32_t pat_off, pat_len; /* REPLACE pattern; METASPACE replacement char; STRIP content char */
    uint32_t str_off, str_len; /* REPLACE content */
    size_t start, stop;        /* STRIP counts; METASPACE: start = 1 strips the first token's space */
} ck_tok_dec;

typedef struct ck_tok_added {
    int32_t id;
    uint32_t off, len;          /* content in the arena (normalized when `normalized`) */
    uint8_t special, lstrip, rstrip, single_word, normalized;
} ck_tok_added;

/* Byte trie over added-token contents for leftmost-longest matching. Node 0 is the root. */
typedef struct ck_tok_trie {
    ck_tok_u64map edges;  /* (node << 8 | byte) -> child node in .a */
    int32_t *term;        /* per node: index into ck_tok.added, or -1 */
    size_t n_nodes, cap_nodes;
} ck_tok_trie;

#define CK_TOK_MAX_STEPS 8

enum { CK_TOKF_ADDED = 1, CK_TOKF_SPECIAL = 2 };

/* A chat template: parsed, or kept with the reason it cannot be used. */
typedef struct ck_tok_tmpl {
    struct ck_jinja *j; /* the parsed template, or NULL */
    char *src;          /* its text (also kept when it does not parse), or NULL: there is none */
    char *err;          /* why it cannot be used, or NULL */
} ck_tok_tmpl;

/* Sets m to Jinja text src[0..len): parsed, or kept with the parse error (returned in err). */
int ck_tok_tmpl_set(ck_tok_tmpl *m, const char *src, size_t len, char *err, size_t errlen);
/* Marks m as a template that cannot be used, for the reason why (a malformed chat_template entry). */
int ck_tok_tmpl_fail(ck_tok_tmpl *m, const char *why);
void ck_tok_tmpl_free(ck_tok_tmpl *m);

struct ck_tok {
    char *arena;
    size_t arena_len, arena_cap;

    int32_t n_ids;          /* max id + 1 */
    uint32_t *id_off;       /* [n_ids] */
    uint32_t *id_len;       /* [n_ids], CK_TOK_NO_ID for holes */
    uint8_t *id_flags;      /* [n_ids] CK_TOKF_* */

    /* model (BPE) */
    ck_tok_strmap vocab;    /* model vocabulary */
    ck_tok_u64map merges;   /* (left << 32 | right) -> (rank, new id) */
    int ignore_merges, byte_fallback, fuse_unk;
    int32_t unk_id;         /* -1 when none */
    int byte_level;         /* a ByteLevel pre-tokenizer maps bytes to the GPT-2 alphabet before BPE */
    int32_t byte_id[256];   /* byte-level: id of the one-char token of each byte, -1 if absent */
    int32_t fallback_id[256]; /* byte_fallback: id of "<0xNN>", -1 if absent */

    /* added tokens */
    ck_tok_added *added;
    size_t n_added;
    ck_tok_strmap added_map; /* content -> id (raw content, for ck_tok_id) */
    ck_tok_trie trie_raw;    /* added tokens with normalized = false, matched on the raw text */
    ck_tok_trie trie_norm;   /* normalized = true, matched on normalized text */

    ck_tok_norm norm[CK_TOK_MAX_STEPS];
    size_t n_norm;
    ck_tok_pre pre[CK_TOK_MAX_STEPS];
    size_t n_pre;

    /* post-processor: ids around the single sequence when add_special */
    int32_t post_pre[8], post_post[8];
    size_t n_post_pre, n_post_post;

    /* decoder; has_decoder = 0 joins tokens with " " as HF does */
    ck_tok_dec dec[CK_TOK_MAX_STEPS];
    size_t n_dec;
    int has_decoder;

    /* tokenizer_config.json */
    int32_t bos_id, eos_id;
    char *bos_str, *eos_str; /* malloc'd, or NULL */
    ck_tok_tmpl chat;        /* the chat template (a named list's "default") */
    ck_tok_tmpl chat_tool;   /* a named list's "tool_use": what HF renders with when tools are given */
    cJSON *chat_specials;    /* {bos_token: "...", ...}: the special tokens HF passes to templates */
};

/* Appends s[0..n) to the arena; *off gets its offset. */
int ck_tok_arena_add(ck_tok *t, const void *s, size_t n, uint32_t *off);

/* Trie helpers (tok_hash.c). */
int ck_tok_trie_init(ck_tok_trie *tr);
void ck_tok_trie_free(ck_tok_trie *tr);
int ck_tok_trie_add(ck_tok_trie *tr, const uint8_t *s, size_t n, int32_t added_index);
/* Longest added token starting at s[0..n): returns its index into ck_tok.added and sets *len, or -1. */
int32_t ck_tok_trie_longest(const ck_tok_trie *tr, const uint8_t *s, size_t n, size_t *len);

/* Normalizes s[0..n) with t's normalizer into out (cleared first). -1 with err on invalid input. */
int ck_tok_normalize(const ck_tok *t, const char *s, size_t n, ck_tok_buf *out, char *err, size_t errlen);

/* BPE model (tok_bpe.c): appends the ids of one pre-token s[0..n) to out. scratch is reused between
 * calls of one encode. */
typedef struct ck_tok_bpe_scratch {
    struct ck_tok_sym *sym;
    size_t cap_sym;
    struct ck_tok_merge_item *heap;
    size_t cap_heap;
    ck_tok_buf word; /* byte-level mapped text for ignore_merges lookups */
} ck_tok_bpe_scratch;

int ck_tok_bpe(const ck_tok *t, const uint8_t *s, size_t n, ck_tok_bpe_scratch *sc, ck_tok_ids *out);
void ck_tok_bpe_scratch_free(ck_tok_bpe_scratch *sc);

#endif
