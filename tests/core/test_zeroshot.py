"""Zero-shot labelling from label descriptions: checks on the descriptions, the model on texts of
obvious sentiment, a run that loads, scores and evaluates like a trained one, and bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError, NotFoundError
from core.zeroshot import (
    ZeroShotConfig,
    ZeroShotModel,
    check_descriptions,
    create_zeroshot_run,
    default_descriptions,
    parse_label_options,
    run_zeroshot,
    softmax_over_similarities,
)
from tests.core.e5_model import converted_folder, encoder

CHINESE = {"positive": ["质量非常好，很满意，会再来买", "服务热情周到，强烈推荐", "物美价廉，五星好评"],
           "negative": ["质量太差了，用了两天就坏了", "客服态度恶劣，再也不买了", "房间又脏又吵，非常失望"]}
ENGLISH = {"positive": ["Absolutely wonderful, I loved every minute of it.", "Great quality, works perfectly, highly recommend!",
                        "The best meal I have had in years, fantastic service."],
           "negative": ["Terrible. It broke after one day and support ignored me.", "A boring, awful film; I walked out.",
                        "Worst hotel ever: dirty, noisy and rude staff."]}


def test_descriptions_are_checked_with_messages_that_name_the_label():
    with pytest.raises(ConfigError, match="'negative' has an empty description"):
        check_descriptions({"positive": ["good"], "negative": ["  "]})
    with pytest.raises(ConfigError, match="'negative' has an empty description"):
        check_descriptions({"positive": ["good"], "negative": []})
    with pytest.raises(ConfigError, match="'positive' and 'negative' have the same description"):
        check_descriptions({"positive": ["A review"], "negative": ["a  review"]})
    with pytest.raises(ConfigError, match="at least two labels"):
        check_descriptions({"positive": ["good"]})
    with pytest.raises(ConfigError, match="longer than 500"):
        check_descriptions({"positive": ["x" * 501], "negative": ["bad"]})
    assert check_descriptions({"a": [" good\n product "], "b": ["bad"]})["a"] == ["good product"]


def test_defaults_follow_the_label_kind_and_the_language():
    assert default_descriptions(["正面", "负面"], "zh") == {"正面": ["正面评价，满意"], "负面": ["负面评价，不满意"]}
    english = default_descriptions(["好评", "差评", "Neutral"], "en")
    assert english["好评"][0].startswith("a positive review") and english["Neutral"][0].startswith("a neutral")
    with pytest.raises(ConfigError, match="no default description for the label\\(s\\) 'complaint'"):
        default_descriptions(["positive", "complaint"])


def test_label_options_give_names_and_descriptions():
    assert parse_label_options(["positive", "negative=差评|不满意"]) == (
        ["positive", "negative"], {"negative": ["差评", "不满意"]})
    with pytest.raises(ConfigError, match="no label name"):
        parse_label_options(["=something"])


def test_a_lower_temperature_decides_more_sharply():
    sims = np.array([[0.82, 0.80], [0.70, 0.75]])
    sharp, soft = softmax_over_similarities(sims, 0.01), softmax_over_similarities(sims, 0.1)
    np.testing.assert_allclose(sharp.sum(axis=1), 1, rtol=1e-6)
    assert sharp[0, 0] > soft[0, 0] > 0.5 and sharp[1, 1] > soft[1, 1] > 0.5


@pytest.mark.parametrize("texts", [CHINESE, ENGLISH], ids=["chinese", "english"])
def test_texts_of_obvious_sentiment_get_their_label(texts):
    model = ZeroShotModel.build(default_descriptions(["positive", "negative"], "zh"), str(converted_folder()),
                                encoder=encoder())
    rows = [(text, label) for label, items in texts.items() for text in items]
    probs = model.predict_proba([text for text, _ in rows])
    assert [model.labels[i] for i in probs.argmax(axis=1)] == [label for _, label in rows]
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert model.predict_proba([]).shape == (0, 2)


def test_a_100000_character_text_is_read_in_windows_and_said_to_be_cut():
    long_text = "这家店的服务很差，菜也不新鲜。" * 6700  # 100,500 characters
    windows, owners, cut = encoder().windows(["短评", long_text], "query", max_windows=2)
    assert owners == [0, 1, 1] and cut == [1] and all(len(w) <= 512 for w in windows)
    model = ZeroShotModel.build(default_descriptions(["positive", "negative"], "zh"), str(converted_folder()),
                                max_windows=2, encoder=encoder())
    assert model.labels[int(model.predict_proba([long_text])[0].argmax())] == "negative"
    assert model.last_truncated == [0]


def _save_dataset(name: str, rows: list[tuple[str, str]]):
    from core.data import Table, prepare_dataset
    from core.datasets import save_dataset

    frame = pd.DataFrame(rows, columns=["text", "label"], dtype="str")
    frame["split"] = ["train", "train", "test"] * (len(frame) // 3)
    save_dataset(prepare_dataset(Table(frame, f"{name}.csv", "csv", "utf-8", ",")), name)


def test_a_run_registers_measures_and_scores_like_a_trained_run(workspace, tmp_path):
    from core import runs, scoring
    from core.predict import load_predictor

    rows = [(f"{text}（第{i}条）", label) for label, items in CHINESE.items() for text in items for i in range(2)]
    _save_dataset("zh-easy", rows)
    folder = create_zeroshot_run(ZeroShotConfig(dataset="zh-easy", model=str(converted_folder())))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["method"] == "zeroshot" and config["descriptions"]["negative"] == ["负面评价，不满意"]
    metrics = run_zeroshot(folder)
    assert metrics["test"]["accuracy"] == 1.0 and metrics["test_rows"] == 4
    assert "baseline" in metrics and metrics["trainable_parameters"] == 0
    listed = runs.list_runs()[0]
    assert listed["id"] == folder.name and listed["method"] == "zeroshot" and listed["status"] == "succeeded"
    assert runs.evaluate_run(folder.name)["accuracy"] == 1.0
    predictor = load_predictor(folder.name)
    assert predictor.labels == ["negative", "positive"] and predictor.token_count("好评") > 2
    source = tmp_path / "new.csv"
    pd.DataFrame({"text": ENGLISH["negative"] + CHINESE["positive"]}).to_csv(source, index=False)
    score = scoring.create_score(scoring.ScoreConfig(run_id=folder.name, input=str(source),
                                                     output=str(tmp_path / "out.csv")))
    result = scoring.run_scoring(score)
    assert result["label_counts"] == {"negative": 3, "positive": 3}


def test_a_model_that_is_not_a_sentence_encoder_is_refused_before_any_run(workspace, tiny_model_dir):
    from core.workspace import Registry

    config = ZeroShotConfig(labels=["positive", "negative"], model=str(tiny_model_dir))
    with pytest.raises(ConfigError, match="not a sentence encoder.*'multilingual'"):
        create_zeroshot_run(config, texts=["great"])
    assert Registry().runs() == []


def test_a_dataset_without_the_described_labels_is_refused(workspace):
    _save_dataset("zh-easy", [(f"{t}{i}", lab) for lab, items in CHINESE.items() for t in items for i in range(2)])
    with pytest.raises(ConfigError, match="None of the described labels \\('complaint'\\)"):
        create_zeroshot_run(ZeroShotConfig(dataset="zh-easy", descriptions={"complaint": ["投诉"]}))
    with pytest.raises(NotFoundError, match="no dataset called 'missing'"):
        create_zeroshot_run(ZeroShotConfig(dataset="missing"))


def test_the_cli_labels_a_file_and_reports_bad_descriptions(workspace, tmp_path, capsys):
    from core.cli import main

    source = tmp_path / "export.csv"
    pd.DataFrame({"text": CHINESE["negative"] + ENGLISH["positive"]}).to_csv(source, index=False)
    out = tmp_path / "labelled.csv"
    code = main(["zeroshot", "--input", str(source), "--label", "positive", "--label", "negative",
                 "--model", str(converted_folder()), "--output", str(out), "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["score"]["label_counts"] == {"negative": 3, "positive": 3}
    assert pd.read_csv(out)["label"].tolist() == ["negative"] * 3 + ["positive"] * 3
    code = main(["zeroshot", "--input", str(source), "--label", "a=same", "--label", "b=Same"])
    assert code == 2 and "same description" in capsys.readouterr().err
    assert main(["zeroshot", "--input", str(source)]) == 2
    assert "--label positive --label negative" in capsys.readouterr().err


def test_form_boxes_start_from_the_defaults_and_become_checked_descriptions():
    from core.zeroshot import descriptions_from_form, form_descriptions

    boxes = form_descriptions(["正面", "负面", "投诉"], CHINESE["positive"])
    assert boxes == {"正面": "正面评价，满意", "负面": "负面评价，不满意", "投诉": ""}
    assert form_descriptions(["positive"], ENGLISH["positive"])["positive"].splitlines()[1] == "satisfied, I recommend it"
    assert descriptions_from_form({"a": "good\n\n  great  \n", "b": "bad"}) == {"a": ["good", "great"], "b": ["bad"]}
    with pytest.raises(ConfigError, match="'投诉' has an empty description"):
        descriptions_from_form(boxes)
    with pytest.raises(ConfigError, match="'a' and 'b' have the same description"):
        descriptions_from_form({"a": "fine\nok", "b": "OK"})


def test_label_names_typed_in_one_box():
    from core.zeroshot import default_label_names, parse_label_names

    assert default_label_names(CHINESE["negative"]) == ["正面", "负面", "中性"]
    assert default_label_names(ENGLISH["negative"]) == ["positive", "negative", "neutral"]
    assert parse_label_names("正面，负面、中性\n投诉, ") == ["正面", "负面", "中性", "投诉"]
    with pytest.raises(ConfigError, match="'Praise' is named twice"):
        parse_label_names("praise, complaint, Praise")
    with pytest.raises(ConfigError, match="at least two labels; 1 given"):
        parse_label_names("only one")
    with pytest.raises(ConfigError, match="longer than 60"):
        parse_label_names("a, " + "b" * 61)


def test_a_zeroshot_run_is_a_queued_job_with_its_progress_in_the_quick_lane(workspace, monkeypatch):
    from core import jobs, runs
    from core import zeroshot as module
    from core.workspace import Registry, read_json
    from tests.core.test_queue import reap

    rows = [(f"{text}（第{i}条）", label) for label, items in CHINESE.items() for text in items for i in range(2)]
    _save_dataset("zh-easy", rows)
    folder = create_zeroshot_run(ZeroShotConfig(dataset="zh-easy", model=str(converted_folder())))
    assert jobs.lane_for("train", folder / "config.json", Registry()) == jobs.QUICK
    with monkeypatch.context() as patch:
        patch.setattr(module, "QUICK_ROWS", 3)  # 4 test rows: "large", a long job
        assert jobs.lane_for("train", folder / "config.json", Registry()) == jobs.LONG
    job = jobs.submit(folder)
    assert job["lane"] == jobs.QUICK and job["kind"] == "train"
    assert jobs.describe(job).command.endswith(f"train --config {folder / 'config.json'} --job {job['id']}")
    assert reap(job["id"])["status"] == "succeeded"
    status = read_json(folder / "status.json")
    assert status["status"] == "succeeded" and status["step"] == status["total_steps"] == 4
    assert jobs.describe(Registry().job(job["id"])).done == 4
    assert runs.list_runs()[0]["accuracy"] == 1.0


def test_a_stop_request_between_chunks_cancels_the_run_and_it_can_be_carried_out_again(workspace, monkeypatch):
    import os
    import signal

    from core import zeroshot as module
    from core.workspace import read_json

    rows = [(f"{text}（第{i}条）", label) for label, items in CHINESE.items() for text in items for i in range(2)]
    _save_dataset("zh-easy", rows)
    folder = create_zeroshot_run(ZeroShotConfig(dataset="zh-easy", model=str(converted_folder())))
    real = ZeroShotModel.predict_proba
    calls = []

    def predict_then_stop(self, texts, batch_size=32):
        calls.append(len(texts))
        if texts and len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # what jobs.cancel sends the worker
        return real(self, texts, batch_size)

    handler = signal.getsignal(signal.SIGTERM)
    with monkeypatch.context() as patch:
        patch.setattr(module, "EMBED_CHUNK_ROWS", 2)
        patch.setattr(ZeroShotModel, "predict_proba", predict_then_stop)
        assert run_zeroshot(folder) == {"status": "cancelled"}
    status = read_json(folder / "status.json")
    assert status["status"] == "cancelled" and status["step"] == 2 and status["total_steps"] == 4
    assert signal.getsignal(signal.SIGTERM) is handler and calls == [2]
    assert not (folder / "model").exists()  # a stopped run leaves no model to score with
    assert run_zeroshot(folder)["test"]["accuracy"] == 1.0  # resumed: carried out again from the start
    assert read_json(folder / "status.json")["status"] == "succeeded"
    assert run_zeroshot(folder)["test_rows"] == 4  # and again, over the model it made before


def test_train_method_zeroshot_runs_like_the_zeroshot_command_and_train_config_carries_out_a_run(
        workspace, capsys, monkeypatch):
    from core import jobs
    from core.cli import main
    from core.workspace import Registry

    rows = [(f"{text}（第{i}条）", label) for label, items in CHINESE.items() for text in items for i in range(2)]
    _save_dataset("zh-easy", rows)
    model = str(converted_folder())
    assert main(["train", "--method", "zeroshot", "--dataset", "zh-easy", "--model", model, "--json"]) == 0
    by_train = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["zeroshot", "--dataset", "zh-easy", "--model", model, "--json"]) == 0
    by_zeroshot = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(by_train) == set(by_zeroshot) and by_train["metrics"]["accuracy"] == 1.0
    folder = create_zeroshot_run(ZeroShotConfig(dataset="zh-easy", model=model, temperature=0.02))
    assert main(["train", "--config", str(folder / "config.json"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["run_id"] == folder.name and result["status"] == "succeeded" and result["metrics"]["accuracy"] == 1.0
    monkeypatch.setattr(jobs, "slots", lambda lane: 0)  # stays queued: its command is what matters here
    assert main(["jobs", "submit", "--method", "zeroshot", "--dataset", "zh-easy", "--model", model,
                 "--label", "positive=好评|满意", "--label", "negative", "--json"]) == 0
    queued = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert queued["status"] == "queued" and queued["lane"] == jobs.QUICK and " train --config " in queued["command"]
    config = json.loads((Registry().root / "runs" / queued["run_id"] / "config.json").read_text(encoding="utf-8"))
    assert config["descriptions"] == {"positive": ["好评", "满意"], "negative": ["负面评价，不满意"]}
    export = workspace.parent / "export.csv"
    pd.DataFrame({"text": CHINESE["negative"]}).to_csv(export, index=False)
    assert main(["jobs", "submit", "--method", "zeroshot", "--input", str(export), "--label", "正面", "--label",
                 "负面", "--model", model, "--json"]) == 0
    queued = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    config = json.loads((Registry().root / "runs" / queued["run_id"] / "config.json").read_text(encoding="utf-8"))
    assert config["source"] == "export.csv" and config["score"]["input"] == str(export.resolve())
    assert main(["train", "--method", "zeroshot", "--dataset", "zh-easy", "--label", "positive=x", "--label",
                 "negative=X"]) == 2
    assert "same description" in capsys.readouterr().err


def test_an_edit_is_previewed_without_saving_and_saved_as_a_new_run(workspace):
    from core.zeroshot import compare_descriptions, edited_config, preview_texts, submit_command

    model = ZeroShotModel.build(default_descriptions(["positive", "negative"], "zh"), str(converted_folder()),
                                encoder=encoder())
    saved = model.prototypes.copy()
    swapped = {"positive": ["负面评价，不满意"], "negative": ["正面评价，满意"]}
    frame = compare_descriptions(model, swapped, [CHINESE["positive"][0], " ", CHINESE["negative"][0]])
    assert frame["before"].tolist() == ["positive", "negative"] and frame["after"].tolist() == ["negative", "positive"]
    assert frame["changed"].all() and frame["after_confidence"].between(0.5, 1).all()
    np.testing.assert_array_equal(model.prototypes, saved)  # the saved run's vectors are untouched
    with pytest.raises(ConfigError, match="'negative' has an empty description"):
        compare_descriptions(model, {"positive": ["好"], "negative": []}, ["好"])
    rows = [(f"{text}（第{i}条）", label) for label, items in CHINESE.items() for text in items for i in range(2)]
    _save_dataset("zh-easy", rows)
    folder = create_zeroshot_run(ZeroShotConfig(dataset="zh-easy", model=str(converted_folder()), limit=2,
                                                score={"input": "x.csv"}))
    pd.DataFrame({"text": ["a1", "a2", "b1", "b2"], "label": ["a", "a", "b", "b"]}).to_parquet(
        folder / "predictions_test.parquet")
    assert preview_texts(folder, ["typed", "  "], rows=2) == ["typed", "a1", "b1"]
    config = edited_config(folder, swapped)
    assert config.descriptions == swapped and config.dataset == "zh-easy" and config.limit == 2
    assert config.score == {} and config.run_id == ""
    command = submit_command(config)
    assert command.startswith("python -m core jobs submit --method zeroshot --dataset zh-easy --model ")
    assert "--label 'positive=负面评价，不满意'" in command and "--limit 2" in command


def test_the_estimate_of_a_zero_shot_run_learns_from_earlier_ones(workspace, easy_dataset):
    """A guess before any run; then start-up plus the test rows at the speed earlier runs measured."""
    import json

    from core.estimates import ZEROSHOT_STARTUP_S, ZEROSHOT_TEXTS_PER_S, estimate_zeroshot
    from core.workspace import Registry
    from core.zeroshot import ZeroShotConfig, rows_to_label

    config = ZeroShotConfig(labels=["positive", "negative"], dataset=easy_dataset)
    rows = rows_to_label(config.to_dict(), Registry())
    first = estimate_zeroshot(config)
    assert first.basis == "guess" and first.seconds == ZEROSHOT_STARTUP_S + rows / ZEROSHOT_TEXTS_PER_S["cpu"]
    registry = Registry()
    registry.add_run("run_zs1", easy_dataset, None, None, {"method": "zeroshot", "model": "multilingual"})
    folder = registry.root / "runs" / "run_zs1"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"test_rows": 100, "seconds": ZEROSHOT_STARTUP_S + 20}))
    second = estimate_zeroshot(config)
    assert second.basis == "measured" and abs(second.seconds - (ZEROSHOT_STARTUP_S + rows / 5.0)) < 1e-6
