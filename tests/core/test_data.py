import io
import json

import pandas as pd
import pytest

from core import i18n
from core.data import (
    ColumnMapping,
    PrepareOptions,
    Table,
    assign_splits,
    clean_texts,
    detect_columns,
    detect_encoding,
    normalise_labels,
    prepare_dataset,
    read_table,
    sort_labels,
)
from core.errors import DataError
from tests.conftest import csv_bytes, labelled_rows

ROWS = labelled_rows(10)


def frame_of(rows, columns=("text", "label")) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns), dtype="str")


def table_of(rows, columns=("text", "label")) -> Table:
    return Table(frame_of(rows, columns), "test.csv", "csv", "utf-8", ",")


# Formats ------------------------------------------------------------------------------------
def test_reads_csv_and_reports_format_encoding_delimiter():
    table = read_table(csv_bytes(ROWS), "reviews.csv")
    assert list(table.frame.columns) == ["text", "label"]
    assert len(table.frame) == 20
    assert (table.file_format, table.encoding, table.delimiter) == ("csv", "utf-8", ",")


def test_reads_tsv():
    table = read_table(csv_bytes(ROWS, sep="\t"), "reviews.tsv")
    assert table.delimiter == "\t" and len(table.frame) == 20


@pytest.mark.parametrize("sep", [";", "|", "\t"])
def test_sniffs_delimiter_of_csv(sep):
    table = read_table(csv_bytes(ROWS, sep=sep), "reviews.csv")
    assert table.delimiter == sep
    assert table.frame.loc[0, "label"] == "negative"


def test_semicolon_file_with_commas_in_texts_keeps_texts_whole():
    rows = [("good, really good", "positive"), ("bad, so bad", "negative")]
    table = read_table(csv_bytes(rows, sep=";"), "reviews.csv")
    assert table.frame["text"].tolist() == ["good, really good", "bad, so bad"]


def test_txt_one_text_per_line():
    data = b"This film, frankly, was great\nI did not like it at all\n\nMeh\n"
    table = read_table(data, "texts.txt")
    assert list(table.frame.columns) == ["text"]
    assert table.frame["text"].tolist() == ["This film, frankly, was great", "I did not like it at all", "Meh"]


def test_txt_with_header_and_tabs_is_delimited():
    table = read_table(csv_bytes(ROWS, sep="\t"), "texts.txt")
    assert list(table.frame.columns) == ["text", "label"]


def test_reads_excel():
    buffer = io.BytesIO()
    frame_of(ROWS).to_excel(buffer, index=False)
    table = read_table(buffer.getvalue(), "reviews.xlsx")
    assert table.file_format == "excel" and len(table.frame) == 20


def test_reads_json_records_and_jsonl():
    records = [{"text": t, "label": lab} for t, lab in ROWS]
    table = read_table(json.dumps(records).encode(), "reviews.json")
    assert len(table.frame) == 20 and set(table.frame.columns) == {"text", "label"}
    lines = "\n".join(json.dumps(r) for r in records).encode()
    table = read_table(lines, "reviews.jsonl")
    assert table.file_format == "jsonl" and len(table.frame) == 20
    # JSON Lines saved with a .json name is still read
    assert len(read_table(lines, "reviews.json").frame) == 20


def test_reads_parquet_and_numbers_become_strings():
    buffer = io.BytesIO()
    pd.DataFrame({"text": [t for t, _ in ROWS], "label": [i % 2 for i in range(20)]}).to_parquet(buffer)
    table = read_table(buffer.getvalue(), "reviews.parquet")
    assert table.file_format == "parquet"
    assert set(table.frame["label"]) == {"0", "1"}


