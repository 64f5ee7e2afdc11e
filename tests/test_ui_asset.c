/* test_ui_asset.c — the web UI page compiled into the binary (src/server/ui.h) is byte for byte
 * src/server/ui/index.html, NUL-terminated, and self-contained: no http(s) URL anywhere in a src, href,
 * url() or @import, no external scripts or fonts, no <link> but the favicon as a data: URI; and it uses the
 * endpoints the server provides. */
#include "server/ui.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    *n = buf ? fread(buf, 1, (size_t)len, f) : 0;
    if (buf) buf[*n] = 0;
    fclose(f);
    return buf;
}

int main(void) {
    size_t n = 0;
    char *file = slurp(CK_SOURCE_DIR "/src/server/ui/index.html", &n);
    CK_EXPECT(file != NULL, "cannot read index.html");
    CK_EXPECT(file && n == ck_ui_html_len && !memcmp(file, ck_ui_html, n), "embedded %zu bytes, file %zu", ck_ui_html_len, n);
    CK_EXPECT(ck_ui_html[ck_ui_html_len] == 0 && strlen((const char *)ck_ui_html) == ck_ui_html_len,
              "NUL-terminated, no NUL inside");
    const char *page = (const char *)ck_ui_html;
    const char *banned[] = {"http://", "https://", "@import", "src=", "url(", "//cdn", "fonts.g"};
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        CK_EXPECT(!strstr(page, banned[i]), "the page references something outside itself: '%s'", banned[i]);
    int links = 0;
    for (const char *l = strstr(page, "<link"); l; l = strstr(l + 1, "<link"), links++) {
        static const char icon[] = "<link rel=\"icon\" href=\"data:";
        CK_EXPECT(!strncmp(l, icon, sizeof icon - 1), "a <link> other than an inline favicon: '%.60s'", l);
    }
    CK_EXPECT(links == 1, "one <link>, the inline favicon (%d)", links);
    const char *needed[] = {"v1/chat/completions", "v1/models", "api/v1/topology", "stream: true", "AbortController",
                            "Authorization", "localStorage", "<think>", "thinking…", "usage", "[DONE]", "n_layers"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        CK_EXPECT(strstr(page, needed[i]) != NULL, "the page does not mention '%s'", needed[i]);
    CK_EXPECT(strstr(page, "<!DOCTYPE html>") == page, "the page starts with its doctype");
    free(file);
    return ck_test_done("test_ui_asset");
}
