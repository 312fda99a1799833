"""The one progress writer: JSON lines, a throttled status file, a smoothed rate and ETA."""

import pytest

from core.progress import ProgressWriter, RateMeter, read_progress
from core.workspace import read_json


def test_the_rate_follows_the_recent_speed_not_the_mean_since_the_start():
    meter = RateMeter(half_life_s=30)
    meter.start(now=0.0)
    meter.update(10, now=100.0)  # a slow start: 0.1 units/s (model loading, first step)
    for second in range(101, 401):  # then 10 units/s for five minutes
        meter.update(10, now=float(second))
    mean_since_start = (10 + 300 * 10) / 400
    assert meter.rate == pytest.approx(10, rel=0.01)
    assert mean_since_start < 7.6
    assert meter.eta(600) == pytest.approx(60, rel=0.01)


def test_the_rate_drops_within_a_minute_when_the_machine_gets_busy():
    meter = RateMeter(half_life_s=30)
    meter.start(now=0.0)
    for second in range(1, 301):
        meter.update(10, now=float(second))
    for second in range(301, 361):  # a neighbour takes half the machine
        meter.update(5, now=float(second))
    assert 5 < meter.rate < 6.5


def test_a_pause_is_not_counted_and_nothing_is_known_before_the_first_interval():
    meter = RateMeter()
    assert meter.rate is None and meter.eta(100) is None
    meter.start(now=0.0)
    meter.update(20, now=2.0)
    meter.start(now=500.0)  # an evaluation ran from 2 s to 500 s
    meter.update(20, now=502.0)
    assert meter.rate == pytest.approx(10)


def test_writer_appends_events_and_throttles_routine_status(tmp_path):
    seen = []
    writer = ProgressWriter(tmp_path, on_status=lambda status, record: seen.append((status, record["step"])),
                            main=True, status_every_s=3600)
    writer.event("step", step=1, loss=0.5)
    writer.status("running", step=1)
    writer.status("running", throttle=True, step=2)  # skipped: written too soon
    assert read_json(tmp_path / "status.json")["step"] == 1
    writer.status("succeeded", step=3)  # not throttled: always written
    assert read_json(tmp_path / "status.json")["status"] == "succeeded"
    assert seen == [("running", 1), ("succeeded", 3)]
    with open(tmp_path / "progress.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"event": "step", "ste')  # a line being written when a page reads
    assert [e["event"] for e in read_progress(tmp_path)] == ["step"]


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    writer = ProgressWriter(tmp_path)
    writer.event("start")
    writer.status("running")
    assert list(tmp_path.iterdir()) == []
