"""What runs on the Ray cluster's workers for ``--engine ray``: the read tasks that turn input
files into chunks of rows carrying their row id, the actor that scores them with the run's model,
and the probe that reports a node's package versions.

Imported only where Ray is installed (``core.ray_engine`` imports it once Ray is there).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from core.score_io import ChunkReader

ROW_ID = "_row"  # the input position of a row, 0-based across all files; never in the output


def _in_intervals(rows: np.ndarray, done: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Which of ``rows`` lie in one of the sorted, disjoint ``[start, stop)`` intervals."""
    if not done:
        return np.zeros(len(rows), dtype=bool)
    starts, stops = np.array([d[0] for d in done]), np.array([d[1] for d in done])
    at = np.searchsorted(starts, rows, side="right") - 1
    return (at >= 0) & (rows < stops[np.maximum(at, 0)])


def read_chunks(path: str, first_row: int, chunk_rows: int,
                done: tuple[tuple[int, int], ...]) -> Iterator[pd.DataFrame]:
    """One file's rows, ``chunk_rows`` at a time, read exactly as the local engine reads them
    (same encodings, delimiters, multi-line cells, all cells as text), each with its row id.
    Rows already scored by an earlier attempt of the job (``done``) are left out."""
    row = first_row
    for chunk in ChunkReader(path, chunk_rows):
        ids = np.arange(row, row + len(chunk), dtype=np.int64)
        row += len(chunk)
        keep = ~_in_intervals(ids, done)
        if keep.any():
            chunk = chunk.loc[keep].reset_index(drop=True)
            chunk[ROW_ID] = ids[keep]
            yield chunk


class ScoreInputDatasource(Datasource):
    """Ray Data's view of the input files: one read task per file, all read in parallel; the
    scoring (the slow part) then spreads over every actor whatever the number of files."""

    def __init__(self, files: list[str], first_rows: list[int], counts: list[int], chunk_rows: int,
                 done: tuple[tuple[int, int], ...] = ()):
        super().__init__()
        self.files, self.first_rows, self.counts = files, first_rows, counts
        self.chunk_rows, self.done = chunk_rows, done

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(Path(f).stat().st_size for f in self.files)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        tasks = []
        for path, first, count in zip(self.files, self.first_rows, self.counts, strict=True):
            meta = BlockMetadata(num_rows=count, size_bytes=Path(path).stat().st_size, exec_stats=None,
                                 input_files=[path])
            tasks.append(ReadTask(functools.partial(read_chunks, path, first, self.chunk_rows, self.done), meta,
                                  per_task_row_limit=per_task_row_limit))
        return tasks


class ScoreWorker:
    """One actor of the pool: writes the run's model folder (sent once through the object store)
    to a temporary folder, loads it once, then scores batch after batch with the local engine's
    own ``score_frame`` (same truncation, probabilities, empty-text handling and fast mode)."""

    def __init__(self, model_files: list, text_col: str, batch_size: int, fast: bool):
        from core.predict import load_model_folder

        self._folder = tempfile.TemporaryDirectory(prefix="opinionlab-model-")
        for name, data in ray.get(model_files[0]).items():  # wrapped in a list so Ray does not fetch it early
            target = Path(self._folder.name) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        predictor = load_model_folder(Path(self._folder.name))
        if fast and predictor.kind == "transformer" and predictor.device.type == "cpu":
            from core.modeling.onnx_backend import int8_predictor

            predictor = int8_predictor(predictor, Path(self._folder.name), batch_size)
        self.predictor, self.text_col, self.batch_size = predictor, text_col, batch_size

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from core.scoring import score_frame

        rows = batch[ROW_ID].to_numpy()
        scored = score_frame(self.predictor, batch.drop(columns=[ROW_ID]), self.text_col, self.batch_size)
        scored[ROW_ID] = rows
        return scored


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@ray.remote(num_cpus=0)
def package_versions(names: list[str]) -> dict[str, str | None]:
    """The installed version of each package on the node this runs on (None: not installed)."""
    return {name: _version(name) for name in names}
