/* methods.c — the Python methods templates call on values (str: strip/split/startswith/replace/...,
 * dict: items/keys/values/get, list: index/count), the global functions HF provides (range, namespace,
 * raise_exception, strftime_now, dict), Python slicing and `str % args` formatting.
 * As in HF's ImmutableSandboxedEnvironment, methods that modify a list or dict (append, pop, update...)
 * are refused with Jinja's SecurityError message. Case mapping is per code point (utf8proc).
 * Invariant: strings index and slice by code point, never splitting a UTF-8 sequence. */
#include "jinja/jinja_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

static jv karg(const jv *args, size_t n, const char *const *kn, const jv *kv, size_t nk, size_t i, const char *name,
               jv dflt) {
    for (size_t k = 0; k < nk; k++)
        if (!strcmp(kn[k], name)) return kv[k];
    return i < n ? args[i] : dflt;
}

static int str_result(jj_ctx *c, jj_buf *b, jv *out) {
    int bad = b->failed;
    if (!bad) *out = jv_strn(c->arena, b->p ? b->p : "", b->n);
    free(b->p);
    return (bad || jv_oom(*out)) ? jj_fail_oom(c) : 0;
}

/* ---- strip / replace / case ---- */

static int in_chars(const char *p, size_t k, jv chars) {
    if (chars.k != JV_STR) {
        size_t len;
        return jj_is_pyspace_at(p, k, &len) && len == k;
    }
    for (size_t i = 0; i < chars.u.s->n;) {
        size_t m = jj_utf8_next(chars.u.s->p + i, chars.u.s->n - i);
        if (m == k && !memcmp(chars.u.s->p + i, p, k)) return 1;
        i += m;
    }
    return 0;
}

int jj_py_strip(jj_ctx *c, jv s, jv chars, int left, int right, jv *out) {
    if (chars.k != JV_STR && chars.k != JV_NONE && chars.k != JV_UNDEF)
        return jj_fail(c, "strip arg must be None or str");
    const char *p = s.u.s->p;
    size_t a = 0, z = s.u.s->n;
    while (left && a < z) {
        size_t k = jj_utf8_next(p + a, z - a);
        if (!in_chars(p + a, k, chars)) break;
        a += k;
    }
    while (right && z > a) {
        size_t i = z - 1;
        while (i > a && ((unsigned char)p[i] & 0xC0) == 0x80 && z - i < 4) i--;
        size_t k = jj_utf8_next(p + i, z - i);
        if (i + k != z) { i = z - 1; k = 1; }
        if (!in_chars(p + i, k, chars)) break;
        z = i;
    }
    *out = (a == 0 && z == s.u.s->n) ? s : jv_strn(c->arena, p + a, z - a);
    return jv_oom(*out) ? jj_fail_oom(c) : 0;
}

int jj_py_replace(jj_ctx *c, jv s, jv old, jv new_, jv count, jv *out) {
    if (old.k != JV_STR || new_.k != JV_STR) return jj_fail(c, "replace() arguments must be str");
    int64_t max = (count.k == JV_INT && count.u.i >= 0) ? count.u.i : INT64_MAX;
    jj_buf b = {0};
    b.max_bytes = c->lim->max_output_bytes;
    const char *p = s.u.s->p;
    size_t n = s.u.s->n, i = 0;
    int64_t done = 0;
    if (old.u.s->n == 0) { /* Python inserts new between every character */
        while (done < max && i <= n) {
            jj_buf_put(&b, new_.u.s->p, new_.u.s->n);
            done++;
            if (i == n) { i++; break; }
            size_t k = jj_utf8_next(p + i, n - i);
            jj_buf_put(&b, p + i, k);
            i += k;
        }
        if (i <= n) jj_buf_put(&b, p + i, n - i);
        return str_result(c, &b, out);
    }
    while (i < n && done < max) {
        const char *h = memmem(p + i, n - i, old.u.s->p, old.u.s->n);
        if (!h) break;
        jj_buf_put(&b, p + i, (size_t)(h - (p + i)));
        jj_buf_put(&b, new_.u.s->p, new_.u.s->n);
        i = (size_t)(h - p) + old.u.s->n;
        done++;
    }
    jj_buf_put(&b, p + i, n - i);
    return str_result(c, &b, out);
}

