"""Monitors: new-file detection, the grown-file case, the lock, exactly-once alerts across crashes,
failing channels, bad input and the CLI. Alerts go to a local HTTP server on 127.0.0.1 only."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import monitor_alerts, monitors
from core.alerting import Channel
from core.cli import main
from core.errors import ConfigError, DataError
from core.monitor_files import Source
from core.workspace import Registry
from tests.conftest import FILLER, NEGATIVE, POSITIVE
from tests.core.test_alerting import Receiver, refused_url, secrets_file  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"freq": "D", "window": 8, "k": 3.5, "min_volume": 10}


def posts(days=40, per_day=20, start="2026-10-01", surge_days=3, surge=45, seed=0, channel="web") -> pd.DataFrame:
    """Daily posts the easy model reads right (one sentiment word among filler); the last
    ``surge_days`` days get ``surge`` extra posts each that call the product boring."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in range(days):
        date = pd.Timestamp(start) + pd.Timedelta(days=day)
        extra = surge if day >= days - surge_days else 0
        for i in range(per_day + extra):
            negative = i >= per_day or rng.random() < 0.2
            word = "boring" if i >= per_day else rng.choice(NEGATIVE if negative else POSITIVE)
            words = list(rng.choice(FILLER, 4)) + [word]
            rows.append((f"{date:%Y-%m-%d} {8 + i % 12:02d}:{i % 60:02d}", " ".join(words) + f" {i}", channel))
    return pd.DataFrame(rows, columns=["posted", "comment", "channel"])


def make_monitor(run_id, folder, name="phones", channels=(), **changes):
    values = dict(name=name, run_id=run_id, source=Source("folder", str(folder)), text_col="comment",
                  date_col="posted", settings=dict(SETTINGS), channels=list(channels), settle_seconds=0)
    values.update(changes)
    return monitors.add_monitor(monitors.Monitor(**values))


def old(path: Path) -> Path:
    """Mark a file as written a while ago (settled)."""
    stamp = time.time() - 3600
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture
def hook(secrets_file):  # noqa: F811
    server = Receiver()
    secrets_file(OPS_HOOK=server.url + "/alerts", DEAD_HOOK=refused_url())
    yield server
    server.close()


def delivered(server):
    return [json.loads(r["body"]) for r in server.requests]


# Files -----------------------------------------------------------------------------------------
def test_new_unchanged_and_another_new_file(baseline_run, inbox):
    data = posts(days=20, surge_days=0)
    data.iloc[:200].to_csv(inbox / "a.csv", index=False)
    data.iloc[200:].to_csv(inbox / "b.csv", index=False)
    make_monitor(baseline_run, inbox)
    first = monitors.run_monitor("phones")
    assert (first.files_read, first.rows_scored, first.history_rows) == (2, len(data), len(data))
    again = monitors.run_monitor("phones")
    assert (again.files_read, again.files_unchanged, again.rows_scored) == (0, 2, 0)
    posts(days=2, start="2026-12-01").to_csv(inbox / "c.csv", index=False)
    third = monitors.run_monitor("phones")
    assert (third.files_read, third.files_unchanged) == (1, 2) and third.history_rows == len(data) + third.rows_scored
    history = monitors.history_frame(monitors.get_monitor("phones"))
    assert set(history["label"]) == {"negative", "positive"} and history["text"].str.len().min() > 0
    assert not history.duplicated(["file", "row"]).any()


def test_grown_file_is_scored_from_where_it_stopped(baseline_run, tmp_path):
    log = tmp_path / "stream.csv"
    data = posts(days=10, surge_days=0)
    data.iloc[:100].to_csv(log, index=False)
    make_monitor(baseline_run, tmp_path, source=Source("file", str(log)))
    assert monitors.run_monitor("phones").rows_scored == 100
    with open(log, "a", encoding="utf-8") as fh:  # 50 more rows and a last line still being written
        fh.write(data.iloc[100:150].to_csv(index=False, header=False))
        fh.write('2026-10-09 10:00,"the film was boring')
    grown = monitors.run_monitor("phones")
    assert grown.rows_scored == 50 and grown.history_rows == 150
    with open(log, "a", encoding="utf-8") as fh:  # the half-written line is finished
        fh.write(' 7",web\n')
    assert monitors.run_monitor("phones").rows_scored == 1
    history = monitors.history_frame(monitors.get_monitor("phones"))
    assert history["row"].tolist() == list(range(151))
    assert history["text"].iloc[-1] == "the film was boring 7"


