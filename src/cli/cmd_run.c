/* cmd_run.c — `cake run [MODEL] PROMPT`: renders the prompt with the model's chat template (system
 * prompt + user message) when it has one, else uses the raw prompt; prefills it, then samples and streams
 * text to stdout token by token until an EOS id or -n tokens. A summary of the timings goes to stderr. */
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct run_opts {
    const char *model, *prompt, *system;
    long n, top_k, last_n, ctx, threads;
    double temperature, top_p, penalty;
    uint64_t seed;
    int raw, no_think;
} run_opts;

/* The prompt as token ids: chat-rendered when the tokenizer has a template and --raw is not given. */
static int prompt_ids(const ck_tok *tok, const run_opts *o, int32_t **ids, size_t *n, char *err, size_t errlen) {
    if (!o->raw && ck_tok_chat_unsupported(tok))
        fprintf(stderr, "cake run: this model's chat template is not one cake renders (ChatML/Qwen, Llama 3, "
                        "Gemma 3); using the raw prompt (--raw silences this)\n");
    if (o->raw || !ck_tok_has_chat(tok))
        return ck_tok_encode(tok, o->prompt, strlen(o->prompt), 1, ids, n, err, errlen);
    ck_chat_msg msgs[2];
    size_t k = 0;
    if (o->system && *o->system) msgs[k++] = (ck_chat_msg){"system", o->system};
    msgs[k++] = (ck_chat_msg){"user", o->prompt};
    char *text;
    if (ck_tok_chat_render(tok, msgs, k, 1, !o->no_think, &text, err, errlen) != 0) return -1;
    int rc = ck_tok_encode(tok, text, strlen(text), 0, ids, n, err, errlen);
    free(text);
    return rc;
}

static int generate(ck_engine *e, const run_opts *o) {
    const ck_tok *tok = ck_engine_tok(e);
    char err[1024];
    int32_t *ids = NULL;
    size_t n_prompt;
    if (prompt_ids(tok, o, &ids, &n_prompt, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        return 1;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "cake run: the prompt is empty\n");
        free(ids);
        return 1;
    }
    size_t max_ctx = ck_engine_max_ctx(e), want = n_prompt + (size_t)o->n;
    if (o->ctx > 0) max_ctx = (size_t)o->ctx;
    else if (want < max_ctx) max_ctx = want;
    if (n_prompt >= max_ctx) {
        fprintf(stderr, "cake run: the prompt has %zu tokens; the context holds %zu\n", n_prompt, max_ctx);
        free(ids);
        return 1;
    }
    size_t V = ck_engine_vocab(e), cap = max_ctx;
    int32_t *hist = realloc(ids, cap * sizeof *hist);
    float *logits = malloc(V * sizeof *logits);
    ck_session *s = NULL;
    ck_tok_stream st = {0};
    ck_sampler smp;
    ck_sample_params sp = {(float)o->temperature, (int)o->top_k, (float)o->top_p, (float)o->penalty,
                           (int)o->last_n, o->seed};
    int rc = 1, have_sampler = 0;
    if (!hist || !logits) {
        fprintf(stderr, "cake run: out of memory\n");
        free(hist ? hist : ids);
        free(logits);
        return 1;
    }
    if (ck_sampler_init(&smp, &sp, V) != 0) {
        fprintf(stderr, "cake run: out of memory\n");
        goto done;
    }
    have_sampler = 1;
    if (ck_session_open(e, max_ctx, &s, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        goto done;
    }
    double t0 = now_s();
    if (ck_session_forward(s, hist, n_prompt, logits, 0, err, sizeof err) != 0) {
        fprintf(stderr, "cake run: %s\n", err);
        goto done;
    }
    double t1 = now_s();
    ck_timing prefill = ck_session_timing(s);
    ck_tok_stream_init(&st, tok);
    char buf[1024];
    size_t n_hist = n_prompt, n_gen = 0;
    while (n_gen < (size_t)o->n) {
        int32_t id = ck_sampler_next(&smp, logits, hist, n_hist);
        if (ck_engine_is_eos(e, id)) break;
        hist[n_hist++] = id;
        n_gen++;
        int k = ck_tok_stream_push(&st, id, buf, sizeof buf);
        if (k > 0) {
            fwrite(buf, 1, (size_t)k, stdout);
            fflush(stdout);
        }
        if (n_gen == (size_t)o->n || n_hist >= max_ctx) break;
        if (ck_session_forward(s, &id, 1, logits, 0, err, sizeof err) != 0) {
            fprintf(stderr, "\ncake run: %s\n", err);
            goto done;
        }
    }
    int k = ck_tok_stream_flush(&st, buf, sizeof buf);
    if (k > 0) fwrite(buf, 1, (size_t)k, stdout);
    if (isatty(STDOUT_FILENO)) printf("\n"); /* piped output is exactly the generated text */
    fflush(stdout);
    double t2 = now_s();
    ck_timing all = ck_session_timing(s);
    size_t n_decoded = n_gen ? n_gen - 1 : 0; /* forwards after the prefill */
    fprintf(stderr,
            "\nprompt: %zu tokens, prefill %.3f s (%.1f tok/s)\n"
            "generated: %zu tokens, decode %.3f s (%.1f tok/s)\n"
            "time: embedding %.3f s, layers %.3f s, output head %.3f s (prefill: %.3f / %.3f / %.3f)\n",
            n_prompt, t1 - t0, (double)n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9), n_gen, t2 - t1,
            (double)n_decoded / (t2 - t1 > 0 ? t2 - t1 : 1e-9), all.embed_s, all.layers_s, all.head_s, prefill.embed_s,
            prefill.layers_s, prefill.head_s);
    rc = 0;
done:
    ck_tok_stream_free(&st);
    ck_session_close(s);
    if (have_sampler) ck_sampler_free(&smp);
    free(logits);
    free(hist);
    return rc;
}

