/* graph.cu — deferred execution of the CUDA backend's ops as cached CUDA graphs (see cuda_internal.h).
 * Ops queue closures and their keys; ck_cuda_flush runs the queue: a short queue (a test's single op)
 * runs eagerly, a longer one replays the graph instantiated for the same key sequence, or is captured
 * from the stream (cudaStreamBeginCapture), instantiated, cached (least recently used out of
 * CK_GRAPH_CACHE) and launched. A capture that fails (an API the driver refuses inside a capture) falls
 * back to running the closures eagerly. The flush then waits for the stream, so the pinned arena the
 * queued copies read from can be refilled. Invariant: equal key sequences mean equal closures (every op
 * keys every value its closure captures), so replaying a graph does what running the queue would.
 *
 * The host does not leave the GPU idle while it queues a long step (a decode step queues ~150 ops, tens of
 * microseconds of host work): the first CK_GRAPH_HEAD ops of a flush cycle are submitted as their own graph
 * as soon as they are queued, without waiting, then the next 4 CK_GRAPH_HEAD, 16 CK_GRAPH_HEAD, ..., and the
 * GPU runs each piece while the host queues the next. The flush also queues the copy of the check flags into
 * pinned memory (ck_cuda_flags_host) behind the ops, so that a sync reads them without another round trip. */
#include "backend/cuda/cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#define CK_GRAPH_CACHE 64
#define CK_GRAPH_MIN_OPS 12
#define CK_GRAPH_HEAD 16 /* ops submitted ahead of the rest of a flush cycle (CK_CUDA_GRAPH_HEAD=N, 0: off) */

struct ck_graph_entry {
    std::vector<uint64_t> key;
    cudaGraphExec_t exec;
    uint64_t used;
};

struct ck_queued_op {
    ck_cuda_op_fn fn;
    const void *closure; /* in the arena */
};

#define CK_ARENA_CHUNK (64u << 10)
/* The closures of the queued ops: chunks of CK_ARENA_CHUNK (or one closure's size) that never move, reused
 * from the first once the queue has run. */
struct ck_arena_chunk {
    char *p;
    size_t size;
};
struct ck_op_arena {
    std::vector<ck_arena_chunk> chunks;
    size_t cur, used; /* the chunk being filled and its bytes taken */
};

struct ck_cuda_graphs {
    std::vector<ck_queued_op> ops;
    ck_op_arena arena;
    std::vector<const char *> names; /* each op's name (profiling) */
    std::vector<uint64_t> key;
    std::vector<ck_graph_entry> cache;
    uint64_t clock;
    char *pin;          /* pinned host arena */
    size_t pin_cap, pin_used;
    int flushing;
    int batching;       /* CK_CUDA_BATCH=0 turns batching of same-kind ops off */
    size_t head;        /* queued ops that make the next early submission; 0: none before the flush */
    size_t head_ops;    /* the first of a flush cycle: CK_GRAPH_HEAD, or CK_CUDA_GRAPH_HEAD (0: off) */
    int dirty;          /* ops queued since the last copy of the check flags */
    ck_cuda_flags *flags_host; /* pinned: the check flags as of the last flush (NULL: not kept) */
};

struct ck_prof_mark {
    const char *op;
    cudaEvent_t e0, e1;
};
struct ck_cuda_prof {
    std::vector<ck_prof_mark> marks;
};

/* Keeps the GPU busy for about `cycles` clocks, so that the timed launch behind it is queued before the
 * GPU reaches it: the events then measure the kernel, not the host's launch latency. */
static __global__ void spin_kernel(long long cycles) {
    long long t0 = clock64();
    while (clock64() - t0 < cycles) {
    }
}

void ck_cuda_prof_run(ck_backend *b, const char *op, ck_cuda_op_fn fn, const void *closure) {
    ck_cuda *c = ck_cu(b);
    ck_prof_mark m = {op, NULL, NULL};
    cudaEventCreate(&m.e0);
    cudaEventCreate(&m.e1);
    spin_kernel<<<1, 1, 0, c->st>>>(40000);
    cudaEventRecord(m.e0, c->st);
    fn(closure, c->st);
    cudaEventRecord(m.e1, c->st);
    c->prof->marks.push_back(m);
}

