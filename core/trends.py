"""Opinion monitoring (舆情监测): sentiment over time, spike alerts and the words behind them.

The story of a trend report: read a scored file → read its date column as one decision
(``core.dates``: the order of day and month, offsets, unreadable values counted) → bucket rows
into days, weeks or months → count each label per period (and per group) → flag the periods
whose negative share or volume rises far above the non-empty periods before them → for each
flagged period, rank the terms most over-represented in its negative texts against the window
before it (``core.keywords``). Every number can be traced back to the texts behind it
(``texts_for``), and a period without texts is a gap, never a 0%.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import dates, keywords
from core.errors import ConfigError, DataError
from core.i18n import Message, msg, render, t
from core.samples import DEMO_COMPLAINT, demo_timeline

__all__ = ["DEMO_COMPLAINT", "demo_timeline"]  # the demo lives with the samples; trends names it too

FREQUENCIES = {"D": "day", "W": "week", "M": "month"}
OTHER_GROUP = "other"
POSITIVE = {"positive", "pos", "good", "1", "正面", "积极", "好评", "正向", "正"}
NEGATIVE = {"negative", "neg", "bad", "0", "负面", "消极", "差评", "负向", "负"}
# A spike is measured against a baseline of at least this many periods that have texts (of the
# window before it): a usual of 0, or a median of one or two periods, is no usual at all.
MIN_BASELINE = 4


@dataclass
class TrendSettings:
    """How periods are formed, how dates are read and when a period counts as a spike.

    Each field's ``help`` is a message id: the page shows it in the reader's language."""

    freq: str = field(default="W", metadata={"help": "trends.help.freq"})  # D, W (from Monday) or M
    window: int = field(default=8, metadata={"help": "trends.help.window"})  # periods; 4-12 weeks, 14-60 days
    k: float = field(default=3.5, metadata={"help": "trends.help.k"})  # robust deviations; 2.5 (sensitive) - 5
    min_volume: int = field(default=30, metadata={"help": "trends.help.min_volume"})  # texts a period needs to alert
    method: str = field(default="mad", metadata={"help": "trends.help.method"})  # mad or std
    top_groups: int = field(default=8, metadata={"help": "trends.help.top_groups"})  # the rest are "other"
    negative_label: str = field(default="", metadata={"help": "trends.help.negative_label"})  # "" = detected
    positive_label: str = field(default="", metadata={"help": "trends.help.positive_label"})  # "" = detected
    date_order: str = field(default=dates.AUTO, metadata={"help": "trends.help.date_order"})  # auto, DMY, MDY, YMD
    date_format: str = field(default="", metadata={"help": "trends.help.date_format"})  # strftime; "" = detect
    timezone: str = field(default="", metadata={"help": "trends.help.timezone"})  # IANA name; "" = own local time

    def validate(self) -> TrendSettings:
        if self.freq not in FREQUENCIES:
            raise ConfigError("trends.err.bad_freq", freq=self.freq)
        if self.method not in ("mad", "std"):
            raise ConfigError("trends.err.bad_method", method=self.method)
        if not MIN_BASELINE <= self.window <= 365:
            raise ConfigError("trends.err.bad_window", window=self.window, least=MIN_BASELINE)
        if not 0.5 <= self.k <= 20:
            raise ConfigError("trends.err.bad_k", k=self.k)
        if self.min_volume < 0 or self.top_groups < 1:
            raise ConfigError("trends.err.bad_volume_or_groups")
        dates.check_options(self.date_order, self.date_format, self.timezone)
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
# Periods
# ----------------------------------------------------------------------------------------
def period_start(moments: pd.Series, freq: str) -> pd.Series:
    """The first day of each moment's day, week (Monday) or month."""
    day = moments.dt.normalize()
    if freq == "D":
        return day
    if freq == "W":
        return day - pd.to_timedelta(day.dt.dayofweek, unit="D")
    return pd.Series(day.to_numpy().astype("datetime64[M]").astype("datetime64[ns]"), index=moments.index)


def period_label(start: pd.Timestamp, freq: str, lang: str = "en") -> str:
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
                raise ConfigError("trends.err.unknown_label", label=chosen, labels=", ".join(map(str, labels)))
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
    dates: dates.DateReading
    empty_labels: int
    groups: list[str] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)

    @property
    def bad_dates(self) -> int:
        return self.dates.unreadable


