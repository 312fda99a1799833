"""Finished runs: listing, names, details, comparison, evaluation on any split or file, exports,
and what deleting a run would remove."""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core import datasets as store
from core.data import SPLITS, ColumnMapping, detect_columns, read_table
from core.errors import ConfigError, DataError, NotFoundError
from core.evaluation import full_report, map_labels
from core.i18n import DEFAULT_LANGUAGE, Message, format_count, has, msg, t
from core.predict import load_predictor, require_finished, run_folder
from core.training import read_progress
from core.workspace import Registry, read_json

NAME_MAX = 80  # characters of a run's name


def list_runs(registry: Registry | None = None, lang: str = DEFAULT_LANGUAGE) -> list[dict[str, Any]]:
    """Every run, newest first; ``name`` is the user's name for it or one made from its settings
    in ``lang`` (display text only: ids, never names, find runs and folders)."""
    registry = registry or Registry()
    out = []
    listed = registry.runs()
    names = run_names(listed, lang)
    for run in listed:
        folder = registry.root / "runs" / run["id"]
        status = read_json(folder / "status.json", {}) or {}
        config = read_json(folder / "config.json", {}) or {}
        metrics = status.get("metrics") or {}
        out.append({
            "id": run["id"], "name": names[run["id"]], "custom_name": bool(run.get("name")),
            "dataset": run["dataset"], "status": status.get("status", run["status"]),
            "method": config.get("method"), "model": config.get("model"), "preset": config.get("preset"),
            "accuracy": metrics.get("accuracy"), "macro_f1": metrics.get("macro_f1"),
            "baseline_accuracy": metrics.get("baseline_accuracy"), "created_at": run["created_at"],
            "reason": status.get("reason"),
        })
    return out


def auto_name(run: dict[str, Any], lang: str = DEFAULT_LANGUAGE) -> str:
    """"dataset · method · model · date", e.g. "movie-reviews · LoRA · MiniLM · 28 Nov"; a search's
    trial or a comparison's cell says so before the date."""
    info = run.get("info") or {}
    method = str(info.get("method") or "")
    parts = [run.get("dataset") or "—", t(f"runs.method.{method}", lang) if has(f"runs.method.{method}") else method]
    if method != "baseline":  # the TF-IDF baseline uses no model
        parts.append(_model_label(str(info.get("model") or "default"), lang))
    if run.get("search_id"):  # a trial of a hyperparameter search
        parts.append(t("runs.tag.trial", lang))
    elif info.get("comparison"):  # one cell of a method comparison
        size = info.get("per_class")
        shown = t("runs.tag.all_rows", lang) if size == "all" else t("runs.tag.per_class", lang,
                                                                     n=format_count(size, lang))
        parts.append(t("runs.tag.comparison", lang, seed=info.get("seed"), size=shown))
    parts.append(_day(run["created_at"], lang))
    return " · ".join(p for p in parts if p)


def _model_label(model: str, lang: str) -> str:
    if has(f"runs.model.{model}"):
        return t(f"runs.model.{model}", lang)
    return Path(model.rstrip("/")).name or model  # a folder or a hub id such as org/name: its last part


def _day(timestamp: float, lang: str) -> str:
    day = dt.datetime.fromtimestamp(float(timestamp))
    key = "runs.day" if day.year == dt.date.today().year else "runs.day_year"
    return t(key, lang, day=day.day, month=t(f"runs.month.{day.month}", lang), year=day.year)


