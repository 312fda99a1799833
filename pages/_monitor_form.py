"""Creating and editing a monitor: the Trends page's column and settings widgets, plus the
source, the schedule and the alert channels."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import alerting, monitors, trends
from core.alerting import CHANNEL_KINDS, Channel
from core.errors import ConfigError
from core.i18n import LANGUAGES
from core.monitor_files import SOURCE_KINDS, Source
from core.runs import list_runs
from pages._shared import render, show_error, t

NONE = "—"


@st.cache_data(ttl=30, max_entries=8, show_spinner=False)
def newest_rows(kind: str, path: str) -> pd.DataFrame | None:
    """The first rows of the source's newest file (kept 30 s: new exports keep landing)."""
    return monitors.newest_rows(Source(kind, path), 200)


def setting_help(name: str) -> str:
    """A trend setting's help in the UI language (its metadata holds the text or a message id)."""
    return t(trends.TrendSettings.__dataclass_fields__[name].metadata.get("help", ""),
             n=getattr(trends, "MIN_BASELINE", 4))


def field_help(name: str) -> str:
    return t(monitors.Monitor.__dataclass_fields__[name].metadata["help"])


def choose_source(current: monitors.Monitor | None, key: str) -> Source:
    c1, c2 = st.columns([1, 3])
    kinds = list(SOURCE_KINDS)
    kind = c1.radio(t("monitors.f.source_kind"), kinds, key=f"{key}_kind", horizontal=True,
                    index=kinds.index(current.source.kind) if current else 0,
                    format_func=lambda k: t(f"monitors.source.{k}"))
    path = c2.text_input(t("monitors.f.source_path"), current.source.path if current else "", key=f"{key}_path",
                         placeholder=t(f"monitors.source_example.{kind}"), help=field_help("source"))
    return Source(kind, path.strip())


def choose_columns(source: Source, current: monitors.Monitor | None, key: str) -> tuple[str, str, str]:
    """Select boxes over the newest file's columns (pre-selected as on the Trends page), or
    plain fields while the source holds no file yet."""
    frame = None
    if source.path:
        try:
            frame = newest_rows(source.kind, source.path)
        except Exception as exc:  # a missing folder or a damaged file: said, and the fields stay usable
            show_error(exc)
    c1, c2, c3 = st.columns(3)
    if frame is None:
        if source.path:
            st.caption(t("monitors.f.no_files"))
        return (c1.text_input(t("trends.col_text"), current.text_col if current else "", key=f"{key}_text"),
                c2.text_input(t("trends.col_date"), current.date_col if current else "", key=f"{key}_date"),
                c3.text_input(t("trends.col_group"), current.group_col if current else "", key=f"{key}_group"))
    names = [str(c) for c in frame.columns]
    suggested = trends.suggest_columns(frame)

    def pick(col, role: str, optional: bool = False) -> str:
        choices = ([NONE] if optional else []) + names
        value = getattr(current, f"{role}_col", None) or suggested.get(role)
        chosen = col.selectbox(t(f"trends.col_{role}"), choices, key=f"{key}_col_{role}",
                               index=choices.index(value) if value in choices else 0, help=field_help(f"{role}_col"))
        return "" if chosen == NONE else chosen

    return pick(c1, "text"), pick(c2, "date"), pick(c3, "group", optional=True)


def choose_settings(current: monitors.Monitor | None, run_id: str, key: str) -> dict:
    """The Trends page's settings: period, baseline window, k, minimum volume, groups, method
    and the negative label (from the model's own labels)."""
    base = current.trend_settings() if current else trends.TrendSettings()
    freqs = list(trends.FREQUENCIES)
    freq = st.segmented_control(t("trends.freq"), freqs, default=base.freq, key=f"{key}_freq",
                                format_func=lambda f: t(f"trends.freq_{f}")) or base.freq
    with st.expander(t("trends.settings"), icon=":material/tune:"):
        s1, s2, s3, s4 = st.columns(4)
        window = s1.number_input(t("trends.window"), 2, 365, base.window, help=setting_help("window"),
                                 key=f"{key}_window")
        k = s2.number_input(t("trends.k"), 0.5, 20.0, float(base.k), step=0.5, help=setting_help("k"), key=f"{key}_k")
        volume = s3.number_input(t("trends.min_volume"), 0, 1_000_000, base.min_volume,
                                 help=setting_help("min_volume"), key=f"{key}_min_volume")
        top = s4.number_input(t("trends.top_groups"), 1, 50, base.top_groups, help=setting_help("top_groups"),
                              key=f"{key}_top")
        m1, m2 = st.columns(2)
        methods = ["mad", "std"]
        method = m1.radio(t("trends.method"), methods, index=methods.index(base.method), horizontal=True,
                          format_func=lambda m: t(f"trends.method_{m}"), help=setting_help("method"),
                          key=f"{key}_method")
        labels = [NONE] + monitors.model_labels(run_id)
        negative = m2.selectbox(t("trends.negative_label"), labels, key=f"{key}_negative",
                                index=labels.index(base.negative_label) if base.negative_label in labels else 0,
                                help=setting_help("negative_label"))
    return {**base.to_dict(), "freq": freq, "window": int(window), "k": float(k), "min_volume": int(volume),
            "top_groups": int(top), "method": method, "negative_label": "" if negative == NONE else negative}


