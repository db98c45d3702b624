"""Shared fixtures: a hand-readable canonical dataset and the real engine."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lib.store import Dataset, Engine

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent
TEST_PSEUDONYM_KEY = "test-only pseudonymisation key, 32+ bytes long"


def pytest_configure(config) -> None:
    """Give every test (and the app servers it starts) a fixed key, so no key file lands in ./var."""
    os.environ.setdefault("OSE_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="session")
def small(engine: Engine) -> Dataset:
    """Ten reports in two forces whose every count is known by hand (see fixtures/)."""
    return engine.open(FIXTURES / "small_canonical.csv")


@pytest.fixture
def fresh_caches(monkeypatch):
    """Start an app run with empty Streamlit caches and no OSE_DATASET unless a test sets it."""
    import streamlit as st

    monkeypatch.delenv("OSE_DATASET", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield monkeypatch
    st.cache_data.clear()
    st.cache_resource.clear()
