#!/bin/sh
# test_hub.sh — `cake pull | list | rm` end to end against tests/hub_server.py, a local stand-in for the
# HuggingFace Hub on 127.0.0.1 (ephemeral port), and ORG/NAME:TAG of a GGUF repository (`cake run` and
# `cake pull` fetch the one .gguf file TAG picks). Everything lives in a temporary HF_HOME / HF_HUB_CACHE /
# CAKE_CACHE removed on exit, so the real caches are never touched.
# usage: sh tests/test_hub.sh <path-to-cake> <tests/data dir> <build/data dir>
set -u
CAKE=$1
DATA=$2
UNPACKED=$3
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(dirname "$CAKE")
T=$(mktemp -d "${TMPDIR:-/tmp}/cake_hub.XXXXXX")
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILS=0
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); echo "ok   $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "FAIL $*"; }
# expect "what" COND...: runs the condition, records the result
expect() { what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
has() { grep -q -- "$2" "$1"; }
hasnt() { ! grep -q -- "$2" "$1"; }

# cake-test/tiny-GGUF for the fake Hub: the files of its cake-test/tiny-qwen3 converted to two quantizations,
# and one part of a split model (never downloaded, so its bytes do not matter)
G="$T/gguf"
mkdir -p "$G"
python3 "$HERE/hub_server.py" export --data "$DATA" --data "$UNPACKED" --repo cake-test/tiny-qwen3 --out "$G/hf" &&
    "$BIN/st2gguf" "$G/hf" "$G/tiny-Q8_0.gguf" Q8_0 && "$BIN/st2gguf" "$G/hf" "$G/tiny-F16.gguf" F16 ||
    { echo "FAIL cannot make the GGUF files of cake-test/tiny-GGUF"; exit 1; }
printf 'GGUF part 1 of 2' > "$G/tiny-Q4_0-00001-of-00002.gguf"
# hub_server.py MODE ARGS...: the fixture folders and the .gguf files added; `hub serve ... &` execs, so
# that $! is the server's pid
hub() {
    set -- "$@" --data "$DATA" --data "$UNPACKED" --gguf "$G/tiny-Q8_0.gguf" --gguf "$G/tiny-F16.gguf" \
        --gguf "$G/tiny-Q4_0-00001-of-00002.gguf"
    if [ "$1" = serve ]; then exec python3 "$HERE/hub_server.py" "$@"; fi
    python3 "$HERE/hub_server.py" "$@"
}

hub serve --port-file "$T/port" --log "$T/log" &
SERVER_PID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$T/port" ] || { echo "FAIL fake hub did not start"; exit 1; }
PORT=$(cat "$T/port")
HUB="http://127.0.0.1:$PORT"

unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_OFFLINE HUGGINGFACE_HUB_CACHE XDG_CACHE_HOME
export HF_ENDPOINT="$HUB" HF_HOME="$T/hf" HF_HUB_CACHE="$T/hf/hub" CAKE_CACHE="$T/cake" HOME="$T/home"
C="$HF_HUB_CACHE"
FILES=config.json,generation_config.json,model.safetensors,tokenizer.json,tokenizer_config.json
control() { python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1]).read()" "$HUB/_control?$1"; }
layout() { hub check-layout --cache "$C" --repo "$1" --files "$2" > "$T/layout" 2>&1; }
run() {
    "$@" > "$T/out" 2> "$T/err"; echo $? > "$T/rc"
    if grep -q "Sanitizer\|runtime error:" "$T/err"; then bad "sanitizer report from: $*"; cat "$T/err"; fi
}
rc() { [ "$(cat "$T/rc")" = "$1" ]; }
rc_nonzero() { ! rc 0; }
# fails_with RC LINE: the last run exited RC and printed exactly LINE (as one line) on stderr
fails_with() { rc "$1" && grep -qxF -- "$2" "$T/err"; }
# transfers FILE...: the transfers from the CDN in the log are exactly those of FILE... of cake-test/tiny-GGUF
transfers() {
    want=$(for f in "$@"; do echo "GET /cdn/cake-test--tiny-GGUF/$f"; done | sort)
    [ "$(grep '^GET /cdn/' "$T/log" | cut -d' ' -f1-2 | sort)" = "$want" ]
}

