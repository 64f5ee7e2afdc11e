#!/bin/sh
# serve_bench.sh MODEL [THREADS] — aggregate decode tok/s of `cake serve` with 1, 4 and 8 concurrent
# greedy streams (--parallel 8). Run it on a quiet machine: nothing else may take a core meanwhile.
# SERVE_FLAGS: more flags for the server (e.g. "--devices cpu,cpu").
set -eu
MODEL=$1
THREADS=${2:-2}
CAKE=${CAKE:-./build/cake}
PORT=${PORT:-18555}
# shellcheck disable=SC2086
"$CAKE" serve "$MODEL" --api 127.0.0.1:$PORT --parallel 8 --threads "$THREADS" ${SERVE_FLAGS:-} 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null' EXIT INT TERM
until [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/health)" = 200 ]; do
    kill -0 $PID || exit 1
    sleep 0.2
done
node "$(dirname "$0")/serve_bench.mjs" http://127.0.0.1:$PORT "${MAX_TOKENS:-64}" "${ROUNDS:-3}" 1 4 8
