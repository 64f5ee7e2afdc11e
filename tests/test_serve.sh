#!/bin/sh
# test_serve.sh CAKE DATA UNPACKED — `cake serve` on loopback, driven by real clients: curl for the exact wire
# shapes and every error status, the official openai npm package for plain and streamed completions
# (the same text as `cake run` with the same greedy settings, usage equal to the prompt and generated
# token counts), and a load of 32 concurrent streaming clients beside vanishing, slow and idle ones.
set -u
CAKE=$1
DATA=$2
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=$3/qwen3-tiny
WORK=$(mktemp -d)
fails=0
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
expect_eq() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', want '$2'"; fi; }

# A free port from the kernel.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts `cake serve` with the given flags in the background.
launch() {
    PORT=$(free_port)
    BASE=http://127.0.0.1:$PORT
    "$CAKE" serve "$MODEL" --api 127.0.0.1:"$PORT" "$@" >"$WORK/serve.log" 2>&1 &
    SERVER=$!
    PIDS="$PIDS $SERVER"
}

# Waits until GET /health answers `want` (503 while loading, 200 when ready).
wait_for() {
    for _ in $(seq 1 300); do
        [ "$(curl -s -o "$WORK/wait.json" -w "%{http_code}" "$BASE/health")" = "$1" ] && return 0
        kill -0 "$SERVER" 2>/dev/null || break
        sleep 0.05
    done
    bad "server never answered $1: $(cat "$WORK/serve.log")"
    exit 1
}

start_server() {
    launch "$@"
    wait_for 200
}

json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1, end='')"; }

PROMPT="Explain quantum computing in simple terms."
REF=$(json_field "d['greedy_text']" <"$MODEL/reference.json")
N_PROMPT=$(json_field "len(d['prompt_ids'])" <"$MODEL/reference.json")
RUN=$("$CAKE" run "$MODEL" "$PROMPT" --system-prompt "" --temperature 0 -n 24 2>/dev/null)
expect_eq "$RUN" "$REF" "cake run greedy text is the reference"

# while the model loads the socket already listens and the API says 503
CAKE_SERVE_LOAD_DELAY_MS=3000 launch --parallel 4 --max-body 65536
wait_for 503
expect_eq "$(json_field "d['error']['code']" <"$WORK/wait.json")" loading "503 while loading"
wait_for 200

BODY='{"messages":[{"role":"user","content":"'"$PROMPT"'"}],"temperature":0,"max_tokens":24}'
post() { curl -s -o "$WORK/out" -w '%{http_code}' -X POST "$BASE/v1/chat/completions" -H 'Content-Type: application/json' "$@"; }

# plain completion: OpenAI's shape, the reference text, real usage
expect_eq "$(post -d "$BODY")" 200 "plain completion status"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "plain completion text"
expect_eq "$(json_field "d['object'], d['choices'][0]['finish_reason'], d['choices'][0]['message']['role']" <"$WORK/out")" \
    "chat.completion length assistant" "plain completion shape"
expect_eq "$(json_field "d['usage']['prompt_tokens'], d['usage']['completion_tokens'], d['usage']['total_tokens']" <"$WORK/out")" \
    "$N_PROMPT 24 $((N_PROMPT + 24))" "plain completion usage"
expect_eq "$(json_field "d['model']" <"$WORK/out")" qwen3-tiny "model id"

# streamed: role chunk first, content chunks, the finish chunk, [DONE] last
post -N -d "$(echo "$BODY" | sed 's/}$/,"stream":true}/')" >/dev/null
python3 - "$WORK/out" "$REF" <<'EOF' || fails=$((fails + 1))
import json, sys
raw = open(sys.argv[1], encoding="utf-8").read()
events = [e for e in raw.split("\n\n") if e]
assert all(e.startswith("data: ") for e in events), "every event is a data line"
assert events[-1] == "data: [DONE]", "[DONE] comes last"
chunks = [json.loads(e[6:]) for e in events[:-1]]
assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}, chunks[0]
assert all(c["object"] == "chat.completion.chunk" for c in chunks)
assert len({c["id"] for c in chunks}) == 1, "one id per stream"
text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:])
assert text == sys.argv[2], text
assert chunks[-1]["choices"][0]["finish_reason"] == "length" and chunks[-1]["choices"][0]["delta"] == {}
assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
print(f"ok   streamed completion: {len(chunks)} chunks, text exact, [DONE] last")
EOF

