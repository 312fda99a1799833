"""Fine-tuning with the `quick` preset on 2,000 rows, per language and encoder (issue 13).

For each case the run is launched exactly as an analyst would (``python -m core train --preset
quick --limit 2000 --model M``), after asking ``core.estimates`` what the Train page would show.
Printed side by side: test accuracy of the fine-tune and of the TF-IDF baseline fitted on the same
rows in the same run (the run's own reference), the difference in points, the page's estimate,
the measured wall time and their ratio.

    python bench/bench_finetune.py [zh-multilingual] [en-default] [en-multilingual] [--home DIR]

Without ``--home`` a temporary workspace is used (the multilingual model is converted into it
first, ~1 min, not counted). Runs one after another; each takes 5–15 min on 2 CPU cores.
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

CASES = {  # name: (sample, dataset name, model); the -zeroshot cases label the test split without training
    "zh-multilingual": ("sample:chinese-reviews", "chinese-reviews", "multilingual"),
    "zh-zeroshot": ("sample:chinese-reviews", "chinese-reviews", "multilingual"),
    "en-default": ("sample:movie-reviews", "movie-reviews", "default"),
    "en-multilingual": ("sample:movie-reviews", "movie-reviews", "multilingual"),
}
ROWS = 2000


def _dataset(sample: str, name: str) -> None:
    from core.workspace import Registry

    if Registry().dataset(name) is None:
        subprocess.run([sys.executable, "-m", "core", "data", "add", sample, "--name", name, "--json"], cwd=ROOT,
                       check=True, capture_output=True)


def run_case(case: str) -> dict:
    from core.estimates import estimate_training
    from core.models import check_model
    from core.training import config_from_preset

    sample, name, model = CASES[case]
    _dataset(sample, name)
    check_model(model)  # converts the multilingual model once, outside the timed run
    if case.endswith("zeroshot"):
        return _zeroshot_case(case, name, model)
    estimate = estimate_training(config_from_preset("quick", dataset=name, model=model, limit=ROWS))
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "core", "train", "--dataset", name, "--preset", "quick",
                           "--model", model, "--limit", str(ROWS), "--json"], cwd=ROOT, capture_output=True,
                          text=True)
    wall = time.time() - started
    if done.returncode != 0:
        raise SystemExit(f"{case}: training failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    metrics = json.loads((Path(result["run_dir"]) / "metrics.json").read_text())
    return {"case": case, "accuracy": metrics["test"]["accuracy"],
            "baseline": metrics["baseline"]["test"]["accuracy"], "estimate_s": estimate.seconds,
            "basis": estimate.basis, "wall_s": wall, "trainable": metrics["trainable_parameters"],
            "total": metrics["total_parameters"], "run": result["run_id"]}


def _zeroshot_case(case: str, name: str, model: str) -> dict:
    """A zero-shot run of the whole test split, timed against the Train page's estimate."""
    from core.estimates import estimate_zeroshot
    from core.zeroshot import ZeroShotConfig

    estimate = estimate_zeroshot(ZeroShotConfig(dataset=name, model=model))
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "core", "train", "--method", "zeroshot", "--dataset", name,
                           "--model", model, "--json"], cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - started
    if done.returncode != 0:
        raise SystemExit(f"{case}: zero-shot failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"case": case, "accuracy": result["metrics"]["accuracy"], "baseline": float("nan"),
            "estimate_s": estimate.seconds, "basis": estimate.basis, "wall_s": wall, "trainable": 0, "total": 0,
            "run": result["run_id"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"any of {', '.join(CASES)} (default: all)")
    parser.add_argument("--home", help="workspace to use (default: a temporary one)")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}: use {', '.join(CASES)}")
    with tempfile.TemporaryDirectory() as temporary:
        os.environ["OPINIONLAB_HOME"] = args.home or temporary
        rows = []
        for case in args.cases or list(CASES):
            rows.append(run_case(case))
            r = rows[-1]
            versus = "" if r["case"].endswith("zeroshot") else (
                f"TF-IDF {r['baseline']:.4f}  {100 * (r['accuracy'] - r['baseline']):+.1f} points  ")
            print(f"{r['case']:<16} accuracy {r['accuracy']:.4f}  {versus}estimate {r['estimate_s'] / 60:.1f} min "
                  f"({r['basis']})  took {r['wall_s'] / 60:.1f} min  ratio {r['wall_s'] / r['estimate_s']:.2f}  "
                  f"trained {r['trainable']:,} of {r['total']:,} parameters  ({r['run']})", flush=True)


if __name__ == "__main__":
    main()
