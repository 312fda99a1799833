import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import keywords, trends
from core.cli import main
from core.errors import ConfigError, DataError
from core.trends import Columns, TrendSettings

COLS = Columns(date="date", label="label", text="text", confidence="confidence")


def frame_of(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["date", "label", "text", "confidence"])


def daily_frame(days: int = 120, per_day: int = 50, negative_share: float = 0.3, seed: int = 0,
                surge: dict | None = None, start: str = "2026-01-05", group: str | None = None) -> pd.DataFrame:
    """``per_day`` texts a day; ``surge`` = {day: (extra negative texts, their text)}."""
    rng = np.random.default_rng(seed)
    positive_words = ["great screen", "lovely battery", "fast delivery", "works well", "good value"]
    negative_words = ["slow shipping", "rude staff", "weak battery", "wrong size", "poor packaging"]
    rows = []
    for day in range(days):
        date = pd.Timestamp(start) + pd.Timedelta(days=day)
        for i in range(per_day):
            neg = rng.random() < negative_share
            words = negative_words if neg else positive_words
            rows.append((f"{date:%Y-%m-%d} 10:{i % 60:02d}", "negative" if neg else "positive",
                         f"The {words[rng.integers(len(words))]} again, order {rng.integers(10_000)}", 0.9))
        for _ in range((surge or {}).get(day, (0, ""))[0]):
            rows.append((f"{date:%Y-%m-%d} 12:00", "negative", f"{surge[day][1]} order {rng.integers(10_000)}", 0.8))
    frame = frame_of(rows)
    if group:
        frame["group"] = group
    return frame


# Dates: one order per column, seen in the periods ---------------------------------------
def weekly(values, **options) -> tuple[list[str], list[int]]:
    """Week starts and volumes of a column of dates (hand-computed in each test)."""
    frame = frame_of([(v, "positive", "fine", 0.9) for v in values])
    lang = options.pop("lang", "en")
    table = trends.aggregate(trends.prepare(frame, COLS, TrendSettings(freq="W", **options), lang))
    return list(table["period"].dt.strftime("%m-%d")), list(table["volume"])


def test_a_day_first_column_spans_its_real_eleven_weeks():
    # Tue 1 Sep, Thu 3 Sep, Tue 15 Sep, Wed 7 Oct, Mon 12 Oct, Mon 9 Nov: weeks of 31 Aug .. 9 Nov
    values = ["01/09/2026", "03/09/2026", "15/09/2026", "07/10/2026", "12/10/2026", "09/11/2026"]
    periods, volumes = weekly(values)
    assert periods == ["08-31", "09-07", "09-14", "09-21", "09-28", "10-05", "10-12", "10-19", "10-26", "11-02", "11-09"]
    assert volumes == [2, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1]


def test_a_month_first_column_gives_the_same_weeks():
    values = ["09/01/2026", "09/03/2026", "09/15/2026", "10/07/2026", "10/12/2026", "11/09/2026"]
    assert weekly(values) == weekly(["01/09/2026", "03/09/2026", "15/09/2026", "07/10/2026", "12/10/2026", "09/11/2026"])


def test_an_ambiguous_column_follows_the_language_and_the_analyst_can_override():
    values = ["01/09/2026", "03/09/2026", "07/10/2026", "12/10/2026", "09/11/2026"]
    frame = frame_of([(v, "positive", "fine", 0.9) for v in values])
    monthly = trends.aggregate(trends.prepare(frame, COLS, TrendSettings(freq="M")))  # en: month first
    assert len(monthly) == 12 and list(monthly["volume"]) == [1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 1]
    chosen = trends.prepare(frame, COLS, TrendSettings(freq="M", date_order="DMY"))
    assert list(trends.aggregate(chosen)["volume"]) == [2, 2, 1]  # September, October, November
    assert chosen.dates.source == "analyst"
    periods, volumes = weekly(values, date_order="DMY")
    assert (len(periods), sum(volumes)) == (11, 5)


