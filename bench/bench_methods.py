"""Every method side by side on the same rows (issue 14): ``python -m core compare-methods`` as an
analyst runs it, then its table printed for docs/benchmarks.md and the README.

sample:movie-reviews is added as the Data page adds it (80/10/10 splits) unless the workspace has
it. The comparison draws ``--per-class`` training rows per class with each seed (1,000 per class =
the issue's 2,000 training rows), trains every method on exactly those rows (as background jobs, one process each, as the
Results page's users start it) with the ``quick``
preset and the method's own learning rate, and tests each on the whole test split (3,344 reviews);
validation (500 rows) is the only split any setting was chosen on. Printed: one row per method and
size (accuracy and macro F1 as mean ± spread over seeds, trainable parameters, training time, peak
memory) and, per size, how far LoRA is from full fine-tuning.

    python bench/bench_methods.py [--home DIR] [--methods ...] [--per-class 16,1000] [--seeds 1]
    python bench/bench_methods.py --home DIR --show cmp_...     # print a comparison already run
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

METHODS = "baseline,full,lora,adalora,loha,lokr,ia3,prefix,prompt,ptuning,fewshot"


def _core(*args: str) -> dict:
    """``python -m core ... --json`` as a person types it; its last line."""
    done = subprocess.run([sys.executable, "-m", "core", *args, "--json"], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(report: dict) -> str:
    from core.comparison_display import mean_spread, size_label
    from core.i18n import format_duration

    lines = ["| method | per class | test accuracy | macro F1 | trainable parameters | training time | peak memory |",
             "|---|---|---|---|---|---|---|"]
    for row in report["summary"]:
        params = "—" if row["method"] == "baseline" or row["trainable_parameters"] is None \
            else f"{row['trainable_parameters']:,.0f}"
        memory = "—" if row["peak_memory_mb"] is None else f"{row['peak_memory_mb']:,.0f} MB"
        seconds = "—" if row["seconds"] is None else format_duration(row["seconds"])
        lines.append(f"| {row['method']} | {size_label(row['per_class'])} | {mean_spread(row['accuracy_mean'], row['accuracy_spread'], row['finished'], 4)} | "
                     f"{mean_spread(row['macro_f1_mean'], row['macro_f1_spread'], row['finished'], 4)} "
                     f"| {params} | {seconds} | {memory} |")
    return "\n".join(lines)


def gaps(report: dict) -> list[str]:
    out = []
    cells = {(r["method"], r["per_class"]): r for r in report["summary"]}
    for size in report["per_class"]:
        lora, full = cells.get(("lora", size)), cells.get(("full", size))
        if lora and full and lora["accuracy_mean"] is not None and full["accuracy_mean"] is not None:
            gap = 100 * (lora["accuracy_mean"] - full["accuracy_mean"])
            out.append(f"{size} per class: LoRA {lora['accuracy_mean']:.4f} vs full {full['accuracy_mean']:.4f} "
                       f"({gap:+.1f} points; the issue's target at 2,000 rows: within 1)")
    return out


def wait(comparison: str) -> None:
    """Until every run of the comparison has ended (its runs are background jobs, one after another)."""
    from core import comparison as lab
    from core import jobs

    while True:
        report = lab.comparison_report(comparison)
        active = [r for r in report["rows"] if r["status"] in jobs.ACTIVE]
        if not active:
            return
        print(f"{time.strftime('%H:%M')} {len(report['rows']) - len(active)}/{len(report['rows'])} runs ended",
              flush=True)
        time.sleep(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="workspace to use (default: a temporary one)")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--per-class", default="16,1000")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--show", help="print this comparison instead of running one")
    args = parser.parse_args()
    os.environ["OPINIONLAB_HOME"] = args.home or tempfile.mkdtemp(prefix="bench-methods-")
    from core.workspace import Registry

    comparison = args.show
    if comparison is None:
        if Registry().dataset("movie-reviews") is None:
            _core("data", "add", "sample:movie-reviews", "--name", "movie-reviews")
        record = _core("compare-methods", "start", "--dataset", "movie-reviews", "--methods", args.methods,
                       "--per-class", args.per_class, "--seeds", args.seeds)
        comparison = record["comparison_id"]
        wait(comparison)
    report = _core("compare-methods", "show", comparison)
    print(f"comparison {comparison}: sample:movie-reviews, model {report['model']}, preset {report['preset']}, "
          f"{report['seeds']} seed(s), test split of the dataset")
    print(table(report))
    for line in gaps(report):
        print(line)


if __name__ == "__main__":
    main()
