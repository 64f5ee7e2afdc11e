#!/bin/sh
# test_cluster.sh — static clusters of real processes on loopback: workers (`cake run MODEL --name W
# --topology T --address A`) and a master (`cake run|perplexity MODEL ... --topology T`). Sharded output
# must equal single-node output exactly (perplexity digits and greedy text) for 1, 2 and 3 workers and
# several splits of qwen3-s, the Qwen3.5 hybrid (split inside its DeltaNet/attention pattern) and the
# MoE, with and without a cluster key; then the failures: wrong key, a key on one side only, garbage
# sent to a worker, a worker killed mid-generation (reported at once; recovered when it comes back, in a star and in a chain), a
# topology the model cannot satisfy.
# usage: test_cluster.sh CAKE TESTDATA UNPACKED
CAKE=$1 DATA=$2 UNPACKED=$3
T=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail=0
check() { if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
# below Linux's ephemeral range (32768-60999), where outgoing connections of tests running alongside
# take their local ports; each topology moves 10 up, some 50 of them
PORT=$((20000 + $$ % 12000))

# model dirs with the Qwen3 tokenizer cut to the fixtures' 1024 ids
python3 "$(dirname "$0")/tok_cut.py" "$UNPACKED/qwen3-tiny/tokenizer.json" "$T/tok1024.json" 1024
for m in qwen3-s qwen3_5-s qwen3moe-s; do
    mkdir -p "$T/$m"
    for f in "$DATA/$m"/*.json "$DATA/$m"/*.safetensors; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$T/$m/"; done
    ln -s "$T/tok1024.json" "$T/$m/tokenizer.json"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(' '.join(map(str, r['ppl_ids'])))" \
        "$DATA/$m/reference.json" > "$T/$m.ids"
done

# topo FILE PREFIX SPEC...: SPEC is name=first-last; ports are assigned in order from $PORT
topo() {
    f=$1 prefix=$2; shift 2
    : > "$f"; p=$PORT
    for spec in "$@"; do
        printf '%s:\n  host: "127.0.0.1:%s"\n  layers:\n    - "%s.%s"\n' "${spec%%=*}" $p "$prefix" "${spec#*=}" >> "$f"
        p=$((p + 1))
    done
}

# start_workers MODEL TOPO KEY NAMES...: starts each worker, waits until it listens
start_workers() {
    model=$1 tf=$2 key=$3; shift 3
    for name in "$@"; do
        addr=$(python3 -c "import sys,re; t=open(sys.argv[1]).read(); print(re.search(sys.argv[2]+r':\n  host: \"([^\"]+)\"', t)[1])" "$tf" "$name")
        if [ -n "$key" ]; then "$CAKE" run "$model" --name "$name" --topology "$tf" --address "$addr" --cluster-key "$key" -t 1 $WFLAGS 2>> "$T/worker-$name.log" &
        else "$CAKE" run "$model" --name "$name" --topology "$tf" --address "$addr" -t 1 $WFLAGS 2>> "$T/worker-$name.log" & fi
        PIDS="$PIDS $!"
        eval "PID_$name=$!"
        i=0; while ! grep -q "listening on $addr" "$T/worker-$name.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        [ $i -lt 100 ] || { echo "worker $name did not start:"; cat "$T/worker-$name.log"; }
    done
}
# same_as_single MODEL LABEL [FLAGS...]: the master's perplexity digits and greedy text over $T/t.yml (with
# FLAGS) must equal the single-node ones
same_as_single() {
    m=$1 label=$2; shift 2
    got=$("$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens --topology "$T/t.yml" "$@" -t 1 2> "$T/master.err" | tail -n 1)
    "$CAKE" run "$T/$m" "a" --raw --temperature 0 -n 16 --topology "$T/t.yml" "$@" -t 1 > "$T/$m.cluster.txt" 2>> "$T/master.err"
    [ -n "$got" ] && [ "$got" = "$(cat "$T/$m.single.ppl")" ] && cmp -s "$T/$m.single.txt" "$T/$m.cluster.txt"
    r=$?
    [ $r = 0 ] || { cat "$T/master.err"; cat "$T"/worker-*.log; }
    check "$label: perplexity and greedy text equal single-node ($got)" $r
}
stop_workers() { for p in $PIDS; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; PIDS=""; PORT=$((PORT + 10)); }

for m in qwen3-s qwen3_5-s qwen3moe-s; do
    prefix=model.layers; [ $m = qwen3_5-s ] && prefix=model.language_model.layers
    "$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens -t 1 | tail -n 1 > "$T/$m.single.ppl"
    "$CAKE" run "$T/$m" "a" --raw --temperature 0 -n 16 -t 1 > "$T/$m.single.txt" 2>/dev/null
    if [ $m = qwen3moe-s ]; then splits="w1=0-1 w1=0-0,w2=1-1 w1=0-0,w2=1-1,w3=2-2"
    else splits="w1=0-1 w1=0-0,w2=1-2 w1=0-1,w2=2-2,w3=3-3 w1=2-3 w1=1-2"; fi
    for split in $splits; do
        for key in "" "s3cret key"; do
            topo "$T/t.yml" $prefix $(echo "$split" | tr ',' ' ')
            names=$(echo "$split" | tr ',' '\n' | sed 's/=.*//' | tr '\n' ' ')
            start_workers "$T/$m" "$T/t.yml" "$key" $names
            if [ -n "$key" ]; then kflag="--cluster-key"; else kflag=""; fi
            same_as_single $m "$m split $split${key:+ (keyed)}" ${kflag:+$kflag "$key"}
            stop_workers; rm -f "$T"/worker-*.log
        done
    done
done

# a worker started without --address listens on every interface, on the port of its topology entry
m=qwen3-s
topo "$T/t.yml" model.layers w1=0-1
"$CAKE" run "$T/$m" --name w1 --topology "$T/t.yml" -t 1 2> "$T/worker-w1.log" &
PIDS="$PIDS $!"
i=0; while ! grep -q "listening on 0.0.0.0:$PORT" "$T/worker-w1.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
same_as_single $m "a worker without --address (listening on 0.0.0.0:$PORT)"
stop_workers; rm -f "$T"/worker-*.log

# ---- a worker spanning several devices (--devices LIST): its range split into one engine per device, in
# layer order, the rows passed from one to the next; and a whole model so in one process. Here CPU engines (CI has no GPU); a list of GPU
# indices runs the same code with CUDA engines. The hybrid's ranges cross its DeltaNet/attention pattern. ----
for m in qwen3-s qwen3_5-s; do
    prefix=model.layers; [ $m = qwen3_5-s ] && prefix=model.language_model.layers
    for ds in "w1=0-3 cpu,cpu" "w1=0-2 cpu,cpu,cpu" "w1=1-3 cpu,cpu"; do
        topo "$T/t.yml" $prefix ${ds% *}
        WFLAGS="--devices ${ds#* }" start_workers "$T/$m" "$T/t.yml" "" w1
        grep -q "on $(echo "${ds#* }" | tr ',' '+'), listening" "$T/worker-w1.log"
        check "$m worker ${ds% *} over --devices ${ds#* } names its devices" $?
        same_as_single $m "$m worker ${ds% *} over --devices ${ds#* }"
        grep -q "worker w1 (127.0.0.1:$PORT): layers $(echo "${ds%% *}" | cut -d= -f2) on $(echo "${ds#* }" | tr ',' '+'), [0-9.]* GB, 1 threads" \
            "$T/master.err"
        check "$m worker ${ds% *}: the master says where the worker runs ($(grep -o "worker w1 (.*threads" "$T/master.err" | head -n 1))" $?
        stop_workers; rm -f "$T"/worker-*.log
    done
done
# bad device lists: a clear error and a non-zero exit, before listening
topo "$T/t.yml" model.layers w1=0-2
for devs in "cpu,x" "cpu,cpu,cpu,cpu" "" "cpu,,cpu"; do
    timeout 20 "$CAKE" run "$T/qwen3-s" --name w1 --topology "$T/t.yml" --address 127.0.0.1:$PORT --devices "$devs" \
        -t 1 > /dev/null 2> "$T/dev.err"
    r=$?
    [ $r != 0 ] && [ $r != 124 ] && grep -q "devices\|each device needs a layer" "$T/dev.err" && ! grep -q listening "$T/dev.err"
    check "--devices '$devs' is refused: $(head -n 1 "$T/dev.err")" $?
done
"$CAKE" run "$T/qwen3-s" "a" --devices cpu,cpu --topology "$T/t.yml" > /dev/null 2> "$T/dev.err"
[ $? = 2 ] && grep -q "not a master" "$T/dev.err"
check "--devices on a master is a usage error: $(head -n 1 "$T/dev.err")" $?
"$CAKE" run "$T/qwen3-s" "a" --devices cpu,cpu --cpu > /dev/null 2> "$T/dev.err"
[ $? = 2 ] && grep -q "excludes --cpu" "$T/dev.err"
check "--devices with --cpu is a usage error" $?
for devs in "cpu,cpu,cpu,cpu,cpu" "cpu,7"; do
    "$CAKE" run "$T/qwen3-s" "a" --devices $devs -n 2 > /dev/null 2> "$T/dev.err"
    r=$?
    [ $r = 1 ] && grep -q "each device needs a layer\|cuda 7\|CUDA" "$T/dev.err"
    check "one process over --devices $devs fails clearly: $(head -n 1 "$T/dev.err")" $?
done
# one process: the whole model over the devices (the first part with the embedding and the head), the same
# perplexity digits and greedy text
for m in qwen3-s qwen3_5-s; do
    for devs in cpu,cpu cpu,cpu,cpu; do
        got=$("$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens --devices $devs -t 1 2> "$T/dev.err" | tail -n 1)
        "$CAKE" run "$T/$m" "a" --raw --temperature 0 -n 16 --devices $devs -t 1 > "$T/$m.dev.txt" 2>> "$T/dev.err"
        [ -n "$got" ] && [ "$got" = "$(cat "$T/$m.single.ppl")" ] && cmp -s "$T/$m.single.txt" "$T/$m.dev.txt"
        r=$?
        [ $r = 0 ] || cat "$T/dev.err"
        check "$m in one process over --devices $devs: perplexity and greedy text equal ($got)" $r
    done
done
PORT=$((PORT + 10))

# ---- chain forwarding: each worker passes its output to the next, the last one back to the master ----
for m in qwen3-s qwen3_5-s; do
    prefix=model.layers; [ $m = qwen3_5-s ] && prefix=model.language_model.layers
    for split in "w1=0-1,w2=2-2" "w1=0-0,w2=1-1,w3=2-3"; do
        topo "$T/t.yml" $prefix $(echo "$split" | tr ',' ' ')
        start_workers "$T/$m" "$T/t.yml" "chain key" $(echo "$split" | tr ',' '\n' | sed 's/=.*//' | tr '\n' ' ')
        same_as_single $m "$m chain $split (keyed)" --cluster-key "chain key" --chain
        stop_workers; rm -f "$T"/worker-*.log
    done
done
m=qwen3-s
topo "$T/t.yml" model.layers w1=0-0 w2=1-1
start_workers "$T/$m" "$T/t.yml" "" w1 w2
kill -9 $PID_w2
timeout 30 "$CAKE" run "$T/$m" "a" --raw --temperature 0 -n 8 --topology "$T/t.yml" --chain -t 1 > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "w2" "$T/err"
check "a chain with a dead worker fails at once, naming it ($(tail -n 1 "$T/err"))" $?
stop_workers; rm -f "$T"/worker-*.log # else the old logs' "listening" lines answer for the new workers
# the first worker dies while the chain runs: the next worker's broken link reaches the master at once
# (not a timeout naming another worker), passed down the chain to the last worker when there are three,
# or the master's own connection to the first one fails
# first_dies LABEL WANT SPEC...: a long chained perplexity, w1 killed after 1 s; the error matches WANT
python3 -c "print(' '.join(['1'] * 200000))" > "$T/long.ids"
first_dies() {
    label=$1 want=$2; shift 2
    topo "$T/t.yml" model.layers "$@"
    start_workers "$T/$m" "$T/t.yml" "" $(printf '%s\n' "$@" | sed 's/=.*//')
    timeout 60 "$CAKE" perplexity "$T/$m" "$T/long.ids" --tokens --ctx 2 --topology "$T/t.yml" --chain -t 1 > /dev/null 2> "$T/err" &
    pm=$!
    sleep 1
    kill -9 "$(eval echo \$PID_${VICTIM:-w1})"
    wait $pm
    [ $? = 1 ] && tail -n 1 "$T/err" | grep -q "$want" && ! grep -q "timed out" "$T/err"
    check "$label ($(tail -n 1 "$T/err"))" $?
    stop_workers; rm -f "$T"/worker-*.log
}
first_dies "a chain whose first worker dies midway names it" "worker w1 (" w1=0-0 w2=1-1
first_dies "a chain of three whose first worker dies midway names it at once" "worker w1 (" w1=0-0 w2=1-1 w3=2-3
VICTIM=w2 first_dies "a chain of three whose middle worker dies midway names it (not the last, which reports the broken link)" \
    "worker w2 (" w1=0-0 w2=1-1 w3=2-3
topo "$T/t.yml" model.layers w1=0-0 w2=2-3
start_workers "$T/$m" "$T/t.yml" "" w1 w2
timeout 30 "$CAKE" run "$T/$m" "a" --raw -n 2 --topology "$T/t.yml" --chain -t 1 > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "back to back" "$T/err"
check "a chain needs its workers' layers back to back ($(tail -n 1 "$T/err"))" $?
stop_workers

# ---- half-precision activations on the wire: close to single-node, not equal ----
m=qwen3-s
topo "$T/t.yml" model.layers w1=0-1
start_workers "$T/$m" "$T/t.yml" "" w1
single=$("$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens -t 1 | tail -n 1)
for dt in f16 bf16; do
    got=$("$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens --topology "$T/t.yml" --wire-dtype $dt -t 1 2>/dev/null | tail -n 1)
    python3 -c "
import re, sys
a, b = (float(re.search(r'nll=([0-9.]+)', x)[1]) for x in sys.argv[1:3])
sys.exit(abs(a - b) > 5e-3 * abs(a))" "$single" "$got"
    check "--wire-dtype $dt: mean nll within 0.5 % of single-node ($got vs $single)" $?
done
stop_workers
"$CAKE" run "$T/$m" --name w1 --topology "$T/t.yml" --address 0.0.0.0:$PORT -t 1 2> "$T/err" &
WP=$!; sleep 1; kill $WP; wait $WP 2>/dev/null
grep -q "warning: no --cluster-key" "$T/err"
check "a worker without a key on a non-loopback address warns" $?

# ---- zero-config: workers without a model answer discovery, the master places the layers and pushes
# each worker only its tensors into the worker's cache ----
m=qwen3-s
DP=$((PORT + 5))
for i in 1 2; do
    mkdir -p "$T/cache$i"
    CAKE_CACHE="$T/cache$i" "$CAKE" run --cluster-key "zero key" --name z$i --address 127.0.0.$i:$((PORT + i)) \
        --discovery-address 127.0.0.$i:$DP -t 1 2> "$T/zw$i.log" &
    PIDS="$PIDS $!"
done
i=0; while [ $i -lt 100 ] && ! { grep -q "listening" "$T/zw1.log" && grep -q "listening" "$T/zw2.log"; }; do sleep 0.1; i=$((i + 1)); done
zflags="--cluster-key zero\ key --discovery-address 127.0.0.1:$DP,127.0.0.2:$DP --min-workers 2 --discovery-timeout 10 -t 1"
single=$("$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens -t 1 | tail -n 1)
eval "\"$CAKE\" run \"$T/$m\" a --raw --temperature 0 -n 16 $zflags" > "$T/zero.txt" 2> "$T/zm.err"
sent1=$(sed -n 's/.*worker z1 .* \([0-9.]*\) KiB sent.*/\1/p' "$T/zm.err")
cmp -s "$T/$m.single.txt" "$T/zero.txt"
r=$?; [ $r = 0 ] || { cat "$T/zm.err" "$T/zw1.log" "$T/zw2.log"; }
check "zero-config: 2 discovered workers, weights pushed, greedy text equals single-node" $r
grep -q "answers discovery on 127.0.0.1:$DP (udp): cpu, [0-9.]* GB" "$T/zw1.log" &&
    grep -q "found z1 .* cpu, [0-9.]* GB, 1 threads" "$T/zm.err" && grep -q "found z2 .* cpu, " "$T/zm.err"
check "zero-config: the workers announce their devices and memory, the master lists them ($(grep "found z2" "$T/zm.err"))" $?
got=$(eval "\"$CAKE\" perplexity \"$T/$m\" \"$T/$m.ids\" --tokens $zflags" 2> "$T/zm2.err" | tail -n 1)
[ -n "$single" ] && [ "$got" = "$single" ]
r=$?; [ $r = 0 ] || cat "$T/zm2.err"
check "zero-config: perplexity equals single-node ($got)" $r
eval "\"$CAKE\" run \"$T/$m\" a --raw --temperature 0 -n 16 $zflags" > "$T/zero.txt" 2> "$T/zm3.err"
sent2=$(sed -n 's/.*worker z1 .* \([0-9.]*\) KiB sent.*/\1/p' "$T/zm3.err")
python3 -c "import sys; sys.exit(not float(sys.argv[2]) < float(sys.argv[1]) / 4)" "$sent1" "$sent2"
r=$?; [ $r = 0 ] || cat "$T/zm3.err"
check "the same run again does not push the cached weights again ($sent1 KiB sent to z1, then $sent2 KiB)" $r
eval "\"$CAKE\" run \"$T/$m\" a --raw --temperature 0 -n 16 --chain $zflags" > "$T/zero.txt" 2> "$T/zm4.err"
cmp -s "$T/$m.single.txt" "$T/zero.txt"
r=$?; [ $r = 0 ] || { cat "$T/zm4.err"; tail -n 5 "$T/zw1.log" "$T/zw2.log"; }
check "zero-config with --chain: greedy text equals single-node" $r
ls "$T"/cache1/models/*/model.safetensors > /dev/null 2>&1 && ! ls "$T"/cache1/models/*/*.partial > /dev/null 2>&1 &&
    CAKE_CACHE="$T/cache1" "$CAKE" list | grep -q "complete"
check "the pushed weights are in the worker's cache, complete, and cake list shows them" $?
python3 - "$T/cache1" "$DATA/$m/model.safetensors" <<'PY'
# the worker's file holds only the tensors of its layers, byte for byte the master's
import glob, json, struct, sys
def header(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; return json.loads(b[8:8 + n]), b[8 + n:]
mine, md = header(glob.glob(sys.argv[1] + "/models/*/model.safetensors")[0])
src, sd = header(sys.argv[2])
layers = {int(k.split(".")[2]) for k in mine if k != "__metadata__"}
assert mine and all(k.startswith("model.layers.") for k in mine if k != "__metadata__"), list(mine)[:3]
for k, v in mine.items():
    if k == "__metadata__": continue
    a, b = v["data_offsets"]; c, d = src[k]["data_offsets"]
    assert md[a:b] == sd[c:d], k
want = {k for k in src if k.startswith("model.layers.") and int(k.split(".")[2]) in layers}
assert set(mine) - {"__metadata__"} == want, (sorted(set(mine) ^ want))[:3]
print("worker z1 holds layers", sorted(layers))
PY
check "a worker receives exactly the tensors of its layers" $?
# the same workers under a master running a GGUF file: each gets one model.gguf of its layers (the
# source's metadata, its blk.N tensors), and the result is the GGUF file's single-node one; then a static
# topology whose worker runs the GGUF file itself
"$(dirname "$CAKE")/st2gguf" "$DATA/$m" "$T/$m-q8.gguf" Q8_0 > /dev/null
gsingle=$("$CAKE" perplexity "$T/$m-q8.gguf" "$T/$m.ids" --tokens -t 1 2> /dev/null | tail -n 1)
got=$(eval "\"$CAKE\" perplexity \"$T/$m-q8.gguf\" \"$T/$m.ids\" --tokens $zflags" 2> "$T/zg.err" | tail -n 1)
[ -n "$gsingle" ] && [ "$got" = "$gsingle" ] && grep -q "pushing to z1" "$T/zg.err" &&
    ls "$T"/cache1/models/*/model.gguf > /dev/null 2>&1
r=$?; [ $r = 0 ] || cat "$T/zg.err"
check "zero-config with a GGUF master: weights pushed as model.gguf, perplexity equals single-node ($got)" $r
# a zero-config worker naming a device this machine lacks: a clear error before it answers discovery
timeout 20 "$CAKE" run --cluster-key "zero key" --name z9 --address 127.0.0.9:$((PORT + 9)) \
    --discovery-address 127.0.0.9:$DP --devices cpu,7 -t 1 > /dev/null 2> "$T/zw9.log"
[ $? = 1 ] && grep -q "device 7\|no cuda" "$T/zw9.log" && ! grep -q "answers discovery" "$T/zw9.log"
check "zero-config: a worker over a missing GPU fails clearly ($(head -n 1 "$T/zw9.log"))" $?
# a worker naming more devices than it gets layers: alone with the master (both CPU, one thread: equal
# weights, two layers each), its first two devices take them
mkdir -p "$T/cache3"
CAKE_CACHE="$T/cache3" "$CAKE" run --cluster-key "zero key" --name z3 --address 127.0.0.3:$((PORT + 3)) \
    --discovery-address 127.0.0.3:$DP -t 1 --devices cpu,cpu,cpu,cpu,cpu 2> "$T/zw3.log" &
PIDS="$PIDS $!"
i=0; while [ $i -lt 100 ] && ! grep -q "listening" "$T/zw3.log"; do sleep 0.1; i=$((i + 1)); done
got=$("$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens --cluster-key "zero key" --discovery-address 127.0.0.3:$DP \
    --min-workers 1 --discovery-timeout 10 -t 1 2> "$T/zm5.err" | tail -n 1)
[ -n "$single" ] && [ "$got" = "$single" ] && grep -q "(udp): cpu+cpu+cpu+cpu+cpu, [0-9.]* GB" "$T/zw3.log" &&
    grep -q "found z3 .* cpu+cpu+cpu+cpu+cpu, " "$T/zm5.err" && grep -q "serving layers 0-1 .* on cpu+cpu " "$T/zw3.log"
r=$?; [ $r = 0 ] || cat "$T/zm5.err" "$T/zw3.log"
check "zero-config: a worker over 5 devices assigned 2 layers runs them on its first 2, perplexity equal" $r
eval "\"$CAKE\" perplexity \"$T/$m\" \"$T/$m.ids\" --tokens --cluster-key other --discovery-address 127.0.0.1:$DP --discovery-timeout 1 -t 1" > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "found 0 worker" "$T/err"
check "workers with another key do not answer ($(tail -n 1 "$T/err"))" $?
stop_workers

topo "$T/t.yml" model.layers w1=1-2
start_workers "$T/$m-q8.gguf" "$T/t.yml" "" w1
got=$("$CAKE" perplexity "$T/$m-q8.gguf" "$T/$m.ids" --tokens --topology "$T/t.yml" -t 1 2> "$T/gt.err" | tail -n 1)
[ -n "$gsingle" ] && [ "$got" = "$gsingle" ]
r=$?; [ $r = 0 ] || cat "$T/gt.err"
check "a topology over a GGUF file (worker and master run it): perplexity equals single-node ($got)" $r
"$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens --topology "$T/t.yml" -t 1 > /dev/null 2> "$T/gt.err"
[ $? = 1 ] && grep -q "model mismatch" "$T/gt.err"
check "a safetensors master against a GGUF worker: refused ($(grep -o "model mismatch.*" "$T/gt.err" | head -n 1))" $?
stop_workers

# ---- failures ----
m=qwen3-s
topo "$T/t.yml" model.layers w1=0-1
start_workers "$T/$m" "$T/t.yml" "right key" w1
timeout 20 "$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens --topology "$T/t.yml" --cluster-key "wrong key" > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "worker w1 (127.0.0.1:$PORT).*cluster key mismatch" "$T/err"
check "wrong key: the master fails naming the worker ($(tail -n 1 "$T/err"))" $?
timeout 20 "$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens --topology "$T/t.yml" > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -qi "key" "$T/err"
check "no key on the master, a key on the worker: refused ($(tail -n 1 "$T/err"))" $?
python3 - "$PORT" <<'PY'
# garbage, then a frame that claims 1 GiB, then a truncated frame: the worker must drop each connection
import os, socket, struct, sys, time
port = int(sys.argv[1])
for payload in (os.urandom(5000), struct.pack("<I", 1 << 30) + b"x" * 100, struct.pack("<I", 1000) + b"short"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(payload)
    s.settimeout(10)
    try:
        while s.recv(4096): pass
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
PY
got=$(timeout 20 "$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens --topology "$T/t.yml" --cluster-key "right key" -t 1 2>/dev/null | tail -n 1)
single=$("$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens -t 1 | tail -n 1)
[ "$got" = "$single" ] && kill -0 $PID_w1
check "garbage and oversized frames cost only their connection; the worker still serves" $?
stop_workers
# after a (plaintext) handshake, a first frame that is not a message gets an ERROR saying why, then the close
topo "$T/t.yml" model.layers w1=0-1
start_workers "$T/$m" "$T/t.yml" "" w1
python3 - "$PORT" > "$T/err" 2>&1 <<'PY'
import os, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(bytes([1, 0]) + os.urandom(32))  # hello: version 1, no key, nonce
hello = b""
while len(hello) < 34: hello += s.recv(34 - len(hello))
s.sendall(struct.pack("<I", 6) + bytes([200, 1, 2, 3, 4, 5]))  # a frame holding no known message
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
n = struct.unpack("<I", data[:4])[0] if len(data) >= 4 else 0
print("type", data[4] if len(data) > 4 else None, data[13:4 + n].decode(errors="replace"))
PY
grep -q "^type 10 .*unknown message type" "$T/err"
check "a first frame that is not a message gets an ERROR naming why ($(cat "$T/err"))" $?
stop_workers

# midgen SIGNAL RESTART MASTER-ARGS...: runs the master, and once it has streamed 200 bytes sends SIGNAL to
# worker $VICTIM (default w1; and with RESTART=1 starts it again half a second later); then reads the rest
# of the text; the restarted worker reads $RESTART_TOPO when set, else $T/t.yml. Writes the text to
# $T/long.cluster, the exit status to $T/rc and the seconds from the signal to the master's exit to $T/secs.
midgen() {
    sig=$1 restart=$2; shift 2
    victim=${VICTIM:-w1}
    vaddr=$(python3 -c "import sys,re; t=open(sys.argv[1]).read(); print(re.search(sys.argv[2]+r':\n  host: \"([^\"]+)\"', t)[1])" "$T/t.yml" "$victim")
    python3 - "$T" "$sig" "$restart" "$(eval echo \$PID_$victim)" "$CAKE" "$T/$m" "${RESTART_TOPO:-$T/t.yml}" "$vaddr" "$victim" "$@" <<'PY'
import os, signal, subprocess, sys, time
T, sig, restart, wpid, cake, model, topo, addr, name = sys.argv[1:10]
master = subprocess.Popen([cake, "run", model, "a"] + sys.argv[10:], stdout=subprocess.PIPE,
                          stderr=open(T + "/err", "w"))
text = master.stdout.read(200)
os.kill(int(wpid), getattr(signal, sig)); t0 = time.time()
if restart == "1":
    time.sleep(0.5)
    subprocess.Popen([cake, "run", model, "--name", name, "--topology", topo, "--address", addr,
                      "-t", "1"] + os.environ.get("RESTART_ARGS", "").split(),
                     stderr=open(T + "/worker-%sb.log" % name, "w"))
text += master.stdout.read()
rc = master.wait()
open(T + "/long.cluster", "wb").write(text)
open(T + "/rc", "w").write(str(rc))
open(T + "/secs", "w").write("%.1f" % (time.time() - t0))
if sig == "SIGSTOP": os.kill(int(wpid), signal.SIGCONT)
PY
}
long="--raw --temperature 0 -n 3000 --ctx 3100 -t 1"
"$CAKE" run "$T/$m" "a" $long > "$T/long.single" 2>/dev/null
# a worker killed mid-generation: reported at once, naming it (no recovery) ...
topo "$T/t.yml" model.layers w1=0-1
start_workers "$T/$m" "$T/t.yml" "" w1
midgen SIGKILL 0 $long --topology "$T/t.yml" --recover-ms 0
[ "$(cat "$T/rc")" = 1 ] && grep -q "worker w1 (127.0.0.1:$PORT)" "$T/err" && python3 -c "import sys; sys.exit(float(open(sys.argv[1]).read()) > 5)" "$T/secs"
check "a killed worker is reported within 5 s ($(cat "$T/secs") s), by name ($(tail -n 1 "$T/err"))" $?
stop_workers
# ... and with recovery the master waits for it, replays its state and finishes the same text
topo "$T/t.yml" model.layers w1=0-1
start_workers "$T/$m" "$T/t.yml" "" w1
midgen SIGKILL 1 $long --topology "$T/t.yml" --recover-ms 20000
[ "$(cat "$T/rc")" = 0 ] && grep -q "is back: replayed" "$T/err" && cmp -s "$T/long.single" "$T/long.cluster"
r=$?; [ $r = 0 ] || tail -n 5 "$T/err"
check "a worker killed and restarted mid-generation: the master recovers ($(grep -o 'replayed [0-9]* positions' "$T/err")) and the text equals single-node" $r
pkill -f "topology $T/t.yml --address" 2>/dev/null
stop_workers
# a chain recovers as a whole: its first or its last worker killed and restarted mid-generation
for victim in w1 w2; do
    topo "$T/t.yml" model.layers w1=0-0 w2=1-1
    start_workers "$T/$m" "$T/t.yml" "" w1 w2
    VICTIM=$victim midgen SIGKILL 1 $long --topology "$T/t.yml" --chain --recover-ms 20000
    [ "$(cat "$T/rc")" = 0 ] && grep -q "the chain is back: replayed" "$T/err" && cmp -s "$T/long.single" "$T/long.cluster"
    r=$?; [ $r = 0 ] || tail -n 5 "$T/err"
    check "a chain whose worker $victim is killed and restarted mid-generation recovers ($(grep -o 'replayed [0-9]* positions' "$T/err")) and the text equals single-node" $r
    pkill -f "topology $T/t.yml --address" 2>/dev/null
    stop_workers
done
# ... one that comes back refusing the master (here: holding other layers) fails at once, saying why
topo "$T/t.yml" model.layers w1=0-0 w2=1-1
cp "$T/t.yml" "$T/t2.yml"
sed -i 's/"model.layers.1-1"/"model.layers.1-2"/' "$T/t2.yml"
start_workers "$T/$m" "$T/t.yml" "" w1 w2
VICTIM=w2 RESTART_TOPO="$T/t2.yml" midgen SIGKILL 1 $long --topology "$T/t.yml" --chain --recover-ms 20000
[ "$(cat "$T/rc")" = 1 ] && grep -q "worker w2 (.*refused" "$T/err" && python3 -c "import sys; sys.exit(float(open(sys.argv[1]).read()) > 10)" "$T/secs"
check "a chain worker that comes back refusing the master fails within 10 s, not after the window ($(cat "$T/secs") s: $(tail -n 1 "$T/err"))" $?
pkill -f "topology $T/t2.yml --address" 2>/dev/null
stop_workers
# ... and so does one that comes back with another cluster key (the handshake refuses it)
topo "$T/t.yml" model.layers w1=0-1
start_workers "$T/$m" "$T/t.yml" "" w1
RESTART_ARGS="--cluster-key other" midgen SIGKILL 1 $long --topology "$T/t.yml" --recover-ms 20000
[ "$(cat "$T/rc")" = 1 ] && grep -q "worker w1 (.*cluster key" "$T/err" && python3 -c "import sys; sys.exit(float(open(sys.argv[1]).read()) > 10)" "$T/secs"
check "a worker that comes back with another key fails within 10 s, not after the window ($(cat "$T/secs") s: $(tail -n 1 "$T/err"))" $?
pkill -f "topology $T/t.yml --address" 2>/dev/null
stop_workers
# ... and one that does not come back fails once the window has passed, naming it
topo "$T/t.yml" model.layers w1=0-0 w2=1-1
start_workers "$T/$m" "$T/t.yml" "" w1 w2
VICTIM=w2 midgen SIGKILL 0 $long --topology "$T/t.yml" --chain --recover-ms 2000
[ "$(cat "$T/rc")" = 1 ] && grep -q "worker w2 (" "$T/err" && python3 -c "import sys; sys.exit(float(open(sys.argv[1]).read()) > 12)" "$T/secs"
check "a chain worker that stays dead fails after the window ($(cat "$T/secs") s), by name ($(tail -n 1 "$T/err"))" $?
stop_workers
# a middle worker of a chain that stalls: the master hears nothing from the chain, and says so instead of
# blaming the last worker, on whose answer it waits
topo "$T/t.yml" model.layers w1=0-0 w2=1-1 w3=2-3
start_workers "$T/$m" "$T/t.yml" "" w1 w2 w3
VICTIM=w2 midgen SIGSTOP 0 $long --topology "$T/t.yml" --chain --recover-ms 0
[ "$(cat "$T/rc")" = 1 ] && tail -n 1 "$T/err" | grep -q "the chain w1 -> w2 -> w3: no answer" &&
    python3 -c "import sys; sys.exit(float(open(sys.argv[1]).read()) > 7)" "$T/secs"
check "a chain whose middle worker stalls says the chain did not answer ($(cat "$T/secs") s: $(tail -n 1 "$T/err"))" $?
stop_workers
# a stalled worker (stopped, not dead) is reported within the deadline
topo "$T/t.yml" model.layers w1=0-1
start_workers "$T/$m" "$T/t.yml" "" w1
midgen SIGSTOP 0 $long --topology "$T/t.yml" --recover-ms 0
[ "$(cat "$T/rc")" = 1 ] && grep -q "worker w1 (127.0.0.1:$PORT).*timed out" "$T/err" && python3 -c "import sys; sys.exit(float(open(sys.argv[1]).read()) > 7)" "$T/secs"
check "a stalled worker is reported within the deadline ($(cat "$T/secs") s: $(tail -n 1 "$T/err"))" $?
stop_workers

# topologies the model cannot satisfy
topo "$T/t.yml" model.layers w1=0-9
timeout 20 "$CAKE" run "$T/$m" --name w1 --topology "$T/t.yml" --address 127.0.0.1:$PORT > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "out of range" "$T/err"
check "a worker assigned layers the model lacks refuses to start ($(tail -n 1 "$T/err"))" $?
timeout 20 "$CAKE" run "$T/$m" "a" --topology "$T/t.yml" > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "$T/t.yml: worker w1: layers 0-9 out of range" "$T/err"
check "the master refuses it too, naming the file ($(tail -n 1 "$T/err"))" $?
topo "$T/t.yml" model.layers w1=0-1 w2=1-2
timeout 20 "$CAKE" run "$T/$m" "a" --topology "$T/t.yml" > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "$T/t.yml: layer 1 is held by two workers: w1 and w2" "$T/err"
check "workers that overlap are refused, naming the file ($(tail -n 1 "$T/err"))" $?
topo "$T/t.yml" model.language_model.layers w1=0-1
timeout 20 "$CAKE" run "$T/$m" "a" --topology "$T/t.yml" > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "prefix" "$T/err"
check "a topology written for another layer prefix is refused ($(tail -n 1 "$T/err"))" $?
timeout 20 "$CAKE" run "$T/$m" "a" --topology "$T/t.yml" --cluster-key k --topology "$T/nope.yml" > /dev/null 2> "$T/err"
[ $? = 1 ]
check "a missing topology file is an error" $?
printf 'w1:\n  host: "127.0.0.1:1"\n  layers: []\n' > "$T/empty.yml"
timeout 20 "$CAKE" run "$T/$m" "a" --topology "$T/empty.yml" -n 2 > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "gives none of its workers a layer" "$T/err"
check "a topology that gives no worker a layer is refused clearly ($(tail -n 1 "$T/err"))" $?
timeout 20 "$CAKE" run "$T/$m" --name w1 --topology "$T/empty.yml" --address 127.0.0.1:$PORT > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "the topology $T/empty.yml gives worker 'w1' no layers" "$T/err"
check "a worker the topology gives no layers says so ($(tail -n 1 "$T/err"))" $?
printf 'w1:\n  host: "127.0.0.1:1"\n  layers:\n    - "model.layers.0-0"\n' > "$T/one.yml"
timeout 20 "$CAKE" run "$DATA/qwen3-s" "a" --topology "$T/one.yml" -n 2 > /dev/null 2> "$T/err"
[ $? = 1 ] && grep -q "the model has no tokenizer.json" "$T/err" && ! grep -q "127.0.0.1:1" "$T/err"
check "a master that needs a tokenizer says so before reaching any worker ($(tail -n 1 "$T/err"))" $?

exit $fail
