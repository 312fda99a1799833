"""Where the table sits in a workbook or a text export: which sheet, which row holds the column
names, and which rows around the table are not data.

Exports made for people put a title in row 1 (``Q3 export``, often one merged cell), group the
columns under a second header row, and end with a ``Total`` row. Read as they are, the title
becomes the column names and the totals a data row, and every later message is about the wrong
table. Each thing recognised here is reported in a read note that names the rows, and can be
overridden: ``sheet`` (a name, or a number from 1) and ``header_row`` (numbered as Excel shows
rows, from 1).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import pandas as pd

from core.errors import DataError
from core.i18n import Message, msg

HEADER_ROW_FORMATS = ("excel", "csv", "tsv")
SCAN_ROWS = 30      # a title or a header further down than this is not looked for
_WIDTH_ROWS = 200   # rows that tell the table's usual width
_LOOK_BELOW = 50    # rows below a header candidate searched for repeats of its values
_TITLE_TEXT = 60    # characters of a title quoted in a note
# the whole cell, so that a last review reading "Total waste of money" stays a review
_TOTAL = re.compile(r"^(grand\s+)?(totals?|sum)(\s*\(.*\))?|合计|总计|小计|總計|合計|共计", re.IGNORECASE)
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
_DELIMITERS = (",", "\t", ";", "|")
_ASCII_SAFE = ("utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "ascii", "latin-1", "iso-8859-1", "cp1252")

Grid = list[list[str]]


@dataclass
class Layout:
    """How a grid of cells reads as a table."""

    header_row: int                  # 1-based row of the column names (the lower row of two)
    names: list[str]
    rows: Grid                       # the data rows, blank rows left out
    notes: list[Message] = field(default_factory=list)


@dataclass
class SheetTable:
    """One sheet of a workbook read as a table of strings."""

    frame: pd.DataFrame
    sheets: list[str]
    sheet: str | None
    header_row: int | None
    notes: list[Message]


def check_options(fmt: str, filename: str, sheet: str | int | None, header_row: int | None) -> None:
    """Refuse a sheet for a file without sheets and a header row for a file without rows."""
    if sheet is not None and fmt != "excel":
        raise DataError("sheets.err.not_a_workbook", filename=filename)
    if header_row is not None:
        if fmt not in HEADER_ROW_FORMATS:
            raise DataError("sheets.err.header_row_format", filename=filename, format=fmt)
        if header_row < 1:
            raise DataError("sheets.err.header_row_invalid", row=header_row)


# ----------------------------------------------------------------------------------------
# Workbooks
# ----------------------------------------------------------------------------------------
def read_workbook(data: bytes, filename: str, sheet: str | int | None = None,
                  header_row: int | None = None) -> SheetTable:
    """The chosen sheet as a table, its header row detected or given. Without a choice, the first
    sheet with a table (two rows or more) is read, so a cover or notes sheet in front is passed over."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for damaged workbooks
        raise DataError("sheets.err.unreadable", filename=filename, kind=type(exc).__name__) from exc
    try:
        names = list(book.sheetnames)
        if not names:
            raise DataError("sheets.err.no_sheets", filename=filename)
        chosen = pick_sheet(names, sheet, filename)
        grid: Grid = []
        fallback: tuple[str, Grid] | None = None
        for name in [chosen] if chosen else names:
            grid = _grid(book[name])
            if sum(1 for row in grid if row) >= 2:  # names and a row: a table, not a cover or notes sheet
                chosen = name
                break
            fallback = fallback or ((name, grid) if grid else None)
        else:
            chosen, grid = fallback or (chosen or names[0], [])
    finally:
        book.close()
    notes: list[Message] = []
    if len(names) > 1:
        notes.append(msg("sheets.note.sheet_read", n=len(names), sheet=chosen))
    if not grid:
        if sheet is not None:
            raise DataError("sheets.err.empty_sheet", filename=filename, sheet=chosen, sheets=_listed(names))
        return SheetTable(pd.DataFrame(), names, chosen, None, notes)
    layout = find_layout(grid, _merged_ranges(data, chosen), header_row, sheet=chosen)
    return SheetTable(_frame(layout), names, chosen, layout.header_row, notes + layout.notes)


def pick_sheet(names: list[str], sheet: str | int | None, filename: str) -> str | None:
    """A sheet by name (exact, then ignoring case and spaces) or by number from 1; None: not chosen."""
    if sheet is None:
        return None
    wanted = str(sheet).strip()
    if wanted in names:
        return wanted
    folded = [n for n in names if n.strip().casefold() == wanted.casefold()]
    if len(folded) == 1:
        return folded[0]
    if wanted.isdigit() and 1 <= int(wanted) <= len(names):
        return names[int(wanted) - 1]
    raise DataError("sheets.err.no_such_sheet", filename=filename, sheet=wanted, sheets=_listed(names),
                    n=len(names))