def test_an_inconsistent_column_counts_its_contradicting_rows():
    # Sun 13 Sep, Mon 14, Mon 21, Mon 28 (day first); 09/15 only month first; 01/09 ambiguous: 1 Sep
    values = ["13/09/2026", "14/09/2026", "21/09/2026", "28/09/2026", "09/15/2026", "01/09/2026"]
    periods, volumes = weekly(values)
    assert periods == ["08-31", "09-07", "09-14", "09-21", "09-28"] and volumes == [1, 1, 2, 1, 1]
    prepared = trends.prepare(frame_of([(v, "positive", "fine", 0.9) for v in values]), COLS)
    assert prepared.dates.inconsistent and prepared.dates.contradicting_rows == 1
    assert any("mixes day-first and month-first" in str(n) for n in prepared.notes)


def test_dates_with_offsets_are_grouped_by_their_own_local_time():
    # Sun 29 Nov 20:00 and Mon 30 Nov 01:00 in Beijing; Mon 30 Nov 09:00 in New York (14:00 UTC)
    values = ["2026-11-29T20:00:00+08:00", "2026-11-30T01:00:00+08:00", "2026-11-30T09:00:00-05:00"]
    assert weekly(values) == (["11-23", "11-30"], [1, 2])
    assert weekly(values, timezone="UTC") == (["11-23", "11-30"], [2, 1])  # 01:00 Beijing is Sunday in UTC
    assert weekly(values, timezone="America/New_York") == (["11-23", "11-30"], [2, 1])


def test_period_start_day_week_month():
    dates = pd.Series(pd.to_datetime(["2026-11-28 23:59", "2026-11-23 00:00", "2026-12-01 00:00"]))  # Sat, Mon, Tue
    assert list(trends.period_start(dates, "D").dt.strftime("%m-%d")) == ["11-28", "11-23", "12-01"]
    assert list(trends.period_start(dates, "W").dt.strftime("%m-%d")) == ["11-23", "11-23", "11-30"]
    assert list(trends.period_start(dates, "M").dt.strftime("%m-%d")) == ["11-01", "11-01", "12-01"]


# Aggregation ------------------------------------------------------------------------------
def test_weekly_aggregation_matches_a_hand_computed_table():
    frame = frame_of([
        ("2026-11-02", "positive", "a", 0.9),  # week of Mon 2026-11-02
        ("2026-11-03", "negative", "b", 0.7),
        ("2026-11-08", "negative", "c", 0.5),  # Sunday: still that week
        ("2026-11-09", "positive", "d", 1.0),  # next week
        # the week of 2026-11-16 has no texts at all
        ("2026-11-23", "neutral", "e", 0.6),
        ("2026-11-24", "positive", "f", 0.8),
    ])
    prepared = trends.prepare(frame, COLS, TrendSettings(freq="W"))
    table = trends.aggregate(prepared)
    assert list(table["period"].dt.strftime("%Y-%m-%d")) == ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]
    assert list(table["volume"]) == [3, 1, 0, 2]
    assert list(table["negative"]) == [2, 0, 0, 0]
    assert list(table["positive"]) == [1, 1, 0, 1]
    assert list(table["neutral"]) == [0, 0, 0, 1]
    assert table["share_negative"].round(4).tolist()[:2] == [0.6667, 0.0] and table["share_negative"].iloc[3] == 0.0
    assert np.isnan(table["share_negative"].iloc[2])  # no texts: a gap, not 0%
    assert table["net_sentiment"].round(4).tolist()[:2] == [-0.3333, 1.0]
    assert np.isnan(table["net_sentiment"].iloc[2])  # no texts: no sentiment, not zero
    assert table["net_sentiment"].iloc[3] == pytest.approx(0.5)
    assert table["mean_confidence"].round(4).tolist()[:2] == [0.7, 1.0]
    assert list(table["partial"]) == [False, False, False, True]  # data ends on a Tuesday


