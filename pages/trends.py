import streamlit as st

from core import figures, trends
from core.data import FORMATS
from core.exporting import to_csv_bytes
from core.workspace import Registry
from pages._shared import lang, show_error, t, through_app

through_app(__file__)

DEMO = "sample:demo-timeline"
UPLOAD = "upload"
NONE = "—"


def source_options() -> dict[str, str]:
    """Finished scoring outputs (newest first), then the demo timeline, then an upload."""
    options = {job["run_id"]: t("trends.source_scored", id=job["run_id"])
               for job in Registry().jobs() if job["kind"] == "score" and job["status"] == "succeeded"}
    from pages import _monitor_link  # each monitor's history (imported here: a small, separate hunk)

    options.update(_monitor_link.sources())
    options[DEMO] = t("trends.source_demo")
    options[UPLOAD] = t("trends.source_upload")
    return options


@st.cache_resource(max_entries=4, show_spinner=False)
def load_source(source: str, version: str):
    """A scored output or the demo as a DataFrame (kept read-only; ``version`` busts the cache)."""
    return trends.load_frame(source)


@st.cache_resource(max_entries=2, show_spinner=False)
def load_upload(file_id: str, name: str, _data: bytes):
    from core.data import read_table

    return read_table(_data, name).frame


@st.cache_resource(max_entries=8, show_spinner=t("trends.working"))
def analyse(key: str, _frame, columns: tuple, settings: tuple) -> trends.TrendReport:
    cols = trends.Columns(*columns)
    return trends.analyse(_frame, cols, trends.TrendSettings(*settings))


@st.cache_data(max_entries=8, show_spinner=False)
def label_values(key: str, column: str, _frame) -> list[str]:
    """The label column's values (once per file and column, not on every rerun)."""
    return sorted(_frame[column].astype("str").str.strip().unique().tolist())[:50]


def choose_frame():
    options = source_options()
    param = st.query_params.get("source")
    if param and param != st.session_state.get("trends_param"):  # arrived through a link (Score page)
        st.session_state["trends_param"] = wanted = param
    else:
        wanted = st.session_state.get("trends_chosen") or param
    keys = list(options)
    index = keys.index(wanted) if wanted in options else 0
    # keyed by language: a select box keeps its old option labels when only their wording changes
    source = st.selectbox(t("trends.source"), keys, index=index, format_func=options.get, key=f"trends_source_{lang()}")
    st.session_state["trends_chosen"] = source
    from pages import _monitor_link

    if _monitor_link.is_monitor(source):  # a monitor's history (Monitors page, links in alerts)
        return _monitor_link.load(source)
    if source == UPLOAD:
        upload = st.file_uploader(t("trends.uploader"), type=sorted({e.lstrip(".") for e in FORMATS}),
                                  key="trends_upload")
        if upload is None:
            return None, None
        return load_upload(upload.file_id, upload.name, upload.getvalue()), f"upload:{upload.file_id}"
    if source == DEMO:
        st.info(t("trends.demo_note"), icon=":material/science:")
    else:
        st.query_params["source"] = st.session_state["trends_param"] = source
    from core.scoring import score_folder

    version = DEMO if source == DEMO else str((score_folder(source) / "scored.parquet").stat().st_mtime_ns)
    return load_source(source, version), f"{source}:{version}"


