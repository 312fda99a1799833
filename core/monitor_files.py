"""A monitor's files: where new posts land, what has been read of them, and the scored history.

Each run plans its reading from the ledger: every path it has seen, remembered by size,
modification time and content hash (SHA-256), with how far it was read. A file is then

- ``new``: never seen; read whole (unless the same content was read under another name);
- ``grown``: its old content is an unchanged prefix (an export or log that is appended to);
  text formats are read from the byte where the last run stopped, others from the next row;
- ``rewritten``: changed in place; the rows past those already read are read;
- ``unchanged``, or ``fresh``: modified within the last ``settle`` seconds, so perhaps still being
  copied; it waits for the next run.

The scored rows go to the history: Parquet parts in ``history/``, each written under a temporary
name and renamed. The ledger and the list of parts are one JSON file, replaced atomically after
the parts exist; that rename is the commit point, so a crash leaves either the old state (and
stray parts, deleted by the next run) or the new one, and no row is ever counted twice.
"""

from __future__ import annotations

import glob
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data import FORMATS
from core.errors import DataError
from core.i18n import Message, msg
from core.workspace import atomic_write_json, read_json

SOURCE_KINDS = ("folder", "glob", "file")
TEXT_FORMATS = ("csv", "tsv", "txt", "jsonl")  # formats read from a byte offset when they grow
_TEMPORARY = (".", "~$")  # copy tools' partial files (.name.XXXX) and Office's lock files
_BLOCK = 1 << 20
CHUNK_ROWS = 5000  # rows read and scored at a time
MAX_PARTS = 64  # more history parts than this are merged into one (reading thousands of small files is slow)


@dataclass
class Source:
    """Where new export files land: a ``folder``, a ``glob`` pattern, or one ``file`` that grows."""

    kind: str
    path: str

    def validate(self) -> Source:
        if self.kind not in SOURCE_KINDS:
            raise DataError("monitors.err.source_kind", kind=self.kind, kinds=", ".join(SOURCE_KINDS))
        if not str(self.path).strip():
            raise DataError("monitors.err.source_empty")
        return self

    def files(self) -> list[Path]:
        """The supported files the source holds now, oldest first; an error when it cannot be read."""
        path = Path(self.path).expanduser()
        if self.kind == "file":
            if not path.is_file():
                raise DataError("monitors.err.file_missing", path=str(path))
            if not os.access(path, os.R_OK):
                raise DataError("monitors.err.source_unreadable", path=str(path))
            return [path]
        folder = path if self.kind == "folder" else Path(_fixed_prefix(str(path)))
        if not folder.is_dir():
            raise DataError("monitors.err.folder_missing", path=str(folder))
        if not os.access(folder, os.R_OK | os.X_OK):
            raise DataError("monitors.err.source_unreadable", path=str(folder))
        found = folder.iterdir() if self.kind == "folder" else map(Path, glob.glob(str(path), recursive=True))
        files = [p for p in found if p.suffix.lower() in FORMATS and not p.name.startswith(_TEMPORARY)
                 and p.is_file()]
        return sorted(files, key=lambda p: (_mtime_ns(p), str(p)))

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _fixed_prefix(pattern: str) -> str:
    """The folder part of a glob pattern before its first wildcard."""
    head = pattern.split("*")[0].split("?")[0].split("[")[0]
    return head if head.endswith(os.sep) else os.path.dirname(head) or "."


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@dataclass
class FileRecord:
    """What the ledger remembers about one path."""

    size: int
    mtime_ns: int
    sha256: str  # of the file's first ``size`` bytes
    offset: int = 0  # bytes read: text formats resume here when the file grows
    rows: int = 0  # rows read
    status: str = "read"  # read | skipped
    note: dict | None = None  # why it was skipped, as a message dict

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Work:
    """One file to read in this run, and from where."""

    path: Path
    action: str  # new | grown | rewritten
    size: int
    mtime_ns: int
    sha256: str
    offset: int = 0
    skip_rows: int = 0
    known_rows: int = 0
    end: int | None = None  # bytes read when a text file was cut at its last complete record

    @property
    def text_format(self) -> bool:
        return FORMATS.get(self.path.suffix.lower()) in TEXT_FORMATS


@dataclass
class Skipped:
    path: str
    reason: Message

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason.to_dict()}


