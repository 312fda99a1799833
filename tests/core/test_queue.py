"""The queue: lanes with their own slots, honest "started" / "queued (2nd in line)" messages,
the registry's in-place upgrade, and duration estimates from what earlier runs measured.

Long jobs here are fake workers that block until they are stopped (no training, no sleeps);
waiting is for the worker's exit itself (a pidfd), with a bound."""

import contextlib
import datetime as dt
import json
import os
import select
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from core import estimates, jobs
from core.cli import main
from core.i18n import render
from core.training import TrainConfig, create_run
from core.workspace import SCHEMA_VERSION, Registry

BLOCK = [sys.executable, "-c", "import signal; signal.pause()"]  # a worker that runs until SIGTERM


def reap(job_id, timeout=300.0):
    """Wait (at most ``timeout`` s) for the job's worker to exit, reap it if it is our child, and
    return the job's final state."""
    pid = Registry().job(job_id)["pid"]
    if pid:
        with contextlib.suppress(ProcessLookupError):  # gone already
            handle = os.pidfd_open(pid)
            try:
                assert select.select([handle], [], [], timeout)[0], f"worker {pid} still runs after {timeout} s"
            finally:
                os.close(handle)
        with contextlib.suppress(ChildProcessError):  # started by another process, or reaped already
            os.waitpid(pid, 0)
    jobs.reconcile()
    return Registry().job(job_id)


def stop_all():
    """Cancel the queued jobs first (so nothing new starts), then stop and reap the running ones."""
    registry = Registry()
    for job in registry.jobs(("queued",)):
        jobs.cancel(job["id"], registry)
    for job in registry.jobs(("running",)):
        jobs.cancel(job["id"], registry)
        reap(job["id"])


@pytest.fixture
def fake_long_workers(monkeypatch):
    """Every job except baseline training runs a worker that blocks until it is stopped."""
    real = jobs.command_for

    def command_for(job, resume=False):
        config = json.loads(Path(job["config_path"]).read_text(encoding="utf-8"))
        return real(job, resume) if config.get("method") == "baseline" else BLOCK

    monkeypatch.setattr(jobs, "command_for", command_for)
    monkeypatch.setattr(jobs, "capacity", lambda: 1)  # one long slot, as on a CPU-only machine
    yield
    stop_all()


def full_run(model_dir):
    return create_run(TrainConfig(dataset="easy", model=str(model_dir), method="full", max_length=32, batch_size=8))


def baseline_run_folder():
    return create_run(TrainConfig(dataset="easy", method="baseline"))


def test_a_baseline_starts_and_finishes_while_a_fine_tune_runs(easy_dataset, tiny_model_dir, fake_long_workers):
    fine_tune = jobs.submit(full_run(tiny_model_dir))
    waiting = jobs.submit(full_run(tiny_model_dir))
    assert (fine_tune["status"], fine_tune["lane"]) == ("running", "long")
    assert (waiting["status"], jobs.describe(waiting).position) == ("queued", 1)
    assert str(jobs.queue_message(waiting)) == "queued (1st in line)"

    baseline = jobs.submit(baseline_run_folder())
    assert (baseline["status"], baseline["lane"]) == ("running", "quick")
    assert str(jobs.queue_message(baseline)) == "started"
    assert reap(baseline["id"])["status"] == "succeeded"  # a real worker, done while the fine-tune runs
    registry = Registry()
    assert registry.job(fine_tune["id"])["status"] == "running" and jobs._pid_alive(registry.job(fine_tune["id"])["pid"])
    assert registry.job(waiting["id"])["status"] == "queued"
    assert (registry.root / "runs" / baseline["target"] / "model" / "labels.json").exists()


