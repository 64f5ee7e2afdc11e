/* topology.c — parses cake's static topology YAML (a mapping of worker name -> { host, layers,
 * description, vram_bytes, tflops }) with libyaml's document API, and checks a parsed topology against a
 * model. Parsing is pure and bounded: it walks a fixed depth (root mapping -> worker mapping -> layer
 * sequence -> scalars), so anchors, aliases and cycles cannot make it recurse; duplicate detection and
 * range merging sort index arrays (O(n log n) even on a hostile 1 MiB file).
 * Invariants of a parsed worker: name and host non-empty without NUL bytes; host is "addr:port" with port
 * 1..65535 (an address holding ':' must be bracketed, "[::1]:10128"); prefix never NULL ("" when the
 * worker lists no layers); either first = 0, last = -1 (no layers) or 0 <= first <= last < CK_TOPO_MAX_LAYER
 * and every listed entry used that prefix, without overlaps or gaps. Unknown keys are ignored.
 * Error messages end with "(line N)", N 1-based, and name the worker and the field. */
#include "cluster/topology.h"

#include "base/err.h"
#include "base/file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define CK_TOPO_MAX_FILE ((size_t)1 << 20)
#define CK_TOPO_MAX_LAYER 1000000 /* layer indices are < this: no real model comes near it */

typedef struct layer_span {
    int64_t a, b;  /* inclusive */
    size_t line;   /* 1-based */
} layer_span;

static size_t node_line(const yaml_node_t *n) { return n->start_mark.line + 1; }

static const char *kind_name(const yaml_node_t *n) {
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a sequence";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

/* 1 for a plain scalar YAML reads as null: empty, "~" or "null". */
static int is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    return len == 0 || (len == 1 && s[0] == '~') || (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                                                                  !memcmp(s, "NULL", 4)));
}

/* Formats libyaml's own error (syntax, reader, memory) with the line it happened on. */
static int yaml_error(const yaml_parser_t *p, const char *text, size_t len, char *err, size_t errlen) {
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_MEMORY_ERROR) return ck_err(err, errlen, "topology: out of memory while parsing YAML");
    if (p->error == YAML_READER_ERROR) {
        size_t line = 1, end = p->problem_offset < len ? p->problem_offset : len;
        for (size_t i = 0; i < end; i++) line += text[i] == '\n';
        return ck_err(err, errlen, "topology: invalid YAML text: %s at byte %zu (line %zu)", problem,
                      p->problem_offset, line);
    }
    if (p->context) /* e.g. "while scanning a quoted scalar": say where that began, often the real mistake */
        return ck_err(err, errlen, "topology: invalid YAML: %s (line %zu, column %zu) %s that starts on line %zu",
                      problem, p->problem_mark.line + 1, p->problem_mark.column + 1, p->context,
                      p->context_mark.line + 1);
    return ck_err(err, errlen, "topology: invalid YAML: %s (line %zu, column %zu)", problem,
                  p->problem_mark.line + 1, p->problem_mark.column + 1);
}

/* *out = a malloc'd copy of scalar n (field of worker, for messages); non-scalars and NUL bytes are errors. */
static int scalar_dup(const yaml_node_t *n, const char *worker, const char *field, char **out, char *err,
                      size_t errlen) {
    if (n->type != YAML_SCALAR_NODE)
        return ck_err(err, errlen, "worker %s: %s must be a scalar, found %s (line %zu)", worker, field, kind_name(n),
                      node_line(n));
    size_t len = n->data.scalar.length;
    if (memchr(n->data.scalar.value, 0, len))
        return ck_err(err, errlen, "worker %s: %s contains a NUL byte (line %zu)", worker, field, node_line(n));
    *out = malloc(len + 1);
    if (!*out) return ck_err(err, errlen, "worker %s: out of memory", worker);
    memcpy(*out, n->data.scalar.value, len);
    (*out)[len] = 0;
    return 0;
}

/* Duplicate-key detection sorts scalar keys by bytes, then by position in the mapping. */
typedef struct key_ref {
    const yaml_node_t *key;
    size_t pos;
} key_ref;

