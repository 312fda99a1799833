import streamlit as st

from core import jobs
from core.datasets import list_datasets, load_rows
from core.figures import training_curves_figure
from core.i18n import Message
from core.language import language_mix, suggested_model, vocabulary_warning
from core.training import (
    PRESETS,
    TrainConfig,
    config_from_preset,
    create_run,
    delete_run,
    estimate_minutes,
    read_progress,
    submit_command,
    validate,
)
from core.workspace import Registry
from pages._shared import lang, show_error, t, through_app

through_app(__file__)

HELP = TrainConfig.help_texts()
ADVANCED = {  # field: (widget kind, min, step)
    "epochs": ("int", 1, 1), "learning_rate": ("float", 1e-6, 1e-5), "batch_size": ("int", 1, 1),
    "grad_accum": ("int", 1, 1), "max_length": ("int", 8, 8), "head_tokens": ("int", 0, 8),
    "warmup_ratio": ("float", 0.0, 0.05), "weight_decay": ("float", 0.0, 0.01), "seed": ("int", 0, 1),
    "early_stopping_patience": ("int", 0, 1), "limit": ("int", 0, 100), "max_eval_rows": ("int", 0, 100),
    "lora_r": ("int", 1, 1), "lora_alpha": ("int", 1, 1),
}


@st.cache_data(max_entries=8, show_spinner=False)
def dataset_language(dataset_id: str) -> tuple[str, Message]:
    mix = language_mix(load_rows(dataset_id)["text"].tolist())
    return suggested_model(mix), mix.message()


@st.cache_data(max_entries=16, show_spinner=False)
def unknown_tokens_warning(model: str, dataset_id: str) -> Message | None:
    return vocabulary_warning(model, load_rows(dataset_id, split="train")["text"].tolist())


def settings_form(cards: list[dict]) -> TrainConfig:
    names = [c["name"] for c in cards]
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox(t("train.dataset"), names, key="train_dataset")
    method = c2.radio(t("train.method"), ["full", "lora", "baseline"], key="train_method",
                      format_func=lambda m: t(f"train.method.{m}"), help=HELP["method"])
    preset = c3.radio(t("train.preset"), list(PRESETS), key="train_preset",
                      format_func=lambda p: t(f"train.preset.{p}"))
    suggested, mix = dataset_language(next(c["id"] for c in cards if c["name"] == dataset))
    choices = ["default", "multilingual", "custom"]
    choice = st.radio(t("train.model"), choices, horizontal=True, key="train_model_choice",
                      index=choices.index(suggested), format_func=lambda m: t(f"train.model_{m}"), help=HELP["model"])
    st.caption(t("language.suggested", model=suggested, mix=mix.render(lang())))
    model = choice
    if choice == "custom":
        model = st.text_input(t("train.model_path"), key="train_model_path").strip() or "default"
    config = config_from_preset(preset, dataset=dataset, method=method, model=model)
    variant = f"{preset}_{method}"  # new preset or method: fresh defaults in the form
    with st.expander(t("train.advanced")), st.form(f"advanced_{variant}"):
        values = {}
        cells = st.columns(4)
        for i, (name, (kind, low, step)) in enumerate(ADVANCED.items()):
            default = getattr(config, name)
            if kind == "int":
                values[name] = cells[i % 4].number_input(name, min_value=low, value=int(default), step=step,
                                                         help=HELP[name], key=f"adv_{name}_{variant}")
            else:
                values[name] = cells[i % 4].number_input(name, min_value=low, value=float(default), step=step,
                                                         format="%g", help=HELP[name], key=f"adv_{name}_{variant}")
        st.form_submit_button(t("train.apply"))
    return TrainConfig.from_dict({**config.to_dict(), **values})


