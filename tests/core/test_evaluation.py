import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

from core import figures
from core.errors import ConfigError, DataError
from core.evaluation import calibration, classification_metrics, full_report, map_labels
from core.explain import explain, highlight_html, words_of
from core.predict import load_predictor
from core.runs import compare_runs, evaluate_run, list_runs, metrics_table, model_zip
from core.training import TrainConfig, create_run, run_training
from tests.conftest import csv_bytes

LABELS = ["negative", "neutral", "positive"]
TRUE = ["negative", "negative", "neutral", "positive", "positive", "positive"]
PRED = ["negative", "positive", "neutral", "positive", "neutral", "positive"]


def test_metrics_match_scikit_learn():
    m = classification_metrics(TRUE, PRED, LABELS)
    p, r, f, s = precision_recall_fscore_support(TRUE, PRED, labels=LABELS, zero_division=0)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx(f1_score(TRUE, PRED, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(TRUE, PRED, average="weighted"))
    assert [m["per_class"][lab]["precision"] for lab in LABELS] == pytest.approx(list(p))
    assert [m["per_class"][lab]["support"] for lab in LABELS] == list(s)


def test_confusion_matrix_rows_are_true_columns_predicted_in_label_order():
    m = classification_metrics(TRUE, PRED, LABELS)
    assert m["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    reordered = classification_metrics(TRUE, PRED, ["positive", "neutral", "negative"])
    assert reordered["confusion_matrix"][0] == [2, 1, 0]


def test_curves_calibration_and_mistakes_on_known_inputs():
    labels = ["negative", "positive"]
    y = ["negative", "negative", "positive", "positive"]
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.35, 0.65], [0.2, 0.8]])
    report = full_report(y, probs, labels, texts=["a", "b", "c", "d"])
    assert list(report["curves"]) == ["positive"]
    assert report["curves"]["positive"]["roc_auc"] == pytest.approx(roc_auc_score([0, 0, 1, 1], probs[:, 1]))
    assert report["confusion_matrix_normalised"] == [[0.5, 0.5], [0.0, 1.0]]
    assert report["misclassified"] == [{"row": 1, "text": "b", "true": "negative", "predicted": "positive",
                                        "confidence": 0.6}]
    assert sum(report["confidence_histogram"]) == 4


def test_expected_calibration_error_by_hand():
    confidence = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, True, True, False])
    cal = calibration(confidence, correct, bins=10)
    # bin 0.9-1.0: conf .95 acc 1.0; bin 0.5-0.6: conf .55 acc .5 -> ECE = .5*.05 + .5*.05
    assert cal["ece"] == pytest.approx(0.05)
    assert [b["count"] for b in cal["bins"]][5] == 2


def test_multiclass_gets_one_vs_rest_curves():
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.6, 0.2], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    report = full_report(["negative", "neutral", "positive", "negative"], probs, LABELS)
    assert set(report["curves"]) == set(LABELS)


def test_label_mapping_of_external_files():
    mapping, unmapped = map_labels(["Positive", "neg", "正面", "meh", "NEGATIVE "], ["negative", "positive"])
    assert mapping == {"Positive": "positive", "neg": "negative", "正面": "positive", "NEGATIVE ": "negative"}
    assert unmapped == ["meh"]


def test_figure_builders_have_expected_traces():
    cm = figures.confusion_matrix_figure([[3, 1], [0, 4]], ["negative", "positive"])
    assert cm.data[0].type == "heatmap" and list(cm.data[0].x) == ["negative", "positive"]
    curves = {"positive": {"fpr": [0, 1], "tpr": [0, 1], "roc_auc": 0.5, "precision": [1, 0.5],
                           "recall": [0, 1], "average_precision": 0.5}}
    assert len(figures.roc_figure(curves).data) == 2
    assert figures.pr_figure(curves).data[0].name.startswith("positive")
    cal = calibration(np.array([0.9, 0.6]), np.array([True, False]))
    assert len(figures.calibration_figure(cal).data) == 2
    assert figures.confidence_histogram_figure([1, 2, 3]).data[0].type == "bar"
    history = {"r1": [{"event": "eval", "step": 5, "metrics": {"macro_f1": 0.7}}], "r2": []}
    assert [tr.name for tr in figures.compare_curves_figure(history).data] == ["r1", "r2"]
    curve = figures.training_curves_figure([{"event": "step", "step": 1, "loss": 0.7},
                                            {"event": "eval", "step": 1, "metrics": {"macro_f1": 0.5}}])
    assert len(curve.data) == 2


def test_highlight_escapes_user_text():
    out = highlight_html(["<script>alert(1)</script>", "ok"], [0.5, -0.2])
    assert "<script>" not in out and "&lt;script&gt;" in out


def test_chinese_words_are_characters():
    assert words_of("质量很好 great!") == ["质", "量", "很", "好", "great!"]


