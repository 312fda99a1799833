import json
import shlex

import pytest

from core.baseline import BaselineModel
from core.errors import ConfigError
from core.training import (
    PRESETS,
    TrainConfig,
    config_from_preset,
    create_run,
    encode_texts,
    length_grouped_batches,
    read_progress,
    run_training,
    submit_command,
    validate,
)
from core.workspace import read_json


def tiny_config(model_dir, **overrides) -> TrainConfig:
    values = dict(dataset="easy", model=str(model_dir), method="full", epochs=10, batch_size=8, learning_rate=1e-2,
                  max_length=32, head_tokens=4, warmup_ratio=0.1, checkpoint_every=50)
    return TrainConfig(**{**values, **overrides})


def problems_of(config) -> list[str]:
    return [str(p) for p in validate(config)]


# Config ---------------------------------------------------------------------------------------
def test_presets_validate(easy_dataset, tiny_model_dir):
    for preset in PRESETS:
        config = config_from_preset(preset, dataset="easy", batch_size=8)
        assert validate(config) == [], preset


def test_help_text_for_every_field_in_both_languages():
    helps, helps_zh = TrainConfig.help_texts(), TrainConfig.help_texts("zh")
    assert all(helps.values()) and set(helps) == set(helps_zh)
    assert "2e-5" in helps["learning_rate"]
    assert all(helps_zh[name] != helps[name] for name in helps)
    assert TrainConfig.labels("zh")["learning_rate"] == "学习率"


def test_config_round_trip(tmp_path):
    config = config_from_preset("standard", dataset="x", epochs=2)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict()))
    assert TrainConfig.load(path) == config
    with pytest.raises(ConfigError, match="Unknown training settings: bogus"):
        TrainConfig.from_dict({"bogus": 1})


OLD_ENGINE_CONFIG = {  # config.json as the hand-written loop saved it (before report_to existed)
    "dataset": "easy", "model": "default", "method": "lora", "epochs": 3, "learning_rate": 0.0001, "batch_size": 32,
    "grad_accum": 1, "max_length": 128, "head_tokens": 32, "warmup_ratio": 0.1, "weight_decay": 0.01, "seed": 42,
    "class_weighting": "auto", "early_stopping_patience": 0, "eval_every": 0, "max_eval_rows": 500, "limit": 2000,
    "checkpoint_every": 50, "precision": "auto", "device": "auto", "lora_r": 16, "lora_alpha": 32,
    "lora_dropout": 0.1, "lora_targets": "query,value", "preset": "quick", "run_id": "run_0123456789ab"}


def test_a_config_saved_by_the_old_engine_loads_or_is_refused_by_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(OLD_ENGINE_CONFIG))
    config = TrainConfig.load(path)
    assert config.report_to == "none" and config.lora_r == 16 and config.run_id == "run_0123456789ab"
    path.write_text(json.dumps({**OLD_ENGINE_CONFIG, "fp16": True}))
    with pytest.raises(ConfigError, match="Unknown training settings: fp16"):
        TrainConfig.load(path)
    path.write_text(json.dumps({**OLD_ENGINE_CONFIG, "epochs": "3"}))
    with pytest.raises(ConfigError, match="setting epochs must be a whole number, not '3'") as refused:
        TrainConfig.load(path)
    assert "epochs" in refused.value.render("zh") and "整数" in refused.value.render("zh")


@pytest.mark.parametrize("overrides, expected", [
    ({"learning_rate": 0}, "Learning rate 0"),
    ({"learning_rate": -1e-4}, "Learning rate -0.0001"),
    ({"epochs": 0}, "Epochs 0"),
    ({"batch_size": 1000}, "larger than the"),
    ({"max_length": 0}, "too small"),
    ({"max_length": 4096}, "above the model's limit of 128"),
    ({"method": "magic"}, "unknown"),
    ({"dataset": "nope"}, "does not exist"),
    ({"precision": "fp8"}, "precision is 'fp8': use one of auto, fp32, bf16, fp16"),
    ({"checkpoint_every": 0}, "checkpoint_every is 0: use 1 or more"),
])
def test_validate_names_the_problem(easy_dataset, tiny_model_dir, overrides, expected):
    problems = validate(tiny_config(tiny_model_dir, **overrides))
    assert any(expected in str(p) for p in problems), problems
    assert all(p.render("zh") != str(p) for p in problems)  # each has its Chinese text


