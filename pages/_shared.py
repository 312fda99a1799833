"""What every page shares: the current language, translated labels, numbers, charts and errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from core import auth, i18n, jobs, runs
from core.errors import OpinionLabError
from core.figures import plotly_config
from core.i18n import format_count, format_duration


def through_app(page_file: str) -> None:
    """Make sure this page runs inside app.py's navigation.

    A deep link (say /results) opened on a freshly started server can make Streamlit run the
    page file on its own, by its pages/ folder fallback, without the language switch or the
    navigation; such a visit is sent through app.py, which then opens the page asked for."""
    if not st.session_state.get("_app_ran"):
        st.session_state["_deep_link"] = f"pages/{Path(page_file).name}"
        st.switch_page("app.py")


def lang() -> str:
    return st.session_state.get("lang", i18n.DEFAULT_LANGUAGE)


def t(key: str, **values: object) -> str:
    return i18n.t(key, lang(), **values)


def render(item: Any) -> str:
    """A message from core (a Message, its stored dict, an error, or older plain text) in the UI language."""
    return i18n.render(item, lang())


def count(value: Any) -> str:
    """An integer count as people read it (``12,345``; a dash when there is none)."""
    return i18n.format_count(value, lang())


def timestamp(value: Any, with_time: bool = True) -> str:
    return i18n.format_timestamp(value, lang(), with_time)


def chart(figure: Any, key: str, where: Any = None, **kwargs: Any) -> Any:
    """Place a plotly figure in the UI language: plotly's locale travels in the chart's config
    (Streamlit bundles only plotly's English), so month names and date ticks follow the language.
    ``where`` is a column or container (default: the page); other arguments go to st.plotly_chart."""
    return (st if where is None else where).plotly_chart(figure, key=key, config=plotly_config(lang()), **kwargs)


def rerun_when_ended(key: str, active: bool) -> None:
    """Inside a fragment that refreshes while background work runs: once that work has ended, one
    whole-page rerun, which places the fragment again without a refresh (and shows what follows)."""
    if active:
        st.session_state[key] = True
    elif st.session_state.pop(key, False):
        st.rerun()


def keep_choice(widget: Callable[..., Any], label: str, options: Sequence[Any], key: str, **kwargs: Any) -> Any:
    """A radio, select box or segmented control whose value is a code from ``options`` (shown
    through ``format_func``) and stays chosen across a language switch.

    Streamlit keeps such a widget's value as its shown label, so after a switch the old label
    matches no option and comes back as the value itself ("Median + k × MAD" instead of "mad").
    So the widget is keyed by language and the code is kept under ``key``, language-neutral:
    other code may set ``st.session_state[key]`` to choose an option."""
    widget_key = f"{key}_{lang()}"
    chosen = st.session_state.get(key)
    if chosen in options:
        if st.session_state.get(widget_key) != chosen:
            st.session_state[widget_key] = chosen
        kwargs.pop("index", None)  # the kept choice wins over the first-visit default
        kwargs.pop("default", None)
    else:
        st.session_state.pop(widget_key, None)  # gone from the options: start from the default
    picked = kwargs.pop("on_change", None)

    def remember() -> None:  # runs before the script, so the person's pick wins over the kept one
        st.session_state[key] = st.session_state[widget_key]
        if picked is not None:
            picked()

    value = widget(label, options, key=widget_key, on_change=remember, **kwargs)
    st.session_state[key] = value
    return value


def language_selector() -> str:
    """Sidebar switch; the choice is mirrored in the URL (?lang=zh) so a refresh keeps it."""
    if "lang" not in st.session_state:
        wanted = st.query_params.get("lang", i18n.DEFAULT_LANGUAGE)
        st.session_state["lang"] = wanted if wanted in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE
    st.sidebar.radio(
        i18n.t("app.language", st.session_state["lang"]),
        options=list(i18n.LANGUAGES),
        format_func=i18n.LANGUAGES.get,
        key="lang",
        horizontal=True,
    )
    st.query_params["lang"] = st.session_state["lang"]
    return st.session_state["lang"]


def show_error(exc: Exception) -> None:
    """User errors show their own message; anything else a short apology without internals."""
    if isinstance(exc, OpinionLabError):
        st.error(exc.render(lang()), icon=":material/error:")
    else:
        st.error(t("app.internal_error", kind=type(exc).__name__), icon=":material/error:")


def submitted_text(run_dir: Path, job: dict, registry: Any) -> str:
    """ "name: started." or "name: queued (2nd in line)." for a run just queued."""
    return t("queue.submitted", name=runs.run_name(run_dir.name, registry, lang()),
             state=render(jobs.queue_message(job, registry)))


def start_run(command: str, create: Callable[[Any], Path]) -> None:
    """The command a launch runs, then the button that creates the run (``create(registry)``)
    and queues it as a background job."""
    from core.workspace import Registry

    st.caption(t("train.command"))
    st.code(command, language="bash")
    if st.button(t("train.start"), type="primary", key="train_start"):
        try:
            registry = Registry()
            folder = create(registry)
            st.success(submitted_text(folder, jobs.submit(folder, registry, st.session_state.get("user")), registry))
        except Exception as exc:  # a model that cannot do it, a dataset gone ...: a message
            show_error(exc)


def require_login() -> str | None:
    """Stop the page until the person has signed in, when the secrets ask for a login.

    Returns the name recorded as ``created_by`` (also kept in ``st.session_state["user"]``)."""
    mode = auth.mode(st.secrets)
    if mode == "oidc":
        if not st.user.get("is_logged_in"):
            st.title(t("auth.title"))
            st.write(t("auth.oidc_intro"))
            st.button(t("auth.login"), on_click=st.login, type="primary", key="auth_login")
            st.stop()
        user = auth.display_name(st.user.to_dict())
        st.sidebar.caption(t("auth.signed_in", user=user))
        st.sidebar.button(t("auth.logout"), on_click=st.logout, key="auth_logout")
    elif mode == "password":
        user = st.session_state.get("user")
        if not user:
            st.title(t("auth.title"))
            with st.form("auth_form"):
                name = st.text_input(t("auth.name"), key="auth_name")
                password = st.text_input(t("auth.password"), type="password", key="auth_password")
                submitted = st.form_submit_button(t("auth.login"), type="primary")
            if submitted:
                if not name.strip():
                    st.error(t("auth.need_name"))
                elif auth.verify_password(password, auth.password_hash(st.secrets)):
                    st.session_state["user"] = name.strip()
                    st.rerun()
                else:
                    st.error(t("auth.wrong"))
            st.stop()
        st.sidebar.caption(t("auth.signed_in", user=user))
        if st.sidebar.button(t("auth.logout"), key="auth_logout"):
            st.session_state.pop("user", None)
            st.rerun()
    else:
        user = None
    st.session_state["user"] = user
    return user


# The one card for a piece of background work (a training run, a scoring job, a search): name and
# state, where it came from, progress in its own unit, why it stopped, stop / run sooner / resume;
# the page adds its own buttons (rename, delete).
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