def test_daily_and_monthly_aggregation_and_groups():
    frame = frame_of([("2026-01-31", "positive", "a", 1), ("2026-02-01", "negative", "b", 1),
                      ("2026-02-01", "negative", "c", 1), ("2026-03-15", "positive", "d", 1)])
    frame["shop"] = ["north", "south", "north", "north"]
    cols = Columns(date="date", label="label", group="shop")
    monthly = trends.aggregate(trends.prepare(frame, cols, TrendSettings(freq="M")))
    assert list(monthly["volume"]) == [1, 2, 1] and list(monthly["negative"]) == [0, 2, 0]
    daily = trends.aggregate(trends.prepare(frame, cols, TrendSettings(freq="D")))
    assert len(daily) == 44 and daily["volume"].sum() == 4  # every day from 31 Jan to 15 Mar
    by_group = trends.aggregate(trends.prepare(frame, cols, TrendSettings(freq="M")), by_group=True)
    feb = by_group[by_group["period"] == "2026-02-01"].set_index("group")
    assert feb.loc["north", "negative"] == 1 and feb.loc["south", "negative"] == 1
    assert len(by_group) == 3 * 2  # every month for every group, zeros included


# Spikes and keywords -----------------------------------------------------------------------
def test_planted_spike_is_found_with_its_keywords_first():
    frame = daily_frame(surge={100: (60, "The screen cracked after one day"),
                               101: (50, "Screen cracked, asking for a refund")})
    report = trends.analyse(frame, COLS, TrendSettings(freq="D", window=14))
    share_spikes = [s for s in report.spikes if s.metric == "negative_share"]
    assert {s.period.strftime("%m-%d") for s in share_spikes} == {"04-15", "04-16"}
    top = share_spikes[-1]  # the first day of the surge
    assert top.value > 0.6 and top.baseline == pytest.approx(0.3, abs=0.08)
    assert top.severity in ("medium", "high") and top.ratio > 2
    terms = [k["term"] for k in top.keywords]
    # the planted phrases first (tied: they always occur together), their single words folded in
    assert "screen cracked" in terms[:3] and "screen" not in terms and "cracked" not in terms
    assert set(terms[:3]) <= {"screen cracked", "cracked day", "day order"}
    texts = trends.texts_for(report.prepared, period=top.period, term="cracked")
    assert len(texts) == 60 and texts["text"].str.contains("cracked").all()


def test_a_flat_series_raises_no_alert():
    exact = frame_of([(f"2026-01-{d:02d}", "negative" if i < 15 else "positive", "same words", 0.9)
                      for d in range(1, 32) for i in range(50)])
    for k in (0.5, 3.5):
        assert trends.analyse(exact, COLS, TrendSettings(freq="D", window=7, k=k)).spikes == []
    # with sampling noise: no alert at the default weekly view, and at most one in 4,000 daily tests
    noisy = [daily_frame(days=200, seed=seed) for seed in range(10)]
    assert all(trends.analyse(frame, COLS).spikes == [] for frame in noisy)
    daily = sum(len(trends.analyse(frame, COLS, TrendSettings(freq="D", window=14)).spikes) for frame in noisy)
    assert daily <= 1


def test_minimum_volume_suppresses_alerts_on_tiny_days():
    frame = daily_frame(days=60, per_day=4, negative_share=0.25, seed=3)
    frame.loc[len(frame)] = ("2026-03-05 11:00", "negative", "awful", 0.9)  # day 59: 5 texts
    frame.loc[frame["date"].str.startswith("2026-03-05"), "label"] = "negative"  # 100% negative
    quiet = trends.analyse(frame, COLS, TrendSettings(freq="D", window=14, min_volume=30))
    assert quiet.spikes == []
    loud = trends.analyse(frame, COLS, TrendSettings(freq="D", window=14, min_volume=0))
    assert any(s.metric == "negative_share" and s.period == pd.Timestamp("2026-03-05") for s in loud.spikes)


def test_volume_spike_and_std_method():
    frame = daily_frame(days=60, surge={50: (200, "Great launch party")})
    frame.loc[frame["text"].str.startswith("Great launch"), "label"] = "positive"
    for method in ("mad", "std"):
        report = trends.analyse(frame, COLS, TrendSettings(freq="D", window=14, method=method))
        volume = [s for s in report.spikes if s.metric == "volume"]
        assert [s.period.strftime("%m-%d") for s in volume] == ["02-24"]
        assert volume[0].value == 250 and volume[0].ratio == pytest.approx(5, rel=0.1)
        assert not [s for s in report.spikes if s.metric == "negative_share"]


