"""Browser journey: an analyst of one force cannot list, open, download or delete another force's saved dataset."""
from __future__ import annotations

from pathlib import Path

import pytest

from lib import ingest
from lib.ingest import library
from lib.model.scope import Actor, Scope
from lib.security import audit, users

from .browser import browser_page, running_app, settle
from .conftest import FIXTURES

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
KENT, ESSEX = "Kent Police", "Essex Police"
BAD_ROW = b"R11,I11,never,{force},North,OF9" + b"," * 13 + b"\n"


def _extract(force: str) -> ingest.IngestResult:
    """The fixture's ten reports as one force's, and a row with no date, set aside."""
    small = (FIXTURES / "small_canonical.csv").read_bytes()
    rows = small.replace(b"Northshire Police", force.encode()).replace(b"Southshire Police", force.encode())
    return ingest.ingest([(f"{force}.csv", rows + BAD_ROW.replace(b"{force}", force.encode()))])


def sign_in(page, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)
    settle(page)


def picker_options(page) -> list[str]:
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Dataset").first.click()
    options = page.locator('[role="option"]')
    options.first.wait_for(timeout=30_000)
    found = [t.strip() for t in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return found


def picked(page) -> str:
    return page.get_by_role("combobox", name="Dataset").input_value()


@pytest.fixture
def two_forces(tmp_path, monkeypatch) -> dict[str, str]:
    """A users file with an analyst of Kent and one of Essex, each of whom has saved a dataset."""
    path = tmp_path / "users.yaml"
    users.upsert_user(path, "kate", role="analyst", password=PASSWORD, force=KENT)
    users.upsert_user(path, "eric", role="analyst", password=PASSWORD, force=ESSEX)
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    library.save("Kent 2024", _extract(KENT), actor=Actor("kate", Scope(forces=frozenset({KENT}))))
    library.save("Essex 2024", _extract(ESSEX), actor=Actor("eric", Scope(forces=frozenset({ESSEX}))))
    return {"OSE_AUTH_CONFIG": str(path), "OSE_DATA_DIR": str(tmp_path / "var")}


def test_an_analyst_of_one_force_cannot_list_open_download_or_delete_anothers_dataset(two_forces, tmp_path):
    with running_app(two_forces) as url, browser_page() as page:
        sign_in(page, url, "kate")
        options = picker_options(page)
        assert "Kent 2024 (saved)" in options and "Essex 2024 (saved)" not in options  # not in the picker

        page.goto(url + "/?dataset=lib:Essex%202024")  # a link naming it opens nothing of it
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)
        settle(page)
        assert "Synthetic sample" in picked(page) and "Essex 2024" not in page.locator("body").inner_text()
        page.goto(url + "/?dataset=lib:Kent%202024")  # while the same link to her own force's dataset does
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=60_000)
        settle(page)
        assert "Kent 2024 (saved)" in picked(page)

        page.goto(url + "/data?dataset=sample")  # the Data page, with the sample open
        page.get_by_role("tab", name="Saved datasets").click()
        settle(page)
        saved = page.locator('[data-testid="stExpander"]')
        saved.filter(has_text="Kent 2024:").first.wait_for(timeout=30_000)
        assert saved.filter(has_text="Essex 2024").count() == 0  # not listed, so nothing to download or delete
        assert "Essex 2024" not in page.locator("body").inner_text()

        kent = saved.filter(has_text="Kent 2024:").first
        kent.get_by_text("Kent 2024:").click()
        with page.expect_download(timeout=60_000) as done:
            kent.get_by_role("button", name="Download CSV").click()
        body = Path(done.value.path()).read_bytes().decode("utf-8-sig")
        assert "occurred_at" in body and "Essex" not in body

    log = audit.read(tmp_path / "var" / "audit" / "audit.jsonl")
    export = log[log["event"] == "export"].iloc[-1]
    assert (export["user"], export["dataset"]) == ("kate", "Kent 2024")  # the dataset downloaded, not the open one
    assert not log["dataset"].fillna("").str.contains("Essex").any()
    assert sorted(e.name for e in library.entries()) == ["Essex 2024", "Kent 2024"]  # nothing was deleted
