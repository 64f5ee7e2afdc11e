#!/bin/sh
# test_chat_tui.sh — `cake chat` driven the way a person uses it, in a detached tmux session of a fixed
# size (send-keys to type, capture-pane to read the screen; every wait polls the screen with a timeout):
#  1. local mode on qwen3-tiny, greedy: the streamed reply on screen equals what `cake run` prints for the
#     same conversation (and the reference greedy text), the status line has the token count and tok/s,
#     a second turn re-sends the history, one Ctrl+C while idle only arms, /quit exits 0;
#  2. remote mode against tests/chat_stub.py streaming "<think>reasoning</think>answer": "thinking…" is
#     shown while the reasoning streams, the reasoning is drawn dim (SGR 2, read with capture-pane -e),
#     then "thought" and the answer in normal intensity, with the server's usage count;
#  3. remote mode against a slow endless stream: Ctrl+C stops the reply (the server sees the client go),
#     and a second Ctrl+C quits with status 0;
#  4. remote mode against a stub that sends its reasoning apart (delta.reasoning_content) and no usage;
#     the sampling flags given are sent, those not given are not;
#  5. remote mode against a live `cake serve` on loopback: the same greedy text as `cake run`, the
#     repeat penalty applied, and a conversation past the context fails with a hint to /clear;
#  6. a server that cannot be reached is a clear error and exit 1, before any screen is drawn.
# usage: test_chat_tui.sh CAKE TESTDATA UNPACKED
CAKE=$1 DATA=$2 UNPACKED=$3
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
S="cktui$$"
TM="tmux -L $S -f /dev/null"
STUB_PID=
SERVE_PID=
cleanup() {
    [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null
    $TM kill-server 2>/dev/null
    [ -n "$STUB_PID" ] && kill "$STUB_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fail=0
pass=0
check() { # check NAME CONDITION-RESULT
    if [ "$2" = 0 ]; then echo "ok   $1"; pass=$((pass + 1)); else echo "FAIL $1"; fail=$((fail + 1)); fi
}
command -v tmux > /dev/null || { echo "FAIL tmux is not installed (make deps installs it)"; exit 1; }

screen() { $TM capture-pane -p -t "$1"; }
# wait_for SESSION TEXT SECONDS: polls the screen until TEXT shows up
wait_for() {
    i=0
    while [ $i -lt $(($3 * 10)) ]; do
        screen "$1" 2>/dev/null | grep -qF -- "$2" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "--- screen of $1 while waiting for '$2':"; screen "$1" 2>/dev/null
    return 1
}
# wait_file FILE SECONDS: polls until FILE exists and is not empty
wait_file() {
    i=0
    while [ $i -lt $(($2 * 10)) ]; do
        [ -s "$1" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
# start SESSION CMD...: runs CMD in a 100x40 detached session; its exit status lands in $T/SESSION.rc
start() {
    name=$1
    shift
    $TM new-session -d -s "$name" -x 100 -y 40 \
        "env LANG=C.UTF-8 LC_ALL=C.UTF-8 $*; echo \$? > $T/$name.rc; sleep 30"
}
start_stub() { # start_stub MODE: the stub's URL in $URL; its log starts empty
    rm -f "$T/port" "$T/stub.log"
    python3 "$HERE/chat_stub.py" --mode "$1" --port-file "$T/port" --log "$T/stub.log" &
    STUB_PID=$!
    wait_file "$T/port" 10 || { echo "FAIL the stub server did not start"; exit 1; }
    URL="http://127.0.0.1:$(cat "$T/port")"
}
stop_stub() { kill "$STUB_PID" 2>/dev/null; wait "$STUB_PID" 2>/dev/null; STUB_PID=; }
# quits SESSION LABEL: /quit in SESSION ends the chat with status 0
quits() {
    $TM send-keys -t "$1" -l "/quit"
    $TM send-keys -t "$1" Enter
    wait_file "$T/$1.rc" 10 && [ "$(cat "$T/$1.rc")" = 0 ]
    check "$2: /quit exits 0" $?
}
# posts_are JSON: the bodies the stub received, in order, are exactly the JSON list given
posts_are() {
    python3 - "$T/stub.log" "$1" <<'PY'
import json, sys
posts = [json.loads(l.split(" ", 2)[2]) for l in open(sys.argv[1], encoding="utf-8")
         if l.startswith("POST /v1/chat/completions ")]
want = json.loads(sys.argv[2])
if posts != want:
    print("--- requests received:\n" + "\n".join(json.dumps(p, sort_keys=True) for p in posts))
    sys.exit(1)
PY
}

# ---- 1. local round trip, greedy ----
Q="Explain quantum computing in simple terms."
"$CAKE" run "$UNPACKED/qwen3-tiny" "$Q" --system-prompt "" --temperature 0 -n 24 > "$T/run.txt" 2>/dev/null
start local "'$CAKE' chat '$UNPACKED/qwen3-tiny' --temperature 0 -n 24"
wait_for local "type a message" 30
check "local: the chat starts" $?
$TM send-keys -t local -l "$Q"
$TM send-keys -t local Enter
wait_for local "last: 24 tokens" 60
check "local: the reply finishes with 24 tokens in the status line" $?
screen local > "$T/local.txt"
python3 - "$T/local.txt" "$T/run.txt" "$UNPACKED/qwen3-tiny/reference.json" <<'PY'
import json, re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
run = open(sys.argv[2], encoding="utf-8").read()
ref = json.load(open(sys.argv[3]))["greedy_text"]
h = [i for i, l in enumerate(lines) if l.startswith("cake (")]
assert h, "no reply header on screen"
assert re.match(r"cake \(24 tokens, [0-9.]+ tok/s, length limit\)$", lines[h[0]]), lines[h[0]]
reply = []
for l in lines[h[0] + 1:]:
    if not l.startswith("  "):
        break
    reply.append(l[2:])
got = "".join(reply)  # the reply has no spaces, so the wrapped lines join back exactly
assert got == run, (got, run)
assert got == ref, (got, ref)
assert len(reply) >= 2, "the 100-column screen should wrap this reply"
PY
check "local: the reply on screen equals cake run's greedy text" $?
grep -qE "qwen3-tiny \| last: 24 tokens, [0-9.]+ tok/s" "$T/local.txt"
check "local: the status line names the model and shows tok/s" $?
$TM send-keys -t local -l "And then?"
$TM send-keys -t local Enter
i=0
while [ $i -lt 600 ] && [ "$(screen local | grep -c '^cake (24 tokens')" != 2 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(screen local | grep -c '^cake (24 tokens')" = 2 ] && screen local | grep -qF "And then?"
check "local: a second turn (the whole conversation re-sent) answers" $?
$TM send-keys -t local C-c
wait_for local "Ctrl+C again quits" 10 && [ ! -s "$T/local.rc" ]
check "local: one Ctrl+C while idle only arms quitting" $?
quits local "local"

# ---- 2. <think> in remote mode ----
start_stub think
start think "'$CAKE' chat --server $URL"
wait_for think "type a message" 10
$TM send-keys -t think -l "hi"
$TM send-keys -t think Enter
wait_for think "thinking…" 10 && wait_for think "Weighing the options carefully." 10
check "think: 'thinking…' is shown while the reasoning streams" $?
$TM capture-pane -e -p -t think > "$T/think_open.txt"
curl -s "$URL/_release" > /dev/null
wait_for think "The answer is 42." 10
check "think: the answer arrives after the reasoning" $?
wait_for think "last: 7 tokens" 10
check "think: the status line has the server's usage count" $?
$TM capture-pane -e -p -t think > "$T/think_done.txt"
python3 - "$T/think_open.txt" "$T/think_done.txt" <<'PY'
import re, sys

def cells(path):
    """(text, dim) for every line of a capture-pane -e dump, following the SGR state across lines."""
    out, dim = [], False
    for line in open(path, encoding="utf-8").read().split("\n"):
        text, flags = "", []
        for part in re.split(r"(\x1b\[[0-9;]*m)", line):
            m = re.fullmatch(r"\x1b\[([0-9;]*)m", part)
            if m:
                for p in (m[1] or "0").split(";"):
                    if p in ("0", ""):
                        dim = False
                    elif p == "2":
                        dim = True
                    elif p == "22":
                        dim = False
                continue
            text += part
            flags += [dim] * len(part)
        out.append((text, flags))
    return out

def dim_at(rows, needle):
    for text, flags in rows:
        i = text.find(needle)
        if i >= 0:
            return all(flags[i:i + len(needle)])
    raise AssertionError("%r not on screen" % needle)

opened, done = cells(sys.argv[1]), cells(sys.argv[2])
assert dim_at(opened, "thinking…"), "the indicator is dim"
assert dim_at(opened, "Weighing the options carefully."), "the reasoning is dim while it streams"
assert not any("The answer" in t for t, _ in opened)
assert not any("thinking…" in t for t, _ in done), "the indicator is gone once the reasoning closed"
assert dim_at(done, "thought"), "a dim 'thought' header stays"
assert dim_at(done, "Weighing the options carefully."), "the reasoning stays dim"
assert not dim_at(done, "The answer is 42."), "the answer is in normal intensity"
assert not any("<think>" in t or "</think>" in t for t, _ in done), "the tags are not shown"
PY
check "think: reasoning dimmed, answer normal, tags hidden (capture-pane -e)" $?
posts_are '[{"model": "stub", "messages": [{"role": "user", "content": "hi"}], "stream": true,
  "stream_options": {"include_usage": true}, "temperature": 1, "top_p": 1, "max_tokens": 2048}]'
check "think: the request is the conversation and cake's defaults; no top_k, repeat_penalty or seed unless given" $?
quits think "think"
stop_stub

# ---- 3. Ctrl+C stops a slow stream, a second one quits ----
start_stub slow
start slow "'$CAKE' chat --server $URL"
wait_for slow "type a message" 10
$TM send-keys -t slow -l "go"
$TM send-keys -t slow Enter
wait_for slow "tick 3 " 20
check "slow: ticks stream onto the screen" $?
screen slow | grep -qE "^ stub \| generating: [0-9]+\.[0-9] s \| Ctrl\+C stops"
check "slow: while streaming, the status line has the time taken, not a token count" $?
$TM send-keys -t slow C-c
wait_for slow "stopped)" 5
check "slow: Ctrl+C stops the reply" $?
screen slow | grep -qE '^cake \([0-9]+ characters in [0-9]+\.[0-9] s, stopped\)$'
check "slow: the stopped reply's header has its characters and time" $?
i=0
while [ $i -lt 50 ] && ! grep -q "disconnected after" "$T/stub.log"; do sleep 0.1; i=$((i + 1)); done
grep -q "disconnected after" "$T/stub.log"
check "slow: the server sees the client go away" $?
before=$(screen slow | grep -o "tick [0-9]*" | tail -n 1)
sleep 0.6
after=$(screen slow | grep -o "tick [0-9]*" | tail -n 1)
[ -n "$before" ] && [ "$before" = "$after" ] && [ ! -s "$T/slow.rc" ]
check "slow: nothing more arrives, and the chat is still running" $?
$TM send-keys -t slow C-c
wait_file "$T/slow.rc" 10 && [ "$(cat "$T/slow.rc")" = 0 ]
check "slow: a second Ctrl+C quits with status 0" $?
stop_stub

# ---- 4. reasoning sent apart (delta.reasoning_content), no usage, the flags given ----
start_stub reason
start reason "'$CAKE' chat --server $URL --top-k 5 --repeat-penalty 1.3 --repeat-last-n 64 --seed 7 -n 100"
wait_for reason "type a message" 10
$TM send-keys -t reason -l "hi"
$TM send-keys -t reason Enter
wait_for reason "Forty-two." 10
check "reason: the answer arrives" $?
posts_are '[{"model": "stub", "messages": [{"role": "user", "content": "hi"}], "stream": true,
  "stream_options": {"include_usage": true}, "temperature": 1, "top_p": 1, "max_tokens": 100,
  "top_k": 5, "repeat_penalty": 1.3, "repeat_last_n": 64, "seed": 7}]'
check "reason: --top-k, --repeat-penalty, --repeat-last-n and --seed are sent as given" $?
screen reason | grep -q "^  thought$" && screen reason | grep -q "^  Weighing it.$" && ! screen reason | grep -q "think>"
check "reason: the reasoning is shown under 'thought', without tags" $?
screen reason | grep -qE '^cake \(22 characters in [0-9]+\.[0-9] s\)$' && screen reason | grep -qE "\| last: 22 characters in [0-9]+\.[0-9] s \|" &&
    ! screen reason | grep -qE "tokens|tok/s"
check "reason: without usage, the characters received (reasoning and answer, no tags) and the time; no token count" $?
$TM send-keys -t reason -l "again"
$TM send-keys -t reason Enter
i=0
while [ $i -lt 100 ] && [ "$(screen reason | grep -c '^  Forty-two.$')" != 2 ]; do sleep 0.1; i=$((i + 1)); done
posts_are '[{"model": "stub", "messages": [{"role": "user", "content": "hi"}], "stream": true,
  "stream_options": {"include_usage": true}, "temperature": 1, "top_p": 1, "max_tokens": 100,
  "top_k": 5, "repeat_penalty": 1.3, "repeat_last_n": 64, "seed": 7},
 {"model": "stub", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Forty-two."},
  {"role": "user", "content": "again"}], "stream": true,
  "stream_options": {"include_usage": true}, "temperature": 1, "top_p": 1, "max_tokens": 100,
  "top_k": 5, "repeat_penalty": 1.3, "repeat_last_n": 64, "seed": 7}]'
