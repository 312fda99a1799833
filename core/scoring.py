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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data import (
    FORMATS,
    choose_delimiter,
    clean_columns,
    detect_columns,
    detect_encoding,
    numeric_share,
    read_table,
)
from core.errors import ConfigError, DataError, OpinionLabError
from core.exporting import escape_formulas
from core.predict import Predictor, load_predictor
from core.workspace import Registry, atomic_write_json, disk_error, inside, new_id, read_json

EXCEL_MAX_ROWS = 1_048_575  # one row of the sheet is the header
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".xlsx": "excel"}


@dataclass
class ScoreConfig:
    """One scoring job."""

    run_id: str = field(default="", metadata={"help": "The finished run whose model scores the texts."})
    input: str = field(default="", metadata={"help": "CSV, TSV, Excel, JSON Lines or Parquet file of texts."})
    output: str = field(default="", metadata={"help": "Where the scored rows go (.csv, .parquet or .xlsx)."})
    text_col: str = field(default="", metadata={"help": "The column with the texts; detected when empty."})
    fast: bool = field(default=False, metadata={"help": "CPU only: int8 dynamic quantisation, ~2-3x faster."})
    batch_size: int = field(default=64, metadata={"help": "Texts per model call. 32-256."})
    chunk_rows: int = field(default=5000, metadata={"help": "Rows read, scored and saved at a time."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})
    score_id: str = field(default="", metadata={"help": "Set when the job is created."})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------
# Reading in chunks
# ----------------------------------------------------------------------------------------
def _head_bytes(path: Path, size: int = 1 << 20) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(size)
    cut = head.rfind(b"\n")
    return head[:cut + 1] if 0 < cut < len(head) - 1 else head


def iter_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows as DataFrames of strings, ``chunk_rows`` at a time."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"The input file {str(path)!r} does not exist. Check the path.")
    fmt = FORMATS.get(path.suffix.lower(), "csv")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        fmt = "parquet"
    elif magic == b"PK\x03\x04":
        fmt = "excel"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield clean_columns(batch.to_pandas(), [])
        except Exception as exc:  # pyarrow raises several kinds for damaged files
            raise DataError(f"{path.name!r} is not a readable Parquet file ({str(exc)[:120]}).") from exc
        return
    if fmt in ("excel", "json"):
        frame = read_table(path).frame
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start:start + chunk_rows].reset_index(drop=True)
        return
    head = _head_bytes(path)
    if not head.strip():
        raise DataError(f"The file {path.name!r} is empty.")
    encoding = detect_encoding(head, path.name)
    if fmt == "jsonl":
        reader = pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False, encoding=encoding)
    else:
        first_line = head.decode(encoding, errors="ignore").lstrip("\ufeff").splitlines()[0]
        delimiter = choose_delimiter(first_line, fmt) or ","
        # pandas' chunked C parser reads as it goes: its memory stays flat with the file size
        # (pyarrow's streaming CSV reader reads ahead in proportion to the file)
        reader = pd.read_csv(path, sep=delimiter, encoding=encoding, dtype=str, keep_default_na=False,
                             na_filter=False, chunksize=chunk_rows, on_bad_lines="error")
    rows = 0
    try:
        for chunk in reader:
            rows += len(chunk)
            yield clean_columns(chunk, [])
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name!r} is damaged after row {rows:,} ({str(exc).splitlines()[-1][:160]}). "
                        f"The {rows:,} rows before it were scored and kept; fix or cut the file and resume.") from exc


def count_rows(path: Path) -> int | None:
    """Rows in the file when cheap to know (Parquet metadata), else an estimate from its size."""
    path = Path(path)
    try:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # not Parquet: estimate below
        pass
    head = _head_bytes(path, 1 << 18)
    lines = max(head.count(b"\n"), 1)
    return max(1, int(path.stat().st_size / (len(head) / lines)) - 1)


