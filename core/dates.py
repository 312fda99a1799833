"""Reading a date column, decided once for the whole column.

``07/10/2026`` is 7 October in London and 10 July in New York; a column never mixes the two on
purpose, so the order of day and month is decided from all its values together, not value by
value (reading each value alone put 45% of a day-first export in the wrong month):

- any first number above 12 (``15/09/2026``) ⇒ day first; any second number above 12 ⇒ month
  first; both seen ⇒ the column is inconsistent: the majority's order is used, the rows that
  contradict it are counted and read the only way they can be;
- every value ambiguous ⇒ dotted dates (``05.11.2026``) are day first, as they are wherever they
  are written; otherwise the convention of the reader's language (zh: year first, so month
  before day; en: month first);
- an order or a ``strftime`` format chosen by the analyst overrides all of that.

Timestamps with a UTC offset (``2026-11-28T01:00:00+08:00``) keep their own local clock, so a
Beijing post at 01:00 belongs to its Beijing day; a time zone chosen by the analyst (an IANA name
such as ``Asia/Shanghai``) converts them to that clock instead. Values without an offset are
taken as written; Unix timestamps are UTC unless a time zone is chosen.

Each distinct string is parsed once and the string passes are vectorised (Arrow regexes), so a
million rows take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.i18n import Message, msg

ORDERS = ("DMY", "MDY", "YMD")
AUTO = "auto"
LANGUAGE_ORDER = {"zh": "YMD", "en": "MDY"}

# [0-9], [ \t] and \Z, not \d, \s and $: these keep pandas on Arrow's regex engine (RE2) without a
# scan of the data first, ten times faster here
_SEP = r"[-/.]"
_YEAR = r"(?:[0-9]{4}|[0-9]{2})(?:[^0-9]|\Z)"  # 2026 or 26, then the time or the end
_YEAR_LAST = rf"^[0-9]{{1,2}}{_SEP}[0-9]{{1,2}}{_SEP}{_YEAR}"
_DAY_OVER_12 = rf"^(?:1[3-9]|2[0-9]|3[01]){_SEP}(?:0?[1-9]|1[0-2]){_SEP}{_YEAR}"
_MONTH_OVER_12 = rf"^(?:0?[1-9]|1[0-2]){_SEP}(?:1[3-9]|2[0-9]|3[01]){_SEP}{_YEAR}"
_DOTTED = r"^[0-9]{1,2}\.[0-9]{1,2}\."
_YEAR_FIRST = r"^([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})"
_YEAR_FIRST_SHAPE = r"^[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}"
_VALID_ISO_DAY = r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])(?:[^0-9]|\Z)"
# a UTC offset (or Z, UTC, GMT) right after a clock time: 09:30+08:00, 09:30:00.5Z, 09:30:00 +0800
_TIME = r"[0-9]:[0-9][0-9](?::[0-9][0-9](?:[.,][0-9]+)?)?"
_OFFSET_TAIL = r"[ \t]*(?:Z|UTC|GMT|(?:UTC|GMT)?[+-][0-9][0-9]:?[0-9][0-9])\Z"
_CHINESE_DATE = r"([0-9]{2,4})[ \t]*年[ \t]*([0-9]{1,2})[ \t]*月[ \t]*([0-9]{1,2})[ \t]*[日号]?"
_CHINESE_TIME = r"([0-9]{1,2})[ \t]*[时點点][ \t]*([0-9]{1,2})[ \t]*分(?:[ \t]*([0-9]{1,2})[ \t]*秒)?"


def language_order(lang: str) -> str:
    """The order read when every value is ambiguous and nobody chose: the language's convention."""
    return LANGUAGE_ORDER.get(lang, LANGUAGE_ORDER["en"])


@cache
def timezones() -> tuple[str, ...]:
    """UTC and the IANA zones named by region and city that this machine knows, sorted (for a
    picker; the aliases such as "US/Eastern" or "PRC" are left out, typed names still work)."""
    from zoneinfo import available_timezones

    regions = ("Africa/", "America/", "Antarctica/", "Asia/", "Atlantic/", "Australia/", "Europe/", "Indian/",
               "Pacific/")
    return ("UTC", *sorted(z for z in available_timezones() if z.startswith(regions)))


def order_name(order: str) -> Message:
    return msg(f"trends.order.{order}")