check "reason: a later turn sends the earlier reply's answer only, not its reasoning" $?
[ "$(screen reason | grep -c '^  Weighing it.$')" = 2 ]
check "reason: both replies still show their reasoning" $?
n_posts() { grep -c "^POST /v1/chat/completions " "$T/stub.log"; }
$TM send-keys -t reason -l "/usr/bin is a directory"
$TM send-keys -t reason Enter
wait_for reason "unknown command /usr/bin (see /help); to send it as a message, start it with //" 10 &&
    screen reason | grep -q "^> /usr/bin is a directory" && [ "$(n_posts)" = 2 ]
check "reason: an unknown command is a note, sends nothing, and its text stays in the input" $?
$TM send-keys -t reason Home
$TM send-keys -t reason -l "/"
$TM send-keys -t reason Enter
i=0
while [ $i -lt 100 ] && [ "$(screen reason | grep -c '^  Forty-two.$')" != 3 ]; do sleep 0.1; i=$((i + 1)); done
python3 - "$T/stub.log" <<'PY'
import json, sys
posts = [json.loads(l.split(" ", 2)[2]) for l in open(sys.argv[1], encoding="utf-8")
         if l.startswith("POST /v1/chat/completions ")]
assert len(posts) == 3, len(posts)
assert posts[2]["messages"][-1] == {"role": "user", "content": "/usr/bin is a directory"}, posts[2]["messages"]
PY
[ $? = 0 ] && screen reason | grep -q "^  /usr/bin is a directory$"
check "reason: //usr/bin is a directory sends '/usr/bin is a directory'" $?
$TM send-keys -t reason -l "/help"
$TM send-keys -t reason Enter
wait_for reason "(//usr/bin sends /usr/bin)" 10
check "reason: /help tells how to send a message that starts with /" $?
quits reason "reason"
stop_stub

