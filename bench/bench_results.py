"""Evaluation speed and Results page render time (issue 4).

Builds a throwaway workspace: 10,000 test rows from sample:movie-reviews, a short MiniLM run
(64 training rows, one epoch: the run's own test evaluation is the 10,000-row evaluation),
then times (1) scoring the 10,000 rows again through ``load_predictor`` (rows/s) and (2) the
Results page rendering that run with its 10,000 predictions in AppTest (target < 2 s).

    python bench/bench_results.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["OPINIONLAB_HOME"] = home
        import pandas as pd

        from core.data import ColumnMapping, Table, prepare_dataset
        from core.datasets import save_dataset
        from core.predict import load_predictor
        from core.samples import load_sample
        from core.training import TrainConfig, create_run, run_training

        table, _ = load_sample("sample:movie-reviews")
        frame = table.frame.sample(n=args.rows + 96, random_state=0).reset_index(drop=True)
        frame["split"] = ["train"] * 64 + ["validation"] * 32 + ["test"] * args.rows
        prepared = prepare_dataset(Table(frame, "bench.csv", "csv"),
                                   ColumnMapping(text="text", label="label", split="split"))
        save_dataset(prepared, "bench")
        folder = create_run(TrainConfig(dataset="bench", epochs=1, batch_size=16, max_length=128))
        run_training(folder)
        test = pd.read_parquet(folder / "predictions_test.parquet")
        predictor = load_predictor(folder.name)
        start = time.perf_counter()
        predictor.predict_proba(test["text"].tolist())
        seconds = time.perf_counter() - start
        print(f"evaluation: {len(test):,} rows at max length 128 in {seconds:.1f} s = {len(test) / seconds:.1f} rows/s")

        from streamlit.testing.v1 import AppTest

        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        app.switch_page("pages/results.py")
        start = time.perf_counter()
        app.run()
        first = time.perf_counter() - start
        start = time.perf_counter()
        app.run()
        again = time.perf_counter() - start
        assert not app.exception, app.exception
        print(f"Results page with {len(test):,} predictions: first render {first:.2f} s, "
              f"next render {again:.2f} s (target < 2 s: {'met' if first < 2 else 'MISSED'})")


if __name__ == "__main__":
    main()