# --- flags -----------------------------------------------------------------------------------------
run "$CAKE" pull --help
expect "pull --help exits 0 and lists its flags" sh -c "[ $(cat "$T/rc") = 0 ] && grep -q -- --revision '$T/out' && grep -q -- --verify '$T/out'"
expect "pull --help explains ORG/NAME:TAG" has "$T/out" "ORG/NAME:TAG downloads only the one .gguf file"
run "$CAKE" pull --bogus a/b
expect "pull with an unknown flag exits 2" rc 2
run "$CAKE" list --nope
expect "list with an unknown flag exits 2" rc 2
run "$CAKE" rm
expect "rm without a name exits 2" rc 2
run "$CAKE" rm --help
expect "rm --help lists -y/--yes" has "$T/out" "--yes"

# --- empty caches ------------------------------------------------------------------------------------
run "$CAKE" list
expect "list on empty caches hints at cake pull" sh -c "[ $(cat "$T/rc") = 0 ] && grep -q 'cake pull' '$T/out'"

# --- pull -> layout -> list -> resolve ----------------------------------------------------------------
run "$CAKE" pull cake-test/tiny-qwen3
expect "pull succeeds" rc 0
layout cake-test/tiny-qwen3 "$FILES"
expect "layout is huggingface_hub's: refs/main, relative links, blobs by etag ($(head -1 "$T/layout"))" grep -q "layout ok" "$T/layout"
SIZE=$(sed -n 's/layout ok //p' "$T/layout")
expect "files not needed for inference (README.md, onnx/) are not fetched" hasnt "$T/log" "resolve/[0-9a-f]*/README.md"
expect "large files came through the 302 redirect to the CDN path" has "$T/log" "GET /cdn/cake-test--tiny-qwen3/model.safetensors"
expect "tree listing followed its Link pagination" has "$T/log" "cursor=3"
run "$CAKE" list --bytes
expect "list shows the model complete with its size ($SIZE bytes)" grep -Eq "^cake-test/tiny-qwen3 +complete +$SIZE +hf$" "$T/out"
run "$CAKE" list
expect "list prints a human size by default" grep -Eq "^cake-test/tiny-qwen3 +complete +556\.[0-9] KiB +hf$" "$T/out"

: > "$T/log"
run "$CAKE" pull cake-test/tiny-qwen3
expect "second pull skips every file" sh -c "[ $(cat "$T/rc") = 0 ] && grep -q '0 downloaded' '$T/out' && ! grep -q 'GET /cdn' '$T/log' && ! grep -q 'HEAD' '$T/log'"

SNAP="$C/models--cake-test--tiny-qwen3/snapshots/$(cat "$C/models--cake-test--tiny-qwen3/refs/main")"
run "$BIN/test_hub_cache" resolve cake-test/tiny-qwen3
expect "a cached repo id resolves to its snapshot without a download" grep -qx "cached $SNAP" "$T/out"
# the model-taking commands resolve a cached repo id (the fixture repo pairs qwen3-s weights with the real
# Qwen3 tokenizer cut down to its 1024-token vocabulary)
run "$CAKE" run cake-test/tiny-qwen3 "a" --raw --temperature 0 -n 2
expect "cake run by repo id" rc 0
python3 -c "import json,sys; print(' '.join(map(str, json.load(open(sys.argv[1]))['ppl_ids'])))" "$DATA/qwen3-s/reference.json" > "$T/ids.txt"
run env CAKE_EXACT=1 "$CAKE" perplexity cake-test/tiny-qwen3 "$T/ids.txt" --tokens # HF's number: the exact path
expect "cake perplexity by repo id scores the pulled weights" grep -q "^ppl=16924\.7" "$T/out"
run "$BIN/test_hub_cache" resolve cake-test/sharded-qwen3
expect "a missing repo id is pulled on resolution" grep -q "^pulled $C/models--cake-test--sharded-qwen3/snapshots/" "$T/out"
layout cake-test/sharded-qwen3 "config.json,generation_config.json,tokenizer.json,tokenizer_config.json,model.safetensors.index.json,model-00001-of-00002.safetensors,model-00002-of-00002.safetensors"
expect "sharded repo: index plus every shard it names ($(head -1 "$T/layout"))" grep -q "layout ok" "$T/layout"
run "$BIN/test_hub_cache" resolve "$DATA/qwen3-s"
expect "a local directory wins over the cache" grep -qx "local $DATA/qwen3-s" "$T/out"
run env HF_HUB_OFFLINE=1 "$BIN/test_hub_cache" resolve mirror-org/tiny-qwen3
expect "HF_HUB_OFFLINE refuses to pull a missing repo" has "$T/err" "HF_HUB_OFFLINE"