# ---- 4b. the input box: pastes keep their line breaks, long inputs, Esc, combining marks ----
start_stub reason
start paste "'$CAKE' chat --server '$URL' -n 100"
wait_for paste "type a message" 10
$TM send-keys -t paste BSpace Left Right  # on an input never typed in: nothing happens
# last_post CONTENT: the last request's last message is the user's CONTENT (a Python string literal)
last_post() {
    python3 - "$T/stub.log" "$1" <<'PY'
import ast, json, sys
posts = [json.loads(l.split(" ", 2)[2]) for l in open(sys.argv[1], encoding="utf-8")
         if l.startswith("POST /v1/chat/completions ")]
want = ast.literal_eval(sys.argv[2])
if not posts or posts[-1]["messages"][-1] != {"role": "user", "content": want}:
    print("--- last request: %r" % (posts[-1]["messages"][-1] if posts else None))
    sys.exit(1)
PY
}
printf 'first line\nsecond line\nthird line' > "$T/p3.txt"
$TM load-buffer -b p3 "$T/p3.txt"
$TM paste-buffer -p -b p3 -t paste  # as a terminal pastes: marked, line breaks as CR
wait_for paste "  third line" 10 && screen paste | grep -q "^> first line$" && [ "$(n_posts)" = 0 ]
check "input: a marked paste keeps its lines in the input and sends nothing" $?
$TM send-keys -t paste Enter
wait_for paste "Forty-two." 10 && last_post "'first line\nsecond line\nthird line'"
check "input: Enter then sends the pasted lines as one message" $?
printf 'alpha\nbeta' > "$T/p2.txt"
$TM load-buffer -b p2 "$T/p2.txt"
$TM paste-buffer -b p2 -t paste  # unmarked, as a terminal without bracketed paste: CR then more keys
wait_for paste "  beta" 10 && [ "$(n_posts)" = 1 ]
check "input: an unmarked paste's line break is not a send" $?
$TM send-keys -t paste Enter
i=0
while [ $i -lt 100 ] && [ "$(n_posts)" != 2 ]; do sleep 0.1; i=$((i + 1)); done
last_post "'alpha\nbeta'"
check "input: the unmarked paste goes out whole" $?
seq -f 'line%g' 1 600 > "$T/p600.txt"
$TM load-buffer -b p600 "$T/p600.txt"
$TM paste-buffer -p -b p600 -t paste
wait_for paste "  line600" 10
$TM send-keys -t paste -l "TYPED"
wait_for paste "  TYPED" 10  # on a line of its own: the pasted text ended with a line break
check "input: typing after a 600-line paste shows at the cursor" $?
$TM send-keys -t paste C-u
$TM send-keys -t paste -l "ab"
$TM send-keys -t paste Escape x y
wait_for paste "> abxy" 10
check "input: Esc (or Alt) before a key does not swallow the key" $?
$TM send-keys -t paste C-u
$TM send-keys -t paste -l "$(printf 'e\314\201')"
$TM send-keys -t paste Left
$TM send-keys -t paste -l "X"
$TM send-keys -t paste Enter
i=0
while [ $i -lt 100 ] && [ "$(n_posts)" != 3 ]; do sleep 0.1; i=$((i + 1)); done
last_post "'Xe\u0301'"
check "input: Left steps over a letter with its combining mark" $?
quits paste "input"
stop_stub