# the template gets the request's tools and chat_template_kwargs (Qwen3's renders tools into the system
# turn and an empty think block when thinking is off), and an assistant turn's tool calls
usage_of() { post -d "$1" >/dev/null; json_field "d['usage']['prompt_tokens']" <"$WORK/out"; }
MSG='"messages":[{"role":"user","content":"'"$PROMPT"'"}],"max_tokens":1'
TOOLS='"tools":[{"type":"function","function":{"name":"get_time","description":"the time","parameters":{"type":"object","properties":{}}}}]'
base_n=$(usage_of "{$MSG}")
tools_n=$(usage_of "{$MSG,$TOOLS}")
nothink_n=$(usage_of "{$MSG,\"chat_template_kwargs\":{\"enable_thinking\":false}}")
[ "$base_n" = "$N_PROMPT" ] && [ "$tools_n" -gt $((base_n + 20)) ] && [ "$nothink_n" -gt "$base_n" ] &&
    ok "tools and chat_template_kwargs reach the template ($base_n, $tools_n, $nothink_n prompt tokens)" ||
    bad "tools/kwargs: $base_n, $tools_n, $nothink_n prompt tokens"
CALL='{"messages":[{"role":"user","content":"time?"},{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"get_time","arguments":{}}}]},{"role":"tool","content":"noon"}],"max_tokens":1}'
expect_eq "$(post -d "$CALL")" 200 "an assistant turn with tool calls and a tool result render"

# llama.cpp's repeat_penalty and repeat_last_n are applied as cake run's flags (the default stays 1: off)
RUN_PEN=$("$CAKE" run "$MODEL" "$PROMPT" --system-prompt "" --temperature 0 -n 24 --repeat-penalty 1.5 2>/dev/null)
RUN_PEN8=$("$CAKE" run "$MODEL" "$PROMPT" --system-prompt "" --temperature 0 -n 24 --repeat-penalty 1.5 --repeat-last-n 8 2>/dev/null)
[ -n "$RUN_PEN8" ] && [ "$RUN_PEN" != "$REF" ] && [ "$RUN_PEN8" != "$RUN_PEN" ] &&
    ok "the penalty and its window change cake run's greedy text" || bad "the penalty or its window changes nothing"
expect_eq "$(post -d "$(echo "$BODY" | sed 's/}$/,"repeat_penalty":1.5}/')")" 200 "repeat_penalty accepted"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$RUN_PEN" "repeat_penalty gives cake run --repeat-penalty's text"
post -d "$(echo "$BODY" | sed 's/}$/,"repeat_penalty":1.5,"repeat_last_n":8}/')" >/dev/null
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$RUN_PEN8" "repeat_last_n gives cake run --repeat-last-n's text"
expect_eq "$(post -d "$(echo "$BODY" | sed 's/}$/,"repeat_penalty":0}/')")" 400 "repeat_penalty 0 is a 400"
expect_eq "$(json_field "d['error']['message']" <"$WORK/out")" "'repeat_penalty' must be greater than 0" "repeat_penalty 0: why"
expect_eq "$(post -d "$(echo "$BODY" | sed 's/}$/,"repeat_last_n":-1}/')")" 400 "repeat_last_n -1 is a 400"

# a text completion (no chat template): the prompt as cake run --raw takes it
RAW=$("$CAKE" run "$MODEL" "$PROMPT" --raw --temperature 0 -n 12 2>/dev/null)
code=$(curl -s -o "$WORK/out" -w '%{http_code}' -X POST "$BASE/v1/completions" \
    -d '{"prompt":"'"$PROMPT"'","max_tokens":12,"temperature":0}')
expect_eq "$code $(json_field "d['object'], d['usage']['completion_tokens']" <"$WORK/out")" "200 text_completion 12" "text completion"
expect_eq "$(json_field "d['choices'][0]['text']" <"$WORK/out")" "$RAW" "text completion equals cake run --raw"

# errors in OpenAI's shape with the right status
expect_eq "$(post -d '{"messages": [')" 400 "malformed JSON is a 400"
expect_eq "$(json_field "d['error']['type']" <"$WORK/out")" invalid_request_error "error shape"
expect_eq "$(post -d '{"temperature": 0}')" 400 "missing messages is a 400"
expect_eq "$(post -d '{"messages":[{"role":"user","content":"x"}],"presence_penalty":0.5}')" 400 "presence_penalty is refused clearly"
expect_eq "$(post -d '{"messages":[{"role":"wizard","content":"x"}]}')" 400 "unknown role is a 400"
expect_eq "$(post -d '{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}')" 400 "wrong type is a 400"
expect_eq "$(post -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":1,"some_future_field":{"a":1}}')" 200 "unknown fields are ignored"
# the routes without /v1 (for clients whose base URL lacks it), and /v1/health
expect_eq "$(curl -s -o "$WORK/out" -w '%{http_code}' -X POST "$BASE/chat/completions" -H 'Content-Type: application/json' -d "$BODY")" \
    200 "POST /chat/completions (no /v1) answers"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "POST /chat/completions: the same text"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/models")" 200 "GET /models (no /v1) answers"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/health")" 200 "GET /v1/health answers"
