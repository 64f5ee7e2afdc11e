/* cmd_hub.c — `cake pull`, `cake list`, `cake rm` and ck_cli_resolve_model(): flag parsing, prompts,
 * progress display and output formatting over src/hub (paths.h for where caches live, pull.h, scan.h,
 * resolve.h). Progress goes to stderr (a redrawn bar on a terminal, one line per file otherwise);
 * results go to stdout. Exit status: 0 ok, 1 runtime error or declined prompt, 2 usage error. */
#include "cli/cli.h"
#include "base/file.h"
#include "hub/paths.h"
#include "hub/pull.h"
#include "hub/resolve.h"
#include "hub/scan.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- progress display ---- */

typedef struct printer {
    int tty;
    int bar_open;              /* a bar line is on screen without its newline */
    char file[128];
    uint64_t size, have0;
    double t0, last;
} printer;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void short_name(char *dst, size_t cap, const char *file) {
    size_t n = strlen(file);
    if (n < cap) memcpy(dst, file, n + 1);
    else snprintf(dst, cap, "...%s", file + n - (cap - 4));
}

static void draw(printer *p, uint64_t done, int final) {
    char a[32], b[32], rate[32] = "";
    ck_format_bytes(done, a, sizeof a);
    ck_format_bytes(p->size, b, sizeof b);
    double dt = now_s() - p->t0;
    if (dt > 0.2) {
        ck_format_bytes((uint64_t)((double)(done - (done > p->have0 ? p->have0 : done)) / dt), rate, sizeof rate);
        strcat(rate, "/s");
    }
    int pct = p->size ? (int)(done * 100 / p->size) : 0;
    char bar[31];
    int fill = p->size ? (int)(done * 30 / p->size) : 0;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    if (p->size)
        fprintf(stderr, "\r  %-32s [%s] %3d%%  %s / %s  %s\033[K", p->file, bar, pct, a, b, rate);
    else
        fprintf(stderr, "\r  %-32s %s  %s\033[K", p->file, a, rate);
    if (final) fputc('\n', stderr);
    p->bar_open = !final;
    fflush(stderr);
}

static void on_note(void *ud, const char *msg) {
    printer *p = ud;
    if (p->bar_open) fputs("\r\033[K", stderr);
    fprintf(stderr, "  %s\n", msg);
    p->bar_open = 0;
}

static void on_start(void *ud, const char *file, uint64_t size, uint64_t have) {
    printer *p = ud;
    short_name(p->file, sizeof p->file, file);
    p->size = size;
    p->have0 = have;
    p->t0 = p->last = now_s();
    char s[32], h[32];
    ck_format_bytes(size, s, sizeof s);
    ck_format_bytes(have, h, sizeof h);
    if (p->tty) {
        draw(p, have, 0);
    } else if (have) {
        fprintf(stderr, "  %s: resuming at %s of %s\n", file, h, s);
    } else {
        fprintf(stderr, "  %s: downloading %s\n", file, size ? s : "(size unknown)");
    }
}

static void on_bytes(void *ud, uint64_t done) {
    printer *p = ud;
    double t = now_s();
    if (!p->tty || t - p->last < 0.1) return;
    p->last = t;
    draw(p, done, 0);
}

static void on_done(void *ud, const char *file, uint64_t size, int cached) {
    printer *p = ud;
    char s[32];
    ck_format_bytes(size, s, sizeof s);
    if (p->tty && !cached) {
        draw(p, size ? size : p->size, 1);
        return;
    }
    if (p->bar_open) fputs("\r\033[K", stderr);
    p->bar_open = 0;
    fprintf(stderr, "  %s: %s (%s)\n", file, cached ? "already in the cache" : "done", s);
}

static void printer_init(printer *p, ck_pull_progress *cb) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(2);
    cb->ud = p;
    cb->note = on_note;
    cb->file_start = on_start;
    cb->file_bytes = on_bytes;
    cb->file_done = on_done;
}

/* ---- flag helpers ---- */

/* "--name VALUE" or "--name=VALUE": returns the value and advances *i, NULL when argv[*i] is not it. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != 0) return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

/* ---- pull ---- */

