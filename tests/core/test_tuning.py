"""Hyperparameter search (core/tuning.py, ``python -m core tune``): trials are runs tagged with
their search, pruning ends a run at an evaluation, a stopped search resumes to its planned
trials, the best settings become a named config; bad input exits 2 (tiny random BERT)."""

from __future__ import annotations

import signal
import sqlite3

import pytest

from core import jobs, tuning
from core.cli import main
from core.errors import ConfigError
from core.training import TrainConfig, create_run, run_training
from core.workspace import SCHEMA_VERSION, Registry, read_json
from tests.core.test_training import tiny_config

SMALL = {"learning_rate": [1e-3, 1e-2], "epochs": [1, 1], "batch_size": [8, 16], "warmup_ratio": [0.0, 0.1],
         "lora_r": [2, 4]}


def small_search(model_dir, trials=3, **space):
    config = tuning.SearchConfig(dataset="easy", model=str(model_dir), method="lora", preset="", trials=trials,
                                 space={**SMALL, **space})
    return tuning.create_search(config)


def test_tune_runs_three_trials_tagged_in_the_registry_and_saves_the_best(easy_dataset, tiny_model_dir):
    folder = small_search(tiny_model_dir)
    report = tuning.run_search(folder)
    assert report["status"] == "succeeded" and report["finished"] == report["planned"] == 3
    assert [t["number"] for t in report["trials"]] == [1, 2, 3]
    assert {t["outcome"] for t in report["trials"]} <= {"complete", "pruned"}
    registry = Registry()
    tagged = registry.search_runs(folder.name)
    assert [r["id"] for r in tagged] == [t["run_id"] for t in report["trials"]] == report["runs"]
    from core.runs import list_runs

    assert sum("search trial" in r["name"] for r in list_runs()) == 3  # run lists say a run is a trial
    for trial in report["trials"]:  # each trial ran with the settings the study recorded
        config = read_json(registry.root / "runs" / trial["run_id"] / "config.json")
        assert 1e-3 <= config["learning_rate"] <= 1e-2 and config["batch_size"] in (8, 16)
        assert config["lora_r"] == trial["settings"]["lora_r"] and config["lora_alpha"] == 2 * config["lora_r"]
        assert trial["validation_macro_f1"] is not None
    best = report["best"]
    assert best["validation_macro_f1"] == max(t["validation_macro_f1"] for t in report["trials"]
                                              if t["outcome"] == "complete")
    path = tuning.save_best_config(folder.name, "easy-best")
    assert path == registry.root / "configs" / "easy-best.json" and tuning.saved_configs() == {"easy-best": path}
    saved = TrainConfig.load(path)
    assert saved.learning_rate == pytest.approx(best["settings"]["learning_rate"]) and saved.run_id == ""
    assert (create_run(saved) / "config.json").exists()  # a saved config starts a run as it is
    with pytest.raises(ConfigError):
        tuning.save_best_config(folder.name, "../outside")


def test_a_stopped_search_resumes_to_its_planned_trials(easy_dataset, tiny_model_dir, monkeypatch):
    """SIGTERM during trial 2: that trial stops at its next step (recorded as stopped, not
    counted); resuming runs trials until 3 have finished."""
    import core.training

    real, calls = core.training.run_training, []

    def stop_the_second(folder, registry=None, judge=None):
        calls.append(folder)
        if len(calls) == 2:
            def judge(evaluation, metrics):
                signal.raise_signal(signal.SIGTERM)  # as `jobs cancel` does to the worker
                return False
        return real(folder, registry=registry, judge=judge)

    monkeypatch.setattr(core.training, "run_training", stop_the_second)
    folder = small_search(tiny_model_dir, epochs=[2, 2])
    report = tuning.run_search(folder)
    assert report["status"] == "cancelled" and report["finished"] == 1
    assert [t["outcome"] for t in report["trials"]] == ["complete", "stopped"]  # the pruner waits for 2 trials
    stopped_run = read_json(Registry().root / "runs" / report["trials"][1]["run_id"] / "status.json")
    assert stopped_run["status"] == "cancelled"
    report = tuning.run_search(folder)  # what `jobs resume` runs
    assert report["status"] == "succeeded" and report["finished"] == 3 and len(report["trials"]) == 4
    assert [t["outcome"] for t in report["trials"]].count("stopped") == 1
    assert read_json(folder / "status.json")["step"] == 3


