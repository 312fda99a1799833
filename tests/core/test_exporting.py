"""Exports change only what they must, and say so: typed strings in Excel, a formula guard in CSV
only where a spreadsheet would evaluate, unchanged CSV and Parquet for other tools."""

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from core import exporting
from core.exporting import csv_export, escaped_frame, excel_export, export_changes, parquet_export, would_evaluate

RUNS = ["=1+1", "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "  =HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0",
        "-cmd|' /C calc'!A0", "@SUM(1+9)*cmd|' /C calc'!A0", "+1-555-0100", "-A1", "+A1:B2*2", "- 2 + 3",
        "\n=1", "+1 <3", "=", "-(1+2)*3", "+1+1\n"]
STAYS = ["@alice great product", "- bullet text", "+1 agree", "+44 20 7946 0958", "-3.5", "-5%", "+1", " -1e5 ",
         "fine", "", "   ", "-", "--", "-_-", "+++", "@", "@ alice hi", "-10 degrees today", "+ great", "@alice | bob",
         "-1,000", "hello =1+1", "\tx", "\rx", "很好 =1+1", "-２+３", "+１+１", "-1\u3000+1x"]


@pytest.mark.parametrize("text", RUNS)
def test_cells_a_spreadsheet_would_run_are_guarded(text):
    assert would_evaluate(text)
    assert exporting.escape_cell(text) == "'" + text


@pytest.mark.parametrize("text", STAYS)
def test_ordinary_posts_stay_as_they_are(text):
    assert not would_evaluate(text)
    assert exporting.escape_cell(text) == text


def test_the_column_rule_and_the_cell_rule_agree():
    """Whole columns go through Arrow's regex engine, single cells through Python's: same rule."""
    rng = np.random.default_rng(0)
    alphabet = list("=+-@ \t\n(),.|!:$%&*/^<>019aAzZ") + ["SUM(", "cmd|", "１", "\u3000", "é", "很"]
    texts = ["".join(rng.choice(alphabet, rng.integers(0, 9))) for _ in range(3000)] + RUNS + STAYS
    _, counts = escaped_frame(pd.DataFrame({"text": texts}))
    assert counts.get("text", 0) == sum(would_evaluate(t) for t in texts) > 0
    mixed = pd.Series(texts[:200] + [3, None, 2.5], dtype=object)  # mixed types take the Python path
    assert exporting._guarded(mixed).tolist() == [isinstance(t, str) and would_evaluate(t) for t in mixed]


def frame_of_posts():
    return pd.DataFrame({
        "text": ["=1+1", "@alice great product", "- bullet text", "+1 agree", "+1+1", "#N/A", "plain 很好"],
        "user": ["@bob", "=cmd|' /C calc'!A0", "x", "y", "z", "w", "v"],
        "n": [1, -2, 3, 4, 5, 6, 7], "score": [0.5, -0.25, np.nan, 1.0, 2.0, 3.0, 4.0]})


def test_csv_for_spreadsheets_counts_what_it_changed_and_says_why():
    frame = frame_of_posts()
    export = csv_export(frame)
    assert export.changed == {"text": 2, "user": 1} and export.changed_cells == export.escaped_cells == 3
    back = pd.read_csv(io.BytesIO(export.data), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert back["text"].tolist() == ["'=1+1", "@alice great product", "- bullet text", "+1 agree", "'+1+1", "#N/A",
                                     "plain 很好"]
    assert back["n"].tolist() == ["1", "-2", "3", "4", "5", "6", "7"]  # numbers are never touched
    assert export.data.startswith("\ufeff".encode())
    notice = export.notice()
    assert "3 cells" in str(notice) and "'text', 'user'" in str(notice) and "apostrophe" in str(notice)
    assert "撇号" in notice.render("zh") and "3" in notice.render("zh")
    assert frame["text"][0] == "=1+1"  # the caller's frame is left alone


def test_unchanged_csv_and_parquet_keep_every_value():
    frame = frame_of_posts()
    raw = csv_export(frame, guard=False)
    assert raw.changed_cells == 0 and raw.notice() is None and not raw.data.startswith("\ufeff".encode())
    back = pd.read_csv(io.BytesIO(raw.data), dtype=str, keep_default_na=False)
    assert back["text"].tolist() == frame["text"].tolist() and back["user"].tolist() == frame["user"].tolist()
    parquet = parquet_export(frame)
    assert parquet.changed_cells == 0
    assert pd.read_parquet(io.BytesIO(parquet.data)).equals(frame)


def test_excel_cells_are_typed_strings_without_apostrophes():
    frame = frame_of_posts()
    frame.loc[6, "text"] = "bad\x0bchar"
    export = excel_export(frame)
    assert export.changed == {"text": 1} and export.cleaned_cells == 1 and "control characters" in str(export.notice())
    sheet = load_workbook(io.BytesIO(export.data)).active
    rows = list(sheet.iter_rows(values_only=False))
    assert [c.value for c in rows[0]] == ["text", "user", "n", "score"]
    texts = [r[0] for r in rows[1:]]
    assert [c.value for c in texts] == ["=1+1", "@alice great product", "- bullet text", "+1 agree", "+1+1", "#N/A",
                                       "badchar"]
    assert {c.data_type for c in texts} == {"s"}  # no formula ('f'), no error value ('e')
    assert [r[2].value for r in rows[1:]] == [1, -2, 3, 4, 5, 6, 7] and rows[3][3].value is None  # NaN: empty
    xml = zipfile.ZipFile(io.BytesIO(export.data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "'=1+1" not in xml


def test_excel_keeps_dates_and_cuts_texts_over_its_limit():
    frame = pd.DataFrame({"when": pd.to_datetime(["2026-03-01 08:30"]).tz_localize("Asia/Shanghai"),
                          "text": ["x" * (exporting.EXCEL_MAX_CHARS + 10)], "flag": [np.True_]})
    export = excel_export(frame)
    row = next(load_workbook(io.BytesIO(export.data)).active.iter_rows(min_row=2, values_only=True))
    assert row[0].isoformat() == "2026-03-01T08:30:00"  # the wall time it was written in
    assert len(row[1]) == exporting.EXCEL_MAX_CHARS and row[2] is True and export.changed == {"text": 1}


def test_export_changes_counts_without_writing():
    changes = export_changes(frame_of_posts())
    assert changes["csv"].changed == {"text": 2, "user": 1}
    assert changes["excel"].changed_cells == 0 and changes["csv_unchanged"].changed_cells == 0
    assert changes["parquet"].notice() is None


def test_old_helpers_keep_their_safe_behaviour():
    frame = pd.DataFrame({"text": ["=1+1", "@alice hi"]})
    assert exporting.to_csv_bytes(frame).decode("utf-8-sig").splitlines() == ["text", "'=1+1", "@alice hi"]
    cell = load_workbook(io.BytesIO(exporting.to_excel_bytes(frame))).active["A2"]
    assert cell.value == "=1+1" and cell.data_type == "s"
    assert exporting.escape_formulas(frame)["text"].tolist() == ["'=1+1", "@alice hi"]
