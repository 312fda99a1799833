"""What each kind of background work is, in one place: how its worker command is built, where
its folder and config live, what its progress counts, which lane it waits in, and what else
follows its state (a training job's run row). ``core.jobs`` runs any kind the same way;
a new kind of work (tuning, comparisons, exports) registers a ``JobKind`` instead of adding a
branch to the scheduler. ``Job`` is the typed view pages and the CLI read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.workspace import Registry, read_json

QUICK, LONG = "quick", "long"
# A scoring job this small runs in the quick lane even with a transformer model: about 1 MiB of
# text is ~3,500 short posts or ~800 long reviews, under a minute at the 58 texts/s measured on
# 2 CPU cores (shared/FACTS.md).
QUICK_SCORE_BYTES = 1 << 20


@dataclass(frozen=True)
class JobKind:
    """One kind of background work."""

    name: str
    folder: str  # the workspace folder holding each target's own folder (runs, scores, monitors)
    config_file: str  # the file in the target's folder the worker reads
    counts: tuple[str, str]  # keys of status.json: work done, work in all
    unit: str  # what the counts count: "steps", "rows" or "trials"
    command: Callable[[str, str, str, bool], list[str]]  # (target, config path, job id, resume) → argv
    lane: Callable[[dict[str, Any], Registry], str]  # (saved config, registry) → quick | long
    mirrors_run: bool = False  # the registry's run row follows the job's state (training)

    def folder_of(self, target: str, registry: Registry) -> Path:
        return registry.root / self.folder / target


def _core(*args: str) -> list[str]:
    return [sys.executable, "-m", "core", *args]


def _model_kind(config: dict[str, Any], registry: Registry) -> str:
    labels = read_json(registry.root / "runs" / str(config.get("run_id", "")) / "model" / "labels.json", {}) or {}
    return str(labels.get("kind", ""))


def _train_lane(config: dict[str, Any], registry: Registry) -> str:
    if config.get("method") == "zeroshot":  # no training: as long as the test rows it embeds
        from core.zeroshot import QUICK_ROWS, rows_to_label

        return QUICK if rows_to_label(config, registry) <= QUICK_ROWS else LONG
    return QUICK if config.get("method") == "baseline" else LONG


def _score_lane(config: dict[str, Any], registry: Registry) -> str:
    source = Path(str(config.get("input") or ""))
    small = source.is_file() and source.stat().st_size <= QUICK_SCORE_BYTES
    return QUICK if _model_kind(config, registry) == "baseline" or small else LONG


def _monitor_lane(config: dict[str, Any], registry: Registry) -> str:
    # a monitor run scores only what is new since the last one: seconds with a baseline
    return QUICK if _model_kind(config, registry) == "baseline" else LONG


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    KINDS[kind.name] = kind
    return kind


register(JobKind(
    "train", "runs", "config.json", ("step", "total_steps"), "steps",
    lambda target, config, job, resume: _core("train", "--config", config, "--job", job)
    + (["--resume"] if resume else []),
    _train_lane, mirrors_run=True))
register(JobKind(  # scoring resumes by itself from the parts already written
    "score", "scores", "score.json", ("rows_done", "total_rows"), "rows",
    lambda target, config, job, resume: _core("score", "--config", config, "--job", job), _score_lane))
register(JobKind(  # one run of a monitor; its folder (the job's target) is its id
    "monitor", "monitors", "config.json", ("rows_done", "total_rows"), "rows",
    lambda target, config, job, resume: _core("monitor", "run", target, "--job", job), _monitor_lane))


register(JobKind(  # a hyperparameter search: its trials, one after another (counts: trials)
    "tune", "searches", "config.json", ("step", "total_steps"), "trials",
    lambda target, config, job, resume: _core("tune", "--config", config, "--job", job)
    + (["--resume"] if resume else []), lambda config, registry: LONG))


def kind_of(name: str) -> JobKind:
    """The kind called ``name``; an unknown kind (a registry written by a newer version) runs nothing."""
    from core.errors import ConfigError

    if name not in KINDS:
        raise ConfigError("jobs.err.unknown_kind", kind=name, kinds=", ".join(KINDS))
    return KINDS[name]


@dataclass(frozen=True)
class Job:
    """A job as pages and the CLI see it: its registry row plus the live progress of its folder."""

    id: str
    kind: str
    status: str
    target: str  # the run, scoring output, monitor ... the job works on
    folder: Path
    lane: str
    created_at: float
    created_by: str | None
    pid: int | None
    done: int = 0  # steps or rows, as ``unit`` says
    total: int = 0
    unit: str = "steps"
    eta_s: float | None = None
    rows_per_s: float | None = None
    summary: Any = None
    fast_agreement: float | None = None
    error: str | None = None  # plain English text
    error_message: Any = None  # the same for ``core.i18n.render`` (a Message dict or text)
    metrics: dict | None = None
    position: int | None = None  # place in its lane's line (1 = starts next); None unless queued
    command: str = ""
    info: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def fraction(self) -> float | None:
        return min(self.done / self.total, 1.0) if self.total else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``jobs show/list --json`` print (keys kept from before the typed view:
        ``run_id``/``run_dir`` name the target and its folder, ``step``/``total_steps`` the counts)."""
        return {"id": self.id, "kind": self.kind, "status": self.status, "pid": self.pid, "run_id": self.target,
                "target": self.target, "run_dir": str(self.folder), "step": self.done, "total_steps": self.total,
                "unit": self.unit, "eta_s": self.eta_s, "rows_per_s": self.rows_per_s, "summary": self.summary,
                "fast_agreement": self.fast_agreement, "error": self.error, "error_message": self.error_message,
                "metrics": self.metrics, "created_at": self.created_at, "lane": self.lane,
                "position": self.position, "created_by": self.created_by, "command": self.command}
