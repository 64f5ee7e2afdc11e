#!/usr/bin/env python3
"""mkrandom.py — a random-weight checkpoint with a real model's shapes, for speed measurements on a machine
that has torch + transformers (the GPU machine does):
    python3 bench/mkrandom.py qwen3-0.6b OUTDIR [--tokenizer DIR]
Writes config.json + model.safetensors (bf16, HF's own init, seed 0) via save_pretrained, and copies
tokenizer.json / tokenizer_config.json from DIR (default build/data/qwen3-tiny, the real Qwen3 tokenizer, which the build unpacks).
Random weights decode at the speed of trained ones; the text is noise."""
import os
import shutil
import sys

import torch
import transformers

SHAPES = {
    # the text configuration of Qwen/Qwen3-0.6B
    "qwen3-0.6b": dict(arch="Qwen3", vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                       num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                       max_position_embeddings=40960, rms_norm_eps=1e-6, tie_word_embeddings=True,
                       bos_token_id=151643, eos_token_id=151645),
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in SHAPES:
        sys.exit("usage: mkrandom.py {%s} OUTDIR [--tokenizer DIR]" % ",".join(SHAPES))
    name, out = sys.argv[1], sys.argv[2]
    tok = sys.argv[sys.argv.index("--tokenizer") + 1] if "--tokenizer" in sys.argv else \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "data", "qwen3-tiny")
    kw = dict(SHAPES[name])
    arch = kw.pop("arch")
    cfg_cls = getattr(transformers, arch + "Config")
    try:
        cfg = cfg_cls(rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, **kw)
    except TypeError:
        cfg = cfg_cls(rope_theta=1000000.0, **kw)
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(dev):
        model = getattr(transformers, arch + "ForCausalLM")(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok, f), os.path.join(out, f))
    n = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n / 1e6:.1f}M parameters (bf16) in {out}")


if __name__ == "__main__":
    main()
