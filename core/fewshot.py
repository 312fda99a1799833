"""Few-shot training (SetFit-style) for 8–64 labelled examples per class.

Pairs of training texts are drawn, half of one label and half of two different labels; the
sentence encoder is fine-tuned so that the cosine similarity of a pair's two vectors comes near
1 for a same-label pair and 0 for a different-label one (mean squared error); a logistic
regression is then fitted on the tuned encoder's vectors of the training texts. 16 examples make
320 pairs, so the encoder sees far more training signal than 16 rows give a classifier head.

Pooling, prompts and long texts are ``core.embedding.SentenceEncoder``'s: texts are embedded
with the ``query`` prompt where the encoder has one (e5), none otherwise; a plain encoder
without sentence-transformers files gets mean pooling. The run's ``model/`` folder holds the
tuned encoder in Hugging Face format (``encoder/``, safetensors, with its sentence-transformers
files), the head as safetensors + JSON (never pickled) and ``labels.json`` of kind ``fewshot``;
``core.predict`` loads it like any run. Settings used: epochs, learning_rate, batch_size (texts
per step: half as many pairs), warmup_ratio, weight_decay, max_length, head_tokens, seed,
class_weighting (the head's), device, precision.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.i18n import Message, msg
from core.memory import run_peak_mb
from core.workspace import atomic_write_json, read_json, staging_dir

METHOD = "fewshot"
PAIRS_PER_EXAMPLE = 20  # SetFit draws 20 iterations of pairs per example
MAX_PAIRS = 5_000  # 5,000 pairs ≈ 10,000 encoder passes: minutes on a CPU, whatever the data size
FEWSHOT_BELOW = 100  # examples per class under which few-shot training is the method to try first
PROMPT = "query"  # e5's prompt for a text to classify; encoders without prompts get none
HEAD_FILE = "head.safetensors"
# What the Train page starts a fewshot run with: SetFit's learning rate, one pass over the pairs,
# 16 texts (8 pairs) a step.
SETTINGS = {"epochs": 1, "learning_rate": 2e-5, "batch_size": 16}


@dataclass
class Pairs:
    first: np.ndarray  # row index of each pair's first text
    second: np.ndarray
    same: np.ndarray  # 1.0 for a same-label pair, 0.0 for a different-label one
    wanted: int  # pairs PAIRS_PER_EXAMPLE × rows would have made, before the cap


def pair_count(rows: int) -> tuple[int, int]:
    """``(pairs used, pairs wanted)`` for ``rows`` training examples."""
    wanted = PAIRS_PER_EXAMPLE * rows
    return min(wanted, MAX_PAIRS), wanted


def sample_pairs(y: np.ndarray, seed: int) -> Pairs:
    """Half same-label, half different-label pairs; each label as likely as any other, so a
    small class is not drowned by a large one. Drawn with replacement, never a text with itself."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    count, wanted = pair_count(len(y))
    groups = [np.flatnonzero(y == label) for label in np.unique(y)]
    pairable = [g for g in groups if len(g) >= 2]
    n_same = count // 2 if pairable else 0
    n_diff = count - n_same if len(groups) >= 2 else 0
    first_class = rng.integers(len(pairable), size=n_same) if n_same else np.zeros(0, dtype=np.int64)
    same_first = _members(pairable, first_class, rng)
    same_second = np.zeros(n_same, dtype=np.int64)
    for k, group in enumerate(pairable):  # another member of the same label: an offset of 1..n-1
        where = first_class == k
        position = np.searchsorted(group, same_first[where])
        same_second[where] = group[(position + rng.integers(1, len(group), size=int(where.sum()))) % len(group)]
    a = rng.integers(len(groups), size=n_diff) if n_diff else np.zeros(0, dtype=np.int64)
    b = (a + rng.integers(1, len(groups), size=n_diff)) % len(groups) if n_diff else a
    first = np.concatenate([same_first, _members(groups, a, rng)])
    second = np.concatenate([same_second, _members(groups, b, rng)])
    same = np.concatenate([np.ones(n_same, dtype=np.float32), np.zeros(n_diff, dtype=np.float32)])
    return Pairs(first, second, same, wanted)


