"""Download writers of a scored file: the previous writers against the new ones (issue 11).

A 100,000-row scored frame (social-media posts, a fifth starting with ``@``, ``-`` or ``+``, a
few real formulas, a date, the label, its confidence and two probabilities) is written as CSV,
Excel and Parquet by the writers before issue 11 (an apostrophe before every text starting with
``= + - @``, tab or CR; pandas' Excel writer) and by today's (formula guard only where a
spreadsheet would evaluate, typed strings in Excel), each followed by rendering its notice in
Chinese. Each writer runs ``--repeat`` times; the best time is printed.

    python bench/bench_exports.py [--rows 100000] [--repeat 3] [--skip-excel]
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core import exporting, i18n  # noqa: E402

_OLD_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_OLD_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _old_escape(frame: pd.DataFrame) -> pd.DataFrame:
    """The guard as it was before issue 11: an apostrophe before every text starting with a trigger."""
    def cell(value: object) -> object:
        if isinstance(value, str) and value.startswith(_OLD_TRIGGERS) and not _OLD_NUMBER.match(value):
            return "'" + value
        return value

    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(cell, na_action="ignore")
    return out


def old_csv(frame: pd.DataFrame) -> bytes:
    return _old_escape(frame).to_csv(index=False).encode("utf-8-sig")


def old_excel(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    _old_escape(frame).to_excel(buffer, index=False, engine="openpyxl")
    return buffer.getvalue()


def new_with_notice(export: exporting.Export) -> bytes:
    notice = export.notice()
    if notice is not None:
        notice.render("zh")
    return export.data


def scored_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    starts = np.array(["@alice ", "- ", "+1 ", "", "", "", "", "", "", "=1+", "#N/A "], dtype=object)
    words = np.array(["great", "product", "awful", "service", "很好", "差评", "delivery", "late", "love", "it",
                      "price", "refund"], dtype=object)
    texts = [starts[rng.integers(len(starts))] + " ".join(rng.choice(words, 12)) for _ in range(rows)]
    probs = rng.random(rows)
    return pd.DataFrame({
        "id": np.arange(rows), "text": texts,
        "date": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 90 * 86400, rows), unit="s"),
        "label": np.where(probs > 0.5, "positive", "negative"), "confidence": np.maximum(probs, 1 - probs),
        "prob_negative": 1 - probs, "prob_positive": probs})


def best_of(repeat: int, make) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = len(make())
        times.append(time.perf_counter() - start)
    return min(times), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-excel", action="store_true")
    args = parser.parse_args()
    frame = scored_frame(args.rows)
    i18n.strings("zh")  # the locale files are read once per process, not per download
    pairs = [("CSV (spreadsheets)", lambda: old_csv(frame), lambda: new_with_notice(exporting.csv_export(frame))),
             ("CSV unchanged", None, lambda: new_with_notice(exporting.csv_export(frame, guard=False))),
             ("Parquet", None, lambda: new_with_notice(exporting.parquet_export(frame)))]
    if not args.skip_excel:
        pairs.insert(1, ("Excel", lambda: old_excel(frame), lambda: new_with_notice(exporting.excel_export(frame))))
    print(f"{args.rows:,} scored rows; best of {args.repeat}")
    for name, old, new in pairs:
        old_text = "" if old is None else f"old {best_of(args.repeat, old)[0]:6.2f} s  "
        seconds, size = best_of(args.repeat, new)
        print(f"{name:<20} {old_text}new {seconds:6.2f} s  ({size / 1e6:.1f} MB)")
    changes = exporting.export_changes(frame)
    start = time.perf_counter()
    exporting.export_changes(frame)
    print(f"cells changed: CSV {changes['csv'].changed_cells:,} (old guard: "
          f"{int((_old_escape(frame[['text']]) != frame[['text']]).sum().sum()):,}), Excel "
          f"{changes['excel'].changed_cells:,}; counting them for the page: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
