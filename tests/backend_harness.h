/* backend_harness.h — the shared part of test_backend (tests/test_backend.c: the ops one by one,
 * tests/backend_sequences.c: block-quantized matmuls and op sequences without syncs): the backend under
 * test, its tolerances, random inputs, backend memory through the ops table only, comparisons against
 * double-precision references (each op's worst error/magnitude ratio is kept for the summary), weights
 * prepared on the backend from host views, and the attention reference. */
#ifndef CK_TESTS_BACKEND_HARNESS_H
#define CK_TESTS_BACKEND_HARNESS_H

#include "backend/backend.h"
#include "testutil.h"

#include <stddef.h>
#include <stdint.h>

#define RTOL 1e-5
#define RTOL_GPU 2e-5
#define RTOL_GPU_MATMUL 5e-5
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

extern ck_backend *B;       /* the instance under test */
extern char desc[200];      /* the case being run, for failure messages */
extern uint32_t rng;        /* the random inputs' state (each test starts from the same one) */
/* The matmul's tolerance: RTOL, or 2^-8 when CAKE_EXACT=0 selects a fast path that may round
 * activations to bf16 (each product moves by at most 2^-9 of |x w|). */
extern double mm_rtol;
extern int on_cpu;          /* other backends: GPU tolerances (see test_backend.c's comment) */

float frand(void);                  /* [-1, 1) */
float urand(void);                  /* [0, 1) */
void *xmalloc(size_t n);            /* exits on failure */
float *hrand(size_t n, float s);    /* n random floats in [-s, s) */
double *dnew(size_t n);

/* Backend memory: n floats (or bytes), uploaded from h when not NULL; down: n floats back to the host
 * (malloc'd); synced: the backend's sync after op must succeed. */
float *dev(const float *h, size_t n);
void *dev_bytes(const void *h, size_t bytes);
float *down(const float *d, size_t n);
void synced(const char *op);

/* Comparisons: |got - want| <= rtol * mag per value (cmp: the backend's tolerance, cmp_f: exact); note
 * keeps op's worst error / magnitude for the summary. */
typedef struct stat_ {
    const char *op;
    double worst;
} stat_;
extern stat_ stats[32];
extern size_t n_stats;
void note(const char *op, double r);
void cmp_rtol(const char *op, const float *got, const double *want, const double *mag, size_t n, double rtol);
void cmp(const char *op, const float *got, const double *want, const double *mag, size_t n);
void cmp_f(const char *op, const float *got, const float *want, size_t n);

/* A weight of dt [rows, cols] from random values (rounded to dt; vals gets them as doubles), prepared on B. */
typedef struct hw {
    ck_tensor t;
    void *mem;
} hw;
void weight_new(hw *w, ck_dtype dt, size_t rows, size_t cols, double *vals);
void weight_free(hw *w);

/* Attention's reference over host copies of the caches (kc, vc as floats), and KV caches of dtype dt on
 * the backend (dev_kv rounds h in place to what an f16 cache holds) and back as floats. */
void attn_ref(const ck_attn_args *a, const float *kc, const float *vc, double *want, double *mag);
void *dev_kv(float *h, size_t n, ck_dtype dt);
float *down_kv(const void *d, size_t n, ck_dtype dt);

/* The tests of backend_sequences.c. */
void test_quant_types(void);
void test_fused_chains(void);
void test_gdn_chain(void);

#endif