# text parts are joined with a newline, as llama-server and vLLM join them
post -d '{"messages":[{"role":"user","content":[{"type":"text","text":"Hel"},{"type":"text","text":"lo"}]}],"max_tokens":1,"temperature":0}' >/dev/null
parts=$(json_field "d['usage']['prompt_tokens'], d['choices'][0]['message']['content']" <"$WORK/out")
post -d '{"messages":[{"role":"user","content":"Hel\nlo"}],"max_tokens":1,"temperature":0}' >/dev/null
expect_eq "$parts" "$(json_field "d['usage']['prompt_tokens'], d['choices'][0]['message']['content']" <"$WORK/out")" \
    "content parts are joined with a newline"
# features that would change the reply are refused, unless given with their "off" value
M1='"messages":[{"role":"user","content":"x"}],"max_tokens":1'
for f in '"logprobs":true' '"top_logprobs":2' '"logit_bias":{"42":5}' '"response_format":{"type":"json_object"}' \
         '"tool_choice":"required"'; do
    code=$(post -d "{$M1,$f}")
    name=${f%%:*}
    [ "$code" = 400 ] && grep -q "$(echo "$name" | tr -d '"') .*not supported\|$(echo "$name" | tr -d '"')' .*not supported" "$WORK/out" &&
        ok "$f is refused by name" || bad "$f: $code $(cat "$WORK/out")"
done
expect_eq "$(post -d "{$M1,\"logprobs\":false,\"logit_bias\":{},\"response_format\":{\"type\":\"text\"},\"tool_choice\":\"auto\"}")" 200 \
    "their off values are accepted"
expect_eq "$(post -d "{$M1} {}")" 400 "a second JSON value after the body is a 400"
expect_eq "$(post -d '{"messages":[{"role":"user","content":"a\u0000b"}]}')" 400 "U+0000 in a string is a 400 (not a cut prompt)"
grep -q "U+0000" "$WORK/out" && ok "... naming U+0000" || bad "U+0000: $(cat "$WORK/out")"
printf '{"messages":[{"role":"user","content":"a\000b"}]}' > "$WORK/nul.json"
expect_eq "$(post --data-binary @"$WORK/nul.json")" 400 "a raw NUL byte in a string is a 400 too"
python3 -c 'print("{\"messages\":[{\"role\":\"user\",\"content\":\"" + "word " * 5000 + "\"}]}")' >"$WORK/long.json"
expect_eq "$(post --data-binary @"$WORK/long.json")" 400 "a prompt longer than the context is a 400"
python3 -c 'print("{\"messages\":[{\"role\":\"user\",\"content\":\"" + "x" * 70000 + "\"}]}")' >"$WORK/big.json"
expect_eq "$(post --data-binary @"$WORK/big.json")" 413 "oversized body is a 413"
expect_eq "$(curl -s -o "$WORK/out" -w '%{http_code}' "$BASE/v2/nothing")" 404 "unknown route is a 404"
expect_eq "$(curl -s -o "$WORK/out" -w '%{http_code}' "$BASE/v1/chat/completions")" 405 "GET on a POST route is a 405"
expect_eq "$(curl -s -o "$WORK/out" -w '%{http_code}' "$BASE/api/v1/topology")" 200 "topology"
expect_eq "$(json_field "d['master']['layers'], d['n_layers'], d['workers']" <"$WORK/out")" "[0, 3] 4 []" "topology content"
expect_eq "$(curl -s -o "$WORK/out" -w '%{http_code}' "$BASE/")" 200 "web UI"

# the official openai npm client, plain and streamed
mkdir -p "$WORK/api"
cp "$HERE/api/package.json" "$HERE/api/package-lock.json" "$HERE/api/"*.mjs "$WORK/api/"
if ! (cd "$WORK/api" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1); then
    bad "npm ci failed (the npm registry must be reachable): $(tail -5 "$WORK/npm.log")"
    exit 1
fi
node "$WORK/api/openai_client.mjs" "$BASE" "$PROMPT" 24 "$REF" "$N_PROMPT" || fails=$((fails + 1))

# load: 32 concurrent streams beside vanishing, slow and idle clients; exact texts, flat memory
node "$WORK/api/load.mjs" "$BASE" "$SERVER" 32 3 || fails=$((fails + 1))
kill -0 "$SERVER" 2>/dev/null && ok "server still up" || bad "server died: $(tail -5 "$WORK/serve.log")"