# ---- 5. remote mode against cake serve ----
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CAKE" serve "$UNPACKED/qwen3-tiny" --api "127.0.0.1:$PORT" --ctx 128 > "$T/serve.log" 2>&1 &
SERVE_PID=$!
i=0
until curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null || [ $i -gt 600 ]; do sleep 0.1; i=$((i + 1)); done
start served "'$CAKE' chat --server http://127.0.0.1:$PORT/v1 --temperature 0 -n 24"
wait_for served "type a message" 10
$TM send-keys -t served -l "$Q"
$TM send-keys -t served Enter
wait_for served "last: 24 tokens" 60
check "served: the reply finishes with the server's usage count" $?
screen served > "$T/served.txt"
python3 - "$T/served.txt" "$T/run.txt" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
run = open(sys.argv[2], encoding="utf-8").read()
h = [i for i, l in enumerate(lines) if l.startswith("cake (")]
assert h, "no reply header on screen"
reply = []
for l in lines[h[0] + 1:]:
    if not l.startswith("  "):
        break
    reply.append(l[2:])
assert "".join(reply) == run, ("".join(reply), run)
PY
check "served: the reply equals cake run's greedy text" $?
LONG=$(python3 -c 'print("word " * 80, end="")') # fits the context of 128 alone, not after the first turn
$TM send-keys -t served -l "$LONG"
$TM send-keys -t served Enter
wait_for served "the context holds 128" 30 &&
    screen served | grep -qF "The conversation no longer fits the model's context: /clear starts a new one."
