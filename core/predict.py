"""Loading a trained run's model and predicting class probabilities for texts.

One interface for every kind of run: a transformer folder (safetensors, loaded without
``trust_remote_code``), a TF-IDF baseline (safetensors + JSON, never pickled), zero-shot
label vectors over a sentence encoder (``core.zeroshot``), or a few-shot tuned encoder with a
logistic-regression head (``core.fewshot``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, NotFoundError
from core.i18n import has, msg
from core.workspace import Registry, inside, read_json

GPU_BATCH_SIZE = 256


@dataclass
class Predictor:
    labels: list[str]
    kind: str
    max_length: int | None
    backend: Any
    tokenizer: Any = None
    head_tokens: int = 0
    device: Any = None
    autocast_dtype: Any = None  # bf16 (or fp16) on a GPU

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        texts = [t if isinstance(t, str) else "" for t in texts]
        if self.kind != "transformer":  # baseline, zeroshot, fewshot: the backend predicts itself
            return self.backend.predict_proba(texts)
        from core.modeling.encoding import encode_texts, predict_proba

        encoded = encode_texts(self.tokenizer, texts, self.max_length, self.head_tokens)
        if self.device is not None and self.device.type == "cuda":
            batch_size = max(batch_size, GPU_BATCH_SIZE)  # length-sorted batches: large ones pad little
        return predict_proba(self.backend, encoded, self.tokenizer.pad_token_id or 0, self.device, batch_size,
                             autocast_dtype=self.autocast_dtype)

    def token_count(self, text: str) -> int:
        """How many model tokens a text has (to tell a person it was truncated)."""
        if self.kind == "baseline":
            return len(text.split())
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])


def run_folder(run_id: str, registry: Registry | None = None) -> Path:
    registry = registry or Registry()
    run = registry.run(run_id)
    if run is None:
        known = ", ".join(r["id"] for r in registry.runs()[:5]) or msg("run.none_yet")
        raise NotFoundError("run.err.not_found", run=run_id, known=known)
    return inside(registry.root, "runs", run["id"])


def require_finished(run_id: str, registry: Registry | None = None) -> Path:
    """The run's folder, or a message saying why its model cannot be used yet."""
    registry = registry or Registry()
    folder = run_folder(run_id, registry)
    status = (read_json(folder / "status.json", {}) or {}).get("status")
    if status != "succeeded" or not (folder / "model" / "labels.json").exists():
        reason = (read_json(folder / "status.json", {}) or {}).get("reason")
        state = msg(f"status.{status}") if status and has(f"status.{status}") else msg("run.status_unknown")
        if reason:
            raise ConfigError("run.err.not_usable_reason", run=run_id, status=state, reason=reason)
        raise ConfigError("run.err.not_usable", run=run_id, status=state)
    return folder


def load_predictor(run_id: str, registry: Registry | None = None) -> Predictor:
    return load_model_folder(require_finished(run_id, registry) / "model")


def load_model_folder(folder: Path) -> Predictor:
    """The predictor of a run's model folder, wherever it lies (a Ray worker gets a copy of it)."""
    meta = read_json(folder / "labels.json", {})
    if meta.get("kind") == "baseline":
        from core.baseline import BaselineModel

        return Predictor(meta["labels"], "baseline", None, BaselineModel.load(folder))
    if meta.get("kind") == "zeroshot":
        from core.zeroshot import predictor_of

        return predictor_of(folder)
    if meta.get("kind") == "fewshot":
        from core.fewshot import predictor_of as fewshot_predictor

        return fewshot_predictor(folder)
    return load_transformer(folder, meta)


def load_transformer(folder: Path, meta: dict | None = None) -> Predictor:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from core.modeling.encoding import autocast_dtype, pick_device

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    meta = meta or read_json(folder / "labels.json", {}) or {}
    if meta.get("kind") == "adapter":  # prefix / prompt / P-tuning: base model + adapter
        from core.modeling.adapters import load_adapter_model

        model = load_adapter_model(folder, meta)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True,
                                                                   attn_implementation="sdpa",
                                                                   dtype=torch.float32)  # GPUs use bf16 autocast
    model.eval()
    labels = meta.get("labels") or [model.config.id2label[i] for i in range(model.config.num_labels)]
    device_name, precision = pick_device()  # the same choice as training's
    device = torch.device(device_name)
    model.to(device)
    autocast = autocast_dtype(precision)
    return Predictor(labels, "transformer", int(meta.get("max_length", 128)), model,
                     AutoTokenizer.from_pretrained(folder), int(meta.get("head_tokens", 0)), device, autocast)