def _check_columns(frame: pd.DataFrame, columns: Columns) -> None:
    available = ", ".join(map(str, frame.columns))
    for role in ("date", "label", "text", "confidence", "group"):
        col = getattr(columns, role)
        if role in ("date", "label") and not col:
            raise DataError(f"trends.err.no_{role}_column", columns=available)
        if col and col not in frame.columns:
            raise DataError("trends.err.missing_column", role=msg(f"trends.role.{role}"), column=str(col),
                            columns=available)
    if len(frame) == 0:
        raise DataError("trends.err.no_rows")


def _groups(values: pd.Series, column: str, top: int) -> tuple[pd.Series, list[str], list[Message]]:
    """The group of each row: the ``top`` largest by name, the rest as 'other'."""
    raw = values.fillna("").astype("str").str.strip().replace("", "—")
    counts = raw.value_counts()
    groups = [str(g) for g in counts.index[:top]]
    if len(counts) <= top:
        return raw, groups, []
    note = msg("trends.note.groups", n=f"{len(counts):,}", column=column, top=top, rest=f"{len(counts) - top:,}")
    return raw.where(raw.isin(groups), OTHER_GROUP), groups + [OTHER_GROUP], [note]


def prepare(frame: pd.DataFrame, columns: Columns, settings: TrendSettings | None = None,
            lang: str = "en") -> Prepared:
    """Check the columns, read the dates (``lang`` decides the order only when every date is
    ambiguous and nobody chose) and assign periods and groups."""
    from core.data import sort_labels

    settings = (settings or TrendSettings()).validate()
    _check_columns(frame, columns)
    reading = dates.read_dates(frame[columns.date], settings.date_order, settings.date_format, settings.timezone,
                               fallback=dates.language_order(lang))
    labels = frame[columns.label].fillna("").astype("str").str.strip()
    keep = reading.values.notna() & (labels != "")
    empty_labels = int((reading.values.notna() & (labels == "")).sum())
    if not keep.any():
        raise DataError("trends.err.no_dates", n=f"{len(frame):,}", column=str(columns.date),
                        examples=", ".join(repr(v) for v in frame[columns.date].astype("str").head(3)))
    def kept(values: pd.Series) -> pd.Series:  # a million long texts: no copy when every row is kept
        return values if every_row else values[keep]

    every_row = bool(keep.all())
    data = pd.DataFrame({"date": kept(reading.values), "label": kept(labels)})
    if columns.text:
        data["text"] = kept(frame[columns.text]).fillna("").astype("str")
    if columns.confidence:
        data["confidence"] = pd.to_numeric(kept(frame[columns.confidence]), errors="coerce")
    notes = reading.notes(str(columns.date))
    groups: list[str] = []
    if columns.group:
        data["group"], groups, group_notes = _groups(kept(frame[columns.group]), str(columns.group),
                                                     settings.top_groups)
        notes += group_notes
    data["period"] = period_start(data["date"], settings.freq)
    label_list = sort_labels(list(data["label"].unique()))
    positive, negative = polarity(label_list, settings)
    empty_dates = int(reading.values.isna().sum()) - reading.unreadable
    if empty_dates:
        notes.append(msg("trends.note.empty_dates", n=f"{empty_dates:,}", column=str(columns.date)))
    if empty_labels:
        notes.append(msg("trends.note.empty_labels", n=f"{empty_labels:,}"))
    if data["period"].nunique() == 1:
        notes.append(msg("trends.note.one_period"))
    if negative is None:
        notes.append(msg("trends.note.no_negative"))
    return Prepared(data, label_list, positive, negative, settings, len(frame), reading, empty_labels, groups, notes)


def aggregate(prepared: Prepared, by_group: bool = False) -> pd.DataFrame:
    """One row per period (and group): volume, a count and a share per label, net sentiment and
    mean confidence. Periods without texts are kept with volume 0 and no shares (NaN): a chart
    shows them as gaps, not as a drop to 0%."""
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
        table[f"share_{label}"] = counts[label] / volume
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
    baseline: float  # the usual: median (or mean) of the non-empty periods before; always > 0
    ratio: float  # value / baseline: "how many times the usual"
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
    """Centre and spread of the periods that have a value among the ``window`` before each point
    (the point itself excluded); NaN where fewer than ``MIN_BASELINE`` of them have one."""
    past = values.shift(1).rolling(settings.window, min_periods=MIN_BASELINE)
    if settings.method == "std":
        return past.mean(), past.std()
    mad = past.apply(lambda w: np.nanmedian(np.abs(w - np.nanmedian(w))), raw=True)
    return past.median(), 1.4826 * mad  # scaled so that it estimates the standard deviation


