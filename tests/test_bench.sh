#!/bin/sh
# test_bench.sh — `cake bench` on a fixture: the human lines, and with --json a last stdout line that is
# one JSON object whose speed, bandwidth and roofline numbers are present and positive, the decode split
# adding up to no more than the step; exact mode reported; usage errors exit 2, a bad model 1.
# usage: test_bench.sh CAKE TESTDATA UNPACKED
CAKE=$1 DATA=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { # check NAME CONDITION-RESULT
    if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

"$CAKE" bench "$DATA/qwen3-s" -p 24 -n 6 -d 5 -r 2 -t 2 --bandwidth-mb 32 --json >"$T/out" 2>"$T/err"
check "cake bench runs" $?
grep -q "^pp24 @ d5: .* tok/s" "$T/out"
check "prints the prefill line" $?
grep -q "^tg6 @ d5: .* of the roofline" "$T/out"
check "prints the decode line with the roofline fraction" $?
tail -n 1 "$T/out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
for k in ("pp_tok_s", "tg_tok_s", "bandwidth_gbs", "roofline_tg_tok_s", "roofline_fraction", "step_ms",
          "layers_ms", "head_ms", "decode_bytes"):
    assert isinstance(r[k], (int, float)) and r[k] > 0, (k, r.get(k))
assert r["attention_ms"] >= 0 and r["sampling_ms"] >= 0
assert r["layers_ms"] + r["head_ms"] + r["sampling_ms"] <= r["step_ms"] * 1.01, r
assert r["attention_ms"] <= r["layers_ms"], r
assert (r["n_prompt"], r["n_gen"], r["depth"], r["reps"], r["threads"]) == (24, 6, 5, 2, 2), r
assert r["exact"] is False and r["kv_type"] == "f16", r  # the fast path keeps f16 KV caches
# qwen3-s: every weight once, the embedding as one row; the KV rows of 4 layers x 2 KV heads x 32 dims, K and
# V in f16, over the mean context of the decode test, 5 + (6 + 1) / 2 positions
assert r["decode_bytes"] == 524288, r["decode_bytes"]
assert r["kv_bytes_per_token"] == 4 * 2 * 32 * 2 * 2 * 8.5, r["kv_bytes_per_token"]
want = r["bandwidth_gbs"] * 1e9 / (r["decode_bytes"] + r["kv_bytes_per_token"])
assert abs(r["roofline_tg_tok_s"] - want) <= 1e-3 * want, (r["roofline_tg_tok_s"], want)
'
check "--json: last line parses, numbers positive and consistent" $?

# a MoE model: a decoded token reads its router's top_k experts of each layer (2 of 8 here), not all of them
# (qwen3moe-mixed-s: 451 328 bytes of matrices, 73 728 of them experts' -> 451328 - 73728 * 6 / 8)
"$CAKE" bench "$DATA/qwen3moe-mixed-s" -p 4 -n 2 -r 1 --bandwidth-mb 16 --json >"$T/out" 2>&1
tail -n 1 "$T/out" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["decode_bytes"] == 414464 and r["exact"] is True, r'
check "a MoE model's decode bytes count the experts a token reads, and it reports its exact matmuls ($(tail -n 1 "$T/out" | grep -o '"decode_bytes":[0-9]*'))" $?
# a whole context: depth + tokens may fill the model's 4096 positions, not one more
"$CAKE" bench "$DATA/qwen3-s" -p 1 -n 1 -d 4095 -r 1 --bandwidth-mb 16 >"$T/out" 2>&1
check "a test that fills the context exactly runs" $?
"$CAKE" bench "$DATA/qwen3-s" -p 2 -n 1 -d 4095 -r 1 --bandwidth-mb 16 >"$T/out" 2>&1
[ $? = 2 ] && grep -q "exceed the model's context (4096)" "$T/out"
check "one position more is refused" $?
"$CAKE" bench "$DATA/qwen3-s" -p 8 -n 0 -r 1 --exact --bandwidth-mb 16 --json >"$T/out" 2>&1
tail -n 1 "$T/out" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["exact"] is True and r["pp_tok_s"] > 0 and r["tg_tok_s"] == 0, r'
check "--exact, prefill only" $?
tail -n 1 "$T/out" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["kv_type"] == "f32", r'
check "--exact keeps f32 KV caches" $?
grep -q "exact matmul, f32 KV cache" "$T/out"
check "the header names the KV cache type" $?
"$CAKE" bench "$DATA/qwen3-s" -p 0 -n 2 -d 9 -r 1 --kv-type f32 --bandwidth-mb 16 --json >"$T/out" 2>&1
tail -n 1 "$T/out" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["kv_bytes_per_token"] == 4 * 2 * 32 * 2 * 4 * 10.5, r'
check "the KV bytes a decoded token reads follow the cache type and the depth" $?
grep -q "^read per decoded token: weights 0.5 MB + KV cache 0.0 MB" "$T/out"
check "the header splits the bytes read per token" $?
"$CAKE" bench "$DATA/qwen3-s" -p 8 -n 2 -r 1 --kv-type f32 --bandwidth-mb 16 --json >"$T/out" 2>&1
tail -n 1 "$T/out" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["kv_type"] == "f32" and not r["exact"], r'
check "--kv-type f32 on the fast path" $?
"$CAKE" bench "$DATA/qwen3-s" -p 8 -n 2 -r 1 --exact --kv-type f16 --bandwidth-mb 16 --json >"$T/out" 2>&1
tail -n 1 "$T/out" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["kv_type"] == "f16" and r["exact"], r'
check "--kv-type f16 on the exact path" $?
"$CAKE" bench "$DATA/qwen3-s" -p 8 -n 2 -r 1 --kv-type q4 >"$T/out" 2>"$T/err"
rc=$?
grep -q "unknown KV cache type 'q4'" "$T/err"
named=$?
check "an unknown --kv-type is a usage error that names it" $([ $rc = 2 ] && [ $named = 0 ] && echo 0 || echo 1)

"$CAKE" bench "$DATA/qwen3-s" -r 0 >/dev/null 2>&1
check "-r 0 is a usage error" $([ $? = 2 ] && echo 0 || echo 1)
"$CAKE" bench "$DATA/qwen3-s" -p 0 -n 0 >/dev/null 2>&1
check "-p 0 -n 0 is a usage error" $([ $? = 2 ] && echo 0 || echo 1)
"$CAKE" bench "$DATA/qwen3-s" -d 100000 >/dev/null 2>&1
check "a depth past the context is refused" $([ $? = 2 ] && echo 0 || echo 1)
"$CAKE" bench "$T/nonexistent" >/dev/null 2>&1
check "a missing model exits 1" $([ $? = 1 ] && echo 0 || echo 1)
exit $fail