@dataclass
class DateReading:
    """The parsed column and everything a person needs to trust it."""

    values: pd.Series  # naive local timestamps; NaT where empty or unreadable
    unreadable: int  # non-empty values that are not a date (in the order used)
    order: str | None  # DMY / MDY / YMD for the d/m/y values; None when no value needed an order
    source: str  # data, inconsistent, dotted, language, analyst, format, none
    day_first_rows: int = 0  # rows whose first number is above 12
    month_first_rows: int = 0  # rows whose second number is above 12
    ambiguous_rows: int = 0  # d/m/y rows with both numbers 12 or less
    offset_rows: int = 0  # rows that carried a UTC offset
    offsets: list[str] = field(default_factory=list)  # the distinct offsets, as written
    timezone: str = ""  # "" = each value's own local time
    date_format: str = ""
    unreadable_examples: list[str] = field(default_factory=list)

    @property
    def inconsistent(self) -> bool:
        return self.source == "inconsistent"

    @property
    def contradicting_rows(self) -> int:
        """Rows that can only be read in the order the majority does not use."""
        if not self.inconsistent:
            return 0
        return self.month_first_rows if self.order == "DMY" else self.day_first_rows

    @property
    def first(self) -> pd.Timestamp | None:
        value = self.values.min()
        return None if pd.isna(value) else value

    @property
    def last(self) -> pd.Timestamp | None:
        value = self.values.max()
        return None if pd.isna(value) else value

    def how(self) -> Message:
        """How the column was read, in one sentence."""
        if self.source == "format":
            return msg("trends.dates.how_format", format=self.date_format)
        if self.source == "none":
            return msg("trends.dates.how_clear")
        order = order_name(self.order or "MDY")
        if self.source == "data":
            rows = self.day_first_rows if self.order == "DMY" else self.month_first_rows
            key = "trends.dates.how_day_over_12" if self.order == "DMY" else "trends.dates.how_month_over_12"
            return msg(key, order=order, n=f"{rows:,}")
        return msg(f"trends.dates.how_{self.source}", order=order)

    def notes(self, column: str) -> list[Message]:
        """Warnings about the reading: an inconsistent column, unreadable values, offsets."""
        notes = []
        if self.inconsistent:
            notes.append(msg("trends.warn.inconsistent", column=column, day=f"{self.day_first_rows:,}",
                             month=f"{self.month_first_rows:,}", order=order_name(self.order or "DMY"),
                             n=f"{self.contradicting_rows:,}"))
        if self.unreadable:
            notes.append(msg("trends.warn.bad_dates", n=f"{self.unreadable:,}", column=column,
                             examples=", ".join(repr(v) for v in self.unreadable_examples)))
        if self.offset_rows:
            key = "trends.warn.offsets_converted" if self.timezone else "trends.warn.offsets_local"
            notes.append(msg(key, n=f"{self.offset_rows:,}", offsets=", ".join(self.offsets[:5]),
                             timezone=self.timezone))
        return notes

    def to_dict(self) -> dict:
        first, last = self.first, self.last
        return {"order": self.order, "decided_by": self.source, "how": str(self.how()),
                "unreadable": self.unreadable, "day_first_rows": self.day_first_rows,
                "month_first_rows": self.month_first_rows, "ambiguous_rows": self.ambiguous_rows,
                "contradicting_rows": self.contradicting_rows, "offset_rows": self.offset_rows,
                "timezone": self.timezone, "format": self.date_format,
                "first": None if first is None else first.isoformat(),
                "last": None if last is None else last.isoformat()}


# ----------------------------------------------------------------------------------------
# The decision
# ----------------------------------------------------------------------------------------
def check_options(order: str, date_format: str, timezone: str) -> None:
    if order not in (AUTO, *ORDERS):
        raise ConfigError("trends.err.bad_order", order=order, choices=", ".join((AUTO, *ORDERS)))
    if date_format and "%" not in date_format:
        raise ConfigError("trends.err.bad_format", format=date_format)
    if timezone:
        _zone(timezone)


def _zone(name: str):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("trends.err.bad_timezone", timezone=name) from None


