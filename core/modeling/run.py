"""Carrying out one run, start to finish: load the rows, fit the baseline, fine-tune, evaluate, save.

``run_training(folder)`` is what ``python -m core train --config RUN/config.json`` runs, in the
foreground, as a queued job's worker, or on every rank of ``torchrun``/``accelerate launch``
(rank 0 alone writes progress, the model and the registry). SIGTERM/SIGINT stop cooperatively:
the step finishes, a checkpoint is saved, the run is marked cancelled, and ``resume`` continues
from it to the planned number of steps.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import memory
from core.baseline import BaselineModel, is_chinese
from core.errors import OpinionLabError
from core.evaluation import classification_metrics, probabilities_to_predictions
from core.i18n import Message, msg
from core.modeling.config import TrainConfig
from core.modeling.runfolder import open_progress, save_predictions
from core.modeling.splits import load_splits
from core.modeling.state import RunLog, StopFlag, summary
from core.progress import ProgressWriter
from core.workspace import Registry, atomic_write_json, disk_error, staging_dir


def run_training(folder: Path, resume: bool = False, registry: Registry | None = None,
                 judge: Callable[[int, dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Carry out the run in ``folder``. Returns metrics.json's content ({"status": "cancelled"}
    when stopped, {"status": "pruned", ...} when ``judge`` ended it, {} on ranks other than 0).

    ``judge`` (a hyperparameter search's pruner) sees the validation metrics after each evaluation."""
    registry = registry or Registry()
    folder = Path(folder)
    config = TrainConfig.load(folder / "config.json")
    progress = open_progress(folder, registry, config.run_id)
    stop = StopFlag()

    def request_stop(signum: int, frame: Any) -> None:
        stop.requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _run(folder, config, registry, progress, stop, resume, judge)
    except BaseException as exc:
        full = isinstance(exc, OSError) and exc.errno == 28
        error = disk_error(Path(exc.filename or folder / "checkpoints"), exc) if full else exc
        reason = failure_reason(error)
        progress.status("failed", reason=str(reason), reason_message=reason.to_dict())
        progress.event("failed", reason=str(reason))
        if error is not exc:
            raise error from exc
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        leave_process_group()