# --- errors a user can act on ---------------------------------------------------------------------
run "$CAKE" pull cake-test/no-such-model
expect "unknown repo: clear message, exit 1" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'repository cake-test/no-such-model not found' '$T/err'"
expect "unknown repo leaves nothing in the cache" test ! -e "$C/models--cake-test--no-such-model"
run "$CAKE" pull cake-test/tiny-qwen3 --revision v9
expect "unknown revision: clear message" has "$T/err" "revision 'v9' not found"
run env HF_ENDPOINT=http://127.0.0.1:1 "$CAKE" pull cake-test/tiny-qwen3
expect "network down: says so" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'network' '$T/err'"

run "$CAKE" pull cake-test/gated-qwen3
expect "gated repo without a token fails and mentions HF_TOKEN" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'gated' '$T/err' && grep -q 'HF_TOKEN' '$T/err'"
run "$CAKE" list
expect "failed gated pull is not listed as complete" hasnt "$T/out" "gated-qwen3 *complete"
run env HF_TOKEN=hf_wrong "$CAKE" pull cake-test/gated-qwen3
expect "gated repo with a token lacking access says so" has "$T/err" "has no access"
run env HF_TOKEN=hf_test_token "$CAKE" pull cake-test/gated-qwen3
expect "gated repo with HF_TOKEN succeeds" rc 0
expect "the token went to the Hub as a Bearer header" has "$T/log" "HEAD /cake-test/gated-qwen3/resolve/.* auth=yes"
rm -rf "$C/models--cake-test--gated-qwen3"
mkdir -p "$HF_HOME" && echo hf_test_token > "$HF_HOME/token"
run "$CAKE" pull cake-test/gated-qwen3
expect "the token file under HF_HOME is used when HF_TOKEN is unset" rc 0
rm -f "$HF_HOME/token"

run "$CAKE" pull cake-test/corrupt-qwen3
expect "corrupted download is detected" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'corrupt' '$T/err' && grep -q 'SHA-256' '$T/err'"
CR="$C/models--cake-test--corrupt-qwen3"
expect "the corrupt blob is deleted, not kept or left .incomplete" sh -c "[ -z \"\$(find '$CR/blobs' -name '*.incomplete' -o -size 530744c)\" ]"
expect "no snapshot entry or ref is left for the corrupt pull" sh -c "[ ! -e '$CR/refs/main' ] && [ ! -e '$CR/snapshots' ]"
run "$CAKE" list
expect "list shows the corrupt repo as partial" grep -Eq "^cake-test/corrupt-qwen3 +partial" "$T/out"
run "$BIN/test_hub_cache" diskfull "$HUB/cdn/cake-test--tiny-qwen3/model.safetensors"
expect "a write error (disk full) aborts the transfer as a disk error" rc 0

