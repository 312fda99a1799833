"""Reading, cleaning and validating a ~100 MB CSV of reviews (the sample repeated).

Target (issue 2): under 20 s on a 2-core machine, peak memory under 5x the file size.
Each measurement runs in a fresh process so peak RSS belongs to that step alone; a plain
``pandas.read_csv`` of the same file runs beside it as the reference.

    python bench/bench_data.py [--mb 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
mode, path = sys.argv[2], sys.argv[3]
import pandas as pd
from core.data import read_table, detect_columns, prepare_dataset
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if mode == "reference":
    frame = pd.read_csv(path)
    rows = len(frame)
else:
    table = read_table(path)
    prepared = prepare_dataset(table, detect_columns(table.frame))
    rows = prepared.report.rows
    assert prepared.report.ok, prepared.report.errors
seconds = time.perf_counter() - start
# VmHWM belongs to this process alone (ru_maxrss would carry the parent's peak across fork)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "import_mb": base / 1024, "rows": rows}))
"""


def build_csv(target_mb: float, folder: Path) -> Path:
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from core.samples import load_sample

    table, _ = load_sample("sample:movie-reviews")
    frame = table.frame
    path = folder / "reviews_big.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("text,label,source\n")
        copy = 0
        while fh.tell() < target_mb * 1e6:
            # each copy's texts differ a little so deduplication does not empty the file
            part = frame.assign(text=frame["text"] + f" (copy {copy})")
            part.to_csv(fh, header=False, index=False)
            copy += 1
    del pd
    return path


def measure(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode, str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_csv(args.mb, Path(tmp))
        size_mb = os.path.getsize(path) / 1e6
        ours = measure("ours", path)
        ref = measure("reference", path)
    print(f"file: {size_mb:.1f} MB")
    print(f"Opinion Lab read+clean+validate: {ours['seconds']:.1f} s, peak RSS {ours['peak_mb']:.0f} MB "
          f"({ours['peak_mb'] / size_mb:.2f}x file), {ours['rows']:,} rows kept")
    print(f"reference pandas.read_csv only:  {ref['seconds']:.1f} s, peak RSS {ref['peak_mb']:.0f} MB "
          f"({ref['peak_mb'] / size_mb:.2f}x file)")
    print(f"time ratio ours/reference: {ours['seconds'] / ref['seconds']:.2f}x; "
          f"target: < 20 s -> {'met' if ours['seconds'] < 20 else 'MISSED'}; "
          f"peak < 5x file -> {'met' if ours['peak_mb'] < 5 * size_mb else 'MISSED'}")


if __name__ == "__main__":
    main()
