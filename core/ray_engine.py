"""Scoring on a Ray cluster (``python -m core score RUN --engine ray``).

The job is an ordinary scoring job (a score folder with ``score.json``, status, progress and
parts) whose rows are scored by an actor pool on Ray instead of this process:

- the input (one file, a folder or a glob of CSV/TSV/Parquet files) is read by Ray Data read
  tasks, one per file, each row carrying its input position (``_row``);
- ``map_batches`` on a pool of ``workers`` actors, each loading the run's model once (the model
  folder travels through the object store, the ``core`` package as a runtime_env module);
- this process receives the scored chunks, writes each run of consecutive rows as a part named by
  its first row (a retried task rewrites the same part, so every row is kept exactly once), counts
  them into the progress the page shows, and merges the parts in row order with the local
  engine's own merge and formula-safe writers.

Workers must be able to read the input paths (a shared filesystem on a multi-node cluster).
"""

from __future__ import annotations

import glob
import itertools
import logging
import os
import signal
import socket
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from core.errors import ConfigError, DataError, OpinionLabError
from core.i18n import msg
from core.predict import require_finished
from core.score_io import count_rows, iter_chunks
from core.scoring import ScoreConfig, _model, _Progress, _reason, create_score, merge_parts
from core.workspace import Registry, atomic_write_json, disk_error, read_json

ENGINES = ("local", "ray")
INPUT_SUFFIXES = (".csv", ".tsv", ".parquet")
CONNECT_TIMEOUT_S = 3.0  # a TCP answer within this, else the address is reported unreachable
GCS_PORT, CLIENT_PORT = 6379, 10001
ADDRESS_ENV = "OPINIONLAB_RAY_ADDRESS"
# What a worker needs to rebuild the predictor, by kind of model; versions must equal this machine's.
PACKAGES = {
    "transformer": ("numpy", "pandas", "pyarrow", "safetensors", "torch", "transformers", "tokenizers"),
    "baseline": ("numpy", "pandas", "pyarrow", "safetensors", "scikit-learn"),
}


def configured_address() -> str:
    """The Ray cluster this installation uses: ``OPINIONLAB_RAY_ADDRESS``, else ``ray_address`` in
    the secrets' ``[opinionlab]`` section; '' when none is configured."""
    from core.alerting import opinionlab_setting

    return (os.environ.get(ADDRESS_ENV) or opinionlab_setting("ray_address")).strip()


def engines() -> list[str]:
    """The scoring engines the Score page offers: Ray only once a cluster address is configured."""
    return list(ENGINES) if configured_address() else ["local"]


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("ray.err.not_installed") from None
    return ray


# ----------------------------------------------------------------------------------------
# The input: one file, a folder or a glob, resolved once into the files to read
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RayInput:
    files: tuple[Path, ...]
    columns: tuple[str, ...]