def _decide(text: pd.Series, weight: np.ndarray, order: str, fallback: str) -> tuple[dict, pd.Series]:
    """The order for the column's d/m/y values and the evidence for it, counted in rows; and
    which values are d/m/y (year last, or two-digit years)."""
    year_last = _match(text, _YEAR_LAST)
    shaped, rows = text[year_last], weight[year_last.to_numpy()]
    day = int(rows[_match(shaped, _DAY_OVER_12).to_numpy()].sum())
    month = int(rows[_match(shaped, _MONTH_OVER_12).to_numpy()].sum())
    evidence = {"day_first_rows": day, "month_first_rows": month, "ambiguous_rows": max(int(rows.sum()) - day - month, 0)}
    if order != AUTO:
        decision = {"order": order, "source": "analyst"}
    elif not year_last.any():
        decision = {"order": None, "source": "none"}
    elif day and month:
        majority = "DMY" if day > month else "MDY" if month > day else _year_last(fallback)
        decision = {"order": majority, "source": "inconsistent"}
    elif day or month:
        decision = {"order": "DMY" if day else "MDY", "source": "data"}
    elif _match(shaped, _DOTTED).all():
        decision = {"order": "DMY", "source": "dotted"}
    else:  # year first can only apply to two-digit years; with four-digit ones last, say what is done
        two_digit = not _match(shaped, rf"^[0-9]{{1,2}}{_SEP}[0-9]{{1,2}}{_SEP}[0-9]{{4}}").all()
        decision = {"order": fallback if two_digit else _year_last(fallback), "source": "language"}
    return {**decision, **evidence}, year_last


def _year_last(order: str) -> str:
    """Where the year is written last, year-first means month before day."""
    return "MDY" if order == "YMD" else order


def _match(text: pd.Series, pattern: str) -> pd.Series:
    return text.str.contains(pattern, regex=True).fillna(False).astype(bool)


# ----------------------------------------------------------------------------------------
# Parsing distinct strings
# ----------------------------------------------------------------------------------------
def _iso(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text, format="ISO8601", errors="coerce").astype("datetime64[ns]")


