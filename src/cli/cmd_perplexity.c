/* cmd_perplexity.c — `cake perplexity [MODEL] FILE [--tokens]`: tokenizes FILE as HF `tokenizer(text)`
 * does (special tokens such as Llama 3's BOS added), or reads whitespace-separated ids with --tokens,
 * scores every token given its prefix and prints `ppl=<float> nll=<mean nll> n=<tokens scored>` as its
 * last stdout line. Sequences longer than the context are scored in consecutive windows of --ctx tokens
 * (the first token of each window has no prefix and is not scored). */
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cluster.h"
#include "cli/common.h"

#include "base/file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 64 /* logits rows computed per forward */

/* FILE is read whole; past 1 GiB (some 250M tokens of text) it is refused rather than risk the memory. */
#define INPUT_MAX_BYTES ((size_t)1 << 30)

/* Parses whitespace- or comma-separated token ids from text[0..len) of FILE; a NUL byte is an error (the
 * ids after it would otherwise be dropped without a word). */
static int read_ids(const char *file, const char *text, size_t len, int32_t **out, size_t *n, size_t vocab) {
    const char *nul = memchr(text, 0, len);
    if (nul) {
        fprintf(stderr, "cake perplexity: %s: NUL byte at offset %zu\n", file, (size_t)(nul - text));
        return -1;
    }
    size_t cap = len / 2 + 1, k = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "cake perplexity: out of memory for the ids of %s\n", file);
        return -1;
    }
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || (size_t)v >= vocab) {
            fprintf(stderr, "cake perplexity: bad token id near '%.16s' (vocabulary %zu)\n", p, vocab);
            free(ids);
            return -1;
        }
        ids[k++] = (int32_t)v;
        p = end;
    }
    *out = ids;
    *n = k;
    return 0;
}

