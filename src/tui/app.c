/* app.c — the ncurses side of `cake chat` (see tui.h): a scrollback of the conversation laid out by
 * text.c, a status line, and a multi-line input box at the bottom.
 * Keys: Enter sends; Ctrl+J or Alt+Enter inserts a newline; PgUp/PgDn (and Up/Down) scroll; Ctrl+C stops a
 * generation, and a second Ctrl+C (or one while idle, twice) quits; Ctrl+D on an empty input quits;
 * Ctrl+U clears the input. Commands: /quit, /exit, /clear, /help; a message that starts with "/" is typed
 * with "//" (an unknown command is a note, and its text stays in the input). Pasted text keeps its line
 * breaks: the terminal marks a paste (bracketed paste), and where it does not, an Enter with more keys
 * right behind it is a pasted line break, not a send.
 * Invariants: one thread; the terminal is in raw mode so Ctrl+C arrives as a key (no SIGINT); during a
 * turn, keys are read without blocking from the backend's callbacks; every message's text is cleaned
 * UTF-8 (ck_text_append), so drawing never sends control bytes to the terminal. */
#include "tui/tui.h"

#include "base/err.h"
#include "tui/text.h"

#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

enum { PAIR_USER = 1, PAIR_BOT, PAIR_NOTE, PAIR_STATUS };

typedef struct msg {
    int role;            /* 'u', 'a', 'n' */
    char *text;
    size_t len, cap;
    char pend[4];
    size_t n_pend;
    char head[160];
    int streaming;
    int in_history;      /* sent with later turns */
    char *answer;        /* a reply's answer without its reasoning, sent in its place; NULL: the text is */
} msg;

typedef struct app {
    const ck_chat_backend *b;
    const ck_tui_opts *o;
    msg *msgs;
    size_t n_msgs, cap_msgs;
    char *in;            /* the input, cleaned UTF-8 */
    size_t in_len, in_cap, cursor;
    size_t scroll;       /* lines scrolled up from the bottom */
    ck_line *lines;
    size_t lines_cap;
    int busy, stop, quit, armed; /* armed: the next Ctrl+C quits */
    int pasting;         /* between the terminal's paste-start and paste-end marks */
    size_t live_pieces;
    double t_start, t_first, t_drawn; /* the turn's start, its first text, the last draw */
    char status[640];
} app;

static volatile sig_atomic_t g_term; /* SIGTERM/SIGHUP arrived */

