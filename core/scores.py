"""Scoring outputs as a person manages them: listed by name, renamed, deleted after being told
what goes, and which model the Score page offers first.

A scoring output is the folder ``scores/<score id>`` (its config, status, parts and the scored
rows). Its id is also its job's id; registries from before that rule hold a ``job_…`` id whose
``target`` is the score id, and those are listed, renamed and deleted just the same.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core import jobs
from core.errors import ConfigError, NotFoundError
from core.i18n import Message, format_count, msg
from core.scoring import ScoreConfig, check_display_name, model_name, score_folder
from core.workspace import Registry, atomic_write_json, read_json


@dataclass
class ScoreEntry:
    """One scoring output with where it stands, as the page and ``score list`` show it."""

    id: str
    name: str
    status: str
    job_id: str | None = None  # the same as ``id``, or an older registry's job_… id
    run_id: str = ""  # the run whose model scored
    model: str = ""  # that run as a person knows it
    source_name: str = ""
    output: str = ""
    created_at: float | None = None
    rows_done: int = 0
    total_rows: int | None = None
    rows_per_s: float | None = None
    eta_s: float | None = None
    error: Any = None  # a message dict (rendered in the reader's language) or older plain text
    summary: dict[str, Any] | None = None
    fast_agreement: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _entry(folder: Path, job: dict[str, Any] | None, run_names: dict[str, str]) -> ScoreEntry:
    config = ScoreConfig.from_dict(read_json(folder / "score.json", {}) or {})
    status = read_json(folder / "status.json", {}) or {}
    state = job["status"] if job else status.get("status", "queued")
    error = status.get("reason") if state == "failed" else None
    return ScoreEntry(
        id=folder.name, name=config.name or folder.name, status=state, job_id=job["id"] if job else None,
        run_id=config.run_id, model=run_names.get(config.run_id, config.run_id),
        source_name=config.source_name or Path(config.input).name, output=config.output or "",
        created_at=config.created_at or (job["created_at"] if job else None) or folder.stat().st_mtime,
        rows_done=int(status.get("rows_done") or 0), total_rows=status.get("total_rows"),
        rows_per_s=status.get("rows_per_s"), eta_s=status.get("eta_s"),
        error=error or (job or {}).get("error"), summary=status.get("summary"),
        fast_agreement=status.get("fast_agreement"))


def list_scores(registry: Registry | None = None, lang: str = "en") -> list[ScoreEntry]:
    """Every scoring output in the workspace, newest first (background jobs, foreground and
    sharded runs alike: they all have a folder)."""
    from core.runs import list_runs

    registry = registry or Registry()
    jobs.reconcile(registry)
    by_score = {}
    for job in registry.jobs():  # newest first: the newest job of a score wins
        if job["kind"] == "score":
            by_score.setdefault(job["target"], job)
    run_names = {r["id"]: model_name(r) for r in list_runs(registry, lang)}  # run names in the reader's language
    folders = sorted((registry.root / "scores").glob("*/score.json"))
    entries = [_entry(p.parent, by_score.get(p.parent.name), run_names) for p in folders]
    return sorted(entries, key=lambda e: e.created_at or 0, reverse=True)


def get_score(score_id: str, registry: Registry | None = None) -> ScoreEntry:
    """A scoring output by its id (or an older registry's job id)."""
    for entry in list_scores(registry):
        if score_id in (entry.id, entry.job_id):
            return entry
    raise NotFoundError("score.err.not_found", score_id=score_id)



def file_stem(entry: ScoreEntry) -> str:
    """A download's file name (without extension) from the output's name: letters of any script,
    digits and dashes; "movie-reviews · quick → posts.csv" gives "movie-reviews-quick-posts" (the
    input's own extension is dropped, so a download is never named "…-csv.csv")."""
    name = re.sub(r"\.(csv|tsv|txt|xlsx|xls|json|jsonl|parquet)\b", "", entry.name, flags=re.IGNORECASE)
    return re.sub(r"[^\w-]+", "-", name).strip("-")[:80] or entry.id


def rename_score(score_id: str, name: str, registry: Registry | None = None) -> ScoreEntry:
    """Give a scoring output a new name (display text only: the folder keeps its id)."""
    registry = registry or Registry()
    entry = get_score(score_id, registry)
    path = score_folder(entry.id, registry) / "score.json"
    atomic_write_json(path, {**(read_json(path, {}) or {}), "name": check_display_name(name)})
    return get_score(entry.id, registry)


# ----------------------------------------------------------------------------------------
# Deleting, after saying what goes
# ----------------------------------------------------------------------------------------
def _size_text(size: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []


@dataclass
class Removal:
    """What deleting a scoring output removes: its folder, the copy of its input the workspace
    kept for it (when no other scoring output reads that copy), and its job records. An output
    file written outside the workspace (``--output``) is the person's own and stays."""

    entry: ScoreEntry
    rows: int
    folder: Path
    upload: Path | None = None
    files: int = 0
    size: int = 0
    kept_output: str | None = None

    @property
    def paths(self) -> list[Path]:
        return [self.folder] + ([self.upload] if self.upload is not None else [])

    def message(self, root: Path) -> Message:
        """The question to ask before deleting, naming every place that goes."""
        upload = msg("score.delete.upload", path=str(self.upload.relative_to(root))) if self.upload else ""
        keeps = msg("score.delete.keeps_output", path=self.kept_output) if self.kept_output else ""
        return msg("score.delete.confirm", name=self.entry.name, rows=format_count(self.rows),
                   files=format_count(self.files), size=_size_text(self.size),
                   folder=str(self.folder.relative_to(root)), upload=upload, keeps=keeps)


def _scored_rows(folder: Path, summary: dict[str, Any] | None) -> int:
    import pyarrow.parquet as pq

    if summary and summary.get("rows") is not None:
        return int(summary["rows"])
    return sum(pq.ParquetFile(p).metadata.num_rows for p in (folder / "parts").glob("part-*.parquet"))


def _own_upload(entry: ScoreEntry, registry: Registry) -> Path | None:
    """The staged copy of the input (``uploads/<id>/``) when only this scoring output reads it."""
    config = ScoreConfig.from_dict(read_json(score_folder(entry.id, registry) / "score.json", {}) or {})
    source = Path(config.input).resolve()
    uploads = (registry.root / "uploads").resolve()
    if source.parent.parent != uploads:
        return None
    others = (ScoreConfig.from_dict(read_json(p, {}) or {}).input for p in (registry.root / "scores").glob("*/score.json")
              if p.parent.name != entry.id)
    return None if any(Path(other).resolve() == source for other in others) else source.parent


def removal_plan(score_id: str, registry: Registry | None = None) -> Removal:
    """Everything deleting this scoring output would remove, to show before asking."""
    registry = registry or Registry()
    entry = get_score(score_id, registry)
    folder = score_folder(entry.id, registry)
    upload = _own_upload(entry, registry)
    files = _files(folder) + (_files(upload) if upload is not None else [])
    output = Path(entry.output).resolve() if entry.output else None
    outside = output is not None and output.exists() and registry.root.resolve() not in output.parents
    return Removal(entry, _scored_rows(folder, entry.summary), folder, upload, len(files),
                   sum(f.stat().st_size for f in files), str(output) if outside else None)


def delete_score(score_id: str, registry: Registry | None = None) -> Removal:
    """Delete a scoring output that is not queued or running; returns what was removed."""
    registry = registry or Registry()
    plan = removal_plan(score_id, registry)
    if plan.entry.status in jobs.ACTIVE:
        raise ConfigError("score.err.busy", name=plan.entry.name, status=msg(f"status.{plan.entry.status}"))
    registry.remove_jobs(plan.entry.id)
    for path in plan.paths:
        shutil.rmtree(path, ignore_errors=True)
    return plan


# ----------------------------------------------------------------------------------------
# The model the Score page offers first
# ----------------------------------------------------------------------------------------
def preferred_run(runs: list[dict[str, Any]], scores: list[ScoreEntry] | None = None) -> str | None:
    """Among finished runs of the most recently used dataset, the best by test accuracy.

    A dataset is used when a run trains on it or a model trained on it scores a file; the
    newest such moment decides. Ties in accuracy (or none measured) go to the newest run."""
    finished = {r["id"]: r for r in runs if r.get("status") == "succeeded"}
    if not finished:
        return None
    uses = [(r.get("created_at") or 0, r.get("dataset")) for r in finished.values()]
    uses += [(s.created_at or 0, finished[s.run_id].get("dataset")) for s in scores or [] if s.run_id in finished]
    dataset = max(uses, key=lambda use: use[0])[1]
    candidates = [r for r in finished.values() if r.get("dataset") == dataset]
    best = max(candidates, key=lambda r: (r.get("accuracy") is not None, r.get("accuracy") or 0.0,
                                          r.get("created_at") or 0))
    return best["id"]
