/* parser.c — tokens to an AST, following Jinja2's grammar and operator precedence:
 *   expr    := or ['if' or ['else' expr]]
 *   or/and/not, compare (== != < <= > >= in, not in), + -, ~, * / // %, **, unary - +,
 *   primary (literal, name, (tuple), [list], {dict}) with postfix .attr [item] [a:b:c] (call), then
 *   |filter(args) and `is [not] test [arg]` chains.
 * Statements: if/elif/else, for (with targets a, b, an `if` filter and else), set (name, tuple,
 * ns.attr, block set), macro, call, filter, with, break, continue, and HF's generation/endgeneration (its body
 * rendered as is).
 * Node fields per kind: N_ATTR a.name; N_ITEM a[b]; N_SLICE a[list[0]:list[1]:list[2]] (NULL = absent);
 * N_CALL a(list, names=list2); N_FILTER a|name(list, names=list2); N_TEST a is name(list), op = negated;
 * N_BINOP/N_CMP a op b; N_COND a if b else c; N_IF if a: list else list2; N_FOR names in a if b: list
 * else list2; N_SET names (or name.name2) = a; N_SETBLOCK name = body list (filtered by b); N_MACRO name
 * (names, defaults list2 aligned to the end) body list; N_CALLBLOCK a = call, caller params names, body
 * list; N_FILTERBLOCK b = filter chain over N_LIT placeholder, body list; N_WITH names = list2 values,
 * body list.
 * Invariant: recursion is bounded (MAX_NEST) so hostile templates cannot exhaust the stack. */
#include "base/err.h"
#include "jinja/jinja_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NEST 200

typedef struct parser {
    jj_arena *a;
    const jj_token *t;
    size_t n, i;
    int nest;
    int uses_varargs, uses_kwargs; /* the macro body being parsed names `varargs` / `kwargs` */
    char *err;
    size_t errlen;
} parser;

static const jj_token *cur(parser *P) { return &P->t[P->i]; }
static int pfail(parser *P, const char *msg) {
    return ck_err(P->err, P->errlen, "template line %d: %s", cur(P)->line, msg);
}

static int is_op(parser *P, const char *op) {
    const jj_token *t = cur(P);
    return t->kind == T_OP && t->n == strlen(op) && !memcmp(t->s, op, t->n);
}
static int is_name(parser *P, const char *nm) {
    const jj_token *t = cur(P);
    return t->kind == T_NAME && t->n == strlen(nm) && !memcmp(t->s, nm, t->n);
}
static int is_name_at(parser *P, size_t k, const char *nm) {
    if (P->i + k >= P->n) return 0;
    const jj_token *t = &P->t[P->i + k];
    return t->kind == T_NAME && t->n == strlen(nm) && !memcmp(t->s, nm, t->n);
}
static int accept_op(parser *P, const char *op) {
    if (!is_op(P, op)) return 0;
    P->i++;
    return 1;
}
static int expect_op(parser *P, const char *op) {
    if (accept_op(P, op)) return 0;
    char m[64];
    snprintf(m, sizeof m, "expected '%s'", op);
    return pfail(P, m);
}
static void advance(parser *P) {
    if (P->t[P->i].kind != T_EOF) P->i++;
}

static jj_node *node(parser *P, int kind) {
    jj_node *n = jj_alloc(P->a, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = cur(P)->line;
    }
    return n;
}

/* Growable node-pointer list in the arena. */
typedef struct nlist {
    jj_node **p;
    size_t n, cap;
} nlist;

static int nl_push(parser *P, nlist *l, jj_node *x) {
    if (!x) return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jj_node **np = jj_alloc(P->a, cap * sizeof *np);
        if (!np) return pfail(P, "template too large");
        if (l->n) memcpy(np, l->p, l->n * sizeof *np);
        l->p = np;
        l->cap = cap;
    }
    l->p[l->n++] = x;
    return 0;
}

typedef struct slist {
    const char **p;
    size_t n, cap;
} slist;

static int sl_push(parser *P, slist *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        const char **np = jj_alloc(P->a, cap * sizeof *np);
        if (!np) return pfail(P, "template too large");
        if (l->n) memcpy(np, l->p, l->n * sizeof *np);
        l->p = np;
        l->cap = cap;
    }
    l->p[l->n++] = s;
    return 0;
}

