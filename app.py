"""Officer Safety Explorer: the router. Page config, dataset and filters, then the chosen page.

Pages live in app_pages/, not pages/: with a folder named pages/ beside the main script,
Streamlit 1.67 starts each fresh server in its old folder navigation, which lists every file
there and can run a page without this router (seen in the browser on first load).
"""
from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Officer Safety Explorer", page_icon=":material/shield:", layout="wide")

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", default=True),
    st.Page("app_pages/risk.py", title="Officer risk"),
    st.Page("app_pages/tactics.py", title="Tactics"),
    st.Page("app_pages/explore.py", title="Explore"),
    st.Page("app_pages/training.py", title="Training"),
    st.Page("app_pages/data.py", title="Data"),
    st.Page("app_pages/quality.py", title="Data quality"),
]

navigation = st.navigation(PAGES)
# Imported after the navigation is drawn: the engine's libraries take a second to load, and the
# browser should show the pages meanwhile.
from lib import ui  # noqa: E402
from lib.query import UNRESTRICTED  # noqa: E402

st.sidebar.title("Officer Safety Explorer")
st.sidebar.caption("Local single-user mode: serving 127.0.0.1 only, no login.")
scope = UNRESTRICTED
dataset = ui.dataset_picker()
filters = ui.filter_sidebar(dataset, scope)
ui.set_context(ui.Context(dataset=dataset, filters=filters, scope=scope))
navigation.run()
