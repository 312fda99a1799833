"""How long a training run will take here, from what earlier runs on this machine measured.

Every fine-tune logs its training speed (``samples_per_s`` on each step of ``progress.jsonl``)
and the device it ran on. A new run is estimated from the earlier runs of the same model,
method, max length and device ("measured"); failing that, from runs of the same model on the
same device with other settings, scaled ("scaled"); failing that, from the speeds measured for
the embedded MiniLM in shared/FACTS.md, slowed down for a busy machine ("guess"). The estimate
says which, so nobody mistakes a guess for a measurement.
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
# idle-machine speeds while other work ran.
BUSY_FACTOR = 1.5
# Speed ∝ (1 / max length) ** this: 64 → 128 tokens cost 2.1× and 128 → 256 3.1× on 2 cores.
LENGTH_EXPONENT = 1.4
# LoRA trains 17.4 samples/s where full fine-tuning trains 13.8 (shared/FACTS.md).
LORA_SPEEDUP = 1.25
# Evaluation (no backward pass) reads about 4× as many texts per second as training (58.6 vs
# 14.3 at 128 tokens on 2 cores); 3 keeps the estimate on the safe side.
EVAL_SPEEDUP = 3.0
# Reading the data, the TF-IDF reference and loading the model, before the first step.
GUESS_STARTUP_S = {"cpu": 20.0, "cuda": 40.0}
# The TF-IDF baseline: about 3 ms per training row plus start-up (word 1–2 grams, 2 cores).
BASELINE_S_PER_ROW, BASELINE_STARTUP_S = 0.003, 5.0
MINILM_SIZE = 6 * 384  # layers × hidden size of the embedded model the speeds above belong to


@dataclass(frozen=True)
class Measured:
    """What one earlier run measured: its settings, device and speed."""

    run_id: str
    model: str
    method: str
    max_length: int
    device: str
    samples_per_s: float | None  # training speed (fine-tunes)
    startup_s: float | None  # seconds from the start to the first step
    seconds: float | None  # whole run, start to done (used for baselines)
    train_rows: int | None


@dataclass(frozen=True)
class Estimate:
    """A new run's expected duration and where the figure comes from."""

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


def _device_type(name: Any) -> str | None:
    return str(name).split(":")[0] if name else None


