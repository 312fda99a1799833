import json
import subprocess
import sys

from core.cli import main
from tests.conftest import csv_bytes, labelled_rows


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, timeout=300, env=env)


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_data_add_show_list_remove_json(tmp_path, capsys):
    path = tmp_path / "reviews.csv"
    path.write_bytes(csv_bytes(labelled_rows(10)))
    assert main(["data", "add", str(path), "--name", "r1", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["name"] == "r1" and out["rows"] == 20
    assert out["classes"] == {"negative": 10, "positive": 10}
    assert out["encoding"] == "utf-8" and out["columns"]["text"] == "text" and out["warnings"] == []
    assert main(["data", "show", "r1", "--json"]) == 0
    assert last_json(capsys.readouterr().out)["rows"] == 20
    assert main(["data", "list", "--json"]) == 0
    assert [d["name"] for d in last_json(capsys.readouterr().out)["datasets"]] == ["r1"]
    assert main(["data", "remove", "r1"]) == 0
    assert main(["data", "show", "r1"]) == 2


def test_column_overrides(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_bytes(csv_bytes([(t, lab, "web") for t, lab in labelled_rows(10)], header=("body", "stars", "site")))
    assert main(["data", "add", str(path), "--text-col", "body", "--label-col", "stars", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["name"] == "x" and out["columns"]["label"] == "stars"


def test_user_errors_exit_2_with_one_paragraph(tmp_path):
    bad = tmp_path / "single.csv"
    bad.write_bytes(csv_bytes([(f"text {i}", "positive") for i in range(10)]))
    result = run_cli("data", "add", str(bad))
    assert result.returncode == 2
    assert "same label" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = run_cli("data", "add", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    usage = run_cli("data", "frobnicate")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_bad_dataset_name_and_wrong_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(csv_bytes(labelled_rows(10)))
    assert run_cli("data", "add", str(path), "--name", "../../etc").returncode == 2
    result = run_cli("data", "add", str(path), "--label-col", "stars")
    assert result.returncode == 2 and "'stars' is not in the file" in result.stderr


def test_sample_through_subprocess_json_last_line():
    result = run_cli("data", "add", "sample:chinese-reviews", "--json")
    assert result.returncode == 0, result.stderr
    out = last_json(result.stdout)
    assert out["name"] == "chinese-reviews" and out["encoding"] == "utf-8"
    assert set(out["classes"]) == {"negative", "positive"} and out["warnings"]


def test_internal_error_exits_1(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("core.datasets.list_datasets", boom)
    assert main(["data", "list"]) == 1
    assert "Internal error" in capsys.readouterr().err


def test_lang_zh_speaks_chinese_on_stderr_and_in_messages(tmp_path, capsys):
    missing = run_cli("data", "add", str(tmp_path / "nope.csv"), "--lang", "zh")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("错误：文件“") and "不存在，或不是一个文件" in missing.stderr
    assert main(["--lang=zh", "data", "show", "nothing"]) == 2
    assert "没有名为“nothing”的数据集" in capsys.readouterr().err
    skewed = tmp_path / "skewed.csv"
    skewed.write_bytes(csv_bytes(labelled_rows(40)[:40] + labelled_rows(40)[40:50]))
    assert main(["data", "add", str(skewed), "--json", "--lang", "zh"]) == 0
    assert last_json(capsys.readouterr().out)["warnings"][0].startswith("类别不平衡")
    assert main(["data", "show", "skewed"]) == 0
    assert "warning: Classes are imbalanced" in capsys.readouterr().out


def test_unknown_language_is_a_user_error(capsys):
    assert main(["--lang", "fr", "data", "list"]) == 2
    assert "Unknown language 'fr' for --lang: use one of en, zh." in capsys.readouterr().err