def choose_columns(frame, key: str) -> tuple[trends.Columns, trends.TrendSettings] | None:
    suggested = trends.suggest_columns(frame)
    names = [str(c) for c in frame.columns]

    def pick(col, role: str, optional: bool = False):
        choices = ([NONE] if optional else []) + names
        value = suggested.get(role) if role != "group" else suggested.get("group")
        index = choices.index(value) if value in choices else 0
        chosen = col.selectbox(t(f"trends.col_{role}"), choices, index=index, key=f"trends_col_{role}")
        return None if chosen == NONE else chosen

    c1, c2, c3, c4, c5 = st.columns([1, 1, 1, 1, 1.2])
    columns = trends.Columns(date=pick(c1, "date", suggested["date"] is None), label=pick(c2, "label"), text=pick(c3, "text", True),
                             confidence=suggested["confidence"], group=pick(c4, "group", True))
    freq = c5.segmented_control(t("trends.freq"), list(trends.FREQUENCIES), default="W", key="trends_freq",
                                format_func=lambda f: t(f"trends.freq_{f}")) or "W"
    defaults = trends.TrendSettings()
    help_of = {f.name: f.metadata.get("help") for f in trends.TrendSettings.__dataclass_fields__.values()}
    with st.expander(t("trends.settings"), icon=":material/tune:"):
        s1, s2, s3, s4 = st.columns(4)
        window = s1.number_input(t("trends.window"), 2, 365, defaults.window, help=help_of["window"], key="trends_window")
        k = s2.number_input(t("trends.k"), 0.5, 20.0, defaults.k, step=0.5, help=help_of["k"], key="trends_k")
        min_volume = s3.number_input(t("trends.min_volume"), 0, 1_000_000, defaults.min_volume,
                                     help=help_of["min_volume"], key="trends_min_volume")
        top = s4.number_input(t("trends.top_groups"), 1, 50, defaults.top_groups, help=help_of["top_groups"],
                              key="trends_top")
        m1, m2 = st.columns(2)
        method = m1.radio(t("trends.method"), ["mad", "std"], horizontal=True, help=help_of["method"],
                          format_func=lambda m: t(f"trends.method_{m}"), key="trends_method")
        labels = label_values(key, columns.label, frame) if columns.label else []
        negative = m2.selectbox(t("trends.negative_label"), [NONE] + labels, help=help_of["negative_label"],
                                key="trends_negative")
    settings = trends.TrendSettings(freq=freq, window=int(window), k=float(k), min_volume=int(min_volume),
                                    method=method, top_groups=int(top),
                                    negative_label="" if negative == NONE else negative)
    return columns, settings


def charts(report: trends.TrendReport) -> None:
    prepared = report.prepared
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("trends.rows_used"), f"{len(prepared.frame):,}", help=t("trends.rows_of", rows=f"{prepared.rows:,}"))
    c2.metric(t("trends.bad_dates"), f"{prepared.bad_dates:,}")
    c3.metric(t("trends.periods"), f"{len(report.series):,}")
    c4.metric(t("trends.alerts"), f"{len(report.spikes):,}")
    for note in prepared.notes:
        st.warning(note, icon=":material/info:")
    st.subheader(t("trends.share_title"))
    st.plotly_chart(figures.sentiment_share_figure(report.series, prepared.labels, lang(), prepared.positive,
                                                   prepared.negative), key="trends_share")
    left, right = st.columns(2) if prepared.negative else (None, st.container())
    if left is not None:  # labels that are not sentiment have no net sentiment or negative share
        with left:
            st.subheader(t("trends.net_title") if "net_sentiment" in report.series else t("trends.neg_title"))
            st.plotly_chart(figures.net_sentiment_figure(report.series, report.spikes, prepared.negative, lang()),
                            key="trends_net")
    with right:
        st.subheader(t("trends.volume_title"))
        st.plotly_chart(figures.volume_figure(report.series, report.spikes, lang()), key="trends_volume")
    if report.group_series is not None:
        st.subheader(t("trends.groups_title"))
        values = ["net_sentiment"] if "net_sentiment" in report.group_series else []
        values += ([f"share_{prepared.negative}"] if prepared.negative else []) + ["volume"]
        value = st.segmented_control(t("trends.heatmap_value"), values, default=values[0], key="trends_heat",
                                     format_func=lambda v: t(f"trends.heat_{v.split('_')[0]}")) or values[0]
        st.plotly_chart(figures.group_heatmap_figure(report.group_series, value, lang()), key="trends_heatmap")


