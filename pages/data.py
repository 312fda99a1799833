import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from core import data as core_data
from core.datasets import list_datasets, load_rows, remove_dataset, save_dataset
from core.exporting import to_csv_bytes
from core.figures import class_balance_figure, text_length_figure
from core.i18n import Message
from core.language import language_mix
from core.samples import PREFIX, SAMPLES, load_sample
from core.workspace import Registry
from pages._shared import lang, show_error, t, through_app

through_app(__file__)

UPLOAD_TYPES = sorted({ext.lstrip(".") for ext in core_data.FORMATS})


@st.cache_data(max_entries=3, show_spinner=False)
def read_upload(digest: str, filename: str, _data: bytes) -> core_data.Table:
    return core_data.read_table(_data, filename)


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
    mode = st.radio(t("data.source"), ["upload", "sample"], horizontal=True,
                    format_func=lambda m: t(f"data.source_{m}"), key="source_mode")
    if mode == "sample":
        spec = st.selectbox(t("data.sample"), [PREFIX + s for s in SAMPLES], key="sample",
                            format_func=lambda s: f"{s} — {SAMPLES[s[len(PREFIX):]]}")
        table, mapping = read_sample(spec)
        return spec, table, mapping
    upload = st.file_uploader(t("data.uploader"), type=UPLOAD_TYPES, key="upload", help=t("data.upload_help"))
    if upload is None:
        st.info(t("data.waiting"))
        return None
    raw = upload.getvalue()
    digest = hashlib.sha1(raw).hexdigest()
    table = read_upload(digest, upload.name, raw)
    return f"{upload.name}:{digest}", table, core_data.detect_columns(table.frame)


def choose_columns(key: str, table: core_data.Table, detected: core_data.ColumnMapping) -> dict:
    st.subheader(t("data.mapping"))
    st.caption(t("data.mapping_help"))
    columns = list(table.frame.columns)
    options = ["", *columns]
    chosen = {}
    cells = st.columns(5)
    for cell, role in zip(cells, ("text", "label", "date", "group", "split"), strict=True):
        current = getattr(detected, role) or ""
        chosen[role] = cell.selectbox(
            t(f"data.col_{role}"), options, index=options.index(current) if current in options else 0,
            format_func=lambda c: c or t("data.none"), key=f"col_{role}_{key}",
        ) or None
    return chosen


def show_report(prepared: core_data.PreparedDataset) -> None:
    report = prepared.report
    st.subheader(t("data.report"))
    for note in report.notes:
        st.info(note, icon=":material/info:")
    for error in report.errors:
        st.error(error, icon=":material/block:")
    for warning in report.warnings:
        st.warning(warning, icon=":material/warning:")
    c1, c2, c3 = st.columns(3)
    c1.metric(t("data.rows_read"), f"{report.rows_read:,}")
    c2.metric(t("data.rows_kept"), f"{report.rows:,}")
    c3.metric(t("data.classes"), len(report.labels))
    if report.label_merges:
        st.caption(t("data.merged", merges="; ".join(f"{k} ← {', '.join(map(repr, v))}"
                                                     for k, v in report.label_merges.items())))
    left, right = st.columns([2, 3])
    left.markdown(f"**{t('data.cleaning')}**")
    left.dataframe(pd.DataFrame({t("data.step"): [t(f"data.step.{s['step']}") for s in report.steps],
                                 t("data.count"): [s["count"] for s in report.steps]}),
                   hide_index=True, width="stretch")
    if report.split_counts:
        right.markdown(f"**{t('data.balance')}**")
        right.plotly_chart(class_balance_figure(report.split_counts, report.labels, lang()), key="balance")
    if len(prepared.frame):
        st.markdown(f"**{t('data.lengths')}**")
        st.plotly_chart(text_length_figure(prepared.frame["text"].str.len(), lang()), key="lengths")


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
                st.success(t("data.saved", name=card["name"], rows=f"{card['rows']:,}"))
            except Exception as exc:  # shown to the user, never a traceback
                show_error(exc)


def saved_datasets() -> None:
    st.header(t("data.saved_list"))
    cards = list_datasets()
    if not cards:
        st.info(t("data.no_saved"))
    for card in cards:
        classes = ", ".join(f"{k} {v:,}" for k, v in card["classes"].items())
        with st.expander(f"**{card['name']}** — {card['rows']:,} rows — {classes}"):
            st.write(f"{t('data.card_source')}: `{card['source']}` · {t('data.card_encoding')}: "
                     f"`{card['encoding']}` · {t('data.card_created')}: {card['created_at']}"
                     + (f" · {t('train.by', user=card['created_by'])}" if card.get("created_by") else ""))
            st.json({"columns": card["columns"], "split_counts": card["split_counts"],
                     "steps": {s["step"]: s["count"] for s in card["steps"]},
                     "length_stats": card["length_stats"], "warnings": card["warnings"]}, expanded=False)
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


st.title(t("data.title"))
st.write(t("data.intro"))
try:
    chosen = choose_source()
    if chosen:
        key, table, detected = chosen
        info = table.describe()
        st.markdown(t("data.read_as", format=info["format"], encoding=info["encoding"] or "—",
                      delimiter=info["delimiter"] or "—", rows=f"{info['rows']:,}", columns=len(info["columns"])))
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
