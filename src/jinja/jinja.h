/* jinja.h — a Jinja2 interpreter for chat templates, rendering as HF transformers' apply_chat_template
 * does: its sandboxed, immutable environment with trim_blocks and lstrip_blocks, the loop-control
 * extension ({% break %}, {% continue %}), its tojson filter (json.dumps with ensure_ascii=False),
 * raise_exception() and strftime_now() (which honours SOURCE_DATE_EPOCH).
 *
 * A parsed template (ck_jinja) is immutable and may be rendered by several threads at once. Rendering
 * never crashes or hangs on hostile templates or variables: recursion depth, loop iterations, output
 * size and memory are bounded (ck_jinja_limits), and every failure returns an error naming the template
 * line ("template line 12: ..."). A template that raises reports its own message. */
#ifndef CK_JINJA_H
#define CK_JINJA_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_jinja ck_jinja;

typedef struct ck_jinja_limits {
    size_t max_output_bytes;  /* rendered text */
    size_t max_memory_bytes;  /* every value built while rendering */
    uint64_t max_steps;       /* loop iterations + macro calls */
    int max_depth;            /* nesting of expressions and macro calls */
} ck_jinja_limits;

/* The limits a render uses when given NULL: 16 MiB of output, 512 MiB of values, 10M steps, depth 200. */
ck_jinja_limits ck_jinja_default_limits(void);

/* Parses template text src[0..len). */
int ck_jinja_parse(const char *src, size_t len, ck_jinja **out, char *err, size_t errlen);
void ck_jinja_free(ck_jinja *t);

/* Renders t with vars, a cJSON object (cJSON *, passed as void * to keep cJSON out of this header) whose
 * members become the template's variables (JSON null -> None, integral numbers -> int unless marked by
 * ck_jinja_json_mark_floats). *out is malloc'd
 * and NUL-terminated; *out_len (may be NULL) excludes the NUL. When the template raises
 * (raise_exception("msg")), err holds exactly "msg". lim NULL: ck_jinja_default_limits(). */
int ck_jinja_render(const ck_jinja *t, const void *vars, const ck_jinja_limits *lim, char **out, size_t *out_len,
                    char *err, size_t errlen);

/* cJSON parses 1.0 and 1 to the same double; Python keeps 1.0 a float (printed "1.0"). Given the tree
 * parsed from text[0..len), marks the numbers written as floats so a render treats them as Python would
 * (the mark survives cJSON_Duplicate). Without it, integral numbers become int. */
void ck_jinja_json_mark_floats(void *cjson, const char *text, size_t len);

#endif
