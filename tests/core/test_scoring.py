import os
import signal

import numpy as np
import pandas as pd
import pytest

from core import jobs
from core.errors import ConfigError, DataError
from core.scoring import ScoreConfig, create_score, iter_chunks, run_scoring
from core.training import TrainConfig, create_run, run_training
from core.workspace import Registry, read_json
from tests.conftest import easy_rows
from tests.core.test_jobs import wait_done, wait_for


@pytest.fixture
def tiny_run(easy_dataset, tiny_model_dir):
    folder = create_run(TrainConfig(dataset="easy", model=str(tiny_model_dir), epochs=2, batch_size=8, max_length=16,
                                    learning_rate=1e-2))
    run_training(folder)
    return folder.name


def review_file(tmp_path, n=230, name="reviews.csv"):
    rows = [t for t, _ in easy_rows(n // 2 + 1)][:n]
    frame = pd.DataFrame({"id": range(n), "review": rows, "note": ["=cmd|' /C calc'!A0"] + ["ok"] * (n - 1)})
    frame.loc[7, "review"] = ""
    frame.loc[8, "review"] = "   "
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    elif name.endswith(".xlsx"):
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path, frame


def score(run_id, path, out, **kw):
    folder = create_score(ScoreConfig(run_id=run_id, input=str(path), output=str(out), **kw))
    return folder, run_scoring(folder)


def test_rows_order_probabilities_and_empty_texts(baseline_run, tmp_path):
    path, frame = review_file(tmp_path)
    folder, summary = score(baseline_run, path, tmp_path / "out.parquet", chunk_rows=50)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert len(out) == len(frame) == summary["rows"] == 230
    assert out["id"].astype(int).tolist() == list(range(230))
    assert summary["empty"] == 2 and summary["scored"] == 228
    assert out.loc[7, "label"] == "" and np.isnan(out.loc[7, "confidence"])
    filled = out[out["label"] != ""]
    assert np.allclose(filled[["prob_negative", "prob_positive"]].sum(axis=1), 1.0, atol=1e-5)
    assert set(filled["label"]) <= {"negative", "positive"}
    assert {"rows", "scored", "empty", "output", "label_counts", "rows_per_s"} <= set(summary)


def test_chunked_and_unchunked_give_identical_results(tiny_run, tmp_path):
    path, _ = review_file(tmp_path)
    score(tiny_run, path, tmp_path / "a.parquet", chunk_rows=17)
    score(tiny_run, path, tmp_path / "b.parquet", chunk_rows=10_000)
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    assert a["label"].tolist() == b["label"].tolist()
    assert np.allclose(a["prob_positive"].fillna(-1), b["prob_positive"].fillna(-1), atol=1e-5)


def test_csv_output_escapes_formulas_in_text_columns_only(baseline_run, tmp_path):
    path, _ = review_file(tmp_path)
    score(baseline_run, path, tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert out.loc[0, "note"] == "'=cmd|' /C calc'!A0"
    assert out.loc[1, "note"] == "ok"
    assert not out["confidence"].str.startswith("'").any()


@pytest.mark.parametrize("name", ["in.parquet", "in.xlsx", "in.tsv"])
def test_other_input_formats(baseline_run, tmp_path, name):
    path, frame = review_file(tmp_path, 40, name)
    if name.endswith(".tsv"):
        frame.to_csv(path, sep="\t", index=False)
    _, summary = score(baseline_run, path, tmp_path / "out.xlsx")
    assert summary["rows"] == 40 and pd.read_excel(tmp_path / "out.xlsx").shape[0] == 40


def test_fast_mode_reports_agreement(tiny_run, tmp_path):
    path, _ = review_file(tmp_path, 60)
    _, summary = score(tiny_run, path, tmp_path / "out.parquet", fast=True)
    assert 0.0 <= summary["fast_agreement"] <= 1.0 and summary["fast"] is True


def test_bad_inputs(baseline_run, easy_dataset, tmp_path):
    path, _ = review_file(tmp_path, 20)
    with pytest.raises(DataError, match="No text column 'nope'"):
        create_score(ScoreConfig(run_id=baseline_run, input=str(path), output=str(tmp_path / "o.csv"), text_col="nope"))
    empty = tmp_path / "empty_texts.csv"
    pd.DataFrame({"text": ["", " "], "x": ["1", "2"]}).to_csv(empty, index=False)
    with pytest.raises(DataError, match="is empty"):
        create_score(ScoreConfig(run_id=baseline_run, input=str(empty), output="", text_col="text"))
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(DataError, match="holds only numbers"):
        create_score(ScoreConfig(run_id=baseline_run, input=str(numbers), output="", text_col="a"))
    (tmp_path / "exists.csv").write_text("x")
    with pytest.raises(ConfigError, match="already exists.*--overwrite"):
        create_score(ScoreConfig(run_id=baseline_run, input=str(path), output=str(tmp_path / "exists.csv")))
    failed = create_run(TrainConfig(dataset="easy", method="baseline"))
    with pytest.raises(ConfigError, match="no usable model"):
        create_score(ScoreConfig(run_id=failed.name, input=str(path), output=""))


def test_corrupt_file_half_way_keeps_scored_rows(baseline_run, tmp_path):
    good = "text,n\n" + "".join(f"great film {i},{i}\n" for i in range(120))
    path = tmp_path / "broken.csv"
    path.write_text(good + "bad,row,with,extra\n" + "awful film,1\n" * 10)
    folder = create_score(ScoreConfig(run_id=baseline_run, input=str(path), output="", chunk_rows=50))
    with pytest.raises(DataError, match="damaged after row 100"):
        run_scoring(folder)
    assert len(list((folder / "parts").glob("part-*.parquet"))) == 2
    assert read_json(folder / "status.json")["status"] == "failed"


def test_resume_after_kill_gives_every_row_once(tiny_run, tmp_path):
    path, frame = review_file(tmp_path, 3000)
    folder = create_score(ScoreConfig(run_id=tiny_run, input=str(path), output=str(tmp_path / "o.parquet"),
                                      chunk_rows=100, batch_size=8))
    job = jobs.submit(folder, kind="score")
    wait_for(lambda: len(list((folder / "parts").glob("part-*.parquet"))) >= 3, what="three chunks")
    os.kill(Registry().job(job["id"])["pid"], signal.SIGKILL)
    assert wait_for(lambda: jobs.get(job["id"])["status"] == "interrupted", what="interrupted")
    jobs.resume(job["id"])
    assert wait_done(job["id"]) == "succeeded"
    out = pd.read_parquet(tmp_path / "o.parquet")
    assert out["id"].astype(int).tolist() == list(range(3000))
    shown = jobs.describe(Registry().job(job["id"]))
    assert shown["step"] == shown["total_steps"] == 3000


def test_disk_full_while_scoring_keeps_the_scored_parts_and_resumes(baseline_run, tmp_path, monkeypatch):
    from core.errors import WorkspaceError

    path, frame = review_file(tmp_path, 500)
    out = tmp_path / "o.csv"
    out.write_text("previous output\n")
    folder = create_score(ScoreConfig(run_id=baseline_run, input=str(path), output=str(out), chunk_rows=100,
                                      overwrite=True))
    real = pd.DataFrame.to_parquet
    calls = {"n": 0}

    def full_after_two(self, target, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(self, target, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_after_two)
    with pytest.raises(WorkspaceError, match="disk is full.*free some space"):
        run_scoring(folder)
    status = read_json(folder / "status.json")
    assert status["status"] == "failed" and "disk is full" in status["reason"]
    assert sorted(p.name for p in (folder / "parts").iterdir()) == ["part-000000.parquet", "part-000001.parquet"]
    assert out.read_text() == "previous output\n"  # untouched
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    run_scoring(folder)  # space freed: continues with the third chunk
    assert pd.read_csv(out, encoding="utf-8-sig")["id"].tolist() == list(range(500))


def test_disk_full_while_writing_the_output_leaves_no_partial_file(baseline_run, tmp_path, monkeypatch):
    from core import scoring
    from core.errors import WorkspaceError

    path, _ = review_file(tmp_path, 50)
    out = tmp_path / "o.parquet"
    folder = create_score(ScoreConfig(run_id=baseline_run, input=str(path), output=str(out)))

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scoring, "_write", no_space)
    with pytest.raises(WorkspaceError, match="disk is full"):
        run_scoring(folder)
    assert not out.exists() and not list(tmp_path.glob(".o.parquet*"))
    assert read_json(folder / "status.json")["status"] == "failed"


def test_iter_chunks_sizes(tmp_path):
    path, _ = review_file(tmp_path, 105)
    assert [len(c) for c in iter_chunks(path, 50)] == [50, 50, 5]


def test_two_shards_merge_in_order(baseline_run, tmp_path):
    path, frame = review_file(tmp_path, 230)
    folder = create_score(ScoreConfig(run_id=baseline_run, input=str(path), output=str(tmp_path / "o.csv"),
                                      chunk_rows=40))
    first = run_scoring(folder, shard=(0, 2))
    assert first["status"] == "partial"
    summary = run_scoring(folder, shard=(1, 2))
    assert summary["rows"] == 230
    out = pd.read_csv(tmp_path / "o.csv", encoding="utf-8-sig")
    assert out["id"].tolist() == list(range(230))


def test_cli_score_json_and_overwrite(baseline_run, tmp_path, workspace):
    import json
    import subprocess
    import sys

    path, _ = review_file(tmp_path, 30)
    env = {**os.environ, "OPINIONLAB_HOME": str(workspace)}
    cmd = [sys.executable, "-m", "core", "score", baseline_run, "--input", str(path), "--output",
           str(tmp_path / "o.csv"), "--json"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout.strip().splitlines()[-1])
    assert {"rows", "scored", "empty", "output", "label_counts", "rows_per_s"} <= set(data)
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert subprocess.run(cmd + ["--overwrite"], capture_output=True, text=True, env=env, timeout=300).returncode == 0
