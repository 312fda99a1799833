"""Serving monitors: every monitor run on its own interval by one long-lived process.

``python -m core monitor serve`` (under systemd, see docs/monitors.md) or, from cron,
``monitor serve --once`` every few minutes. The web app never schedules anything itself; it
only reads the heartbeat this process writes, to say whether the schedule is being kept.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.monitors import Monitor, list_monitors, run_monitor, state_of
from core.workspace import Registry, atomic_write_json, read_json


def heartbeat_path(registry: Registry) -> Path:
    return registry.root / "monitors" / "serve.json"


def due(monitor: Monitor, registry: Registry, now: float) -> bool:
    last = state_of(monitor, registry).get("last_run_at")
    return last is None or now >= last + monitor.interval_minutes * 60


def serve(registry: Registry | None = None, once: bool = False, poll_s: float = 30.0,
          stop: threading.Event | None = None, report: Callable[[str, Any], None] = lambda *_: None) -> int:
    """Run each monitor whenever it is due until stopped (SIGTERM, SIGINT or ``stop``); with
    ``once``, one round (for cron). ``report(name, summary or error)`` hears of every run.
    Returns the number of runs."""
    registry = registry or Registry()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    predictors: dict = {}
    runs = 0
    while not stop.is_set():
        atomic_write_json(heartbeat_path(registry), {"pid": os.getpid(), "at": time.time(), "poll_s": poll_s})
        for monitor in list_monitors(registry):
            if stop.is_set() or not due(monitor, registry, time.time()):
                continue
            try:
                report(monitor.name, run_monitor(monitor.id, registry, predictors=predictors))
            except Exception as exc:  # recorded in the monitor's state; one monitor's fault stops no other
                report(monitor.name, exc)
            runs += 1
        if once:
            break
        monitors = list_monitors(registry)
        waits = [max(0.0, (state_of(m, registry).get("last_run_at") or 0) + m.interval_minutes * 60 - time.time())
                 for m in monitors]
        stop.wait(max(1.0, min([poll_s, *waits])))  # at least a second: a monitor locked elsewhere stays due
    return runs


def scheduler_alive(registry: Registry | None = None) -> bool:
    """Whether a ``monitor serve`` process has checked in within two of its polls."""
    beat = read_json(heartbeat_path(registry or Registry()), {}) or {}
    return bool(beat) and time.time() - float(beat.get("at", 0)) <= 2 * float(beat.get("poll_s", 30)) + 60
