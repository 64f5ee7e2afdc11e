/* cmd_bench.c — `cake bench MODEL [-t THREADS] [-p N_PROMPT] [-n N_GEN] [-d DEPTH] [-r REPS] [--device N |
 * --cpu] [--json]`, in the spirit of llama-bench: prefill (pp: N_PROMPT tokens in one forward) and decode
 * (tg: N_GEN tokens, one forward each, greedy: the backend takes the argmax where the logits are, as
 * generation does; --host-argmax copies the logits out and takes it on the host) after DEPTH tokens of
 * context, each as mean ± sd
 * tok/s over REPS runs after one warm-up run. Token ids are fixed pseudo-random ids (no tokenizer needed).
 * The memory bandwidth is measured right before the runs (the host's read bandwidth, or on a GPU the
 * device's copy bandwidth, bytes read plus written); the decode roofline is that bandwidth divided by the
 * bytes of weights one decoded token reads, and the achieved fraction is printed beside it, with the
 * decode time split into layers (of which attention), output head and sampling.
 * --json: the last stdout line is one JSON object with every number. */
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/common.h"

#include "base/membw.h"
#include "sample/sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench_opts {
    const char *model;
    long threads, n_prompt, n_gen, depth, reps, device;
    int cpu;
    const char *kv_type;
    int json, exact, host_argmax;
    int nt; /* threads in use */
} bench_opts;

typedef struct stat_acc { /* running mean and variance (Welford) */
    double n, mean, m2;
} stat_acc;

