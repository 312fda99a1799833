"""What the parts of a running fine-tune share: the stop flag the signal handler sets, and the
run's log (progress writer, rank, history of evaluations). Light: no torch here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.progress import ProgressWriter

METRIC_KEYS = ("accuracy", "macro_f1", "weighted_f1")


@dataclass
class StopFlag:
    """Set by the SIGTERM/SIGINT handler; read by the loop at the end of each step."""

    requested: bool = False
    stopped_at: int | None = None


@dataclass
class RunLog:
    """The progress writer and what the callbacks learn while training."""

    progress: ProgressWriter
    folder: Path
    seed: int
    rank: int = 0
    world: int = 1
    samples_per_step: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    # A hyperparameter search's pruner: called with (evaluation number, validation metrics) after
    # each evaluation; True ends the run there (``pruned_at`` says at which step).
    judge: Callable[[int, dict[str, Any]], bool] | None = None
    pruned_at: int | None = None


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and F1s from a metrics dict (keys with or without the Trainer's ``eval_`` prefix)."""
    return {k: metrics.get(k, metrics.get(f"eval_{k}")) for k in METRIC_KEYS}
