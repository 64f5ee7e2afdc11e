/* ui.h — the web UI page (src/server/ui/index.html), compiled into the binary at build time by
 * cmake/embed.cmake, so `cake serve` needs no files beside it. The page is self-contained (inline CSS and
 * JS, no CDN) and is served as text/html at GET /.
 * Invariant: ck_ui_html[ck_ui_html_len] == 0 (a NUL follows the bytes; the page itself holds none). */
#ifndef CK_SERVER_UI_H
#define CK_SERVER_UI_H

#include <stddef.h>

extern const unsigned char ck_ui_html[];
extern const size_t ck_ui_html_len;

#endif
