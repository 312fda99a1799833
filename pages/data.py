import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from core import data as core_data
from core import i18n
from core.datasets import list_datasets, load_rows, remove_dataset, save_dataset
from core.exporting import to_csv_bytes
from core.fewshot import method_advice
from core.figures import class_balance_figure, text_length_figure
from core.i18n import Message
from core.language import language_mix
from core.samples import PREFIX, SAMPLES, load_sample
from core.sheets import HEADER_ROW_FORMATS
from core.workspace import Registry
from pages._shared import chart, count, lang, render, show_error, t, through_app, timestamp
from pages._zeroshot import start_without_labels

through_app(__file__)

UPLOAD_TYPES = sorted({ext.lstrip(".") for ext in core_data.FORMATS})


@st.cache_data(max_entries=4, show_spinner=False)
def read_upload(digest: str, filename: str, _data: bytes, sheet: str | None = None,
                header_row: int | None = None) -> core_data.Table:
    return core_data.read_table(_data, filename, sheet=sheet, header_row=header_row)


@st.cache_data(max_entries=2, show_spinner=False)
def read_sample(spec: str) -> tuple[core_data.Table, core_data.ColumnMapping]:
    return load_sample(spec)


@st.cache_data(max_entries=4, show_spinner=False)
def prepare(source_key: str, mapping: dict, _table: core_data.Table) -> core_data.PreparedDataset:
    return core_data.prepare_dataset(_table, core_data.ColumnMapping.from_dict(mapping))


@st.cache_data(max_entries=4, show_spinner=False)
def language_line(source_key: str, mapping: dict, _texts: pd.Series) -> Message:
    return language_mix(_texts.tolist()).message()


def choose_source() -> tuple[str, core_data.Table, core_data.ColumnMapping] | None:
    # Option labels are worked out during the run: a format_func may also be called later,
    # outside it, where the session's language cannot be read.
    modes = {m: t(f"data.source_{m}") for m in ("upload", "sample", "unlabelled")}
    mode = st.radio(t("data.source"), list(modes), horizontal=True, format_func=modes.get, key="source_mode")
    if mode == "unlabelled":  # no label column: zero-shot labels and scores it (no dataset saved)
        start_without_labels(read_upload)
        return None
    if mode == "sample":
        samples = {PREFIX + name: render(about) for name, about in SAMPLES.items()}
        spec = st.selectbox(t("data.sample"), list(samples), key="sample", format_func=samples.get)
        table, mapping = read_sample(spec)
        return spec, table, mapping
    upload = st.file_uploader(t("data.uploader"), type=UPLOAD_TYPES, key="upload", help=t("data.upload_help"))
    if upload is None:
        st.info(t("data.waiting"))
        return None
    raw = upload.getvalue()
    digest = hashlib.sha1(raw).hexdigest()
    table = choose_sheet_and_header(digest, upload.name, raw)
    key = f"{upload.name}:{digest}:{table.sheet or ''}:{table.header_row or ''}"
    return key, table, core_data.detect_columns(table.frame)


def choose_sheet_and_header(digest: str, filename: str, raw: bytes) -> core_data.Table:
    """The sheet (when a workbook has several) and the header row, detected and changeable."""
    table = read_upload(digest, filename, raw)
    if table.file_format not in HEADER_ROW_FORMATS:
        return table
    left, right, _ = st.columns([2, 1, 2])
    if len(table.sheets) > 1:
        sheet = left.selectbox(t("sheets.pick_sheet"), table.sheets, index=table.sheets.index(table.sheet),
                               key=f"sheet_{digest}", help=t("sheets.pick_sheet_help"))
        if sheet != table.sheet:
            table = read_upload(digest, filename, raw, sheet)
    header = right.number_input(t("sheets.header_row"), min_value=1, value=table.header_row or 1, step=1,
                                key=f"header_{digest}_{table.sheet}", help=t("sheets.header_row_help"))
    if header != (table.header_row or 1):
        table = read_upload(digest, filename, raw, table.sheet if table.sheets else None, int(header))
    return table


def choose_columns(key: str, table: core_data.Table, detected: core_data.ColumnMapping) -> dict:
    st.subheader(t("data.mapping"))
    st.caption(t("data.mapping_help"))
    columns = list(table.frame.columns)
    options = ["", *columns]
    none = t("data.none")
    chosen = {}
    cells = st.columns(5)
    for cell, role in zip(cells, ("text", "label", "date", "group", "split"), strict=True):
        current = getattr(detected, role) or ""
        chosen[role] = cell.selectbox(
            t(f"data.col_{role}"), options, index=options.index(current) if current in options else 0,
            format_func=lambda c: c or none, key=f"col_{role}_{key}",
        ) or None
    return chosen


def described(kind: str, value: str | None) -> str:
    """A format, encoding or delimiter name in the UI language (``data.format.csv``, ...)."""
    if not value:
        return "—"
    key = f"{kind}.{value}"
    return t(key) if i18n.has(key) else value


def steps_table(steps: list[dict]) -> pd.DataFrame:
    """Cleaning steps and the rows each touched (counts as text: thousands separators)."""
    return pd.DataFrame({t("data.step"): [t(f"data.step.{s['step']}") for s in steps],
                         t("data.count"): [count(s["count"]) for s in steps]})