# --api-key: requests without the key get a 401; SIGTERM stops the server cleanly: a stream in flight
# ends with an error event saying why and [DONE], a waited-for completion gets a 503
LONG='{"messages":[{"role":"user","content":"'"$PROMPT"'"}],"max_tokens":3900,"temperature":0'
curl -s -N -o "$WORK/term_stream" -X POST "$BASE/v1/chat/completions" -H 'Content-Type: application/json' -d "$LONG,\"stream\":true}" &
cs=$!
curl -s -o "$WORK/term_whole" -w '%{http_code}' -X POST "$BASE/v1/chat/completions" -H 'Content-Type: application/json' -d "$LONG}" >"$WORK/term_code" &
cw=$!
sleep 1
kill "$SERVER"
wait "$SERVER" 2>/dev/null
expect_eq "$?" 0 "SIGTERM exits 0"
wait $cs $cw
tail -c 300 "$WORK/term_stream" | grep -q 'the server is shutting down' && [ "$(tail -c 14 "$WORK/term_stream")" = "$(printf 'data: [DONE]\n\n')" ] &&
    ok "a stream cut by SIGTERM ends with its reason and [DONE]" || bad "stream at SIGTERM: $(tail -c 300 "$WORK/term_stream")"
expect_eq "$(cat "$WORK/term_code")" 503 "a waited-for completion at SIGTERM is a 503"
start_server --api-key sekret --parallel 1
expect_eq "$(post -d "$BODY")" 401 "no API key is a 401"
expect_eq "$(post -H 'Authorization: Bearer sekret' -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}')" 200 "API key accepted"
expect_eq "$(post -H 'Authorization: bearer  sekret' -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}')" 200 \
    "API key accepted with the scheme in lower case and two spaces (the scheme's name is case-insensitive)"
expect_eq "$(post -H 'Authorization: Bearer sekre' -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}')" 401 "a key one character short is refused"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/")" 200 "with --api-key alone the web UI's page loads (it asks for the key)"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/models")" 401 "with --api-key the models route needs the key"
# one slot: a stream queued behind a running one says nothing for its first seconds (its first keep-alive
# comment is due 15 s after it came), then runs once the slot frees, to its [DONE]
python3 - "${BASE#http://}" <<'PY' && ok "a queued stream waits quietly, then runs when the slot frees" || bad "queued stream"
import json, socket, sys, time
host, port = sys.argv[1].rstrip("/").split(":")
def req(path, body):
    s = socket.create_connection((host, int(port)))
    b = json.dumps(body).encode()
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(b), b))
    return s
running = req("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "stream": True})
running.settimeout(30)
first = b""
while b"data: " not in first:  # it holds the slot
    d = running.recv(65536)
    assert d, first
    first += d
queued = req("/v1/completions", {"prompt": "Hi", "max_tokens": 3, "stream": True})
queued.settimeout(0.2)
got, t0 = b"", time.time()
while time.time() - t0 < 2:
    try:
        got += queued.recv(65536)
    except socket.timeout:
        pass
body = got.partition(b"\r\n\r\n")[2]
assert b"keep-alive" not in got and b"data:" not in got, got
running.close()
queued.settimeout(30)
while not got.endswith(b"data: [DONE]\n\n\r\n") and b"0\r\n\r\n" not in got[-7:]:
    d = queued.recv(65536)
    assert d, got
    got += d
assert b"data: [DONE]" in got and b'"text"' in got, got
PY
# a browser's CORS preflight for a JSON POST with a key
curl -s -D "$WORK/headers" -o /dev/null -X OPTIONS "$BASE/v1/chat/completions" -H 'Origin: http://example.com' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization,content-type'
grep -q '^HTTP/1.1 204' "$WORK/headers" && grep -qi '^Access-Control-Allow-Headers:.*Authorization' "$WORK/headers" &&
    grep -qi '^Access-Control-Allow-Headers:.*Content-Type' "$WORK/headers" &&
    grep -qi '^Access-Control-Allow-Methods:.*POST' "$WORK/headers" && ok "CORS preflight allows POST with a key and JSON" ||
    bad "CORS preflight: $(tr -d '\r' <"$WORK/headers" | tr '\n' '|')"
# ... and the other headers it asks for: the openai SDK in a browser sends X-Stainless-* headers
curl -s -D "$WORK/headers" -o /dev/null -X OPTIONS "$BASE/v1/chat/completions" -H 'Origin: http://example.com' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization,content-type,x-stainless-os'
grep -qi '^Access-Control-Allow-Headers:.*x-stainless-os' "$WORK/headers" && ok "CORS preflight allows the headers asked for" ||
    bad "CORS preflight with X-Stainless-OS: $(tr -d '\r' <"$WORK/headers" | tr '\n' '|')"
# ... but a list that is not plain header names is not echoed
curl -s -D "$WORK/headers" -o /dev/null -X OPTIONS "$BASE/v1/chat/completions" -H 'Origin: http://example.com' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: x-a, <b>;c=d'
grep -qi '^Access-Control-Allow-Headers: Authorization, Content-Type' "$WORK/headers" && ! grep -q '<b>' "$WORK/headers" &&
    ok "CORS preflight: a list that is not header names gets the default" ||
    bad "CORS preflight with a bad list: $(tr -d '\r' <"$WORK/headers" | tr '\n' '|')"

# --ui-auth: basic auth on the web UI and the API (the browser prompts: WWW-Authenticate)
kill "$SERVER"
wait "$SERVER" 2>/dev/null
start_server --ui-auth alice:wonder
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/")" 401 "UI without credentials is a 401"
curl -s -D "$WORK/headers" -o /dev/null "$BASE/"
grep -qi '^WWW-Authenticate: Basic' "$WORK/headers" && ok "the 401 asks for basic auth" || bad "no WWW-Authenticate header"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' -u alice:wonder "$BASE/")" 200 "UI with credentials"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' -u alice:wrong "$BASE/")" 401 "wrong password is a 401"
expect_eq "$(post -u alice:wonder -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}')" 200 "API with basic credentials"