static int key_cmp(const void *x, const void *y) {
    const key_ref *a = x, *b = y;
    size_t la = a->key->data.scalar.length, lb = b->key->data.scalar.length;
    int c = memcmp(a->key->data.scalar.value, b->key->data.scalar.value, la < lb ? la : lb);
    if (c) return c;
    if (la != lb) return la < lb ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Errors on the first repeated scalar key of mapping m (non-scalar keys are left to the caller).
 * worker is NULL for the root mapping (whose keys are worker names). */
static int check_dup_keys(yaml_document_t *doc, const yaml_node_t *m, const char *worker, char *err, size_t errlen) {
    size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start), k = 0;
    if (n < 2) return 0;
    key_ref *refs = malloc(n * sizeof *refs);
    if (!refs) return ck_err(err, errlen, "topology: out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *key = yaml_document_get_node(doc, m->data.mapping.pairs.start[i].key);
        if (key && key->type == YAML_SCALAR_NODE) refs[k++] = (key_ref){key, i};
    }
    qsort(refs, k, sizeof *refs, key_cmp);
    const key_ref *dup = NULL;
    for (size_t i = 1; i < k; i++) {
        const yaml_node_t *a = refs[i - 1].key, *b = refs[i].key;
        if (a->data.scalar.length == b->data.scalar.length &&
            !memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length) &&
            (!dup || refs[i].pos < dup->pos))
            dup = &refs[i];
    }
    int rc = 0;
    if (dup) {
        const yaml_node_t *key = dup->key;
        int shown = key->data.scalar.length > 200 ? 200 : (int)key->data.scalar.length;
        rc = worker ? ck_err(err, errlen, "worker %s: duplicate key '%.*s' (line %zu)", worker, shown,
                             (const char *)key->data.scalar.value, node_line(key))
                    : ck_err(err, errlen, "topology: duplicate worker name '%.*s' (line %zu)", shown,
                             (const char *)key->data.scalar.value, node_line(key));
    }
    free(refs);
    return rc;
}

/* host must be "addr:port": addr non-empty (bracketed when it holds ':'), no whitespace, port 1..65535. */
static int check_host(const char *host, const char *worker, size_t line, char *err, size_t errlen) {
    const char *colon = strrchr(host, ':');
    if (!colon)
        return ck_err(err, errlen, "worker %s: host '%s' has no port (expected addr:port) (line %zu)", worker, host,
                      line);
    size_t addr_len = (size_t)(colon - host);
    if (addr_len == 0) return ck_err(err, errlen, "worker %s: host '%s' has no address (line %zu)", worker, host, line);
    if (strpbrk(host, " \t\r\n"))
        return ck_err(err, errlen, "worker %s: host '%s' contains whitespace (line %zu)", worker, host, line);
    if (memchr(host, ':', addr_len) && !(host[0] == '[' && host[addr_len - 1] == ']' && addr_len > 2))
        return ck_err(err, errlen, "worker %s: host '%s': an IPv6 address must be bracketed, [addr]:port (line %zu)",
                      worker, host, line);
    long port = 0;
    const char *p = colon + 1;
    for (; *p >= '0' && *p <= '9' && port <= 65535; p++) port = port * 10 + (*p - '0');
    if (p == colon + 1 || *p || port < 1 || port > 65535)
        return ck_err(err, errlen, "worker %s: host '%s': port must be a number in 1..65535 (line %zu)", worker, host,
                      line);
    return 0;
}

static int parse_vram(const yaml_node_t *n, const char *worker, uint64_t *out, char *err, size_t errlen) {
    if (n->type != YAML_SCALAR_NODE)
        return ck_err(err, errlen, "worker %s: vram_bytes must be a scalar, found %s (line %zu)", worker, kind_name(n),
                      node_line(n));
    if (is_null(n)) return *out = 0, 0;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    uint64_t v = 0;
    int ok = len > 0;
    for (size_t i = 0; ok && i < len; i++)
        ok = s[i] >= '0' && s[i] <= '9' && !__builtin_mul_overflow(v, 10, &v) &&
             !__builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v);
    if (!ok)
        return ck_err(err, errlen, "worker %s: vram_bytes '%.*s' is not a non-negative integer (line %zu)", worker,
                      len > 64 ? 64 : (int)len, s, node_line(n));
    *out = v;
    return 0;
}

static int parse_tflops(const yaml_node_t *n, const char *worker, double *out, char *err, size_t errlen) {
    if (n->type != YAML_SCALAR_NODE)
        return ck_err(err, errlen, "worker %s: tflops must be a scalar, found %s (line %zu)", worker, kind_name(n),
                      node_line(n));
    if (is_null(n)) return *out = 0, 0;
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    char buf[64];
    double v = -1;
    int ok = len > 0 && len < sizeof buf && ((s[0] >= '0' && s[0] <= '9') || s[0] == '.' || s[0] == '+');
    if (ok) {
        memcpy(buf, s, len);
        buf[len] = 0;
        char *end;
        v = strtod(buf, &end);
        ok = end == buf + len && isfinite(v) && v >= 0;
    }
    if (!ok)
        return ck_err(err, errlen, "worker %s: tflops '%.*s' is not a non-negative finite number (line %zu)", worker,
                      len > 64 ? 64 : (int)len, s, node_line(n));
    *out = v + 0.0; /* -0 -> 0 */
    return 0;
}