def _matching_files(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
        if not found:
            raise DataError("ray.err.empty_folder", folder=spec, formats=", ".join(INPUT_SUFFIXES))
        return found
    if glob.has_magic(spec):
        found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not found:
            raise DataError("ray.err.no_match", pattern=spec)
    elif path.is_file():
        found = [path]
    else:
        raise DataError("score.err.no_input", path=spec)
    odd = [p.name for p in found if p.suffix.lower() not in INPUT_SUFFIXES]
    if odd:
        raise DataError("ray.err.format", files=", ".join(odd[:3]), formats=", ".join(INPUT_SUFFIXES))
    return found


def _columns(path: Path) -> tuple[str, ...] | None:
    """The columns the local engine reads from ``path`` (None when it holds no rows)."""
    first = next(iter_chunks(path, 1), None)
    return None if first is None else tuple(first.columns)


def resolve_input(spec: str) -> RayInput:
    """The files ``spec`` names, refused when they do not all have the same columns."""
    files = _matching_files(spec)
    found = [(p, _columns(p)) for p in files]
    found = [(p, c) for p, c in found if c is not None]
    if not found:
        raise DataError("score.err.no_rows", filename=spec)
    first, columns = found[0]
    odd = [p for p, c in found if c != columns]
    if odd:
        raise DataError("ray.err.mixed_columns", first=first.name, columns=", ".join(columns),
                        others=", ".join(p.name for p in odd[:3]), other_columns=", ".join(_columns(odd[0]) or ()))
    return RayInput(tuple(files), columns)


def create_ray_score(config: ScoreConfig, registry: Registry | None = None, lang: str = "en") -> Path:
    """Check what a Ray scoring job needs that this machine can check, then write its folder."""
    require_ray()
    registry = registry or Registry()
    labels = read_json(require_finished(config.run_id, registry) / "model" / "labels.json", {}) or {}
    if labels.get("kind") == "zeroshot":
        raise ConfigError("ray.err.zeroshot", run=config.run_id)
    if not 1 <= config.workers <= 1000 or not 0 <= config.gpus_per_worker <= 8:
        raise ConfigError("ray.err.sizes", workers=config.workers, gpus=config.gpus_per_worker)
    source = resolve_input(config.input)
    check_reachable(config.address)  # said now, not minutes later in the job
    config.engine = "ray"
    config.source_name = config.source_name or Path(config.input).name or config.input
    return create_score(config, registry, lang, sample=source.files[0])


# ----------------------------------------------------------------------------------------
# The cluster: reach it within seconds, check its packages
# ----------------------------------------------------------------------------------------
def _endpoint(address: str) -> tuple[str, int] | None:
    """Host and port to try before Ray itself tries (it waits minutes on a dead address)."""
    if not address:
        return None
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address

        found = canonicalize_bootstrap_address("auto")
        if not found:
            raise ConfigError("ray.err.no_local_cluster")
        address = found
    client = address.startswith("ray://")
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon:
        host, port = address.removeprefix("ray://"), ""
    try:
        return host, int(port) if port else (CLIENT_PORT if client else GCS_PORT)
    except ValueError:
        raise ConfigError("ray.err.bad_address", address=address) from None


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    endpoint = _endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout).close()
    except OSError as exc:
        raise ConfigError("ray.err.unreachable", address=address, seconds=f"{timeout:g}",
                          detail=str(exc) or type(exc).__name__) from None


def runtime_env() -> dict[str, Any]:
    """What travels to every worker besides the model: the ``core`` package, and quiet tokenizers."""
    core = Path(__file__).resolve().parent
    return {"py_modules": [str(core)], "excludes": ["__pycache__"],
            "env_vars": {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}}


def connect(address: str) -> bool:
    """Connect this process to Ray (starting one on this machine when ``address`` is empty).
    True when this call connected, so the job disconnects (and stops its actors) at its end."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    check_reachable(address)
    local = {} if address else {"include_dashboard": False}
    try:
        ray.init(address=address or None, runtime_env=runtime_env(), log_to_driver=False,
                 logging_level="WARNING", **local)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError("ray.err.connect_failed", address=address or "local", detail=str(exc)[:300]) from None
    return True


def _base_version(version: str | None) -> str | None:
    return version.split("+")[0] if version else None  # 2.13.0+cpu and 2.13.0+cu128 are one release


def check_packages(required: dict[str, str]) -> None:
    """Every alive node has ``required``'s packages at those versions, else say which it lacks."""
    ray = require_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from core.ray_workers import package_versions

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    probes = [package_versions.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
              .remote(sorted(required)) for n in nodes]
    problems = []
    for node, found in zip(nodes, ray.get(probes, timeout=120), strict=True):
        wrong = [f"{name} {want} ({found[name] or msg('ray.missing')})" for name, want in sorted(required.items())
                 if _base_version(found[name]) != _base_version(want)]
        if wrong:
            problems.append(f"{node.get('NodeManagerAddress', node['NodeID'])}: {', '.join(wrong)}")
    if problems:
        raise ConfigError("ray.err.packages", problems="; ".join(problems[:3]))