def test_each_lane_has_its_own_slots_and_line(easy_dataset, tiny_model_dir, fake_long_workers, monkeypatch):
    monkeypatch.setattr(jobs, "command_for", lambda job, resume=False: BLOCK)  # quick workers block too
    monkeypatch.setenv("OPINIONLAB_QUICK_SLOTS", "2")
    long_jobs = [jobs.submit(full_run(tiny_model_dir)) for _ in range(3)]
    quick_jobs = [jobs.submit(baseline_run_folder()) for _ in range(4)]
    described = [jobs.describe(Registry().job(j["id"])) for j in long_jobs + quick_jobs]
    assert [(d.lane, d.status, d.position) for d in described] == [
        ("long", "running", None), ("long", "queued", 1), ("long", "queued", 2),
        ("quick", "running", None), ("quick", "running", None), ("quick", "queued", 1), ("quick", "queued", 2)]
    assert [render(jobs.queue_message(j), "en") for j in long_jobs[1:]] == ["queued (1st in line)",
                                                                           "queued (2nd in line)"]
    assert render(jobs.queue_message(long_jobs[2]), "zh") == "排队中（第 2 位）"
    running = Registry().jobs(("running",))
    assert sorted((j["lane"], j["info"]["slot"]) for j in running) == [("long", 0), ("quick", 0), ("quick", 1)]

    jobs.move(long_jobs[2]["id"], "up")  # reordering stays inside the lane
    assert jobs.describe(Registry().job(long_jobs[2]["id"])).position == 1
    assert jobs.describe(Registry().job(quick_jobs[2]["id"])).position == 1
    jobs.cancel(quick_jobs[0]["id"])
    reap(quick_jobs[0]["id"])
    jobs.schedule()  # a finishing worker does this; here the stopped one could not
    assert Registry().job(quick_jobs[2]["id"])["status"] == "running"
    assert Registry().job(long_jobs[1]["id"])["status"] == "queued"


def test_claiming_never_exceeds_the_slots(workspace):
    registry = Registry()
    for i in range(3):
        registry.add_job(f"job_{i}", "train", f"run_{i}", "/nowhere/config.json", None, lane="quick")
    claimed = [registry.claim_job("quick", 2) for _ in range(3)]
    assert [c["id"] if c else None for c in claimed] == ["job_0", "job_1", None]
    assert [c["info"]["slot"] for c in claimed[:2]] == [0, 1]
    assert registry.claim_job("long", 1) is None  # nothing queued there
    assert registry.place_in_line("job_2") == 1 and registry.place_in_line("job_0") is None


def test_a_missing_config_fails_the_job_with_a_message(workspace):
    registry = Registry()
    registry.add_job("job_x", "train", "run_x", "/nowhere/config.json", None)
    jobs.schedule(registry)
    shown = jobs.describe(registry.job("job_x"), registry)
    assert shown.status == "failed" and "config" in shown.error
    assert "设置文件" in render(shown.error_message, "zh")


def test_small_scoring_jobs_and_baselines_take_the_quick_lane(workspace, tmp_path):
    registry = Registry()
    model = registry.root / "runs" / "run_t" / "model"
    model.mkdir(parents=True)
    (model / "labels.json").write_text(json.dumps({"labels": ["a", "b"], "kind": "transformer"}))
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_text("text\n" + "nice\n" * 100)
    large.write_text("text\n" + "x" * (jobs.QUICK_SCORE_BYTES + 1))
    for name, source in (("small", small), ("large", large)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"run_id": "run_t", "input": str(source)}))
    assert jobs.lane_for("score", tmp_path / "small.json", registry) == "quick"
    assert jobs.lane_for("score", tmp_path / "large.json", registry) == "long"
    (model / "labels.json").write_text(json.dumps({"labels": ["a", "b"], "kind": "baseline"}))
    assert jobs.lane_for("score", tmp_path / "large.json", registry) == "quick"
    (tmp_path / "train.json").write_text(json.dumps({"method": "lora"}))
    assert jobs.lane_for("train", tmp_path / "train.json", registry) == "long"