def _members(groups: list[np.ndarray], which: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random row of group ``which[i]`` for every i."""
    out = np.zeros(len(which), dtype=np.int64)
    for k, group in enumerate(groups):
        where = which == k
        out[where] = group[rng.integers(len(group), size=int(where.sum()))]
    return out


def method_advice(train_counts: dict[str, int], method: str = "") -> Message | None:
    """What the Data and Train pages say about few-shot training for these training counts per
    label: recommend it below FEWSHOT_BELOW examples per class, warn when its pairs are capped."""
    if not train_counts:
        return None
    rows = sum(train_counts.values())
    used, wanted = pair_count(rows)
    if method == METHOD:
        return msg("fewshot.warn.capped", rows=rows, wanted=wanted, pairs=used) if wanted > used else None
    largest = max(train_counts, key=train_counts.get)
    if train_counts[largest] < FEWSHOT_BELOW:
        return msg("fewshot.advice.recommend", n=train_counts[largest], label=largest, below=FEWSHOT_BELOW,
                   pairs=used, rows=rows)
    return None


class FewShotModel:
    """The tuned encoder plus a logistic-regression head in the run's label order."""

    def __init__(self, encoder: Any, labels: list[str], head: Any):
        self.encoder, self.labels, self.head = encoder, labels, head

    def vectors(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self.encoder.encode(texts, PROMPT, batch_size).vectors

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self.head.predict_proba(self.vectors(texts, batch_size)).astype(np.float32)

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_encoder(self.encoder, folder / "encoder")
        save_file({"coef": self.head.coef_.astype(np.float64), "intercept": self.head.intercept_.astype(np.float64),
                   "classes": self.head.classes_.astype(np.int64)}, str(folder / HEAD_FILE))
        atomic_write_json(folder / "head.json", {"labels": self.labels, "C": self.head.C, "prompt": PROMPT})
        atomic_write_json(folder / "labels.json", {"labels": self.labels, "kind": METHOD,
                                                   "max_length": self.encoder.spec.max_length})

    @classmethod
    def load(cls, folder: Path) -> FewShotModel:
        from safetensors.numpy import load_file
        from sklearn.linear_model import LogisticRegression

        from core.embedding import SentenceEncoder

        meta = read_json(Path(folder) / "head.json", {}) or {}
        tensors = load_file(str(Path(folder) / HEAD_FILE))
        head = LogisticRegression(C=float(meta.get("C", 1.0)))
        head.coef_, head.intercept_, head.classes_ = tensors["coef"], tensors["intercept"], tensors["classes"]
        return cls(SentenceEncoder.load(str(Path(folder) / "encoder")), list(meta["labels"]), head)


def save_encoder(encoder: Any, folder: Path) -> None:
    """Hugging Face weights and tokenizer, plus the sentence-transformers files that say how to pool
    and prompt (so ``SentenceEncoder.load`` and sentence-transformers read it as it was trained)."""
    encoder.model.save_pretrained(folder, safe_serialization=True)
    encoder.tokenizer.save_pretrained(folder)
    spec = encoder.spec
    atomic_write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    atomic_write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": encoder.model.config.hidden_size,
        "pooling_mode_cls_token": spec.pooling == "cls", "pooling_mode_mean_tokens": spec.pooling == "mean"})
    atomic_write_json(folder / "config_sentence_transformers.json", {"prompts": spec.prompts})
    atomic_write_json(folder / "sentence_bert_config.json", {"max_seq_length": spec.max_length})


