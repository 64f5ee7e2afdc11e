/* ui.c — a minimal page until the full web UI is embedded. */
#include "server/ui.h"

const unsigned char ck_ui_html[] = "<!doctype html><html><head><meta charset=\"utf-8\"><title>cake</title></head>"
                                   "<body><h1>cake</h1><p>POST /v1/chat/completions</p></body></html>";
const size_t ck_ui_html_len = sizeof ck_ui_html - 1;
