"""Monitors (舆情监控): new posts scored on a schedule, trends recomputed, alerts delivered once.

A monitor is a saved object in the registry: a finished run's model, a source of export files
(``core.monitor_files``), the text/date/group columns, the trend settings and its alert
channels (``core.alerting``). One run of it:

1. takes the monitor's lock (a second ``monitor run`` of the same monitor waits or refuses);
2. reads only what is new since the last run, scores it with ``core.scoring.score_frame`` and
   appends it to the monitor's history (committed atomically, see ``core.monitor_files``);
3. recomputes the trends over the whole history (old rows are never scored again);
4. records each new spike of the newest ``lookback`` periods as an alert, with one *pending*
   delivery per channel, before anything is sent;
5. delivers: a delivery is marked *sending* before the network call and *sent* or *failed*
   after it. A run that finds *sending* left by a crashed one marks it *unconfirmed* and does
   not send it again (the receiver may have it; the page offers "Send again"), so no alert is
   ever sent twice. Failed deliveries are retried at the next runs (``core.monitor_alerts``); a
   failing channel never stops scoring.

``core.monitor_schedule.serve`` runs every monitor on its own interval in one long-lived
process; the web app never schedules anything itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core import alerting, trends
from core.alerting import Channel
from core.errors import ConfigError, DataError, NotFoundError, OpinionLabError
from core.i18n import LANGUAGES, msg
from core.monitor_files import FileColumns, History, Source, Work, plan, read_into
from core.workspace import Registry, atomic_write_json, check_name, inside, new_id, read_json

SOURCE_KEY = "monitor:"  # how the Trends page names a monitor's history as its source
SCHEMA = """
CREATE TABLE IF NOT EXISTS monitors (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, created_by TEXT,
    config TEXT NOT NULL, state TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS monitor_alerts (
    id TEXT PRIMARY KEY, monitor_id TEXT NOT NULL, key TEXT NOT NULL, created_at REAL NOT NULL,
    alert TEXT NOT NULL, UNIQUE (monitor_id, key));
CREATE TABLE IF NOT EXISTS monitor_deliveries (
    alert_id TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    rounds INTEGER NOT NULL DEFAULT 0, answer TEXT, updated_at REAL NOT NULL, sent_at REAL,
    PRIMARY KEY (alert_id, channel));
"""
_READY: set[Path] = set()  # registries whose monitor tables exist (checked once per process)


@dataclass
class Monitor:
    """What to watch, how to judge it and whom to tell. Help texts are message ids."""

    name: str
    run_id: str = field(metadata={"help": "monitors.help.run_id"})
    source: Source = field(metadata={"help": "monitors.help.source"})
    text_col: str = field(metadata={"help": "monitors.help.text_col"})
    date_col: str = field(metadata={"help": "monitors.help.date_col"})
    group_col: str = field(default="", metadata={"help": "monitors.help.group_col"})
    settings: dict[str, Any] = field(default_factory=lambda: trends.TrendSettings().to_dict())
    channels: list[Channel] = field(default_factory=list)
    interval_minutes: int = field(default=60, metadata={"help": "monitors.help.interval"})  # 5-1440
    settle_seconds: int = field(default=60, metadata={"help": "monitors.help.settle"})  # 0 for append-only logs
    lookback_periods: int = field(default=8, metadata={"help": "monitors.help.lookback"})  # the trend window is a fair choice
    lang: str = field(default="en", metadata={"help": "monitors.help.lang"})
    id: str = ""
    created_by: str | None = None
    created_at: float = 0.0

    def trend_settings(self) -> trends.TrendSettings:
        known = trends.TrendSettings.__dataclass_fields__
        return trends.TrendSettings(**{k: v for k, v in self.settings.items() if k in known})

    def columns(self) -> trends.Columns:
        """The history's own column names (the file's names are mapped when rows are appended)."""
        return trends.Columns(date="date", label="label", text="text", confidence="confidence",
                              group="group" if self.group_col else None)

    def needed_columns(self) -> list[str]:
        return FileColumns(self.text_col, self.date_col, self.group_col).needed()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["source"], out["channels"] = self.source.to_dict(), [c.to_dict() for c in self.channels]
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Monitor:
        values = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        values["source"] = Source(**values["source"])
        values["channels"] = [Channel.from_dict(c) for c in values.get("channels") or []]
        return cls(**values)

    def validate(self, registry: Registry) -> Monitor:
        from core.predict import require_finished

        self.name = check_name(self.name, msg("monitors.what_name"))
        require_finished(self.run_id, registry)
        self.source.validate()
        for role in ("text_col", "date_col"):
            if not getattr(self, role):
                raise DataError(f"monitors.err.need_{role}")
        self.trend_settings().validate()
        names = [c.validate().name for c in self.channels]
        if len(set(names)) < len(names):
            raise ConfigError("monitors.err.channel_names", names=", ".join(names))
        if not (1 <= self.interval_minutes <= 7 * 24 * 60 and 0 <= self.settle_seconds <= 86_400
                and 1 <= self.lookback_periods <= 365):
            raise ConfigError("monitors.err.timing", interval=self.interval_minutes, settle=self.settle_seconds,
                              lookback=self.lookback_periods)
        if self.lang not in LANGUAGES:
            raise ConfigError("monitors.err.lang", lang=self.lang, languages=", ".join(LANGUAGES))
        newest = newest_rows(self.source, 20)
        found = [str(c) for c in newest.columns] if newest is not None else []
        missing = [c for c in self.needed_columns() if newest is not None and c not in found]
        if missing:
            raise DataError("monitors.err.columns", file=Path(self.source.files()[-1]).name,
                            missing=", ".join(missing), found=", ".join(found))
        return self


def newest_rows(source: Source, rows: int = 2000) -> pd.DataFrame | None:
    """The first rows of the source's newest file (for choosing columns), or None before any file."""
    from core.scoring import preview

    files = source.files()
    return preview(files[-1], rows) if files else None


