"""Dataset library: save, append with de-duplication, provenance, delete, safe names."""
from __future__ import annotations

import pytest

from lib import ingest
from lib.ingest import library
from lib.ingest.library import LibraryError

from .conftest import FIXTURES

SMALL = (FIXTURES / "small_canonical.csv").read_bytes()
HEADER, *ROWS_ = SMALL.decode().strip().split("\n")


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def _extract(rows: list[str], name: str) -> ingest.IngestResult:
    return ingest.ingest([(name, ("\n".join([HEADER, *rows]) + "\n").encode())])


def test_save_then_open_in_the_engine(engine):
    path = library.save("Force A 2024", _extract(ROWS_[:6], "q1.csv"), user="analyst1")
    ds = engine.open(path)
    assert ds.rows == 6
    [entry] = library.entries()
    assert (entry.name, entry.reports, entry.loads) == ("Force A 2024", 6, 1)
    [load] = library.provenance("Force A 2024")
    assert (load["by"], load["files"], load["rows_in"], load["rows_loaded"]) == ("analyst1", ["q1.csv"], 6, 6)


def test_append_sets_aside_reports_already_held_and_reconciles(engine):
    library.save("Force A", _extract(ROWS_[:6], "q1.csv"))
    record = library.append("Force A", _extract(ROWS_[4:], "q2.csv"), user="analyst2")
    # q2 holds rows 5-10; rows 5 and 6 are already in the dataset.
    assert (record["rows_in"], record["rows_loaded"], record["rows_quarantined"]) == (6, 4, 2)
    assert record["already_in_dataset"] == 2
    assert engine.open(library.path_of("Force A")).rows == 10
    reasons = library.quarantine("Force A")["reason"].tolist()
    assert reasons == ["report 'R05' is already in dataset 'Force A'", "report 'R06' is already in dataset 'Force A'"]
    assert [p["action"] for p in library.provenance("Force A")] == ["create", "append"]


def test_save_refuses_to_overwrite_and_delete_removes():
    library.save("X", _extract(ROWS_[:2], "a.csv"))
    with pytest.raises(LibraryError, match="exists already"):
        library.save("X", _extract(ROWS_[:2], "a.csv"))
    library.delete("X")
    assert library.entries() == []
    with pytest.raises(LibraryError, match="no saved dataset"):
        library.delete("X")


@pytest.mark.parametrize("name", ["../etc", "", " ", "a/b", ".hidden", "x" * 65, "..", "a\\b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(LibraryError):
        library.check_name(name)