def leave_process_group() -> None:
    """A data-parallel worker leaves its process group before it exits: otherwise gloo's threads
    end with the interpreter, which now and then aborts a rank ("terminate called without an
    active exception") after the run itself has finished."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def failure_reason(exc: BaseException) -> Message:
    text = str(exc)
    if "out of memory" in text.lower():
        import os

        several = int(os.environ.get("WORLD_SIZE", "1")) > 1
        return msg("train.reason.oom_distributed" if several else "train.reason.oom")
    if isinstance(exc, OpinionLabError):
        return exc.message or msg("train.err.plain", text=text)
    return msg("train.reason.crashed", kind=type(exc).__name__, text=text[:300])


def _run(folder: Path, config: TrainConfig, registry: Registry, progress: ProgressWriter, stop: StopFlag,
         resume: bool, judge: Callable[[int, dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    started = time.time()
    memory.start_run()  # this run's peak, not an earlier run's in the same process
    progress.status("running", reason=None, reason_message=None, started_at=started)
    progress.event("start", resume=resume, config=config.to_dict())
    splits, labels = load_splits(config, registry)
    baseline = None
    if progress.main:  # the reference every run reports; rank 0 alone needs it
        baseline = _fit_baseline(splits, labels)
        progress.event("baseline", test=baseline[1])
    if config.method == "baseline":
        return _finish_baseline(folder, splits, labels, baseline, progress, started)
    log = RunLog(progress, folder, config.seed, judge=judge)
    if config.method == "fewshot":  # minutes of pair training: a resumed run starts again
        from core.fewshot import run_fewshot

        out = run_fewshot(folder, config, splits, labels, log, stop, baseline and baseline[1], started)
        return out if stop.stopped_at is None else _cancelled(progress, stop, "fewshot.reason.stopped")
    from core.modeling.trainer import fine_tune  # torch and transformers load only for fine-tuning

    tuned = fine_tune(config, folder, splits, labels, log, stop, resume)
    if log.pruned_at is not None:  # the search gave up on these settings: no model is saved
        reason = msg("train.reason.pruned")
        progress.status("cancelled", step=log.pruned_at, reason=str(reason), reason_message=reason.to_dict())
        progress.event("pruned", step=log.pruned_at)
        return {"status": "pruned", "history": log.history}
    if stop.stopped_at is not None:
        return _cancelled(progress, stop)
    if not progress.main:
        return {}
    if tuned.steps < tuned.total_steps:  # the early-stopping callback ended training
        progress.event("early_stop", step=tuned.steps, best_macro_f1=max(
            (h.get("macro_f1") or 0.0 for h in log.history), default=None))
    return _finish(folder, config, splits, labels, tuned, log, baseline[1], started)


def _cancelled(progress: ProgressWriter, stop: StopFlag, reason_id: str = "train.reason.stopped") -> dict[str, Any]:
    reason = msg(reason_id)
    progress.status("cancelled", step=stop.stopped_at, reason=str(reason), reason_message=reason.to_dict())
    progress.event("stopped", step=stop.stopped_at)
    return {"status": "cancelled"}


def _fit_baseline(splits: dict[str, pd.DataFrame], labels: list[str]) -> tuple[BaselineModel, dict, np.ndarray]:
    train = splits["train"]
    model = BaselineModel(labels, chinese=is_chinese(train["text"].tolist()))
    model.fit(train["text"].tolist(), train["label"].tolist())
    probs = model.predict_proba(splits["test"]["text"].tolist())
    metrics = classification_metrics(splits["test"]["label"].tolist(), probabilities_to_predictions(probs, labels), labels)
    return model, metrics, probs


def _finish_baseline(folder: Path, splits: dict[str, pd.DataFrame], labels: list[str], baseline: tuple,
                     progress: ProgressWriter, started: float) -> dict[str, Any]:
    model, metrics, probs = baseline
    with staging_dir(folder / "model") as tmp:
        model.save(tmp)
        atomic_write_json(tmp / "labels.json", {"labels": labels, "kind": "baseline"})
    save_predictions(folder, splits["test"], probs, labels)
    out = {"labels": labels, "test": metrics, "validation": None, "baseline": {"test": metrics},
           "trainable_parameters": None, "seconds": time.time() - started, "peak_memory_mb": memory.run_peak_mb("cpu")}
    atomic_write_json(folder / "metrics.json", out)
    progress.status("succeeded", step=1, total_steps=1, metrics=summary(metrics))
    progress.event("done", test=summary(metrics))
    return out


def _finish(folder: Path, config: TrainConfig, splits: dict[str, pd.DataFrame], labels: list[str], tuned: Any,
            log: RunLog, baseline_metrics: dict, started: float) -> dict[str, Any]:
    """Score the test and validation splits, save the model and the metrics, drop the checkpoints."""
    from core.modeling.encoding import autocast_dtype, pick_device, predict_proba

    precision = pick_device(config.device, config.precision)[1]
    pad_id = tuned.tokenizer.pad_token_id or 0

    def evaluate(name: str) -> tuple[dict[str, Any], np.ndarray]:
        probs = predict_proba(tuned.model, tuned.encoded[name], pad_id, tuned.device,
                              autocast_dtype=autocast_dtype(precision))
        truth = splits[name]["label"].tolist()
        return classification_metrics(truth, probabilities_to_predictions(probs, labels), labels), probs

    test, test_probs = evaluate("test")
    validation = evaluate("validation")[0]
    _save_model(folder, config, tuned, labels)
    save_predictions(folder, splits["test"], test_probs, labels)
    metrics = {"labels": labels, "test": test, "validation": validation, "baseline": {"test": baseline_metrics},
               "trainable_parameters": tuned.trainable_parameters, "total_parameters": tuned.total_parameters,
               "steps": tuned.steps, "total_steps": tuned.total_steps, "history": log.history,
               "seconds": time.time() - started, "micro_batch_split": tuned.passes, "device": tuned.device.type,
               "precision": precision, "world_size": log.world}
    if tuned.device.type == "cuda":
        metrics["peak_gpu_memory_mb"] = memory.run_peak_mb("cuda")
    metrics["peak_memory_mb"] = memory.run_peak_mb(tuned.device.type)
    atomic_write_json(folder / "metrics.json", metrics)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    done = {**summary(test), "baseline_accuracy": baseline_metrics.get("accuracy")}
    log.progress.status("succeeded", step=tuned.steps, total_steps=tuned.total_steps, metrics=done, eta_s=0)
    log.progress.event("done", test=done)
    return metrics


def _save_model(folder: Path, config: TrainConfig, tuned: Any, labels: list[str]) -> None:
    """Hugging Face format that ``transformers.pipeline`` loads: mergeable adapters merged into the
    weights (the adapter alone kept in ``model/adapter``), the tokenizer capped at the trained
    length. Virtual-token methods cannot merge: the adapter and the base model's name are kept,
    and ``core.modeling.adapters.load_adapter_model`` applies one to the other."""
    from core.modeling import adapters
    from core.modeling.pooling import chosen_pooling
    from core.models import check_model

    meta = {"labels": labels, "kind": "transformer", "max_length": config.max_length,
            "head_tokens": config.head_tokens, "method": config.method,
            "pooling": chosen_pooling(config.pooling, check_model(config.model))}
    with staging_dir(folder / "model") as tmp:
        model = tuned.model
        if config.method in adapters.ADAPTER_METHODS:
            model.save_pretrained(tmp / "adapter", safe_serialization=True)
        if config.method in adapters.VIRTUAL_TOKENS:
            meta.update(kind="adapter", base_model=config.model)
        else:
            if config.method in adapters.MERGEABLE:
                model = model.merge_and_unload()
            model.config.id2label = dict(enumerate(labels))
            model.config.label2id = {lab: i for i, lab in enumerate(labels)}
            model.save_pretrained(tmp, safe_serialization=True)
        # pipeline(truncation=True) then reads as many tokens as the model was trained on
        tuned.tokenizer.model_max_length = config.max_length
        tuned.tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / "labels.json", meta)
