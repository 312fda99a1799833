"""Scoring outputs as a person manages them: one id, a name, a list, deletes that say what goes,
and the model offered first."""

import json
import os

import pandas as pd
import pytest

from core import jobs, scores
from core.errors import ConfigError, NotFoundError
from core.i18n import render
from core.runs import list_runs
from core.scoring import ScoreConfig, create_score, run_scoring, stage_input
from core.workspace import Registry, read_json
from tests.conftest import easy_rows


def scored(run_id, tmp_path, name="posts.csv", rows=12, **kw):
    path = tmp_path / name
    pd.DataFrame({"text": [t for t, _ in easy_rows(rows // 2)]}).to_csv(path, index=False)
    folder = create_score(ScoreConfig(run_id=run_id, input=str(path), **kw))
    run_scoring(folder)
    return folder


def test_list_shows_names_states_and_one_id_per_job(baseline_run, tmp_path):
    done = scored(baseline_run, tmp_path)
    queued = create_score(ScoreConfig(run_id=baseline_run, input=str(tmp_path / "posts.csv")))
    registry = Registry()
    registry.add_job(queued.name, "score", queued.name, str(queued / "score.json"), None)  # as jobs.submit(job_id=)
    listed = scores.list_scores()
    assert [e.id for e in listed] == [queued.name, done.name]  # newest first
    assert listed[0].job_id == queued.name and listed[0].status == "queued"
    assert listed[1].status == "succeeded" and listed[1].job_id is None and listed[1].rows_done == 12
    run_name = next(r["name"] for r in list_runs() if r["id"] == baseline_run)  # "easy · TF-IDF baseline · 29 Nov"
    assert run_name.startswith("easy · ")
    assert listed[1].name == f"{run_name} → posts.csv" and listed[1].model == run_name
    assert listed[1].summary["rows"] == 12 and listed[1].source_name == "posts.csv"


def test_an_older_registrys_two_ids_stay_readable(baseline_run, tmp_path):
    folder = scored(baseline_run, tmp_path)
    config = read_json(folder / "score.json")
    for key in ("name", "source_name", "created_at", "csv_guard"):  # a score.json from before names
        config.pop(key)
    (folder / "score.json").write_text(json.dumps(config))
    registry = Registry()
    registry.add_job("job_0123456789ab", "score", folder.name, str(folder / "score.json"), None)
    registry.update_job("job_0123456789ab", status="succeeded")
    entry = scores.get_score("job_0123456789ab")
    assert (entry.id, entry.job_id, entry.status, entry.name) == (folder.name, "job_0123456789ab", "succeeded",
                                                                  folder.name)
    assert scores.rename_score("job_0123456789ab", "Old posts").name == "Old posts"
    scores.delete_score(folder.name)
    assert registry.job("job_0123456789ab") is None and not folder.exists()
    with pytest.raises(NotFoundError, match="score list"):
        scores.get_score(folder.name)


def test_rename_refuses_what_cannot_be_a_name(baseline_run, tmp_path):
    folder = scored(baseline_run, tmp_path)
    assert scores.rename_score(folder.name, "  周报 · 评论  ").name == "周报 · 评论"
    with pytest.raises(ConfigError, match="cannot be a name"):
        scores.rename_score(folder.name, "two\nlines")
    assert scores.file_stem(scores.get_score(folder.name)) == "周报-评论"


def test_delete_says_what_goes_and_keeps_what_is_not_its_own(baseline_run, tmp_path):
    registry = Registry()
    upload = stage_input(pd.DataFrame({"text": [t for t, _ in easy_rows(5)]}).to_csv(index=False).encode(), "a.csv")
    own = create_score(ScoreConfig(run_id=baseline_run, input=str(upload), output=str(tmp_path / "out.csv"),
                                   source_name="a.csv"))
    run_scoring(own)
    plan = scores.removal_plan(own.name)
    assert plan.rows == 10 and plan.folder == own and plan.upload == upload.parent
    assert plan.files == len([p for p in own.rglob("*") if p.is_file()]) + 1 and plan.size > 0
    assert plan.kept_output == str((tmp_path / "out.csv").resolve())
    text = render(plan.message(registry.root))
    assert "10 scored rows" in text and f"scores/{own.name}" in text and f"uploads/{upload.parent.name}" in text
    assert "out.csv was written where you asked and stays" in text
    assert "10 行打分结果" in render(plan.message(registry.root), "zh")
    shared = create_score(ScoreConfig(run_id=baseline_run, input=str(upload)))  # a second job reads the same copy
    assert scores.removal_plan(own.name).upload is None
    scores.delete_score(own.name)
    assert not own.exists() and upload.exists() and (tmp_path / "out.csv").exists()
    registry.add_job(shared.name, "score", shared.name, str(shared / "score.json"), None)
    registry.update_job(shared.name, status="running", pid=os.getpid())
    with pytest.raises(ConfigError, match="running: stop it before deleting it"):
        scores.delete_score(shared.name)
    assert shared.exists()


def test_a_queued_scoring_job_is_told_its_place_in_its_own_lane(workspace):
    registry = Registry()
    for job_id in ("a", "b", "c"):
        registry.add_job(job_id, "score", job_id, "/nowhere", None)
    registry.update_job("a", status="running", pid=os.getpid())
    assert [render(jobs.queue_message(registry.job(j), registry)) for j in ("b", "c")] == [
        "queued (1st in line)", "queued (2nd in line)"]
    jobs.move("c", "up", registry)
    assert render(jobs.queue_message(registry.job("c"), registry), "zh") == "排队中（第 1 位）"



def run(run_id, dataset, accuracy, created_at, status="succeeded"):
    return {"id": run_id, "dataset": dataset, "accuracy": accuracy, "created_at": created_at, "status": status}


def test_preferred_run_is_the_best_of_the_most_recently_used_dataset():
    runs = [run("old_best", "movies", 0.90, 1), run("shop_a", "shop", 0.70, 2), run("shop_b", "shop", 0.80, 3),
            run("shop_c", "shop", None, 4), run("movies_new", "movies", 0.60, 5, status="failed")]
    assert scores.preferred_run(runs) == "shop_b"  # failed runs do not count as a use
    used = [scores.ScoreEntry(id="s", name="n", status="succeeded", run_id="old_best", created_at=10)]
    assert scores.preferred_run(runs, used) == "old_best"  # scoring with a movies model is the newest use
    ties = [run("a", "d", 0.8, 1), run("b", "d", 0.8, 2)]
    assert scores.preferred_run(ties) == "b"
    assert scores.preferred_run([run("x", "d", None, 1, status="running")]) is None
