/* jinja_internal.h — the pieces of the Jinja interpreter shared by its files: the arena every value and
 * AST node lives in, values (Python-like: none, bool, int, float, str, list, dict, undefined, callables),
 * tokens, AST nodes and the evaluation context. Not part of the public API (see jinja.h).
 *
 * Invariants: every value, string, list, dict and node is allocated from an arena that lives as long as
 * the parsed template (nodes) or one render (values); nothing is freed one by one, so shared references
 * (Python's aliasing of lists and dicts, namespaces holding themselves) need no reference counts. An
 * arena refuses to grow past its byte cap, which bounds a render's memory. Strings are byte strings,
 * NUL-terminated, with their length stored (they may hold NUL bytes from JSON input). */
#ifndef CK_JINJA_INTERNAL_H
#define CK_JINJA_INTERNAL_H

#include "jinja/jinja.h"

#include <stddef.h>
#include <stdint.h>

/* ---- arena ---- */
typedef struct jj_arena {
    struct jj_chunk *head;
    size_t used_bytes, cap_bytes; /* total handed out; 0 cap: unlimited */
    int failed;                   /* an allocation was refused */
} jj_arena;

void *jj_alloc(jj_arena *a, size_t n); /* zeroed, 16-aligned; NULL when over the cap or out of memory */
void jj_arena_free(jj_arena *a);

/* ---- values ---- */
typedef enum {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_MACRO, JV_FUNC
} jv_kind;

typedef struct jj_str {
    size_t n;
    char p[]; /* n bytes + NUL */
} jj_str;

enum { JVF_TUPLE = 1, JVF_MARKUP = 2, JVF_GEN = 4 };

typedef struct jv {
    uint8_t k;      /* jv_kind */
    uint8_t flags;  /* JVF_TUPLE: a list made as a tuple (printed in parentheses); JVF_MARKUP: a str marked
                     * safe (Jinja's Markup: `markup + str` HTML-escapes the str); JVF_GEN: a list standing
                     * for a Python generator (what map/select/items/reverse return: always true, no len(),
                     * no index, not JSON) */
    union {
        int64_t i;  /* JV_BOOL (0/1), JV_INT */
        double f;
        const jj_str *s;
        struct jj_list *l;
        struct jj_dict *d;
        struct jj_macro *m;
        int fn;           /* JV_FUNC: jj_func */
        const char *name; /* JV_UNDEF: the name that was missing (for messages), may be NULL */
    } u;
} jv;

typedef struct jj_list {
    size_t n, cap;
    jv *a;
} jj_list;

typedef struct jj_dict {
    size_t n, cap;
    jv *keys, *vals; /* insertion order, as Python dicts */
    int ns;          /* a namespace(): attributes may be assigned */
} jj_dict;

typedef enum { JF_RANGE = 1, JF_NAMESPACE, JF_RAISE, JF_STRFTIME, JF_DICT, JF_CALLER_NONE } jj_func;

struct jj_node;
struct jj_frame;
typedef struct jj_macro {
    const struct jj_node *def; /* N_MACRO, or N_CALLBLOCK for a `caller` */
    struct jj_frame *closure;  /* the scope it was defined in */
    jv caller;                 /* for a macro invoked by {% call %}: the caller, else undefined */
} jj_macro;

static inline jv jv_undef(const char *name) { jv v = {JV_UNDEF, 0, {.name = name}}; return v; }
static inline jv jv_none(void) { jv v = {JV_NONE, 0, {0}}; return v; }
static inline jv jv_bool(int b) { jv v = {JV_BOOL, 0, {.i = b ? 1 : 0}}; return v; }
static inline jv jv_int(int64_t i) { jv v = {JV_INT, 0, {.i = i}}; return v; }
static inline jv jv_float(double f) { jv v = {JV_FLOAT, 0, {.f = f}}; return v; }

jv jv_strn(jj_arena *a, const char *p, size_t n); /* copies; JV_UNDEF with name NULL when out of memory */
jv jv_str(jj_arena *a, const char *s);
jv jv_list_new(jj_arena *a);
jv jv_dict_new(jj_arena *a);
int jv_oom(jv v); /* 1 when a constructor above failed */