def suggest_columns(source: Source) -> dict[str, str | None]:
    """Text, date and group columns proposed from the newest file, as the Trends page proposes them."""
    frame = newest_rows(source)
    return trends.suggest_columns(frame) if frame is not None else {"text": None, "date": None, "group": None}


# ----------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def connect(registry: Registry, transaction: bool = True) -> Iterator[Any]:
    """A registry connection with the monitor tables created if missing (once per process)."""
    if registry.path not in _READY:
        with registry.connect(transaction=False) as db:
            db.executescript(SCHEMA)
        _READY.add(registry.path)
    with registry.connect(transaction) as db:
        yield db


def folder_of(monitor: Monitor, registry: Registry) -> Path:
    return inside(registry.root, "monitors", monitor.id)


def _save_config(monitor: Monitor, registry: Registry) -> None:
    # the job queue starts a worker only when the job's config file exists
    atomic_write_json(folder_of(monitor, registry) / "config.json", monitor.to_dict())


def add_monitor(monitor: Monitor, registry: Registry | None = None, created_by: str | None = None) -> Monitor:
    registry = registry or Registry()
    monitor.validate(registry)
    monitor.id, monitor.created_by, monitor.created_at = new_id("mon"), created_by, time.time()
    folder_of(monitor, registry).mkdir(parents=True, exist_ok=True)
    _save_config(monitor, registry)
    try:
        with connect(registry) as db:
            db.execute("INSERT INTO monitors (id, name, created_at, created_by, config) VALUES (?,?,?,?,?)",
                       (monitor.id, monitor.name, monitor.created_at, created_by, json.dumps(monitor.to_dict())))
    except Exception as exc:
        shutil.rmtree(folder_of(monitor, registry), ignore_errors=True)
        if "UNIQUE" in str(exc):
            raise ConfigError("monitors.err.exists", name=monitor.name) from exc
        raise
    return monitor


def update_monitor(name: str, changed: Monitor, registry: Registry | None = None) -> Monitor:
    """Save new settings for an existing monitor; its history, files and alerts stay."""
    registry = registry or Registry()
    current = get_monitor(name, registry)
    changed.id, changed.created_by, changed.created_at = current.id, current.created_by, current.created_at
    changed.validate(registry)
    try:
        with connect(registry) as db:
            db.execute("UPDATE monitors SET name = ?, config = ? WHERE id = ?",
                       (changed.name, json.dumps(changed.to_dict()), current.id))
    except Exception as exc:
        if "UNIQUE" in str(exc):
            raise ConfigError("monitors.err.exists", name=changed.name) from exc
        raise
    _save_config(changed, registry)
    return changed


def get_monitor(name: str, registry: Registry | None = None) -> Monitor:
    registry = registry or Registry()
    with connect(registry, transaction=False) as db:
        row = db.execute("SELECT config FROM monitors WHERE name = ? OR id = ?", (name, name)).fetchone()
        known = [r["name"] for r in db.execute("SELECT name FROM monitors ORDER BY name LIMIT 5")]
    if row is None:
        raise NotFoundError("monitors.err.not_found", name=name, known=", ".join(known) or msg("monitors.none_yet"))
    return Monitor.from_dict(json.loads(row["config"]))


