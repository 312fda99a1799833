"""Training throughput, side by side in one run (issue 3).

Ours: Opinion Lab's loop (length-grouped batches, dynamic padding, head+tail truncation).
References, fed the same model, rows, batch size and max length:
  - a plain Hugging Face ``Trainer`` with ``padding="max_length"`` (as AutoTrain and the
    transformers text-classification example do);
  - the same ``Trainer`` with dynamic padding (``DataCollatorWithPadding``).

Each is timed over the same number of optimiser steps after one warm-up step; samples/s and
the ratios are printed, and the peak resident memory of our run (which goes first).

    python bench/bench_train.py [--rows 512] [--batch-size 32] [--max-length 128]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def sample_rows(n: int) -> tuple[list[str], list[int]]:
    """Mixed lengths as in the sample: IMDB and Rotten Tomatoes rows in their natural share."""
    from core.data import clean_texts
    from core.samples import load_sample

    table, _ = load_sample("sample:movie-reviews")
    frame = table.frame.sample(n=n, random_state=0)
    texts, _, _ = clean_texts(frame["text"])
    return texts.tolist(), [1 if lab == "positive" else 0 for lab in frame["label"]]


def ours(texts, labels, batch_size, max_length, steps) -> float:
    """The real training loop (core.training.run_training) on the same rows; samples/s is read
    from its own progress log between the first and the last timed step."""
    import pandas as pd

    from core.data import ColumnMapping, Table, prepare_dataset
    from core.datasets import save_dataset
    from core.training import TrainConfig, create_run, read_progress, run_training

    with tempfile.TemporaryDirectory() as home:
        os.environ["OPINIONLAB_HOME"] = home
        n = steps + 1
        rows = batch_size * n
        split = ["train"] * rows + ["validation", "test"] * 8
        frame = pd.DataFrame({"text": texts[:rows] + texts[-16:],
                              "label": [("negative", "positive")[y] for y in labels[:rows] + labels[-16:]],
                              "split": split}, dtype="str")
        table = Table(frame, "bench.csv", "csv")
        save_dataset(prepare_dataset(table, ColumnMapping(text="text", label="label", split="split")), "bench")
        config = TrainConfig(dataset="bench", epochs=1, batch_size=batch_size, max_length=max_length,
                             learning_rate=5e-5, warmup_ratio=0.0, checkpoint_every=10_000)
        folder = create_run(config)
        run_training(folder)
        events = [e for e in read_progress(folder) if e["event"] == "step"]
    seconds = events[-1]["time"] - events[0]["time"]
    return (len(events) - 1) * batch_size / seconds


def trainer(texts, labels, batch_size, max_length, steps, padding: str) -> float:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from core.models import default_model_dir

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
    model = AutoModelForSequenceClassification.from_pretrained(default_model_dir(), num_labels=2,
                                                               attn_implementation="sdpa")
    enc = tokenizer(texts, truncation=True, max_length=max_length,
                    padding="max_length" if padding == "max_length" else False)

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(texts)

        def __getitem__(self, i):
            return {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": labels[i]}

    class Clock(TrainerCallback):
        start = None

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                Clock.start = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps + 1,
                                 learning_rate=5e-5, use_cpu=not torch.cuda.is_available(),
                                 bf16=torch.cuda.is_available(), report_to=[], save_strategy="no",
                                 logging_strategy="no", dataloader_num_workers=0, seed=0)
        run = Trainer(model=model, args=args, train_dataset=Rows(), data_collator=DataCollatorWithPadding(tokenizer),
                      callbacks=[Clock()])
        run.train()
        seconds = time.perf_counter() - Clock.start
    return steps * batch_size / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    texts, labels = sample_rows(args.rows)
    device = torch.cuda.get_device_name(0) + " (bf16 autocast, both)" if torch.cuda.is_available() else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.rows} rows of sample:movie-reviews, batch {args.batch_size}, max length {args.max_length}, "
          f"{args.steps} timed steps, {device}")
    mine = ours(texts, labels, args.batch_size, args.max_length, args.steps)
    our_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ref_fixed = trainer(texts, labels, args.batch_size, args.max_length, args.steps, "max_length")
    print(f"  HF Trainer, padding=max_length : {ref_fixed:6.1f} samples/s")
    ref_dynamic = trainer(texts, labels, args.batch_size, args.max_length, args.steps, "dynamic")
    print(f"  HF Trainer, dynamic padding    : {ref_dynamic:6.1f} samples/s")
    print(f"  Opinion Lab (length-grouped)   : {mine:6.1f} samples/s")
    print(f"ratio vs Trainer max_length padding: {mine / ref_fixed:.2f}x (target >= 1.5x)")
    print(f"ratio vs Trainer dynamic padding   : {mine / ref_dynamic:.2f}x (target >= 1.0x)")
    print(f"peak RSS of our training run (model, data, optimiser; measured first): {our_peak:.0f} MB")


if __name__ == "__main__":
    main()
