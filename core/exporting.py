"""Exports a person opens in a spreadsheet or another tool, changed only where they must be.

**Excel (.xlsx)** cells are written as typed strings: a text cell is never read as a formula
(``=1+1`` stays the text ``=1+1``) nor as an error value (``#N/A``), and nothing is added to it.
The only changes are the ones the format forces: control characters that an .xlsx file cannot
hold are removed, and a text longer than 32,767 characters (Excel's limit) is cut.

**CSV for spreadsheets** keeps a guard against formula injection, but only for cells that a
spreadsheet would really evaluate; those get a leading apostrophe. After any leading spaces,
tabs or line breaks (some programs drop them), a text cell is guarded when it

1. starts with ``=``: every spreadsheet runs it (``=1+1``, ``=HYPERLINK("http://x")``, ``\\t=1``);
2. starts with ``+``, ``-`` or ``@`` and holds a function call or a DDE link anywhere
   (``@SUM(A1)``, ``+HYPERLINK("http://x")``, ``-cmd|' /C calc'!A0``);
3. starts with ``+`` or ``-`` and the rest is nothing but arithmetic on numbers and cell
   references (``+1+1``, ``-2+3``, ``+1-555-0100``, ``-A1``, ``+1 <3``): Excel would show the
   result instead of the text.

Ordinary posts stay as they are: ``@alice great product``, ``- bullet text``, ``+1 agree``,
``+44 20 7946 0958``, ``-3.5``, ``-5%``. (A post that starts with ``+``, ``-`` or ``@`` and has a
word directly followed by ``(``, like ``@bob product(s)``, is guarded: spreadsheets read that as
a function call.) Every export says how many cells it changed and why.

**CSV unchanged** (for other tools: pandas, R, databases) and **Parquet** keep every value as it is.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pandas as pd

from core.i18n import Message, format_count, msg

# The rules, written once as patterns that Python's ``re`` (one cell) and Arrow's RE2 (a whole
# column, ~10x faster) read alike: ASCII classes only, trailing blanks spelled out instead of
# relying on how each engine treats "$" before a final line break.
_BLANK = r"[ \t\r\n]*"
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_REFERENCE = r"\$?[A-Za-z]{1,3}\$?[0-9]{1,7}"
_OPERAND = rf"[ \t(]*(?:{_NUMBER}%?|{_REFERENCE}(?::{_REFERENCE})?)[ \t)]*"
_FORMULA_PATTERN = (
    rf"(?s)(?:^{_BLANK}=)"                                                          # rule 1
    rf"|(?:^{_BLANK}[+\-@].*?(?:[A-Za-z_][A-Za-z0-9_.]*\(|[A-Za-z0-9_.]+\|))"      # rule 2
    rf"|(?:^{_BLANK}[+-]{_OPERAND}(?:[-+*/^&<>=]+{_OPERAND})*{_BLANK}$)"          # rule 3
)
_PLAIN_NUMBER_PATTERN = rf"^{_BLANK}[+-]?{_NUMBER}(?:[eE][+-]?[0-9]+)?%?{_BLANK}$"
_FORMULA = re.compile(_FORMULA_PATTERN)
_PLAIN_NUMBER = re.compile(_PLAIN_NUMBER_PATTERN)

EXCEL_MAX_CHARS = 32_767
# what an .xlsx file cannot hold (the XML 1.0 control characters, as openpyxl checks them)
_EXCEL_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def would_evaluate(text: str) -> bool:
    """Whether a spreadsheet opening this CSV cell would run it as a formula (rules in the module doc)."""
    return _FORMULA.search(text) is not None and _PLAIN_NUMBER.match(text) is None


def escape_cell(value: object) -> object:
    """The cell as a CSV for spreadsheets writes it: a leading apostrophe when it would run."""
    if isinstance(value, str) and would_evaluate(value):
        return "'" + value
    return value


def _text_columns(frame: pd.DataFrame) -> list[Any]:
    return [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]


def _as_arrow(values: pd.Series) -> Any:
    """The column as an Arrow string array for the regex engine; None when it mixes types."""
    import pyarrow as pa

    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _to_mask(found: Any) -> np.ndarray:
    return np.array(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _guarded(values: pd.Series) -> np.ndarray:
    """Which cells of a column the CSV formula guard changes."""
    import pyarrow.compute as pc

    array = _as_arrow(values)
    if array is None:  # a column of mixed types: only its texts can run
        return np.fromiter((isinstance(v, str) and would_evaluate(v) for v in values), dtype=bool, count=len(values))
    return _to_mask(pc.and_not(pc.match_substring_regex(array, _FORMULA_PATTERN),
                               pc.match_substring_regex(array, _PLAIN_NUMBER_PATTERN)))


def escaped_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """A copy of ``frame`` whose text cells cannot run as formulas, and how many cells per column changed."""
    out, counts = frame.copy(), {}
    for col in _text_columns(frame):
        mask = _guarded(frame[col])
        if mask.any():
            values = frame[col].to_numpy(dtype=object, copy=True)
            values[mask] = ["'" + v for v in values[mask]]
            out[col] = values
            counts[str(col)] = int(mask.sum())
    return out, counts


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of frame whose text cells cannot run as spreadsheet formulas."""
    return escaped_frame(frame)[0]