static const char *expect_name(parser *P) {
    if (cur(P)->kind != T_NAME) {
        pfail(P, "expected a name");
        return NULL;
    }
    const char *s = cur(P)->s;
    advance(P);
    return s;
}

static jj_node *parse_expr(parser *P);
static jj_node *parse_or(parser *P);
static jj_node *parse_unary(parser *P, int with_filter);

/* Call arguments after '(' : positional into *args, keyword into *kn and *kv; consumes ')'. */
static int parse_args(parser *P, nlist *args, slist *kn, nlist *kv) {
    while (!accept_op(P, ")")) {
        if (args->n + kv->n && expect_op(P, ",") != 0) return -1;
        if (accept_op(P, ")")) break; /* trailing comma */
        if (cur(P)->kind == T_NAME && P->i + 1 < P->n && P->t[P->i + 1].kind == T_OP && P->t[P->i + 1].n == 1 &&
            P->t[P->i + 1].s[0] == '=') {
            const char *k = expect_name(P);
            advance(P);
            if (sl_push(P, kn, k) != 0 || nl_push(P, kv, parse_expr(P)) != 0) return -1;
        } else {
            if (kv->n) return pfail(P, "positional argument after keyword argument");
            if (nl_push(P, args, parse_expr(P)) != 0) return -1;
        }
    }
    return 0;
}

static void set_args(jj_node *n, nlist *args, slist *kn, nlist *kv) {
    n->list = args->p;
    n->n = args->n;
    n->names = kn->p;
    n->n_names = kn->n;
    n->list2 = kv->p;
    n->n2 = kv->n;
}

static jj_node *parse_subscript(parser *P, jj_node *obj) {
    jj_node *parts[3] = {NULL, NULL, NULL};
    int k = 0, is_slice = 0;
    for (;;) {
        if (!is_op(P, ":") && !is_op(P, "]")) {
            parts[k] = parse_expr(P);
            if (!parts[k]) return NULL;
        }
        if (accept_op(P, ":")) {
            is_slice = 1;
            if (++k > 2) { pfail(P, "bad slice"); return NULL; }
            continue;
        }
        break;
    }
    if (expect_op(P, "]") != 0) return NULL;
    jj_node *n = node(P, is_slice ? N_SLICE : N_ITEM);
    if (!n) return NULL;
    n->a = obj;
    if (!is_slice) {
        if (!parts[0]) { pfail(P, "empty subscript"); return NULL; }
        n->b = parts[0];
        return n;
    }
    n->list = jj_alloc(P->a, 3 * sizeof *n->list);
    if (!n->list) return NULL;
    memcpy(n->list, parts, sizeof parts);
    n->n = 3;
    return n;
}

static jj_node *parse_postfix(parser *P, jj_node *n) {
    while (n) {
        if (accept_op(P, ".")) {
            jj_node *x = node(P, N_ATTR);
            if (!x) return NULL;
            x->a = n;
            if (cur(P)->kind == T_INT) { /* foo.0 is foo[0] */
                x->kind = N_ITEM;
                x->b = node(P, N_LIT);
                if (!x->b) return NULL;
                x->b->lit = jv_int(cur(P)->i);
                advance(P);
            } else if (!(x->name = expect_name(P))) {
                return NULL;
            }
            n = x;
        } else if (accept_op(P, "[")) {
            n = parse_subscript(P, n);
        } else if (accept_op(P, "(")) {
            jj_node *x = node(P, N_CALL);
            nlist args = {0}, kv = {0};
            slist kn = {0};
            if (!x || parse_args(P, &args, &kn, &kv) != 0) return NULL;
            x->a = n;
            set_args(x, &args, &kn, &kv);
            n = x;
        } else {
            break;
        }
    }
    return n;
}

/* name(args) of a filter applied to n (the '|' already consumed). */
static jj_node *parse_one_filter(parser *P, jj_node *n) {
    jj_node *x = node(P, N_FILTER);
    if (!x || !(x->name = expect_name(P))) return NULL;
    x->a = n;
    nlist args = {0}, kv = {0};
    slist kn = {0};
    if (accept_op(P, "(") && parse_args(P, &args, &kn, &kv) != 0) return NULL;
    set_args(x, &args, &kn, &kv);
    return x;
}

static int starts_test_arg(parser *P) {
    int k = cur(P)->kind;
    if (k == T_STRING || k == T_INT || k == T_FLOAT) return 1;
    if (k == T_NAME)
        return !is_name(P, "else") && !is_name(P, "or") && !is_name(P, "and") && !is_name(P, "if") &&
               !is_name(P, "is") && !is_name(P, "in") && !is_name(P, "not");
    return is_op(P, "[") || is_op(P, "{") || is_op(P, "-");
}

