"""Start without labels: an unlabelled export becomes a zero-shot run and, as soon as the run is
ready, a scoring job of that very file, so an analyst goes from the export to scored trends
without labelling a row.

The two cannot be one job: a scoring job needs a finished run (``core.predict.require_finished``).
So the run's config carries the file (``ZeroShotConfig.score``), and the worker that carried out
the run queues the scoring job when the run has succeeded (:func:`queue_scoring`). Making the
label vectors takes seconds, so the file's scoring starts almost at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import jobs, scoring
from core.models import MULTILINGUAL_MODEL
from core.workspace import Registry, atomic_write_json, read_json
from core.zeroshot import (
    DEFAULT_TEMPERATURE,
    ZeroShotConfig,
    create_zeroshot_run,
    descriptions_from_form,
)


@dataclass
class Started:
    """What one click started: the run (queued as a job) and the file it will score."""

    run_dir: Path
    job: dict[str, Any]
    source_name: str


def start(data: bytes, filename: str, text_col: str, boxes: dict[str, str], registry: Registry | None = None,
          created_by: str | None = None, model: str = MULTILINGUAL_MODEL,
          temperature: float = DEFAULT_TEMPERATURE, lang: str = "en") -> Started:
    """Check the descriptions (one per line in each label's box) and the file's text column,
    keep a copy of the file, then create the zero-shot run and queue it. ``lang`` is the
    language the scoring job's readable name is made in."""
    registry = registry or Registry()
    descriptions = descriptions_from_form(boxes)
    name = Path(filename).name
    staged = scoring.stage_input(data, name, registry)
    follow = scoring.ScoreConfig(input=str(staged), text_col=text_col, source_name=name)
    try:
        scoring.check_texts(follow, staged)
        texts = scoring.preview(staged, 2000)[text_col].astype("str").tolist()
        config = ZeroShotConfig(labels=list(descriptions), descriptions=descriptions, model=model,
                                temperature=temperature, source=name,
                                score={"input": str(staged), "text_col": text_col, "source_name": name,
                                       "lang": lang})
        folder = create_zeroshot_run(config, registry, created_by, texts=texts)
    except BaseException:
        staged.unlink(missing_ok=True)
        staged.parent.rmdir()
        raise
    job = jobs.submit(folder, registry, created_by=created_by)
    return Started(folder, job, name)


def queue_scoring(run_dir: Path, registry: Registry | None = None) -> Path | None:
    """After a zero-shot run has succeeded: create and queue the scoring of the file its config
    names (once; the score's id is kept in the run's status). Returns the scoring job's folder."""
    registry = registry or Registry()
    run_dir = Path(run_dir)
    follow = (read_json(run_dir / "config.json", {}) or {}).get("score") or {}
    status = read_json(run_dir / "status.json", {}) or {}
    if not follow or status.get("status") != "succeeded" or status.get("score_id"):
        return None
    run = registry.run(run_dir.name) or {}
    config = scoring.ScoreConfig.from_dict({**follow, "run_id": run_dir.name})
    folder = scoring.create_score(config, registry, follow.get("lang", "en"))
    atomic_write_json(run_dir / "status.json", {**status, "score_id": folder.name})
    jobs.submit(folder, registry, run.get("created_by"), kind="score", job_id=folder.name)
    return folder
