"""Sheets, header rows, titles, two-row headers and totals rows, on real .xlsx files made with openpyxl."""

import io

import openpyxl
import pytest

from core.data import detect_columns, prepare_dataset, read_table
from core.errors import DataError
from core.i18n import render
from core.sheets import find_layout
from tests.conftest import labelled_rows

ROWS = labelled_rows(10)  # 20 rows, 10 per class


def workbook(*sheets: tuple[str, list[list]], merges: dict[str, list[str]] | None = None) -> bytes:
    """An .xlsx whose sheets hold the given rows (None = an empty cell), with merged ranges."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
        for ref in (merges or {}).get(title, []):
            sheet.merge_cells(ref)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def notes_of(table) -> list[str]:
    return [str(n) for n in table.notes]


def test_merged_title_row_is_skipped_and_reported():
    rows = [["Q3 export", None, None], ["text", "label", "stars"], *[[t, lab, 3] for t, lab in ROWS]]
    table = read_table(workbook(("Data", rows), merges={"Data": ["A1:C1"]}), "q3.xlsx")
    assert list(table.frame.columns) == ["text", "label", "stars"]
    assert len(table.frame) == 20 and table.header_row == 2
    assert "Row 1 looks like a title ('Q3 export', one merged cell); the column names were read from row 2." in notes_of(table)
    assert "第 1 行看起来是标题（“Q3 export”，一个合并单元格），列名取自第 2 行。" in [n.render("zh") for n in table.notes]
    prepared = prepare_dataset(table)
    assert prepared.report.ok and prepared.report.class_counts == {"negative": 10, "positive": 10}


def test_unmerged_title_over_a_wide_table_and_a_subtitle():
    rows = [["Brand monitor"], ["exported 2026-10-07"], [], ["id", "text", "label", "source"],
            *[[i, t, lab, "web"] for i, (t, lab) in enumerate(ROWS)]]
    table = read_table(workbook(("Sheet1", rows)), "monitor.xlsx")
    assert list(table.frame.columns) == ["id", "text", "label", "source"] and table.header_row == 4
    assert "Rows 1–2 look like a title ('Brand monitor'); the column names were read from row 4." in notes_of(table)


def test_two_column_table_with_a_title_reads_the_real_labels():
    """The issue's case: a title read as the header made labels like 'Label' and '60' classes."""
    rows = [["Survey answers"], ["Comment", "Label"], *[[t, lab] for t, lab in ROWS]]
    table = read_table(workbook(("S", rows)), "survey.xlsx")
    assert detect_columns(table.frame).label == "Label"
    assert prepare_dataset(table).report.labels == ["negative", "positive"]


def test_two_row_header_with_distinct_names_keeps_the_lower_row():
    rows = [[None, "Review", None, "Meta", None], ["id", "text", "label", "date", "channel"],
            *[[i, t, lab, "2026-10-01", "app"] for i, (t, lab) in enumerate(ROWS)]]
    table = read_table(workbook(("Data", rows), merges={"Data": ["B1:C1", "D1:E1"]}), "two.xlsx")
    assert list(table.frame.columns) == ["id", "text", "label", "date", "channel"]
    assert table.header_row == 2 and len(table.frame) == 20
    assert ("Rows 1 and 2 form a two-row header; the column names are those of row 2 "
            "(row 1 groups them: 'Review', 'Meta').") in notes_of(table)


def test_two_row_header_with_repeated_names_combines_group_and_column():
    rows = [["Review", None, "Q1", None, "Q2", None], ["text", "label", "count", "share", "count", "share"],
            *[[t, lab, i, 0.5, i + 1, 0.25] for i, (t, lab) in enumerate(ROWS)]]
    table = read_table(workbook(("Data", rows)), "quarters.xlsx")
    assert list(table.frame.columns) == ["Review / text", "Review / label", "Q1 / count", "Q1 / share",
                                         "Q2 / count", "Q2 / share"]
    assert any("'Group / Column' (for example 'Review / text')" in n for n in notes_of(table))
    assert detect_columns(table.frame).text == "Review / text"


def test_title_above_a_two_row_header():
    rows = [["Q3 export"], [None, "Review", None, "Meta"], ["id", "text", "label", "source"],
            *[[i, t, lab, "web"] for i, (t, lab) in enumerate(ROWS)]]
    table = read_table(workbook(("D", rows), merges={"D": ["A1:D1", "B2:C2"]}), "q3.xlsx")
    assert list(table.frame.columns) == ["id", "text", "label", "source"] and table.header_row == 3
    assert notes_of(table)[:2] == [
        "Row 1 looks like a title ('Q3 export', one merged cell); the column names were read from row 3.",
        "Rows 2 and 3 form a two-row header; the column names are those of row 3 (row 2 groups them: 'Review', 'Meta').",
    ]