def predictor_of(folder: Path) -> Any:
    """A ``core.predict.Predictor`` over a saved few-shot model (scoring, explanations, Trends)."""
    from core.predict import Predictor

    model = FewShotModel.load(folder)
    return Predictor(model.labels, METHOD, model.encoder.spec.max_length, model, model.encoder.tokenizer,
                     device=model.encoder.device)


def fit_head(vectors: np.ndarray, y: np.ndarray, weighting: Any) -> Any:
    """Logistic regression on the tuned vectors; ``weighting`` is the run's class weights (or None)."""
    from sklearn.linear_model import LogisticRegression

    weights = None if weighting is None else {k: float(w) for k, w in enumerate(weighting.tolist())}
    return LogisticRegression(max_iter=2000, class_weight=weights).fit(vectors, y)


def load_encoder(config: Any) -> tuple[Any, str]:
    """The run's encoder on the run's device (mean pooling for a plain encoder), and the precision."""
    import torch

    from core.embedding import SentenceEncoder
    from core.modeling.encoding import pick_device

    device, precision = pick_device(config.device, config.precision)
    torch.manual_seed(config.seed)
    encoder = SentenceEncoder.load(config.model, default_pooling="mean")
    encoder.device = torch.device(device)
    encoder.model.to(encoder.device)
    return encoder, precision


def _pair_loss(encoder: Any, encoded: list[list[int]], first: np.ndarray, second: np.ndarray,
               same: np.ndarray, precision: str) -> Any:
    """Mean squared error between each pair's cosine similarity and its target (1 same, 0 not)."""
    import torch

    from core.embedding import pool
    from core.modeling.encoding import autocast_dtype, pad_batch

    batch = pad_batch(encoded, [*first.tolist(), *second.tolist()], encoder.tokenizer.pad_token_id or 0)
    ids, mask = batch["input_ids"].to(encoder.device), batch["attention_mask"].to(encoder.device)
    dtype = autocast_dtype(precision)
    with torch.autocast(encoder.device.type, dtype=dtype, enabled=dtype is not None):
        hidden = encoder.model(input_ids=ids, attention_mask=mask).last_hidden_state
    vectors = torch.nn.functional.normalize(pool(hidden.float(), mask, encoder.spec.pooling), dim=-1)
    similarity = (vectors[:len(first)] * vectors[len(first):]).sum(-1)
    return torch.nn.functional.mse_loss(similarity, torch.as_tensor(same, device=encoder.device))


