/* eval.c — walks the AST: expressions to values (Python semantics for arithmetic, comparison, `in`,
 * `and`/`or` returning an operand, Jinja's attribute-then-item lookup and its Undefined), statements to
 * text (if, for with `loop`, set, namespaces, macros and call blocks, block set, filter blocks,
 * break/continue), and the public ck_jinja_parse/ck_jinja_render.
 * Scoping as Jinja: a for-loop body and a macro body get their own frame (a `set` inside does not leak
 * out; namespaces exist for that), `if` does not. A macro sees the frame it was defined in.
 * Invariants: every loop iteration and macro call counts against max_steps, every nested evaluation
 * against max_depth, every buffer against max_output_bytes and every value against max_memory_bytes, so
 * a render always ends; every error message starts with "template line N: " except a template's own
 * raise_exception message, which is passed through unchanged. */
#include "base/err.h"
#include "jinja/jinja_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ck_jinja {
    jj_arena arena; /* tokens and nodes */
    jj_node *root;
};

int jj_fail(jj_ctx *c, const char *fmt, ...) {
    if (!c->err || !c->errlen) return -1;
    int k = snprintf(c->err, c->errlen, "template line %d: ", c->line);
    if (k < 0 || (size_t)k >= c->errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

int jj_fail_oom(jj_ctx *c) {
    if (c->arena->failed) return jj_fail(c, "the template uses too much memory");
    return jj_fail(c, "the output is too large or memory ran out");
}

static int undef_fail(jj_ctx *c, jv v) {
    if (v.u.name && v.u.name[0]) return jj_fail(c, "'%s' is undefined", v.u.name);
    return jj_fail(c, "a value is undefined");
}

/* ---- frames ---- */

static jj_frame *frame_new(jj_ctx *c, jj_frame *parent) {
    jj_frame *f = jj_alloc(c->arena, sizeof *f);
    jj_dict *d = jj_alloc(c->arena, sizeof *d);
    if (!f || !d) return NULL;
    f->parent = parent;
    f->vars = d;
    return f;
}

static const jv *frame_lookup(const jj_frame *f, const char *name) {
    for (; f; f = f->parent) {
        const jv *v = jj_dict_gets(f->vars, name);
        if (v) return v;
    }
    return NULL;
}

static int frame_set(jj_ctx *c, jj_frame *f, const char *name, jv v) {
    jv k = jv_str(c->arena, name);
    if (jv_oom(k) || jj_dict_set(c->arena, f->vars, k, v) != 0) return jj_fail_oom(c);
    return 0;
}

static const struct { const char *name; int fn; } BUILTINS[] = {
    {"range", JF_RANGE}, {"namespace", JF_NAMESPACE}, {"raise_exception", JF_RAISE},
    {"strftime_now", JF_STRFTIME}, {"dict", JF_DICT}, {NULL, 0}};

static int lookup_name(jj_ctx *c, jj_frame *f, const char *name, jv *out) {
    (void)c;
    const jv *v = frame_lookup(f, name);
    if (v) {
        *out = *v;
        return 0;
    }
    for (int i = 0; BUILTINS[i].name; i++)
        if (!strcmp(BUILTINS[i].name, name)) {
            *out = (jv){JV_FUNC, 0, {.fn = BUILTINS[i].fn}};
            return 0;
        }
    *out = jv_undef(name);
    return 0;
}

/* ---- attribute and item access ---- */

/* Index of code point k (may be negative, Python style) in s as a byte range; -1 when out of range. */
static int str_index(const jj_str *s, int64_t k, size_t *at, size_t *len) {
    size_t n = jj_utf8_len(s->p, s->n);
    if (k < 0) k += (int64_t)n;
    if (k < 0 || (uint64_t)k >= n) return -1;
    size_t p = 0;
    for (int64_t i = 0; i < k; i++) p += jj_utf8_next(s->p + p, s->n - p);
    *at = p;
    *len = jj_utf8_next(s->p + p, s->n - p);
    return 0;
}

int jj_getitem(jj_ctx *c, jv obj, jv key, jv *out) {
    if (obj.k == JV_UNDEF) return undef_fail(c, obj);
    if (obj.k == JV_DICT) {
        const jv *v = jj_dict_get(obj.u.d, key);
        *out = v ? *v : jv_undef(key.k == JV_STR ? key.u.s->p : NULL);
        if (!v && key.k != JV_STR) *out = jv_undef("item");
        return 0;
    }
    if (obj.k == JV_LIST && (obj.flags & JVF_GEN)) { /* Jinja: a failed subscript is undefined */
        *out = jv_undef("item");
        return 0;
    }
    if ((obj.k == JV_LIST || obj.k == JV_STR) && (key.k == JV_INT || key.k == JV_BOOL)) {
        int64_t k = key.u.i;
        if (obj.k == JV_LIST) {
            if (k < 0) k += (int64_t)obj.u.l->n;
            *out = (k >= 0 && (uint64_t)k < obj.u.l->n) ? obj.u.l->a[k] : jv_undef("index");
            return 0;
        }
        size_t at, len;
        if (str_index(obj.u.s, k, &at, &len) != 0) {
            *out = jv_undef("index");
            return 0;
        }
        *out = jv_strn(c->arena, obj.u.s->p + at, len);
        return jv_oom(*out) ? jj_fail_oom(c) : 0;
    }
    if (key.k == JV_STR) return jj_getattr(c, obj, key.u.s->p, out);
    *out = jv_undef("item");
    return 0;
}

int jj_getattr(jj_ctx *c, jv obj, const char *name, jv *out) {
    if (obj.k == JV_UNDEF) return undef_fail(c, obj);
    if (obj.k == JV_DICT) {
        const jv *v = jj_dict_gets(obj.u.d, name);
        *out = v ? *v : jv_undef(name);
        return 0;
    }
    *out = jv_undef(name);
    return 0;
}

/* ---- arithmetic ---- */

static int type_error(jj_ctx *c, const char *op, jv a, jv b) {
    if (a.k == JV_UNDEF) return undef_fail(c, a);
    if (b.k == JV_UNDEF) return undef_fail(c, b);
    return jj_fail(c, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
}

static int concat_str(jj_ctx *c, jv a, jv b, jv *out) {
    jj_buf buf = {0};
    buf.max_bytes = c->lim->max_output_bytes;
    int rc = jv_write_str(&buf, a) | jv_write_str(&buf, b);
    if (rc == 0) *out = jv_strn(c->arena, buf.p ? buf.p : "", buf.n);
    free(buf.p);
    return (rc || jv_oom(*out)) ? jj_fail_oom(c) : 0;
}

static int concat_list(jj_ctx *c, jv a, jv b, int64_t times, jv *out) {
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    for (int64_t t = 0; t < times; t++) {
        for (size_t i = 0; i < a.u.l->n; i++)
            if (jj_list_push(c->arena, out->u.l, a.u.l->a[i]) != 0) return jj_fail_oom(c);
        if (b.k == JV_LIST)
            for (size_t i = 0; i < b.u.l->n; i++)
                if (jj_list_push(c->arena, out->u.l, b.u.l->a[i]) != 0) return jj_fail_oom(c);
    }
    return 0;
}

static int repeat_str(jj_ctx *c, const jj_str *s, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (s->n && (uint64_t)times > c->lim->max_output_bytes / s->n) return jj_fail(c, "string repetition too large");
    jj_buf b = {0};
    int rc = 0;
    for (int64_t t = 0; t < times && !rc; t++) rc = jj_buf_put(&b, s->p, s->n);
    if (!rc) *out = jv_strn(c->arena, b.p ? b.p : "", b.n);
    free(b.p);
    return (rc || jv_oom(*out)) ? jj_fail_oom(c) : 0;
}

static int int_op(jj_ctx *c, int op, int64_t x, int64_t y, jv *out) {
    int64_t r = 0;
    int ovf = 0;
    switch (op) {
    case '+': ovf = __builtin_add_overflow(x, y, &r); break;
    case '-': ovf = __builtin_sub_overflow(x, y, &r); break;
    case '*': ovf = __builtin_mul_overflow(x, y, &r); break;
    case OP_FLOORDIV:
    case '%':
        if (y == 0) return jj_fail(c, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) { ovf = 1; break; }
        r = op == '%' ? x % y : x / y;
        if (op == '%' && r != 0 && ((r < 0) != (y < 0))) r += y;
        if (op == OP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0))) r--;
        break;
    case OP_POW:
        if (y < 0) { *out = jv_float(pow((double)x, (double)y)); return 0; }
        r = 1;
        for (int64_t i = 0; i < y && !ovf; i++) ovf = __builtin_mul_overflow(r, x, &r);
        break;
    }
    if (ovf) return jj_fail(c, "integer overflow");
    *out = jv_int(r);
    return 0;
}

int jj_str_format(jj_ctx *c, jv fmt, jv args, jv *out); /* methods.c: Python's str % args */

static int binop(jj_ctx *c, int op, jv a, jv b, jv *out) {
    if (op == '~') return concat_str(c, a, b, out);
    static const char *names[] = {"+", "-", "*", "/", "//", "%", "**"};
    const char *opname = op == '+' ? names[0] : op == '-' ? names[1] : op == '*' ? names[2] : op == '/' ? names[3]
                       : op == OP_FLOORDIV ? names[4] : op == '%' ? names[5] : names[6];
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT && op != '/') return int_op(c, op, a.u.i, b.u.i, out);
        double x = jv_num(a), y = jv_num(b), r;
        switch (op) {
        case '+': r = x + y; break;
        case '-': r = x - y; break;
        case '*': r = x * y; break;
        case '/':
            if (y == 0) return jj_fail(c, "division by zero");
            r = x / y;
            break;
        case OP_FLOORDIV:
            if (y == 0) return jj_fail(c, "float floor division by zero");
            r = floor(x / y);
            break;
        case '%':
            if (y == 0) return jj_fail(c, "float modulo");
            r = fmod(x, y);
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            break;
        default: r = pow(x, y); break;
        }
        *out = jv_float(r);
        return 0;
    }
    if (op == '+' && a.k == JV_STR && b.k == JV_STR) {
        if (!((a.flags | b.flags) & JVF_MARKUP)) return concat_str(c, a, b, out);
        /* Markup + str escapes the plain str (what `"..."|safe + x` does in Jinja) */
        if ((!(a.flags & JVF_MARKUP) && jj_html_escape(c, a, &a) != 0) ||
            (!(b.flags & JVF_MARKUP) && jj_html_escape(c, b, &b) != 0) || concat_str(c, a, b, out) != 0)
            return -1;
        out->flags |= JVF_MARKUP;
        return 0;
    }
    if (op == '+' && a.k == JV_LIST && b.k == JV_LIST && !((a.flags | b.flags) & JVF_GEN) &&
        (a.flags & JVF_TUPLE) == (b.flags & JVF_TUPLE)) {
        if (concat_list(c, a, b, 1, out) != 0) return -1;
        out->flags |= a.flags & JVF_TUPLE;
        return 0;
    }
    if (op == '*' && a.k == JV_STR && (b.k == JV_INT || b.k == JV_BOOL)) return repeat_str(c, a.u.s, b.u.i, out);
    if (op == '*' && b.k == JV_STR && (a.k == JV_INT || a.k == JV_BOOL)) return repeat_str(c, b.u.s, a.u.i, out);
    if (op == '*' && b.k == JV_LIST && (a.k == JV_INT || a.k == JV_BOOL)) { jv t = a; a = b; b = t; }
    if (op == '*' && a.k == JV_LIST && (b.k == JV_INT || b.k == JV_BOOL)) {
        if (b.u.i > 0 && a.u.l->n && (uint64_t)b.u.i > c->lim->max_output_bytes / a.u.l->n)
            return jj_fail(c, "list repetition too large");
        if (concat_list(c, a, jv_none(), b.u.i, out) != 0) return -1;
        out->flags |= a.flags & JVF_TUPLE;
        return 0;
    }
    if (op == '%' && a.k == JV_STR) return jj_str_format(c, a, b, out);
    if (op == '+' && a.k == JV_STR && b.k != JV_UNDEF)
        return jj_fail(c, "can only concatenate str (not \"%s\") to str", jv_type_name(b));
    return type_error(c, opname, a, b);
}

