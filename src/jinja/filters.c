/* filters.c — Jinja's filters (`x|name(args)`) and tests (`x is name`) as Jinja2 3.x defines them, with
 * HF's tojson (json.dumps with ensure_ascii=False; indent, separators and sort_keys honoured), plus the
 * iteration of values (jj_iter_list). Arguments are matched by position or keyword as the Python
 * signatures name them. Unknown filters and tests are errors naming themselves.
 * Invariant: filters never modify their input (lists and dicts are copied before sorting). */
#include "jinja/jinja_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fargs {
    const jv *pos;
    size_t n_pos;
    const char *const *kn;
    const jv *kv;
    size_t n_kw;
} fargs;

/* Argument i (0-based after the filtered value) called name, or dflt. */
static jv arg(const fargs *a, size_t i, const char *name, jv dflt) {
    for (size_t k = 0; k < a->n_kw; k++)
        if (!strcmp(a->kn[k], name)) return a->kv[k];
    return i < a->n_pos ? a->pos[i] : dflt;
}

static int need_str(jj_ctx *c, jv *v) {
    *v = jv_to_str(c->arena, *v);
    return jv_oom(*v) ? jj_fail_oom(c) : 0;
}

int jj_iter_list(jj_ctx *c, jv v, jj_list **out) {
    jj_list *l;
    switch (v.k) {
    case JV_LIST: *out = v.u.l; return 0;
    case JV_UNDEF:
        if (!(*out = jj_alloc(c->arena, sizeof **out))) return jj_fail_oom(c);
        return 0;
    case JV_DICT:
        if (!(l = jj_alloc(c->arena, sizeof *l))) return jj_fail_oom(c);
        for (size_t i = 0; i < v.u.d->n; i++)
            if (jj_list_push(c->arena, l, v.u.d->keys[i]) != 0) return jj_fail_oom(c);
        *out = l;
        return 0;
    case JV_STR:
        if (!(l = jj_alloc(c->arena, sizeof *l))) return jj_fail_oom(c);
        for (size_t i = 0; i < v.u.s->n;) {
            size_t k = jj_utf8_next(v.u.s->p + i, v.u.s->n - i);
            jv ch = jv_strn(c->arena, v.u.s->p + i, k);
            if (jv_oom(ch) || jj_list_push(c->arena, l, ch) != 0) return jj_fail_oom(c);
            i += k;
        }
        *out = l;
        return 0;
    default: return jj_fail(c, "'%s' object is not iterable", jv_type_name(v));
    }
}

/* Dotted attribute path ("function.name") of an item, as Jinja's make_attrgetter. */
static int get_path(jj_ctx *c, jv item, jv path, jv *out) {
    if (path.k == JV_INT) return jj_getitem(c, item, path, out);
    if (path.k != JV_STR) return jj_fail(c, "attribute must be a string");
    const char *p = path.u.s->p;
    *out = item;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        jv key = jv_strn(c->arena, p, n);
        if (jv_oom(key)) return jj_fail_oom(c);
        int digits = n > 0;
        for (size_t i = 0; i < n; i++) digits &= isdigit((unsigned char)p[i]) != 0;
        if (digits) key = jv_int(strtoll(key.u.s->p, NULL, 10));
        if (out->k == JV_UNDEF) return 0;
        if (jj_getitem(c, *out, key, out) != 0) return -1;
        p += n + (dot ? 1 : 0);
    }
    return 0;
}

/* ---- string filters ---- */

static int py_strip(jj_ctx *c, jv s, jv chars, int left, int right, jv *out); /* methods.c */
int jj_py_strip(jj_ctx *c, jv s, jv chars, int left, int right, jv *out);
int jj_py_replace(jj_ctx *c, jv s, jv old, jv new_, jv count, jv *out);
int jj_py_case(jj_ctx *c, jv s, int mode, jv *out); /* 0 lower 1 upper 2 capitalize 3 title */

static int py_strip(jj_ctx *c, jv s, jv chars, int left, int right, jv *out) {
    return jj_py_strip(c, s, chars, left, right, out);
}