/* Reads decimal digits s[0..len) as a layer index below CK_TOPO_MAX_LAYER; -1 when not one. */
static int64_t layer_index(const char *s, size_t len) {
    if (len == 0) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
        if (v >= CK_TOPO_MAX_LAYER) return -1;
    }
    return v;
}

/* Splits entry "PREFIX.N" / "PREFIX.A-B" (len bytes) into *prefix_len and the range; -1 when malformed. */
static int split_entry(const char *s, size_t len, size_t *prefix_len, int64_t *a, int64_t *b) {
    const char *dot = NULL;
    for (size_t i = len; i > 0; i--)
        if (s[i - 1] == '.') {
            dot = s + i - 1;
            break;
        }
    if (!dot || dot == s) return -1;
    *prefix_len = (size_t)(dot - s);
    const char *r = dot + 1, *end = s + len;
    const char *dash = memchr(r, '-', (size_t)(end - r));
    *a = layer_index(r, (size_t)((dash ? dash : end) - r));
    *b = dash ? layer_index(dash + 1, (size_t)(end - dash - 1)) : *a;
    return *a < 0 || *b < 0 ? -1 : 0;
}

static int span_cmp(const void *x, const void *y) {
    const layer_span *a = x, *b = y;
    if (a->a != b->a) return a->a < b->a ? -1 : 1;
    return a->b < b->b ? -1 : a->b > b->b;
}

static const char *span_str(int64_t a, int64_t b, char *buf, size_t cap) {
    if (a == b) snprintf(buf, cap, "%lld", (long long)a);
    else snprintf(buf, cap, "%lld-%lld", (long long)a, (long long)b);
    return buf;
}

/* Sorts spans[0..n) and merges them into w->first..w->last: an overlap or a gap is an error. */
static int merge_spans(layer_span *spans, size_t n, ck_topo_worker *w, char *err, size_t errlen) {
    qsort(spans, n, sizeof *spans, span_cmp);
    char x[48], y[48];
    for (size_t i = 1; i < n; i++) {
        const layer_span *p = &spans[i - 1], *c = &spans[i];
        if (c->a <= p->b)
            return ck_err(err, errlen, "worker %s: layers %s and %s overlap (lines %zu and %zu)", w->name,
                          span_str(p->a, p->b, x, sizeof x), span_str(c->a, c->b, y, sizeof y), p->line, c->line);
        if (c->a != p->b + 1)
            return ck_err(err, errlen, "worker %s: layers %s and %s are not contiguous (lines %zu and %zu)", w->name,
                          span_str(p->a, p->b, x, sizeof x), span_str(c->a, c->b, y, sizeof y), p->line, c->line);
    }
    w->first = spans[0].a;
    w->last = spans[n - 1].b;
    return 0;
}

/* Reads one layer entry (seq item e) into *span, checking its prefix against w->prefix (set by the first). */
static int parse_entry(const yaml_node_t *e, ck_topo_worker *w, layer_span *span, char *err, size_t errlen) {
    if (e->type != YAML_SCALAR_NODE)
        return ck_err(err, errlen, "worker %s: layers entries must be scalars, found %s (line %zu)", w->name,
                      kind_name(e), node_line(e));
    const char *s = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length, plen;
    int shown = len > 200 ? 200 : (int)len;
    if (memchr(s, 0, len) || split_entry(s, len, &plen, &span->a, &span->b))
        return ck_err(err, errlen,
                      "worker %s: layers entry '%.*s' is not PREFIX.N or PREFIX.A-B (decimal, below %d) (line %zu)",
                      w->name, shown, s, CK_TOPO_MAX_LAYER, node_line(e));
    if (span->a > span->b)
        return ck_err(err, errlen, "worker %s: layers entry '%.*s' has start %lld after end %lld (line %zu)", w->name,
                      shown, s, (long long)span->a, (long long)span->b, node_line(e));
    span->line = node_line(e);
    if (!w->prefix) {
        if (!(w->prefix = malloc(plen + 1))) return ck_err(err, errlen, "worker %s: out of memory", w->name);
        memcpy(w->prefix, s, plen);
        w->prefix[plen] = 0;
    } else if (strlen(w->prefix) != plen || memcmp(w->prefix, s, plen)) {
        return ck_err(err, errlen, "worker %s: layers entry '%.*s' has prefix '%.*s' but earlier entries use '%s' "
                      "(line %zu)", w->name, shown, s, (int)plen, s, w->prefix, node_line(e));
    }
    return 0;
}

