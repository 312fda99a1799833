"""Few-shot (SetFit-style) training: pairs, the tuned encoder, the head, the run and its model."""

import json

import numpy as np
import pandas as pd
import pytest

from core.fewshot import MAX_PAIRS, PAIRS_PER_EXAMPLE, method_advice, pair_count, sample_pairs
from core.training import TrainConfig, create_run, read_progress, run_training
from core.workspace import read_json


def few_rows(seed: int = 0) -> list[tuple[str, str, str]]:
    """8 training texts per class, then 8 validation and 20 test texts: three of the class's five
    sentiment words among three filler words, so 8 examples show every word."""
    import random

    from tests.conftest import FILLER, NEGATIVE, POSITIVE

    rng = random.Random(seed)
    rows = []
    for split, n in (("train", 8), ("validation", 8), ("test", 20)):
        for label, words in (("negative", NEGATIVE), ("positive", POSITIVE)):
            for _ in range(n):
                tokens = rng.sample(words, 3) + rng.sample(FILLER, 3)
                rng.shuffle(tokens)
                rows.append((" ".join(tokens), label, split))
    return rows


@pytest.fixture
def few_dataset(workspace):
    from core.data import ColumnMapping, Table, prepare_dataset
    from core.datasets import save_dataset

    frame = pd.DataFrame(few_rows(), columns=["text", "label", "split"], dtype="str")
    mapping = ColumnMapping(text="text", label="label", split="split")
    save_dataset(prepare_dataset(Table(frame, "few.csv", "csv", "utf-8", ","), mapping), "few")
    return "few"


def fewshot_config(model_dir, **overrides) -> TrainConfig:
    """8 examples per class; a randomly initialised tiny BERT needs a high learning rate."""
    values = dict(dataset="few", model=str(model_dir), method="fewshot", epochs=2, batch_size=16,
                  learning_rate=3e-3, max_length=32, head_tokens=4, warmup_ratio=0.1, seed=0)
    return TrainConfig(**{**values, **overrides})


def test_pairs_are_balanced_and_never_a_text_with_itself():
    y = np.array([0] * 8 + [1] * 8 + [2] * 3)
    pairs = sample_pairs(y, seed=1)
    assert len(pairs.same) == pair_count(len(y))[0] == PAIRS_PER_EXAMPLE * len(y)
    assert pairs.same.sum() == len(pairs.same) // 2
    same = pairs.same == 1
    assert (y[pairs.first[same]] == y[pairs.second[same]]).all()
    assert (y[pairs.first[~same]] != y[pairs.second[~same]]).all()
    assert (pairs.first != pairs.second).all()
    drawn = np.bincount(y[pairs.first[same]], minlength=3)
    assert drawn.min() > 0.25 * len(pairs.same) / 2  # the 3-example class as likely as the others
    again = sample_pairs(y, seed=1)
    assert (again.first == pairs.first).all() and (again.second == pairs.second).all()


def test_20000_examples_per_class_cap_the_pairs_and_warn():
    y = np.repeat([0, 1], 20_000)
    pairs = sample_pairs(y, seed=0)
    assert len(pairs.same) == MAX_PAIRS and pairs.wanted == 800_000
    warning = method_advice({"negative": 20_000, "positive": 20_000}, "fewshot")
    assert warning.key == "fewshot.warn.capped" and "800,000" in str(warning) and "5,000" in str(warning)
    assert "5,000" in warning.render("zh")
    assert method_advice({"negative": 20_000, "positive": 20_000}, "full") is None


def test_fewshot_is_recommended_below_100_examples_per_class_and_says_why():
    advice = method_advice({"negative": 16, "positive": 12})
    assert advice.key == "fewshot.advice.recommend"
    assert "fewshot" in str(advice) and "28 examples make 560 training pairs" in str(advice)
    assert "560" in advice.render("zh")
    assert method_advice({"negative": 16, "positive": 12}, "fewshot") is None
    assert method_advice({"negative": 150, "positive": 12}) is None
    assert method_advice({}) is None


def test_a_tiny_bert_learns_the_easy_set_from_8_examples_per_class(few_dataset, tiny_model_dir):
    from core import runs
    from core.predict import load_predictor

    folder = create_run(fewshot_config(tiny_model_dir))
    metrics = run_training(folder)
    assert metrics["test"]["accuracy"] >= 0.9
    assert metrics["baseline"]["test"]["accuracy"] is not None
    assert metrics["pairs"] == 320 and metrics["steps"] == metrics["total_steps"] == 80  # 40 steps of 8 pairs, ×2
    assert metrics["trainable_parameters"] == metrics["total_parameters"] > 10_000
    assert read_json(folder / "status.json")["status"] == "succeeded"
    listed = runs.list_runs()[0]
    assert listed["method"] == "fewshot" and " · few-shot · " in listed["name"] and listed["accuracy"] >= 0.9
    assert runs.evaluate_run(folder.name)["accuracy"] == metrics["test"]["accuracy"]
    events = read_progress(folder)
    names = [e["event"] for e in events]
    assert names[0] == "start" and "model" in names and "eval" in names and names[-1] == "done"
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 81))
    assert {"step", "total_steps", "epoch", "loss", "lr", "samples_per_s", "eta_s"} <= set(steps[0])
    assert np.mean([e["loss"] for e in steps[-10:]]) < np.mean([e["loss"] for e in steps[:10]])
    model = folder / "model"
    assert read_json(model / "labels.json")["kind"] == "fewshot"
    assert (model / "encoder" / "model.safetensors").exists() and (model / "head.safetensors").exists()
    assert not list(model.rglob("*.bin")) and not list(model.rglob("*.pkl"))
    test = pd.read_parquet(folder / "predictions_test.parquet")
    predictor = load_predictor(folder.name)
    probs = predictor.predict_proba(test["text"].tolist())
    assert np.allclose(probs, test[["prob_negative", "prob_positive"]].to_numpy(), atol=1e-5)
    assert predictor.labels == ["negative", "positive"] and predictor.kind == "fewshot"


