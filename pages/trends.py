import streamlit as st

from core import dates, figures, scores, trends
from core.data import FORMATS
from core.exporting import to_csv_bytes
from core.i18n import render
from pages._shared import chart, keep_choice, lang, show_error, t, through_app

through_app(__file__)

DEMO = "sample:demo-timeline"
UPLOAD = "upload"
NONE = "—"


def source_options() -> dict[str, str]:
    """Finished scoring outputs (newest first), then the demo timeline, then an upload."""
    options = {entry.id: t("qa.trends.source_scored", name=entry.name)
               for entry in scores.list_scores(lang=lang()) if entry.status == "succeeded"}
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
def analyse(key: str, _frame, columns: tuple, settings: tuple, language: str) -> trends.TrendReport:
    cols = trends.Columns(*columns)
    return trends.analyse(_frame, cols, trends.TrendSettings(*settings), lang=language)


@st.cache_data(max_entries=8, show_spinner=False)
def label_values(key: str, column: str, _frame) -> list[str]:
    """The label column's values (once per file and column, not on every rerun)."""
    return sorted(_frame[column].astype("str").str.strip().unique().tolist())[:50]


def choose_frame():
    options = source_options()
    param = st.query_params.get("source")
    if param and param != st.session_state.get("trends_param"):  # arrived through a link (Score page)
        st.session_state["trends_param"] = st.session_state["trends_source"] = param
    elif param and st.session_state.get("trends_source") not in options:
        st.session_state["trends_source"] = param
    source = keep_choice(st.selectbox, t("trends.source"), list(options), "trends_source", format_func=options.get)
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
        st.caption(t("qa.trends.source_id", id=source))  # the id only as a detail: people know outputs by name
    from core.scoring import score_folder

    version = DEMO if source == DEMO else str((score_folder(source) / "scored.parquet").stat().st_mtime_ns)
    return load_source(source, version), f"{source}:{version}"


def named(options, name):
    """A widget's format_func with every label made now, in the UI language (AppTest formats
    options outside the script run, where the language is not known)."""
    labels = {option: name(option) for option in options}
    return lambda option: labels.get(option, str(option))


def help_text(name: str) -> str:
    """A setting's help, in the UI language (TrendSettings names the message)."""
    return t(trends.TrendSettings.__dataclass_fields__[name].metadata["help"], n=trends.MIN_BASELINE)


def sticky_select(box, label: str, options: list[str], names: dict[str, str], key: str, **kwargs) -> str:
    """A select box of codes named in the UI language, its choice kept across a language switch."""
    return keep_choice(box.selectbox, label, options, key, format_func=named(options, lambda o: names.get(o, o)),
                       **kwargs)


def choose_dates():
    """How the date column is read: decided from the data unless the analyst picks an order,
    types a format or a time zone."""
    d1, d2, d3 = st.columns([1, 1, 1])
    orders = [dates.AUTO, *dates.ORDERS]
    order = sticky_select(d1, t("trends.date_order"), orders, {o: t(f"trends.order.{o}") for o in orders},
                          "trends_date_order", help=help_text("date_order"))
    date_format = d2.text_input(t("trends.date_format"), placeholder="%d/%m/%Y %H:%M", help=help_text("date_format"),
                                key="trends_date_format").strip()
    zone = sticky_select(d3, t("trends.timezone"), ["", *dates.timezones()], {"": t("trends.timezone_own")},
                         "trends_timezone", help=help_text("timezone"))
    return order, date_format, zone


