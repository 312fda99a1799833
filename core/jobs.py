"""Background jobs: a config file plus the CLI command that carries it out, in its own process.

States: queued → running → succeeded | failed | cancelled | interrupted. One training job runs
per GPU (one at a time on a CPU); when a job ends, its worker starts the next queued one, so no
daemon is needed. A worker that died without saying so (SIGKILL, a machine restart) is found by
``reconcile`` (its PID is gone) and shown as interrupted, resumable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.errors import ConfigError, NotFoundError
from core.workspace import Registry, new_id, read_json

ACTIVE = ("queued", "running")
RESUMABLE = ("cancelled", "interrupted", "failed")
ROOT = Path(__file__).resolve().parents[1]


def capacity() -> int:
    """How many training jobs may run at once: one per GPU, one on a CPU-only machine."""
    return max(1, _gpu_count())


def _pid_alive(pid: int | None, started: float | None = None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        if state in ("Z", "X"):
            return False
    except OSError:
        pass
    return True


def command_for(job: dict[str, Any], resume: bool = False) -> list[str]:
    """The exact command a worker runs; the Train page shows it."""
    if job["kind"] == "score":  # scoring resumes by itself from the parts already written
        return [sys.executable, "-m", "core", "score", "--config", job["config_path"], "--job", job["id"]]
    if job["kind"] == "monitor":  # one run of a monitor; its folder (the job's run_id) is its id
        return [sys.executable, "-m", "core", "monitor", "run", job["run_id"], "--job", job["id"]]
    cmd = [sys.executable, "-m", "core", "train", "--config", job["config_path"], "--job", job["id"]]
    return cmd + (["--resume"] if resume else [])


def submit(run_dir: Path, registry: Registry | None = None, created_by: str | None = None,
           kind: str = "train", job_id: str | None = None) -> dict[str, Any]:
    """Queue the run (or scoring job) in ``run_dir`` and start it if there is capacity.

    ``job_id`` lets a kind of work use its own id as the job's (a scoring job has one id)."""
    registry = registry or Registry()
    run_id = Path(run_dir).name
    job_id = job_id or new_id("job")
    config = "score.json" if kind == "score" else "config.json"
    registry.add_job(job_id, kind, run_id, str(Path(run_dir) / config), created_by)
    schedule(registry)
    return registry.job(job_id)


def reconcile(registry: Registry | None = None) -> list[str]:
    """Mark running jobs whose worker is gone as interrupted. Returns their ids."""
    registry = registry or Registry()
    lost = []
    for job in registry.jobs(("running",)):
        if job["pid"] is None:  # claimed by a scheduler that is starting it right now
            continue
        if not _pid_alive(job["pid"]) and registry.update_job(
                job["id"], expect=("running",), status="interrupted",
                error="the worker stopped unexpectedly (killed or machine restarted); resume it"):
            if job["kind"] == "train":
                registry.update_run(job["run_id"], "interrupted", {"reason": "worker stopped unexpectedly"})
            lost.append(job["id"])
    return lost


def schedule(registry: Registry | None = None) -> list[str]:
    """Start queued jobs, oldest position first, while there is capacity. Returns started ids."""
    registry = registry or Registry()
    reconcile(registry)
    started = []
    slots = capacity()
    running = registry.jobs(("running",))
    free_gpus = sorted(set(range(slots)) - {j["info"].get("gpu") for j in running})
    free = slots - len(running)
    for job in registry.jobs(("queued",)):
        if free <= 0:
            break
        if not Path(job["config_path"]).exists():
            registry.update_job(job["id"], expect=("queued",), status="failed", error="the run's config file is missing")
            continue
        resume = bool(job["info"].get("resume"))
        gpu = free_gpus.pop(0) if free_gpus and _gpu_count() else None
        # claim the job before starting it, so two schedulers never start the same one
        if not registry.update_job(job["id"], expect=("queued",), status="running", pid=None, error=None,
                                   info={**job["info"], "gpu": gpu}):
            continue
        with open(Path(job["config_path"]).parent / "worker.log", "ab") as log:
            proc = subprocess.Popen(command_for(job, resume), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=_worker_env(gpu))
        registry.update_job(job["id"], pid=proc.pid)
        started.append(job["id"])
        free -= 1
    return started


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # torch missing or broken: no GPUs
        return 0


