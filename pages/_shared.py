"""What every page shares: the current language, translated labels and error display."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import i18n
from core.errors import OpinionLabError


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
        st.error(str(exc), icon=":material/error:")
    else:
        st.error(f"Something went wrong inside Opinion Lab ({type(exc).__name__}). "
                 "The details are in the server log.", icon=":material/error:")
