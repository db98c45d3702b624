"""Shared fixtures: a hand-readable canonical dataset and the real engine."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager

from lib.store import Dataset, Engine

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="session")
def small(engine: Engine) -> Dataset:
    """Ten reports in two forces whose every count is known by hand (see fixtures/)."""
    return engine.open(FIXTURES / "small_canonical.csv")


@pytest.fixture(autouse=True)
def navigation_like_a_running_server(monkeypatch):
    """Make AppTest treat pages/ as st.navigation pages, as a running server does.

    AppTest forgets before every run that app.py calls st.navigation, so with a folder named
    pages/ it replays Streamlit's old folder-based navigation and runs the page script without
    app.py. A server learns it once, on its first run, and keeps it for the process.
    """
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