# a model without a chat template (the bundled one): a chat continues the messages' text as one plain
# prompt, as `cake chat` and `cake run` do
kill "$SERVER"
wait "$SERVER" 2>/dev/null
TINY="$HERE/../models/cake-tiny"
PLAIN=$("$CAKE" run "$TINY" "And God said" --temperature 0 -n 12 2>/dev/null)
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
(cd "$TINY" && exec "$CAKE" serve . --api 127.0.0.1:"$PORT") >"$WORK/serve.log" 2>&1 &
SERVER=$!
PIDS="$PIDS $SERVER"
wait_for 200
curl -s -o "$WORK/out" "$BASE/v1/models"
expect_eq "$(json_field "d['data'][0]['id']" <"$WORK/out")" cake-tiny "the model id of 'cake serve .' is the directory's name"
expect_eq "$(post -d '{"messages":[{"role":"user","content":"And God said"}],"temperature":0,"max_tokens":12}')" 200 \
    "a chat with a model without a chat template"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$PLAIN" "... continues the plain prompt as cake run does"

# the model spread over two engines in the server's process (--devices cpu,cpu): the same text, twice
kill "$SERVER"
wait "$SERVER" 2>/dev/null
start_server --devices cpu,cpu
expect_eq "$(post -d "$BODY")" 200 "over --devices: completion status"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "over --devices: same text as one engine"
expect_eq "$(post -d "$BODY")" 200 "over --devices: the same request again"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "over --devices: same text again"
curl -s -o "$WORK/out" "$BASE/api/v1/topology"
expect_eq "$(json_field "d['master']['layers'], d['n_layers']" <"$WORK/out")" "[0, 3] 4" "over --devices: the topology's master holds every layer"
cpids=""
for i in 1 2 3; do
    curl -s -o "$WORK/par$i" -X POST "$BASE/v1/chat/completions" -H 'Content-Type: application/json' -d "$BODY" &
    cpids="$cpids $!"
done
for p in $cpids; do wait "$p"; done
for i in 1 2 3; do
    expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/par$i")" "$REF" "over --devices: concurrent request $i, same text"
done

# as a cluster's master: a worker holds layers 2-3 (over two engines, --devices cpu,cpu), the server the
# rest; the text is the same, and again for the same request (the session's prefix is kept: the worker
# truncates both its engines' caches to it)
kill "$SERVER"
wait "$SERVER" 2>/dev/null
WPORT=$(free_port)
printf 'w1:\n  host: "127.0.0.1:%s"\n  layers:\n    - "model.layers.2-3"\n' "$WPORT" >"$WORK/topo.yml"
"$CAKE" run "$MODEL" --name w1 --topology "$WORK/topo.yml" --address 127.0.0.1:"$WPORT" --cluster-key k9 \
    --devices cpu,cpu >"$WORK/worker.log" 2>&1 &
WORKER=$!
PIDS="$PIDS $WORKER"
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/worker.log" && break; sleep 0.1; done
# (--ctx beyond the model's 4096 positions is cut to them, as for one process)
start_server --topology "$WORK/topo.yml" --cluster-key k9 --ctx 8192 --recover-ms 3000
expect_eq "$(post -d "$BODY")" 200 "cluster master: completion status"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "cluster master: same text as one process"
expect_eq "$(post -d "$BODY")" 200 "cluster master: the same request again"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "cluster master: same text again"
curl -s -o "$WORK/out" "$BASE/api/v1/topology"
expect_eq "$(json_field "d['master']['layers'], [(w['name'], w['layers']) for w in d['workers']]" <"$WORK/out")" \
    "[0, 1] [('w1', [2, 3])]" "cluster master: topology lists the worker's layers"