static int f_indent(jj_ctx *c, jv v, const fargs *a, jv *out) {
    jv w = arg(a, 0, "width", jv_int(4)), first = arg(a, 1, "first", jv_bool(0)), blank = arg(a, 2, "blank", jv_bool(0));
    if (v.k != JV_STR) /* Jinja appends "\n" to its argument first */
        return jj_fail(c, "unsupported operand type(s) for +=: '%s' and 'str'", jv_type_name(v));
    jj_buf pad = {0}, b = {0};
    b.max_bytes = c->lim->max_output_bytes;
    int rc = 0;
    if (w.k == JV_STR) rc |= jj_buf_put(&pad, w.u.s->p, w.u.s->n);
    else if (w.k == JV_INT && w.u.i > 0 && w.u.i < 1000)
        for (int64_t i = 0; i < w.u.i; i++) rc |= jj_buf_put(&pad, " ", 1);
    const char *p = v.u.s->p, *end = p + v.u.s->n;
    int line = 0;
    while (p <= end && !rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        int is_blank = 1;
        for (size_t i = 0; i < len; i++) is_blank &= isspace((unsigned char)p[i]) != 0;
        if ((line > 0 || jv_truthy(first)) && (jv_truthy(blank) || !is_blank) && pad.n)
            rc |= jj_buf_put(&b, pad.p, pad.n);
        rc |= jj_buf_put(&b, p, len);
        if (!nl) break;
        rc |= jj_buf_put(&b, "\n", 1);
        p = nl + 1;
        line++;
    }
    if (!rc) *out = jv_strn(c->arena, b.p ? b.p : "", b.n);
    free(pad.p);
    free(b.p);
    return (rc || jv_oom(*out)) ? jj_fail_oom(c) : 0;
}

int jj_html_escape(jj_ctx *c, jv v, jv *out) {
    if (v.k == JV_STR && (v.flags & JVF_MARKUP)) { *out = v; return 0; }
    if (need_str(c, &v) != 0) return -1;
    jj_buf b = {0};
    int rc = 0;
    for (size_t i = 0; i < v.u.s->n; i++) {
        char ch = v.u.s->p[i];
        const char *e = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '"' ? "&#34;"
                      : ch == '\'' ? "&#39;" : NULL;
        rc |= e ? jj_buf_puts(&b, e) : jj_buf_put(&b, &ch, 1);
    }
    if (!rc) *out = jv_strn(c->arena, b.p ? b.p : "", b.n);
    free(b.p);
    return (rc || jv_oom(*out)) ? jj_fail_oom(c) : 0;
}

static int f_join(jj_ctx *c, jv v, const fargs *a, jv *out) {
    jv sep = arg(a, 0, "d", jv_undef(NULL)), attr = arg(a, 1, "attribute", jv_none());
    jj_list *items;
    if (jj_iter_list(c, v, &items) != 0) return -1;
    jj_buf b = {0};
    b.max_bytes = c->lim->max_output_bytes;
    int rc = 0;
    for (size_t i = 0; i < items->n && !rc; i++) {
        jv it = items->a[i];
        if (attr.k != JV_NONE && get_path(c, it, attr, &it) != 0) { free(b.p); return -1; }
        if (i && sep.k != JV_UNDEF) rc |= jv_write_str(&b, sep);
        rc |= jv_write_str(&b, it);
    }
    if (!rc) *out = jv_strn(c->arena, b.p ? b.p : "", b.n);
    free(b.p);
    return (rc || jv_oom(*out)) ? jj_fail_oom(c) : 0;
}

static int f_tojson(jj_ctx *c, jv v, const fargs *a, jv *out) {
    jv ea = arg(a, 0, "ensure_ascii", jv_bool(0)), ind = arg(a, 1, "indent", jv_none());
    jv seps = arg(a, 2, "separators", jv_none()), sk = arg(a, 3, "sort_keys", jv_bool(0));
    int indent = -1;
    if (ind.k == JV_INT) indent = ind.u.i < 0 ? 0 : ind.u.i > 64 ? 64 : (int)ind.u.i;
    else if (ind.k != JV_NONE) return jj_fail(c, "tojson: indent must be an integer");
    const char *isep = NULL, *ksep = NULL;
    if (seps.k == JV_LIST && seps.u.l->n == 2 && seps.u.l->a[0].k == JV_STR && seps.u.l->a[1].k == JV_STR) {
        isep = seps.u.l->a[0].u.s->p;
        ksep = seps.u.l->a[1].u.s->p;
    } else if (seps.k != JV_NONE) {
        return jj_fail(c, "tojson: separators must be a pair of strings");
    }
    jj_buf b = {0};
    b.max_bytes = c->lim->max_output_bytes;
    char msg[160];
    if (jv_write_json(&b, v, indent, isep, ksep, jv_truthy(sk) | (jv_truthy(ea) ? 2 : 0), msg, sizeof msg) != 0) {
        free(b.p);
        return jj_fail(c, "tojson: %s", msg);
    }
    *out = jv_strn(c->arena, b.p ? b.p : "", b.n);
    free(b.p);
    return jv_oom(*out) ? jj_fail_oom(c) : 0;
}

