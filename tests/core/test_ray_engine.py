"""The Ray engine against the local engine, on a local 2-CPU Ray started once per session."""

import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from core import jobs, ray_engine  # noqa: E402
from core.cli import main  # noqa: E402
from core.errors import ConfigError, DataError  # noqa: E402
from core.scoring import ScoreConfig, create_score, run_scoring  # noqa: E402
from core.workspace import read_json  # noqa: E402
from tests.conftest import easy_rows  # noqa: E402
from tests.core import test_scoring  # noqa: E402
from tests.core.test_jobs import wait_done, wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(600)
tiny_run = test_scoring.tiny_run  # the scoring tests' fixture: a 2-layer BERT run


@pytest.fixture(scope="session")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, runtime_env=ray_engine.runtime_env(), log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def tricky_frame(n: int) -> pd.DataFrame:
    """Texts with empty and blank cells, spreadsheet formulas and quoted cells over several lines."""
    texts = [t for t, _ in easy_rows(n // 2 + 1)][:n]
    frame = pd.DataFrame({"id": [str(i) for i in range(n)], "review": texts, "note": ["ok"] * n})
    frame.loc[3, "review"] = ""
    frame.loc[4, "review"] = "   "
    frame.loc[5, "review"] = "great film\nsecond line, with \"quotes\"\n\nand a blank line"
    frame.loc[6, "review"] = "=HYPERLINK(\"http://x\",\"boring\")"
    frame.loc[7, "note"] = "=cmd|' /C calc'!A0"
    frame.loc[8, "note"] = "+1 awful"
    return frame


def ray_score(run_id, source, out, **kw):
    folder = ray_engine.create_ray_score(ScoreConfig(run_id=run_id, input=str(source), output=str(out), **kw))
    return folder, ray_engine.run_ray_scoring(folder)


def test_ray_output_equals_local_engine_row_for_row(ray_cluster, tiny_run, tmp_path):
    source = tmp_path / "posts.csv"
    tricky_frame(300).to_csv(source, index=False)
    ray_folder, summary = ray_score(tiny_run, source, tmp_path / "ray.csv", chunk_rows=40)
    local = create_score(ScoreConfig(run_id=tiny_run, input=str(source), output=str(tmp_path / "local.csv"),
                                     chunk_rows=40))
    local_summary = run_scoring(local)
    ours, theirs = pd.read_parquet(ray_folder / "scored.parquet"), pd.read_parquet(local / "scored.parquet")
    # texts, labels and types exactly; probabilities to float32 rounding (Ray's blocks batch the
    # texts differently, which moves the last bit of a few of them)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=0, atol=1e-6)
    assert ours["label"].tolist() == theirs["label"].tolist()
    assert ours["id"].tolist() == [str(i) for i in range(300)]
    assert ours.loc[5, "review"].count("\n") == 3 and ours.loc[3, "label"] == ""
    # the same formula-safe CSV (every cell but the probabilities' last digits) and the same counts
    read = {"dtype": str, "keep_default_na": False, "encoding": "utf-8-sig"}
    ray_csv, local_csv = pd.read_csv(tmp_path / "ray.csv", **read), pd.read_csv(tmp_path / "local.csv", **read)
    texts = ["id", "review", "note", "label"]
    pd.testing.assert_frame_equal(ray_csv[texts], local_csv[texts])
    assert ray_csv.loc[7, "note"] == "'=cmd|' /C calc'!A0" and ray_csv.loc[6, "review"].startswith("'=")
    assert {k: summary[k] for k in ("rows", "scored", "empty", "label_counts", "escaped_cells")} == \
           {k: local_summary[k] for k in ("rows", "scored", "empty", "label_counts", "escaped_cells")}
    assert summary["engine"] == "ray" and summary["escaped_cells"]
    status = read_json(ray_folder / "status.json")
    assert status["status"] == "succeeded" and status["rows_done"] == status["total_rows"] == 300


def test_folder_and_glob_of_csv_and_parquet_keep_the_files_order(ray_cluster, baseline_run, tmp_path):
    frame = tricky_frame(90)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    frame.iloc[:30].to_csv(inputs / "a.csv", index=False)
    frame.iloc[30:60].to_parquet(inputs / "b.parquet", index=False)
    frame.iloc[60:].to_csv(inputs / "c.csv", index=False)
    (inputs / "notes.md").write_text("not an input")
    folder, summary = ray_score(baseline_run, inputs, tmp_path / "out.parquet", chunk_rows=7)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["id"].tolist() == frame["id"].tolist() and summary["rows"] == 90
    assert list(out.columns[:3]) == ["id", "review", "note"]
    assert read_json(folder / "score.json")["source_name"] == "inputs"
    _, by_glob = ray_score(baseline_run, str(inputs / "*.csv"), tmp_path / "glob.parquet")
    assert pd.read_parquet(tmp_path / "glob.parquet")["id"].tolist() == frame["id"].tolist()[:30] + \
        frame["id"].tolist()[60:]


def map_worker_pids() -> list[int]:
    """The processes of the scoring actors (Ray titles them after the callable class)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"ScoreWorker" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_worker_killed_mid_run_still_gives_every_row_exactly_once(ray_cluster, tiny_run, tmp_path):
    source = tmp_path / "big.csv"
    tricky_frame(12_000).to_csv(source, index=False)
    folder = ray_engine.create_ray_score(ScoreConfig(run_id=tiny_run, input=str(source), chunk_rows=150, fast=True))
    killed = {}

    def kill_one_actor():
        status = wait_for(lambda: (s := read_json(folder / "status.json", {}) or {}).get("rows_done") and s,
                          what="the first scored chunk")
        pid = wait_for(map_worker_pids, what="a scoring actor")[0]
        os.kill(pid, signal.SIGKILL)
        killed.update(pid=pid, rows_done=status["rows_done"], status=status["status"])

    killer = threading.Thread(target=kill_one_actor, daemon=True)
    killer.start()
    summary = ray_engine.run_ray_scoring(folder)
    killer.join(timeout=60)
    assert killed["status"] == "running" and 0 < killed["rows_done"] < 12_000  # killed mid-run
    out = pd.read_parquet(folder / "scored.parquet")
    assert summary["rows"] == 12_000 and out["id"].tolist() == [str(i) for i in range(12_000)]
    assert summary["fast"] and 0 <= summary["fast_agreement"] <= 1  # int8 on the workers, measured as locally


def test_job_shows_progress_stops_and_resumes_like_a_local_one(ray_cluster, tiny_run, tmp_path):
    source = tmp_path / "big.csv"
    tricky_frame(12_000).to_csv(source, index=False)
    folder = ray_engine.create_ray_score(ScoreConfig(run_id=tiny_run, input=str(source), chunk_rows=150,
                                                     address=ray_cluster))
    job = jobs.submit(folder, kind="score", job_id=folder.name, lane=jobs.LONG)
    wait_for(lambda: (read_json(folder / "status.json", {}) or {}).get("rows_done"), what="progress")
    jobs.cancel(job["id"])
    assert wait_done(job["id"]) == "cancelled"
    stopped = read_json(folder / "status.json")
    assert stopped["status"] == "cancelled" and 0 < stopped["rows_done"] < 12_000
    jobs.resume(job["id"])
    assert wait_done(job["id"]) == "succeeded"
    out = pd.read_parquet(folder / "scored.parquet")
    assert out["id"].tolist() == [str(i) for i in range(12_000)]
    events = [e["event"] for e in map(json.loads, (folder / "progress.jsonl").read_text().splitlines())]
    assert events.count("start") == 2 and "stopped" in events and events[-1] == "done"


# ---------------------------------------------------------------------------------------- bad input
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_address_is_refused_with_the_address(baseline_run, tmp_path, capsys):
    source = tmp_path / "posts.csv"
    tricky_frame(20).to_csv(source, index=False)
    port = unused_port()
    code = main(["score", baseline_run, "--input", str(source), "--engine", "ray", "--address", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 2 and f"127.0.0.1:{port}" in err and "did not answer" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="ray://HOST:10001"):
        ray_engine.check_reachable(f"ray://127.0.0.1:{port}")


def test_endpoints_of_addresses():
    assert ray_engine._endpoint("ray://head.example:10001") == ("head.example", 10001)
    assert ray_engine._endpoint("ray://head.example") == ("head.example", 10001)
    assert ray_engine._endpoint("10.0.0.5") == ("10.0.0.5", 6379)
    assert ray_engine._endpoint("") is None
    with pytest.raises(ConfigError, match="not a Ray address"):
        ray_engine._endpoint("head:port")


def test_glob_matching_nothing_names_the_pattern(tmp_path):
    with pytest.raises(DataError, match=r"No file matches '.*nothing-\*\.csv'"):
        ray_engine.resolve_input(str(tmp_path / "nothing-*.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no file to score"):
        ray_engine.resolve_input(str(tmp_path / "empty"))


def test_mixed_inputs_with_different_columns_are_refused_naming_the_files(tmp_path):
    frame = tricky_frame(10)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.rename(columns={"review": "text"}).to_parquet(tmp_path / "b.parquet", index=False)
    with pytest.raises(DataError) as caught:
        ray_engine.resolve_input(str(tmp_path))
    text = str(caught.value)
    assert "a.csv has id, review, note" in text and "b.parquet has id, text, note" in text


def test_cluster_without_the_run_packages_says_which(ray_cluster):
    with pytest.raises(ConfigError) as caught:
        ray_engine.check_packages({"opinionlab-no-such-package": "1.0", "numpy": "0.0.1", "pandas": pd.__version__})
    text = str(caught.value)
    assert "opinionlab-no-such-package 1.0 (not installed)" in text
    assert f"numpy 0.0.1 ({__import__('numpy').__version__})" in text and "pandas" not in text
    ray_engine.check_packages(ray_engine.required_packages("transformer"))  # this machine's own: fine


def test_without_ray_the_engine_says_how_to_install_it(baseline_run, tmp_path, capsys, monkeypatch):
    source = tmp_path / "posts.csv"
    tricky_frame(20).to_csv(source, index=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    assert main(["score", baseline_run, "--input", str(source), "--engine", "ray"]) == 2
    assert "pip install -r requirements-ray.txt" in capsys.readouterr().err


def test_ray_options_need_the_ray_engine(baseline_run, tmp_path, capsys):
    source = tmp_path / "posts.csv"
    tricky_frame(20).to_csv(source, index=False)
    assert main(["score", baseline_run, "--input", str(source), "--workers", "4"]) == 2
    assert "--engine ray" in capsys.readouterr().err


def test_ray_engine_is_offered_only_with_a_configured_address(tmp_path, monkeypatch):
    monkeypatch.delenv(ray_engine.ADDRESS_ENV, raising=False)
    monkeypatch.setenv("OPINIONLAB_SECRETS", str(tmp_path / "secrets.toml"))
    assert ray_engine.engines() == ["local"]
    (tmp_path / "secrets.toml").write_text('[opinionlab]\nray_address = "ray://head:10001"\n')
    assert ray_engine.engines() == ["local", "ray"] and ray_engine.configured_address() == "ray://head:10001"
    monkeypatch.setenv(ray_engine.ADDRESS_ENV, "auto")
    assert ray_engine.configured_address() == "auto"
