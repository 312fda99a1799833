import json
import zipfile

import numpy as np
import pytest

from core import portable
from core.cli import main
from core.errors import ConfigError
from core.predict import load_predictor
from core.workspace import Registry, atomic_write_json, inside
from tests.conftest import easy_rows
from tests.core.test_scoring import tiny_run  # noqa: F401  (the fixture: a trained tiny BERT run)

# Texts the check did not see (other lengths, a new batch size, unknown words), within the run's
# 16 tokens: the plain tokenizer used here cuts long texts at the end, Opinion Lab keeps head + tail.
NEW_TEXTS = ["great", "awful awful film", "the plot was superb and the music lovely", "xyz qqq",
             *[t for t, _ in easy_rows(3, seed=5)]]


def onnx_probabilities(folder, file_name, texts):
    """Probabilities from the export folder alone: its own tokenizer and graph, no Opinion Lab model code."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    labels = json.loads((folder / "labels.json").read_text())
    batch = tokenizer(texts, truncation=True, max_length=labels["max_length"], padding=True, return_tensors="np")
    session = ort.InferenceSession(str(folder / file_name), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {k: batch[k] for k in ("input_ids", "attention_mask")})[0]
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_onnx_round_trip_matches_torch_on_new_batch_and_sequence_sizes(tiny_run, workspace):  # noqa: F811
    result = portable.export_run(tiny_run, "onnx")
    assert result.path == workspace.resolve() / "exports" / f"{tiny_run}-onnx"
    assert {"model.onnx", "config.json", "labels.json", "tokenizer.json", "README.md"} <= {
        p.name for p in result.path.iterdir()}
    assert not list(result.path.glob("*.safetensors"))  # the weights travel in the graph
    config = json.loads((result.path / "config.json").read_text())
    assert set(config["id2label"].values()) == {"negative", "positive"}
    assert result.check.max_abs_diff <= 1e-4 and result.check.agreement == 1.0 and result.check.texts >= 20
    assert result.bytes == sum(p.stat().st_size for p in result.path.iterdir())
    expected = load_predictor(tiny_run).predict_proba(NEW_TEXTS)
    assert np.abs(onnx_probabilities(result.path, "model.onnx", NEW_TEXTS) - expected).max() <= 1e-4
    assert "0 = negative, 1 = positive" in (result.path / "README.md").read_text()


def test_int8_export_is_smaller_and_agrees(tiny_run):  # noqa: F811
    fp32 = portable.export_run(tiny_run, "onnx")
    int8 = portable.export_run(tiny_run, "onnx", quantize="int8")
    assert int8.path.name == f"{tiny_run}-onnx-int8" and (int8.path / "model.int8.onnx").is_file()
    assert (int8.path / "model.int8.onnx").stat().st_size < (fp32.path / "model.onnx").stat().st_size
    assert int8.check.agreement >= portable.INT8_MIN_AGREEMENT
    assert 0 < int8.check.max_abs_diff < 0.1  # int8 is close, not exact
    expected = load_predictor(tiny_run).predict_proba(NEW_TEXTS)
    got = onnx_probabilities(int8.path, "model.int8.onnx", NEW_TEXTS)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9
    again = portable.export_run(tiny_run, "onnx", quantize="int8")  # a second export replaces the first
    assert again.path == int8.path and sorted(p.name for p in again.path.parent.iterdir()) == sorted(
        [fp32.path.name, int8.path.name])


def test_hf_zip_loads_in_transformers_pipeline(tiny_run, tmp_path):  # noqa: F811
    from transformers import pipeline

    from core.modeling.onnx_backend import cached_int8
    from core.predict import run_folder

    cached_int8(run_folder(tiny_run) / "model")  # fast mode's cache must not travel in the zip
    result = portable.export_run(tiny_run, "hf-zip")
    assert result.path.name == f"{tiny_run}-hf.zip" and result.check is None
    with zipfile.ZipFile(result.path) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "unzipped")
    assert f"{tiny_run}/model.safetensors" in names and f"{tiny_run}/README.md" in names
    assert not any("/onnx/" in n for n in names)
    classify = pipeline("text-classification", model=str(tmp_path / "unzipped" / tiny_run), truncation=True)
    answers = classify(NEW_TEXTS)
    expected = load_predictor(tiny_run).predict_proba(NEW_TEXTS[:1])
    assert {a["label"] for a in answers} <= {"negative", "positive"}
    assert abs(max(expected[0]) - answers[0]["score"]) < 1e-4
    assert portable.archive_bytes(result.path) == result.path.read_bytes()


def _fake_run(run_id, meta, status):
    """A run folder with only what the refusals read (a zero-shot run needs the multilingual encoder)."""
    registry = Registry()
    folder = inside(registry.root, "runs", run_id)
    atomic_write_json(folder / "model" / "labels.json", meta)
    atomic_write_json(folder / "status.json", status)
    registry.add_run(run_id, "easy", None, None, {"method": meta.get("kind", "full")})
    return run_id


def test_refused_runs_say_why_and_what_to_do(baseline_run):
    with pytest.raises(ConfigError, match=r"TF-IDF baseline.*no ONNX or Hugging Face export.*python -m core score"):
        portable.export_run(baseline_run, "onnx")
    with pytest.raises(ConfigError, match=r"TF-IDF baseline"):
        portable.export_run(baseline_run, "hf-zip")
    zeroshot = _fake_run("run_zs", {"labels": ["negative", "positive"], "kind": "zeroshot"}, {"status": "succeeded"})
    with pytest.raises(ConfigError, match=r"zero-shot run: it has no trained classifier"):
        portable.export_run(zeroshot, "onnx")
    failed = _fake_run("run_failed", {"labels": ["a", "b"], "kind": "transformer"},
                       {"status": "failed", "reason": "out of memory"})
    with pytest.raises(ConfigError, match=r"it is failed \(out of memory\)"):
        portable.export_run(failed, "onnx")
    with pytest.raises(ConfigError, match=r"Unknown export format 'tflite'"):
        portable.export_run(baseline_run, "tflite")
    with pytest.raises(ConfigError, match=r"applies to ONNX exports only"):
        portable.export_run(baseline_run, "hf-zip", quantize="int8")
    assert not (Registry().root / "exports").exists()


@pytest.mark.parametrize("setting, value, message", [("FP32_MAX_DIFF", -1.0, "does not match the PyTorch model"),
                                                      ("INT8_MIN_AGREEMENT", 1.01, "picks the same label")])
def test_failed_check_keeps_no_export(tiny_run, monkeypatch, setting, value, message):  # noqa: F811
    monkeypatch.setattr(portable, setting, value)
    with pytest.raises(ConfigError, match=f"{message}.*not kept"):
        portable.export_run(tiny_run, "onnx", quantize="int8" if setting.startswith("INT8") else None)
    assert list((Registry().root / "exports").iterdir()) == []  # no export, no staging folder


def test_cli_export_json_and_user_errors(tiny_run, baseline_run, capsys):  # noqa: F811
    assert main(["export", tiny_run, "--format", "onnx", "--quantize", "int8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) == {"path", "format", "quantize", "bytes", "check"}
    assert result["format"] == "onnx" and result["quantize"] == "int8" and result["bytes"] > 0
    assert set(result["check"]) == {"max_abs_diff", "agreement", "texts"}
    assert main(["export", tiny_run, "--format", "hf-zip"]) == 0
    assert "hf-zip" in capsys.readouterr().out
    assert main(["export", baseline_run, "--format", "onnx", "--json"]) == 2
    err = capsys.readouterr().err
    assert "TF-IDF baseline" in err and "Traceback" not in err
    assert main(["export", baseline_run, "--format", "onnx", "--lang", "zh"]) == 2
    assert "基线模型" in capsys.readouterr().err