# a model info larger than the 64 MiB cap: a clear error; under `make asan` the `run` check above also
# catches a leak of the partial reply (LeakSanitizer)
run "$CAKE" pull cake-test/huge-info
expect "an oversized JSON reply from the Hub: clear error, exit 1" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'larger than 64 MiB' '$T/err'"
expect "and nothing is left in the cache" test ! -e "$C/models--cake-test--huge-info"

# a cache root that is a regular file is an error, not an empty cache
echo "not a directory" > "$T/file"
run env HF_HUB_CACHE="$T/file" "$CAKE" list
expect "list with HF_HUB_CACHE naming a regular file: clear error, exit 1" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'HF cache.*not a directory' '$T/err'"
run env CAKE_CACHE="$T/file" "$CAKE" list
expect "list with CAKE_CACHE naming a regular file: clear error, exit 1" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'worker cache.*not a directory' '$T/err'"
run env HF_HUB_CACHE="$T/file" "$CAKE" rm -y cake-test/tiny-qwen3
expect "rm with HF_HUB_CACHE naming a regular file says so" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'not a directory' '$T/err'"
: > "$T/log"
run env HF_HUB_CACHE="$T/file" "$CAKE" pull cake-test/tiny-qwen3
expect "pull with HF_HUB_CACHE naming a regular file fails before asking the Hub anything" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'not a directory' '$T/err' && [ ! -s '$T/log' ]"

# --- interrupted pull resumes with Range ---------------------------------------------------------
run "$CAKE" rm -y cake-test/tiny-qwen3
expect "rm -y deletes without asking" sh -c "[ $(cat "$T/rc") = 0 ] && [ ! -e '$C/models--cake-test--tiny-qwen3' ]"
control drop=3
: > "$T/log"
run "$CAKE" pull cake-test/tiny-qwen3
expect "a pull whose connection drops every time fails and says how to resume" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'interrupted' '$T/err' && grep -q 'again to resume' '$T/err'"
INC=$(ls "$C"/models--cake-test--tiny-qwen3/blobs/*.incomplete 2>/dev/null | head -1)
HAVE=$(wc -c < "$INC" 2>/dev/null || echo 0)
HAVE=$((HAVE + 0))
expect "a partial .incomplete blob is kept ($HAVE bytes)" sh -c "[ $HAVE -gt 0 ] && [ $HAVE -lt 530744 ]"
expect "retries inside one pull already used Range" has "$T/log" "GET /cdn/cake-test--tiny-qwen3/model.safetensors range=bytes=[1-9]"
expect "the interrupted model has no ref and no weights link" sh -c "[ ! -e '$C/models--cake-test--tiny-qwen3/refs/main' ] && [ ! -e '$C/models--cake-test--tiny-qwen3/snapshots' ]"
run "$CAKE" list
expect "list shows the interrupted model as partial" grep -Eq "^cake-test/tiny-qwen3 +partial" "$T/out"
: > "$T/log"
run "$CAKE" pull cake-test/tiny-qwen3
expect "the next pull completes" rc 0
expect "and resumed with Range: bytes=$HAVE-" has "$T/log" "GET /cdn/cake-test--tiny-qwen3/model.safetensors range=bytes=$HAVE-"
layout cake-test/tiny-qwen3 "$FILES"
expect "resumed blob has the right bytes and layout" grep -q "layout ok" "$T/layout"

rm -rf "$C/models--cake-test--tiny-qwen3"
control drop=1
: > "$T/log"
run "$CAKE" pull cake-test/tiny-qwen3
expect "one dropped connection is retried within the pull" sh -c "[ $(cat "$T/rc") = 0 ] && grep -q 'retrying from byte' '$T/err'"
layout cake-test/tiny-qwen3 "$FILES"
expect "and the result is intact" grep -q "layout ok" "$T/layout"

# --- a server that trickles (2 bytes/s) is given up on, and the bytes so far are kept ------------------
rm -rf "$C/models--cake-test--tiny-qwen3"
control trickle=3
run timeout 60 env CAKE_HUB_LOW_SPEED_TIME=1 "$CAKE" pull cake-test/tiny-qwen3
control trickle=0
expect "a trickling download is given up: clear error, exit 1 (not hung: exit 124)" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'too slow' '$T/err' && grep -q 'again to resume' '$T/err'"
INC=$(ls "$C"/models--cake-test--tiny-qwen3/blobs/*.incomplete 2>/dev/null | head -1)
HAVE=$(wc -c < "$INC" 2>/dev/null || echo 0)
HAVE=$((HAVE + 0))
expect "the trickled bytes stay as a partial .incomplete blob ($HAVE bytes)" sh -c "[ $HAVE -ge 512 ] && [ $HAVE -lt 530744 ]"
expect "the given-up model has no ref and no snapshot" sh -c "[ ! -e '$C/models--cake-test--tiny-qwen3/refs/main' ] && [ ! -e '$C/models--cake-test--tiny-qwen3/snapshots' ]"
: > "$T/log"
run "$CAKE" pull cake-test/tiny-qwen3
expect "the next pull resumes at byte $HAVE and completes" sh -c "[ $(cat "$T/rc") = 0 ] && grep -q 'model.safetensors range=bytes=$HAVE-' '$T/log'"
layout cake-test/tiny-qwen3 "$FILES"
expect "and the result is intact" grep -q "layout ok" "$T/layout"

# --- corrupt blob already in the cache: --verify finds it ------------------------------------------
B=$(readlink -f "$C/models--cake-test--tiny-qwen3/snapshots/"*/model.safetensors)
printf 'X' | dd of="$B" bs=1 seek=200 conv=notrunc 2>/dev/null
run "$CAKE" pull --verify cake-test/tiny-qwen3
expect "pull --verify re-downloads a cached blob whose SHA-256 is wrong" sh -c "[ $(cat "$T/rc") = 0 ] && grep -q 'corrupt' '$T/err'"
layout cake-test/tiny-qwen3 "$FILES"
expect "and repairs it" grep -q "layout ok" "$T/layout"

