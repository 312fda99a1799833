"""Security rules that hold across the code base, each checked where it could break."""

import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for p in [*ROOT.glob("core/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app.py"]]


def test_server_defaults_localhost_xsrf_no_error_details():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["client"]["showErrorDetails"] == "none"
    assert config["browser"]["gatherUsageStats"] is False


def test_no_secrets_file_is_committed():
    assert not (ROOT / ".streamlit" / "secrets.toml").exists() or "secrets.toml" in (ROOT / ".gitignore").read_text()


@pytest.mark.parametrize("pattern, why", [
    (r"trust_remote_code\s*=\s*True", "remote code is never trusted"),
    (r"pickle\.loads?\(|import pickle|joblib\.load|cloudpickle", "uploads and models are never unpickled"),
    (r"torch\.load\((?![^)]*weights_only=True)", "torch.load only with weights_only=True (own checkpoints)"),
    (r"(?<![.\w])(eval|exec)\(", "no eval/exec of anything"),
    (r"unsafe_allow_html\s*=\s*True", "HTML goes through st.html with escaped user text"),
    (r"shell\s*=\s*True", "no shell commands built from strings"),
])
def test_forbidden_patterns(pattern, why):
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in SOURCES
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if re.search(pattern, line)]
    assert not hits, f"{why}: {hits}"


def test_user_html_is_escaped_wherever_html_is_rendered():
    from core.explain import highlight_html

    html = highlight_html(["<script>alert(1)</script>", "ok"], [0.9, -0.2])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_every_export_neutralises_formulas():
    import io

    from openpyxl import load_workbook

    from core import trends
    from core.exporting import to_csv_bytes, to_excel_bytes

    frame = pd.DataFrame({"text": ['=HYPERLINK("http://evil")', "+cmd|' /C calc'!A0", "@SUM(A1)", "fine"],
                          "n": [1, -2, 3, 4]})
    csv_text = to_csv_bytes(frame).decode("utf-8-sig")
    assert "'=HYPERLINK" in csv_text and "'+cmd|" in csv_text and "'@SUM" in csv_text and ",-2" in csv_text
    cells = [row[0] for row in load_workbook(io.BytesIO(to_excel_bytes(frame))).active.iter_rows(min_row=2)]
    assert [c.value for c in cells] == frame["text"].tolist()  # as written, no apostrophe added
    assert {c.data_type for c in cells} == {"s"}  # typed strings: no cell is a formula
    # trend alerts carry keywords taken from user texts
    report = trends.analyse(trends.demo_timeline(), trends.Columns(date="date", label="label", text="text"))
    alerts = trends.alerts_table(report)
    alerts.loc[0, "keywords"] = "=cmd|' /C calc'!A0"
    assert "'=cmd" in to_csv_bytes(alerts).decode("utf-8-sig")


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "/etc/passwd", "x\\y", "", " ", "a\x00b"])
def test_user_names_cannot_escape_the_workspace(name):
    from core.errors import OpinionLabError
    from core.workspace import check_name

    with pytest.raises(OpinionLabError):
        check_name(name, "dataset name")


def test_scoring_and_trend_sources_stay_inside_the_workspace(workspace):
    from core.errors import OpinionLabError
    from core.scoring import score_folder

    for bad in ("../../etc", "/etc", "..", "a/../../b"):
        with pytest.raises(OpinionLabError):
            score_folder(bad)