@dataclass
class Plan:
    work: list[Work] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    unchanged: int = 0
    seen: dict[str, FileRecord] = field(default_factory=dict)  # ledger updates that need no reading


def _hashes(path: Path, prefix: int | None = None) -> tuple[str, str | None, int]:
    """SHA-256 of the whole file and of its first ``prefix`` bytes, in one pass; and the size read."""
    whole, head, done = hashlib.sha256(), None, 0
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            if prefix is not None and head is None and done + len(block) >= prefix:
                whole.update(block[:prefix - done])
                head = whole.hexdigest()
                whole.update(block[prefix - done:])
            else:
                whole.update(block)
            done += len(block)
    if prefix is not None and head is None and done == prefix:
        head = whole.hexdigest()
    return whole.hexdigest(), head, done


def plan(files: list[Path], ledger: dict[str, FileRecord], settle_s: float, now: float | None = None) -> Plan:
    """Decide, for every file of the source, whether and from where it is read this run."""
    now = time.time() if now is None else now
    out = Plan()
    known_content = {(r.size, r.sha256): p for p, r in ledger.items()}
    for path in files:
        key = str(path)
        try:
            stat = path.stat()
            known = ledger.get(key)
            if known and known.size == stat.st_size and known.mtime_ns == stat.st_mtime_ns:
                out.unchanged += 1
                continue
            if now - stat.st_mtime_ns / 1e9 < settle_s:
                out.skipped.append(Skipped(key, msg("monitors.skip.fresh", file=path.name, seconds=f"{settle_s:g}")))
                continue
            whole, head, size = _hashes(path, known.size if known else None)
        except OSError as exc:
            out.skipped.append(Skipped(key, msg("monitors.skip.unreadable", file=path.name, reason=exc.strerror or str(exc))))
            continue
        _classify(out, path, known, known_content, (size, stat.st_mtime_ns, whole, head))
    return out


def _classify(out: Plan, path: Path, known: FileRecord | None, known_content: dict, seen: tuple) -> None:
    size, mtime_ns, whole, head = seen
    key = str(path)
    if known is None:
        twin = known_content.get((size, whole))
        if twin is not None:  # the same export copied or renamed: read once
            note = msg("monitors.skip.duplicate", file=path.name, other=Path(twin).name)
            out.skipped.append(Skipped(key, note))
            out.seen[key] = FileRecord(size, mtime_ns, whole, size, 0, "skipped", note.to_dict())
            return
        out.work.append(Work(path, "new", size, mtime_ns, whole))
    elif whole == known.sha256 and size == known.size:  # touched, not changed
        out.unchanged += 1
        out.seen[key] = FileRecord(**{**known.to_dict(), "mtime_ns": mtime_ns})
    elif known.status == "skipped":  # changed since it was refused: look at it afresh
        out.work.append(Work(path, "new", size, mtime_ns, whole))
    elif size > known.size and head == known.sha256:
        work = Work(path, "grown", size, mtime_ns, whole, known_rows=known.rows)
        if work.text_format:
            work.offset = known.offset
        else:
            work.skip_rows = known.rows
        out.work.append(work)
    else:
        out.work.append(Work(path, "rewritten", size, mtime_ns, whole, skip_rows=known.rows, known_rows=known.rows))


# ----------------------------------------------------------------------------------------
# Reading the new rows
# ----------------------------------------------------------------------------------------
def last_record_end(data: bytes) -> int:
    """The end of the last complete record: just after the last line break outside quotes."""
    raw = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero(raw == ord("\n"))
    if len(breaks) == 0:
        return 0
    quotes = np.cumsum(raw == ord('"'))
    outside = breaks[quotes[breaks] % 2 == 0]
    return int(outside[-1]) + 1 if len(outside) else 0


def _header_end(path: Path) -> int:
    with open(path, "rb") as fh:
        return last_record_end(fh.readline(_BLOCK)) or 0


