import pandas as pd

from core.workspace import Registry
from tests.conftest import easy_rows
from tests.core.test_jobs import wait_done
from tests.pages.conftest import open_page


def test_no_models(app):
    open_page(app, "pages/score.py")
    assert any("No finished runs yet" in i.value for i in app.info)


def test_upload_score_and_see_summary(app, baseline_run):
    open_page(app, "pages/score.py")
    data = pd.DataFrame({"id": range(30), "comment": [t for t, _ in easy_rows(15)]}).to_csv(index=False).encode()
    app.file_uploader(key="score_upload").set_value(("shop.csv", data, "text/csv")).run()
    assert not app.exception
    col = next(s for s in app.selectbox if s.key.startswith("score_col_"))
    assert col.value == "comment"
    app.button(key="score_start").click().run()
    assert any("Started scoring job" in s.value for s in app.success)
    job = [j for j in Registry().jobs() if j["kind"] == "score"][0]
    assert wait_done(job["id"]) == "succeeded"
    app.run()
    assert not app.exception
    assert [m.label for m in app.metric][:2] == ["Rows scored", "Empty texts"]
    assert app.metric[0].value == "30"


def test_saved_dataset_as_input(app, baseline_run):
    open_page(app, "pages/score.py")
    app.radio(key="score_source").set_value("dataset").run()
    app.button(key="score_start").click().run()
    job = [j for j in Registry().jobs() if j["kind"] == "score"][0]
    assert wait_done(job["id"]) == "succeeded"


def test_file_without_text_shows_message(app, baseline_run):
    open_page(app, "pages/score.py")
    app.file_uploader(key="score_upload").set_value(("nums.csv", b"a,b\n1,2\n3,4\n", "text/csv")).run()
    assert any("No column of this file holds texts" in e.value for e in app.error)
    assert not any(b.key == "score_start" for b in app.button)
