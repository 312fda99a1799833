from pathlib import Path

from core.workspace import Registry
from tests.core.test_jobs import wait_done
from tests.pages.conftest import open_page


def test_no_datasets_points_to_data_page(app):
    open_page(app, "pages/train.py")
    assert any("No datasets yet" in i.value for i in app.info)
    assert any("No training jobs yet" in i.value for i in app.info)


def test_launch_baseline_and_see_it_in_the_live_panel(app, easy_dataset):
    open_page(app, "pages/train.py")
    app.radio(key="train_method").set_value("baseline").run()
    assert not app.exception
    command = app.code[0].value
    assert command.startswith("python -m core jobs submit --dataset easy") and "--method baseline" in command
    assert any("Estimated duration" in c.value for c in app.caption)
    app.button(key="train_start").click().run()
    assert any("Started run" in s.value for s in app.success)
    job = Registry().jobs()[0]
    assert wait_done(job["id"]) == "succeeded"
    app.run()  # a reload (or the fragment's next tick) shows the finished run
    assert any(job["run_id"] in m.value and "succeeded" in m.value for m in app.markdown)
    assert any("Test accuracy" in c.value for c in app.caption)


def test_bad_settings_are_listed_not_launched(app, easy_dataset, tiny_model_dir):
    open_page(app, "pages/train.py")
    app.radio(key="train_model_choice").set_value("custom").run()
    app.text_input(key="train_model_path").set_value(str(tiny_model_dir)).run()
    app.number_input(key="adv_max_length_quick_full").set_value(4096)
    app.button[0].click().run()  # the form's apply button
    assert any("above the model's limit of 128" in e.value for e in app.error)
    assert not any(b.key == "train_start" for b in app.button)
    assert Registry().jobs() == []


def test_train_page_in_chinese(app, easy_dataset):
    app.query_params["lang"] = "zh"
    open_page(app, "pages/train.py")
    assert app.title[0].value == "训练"


def test_the_shown_command_is_the_run_the_button_starts(app, easy_dataset, tiny_model_dir, monkeypatch):
    """Every changed setting is in the command; the command parses back to the config the button
    saves (so typing it queues the same run)."""
    import json
    import shlex

    from core import jobs
    from core.cli import _config_from_args, build_parser

    monkeypatch.setattr(jobs, "capacity", lambda: 0)  # queued, never started: only the config matters here
    open_page(app, "pages/train.py")
    app.radio(key="train_method").set_value("lora").run()
    app.radio(key="train_model_choice").set_value("custom").run()
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