static void stat_add(stat_acc *s, double x) {
    s->n += 1;
    double d = x - s->mean;
    s->mean += d / s->n;
    s->m2 += d * (x - s->mean);
}
static double stat_sd(const stat_acc *s) { return s->n > 1 ? sqrt(s->m2 / (s->n - 1)) : 0.0; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Decode time split of one tg run, seconds. */
typedef struct tg_split {
    double layers, attn, head, sample, total;
} tg_split;

/* Resets s and fills DEPTH positions (untimed). */
static int fill_depth(ck_session *s, const int32_t *ids, size_t depth, char *err, size_t errlen) {
    ck_session_reset(s);
    return depth ? ck_session_forward(s, ids, depth, NULL, 0, err, errlen) : 0;
}

/* One pp run: seconds for N_PROMPT tokens after DEPTH. */
static int run_pp(ck_session *s, const int32_t *ids, const bench_opts *o, float *logits, double *secs, char *err,
                  size_t errlen) {
    if (fill_depth(s, ids, (size_t)o->depth, err, errlen) != 0) return -1;
    double t0 = now_s();
    if (ck_session_forward(s, ids + o->depth, (size_t)o->n_prompt, logits, 0, err, errlen) != 0) return -1;
    *secs = now_s() - t0;
    return 0;
}

/* One tg run: N_GEN single-token forwards after DEPTH, each next id the argmax of the last logits (sampling:
 * the host's part of it). */
static int run_tg(ck_session *s, const int32_t *ids, const bench_opts *o, float *logits, size_t V, tg_split *sp,
                  char *err, size_t errlen) {
    if (fill_depth(s, ids, (size_t)o->depth, err, errlen) != 0) return -1;
    ck_timing a = ck_session_timing(s);
    int32_t id = ids[o->depth];
    double t0 = now_s(), sample = 0;
    for (long i = 0; i < o->n_gen; i++) {
        if (!o->host_argmax) {
            if (ck_session_forward_top(s, &id, 1, &id, err, errlen) != 0) return -1;
            continue;
        }
        if (ck_session_forward(s, &id, 1, logits, 0, err, errlen) != 0) return -1;
        double ts = now_s();
        id = ck_argmax(logits, V);
        sample += now_s() - ts;
    }
    ck_timing b = ck_session_timing(s);
    *sp = (tg_split){b.layers_s - a.layers_s, b.attn_s - a.attn_s, b.head_s - a.head_s, sample, now_s() - t0};
    return 0;
}

/* The results: model and bytes per token, bandwidth and roofline, speeds, the decode step's split, and with
 * --json one JSON line. */
static void report(ck_engine *e, const bench_opts *o, double bw, const stat_acc *pp, const stat_acc *tg,
                   const tg_split *sum) {
    /* a decoded token reads the weights and the KV rows of its context: depth + (n_gen + 1) / 2 positions on
     * average over the decode test */
    double bytes = (double)ck_engine_decode_bytes(e);
    double kv = (double)ck_engine_kv_bytes(e) * ((double)o->depth + (double)(o->n_gen + 1) / 2.0);
    double roof = bw > 0 ? bw * 1e9 / (bytes + kv) : 0;
    double steps = (double)o->n_gen * (double)o->reps, ms = steps > 0 ? 1e3 / steps : 0;
    int gpu = strncmp(ck_engine_backend(e), "cpu", 3) != 0; /* over --devices: the first device's kind and
                                                                  bandwidth (the parts run one after another) */
    if (gpu)
        printf("model: %s (%s), %s backend, %s KV cache\n", o->model, ck_engine_arch(e), ck_engine_backend(e),
               ck_engine_kv_type(e));
    else
        printf("model: %s (%s), %d threads, %s matmul, %s KV cache, weights %s\n", o->model, ck_engine_arch(e),
               o->nt, ck_engine_exact(e) ? "exact" : "fast", ck_engine_kv_type(e),
               ck_weights_mapped() ? "mapped from the file" : "in huge pages");
    printf("read per decoded token: weights %.1f MB + KV cache %.1f MB (mean over the decode test)\n", bytes * 1e-6,
           kv * 1e-6);
    if (bw > 0)
        printf("%s bandwidth: %.1f GB/s -> decode roofline %.1f tok/s\n", gpu ? "device copy (read + write)" : "read",
               bw, roof);
    else
        printf("bandwidth: not measured -> no roofline\n");
    if (o->n_prompt > 0)
        printf("pp%ld @ d%ld: %.2f ± %.2f tok/s\n", o->n_prompt, o->depth, pp->mean, stat_sd(pp));
    if (o->n_gen > 0) {
        if (roof > 0)
            printf("tg%ld @ d%ld: %.2f ± %.2f tok/s, %.2f of the roofline\n", o->n_gen, o->depth, tg->mean, stat_sd(tg),
                   tg->mean / roof);
        else
            printf("tg%ld @ d%ld: %.2f ± %.2f tok/s\n", o->n_gen, o->depth, tg->mean, stat_sd(tg));
        printf("decode step: %.2f ms = layers %.2f (attention %.2f) + output head %.2f + sampling %.3f + other %.3f\n",
               sum->total * ms, sum->layers * ms, sum->attn * ms, sum->head * ms, sum->sample * ms,
               (sum->total - sum->layers - sum->head - sum->sample) * ms);
    }
    if (o->json)
        printf("{\"arch\":\"%s\",\"backend\":\"%s\",\"threads\":%d,\"exact\":%s,\"kv_type\":\"%s\","
               "\"weights\":\"%s\",\"n_prompt\":%ld,\"n_gen\":%ld,"
               "\"depth\":%ld,\"reps\":%ld,"
               "\"pp_tok_s\":%.3f,\"pp_sd\":%.3f,\"tg_tok_s\":%.3f,\"tg_sd\":%.3f,\"bandwidth_gbs\":%.3f,"
               "\"decode_bytes\":%.0f,\"kv_bytes_per_token\":%.0f,\"roofline_tg_tok_s\":%.3f,\"roofline_fraction\":%.4f,"
               "\"step_ms\":%.4f,\"layers_ms\":%.4f,\"attention_ms\":%.4f,\"head_ms\":%.4f,\"sampling_ms\":%.4f}\n",
               ck_engine_arch(e), ck_engine_backend(e), o->nt, ck_engine_exact(e) ? "true" : "false", ck_engine_kv_type(e),
               gpu ? "device" : ck_weights_mapped() ? "mapped" : "huge_pages", o->n_prompt, o->n_gen, o->depth, o->reps,
               pp->mean, stat_sd(pp), tg->mean, stat_sd(tg), bw, bytes,
               kv, roof, roof > 0 ? tg->mean / roof : 0, sum->total * ms, sum->layers * ms, sum->attn * ms, sum->head * ms,
               sum->sample * ms);
}

static int bench(ck_engine *e, const bench_opts *o, double bw) {
    char err[1024];
    /* the session holds depth + the longer test's tokens; ids has one more (tg's first input) */
    size_t V = ck_engine_vocab(e), ctx = (size_t)(o->depth + (o->n_prompt > o->n_gen ? o->n_prompt : o->n_gen));
    int32_t *ids = malloc((ctx + 1) * sizeof *ids);
    float *logits = malloc(V * sizeof *logits);
    ck_session *s = NULL;
    int rc = 1;
    if (!ids || !logits) {
        fprintf(stderr, "cake bench: out of memory\n");
        goto done;
    }
    uint64_t r = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i <= ctx; i++) r = r * 6364136223846793005ull + 1442695040888963407ull, ids[i] = (int32_t)((r >> 33) % V);
    if (ck_session_open(e, ctx, &s, err, sizeof err) != 0) goto fail;
    stat_acc pp = {0}, tg = {0};
    tg_split sum = {0};
    for (long rep = 0; rep <= o->reps; rep++) { /* rep 0 is the warm-up */
        double secs;
        tg_split sp;
        if (o->n_prompt > 0) {
            if (run_pp(s, ids, o, logits, &secs, err, sizeof err) != 0) goto fail;
            if (rep) stat_add(&pp, (double)o->n_prompt / secs);
        }
        if (o->n_gen > 0) {
            if (run_tg(s, ids, o, logits, V, &sp, err, sizeof err) != 0) goto fail;
            if (rep) {
                stat_add(&tg, (double)o->n_gen / sp.total);
                sum.layers += sp.layers, sum.attn += sp.attn, sum.head += sp.head, sum.sample += sp.sample;
                sum.total += sp.total;
            }
        }
    }
    report(e, o, bw, &pp, &tg, &sum);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "cake bench: %s\n", err);
