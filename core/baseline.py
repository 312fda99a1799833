"""The classical reference: TF-IDF n-grams + logistic regression (scikit-learn).

Word 1–2 grams for space-separated languages, character 1–3 grams for Chinese (the MiniLM
vocabulary cannot read Chinese; this can). Seconds to train, and every fine-tuned run reports
it on the same split. Saved as safetensors + JSON, never pickled.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from core.workspace import atomic_write_json

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
BASELINE_FILE = "baseline.safetensors"


def is_chinese(texts: list[str]) -> bool:
    sample = texts[:2000]
    return bool(sample) and sum(bool(_CJK.search(t)) for t in sample) / len(sample) > 0.3


class BaselineModel:
    """TF-IDF + logistic regression with the label order of the run."""

    def __init__(self, labels: list[str], chinese: bool = False, C: float = 10.0):
        self.labels = labels
        self.chinese = chinese
        self.C = C
        self.vectorizer = self._vectorizer()
        self.classifier = LogisticRegression(C=C, max_iter=2000, class_weight="balanced")

    def _vectorizer(self, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
        if self.chinese:
            return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True,
                                   max_features=200_000, vocabulary=vocabulary)
        return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode",
                               max_features=200_000, vocabulary=vocabulary)

    def fit(self, texts: list[str], labels: list[str]) -> BaselineModel:
        x = self.vectorizer.fit_transform(texts)
        self.classifier.fit(x, [self.labels.index(lab) for lab in labels])
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Probabilities in ``self.labels`` order (classes unseen in training get 0)."""
        raw = self.classifier.predict_proba(self.vectorizer.transform(texts))
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        probs[:, self.classifier.classes_] = raw
        return probs

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        vocab = self.vectorizer.vocabulary_
        terms = sorted(vocab, key=vocab.get)
        save_file({"idf": self.vectorizer.idf_.astype(np.float64),
                   "coef": self.classifier.coef_.astype(np.float64),
                   "intercept": self.classifier.intercept_.astype(np.float64),
                   "classes": self.classifier.classes_.astype(np.int64)}, str(folder / BASELINE_FILE))
        atomic_write_json(folder / "baseline.json", {"labels": self.labels, "chinese": self.chinese,
                                                     "C": self.C, "terms": terms})

    @classmethod
    def load(cls, folder: Path) -> BaselineModel:
        meta = json.loads((folder / "baseline.json").read_text(encoding="utf-8"))
        tensors = load_file(str(folder / BASELINE_FILE))
        model = cls(meta["labels"], meta["chinese"], meta["C"])
        model.vectorizer = model._vectorizer({term: i for i, term in enumerate(meta["terms"])})
        model.vectorizer.idf_ = tensors["idf"]
        model.classifier.coef_ = tensors["coef"]
        model.classifier.intercept_ = tensors["intercept"]
        model.classifier.classes_ = tensors["classes"]
        return model
