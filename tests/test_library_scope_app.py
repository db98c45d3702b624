"""AppTest: the picker and the Data page show a user only the saved datasets of their forces; delete needs the owner."""
from __future__ import annotations

from pathlib import Path

import pytest

from lib import ingest
from lib.ingest import library
from lib.model.scope import Actor, Scope
from lib.security import audit, users

from .conftest import FIXTURES
from .test_auth import PASSWORD, app, sign_in

KENT, ESSEX = "Kent Police", "Essex Police"
# The fixture's ten reports, as if of Kent (and Essex): a force's analyst sees its rows on every page.
SMALL = (FIXTURES / "small_canonical.csv").read_bytes().replace(b"Southshire Police", b"Northshire Police")
KENT_ROWS, ESSEX_ROWS = SMALL.replace(b"Northshire Police", b"Kent Police"), SMALL.replace(b"Northshire Police",
                                                                                            b"Essex Police")


@pytest.fixture(autouse=True)
def _fresh(fresh_caches):
    """Every app run here starts with empty caches (see conftest)."""


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scope") / "users.yaml"
    users.upsert_user(path, "kate", role="analyst", password=PASSWORD, force=KENT)
    users.upsert_user(path, "kim", role="analyst", password=PASSWORD, force=KENT)
    users.upsert_user(path, "eric", role="analyst", password=PASSWORD, force=ESSEX)
    users.upsert_user(path, "admin", role="admin", password=PASSWORD)
    return path


@pytest.fixture
def kent_dataset(users_file, tmp_path, monkeypatch) -> str:
    """Serve with the users file; kate of Kent has saved 'Kent 2024' (one row set aside)."""
    monkeypatch.setenv("OSE_AUTH_CONFIG", str(users_file))
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("OSE_DEMO", raising=False)
    bad = b"R11,I11,never,Kent Police,North,OF9" + b"," * 13 + b"\n"
    library.save("Kent 2024", ingest.ingest([("k.csv", KENT_ROWS + bad)]),
                 actor=Actor("kate", Scope(forces=frozenset({KENT}))))
    return "Kent 2024"


def picker(at) -> list[str]:
    return at.selectbox(key="dataset_choice").options


def saved_on_data_page(at) -> list[str]:
    at.switch_page("app_pages/data.py").run()
    assert not at.exception
    return [e.label.split(":")[0] for e in at.expander if ": " in e.label and "reports" in e.label]


def test_another_forces_analyst_cannot_see_or_open_the_dataset_even_by_link(kent_dataset):
    at = app()
    at.query_params["dataset"] = f"lib:{kent_dataset}"
    sign_in(at, "eric")
    assert not at.exception
    assert f"{kent_dataset} (saved)" not in picker(at)
    assert at.selectbox(key="dataset_choice").value == "Synthetic sample (not real data)"  # the link opened nothing
    assert saved_on_data_page(at) == []
    assert any("No saved datasets yet" in i.value for i in at.info)
    assert not at.get("download_button")  # no set-aside rows of any saved dataset
    assert not any(kent_dataset in c.value for c in at.caption)


def test_a_same_force_analyst_sees_and_opens_it_but_only_the_owner_deletes_it(kent_dataset):
    at = app()
    at.query_params["dataset"] = f"lib:{kent_dataset}"
    sign_in(at, "kim")
    assert at.selectbox(key="dataset_choice").value == f"{kent_dataset} (saved)"  # the same link, for Kent
    assert saved_on_data_page(at) == [kent_dataset]
    assert not [c for c in at.checkbox if c.key == f"confirm_{kent_dataset}"]
    assert any("Only kate, who saved it, or an admin can delete" in c.value for c in at.caption)

    owner = sign_in(app(), "kate")
    assert saved_on_data_page(owner) == [kent_dataset]
    owner.checkbox(key=f"confirm_{kent_dataset}").check().run()
    next(b for b in owner.button if b.label == f"Delete {kent_dataset}").click().run()
    assert not owner.exception
    assert library.entries() == []
    event = audit.read().iloc[-1]
    assert (event["event"], event["user"], event["dataset"]) == ("delete", "kate", kent_dataset)


def test_an_unrestricted_admin_sees_every_forces_dataset_and_may_delete_it(kent_dataset):
    at = sign_in(app(), "admin")
    assert saved_on_data_page(at) == [kent_dataset]
    assert [c for c in at.checkbox if c.key == f"confirm_{kent_dataset}"]


def test_the_append_target_lists_only_the_users_datasets(kent_dataset):
    library.save("Essex 2024", ingest.ingest([("e.csv", ESSEX_ROWS)]),
                 actor=Actor("eric", Scope(forces=frozenset({ESSEX}))))
    at = sign_in(app(), "kim")
    at.switch_page("app_pages/data.py").run()
    at.file_uploader(key="upload_files").set_value([("more.csv", KENT_ROWS, "text/csv")]).run()
    next(b for b in at.button if b.label == "Read files").click().run()
    assert not at.exception
    assert at.selectbox(key="append_target").options == [kent_dataset]
