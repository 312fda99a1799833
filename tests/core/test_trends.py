import json

import numpy as np
import pandas as pd
import pytest

from core import trends
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


# Dates ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("2026-11-28", "2026-11-28 00:00"),
    ("2026-11-28T09:30:00", "2026-11-28 09:30"),
    ("2026-11-28 09:30:00+08:00", "2026-11-28 01:30"),  # zones become UTC
    ("2026-11-28T09:30:00Z", "2026-11-28 09:30"),
    ("2026/11/28", "2026-11-28 00:00"),
    ("2026/11/28 21:05", "2026-11-28 21:05"),
    ("28.11.2026", "2026-11-28 00:00"),
    ("28.11.2026 14:00", "2026-11-28 14:00"),
    ("11/28/2026", "2026-11-28 00:00"),
    ("28/11/2026", "2026-11-28 00:00"),  # first number > 12: day first
    ("2026年11月28日", "2026-11-28 00:00"),
    ("2026年11月28日 9时30分", "2026-11-28 09:30"),
    ("20261128", "2026-11-28 00:00"),
    ("1795858200", "2026-11-28 09:30"),  # Unix seconds
    ("1795858200000", "2026-11-28 09:30"),  # Unix milliseconds
    ("Nov 28, 2026", "2026-11-28 00:00"),
])
def test_every_date_format(text, expected):
    parsed, bad = trends.parse_dates(pd.Series([text], dtype="str"))
    assert bad == 0
    assert parsed.iloc[0].strftime("%Y-%m-%d %H:%M") == expected


def test_mixed_formats_in_one_column_and_unparseable_counted():
    values = pd.Series(["2026-11-28", "2026年11月27日", "26.11.2026", "not a date", "", "1795858200", "32.13.2026"])
    parsed, bad = trends.parse_dates(values)
    assert bad == 3 - 1  # "not a date" and "32.13.2026"; the empty cell is missing, not bad
    assert list(parsed.dt.day.iloc[[0, 1, 2, 5]]) == [28, 27, 26, 28]
    assert parsed.iloc[[3, 4, 6]].isna().all()


def test_numeric_and_datetime_columns():
    seconds, bad = trends.parse_dates(pd.Series([1795858200, 1795858200000, -5]))
    assert bad == 1 and seconds.iloc[0] == seconds.iloc[1] == pd.Timestamp("2026-11-28 09:30")
    aware = pd.Series(pd.to_datetime(["2026-11-28 09:30"]).tz_localize("Asia/Shanghai"))
    parsed, _ = trends.parse_dates(aware)
    assert parsed.iloc[0] == pd.Timestamp("2026-11-28 01:30")


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
    assert table["share_negative"].round(4).tolist() == [0.6667, 0.0, 0.0, 0.0]
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


def test_log_odds_ranks_the_overrepresented_term_and_needs_min_count():
    target = pd.Series(["battery died"] * 20 + ["fine phone"] * 20 + ["rare word zebra"] * 2)
    reference = pd.Series(["fine phone"] * 200 + ["battery ok"] * 5)
    keywords = trends.log_odds_keywords(target, reference)
    assert keywords[0]["term"] in ("battery died", "battery")  # 48% of target texts against 2% before
    assert "battery died" in [k["term"] for k in keywords[:2]]
    assert "zebra" not in [k["term"] for k in keywords]  # two texts are below min_count
    assert "fine" not in [k["term"] for k in keywords] and "fine phone" not in [k["term"] for k in keywords]


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
    report = trends.analyse(frame, COLS, TrendSettings(freq="D"))
    assert report.prepared.bad_dates == 10 and report.to_dict()["bad_dates"] == 10
    assert report.series["volume"].sum() == len(frame) - 10
    assert any("10 rows have a date that could not be read" in n for n in report.prepared.notes)


def test_a_single_day_of_data():
    frame = frame_of([("2026-11-28 10:00", "positive", "a", 1.0), ("2026-11-28 11:00", "negative", "b", 1.0)])
    report = trends.analyse(frame, COLS, TrendSettings(freq="D"))
    assert len(report.series) == 1 and report.spikes == []
    assert any("one period" in n for n in report.prepared.notes)


def test_labels_that_are_not_sentiment():
    frame = daily_frame(days=30)
    frame["label"] = frame["label"].map({"negative": "billing", "positive": "delivery"})
    report = trends.analyse(frame, COLS, TrendSettings(freq="W"))
    assert report.prepared.negative is None and "net_sentiment" not in report.series
    assert {"share_billing", "share_delivery"} <= set(report.series.columns)
    assert all(s.metric == "volume" for s in report.spikes)
    assert any("No label reads as negative" in n for n in report.prepared.notes)
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
    assert any("10,000 groups" in n for n in many.notes)


def test_settings_are_validated():
    for bad in (TrendSettings(freq="Q"), TrendSettings(window=1), TrendSettings(k=0), TrendSettings(method="iqr")):
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
    assert [tr.line.color for tr in share.data] == ["#d62728", "#2ca02c"]
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
    assert "negative_share" in set(pd.read_csv(alerts_csv, encoding="utf-8-sig")["metric"])


def test_cli_trends_user_errors(tmp_path, capsys):
    path = tmp_path / "nodates.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["positive", "negative"]}).to_csv(path, index=False)
    assert main(["trends", str(path)]) == 2
    assert "No date column" in capsys.readouterr().err
    assert main(["trends", str(path), "--date-col", "when"]) == 2
    assert main(["trends", "sample:demo-timeline", "--freq", "D", "--k", "0"]) == 2
