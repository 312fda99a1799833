"""Bulk scoring: the same rows back, with the predicted label, its confidence and every class's
probability, from a few rows to millions.

The input is read and scored in chunks, so memory stays flat whatever the file size. Each
scored chunk is written as its own Parquet part (atomically) in the score folder; a killed job
resumes from the first missing part, and the parts are merged in order into the output, so
every row appears exactly once. ``--shard i/n`` lets several processes (or GPUs) score
interleaved chunks of one file; ``merge_parts`` then writes the output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data import FORMATS, detect_columns, numeric_share
from core.errors import ConfigError, DataError, OpinionLabError
from core.exporting import Export
from core.i18n import msg
from core.predict import Predictor, load_predictor
from core.score_io import (  # noqa: F401  (re-exported: callers read inputs and write outputs through scoring)
    EXCEL_MAX_ROWS,
    OUTPUT_FORMATS,
    ChunkReader,
    count_rows,
    iter_chunks,
    release_memory,
    write_output,
)
from core.workspace import Registry, atomic_write_json, disk_error, inside, new_id, read_json

PROGRESS_BATCHES = 8  # batches per progress update: ~8 s apart at 60 rows/s on a CPU
STATUS_EVERY_S = 1.0  # the status file is rewritten at most this often within a chunk


@dataclass
class ScoreConfig:
    """One scoring job."""

    run_id: str = field(default="", metadata={"help": "The finished run whose model scores the texts."})
    input: str = field(default="", metadata={"help": "CSV, TSV, Excel, JSON Lines or Parquet file of texts."})
    output: str = field(default="", metadata={"help": "Where the scored rows go (.csv, .parquet or .xlsx)."})
    text_col: str = field(default="", metadata={"help": "The column with the texts; detected when empty."})
    fast: bool = field(default=False, metadata={
        "help": "CPU only: the model in int8 on onnxruntime (built once per run, then reused), ~2-3x faster."})
    batch_size: int = field(default=64, metadata={"help": "Texts per model call. 32-256."})
    chunk_rows: int = field(default=5000, metadata={"help": "Rows read, scored and saved at a time."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})
    csv_guard: bool = field(default=True, metadata={
        "help": "CSV output for spreadsheets: cells a spreadsheet would run as formulas get a leading "
                "apostrophe. False writes every cell unchanged (for other tools)."})
    name: str = field(default="", metadata={"help": "A readable name (\"model → input file\"); editable."})
    source_name: str = field(default="", metadata={
        "help": "The input as the person knows it (the uploaded file's name, a dataset); shown, never a path."})
    created_at: float = field(default=0.0, metadata={"help": "When the job was created (epoch seconds)."})
    score_id: str = field(default="", metadata={"help": "Set when the job is created; also its job's id."})
    engine: str = field(default="local", metadata={
        "help": "'local' scores in this process; 'ray' on a Ray cluster (core.ray_engine)."})
    address: str = field(default="", metadata={
        "help": "Ray only: 'auto', 'HOST:6379' or 'ray://HOST:10001'; empty starts Ray on this machine."})
    workers: int = field(default=2, metadata={"help": "Ray only: actors that each load the model once. 1-1000."})
    gpus_per_worker: float = field(default=0.0, metadata={"help": "Ray only: GPUs per actor; 0 = CPU. 0-8."})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ScoreConfig:
        """Older score.json files lack the newer fields (their defaults apply); unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


NAME_MAX_CHARS = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_display_name(name: str) -> str:
    """A name a person gave a scoring output: display text only (never a path), one line."""
    cleaned = str(name or "").strip()
    if not cleaned or len(cleaned) > NAME_MAX_CHARS or _CONTROL.search(cleaned):
        raise ConfigError("score.err.bad_name", name=cleaned[:40], limit=NAME_MAX_CHARS)
    return cleaned


def model_name(run: dict[str, Any]) -> str:
    """A run as a person knows it: its own name, else "dataset · preset" (e.g. "movie-reviews · quick")."""
    if run.get("name"):
        return str(run["name"])
    parts = [run.get("dataset"), run.get("preset") or run.get("method")]
    return " · ".join(str(p) for p in parts if p) or str(run.get("id", ""))


