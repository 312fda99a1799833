
from core.training import TrainConfig, create_run
from core.workspace import Registry, atomic_write_json
from tests.conftest import csv_bytes
from tests.pages.conftest import open_page


def test_no_runs(app):
    open_page(app, "pages/results.py")
    assert any("No runs yet" in i.value for i in app.info)


def test_baseline_run_overview_errors_export(app, baseline_run):
    open_page(app, "pages/results.py")
    labels = [m.label for m in app.metric]
    assert labels == ["Accuracy", "Macro F1", "Weighted F1", "Test rows"]
    assert "vs baseline" in str(app.metric[0].delta)
    assert app.selectbox(key=f"cell_true_{baseline_run}").options == ["negative", "positive"]
    for view in ("errors", "compare", "file", "export"):
        app.segmented_control(key="results_view").set_value(view).run()
        assert not app.exception, view
    app.segmented_control(key="results_view").set_value("compare").run()
    assert any("at least two" in i.value for i in app.info)


def test_try_it_empty_text_warns(app, baseline_run):
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view").set_value("try").run()
    app.button(key="try_button").click().run()
    assert any("Type or paste a text first" in w.value for w in app.warning)


def test_evaluate_file_without_label_column(app, baseline_run):
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view").set_value("file").run()
    app.file_uploader(key="eval_upload").set_value(("texts.csv", b"text\nfine film\nbad film\n", "text/csv")).run()
    assert any("no label column" in e.value for e in app.error)
    data = csv_bytes([("great wonderful film", "positive"), ("awful film", "negative"), ("odd", "meh")])
    app.file_uploader(key="eval_upload").set_value(("labelled.csv", data, "text/csv")).run()
    assert any("Skipped 1 rows" in w.value for w in app.warning)
    assert [m.label for m in app.metric][:1] == ["Accuracy"]


def test_failed_and_running_runs_say_so(app, easy_dataset):
    failed = create_run(TrainConfig(dataset="easy", method="baseline"))
    atomic_write_json(failed / "status.json", {"status": "failed", "reason": "out of GPU memory"})
    Registry().update_run(failed.name, "failed")
    open_page(app, "pages/results.py")
    assert any("out of GPU memory" in e.value for e in app.error)
    running = create_run(TrainConfig(dataset="easy", method="baseline"))
    atomic_write_json(running / "status.json", {"status": "running"})
    app.run()
    app.selectbox(key="results_run").set_value(running.name).run()
    assert any("results appear when it has succeeded" in i.value for i in app.info)
