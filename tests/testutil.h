/* testutil.h — tiny assertion helpers for the C tests: CK_EXPECT counts failures instead of aborting so
 * one run reports every mismatch; ck_test_done() prints the summary and returns the exit status.
 * Also loads JSON files and raw f32 arrays from tests/data and finds fixture folders. */
#ifndef CK_TESTUTIL_H
#define CK_TESTUTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

extern int ck_test_failures;
extern int ck_test_checks;

#define CK_EXPECT(cond, ...)                                                        \
    do {                                                                            \
        ck_test_checks++;                                                           \
        if (!(cond)) {                                                              \
            ck_test_failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
        }                                                                           \
    } while (0)

/* Prints "<name>: N checks, M failures" and returns 0 when nothing failed. */
int ck_test_done(const char *name);

/* Parses a JSON file (exits the test with a message when it cannot: test data is ours). */
cJSON *ck_test_json(const char *path);
/* Reads a whole raw float32 file; *n gets the element count. */
float *ck_test_f32(const char *path, size_t *n);
/* The folder of fixture NAME: tests/data/NAME, or the build tree's unpacked copy when tests/data keeps it
 * as NAME.tar.zst. */
void ck_test_fixture(char *dir, size_t cap, const char *name);

#endif
