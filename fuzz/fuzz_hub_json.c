/* fuzz_hub_json.c — libFuzzer target: the parsers of the Hub's JSON replies (hub/api.h) on arbitrary
 * bytes — model info, a page of the tree listing, the weight_map of model.safetensors.index.json. Each
 * must fail cleanly or return only what api.h promises (valid file names, commit, sha256, sizes). */
#include "hub/api.h"
#include "hub/paths.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_names(const ck_hub_names *l) {
    for (size_t i = 0; i < l->n; i++)
        if (!ck_hub_filename_valid(l->v[i])) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *buf = (const char *)data;
    char err[256];
    ck_hub_info info;
    if (ck_hub_info_parse(buf, size, &info, err, sizeof err) == 0) {
        if (!ck_hub_is_commit(info.commit)) abort();
        check_names(&info.siblings);
        ck_hub_info_free(&info);
    }
    ck_hub_tree t;
    memset(&t, 0, sizeof t);
    ck_hub_tree_parse(buf, size, &t, err, sizeof err);
    ck_hub_tree_parse(buf, size, &t, err, sizeof err); /* a second page appends */
    for (size_t i = 0; i < t.n; i++)
        if (!ck_hub_filename_valid(t.v[i].path) || t.v[i].size < -1 || (t.v[i].sha256[0] && strlen(t.v[i].sha256) != 64))
            abort();
    ck_hub_tree_free(&t);
    ck_hub_names shards;
    if (ck_hub_weight_map_parse(buf, size, &shards, err, sizeof err) == 0) {
        check_names(&shards);
        for (size_t i = 0; i < shards.n; i++)
            for (size_t j = 0; j < i; j++)
                if (!strcmp(shards.v[i], shards.v[j])) abort();
        ck_hub_names_free(&shards);
    }
    return 0;
}
