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


# --- versions, rollback, locks, damage, leftovers --------------------------------------------------

def _total(name: str) -> int:
    return sum(p["reports_loaded"] for p in library.provenance(name))


def test_each_change_is_a_version_and_rollback_writes_a_new_one(engine, monkeypatch):
    monkeypatch.setenv("OSE_KEEP_VERSIONS", "3")
    library.save("F", _extract(ROWS_[:2], "q1.csv"), user="a1")
    library.append("F", _extract(ROWS_[2:4], "q2.csv"), user="a2")
    library.append("F", _extract(ROWS_[4:6], "q3.csv"), user="a3")
    assert [(v.number, v.action, v.by, v.reports, v.current) for v in library.versions("F")] == [
        (1, "create", "a1", 2, False), (2, "append", "a2", 4, False), (3, "append", "a3", 6, True)]
    assert library.rollback("F", 1, user="admin") == 4
    assert engine.open(library.path_of("F")).rows == 2 and _total("F") == 2
    assert [p["action"] for p in library.provenance("F")] == ["create", "rollback"]
    # Three versions are kept: the oldest went once the pointer had moved; the rollback can itself be undone.
    assert [(v.number, v.action, v.current) for v in library.versions("F")] == [
        (2, "append", False), (3, "append", False), (4, "rollback to v1", True)]
    assert [e.version for e in library.entries()] == [4]
    library.rollback("F", 3)
    assert engine.open(library.path_of("F")).rows == 6 and _total("F") == 6
    with pytest.raises(LibraryError, match="no version 1"):
        library.rollback("F", 1)
    with pytest.raises(LibraryError, match="already the current"):
        library.rollback("F", 5)


def test_provenance_reconciles_and_keeps_lines_read_as_cp1252():
    header = HEADER.encode()
    body = "\n".join(ROWS_[:3]).replace("Northshire Police", "Northshire Café").encode()
    lines = body.split(b"\n")
    lines[1] = lines[1].replace("Café".encode(), "Café".encode("cp1252"))  # one line in cp1252
    result = ingest.ingest([("mixed.csv", b"\n".join([header, *lines]) + b"\n")])
    path = library.save("Mixed", result)
    [load] = library.provenance("Mixed")
    assert (load["lines_read_as_cp1252"], load["files_read_as_cp1252"]) == (1, {"mixed.csv": 1})
    library.append("Mixed", _extract(ROWS_[2:5], "more.csv"))
    assert library.lines_read_as_cp1252(library.path_of("Mixed")) == 1
    assert library.lines_read_as_cp1252(path) == 1 and library.lines_read_as_cp1252(FIXTURES) == 0
    assert _total("Mixed") == 5 == library.entries()[0].reports  # R03 was already there: set aside, not counted


def test_a_dataset_saved_before_versions_opens_and_moves_into_versions_on_its_next_write(engine):
    library.save("Old", _extract(ROWS_[:3], "q1.csv"))
    folder = library.root() / "Old"
    for child in (folder / "versions" / "000001").iterdir():  # the layout the library wrote before versions
        child.rename(folder / child.name)
    (folder / "versions" / "000001").rmdir()
    (folder / "versions").rmdir()
    (folder / "CURRENT").unlink()
    (folder / "owner.json").unlink()  # nor was an owner recorded then
    assert library.path_of("Old") == folder and engine.open(folder).rows == 3
    assert [(e.name, e.reports, e.version, e.damaged) for e in library.entries()] == [("Old", 3, 1, None)]
    library.append("Old", _extract(ROWS_[3:5], "q2.csv"))
    assert [v.number for v in library.versions("Old")] == [1, 2]
    assert sorted(p.name for p in folder.iterdir()) == ["CURRENT", "versions"]
    assert engine.open(library.path_of("Old")).rows == 5


def test_a_writer_waits_for_the_lock_and_gives_up_with_a_reason():
    library.save("Busy", _extract(ROWS_[:2], "q1.csv"))
    with library.lock("Busy"):
        with pytest.raises(LibraryError, match="another user is changing 'Busy'; try again"):
            library.append("Busy", _extract(ROWS_[2:4], "q2.csv"), wait=0.2)
        with pytest.raises(LibraryError, match="another user is changing"):
            library.delete("Busy", wait=0.1)
    assert library.append("Busy", _extract(ROWS_[2:4], "q2.csv"))["reports_loaded"] == 2