# --- a refs/main that is not usable: list agrees with the resolver ------------------------------------
R="$C/models--cake-test--tiny-qwen3"
cp "$R/refs/main" "$T/ref"
printf 'garbage' > "$R/refs/main"
run "$CAKE" list
expect "a garbage refs/main is listed partial, with the reason" sh -c "grep -Eq '^cake-test/tiny-qwen3 +partial' '$T/out' && grep -q 'does not hold a commit' '$T/out'"
run env HF_HUB_OFFLINE=1 "$BIN/test_hub_cache" resolve cake-test/tiny-qwen3
expect "as the resolver refuses it" rc 1
printf '0123456789abcdef0123456789abcdef01234567' > "$R/refs/main"
run "$CAKE" list
expect "a refs/main naming a missing snapshot is listed partial" sh -c "grep -Eq '^cake-test/tiny-qwen3 +partial' '$T/out' && grep -q 'no directory' '$T/out'"
run env HF_HUB_OFFLINE=1 "$BIN/test_hub_cache" resolve cake-test/tiny-qwen3
expect "as the resolver refuses it" rc 1
cp "$T/ref" "$R/refs/main"
run "$CAKE" list
expect "with its ref back it is complete again" grep -Eq "^cake-test/tiny-qwen3 +complete" "$T/out"

