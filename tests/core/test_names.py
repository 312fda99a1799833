"""Run names: made from the run's settings in the reader's language, editable, display text only;
and what deleting a run would remove."""

import datetime as dt
import json

import pytest

from core import runs
from core.cli import main
from core.errors import ConfigError, NotFoundError
from core.i18n import render
from core.training import TrainConfig, create_run, delete_run
from core.workspace import Registry


def at(year, month, day):
    return dt.datetime(year, month, day, 12, 0).timestamp()


THIS_YEAR = dt.date.today().year


def row(method="lora", model="default", dataset="movie-reviews", created_at=None, run_id="run_1", name=None):
    return {"id": run_id, "dataset": dataset, "name": name, "info": {"method": method, "model": model},
            "created_at": created_at or at(THIS_YEAR, 11, 28)}


def test_made_up_names_in_english_and_chinese():
    assert runs.auto_name(row()) == "movie-reviews · LoRA · MiniLM · 28 Nov"
    assert runs.auto_name(row(), "zh") == "movie-reviews · LoRA · MiniLM · 11月28日"
    assert runs.auto_name(row(method="full")) == "movie-reviews · full fine-tune · MiniLM · 28 Nov"
    assert runs.auto_name(row(method="baseline"), "zh") == "movie-reviews · TF-IDF 基线 · 11月28日"
    last_year = row(created_at=at(THIS_YEAR - 1, 3, 2))
    assert runs.auto_name(last_year) == f"movie-reviews · LoRA · MiniLM · 2 Mar {THIS_YEAR - 1}"
    assert runs.auto_name(last_year, "zh").endswith(f"{THIS_YEAR - 1}年3月2日")
    assert runs.auto_name(row(model="bert-base-chinese/")).split(" · ")[2] == "bert-base-chinese"
    assert runs.auto_name(row(model="google-bert/bert-base-chinese")).split(" · ")[2] == "bert-base-chinese"
    assert runs.auto_name(row(model="/models/my-encoder")).split(" · ")[2] == "my-encoder"


def test_equal_made_up_names_are_numbered_in_order_of_creation_and_user_names_win():
    listed = [row(run_id="run_b", created_at=at(THIS_YEAR, 11, 28) + 60), row(run_id="run_a"),
              row(run_id="run_c", created_at=at(THIS_YEAR, 11, 28) + 120, name="my best run")]
    names = runs.run_names(listed)
    assert names == {"run_a": "movie-reviews · LoRA · MiniLM · 28 Nov",
                     "run_b": "movie-reviews · LoRA · MiniLM · 28 Nov (2)", "run_c": "my best run"}


@pytest.mark.parametrize("typed, kept", [("  Trial   with  LoRA ", "Trial with LoRA"), ("", None), (None, None),
                                         ("../../etc/passwd", "../../etc/passwd"), ("评论 · 第二轮", "评论 · 第二轮"),
                                         ("two\nlines\tand a tab", "two lines and a tab")])
def test_typed_names_are_tidied(typed, kept):
    assert runs.clean_run_name(typed) == kept


@pytest.mark.parametrize("typed, key", [("x" * 81, "runs.err.name_long"), ("bell\x07", "runs.err.name_chars"),
                                        ("\x1b[31mred", "runs.err.name_chars"), ("a\u202eb", "runs.err.name_chars")])
def test_bad_names_are_refused_with_a_message(typed, key):
    with pytest.raises(ConfigError) as caught:
        runs.clean_run_name(typed)
    assert caught.value.message.key == key
    assert render(caught.value, "zh") != str(caught.value)


def test_rename_list_and_delete_keep_using_the_id(easy_dataset, baseline_run):
    registry = Registry()
    made_up = runs.run_name(baseline_run, registry)
    assert made_up.startswith("easy · TF-IDF baseline · ")
    assert runs.rename_run(baseline_run, "../../outside", registry) == "../../outside"
    listed = runs.list_runs(registry)
    assert [(r["id"], r["name"], r["custom_name"], r["dataset"]) for r in listed] == [
        (baseline_run, "../../outside", True, "easy")]
    assert {"id", "dataset", "status", "method", "model", "accuracy", "created_at"} <= set(listed[0])
    assert (registry.root / "runs" / baseline_run / "model").is_dir()  # the name made no folder
    assert not (registry.root.parent / "outside").exists()
    assert runs.rename_run(baseline_run, "   ", registry) == made_up  # blank: the made-up name again
    with pytest.raises(NotFoundError):
        runs.rename_run("run_nonexistent", "x", registry)
    delete_run(baseline_run, registry)
    assert runs.list_runs(registry) == []


def test_cli_rename_and_list(easy_dataset, baseline_run, capsys):
    assert main(["runs", "rename", baseline_run, "first try", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"id": baseline_run, "name": "first try"}
    assert main(["runs", "list"]) == 0
    assert "first try" in capsys.readouterr().out
    assert main(["runs", "rename", baseline_run, "x" * 90]) == 2
    assert "90 characters" in capsys.readouterr().err
    assert main(["runs", "rename", "run_missing", "x"]) == 2
    assert "no run 'run_missing'" in capsys.readouterr().err


def test_deletion_plan_says_what_goes_and_what_stays(easy_dataset, baseline_run):
    import pandas as pd

    registry = Registry()
    score = registry.root / "scores" / "score_1"
    score.mkdir(parents=True)
    (score / "score.json").write_text(json.dumps({"run_id": baseline_run, "input": "x.csv"}))
    plan = runs.deletion_plan(baseline_run, registry)
    test_rows = len(pd.read_parquet(registry.root / "runs" / baseline_run / "predictions_test.parquet"))
    assert plan.has_outputs and plan.size_bytes > 0
    assert [m.key for m in plan.removes] == ["runs.delete.model", "runs.delete.predictions", "runs.delete.metrics",
                                             "runs.delete.record"]
    assert render(plan.removes[1]) == f"{test_rows:,} test-split predictions"
    assert render(plan.keeps[0]) == "1 scored file(s) made with this model stay on the Score page"
    assert render(plan.keeps[0], "zh") == "用此模型打分得到的 1 个文件会保留在“打分”页面"
    fresh = create_run(TrainConfig(dataset="easy", method="baseline"), registry)
    assert not runs.deletion_plan(fresh.name, registry).has_outputs  # nothing made yet: no confirmation


def test_sizes_read_the_same_in_every_language():
    assert [runs.size_text(n) for n in (0, 999, 1000, 2_500_000, 3_210_000_000)] == [
        "0 B", "999 B", "1.0 KB", "2.5 MB", "3.2 GB"]
