"""The Results page's tables and labels for people: readable headers, one number format
(three decimals for metrics, whole counts with separators), never "None", names translated."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.i18n import format_count, has, t
from core.runs import metrics_table


def run_name(run: dict[str, Any], lang: str = "en") -> str:
    """A run as people know it: its name, or else its id, dataset and method."""
    if run.get("name"):
        return str(run["name"])
    return " · ".join([run["id"], str(run["dataset"]), setting_text("method", run.get("method"), lang)])


def run_label(run: dict[str, Any], lang: str = "en") -> str:
    """A run in a list of runs: its name and its state."""
    state = t(f"status.{run['status']}", lang)
    return f"{run_name(run, lang)} · {state}"


def metric_text(value: Any) -> str:
    """Every metric in a table: three decimals; a missing one as a dash, never "None"."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    return f"{float(value):.3f}"


# Settings only a transformer run uses: a baseline (TF-IDF + logistic regression) ignores them.
MODEL_ONLY = {"model", "epochs", "learning_rate", "batch_size", "grad_accum", "max_length", "head_tokens",
              "warmup_ratio", "weight_decay", "early_stopping_patience", "eval_every", "checkpoint_every",
              "precision", "device", "pooling", "freeze_embeddings"}
ZERO_IS_ALL = {"limit", "max_eval_rows"}
FEWSHOT_UNUSED = {"early_stopping_patience", "eval_every", "max_eval_rows", "checkpoint_every", "grad_accum",
                  "pooling", "report_to"}  # 0 means "no limit"


def applies(field: str, method: str | None) -> bool:
    """Whether a run trained by ``method`` uses this setting (LoRA's only with LoRA)."""
    from core.modeling.adapters import ADAPTER_METHODS, RANKED, VIRTUAL_TOKENS

    users = {"adalora_init_r": ("adalora",), "virtual_tokens": VIRTUAL_TOKENS,
             "freeze_embeddings": ("full",)}
    if method == "fewshot" and field in FEWSHOT_UNUSED:  # pair training: no evaluations, checkpoints or pooling choice
        return False
    if field in users:
        return method in users[field]
    if field.startswith("lora_"):
        return method in RANKED if field != "lora_dropout" else method in RANKED and method in ADAPTER_METHODS
    return not (method == "baseline" and field in MODEL_ONLY)


def setting_text(field: str, value: Any, lang: str = "en", method: str | None = None) -> str:
    """A training setting's value as a person reads it: method and preset names translated, a
    dash where the run's method does not use it, "all" for a row limit of 0."""
    if value is None or value == "" or not applies(field, method):
        return "—"
    if field in ZERO_IS_ALL and value == 0:
        return t("qa.results.all", lang)
    if field in ("method", "preset") and has(f"train.{field}.{value}"):
        return t(f"train.{field}.{value}", lang)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def setting_label(field: str, lang: str = "en") -> str:
    """A training setting's name as a column header ('learning_rate' -> 'Learning rate')."""
    key = f"results.field.{field}"
    return t(key, lang) if has(key) else field.replace("_", " ").capitalize()


def metrics_display(report: dict[str, Any], lang: str = "en") -> pd.DataFrame:
    """The per-class table for people: readable headers, three decimals, whole counts, no "None"."""
    table = metrics_table(report)
    names = {"macro avg": t("results.class.macro_avg", lang), "weighted avg": t("results.class.weighted_avg", lang),
             "accuracy": t("results.accuracy", lang)}
    out = {t("results.col.class", lang): [names.get(c, c) for c in table["class"]]}
    for column in ("precision", "recall", "f1"):
        out[t(f"results.col.{column}", lang)] = [metric_text(v) for v in table[column]]
    out[t("results.col.support", lang)] = [format_count(v, lang) for v in table["support"]]
    return pd.DataFrame(out)


def comparison_table(result: dict[str, Any], names: dict[str, str] | None = None, lang: str = "en"):
    """Compare's table: one row per run, readable headers, metrics with three decimals, the best
    accuracy and macro F1 shaded green and the settings that differ shaded yellow (a pandas Styler)."""
    rows = result["runs"]
    names = names or {}
    metrics = {key: [r.get(key) for r in rows] for key in ("accuracy", "macro_f1", "weighted_f1")}
    baseline = [None if r.get("config.method") == "baseline" else r.get("baseline_accuracy") for r in rows]
    out = {t("results.col.run", lang): [names.get(r["id"], r["id"]) for r in rows]}
    for key, values in metrics.items():
        out[t(f"results.{key}", lang)] = [metric_text(v) for v in values]
    out[t("results.col.baseline_accuracy", lang)] = [metric_text(v) for v in baseline]
    differs = []
    for key in result["differs"]:
        field = key.removeprefix("config.")
        differs.append(setting_label(field, lang))
        out[differs[-1]] = [setting_text(field, r.get(key), lang, r.get("config.method")) for r in rows]
    styler = pd.DataFrame(out).style
    for key in ("accuracy", "macro_f1"):
        known = [v for v in metrics[key] if v is not None]
        best = ["background-color: #dcfce7" if known and v == max(known) else "" for v in metrics[key]]
        styler = styler.apply(lambda _, shades=best: shades, subset=[t(f"results.{key}", lang)])
    return styler.set_properties(subset=differs, **{"background-color": "#fef9c3"}) if differs else styler