/* ---- conversions ---- */

static int f_int(jj_ctx *c, jv v, const fargs *a, jv *out) {
    (void)c;
    jv dflt = arg(a, 0, "default", jv_int(0));
    if (v.k == JV_INT || v.k == JV_BOOL) { *out = jv_int(v.u.i); return 0; }
    if (v.k == JV_FLOAT) {
        if (!isfinite(v.u.f) || fabs(v.u.f) >= 9.2e18) { *out = dflt; return 0; }
        *out = jv_int((int64_t)v.u.f);
        return 0;
    }
    if (v.k == JV_STR) {
        char *end;
        long long x = strtoll(v.u.s->p, &end, 10);
        while (*end && isspace((unsigned char)*end)) end++;
        if (end != v.u.s->p && !*end) { *out = jv_int(x); return 0; }
        double d = strtod(v.u.s->p, &end);
        while (*end && isspace((unsigned char)*end)) end++;
        if (end != v.u.s->p && !*end && isfinite(d) && fabs(d) < 9.2e18) { *out = jv_int((int64_t)d); return 0; }
    }
    *out = dflt;
    return 0;
}

static int f_float(jj_ctx *c, jv v, const fargs *a, jv *out) {
    (void)c;
    jv dflt = arg(a, 0, "default", jv_float(0.0));
    if (jv_is_number(v)) { *out = jv_float(jv_num(v)); return 0; }
    if (v.k == JV_STR) {
        char *end;
        double d = strtod(v.u.s->p, &end);
        while (*end && isspace((unsigned char)*end)) end++;
        if (end != v.u.s->p && !*end) { *out = jv_float(d); return 0; }
    }
    *out = dflt;
    return 0;
}

static int f_list(jj_ctx *c, jv v, jv *out) {
    jj_list *items;
    if (jj_iter_list(c, v, &items) != 0) return -1;
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    for (size_t i = 0; i < items->n; i++)
        if (jj_list_push(c->arena, out->u.l, items->a[i]) != 0) return jj_fail_oom(c);
    return 0;
}

static int f_items(jj_ctx *c, jv v, jv *out) {
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    if (v.k == JV_UNDEF) return 0;
    if (v.k != JV_DICT) return jj_fail(c, "items: can only get item pairs from a mapping");
    for (size_t i = 0; i < v.u.d->n; i++) {
        jv pair = jv_list_new(c->arena);
        if (jv_oom(pair) || jj_list_push(c->arena, pair.u.l, v.u.d->keys[i]) != 0 ||
            jj_list_push(c->arena, pair.u.l, v.u.d->vals[i]) != 0 || jj_list_push(c->arena, out->u.l, pair) != 0)
            return jj_fail_oom(c);
        out->u.l->a[out->u.l->n - 1].flags |= JVF_TUPLE;
    }
    return 0;
}

static int f_length(jj_ctx *c, jv v, jv *out) {
    switch (v.k) {
    case JV_UNDEF: *out = jv_int(0); return 0;
    case JV_STR: *out = jv_int((int64_t)jj_utf8_len(v.u.s->p, v.u.s->n)); return 0;
    case JV_LIST:
        if (v.flags & JVF_GEN) break;
        *out = jv_int((int64_t)v.u.l->n);
        return 0;
    case JV_DICT: *out = jv_int((int64_t)v.u.d->n); return 0;
    default: break;
    }
    return jj_fail(c, "object of type '%s' has no len()", jv_type_name(v));
}

/* ---- selection and mapping ---- */

