import io
import json

import pandas as pd

from core.datasets import list_datasets, load_rows
from core.workspace import Registry
from tests.conftest import csv_bytes, labelled_rows


def open_data(app):
    app.run()
    app.switch_page("pages/data.py").run()
    assert not app.exception
    return app


def upload(app, name: str, data: bytes, mime: str = "text/csv"):
    app.file_uploader(key="upload").set_value((name, data, mime)).run()
    assert not app.exception
    return app


def test_upload_check_and_save(app):
    open_data(app)
    assert any("Upload a file" in i.value for i in app.info)
    rows = [(t, lab, "shop" if i % 2 else "web") for i, (t, lab) in enumerate(labelled_rows(10))]
    upload(app, "reviews.csv", csv_bytes(rows, header=("review", "sentiment", "source")))
    assert app.selectbox(key=next(s.key for s in app.selectbox if s.key.startswith("col_text"))).value == "review"
    assert [m.value for m in app.metric] == ["20", "20", "2"]
    assert any("usable dataset" in s.value for s in app.success)
    app.text_input[0].set_value("shop reviews")
    app.button(key="FormSubmitter:save_dataset-Save dataset").click().run()
    assert any("Saved dataset **shop reviews**" in s.value for s in app.success)
    cards = list_datasets()
    assert [c["name"] for c in cards] == ["shop reviews"]
    assert cards[0]["columns"]["group"] == "source"


def test_changing_a_column_changes_the_report(app):
    open_data(app)
    rows = [(t, lab, "a" if i < 18 else "b") for i, (t, lab) in enumerate(labelled_rows(10))]
    upload(app, "r.csv", csv_bytes(rows, header=("text", "label", "other")))
    label_box = next(s for s in app.selectbox if s.key.startswith("col_label"))
    assert label_box.value == "label"
    label_box.set_value("other").run()
    assert not app.exception
    assert any("fewer than 5 examples" in e.value and "'b' (2)" in e.value for e in app.error)
    assert any("Fix the problems" in e.value for e in app.error)


def test_bad_upload_shows_message_not_traceback(app):
    open_data(app)
    upload(app, "broken.csv", b"text,label\ngood,positive\nbad, awful,negative,extra\n")
    assert not app.exception
    assert any("Line 3" in e.value and "header has 2" in e.value for e in app.error)


def test_binary_upload_is_refused(app):
    open_data(app)
    upload(app, "photo.csv", bytes(range(256)) * 20)
    assert any("binary data" in e.value for e in app.error)