static void put_cp(jj_buf *b, utf8proc_int32_t cp) {
    utf8proc_uint8_t u[4];
    utf8proc_ssize_t k = utf8proc_encode_char(cp, u);
    jj_buf_put(b, (const char *)u, (size_t)k);
}

/* Jinja's wordcount: runs of word characters (Python's \w: letters, digits, underscore). */
int64_t jj_word_count(const char *p, size_t n) {
    int64_t words = 0;
    int in_word = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) { cp = 0xFFFD; k = 1; }
        utf8proc_category_t cat = utf8proc_category(cp);
        int w = cp == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
        if (w && !in_word) words++;
        in_word = w;
        i += (size_t)k;
    }
    return words;
}

/* A separator of Jinja's title filter: whitespace, '-', '(', '{', '[', '<'. */
static int title_sep(utf8proc_int32_t cp) {
    if (cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<') return 1;
    char u[4];
    utf8proc_ssize_t k = utf8proc_encode_char(cp, (utf8proc_uint8_t *)u);
    size_t len;
    return k > 0 && jj_is_pyspace_at(u, (size_t)k, &len);
}

/* mode: 0 lower, 1 upper, 2 capitalize (first upper, rest lower), 3 title (Python str.title), 4 Jinja's
 * title filter (first character of each run between separators upper, the rest lower). */
int jj_py_case(jj_ctx *c, jv s, int mode, jv *out) {
    jj_buf b = {0};
    const char *p = s.u.s->p;
    size_t n = s.u.s->n;
    int prev_cased = 0, first = 1;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) { /* invalid byte: copied */
            jj_buf_put(&b, p + i, 1);
            i++;
            prev_cased = 0;
            first = 0;
            continue;
        }
        int up = mode == 1 || (mode == 2 && first) || (mode == 3 && !prev_cased) || (mode == 4 && (first || prev_cased));
        if (mode == 4) prev_cased = title_sep(cp); /* for mode 4: the previous character was a separator */
        cp = up ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
        if (mode == 3) {
            const utf8proc_property_t *pr = utf8proc_get_property(cp);
            prev_cased = pr->category == UTF8PROC_CATEGORY_LU || pr->category == UTF8PROC_CATEGORY_LL ||
                         pr->category == UTF8PROC_CATEGORY_LT;
        }
        put_cp(&b, cp);
        i += (size_t)k;
        first = 0;
    }
    return str_result(c, &b, out);
}

/* ---- split ---- */

static int push_str(jj_ctx *c, jj_list *l, const char *p, size_t n) {
    jv s = jv_strn(c->arena, p, n);
    if (jv_oom(s) || jj_list_push(c->arena, l, s) != 0) return jj_fail_oom(c);
    return 0;
}

static int py_split(jj_ctx *c, jv s, jv sep, jv maxsplit, int from_right, jv *out) {
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    int64_t max = (maxsplit.k == JV_INT && maxsplit.u.i >= 0) ? maxsplit.u.i : INT64_MAX;
    const char *p = s.u.s->p;
    size_t n = s.u.s->n;
    jj_list *l = out->u.l;
    if (sep.k == JV_STR && sep.u.s->n == 0) return jj_fail(c, "empty separator");
    if (sep.k == JV_STR) {
        const char *q = sep.u.s->p;
        size_t m = sep.u.s->n;
        if (!from_right) {
            size_t i = 0;
            int64_t done = 0;
            const char *h;
            while (done < max && i <= n && (h = memmem(p + i, n - i, q, m)) != NULL) {
                if (push_str(c, l, p + i, (size_t)(h - p) - i) != 0) return -1;
                i = (size_t)(h - p) + m;
                done++;
            }
            return push_str(c, l, p + i, n - i);
        }
        /* rsplit: find from the end, then reverse */
        size_t z = n;
        int64_t done = 0;
        while (done < max && z >= m) {
            size_t at = z - m;
            int found = 0;
            for (;; at--) {
                if (!memcmp(p + at, q, m)) { found = 1; break; }
                if (at == 0) break;
            }
            if (!found) break;
            if (push_str(c, l, p + at + m, z - at - m) != 0) return -1;
            z = at;
            done++;
        }
        if (push_str(c, l, p, z) != 0) return -1;
        for (size_t i = 0, j = l->n - 1; i < j; i++, j--) { jv t = l->a[i]; l->a[i] = l->a[j]; l->a[j] = t; }
        return 0;
    }
    /* whitespace split: runs of whitespace separate, no empty strings */
    if (from_right) return jj_fail(c, "rsplit() without a separator is not supported");
    size_t i = 0, k;
    int64_t done = 0;
    for (;;) {
        while (i < n && jj_is_pyspace_at(p + i, n - i, &k)) i += k;
        if (i >= n) break;
        if (done >= max) {
            size_t z = n;
            while (z > i) { /* rest, right-stripped */
                size_t j = z - 1;
                while (j > i && ((unsigned char)p[j] & 0xC0) == 0x80) j--;
                if (!jj_is_pyspace_at(p + j, z - j, &k)) break;
                z = j;
            }
            return push_str(c, l, p + i, z - i);
        }
        size_t st = i;
        while (i < n && !jj_is_pyspace_at(p + i, n - i, &k)) i += jj_utf8_next(p + i, n - i);
        if (push_str(c, l, p + st, i - st) != 0) return -1;
        done++;
    }
    return 0;
}

