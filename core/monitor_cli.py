"""The ``monitor`` commands: add, list, show and remove monitors, run one (as a scheduler or a
job would), serve the schedule, and test a monitor's alert channels."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from core import cli, i18n
from core.errors import OpinionLabError


def _monitor_from_args(args: argparse.Namespace):
    from core import monitors
    from core.alerting import Channel
    from core.monitor_files import Source

    kinds = [(k, getattr(args, k)) for k in ("folder", "glob", "file") if getattr(args, k)]
    if len(kinds) != 1:
        raise OpinionLabError("cli.err.monitor_source")
    source = Source(*kinds[0])
    suggested = monitors.suggest_columns(source.validate())
    settings = cli._trend_settings(args)
    channels = []
    for spec in args.channel or []:  # KIND=SECRET[,SIGN_SECRET]
        kind, _, names = spec.partition("=")
        secret, _, sign = names.partition(",")
        taken = [c.name for c in channels]
        name = kind if kind not in taken else f"{kind}-{taken.count(kind) + 1}"
        channels.append(Channel(kind=kind.strip(), secret=secret.strip(), name=name, sign_secret=sign.strip()))
    return monitors.Monitor(
        name=args.name, run_id=args.model, source=source, text_col=args.text_col or suggested.get("text") or "",
        date_col=args.date_col or suggested.get("date") or "", group_col=args.group_col or "",
        settings=settings.to_dict(), channels=channels, interval_minutes=args.interval, settle_seconds=args.settle,
        lookback_periods=args.lookback, lang=args.alert_lang)


def _monitor_line(row: dict[str, Any]) -> str:
    last = i18n.format_timestamp(row["last_run_at"]) if row["last_run_at"] else "never"
    sent = row["deliveries"].get("sent", 0)
    return (f"{row['name']:<24} last run {last} ({row['last_status'] or '-'}), {row['rows_scored']:,} rows scored, "
            f"{row['alerts']:,} alerts, {sent:,} deliveries sent")


def cmd_monitor(args: argparse.Namespace) -> int:
    from core import monitor_alerts, monitors
    from core.alerting import channel_summary

    if args.verb == "add":
        monitor = monitors.add_monitor(_monitor_from_args(args), created_by=os.environ.get("USER"))
        cli._emit({"monitor": _shown_monitor(monitor)}, args.json,
              [f"Added monitor {monitor.name!r} ({monitor.id}): columns text={monitor.text_col}, "
               f"date={monitor.date_col}; run it with: python -m core monitor run {monitor.name!r}"])
    elif args.verb == "list":
        rows = monitors.overview()
        cli._emit({"monitors": rows}, args.json, [_monitor_line(r) for r in rows] or ["No monitors yet."])
    elif args.verb == "show":
        monitor = monitors.get_monitor(args.name)
        alerts = monitor_alerts.alerts_of(monitor, limit=20)
        shown = {"monitor": _shown_monitor(monitor), "state": monitors.state_of(monitor),
                 "alerts": [{**a, "deliveries": [{**d, "answer": i18n.render(d["answer"], args.lang)}
                                                 for d in a["deliveries"]]} for a in alerts]}
        channels = [f"  channel {c['name']} ({c['kind']}): {i18n.render(c['target'], args.lang)}"
                    for c in (channel_summary(ch) for ch in monitor.channels)]
        cli._emit(shown, args.json, [json.dumps(shown["monitor"], indent=2, ensure_ascii=False), *channels])
    elif args.verb == "remove":
        monitor = monitors.remove_monitor(args.name)
        cli._emit({"removed": monitor.name, "id": monitor.id}, args.json, [f"Removed monitor {monitor.name!r}."])
    return cli.EXIT_OK


def _shown_monitor(monitor) -> dict[str, Any]:
    """The monitor as the CLI prints it: channels with their targets masked, never in full."""
    from core.alerting import channel_summary

    return {**monitor.to_dict(), "channels": [channel_summary(c) for c in monitor.channels]}


def cmd_monitor_run(args: argparse.Namespace) -> int:
    from core import jobs, monitors
    from core.workspace import Registry

    registry = Registry()
    if args.job:  # a worker started by the job queue ("Run now" on the Monitors page)
        cli._lower_priority()
        registry.update_job(args.job, pid=os.getpid())
    try:
        summary = monitors.run_monitor(args.name, registry, wait_s=args.wait, job_id=args.job)
    except BaseException as exc:
        if args.job:
            jobs.finish(args.job, "failed", str(exc), registry)
        raise
    if args.job:
        jobs.finish(args.job, "succeeded", None, registry)
    result = summary.to_dict()
    lines = [f"Monitor {summary.monitor!r}: {summary.files_read:,} files read, {summary.rows_scored:,} rows scored, "
             f"{summary.history_rows:,} rows in the history, {summary.new_alerts:,} new alerts, deliveries "
             + (", ".join(f"{k} {v:,}" for k, v in summary.deliveries.items()) or "none")]
    lines += [f"  skipped {Path(s['path']).name}: {i18n.render(s['reason'], args.lang)}" for s in summary.skipped]
    lines += [f"  note: {i18n.render(n, args.lang)}" for n in summary.notes]
    cli._emit(result, args.json, lines)
    return cli.EXIT_OK


def cmd_monitor_serve(args: argparse.Namespace) -> int:
    from core.monitor_schedule import serve

    def report(name: str, outcome: Any) -> None:
        if isinstance(outcome, OpinionLabError):
            print(f"{name}: {outcome.render(args.lang)}", flush=True)
        elif isinstance(outcome, Exception):
            print(f"{name}: {i18n.t('cli.internal_error', args.lang, kind=type(outcome).__name__, detail=outcome)}",
                  flush=True)
        else:
            print(f"{name}: {outcome.rows_scored:,} rows scored, {outcome.new_alerts:,} new alerts, deliveries "
                  f"{outcome.deliveries or 'none'}", flush=True)

    runs = serve(once=args.once, poll_s=args.poll, report=report)
    cli._emit({"runs": runs}, args.json, [f"{runs:,} monitor runs."])
    return cli.EXIT_OK


def cmd_monitor_test(args: argparse.Namespace) -> int:
    from core import alerting, monitors

    monitor = monitors.get_monitor(args.name)
    channels = [c for c in monitor.channels if not args.channel or c.name == args.channel]
    if not channels:
        raise OpinionLabError("monitors.err.no_channel", name=monitor.name, channel=args.channel or "")
    alert = monitors.test_alert_for(monitor)
    results = {c.name: alerting.deliver(c, alert, monitor.lang, attempts=1) for c in channels}
    shown = {name: {"ok": r.ok, "answer": i18n.render(r.answer, args.lang)} for name, r in results.items()}
    cli._emit({"channels": shown}, args.json,
          [f"{name}: {'sent' if r['ok'] else 'failed'} ({r['answer']})" for name, r in shown.items()])
    failed = [name for name, r in shown.items() if not r["ok"]]
    if failed:
        print(i18n.t("cli.error", args.lang, message=i18n.t("monitors.err.test_failed", args.lang,
                                                             channels=", ".join(failed))), file=sys.stderr)
        return cli.EXIT_USER
    return cli.EXIT_OK


def add_parser(groups: Any) -> None:
    monitor = groups.add_parser("monitor", help="scheduled scoring of new posts, trends and alerts")
    verbs = monitor.add_subparsers(dest="verb", required=True, parser_class=cli._Parser)
    add = verbs.add_parser("add", help="save a monitor: model, source, columns, trend settings, channels")
    add.add_argument("name")
    add.add_argument("--model", required=True, help="the finished run whose model scores new posts")
    add.add_argument("--folder", help="a folder where new export files land")
    add.add_argument("--glob", help="a file pattern, e.g. '/data/exports/**/*.csv'")
    add.add_argument("--file", help="one file that grows (a log or an export appended to)")
    for role in ("text", "date", "group"):
        add.add_argument(f"--{role}-col", dest=f"{role}_col", help=f"the {role} column (default: detected)")
    cli._add_trend_settings_options(add)
    add.add_argument("--channel", action="append", help="KIND=SECRET_NAME[,SIGN_SECRET_NAME]; kinds: webhook, "
                     "slack, teams, dingtalk, wecom, feishu, lark, email (repeat for several)")
    add.add_argument("--interval", type=int, default=60, help="minutes between runs under 'monitor serve'")
    add.add_argument("--settle", type=int, default=60, help="skip files modified in the last N seconds")
    add.add_argument("--lookback", type=int, default=8, help="alert on spikes in the newest N periods only")
    add.add_argument("--alert-lang", dest="alert_lang", default="en", choices=list(i18n.LANGUAGES))
    add.set_defaults(func=cmd_monitor)
    verbs.add_parser("list", help="every monitor with its last run").set_defaults(func=cmd_monitor)
    for verb, helptext in (("show", "one monitor, its state and latest alerts"), ("remove", "delete a monitor")):
        verbs.add_parser(verb, help=helptext).set_defaults(func=cmd_monitor)
    run = verbs.add_parser("run", help="score what is new, recompute trends, deliver alerts")
    run.add_argument("--wait", type=float, default=0.0, help="seconds to wait if the monitor is running elsewhere")
    run.add_argument("--job", help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_monitor_run)
    serve = verbs.add_parser("serve", help="run every monitor on its interval (a long-lived process)")
    serve.add_argument("--once", action="store_true", help="one round of the due monitors, then exit (cron)")
    serve.add_argument("--poll", type=float, default=30.0, help="seconds between looks at the schedule")
    serve.set_defaults(func=cmd_monitor_serve)
    test = verbs.add_parser("test-alert", help="send a test alert to a monitor's channels")
    test.add_argument("--channel", help="only this channel (by name)")
    test.set_defaults(func=cmd_monitor_test)
    for verb, sub in verbs.choices.items():
        if verb in ("show", "remove", "run", "test-alert"):
            sub.add_argument("name", help="monitor name or id")
        sub.add_argument("--json", action="store_true", help="print one JSON object as the last line")
