/* test_assign.c — zero-config layer placement: proportional shares in worker order, the master keeps the
 * tail, memory caps move layers to the next node, and impossible placements are refused. */
#include "cluster/assign.h"
#include "testutil.h"

#include <string.h>

static void expect(const char *what, const ck_assign_node *w, size_t n, ck_assign_node master, int64_t L,
                   uint64_t lb, const int64_t *want_first, const int64_t *want_last, int64_t want_master) {
    int64_t f[8], l[8], m;
    char err[256];
    CK_EXPECT(ck_assign_layers(w, n, &master, L, lb, f, l, &m, err, sizeof err) == 0, "%s: %s", what, err);
    for (size_t i = 0; i < n; i++)
        CK_EXPECT(f[i] == want_first[i] && l[i] == want_last[i], "%s: worker %zu got %lld-%lld, want %lld-%lld", what,
                  i, (long long)f[i], (long long)l[i], (long long)want_first[i], (long long)want_last[i]);
    CK_EXPECT(m == want_master, "%s: master from %lld, want %lld", what, (long long)m, (long long)want_master);
}

int main(void) {
    ck_assign_node two[2] = {{1, 0}, {1, 0}}, fast[2] = {{3, 0}, {1, 0}}, small[2] = {{1, 1000}, {1, 0}};
    ck_assign_node m1 = {1, 0};
    expect("equal thirds", two, 2, m1, 24, 100, (int64_t[]){0, 8}, (int64_t[]){7, 15}, 16);
    expect("3:1:1", fast, 2, m1, 25, 100, (int64_t[]){0, 15}, (int64_t[]){14, 19}, 20);
    expect("memory cap of 8 layers", small, 2, m1, 24, 100, (int64_t[]){0, 8}, (int64_t[]){7, 15}, 16);
    ck_assign_node tiny[2] = {{1, 400}, {1, 0}}; /* 0.8 * 400 / 100 = 3 layers */
    expect("memory cap of 3 layers", tiny, 2, m1, 24, 100, (int64_t[]){0, 3}, (int64_t[]){2, 15}, 16);
    expect("one worker, 4 layers", two, 1, m1, 4, 100, (int64_t[]){0}, (int64_t[]){1}, 2);
    ck_assign_node none = {0, 0};
    expect("master without weight keeps nothing", two, 2, none, 4, 100, (int64_t[]){0, 2}, (int64_t[]){1, 3}, 4);
    int64_t f[2], l[2], m;
    char err[256];
    ck_assign_node master_small = {1, 300}; /* holds 2 layers */
    ck_assign_node capped[2] = {{1, 300}, {1, 300}};
    CK_EXPECT(ck_assign_layers(capped, 2, &master_small, 24, 100, f, l, &m, err, sizeof err) != 0 &&
                  strstr(err, "cannot hold"),
              "impossible placement accepted");
    ck_assign_node bad[1] = {{0, 0}};
    CK_EXPECT(ck_assign_layers(bad, 1, &m1, 4, 100, f, l, &m, err, sizeof err) != 0, "zero weight accepted");
    return ck_test_done("test_assign");
}