void ck_cuda_prof_report(ck_backend *b) {
    ck_cuda *c = ck_cu(b);
    if (!c->prof) return;
    cudaStreamSynchronize(c->st);
    struct row { const char *op; double ms; long n; };
    std::vector<row> rows;
    double total = 0;
    for (auto &m : c->prof->marks) {
        float ms = 0;
        cudaEventElapsedTime(&ms, m.e0, m.e1);
        cudaEventDestroy(m.e0);
        cudaEventDestroy(m.e1);
        size_t i = 0;
        while (i < rows.size() && strcmp(rows[i].op, m.op)) i++;
        if (i == rows.size()) rows.push_back(row{m.op, 0, 0});
        rows[i].ms += ms, rows[i].n++, total += ms;
    }
    fprintf(stderr, "cuda profile (GPU time per op as queued, fused ops under the name of the launch; each launch\n"
                    "timed alone behind a busy kernel, so no launch gaps and no overlap are counted):\n");
    for (auto &r : rows)
        fprintf(stderr, "  %-18s %8ld calls %10.3f ms %8.2f us/call %5.1f%%\n", r.op, r.n, r.ms, 1e3 * r.ms / r.n,
                100.0 * r.ms / (total > 0 ? total : 1));
    delete c->prof;
    c->prof = NULL;
}

int ck_cuda_graphs_init(ck_backend *b) {
    ck_cuda *c = ck_cu(b);
    const char *env = getenv("CK_CUDA_GRAPHS"), *prof = getenv("CK_CUDA_PROFILE");
    if (prof && !strcmp(prof, "1")) c->prof = new (std::nothrow) ck_cuda_prof();
    if (env && !strcmp(env, "0")) return -1;
    c->g = new (std::nothrow) ck_cuda_graphs();
    if (!c->g) return -1;
    c->g->clock = 0, c->g->pin = NULL, c->g->pin_cap = c->g->pin_used = 0, c->g->flushing = 0;
    c->g->arena.cur = c->g->arena.used = 0;
    const char *bt = getenv("CK_CUDA_BATCH"), *hd = getenv("CK_CUDA_GRAPH_HEAD");
    c->g->batching = !(bt && !strcmp(bt, "0"));
    c->g->head = c->g->head_ops = hd ? (size_t)strtoul(hd, NULL, 10) : CK_GRAPH_HEAD;
    c->g->dirty = 0;
    c->g->flags_host = NULL;
    if (cudaMallocHost((void **)&c->g->flags_host, sizeof *c->g->flags_host) != cudaSuccess) {
        cudaGetLastError();
        c->g->flags_host = NULL;
    } else memset(c->g->flags_host, 0, sizeof *c->g->flags_host);
    return 0;
}

ck_cuda_flags *ck_cuda_flags_host(ck_backend *b) {
    ck_cuda_graphs *g = ck_cu(b)->g;
    return g ? g->flags_host : NULL;
}

void ck_cuda_graphs_free(ck_backend *b) {
    ck_cuda *c = ck_cu(b);
    if (!c->g) return;
    ck_cuda_flush(b);
    for (auto &e : c->g->cache) cudaGraphExecDestroy(e.exec);
    if (c->g->pin) cudaFreeHost(c->g->pin);
    if (c->g->flags_host) cudaFreeHost(c->g->flags_host);
    for (const ck_arena_chunk &k : c->g->arena.chunks) free(k.p);
    delete c->g;
    c->g = NULL;
}

static void submit(ck_backend *b, ck_cuda_graphs *g);

void *ck_cuda_op_room(ck_backend *b, size_t bytes) {
    ck_op_arena *a = &ck_cu(b)->g->arena;
    bytes = (bytes + 15) / 16 * 16;
    while (a->cur < a->chunks.size() && a->used + bytes > a->chunks[a->cur].size) a->cur++, a->used = 0;
    if (a->cur == a->chunks.size()) { /* (a new chunk: only while the queue grows past what it held before) */
        size_t sz = bytes > CK_ARENA_CHUNK ? bytes : CK_ARENA_CHUNK;
        char *p = (char *)aligned_alloc(16, sz);
        if (!p) return NULL;
        try {
            a->chunks.push_back(ck_arena_chunk{p, sz});
        } catch (...) {
            free(p);
            return NULL;
        }
        a->used = 0;
    }
    void *r = a->chunks[a->cur].p + a->used;
    a->used += bytes;
    return r;
}

