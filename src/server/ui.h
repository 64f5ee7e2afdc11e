/* ui.h — the web UI: one self-contained HTML page, embedded in the binary. */
#ifndef CK_SERVER_UI_H
#define CK_SERVER_UI_H

#include <stddef.h>

extern const unsigned char ck_ui_html[];
extern const size_t ck_ui_html_len;

#endif