def read_rows(work: Work, scratch: Path, chunk_rows: int, complete: bool) -> Iterator[tuple[pd.DataFrame, int]]:
    """The file's new rows, ``chunk_rows`` at a time, each with the number of its first row.

    A text file read from an offset is cut to [header + new bytes] in ``scratch`` (one copy, read
    in blocks), ending at the last complete record unless ``complete`` (the file has settled)."""
    from core.scoring import iter_chunks

    path, first_row = work.path, work.known_rows if work.offset else 0
    if work.text_format and (work.offset or not complete):
        path = _slice(work, scratch, complete)
    try:
        skip = work.skip_rows
        for chunk in iter_chunks(path, chunk_rows):
            if skip >= len(chunk):
                skip -= len(chunk)
                first_row += len(chunk)
                continue
            yield chunk.iloc[skip:].reset_index(drop=True), first_row + skip
            first_row += len(chunk)
            skip = 0
    finally:
        if path != work.path:
            path.unlink(missing_ok=True)


def _slice(work: Work, scratch: Path, complete: bool) -> Path:
    """[header + bytes offset..end] of a text file as a file of its own, copied in blocks; when
    the file may still be written, ``end`` is its last complete record (``work.end``)."""
    fmt = FORMATS.get(work.path.suffix.lower())
    header = 0 if fmt == "jsonl" else _header_end(work.path)
    start = max(work.offset, header)
    end = work.size
    with open(work.path, "rb") as fh:
        if not complete:  # only an unsettled file is read whole into memory, to find its last record
            fh.seek(start)
            end = start + last_record_end(fh.read(work.size - start))
            work.end = end
        scratch.mkdir(parents=True, exist_ok=True)
        target = scratch / f".slice-{uuid.uuid4().hex[:8]}{work.path.suffix.lower()}"
        with open(target, "wb") as out:
            out.write(fh.read(header) if fh.seek(0) == 0 else b"")
            fh.seek(start)
            left = end - start
            while left > 0 and (block := fh.read(min(_BLOCK, left))):
                out.write(block)
                left -= len(block)
    return target


def record_for(work: Work, rows_read: int) -> FileRecord:
    """The ledger entry once ``work`` is read (``rows_read``: rows seen this time, scored or empty)."""
    rows = rows_read + (work.known_rows if work.offset else work.skip_rows)
    if work.action == "rewritten":
        rows = max(rows, work.known_rows)
    if work.end is not None and work.end < work.size:
        # stopped before an unfinished last record: remember only what was read, so the rest is
        # read as growth next time
        return FileRecord(work.end, 0, _hashes(work.path, work.end)[1] or "", work.end, rows)
    return FileRecord(work.size, work.mtime_ns, work.sha256, work.size, rows)


def skipped_record(work: Work, note: Message) -> FileRecord:
    return FileRecord(work.size, work.mtime_ns, work.sha256, work.size, 0, "skipped", note.to_dict())


@dataclass
class FileColumns:
    """The file's columns a monitor reads (the history stores them as date, text, group)."""

    text: str
    date: str
    group: str = ""

    def needed(self) -> list[str]:
        return [c for c in (self.text, self.date, self.group) if c]


@dataclass
class FileResult:
    rows: int = 0  # rows added to the history
    empty: int = 0  # rows with an empty text (not kept)
    skipped: Skipped | None = None


class _WrongColumns(Exception):
    def __init__(self, missing: list[str], found: list[str]):
        self.missing, self.found = missing, found


def read_into(history: History, work: Work, columns: FileColumns, score: Any, settle_s: float) -> FileResult:
    """Score a file's new rows (``score(chunk)`` adds label and confidence) into one history
    part, and commit it with the file's ledger entry. A file without the needed columns, or
    that cannot be read, is skipped (and looked at again when it changes)."""
    complete = time.time() - work.mtime_ns / 1e9 >= max(settle_s, 2)
    result, read = FileResult(), {"rows": 0}

    def tables() -> Iterator[Any]:
        for chunk, first_row in read_rows(work, history.folder, CHUNK_ROWS, complete):
            missing = [c for c in columns.needed() if c not in chunk.columns]
            if missing:
                raise _WrongColumns(missing, [str(c) for c in chunk.columns])
            read["rows"] += len(chunk)
            table, empty = history_table(columns, chunk, score(chunk), work.path, first_row)
            result.empty += empty
            yield table

    key = str(work.path)
    try:
        name, rows = history.write_part(tables())
    except (_WrongColumns, DataError) as exc:
        note = (msg("monitors.skip.columns", file=work.path.name, missing=", ".join(exc.missing),
                    found=", ".join(exc.found)) if isinstance(exc, _WrongColumns)
                else msg("monitors.skip.unreadable", file=work.path.name, reason=exc.message or str(exc)))
        result.skipped = Skipped(key, note)
        history.files[key] = skipped_record(work, note)
    else:
        history.files[key] = record_for(work, read["rows"])
        if name:
            history.parts.append(name)
            history.rows += rows
        result.rows = rows
    history.commit()
    return result


