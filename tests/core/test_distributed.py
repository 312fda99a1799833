"""The data-parallel code path (world size 2) on CPU: torchrun, gloo, the tiny model."""

import os
import subprocess
import sys
from pathlib import Path

from core.training import create_run, read_progress
from core.workspace import read_json
from tests.core.test_training import tiny_config


def test_two_processes_train_data_parallel(easy_dataset, tiny_model_dir, workspace):
    folder = create_run(tiny_config(tiny_model_dir, epochs=2))
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OPINIONLAB_HOME": str(workspace), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "core", "train",
         "--config", str(folder / "config.json"), "--json"],
        capture_output=True, text=True, env=env, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-3000:]
    model_event = next(e for e in read_progress(folder) if e["event"] == "model")
    assert model_event["world_size"] == 2
    metrics = read_json(folder / "metrics.json")
    # 96 training rows / batch 8 = 12 batches, 6 per rank, 2 epochs
    assert metrics["steps"] == metrics["total_steps"] == 12
    assert read_json(folder / "status.json")["status"] == "succeeded"
    assert (folder / "model" / "model.safetensors").exists()
    starts = [e for e in read_progress(folder) if e["event"] == "start"]
    assert len(starts) == 1  # only rank 0 writes the log