/* select/reject (by test on the item) and selectattr/rejectattr (by test on an attribute). */
static int f_select(jj_ctx *c, jj_frame *f, jv v, const fargs *a, int by_attr, int keep, jv *out) {
    jj_list *items;
    if (!jv_truthy(v)) v = jv_undef(NULL); /* Jinja: `if value:` before iterating */
    if (jj_iter_list(c, v, &items) != 0) return -1;
    size_t first = by_attr ? 1 : 0;
    jv attr = by_attr ? arg(a, 0, "attribute", jv_none()) : jv_none();
    jv test = a->n_pos > first ? a->pos[first] : jv_none();
    if (test.k != JV_NONE && test.k != JV_STR) return jj_fail(c, "select: the test name must be a string");
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    for (size_t i = 0; i < items->n; i++) {
        jv it = items->a[i];
        if (by_attr && get_path(c, it, attr, &it) != 0) return -1;
        int r;
        if (test.k == JV_NONE) r = jv_truthy(it);
        else if (jj_test(c, f, test.u.s->p, it, a->pos + first + 1, a->n_pos - first - 1, &r) != 0) return -1;
        if (r == keep && jj_list_push(c->arena, out->u.l, items->a[i]) != 0) return jj_fail_oom(c);
    }
    return 0;
}

static int f_map(jj_ctx *c, jj_frame *f, jv v, const fargs *a, jv *out) {
    jj_list *items;
    if (!jv_truthy(v)) v = jv_undef(NULL); /* Jinja: `if value:` before iterating */
    if (jj_iter_list(c, v, &items) != 0) return -1;
    jv attr = arg(a, 99, "attribute", jv_none()), dflt = arg(a, 99, "default", jv_undef(NULL));
    if (attr.k == JV_NONE && (a->n_pos < 1 || a->pos[0].k != JV_STR)) return jj_fail(c, "map: no filter or attribute");
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    for (size_t i = 0; i < items->n; i++) {
        jv r;
        if (attr.k != JV_NONE) {
            if (get_path(c, items->a[i], attr, &r) != 0) return -1;
            if (r.k == JV_UNDEF && !(dflt.k == JV_UNDEF && !dflt.u.name)) r = dflt;
        } else if (jj_filter(c, f, a->pos[0].u.s->p, items->a[i], a->pos + 1, a->n_pos - 1, NULL, NULL, 0, &r) != 0) {
            return -1;
        }
        if (jj_list_push(c->arena, out->u.l, r) != 0) return jj_fail_oom(c);
    }
    return 0;
}

/* Sort key comparison, case-insensitive on strings unless case_sensitive. */
static int key_cmp(jv x, jv y, int case_sensitive, int *r) {
    if (!case_sensitive && x.k == JV_STR && y.k == JV_STR) {
        size_t n = x.u.s->n < y.u.s->n ? x.u.s->n : y.u.s->n;
        for (size_t i = 0; i < n; i++) {
            int a = tolower((unsigned char)x.u.s->p[i]), b = tolower((unsigned char)y.u.s->p[i]);
            if (a != b) { *r = a < b ? -1 : 1; return 0; }
        }
        *r = (x.u.s->n > y.u.s->n) - (x.u.s->n < y.u.s->n);
        return 0;
    }
    return jv_cmp(x, y, r);
}

/* Stable insertion sort of items by keys (parallel arrays). */
static int sort_by(jj_ctx *c, jv *items, jv *keys, size_t n, int case_sensitive, int reverse) {
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            int r;
            if (key_cmp(keys[j - 1], keys[j], case_sensitive, &r) != 0)
                return jj_fail(c, "'<' not supported between instances of '%s' and '%s'", jv_type_name(keys[j - 1]),
                               jv_type_name(keys[j]));
            if (reverse ? r >= 0 : r <= 0) break;
            jv t = items[j]; items[j] = items[j - 1]; items[j - 1] = t;
            t = keys[j]; keys[j] = keys[j - 1]; keys[j - 1] = t;
        }
    return 0;
}