/* Reads w's `layers` value: a sequence of entries (or null / an empty sequence: no layers). */
static int parse_layers(yaml_document_t *doc, const yaml_node_t *n, ck_topo_worker *w, char *err, size_t errlen) {
    if (is_null(n)) return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return ck_err(err, errlen, "worker %s: layers must be a sequence, found %s (line %zu)", w->name, kind_name(n),
                      node_line(n));
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) return 0;
    layer_span *spans = malloc(count * sizeof *spans);
    if (!spans) return ck_err(err, errlen, "worker %s: out of memory", w->name);
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        const yaml_node_t *e = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
        rc = e ? parse_entry(e, w, &spans[i], err, errlen) : ck_err(err, errlen, "worker %s: bad layers", w->name);
    }
    if (rc == 0) rc = merge_spans(spans, count, w, err, errlen);
    free(spans);
    return rc;
}

/* Sets one field of w from key k / value v; unknown keys are ignored. */
static int parse_field(yaml_document_t *doc, const yaml_node_t *k, const yaml_node_t *v, ck_topo_worker *w,
                       char *err, size_t errlen) {
    if (k->type != YAML_SCALAR_NODE)
        return ck_err(err, errlen, "worker %s: keys must be scalars, found %s (line %zu)", w->name, kind_name(k),
                      node_line(k));
    const char *key = (const char *)k->data.scalar.value;
    size_t klen = k->data.scalar.length;
#define KEY_IS(lit) (klen == sizeof(lit) - 1 && !memcmp(key, lit, klen))
    if (KEY_IS("host")) {
        if (scalar_dup(v, w->name, "host", &w->host, err, errlen)) return -1;
        return check_host(w->host, w->name, node_line(v), err, errlen);
    }
    if (KEY_IS("description")) {
        if (is_null(v)) return 0;
        return scalar_dup(v, w->name, "description", &w->description, err, errlen);
    }
    if (KEY_IS("vram_bytes")) return parse_vram(v, w->name, &w->vram_bytes, err, errlen);
    if (KEY_IS("tflops")) return parse_tflops(v, w->name, &w->tflops, err, errlen);
    if (KEY_IS("layers")) return parse_layers(doc, v, w, err, errlen);
#undef KEY_IS
    return 0;
}

/* Fills w (already zeroed, name set) from its mapping node m. */
static int parse_worker(yaml_document_t *doc, const yaml_node_t *m, ck_topo_worker *w, char *err, size_t errlen) {
    w->first = 0;
    w->last = -1;
    if (m->type != YAML_MAPPING_NODE)
        return ck_err(err, errlen, "worker %s: expected a mapping with host and layers, found %s (line %zu)", w->name,
                      is_null(m) ? "nothing" : kind_name(m), node_line(m));
    if (check_dup_keys(doc, m, w->name, err, errlen)) return -1;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        if (!k || !v) return ck_err(err, errlen, "worker %s: malformed mapping (line %zu)", w->name, node_line(m));
        if (parse_field(doc, k, v, w, err, errlen)) return -1;
    }
    if (!w->host) return ck_err(err, errlen, "worker %s: host is missing (line %zu)", w->name, node_line(m));
    if (!w->prefix && !(w->prefix = calloc(1, 1))) return ck_err(err, errlen, "worker %s: out of memory", w->name);
    return 0;
}

/* Fills out from the root node of doc. */
static int parse_root(yaml_document_t *doc, ck_topology *out, char *err, size_t errlen) {
    const yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root) return ck_err(err, errlen, "topology: empty document, expected a mapping of worker name -> worker");
    if (root->type != YAML_MAPPING_NODE)
        return ck_err(err, errlen, "topology: the root must be a mapping of worker name -> worker, found %s (line %zu)",
                      kind_name(root), node_line(root));
    if (check_dup_keys(doc, root, NULL, err, errlen)) return -1;
    size_t n = (size_t)(root->data.mapping.pairs.top - root->data.mapping.pairs.start);
    if (n && !(out->workers = calloc(n, sizeof *out->workers))) return ck_err(err, errlen, "topology: out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *p = &root->data.mapping.pairs.start[i];
        const yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        if (!k || !v) return ck_err(err, errlen, "topology: malformed mapping (line %zu)", node_line(root));
        if (k->type != YAML_SCALAR_NODE)
            return ck_err(err, errlen, "topology: worker names must be scalars, found %s (line %zu)", kind_name(k),
                          node_line(k));
        ck_topo_worker *w = &out->workers[out->n++];
        if (scalar_dup(k, "?", "name", &w->name, err, errlen)) return -1;
        if (!w->name[0]) return ck_err(err, errlen, "topology: empty worker name (line %zu)", node_line(k));
        if (parse_worker(doc, v, w, err, errlen)) return -1;
    }
    return 0;
}

