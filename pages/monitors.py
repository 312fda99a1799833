import streamlit as st

from core import alerting, monitor_alerts, monitors
from core.i18n import format_count
from core.monitor_schedule import scheduler_alive
from core.workspace import Registry
from pages._monitor_form import monitor_form
from pages._shared import lang, render, show_error, t, through_app

through_app(__file__)


def overview(rows: list[dict]) -> None:
    alive = scheduler_alive()
    st.caption(t("monitors.scheduler_on") if alive else t("monitors.scheduler_off"))
    if not rows:
        return
    st.dataframe(monitors.overview_table(rows, lang(), alive), hide_index=True, width="stretch")


@st.fragment(run_every=2)
def live(monitor: monitors.Monitor) -> None:
    """"Run now" and its progress; when a run ends, the whole page reruns to show what it found."""
    registry = Registry()
    job = monitors.latest_job(monitor, registry)
    progress = monitors.progress_of(monitor, registry)
    busy = monitors.is_running(monitor, registry) or bool(job and job["status"] in ("queued", "running"))
    if st.button(t("monitors.run_now"), type="primary", key=f"mon_run_{monitor.id}", disabled=busy,
                 icon=":material/play_arrow:"):
        monitors.submit_run(monitor, registry, st.session_state.get("user"))
        st.rerun(scope="fragment")
    if job and job["status"] == "queued":
        st.info(t("monitors.queued"))
    if progress.get("status") == "running":
        total = progress.get("files_total") or 0
        share = (progress.get("files_done") or 0) / total if total else 0.0
        st.progress(min(share, 1.0), text=t("monitors.progress", stage=t(f"monitors.stage.{progress.get('stage') or 'reading'}"),
                                              rows=format_count(progress.get("rows_done"), lang())))
    elif job and job["status"] == "failed" and job.get("error"):
        st.error(t("monitors.run_failed", error=job["error"]))
    finished = progress.get("updated_at") if progress.get("status") != "running" else None
    if st.session_state.setdefault(f"mon_seen_{monitor.id}", finished) != finished:
        st.session_state[f"mon_seen_{monitor.id}"] = finished
        st.rerun()


def last_run(monitor: monitors.Monitor) -> None:
    state = monitors.state_of(monitor)
    if state.get("last_error"):
        st.error(t("monitors.last_error", error=render(state["last_error"])), icon=":material/error:")
    summary = state.get("last_summary") or {}
    if summary:
        st.caption(t("monitors.last_summary", files=format_count(summary.get("files_read"), lang()),
                     rows=format_count(summary.get("rows_scored"), lang()),
                     history=format_count(summary.get("history_rows"), lang()),
                     alerts=format_count(summary.get("new_alerts"), lang())))
    for skipped in summary.get("skipped", []):
        st.warning(render(skipped["reason"]), icon=":material/file_present:")
    for note in summary.get("notes", []):
        st.warning(render(note), icon=":material/info:")


def channels(monitor: monitors.Monitor) -> None:
    st.subheader(t("monitors.channels"))
    if not monitor.channels:
        st.caption(t("monitors.no_channels"))
    for channel in monitor.channels:
        c1, c2 = st.columns([3, 1])
        target = render(alerting.channel_summary(channel)["target"])
        c1.markdown(f"**{channel.name}** · {t('monitors.kind.' + channel.kind)} · `{target}`")
        if c2.button(t("monitors.test_alert"), key=f"mon_test_{monitor.id}_{channel.name}", icon=":material/send:"):
            alert = monitors.test_alert_for(monitor)
            with st.spinner(t("monitors.sending")):
                result = alerting.deliver(channel, alert, monitor.lang, attempts=1)
            (st.success if result.ok else st.error)(t("monitors.test_sent" if result.ok else "monitors.test_failed",
                                                      channel=channel.name, answer=render(result.answer)))


def history(monitor: monitors.Monitor) -> None:
    st.subheader(t("monitors.history"))
    alerts = monitor_alerts.alerts_of(monitor)
    if not alerts:
        st.caption(t("monitors.no_alerts"))
        return
    st.markdown(t("monitors.latest", title=alerting.message(alerting.Alert.from_dict(alerts[0]), lang())[0]))
    table = monitor_alerts.alert_table(alerts, lang())
    link = st.column_config.LinkColumn(table.columns[-1], display_text=t("monitors.open_trends"))
    st.dataframe(table, hide_index=True, width="stretch", column_config={table.columns[-1]: link})
    for problem in monitor_alerts.problems(alerts):
        c1, c2 = st.columns([4, 1])
        c1.warning(t(f"monitors.problem.{problem['status']}", channel=problem["channel"],
                     period=alerting.period_name(alerting.Alert.from_dict(problem["alert"]), lang()),
                     answer=render(problem["answer"]) if problem["answer"] else "—"))
        if c2.button(t("monitors.send_again"), key=f"mon_again_{problem['alert_id']}_{problem['channel']}"):
            monitor_alerts.send_again(problem["alert_id"], problem["channel"])
            st.rerun()


def removal(monitor: monitors.Monitor) -> None:
    sure = st.checkbox(t("monitors.remove_confirm", name=monitor.name), key=f"mon_sure_{monitor.id}")
    if st.button(t("monitors.remove"), disabled=not sure, key=f"mon_remove_{monitor.id}", icon=":material/delete:"):
        monitors.remove_monitor(monitor.id)
        st.session_state.pop("mon_open", None)
        st.rerun()


st.title(t("monitors.title"))
st.write(t("monitors.intro"))
try:
    rows = monitors.overview()
    overview(rows)
    if saved := st.session_state.pop("mon_saved", None):
        st.success(t("monitors.saved", name=saved), icon=":material/check_circle:")
    with st.expander(t("monitors.new"), expanded=not rows, icon=":material/add_alert:"):
        monitor_form(None, "mon_new")
    if rows:
        names = [r["name"] for r in rows]
        if st.session_state.get("mon_wanted") in names:  # a monitor just saved opens
            st.session_state["mon_open"] = st.session_state.pop("mon_wanted")
        chosen = st.selectbox(t("monitors.open"), names, key="mon_open")
        monitor = monitors.get_monitor(chosen)
        st.caption(t("monitors.about", model=monitor.run_id, source=monitor.source.path,
                     text=monitor.text_col, date=monitor.date_col,
                     freq=f"{t('trends.freq')}: {t('trends.freq_' + monitor.trend_settings().freq)}"))
        live(monitor)
        last_run(monitor)
        history(monitor)
        channels(monitor)
        with st.expander(t("monitors.edit"), icon=":material/edit:"):
            monitor_form(monitor, f"mon_edit_{monitor.id}")
            removal(monitor)
except Exception as exc:  # a broken source or registry ends in a message, never a traceback
    show_error(exc)