def test_group_spikes_name_their_group():
    calm = daily_frame(days=60, seed=4, group="north")
    hot = daily_frame(days=60, seed=5, group="south", surge={55: (40, "Rude staff at the till")})
    report = trends.analyse(pd.concat([calm, hot], ignore_index=True),
                            Columns(date="date", label="label", text="text", group="group"),
                            TrendSettings(freq="D", window=14))
    grouped = [s for s in report.spikes if s.group is not None]
    assert grouped and {s.group for s in grouped} == {"south"}
    assert "staff till" in [k["term"] for k in grouped[0].keywords][:3]  # "rude staff" is common there anyway


def test_chinese_keywords_are_words_not_characters():
    rng = np.random.default_rng(0)
    base = ["物流太慢了，等了一周", "客服态度很差", "包装破损严重", "价格有点贵"]
    rows = []
    for day in range(40):
        date = pd.Timestamp("2026-06-01") + pd.Timedelta(days=day)
        for i in range(40):
            rows.append((f"{date:%Y年%m月%d日}", "负面", base[rng.integers(len(base))] + f"，订单{i}", 0.9))
            rows.append((f"{date:%Y年%m月%d日}", "正面", "质量很好，非常满意", 0.9))
        if day == 35:
            rows += [(f"{date:%Y年%m月%d日}", "负面", "电池续航太短，充电发烫", 0.9)] * 60
    report = trends.analyse(frame_of(rows), COLS, TrendSettings(freq="D", window=14))
    assert report.prepared.negative == "负面" and report.prepared.positive == "正面"
    spike = next(s for s in report.spikes if s.metric == "negative_share")
    terms = [k["term"] for k in spike.keywords]
    words = {word for term in terms for word in term.split(" ")}
    assert all(len(word) >= 2 for word in words)
    assert {"电池", "续航", "充电", "发烫"} <= {w for term in terms[:4] for w in term.split(" ")}, terms
    assert not {"电", "池", "的", "了"} & words
    texts = trends.texts_for(report.prepared, period=spike.period, term=terms[0])
    assert len(texts) == 60 and all(texts["text"].str.contains(w).all() for w in terms[0].split(" "))


# Bad input -------------------------------------------------------------------------------
def test_no_date_column_and_missing_columns():
    frame = pd.DataFrame({"text": ["a"], "label": ["positive"]})
    with pytest.raises(DataError, match="No date column"):
        trends.prepare(frame, Columns(date="", label="label"))
    with pytest.raises(DataError, match="'when' is not in the file.*text, label"):
        trends.prepare(frame, Columns(date="when", label="label"))


def test_all_dates_unparseable():
    frame = frame_of([("soon", "positive", "a", 1.0), ("later", "negative", "b", 1.0)])
    with pytest.raises(DataError, match=r"None of the 2 dates in column 'date'.*2026-11-28"):
        trends.prepare(frame, COLS)


def test_unparseable_dates_are_reported_not_silently_dropped():
    frame = daily_frame(days=20)
    frame.loc[:9, "date"] = "yesterday"
    frame.loc[10:12, "date"] = None
    report = trends.analyse(frame, COLS, TrendSettings(freq="D"))
    assert report.prepared.bad_dates == 10 and report.to_dict()["bad_dates"] == 10
    assert report.series["volume"].sum() == len(frame) - 13
    assert any(str(n) == "3 rows have no date in column 'date' and are left out." for n in report.prepared.notes)
    assert any("10 rows have a date in column 'date' that could not be read" in str(n) for n in report.prepared.notes)
    assert any("10 行" in n.render("zh") for n in report.prepared.notes)


def test_a_single_day_of_data():
    frame = frame_of([("2026-11-28 10:00", "positive", "a", 1.0), ("2026-11-28 11:00", "negative", "b", 1.0)])
    report = trends.analyse(frame, COLS, TrendSettings(freq="D"))
    assert len(report.series) == 1 and report.spikes == []
    assert any("one period" in str(n) for n in report.prepared.notes)


