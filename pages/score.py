import os

import streamlit as st

from core import exporting, i18n, jobs, ray_engine, scores, scoring
from core.data import FORMATS, detect_columns
from core.datasets import list_datasets
from core.figures import label_distribution_figure
from core.runs import list_runs
from core.workspace import Registry
from pages._shared import chart, job_card, keep_choice, lang, show_error, t, through_app

through_app(__file__)

UPLOAD_TYPES = sorted({ext.lstrip(".") for ext in FORMATS})


def choose_model() -> str | None:
    """Finished runs with their dataset and test accuracy; the best run of the dataset used most
    recently comes pre-selected."""
    runs = [r for r in list_runs(lang=lang()) if r["status"] == "succeeded"]
    if not runs:
        st.info(t("score.no_models"))
        return None
    ids = [r["id"] for r in runs]
    preferred = scores.preferred_run(runs, scores.list_scores())
    labels = {r["id"]: t("score.model_option", name=scoring.model_name(r), dataset=r["dataset"],
                         accuracy="—" if r["accuracy"] is None else f"{r['accuracy']:.3f}") for r in runs}
    # keyed by language: a select box keeps its old option labels when only their wording changes
    return st.selectbox(t("score.model"), ids, index=ids.index(preferred), format_func=labels.get,
                        key=f"score_run_{lang()}")


