"""Job lifecycle with real worker processes (the tiny model, so each run takes seconds).

Waiting is bounded polling of the worker's own files, never a fixed sleep."""

import os
import signal
import subprocess
import sys
import time

import pytest

from core import jobs
from core.errors import ConfigError
from core.modeling.checkpoints import MARKER, newest_complete
from core.training import create_run, read_progress
from core.workspace import Registry, read_json
from tests.core.test_training import tiny_config


def wait_for(predicate, timeout=240.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def job_status(job_id):
    jobs.reconcile()
    return Registry().job(job_id)["status"]


def wait_done(job_id, timeout=240.0):
    status = wait_for(lambda: job_status(job_id) not in ("queued", "running") and job_status(job_id),
                      timeout, f"job {job_id} to end")
    job = Registry().job(job_id)
    log = Registry().root / "runs" / job["target"] / "worker.log"
    print(f"job {job_id}: {status} ({job['error']})\n" + (log.read_text()[-3000:] if log.exists() else ""))
    return status


def last_step(run_dir):
    steps = [e["step"] for e in read_progress(run_dir) if e["event"] == "step"]
    return steps[-1] if steps else 0


def test_submit_runs_to_success_with_the_cli_command(easy_dataset, tiny_model_dir):
    folder = create_run(tiny_config(tiny_model_dir, epochs=2))
    job = jobs.submit(folder)
    assert job["status"] == "running" and job["pid"]
    described = jobs.describe(job)
    assert "-m core train --config" in described.command and str(folder / "config.json") in described.command
    assert wait_done(job["id"]) == "succeeded"
    shown = jobs.describe(Registry().job(job["id"]))
    assert shown.done == shown.total > 0 and shown.error is None
    assert (folder / "model" / "model.safetensors").exists()


def test_one_job_at_a_time_on_cpu_and_queue_order(easy_dataset, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(jobs, "capacity", lambda: 1)
    first = jobs.submit(create_run(tiny_config(tiny_model_dir, epochs=2)))
    second = jobs.submit(create_run(tiny_config(tiny_model_dir, epochs=2)))
    third = jobs.submit(create_run(tiny_config(tiny_model_dir, epochs=2)))
    assert (first["status"], second["status"], third["status"]) == ("running", "queued", "queued")
    jobs.move(third["id"], "up")
    assert [j["id"] for j in Registry().jobs(("queued",))] == [third["id"], second["id"]]
    jobs.cancel(second["id"])
    assert job_status(second["id"]) == "cancelled"
    assert wait_done(first["id"]) == "succeeded"
    # the first worker started the next queued job as it ended
    assert wait_done(third["id"]) == "succeeded"
    assert job_status(second["id"]) == "cancelled"


def test_stop_is_cooperative_and_resume_finishes_the_planned_steps(easy_dataset, tiny_model_dir):
    folder = create_run(tiny_config(tiny_model_dir, epochs=20, checkpoint_every=5, eval_every=1000))
    job = jobs.submit(folder)
    wait_for(lambda: last_step(folder) >= 3, what="a few steps")
    jobs.cancel(job["id"])
    assert wait_done(job["id"]) == "cancelled"
    status = read_json(folder / "status.json")
    assert status["status"] == "cancelled"
    pointer = read_json(folder / "checkpoints" / "latest.json")
    assert pointer["step"] == status["step"] and (folder / "checkpoints" / pointer["dir"] / MARKER).exists()
    jobs.resume(job["id"])
    assert wait_done(job["id"]) == "succeeded"
    metrics = read_json(folder / "metrics.json")
    assert metrics["steps"] == metrics["total_steps"] == 12 * 20
    assert any(e["event"] == "resumed" for e in read_progress(folder))


@pytest.mark.parametrize("kill_at", [2, 7])
def test_sigkill_shows_interrupted_and_resume_completes(easy_dataset, tiny_model_dir, kill_at):
    folder = create_run(tiny_config(tiny_model_dir, epochs=15, checkpoint_every=3, eval_every=1000))
    job = jobs.submit(folder)
    wait_for(lambda: last_step(folder) >= kill_at, what=f"step {kill_at}")
    os.kill(Registry().job(job["id"])["pid"], signal.SIGKILL)
    assert wait_for(lambda: job_status(job["id"]) == "interrupted", what="interrupted")
    assert "unexpectedly" in Registry().job(job["id"])["error"]
    jobs.resume(job["id"])
    assert wait_done(job["id"]) == "succeeded"
    metrics = read_json(folder / "metrics.json")
    assert metrics["steps"] == metrics["total_steps"] == 12 * 15


CHECKPOINT_FILES = {"model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json",
                    MARKER}


@pytest.mark.parametrize("kill", ["step:1", "checkpoint:3", "step:5", "checkpoint:9", "step:13", "checkpoint:15"])
def test_sigkill_at_injected_points_including_checkpoint_writes(easy_dataset, tiny_model_dir, monkeypatch, kill):
    """The worker kills itself exactly there (after step N, or with checkpoint N half-written:
    its weights on disk, its optimizer not yet): interrupted, never a half-written checkpoint in
    use, resumed to the planned steps."""
    monkeypatch.setenv("OPINIONLAB_INJECT_KILL", kill)
    folder = create_run(tiny_config(tiny_model_dir, epochs=2, checkpoint_every=3, eval_every=1000))
    job = jobs.submit(folder)
    assert wait_for(lambda: job_status(job["id"]) == "interrupted", what="interrupted")
    registry = Registry()
    assert registry.run(folder.name)["status"] == "interrupted" and registry.job(job["id"])["status"] == "interrupted"
    root = folder / "checkpoints"
    pointer = read_json(root / "latest.json")
    where, step = kill.split(":")
    expected = (int(step) // 3) * 3 - (3 if where == "checkpoint" else 0)  # the last checkpoint completed
    if expected:
        assert pointer == {"dir": f"checkpoint-{expected}", "step": expected}
        assert {p.name for p in (root / pointer["dir"]).iterdir()} >= CHECKPOINT_FILES
        assert newest_complete(root) == root / f"checkpoint-{expected}"
    else:
        assert pointer is None and newest_complete(root) is None
    if where == "checkpoint":  # the half-written one is there, but never marked complete
        half = root / f"checkpoint-{step}"
        assert (half / "model.safetensors").exists() and not (half / "optimizer.pt").exists()
        assert not (half / MARKER).exists()
    else:
        assert not (root / f"checkpoint-{step}").exists()
    jobs.resume(job["id"])
    assert wait_done(job["id"]) == "succeeded"
    metrics = read_json(folder / "metrics.json")
    assert metrics["steps"] == metrics["total_steps"] == 12 * 2
    resumed = [e for e in read_progress(folder) if e["event"] == "resumed"]
    assert [e["step"] for e in resumed] == ([expected] if expected else [])  # nothing saved yet: from the start
    assert not root.exists()  # checkpoints are cleared once the model is saved
    assert registry.run(folder.name)["status"] == "succeeded"


def test_dataset_deleted_while_the_job_waits(easy_dataset, tiny_model_dir, monkeypatch):
    from core.datasets import remove_dataset

    monkeypatch.setattr(jobs, "capacity", lambda: 0)  # nothing may start yet
    folder = create_run(tiny_config(tiny_model_dir))
    job = jobs.submit(folder)
    assert job["status"] == "queued"
    remove_dataset("easy")
    monkeypatch.setattr(jobs, "capacity", lambda: 1)
    jobs.schedule()
    assert wait_done(job["id"]) == "failed"
    assert "dataset missing" in jobs.describe(Registry().job(job["id"])).error


def test_cannot_resume_a_running_or_succeeded_job(easy_dataset, tiny_model_dir):
    job = jobs.submit(create_run(tiny_config(tiny_model_dir, epochs=1)))
    assert wait_done(job["id"]) == "succeeded"
    with pytest.raises(ConfigError, match="only cancelled, interrupted or failed"):
        jobs.resume(job["id"])
    with pytest.raises(ConfigError, match="only queued or running"):
        jobs.cancel(job["id"])


def test_cli_jobs_submit_show_json(easy_dataset, tiny_model_dir, workspace):
    import json

    env = {**os.environ, "OPINIONLAB_HOME": str(workspace)}
    out = subprocess.run([sys.executable, "-m", "core", "jobs", "submit", "--dataset", "easy", "--model",
                          str(tiny_model_dir), "--epochs", "1", "--batch-size", "8", "--max-length", "32", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    job_id = json.loads(out.stdout.strip().splitlines()[-1])["id"]
    assert wait_done(job_id) == "succeeded"
    shown = subprocess.run([sys.executable, "-m", "core", "jobs", "show", job_id, "--json"],
                           capture_output=True, text=True, env=env, timeout=300)
    data = json.loads(shown.stdout.strip().splitlines()[-1])
    assert {"id", "kind", "status", "pid", "step", "total_steps", "run_dir", "error"} <= set(data)
    assert data["status"] == "succeeded" and data["step"] == data["total_steps"]
    bad = subprocess.run([sys.executable, "-m", "core", "jobs", "submit", "--dataset", "easy", "--lr", "0"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "Learning rate 0" in bad.stderr


def test_each_gpu_job_gets_its_own_device(easy_dataset, tiny_model_dir, monkeypatch):
    started = []

    class FakeProc:
        pid = 999_999_999

    def fake_popen(cmd, env=None, **kwargs):
        started.append(env.get("CUDA_VISIBLE_DEVICES"))
        return FakeProc()

    monkeypatch.setattr(jobs, "_gpu_count", lambda: 2)
    monkeypatch.setattr(jobs, "_pid_alive", lambda pid, started=None: True)
    monkeypatch.setattr(jobs.subprocess, "Popen", fake_popen)
    submitted = [jobs.submit(create_run(tiny_config(tiny_model_dir))) for _ in range(3)]
    assert started == ["0", "1"]
    assert [j["status"] for j in submitted] == ["running", "running", "queued"]


def test_an_old_registry_gets_the_target_column_in_place(workspace):
    """A registry written before jobs had a kind-neutral target column keeps its jobs."""
    import sqlite3

    registry = Registry()
    path = registry.root / "registry.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE jobs RENAME COLUMN target TO run_id")
        db.execute("INSERT INTO jobs (id, kind, created_at, status, position, run_id, config_path) "
                   "VALUES ('job_old', 'score', 1.0, 'succeeded', 1, 'score_old', '/x/score.json')")
        db.execute("PRAGMA user_version = 2")
    job = Registry().job("job_old")
    assert job["target"] == "score_old" and "run_id" not in job
    shown = jobs.describe(job)
    assert shown.folder == Registry().root / "scores" / "score_old" and shown.unit == "rows"
    assert shown.to_dict()["run_id"] == "score_old"  # the JSON key other tools read stays


def test_every_kind_builds_its_own_command_and_an_unknown_kind_is_refused(workspace):
    from core.errors import ConfigError
    from core.job_kinds import KINDS

    made = {name: jobs.command_for({"kind": name, "target": "t1", "config_path": "/c.json", "id": "j1"})
            for name in KINDS}
    assert made["train"][-4:] == ["--config", "/c.json", "--job", "j1"]
    assert made["score"][3:5] == ["score", "--config"] and made["monitor"][3:6] == ["monitor", "run", "t1"]
    with pytest.raises(ConfigError, match="kind 'export'"):
        jobs.command_for({"kind": "export", "target": "t1", "config_path": "/c.json", "id": "j1"})