static int f_sort(jj_ctx *c, jv v, const fargs *a, int dictsort, jv *out) {
    jj_list *src;
    jv rev = arg(a, dictsort ? 2 : 0, "reverse", jv_bool(0)), cs = arg(a, dictsort ? 0 : 1, "case_sensitive", jv_bool(0));
    jv attr = arg(a, 2, "attribute", jv_none()), by = arg(a, 1, "by", jv_undef(NULL));
    if (dictsort) {
        jv items;
        if (f_items(c, v, &items) != 0) return -1;
        src = items.u.l;
    } else if (jj_iter_list(c, v, &src) != 0) {
        return -1;
    }
    if (src->n > 100000) return jj_fail(c, "sort: too many items");
    *out = jv_list_new(c->arena);
    jv *keys = jj_alloc(c->arena, (src->n + 1) * sizeof(jv));
    if (jv_oom(*out) || !keys) return jj_fail_oom(c);
    for (size_t i = 0; i < src->n; i++) {
        if (jj_list_push(c->arena, out->u.l, src->a[i]) != 0) return jj_fail_oom(c);
        keys[i] = src->a[i];
        if (dictsort) keys[i] = src->a[i].u.l->a[(by.k == JV_STR && !strcmp(by.u.s->p, "value")) ? 1 : 0];
        else if (attr.k != JV_NONE && get_path(c, src->a[i], attr, &keys[i]) != 0) return -1;
    }
    return sort_by(c, out->u.l->a, keys, src->n, jv_truthy(cs), jv_truthy(rev));
}

static int f_minmax(jj_ctx *c, jv v, int want_max, jv *out) {
    jj_list *items;
    if (jj_iter_list(c, v, &items) != 0) return -1;
    *out = jv_undef("min/max of an empty sequence");
    for (size_t i = 0; i < items->n; i++) {
        int r;
        if (i == 0) { *out = items->a[0]; continue; }
        if (key_cmp(items->a[i], *out, 0, &r) != 0) return jj_fail(c, "min/max: values cannot be compared");
        if (want_max ? r > 0 : r < 0) *out = items->a[i];
    }
    return 0;
}

static int f_unique(jj_ctx *c, jv v, jv *out) {
    jj_list *items;
    if (jj_iter_list(c, v, &items) != 0) return -1;
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    for (size_t i = 0; i < items->n; i++) {
        jv it = items->a[i];
        if (!jv_hashable(it)) return jj_fail(c, "unhashable type: '%s'", jv_type_name(it));
        int seen = 0;
        for (size_t j = 0; j < out->u.l->n && !seen; j++) seen = jv_eq(out->u.l->a[j], items->a[i]);
        if (!seen && jj_list_push(c->arena, out->u.l, items->a[i]) != 0) return jj_fail_oom(c);
    }
    return 0;
}

static int f_sum(jj_ctx *c, jv v, const fargs *a, jv *out) {
    jj_list *items;
    jv attr = arg(a, 0, "attribute", jv_none());
    *out = arg(a, 1, "start", jv_int(0));
    if (jj_iter_list(c, v, &items) != 0) return -1;
    for (size_t i = 0; i < items->n; i++) {
        jv it = items->a[i];
        if (attr.k != JV_NONE && get_path(c, it, attr, &it) != 0) return -1;
        if (!jv_is_number(it) || !jv_is_number(*out)) return jj_fail(c, "sum: items must be numbers");
        if (out->k != JV_FLOAT && it.k != JV_FLOAT) {
            int64_t r;
            if (__builtin_add_overflow(out->u.i, it.u.i, &r)) return jj_fail(c, "integer overflow");
            *out = jv_int(r);
        } else {
            *out = jv_float(jv_num(*out) + jv_num(it));
        }
    }
    return 0;
}

static int f_reverse(jj_ctx *c, jv v, jv *out) {
    if (v.k == JV_STR) {
        jv none = jv_none();
        return jj_slice(c, v, none, none, jv_int(-1), out);
    }
    jj_list *items;
    if (jj_iter_list(c, v, &items) != 0) return -1;
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    for (size_t i = items->n; i-- > 0;)
        if (jj_list_push(c->arena, out->u.l, items->a[i]) != 0) return jj_fail_oom(c);
    return 0;
}