def _mixed(text: pd.Series, dayfirst: bool = False) -> pd.Series:
    """Whatever dateutil reads ("Nov 28, 2026", "2026-10-07 2:30 PM"), value by value: slow, so only for leftovers."""
    parsed = pd.to_datetime(text, format="mixed", errors="coerce", dayfirst=dayfirst, utc=True)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _pad_iso(text: pd.Series) -> pd.Series:
    """2026-1-7 → 2026-01-07 (the ISO parser wants two digits)."""
    short = ~_match(text, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")
    if not short.any():
        return text
    padded = text[short].str.replace(r"^([0-9]{4})-([0-9])-", r"\1-0\2-", regex=True)
    padded = padded.str.replace(r"^([0-9]{4})-([0-9][0-9])-([0-9])([^0-9]|\Z)", r"\1-\2-0\3\4", regex=True)
    return text.where(~short, padded)


def _year_last_to_iso(text: pd.Series, order: str) -> pd.Series:
    """07/10/2026 14:30 → 2026-10-07 14:30 (DMY) or 2026-07-10 14:30 (MDY); 26/07/10 → 2026-07-10 (YMD).
    Each rewrite runs only where its shape occurs: every pass costs ~0.1 s per million values."""
    a, b, rest = r"^([0-9]{1,2})" + _SEP, r"([0-9]{1,2})" + _SEP, r"([^0-9].*)?\Z"
    day, month = (r"\1", r"\2") if order == "DMY" else (r"\2", r"\1")
    four = _match(text, rf"^[0-9]{{1,2}}{_SEP}[0-9]{{1,2}}{_SEP}[0-9]{{4}}(?:[^0-9]|\Z)")
    out = text.where(~four, text[four].str.replace(a + b + r"([0-9]{4})" + rest, rf"\3-{month}-{day}\4", regex=True))
    if not four.all():  # two-digit years: 00-69 are 20xx, 70-99 19xx; first when the order is year first
        two = text[~four]
        if order == "YMD":
            two = two.str.replace(r"^([0-6][0-9])" + _SEP + b + r"([0-9]{1,2})" + rest, r"20\1-\2-\3\4", regex=True)
            two = two.str.replace(r"^([7-9][0-9])" + _SEP + b + r"([0-9]{1,2})" + rest, r"19\1-\2-\3\4", regex=True)
        else:
            two = two.str.replace(a + b + r"([0-6][0-9])" + rest, rf"20\3-{month}-{day}\4", regex=True)
            two = two.str.replace(a + b + r"([7-9][0-9])" + rest, rf"19\3-{month}-{day}\4", regex=True)
        out = out.where(four, two)
    return _pad_iso(out)


def _read_year_last(text: pd.Series, order: str) -> pd.Series:
    rewritten = _year_last_to_iso(text, order)
    valid = _match(rewritten, _VALID_ISO_DAY)  # 25/25/2026 must not reach dateutil, which would guess
    parsed = _iso(rewritten.where(valid))
    leftover = valid & parsed.isna()  # a clock dateutil reads: "2:30 PM"
    if leftover.any():
        parsed[leftover] = _mixed(rewritten[leftover])
    return parsed


def _from_unix(numbers: pd.Series) -> pd.Series:
    """Unix seconds, or milliseconds when the number is too large to be seconds (after 5138)."""
    millis = numbers.abs() >= 1e11
    seconds = numbers.where(~millis, numbers / 1000)
    out = pd.to_datetime(seconds, unit="s", errors="coerce").astype("datetime64[ns]")
    return out.where((seconds > 0) & (seconds < 4.1e9))


def _parse_strings(text: pd.Series, order: str | None, year_last: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Each distinct wall-clock string as a timestamp (``order`` applied to the d/m/y values in
    ``year_last``), and which values are Unix timestamps (those are UTC). Each format is tried
    only on what the earlier ones left."""
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    unix = pd.Series(False, index=text.index)
    decided = year_last & (order is not None)
    if decided.any():
        result[decided] = _read_year_last(text[decided], order or "MDY")
    todo = ~decided & (text != "")
    if todo.any():  # ISO 8601: 2026-11-28, 2026-11-28T09:30:00
        iso = todo & _match(text, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")
        result[iso] = _iso(text[iso])
    todo &= result.isna()
    if todo.any():  # 2026/11/28, 2026.1.5, 2026-1-5
        first = todo & _match(text, _YEAR_FIRST_SHAPE)
        result[first] = _iso(_pad_iso(text[first].str.replace(_YEAR_FIRST, r"\1-\2-\3", regex=True)))
    todo &= result.isna()
    if todo.any():  # 9-10 digits: Unix seconds; 12-13: milliseconds; 8 digits: 20261128
        digits = todo & _match(text, r"^[0-9]+(?:\.[0-9]+)?\Z")
        eight = digits & (text.str.len() == 8)
        result[eight] = pd.to_datetime(text[eight], format="%Y%m%d", errors="coerce")
        unix = digits & ~eight
        result[unix] = _from_unix(pd.to_numeric(text[unix], errors="coerce"))
    todo &= result.isna()
    if todo.any():  # 2026年11月28日 [9时30分]
        chinese = todo & text.str.contains("年", regex=False)
        rewritten = (text[chinese].str.replace(_CHINESE_DATE, r"\1-\2-\3 ", regex=True)
                     .str.replace(_CHINESE_TIME, lambda m: f"{m[1]}:{m[2]}:{m[3] or 0}", regex=True)
                     .str.replace("上午", "").str.replace("下午", "PM ").str.strip())
        result[chinese] = _mixed(rewritten)
    todo &= result.isna()
    if todo.any():  # anything else dateutil reads: "Nov 28, 2026", RFC 2822, value by value
        result[todo] = _mixed(text[todo], dayfirst=order == "DMY")
    return result, unix


def _offset_minutes(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The UTC offset in minutes of values that carry one (NaN elsewhere) and the offsets as written."""
    has = _match(text, _TIME + _OFFSET_TAIL)
    minutes = pd.Series(np.nan, index=text.index)
    if not has.any():
        return minutes, pd.Series([], dtype="str")
    tails = text[has].str.replace(r"^.*?" + _TIME + r"[ \t]*((?:UTC|GMT)?(?:[+-][0-9]{2}:?[0-9]{2})?|Z|UTC|GMT)\Z",
                                  r"\1", regex=True)
    distinct = tails.unique()
    values = {}
    for tail in distinct:
        sign_at = max(str(tail).find("+"), str(tail).find("-"))
        if sign_at < 0:
            values[tail] = 0.0
            continue
        digits = str(tail)[sign_at + 1:].replace(":", "")
        sign = -1 if str(tail)[sign_at] == "-" else 1
        values[tail] = sign * (int(digits[:2]) * 60 + int(digits[2:4]))
    minutes[has] = tails.map(values).astype(float)
    return minutes, pd.Series(distinct, dtype="str")


# ----------------------------------------------------------------------------------------
# The whole column
# ----------------------------------------------------------------------------------------
def read_dates(values: pd.Series, order: str = AUTO, date_format: str = "", timezone: str = "",
               fallback: str = "MDY") -> DateReading:
    """Parse a date column as one decision (see the module's story).

    ``order``: "auto" or DMY/MDY/YMD; ``date_format``: a ``strftime`` format that replaces all
    guessing; ``timezone``: an IANA name to put every zoned value on one clock ("" keeps each
    value's own local time); ``fallback``: the order when every value is ambiguous, usually
    ``language_order(lang)``."""
    check_options(order, date_format, timezone)
    if pd.api.types.is_datetime64_any_dtype(values):
        return _read_datetimes(values, timezone)
    if pd.api.types.is_numeric_dtype(values):
        parsed = _from_unix(values.astype("float64"))
        if timezone:
            parsed = _to_zone(parsed, pd.Series(0.0, index=parsed.index), timezone)
        bad = parsed.isna() & values.notna()
        return DateReading(parsed, int(bad.sum()), None, "none", timezone=timezone,
                           unreadable_examples=[str(v) for v in values[bad].unique()[:3]])

    text = values.astype("str").where(values.notna(), "").str.strip()
    codes, uniques = pd.factorize(text)
    weight = np.bincount(codes[codes >= 0], minlength=len(uniques))
    distinct = pd.Series(uniques, dtype="str")
    minutes, offsets = _offset_minutes(distinct)
    wall = distinct
    if minutes.notna().any():
        wall = distinct.where(minutes.isna(), distinct[minutes.notna()].str.replace(_OFFSET_TAIL, "", regex=True))
    if date_format:
        plain = date_format.replace("%z", "").replace("%Z", "").strip()
        try:
            parsed = pd.to_datetime(wall, format=plain, errors="coerce").astype("datetime64[ns]")
        except ValueError as exc:
            raise ConfigError("trends.err.bad_format", format=date_format) from exc
        decision = {"order": None, "source": "format"}
        unix = pd.Series(False, index=distinct.index)
    else:
        decision, year_last = _decide(wall, weight, order, fallback)
        parsed, unix = _parse_strings(wall, decision["order"], year_last)
        if decision["source"] == "inconsistent":  # the minority can only mean one date each: read it so
            minority, pattern = ("MDY", _MONTH_OVER_12) if decision["order"] == "DMY" else ("DMY", _DAY_OVER_12)
            other = _match(wall, pattern)
            parsed[other] = _read_year_last(wall[other], minority)
    if timezone:
        parsed = _to_zone(parsed, minutes.where(~unix, 0.0), timezone)
    bad = (parsed.isna() & (distinct != "")).to_numpy()
    return DateReading(
        pd.Series(parsed.to_numpy()[codes], index=values.index, dtype="datetime64[ns]"),
        int(weight[bad].sum()), timezone=timezone, date_format=date_format,
        offset_rows=int(weight[minutes.notna().to_numpy()].sum()), offsets=offsets.tolist(),
        unreadable_examples=distinct[bad].head(3).tolist(), **decision)


def _read_datetimes(values: pd.Series, timezone: str) -> DateReading:
    """A column that is already timestamps (Parquet): its own zone's clock, or the chosen one."""
    zone = getattr(values.dt, "tz", None)
    if zone is not None:
        values = values.dt.tz_convert(timezone) if timezone else values
        values = values.dt.tz_localize(None)
    return DateReading(values.astype("datetime64[ns]"), 0, None, "none", timezone=timezone)


def _to_zone(wall: pd.Series, offset_minutes: pd.Series, timezone: str) -> pd.Series:
    """Values with a known UTC offset moved to ``timezone``'s clock; the others as they are."""
    known = offset_minutes.notna() & wall.notna()
    if not known.any():
        return wall
    utc = wall[known] - pd.to_timedelta(offset_minutes[known], unit="m")
    out = wall.copy()
    out[known] = utc.dt.tz_localize("UTC").dt.tz_convert(_zone(timezone)).dt.tz_localize(None)
    return out
