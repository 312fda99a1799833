import streamlit as st

from core import jobs, runs
from core.datasets import list_datasets, load_rows
from core.errors import OpinionLabError
from core.estimates import estimate_training
from core.fewshot import method_advice
from core.figures import training_curves_figure
from core.i18n import Message, format_count, format_duration, format_timestamp, render
from core.language import language_mix, suggested_model, vocabulary_warning
from core.result_tables import applies
from core.training import (
    METHODS,
    PRESETS,
    TrainConfig,
    config_from_preset,
    create_run,
    delete_run,
    method_limits,
    read_progress,
    submit_command,
    validate,
)
from core.workspace import Registry
from pages._search import search_section
from pages._shared import chart, job_card, keep_choice, lang, show_error, start_run, t, through_app
from pages._zeroshot import train_form as zeroshot_form

through_app(__file__)
HELP = TrainConfig.help_texts(lang())  # each setting's help in the reader's language

ADVANCED = {  # field: (widget kind, min, step)
    "epochs": ("int", 1, 1), "learning_rate": ("float", 1e-6, 1e-5), "batch_size": ("int", 1, 1),
    "grad_accum": ("int", 1, 1), "max_length": ("int", 8, 8), "head_tokens": ("int", 0, 8),
    "warmup_ratio": ("float", 0.0, 0.05), "weight_decay": ("float", 0.0, 0.01), "seed": ("int", 0, 1),
    "early_stopping_patience": ("int", 0, 1), "limit": ("int", 0, 100), "max_eval_rows": ("int", 0, 100),
    "lora_r": ("int", 1, 1), "lora_alpha": ("int", 1, 1), "adalora_init_r": ("int", 1, 1),
    "virtual_tokens": ("int", 1, 1),
}


@st.cache_data(max_entries=8, show_spinner=False)
def dataset_language(dataset_id: str) -> tuple[str, Message]:
    mix = language_mix(load_rows(dataset_id)["text"].tolist())
    return suggested_model(mix), mix.message()


@st.cache_data(max_entries=16, show_spinner=False)
def unknown_tokens_warning(model: str, dataset_id: str) -> Message | None:
    return vocabulary_warning(model, load_rows(dataset_id, split="train")["text"].tolist())


def settings_form(cards: list[dict]) -> TrainConfig | None:
    """The training settings; None when the method is zero-shot (its own form has launched)."""
    names = [c["name"] for c in cards]
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox(t("train.dataset"), names, key="train_dataset")
    method = keep_choice(c2.selectbox, t("train.method"), [*METHODS, "zeroshot"], key="train_method",
                         format_func=lambda m: t(f"train.method.{m}"), help=HELP["method"])
    preset = "quick" if method == "zeroshot" else keep_choice(
        c3.radio, t("train.preset"), list(PRESETS), key="train_preset", format_func=lambda p: t(f"train.preset.{p}"))
    card = next(c for c in cards if c["name"] == dataset)
    advice = method_advice(card["split_counts"].get("train", {}), method) if method != "zeroshot" else None
    if advice:
        (st.warning if method == "fewshot" else st.info)(advice.render(lang()), icon=":material/lightbulb:")
    if (limits := method_limits(method)) is not None:
        st.caption(limits.render(lang()))
    suggested, mix = dataset_language(card["id"])
    choices = ["default", "multilingual", "custom"]
    # keyed by dataset: choosing another dataset pre-selects the model that reads it
    choice = keep_choice(st.radio, t("train.model"), choices, key=f"train_model_choice_{card['id']}", horizontal=True,
                         index=choices.index(suggested), format_func=lambda m: t(f"train.model_{m}"),
                         help=HELP["model"])
    st.caption(t("language.suggested", model=suggested, mix=mix.render(lang())))
    model = choice
    if choice == "custom":
        model = st.text_input(t("train.model_path"), key="train_model_path").strip() or "default"
    st.session_state["train_model_chosen"] = model  # the Search section below searches with it
    if method != "baseline":
        with st.spinner(t("language.checking", model=model)):
            try:
                warning = unknown_tokens_warning(model, card["id"])
            except OpinionLabError:  # a model that cannot load: the launch check says why
                warning = None
        if warning:
            st.warning(warning.render(lang()), icon=":material/translate:")
    if method == "zeroshot":  # no training: a description per label instead of training settings
        zeroshot_form(card, model)
        return None
    config = config_from_preset(preset, dataset=dataset, method=method, model=model)
    variant = f"{preset}_{method}"  # new preset or method: fresh defaults in the form
    with st.expander(t("train.advanced")), st.form(f"advanced_{variant}"):
        values = {}
        cells = st.columns(4)
        shown = {name: spec for name, spec in ADVANCED.items() if applies(name, method)}
        for i, (name, (kind, low, step)) in enumerate(shown.items()):
            default, label = getattr(config, name), t(f"train.setting.{name}")
            if kind == "int":
                values[name] = cells[i % 4].number_input(label, min_value=low, value=int(default), step=step,
                                                         help=HELP[name], key=f"adv_{name}_{variant}")
            else:
                values[name] = cells[i % 4].number_input(label, min_value=low, value=float(default), step=step,
                                                         format="%g", help=HELP[name], key=f"adv_{name}_{variant}")
        st.form_submit_button(t("train.apply"))
    return TrainConfig.from_dict({**config.to_dict(), **values})