def show_report(prepared: core_data.PreparedDataset) -> None:
    report = prepared.report
    st.subheader(t("data.report"))
    for note in report.notes:
        st.info(render(note), icon=":material/info:")
    for error in report.errors:
        st.error(render(error), icon=":material/block:")
    for warning in report.warnings:
        st.warning(render(warning), icon=":material/warning:")
    c1, c2, c3 = st.columns(3)
    c1.metric(t("data.rows_read"), count(report.rows_read))
    c2.metric(t("data.rows_kept"), count(report.rows))
    c3.metric(t("data.classes"), count(len(report.labels)))
    if report.label_merges:
        st.caption(t("data.merged", merges="; ".join(f"{k} ← {', '.join(map(repr, v))}"
                                                     for k, v in report.label_merges.items())))
    left, right = st.columns([2, 3])
    left.markdown(f"**{t('data.cleaning')}**")
    left.dataframe(steps_table(report.steps), hide_index=True, width="stretch")
    if report.split_counts:
        right.markdown(f"**{t('data.balance')}**")
        chart(class_balance_figure(report.split_counts, report.labels, lang()), "balance", right)
        advice = method_advice(report.split_counts.get("train", {}))
        if advice:
            st.info(render(advice), icon=":material/lightbulb:")
    if len(prepared.frame):
        st.markdown(f"**{t('data.lengths')}**")
        chart(text_length_figure(prepared.frame["text"].str.len(), lang()), "lengths")


def save_form(prepared: core_data.PreparedDataset, default_name: str) -> None:
    st.subheader(t("data.save"))
    if not prepared.report.ok:
        st.error(t("data.blocked"))
        return
    st.success(t("data.ok"))
    with st.form("save_dataset"):
        name = st.text_input(t("data.name"), value=default_name, max_chars=64)
        if st.form_submit_button(t("data.save_button"), type="primary"):
            try:
                card = save_dataset(prepared, name, Registry(), created_by=st.session_state.get("user"))
                st.success(t("data.saved", name=card["name"], rows=count(card["rows"])))
            except Exception as exc:  # shown to the user, never a traceback
                show_error(exc)


def saved_datasets() -> None:
    st.header(t("data.saved_list"))
    cards = list_datasets()
    if not cards:
        st.info(t("data.no_saved"))
    for card in cards:
        classes = " · ".join(f"{k} {count(v)}" for k, v in card["classes"].items())
        with st.expander(t("data.card_title", name=card["name"], rows=card["rows"], classes=classes)):
            card_details(card)
            c1, c2 = st.columns(2)
            c1.download_button(t("data.download"), data=lambda ds=card["id"]: to_csv_bytes(load_rows(ds)),
                               file_name=f"{card['id']}.csv", mime="text/csv", key=f"dl_{card['id']}",
                               on_click="ignore", icon=":material/download:")
            with c2.popover(t("data.delete"), icon=":material/delete:"):
                st.write(t("data.delete_confirm", name=card["name"]))
                if st.button(t("data.delete_yes"), key=f"del_{card['id']}", type="primary"):
                    remove_dataset(card["id"])
                    st.toast(t("data.deleted", name=card["name"]))
                    st.rerun()


def card_details(card: dict) -> None:
    """A saved dataset's card, readable in the UI language (older cards hold plain English warnings)."""
    st.write(t("data.card_meta", source=card["source"], encoding=described("data.encoding", card["encoding"]),
               created=timestamp(card["created_at"]))
             + (f" · {t('train.by', user=card['created_by'])}" if card.get("created_by") else ""))
    for warning in card.get("warnings") or []:
        st.warning(render(warning), icon=":material/warning:")
    left, right = st.columns(2)
    left.markdown(f"**{t('data.card_columns')}**")
    left.dataframe(pd.DataFrame({t("data.card_role"): [t(f"data.role.{role}") for role, col in card["columns"].items()
                                                       if col],
                                 t("data.card_column"): [col for col in card["columns"].values() if col]}),
                   hide_index=True, width="stretch")
    right.markdown(f"**{t('data.cleaning')}**")
    right.dataframe(steps_table(card["steps"]), hide_index=True, width="stretch")
    splits = " · ".join(f"{t(f'data.split.{s}')} {count(sum(c.values()))}" for s, c in card["split_counts"].items())
    st.caption(t("data.card_splits", splits=splits))
    if card.get("length_stats"):
        st.caption(t("data.length_stats", **{k: card["length_stats"][k] for k in ("median", "p95", "max")}))


st.title(t("data.title"))
st.write(t("data.intro"))
try:
    chosen = choose_source()
    if chosen:
        key, table, detected = chosen
        info = table.describe()
        st.markdown(t("data.read_as", format=described("data.format", info["format"]),
                      encoding=described("data.encoding", info["encoding"]),
                      delimiter=described("delimiter", info["delimiter"]), rows=count(info["rows"]),
                      columns=count(len(info["columns"]))))
        with st.expander(t("data.preview"), expanded=True):
            st.dataframe(table.frame.head(100), width="stretch", height=260)
        mapping = choose_columns(hashlib.sha1(key.encode()).hexdigest()[:10], table, detected)
        prepared = prepare(key, mapping, table)
        show_report(prepared)
        if len(prepared.frame):
            st.caption(language_line(key, mapping, prepared.frame["text"]).render(lang()))
        stem = key[len(PREFIX):] if key.startswith(PREFIX) else Path(key.split(":")[0]).stem
        save_form(prepared, stem[:64])
except Exception as exc:  # bad input ends in a message, never a crash
    show_error(exc)
saved_datasets()