/* `|name(args)` and `is [not] name [arg]` after an expression. */
static jj_node *parse_filter_test(parser *P, jj_node *n) {
    while (n) {
        if (accept_op(P, "|")) {
            n = parse_one_filter(P, n);
        } else if (is_name(P, "is")) {
            advance(P);
            jj_node *x = node(P, N_TEST);
            if (!x) return NULL;
            if (is_name(P, "not")) { advance(P); x->op = 1; }
            if (!(x->name = expect_name(P))) return NULL;
            x->a = n;
            nlist args = {0}, kv = {0};
            slist kn = {0};
            if (accept_op(P, "(")) {
                if (parse_args(P, &args, &kn, &kv) != 0) return NULL;
            } else if (starts_test_arg(P)) {
                if (nl_push(P, &args, parse_unary(P, 0)) != 0) return NULL;
            }
            set_args(x, &args, &kn, &kv);
            n = x;
        } else {
            break;
        }
    }
    return n;
}

static jj_node *lit_node(parser *P, jv v) {
    jj_node *n = node(P, N_LIT);
    if (n) n->lit = v;
    return n;
}

static jj_node *parse_seq(parser *P, int kind, const char *close) {
    jj_node *n = node(P, kind);
    nlist items = {0}, vals = {0};
    if (!n) return NULL;
    while (!accept_op(P, close)) {
        if (items.n && expect_op(P, ",") != 0) return NULL;
        if (accept_op(P, close)) break;
        if (nl_push(P, &items, parse_expr(P)) != 0) return NULL;
        if (kind == N_DICT && (expect_op(P, ":") != 0 || nl_push(P, &vals, parse_expr(P)) != 0)) return NULL;
    }
    n->list = items.p;
    n->n = items.n;
    n->list2 = vals.p;
    n->n2 = vals.n;
    return n;
}

static jj_node *parse_primary(parser *P) {
    const jj_token *t = cur(P);
    if (t->kind == T_STRING) { /* adjacent literals concatenate */
        jj_buf b = {0};
        while (cur(P)->kind == T_STRING) {
            jj_buf_put(&b, cur(P)->s, cur(P)->n);
            advance(P);
        }
        jv v = jv_strn(P->a, b.p ? b.p : "", b.n);
        int bad = b.failed;
        free(b.p);
        if (bad || jv_oom(v)) { pfail(P, "template too large"); return NULL; }
        return lit_node(P, v);
    }
    if (t->kind == T_INT) { advance(P); return lit_node(P, jv_int(t->i)); }
    if (t->kind == T_FLOAT) { advance(P); return lit_node(P, jv_float(t->f)); }
    if (t->kind == T_NAME) {
        advance(P);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) return lit_node(P, jv_bool(1));
        if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) return lit_node(P, jv_bool(0));
        if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) return lit_node(P, jv_none());
        jj_node *n = node(P, N_NAME);
        if (n) n->name = t->s;
        if (!strcmp(t->s, "varargs")) P->uses_varargs = 1;
        if (!strcmp(t->s, "kwargs")) P->uses_kwargs = 1;
        return n;
    }
    if (accept_op(P, "(")) {
        if (accept_op(P, ")")) return node(P, N_TUPLE); /* () */
        jj_node *e = parse_expr(P);
        if (!e) return NULL;
        if (accept_op(P, ")")) return e;
        jj_node *tup = node(P, N_TUPLE);
        nlist items = {0};
        if (!tup || nl_push(P, &items, e) != 0) return NULL;
        while (accept_op(P, ",")) {
            if (is_op(P, ")")) break;
            if (nl_push(P, &items, parse_expr(P)) != 0) return NULL;
        }
        if (expect_op(P, ")") != 0) return NULL;
        tup->list = items.p;
        tup->n = items.n;
        return tup;
    }
    if (accept_op(P, "[")) return parse_seq(P, N_LIST, "]");
    if (accept_op(P, "{")) return parse_seq(P, N_DICT, "}");
    pfail(P, t->kind == T_VAR_END || t->kind == T_BLOCK_END ? "expected an expression" : "unexpected token");
    return NULL;
}