# ----------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------
def quantize(predictor: Predictor) -> Predictor:
    """Dynamic int8 quantisation of the linear layers (CPU); the baseline is returned as is."""
    if predictor.kind != "transformer":
        return predictor
    import copy

    import torch

    model = copy.deepcopy(predictor.backend).to("cpu")
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return Predictor(predictor.labels, predictor.kind, predictor.max_length, quantized, predictor.tokenizer,
                     predictor.head_tokens, torch.device("cpu"))


def agreement(full: Predictor, fast: Predictor, texts: list[str]) -> float:
    """Share of texts on which the fast model picks the same label as full precision."""
    texts = [x for x in texts if x.strip()][:500]
    if not texts:
        return 1.0
    return float((full.predict_proba(texts).argmax(1) == fast.predict_proba(texts).argmax(1)).mean())


def score_frame(predictor: Predictor, frame: pd.DataFrame, text_col: str, batch_size: int = 64) -> pd.DataFrame:
    """``frame`` plus ``label``, ``confidence`` and ``prob_<label>``; empty texts get empty predictions."""
    texts = frame[text_col].astype("str").fillna("").str.strip()
    filled = np.flatnonzero((texts != "").to_numpy())
    probs = np.full((len(frame), len(predictor.labels)), np.nan, dtype=np.float32)
    if len(filled):
        probs[filled] = predictor.predict_proba(texts.iloc[filled].tolist(), batch_size=batch_size)
    out = frame.copy()
    labels = np.array(predictor.labels, dtype=object)
    best = np.where(np.isnan(probs).any(axis=1), -1, np.nan_to_num(probs).argmax(axis=1))
    out["label"] = np.where(best >= 0, labels[np.maximum(best, 0)], "")
    out["confidence"] = np.nanmax(np.where(np.isnan(probs), -1, probs), axis=1).clip(min=0)
    out.loc[best < 0, "confidence"] = np.nan
    for i, lab in enumerate(predictor.labels):
        out[f"prob_{lab}"] = probs[:, i]
    return out


def score_folder(score_id: str, registry: Registry | None = None) -> Path:
    """The folder of a scoring job; ids are generated, so anything else is refused outright."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,80}", str(score_id)):
        raise ConfigError(f"{score_id!r} is not a scoring job id (they look like score_1a2b3c4d5e6f).")
    registry = registry or Registry()
    return inside(registry.root, "scores", score_id)


def create_score(config: ScoreConfig, registry: Registry | None = None) -> Path:
    """Check the inputs and write the job's folder with its config."""
    from core.predict import require_finished

    registry = registry or Registry()
    require_finished(config.run_id, registry)
    source = Path(config.input)
    if not source.is_file():
        raise DataError(f"The input file {config.input!r} does not exist. Check the path.")
    if config.output:
        out = Path(config.output)
        if out.suffix.lower() not in OUTPUT_FORMATS:
            raise ConfigError(f"The output {out.name!r} must end in .csv, .parquet or .xlsx.")
        if out.exists() and not config.overwrite:
            raise ConfigError(f"The output file {config.output!r} already exists. Choose another name, or pass "
                              "--overwrite to replace it.")
    first = next(iter_chunks(source, min(config.chunk_rows, 2000)), None)
    if first is None or len(first) == 0:
        raise DataError(f"{source.name!r} has no rows to score.")
    if not config.text_col:
        config.text_col = detect_columns(first).text or ""
    columns = ", ".join(map(repr, first.columns))
    if not config.text_col or config.text_col not in first.columns:
        raise DataError(f"No text column {config.text_col or ''!r} in {source.name!r}: columns are {columns}. "
                        "Name the column with the texts (--text-col).")
    if numeric_share(first[config.text_col].astype("str")) >= 0.95:
        raise DataError(f"The column {config.text_col!r} of {source.name!r} holds only numbers, not texts. "
                        f"Choose the column with the reviews; columns are {columns}.")
    if (first[config.text_col].astype("str").str.strip() == "").all():
        raise DataError(f"The text column {config.text_col!r} is empty in the first {len(first):,} rows of "
                        f"{source.name!r}. Choose the column with the texts; columns are {columns}.")
    if config.batch_size < 1 or config.chunk_rows < 1:
        raise ConfigError("Batch size and chunk rows must be at least 1.")
    config.score_id = config.score_id or new_id("score")
    folder = score_folder(config.score_id, registry)
    (folder / "parts").mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "score.json", config.to_dict())
    atomic_write_json(folder / "status.json", {"status": "queued", "rows_done": 0})
    return folder