static void pull_usage(FILE *f) {
    fprintf(f,
            "usage: cake pull ORG/NAME[:TAG] [--revision REV] [--verify]\n\n"
            "Downloads a model from the HuggingFace Hub into the HF cache shared with huggingface_hub\n"
            "($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub): config, generation config,\n"
            "tokenizer and safetensors weights. ORG/NAME:TAG downloads only the one .gguf file of a GGUF\n"
            "repository whose name contains TAG, ignoring case (e.g. Qwen/Qwen3-0.6B-GGUF:Q8_0), and prints\n"
            "its path. Files already in the cache are skipped; an interrupted download resumes where it\n"
            "stopped.\n\n"
            "flags:\n"
            "  --revision REV  branch, tag or commit to download (default: main)\n"
            "  --verify        re-check the SHA-256 of weights already in the cache\n"
            "  -h, --help      show this help\n\n"
            "environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (for gated or private repos;\n"
            "else the token file $HF_HOME/token), HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE,\n"
            "CAKE_HUB_LOW_SPEED_TIME (seconds below 1 KiB/s after which a transfer is given up and retried;\n"
            "default 30).\n");
}

int ck_cmd_pull(int argc, char **argv) {
    const char *repo = NULL, *rev = NULL;
    int verify = 0;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            pull_usage(stdout);
            return 0;
        } else if ((v = flag_value(argc, argv, &i, "--revision", &missing))) {
            rev = v;
        } else if (missing) {
            fprintf(stderr, "cake pull: --revision needs a value\n");
            return 2;
        } else if (!strcmp(argv[i], "--verify")) {
            verify = 1;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "cake pull: unknown flag '%s'\n\n", argv[i]);
            pull_usage(stderr);
            return 2;
        } else if (!repo) {
            repo = argv[i];
        } else {
            fprintf(stderr, "cake pull: unexpected argument '%s'\n\n", argv[i]);
            pull_usage(stderr);
            return 2;
        }
    }
    if (!repo) {
        pull_usage(stderr);
        return 2;
    }
    char id[512];
    const char *tag = strrchr(repo, ':');
    if (strlen(repo) >= sizeof id) {
        fprintf(stderr, "cake pull: '%s' is too long for a HuggingFace repo id\n", repo);
        return 2;
    }
    snprintf(id, sizeof id, "%.*s", tag ? (int)(tag - repo) : (int)strlen(repo), repo);
    if (!ck_hub_repo_id_valid(id)) {
        fprintf(stderr, "cake pull: '%s' is not a HuggingFace repo id (expected ORG/NAME or ORG/NAME:TAG)\n", repo);
        return 2;
    }
    if (tag && !*++tag) {
        fprintf(stderr, "cake pull: '%s' has no TAG after ':' (ORG/NAME:TAG pulls the .gguf file whose name "
                "contains TAG, e.g. Q8_0)\n", repo);
        return 2;
    }
    printer pr;
    ck_pull_progress cb;
    printer_init(&pr, &cb);
    ck_pull_opts o = {.repo = id, .revision = rev, .gguf_tag = tag, .verify = verify, .progress = &cb};
    ck_pull_result res;
    char err[2048];
    fprintf(stderr, "pulling %s@%s\n", repo, rev ? rev : "main");
    if (ck_hub_pull(&o, &res, err, sizeof err) != 0) {
        if (pr.bar_open) fputc('\n', stderr);
        fprintf(stderr, "cake pull: %s\n", err);
        return 1;
    }
    char b[32];
    ck_format_bytes(res.bytes_downloaded, b, sizeof b);
    printf("pulled %s (commit %.10s): %d files, %d downloaded (%s)\n", repo, res.commit, res.n_files,
           res.n_downloaded, b);
    if (tag) printf("%s/%s\n", res.snapshot, res.gguf);
    else printf("%s\n", res.snapshot);
    return 0;
}

/* ---- list ---- */

