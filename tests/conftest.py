"""Shared fixtures: a hand-readable canonical dataset and the real engine."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from lib import ingest
from lib.engine import backends
from lib.engine.store import Dataset, Engine

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent
REALDATA = ROOT.parent / "shared" / "realdata"  # the real public files, beside the repo (never copied in)
TEST_PSEUDONYM_KEY = "test-only pseudonymisation key, 32+ bytes long"
TEST_AUDIT_KEY = "test-only audit key: 7f3Qz9LmW2xR8vKp4NcT6hYbJ5"


def pytest_configure(config) -> None:
    """Give every test (and the app servers it starts) fixed keys, so no key file lands in ./var."""
    os.environ.setdefault("OSE_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
    os.environ.setdefault("OSE_AUDIT_KEY", TEST_AUDIT_KEY)


def pytest_report_header(config) -> str:
    """Name the engine backend the tests run on (OSE_ENGINE_URL; DuckDB in memory by default)."""
    return f"engine: {backends.redact(backends.configured_url())}"


def pytest_collection_modifyitems(config, items) -> None:
    """Leave out tests of one backend's own features when the engine is another: deselected, not skipped.

    DuckDB-storage tests (ENUM types) run only on DuckDB; PostgreSQL tests (advisory locks) only on
    PostgreSQL, in bench/backends.sh's postgres run.
    """
    kind = backends.kind_of(backends.configured_url())
    left_out = [item for item in items if item.get_closest_marker("duckdb_only") and kind != "duckdb"
                or item.get_closest_marker("postgres_only") and kind != "postgres"]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The folder of real public use-of-force files, ../shared/realdata beside the repo: a failure if missing."""
    if not REALDATA.is_dir():
        pytest.fail(f"{REALDATA} is missing: the tests read the real files in ../shared beside the repo")
    return REALDATA


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The engine OSE_ENGINE_URL names (in-memory DuckDB by default), one for the test session."""
    return Engine(read_file=ingest.read_file)


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
