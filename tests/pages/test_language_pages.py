"""The Data page's language line and the Train page's model suggestion and unknown-token warning."""

import pandas as pd
import pytest

from tests.conftest import csv_bytes, labelled_rows
from tests.core.test_zeroshot import CHINESE
from tests.pages.conftest import open_page


@pytest.fixture
def chinese_dataset(workspace):
    from core.data import Table, prepare_dataset
    from core.datasets import save_dataset

    rows = [(f"{text}，第{i}次购买", label) for label, items in CHINESE.items() for text in items for i in range(10)]
    frame = pd.DataFrame(rows, columns=["text", "label"], dtype="str")
    save_dataset(prepare_dataset(Table(frame, "zh.csv", "csv", "utf-8", ",")), "zh-reviews")
    return "zh-reviews"


def test_the_data_page_shows_the_language_mix(app):
    open_page(app, "pages/data.py")
    app.file_uploader(key="upload").set_value(("reviews.csv", csv_bytes(labelled_rows(10)), "text/csv")).run()
    assert not app.exception
    assert any(c.value == "Languages: 0% Chinese, 100% English, 0% other." for c in app.caption)


def test_the_train_page_suggests_multilingual_and_warns_about_default_on_chinese(app, chinese_dataset):
    open_page(app, "pages/train.py")
    assert model_choice(app).value == "multilingual"
    assert any("Suggested for this dataset: 'multilingual'. Languages: 100% Chinese" in c.value for c in app.caption)
    assert not any("unknown tokens" in w.value for w in app.warning)
    model_choice(app).set_value("default").run()
    assert not app.exception
    warning = next(w.value for w in app.warning if "unknown tokens" in w.value)
    share = int(warning.split("turns ")[1].split("%")[0])
    assert 50 <= share <= 95 and "Choose 'multilingual'" in warning


def model_choice(app):
    """The model radio (keyed by dataset and language, so a new dataset pre-selects its model)."""
    return next(r for r in app.radio if r.key.startswith("train_model_choice_"))
