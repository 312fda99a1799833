"""Method comparison (core/comparison.py, ``python -m core compare-methods``): one run per
method, size and seed on the same training rows; the JSON table; sizes a small class cannot
honour are refused and the rest run; the chart and table builders."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core import comparison, jobs
from core.cli import main
from core.comparison_display import methods_figure, summary_table
from core.data import ColumnMapping, Table, prepare_dataset
from core.datasets import save_dataset
from core.modeling.splits import load_splits
from core.training import TrainConfig, validate
from core.workspace import Registry, read_json
from tests.conftest import easy_rows

ROW_KEYS = {"method", "per_class", "seed", "accuracy", "macro_f1", "trainable_parameters", "seconds", "peak_memory_mb"}


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_compare_methods_reports_one_row_per_method_size_and_seed(easy_dataset, tiny_model_dir, capsys):
    code = main(["compare-methods", "--dataset", "easy", "--methods", "baseline,full", "--per-class", "8,16",
                 "--seeds", "1", "--model", str(tiny_model_dir), "--foreground", "--json"])
    assert code == 0
    created = last_json(capsys)
    assert main(["compare-methods", "show", created["comparison_id"], "--json"]) == 0
    shown = last_json(capsys)
    rows = shown["rows"]
    assert [(r["method"], r["per_class"], r["seed"]) for r in rows] == [
        ("baseline", 8, 42), ("baseline", 16, 42), ("full", 8, 42), ("full", 16, 42)]
    assert all(set(r) >= ROW_KEYS and r["status"] == "succeeded" for r in rows)
    for row in rows:
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["macro_f1"] <= 1 and row["seconds"] > 0
        assert row["peak_memory_mb"] > 10  # a Python process with torch loaded
        assert (row["trainable_parameters"] is None) == (row["method"] == "baseline")
    assert [(s["method"], s["per_class"], s["finished"], s["accuracy_spread"]) for s in shown["summary"]] == [
        ("baseline", 8, 1, 0.0), ("baseline", 16, 1, 0.0), ("full", 8, 1, 0.0), ("full", 16, 1, 0.0)]
    registry = Registry()
    trained = {}
    for row in rows:  # each run learnt from exactly per_class rows of each label, the same rows for every method
        config = TrainConfig.load(registry.root / "runs" / row["run_id"] / "config.json")
        train = load_splits(config, registry)[0]["train"]
        assert train["label"].value_counts().tolist() == [row["per_class"]] * 2
        trained.setdefault(row["per_class"], []).append(sorted(train["text"]))
    assert all(a == b for a, b in trained.values())


def test_runs_are_submitted_as_background_jobs(easy_dataset, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(jobs, "schedule", lambda registry=None: [])  # queued, not started
    config = comparison.ComparisonConfig(dataset="easy", methods=["baseline", "lora"], per_class=[8], seeds=2,
                                         model=str(tiny_model_dir))
    record = comparison.create_comparison(config)
    queued = {j["target"]: j for j in Registry().jobs()}
    assert {r["run_id"] for r in record["runs"]} == set(queued) and len(queued) == 4
    assert {r["seed"] for r in record["runs"]} == {42, 43}
    assert read_json(Registry().root / "comparisons" / f"{record['id']}.json")["runs"] == record["runs"]
    report = comparison.comparison_report(record["id"])
    assert all(r["status"] == "queued" and r["accuracy"] is None for r in report["rows"])
    assert [s["finished"] for s in report["summary"]] == [0, 0] and report["summary"][0]["accuracy_mean"] is None
    cancelled = record["runs"][0]["run_id"]  # cancelled while queued: only the job says so
    jobs.cancel(next(j["id"] for j in Registry().jobs() if j["target"] == cancelled))
    rows = comparison.comparison_report(record["id"])["rows"]
    assert [r["status"] for r in rows if r["run_id"] == cancelled] == ["cancelled"]
    from core.runs import list_runs  # run lists say which comparison cell a run is

    names = sorted(r["name"] for r in list_runs())
    assert sum("comparison, 8/class, seed 42" in n for n in names) == 2 and all("comparison" in n for n in names)
    assert any("方法比较，每类 8 条，种子 43" in r["name"] for r in list_runs(lang="zh"))


@pytest.fixture
def small_class(workspace):
    """'tiny-class': 'negative' has 3 training rows, 'positive' 40."""
    rows = [(text, label) for text, label in easy_rows(50) if label == "positive"][:40]
    negatives = [(text, label) for text, label in easy_rows(50) if label == "negative"]
    frame = pd.DataFrame(rows + negatives[:3], columns=["text", "label"], dtype="str").assign(split="train")
    held = pd.DataFrame(negatives[3:13] + [r for r in easy_rows(50, seed=3) if r[1] == "positive"][:10],
                        columns=["text", "label"], dtype="str")
    held["split"] = ["validation", "test"] * (len(held) // 2)
    table = Table(pd.concat([frame, held], ignore_index=True), "small.csv", "csv", "utf-8", ",")
    save_dataset(prepare_dataset(table, ColumnMapping(text="text", label="label", split="split")), "tiny-class")
    return "tiny-class"


def test_sizes_a_small_class_cannot_honour_are_refused_and_the_rest_run(small_class, capsys):
    code = main(["compare-methods", "--dataset", "tiny-class", "--methods", "baseline", "--per-class", "2,8,all",
                 "--seeds", "1", "--foreground", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert "8 training examples per class cannot be honoured: 'negative' (3)" in captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert [r["per_class"] for r in result["refused"]] == [8]
    assert [(r["per_class"], r["status"]) for r in result["rows"]] == [(2, "succeeded"), ("all", "succeeded")]
    assert result["per_class"] == [2, "all"]
    assert main(["compare-methods", "--dataset", "tiny-class", "--methods", "baseline", "--per-class", "5,8",
                 "--seeds", "1", "--lang", "zh"]) == 2
    assert "最小的类只有 3 个训练行" in capsys.readouterr().err


def test_per_class_is_checked_like_any_setting(easy_dataset, tiny_model_dir):
    problems = [str(p) for p in validate(TrainConfig(dataset="easy", model=str(tiny_model_dir), per_class=500))]
    assert any("500 training examples per class cannot be honoured" in p and "'negative'" in p for p in problems)
    assert validate(TrainConfig(dataset="easy", model=str(tiny_model_dir), per_class=8, batch_size=8)) == []


@pytest.mark.parametrize(("argv", "says"), [
    (["--methods", "full,magic"], "Unknown method(s) magic"),
    (["--per-class", "8,lots"], "'lots' is not a training size"),
    (["--seeds", "0"], "between 1 and 10 seeds"),
    (["--dataset", "nope"], "nope"),
])
def test_bad_comparisons_exit_2(easy_dataset, capsys, argv, says):
    code = main(["compare-methods", "--dataset", "easy", *argv])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err
    assert not (Registry().root / "comparisons").exists()


SUMMARY = [
    {"method": "baseline", "per_class": 8, "seeds": 3, "finished": 3, "accuracy_mean": 0.6, "accuracy_spread": 0.02,
     "macro_f1_mean": 0.58, "macro_f1_spread": 0.03, "seconds": 1.2, "peak_memory_mb": 300.0,
     "trainable_parameters": None},
    {"method": "baseline", "per_class": "all", "seeds": 3, "finished": 3, "accuracy_mean": 0.8,
     "accuracy_spread": 0.01, "macro_f1_mean": 0.79, "macro_f1_spread": 0.01, "seconds": 3.0,
     "peak_memory_mb": 310.0, "trainable_parameters": None},
    {"method": "lora", "per_class": 8, "seeds": 3, "finished": 2, "accuracy_mean": 0.55, "accuracy_spread": 0.05,
     "macro_f1_mean": 0.5, "macro_f1_spread": 0.06, "seconds": 75.0, "peak_memory_mb": 2600.4,
     "trainable_parameters": 74_000.0},
    {"method": "lora", "per_class": "all", "seeds": 3, "finished": 0, "accuracy_mean": None, "accuracy_spread": None,
     "macro_f1_mean": None, "macro_f1_spread": None, "seconds": None, "peak_memory_mb": None,
     "trainable_parameters": None},
]


def test_the_chart_has_a_line_per_method_the_baseline_dashed_and_seed_error_bars():
    fig = methods_figure(SUMMARY, [8, "all"], "zh")
    assert [trace.name for trace in fig.data] == ["基线（TF-IDF + 逻辑回归）", "LoRA（适配器）"]
    baseline, lora = fig.data
    assert baseline.line.dash == "dash" and lora.line.dash is None
    assert list(baseline.customdata) == ["8", "全部"] and list(baseline.y) == [0.6, 0.8]
    assert list(fig.layout.xaxis.ticktext) == ["8", "全部"] and list(fig.layout.xaxis.tickvals) == [0, 1]
    # set side by side around their size, so equal accuracies do not hide a line; own markers
    assert baseline.x[0] < 0 < lora.x[0] < 0.5 and lora.x[1] - lora.x[0] == pytest.approx(1)
    assert baseline.marker.symbol != lora.marker.symbol
    assert list(baseline.error_y.array) == [0.02, 0.01] and list(lora.y) == [0.55, None]
    assert fig.layout.xaxis.title.text == "每类训练样本数"


def test_the_table_shows_means_spreads_counts_and_no_none():
    table = summary_table(SUMMARY, "en")
    assert list(table.columns) == ["Method", "Examples per class", "Accuracy (mean ± spread)",
                                   "Macro F1 (mean ± spread)", "Trainable parameters", "Training time",
                                   "Peak memory (MB)", "Seeds finished"]
    lora = table.iloc[2]
    assert (lora["Accuracy (mean ± spread)"], lora["Trainable parameters"], lora["Peak memory (MB)"],
            lora["Training time"], lora["Seeds finished"]) == ("0.550 ± 0.050", "74,000", "2,600", "1 min 15 s", "2/3")
    assert table.iloc[0]["Trainable parameters"] == "none (TF-IDF)" and table.iloc[1]["Examples per class"] == "all"
    assert table.iloc[3]["Accuracy (mean ± spread)"] == "—"
    assert not table.isin(["None", "nan"]).any().any()
