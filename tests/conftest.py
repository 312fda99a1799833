"""Shared fixtures. Nothing here reaches the network; every test gets its own workspace."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """A fresh OPINIONLAB_HOME per test."""
    home = tmp_path / "workspace"
    monkeypatch.setenv("OPINIONLAB_HOME", str(home))
    return home


def labelled_rows(n_per_class: int = 10, labels=("negative", "positive")) -> list[tuple[str, str]]:
    words = {"negative": "awful boring terrible", "positive": "great lovely wonderful", "neutral": "okay fine"}
    rows = []
    for label in labels:
        for i in range(n_per_class):
            rows.append((f"Review {i} of {label}: {words.get(label, label)} film number {i}", label))
    return rows


def csv_bytes(rows, header=("text", "label"), sep=",", encoding="utf-8") -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


POSITIVE = ["great", "wonderful", "lovely", "superb", "enjoyable"]
NEGATIVE = ["awful", "terrible", "boring", "dreadful", "poor"]
FILLER = ["the", "film", "was", "plot", "actor", "story", "and", "really", "quite", "movie", "scene", "music"]


def easy_rows(n_per_class: int = 60, seed: int = 0) -> list[tuple[str, str]]:
    """Texts whose label is given away by one sentiment word among filler words."""
    import random

    rng = random.Random(seed)
    rows = []
    for label, words in (("negative", NEGATIVE), ("positive", POSITIVE)):
        for i in range(n_per_class):
            filler = rng.sample(FILLER, 5)
            filler.insert(rng.randrange(6), rng.choice(words))
            rows.append((" ".join(filler) + f" {i}", label))
    return rows


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised 2-layer BERT (hidden 32) with a small WordPiece vocabulary."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *FILLER,
             *[str(i) for i in range(10)], *[f"##{i}" for i in range(10)]]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2)
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def easy_dataset(workspace):
    """A saved dataset 'easy' of 120 rows the tiny model can learn."""
    import pandas as pd

    from core.data import Table, prepare_dataset
    from core.datasets import save_dataset

    frame = pd.DataFrame(easy_rows(), columns=["text", "label"], dtype="str")
    save_dataset(prepare_dataset(Table(frame, "easy.csv", "csv", "utf-8", ",")), "easy")
    return "easy"


@pytest.fixture
def baseline_run(easy_dataset):
    """A finished TF-IDF baseline run on the 'easy' dataset (seconds to train)."""
    from core.training import TrainConfig, create_run, run_training

    folder = create_run(TrainConfig(dataset="easy", method="baseline"))
    run_training(folder)
    return folder.name
