/* assign.h — layer placement for zero-config clusters: contiguous ranges in worker order, then the master
 * keeps the tail (with the embedding and the head). Each node's share of the layers is proportional to its
 * capability (weight: measured TFLOPS, or thread count when none was measured), and a worker never gets
 * more layers than fit in its memory (mem_bytes / layer_bytes, keeping a margin for caches). Pure. */
#ifndef CK_CLUSTER_ASSIGN_H
#define CK_CLUSTER_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

typedef struct ck_assign_node {
    double weight;          /* > 0 */
    uint64_t mem_bytes;     /* 0: unknown (no cap) */
} ck_assign_node;

#define CK_ASSIGN_MEM_FRACTION 0.8 /* of a worker's memory that weights may take */

/* Splits layers [0, n_layers) among n workers (in order) and the master: worker i gets [first[i],
 * last[i]] (last < first when it gets none), the master [*master_first, n_layers - 1]. Fails when the
 * workers' memory caps leave the master more than it can hold (master_mem 0: no cap). */
int ck_assign_layers(const ck_assign_node *workers, size_t n, const ck_assign_node *master, int64_t n_layers,
                     uint64_t layer_bytes, int64_t *first, int64_t *last, int64_t *master_first, char *err,
                     size_t errlen);

#endif
