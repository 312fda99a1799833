"""Reading, understanding and checking a file of labelled texts.

The story of an upload: ``read_table`` turns bytes into a table (format, encoding and
delimiter found out, never guessed silently: each is reported); ``detect_columns`` proposes
which column holds the text, the label, a date and a group; ``prepare_dataset`` cleans the rows,
counts every cleaning step, checks what would make a useless dataset and splits it into
train / validation / test. Every refusal is a ``DataError`` that names the column, row or value
at fault and what to do about it.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from core.i18n import Message, msg
from core.sheets import check_options, read_workbook, skip_title_lines

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "txt",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SUPPORTED = msg("data.supported")

_MAGIC_ZIP = b"PK\x03\x04"
_MAGIC_PARQUET = b"PAR1"
_MAGIC_OLE = b"\xd0\xcf\x11\xe0"  # legacy .xls / .doc
_DELIMITERS = [",", "\t", ";", "|"]
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}

TEXT_HINTS = ("text", "review", "content", "comment", "body", "sentence", "message", "post",
              "tweet", "评论", "内容", "文本", "正文", "评价")
LABEL_HINTS = ("label", "sentiment", "class", "category", "polarity", "target", "rating",
               "stance", "tag", "标签", "情感", "类别", "分类", "极性")
DATE_HINTS = ("date", "time", "timestamp", "created", "day", "日期", "时间")
GROUP_HINTS = ("source", "product", "brand", "region", "channel", "platform", "site", "store",
               "来源", "产品", "品牌", "地区", "渠道", "平台")
SPLIT_HINTS = ("split", "subset", "fold", "partition")
SPLIT_ALIASES = {
    "train": "train", "training": "train", "训练": "train",
    "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation",
    "eval": "validation", "验证": "validation",
    "test": "test", "testing": "test", "测试": "test",
}
SPLITS = ("train", "validation", "test")

_HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]{0,200}>")
_WS = re.compile(r"\s+")
_INT_LIKE = re.compile(r"^[+-]?\d+(?:\.0+)?$")
_NUMBER = r"^[+\-]?(?:\d+(?:[.,]\d+)*|\.\d+)(?:[eE][+-]?\d+)?%?$"
_CJK = r"[\u3400-\u9fff\uf900-\ufaff]"


# ----------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------
@dataclass
class Table:
    """A file read into a DataFrame of strings, with what was found out about it."""

    frame: pd.DataFrame
    source_name: str
    file_format: str
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[Message | str] = field(default_factory=list)
    sheets: list[str] = field(default_factory=list)  # a workbook's sheets, in order
    sheet: str | None = None                          # the sheet read
    header_row: int | None = None                     # 1-based row of the column names

    def describe(self) -> dict[str, Any]:
        """What was found out, as JSON-ready values: ``delimiter`` is a name (``comma``, ``tab``),
        ``delimiter.<name>`` in the locales; notes are message dicts (or older plain text)."""
        return {
            "source": self.source_name,
            "format": self.file_format,
            "encoding": self.encoding,
            "delimiter": _DELIMITER_NAMES.get(self.delimiter or "", self.delimiter),
            "rows": len(self.frame),
            "columns": list(self.frame.columns),
            "notes": [storable(note) for note in self.notes],
        }


def storable(item: Message | str) -> dict[str, Any] | str:
    """A message in the form a JSON report keeps (rendered later in the reader's language)."""
    return item.to_dict() if isinstance(item, Message) else item


def join_messages(messages: list[Message | str]) -> Message | str:
    """Several messages as one, each sentence after the other (for one error naming them all)."""
    if not messages:
        return ""
    first, *rest = messages
    return msg("message.then", first=first, rest=join_messages(rest)) if rest else first


def _delimiter_name(delimiter: str) -> Message | str:
    name = _DELIMITER_NAMES.get(delimiter)
    return msg(f"delimiter.{name}") if name else repr(delimiter)


def read_table(source: str | Path | bytes | io.IOBase, filename: str | None = None,
               max_bytes: int | None = None, sheet: str | int | None = None,
               header_row: int | None = None) -> Table:
    """Read a file of texts in any supported format into a Table of strings.

    ``source`` is a path, raw bytes or a binary file object (a Streamlit upload); ``filename``
    gives the name whose extension picks the format when the source is not a path. ``sheet``
    (a name, or a number from 1) picks a workbook's sheet; ``header_row`` (numbered as Excel
    shows rows) the row of the column names, which is otherwise detected (core/sheets.py).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        filename = filename or path.name
        if not path.is_file():
            raise DataError("data.err.not_a_file", path=str(path))
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise DataError(_too_big(filename, path.stat().st_size, max_bytes))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError("data.err.cannot_open", filename=filename, reason=exc.strerror) from exc
    elif isinstance(source, bytes):
        data = source
    else:
        data = source.read()
    filename = filename or "upload"
    if max_bytes is not None and len(data) > max_bytes:
        raise DataError(_too_big(filename, len(data), max_bytes))

    ext = Path(filename).suffix.lower()
    fmt = FORMATS.get(ext)
    if not data.strip(b" \t\r\n\x00" + codecs.BOM_UTF8):
        raise DataError("data.err.empty_file", filename=filename)

    notes: list[Message | str] = []
    head = data[:8]
    if head.startswith(_MAGIC_OLE):
        raise DataError("data.err.old_excel", filename=filename)
    real = "excel" if head.startswith(_MAGIC_ZIP) else "parquet" if head.startswith(_MAGIC_PARQUET) else None
    if real and fmt != real:
        if fmt is not None:
            notes.append(msg("data.note.real_format", filename=filename, kind=msg(f"data.kind.{real}"), ext=ext,
                             format=msg(f"data.format.{real}")))
        fmt = real
    elif fmt in ("excel", "parquet") and real is None:
        looks = msg("data.looks.text" if _looks_like_text(data) else "data.looks.other")
        raise DataError("data.err.not_real_format", filename=filename, ext=ext, kind=msg(f"data.kind.{fmt}"),
                        looks=looks, supported=SUPPORTED)
    if fmt is None:
        shown_ext = repr(ext) if ext else msg("data.no_extension")
        if not _looks_like_text(data):
            raise DataError("data.err.unknown_binary", filename=filename, ext=shown_ext, supported=SUPPORTED)
        fmt = "csv"
        notes.append(msg("data.note.unknown_extension", ext=shown_ext))
    check_options(fmt, filename, sheet, header_row)

    if fmt == "excel":
        book = read_workbook(data, filename, sheet, header_row)
        table = Table(book.frame, filename, "excel", notes=notes + book.notes, sheets=book.sheets,
                      sheet=book.sheet, header_row=book.header_row)
    elif fmt == "parquet":
        table = Table(_read_parquet(data, filename), filename, "parquet", notes=notes)
    else:
        if not _looks_like_text(data):
            raise DataError("data.err.binary", filename=filename, ext=ext, supported=SUPPORTED)
        encoding = detect_encoding(data, filename)
        try:
            if fmt == "json":
                table = Table(_read_json(data, encoding, filename), filename, "json", encoding, notes=notes)
            elif fmt == "jsonl":
                table = Table(_read_jsonl(data, encoding, filename), filename, "jsonl", encoding, notes=notes)
            else:
                data, found_row, title_notes = skip_title_lines(data, encoding, fmt, filename, header_row)
                frame, delimiter = _read_delimited(data, encoding, filename, fmt)
                table = Table(frame, filename, fmt, encoding, delimiter, notes + title_notes, header_row=found_row)
        except UnicodeDecodeError as exc:
            raise DataError("data.err.mixed_encoding", filename=filename, encoding=encoding, byte=exc.start,
                            reason=exc.reason) from exc

    table.frame = clean_columns(table.frame, table.notes).reset_index(drop=True)
    if len(table.frame) == 0:
        cols = ", ".join(map(str, table.frame.columns)) or msg("data.no_columns")
        raise DataError("data.err.no_rows", filename=filename, columns=cols)
    return table


def _too_big(filename: str, size: int, limit: int) -> Message:
    return msg("data.err.too_big", filename=filename, size_mb=size / 1e6, limit_mb=limit / 1e6)


def _looks_like_text(data: bytes) -> bool:
    sample = data[:8192]
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    if b"\x00" in sample:
        return False
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls <= len(sample) * 0.01


def _decodes(data: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    step = 1 << 20
    try:
        for start in range(0, len(data), step):
            decoder.decode(data[start:start + step], final=start + step >= len(data))
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(data: bytes, filename: str = "file") -> str:
    """UTF-8 (with or without BOM) first, then GB18030 (GBK/GB2312 files from Chinese Excel),
    then charset-normalizer's best guess."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        if not _decodes(data, "utf-16"):
            raise DataError("data.err.utf16_damaged", filename=filename)
        return "utf-16"
    for encoding in ("utf-8", "gb18030"):
        if _decodes(data, encoding):
            return encoding
    from charset_normalizer import from_bytes

    best = from_bytes(data[:2_000_000]).best()
    if best is None:
        raise DataError("data.err.unknown_encoding", filename=filename)
    return best.encoding


def choose_delimiter(first_line: str, fmt: str) -> str | None:
    if fmt == "tsv":
        return "\t"
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties keep the order of _DELIMITERS
    return best if counts[best] > 0 else None


def _read_delimited(data: bytes, encoding: str, filename: str, fmt: str) -> tuple[pd.DataFrame, str | None]:
    text_head = data[:65536].decode(encoding, errors="ignore").lstrip("\ufeff")
    lines = text_head.splitlines()
    first_line = lines[0] if lines else ""
    delimiter = choose_delimiter(first_line, fmt)
    if fmt == "txt" and delimiter is not None:
        # A table has a header of a few short names and the same number of fields on every
        # line; a sentence with a comma in it is just a text.
        rows = list(csv.reader(lines[:-1][:50] or lines, delimiter=delimiter))
        header = rows[0] if rows else []
        if (len(header) > 30 or any(len(h) > 40 or not h.strip() for h in header)
                or any(len(r) != len(header) for r in rows if r)):
            delimiter = None
    if delimiter is None:
        if fmt == "txt":
            texts = data.decode(encoding).lstrip("\ufeff").splitlines()
            return pd.DataFrame({"text": [t for t in texts if t.strip()]}, dtype="str"), None
        delimiter = ","
    frame = _read_delimited_arrow(data, encoding, delimiter, first_line)
    if frame is not None:
        return frame, delimiter
    try:
        frame = pd.read_csv(
            io.BytesIO(data), sep=delimiter, encoding=encoding, dtype=str, keep_default_na=False,
            na_filter=False, engine="c", on_bad_lines="error", skip_blank_lines=True,
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        name = _delimiter_name(delimiter)
        if match:
            expected, line, saw = map(int, match.groups())
            raise DataError("data.err.ragged_line", filename=filename, line=line, saw=saw, expected=expected,
                            delimiter=name) from exc
        raise DataError("data.err.unreadable_delimited", filename=filename, delimiter=name,
                        detail=str(exc).splitlines()[-1]) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError("data.err.empty_file", filename=filename) from exc
    return frame, delimiter


def _read_delimited_arrow(data: bytes, encoding: str, delimiter: str, first_line: str) -> pd.DataFrame | None:
    """Fast, memory-lean path through pyarrow's CSV reader (about 3x less peak memory than
    pandas' C parser on a 100 MB file). Returns None when the file needs pandas' handling:
    ragged rows (padded or reported with their line number) or duplicate column names."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = next(csv.reader([first_line.lstrip("\ufeff")], delimiter=delimiter), [])
    if len(set(header)) != len(header):
        return None
    codec = "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(encoding=codec, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in header}, strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, LookupError):
        return None
    if table.num_columns != len(header):
        return None
    return table.to_pandas(types_mapper=_arrow_to_str)


def _arrow_to_str(arrow_type: Any) -> Any:
    import pyarrow as pa

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow", na_value=np.nan)
    return None


def _read_parquet(data: bytes, filename: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for damaged files
        raise DataError("data.err.parquet", filename=filename, detail=str(exc)[:120]) from exc


def _records_frame(records: Any, filename: str) -> pd.DataFrame:
    if isinstance(records, dict):
        lists = [v for v in records.values() if isinstance(v, list)]
        if len(records) == 1 and lists:
            records = lists[0]
        elif lists and all(isinstance(v, list) for v in records.values()):
            try:
                return pd.DataFrame(records)
            except ValueError as exc:
                raise DataError("data.err.json_columns", filename=filename, detail=str(exc)) from exc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError("data.err.json_not_records", filename=filename)
    return pd.json_normalize(records)


def _read_json(data: bytes, encoding: str, filename: str) -> pd.DataFrame:
    text = data.decode(encoding)
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several objects, one per line: JSON Lines after all
            return _read_jsonl(data, encoding, filename)
        raise DataError("data.err.json_invalid", filename=filename, detail=exc.msg, line=exc.lineno,
                        column=exc.colno) from exc
    return _records_frame(records, filename)


def _read_jsonl(data: bytes, encoding: str, filename: str) -> pd.DataFrame:
    records = []
    for number, line in enumerate(data.decode(encoding).lstrip("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError("data.err.jsonl_invalid", filename=filename, line=number, detail=exc.msg,
                            column=exc.colno) from exc
        if not isinstance(record, dict):
            raise DataError("data.err.jsonl_not_object", filename=filename, line=number)
        records.append(record)
    return _records_frame(records, filename)


def clean_columns(frame: pd.DataFrame, notes: list[Message | str]) -> pd.DataFrame:
    """Column names become trimmed strings without BOMs; duplicates and blanks get unique names."""
    names: list[str] = []
    seen: dict[str, int] = {}
    renamed = []
    for position, raw in enumerate(frame.columns, start=1):
        name = str(raw).replace("\ufeff", "").strip()
        if not name or name.lower().startswith("unnamed:"):
            name = f"column_{position}"
        # pandas renames a repeated "name" to "name.1"; report it as the duplicate it is
        mangled = re.fullmatch(r"(.*)\.(\d+)", name)
        if mangled and mangled.group(1) in seen:
            name = mangled.group(1)
        if name in seen:
            seen[name] += 1
            new = f"{name} ({seen[name]})"
            renamed.append(f"{name} → {new}")
            name = new
        seen.setdefault(name, 1)
        names.append(name)
    if renamed:
        notes.append(msg("data.note.duplicate_columns", renamed=", ".join(renamed)))
    out = frame.copy(deep=False)
    out.columns = names
    for col in out.columns:
        if out[col].dtype != "str":
            out[col] = out[col].map(_cell_to_str, na_action="ignore").astype("str")
        out[col] = out[col].fillna("")
    return out


def _cell_to_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# ----------------------------------------------------------------------------------------
# Columns
# ----------------------------------------------------------------------------------------
@dataclass
class ColumnMapping:
    """Which column plays which part. Only ``text`` is needed to score; ``label`` to train."""

    text: str | None = None
    label: str | None = None
    date: str | None = None
    group: str | None = None
    split: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ColumnMapping:
        return cls(**{k: (values.get(k) or None) for k in ("text", "label", "date", "group", "split")})


def _hinted(name: str, hints: tuple[str, ...]) -> bool:
    """Whether a column name says its role: a word starting with an English hint ("created_at"
    but not "sentiment" for "time"), or containing a Chinese one."""
    low = name.lower()
    words = [w for w in re.split(r"[^a-z0-9]+", low) if w]
    return any(h in low if not h.isascii() else any(w.startswith(h) for w in words) for h in hints)


def numeric_share(values: pd.Series) -> float:
    values = values[values.str.strip() != ""]
    if len(values) == 0:
        return 0.0
    return float(values.str.strip().str.fullmatch(_NUMBER).mean())


def _date_share(values: pd.Series) -> float:
    values = values[values.str.strip() != ""].head(200)
    if len(values) == 0 or numeric_share(values) > 0.5:
        return 0.0
    parsed = pd.to_datetime(values.str.replace("年", "-").str.replace("月", "-").str.replace("日", ""),
                            errors="coerce", format="mixed")
    return float(parsed.notna().mean())


def detect_columns(frame: pd.DataFrame) -> ColumnMapping:
    """Propose a column mapping: the longest free text, a label with few values, a date and a group."""
    sample = frame.head(5000)
    stats = {}
    for col in frame.columns:
        values = sample[col]
        filled = values[values.str.strip() != ""]
        stats[col] = {
            "mean_len": float(filled.str.len().mean()) if len(filled) else 0.0,
            "numeric": numeric_share(values),
            # full-column distinct counts only where the sample says it could be a label
            "distinct": int(frame[col].nunique()) if values.nunique() <= 50 else values.nunique(),
            "filled": len(filled),
        }
    mapping = ColumnMapping()
    free_text = [c for c in frame.columns if stats[c]["numeric"] < 0.9 and stats[c]["filled"] > 0]
    if free_text:
        mapping.text = max(free_text, key=lambda c: (stats[c]["mean_len"] * (1.5 if _hinted(c, TEXT_HINTS) else 1.0)))
    rest = [c for c in frame.columns if c != mapping.text]

    splits = [c for c in rest if _hinted(c, SPLIT_HINTS)
              and set(sample[c].str.strip().str.lower().unique()) - {""} <= set(SPLIT_ALIASES)]
    if splits:
        mapping.split = splits[0]
        rest.remove(mapping.split)

    dates = [c for c in rest if (_hinted(c, DATE_HINTS) and stats[c]["filled"] > 0) or _date_share(sample[c]) > 0.8]
    if dates:
        mapping.date = max(dates, key=lambda c: (_hinted(c, DATE_HINTS), _date_share(sample[c])))
        rest.remove(mapping.date)

    # A hinted name ("label", "情感") is a label even with one value, so the single-class check can speak.
    labels = [c for c in rest if (2 if not _hinted(c, LABEL_HINTS) else 1) <= stats[c]["distinct"] <= 50
              and stats[c]["mean_len"] <= 40]
    if labels:
        mapping.label = min(labels, key=lambda c: (not _hinted(c, LABEL_HINTS), _hinted(c, GROUP_HINTS),
                                                    stats[c]["distinct"]))
        rest.remove(mapping.label)

    groups = [c for c in rest if _hinted(c, GROUP_HINTS) and 1 <= stats[c]["distinct"] <= 10_000]
    if groups:
        mapping.group = groups[0]
    return mapping


# ----------------------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------------------
def normalise_labels(values: pd.Series) -> tuple[pd.Series, dict[str, list[str]]]:
    """Trim labels, write whole numbers plainly ("1.0" → "1") and merge case variants
    ("Positive", "positive ") under their most frequent spelling. Missing labels become NA.

    Returns the labels and the merges made (kept spelling → spellings merged into it).
    """
    labels = values.astype("str").str.strip()
    labels = labels.where(labels != "", other=None)
    int_like = labels.str.fullmatch(_INT_LIKE.pattern).fillna(False).astype(bool).to_numpy()
    if int_like.any():
        whole = labels.to_numpy(dtype=object)
        whole[int_like] = [str(int(v.split(".")[0])) for v in whole[int_like]]  # exact, any length
        labels = pd.Series(whole, index=labels.index, dtype="str")
    counts = labels.value_counts()
    canonical: dict[str, str] = {}
    merges: dict[str, list[str]] = {}
    by_fold: dict[str, list[str]] = {}
    for spelling in counts.index:  # most frequent first
        by_fold.setdefault(spelling.casefold(), []).append(spelling)
    for spellings in by_fold.values():
        keep = spellings[0]
        for spelling in spellings:
            canonical[spelling] = keep
        if len(spellings) > 1:
            merges[keep] = spellings[1:]
    if merges:
        labels = labels.map(canonical, na_action="ignore")
    return labels, merges


def sort_labels(labels: list[str]) -> list[str]:
    """Stable label order: numerically when every label is a number, else alphabetically."""
    if all(_INT_LIKE.match(lab) or re.fullmatch(r"[+-]?\d*\.\d+", lab) for lab in labels):
        return sorted(labels, key=float)
    return sorted(labels, key=lambda lab: (lab.casefold(), lab))


# ----------------------------------------------------------------------------------------
# Cleaning, checking, splitting
# ----------------------------------------------------------------------------------------
@dataclass
class PrepareOptions:
    """How strictly an upload is cleaned and checked."""

    min_per_class: int = 5           # fewer examples than this in a class blocks saving (>= 2)
    max_classes: int = 50            # more distinct labels than this looks like free text
    long_text_chars: int = 4000      # texts longer than this are flagged (a model reads ~512 tokens)
    strip_html: bool = True          # remove <br /> and other tags, decode &amp; and friends
    drop_duplicates: bool = True     # drop rows whose text and label repeat an earlier row
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / validation / test shares
    seed: int = 42                   # fixes the split so the same file gives the same split


@dataclass
class Report:
    """What cleaning did and what checking found; errors block saving, warnings do not.

    Errors, warnings and notes are messages (ids with parameters), so a page shows them in the
    reader's language and a saved card keeps them as ``{"key", "params"}`` dicts."""

    errors: list[Message] = field(default_factory=list)
    warnings: list[Message] = field(default_factory=list)
    notes: list[Message | str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0
    rows: int = 0
    labels: list[str] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)
    split_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    label_merges: dict[str, list[str]] = field(default_factory=dict)
    conflict_examples: list[str] = field(default_factory=list)
    length_stats: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PreparedDataset:
    """Cleaned rows (columns ``text``, ``label``, ``split`` and optional ``date``, ``group``)."""

    frame: pd.DataFrame
    report: Report
    mapping: ColumnMapping
    table_info: dict[str, Any]


def _columns_list(frame: pd.DataFrame) -> str:
    return ", ".join(repr(c) for c in frame.columns)


def _check_mapping(frame: pd.DataFrame, mapping: ColumnMapping, need_label: bool) -> None:
    if not mapping.text:
        raise DataError("data.err.no_text_column", columns=_columns_list(frame))
    for role, col in mapping.to_dict().items():
        if col and col not in frame.columns:
            raise DataError("data.err.column_missing", role=msg(f"data.role.{role}"), column=col,
                            columns=_columns_list(frame))
    if need_label and not mapping.label:
        raise DataError("data.err.no_label_column", columns=_columns_list(frame))
    if mapping.label and mapping.label == mapping.text:
        raise DataError("data.err.text_is_label", column=mapping.text)


def clean_texts(texts: pd.Series, strip_html: bool = True) -> tuple[pd.Series, int, int]:
    """Strip HTML tags and entities and collapse whitespace. Returns texts and the counts changed.

    Runs in pyarrow compute (RE2), which keeps a 100 MB column in Arrow buffers instead of
    millions of Python strings.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    source = _arrow_strings(texts)
    html_changed = ws_changed = 0
    chunks = []
    # Slices of 20,000 rows keep the regex passes' intermediate buffers small.
    for start in range(0, max(len(source), 1), 20_000):
        arr = source.slice(start, 20_000)
        if strip_html:
            stripped = pc.replace_substring_regex(arr, _HTML_TAG.pattern, " ")
            has_entity = pc.match_substring_regex(stripped, r"&(#\d+|#[xX][0-9a-fA-F]+|[a-zA-Z]{2,8});")
            if pc.any(has_entity).as_py():
                unescaped = [html.unescape(v) for v in pc.filter(stripped, has_entity).to_pylist()]
                stripped = pc.replace_with_mask(stripped, has_entity, pa.array(unescaped, type=pa.large_string()))
            html_changed += int(pc.sum(pc.not_equal(stripped, arr)).as_py() or 0)
            arr = stripped
        collapsed = pc.utf8_trim_whitespace(pc.replace_substring_regex(arr, r"\s+", " "))
        ws_changed += int(pc.sum(pc.not_equal(collapsed, arr)).as_py() or 0)
        chunks.append(collapsed)
    cleaned = pa.chunked_array(chunks, type=pa.large_string())
    out = pd.Series(pd.array(cleaned, dtype=pd.StringDtype("pyarrow", na_value=np.nan)), index=texts.index)
    return out, html_changed, ws_changed


def prepare_dataset(table: Table, mapping: ColumnMapping | None = None,
                    options: PrepareOptions | None = None) -> PreparedDataset:
    """Clean, check and split a table. Blocking problems go to ``report.errors``; bad mappings raise."""
    options = options or PrepareOptions()
    frame = table.frame
    mapping = mapping or detect_columns(frame)
    _check_mapping(frame, mapping, need_label=True)
    report = Report(rows_read=len(frame), notes=list(table.notes))

    def step(name: str, count: int, **extra: Any) -> None:
        report.steps.append({"step": name, "count": int(count), **extra})

    raw_text = frame[mapping.text]
    numeric = numeric_share(raw_text.head(20_000))
    if numeric >= 0.95:
        example = raw_text[raw_text.str.strip() != ""].iloc[0]
        raise DataError("data.err.numeric_text", column=mapping.text, example=repr(example),
                        columns=_columns_list(frame))
    texts, html_changed, ws_changed = clean_texts(raw_text, options.strip_html)
    step("html_stripped", html_changed)
    step("whitespace_normalised", ws_changed)
    labels, merges = normalise_labels(frame[mapping.label])
    report.label_merges = merges

    # Decide which rows stay with masks and integer codes, then copy the texts only once.
    no_label = labels.isna().to_numpy()
    empty = (texts == "").to_numpy() & ~no_label
    step("missing_label_dropped", no_label.sum())
    step("empty_text_dropped", empty.sum())
    keep = ~(no_label | empty)

    kept_labels = labels[keep]
    distinct = kept_labels.nunique()
    mean_label_len = float(kept_labels.str.len().mean()) if keep.any() else 0.0
    if distinct > options.max_classes or (distinct > 10 and mean_label_len > 40):
        examples = ", ".join(repr(v[:30]) for v in kept_labels.drop_duplicates().head(3))
        raise DataError("data.err.free_text_labels", column=mapping.label, distinct=int(distinct), examples=examples,
                        max_classes=options.max_classes, columns=_columns_list(frame))

    text_codes, label_codes = _codes(texts), _codes(labels)
    if options.drop_duplicates:
        dup = np.zeros(len(keep), dtype=bool)
        pair = text_codes[keep] * (label_codes.max(initial=0) + 1) + label_codes[keep]
        dup[keep] = pd.Series(pair).duplicated().to_numpy()
        step("duplicates_dropped", dup.sum())
        keep &= ~dup
    text_codes, label_codes = text_codes[keep], label_codes[keep]
    columns = {"text": texts[keep], "label": labels[keep]}
    del texts, labels
    for role in ("date", "group"):
        col = getattr(mapping, role)
        if col:
            columns[role] = frame[col][keep].astype("str").str.strip()
    if mapping.split:
        columns["split"] = frame[mapping.split][keep].astype("str").str.strip().str.lower()
    data = pd.DataFrame(columns, copy=False)
    del columns

    per_text = pd.Series(label_codes).groupby(text_codes).nunique()
    in_conflict = np.isin(text_codes, per_text.index[per_text.to_numpy() > 1])
    step("conflicting_labels_flagged", in_conflict.sum())
    report.conflict_examples = [t[:200] for t in data["text"][in_conflict].drop_duplicates().head(5)]
    lengths = data["text"].str.len()
    long_rows = int((lengths > options.long_text_chars).sum())
    step("long_texts_flagged", long_rows, threshold=options.long_text_chars)

    data = data.reset_index(drop=True)
    report.rows = len(data)
    if len(data) == 0:
        report.errors.append(msg("data.err.nothing_left", rows=report.rows_read, text=mapping.text,
                                 label=mapping.label))
        return PreparedDataset(data, report, mapping, table.describe())

    counts = data["label"].value_counts()
    report.labels = sort_labels(list(counts.index))
    report.class_counts = {lab: int(counts[lab]) for lab in report.labels}
    report.length_stats = {
        "min": int(lengths.min()), "median": float(lengths.median()), "mean": round(float(lengths.mean()), 1),
        "p95": float(lengths.quantile(0.95)), "max": int(lengths.max()),
    }
    if len(counts) < 2:
        report.errors.append(msg("data.err.one_class", value=report.labels[0], column=mapping.label))
    small = {lab: n for lab, n in report.class_counts.items() if n < options.min_per_class}
    if small and len(counts) >= 2:
        listed = ", ".join(f"{lab!r} ({n})" for lab, n in small.items())
        report.errors.append(msg("data.err.small_classes", minimum=options.min_per_class, listed=listed))

    _add_warnings(data, report, counts, options, long_rows)
    if report.errors:
        return PreparedDataset(data, report, mapping, table.describe())

    if mapping.split:
        data["split"] = _user_split(data["split"], mapping.split)
    else:
        data["split"] = assign_splits(data["text"], data["label"], options.ratios, options.seed)
    crosstab = pd.crosstab(data["split"], data["label"])
    report.split_counts = {
        s: {lab: int(crosstab.loc[s, lab]) if s in crosstab.index else 0 for lab in report.labels}
        for s in SPLITS
    }
    missing = [lab for lab in report.labels if report.split_counts["train"][lab] == 0]
    if missing:
        report.errors.append(msg("data.err.train_missing_class", labels=", ".join(map(repr, missing)),
                                 column=mapping.split))
    return PreparedDataset(data, report, mapping, table.describe())


def _add_warnings(data: pd.DataFrame, report: Report, counts: pd.Series, options: PrepareOptions,
                  long_rows: int) -> None:
    if len(counts) >= 2 and counts.iloc[-1] > 0:
        ratio = counts.iloc[0] / counts.iloc[-1]
        if ratio >= 3:
            report.warnings.append(msg("data.warn.imbalanced", major=counts.index[0], minor=counts.index[-1],
                                       ratio=float(ratio)))
    dropped = next((s["count"] for s in report.steps if s["step"] == "duplicates_dropped"), 0)
    if report.rows_read and dropped / report.rows_read > 0.1:
        report.warnings.append(msg("data.warn.duplicates", rows=dropped, share=dropped / report.rows_read))
    conflicts = next((s["count"] for s in report.steps if s["step"] == "conflicting_labels_flagged"), 0)
    if conflicts:
        report.warnings.append(msg("data.warn.conflicts", rows=conflicts,
                                   example=repr(report.conflict_examples[0][:60])))
    if len(data) and long_rows / len(data) > 0.1:
        report.warnings.append(msg("data.warn.long_texts", rows=long_rows, share=long_rows / len(data),
                                   chars=options.long_text_chars))
    cjk = data["text"].str.contains(_CJK, regex=True)
    latin = data["text"].str.contains(r"[A-Za-z]{3,}", regex=True) & ~cjk
    share_cjk, share_latin = float(cjk.mean()), float(latin.mean())
    if share_cjk >= 0.05 and share_latin >= 0.05:
        report.warnings.append(msg("data.warn.mixed_languages", share_cjk=share_cjk, share_latin=share_latin))


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes of equal values, hashed inside Arrow (no Python string per row)."""
    import pyarrow as pa

    values = values.astype("str")
    if values.hasnans:
        values = values.fillna("")
    encoded = pa.array(values, type=pa.large_string()).dictionary_encode()  # one memo table across chunks
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks]).astype(np.int64)


