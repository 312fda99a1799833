"""A run's peak memory is its own, even after an earlier run in the same process (a search's
trials, compare-methods --foreground)."""

import sys

import numpy as np
import pytest

from core import memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the resident peak resets on Linux only")
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
