import os

import pandas as pd

from core import scoring
from core.runs import list_runs
from core.training import TrainConfig, create_run, run_training
from core.workspace import Registry, atomic_write_json, read_json
from tests.conftest import easy_rows
from tests.core.test_jobs import wait_done
from tests.pages.conftest import open_page


def name_of(run_id: str) -> str:
    """The run's readable name, as the Score page shows it ("easy · TF-IDF baseline · 29 Nov")."""
    return next(r["name"] for r in list_runs() if r["id"] == run_id)


def test_no_models(app):
    open_page(app, "pages/score.py")
    assert any("No finished runs yet" in i.value for i in app.info)


def test_upload_score_and_see_summary_and_downloads(app, baseline_run):
    open_page(app, "pages/score.py")
    texts = [t for t, _ in easy_rows(15)]
    texts[3], texts[4] = "=1+1", "@alice great product"
    data = pd.DataFrame({"id": range(30), "comment": texts}).to_csv(index=False).encode()
    app.file_uploader(key="score_upload").set_value(("shop.csv", data, "text/csv")).run()
    assert not app.exception
    col = next(s for s in app.selectbox if s.key.startswith("score_col_"))
    assert col.value == "comment"
    app.button(key="score_start").click().run()
    assert any(f"Started scoring “{name_of(baseline_run)} → shop.csv”" in s.value for s in app.success)
    job = [j for j in Registry().jobs() if j["kind"] == "score"][0]
    assert job["id"] == job["target"]  # one id: the score id is the job id
    assert wait_done(job["id"]) == "succeeded"
    app.run()
    assert not app.exception
    assert [m.label for m in app.metric][:2] == ["Rows scored", "Empty texts"]
    assert app.metric[0].value == "30"
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["CSV for Excel", "Unchanged CSV", "Excel (.xlsx)", "Parquet"]
    captions = " ".join(c.value for c in app.caption)
    assert "1 cells (in 'comment') start like a spreadsheet formula" in captions  # "=1+1", not "@alice …"
    assert "The unchanged CSV, Excel (.xlsx) and Parquet downloads keep them as they are" in captions


def test_saved_dataset_as_input(app, baseline_run):
    open_page(app, "pages/score.py")
    app.radio(key="score_source_en").set_value("dataset").run()
    app.button(key="score_start").click().run()
    job = [j for j in Registry().jobs() if j["kind"] == "score"][0]
    assert wait_done(job["id"]) == "succeeded"
    app.run()
    assert app.selectbox(key="score_open").format_func(job["id"]) == f"{name_of(baseline_run)} → dataset easy"


def test_file_without_text_shows_message(app, baseline_run):
    open_page(app, "pages/score.py")
    app.file_uploader(key="score_upload").set_value(("nums.csv", b"a,b\n1,2\n3,4\n", "text/csv")).run()
    assert any("No column of this file holds texts" in e.value for e in app.error)
    assert not any(b.key == "score_start" for b in app.button)


def test_model_list_shows_dataset_and_accuracy_and_offers_the_best_run(app, baseline_run):
    newer = create_run(TrainConfig(dataset="easy", method="baseline"))
    run_training(newer)
    status = read_json(newer / "status.json")
    atomic_write_json(newer / "status.json", {**status, "metrics": {**status["metrics"], "accuracy": 0.5}})
    open_page(app, "pages/score.py")
    box = app.selectbox(key="score_run_en")
    assert box.format_func(newer.name) == f"{name_of(newer.name)} — dataset easy, test accuracy 0.500"
    assert name_of(newer.name).endswith("(2)")  # two runs with the same automatic name are told apart
    assert box.value == baseline_run  # the newest run is not the best one


def fake_running_score(run_id, tmp_path):
    """A scoring job in the middle of a file: its worker (this test process) is alive."""
    path = tmp_path / "posts.csv"
    pd.DataFrame({"text": [t for t, _ in easy_rows(5)]}).to_csv(path, index=False)
    folder = scoring.create_score(scoring.ScoreConfig(run_id=run_id, input=str(path)))
    registry = Registry()
    registry.add_job(folder.name, "score", folder.name, str(folder / "score.json"), None)
    registry.update_job(folder.name, status="running", pid=os.getpid())
    atomic_write_json(folder / "status.json", {"status": "running", "rows_done": 1200, "total_rows": 3432,
                                               "rows_per_s": 58.6, "eta_s": 38.1})
    return folder