def choose_input() -> tuple | None:
    mode = keep_choice(st.radio, t("score.source"), ["upload", "dataset"], "score_source", horizontal=True,
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
        if not os.path.exists(path):  # its copy went with a deleted scoring output: stage it again
            staged_upload.clear()
            path = staged_upload(value.file_id, value.name, value.getvalue())
        head = scoring.preview(path, 100)
        st.dataframe(head.head(20), hide_index=True, width="stretch", height=200)
        columns, detected = list(head.columns), detect_columns(head).text
        if detected is None:
            st.error(t("score.no_text", columns=", ".join(columns)))
            return
        source_name = value.name
    else:  # a saved dataset: its cleaned texts are in the column "text"
        path, columns, detected = None, ["text"], "text"
        source_name = t("score.dataset_source", name=value)
    text_col = st.selectbox(t("score.text_col"), columns, index=columns.index(detected),
                            key=f"score_col_{path or value}")
    fast = st.toggle(t("score.fast"), key="score_fast")
    engine = choose_engine()
    if st.button(t("score.start"), type="primary", key="score_start"):
        config = scoring.ScoreConfig(run_id=run_id, input=path or str(scoring.stage_dataset(value)),
                                     text_col=text_col, fast=fast, source_name=source_name, **engine)
        create = ray_engine.create_ray_score if engine else scoring.create_score
        folder = create(config, lang=lang())
        job = jobs.submit(folder, created_by=st.session_state.get("user"), kind="score", job_id=folder.name)
        if job["status"] == "queued":  # say so: a queued job announced as started is not true
            st.info(t("score.queued", name=config.name, place=jobs.queue_message(job)))
        else:
            st.success(t("score.started", name=config.name))


def choose_engine() -> dict:
    """This machine, or the configured Ray cluster (offered only when an address is configured)."""
    engines = ray_engine.engines()
    if len(engines) == 1:
        return {}
    address = ray_engine.configured_address()
    engine = st.radio(t("ray.engine"), engines, horizontal=True, key="score_engine",
                      format_func=lambda e: t(f"ray.engine_{e}", address=address))
    if engine == "local":
        return {}
    workers = st.number_input(t("ray.workers"), 1, 1000, 2, key="score_workers", help=t("ray.workers_help"))
    return {"engine": "ray", "address": address, "workers": int(workers)}


def delete_with_confirmation(entry: scores.ScoreEntry, place=st) -> None:
    """Delete asks first, naming the rows and files that go."""
    if st.session_state.get("score_confirm") != entry.id:
        if place.button(t("score.delete"), key=f"sdel_{entry.id}", icon=":material/delete:"):
            st.session_state["score_confirm"] = entry.id
            st.rerun()
        return
    registry = Registry()
    place.warning(i18n.render(scores.removal_plan(entry.id, registry).message(registry.root), lang()))
    yes, no = place.columns(2)
    deleted = False
    if yes.button(t("score.delete_yes"), key=f"sdel_yes_{entry.id}", type="primary"):
        try:
            scores.delete_score(entry.id, registry)
        except Exception as exc:  # started again meanwhile: say so, delete nothing
            show_error(exc)
            return
        st.session_state["score_flash"] = t("score.deleted", name=entry.name)
        deleted = True
    if deleted or no.button(t("score.delete_no"), key=f"sdel_no_{entry.id}"):
        st.session_state.pop("score_confirm", None)
        st.rerun()


def score_card(entry: scores.ScoreEntry) -> None:
    """One scoring job in the shared job card (the same as the Train page's), plus delete."""
    registry = Registry()
    row = registry.job(entry.job_id) if entry.job_id else None
    with st.container(border=True):
        job_card(jobs.describe(row, registry) if row else None, title=entry.name, status=entry.status,
                 key=entry.id, reason=entry.error,
                 caption=t("score.card_caption", model=entry.model, source=entry.source_name, id=entry.id,
                           created=i18n.format_timestamp(entry.created_at, lang())),
                 extra=lambda place: None if entry.status in jobs.ACTIVE else delete_with_confirmation(entry, place))


@st.fragment(run_every=2)
def live_jobs() -> None:
    """Progress of every scoring job; when one finishes, the whole page reruns to show its results."""
    listed = scores.list_scores(lang=lang())
    shown = [e for e in listed if e.status in jobs.ACTIVE] + [e for e in listed if e.status not in jobs.ACTIVE][:10]
    if not shown:
        st.info(t("score.no_jobs"))
    done = {e.id for e in listed if e.status == "succeeded"}
    if st.session_state.setdefault("score_done", done) != done:
        st.session_state["score_done"] = done
        st.rerun()
    for entry in shown:
        score_card(entry)


@st.cache_resource(max_entries=2, show_spinner=False)
def scored(score_id: str, version: int):
    """The scored rows (shared, never changed in place; ``version`` is the file's mtime)."""
    return scoring.scored_frame(score_id)


@st.cache_resource(max_entries=4, show_spinner=False)
def changes(score_id: str, version: int, _frame) -> dict[str, exporting.Export]:
    return exporting.export_changes(_frame)


def downloads(entry: scores.ScoreEntry, frame, changed: dict[str, exporting.Export]) -> None:
    """Four downloads, each saying which cells it changes and why."""
    stem = scores.file_stem(entry)
    d1, d2, d3, d4 = st.columns([1.2, 1.2, 1, 1])
    d1.download_button(t("score.download_csv"), help=t("score.download_csv_help"), data=lambda: exporting.csv_export(frame).data,
                       file_name=f"{stem}.csv", mime="text/csv", on_click="ignore", key=f"csv_{entry.id}",
                       icon=":material/download:")
    d2.download_button(t("score.download_csv_raw"), help=t("score.download_csv_raw_help"), data=lambda: exporting.csv_export(frame, guard=False).data,
                       file_name=f"{stem}-unchanged.csv", mime="text/csv", on_click="ignore",
                       key=f"csvraw_{entry.id}", icon=":material/download:")
    if len(frame) <= scoring.EXCEL_MAX_ROWS:
        d3.download_button(t("score.download_xlsx"), data=lambda: exporting.excel_export(frame).data,
                           on_click="ignore", file_name=f"{stem}.xlsx", key=f"xlsx_{entry.id}",
                           icon=":material/download:")
    else:
        d3.caption(t("score.too_big_excel"))
    d4.download_button(t("score.download_parquet"), data=lambda: exporting.parquet_export(frame).data,
                       file_name=f"{stem}.parquet", on_click="ignore", key=f"pq_{entry.id}",
                       icon=":material/download:")
    notices = [e.notice() for e in (changed["csv"], changed["excel"]) if e.notice() is not None]
    for notice in notices:
        st.caption(i18n.render(notice, lang()))
    if not notices:  # the CSV's notice already says what the other downloads keep
        st.caption(t("score.export.csv_clean_kept", clean=t("score.export.csv_clean"), kept=t("score.export.kept")))


def rename(entry: scores.ScoreEntry) -> None:
    with st.form(f"rename_{entry.id}", border=False):
        name = st.text_input(t("score.name"), value=entry.name, key=f"sname_{entry.id}")
        if st.form_submit_button(t("score.rename")) and name.strip() != entry.name:
            scores.rename_score(entry.id, name)
            st.session_state["score_flash"] = t("score.renamed", name=name.strip())
            st.rerun()


def results(entry: scores.ScoreEntry) -> None:
    summary = entry.summary or {}
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("score.scored"), i18n.format_count(summary.get("scored", 0)))
    c2.metric(t("score.empty"), i18n.format_count(summary.get("empty", 0)))
    if summary.get("mean_confidence") is not None:
        c3.metric(t("score.mean_conf"), f"{summary['mean_confidence']:.3f}")
        c4.metric(t("score.low_conf"), f"{summary['low_confidence_share']:.1%}")
    if entry.fast_agreement is not None:
        st.caption(f"{t('score.agreement')}: {entry.fast_agreement:.1%}")
    rename(entry)
    st.page_link("pages/trends.py", label=t("score.open_trends"), icon=":material/trending_up:",
                 query_params={"source": entry.id, "lang": lang()})
    chart(label_distribution_figure(summary.get("label_counts", {}), lang()), f"dist_{entry.id}")
    version = (scoring.score_folder(entry.id) / "scored.parquet").stat().st_mtime_ns
    frame = scored(entry.id, version)
    with st.expander(t("score.preview")):
        st.dataframe(frame.head(100), hide_index=True, width="stretch")
    st.subheader(t("score.downloads"))
    downloads(entry, frame, changes(entry.id, version, frame))


def finished_results() -> None:
    """Summary, preview and downloads of a finished job (outside the refreshing fragment, so
    downloads are not interrupted)."""
    finished = {e.id: e for e in scores.list_scores(lang=lang()) if e.status == "succeeded"}
    if not finished:
        return
    st.subheader(t("score.finished"))
    chosen = st.selectbox(t("score.open"), list(finished), format_func=lambda i: finished[i].name, key="score_open")
    results(finished[chosen])


st.title(t("score.title"))
st.write(t("score.intro"))
if "score_flash" in st.session_state:
    st.success(st.session_state.pop("score_flash"))
run_id = choose_model()
if run_id:
    try:
        chosen = choose_input()
        if chosen:
            launch(run_id, chosen)
    except Exception as exc:  # bad files end in a message
        show_error(exc)
st.header(t("score.jobs"))
live_jobs()
try:
    finished_results()
except Exception as exc:  # a bad name or a scored file removed meanwhile ends in a message
    show_error(exc)
