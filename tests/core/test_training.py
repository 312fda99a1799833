import json

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
    validate,
)
from core.workspace import read_json


def tiny_config(model_dir, **overrides) -> TrainConfig:
    values = dict(dataset="easy", model=str(model_dir), method="full", epochs=10, batch_size=8, learning_rate=1e-2,
                  max_length=32, head_tokens=4, warmup_ratio=0.1, checkpoint_every=50)
    return TrainConfig(**{**values, **overrides})


# Config ---------------------------------------------------------------------------------------
def test_presets_validate(easy_dataset, tiny_model_dir):
    for preset in PRESETS:
        config = config_from_preset(preset, dataset="easy", batch_size=8)
        assert validate(config) == [], preset


def test_help_text_for_every_field():
    helps = TrainConfig.help_texts()
    assert all(helps.values())
    assert "2e-5" in helps["learning_rate"]


def test_config_round_trip(tmp_path):
    config = config_from_preset("standard", dataset="x", epochs=2)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict()))
    assert TrainConfig.load(path) == config
    with pytest.raises(ConfigError, match="Unknown training settings: bogus"):
        TrainConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize("overrides, expected", [
    ({"learning_rate": 0}, "Learning rate 0"),
    ({"learning_rate": -1e-4}, "Learning rate -0.0001"),
    ({"epochs": 0}, "Epochs 0"),
    ({"batch_size": 1000}, "larger than the"),
    ({"max_length": 0}, "too small"),
    ({"max_length": 4096}, "above the model's limit of 128"),
    ({"method": "magic"}, "unknown"),
    ({"dataset": "nope"}, "does not exist"),
])
def test_validate_names_the_problem(easy_dataset, tiny_model_dir, overrides, expected):
    problems = validate(tiny_config(tiny_model_dir, **overrides))
    assert any(expected in p for p in problems), problems


def test_model_that_is_not_a_model(easy_dataset, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert any("no config.json" in p for p in validate(TrainConfig(dataset="easy", model=str(tmp_path))))
    assert any("does not exist" in p for p in validate(TrainConfig(dataset="easy", model="./missing-folder")))


def test_pickle_only_model_is_refused(easy_dataset, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    problems = validate(TrainConfig(dataset="easy", model=str(tmp_path)))
    assert any("pickle checkpoint" in p for p in problems)


def test_hub_id_offline_fails_fast(easy_dataset, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    problems = validate(TrainConfig(dataset="easy", model="some-org/some-model-that-is-not-cached"))
    assert any("offline" in p for p in problems)


def test_create_run_refuses_invalid_config(easy_dataset, tiny_model_dir, workspace):
    with pytest.raises(ConfigError, match="Epochs 0"):
        create_run(tiny_config(tiny_model_dir, epochs=0))
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


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


# Runs -----------------------------------------------------------------------------------------
def test_pad_batch_masks_padding_and_rounds_widths_for_gpus():
    from core.training import pad_batch

    encoded = [[101, 5, 6, 102], [101, 7, 102], list(range(17))]
    plain = pad_batch(encoded, [0, 1], pad_id=0)
    assert plain["input_ids"].tolist() == [[101, 5, 6, 102], [101, 7, 102, 0]]
    assert plain["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    rounded = pad_batch(encoded, [1, 2], pad_id=0, multiple=16)
    assert rounded["input_ids"].shape == (2, 32) and rounded["attention_mask"][0].sum() == 3
    assert rounded["input_ids"].dtype == plain["attention_mask"].dtype == __import__("torch").long


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
    events = [e["event"] for e in read_progress(folder)]
    assert events[0] == "start" and "step" in events and "eval" in events and events[-1] == "done"
    step = next(e for e in read_progress(folder) if e["event"] == "step")
    assert {"step", "total_steps", "epoch", "loss", "lr", "samples_per_s", "eta_s"} <= set(step)
    assert (folder / "predictions_test.parquet").exists()


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
    folder = create_run(tiny_config(tiny_model_dir, epochs=1))
    metrics = run_training(folder)
    assert metrics["micro_batch_split"] == 2
    oom = [e for e in read_progress(folder) if e["event"] == "oom"]
    assert len(oom) == 1 and "2 passes" in oom[0]["message"]
    assert metrics["steps"] == metrics["total_steps"]


def test_dataset_deleted_before_the_run_starts(easy_dataset, tiny_model_dir):
    from core.datasets import remove_dataset

    folder = create_run(tiny_config(tiny_model_dir))
    remove_dataset("easy")
    with pytest.raises(Exception, match="dataset missing"):
        run_training(folder)
    status = read_json(folder / "status.json")
    assert status["status"] == "failed" and "dataset missing" in status["reason"]


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
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["num_hidden_layers"] == 6


def test_disk_full_at_a_checkpoint_keeps_the_previous_one(easy_dataset, tiny_model_dir, monkeypatch):
    import safetensors.torch

    from core.errors import WorkspaceError

    real_save = safetensors.torch.save_file
    calls = {"n": 0}

    def save_or_fail(tensors, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 2:  # the first checkpoint is written, the second finds the disk full
            raise OSError(28, "No space left on device")
        return real_save(tensors, path, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", save_or_fail)
    folder = create_run(tiny_config(tiny_model_dir, checkpoint_every=3, eval_every=1000))
    with pytest.raises(WorkspaceError, match="disk is full"):
        run_training(folder)
    status = read_json(folder / "status.json")
    assert status["status"] == "failed" and "disk is full" in status["reason"]
    pointer = read_json(folder / "checkpoints" / "latest.json")
    assert pointer["step"] == 3
    kept = folder / "checkpoints" / pointer["dir"]
    assert (kept / "model.safetensors").exists() and (kept / "state.json").exists()
    assert [p.name for p in (folder / "checkpoints").iterdir() if p.name.startswith(".")] == []
