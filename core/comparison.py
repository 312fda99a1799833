"""Method comparison: every method at every training size, on the same dataset splits.

``create_comparison`` makes one run per (method, examples per class, seed): the training rows are
drawn per label with the seed (``TrainConfig.per_class``), so every method of a seed learns from
the same texts and is tested on the same test split. The runs are submitted as background jobs;
the record ``workspace/comparisons/<id>.json`` lists them, and ``comparison_report`` reads their
metrics into one table and a summary per (method, size): mean ± spread over seeds.

A size that some label cannot honour (a class with 3 training rows cannot give 8) is refused and
reported; the other sizes run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError, NotFoundError
from core.estimates import training_rows
from core.i18n import Message, msg
from core.modeling.config import METHODS, TrainConfig, classes_short_of, config_from_preset, join_messages, validate
from core.workspace import Registry, atomic_write_json, inside, new_id, read_json

ALL = "all"  # every training row of each label
FIRST_SEED = 42  # TrainConfig's default seed: a comparison's first seed matches a plain run's
MAX_SEEDS = 10


def parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in (text or "").split(",") if m.strip()]
    if not methods:
        raise ConfigError("lab.err.no_methods", methods=", ".join(METHODS))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError("lab.err.unknown_methods", names=", ".join(unknown), methods=", ".join(METHODS))
    return list(dict.fromkeys(methods))


def parse_per_class(text: str) -> list[int | str]:
    """``8,32,128,all`` → ``[8, 32, 128, "all"]``; anything but positive whole numbers and 'all' refused."""
    sizes: list[int | str] = []
    for item in (part.strip().lower() for part in (text or "").split(",") if part.strip()):
        if item == ALL:
            sizes.append(ALL)
        elif item.isdigit() and int(item) > 0:
            sizes.append(int(item))
        else:
            raise ConfigError("lab.err.per_class_value", value=item)
    if not sizes:
        raise ConfigError("lab.err.per_class_value", value=text)
    return list(dict.fromkeys(sizes))


@dataclass
class ComparisonConfig:
    dataset: str = ""
    methods: list[str] = field(default_factory=lambda: ["baseline", "full", "lora"])
    per_class: list[int | str] = field(default_factory=lambda: [8, 32, 128, ALL])
    seeds: int = 3
    model: str = "default"
    preset: str = "quick"

    def run_config(self, method: str, size: int | str, seed: int, train_counts: dict[str, int]) -> TrainConfig:
        """One cell's run. Small training sets get a batch of at most half their rows, so each
        epoch takes at least two optimiser steps."""
        per_class = 0 if size == ALL else int(size)
        config = config_from_preset(self.preset, dataset=self.dataset, model=self.model, method=method,
                                    per_class=per_class, seed=seed)
        rows = training_rows(train_counts, config.limit, per_class)
        config.batch_size = max(1, min(config.batch_size, rows // 2))
        return config


def comparison_path(comparison_id: str, registry: Registry) -> Path:
    return inside(registry.root, "comparisons", f"{comparison_id}.json")


def create_comparison(config: ComparisonConfig, registry: Registry | None = None, created_by: str | None = None,
                      launch: Callable[[Path, Registry], Any] | None = None) -> dict[str, Any]:
    """Check every cell, then create its run and ``launch`` it (default: submit it as a job).

    Returns the record: ``runs`` (method, per_class, seed, run_id) and ``refused`` (per_class, message)."""
    from core import jobs
    from core.training import create_run

    registry = registry or Registry()
    if not 1 <= config.seeds <= MAX_SEEDS:
        raise ConfigError("lab.err.seeds", value=config.seeds, most=MAX_SEEDS)
    card = registry.dataset(config.dataset)
    if card is None:
        raise NotFoundError("train.err.dataset_deleted", dataset=config.dataset)
    counts = card["card"]["split_counts"].get("train", {})
    refused, sizes = [], []
    for size in config.per_class:
        short = classes_short_of(0 if size == ALL else int(size), counts)
        if short:
            note = msg("lab.err.per_class_short", per_class=size, most=min(short.values()),
                       classes=", ".join(f"{lab!r} ({n})" for lab, n in short.items()))
            refused.append({"per_class": size, "message": note.to_dict(), "error": str(note)})
        else:
            sizes.append(size)
    if not sizes:
        raise ConfigError("lab.err.no_sizes", sizes=", ".join(map(str, config.per_class)), most=min(counts.values()))
    cells = [(method, size, FIRST_SEED + i) for method in config.methods for size in sizes for i in range(config.seeds)]
    planned = [(cell, config.run_config(*cell, counts)) for cell in cells]
    for (method, size, _), run_config in planned:  # all checked before any run exists
        problems = validate(run_config, registry)
        if problems:
            raise ConfigError("lab.err.cell", method=method, per_class=size, problems=join_messages(problems))
    record = {"id": new_id("cmp"), "created_at": time.time(), "created_by": created_by, **asdict(config),
              "refused": refused, "runs": []}
    path = comparison_path(record["id"], registry)
    for (method, size, seed), run_config in planned:
        folder = create_run(run_config, registry, created_by=created_by,
                            tags={"comparison": record["id"], "per_class": size, "seed": seed})
        record["runs"].append({"method": method, "per_class": size, "seed": seed, "run_id": folder.name})
        atomic_write_json(path, record)  # the record lists every run that exists, even if a later one fails
    def submit(folder: Path, reg: Registry) -> Any:
        return jobs.submit(folder, reg, created_by=created_by)

    for run in record["runs"]:
        (launch or submit)(registry.root / "runs" / run["run_id"], registry)
    return record


def load_comparison(comparison_id: str, registry: Registry) -> dict[str, Any]:
    record = read_json(comparison_path(comparison_id, registry))
    if not isinstance(record, dict):
        raise NotFoundError("lab.err.comparison_missing", comparison=comparison_id)
    return record


def comparison_report(comparison_id: str, registry: Registry | None = None) -> dict[str, Any]:
    """``rows`` (one per run: method, per_class, seed, accuracy, macro_f1, trainable_parameters,
    seconds, peak_memory_mb, status) and ``summary`` (one per method and size, over seeds)."""
    registry = registry or Registry()
    record = load_comparison(comparison_id, registry)
    rows = []
    for run in record["runs"]:
        folder = registry.root / "runs" / run["run_id"]
        metrics = read_json(folder / "metrics.json", {}) or {}
        status = read_json(folder / "status.json", {}) or {}
        test = metrics.get("test") or {}
        job = registry.job(run["run_id"])
        # the job's state wins: a job cancelled while queued or a worker that died never wrote it
        rows.append({**{k: run[k] for k in ("method", "per_class", "seed", "run_id")},
                     "status": job["status"] if job else status.get("status", "queued"), "accuracy": test.get("accuracy"),
                     "macro_f1": test.get("macro_f1"), "trainable_parameters": metrics.get("trainable_parameters"),
                     "seconds": metrics.get("seconds"), "peak_memory_mb": metrics.get("peak_memory_mb")})
    return {"id": record["id"], "dataset": record["dataset"], "model": record["model"], "preset": record["preset"],
            "methods": record["methods"], "per_class": [r for r in record["per_class"]
                                                        if r not in {x["per_class"] for x in record["refused"]}],
            "seeds": record["seeds"], "refused": record["refused"], "rows": rows, "summary": summarise(rows)}


def _mean_spread(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, per_class), in the rows' order: finished seeds, mean and spread (sample
    standard deviation; 0 with one seed) of accuracy and macro F1, mean seconds and memory."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["per_class"]), []).append(row)
    out = []
    for (method, size), members in groups.items():
        done = [r for r in members if r["accuracy"] is not None]
        entry: dict[str, Any] = {"method": method, "per_class": size, "seeds": len(members), "finished": len(done)}
        for key in ("accuracy", "macro_f1"):
            entry[f"{key}_mean"], entry[f"{key}_spread"] = _mean_spread([r[key] for r in done])
        for key in ("seconds", "peak_memory_mb", "trainable_parameters"):
            entry[key] = _mean_spread([r[key] for r in done if r[key] is not None])[0]
        out.append(entry)
    return out


def list_comparisons(registry: Registry | None = None) -> list[dict[str, Any]]:
    """Every comparison record, newest first."""
    registry = registry or Registry()
    records = [read_json(p, {}) or {} for p in (registry.root / "comparisons").glob("*.json")]
    return sorted((r for r in records if r.get("id")), key=lambda r: -float(r.get("created_at") or 0))


def refusal_messages(record: dict[str, Any]) -> list[Message]:
    return [Message.from_dict(r["message"]) for r in record.get("refused", [])]