def test_a_running_job_shows_rows_rate_and_time_left(app, baseline_run, tmp_path):
    fake_running_score(baseline_run, tmp_path)
    open_page(app, "pages/score.py")
    bars = app.get("progress")
    assert [b.proto.text for b in bars] == ["1,200 of 3,432 rows · 58.6 rows/s · about 38 s left"]
    assert any(b.key.startswith("stop_") for b in app.button) and not any(b.key.startswith("sdel_") for b in app.button)
    app.session_state["lang"] = "zh"
    app.run()
    assert [b.proto.text for b in app.get("progress")] == ["1,200 / 3,432 行 · 58.6 行/秒 · 预计还需 38 秒"]


def test_delete_asks_first_and_says_what_goes(app, baseline_run, tmp_path):
    folder = fake_running_score(baseline_run, tmp_path)
    Registry().update_job(folder.name, status="failed", pid=None)
    open_page(app, "pages/score.py")
    app.button(key=f"sdel_{folder.name}").click().run()
    warning = next(w.value for w in app.warning if "Delete “" in w.value)
    assert f"scores/{folder.name}" in warning and "0 scored rows" in warning
    app.button(key=f"sdel_no_{folder.name}").click().run()
    assert folder.exists() and not any("Delete “" in w.value for w in app.warning)
    app.button(key=f"sdel_{folder.name}").click().run()
    app.button(key=f"sdel_yes_{folder.name}").click().run()
    assert not folder.exists() and Registry().job(folder.name) is None
    assert any(f"Deleted “{name_of(baseline_run)} → posts.csv”" in s.value for s in app.success)


def test_rename_a_finished_output(app, baseline_run, tmp_path):
    path = tmp_path / "posts.csv"
    pd.DataFrame({"text": [t for t, _ in easy_rows(5)]}).to_csv(path, index=False)
    folder = scoring.create_score(scoring.ScoreConfig(run_id=baseline_run, input=str(path)))
    scoring.run_scoring(folder)
    open_page(app, "pages/score.py")
    assert any(c.value.startswith("The CSV for Excel changes no cell") for c in app.caption)
    app.text_input(key=f"sname_{folder.name}").set_value("Weekly shop posts")
    app.button(key=f"FormSubmitter:rename_{folder.name}-Rename").click().run()
    assert not app.exception
    assert any("Renamed to “Weekly shop posts”" in s.value for s in app.success)
    assert app.selectbox(key="score_open").format_func(folder.name) == "Weekly shop posts"


def test_scoring_the_same_upload_again_after_deleting_its_output(app, baseline_run):
    open_page(app, "pages/score.py")
    data = pd.DataFrame({"comment": [t for t, _ in easy_rows(4)]}).to_csv(index=False).encode()
    app.file_uploader(key="score_upload").set_value(("shop.csv", data, "text/csv")).run()
    app.button(key="score_start").click().run()
    first = [j for j in Registry().jobs() if j["kind"] == "score"][0]["id"]
    assert wait_done(first) == "succeeded"
    app.run()
    app.button(key=f"sdel_{first}").click().run()
    assert any("the copy of the input kept for this job" in w.value for w in app.warning)
    app.button(key=f"sdel_yes_{first}").click().run()
    app.button(key="score_start").click().run()  # the widget still holds the file whose copy went
    assert not app.error and not app.exception
    second = [j for j in Registry().jobs() if j["kind"] == "score"][0]["id"]
    assert second != first and wait_done(second) == "succeeded"


def test_ray_engine_is_offered_only_with_an_address_and_an_unreachable_one_says_so(app, baseline_run, monkeypatch,
                                                                                  tmp_path):
    import socket

    monkeypatch.delenv("OPINIONLAB_RAY_ADDRESS", raising=False)
    monkeypatch.setenv("OPINIONLAB_SECRETS", str(tmp_path / "none.toml"))
    open_page(app, "pages/score.py")
    data = pd.DataFrame({"comment": [t for t, _ in easy_rows(5)]}).to_csv(index=False).encode()
    app.file_uploader(key="score_upload").set_value(("shop.csv", data, "text/csv")).run()
    assert not any(r.key == "score_engine" for r in app.radio)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPINIONLAB_RAY_ADDRESS", f"127.0.0.1:{port}")
    app.run()
    engine = app.radio(key="score_engine")
    assert engine.options == ["This machine", f"Ray cluster (127.0.0.1:{port})"]
    engine.set_value("ray").run()
    app.number_input(key="score_workers").set_value(3).run()
    app.button(key="score_start").click().run()
    assert not app.exception
    assert any(f"127.0.0.1:{port} did not answer" in e.value for e in app.error)
    assert not Registry().jobs()