def default_name(model: str, source: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """"model → input file", numbered when that name is already taken: "… → posts.csv (2)"."""
    base = f"{model} → {source}"[:NAME_MAX_CHARS - 5]
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} ({n})"
    return name


def _names_in_use(registry: Registry) -> set[str]:
    return {(read_json(p, {}) or {}).get("name", "") for p in (registry.root / "scores").glob("*/score.json")}


# ----------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------
def fast_predictor(predictor: Predictor, run_id: str, batch_size: int = 64,
                   registry: Registry | None = None) -> Predictor:
    """The run's model on onnxruntime int8 (cached in the run's model folder); other kinds as they are.

    onnxruntime, not ``torch.ao.quantization.quantize_dynamic``: torch 2.13 deprecates that."""
    from core.predict import run_folder

    folder = run_folder(run_id, registry) / "model"
    if predictor.kind != "transformer" or (read_json(folder / "labels.json", {}) or {}).get("kind") == "adapter":
        return predictor  # baselines are fast already; virtual-token adapters do not export to ONNX
    from core.modeling.onnx_backend import int8_predictor

    return int8_predictor(predictor, folder, batch_size)


def agreement(full: Predictor, fast: Predictor, texts: list[str]) -> float:
    """Share of texts on which the fast model picks the same label as full precision."""
    texts = [x for x in texts if x.strip()][:500]
    if not texts:
        return 1.0
    return float((full.predict_proba(texts).argmax(1) == fast.predict_proba(texts).argmax(1)).mean())


def score_frame(predictor: Predictor, frame: pd.DataFrame, text_col: str, batch_size: int = 64,
                on_rows: Callable[[int], None] | None = None) -> pd.DataFrame:
    """``frame`` plus ``label``, ``confidence`` and ``prob_<label>``; empty texts get empty predictions.

    The texts are predicted a slice at a time and ``on_rows(rows of frame done)`` is called after
    each, so a chunk of thousands of rows still shows its progress every few seconds."""
    texts = frame[text_col].astype("str").fillna("").str.strip()
    filled = np.flatnonzero((texts != "").to_numpy())
    probs = np.full((len(frame), len(predictor.labels)), np.nan, dtype=np.float32)
    step = max(batch_size * PROGRESS_BATCHES, 256)  # slices long enough to keep length-sorted batches tight
    for start in range(0, len(filled), step):
        rows = filled[start:start + step]
        probs[rows] = predictor.predict_proba(texts.iloc[rows].tolist(), batch_size=batch_size)
        if on_rows is not None:
            on_rows(int(rows[-1]) + 1)
    out = frame.copy()
    labels = np.array(predictor.labels, dtype=object)
    best = np.where(np.isnan(probs).any(axis=1), -1, np.nan_to_num(probs).argmax(axis=1))
    out["label"] = np.where(best >= 0, labels[np.maximum(best, 0)], "")
    out["confidence"] = np.nanmax(np.where(np.isnan(probs), -1, probs), axis=1).clip(min=0)
    out.loc[best < 0, "confidence"] = np.nan
    for i, lab in enumerate(predictor.labels):
        out[f"prob_{lab}"] = probs[:, i]
    return out


@dataclass
class RateMeter:
    """Rows per second of the recent past, for the live rate and ETA.

    An exponential average over time with a half-life of ``half_life_s``: a machine that gets
    busier (or freer) shows in the rate within about a minute, and one slow slice does not swing
    the ETA; the mean since the start would still promise the old speed long after it changed."""

    started: float
    half_life_s: float = 30.0
    rate: float | None = None
    _last_time: float | None = None
    _last_rows: int = 0

    def update(self, now: float, rows: int) -> float | None:
        """``rows`` scored in total by ``now``; returns the smoothed rate."""
        last = self.started if self._last_time is None else self._last_time
        seconds = now - last
        if seconds <= 0:
            return self.rate
        instant = (rows - self._last_rows) / seconds
        weight = 1.0 if self.rate is None else 1.0 - 0.5 ** (seconds / self.half_life_s)
        self.rate = instant if self.rate is None else self.rate + weight * (instant - self.rate)
        self._last_time, self._last_rows = now, rows
        return self.rate

    def eta(self, remaining: int) -> float | None:
        return remaining / self.rate if self.rate else None


