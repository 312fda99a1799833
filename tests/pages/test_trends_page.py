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
    from core import jobs, scoring

    source = tmp_path / "dated.csv"
    daily_frame(days=20, per_day=5).drop(columns=["label", "confidence"]).to_csv(source, index=False)
    folder = scoring.create_score(scoring.ScoreConfig(run_id=baseline_run, input=str(source), text_col="text"))
    job = jobs.submit(folder, kind="score")
    assert wait_done(job["id"]) == "succeeded"
    score_id = Registry().job(job["id"])["run_id"]
    app.query_params["source"] = score_id
    open_page(app, "pages/trends.py")
    assert app.selectbox(key="trends_source_en").value == score_id
    assert {m.label: m.value for m in app.metric}["Rows analysed"] == "100"


def test_trends_page_in_chinese(app):
    app.query_params["lang"] = "zh"
    open_page(app, "pages/trends.py")
    assert app.title[0].value == "舆情趋势"

