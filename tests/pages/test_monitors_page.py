"""The Monitors page in AppTest: create, Run now with its job, the alert history with links into
Trends (period and group chosen there), delivery problems, Chinese."""

import pytest
from streamlit.testing.v1 import AppTest

from core import i18n, monitor_alerts, monitors
from core.alerting import Channel
from core.monitor_files import Source
from core.trends import TrendSettings
from core.workspace import Registry
from tests.core.test_alerting import secrets_file  # noqa: F401 (a fixture the hook needs)
from tests.core.test_jobs import wait_done
from tests.core.test_monitors import SETTINGS, hook, posts  # noqa: F401 (hook: a fixture)
from tests.pages.conftest import APP, open_page


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    posts(channel="weibo").to_csv(folder / "posts.csv", index=False)
    return folder


def table(app, column: str):
    """The page's table that has the header ``column`` ("Next run": the overview; "Trends view": the alerts)."""
    return next(d.value for d in app.dataframe if column in d.value.columns)


def saved_monitor(run_id, inbox, channels):
    return monitors.add_monitor(monitors.Monitor(
        name="phones", run_id=run_id, source=Source("folder", str(inbox)), text_col="comment", date_col="posted",
        group_col="channel", settings=dict(SETTINGS), channels=channels, settle_seconds=0))


def test_without_a_model_the_page_says_what_to_do_first(app):
    open_page(app, "pages/monitors.py")
    assert app.title[0].value == "Monitors"
    assert any("No finished runs yet" in i.value for i in app.info)
    assert any("No scheduler is running" in c.value for c in app.caption)


def test_create_a_monitor_with_the_trends_widgets(app, baseline_run, inbox):
    open_page(app, "pages/monitors.py")
    app.text_input(key="mon_new_name").input("phones")
    app.text_input(key="mon_new_path").input(str(inbox)).run()
    assert not app.exception
    assert app.selectbox(key="mon_new_col_text").value == "comment"  # proposed from the newest file
    assert app.selectbox(key="mon_new_col_date").value == "posted"
    app.selectbox(key="mon_new_col_group").set_value("channel")
    app.segmented_control(key="mon_new_freq").set_value("D")
    app.number_input(key="mon_new_min_volume").set_value(10)
    app.text_input(key="mon_new_ch_secret").input("https://hooks.slack.com/services/T0/B0/pasted")
    app.button(key="mon_new_ch_add").click().run()
    assert any("is not a secret's name" in e.value for e in app.error) and "pasted" not in app.error[0].value
    app.selectbox(key="mon_new_ch_kind").set_value("webhook")
    app.text_input(key="mon_new_ch_secret").input("OPS_HOOK")
    app.text_input(key="mon_new_ch_name").input("ops")
    app.button(key="mon_new_ch_add").click().run()
    assert not app.error and app.text_input(key="mon_new_ch_secret").value == ""
    assert any("**ops**" in m.value and "`OPS_HOOK`" in m.value for m in app.markdown)
    app.button(key="mon_new_save").click().run()
    assert not app.exception and any("Monitor phones saved" in s.value for s in app.success)
    saved = monitors.get_monitor("phones")
    assert (saved.text_col, saved.date_col, saved.group_col) == ("comment", "posted", "channel")
    assert saved.trend_settings().freq == "D" and saved.trend_settings().min_volume == 10
    assert [(c.kind, c.secret, c.name) for c in saved.channels] == [("webhook", "OPS_HOOK", "ops")]
    assert app.text_input(key="mon_new_name").value == ""  # the new-monitor form is empty again
    assert app.selectbox(key="mon_open").value == "phones"
    assert table(app, "Next run").iloc[0]["Status"] == "not run yet"


def test_a_wrong_path_is_said_on_the_form(app, baseline_run, tmp_path):
    open_page(app, "pages/monitors.py")
    app.text_input(key="mon_new_name").input("x")
    app.text_input(key="mon_new_path").input(str(tmp_path / "nowhere")).run()
    assert any("does not exist" in e.value for e in app.error)
    app.button(key="mon_new_save").click().run()
    assert not app.exception and monitors.list_monitors() == []