expect_eq "$(json_field "[(w['backend'], w['status']) for w in d['workers']]" <"$WORK/out")" "[('cpu+cpu', 'up')]" \
    "cluster master: topology shows what the worker runs on, and that it is up"
# the worker restarts while the server is idle: the next request reconnects to it and gets the same text
kill "$WORKER"
wait "$WORKER" 2>/dev/null
CAKE_WORKER_IDLE_MS=1500 "$CAKE" run "$MODEL" --name w1 --topology "$WORK/topo.yml" --address 127.0.0.1:"$WPORT" \
    --cluster-key k9 >"$WORK/worker2.log" 2>&1 &
WORKER=$!
PIDS="$PIDS $WORKER"
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/worker2.log" && break; sleep 0.1; done
expect_eq "$(post -d "$BODY")" 200 "cluster master: a request after the worker restarted"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "cluster master: same text from the restarted worker"
grep -q "worker w1 (127.0.0.1:$WPORT) is back" "$WORK/serve.log" && ok "cluster master: the reconnection is logged" ||
    bad "cluster master: no reconnection in the log: $(tail -3 "$WORK/serve.log")"
# the worker closes the idle connection (its idle limit, 1.5 s here), saying why: the next request reconnects
sleep 2.5
expect_eq "$(post -d "$BODY")" 200 "cluster master: a request after the worker closed the idle connection"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "cluster master: same text after the idle close"
# the worker is gone for good: a waited-for completion is a 500 naming it, a stream ends with an error
# event and [DONE] (no finish chunk: the generation did not finish)
kill "$WORKER"
wait "$WORKER" 2>/dev/null
expect_eq "$(post -d "$BODY")" 500 "cluster master: a failed generation is a 500"
grep -q "worker w1" "$WORK/out" && ok "cluster master: the 500 names the worker" || bad "cluster master: 500 body $(cat "$WORK/out")"
curl -s -o "$WORK/topo.json" "$BASE/api/v1/topology"
expect_eq "$(json_field "[w['status'] for w in d['workers']]" <"$WORK/topo.json")" "['down']" "cluster master: topology shows the lost worker down"
post -N -d "$(echo "$BODY" | sed 's/}$/,"stream":true}/')" >/dev/null
python3 - "$WORK/out" <<'EOF' && ok "cluster master: a failed stream ends with an error event and [DONE]" || bad "failed stream: $(cat "$WORK/out")"
import json, sys
events = [e for e in open(sys.argv[1], encoding="utf-8").read().split("\n\n") if e]
assert events[-1] == "data: [DONE]"
last = json.loads(events[-2][6:])
assert "worker w1" in last["error"]["message"], last
assert not any('"finish_reason":"length"' in e or '"finish_reason":"stop"' in e for e in events), events
EOF
# SIGINT while a request waits for the lost worker to come back (--recover-ms 3000): the server stops without
# waiting out the window
post -d "$BODY" >/dev/null &
CURL=$!
sleep 0.8
t0=$(date +%s%N)
kill -INT "$SERVER"
wait "$SERVER" 2>/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$CURL"
[ "$ms" -lt 1500 ] && ok "cluster master: SIGINT while a lost worker is waited for stops the server at once ($ms ms)" ||
    bad "cluster master: SIGINT while a lost worker is waited for took $ms ms"

# a chained cluster (w1: layer 2, w2: layer 3, passed from one to the next): the same text, and again for the
# same request, whose kept prefix truncates every worker of the chain to a position past 0
P1=$(free_port) P2=$(free_port)
printf 'w1:\n  host: "127.0.0.1:%s"\n  layers:\n    - "model.layers.2"\nw2:\n  host: "127.0.0.1:%s"\n  layers:\n    - "model.layers.3"\n' \
    "$P1" "$P2" >"$WORK/chain.yml"
for w in w1 w2; do
    port=$P1; [ $w = w2 ] && port=$P2
    "$CAKE" run "$MODEL" --name $w --topology "$WORK/chain.yml" --address 127.0.0.1:"$port" >"$WORK/$w.log" 2>&1 &
    PIDS="$PIDS $!"
    for _ in $(seq 1 100); do grep -q "listening on" "$WORK/$w.log" && break; sleep 0.1; done
done
start_server --topology "$WORK/chain.yml" --chain
expect_eq "$(post -d "$BODY")" 200 "chained cluster: completion status"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "chained cluster: same text as one process"
expect_eq "$(post -d "$BODY")" 200 "chained cluster: the same request again (every worker truncated to the kept prefix)"
expect_eq "$(json_field "d['choices'][0]['message']['content']" <"$WORK/out")" "$REF" "chained cluster: same text again"

