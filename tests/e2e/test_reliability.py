"""Faults and load in a real browser: a server restart under a running job, two sessions acting
on one run, eight sessions at once while a job trains."""

import asyncio
import os
import re
import statistics
import threading
import time

import pandas as pd
import pytest

from core import jobs
from core.data import Table, prepare_dataset
from core.datasets import save_dataset
from core.training import create_run
from core.workspace import Registry, read_json
from tests.conftest import easy_rows
from tests.core.test_jobs import last_step, wait_done, wait_for
from tests.core.test_training import tiny_config
from tests.e2e.conftest import CHROMIUM, need_chromium, no_exception, screenshot, start_server, stop_server

PAGES = [("home", "Opinion Lab"), ("data", "Data"), ("train", "Train"), ("results", "Results"),
         ("score", "Score"), ("trends", "Trends")]
STEPS = re.compile(r"Step ([\d,]+) of ([\d,]+)")  # counts carry thousands separators


def long_job(home, tiny_model_dir, monkeypatch, epochs=100):
    """A tiny-model run of thousands of steps: it outlives whatever the test does, which then
    stops it (no test waits for it to finish)."""
    monkeypatch.setenv("OPINIONLAB_HOME", str(home))
    save_dataset(prepare_dataset(Table(pd.DataFrame(easy_rows(), columns=["text", "label"], dtype="str"),
                                       "easy.csv", "csv")), "easy")
    folder = create_run(tiny_config(tiny_model_dir, epochs=epochs, batch_size=2, checkpoint_every=200,
                                    eval_every=100_000))
    job = jobs.submit(folder)
    wait_for(lambda: last_step(folder) >= 1, what="the job's first step")
    return folder, job["id"]


def highest_step(page) -> int:
    return max((int(m.group(1).replace(",", "")) for m in STEPS.finditer(page.inner_text("body"))), default=-1)


def test_server_restart_keeps_the_job_and_two_sessions_agree(browser, tmp_path, monkeypatch, tiny_model_dir):
    need_chromium()
    home = tmp_path / "workspace"
    folder, job_id = long_job(home, tiny_model_dir, monkeypatch)
    proc, url = start_server(home)
    one = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
    two = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
    second = None
    try:
        one.goto(url + "/train")
        one.get_by_text(STEPS).first.wait_for(timeout=60_000)
        stop_server(proc)  # the server goes away; the job is its own process and keeps training
        pid = Registry().job(job_id)["pid"]
        os.kill(pid, 0)  # still alive (raises if not)
        assert Registry().job(job_id)["status"] == "running"
        at_restart = last_step(folder)

        second, url = start_server(home)
        one.goto(url + "/train")
        two.goto(url + "/train")
        for page in (one, two):  # the new server shows live progress, beyond where it was at the restart
            page.wait_for_function("n => [...document.body.innerText.matchAll(/Step ([\\d,]+) of/g)]"
                                   ".some(m => Number(m[1].replaceAll(',', '')) > n)", arg=at_restart, timeout=60_000)
        first_seen = highest_step(two)
        two.wait_for_function("n => [...document.body.innerText.matchAll(/Step ([\\d,]+) of/g)]"
                              ".some(m => Number(m[1].replaceAll(',', '')) > n)", arg=first_seen, timeout=60_000)  # it moves
        screenshot(two, "reliability-after-restart")

        one.get_by_role("button", name="Stop").first.click()  # session one stops the run ...
        two.get_by_text("Status: cancelled").first.wait_for(timeout=120_000)  # ... session two sees it
        one.get_by_text("Status: cancelled").first.wait_for(timeout=60_000)
        for page in (one, two):
            no_exception(page)
        assert Registry().job(job_id)["status"] == "cancelled"
        assert Registry().run(folder.name)["status"] == "cancelled"
        status = read_json(folder / "status.json")
        pointer = read_json(folder / "checkpoints" / "latest.json")
        assert status["status"] == "cancelled" and pointer["step"] == status["step"]
        two.reload()
        two.get_by_role("button", name="Resume").first.wait_for()  # both see the same actions offered
        screenshot(two, "reliability-stopped-from-another-session")
    finally:
        if Registry().job(job_id)["status"] in ("queued", "running"):
            jobs.cancel(job_id)
        if second is not None:
            stop_server(second)
        one.context.close()
        two.context.close()


async def _one_session(browser, url: str, timings: list[tuple[str, float]], errors: list[str]) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 1200})
    page = await context.new_page()
    page.set_default_timeout(120_000)
    for path, heading in PAGES:
        start = time.perf_counter()
        await page.goto(f"{url}/{path}")
        await page.get_by_role("heading", name=heading, exact=True).first.wait_for()
        await page.wait_for_selector('[data-testid="stStatusWidget"]', state="hidden")
        timings.append((path, time.perf_counter() - start))
        if await page.locator('[data-testid="stException"]').count():
            errors.append(path)
    await context.close()


def _eight_sessions(url: str) -> tuple[list[tuple[str, float]], list[str]]:
    from playwright.async_api import async_playwright

    async def main():
        timings, errors = [], []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                               args=["--no-sandbox", "--disable-gpu", "--disable-quic"])
            await asyncio.gather(*[_one_session(browser, url, timings, errors) for _ in range(8)])
            await browser.close()
        return timings, errors

    result = {}
    # Playwright's sync API owns this thread's event loop: the async sessions get a thread of their own
    worker = threading.Thread(target=lambda: result.update(value=asyncio.run(main())))
    worker.start()
    worker.join()
    return result["value"]


def test_eight_sessions_load_every_page_while_a_job_trains(tmp_path, monkeypatch, tiny_model_dir):
    need_chromium()
    home = tmp_path / "workspace"
    folder, job_id = long_job(home, tiny_model_dir, monkeypatch)
    proc, url = start_server(home)
    try:
        timings, errors = _eight_sessions(url)
        assert Registry().job(job_id)["status"] == "running"  # the job trained throughout
    finally:
        jobs.cancel(job_id)
        stop_server(proc)
    assert not errors, f"pages with an exception: {errors}"
    assert len(timings) == 8 * len(PAGES)
    seconds = [s for _, s in timings]
    worst = max(timings, key=lambda x: x[1])
    print(f"\n8 sessions x {len(PAGES)} pages with a training job running: median render "
          f"{statistics.median(seconds):.2f} s, worst {worst[1]:.2f} s ({worst[0]})")
    for path, _ in PAGES:
        per_page = [s for p, s in timings if p == path]
        print(f"  {path:<8} median {statistics.median(per_page):.2f} s, worst {max(per_page):.2f} s")
    assert wait_done(job_id) == "cancelled"


@pytest.fixture(autouse=True)
def _no_stray_jobs():
    """A failing test must not leave a worker training in the background."""
    yield
    for job in Registry().jobs(("queued", "running")):
        jobs.cancel(job["id"])
