"""Reading a date column as one decision: the order of day and month, offsets, unreadable values."""

import pandas as pd
import pytest

from core import dates
from core.errors import ConfigError
from core.i18n import render


def read(values, **options) -> dates.DateReading:
    return dates.read_dates(pd.Series(values, dtype="str"), **options)


def days(reading: dates.DateReading) -> list[str]:
    return [None if pd.isna(v) else f"{v:%Y-%m-%d}" for v in reading.values]


@pytest.mark.parametrize("text, expected", [
    ("2026-11-28", "2026-11-28 00:00"),
    ("2026-11-28T09:30:00", "2026-11-28 09:30"),
    ("2026-11-28 09:30:00+08:00", "2026-11-28 09:30"),  # its own local clock, not UTC
    ("2026-11-28T09:30:00Z", "2026-11-28 09:30"),
    ("Sat, 28 Nov 2026 09:30:00 +0800", "2026-11-28 09:30"),
    ("2026/11/28", "2026-11-28 00:00"),
    ("2026/11/28 21:05", "2026-11-28 21:05"),
    ("2026.1.5", "2026-01-05 00:00"),
    ("28.11.2026", "2026-11-28 00:00"),
    ("28.11.2026 14:00", "2026-11-28 14:00"),
    ("11/28/2026", "2026-11-28 00:00"),
    ("28/11/2026", "2026-11-28 00:00"),
    ("28-11-2026 7:05 PM", "2026-11-28 19:05"),
    ("2026年11月28日", "2026-11-28 00:00"),
    ("2026年11月28日 9时30分", "2026-11-28 09:30"),
    ("20261128", "2026-11-28 00:00"),
    ("1795858200", "2026-11-28 09:30"),  # Unix seconds
    ("1795858200000", "2026-11-28 09:30"),  # Unix milliseconds
    ("Nov 28, 2026", "2026-11-28 00:00"),
])
def test_every_date_format(text, expected):
    reading = read([text])
    assert reading.unreadable == 0
    assert reading.values.iloc[0].strftime("%Y-%m-%d %H:%M") == expected


def test_one_order_for_the_whole_day_first_column():
    # 07/10/2026 alone would be July; the column says day first (15/09 has no 15th month)
    reading = read(["01/09/2026", "15/09/2026", "07/10/2026", "12/10/2026 14:30", "9/11/2026"])
    assert (reading.order, reading.source) == ("DMY", "data")
    assert days(reading) == ["2026-09-01", "2026-09-15", "2026-10-07", "2026-10-12", "2026-11-09"]
    assert (reading.day_first_rows, reading.month_first_rows, reading.ambiguous_rows) == (1, 0, 4)
    assert "day/month/year" in str(reading.how()) and "1 rows" in str(reading.how())
    assert "日/月/年" in reading.how().render("zh")


def test_one_order_for_the_whole_month_first_column():
    reading = read(["09/01/2026", "09/15/2026", "10/07/2026", "10/07/2026", "11/09/26"])
    assert (reading.order, reading.source, reading.month_first_rows) == ("MDY", "data", 1)
    assert days(reading) == ["2026-09-01", "2026-09-15", "2026-10-07", "2026-10-07", "2026-11-09"]


def test_an_ambiguous_column_follows_the_language_unless_the_analyst_chooses():
    values = ["01/09/2026", "07/10/2026", "10/07/08"]
    english = read(values, fallback=dates.language_order("en"))
    assert (english.order, english.source) == ("MDY", "language")
    assert days(english) == ["2026-01-09", "2026-07-10", "2008-10-07"]
    chinese = read(values, fallback=dates.language_order("zh"))
    assert chinese.order == "YMD"  # a year written last keeps month before day; a two-digit one first is the year
    assert days(chinese) == ["2026-01-09", "2026-07-10", "2010-07-08"]
    assert "convention" in str(english.how()) and "月/日/年" in english.how().render("zh")
    four_digit_years = read(values[:2], fallback="YMD")  # year first cannot apply: say month first, as read
    assert (four_digit_years.order, days(four_digit_years)) == ("MDY", ["2026-01-09", "2026-07-10"])
    chosen = read(values, order="DMY", fallback="YMD")
    assert (chosen.source, days(chosen)) == ("analyst", ["2026-09-01", "2026-10-07", "2008-07-10"])
    assert read(["05.11.2026", "07.10.2026"]).order == "DMY"  # dotted dates are day first everywhere


