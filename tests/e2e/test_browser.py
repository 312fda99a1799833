"""The whole upload flow in a real browser: home → Data → upload CSV → report → save → listed."""

import pytest

from core.datasets import list_datasets
from tests.conftest import csv_bytes, labelled_rows
from tests.e2e.conftest import screenshot, settle

pytestmark = pytest.mark.browser


def test_deep_link_on_a_fresh_server_keeps_navigation(server, page):
    """First visit of a fresh server straight to /data: the page still has the app's navigation
    and language switch (not Streamlit's bare pages/ folder fallback)."""
    page.goto(server["url"] + "/data")
    page.get_by_text("Upload a file or pick a sample to begin.").wait_for()
    settle(page)
    page.get_by_text("简体中文").wait_for()
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "Train" in sidebar and "shared" not in sidebar and "app" not in sidebar.split()


def test_upload_csv_and_see_dataset_listed(server, page, tmp_path, monkeypatch):
    page.goto(server["url"])
    page.get_by_role("heading", name="Opinion Lab").wait_for()
    screenshot(page, "01-home")

    page.get_by_role("link", name="Data").first.click()
    page.get_by_text("Upload a file or pick a sample to begin.").wait_for()
    csv_file = tmp_path / "shop_reviews.csv"
    rows = [(t, lab, "shop" if i % 2 else "web") for i, (t, lab) in enumerate(labelled_rows(15))]
    csv_file.write_bytes(csv_bytes(rows, header=("review", "sentiment", "source")))
    page.locator("input[type=file]").set_input_files(str(csv_file))
    page.get_by_text("No blocking problems").wait_for()
    page.get_by_text("Check report").scroll_into_view_if_needed()
    page.get_by_text("Class balance per split").wait_for()
    screenshot(page, "02-data-report")

    name_box = page.get_by_label("Dataset name")
    name_box.fill("browser reviews")
    page.get_by_role("button", name="Save dataset").click()
    page.get_by_text("with 30 rows").wait_for()
    page.get_by_text("browser reviews — 30 rows").wait_for()
    screenshot(page, "03-data-saved")

    monkeypatch.setenv("OPINIONLAB_HOME", str(server["home"]))
    assert [c["name"] for c in list_datasets()] == ["browser reviews"]


def test_language_switch_in_browser(server, page):
    page.goto(server["url"])
    page.get_by_role("heading", name="Opinion Lab").wait_for()
    page.get_by_text("简体中文").click()
    page.get_by_role("heading", name="舆情实验室").wait_for()
    page.get_by_text("从这里开始").wait_for()
    assert "lang=zh" in page.url
    screenshot(page, "04-home-zh")


def test_score_a_small_file_and_download(server, page, tmp_path, monkeypatch):
    import pandas as pd

    from core.data import Table, prepare_dataset
    from core.datasets import save_dataset
    from core.training import TrainConfig, create_run, run_training
    from tests.conftest import easy_rows

    monkeypatch.setenv("OPINIONLAB_HOME", str(server["home"]))
    frame = pd.DataFrame(easy_rows(), columns=["text", "label"], dtype="str")
    save_dataset(prepare_dataset(Table(frame, "easy.csv", "csv")), "easy for scoring")
    run_training(create_run(TrainConfig(dataset="easy for scoring", method="baseline")))

    page.goto(server["url"] + "/score")
    page.get_by_text("Texts to score").wait_for()
    source = tmp_path / "to_score.csv"
    pd.DataFrame({"id": range(12), "posted": [f"2026-11-{d:02d}" for d in range(1, 13)],
                  "comment": [t for t, _ in easy_rows(6)]}).to_csv(source, index=False)
    page.locator("input[type=file]").set_input_files(str(source))
    page.get_by_role("button", name="Start scoring").click()
    page.get_by_text("Rows scored").wait_for(timeout=120_000)
    screenshot(page, "05-score")
    settle(page)
    button = page.locator('[data-testid="stDownloadButton"] button').first
    button.scroll_into_view_if_needed()
    with page.expect_download() as download:
        button.click()
    saved = tmp_path / "scored.csv"
    download.value.save_as(saved)
    scored = pd.read_csv(saved, encoding="utf-8-sig")
    assert len(scored) == 12 and {"label", "confidence", "prob_negative", "prob_positive"} <= set(scored.columns)

    # on to the Trends page with the scored file, in one click
    page.get_by_role("link", name="Open in Trends").first.click()
    page.get_by_role("heading", name="Share of each label").wait_for(timeout=60_000)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
    assert page.get_by_text("Rows analysed").count() == 1
    settle(page)
    screenshot(page, "06-trends")