def tune_encoder(encoder: Any, texts: list[str], pairs: Pairs, config: Any, log: Any, stop: Any,
                 precision: str) -> tuple[int, int]:
    """Fine-tune the encoder on the pairs: AdamW, linear warm-up and decay, one progress line per
    step; a stop request ends it after the step. Returns (steps done, steps planned)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from core.modeling.checkpoints import injected_kill
    from core.modeling.encoding import encode_texts
    from core.progress import RateMeter

    prefix = encoder.prompt(PROMPT)
    encoded = encode_texts(encoder.tokenizer, [prefix + t for t in texts],
                           min(config.max_length, encoder.spec.max_length), config.head_tokens)
    per_step = max(1, config.batch_size // 2)
    per_epoch = math.ceil(len(pairs.same) / per_step)
    total = per_epoch * config.epochs
    optimizer = torch.optim.AdamW(encoder.model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    rng, meter, step = np.random.default_rng(config.seed), RateMeter(), 0
    encoder.model.train()
    log.progress.status("running", step=0, total_steps=total)
    meter.start()
    for epoch in range(1, config.epochs + 1):
        order = rng.permutation(len(pairs.same))
        for start in range(0, len(order), per_step):
            chosen = order[start:start + per_step]
            loss = _pair_loss(encoder, encoded, pairs.first[chosen], pairs.second[chosen], pairs.same[chosen],
                              precision)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(encoder.model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            rate = meter.update(2 * len(chosen)) or 0.0
            eta = meter.eta(2 * per_step * (total - step))
            log.progress.event("step", step=step, total_steps=total, epoch=epoch, loss=loss.item(),
                               lr=schedule.get_last_lr()[0], samples_per_s=rate, eta_s=eta)
            log.progress.status("running", throttle=True, step=step, total_steps=total, eta_s=eta)
            injected_kill(log.folder, "step", step)
            if stop.requested and step < total:
                stop.stopped_at = step
                return step, total
    return step, total


def run_fewshot(folder: Path, config: Any, splits: dict[str, pd.DataFrame], labels: list[str], log: Any,
                stop: Any, baseline_metrics: dict | None, started: float) -> dict[str, Any]:
    """Tune, fit the head, measure, save: a run's ``metrics.json`` content ({} when stopped, on
    ranks other than 0, which leave the work to rank 0)."""
    from core.modeling.trainer import class_weights

    if not log.progress.main:
        return {}
    encoder, precision = load_encoder(config)
    total = sum(p.numel() for p in encoder.model.parameters())
    log.progress.event("model", trainable_parameters=total, total_parameters=total, device=encoder.device.type,
                       precision=precision, world_size=1)
    index = {lab: i for i, lab in enumerate(labels)}
    y = np.array([index[lab] for lab in splits["train"]["label"]], dtype=np.int64)
    texts = splits["train"]["text"].tolist()
    pairs = sample_pairs(y, config.seed)
    if pairs.wanted > len(pairs.same):
        note = msg("fewshot.warn.capped", rows=len(y), wanted=pairs.wanted, pairs=len(pairs.same))
        log.progress.event("warning", message=str(note), i18n=note.to_dict())
    steps, total_steps = tune_encoder(encoder, texts, pairs, config, log, stop, precision)
    if stop.stopped_at is not None:
        return {}
    encoder.model.eval()
    model = FewShotModel(encoder, labels, None)
    model.head = fit_head(model.vectors(texts), y, class_weights(config, y.tolist(), len(labels)))
    return _finish(folder, model, splits, log, baseline_metrics, started, dict(
        trainable_parameters=total, total_parameters=total, steps=steps, total_steps=total_steps,
        pairs=len(pairs.same), pairs_wanted=pairs.wanted, device=encoder.device.type, precision=precision,
        world_size=1))


def _finish(folder: Path, model: FewShotModel, splits: dict[str, pd.DataFrame], log: Any,
            baseline_metrics: dict | None, started: float, facts: dict[str, Any]) -> dict[str, Any]:
    from core.evaluation import classification_metrics, probabilities_to_predictions
    from core.modeling.runfolder import save_predictions
    from core.modeling.state import summary

    def evaluate(name: str) -> tuple[dict[str, Any], np.ndarray]:
        probs = model.predict_proba(splits[name]["text"].tolist())
        predicted = probabilities_to_predictions(probs, model.labels)
        return classification_metrics(splits[name]["label"].tolist(), predicted, model.labels), probs

    validation = evaluate("validation")[0]
    log.history.append({"step": facts["steps"], **summary(validation)})
    log.progress.event("eval", step=facts["steps"], total_steps=facts["total_steps"], split="validation",
                       metrics=summary(validation))
    test, test_probs = evaluate("test")
    with staging_dir(folder / "model") as tmp:
        model.save(tmp)
    save_predictions(folder, splits["test"], test_probs, model.labels)
    metrics = {"labels": model.labels, "method": METHOD, "test": test, "validation": validation,
               "baseline": {"test": baseline_metrics}, "history": log.history, **facts,
               "seconds": time.time() - started, "peak_memory_mb": run_peak_mb(facts["device"])}
    atomic_write_json(folder / "metrics.json", metrics)
    done = {**summary(test), "baseline_accuracy": (baseline_metrics or {}).get("accuracy")}
    log.progress.status("succeeded", step=facts["steps"], total_steps=facts["total_steps"], metrics=done, eta_s=0)
    log.progress.event("done", test=done)
    return metrics
