"""Start without labels: an unlabelled export → a zero-shot run → the file scored → trends,
without labelling a row."""

import pandas as pd
import pytest

from core import jobs, scores, scoring, trends, unlabelled
from core.errors import ConfigError, DataError
from core.workspace import Registry, read_json
from core.zeroshot import form_descriptions, run_zeroshot
from tests.core.e5_model import converted_folder

POSTS = ["质量非常好，很满意，会再来买", "客服态度恶劣，再也不买了", "物美价廉，五星好评",
         "房间又脏又吵，非常失望", "服务热情周到，强烈推荐", "质量太差了，用了两天就坏了"]


def export_bytes() -> bytes:
    """A GB18030 CSV export with no label column: dates, a source and the posts."""
    frame = pd.DataFrame({"发布时间": [f"2026-03-{day:02d}" for day in (2, 3, 9, 10, 16, 17)],
                          "来源": ["微博", "论坛"] * 3, "内容": POSTS})
    return frame.to_csv(index=False).encode("gb18030")


def test_an_unlabelled_export_goes_to_scored_trends_without_labelling(workspace, monkeypatch):
    monkeypatch.setattr(jobs, "slots", lambda lane: 0)  # every job waits: this test carries each one out
    registry = Registry()
    boxes = form_descriptions(["正面", "负面"], POSTS)
    started = unlabelled.start(export_bytes(), "导出.csv", "内容", boxes, registry, "analyst",
                               model=str(converted_folder()), lang="zh")
    assert started.job["status"] == "queued" and started.job["lane"] == jobs.QUICK
    config = read_json(started.run_dir / "config.json")
    assert config["source"] == "导出.csv" and config["score"]["text_col"] == "内容"
    assert registry.run(started.run_dir.name)["dataset"] == "导出.csv"

    assert unlabelled.queue_scoring(started.run_dir, registry) is None  # the run has not succeeded yet
    run_zeroshot(started.run_dir, registry)
    score_dir = unlabelled.queue_scoring(started.run_dir, registry)
    assert unlabelled.queue_scoring(started.run_dir, registry) is None  # once only
    job = registry.job(score_dir.name)
    assert job["kind"] == "score" and job["status"] == "queued" and job["created_by"] == "analyst"
    entry = scores.get_score(score_dir.name, registry)
    assert entry.name.endswith("导出.csv") and entry.status == "queued"

    result = scoring.run_scoring(score_dir)
    assert result["label_counts"] == {"正面": 3, "负面": 3}
    frame = trends.load_frame(score_dir.name)
    prepared = trends.prepare(frame, trends.Columns(date="发布时间", label="label", text="内容"),
                              trends.TrendSettings(freq="W"))
    series = trends.aggregate(prepared)
    assert series["volume"].tolist() == [2, 2, 2]
    assert series[["正面", "负面"]].sum().tolist() == [3, 3]


def test_bad_input_is_refused_before_anything_is_created(workspace, tmp_path):
    registry = Registry()
    with pytest.raises(ConfigError, match="'负面' has an empty description"):
        unlabelled.start(export_bytes(), "导出.csv", "内容", {"正面": "好评", "负面": "  "}, registry)
    numbers = pd.DataFrame({"id": range(20), "内容": range(20)}).to_csv(index=False).encode()
    with pytest.raises(DataError, match="内容"):
        unlabelled.start(numbers, "numbers.csv", "内容", {"正面": "好评", "负面": "差评"}, registry,
                         model=str(converted_folder()))
    assert registry.runs() == [] and registry.jobs() == []
    assert not any((registry.root / "uploads").glob("*/*"))