def _spikes_in(table: pd.DataFrame, prepared: Prepared, group: str | None) -> list[Spike]:
    settings = prepared.settings
    found: list[Spike] = []
    volume = table["volume"].astype(float)
    # empty periods (no data, or dates elsewhere) and partial ones take no part in the volume baseline
    metrics = {"volume": volume.mask(table["partial"] | (volume == 0))}
    if prepared.negative is not None:
        share = table[f"share_{prepared.negative}"].astype(float)
        # quiet periods would make the share baseline noisy: they take no part in it
        metrics["negative_share"] = share.where(volume >= max(settings.min_volume, 1))
    for metric, values in metrics.items():
        centre, spread = _rolling_baseline(values, settings)
        # The spread never falls below sampling noise: √n for counts (Poisson) and the binomial
        # standard error of a share at this period's volume, so a flat series does not alert.
        if metric == "volume":
            floor = np.sqrt(centre.clip(lower=1))
        else:
            p = centre.clip(0.01, 0.99)
            floor = np.sqrt(p * (1 - p) / volume.clip(lower=1))
        spread = np.maximum(spread.fillna(0), floor)
        z = (values - centre) / spread
        hits = (z > settings.k) & (volume >= settings.min_volume) & (centre > 0) & values.notna()
        for i in np.flatnonzero(hits.to_numpy()):
            zi, base, start = float(z.iloc[i]), float(centre.iloc[i]), table["period"].iloc[i]
            found.append(Spike(
                period=start, period_end=_shift_period(start, settings.freq) - pd.Timedelta(days=1),
                metric=metric, value=float(values.iloc[i]), baseline=base, ratio=float(values.iloc[i] / base), z=zi,
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
# Keywords and drill-down
# ----------------------------------------------------------------------------------------
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
    return keywords.log_odds_keywords(target, reference, top=top)


def texts_for(prepared: Prepared, period: pd.Timestamp | str | None = None, group: str | None = None,
              label: str | None = None, term: str | None = None, limit: int = 500) -> pd.DataFrame:
    """The rows behind a point, a spike or a keyword: date, label, confidence, group and text,
    the most confident first (else the earliest). A keyword matches the texts whose terms hold it, by the same
    tokenisation that ranked it (so a keyword never lists 0 texts)."""
    data = prepared.frame
    mask = pd.Series(True, index=data.index)
    if period is not None:
        mask &= data["period"] == pd.Timestamp(period)
    if group is not None and "group" in data:
        mask &= data["group"] == group
    if label is not None:
        mask &= data["label"] == label
    rows = data[mask].sort_values("date", kind="stable")  # the file's order need not be the calendar's
    if term and "text" in rows:
        rows = rows[keywords.holding(rows["text"], term)]
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

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """Everything as JSON; the notes rendered in ``lang``; a period without texts has no
        shares or net sentiment (null), never 0."""
        freq = self.prepared.settings.freq
        labels = [str(label) for label in self.prepared.labels]
        series = []
        for row in self.series.to_dict("records"):
            entry = {"period": row["period"].strftime("%Y-%m-%d"), "volume": int(row["volume"]),
                     "partial": bool(row["partial"])}
            entry.update({label: int(row[label]) for label in labels})
            for extra in [f"share_{label}" for label in labels] + ["net_sentiment", "mean_confidence"]:
                if extra in row:
                    entry[extra] = None if pd.isna(row[extra]) else round(float(row[extra]), 6)
            series.append(entry)
        return {
            "freq": freq, "labels": labels, "positive_label": self.prepared.positive,
            "negative_label": self.prepared.negative, "rows": self.prepared.rows,
            "rows_used": len(self.prepared.frame), "bad_dates": self.prepared.bad_dates,
            "dates": self.prepared.dates.to_dict(), "periods": len(self.series),
            "empty_labels": self.prepared.empty_labels, "groups": self.prepared.groups,
            "notes": [render(note, lang) for note in self.prepared.notes],
            "settings": self.prepared.settings.to_dict(), "min_baseline_periods": MIN_BASELINE,
            "series": series, "spikes": [s.to_dict(freq) for s in self.spikes],
        }


def analyse(frame: pd.DataFrame, columns: Columns, settings: TrendSettings | None = None,
            keywords_for: int = 10, lang: str = "en") -> TrendReport:
    """Prepare, aggregate, detect spikes and find keywords for the newest ``keywords_for`` spikes."""
    prepared = prepare(frame, columns, settings, lang)
    series = aggregate(prepared)
    group_series = aggregate(prepared, by_group=True) if prepared.groups else None
    spikes = detect_spikes(prepared, series, group_series)
    for spike in spikes[:keywords_for]:
        spike.keywords = spike_keywords(prepared, spike)
    return TrendReport(prepared, series, group_series, spikes)


# ----------------------------------------------------------------------------------------
# What a person reads
# ----------------------------------------------------------------------------------------
def format_value(metric: str, value: float | None) -> str:
    """A spike's value or usual: a share as a percentage with one decimal, a volume as a whole count."""
    if value is None or pd.isna(value):
        return "—"
    return f"{round(value):,}" if metric == "volume" else f"{value:.1%}"


def group_name(group: str | None, lang: str = "en") -> str:
    if group is None:
        return t("trends.group_all", lang)
    return t("trends.group_other", lang) if group == OTHER_GROUP else str(group)


def date_summary(report: TrendReport) -> Message:
    """How the dates were read, the first and last date and how many periods they span."""
    reading = report.prepared.dates
    first, last = reading.first, reading.last
    return msg("trends.dates.summary", how=reading.how(), first=f"{first:%Y-%m-%d}" if first is not None else "—",
               last=f"{last:%Y-%m-%d}" if last is not None else "—",
               periods=msg(f"trends.dates.periods_{report.prepared.settings.freq}", n=f"{len(report.series):,}"))


def no_alerts_message(report: TrendReport) -> Message:
    """Why the report has no alerts: too few periods with texts for any baseline (so lowering k
    cannot help), or no period rose far enough above its baseline."""
    table, freq = report.series, report.prepared.settings.freq
    volume = table["volume"].astype(float)
    usable = volume.mask(table["partial"] | (volume == 0))  # the periods a baseline may use, as in _spikes_in
    earlier = usable.shift(1).rolling(report.prepared.settings.window, min_periods=1).count()
    if ((earlier >= MIN_BASELINE) & usable.notna()).any():
        return msg("trends.no_alerts")
    return msg("qa.trends.no_baseline", needed=MIN_BASELINE + 1, earlier=MIN_BASELINE,
               total=f"{len(table):,}", have=f"{int(usable.notna().sum()):,}", unit=msg(f"qa.trends.unit_{freq}"))


def alerts_table(report: TrendReport, lang: str = "en") -> pd.DataFrame:
    """The spikes as people read them (the page and the CSV download), newest first: counts as
    whole numbers, shares as percentages, words in ``lang``."""
    freq = report.prepared.settings.freq
    rows = [{"period": period_label(s.period, freq, lang), "group": group_name(s.group, lang),
             "metric": t(f"trends.metric_{s.metric}", lang), "value": format_value(s.metric, s.value),
             "baseline": format_value(s.metric, s.baseline), "times_usual": f"{s.ratio:.1f}×",
             "severity": t(f"trends.severity_{s.severity}", lang), "volume": s.volume,
             "keywords": ", ".join(k["term"] for k in s.keywords[:5])}
            for s in report.spikes]
    return pd.DataFrame(rows, columns=["period", "group", "metric", "value", "baseline", "times_usual",
                                       "severity", "volume", "keywords"])


def texts_table(rows: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """Rows from ``texts_for`` as people read them: headers in ``lang``, dates to the minute,
    confidence with two decimals, a dash where a value is missing."""
    out = pd.DataFrame(index=rows.index)
    for column in rows.columns:
        values = rows[column]
        if column == "date":
            values = values.dt.strftime("%Y-%m-%d %H:%M")
        elif column == "confidence":
            values = values.map(lambda v: "—" if pd.isna(v) else f"{v:.2f}")
        elif column == "group":
            values = values.map(lambda g: group_name(g, lang))
        out[t(f"trends.text_col.{column}", lang)] = values
    return out
