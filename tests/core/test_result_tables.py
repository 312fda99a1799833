"""What the Results page shows: Compare's defaults, no baseline against itself, one number
format, readable headers, a legend entry per run."""

import re
import shutil

import pandas as pd
import pytest

from core import figures, runs
from core.result_tables import comparison_table, metric_text, metrics_display, run_label, setting_label
from core.training import TrainConfig, create_run
from core.workspace import Registry, atomic_write_json, read_json


def listed(run_id, dataset, status="succeeded", created_at=0.0, method="baseline", name=None):
    return {"id": run_id, "dataset": dataset, "status": status, "created_at": created_at, "method": method,
            **({"name": name} if name else {})}


def test_compare_defaults_to_finished_runs_of_the_current_runs_dataset():
    listing = [  # newest first, as list_runs gives them
        listed("r6", "news", created_at=6),
        listed("r5", "reviews", status="running", created_at=5),
        listed("r4", "reviews", created_at=4),
        listed("r3", "news", created_at=3),
        listed("r2", "reviews", status="failed", created_at=2),
        listed("r1", "reviews", created_at=1),
    ]
    assert runs.default_comparison(listing, "r1") == ["r1", "r4"]  # not the two newest (r6, r4)
    assert runs.default_comparison(listing, "r5") == ["r4", "r1"]  # a running run: its dataset's finished runs
    assert runs.default_comparison(listing, "r3") == ["r3", "r6"]
    many = [listed(f"m{i}", "reviews", created_at=i) for i in range(9)]
    assert runs.default_comparison(many, "m0") == ["m0", "m8", "m7", "m6"]
    assert runs.default_comparison([], None) == []


def test_a_baseline_run_has_no_baseline_to_beat():
    metrics = {"test": {"accuracy": 0.8}, "baseline": {"test": {"accuracy": 0.8}}}
    assert runs.baseline_reference({"config": {"method": "baseline"}, "metrics": metrics}) == {}
    assert runs.baseline_reference({"config": {"method": "lora"}, "metrics": metrics}) == {"accuracy": 0.8}
    assert runs.baseline_reference({"config": {"method": "full"}, "metrics": {}}) == {}


def test_per_class_table_has_one_number_format_and_no_none():
    report = {"per_class": {"negative": {"precision": 0.91234, "recall": 0.8, "f1": 0.85, "support": 1200},
                            "positive": {"precision": 0.8, "recall": 0.9, "f1": 0.8471, "support": 34}},
              "macro_precision": 0.856, "macro_recall": 0.85, "macro_f1": 0.8486, "weighted_precision": 0.9,
              "weighted_recall": 0.8, "weighted_f1": 0.85, "accuracy": 0.8023, "rows": 1234}
    table = metrics_display(report)
    assert list(table.columns) == ["Class", "Precision", "Recall", "F1", "Support (texts)"]
    assert table["Class"].tolist() == ["negative", "positive", "Macro average", "Weighted average", "Accuracy"]
    assert table["Precision"].tolist() == ["0.912", "0.800", "0.856", "0.900", "—"]
    assert table["F1"].tolist()[-1] == "0.802"
    assert table["Support (texts)"].tolist() == ["1,200", "34", "1,234", "1,234", "1,234"]
    cells = table.to_numpy().ravel().tolist()
    assert not any(c in ("None", "nan") for c in cells)
    assert all(len(c.split(".")[1]) == 3 for c in table[["Precision", "Recall", "F1"]].to_numpy().ravel() if c != "—")
    assert list(metrics_display(report, "zh").columns) == ["类别", "精确率", "召回率", "F1", "样本数（条）"]


def test_metric_text():
    assert [metric_text(v) for v in (0.5, 1, None, float("nan"))] == ["0.500", "1.000", "—", "—"]


def shaded(html: str, colour: str) -> list[tuple[int, int]]:
    """(row, column) of the cells the Styler's CSS gives ``colour``."""
    cells = []
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", html):
        if colour in body:
            cells += [(int(r), int(c)) for r, c in re.findall(r"_row(\d+)_col(\d+)", selectors)]
    return sorted(cells)


def test_comparison_table_headers_values_and_shading():
    result = {"runs": [
        {"id": "a", "status": "succeeded", "accuracy": 0.81, "macro_f1": 0.8, "weighted_f1": 0.8,
         "baseline_accuracy": 0.81, "config.method": "baseline", "config.learning_rate": 1e-4},
        {"id": "b", "status": "succeeded", "accuracy": 0.85, "macro_f1": None, "weighted_f1": 0.84,
         "baseline_accuracy": 0.81, "config.method": "lora", "config.learning_rate": 2e-4}],
        "differs": ["config.method", "config.learning_rate"]}
    styler = comparison_table(result, {"a": "easy · Baseline", "b": "easy · LoRA"})
    table = styler.data
    assert list(table.columns) == ["Run", "Accuracy", "Macro F1", "Weighted F1", "Baseline accuracy", "Method",
                                   "Learning rate"]
    assert table["Run"].tolist() == ["easy · Baseline", "easy · LoRA"]
    assert table["Baseline accuracy"].tolist() == ["—", "0.810"]  # a baseline is not compared with itself
    assert table["Macro F1"].tolist() == ["0.800", "—"]
    assert table["Method"].tolist() == ["Baseline (TF-IDF + logistic regression)", "LoRA (adapters)"]
    assert table["Learning rate"].tolist() == ["—", "0.0002"]  # a baseline has no learning rate
    html = styler.to_html()
    assert shaded(html, "#dcfce7") == [(0, 2), (1, 1)]  # best macro F1 (a), best accuracy (b)
    assert shaded(html, "#fef9c3") == [(0, 5), (0, 6), (1, 5), (1, 6)]  # the settings that differ
    assert list(comparison_table(result, lang="zh").data.columns)[:2] == ["运行", "准确率"]