# retoken DIR ID TEXT...: DIR holds qwen3-tiny ($MODEL) with a tokenizer that decodes each token ID as TEXT
# (the merges that made the old strings dropped), so the greedy reply holds the texts a test needs
retoken() {
    dir=$1
    shift
    mkdir -p "$dir"
    for f in "$MODEL"/*; do [ "${f##*/}" = tokenizer.json ] || ln -s "$f" "$dir/"; done
    python3 - "$MODEL/tokenizer.json" "$dir/tokenizer.json" "$@" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1], encoding="utf-8"))
v, inv = t["model"]["vocab"], {i: s for s, i in t["model"]["vocab"].items()}
gone = set()
for i, text in zip(sys.argv[3::2], sys.argv[4::2]):
    gone.add(inv[int(i)])
    del v[inv[int(i)]]
    v[text] = int(i)
join = lambda m: "".join(m.split(" ", 1)) if isinstance(m, str) else "".join(m)
t["model"]["merges"] = [m for m in t["model"]["merges"] if join(m) not in gone]
json.dump(t, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
EOF
}

# reasoning (llama-server's default, reasoning_format auto): a reply that opens with <think> has that block
# as reasoning_content and the rest as content, whole or streamed; reasoning_format "none" keeps the text
# whole; a template that opens the block makes the reply start in it. The model: qwen3-tiny with a
# tokenizer that decodes its first two greedy tokens as <think> and </think> (their merges dropped).
kill "$SERVER"
wait "$SERVER" 2>/dev/null
retoken "$WORK/think" 60897 "<think>" 91630 "</think>"
retoken "$WORK/tools" 60897 '<tool_call>{"name":"get_time","arguments":{"tz":"UTC"}}</tool_call>' # for the tool calls below
printf '{%% for m in messages %%}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%% endfor %%}<|im_start|>assistant\n<think>\n' \
    >"$WORK/open.jinja"
# oai.py: post(BASE, MAX_TOKENS, EXTRA, STREAM) sends the greedy question; whole, the reply's choice;
# streamed, its choices in order
cat >"$WORK/oai.py" <<'EOF'
import json, urllib.request
def post(base, max_tokens, extra, stream=False):
    body = dict({"messages": [{"role": "user", "content": "Explain quantum computing in simple terms."}],
                 "max_tokens": max_tokens, "temperature": 0, "stream": stream}, **extra)
    rq = urllib.request.Request(base + "/v1/chat/completions", json.dumps(body).encode(),
                                {"Content-Type": "application/json"})
    with urllib.request.urlopen(rq) as f:
        if not stream:
            return json.load(f)["choices"][0]
        events = [json.loads(e[6:]) for e in f.read().decode().split("\n\n") if e.startswith("data: {")]
        return [e["choices"][0] for e in events if e["choices"]]
EOF
cat >"$WORK/think.py" <<'EOF'
import sys
from oai import post as oai_post
base, opened = sys.argv[1], sys.argv[2] == "1"
def post(extra, stream=False):
    got = oai_post(base, 24, extra, stream)
    if not stream:
        return got["message"]
    deltas = [ch.get("delta", {}) for ch in got]
    return {"reasoning_content": "".join(d.get("reasoning_content") or "" for d in deltas),
            "content": "".join(d.get("content") or "" for d in deltas)}
raw = post({"reasoning_format": "none"})
assert "reasoning_content" not in raw, raw
raw = raw["content"]
if opened:
    want_r, want_c = raw.lstrip(), ""
    assert "</think>" not in raw, raw
else:
    assert raw.startswith("<think>") and "</think>" in raw, raw
    want_r, _, want_c = raw[len("<think>"):].partition("</think>")
    want_r, want_c = want_r.lstrip(), want_c.lstrip()
    assert want_c, raw
for stream in (False, True):
    m = post({}, stream)
    assert m.get("reasoning_content", "") == want_r and m["content"] == want_c, (stream, m, want_r, want_c)
print("reasoning %r, content %r" % (want_r[:30], want_c[:30]))
EOF
MODEL_TEXT=$MODEL
MODEL=$WORK/think
start_server
python3 "$WORK/think.py" "$BASE" 0 >"$WORK/think.out" 2>&1 &&
    ok "reasoning: a leading <think> block is reasoning_content, whole and streamed ($(cat "$WORK/think.out"))" ||
    bad "reasoning split: $(tail -n 3 "$WORK/think.out")"
kill "$SERVER"
wait "$SERVER" 2>/dev/null
start_server --chat-template-file "$WORK/open.jinja"
python3 "$WORK/think.py" "$BASE" 1 >"$WORK/think.out" 2>&1 &&
    ok "reasoning: after a template that opens <think>, the reply is reasoning_content ($(cat "$WORK/think.out"))" ||
    bad "reasoning of an opened block: $(tail -n 3 "$WORK/think.out")"
