import streamlit as st

from core.workspace import Registry
from pages._shared import count, t, through_app, timestamp

through_app(__file__)

registry = Registry()
st.title(t("home.title"))
st.write(t("home.intro"))

counts = registry.counts()
c1, c2, c3 = st.columns(3)
c1.metric(t("home.datasets"), count(counts["datasets"]))
c2.metric(t("home.runs"), count(counts["runs"]))
c3.metric(t("home.jobs"), count(counts["running_jobs"]))

st.subheader(t("home.start"))
st.markdown(t("home.step_data"))
st.markdown(t("home.step_train"))
st.markdown(t("home.step_results"))
st.page_link("pages/data.py", label=t("home.go_data"), icon=":material/arrow_forward:")

st.subheader(t("home.recent"))
datasets = registry.datasets()[:5]
if datasets:
    st.dataframe(
        [{t("data.name"): d["name"], t("data.rows_kept"): count(d["rows"]),
          t("data.classes"): " · ".join(d["card"]["classes"]), t("data.card_created"): timestamp(d["card"]["created_at"])}
         for d in datasets],
        hide_index=True,
    )
else:
    st.info(t("home.none"))
st.caption(t("home.workspace", path=registry.root))
