"""From texts to model inputs, shared by training and prediction.

Tokenisation with head+tail truncation (a long review keeps its start and its end, where the
verdict usually is), length-grouped batches with dynamic padding (little padding while the order
stays random), the device and precision choice, and length-sorted batched inference.

Nothing here imports torch at module level, so pages that import the training facade stay quick.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# On a GPU, batch widths are rounded up to a multiple of this: length-grouped batches otherwise
# come in ~100 distinct shapes, and each new shape can cost the CUDA caching allocator a fresh
# cudaMalloc (slow under virtualised drivers); multiples of 16 also suit tensor cores.
GPU_PAD_MULTIPLE = 16

# Batches per window that is sorted by length before it is cut into batches: wide enough that
# similar lengths meet, narrow enough that the epoch's order stays random.
GROUP_WINDOW_BATCHES = 50


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one text ([CLS] … [SEP] for BERT)."""
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    for i in range(len(with_special) - len(plain) + 1):
        if with_special[i:i + len(plain)] == plain:
            return with_special[:i], with_special[i + len(plain):]
    return [], []


def encode_texts(tokenizer: Any, texts: list[str], max_length: int, head_tokens: int) -> list[list[int]]:
    """Token ids with special tokens; long texts keep ``head_tokens`` from the start and the rest from the end."""
    prefix, suffix = special_tokens(tokenizer)
    body = max_length - len(prefix) - len(suffix)
    # Cap characters first: a 100,000-character text need not be tokenised whole.
    char_cap = body * 12
    clipped = [t if len(t) <= 2 * char_cap else t[:char_cap] + " " + t[-char_cap:] for t in texts]
    ids = tokenizer(clipped, add_special_tokens=False, truncation=False)["input_ids"]
    out = []
    for seq in ids:
        if len(seq) > body:
            head = min(head_tokens, body)
            seq = seq[:head] + (seq[len(seq) - (body - head):] if body > head else [])
        out.append(prefix + seq + suffix)
    return out


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffle, sort by length inside windows of 50 batches, cut, then shuffle the batches:
    similar lengths share a batch (little padding) while the order stays random."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    window = batch_size * GROUP_WINDOW_BATCHES
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [list(map(int, chunk[i:i + batch_size])) for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class LengthGroupedSampler:
    """The training order: :func:`length_grouped_batches` flattened, a pure function of the seed
    and the epoch. That is what makes resume exact: a resumed run rebuilds the same order for its
    epoch and the Trainer skips the batches already done."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        for batch in length_grouped_batches(self.lengths, self.batch_size, self.seed + self.epoch):
            yield from batch

    def __len__(self) -> int:
        return len(self.lengths)


class LengthSortedSampler:
    """Evaluation order: shortest first, so batches pad little (predictions come back in this order)."""

    def __init__(self, lengths: list[int]):
        self.order = sorted(range(len(lengths)), key=lambda i: lengths[i])

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


class EncodedRows:
    """Token ids (and label indices) as a map-style dataset for a DataLoader."""

    def __init__(self, encoded: list[list[int]], labels: list[int] | None = None):
        self.encoded, self.labels = encoded, labels

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row: dict[str, Any] = {"input_ids": self.encoded[i]}
        if self.labels is not None:
            row["labels"] = self.labels[i]
        return row

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.encoded]


class PadCollator:
    """Pads a list of rows to the longest (rounded up to ``multiple``), with an attention mask."""

    def __init__(self, pad_id: int, multiple: int = 1):
        self.pad_id, self.multiple = pad_id, multiple

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch = pad_sequences([r["input_ids"] for r in rows], self.pad_id, self.multiple)
        if "labels" in rows[0]:
            batch["labels"] = torch.tensor([r["labels"] for r in rows], dtype=torch.long)
        return batch


def pad_sequences(sequences: list[list[int]], pad_id: int, multiple: int = 1) -> dict[str, Any]:
    import torch

    width = max(len(s) for s in sequences)
    width = -(-width // multiple) * multiple
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


def pad_batch(encoded: list[list[int]], indices: list[int], pad_id: int, multiple: int = 1) -> dict[str, Any]:
    """The rows ``indices`` of ``encoded``, padded (see :func:`pad_sequences`)."""
    return pad_sequences([encoded[i] for i in indices], pad_id, multiple)


def pick_device(device: str = "auto", precision: str = "auto") -> tuple[str, str]:
    """``(device, precision)``: device cuda | mps | cpu; precision bf16 | fp16 | no (fp32).

    auto: cuda, else mps, else cpu; bf16 on GPUs that support it, else fp16 on a GPU, fp32
    elsewhere (mixed precision on mps and CPUs gains little and costs accuracy checks)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device == "cuda" else "no"
    return device, {"fp32": "no"}.get(precision, precision)


def autocast_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def predict_proba(model: Any, encoded: list[list[int]], pad_id: int, device: Any, batch_size: int = 64,
                  autocast_dtype: Any = None) -> np.ndarray:
    """Class probabilities; texts sorted by length so batches pad little; inference mode."""
    import torch

    order = LengthSortedSampler([len(x) for x in encoded]).order
    probs = np.zeros((len(encoded), model.config.num_labels), dtype=np.float32)
    was_training = model.training
    model.eval()
    multiple = GPU_PAD_MULTIPLE if device.type == "cuda" else 1
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = {k: v.to(device, non_blocking=True) for k, v in pad_batch(encoded, idx, pad_id, multiple).items()}
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = model(**batch).logits
            probs[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    model.train(was_training)
    return probs