def choose_schedule(current: monitors.Monitor | None, key: str) -> dict:
    d = current or monitors.Monitor(name="", run_id="", source=Source("folder", ""), text_col="", date_col="")
    c1, c2, c3, c4 = st.columns(4)
    languages = list(LANGUAGES)
    return {"interval_minutes": int(c1.number_input(t("monitors.f.interval"), 1, 10_080, d.interval_minutes,
                                                    help=field_help("interval_minutes"), key=f"{key}_interval")),
            "settle_seconds": int(c2.number_input(t("monitors.f.settle"), 0, 86_400, d.settle_seconds,
                                                  help=field_help("settle_seconds"), key=f"{key}_settle")),
            "lookback_periods": int(c3.number_input(t("monitors.f.lookback"), 1, 365, d.lookback_periods,
                                                    help=field_help("lookback_periods"), key=f"{key}_lookback")),
            "lang": c4.selectbox(t("monitors.f.alert_lang"), languages, index=languages.index(d.lang),
                                 format_func=LANGUAGES.get, help=field_help("lang"), key=f"{key}_lang")}


def _add_channel(key: str) -> None:
    """Button callback: check the typed channel, add it to the form's list, clear the fields."""
    state = st.session_state
    channel = Channel(state[f"{key}_ch_kind"], state[f"{key}_ch_secret"].strip(), state[f"{key}_ch_name"].strip(),
                      state[f"{key}_ch_sign"].strip())
    try:
        channel.validate()
        if channel.name in [c["name"] for c in state[f"{key}_channels"]]:
            raise ConfigError("monitors.err.channel_names", names=channel.name)
    except ConfigError as exc:
        state[f"{key}_ch_error"] = exc.message.to_dict() if exc.message else str(exc)
        return
    state[f"{key}_channels"] = [*state[f"{key}_channels"], channel.to_dict()]
    state[f"{key}_ch_name"] = state[f"{key}_ch_secret"] = state[f"{key}_ch_sign"] = ""


def choose_channels(current: monitors.Monitor | None, key: str) -> list[Channel]:
    """The channels so far (each with its address masked) and fields to add one: a kind and the
    *names* of its secrets, never the secrets."""
    st.markdown(f"**{t('monitors.f.channels')}**")
    st.caption(t("monitors.f.channels_help"))
    listed = st.session_state.setdefault(f"{key}_channels", [c.to_dict() for c in (current.channels if current else [])])
    for i, values in enumerate(listed):
        channel = Channel.from_dict(values)
        c1, c2 = st.columns([5, 1])
        target = render(alerting.channel_summary(channel)["target"])
        c1.markdown(f"**{channel.name}** · {t('monitors.kind.' + channel.kind)} · `{channel.secret}` → `{target}`")
        if c2.button(t("monitors.f.drop_channel"), key=f"{key}_drop_{i}"):
            st.session_state[f"{key}_channels"] = listed[:i] + listed[i + 1:]
            st.rerun()
    c1, c2, c3, c4 = st.columns(4)
    c1.selectbox(t("monitors.f.channel_kind"), list(CHANNEL_KINDS), key=f"{key}_ch_kind",
                 format_func=lambda k: t(f"monitors.kind.{k}"))
    c2.text_input(t("monitors.f.channel_secret"), key=f"{key}_ch_secret", placeholder="TEAM_DINGTALK")
    c3.text_input(t("monitors.f.channel_sign_secret"), key=f"{key}_ch_sign")
    c4.text_input(t("monitors.f.channel_name"), key=f"{key}_ch_name")
    st.button(t("monitors.f.add_channel"), key=f"{key}_ch_add", on_click=_add_channel, args=(key,),
              icon=":material/add:")
    if error := st.session_state.pop(f"{key}_ch_error", None):
        st.error(render(error))
    return [Channel.from_dict(values) for values in st.session_state[f"{key}_channels"]]


def monitor_form(current: monitors.Monitor | None, key: str) -> None:
    """The whole form; saving adds (or updates) the monitor and reruns the page."""
    runs = [r for r in list_runs() if r["status"] == "succeeded"]
    if not runs:
        st.info(t("monitors.no_models"))
        return
    name = st.text_input(t("monitors.f.name"), current.name if current else "", key=f"{key}_name")
    ids = [r["id"] for r in runs]
    labels = {r["id"]: f"{r['id']} · {r['dataset']} · {t('train.method.' + str(r['method']))}" for r in runs}
    run_id = st.selectbox(t("monitors.f.model"), ids, format_func=labels.get, key=f"{key}_model",
                          index=ids.index(current.run_id) if current and current.run_id in ids else 0,
                          help=field_help("run_id"))
    source = choose_source(current, key)
    text_col, date_col, group_col = choose_columns(source, current, key)
    settings = choose_settings(current, run_id, key)
    schedule = choose_schedule(current, key)
    channels = choose_channels(current, key)
    if st.button(t("monitors.f.save" if current else "monitors.f.create"), type="primary", key=f"{key}_save"):
        monitor = monitors.Monitor(name=name, run_id=run_id, source=source, text_col=text_col, date_col=date_col,
                                   group_col=group_col, settings=settings, channels=channels, **schedule)
        try:
            if current:
                saved = monitors.update_monitor(current.id, monitor)
            else:
                saved = monitors.add_monitor(monitor, created_by=st.session_state.get("user"))
        except Exception as exc:  # a wrong setting ends in its message, the form keeps what was typed
            show_error(exc)
            return
        if current is None:  # an empty form for the next new monitor
            for name in [k for k in st.session_state if str(k).startswith(f"{key}_")]:
                del st.session_state[name]
        st.session_state["mon_wanted"] = st.session_state["mon_saved"] = saved.name  # opened after the rerun
        st.rerun()
