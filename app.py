"""Officer Safety Explorer: the router. Page config, the login gate, dataset and filters, then the page.

Pages live in app_pages/, not pages/: with a folder named pages/ beside the main script,
Streamlit 1.67 starts each fresh server in its old folder navigation, which lists every file
there and can run a page without this router (seen in the browser on first load).

`streamlit run app.py` imports this file once before serving it and finds `app` below (Streamlit's
st.App): its lifespan starts a warm-up thread at server start (`warmup.warm_up`), so the libraries load,
and in local mode the bundled sample with its opening Overview, while the first browser is still
loading the page; its middleware keeps Streamlit's `/_stcore/metrics` unserved (it would answer without a
login). Streamlit runs the file as a script, once per rerun of each session, as __main__:
that run is the router.
"""
from __future__ import annotations

import os

# One BLAS thread per computation, set before anything loads numpy: the Training page fits its models on two
# threads of its own, and with OpenBLAS's threads inside each the first render at 5,000,000 reports took 3.6 s
# instead of 2.6 s (two cores). `make run` sets it too; this covers `streamlit run app.py` started by hand.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from dataclasses import replace  # noqa: E402 - after the BLAS setting

import streamlit as st  # noqa: E402

if __name__ != "__main__":  # imported to be served: the server, with its start-up hook
    import gc
    import logging
    import sys
    import threading
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    WARM_UP_SWITCH_INTERVAL_S = 0.001

    def _warm_up() -> None:
        # While this thread imports and loads, the server thread sends the browser the page and DuckDB
        # keeps handing back the GIL: with a switch interval shorter than Python's 5 ms neither waits
        # that long for it each time (the sample loaded 2.5 times faster beside a busy thread). The
        # cyclic garbage collector rests meanwhile: the imports make some 200,000 objects, and it kept
        # scanning them (a quarter of the import time); it runs again after each script run.
        interval, collecting = sys.getswitchinterval(), gc.isenabled()
        sys.setswitchinterval(WARM_UP_SWITCH_INTERVAL_S)
        gc.disable()
        try:
            from lib.ui import warmup

            warmup.warm_up()
        except Exception:  # the first run does the same work again, and says what went wrong
            logging.getLogger(__name__).warning("warm-up at server start failed", exc_info=True)
        finally:
            sys.setswitchinterval(interval)
            if collecting:
                gc.enable()

    @asynccontextmanager
    async def _start(_app: st.App) -> AsyncIterator[None]:
        # A thread, so the server listens at once; the first run waits for whatever it has not finished.
        threading.Thread(target=_warm_up, name="ose-warm-up", daemon=True).start()
        yield

    from starlette.middleware import Middleware

    from lib.security.endpoints import HiddenEndpoints

    # Streamlit's metrics endpoint answers without a login and has no setting to turn it off: not served.
    app = st.App(__file__, lifespan=_start, middleware=[Middleware(HiddenEndpoints)])
else:
    # The icon is a file of ours: a ":material/...:" icon as page icon is fetched from Google's font server on
    # every load, which a force network blocks (or should not be asked to allow).
    st.set_page_config(page_title="Officer Safety Explorer", page_icon=os.path.join(os.path.dirname(__file__), "data",
                                                                                    "icon.png"), layout="wide")

    from lib.security import access
    from lib.ui import login  # (light: the login gate runs before the engine loads)

    UNFILTERED_PAGES = ("data", "admin")
    TITLES = {"overview": "Overview", "risk": "Officer risk", "tactics": "Tactics", "explore": "Explore",
              "training": "Training", "data": "Data", "quality": "Data quality", "admin": "Administration"}

    user = login.current_user()  # the login form, and a stop, for anyone not signed in
    demo = login.demo_mode()
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
    from lib.ui import context, datasets
    from lib.ui.filters import filter_sidebar

    st.sidebar.title("Officer Safety Explorer")
    login.account_sidebar(user)
    if demo:
        login.demo_banner()
    dataset = datasets.dataset_picker(user, demo=demo)
    # Forced disclosure control (viewers, demos) also takes periods in whole months and shows no selection
    # of fewer reports than the threshold: no two views then differ by a few days or a few reports.
    protected = access.protection_forced(user, demo)
    # ... and publishes every count perturbed by the cell key method (lib/privacy/cellkey.py); analysts and
    # admins, whose role allows exact figures, keep them.
    scope = replace(user.scope, perturbed=protected)
    # The filters are drawn only on the pages they apply to: on Data and Administration they would do nothing.
    filters = filter_sidebar(dataset, scope, whole_months=protected,
                             shown=navigation.url_path not in UNFILTERED_PAGES)
    disclosure = datasets.disclosure_setting(user, demo, datasets.disclosure_default_threshold())
    context.set_context(context.Context(dataset=dataset, filters=filters, scope=scope, user=user,
                              officer_scope=user.officer_scope, disclosure=disclosure, demo=demo,
                              min_reports=disclosure if protected else None))
    navigation.run()