def test_model_that_is_not_a_model(easy_dataset, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert any("no config.json" in p for p in problems_of(TrainConfig(dataset="easy", model=str(tmp_path))))
    assert any("does not exist" in p for p in problems_of(TrainConfig(dataset="easy", model="./missing-folder")))


def test_pickle_only_model_is_refused(easy_dataset, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    assert any("pickle checkpoint" in p for p in problems_of(TrainConfig(dataset="easy", model=str(tmp_path))))


def test_hub_id_offline_fails_fast(easy_dataset, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    problems = problems_of(TrainConfig(dataset="easy", model="some-org/some-model-that-is-not-cached"))
    assert any("offline" in p for p in problems)


def test_create_run_refuses_invalid_config(easy_dataset, tiny_model_dir, workspace):
    with pytest.raises(ConfigError, match="Learning rate 0.*Epochs 0") as refused:
        create_run(tiny_config(tiny_model_dir, epochs=0, learning_rate=0))
    assert "训练轮数 0" in refused.value.render("zh")
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


@pytest.mark.parametrize("tracker, package", [("tensorboard", "tensorboard"), ("mlflow", "mlflow-skinny")])
def test_a_tracker_that_is_not_installed_is_refused_before_launch(easy_dataset, tiny_model_dir, workspace,
                                                                  monkeypatch, tracker, package):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == tracker else real(name, *a))
    with pytest.raises(ConfigError, match=f"needs the Python package {package}.*requirements-tracking.txt"):
        create_run(tiny_config(tiny_model_dir, report_to=tracker))
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


# The command the Train page shows -----------------------------------------------------------
CHANGED = dict(model="/models/x", method="lora", epochs=4, learning_rate=3e-4, batch_size=16, grad_accum=2,
               max_length=96, head_tokens=8, warmup_ratio=0.05, weight_decay=0.0, seed=7, class_weighting="on",
               early_stopping_patience=3, eval_every=20, max_eval_rows=300, limit=1500, checkpoint_every=25,
               precision="fp32", device="cpu", lora_r=16, lora_alpha=32, lora_dropout=0.2, lora_targets="query,key",
               report_to="tensorboard")


def parse_command(command: str) -> TrainConfig:
    from core.cli import _config_from_args, build_parser

    words = shlex.split(command)
    assert words[:5] == ["python", "-m", "core", "jobs", "submit"]
    return _config_from_args(build_parser().parse_args(words[3:]))


@pytest.mark.parametrize("preset", ["quick", "best", ""])
@pytest.mark.parametrize("name", sorted(CHANGED))
def test_the_shown_command_carries_every_changed_setting(preset, name):
    config = config_from_preset(preset, dataset="my reviews", **{name: CHANGED[name]})
    command = submit_command(config)
    assert parse_command(command) == config, command


def test_the_shown_command_round_trips_all_settings_at_once():
    config = config_from_preset("standard", dataset="reviews", **CHANGED)
    assert parse_command(submit_command(config)) == config


def test_submit_with_a_saved_config_and_changes(tmp_path):
    from core.cli import _config_from_args, build_parser

    path = tmp_path / "config.json"
    path.write_text(json.dumps(OLD_ENGINE_CONFIG))
    config = _config_from_args(build_parser().parse_args(["jobs", "submit", "--config", str(path), "--lr", "0.001"]))
    assert config.learning_rate == 0.001 and config.lora_r == 16 and config.run_id == ""


# Data plumbing --------------------------------------------------------------------------------
def test_head_and_tail_are_kept(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "great " + "film " * 50 + "awful"
    ids = encode_texts(tokenizer, [text], max_length=10, head_tokens=2)[0]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert len(ids) == 10
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tokens[1] == "great" and tokens[-2] == "awful"


def test_length_grouped_batches_cover_every_row_once():
    lengths = [5, 100, 7, 98, 6, 99, 8, 97] * 10
    batches = length_grouped_batches(lengths, 8, seed=1)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(s < 10 for s in spread) >= len(batches) - 1  # short and long texts kept apart
    assert batches == length_grouped_batches(lengths, 8, seed=1)


def test_the_training_order_is_a_function_of_seed_and_epoch():
    from core.modeling.encoding import LengthGroupedSampler

    lengths = [5, 100, 7, 98, 6, 99, 8, 97] * 10
    sampler = LengthGroupedSampler(lengths, 8, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(first) == sorted(second) == list(range(80)) and first != second
    again = LengthGroupedSampler(lengths, 8, seed=3)
    again.set_epoch(1)
    assert list(again) == second  # a resumed run rebuilds the epoch's order exactly


def test_pad_batch_masks_padding_and_rounds_widths_for_gpus():
    from core.training import pad_batch

    encoded = [[101, 5, 6, 102], [101, 7, 102], list(range(17))]
    plain = pad_batch(encoded, [0, 1], pad_id=0)
    assert plain["input_ids"].tolist() == [[101, 5, 6, 102], [101, 7, 102, 0]]
    assert plain["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    rounded = pad_batch(encoded, [1, 2], pad_id=0, multiple=16)
    assert rounded["input_ids"].shape == (2, 32) and rounded["attention_mask"][0].sum() == 3
    assert rounded["input_ids"].dtype == plain["attention_mask"].dtype == __import__("torch").long


def test_class_weights_follow_the_setting():
    from core.modeling.trainer import class_weights

    skewed, balanced = [0] * 30 + [1] * 10, [0] * 20 + [1] * 20
    weights = class_weights(TrainConfig(class_weighting="auto"), skewed, 2)
    assert weights.tolist() == pytest.approx([40 / 60, 40 / 20])
    assert class_weights(TrainConfig(class_weighting="auto"), balanced, 2) is None
    assert class_weights(TrainConfig(class_weighting="off"), skewed, 2) is None
    assert class_weights(TrainConfig(class_weighting="on"), balanced, 2).tolist() == [1.0, 1.0]


def test_validation_rows_are_capped_by_max_eval_rows(easy_dataset):
    from core.training import load_splits
    from core.workspace import Registry

    splits, labels = load_splits(TrainConfig(dataset="easy", max_eval_rows=6), Registry())
    assert len(splits["validation"]) == 6 and set(splits["validation"]["label"]) == set(labels)


# Runs -----------------------------------------------------------------------------------------
def test_full_run_learns_and_loads_in_pipeline(easy_dataset, tiny_model_dir):
    from transformers import pipeline

    folder = create_run(tiny_config(tiny_model_dir))
    metrics = run_training(folder)
    assert metrics["test"]["accuracy"] >= 0.75
    assert metrics["baseline"]["test"]["accuracy"] is not None
    assert metrics["steps"] == metrics["total_steps"]
    assert read_json(folder / "status.json")["status"] == "succeeded"
    model_dir = folder / "model"
    assert (model_dir / "model.safetensors").exists()
    assert json.loads((model_dir / "config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}
    classifier = pipeline("text-classification", model=str(model_dir))
    assert classifier("the film was great and wonderful")[0]["label"] in {"negative", "positive"}
    assert json.loads((model_dir / "tokenizer_config.json").read_text())["model_max_length"] == 32
    assert classifier("film " * 200, truncation=True)[0]["label"] in {"negative", "positive"}
    events = read_progress(folder)
    names = [e["event"] for e in events]
    assert names[0] == "start" and "step" in names and "eval" in names and names[-1] == "done"
    steps = [e for e in events if e["event"] == "step"]
    assert {"step", "total_steps", "epoch", "loss", "lr", "samples_per_s", "eta_s"} <= set(steps[0])
    assert [e["step"] for e in steps] == list(range(1, metrics["total_steps"] + 1))
    assert [e["epoch"] for e in steps[:12]] == [1] * 12 and steps[12]["epoch"] == 2  # 12 steps an epoch
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [12 * k for k in range(1, 11)]  # after each epoch
    assert set(evals[-1]["metrics"]) == {"accuracy", "macro_f1", "weighted_f1"}
    assert [h["step"] for h in metrics["history"]] == [e["step"] for e in evals]
    assert (folder / "predictions_test.parquet").exists() and not (folder / "checkpoints").exists()


def run_weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model" / "model.safetensors"))


@pytest.mark.parametrize("grad_accum, stop_at, eval_every", [(1, 17, 0), (2, 4, 1000)])
def test_stop_then_resume_ends_with_the_weights_of_an_uninterrupted_run(easy_dataset, tiny_model_dir, monkeypatch,
                                                                       grad_accum, stop_at, eval_every):
    """Same seed; one run stopped mid-epoch (SIGTERM, as jobs cancel sends) and resumed: the
    optimizer, scheduler, data position in the length-grouped order and dropout all continue."""
    import torch

    settings = dict(epochs=2, grad_accum=grad_accum, checkpoint_every=1000, eval_every=eval_every)
    whole = create_run(tiny_config(tiny_model_dir, **settings))
    run_training(whole)
    parted = create_run(tiny_config(tiny_model_dir, **settings))
    monkeypatch.setenv("OPINIONLAB_INJECT_STOP", str(stop_at))
    assert run_training(parted) == {"status": "cancelled"}
    status = read_json(parted / "status.json")
    assert status["status"] == "cancelled" and status["step"] == stop_at and "resume" in status["reason"]
    assert read_json(parted / "checkpoints" / "latest.json")["step"] == stop_at
    monkeypatch.delenv("OPINIONLAB_INJECT_STOP")
    metrics = run_training(parted, resume=True)
    assert metrics["steps"] == metrics["total_steps"] == read_json(whole / "metrics.json")["steps"]
    expected, got = run_weights(whole), run_weights(parted)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.allclose(expected[name], got[name], atol=1e-6), name
    resumed = [e for e in read_progress(parted) if e["event"] == "resumed"]
    assert [e["step"] for e in resumed] == [stop_at]


def test_early_stopping_keeps_the_best_model(easy_dataset, tiny_model_dir):
    folder = create_run(tiny_config(tiny_model_dir, epochs=20, eval_every=4, early_stopping_patience=2))
    metrics = run_training(folder)
    events = read_progress(folder)
    stopped = [e for e in events if e["event"] == "early_stop"]
    assert len(stopped) == 1 and metrics["steps"] == stopped[0]["step"] < metrics["total_steps"] == 240
    f1s = [h["macro_f1"] for h in metrics["history"]]
    best = f1s.index(max(f1s))
    assert len(f1s) == best + 3  # two evaluations without improvement after the best one
    assert metrics["validation"]["macro_f1"] == pytest.approx(max(f1s))


def test_lora_trains_only_adapters(easy_dataset, tiny_model_dir):
    """LoRA adapts a pretrained encoder: here the tiny model after a short full fine-tune."""
    from transformers import pipeline

    pretrained = create_run(tiny_config(tiny_model_dir, epochs=5))
    run_training(pretrained)
    folder = create_run(tiny_config(pretrained / "model", method="lora", epochs=3, lora_r=4))
    metrics = run_training(folder)
    assert metrics["trainable_parameters"] < metrics["total_parameters"] / 2
    assert metrics["test"]["accuracy"] > 0.6
    assert (folder / "model" / "adapter" / "adapter_config.json").exists()
    assert not (folder / "model" / "model.safetensors").read_bytes().count(b"lora_")
    classifier = pipeline("text-classification", model=str(folder / "model"))
    assert classifier("awful terrible film")[0]["label"] in {"negative", "positive"}


def test_lora_parameters_requiring_grad_are_adapters(tiny_model_dir):
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=["query", "value"]))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or "classifier" in n for n in names)


def test_baseline_run_saves_without_pickle(easy_dataset):
    folder = create_run(TrainConfig(dataset="easy", method="baseline"))
    metrics = run_training(folder)
    assert metrics["test"]["accuracy"] >= 0.9
    files = sorted(p.name for p in (folder / "model").iterdir())
    assert files == ["baseline.json", "baseline.safetensors", "labels.json"]
    model = BaselineModel.load(folder / "model")
    probs = model.predict_proba(["great wonderful film", "awful terrible film"])
    assert probs.shape == (2, 2) and probs[0, 1] > 0.5 > probs[1, 1]


def test_injected_oom_halves_the_batch_and_continues(easy_dataset, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("OPINIONLAB_INJECT_OOM", "2")
    folder = create_run(tiny_config(tiny_model_dir, epochs=1, grad_accum=2))
    metrics = run_training(folder)
    assert metrics["micro_batch_split"] == 2
    oom = [e for e in read_progress(folder) if e["event"] == "oom"]
    assert len(oom) == 1 and oom[0]["step"] == 2
    assert "each batch of 8 texts now runs in 2 passes of about 4 texts" in oom[0]["message"]
    assert "2 次" in __import__("core.i18n").i18n.render(oom[0]["i18n"], "zh")
    assert metrics["steps"] == metrics["total_steps"] == 6  # same effective batch, same plan


def test_dataset_deleted_before_the_run_starts(easy_dataset, tiny_model_dir):
    from core.datasets import remove_dataset

    folder = create_run(tiny_config(tiny_model_dir))
    remove_dataset("easy")
    with pytest.raises(Exception, match="dataset missing"):
        run_training(folder)
    status = read_json(folder / "status.json")
    assert status["status"] == "failed" and "dataset missing" in status["reason"]
    assert status["reason_message"]["key"] == "train.err.dataset_deleted"


def test_class_missing_from_limited_training_rows(easy_dataset, tiny_model_dir):
    folder = create_run(tiny_config(tiny_model_dir, limit=1, batch_size=1))
    with pytest.raises(ConfigError, match="no examples of"):
        run_training(folder)


@pytest.mark.slow
def test_dataset_without_test_rows_is_refused_with_a_fix(tiny_model_dir):
    import pandas as pd

    from core.data import ColumnMapping, Table, prepare_dataset
    from core.datasets import save_dataset
    from tests.conftest import easy_rows

    frame = pd.DataFrame(easy_rows(), columns=["text", "label"], dtype="str")
    frame["split"] = ["train", "validation"] * (len(frame) // 2)
    save_dataset(prepare_dataset(Table(frame, "s.csv", "csv"), ColumnMapping(text="text", label="label", split="split")),
                 "no-test")
    folder = create_run(TrainConfig(dataset="no-test", model=str(tiny_model_dir), epochs=1))
    with pytest.raises(ConfigError, match="has no test rows.*split value 'test'"):
        run_training(folder)


def test_real_minilm_few_steps(workspace):
    """The embedded model, a few dozen rows, one short epoch."""
    import pandas as pd

    from core.data import Table, prepare_dataset
    from core.datasets import save_dataset
    from tests.conftest import easy_rows

    frame = pd.DataFrame(easy_rows(20), columns=["text", "label"], dtype="str")
    save_dataset(prepare_dataset(Table(frame, "e.csv", "csv")), "easy")
    folder = create_run(TrainConfig(dataset="easy", model="default", epochs=1, batch_size=8, max_length=32,
                                    learning_rate=1e-4))
    metrics = run_training(folder)
    assert metrics["steps"] == metrics["total_steps"] == 4
    config = json.loads((folder / "model" / "config.json").read_text())
    # MiniLM's 6 layers + the mean-pooling layer (it is a mean-pooled sentence encoder)
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["num_hidden_layers"] == 7
    from transformers import pipeline

    from core.predict import load_predictor

    texts = ["great film, loved it", "awful, boring and too long"]
    ours = load_predictor(folder.name).predict_proba(texts)
    theirs = pipeline("text-classification", model=str(folder / "model"), top_k=None)(texts)
    for row, scores in zip(ours, theirs, strict=True):
        by_label = {s["label"]: s["score"] for s in scores}
        assert abs(by_label["negative"] - row[0]) < 1e-4 and abs(by_label["positive"] - row[1]) < 1e-4


def test_disk_full_at_a_checkpoint_keeps_the_previous_one(easy_dataset, tiny_model_dir, monkeypatch):
    import torch

    from core.errors import WorkspaceError
    from core.modeling.checkpoints import MARKER

    real_save = torch.save
    calls = {"n": 0}

    def save_or_fail(obj, path, *args, **kwargs):
        if str(path).endswith("optimizer.pt"):
            calls["n"] += 1
            if calls["n"] >= 2:  # the first checkpoint is written, the second finds the disk full
                raise OSError(28, "No space left on device", str(path))
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_or_fail)
    folder = create_run(tiny_config(tiny_model_dir, checkpoint_every=3, eval_every=1000))
    with pytest.raises(WorkspaceError, match="optimizer.pt: the disk is full"):
        run_training(folder)
    status = read_json(folder / "status.json")
    assert status["status"] == "failed" and "disk is full" in status["reason"]
    pointer = read_json(folder / "checkpoints" / "latest.json")
    assert pointer == {"dir": "checkpoint-3", "step": 3}
    kept = folder / "checkpoints" / "checkpoint-3"
    assert {"model.safetensors", "optimizer.pt", "trainer_state.json", MARKER} <= {p.name for p in kept.iterdir()}
    half = folder / "checkpoints" / "checkpoint-6"
    assert half.is_dir() and not (half / MARKER).exists()  # never counted as a checkpoint
    monkeypatch.setattr(torch, "save", real_save)
    metrics = run_training(folder, resume=True)  # space freed: continues from step 3
    assert metrics["steps"] == metrics["total_steps"] == 120
    assert [e["step"] for e in read_progress(folder) if e["event"] == "resumed"] == [3]


@pytest.mark.parametrize("tracker", ["tensorboard", "mlflow"])
def test_tracking_logs_land_beside_the_run(easy_dataset, tiny_model_dir, workspace, monkeypatch, tracker):
    """Only where requirements-tracking.txt is installed."""
    pytest.importorskip(tracker)
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    folder = create_run(tiny_config(tiny_model_dir, epochs=2, report_to=tracker))
    metrics = run_training(folder)
    assert metrics["steps"] == metrics["total_steps"]
    if tracker == "tensorboard":
        assert list((folder / "tensorboard").glob("events.out.tfevents.*"))
    else:
        assert any((workspace / "mlruns").rglob("*eval_macro_f1*"))


def test_cli_refuses_a_tracker_before_launch_and_trains_a_baseline(easy_dataset, workspace, monkeypatch, capsys):
    import importlib.util

    from core.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    assert main(["train", "--dataset", "easy", "--method", "baseline", "--report-to", "mlflow"]) == 2
    assert "pip install -r requirements-tracking.txt" in capsys.readouterr().err
    assert main(["train", "--dataset", "easy", "--report-to", "wandb"]) == 2
    assert "invalid choice: 'wandb'" in capsys.readouterr().err
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())
    assert main(["train", "--dataset", "easy", "--method", "baseline", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["metrics"]["accuracy"] >= 0.9


def test_mean_pooling_layer_reads_the_masked_average(tiny_model_dir):
    """The appended layer hands the pooler LN(16 × masked mean + first token), padding or not."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from core.modeling.pooling import MEAN_WEIGHT, add_mean_layer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2, attn_implementation="sdpa")
    model.eval()
    ids = torch.tensor([[2, 7, 8, 9, 10, 3], [2, 11, 12, 3, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        add_mean_layer(model)
        first = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        alone = model(input_ids=ids[1:, :4], attention_mask=mask[1:, :4]).logits
        padded = model(input_ids=ids[1:], attention_mask=mask[1:]).logits
    mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    expected = torch.nn.functional.layer_norm(MEAN_WEIGHT * mean + hidden[:, 0], (hidden.shape[-1],),
                                              eps=model.config.layer_norm_eps)
    assert torch.allclose(first, expected, atol=1e-5)
    assert torch.allclose(alone, padded, atol=1e-5)


def test_mean_pooling_layer_keeps_reading_the_mean_after_training(easy_dataset, tiny_model_dir):
    """Zero query/key weights stay zero under training, so the layer is still an average."""
    from safetensors.torch import load_file

    folder = create_run(TrainConfig(dataset=easy_dataset, model=str(tiny_model_dir), epochs=1, pooling="mean",
                                    batch_size=8, max_length=32))
    run_training(folder)
    weights = load_file(str(folder / "model" / "model.safetensors"))
    last = max(int(k.split(".")[3]) for k in weights if k.startswith("bert.encoder.layer."))
    for part in ("query", "key"):
        assert float(weights[f"bert.encoder.layer.{last}.attention.self.{part}.weight"].abs().max()) == 0.0


def test_pooling_mean_refused_on_a_model_without_a_pooler(workspace, easy_dataset, tmp_path):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from core.modeling.config import validate

    config = DistilBertConfig(vocab_size=64, dim=32, n_layers=1, n_heads=2, hidden_dim=37)
    DistilBertForSequenceClassification(config).save_pretrained(tmp_path / "distil")
    problems = validate(TrainConfig(dataset=easy_dataset, model=str(tmp_path / "distil"), pooling="mean"))
    assert any(p.key == "train.err.pooling_unsupported" for p in problems)
