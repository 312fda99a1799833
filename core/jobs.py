"""Background jobs: a config file plus the CLI command that carries it out, in its own process.

States: queued → running → succeeded | failed | cancelled | interrupted. Jobs wait in one of two
lanes, each with its own slots, so a job that takes seconds never waits behind a fine-tune:

- ``long``: fine-tunes and large scoring jobs; one per GPU (one at a time on a CPU).
- ``quick``: baseline runs and small scoring jobs; ``OPINIONLAB_QUICK_SLOTS`` at once (default 2).

When a job ends, its worker starts the next queued ones, so no daemon is needed. A worker that
died without saying so (SIGKILL, a machine restart) is found by ``reconcile`` (its PID is gone)
and shown as interrupted, resumable.
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
from core.i18n import Message, msg
from core.workspace import Registry, new_id, read_json

ACTIVE = ("queued", "running")
RESUMABLE = ("cancelled", "interrupted", "failed")
ROOT = Path(__file__).resolve().parents[1]
QUICK, LONG = "quick", "long"
LANES = (LONG, QUICK)
# A scoring job this small runs in the quick lane even with a transformer model: about 1 MiB of
# text is ~3,500 short posts or ~800 long reviews, under a minute at the 58 texts/s measured on
# 2 CPU cores (shared/FACTS.md).
QUICK_SCORE_BYTES = 1 << 20
WORKER_LOST = "the worker stopped unexpectedly (killed or machine restarted); resume it"


def capacity() -> int:
    """How many long jobs may run at once: one per GPU, one on a CPU-only machine."""
    return max(1, _gpu_count())


def quick_capacity() -> int:
    """How many quick jobs may run at once, beside the long ones (``OPINIONLAB_QUICK_SLOTS``)."""
    try:
        return max(1, int(os.environ.get("OPINIONLAB_QUICK_SLOTS", "2")))
    except ValueError:
        return 2


def slots(lane: str) -> int:
    return quick_capacity() if lane == QUICK else capacity()


def lane_for(kind: str, config_path: str | Path, registry: Registry) -> str:
    """The lane a job waits in, decided from its saved config: seconds of work → quick."""
    config = read_json(Path(config_path), {}) or {}
    if kind == "train":
        if config.get("method") == "zeroshot":  # no training: as long as the test rows it embeds
            from core.zeroshot import QUICK_ROWS, rows_to_label

            return QUICK if rows_to_label(config, registry) <= QUICK_ROWS else LONG
        return QUICK if config.get("method") == "baseline" else LONG
    if kind == "score":
        labels = read_json(registry.root / "runs" / str(config.get("run_id", "")) / "model" / "labels.json", {}) or {}
        source = Path(str(config.get("input") or ""))
        small = source.is_file() and source.stat().st_size <= QUICK_SCORE_BYTES
        return QUICK if labels.get("kind") == "baseline" or small else LONG
    if kind == "monitor":  # a run scores only what is new since the last one: seconds with a baseline
        labels = read_json(registry.root / "runs" / str(config.get("run_id", "")) / "model" / "labels.json", {}) or {}
        return QUICK if labels.get("kind") == "baseline" else LONG
    return LONG


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
    verb = "tune" if job["kind"] == "tune" else "train"  # a search: its trials, one after another
    cmd = [sys.executable, "-m", "core", verb, "--config", job["config_path"], "--job", job["id"]]
    return cmd + (["--resume"] if resume else [])


def submit(run_dir: Path, registry: Registry | None = None, created_by: str | None = None,
           kind: str = "train", job_id: str | None = None, lane: str | None = None) -> dict[str, Any]:
    """Queue the run (or scoring job) in ``run_dir`` and start it if its lane has a free slot.

    ``job_id`` lets a kind of work use its own id as the job's (a scoring job has one id);
    ``lane`` overrides the lane ``lane_for`` decides from the config."""
    registry = registry or Registry()
    run_id = Path(run_dir).name
    job_id = job_id or new_id("job")
    config = str(Path(run_dir) / ("score.json" if kind == "score" else "config.json"))
    lane = lane or lane_for(kind, config, registry)
    if lane not in LANES:
        raise ConfigError("jobs.err.lane", lane=lane, lanes=", ".join(LANES))
    registry.add_job(job_id, kind, run_id, config, created_by, lane=lane)
    schedule(registry)
    return registry.job(job_id)


def queue_message(job: dict[str, Any], registry: Registry | None = None) -> Message:
    """What to tell the person who just submitted ``job``: "started" or "queued (2nd in line)"."""
    registry = registry or Registry()
    place = registry.place_in_line(job["id"])
    if place is None:
        return msg("status.started") if job["status"] in ACTIVE else msg(f"status.{job['status']}")
    return msg("status.queued_position", position=ordinal(place))


def ordinal(n: int) -> Message:
    """``n`` as a place in line: 1st, 2nd, 3rd, 11th ... in English, 第 n 位 in Chinese."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return msg(f"jobs.ordinal.{suffix}", n=n)


def reconcile(registry: Registry | None = None) -> list[str]:
    """Mark running jobs whose worker is gone as interrupted. Returns their ids."""
    registry = registry or Registry()
    lost = []
    for job in registry.jobs(("running",)):
        if job["pid"] is None:  # claimed by a scheduler that is starting it right now
            continue
        if not _pid_alive(job["pid"]) and registry.update_job(
                job["id"], expect=("running",), status="interrupted", error=WORKER_LOST,
                info={**job["info"], "error_message": msg("jobs.err.worker_lost").to_dict()}):
            if job["kind"] == "train":
                registry.update_run(job["run_id"], "interrupted", {"reason": "worker stopped unexpectedly"})
            lost.append(job["id"])
    return lost


