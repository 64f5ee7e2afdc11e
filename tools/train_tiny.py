#!/usr/bin/env python3
"""Train cake-tiny: a small Qwen3ForCausalLM trained from scratch on the King James Bible.

Input: the plain text printed by Debian's `bible-kjv` package:

    apt-get install bible-kjv
    bible gen1:1-rev22:21 > kjv.txt
    python3 tools/train_tiny.py --data kjv.txt --out models/cake-tiny --work /tmp/cake-tiny-work

What it does:
  1. Cleans the text: verse numbers are dropped and each verse is reflowed onto one line; every chapter
     starts with its heading line ("Genesis 1") and chapters are separated by a blank line. Each book is
     one document; documents are separated by <|endoftext|>.
  2. Holds out the last books (>= 5 % of the characters) for evaluation; everything else is training data.
  3. Trains a byte-level BPE tokenizer (Qwen's pre-tokenizer regex + ByteLevel, NFC, ByteLevel decoder)
     on the training books and saves it as tokenizer.json / tokenizer_config.json (no chat template).
  4. Trains a Qwen3ForCausalLM from scratch (bf16 autocast, AdamW, cosine schedule) on a CUDA GPU,
     keeps the weights with the best held-out loss, and saves them in bfloat16 with save_pretrained.
  5. Reloads the saved bf16 checkpoint, upcasts it to float64 on the CPU and writes reference.json:
     the perplexity HF computes on heldout.txt (a ~700-token slice of the held-out text that fits in one
     context window) and greedy continuations of a few prompts (argmax in float64, with the top1-top2
     logit margin of every step). It also measures the perplexity of the whole held-out text (strided
     windows) for the trained model and for the same architecture with random (untrained) weights, and
     writes these numbers and the training log to WORK/train_stats.json for the model card.

Needs torch, transformers (5.x) and tokenizers.
"""
import argparse
import json
import math
import os
import re
import sys
import time

EOT = "<|endoftext|>"
# Qwen2/Qwen3's pre-tokenizer split pattern.
SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
PROMPTS = ["In the beginning", "And the LORD said unto Moses,", "Blessed are the", "The kingdom of heaven is like"]


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- data

def parse_kjv(path):
    """Parses `bible gen1:1-rev22:21` output into [(book, [(chapter, [verse text])])]."""
    head_re = re.compile(r"^(\S.*) (\d+)$")
    verse_re = re.compile(r"^\s+(\d+) (.*)$")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    books = []
    prev_blank = True
    for line in lines:
        if not line.strip():
            prev_blank = True
            continue
        m = verse_re.match(line)
        h = head_re.match(line) if prev_blank else None
        prev_blank = False
        if m:
            verses = books[-1][1][-1][1]
            if int(m.group(1)) != len(verses) + 1:
                raise ValueError(f"verse numbering breaks at {line!r}")
            verses.append(m.group(2))
        elif h:
            book, ch = h.group(1), int(h.group(2))
            if not books or books[-1][0] != book:
                books.append((book, []))
            if ch != len(books[-1][1]) + 1:
                raise ValueError(f"chapter numbering breaks at {line!r}")
            books[-1][1].append((ch, []))
        else:  # continuation of a wrapped verse
            verses = books[-1][1][-1][1]
            verses[-1] += " " + line
    out = []
    for book, chapters in books:
        out.append((book, [(ch, [" ".join(v.split()) for v in vs]) for ch, vs in chapters]))
    return out


def book_text(book, chapters):
    return "\n\n".join(f"{book} {ch}\n" + "\n".join(vs) for ch, vs in chapters) + "\n"


def split_books(books, frac):
    texts = [(b, book_text(b, chs)) for b, chs in books]
    total = sum(len(t) for _, t in texts)
    held, n = [], 0
    while n < frac * total:
        b, t = texts.pop()
        held.insert(0, (b, t))
        n += len(t)
    return texts, held, total


