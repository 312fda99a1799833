"""Zero-shot on the pages: the Train page's form, the Data page's "Start without labels" and the
Results page's description editor. Widgets only; every rule is in ``core.zeroshot``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pandas as pd
import streamlit as st

from core import jobs, unlabelled
from core.data import FORMATS, detect_columns
from core.datasets import load_rows
from core.estimates import estimate_zeroshot
from core.i18n import format_duration
from core.predict import run_folder
from core.workspace import Registry
from core.zeroshot import (
    DEFAULT_TEMPERATURE,
    ZeroShotConfig,
    compare_descriptions,
    create_zeroshot_run,
    default_label_names,
    descriptions_from_form,
    edited_config,
    form_descriptions,
    parse_label_names,
    preview_texts,
    submit_command,
)
from pages._shared import count, lang, render, show_error, start_run, submitted_text, t

SAMPLE_TEXTS = 2000  # texts read to tell the data's language (for the default descriptions)


@st.cache_data(max_entries=8, show_spinner=False)
def dataset_texts(dataset_id: str) -> list[str]:
    return load_rows(dataset_id)["text"].head(SAMPLE_TEXTS).tolist()


def description_boxes(starts: dict[str, str], key: str) -> dict[str, str]:
    """One text area per label, pre-filled; several descriptions = one per line."""
    st.markdown(f"**{t('zeroshot.form.descriptions')}**")
    st.caption(t("zeroshot.form.descriptions_help"))
    cells = st.columns(min(len(starts), 3) or 1)
    return {label: cells[i % len(cells)].text_area(label, value=text, height=100, key=f"{key}_{label}")
            for i, (label, text) in enumerate(starts.items())}


def train_form(card: dict, model: str) -> None:
    """Method zero-shot on the Train page: descriptions, temperature and test rows, then launch."""
    st.info(t("zeroshot.form.intro"), icon=":material/bolt:")
    boxes = description_boxes(form_descriptions(card["labels"], dataset_texts(card["id"])), f"zs_{card['id']}")
    with st.expander(t("train.advanced")):
        left, right = st.columns(2)
        temperature = left.number_input(t("zeroshot.form.temperature"), min_value=0.001, max_value=1.0,
                                        value=DEFAULT_TEMPERATURE, step=0.005, format="%g",
                                        help=t("zeroshot.help.temperature"), key="zs_temperature")
        limit = right.number_input(t("zeroshot.form.limit"), min_value=0, value=0, step=100,
                                   help=t("zeroshot.help.limit"), key="zs_limit")
    try:
        descriptions = descriptions_from_form(boxes)
    except Exception as exc:  # an empty or repeated description: named, before anything starts
        show_error(exc)
        return
    config = ZeroShotConfig(labels=list(descriptions), descriptions=descriptions, model=model,
                            temperature=float(temperature), dataset=card["name"], limit=int(limit))
    estimate = estimate_zeroshot(config)
    st.caption(t("zeroshot.form.estimate", duration=format_duration(estimate.seconds, lang()),
                 rows=count(estimate.train_rows), basis=render(estimate.message)))
    start_run(submit_command(config),
              lambda registry: create_zeroshot_run(config, registry, st.session_state.get("user")))


def start_without_labels(read: Callable) -> None:
    """The Data page's entry for an export with no label column: label names and descriptions,
    then one click queues the zero-shot run and, once it is ready, the scoring of the file."""
    st.caption(t("zeroshot.start.intro"))
    upload = st.file_uploader(t("zeroshot.start.uploader"), key="unlabelled_upload",
                              type=sorted({ext.lstrip(".") for ext in FORMATS}))
    if upload is None:
        st.info(t("zeroshot.start.waiting"))
        return
    raw = upload.getvalue()
    digest = hashlib.sha1(raw).hexdigest()
    frame = read(digest, upload.name, raw).frame
    columns = list(frame.columns)
    detected = detect_columns(frame).text
    text_col = st.selectbox(t("zeroshot.start.text_col"), columns, key=f"unl_col_{digest}",
                            index=columns.index(detected) if detected in columns else 0)
    texts = frame[text_col].astype("str").head(SAMPLE_TEXTS).tolist()
    st.caption(t("zeroshot.start.rows", rows=count(len(frame)), column=text_col))
    typed = st.text_input(t("zeroshot.start.labels"), value=", ".join(default_label_names(texts)),
                          help=t("zeroshot.start.labels_help"), key=f"unl_labels_{digest}")
    labels = parse_label_names(typed)
    boxes = description_boxes(form_descriptions(labels, texts), f"unl_{digest}")
    if st.button(t("zeroshot.start.go"), type="primary", key="unlabelled_start"):
        registry = Registry()
        started = unlabelled.start(raw, upload.name, text_col, boxes, registry, st.session_state.get("user"),
                                   lang=lang())
        st.success(submitted_text(started.run_dir, started.job, registry))
        st.info(t("zeroshot.start.next", file=started.source_name), icon=":material/arrow_forward:")
        left, right = st.columns(2)
        left.page_link("pages/score.py", label=t("nav.score"), icon=":material/arrow_forward:")
        right.page_link("pages/trends.py", label=t("nav.trends"), icon=":material/arrow_forward:")


def edit_descriptions(run_id: str, model, typed: str) -> None:
    """Results → Try it on a zero-shot run: edit the descriptions, preview the change on the
    typed text and a few test rows (nothing is changed), or save them as a new run."""
    st.subheader(t("zeroshot.try.title"))
    saved = {label: "\n".join(texts) for label, texts in model.descriptions.items()}
    boxes = description_boxes(saved, f"zs_try_{run_id}")
    left, right = st.columns(2)
    preview = left.button(t("zeroshot.try.preview"), key="zs_preview")
    save = right.button(t("zeroshot.try.save"), key="zs_save")
    if not (preview or save):
        return
    try:
        edited = descriptions_from_form(boxes)
        folder = run_folder(run_id)
        if preview:
            with st.spinner(t("zeroshot.try.previewing")):
                frame = compare_descriptions(model, edited, preview_texts(folder, [typed]))
            show_comparison(frame)
        if save:
            registry = Registry()
            new = create_zeroshot_run(edited_config(folder, edited), registry, st.session_state.get("user"))
            st.success(submitted_text(new, jobs.submit(new, registry, st.session_state.get("user")), registry))
    except Exception as exc:  # an empty or repeated description, named
        show_error(exc)


def show_comparison(frame: pd.DataFrame) -> None:
    changed = int(frame["changed"].sum())
    st.caption(t("zeroshot.try.changed", changed=count(changed), total=count(len(frame))))
    names = {"text": t("results.text"), "before": t("zeroshot.try.before"),
             "before_confidence": t("zeroshot.try.before_confidence"), "after": t("zeroshot.try.after"),
             "after_confidence": t("zeroshot.try.after_confidence")}
    shown = frame.drop(columns="changed").rename(columns=names)
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        names["before_confidence"]: st.column_config.NumberColumn(format="%.3f"),
        names["after_confidence"]: st.column_config.NumberColumn(format="%.3f")})