check "served: a conversation past the context fails with the server's reason and a hint to /clear" $?
$TM send-keys -t served -l "/clear"
$TM send-keys -t served Enter
wait_for served "(conversation cleared)" 10
$TM send-keys -t served -l "$LONG"
$TM send-keys -t served Enter
wait_for served "last: 24 tokens" 60 && ! screen served | grep -q "error:"
check "served: after /clear the same message is answered" $?
quits served "served"
"$CAKE" run "$UNPACKED/qwen3-tiny" "$Q" --system-prompt "" --temperature 0 -n 24 --repeat-penalty 1.5 > "$T/run_pen.txt" 2>/dev/null
start served_pen "'$CAKE' chat --server http://127.0.0.1:$PORT --temperature 0 -n 24 --repeat-penalty 1.5"
wait_for served_pen "type a message" 10
$TM send-keys -t served_pen -l "$Q"
$TM send-keys -t served_pen Enter
wait_for served_pen "last: 24 tokens" 60
screen served_pen > "$T/served_pen.txt"
python3 - "$T/served_pen.txt" "$T/run_pen.txt" "$T/run.txt" <<'PY'
import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
run_pen, run = (open(p, encoding="utf-8").read() for p in sys.argv[2:])
assert run_pen != run, "the penalty should change this greedy text"
h = [i for i, l in enumerate(lines) if l.startswith("cake (")]
assert h, "no reply header on screen"
reply = []
for l in lines[h[0] + 1:]:
    if not l.startswith("  "):
        break
    reply.append(l[2:])