def list_monitors(registry: Registry | None = None) -> list[Monitor]:
    registry = registry or Registry()
    with connect(registry, transaction=False) as db:
        rows = db.execute("SELECT config FROM monitors ORDER BY name").fetchall()
    return [Monitor.from_dict(json.loads(r["config"])) for r in rows]


def remove_monitor(name: str, registry: Registry | None = None) -> Monitor:
    """Delete a monitor, its history and its alerts (refused while it runs)."""
    registry = registry or Registry()
    monitor = get_monitor(name, registry)
    with run_lock(monitor, registry), connect(registry) as db:
        db.execute("DELETE FROM monitor_deliveries WHERE alert_id IN "
                   "(SELECT id FROM monitor_alerts WHERE monitor_id = ?)", (monitor.id,))
        db.execute("DELETE FROM monitor_alerts WHERE monitor_id = ?", (monitor.id,))
        db.execute("DELETE FROM monitors WHERE id = ?", (monitor.id,))
    shutil.rmtree(folder_of(monitor, registry), ignore_errors=True)
    return monitor


def state_of(monitor: Monitor, registry: Registry | None = None) -> dict[str, Any]:
    registry = registry or Registry()
    with connect(registry, transaction=False) as db:
        row = db.execute("SELECT state FROM monitors WHERE id = ?", (monitor.id,)).fetchone()
    return json.loads(row["state"]) if row else {}


def _set_state(monitor: Monitor, registry: Registry, **values: Any) -> None:
    with connect(registry) as db:
        row = db.execute("SELECT state FROM monitors WHERE id = ?", (monitor.id,)).fetchone()
        if row is not None:
            merged = {**json.loads(row["state"]), **values}
            db.execute("UPDATE monitors SET state = ? WHERE id = ?", (json.dumps(merged, default=str), monitor.id))


# ----------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def run_lock(monitor: Monitor, registry: Registry, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the monitor's lock (an OS file lock: it goes with the process, even on SIGKILL)."""
    folder = folder_of(monitor, registry)
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    with open(folder / "run.lock", "a+") as handle:  # closing the file releases the lock
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = read_json(folder / "status.json", {}) or {}
                    raise ConfigError("monitors.err.busy", name=monitor.name, pid=holder.get("pid") or "?") from None
                time.sleep(0.5)  # waiting for the other run, as asked (--wait)
        yield


def is_running(monitor: Monitor, registry: Registry) -> bool:
    """Whether a run is going on now (read from its status file: probing the lock could make a
    run that starts at that moment refuse)."""
    from core.jobs import _pid_alive

    status = progress_of(monitor, registry)
    return status.get("status") == "running" and _pid_alive(status.get("pid"))


@dataclass
class RunSummary:
    monitor: str
    status: str = "running"
    files_read: int = 0
    files_unchanged: int = 0
    rows_scored: int = 0
    empty_texts: int = 0
    history_rows: int = 0
    spikes: int = 0
    new_alerts: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason": message dict}
    notes: list[dict] = field(default_factory=list)  # message dicts
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Progress:
    """status.json of the monitor's folder: the stage and counts a page reads while a run goes."""

    def __init__(self, folder: Path, job_id: str | None):
        self.path, self.values = folder / "status.json", {"pid": os.getpid(), "job": job_id,
                                                          "started_at": time.time()}

    def __call__(self, status: str = "running", **values: Any) -> None:
        self.values.update(status=status, updated_at=time.time(), **values)
        atomic_write_json(self.path, self.values)


def progress_of(monitor: Monitor, registry: Registry) -> dict[str, Any]:
    return read_json(folder_of(monitor, registry) / "status.json", {}) or {}


