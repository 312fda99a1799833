"""The whole flow on a fresh workspace, in headless Chromium, as an analyst clicks it:
sample → dataset → baseline and a small quick run → Results → Score and download → Trends on a
day-first export, then on the demo timeline → 简体中文. A screenshot of every page goes to artifacts/screenshots/flow-*.png."""

import re

import pandas as pd

from tests.e2e.conftest import no_exception, screenshot, settle

SUCCEEDED = "Status: succeeded"


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option).first.click()
    settle(page)


def test_full_flow_in_a_browser(server, page, tmp_path):
    url = server["url"]

    # Data: the English sample becomes a dataset
    page.goto(url + "/data")
    page.get_by_text("Use a sample").click()
    page.get_by_role("button", name="Save dataset").wait_for(timeout=120_000)
    settle(page)
    page.get_by_role("button", name="Save dataset").click()
    # the success line ("Saved dataset movie-reviews with 33,432 rows."), not the "Saved datasets" heading
    page.get_by_text("rows.").filter(has_text="Saved dataset").first.wait_for(timeout=120_000)
    no_exception(page)
    screenshot(page, "flow-01-data")

    # Train: the baseline, then a quick run cut to a few hundred rows
    page.goto(url + "/train")
    page.get_by_text("Start training").wait_for(timeout=180_000)
    settle(page)
    choose(page, "Method", "Baseline (TF-IDF + logistic regression)")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(": started.").first.wait_for()  # "<run name>: started."
    page.get_by_text(SUCCEEDED).first.wait_for(timeout=300_000)  # the page reruns as jobs finish: wait first
    settle(page)
    choose(page, "Method", "Full fine-tuning")
    page.locator('[data-testid="stCode"]').filter(has_text="core jobs submit").filter(has_text="--method full").wait_for()  # the rerun is done
    settle(page)
    page.get_by_text("Advanced settings").filter(visible=True).click()
    for field, value in (("Training rows (0 = all)", "300"), ("Validation rows (0 = all)", "200"),
                         ("Max length (tokens)", "64"), ("Epochs", "2")):
        box = page.get_by_label(field, exact=True).filter(visible=True)
        box.fill(value)
        box.press("Tab")  # commits the value to the form
    page.get_by_role("button", name="Apply settings").filter(visible=True).click()
    settle(page)
    # the command shown follows the settings
    page.locator('[data-testid="stCode"]').filter(has_text="core jobs submit").filter(has_text="--limit 300").filter(has_text="--max-length 64").wait_for()
    settle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(": started.").first.wait_for()  # "<run name>: started."
    page.wait_for_function(f"() => document.body.innerText.split({SUCCEEDED!r}).length - 1 >= 2", timeout=900_000)
    no_exception(page)
    screenshot(page, "flow-02-train")

    # Results: the newest run, its confusion matrix
    page.goto(url + "/results")
    page.get_by_text("Confusion matrix").first.wait_for(timeout=120_000)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    assert "Accuracy" in page.inner_text("body")
    no_exception(page)
    screenshot(page, "flow-03-results")

    # Score a small dated file and download it
    page.goto(url + "/score")
    page.get_by_text("Texts to score").wait_for()
    source = tmp_path / "shop.csv"
    pd.DataFrame({"posted": [f"2026-11-{d:02d}" for d in range(1, 21)],
                  "comment": ["A wonderful, moving film.", "Dull and far too long."] * 10}).to_csv(source, index=False)
    page.locator("input[type=file]").set_input_files(str(source))
    page.get_by_role("button", name="Start scoring").click()
    page.get_by_text("Rows scored").wait_for(timeout=300_000)
    settle(page)
    with page.expect_download() as download:
        page.locator('[data-testid="stDownloadButton"] button').first.click()
    saved = tmp_path / "scored.csv"
    download.value.save_as(saved)
    scored = pd.read_csv(saved, encoding="utf-8-sig")
    assert len(scored) == 20 and {"posted", "comment", "label", "confidence"} <= set(scored.columns)
    no_exception(page)
    screenshot(page, "flow-04-score")

    # Trends on a social-media export written day/month/year: one order for the whole column
    page.goto(url + "/trends")
    page.get_by_text("Scored texts").wait_for()
    choose(page, "Scored texts", "Upload a file with dates and labels")
    posts = tmp_path / "posts.csv"
    days = [pd.Timestamp("2026-09-01") + pd.Timedelta(days=d) for d in range(70)]
    pd.DataFrame({"posted": [f"{d:%d/%m/%Y} 1{i}:00" for d in days for i in range(3)],
                  "label": ["negative", "positive", "positive"] * len(days),
                  "comment": ["@shop delivery late again url_removed", "lovely screen https://t.co/x",
                              "great value for money"] * len(days)}).to_csv(posts, index=False)
    page.locator("input[type=file]").set_input_files(str(posts))
    page.get_by_text("Dates read as day/month/year").wait_for(timeout=120_000)
    settle(page)
    body = page.inner_text("body")
    assert "first 2026-09-01 · last 2026-11-09 · 11 weeks" in body
    assert re.search(r"Unreadable dates\s*\n\s*0\b", body) and re.search(r"Periods\s*\n\s*11\b", body)
    no_exception(page)
    screenshot(page, "flow-05a-trends-day-first")

    # Trends on the demo timeline: the planted alert and its keyword
    choose(page, "Scored texts", "Demo timeline (synthetic)")
    page.get_by_text("This demo timeline is synthetic").wait_for()
    page.locator('[data-testid="stPlotlyChart"]').filter(has_text="boring").first.wait_for(timeout=120_000)
    settle(page)  # the keyword chart of the newest alert is there: the demo is analysed
    alerts = int(re.search(r"Alerts\s*\n\s*(\d+)", page.inner_text("body")).group(1))
    assert alerts >= 1
    no_exception(page)
    screenshot(page, "flow-05-trends")

    # 简体中文: the same pages, in Chinese
    page.get_by_text("简体中文").click()
    page.get_by_role("heading", name="舆情趋势").wait_for()
    screenshot(page, "flow-06-trends-zh")
    # the chosen source stays, now in Chinese (a select box shows its value in an input or a div)
    page.wait_for_function("""t => { const box = document.querySelector('[data-testid="stSelectbox"]');
        return box && (box.innerText.includes(t) || [...box.querySelectorAll('input')].some(i => i.value.includes(t))
                       || (box.getAttribute('aria-label') || '').includes(t) || box.outerHTML.includes(t)); }""",
                           arg="演示时间线（合成数据）")
    for nav, heading in (("数据", "数据"), ("训练", "训练"), ("结果", "结果"), ("打分", "批量打分"), ("首页", "舆情实验室")):
        page.get_by_role("link", name=nav, exact=True).click()
        page.get_by_role("heading", name=heading, exact=True).wait_for()
        settle(page)
        no_exception(page)
    assert "lang=zh" in page.url
    screenshot(page, "flow-07-home-zh")
