"""A run's folder, ``workspace/runs/<run_id>/``: created with its config, read, deleted.

    config.json              the TrainConfig (what ``python -m core train --config`` carries out)
    status.json              queued / running / succeeded / failed / cancelled / interrupted, step, ETA
    progress.jsonl           one line per step and per evaluation (core.progress)
    checkpoints/             the Trainer's checkpoint-N folders while the run is unfinished
    model/                   Hugging Face format (safetensors, tokenizer, labels.json); LoRA merged
    metrics.json             validation and test metrics, with the baseline's on the same split
    predictions_test.parquet the test split with predicted labels and probabilities
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.evaluation import probabilities_to_predictions
from core.modeling.config import TrainConfig, join_messages, validate
from core.progress import ProgressWriter, read_progress
from core.workspace import Registry, atomic_write_json, inside, new_id, staging_dir

__all__ = ["create_run", "delete_run", "open_progress", "read_progress", "run_dir_of", "save_predictions"]


def run_dir_of(run_id: str, registry: Registry | None = None) -> Path:
    registry = registry or Registry()
    return inside(registry.root, "runs", run_id)


def create_run(config: TrainConfig, registry: Registry | None = None, created_by: str | None = None,
               search_id: str | None = None, tags: dict[str, Any] | None = None) -> Path:
    """Validate, then write the config into a new run folder and register the run (as a trial of
    the hyperparameter search ``search_id``, if given; ``tags`` join its registry info, e.g. the
    comparison and cell a run belongs to, so run lists can say so)."""
    registry = registry or Registry()
    problems = validate(config, registry)
    if problems:
        raise ConfigError(join_messages(problems))
    config.run_id = new_id("run")
    folder = run_dir_of(config.run_id, registry)
    with staging_dir(folder) as tmp:
        atomic_write_json(tmp / "config.json", config.to_dict())
        atomic_write_json(tmp / "status.json", {"status": "queued", "step": 0, "total_steps": 0})
    card = registry.dataset(config.dataset)
    registry.add_run(config.run_id, config.dataset, card["id"] if card else None, created_by,
                     {"method": config.method, "model": config.model, "preset": config.preset, **(tags or {})},
                     search_id=search_id)
    return folder


def open_progress(folder: Path, registry: Registry, run_id: str) -> ProgressWriter:
    """The run's progress writer; every status it writes is mirrored into the registry."""
    def mirror(status: str, record: dict[str, Any]) -> None:
        registry.update_run(run_id, status, {k: record.get(k) for k in ("step", "total_steps", "reason")})

    return ProgressWriter(folder, on_status=mirror)


def save_predictions(folder: Path, frame: pd.DataFrame, probs: np.ndarray, labels: list[str]) -> None:
    out = pd.DataFrame({"text": frame["text"], "label": frame["label"],
                        "predicted": probabilities_to_predictions(probs, labels),
                        "confidence": probs.max(axis=1) if len(probs) else []})
    for i, lab in enumerate(labels):
        out[f"prob_{lab}"] = probs[:, i] if len(probs) else []
    out.to_parquet(folder / "predictions_test.parquet", index=False)


def delete_run(run_id: str, registry: Registry | None = None) -> None:
    """Remove a run that is not running: registry rows first, then its folder."""
    registry = registry or Registry()
    job = registry.job(run_id)
    if job and job["status"] in ("queued", "running"):
        raise ConfigError("train.err.delete_active", run=run_id, status=job["status"])
    registry.remove_run(run_id)
    shutil.rmtree(run_dir_of(run_id, registry), ignore_errors=True)