static int f_round(jj_ctx *c, jv v, const fargs *a, jv *out) {
    jv prec = arg(a, 0, "precision", jv_int(0)), method = arg(a, 1, "method", jv_undef(NULL));
    if (!jv_is_number(v)) return jj_fail(c, "round: not a number");
    if (v.k != JV_FLOAT && (prec.k != JV_INT || prec.u.i >= 0)) { /* Python: round(int, n) is the int */
        *out = jv_int(v.u.i);
        return 0;
    }
    double x = jv_num(v), m = pow(10.0, (double)(prec.k == JV_INT ? prec.u.i : 0));
    const char *how = method.k == JV_STR ? method.u.s->p : "common";
    double r = !strcmp(how, "floor") ? floor(x * m) / m : !strcmp(how, "ceil") ? ceil(x * m) / m : nearbyint(x * m) / m; /* Python's round: half to even */
    *out = jv_float(r);
    return 0;
}

static int f_first_last(jj_ctx *c, jv v, int last, jv *out) {
    jj_list *items;
    if (v.k == JV_DICT || v.k == JV_STR || v.k == JV_LIST || v.k == JV_UNDEF) {
        if (jj_iter_list(c, v, &items) != 0) return -1;
        *out = items->n ? items->a[last ? items->n - 1 : 0] : jv_undef(last ? "last" : "first");
        return 0;
    }
    return jj_fail(c, "'%s' object is not iterable", jv_type_name(v));
}

static int f_default(jv v, const fargs *a, jv *out) {
    jv d = arg(a, 0, "default_value", jv_undef(NULL)), boolean = arg(a, 1, "boolean", jv_bool(0));
    int use = v.k == JV_UNDEF || (jv_truthy(boolean) && !jv_truthy(v));
    if (!use) { *out = v; return 0; }
    *out = (d.k == JV_UNDEF && !d.u.name) ? (jv){JV_STR, 0, {.s = NULL}} : d;
    return 0;
}

static int f_dispatch_str(jj_ctx *c, const char *name, jv v, const fargs *a, jv *out, int *handled) {
    *handled = 1;
    if (!strcmp(name, "trim")) {
        if (need_str(c, &v) != 0) return -1;
        return py_strip(c, v, arg(a, 0, "chars", jv_none()), 1, 1, out);
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "capitalize") || !strcmp(name, "title")) {
        if (need_str(c, &v) != 0) return -1;
        int mode = name[0] == 'l' ? 0 : name[0] == 'u' ? 1 : name[0] == 'c' ? 2 : 4; /* 4: Jinja's title */
        return jj_py_case(c, v, mode, out);
    }
    if (!strcmp(name, "replace")) {
        if (need_str(c, &v) != 0) return -1;
        return jj_py_replace(c, v, arg(a, 0, "old", jv_undef("old")), arg(a, 1, "new", jv_undef("new")),
                             arg(a, 2, "count", jv_none()), out);
    }
    if (!strcmp(name, "string")) {
        *out = jv_to_str(c->arena, v);
        return jv_oom(*out) ? jj_fail_oom(c) : 0;
    }
    if (!strcmp(name, "safe")) {
        if (need_str(c, &v) != 0) return -1;
        *out = v;
        out->flags |= JVF_MARKUP;
        return 0;
    }
    if (!strcmp(name, "e") || !strcmp(name, "escape") || !strcmp(name, "forceescape")) {
        if (jj_html_escape(c, v, out) != 0) return -1;
        out->flags |= JVF_MARKUP;
        return 0;
    }
    if (!strcmp(name, "indent")) return f_indent(c, v, a, out);
    if (!strcmp(name, "tojson")) return f_tojson(c, v, a, out);
    if (!strcmp(name, "join")) return f_join(c, v, a, out);
    if (!strcmp(name, "wordcount")) {
        if (need_str(c, &v) != 0) return -1;
        *out = jv_int(jj_word_count(v.u.s->p, v.u.s->n));
        return 0;
    }
    *handled = 0;
    return 0;
}

/* Marks a list result as the generator Jinja's filter returns (see JVF_GEN). */
static int gen(int rc, jv *out) {
    if (rc == 0 && out->k == JV_LIST) out->flags |= JVF_GEN;
    return rc;
}

