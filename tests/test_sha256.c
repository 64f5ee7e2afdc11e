/* test_sha256.c — SHA-256 against the FIPS 180-4 / NIST example vectors, the one-million-'a' vector
 * fed in uneven pieces (exercises the partial-block path), and a file hash against a buffer hash. */
#include "testutil.h"

#include "base/sha256.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    static const struct { const char *msg, *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
         "mnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        ck_sha256_hex(v[i].msg, strlen(v[i].msg), hex);
        CK_EXPECT(!strcmp(hex, v[i].hex), "vector %zu: got %s", i, hex);
    }

    /* one million 'a', fed in pieces of 1..97 bytes */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    ck_sha256 s;
    ck_sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < 1000000) {
        size_t n = step < 1000000 - off ? step : 1000000 - off;
        ck_sha256_update(&s, a + off, n);
        off += n;
        step = step % 97 + 1;
    }
    uint8_t d[32];
    ck_sha256_final(&s, d);
    ck_sha256_to_hex(d, hex);
    CK_EXPECT(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a: %s", hex);

    /* file hash equals buffer hash */
    char path[] = "/tmp/ck_sha256_XXXXXX";
    int fd = mkstemp(path);
    CK_EXPECT(fd >= 0, "mkstemp");
    if (fd >= 0) {
        CK_EXPECT(write(fd, a, 200000) == 200000, "write");
        close(fd);
        char fhex[65], bhex[65], err[256];
        CK_EXPECT(ck_sha256_file(path, fhex, err, sizeof err) == 0, "%s", err);
        ck_sha256_hex(a, 200000, bhex);
        CK_EXPECT(!strcmp(fhex, bhex), "file %s vs buffer %s", fhex, bhex);
        unlink(path);
        CK_EXPECT(ck_sha256_file(path, fhex, err, sizeof err) == -1, "missing file must fail");
    }
    free(a);
    return ck_test_done("test_sha256");
}
