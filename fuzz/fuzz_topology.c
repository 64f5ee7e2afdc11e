/* fuzz_topology.c — libFuzzer target: topology YAML parsing on arbitrary bytes, then the check against a
 * fixed model (prefix "model.layers", 64 layers) and the lookup of the first worker; all must fail cleanly
 * on anything malformed and free everything they allocate. */
#include "cluster/topology.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ck_topology t;
    char err[256];
    if (ck_topology_parse((const char *)data, size, &t, err, sizeof err) == 0) {
        (void)ck_topology_check(&t, "model.layers", 64, err, sizeof err);
        if (t.n && ck_topology_find(&t, t.workers[0].name) != &t.workers[0]) __builtin_trap();
        ck_topology_free(&t);
    }
    return 0;
}