/* ---- slicing ---- */

static int64_t clamp_index(jv v, int64_t len, int64_t dflt, int step_neg) {
    if (v.k != JV_INT && v.k != JV_BOOL) return dflt;
    int64_t i = v.u.i;
    if (i < 0) {
        i += len;
        if (i < 0) i = step_neg ? -1 : 0;
    } else if (i >= len) {
        i = step_neg ? len - 1 : len;
    }
    return i;
}

int jj_slice(jj_ctx *c, jv obj, jv start, jv stop, jv step, jv *out) {
    if (obj.k == JV_UNDEF) return jj_fail(c, "'%s' is undefined", obj.u.name ? obj.u.name : "value");
    if ((obj.k != JV_LIST && obj.k != JV_STR) || (obj.flags & JVF_GEN)) /* a slice is a plain Python subscript */
        return jj_fail(c, "'%s' object is not subscriptable", jv_type_name(obj));
    int64_t st = 1;
    if (step.k == JV_INT || step.k == JV_BOOL) st = step.u.i;
    else if (step.k != JV_NONE && step.k != JV_UNDEF) return jj_fail(c, "slice indices must be integers");
    if (st == 0) return jj_fail(c, "slice step cannot be zero");
    size_t *offs = NULL; /* code point start offsets for strings */
    int64_t len;
    if (obj.k == JV_LIST) {
        len = (int64_t)obj.u.l->n;
    } else {
        size_t n = jj_utf8_len(obj.u.s->p, obj.u.s->n);
        offs = jj_alloc(c->arena, (n + 1) * sizeof *offs);
        if (!offs) return jj_fail_oom(c);
        size_t p = 0;
        for (size_t i = 0; i < n; i++) { offs[i] = p; p += jj_utf8_next(obj.u.s->p + p, obj.u.s->n - p); }
        offs[n] = obj.u.s->n;
        len = (int64_t)n;
    }
    int neg = st < 0;
    int64_t a = clamp_index(start, len, neg ? len - 1 : 0, neg), z = clamp_index(stop, len, neg ? -1 : len, neg);
    jj_buf b = {0};
    if (obj.k == JV_LIST) {
        *out = jv_list_new(c->arena);
        if (jv_oom(*out)) return jj_fail_oom(c);
    }
    for (int64_t i = a; neg ? i > z : i < z; i += st) {
        if (obj.k == JV_LIST) {
            if (jj_list_push(c->arena, out->u.l, obj.u.l->a[i]) != 0) return jj_fail_oom(c);
        } else {
            jj_buf_put(&b, obj.u.s->p + offs[i], offs[i + 1] - offs[i]);
        }
        if ((st > 0 && i > INT64_MAX - st) || (st < 0 && i < INT64_MIN - st)) break;
    }
    if (obj.k == JV_STR) return str_result(c, &b, out);
    return 0;
}

/* ---- str % args ---- */

