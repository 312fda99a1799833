from pathlib import Path

from core import jobs
from core.training import TrainConfig, create_run
from core.workspace import Registry
from tests.core.test_queue import reap
from tests.pages.conftest import open_page


def test_no_datasets_points_to_data_page(app):
    open_page(app, "pages/train.py")
    assert any("No datasets yet" in i.value for i in app.info)
    assert any("No training runs yet" in i.value for i in app.info)


def test_launch_baseline_and_see_it_in_the_live_panel(app, easy_dataset):
    open_page(app, "pages/train.py")
    app.selectbox(key="train_method_en").set_value("baseline").run()
    assert not app.exception
    command = app.code[0].value
    assert command.startswith("python -m core jobs submit --dataset easy") and "--method baseline" in command
    assert any("Estimated duration" in c.value and "no earlier runs: rough guess" in c.value for c in app.caption)
    app.button(key="train_start").click().run()
    assert any(s.value.startswith("easy · TF-IDF baseline · ") and s.value.endswith(": started.") for s in app.success)
    job = Registry().jobs()[0]
    assert reap(job["id"])["status"] == "succeeded"
    app.run()  # a reload (or the fragment's next tick) shows the finished run
    assert any("easy · TF-IDF baseline" in m.value and "succeeded" in m.value for m in app.markdown)
    assert any("Test accuracy" in c.value for c in app.caption)
    assert any("based on 1 earlier run" in c.value for c in app.caption)  # the next estimate is measured


def test_a_waiting_run_says_its_place_in_line(app, easy_dataset, monkeypatch):
    monkeypatch.setattr(jobs, "slots", lambda lane: 0)  # every lane full: runs wait
    open_page(app, "pages/train.py")
    app.selectbox(key="train_method_en").set_value("baseline").run()
    app.button(key="train_start").click().run()
    app.button(key="train_start").click().run()
    assert any(s.value.endswith(": queued (2nd in line).") for s in app.success)
    assert any("queued (1st in line)" in m.value for m in app.markdown)
    assert any("quick lane" in c.value for c in app.caption)
    app.session_state["lang"] = "zh"
    app.run()
    assert any("排队中（第 2 位）" in m.value and "TF-IDF 基线" in m.value for m in app.markdown)


def test_scoring_jobs_are_not_in_the_run_list(app, baseline_run):
    registry = Registry()
    registry.add_job("score_abc", "score", "score_abc", str(registry.root / "scores" / "score_abc" / "score.json"), None)
    registry.update_job("score_abc", status="succeeded")
    open_page(app, "pages/train.py")
    cards = [m.value for m in app.markdown if m.value.startswith("**")]
    assert len(cards) == 1 and "easy · TF-IDF baseline" in cards[0]
    assert not any("score_abc" in c.value for c in app.caption)


def test_delete_says_what_goes_and_waits_for_the_confirmation(app, baseline_run):
    open_page(app, "pages/train.py")
    warning = next(w.value for w in app.warning if "for good" in w.value)
    assert "the trained model" in warning and "test-split predictions" in warning
    assert Registry().run(baseline_run) is not None  # nothing removed before the confirmation
    app.button(key=f"del_{baseline_run}").click().run()
    assert not app.exception
    assert Registry().run(baseline_run) is None
    assert not (Registry().root / "runs" / baseline_run).exists()


def test_a_run_that_made_nothing_is_deleted_at_once(app, easy_dataset, monkeypatch):
    monkeypatch.setattr(jobs, "slots", lambda lane: 0)
    job = jobs.submit(create_run(TrainConfig(dataset="easy", method="baseline")))
    jobs.cancel(job["id"])
    open_page(app, "pages/train.py")
    assert not any("for good" in w.value for w in app.warning)
    app.button(key=f"del_{job['target']}").click().run()
    assert Registry().run(job["target"]) is None


def test_rename_on_the_page(app, baseline_run):
    open_page(app, "pages/train.py")
    app.text_input(key=f"rename_{baseline_run}").set_value("first baseline")
    next(b for b in app.button if b.label == "Rename").click().run()
    assert not app.exception
    assert Registry().run(baseline_run)["name"] == "first baseline"
    app.run()  # the fragment's rerun (AppTest does not follow st.rerun inside a fragment)
    assert any(m.value.startswith("**first baseline**") for m in app.markdown)


