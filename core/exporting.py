"""Exports a person opens in Excel: CSV and XLSX with formula injection neutralised.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by spreadsheet programs; such text cells get a leading apostrophe. Plain numbers such
as ``-3.5`` are left alone, so numeric columns stay numeric.
"""

from __future__ import annotations

import io
import re

import pandas as pd

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def escape_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_TRIGGERS) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of frame whose text cells cannot run as spreadsheet formulas."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(escape_cell, na_action="ignore")
    return out


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 with BOM so Excel opens Chinese text correctly."""
    return escape_formulas(frame).to_csv(index=False).encode("utf-8-sig")


def to_excel_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    escape_formulas(frame).to_excel(buffer, index=False, engine="openpyxl")
    return buffer.getvalue()