def run_monitor(name: str, registry: Registry | None = None, wait_s: float = 0.0, job_id: str | None = None,
                predictors: dict | None = None, sleep: Callable[[float], None] = time.sleep) -> RunSummary:
    """One run (see the module's story). Raises for what stops it (a missing source, a deleted
    model, the lock held); what stops only one file or one channel is in the summary."""
    registry = registry or Registry()
    monitor = get_monitor(name, registry)
    with run_lock(monitor, registry, wait_s):
        started = time.time()
        progress = _Progress(folder_of(monitor, registry), job_id)
        progress(stage="reading")
        _set_state(monitor, registry, last_run_at=started)
        summary = RunSummary(monitor.name)
        try:
            _run_locked(monitor, registry, summary, progress, predictors if predictors is not None else {}, sleep)
        except Exception as exc:
            error = exc.message.to_dict() if isinstance(exc, OpinionLabError) and exc.message else str(exc)
            progress("failed", error=error)
            _set_state(monitor, registry, last_status="failed", last_error=error, last_finished_at=time.time())
            raise
        summary.status = "succeeded"
        progress("succeeded", summary=summary.to_dict())
        _set_state(monitor, registry, last_status="succeeded", last_error=None, last_finished_at=time.time(),
                   last_summary=summary.to_dict(), history_rows=summary.history_rows,
                   rows_scored=state_of(monitor, registry).get("rows_scored", 0) + summary.rows_scored)
    return summary