static void on_term(int sig) {
    (void)sig;
    g_term = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the conversation ---- */

static msg *push_msg(app *a, int role, const char *text) {
    if (a->n_msgs == a->cap_msgs) {
        size_t cap = a->cap_msgs ? a->cap_msgs * 2 : 16;
        msg *m = realloc(a->msgs, cap * sizeof *m);
        if (!m) return NULL;
        a->msgs = m, a->cap_msgs = cap;
    }
    msg *m = &a->msgs[a->n_msgs];
    memset(m, 0, sizeof *m);
    m->role = role;
    if (ck_text_append(&m->text, &m->len, &m->cap, m->pend, &m->n_pend, text, strlen(text)) != 0) return NULL;
    a->n_msgs++;
    return m;
}

static void note(app *a, const char *text) {
    push_msg(a, 'n', text);
    a->scroll = 0;
}

static void clear_msgs(app *a) {
    for (size_t i = 0; i < a->n_msgs; i++) free(a->msgs[i].text), free(a->msgs[i].answer);
    a->n_msgs = 0;
    a->scroll = 0;
}

/* The messages sent to the backend: the system prompt, then every user/assistant message kept, a reply
 * without its reasoning (as the web UI sends it). *out is malloc'd (the strings point into the messages). */
static int history(const app *a, ck_message **out, size_t *n) {
    *out = malloc((a->n_msgs + 1) * sizeof **out);
    if (!*out) return -1;
    size_t k = 0;
    if (a->o->system_prompt && *a->o->system_prompt) (*out)[k++] = (ck_message){"system", a->o->system_prompt};
    for (size_t i = 0; i < a->n_msgs; i++)
        if (a->msgs[i].in_history)
            (*out)[k++] = (ck_message){a->msgs[i].role == 'u' ? "user" : "assistant",
                                       a->msgs[i].answer ? a->msgs[i].answer : a->msgs[i].text};
    *n = k;
    return 0;
}

/* ---- drawing ---- */

static attr_t style_attr(ck_style st) {
    switch (st) {
    case CK_STYLE_USER_HEAD: return A_BOLD | COLOR_PAIR(PAIR_USER);
    case CK_STYLE_BOT_HEAD: return A_BOLD | COLOR_PAIR(PAIR_BOT);
    case CK_STYLE_THINK_HEAD: return A_DIM | A_BOLD;
    case CK_STYLE_THINK: return A_DIM;
    case CK_STYLE_NOTE: return COLOR_PAIR(PAIR_NOTE);
    default: return A_NORMAL;
    }
}

/* Lays the conversation out into a->lines; returns the line count (0 when out of memory). */
static size_t layout(app *a, size_t width) {
    ck_chat_item *items = malloc((a->n_msgs ? a->n_msgs : 1) * sizeof *items);
    if (!items) return 0;
    for (size_t i = 0; i < a->n_msgs; i++) {
        const msg *m = &a->msgs[i];
        items[i] = (ck_chat_item){m->role, m->text, m->len, m->head[0] ? m->head : NULL, m->streaming};
    }
    size_t n = ck_chat_layout(items, a->n_msgs, width, NULL, 0);
    if (n > a->lines_cap) {
        ck_line *l = realloc(a->lines, n * sizeof *l);
        if (!l) n = 0;
        else a->lines = l, a->lines_cap = n;
    }
    if (n) ck_chat_layout(items, a->n_msgs, width, a->lines, n);
    free(items);
    return n;
}

static void draw_chat(app *a, int rows, int cols) {
    size_t n = layout(a, (size_t)cols);
    size_t view = (size_t)rows;
    size_t max_scroll = n > view ? n - view : 0;
    if (a->scroll > max_scroll) a->scroll = max_scroll;
    size_t end = n - a->scroll, begin = end > view ? end - view : 0;
    for (int y = 0; y < rows; y++) {
        move(y, 0);
        clrtoeol();
        size_t i = begin + (size_t)y;
        if (i >= end) continue;
        const ck_line *l = &a->lines[i];
        attr_t at = style_attr(l->style);
        move(y, l->indent);
        attron(at);
        addnstr(l->text, (int)l->len);
        attroff(at);
    }
}

/* Where the input's wrapped lines start: fills starts with those of lines from, from + 1, ... (up to cap of
 * them), returns the count of all lines, and sets *cur_line and *cur_col to the cursor's place. */
static size_t input_lines(const app *a, size_t width, size_t from, size_t *starts, size_t cap, size_t *cur_line,
                          size_t *cur_col) {
    size_t k = 0, off = 0;
    int found = 0;
    *cur_line = 0, *cur_col = 0;
    for (;;) {
        size_t shown = 0, used = off < a->in_len ? ck_text_wrap(a->in + off, a->in_len - off, width, &shown) : 0;
        if (k >= from && k - from < cap) starts[k - from] = off;
        int last = off + used >= a->in_len && !(used > shown && a->in[off + used - 1] == '\n');
        /* at a hard wrap the cursor after the line's last character belongs to the next line */
        int here = a->cursor >= off && (a->cursor < off + shown || (a->cursor == off + shown && used > shown) || last);
        if (here && !found) {
            found = 1;
            *cur_line = k, *cur_col = ck_text_cols(a->in + off, a->cursor - off);
        }
        k++;
        if (last || used == 0) break;
        off += used;
    }
    return k;
}

#define INPUT_ROWS_MAX 512 /* the input box's rows shown at most */

static void draw_input(app *a, int top, int rows, int cols) {
    size_t width = cols > 3 ? (size_t)cols - 2 : 1, starts[INPUT_ROWS_MAX], cl, cc;
    if (rows > INPUT_ROWS_MAX) rows = INPUT_ROWS_MAX;
    size_t n = input_lines(a, width, 0, starts, 0, &cl, &cc); /* where the cursor is, then the rows around it */
    size_t first = cl + 1 > (size_t)rows ? cl + 1 - (size_t)rows : 0;
    input_lines(a, width, first, starts, (size_t)rows, &cl, &cc);
    for (int y = 0; y < rows; y++) {
        move(top + y, 0);
        clrtoeol();
        size_t i = first + (size_t)y;
        if (i >= n) continue;
        addstr(i == 0 ? "> " : "  ");
        size_t shown, at = starts[y];
        ck_text_wrap(a->in + at, a->in_len - at, width, &shown);
        addnstr(a->in + at, (int)shown);
    }
    move(top + (int)(cl - first), 2 + (int)cc);
}

static void draw(app *a) {
    int rows = LINES, cols = COLS;
    if (rows < 3 || cols < 8) {
        erase();
        refresh();
        return;
    }
    size_t width = (size_t)cols - 2, starts[1], cl, cc;
    size_t n_in = input_lines(a, width, 0, starts, 0, &cl, &cc);
    int in_rows = (int)(n_in < 1 ? 1 : n_in), max_in = rows / 3 > 1 ? rows / 3 : 1;
    if (in_rows > max_in) in_rows = max_in;
    int chat_rows = rows - in_rows - 1;
    draw_chat(a, chat_rows, cols);
    move(chat_rows, 0);
    attron(A_REVERSE);
    addnstr(a->status, cols);
    for (int x = (int)ck_text_cols(a->status, strlen(a->status)); x < cols; x++) addch(' ');
    attroff(A_REVERSE);
    draw_input(a, chat_rows + 1, in_rows, cols);
    refresh();
    a->t_drawn = now_s();
}

static void idle_status(app *a, const char *extra) {
    snprintf(a->status, sizeof a->status, " %s%s%s | Enter send, Ctrl+J newline, PgUp/PgDn scroll, /clear, /quit",
             a->b->name, extra && *extra ? " | " : "", extra ? extra : "");
}

/* While a turn runs: tokens and their speed when the backend streams tokens, else the time taken. */
static void busy_status(app *a) {
    char what[96];
    if (a->b->token_pieces) {
        double dt = a->live_pieces > 1 ? now_s() - a->t_first : 0;
        ck_turn_summary(what, sizeof what, (int64_t)a->live_pieces, dt > 0 ? (double)(a->live_pieces - 1) / dt : 0, 0, 0);
    } else {
        snprintf(what, sizeof what, "%.1f s", now_s() - a->t_start);
    }
    snprintf(a->status, sizeof a->status, " %s | generating: %s | Ctrl+C stops", a->b->name, what);
}

/* ---- input ---- */

static void input_insert(app *a, const char *s, size_t n) {
    char pend[4];
    size_t np = 0, at = a->cursor, tail_len = a->in_len - at;
    char *tail = malloc(tail_len + 1);
    if (!tail) return;
    if (tail_len) memcpy(tail, a->in + at, tail_len);
    a->in_len = at;
    if (ck_text_append(&a->in, &a->in_len, &a->in_cap, pend, &np, s, n) == 0) a->cursor = a->in_len;
    np = 0;
    ck_text_append(&a->in, &a->in_len, &a->in_cap, pend, &np, tail, tail_len);
    free(tail);
}

/* Byte offset of the character before / after the cursor; a character's combining marks (characters of
 * no width) go with it, so the cursor never stands between a letter and its accent. */
static size_t prev_char(const app *a, size_t i) {
    int w = 0;
    if (i == 0) return 0;
    do {
        while (i > 0 && ((unsigned char)a->in[--i] & 0xC0) == 0x80) {}
        ck_text_char(a->in + i, a->in_len - i, &w);
    } while (i > 0 && w == 0);
    return i;
}

static size_t next_char(const app *a, size_t i) {
    if (i >= a->in_len) return a->in_len;
    int w;
    i += ck_text_char(a->in + i, a->in_len - i, &w);
    while (i < a->in_len && (ck_text_char(a->in + i, a->in_len - i, &w), w == 0))
        i += ck_text_char(a->in + i, a->in_len - i, &w);
    return i;
}

static void input_delete(app *a, size_t from, size_t to) {
    if (to <= from) return;
    memmove(a->in + from, a->in + to, a->in_len - to + 1);
    a->in_len -= to - from;
    a->cursor = from;
}

static void input_clear(app *a) {
    a->in_len = a->cursor = 0;
    if (a->in) a->in[0] = 0;
}

/* ---- keys ---- */

static void on_enter(app *a);
static void key_enter(app *a);

static void key_ctrl_c(app *a) {
    if (a->busy) {
        a->stop = 1, a->armed = 1;
        return;
    }
    if (a->armed) {
        a->quit = 1;
        return;
    }
    a->armed = 1;
    idle_status(a, "Ctrl+C again quits");
}

/* A function key (KEY_*). */
static void key_code(app *a, wint_t ch) {
    int page = LINES > 8 ? LINES - 6 : 1;
    switch (ch) {
    case KEY_PPAGE: a->scroll += (size_t)page; break;
    case KEY_NPAGE: a->scroll = a->scroll > (size_t)page ? a->scroll - (size_t)page : 0; break;
    case KEY_UP: a->scroll++; break;
    case KEY_DOWN: a->scroll = a->scroll ? a->scroll - 1 : 0; break;
    case KEY_LEFT: a->cursor = prev_char(a, a->cursor); break;
    case KEY_RIGHT: a->cursor = next_char(a, a->cursor); break;
    case KEY_HOME: a->cursor = 0; break;
    case KEY_END: a->cursor = a->in_len; break;
    case KEY_BACKSPACE: input_delete(a, prev_char(a, a->cursor), a->cursor); break;
    case KEY_DC: input_delete(a, a->cursor, next_char(a, a->cursor)); break;
    case KEY_ENTER: key_enter(a); break;
    default: break;
    }
}

static void key_char(app *a, wint_t ch);

/* After ESC: Alt+Enter (ESC CR) adds a line; ESC [ 2 0 0 ~ and ESC [ 2 0 1 ~ open and close a paste; any
 * other key is taken as itself (Alt+x types x), a lone ESC does nothing. */
static void key_escape(app *a) {
    wint_t next;
    timeout(50);
    int r = get_wch(&next);
    if (r == ERR) return;
    if (r == KEY_CODE_YES) return key_code(a, next);
    if (next == 13 || next == 10) return input_insert(a, "\n", 1);
    if (next != '[') return key_char(a, next);
    char seq[8];
    size_t n = 0;
    while (n < sizeof seq - 1 && get_wch(&next) == OK && next < 128) { /* the rest of a CSI sequence */
        seq[n++] = (char)next;
        if (next >= 0x40 && next <= 0x7E) break;
    }
    seq[n] = 0;
    if (!strcmp(seq, "200~")) a->pasting = 1;
    else if (!strcmp(seq, "201~")) a->pasting = 0;
}

/* Enter: sends, except inside a paste or with more keys already waiting behind it (a paste from a terminal
 * that does not mark pastes: no one types that fast), where it is a line break. */
static void key_enter(app *a) {
    wint_t next;
    timeout(0);
    int r = a->pasting ? ERR : get_wch(&next);
    if (r == KEY_CODE_YES) { /* a function key (a resize, say) is no pasted text: Enter sends */
        ungetch((int)next);
        r = ERR;
    } else if (r == OK) {
        unget_wch(next);
    }
    if (!a->pasting && r == ERR) on_enter(a);
    else input_insert(a, "\n", 1);
}

/* A character key. */
static void key_char(app *a, wint_t ch) {
    if (ch == 27) return key_escape(a);
    switch (ch) {
    case 13: key_enter(a); return;
    case 10: input_insert(a, "\n", 1); return;
    case 127: case 8: input_delete(a, prev_char(a, a->cursor), a->cursor); return;
    case 21: input_clear(a); return;
    case 4: if (!a->busy && a->in_len == 0) a->quit = 1; return;
    case 12: clearok(curscr, TRUE); return;
    default: break;
    }
    if (ch < 32) return;
    char buf[8];
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t k = wcrtomb(buf, (wchar_t)ch, &st);
    if (k != (size_t)-1) input_insert(a, buf, k);
}

static void handle_key(app *a, int kind, wint_t ch) {
    if (kind == OK && ch == 3) {
        key_ctrl_c(a);
        return;
    }
    if (a->armed && !a->busy) idle_status(a, NULL);
    a->armed = 0;
    if (kind == KEY_CODE_YES) key_code(a, ch);
    else key_char(a, ch);
}

/* Reads the keys waiting (block: wait up to half a second for the first). */
static void pump_keys(app *a, int block) {
    for (int first = 1;; first = 0) {
        timeout(block && first ? 500 : 0);
        wint_t ch;
        int r = get_wch(&ch);
        if (r == ERR) return;
        handle_key(a, r, ch);
        if (a->quit) return;
    }
}

/* ---- turns ---- */

static int ui_text(void *user, const char *text, size_t len) {
    app *a = user;
    msg *m = &a->msgs[a->n_msgs - 1];
    ck_text_append(&m->text, &m->len, &m->cap, m->pend, &m->n_pend, text, len);
    if (a->live_pieces++ == 0) a->t_first = now_s();
    pump_keys(a, 0);
    if (now_s() - a->t_drawn > 0.03) {
        busy_status(a);
        draw(a);
    }
    return a->stop || a->quit || g_term;
}

static int ui_poll(void *user) {
    app *a = user;
    pump_keys(a, 0);
    if (now_s() - a->t_drawn > 0.1) {
        busy_status(a);
        draw(a);
    }
    return a->stop || a->quit || g_term;
}

/* After a turn: the reply's header and the status line say what happened. */
static void finish_turn(app *a, int rc, const ck_chat_stats *st, const char *err) {
    msg *m = &a->msgs[a->n_msgs - 1], *u = &a->msgs[a->n_msgs - 2];
    m->streaming = 0;
    char sum[128];
    ck_turn_summary(sum, sizeof sum, st->n_gen, st->tok_s, st->n_chars, st->secs);
    if (rc != 0) {
        u->in_history = 0;
        if (m->len == 0) free(m->text), a->n_msgs--;
        char line[700];
        snprintf(line, sizeof line, "error: %s", err);
        note(a, line);
        int earlier = 0;
        for (size_t i = 0; i < a->n_msgs; i++) earlier |= a->msgs[i].in_history;
        if (earlier && ck_text_is_context_error(err))
            note(a, "The conversation no longer fits the model's context: /clear starts a new one.");
        idle_status(a, "the last message failed");
        return;
    }
    m->in_history = 1;
    ck_think_split sp;
    ck_think_split_text(m->text, m->len, 1, &sp);
    if (sp.state != CK_THINK_NONE && !(m->answer = strndup(m->text + sp.answer_off, sp.answer_len)))
        m->in_history = 0; /* out of memory: the reply is shown but not sent back */
    snprintf(m->head, sizeof m->head, "cake (%s%s)", sum, st->stopped ? ", stopped" : st->length ? ", length limit" : "");
    char last[160];
    snprintf(last, sizeof last, "last: %s%s", sum, st->stopped ? " (stopped)" : "");
    idle_status(a, last);
}

static void run_turn(app *a, const char *text) {
    msg *u = push_msg(a, 'u', text);
    msg *m = u ? push_msg(a, 'a', "") : NULL;
    ck_message *h = NULL;
    size_t n;
    if (!m || (a->msgs[a->n_msgs - 2].in_history = 1, history(a, &h, &n)) != 0) {
        note(a, "error: out of memory");
        return;
    }
    input_clear(a);
    m->streaming = 1;
    a->busy = 1, a->stop = 0, a->live_pieces = 0, a->scroll = 0, a->t_start = now_s();
    busy_status(a);
    draw(a);
    ck_chat_io io = {ui_text, ui_poll, a};
    ck_chat_stats st = {0};
    char err[512] = "";
    int rc = a->b->turn(a->b->ctx, h, n, &io, &st, err, sizeof err);
    free(h);
    a->busy = 0;
    finish_turn(a, rc, &st, err);
}

/* Whether cmd[0..n) is the command `name`. */
static int is_cmd(const char *cmd, size_t n, const char *name) {
    return n == strlen(name) && !memcmp(cmd, name, n);
}

/* Runs the command cmd[0..n) (one line starting with "/"). Returns 1, or 0 when there is no such command
 * (a note says so, and how to send the text as a message). */
static int command(app *a, const char *cmd, size_t n) {
    if (is_cmd(cmd, n, "/quit") || is_cmd(cmd, n, "/exit")) {
        a->quit = 1;
    } else if (is_cmd(cmd, n, "/clear")) {
        clear_msgs(a);
        if (a->b->reset) a->b->reset(a->b->ctx);
        idle_status(a, NULL);
        note(a, "(conversation cleared)");
    } else if (is_cmd(cmd, n, "/help")) {
        note(a, "Enter sends; Ctrl+J or Alt+Enter adds a line; PgUp/PgDn scroll; Ctrl+C stops a reply, twice "
                "quits; Ctrl+U clears the input. /clear starts a new conversation, /quit leaves. A message that "
                "starts with / is typed with // (//usr/bin sends /usr/bin).");
    } else {
        size_t w = 0;
        while (w < n && w < 100 && cmd[w] != ' ') w++;
        char line[300];
        snprintf(line, sizeof line, "unknown command %.*s (see /help); to send it as a message, start it with //",
                 (int)w, cmd);
        note(a, line);
        return 0;
    }
    return 1;
}

/* Enter: a one-line input starting with "/" is a command (kept in the input when unknown); anything else
 * is sent, "//" at its start standing for "/". */
static void on_enter(app *a) {
    if (a->busy) return;
    size_t b = 0, e = a->in_len;
    while (b < e && (a->in[b] == ' ' || a->in[b] == '\n')) b++;
    while (e > b && (a->in[e - 1] == ' ' || a->in[e - 1] == '\n')) e--;
    if (b == e) return;
    int slash = a->in[b] == '/', escaped = slash && e - b > 1 && a->in[b + 1] == '/';
    if (slash && !escaped && !memchr(a->in + b, '\n', e - b)) {
        if (command(a, a->in + b, e - b)) input_clear(a);
        return;
    }
    a->in[e] = 0;
    run_turn(a, a->in + b + escaped);
}

/* ---- the terminal ---- */

/* curses in raw mode on the terminal; NULL (with a reason) when it cannot start. */
static SCREEN *open_screen(char *err, size_t errlen) {
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        ck_err(err, errlen, "cake chat needs a terminal (stdin and stdout)");
        return NULL;
    }
    setlocale(LC_ALL, "");
    if (MB_CUR_MAX == 1 && !setlocale(LC_CTYPE, "C.UTF-8")) setlocale(LC_CTYPE, "C.utf8");
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        const char *t = getenv("TERM");
        ck_err(err, errlen, "cannot start the terminal UI (TERM=%s)", t ? t : "(unset)");
        return NULL;
    }
    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    printf("\033[?2004h"); /* bracketed paste: the terminal marks pasted text */
    fflush(stdout);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(PAIR_USER, COLOR_GREEN, -1);
        init_pair(PAIR_BOT, COLOR_CYAN, -1);
        init_pair(PAIR_NOTE, COLOR_YELLOW, -1);
    }
    return scr;
}

int ck_tui_run(const ck_chat_backend *b, const ck_tui_opts *o, char *err, size_t errlen) {
    SCREEN *scr = open_screen(err, errlen);
    if (!scr) return -1;
    struct sigaction sa, old_term, old_hup;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    g_term = 0;
    app a = {.b = b, .o = o};
    idle_status(&a, NULL);
    note(&a, "cake chat: type a message and press Enter (/help for keys)");
    while (!a.quit && !g_term) {
        draw(&a);
        pump_keys(&a, 1);
    }
    printf("\033[?2004l");
    fflush(stdout);
    endwin();
    delscreen(scr);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    clear_msgs(&a);
    free(a.msgs);
    free(a.in);
    free(a.lines);
    return 0;
}
