"""A viewer's budget of different selections a day: the rule, and the running app.

Averaging hundreds of different overlapping questions narrows a hidden count down (README, "What a
determined viewer can still learn"); a viewer may open at most OSE_VIEWER_DAILY_SELECTIONS different
selections of one dataset in 24 hours. Repeats are free, analysts and demonstrations have no budget,
and the first refusal is audited.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.privacy.budget import SelectionBudget
from lib.security import audit, users

from .conftest import ROOT

PASSWORD = "correct horse battery staple"
MONTHS = [f"2024-{m:02d}" for m in range(1, 13)]
REFUSED = "different selections of this dataset in the last 24 hours, the most a viewer may"


def test_new_selections_are_admitted_up_to_the_limit_and_repeats_always():
    budget = SelectionBudget(3)
    assert [budget.admit("ann", "ds", s, now=0).allowed for s in ("a", "b", "c")] == [True, True, True]
    refused = budget.admit("ann", "ds", "d", now=1)
    assert not refused.allowed and refused.first_refusal and refused.used == 3
    assert not budget.admit("ann", "ds", "e", now=2).first_refusal  # audited once a window, not per click
    assert budget.admit("ann", "ds", "b", now=3).allowed  # a selection opened already opens again
    assert budget.admit("bob", "ds", "d", now=3).allowed  # each viewer has their own budget
    assert budget.admit("ann", "other", "d", now=3).allowed  # and one per dataset
    # A day after the first three, they no longer count.
    assert budget.admit("ann", "ds", "d", now=24 * 3600 + 1).allowed


def test_viewers_asking_at_once_never_pass_the_limit():
    budget = SelectionBudget(50)
    admitted = []

    def ask(start: int) -> None:
        for i in range(start, start + 40):
            admitted.append(budget.admit("ann", "ds", i).allowed)

    threads = [threading.Thread(target=ask, args=(40 * n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 50 and len(admitted) == 200


def test_a_budget_must_allow_something():
    with pytest.raises(ValueError):
        SelectionBudget(0)


@pytest.fixture
def app_env(fresh_caches, tmp_path) -> Path:
    path = tmp_path / "users.yaml"
    for role in ("viewer", "analyst"):
        users.upsert_user(path, role, role=role, password=PASSWORD, name=f"A {role}")
    fresh_caches.setenv("OSE_AUTH_CONFIG", str(path))
    fresh_caches.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    fresh_caches.setenv("OSE_VIEWER_DAILY_SELECTIONS", "10")
    fresh_caches.delenv("OSE_DEMO", raising=False)
    return tmp_path


def signed_in(role: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.text_input(key="ose_login_username").input(role)
    at.text_input(key="ose_login_password").input(PASSWORD)
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.exception
    return at


def pick(at: AppTest, month: str) -> AppTest:
    at.sidebar.selectbox(key="flt_month_from").set_value(month)
    at.sidebar.selectbox(key="flt_month_to").set_value(month).run()
    assert not at.exception
    return at


def refused(at: AppTest) -> bool:
    return any(REFUSED in w.value for w in at.warning)


def test_a_viewers_eleventh_selection_is_refused_and_audited_and_earlier_ones_still_show(app_env):
    at = signed_in("viewer")  # the opening view is the first selection
    for month in MONTHS[:9]:
        assert not refused(pick(at, month)), month
        assert at.metric  # the page drew its figures
    pick(at, MONTHS[9])
    assert refused(at) and not at.metric
    pick(at, MONTHS[10])
    assert refused(at)
    pick(at, MONTHS[3])  # opened already: shown again
    assert not refused(at) and at.metric
    events = audit.read()
    reached = events[events["event"] == "selection_budget_reached"]
    assert len(reached) == 1 and reached["user"].iloc[0] == "viewer"


def test_an_analyst_has_no_budget(app_env):
    at = signed_in("analyst")
    for month in MONTHS[:11]:
        pick_days = at.sidebar.date_input(key="flt_dates")
        pick_days.set_value((f"{month}-01", f"{month}-28")).run()
        assert not at.exception and not refused(at) and at.metric


@pytest.mark.parametrize("raw", ["5", "lots", "-1"])
def test_a_budget_setting_out_of_range_is_refused_by_name(raw):
    from lib.model.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="OSE_VIEWER_DAILY_SELECTIONS"):
        Settings.from_environ({"OSE_VIEWER_DAILY_SELECTIONS": raw})
    assert Settings.from_environ({}).viewer_daily_selections == 200
