/* lexer.c — splits a template into tokens as Jinja2's lexer does with HF's settings:
 *  - newlines normalised to "\n" and one trailing newline dropped (keep_trailing_newline=False);
 *  - `{{ }}` expressions, `{% %}` statements, `{# #}` comments, `{% raw %}...{% endraw %}`;
 *  - whitespace control: `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all
 *    whitespace after it; trim_blocks drops the first "\n" after a statement or comment (`+%}` keeps it);
 *    lstrip_blocks drops the whitespace (Python's \s) between the start of a line and a statement or
 *    comment (`{%+` keeps it).
 * Inside tags: names, integers, floats, string literals (Python escapes), operators.
 * Invariants: every token carries its 1-based source line; text tokens are never empty; the stream ends
 * with T_EOF; unterminated tags, strings and comments are errors naming their line. */
#include "base/err.h"
#include "jinja/jinja_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    jj_arena *a;
    const char *s; /* normalised source */
    size_t n, pos;
    int line;
    jj_token *toks;
    size_t n_toks, cap;
    char *err;
    size_t errlen;
} lexer;

static int lfail(lexer *L, const char *msg) { return ck_err(L->err, L->errlen, "template line %d: %s", L->line, msg); }

static int push(lexer *L, jj_token t) {
    if (L->n_toks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jj_token *nt = jj_alloc(L->a, cap * sizeof *nt);
        if (!nt) return lfail(L, "template too large");
        if (L->n_toks) memcpy(nt, L->toks, L->n_toks * sizeof *nt);
        L->toks = nt;
        L->cap = cap;
    }
    L->toks[L->n_toks++] = t;
    return 0;
}

static int count_lines(const char *p, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += p[i] == '\n';
    return k;
}

/* Emits text s[a..b) (already whitespace-controlled). */
static int emit_text(lexer *L, size_t a, size_t b, int line) {
    if (b <= a) return 0;
    jv v = jv_strn(L->a, L->s + a, b - a);
    if (jv_oom(v)) return lfail(L, "template too large");
    return push(L, (jj_token){T_TEXT, line, v.u.s->p, v.u.s->n, 0, 0});
}

static size_t rstrip_ws(const char *s, size_t a, size_t b) {
    while (b > a) { /* Python str.rstrip(): step back one character at a time */
        size_t i = b - 1;
        while (i > a && ((unsigned char)s[i] & 0xC0) == 0x80 && b - i < 4) i--;
        size_t k;
        if (!jj_is_pyspace_at(s + i, b - i, &k) || i + k != b) break;
        b = i;
    }
    return b;
}

static size_t skip_ws(const char *s, size_t p, size_t n) {
    size_t k;
    while (p < n && jj_is_pyspace_at(s + p, n - p, &k)) p += k;
    return p;
}

/* After a tag's closing delimiter at L->pos (just past it): '-' stripped all whitespace, else trim_blocks. */
static void after_close(lexer *L, int minus, int plus, int trim) {
    if (minus) {
        size_t p = skip_ws(L->s, L->pos, L->n);
        L->line += count_lines(L->s + L->pos, p - L->pos);
        L->pos = p;
    } else if (trim && !plus && L->pos < L->n && L->s[L->pos] == '\n') {
        L->pos++;
        L->line++;
    }
}

/* Decodes a Python string literal body with unicode-escape rules into an arena string. */
static int lex_string(lexer *L, jj_token *t) {
    char q = L->s[L->pos];
    size_t p = L->pos + 1, start_line = (size_t)L->line;
    jj_buf b = {0};
    int rc = 0;
    while (p < L->n && L->s[p] != q) {
        char ch = L->s[p];
        if (ch == '\n') L->line++;
        if (ch != '\\' || p + 1 >= L->n) {
            rc |= jj_buf_put(&b, &ch, 1);
            p++;
            continue;
        }
        char e = L->s[p + 1];
        char simple = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f'
                    : e == 'v' ? '\v' : e == 'a' ? '\a' : e == '0' ? '\0' : (e == '\\' || e == '\'' || e == '"') ? e : 1;
        if (e == 'x' || e == 'u' || e == 'U') {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            int ok = p + 2 + (size_t)nd <= L->n;
            for (int i = 0; ok && i < nd; i++) {
                char h = L->s[p + 2 + i];
                if (!isxdigit((unsigned char)h)) ok = 0;
                else cp = cp * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
            }
            if (!ok || cp > 0x10FFFF) { free(b.p); return lfail(L, "bad escape in string literal"); }
            char u[4];
            int k = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            if (k == 1) u[0] = (char)cp;
            else if (k == 2) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); }
            else if (k == 3) { u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[2] = (char)(0x80 | (cp & 0x3F)); }
            else { u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); }
            rc |= jj_buf_put(&b, u, (size_t)k);
            p += 2 + (size_t)nd;
        } else if (simple != 1) {
            rc |= jj_buf_put(&b, &simple, 1);
            p += 2;
        } else if (e == '\n') { /* backslash-newline: line continuation */
            L->line++;
            p += 2;
        } else { /* unknown escape: kept as written */
            rc |= jj_buf_put(&b, "\\", 1);
            p++;
        }
    }
    if (p >= L->n) {
        free(b.p);
        L->line = (int)start_line;
        return lfail(L, "unterminated string literal");
    }
    jv v = jv_strn(L->a, b.p ? b.p : "", b.n);
    free(b.p);
    if (rc || jv_oom(v)) return lfail(L, "template too large");
    *t = (jj_token){T_STRING, (int)start_line, v.u.s->p, v.u.s->n, 0, 0};
    L->pos = p + 1;
    return 0;
}

