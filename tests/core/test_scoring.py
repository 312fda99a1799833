import json
import os
import signal

import numpy as np
import pandas as pd
import pytest

from core import jobs
from core.errors import ConfigError, DataError
from core.i18n import render
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


def test_fast_mode_runs_on_onnxruntime_int8_cached_until_the_weights_change(tiny_run, tmp_path, monkeypatch):
    from core.modeling import onnx_backend
    from core.predict import load_predictor, run_folder
    from core.scoring import fast_predictor

    model_dir = run_folder(tiny_run) / "model"
    cached = model_dir / "onnx" / "model.int8.onnx"
    path, _ = review_file(tmp_path, 60)
    _, full = score(tiny_run, path, tmp_path / "full.parquet")
    _, fast = score(tiny_run, path, tmp_path / "fast.parquet", fast=True)
    assert cached.is_file() and fast["fast"] is True and 0.9 <= fast["fast_agreement"] <= 1.0
    a, b = pd.read_parquet(tmp_path / "full.parquet"), pd.read_parquet(tmp_path / "fast.parquet")
    assert (a["label"] == "").tolist() == (b["label"] == "").tolist()  # empty texts stay empty
    assert np.nanmax(np.abs(a["prob_positive"] - b["prob_positive"])) < 0.05
    predictor = fast_predictor(load_predictor(tiny_run), tiny_run)
    assert predictor.kind == "onnx" and predictor.labels == ["negative", "positive"]

    def no_export(*_args, **_kwargs):
        raise AssertionError("the cached int8 model should have been reused")

    with monkeypatch.context() as patched:
        patched.setattr(onnx_backend, "write_model", no_export)
        _, again = score(tiny_run, path, tmp_path / "again.parquet", fast=True)
    assert again["fast_agreement"] == fast["fast_agreement"]
    weights = model_dir / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # retrained in place
    before = cached.stat().st_mtime_ns
    score(tiny_run, path, tmp_path / "rebuilt.parquet", fast=True)
    assert cached.stat().st_mtime_ns != before
    assert not [p for p in cached.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


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
    assert shown.done == shown.total == 3000 and shown.unit == "rows"


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
    assert status["status"] == "failed" and "disk is full" in render(status["reason"])
    assert "磁盘" in render(status["reason"], "zh")  # stored as a message: readable in either language
    assert sorted(p.name for p in (folder / "parts").iterdir()) == ["part-000000.parquet", "part-000001.parquet"]
    assert out.read_text() == "previous output\n"  # untouched
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    run_scoring(folder)  # space freed: continues with the third chunk
    assert pd.read_csv(out, encoding="utf-8-sig")["id"].tolist() == list(range(500))


def test_disk_full_while_writing_the_output_leaves_no_partial_file(baseline_run, tmp_path, monkeypatch):
    from core import score_io
    from core.errors import WorkspaceError

    path, _ = review_file(tmp_path, 50)
    out = tmp_path / "o.parquet"
    folder = create_score(ScoreConfig(run_id=baseline_run, input=str(path), output=str(out)))

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(score_io, "_write", no_space)
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
    assert data["escaped_cells"] == 1 and "1 cells (in 'note')" in render(data["export_notice"])
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert subprocess.run(cmd + ["--overwrite"], capture_output=True, text=True, env=env, timeout=300).returncode == 0


def multiline_file(tmp_path, rows=3432, multiline=29):
    """``rows`` data rows of which ``multiline`` have a quoted text over two lines."""
    texts = [t for t, _ in easy_rows(rows // 2 + 1)][:rows]
    for i in range(multiline):
        texts[i * 100] = texts[i * 100].replace(" ", "\n", 1)
    path = tmp_path / "posts.csv"
    pd.DataFrame({"id": range(rows), "text": texts}).to_csv(path, index=False)
    assert path.read_text().count("\n") == rows + multiline + 1  # physical lines: header + rows + breaks
    return path


def test_progress_counts_data_rows_not_lines_with_rate_and_eta(baseline_run, tmp_path, monkeypatch):
    from core import scoring

    path = multiline_file(tmp_path)
    assert scoring.count_rows(path) == 3432
    statuses = []
    real = scoring.atomic_write_json

    def record(target, obj):
        if target.name == "status.json" and obj.get("status") == "running" and "total_rows" in obj:
            statuses.append(dict(obj))
        real(target, obj)

    monkeypatch.setattr(scoring, "atomic_write_json", record)
    monkeypatch.setattr(scoring, "STATUS_EVERY_S", 0.0)  # every slice writes, so within-chunk updates show
    monkeypatch.setattr(scoring, "PROGRESS_BATCHES", 4)  # slices of 256 rows
    folder, summary = score(baseline_run, path, tmp_path / "o.parquet", chunk_rows=1000)
    assert summary["rows"] == 3432
    assert {s["total_rows"] for s in statuses} == {3432}  # never the 3,461 physical lines
    done = [s["rows_done"] for s in statuses]
    assert done == sorted(done) and done[-1] == 3432 and set(done) > {1000, 2000, 3000, 3432}
    assert any(d % 1000 for d in done[:-1])  # updated within chunks, not only at their ends
    later = [s for s in statuses if s["rows_done"] > 0]
    assert all(s["rows_per_s"] > 0 and s["eta_s"] >= 0 for s in later)
    assert later[-1]["eta_s"] == 0
    chunks = [json.loads(line) for line in (folder / "progress.jsonl").read_text().splitlines()]
    assert [c["rows_done"] for c in chunks if c["event"] == "chunk"] == [1000, 2000, 3000, 3432]
    assert read_json(folder / "status.json")["total_rows"] == 3432


def test_rate_meter_follows_the_recent_speed():
    from core.scoring import RateMeter

    meter = RateMeter(started=0.0, half_life_s=30.0)
    assert meter.update(10.0, 1000) == 100.0 and meter.eta(500) == 5.0
    for step in range(1, 13):  # the machine gets busy: 10 rows/s from now on
        meter.update(10.0 + 10 * step, 1000 + 100 * step)
    # two minutes (four half-lives) later, 1/16 of the old speed's excess is left; the mean since the
    # start (2,200 rows in 130 s) would still say 16.9
    assert meter.rate == pytest.approx(10 + 90 / 16) and meter.eta(100) == pytest.approx(100 / meter.rate)
    assert meter.update(130.0, 2200) == meter.rate  # no time passed: no change
    assert RateMeter(started=0.0).eta(10) is None


def test_csv_output_counts_guarded_cells_and_can_stay_unchanged(baseline_run, tmp_path):
    path, _ = review_file(tmp_path, 40)
    _, guarded = score(baseline_run, path, tmp_path / "g.csv")
    assert guarded["escaped_cells"] == 1 and "1 cells (in 'note')" in render(guarded["export_notice"])
    _, raw = score(baseline_run, path, tmp_path / "r.csv", csv_guard=False)
    assert raw["escaped_cells"] == 0 and raw["export_notice"] is None
    text = (tmp_path / "r.csv").read_bytes()
    assert not text.startswith("\ufeff".encode())
    out = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert out.loc[0, "note"] == "=cmd|' /C calc'!A0"


def test_excel_output_keeps_texts_as_typed_strings(baseline_run, tmp_path):
    from openpyxl import load_workbook

    path, _ = review_file(tmp_path, 20)
    _, summary = score(baseline_run, path, tmp_path / "o.xlsx")
    sheet = load_workbook(tmp_path / "o.xlsx").active
    header = [c.value for c in sheet[1]]
    note = sheet.cell(row=2, column=header.index("note") + 1)
    assert note.value == "=cmd|' /C calc'!A0" and note.data_type == "s"
    assert summary["escaped_cells"] == 0 and summary["cleaned_cells"] == 0


def test_every_output_gets_a_readable_unique_name(baseline_run, tmp_path):
    from core.errors import ConfigError
    from core.runs import list_runs
    from core.scoring import check_display_name

    path, _ = review_file(tmp_path, 20, "posts.csv")
    first = create_score(ScoreConfig(run_id=baseline_run, input=str(path)))
    second = create_score(ScoreConfig(run_id=baseline_run, input=str(path), source_name="posts.csv"))
    named = create_score(ScoreConfig(run_id=baseline_run, input=str(path), name="  Weekly posts  "))
    names = [read_json(f / "score.json")["name"] for f in (first, second, named)]
    run_name = next(r["name"] for r in list_runs() if r["id"] == baseline_run)  # "easy · TF-IDF baseline · 29 Nov"
    assert names == [f"{run_name} → posts.csv", f"{run_name} → posts.csv (2)", "Weekly posts"]
    for bad in ("", "   ", "a\nb", "x" * 121):
        with pytest.raises(ConfigError):
            check_display_name(bad)


def test_cli_lists_renames_and_deletes_with_confirmation(baseline_run, tmp_path, workspace):
    import subprocess
    import sys

    from core.runs import list_runs

    path, _ = review_file(tmp_path, 20)
    folder, _ = score(baseline_run, path, tmp_path / "o.csv")
    env = {**os.environ, "OPINIONLAB_HOME": str(workspace)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "core", "score", *args], capture_output=True, text=True,
                              env=env, timeout=300)

    listed = json.loads(cli("list", "--json").stdout.strip().splitlines()[-1])["scores"]
    run_name = next(r["name"] for r in list_runs() if r["id"] == baseline_run)
    assert [(s["id"], s["name"], s["status"]) for s in listed] == [(folder.name, f"{run_name} → reviews.csv",
                                                                    "succeeded")]
    renamed = cli("rename", folder.name, "Shop", "reviews", "--json")
    assert renamed.returncode == 0 and json.loads(renamed.stdout.splitlines()[-1])["name"] == "Shop reviews"
    refused = cli("delete", folder.name)
    assert refused.returncode == 2 and "Nothing was deleted" in refused.stderr
    assert "20 scored rows" in refused.stderr and "--yes" in refused.stderr and folder.exists()
    assert cli("rename", folder.name).returncode == 2  # no name given: usage
    deleted = cli("delete", folder.name, "--yes", "--json")
    assert deleted.returncode == 0 and json.loads(deleted.stdout.splitlines()[-1])["rows"] == 20
    assert not folder.exists() and (tmp_path / "o.csv").exists()  # the output outside the workspace stays


def test_a_workbook_is_read_once_to_count_and_score_it(baseline_run, tmp_path, monkeypatch):
    from core import score_io

    path, _ = review_file(tmp_path, 40, "in.xlsx")
    folder = create_score(ScoreConfig(run_id=baseline_run, input=str(path), chunk_rows=15))
    reads = []
    real = score_io.read_table
    monkeypatch.setattr(score_io, "read_table", lambda *args, **kw: reads.append(args) or real(*args, **kw))
    assert run_scoring(folder)["rows"] == 40
    assert len(reads) == 1 and read_json(folder / "status.json")["total_rows"] == 40
