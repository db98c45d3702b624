"""Officer Safety Explorer: the router. Page config, the login gate, dataset and filters, then the page.

Pages live in app_pages/, not pages/: with a folder named pages/ beside the main script,
Streamlit 1.67 starts each fresh server in its old folder navigation, which lists every file
there and can run a page without this router (seen in the browser on first load).
"""
from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Officer Safety Explorer", page_icon=":material/shield:", layout="wide")

from lib import access, auth  # noqa: E402  (light: the login gate runs before the engine loads)

TITLES = {"overview": "Overview", "risk": "Officer risk", "tactics": "Tactics", "explore": "Explore",
          "training": "Training", "data": "Data", "quality": "Data quality", "admin": "Administration"}

user = auth.current_user()  # the login form, and a stop, for anyone not signed in
demo = auth.demo_mode()
allowed = access.allowed_pages(user, demo=demo)
if not allowed:
    st.error("Your account has no role that opens a page. Ask an administrator.")
    st.stop()
# Deny by default: only the pages the user's roles open are in the navigation (and each page checks again).
navigation = st.navigation([st.Page(f"app_pages/{page}.py", title=TITLES[page], default=i == 0)
                            for i, page in enumerate(allowed)])
# Streamlit's own table download would bypass our formula-safe, audited and disclosure-checked exports.
st.html('<style>button[aria-label="Download as CSV"]{display:none !important}</style>')
# Imported after the navigation is drawn: the engine's libraries take a second to load, and the
# browser should show the pages meanwhile.
from lib import ui  # noqa: E402

st.sidebar.title("Officer Safety Explorer")
auth.account_sidebar(user)
if demo:
    auth.demo_banner()
dataset = ui.dataset_picker(demo=demo)
filters = ui.filter_sidebar(dataset, user.scope)
disclosure = ui.disclosure_setting(user, demo, ui.disclosure_default_threshold())
ui.set_context(ui.Context(dataset=dataset, filters=filters, scope=user.scope, user=user,
                          officer_scope=user.officer_scope, disclosure=disclosure, demo=demo))
navigation.run()
