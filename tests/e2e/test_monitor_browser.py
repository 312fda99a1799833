"""One browser walk: create a monitor on the demo timeline, run it, see the alert on the page and
at a test webhook on 127.0.0.1."""

import json
import os
import time

import pandas as pd
import pytest

from tests.core.test_alerting import Receiver
from tests.e2e.conftest import need_chromium, screenshot, settle, start_server, stop_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server whose workers read the test's own secrets file (the webhook's address goes in later)."""
    need_chromium()
    home = tmp_path_factory.mktemp("monitor-e2e")
    secrets = tmp_path_factory.mktemp("secrets") / "secrets.toml"
    secrets.write_text("", encoding="utf-8")
    patch = pytest.MonkeyPatch()
    patch.setenv("OPINIONLAB_SECRETS", str(secrets))
    proc, url = start_server(home)
    try:
        yield {"url": url, "home": home, "secrets": secrets}
    finally:
        stop_server(proc)
        patch.undo()


def test_monitor_on_the_demo_timeline_alerts_the_webhook(served, page, tmp_path, monkeypatch):
    from core.data import Table, prepare_dataset
    from core.datasets import save_dataset
    from core.samples import load_sample
    from core.training import TrainConfig, create_run, run_training
    from tests.conftest import easy_rows

    monkeypatch.setenv("OPINIONLAB_HOME", str(served["home"]))
    save_dataset(prepare_dataset(Table(pd.DataFrame(easy_rows(), columns=["text", "label"], dtype="str"),
                                       "easy.csv", "csv")), "easy for monitors")
    run_training(create_run(TrainConfig(dataset="easy for monitors", method="baseline")))
    inbox = tmp_path / "exports"
    inbox.mkdir()
    demo = inbox / "demo-timeline.csv"
    load_sample("sample:demo-timeline")[0].frame.to_csv(demo, index=False)
    settled = time.time() - 3600
    os.utime(demo, (settled, settled))
    receiver = Receiver()
    try:
        served["secrets"].write_text(f'[alerts]\nOPS_HOOK = "{receiver.url}/hook"\n', encoding="utf-8")
        page.goto(served["url"] + "/monitors")
        page.get_by_role("heading", name="Monitors").first.wait_for()
        page.get_by_role("textbox", name="Name", exact=True).fill("demo")
        path = page.get_by_role("textbox", name="Path")
        path.fill(str(inbox))
        path.press("Enter")
        settle(page)
        secret = page.get_by_role("textbox", name="Secret with the address")
        secret.fill("OPS_HOOK")
        secret.press("Enter")
        settle(page)
        page.get_by_role("button", name="Add channel").click()
        page.get_by_text("OPS_HOOK").first.wait_for()
        page.get_by_role("button", name="Create monitor").click()
        page.get_by_text("Monitor demo saved.").wait_for()
        screenshot(page, "monitors-01-created")
        page.get_by_role("button", name="Run now").click()
        page.get_by_text("Latest alert:").wait_for(timeout=180_000)
        settle(page)
        assert page.get_by_text("surged").count() >= 1
        screenshot(page, "monitors-02-alert")
    finally:
        receiver.close()
    received = [json.loads(r["body"]) for r in receiver.requests]
    assert received, "the webhook received no alert"
    assert any("boring" in a["keywords"] for a in received)
    assert all(a["monitor"] == "demo" and "/trends?source=monitor%3A" in a["url"] for a in received)