def test_cli_submit_json_says_queued_and_the_place(easy_dataset, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(jobs, "capacity", lambda: 0)  # the long lane is full: the run waits
    args = ["jobs", "submit", "--dataset", "easy", "--model", str(tiny_model_dir), "--max-length", "32",
            "--batch-size", "8", "--json"]
    assert main(args) == 0
    assert main(args) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[-2:])
    assert (first["status"], first["position"], first["message"]) == ("queued", 1, "queued (1st in line)")
    assert (second["status"], second["position"], second["message"]) == ("queued", 2, "queued (2nd in line)")
    assert first["lane"] == "long" and first["name"].startswith("easy · full fine-tune · tiny-bert")
    assert first["estimate"]["basis"] == "guess" and first["estimate"]["seconds"] > 0
    assert main(["jobs", "list"]) == 0
    assert "(2nd in line)" in capsys.readouterr().out


OLD_SCHEMA = """
CREATE TABLE datasets (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at REAL NOT NULL,
    created_by TEXT, rows INTEGER NOT NULL, card TEXT NOT NULL);
CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT, dataset_id TEXT, created_at REAL NOT NULL,
    created_by TEXT, status TEXT NOT NULL, info TEXT NOT NULL DEFAULT '{}');
CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at REAL NOT NULL, created_by TEXT,
    status TEXT NOT NULL, position REAL NOT NULL, pid INTEGER, run_id TEXT, config_path TEXT, error TEXT,
    info TEXT NOT NULL DEFAULT '{}');
INSERT INTO runs VALUES ('run_old1', 'movie-reviews', 'ds_1', 1795000000, 'ann', 'succeeded',
    '{"method": "lora", "model": "default"}');
INSERT INTO runs VALUES ('run_old2', 'movie-reviews', 'ds_1', 1795000100, NULL, 'queued', '{"method": "baseline"}');
INSERT INTO jobs VALUES ('job_1', 'train', 1795000000, 'ann', 'succeeded', 1, NULL, 'run_old1', '/x/config.json',
    NULL, '{}');
INSERT INTO jobs VALUES ('job_2', 'train', 1795000100, NULL, 'queued', 2, NULL, 'run_old2', '/y/config.json',
    NULL, '{}');
"""


