"""Force scope on saved datasets: who may list, open, download, append to, roll back and delete which dataset."""
from __future__ import annotations

import json
import shutil

import pytest

from lib import ingest
from lib import library as command
from lib.ingest import library
from lib.ingest.library import LibraryError
from lib.model.scope import UNRESTRICTED, Actor, Scope

from .conftest import FIXTURES

SMALL = (FIXTURES / "small_canonical.csv").read_bytes()
HEADER, *ROWS = SMALL.decode().strip().split("\n")
NORTH, SOUTH = "Northshire Police", "Southshire Police"

ANA = Actor("ana", Scope(forces=frozenset({NORTH})))              # saves the dataset
ALF = Actor("alf", Scope(forces=frozenset({NORTH})))              # same force, not the owner
BOB = Actor("bob", Scope(forces=frozenset({SOUTH})))              # another force
NORTH_ADMIN = Actor("nadmin", Scope(forces=frozenset({NORTH})), admin=True)
SOUTH_ADMIN = Actor("sadmin", Scope(forces=frozenset({SOUTH})), admin=True)
EVERY = Actor("hq", UNRESTRICTED)                                # an unrestricted analyst
NOT_THERE = "there is no saved dataset called 'Kent'"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def _extract(rows: list[str], name: str, bad: bool = False) -> ingest.IngestResult:
    extra = ["R99,I99,never,Northshire Police,North,OF9" + "," * 13] if bad else []
    return ingest.ingest([(name, ("\n".join([HEADER, *rows, *extra]) + "\n").encode())])


@pytest.fixture
def kent() -> str:
    """A dataset saved by ana of Northshire, with one row set aside and two versions."""
    library.save("Kent", _extract(ROWS[:4], "q1.csv", bad=True), actor=ANA)
    library.append("Kent", _extract(ROWS[4:6], "q2.csv"), actor=ANA)
    return "Kent"


def _state(name: str) -> list[tuple[int, int | None, bool]]:
    return [(v.number, v.reports, v.current) for v in library.versions(name)]


