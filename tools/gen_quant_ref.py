#!/usr/bin/env python3
"""gen_quant_ref.py — writes the block-format cross-check of tests/data/quant: random ggml blocks of
Q8_0, Q4_0, Q4_K, Q5_K and Q6_K (TYPE.bin, with finite half scales) and their dequantization by
llama.cpp's own gguf-py (TYPE.f32, little-endian float32), which test_quant compares with ours.

    python3 tools/gen_quant_ref.py GGUF_PY_DIR tests/data/quant

GGUF_PY_DIR is the gguf-py folder of a llama.cpp source tree (kept outside this project). Needs numpy."""
import sys

import numpy as np

sys.path.insert(0, sys.argv[1])
from gguf import quants  # noqa: E402
from gguf.constants import GGMLQuantizationType as T  # noqa: E402

out = sys.argv[2]
rng = np.random.default_rng(11)
# (type, block bytes, offsets of the f16 scales inside a block, blocks)
TYPES = [("Q8_0", T.Q8_0, 34, [0], 9), ("Q4_0", T.Q4_0, 18, [0], 9), ("Q4_K", T.Q4_K, 144, [0, 2], 3),
         ("Q5_K", T.Q5_K, 176, [0, 2], 3), ("Q6_K", T.Q6_K, 210, [208], 3)]
for name, qt, nbytes, scale_offs, nblocks in TYPES:
    raw = rng.integers(0, 256, size=(nblocks, nbytes), dtype=np.uint8)
    for off in scale_offs:  # finite halves of moderate size
        h = rng.uniform(-2.0, 2.0, size=nblocks).astype(np.float16).view(np.uint8).reshape(nblocks, 2)
        raw[:, off:off + 2] = h
    deq = quants.dequantize(raw.reshape(1, -1), qt).astype("<f4")
    raw.tofile(f"{out}/{name}.bin")
    deq.tofile(f"{out}/{name}.f32")
    print(name, raw.size, deq.size)
