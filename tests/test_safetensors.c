/* test_safetensors.c — the safetensors parser on hand-made headers: a valid file parses with the right
 * views; every malformed header (truncation, offsets past the end, size/dtype mismatch, overflowing
 * shapes, bad JSON, too many dims) is rejected with a reason. */
#include "format/safetensors.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* Builds header-length + header + data into a malloc'd buffer. */
static uint8_t *make(const char *header, size_t data_len, size_t *len) {
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    uint8_t *b = calloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) b[8 + hl + i] = (uint8_t)i;
    return b;
}

static void expect_reject(const char *what, const char *header, size_t data_len, const char *needle) {
    size_t len;
    uint8_t *b = make(header, data_len, &len);
    ck_st st;
    char err[256] = "";
    int rc = ck_st_parse(b, len, &st, err, sizeof err);
    CK_EXPECT(rc == -1, "%s: accepted", what);
    CK_EXPECT(strstr(err, needle) != NULL, "%s: reason '%s' lacks '%s'", what, err, needle);
    if (rc == 0) ck_st_free(&st);
    free(b);
}

int main(void) {
    size_t len;
    uint8_t *b = make("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],"
                      "\"data_offsets\":[0,12]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
                      16, &len);
    ck_st st;
    char err[256];
    CK_EXPECT(ck_st_parse(b, len, &st, err, sizeof err) == 0, "valid file: %s", err);
    CK_EXPECT(st.n == 2, "two tensors, got %zu", st.n);
    if (st.n == 2) {
        CK_EXPECT(!strcmp(st.entries[0].name, "a") && st.entries[0].dtype == CK_BF16, "first entry");
        CK_EXPECT(st.entries[0].shape[0] == 2 && st.entries[0].shape[1] == 3, "shape");
        CK_EXPECT(st.entries[1].data[0] == 12, "offset of b");
    }
    ck_st_free(&st);
    /* the same file cut short */
    CK_EXPECT(ck_st_parse(b, len - 1, &st, err, sizeof err) == -1, "truncated data accepted");
    CK_EXPECT(ck_st_parse(b, 20, &st, err, sizeof err) == -1 && strstr(err, "truncated"), "truncated header: %s", err);
    CK_EXPECT(ck_st_parse(b, 5, &st, err, sizeof err) == -1, "5-byte file accepted");
    free(b);

    expect_reject("past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "past the end");
    expect_reject("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                  "do not match");
    expect_reject("dtype mismatch", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
                  "do not match");
    expect_reject("overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                  "\"data_offsets\":[0,8]}}", 8, "overflow");
    expect_reject("begin > end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                  "data_offsets");
    expect_reject("negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8, "shape");
    expect_reject("fraction", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 8, "shape");
    expect_reject("unknown dtype", "{\"a\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "dtype");
    expect_reject("missing fields", "{\"a\":{\"dtype\":\"F32\"}}", 8, "needs");
    expect_reject("bad json", "{\"a\":{\"dtype\":\"F32\",", 8, "JSON");
    expect_reject("not an object", "[1,2,3]", 8, "JSON");
    expect_reject("too many dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 8,
                  "dimensions");
    /* header length field larger than the file */
    uint8_t small[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    CK_EXPECT(ck_st_parse(small, sizeof small, &st, err, sizeof err) == -1, "huge header length accepted");
    return ck_test_done("test_safetensors");
}
