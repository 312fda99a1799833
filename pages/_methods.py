"""The Results page's Methods view: a method comparison's chart (accuracy against training
examples per class, one line per method, the baseline dashed, seeds as error bars) and table."""

from __future__ import annotations

import streamlit as st

from core import comparison, jobs
from core.comparison_display import methods_figure, summary_table
from core.i18n import format_timestamp
from pages._shared import chart, lang, render, rerun_when_ended, t


def methods_view() -> None:
    records = comparison.list_comparisons()
    if not records:
        st.info(t("lab.methods.none"))
        st.code("python -m core compare-methods --dataset NAME --methods baseline,full,lora,ia3 "
                "--per-class 8,32,128,all --seeds 3", language="bash")
        return
    labels = {r["id"]: t("lab.methods.label", dataset=r["dataset"], runs=len(r["runs"]),
                         when=format_timestamp(r["created_at"], lang())) for r in records}
    picked = st.selectbox(t("lab.methods.pick"), list(labels), format_func=labels.get, key="methods_pick")
    report = comparison.comparison_report(picked)
    # refreshed while its runs are still queued or training in the background
    st.fragment(comparison_panel, run_every=5 if active(report) else None)(picked)


def active(report: dict) -> bool:
    return any(row["status"] in jobs.ACTIVE for row in report["rows"])


def comparison_panel(picked: str) -> None:
    report = comparison.comparison_report(picked)
    rerun_when_ended(f"methods_active_{picked}", active(report))
    for note in comparison.refusal_messages(report):
        st.warning(render(note))
    done, total = sum(1 for row in report["rows"] if row["accuracy"] is not None), len(report["rows"])
    if active(report):
        st.info(t("lab.methods.waiting", done=done, total=total))
    elif done < total:  # nothing will fill these cells unless someone resumes their runs
        st.warning(t("lab.methods.ended_short", done=done, total=total, missing=total - done))
    chart(methods_figure(report["summary"], report["per_class"], lang()), key=f"methods_{picked}")
    caption = "lab.methods.caption" if report["seeds"] > 1 else "lab.methods.caption_one"
    st.caption(t(caption, dataset=report["dataset"], seeds=report["seeds"]))
    table = summary_table(report["summary"], lang())
    st.dataframe(table, hide_index=True, width="stretch", height=35 * (len(table) + 1) + 3)  # every row, no scroll