def test_labels_that_are_not_sentiment():
    frame = daily_frame(days=30)
    frame["label"] = frame["label"].map({"negative": "billing", "positive": "delivery"})
    report = trends.analyse(frame, COLS, TrendSettings(freq="W"))
    assert report.prepared.negative is None and "net_sentiment" not in report.series
    assert {"share_billing", "share_delivery"} <= set(report.series.columns)
    assert all(s.metric == "volume" for s in report.spikes)
    assert any("No label reads as negative" in str(n) for n in report.prepared.notes)
    chosen = trends.prepare(frame, COLS, TrendSettings(negative_label="billing"))
    assert chosen.negative == "billing"
    with pytest.raises(ConfigError, match="'refunds' does not occur"):
        trends.prepare(frame, COLS, TrendSettings(negative_label="refunds"))


def test_one_group_and_ten_thousand_groups():
    frame = daily_frame(days=10, per_day=2000)
    one = trends.analyse(frame.assign(shop="only"), Columns(date="date", label="label", group="shop"))
    assert one.prepared.groups == ["only"] and set(one.group_series["group"]) == {"only"}
    frame["shop"] = [f"shop {i % 10_000}" for i in range(len(frame))]
    many = trends.prepare(frame, Columns(date="date", label="label", group="shop"), TrendSettings(top_groups=5))
    assert len(many.groups) == 6 and many.groups[-1] == trends.OTHER_GROUP
    assert (many.frame["group"] == trends.OTHER_GROUP).sum() == len(frame) - 5 * 2
    assert any("10,000 groups" in str(n) for n in many.notes)


def test_settings_are_validated():
    for bad in (TrendSettings(freq="Q"), TrendSettings(window=3), TrendSettings(k=0), TrendSettings(method="iqr"),
                TrendSettings(date_order="YDM"), TrendSettings(timezone="Nowhere/City")):
        with pytest.raises(ConfigError):
            bad.validate()


def test_binary_digit_labels_count_as_sentiment_only_alone():
    assert trends.polarity(["0", "1"]) == ("1", "0")
    assert trends.polarity(["0", "1", "2"]) == (None, None)
    assert trends.polarity(["Negative", "Positive", "Neutral"]) == ("Positive", "Negative")


# Demo, figures, CLI ----------------------------------------------------------------------
def test_demo_timeline_has_its_planted_alert():
    frame = trends.demo_timeline()
    columns = Columns(**trends.suggest_columns(frame))
    assert columns.date == "date" and columns.text == "text"
    report = trends.analyse(frame, columns)
    alert = next(s for s in report.spikes if s.metric == "negative_share" and s.group is None)
    assert alert.keywords[0]["term"] == trends.DEMO_COMPLAINT
    assert alert.period > pd.Timestamp("2026-09-01")


def test_trend_figures():
    from core import figures

    report = trends.analyse(trends.demo_timeline(), Columns(date="date", label="label", text="text", group="source"))
    share = figures.sentiment_share_figure(report.series, report.prepared.labels, "en", "positive", "negative")
    assert [tr.name for tr in share.data] == ["negative", "positive"]
    assert [tr.marker.color for tr in share.data] == ["#d62728", "#2ca02c"]
    net = figures.net_sentiment_figure(report.series, report.spikes)
    assert len(net.data) == 2 and len(net.data[1].x) >= 1  # the line and the spike markers
    assert figures.volume_figure(report.series, report.spikes).data[0].y.sum() == 6000
    heat = figures.group_heatmap_figure(report.group_series, "net_sentiment")
    assert list(heat.data[0].y) == ["imdb", "rotten_tomatoes"]
    words = figures.keywords_figure(report.spikes[0].keywords)
    assert words.data[0].y[-1] == report.spikes[0].keywords[0]["term"]  # strongest on top
    no_net = report.series.drop(columns=["net_sentiment"])
    assert figures.net_sentiment_figure(no_net, [], "negative").data[0].name == "Negative share"