ACTIONS = {
    "list": lambda name, actor: [e.name for e in library.entries(actor=actor)].index(name),
    "open": lambda name, actor: library.path_of(name, actor),
    "download set-aside rows": lambda name, actor: library.quarantine(name, actor),
    "versions": lambda name, actor: library.versions(name, actor),
    "provenance": lambda name, actor: library.provenance(name, actor),
    "append": lambda name, actor: library.append(name, _extract(ROWS[6:], "q3.csv"), actor=actor),
    "rollback": lambda name, actor: library.rollback(name, 1, actor=actor),
    "delete": lambda name, actor: library.delete(name, actor=actor),
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("outsider", [BOB, SOUTH_ADMIN], ids=["analyst", "admin"])
def test_another_forces_user_is_told_the_dataset_does_not_exist_and_changes_nothing(kent, action, outsider):
    before = _state(kent)
    if action == "list":
        assert kent not in [e.name for e in library.entries(actor=outsider)]
    else:
        with pytest.raises(LibraryError) as refused:
            ACTIONS[action](kent, outsider)
        assert str(refused.value) == NOT_THERE  # word for word what a name nobody used gets
        with pytest.raises(LibraryError) as unknown:
            ACTIONS[action]("Nope", outsider)
        assert str(unknown.value) == NOT_THERE.replace("Kent", "Nope")
    assert _state(kent) == before  # nothing appended, rolled back or deleted


@pytest.mark.parametrize("action", ["list", "open", "download set-aside rows", "versions", "provenance", "append"])
def test_a_same_force_user_lists_opens_downloads_and_appends(kent, action, engine):
    ACTIONS[action](kent, ALF)
    if action == "open":
        assert engine.open(library.path_of(kent, ALF)).rows == 6
    if action == "download set-aside rows":
        assert len(library.quarantine(kent, ALF)) == 1
    if action == "append":
        assert _state(kent)[-1] == (3, 10, True)
        assert library.provenance(kent)[-1]["by"] == "alf"


@pytest.mark.parametrize("action", ["rollback", "delete"])
def test_only_the_owner_or_an_admin_deletes_or_rolls_back(kent, action):
    before = _state(kent)
    done = "deleted" if action == "delete" else "rolled back"
    with pytest.raises(LibraryError, match=f"'Kent' can be {done} only by ana, who saved it, or an admin"):
        ACTIONS[action](kent, ALF)
    assert _state(kent) == before
    with pytest.raises(LibraryError, match="only by ana"):  # an unrestricted user who is not an admin neither
        ACTIONS[action](kent, EVERY)
    ACTIONS[action](kent, ANA)
    if action == "delete":
        assert library.entries() == []
        library.save("Kent", _extract(ROWS[:2], "q1.csv"), actor=ANA)
        library.delete("Kent", actor=NORTH_ADMIN)
        assert library.entries() == []
    else:
        assert _state(kent)[-1] == (3, 4, True)
        assert library.rollback(kent, 2, actor=NORTH_ADMIN) == 4


def test_the_owner_is_kept_across_appends_and_rollbacks(kent):
    library.rollback(kent, 1, actor=ANA)
    library.append(kent, _extract(ROWS[6:], "q3.csv"), actor=ALF)
    folder = library.root() / kent
    assert library.owner(folder) == library.Owner("ana", Scope(forces=frozenset({NORTH})))
    [entry] = library.entries(actor=ALF)
    assert (entry.owner, entry.belongs_to, entry.version) == ("ana", NORTH, 4)
    assert [e.name for e in library.entries(actor=BOB)] == []


def test_a_dataset_without_an_owner_is_seen_only_by_unrestricted_users_until_an_operator_gives_it_one():
    library.save("Kent", _extract(ROWS[:2], "q1.csv"))  # as the command line saves without --force-scope
    (library.root() / "Kent" / library.OWNER).unlink()  # and as every dataset saved before owners
    assert [e.name for e in library.entries(actor=ANA)] == []
    assert [e.name for e in library.entries(actor=EVERY)] == ["Kent"]
    with pytest.raises(LibraryError, match="'Kent' can be deleted only by an admin: it has no recorded owner"):
        library.delete("Kent", actor=EVERY)
    library.set_owner("Kent", "ana", Scope(forces=frozenset({NORTH})))
    assert [e.name for e in library.entries(actor=ALF)] == ["Kent"]
    assert [e.name for e in library.entries(actor=BOB)] == []


def test_a_damaged_owner_record_hides_the_dataset_from_every_force_scoped_user(kent):
    (library.root() / kent / library.OWNER).write_text('{"by": "ana", "forces": "Southshire Police"}')
    assert [e.name for e in library.entries(actor=ALF)] == []
    assert [e.name for e in library.entries(actor=BOB)] == []
    assert [e.name for e in library.entries(actor=EVERY)] == [kent]


def test_a_migrated_dataset_keeps_its_owner(kent):
    folder = library.root() / kent
    current = library.path_of(kent)
    for child in current.iterdir():  # lay the current version out as a dataset saved before versions
        child.rename(folder / child.name)
    (folder / library.CURRENT).unlink()
    shutil.rmtree(folder / library.VERSIONS)
    library.append(kent, _extract(ROWS[6:], "q3.csv"), actor=ALF)
    assert library.owner(folder).by == "ana" and (folder / library.OWNER).exists()
    assert [e.name for e in library.entries(actor=BOB)] == []


@pytest.mark.parametrize(("user", "owner", "covered"), [
    (UNRESTRICTED, UNRESTRICTED, True),
    (UNRESTRICTED, Scope(forces=frozenset({NORTH})), True),
    (Scope(forces=frozenset({NORTH})), UNRESTRICTED, False),
    (Scope(forces=frozenset({NORTH})), Scope(forces=frozenset({NORTH})), True),
    (Scope(forces=frozenset({NORTH, SOUTH})), Scope(forces=frozenset({NORTH})), True),
    (Scope(forces=frozenset({NORTH})), Scope(forces=frozenset({NORTH, SOUTH})), False),
    (Scope(forces=frozenset({NORTH})), Scope(forces=frozenset({SOUTH})), False),
    # An analyst of one area does not see a dataset saved for the whole force (its set-aside rows are rows).
    (Scope(forces=frozenset({NORTH}), areas=frozenset({"North"})), Scope(forces=frozenset({NORTH})), False),
    (Scope(forces=frozenset({NORTH})), Scope(forces=frozenset({NORTH}), areas=frozenset({"North"})), True),
])
def test_a_scope_covers_a_dataset_only_when_it_holds_every_force_and_area_the_dataset_may(user, owner, covered):
    assert user.covers(owner) is covered


def test_the_command_saves_for_named_forces_and_gives_an_old_dataset_an_owner(capsys):
    small = FIXTURES / "small_canonical.csv"
    assert command.main(["save", "Kent", str(small), "--force-scope", NORTH]) == 0
    assert f"for {NORTH}" in capsys.readouterr().out
    assert [e.name for e in library.entries(actor=ALF)] == ["Kent"]
    assert [e.name for e in library.entries(actor=BOB)] == []
    assert command.main(["own", "Kent", "--by", "bob", "--force-scope", SOUTH]) == 0
    assert [e.name for e in library.entries(actor=ALF)] == []
    assert [e.name for e in library.entries(actor=BOB)] == ["Kent"]
    assert command.main(["list", "--json"]) == 0  # the operator's listing sees every dataset, and its owner
    [listed] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (listed["owner"], listed["belongs_to"]) == ("bob", SOUTH)
    assert command.main(["delete", "Kent"]) == 0  # the operator deletes any dataset
    assert library.entries() == []