static int contains(jj_ctx *c, jv hay, jv needle, int *out) {
    switch (hay.k) {
    case JV_UNDEF: *out = 0; return 0;
    case JV_STR:
        if (needle.k != JV_STR)
            return jj_fail(c, "'in <string>' requires string as left operand, not %s", jv_type_name(needle));
        *out = needle.u.s->n == 0 || (needle.u.s->n <= hay.u.s->n &&
                                      memmem(hay.u.s->p, hay.u.s->n, needle.u.s->p, needle.u.s->n) != NULL);
        return 0;
    case JV_LIST:
        *out = 0;
        for (size_t i = 0; i < hay.u.l->n && !*out; i++) *out = jv_eq(hay.u.l->a[i], needle);
        return 0;
    case JV_DICT:
        if (!jv_hashable(needle)) return jj_fail(c, "unhashable type: '%s'", jv_type_name(needle));
        *out = jj_dict_get(hay.u.d, needle) != NULL;
        return 0;
    default: return jj_fail(c, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static int compare(jj_ctx *c, int op, jv a, jv b, jv *out) {
    int r = 0;
    if (op == OP_EQ || op == OP_NE) {
        r = jv_eq(a, b);
        *out = jv_bool(op == OP_EQ ? r : !r);
        return 0;
    }
    if (op == OP_IN || op == OP_NOTIN) {
        if (contains(c, b, a, &r) != 0) return -1;
        *out = jv_bool(op == OP_IN ? r : !r);
        return 0;
    }
    int cmp;
    const char *sym = op == '<' ? "<" : op == '>' ? ">" : op == OP_LE ? "<=" : ">=";
    if (jv_cmp(a, b, &cmp) != 0) {
        if (a.k == JV_UNDEF) return undef_fail(c, a);
        if (b.k == JV_UNDEF) return undef_fail(c, b);
        return jj_fail(c, "'%s' not supported between instances of '%s' and '%s'", sym, jv_type_name(a),
                       jv_type_name(b));
    }
    if (cmp == 2) r = 0; /* NaN */
    else r = op == '<' ? cmp < 0 : op == '>' ? cmp > 0 : op == OP_LE ? cmp <= 0 : cmp >= 0;
    *out = jv_bool(r);
    return 0;
}

/* ---- calls ---- */

typedef struct argv_ {
    jv *pos;
    size_t n_pos;
    jv *kw;
} argv_;

static int eval_args(jj_ctx *c, jj_frame *f, const jj_node *n, argv_ *a) {
    a->pos = jj_alloc(c->arena, (n->n + 1) * sizeof(jv));
    a->kw = jj_alloc(c->arena, (n->n2 + 1) * sizeof(jv));
    if (!a->pos || !a->kw) return jj_fail_oom(c);
    a->n_pos = n->n;
    for (size_t i = 0; i < n->n; i++)
        if (jj_eval(c, f, n->list[i], &a->pos[i]) != 0) return -1;
    for (size_t i = 0; i < n->n2; i++)
        if (jj_eval(c, f, n->list2[i], &a->kw[i]) != 0) return -1;
    return 0;
}

/* Binds a macro's parameters in fr: positional, keyword, defaults; extras into varargs / kwargs when the
 * body names them (d->op), else an error as Jinja's. */
static int bind_params(jj_ctx *c, const jj_node *d, jj_frame *fr, const jv *args, size_t n_args,
                       const char *const *kw_names, const jv *kw_vals, size_t n_kw) {
    const char *mname = d->name ? d->name : "caller";
    int is_macro = d->kind == N_MACRO;
    jv va = jv_list_new(c->arena), kw = jv_dict_new(c->arena);
    if (jv_oom(va) || jv_oom(kw)) return jj_fail_oom(c);
    va.flags |= JVF_TUPLE; /* varargs is a tuple */
    if (n_args > d->n_names && !(is_macro && (d->op & 1)))
        return jj_fail(c, "macro '%s' takes not more than %zu argument(s)", mname, d->n_names);
    for (size_t i = d->n_names; i < n_args; i++)
        if (jj_list_push(c->arena, va.u.l, args[i]) != 0) return jj_fail_oom(c);
    /* every parameter is local from the start: a default naming one not bound yet sees undefined */
    uint8_t *bound = jj_alloc(c->arena, d->n_names + 1);
    if (!bound) return jj_fail_oom(c);
    for (size_t i = 0; i < d->n_names; i++) {
        bound[i] = i < n_args;
        if (frame_set(c, fr, d->names[i], i < n_args ? args[i] : jv_undef(d->names[i])) != 0) return -1;
    }
    for (size_t k = 0; k < n_kw; k++) {
        size_t i = 0;
        while (i < d->n_names && strcmp(d->names[i], kw_names[k])) i++;
        if (i < d->n_names) {
            bound[i] = 1;
            if (frame_set(c, fr, kw_names[k], kw_vals[k]) != 0) return -1;
            continue;
        }
        if (!(is_macro && (d->op & 2))) return jj_fail(c, "macro '%s' takes no keyword argument '%s'", mname, kw_names[k]);
        jv key = jv_str(c->arena, kw_names[k]);
        if (jv_oom(key) || jj_dict_set(c->arena, kw.u.d, key, kw_vals[k]) != 0) return jj_fail_oom(c);
    }
    size_t first_default = d->n_names - d->n2;
    for (size_t i = first_default; i < d->n_names; i++) {
        jv v;
        if (bound[i]) continue;
        if (jj_eval(c, fr, d->list2[i - first_default], &v) != 0 || frame_set(c, fr, d->names[i], v) != 0) return -1;
    }
    if (is_macro && (d->op & 1) && frame_set(c, fr, "varargs", va) != 0) return -1;
    if (is_macro && (d->op & 2) && frame_set(c, fr, "kwargs", kw) != 0) return -1;
    return 0;
}

static int call_macro(jj_ctx *c, const jj_macro *m, const jv *args, size_t n_args, const char *const *kw_names,
                      const jv *kw_vals, size_t n_kw, jv caller, jv *out) {
    const jj_node *d = m->def;
    if (++c->steps > c->lim->max_steps) return jj_fail(c, "too many loop iterations or macro calls");
    if (c->depth + 10 > c->lim->max_depth) return jj_fail(c, "macro calls nested too deeply");
    jj_frame *fr = frame_new(c, m->closure);
    if (!fr) return jj_fail_oom(c);
    if (bind_params(c, d, fr, args, n_args, kw_names, kw_vals, n_kw) != 0) return -1;
    if (caller.k != JV_UNDEF && frame_set(c, fr, "caller", caller) != 0) return -1;
    jj_buf buf = {0}, *saved = c->out;
    buf.max_bytes = c->lim->max_output_bytes;
    c->out = &buf;
    c->depth += 10;
    int rc = jj_exec_body(c, fr, d->list, d->n);
    c->depth -= 10;
    c->out = saved;
    if (rc == 0) {
        *out = jv_strn(c->arena, buf.p ? buf.p : "", buf.n);
        if (jv_oom(*out)) rc = jj_fail_oom(c);
    } else if (rc > 0) {
        rc = jj_fail(c, "break or continue outside a loop");
    }
    free(buf.p);
    return rc;
}

int jj_call_value(jj_ctx *c, jv callee, const jv *args, size_t n_args, const char *const *kw_names,
                  const jv *kw_vals, size_t n_kw, jv *out) {
    if (callee.k == JV_MACRO)
        return call_macro(c, callee.u.m, args, n_args, kw_names, kw_vals, n_kw, callee.u.m->caller, out);
    if (callee.k == JV_FUNC) return jj_call_func(c, callee.u.fn, args, n_args, kw_names, kw_vals, n_kw, out);
    if (callee.k == JV_UNDEF) return undef_fail(c, callee);
    return jj_fail(c, "'%s' object is not callable", jv_type_name(callee));
}

static int eval_call(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out) {
    argv_ a;
    if (n->a->kind == N_ATTR) { /* obj.method(...) */
        jv obj;
        if (jj_eval(c, f, n->a->a, &obj) != 0) return -1;
        if (obj.k == JV_UNDEF) return undef_fail(c, obj);
        if (eval_args(c, f, n, &a) != 0) return -1;
        int handled = 0;
        if (obj.k == JV_STR || obj.k == JV_LIST || (obj.k == JV_DICT && !obj.u.d->ns)) {
            c->line = n->line;
            if (jj_call_method(c, obj, n->a->name, a.pos, a.n_pos, n->names, a.kw, n->n_names, out, &handled) != 0)
                return -1;
            if (handled) return 0;
        }
        jv fn;
        if (jj_getattr(c, obj, n->a->name, &fn) != 0) return -1;
        if (fn.k == JV_UNDEF)
            return jj_fail(c, "'%s' object has no attribute '%s'", jv_type_name(obj), n->a->name);
        c->line = n->line;
        return jj_call_value(c, fn, a.pos, a.n_pos, n->names, a.kw, n->n_names, out);
    }
    jv fn;
    if (jj_eval(c, f, n->a, &fn) != 0 || eval_args(c, f, n, &a) != 0) return -1;
    c->line = n->line;
    return jj_call_value(c, fn, a.pos, a.n_pos, n->names, a.kw, n->n_names, out);
}

/* ---- expressions ---- */

static int eval_seq(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out) {
    if (n->kind == N_DICT) {
        *out = jv_dict_new(c->arena);
        if (jv_oom(*out)) return jj_fail_oom(c);
        for (size_t i = 0; i < n->n; i++) {
            jv k, v;
            if (jj_eval(c, f, n->list[i], &k) != 0 || jj_eval(c, f, n->list2[i], &v) != 0) return -1;
            if (jj_dict_set(c->arena, out->u.d, k, v) != 0) return jj_fail_oom(c);
        }
        return 0;
    }
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    if (n->kind == N_TUPLE) out->flags |= JVF_TUPLE;
    for (size_t i = 0; i < n->n; i++) {
        jv v;
        if (jj_eval(c, f, n->list[i], &v) != 0) return -1;
        if (jj_list_push(c->arena, out->u.l, v) != 0) return jj_fail_oom(c);
    }
    return 0;
}

static int eval_filter(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out) {
    jv v;
    argv_ a;
    if (jj_eval(c, f, n->a, &v) != 0 || eval_args(c, f, n, &a) != 0) return -1;
    c->line = n->line;
    return jj_filter(c, f, n->name, v, a.pos, a.n_pos, n->names, a.kw, n->n_names, out);
}

static int eval_test(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out) {
    jv v;
    argv_ a;
    int r;
    if (jj_eval(c, f, n->a, &v) != 0 || eval_args(c, f, n, &a) != 0) return -1;
    c->line = n->line;
    if (jj_test(c, f, n->name, v, a.pos, a.n_pos, &r) != 0) return -1;
    *out = jv_bool(n->op ? !r : r);
    return 0;
}

static int eval_inner(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out) {
    jv a, b;
    switch (n->kind) {
    case N_LIT:
        *out = (n->lit.k == JV_UNDEF && n->lit.u.name && !n->lit.u.name[0]) ? c->placeholder : n->lit;
        return 0;
    case N_NAME: return lookup_name(c, f, n->name, out);
    case N_ATTR:
        if (jj_eval(c, f, n->a, &a) != 0) return -1;
        c->line = n->line;
        return jj_getattr(c, a, n->name, out);
    case N_ITEM:
        if (jj_eval(c, f, n->a, &a) != 0 || jj_eval(c, f, n->b, &b) != 0) return -1;
        c->line = n->line;
        return jj_getitem(c, a, b, out);
    case N_SLICE: {
        jv p[3] = {jv_none(), jv_none(), jv_none()};
        if (jj_eval(c, f, n->a, &a) != 0) return -1;
        for (int i = 0; i < 3; i++)
            if (n->list[i] && jj_eval(c, f, n->list[i], &p[i]) != 0) return -1;
        c->line = n->line;
        return jj_slice(c, a, p[0], p[1], p[2], out);
    }
    case N_CALL: return eval_call(c, f, n, out);
    case N_FILTER: return eval_filter(c, f, n, out);
    case N_TEST: return eval_test(c, f, n, out);
    case N_BINOP:
        if (jj_eval(c, f, n->a, &a) != 0 || jj_eval(c, f, n->b, &b) != 0) return -1;
        c->line = n->line;
        return binop(c, n->op, a, b, out);
    case N_CMP:
        if (jj_eval(c, f, n->a, &a) != 0 || jj_eval(c, f, n->b, &b) != 0) return -1;
        c->line = n->line;
        return compare(c, n->op, a, b, out);
    case N_NEG: case N_POS:
        if (jj_eval(c, f, n->a, &a) != 0) return -1;
        if (a.k == JV_FLOAT) *out = jv_float(n->kind == N_NEG ? -a.u.f : a.u.f);
        else if (a.k == JV_INT || a.k == JV_BOOL) {
            if (n->kind == N_NEG && a.u.i == INT64_MIN) return jj_fail(c, "integer overflow");
            *out = jv_int(n->kind == N_NEG ? -a.u.i : a.u.i);
        } else if (a.k == JV_UNDEF) return undef_fail(c, a);
        else return jj_fail(c, "bad operand type for unary %s: '%s'", n->kind == N_NEG ? "-" : "+", jv_type_name(a));
        return 0;
    case N_NOT:
        if (jj_eval(c, f, n->a, &a) != 0) return -1;
        *out = jv_bool(!jv_truthy(a));
        return 0;
    case N_AND: case N_OR:
        if (jj_eval(c, f, n->a, &a) != 0) return -1;
        if (jv_truthy(a) == (n->kind == N_OR)) { *out = a; return 0; }
        return jj_eval(c, f, n->b, out);
    case N_COND:
        if (jj_eval(c, f, n->b, &b) != 0) return -1;
        if (jv_truthy(b)) return jj_eval(c, f, n->a, out);
        if (n->c) return jj_eval(c, f, n->c, out);
        *out = jv_undef("conditional expression");
        return 0;
    case N_LIST: case N_TUPLE: case N_DICT: return eval_seq(c, f, n, out);
    default: return jj_fail(c, "not an expression");
    }
}

int jj_eval(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out) {
    if (++c->depth > c->lim->max_depth) return jj_fail(c, "expression nested too deeply");
    c->line = n->line;
    int rc = eval_inner(c, f, n, out);
    c->depth--;
    return rc;
}

/* ---- statements ---- */

static int emit(jj_ctx *c, jv v) {
    if (jv_write_str(c->out, v) != 0) return jj_fail_oom(c);
    return 0;
}

static jv loop_info(jj_ctx *c, const jj_list *items, size_t i) {
    jv d = jv_dict_new(c->arena);
    if (jv_oom(d)) return d;
    size_t n = items->n;
    struct { const char *k; jv v; } kv[] = {
        {"index", jv_int((int64_t)i + 1)}, {"index0", jv_int((int64_t)i)},
        {"revindex", jv_int((int64_t)(n - i))}, {"revindex0", jv_int((int64_t)(n - i - 1))},
        {"first", jv_bool(i == 0)}, {"last", jv_bool(i + 1 == n)}, {"length", jv_int((int64_t)n)},
        {"depth", jv_int(1)}, {"depth0", jv_int(0)},
        {"previtem", i > 0 ? items->a[i - 1] : jv_undef("previtem")},
        {"nextitem", i + 1 < n ? items->a[i + 1] : jv_undef("nextitem")}};
    for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++) {
        jv key = jv_str(c->arena, kv[k].k);
        if (jv_oom(key) || jj_dict_set(c->arena, d.u.d, key, kv[k].v) != 0) return jv_undef(NULL);
    }
    return d;
}

static int bind_targets(jj_ctx *c, jj_frame *f, const char *const *names, size_t n_names, jv v) {
    if (n_names == 1) return frame_set(c, f, names[0], v);
    if (v.k != JV_LIST) return jj_fail(c, "cannot unpack '%s' into %zu names", jv_type_name(v), n_names);
    if (v.u.l->n != n_names)
        return jj_fail(c, "cannot unpack %zu values into %zu names", v.u.l->n, n_names);
    for (size_t i = 0; i < n_names; i++)
        if (frame_set(c, f, names[i], v.u.l->a[i]) != 0) return -1;
    return 0;
}

static int exec_for(jj_ctx *c, jj_frame *f, const jj_node *n) {
    jv seq;
    jj_list *items;
    if (jj_eval(c, f, n->a, &seq) != 0) return -1;
    c->line = n->line;
    if (jj_iter_list(c, seq, &items) != 0) return -1;
    if (n->b) { /* loop filter: loop.* counts the kept items */
        jj_list *kept = jj_alloc(c->arena, sizeof *kept);
        if (!kept) return jj_fail_oom(c);
        for (size_t i = 0; i < items->n; i++) {
            jj_frame *fr = frame_new(c, f);
            jv ok;
            if (!fr) return jj_fail_oom(c);
            if (bind_targets(c, fr, n->names, n->n_names, items->a[i]) != 0 || jj_eval(c, fr, n->b, &ok) != 0)
                return -1;
            if (jv_truthy(ok) && jj_list_push(c->arena, kept, items->a[i]) != 0) return jj_fail_oom(c);
        }
        items = kept;
    }
    int completed = 0; /* Jinja runs the else block unless an iteration reached the end of the body */
    for (size_t i = 0; i < items->n; i++) {
        if (++c->steps > c->lim->max_steps) return jj_fail(c, "too many loop iterations or macro calls");
        jj_frame *fr = frame_new(c, f);
        if (!fr) return jj_fail_oom(c);
        jv info = loop_info(c, items, i);
        if (jv_oom(info) || frame_set(c, fr, "loop", info) != 0) return jj_fail_oom(c);
        if (bind_targets(c, fr, n->names, n->n_names, items->a[i]) != 0) return -1;
        int rc = jj_exec_body(c, fr, n->list, n->n);
        if (rc < 0) return -1;
        if (rc == 0) completed = 1;
        if (rc == JJ_BREAK) break;
    }
    if (!completed) return jj_exec_body(c, f, n->list2, n->n2); /* (break/continue skip the mark) */
    return 0;
}

static int exec_set(jj_ctx *c, jj_frame *f, const jj_node *n) {
    jv v;
    if (jj_eval(c, f, n->a, &v) != 0) return -1;
    c->line = n->line;
    if (!n->name2) return bind_targets(c, f, n->names, n->n_names, v);
    jv ns;
    lookup_name(c, f, n->name, &ns);
    if (ns.k != JV_DICT || !ns.u.d->ns) return jj_fail(c, "cannot assign attribute on non-namespace object");
    jv k = jv_str(c->arena, n->name2);
    if (jv_oom(k) || jj_dict_set(c->arena, ns.u.d, k, v) != 0) return jj_fail_oom(c);
    return 0;
}

/* Renders body into a string and applies the filter chain fchain (over the placeholder) to it. */
static int render_filtered(jj_ctx *c, jj_frame *f, const jj_node *n, jv *out) {
    jj_buf buf = {0}, *saved = c->out;
    buf.max_bytes = c->lim->max_output_bytes;
    c->out = &buf;
    int rc = jj_exec_body(c, f, n->list, n->n);
    c->out = saved;
    if (rc > 0) rc = jj_fail(c, "break or continue outside a loop");
    jv text = rc == 0 ? jv_strn(c->arena, buf.p ? buf.p : "", buf.n) : jv_none();
    free(buf.p);
    if (rc != 0) return -1;
    if (jv_oom(text)) return jj_fail_oom(c);
    jv saved_ph = c->placeholder;
    c->placeholder = text;
    rc = jj_eval(c, f, n->b, out);
    c->placeholder = saved_ph;
    return rc;
}

static int exec_callblock(jj_ctx *c, jj_frame *f, const jj_node *n) {
    const jj_node *call = n->a;
    jv fn;
    argv_ a;
    if (jj_eval(c, f, call->a, &fn) != 0 || eval_args(c, f, call, &a) != 0) return -1;
    c->line = n->line;
    if (fn.k != JV_MACRO) return jj_fail(c, "{%% call %%} needs a macro");
    jj_macro *cm = jj_alloc(c->arena, sizeof *cm);
    if (!cm) return jj_fail_oom(c);
    cm->def = n;
    cm->closure = f;
    jv caller = {JV_MACRO, 0, {.m = cm}}, res;
    if (call_macro(c, fn.u.m, a.pos, a.n_pos, call->names, a.kw, call->n_names, caller, &res) != 0) return -1;
    return emit(c, res);
}

static int exec_stmt(jj_ctx *c, jj_frame *f, const jj_node *n) {
    jv v;
    c->line = n->line;
    switch (n->kind) {
    case N_TEXT:
        if (jj_buf_put(c->out, n->name, (size_t)n->lit.u.i) != 0) return jj_fail_oom(c);
        return 0;
    case N_EMIT:
        if (jj_eval(c, f, n->a, &v) != 0) return -1;
        return emit(c, v);
    case N_IF:
        if (jj_eval(c, f, n->a, &v) != 0) return -1;
        return jv_truthy(v) ? jj_exec_body(c, f, n->list, n->n) : jj_exec_body(c, f, n->list2, n->n2);
    case N_FOR: return exec_for(c, f, n);
    case N_SET: return exec_set(c, f, n);
    case N_SETBLOCK:
        if (render_filtered(c, f, n, &v) != 0) return -1;
        return frame_set(c, f, n->name, v);
    case N_FILTERBLOCK:
        if (render_filtered(c, f, n, &v) != 0) return -1;
        return emit(c, v);
    case N_MACRO: {
        jj_macro *m = jj_alloc(c->arena, sizeof *m);
        if (!m) return jj_fail_oom(c);
        m->def = n;
        m->closure = f;
        m->caller = jv_undef("caller");
        return frame_set(c, f, n->name, (jv){JV_MACRO, 0, {.m = m}});
    }
    case N_CALLBLOCK: return exec_callblock(c, f, n);
    case N_WITH: {
        jj_frame *fr = frame_new(c, f);
        if (!fr) return jj_fail_oom(c);
        for (size_t i = 0; i < n->n_names; i++) /* values see the outer scope, as Jinja's */
            if (jj_eval(c, f, n->list2[i], &v) != 0 || frame_set(c, fr, n->names[i], v) != 0) return -1;
        return jj_exec_body(c, fr, n->list, n->n);
    }
    case N_BREAK: return JJ_BREAK;
    case N_CONTINUE: return JJ_CONTINUE;
    case N_BODY: return jj_exec_body(c, f, n->list, n->n);
    default: return jj_fail(c, "not a statement");
    }
}

int jj_exec_body(jj_ctx *c, jj_frame *f, jj_node *const *body, size_t n) {
    if (++c->depth > c->lim->max_depth) return jj_fail(c, "statements nested too deeply");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = exec_stmt(c, f, body[i]);
    c->depth--;
    return rc;
}

/* ---- public ---- */

ck_jinja_limits ck_jinja_default_limits(void) {
    ck_jinja_limits l = {16u << 20, (size_t)512 << 20, 10000000, 200};
    return l;
}

int ck_jinja_parse(const char *src, size_t len, ck_jinja **out, char *err, size_t errlen) {
    *out = NULL;
    ck_jinja *t = calloc(1, sizeof *t);
    if (!t) return ck_err(err, errlen, "out of memory");
    t->arena.cap_bytes = (size_t)256 << 20;
    jj_token *toks;
    size_t n;
    if (jj_lex(&t->arena, src, len, &toks, &n, err, errlen) != 0 ||
        jj_parse(&t->arena, toks, n, &t->root, err, errlen) != 0) {
        ck_jinja_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void ck_jinja_free(ck_jinja *t) {
    if (!t) return;
    jj_arena_free(&t->arena);
    free(t);
}

int ck_jinja_render(const ck_jinja *t, const void *vars, const ck_jinja_limits *lim, char **out, size_t *out_len,
                    char *err, size_t errlen) {
    *out = NULL;
    ck_jinja_limits dl = ck_jinja_default_limits();
    if (!lim) lim = &dl;
    jj_arena arena = {0};
    arena.cap_bytes = lim->max_memory_bytes;
    jj_buf buf = {0};
    buf.max_bytes = lim->max_output_bytes;
    jj_ctx c = {&arena, &buf, err, errlen, 0, 0, 0, lim, NULL, jv_undef("")};
    int rc = -1;
    jj_frame *g = frame_new(&c, NULL), *top = g ? frame_new(&c, g) : NULL;
    c.globals = g;
    if (!top) {
        ck_err(err, errlen, "out of memory");
        goto done;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, (const cJSON *)vars) {
        jv v;
        if (!it->string || jv_from_json(&arena, it, &v, 0) != 0 || frame_set(&c, g, it->string, v) != 0) {
            ck_err(err, errlen, "template variables too large or too deeply nested");
            goto done;
        }
    }
    rc = jj_exec_body(&c, top, t->root->list, t->root->n);
    if (rc > 0) rc = jj_fail(&c, "break or continue outside a loop");
done:
    jj_arena_free(&arena);
    if (rc != 0) {
        free(buf.p);
        return -1;
    }
    if (!buf.p && jj_buf_put(&buf, "", 0) != 0) return ck_err(err, errlen, "out of memory");
    *out = buf.p;
    if (out_len) *out_len = buf.n;
    return 0;
}