@lru_cache(maxsize=512)
def _measure(folder: Path, stamp: tuple[float, int], run_id: str, train_rows: int | None) -> Measured | None:
    """One run's figures, cached by its progress log's modification time and size."""
    from core.training import read_progress

    config = read_json(folder / "config.json", {}) or {}
    metrics = read_json(folder / "metrics.json", {}) or {}
    events = read_progress(folder)
    device = next((_device_type(e["device"]) for e in events if e.get("device")), None) or _device_type(
        metrics.get("device"))
    method = str(config.get("method") or "")
    times = {e.get("event"): e.get("time") for e in reversed(events)}  # the first time of each kind
    done = next((e["time"] for e in reversed(events) if e.get("event") == "done" and e.get("time")), None)
    seconds = done - times["start"] if done and times.get("start") else None
    steps = [e for e in events if e.get("event") == "step" and (e.get("samples_per_s") or 0) > 0]
    rate = startup = None
    if len(steps) >= 3:  # the second half: past the first, slower steps
        rate = statistics.median(float(e["samples_per_s"]) for e in steps[len(steps) // 2:])
        if times.get("start") and steps[0].get("time"):
            startup = max(0.0, steps[0]["time"] - times["start"])
    if method == "baseline":
        device = device or "cpu"
    if not device or (rate is None and not (method == "baseline" and seconds)):
        return None
    return Measured(run_id, str(config.get("model") or ""), method, int(config.get("max_length") or 0), device,
                    rate, startup, seconds, train_rows)


def measured_runs(registry: Registry | None = None) -> list[Measured]:
    """The figures of every earlier run that logged enough to measure, newest first."""
    registry = registry or Registry()
    out = []
    for run in registry.runs():
        folder = registry.root / "runs" / run["id"]
        log = folder / "progress.jsonl"
        try:
            stat = log.stat()
        except OSError:
            continue
        measured = _measure(folder, (stat.st_mtime, stat.st_size), run["id"], _train_rows_of(run, registry))
        if measured:
            out.append(measured)
    return out


def _train_rows_of(run: dict[str, Any], registry: Registry) -> int | None:
    card = registry.dataset(run["dataset_id"]) if run.get("dataset_id") else None
    if card is None:
        return None
    rows = sum(card["card"]["split_counts"].get("train", {}).values())
    limit = int((read_json(registry.root / "runs" / run["id"] / "config.json", {}) or {}).get("limit") or 0)
    return min(rows, limit) if limit else rows


def device_for(config: Any) -> str:
    """The device a run will train on: its setting, or a GPU when the machine has one."""
    from core.jobs import has_gpu

    if config.method == "baseline":
        return "cpu"
    if config.device and config.device != "auto":
        return _device_type(config.device) or "cpu"
    return "cuda" if has_gpu() else "cpu"


def estimate_training(config: Any, registry: Registry | None = None,
                      history: list[Measured] | None = None) -> Estimate:
    """How long ``config`` (a TrainConfig) will take on this machine, and on what that rests."""
    registry = registry or Registry()
    card = registry.dataset(config.dataset)
    counts = {split: sum(c.values()) for split, c in (card["card"]["split_counts"] if card else {}).items()}
    rows = counts.get("train", 0)
    rows = min(rows, config.limit) if config.limit else rows
    history = measured_runs(registry) if history is None else history
    device = device_for(config)
    if config.method == "baseline":
        return _estimate_baseline(rows, history)
    same_model = [m for m in history if m.model == config.model and m.device == device and m.samples_per_s
                  and m.method != "baseline"]
    exact = [m for m in same_model if m.method == config.method and m.max_length == config.max_length]
    if exact:
        rate, basis, used = statistics.median(m.samples_per_s for m in exact), "measured", exact
    elif same_model:
        rate = statistics.median(_scaled(m, config) for m in same_model)
        basis, used = "scaled", same_model
    else:
        rate, basis, used = _guess_rate(config, device), "guess", []
    startups = [m.startup_s for m in used if m.startup_s is not None]
    startup = statistics.median(startups) if startups else GUESS_STARTUP_S.get(device, GUESS_STARTUP_S["cpu"])
    seconds = startup + _samples(config, counts, rows) / rate
    return Estimate(seconds, basis, len(used), device, rate, rows)


def _estimate_baseline(rows: int, history: list[Measured]) -> Estimate:
    per_row = [m.seconds / m.train_rows for m in history
               if m.method == "baseline" and m.seconds and m.train_rows]
    if per_row:
        return Estimate(max(1.0, statistics.median(per_row) * rows), "measured", len(per_row), "cpu", None, rows)
    return Estimate(BASELINE_STARTUP_S + BASELINE_S_PER_ROW * rows, "guess", 0, "cpu", None, rows)


def _samples(config: Any, counts: dict[str, int], rows: int) -> float:
    """Training samples plus evaluation texts (counted at their lower cost) the run will read."""
    val, test = counts.get("validation", 0), counts.get("test", 0)
    steps = math.ceil(rows / max(config.batch_size * config.grad_accum, 1)) * config.epochs
    evaluations = math.ceil(steps / config.eval_every) if config.eval_every else config.epochs
    per_evaluation = min(val, config.max_eval_rows) if config.max_eval_rows else val
    read_to_evaluate = evaluations * per_evaluation + val + test  # plus the final validation and test pass
    return rows * config.epochs + read_to_evaluate / EVAL_SPEEDUP


def _scaled(measured: Measured, config: Any) -> float:
    """An earlier run's speed carried over to another max length and method."""
    rate = measured.samples_per_s * (max(measured.max_length, 8) / max(config.max_length, 8)) ** LENGTH_EXPONENT
    factor = {"lora": LORA_SPEEDUP}
    return rate * factor.get(config.method, 1.0) / factor.get(measured.method, 1.0)


def _guess_rate(config: Any, device: str) -> float:
    speeds = GUESS_SAMPLES_PER_S.get(device, GUESS_SAMPLES_PER_S["cpu"])
    nearest = min(speeds, key=lambda length: abs(length - config.max_length))
    rate = speeds[nearest] * (nearest / max(config.max_length, 8)) ** LENGTH_EXPONENT
    if config.method == "lora":
        rate *= LORA_SPEEDUP
    return rate * _size_ratio(config.model) / BUSY_FACTOR


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
