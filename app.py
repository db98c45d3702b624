"""Officer Safety Explorer: the router. Page config, dataset and filters, then the chosen page."""
from __future__ import annotations

import streamlit as st

from lib import ui
from lib.query import UNRESTRICTED

ui.ensure_router()
st.set_page_config(page_title="Officer Safety Explorer", page_icon=":material/shield:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/monitoring:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/upload_file:"),
    st.Page("pages/quality.py", title="Data quality", icon=":material/fact_check:"),
]

navigation = st.navigation(PAGES)
st.sidebar.title("Officer Safety Explorer")
st.sidebar.caption("Local single-user mode: serving 127.0.0.1 only, no login.")
scope = UNRESTRICTED
dataset = ui.dataset_picker()
filters = ui.filter_sidebar(dataset, scope)
ui.set_context(ui.Context(dataset=dataset, filters=filters, scope=scope))
navigation.run()