def test_saved_model_reloads_with_equal_probabilities_and_keeps_pooling_and_prompts(tmp_path, tiny_model_dir):
    from core.embedding import SentenceEncoder
    from core.fewshot import FewShotModel, fit_head
    from tests.conftest import easy_rows

    folder = tmp_path / "encoder-with-prompts"
    SentenceEncoder.load(str(tiny_model_dir), default_pooling="mean").model.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (tiny_model_dir / name).exists():
            (folder / name).write_bytes((tiny_model_dir / name).read_bytes())
    (folder / "modules.json").write_text(json.dumps([{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "film "}}))
    encoder = SentenceEncoder.load(str(folder))
    texts, labels = zip(*easy_rows(6), strict=True)
    y = np.array([0 if lab == "negative" else 1 for lab in labels])
    model = FewShotModel(encoder, ["negative", "positive"], None)
    model.head = fit_head(model.vectors(list(texts)), y, None)
    before = model.predict_proba(list(texts))
    model.save(tmp_path / "saved")
    again = FewShotModel.load(tmp_path / "saved")
    assert again.encoder.spec.pooling == "cls" and again.encoder.prompt("query") == "film "
    assert np.allclose(again.predict_proba(list(texts)), before, atol=1e-6)


def test_a_fewshot_run_scores_a_file_and_explains_a_text(few_dataset, tiny_model_dir, tmp_path):
    from core import scoring
    from core.explain import explain
    from core.predict import load_predictor

    folder = create_run(fewshot_config(tiny_model_dir, epochs=1))
    run_training(folder)
    source = tmp_path / "new.csv"
    pd.DataFrame({"text": ["the film was great and lovely", "the plot was awful and boring", "music"]}
                 ).to_csv(source, index=False)
    score = scoring.create_score(scoring.ScoreConfig(run_id=folder.name, input=str(source),
                                                     output=str(tmp_path / "out.csv")))
    result = scoring.run_scoring(score)
    assert sum(result["label_counts"].values()) == 3
    scored = pd.read_csv(tmp_path / "out.csv", encoding="utf-8-sig")
    assert list(scored["label"][:2]) == ["positive", "negative"]
    explained = explain(load_predictor(folder.name), "the film was great")
    assert explained["label"] in ("negative", "positive") and len(explained["attributions"]) == 4


def test_stop_ends_the_run_as_cancelled_and_resume_trains_again(few_dataset, tiny_model_dir, monkeypatch):
    folder = create_run(fewshot_config(tiny_model_dir, epochs=1))
    monkeypatch.setenv("OPINIONLAB_INJECT_STOP", "5")
    assert run_training(folder) == {"status": "cancelled"}
    status = read_json(folder / "status.json")
    assert status["status"] == "cancelled" and status["step"] == 5 and "from the start" in status["reason"]
    assert not (folder / "model").exists()
    monkeypatch.delenv("OPINIONLAB_INJECT_STOP")
    metrics = run_training(folder, resume=True)
    assert metrics["steps"] == metrics["total_steps"] == 40


def test_cli_trains_fewshot_and_prints_json(few_dataset, tiny_model_dir, capsys):
    from core.cli import main

    code = main(["train", "--dataset", "few", "--method", "fewshot", "--model", str(tiny_model_dir),
                 "--epochs", "1", "--batch-size", "16", "--learning-rate", "1e-3",
                 "--max-length", "32", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["status"] == "succeeded" and out["metrics"]["accuracy"] is not None


@pytest.mark.timeout(120)
def test_real_minilm_with_8_examples_per_class(few_dataset, monkeypatch):
    """The embedded encoder, 8 examples per class, one short pass over 160 pairs (10 per example)."""
    monkeypatch.setattr("core.fewshot.PAIRS_PER_EXAMPLE", 10)
    folder = create_run(TrainConfig(dataset="few", model="default", method="fewshot", epochs=1, batch_size=16,
                                    learning_rate=2e-5, max_length=32))
    metrics = run_training(folder)
    assert metrics["pairs"] == 160 and metrics["steps"] == 20 and metrics["test"]["accuracy"] >= 0.9
    assert json.loads((folder / "model" / "encoder" / "config.json").read_text())["num_hidden_layers"] == 6


def test_the_estimate_counts_pairs_for_fewshot(easy_dataset):
    """Fewshot reads two texts per pair (20 pairs per example, capped), not rows × epochs."""
    from core.estimates import Measured, estimate_training
    from core.training import TrainConfig

    earlier = [Measured("r1", "default", "fewshot", 128, "cpu", 10.0, 40.0, 0.0, None, 100)]
    config = TrainConfig(dataset=easy_dataset, method="fewshot", epochs=1, max_length=128, device="cpu")
    estimate = estimate_training(config, history=earlier)
    rows = estimate.train_rows
    pairs = min(20 * rows, 5000)
    assert estimate.basis == "measured"
    assert abs(estimate.seconds - (2 * pairs / 10.0 + rows / 40.0 + _eval_texts(config, rows) / 40.0)) < 1e-6


def _eval_texts(config, rows):
    from core.estimates import evaluation_texts
    from core.workspace import Registry

    card = Registry().dataset(config.dataset)
    counts = {split: sum(c.values()) for split, c in card["card"]["split_counts"].items()}
    return evaluation_texts(config.to_dict(), counts, rows)