def test_setting_labels_and_run_labels():
    assert setting_label("learning_rate") == "Learning rate"
    assert setting_label("some_new_field") == "Some new field"
    assert run_label(listed("run_1", "easy", method="lora")) == "run_1 · easy · LoRA (adapters) · succeeded"
    assert run_label(listed("run_1", "easy", name="easy · LoRA · 28 Nov"), "zh").startswith("easy · LoRA · 28 Nov · ")


def test_overlaid_charts_have_a_legend_entry_per_run():
    histories = {"a": [{"event": "eval", "step": 10, "metrics": {"macro_f1": 0.7}}], "b": []}
    fig = figures.compare_curves_figure(histories, names={"a": "Run A", "b": "Run B"})
    assert [(tr.name, tr.showlegend) for tr in fig.data] == [("Run A", True), ("Run B", True)]
    assert fig.layout.legend.title.text == "Run"
    per_class = {"a": {"neg": {"f1": 0.5}, "pos": {"f1": 0.75}}, "b": {"neg": {"f1": 0.25}}}
    bars = figures.compare_per_class_figure(per_class, "zh", {"a": "Run A", "b": "Run B"})
    assert [tr.name for tr in bars.data] == ["Run A", "Run B"] and all(tr.showlegend for tr in bars.data)
    assert list(bars.data[0].x) == ["neg", "pos"] and list(bars.data[1].y) == [0.25, None]
    assert bars.layout.legend.title.text == "运行"


def finished_copy(run_id: str, method: str, dataset: str = "easy", baseline_shift: float = -0.1) -> str:
    """A finished run of ``method`` made from a run's outputs (no training), its baseline's test
    accuracy shifted so that the two differ."""
    registry = Registry()
    folder = create_run(TrainConfig(dataset=dataset, method=method))
    source = registry.root / "runs" / run_id
    for name in ("metrics.json", "predictions_test.parquet", "status.json"):
        shutil.copy(source / name, folder / name)
    shutil.copytree(source / "model", folder / "model")
    metrics = read_json(folder / "metrics.json")
    baseline = metrics["baseline"]["test"]
    metrics["baseline"] = {"test": {**baseline, "accuracy": baseline["accuracy"] + baseline_shift}}
    atomic_write_json(folder / "metrics.json", metrics)
    registry.update_run(folder.name, "succeeded")
    return folder.name


@pytest.fixture
def lora_copy(baseline_run):
    return finished_copy(baseline_run, "lora")


def test_compare_runs_gives_per_class_scores(baseline_run, lora_copy):
    result = runs.compare_runs([baseline_run, lora_copy])
    assert set(result["per_class"]) == {baseline_run, lora_copy}
    assert set(result["per_class"][baseline_run]) == {"negative", "positive"}
    table = comparison_table(result).data
    assert "Method" in table.columns and isinstance(table, pd.DataFrame)
    assert table["Baseline accuracy"].tolist()[0] == "—" and table["Baseline accuracy"].tolist()[1] != "—"


def test_settings_a_method_does_not_use_show_a_dash_and_no_limit_reads_all():
    result = {"runs": [
        {"id": "a", "config.method": "baseline", "config.epochs": 3, "config.limit": 0, "config.lora_r": 8},
        {"id": "b", "config.method": "lora", "config.epochs": 2, "config.limit": 500, "config.lora_r": 16},
        {"id": "c", "config.method": "full", "config.epochs": 1, "config.limit": 0, "config.lora_r": 8}],
        "differs": ["config.method", "config.epochs", "config.limit", "config.lora_r"]}
    table = comparison_table(result).data
    assert table["Epochs"].tolist() == ["—", "2", "1"]
    assert table[setting_label("limit")].tolist() == ["all", "500", "all"]
    assert table[setting_label("lora_r")].tolist() == ["—", "16", "—"]
    assert comparison_table(result, lang="zh").data.iloc[0].tolist().count("全部") == 1


def test_a_zero_f1_is_drawn_with_its_label():
    bars = figures.compare_per_class_figure({"a": {"neg": {"f1": 0.0}, "pos": {"f1": 0.9}}})
    assert list(bars.data[0].text) == ["0.000", "0.900"] and bars.data[0].textposition == "outside"