# ---------------------------------------------------------------- tokenizer

def train_tokenizer(train_texts, vocab_size):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                               fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(train_texts, trainer=trainer)
    return tok


def save_tokenizer(tok, out):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    # The Python constructor of decoders.ByteLevel ignores its options; set them (and the post-processor's)
    # in the serialized form, as Qwen's tokenizer.json has them.
    d = json.loads(tok.to_str())
    for part in ("decoder", "post_processor"):
        d[part] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    spec = Tokenizer.from_str(json.dumps(d)).to_str(pretty=True)
    hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(spec), bos_token=EOT, eos_token=EOT,
                                 pad_token=EOT, unk_token=None, add_bos_token=False, add_eos_token=False,
                                 clean_up_tokenization_spaces=False, model_max_length=1024)
    hf.save_pretrained(out)
    extra = os.path.join(out, "special_tokens_map.json")
    if os.path.exists(extra):
        os.remove(extra)
    cfg_path = os.path.join(out, "tokenizer_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg.pop("chat_template", None)  # a base model: prompts are used raw
    cfg["add_bos_token"] = False  # nothing is added around the text (like Qwen's tokenizers)
    cfg["add_eos_token"] = False
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"  # also loads with transformers 4.x
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")
    # transformers rewrites the post-processor/decoder options when it saves; write the tokenizers library's
    # own serialization instead (ByteLevel post-processor and decoder without prefix space, as Qwen's).
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(spec)
    return hf


# ---------------------------------------------------------------- evaluation helpers

def strided_ppl(model, ids, ctx, stride, device, dtype):
    """HF's strided perplexity: windows of ctx tokens advancing by stride; each window scores only the
    tokens not scored by an earlier window (the first window scores ids[1:ctx])."""
    import torch
    import torch.nn.functional as F
    t = torch.tensor(ids, dtype=torch.long, device=device)
    nll, n, prev_end = 0.0, 0, 0
    with torch.no_grad():
        for begin in range(0, len(ids) - 1, stride):
            end = min(begin + ctx, len(ids))
            x = t[begin:end][None]
            logits = model(input_ids=x).logits[0].to(dtype)
            lp = F.log_softmax(logits[:-1], dim=-1)
            tgt = x[0, 1:]
            tok_nll = -lp.gather(1, tgt[:, None])[:, 0]
            first_new = max(prev_end, begin + 1) - (begin + 1)
            nll += float(tok_nll[first_new:].double().sum())
            n += tok_nll.numel() - first_new
            prev_end = end
            if end == len(ids):
                break
    return math.exp(nll / n), nll / n, n


def greedy_f64(model, prompt_ids, n_new, eos_id):
    import torch
    ids = list(prompt_ids)
    gen, margins = [], []
    with torch.no_grad():
        for _ in range(n_new):
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            top = torch.topk(logits, 2)
            nxt = int(top.indices[0])
            margins.append(float(top.values[0] - top.values[1]))
            gen.append(nxt)
            ids.append(nxt)
            if nxt == eos_id:
                break
    return gen, margins


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="output of `bible gen1:1-rev22:21`")
    ap.add_argument("--out", required=True, help="model directory to write (e.g. models/cake-tiny)")
    ap.add_argument("--work", required=True, help="directory for the training log and statistics")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.2,
                    help="training-only dropout on each attention and MLP output (not part of the saved model)")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--time-limit", type=float, default=300.0, help="stop training after this many seconds")
    ap.add_argument("--heldout-frac", type=float, default=0.05)
    ap.add_argument("--slice-tokens", type=int, default=700)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    import tokenizers
    import transformers
    from transformers import AutoTokenizer, GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    log(f"torch {torch.__version__}, transformers {transformers.__version__}, tokenizers {tokenizers.__version__}")
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    dev = "cuda"
    gpu = torch.cuda.get_device_name(0)

    # ---- data
    books = parse_kjv(args.data)
    n_verses = sum(len(vs) for _, chs in books for _, vs in chs)
    train, held, total_chars = split_books(books, args.heldout_frac)
    log(f"{len(books)} books, {n_verses} verses, {total_chars} chars; held out {len(held)} books "
        f"({held[0][0]} .. {held[-1][0]}, {sum(len(t) for _, t in held)} chars)")

    # ---- tokenizer
    t0 = time.time()
    raw_tok = train_tokenizer([t for _, t in train], args.vocab)
    hf_tok = save_tokenizer(raw_tok, args.out)
    eot_id = raw_tok.token_to_id(EOT)
    vocab = raw_tok.get_vocab_size()
    log(f"tokenizer: {vocab} tokens, {EOT}={eot_id}, trained in {time.time() - t0:.1f}s")
    tok = AutoTokenizer.from_pretrained(args.out)
    log(f"reloaded tokenizer class: {type(tok).__name__}")
    with open(os.path.join(args.out, "tokenizer.json")) as f:
        saved = json.load(f)
    for part in ("decoder", "post_processor"):
        assert saved[part]["type"] == "ByteLevel" and not saved[part]["add_prefix_space"], saved[part]

    def enc(text):
        return tok(text, add_special_tokens=True)["input_ids"]

    def stream(docs):
        ids = []
        for _, t in docs:
            ids += raw_tok.encode(t).ids + [eot_id]
        return ids

    train_ids = stream(train)
    held_ids = stream(held)
    log(f"train tokens {len(train_ids)}, held-out tokens {len(held_ids)}")

    # heldout.txt: whole verses from the start of the first held-out book, ~slice_tokens tokens.
    first_book = held[0][1].split("\n")
    lines = []
    for line in first_book:
        cand = "\n".join(lines + [line]) + "\n"
        if lines and len(enc(cand)) > args.slice_tokens:
            break
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    heldout_text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "heldout.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(heldout_text)
    with open(os.path.join(args.out, "heldout.txt"), "rb") as f:
        heldout_text = f.read().decode("utf-8")
    heldout_ids = enc(heldout_text)
    assert heldout_ids == raw_tok.encode(heldout_text).ids, "AutoTokenizer and tokenizers disagree"
    assert tok.decode(heldout_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) == heldout_text
    assert len(heldout_ids) <= args.ctx
    log(f"heldout.txt: {len(heldout_text)} chars, {len(heldout_ids)} tokens")

    # ---- model
    config = Qwen3Config(
        vocab_size=vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        head_dim=args.head_dim, max_position_embeddings=args.ctx, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True, bos_token_id=eot_id, eos_token_id=eot_id, pad_token_id=eot_id,
        attention_dropout=0.0, use_cache=True)
    torch.manual_seed(args.seed)
    model = Qwen3ForCausalLM(config).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"params: {n_params} ({n_params * 2 / 1e6:.2f} MB in bf16)")
    log(f"rope: {getattr(config, 'rope_parameters', None)}")

    if args.dropout > 0:
        def drop_hook(mod, inp, out):
            if isinstance(out, tuple):
                return (F.dropout(out[0], args.dropout, mod.training),) + tuple(out[1:])
            return F.dropout(out, args.dropout, mod.training)
        for layer in model.model.layers:
            layer.self_attn.register_forward_hook(drop_hook)
            layer.mlp.register_forward_hook(drop_hook)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        p = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    train_t = torch.tensor(train_ids, dtype=torch.long, device=dev)
    held_t = torch.tensor(held_ids, dtype=torch.long, device=dev)
    n_win = (len(held_ids) - 1) // args.ctx
    val_x = held_t[: n_win * args.ctx].view(n_win, args.ctx)
    val_y = held_t[1: n_win * args.ctx + 1].view(n_win, args.ctx)
    offs = torch.arange(args.ctx + 1, device=dev)

    def val_loss():
        model.eval()
        tot, cnt = 0.0, 0
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            for i in range(0, n_win, 16):
                lg = model(input_ids=val_x[i:i + 16]).logits.float()
                tot += float(F.cross_entropy(lg.view(-1, vocab), val_y[i:i + 16].reshape(-1), reduction="sum"))
                cnt += val_y[i:i + 16].numel()
        model.train()
        return tot / cnt

    history = {"train": [], "val": []}
    best = (float("inf"), -1, None)
    model.train()
    t_start = time.time()
    run_loss, run_n, step = 0.0, 0, 0
    tokens_per_step = args.batch * args.ctx
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        starts = torch.randint(0, len(train_ids) - args.ctx - 1, (args.batch,), device=dev)
        chunk = train_t[starts[:, None] + offs]
        x, y = chunk[:, :-1], chunk[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().view(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss += loss.detach()
        run_n += 1
        last = step == args.steps - 1 or time.time() - t_start > args.time_limit
        if (step + 1) % 50 == 0 or (step + 1) % args.eval_every == 0 or last:
            tl = float(run_loss) / run_n
            history["train"].append({"step": step + 1, "loss": tl, "time_s": time.time() - t_start})
            run_loss, run_n = 0.0, 0
        if (step + 1) % args.eval_every == 0 or last:
            vl = val_loss()
            el = time.time() - t_start
            history["val"].append({"step": step + 1, "loss": vl, "time_s": el})
            log(f"step {step + 1:5d}  train {history['train'][-1]['loss']:.4f}  val {vl:.4f}  "
                f"lr {lr_at(step):.2e}  {el:.0f}s  epochs {(step + 1) * tokens_per_step / len(train_ids):.1f}")
            if vl < best[0]:
                best = (vl, step + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
        if last:
            break
    train_time = time.time() - t_start
    steps_done = step + 1
    log(f"trained {steps_done} steps in {train_time:.1f}s; best val {best[0]:.4f} at step {best[1]}")

    # ---- save (best weights, bf16)
    model.load_state_dict(best[2])
    model = model.to(torch.bfloat16)
    try:
        model.save_pretrained(args.out, safe_serialization=True)
    except TypeError:
        model.save_pretrained(args.out)
    GenerationConfig(bos_token_id=eot_id, eos_token_id=eot_id, pad_token_id=eot_id).save_pretrained(args.out)
    del model, opt

    # ---- reference numbers from the saved checkpoint
    ref = Qwen3ForCausalLM.from_pretrained(args.out, dtype=torch.bfloat16, attn_implementation="eager")
    ref = ref.to(torch.float64).eval()
    x = torch.tensor([heldout_ids])
    with torch.no_grad():
        out = ref(input_ids=x, labels=x)
        mean_nll = float(out.loss)
        lp = torch.log_softmax(out.logits[0, :-1], dim=-1)
        manual = float(-lp.gather(1, x[0, 1:, None]).mean())
    # HF's loss upcasts the logits to float32 only (from float64 here it rounds them to float32): keep the
    # float64 value, which agrees with it to ~1e-7.
    hf_loss, mean_nll = mean_nll, manual
    assert abs(hf_loss - mean_nll) < 1e-5 * mean_nll, (hf_loss, mean_nll)
    slice_ppl = math.exp(mean_nll)
    log(f"heldout.txt (float64): ppl {slice_ppl:.6f} nll {mean_nll:.8f} n {len(heldout_ids) - 1}")

    greedy = []
    for p in PROMPTS:
        pids = enc(p)
        gen, margins = greedy_f64(ref, pids, args.gen_tokens, eot_id)
        text = tok.decode(gen, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        assert text == raw_tok.decode([i for i in gen if i != eot_id], skip_special_tokens=True)
        with torch.no_grad():
            hf_gen = ref.generate(torch.tensor([pids]), do_sample=False, max_new_tokens=args.gen_tokens,
                                  eos_token_id=eot_id, pad_token_id=eot_id)[0, len(pids):].tolist()
        greedy.append({"prompt": p, "prompt_ids": pids, "ids": gen, "text": text,
                       "margins": margins, "min_margin": min(margins), "hf_generate_matches": hf_gen == gen})
        log(f"{p!r} -> {text!r}  (min margin {min(margins):.4f}, generate matches: {hf_gen == gen})")

    reference = {
        "architecture": "Qwen3ForCausalLM",
        "weights_dtype": "bfloat16",
        "note": (f"computed by HF transformers {transformers.__version__} in float64 on the CPU from the saved "
                 "bf16 weights; ppl = exp(mean_nll), mean_nll over heldout_ids[1:] given their prefixes in one forward pass, log-softmax in float64 (hf_loss: the same from HF's labels= loss); "
                 "greedy: argmax in float64, no special tokens added, text = decode(ids) without the prompt"),
        "heldout_file": "heldout.txt",
        "heldout_ids": heldout_ids,
        "n_scored": len(heldout_ids) - 1,
        "mean_nll": mean_nll,
        "hf_loss": hf_loss,
        "ppl": slice_ppl,
        "greedy": greedy,
    }
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")

    # ---- whole held-out text, trained vs random weights (float32 on the GPU, strided windows)
    stride = args.ctx // 2
    ev = ref.to(dev, torch.float32)
    held_ppl, held_nll, held_n = strided_ppl(ev, held_ids, args.ctx, stride, dev, torch.float64)
    del ev, ref
    torch.manual_seed(args.seed + 1)
    rnd = Qwen3ForCausalLM(config).to(torch.bfloat16).to(torch.float64).eval()
    with torch.no_grad():
        rnd_slice_nll = float(rnd(input_ids=x, labels=x).loss)
    rnd = rnd.to(dev, torch.float32)
    rnd_ppl, rnd_nll, _ = strided_ppl(rnd, held_ids, args.ctx, stride, dev, torch.float64)
    del rnd
    trained32 = Qwen3ForCausalLM.from_pretrained(args.out, dtype=torch.float32).to(dev).eval()
    train_ppl, _, _ = strided_ppl(trained32,
                                  train_ids[-len(held_ids):], args.ctx, stride, dev, torch.float64)
    log(f"whole held-out ({held_n} tokens, ctx {args.ctx}, stride {stride}): trained ppl {held_ppl:.3f}, "
        f"random-init ppl {rnd_ppl:.3f}; heldout.txt random-init ppl {math.exp(rnd_slice_nll):.3f}; "
        f"last {len(held_ids)} training tokens ppl {train_ppl:.3f}")

    stats = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "gpu": gpu, "args": vars(args), "params": n_params, "vocab": vocab,
        "books": len(books), "verses": n_verses, "chars": total_chars,
        "heldout_books": [b for b, _ in held], "train_tokens": len(train_ids), "heldout_tokens": len(held_ids),
        "steps": steps_done, "tokens_per_step": tokens_per_step, "train_time_s": train_time,
        "epochs": steps_done * tokens_per_step / len(train_ids),
        "best_val_loss": best[0], "best_step": best[1],
        "final_train_loss": history["train"][-1]["loss"],
        "slice": {"tokens": len(heldout_ids), "ppl": slice_ppl, "random_ppl": math.exp(rnd_slice_nll)},
        "heldout_whole": {"ctx": args.ctx, "stride": stride, "n_scored": held_n, "ppl": held_ppl,
                          "random_ppl": rnd_ppl},
        "train_tail_ppl": train_ppl,
        "history": history,
        "greedy": [{"prompt": g["prompt"], "text": g["text"], "min_margin": g["min_margin"]} for g in greedy],
    }
    with open(os.path.join(args.work, "train_stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    log("done")


if __name__ == "__main__":
    sys.exit(main())
