"""Metrics of a classifier on labelled rows: accuracy, per-class and averaged precision, recall
and F1, and the confusion matrix (rows = true label, columns = predicted, in ``labels`` order)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict[str, Any]:
    if len(y_true) == 0:
        return {"rows": 0, "labels": labels}
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    out: dict[str, Any] = {
        "rows": len(y_true),
        "labels": labels,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class": {
            lab: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for lab, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average, zero_division=0)
        out[f"{average}_precision"], out[f"{average}_recall"], out[f"{average}_f1"] = float(p), float(r), float(f)
    return out


def probabilities_to_predictions(probs: np.ndarray, labels: list[str]) -> list[str]:
    return [labels[i] for i in np.asarray(probs).argmax(axis=1)]


def full_report(y_true: list[str], probs: np.ndarray, labels: list[str], texts: list[str] | None = None,
                bins: int = 10) -> dict[str, Any]:
    """Everything the Results page shows for one set of labelled predictions."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    probs = np.asarray(probs, dtype=float)
    y_pred = probabilities_to_predictions(probs, labels) if len(probs) else []
    report = classification_metrics(list(y_true), y_pred, labels)
    if not len(y_true):
        return report
    cm = np.asarray(report["confusion_matrix"], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        report["confusion_matrix_normalised"] = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True)).tolist()
    truth = np.array([labels.index(y) if y in labels else -1 for y in y_true])
    curves = {}
    targets = labels[1:] if len(labels) == 2 else labels  # binary: the second label is "positive"
    for lab in targets:
        k = labels.index(lab)
        positive = (truth == k).astype(int)
        if positive.min() == positive.max():
            continue
        fpr, tpr, _ = roc_curve(positive, probs[:, k])
        precision, recall, _ = precision_recall_curve(positive, probs[:, k])
        curves[lab] = {"fpr": _thin(fpr), "tpr": _thin(tpr), "roc_auc": float(auc(fpr, tpr)),
                       "precision": _thin(precision), "recall": _thin(recall),
                       "average_precision": float(average_precision_score(positive, probs[:, k]))}
    report["curves"] = curves
    confidence = probs.max(axis=1)
    correct = np.array(y_pred) == np.array(y_true)
    report["calibration"] = calibration(confidence, correct, bins)
    report["confidence_histogram"] = np.histogram(confidence, bins=bins, range=(0, 1))[0].tolist()
    wrong = np.flatnonzero(~correct)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")]
    report["misclassified"] = [
        {"row": int(i), "text": texts[i] if texts is not None else None, "true": y_true[i], "predicted": y_pred[i],
         "confidence": float(confidence[i])} for i in order]
    return report


def _thin(values: np.ndarray, most: int = 400) -> list[float]:
    """Curves with thousands of points are thinned to at most ``most`` for charts and JSON."""
    values = np.asarray(values, dtype=float)
    if len(values) > most:
        values = values[np.linspace(0, len(values) - 1, most).round().astype(int)]
    return values.tolist()


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability diagram data and expected calibration error (ECE)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        mean_conf = float(confidence[mask].mean()) if n else None
        accuracy = float(correct[mask].mean()) if n else None
        if n:
            ece += n / len(confidence) * abs(accuracy - mean_conf)
        rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": n,
                     "mean_confidence": mean_conf, "accuracy": accuracy})
    return {"bins": rows, "ece": float(ece)}


LABEL_SYNONYMS = {
    "pos": "positive", "positive": "positive", "正面": "positive", "积极": "positive", "好评": "positive",
    "neg": "negative", "negative": "negative", "负面": "negative", "消极": "negative", "差评": "negative",
    "neu": "neutral", "neutral": "neutral", "中性": "neutral", "中立": "neutral",
}


def map_labels(external: list[str], model_labels: list[str]) -> tuple[dict[str, str], list[str]]:
    """Map an external file's labels onto the model's: exact, then case-insensitive, then common
    synonyms (pos → positive, 正面 → positive). Returns the mapping and the labels left unmapped."""
    by_fold = {lab.casefold(): lab for lab in model_labels}
    mapping, unmapped = {}, []
    for lab in sorted(set(external)):
        key = lab.strip().casefold()
        target = by_fold.get(key) or by_fold.get(LABEL_SYNONYMS.get(key, "\0"))
        if target is None and key in LABEL_SYNONYMS:
            target = next((m for m in model_labels if LABEL_SYNONYMS.get(m.casefold()) == LABEL_SYNONYMS[key]), None)
        if target is None:
            unmapped.append(lab)
        else:
            mapping[lab] = target
    return mapping, unmapped