static int cache_roots(char *hf, size_t hf_cap, char *cake, size_t cake_cap, const char *cmd) {
    char err[512];
    if (ck_hub_cache_dir(hf, hf_cap, err, sizeof err) != 0 || ck_cake_cache_dir(cake, cake_cap, err, sizeof err) != 0) {
        fprintf(stderr, "cake %s: %s\n", cmd, err);
        return -1;
    }
    return 0;
}

static void list_usage(FILE *f) {
    fprintf(f,
            "usage: cake list [--bytes]\n\n"
            "Lists the models in the HF cache ($HF_HUB_CACHE, else $HF_HOME/hub, else\n"
            "~/.cache/huggingface/hub; source \"hf\") and in cake's worker cache ($CAKE_CACHE/models,\n"
            "else ~/.cache/cake/models; source \"worker\"): name, complete or partial, size on disk.\n\n"
            "flags:\n"
            "  --bytes     print sizes as exact byte counts\n"
            "  -h, --help  show this help\n");
}

int ck_cmd_list(int argc, char **argv) {
    int bytes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            list_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--bytes")) {
            bytes = 1;
        } else {
            fprintf(stderr, "cake list: %s '%s'\n\n", argv[i][0] == '-' ? "unknown flag" : "unexpected argument",
                    argv[i]);
            list_usage(stderr);
            return 2;
        }
    }
    char hf[CK_PATH_MAX], cake[CK_PATH_MAX], err[1024];
    if (cache_roots(hf, sizeof hf, cake, sizeof cake, "list") != 0) return 1;
    ck_model_list l;
    if (ck_models_scan(hf, cake, &l, err, sizeof err) != 0) {
        fprintf(stderr, "cake list: %s\n", err);
        return 1;
    }
    if (l.n == 0) {
        printf("no models in %s or %s/models\nget one with: cake pull ORG/NAME\n", hf, cake);
        ck_models_free(&l);
        return 0;
    }
    size_t w = 4;
    for (size_t i = 0; i < l.n; i++)
        if (strlen(l.v[i].name) > w) w = strlen(l.v[i].name);
    printf("%-*s  %-8s  %12s  %s\n", (int)w, "NAME", "STATE", "SIZE", "SOURCE");
    for (size_t i = 0; i < l.n; i++) {
        char s[32];
        if (bytes) snprintf(s, sizeof s, "%llu", (unsigned long long)l.v[i].size_bytes);
        else ck_format_bytes(l.v[i].size_bytes, s, sizeof s);
        printf("%-*s  %-8s  %12s  %s\n", (int)w, l.v[i].name, l.v[i].complete ? "complete" : "partial", s,
               l.v[i].source == CK_SRC_HF ? "hf" : "worker");
    }
    int noted = 0; /* why each incomplete one is not usable, below the table */
    for (size_t i = 0; i < l.n; i++)
        if (!l.v[i].complete) printf("%s  %s\n", noted++ ? "" : "\n", l.v[i].why);
    ck_models_free(&l);
    return 0;
}

/* ---- rm ---- */

static void rm_usage(FILE *f) {
    fprintf(f,
            "usage: cake rm NAME [-y]\n\n"
            "Deletes a model from the HF cache (its whole models--ORG--NAME directory) or from cake's\n"
            "worker cache. NAME is a name shown by `cake list`, or its last part when that is unique\n"
            "(Qwen3-0.6B for evilsocket/Qwen3-0.6B), or the model's directory inside a cache. Directories\n"
            "outside the caches are never deleted.\n\n"
            "flags:\n"
            "  -y, --yes   do not ask for confirmation\n"
            "  -h, --help  show this help\n");
}

/* index of the entry whose directory contains path (after resolving links), or -1 */
static long entry_for_path(const ck_model_list *l, const char *path) {
    char rp[PATH_MAX], re[PATH_MAX];
    if (!realpath(path, rp)) return -1;
    for (size_t i = 0; i < l->n; i++) {
        if (!realpath(l->v[i].path, re)) continue;
        size_t n = strlen(re);
        if (!strncmp(rp, re, n) && (rp[n] == 0 || rp[n] == '/')) return (long)i;
    }
    return -1;
}

