"""Every page in Chinese: no English word of the UI's own strings may reach the reader.

The word list is built from the English locale's values (what the UI says in English) minus an
allow-list of proper names and technical terms. Each page is driven in AppTest with lang=zh in
meaningful states over one workspace of Chinese data (a saved dataset, a finished baseline run,
a finished scoring job), so every English word found came from the UI, not from the data.
Offending strings are printed with their page and state.
"""

import json
import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import i18n, scores, scoring
from tests.conftest import FILLER, NEGATIVE, POSITIVE, csv_bytes, easy_rows
from tests.pages.conftest import APP

# Proper names and technical terms a Chinese UI writes in Latin letters.
ALLOWED_PHRASES = ("Opinion Lab", "JSON Lines", "Hugging Face Hub", "Hugging Face", "Excel 97-2003", "P-tuning")
ALLOWED_WORDS = {
    "csv", "tsv", "txt", "excel", "json", "parquet", "xlsx", "xls", "zip", "png", "html", "url", "utf", "gb",
    "gbk", "bom", "mb", "gpu", "cpu", "tf", "idf", "minilm", "lora", "bert", "auc", "roc", "pr", "ap", "ece",
    "mad", "id", "imdb", "snownlp", "jieba", "python", "pickle", "safetensors", "office",
    "boring",  # the demo timeline's planted keyword: a word of its English reviews, quoted as data
    "english",  # the language switch names each language in itself
    "onnx", "ray", "setfit", "adalora", "loha", "lokr",  # names of formats, engines and methods
    "slack", "microsoft", "teams", "workflows", "webhook", "lark", "smtp", "apprise",  # alert channels' own names
}
_PLACEHOLDER = re.compile(r"\{[^{}]*\}|%\{[^{}]*\}")
_CODE = re.compile(r"`[^`]*`|https?://\S+|<[^>]+>")
_TOKEN = re.compile(r"[A-Za-z0-9_./:\\'-]+")
_WORD = re.compile(r"[A-Za-z]+(?:[-_][A-Za-z]+)*")


def latin_words(text: str) -> list[str]:
    """Plain Latin words of a text, lower-cased (``learning_rate`` is two); code spans,
    placeholders, ids with digits (``run_3f9a``), file names and paths are not words."""
    text = _CODE.sub(" ", _PLACEHOLDER.sub(" ", str(text)))
    for phrase in ALLOWED_PHRASES:
        text = text.replace(phrase, " ")
    words = []
    for token in _TOKEN.findall(text):
        token = token.strip(".:'-")
        if _WORD.fullmatch(token):
            words += [w.lower() for w in re.split(r"[-_]", token) if len(w) >= 2]
    return words


def english_words() -> set[str]:
    words = {w for text in i18n.strings("en").values() for w in latin_words(text)}
    return words - ALLOWED_WORDS


def offences(texts: list[tuple[str, str]], data_words: frozenset = frozenset()) -> list[str]:
    vocabulary = english_words() - data_words
    found = []
    for where, text in texts:
        bad = sorted({w for w in latin_words(text) if w in vocabulary})
        if bad:
            found.append(f"[{where}] {', '.join(bad)}: {text!r}")
    return found


def test_the_check_finds_english_where_there_is_some():
    app = AppTest.from_file(APP, default_timeout=120).run()
    found = offences(visible_texts(app, "home in English"))
    assert any("datasets" in line and "'Datasets'" in line for line in found)
    assert latin_words("训练 `python -m core` run_3f9a reviews.csv MiniLM-L6 TF-IDF Opinion Lab learning_rate") == [
        "tf", "idf", "learning", "rate"]


def test_chinese_strings_hold_no_english_words():
    texts = [(f"zh:{key}", text) for key, text in i18n.strings("zh").items()]
    found = offences(texts)
    print("\n".join(found))
    assert not found, f"{len(found)} Chinese strings contain English words (printed above)"


# Collecting what a page shows ----------------------------------------------------------------
_TEXT_ELEMENTS = ("title", "header", "subheader", "markdown", "caption", "text", "info", "warning", "error",
                  "success", "toast")
_LABELLED = ("button", "checkbox", "toggle", "text_input", "text_area", "number_input", "slider",
             "select_slider", "date_input", "time_input", "color_picker", "expander", "tabs", "status")
_CHOICES = ("selectbox", "radio", "multiselect", "button_group")
_UNKNOWN_LABELLED = ("download_button", "page_link", "file_uploader", "link_button", "progress")


def _figure_texts(spec: str) -> list[str]:
    figure = json.loads(spec)
    layout, texts = figure.get("layout", {}), []
    for name, axis in layout.items():
        if re.fullmatch(r"[xy]axis\d*", name) and isinstance(axis, dict):
            title = axis.get("title")
            texts.append(title.get("text", "") if isinstance(title, dict) else title or "")
    legend = layout.get("legend", {}).get("title", {})
    texts.append(legend.get("text", "") if isinstance(legend, dict) else "")
    for trace in figure.get("data", []):
        texts += [trace.get("name") or "", trace.get("hovertemplate") or ""]
    return [t for t in texts if t]