@pytest.mark.parametrize("word", ["Total", "合计", "总计", "Grand total:"])
def test_totals_row_with_a_word_is_left_out(word):
    rows = [["text", "label", "likes"], *[[t, lab, 2] for t, lab in ROWS], [word, None, 40]]
    table = read_table(workbook(("D", rows)), "likes.xlsx")
    assert len(table.frame) == 20 and word not in set(table.frame["text"])
    assert f"Row 22 looks like a totals row ('{word}'); it was left out of the data." in notes_of(table)


def test_totals_row_of_sums_is_left_out_but_a_last_data_row_is_kept():
    rows = [["text", "label", "likes", "shares"], *[[t, lab, i, 1] for i, (t, lab) in enumerate(ROWS)]]
    table = read_table(workbook(("D", [*rows, [None, None, sum(range(20)), 20]])), "sums.xlsx")
    assert len(table.frame) == 20
    assert any("Row 22 looks like a totals row (each of its numbers is the sum" in n for n in notes_of(table))
    for last in (["one more review", "positive", 3, 1], ["Total waste of money", "negative", 40, 20]):
        plain = read_table(workbook(("D", [*rows, last])), "plain.xlsx")
        assert len(plain.frame) == 21 and not any("totals" in n for n in notes_of(plain))


def test_plain_workbook_reads_as_before():
    rows = [["text", "label"], *[[t, lab] for t, lab in ROWS]]
    table = read_table(workbook(("D", rows)), "plain.xlsx")
    assert list(table.frame.columns) == ["text", "label"] and len(table.frame) == 20
    assert table.header_row == 1 and table.sheets == ["D"] and table.notes == []


def test_cells_read_as_text_like_pandas():
    rows = [["text", "label", "n", "share", "flag"], *[[t, lab, 3.0, 0.25, True] for t, lab in ROWS]]
    frame = read_table(workbook(("D", rows)), "types.xlsx").frame
    assert frame.iloc[0][["n", "share", "flag"]].tolist() == ["3", "0.25", "True"]


def test_several_sheets_default_pick_by_name_and_number():
    reviews = [["text", "label"], *[[t, lab] for t, lab in ROWS]]
    other = [["name", "value"], ["a", 1], ["b", 2]]
    data = workbook(("Empty", []), ("Read me", [["Exported by the brand monitor"]]), ("Reviews", reviews),
                    ("Other", other))
    default = read_table(data, "book.xlsx")
    assert default.sheet == "Reviews" and default.sheets == ["Empty", "Read me", "Reviews", "Other"]
    assert "The workbook has 4 sheets; sheet 'Reviews' was read." in notes_of(default)
    assert list(read_table(data, "book.xlsx", sheet="Other").frame.columns) == ["name", "value"]
    assert read_table(data, "book.xlsx", sheet="other").sheet == "Other"
    assert read_table(data, "book.xlsx", sheet=4).sheet == "Other"
    assert read_table(data, "book.xlsx", sheet="3").sheet == "Reviews"
    with pytest.raises(DataError, match=r"column names \(Exported by the brand monitor\) but no rows"):
        read_table(data, "book.xlsx", sheet="Read me")
    only_notes = workbook(("Read me", [["nothing here"]]))
    with pytest.raises(DataError, match="but no rows"):
        read_table(only_notes, "notes.xlsx")


def test_unknown_and_empty_sheets_list_the_sheets():
    data = workbook(("Empty", []), ("Reviews", [["text", "label"], ["a", "b"]]))
    with pytest.raises(DataError) as err:
        read_table(data, "book.xlsx", sheet="Sheet9")
    assert str(err.value) == ("The workbook 'book.xlsx' has no sheet 'Sheet9'. Its sheets are 'Empty', 'Reviews': "
                              "pick one by name, or by number from 1 to 2.")
    assert "工作表“Sheet9”" in render(err.value, "zh")
    with pytest.raises(DataError, match="Sheet 'Empty' of 'book.xlsx' is empty.*'Empty', 'Reviews'"):
        read_table(data, "book.xlsx", sheet="Empty")