int jj_str_format(jj_ctx *c, jv fmt, jv args, jv *out) {
    jj_buf b = {0};
    b.max_bytes = c->lim->max_output_bytes;
    const char *p = fmt.u.s->p, *end = p + fmt.u.s->n;
    size_t next = 0;
    int is_tuple = args.k == JV_LIST && (args.flags & JVF_TUPLE);
    while (p < end) {
        if (*p != '%') { jj_buf_put(&b, p++, 1); continue; }
        if (++p >= end) { free(b.p); return jj_fail(c, "incomplete format"); }
        if (*p == '%') { jj_buf_put(&b, "%", 1); p++; continue; }
        jv v;
        if (*p == '(') { /* %(name)s */
            const char *q = memchr(p, ')', (size_t)(end - p));
            if (!q || args.k != JV_DICT) { free(b.p); return jj_fail(c, "format requires a mapping"); }
            jv key = jv_strn(c->arena, p + 1, (size_t)(q - p - 1));
            const jv *hit = jv_oom(key) ? NULL : jj_dict_get(args.u.d, key);
            if (!hit) { free(b.p); return jj_fail(c, "format: missing key"); }
            v = *hit;
            p = q + 1;
        } else if (is_tuple) {
            if (next >= args.u.l->n) { free(b.p); return jj_fail(c, "not enough arguments for format string"); }
            v = args.u.l->a[next++];
        } else {
            if (next++) { free(b.p); return jj_fail(c, "not enough arguments for format string"); }
            v = args;
        }
        char spec[32];
        size_t k = 0;
        spec[k++] = '%';
        while (p < end && strchr("-+ #0123456789.", *p) && k < sizeof spec - 4) spec[k++] = *p++;
        if (p >= end) { free(b.p); return jj_fail(c, "incomplete format"); }
        char conv = *p++;
        if (conv == 's' || conv == 'r') {
            jj_buf tmp = {0};
            conv == 's' ? jv_write_str(&tmp, v) : jv_write_repr(&tmp, v);
            spec[k++] = 's';
            spec[k] = 0;
            char small[4096];
            if (k == 2 || tmp.n >= sizeof small / 2) jj_buf_put(&b, tmp.p ? tmp.p : "", tmp.n);
            else {
                int m = snprintf(small, sizeof small, spec, tmp.p ? tmp.p : "");
                if (m > 0) jj_buf_put(&b, small, (size_t)m < sizeof small ? (size_t)m : sizeof small - 1);
            }
            free(tmp.p);
        } else if (strchr("dixXo", conv) && jv_is_number(v)) {
            spec[k++] = 'l';
            spec[k++] = 'l';
            spec[k++] = conv == 'i' ? 'd' : conv;
            spec[k] = 0;
            jj_buf_printf(&b, spec, (long long)(v.k == JV_FLOAT ? (int64_t)v.u.f : v.u.i));
        } else if (strchr("feEgG", conv) && jv_is_number(v)) {
            spec[k++] = conv;
            spec[k] = 0;
            jj_buf_printf(&b, spec, jv_num(v));
        } else {
            free(b.p);
            return jj_fail(c, "unsupported format character '%c' or argument type", conv);
        }
    }
    /* Python complains about an unused argument only when it is a tuple, a str or has no __getitem__ */
    if ((is_tuple && next < args.u.l->n) || (!is_tuple && next == 0 && (jv_is_number(args) || args.k == JV_NONE || args.k == JV_STR))) {
        free(b.p);
        return jj_fail(c, "not all arguments converted during string formatting");
    }
    return str_result(c, &b, out);
}

/* str.format with {} / {0} / {name} fields. */
static int str_dot_format(jj_ctx *c, jv fmt, const jv *args, size_t n, const char *const *kn, const jv *kv,
                          size_t nk, jv *out) {
    jj_buf b = {0};
    b.max_bytes = c->lim->max_output_bytes;
    const char *p = fmt.u.s->p, *end = p + fmt.u.s->n;
    size_t auto_i = 0;
    while (p < end) {
        if ((*p == '{' || *p == '}') && p + 1 < end && p[1] == *p) { jj_buf_put(&b, p, 1); p += 2; continue; }
        if (*p != '{') { jj_buf_put(&b, p++, 1); continue; }
        const char *q = memchr(p, '}', (size_t)(end - p));
        if (!q) { free(b.p); return jj_fail(c, "Single '{' encountered in format string"); }
        size_t len = (size_t)(q - p - 1);
        jv v = jv_undef(NULL);
        if (len == 0) v = auto_i < n ? args[auto_i++] : jv_undef(NULL);
        else if (isdigit((unsigned char)p[1])) { size_t i = (size_t)atoi(p + 1); v = i < n ? args[i] : jv_undef(NULL); }
        else for (size_t k = 0; k < nk; k++) if (strlen(kn[k]) == len && !memcmp(kn[k], p + 1, len)) v = kv[k];
        if (v.k == JV_UNDEF) { free(b.p); return jj_fail(c, "format: missing argument"); }
        jv_write_str(&b, v);
        p = q + 1;
    }
    return str_result(c, &b, out);
}