def test_run_now_then_the_alert_history_links_to_trends(app, baseline_run, inbox, hook):  # noqa: F811 (a fixture)
    monitor = saved_monitor(baseline_run, inbox, [Channel("webhook", "OPS_HOOK", name="ops")])
    open_page(app, "pages/monitors.py")
    assert any("No alerts yet" in c.value for c in app.caption)
    app.button(key=f"mon_run_{monitor.id}").click().run()
    job = monitors.latest_job(monitor)
    assert job is not None and wait_done(job["id"]) == "succeeded"
    app.run()
    assert not app.exception
    overview = table(app, "Next run").iloc[0]
    assert overview["Status"] == "succeeded" and int(overview["Alerts"]) >= 1 and overview["Delivery problems"] == "0"
    history = table(app, "Trends view")
    assert len(history) == len(hook.requests) >= 1
    assert set(history["Deliveries"]) == {"ops: sent"}
    link = history["Trends view"].iloc[-1]
    assert link.startswith(f"trends?source=monitor%3A{monitor.id}&period=")
    assert any("rows scored" in c.value for c in app.caption)

    # the link opens Trends on the monitor's history, with that alert's period and group chosen
    alert = monitor_alerts.alerts_of(monitor)[-1]
    trends_app = AppTest.from_file(APP, default_timeout=120)
    for name, value in (("source", f"monitor:{monitor.id}"), ("period", alert["period"]),
                        ("metric", alert["metric"])):
        trends_app.query_params[name] = value
    if alert["group"]:
        trends_app.query_params["group"] = alert["group"]
    open_page(trends_app, "pages/trends.py")
    assert trends_app.selectbox(key="trends_source_en").value == f"monitor:{monitor.id}"
    assert trends_app.selectbox(key="trends_col_date").value == "date"
    assert trends_app.selectbox(key="trends_col_group").value == "group"
    shown = " ".join(m.value for m in trends_app.markdown)
    assert alert["period"] in shown and (alert["group"] or "") in shown


def test_delivery_problems_and_send_again(app, baseline_run, inbox, hook):  # noqa: F811 (a fixture)
    monitor = saved_monitor(baseline_run, inbox, [Channel("webhook", "DEAD_HOOK", name="dead")])
    monitors.run_monitor(monitor.id, sleep=lambda s: None)
    open_page(app, "pages/monitors.py")
    problem = next(w.value for w in app.warning if "did not take the alert" in w.value)
    assert "refused" in problem.lower()
    button = next(b for b in app.button if b.key.startswith("mon_again_"))
    button.click().run()
    assert not app.exception
    statuses = [d["status"] for a in monitor_alerts.alerts_of(monitor) for d in a["deliveries"]]
    assert "failed" not in statuses and "pending" in statuses
    app.button(key=f"mon_test_{monitor.id}_dead").click().run()
    assert any("did not reach dead" in e.value for e in app.error)


def test_the_page_in_chinese(app, baseline_run, inbox, hook):  # noqa: F811 (a fixture)
    monitor = saved_monitor(baseline_run, inbox, [Channel("webhook", "OPS_HOOK", name="ops")])
    monitors.run_monitor(monitor.id)
    app.query_params["lang"] = "zh"
    open_page(app, "pages/monitors.py")
    assert app.title[0].value == "舆情监控"
    history = table(app, "趋势视图")
    assert set(history["投递"]) == {"ops: 已发送"} and set(history["指标"]) <= {"负面占比", "声量"}
    assert set(history["分组"]) <= {"全部", "weibo"} and history["平时"].str.endswith("%").any()
    assert history["趋势视图"].str.contains("lang=zh").all()  # the reader's language, not the alert's
    assert any("没有调度程序在运行" in c.value for c in app.caption)
    assert Registry().jobs() == []  # nothing runs inside the page
    # no English word of the UI's own strings (the monitor's names, paths and texts are data)
    from tests.pages.test_zh_walk import latin_words, offences, visible_texts

    data = " ".join([monitor.name, str(inbox), "comment posted channel weibo ops OPS_HOOK easy negative positive",
                     baseline_run, " ".join(posts(channel="weibo")["comment"])])
    # the trend settings' help is English where core/trends.py has no message ids for it yet
    untranslated = {f.metadata.get("help") for f in TrendSettings.__dataclass_fields__.values()
                    if not i18n.has(f.metadata.get("help", ""))}
    shown = [(where, text) for where, text in visible_texts(app, "monitors in Chinese")
             if not text.startswith("trends?") and text not in untranslated]  # the links' own query keys
    found = offences(shown, frozenset(latin_words(data)))
    assert not found, "\n".join(found)