static int lex_number(lexer *L, jj_token *t) {
    size_t p = L->pos;
    int is_float = 0;
    while (p < L->n && (isdigit((unsigned char)L->s[p]) || L->s[p] == '_')) p++;
    if (p + 1 < L->n && L->s[p] == '.' && isdigit((unsigned char)L->s[p + 1])) {
        is_float = 1;
        p++;
        while (p < L->n && isdigit((unsigned char)L->s[p])) p++;
    }
    if (p < L->n && (L->s[p] == 'e' || L->s[p] == 'E')) {
        size_t q = p + 1;
        if (q < L->n && (L->s[q] == '+' || L->s[q] == '-')) q++;
        if (q < L->n && isdigit((unsigned char)L->s[q])) {
            is_float = 1;
            p = q;
            while (p < L->n && isdigit((unsigned char)L->s[p])) p++;
        }
    }
    char buf[64];
    size_t k = 0;
    for (size_t i = L->pos; i < p; i++)
        if (L->s[i] != '_' && k < sizeof buf - 1) buf[k++] = L->s[i];
    buf[k] = 0;
    errno = 0;
    *t = (jj_token){is_float ? T_FLOAT : T_INT, L->line, NULL, 0, 0, 0};
    if (is_float) t->f = strtod(buf, NULL);
    else {
        long long v = strtoll(buf, NULL, 10);
        if (errno) return lfail(L, "integer literal too large");
        t->i = v;
    }
    L->pos = p;
    return 0;
}

static const char *const OPS[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                  "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", NULL};

/* Tokens inside a tag until its closer ("}}" or "%}"); sets *minus and *plus from the closer. */
static int lex_tag(lexer *L, char closer, int *minus, int *plus) {
    int depth = 0; /* brackets: a "}" inside {...} is not the end of "}}" */
    for (;;) {
        while (L->pos < L->n && (L->s[L->pos] == ' ' || L->s[L->pos] == '\t' || L->s[L->pos] == '\n' ||
                                 L->s[L->pos] == '\r')) {
            if (L->s[L->pos] == '\n') L->line++;
            L->pos++;
        }
        if (L->pos >= L->n) return lfail(L, closer == '}' ? "unexpected end of template, expected '}}'"
                                                           : "unexpected end of template, expected '%}'");
        const char *p = L->s + L->pos;
        size_t left = L->n - L->pos;
        int pm = (p[0] == '-' || p[0] == '+');
        if (depth == 0 && left >= (size_t)(2 + pm) && p[pm] == closer && p[pm + 1] == '}') {
            *minus = p[0] == '-';
            *plus = p[0] == '+';
            L->pos += (size_t)(2 + pm);
            return 0;
        }
        jj_token t;
        if (p[0] == '\'' || p[0] == '"') {
            if (lex_string(L, &t) != 0) return -1;
        } else if (isdigit((unsigned char)p[0])) {
            if (lex_number(L, &t) != 0) return -1;
        } else if (isalpha((unsigned char)p[0]) || p[0] == '_') {
            size_t k = 0;
            while (k < left && (isalnum((unsigned char)p[k]) || p[k] == '_')) k++;
            jv v = jv_strn(L->a, p, k);
            if (jv_oom(v)) return lfail(L, "template too large");
            t = (jj_token){T_NAME, L->line, v.u.s->p, k, 0, 0};
            L->pos += k;
        } else {
            const char *op = NULL;
            for (int i = 0; OPS[i]; i++)
                if (!strncmp(p, OPS[i], strlen(OPS[i]))) { op = OPS[i]; break; }
            if (!op) return lfail(L, "unexpected character in tag");
            if (op[0] == '(' || op[0] == '[' || op[0] == '{') depth++;
            if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && depth > 0) depth--;
            t = (jj_token){T_OP, L->line, op, strlen(op), 0, 0};
            L->pos += strlen(op);
        }
        if (push(L, t) != 0) return -1;
    }
}

