"""The rows a run trains, validates and tests on, read from its saved dataset."""

from __future__ import annotations

import pandas as pd

from core import datasets as store
from core.errors import ConfigError, NotFoundError
from core.modeling.config import TrainConfig
from core.workspace import Registry

SPLITS = ("train", "validation", "test")


def stratified_head(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, each label keeping its share (at least one row each)."""
    if not limit or len(frame) <= limit:
        return frame.reset_index(drop=True)
    share = limit / len(frame)
    parts = [g.sample(n=max(1, int(round(len(g) * share))), random_state=seed) for _, g in frame.groupby("label")]
    return pd.concat(parts).sample(frac=1, random_state=seed).head(limit).reset_index(drop=True)


def per_label_sample(frame: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """``per_class`` rows of each label drawn with ``seed`` (all of a label that has fewer; 0 = all rows):
    the same seed draws the same rows for every method, so methods compare on the same texts."""
    if not per_class:
        return frame
    parts = [g.sample(n=min(per_class, len(g)), random_state=seed) for _, g in frame.groupby("label")]
    return pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)


def load_splits(config: TrainConfig, registry: Registry) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """``({"train": ..., "validation": ..., "test": ...}, labels)``; the training rows cut to
    ``per_class`` rows of each label, then to ``limit``, and the validation rows to
    ``max_eval_rows``, all stratified."""
    card = registry.dataset(config.dataset)
    if card is None:
        raise NotFoundError("train.err.dataset_deleted", dataset=config.dataset)
    rows = store.load_rows(card["id"], registry=registry)
    labels = card["card"]["labels"]
    splits = {name: rows[rows["split"] == name].reset_index(drop=True) for name in SPLITS}
    splits["train"] = stratified_head(per_label_sample(splits["train"], config.per_class, config.seed),
                                      config.limit, config.seed)
    if config.max_eval_rows:
        splits["validation"] = stratified_head(splits["validation"], config.max_eval_rows, config.seed)
    missing = sorted(set(labels) - set(splits["train"]["label"]))
    if missing:
        raise ConfigError("train.err.class_missing_rows", labels=", ".join(map(repr, missing)))
    empty = [name for name, frame in splits.items() if len(frame) == 0]
    if empty:  # possible with a split column of the user's (or rows removed as duplicates)
        raise ConfigError("train.err.empty_splits", dataset=config.dataset, splits=" / ".join(empty),
                          values=" / ".join(repr(n) for n in empty))
    return splits, labels