/* ---- method dispatch ---- */

static int starts_ends(jj_ctx *c, jv s, jv what, int ends, int *r) {
    if (what.k == JV_LIST) {
        *r = 0;
        for (size_t i = 0; i < what.u.l->n && !*r; i++)
            if (starts_ends(c, s, what.u.l->a[i], ends, r) != 0) return -1;
        return 0;
    }
    if (what.k != JV_STR) return jj_fail(c, "%s first arg must be str or a tuple of str", ends ? "endswith" : "startswith");
    size_t m = what.u.s->n, n = s.u.s->n;
    *r = m <= n && !memcmp(s.u.s->p + (ends ? n - m : 0), what.u.s->p, m);
    return 0;
}

static int find_sub(jv s, jv sub, int last, int64_t *pos) {
    const char *p = s.u.s->p;
    size_t n = s.u.s->n, m = sub.u.s->n;
    *pos = -1;
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(p + i, sub.u.s->p, m)) {
            *pos = (int64_t)jj_utf8_len(p, i);
            if (!last) break;
        }
    return 0;
}

/* str.isdigit/isalpha/isalnum/isspace/isupper/islower (ASCII classes); 0 when name is none of them. */
static int str_predicate(jv s, const char *name, int *r) {
    static const char *const names[] = {"isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", NULL};
    int which = -1;
    for (int i = 0; names[i]; i++)
        if (!strcmp(name, names[i])) which = i;
    if (which < 0) return 0;
    int all = s.u.s->n > 0, cased = 0;
    for (size_t i = 0; i < s.u.s->n; i++) {
        unsigned char ch = (unsigned char)s.u.s->p[i];
        switch (which) {
        case 0: all &= isdigit(ch) != 0; break;
        case 1: all &= isalpha(ch) != 0; break;
        case 2: all &= isalnum(ch) != 0; break;
        case 3: all &= isspace(ch) != 0; break;
        default:
            cased |= isalpha(ch) != 0;
            if (which == 4 ? islower(ch) : isupper(ch)) all = 0;
        }
    }
    *r = which >= 4 ? all && cased : all;
    return 1;
}

static int str_method(jj_ctx *c, jv s, const char *name, const jv *args, size_t n, const char *const *kn,
                      const jv *kv, size_t nk, jv *out, int *handled) {
    jv a0 = karg(args, n, kn, kv, nk, 0, "__a0", jv_none()), a1 = karg(args, n, kn, kv, nk, 1, "__a1", jv_none());
    int r;
    *handled = 1;
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip"))
        return jj_py_strip(c, s, a0, name[0] != 'r', name[0] != 'l', out);
    if (!strcmp(name, "split") || !strcmp(name, "rsplit"))
        return py_split(c, s, karg(args, n, kn, kv, nk, 0, "sep", jv_none()),
                        karg(args, n, kn, kv, nk, 1, "maxsplit", jv_int(-1)), name[0] == 'r', out);
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        if (starts_ends(c, s, a0, name[0] == 'e', &r) != 0) return -1;
        *out = jv_bool(r);
        return 0;
    }
    if (!strcmp(name, "replace")) return jj_py_replace(c, s, a0, a1, karg(args, n, kn, kv, nk, 2, "count", jv_none()), out);
    if (!strcmp(name, "upper")) return jj_py_case(c, s, 1, out);
    if (!strcmp(name, "lower")) return jj_py_case(c, s, 0, out);
    if (!strcmp(name, "capitalize")) return jj_py_case(c, s, 2, out);
    if (!strcmp(name, "title")) return jj_py_case(c, s, 3, out);
    if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index") || !strcmp(name, "rindex")) {
        if (a0.k != JV_STR) return jj_fail(c, "%s() argument must be str", name);
        int64_t pos;
        find_sub(s, a0, name[0] == 'r', &pos);
        if (pos < 0 && strstr(name, "index")) return jj_fail(c, "substring not found");
        *out = jv_int(pos);
        return 0;
    }
    if (!strcmp(name, "count")) {
        if (a0.k != JV_STR) return jj_fail(c, "count() argument must be str");
        int64_t k = 0;
        size_t m = a0.u.s->n;
        if (m == 0) k = (int64_t)jj_utf8_len(s.u.s->p, s.u.s->n) + 1;
        else
            for (size_t i = 0; i + m <= s.u.s->n;)
                if (!memcmp(s.u.s->p + i, a0.u.s->p, m)) { k++; i += m; } else i++;
        *out = jv_int(k);
        return 0;
    }
    if (!strcmp(name, "join")) {
        jj_list *items;
        if (jj_iter_list(c, a0, &items) != 0) return -1;
        jj_buf b = {0};
        b.max_bytes = c->lim->max_output_bytes;
        for (size_t i = 0; i < items->n; i++) {
            if (items->a[i].k != JV_STR) { free(b.p); return jj_fail(c, "sequence item %zu: expected str instance", i); }
            if (i) jj_buf_put(&b, s.u.s->p, s.u.s->n);
            jj_buf_put(&b, items->a[i].u.s->p, items->a[i].u.s->n);
        }
        return str_result(c, &b, out);
    }
    if (!strcmp(name, "splitlines")) {
        *out = jv_list_new(c->arena);
        if (jv_oom(*out)) return jj_fail_oom(c);
        const char *p = s.u.s->p;
        size_t len = s.u.s->n, st = 0;
        for (size_t i = 0; i < len; i++)
            if (p[i] == '\n' || p[i] == '\r') {
                if (push_str(c, out->u.l, p + st, i - st) != 0) return -1;
                if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') i++;
                st = i + 1;
            }
        if (st < len && push_str(c, out->u.l, p + st, len - st) != 0) return -1;
        return 0;
    }
    if (!strncmp(name, "is", 2) && str_predicate(s, name, &r)) {
        *out = jv_bool(r);
        return 0;
    }
    if (!strcmp(name, "format")) return str_dot_format(c, s, args, n, kn, kv, nk, out);
    *handled = 0;
    return 0;
}

