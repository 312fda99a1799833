"""The Train page's Search section: launch a hyperparameter search as a background job, follow
its trials, and turn the best settings into a named config that trains with one click."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import jobs, tuning
from core.comparison_display import method_name
from core.i18n import format_timestamp
from core.training import METHODS, TrainConfig, create_run
from core.workspace import Registry
from pages._shared import job_card, lang, render, rerun_when_ended, show_error, t


def search_section(cards: list[dict]) -> None:
    """An expander under the training form, for the dataset chosen there."""
    dataset = st.session_state.get("train_dataset") or cards[0]["name"]
    with st.expander(t("lab.search.title", dataset=dataset), icon=":material/tune:"):
        st.caption(t("lab.search.intro"))
        try:
            launch_form(dataset)
            searches = tuning.list_searches(dataset=dataset)
            if searches:
                show_search(searches)
            saved_configs()
        except Exception as exc:  # bad ranges or a vanished search end in a message
            show_error(exc)


def _model() -> str:
    """The model chosen in the training form above (the embedded one by default)."""
    return st.session_state.get("train_model_chosen") or "default"


def launch_form(dataset: str) -> None:
    methods = [m for m in METHODS if tuning.tunable(m)]
    method = st.selectbox(t("lab.search.method"), methods, key="search_method",
                          format_func=lambda m: method_name(m, lang()))
    space = tuning.default_space(method)
    with st.form(f"search_form_{method}"):
        c1, c2 = st.columns(2)
        trials = c1.number_input(t("lab.search.trials"), min_value=1, max_value=tuning.MAX_TRIALS, value=10,
                                 key="search_trials", help=t("lab.search.trials_help"))
        limit = c2.number_input(t("train.setting.limit"), min_value=0, value=2000, step=500, key="search_limit",
                                help=t("lab.search.limit_help"))
        ranges = {name: range_inputs(name, low, high, method) for name, (low, high) in space.items()}
        submitted = st.form_submit_button(t("lab.search.start"), type="primary")
    st.caption(t("lab.search.command"))
    st.code(f"python -m core tune --dataset {dataset} --method {method} --trials {int(trials)} --limit {int(limit)} "
            "--space " + ",".join(f"{name}={low:g}:{high:g}" for name, (low, high) in ranges.items()), language="bash")
    if submitted:
        config = tuning.SearchConfig(dataset=dataset, method=method, model=_model(), trials=int(trials),
                                     limit=int(limit), space=ranges)
        folder = tuning.create_search(config)
        job = jobs.submit(folder, kind="tune", created_by=st.session_state.get("user"))
        st.success(t("lab.search.started", search=folder.name, state=render(jobs.queue_message(job))))


def range_inputs(name: str, low: float, high: float, method: str) -> list[float]:
    c1, c2 = st.columns(2)
    label = t(f"train.setting.{name}")
    whole = name in tuning.INTEGERS
    kind = {"step": 1} if whole else {"format": "%g", "step": None if name == "learning_rate" else 0.05}
    cast = int if whole else (lambda v: float(f"{float(v):.6g}"))  # 3e-4, not 0.00030000000000000003
    lo = c1.number_input(t("lab.search.low", name=label), value=cast(low), key=f"search_lo_{name}_{method}", **kind)
    hi = c2.number_input(t("lab.search.high", name=label), value=cast(high), key=f"search_hi_{name}_{method}", **kind)
    return [lo, hi]


def _label(search: dict) -> str:
    return t("lab.search.label", method=method_name(search["method"], lang()), done=search["done"],
             trials=search["trials"], when=format_timestamp(search["created_at"], lang()))


def show_search(searches: list[dict]) -> None:
    labels = {s["id"]: _label(s) for s in searches}
    picked = st.selectbox(t("lab.search.pick"), list(labels), format_func=labels.get, key="search_pick")
    report = tuning.search_report(picked)
    # refreshed while the search runs; when it ends, one whole rerun brings the save form
    st.fragment(live_search, run_every=2 if (report["status"] or "queued") in jobs.ACTIVE else None)(
        picked, next(s["created_at"] for s in searches if s["id"] == picked))
    best = report["best"]
    if best is None or report["status"] in jobs.ACTIVE:  # the best so far is shown live above
        return
    with st.form(f"save_best_{picked}"):
        name = st.text_input(t("lab.search.config_name"), value=f"{report['config']['dataset']}-{best['run_id'][-6:]}",
                             key=f"config_name_{picked}")
        if st.form_submit_button(t("lab.search.use"), type="primary"):
            path = tuning.save_best_config(picked, name)
            st.success(t("lab.search.saved", name=path.stem, path=str(path)))


def live_search(picked: str, created_at: float) -> None:
    """The search's card, trials and best settings, refreshed while it runs; when it ends, the
    whole page reruns (the picker's trial counts and the save form follow)."""
    report = tuning.search_report(picked)
    status = report["status"] or "queued"
    rerun_when_ended(f"search_active_{picked}", status in jobs.ACTIVE)
    registry = Registry()
    row = registry.job(report["id"])
    title = _label({"method": report["config"]["method"], "done": report["finished"], "trials": report["planned"],
                    "created_at": created_at})
    job_card(jobs.describe(row, registry) if row else None, title=title, status=status, key=picked,
             caption=f"`{picked}`", reason=report.get("reason"))
    if report["trials"]:
        st.dataframe(trials_table(report["trials"]), hide_index=True, width="stretch")
    best = report["best"]
    if best is None:
        st.info(t("lab.search.no_best"))
        return
    st.markdown(t("lab.search.best", number=best["number"], f1=f"{best['validation_macro_f1']:.3f}",
                  settings=settings_text(best["settings"])))


def settings_text(settings: dict) -> str:
    return ", ".join(f"{t(f'train.setting.{k}')} {v:.3g}" if isinstance(v, float) else f"{t(f'train.setting.{k}')} {v}"
                     for k, v in settings.items())


def trials_table(trials: list[dict]) -> pd.DataFrame:
    """Trial, outcome, validation macro F1 (3 decimals), then one column per setting."""
    rows = []
    for trial in trials:
        f1 = trial["validation_macro_f1"]
        row = {t("lab.col.trial"): str(trial["number"]), t("lab.col.outcome"): t(f"lab.outcome.{trial['outcome']}"),
               t("lab.col.validation_f1"): "—" if f1 is None else f"{f1:.3f}"}
        for name, value in trial["settings"].items():
            row[t(f"train.setting.{name}")] = f"{value:.3g}" if isinstance(value, float) else f"{value:,}"
        rows.append(row)
    return pd.DataFrame(rows, dtype="str").fillna("—")


def saved_configs() -> None:
    configs = tuning.saved_configs()
    if not configs:
        return
    st.subheader(t("lab.search.configs"))
    name = st.selectbox(t("lab.search.config_pick"), list(configs), key="search_config_pick")
    st.code(f"python -m core train --config {configs[name]}", language="bash")
    if st.button(t("lab.search.train_config"), key="search_train_config"):
        registry = Registry()
        folder = create_run(TrainConfig.load(configs[name]), registry, created_by=st.session_state.get("user"))
        job = jobs.submit(folder, registry, created_by=st.session_state.get("user"))
        st.success(t("lab.search.config_started", name=name, state=render(jobs.queue_message(job, registry))))