done:
    ck_session_close(s);
    free(ids);
    free(logits);
    return rc;
}

int ck_cmd_bench(int argc, char **argv) {
    bench_opts o = {.n_prompt = 512, .n_gen = 128, .reps = 5, .device = -1};
    long bw_mb = 0;
    const ck_arg args[] = {
        {"model", 'm', CK_ARG_STR, &o.model, "model directory or HF repo id (or the positional)", "MODEL"},
        {"threads", 't', CK_ARG_INT, &o.threads, "compute threads (default: $OMP_NUM_THREADS, else one per core)", "N"},
        {"n-prompt", 'p', CK_ARG_INT, &o.n_prompt, "prompt tokens of the prefill test; 0 skips it (default 512)", "N"},
        {"n-gen", 'n', CK_ARG_INT, &o.n_gen, "tokens of the decode test; 0 skips it (default 128)", "N"},
        {"depth", 'd', CK_ARG_INT, &o.depth, "tokens of context before each test (default 0)", "N"},
        {"repetitions", 'r', CK_ARG_INT, &o.reps, "timed runs of each test after one warm-up (default 5)", "N"},
        {"exact", 0, CK_ARG_BOOL, &o.exact, "f32 activations everywhere (as CAKE_EXACT=1)", NULL},
        {"bandwidth-mb", 0, CK_ARG_INT, &bw_mb,
         "buffer of the bandwidth probe in MiB (default 1024 or 4x the LLC)", "N"},
        {"host-argmax", 0, CK_ARG_BOOL, &o.host_argmax,
         "decode: copy the logits out and take the argmax on the host (generation takes it on the backend)", NULL},
        {"json", 0, CK_ARG_BOOL, &o.json, "print the results as one JSON object on the last stdout line", NULL},
        CK_CLI_DEVICE_ARGS(o.cpu, o.device, o.kv_type),
    };
    const char *pos[1];
    size_t n_pos;
    int rc = ck_args_parse("bench", "MODEL [flags]", args, sizeof args / sizeof args[0], argc, argv, pos, 1, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (n_pos == 1 && !o.model) o.model = pos[0];
    if (o.n_prompt < 0 || o.n_gen < 0 || o.depth < 0 || o.n_prompt > 1000000 || o.n_gen > 1000000 ||
        o.depth > 1000000 || o.reps < 1 || o.reps > 1000 || bw_mb < 0 || bw_mb > 65536 || (!o.n_prompt && !o.n_gen)) {
        fprintf(stderr, "cake bench: -p, -n, -d are 0-1000000 (not -p and -n both 0), -r 1-1000, --bandwidth-mb "
                        "0-65536\n");
        return 2;
    }
    if (!o.model) o.model = ck_cli_default_model();
    if (ck_cli_threads("bench", o.threads) != 0 || ck_cli_backend("bench", o.cpu, o.device, o.kv_type) != 0) return 2;
    o.nt = ck_set_threads((int)o.threads, NULL, 0);
    if (o.exact) ck_set_exact(1);
    /* the host's probe runs before the model is loaded, so that its buffer and the model are never
     * resident together (the run's peak RSS is the larger of the two, not their sum: with a model smaller
     * than the probe's buffer, --bandwidth-mb sets it); a GPU's probe needs the engine */
    int dev_cpu = 0, dev_gpu = 0; /* --devices: whether it names the CPU, GPUs (ck_cli_backend checked it) */
    const char *kinds[CK_MAX_DEVICES];
    int idx[CK_MAX_DEVICES];
    for (int i = 0, n = ck_cli_devices ? ck_parse_devices(ck_cli_devices, kinds, idx, CK_MAX_DEVICES, NULL, 0) : 0;
         i < n; i++)
        *(strcmp(kinds[i], "cpu") ? &dev_gpu : &dev_cpu) = 1;
    int host = o.cpu || ck_backend_count("cuda") == 0 || (ck_cli_devices && !strcmp(kinds[0], "cpu"));
    double bw = host ? ck_read_bandwidth_gbs((size_t)bw_mb << 20, o.nt, 3) : -1;
    ck_engine *e;
    if (ck_cli_open("bench", o.model, 0, &e) != 0) return 1;
    if ((uint64_t)(o.depth + (o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen)) > ck_engine_max_ctx(e)) {
        fprintf(stderr, "cake bench: depth + tokens exceed the model's context (%zu)\n", ck_engine_max_ctx(e));
        ck_engine_close(e);
        return 2;
    }
    if (!host) bw = ck_engine_device_bandwidth_gbs(e, bw_mb ? (size_t)bw_mb << 20 : (size_t)1 << 30, 10);
    if (!host && bw < 0) bw = ck_read_bandwidth_gbs((size_t)bw_mb << 20, o.nt, 3);
    if (dev_cpu && dev_gpu) {
        fprintf(stderr, "cake bench: --devices mixes the CPU and GPUs; no roofline\n");
        bw = -1;
    } else if (bw < 0)
        fprintf(stderr, "cake bench: no memory for the bandwidth probe; no roofline\n");
    rc = bench(e, &o, bw);
    ck_engine_close(e);
    return rc;
}
