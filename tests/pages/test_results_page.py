from core.data import Table, prepare_dataset
from core.datasets import save_dataset
from core.training import TrainConfig, create_run, run_training
from core.workspace import Registry, atomic_write_json
from tests.conftest import csv_bytes, easy_rows
from tests.core.test_result_tables import finished_copy
from tests.pages.conftest import open_page


def test_no_runs(app):
    open_page(app, "pages/results.py")
    assert any("No runs yet" in i.value for i in app.info)


def test_baseline_run_overview_errors_export(app, baseline_run):
    open_page(app, "pages/results.py")
    labels = [m.label for m in app.metric]
    assert labels == ["Accuracy", "Macro F1", "Weighted F1", "Test rows"]
    assert not app.metric[0].delta  # a baseline run is not compared with itself
    assert app.selectbox(key=f"cell_true_{baseline_run}").options == ["negative", "positive"]
    per_class = next(d.value for d in app.dataframe if "Class" in d.value.columns)
    assert list(per_class.columns) == ["Class", "Precision", "Recall", "F1", "Support (texts)"]
    assert per_class["Class"].tolist()[-3:] == ["Macro average", "Weighted average", "Accuracy"]
    assert not per_class.isin(["None", "nan"]).any().any()
    assert all(len(v) == 5 for v in per_class["F1"])  # 0.xxx
    for view in ("errors", "compare", "file", "export"):
        app.segmented_control(key="results_view_en").set_value(view).run()
        assert not app.exception, view
    app.segmented_control(key="results_view_en").set_value("compare").run()
    assert any("at least two" in i.value for i in app.info)


def test_fine_tuned_run_is_measured_against_the_baseline(app, baseline_run):
    finished_copy(baseline_run, "lora", baseline_shift=-0.1)
    open_page(app, "pages/results.py")  # the newest run is selected
    assert app.metric[0].delta == "+0.100 vs baseline"


def test_compare_defaults_to_the_same_dataset_with_readable_headers(app, baseline_run):
    import pandas as pd

    lora = finished_copy(baseline_run, "lora")
    frame = pd.DataFrame(easy_rows(seed=1), columns=["text", "label"], dtype="str")
    save_dataset(prepare_dataset(Table(frame, "other.csv", "csv", "utf-8", ",")), "other")
    other = create_run(TrainConfig(dataset="other", method="baseline"))
    run_training(other)  # the newest run, on another dataset
    open_page(app, "pages/results.py")
    app.selectbox(key="results_run_en").set_value(baseline_run).run()
    app.segmented_control(key="results_view_en").set_value("compare").run()
    picked = app.multiselect(key=f"compare_ids_{baseline_run}")
    assert picked.value == [baseline_run, lora]
    assert any(option.startswith("other · TF-IDF baseline · ") for option in picked.options)  # runs go by name
    table = next(d.value for d in app.dataframe if "Run" in d.value.columns)
    assert list(table.columns)[:5] == ["Run", "Accuracy", "Macro F1", "Weighted F1", "Baseline accuracy"]
    assert "Method" in table.columns and "config.method" not in table.columns
    assert table["Baseline accuracy"].tolist()[0] == "—"


def test_changing_the_run_returns_to_the_overview(app, baseline_run):
    lora = finished_copy(baseline_run, "lora")
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view_en").set_value("compare").run()
    assert app.multiselect(key=f"compare_ids_{lora}").value == [lora, baseline_run]
    app.selectbox(key="results_run_en").set_value(baseline_run).run()
    assert not app.exception
    assert app.segmented_control(key="results_view_en").value == "overview"
    assert [m.label for m in app.metric][:1] == ["Accuracy"]


def test_try_it_shows_probabilities_as_numbers(app, baseline_run):
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view_en").set_value("try").run()
    app.text_area(key="try_text").set_value("great wonderful film").run()
    app.button(key="try_button").click().run()
    app.session_state["explain_job"].result(timeout=120)  # the explanation runs off the script thread
    app.run()
    assert not app.exception
    probabilities = next(d.value for d in app.dataframe if "probability" in d.value.columns)
    assert list(probabilities.columns) == ["label", "probability"]
    assert sorted(probabilities["label"]) == ["negative", "positive"]
    values = probabilities["probability"].tolist()
    assert values == sorted(values, reverse=True) and abs(sum(values) - 1) < 1e-6


def test_try_it_empty_text_warns(app, baseline_run):
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view_en").set_value("try").run()
    app.button(key="try_button").click().run()
    assert any("Type or paste a text first" in w.value for w in app.warning)


def test_evaluate_file_without_label_column(app, baseline_run):
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view_en").set_value("file").run()
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
    app.selectbox(key="results_run_en").set_value(running.name).run()
    assert any("results appear when it has succeeded" in i.value for i in app.info)


def test_try_it_on_a_zero_shot_run_previews_edited_descriptions_and_saves_a_new_run(app, monkeypatch):
    from core import jobs
    from core.zeroshot import ZeroShotConfig, create_zeroshot_run, run_zeroshot
    from tests.core.e5_model import converted_folder
    from tests.core.test_zeroshot import CHINESE, _save_dataset

    monkeypatch.setattr(jobs, "slots", lambda lane: 0)
    rows = [(f"{text}（第{i}条）", label) for label, items in CHINESE.items() for text in items for i in range(2)]
    _save_dataset("zh-easy", rows)
    folder = create_zeroshot_run(ZeroShotConfig(dataset="zh-easy", model=str(converted_folder())))
    run_zeroshot(folder)
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view_en").set_value("try").run()
    boxes = {box.label: box for box in app.text_area}
    assert boxes["negative"].value == "负面评价，不满意"
    app.text_area(key="try_text").set_value("物美价廉，五星好评").run()
    boxes["negative"].set_value("正面评价，满意").run()
    app.button(key="zs_preview").click().run()
    assert any("The labels 'negative' and 'positive' have the same description" in e.value for e in app.error)
    {box.label: box for box in app.text_area}["negative"].set_value("非常满意，强烈推荐").run()
    {box.label: box for box in app.text_area}["positive"].set_value("负面评价，不满意").run()
    app.button(key="zs_preview").click().run()
    assert not app.exception
    table = app.dataframe[-1].value
    assert table.iloc[0, 0] == "物美价廉，五星好评" and len(table) == 5  # the typed text + 4 test rows
    assert table.iloc[0, 1] == "positive" and table.iloc[0, 3] == "negative"
    assert any("texts change label with the edited descriptions" in c.value for c in app.caption)
    assert len(Registry().runs()) == 1  # a preview changes nothing
    app.button(key="zs_save").click().run()
    assert any(": queued (1st in line)." in s.value for s in app.success)
    new = Registry().runs()[0]
    assert new["id"] != folder.name and Registry().jobs()[0]["target"] == new["id"]


def test_a_zero_shot_run_started_from_a_file_offers_try_it_not_a_test_report(app):
    from core.zeroshot import ZeroShotConfig, create_zeroshot_run, run_zeroshot
    from tests.core.e5_model import converted_folder
    from tests.core.test_zeroshot import CHINESE

    config = ZeroShotConfig(labels=["正面", "负面"], source="导出.csv", model=str(converted_folder()))
    run_zeroshot(create_zeroshot_run(config, texts=CHINESE["positive"]))
    open_page(app, "pages/results.py")
    assert any("has no test split to measure" in i.value for i in app.info)
    assert app.segmented_control(key="results_view_en").value == "try" and not app.error
    assert {box.label for box in app.text_area} >= {"正面", "负面"}
