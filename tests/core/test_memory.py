"""A run's peak memory is its own, even after an earlier run in the same process (a search's
trials, compare-methods --foreground)."""

import numpy as np
import pytest

from core import memory


@pytest.mark.skipif(not memory.reset_peak(), reason="this system does not let a process reset its resident peak")
def test_the_peak_is_counted_afresh_after_a_reset():
    assert memory.reset_peak()
    before = memory.peak_mb()
    block = np.ones(300 * 2**20, dtype=np.uint8)  # 300 MiB, every page touched
    high = memory.peak_mb()
    assert high >= before + 250
    del block
    assert memory.peak_mb() == high  # a peak stays until reset
    memory.reset_peak()
    assert memory.peak_mb() < high - 200  # the next run does not inherit it


def test_where_the_peak_cannot_be_reset_a_later_run_reports_none(monkeypatch, tmp_path):
    """Only the process's first run can tell its own peak then; an inherited figure is never shown."""
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    monkeypatch.setattr(memory, "_runs", {"started": 0, "own_peak": True})
    memory.start_run()
    assert memory.run_peak_mb() > 10
    memory.start_run()
    assert memory.run_peak_mb() is None