int ck_cmd_run(int argc, char **argv) {
    run_opts o = {.system = "You are a helpful AI assistant.", .n = 2048, .last_n = 128, .temperature = 1.0,
                  .top_p = 1.0, .penalty = NAN, .seed = 299792458};
    const ck_arg args[] = {
        {"model", 0, CK_ARG_STR, &o.model, "model directory or HF repo id (or the first positional)", "MODEL"},
        {"prompt", 0, CK_ARG_STR, &o.prompt, "the prompt (or the last positional)", "TEXT"},
        {"system-prompt", 0, CK_ARG_STR, &o.system, "system message; empty for none (default: \"You are a helpful AI assistant.\")", "TEXT"},
        {"sample-len", 'n', CK_ARG_INT, &o.n, "tokens to generate at most (default 2048)", "N"},
        {"temperature", 0, CK_ARG_FLOAT, &o.temperature, "sampling temperature; 0 = greedy (default 1.0)", "T"},
        {"top-k", 0, CK_ARG_INT, &o.top_k, "sample among the K most likely tokens (default off)", "K"},
        {"top-p", 0, CK_ARG_FLOAT, &o.top_p, "nucleus sampling cutoff (default off)", "P"},
        {"repeat-penalty", 0, CK_ARG_FLOAT, &o.penalty, "penalty for repeated tokens; 1 = off (default 1.1; with --temperature 0, 1 unless given)", "R"},
        {"repeat-last-n", 0, CK_ARG_INT, &o.last_n, "tokens the repeat penalty looks back at (default 128)", "N"},
        {"seed", 0, CK_ARG_U64, &o.seed, "random seed (default 299792458)", "S"},
        {"ctx", 0, CK_ARG_INT, &o.ctx, "context size in tokens (default: prompt + sample-len, at most the model's)", "N"},
        {"raw", 0, CK_ARG_BOOL, &o.raw, "use the prompt as is, without the chat template", NULL},
        {"no-think", 0, CK_ARG_BOOL, &o.no_think, "render the chat template with enable_thinking=false", NULL},
        {"threads", 't', CK_ARG_INT, &o.threads, "compute threads (default: $OMP_NUM_THREADS, else one per core)", "N"},
    };
    const char *pos[2];
    size_t n_pos;
    int rc = ck_args_parse("run", "[MODEL] PROMPT [flags]", args, sizeof args / sizeof args[0], argc, argv, pos, 2,
                           &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (n_pos == 2) {
        o.model = o.model ? o.model : pos[0];
        o.prompt = o.prompt ? o.prompt : pos[1];
        if (o.model != pos[0] || o.prompt != pos[1]) {
            fprintf(stderr, "cake run: MODEL and PROMPT given both as flags and as arguments\n");
            return 2;
        }
    } else if (n_pos == 1) {
        if (!o.model && !o.prompt && ck_cli_looks_like_model(pos[0])) o.model = pos[0];
        else if (!o.prompt) o.prompt = pos[0];
        else if (!o.model) o.model = pos[0];
    }
    if (!o.prompt) {
        fprintf(stderr, "cake run: no prompt given (see cake run --help)\n");
        return 2;
    }
    if (isnan(o.penalty)) o.penalty = o.temperature > 0 ? 1.1 : 1.0; /* greedy means the model's argmax */
    if (o.n < 0 || o.top_k < 0 || o.last_n < 0 || o.ctx < 0 || o.temperature < 0 || !(o.top_p > 0) ||
        !(o.penalty > 0)) {
        fprintf(stderr, "cake run: -n, --top-k, --repeat-last-n and --ctx must be >= 0, --temperature >= 0, "
                        "--top-p and --repeat-penalty > 0\n");
        return 2;
    }
    if (o.threads < 0 || o.threads > 4096) {
        fprintf(stderr, "cake run: --threads must be between 0 and 4096\n");
        return 2;
    }
    ck_set_threads((int)o.threads);
    ck_engine *e;
    if (ck_cli_open("run", o.model, 1, &e) != 0) return 1;
    rc = generate(e, &o);
    ck_engine_close(e);
    return rc;
}
