"""Filters, measures and breakdowns against hand-counted values and conservation properties."""
from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from lib.engine import fastpath, query
from lib.engine.query import UNRESTRICTED, Filters, Scope


def test_summary_counts_match_hand_counts(engine, small):
    s = query.summarise(engine, small, Filters(), UNRESTRICTED)
    assert (s.reports, s.incidents, s.officers) == (10, 9, 8)
    injured = s.rates["officer_injured"]
    assert (injured.numerator, injured.denominator, injured.unanswered) == (3, 9, 1)
    assert injured.rate == pytest.approx(3 / 9)
    assert (s.rates["officer_assaulted"].numerator, s.rates["officer_assaulted"].denominator) == (2, 9)
    assert (s.rates["subject_injured"].numerator, s.rates["subject_injured"].denominator) == (2, 9)


def test_rate_interval_contains_rate_and_unanswered_share(engine, small):
    rate = query.summarise(engine, small, Filters(), UNRESTRICTED).rates["officer_injured"]
    low, high = rate.interval
    assert low < rate.rate < high
    assert rate.unanswered_share == pytest.approx(0.1)


@pytest.mark.parametrize(("filters", "expected"), [
    (Filters(), 10),
    (Filters(shifts=("Night",)), 3),
    (Filters(shifts=("Early", "Late")), 7),
    (Filters(forces=("Northshire Police",)), 5),
    (Filters(forces=("Northshire Police",), roles=("Response",)), 3),
    (Filters(tactics=("Compliant handcuffing",)), 3),
    # CED counts once per report at its highest use: R01's 'CED drawn' gave way to 'CED fired'.
    (Filters(tactics=("CED drawn",)), 0),
    (Filters(tactics=("CED fired",)), 1),
    (Filters(tactic_groups=("Less lethal weapons",)), 2),
    (Filters(date_from=date(2024, 3, 1), date_to=date(2024, 3, 31)), 3),
    (Filters(date_to=date(2024, 1, 5)), 2),
    (Filters(location_types=("Dwelling",), genders=("Male",)), 1),
    (Filters(ethnicities=("White",), age_bands=("18-34",)), 4),
    (Filters(shifts=("No such shift",)), 0),
    (Filters(forces=("O'Brien'); DROP TABLE x; --",)), 0),
])
def test_filters_select_hand_counted_reports(engine, small, filters, expected):
    assert query.summarise(engine, small, filters, UNRESTRICTED).reports == expected


def test_night_shift_injury_rate_uses_answered_reports_only(engine, small):
    rate = query.summarise(engine, small, Filters(shifts=("Night",)), UNRESTRICTED).rates["officer_injured"]
    assert (rate.numerator, rate.denominator, rate.unanswered) == (2, 2, 1)


def test_scope_limits_every_query_before_filters(engine, small):
    south = Scope(forces=frozenset({"Southshire Police"}))
    assert query.summarise(engine, small, Filters(), south).reports == 5
    # Asking for the other force through a filter still returns nothing.
    assert query.summarise(engine, small, Filters(forces=("Northshire Police",)), south).reports == 0
    options = query.filter_options(engine, small, south)
    assert options["forces"] == ["Southshire Police"]
    assert "North" not in options["areas"]
    assert query.tactic_counts(engine, small, Filters(), south)["reports"].sum() == 4
    empty = Scope(forces=frozenset())
    assert query.summarise(engine, small, Filters(), empty).reports == 0


def test_breakdown_by_shift_is_in_time_order_with_counts(engine, small):
    frame = query.breakdown(engine, small, Filters(), UNRESTRICTED, ("shift",))
    assert frame["shift"].tolist() == ["Early", "Late", "Night"]
    assert frame["reports"].tolist() == [4, 3, 3]
    night = frame.set_index("shift").loc["Night"]
    assert (night["officer_injured_yes"], night["officer_injured_answered"]) == (2, 2)
    assert night["officer_injured_rate"] == 1.0


def test_breakdown_keeps_unknowns_as_not_recorded(engine, small):
    frame = query.breakdown(engine, small, Filters(), UNRESTRICTED, ("subject_ethnicity",))
    assert frame.set_index("subject_ethnicity").loc[query.NOT_RECORDED, "reports"] == 1
    assert frame["reports"].sum() == 10


def test_monthly_breakdown(engine, small):
    frame = query.breakdown(engine, small, Filters(), UNRESTRICTED, ("month",))
    assert [str(m)[:7] for m in frame["month"]] == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert frame["reports"].tolist() == [3, 2, 3, 2]


def test_unknown_dimension_is_refused(engine, small):
    with pytest.raises(ValueError, match="unknown dimension"):
        query.breakdown(engine, small, Filters(), UNRESTRICTED, ("officer_id",))


