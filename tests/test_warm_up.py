"""The warm-up at server start: `streamlit run app.py` finds it, and it loads data in local mode only."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.web.server.app_discovery import discover_asgi_app

from lib.engine.store import SAMPLE_DIR
from lib.ui import cache, datasets, login, warmup

from .conftest import ROOT


@pytest.fixture(autouse=True)
def _fresh(fresh_caches):
    """Every warm-up here starts with empty caches and a new engine (see conftest)."""
    fresh_caches.delenv("OSE_AUTH_CONFIG", raising=False)
    fresh_caches.delenv("OSE_DEMO", raising=False)


def test_streamlit_run_serves_app_py_with_its_start_up_hook():
    # `streamlit run app.py` looks for an st.App in the file; without one it would start no warm-up.
    found = discover_asgi_app(ROOT / "app.py")
    assert found.is_asgi_app and found.import_string == "app:app"


def test_the_server_computes_with_one_blas_thread_when_started_by_hand():
    # `streamlit run app.py` without make: numpy is first loaded after app.py set its BLAS to one thread (the
    # Training page's fits run on threads of their own; BLAS threads inside them made the page 40% slower).
    import os
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, sys.argv[1]); import streamlit.web.bootstrap; "
            "assert 'numpy' not in sys.modules; import app, os; print(os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code, str(ROOT)], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def test_in_local_mode_the_sample_is_loaded_as_the_picker_names_it():
    warmup.warm_up()
    # The engine keeps a dataset under the name it was first opened with: the picker's label.
    assert cache.engine().open(SAMPLE_DIR).name == datasets.SAMPLE_SOURCE.label
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.selectbox(key="dataset_choice").value == datasets.SAMPLE_SOURCE.label
    assert len(at.get("vega_lite_chart")) == 5


@pytest.mark.parametrize("setting", ["users file", "address"])
def test_nothing_is_loaded_with_a_users_file_or_when_serving_other_machines(setting, monkeypatch, tmp_path):
    if setting == "users file":  # login mode: no data before someone signs in
        monkeypatch.setenv("OSE_AUTH_CONFIG", str(tmp_path / "users.yaml"))
    else:  # local mode bound to a network address refuses every client
        monkeypatch.setattr(login, "serves_this_machine", lambda: False)

    def refuse(*args):
        raise AssertionError("the warm-up read data that no one may see")

    monkeypatch.setattr(datasets, "_open", refuse)
    monkeypatch.setattr(cache, "filter_options", refuse)
    warmup.warm_up()  # the libraries only


def test_the_first_run_finds_the_opening_overview_already_computed(monkeypatch):
    # The warm-up repeats what app_pages/overview.py asks for: if the page changes and the warm-up does
    # not, the first browser waits again. After it, the first run computes no query and builds no chart.
    from lib.engine import query
    from lib.present import vegalite

    calls: list[str] = []

    def counted(module, name):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, **k: calls.append(name) or real(*a, **k))

    for name in ("filter_options", "summarise", "breakdown", "tactic_counts"):
        counted(query, name)
    charts = ("reports_by_month", "rate_by_month", "harm_rates_by_group", "most_used_tactics")
    for name in charts:
        counted(vegalite, name)
    warmup.warm_up()
    assert {"filter_options", "summarise", "breakdown", "tactic_counts", *charts} <= set(calls)
    calls.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception and len(at.get("vega_lite_chart")) == 5
    assert calls == []