void ck_cuda_enqueue(ck_backend *b, const uint64_t *key, size_t n, ck_cuda_op_fn fn, const void *closure) {
    ck_cuda_graphs *g = ck_cu(b)->g;
    g->key.push_back(n);
    g->key.insert(g->key.end(), key, key + n);
    g->ops.push_back(ck_queued_op{fn, closure});
    g->names.push_back((const char *)(uintptr_t)key[0]);
    g->dirty = 1;
    if (g->head && g->ops.size() >= g->head && !g->flushing) { /* the head of a long queue goes now, the next */
        g->head *= 4;                                          /* piece when four times as long */
        submit(b, g);
    }
}

static void run_eagerly(ck_backend *b, ck_cuda_graphs *g) {
    for (auto &op : g->ops) op.fn(op.closure, ck_cu(b)->st);
}

static ck_graph_entry *lookup(ck_cuda_graphs *g) {
    for (auto &e : g->cache)
        if (e.key.size() == g->key.size() && !memcmp(e.key.data(), g->key.data(), g->key.size() * sizeof(uint64_t)))
            return &e;
    return NULL;
}

/* Captures the queue into a graph and instantiates it; NULL when the driver refuses (then nothing ran). */
static cudaGraphExec_t capture(ck_backend *b, ck_cuda_graphs *g) {
    cudaStream_t st = ck_cu(b)->st;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    if (cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    int failed_before = b->failed;
    run_eagerly(b, g);
    cudaError_t e = cudaStreamEndCapture(st, &graph);
    if (e == cudaSuccess && graph) e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess || !exec) {
        cudaGetLastError();
        if (!failed_before && b->failed) { /* an error seen only inside the capture: retry eagerly */
            b->failed = 0;
            b->why[0] = 0;
        }
        return NULL;
    }
    return exec;
}

static void remember(ck_cuda_graphs *g, cudaGraphExec_t exec) {
    if (g->cache.size() >= CK_GRAPH_CACHE) {
        size_t old = 0;
        for (size_t i = 1; i < g->cache.size(); i++)
            if (g->cache[i].used < g->cache[old].used) old = i;
        cudaGraphExecDestroy(g->cache[old].exec);
        g->cache.erase(g->cache.begin() + (long)old);
    }
    g->cache.push_back(ck_graph_entry{g->key, exec, ++g->clock});
}

int ck_cuda_overlap(const void *a, size_t an, const void *b, size_t bn) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return an && bn && x < y + bn && y < x + an;
}

void ck_cuda_batch_emit(ck_backend *b) {
    ck_batch *bt = &ck_cu(b)->batch;
    if (!bt->emit) return;
    ck_batch copy = *bt;
    bt->emit = NULL, bt->n = 0; /* the emitted launch goes through ck_cuda_run, which must see no batch */
    memset(&bt->in, 0, sizeof bt->in);
    ck_cu(b)->emit_in = copy.in;
    copy.emit(b, copy.parts, copy.n, copy.compat);
    memset(&ck_cu(b)->emit_in, 0, sizeof copy.in);
}

int ck_cuda_batch_start(ck_backend *b, ck_batch_emit_fn emit) {
    ck_cuda *c = ck_cu(b);
    if (!c->g || !c->g->batching) return 0;
    ck_cuda_batch_emit(b);
    memset(&c->batch, 0, sizeof c->batch);
    c->batch.emit = emit;
    return 1;
}

int ck_cuda_batch_add(ck_backend *b, ck_batch_emit_fn emit, const uint64_t *compat, const ck_batch_part *p) {
    ck_cuda *c = ck_cu(b);
    if (!c->g || !c->g->batching) return 0;
    ck_batch *bt = &c->batch;
    int join = bt->emit == emit && bt->n < CK_BATCH_MAX && !memcmp(bt->compat, compat, sizeof bt->compat);
    for (int i = 0; join && i < bt->n; i++) {
        const ck_batch_part *q = &bt->parts[i];
        join = !ck_cuda_overlap(p->out, p->out_bytes, q->in, q->in_bytes) &&
               !ck_cuda_overlap(p->out, p->out_bytes, q->out, q->out_bytes) &&
               !ck_cuda_overlap(p->in, p->in_bytes, q->out, q->out_bytes);
    }
    if (join && bt->in.kind != CK_IN_X) /* a fused producer: the part must read its output and spare its inputs */
        join = !bt->in.closed && p->in == bt->in.out &&
               !ck_cuda_overlap(p->out, p->out_bytes, bt->in.a, bt->in.a_bytes) &&
               !ck_cuda_overlap(p->out, p->out_bytes, bt->in.b, bt->in.b_bytes);
    else if (join && bt->in.closed)
        join = 0;
    if (!join) {
        if (bt->emit && c->fuse && ck_cuda_fuse(b, emit, compat, p)) return 1;
        ck_cuda_batch_emit(b);
        bt->emit = emit;
        memcpy(bt->compat, compat, sizeof bt->compat);
    }
    bt->parts[bt->n++] = *p;
    return 1;
}

