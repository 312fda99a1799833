"""Property tests: whatever bytes, shapes, encodings and cell contents reach core.data, the only
exception that escapes is DataError with a message (never a traceback from pandas or pyarrow)."""

import csv
import io
import os

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data import ColumnMapping, PrepareOptions, detect_columns, prepare_dataset, read_table
from core.errors import DataError

# CI runs 60 examples per property; OPINIONLAB_PROPERTY_EXAMPLES=2000 hunts longer
SETTINGS = settings(max_examples=int(os.environ.get("OPINIONLAB_PROPERTY_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXTENSIONS = [".csv", ".tsv", ".txt", ".json", ".jsonl", ".xlsx", ".parquet", ".xls", ".bin", ""]
ENCODINGS = ["utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16", "latin-1", "big5", "shift_jis"]

cell = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="好差评论产品物流很不错=+-@\t\r\n,;|\"'", max_size=20),
    st.sampled_from(["", " ", "NaN", "null", "None", "=1+1", "<br />", "0", "1", "1.0", "positive", "负面"]),
    st.integers().map(str),
    st.integers(min_value=10**300, max_value=10**400).map(lambda n: f"{n}.0"),
    st.floats(allow_nan=True).map(str),
)


def attempt(data: bytes, filename: str):
    """Read, detect, prepare: success or DataError, nothing else."""
    try:
        table = read_table(data, filename)
        mapping = detect_columns(table.frame)
        prepared = prepare_dataset(table, mapping, PrepareOptions())
        assert isinstance(prepared.report.errors, list)
        return prepared
    except DataError as exc:
        message = str(exc)
        assert message and "Traceback" not in message and len(message) < 2000
        return None


@SETTINGS
@given(data=st.binary(max_size=2000), ext=st.sampled_from(EXTENSIONS))
def test_random_bytes(data, ext):
    attempt(data, f"upload{ext}")


@SETTINGS
@given(magic=st.sampled_from([b"PK\x03\x04", b"PAR1", b"\xd0\xcf\x11\xe0", b"\xef\xbb\xbf", b"\xff\xfe", b"{", b"["]),
       rest=st.binary(max_size=500), ext=st.sampled_from(EXTENSIONS))
def test_truncated_or_fake_files_with_real_magic_bytes(magic, rest, ext):
    attempt(magic + rest, f"upload{ext}")


@SETTINGS
@given(rows=st.lists(st.lists(cell, min_size=0, max_size=6), min_size=0, max_size=25),
       header=st.lists(st.text(max_size=12), min_size=1, max_size=6),
       sep=st.sampled_from([",", "\t", ";", "|"]), encoding=st.sampled_from(ENCODINGS),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONE]))
def test_random_csv_shapes_and_encodings(rows, header, sep, encoding, quoting):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, quoting=quoting, escapechar="\\", lineterminator="\n")
    try:
        writer.writerow(header)
        writer.writerows(rows)  # ragged rows on purpose
    except csv.Error:
        return
    data = buffer.getvalue().encode(encoding, errors="replace")
    attempt(data, "upload.csv" if sep != "\t" else "upload.tsv")


@SETTINGS
@given(texts=st.lists(cell, min_size=1, max_size=40), labels=st.lists(cell, min_size=1, max_size=40),
       fmt=st.sampled_from(["csv", "jsonl", "parquet", "xlsx"]))
def test_random_column_contents_in_every_format(texts, labels, fmt):
    n = min(len(texts), len(labels))
    frame = pd.DataFrame({"text": texts[:n], "label": labels[:n]})
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.to_csv(buffer, index=False)
    elif fmt == "jsonl":
        frame.to_json(buffer, orient="records", lines=True, force_ascii=False)
    elif fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        try:
            frame.to_excel(buffer, index=False)
        except Exception:  # openpyxl refuses control characters: such a workbook cannot exist
            return
    prepared = attempt(buffer.getvalue(), f"upload.{fmt}")
    if prepared is not None and prepared.report.ok:
        kept = prepared.frame
        assert kept["text"].str.strip().str.len().gt(0).all()  # no empty text survives cleaning
        assert set(kept["split"]) <= {"train", "validation", "test"}


@SETTINGS
@given(texts=st.lists(st.text(min_size=1, max_size=30), min_size=4, max_size=30), text_col=st.text(max_size=8),
       label_col=st.text(max_size=8))
def test_wrong_column_choices_are_data_errors(texts, text_col, label_col):
    frame = pd.DataFrame({"review": texts, "sentiment": ["positive", "negative"] * (len(texts) // 2) + ["positive"] * (len(texts) % 2)})
    try:
        table = read_table(frame.to_csv(index=False).encode(), "x.csv")
        prepare_dataset(table, ColumnMapping(text=text_col or None, label=label_col or None))
    except DataError as exc:
        assert str(exc)
