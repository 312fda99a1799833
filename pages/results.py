import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor

import pandas as pd
import streamlit as st

from core import figures, result_tables, runs
from core.comparison import list_comparisons
from core.explain import explain, highlight_html
from core.exporting import to_csv_bytes
from core.predict import load_predictor
from pages._export import portable_model
from pages._methods import methods_view
from pages._shared import chart, keep_choice, lang, show_error, t, through_app
from pages._zeroshot import edit_descriptions

through_app(__file__)

VIEWS = ["overview", "errors", "try", "compare", "methods", "file", "export"]


@st.cache_data(max_entries=8, show_spinner=False)
def test_report(run_id: str) -> dict:
    return runs.evaluate_run(run_id)


@st.cache_data(max_entries=4, show_spinner=False)
def file_report(run_id: str, digest: str, filename: str, text_col: str | None, label_col: str | None,
                _data: bytes) -> dict:
    return runs.evaluate_run(run_id, file=_data, filename=filename, text_col=text_col, label_col=label_col)


@st.cache_resource(max_entries=2, show_spinner=False)  # no untranslated "Running predictor(...)."
def predictor(run_id: str):
    return load_predictor(run_id)


@st.cache_resource(show_spinner=False)
def explainer_pool() -> ThreadPoolExecutor:
    """Explanations run here, off the script thread, so the page stays responsive."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain")


def show_texts(frame: pd.DataFrame, **kwargs) -> None:
    """A table of texts with headers in the UI language and confidences to three decimals."""
    names = {"text": t("results.text"), "true": t("results.cell_true"), "predicted": t("results.cell_pred"),
             "confidence": t("chart.confidence")}
    st.dataframe(frame.rename(columns=names), hide_index=True, width="stretch", **kwargs,
                 column_config={names["confidence"]: st.column_config.NumberColumn(format="%.3f")})


def headline(report: dict, baseline: dict) -> None:
    cols = st.columns(4)
    for col, key in zip(cols[:3], ("accuracy", "macro_f1", "weighted_f1"), strict=True):
        base = baseline.get(key)
        delta = f"{report[key] - base:+.3f} {t('results.vs_baseline')}" if base is not None else None
        col.metric(t(f"results.{key}"), f"{report[key]:.3f}", delta)
    cols[3].metric(t("results.rows"), f"{report['rows']:,}")


def confusion(report: dict, run_id: str, texts: pd.DataFrame | None) -> None:
    st.subheader(t("results.confusion"))
    normalised = st.toggle(t("results.normalised"), key=f"norm_{run_id}")
    matrix = report["confusion_matrix_normalised" if normalised else "confusion_matrix"]
    fig = figures.confusion_matrix_figure(matrix, report["labels"], normalised, lang())
    event = chart(fig, f"cm_{run_id}", on_select="rerun", selection_mode="points")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    labels = report["labels"]
    c1, c2 = st.columns(2)
    true = c1.selectbox(t("results.cell_true"), labels, key=f"cell_true_{run_id}",
                        index=labels.index(points[0]["y"]) if points else 0)
    pred = c2.selectbox(t("results.cell_pred"), labels, key=f"cell_pred_{run_id}",
                        index=labels.index(points[0]["x"]) if points else min(1, len(labels) - 1))
    if texts is not None:
        cell = texts[(texts["label"] == true) & (texts["predicted"] == pred)]
        st.caption(t("results.cell", true=true, pred=pred) + f" ({len(cell):,})")
        show_texts(cell[["text", "confidence"]].sort_values("confidence", ascending=False).head(200), height=220)


def overview(run_id: str, shown: dict) -> None:
    report = test_report(run_id)
    headline(report, runs.baseline_reference(shown))
    confusion(report, run_id, runs.test_predictions(run_id))
    st.subheader(t("results.per_class"))
    st.dataframe(result_tables.metrics_display(report, lang()), hide_index=True)
    if any(e.get("event") == "step" for e in shown["progress"]):
        st.subheader(t("results.curves"))
        chart(figures.training_curves_figure(shown["progress"], lang()), "curves")
    quality_charts(report, "test")


def quality_charts(report: dict, key: str) -> None:
    """ROC / precision-recall curves, calibration and the confidence histogram of a report."""
    if report.get("curves"):
        c1, c2 = st.columns(2)
        c1.markdown(f"**{t('results.roc')}**")
        chart(figures.roc_figure(report["curves"], lang()), f"roc_{key}", c1)
        c2.markdown(f"**{t('results.pr')}**")
        chart(figures.pr_figure(report["curves"], lang()), f"pr_{key}", c2)
    c1, c2 = st.columns(2)
    c1.markdown(f"**{t('results.calibration')}**")
    chart(figures.calibration_figure(report["calibration"], lang()), f"calibration_{key}", c1)
    c2.markdown(f"**{t('results.confidence')}**")
    chart(figures.confidence_histogram_figure(report["confidence_histogram"], lang()), f"confidence_{key}", c2)


def error_analysis(run_id: str) -> None:
    wrong = pd.DataFrame(test_report(run_id)["misclassified"])
    if wrong.empty:
        st.success(t("results.mistakes", n=0))
        return
    labels = sorted(set(wrong["true"]) | set(wrong["predicted"]))
    c1, c2, c3 = st.columns(3)
    trues = c1.multiselect(t("results.filter_true"), labels, default=labels, key="err_true")
    preds = c2.multiselect(t("results.filter_pred"), labels, default=labels, key="err_pred")
    floor = c3.slider(t("results.min_conf"), 0.0, 1.0, 0.0, 0.05, key="err_conf")
    shown = wrong[wrong["true"].isin(trues) & wrong["predicted"].isin(preds) & (wrong["confidence"] >= floor)]
    st.caption(t("results.mistakes", n=f"{len(shown):,}"))
    show_texts(shown[["text", "true", "predicted", "confidence"]])
    st.download_button(t("results.download_errors"), to_csv_bytes(shown), file_name=f"{run_id}-mistakes.csv",
                       mime="text/csv", on_click="ignore", icon=":material/download:")


@st.fragment(run_every=1)
def explanation_panel(run_id: str) -> None:
    job: Future | None = st.session_state.get("explain_job")
    if job is None:
        return
    if not job.done():
        st.info(t("results.explaining"), icon=":material/hourglass_top:")
        return
    try:
        result = job.result()
    except Exception as exc:  # shown to the user
        show_error(exc)
        return
    st.markdown(t("results.prediction", label=result["label"]))
    probabilities = pd.DataFrame({"label": list(result["probabilities"]), "probability": list(
        result["probabilities"].values())}).sort_values("probability", ascending=False)
    st.dataframe(probabilities, hide_index=True, column_config={
        "label": t("results.col.label"),
        "probability": st.column_config.ProgressColumn(t("results.col.probability"), format="%.3f",
                                                       min_value=0.0, max_value=1.0)})
    if result["truncated"]:
        st.warning(t("results.truncated", tokens=result["model_tokens"], limit=result["max_length"]))
    st.caption(t("results.highlight"))
    st.html(f'<div style="line-height:2">{highlight_html(result["tokens"], result["attributions"])}</div>')


def try_it(run_id: str, method: str | None) -> None:
    text = st.text_area(t("results.text"), key="try_text", height=120)
    if st.button(t("results.explain"), key="try_button", type="primary"):
        if not text.strip():
            st.warning(t("results.empty_text"))
        else:
            model = predictor(run_id)
            st.session_state["explain_job"] = explainer_pool().submit(explain, model, text)
    explanation_panel(run_id)
    if method == "zeroshot":  # its labels come from words the analyst can change and preview
        edit_descriptions(run_id, predictor(run_id).backend, text)


def compare(listed: list[dict], current: str) -> None:
    finished = [r for r in listed if r["status"] == "succeeded"]
    names = {r["id"]: result_tables.run_name(r, lang()) for r in finished}
    ids = st.multiselect(t("results.compare_pick"), list(names), key=f"compare_ids_{current}",
                         default=runs.default_comparison(listed, current), format_func=names.get)
    if len(ids) < 2:
        st.info(t("results.compare_more"))
        return
    result = runs.compare_runs(ids)
    st.dataframe(result_tables.comparison_table(result, names, lang()), hide_index=True)
    st.markdown(f"**{t('results.compare_per_class')}**")
    chart(figures.compare_per_class_figure(result["per_class"], lang(), names), "compare_per_class")
    if any(e.get("event") == "eval" for events in result["histories"].values() for e in events):
        st.markdown(f"**{t('results.compare_curves')}**")
        chart(figures.compare_curves_figure(result["histories"], lang(), names), "compare_curves")
    cols = st.columns(len(ids))
    for col, run_id in zip(cols, ids, strict=True):
        if result["confusion_matrices"][run_id]:
            col.caption(names[run_id])
            figure = figures.confusion_matrix_figure(result["confusion_matrices"][run_id],
                                                     result["labels"][run_id], False, lang())
            chart(figure, f"cmp_{run_id}", col)


def evaluate_file(run_id: str) -> None:
    upload = st.file_uploader(t("results.upload"), key="eval_upload")
    if upload is None:
        return
    data = upload.getvalue()
    report = file_report(run_id, hashlib.sha1(data).hexdigest(), upload.name, None, None, data)
    if report["unmapped_labels"]:
        st.warning(t("results.unmapped", rows=f"{report['skipped_rows']:,}",
                     labels=", ".join(map(repr, report["unmapped_labels"]))))
    headline(report, {})
    chart(figures.confusion_matrix_figure(report["confusion_matrix"], report["labels"], False, lang()), "file_cm")
    st.dataframe(result_tables.metrics_display(report, lang()), hide_index=True)
    quality_charts(report, "file")


def export(run_id: str) -> None:
    report = test_report(run_id)
    slim = {k: v for k, v in report.items() if k != "misclassified"}
    st.download_button(t("results.download_model"), data=lambda: runs.model_zip(run_id), file_name=f"{run_id}.zip",
                       mime="application/zip", on_click="ignore", icon=":material/download:")
    st.download_button(t("results.download_json"), json.dumps(slim, ensure_ascii=False, indent=2),
                       file_name=f"{run_id}-metrics.json", mime="application/json", on_click="ignore")
    st.download_button(t("results.download_csv"), to_csv_bytes(runs.metrics_table(report)),
                       file_name=f"{run_id}-metrics.csv", mime="text/csv", on_click="ignore")
    portable_model(run_id)


def back_to_overview() -> None:
    """Another run starts on its Overview, without the last run's explanation."""
    for key in ("results_view", "explain_job"):
        st.session_state.pop(key, None)