/* Runs the queue (a cached or new graph, or eagerly) without waiting for it, and empties it. */
static void submit(ck_backend *b, ck_cuda_graphs *g) {
    ck_cuda *c = ck_cu(b);
    if (g->ops.empty()) return;
    int was = g->flushing;
    g->flushing = 1; /* ops may not re-enter the queue while it runs */
    if (c->prof) { /* profiling: the queue (fusions included) launched op by op, each timed */
        for (size_t i = 0; i < g->ops.size(); i++) ck_cuda_prof_run(b, g->names[i], g->ops[i].fn, g->ops[i].closure);
    } else if (g->ops.size() < CK_GRAPH_MIN_OPS) {
        run_eagerly(b, g);
    } else {
        ck_graph_entry *e = lookup(g);
        cudaGraphExec_t exec = e ? e->exec : capture(b, g);
        if (e) e->used = ++g->clock;
        else if (exec) remember(g, exec);
        if (exec) ck_cuda_check(b, cudaGraphLaunch(exec, c->st), "graph launch");
        else run_eagerly(b, g);
    }
    g->ops.clear();
    g->names.clear();
    g->key.clear();
    g->arena.cur = g->arena.used = 0; /* the closures have run or been captured */
    g->flushing = was;
}

void ck_cuda_flush(ck_backend *b) {
    ck_cuda *c = ck_cu(b);
    ck_cuda_graphs *g = c->g;
    if (!g || g->flushing) return;
    ck_cuda_batch_emit(b);
    if (g->dirty && g->flags_host) { /* the check flags behind the queue's ops, for cu_sync */
        ck_cuda_flags *h = g->flags_host, *d = c->flags;
        ck_cuda_run(b, "check_flags", [=](cudaStream_t st) {
            ck_cuda_check(b, cudaMemcpyAsync(h, d, sizeof *h, cudaMemcpyDeviceToHost, st), "check flags");
        }, h, d);
    }
    g->dirty = 0;
    submit(b, g);
    g->flushing = 1;
    ck_cuda_check(b, cudaStreamSynchronize(c->st), "device");
    g->pin_used = 0;
    g->head = g->head_ops;
    g->flushing = 0;
}

void *ck_cuda_pin(ck_backend *b, const void *src, size_t bytes) {
    ck_cuda_graphs *g = ck_cu(b)->g;
    if (!g) return NULL;
    size_t need = (bytes + 255) / 256 * 256;
    if (g->pin_used + need > g->pin_cap) {
        ck_cuda_flush(b); /* queued copies read the arena: run them before it moves */
        if (need > g->pin_cap) {
            size_t cap = need < (1u << 20) ? (1u << 20) : need * 2;
            ck_cuda *c = ck_cu(b);
            if (g->pin) cudaFreeHost(g->pin);
            if (c->dargs) cudaFree(c->dargs);
            g->pin = NULL, c->dargs = NULL, g->pin_cap = 0;
            if (ck_cuda_check(b, cudaMallocHost((void **)&g->pin, cap), "pinned staging") ||
                ck_cuda_check(b, cudaMalloc(&c->dargs, cap), "staging")) {
                if (g->pin) cudaFreeHost(g->pin);
                g->pin = NULL;
                return NULL;
            }
            g->pin_cap = cap;
        }
    }
    char *p = g->pin + g->pin_used;
    g->pin_used += need;
    memcpy(p, src, bytes);
    return p;
}

/* The device address mirroring pinned address p (see ck_cuda_pin). */
void *ck_cuda_pin_dev(ck_backend *b, const void *p) {
    ck_cuda_graphs *g = ck_cu(b)->g;
    return (char *)ck_cu(b)->dargs + ((const char *)p - g->pin);
}