def _run_locked(monitor: Monitor, registry: Registry, summary: RunSummary, progress: _Progress,
                predictors: dict, sleep: Callable[[float], None]) -> None:
    from core.monitor_alerts import deliver_pending, find_alerts
    from core.predict import require_finished

    clock = time.perf_counter()
    folder = folder_of(monitor, registry)
    history = History(folder)
    history.clean()
    try:
        require_finished(monitor.run_id, registry)
    except NotFoundError as exc:
        raise ConfigError("monitors.err.model_gone", name=monitor.name, run=monitor.run_id) from exc
    planned = plan(monitor.source.files(), history.files, monitor.settle_seconds)
    history.files.update(planned.seen)
    summary.files_unchanged = planned.unchanged
    summary.skipped += [s.to_dict() for s in planned.skipped]
    for number, work in enumerate(planned.work, start=1):
        progress(stage="scoring", files_done=number - 1, files_total=len(planned.work), rows_done=summary.rows_scored)
        _read_file(monitor, registry, work, history, summary, predictors)
    history.commit()
    history.compact()
    summary.history_rows = history.rows
    summary.seconds["read_and_score"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    progress(stage="trends", files_done=len(planned.work), rows_done=summary.rows_scored)
    signature = json.dumps([history.parts, monitor.settings, monitor.group_col, monitor.lookback_periods])
    if summary.rows_scored or state_of(monitor, registry).get("trends_signature") != signature:
        find_alerts(monitor, registry, history, summary)
        _set_state(monitor, registry, trends_signature=signature)
    summary.seconds["trends"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    progress(stage="delivering")
    summary.deliveries = deliver_pending(monitor, registry, sleep)
    summary.seconds["deliver"] = round(time.perf_counter() - clock, 3)


def _predictor(run_id: str, registry: Registry, cache: dict) -> Any:
    """The run's model, loaded once per process (``serve`` keeps it between runs)."""
    from core.predict import load_predictor, require_finished

    key = (run_id, (require_finished(run_id, registry) / "model" / "labels.json").stat().st_mtime_ns)
    if key not in cache:
        cache.clear()  # one model at a time: a process serving many monitors holds the latest one
        cache[key] = load_predictor(run_id, registry)
    return cache[key]


def _read_file(monitor: Monitor, registry: Registry, work: Work, history: History, summary: RunSummary,
               predictors: dict) -> None:
    from core.scoring import score_frame

    def score(chunk: pd.DataFrame) -> pd.DataFrame:
        return score_frame(_predictor(monitor.run_id, registry, predictors), chunk, monitor.text_col)

    columns = FileColumns(monitor.text_col, monitor.date_col, monitor.group_col)
    result = read_into(history, work, columns, score, monitor.settle_seconds)
    if result.skipped is not None:
        summary.skipped.append(result.skipped.to_dict())
        return
    summary.files_read += 1
    summary.rows_scored += result.rows
    summary.empty_texts += result.empty


def trends_url(monitor: Monitor, period: str, group: str | None, metric: str | None = None) -> str:
    """The Trends view of an alert: the monitor's history with its period, group and metric chosen."""
    query = {"source": f"{SOURCE_KEY}{monitor.id}", "period": period, "lang": monitor.lang}
    if group:
        query["group"] = group
    if metric:
        query["metric"] = metric
    return f"{alerting.public_url()}/trends?{urllib.parse.urlencode(query)}"



def test_alert_for(monitor: Monitor) -> alerting.Alert:
    """A made-up alert for "Send test alert", linking to the monitor's Trends view."""
    alert = alerting.test_alert(monitor.name)
    alert.url = trends_url(monitor, alert.period, None)
    return alert


def _injected_crash(where: str) -> None:
    """Fault injection for tests: OPINIONLAB_INJECT_CRASH=after_record or after_send ends the
    process there at once, as a power cut would (no cleanup, no finally)."""
    if os.environ.get("OPINIONLAB_INJECT_CRASH") == where:
        os._exit(17)



def overview(registry: Registry | None = None) -> list[dict[str, Any]]:
    """One line per monitor for the page and ``monitor list``: last run, rows, next run, alerts."""
    from core import monitor_alerts

    registry = registry or Registry()
    out = []
    for monitor in list_monitors(registry):
        state = state_of(monitor, registry)
        alerts, counts = monitor_alerts.counts(monitor, registry)
        last = state.get("last_run_at")
        out.append({"name": monitor.name, "id": monitor.id, "run_id": monitor.run_id, "source": monitor.source.path,
                    "last_run_at": last, "last_status": state.get("last_status"), "last_error": state.get("last_error"),
                    "rows_scored": state.get("rows_scored", 0), "history_rows": state.get("history_rows", 0),
                    "next_run_at": last + monitor.interval_minutes * 60 if last else None,
                    "alerts": alerts, "deliveries": counts, "running": is_running(monitor, registry)})
    return out


def submit_run(monitor: Monitor, registry: Registry | None = None, created_by: str | None = None) -> dict[str, Any]:
    """Queue one run of the monitor as a background job (``python -m core monitor run ID --job JOB``)."""
    from core import jobs

    registry = registry or Registry()
    _save_config(monitor, registry)
    return jobs.submit(folder_of(monitor, registry), registry, created_by, kind="monitor", job_id=new_id("job"))


def latest_job(monitor: Monitor, registry: Registry | None = None) -> dict[str, Any] | None:
    """The newest "Run now" job of the monitor, if any."""
    registry = registry or Registry()
    return next((j for j in registry.jobs() if j["kind"] == "monitor" and j["target"] == monitor.id), None)


def model_labels(run_id: str, registry: Registry | None = None) -> list[str]:
    """The labels a finished run's model predicts (for choosing the negative one); [] if unknown."""
    folder = (registry or Registry()).root / "runs" / str(run_id) / "model"
    return [str(label) for label in (read_json(folder / "labels.json", {}) or {}).get("labels", [])]


def overview_table(rows: list[dict[str, Any]], lang: str, scheduler_running: bool) -> pd.DataFrame:
    """``overview`` as people read it: headers in ``lang``, times in its order, counts with separators, a dash
    where there is nothing (the next run only exists while ``monitor serve`` runs)."""
    from core.i18n import format_count, format_timestamp, t

    out = []
    for r in rows:
        status = "running" if r["running"] else r["last_status"]
        upcoming = r["next_run_at"]
        if not scheduler_running:
            upcoming = "—"
        elif upcoming is None or upcoming <= time.time():
            upcoming = t("monitors.due_now", lang)
        else:
            upcoming = format_timestamp(upcoming, lang)
        out.append({"name": r["name"], "model": r["run_id"], "last_run": format_timestamp(r["last_run_at"], lang),
                    "status": t(f"status.{status}", lang) if status else t("monitors.never_run", lang),
                    "rows_scored": format_count(r["rows_scored"], lang), "next_run": upcoming,
                    "alerts": format_count(r["alerts"], lang), "sent": format_count(r["deliveries"].get("sent", 0), lang),
                    "problems": format_count(sum(r["deliveries"].get(k, 0) for k in ("failed", "unconfirmed")), lang)})
    columns = ["name", "model", "last_run", "status", "rows_scored", "next_run", "alerts", "sent", "problems"]
    return pd.DataFrame(out, columns=columns).rename(columns=lambda c: t(f"monitors.col.{c}", lang))


# ----------------------------------------------------------------------------------------
# The Trends page's view of a monitor
# ----------------------------------------------------------------------------------------
def from_source_key(key: str, registry: Registry | None = None) -> Monitor | None:
    """The monitor a Trends source key (``monitor:<id>``) names, or None."""
    if not str(key).startswith(SOURCE_KEY):
        return None
    try:
        return get_monitor(str(key)[len(SOURCE_KEY):], registry)
    except NotFoundError:
        return None


def history_frame(monitor: Monitor, registry: Registry | None = None) -> pd.DataFrame:
    return History(folder_of(monitor, registry or Registry())).frame()


def history_version(monitor: Monitor, registry: Registry | None = None) -> str:
    """Changes whenever the history does (for caches)."""
    state = folder_of(monitor, registry or Registry()) / "state.json"
    return str(state.stat().st_mtime_ns) if state.exists() else "empty"