def test_explain_one_attribution_per_token_and_decisive_word(baseline_run):
    model = load_predictor(baseline_run)
    result = explain(model, "the film was great and wonderful")
    assert len(result["attributions"]) == len(result["tokens"]) == 6
    assert result["label"] == "positive"
    top = result["tokens"][int(np.argmax(result["attributions"]))]
    assert top in {"great", "wonderful"}
    without = explain(model, "the film was and")
    assert without["probabilities"]["positive"] < result["probabilities"]["positive"]
    with pytest.raises(ConfigError, match="empty"):
        explain(model, "   ")


def test_explain_tiny_transformer(easy_dataset, tiny_model_dir):
    folder = create_run(TrainConfig(dataset="easy", model=str(tiny_model_dir), epochs=10, batch_size=8,
                                    max_length=16, head_tokens=4, learning_rate=1e-2))
    assert run_training(folder)["test"]["accuracy"] >= 0.75
    model = load_predictor(folder.name)
    result = explain(model, "the film awful music")
    assert len(result["attributions"]) == len(result["tokens"]) == 4 and not result["truncated"]
    assert result["label"] == "negative"
    decisive = result["tokens"].index("awful")
    assert result["attributions"][decisive] == max(result["attributions"]) > 0.5
    without = explain(model, "the film music")
    assert without["label"] == "positive"
    assert without["attributions"] != [a for i, a in enumerate(result["attributions"]) if i != decisive]
    long = explain(model, " ".join(["film"] * 40) + " great")
    assert len(long["attributions"]) == 41 and long["truncated"] and long["max_length"] == 16


def test_evaluate_run_on_its_test_split_and_on_a_file(baseline_run, tmp_path):
    own = evaluate_run(baseline_run)
    assert own["rows"] == 12 and own["accuracy"] >= 0.9
    path = tmp_path / "other.csv"
    rows = [("great wonderful film", "Positive"), ("awful boring film", "neg"), ("what a film", "meh")]
    path.write_bytes(csv_bytes(rows, header=("review", "sentiment")))
    other = evaluate_run(baseline_run, file=path)
    assert other["rows"] == 2 and other["unmapped_labels"] == ["meh"] and other["skipped_rows"] == 1
    table = metrics_table(other)
    assert list(table["class"])[:2] == ["negative", "positive"]


def test_evaluate_bad_inputs(baseline_run, tmp_path, easy_dataset, tiny_model_dir):
    no_label = tmp_path / "texts.csv"
    no_label.write_bytes(b"text\nsome review here\nanother one\n")
    with pytest.raises(DataError, match="no label column"):
        evaluate_run(baseline_run, file=no_label)
    wrong = tmp_path / "wrong.csv"
    wrong.write_bytes(csv_bytes([("a film", "1"), ("b film", "2")], header=("text", "stars")))
    with pytest.raises(DataError, match="None of the file's labels"):
        evaluate_run(baseline_run, file=wrong, label_col="stars")
    pending = create_run(TrainConfig(dataset="easy", method="baseline"))
    with pytest.raises(ConfigError, match="no usable model: it is queued"):
        evaluate_run(pending.name)


def test_compare_and_export(baseline_run, easy_dataset):
    second = create_run(TrainConfig(dataset="easy", method="baseline", seed=7))
    run_training(second)
    compared = compare_runs([baseline_run, second.name])
    assert compared["differs"] == ["config.seed"]
    assert len(compared["runs"]) == 2
    assert {r["id"] for r in list_runs()} == {baseline_run, second.name}
    import io
    import zipfile

    from core.workspace import Registry

    cache = Registry().root / "runs" / baseline_run / "model" / "onnx" / "model.int8.onnx"
    cache.parent.mkdir()
    cache.write_bytes(b"fast mode's cache")  # rebuilt on demand: never part of the download
    names = zipfile.ZipFile(io.BytesIO(model_zip(baseline_run))).namelist()
    assert f"{baseline_run}/model/baseline.safetensors" in names and f"{baseline_run}/metrics.json" in names
    assert not any("/onnx/" in name for name in names)


def test_cli_eval_explain_runs_json(baseline_run, workspace):
    import os

    env = {**os.environ, "OPINIONLAB_HOME": str(workspace)}

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "core", *args, "--json"], capture_output=True, text=True,
                             env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    report = run("eval", baseline_run)
    assert {"accuracy", "macro_f1", "labels", "confusion_matrix", "per_class"} <= set(report)
    assert report["labels"] == ["negative", "positive"]
    explained = run("explain", baseline_run, "great film")
    assert {"label", "probabilities", "tokens", "attributions"} <= set(explained)
    assert len(explained["tokens"]) == len(explained["attributions"]) == 2
    assert run("runs", "list")["runs"][0]["id"] == baseline_run
    assert run("runs", "show", baseline_run)["id"] == baseline_run
    missing = subprocess.run([sys.executable, "-m", "core", "eval", "run_nope"], capture_output=True, text=True,
                             env=env, timeout=300)
    assert missing.returncode == 2 and "There is no run" in missing.stderr