def test_a_rewritten_export_is_read_from_the_next_row(baseline_run, inbox):
    data = posts(days=6, surge_days=0)
    data.iloc[:50].to_parquet(inbox / "daily.parquet", index=False)
    old(inbox / "daily.parquet")
    make_monitor(baseline_run, inbox)
    assert monitors.run_monitor("phones").rows_scored == 50
    data.iloc[:80].to_parquet(inbox / "daily.parquet", index=False)  # regenerated with 30 more rows
    again = monitors.run_monitor("phones")
    assert again.rows_scored == 30 and again.history_rows == 80
    history = monitors.history_frame(monitors.get_monitor("phones"))
    assert history["text"].tolist() == data["comment"].iloc[:80].tolist()


def test_a_half_written_file_waits_for_the_next_run(baseline_run, inbox):
    posts(days=3).to_csv(inbox / "early.csv", index=False)
    old(inbox / "early.csv")
    make_monitor(baseline_run, inbox, settle_seconds=60)
    posts(days=2, start="2026-12-01").to_csv(inbox / "copying.csv", index=False)  # modified just now
    first = monitors.run_monitor("phones")
    assert first.files_read == 1 and [Path(s["path"]).name for s in first.skipped] == ["copying.csv"]
    assert first.skipped[0]["reason"]["key"] == "monitors.skip.fresh"
    old(inbox / "copying.csv")
    assert monitors.run_monitor("phones").files_read == 1


def test_a_file_with_other_columns_is_skipped_and_the_others_scored(baseline_run, inbox):
    posts(days=3).to_csv(inbox / "good.csv", index=False)
    make_monitor(baseline_run, inbox)
    pd.DataFrame({"when": ["2026-10-01"], "body": ["the film was great"]}).to_csv(inbox / "other.csv", index=False)
    posts(days=2, start="2026-11-01").to_csv(inbox / "more.csv", index=False)
    summary = monitors.run_monitor("phones")
    assert summary.files_read == 2 and len(summary.skipped) == 1
    reason = summary.skipped[0]["reason"]
    assert reason["key"] == "monitors.skip.columns" and reason["params"]["missing"] == "comment, posted"
    assert monitors.run_monitor("phones").skipped == []  # reported once, until the file changes


def test_the_same_export_under_a_new_name_is_read_once(baseline_run, inbox):
    posts(days=3).to_csv(inbox / "export.csv", index=False)
    make_monitor(baseline_run, inbox)
    first = monitors.run_monitor("phones")
    (inbox / "export (copy).csv").write_bytes((inbox / "export.csv").read_bytes())
    second = monitors.run_monitor("phones")
    assert second.rows_scored == 0 and second.skipped[0]["reason"]["key"] == "monitors.skip.duplicate"
    assert second.history_rows == first.history_rows


def test_rows_of_a_crashed_run_are_never_counted(baseline_run, inbox):
    posts(days=3).to_csv(inbox / "a.csv", index=False)
    make_monitor(baseline_run, inbox)
    rows = monitors.run_monitor("phones").history_rows
    monitor = monitors.get_monitor("phones")
    history = monitors.folder_of(monitor, Registry()) / "history"
    stray = history / "part-crashed.parquet"  # written, then the process died before the commit
    stray.write_bytes(next(history.glob("part-*.parquet")).read_bytes())
    assert len(monitors.history_frame(monitor)) == rows
    monitors.run_monitor("phones")
    assert not stray.exists() and len(monitors.history_frame(monitor)) == rows


