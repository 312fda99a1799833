import io

import streamlit as st

from core import jobs, scoring
from core.data import FORMATS, detect_columns
from core.datasets import list_datasets
from core.exporting import to_csv_bytes
from core.figures import label_distribution_figure
from core.runs import list_runs
from core.workspace import Registry
from pages._shared import lang, show_error, t, through_app

through_app(__file__)

UPLOAD_TYPES = sorted({ext.lstrip(".") for ext in FORMATS})


def choose_input() -> tuple | None:
    mode = st.radio(t("score.source"), ["upload", "dataset"], horizontal=True, key="score_source",
                    format_func=lambda m: t(f"score.source_{m}"))
    if mode == "dataset":
        names = [c["name"] for c in list_datasets()]
        name = st.selectbox(t("score.dataset"), names, key="score_dataset")
        return ("dataset", name) if name else None
    upload = st.file_uploader(t("score.uploader"), type=UPLOAD_TYPES, key="score_upload", help=t("score.upload_help"))
    return ("upload", upload) if upload is not None else None


@st.cache_data(max_entries=3, show_spinner=False)
def staged_upload(file_id: str, name: str, _data: bytes) -> str:
    return str(scoring.stage_input(_data, name))


def launch(run_id: str, chosen: tuple) -> None:
    kind, value = chosen
    if kind == "upload":
        path = staged_upload(value.file_id, value.name, value.getvalue())
        head = scoring.preview(path, 100)
        st.dataframe(head.head(20), hide_index=True, width="stretch", height=200)
        columns, detected = list(head.columns), detect_columns(head).text
        if detected is None:
            st.error(t("score.no_text", columns=", ".join(columns)))
            return
    else:  # a saved dataset: its cleaned texts are in the column "text"
        path, columns, detected = None, ["text"], "text"
    text_col = st.selectbox(t("score.text_col"), columns, index=columns.index(detected),
                            key=f"score_col_{path or value}")
    fast = st.toggle(t("score.fast"), key="score_fast")
    if st.button(t("score.start"), type="primary", key="score_start"):
        source = path or str(scoring.stage_dataset(value))
        folder = scoring.create_score(scoring.ScoreConfig(run_id=run_id, input=source, text_col=text_col, fast=fast))
        job = jobs.submit(folder, created_by=st.session_state.get("user"), kind="score")
        st.success(t("score.started", job=job["id"]))


def results(info: dict) -> None:
    summary = info["summary"] or {}
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("score.scored"), f"{summary.get('scored', 0):,}")
    c2.metric(t("score.empty"), f"{summary.get('empty', 0):,}")
    if summary.get("mean_confidence") is not None:
        c3.metric(t("score.mean_conf"), f"{summary['mean_confidence']:.3f}")
        c4.metric(t("score.low_conf"), f"{summary['low_confidence_share']:.1%}")
    if info.get("fast_agreement") is not None:
        st.caption(f"{t('score.agreement')}: {info['fast_agreement']:.1%}")
    st.page_link("pages/trends.py", label=t("score.open_trends"), icon=":material/trending_up:",
                 query_params={"source": info["run_id"], "lang": lang()})
    st.plotly_chart(label_distribution_figure(summary.get("label_counts", {}), lang()), key=f"dist_{info['id']}")
    frame = scoring.scored_frame(info["run_id"])
    with st.expander(t("score.preview")):
        st.dataframe(frame.head(100), hide_index=True, width="stretch")
    d1, d2, d3 = st.columns(3)
    d1.download_button(t("score.download_csv"), data=lambda: to_csv_bytes(frame), file_name=f"{info['run_id']}.csv",
                       mime="text/csv", on_click="ignore", key=f"csv_{info['id']}", icon=":material/download:")
    if len(frame) <= scoring.EXCEL_MAX_ROWS:
        from core.exporting import to_excel_bytes

        d2.download_button(t("score.download_xlsx"), data=lambda: to_excel_bytes(frame), on_click="ignore",
                           file_name=f"{info['run_id']}.xlsx", key=f"xlsx_{info['id']}", icon=":material/download:")
    else:
        d2.caption(t("score.too_big_excel"))

    def parquet_bytes() -> bytes:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()

    d3.download_button(t("score.download_parquet"), data=parquet_bytes, file_name=f"{info['run_id']}.parquet",
                       on_click="ignore", key=f"pq_{info['id']}", icon=":material/download:")


@st.fragment(run_every=2)
def live_jobs() -> None:
    """Progress of every scoring job; when one finishes, the whole page reruns to show its results."""
    registry = Registry()
    jobs.reconcile(registry)
    listed = [j for j in registry.jobs() if j["kind"] == "score"][:10]
    if not listed:
        st.info(t("score.no_jobs"))
    done = {j["id"] for j in listed if j["status"] == "succeeded"}
    if st.session_state.setdefault("score_done", done) != done:
        st.session_state["score_done"] = done
        st.rerun()
    for job in listed:
        info = jobs.describe(job, registry)
        with st.container(border=True):
            st.markdown(f"**{info['run_id']}** · {t('train.status')}: **{t('status.' + info['status'])}**")
            if info["total_steps"]:
                text = t("score.rows", done=f"{info['step']:,}", total=f"{info['total_steps']:,}")
                if info["status"] == "running" and info.get("rows_per_s"):
                    text += " · " + t("score.speed", rate=f"{info['rows_per_s']:.1f}")
                st.progress(min(info["step"] / info["total_steps"], 1.0), text=text)
            if info["error"]:
                st.warning(t("train.error", error=info["error"]))
            if info["status"] in ("queued", "running") and st.button(t("train.stop"), key=f"sstop_{job['id']}"):
                jobs.cancel(job["id"])
            if info["status"] in jobs.RESUMABLE and st.button(t("train.resume"), key=f"sres_{job['id']}"):
                jobs.resume(job["id"])


def finished_results() -> None:
    """Summary, preview and downloads of a finished job (outside the refreshing fragment, so
    downloads are not interrupted)."""
    registry = Registry()
    finished = [jobs.describe(j, registry) for j in registry.jobs() if j["kind"] == "score" and j["status"] == "succeeded"]
    if not finished:
        return
    st.subheader(t("score.finished"))
    chosen = st.selectbox(t("score.open"), [f["run_id"] for f in finished], key="score_open")
    results(next(f for f in finished if f["run_id"] == chosen))


st.title(t("score.title"))
st.write(t("score.intro"))
finished = [r for r in list_runs() if r["status"] == "succeeded"]
if not finished:
    st.info(t("score.no_models"))
else:
    run_id = st.selectbox(
        t("score.model"), [r["id"] for r in finished], key="score_run",
        format_func=lambda i: next(f"{r['id']} · {r['dataset']} · {r['method']} · acc "
                                   f"{r['accuracy'] if r['accuracy'] is None else round(r['accuracy'], 3)}"
                                   for r in finished if r["id"] == i))
    try:
        chosen = choose_input()
        if chosen:
            launch(run_id, chosen)
    except Exception as exc:  # bad files end in a message
        show_error(exc)
st.header(t("score.jobs"))
live_jobs()
finished_results()
