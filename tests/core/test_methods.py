"""Every parameter-efficient method of the Train page: trains, reports its parameters, saves,
reloads with the same probabilities, and scores a file (tiny random BERT, seconds each)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.modeling.adapters import ADAPTER_METHODS, MERGEABLE, VIRTUAL_TOKENS, optimizer_steps
from core.training import TrainConfig, create_run, run_training
from tests.core.test_training import problems_of, tiny_config


@pytest.mark.parametrize("method", ADAPTER_METHODS)
def test_every_method_trains_saves_reloads_and_scores(easy_dataset, tiny_model_dir, method):
    from core.predict import load_predictor
    from core.scoring import score_frame

    folder = create_run(tiny_config(tiny_model_dir, method=method, epochs=2, lora_r=4, adalora_init_r=6,
                                    virtual_tokens=4, learning_rate=1e-2))
    metrics = run_training(folder)
    assert 0 < metrics["trainable_parameters"] < metrics["total_parameters"]
    meta = json.loads((folder / "model" / "labels.json").read_text())
    assert meta["method"] == method
    assert meta["kind"] == ("adapter" if method in VIRTUAL_TOKENS else "transformer")
    assert (folder / "model" / "adapter" / "adapter_config.json").exists()
    if method in MERGEABLE:  # merged: a plain model folder, no adapter weights inside
        assert not (folder / "model" / "model.safetensors").read_bytes().count(b"lora_")
    saved = pd.read_parquet(folder / "predictions_test.parquet")
    predictor = load_predictor(folder.name)
    again = predictor.predict_proba(saved["text"].tolist())
    before = saved[[f"prob_{lab}" for lab in predictor.labels]].to_numpy()
    np.testing.assert_allclose(again, before, atol=1e-5)
    scored = score_frame(predictor, pd.DataFrame({"text": ["good great film", "", "=SUM(A1)"]}), "text")
    assert scored["label"].iloc[0] in predictor.labels and pd.isna(scored["label"].iloc[1]) | (scored["label"].iloc[1] == "")


def test_merged_methods_load_in_transformers_pipeline(easy_dataset, tiny_model_dir):
    from transformers import pipeline

    folder = create_run(tiny_config(tiny_model_dir, method="ia3", epochs=1))
    run_training(folder)
    classifier = pipeline("text-classification", model=str(folder / "model"))
    assert classifier("awful terrible film")[0]["label"] in {"negative", "positive"}


def test_adalora_reallocates_its_rank_budget(easy_dataset, tiny_model_dir):
    """The budget schedule runs: after training, some ranks were pruned below the starting rank."""
    from safetensors.torch import load_file

    folder = create_run(tiny_config(tiny_model_dir, method="adalora", epochs=4, lora_r=2, adalora_init_r=8))
    run_training(folder)
    weights = load_file(str(folder / "model" / "adapter" / "adapter_model.safetensors"))
    kept = [int((w != 0).sum()) for name, w in weights.items() if "lora_E" in name]
    assert kept and min(kept) < 8  # 8 singular values per matrix at the start; pruned toward 2 on average


def test_adapter_run_with_mean_pooling_reloads_equal(easy_dataset, tiny_model_dir):
    from core.predict import load_predictor

    folder = create_run(tiny_config(tiny_model_dir, method="prompt", pooling="mean", epochs=1, virtual_tokens=3))
    run_training(folder)
    meta = json.loads((folder / "model" / "labels.json").read_text())
    assert meta["pooling"] == "mean" and meta["base_model"] == str(tiny_model_dir)
    saved = pd.read_parquet(folder / "predictions_test.parquet")
    again = load_predictor(folder.name).predict_proba(saved["text"].tolist())
    np.testing.assert_allclose(again, saved.filter(like="prob_").to_numpy(), atol=1e-5)


@pytest.mark.parametrize("method", ADAPTER_METHODS)
def test_adapters_train_the_mean_layers_read_out_like_the_head(easy_dataset, tiny_model_dir, method):
    """With the mean-pooling layer the pooler is our fresh identity read-out, not a pretrained
    weight: an adapter method trains it beside the classifier, saves it and reloads it."""
    from safetensors.torch import load_file

    from core.predict import load_predictor

    folder = create_run(tiny_config(tiny_model_dir, method=method, pooling="mean", epochs=2, virtual_tokens=3,
                                    lora_r=4, adalora_init_r=6, learning_rate=1e-2))
    run_training(folder)  # merged at the end: IA3, LoHa and LoKr once failed here on the wrapped pooler
    if method in MERGEABLE:
        weights = load_file(str(folder / "model" / "model.safetensors"))
        pooler = next(w for name, w in weights.items() if name.endswith("pooler.dense.weight"))
    else:
        weights = load_file(str(folder / "model" / "adapter" / "adapter_model.safetensors"))
        pooler = next(w for name, w in weights.items() if "pooler" in name and name.endswith("dense.weight"))
    assert not np.allclose(pooler.numpy(), np.eye(pooler.shape[0]), atol=1e-4)  # it moved from the identity
    saved = pd.read_parquet(folder / "predictions_test.parquet")
    again = load_predictor(folder.name).predict_proba(saved["text"].tolist())
    np.testing.assert_allclose(again, saved.filter(like="prob_").to_numpy(), atol=1e-5)


def test_parameter_counts_count_a_trained_copy_once(tiny_model_dir):
    """peft keeps the frozen original of the head and the read-out beside the trained copy: the
    total is the model's own weights plus the adapter's, the trainable count adapter + copies."""
    from types import SimpleNamespace

    from transformers import AutoModelForSequenceClassification

    from core.modeling import adapters, pooling

    model = pooling.add_mean_layer(AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2))
    own = sum(p.numel() for p in model.parameters())
    copies = sum(p.numel() for p in model.bert.pooler.parameters()) + sum(p.numel() for p in model.classifier.parameters())
    wrapped = adapters.wrap(model, SimpleNamespace(method="lora", lora_r=2, lora_alpha=4, lora_dropout=0.0,
                                                   lora_targets="query,value"))
    lora = sum(p.numel() for name, p in wrapped.named_parameters() if "lora_" in name)
    assert adapters.counts(wrapped) == (lora + copies, own + lora)


def test_the_read_out_learns_at_a_capped_rate_whatever_the_methods_rate(easy_dataset, tiny_model_dir):
    """Prompt tuning learns at 3e-2; the pooler it trains moves at no more than READ_OUT_LR a step
    (Adam moves a weight by about its rate each step), so its identity is not torn apart."""
    from safetensors.torch import load_file

    from core.modeling.adapters import READ_OUT_LR

    folder = create_run(tiny_config(tiny_model_dir, method="prompt", pooling="mean", epochs=2, virtual_tokens=3,
                                    learning_rate=3e-2))
    metrics = run_training(folder)
    weights = load_file(str(folder / "model" / "adapter" / "adapter_model.safetensors"))
    pooler = next(w for name, w in weights.items() if "pooler" in name and name.endswith("dense.weight")).numpy()
    moved = np.abs(pooler - np.eye(pooler.shape[0])).max()
    assert 0 < moved <= 1.2 * READ_OUT_LR * metrics["steps"] < 1.2 * 3e-2 * metrics["steps"] / 5


def test_a_method_that_does_not_fit_the_model_is_refused_by_name(easy_dataset, tmp_path):
    """DistilBERT's attention takes no past keys/values: prefix-tuning cannot wrap it."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=64, dim=32, n_layers=1, n_heads=2, hidden_dim=37)
    DistilBertForSequenceClassification(config).save_pretrained(tmp_path / "distil")
    problems = problems_of(TrainConfig(dataset=easy_dataset, model=str(tmp_path / "distil"), method="prefix"))
    assert any("prefix" in p and "distil" in p for p in problems), problems


def test_method_learning_rates_and_their_ranges(easy_dataset, tiny_model_dir):
    from core.modeling.config import config_from_preset

    assert config_from_preset("quick", method="prompt").learning_rate == 3e-2
    assert config_from_preset("quick", method="full").learning_rate == 1e-4
    assert config_from_preset("quick", method="lora", learning_rate=2e-4).learning_rate == 2e-4
    assert not problems_of(tiny_config(tiny_model_dir, method="prompt", learning_rate=3e-2))
    assert any("at most 0.01" in p for p in problems_of(tiny_config(tiny_model_dir, method="full", learning_rate=3e-2)))


def test_optimizer_steps_match_the_trainer(easy_dataset, tiny_model_dir):
    """AdaLoRA's schedule is laid out over our count of steps: it must be the Trainer's."""
    from core.modeling.splits import load_splits
    from core.workspace import Registry

    folder = create_run(tiny_config(tiny_model_dir, method="lora", epochs=2, batch_size=7, grad_accum=2))
    metrics = run_training(folder)
    splits, _ = load_splits(TrainConfig.load(folder / "config.json"), Registry())
    assert optimizer_steps(len(splits["train"]), 7, 2, 2) == metrics["total_steps"] == metrics["steps"]
