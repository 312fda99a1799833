"""Opinion Lab: the Streamlit entry point. Navigation, language switch, nothing else."""

import streamlit as st

from core.jobs import reconcile
from pages._shared import language_selector, require_login, t


@st.cache_resource
def reconcile_once_per_server() -> bool:
    """A new server start marks jobs whose worker died meanwhile as interrupted."""
    reconcile()
    return True


st.set_page_config(page_title="Opinion Lab", page_icon=":material/insights:", layout="wide")
reconcile_once_per_server()
language_selector()
require_login()  # a no-op unless .streamlit/secrets.toml asks for a login

pages = [
    st.Page("pages/home.py", title=t("nav.home"), icon=":material/home:", url_path="home", default=True),
    st.Page("pages/data.py", title=t("nav.data"), icon=":material/table_view:", url_path="data"),
    st.Page("pages/train.py", title=t("nav.train"), icon=":material/model_training:", url_path="train"),
    st.Page("pages/results.py", title=t("nav.results"), icon=":material/analytics:", url_path="results"),
    st.Page("pages/score.py", title=t("nav.score"), icon=":material/fact_check:", url_path="score"),
    st.Page("pages/trends.py", title=t("nav.trends"), icon=":material/trending_up:", url_path="trends"),
    st.Page("pages/monitors.py", title=t("nav.monitors"), icon=":material/notifications_active:", url_path="monitors"),
]
st.session_state["_app_ran"] = True
navigation = st.navigation(pages)
deep_link = st.session_state.pop("_deep_link", None)
if deep_link and deep_link != "pages/home.py":  # see pages/_shared.py: through_app
    st.switch_page(deep_link)
navigation.run()
