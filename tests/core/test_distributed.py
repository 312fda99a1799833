"""The data-parallel code path (world size 2) on CPU: torchrun and accelerate launch, gloo, the tiny model."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.training import create_run, read_progress
from core.workspace import read_json
from tests.core.test_training import tiny_config

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def launch(launcher: list[str], folder: Path, workspace: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPINIONLAB_HOME": str(workspace), "OMP_NUM_THREADS": "1"}
    return subprocess.run([*launcher, "-m", "core", "train", "--config", str(folder / "config.json"), "--json"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)


def processes_running(folder: Path) -> list[int]:
    """Processes whose command line names this run's config (none may outlive the launch)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(folder / "config.json").encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


TORCHRUN = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"]
ACCELERATE = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]


@pytest.mark.parametrize("launcher", [TORCHRUN, ACCELERATE], ids=["torchrun", "accelerate"])
def test_two_processes_train_data_parallel(easy_dataset, tiny_model_dir, workspace, launcher):
    folder = create_run(tiny_config(tiny_model_dir, epochs=2))
    result = launch(launcher, folder, workspace)
    assert result.returncode == 0, result.stderr[-3000:]
    model_event = next(e for e in read_progress(folder) if e["event"] == "model")
    assert model_event["world_size"] == 2
    metrics = read_json(folder / "metrics.json")
    # 96 training rows / batch 8 = 12 batches, 6 per rank, 2 epochs
    assert metrics["steps"] == metrics["total_steps"] == 12 and metrics["world_size"] == 2
    assert read_json(folder / "status.json")["status"] == "succeeded"
    assert (folder / "model" / "model.safetensors").exists()
    starts = [e for e in read_progress(folder) if e["event"] == "start"]
    assert len(starts) == 1  # only rank 0 writes the log
    assert [e["step"] for e in read_progress(folder) if e["event"] == "step"] == list(range(1, 13))


@pytest.mark.parametrize("launcher", [TORCHRUN, ACCELERATE], ids=["torchrun", "accelerate"])
def test_a_missing_dataset_ends_every_rank(easy_dataset, tiny_model_dir, workspace, launcher):
    from core.datasets import remove_dataset

    folder = create_run(tiny_config(tiny_model_dir, epochs=2))
    remove_dataset("easy")
    result = launch(launcher, folder, workspace)
    assert result.returncode != 0
    assert result.stderr.count("Error: dataset missing: 'easy' was deleted") == 1  # rank 0 reports it
    status = read_json(folder / "status.json")
    assert status["status"] == "failed" and "dataset missing" in status["reason"]
    assert processes_running(folder) == []