def test_reads_from_path(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(csv_bytes(ROWS))
    assert len(read_table(path).frame) == 20


# Encodings ----------------------------------------------------------------------------------
def test_utf8_bom_never_reaches_column_names():
    table = read_table("\ufeff".encode() + csv_bytes(ROWS), "bom.csv")
    assert table.encoding == "utf-8-sig"
    assert list(table.frame.columns) == ["text", "label"]


def test_gbk_file_is_read_as_gb18030():
    rows = [("这部电影非常好看，强烈推荐", "正面"), ("质量太差了，很失望", "负面")] * 5
    table = read_table(csv_bytes(rows, header=("评论", "标签"), encoding="gbk"), "中文.csv")
    assert table.encoding == "gb18030"
    assert list(table.frame.columns) == ["评论", "标签"]
    assert table.frame.loc[0, "评论"] == "这部电影非常好看，强烈推荐"


def test_detect_encoding_falls_back_to_detector_for_latin1():
    data = ("text,label\n" + "Café crème brûlée était très bon,positive\n" * 20).encode("cp1252")
    assert detect_encoding(data).replace("_", "").lower() in {"cp1252", "latin1", "iso88591", "windows1252"} \
        or read_table(data, "latin.csv").frame.loc[0, "text"].startswith("Caf")


def test_utf16_with_bom():
    data = csv_bytes(ROWS).decode().encode("utf-16")
    assert len(read_table(data, "u16.csv").frame) == 20


# Awkward and bad input ----------------------------------------------------------------------
def test_empty_file_is_refused():
    with pytest.raises(DataError, match="empty"):
        read_table(b"", "empty.csv")
    with pytest.raises(DataError, match="empty"):
        read_table(b"  \n\n", "blank.csv")


def test_header_only_is_refused_naming_columns():
    with pytest.raises(DataError, match=r"column names \(text, label\) but no rows"):
        read_table(b"text,label\n", "header.csv")


def test_binary_file_renamed_csv_is_refused():
    with pytest.raises(DataError, match="binary data"):
        read_table(bytes(range(256)) * 50, "image.csv")


def test_excel_file_renamed_csv_is_read_as_excel_with_a_note():
    buffer = io.BytesIO()
    frame_of(ROWS).to_excel(buffer, index=False)
    table = read_table(buffer.getvalue(), "reviews.csv")
    assert table.file_format == "excel" and len(table.frame) == 20
    assert any("Excel workbook despite" in str(note) for note in table.notes)


def test_text_named_xlsx_is_refused():
    with pytest.raises(DataError, match="not an Excel workbook.*looks like text"):
        read_table(csv_bytes(ROWS), "reviews.xlsx")


def test_legacy_xls_is_refused_with_advice():
    with pytest.raises(DataError, match="Save it as .xlsx|save it as .xlsx"):
        read_table(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old.xls")


def test_invalid_json_names_line_and_column():
    with pytest.raises(DataError, match="not valid JSON.*line 2"):
        read_table(b'[{"text": "a",\n "label": }]', "bad.json")


def test_invalid_jsonl_line_is_named():
    with pytest.raises(DataError, match="Line 2 of"):
        read_table(b'{"text": "a", "label": "x"}\n{broken\n', "bad.jsonl")


def test_damaged_parquet_is_refused():
    with pytest.raises(DataError, match="Parquet"):
        read_table(b"PAR1 this is not really parquet PAR1", "bad.parquet")


def test_ragged_row_names_the_line():
    data = b"text,label\ngood film,positive\nbad, awful film,negative,extra\n"
    with pytest.raises(DataError, match=r"Line 3 .* has 4 fields but the header has 2"):
        read_table(data, "ragged.csv")


def test_short_rows_are_padded_not_refused():
    table = read_table(b"text,label,source\ngood film,positive\n", "short.csv")
    assert table.frame.loc[0, "source"] == ""


def test_quoted_texts_spanning_lines():
    data = b'text,label\n"line one\nline two, with comma",positive\n"single",negative\n'
    table = read_table(data, "multi.csv")
    assert table.frame.loc[0, "text"] == "line one\nline two, with comma"
    assert len(table.frame) == 2


def test_duplicate_column_names_are_renamed_and_reported():
    table = read_table(b"text,label,text\na,positive,b\nc,negative,d\n", "dups.csv")
    assert list(table.frame.columns) == ["text", "label", "text (2)"]
    assert any("text → text (2)" in str(note) for note in table.notes)


def test_file_over_the_limit_is_refused_pointing_to_the_cli():
    with pytest.raises(DataError, match="over the upload limit.*python -m core data add"):
        read_table(csv_bytes(ROWS), "big.csv", max_bytes=100)


def test_missing_path_is_refused():
    with pytest.raises(DataError, match="does not exist"):
        read_table("/no/such/file.csv")


def test_unknown_extension_text_is_read_as_delimited():
    table = read_table(csv_bytes(ROWS), "reviews.dat")
    assert len(table.frame) == 20 and table.notes


# Column detection ---------------------------------------------------------------------------
def test_detects_text_label_date_group():
    frame = pd.DataFrame({
        "id": [str(i) for i in range(40)],
        "posted": [f"2026-01-{i % 28 + 1:02d}" for i in range(40)],
        "product": ["phone" if i % 3 else "laptop" for i in range(40)],
        "body": [f"This is a fairly long review text number {i} about things" for i in range(40)],
        "sentiment": ["pos" if i % 2 else "neg" for i in range(40)],
    }, dtype="str")
    mapping = detect_columns(frame)
    assert mapping == ColumnMapping(text="body", label="sentiment", date="posted", group="product")


def test_detects_chinese_column_names():
    frame = pd.DataFrame({"评论内容": ["质量很好，很满意这次购物"] * 5 + ["太差了"] * 5,
                          "情感": ["正面"] * 5 + ["负面"] * 5}, dtype="str")
    mapping = detect_columns(frame)
    assert (mapping.text, mapping.label) == ("评论内容", "情感")


def test_text_column_all_numbers_is_not_chosen_and_refused_if_forced():
    frame = pd.DataFrame({"score": [str(i * 1000) for i in range(20)], "label": ["a", "b"] * 10}, dtype="str")
    assert detect_columns(frame).text != "score"
    table = Table(frame, "n.csv", "csv")
    with pytest.raises(DataError, match="holds only numbers"):
        prepare_dataset(table, ColumnMapping(text="score", label="label"))


def test_no_text_column_error_lists_columns():
    frame = pd.DataFrame({"a": ["1", "2"], "b": ["3", "4"]}, dtype="str")
    with pytest.raises(DataError, match="No text column.*'a', 'b'"):
        prepare_dataset(Table(frame, "x.csv", "csv"))


def test_unknown_column_in_mapping_is_named():
    with pytest.raises(DataError, match="label column 'stars' is not in the file"):
        prepare_dataset(table_of(ROWS), ColumnMapping(text="text", label="stars"))


# Labels ---------------------------------------------------------------------------------------
def test_labels_trimmed_and_case_variants_merged():
    labels, merges = normalise_labels(pd.Series(["Positive", "positive ", "positive", "NEGATIVE", "negative"]))
    assert labels.tolist() == ["positive", "positive", "positive", "NEGATIVE", "NEGATIVE"] or \
        labels.tolist() == ["positive", "positive", "positive", "negative", "negative"]
    assert "positive" in merges and "Positive" in merges["positive"]


def test_numeric_labels_written_plainly_and_sorted_numerically():
    labels, _ = normalise_labels(pd.Series(["1.0", "2", " 10 ", "2.0"]))
    assert labels.tolist() == ["1", "2", "10", "2"]
    assert sort_labels(["10", "2", "1"]) == ["1", "2", "10"]
    assert sort_labels(["b", "A", "c"]) == ["A", "b", "c"]


def test_multiclass_is_supported():
    prepared = prepare_dataset(table_of(labelled_rows(10, ("negative", "neutral", "positive"))))
    assert prepared.report.ok
    assert prepared.report.labels == ["negative", "neutral", "positive"]


# Cleaning -------------------------------------------------------------------------------------
def test_html_and_entities_stripped_and_counted():
    texts, html_changed, ws_changed = clean_texts(pd.Series(["Good<br /><br />film &amp; cast", "plain  text "]))
    assert texts.tolist() == ["Good film & cast", "plain text"]
    assert html_changed == 1 and ws_changed >= 1


def test_cleaning_steps_are_counted():
    rows = ROWS + [("", "positive"), ("   ", "negative"), (ROWS[0][0], ROWS[0][1]), ("no label here", "")]
    report = prepare_dataset(table_of(rows)).report
    steps = {s["step"]: s["count"] for s in report.steps}
    assert steps["empty_text_dropped"] == 2
    assert steps["duplicates_dropped"] == 1
    assert steps["missing_label_dropped"] == 1
    assert report.rows == 20 and report.rows_read == 24


def test_conflicting_labels_are_flagged_and_kept_in_one_split():
    rows = ROWS + [("same text twice", "positive"), ("same text twice", "negative")]
    prepared = prepare_dataset(table_of(rows))
    steps = {s["step"]: s["count"] for s in prepared.report.steps}
    assert steps["conflicting_labels_flagged"] == 2
    assert any("share a text" in str(w) for w in prepared.report.warnings)
    assert prepared.frame.loc[prepared.frame["text"] == "same text twice", "split"].nunique() == 1


def test_very_long_text_is_flagged_and_kept():
    rows = ROWS + [("x" * 100_000, "positive")]
    prepared = prepare_dataset(table_of(rows), options=PrepareOptions(long_text_chars=4000))
    steps = {s["step"]: s["count"] for s in prepared.report.steps}
    assert steps["long_texts_flagged"] == 1
    assert prepared.frame["text"].str.len().max() == 100_000


def test_emoji_mixed_scripts_and_formula_cells_are_kept_verbatim():
    rows = ROWS + [("Loved it 😍 très bien 很好看", "positive"), ("=HYPERLINK(\"x\") +1 -2 @cmd", "negative")]
    frame = prepare_dataset(table_of(rows)).frame
    assert "Loved it 😍 très bien 很好看" in frame["text"].tolist()
    assert '=HYPERLINK("x") +1 -2 @cmd' in frame["text"].tolist()


def test_nan_texts_are_dropped():
    frame = pd.DataFrame({"text": [t for t, _ in ROWS] + [None, float("nan")],
                          "label": [lab for _, lab in ROWS] + ["positive", "negative"]})
    table = Table(frame.astype("str").replace({"None": "", "nan": ""}), "x.csv", "csv")
    report = prepare_dataset(table).report
    assert {s["step"]: s["count"] for s in report.steps}["empty_text_dropped"] == 2


# Blocking checks and warnings -----------------------------------------------------------------
def test_single_class_blocks():
    report = prepare_dataset(table_of([(f"text {i}", "positive") for i in range(10)])).report
    assert not report.ok and "same label ('positive')" in str(report.errors[0])


def test_class_with_one_example_blocks_naming_it():
    report = prepare_dataset(table_of(ROWS + [("one lonely neutral review", "neutral")])).report
    assert not report.ok
    assert "'neutral' (1)" in str(report.errors[0])


def test_label_column_that_is_free_text_is_refused():
    rows = [(f"review {i}", f"this label is actually a sentence number {i}") for i in range(60)]
    with pytest.raises(DataError, match="looks like free text"):
        prepare_dataset(table_of(rows), ColumnMapping(text="text", label="label"))


def test_no_rows_left_blocks():
    report = prepare_dataset(table_of([("", "a"), ("  ", "b")])).report
    assert not report.ok and "No rows are left" in str(report.errors[0])


def test_imbalance_warning_has_ratio():
    rows = labelled_rows(40, ("positive",)) + labelled_rows(10, ("negative",))
    report = prepare_dataset(table_of(rows)).report
    assert report.ok
    assert any("4.0×" in str(w) for w in report.warnings)


def test_many_duplicates_warning():
    report = prepare_dataset(table_of(ROWS * 3)).report
    assert any("repeated an earlier text" in str(w) for w in report.warnings)


def test_many_long_texts_warning():
    rows = [("long " * 1000 + str(i), lab) for i, (_, lab) in enumerate(ROWS)]
    report = prepare_dataset(table_of(rows)).report
    assert any("longer than" in str(w) for w in report.warnings)


def test_mixed_languages_warning():
    rows = ROWS + [(f"这是中文评论第{i}条，质量很好", "positive") for i in range(5)]
    report = prepare_dataset(table_of(rows)).report
    assert any("Mixed languages" in str(w) for w in report.warnings)


# Split ----------------------------------------------------------------------------------------
def test_split_is_stratified_deterministic_and_leak_free():
    rows = labelled_rows(100, ("negative", "positive")) + labelled_rows(30, ("neutral",))
    a = prepare_dataset(table_of(rows)).frame
    b = prepare_dataset(table_of(rows)).frame
    assert a["split"].tolist() == b["split"].tolist()
    shares = a.groupby("label")["split"].value_counts(normalize=True).unstack()
    assert (abs(shares["train"] - 0.8) < 0.05).all()
    assert (abs(shares["test"] - 0.1) < 0.05).all()
    texts = {s: set(a.loc[a["split"] == s, "text"]) for s in ("train", "validation", "test")}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]


def test_small_class_still_reaches_every_split():
    splits = assign_splits(pd.Series([f"t{i}" for i in range(5)]), pd.Series(["a"] * 5))
    assert set(splits) == {"train", "validation", "test"}


def test_user_split_column_is_used_with_aliases():
    rows = [(t, lab, "train") for t, lab in ROWS[:6] + ROWS[10:16]] + \
           [(t, lab, "dev") for t, lab in ROWS[6:8] + ROWS[16:18]] + \
           [(t, lab, "Test") for t, lab in ROWS[8:10] + ROWS[18:20]]
    table = table_of(rows, ("text", "label", "split"))
    prepared = prepare_dataset(table, ColumnMapping(text="text", label="label", split="split"))
    assert prepared.report.split_counts["validation"] == {"negative": 2, "positive": 2}
    assert detect_columns(table.frame).split == "split"


def test_user_split_with_unknown_values_is_refused():
    rows = [(t, lab, "holdout") for t, lab in ROWS]
    with pytest.raises(DataError, match="'holdout'"):
        prepare_dataset(table_of(rows, ("text", "label", "split")),
                        ColumnMapping(text="text", label="label", split="split"))


def test_user_split_without_a_class_in_train_blocks():
    rows = [(t, lab, "train" if lab == "negative" else "test") for t, lab in ROWS]
    report = prepare_dataset(table_of(rows, ("text", "label", "split")),
                             ColumnMapping(text="text", label="label", split="split")).report
    assert not report.ok and "no examples of 'positive'" in str(report.errors[0])


# Messages in the reader's language ----------------------------------------------------------
def test_a_reading_error_renders_in_chinese_with_its_parameters():
    data = b"text,label\ngood film,positive\nbad, awful film,negative,extra\n"
    with pytest.raises(DataError) as caught:
        read_table(data, "ragged.csv")
    assert caught.value.message.key == "data.err.ragged_line"
    assert caught.value.message.params["line"] == 3
    zh = caught.value.render("zh")
    assert "“ragged.csv”第 3 行有 4 个字段" in zh and "表头只有 2 个" in zh and "以逗号分隔" in zh
    assert "Line 3" in str(caught.value)


def test_report_warnings_and_errors_are_messages_that_render_in_both_languages():
    rows = [(f"good {i}", "positive") for i in range(40)] + [(f"bad {i}", "negative") for i in range(10)]
    report = prepare_dataset(table_of(rows)).report
    imbalance = next(w for w in report.warnings if w.key == "data.warn.imbalanced")
    assert "4.0×" in str(imbalance) and "'positive'" in str(imbalance)
    assert imbalance.render("zh") == "类别不平衡：“positive”的行数是“negative”的 4.0 倍。训练时会自动为各类别加权；请以宏平均 F1 评判结果。"
    blocked = prepare_dataset(table_of(rows[:3] + [("only one", "neutral")])).report
    assert blocked.errors[0].render("zh").startswith("以下类别的样本少于 5 条：'neutral' (1)")


def test_report_survives_json_with_its_messages():
    report = prepare_dataset(table_of([(f"good {i}", "positive") for i in range(40)]
                                      + [(f"bad {i}", "negative") for i in range(10)])).report
    stored = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert [i18n.render(w, "zh") for w in stored["warnings"]] == [w.render("zh") for w in report.warnings]