def test_header_row_override_and_bad_header_rows():
    rows = [["Q3 export"], ["text", "label"], *[[t, lab] for t, lab in ROWS]]
    data = workbook(("Data", rows))
    table = read_table(data, "q3.xlsx", header_row=1)
    assert list(table.frame.columns)[0] == "Q3 export" and len(table.frame) == 21
    assert notes_of(table) == ["The column names were read from row 1, as chosen."]
    assert read_table(data, "q3.xlsx", header_row=2).header_row == 2
    with pytest.raises(DataError, match="Row 99 cannot hold the column names: sheet 'Data' has data only in rows 1 to 22"):
        read_table(data, "q3.xlsx", header_row=99)
    with pytest.raises(DataError, match="must be 1 or more"):
        read_table(data, "q3.xlsx", header_row=0)
    with pytest.raises(DataError, match="has column names .* but no rows"):
        read_table(data, "q3.xlsx", header_row=22)
    gap = workbook(("Data", [["text", "label"], [], *[[t, lab] for t, lab in ROWS]]))
    with pytest.raises(DataError, match="Row 2 of sheet 'Data' is empty.*first row with content is row 1"):
        read_table(gap, "gap.xlsx", header_row=2)


def test_options_on_files_without_sheets_or_rows():
    csv = b"text,label\n" + b"".join(f"{t},{lab}\n".encode() for t, lab in ROWS)
    with pytest.raises(DataError, match="not an Excel workbook, so it has no sheets"):
        read_table(csv, "r.csv", sheet="Data")
    with pytest.raises(DataError, match="jsonl file, which has no header row to pick"):
        read_table(b'{"text": "a", "label": "b"}\n', "r.jsonl", header_row=2)


def test_csv_title_line_is_skipped_and_reported():
    body = "".join(f"{t},{lab}\n" for t, lab in ROWS)
    table = read_table(f"Q3 export\ntext,label\n{body}".encode(), "q3.csv")
    assert list(table.frame.columns) == ["text", "label"] and len(table.frame) == 20 and table.header_row == 2
    assert notes_of(table) == ["Row 1 looks like a title ('Q3 export'); the column names were read from row 2."]
    bom = read_table(f"\ufeffReport\nBrand monitor\n\ntext,label\n{body}".encode(), "r.csv")
    assert list(bom.frame.columns) == ["text", "label"] and bom.header_row == 4
    assert notes_of(bom)[0].startswith("Rows 1–2 look like a title ('Report')")
    chosen = read_table(f"Q3 export\ntext,label\n{body}".encode(), "q3.csv", header_row=2)
    assert list(chosen.frame.columns) == ["text", "label"]
    with pytest.raises(DataError, match="Row 30 cannot hold the column names: 'q3.csv' has only 22 lines"):
        read_table(f"Q3 export\ntext,label\n{body}".encode(), "q3.csv", header_row=30)


def test_csv_without_title_and_one_column_texts_with_commas_are_untouched():
    body = "".join(f"{t},{lab}\n" for t, lab in ROWS)
    assert read_table(f"text,label\n{body}".encode(), "r.csv").notes == []
    single = b"text\nfine film\nhello, there\nbad film\nok\n"
    table = read_table(single, "one.txt")
    assert table.frame.columns[0] == "text" and table.header_row is None
    with pytest.raises(DataError, match="Line 3 of 'one.csv' has 2 fields"):  # as before: no title guessed
        read_table(single, "one.csv")


def test_layout_of_a_grid_without_a_workbook():
    grid = [["Title"], ["a", "b"], ["x", "1"], ["y", "2"], ["z", "3"]]
    layout = find_layout(grid)
    assert (layout.header_row, layout.names, len(layout.rows)) == (2, ["a", "b"], 3)


def test_cli_data_add_sheet_and_header_row(tmp_path, capsys):
    import json

    from core.cli import main

    titled = [["Q3 export"], ["text", "label"], *[[t, lab] for t, lab in ROWS]]
    path = tmp_path / "export.xlsx"
    path.write_bytes(workbook(("Notes", [["read me"]]), ("Data", titled)))
    assert main(["data", "add", str(path), "--sheet", "Data", "--name", "q3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["rows"] == 20 and out["columns"]["label"] == "label"
    assert "Row 1 looks like a title ('Q3 export'); the column names were read from row 2." in out["notes"]
    assert main(["data", "add", str(path), "--sheet", "2", "--header-row", "2", "--name", "q3b"]) == 0
    assert "note: The column names were read from row 2, as chosen." in capsys.readouterr().out
    assert main(["data", "add", str(path), "--sheet", "Sales"]) == 2
    assert "Its sheets are 'Notes', 'Data'" in capsys.readouterr().err
    assert main(["data", "add", str(path), "--sheet", "Data", "--header-row", "40"]) == 2
    assert "has data only in rows 1 to 22" in capsys.readouterr().err


def test_csv_with_a_stray_carriage_return_is_not_cut():
    """Found by the property test: a lone '\\r' in a line must not break the title search."""
    with pytest.raises(DataError, match="but no rows"):
        read_table(b'""\n\r,\n', "upload.csv")
    with pytest.raises(DataError, match="Line 4 of 't.csv' has 2 fields but the header has 1"):  # read as before
        read_table(b"Title\n\r,x\na,b\nc,d\n", "t.csv")