def launch(config: TrainConfig, cards: list[dict]) -> None:
    problems = validate(config)
    if problems:
        st.error(t("train.problems") + "\n\n" + "\n".join(f"- {p}" for p in problems))
        return
    card = next(c for c in cards if c["name"] == config.dataset)
    if config.method != "baseline":
        with st.spinner(t("language.checking", model=config.model)):
            warning = unknown_tokens_warning(config.model, card["id"])
        if warning:
            st.warning(warning.render(lang()), icon=":material/translate:")
    train_rows = sum(card["split_counts"]["train"].values())
    st.caption(t("train.estimate", minutes=f"{estimate_minutes(config, train_rows):.1f}",
                 rows=f"{min(train_rows, config.limit or train_rows):,}"))
    st.caption(t("train.command"))
    st.code(submit_command(config), language="bash")
    if st.button(t("train.start"), type="primary", key="train_start"):
        try:
            folder = create_run(config, created_by=st.session_state.get("user"))
            job = jobs.submit(folder, created_by=st.session_state.get("user"))
            st.success(t("train.started", run=job["run_id"], job=job["id"]))
        except Exception as exc:  # shown, never a traceback
            show_error(exc)


def _eta(seconds: float | None) -> str:
    if not seconds:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def job_card(job: dict) -> None:
    registry = Registry()
    info = jobs.describe(job, registry)
    head, buttons = st.columns([4, 2])
    by = f" · {t('train.by', user=info['created_by'])}" if info.get("created_by") else ""
    head.markdown(f"**{info['run_id']}** · {job['info'].get('dataset', '')} · "
                  f"{t('train.status')}: **{t('status.' + info['status'])}**{by}")
    if info["total_steps"]:
        done = min(info["step"] / info["total_steps"], 1.0)
        head.progress(done, text=t("train.step", step=info["step"], total=info["total_steps"]) +
                      (" · " + t("train.eta", eta=_eta(info["eta_s"])) if info["status"] == "running" else ""))
    if info["metrics"] and info["metrics"].get("accuracy") is not None:
        base = info["metrics"].get("baseline_accuracy")
        head.caption(t("train.test_accuracy", acc=f"{info['metrics']['accuracy']:.3f}",
                       base=f"{base:.3f}" if base is not None else "—"))
    if info["error"]:
        head.warning(t("train.error", error=info["error"]))
    try:
        if info["status"] in ("queued", "running") and buttons.button(t("train.stop"), key=f"stop_{job['id']}"):
            jobs.cancel(job["id"])
            st.rerun(scope="fragment")
        if info["status"] == "queued" and buttons.button(t("train.up"), key=f"up_{job['id']}"):
            jobs.move(job["id"], "up")
            st.rerun(scope="fragment")
        if info["status"] in jobs.RESUMABLE and buttons.button(t("train.resume"), key=f"resume_{job['id']}"):
            jobs.resume(job["id"])
            st.rerun(scope="fragment")
        if info["status"] not in ("queued", "running") and buttons.button(t("train.delete"), key=f"del_{job['id']}"):
            delete_run(job["run_id"])
            st.rerun(scope="fragment")
    except Exception as exc:  # another session may have acted first
        show_error(exc)
    events = read_progress(info["run_dir"])
    model_event = next((e for e in events if e.get("event") == "model"), None)
    if model_event:
        head.caption(t("train.params", trainable=f"{model_event['trainable_parameters']:,}",
                       total=f"{model_event['total_parameters']:,}", device=model_event["device"]))
    if any(e.get("event") == "step" for e in events):
        st.plotly_chart(training_curves_figure(events, lang()), key=f"curve_{job['id']}")
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
    registry = Registry()
    jobs.reconcile(registry)
    listed = registry.jobs()[:10]
    if not listed:
        st.info(t("train.no_jobs"))
    for job in listed:
        run = registry.run(job["run_id"]) or {}
        job["info"]["dataset"] = run.get("name", "")
        with st.container(border=True):
            job_card(job)


st.title(t("train.title"))
st.write(t("train.intro"))
cards = list_datasets()
if not cards:
    st.info(t("train.no_datasets"))
    st.page_link("pages/data.py", label=t("nav.data"), icon=":material/arrow_forward:")
else:
    try:
        launch(settings_form(cards), cards)
    except Exception as exc:  # bad settings end in a message
        show_error(exc)
st.header(t("train.jobs"))
live_panel()
