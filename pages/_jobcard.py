"""The one card every page shows a piece of background work with (a training run, a scoring
job, a search): its name and state, where it came from, its progress in its own unit, why it
stopped, and the stop / run sooner / resume buttons; the page adds its own (rename, delete)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core import jobs
from core.i18n import format_count, format_duration
from pages._shared import lang, render, show_error, t

UNIT_TEXT = {"steps": "train.step", "rows": "score.rows", "trials": "jobs.trials"}


def state_text(status: str, job: jobs.Job | None) -> str:
    """The state in words: "queued (2nd in line)", "running", "succeeded" ..."""
    if job and status == "queued" and job.position:
        return render(jobs.queue_message(job))
    return t(f"status.{status}")


def progress(job: jobs.Job, where: Any) -> None:
    """Done of total in the job's unit; while it runs, the recent rate (rows) and the time left."""
    if not job.total:
        if job.status == "running" and job.unit == "rows":
            where.caption(t("score.counting"))
        return
    done = min(job.done, job.total)
    text = t(UNIT_TEXT.get(job.unit, "train.step"), step=format_count(done, lang()), done=format_count(done, lang()),
             total=format_count(job.total, lang()))
    if job.status == "running":
        if job.unit == "rows" and job.rows_per_s:
            text += " · " + t("unit.rows_per_s", n=f"{job.rows_per_s:,.1f}")
        if job.eta_s is not None:
            text += " · " + t("train.eta", eta=format_duration(job.eta_s, lang()))
    where.progress(done / job.total, text=text)


def buttons(job: jobs.Job, where: Any, key: str, in_fragment: bool = True) -> None:
    """Stop (queued or running), run sooner (queued), resume (stopped, interrupted or failed)."""
    acted = False
    if job.status in jobs.ACTIVE and where.button(t("train.stop"), key=f"stop_{key}"):
        jobs.cancel(job.id)
        acted = True
    if job.status == "queued" and where.button(t("train.up"), key=f"up_{key}"):
        jobs.move(job.id, "up")
        acted = True
    if job.status in jobs.RESUMABLE and where.button(t("train.resume"), key=f"resume_{key}"):
        jobs.resume(job.id)
        acted = True
    if acted:
        st.rerun(scope="fragment" if in_fragment else "app")


def job_card(job: jobs.Job | None, *, title: str, status: str, caption: str, key: str, reason: Any = None,
             result: str | None = None, extra: Callable[[Any], None] | None = None, in_fragment: bool = True) -> Any:
    """Place the card; returns its left column (for what the page shows below: curves, results).

    ``job`` is None for work done in the foreground from the CLI (no buttons then); ``reason`` is
    why it stopped (a Message dict or text), shown while it can be resumed; ``extra(column)``
    places the page's own buttons under the job's."""
    head, side = st.columns([4, 2])
    head.markdown(f"**{title}** · {t('train.status')}: **{state_text(status, job)}**")
    lane = f" · {t('jobs.lane.quick')}" if job and job.lane == jobs.QUICK and status == "queued" else ""
    head.caption(caption + lane)
    if job:
        progress(job, head)
    if result:
        head.caption(result)
    if reason and status in jobs.RESUMABLE:
        head.warning(t("train.error", error=render(reason)))
    try:
        if job:
            buttons(job, side, key, in_fragment)
        if extra is not None:
            extra(side)
    except Exception as exc:  # another session may have acted first
        show_error(exc)
    return head