/* An answer of y or yes, in any case, with or without its line's end. */
static int is_yes(const char *line) {
    size_t n = strcspn(line, "\r\n");
    return (n == 1 && (line[0] | 0x20) == 'y') || (n == 3 && !strncasecmp(line, "yes", 3));
}

int ck_cmd_rm(int argc, char **argv) {
    const char *name = NULL;
    int yes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            rm_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-y") || !strcmp(argv[i], "--yes")) {
            yes = 1;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "cake rm: unknown flag '%s'\n\n", argv[i]);
            rm_usage(stderr);
            return 2;
        } else if (!name) {
            name = argv[i];
        } else {
            fprintf(stderr, "cake rm: unexpected argument '%s' (one model at a time)\n\n", argv[i]);
            rm_usage(stderr);
            return 2;
        }
    }
    if (!name) {
        rm_usage(stderr);
        return 2;
    }
    char hf[CK_PATH_MAX], cake[CK_PATH_MAX], err[1024];
    if (cache_roots(hf, sizeof hf, cake, sizeof cake, "rm") != 0) return 1;
    ck_model_list l;
    if (ck_models_scan(hf, cake, &l, err, sizeof err) != 0) {
        fprintf(stderr, "cake rm: %s\n", err);
        return 1;
    }
    size_t idx[64];
    size_t n = ck_models_match(&l, name, idx, 64);
    int rc = 1;
    if (n == 0) {
        struct stat st;
        long e = stat(name, &st) == 0 ? entry_for_path(&l, name) : -1;
        if (e >= 0) {
            idx[0] = (size_t)e;
            n = 1;
        } else if (stat(name, &st) == 0) {
            fprintf(stderr,
                    "cake rm: refusing to delete %s: it is a local %s, not a model in the caches (%s, %s/models); "
                    "delete it yourself if you mean to\n",
                    name, S_ISDIR(st.st_mode) ? "directory" : "file", hf, cake);
            goto out;
        } else {
            fprintf(stderr, "cake rm: no model named '%s' in the caches; `cake list` shows them\n", name);
            goto out;
        }
    }
    if (n > 1) {
        fprintf(stderr, "cake rm: '%s' matches %zu models; give the full name (or the path):\n", name, n);
        for (size_t i = 0; i < n && i < 64; i++)
            fprintf(stderr, "  %-40s %-6s %s\n", l.v[idx[i]].name, l.v[idx[i]].source == CK_SRC_HF ? "hf" : "worker",
                    l.v[idx[i]].path);
        goto out;
    }
    const ck_model_entry *m = &l.v[idx[0]];
    char s[32];
    ck_format_bytes(m->size_bytes, s, sizeof s);
    printf("%s (%s, %s)\n  %s\n", m->name, m->source == CK_SRC_HF ? "hf" : "worker", s, m->path);
    if (!yes) {
        fprintf(stderr, "delete it? [y/N] ");
        fflush(stderr);
        char line[64];
        if (!fgets(line, sizeof line, stdin) || !is_yes(line)) {
            fprintf(stderr, "not deleted\n");
            goto out;
        }
    }
    if (ck_model_remove(m, hf, cake, err, sizeof err) != 0) {
        fprintf(stderr, "cake rm: %s\n", err);
        goto out;
    }
    printf("deleted %s (%s freed)\n", m->name, s);
    rc = 0;
out:
    ck_models_free(&l);
    return rc;
}

/* ---- MODEL argument ---- */

int ck_cli_resolve_model(const char *arg, char *dir, unsigned long cap) {
    printer pr;
    ck_pull_progress cb;
    printer_init(&pr, &cb);
    char err[2048];
    ck_resolved how;
    if (ck_hub_resolve(arg, &cb, dir, cap, &how, err, sizeof err) != 0) {
        if (pr.bar_open) fputc('\n', stderr);
        fprintf(stderr, "cake: %s\n", err);
        return 1;
    }
    if (how == CK_RESOLVED_PULLED) fprintf(stderr, "pulled %s into %s\n", arg, dir);
    return 0;
}
