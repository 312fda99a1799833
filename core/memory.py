"""A run's peak memory, true for each run even when one process runs several (a search's trials,
``compare-methods --foreground``): ``reset_peak`` at a run's start, ``peak_mb`` at its end.

On Linux the resident high-water mark (``VmHWM`` in ``/proc/self/status``) is reset by writing 5
to ``/proc/self/clear_refs``; elsewhere ``ru_maxrss`` (the process's peak, never reset) is read and
``reset_peak`` says it could not reset. On CUDA the allocator's own peak is reset and read.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_runs = {"started": 0, "own_peak": True}


def start_run() -> None:
    """A run begins in this process: reset the peak. Where it cannot be reset, only the process's
    first run can tell its own peak; a later one reports none rather than an inherited figure."""
    reset = reset_peak()
    _runs["own_peak"] = reset or _runs["started"] == 0
    _runs["started"] += 1


def run_peak_mb(device: str = "cpu") -> int | None:
    """The peak of the run begun with ``start_run`` (None when it cannot be told apart)."""
    return peak_mb(device) if _runs["own_peak"] else None


def reset_peak() -> bool:
    """Start counting the peak afresh (resident memory, and CUDA's where this process uses it);
    False where the resident peak cannot be reset."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_mb(device: str = "cpu") -> int:
    """Peak memory in MiB since ``reset_peak``: GPU memory allocated on CUDA, else resident memory."""
    if device == "cuda":
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**20)
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10))
