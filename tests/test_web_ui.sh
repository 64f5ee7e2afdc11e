#!/bin/sh
# test_web_ui.sh — the web UI in Debian's headless chromium, driven by playwright-core (tests/web): see
# tests/web/ui_test.mjs for what it checks. The server is `cake serve tests/data/qwen3-tiny` on a free
# loopback port (the browser reaches it through tests/web/pace_proxy.py), as the master of a two-node
# cluster (a worker w1 holds layers 2-3, so the cluster view has something to show); the answer must still
# equal `cake run`'s greedy text (the reference).
# playwright-core is installed with `npm ci` from tests/web/package-lock.json into the build tree. A
# missing chromium, node or npm, or a failed install, fails the test: it never skips.
# Screenshots: <build>/ui-screenshot.png (chat), <build>/ui-screenshot-phone.png (375 px) and
# <build>/ui-cluster.png.
# usage: test_web_ui.sh CAKE TESTDATA UNPACKED
CAKE=$1 DATA=$2 UNPACKED=$3
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$(dirname "$CAKE")" && pwd)
T=$(mktemp -d)
SRV_PID=
W_PID=
P_PID=
cleanup() {
    [ -n "$P_PID" ] && kill "$P_PID" 2>/dev/null && wait "$P_PID" 2>/dev/null
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
    [ -n "$W_PID" ] && kill "$W_PID" 2>/dev/null && wait "$W_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
die() { echo "FAIL $*"; echo "0 passed, 1 failed"; exit 1; }
# wait_for PID LOG TENTHS WHAT CMD...: until CMD succeeds, while process PID lives, at most TENTHS tenths of a
# second; else shows LOG and fails with "WHAT"
wait_for() {
    pid=$1 log=$2 n=$3 what=$4
    shift 4
    i=0
    until "$@"; do
        i=$((i + 1))
        if [ $i -gt "$n" ] || ! kill -0 "$pid" 2>/dev/null; then cat "$log"; die "$what"; fi
        sleep 0.1
    done
}

[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing (Debian package chromium; make deps installs it)"
command -v node > /dev/null && command -v npm > /dev/null || die "node/npm are missing (make deps installs them)"

# playwright-core into the build tree, reinstalled when the lock file changes
WEB="$BUILD/web-test"
mkdir -p "$WEB"
if ! cmp -s "$HERE/web/package-lock.json" "$WEB/package-lock.json" || [ ! -d "$WEB/node_modules/playwright-core" ]; then
    cp "$HERE/web/package.json" "$HERE/web/package-lock.json" "$WEB/"
    (cd "$WEB" && npm ci --no-audit --no-fund > "$T/npm.log" 2>&1) || { cat "$T/npm.log"; rm -f "$WEB/package-lock.json"; die "npm ci of playwright-core failed (is the npm registry reachable?)"; }
fi
cp "$HERE/web/ui_test.mjs" "$WEB/"

# the worker, then the server as the cluster's master
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WPORT=$(free_port)
printf 'w1:\n  host: "127.0.0.1:%s"\n  layers:\n    - "model.layers.2-3"\n' "$WPORT" > "$T/topo.yml"
"$CAKE" run "$UNPACKED/qwen3-tiny" --name w1 --topology "$T/topo.yml" --address "127.0.0.1:$WPORT" --cluster-key uikey \
    > "$T/worker.log" 2>&1 &
W_PID=$!
wait_for "$W_PID" "$T/worker.log" 300 "the worker did not start" grep -q "listening on" "$T/worker.log"
PORT=$(free_port)
"$CAKE" serve "$UNPACKED/qwen3-tiny" --api "127.0.0.1:$PORT" --topology "$T/topo.yml" --cluster-key uikey > "$T/server.log" 2>&1 &
SRV_PID=$!
wait_for "$SRV_PID" "$T/server.log" 600 "the server did not answer GET /v1/models" \
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/v1/models"

# the browser talks to the server through a proxy that hands it a chat answer's events 120 ms apart, with at
# most 4 characters of text each, as a real model's tokens come (the tiny model's all come within
# milliseconds, and on a loaded machine the server joins the text of tokens its client has not read yet into
# one event); the page paints once per animation frame, and a headless browser on a loaded 2-core machine
# drew only ~8 frames a second
python3 "$HERE/web/pace_proxy.py" "$PORT" > "$T/proxy.port" 2> "$T/proxy.log" &
P_PID=$!
wait_for "$P_PID" "$T/proxy.log" 100 "the pacing proxy did not start" test -s "$T/proxy.port"
URL="http://127.0.0.1:$(cat "$T/proxy.port")/"

python3 -c 'import json, sys; sys.stdout.write(json.load(open(sys.argv[1]))["greedy_text"])' \
    "$UNPACKED/qwen3-tiny/reference.json" > "$T/greedy.txt"
rm -f "$BUILD/ui-screenshot.png" "$BUILD/ui-screenshot-phone.png" "$BUILD/ui-cluster.png"
node "$WEB/ui_test.mjs" "$URL" "$T/greedy.txt" "$BUILD/ui-screenshot.png" "$BUILD/ui-cluster.png"
rc=$?
[ $rc = 0 ] && { [ -s "$BUILD/ui-screenshot.png" ] || die "no screenshot was saved"; }
[ $rc = 0 ] || { echo "--- server log:"; tail -n 30 "$T/server.log"; }
exit $rc