def test_gbk_excel_and_bom_uploads(app):
    open_data(app)
    rows = [("这部电影非常好看，强烈推荐", "正面"), ("质量太差了，很失望", "负面")]
    rows = [(f"{t}{i}", lab) for i in range(6) for t, lab in rows]
    upload(app, "中文.csv", csv_bytes(rows, header=("评论", "情感"), encoding="gbk"))
    assert any("GB18030" in m.value for m in app.markdown)
    buffer = io.BytesIO()
    pd.DataFrame(labelled_rows(10), columns=["text", "label"]).to_excel(buffer, index=False)
    upload(app, "r.xlsx", buffer.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert any("**Excel**" in m.value for m in app.markdown)


def test_sample_then_bad_name_then_good_name(app):
    open_data(app)
    app.radio(key="source_mode").set_value("sample").run()
    app.selectbox(key="sample").set_value("sample:chinese-reviews").run()
    assert not app.exception
    assert any("repeated an earlier text" in w.value for w in app.warning)
    app.text_input[0].set_value("../escape")
    app.button(key="FormSubmitter:save_dataset-Save dataset").click().run()
    assert any("is not allowed" in e.value for e in app.error)
    assert list_datasets() == []
    app.text_input[0].set_value("中文评论")
    app.button(key="FormSubmitter:save_dataset-Save dataset").click().run()
    assert [c["name"] for c in list_datasets()] == ["中文评论"]
    assert len(load_rows("中文评论")) > 17000


def test_delete_needs_confirmation(app):
    open_data(app)
    upload(app, "r.csv", csv_bytes(labelled_rows(10)))
    app.button(key="FormSubmitter:save_dataset-Save dataset").click().run()
    card = list_datasets()[0]
    assert any(card["name"] in e.label for e in app.expander)
    app.button(key=f"del_{card['id']}").click().run()
    assert list_datasets() == []


def _skewed_dataset() -> dict:
    from core.data import prepare_dataset
    from core.datasets import save_dataset
    from tests.core.test_data import table_of

    rows = [(f"good {i}", "positive") for i in range(40)] + [(f"bad {i}", "negative") for i in range(10)]
    return save_dataset(prepare_dataset(table_of(rows)), "skewed")


def test_saved_card_warnings_render_in_the_ui_language(app):
    _skewed_dataset()
    open_data(app)
    assert any(w.value.startswith("Classes are imbalanced: 'positive'") for w in app.warning)
    app.session_state["lang"] = "zh"  # a page opened by switch_page runs without app.py's sidebar
    app.run()
    assert not app.exception
    assert any(w.value.startswith("类别不平衡：“positive”") for w in app.warning)
    assert any("**skewed** —— 50 行 —— negative 10 · positive 40" in e.label for e in app.expander)


def test_an_old_card_with_plain_english_warnings_still_renders(app):
    import json
    import sqlite3

    card = _skewed_dataset()
    card["warnings"] = ["An older plain warning."]
    with sqlite3.connect(Registry().path) as db:
        db.execute("UPDATE datasets SET card = ? WHERE id = ?", (json.dumps(card), card["id"]))
    app.query_params["lang"] = "zh"
    open_data(app)
    assert any(w.value == "An older plain warning." for w in app.warning)


def test_charts_carry_plotly_s_locale_in_chinese_only(app):
    open_data(app)
    upload(app, "r.csv", csv_bytes(labelled_rows(10)))
    configs = [json.loads(c.proto.config) for c in app.get("plotly_chart")]
    assert configs and all("locale" not in c for c in configs)
    app.session_state["lang"] = "zh"
    app.run()
    configs = [json.loads(c.proto.config) for c in app.get("plotly_chart")]
    assert configs and all(c["locale"] == "zh-CN" and c["locales"]["zh-CN"]["format"]["month"] == "%Y年%-m月"
                           for c in configs)


def test_start_without_labels_queues_a_zero_shot_run_and_says_where_to_look(app, monkeypatch):
    import core.models
    from core import jobs
    from core.workspace import read_json
    from tests.core.e5_model import converted_folder
    from tests.core.test_unlabelled import export_bytes

    monkeypatch.setattr(jobs, "slots", lambda lane: 0)
    monkeypatch.setattr(core.models, "multilingual_model_dir", converted_folder)
    open_data(app)
    app.radio(key="source_mode").set_value("unlabelled").run()
    assert any("Upload the export to label." in i.value for i in app.info)
    app.file_uploader(key="unlabelled_upload").set_value(("导出.csv", export_bytes(), "text/csv")).run()
    assert not app.exception
    assert next(s for s in app.selectbox if s.label == "Column with the texts").value == "内容"
    names = next(t for t in app.text_input if t.label == "Labels (separated by commas)")
    assert names.value == "正面, 负面, 中性"
    assert {box.label: box.value for box in app.text_area}["负面"] == "负面评价，不满意"
    names.set_value("正面, 负面, 正面").run()
    assert any("The label '正面' is named twice" in e.value for e in app.error)
    next(t for t in app.text_input if t.label == "Labels (separated by commas)").set_value("正面，负面").run()
    {box.label: box for box in app.text_area}["负面"].set_value("").run()
    app.button(key="unlabelled_start").click().run()
    assert any("The label '负面' has an empty description" in e.value for e in app.error)
    assert Registry().runs() == []
    {box.label: box for box in app.text_area}["负面"].set_value("差评，不满意").run()
    app.button(key="unlabelled_start").click().run()
    assert not app.exception and not app.error
    assert any("queued (1st in line)" in s.value for s in app.success)
    assert any("导出.csv is scored" in i.value and "Score page" in i.value and "Trends" in i.value for i in app.info)
    run = Registry().runs()[0]
    config = read_json(Registry().root / "runs" / run["id"] / "config.json")
    assert run["dataset"] == "导出.csv" and config["descriptions"]["负面"] == ["差评，不满意"]
    assert list_datasets() == []  # nothing to save: the file is labelled by scoring it
