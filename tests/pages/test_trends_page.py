import pandas as pd

from core.workspace import Registry
from tests.core.test_jobs import wait_done
from tests.core.test_trends import daily_frame
from tests.pages.conftest import open_page


def test_demo_timeline_shows_charts_and_an_alert(app):
    open_page(app, "pages/trends.py")
    assert app.selectbox(key="trends_source_en").value == "sample:demo-timeline"
    assert any("synthetic" in i.value for i in app.info)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Rows analysed"] == "6,000" and int(metrics["Alerts"]) >= 1
    assert app.selectbox(key="trends_col_date").value == "date"
    alerts = app.dataframe[0].value
    assert "boring" in alerts.iloc[0]["keywords"]
    assert any("texts behind this alert" in c.value for c in app.caption)
    app.selectbox(key="trends_term").set_value("boring").run()
    assert not app.exception


def test_frequency_group_and_settings(app):
    open_page(app, "pages/trends.py")
    app.selectbox(key="trends_col_group").set_value("source").run()
    assert not app.exception and any(s.value == "By group" for s in app.subheader)
    app.number_input(key="trends_min_volume").set_value(100_000).run()
    assert any("No alerts" in s.value for s in app.success)


def test_upload_without_dates_and_with_other_labels(app):
    open_page(app, "pages/trends.py")
    app.selectbox(key="trends_source_en").set_value("upload").run()
    nodates = pd.DataFrame({"comment": ["good", "bad"], "label": ["positive", "negative"]}).to_csv(index=False)
    app.file_uploader(key="trends_upload").set_value(("x.csv", nodates.encode(), "text/csv")).run()
    assert not app.exception
    assert any("No date column is chosen" in e.value for e in app.error)
    app.file_uploader(key="trends_upload").set_value(("photo.csv", bytes(range(256)) * 20, "text/csv")).run()
    assert not app.exception and any("binary data" in e.value for e in app.error)
    topics = daily_frame(days=30)
    topics["label"] = topics["label"].map({"negative": "billing", "positive": "delivery"})
    app.file_uploader(key="trends_upload").set_value(("t.csv", topics.to_csv(index=False).encode(), "text/csv")).run()
    assert not app.exception
    assert any(s.value == "Negative share" or s.value == "Net sentiment" for s in app.subheader) is False
    assert any("No label reads as negative" in w.value for w in app.warning)


def test_scored_output_opens_from_its_link(app, baseline_run, tmp_path):
    from core import jobs, scores, scoring

    source = tmp_path / "dated.csv"
    daily_frame(days=20, per_day=5).drop(columns=["label", "confidence"]).to_csv(source, index=False)
    folder = scoring.create_score(scoring.ScoreConfig(run_id=baseline_run, input=str(source), text_col="text"))
    job = jobs.submit(folder, kind="score")
    assert wait_done(job["id"]) == "succeeded"
    score_id = Registry().job(job["id"])["target"]
    app.query_params["source"] = score_id
    open_page(app, "pages/trends.py")
    assert app.selectbox(key="trends_source_en").value == score_id
    assert {m.label: m.value for m in app.metric}["Rows analysed"] == "100"
    name = scores.get_score(score_id).name
    assert f"Scored: {name}" in app.selectbox(key="trends_source_en").options  # its name, not its id
    assert not any(score_id in o for o in app.selectbox(key="trends_source_en").options)
    assert any(score_id in c.value for c in app.caption)  # the id stays, as a detail


def test_trends_page_in_chinese(app):
    app.query_params["lang"] = "zh"
    open_page(app, "pages/trends.py")
    assert app.title[0].value == "舆情趋势"



def day_first_posts() -> bytes:
    """Ten weeks of posts written day/month/year, from Tuesday 1 September 2026."""
    days = [pd.Timestamp("2026-09-01") + pd.Timedelta(days=d) for d in range(0, 70, 2)]
    frame = pd.DataFrame({"posted": [f"{d:%d/%m/%Y} 10:30" for d in days for _ in range(3)],
                          "label": ["negative", "positive", "positive"] * len(days),
                          "comment": ["Delivery late again @shop url_removed", "Lovely screen https://t.co/x",
                                      "Great value"] * len(days)})
    return frame.to_csv(index=False).encode()


def date_caption(app) -> str:
    return next(c.value for c in app.caption if " · first " in c.value or " · 最早 " in c.value)


def test_a_day_first_upload_shows_its_order_dates_and_periods_and_can_be_overridden(app):
    open_page(app, "pages/trends.py")
    app.selectbox(key="trends_source_en").set_value("upload").run()
    app.file_uploader(key="trends_upload").set_value(("posts.csv", day_first_posts(), "text/csv")).run()
    assert not app.exception
    assert app.selectbox(key="trends_col_date").value == "posted"
    caption = date_caption(app)
    assert "day/month/year" in caption and "first 2026-09-01 · last 2026-11-08 · 10 weeks" in caption
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Periods"] == "10" and metrics["Unreadable dates"] == "0" and metrics["Rows analysed"] == "105"

    app.selectbox(key="trends_date_order_en").set_value("MDY").run()  # the analyst insists on month first
    assert "month/day/year (your choice)" in date_caption(app)
    metrics = {m.label: m.value for m in app.metric}
    assert int(metrics["Unreadable dates"]) > 0  # 15/09/2026 cannot be month first: counted, not hidden
    assert any("could not be read" in w.value for w in app.warning)

    app.text_input(key="trends_date_format").set_value("%d/%m/%Y %H:%M").run()
    assert "format %d/%m/%Y %H:%M" in date_caption(app) and "10 weeks" in date_caption(app)
    assert {m.label: m.value for m in app.metric}["Unreadable dates"] == "0"


def in_chinese(app):
    """Run again in Chinese (AppTest forgets the sidebar's language after a page switch)."""
    app.session_state["lang"] = "zh"
    return app.run()


def test_dates_with_offsets_and_a_chosen_time_zone_in_chinese(app):
    app.query_params["lang"] = "zh"
    open_page(app, "pages/trends.py")
    app.selectbox(key="trends_source_zh").set_value("upload")
    in_chinese(app)
    frame = pd.DataFrame({"date": ["2026-11-29T20:00:00+08:00", "2026-11-30T01:00:00+08:00"] * 5,
                          "label": ["负面", "正面"] * 5, "text": ["物流太慢", "质量很好"] * 5})
    app.file_uploader(key="trends_upload").set_value(("o.csv", frame.to_csv(index=False).encode(), "text/csv"))
    in_chinese(app)
    assert "共 2 周" in date_caption(app) and any("时区偏移" in w.value for w in app.warning)
    app.selectbox(key="trends_timezone_zh").set_value("UTC")
    in_chinese(app)
    assert "共 1 周" in date_caption(app)  # both are Sunday 29 November in UTC
    assert not app.exception


def test_choices_survive_a_language_switch(app):
    """Widgets keep codes, not labels: English → 中文 → English keeps the method and the frequency."""
    open_page(app, "pages/trends.py")
    app.radio(key="trends_method_en").set_value("std").run()
    app.segmented_control(key="trends_freq_en").set_value("D").run()
    in_chinese(app)
    assert not app.exception and not app.error
    assert app.radio(key="trends_method_zh").value == "std" and app.segmented_control(key="trends_freq_zh").value == "D"
    app.session_state["lang"] = "en"
    app.run()
    assert not app.exception and not app.error
    assert app.radio(key="trends_method_en").value == "std" and app.segmented_control(key="trends_freq_en").value == "D"
    assert app.selectbox(key="trends_source_en").value == "sample:demo-timeline"