def run_scoring(folder: Path, shard: tuple[int, int] = (0, 1), progress_log: bool = True) -> dict[str, Any]:
    """Score every chunk that has no part yet (of this shard), then merge when all are there."""
    folder = Path(folder)
    config = ScoreConfig(**read_json(folder / "score.json"))
    status_path = folder / "status.json"
    previous = read_json(status_path, {}) or {}
    started = time.time()

    def log(event: str, **values: Any) -> None:
        if progress_log:
            with open(folder / "progress.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"event": event, "time": time.time(), **values}, default=float) + "\n")

    def status(state: str, **values: Any) -> None:
        record = {**(read_json(status_path, {}) or {}), "status": state, "pid": os.getpid(),
                  "updated_at": time.time(), **values}
        atomic_write_json(status_path, record)

    predictor = load_predictor(config.run_id)
    fast_agreement = previous.get("fast_agreement")
    if config.fast and predictor.kind == "transformer" and predictor.device.type == "cpu":
        fast = quantize(predictor)
        if fast_agreement is None:  # measured once, on the first rows, and shown to the user
            sample = next(iter_chunks(Path(config.input), 500))[config.text_col].astype("str").tolist()
            fast_agreement = agreement(predictor, fast, sample)
            log("fast_mode", agreement=fast_agreement)
        predictor = fast
    total = count_rows(Path(config.input))
    status("running", total_rows=total, reason=None, fast_agreement=fast_agreement)
    log("start", total_rows=total, shard=list(shard))
    index, rows_done, new_rows = 0, 0, 0
    started = time.time()  # rows/s counts scoring only, not loading the model
    stop = {"requested": False}
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    try:
        for index, chunk in enumerate(iter_chunks(Path(config.input), config.chunk_rows)):
            if stop["requested"]:  # cooperative stop: every finished chunk is kept for resume
                status("cancelled", reason="stopped by the user; resume continues with the next chunk")
                log("stopped", rows_done=rows_done)
                return {"status": "cancelled", "score_id": config.score_id}
            part = folder / "parts" / f"part-{index:06d}.parquet"
            if index % shard[1] != shard[0] or part.exists():
                rows_done += len(chunk)
                continue
            scored = score_frame(predictor, chunk, config.text_col, config.batch_size)
            tmp = part.with_name(f".{part.name}.tmp")
            try:
                scored.to_parquet(tmp, index=False)
                os.replace(tmp, part)
            except OSError as exc:  # a full disk: the parts before this one stay, resume continues here
                tmp.unlink(missing_ok=True)
                raise disk_error(part, exc) from exc
            rows_done += len(chunk)
            new_rows += len(chunk)
            elapsed = max(time.time() - started, 1e-6)
            rate = new_rows / elapsed
            eta = max((total or rows_done) - rows_done, 0) / rate if rate else None
            log("chunk", chunk=index, rows_done=rows_done, total_rows=total, rows_per_s=rate, eta_s=eta)
            del scored, chunk
            _release_memory()
            status("running", rows_done=rows_done, total_rows=max(total or 0, rows_done), rows_per_s=rate, eta_s=eta)
        if shard[1] > 1 and not all((folder / "parts" / f"part-{i:06d}.parquet").exists() for i in range(index + 1)):
            status("running", reason="waiting for the other shards")
            return {"status": "partial", "score_id": config.score_id}
        try:
            summary = merge_parts(folder)
        except OSError as exc:  # the parts stay: resume merges again once there is space
            raise disk_error(Path(config.output or folder / "scored.parquet"), exc) from exc
    except Exception as exc:
        reason = str(exc) if isinstance(exc, OpinionLabError) else f"{type(exc).__name__}: {exc}"
        status("failed", reason=reason)
        log("failed", reason=reason)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    rate = new_rows / max(time.time() - started, 1e-6)
    summary.update({"rows_per_s": rate, "fast": config.fast, "fast_agreement": fast_agreement})
    atomic_write_json(folder / "summary.json", summary)
    status("succeeded", rows_done=summary["rows"], total_rows=summary["rows"], eta_s=0, summary=summary)
    log("done", **{k: v for k, v in summary.items() if k != "label_counts"})
    return summary


def merge_parts(folder: Path) -> dict[str, Any]:
    """Concatenate the parts in order into scored.parquet and the requested output."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    config = ScoreConfig(**read_json(folder / "score.json"))
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
    output = config.output or str(canonical)
    if config.output:
        write_output(canonical, Path(config.output), config.text_col)
    return {"rows": rows, "scored": rows - empty, "empty": empty, "output": output, "label_counts": label_counts,
            "mean_confidence": conf_sum / conf_n if conf_n else None,
            "low_confidence_share": low / conf_n if conf_n else None, "score_id": config.score_id}


def write_output(scored: Path, output: Path, text_col: str | None = None) -> None:
    """Write the scored rows as CSV (formula-escaped text cells), Parquet or Excel, atomically."""
    fmt = OUTPUT_FORMATS.get(output.suffix.lower())
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        _write(scored, tmp, fmt)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the previous output, if any, stays as it was
        raise


def _write(scored: Path, tmp: Path, fmt: str | None) -> None:
    import pyarrow.parquet as pq

    if fmt == "parquet":  # streamed row group by row group: memory stays flat whatever the size
        with pq.ParquetWriter(tmp, pq.ParquetFile(scored).schema_arrow) as writer:
            for table in _row_groups(scored):
                writer.write_table(table)
    elif fmt == "excel":
        frame = pd.read_parquet(scored)
        if len(frame) > EXCEL_MAX_ROWS:
            raise ConfigError(f"{len(frame):,} rows do not fit in an Excel sheet ({EXCEL_MAX_ROWS:,} at most). "
                              "Write CSV or Parquet instead.")
        escape_formulas(frame).to_excel(tmp, index=False, engine="openpyxl")
    else:
        first = True
        with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
            for table in _row_groups(scored):
                escape_formulas(table.to_pandas()).to_csv(fh, index=False, header=first)
                first = False


def _release_memory() -> None:
    """Hand freed heap pages back to the OS after each chunk: batches of many different shapes
    otherwise leave glibc's heap fragmented, and the process grows with the number of chunks."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _row_groups(path: Path) -> Iterator[Any]:
    """A Parquet file's row groups one at a time, their buffers handed back after each.

    (``iter_batches`` with read-ahead grew with the file: +125 MB for 1M rows, +155 MB for 2M.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path, pre_buffer=False)
    pool = pa.default_memory_pool()
    for i in range(source.num_row_groups):
        yield source.read_row_group(i)
        pool.release_unused()


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 1)
    try:
        i, n = (int(x) for x in text.split("/"))
        assert 0 <= i < n
    except (ValueError, AssertionError):
        raise ConfigError(f"--shard must look like 0/4 (this worker's number / workers), not {text!r}.") from None
    return (i, n)


def stage_input(data: bytes, filename: str, registry: Registry | None = None) -> Path:
    """Save an uploaded file under a generated name (only its extension is kept) for a job to read."""
    from core.workspace import atomic_write_bytes

    registry = registry or Registry()
    ext = Path(filename).suffix.lower()
    if ext not in FORMATS:
        raise DataError(f"{filename!r} is not a supported file: use CSV, TSV, TXT, Excel, JSON Lines or Parquet.")
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