/* -log softmax(row)[id] */
static double token_nll(const float *row, size_t V, int32_t id) {
    double mx = row[0], se = 0;
    for (size_t j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
    for (size_t j = 0; j < V; j++) se += exp((double)row[j] - mx);
    return mx + log(se) - row[id];
}

/* Adds the nll of ids[1..n) given their prefixes, scored in windows of `window` tokens. */
static int score(ck_engine *e, ck_cluster *cl, const int32_t *ids, size_t n, size_t window, double *nll,
                 size_t *scored) {
    char err[1024];
    size_t V = ck_engine_vocab(e);
    float *lg = malloc(ROWS * V * sizeof *lg);
    ck_session *s;
    if (!lg) return -1;
    if (ck_session_open(e, window, &s, err, sizeof err) != 0 || (cl && ck_cli_attach(s, cl, err, sizeof err) != 0)) {
        fprintf(stderr, "cake perplexity: %s\n", err);
        ck_session_close(s);
        free(lg);
        return -1;
    }
    *nll = 0;
    *scored = 0;
    for (size_t w0 = 0; w0 + 1 < n; w0 += window) {
        size_t wn = n - w0 < window ? n - w0 : window;
        ck_session_reset(s);
        for (size_t r0 = 0; r0 < wn; r0 += ROWS) {
            size_t k = wn - r0 < ROWS ? wn - r0 : ROWS;
            if (ck_session_forward(s, ids + w0 + r0, k, lg, 1, err, sizeof err) != 0) {
                fprintf(stderr, "cake perplexity: %s\n", err);
                ck_session_close(s);
                free(lg);
                return -1;
            }
            for (size_t i = 0; i < k && r0 + i + 1 < wn; i++) {
                *nll += token_nll(lg + i * V, V, ids[w0 + r0 + i + 1]);
                (*scored)++;
            }
        }
    }
    ck_session_close(s);
    free(lg);
    return 0;
}

/* The token ids of FILE's text[0..len) (encoded, or ids with --tokens) into *ids, *n. 0, or -1 after a
 * message. */
static int load_ids(ck_engine *e, const char *file, const char *text, size_t len, int tokens, int32_t **ids,
                    size_t *n) {
    char err[1024];
    if (tokens) return read_ids(file, text, len, ids, n, ck_engine_vocab(e)) ? -1 : 0;
    if (ck_engine_encode(e, text, len, 1, ids, n, err, sizeof err) == 0) return 0;
    fprintf(stderr, "cake perplexity: %s\n", err);
    return -1;
}

/* 0 when n tokens of FILE can be scored in windows of `window` positions of e's model; else -1 after a
 * message. */
static int check_window(const ck_engine *e, const char *file, size_t n, size_t window) {
    if (window > ck_engine_max_ctx(e)) {
        fprintf(stderr, "cake perplexity: --ctx %zu exceeds the model's maximum context (%zu)\n", window,
                ck_engine_max_ctx(e));
        return -1;
    }
    if (window < 2) {
        fprintf(stderr,
                "cake perplexity: a context of %zu position cannot score anything (max_position_embeddings "
                "in config.json?)\n",
                window);
        return -1;
    }
    if (n < 2) {
        fprintf(stderr, "cake perplexity: %s has %zu tokens; at least 2 are needed\n", file, n);
        return -1;
    }
    if (n > window) /* each window predicts all but its first token */
        fprintf(stderr, "cake perplexity: %zu tokens in windows of %zu (the first token of each window is not scored)\n",
                n, window);
    return 0;
}

/* Scores FILE's text[0..len) in windows of `window` positions and prints the result line (and the
 * cluster's summary when cl). 0, or -1 after a message. */
static int perplexity(ck_engine *e, ck_cluster *cl, const char *file, const char *text, size_t len, int tokens,
                      size_t window) {
    int32_t *ids = NULL;
    size_t n = 0, scored = 0;
    double nll;
    int rc = load_ids(e, file, text, len, tokens, &ids, &n);
    if (rc == 0) rc = check_window(e, file, n, window);
    if (rc == 0) rc = score(e, cl, ids, n, window, &nll, &scored);
    if (rc == 0) printf("ppl=%.6f nll=%.6f n=%zu\n", exp(nll / (double)scored), nll / (double)scored, scored);
    if (rc == 0 && cl) ck_cli_cluster_summary(cl, 0);
    free(ids);
    return rc;
}

int ck_cmd_perplexity(int argc, char **argv) {
    const char *model = NULL;
    long ctx = 0, threads = 0, device = -1;
    int cpu = 0;
    const char *kv_type = NULL;
    int tokens = 0, exact = 0;
    ck_cli_cluster cc = {.recover_ms = 0, .discovery_ms = 5};
    const ck_arg args[] = {
        {"topology", 0, CK_ARG_STR, &cc.topology, "score on a cluster: the workers of this topology (YAML)", "FILE"},
        {"cluster-key", 0, CK_ARG_STR, &cc.key, "shared secret of the cluster", "KEY"},
        {"wire-dtype", 0, CK_ARG_STR, &cc.wire_dtype, "activations between nodes: f32 (default), f16, bf16", "T"},
        {"chain", 0, CK_ARG_BOOL, &cc.chain,
         "chain forwarding: each worker passes its output to the next, the last one back to the master (one round "
         "trip per step instead of one per worker)",
         NULL},
        {"discovery-address", 0, CK_ARG_STR, &cc.discovery,
         "zero-config (--cluster-key without --topology): where to broadcast for workers", "ADDR"},
        {"discovery-timeout", 0, CK_ARG_INT, &cc.discovery_ms, "zero-config: seconds to look for workers (default 5)",
         "S"},
        {"min-workers", 0, CK_ARG_INT, &cc.min_workers, "zero-config: workers to wait for (default 1)", "N"},
        {"model", 0, CK_ARG_STR, &model,
         "model directory, .gguf file or HF repo id (ORG/NAME[:TAG]) (or the first positional)", "MODEL"},
        {"tokens", 0, CK_ARG_BOOL, &tokens, "FILE holds whitespace-separated token ids, not text", NULL},
        {"exact", 0, CK_ARG_BOOL, &exact,
         "f32 activations in every matmul (as CAKE_EXACT=1), as HF's float32 reference scores", NULL},
        {"ctx", 0, CK_ARG_INT, &ctx, "window size in tokens (default: the model's max_position_embeddings)", "N"},
        {"threads", 't', CK_ARG_INT, &threads, "compute threads (default: $OMP_NUM_THREADS, else one per core)", "N"},
        CK_CLI_DEVICE_ARGS(cpu, device, kv_type),
    };
    const char *pos[2], *file;
    size_t n_pos;
    int rc = ck_args_parse("perplexity", "[MODEL] FILE [flags]", args, sizeof args / sizeof args[0], argc, argv, pos, 2,
                           &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (n_pos == 2 && !model) {
        model = pos[0];
        file = pos[1];
    } else if (n_pos == 1) {
        file = pos[0];
    } else {
        fprintf(stderr, "cake perplexity: expected [MODEL] FILE (see cake perplexity --help)\n");
        return 2;
    }
    if (ctx < 0 || ctx == 1) {
        fprintf(stderr, "cake perplexity: --ctx must be at least 2\n");
        return 2;
    }
    if (ck_cli_threads("perplexity", threads) != 0 || ck_cli_backend("perplexity", cpu, device, kv_type) != 0) return 2;
    if (cc.discovery_ms < 0 || cc.discovery_ms > 3600 || cc.min_workers < 0 || cc.min_workers > 32) {
        fprintf(stderr, "cake perplexity: --discovery-timeout is 0-3600 s and --min-workers 0-32\n");
        return 2;
    }
    cc.discovery_ms *= 1000;
    if (exact) ck_set_exact(1);
    char *text, err[1024];
    size_t len;
    if (ck_file_read_max(file, INPUT_MAX_BYTES, &text, &len, err, sizeof err) != 0) {
        fprintf(stderr, "cake perplexity: %s\n", err);
        return 1;
    }
    ck_engine *e;
    ck_cluster *cl = NULL;
    cc.model = model;
    int cluster = cc.topology || cc.key;
    if (cluster ? (rc = ck_cli_master_open(&cc, 0, &e, &cl)) != 0
                : ck_cli_open("perplexity", model, !tokens, &e) != 0) {
        free(text);
        return cluster ? rc : 1;
    }
    rc = perplexity(e, cl, file, text, len, tokens, ctx ? (size_t)ctx : ck_engine_max_ctx(e));
    free(text);
    ck_cluster_close(cl);
    ck_engine_close(e);
    return rc == 0 ? 0 : 1;
}
