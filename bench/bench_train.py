"""Training throughput, side by side in one run (issue 12).

Ours: Opinion Lab's engine (``run_training``: the Hugging Face ``Trainer`` with length-grouped
batches, dynamic padding, head+tail truncation). References, fed the same model, rows, batch
size and max length:
  - a plain ``Trainer`` with ``padding="max_length"`` (as AutoTrain and the transformers
    text-classification example do);
  - the same ``Trainer`` with dynamic padding (``DataCollatorWithPadding``).

Each is timed over the same number of optimiser steps after one warm-up step. On a GPU all three
run in bf16 and the model FLOPs utilisation is printed: 6 × parameters × real (non-padding)
tokens per second ÷ the GPU's peak dense bf16 FLOP/s (``PEAK_TFLOPS`` overrides the table).

    python bench/bench_train.py [--rows 640] [--batch-size 32] [--max-length 128 256] [--steps 12] [--together]

``--together`` runs the three at once, one thread each, and counts only the time all three were
training: on a machine that others share, a neighbour then slows all three alike.
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
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

STEP_TIMES: dict[str, list[float]] = {}  # engine -> wall-clock time at the end of each step
ENGINES = ("max_length", "dynamic", "ours")
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def sample_rows(n: int) -> tuple[list[str], list[int]]:
    """Mixed lengths as in the sample: IMDB and Rotten Tomatoes rows in their natural share."""
    from core.data import clean_texts
    from core.samples import load_sample

    table, _ = load_sample("sample:movie-reviews")
    frame = table.frame.sample(n=n, random_state=0)
    texts, _, _ = clean_texts(frame["text"])
    return texts.tolist(), [1 if lab == "positive" else 0 for lab in frame["label"]]


def ours(texts, labels, batch_size, max_length, steps) -> float:
    """The real engine on the same rows; samples/s is read from its own progress log between the
    first and the last timed step (the first step is the warm-up)."""
    import pandas as pd

    from core.data import ColumnMapping, Table, prepare_dataset
    from core.datasets import save_dataset
    from core.training import TrainConfig, create_run, read_progress, run_training

    with tempfile.TemporaryDirectory() as home:
        os.environ["OPINIONLAB_HOME"] = home
        rows = batch_size * (steps + 1)
        split = ["train"] * rows + ["validation", "test"] * 8
        frame = pd.DataFrame({"text": texts[:rows] + texts[-16:],
                              "label": [("negative", "positive")[y] for y in labels[:rows] + labels[-16:]],
                              "split": split}, dtype="str")
        table = Table(frame, "bench.csv", "csv")
        save_dataset(prepare_dataset(table, ColumnMapping(text="text", label="label", split="split")), "bench")
        config = TrainConfig(dataset="bench", epochs=1, batch_size=batch_size, max_length=max_length,
                             head_tokens=min(32, max_length // 4), learning_rate=5e-5, warmup_ratio=0.0,
                             checkpoint_every=10_000)
        folder = create_run(config)
        run_training(folder)
        events = [e for e in read_progress(folder) if e["event"] == "step"]
    STEP_TIMES["ours"] = [e["time"] for e in events]
    seconds = events[-1]["time"] - events[0]["time"]
    return (len(events) - 1) * batch_size / seconds


def trainer(texts, labels, batch_size, max_length, steps, padding: str) -> float:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
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
        times: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            Clock.times.append(time.time())
            if state.global_step == 1:
                Clock.start = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps + 1,
                                 learning_rate=5e-5, use_cpu=not torch.cuda.is_available(),
                                 bf16=torch.cuda.is_available(), report_to=[], save_strategy="no",
                                 logging_strategy="no", dataloader_num_workers=0, seed=0, disable_tqdm=True)
        run = Trainer(model=model, args=args, train_dataset=Rows(), data_collator=DataCollatorWithPadding(tokenizer),
                      callbacks=[Clock()])
        run.remove_callback(PrinterCallback)
        run.train()
        seconds = time.perf_counter() - Clock.start
    STEP_TIMES[padding] = Clock.times
    return steps * batch_size / seconds


def real_tokens_per_text(texts: list[str], max_length: int) -> float:
    """Mean non-padding tokens a text becomes at ``max_length`` (the work every engine must do)."""
    from transformers import AutoTokenizer

    from core.models import default_model_dir
    from core.training import encode_texts

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
    encoded = encode_texts(tokenizer, texts, max_length, min(32, max_length // 4))
    return sum(len(x) for x in encoded) / len(encoded)


def padded_tokens_per_text(texts: list[str], batch_size: int, max_length: int) -> dict[str, float]:
    """Tokens each engine computes per text, padding included: max_length pads every text to the
    window; dynamic pads random batches to their longest; ours pads length-grouped batches."""
    import numpy as np
    from transformers import AutoTokenizer

    from core.models import default_model_dir
    from core.training import encode_texts, length_grouped_batches

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
    lengths = [len(x) for x in encode_texts(tokenizer, texts, max_length, min(32, max_length // 4))]
    order = np.random.default_rng(0).permutation(len(lengths))
    random_batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    grouped = length_grouped_batches(lengths, batch_size, seed=42)

    def padded(batches) -> float:
        return sum(max(lengths[i] for i in b) * len(b) for b in batches) / len(lengths)

    return {"max_length": float(max_length), "dynamic": padded(random_batches), "ours": padded(grouped)}


def model_parameters() -> int:
    from transformers import AutoModelForSequenceClassification

    from core.models import default_model_dir

    model = AutoModelForSequenceClassification.from_pretrained(default_model_dir(), num_labels=2)
    return sum(p.numel() for p in model.parameters())


def peak_flops() -> float | None:
    import torch

    if os.environ.get("PEAK_TFLOPS"):
        return float(os.environ["PEAK_TFLOPS"]) * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((tf * 1e12 for key, tf in PEAK_BF16_TFLOPS.items() if key in name), None)


def measure(texts, labels, args, max_length: int, engine: str) -> float:
    rows = args.batch_size * (args.steps + 1)
    if engine == "ours":
        return ours(texts, labels, args.batch_size, max_length, args.steps)
    return trainer(texts[:rows], labels[:rows], args.batch_size, max_length, args.steps, engine)


def together(args, max_length: int) -> dict[str, float]:
    """The three engines at once, one thread each, in separate processes: a busy machine slows
    them alike. Each one's rate counts only the window in which all three were training."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory() as out:
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", engine, "--rows", str(args.rows),
                                   "--batch-size", str(args.batch_size), "--max-length", str(max_length),
                                   "--steps", str(args.steps), "--out", f"{out}/{engine}.json"],
                                  env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
                 for engine in ENGINES]
        for proc in procs:
            proc.wait()
        times = {e: json.loads(Path(f"{out}/{e}.json").read_text()) for e in ENGINES}
    start, end = max(t[0] for t in times.values()), min(t[-1] for t in times.values())
    return {e: args.batch_size * (_steps_at(t, end) - _steps_at(t, start)) / (end - start) for e, t in times.items()}


