/* testutil.c — see testutil.h. */
#include "testutil.h"

#include "base/file.h"

#include <stdlib.h>
#include <string.h>

int ck_test_failures;
int ck_test_checks;

int ck_test_done(const char *name) {
    printf("%s: %d checks, %d failures\n", name, ck_test_checks, ck_test_failures);
    return ck_test_failures ? 1 : 0;
}

cJSON *ck_test_json(const char *path) {
    char *buf, err[256];
    size_t len;
    if (ck_file_read(path, &buf, &len, err, sizeof err) != 0) {
        fprintf(stderr, "test data: %s\n", err);
        exit(2);
    }
    cJSON *j = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!j) {
        fprintf(stderr, "test data: bad JSON in %s\n", path);
        exit(2);
    }
    return j;
}

float *ck_test_f32(const char *path, size_t *n) {
    char *buf, err[256];
    size_t len;
    if (ck_file_read(path, &buf, &len, err, sizeof err) != 0) {
        fprintf(stderr, "test data: %s\n", err);
        exit(2);
    }
    *n = len / sizeof(float);
    float *f = malloc(len ? len : 1);
    if (!f) exit(2);
    memcpy(f, buf, len);
    free(buf);
    return f;
}

void ck_test_fixture(char *dir, size_t cap, const char *name) {
    snprintf(dir, cap, "%s/%s", CK_TEST_DATA, name);
    if (!ck_is_dir(dir)) snprintf(dir, cap, "%s/%s", CK_TEST_UNPACKED, name);
}