def alerts(report: trends.TrendReport) -> None:
    st.subheader(t("trends.alerts_title"))
    table = trends.alerts_table(report, lang())
    if table.empty:
        st.success(t("trends.no_alerts"), icon=":material/check_circle:")
        return
    shown = table.assign(metric=table["metric"].map(lambda m: t(f"trends.metric_{m}")),
                         severity=table["severity"].map(lambda v: t(f"trends.severity_{v}")))
    labels = {c: t(f"trends.alert_col.{c}") for c in table.columns}
    config = {c: st.column_config.Column(label) for c, label in labels.items()}
    config.update(value=st.column_config.NumberColumn(labels["value"], format="%.3f"),
                  baseline=st.column_config.NumberColumn(labels["baseline"], format="%.3f"))
    picked = st.dataframe(shown, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                          key="trends_alerts", column_config=config)
    rows = picked.selection.rows if picked is not None else []
    from pages._monitor_link import linked_spike  # a link from an alert chooses its spike

    spike = report.spikes[rows[0] if rows else linked_spike(report.spikes)]
    if not spike.keywords:
        spike.keywords = trends.spike_keywords(report.prepared, spike)
    where = f" · {spike.group}" if spike.group else ""
    st.markdown(f"**{trends.period_label(spike.period, report.prepared.settings.freq, lang())}{where}** · "
                f"{t('trends.metric_' + spike.metric)} {spike.value:.3g} · {t('trends.usual')} {spike.baseline:.3g}")
    left, right = st.columns([2, 3])
    term = None
    with left:
        if spike.keywords:
            st.plotly_chart(figures.keywords_figure(spike.keywords, lang()), key="trends_keywords")
            term = st.selectbox(t("trends.keyword"), [NONE] + [k["term"] for k in spike.keywords], key="trends_term")
        else:
            st.caption(t("trends.no_keywords"))
    with right:
        label = report.prepared.negative if spike.metric == "negative_share" else None
        texts = trends.texts_for(report.prepared, period=spike.period, group=spike.group, label=label,
                                 term=None if term in (None, NONE) else term)
        st.caption(t("trends.texts_behind", n=f"{len(texts):,}"))
        st.dataframe(texts, hide_index=True, width="stretch", height=360)


def drill_down(report: trends.TrendReport) -> None:
    with st.expander(t("trends.drill_title"), icon=":material/search:"):
        freq = report.prepared.settings.freq
        periods = report.series.loc[report.series["volume"] > 0, "period"].tolist()[::-1]
        c1, c2, c3 = st.columns(3)
        period = c1.selectbox(t("trends.period"), periods, format_func=lambda p: trends.period_label(p, freq, lang()),
                              key="trends_drill_period")
        label = c2.selectbox(t("trends.label"), [NONE] + report.prepared.labels, key="trends_drill_label")
        groups = [NONE] + report.prepared.groups
        group = c3.selectbox(t("trends.group"), groups, key="trends_drill_group") if len(groups) > 1 else NONE
        texts = trends.texts_for(report.prepared, period=period, label=None if label == NONE else label,
                                 group=None if group == NONE else group)
        st.dataframe(texts, hide_index=True, width="stretch", height=300)


def downloads(report: trends.TrendReport) -> None:
    d1, d2 = st.columns(2)
    d1.download_button(t("trends.download_series"), data=lambda: to_csv_bytes(report.series), on_click="ignore",
                       file_name="trends.csv", mime="text/csv", icon=":material/download:", key="trends_dl_series")
    d2.download_button(t("trends.download_alerts"), data=lambda: to_csv_bytes(trends.alerts_table(report, lang())),
                       on_click="ignore", file_name="alerts.csv", mime="text/csv", icon=":material/download:",
                       key="trends_dl_alerts")


st.title(t("trends.title"))
st.write(t("trends.intro"))
try:
    frame, key = choose_frame()
    if frame is not None:
        chosen = choose_columns(frame, key)
        if chosen:
            columns, settings = chosen
            report = analyse(key, frame, tuple(vars(columns).values()), tuple(settings.to_dict().values()))
            charts(report)
            alerts(report)
            drill_down(report)
            downloads(report)
except Exception as exc:  # bad files and settings end in a message, never a traceback
    show_error(exc)