static const char *const MUTATORS[] = {"append", "pop", "extend", "insert", "remove", "clear", "sort", "reverse",
                                       "update", "popitem", "setdefault", "__setitem__", "__delitem__", NULL};

int jj_call_method(jj_ctx *c, jv obj, const char *name, const jv *args, size_t n, const char *const *kn,
                   const jv *kv, size_t nk, jv *out, int *handled) {
    *handled = 0;
    if (obj.k == JV_STR) return str_method(c, obj, name, args, n, kn, kv, nk, out, handled);
    for (int i = 0; MUTATORS[i]; i++)
        if (!strcmp(name, MUTATORS[i]))
            return jj_fail(c, "access to attribute '%s' of '%s' object is unsafe.", name, jv_type_name(obj));
    if (obj.k == JV_DICT) {
        *handled = 1;
        if (!strcmp(name, "get")) {
            const jv *v = n ? jj_dict_get(obj.u.d, args[0]) : NULL;
            *out = v ? *v : (n > 1 ? args[1] : jv_none());
            return 0;
        }
        if (!strcmp(name, "items") || !strcmp(name, "keys") || !strcmp(name, "values")) {
            *out = jv_list_new(c->arena);
            if (jv_oom(*out)) return jj_fail_oom(c);
            for (size_t i = 0; i < obj.u.d->n; i++) {
                jv v = name[0] == 'k' ? obj.u.d->keys[i] : obj.u.d->vals[i];
                if (name[0] == 'i') {
                    v = jv_list_new(c->arena);
                    if (jv_oom(v) || jj_list_push(c->arena, v.u.l, obj.u.d->keys[i]) != 0 ||
                        jj_list_push(c->arena, v.u.l, obj.u.d->vals[i]) != 0)
                        return jj_fail_oom(c);
                    v.flags |= JVF_TUPLE;
                }
                if (jj_list_push(c->arena, out->u.l, v) != 0) return jj_fail_oom(c);
            }
            return 0;
        }
        const jv *i0 = jj_dict_gets(obj.u.d, "index0");
        if (!strcmp(name, "cycle") && i0 && i0->k == JV_INT && jj_dict_gets(obj.u.d, "revindex0")) { /* loop.cycle */
            if (n == 0) return jj_fail(c, "no items for cycling given");
            *out = args[(size_t)i0->u.i % n];
            return 0;
        }
        if (!strcmp(name, "copy")) {
            *out = jv_dict_new(c->arena);
            if (jv_oom(*out)) return jj_fail_oom(c);
            for (size_t i = 0; i < obj.u.d->n; i++)
                if (jj_dict_set(c->arena, out->u.d, obj.u.d->keys[i], obj.u.d->vals[i]) != 0) return jj_fail_oom(c);
            return 0;
        }
        *handled = 0;
        return 0;
    }
    if (obj.k == JV_LIST && (!strcmp(name, "index") || !strcmp(name, "count"))) {
        *handled = 1;
        int64_t k = 0, at = -1;
        for (size_t i = 0; i < obj.u.l->n; i++)
            if (n && jv_eq(obj.u.l->a[i], args[0])) { k++; if (at < 0) at = (int64_t)i; }
        if (name[0] == 'i' && at < 0) return jj_fail(c, "value is not in list");
        *out = jv_int(name[0] == 'i' ? at : k);
        return 0;
    }
    return 0;
}