def test_cli_trends_json_keys(tmp_path, capsys):
    path = tmp_path / "scored.csv"
    daily_frame(days=60, surge={55: (80, "Package arrived crushed")}).to_csv(path, index=False)
    series_csv, alerts_csv = tmp_path / "series.csv", tmp_path / "alerts.csv"
    assert main(["trends", str(path), "--date-col", "date", "--freq", "D", "--window", "14", "--json",
                 "--series-csv", str(series_csv), "--alerts-csv", str(alerts_csv)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["series"]) == 60
    first = out["series"][0]
    assert {"period", "volume", "negative", "positive"} <= set(first) and first["volume"] == 50
    spike = next(s for s in out["spikes"] if s["metric"] == "negative_share")
    assert {"period", "metric", "value", "baseline", "keywords"} <= set(spike)
    assert spike["period"] == "2026-03-01" and spike["keywords"][0]["term"] in ("arrived crushed", "package arrived")
    assert pd.read_csv(series_csv, encoding="utf-8-sig")["volume"].sum() == len(pd.read_csv(path))
    alerts = pd.read_csv(alerts_csv, encoding="utf-8-sig", dtype=str)
    assert "negative share" in set(alerts["metric"]) and alerts["times_usual"].str.endswith("×").all()
    assert out["dates"]["decided_by"] == "none" and out["periods"] == 60 and out["min_baseline_periods"] == 4


def test_cli_trends_reads_day_first_dates_and_says_how(tmp_path, capsys):
    path = tmp_path / "posts.csv"
    pd.DataFrame({"posted": ["01/09/2026", "03/09/2026", "07/10/2026", "09/11/2026"], "label": "positive",
                  "text": "a fine and long enough review"}).to_csv(path, index=False)
    assert main(["trends", str(path), "--json"]) == 0  # every date ambiguous: English reads month first
    auto = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (auto["dates"]["order"], auto["dates"]["decided_by"], auto["periods"]) == ("MDY", "language", 36)  # 9 Jan .. 11 Sep
    assert main(["trends", str(path), "--dayfirst"]) == 0
    text = capsys.readouterr().out
    assert "Dates read as day/month/year (your choice) · first 2026-09-01 · last 2026-11-09 · 11 weeks" in text
    assert main(["trends", str(path), "--date-format", "%d/%m/%Y", "--json"]) == 0
    typed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (typed["dates"]["first"], typed["periods"]) == ("2026-09-01T00:00:00", 11)
    assert main(["trends", str(path), "--timezone", "Moon/Base"]) == 2
    assert "not a time zone" in capsys.readouterr().err


def test_cli_trends_user_errors(tmp_path, capsys):
    path = tmp_path / "nodates.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["positive", "negative"]}).to_csv(path, index=False)
    assert main(["trends", str(path)]) == 2
    assert "No date column" in capsys.readouterr().err
    assert main(["trends", str(path), "--date-col", "when"]) == 2
    assert main(["trends", "sample:demo-timeline", "--freq", "D", "--k", "0"]) == 2


# Honesty: gaps, baselines, numbers a person reads ------------------------------------------
def sparse_frame() -> pd.DataFrame:
    """Texts on days 0, 10, 20, 30 and 40 only, then a loud day 41: the days between are empty."""
    rows = []
    for day, count in ((0, 50), (10, 50), (20, 50), (30, 50), (40, 50), (41, 400)):
        date = pd.Timestamp("2026-03-02") + pd.Timedelta(days=day)
        rows += [(f"{date:%Y-%m-%d} 10:00", "negative" if i % 2 else "positive", "late delivery", 0.9)
                 for i in range(count)]
    return frame_of(rows)


def test_no_alert_against_an_empty_baseline():
    frame = sparse_frame()
    daily = trends.analyse(frame, COLS, TrendSettings(freq="D", window=8))
    assert daily.spikes == []  # day 41's window holds one day with texts: no usual to compare with
    control = trends.analyse(frame, COLS, TrendSettings(freq="D", window=60))  # five earlier days with texts
    volume = [s for s in control.spikes if s.metric == "volume"]
    assert [s.period.strftime("%m-%d") for s in volume] == ["04-12"] and volume[0].baseline == 50
    positive_only = frame.assign(label="positive")
    positive_only.loc[positive_only.index[-400:], "label"] = "negative"  # a usual negative share of exactly 0
    shares = trends.analyse(positive_only, COLS, TrendSettings(freq="D", window=60)).spikes
    assert not [s for s in shares if s.metric == "negative_share"]


def test_empty_periods_are_gaps_not_zero_everywhere_a_person_reads():
    from core import figures

    report = trends.analyse(sparse_frame(), COLS, TrendSettings(freq="D", window=60))
    empty = report.series["volume"] == 0
    assert empty.sum() == 36 and report.series.loc[empty, ["share_negative", "net_sentiment"]].isna().all().all()
    as_json = report.to_dict()
    assert as_json["series"][1]["share_negative"] is None and as_json["series"][1]["volume"] == 0
    share = figures.sentiment_share_figure(report.series, report.prepared.labels, "en", "positive", "negative")
    assert np.isnan(share.data[0].y[1])  # no bar, not a 0% bar
    table = trends.alerts_table(report)
    assert table.loc[0, "value"] == "400" and table.loc[0, "baseline"] == "50" and table.loc[0, "times_usual"] == "8.0×"
    shown = table.astype(str).to_numpy().ravel().tolist()
    assert not {"None", "nan", "NaN", ""} & set(shown)


def test_alerts_and_texts_tables_read_in_the_reader_language():
    frame = daily_frame(days=60, surge={55: (80, "Package arrived crushed")})
    report = trends.analyse(frame, COLS, TrendSettings(freq="D", window=14))
    english, chinese = trends.alerts_table(report, "en"), trends.alerts_table(report, "zh")
    share_row = english.index[english["metric"] == "negative share"][0]
    assert english.loc[share_row, "value"].endswith("%") and chinese.loc[share_row, "metric"] == "负面占比"
    assert english.loc[share_row, "group"] == "All texts" and chinese.loc[share_row, "group"] == "全部文本"
    spike = report.spikes[0]
    rows = trends.texts_for(report.prepared, period=spike.period)
    rows.loc[0, "confidence"] = np.nan
    shown = trends.texts_table(rows, "zh")
    assert list(shown.columns) == ["日期", "标签", "置信度", "文本"]
    assert shown["置信度"].iloc[0] == "—" and shown["日期"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d").all()


def test_the_date_summary_names_order_first_last_and_periods():
    frame = frame_of([(v, "positive", "fine", 0.9) for v in ["01/09/2026", "15/09/2026", "09/11/2026"]])
    report = trends.analyse(frame, COLS)
    summary = trends.date_summary(report)
    assert str(summary) == ("Dates read as day/month/year: 1 rows have a first number above 12, so the day comes "
                            "first · first 2026-09-01 · last 2026-11-09 · 11 weeks")
    assert summary.render("zh").endswith("最早 2026-09-01 · 最晚 2026-11-09 · 共 11 周")


# Keywords behind spikes ---------------------------------------------------------------------
WORDS = ["battery", "refund", "screen", "cracked", "delivery", "late", "rude", "support", "电池", "续航", "客服"]
NOISE = ["https://t.co/x1", "@anonymous", "url_removed", "url removed", "http url", "RT", "&amp;", "amp", "lt",
         "[link]", "<user>", "2026", "me@example.org"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), rows=st.integers(60, 300))
def test_every_keyword_of_every_period_lists_its_texts(seed, rows):
    rng = np.random.default_rng(seed)
    vocab = WORDS + NOISE
    texts = [" ".join(rng.choice(vocab, size=rng.integers(1, 7))) for _ in range(rows)]
    days = rng.integers(0, 70, size=rows)
    frame = pd.DataFrame({"date": [f"{(pd.Timestamp('2026-09-01') + pd.Timedelta(days=int(d))):%d/%m/%Y}" for d in days],
                          "label": rng.choice(["negative", "positive"], size=rows), "text": texts})
    frame["group"] = rng.choice(["web", "app"], size=rows)
    prepared = trends.prepare(frame, Columns(date="date", label="label", text="text", group="group"),
                              TrendSettings(date_order="DMY"))
    for period in prepared.frame["period"].unique():
        for group in (None, "web"):
            spike = trends.Spike(period, period, "negative_share", 0.5, 0.25, 2.0, 4.0, "low", 1, group)
            for item in trends.spike_keywords(prepared, spike, top=30):
                listed = trends.texts_for(prepared, period=period, group=group, label="negative", term=item["term"])
                assert len(listed) == item["count"] >= 1, item
                assert not {"url", "removed", "http", "anonymous", "rt", "amp", "lt", "link", "user"} & \
                    set(item["term"].split(" "))


def test_a_user_made_day_first_export_reads_true():
    """The analyst's file from issue 11: 2,000 posts over ten weeks written dd/mm/yyyy, with
    @mentions, links and "url_removed" placeholders; uniform opinion, so nothing to alert."""
    rng = np.random.default_rng(11)
    start = pd.Timestamp("2026-09-02 08:00")  # a Wednesday: ten weeks touch eleven Monday-weeks
    moments = start + pd.to_timedelta(np.sort(rng.integers(0, 70 * 86400, size=2000)), unit="s")
    complaints = ["delivery was late again", "support never answered", "refund still pending"]
    praise = ["love the new screen", "battery lasts all day", "great value for money"]
    texts, labels = [], []
    for i in range(2000):
        negative = rng.random() < 0.3
        body = rng.choice(complaints if negative else praise)
        extra = rng.choice(["@shop_help", "https://t.co/Ab12", "url_removed", "RT @anonymous:", "&amp;", f"#{i}"])
        texts.append(f"{extra} {body} {rng.choice(['', 'http url', '[link]'])}".strip())
        labels.append("negative" if negative else "positive")
    frame = pd.DataFrame({"posted": moments.strftime("%d/%m/%Y %H:%M"), "label": labels, "text": texts})
    columns = Columns(**trends.suggest_columns(frame))
    assert columns.date == "posted" and columns.text == "text"
    report = trends.analyse(frame, columns)
    assert report.prepared.dates.order == "DMY" and report.prepared.bad_dates == 0
    assert len(report.series) == 11 and report.series["volume"].sum() == 2000
    assert report.spikes == []
    last = report.series["period"].iloc[-1]
    spike = trends.Spike(last, last, "negative_share", 0.3, 0.3, 1.0, 0.0, "low", 1)
    terms = [k["term"] for k in trends.spike_keywords(report.prepared, spike)] or ["(none)"]
    target = report.prepared.frame.loc[report.prepared.frame["period"] == last, "text"]
    every = {term for text in target for term in keywords.terms(text)}
    assert every <= {"delivery", "late", "support", "answered", "refund", "pending", "love", "screen", "battery",
                     "lasts", "day", "great", "value", "money", "new", "never"} | {t for t in every if " " in t}, every
    assert not {"url", "removed", "http", "anonymous", "rt", "amp", "link", "shop", "help", "co"} & \
        {w for t in every | set(terms) for w in t.split(" ")}


def test_no_alerts_says_when_there_are_too_few_periods_for_a_baseline():
    """Three months cannot have a baseline: the message says so (needed and found), not 'lower k'."""
    frame = daily_frame(days=80, start="2026-01-05")  # January to March; only February is whole
    columns = trends.Columns(date="date", label="label", text="text")
    monthly = trends.analyse(frame, columns, trends.TrendSettings(freq="M"))
    message = trends.no_alerts_message(monthly)
    assert message.key == "qa.trends.no_baseline"
    assert "at least 5 months with texts" in str(message) and "this data spans 3, 1 of them whole" in str(message)
    assert "至少需要 5 个有文本的月" in message.render("zh")
    weekly = trends.analyse(frame, columns, trends.TrendSettings(freq="W"))
    assert trends.no_alerts_message(weekly).key == "trends.no_alerts"  # enough weeks: the usual reason