def test_tactic_counts_follow_highest_use_rule(engine, small):
    frame = query.tactic_counts(engine, small, Filters(), UNRESTRICTED).set_index("tactic")
    assert frame.loc["Compliant handcuffing", "reports"] == 3
    assert "CED drawn" not in frame.index
    assert frame.loc["CED fired", "tactic_group"] == "Less lethal weapons"
    assert frame.loc["Compliant handcuffing", "share"] == pytest.approx(0.3)
    assert frame.index[0] == "Compliant handcuffing"  # most used first


@pytest.mark.parametrize(("filters", "sentence"), [
    (Filters(), "All reports"),
    (Filters(shifts=("Night",), roles=("Response",), tactics=("CED fired",)),
     "Response officers, Night shift, CED fired used"),
    (Filters(date_from=date(2024, 4, 1), date_to=date(2025, 3, 31), shifts=("Early", "Late")),
     "1 Apr 2024 to 31 Mar 2025, Early or Late shift"),
    (Filters(forces=("Kent Police",), genders=("Female",)), "Kent Police, Female subject"),
    (Filters(date_from=date(2024, 1, 1)), "From 1 Jan 2024"),
    (Filters(location_types=("Dwelling", "Custody block", "Street/highway")),
     "At Dwelling, Custody block or Street/highway"),
])
def test_describe_says_the_filter_state_in_words(filters, sentence):
    assert query.describe(filters) == sentence


def test_previous_period_is_same_length_just_before(small):
    f = Filters(date_from=date(2024, 3, 1), date_to=date(2024, 3, 31), shifts=("Night",))
    prev = query.previous_period(f, small)
    assert (prev.date_from, prev.date_to) == (date(2024, 2, 1), date(2024, 2, 29))
    assert prev.shifts == ("Night",)
    days = query.previous_period(Filters(date_from=date(2024, 3, 5), date_to=date(2024, 3, 14)), small)
    assert (days.date_from, days.date_to) == (date(2024, 2, 24), date(2024, 3, 4))
    assert query.previous_period(Filters(), small) is None  # nothing in the data before its first day


def test_a_period_compares_only_the_days_with_data(small):
    """The data run 5 Jan to 30 Apr 2024: a period running past them is cut to them before the one before is
    taken, so a part month or a year with one month of data is not compared with a whole one."""
    year = query.previous_period(Filters(date_from=date(2024, 4, 1), date_to=date(2025, 3, 31)), small)
    assert (year.date_from, year.date_to) == (date(2024, 3, 1), date(2024, 3, 31))  # April had data, March too
    tail = query.previous_period(Filters(date_from=date(2024, 3, 10), date_to=date(2024, 5, 31)), small)
    assert (tail.date_from, tail.date_to) == (date(2024, 1, 18), date(2024, 3, 9))  # 52 days with data, 52 before
    # Whole months chosen round a part month of the data (as a viewer picks them): a part month is not compared
    # with a whole one, nor is a period of odd days published in their place.
    from types import SimpleNamespace

    mid_june = SimpleNamespace(first=datetime(2020, 1, 1), last=datetime(2024, 6, 15, 10))
    assert query.previous_period(Filters(date_from=date(2023, 7, 1), date_to=date(2024, 6, 30)), mid_june) is None
    may = query.previous_period(Filters(date_from=date(2023, 6, 1), date_to=date(2024, 5, 31)), mid_june)
    assert (may.date_from, may.date_to) == (date(2022, 6, 1), date(2023, 5, 31))
    # The data do not cover the whole period before (they start 5 Jan): no comparison, not half of one.
    assert query.previous_period(Filters(date_from=date(2024, 2, 1), date_to=date(2024, 3, 31)), small) is None
    assert query.previous_period(Filters(date_from=date(2024, 1, 1), date_to=date(2024, 1, 31)), small) is None


def test_default_filters_cover_latest_twelve_months(small):
    f = query.default_filters(small)
    assert f.date_to == date(2024, 4, 30)
    assert f.date_from == date(2024, 1, 5)  # the data start, as it is shorter than a year


def test_filters_from_mapping_round_trip():
    f = query.filters_from_mapping({"shifts": ["Night"], "date_from": "2024-01-01", "bogus": "x",
                                    "roles": "Response", "forces": []})
    assert f == Filters(shifts=("Night",), roles=("Response",), date_from=date(2024, 1, 1))


def test_time_and_crewing_dimensions(engine, small):
    hours = query.breakdown(engine, small, Filters(), UNRESTRICTED, ("hour",))
    assert hours["reports"].sum() == 10
    assert hours.set_index("hour").loc[8, "reports"] == 2  # R01 08:10 and R02 08:12
    days = query.breakdown(engine, small, Filters(), UNRESTRICTED, ("weekday",))
    assert days.set_index("weekday").loc["Friday", "reports"] == 4  # R01 and R02 on 5 Jan, R04 2 Feb, R06 1 Mar
    crew = query.breakdown(engine, small, Filters(), UNRESTRICTED, ("single_crewed",)).set_index("single_crewed")
    assert (crew.loc["Single crewed", "reports"], crew.loc["Double crewed", "reports"],
            crew.loc[query.NOT_RECORDED, "reports"]) == (3, 6, 1)