def schedule(registry: Registry | None = None) -> list[str]:
    """Start queued jobs, oldest position first in each lane, while the lane has free slots.

    Returns the ids started."""
    registry = registry or Registry()
    reconcile(registry)
    started = []
    gpus = _gpu_count()
    for lane in LANES:
        while (job := registry.claim_job(lane, slots(lane))) is not None:
            if not Path(job["config_path"]).exists():
                registry.update_job(job["id"], status="failed", error="the run's config file is missing",
                                    info={**job["info"], "error_message": msg("jobs.err.config_missing").to_dict()})
                continue
            # a long job on a GPU machine runs on the GPU of its slot; quick jobs share
            gpu = job["info"]["slot"] if lane == LONG and gpus else None
            if gpu is not None:
                registry.update_job(job["id"], info={**job["info"], "gpu": gpu})
            resume = bool(job["info"].get("resume"))
            with open(Path(job["config_path"]).parent / "worker.log", "ab") as log:
                proc = subprocess.Popen(command_for(job, resume), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True, env=_worker_env(gpu))
            registry.update_job(job["id"], pid=proc.pid)
            started.append(job["id"])
    return started


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # torch missing or broken: no GPUs
        return 0


def has_gpu() -> bool:
    """Whether jobs here train on a GPU (estimates use the same answer as the scheduler)."""
    return _gpu_count() > 0


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
        raise NotFoundError("jobs.err.not_found", job=job_id)
    return job


def error_of(job: dict[str, Any], status: dict[str, Any]) -> str | dict | None:
    """Why the job ended badly, for a person: its message (a Message dict, rendered in the
    reader's language by ``core.i18n.render``) when one was recorded, else the worker's text."""
    return job["info"].get("error_message") or job["error"] or (
        status.get("reason") if job["status"] == "failed" else None)


def describe(job: dict[str, Any], registry: Registry | None = None) -> dict[str, Any]:
    """The job with its run's live status (step, total steps, ETA) read from the run folder.

    ``position`` is the job's place in its lane's line (1 = starts next), None unless queued;
    ``error`` is plain English text, ``error_message`` the same for ``core.i18n.render``."""
    registry = registry or Registry()
    run_dir = registry.root / {"score": "scores", "tune": "searches"}.get(job["kind"], "runs") / job["run_id"]
    status = read_json(run_dir / "status.json", {}) or {}
    done, total = ("rows_done", "total_rows") if job["kind"] == "score" else ("step", "total_steps")
    return {
        "id": job["id"], "kind": job["kind"], "status": job["status"], "pid": job["pid"],
        "run_id": job["run_id"], "run_dir": str(run_dir), "step": status.get(done, 0) or 0,
        "total_steps": status.get(total, 0) or 0, "eta_s": status.get("eta_s"),
        "rows_per_s": status.get("rows_per_s"), "summary": status.get("summary"),
        "fast_agreement": status.get("fast_agreement"),
        "error": job["error"] or (status.get("reason") if job["status"] == "failed" else None),
        "error_message": error_of(job, status),
        "metrics": status.get("metrics"), "created_at": job["created_at"], "lane": job.get("lane", LONG),
        "position": registry.place_in_line(job["id"]) if job["status"] == "queued" else None,
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
        raise ConfigError("jobs.err.cannot_stop", job=job["id"], status=msg(f"status.{job['status']}"))
    return registry.job(job["id"])


def resume(job_id: str, registry: Registry | None = None) -> dict[str, Any]:
    registry = registry or Registry()
    job = get(job_id, registry)
    if job["status"] not in RESUMABLE:
        raise ConfigError("jobs.err.cannot_resume", job=job["id"], status=msg(f"status.{job['status']}"))
    info = {k: v for k, v in job["info"].items() if k != "error_message"}
    registry.update_job(job["id"], status="queued", error=None, info={**info, "resume": True})
    if job["kind"] == "train":
        registry.update_run(job["run_id"], "queued", {"reason": None})
    schedule(registry)
    return registry.job(job["id"])


def move(job_id: str, direction: str, registry: Registry | None = None) -> None:
    """Reorder a lane's line: swap a queued job with its neighbour ('up' runs it sooner)."""
    registry = registry or Registry()
    job = registry.job(job_id)
    if job is None or job["status"] != "queued":
        raise ConfigError("jobs.err.cannot_move", job=job_id)
    queue = [j for j in registry.jobs(("queued",)) if j["lane"] == job["lane"]]
    ids = [j["id"] for j in queue]
    i = ids.index(job["id"])
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(queue):
        registry.update_job(queue[i]["id"], position=queue[j]["position"])
        registry.update_job(queue[j]["id"], position=queue[i]["position"])


def finish(job_id: str, status: str, error: str | Message | None = None, registry: Registry | None = None) -> None:
    """Called by the worker as it ends: record the outcome, then start the next queued jobs.

    An ``error`` given as a Message is kept too, so pages show it in the reader's language."""
    registry = registry or Registry()
    values: dict[str, Any] = {"status": status, "error": None if error is None else str(error), "pid": None}
    if isinstance(error, Message):
        job = registry.job(job_id)
        values["info"] = {**(job["info"] if job else {}), "error_message": error.to_dict()}
    registry.update_job(job_id, expect=("running",), **values)
    schedule(registry)