def visible_texts(app: AppTest, where: str) -> list[tuple[str, str]]:
    """What a person reads on the page: text elements, labels, options, help, table headers and
    cells, metrics, downloads and links, chart titles, legends and hover texts."""
    texts = [e.value for kind in _TEXT_ELEMENTS for e in getattr(app, kind)]
    texts += [getattr(w, "label", "") for kind in _LABELLED for w in getattr(app, kind)]
    for kind in _CHOICES:
        for widget in getattr(app, kind):
            texts += [widget.label, *widget.options]
    for kind in (*_LABELLED, *_CHOICES):
        texts += [getattr(w, "help", None) or "" for w in getattr(app, kind)]
    texts += [part for m in app.metric for part in (m.label, m.value, m.delta or "")]
    for frame in app.dataframe:
        table = frame.value.data if hasattr(frame.value, "data") else frame.value
        texts += [str(c) for c in table.columns]
        texts += [str(v) for v in table.astype("str").to_numpy().ravel()]
    for kind in _UNKNOWN_LABELLED:
        for element in app.get(kind):
            proto = element.proto
            texts += [getattr(proto, "label", ""), getattr(proto, "help", ""), getattr(proto, "text", "")]
    texts += [t for chart in app.get("plotly_chart") for t in _figure_texts(chart.proto.spec)]
    return [(where, t) for t in texts if isinstance(t, str) and t.strip()]


def charts_not_in_chinese(app: AppTest, where: str) -> list[str]:
    """Charts placed without plotly's Chinese locale (dates would read "Mar 2026"): pages place
    charts with ``pages._shared.chart``."""
    configs = [json.loads(chart.proto.config or "{}") for chart in app.get("plotly_chart")]
    return [f"[{where}] chart {i + 1} has no zh-CN locale: place it with pages._shared.chart"
            for i, config in enumerate(configs) if config.get("locale") != "zh-CN"]


State = tuple[list[tuple[str, str]], frozenset, list[str]]


def state(app: AppTest, where: str, data_words: frozenset = frozenset()) -> State:
    """What one state of a page shows, the words in it that are the user's data, and its charts' faults."""
    return visible_texts(app, where), data_words, charts_not_in_chinese(app, where)


# One workspace of Chinese data for the whole walk --------------------------------------------
# The conftest's easy rows, word for word in Chinese (phone reviews instead of film reviews).
IN_CHINESE = dict(zip(POSITIVE + NEGATIVE + FILLER,
                      ["很好", "喜欢", "满意", "推荐", "不错", "很差", "失望", "糟糕", "退货", "难用",
                       "这个", "手机", "质量", "物流", "包装", "价格", "客服", "屏幕", "电池", "外观", "做工", "音质"],
                      strict=True))
LABELS = {"positive": "正面", "negative": "负面"}
DATASET = "手机评论"