got = "".join(reply)  # a word wrap eats the space it breaks at
assert got.replace(" ", "") == run_pen.replace(" ", ""), (got, run_pen)
PY
check "served: --repeat-penalty reaches the server (cake run --repeat-penalty's text)" $?
$TM send-keys -t served_pen -l "/quit"
$TM send-keys -t served_pen Enter
kill "$SERVE_PID" 2>/dev/null
wait "$SERVE_PID" 2>/dev/null
SERVE_PID=

# ---- 6. errors before the screen ----
"$CAKE" chat --server http://127.0.0.1:9 > "$T/out" 2> "$T/err" < /dev/null
[ $? = 1 ] && grep -q "cake chat: cannot reach http://127.0.0.1:9/v1/models" "$T/err"
check "an unreachable server is a clear error, exit 1" $?
"$CAKE" chat --server ftp://x > /dev/null 2> "$T/err" < /dev/null
[ $? = 1 ] && grep -q "must start with http://" "$T/err"
check "a URL that is not http(s) is refused" $?
"$CAKE" chat "$UNPACKED/qwen3-tiny" --server http://x > /dev/null 2> "$T/err" < /dev/null
[ $? = 2 ] && grep -q "not both" "$T/err"
check "MODEL and --server together are a usage error" $?
"$CAKE" chat "$UNPACKED/qwen3-tiny" < /dev/null > "$T/out" 2> "$T/err"
[ $? = 1 ] && grep -q "needs a terminal" "$T/err"
check "without a terminal: a clear error, exit 1" $?
"$CAKE" chat "$UNPACKED/qwen3-tiny" --top-p 2 > /dev/null 2> "$T/err" < /dev/null
[ $? = 2 ] && grep -q "top_p must be in (0, 1\]" "$T/err"
check "sampling flags are checked as in cake run" $?