# --- list across both caches, rm ----------------------------------------------------------------------
MC=$(python3 -c "import hashlib; print(hashlib.sha1(b'commit of mirror-org/tiny-qwen3').hexdigest())")
run "$CAKE" pull mirror-org/tiny-qwen3 --revision "$MC"
expect "a pull pinned to a commit writes the snapshot but no ref, as huggingface_hub does" sh -c "[ $(cat "$T/rc") = 0 ] && [ -f '$C/models--mirror-org--tiny-qwen3/snapshots/$MC/config.json' ] && [ ! -e '$C/models--mirror-org--tiny-qwen3/refs' ]"
run "$CAKE" list
expect "and list counts it complete" grep -Eq "^mirror-org/tiny-qwen3 +complete" "$T/out"
mkdir -p "$CAKE_CACHE/models/local--worker-model"
cp "$DATA/qwen3-s/config.json" "$DATA/qwen3-s/model.safetensors" "$CAKE_CACHE/models/local--worker-model/"
run "$CAKE" list
expect "list shows the worker cache with source worker" grep -Eq "^local/worker-model +complete +.* worker$" "$T/out"
run "$CAKE" rm -y tiny-qwen3
expect "an ambiguous suffix lists the candidates and deletes nothing" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'cake-test/tiny-qwen3' '$T/err' && grep -q 'mirror-org/tiny-qwen3' '$T/err' && [ -d '$C/models--mirror-org--tiny-qwen3' ] && [ -d '$C/models--cake-test--tiny-qwen3' ]"
run "$CAKE" rm -y "$DATA/qwen3-s"
expect "rm of a local directory is refused" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q 'refusing' '$T/err' && [ -f '$DATA/qwen3-s/config.json' ]"
run "$CAKE" rm -y no-such-model
expect "rm of an unknown name says so" has "$T/err" "no model named"
echo n | run "$CAKE" rm mirror-org/tiny-qwen3
expect "answering n keeps the model" test -d "$C/models--mirror-org--tiny-qwen3"
echo yess | run "$CAKE" rm mirror-org/tiny-qwen3
expect "answering neither y nor yes keeps the model" test -d "$C/models--mirror-org--tiny-qwen3"
printf Y | run "$CAKE" rm mirror-org/tiny-qwen3
expect "answering Y (in capitals, no line end) deletes it (name, path and size shown)" sh -c "[ ! -e '$C/models--mirror-org--tiny-qwen3' ] && grep -q 'models--mirror-org--tiny-qwen3' '$T/out' && grep -q 'KiB\\|MiB' '$T/out'"
run "$CAKE" rm -y worker-model
expect "rm by unique suffix deletes a worker model" sh -c "[ $(cat "$T/rc") = 0 ] && [ ! -e '$CAKE_CACHE/models/local--worker-model' ]"
run "$CAKE" rm -y "$C/models--cake-test--sharded-qwen3"
expect "rm accepts the model's directory inside the cache" sh -c "[ $(cat "$T/rc") = 0 ] && [ ! -e '$C/models--cake-test--sharded-qwen3' ]"
run "$CAKE" rm -y cake-test/tiny-qwen3
run "$CAKE" list
expect "after rm the model is gone from list" hasnt "$T/out" "cake-test/tiny-qwen3"

# --- a GGUF repository: ORG/NAME:TAG fetches the one .gguf file TAG picks, nothing else ---------------
GR="$C/models--cake-test--tiny-GGUF"
GS="$GR/snapshots/$(python3 -c "import hashlib; print(hashlib.sha1(b'commit of cake-test/tiny-GGUF').hexdigest())")"
ALL="tiny-F16.gguf, tiny-Q4_0-00001-of-00002.gguf, tiny-Q8_0.gguf"
"$CAKE" run "$G/tiny-Q8_0.gguf" a --raw --temperature 0 -n 16 > "$T/q8.txt" 2> /dev/null
"$CAKE" run "$G/tiny-F16.gguf" a --raw --temperature 0 -n 16 > "$T/f16.txt" 2> /dev/null
expect "the two quantizations write different greedy text, so the text tells which one ran" sh -c "[ -s '$T/q8.txt' ] && ! cmp -s '$T/q8.txt' '$T/f16.txt'"