def test_the_pruning_hook_ends_a_run_at_an_evaluation(easy_dataset, tiny_model_dir):
    folder = create_run(tiny_config(tiny_model_dir, epochs=3))
    seen = []
    result = run_training(folder, judge=lambda n, metrics: seen.append((n, metrics["macro_f1"])) or True)
    assert result["status"] == "pruned" and len(seen) == 1 and seen[0][0] == 1
    status = read_json(folder / "status.json")
    assert status["status"] == "cancelled" and "hyperparameter search" in status["reason"]
    assert not (folder / "model").exists()


def test_a_search_is_a_background_job_with_its_own_command(easy_dataset, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(jobs, "schedule", lambda registry=None: [])  # queued, not started
    folder = small_search(tiny_model_dir)
    job = jobs.submit(folder, kind="tune")
    described = jobs.describe(job)
    assert "-m core tune --config" in described.command and str(folder / "config.json") in described.command
    assert described.total == 3 and described.unit == "trials" and described.lane == jobs.LONG
    assert jobs.command_for({**job, "info": {}}, resume=True)[-1] == "--resume"


@pytest.mark.parametrize(("argv", "says"), [
    (["--trials", "0"], "between 1 and 500 trials, not 0"),
    (["--space", "lr=1e-2:1e-4"], "minimum 0.01 above its maximum 0.0001"),
    (["--space", "dropout=0:1"], "names 'dropout', which method full does not take"),
    (["--space", "lora_r=4:8"], "names 'lora_r'"),
    (["--space", "lr=fast"], "'lr=fast' is not a range"),
    (["--method", "baseline"], "no settings to search over"),
    (["--space", "lr=1e-5:0.5"], "Learning rate"),
])
def test_bad_input_is_refused_with_exit_2(easy_dataset, tiny_model_dir, capsys, argv, says):
    code = main(["tune", "--dataset", "easy", "--model", str(tiny_model_dir), "--method", "full", *argv])
    err = capsys.readouterr().err
    assert code == 2 and says.lower() in err.lower() and "Traceback" not in err
    assert not (Registry().root / "searches").exists()  # nothing written


def test_a_method_the_model_cannot_take_is_refused(easy_dataset, tiny_model_dir, capsys, monkeypatch):
    import core.modeling.config as config_module
    from core.i18n import msg

    monkeypatch.setattr(config_module, "fit_problem", lambda method, folder, mean: msg(
        "train.err.method_unfit", method=method, model=folder.name, error="no past key values") if method == "prefix"
        else None)
    code = main(["tune", "--dataset", "easy", "--model", str(tiny_model_dir), "--method", "prefix", "--trials", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "prefix" in err and tiny_model_dir.name in err


def test_show_reports_json_and_an_unknown_search_exits_2(easy_dataset, tiny_model_dir, capsys):
    import json

    folder = small_search(tiny_model_dir, trials=2)
    assert main(["tune", "show", folder.name, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["id"] == folder.name and shown["trials"] == [] and shown["best"] is None
    assert shown["config"]["space"]["lora_r"] == [2, 4]
    assert main(["tune", "show", "search_nope"]) == 2
    assert "no search 'search_nope'" in capsys.readouterr().err


def test_a_version_2_registry_gets_the_search_column_in_place(workspace):
    registry = Registry()
    registry.add_run("run_old", "easy", None, None, {"method": "full"})
    db = sqlite3.connect(registry.path)
    db.execute("ALTER TABLE runs DROP COLUMN search_id")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    again = Registry()
    assert again.run("run_old")["search_id"] is None and again.search_runs("search_x") == []
    check = sqlite3.connect(again.path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