# ranges cake serve would refuse on every turn are usage errors up front; their edges are accepted
bad_flags() { # bad_flags MESSAGE FLAGS...: exit 2 with MESSAGE, before the server is asked anything
    want=$1
    shift
    "$CAKE" chat "$@" > /dev/null 2> "$T/err" < /dev/null
    rc=$?
    [ $rc = 2 ] && [ "$(cat "$T/err")" = "cake chat: $want" ] || { echo "--- rc $rc, stderr:"; cat "$T/err"; return 1; }
}
bad_flags "-n/--max-tokens must be between 1 and 1000000000000" --server http://127.0.0.1:9 -n 0
check "-n 0 is a usage error" $?
bad_flags "-n/--max-tokens must be between 1 and 1000000000000" "$UNPACKED/qwen3-tiny" -n 0
check "-n 0 is a usage error in local mode too" $?
bad_flags "--seed must be at most 9200000000000000000 with --server (the API's seeds are signed 64-bit)" \
    --server http://127.0.0.1:9 --seed 18446744073709551615
check "a --seed beyond the API's range is a usage error" $?
bad_flags "--top-k must be at most 1000000000 with --server" --server http://127.0.0.1:9 --top-k 1000000001
check "a --top-k beyond the API's range is a usage error" $?
bad_flags "--temperature must be at most 2 with --server" --server http://127.0.0.1:9 --temperature 2.5
check "a --temperature beyond the API's range is a usage error" $?
bad_flags "--repeat-penalty must be at most 1000000 with --server" --server http://127.0.0.1:9 --repeat-penalty 1e7
check "a --repeat-penalty beyond the API's range is a usage error" $?
"$CAKE" chat --server http://127.0.0.1:9 -n 1 --seed 9200000000000000000 --top-k 1000000000 --temperature 2 \
    > /dev/null 2> "$T/err" < /dev/null
[ $? = 1 ] && grep -q "cannot reach" "$T/err"
check "the edges of the ranges are accepted (the chat goes on to reach the server)" $?
"$CAKE" chat "$UNPACKED/qwen3-tiny" --seed 18446744073709551615 --temperature 5 < /dev/null > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "needs a terminal" "$T/err"
check "local mode keeps cake run's ranges (any 64-bit seed, any temperature)" $?
"$CAKE" chat --server http://x --chat-template-file "$T/t.jinja" > /dev/null 2> "$T/err" < /dev/null
[ $? = 2 ] && grep -q "for local mode" "$T/err"
check "--chat-template-file with --server is a usage error" $?
printf '{%% for m in messages %%}{{ m.content ' > "$T/bad.jinja"
"$CAKE" chat "$UNPACKED/qwen3-tiny" --chat-template-file "$T/bad.jinja" > /dev/null 2> "$T/err" < /dev/null
[ $? = 1 ] && grep -q "cake chat: --chat-template-file" "$T/err"
check "a chat template that does not parse is refused before the screen" $?
"$CAKE" chat --server http://x --kv-type f32 > /dev/null 2> "$T/err" < /dev/null
[ $? = 2 ] && grep -q "are for local mode" "$T/err"
check "--kv-type with --server is a usage error" $?
"$CAKE" chat --server http://x --mmap > /dev/null 2> "$T/err" < /dev/null
[ $? = 2 ] && grep -q "mmap are for local mode" "$T/err"
check "--mmap with --server is a usage error" $?
"$CAKE" chat "$UNPACKED/qwen3-tiny" --kv-type f8 > /dev/null 2> "$T/err" < /dev/null
[ $? = 2 ] && grep -q "cake chat: --kv-type: unknown KV cache type 'f8'" "$T/err"
check "an unknown --kv-type is refused before the screen" $?

echo "$pass passed, $fail failed"
[ $fail = 0 ]