def choose_columns(frame, key: str):
    suggested = trends.suggest_columns(frame)
    names = [str(c) for c in frame.columns]

    def pick(col, role: str, optional: bool = False):
        choices = ([NONE] if optional else []) + names
        value = suggested.get(role)
        index = choices.index(value) if value in choices else 0
        chosen = col.selectbox(t(f"trends.col_{role}"), choices, index=index, key=f"trends_col_{role}")
        return None if chosen == NONE else chosen

    c1, c2, c3, c4, c5 = st.columns([1, 1, 1, 1, 1.2])
    columns = trends.Columns(date=pick(c1, "date", suggested["date"] is None), label=pick(c2, "label"),
                             text=pick(c3, "text", True), confidence=suggested["confidence"],
                             group=pick(c4, "group", True))
    freq = keep_choice(c5.segmented_control, t("trends.freq"), list(trends.FREQUENCIES), "trends_freq", default="W",
                       format_func=named(trends.FREQUENCIES, lambda f: t(f"trends.freq_{f}"))) or "W"
    order, date_format, zone = choose_dates()
    summary = st.container()  # how the dates were read, filled once they are
    defaults = trends.TrendSettings()
    with st.expander(t("trends.settings"), icon=":material/tune:"):
        s1, s2, s3, s4 = st.columns(4)
        window = s1.number_input(t("trends.window"), trends.MIN_BASELINE, 365, defaults.window,
                                 help=help_text("window"), key="trends_window")
        k = s2.number_input(t("trends.k"), 0.5, 20.0, defaults.k, step=0.5, help=help_text("k"), key="trends_k")
        min_volume = s3.number_input(t("trends.min_volume"), 0, 1_000_000, defaults.min_volume,
                                     help=help_text("min_volume"), key="trends_min_volume")
        top = s4.number_input(t("trends.top_groups"), 1, 50, defaults.top_groups, help=help_text("top_groups"),
                              key="trends_top")
        m1, m2 = st.columns(2)
        method = keep_choice(m1.radio, t("trends.method"), ["mad", "std"], "trends_method", horizontal=True,
                             help=help_text("method"), format_func=named(["mad", "std"], lambda m: t(f"trends.method_{m}")))
        labels = label_values(key, columns.label, frame) if columns.label else []
        negative = m2.selectbox(t("trends.negative_label"), [NONE] + labels, help=help_text("negative_label"),
                                key="trends_negative")
    settings = trends.TrendSettings(freq=freq, window=int(window), k=float(k), min_volume=int(min_volume),
                                    method=method, top_groups=int(top),
                                    negative_label="" if negative == NONE else negative,
                                    date_order=order, date_format=date_format, timezone=zone)
    return columns, settings, summary


def charts(report: trends.TrendReport) -> None:
    prepared = report.prepared
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("trends.rows_used"), f"{len(prepared.frame):,}", help=t("trends.rows_of", rows=f"{prepared.rows:,}"))
    doubt = prepared.dates.contradicting_rows  # an inconsistent column: the unreadable count alone would say 0
    c2.metric(t("trends.bad_dates"), f"{prepared.bad_dates:,}", help=t("trends.bad_dates_help"),
              delta=t("trends.dates_contradicting", n=f"{doubt:,}") if doubt else None, delta_color="off",
              delta_arrow="off")
    c3.metric(t("trends.periods"), f"{len(report.series):,}")
    c4.metric(t("trends.alerts"), f"{len(report.spikes):,}")
    for note in prepared.notes:
        st.warning(render(note, lang()), icon=":material/info:")
    st.subheader(t("trends.share_title"))
    chart(figures.sentiment_share_figure(report.series, prepared.labels, lang(), prepared.positive, prepared.negative),
          "trends_share")
    left, right = st.columns(2) if prepared.negative else (None, st.container())
    if left is not None:  # labels that are not sentiment have no net sentiment or negative share
        with left:
            st.subheader(t("trends.net_title") if "net_sentiment" in report.series else t("trends.neg_title"))
            chart(figures.net_sentiment_figure(report.series, report.spikes, prepared.negative, lang()), "trends_net")
    with right:
        st.subheader(t("trends.volume_title"))
        chart(figures.volume_figure(report.series, report.spikes, lang()), "trends_volume")
    if report.group_series is not None:
        st.subheader(t("trends.groups_title"))
        values = ["net_sentiment"] if "net_sentiment" in report.group_series else []
        values += ([f"share_{prepared.negative}"] if prepared.negative else []) + ["volume"]
        value = keep_choice(st.segmented_control, t("trends.heatmap_value"), values, "trends_heat", default=values[0],
                            format_func=named(values, lambda v: t(f"trends.heat_{v.split('_')[0]}"))) or values[0]
        chart(figures.group_heatmap_figure(report.group_series, value, lang(), other=trends.OTHER_GROUP),
              "trends_heatmap")