st.title(t("results.title"))
all_runs = runs.list_runs(lang=lang())  # run names in the reader's language
if not all_runs:
    st.info(t("results.no_runs"))
    st.page_link("pages/train.py", label=t("nav.train"), icon=":material/arrow_forward:")
    st.stop()
finished = [r for r in all_runs if r["status"] == "succeeded"]
labels = {r["id"]: result_tables.run_label(r, lang()) for r in all_runs}
run_id = keep_choice(st.selectbox, t("results.run"), list(labels), "results_run", format_func=labels.get,
                     on_change=back_to_overview)
chosen = next(r for r in all_runs if r["id"] == run_id)
if chosen["status"] == "failed":
    st.error(t("results.failed", reason=chosen["reason"] or "—"))
elif chosen["status"] != "succeeded":
    st.info(t("results.not_finished", status=t("status." + chosen["status"])))
# a run still training still leaves Compare (two finished runs) and Methods (any comparison) open
other_views = [v for v, open_ in (("compare", len(finished) >= 2), ("methods", bool(list_comparisons()))) if open_]
if chosen["status"] == "succeeded" or other_views:
    views = VIEWS if chosen["status"] == "succeeded" else other_views
    if chosen.get("method") == "zeroshot" and chosen["status"] == "succeeded" and chosen["accuracy"] is None:
        st.info(t("zeroshot.results.unmeasured"))  # started from a file: no test split to measure
        views = ["try", "file"]
    view = keep_choice(st.segmented_control, t("results.view"), views, "results_view", default=views[0],
                       format_func=lambda v: t(f"results.view.{v}")) or views[0]
    try:
        if view == "overview":
            overview(run_id, runs.show_run(run_id))
        elif view == "errors":
            error_analysis(run_id)
        elif view == "try":
            try_it(run_id, chosen.get("method"))
        elif view == "compare":
            compare(all_runs, run_id)
        elif view == "methods":
            methods_view()
        elif view == "file":
            evaluate_file(run_id)
        else:
            export(run_id)
    except Exception as exc:  # bad files and broken runs end in a message
        show_error(exc)