# --- one scan per filter state: the same frames as the separate Ibis queries -----------------

PAGE_BREAKDOWNS = [("month",), ("weekday", "hour"), ("hour", "weekday"), ("weekday",), ("hour",),
                   ("officer_role",), ("shift",), ("area",), ("officer_role", "shift"), ("shift", "officer_role")]


@pytest.fixture(scope="module")
def page_world(engine):
    from lib import synth
    data = synth.generate(3000, seed=11)
    return engine.add("page scan world", data.reports, data.tactics, data.officers, key="pagescan00011")


def _separately(monkeypatch, fn):
    with monkeypatch.context() as m:
        m.setattr(fastpath, "_page_columns", lambda engine, ds: None)
        return fn()


@pytest.mark.duckdb_only
@pytest.mark.parametrize("filters", [
    Filters(),
    Filters(date_from=date(2024, 4, 1), date_to=date(2025, 3, 31), shifts=("Night",),
            roles=("Response", "Neighbourhood")),
    Filters(date_from=date(2024, 1, 10), date_to=date(2024, 2, 20)),
    Filters(date_to=date(2023, 12, 31), tactic_groups=("Less lethal weapons",)),
    Filters(date_from=date(2030, 1, 1)),  # nothing in view
], ids=["all", "night-response-year", "part-months", "taser-upto", "empty"])
@pytest.mark.parametrize("scope", [UNRESTRICTED, Scope(forces=frozenset())], ids=["unrestricted", "no-force"])
def test_one_scan_gives_the_frames_of_the_separate_queries(engine, page_world, monkeypatch, filters, scope):
    ds = page_world
    query.forget_page_results(engine)
    assert fastpath._page_columns(engine, ds) is not None  # the one-scan path is the one under test
    assert query.summarise(engine, ds, filters, scope) == _separately(
        monkeypatch, lambda: query.summarise(engine, ds, filters, scope))
    previous = query.previous_period(filters, ds)
    if previous is not None:  # kept from the same scan as the current period's
        assert query.summarise(engine, ds, previous, scope) == _separately(
            monkeypatch, lambda: query.summarise(engine, ds, previous, scope))
    for by in PAGE_BREAKDOWNS:
        pd.testing.assert_frame_equal(query.breakdown(engine, ds, filters, scope, by), _separately(
            monkeypatch, lambda by=by: query.breakdown(engine, ds, filters, scope, by)))
    pd.testing.assert_frame_equal(query.tactic_counts(engine, ds, filters, scope), _separately(
        monkeypatch, lambda: query.tactic_counts(engine, ds, filters, scope)))


@pytest.mark.duckdb_only
def test_a_breakdown_alone_scans_once_and_agrees(engine, page_world, monkeypatch):
    # Without a summary first, a breakdown groups only its own part; later ones still agree.
    ds, filters = page_world, Filters(shifts=("Night",))
    query.forget_page_results(engine)
    for by in (("officer_role",), ("month",), ("area",)):
        pd.testing.assert_frame_equal(query.breakdown(engine, ds, filters, UNRESTRICTED, by), _separately(
            monkeypatch, lambda by=by: query.breakdown(engine, ds, filters, UNRESTRICTED, by)))


def test_small_fixture_counts_are_the_same_either_way(engine, small, monkeypatch):
    query.forget_page_results(engine)
    for by in PAGE_BREAKDOWNS:
        pd.testing.assert_frame_equal(query.breakdown(engine, small, Filters(), UNRESTRICTED, by), _separately(
            monkeypatch, lambda by=by: query.breakdown(engine, small, Filters(), UNRESTRICTED, by)))
    assert query.summarise(engine, small, Filters(), UNRESTRICTED) == _separately(
        monkeypatch, lambda: query.summarise(engine, small, Filters(), UNRESTRICTED))


@pytest.mark.duckdb_only
@pytest.mark.parametrize("order", [PAGE_BREAKDOWNS, PAGE_BREAKDOWNS[::-1]], ids=["coarse-first", "fine-first"])
def test_breakdowns_agree_whichever_grain_is_counted_first(engine, page_world, monkeypatch, order):
    # The Overview's months, roles and shifts come from coarse parts, a weekday or an area from fine ones; a
    # coarse breakdown asked after the fine part is counted is added up from that part instead.
    ds = page_world
    filters = Filters(date_from=date(2024, 1, 10), date_to=date(2025, 2, 20), roles=("Response", "Custody"))
    query.forget_page_results(engine)
    query.summarise(engine, ds, filters, UNRESTRICTED)
    for by in order:
        pd.testing.assert_frame_equal(query.breakdown(engine, ds, filters, UNRESTRICTED, by), _separately(
            monkeypatch, lambda by=by: query.breakdown(engine, ds, filters, UNRESTRICTED, by)))
    pd.testing.assert_frame_equal(query.tactic_counts(engine, ds, filters, UNRESTRICTED), _separately(
        monkeypatch, lambda: query.tactic_counts(engine, ds, filters, UNRESTRICTED)))