def launch(config: TrainConfig) -> None:
    problems = validate(config)
    if problems:
        st.error(t("train.problems") + "\n\n" + "\n".join(f"- {p}" for p in problems))
        return
    estimate = estimate_training(config)
    st.caption(t("queue.estimate", duration=format_duration(estimate.seconds, lang()),
                 rows=format_count(estimate.train_rows), basis=render(estimate.message, lang())))
    start_run(submit_command(config), lambda registry: create_run(config, registry, st.session_state.get("user")))


SHOWN_RUNS = 10  # the newest runs get a live card; the Results page lists them all


def run_card(run: dict, job: dict | None, registry: Registry) -> None:
    """One run in the shared job card, plus rename and delete; a run made by the CLI in the
    foreground has no job."""
    info = jobs.describe(job, registry) if job else None
    by = f" · {t('train.by', user=run['created_by'])}" if run.get("created_by") else ""
    result = None
    if run.get("accuracy") is not None:
        base = run.get("baseline_accuracy")
        result = t("train.test_accuracy", acc=f"{run['accuracy']:.3f}", base=f"{base:.3f}") if base is not None \
            else t("train.test_accuracy_only", acc=f"{run['accuracy']:.3f}")  # a baseline is its own reference
    status = info.status if info else run["status"]
    job_card(info, title=run["name"], status=status, key=run["id"], result=result,
             caption=f"{t('runlist.created', when=format_timestamp(run['created_at'], lang()))}{by} · `{run['id']}`",
             reason=(info and info.error_message) or run.get("reason"),
             extra=lambda place: run_actions(run, status, place, registry))
    details(run["id"], registry)


def run_actions(run: dict, status: str, place, registry: Registry) -> None:
    key = run["id"]
    with place.popover(t("runlist.rename_save"), icon=":material/edit:"), st.form(f"rename_form_{key}"):
        typed = st.text_input(t("runlist.rename"), value=run["name"] if run["custom_name"] else "",
                              placeholder=runs.auto_name(registry.run(key), lang()), help=t("runlist.rename_help"),
                              key=f"rename_{key}")
        if st.form_submit_button(t("runlist.rename_save")):
            runs.rename_run(key, typed, registry)
            st.rerun(scope="fragment")
    if status not in jobs.ACTIVE:
        delete_button(run, place, registry)


def delete_button(run: dict, place, registry: Registry) -> None:
    """Delete at once when the run made nothing; otherwise say what goes and ask first."""
    plan = runs.deletion_plan(run["id"], registry)
    if not plan.has_outputs:
        if place.button(t("train.delete"), key=f"del_{run['id']}"):
            delete_run(run["id"], registry)
            st.rerun(scope="fragment")
        return
    with place.popover(t("train.delete"), icon=":material/delete:"):
        lines = [f"- {render(item, lang())}" for item in plan.removes]
        st.warning("\n".join([t("runlist.confirm", name=run["name"]), *lines]))
        st.caption(" ".join([t("runlist.confirm_size", size=runs.size_text(plan.size_bytes)),
                             *(render(item, lang()) + "." for item in plan.keeps)]))
        if st.button(t("runlist.confirm_yes"), key=f"del_{run['id']}", type="primary"):
            delete_run(run["id"], registry)
            st.toast(t("runlist.deleted", name=run["name"]))
            st.rerun(scope="fragment")


def details(run_id: str, registry: Registry) -> None:
    events = read_progress(registry.root / "runs" / run_id)
    model_event = next((e for e in events if e.get("event") == "model"), None)
    if model_event:
        st.caption(t("train.params", trainable=format_count(model_event["trainable_parameters"]),
                     total=format_count(model_event["total_parameters"]), device=model_event["device"]))
    if any(e.get("event") == "step" for e in events):
        chart(training_curves_figure(events, lang()), key=f"curve_{run_id}")
    with st.expander(t("train.log")):
        st.code("\n".join(_log_line(e) for e in events[-8:]) or "—")


def _log_line(event: dict) -> str:
    kind = event.get("event")
    if kind == "step":
        return (f"step {event['step']}/{event['total_steps']} loss {event['loss']:.4f} "
                f"lr {event['lr']:.2e} {event['samples_per_s']:.1f} samples/s")
    if kind == "eval":
        return f"eval step {event['step']}: " + ", ".join(f"{k} {v:.3f}" for k, v in event["metrics"].items() if v is not None)
    return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "time", "config", "test"))


@st.fragment(run_every=2)
def live_panel() -> None:
    """Training runs only (scoring jobs live on the Score page), newest first."""
    registry = Registry()
    jobs.reconcile(registry)
    listed = runs.list_runs(registry, lang())
    if not listed:
        st.info(t("runlist.none"))
    for run in listed[:SHOWN_RUNS]:
        with st.container(border=True):
            run_card(run, registry.job(run["id"]), registry)
    if len(listed) > SHOWN_RUNS:
        st.caption(t("runlist.more", shown=SHOWN_RUNS, total=format_count(len(listed))))


st.title(t("train.title"))
st.write(t("train.intro"))
cards = list_datasets()
if not cards:
    st.info(t("train.no_datasets"))
    st.page_link("pages/data.py", label=t("nav.data"), icon=":material/arrow_forward:")
else:
    try:
        chosen = settings_form(cards)
        if chosen is not None:
            launch(chosen)
    except Exception as exc:  # bad settings end in a message
        show_error(exc)
    search_section(cards)
st.header(t("runlist.title"))
live_panel()
