"""An incremental monitor run over a large history (issue 15).

For each history size N: a folder holds one export of N rows that an earlier run already
scored (its history part and ledger entry are written directly, as that run would have left
them), then a new export of 10,000 rows lands. One ``run_monitor`` call is timed end to end
as ``python -m core monitor run`` (process start and imports, finding the new file, scoring it
with a TF-IDF baseline, appending it, recomputing the weekly trends with 20 groups over the
whole history, recording alerts for a monitor without channels), with the time of each stage. Old rows are never scored again, so the scoring stage stays flat
and only the trend stage grows with N.

    python bench/bench_monitors.py [--sizes 100000,300000,1000000] [--new 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
GROUPS = [f"site-{i}" for i in range(20)]


def posts(rows: int, start: str, days: int, seed: int):
    """Dated posts as a CSV export carries them: texts from the English sample, 20 sources."""
    import numpy as np
    import pandas as pd

    from core.samples import load_sample

    rng = np.random.default_rng(seed)
    texts = load_sample("sample:movie-reviews")[0].frame["text"].str.slice(0, 200).to_numpy()
    moments = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days * 86400, size=rows), unit="s")
    return pd.DataFrame({"posted": moments.strftime("%Y-%m-%d %H:%M:%S"), "comment": texts[rng.integers(len(texts), size=rows)],
                         "site": rng.choice(GROUPS, size=rows)}).sort_values("posted", ignore_index=True)


def baseline_run() -> str:
    """A TF-IDF baseline trained on 2,000 rows of the sample (seconds)."""
    from core.data import prepare_dataset
    from core.datasets import save_dataset
    from core.samples import load_sample
    from core.training import TrainConfig, create_run, run_training

    table, mapping = load_sample("sample:movie-reviews")
    table.frame = table.frame.sample(n=2000, random_state=0).reset_index(drop=True)
    save_dataset(prepare_dataset(table, mapping), "bench")
    folder = create_run(TrainConfig(dataset="bench", method="baseline"))
    run_training(folder)
    return folder.name


def seed_history(monitor, old_csv: Path, frame) -> None:
    """What a run that read ``old_csv`` leaves: its ledger entry and a history part."""
    import numpy as np
    import pyarrow as pa

    from core import monitors
    from core.monitor_files import FileRecord, History, _hashes
    from core.workspace import Registry

    history = History(monitors.folder_of(monitor, Registry()))
    rng = np.random.default_rng(1)
    table = pa.table({"date": frame["posted"], "text": frame["comment"], "group": frame["site"],
                      "label": rng.choice(["negative", "positive"], size=len(frame)),
                      "confidence": rng.uniform(0.5, 1, size=len(frame)).astype("float32"),
                      "file": [str(old_csv)] * len(frame), "row": np.arange(len(frame))})
    name, rows = history.write_part(iter([table]))
    stat = old_csv.stat()
    history.files[str(old_csv)] = FileRecord(stat.st_size, stat.st_mtime_ns, _hashes(old_csv)[0], stat.st_size, rows)
    history.parts, history.rows = [name], rows
    history.commit()


def one(size: int, new: int, run_id: str, home: Path, repeat: int) -> dict:
    """``repeat`` incremental runs over a history of ``size`` rows (each adds ``new`` rows): the
    fastest, and the median end to end (a shared machine's load shows in the spread)."""
    import statistics

    from core import monitors
    from core.monitor_files import Source

    folder = home / f"inbox-{size}"
    folder.mkdir()
    old = posts(size, "2025-11-01", 365, seed=size)
    old.to_csv(folder / "old.csv", index=False)
    monitor = monitors.add_monitor(monitors.Monitor(
        name=f"bench-{size}", run_id=run_id, source=Source("folder", str(folder)), text_col="comment",
        date_col="posted", group_col="site", settle_seconds=0))
    seed_history(monitor, folder / "old.csv", old)
    runs = []
    for number in range(repeat):
        posts(new, "2026-11-01", 7, seed=7 + number).to_csv(folder / f"new-{number}.csv", index=False)
        started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        # the command a scheduler runs: process start, imports, model load included
        done = subprocess.run([sys.executable, "-m", "core", "monitor", "run", monitor.id, "--json"], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["rows_scored"] == new and summary["history_rows"] == size + new * (number + 1), summary
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime  # CPU time: steadier than wall on a busy machine
        runs.append({"seconds": round(time.perf_counter() - started, 2), "cpu_seconds": round(used, 2), **summary["seconds"],
                     "alerts": summary["new_alerts"]})
    best = min(runs, key=lambda r: r["seconds"])
    return {"history_rows": size, "new_rows": new, **best,
            "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
            "min_cpu_seconds": min(r["cpu_seconds"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="incremental runs per size (best and median shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["OPINIONLAB_HOME"] = str(Path(tmp) / "workspace")
        run_id = baseline_run()
        results = [one(int(size), args.new, run_id, Path(tmp), args.repeat) for size in args.sizes.split(",")]
    print(f"{'history rows':>13} {'new rows':>9} {'best s':>7} {'median s':>9} {'least CPU s':>12} "
          f"{'read+score s':>13} {'trends s':>9}")
    for r in results:
        print(f"{r['history_rows']:>13,} {r['new_rows']:>9,} {r['seconds']:>7.2f} {r['median_seconds']:>9.2f} "
              f"{r['min_cpu_seconds']:>12.2f} {r['read_and_score']:>13.2f} {r['trends']:>9.2f}")
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