int jj_filter(jj_ctx *c, jj_frame *f, const char *name, jv v, const jv *args, size_t n_args,
              const char *const *kw_names, const jv *kw_vals, size_t n_kw, jv *out) {
    fargs a = {args, n_args, kw_names, kw_vals, n_kw};
    int handled;
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        if (f_default(v, &a, out) != 0) return -1;
        if (out->k == JV_STR && !out->u.s) *out = jv_str(c->arena, "");
        return jv_oom(*out) ? jj_fail_oom(c) : 0;
    }
    /* Jinja's filters read an undefined value as "" or an empty sequence, except these */
    if (v.k == JV_UNDEF && (!strcmp(name, "abs") || !strcmp(name, "round") || !strcmp(name, "tojson") ||
                            !strcmp(name, "indent") || !strcmp(name, "dictsort") || !strcmp(name, "attr") ||
                            !strcmp(name, "int") || !strcmp(name, "float") || !strcmp(name, "last")))
        return v.u.name && v.u.name[0] ? jj_fail(c, "'%s' is undefined", v.u.name) : jj_fail(c, "a value is undefined");
    if (f_dispatch_str(c, name, v, &a, out, &handled) != 0) return -1;
    if (handled) return 0;
    if (!strcmp(name, "length") || !strcmp(name, "count")) return f_length(c, v, out);
    if (!strcmp(name, "list")) return f_list(c, v, out);
    if (!strcmp(name, "items")) return gen(f_items(c, v, out), out);
    if (!strcmp(name, "first") || !strcmp(name, "last")) return f_first_last(c, v, name[0] == 'l', out);
    if (!strcmp(name, "int")) return f_int(c, v, &a, out);
    if (!strcmp(name, "float")) return f_float(c, v, &a, out);
    if (!strcmp(name, "abs")) {
        if (v.k == JV_INT || v.k == JV_BOOL) *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        else if (v.k == JV_FLOAT) *out = jv_float(fabs(v.u.f));
        else return jj_fail(c, "bad operand type for abs(): '%s'", jv_type_name(v));
        return 0;
    }
    if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr"))
        return gen(f_select(c, f, v, &a, 1, name[0] == 's', out), out);
    if (!strcmp(name, "select") || !strcmp(name, "reject")) return gen(f_select(c, f, v, &a, 0, name[0] == 's', out), out);
    if (!strcmp(name, "map")) return gen(f_map(c, f, v, &a, out), out);
    if (!strcmp(name, "sort")) return f_sort(c, v, &a, 0, out);
    if (!strcmp(name, "dictsort")) return f_sort(c, v, &a, 1, out);
    if (!strcmp(name, "unique")) return gen(f_unique(c, v, out), out);
    if (!strcmp(name, "reverse")) return gen(f_reverse(c, v, out), out);
    if (!strcmp(name, "min") || !strcmp(name, "max")) return f_minmax(c, v, name[1] == 'a', out);
    if (!strcmp(name, "sum")) return f_sum(c, v, &a, out);
    if (!strcmp(name, "round")) return f_round(c, v, &a, out);
    if (!strcmp(name, "attr")) return jj_getattr(c, v, arg(&a, 0, "name", jv_none()).k == JV_STR ? a.pos[0].u.s->p : "", out);
    if (!strcmp(name, "format")) {
        jv tup = jv_list_new(c->arena);
        if (jv_oom(tup)) return jj_fail_oom(c);
        tup.flags |= JVF_TUPLE;
        for (size_t i = 0; i < n_args; i++)
            if (jj_list_push(c->arena, tup.u.l, args[i]) != 0) return jj_fail_oom(c);
        int jj_str_format(jj_ctx *, jv, jv, jv *);
        if (need_str(c, &v) != 0) return -1;
        return jj_str_format(c, v, tup, out);
    }
    return jj_fail(c, "no filter named '%s'", name);
}

/* ---- tests ---- */