# Bad input ---------------------------------------------------------------------------------------
def test_bad_sources_columns_and_names(baseline_run, inbox, tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        make_monitor(baseline_run, tmp_path / "nowhere")
    posts(days=2).to_csv(inbox / "a.csv", index=False)
    with pytest.raises(DataError, match="lacks the column\\(s\\) review"):
        make_monitor(baseline_run, inbox, text_col="review")
    with pytest.raises(ConfigError, match="is not a secret's name"):
        make_monitor(baseline_run, inbox, channels=[Channel("slack", "https://hooks.slack.com/services/T/B/x")])
    make_monitor(baseline_run, inbox)
    with pytest.raises(ConfigError, match="exists already"):
        make_monitor(baseline_run, inbox)
    real_access = os.access
    with monkeypatch.context() as patch:  # root reads everything: pretend the folder is locked away
        patch.setattr(os, "access", lambda p, mode: False if str(p) == str(inbox) else real_access(p, mode))
        with pytest.raises(DataError, match="cannot be read by this user"):
            monitors.run_monitor("phones")
    (inbox / "a.csv").unlink()
    inbox.rmdir()
    with pytest.raises(DataError, match="source folder .* does not exist"):
        monitors.run_monitor("phones")
    assert monitors.state_of(monitors.get_monitor("phones"))["last_status"] == "failed"


def test_a_deleted_model_stops_the_run_with_a_clear_message(baseline_run, inbox):
    import shutil

    posts(days=2).to_csv(inbox / "a.csv", index=False)
    make_monitor(baseline_run, inbox)
    registry = Registry()
    registry.remove_run(baseline_run)
    shutil.rmtree(registry.root / "runs" / baseline_run)
    with pytest.raises(ConfigError, match="was deleted. Edit the monitor and choose another finished run"):
        monitors.run_monitor("phones")


def test_two_runs_of_one_monitor_never_overlap(baseline_run, inbox):
    posts(days=2).to_csv(inbox / "a.csv", index=False)
    monitor = make_monitor(baseline_run, inbox)
    with monitors.run_lock(monitor, Registry()):  # another process holds it (flock is per open file)
        with pytest.raises(ConfigError, match="is being run by another process"):
            monitors.run_monitor("phones")
        code = subprocess.run([sys.executable, "-m", "core", "monitor", "run", "phones"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert code.returncode == 2 and "is being run by another process" in code.stderr
        assert monitors.History(monitors.folder_of(monitor, Registry())).rows == 0
    assert monitors.run_monitor("phones").rows_scored > 0


# Alerts ----------------------------------------------------------------------------------------
def test_an_alert_reaches_the_webhook_once_with_its_stable_keys(baseline_run, inbox, hook):
    posts().to_csv(inbox / "posts.csv", index=False)
    make_monitor(baseline_run, inbox, channels=[Channel("webhook", "OPS_HOOK")], group_col="channel")
    summary = monitors.run_monitor("phones")
    assert summary.new_alerts >= 1 and summary.deliveries == {"sent": summary.new_alerts}
    received = delivered(hook)
    assert len(received) == summary.new_alerts
    alert = next(a for a in received if a["metric"] == "negative_share" and a["group"] is None)
    assert {"monitor", "period", "group", "metric", "value", "baseline", "ratio", "severity", "keywords", "texts",
            "url"} <= set(alert)
    assert alert["monitor"] == "phones" and alert["period"] >= "2026-11-07" and "boring" in alert["keywords"]
    assert 1 <= len(alert["texts"]) <= 3 and all("boring" in t for t in alert["texts"])
    assert "/trends?source=monitor%3Amon_" in alert["url"] and f"period={alert['period']}" in alert["url"]
    again = monitors.run_monitor("phones")
    assert again.new_alerts == 0 and len(hook.requests) == len(received)
    shown = monitor_alerts.alerts_of(monitors.get_monitor("phones"))
    assert all(d["status"] == "sent" and d["answer"].startswith("HTTP 200") for a in shown for d in a["deliveries"])


def test_old_spikes_of_a_backfilled_history_are_not_sent(baseline_run, inbox, hook):
    data = posts(days=60, surge_days=0)
    surge = posts(days=3, start="2026-10-10", surge_days=3)  # a surge long before the newest periods
    pd.concat([data, surge]).to_csv(inbox / "backfill.csv", index=False)
    make_monitor(baseline_run, inbox, channels=[Channel("webhook", "OPS_HOOK")], lookback_periods=8)
    summary = monitors.run_monitor("phones")
    assert summary.spikes >= 1 and summary.new_alerts == 0 and hook.requests == []


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=240, env={**os.environ, **(env or {})})


def test_a_crash_between_send_and_record_never_sends_twice(baseline_run, inbox, hook):
    posts().to_csv(inbox / "posts.csv", index=False)
    make_monitor(baseline_run, inbox, channels=[Channel("webhook", "OPS_HOOK")])
    crashed = run_cli("monitor", "run", "phones", env={"OPINIONLAB_INJECT_CRASH": "after_send"})
    assert crashed.returncode == 17 and len(hook.requests) == 1  # the first alert sent, then the process died
    first = delivered(hook)[0]["id"]
    after = run_cli("monitor", "run", "phones", "--json")
    assert after.returncode == 0, after.stderr
    ids = [r["id"] for r in delivered(hook)]
    assert ids.count(first) == 1 and len(ids) == len(set(ids))  # the others sent now, the first never again
    alerts = {a["id"]: a["deliveries"][0]["status"] for a in monitor_alerts.alerts_of(monitors.get_monitor("phones"))}
    assert alerts.pop(first) == "unconfirmed" and set(alerts.values()) <= {"sent"}
    monitor_alerts.send_again(first, "webhook")  # a person asks for it again
    monitors.run_monitor("phones")
    assert [r["id"] for r in delivered(hook)].count(first) == 2


def test_a_crash_after_recording_sends_at_the_next_run(baseline_run, inbox, hook):
    posts().to_csv(inbox / "posts.csv", index=False)
    make_monitor(baseline_run, inbox, channels=[Channel("webhook", "OPS_HOOK")])
    crashed = run_cli("monitor", "run", "phones", env={"OPINIONLAB_INJECT_CRASH": "after_record"})
    assert crashed.returncode == 17 and hook.requests == []
    summary = monitors.run_monitor("phones")
    assert summary.new_alerts == 0 and summary.deliveries.get("sent", 0) >= 1
    ids = [r["id"] for r in delivered(hook)]
    assert len(ids) == len(set(ids)) == summary.deliveries["sent"]


def test_a_failing_channel_does_not_stop_scoring_and_is_retried(baseline_run, inbox, hook):
    posts().to_csv(inbox / "posts.csv", index=False)
    make_monitor(baseline_run, inbox, channels=[Channel("webhook", "DEAD_HOOK", name="dead"),
                                                Channel("webhook", "OPS_HOOK", name="ops")])
    waits = []
    summary = monitors.run_monitor("phones", sleep=waits.append)
    assert summary.rows_scored > 0 and summary.new_alerts >= 1
    assert summary.deliveries == {"sent": summary.new_alerts, "failed": 1}  # the dead one tried once per run
    assert waits == [2.0, 4.0] and len(hook.requests) == summary.new_alerts
    dead = [d for a in monitor_alerts.alerts_of(monitors.get_monitor("phones")) for d in a["deliveries"]
            if d["channel"] == "dead"]
    tried = [d for d in dead if d["status"] == "failed"]
    assert len(tried) == 1 and tried[0]["attempts"] == 3 and "refused" in tried[0]["answer"].lower()
    for _ in range(monitor_alerts.MAX_ROUNDS + 1):  # each run tries the dead channel once, oldest alert first
        monitors.run_monitor("phones", sleep=lambda s: None)
    rounds = sorted((d["rounds"] for a in monitor_alerts.alerts_of(monitors.get_monitor("phones"))
                     for d in a["deliveries"] if d["channel"] == "dead"), reverse=True)
    assert rounds[0] == monitor_alerts.MAX_ROUNDS and sum(rounds) == monitor_alerts.MAX_ROUNDS + 2
    assert len(hook.requests) == summary.new_alerts  # the working channel got each alert once


# Serving, jobs and the command line ----------------------------------------------------------------
def test_serve_runs_what_is_due(baseline_run, inbox):
    posts(days=3).to_csv(inbox / "a.csv", index=False)
    make_monitor(baseline_run, inbox, interval_minutes=60)
    from core.monitor_schedule import scheduler_alive, serve

    heard = []
    assert serve(once=True, report=lambda name, outcome: heard.append((name, outcome.rows_scored))) == 1
    assert heard[0][0] == "phones" and heard[0][1] > 0
    assert serve(once=True) == 0  # not due for an hour
    assert scheduler_alive()


def test_serve_goes_on_when_one_monitor_fails(baseline_run, inbox, tmp_path, monkeypatch):
    from core import monitor_schedule

    posts(days=3).to_csv(inbox / "a.csv", index=False)
    make_monitor(baseline_run, inbox, name="good")
    other = tmp_path / "other"
    other.mkdir()
    posts(days=3).to_csv(other / "b.csv", index=False)
    make_monitor(baseline_run, other, name="broken")
    real = monitor_schedule.run_monitor

    def flaky(name, *args, **kwargs):
        if monitors.get_monitor(name).name == "broken":
            raise RuntimeError("a bug in one monitor")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(monitor_schedule, "run_monitor", flaky)
    heard = {}
    assert monitor_schedule.serve(once=True, report=lambda name, outcome: heard.update({name: outcome})) == 2
    assert isinstance(heard["broken"], RuntimeError) and heard["good"].rows_scored > 0


def test_run_now_is_a_background_job_with_the_cli_command(baseline_run, inbox):
    from core import jobs
    from tests.core.test_jobs import wait_for

    posts(days=3).to_csv(inbox / "a.csv", index=False)
    monitor = make_monitor(baseline_run, inbox)
    job = monitors.submit_run(monitor)
    assert jobs.command_for(job)[-5:] == ["monitor", "run", monitor.id, "--job", job["id"]]
    assert job["lane"] == jobs.QUICK  # a baseline model scores new rows in seconds
    status = wait_for(lambda: Registry().job(job["id"])["status"] not in ("queued", "running")
                      and Registry().job(job["id"])["status"], 240, "the monitor job")
    assert status == "succeeded", (monitors.folder_of(monitor, Registry()) / "worker.log").read_text()
    assert monitors.progress_of(monitor, Registry())["summary"]["rows_scored"] > 0


def test_cli_add_list_show_test_alert_and_remove(baseline_run, inbox, hook, capsys):
    posts().to_csv(inbox / "posts.csv", index=False)
    assert main(["monitor", "add", "phones", "--model", baseline_run, "--folder", str(inbox), "--freq", "D",
                 "--min-volume", "10", "--settle", "0", "--channel", "webhook=OPS_HOOK", "--json"]) == 0
    added = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["monitor"]
    assert (added["text_col"], added["date_col"]) == ("comment", "posted")  # proposed from the newest file
    assert added["channels"][0]["target"].startswith("http://127.0.0.1/…") and "/alerts" not in json.dumps(added)
    assert main(["monitor", "test-alert", "phones", "--json"]) == 0
    assert delivered(hook)[-1]["test"] is True
    assert main(["monitor", "run", "phones", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["new_alerts"] >= 1
    assert main(["monitor", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["monitors"][0]
    assert listed["rows_scored"] > 0 and listed["alerts"] >= 1 and listed["deliveries"]["sent"] >= 1
    assert main(["monitor", "show", "phones", "--lang", "zh"]) == 0
    assert main(["monitor", "add", "x", "--model", baseline_run, "--folder", str(inbox), "--glob", "*.csv"]) == 2
    assert "Name exactly one source" in capsys.readouterr().err
    assert main(["monitor", "remove", "phones"]) == 0
    assert main(["monitor", "show", "phones"]) == 2 and "There is no monitor 'phones'" in capsys.readouterr().err


def test_test_alert_to_a_dead_channel_is_a_user_error(baseline_run, inbox, hook, capsys):
    posts(days=2).to_csv(inbox / "a.csv", index=False)
    make_monitor(baseline_run, inbox, channels=[Channel("webhook", "DEAD_HOOK", name="dead")])
    assert main(["monitor", "test-alert", "phones", "--lang", "zh"]) == 2
    assert "测试预警未送达：dead" in capsys.readouterr().err
