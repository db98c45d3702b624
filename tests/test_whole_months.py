"""Whole-month periods and the rule of minimum reports: the pure rules a viewer's queries pass through."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from lib.engine import query
from lib.engine.filters import month_end
from lib.engine.query import Filters
from lib.engine.store import SAMPLE_DIR, Dataset
from lib.privacy import selection
from lib.security import access

D = date
SAMPLE_FIRST, SAMPLE_LAST = D(2023, 4, 1), D(2025, 3, 31)


@pytest.mark.parametrize(("asked", "first", "last", "expected"), [
    # days inside one month: that whole month
    ((D(2024, 6, 10), D(2024, 6, 12)), SAMPLE_FIRST, SAMPLE_LAST, (D(2024, 6, 1), D(2024, 6, 30))),
    # whole months already: unchanged
    ((D(2023, 4, 1), D(2024, 3, 31)), SAMPLE_FIRST, SAMPLE_LAST, (D(2023, 4, 1), D(2024, 3, 31))),
    # eleven days short of a whole year: the whole year
    ((D(2023, 4, 1), D(2024, 3, 20)), SAMPLE_FIRST, SAMPLE_LAST, (D(2023, 4, 1), D(2024, 3, 31))),
    # across a year boundary
    ((D(2023, 12, 31), D(2024, 1, 1)), SAMPLE_FIRST, SAMPLE_LAST, (D(2023, 12, 1), D(2024, 1, 31))),
    # February in a leap year ends on the 29th, in another year on the 28th
    ((D(2024, 2, 3), D(2024, 2, 4)), SAMPLE_FIRST, SAMPLE_LAST, (D(2024, 2, 1), D(2024, 2, 29))),
    ((D(2025, 2, 3), D(2025, 2, 4)), SAMPLE_FIRST, SAMPLE_LAST, (D(2025, 2, 1), D(2025, 2, 28))),
    # outside the data: clipped to the data's first and last months
    ((D(2020, 1, 1), D(2030, 1, 1)), SAMPLE_FIRST, SAMPLE_LAST, (D(2023, 4, 1), D(2025, 3, 31))),
    # open ends: the data's first and last months
    ((None, None), SAMPLE_FIRST, SAMPLE_LAST, (D(2023, 4, 1), D(2025, 3, 31))),
    ((None, D(2023, 7, 9)), SAMPLE_FIRST, SAMPLE_LAST, (D(2023, 4, 1), D(2023, 7, 31))),
    # partial first and last months: the bound stays on the month's edge, not the data's first or last day
    ((D(2023, 4, 20), D(2025, 3, 1)), D(2023, 4, 15), D(2025, 3, 20), (D(2023, 4, 1), D(2025, 3, 31))),
    ((D(2020, 1, 1), D(2030, 1, 1)), D(2023, 4, 15), D(2025, 3, 20), (D(2023, 4, 1), D(2025, 3, 31))),
    # backwards: read forwards
    ((D(2024, 5, 9), D(2024, 2, 2)), SAMPLE_FIRST, SAMPLE_LAST, (D(2024, 2, 1), D(2024, 5, 31))),
    # a dataset without dates: the asked months, unclipped
    ((D(2024, 5, 9), D(2024, 5, 9)), None, None, (D(2024, 5, 1), D(2024, 5, 31))),
    ((None, None), None, None, (None, None)),
])
def test_snap_to_months(asked, first, last, expected):
    snapped = query.snap_to_months(Filters(date_from=asked[0], date_to=asked[1], shifts=("Night",)), first, last)
    assert (snapped.date_from, snapped.date_to) == expected
    assert snapped.shifts == ("Night",)  # only the period changes


@pytest.mark.parametrize("asked", [(D(2023, 6, 7), D(2024, 2, 10)), (None, D(2024, 2, 29)), (D(2024, 2, 29), None)])
def test_snapping_twice_changes_nothing(asked):
    once = query.snap_to_months(Filters(date_from=asked[0], date_to=asked[1]), SAMPLE_FIRST, SAMPLE_LAST)
    assert query.snap_to_months(once, SAMPLE_FIRST, SAMPLE_LAST) == once


def test_any_two_snapped_periods_differ_by_whole_months_only():
    days = [D(2023, 4, 1), D(2023, 4, 17), D(2023, 12, 31), D(2024, 1, 1), D(2024, 2, 29), D(2024, 3, 20),
            D(2025, 3, 31)]
    for a in days:
        for b in days:
            snapped = query.snap_to_months(Filters(date_from=a, date_to=b), SAMPLE_FIRST, SAMPLE_LAST)
            assert snapped.date_from.day == 1
            assert snapped.date_to == month_end(snapped.date_to)


def _dataset(first: datetime, last: datetime) -> Dataset:
    return Dataset(id="x", name="x", source="x", rows=1, first=first, last=last, has_officers=False)


@pytest.mark.parametrize(("first", "last", "expected"), [
    (datetime(2023, 4, 1, 0, 8), datetime(2025, 3, 31, 23, 42), (D(2024, 4, 1), D(2025, 3, 31))),
    # a partial last month counts as the latest month: eleven whole months and March so far
    (datetime(2023, 4, 1), datetime(2025, 3, 20, 9), (D(2024, 4, 1), D(2025, 3, 31))),
    # less than a year of data: all of it, in its months
    (datetime(2024, 9, 15), datetime(2025, 1, 3), (D(2024, 9, 1), D(2025, 1, 31))),
])
def test_the_opening_view_in_whole_months(first, last, expected):
    opening = query.default_months(_dataset(first, last))
    assert (opening.date_from, opening.date_to) == expected


@pytest.mark.parametrize(("period", "first", "last", "words"), [
    ((D(2023, 4, 1), D(2024, 3, 31)), SAMPLE_FIRST, SAMPLE_LAST, "April 2023 to March 2024"),
    ((D(2024, 2, 1), D(2024, 2, 29)), SAMPLE_FIRST, SAMPLE_LAST, "February 2024"),
    ((D(2023, 4, 1), D(2025, 3, 31)), D(2023, 4, 15), D(2025, 3, 20),
     "April 2023 to March 2025 (data from 15 Apr 2023, data up to 20 Mar 2025)"),
    ((D(2023, 5, 1), D(2025, 2, 28)), D(2023, 4, 15), D(2025, 3, 20), "May 2023 to February 2025"),
])
def test_describe_months(period, first, last, words):
    assert query.describe_months(Filters(date_from=period[0], date_to=period[1]), first, last) == words


@pytest.mark.parametrize(("reports", "threshold", "too_few"), [
    (0, 10, True), (1, 10, True), (9, 10, True), (10, 10, False), (5000, 10, False),
    (4, 5, True), (5, 5, False),
    (0, None, False), (3, None, False),  # the rule off: everything shows
])
def test_too_few_reports(reports, threshold, too_few):
    assert selection.too_few_reports(reports, threshold) is too_few


def test_the_message_names_the_threshold_and_what_to_do():
    assert selection.too_few_message(10) == ("This selection holds fewer than 10 reports, too few to show for "
                                             "your role; widen the filters.")


@pytest.mark.parametrize(("roles", "demo", "forced"), [
    (("viewer",), False, True), (("viewer",), True, True),
    (("analyst",), False, False), (("analyst",), True, True),
    (("supervisor",), False, False), (("admin",), True, True),
])
def test_protection_is_forced_for_viewers_and_every_demo(roles, demo, forced):
    assert access.protection_forced(access.User(username="u", name="u", roles=roles), demo) is forced


def test_report_count_is_the_summary_count_within_scope(engine):
    ds = engine.open(SAMPLE_DIR)
    filters = Filters(date_from=D(2023, 4, 1), date_to=D(2024, 3, 31), shifts=("Night",))
    scope = query.Scope(forces=frozenset({"Cumbria Constabulary"}), areas=None)
    assert query.report_count(engine, ds, filters, scope) == query.summarise(engine, ds, filters, scope).reports
    assert 0 < query.report_count(engine, ds, filters, scope) < query.report_count(engine, ds, filters,
                                                                                   query.UNRESTRICTED)


def test_periods_a_few_days_apart_give_the_same_figures_once_snapped(engine):
    """The date-overlap attack: two periods eleven days apart, differenced, leave nothing once snapped."""
    ds = engine.open(SAMPLE_DIR)
    first, last = ds.first.date(), ds.last.date()
    year = Filters(date_from=D(2023, 4, 1), date_to=D(2024, 3, 31))
    short = replace(year, date_to=D(2024, 3, 20))
    raw_year, raw_short = (query.summarise(engine, ds, f, query.UNRESTRICTED) for f in (year, short))
    assert raw_year.reports - raw_short.reports > 0  # unsnapped, the difference is the reports of 21-31 March
    snapped_year, snapped_short = (query.snap_to_months(f, first, last) for f in (year, short))
    assert snapped_year == snapped_short
    assert (query.summarise(engine, ds, snapped_year, query.UNRESTRICTED)
            == query.summarise(engine, ds, snapped_short, query.UNRESTRICTED))