def alerts(report: trends.TrendReport) -> None:
    st.subheader(t("trends.alerts_title"))
    st.caption(t("trends.baseline_rule", n=trends.MIN_BASELINE, window=report.prepared.settings.window))
    table = trends.alerts_table(report, lang())
    if table.empty:
        st.success(render(trends.no_alerts_message(report), lang()), icon=":material/check_circle:")
        return
    config = {c: st.column_config.Column(t(f"trends.alert_col.{c}")) for c in table.columns}
    picked = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                          key="trends_alerts", column_config=config)
    rows = picked.selection.rows if picked is not None else []
    from pages._monitor_link import linked_spike  # a link from an alert chooses its spike

    spike = report.spikes[rows[0] if rows else linked_spike(report.spikes)]
    if not spike.keywords:
        spike.keywords = trends.spike_keywords(report.prepared, spike)
    where = f" · {trends.group_name(spike.group, lang())}" if spike.group else ""
    st.markdown(f"**{trends.period_label(spike.period, report.prepared.settings.freq, lang())}{where}** · "
                f"{t('trends.metric_' + spike.metric)} {trends.format_value(spike.metric, spike.value)} · "
                f"{t('trends.usual')} {trends.format_value(spike.metric, spike.baseline)}")
    left, right = st.columns([2, 3])
    term = None
    with left:
        if spike.keywords:
            chart(figures.keywords_figure(spike.keywords, lang()), "trends_keywords")
            term = st.selectbox(t("trends.keyword"), [NONE] + [k["term"] for k in spike.keywords], key="trends_term")
        else:
            st.caption(t("trends.no_keywords"))
    with right:
        label = report.prepared.negative if spike.metric == "negative_share" else None
        texts = trends.texts_for(report.prepared, period=spike.period, group=spike.group, label=label,
                                 term=None if term in (None, NONE) else term)
        st.caption(t("trends.texts_behind", n=f"{len(texts):,}"))
        st.dataframe(trends.texts_table(texts, lang()), hide_index=True, width="stretch", height=360)


def drill_down(report: trends.TrendReport) -> None:
    with st.expander(t("trends.drill_title"), icon=":material/search:"):
        freq = report.prepared.settings.freq
        periods = report.series.loc[report.series["volume"] > 0, "period"].tolist()[::-1]
        c1, c2, c3 = st.columns(3)
        period = c1.selectbox(t("trends.period"), periods, key="trends_drill_period",
                              format_func=named(periods, lambda p: trends.period_label(p, freq, lang())))
        label = c2.selectbox(t("trends.label"), [NONE] + report.prepared.labels, key="trends_drill_label")
        groups = [NONE] + report.prepared.groups
        group = c3.selectbox(t("trends.group"), groups, key="trends_drill_group",
                             format_func=named(groups, lambda g: g if g == NONE else trends.group_name(g, lang()))) \
            if len(groups) > 1 else NONE
        texts = trends.texts_for(report.prepared, period=period, label=None if label == NONE else label,
                                 group=None if group == NONE else group)
        st.dataframe(trends.texts_table(texts, lang()), hide_index=True, width="stretch", height=300)


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
        columns, settings, summary = choose_columns(frame, key)
        report = analyse(key, frame, tuple(vars(columns).values()), tuple(settings.to_dict().values()), lang())
        summary.caption(render(trends.date_summary(report), lang()))
        charts(report)
        alerts(report)
        drill_down(report)
        downloads(report)
except Exception as exc:  # bad files and settings end in a message, never a traceback
    show_error(exc)