: > "$T/log"
run "$CAKE" run cake-test/tiny-GGUF:tiny a --raw --temperature 0 -n 16
expect "a TAG matching several files: exit 1, the repo's .gguf files listed" fails_with 1 "cake: cake-test/tiny-GGUF at revision main: more than one .gguf file matches 'tiny' (.gguf files: $ALL); give a longer TAG"
run "$CAKE" run cake-test/tiny-GGUF:Q5_K a --raw --temperature 0 -n 16
expect "a TAG matching no file: exit 1, the repo's .gguf files listed" fails_with 1 "cake: cake-test/tiny-GGUF at revision main: no .gguf file matches 'Q5_K' (.gguf files: $ALL)"
run "$CAKE" run cake-test/tiny-GGUF:q4_0 a --raw --temperature 0 -n 16
expect "a TAG matching a part of a split model: exit 1, says split models are not supported" sh -c "[ $(cat "$T/rc") = 1 ] && grep -q \"'q4_0' matches tiny-Q4_0-00001-of-00002.gguf, a part of a split GGUF model\" '$T/err'"
expect "and those failures downloaded nothing and left nothing in the cache" sh -c "! grep -q 'resolve/\\|/cdn/' '$T/log' && [ ! -e '$GR' ]"

: > "$T/log"
run "$CAKE" run cake-test/tiny-GGUF:q8_0 a --raw --temperature 0 -n 16
expect "run ORG/NAME:TAG of an uncached GGUF repo pulls it" sh -c "[ $(cat "$T/rc") = 0 ] && grep -qxF 'pulled cake-test/tiny-GGUF:q8_0 into $GS/tiny-Q8_0.gguf' '$T/err'"
expect "and writes the same greedy text as the .gguf file run directly" cmp -s "$T/q8.txt" "$T/out"
expect "only the one .gguf file was transferred" transfers tiny-Q8_0.gguf
expect "no other file of the repo was even asked about" sh -c "[ \"\$(grep -c '/resolve/' '$T/log')\" = 1 ] && grep -q '^HEAD /cake-test/tiny-GGUF/resolve/[0-9a-f]*/tiny-Q8_0.gguf ' '$T/log'"
layout cake-test/tiny-GGUF tiny-Q8_0.gguf
expect "the cache holds that file alone, laid out as huggingface_hub does ($(head -1 "$T/layout"))" grep -q "layout ok" "$T/layout"
GSIZE=$(sed -n 's/layout ok //p' "$T/layout")
run "$CAKE" list --bytes
expect "list shows the GGUF repo complete with the file's size ($GSIZE bytes)" grep -Eq "^cake-test/tiny-GGUF +complete +$GSIZE +hf$" "$T/out"
: > "$T/log"
run "$CAKE" run cake-test/tiny-GGUF:Q8_0 a --raw --temperature 0 -n 16
expect "a second run uses the cached file without touching the network" sh -c "[ $(cat "$T/rc") = 0 ] && cmp -s '$T/q8.txt' '$T/out' && [ ! -s '$T/log' ]"
run env HF_HUB_OFFLINE=1 "$BIN/test_hub_cache" resolve cake-test/tiny-GGUF:Q8
expect "it resolves offline to the cached file" grep -qxF "cached $GS/tiny-Q8_0.gguf" "$T/out"