def run_names(runs: list[dict[str, Any]], lang: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """Each registry run's name by id. Made-up names that come out equal (same settings, same
    day) are told apart in order of creation: "…· 28 Nov", "…· 28 Nov (2)"."""
    names: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for run in sorted(runs, key=lambda r: r["created_at"]):
        if run.get("name"):
            names[run["id"]] = run["name"]
            continue
        made = auto_name(run, lang)
        seen[made] += 1
        names[run["id"]] = made if seen[made] == 1 else f"{made} ({seen[made]})"
    return names


def run_name(run_id: str, registry: Registry | None = None, lang: str = DEFAULT_LANGUAGE) -> str:
    registry = registry or Registry()
    names = run_names(registry.runs(), lang)
    if run_id not in names:
        raise NotFoundError("runs.err.not_found", run=run_id)
    return names[run_id]


def clean_run_name(name: str | None) -> str | None:
    """A typed name made tidy (line breaks, tabs and runs of spaces become one space), None when
    blank; refuses other control and format characters (escape codes, text-direction overrides)
    and names over ``NAME_MAX`` characters. Names are shown, never used as paths."""
    cleaned = " ".join((name or "").split())
    if not cleaned:
        return None
    if len(cleaned) > NAME_MAX:
        raise ConfigError("runs.err.name_long", length=len(cleaned), limit=NAME_MAX)
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise ConfigError("runs.err.name_chars")
    return cleaned


def rename_run(run_id: str, name: str | None, registry: Registry | None = None,
               lang: str = DEFAULT_LANGUAGE) -> str:
    """Give a run a name of the user's; a blank name brings back the one made from its settings.

    Returns the name the run now shows."""
    registry = registry or Registry()
    if not registry.rename_run(run_id, clean_run_name(name)):
        raise NotFoundError("runs.err.not_found", run=run_id)
    return run_name(run_id, registry, lang)


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting a run would remove (and what it leaves), for the confirmation a person reads."""

    run_id: str
    removes: list[Message] = field(default_factory=list)
    keeps: list[Message] = field(default_factory=list)
    size_bytes: int = 0

    @property
    def has_outputs(self) -> bool:
        """Whether the run made anything worth a confirmation (a model, checkpoints, predictions, metrics)."""
        return bool(self.removes)


def deletion_plan(run_id: str, registry: Registry | None = None) -> DeletionPlan:
    registry = registry or Registry()
    folder = registry.root / "runs" / run_id
    removes: list[Message] = []
    if (folder / "model").is_dir():
        removes.append(msg("runs.delete.model", size=size_text(_bytes(folder / "model"))))
    checkpoints = [p for p in (folder / "checkpoints").glob("*") if p.is_dir() and not p.name.startswith(".")]
    if checkpoints:
        removes.append(msg("runs.delete.checkpoints", n=len(checkpoints),
                           size=size_text(_bytes(folder / "checkpoints"))))
    predictions = folder / "predictions_test.parquet"
    if predictions.is_file():
        import pyarrow.parquet as pq

        removes.append(msg("runs.delete.predictions", n=pq.ParquetFile(predictions).metadata.num_rows))
    if (folder / "metrics.json").is_file():
        removes.append(msg("runs.delete.metrics"))
    if removes:
        removes.append(msg("runs.delete.record"))
    scored = sum(1 for path in (registry.root / "scores").glob("*/score.json")
                 if (read_json(path, {}) or {}).get("run_id") == run_id)
    keeps = [msg("runs.delete.scores_stay", n=scored)] if scored else []
    return DeletionPlan(run_id, removes, keeps, _bytes(folder))


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) if Path(path).exists() else 0


def size_text(size: int) -> str:
    """Bytes as 1.2 MB (decimal units, one decimal; the same in every language)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def show_run(run_id: str, registry: Registry | None = None) -> dict[str, Any]:
    registry = registry or Registry()
    folder = run_folder(run_id, registry)
    return {
        "id": folder.name, "run_dir": str(folder),
        "status": read_json(folder / "status.json", {}) or {},
        "config": read_json(folder / "config.json", {}) or {},
        "metrics": read_json(folder / "metrics.json", {}) or {},
        "progress": read_progress(folder),
    }


def test_predictions(run_id: str, registry: Registry | None = None) -> pd.DataFrame:
    folder = require_finished(run_id, registry)
    return pd.read_parquet(folder / "predictions_test.parquet")


def _report_from_frame(frame: pd.DataFrame, labels: list[str]) -> dict[str, Any]:
    probs = frame[[f"prob_{lab}" for lab in labels]].to_numpy()
    return full_report(frame["label"].tolist(), probs, labels, frame["text"].tolist())


def evaluate_run(run_id: str, dataset: str | None = None, split: str = "test", file: str | Path | bytes | None = None,
                 filename: str | None = None, text_col: str | None = None, label_col: str | None = None,
                 registry: Registry | None = None) -> dict[str, Any]:
    """The full report of a finished run on its own test split, a split of any dataset, or a labelled file."""
    registry = registry or Registry()
    folder = require_finished(run_id, registry)
    config = read_json(folder / "config.json", {}) or {}
    labels = read_json(folder / "model" / "labels.json", {})["labels"]
    if file is None and (dataset is None or dataset == config.get("dataset")) and split == "test":
        report = _report_from_frame(pd.read_parquet(folder / "predictions_test.parquet"), labels)
        return {**report, "source": f"{config.get('dataset')} (test split)", "unmapped_labels": [], "skipped_rows": 0}
    if file is not None:
        table = read_table(file, filename)
        detected = detect_columns(table.frame)
        mapping = ColumnMapping(text=text_col or detected.text, label=label_col or detected.label)
        columns = ", ".join(map(repr, table.frame.columns))
        if not mapping.text or mapping.text not in table.frame.columns:
            raise DataError("run.err.no_text_column", column=mapping.text or "", columns=columns)
        if not mapping.label:
            raise DataError("run.err.no_label_column", columns=columns)
        if mapping.label not in table.frame.columns:
            raise DataError("run.err.label_column_missing", column=mapping.label, columns=columns)
        frame = pd.DataFrame({"text": table.frame[mapping.text], "label": table.frame[mapping.label].str.strip()})
        source = table.source_name
    else:
        if split not in SPLITS:
            raise DataError("dataset.err.unknown_split", split=split, splits=", ".join(SPLITS))
        frame = store.load_rows(dataset, split=split, registry=registry)[["text", "label"]]
        source = f"{dataset} ({split} split)"
    frame = frame[frame["text"].str.strip() != ""]
    mapping_of, unmapped = map_labels(frame["label"].tolist(), labels)
    if not mapping_of:
        raise DataError("run.err.no_label_match", labels=", ".join(map(repr, unmapped[:8])),
                        model_labels=", ".join(map(repr, labels)))
    known = frame["label"].isin(mapping_of)
    skipped = int((~known).sum())
    frame = frame[known].assign(label=lambda f: f["label"].map(mapping_of)).reset_index(drop=True)
    probs = load_predictor(run_id, registry).predict_proba(frame["text"].tolist())
    report = full_report(frame["label"].tolist(), probs, labels, frame["text"].tolist())
    return {**report, "source": source, "unmapped_labels": unmapped, "skipped_rows": skipped,
            "label_mapping": mapping_of}


def compare_runs(run_ids: list[str], registry: Registry | None = None) -> dict[str, Any]:
    """Metrics and configs side by side; ``differs`` names the config fields that are not all equal."""
    registry = registry or Registry()
    shown = [show_run(r, registry) for r in run_ids]
    rows = []
    for run in shown:
        test = (run["metrics"].get("test") or {})
        base = ((run["metrics"].get("baseline") or {}).get("test") or {})
        rows.append({"id": run["id"], "status": run["status"].get("status"), "accuracy": test.get("accuracy"),
                     "macro_f1": test.get("macro_f1"), "weighted_f1": test.get("weighted_f1"),
                     "baseline_accuracy": base.get("accuracy"), **{f"config.{k}": v for k, v in run["config"].items()
                                                                     if k != "run_id"}})
    keys = [k for k in rows[0] if k.startswith("config.")] if rows else []
    differs = [k for k in keys if len({str(r.get(k)) for r in rows}) > 1]
    return {"runs": rows, "differs": differs,
            "histories": {run["id"]: run["progress"] for run in shown},
            "confusion_matrices": {run["id"]: (run["metrics"].get("test") or {}).get("confusion_matrix") for run in shown},
            "per_class": {run["id"]: (run["metrics"].get("test") or {}).get("per_class") or {} for run in shown},
            "labels": {run["id"]: run["metrics"].get("labels") for run in shown}}


COMPARE_AT_MOST = 4  # more runs than this make the overlaid charts unreadable


def default_comparison(runs: list[dict[str, Any]], current: str | None) -> list[str]:
    """The runs Compare starts with: the finished runs of the current run's dataset, the current
    run first, then the newest. Runs of other datasets are left out: their test splits differ,
    so their numbers do not compare."""
    chosen = next((r for r in runs if r["id"] == current), None)
    finished = [r for r in runs if r["status"] == "succeeded"]
    dataset = chosen["dataset"] if chosen else (finished[0]["dataset"] if finished else None)
    same = [r for r in finished if r["dataset"] == dataset]
    same.sort(key=lambda r: (r["id"] != current, -float(r.get("created_at") or 0)))
    return [r["id"] for r in same[:COMPARE_AT_MOST]]


def baseline_reference(shown: dict[str, Any]) -> dict[str, Any]:
    """The baseline's test metrics a run is measured against; none for a baseline run, which
    would only be compared with itself."""
    if (shown.get("config") or {}).get("method") == "baseline":
        return {}
    return ((shown.get("metrics") or {}).get("baseline") or {}).get("test") or {}


def model_zip(run_id: str, registry: Registry | None = None) -> bytes:
    """The run's model folder (and its metrics and config) as a zip."""
    folder = require_finished(run_id, registry)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((folder / "model").rglob("*")):
            if path.is_file() and "onnx" not in path.relative_to(folder / "model").parts[:1]:  # fast mode's cache
                archive.write(path, f"{folder.name}/model/{path.relative_to(folder / 'model')}")
        for name in ("metrics.json", "config.json"):
            if (folder / name).exists():
                archive.write(folder / name, f"{folder.name}/{name}")
    return buffer.getvalue()


def metrics_table(report: dict[str, Any]) -> pd.DataFrame:
    """Per-class rows plus macro and weighted averages, for CSV export and the page."""
    rows = [{"class": lab, **vals} for lab, vals in (report.get("per_class") or {}).items()]
    for avg in ("macro", "weighted"):
        rows.append({"class": f"{avg} avg", "precision": report.get(f"{avg}_precision"),
                     "recall": report.get(f"{avg}_recall"), "f1": report.get(f"{avg}_f1"),
                     "support": report.get("rows")})
    rows.append({"class": "accuracy", "precision": None, "recall": None, "f1": report.get("accuracy"),
                 "support": report.get("rows")})
    return pd.DataFrame(rows)
