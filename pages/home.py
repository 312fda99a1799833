import streamlit as st

from core.workspace import Registry
from pages._shared import t, through_app

through_app(__file__)

registry = Registry()
st.title(t("home.title"))
st.write(t("home.intro"))

counts = registry.counts()
c1, c2, c3 = st.columns(3)
c1.metric(t("home.datasets"), counts["datasets"])
c2.metric(t("home.runs"), counts["runs"])
c3.metric(t("home.jobs"), counts["running_jobs"])

st.subheader(t("home.start"))
st.markdown(t("home.step_data"))
st.markdown(t("home.step_train"))
st.markdown(t("home.step_results"))
st.page_link("pages/data.py", label=t("home.go_data"), icon=":material/arrow_forward:")

st.subheader(t("home.recent"))
datasets = registry.datasets()[:5]
if datasets:
    st.dataframe(
        [{t("data.name"): d["name"], t("data.rows_kept"): d["rows"],
          t("data.classes"): ", ".join(d["card"]["classes"]), t("data.card_created"): d["card"]["created_at"]}
         for d in datasets],
        hide_index=True,
    )
else:
    st.info(t("home.none"))
st.caption(t("home.workspace", path=registry.root))
