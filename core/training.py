"""Fine-tuning a text classifier, start to finish: load, tokenise, loop, evaluate, save.

One ``TrainConfig`` describes a run; ``create_run`` writes it into a new run folder and
``run_training`` carries it out (in the foreground, or in a worker process started with the
very command ``python -m core train --config RUN/config.json`` that a person could type).

The worker writes ``progress.jsonl`` (one JSON line per step and per evaluation) and
``status.json`` into the run folder; pages only read them. It checkpoints atomically, stops
cooperatively on SIGTERM (finishes the step, saves, marks the run cancelled), resumes to the
same total number of steps, and halves the per-pass batch when the GPU runs out of memory.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import datasets as store
from core.baseline import BaselineModel, is_chinese
from core.errors import ConfigError, NotFoundError, OpinionLabError
from core.evaluation import classification_metrics, probabilities_to_predictions
from core.models import check_model, model_max_length
from core.workspace import Registry, atomic_write_json, inside, new_id, read_json, staging_dir

METHODS = ("full", "lora", "baseline")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class TrainConfig:
    """Everything a run needs. Each field's help text is shown on the Train page."""

    dataset: str = field(default="", metadata=_help("Name of a saved dataset (Data page)."))
    model: str = field(default="default", metadata=_help(
        "'default' (the embedded English MiniLM), a local Hugging Face model folder, or a hub id "
        "such as bert-base-chinese (needs the internet or a local copy)."))
    method: str = field(default="full", metadata=_help(
        "full: fine-tune every weight (best accuracy). lora: train small adapters (faster, less "
        "memory). baseline: TF-IDF + logistic regression (seconds, any language)."))
    epochs: int = field(default=3, metadata=_help("Passes over the training rows. 1–5 is typical; more risks overfitting."))
    learning_rate: float = field(default=1e-4, metadata=_help(
        "Step size of the optimiser. 2e-5–1e-4 for full fine-tuning of small encoders, 1e-4–1e-3 for LoRA."))
    batch_size: int = field(default=32, metadata=_help(
        "Texts per optimiser step (per device). 16–64; must not exceed the training rows."))
    grad_accum: int = field(default=1, metadata=_help(
        "Batches added up before each optimiser step: effective batch = batch size × this. 1–8."))
    max_length: int = field(default=128, metadata=_help(
        "Tokens read per text (the model limit is usually 512). 128 is fast on a CPU; 256–512 reads long reviews whole."))
    head_tokens: int = field(default=32, metadata=_help(
        "For texts longer than max length: tokens kept from the start; the rest come from the end, "
        "where reviews usually give their verdict. 0 keeps only the start."))
    warmup_ratio: float = field(default=0.1, metadata=_help("Share of steps with a rising learning rate. 0–0.2."))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay. 0–0.1."))
    seed: int = field(default=42, metadata=_help("Fixes the data order, initialisation and dropout: same seed, same run."))
    class_weighting: str = field(default="auto", metadata=_help(
        "auto: weigh classes by inverse frequency when the largest is 1.5× the smallest; on; off."))
    early_stopping_patience: int = field(default=0, metadata=_help(
        "Stop after this many evaluations without a better validation macro F1. 0 = never stop early."))
    eval_every: int = field(default=0, metadata=_help("Evaluate on the validation split every N steps; 0 = after each epoch."))
    max_eval_rows: int = field(default=0, metadata=_help(
        "Validation rows used during training (a stratified sample); 0 = all. The test split is always scored whole."))
    limit: int = field(default=0, metadata=_help("Use at most this many training rows (stratified); 0 = all."))
    checkpoint_every: int = field(default=50, metadata=_help("Save a resumable checkpoint every N steps (and at every evaluation)."))
    precision: str = field(default="auto", metadata=_help("auto: bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU."))
    device: str = field(default="auto", metadata=_help("auto: cuda, else mps, else cpu."))
    lora_r: int = field(default=8, metadata=_help("LoRA rank: size of the adapters. 4–32."))
    lora_alpha: int = field(default=16, metadata=_help("LoRA scaling; usually 2 × rank."))
    lora_dropout: float = field(default=0.1, metadata=_help("Dropout inside the adapters. 0–0.3."))
    lora_targets: str = field(default="query,value", metadata=_help(
        "Comma-separated module names that get adapters (BERT family: query, key, value, dense)."))
    preset: str = field(default="", metadata=_help("The preset these settings started from (quick, standard, best)."))
    run_id: str = field(default="", metadata=_help("Set when the run is created."))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"Unknown training settings: {', '.join(unknown)}. Known: {', '.join(known)}.")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        data = read_json(Path(path))
        if not isinstance(data, dict):
            raise ConfigError(f"{path} is not a training config (a JSON object). Save one from the Train page.")
        return cls.from_dict(data)

    @staticmethod
    def help_texts() -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(TrainConfig)}