static jj_node *parse_unary(parser *P, int with_filter) {
    if (++P->nest > MAX_NEST) { pfail(P, "expression nested too deeply"); return NULL; }
    jj_node *n;
    if (is_op(P, "-") || is_op(P, "+")) {
        int neg = is_op(P, "-");
        advance(P);
        n = node(P, neg ? N_NEG : N_POS);
        if (n && !(n->a = parse_unary(P, 0))) n = NULL;
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (with_filter) n = parse_filter_test(P, n);
    P->nest--;
    return n;
}

static jj_node *binop(parser *P, int kind, int op, jj_node *l, jj_node *r) {
    if (!l || !r) return NULL;
    jj_node *n = node(P, kind);
    if (!n) return NULL;
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}

static jj_node *parse_pow(parser *P) {
    jj_node *l = parse_unary(P, 1);
    while (l && accept_op(P, "**")) l = binop(P, N_BINOP, OP_POW, l, parse_unary(P, 1));
    return l;
}

static jj_node *parse_mul(parser *P) {
    jj_node *l = parse_pow(P);
    for (;;) {
        int op = is_op(P, "*") ? '*' : is_op(P, "/") ? '/' : is_op(P, "//") ? OP_FLOORDIV : is_op(P, "%") ? '%' : 0;
        if (!op || !l) return l;
        advance(P);
        l = binop(P, N_BINOP, op, l, parse_pow(P));
    }
}

static jj_node *parse_concat(parser *P) {
    jj_node *l = parse_mul(P);
    while (l && accept_op(P, "~")) l = binop(P, N_BINOP, '~', l, parse_mul(P));
    return l;
}

static jj_node *parse_add(parser *P) {
    jj_node *l = parse_concat(P);
    for (;;) {
        int op = is_op(P, "+") ? '+' : is_op(P, "-") ? '-' : 0;
        if (!op || !l) return l;
        advance(P);
        l = binop(P, N_BINOP, op, l, parse_concat(P));
    }
}

/* a < b < c is (a < b) and (b < c), as in Python (b is evaluated twice). */
static jj_node *parse_compare(parser *P) {
    jj_node *l = parse_add(P), *last = NULL;
    for (;;) {
        int op = is_op(P, "==") ? OP_EQ : is_op(P, "!=") ? OP_NE : is_op(P, "<=") ? OP_LE : is_op(P, ">=") ? OP_GE
               : is_op(P, "<") ? '<' : is_op(P, ">") ? '>' : is_name(P, "in") ? OP_IN
               : (is_name(P, "not") && is_name_at(P, 1, "in")) ? OP_NOTIN : 0;
        if (!op || !l) return l;
        advance(P);
        if (op == OP_NOTIN) advance(P);
        if (!last) {
            l = last = binop(P, N_CMP, op, l, parse_add(P));
        } else {
            jj_node *next = binop(P, N_CMP, op, last->b, parse_add(P));
            l = binop(P, N_AND, 0, l, next);
            last = next;
        }
    }
}

static jj_node *parse_not(parser *P) {
    if (is_name(P, "not")) {
        if (++P->nest > MAX_NEST) { pfail(P, "expression nested too deeply"); return NULL; }
        advance(P);
        jj_node *n = node(P, N_NOT);
        if (n && !(n->a = parse_not(P))) n = NULL;
        P->nest--;
        return n;
    }
    return parse_compare(P);
}

static jj_node *parse_and(parser *P) {
    jj_node *l = parse_not(P);
    while (l && is_name(P, "and")) {
        advance(P);
        l = binop(P, N_AND, 0, l, parse_not(P));
    }
    return l;
}

static jj_node *parse_or(parser *P) {
    jj_node *l = parse_and(P);
    while (l && is_name(P, "or")) {
        advance(P);
        l = binop(P, N_OR, 0, l, parse_and(P));
    }
    return l;
}

static jj_node *parse_expr(parser *P) {
    if (++P->nest > MAX_NEST) { pfail(P, "expression nested too deeply"); return NULL; }
    jj_node *n = parse_or(P);
    while (n && is_name(P, "if")) {
        advance(P);
        jj_node *c = node(P, N_COND);
        if (!c) return NULL;
        c->a = n;
        if (!(c->b = parse_or(P))) return NULL;
        if (is_name(P, "else")) {
            advance(P);
            if (!(c->c = parse_expr(P))) return NULL;
        }
        n = c;
    }
    P->nest--;
    return n;
}

/* expr [, expr ...] as a tuple when there is a comma (for `set a = 1, 2` and `for x in a, b`). */
static jj_node *parse_tuple_expr(parser *P) {
    jj_node *e = parse_expr(P);
    if (!e || !is_op(P, ",")) return e;
    jj_node *tup = node(P, N_TUPLE);
    nlist items = {0};
    if (!tup || nl_push(P, &items, e) != 0) return NULL;
    while (accept_op(P, ",")) {
        if (cur(P)->kind == T_BLOCK_END) break;
        if (nl_push(P, &items, parse_expr(P)) != 0) return NULL;
    }
    tup->list = items.p;
    tup->n = items.n;
    return tup;
}

/* ---- statements ---- */

static int parse_body(parser *P, nlist *body, const char *const *ends, const char **which);

static int expect_block_end(parser *P) {
    if (cur(P)->kind != T_BLOCK_END) return pfail(P, "expected '%}'");
    advance(P);
    return 0;
}

/* Parses a body until one of ends; leaves *which = the end keyword met (its tag consumed up to the keyword). */
static int body_until(parser *P, nlist *body, const char *const *ends, const char **which) {
    if (++P->nest > MAX_NEST) return pfail(P, "statements nested too deeply");
    int rc = parse_body(P, body, ends, which);
    P->nest--;
    return rc;
}

static jj_node *parse_if(parser *P) {
    jj_node *n = node(P, N_IF);
    if (!n || !(n->a = parse_expr(P)) || expect_block_end(P) != 0) return NULL;
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    nlist body = {0}, els = {0};
    const char *which;
    if (body_until(P, &body, ends, &which) != 0) return NULL;
    n->list = body.p;
    n->n = body.n;
    if (!strcmp(which, "elif")) {
        if (nl_push(P, &els, parse_if(P)) != 0) return NULL; /* consumes through endif */
    } else if (!strcmp(which, "else")) {
        static const char *const ends2[] = {"endif", NULL};
        if (expect_block_end(P) != 0 || body_until(P, &els, ends2, &which) != 0 || expect_block_end(P) != 0)
            return NULL;
    } else if (expect_block_end(P) != 0) {
        return NULL;
    }
    n->list2 = els.p;
    n->n2 = els.n;
    return n;
}

static int parse_targets(parser *P, slist *names) {
    int paren = accept_op(P, "(");
    do {
        const char *nm = expect_name(P);
        if (!nm || sl_push(P, names, nm) != 0) return -1;
    } while (accept_op(P, ","));
    if (paren && expect_op(P, ")") != 0) return -1;
    return 0;
}

static jj_node *parse_for(parser *P) {
    jj_node *n = node(P, N_FOR);
    slist names = {0};
    if (!n || parse_targets(P, &names) != 0) return NULL;
    n->names = names.p;
    n->n_names = names.n;
    if (!is_name(P, "in")) { pfail(P, "expected 'in'"); return NULL; }
    advance(P);
    /* the iterable: no conditional expression here, `if` starts the loop filter */
    if (!(n->a = parse_or(P))) return NULL;
    if (is_name(P, "if")) {
        advance(P);
        if (!(n->b = parse_expr(P))) return NULL;
    }
    if (is_name(P, "recursive")) { pfail(P, "recursive loops are not supported"); return NULL; }
    if (expect_block_end(P) != 0) return NULL;
    static const char *const ends[] = {"else", "endfor", NULL};
    nlist body = {0}, els = {0};
    const char *which;
    if (body_until(P, &body, ends, &which) != 0 || expect_block_end(P) != 0) return NULL;
    if (!strcmp(which, "else")) {
        static const char *const ends2[] = {"endfor", NULL};
        if (body_until(P, &els, ends2, &which) != 0 || expect_block_end(P) != 0) return NULL;
    }
    n->list = body.p;
    n->n = body.n;
    n->list2 = els.p;
    n->n2 = els.n;
    return n;
}

static jj_node *parse_set(parser *P) {
    jj_node *n = node(P, N_SET);
    if (!n) return NULL;
    slist names = {0};
    const char *first = expect_name(P);
    if (!first) return NULL;
    if (accept_op(P, ".")) {
        n->name = first;
        if (!(n->name2 = expect_name(P))) return NULL;
    } else {
        if (sl_push(P, &names, first) != 0) return NULL;
        while (accept_op(P, ","))
            if (sl_push(P, &names, expect_name(P)) != 0 || !names.p[names.n - 1]) return NULL;
    }
    n->names = names.p;
    n->n_names = names.n;
    if (accept_op(P, "=")) {
        if (!(n->a = parse_tuple_expr(P)) || expect_block_end(P) != 0) return NULL;
        return n;
    }
    if (n->name2 || names.n != 1) { pfail(P, "expected '='"); return NULL; }
    n->kind = N_SETBLOCK;
    n->name = first;
    jj_node *ph = node(P, N_LIT); /* placeholder the optional filters apply to */
    if (!ph) return NULL;
    ph->lit = jv_undef("");
    n->b = parse_filter_test(P, ph);
    if (!n->b || expect_block_end(P) != 0) return NULL;
    static const char *const ends[] = {"endset", NULL};
    nlist body = {0};
    const char *which;
    if (body_until(P, &body, ends, &which) != 0 || expect_block_end(P) != 0) return NULL;
    n->list = body.p;
    n->n = body.n;
    return n;
}

/* (a, b=default, ...) of a macro or a call block's caller. */
static int parse_params(parser *P, jj_node *n) {
    slist names = {0};
    nlist defs = {0};
    if (accept_op(P, "(")) {
        while (!accept_op(P, ")")) {
            if (names.n && expect_op(P, ",") != 0) return -1;
            const char *nm = expect_name(P);
            if (!nm || sl_push(P, &names, nm) != 0) return -1;
            if (accept_op(P, "=")) {
                if (nl_push(P, &defs, parse_expr(P)) != 0) return -1;
            } else if (defs.n) {
                return pfail(P, "non-default argument follows default argument");
            }
        }
    }
    n->names = names.p;
    n->n_names = names.n;
    n->list2 = defs.p;
    n->n2 = defs.n;
    return 0;
}

static jj_node *parse_macro(parser *P) {
    jj_node *n = node(P, N_MACRO);
    if (!n || !(n->name = expect_name(P)) || parse_params(P, n) != 0 || expect_block_end(P) != 0) return NULL;
    static const char *const ends[] = {"endmacro", NULL};
    nlist body = {0};
    const char *which;
    int outer_va = P->uses_varargs, outer_kw = P->uses_kwargs;
    P->uses_varargs = P->uses_kwargs = 0;
    if (body_until(P, &body, ends, &which) != 0) return NULL;
    n->op = (P->uses_varargs ? 1 : 0) | (P->uses_kwargs ? 2 : 0); /* extra arguments are accepted */
    P->uses_varargs = outer_va;
    P->uses_kwargs = outer_kw;
    if (cur(P)->kind == T_NAME) advance(P); /* {% endmacro name %} */
    if (expect_block_end(P) != 0) return NULL;
    n->list = body.p;
    n->n = body.n;
    return n;
}

static jj_node *parse_callblock(parser *P) {
    jj_node *n = node(P, N_CALLBLOCK);
    if (!n) return NULL;
    if (is_op(P, "(") && parse_params(P, n) != 0) return NULL;
    n->a = parse_expr(P);
    if (!n->a || n->a->kind != N_CALL) { pfail(P, "expected a macro call"); return NULL; }
    if (expect_block_end(P) != 0) return NULL;
    static const char *const ends[] = {"endcall", NULL};
    nlist body = {0};
    const char *which;
    if (body_until(P, &body, ends, &which) != 0 || expect_block_end(P) != 0) return NULL;
    n->list = body.p;
    n->n = body.n;
    return n;
}

static jj_node *parse_filterblock(parser *P) {
    jj_node *n = node(P, N_FILTERBLOCK), *ph = node(P, N_LIT);
    if (!n || !ph) return NULL;
    ph->lit = jv_undef("");
    n->b = parse_one_filter(P, ph);
    while (n->b && accept_op(P, "|")) n->b = parse_one_filter(P, n->b);
    if (!n->b || expect_block_end(P) != 0) return NULL;
    static const char *const ends[] = {"endfilter", NULL};
    nlist body = {0};
    const char *which;
    if (body_until(P, &body, ends, &which) != 0 || expect_block_end(P) != 0) return NULL;
    n->list = body.p;
    n->n = body.n;
    return n;
}

/* {% with a = 1, b = x %} body {% endwith %}: a scope of its own. */
static jj_node *parse_with(parser *P) {
    jj_node *n = node(P, N_WITH);
    slist names = {0};
    nlist vals = {0}, body = {0};
    if (!n) return NULL;
    while (cur(P)->kind != T_BLOCK_END) {
        if (names.n && expect_op(P, ",") != 0) return NULL;
        const char *nm = expect_name(P);
        if (!nm || sl_push(P, &names, nm) != 0 || expect_op(P, "=") != 0 || nl_push(P, &vals, parse_expr(P)) != 0)
            return NULL;
    }
    static const char *const ends[] = {"endwith", NULL};
    const char *which;
    if (expect_block_end(P) != 0 || body_until(P, &body, ends, &which) != 0 || expect_block_end(P) != 0) return NULL;
    n->names = names.p;
    n->n_names = names.n;
    n->list2 = vals.p;
    n->n2 = vals.n;
    n->list = body.p;
    n->n = body.n;
    return n;
}

/* One {% ... %} statement; P is past the keyword. */
static jj_node *parse_stmt(parser *P, const char *kw) {
    if (!strcmp(kw, "if")) return parse_if(P);
    if (!strcmp(kw, "for")) return parse_for(P);
    if (!strcmp(kw, "set")) return parse_set(P);
    if (!strcmp(kw, "macro")) return parse_macro(P);
    if (!strcmp(kw, "call")) return parse_callblock(P);
    if (!strcmp(kw, "filter")) return parse_filterblock(P);
    if (!strcmp(kw, "with")) return parse_with(P);
    if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        jj_node *n = node(P, kw[0] == 'b' ? N_BREAK : N_CONTINUE);
        if (!n || expect_block_end(P) != 0) return NULL;
        return n;
    }
    if (!strcmp(kw, "generation")) { /* HF's AssistantTracker: the body renders as is */
        jj_node *n = node(P, N_BODY);
        static const char *const ends[] = {"endgeneration", NULL};
        nlist body = {0};
        const char *which;
        if (!n || expect_block_end(P) != 0 || body_until(P, &body, ends, &which) != 0 || expect_block_end(P) != 0)
            return NULL;
        n->list = body.p;
        n->n = body.n;
        return n;
    }
    char m[96];
    snprintf(m, sizeof m, "unknown tag '%.40s'", kw);
    P->i--;
    pfail(P, m);
    return NULL;
}

