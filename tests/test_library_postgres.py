"""The library's PostgreSQL advisory lock: replicas on several hosts sharing OSE_DATA_DIR are serialised too.

Runs only when OSE_ENGINE_URL names PostgreSQL (bench/backends.sh's postgres run); elsewhere it is
deselected, not skipped. Two data folders stand for two hosts: their file locks never meet, so only
the database can keep their writers apart.
"""
from __future__ import annotations

import psycopg
import pytest

from lib import ingest
from lib.ingest import library
from lib.ingest.library import LibraryError
from lib.model.settings import settings

from .conftest import FIXTURES

pytestmark = pytest.mark.postgres_only

HEADER, *ROWS = (FIXTURES / "small_canonical.csv").read_text().strip().split("\n")


def _extract(rows: list[str]) -> ingest.IngestResult:
    return ingest.ingest([("q.csv", "\n".join([HEADER, *rows]).encode())])


def test_a_writer_on_another_host_waits_for_the_database_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "host-b"))
    library.save("Shared", _extract(ROWS[:2]))
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "host-a"))
    with library.lock("Shared"):  # host A is changing 'Shared'
        monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "host-b"))
        with pytest.raises(LibraryError, match="another user is changing 'Shared'; try again"):
            library.append("Shared", _extract(ROWS[2:4]), wait=0.3)
    assert library.append("Shared", _extract(ROWS[2:4]))["reports_loaded"] == 2


def test_the_lock_is_an_advisory_lock_on_the_datasets_name(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    library.save("Held", _extract(ROWS[:2]))
    url = "postgresql://" + settings().engine_url.split("://", 1)[1]
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (library._advisory_key("Held"),))
        with pytest.raises(LibraryError, match="another user is changing 'Held'"):
            library.rollback("Held", 1, wait=0.3)
        library.save("Other", _extract(ROWS[:2]))  # another dataset's key: not held up
        other.execute("SELECT pg_advisory_unlock(%s)", (library._advisory_key("Held"),))
    assert library.append("Held", _extract(ROWS[2:4]))["reports_loaded"] == 2
