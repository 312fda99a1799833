"""A scoring job's files: its input read in chunks (with an exact count of its data rows) and
its output written as CSV, Excel or Parquet, each saying which cells it had to change."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from core.data import FORMATS, choose_delimiter, clean_columns, detect_encoding, read_table
from core.errors import ConfigError, DataError
from core.exporting import CSV_ESCAPED, EXCEL_CLEANED, Export, write_csv, write_excel

EXCEL_MAX_ROWS = 1_048_575  # one row of the sheet is the header
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".xlsx": "excel"}


def _head_bytes(path: Path, size: int = 1 << 20) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(size)
    cut = head.rfind(b"\n")
    return head[:cut + 1] if 0 < cut < len(head) - 1 else head


class ChunkReader:
    """An input file's rows as DataFrames of strings, ``chunk_rows`` at a time, and how many
    data rows it holds (a quoted cell over several lines is one row, as the scoring sees it)."""

    def __init__(self, path: Path | str, chunk_rows: int):
        self.path, self.chunk_rows = Path(path), chunk_rows
        self._whole: pd.DataFrame | None = None  # Excel and JSON are read whole, once

    def _format(self) -> str:
        if not self.path.is_file():
            raise DataError("score.err.no_input", path=str(self.path))
        with open(self.path, "rb") as fh:
            magic = fh.read(4)
        if magic == b"PAR1":
            return "parquet"
        if magic == b"PK\x03\x04":
            return "excel"
        return FORMATS.get(self.path.suffix.lower(), "csv")

    def _whole_frame(self) -> pd.DataFrame:
        if self._whole is None:
            self._whole = read_table(self.path).frame
        return self._whole

    def _text_reader(self, fmt: str, chunk_rows: int, usecols: list[int] | None = None) -> Iterator[pd.DataFrame]:
        head = _head_bytes(self.path)
        if not head.strip():
            raise DataError("score.err.empty_file", filename=self.path.name)
        encoding = detect_encoding(head, self.path.name)
        if fmt == "jsonl":
            return pd.read_json(self.path, lines=True, chunksize=chunk_rows, dtype=False, encoding=encoding)
        first_line = head.decode(encoding, errors="ignore").lstrip("\ufeff").splitlines()[0]
        delimiter = choose_delimiter(first_line, fmt) or ","
        # pandas' chunked C parser reads as it goes: its memory stays flat with the file size
        # (pyarrow's streaming CSV reader reads ahead in proportion to the file)
        return pd.read_csv(self.path, sep=delimiter, encoding=encoding, dtype=str, keep_default_na=False,
                           na_filter=False, chunksize=chunk_rows, on_bad_lines="error", usecols=usecols)

    def total_rows(self) -> int:
        """Exactly the rows the chunks will hold: Parquet's metadata, the whole sheet or JSON
        file, or one quick pass of the CSV parser over the first column (~100 MB/s; a parser
        error ends the count where the scoring will stop too)."""
        fmt = self._format()
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).metadata.num_rows
        if fmt in ("excel", "json"):
            return len(self._whole_frame())
        if fmt == "jsonl":  # one record per line by definition; blank lines hold none
            with open(self.path, "rb") as fh:
                return sum(1 for line in fh if line.strip())
        rows = 0
        try:
            for chunk in self._text_reader(fmt, 100_000, usecols=[0]):
                rows += len(chunk)
        except (pd.errors.ParserError, ValueError, UnicodeDecodeError):
            pass
        return rows

    def __iter__(self) -> Iterator[pd.DataFrame]:
        fmt = self._format()
        if fmt == "parquet":
            yield from self._parquet_chunks()
            return
        if fmt in ("excel", "json"):
            frame = self._whole_frame()
            for start in range(0, len(frame), self.chunk_rows):
                yield frame.iloc[start:start + self.chunk_rows].reset_index(drop=True)
            return
        rows = 0
        try:
            for chunk in self._text_reader(fmt, self.chunk_rows):
                rows += len(chunk)
                yield clean_columns(chunk, [])
        except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
            raise DataError("score.err.damaged", filename=self.path.name, rows=f"{rows:,}",
                            detail=str(exc).splitlines()[-1][:160]) from exc

    def _parquet_chunks(self) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        try:
            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=self.chunk_rows):
                yield clean_columns(batch.to_pandas(), [])
        except Exception as exc:  # pyarrow raises several kinds for damaged files
            raise DataError("score.err.bad_parquet", filename=self.path.name, detail=str(exc)[:120]) from exc


def iter_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows as DataFrames of strings, ``chunk_rows`` at a time."""
    return iter(ChunkReader(path, chunk_rows))


def count_rows(path: Path) -> int:
    """The file's data rows, exactly as the scoring will count them."""
    return ChunkReader(path, 1).total_rows()


def write_output(scored: Path, output: Path, csv_guard: bool = True) -> Export:
    """Write the scored rows as CSV, Parquet or Excel, atomically; says which cells it changed."""
    fmt = OUTPUT_FORMATS.get(output.suffix.lower())
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        written = _write(scored, tmp, fmt, csv_guard)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the previous output, if any, stays as it was
        raise
    return written


def _write(scored: Path, tmp: Path, fmt: str | None, csv_guard: bool = True) -> Export:
    import pyarrow.parquet as pq

    if fmt == "parquet":  # streamed row group by row group: memory stays flat whatever the size
        with pq.ParquetWriter(tmp, pq.ParquetFile(scored).schema_arrow) as writer:
            for table in _row_groups(scored):
                writer.write_table(table)
        return Export()
    if fmt == "excel":
        rows = pq.ParquetFile(scored).metadata.num_rows
        if rows > EXCEL_MAX_ROWS:
            raise ConfigError("score.err.too_big_for_excel", rows=f"{rows:,}", limit=f"{EXCEL_MAX_ROWS:,}")
        return Export(b"", write_excel(pd.read_parquet(scored), tmp), EXCEL_CLEANED)
    changed: dict[str, int] = {}
    # UTF-8 with a BOM for spreadsheets (Excel then reads Chinese); plain UTF-8 for other tools
    with open(tmp, "w", encoding="utf-8-sig" if csv_guard else "utf-8", newline="") as fh:
        for i, table in enumerate(_row_groups(scored)):
            for column, n in write_csv(table.to_pandas(), fh, header=i == 0, guard=csv_guard).items():
                changed[column] = changed.get(column, 0) + n
    return Export(b"", changed, CSV_ESCAPED)


def release_memory() -> None:
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