def test_an_inconsistent_column_is_said_so_and_counted():
    values = ["13/09/2026", "14/09/2026", "21/09/2026", "28/09/2026", "09/15/2026", "01/09/2026"]
    reading = read(values)
    assert (reading.order, reading.source, reading.inconsistent) == ("DMY", "inconsistent", True)
    assert (reading.day_first_rows, reading.month_first_rows, reading.contradicting_rows) == (4, 1, 1)
    # the contradicting row can only mean 15 September; the ambiguous one follows the majority
    assert days(reading)[4:] == ["2026-09-15", "2026-09-01"] and reading.unreadable == 0
    warning = str(reading.notes("posted")[0])
    assert "'posted' mixes day-first and month-first" in warning and "The 1 rows that contradict" in warning


def test_an_order_the_data_contradicts_leaves_those_rows_unreadable_and_counted():
    reading = read(["15/09/2026", "01/09/2026", "", "soon"], order="MDY")
    assert days(reading) == [None, "2026-01-09", None, None]
    assert reading.unreadable == 2 and reading.unreadable_examples == ["15/09/2026", "soon"]  # empty is not unreadable
    note = str(reading.notes("d")[0])
    assert note.startswith("2 rows have a date in column 'd' that could not be read") and "'15/09/2026'" in note


def test_offsets_keep_their_own_local_time_unless_a_zone_is_chosen():
    values = ["2026-11-29T20:00:00+08:00", "2026-11-30T01:00:00+08:00", "2026-11-30T09:00:00-05:00", "2026-11-30 12:00"]
    local = read(values)
    assert [f"{v:%m-%d %H:%M}" for v in local.values] == ["11-29 20:00", "11-30 01:00", "11-30 09:00", "11-30 12:00"]
    assert local.offset_rows == 3 and set(local.offsets) == {"+08:00", "-05:00"}
    assert "own local time" in str(local.notes("d")[0])
    utc = read(values, timezone="UTC")
    assert [f"{v:%m-%d %H:%M}" for v in utc.values] == ["11-29 12:00", "11-29 17:00", "11-30 14:00", "11-30 12:00"]
    shanghai = read(values, timezone="Asia/Shanghai")
    assert f"{shanghai.values.iloc[2]:%m-%d %H:%M}" == "11-30 22:00"
    assert "Asia/Shanghai" in str(shanghai.notes("d")[0])


def test_a_typed_format_replaces_the_guessing():
    reading = read(["07/10/2026 01:00 +0800", "15/09/2026 23:59", "2026-09-01"], date_format="%d/%m/%Y %H:%M %z")
    assert reading.source == "format" and reading.unreadable == 1
    assert [f"{v:%Y-%m-%d %H:%M}" for v in reading.values[:2]] == ["2026-10-07 01:00", "2026-09-15 23:59"]
    assert "%d/%m/%Y" in str(reading.how())


def test_numeric_and_datetime_columns():
    seconds = dates.read_dates(pd.Series([1795858200, 1795858200000, -5]))
    assert seconds.unreadable == 1 and seconds.values.iloc[0] == seconds.values.iloc[1] == pd.Timestamp("2026-11-28 09:30")
    in_shanghai = dates.read_dates(pd.Series([1795858200]), timezone="Asia/Shanghai")
    assert in_shanghai.values.iloc[0] == pd.Timestamp("2026-11-28 17:30")
    aware = pd.Series(pd.to_datetime(["2026-11-28 09:30"]).tz_localize("Asia/Shanghai"))
    assert dates.read_dates(aware).values.iloc[0] == pd.Timestamp("2026-11-28 09:30")
    assert dates.read_dates(aware, timezone="UTC").values.iloc[0] == pd.Timestamp("2026-11-28 01:30")


def test_mixed_formats_in_one_column_and_unparseable_counted():
    values = pd.Series(["2026-11-28", "2026年11月27日", "26.11.2026", "not a date", None, "1795858200", "32.13.2026"])
    reading = dates.read_dates(values)
    assert reading.unreadable == 2  # "not a date" and "32.13.2026"; the missing cell is not a bad date
    assert list(reading.values.dt.day.iloc[[0, 1, 2, 5]]) == [28, 27, 26, 28]
    assert reading.values.iloc[[3, 4, 6]].isna().all()


@pytest.mark.parametrize("options, key", [
    ({"order": "DYM"}, "trends.err.bad_order"),
    ({"date_format": "dd/mm/yyyy"}, "trends.err.bad_format"),
    ({"timezone": "Mars/Olympus"}, "trends.err.bad_timezone"),
])
def test_bad_options_are_config_errors_in_both_languages(options, key):
    with pytest.raises(ConfigError) as caught:
        read(["2026-11-28"], **options)
    assert caught.value.message.key == key
    assert render(caught.value, "zh") != str(caught.value)
