"""Opinion Lab: the Streamlit entry point. Navigation, language switch, nothing else."""

import streamlit as st

from pages._shared import language_selector, t

st.set_page_config(page_title="Opinion Lab", page_icon=":material/insights:", layout="wide")
language_selector()

pages = [
    st.Page("pages/home.py", title=t("nav.home"), icon=":material/home:", url_path="home", default=True),
    st.Page("pages/data.py", title=t("nav.data"), icon=":material/table_view:", url_path="data"),
]
st.navigation(pages).run()