def _worker_env(gpu: int | None = None) -> dict[str, str]:
    """The worker's environment; on a multi-GPU machine each job sees only its own GPU."""
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def get(job_id: str, registry: Registry | None = None) -> dict[str, Any]:
    registry = registry or Registry()
    reconcile(registry)
    job = registry.job(job_id)
    if job is None:
        raise NotFoundError(f"There is no job {job_id!r}. List them with: python -m core jobs list")
    return job


def describe(job: dict[str, Any], registry: Registry | None = None) -> dict[str, Any]:
    """The job with its run's live status (step, total steps, ETA) read from the run folder."""
    registry = registry or Registry()
    run_dir = registry.root / ("scores" if job["kind"] == "score" else "runs") / job["run_id"]
    status = read_json(run_dir / "status.json", {}) or {}
    done, total = ("rows_done", "total_rows") if job["kind"] == "score" else ("step", "total_steps")
    return {
        "id": job["id"], "kind": job["kind"], "status": job["status"], "pid": job["pid"],
        "run_id": job["run_id"], "run_dir": str(run_dir), "step": status.get(done, 0) or 0,
        "total_steps": status.get(total, 0) or 0, "eta_s": status.get("eta_s"),
        "rows_per_s": status.get("rows_per_s"), "summary": status.get("summary"),
        "fast_agreement": status.get("fast_agreement"),
        "error": job["error"] or (status.get("reason") if job["status"] == "failed" else None),
        "metrics": status.get("metrics"), "created_at": job["created_at"], "position": job["position"],
        "created_by": job["created_by"], "command": " ".join(command_for(job, bool(job["info"].get("resume")))),
    }


def cancel(job_id: str, registry: Registry | None = None) -> dict[str, Any]:
    """Queued: cancelled at once. Running: asked to stop (it finishes the step and checkpoints)."""
    registry = registry or Registry()
    job = get(job_id, registry)
    if job["status"] == "queued":
        registry.update_job(job["id"], expect=("queued",), status="cancelled")
    elif job["status"] == "running":
        if job["pid"] and _pid_alive(job["pid"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(job["pid"], signal.SIGTERM)
    else:
        raise ConfigError(f"Job {job['id']} is {job['status']}; only queued or running jobs can be stopped.")
    return registry.job(job["id"])


def resume(job_id: str, registry: Registry | None = None) -> dict[str, Any]:
    registry = registry or Registry()
    job = get(job_id, registry)
    if job["status"] not in RESUMABLE:
        raise ConfigError(f"Job {job['id']} is {job['status']}; only cancelled, interrupted or failed jobs can be resumed.")
    registry.update_job(job["id"], status="queued", error=None, info={**job["info"], "resume": True})
    if job["kind"] == "train":
        registry.update_run(job["run_id"], "queued", {"reason": None})
    schedule(registry)
    return registry.job(job["id"])


def move(job_id: str, direction: str, registry: Registry | None = None) -> None:
    """Reorder the queue: swap a queued job with its neighbour ('up' runs it sooner)."""
    registry = registry or Registry()
    queue = registry.jobs(("queued",))
    ids = [j["id"] for j in queue]
    if job_id not in ids:
        raise ConfigError(f"Job {job_id} is not queued; only queued jobs can be reordered.")
    i = ids.index(job_id)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(queue):
        registry.update_job(queue[i]["id"], position=queue[j]["position"])
        registry.update_job(queue[j]["id"], position=queue[i]["position"])


def finish(job_id: str, status: str, error: str | None = None, registry: Registry | None = None) -> None:
    """Called by the worker as it ends: record the outcome, then start the next queued job."""
    registry = registry or Registry()
    registry.update_job(job_id, expect=("running",), status=status, error=error, pid=None)
    schedule(registry)