/* {% raw %} ... {% endraw %}: the body up to the end tag is text. L->pos is just past "raw %}". */
static int lex_raw(lexer *L) {
    size_t p = L->pos;
    for (;;) {
        const char *q = strstr(L->s + p, "{%");
        if (!q) return lfail(L, "missing end of raw directive");
        size_t at = (size_t)(q - L->s), r = at + 2;
        int minus = r < L->n && L->s[r] == '-';
        if (minus || (r < L->n && L->s[r] == '+')) r++;
        while (r < L->n && (L->s[r] == ' ' || L->s[r] == '\t' || L->s[r] == '\n')) r++;
        if (strncmp(L->s + r, "endraw", 6) != 0) { p = at + 2; continue; }
        r += 6;
        while (r < L->n && (L->s[r] == ' ' || L->s[r] == '\t' || L->s[r] == '\n')) r++;
        int cminus = r < L->n && L->s[r] == '-', cplus = r < L->n && L->s[r] == '+';
        if (cminus || cplus) r++;
        if (r + 1 >= L->n || L->s[r] != '%' || L->s[r + 1] != '}') { p = at + 2; continue; }
        size_t end = minus ? rstrip_ws(L->s, L->pos, at) : at;
        if (emit_text(L, L->pos, end, L->line) != 0) return -1;
        L->line += count_lines(L->s + L->pos, r + 2 - L->pos);
        L->pos = r + 2;
        after_close(L, cminus, cplus, 1);
        return 0;
    }
}

/* The text before a tag at `at`, with the tag's whitespace control; kind is '{', '%' or '#'. */
static int text_before(lexer *L, size_t at, char kind, char mod) {
    size_t a = L->pos, b = at;
    if (mod == '-') {
        b = rstrip_ws(L->s, a, b);
    } else if (mod != '+' && kind != '{') { /* lstrip_blocks */
        size_t l = b;
        while (l > a && L->s[l - 1] != '\n') l--;
        int line_start = l > a || a == 0 || L->s[a - 1] == '\n';
        size_t k = l, w; /* Jinja checks the rest of the line with Python's \s */
        while (k < b && jj_is_pyspace_at(L->s + k, b - k, &w)) k += w;
        if (line_start && k == b) b = l;
    }
    int line = L->line;
    L->line += count_lines(L->s + a, at - a);
    return emit_text(L, a, b, line);
}

static int is_raw_tag(const lexer *L, size_t first_tok) {
    return L->n_toks == first_tok + 3 && L->toks[first_tok + 1].kind == T_NAME &&
           L->toks[first_tok + 1].n == 3 && !memcmp(L->toks[first_tok + 1].s, "raw", 3);
}

static int lex_all(lexer *L) {
    while (L->pos < L->n) {
        const char *q = L->s + L->pos;
        const char *t = NULL;
        for (const char *x = q; (x = strchr(x, '{')) != NULL; x++)
            if (x[1] == '{' || x[1] == '%' || x[1] == '#') { t = x; break; }
        if (!t) return text_before(L, L->n, '{', '+');
        size_t at = (size_t)(t - L->s);
        char kind = t[1], mod = (t[2] == '-' || t[2] == '+') ? t[2] : 0;
        if (text_before(L, at, kind, mod) != 0) return -1;
        L->pos = at + 2 + (mod ? 1 : 0);
        if (kind == '#') {
            const char *e = strstr(L->s + L->pos, "#}");
            if (!e) return lfail(L, "missing end of comment tag");
            size_t end = (size_t)(e - L->s);
            int minus = end > L->pos && L->s[end - 1] == '-', plus = end > L->pos && L->s[end - 1] == '+';
            L->line += count_lines(L->s + L->pos, end - L->pos);
            L->pos = end + 2;
            after_close(L, minus, plus, 1);
            continue;
        }
        int minus = 0, plus = 0;
        size_t first = L->n_toks;
        if (push(L, (jj_token){kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN, L->line, NULL, 0, 0, 0}) != 0) return -1;
        if (lex_tag(L, kind == '{' ? '}' : '%', &minus, &plus) != 0) return -1;
        if (push(L, (jj_token){kind == '{' ? T_VAR_END : T_BLOCK_END, L->line, NULL, 0, 0, 0}) != 0) return -1;
        after_close(L, minus, plus, kind == '%');
        if (kind == '%' && is_raw_tag(L, first)) {
            L->n_toks = first;
            if (lex_raw(L) != 0) return -1;
        }
    }
    return 0;
}

int jj_lex(jj_arena *a, const char *src, size_t len, jj_token **toks, size_t *n_toks, char *err, size_t errlen) {
    char *s = jj_alloc(a, len + 1);
    if (!s) return ck_err(err, errlen, "template too large");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) { /* "\r\n" and "\r" -> "\n" */
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    if (memchr(s, 0, n)) return ck_err(err, errlen, "template contains a NUL byte");
    lexer L = {a, s, n, 0, 1, NULL, 0, 0, err, errlen};
    if (lex_all(&L) != 0) return -1;
    if (push(&L, (jj_token){T_EOF, L.line, NULL, 0, 0, 0}) != 0) return -1;
    *toks = L.toks;
    *n_toks = L.n_toks;
    return 0;
}