def chinese_rows(n_per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    rows = []
    for text, label in easy_rows(n_per_class, seed):
        *words, number = text.split()
        rows.append(("，".join(IN_CHINESE[w] for w in words) + f"，第{number}条", LABELS[label]))
    return rows


@pytest.fixture(scope="module")
def walk_home(tmp_path_factory):
    """A dataset, a finished baseline run and a finished scoring job of dated texts."""
    from core import jobs
    from core.data import Table, prepare_dataset
    from core.datasets import save_dataset
    from core.training import TrainConfig, create_run
    from core.workspace import Registry
    from tests.core.test_jobs import wait_done

    home = tmp_path_factory.mktemp("zh-walk")
    patch = pytest.MonkeyPatch()
    patch.setenv("OPINIONLAB_HOME", str(home))
    frame = pd.DataFrame(chinese_rows(60), columns=["评论", "情感"], dtype="str")
    save_dataset(prepare_dataset(Table(frame, "评论.csv", "csv", "utf-8", ",")), DATASET)
    job = jobs.submit(create_run(TrainConfig(dataset=DATASET, method="baseline")))
    assert wait_done(job["id"]) == "succeeded"
    dated = pd.DataFrame({"评论": [text for text, _ in chinese_rows(100, seed=1)],
                          "日期": [f"2026-03-{1 + i % 28:02d}" for i in range(200)]})
    source = home / "带日期的评论.csv"
    dated.to_csv(source, index=False)
    folder = scoring.create_score(scoring.ScoreConfig(run_id=Registry().job(job["id"])["target"],
                                                      input=str(source), text_col="评论"), lang="zh")
    assert wait_done(jobs.submit(folder, kind="score")["id"]) == "succeeded"
    yield home
    patch.undo()


@pytest.fixture(autouse=True)
def workspace(walk_home, monkeypatch):
    """Overrides the per-test workspace: every page of the walk reads the same Chinese state."""
    monkeypatch.setenv("OPINIONLAB_HOME", str(walk_home))
    return walk_home


def rerun(app: AppTest) -> AppTest:
    """Run again in Chinese. A page opened by switch_page runs without app.py, so the sidebar's
    language switch is not drawn and Streamlit drops its state; the real app always draws it."""
    app.session_state["lang"] = "zh"
    app.run()
    assert not app.exception
    return app


def open_zh(page: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.query_params["lang"] = "zh"
    app.run()
    if page != "home":
        app.switch_page(f"pages/{page}.py")
        rerun(app)
    return app


def upload(app: AppTest, name: str, data: bytes) -> None:
    app.file_uploader(key="upload").set_value((name, data, "text/csv"))
    rerun(app)


def words_of_data(frame: pd.DataFrame) -> frozenset:
    """Latin words in a table's column names and cells: the user's data, not the UI."""
    cells = " ".join(frame.columns) + " " + " ".join(frame.astype("str").to_numpy().ravel())
    return frozenset(latin_words(cells))


def walk_data() -> list[State]:
    """The saved list, an upload with a note and warnings, a refused dataset, an unreadable
    file, and the Chinese sample (whose columns text/label and labels positive/negative are data)."""
    from core.samples import load_sample

    app = open_zh("data")
    seen = [state(app, "data: start")]
    rows = chinese_rows(40)[40:] + chinese_rows(10)[:10]  # 40 正面, 10 负面: imbalanced
    rows += rows[:10] + [(rows[0][0], "负面")]  # repeated rows and one conflicting label
    upload(app, "评论.csv", csv_bytes([(t, lab, t) for t, lab in rows], header=("评论", "情感", "评论"),
                                    encoding="gbk"))
    assert app.warning, "the upload should raise warnings"
    seen.append(state(app, "data: upload with warnings"))
    upload(app, "少量.csv", csv_bytes(chinese_rows(10)[8:], header=("评论", "情感")))
    assert app.error, "two 负面 rows should block saving"
    seen.append(state(app, "data: refused"))
    upload(app, "照片.csv", bytes(range(256)) * 20)
    seen.append(state(app, "data: unreadable"))
    app.radio(key="source_mode").set_value("sample")
    rerun(app).selectbox(key="sample").set_value("sample:chinese-reviews")
    rerun(app)
    sample = load_sample("sample:chinese-reviews")[0].frame
    seen.append(state(app, "data: Chinese sample", words_of_data(sample)))
    return seen


def walk_trends() -> list[State]:
    """The newest scoring output (its column names, such as the scorer's label and confidence,
    are the file's), then a day-first upload with time zone offsets read in an order the data
    contradicts, so the date warnings show."""
    app = open_zh("trends")
    columns = frozenset(latin_words(" ".join(app.selectbox(key="trends_col_date").options)))
    seen = [state(app, "trends: scored output", columns)]
    app.selectbox(key="trends_source_zh").set_value("upload")
    rerun(app)
    posts = pd.DataFrame({"日期": ["15/09/2026 01:00+08:00", "07/10/2026 09:00+08:00", "明天"] * 20,
                          "情感": ["负面", "正面", "正面"] * 20, "评论": [text for text, _ in chinese_rows(30)]})
    app.file_uploader(key="trends_upload").set_value(("帖子.csv", posts.to_csv(index=False).encode(), "text/csv"))
    rerun(app).selectbox(key="trends_date_order_zh").set_value("MDY")
    rerun(app)
    assert app.warning, "unreadable dates and offsets should be warned about"
    seen.append(state(app, "trends: day-first upload read month first", words_of_data(posts)))
    return seen


def walk_score() -> list[State]:
    """The finished scoring output: its preview's columns (label, confidence, prob_<label>) are
    the file's own, kept in English for the tools that read it."""
    app = open_zh("score")
    newest = scores.list_scores()[0]
    columns = frozenset(latin_words(" ".join(scoring.scored_frame(newest.id).columns)))
    return [state(app, "score", columns)]


def walk(page: str) -> list[State]:
    if page == "data":
        return walk_data()
    if page == "trends":
        return walk_trends()
    if page == "score":
        return walk_score()
    return [state(open_zh(page), page)]




@pytest.mark.parametrize("page", [
    "home",
    "data",
    "train",
    "results",
    "score",
    "trends",
])
def test_page_shows_no_english_in_chinese(page):
    found = []
    for texts, data_words, charts in walk(page):
        assert texts, f"{page}: nothing was collected"
        found += offences(texts, data_words) + charts
    print(f"\n{page}: {len(found)} strings with English words\n" + "\n".join(found))
    assert not found, f"{page}: {len(found)} strings contain English words (printed above)"