int jj_test(jj_ctx *c, jj_frame *f, const char *name, jv v, const jv *args, size_t n_args, int *out) {
    (void)f;
    jv x = n_args ? args[0] : jv_undef(NULL);
    int cmp;
    if (!strcmp(name, "defined")) *out = v.k != JV_UNDEF;
    else if (!strcmp(name, "undefined")) *out = v.k == JV_UNDEF;
    else if (!strcmp(name, "none")) *out = v.k == JV_NONE;
    else if (!strcmp(name, "boolean")) *out = v.k == JV_BOOL;
    else if (!strcmp(name, "true")) *out = v.k == JV_BOOL && v.u.i;
    else if (!strcmp(name, "false")) *out = v.k == JV_BOOL && !v.u.i;
    else if (!strcmp(name, "integer")) *out = v.k == JV_INT;
    else if (!strcmp(name, "float")) *out = v.k == JV_FLOAT;
    else if (!strcmp(name, "number")) *out = jv_is_number(v);
    else if (!strcmp(name, "string")) *out = v.k == JV_STR;
    else if (!strcmp(name, "mapping")) *out = v.k == JV_DICT && !v.u.d->ns;
    else if (!strcmp(name, "iterable") || !strcmp(name, "sequence"))
        *out = v.k == JV_STR || v.k == JV_LIST || (v.k == JV_DICT && !v.u.d->ns) || v.k == JV_UNDEF;
    else if (!strcmp(name, "callable")) *out = v.k == JV_MACRO || v.k == JV_FUNC;
    else if (!strcmp(name, "sameas")) *out = v.k == x.k && (v.k == JV_NONE || v.k == JV_UNDEF || (v.k == JV_BOOL && v.u.i == x.u.i) ||
                                                           (v.k == JV_LIST && v.u.l == x.u.l) || (v.k == JV_DICT && v.u.d == x.u.d));
    else if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) *out = jv_eq(v, x);
    else if (!strcmp(name, "ne") || !strcmp(name, "!=")) *out = !jv_eq(v, x);
    else if (!strcmp(name, "lt") || !strcmp(name, "lessthan") || !strcmp(name, "gt") || !strcmp(name, "greaterthan") ||
             !strcmp(name, "le") || !strcmp(name, "ge")) {
        if (jv_cmp(v, x, &cmp) != 0) return jj_fail(c, "test '%s': values cannot be compared", name);
        *out = name[0] == 'l' ? (name[1] == 'e' ? cmp <= 0 : cmp < 0) : (name[1] == 'e' ? cmp >= 0 : cmp > 0);
        if (cmp == 2) *out = 0;
    } else if (!strcmp(name, "in")) {
        if (x.k == JV_STR && v.k == JV_STR)
            *out = v.u.s->n <= x.u.s->n && (v.u.s->n == 0 || memmem(x.u.s->p, x.u.s->n, v.u.s->p, v.u.s->n));
        else if (x.k == JV_LIST) {
            *out = 0;
            for (size_t i = 0; i < x.u.l->n && !*out; i++) *out = jv_eq(x.u.l->a[i], v);
        } else if (x.k == JV_DICT) {
            if (!jv_hashable(v)) return jj_fail(c, "unhashable type: '%s'", jv_type_name(v));
            *out = jj_dict_get(x.u.d, v) != NULL;
        }
        else return jj_fail(c, "test 'in': not a container");
    } else if (!strcmp(name, "odd") || !strcmp(name, "even") || !strcmp(name, "divisibleby")) {
        jv d = name[0] == 'd' ? x : jv_int(2);
        if (!jv_is_number(v) || !jv_is_number(d)) return jj_fail(c, "test '%s' needs numbers", name);
        if (jv_num(d) == 0) return jj_fail(c, "integer division or modulo by zero");
        double r; /* Python's value % d: the sign of d */
        if (v.k != JV_FLOAT && d.k != JV_FLOAT) {
            int64_t q = (d.u.i == -1) ? 0 : v.u.i % d.u.i;
            if (q != 0 && ((q < 0) != (d.u.i < 0))) q += d.u.i;
            r = (double)q;
        } else {
            r = fmod(jv_num(v), jv_num(d));
            if (r != 0 && ((r < 0) != (jv_num(d) < 0))) r += jv_num(d);
        }
        *out = name[0] == 'o' ? r == 1 : r == 0; /* odd: value % 2 == 1 */
    } else if (!strcmp(name, "lower") || !strcmp(name, "upper")) { /* str(value).islower() / isupper() */
        v = jv_to_str(c->arena, v);
        if (jv_oom(v)) return jj_fail_oom(c);
        int has_cased = 0, ok = 1;
        for (size_t i = 0; i < v.u.s->n; i++) {
            unsigned char ch = (unsigned char)v.u.s->p[i];
            if (isalpha(ch)) {
                has_cased = 1;
                if (name[0] == 'l' ? isupper(ch) : islower(ch)) ok = 0;
            }
        }
        *out = has_cased && ok;
    } else if (!strcmp(name, "escaped")) *out = 0;
    else return jj_fail(c, "no test named '%s'", name);
    return 0;
}