/* ---- global functions ---- */

static int fn_range(jj_ctx *c, const jv *args, size_t n, jv *out) {
    int64_t a = 0, z, st = 1;
    for (size_t i = 0; i < n; i++)
        if (args[i].k != JV_INT && args[i].k != JV_BOOL) return jj_fail(c, "range() arguments must be integers");
    if (n == 1) z = args[0].u.i;
    else if (n == 2 || n == 3) { a = args[0].u.i; z = args[1].u.i; if (n == 3) st = args[2].u.i; }
    else return jj_fail(c, "range expected 1 to 3 arguments");
    if (st == 0) return jj_fail(c, "range() arg 3 must not be zero");
    double count = ceil(((double)z - (double)a) / (double)st);
    if (count > 100000) return jj_fail(c, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    *out = jv_list_new(c->arena);
    if (jv_oom(*out)) return jj_fail_oom(c);
    for (int64_t i = a; st > 0 ? i < z : i > z; i += st)
        if (jj_list_push(c->arena, out->u.l, jv_int(i)) != 0) return jj_fail_oom(c);
    return 0;
}

static int fn_strftime(jj_ctx *c, const jv *args, size_t n, jv *out) {
    if (n < 1 || args[0].k != JV_STR) return jj_fail(c, "strftime_now() needs a format string");
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    time_t t = time(NULL);
    struct tm tm;
    if (sde && *sde) {
        t = (time_t)strtoll(sde, NULL, 10);
        gmtime_r(&t, &tm);
    } else {
        localtime_r(&t, &tm);
    }
    char buf[512];
    size_t k = args[0].u.s->n < 200 ? strftime(buf, sizeof buf, args[0].u.s->p, &tm) : 0;
    if (k == 0 && args[0].u.s->n) return jj_fail(c, "strftime_now(): bad or too long format");
    *out = jv_strn(c->arena, buf, k);
    return jv_oom(*out) ? jj_fail_oom(c) : 0;
}

int jj_call_func(jj_ctx *c, int fn, const jv *args, size_t n, const char *const *kn, const jv *kv, size_t nk,
                 jv *out) {
    switch (fn) {
    case JF_RANGE: return fn_range(c, args, n, out);
    case JF_STRFTIME: return fn_strftime(c, args, n, out);
    case JF_RAISE: {
        jj_buf b = {0};
        if (n) jv_write_str(&b, args[0]);
        if (c->err && c->errlen) snprintf(c->err, c->errlen, "%s", b.p ? b.p : "");
        free(b.p);
        return -1;
    }
    case JF_NAMESPACE: case JF_DICT: {
        *out = jv_dict_new(c->arena);
        if (jv_oom(*out)) return jj_fail_oom(c);
        out->u.d->ns = fn == JF_NAMESPACE;
        for (size_t i = 0; i < n; i++) { /* namespace({...}) / dict({...}): copy a mapping */
            if (args[i].k != JV_DICT) return jj_fail(c, "%s() positional argument must be a mapping",
                                                     fn == JF_DICT ? "dict" : "namespace");
            for (size_t k = 0; k < args[i].u.d->n; k++)
                if (jj_dict_set(c->arena, out->u.d, args[i].u.d->keys[k], args[i].u.d->vals[k]) != 0)
                    return jj_fail_oom(c);
        }
        for (size_t k = 0; k < nk; k++) {
            jv key = jv_str(c->arena, kn[k]);
            if (jv_oom(key) || jj_dict_set(c->arena, out->u.d, key, kv[k]) != 0) return jj_fail_oom(c);
        }
        return 0;
    }
    default: return jj_fail(c, "not callable");
    }
}
