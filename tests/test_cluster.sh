#!/bin/sh
# test_cluster.sh — static clusters of real processes on loopback: workers (`cake run MODEL --name W
# --topology T --address A`) and a master (`cake run|perplexity MODEL ... --topology T`). Sharded output
# must equal single-node output exactly (perplexity digits and greedy text) for 1, 2 and 3 workers and
# several splits of qwen3-s, the Qwen3.5 hybrid (split inside its DeltaNet/attention pattern) and the
# MoE, with and without a cluster key; then the failures: wrong key, a key on one side only, garbage
# sent to a worker, a worker killed mid-generation (reported at once; recovered when it comes back), a
# topology the model cannot satisfy.
# usage: test_cluster.sh CAKE TESTDATA UNPACKED
CAKE=$1 DATA=$2
T=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail=0
check() { if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
PORT=$((20000 + $$ % 20000))

# model dirs with the Qwen3 tokenizer cut to the fixtures' 1024 ids
python3 "$(dirname "$0")/tok_cut.py" "$DATA/qwen3-tiny/tokenizer.json" "$T/tok1024.json" 1024
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
        if [ -n "$key" ]; then "$CAKE" run "$model" --name "$name" --topology "$tf" --address "$addr" --cluster-key "$key" -t 1 2>> "$T/worker-$name.log" &
        else "$CAKE" run "$model" --name "$name" --topology "$tf" --address "$addr" -t 1 2>> "$T/worker-$name.log" & fi
        PIDS="$PIDS $!"
        eval "PID_$name=$!"
        i=0; while ! grep -q "listening on $addr" "$T/worker-$name.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    done
}
stop_workers() { for p in $PIDS; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; PIDS=""; PORT=$((PORT + 10)); }

for m in qwen3-s qwen3_5-s qwen3moe-s; do
    prefix=model.layers; [ $m = qwen3_5-s ] && prefix=model.language_model.layers
    single=$("$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens -t 1 | tail -n 1)
    "$CAKE" run "$T/$m" "a" --raw --temperature 0 -n 16 -t 1 > "$T/$m.single.txt" 2>/dev/null
    if [ $m = qwen3moe-s ]; then splits="w1=0-1 w1=0-0,w2=1-1 w1=0-0,w2=1-1,w3=2-2"
    else splits="w1=0-1 w1=0-0,w2=1-2 w1=0-1,w2=2-2,w3=3-3 w1=2-3"; fi
    for split in $splits; do
        for key in "" "s3cret key"; do
            topo "$T/t.yml" $prefix $(echo "$split" | tr ',' ' ')
            names=$(echo "$split" | tr ',' '\n' | sed 's/=.*//' | tr '\n' ' ')
            start_workers "$T/$m" "$T/t.yml" "$key" $names
            if [ -n "$key" ]; then kflag="--cluster-key"; else kflag=""; fi
            got=$("$CAKE" perplexity "$T/$m" "$T/$m.ids" --tokens --topology "$T/t.yml" ${kflag:+$kflag "$key"} -t 1 2> "$T/master.err" | tail -n 1)
            "$CAKE" run "$T/$m" "a" --raw --temperature 0 -n 16 --topology "$T/t.yml" ${kflag:+$kflag "$key"} -t 1 > "$T/$m.cluster.txt" 2>> "$T/master.err"
            [ -n "$single" ] && [ "$got" = "$single" ] && cmp -s "$T/$m.single.txt" "$T/$m.cluster.txt"
            r=$?
            [ $r = 0 ] || { cat "$T/master.err"; cat "$T"/worker-*.log; }
            check "$m split $split${key:+ (keyed)}: perplexity and greedy text equal single-node ($got)" $r
            stop_workers; rm -f "$T"/worker-*.log
        done
    done
done