def required_packages(kind: str) -> dict[str, str]:
    return {name: metadata.version(name) for name in PACKAGES.get(kind, PACKAGES["transformer"])}


def model_files(model_folder: Path) -> dict[str, bytes]:
    """The run's model folder as bytes, to send once to every actor (a few kB to ~100 MB)."""
    return {str(p.relative_to(model_folder)): p.read_bytes() for p in sorted(model_folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------
# The job
# ----------------------------------------------------------------------------------------
def _parts(folder: Path) -> list[tuple[int, int, Path]]:
    """The parts written so far as (first row, rows, path), in row order."""
    import pyarrow.parquet as pq

    found = [(int(p.stem.split("-")[1]), p) for p in (folder / "parts").glob("part-*.parquet")]
    return [(first, pq.ParquetFile(p).metadata.num_rows, p) for first, p in sorted(found)]


def _done_intervals(parts: list[tuple[int, int, Path]]) -> tuple[tuple[int, int], ...]:
    return tuple((first, first + rows) for first, rows, _ in parts)


def _write_runs(frame: Any, folder: Path) -> int:
    """Write each run of consecutive row ids of a scored chunk as a part named by its first row
    (a chunk scored twice by a retried task overwrites the same part). Returns the rows written."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from core.ray_workers import ROW_ID

    frame = frame.sort_values(ROW_ID, kind="stable")
    for column in frame.columns:  # Ray hands columns back with Arrow types; the parts keep the local engine's
        dtype = frame[column].dtype
        if isinstance(dtype, pd.ArrowDtype):
            text = pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
            frame[column] = frame[column].astype("str" if text else dtype.numpy_dtype)
    rows = frame[ROW_ID].to_numpy()
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for start, stop in zip([0, *breaks], [*breaks, len(rows)], strict=True):
        part = folder / "parts" / f"part-{int(rows[start]):012d}.parquet"
        tmp = part.with_name(f".{part.name}.tmp")
        try:
            frame.iloc[start:stop].drop(columns=[ROW_ID]).to_parquet(tmp, index=False)
            os.replace(tmp, part)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise disk_error(part, exc) from exc
    return len(rows)


def _check_every_row_once(folder: Path, total: int) -> None:
    """The parts cover rows 0 .. total-1, each exactly once, before they are merged."""
    expected = 0
    for first, rows, part in _parts(folder):
        if first != expected:
            raise RuntimeError(f"{part.name}: rows from {first:,} where row {expected:,} was expected")
        expected += rows
    if expected != total:
        raise RuntimeError(f"the parts hold {expected:,} rows of {total:,}")


def _scored_chunks(config: ScoreConfig, source: RayInput, counts: list[int], done: tuple) -> Any:
    """The scored chunks, as they come from the actor pool."""
    ray = require_ray()
    from ray.data import ActorPoolStrategy, DataContext

    from core.ray_workers import ScoreInputDatasource, ScoreWorker

    context = DataContext.get_current()
    context.enable_progress_bars = False  # progress goes to the job's status instead
    # Ray Data joins a read task's chunks into blocks of up to 128 MiB, and an actor scores one
    # block per call: one file would then go to one actor, with no progress until it is done.
    # Blocks of about one chunk spread the rows over every actor and report every few seconds.
    first = next(iter_chunks(source.files[0], config.chunk_rows))
    context.target_max_block_size = max(64 * 1024, int(first.memory_usage(deep=True).sum()))
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    model = ray.put(model_files(require_finished(config.run_id) / "model"))
    firsts = [0, *itertools.accumulate(counts)][:-1]  # each file's first row id
    # reads ask for no CPU: with one actor per CPU (2 workers on 2 cores) a read asking for any
    # would wait for a free CPU forever; parsing is light beside the model
    data = ray.data.read_datasource(ScoreInputDatasource([str(f) for f in source.files], firsts, counts,
                                                         config.chunk_rows, done), num_cpus=0)
    scored = data.map_batches(ScoreWorker, batch_size=None, batch_format="pandas",
                              compute=ActorPoolStrategy(size=config.workers),
                              fn_constructor_kwargs={"model_files": [model],
                                                     "text_col": config.text_col, "batch_size": config.batch_size,
                                                     "fast": config.fast},
                              num_cpus=1, num_gpus=config.gpus_per_worker or None)
    return scored.iter_batches(batch_size=None, batch_format="pandas")


def _user_error(exc: BaseException) -> BaseException:
    """The user's error inside a Ray task error (a file a worker could not read), else ``exc``."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OpinionLabError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    return exc


def run_ray_scoring(folder: Path) -> dict[str, Any]:
    """Score every row not yet in a part on the Ray cluster, then merge; the job's status and
    progress are written like the local engine's, and SIGTERM (the page's Stop) ends it."""
    folder = Path(folder)
    config = ScoreConfig.from_dict(read_json(folder / "score.json"))
    previous = read_json(folder / "status.json", {}) or {}
    progress = _Progress(folder)
    stop = {"requested": False}
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    try:
        source = resolve_input(config.input)
        fast_agreement = previous.get("fast_agreement")
        if config.fast:  # measured here on the first rows, as the local engine does
            _, fast_agreement = _model(replace(config, input=str(source.files[0])), previous, progress)
        progress.status("running", fast_agreement=fast_agreement, reason=msg("ray.reason.connecting").to_dict())
        counts = [count_rows(f) for f in source.files]
        ended = _run_on_cluster(config, source, counts, progress, stop)
        if ended is not None:
            return ended
        summary = merge_parts(folder)
    except BaseException as exc:
        error = _user_error(exc)
        progress.status("failed", reason=_reason(error))
        progress.log("failed", reason=str(error))
        raise error from None if error is not exc else exc
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    summary.update({"rows_per_s": progress.mean_rate(), "fast": config.fast, "fast_agreement": fast_agreement,
                    "engine": "ray", "workers": config.workers})
    atomic_write_json(folder / "summary.json", summary)
    progress.status("succeeded", rows_done=summary["rows"], total_rows=summary["rows"], eta_s=0, summary=summary)
    progress.log("done", **{k: v for k, v in summary.items() if k not in ("label_counts", "export_notice")})
    return summary


def _run_on_cluster(config: ScoreConfig, source: RayInput, counts: list[int], progress: _Progress,
                    stop: dict[str, bool]) -> dict[str, Any] | None:
    """Connect, check the cluster, score what is left; a result when the job ends early."""
    ray = require_ray()
    connected = connect(config.address)
    # ray.init makes SIGTERM exit the driver at once; the page's Stop must end the job cleanly
    signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    chunks = None
    try:
        labels = read_json(require_finished(config.run_id) / "model" / "labels.json", {}) or {}
        check_packages(required_packages(labels.get("kind", "transformer")))
        done = _done_intervals(_parts(progress.folder))
        progress.start(sum(counts))
        progress.rows_done = sum(stop_ - start for start, stop_ in done)
        progress.log("start", total_rows=progress.total, engine="ray", workers=config.workers,
                     address=config.address or "local")
        chunks = iter(_scored_chunks(config, source, counts, done))  # Ray Data's generator (it has close())
        for index, chunk in enumerate(chunks):
            progress.chunk_done(index, _write_runs(chunk, progress.folder))
            if stop["requested"]:  # the chunks written so far stay: resume scores only the rest
                progress.status("cancelled", reason=msg("score.reason.stopped").to_dict())
                progress.log("stopped", rows_done=progress.rows_done)
                return {"status": "cancelled", "score_id": config.score_id}
        _check_every_row_once(progress.folder, progress.total or 0)
    finally:
        # A Stop leaves Ray Data's iterator mid-way: its executor's threads would touch the shut-down
        # core worker and Ray would end the whole process before the job records its end. So after a
        # Stop the connection closes with the process (Ray's own exit hook), once the end is recorded.
        if chunks is not None and hasattr(chunks, "close"):
            chunks.close()
        if connected and not stop["requested"]:
            ray.shutdown()
    return None