static int parse_body(parser *P, nlist *body, const char *const *ends, const char **which) {
    for (;;) {
        const jj_token *t = cur(P);
        if (t->kind == T_EOF) {
            if (!ends) return 0;
            char m[96];
            snprintf(m, sizeof m, "unexpected end of template, expected '%s'", ends[0]);
            return pfail(P, m);
        }
        if (t->kind == T_TEXT) {
            jj_node *n = node(P, N_TEXT);
            if (!n) return pfail(P, "template too large");
            n->lit = (jv){JV_UNDEF, 0, {0}};
            n->name = t->s;
            n->lit.u.i = (int64_t)t->n;
            advance(P);
            if (nl_push(P, body, n) != 0) return -1;
        } else if (t->kind == T_VAR_BEGIN) {
            advance(P);
            jj_node *n = node(P, N_EMIT);
            if (!n || !(n->a = parse_expr(P))) return -1;
            if (cur(P)->kind != T_VAR_END) return pfail(P, "expected '}}'");
            advance(P);
            if (nl_push(P, body, n) != 0) return -1;
        } else if (t->kind == T_BLOCK_BEGIN) {
            advance(P);
            if (cur(P)->kind != T_NAME) return pfail(P, "expected a statement name");
            const char *kw = cur(P)->s;
            for (size_t k = 0; ends && ends[k]; k++)
                if (!strcmp(kw, ends[k])) {
                    *which = ends[k];
                    advance(P);
                    return 0;
                }
            advance(P);
            if (nl_push(P, body, parse_stmt(P, kw)) != 0) return -1;
        } else {
            return pfail(P, "unexpected token");
        }
    }
}

int jj_parse(jj_arena *a, const jj_token *toks, size_t n_toks, jj_node **root, char *err, size_t errlen) {
    parser P = {a, toks, n_toks, 0, 0, 0, 0, err, errlen};
    nlist body = {0};
    if (parse_body(&P, &body, NULL, NULL) != 0) return -1;
    jj_node *n = node(&P, N_BODY);
    if (!n) return ck_err(err, errlen, "template too large");
    n->list = body.p;
    n->n = body.n;
    *root = n;
    return 0;
}