: > "$T/log"
run "$CAKE" run cake-test/tiny-GGUF:f16 a --raw --temperature 0 -n 16
expect "with another quantization cached, a run pulls the one asked for" sh -c "[ $(cat "$T/rc") = 0 ] && cmp -s '$T/f16.txt' '$T/out'"
expect "and transfers that file only" transfers tiny-F16.gguf
layout cake-test/tiny-GGUF tiny-Q8_0.gguf,tiny-F16.gguf
expect "both files now sit in the one snapshot ($(head -1 "$T/layout"))" grep -q "layout ok" "$T/layout"
: > "$T/log"
run "$CAKE" run cake-test/tiny-GGUF:tiny a --raw --temperature 0 -n 16
expect "a TAG matching several cached files: exit 1, the cached files listed" fails_with 1 "cake: cake-test/tiny-GGUF in the HF cache: more than one .gguf file matches 'tiny' (.gguf files: tiny-F16.gguf, tiny-Q8_0.gguf); give a longer TAG"
run env HF_HUB_OFFLINE=1 "$CAKE" run cake-test/tiny-GGUF:Q5_K a --raw --temperature 0 -n 16
expect "HF_HUB_OFFLINE and a TAG the cache lacks: exit 1, says why" fails_with 1 "cake: cake-test/tiny-GGUF in the HF cache: no .gguf file matches 'Q5_K' (.gguf files: tiny-F16.gguf, tiny-Q8_0.gguf); HF_HUB_OFFLINE is set, so it cannot be downloaded now"
run env HF_HUB_OFFLINE=1 HF_HUB_CACHE="$T/empty-cache" "$CAKE" run cake-test/tiny-GGUF:Q8_0 a --raw --temperature 0 -n 16
expect "HF_HUB_OFFLINE and an uncached GGUF repo: exit 1, says why" fails_with 1 "cake: cake-test/tiny-GGUF is not in the HF cache; HF_HUB_OFFLINE is set, so it cannot be downloaded now"
expect "and none of these three asked the Hub anything" sh -c "[ ! -s '$T/log' ] && [ ! -e '$T/empty-cache' ]"

run "$CAKE" rm -y cake-test/tiny-GGUF
: > "$T/log"
run "$CAKE" pull cake-test/tiny-GGUF:Q8_0
expect "pull ORG/NAME:TAG prints the pulled file's path" sh -c "[ $(cat "$T/rc") = 0 ] && grep -q '^pulled cake-test/tiny-GGUF:Q8_0 (commit [0-9a-f]*): 1 files, 1 downloaded' '$T/out' && [ \"\$(tail -1 '$T/out')\" = '$GS/tiny-Q8_0.gguf' ] && [ -f '$GS/tiny-Q8_0.gguf' ]"
expect "and transfers that file only" transfers tiny-Q8_0.gguf
layout cake-test/tiny-GGUF tiny-Q8_0.gguf
expect "into huggingface_hub's layout ($(head -1 "$T/layout"))" grep -q "layout ok" "$T/layout"
: > "$T/log"
run "$CAKE" pull cake-test/tiny-GGUF:q8_0
expect "a second pull ORG/NAME:TAG transfers nothing" sh -c "[ $(cat "$T/rc") = 0 ] && grep -q '0 downloaded' '$T/out' && ! grep -q '/cdn/' '$T/log'"
run "$CAKE" pull cake-test/tiny-GGUF:Q5_K
expect "pull with a TAG matching no file: exit 1, the files listed" fails_with 1 "cake pull: cake-test/tiny-GGUF at revision main: no .gguf file matches 'Q5_K' (.gguf files: $ALL)"
run "$CAKE" pull cake-test/tiny-GGUF
expect "pull of a GGUF repo without a TAG says how to name one" fails_with 1 "cake pull: cake-test/tiny-GGUF has no config.json at revision main: not a transformers model repo; it holds .gguf files ($ALL): pull one with cake-test/tiny-GGUF:TAG, TAG a part of its name such as Q8_0"
run "$CAKE" pull cake-test/tiny-GGUF:
expect "pull ORG/NAME: with an empty TAG is a usage error (exit 2)" sh -c "[ $(cat "$T/rc") = 2 ] && grep -q 'no TAG' '$T/err'"
run "$CAKE" rm -y cake-test/tiny-GGUF

# --- optional: huggingface_hub itself reads our cache (only where it is installed) -------------------
if python3 -c "import huggingface_hub" 2>/dev/null; then
    "$CAKE" pull cake-test/tiny-qwen3 > /dev/null 2>&1
    expect "huggingface_hub finds cake's files offline" env HF_HUB_OFFLINE=1 python3 -c "
import sys, huggingface_hub as h
p = h.try_to_load_from_cache('cake-test/tiny-qwen3', 'model.safetensors', cache_dir='$C')
sys.exit(0 if isinstance(p, str) else 1)"
fi

echo "test_hub: $CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