# tool calls (Qwen's and Hermes' <tool_call> blocks, as llama-server returns them): with tools in the request,
# a reply of blocks is message.tool_calls (content null, finish_reason "tool_calls"), streamed as a
# delta.tool_calls; without tools, or with tool_choice "none", the same text is content. The model: qwen3-tiny
# with a tokenizer whose first greedy token decodes to a whole block.
kill "$SERVER"
wait "$SERVER" 2>/dev/null
# (a template that leaves the tools out: the prompt, and so the greedy reply, is the same with or without
# them; Jinja drops the template's last newline, as HF's does)
printf '{%% for m in messages %%}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%% endfor %%}<|im_start|>assistant\n\n' \
    >"$WORK/notools.jinja"
MODEL=$WORK/tools
start_server --chat-template-file "$WORK/notools.jinja"
python3 - "$BASE" "$WORK" >"$WORK/tools.out" 2>&1 <<'EOF' && ok "tool calls: $(cat "$WORK/tools.out")" || bad "tool calls: $(tail -n 3 "$WORK/tools.out")"
import sys
sys.path.insert(0, sys.argv[2])
from oai import post as oai_post
base = sys.argv[1]
TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
post = lambda extra, stream=False: oai_post(base, 2, extra, stream)
block = '<tool_call>{"name":"get_time","arguments":{"tz":"UTC"}}</tool_call>'
plain = post({})
assert plain["message"]["content"] == block * 2 and "tool_calls" not in plain["message"], plain
assert post({"tools": TOOLS, "tool_choice": "none"})["message"]["content"] == block * 2
c = post({"tools": TOOLS})
m = c["message"]
assert c["finish_reason"] == "tool_calls" and m["content"] is None, c
assert [(t["type"], t["function"]["name"], t["function"]["arguments"]) for t in m["tool_calls"]] == \
    [("function", "get_time", '{"tz":"UTC"}')] * 2, m
assert len({t["id"] for t in m["tool_calls"]}) == 2, m
chunks = post({"tools": TOOLS}, True)
calls = [t for ch in chunks for t in ch.get("delta", {}).get("tool_calls", [])]
assert [(t["index"], t["function"]["name"], t["function"]["arguments"]) for t in calls] == \
    [(0, "get_time", '{"tz":"UTC"}'), (1, "get_time", '{"tz":"UTC"}')], chunks
assert not "".join(ch.get("delta", {}).get("content") or "" for ch in chunks), chunks
assert chunks[-1]["finish_reason"] == "tool_calls", chunks[-1]
print("two calls of get_time, whole and streamed; text without tools")
EOF
MODEL=$MODEL_TEXT

# the server's own sampling defaults, for the fields a request leaves out (the Rust cake's serve flags)
kill "$SERVER"
wait "$SERVER" 2>/dev/null
start_server --temperature 0 -n 5
post -d '{"messages":[{"role":"user","content":"Explain quantum computing in simple terms."}]}' >/dev/null
python3 - "$WORK/out" "$REF" <<'EOF' && ok "--temperature 0 -n 5: a request without them gets the greedy text's first 5 tokens" ||
import json, sys
d = json.load(open(sys.argv[1]))
assert d["usage"]["completion_tokens"] == 5 and sys.argv[2].startswith(d["choices"][0]["message"]["content"]), d
EOF
    bad "server defaults: $(cat "$WORK/out")"
expect_eq "$(post -d '{"messages":[{"role":"user","content":"x"}],"max_tokens":2}')" 200 "a request's own max_tokens wins"
expect_eq "$(json_field "d['usage']['completion_tokens']" <"$WORK/out")" 2 "... 2 tokens"
"$CAKE" serve "$MODEL" --temperature 3 >/dev/null 2>"$WORK/t3.err"
[ $? = 2 ] && grep -q "temperature is 0-2" "$WORK/t3.err" && ok "--temperature 3 is a usage error" || bad "--temperature 3: $(cat "$WORK/t3.err")"

# bad flags and an address in use fail clearly
"$CAKE" serve "$MODEL" --api 127.0.0.1:"$PORT" >"$WORK/busy.log" 2>&1
expect_eq "$?" 1 "address in use exits 1"
grep -q "cannot listen" "$WORK/busy.log" && ok "address in use is named" || bad "address in use: $(cat "$WORK/busy.log")"
"$CAKE" serve "$MODEL" --parallel 0 >/dev/null 2>&1
expect_eq "$?" 2 "--parallel 0 is a usage error"
"$CAKE" serve "$MODEL" --api 127.0.0.1:99999 >"$WORK/port.log" 2>&1
[ $? != 0 ] && grep -q "port '99999' is not 1-65535" "$WORK/port.log" && ok "a port beyond 65535 is refused" ||
    bad "port 99999: $(cat "$WORK/port.log")"

echo "test_serve: $fails failures"
[ "$fails" = 0 ]
