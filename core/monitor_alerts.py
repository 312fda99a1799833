"""A monitor's alerts: found in its trends, recorded before they are sent, delivered once.

Deliveries move pending → sending → sent | failed; *sending* is written before the network call,
so a run that finds one left by a crashed run knows the receiver may have it: it becomes
*unconfirmed* and is not sent again unless a person asks ("Send again"). Failed deliveries are
retried by the next runs, up to MAX_ROUNDS; a channel that fails in a run is not tried again in
that run, so a dead channel costs one delivery's retries, not one per alert.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import pandas as pd

from core import alerting, trends
from core.alerting import Alert
from core.errors import ConfigError, OpinionLabError
from core.i18n import format_timestamp, msg, t
from core.monitor_files import History
from core.monitors import Monitor, RunSummary, _injected_crash, connect, trends_url
from core.workspace import Registry, new_id

MAX_ROUNDS = 3  # runs that try a failed delivery before it is left for "Send again"


def find_alerts(monitor: Monitor, registry: Registry, history: History, summary: RunSummary) -> None:
    """Trends over the whole history; each spike of the newest ``lookback`` periods not yet
    recorded becomes an alert with one pending delivery per channel.

    Spikes are found without the texts (reading a million of them is most of the cost); only a
    run that has new spikes reads the texts too, for their keywords and examples."""
    plain = dataclasses.replace(monitor.columns(), text=None)
    report = _report(history, plain, monitor, summary, ["date", "group", "label", "confidence"])
    if report is None:
        return
    summary.spikes = len(report.spikes)
    if _new_spikes(monitor, registry, report):
        report = _report(history, monitor.columns(), monitor, summary, ["date", "text", "group", "label", "confidence"])
        for key, spike in _new_spikes(monitor, registry, report) if report is not None else []:
            _record_alert(monitor, registry, key, _alert_for(monitor, report, spike))
            summary.new_alerts += 1
    _injected_crash("after_record")


def _report(history: History, columns: trends.Columns, monitor: Monitor, summary: RunSummary,
            read: list[str]) -> trends.TrendReport | None:
    """The trends of the history's ``read`` columns (not where each row came from: a million
    file paths cost a second); None when there are none, or they cannot be computed (said)."""
    frame = history.frame(read)
    if frame.empty:
        return None
    try:
        return trends.analyse(frame, columns, monitor.trend_settings(), keywords_for=0)
    except OpinionLabError as exc:  # e.g. no date could be read: said in the summary, the scoring is kept
        summary.notes.append(msg("monitors.note.no_trends", reason=exc.message or str(exc)).to_dict())
        return None


def _new_spikes(monitor: Monitor, registry: Registry, report: trends.TrendReport) -> list[tuple[str, trends.Spike]]:
    """(key, spike) of the spikes in the newest ``lookback`` periods not yet recorded, oldest first
    (so alerts arrive in the order things happened)."""
    periods = sorted(report.series["period"].unique())
    cutoff = periods[-min(monitor.lookback_periods, len(periods))]
    with connect(registry, transaction=False) as db:
        known = {r["key"] for r in db.execute("SELECT key FROM monitor_alerts WHERE monitor_id = ?", (monitor.id,))}
    found = []
    for spike in reversed(report.spikes):
        key = f"{report.prepared.settings.freq}|{spike.metric}|{spike.period:%Y-%m-%d}|{spike.group or ''}"
        if spike.period >= cutoff and key not in known:
            found.append((key, spike))
    return found


def _alert_for(monitor: Monitor, report: trends.TrendReport, spike: trends.Spike) -> Alert:
    """The alert of a spike: its keywords and the most confident texts behind it (those holding
    its top keyword first)."""
    spike.keywords = spike.keywords or trends.spike_keywords(report.prepared, spike)
    terms = [k["term"] for k in spike.keywords[:alerting.KEYWORDS]]
    label = report.prepared.negative if spike.metric == "negative_share" else None
    # texts_for over the spike's period only: matching a keyword across the whole history costs
    # a second per 100,000 rows
    data = report.prepared.frame
    within = dataclasses.replace(report.prepared, frame=data[data["period"] == spike.period])
    texts: list[str] = []
    for term in ([terms[0]] if terms else []) + [None]:
        rows = trends.texts_for(within, group=spike.group, label=label, term=term, limit=alerting.EXAMPLES)
        texts += [x for x in rows["text"].tolist() if x not in texts] if "text" in rows else []
    period = f"{spike.period:%Y-%m-%d}"
    return Alert(monitor=monitor.name, period=period, freq=report.prepared.settings.freq, metric=spike.metric,
                 value=float(spike.value), baseline=float(spike.baseline),
                 ratio=None if spike.ratio is None else float(spike.ratio), severity=spike.severity,
                 volume=int(spike.volume), group=spike.group, keywords=terms, texts=texts[:alerting.EXAMPLES],
                 url=trends_url(monitor, period, spike.group, spike.metric), id=new_id("alert"))


def _record_alert(monitor: Monitor, registry: Registry, key: str, alert: Alert) -> None:
    now = time.time()
    with connect(registry) as db:
        db.execute("INSERT OR IGNORE INTO monitor_alerts (id, monitor_id, key, created_at, alert) VALUES (?,?,?,?,?)",
                   (alert.id, monitor.id, key, now, json.dumps(alert.to_dict(), ensure_ascii=False)))
        db.executemany("INSERT OR IGNORE INTO monitor_deliveries (alert_id, channel, status, updated_at) "
                       "VALUES (?,?,?,?)", [(alert.id, c.name, "pending", now) for c in monitor.channels])


def deliver_pending(monitor: Monitor, registry: Registry, sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Send every pending delivery of the monitor (and failed ones with rounds left); returns
    how many ended in each state. Must hold the monitor's lock."""
    now = time.time()
    with connect(registry) as db:  # a *sending* row here was left by a run that died mid-send
        db.execute("UPDATE monitor_deliveries SET status = 'unconfirmed', updated_at = ? WHERE status = 'sending' "
                   "AND alert_id IN (SELECT id FROM monitor_alerts WHERE monitor_id = ?)", (now, monitor.id))
        rows = db.execute(
            "SELECT d.alert_id, d.channel, a.alert FROM monitor_deliveries d JOIN monitor_alerts a ON a.id = d.alert_id "
            "WHERE a.monitor_id = ? AND (d.status = 'pending' OR (d.status = 'failed' AND d.rounds < ?)) "
            "ORDER BY a.created_at", (monitor.id, MAX_ROUNDS)).fetchall()
    channels = {c.name: c for c in monitor.channels}
    counts: dict[str, int] = {}
    down: set[str] = set()  # channels that failed in this run: their other alerts wait for the next
    for row in rows:
        channel = channels.get(row["channel"])
        if channel is None or channel.name in down:
            if channel is None:
                _mark(registry, row, "removed", answer=msg("monitors.answer.channel_removed").to_dict())
            continue
        _mark(registry, row, "sending")
        result = alerting.deliver(channel, Alert.from_dict(json.loads(row["alert"])), monitor.lang, sleep=sleep)
        _injected_crash("after_send")
        status = "sent" if result.ok else "failed"
        _mark(registry, row, status, result.answer, result.attempts)
        counts[status] = counts.get(status, 0) + 1
        if not result.ok:
            down.add(channel.name)
    return counts


