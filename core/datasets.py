"""Saved datasets: cleaned rows as Parquet plus a card (``card.json``) in the workspace.

A dataset folder is ``datasets/<generated id>/``; the name a person typed lives only in the
registry. The folder is written under a temporary name and renamed, and only then registered.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import pandas as pd

from core.data import SPLITS, PreparedDataset, join_messages, storable
from core.errors import DataError, NotFoundError
from core.i18n import msg
from core.workspace import Registry, atomic_write_json, check_name, inside, new_id, staging_dir


def _registry(registry: Registry | None) -> Registry:
    return registry or Registry()


def save_dataset(prepared: PreparedDataset, name: str, registry: Registry | None = None,
                 created_by: str | None = None) -> dict[str, Any]:
    """Save a prepared dataset under ``name``; refuses one whose report has errors."""
    registry = _registry(registry)
    name = check_name(name, msg("dataset.what_name"))
    if not prepared.report.ok:
        raise DataError("dataset.err.blocked", problems=join_messages(prepared.report.errors))
    if registry.dataset(name):
        raise DataError("dataset.err.exists", name=name)
    ds_id = new_id("ds")
    report = prepared.report
    card = {
        "id": ds_id,
        "name": name,
        "source": prepared.table_info.get("source"),
        "format": prepared.table_info.get("format"),
        "encoding": prepared.table_info.get("encoding"),
        "delimiter": prepared.table_info.get("delimiter"),
        "columns": prepared.mapping.to_dict(),
        "rows_read": report.rows_read,
        "rows": report.rows,
        "labels": report.labels,
        "classes": report.class_counts,
        "split_counts": report.split_counts,
        "steps": report.steps,
        "label_merges": report.label_merges,
        "length_stats": report.length_stats,
        "warnings": [storable(w) for w in report.warnings],  # message dicts: shown in the reader's language
        "notes": [storable(n) for n in report.notes],
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "created_by": created_by,
    }
    folder = inside(registry.root, "datasets", ds_id)
    with staging_dir(folder) as tmp:
        prepared.frame.to_parquet(tmp / "data.parquet", index=False)
        atomic_write_json(tmp / "card.json", card)
    try:
        registry.add_dataset(ds_id, name, report.rows, card, created_by)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return card


def list_datasets(registry: Registry | None = None) -> list[dict[str, Any]]:
    return [row["card"] for row in _registry(registry).datasets()]


def get_dataset(name: str, registry: Registry | None = None) -> dict[str, Any]:
    registry = _registry(registry)
    row = registry.dataset(name)
    if row is None:
        known = ", ".join(repr(d["name"]) for d in registry.datasets()[:10]) or msg("dataset.none_yet")
        raise NotFoundError("dataset.err.not_found", name=name, known=known)
    return row["card"]


def dataset_path(name: str, registry: Registry | None = None):
    registry = _registry(registry)
    card = get_dataset(name, registry)
    return inside(registry.root, "datasets", card["id"], "data.parquet")


def load_rows(name: str, split: str | None = None, registry: Registry | None = None) -> pd.DataFrame:
    """The cleaned rows of a saved dataset, optionally one split only."""
    path = dataset_path(name, registry)
    if not path.exists():
        raise NotFoundError("dataset.err.files_missing", name=name)
    frame = pd.read_parquet(path)
    if split is not None:
        if split not in SPLITS:
            raise DataError("dataset.err.unknown_split", split=split, splits=", ".join(SPLITS))
        frame = frame[frame["split"] == split].reset_index(drop=True)
    return frame


def remove_dataset(name: str, registry: Registry | None = None) -> dict[str, Any]:
    """Unregister first, then delete the folder: the registry never lists a missing dataset."""
    registry = _registry(registry)
    card = get_dataset(name, registry)
    registry.remove_dataset(card["id"])
    shutil.rmtree(inside(registry.root, "datasets", card["id"]), ignore_errors=True)
    return card