def _arrow_strings(values: pd.Series):
    """A contiguous Arrow large_string array of the values, missing values as ''."""
    import pyarrow as pa

    values = values.astype("str")
    if values.hasnans:
        values = values.fillna("")
    arr = pa.array(values, type=pa.large_string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _user_split(values: pd.Series, column: str) -> pd.Series:
    mapped = values.map(lambda v: SPLIT_ALIASES.get(v))
    unknown = sorted(set(values[mapped.isna()]))
    if unknown:
        raise DataError("data.err.bad_split_values", column=column, values=", ".join(map(repr, unknown[:5])))
    return mapped.astype("str")


def assign_splits(texts: pd.Series, labels: pd.Series, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
                  seed: int = 42) -> np.ndarray:
    """Stratified train/validation/test assignment with a fixed seed.

    Rows sharing a text always land in the same split, so no text leaks between splits.
    Every class with at least three distinct texts has one in validation and one in test.
    """
    _, r_val, r_test = ratios
    codes = _codes(texts)
    first_row = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
    first_label = labels.to_numpy()[first_row]
    split_of_code = np.empty(len(first_row), dtype=object)
    rng = np.random.default_rng(seed)
    for label in sort_labels(list(pd.unique(first_label))):
        members = np.flatnonzero(first_label == label)
        members = members[rng.permutation(len(members))]
        n = len(members)
        n_test, n_val = int(round(n * r_test)), int(round(n * r_val))
        if n >= 3:
            n_test, n_val = max(n_test, 1), max(n_val, 1)
        split_of_code[members[:n_test]] = "test"
        split_of_code[members[n_test:n_test + n_val]] = "validation"
        split_of_code[members[n_test + n_val:]] = "train"
    return split_of_code[codes]
