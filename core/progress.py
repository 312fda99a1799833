"""Progress of a long job, written for pages to read: one writer for training and scoring.

A job folder holds ``progress.jsonl`` (one JSON object per line: ``{"event": ..., "time": ...,
...}``, appended, so a page that reloads sees the whole history) and ``status.json`` (the latest
state, replaced atomically, written at most once a second for routine updates so a fast job does
not spend its time rewriting a file). Under ``torchrun``/``accelerate launch`` only rank 0 writes.

Rates and ETAs come from :class:`RateMeter`: units per second over the recent past, with older
intervals forgotten exponentially, so the ETA follows the speed the machine has now (a busy
neighbour, a slow first step) rather than the mean since the start.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.workspace import atomic_write_json, read_json

PROGRESS_FILE = "progress.jsonl"
STATUS_FILE = "status.json"

# Seconds after which an interval's weight in the rate has halved: long enough to smooth out
# uneven batches (length-grouped batches differ 10x in cost), short enough to follow a machine
# that gets busier within a minute or two.
RATE_HALF_LIFE_S = 30.0


class RateMeter:
    """Units per second, exponentially weighted by time: ``rate = U / T`` where the units ``U``
    and the seconds ``T`` of each interval both decay by half every ``half_life_s`` seconds."""

    def __init__(self, half_life_s: float = RATE_HALF_LIFE_S):
        self.half_life_s = half_life_s
        self._units = 0.0
        self._seconds = 0.0
        self._last: float | None = None

    def start(self, now: float | None = None) -> None:
        """Start (or restart after a pause, such as an evaluation) the clock without counting."""
        self._last = time.monotonic() if now is None else now

    def update(self, units: float, now: float | None = None) -> float | None:
        """Count ``units`` done since the previous call; returns the smoothed rate."""
        now = time.monotonic() if now is None else now
        if self._last is None:
            self._last = now
            return self.rate
        elapsed = max(now - self._last, 0.0)
        self._last = now
        decay = 0.5 ** (elapsed / self.half_life_s)
        self._units = self._units * decay + units
        self._seconds = self._seconds * decay + elapsed
        return self.rate

    @property
    def rate(self) -> float | None:
        return self._units / self._seconds if self._seconds > 0 else None

    def eta(self, remaining_units: float) -> float | None:
        """Seconds left for ``remaining_units`` at the current rate (None before the first interval)."""
        rate = self.rate
        if not rate:
            return None
        return max(remaining_units, 0.0) / rate


def is_main_process() -> bool:
    """Rank 0 of a ``torchrun``/``accelerate launch`` launch, or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0


class ProgressWriter:
    """Appends events to ``progress.jsonl`` and keeps ``status.json`` current.

    ``on_status(status, record)`` is called after each status write (training mirrors the run's
    status into the registry there). ``main=False`` turns every write into a no-op."""

    def __init__(self, folder: Path, on_status: Callable[[str, dict[str, Any]], None] | None = None,
                 main: bool | None = None, status_every_s: float = 1.0):
        self.folder = Path(folder)
        self.on_status = on_status
        self.main = is_main_process() if main is None else main
        self.status_every_s = status_every_s
        self._last_status = float("-inf")

    @property
    def path(self) -> Path:
        return self.folder / PROGRESS_FILE

    def event(self, name: str, **values: Any) -> None:
        if not self.main:
            return
        line = json.dumps({"event": name, "time": time.time(), **values}, ensure_ascii=False, default=float)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def status(self, status: str, throttle: bool = False, **values: Any) -> None:
        """Merge ``values`` into status.json; ``throttle`` skips a routine update written too soon."""
        if not self.main:
            return
        now = time.monotonic()
        if throttle and now - self._last_status < self.status_every_s:
            return
        self._last_status = now
        previous = read_json(self.folder / STATUS_FILE, {}) or {}
        record = {**previous, "status": status, "pid": os.getpid(), "updated_at": time.time(), **values}
        atomic_write_json(self.folder / STATUS_FILE, record)
        if self.on_status is not None:
            self.on_status(status, record)


def read_progress(folder: Path | str) -> list[dict[str, Any]]:
    """Every readable line of a job's progress log (a line being written is skipped)."""
    path = Path(folder) / PROGRESS_FILE
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