def _steps_at(times: list[float], moment: float) -> float:
    """Steps done by ``moment``, interpolated between step ends."""
    import numpy as np

    return float(np.interp(moment, times, range(1, len(times) + 1)))


def compare(texts, labels, args, max_length: int) -> None:
    rows = args.batch_size * (args.steps + 1)
    tokens = real_tokens_per_text(texts[:rows], max_length)
    work = padded_tokens_per_text(texts[:rows], args.batch_size, max_length)
    if args.together:
        rate = together(args, max_length)
    else:
        rate = {engine: measure(texts, labels, args, max_length, engine) for engine in ("ours", "max_length", "dynamic")}
    mine, fixed, dynamic = rate["ours"], rate["max_length"], rate["dynamic"]
    print(f"max length {max_length} ({tokens:.0f} real tokens per text on average; tokens computed per text, "
          f"padding included: max_length {work['max_length']:.0f}, dynamic {work['dynamic']:.0f}, "
          f"ours {work['ours']:.0f}):")
    print(f"  HF Trainer, padding=max_length : {fixed:8.1f} samples/s")
    print(f"  HF Trainer, dynamic padding    : {dynamic:8.1f} samples/s")
    print(f"  Opinion Lab (length-grouped)   : {mine:8.1f} samples/s")
    print(f"  ratio vs Trainer max_length padding: {mine / fixed:.2f}x (target >= {args.target(max_length)}x)")
    print(f"  ratio vs Trainer dynamic padding   : {mine / dynamic:.2f}x (target >= 1.0x)")
    peak = peak_flops()
    if peak:
        n_params = model_parameters()
        for name, value in (("max_length", fixed), ("dynamic", dynamic), ("Opinion Lab", mine)):
            print(f"  MFU {name:<12}: {6 * n_params * value * tokens / peak:.1%} of {peak / 1e12:.0f} TFLOP/s")


def worker(args) -> None:
    """One engine of ``--together``: train, then write each step's end time."""
    import json

    import torch

    torch.set_num_threads(1)
    texts, labels = sample_rows(args.rows)
    measure(texts, labels, args, args.max_length[0], args.worker)
    Path(args.out).write_text(json.dumps(STEP_TIMES[args.worker]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--together", action="store_true",
                        help="run the three engines at once (one thread each): for a machine others are using")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    args.target = lambda length: 1.3 if length <= 128 else 1.6
    import torch

    torch.manual_seed(0)
    texts, labels = sample_rows(args.rows)
    device = torch.cuda.get_device_name(0) + " (bf16, all three)" if torch.cuda.is_available() else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.rows} rows of sample:movie-reviews, batch {args.batch_size}, {args.steps} timed steps, {device}")
    for max_length in args.max_length:
        compare(texts, labels, args, max_length)


if __name__ == "__main__":
    main()
