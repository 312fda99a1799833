"""The Data page's sheet and header-row pickers, on real .xlsx files."""

from tests.conftest import labelled_rows
from tests.core.test_sheets import workbook
from tests.pages.test_data_page import open_data, upload

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROWS = [[t, lab] for t, lab in labelled_rows(10)]


def picker(app, prefix: str):
    return next(w for w in [*app.selectbox, *app.number_input] if w.key and w.key.startswith(prefix))


def test_title_row_is_detected_reported_and_can_be_overridden(app):
    open_data(app)
    upload(app, "q3.xlsx", workbook(("Data", [["Q3 export"], ["text", "label"], *ROWS]),
                                    merges={"Data": ["A1:B1"]}), XLSX)
    assert picker(app, "header_").value == 2
    assert any("Row 1 looks like a title ('Q3 export', one merged cell)" in i.value for i in app.info)
    assert [m.value for m in app.metric] == ["20", "20", "2"]
    assert not [s for s in app.selectbox if s.key and s.key.startswith("sheet_")]  # one sheet: no picker
    picker(app, "header_").set_value(1).run()
    assert not app.exception
    assert any("read from row 1, as chosen" in i.value for i in app.info)
    assert picker(app, "col_text").options[1:] == ["Q3 export", "column_2"]


def test_sheet_picker_switches_sheet_and_header_beyond_the_data_says_so(app):
    open_data(app)
    other = [["name", "text", "label"], *[["x", t, lab] for t, lab in labelled_rows(6)]]
    upload(app, "book.xlsx", workbook(("Reviews", [["text", "label"], *ROWS]), ("Other", other)), XLSX)
    sheet = picker(app, "sheet_")
    assert sheet.options == ["Reviews", "Other"] and sheet.value == "Reviews"
    sheet.set_value("Other").run()
    assert not app.exception
    assert [m.value for m in app.metric][:1] == ["12"]
    picker(app, "header_").set_value(50).run()
    assert any("Row 50 cannot hold the column names: sheet 'Other' has data only in rows 1 to 13" in e.value
               for e in app.error)