@pytest.mark.parametrize(("damage", "reason", "version_readable"), [
    (lambda v, f: (v / "reports.parquet").write_bytes((v / "reports.parquet").read_bytes()[:100]),
     "Parquet file cannot be read", False),
    (lambda v, f: (v / "tactics.parquet").unlink(), "tactics.parquet is missing", False),
    (lambda v, f: (f / "CURRENT").write_text("garbage\n"), "not a version number", True),
    (lambda v, f: (f / "CURRENT").write_text("000009\n"), "current version 9 is missing", True),
    (lambda v, f: (v / "provenance.json").write_text("[{"), "provenance.json cannot be read", False),
    (lambda v, f: (v / "provenance.json").write_text('[{"reports_loaded": 99}, {"reports_loaded": 1}]'),
     "holds 4 reports but its provenance lists 100", False),
])
def test_a_damaged_dataset_is_listed_as_damaged_and_rollback_repairs_it(engine, damage, reason, version_readable):
    library.save("Good", _extract(ROWS_[:2], "g.csv"))
    library.save("Hurt", _extract(ROWS_[:2], "h1.csv"))
    library.append("Hurt", _extract(ROWS_[2:4], "h2.csv"))
    damage(library.root() / "Hurt" / "versions" / "000002", library.root() / "Hurt")
    listed = {e.name: e for e in library.entries()}  # never raises because of one dataset
    assert listed["Good"].damaged is None and listed["Good"].reports == 2
    assert reason in listed["Hurt"].damaged
    with pytest.raises(LibraryError, match="roll it back to an earlier version or delete it"):
        library.append("Hurt", _extract(ROWS_[4:6], "h3.csv"))
    assert [(v.number, v.damaged is None) for v in library.versions("Hurt")] == [(1, True), (2, version_readable)]
    library.rollback("Hurt", 1)
    [hurt] = [e for e in library.entries() if e.name == "Hurt"]
    assert hurt.damaged is None and hurt.reports == 2 and engine.open(hurt.path).rows == 2


def test_leftovers_of_interrupted_writes_are_ignored_and_removed_unless_a_writer_holds_the_dataset():
    library.save("Kept", _extract(ROWS_[:2], "k.csv"))
    top = library.root()
    leftovers = [top / "Kept" / "versions" / ".000002.999999999-ab12cd34.part",  # a version being written
                 top / "Kept" / ".CURRENT.999999999-ab12cd34.part",  # a pointer being replaced
                 top / ".Gone.999999999-ab12cd34.deleting",  # a delete cut short
                 top / ".New.999999999-ab12cd34.part",  # a save cut short
                 top / "Kept.appending", top / "Kept.saving"]  # the layout before versions
    for path in leftovers:
        path.mkdir(parents=True) if not path.name.startswith(".CURRENT") else path.write_text("000002")
        if path.is_dir():
            (path / "reports.parquet").write_bytes(b"half a file")
    with library.lock("Kept"):  # a writer of Kept at work: its temporaries stay, and readers ignore them
        assert [(e.name, e.version, e.damaged) for e in library.entries()] == [("Kept", 1, None)]
        assert [p.exists() for p in leftovers] == [True, True, False, False, True, True]
    assert [e.name for e in library.entries()] == ["Kept"]
    assert not any(p.exists() for p in leftovers)


def test_an_interrupted_append_before_versions_is_recovered_not_lost():
    library.save("Was", _extract(ROWS_[:3], "w.csv"))
    folder = library.root() / "Was"
    for child in (folder / "versions" / "000001").iterdir():
        child.rename(folder / child.name)
    for gone in ("versions/000001", "versions"):
        (folder / gone).rmdir()
    (folder / "CURRENT").unlink()
    folder.rename(folder.with_name("Was.previous"))  # the old append died between its two renames
    assert [(e.name, e.reports) for e in library.entries()] == [("Was", 3)]


def test_two_saves_of_one_name_give_the_loser_a_library_error():
    library.save("Twice", _extract(ROWS_[:2], "a.csv"))
    with pytest.raises(LibraryError, match="exists already"):
        library.save("Twice", _extract(ROWS_[2:4], "b.csv"))
    assert _total("Twice") == 2


def test_a_rollback_copies_so_damage_to_one_version_never_reaches_another():
    library.save("Copy", _extract(ROWS_[:2], "a.csv"))
    library.append("Copy", _extract(ROWS_[2:4], "b.csv"))
    library.rollback("Copy", 1)
    (library.path_of("Copy") / "reports.parquet").write_bytes(b"PAR1")  # v3, the rollback, damaged on disk
    assert [(v.number, v.damaged is None) for v in library.versions("Copy")] == [(1, True), (2, True), (3, False)]
    library.rollback("Copy", 1)
    assert library.entries()[0].reports == 2 and library.provenance("Copy")[-1]["version"] == 4
