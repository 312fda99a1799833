"""The Train page's Search section (pages/_search.py) and the Results page's Methods view
(pages/_methods.py), driven through AppTest."""

from __future__ import annotations

import pytest

from core import comparison, jobs, tuning
from core.training import run_training
from core.workspace import Registry
from tests.core.test_tuning import small_search
from tests.pages.conftest import open_page


@pytest.fixture
def no_workers(monkeypatch):
    monkeypatch.setattr(jobs, "schedule", lambda registry=None: [])  # jobs wait in the queue


def button(app, label):
    return next(b for b in app.button if b.label == label)


def test_the_search_section_launches_a_search_job(app, easy_dataset, no_workers):
    open_page(app, "pages/train.py")
    assert any(e.label == "Search for the best settings on easy" for e in app.expander)
    app.selectbox(key="search_method").set_value("lora").run()
    assert app.number_input(key="search_lo_lora_r_lora").value == 4
    assert any(c.value.startswith("python -m core tune --dataset easy --method lora --trials 10")
               for c in app.code)
    app.number_input(key="search_trials").set_value(3)
    button(app, "Start search").click().run()
    assert not app.exception
    assert any(s.value.startswith("Search search_") and "queued" in s.value for s in app.success)
    job = next(j for j in Registry().jobs() if j["kind"] == "tune")
    assert tuning.SearchConfig.load(job["config_path"]).trials == 3
    # the search in the same job card as runs and scoring jobs: its state and its trials
    assert any("queued" in m.value and "Status" in m.value for m in app.markdown)
    assert [b.proto.text for b in app.get("progress")] == ["Trial 0 of 3"]
    assert any("No trial has completed yet" in i.value for i in app.info)


def test_a_search_uses_the_model_chosen_in_the_training_form(app, easy_dataset, tiny_model_dir, no_workers):
    open_page(app, "pages/train.py")
    choice = next(r for r in app.radio if r.key.startswith("train_model_choice_"))
    choice.set_value("custom").run()
    app.text_input(key="train_model_path").set_value(str(tiny_model_dir)).run()
    app.selectbox(key="search_method").set_value("lora").run()
    app.number_input(key="search_trials").set_value(2)
    button(app, "Start search").click().run()
    assert not app.exception
    job = next(j for j in Registry().jobs() if j["kind"] == "tune")
    assert tuning.SearchConfig.load(job["config_path"]).model == str(tiny_model_dir)


def test_min_above_max_is_shown_as_a_message(app, easy_dataset, no_workers):
    open_page(app, "pages/train.py")
    app.number_input(key="search_lo_epochs_full").set_value(5)
    button(app, "Start search").click().run()
    assert not app.exception
    assert any("epochs has its minimum 5 above its maximum 4" in e.value for e in app.error)


def test_the_best_trial_becomes_a_config_that_trains(app, easy_dataset, tiny_model_dir, no_workers):
    folder = small_search(tiny_model_dir, trials=2)
    tuning.run_search(folder)
    open_page(app, "pages/train.py")
    table = next(d.value for d in app.dataframe if "Validation macro F1" in d.value.columns)
    assert list(table.columns)[:3] == ["Trial", "Outcome", "Validation macro F1"] and len(table) == 2
    assert "LoRA rank" in table.columns and not table.isin(["None", "nan"]).any().any()
    assert any(m.value.startswith("Best so far: trial ") for m in app.markdown)
    app.text_input(key=f"config_name_{folder.name}").set_value("my-best")
    button(app, "Use these settings").click().run()
    assert any("Saved as config 'my-best'" in s.value for s in app.success)
    assert app.selectbox(key="search_config_pick").value == "my-best"
    button(app, "Train with this config").click().run()
    assert any(s.value.startswith("Training with 'my-best'") for s in app.success)
    assert sum(1 for j in Registry().jobs() if j["kind"] == "train") == 1


def test_the_methods_view_draws_a_comparison(app, baseline_run):
    config = comparison.ComparisonConfig(dataset="easy", methods=["baseline"], per_class=[8, "all"], seeds=2)
    comparison.create_comparison(config, launch=lambda folder, registry: run_training(folder, registry=registry))
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view_en").set_value("methods").run()
    assert not app.exception
    table = next(d.value for d in app.dataframe if "Examples per class" in d.value.columns)
    assert table["Examples per class"].tolist() == ["8", "all"] and table["Seeds finished"].tolist() == ["2/2"] * 2
    assert any("each point is the mean of 2 seeds" in c.value for c in app.caption)
    app.session_state["lang"] = "zh"
    app.run()
    assert not app.exception
    assert any("每类样本数" in d.value.columns for d in app.dataframe)


def test_the_methods_view_without_comparisons_says_how_to_start_one(app, baseline_run):
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view_en").set_value("methods").run()
    assert any("No method comparison yet" in i.value for i in app.info)
    assert any("compare-methods --dataset" in c.value for c in app.code)


def test_the_methods_view_refreshes_only_while_runs_are_queued_or_running(app, baseline_run, no_workers):
    """Queued runs keep the view refreshing; once every job has ended (here: cancelled) it stops."""
    config = comparison.ComparisonConfig(dataset="easy", methods=["baseline"], per_class=[8], seeds=2)
    record = comparison.create_comparison(config)
    open_page(app, "pages/results.py")
    app.segmented_control(key="results_view_en").set_value("methods").run()
    key = f"methods_active_{record['id']}"
    assert not app.exception and app.session_state[key] is True
    assert any("0 of 2 runs" in i.value for i in app.info)
    for job in Registry().jobs():
        if job["status"] == "queued":
            jobs.cancel(job["id"])
    app.run()
    assert not app.exception and key not in app.session_state
    # nothing will fill the cells now: the page says so instead of "fill in as the others do"
    assert not any("fill in as the others do" in i.value for i in app.info)
    assert any("0 of 2 runs finished; 2 ended without a result" in w.value for w in app.warning)