def _listed(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _grid(worksheet: Any) -> Grid:
    """Every row as trimmed text cells, empty rows kept (row numbers must match Excel's)."""
    if not hasattr(worksheet, "iter_rows"):  # a chart sheet holds no cells
        return []
    worksheet.reset_dimensions()  # some writers store a wrong size; read what is there
    rows: Grid = []
    for values in worksheet.iter_rows(min_row=1, min_col=1, values_only=True):
        cells = [_cell_text(v) for v in values]
        while cells and not cells[-1]:
            cells.pop()
        rows.append(cells)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _cell_text(value: Any) -> str:
    """A cell as pandas' ``read_excel(dtype=str)`` writes it: whole floats without '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return "" if not text.strip() else text


def _merged_ranges(data: bytes, sheet: str) -> list[tuple[int, int, int, int]]:
    """Merged cells of a sheet as (first col, first row, last col, last row), 1-based.

    openpyxl's fast read-only mode does not expose merges, so they are read from the sheet's XML,
    streamed: ``<mergeCells>`` comes after all the rows. Merges are a hint; a workbook whose
    parts cannot be found simply has none."""
    from openpyxl.utils.cell import range_boundaries

    pattern = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]{1,3}\d+:[A-Z]{1,3}\d+)"')
    found: list[bytes] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(_sheet_part(archive, sheet)) as part:
            tail = b""
            while chunk := part.read(1 << 22):
                block = tail + chunk
                found += pattern.findall(block)
                tail = block[-200:] if not block.endswith(b">") else b""
                found = found[:10_000]
    except (KeyError, StopIteration, zipfile.BadZipFile, ElementTree.ParseError, OSError):
        return []
    return [range_boundaries(ref.decode()) for ref in dict.fromkeys(found)]


def _sheet_part(archive: zipfile.ZipFile, sheet: str) -> str:
    def local(name: str) -> str:
        return name.rsplit("}", 1)[-1]

    book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rel_id = next(next(v for k, v in node.attrib.items() if local(k) == "id")
                  for node in book.iter() if local(node.tag) == "sheet" and node.get("name") == sheet)
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    target = next(node.get("Target", "") for node in rels.iter() if node.get("Id") == rel_id)
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _frame(layout: Layout) -> pd.DataFrame:
    width = max([len(layout.names), *(len(r) for r in layout.rows)])
    names = layout.names + [""] * (width - len(layout.names))
    rows = [r + [""] * (width - len(r)) for r in layout.rows]
    return pd.DataFrame(rows or None, columns=names, dtype="str")


# ----------------------------------------------------------------------------------------
# Finding the header, titles, two-row headers and totals in a grid
# ----------------------------------------------------------------------------------------
def find_layout(grid: Grid, merges: list[tuple[int, int, int, int]] | tuple = (), header_row: int | None = None,
                sheet: str = "") -> Layout:
    """Read ``grid`` (rows of text cells, row 1 first) as a table: names, data rows, and notes
    that say what was recognised. ``header_row`` (1-based) overrides the detection."""
    last = len(grid)
    if header_row is not None:
        if header_row > last:
            raise DataError("sheets.err.header_beyond", row=header_row, sheet=sheet, last=last)
        if not grid[header_row - 1]:
            first = next(i for i, r in enumerate(grid, start=1) if r)
            raise DataError("sheets.err.header_blank", row=header_row, sheet=sheet, first=first)
        top, names, notes = header_row - 1, list(grid[header_row - 1]), [msg("sheets.note.header_chosen", row=header_row)]
    else:
        top, names, notes = _detect_header(grid, merges)
    rows = [r for r in grid[top + 1:] if r]
    totals = _totals_note(grid, rows)
    if totals is not None:
        rows.pop()
        notes.append(totals)
    return Layout(top + 1, names, rows, notes)


def _width(row: list[str]) -> int:
    return sum(1 for c in row if c)


def _usual_width(grid: Grid) -> int:
    """The most common number of filled cells among rows with two or more (ties: the wider)."""
    widths = Counter(w for w in map(_width, grid[:_WIDTH_ROWS]) if w >= 2)
    return max(widths, key=lambda w: (widths[w], w)) if widths else 1


def _is_number(text: str) -> bool:
    return bool(_NUMBER.match(text.strip()))


def _header_like(grid: Grid, index: int, distinct: bool = True) -> bool:
    """Column names: words (not only numbers, distinct unless under groups) that do not come
    back in their column below. A data row fails the last test through its label ('positive'
    recurs) or its numbers."""
    row = grid[index]
    filled = [c.strip() for c in row if c]
    if not filled or all(_is_number(c) for c in filled) or (distinct and len(set(filled)) < len(filled)):
        return False
    below = grid[index + 1:index + 1 + _LOOK_BELOW]
    return not any(cell and any(col < len(r) and r[col].strip() == cell.strip() for r in below)
                   for col, cell in enumerate(row))


def _row_merges(merges, row: int) -> list[tuple[int, int]]:
    """Horizontal merges starting in 1-based ``row`` as (first col, last col), 1-based."""
    return [(c1, c2) for c1, r1, c2, _ in merges if r1 == row and c2 > c1]


def _detect_header(grid: Grid, merges) -> tuple[int, list[str], list[Message]]:
    """The row of the column names (0-based), the names, and notes on the rows above them."""
    first = next(i for i, r in enumerate(grid) if r)
    need = max(2, math.ceil(_usual_width(grid) / 2))
    top = next((i for i, r in enumerate(grid[:SCAN_ROWS]) if _width(r) >= need), first)
    if top != first and not _header_like(grid, top):
        top = first
    upper = None
    if top > first and _width(grid[top - 1]) >= 2 and _groups_columns(grid, top - 1, merges):
        upper = top - 1  # a sparse group row too narrow to be taken for the header itself
    elif top + 2 < len(grid) and _groups_columns(grid, top, merges) and _header_like(grid, top + 1, False):
        upper, top = top, top + 1
    notes = _title_notes(grid, upper if upper is not None else top, merges, top + 1)
    if upper is None:
        return top, list(grid[top]), notes
    names, note = _two_row_names(grid[upper], grid[top], _row_merges(merges, upper + 1), upper + 1)
    return top, names, [*notes, note]


def _title_notes(grid: Grid, start: int, merges, header: int) -> list[Message]:
    """A note on the filled rows above row ``start`` (0-based): they look like a title."""
    above = [i for i in range(start) if grid[i]]
    if not above:
        return []
    title = next(c for c in grid[above[0]] if c).strip()[:_TITLE_TEXT]
    if len(above) > 1:
        return [msg("sheets.note.title_rows", first=above[0] + 1, last=above[-1] + 1, title=title, header=header)]
    merged = bool(_row_merges(merges, above[0] + 1))
    key = "sheets.note.title_row_merged" if merged else "sheets.note.title_row"
    return [msg(key, row=above[0] + 1, title=title, header=header)]


def _groups_columns(grid: Grid, top: int, merges) -> bool:
    """Whether row ``top`` groups the columns of the row below it: a cell merged across columns,
    or gaps over columns that the row below names."""
    upper, lower = grid[top], grid[top + 1]
    if not lower or _width(lower) < 2:
        return False
    if _row_merges(merges, top + 1):
        return True
    gaps = [c for c, cell in enumerate(lower) if cell and not (c < len(upper) and upper[c])]
    return bool(gaps) and _width(upper) >= 1 and _width(lower) > _width(upper)


def _two_row_names(upper: list[str], lower: list[str], merged: list[tuple[int, int]],
                   upper_row: int) -> tuple[list[str], Message]:
    """Column names of a two-row header: the lower row's when they are distinct, else
    'Group / Column'. A group spans its merged cells, or else runs right over the gaps."""
    width = max(len(upper), len(lower))
    upper = upper + [""] * (width - len(upper))
    lower = lower + [""] * (width - len(lower))
    groups = list(upper)
    if merged:
        for c1, c2 in merged:
            for col in range(c1, min(c2, width)):
                groups[col] = upper[c1 - 1]
    else:
        for col in range(1, width):
            if not groups[col] and lower[col] and lower[col - 1]:
                groups[col] = groups[col - 1]
    named = [c.strip() for c in lower if c]
    distinct = len(set(named)) == len(named)
    names, combined = [], []
    for group, name in zip(groups, lower, strict=True):
        if group and name and group.strip() != name.strip() and not distinct:
            names.append(f"{group.strip()} / {name.strip()}")
            combined.append(names[-1])
        else:
            names.append(name or group)
    spans = ", ".join(f"'{g.strip()}'" for g in dict.fromkeys(g for g, n in zip(groups, lower, strict=True) if g and n))
    if distinct:
        return names, msg("sheets.note.two_row_lower", upper=upper_row, lower=upper_row + 1, groups=spans or "—")
    return names, msg("sheets.note.two_row_combined", upper=upper_row, lower=upper_row + 1,
                      example=combined[0] if combined else names[0])


def _totals_note(grid: Grid, rows: Grid) -> Message | None:
    """A note when the last data row adds the others up: it starts with 'Total', '合计', '总计'
    ..., or every number in it is the sum of its column above."""
    if len(rows) < 3:
        return None
    last = rows[-1]
    row_number = max(i for i, r in enumerate(grid, start=1) if r is last)
    label = next(c for c in last if c).strip()
    if _TOTAL.fullmatch(label.rstrip(":：").strip()):
        return msg("sheets.note.totals_word", row=row_number, label=label[:_TITLE_TEXT])
    numbers = {c: _to_float(v) for c, v in enumerate(last) if v}
    if len(numbers) < 1 or any(v is None for v in numbers.values()):
        return None
    sums = 0
    for col, value in numbers.items():
        above = [_to_float(r[col]) for r in rows[:-1] if col < len(r) and r[col]]
        values = [v for v in above if v is not None]
        if len(values) < 2 or len(values) < len(above):
            return None
        sums += math.isclose(sum(values), value, rel_tol=1e-9, abs_tol=1e-6)
    return msg("sheets.note.totals_sum", row=row_number) if sums == len(numbers) else None


def _to_float(text: str) -> float | None:
    text = text.strip()
    return float(text.replace(",", "")) if _is_number(text) else None


# ----------------------------------------------------------------------------------------
# Text exports (CSV, TSV): title lines above the header
# ----------------------------------------------------------------------------------------
def skip_title_lines(data: bytes, encoding: str, fmt: str, filename: str,
                     header_row: int | None = None) -> tuple[bytes, int | None, list[Message]]:
    """The file from its header line on, the 1-based line of the header, and notes.

    A title line has no delimiter ('Q3 export') and sits above a header whose delimiter count
    the next lines repeat. Only ASCII-compatible encodings are cut (a newline is one byte)."""
    if fmt not in ("csv", "tsv"):
        return data, None, []
    if codecs.lookup(encoding).name not in {codecs.lookup(e).name for e in _ASCII_SAFE}:
        if header_row is not None and header_row > 1:
            raise DataError("sheets.err.header_row_encoding", filename=filename, encoding=encoding)
        return data, None, []
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    body = data[len(bom):]
    lines = [line.decode(encoding, errors="replace").rstrip("\r")
             for line in body[:1 << 16].split(b"\n")[:SCAN_ROWS + 8]]
    if header_row is not None:
        skip = header_row - 1
        total = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
        if skip >= total:
            raise DataError("sheets.err.header_beyond_lines", row=header_row, filename=filename, last=total)
        notes = [msg("sheets.note.header_chosen", row=header_row)]
    else:
        skip = _title_lines(lines, fmt)
        titled = [line.strip() for line in lines[:skip] if line.strip()]
        notes = [_title_note(titled, lines, skip)] if titled else []
    cut = 0
    for _ in range(skip):
        cut = body.index(b"\n", cut) + 1
    return bom + body[cut:], skip + 1, notes


def _title_note(titled: list[str], lines: list[str], skip: int) -> Message:
    numbers = [i for i, line in enumerate(lines[:skip], start=1) if line.strip()]
    title = titled[0].strip('"')[:_TITLE_TEXT]
    if len(numbers) == 1:
        return msg("sheets.note.title_row", row=numbers[0], title=title, header=skip + 1)
    return msg("sheets.note.title_rows", first=numbers[0], last=numbers[-1], title=title, header=skip + 1)


def _title_lines(lines: list[str], fmt: str) -> int:
    """How many lines above the header form a title (0 when the header comes first)."""
    delimiters = ("\t",) if fmt == "tsv" else _DELIMITERS
    skip = 0
    while skip < min(5, len(lines)) and not any(d in lines[skip] for d in delimiters):
        skip += 1
    if skip == 0 or skip >= len(lines) or not any(line.strip() for line in lines[:skip]):
        return 0
    header = lines[skip]
    delimiter = max(delimiters, key=header.count)
    try:
        records = list(csv.reader(lines[skip:skip + 7], delimiter=delimiter))[:6]
    except csv.Error:  # a stray carriage return inside a line: not a table to cut
        return 0
    fields = len(records[0]) if records else 0
    if fields < 2 or len(records) < 3 or any(len(r) != fields for r in records[1:-1]):
        return 0  # the last line read may be cut off: it does not count
    return skip
