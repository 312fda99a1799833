"""Which of the Trainer's checkpoints may be resumed from.

The Trainer writes ``checkpoints/checkpoint-N/`` file by file (weights, optimizer, scheduler,
random states, trainer state). A worker killed halfway leaves a folder that looks like a
checkpoint but is not one. So a checkpoint counts only once :func:`mark_complete` has written
its marker (after the Trainer's ``on_save``, i.e. after every file is on disk); resume picks the
newest marked one, and unmarked folders are removed before a run continues.
``checkpoints/latest.json`` names the newest complete checkpoint for people and pages.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

from core.workspace import atomic_write_json, read_json

MARKER = "opinionlab-complete.json"
POINTER = "latest.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def step_of(path: Path) -> int | None:
    match = _NAME.match(path.name)
    return int(match.group(1)) if match else None


def mark_complete(checkpoint: Path, **state: Any) -> None:
    """Record that ``checkpoint`` is whole, with our own state to restore on resume."""
    step = step_of(checkpoint)
    atomic_write_json(checkpoint / MARKER, {"step": step, **state})
    atomic_write_json(checkpoint.parent / POINTER, {"dir": checkpoint.name, "step": step})


def complete_checkpoints(root: Path) -> list[Path]:
    """Marked checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and step_of(p) is not None and (p / MARKER).exists()]
    return sorted(found, key=step_of)


def newest_complete(root: Path) -> Path | None:
    found = complete_checkpoints(root)
    return found[-1] if found else None


def marker_state(checkpoint: Path) -> dict[str, Any]:
    return read_json(checkpoint / MARKER, {}) or {}


def remove_incomplete(root: Path) -> list[str]:
    """After a crash: drop checkpoint folders without a marker (and stray temporary files).
    Returns the names removed."""
    if not root.is_dir():
        return []
    removed = []
    for path in root.iterdir():
        half_written = path.is_dir() and step_of(path) is not None and not (path / MARKER).exists()
        if not (half_written or path.name.startswith(".")):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path.name)
    newest = newest_complete(root)
    if newest is not None and (read_json(root / POINTER, {}) or {}).get("dir") != newest.name:
        atomic_write_json(root / POINTER, {"dir": newest.name, "step": step_of(newest)})
    return removed


def injected_kill(folder: Path, where: str, step: int) -> None:
    """Fault injection for tests: OPINIONLAB_INJECT_KILL=step:N or checkpoint:N makes the worker
    SIGKILL itself there, once per run (a marker file keeps the resumed worker alive);
    OPINIONLAB_INJECT_STOP=N sends it SIGTERM after step N, as ``jobs cancel`` would."""
    if where == "step" and os.environ.get("OPINIONLAB_INJECT_STOP") == str(step):
        os.kill(os.getpid(), signal.SIGTERM)
    wanted = os.environ.get("OPINIONLAB_INJECT_KILL")
    marker = Path(folder) / ".injected-kill"
    if wanted == f"{where}:{step}" and not marker.exists():
        marker.write_text(wanted)
        os.kill(os.getpid(), signal.SIGKILL)
