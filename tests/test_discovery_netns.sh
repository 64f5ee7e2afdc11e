#!/bin/sh
# test_discovery_netns.sh — UDP discovery across real network namespaces: a bridge in one namespace, veth
# pairs to three "hosts" (10.77.X.1/.2/.3 on a /24). Workers `test_discovery serve` run on .1 (key K) and
# .2 (key K, plus one of another key sharing the port); the master `test_discovery find` on .3
# broadcasts to 10.77.X.255:10127 and must find exactly the two workers of K, each with its own namespace
# IP and TCP port; the other key finds only its worker; a unicast query finds one; the default address
# 255.255.255.255 works without a default route (per-interface broadcasts); the helper runs
# next to the cake binary. Without permission to create namespaces (unprivileged containers) it prints
# "skip: ..." and passes; the loopback half of the discovery tests (test_discovery.c) runs everywhere.
# Then a zero-config cluster end to end across the namespaces: two `cake run --cluster-key` workers
# without a model on .1 and .2, and `cake perplexity MODEL --cluster-key` on .3, which broadcasts, places
# the layers, pushes each worker its tensors and must score exactly as one process does.
# usage: test_discovery_netns.sh CAKE TESTDATA UNPACKED
CAKE=$1 DATA=$2
BIN="$(dirname "$CAKE")/test_discovery"
[ -x "$BIN" ] || { echo "FAIL no helper at $BIN"; exit 1; }
command -v ip >/dev/null 2>&1 || { echo "skip: network namespaces unavailable (no ip command)"; exit 0; }

NS="ckd$$"
X=$(( $$ % 200 + 20 ))
NET="10.77.$X"
T=$(mktemp -d)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for n in br n1 n2 n3; do ip netns del "$NS$n" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if ! ip netns add "${NS}br" 2>"$T/err"; then
    echo "skip: network namespaces unavailable ($(head -n1 "$T/err"))"; exit 0
fi
setup() {
    ip -n "${NS}br" link set lo up &&
    ip -n "${NS}br" link add br0 type bridge &&
    ip -n "${NS}br" link set br0 up || return 1
    for i in 1 2 3; do
        ip netns add "${NS}n$i" &&
        ip -n "${NS}br" link add "v$i" type veth peer name eth0 netns "${NS}n$i" &&
        ip -n "${NS}br" link set "v$i" master br0 up &&
        ip -n "${NS}n$i" link set lo up &&
        ip -n "${NS}n$i" addr add "$NET.$i/24" brd + dev eth0 &&
        ip -n "${NS}n$i" link set eth0 up || return 1
    done
}
if ! setup 2>"$T/err"; then
    echo "skip: network namespaces unavailable (bridge/veth setup failed: $(head -n1 "$T/err"))"; exit 0
fi

fail=0
check() { if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

# serve NS KEY NAME TCP_PORT: starts a worker in namespace NS on 0.0.0.0:10127, waits until it answers
serve() {
    ip netns exec "$NS$1" "$BIN" serve "$2" "$3" 0.0.0.0:10127 "$4" 60 > "$T/$3.out" 2>&1 &
    PIDS="$PIDS $!"
    i=0
    while ! grep -q "^serving" "$T/$3.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "FAIL worker $3 did not start: $(cat "$T/$3.out")"; exit 1; }
        sleep 0.1
    done
}
serve n1 K alpha 10128
serve n2 K beta 10129
serve n2 OTHER gamma 10130

# the master on .3 broadcasts; collects for the whole 1.5 s (min 0)
ip netns exec "${NS}n3" "$BIN" find K "$NET.255:10127" 1500 0 > "$T/found" 2>&1
rc=$?
sort "$T/found" > "$T/found.sorted"
printf 'alpha %s.1:10128 cpu\nbeta %s.2:10129 cpu\n' "$NET" "$NET" > "$T/want"
cmp -s "$T/found.sorted" "$T/want"
check "broadcast finds both workers of the key with their namespace IPs (rc $rc: $(tr '\n' ';' < "$T/found"))" $?

# early return once two have answered
start=$(date +%s%N)
ip netns exec "${NS}n3" "$BIN" find K "$NET.255:10127" 5000 2 > "$T/found2" 2>&1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(wc -l < "$T/found2")" = 2 ] && [ "$ms" -lt 3000 ]
check "min_workers 2 returns early (${ms} ms)" $?

# another key finds only its own worker
ip netns exec "${NS}n3" "$BIN" find OTHER "$NET.255:10127" 1000 1 > "$T/found3" 2>&1
[ "$(cat "$T/found3")" = "gamma $NET.2:10130 cpu" ]
check "another key finds only gamma ($(tr '\n' ';' < "$T/found3"))" $?

# a unicast query to one host finds one worker
ip netns exec "${NS}n3" "$BIN" find K "$NET.1:10127" 1000 1 > "$T/found4" 2>&1
[ "$(cat "$T/found4")" = "alpha $NET.1:10128 cpu" ]
check "unicast to .1 finds alpha ($(tr '\n' ';' < "$T/found4"))" $?

# the default address (255.255.255.255:10127): these namespaces have no default route, so only the
# interfaces' own broadcast addresses reach the workers
ip netns exec "${NS}n3" "$BIN" find K "" 5000 2 > "$T/found6" 2>&1
sort "$T/found6" | cmp -s - "$T/want"
check "default broadcast finds both workers ($(tr '\n' ';' < "$T/found6"))" $?

# a key nobody holds finds nothing and still succeeds
ip netns exec "${NS}n3" "$BIN" find NOBODY "$NET.255:10127" 600 1 > "$T/found5" 2>&1
rc=$?
[ $rc = 0 ] && [ ! -s "$T/found5" ]
check "unknown key finds nothing (rc $rc)" $?

# ---- a zero-config cluster of cake processes across the namespaces ----
for i in 1 2; do
    mkdir -p "$T/cache$i"
    ip netns exec "${NS}n$i" env CAKE_CACHE="$T/cache$i" "$CAKE" run --cluster-key "netns key" --name "host$i" \
        --address 0.0.0.0:10140 -t 1 2> "$T/cw$i.log" &
    PIDS="$PIDS $!"
done
i=0; while [ $i -lt 100 ] && ! { grep -q listening "$T/cw1.log" && grep -q listening "$T/cw2.log"; }; do sleep 0.1; i=$((i + 1)); done
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(' '.join(map(str, r['ppl_ids'])))" \
    "$DATA/qwen3-s/reference.json" > "$T/ids.txt"
single=$("$CAKE" perplexity "$DATA/qwen3-s" "$T/ids.txt" --tokens -t 1 | tail -n 1)
got=$(ip netns exec "${NS}n3" "$CAKE" perplexity "$DATA/qwen3-s" "$T/ids.txt" --tokens --cluster-key "netns key" \
      --discovery-address "$NET.255:10127" --min-workers 2 -t 1 2> "$T/cm.err" | tail -n 1)
[ -n "$single" ] && [ "$got" = "$single" ] && grep -q "worker host1 .*$NET.1:10140" "$T/cm.err" &&
    grep -q "worker host2 .*$NET.2:10140" "$T/cm.err" && ls "$T"/cache1/models/*/model.safetensors > /dev/null
r=$?; [ $r = 0 ] || cat "$T/cm.err" "$T/cw1.log" "$T/cw2.log"
check "zero-config across namespaces: discovered by broadcast, weights pushed, perplexity equals one process ($got)" $r

exit $fail
