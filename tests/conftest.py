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