# quick: tuned on sample:movie-reviews, 2,000 training rows, 2 CPU cores (see README).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(epochs=3, learning_rate=1e-4, batch_size=32, max_length=128, head_tokens=32,
                  warmup_ratio=0.1, max_eval_rows=500, early_stopping_patience=0),
    "standard": dict(epochs=3, learning_rate=5e-5, batch_size=32, max_length=256, head_tokens=64,
                     warmup_ratio=0.1, max_eval_rows=2000, early_stopping_patience=2),
    "best": dict(epochs=5, learning_rate=3e-5, batch_size=16, grad_accum=2, max_length=512, head_tokens=128,
                 warmup_ratio=0.1, max_eval_rows=0, early_stopping_patience=2),
}


def config_from_preset(preset: str, **overrides: Any) -> TrainConfig:
    if preset and preset not in PRESETS:
        raise ConfigError(f"Unknown preset {preset!r}: use one of {', '.join(PRESETS)}.")
    values = {**(PRESETS.get(preset, {})), "preset": preset, **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig.from_dict(values)


def validate(config: TrainConfig, registry: Registry | None = None) -> list[str]:
    """Problems a person can fix before launch; an empty list means the config can run."""
    problems: list[str] = []
    registry = registry or Registry()
    if config.method not in METHODS:
        problems.append(f"Method {config.method!r} is unknown: use full, lora or baseline.")
    card = registry.dataset(config.dataset) if config.dataset else None
    if card is None:
        problems.append(f"Dataset {config.dataset!r} does not exist. Save one on the Data page first.")
    if not config.learning_rate > 0 or config.learning_rate > 0.01:
        problems.append(f"Learning rate {config.learning_rate} is out of range: use a value above 0 and at most 0.01 "
                        "(2e-5 to 1e-4 is typical).")
    if config.epochs < 1 or config.epochs > 100:
        problems.append(f"Epochs {config.epochs} is out of range: use 1 to 100.")
    if config.batch_size < 1:
        problems.append(f"Batch size {config.batch_size} is out of range: use at least 1 (16–64 is typical).")
    if config.grad_accum < 1:
        problems.append("Gradient accumulation must be at least 1.")
    if config.class_weighting not in ("auto", "on", "off"):
        problems.append("Class weighting must be auto, on or off.")
    if not 0 <= config.warmup_ratio < 1:
        problems.append("Warmup ratio must be between 0 and 1 (0.1 is typical).")
    if config.method != "baseline":
        if config.max_length < 8:
            problems.append(f"Max length {config.max_length} is too small: use at least 8 tokens (128 is typical).")
        try:
            folder = check_model(config.model)
            limit = model_max_length(folder)
            if config.max_length > limit:
                problems.append(f"Max length {config.max_length} is above the model's limit of {limit} tokens. Use {limit} or less.")
        except OpinionLabError as exc:
            problems.append(str(exc))
        if config.head_tokens < 0:
            problems.append("Head tokens must be 0 or more (it is capped at the max length).")
    if card is not None:
        train_counts = card["card"]["split_counts"].get("train", {})
        train_rows = sum(train_counts.values())
        if config.limit:
            train_rows = min(train_rows, config.limit)
        if config.batch_size > train_rows:
            problems.append(f"Batch size {config.batch_size} is larger than the {train_rows} training rows. "
                            f"Use {max(1, train_rows // 4)} or less.")
        missing = [lab for lab, n in train_counts.items() if n == 0]
        if missing:
            problems.append(f"The training split has no examples of {', '.join(map(repr, missing))}: "
                            "add some, or re-save the dataset and let Opinion Lab split it.")
    return problems


def estimate_minutes(config: TrainConfig, train_rows: int) -> float:
    """Rough duration on this kind of 2-core CPU (samples/s measured in shared/FACTS.md)."""
    if config.method == "baseline":
        return max(0.1, train_rows / 20000)
    speed = {64: 30.0, 128: 14.3, 256: 4.6, 512: 1.8}
    rate = speed[min(speed, key=lambda k: abs(k - config.max_length))]
    if config.method == "lora":
        rate *= 1.25
    rows = min(train_rows, config.limit) if config.limit else train_rows
    return rows * config.epochs / rate / 60 * 1.15


# ----------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------
def run_dir_of(run_id: str, registry: Registry | None = None) -> Path:
    registry = registry or Registry()
    return inside(registry.root, "runs", run_id)


def create_run(config: TrainConfig, registry: Registry | None = None, created_by: str | None = None) -> Path:
    """Validate, then write the config into a new run folder and register the run."""
    registry = registry or Registry()
    problems = validate(config, registry)
    if problems:
        raise ConfigError(" ".join(problems))
    config.run_id = new_id("run")
    folder = run_dir_of(config.run_id, registry)
    with staging_dir(folder) as tmp:
        atomic_write_json(tmp / "config.json", config.to_dict())
        atomic_write_json(tmp / "status.json", {"status": "queued", "step": 0, "total_steps": 0})
    card = registry.dataset(config.dataset)
    registry.add_run(config.run_id, config.dataset, card["id"] if card else None, created_by,
                     {"method": config.method, "model": config.model, "preset": config.preset})
    return folder


class Progress:
    """Appends JSON lines to progress.jsonl and keeps status.json and the registry in step."""

    def __init__(self, folder: Path, registry: Registry, run_id: str, main: bool | None = None):
        if main is None:  # under torchrun / accelerate launch only rank 0 writes
            main = int(os.environ.get("RANK", "0")) == 0
        self.folder, self.registry, self.run_id, self.main = folder, registry, run_id, main
        self.path = folder / "progress.jsonl"

    def log(self, event: str, **values: Any) -> None:
        if not self.main:
            return
        line = json.dumps({"event": event, "time": time.time(), **values}, ensure_ascii=False, default=float)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def status(self, status: str, throttle: bool = False, **values: Any) -> None:
        """Record the run's status; ``throttle`` skips a routine update if one was written <1 s ago."""
        if not self.main:
            return
        now = time.monotonic()
        if throttle and now - getattr(self, "_last_status", 0.0) < 1.0:
            return
        self._last_status = now
        previous = read_json(self.folder / "status.json", {}) or {}
        record = {**previous, "status": status, "pid": os.getpid(), "updated_at": time.time(), **values}
        atomic_write_json(self.folder / "status.json", record)
        self.registry.update_run(self.run_id, status, {k: record.get(k) for k in ("step", "total_steps", "reason")})


def read_progress(folder: Path) -> list[dict[str, Any]]:
    """Every readable line of a run's progress log (a line being written is skipped)."""
    path = Path(folder) / "progress.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


# ----------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------
def _stratified_head(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    if not limit or len(frame) <= limit:
        return frame.reset_index(drop=True)
    share = limit / len(frame)
    parts = [g.sample(n=max(1, int(round(len(g) * share))), random_state=seed) for _, g in frame.groupby("label")]
    return pd.concat(parts).sample(frac=1, random_state=seed).head(limit).reset_index(drop=True)


def load_splits(config: TrainConfig, registry: Registry) -> tuple[dict[str, pd.DataFrame], list[str]]:
    card = registry.dataset(config.dataset)
    if card is None:
        raise NotFoundError(f"dataset missing: {config.dataset!r} was deleted after the run was created. "
                            "Add the dataset again and start a new run.")
    rows = store.load_rows(card["id"], registry=registry)
    labels = card["card"]["labels"]
    splits = {name: rows[rows["split"] == name].reset_index(drop=True) for name in ("train", "validation", "test")}
    splits["train"] = _stratified_head(splits["train"], config.limit, config.seed)
    if config.max_eval_rows:
        splits["validation"] = _stratified_head(splits["validation"], config.max_eval_rows, config.seed)
    missing = sorted(set(labels) - set(splits["train"]["label"]))
    if missing:
        raise ConfigError(f"The training rows have no examples of {', '.join(map(repr, missing))}. "
                          "Raise --limit or re-save the dataset.")
    empty = [name for name, frame in splits.items() if len(frame) == 0]
    if empty:  # possible with a split column of the user's (or rows removed as duplicates)
        raise ConfigError(f"Dataset {config.dataset!r} has no {' and no '.join(empty)} rows, which training needs to "
                          "measure the model. Re-save it without a split column (Opinion Lab then splits 80/10/10), "
                          "or give some rows the split value " + " / ".join(repr(n) for n in empty) + ".")
    return splits, labels


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


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one text ([CLS] … [SEP] for BERT)."""
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    for i in range(len(with_special) - len(plain) + 1):
        if with_special[i:i + len(plain)] == plain:
            return with_special[:i], with_special[i + len(plain):]
    return [], []


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffle, sort by length inside windows of 50 batches, cut, then shuffle the batches:
    similar lengths share a batch (little padding) while the order stays random."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [list(map(int, chunk[i:i + batch_size])) for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


# On a GPU, batch widths are rounded up to a multiple of this: length-grouped batches otherwise
# come in ~100 distinct shapes, and each new shape can cost the CUDA caching allocator a fresh
# cudaMalloc (slow under virtualised drivers); multiples of 16 also suit tensor cores.
GPU_PAD_MULTIPLE = 16


def pad_batch(encoded: list[list[int]], indices: list[int], pad_id: int, multiple: int = 1) -> dict[str, Any]:
    import numpy as np
    import torch

    width = max(len(encoded[i]) for i in indices)
    width = -(-width // multiple) * multiple
    ids = np.full((len(indices), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(indices), width), dtype=np.int64)
    for row, i in enumerate(indices):
        seq = encoded[i]
        ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


def predict_proba(model: Any, encoded: list[list[int]], pad_id: int, device: Any, batch_size: int = 64,
                  autocast_dtype: Any = None) -> np.ndarray:
    """Class probabilities; texts sorted by length so batches pad little; inference mode."""
    import torch

    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    probs = np.zeros((len(encoded), model.config.num_labels), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            multiple = GPU_PAD_MULTIPLE if device.type == "cuda" else 1
            batch = {k: v.to(device, non_blocking=True) for k, v in pad_batch(encoded, idx, pad_id, multiple).items()}
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = model(**batch).logits
            probs[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    model.train(was_training)
    return probs


# ----------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------
class StopRequested(Exception):
    pass


def _pick_device(config: TrainConfig) -> tuple[str, str]:
    import torch

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    precision = config.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device == "cuda" else "no"
    return device, {"fp32": "no"}.get(precision, precision)


def _baseline_step(splits: dict[str, pd.DataFrame], labels: list[str]) -> tuple[BaselineModel, dict[str, Any], np.ndarray]:
    train = splits["train"]
    model = BaselineModel(labels, chinese=is_chinese(train["text"].tolist()))
    model.fit(train["text"].tolist(), train["label"].tolist())
    probs = model.predict_proba(splits["test"]["text"].tolist())
    metrics = classification_metrics(splits["test"]["label"].tolist(), probabilities_to_predictions(probs, labels), labels)
    return model, metrics, probs


def _save_predictions(folder: Path, frame: pd.DataFrame, probs: np.ndarray, labels: list[str]) -> None:
    out = pd.DataFrame({"text": frame["text"], "label": frame["label"],
                        "predicted": probabilities_to_predictions(probs, labels),
                        "confidence": probs.max(axis=1) if len(probs) else []})
    for i, lab in enumerate(labels):
        out[f"prob_{lab}"] = probs[:, i] if len(probs) else []
    out.to_parquet(folder / "predictions_test.parquet", index=False)


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in ("accuracy", "macro_f1", "weighted_f1")}


def run_training(folder: Path, resume: bool = False, registry: Registry | None = None) -> dict[str, Any]:
    """Carry out the run in ``folder``. Returns metrics.json's content."""
    registry = registry or Registry()
    folder = Path(folder)
    config = TrainConfig.load(folder / "config.json")
    progress = Progress(folder, registry, config.run_id)
    stop = {"requested": False}

    def request_stop(signum: int, frame: Any) -> None:
        stop["requested"] = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _run(folder, config, registry, progress, stop, resume)
    except StopRequested as stopped:
        progress.status("cancelled", step=stopped.args[0],
                        reason="stopped by the user; resume continues from the last checkpoint")
        progress.log("stopped", step=stopped.args[0])
        return {"status": "cancelled"}
    except BaseException as exc:
        reason = _failure_reason(exc)
        progress.status("failed", reason=reason)
        progress.log("failed", reason=reason)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _failure_reason(exc: BaseException) -> str:
    text = str(exc)
    if "out of memory" in text.lower():
        return "out of GPU memory even at a batch of 1: lower max length or use LoRA"
    if isinstance(exc, OpinionLabError):
        return text
    return f"crashed: {type(exc).__name__}: {text[:300]}"


def _run(folder: Path, config: TrainConfig, registry: Registry, progress: Progress, stop: dict,
         resume: bool) -> dict[str, Any]:
    started = time.time()
    progress.status("running", reason=None, started_at=started)
    progress.log("start", resume=resume, config=config.to_dict())
    splits, labels = load_splits(config, registry)
    baseline, baseline_metrics, baseline_probs = _baseline_step(splits, labels)
    progress.log("baseline", test=baseline_metrics)
    if config.method == "baseline":
        with staging_dir(folder / "model") as tmp:
            baseline.save(tmp)
            atomic_write_json(tmp / "labels.json", {"labels": labels, "kind": "baseline"})
        _save_predictions(folder, splits["test"], baseline_probs, labels)
        metrics = {"labels": labels, "test": baseline_metrics, "validation": None,
                   "baseline": {"test": baseline_metrics}, "trainable_parameters": None,
                   "seconds": time.time() - started}
        atomic_write_json(folder / "metrics.json", metrics)
        progress.status("succeeded", step=1, total_steps=1, metrics=_summary(baseline_metrics))
        progress.log("done", test=_summary(baseline_metrics))
        return metrics
    return _fine_tune(folder, config, registry, progress, stop, resume, splits, labels, baseline_metrics, started)


def _fine_tune(folder: Path, config: TrainConfig, registry: Registry, progress: Progress, stop: dict, resume: bool,
               splits: dict[str, pd.DataFrame], labels: list[str], baseline_metrics: dict, started: float) -> dict:
    import torch
    from accelerate import Accelerator
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    device_name, mixed = _pick_device(config)
    accelerator = Accelerator(cpu=device_name == "cpu", mixed_precision=mixed)
    main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    progress.main = main
    model_dir = check_model(config.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(config.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)}, use_safetensors=True, attn_implementation="sdpa",
        dtype=torch.float32,  # fp32 master weights even for fp16/bf16 checkpoints; autocast does mixed precision
    )
    trainable = total_params = sum(p.numel() for p in model.parameters())
    if config.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        targets = [t.strip() for t in config.lora_targets.split(",") if t.strip()]
        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=config.lora_alpha,
                                                 lora_dropout=config.lora_dropout, target_modules=targets))
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    progress.log("model", trainable_parameters=trainable, total_parameters=total_params,
                 device=str(accelerator.device), precision=mixed, world_size=world)

    pad_id = tokenizer.pad_token_id or 0
    label_index = {lab: i for i, lab in enumerate(labels)}
    encoded = {name: encode_texts(tokenizer, frame["text"].tolist(), config.max_length, config.head_tokens)
               for name, frame in splits.items()}
    y_train = torch.tensor([label_index[lab] for lab in splits["train"]["label"]])
    lengths = [len(x) for x in encoded["train"]]
    counts = np.bincount(y_train.numpy(), minlength=len(labels))
    weights = None
    if config.class_weighting == "on" or (config.class_weighting == "auto" and counts.max() >= 1.5 * max(counts.min(), 1)):
        weights = torch.tensor(len(y_train) / (len(labels) * np.maximum(counts, 1)), dtype=torch.float32)

    def epoch_batches(epoch: int) -> list[list[int]]:
        batches = length_grouped_batches(lengths, config.batch_size, config.seed + epoch)
        per_rank = len(batches) // world if world > 1 else len(batches)
        return batches[rank::world][:per_rank] if world > 1 else batches

    steps_per_epoch = math.ceil(len(epoch_batches(0)) / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    no_decay = ("bias", "LayerNorm.weight", "layer_norm")
    groups = [
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and not any(k in n for k in no_decay)],
         "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, fused=accelerator.device.type == "cuda")
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * config.warmup_ratio), total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    base_model = accelerator.unwrap_model(model)

    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_f1": -1.0, "bad_evals": 0, "split": 1, "history": []}
    ckpt_root = folder / "checkpoints"
    if main:
        _tidy_checkpoints(ckpt_root)
    if resume:
        pointer = read_json(ckpt_root / "latest.json")
        if pointer:
            ckpt = ckpt_root / pointer["dir"]
            base_model.load_state_dict(load_file(str(ckpt / "model.safetensors")), strict=False)
            optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
            scheduler.load_state_dict(read_json(ckpt / "scheduler.json"))
            state.update(read_json(ckpt / "state.json"))
            progress.log("resumed", step=state["step"], total_steps=total_steps)

    def save_checkpoint() -> None:
        if not main:
            return
        name = f"step-{state['step']:07d}"
        if (ckpt_root / name).exists():  # this very step is saved already (e.g. a stop right after a save)
            return
        with staging_dir(ckpt_root / name) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in base_model.state_dict().items()},
                      str(tmp / "model.safetensors"))
            _injected_kill(folder, "checkpoint", state["step"])  # tests: die with the checkpoint half-written
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            atomic_write_json(tmp / "scheduler.json", scheduler.state_dict())
            atomic_write_json(tmp / "state.json", state)
        atomic_write_json(ckpt_root / "latest.json", {"dir": name, "step": state["step"]})
        for old in ckpt_root.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed)

    def evaluate(name: str) -> tuple[dict[str, Any], np.ndarray]:
        probs = predict_proba(base_model, encoded[name], pad_id, accelerator.device, autocast_dtype=autocast_dtype)
        return classification_metrics(splits[name]["label"].tolist(), probabilities_to_predictions(probs, labels), labels), probs

    inject_oom = {int(s) for s in os.environ.get("OPINIONLAB_INJECT_OOM", "").split(",") if s.strip()}
    progress.status("running", step=state["step"], total_steps=total_steps)
    model.train()
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights.to(accelerator.device) if weights is not None else None)
    best_state = None
    tick, samples_since = time.time(), 0
    stopped_early = False
    while state["step"] < total_steps and not stopped_early:
        batches = epoch_batches(state["epoch"])
        groups_of = [batches[i:i + config.grad_accum] for i in range(0, len(batches), config.grad_accum)]
        for group in groups_of[state["batch_in_epoch"]:]:
            if state["step"] >= total_steps:
                break
            torch.manual_seed(config.seed * 100_003 + state["step"])  # dropout: a function of the step
            loss_value = _train_step(model, group, encoded["train"], y_train, pad_id, accelerator, loss_fn,
                                     optimizer, state, inject_oom, progress, config)
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["batch_in_epoch"] += 1
            samples_since += sum(len(b) for b in group) * world
            now = time.time()
            rate = samples_since / max(now - tick, 1e-6)
            remaining = (total_steps - state["step"]) * config.batch_size * config.grad_accum * world / max(rate, 1e-6)
            progress.log("step", step=state["step"], total_steps=total_steps, epoch=state["epoch"] + 1,
                         loss=loss_value, lr=scheduler.get_last_lr()[0], samples_per_s=rate, eta_s=remaining)
            progress.status("running", throttle=True, step=state["step"], total_steps=total_steps, eta_s=remaining)
            _injected_kill(folder, "step", state["step"])
            end_of_epoch = state["batch_in_epoch"] >= len(groups_of)
            due = (config.eval_every and state["step"] % config.eval_every == 0) or (not config.eval_every and end_of_epoch)
            if due or state["step"] == total_steps:
                val, _ = evaluate("validation")
                state["history"].append({"step": state["step"], **_summary(val)})
                progress.log("eval", step=state["step"], total_steps=total_steps, split="validation", metrics=_summary(val))
                if val.get("macro_f1", 0) > state["best_f1"]:
                    state["best_f1"], state["bad_evals"] = val["macro_f1"], 0
                    if config.early_stopping_patience:
                        best_state = {k: v.detach().cpu().clone() for k, v in base_model.state_dict().items()}
                else:
                    state["bad_evals"] += 1
                    if config.early_stopping_patience and state["bad_evals"] >= config.early_stopping_patience:
                        progress.log("early_stop", step=state["step"], best_macro_f1=state["best_f1"])
                        stopped_early = True
                tick, samples_since = time.time(), 0
            if end_of_epoch:
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
            if stopped_early:
                break
            if due or state["step"] % config.checkpoint_every == 0:
                save_checkpoint()
            if stop["requested"]:
                save_checkpoint()
                raise StopRequested(state["step"])
    if best_state is not None:
        base_model.load_state_dict(best_state)
    accelerator.wait_for_everyone()
    if not main:
        return {}

    test, test_probs = evaluate("test")
    val = evaluate("validation")[0]
    with staging_dir(folder / "model") as tmp:
        to_save = base_model
        if config.method == "lora":
            base_model.save_pretrained(tmp / "adapter", safe_serialization=True)
            to_save = base_model.merge_and_unload()
        to_save.config.id2label = dict(enumerate(labels))
        to_save.config.label2id = {lab: i for i, lab in enumerate(labels)}
        to_save.save_pretrained(tmp, safe_serialization=True)
        # pipeline(truncation=True) then reads as many tokens as the model was trained on
        tokenizer.model_max_length = config.max_length
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / "labels.json", {"labels": labels, "kind": "transformer",
                                                "max_length": config.max_length, "head_tokens": config.head_tokens})
    _save_predictions(folder, splits["test"], test_probs, labels)
    metrics = {"labels": labels, "test": test, "validation": val, "baseline": {"test": baseline_metrics},
               "trainable_parameters": trainable, "total_parameters": total_params, "steps": state["step"],
               "total_steps": total_steps, "history": state["history"], "seconds": time.time() - started,
               "micro_batch_split": state["split"], "device": accelerator.device.type, "precision": mixed}
    if accelerator.device.type == "cuda":
        metrics["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    atomic_write_json(folder / "metrics.json", metrics)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    summary = {**_summary(test), "baseline_accuracy": baseline_metrics.get("accuracy")}
    progress.status("succeeded", step=state["step"], total_steps=total_steps, metrics=summary)
    progress.log("done", test=summary)
    return metrics


def _tidy_checkpoints(root: Path) -> None:
    """After a crash: drop half-written staging folders and any checkpoint the pointer does not
    name (one renamed into place just before the pointer could be updated)."""
    if not root.is_dir():
        return
    pointer = read_json(root / "latest.json") or {}
    for path in root.iterdir():
        if path.is_dir() and (path.name.startswith(".") or path.name != pointer.get("dir")):
            shutil.rmtree(path, ignore_errors=True)


def _injected_kill(folder: Path, where: str, step: int) -> None:
    """Fault injection for tests: OPINIONLAB_INJECT_KILL=step:N or checkpoint:N makes the worker
    SIGKILL itself there, once per run (a marker file keeps the resumed worker alive)."""
    wanted = os.environ.get("OPINIONLAB_INJECT_KILL")
    marker = folder / ".injected-kill"
    if wanted == f"{where}:{step}" and not marker.exists():
        marker.write_text(wanted)
        os.kill(os.getpid(), signal.SIGKILL)


def _train_step(model: Any, group: list[list[int]], encoded: list[list[int]], y: Any, pad_id: int, accelerator: Any,
                loss_fn: Any, optimizer: Any, state: dict, inject_oom: set[int], progress: Progress,
                config: TrainConfig) -> float:
    """One optimiser step over ``group`` (grad_accum batches). Out of memory: split each batch
    into twice as many passes (same effective batch) and try the step again."""
    import torch

    examples = sum(len(b) for b in group)
    while True:
        try:
            total = 0.0
            for batch in group:
                parts = [batch[i::state["split"]] for i in range(state["split"])]
                for part in parts:
                    if not part:
                        continue
                    if state["step"] + 1 in inject_oom and state["split"] == 1 and len(part) > 1:
                        inject_oom.discard(state["step"] + 1)
                        raise torch.OutOfMemoryError("CUDA out of memory (injected for a test)")
                    multiple = GPU_PAD_MULTIPLE if accelerator.device.type == "cuda" else 1
                    inputs = {k: v.to(accelerator.device) for k, v in pad_batch(encoded, part, pad_id, multiple).items()}
                    with accelerator.autocast():
                        logits = model(**inputs).logits
                    loss = loss_fn(logits.float(), y[part].to(accelerator.device)) * len(part) / examples
                    accelerator.backward(loss)
                    total += float(loss.detach())
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            return total
        except torch.OutOfMemoryError:
            optimizer.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            largest = max(len(b) for b in group)
            if state["split"] >= largest:
                raise
            state["split"] *= 2
            progress.log("oom", step=state["step"] + 1, message=(
                f"Out of GPU memory: each batch now runs in {state['split']} passes of about "
                f"{math.ceil(config.batch_size / state['split'])} texts (gradient accumulation doubled, same effective batch)."))


def submit_command(config: TrainConfig) -> str:
    """The CLI line that queues the same run as the Train page's button."""
    import shlex

    defaults = config_from_preset(config.preset, dataset=config.dataset) if config.preset else TrainConfig()
    parts = ["python", "-m", "core", "jobs", "submit", "--dataset", config.dataset, "--model", config.model,
             "--method", config.method]
    if config.preset:
        parts += ["--preset", config.preset]
    flags = {"epochs": "--epochs", "batch_size": "--batch-size", "learning_rate": "--lr",
             "max_length": "--max-length", "limit": "--limit", "seed": "--seed"}
    for name, flag in flags.items():
        if getattr(config, name) != getattr(defaults, name):
            parts += [flag, str(getattr(config, name))]
    return " ".join(shlex.quote(p) for p in parts)


def delete_run(run_id: str, registry: Registry | None = None) -> None:
    """Remove a run that is not running: registry rows first, then its folder."""
    registry = registry or Registry()
    job = registry.job(run_id)
    if job and job["status"] in ("queued", "running"):
        raise ConfigError(f"Run {run_id} is {job['status']}: stop it before deleting it.")
    registry.remove_run(run_id)
    shutil.rmtree(run_dir_of(run_id, registry), ignore_errors=True)