int jj_list_push(jj_arena *a, jj_list *l, jv v);
int jj_dict_set(jj_arena *a, jj_dict *d, jv key, jv val);
const jv *jj_dict_get(const jj_dict *d, jv key);
const jv *jj_dict_gets(const jj_dict *d, const char *key);

int jv_truthy(jv v);
int jv_eq(jv a, jv b);
/* Python ordering of a and b into *cmp (-1/0/1); -1 when they are not orderable. */
int jv_cmp(jv a, jv b, int *cmp);
const char *jv_type_name(jv v);
int jv_hashable(jv v);          /* Python could hash it (no list or dict inside; tuples of hashables) */ /* Python's type name: 'str', 'int', 'list', 'dict', 'NoneType'... */
int jv_is_number(jv v);         /* int or float (bool too, as in Python) */
double jv_num(jv v);

/* ---- growable byte buffer (malloc'd) ---- */
typedef struct jj_buf {
    char *p;
    size_t n, cap;
    size_t max_bytes; /* 0: unlimited */
    int failed;       /* an append was refused (out of memory or over max_bytes) */
} jj_buf;

int jj_buf_put(jj_buf *b, const char *p, size_t n);
int jj_buf_puts(jj_buf *b, const char *s);
int jj_buf_printf(jj_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* str(v) / repr(v) as Python writes them (True, None, 1.0, 1e-05, ['a', "b'c"], {'k': 1}) appended to b. */
int jv_write_str(jj_buf *b, jv v);
int jv_write_repr(jj_buf *b, jv v);
int jj_write_float(jj_buf *b, double f); /* Python repr(float) */
/* json.dumps(v, ensure_ascii=flags & 2, indent=indent (<0: None), separators, sort_keys=flags & 1)
 * appended to b; item_sep/key_sep NULL for Python's defaults. -1 with a message in err for values JSON cannot hold. */
int jv_write_json(jj_buf *b, jv v, int indent, const char *item_sep, const char *key_sep, int flags,
                  char *err, size_t errlen);
/* The arena string of str(v); JV_UNDEF name NULL when out of memory. */
jv jv_to_str(jj_arena *a, jv v);
/* A cJSON tree as values (integral numbers as int). depth-bounded. */
int jv_from_json(jj_arena *a, const void *cjson, jv *out, int depth);

/* UTF-8 / Python string helpers (value.c) */
int jj_is_pyspace_at(const char *p, size_t n, size_t *len); /* 1 when p starts with a Python whitespace char */
size_t jj_utf8_len(const char *p, size_t n);                 /* code points (invalid bytes count as one) */
size_t jj_utf8_next(const char *p, size_t n);               /* bytes of the character at p (>= 1) */

/* ---- tokens ---- */
typedef enum {
    T_EOF, T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_FLOAT, T_OP
} jj_tok_kind;

typedef struct jj_token {
    int kind;
    int line;
    const char *s; /* T_TEXT, T_NAME, T_STRING: arena string; T_OP: the operator text */
    size_t n;
    int64_t i;
    double f;
} jj_token;

/* Splits src into tokens (text, tags, expression tokens) with HF's trim_blocks and lstrip_blocks, the
 * template's trailing newline dropped. */
int jj_lex(jj_arena *a, const char *src, size_t len, jj_token **toks, size_t *n_toks, char *err, size_t errlen);

/* ---- AST ---- */
typedef enum {
    /* expressions */
    N_LIT, N_NAME, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST, N_BINOP, N_NEG, N_POS, N_NOT, N_AND, N_OR,
    N_COND, N_LIST, N_TUPLE, N_DICT, N_CMP,
    /* statements */
    N_TEXT, N_EMIT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_BREAK, N_CONTINUE, N_FILTERBLOCK, N_WITH,
    N_BODY
} jj_node_kind;

typedef struct jj_node {
    int kind, line;
    int op;                     /* N_BINOP/N_CMP: operator token char code (see parser.c), N_TEST: negated */
    struct jj_node *a, *b, *c;  /* children by kind (see parser.c) */
    struct jj_node **list;      /* positional args, body, list items, dict keys */
    size_t n;
    struct jj_node **list2;     /* kwarg values, else body, dict values, macro defaults */
    size_t n2;
    const char **names;         /* kwarg names, macro params, for/set targets */
    size_t n_names;
    const char *name;           /* identifier, attribute, filter/test name */
    const char *name2;          /* N_SET: attribute of a namespace target */
    jv lit;
} jj_node;

enum { OP_EQ = 256, OP_NE, OP_LE, OP_GE, OP_FLOORDIV, OP_POW, OP_IN, OP_NOTIN };

int jj_parse(jj_arena *a, const jj_token *toks, size_t n_toks, jj_node **root, char *err, size_t errlen);

/* ---- evaluation ---- */
typedef struct jj_frame {
    struct jj_frame *parent;
    jj_dict *vars;
} jj_frame;

typedef struct jj_ctx {
    jj_arena *arena;
    jj_buf *out;         /* where text goes now (macro calls and block sets swap it) */
    char *err;
    size_t errlen;
    int line;            /* line of the node being evaluated, for messages */
    int depth;           /* recursion depth (expressions, macro calls) */
    uint64_t steps;      /* loop iterations + macro calls so far */
    const ck_jinja_limits *lim;
    jj_frame *globals;
    jv placeholder;      /* the body text a block set / filter block applies its filters to */
} jj_ctx;

/* Formats "template line N: ..." into the context's error buffer; returns -1. */
int jj_fail(jj_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int jj_fail_oom(jj_ctx *c);

int jj_eval(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out);
int jj_exec_body(jj_ctx *c, jj_frame *f, jj_node *const *body, size_t n); /* 0, -1, or JJ_BREAK/JJ_CONTINUE */
enum { JJ_BREAK = 1, JJ_CONTINUE = 2 };
int jj_call_value(jj_ctx *c, jv callee, const jv *args, size_t n_args, const char *const *kw_names,
                  const jv *kw_vals, size_t n_kw, jv *out);
/* Attribute access as Jinja's sandbox does it (obj.attr, then obj['attr']; undefined when neither). */
int jj_getattr(jj_ctx *c, jv obj, const char *name, jv *out);
int jj_getitem(jj_ctx *c, jv obj, jv key, jv *out);

/* filters.c */
int jj_filter(jj_ctx *c, jj_frame *f, const char *name, jv v, const jv *args, size_t n_args,
              const char *const *kw_names, const jv *kw_vals, size_t n_kw, jv *out);
int jj_test(jj_ctx *c, jj_frame *f, const char *name, jv v, const jv *args, size_t n_args, int *out);
/* HTML-escapes str(v) (& < > " ') as Jinja's escape filter; a markup string is returned unchanged. */
int jj_html_escape(jj_ctx *c, jv v, jv *out);
/* The items of an iterable value as a list (dict: keys, str: characters); undefined: empty. */
int jj_iter_list(jj_ctx *c, jv v, jj_list **out);

/* methods.c: obj.name(args) for str, dict and list objects; *handled 0 when obj has no such method. */
int jj_call_method(jj_ctx *c, jv obj, const char *name, const jv *args, size_t n_args, const char *const *kw_names,
                   const jv *kw_vals, size_t n_kw, jv *out, int *handled);
/* Jinja's wordcount of p[0..n). */
int64_t jj_word_count(const char *p, size_t n);
/* Global functions: range, namespace, raise_exception, strftime_now, dict. */
int jj_call_func(jj_ctx *c, int fn, const jv *args, size_t n_args, const char *const *kw_names, const jv *kw_vals,
                 size_t n_kw, jv *out);
/* Python-style slicing of a str or list; start/stop/step undefined/none when absent. */
int jj_slice(jj_ctx *c, jv obj, jv start, jv stop, jv step, jv *out);

#endif
