#!/usr/bin/env python3
"""tok_cut.py - cuts a byte-level BPE tokenizer.json down to its first N ids (default 1024): vocabulary
entries, merges and added tokens past N are dropped, so the random-weight fixtures (1024-token
vocabularies) can be paired with a real tokenizer.

usage: tok_cut.py IN.json OUT.json [N]   (or import cut())"""
import json
import sys


def cut(tok, n=1024):
    vocab = {k: i for k, i in tok["model"]["vocab"].items() if i < n}
    tok["model"]["vocab"] = vocab

    def parts(m):
        return m if isinstance(m, list) else m.split(" ")
    tok["model"]["merges"] = [m for m in tok["model"]["merges"]
                              if all(p in vocab for p in parts(m)) and "".join(parts(m)) in vocab]
    tok["added_tokens"] = [a for a in tok["added_tokens"] if a["id"] < n]
    return tok


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        t = json.load(f)
    with open(sys.argv[2], "w") as f:
        json.dump(cut(t, int(sys.argv[3]) if len(sys.argv) > 3 else 1024), f)