def test_bad_settings_are_listed_not_launched(app, easy_dataset, tiny_model_dir):
    open_page(app, "pages/train.py")
    model_choice(app).set_value("custom").run()
    app.text_input(key="train_model_path").set_value(str(tiny_model_dir)).run()
    app.number_input(key="adv_max_length_quick_full").set_value(4096)
    app.button[0].click().run()  # the form's apply button
    assert any("above the model's limit of 128" in e.value for e in app.error)
    assert not any(b.key == "train_start" for b in app.button)
    assert Registry().jobs() == []


def test_train_page_in_chinese(app, baseline_run):
    app.query_params["lang"] = "zh"
    open_page(app, "pages/train.py")
    assert app.title[0].value == "训练"
    assert any("easy · TF-IDF 基线 · " in m.value and "已完成" in m.value for m in app.markdown)
    assert any("创建于" in c.value and "年" in c.value for c in app.caption)
    assert any("永久删除" in w.value for w in app.warning)


def test_the_shown_command_is_the_run_the_button_starts(app, easy_dataset, tiny_model_dir, monkeypatch):
    """Every changed setting is in the command; the command parses back to the config the button
    saves (so typing it queues the same run)."""
    import json
    import shlex

    from core import jobs
    from core.cli import _config_from_args, build_parser

    monkeypatch.setattr(jobs, "capacity", lambda: 0)  # queued, never started: only the config matters here
    open_page(app, "pages/train.py")
    app.selectbox(key="train_method_en").set_value("lora").run()
    model_choice(app).set_value("custom").run()
    app.text_input(key="train_model_path").set_value(str(tiny_model_dir)).run()
    changed = {"warmup_ratio": 0.15, "lora_r": 4, "lora_alpha": 12, "weight_decay": 0.05, "seed": 3,
               "max_length": 64, "batch_size": 8}
    for name, value in changed.items():
        app.number_input(key=f"adv_{name}_quick_lora").set_value(value)
    app.button[0].click().run()  # the form's apply button
    assert not app.exception and not app.error
    command = app.code[0].value
    for name in changed:
        assert "--" + name.replace("_", "-") in command, name
    words = shlex.split(command)
    shown = _config_from_args(build_parser().parse_args(words[3:]))
    app.button(key="train_start").click().run()
    saved = json.loads((Path(Registry().jobs()[0]["config_path"])).read_text())
    assert {**saved, "run_id": ""} == shown.to_dict()
    assert {k: saved[k] for k in changed} == changed and saved["method"] == "lora"


def test_zeroshot_form_prefills_descriptions_checks_them_and_queues_the_run(app, easy_dataset, tiny_model_dir,
                                                                          monkeypatch):
    from tests.core.e5_model import converted_folder

    monkeypatch.setattr(jobs, "slots", lambda lane: 0)  # stays queued: the page's part is what is tested
    open_page(app, "pages/train.py")
    app.selectbox(key="train_method_en").set_value("zeroshot").run()
    assert not app.exception
    boxes = {box.label: box for box in app.text_area}
    assert boxes["positive"].value.splitlines() == ["a positive review: I liked it, it was great",
                                                    "satisfied, I recommend it"]
    assert app.code[0].value.startswith("python -m core jobs submit --method zeroshot --dataset easy")
    boxes["negative"].set_value(" \n ").run()
    assert any("The label 'negative' has an empty description" in e.value for e in app.error)
    assert not any(b.key == "train_start" for b in app.button)  # nothing to launch until it is fixed
    {box.label: box for box in app.text_area}["negative"].set_value("Satisfied, I recommend it").run()
    assert any("The labels 'negative' and 'positive' have the same description" in e.value for e in app.error)
    {box.label: box for box in app.text_area}["negative"].set_value("a bad film\nI want my money back").run()
    assert not app.error and "--label 'negative=a bad film|I want my money back'" in app.code[0].value
    model_choice(app).set_value("custom").run()
    app.text_input(key="train_model_path").set_value(str(tiny_model_dir)).run()
    app.button(key="train_start").click().run()
    assert any("is not a sentence encoder" in e.value for e in app.error) and Registry().runs() == []
    app.text_input(key="train_model_path").set_value(str(converted_folder())).run()
    app.button(key="train_start").click().run()
    assert any(": queued (1st in line)." in s.value and "zero-shot" in s.value for s in app.success)
    job = Registry().jobs()[0]
    assert job["lane"] == jobs.QUICK and job["status"] == "queued"
    app.session_state["lang"] = "zh"
    app.run()
    assert not app.exception and any("零样本" in m.value for m in app.markdown)


def model_choice(app):
    """The model radio (keyed by dataset and language, so a new dataset pre-selects its model)."""
    return next(r for r in app.radio if r.key.startswith("train_model_choice_"))
