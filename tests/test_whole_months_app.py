"""Viewer queries that cannot be stitched together, in the running app: whole months, and no tiny selection.

A viewer (and any demonstration) gets periods in whole calendar months, whatever a shared link says,
and a selection of fewer reports than the threshold shows only a message on every page. An analyst's
day dates and small selections are left as they are.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib import ingest
from lib.engine import query
from lib.engine.store import SAMPLE_DIR, Engine
from lib.security import access, users

from .conftest import ROOT

PASSWORD = "correct horse battery staple"
PAGES = ["overview", "risk", "tactics", "explore", "training"]
# A selection of the sample with 4 reports in the opening year (checked below, through the engine).
TINY = {"forces": "Cumbria Constabulary", "shifts": "Night", "ethnicities": "Mixed"}
MESSAGE = "fewer than 10 reports, too few to show for your role"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("months") / "users.yaml"
    for role in ("viewer", "analyst"):
        users.upsert_user(path, role, role=role, password=PASSWORD, name=f"A {role}")
    return path


@pytest.fixture(autouse=True)
def _login_mode(fresh_caches, users_file, tmp_path):
    fresh_caches.setenv("OSE_AUTH_CONFIG", str(users_file))
    fresh_caches.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    fresh_caches.delenv("OSE_DEMO", raising=False)


def signed_in(role: str, page: str = "overview", **params: str) -> AppTest:
    """Open the app with a shared link's parameters, sign in as `role`, and go to `page`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.text_input(key="ose_login_username").input(role)
    at.text_input(key="ose_login_password").input(PASSWORD)
    next(b for b in at.button if b.label == "Sign in").click().run()
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def headline(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def shows_data(at: AppTest) -> bool:
    return bool(at.metric or at.get("vega_lite_chart") or at.dataframe or at.get("arrow_data_frame")
                or at.table)


def count(engine, start: date, end: date, scope: query.Scope = query.UNRESTRICTED, **values: str) -> int:
    ds = engine.open(SAMPLE_DIR)
    filters = query.filters_from_mapping({"date_from": start, "date_to": end,
                                          **{k: [v] for k, v in values.items()}})
    return query.report_count(engine, ds, filters, scope)


def published(start: date, end: date, **values: str) -> int:
    """Return the report count a viewer is shown: perturbed by the cell key method under this run's secret key."""
    keyed = Engine(read_file=ingest.read_file, pseudonymise=ingest.pseudonymise_ids, record_keys=ingest.record_keys)
    return count(keyed, start, end, replace(query.UNRESTRICTED, perturbed=True), **values)


def test_a_viewers_shared_link_with_day_dates_shows_whole_months(engine):
    at = signed_in("viewer", **{"from": "2023-04-10", "to": "2024-03-20"})
    snapped = count(engine, date(2023, 4, 1), date(2024, 3, 31))
    assert snapped != count(engine, date(2023, 4, 10), date(2024, 3, 20))  # the days asked for differ
    assert metric(at, "Reports") == f"{published(date(2023, 4, 1), date(2024, 3, 31)):,}"
    assert at.sidebar.selectbox(key="flt_month_from").value == "2023-04"
    assert at.sidebar.selectbox(key="flt_month_to").value == "2024-03"
    assert not at.sidebar.date_input  # no day picker for a viewer
    assert any("April 2023 to March 2024, whole months for your role" in c.value for c in at.sidebar.caption)
    assert (at.query_params["from"], at.query_params["to"]) in (("2023-04-01", "2024-03-31"),
                                                                (["2023-04-01"], ["2024-03-31"]))


def test_a_viewer_picks_months_and_gets_their_whole_days(engine):
    at = signed_in("viewer")
    at.sidebar.selectbox(key="flt_month_from").set_value("2024-02")
    at.sidebar.selectbox(key="flt_month_to").set_value("2024-02").run()
    assert not at.exception
    assert metric(at, "Reports") == f"{published(date(2024, 2, 1), date(2024, 2, 29)):,}"  # a leap February
    assert any("February 2024, whole months" in c.value for c in at.sidebar.caption)


def test_the_tiny_selection_really_is_tiny(engine):
    assert 1 <= count(engine, date(2024, 4, 1), date(2025, 3, 31), **TINY) < 10


@pytest.mark.parametrize("page", PAGES)
def test_a_viewers_tiny_selection_shows_only_the_message(page):
    at = signed_in("viewer", page, **TINY)
    assert any(MESSAGE in i.value for i in at.info), [i.value for i in at.info]
    assert not shows_data(at)


def test_a_viewers_empty_selection_shows_the_message_too():
    at = signed_in("viewer", **{**TINY, "ethnicities": "Other", "from": "2024-05-01", "to": "2024-05-31"})
    assert any(MESSAGE in i.value for i in at.info)
    assert not shows_data(at)


def test_an_analysts_day_dates_and_tiny_selections_are_unchanged(engine):
    at = signed_in("analyst", **{"from": "2023-04-10", "to": "2024-03-20"})
    assert at.sidebar.date_input(key="flt_dates").value == (date(2023, 4, 10), date(2024, 3, 20))
    assert not any(s.key in ("flt_month_from", "flt_month_to") for s in at.sidebar.selectbox)
    assert metric(at, "Reports") == f"{count(engine, date(2023, 4, 10), date(2024, 3, 20)):,}"
    tiny = signed_in("analyst", **TINY)
    assert not any(MESSAGE in i.value for i in tiny.info)
    assert metric(tiny, "Reports") == f"{count(engine, date(2024, 4, 1), date(2025, 3, 31), **TINY):,}"


def test_differencing_two_periods_days_apart_reveals_nothing_to_a_viewer(engine):
    """The date-overlap attack as a viewer: the year, and the year less its last eleven days."""
    year = signed_in("viewer", **{"from": "2023-04-01", "to": "2024-03-31"})
    short = signed_in("viewer", **{"from": "2023-04-01", "to": "2024-03-20"})
    assert count(engine, date(2023, 4, 1), date(2024, 3, 31)) > count(engine, date(2023, 4, 1), date(2024, 3, 20))
    assert headline(year) == headline(short)  # reports and the three harm rates: identical, difference zero
    assert [c.value for c in year.caption] == [c.value for c in short.caption]


def test_a_demonstration_takes_whole_months_too(engine, monkeypatch):
    monkeypatch.setenv("OSE_DEMO", "1")
    monkeypatch.delenv("OSE_AUTH_CONFIG")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["from"], at.query_params["to"] = "2024-01-15", "2024-01-16"
    at.run()
    assert not at.exception
    assert metric(at, "Reports") == f"{published(date(2024, 1, 1), date(2024, 1, 31)):,}"
    assert access.protection_forced(access.LOCAL_USER, demo=True)


def test_reset_brings_a_viewer_back_to_the_latest_twelve_months():
    at = signed_in("viewer", **{"from": "2023-06-03", "to": "2023-08-09"})
    assert at.sidebar.selectbox(key="flt_month_from").value == "2023-06"
    next(b for b in at.sidebar.button if b.label == "Reset filters").click().run()
    assert not at.exception
    assert (at.sidebar.selectbox(key="flt_month_from").value, at.sidebar.selectbox(key="flt_month_to").value) == (
        "2024-04", "2025-03")
    assert any("April 2024 to March 2025, whole months" in c.value for c in at.sidebar.caption)


def test_a_viewer_is_told_counts_are_adjusted_and_an_analyst_is_not():
    viewer, analyst = signed_in("viewer"), signed_in("analyst")
    said = "Counts are adjusted by up to 3 either way"
    assert any(said in c.value for c in viewer.caption)
    assert any("adjusted by up to 3 either way (cell key method)" in c.value for c in viewer.sidebar.caption)
    assert not any(said in c.value for c in analyst.caption)