def history_table(columns: FileColumns, chunk: pd.DataFrame, scored: pd.DataFrame, path: Path, first_row: int):
    """The rows the history keeps: date and text as written, group, label, confidence and where
    each row came from. Empty texts carry no opinion and are only counted."""
    import pyarrow as pa

    text = chunk[columns.text].fillna("").astype("str")
    keep = (text.str.strip() != "").to_numpy()
    values = {"date": chunk[columns.date].fillna("").astype("str").to_numpy()[keep], "text": text.to_numpy()[keep]}
    if columns.group:
        values["group"] = chunk[columns.group].fillna("").astype("str").to_numpy()[keep]
    values.update(label=scored["label"].astype("str").to_numpy()[keep],
                  confidence=scored["confidence"].to_numpy(dtype="float32")[keep],
                  file=np.full(int(keep.sum()), str(path), dtype=object),
                  row=np.arange(first_row, first_row + len(chunk), dtype="int64")[keep])
    return pa.table({k: pa.array(v, type=None if k in ("confidence", "row") else pa.string())
                     for k, v in values.items()}), int((~keep).sum())


# ----------------------------------------------------------------------------------------
# The ledger and the history
# ----------------------------------------------------------------------------------------
class History:
    """The ledger and the scored rows of one monitor, in ``folder`` (state.json + history/)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.parts_dir = self.folder / "history"
        self.state_path = self.folder / "state.json"
        state = read_json(self.state_path, {}) or {}
        self.files = {p: FileRecord(**r) for p, r in (state.get("files") or {}).items()}
        self.parts: list[str] = list(state.get("parts") or [])
        self.rows = int(state.get("rows") or 0)

    def commit(self) -> None:
        """Make the new parts and ledger entries count, in one atomic rename."""
        atomic_write_json(self.state_path, {"files": {p: r.to_dict() for p, r in self.files.items()},
                                            "parts": self.parts, "rows": self.rows})

    def clean(self) -> int:
        """Delete parts and slices a crashed run left uncommitted; how many there were."""
        stray = [p for p in self.parts_dir.glob("*.parquet") if p.name not in self.parts]
        stray += list(self.parts_dir.glob(".*.tmp")) + list(self.folder.glob(".slice-*"))
        for path in stray:
            path.unlink(missing_ok=True)
        return len(stray)

    def write_part(self, tables: Iterator[Any]) -> tuple[str | None, int]:
        """Write the tables as one new (uncommitted) part; its name and rows (None if no rows)."""
        import pyarrow.parquet as pq

        self.parts_dir.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.parts_dir / f".{name}.tmp"
        writer, rows = None, 0
        try:
            for table in tables:
                if table.num_rows == 0:
                    continue
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
                rows += table.num_rows
        except BaseException:
            if writer is not None:
                writer.close()
            tmp.unlink(missing_ok=True)
            raise
        if writer is None:
            return None, 0
        writer.close()
        os.replace(tmp, self.parts_dir / name)
        return name, rows

    def frame(self, columns: list[str] | None = None) -> pd.DataFrame:
        """Every committed row (an empty frame before the first)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.parts:
            return pd.DataFrame(columns=columns or [])
        tables = []
        for name in self.parts:  # only the columns asked for are read (a group column may be newer than a part)
            path = self.parts_dir / name
            present = pq.read_schema(path).names
            tables.append(pq.read_table(path, columns=[c for c in columns if c in present] if columns else None))
        table = pa.concat_tables(tables, promote_options="permissive")  # parts may differ in string width
        return table.to_pandas()

    def compact(self) -> None:
        """Merge the parts into one when there are more than MAX_PARTS (committed by the caller)."""
        if len(self.parts) <= MAX_PARTS:
            return
        import pyarrow as pa

        old = list(self.parts)
        merged = pa.Table.from_pandas(self.frame(), preserve_index=False)
        name, _ = self.write_part(iter([merged]))
        self.parts = [name] if name else []
        self.commit()
        for part in old:
            (self.parts_dir / part).unlink(missing_ok=True)