def _mark(registry: Registry, row: Any, status: str, answer: Any = None, attempts: int = 0) -> None:
    now = time.time()
    rounds = 1 if status in ("sent", "failed") else 0
    with connect(registry) as db:
        db.execute("UPDATE monitor_deliveries SET status = ?, attempts = attempts + ?, rounds = rounds + ?, "
                   "answer = COALESCE(?, answer), updated_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? "
                   "ELSE sent_at END WHERE alert_id = ? AND channel = ?",
                   (status, attempts, rounds, None if answer is None else json.dumps(answer, ensure_ascii=False),
                    now, status, now, row["alert_id"], row["channel"]))


def send_again(alert_id: str, channel: str, registry: Registry | None = None) -> None:
    """Queue an unconfirmed or failed delivery once more (sent by the monitor's next run)."""
    registry = registry or Registry()
    with connect(registry) as db:
        changed = db.execute("UPDATE monitor_deliveries SET status = 'pending', rounds = 0, updated_at = ? "
                             "WHERE alert_id = ? AND channel = ? AND status IN ('unconfirmed', 'failed')",
                             (time.time(), alert_id, channel)).rowcount
    if not changed:
        raise ConfigError("monitors.err.not_resendable", alert=alert_id, channel=channel)


def alerts_of(monitor: Monitor, registry: Registry | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The monitor's alerts, newest first, each with its deliveries (answers as stored)."""
    registry = registry or Registry()
    with connect(registry, transaction=False) as db:
        alerts = db.execute("SELECT id, created_at, alert FROM monitor_alerts WHERE monitor_id = ? "
                            "ORDER BY created_at DESC LIMIT ?", (monitor.id, limit)).fetchall()
        deliveries = db.execute("SELECT * FROM monitor_deliveries WHERE alert_id IN (SELECT id FROM monitor_alerts "
                                "WHERE monitor_id = ?)", (monitor.id,)).fetchall()
    by_alert: dict[str, list[dict]] = {}
    for d in deliveries:
        by_alert.setdefault(d["alert_id"], []).append(
            {**dict(d), "answer": json.loads(d["answer"]) if d["answer"] else None})
    return [{**json.loads(a["alert"]), "created_at": a["created_at"], "deliveries": by_alert.get(a["id"], [])}
            for a in alerts]


def counts(monitor: Monitor, registry: Registry) -> tuple[int, dict[str, int]]:
    """How many alerts the monitor has, and its deliveries by status."""
    with connect(registry, transaction=False) as db:
        by_status = dict(db.execute(
            "SELECT d.status, COUNT(*) FROM monitor_deliveries d JOIN monitor_alerts a ON a.id = d.alert_id "
            "WHERE a.monitor_id = ? GROUP BY d.status", (monitor.id,)).fetchall())
        alerts = db.execute("SELECT COUNT(*) FROM monitor_alerts WHERE monitor_id = ?", (monitor.id,)).fetchone()[0]
    return alerts, by_status


def trends_link(alert: dict[str, Any], lang: str) -> str:
    """The alert's Trends view as a link relative to the app's pages (works behind any base
    path), in the reader's language rather than the alert's."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(alert.get("url") or "").query))
    return f"trends?{urllib.parse.urlencode({**query, 'lang': lang})}" if query else ""


def alert_table(alerts: list[dict[str, Any]], lang: str) -> pd.DataFrame:
    """The alert history as people read it, newest first: headers and words in ``lang``, one
    decimal convention (shares as percentages, volumes as counts), each delivery's state and a
    link to its Trends view (the last column)."""
    rows = []
    for a in alerts:
        item = Alert.from_dict(a)
        rows.append({
            "created": format_timestamp(a["created_at"], lang), "period": alerting.period_name(item, lang),
            "group": item.group or t("monitors.all_groups", lang), "metric": t(f"trends.metric_{item.metric}", lang),
            "value": alerting.format_value(item.metric, item.value),
            "baseline": alerting.format_value(item.metric, item.baseline),
            "ratio": "—" if item.ratio is None else f"{item.ratio:.1f}×",
            "severity": t(f"trends.severity_{item.severity}", lang),
            "deliveries": "; ".join(f"{d['channel']}: {t('monitors.delivery.' + d['status'], lang)}"
                                    for d in a["deliveries"]) or "—",
            "link": trends_link(a, lang)})
    columns = ["created", "period", "group", "metric", "value", "baseline", "ratio", "severity", "deliveries", "link"]
    return pd.DataFrame(rows, columns=columns).rename(columns=lambda c: t(f"monitors.alert_col.{c}", lang))


def problems(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deliveries a person should know about: failed or unconfirmed, with the alert they belong to."""
    return [{**d, "alert": a} for a in alerts for d in a["deliveries"] if d["status"] in ("failed", "unconfirmed")]