def score_folder(score_id: str, registry: Registry | None = None) -> Path:
    """The folder of a scoring job; ids are generated, so anything else is refused outright."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,80}", str(score_id)):
        raise ConfigError("score.err.bad_id", score_id=str(score_id)[:80])
    registry = registry or Registry()
    return inside(registry.root, "scores", score_id)


def _check_output(config: ScoreConfig) -> None:
    if not config.output:
        return
    out = Path(config.output)
    if out.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError("score.err.output_format", filename=out.name)
    if out.exists() and not config.overwrite:
        raise ConfigError("score.err.output_exists", path=config.output)


def check_texts(config: ScoreConfig, source: Path) -> None:
    """The text column exists and holds texts (detected when not named), judged on the first rows."""
    first = next(iter_chunks(source, min(config.chunk_rows, 2000)), None)
    if first is None or len(first) == 0:
        raise DataError("score.err.no_rows", filename=source.name)
    if not config.text_col:
        config.text_col = detect_columns(first).text or ""
    columns = ", ".join(map(repr, first.columns))
    if not config.text_col or config.text_col not in first.columns:
        raise DataError("score.err.no_text_col", column=config.text_col, filename=source.name, columns=columns)
    texts = first[config.text_col].astype("str")
    if numeric_share(texts) >= 0.95:
        raise DataError("score.err.numbers_only", column=config.text_col, filename=source.name, columns=columns)
    if (texts.str.strip() == "").all():
        raise DataError("score.err.empty_texts", column=config.text_col, rows=f"{len(first):,}",
                        filename=source.name, columns=columns)


def create_score(config: ScoreConfig, registry: Registry | None = None, lang: str = "en",
                 sample: Path | None = None) -> Path:
    """Check the inputs and write the job's folder with its config and its readable name (made
    in ``lang``, the language of the person who starts it; editable afterwards). ``sample`` is
    the file whose first rows are checked when the input names several (a folder, a glob)."""
    from core.predict import require_finished
    from core.runs import list_runs

    registry = registry or Registry()
    require_finished(config.run_id, registry)
    source = Path(sample or config.input)
    if not source.is_file():
        raise DataError("score.err.no_input", path=config.input)
    _check_output(config)
    check_texts(config, source)
    if config.batch_size < 1 or config.chunk_rows < 1:
        raise ConfigError("score.err.sizes")
    config.score_id = config.score_id or new_id("score")
    config.source_name = config.source_name or source.name
    if config.name:
        config.name = check_display_name(config.name)
    else:
        run = next((r for r in list_runs(registry, lang) if r["id"] == config.run_id), {"id": config.run_id})
        config.name = default_name(model_name(run), config.source_name, _names_in_use(registry))
    config.created_at = config.created_at or time.time()
    folder = score_folder(config.score_id, registry)
    (folder / "parts").mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "score.json", config.to_dict())
    atomic_write_json(folder / "status.json", {"status": "queued", "rows_done": 0})
    return folder


@dataclass
class _Progress:
    """Where a scoring job stands: its status file (read by the page and ``jobs list``) and its
    progress log. ``rows_done`` counts data rows of finished chunks, skipped ones included;
    ``new_rows`` only those this process scored, so the rate is the machine's real speed."""

    folder: Path
    log_events: bool = True
    total: int | None = None
    rows_done: int = 0
    new_rows: int = 0
    started: float = field(default_factory=time.time)
    meter: RateMeter = field(default_factory=lambda: RateMeter(time.time()))
    _written: float = 0.0

    def status(self, state: str, **values: Any) -> None:
        path = self.folder / "status.json"
        record = {**(read_json(path, {}) or {}), "status": state, "pid": os.getpid(), "updated_at": time.time(),
                  **values}
        atomic_write_json(path, record)
        self._written = time.time()

    def log(self, event: str, **values: Any) -> None:
        if self.log_events:
            with open(self.folder / "progress.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"event": event, "time": time.time(), **values}, default=float) + "\n")

    def start(self, total: int) -> None:
        self.total, self.started, self.meter = total, time.time(), RateMeter(time.time())
        self.status("running", rows_done=0, total_rows=total, rows_per_s=None, eta_s=None, reason=None)

    def _running(self, rows_done: int, new_rows: int) -> dict[str, Any]:
        rate = self.meter.update(time.time(), new_rows)
        total = max(self.total or 0, rows_done)
        values = {"rows_done": rows_done, "total_rows": total, "rows_per_s": rate,
                  "eta_s": self.meter.eta(total - rows_done)}
        self.status("running", **values)
        return values

    def within_chunk(self, rows_in_chunk: int) -> None:
        if time.time() - self._written >= STATUS_EVERY_S:
            self._running(self.rows_done + rows_in_chunk, self.new_rows + rows_in_chunk)

    def chunk_done(self, index: int, rows: int) -> None:
        self.rows_done, self.new_rows = self.rows_done + rows, self.new_rows + rows
        self.log("chunk", chunk=index, **self._running(self.rows_done, self.new_rows))

    def mean_rate(self) -> float:
        return self.new_rows / max(time.time() - self.started, 1e-6)


def _reason(exc: BaseException) -> Any:
    """What a failed job's status says: the message (rendered later in the reader's language)."""
    if isinstance(exc, OpinionLabError) and exc.message is not None:
        return exc.message.to_dict()
    return str(exc) if isinstance(exc, OpinionLabError) else f"{type(exc).__name__}: {exc}"


def _model(config: ScoreConfig, previous: dict[str, Any], progress: _Progress) -> tuple[Predictor, float | None]:
    """The run's model (int8 in fast mode on a CPU) and fast mode's agreement with full precision."""
    predictor = load_predictor(config.run_id)
    fast_agreement = previous.get("fast_agreement")
    if config.fast and predictor.kind == "transformer" and predictor.device.type == "cpu":
        fast = fast_predictor(predictor, config.run_id, config.batch_size)
        if fast_agreement is None:  # measured once, on the first rows, and shown to the user
            sample = next(iter_chunks(Path(config.input), 500))[config.text_col].astype("str").tolist()
            fast_agreement = agreement(predictor, fast, sample)
            progress.log("fast_mode", agreement=fast_agreement)
        predictor = fast
    return predictor, fast_agreement


def _score_chunks(config: ScoreConfig, reader: ChunkReader, predictor: Predictor, progress: _Progress,
                  shard: tuple[int, int], stop: dict[str, bool]) -> dict[str, Any] | None:
    """Score every chunk of this shard that has no part yet; a result when the job ends early."""
    folder, index = progress.folder, -1
    for index, chunk in enumerate(reader):
        if stop["requested"]:  # cooperative stop: every finished chunk is kept for resume
            progress.status("cancelled", reason=msg("score.reason.stopped").to_dict())
            progress.log("stopped", rows_done=progress.rows_done)
            return {"status": "cancelled", "score_id": config.score_id}
        part = folder / "parts" / f"part-{index:06d}.parquet"
        if index % shard[1] != shard[0] or part.exists():
            progress.rows_done += len(chunk)
            continue
        scored = score_frame(predictor, chunk, config.text_col, config.batch_size, progress.within_chunk)
        tmp = part.with_name(f".{part.name}.tmp")
        try:
            scored.to_parquet(tmp, index=False)
            os.replace(tmp, part)
        except OSError as exc:  # a full disk: the parts before this one stay, resume continues here
            tmp.unlink(missing_ok=True)
            raise disk_error(part, exc) from exc
        progress.chunk_done(index, len(chunk))
        del scored, chunk
        release_memory()
    if shard[1] > 1 and not all((folder / "parts" / f"part-{i:06d}.parquet").exists() for i in range(index + 1)):
        progress.status("running", reason=msg("score.reason.waiting_shards").to_dict())
        return {"status": "partial", "score_id": config.score_id}
    return None


def run_scoring(folder: Path, shard: tuple[int, int] = (0, 1), progress_log: bool = True) -> dict[str, Any]:
    """Score every chunk that has no part yet (of this shard), then merge when all are there."""
    folder = Path(folder)
    config = ScoreConfig.from_dict(read_json(folder / "score.json"))
    previous = read_json(folder / "status.json", {}) or {}
    progress = _Progress(folder, progress_log)
    stop = {"requested": False}
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    try:
        predictor, fast_agreement = _model(config, previous, progress)
        progress.status("running", fast_agreement=fast_agreement, reason=None)
        reader = ChunkReader(config.input, config.chunk_rows)  # one reader: a workbook is read once
        progress.start(reader.total_rows())
        progress.log("start", total_rows=progress.total, shard=list(shard))
        ended = _score_chunks(config, reader, predictor, progress, shard, stop)
        if ended is not None:
            return ended
        try:
            summary = merge_parts(folder)
        except OSError as exc:  # the parts stay: resume merges again once there is space
            raise disk_error(Path(config.output or folder / "scored.parquet"), exc) from exc
    except Exception as exc:
        progress.status("failed", reason=_reason(exc))
        progress.log("failed", reason=str(exc))
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    summary.update({"rows_per_s": progress.mean_rate(), "fast": config.fast, "fast_agreement": fast_agreement})
    atomic_write_json(folder / "summary.json", summary)
    progress.status("succeeded", rows_done=summary["rows"], total_rows=summary["rows"], eta_s=0, summary=summary)
    progress.log("done", **{k: v for k, v in summary.items() if k not in ("label_counts", "export_notice")})
    return summary


def merge_parts(folder: Path) -> dict[str, Any]:
    """Concatenate the parts in order into scored.parquet and the requested output."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    config = ScoreConfig.from_dict(read_json(folder / "score.json"))
    parts = sorted((folder / "parts").glob("part-*.parquet"))
    canonical = folder / "scored.parquet"
    tmp = folder / ".scored.parquet.tmp"
    rows, empty, label_counts, conf_sum, conf_n, low = 0, 0, {}, 0.0, 0, 0
    writer = None
    pool = pa.default_memory_pool()
    for part in parts:  # one part in memory at a time
        pool.release_unused()  # hand freed Arrow buffers back, so the peak does not creep up
        table = pq.read_table(part)
        frame = table.select(["label", "confidence"]).to_pandas()
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table.cast(writer.schema) if table.schema != writer.schema else table)
        rows += len(frame)
        empty += int((frame["label"] == "").sum())
        for lab, n in frame.loc[frame["label"] != "", "label"].value_counts().items():
            label_counts[lab] = label_counts.get(lab, 0) + int(n)
        conf = frame["confidence"].dropna()
        conf_sum, conf_n, low = conf_sum + float(conf.sum()), conf_n + len(conf), low + int((conf < 0.6).sum())
    if writer is not None:
        writer.close()
        os.replace(tmp, canonical)
    else:
        pd.DataFrame().to_parquet(canonical)
    written = write_output(canonical, Path(config.output), config.csv_guard) if config.output else Export()
    notice = written.notice()
    return {"rows": rows, "scored": rows - empty, "empty": empty, "output": config.output or str(canonical),
            "label_counts": label_counts, "mean_confidence": conf_sum / conf_n if conf_n else None,
            "low_confidence_share": low / conf_n if conf_n else None, "score_id": config.score_id,
            "escaped_cells": written.escaped_cells, "cleaned_cells": written.cleaned_cells,
            "export_notice": notice.to_dict() if notice else None}


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 1)
    try:
        i, n = (int(x) for x in text.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise ConfigError("score.err.bad_shard", value=text) from None
    return (i, n)


def stage_input(data: bytes, filename: str, registry: Registry | None = None) -> Path:
    """Save an uploaded file under a generated name (only its extension is kept) for a job to read."""
    from core.workspace import atomic_write_bytes

    registry = registry or Registry()
    ext = Path(filename).suffix.lower()
    if ext not in FORMATS:
        raise DataError("score.err.unsupported_file", filename=filename)
    path = inside(registry.root, "uploads", new_id("up"), f"input{ext}")
    atomic_write_bytes(path, data)
    return path


def stage_dataset(name: str, registry: Registry | None = None) -> Path:
    """A saved dataset's rows as a Parquet input file."""
    from core.datasets import load_rows

    registry = registry or Registry()
    path = inside(registry.root, "uploads", new_id("up"), "input.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    load_rows(name, registry=registry).to_parquet(path, index=False)
    return path


def preview(path: Path, rows: int = 100) -> pd.DataFrame:
    return next(iter_chunks(Path(path), rows), pd.DataFrame())


def scored_frame(score_id: str, registry: Registry | None = None) -> pd.DataFrame:
    return pd.read_parquet(score_folder(score_id, registry) / "scored.parquet")