def test_an_old_registry_is_upgraded_in_place(workspace):
    from core.runs import list_runs

    workspace.mkdir(parents=True)
    db = sqlite3.connect(workspace / "registry.sqlite")
    db.executescript(OLD_SCHEMA)
    db.close()
    registry = Registry()
    old1, old2 = registry.run("run_old1"), registry.run("run_old2")
    assert (old1["dataset"], old1["name"], old1["created_by"]) == ("movie-reviews", None, "ann")
    assert old2["dataset"] == "movie-reviews" and old2["info"] == {"method": "baseline"}
    assert (registry.job("job_1")["lane"], registry.job("job_2")["lane"]) == ("long", "quick")
    names = {r["id"]: r["name"] for r in list_runs(registry)}
    day = dt.datetime.fromtimestamp(1795000000)
    assert names["run_old1"].startswith("movie-reviews · LoRA · MiniLM · ") and str(day.day) in names["run_old1"]
    Registry()  # opening it again changes nothing
    check = sqlite3.connect(workspace / "registry.sqlite")
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert check.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# Estimates --------------------------------------------------------------------------------
def fake_past_run(registry, model, method="full", max_length=128, rate=10.0, device="cpu", startup=30.0):
    """A finished run (3 epochs, batch 8) whose progress log says: ``startup`` seconds to the first
    step, ``rate`` training samples/s, then 10 s of evaluation and 30 s more to the end."""
    folder = create_run(TrainConfig(dataset="easy", model=model, method=method, max_length=max_length,
                                    batch_size=8), registry)
    start = time.time() - 1000
    events = [{"event": "start", "time": start}, {"event": "model", "time": start + 1, "device": device}]
    events += [{"event": "step", "time": start + startup + i, "step": i + 1, "samples_per_s": rate}
               for i in range(6)]
    events += [{"event": "eval", "time": start + startup + 15}, {"event": "done", "time": start + startup + 45}]
    folder.joinpath("progress.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return folder


def split_rows(registry):
    counts = registry.dataset("easy")["card"]["split_counts"]
    return {split: sum(c.values()) for split, c in counts.items()}


def test_no_earlier_runs_is_a_rough_guess(easy_dataset, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(jobs, "_gpu_count", lambda: 0)
    estimate = estimates.estimate_training(TrainConfig(dataset="easy", model="default", max_length=128))
    assert (estimate.basis, estimate.runs, estimate.device) == ("guess", 0, "cpu")
    assert render(estimate.message) == "no earlier runs: rough guess"
    assert estimate.samples_per_s == pytest.approx(14.3 / estimates.BUSY_FACTOR)
    baseline = estimates.estimate_training(TrainConfig(dataset="easy", method="baseline"))
    assert baseline.basis == "guess" and baseline.seconds == pytest.approx(5 + 0.003 * baseline.train_rows)


def test_estimate_from_earlier_runs_with_the_same_settings(easy_dataset, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(jobs, "_gpu_count", lambda: 0)
    registry = Registry()
    model = str(tiny_model_dir)
    fake_past_run(registry, model, rate=10.0, startup=30.0)
    fake_past_run(registry, model, rate=12.0, startup=50.0)
    fake_past_run(registry, model, rate=99.0, device="cuda")  # another device: not used on this CPU
    config = TrainConfig(dataset="easy", model=model, method="full", max_length=128, epochs=2, batch_size=8,
                         max_eval_rows=0)
    estimate = estimates.estimate_training(config, registry)
    assert (estimate.basis, estimate.runs, estimate.samples_per_s) == ("measured", 2, 11.0)
    assert render(estimate.message) == "based on 2 earlier runs with these settings on this machine"
    rows = split_rows(registry)
    # the earlier runs (3 epochs) evaluated 3 validation passes, then validation and test, in 40 s
    eval_per_s = (3 * rows["validation"] + rows["validation"] + rows["test"]) / 40
    assert all(m.eval_per_s == pytest.approx(eval_per_s) for m in estimates.measured_runs(registry))
    # this one: 2 epochs of training rows at 11 samples/s; 2 validation passes, then validation and test
    read = 2 * rows["validation"] + rows["validation"] + rows["test"]
    assert estimate.seconds == pytest.approx(40.0 + rows["train"] * 2 / 11.0 + read / eval_per_s)


def test_other_lengths_and_methods_are_scaled(easy_dataset, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(jobs, "_gpu_count", lambda: 0)
    registry = Registry()
    fake_past_run(registry, str(tiny_model_dir), max_length=64, rate=20.0)
    config = TrainConfig(dataset="easy", model=str(tiny_model_dir), method="lora", max_length=128)
    estimate = estimates.estimate_training(config, registry)
    assert estimate.basis == "scaled" and estimate.runs == 1
    assert estimate.samples_per_s == pytest.approx(20.0 * 0.5 * 1.25)  # half as fast at twice the length; LoRA 1.25×
    assert render(estimate.message, "zh") == "由本机此前 1 次同一模型、不同设置的运行换算而来"


def test_baseline_estimate_from_earlier_baselines(easy_dataset, baseline_run, monkeypatch):
    registry = Registry()
    estimate = estimates.estimate_training(TrainConfig(dataset="easy", method="baseline", limit=40), registry)
    assert (estimate.basis, estimate.runs, estimate.train_rows) == ("measured", 1, 40)
    measured = next(m for m in estimates.measured_runs(registry) if m.run_id == baseline_run)
    assert estimate.seconds == pytest.approx(max(1.0, measured.seconds / measured.train_rows * 40))


def test_the_estimate_counts_the_rows_per_class_draws(easy_dataset, baseline_run):
    """A comparison cell of 8 per class trains on 16 rows, and its estimate says so."""
    registry = Registry()
    per_label = registry.dataset("easy")["card"]["split_counts"]["train"]
    assert estimates.training_rows(per_label, 0, 8) == 8 * len(per_label)
    assert estimates.training_rows({"a": 3, "b": 40}, 0, 8) == 11  # all of a smaller class
    assert estimates.training_rows({"a": 3, "b": 40}, 5, 8) == 5 and estimates.training_rows({"a": 3, "b": 40}) == 43
    estimate = estimates.estimate_training(TrainConfig(dataset="easy", method="baseline", per_class=8), registry)
    assert estimate.train_rows == 8 * len(per_label)
