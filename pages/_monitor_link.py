"""The Trends page's view of monitors: each monitor's scored history is a source, opened with the
monitor's own columns and settings, and a link from an alert (``?source=monitor:<id>&period=…
&group=…&metric=…``) opens with that alert chosen."""

from __future__ import annotations

import streamlit as st

from core import monitors
from core.errors import NotFoundError
from pages._shared import t

NONE = "—"  # the Trends page's "no column" choice


def sources() -> dict[str, str]:
    """Source options for the Trends page: one per monitor."""
    return {f"{monitors.SOURCE_KEY}{m.id}": t("monitors.trends_source", name=m.name) for m in monitors.list_monitors()}


def is_monitor(source: str) -> bool:
    return str(source).startswith(monitors.SOURCE_KEY)


@st.cache_resource(max_entries=4, show_spinner=False)
def _history(source: str, version: str):
    """A monitor's history as a DataFrame (kept read-only; ``version`` changes with every run)."""
    return monitors.history_frame(monitors.from_source_key(source))


def load(source: str):
    """(frame, cache key) of a monitor's history, with the Trends widgets set to the monitor's
    columns and settings; (None, None) before its first rows."""
    monitor = monitors.from_source_key(source)
    if monitor is None:
        raise NotFoundError("monitors.err.not_found", name=source, known="—")
    _seed(monitor, source)
    version = monitors.history_version(monitor)
    frame = _history(source, version)
    if frame.empty:
        st.info(t("monitors.trends_empty", name=monitor.name))
        return None, None
    return frame, f"{source}:{version}"


def _seed(monitor: monitors.Monitor, source: str) -> None:
    """Fill the Trends page's widgets from the monitor once per arrival (a new link or a new
    choice of source), so its alerts show as the monitor found them; later changes are the reader's."""
    arrival = (source, st.query_params.get("period"), st.query_params.get("group"))
    if st.session_state.get("trends_monitor_arrival") == arrival:
        return
    st.session_state["trends_monitor_arrival"] = arrival
    settings = monitor.trend_settings()
    columns = monitor.columns()
    values = {"trends_col_date": columns.date, "trends_col_label": columns.label, "trends_col_text": columns.text,
              "trends_col_group": columns.group or NONE, "trends_freq": settings.freq, "trends_window": settings.window,
              "trends_k": float(settings.k), "trends_min_volume": settings.min_volume, "trends_top": settings.top_groups,
              "trends_method": settings.method, "trends_negative": settings.negative_label or NONE}
    for name in ("date_order", "date_format", "timezone"):  # date settings, where the Trends page has them
        if hasattr(settings, name):
            values[f"trends_{name}"] = getattr(settings, name)
    st.session_state.update(values)


def linked_spike(spikes: list) -> int:
    """The index of the spike a link points at (its period, group and metric), else the newest."""
    period = st.query_params.get("period")
    group = st.query_params.get("group") or None
    metric = st.query_params.get("metric")
    for i, spike in enumerate(spikes):
        if f"{spike.period:%Y-%m-%d}" == period and spike.group == group and metric in (None, spike.metric):
            return i
    return 0