int ck_topology_parse(const char *text, size_t len, ck_topology *out, char *err, size_t errlen) {
    if (!out) return ck_err(err, errlen, "topology: no output");
    memset(out, 0, sizeof *out);
    if (!text && len) return ck_err(err, errlen, "topology: no text");
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return ck_err(err, errlen, "topology: out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""), len);
    int rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_error(&parser, text, len, err, errlen);
    } else {
        rc = parse_root(&doc, out, err, errlen);
        yaml_document_delete(&doc);
        if (rc == 0) { /* one document only: a second one (or trailing garbage) is an error */
            if (!yaml_parser_load(&parser, &doc)) {
                rc = yaml_error(&parser, text, len, err, errlen);
            } else {
                const yaml_node_t *extra = yaml_document_get_root_node(&doc);
                if (extra)
                    rc = ck_err(err, errlen, "topology: more than one YAML document (line %zu)", node_line(extra));
                yaml_document_delete(&doc);
            }
        }
    }
    yaml_parser_delete(&parser);
    if (rc) ck_topology_free(out);
    return rc;
}

int ck_topology_load(const char *path, ck_topology *out, char *err, size_t errlen) {
    if (out) memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    if (ck_file_read_max(path, CK_TOPO_MAX_FILE, &text, &len, err, errlen)) return -1;
    char why[400];
    int rc = ck_topology_parse(text, len, out, why, sizeof why);
    free(text);
    if (rc) return ck_err(err, errlen, "%s: %s", path, why);
    return 0;
}

void ck_topology_free(ck_topology *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) {
        ck_topo_worker *w = &t->workers[i];
        free(w->name);
        free(w->host);
        free(w->description);
        free(w->prefix);
    }
    free(t->workers);
    t->workers = NULL;
    t->n = 0;
}

typedef struct held_range {
    int64_t first, last;
    size_t idx; /* worker index in file order */
} held_range;

static int held_cmp(const void *x, const void *y) {
    const held_range *a = x, *b = y;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Checks one worker's prefix and bounds against the model. */
static int check_worker(const ck_topo_worker *w, const char *prefix, int64_t n_layers, char *err, size_t errlen) {
    char r[48];
    if (!w->prefix || strcmp(w->prefix, prefix))
        return ck_err(err, errlen, "worker %s: layer prefix '%s' does not match the model's '%s'", w->name,
                      w->prefix ? w->prefix : "", prefix);
    if (w->first < 0 || w->last >= n_layers)
        return ck_err(err, errlen, "worker %s: layers %s out of range: the model has %lld layers (0-%lld)", w->name,
                      span_str(w->first, w->last, r, sizeof r), (long long)n_layers, (long long)n_layers - 1);
    return 0;
}

int ck_topology_check(const ck_topology *t, const char *prefix, int64_t n_layers, char *err, size_t errlen) {
    if (!t || !prefix || n_layers < 0) return ck_err(err, errlen, "topology check: bad arguments");
    held_range *rs = malloc((t->n ? t->n : 1) * sizeof *rs);
    size_t k = 0;
    if (!rs) return ck_err(err, errlen, "topology check: out of memory");
    for (size_t i = 0; i < t->n; i++) {
        const ck_topo_worker *w = &t->workers[i];
        if (w->last < w->first) continue; /* no layers */
        if (check_worker(w, prefix, n_layers, err, errlen)) {
            free(rs);
            return -1;
        }
        rs[k++] = (held_range){w->first, w->last, i};
    }
    qsort(rs, k, sizeof *rs, held_cmp);
    int rc = 0;
    for (size_t j = 1; j < k && rc == 0; j++) { /* sorted and disjoint so far: only the neighbour can overlap */
        const held_range *p = &rs[j - 1], *c = &rs[j];
        if (c->first <= p->last) {
            size_t a = p->idx < c->idx ? p->idx : c->idx, b = p->idx < c->idx ? c->idx : p->idx;
            rc = ck_err(err, errlen, "layer %lld is held by two workers: %s and %s", (long long)c->first,
                        t->workers[a].name, t->workers[b].name);
        }
    }
    free(rs);
    return rc;
}

const ck_topo_worker *ck_topology_find(const ck_topology *t, const char *name) {
    if (!t || !name) return NULL;
    for (size_t i = 0; i < t->n; i++)
        if (t->workers[i].name && !strcmp(t->workers[i].name, name)) return &t->workers[i];
    return NULL;
}