@dataclass(frozen=True)
class Export:
    """An export's bytes and the cells it had to change (column → count), with the reason."""

    data: bytes = b""  # empty when the export went to a file, or was only counted
    changed: dict[str, int] = field(default_factory=dict)
    reason: str = ""  # a message id saying why those cells changed

    @property
    def changed_cells(self) -> int:
        return sum(self.changed.values())

    @property
    def escaped_cells(self) -> int:
        """Cells the CSV formula guard changed."""
        return self.changed_cells if self.reason == CSV_ESCAPED else 0

    @property
    def cleaned_cells(self) -> int:
        """Cells cut or cleaned to fit an Excel sheet."""
        return self.changed_cells if self.reason == EXCEL_CLEANED else 0

    def notice(self) -> Message | None:
        """What to tell the person downloading it; None when every cell is as it was."""
        if not self.changed_cells:
            return None
        return msg(self.reason, cells=format_count(self.changed_cells), columns=", ".join(map(repr, self.changed)))


# ----------------------------------------------------------------------------------------
# CSV
# ----------------------------------------------------------------------------------------
CSV_ESCAPED = "score.export.csv_escaped"
EXCEL_CLEANED = "score.export.excel_cleaned"


def write_csv(frame: pd.DataFrame, handle: IO[str], header: bool = True, guard: bool = True) -> dict[str, int]:
    """Append ``frame`` to an open text file; returns the cells the formula guard changed."""
    counts: dict[str, int] = {}
    if guard:
        frame, counts = escaped_frame(frame)
    frame.to_csv(handle, index=False, header=header, quoting=csv.QUOTE_MINIMAL)
    return counts


def csv_export(frame: pd.DataFrame, guard: bool = True) -> Export:
    """CSV for spreadsheets (UTF-8 with a BOM so Excel reads Chinese, formulas guarded) or,
    with ``guard=False``, the rows unchanged as plain UTF-8 for other tools."""
    buffer = io.StringIO()
    counts = write_csv(frame, buffer, guard=guard)
    return Export(buffer.getvalue().encode("utf-8-sig" if guard else "utf-8"), counts, CSV_ESCAPED)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 with BOM so Excel opens Chinese text correctly; formula cells guarded."""
    return csv_export(frame).data


# ----------------------------------------------------------------------------------------
# Excel
# ----------------------------------------------------------------------------------------
def _excel_value(value: Any) -> Any:
    """A value openpyxl can store: no NaN (an empty cell), no numpy scalars, no time zones
    (Excel has none: a date keeps the wall time it was written in)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_localize(None).to_pydatetime() if value.tzinfo else value.to_pydatetime()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, (int, float, str)) or hasattr(value, "isoformat"):
        return value
    return str(value)


def write_excel(frame: pd.DataFrame, target: Any) -> dict[str, int]:
    """Write ``frame`` as one sheet to a path or binary buffer, every text a typed string.

    openpyxl (pandas' writer too) turns a text that starts with ``=`` into a formula and ``#N/A``
    into an error value; here each such text gets a cell whose type is set to string after its
    value, and is written as it is. Returns the cells changed to fit the format."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("scored")
    counts: dict[str, int] = {}
    names = [str(c) for c in frame.columns]

    def typed(value: str, column: str) -> Any:
        if _EXCEL_ILLEGAL.search(value) or len(value) > EXCEL_MAX_CHARS:
            value = _EXCEL_ILLEGAL.sub("", value)[:EXCEL_MAX_CHARS]
            counts[column] = counts.get(column, 0) + 1
        if value[:1] not in ("=", "#"):
            return value  # openpyxl stores these as strings by itself (faster than a cell object)
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell

    sheet.append([typed(name, name) for name in names])
    for row in frame.itertuples(index=False, name=None):
        sheet.append([typed(v, names[i]) if isinstance(v, str) else _excel_value(v) for i, v in enumerate(row)])
    book.save(target)
    return counts


def excel_export(frame: pd.DataFrame) -> Export:
    buffer = io.BytesIO()
    counts = write_excel(frame, buffer)
    return Export(buffer.getvalue(), counts, EXCEL_CLEANED)


def to_excel_bytes(frame: pd.DataFrame) -> bytes:
    return excel_export(frame).data


# ----------------------------------------------------------------------------------------
# Parquet
# ----------------------------------------------------------------------------------------
def parquet_export(frame: pd.DataFrame) -> Export:
    """Parquet keeps every value and type as it is."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return Export(buffer.getvalue())


def _excel_changed(values: pd.Series) -> int:
    import pyarrow.compute as pc

    array = _as_arrow(values)
    if array is None:
        return sum(1 for v in values if isinstance(v, str) and (len(v) > EXCEL_MAX_CHARS or _EXCEL_ILLEGAL.search(v)))
    found = pc.or_(pc.match_substring_regex(array, _EXCEL_ILLEGAL.pattern),
                   pc.greater(pc.utf8_length(array), EXCEL_MAX_CHARS))
    return int(_to_mask(found).sum())


def export_changes(frame: pd.DataFrame) -> dict[str, Export]:
    """Which cells each export of ``frame`` would change, without writing it (so the page can say
    so beside the download buttons); these exports carry no bytes."""
    escaped = {str(c): int(n) for c in _text_columns(frame) if (n := _guarded(frame[c]).sum())}
    cleaned = {str(c): n for c in _text_columns(frame) if (n := _excel_changed(frame[c]))}
    return {"csv": Export(b"", escaped, CSV_ESCAPED), "csv_unchanged": Export(),
            "excel": Export(b"", cleaned, EXCEL_CLEANED), "parquet": Export()}
