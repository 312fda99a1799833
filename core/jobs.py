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
from pathlib import Path
from typing import Any

from core.errors import ConfigError, NotFoundError
from core.i18n import Message, msg
from core.job_kinds import LONG, QUICK, QUICK_SCORE_BYTES, Job, kind_of  # noqa: F401 (re-exported)
from core.workspace import Registry, new_id, read_json

ACTIVE = ("queued", "running")
RESUMABLE = ("cancelled", "interrupted", "failed")
ROOT = Path(__file__).resolve().parents[1]
LANES = (LONG, QUICK)
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
    """The lane a job waits in, decided by its kind from its saved config: seconds of work → quick."""
    return kind_of(kind).lane(read_json(Path(config_path), {}) or {}, registry)


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
    return kind_of(job["kind"]).command(job["target"], job["config_path"], job["id"], resume)


def submit(target_dir: Path, registry: Registry | None = None, created_by: str | None = None,
           kind: str = "train", job_id: str | None = None, lane: str | None = None) -> dict[str, Any]:
    """Queue the work whose folder is ``target_dir`` (a run, a scoring output, a monitor...) and
    start it if its lane has a free slot.

    ``job_id`` lets a kind of work use its own id as the job's (a scoring job has one id);
    ``lane`` overrides the lane the kind decides from the config."""
    registry = registry or Registry()
    job_id = job_id or new_id("job")
    config = str(Path(target_dir) / kind_of(kind).config_file)
    lane = lane or lane_for(kind, config, registry)
    if lane not in LANES:
        raise ConfigError("jobs.err.lane", lane=lane, lanes=", ".join(LANES))
    registry.add_job(job_id, kind, Path(target_dir).name, config, created_by, lane=lane)
    schedule(registry)
    return registry.job(job_id)


def queue_message(job: dict[str, Any] | Job, registry: Registry | None = None) -> Message:
    """What to tell the person who just submitted ``job``: "started" or "queued (2nd in line)"."""
    registry = registry or Registry()
    job_id, status = (job.id, job.status) if isinstance(job, Job) else (job["id"], job["status"])
    place = registry.place_in_line(job_id)
    if place is None:
        return msg("status.started") if status in ACTIVE else msg(f"status.{status}")
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
            if kind_of(job["kind"]).mirrors_run:
                registry.update_run(job["target"], "interrupted", {"reason": "worker stopped unexpectedly"})
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


def describe(job: dict[str, Any], registry: Registry | None = None) -> Job:
    """The job (a registry row) with the live progress its kind writes in its folder."""
    registry = registry or Registry()
    kind = kind_of(job["kind"])
    folder = kind.folder_of(job["target"], registry)
    status = read_json(folder / "status.json", {}) or {}
    done, total = kind.counts
    return Job(
        id=job["id"], kind=job["kind"], status=job["status"], target=job["target"], folder=folder,
        lane=job.get("lane", LONG), created_at=job["created_at"], created_by=job["created_by"], pid=job["pid"],
        done=int(status.get(done, 0) or 0), total=int(status.get(total, 0) or 0), unit=kind.unit,
        eta_s=status.get("eta_s"), rows_per_s=status.get("rows_per_s"), summary=status.get("summary"),
        fast_agreement=status.get("fast_agreement"),
        error=job["error"] or (status.get("reason") if job["status"] == "failed" else None),
        error_message=error_of(job, status), metrics=status.get("metrics"),
        position=registry.place_in_line(job["id"]) if job["status"] == "queued" else None,
        command=" ".join(command_for(job, bool(job["info"].get("resume")))), info=job["info"])


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
    if kind_of(job["kind"]).mirrors_run:
        registry.update_run(job["target"], "queued", {"reason": None})
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
