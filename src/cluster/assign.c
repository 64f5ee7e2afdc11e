/* assign.c — proportional, memory-capped contiguous layer placement (see assign.h). */
#include "cluster/assign.h"

#include "base/err.h"

#include <math.h>

/* Layers a node's memory can hold, or n_layers when its memory is unknown. */
static int64_t mem_cap(const ck_assign_node *nd, int64_t n_layers, uint64_t layer_bytes) {
    if (!nd->mem_bytes || !layer_bytes) return n_layers;
    double cap = floor((double)nd->mem_bytes * CK_ASSIGN_MEM_FRACTION / (double)layer_bytes);
    return cap < (double)n_layers ? (int64_t)cap : n_layers;
}

int ck_assign_layers(const ck_assign_node *workers, size_t n, const ck_assign_node *master, int64_t n_layers,
                     uint64_t layer_bytes, int64_t *first, int64_t *last, int64_t *master_first, char *err,
                     size_t errlen) {
    double total = master->weight > 0 ? master->weight : 0;
    for (size_t i = 0; i < n; i++) {
        if (!(workers[i].weight > 0) || !isfinite(workers[i].weight))
            return ck_err(err, errlen, "worker %zu has no usable capability estimate", i);
        total += workers[i].weight;
    }
    if (!(total > 0)) return ck_err(err, errlen, "no capability to assign layers to");
    int64_t next = 0;
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += workers[i].weight;
        int64_t end = (int64_t)llround(acc / total * (double)n_layers); /* cumulative share, rounded */
        int64_t take = end - next, cap = mem_cap(&workers[i], n_layers, layer_bytes);
        if (take > cap) take = cap;
        if (take < 0) take = 0;
        first[i] = next;
        last[i] = next + take - 1;
        next += take;
    }
    *master_first = next;
    int64_t left = n_layers - next;
    if (left > mem_cap(master, n_layers, layer_bytes))
        return ck_err(err, errlen, "the workers' memory holds %lld layers; the master cannot hold the other %lld",
                      (long long)next, (long long)left);
    return 0;
}
