"""Explore: the chart rules, the aggregate and its Other bucket, clicks into filters, the builders, the page."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib import synth
from lib.analysis import explore
from lib.engine.query import NOT_RECORDED, UNRESTRICTED, Filters
from lib.present import explore_charts
from lib.present.charts import MIN_DENOMINATOR

from .conftest import ROOT

# --- choosing the chart -------------------------------------------------------------------


@pytest.mark.parametrize(("measure", "dimensions", "facet", "expected"), [
    ("reports", ("month",), None, "line"),
    ("officer_injured", ("hour",), None, "line"),
    ("reports", ("month", "shift"), None, "line"),
    ("subject_injured", ("team", "hour"), None, "line"),
    ("reports", ("shift",), None, "bar"),
    ("officer_injured", ("team",), None, "bar"),
    ("officer_assaulted", ("weekday",), None, "bar"),  # weekday is a set of groups, not an axis of time
    ("reports", ("officer_role", "shift"), None, "heatmap"),
    ("officer_injured", ("weekday", "single_crewed"), None, "heatmap"),
    ("reports", ("month", "hour"), None, "heatmap"),
    ("reports", ("shift",), "force", "small_multiples"),
    ("officer_injured", ("month",), "officer_role", "small_multiples"),
    ("officer_injured", ("officer_role", "shift"), "force", "small_multiples"),
])
def test_choose_chart(measure, dimensions, facet, expected):
    assert explore.choose_chart(measure, dimensions, facet) == expected


@pytest.mark.parametrize(("measure", "dimensions", "facet"), [
    ("injuries", ("shift",), None),          # unknown measure
    ("reports", (), None),                   # no dimension
    ("reports", ("shift", "force", "area"), None),  # three dimensions
    ("reports", ("shift", "shift"), None),   # the same dimension twice
    ("reports", ("postcode",), None),        # unknown dimension
    ("reports", ("shift",), "shift"),        # facet already charted
    ("reports", ("shift",), "month"),        # a time axis as facet
])
def test_choose_chart_refuses_questions_it_cannot_draw(measure, dimensions, facet):
    with pytest.raises(ValueError):
        explore.choose_chart(measure, dimensions, facet)


def test_every_shape_of_question_has_a_rule():
    for facet in (True, False):
        for n in (1, 2):
            for time_axes in range(n + 1):
                assert any(r.matches(facet, n, time_axes) for r in explore.CHART_RULES), (facet, n, time_axes)


# --- the aggregate on the hand fixture ----------------------------------------------------


def as_dict(frame: pd.DataFrame, key: str, column: str) -> dict:
    return dict(zip(frame[key], frame[column], strict=True))


def test_reports_by_shift_on_the_hand_fixture(engine, small):
    frame = explore.explore_frame(engine, small, Filters(), UNRESTRICTED, "reports", ("shift",))
    assert frame["shift"].tolist() == ["Early", "Late", "Night"]  # vocabulary order, not alphabetical
    assert as_dict(frame, "shift", "reports") == {"Early": 4, "Late": 3, "Night": 3}
    assert as_dict(frame, "shift", "value") == {"Early": 4.0, "Late": 3.0, "Night": 3.0}
    assert frame["enough"].all()  # a count needs no denominator


def test_officer_injury_rate_by_shift_on_the_hand_fixture(engine, small):
    frame = explore.explore_frame(engine, small, Filters(), UNRESTRICTED, "officer_injured", ("shift",))
    assert as_dict(frame, "shift", "yes") == {"Early": 1, "Late": 0, "Night": 2}
    assert as_dict(frame, "shift", "answered") == {"Early": 4, "Late": 3, "Night": 2}  # R05 did not answer
    assert as_dict(frame, "shift", "value") == pytest.approx({"Early": 0.25, "Late": 0.0, "Night": 1.0})
    assert (frame["low"] <= frame["value"]).all() and (frame["value"] <= frame["high"]).all()
    night = frame.set_index("shift").loc["Night"]
    assert night["high"] == 1.0 and 0 < night["low"] < 1
    assert not frame["enough"].any()  # every group rests on fewer than MIN_DENOMINATOR answers


def test_filters_and_two_dimensions_on_the_hand_fixture(engine, small):
    north = Filters(forces=("Northshire Police",))
    frame = explore.explore_frame(engine, small, north, UNRESTRICTED, "reports", ("officer_role", "shift"))
    cells = {(r.officer_role, r.shift): r.reports for r in frame.itertuples()}
    assert cells == {("Response", "Early"): 2, ("Response", "Night"): 1, ("Neighbourhood", "Late"): 1,
                     ("Custody", "Night"): 1}
    crewing = explore.explore_frame(engine, small, Filters(), UNRESTRICTED, "reports", ("single_crewed",))
    assert as_dict(crewing, "single_crewed", "reports") == {"Double crewed": 6, "Single crewed": 3, NOT_RECORDED: 1}
    assert crewing["single_crewed"].iloc[-1] == NOT_RECORDED  # unknown is shown, last


def test_a_facet_adds_a_column_and_keeps_the_counts(engine, small):
    frame = explore.explore_frame(engine, small, Filters(), UNRESTRICTED, "reports", ("shift",), "force")
    assert set(frame.columns) >= {"shift", "force", "reports", "value"}
    assert frame["reports"].sum() == 10
    north = frame[frame["force"] == "Northshire Police"]
    assert as_dict(north, "shift", "reports") == {"Early": 2, "Late": 1, "Night": 2}


@pytest.mark.parametrize("measure", ["reports", "officer_injured"])
def test_a_view_with_no_reports_gives_an_empty_frame_and_a_valid_chart(engine, small, measure):
    nothing = Filters(shifts=("Teatime",))
    for dimensions, facet in [(("shift",), None), (("month", "shift"), None), (("shift", "force"), None),
                              (("shift",), "force")]:
        frame = explore.explore_frame(engine, small, nothing, UNRESTRICTED, measure, dimensions, facet)
        assert frame.empty
        explore_charts.explore_chart(frame, measure, dimensions, facet).to_dict()


# --- the aggregate on synthetic data ------------------------------------------------------


@pytest.fixture(scope="module")
def planted():
    return synth.generate(30000, 4)


@pytest.fixture(scope="module")
def big(engine, planted):
    return engine.add("explore synthetic", planted.reports, planted.tactics, planted.officers, key="explore0000004")


@pytest.fixture(scope="module")
def raw(planted) -> pd.DataFrame:
    return planted.reports.to_pandas()


def test_counts_and_rates_match_the_rows_on_synthetic_data(engine, big, raw):
    frame = explore.explore_frame(engine, big, Filters(), UNRESTRICTED, "reports", ("shift",))
    assert as_dict(frame, "shift", "reports") == raw["shift"].astype(str).value_counts().to_dict()
    rates = explore.explore_frame(engine, big, Filters(), UNRESTRICTED, "officer_injured", ("officer_role",))
    for role, group in raw.groupby(raw["officer_role"].astype(str)):
        row = rates.set_index("officer_role").loc[role]
        assert row["yes"] == int(group["officer_injured"].sum())
        assert row["answered"] == int(group["officer_injured"].notna().sum())
        assert row["value"] == pytest.approx(row["yes"] / row["answered"])
        assert row["enough"] == (row["answered"] >= MIN_DENOMINATOR)


def test_filters_narrow_the_synthetic_counts(engine, big, raw):
    night = Filters(shifts=("Night",))
    frame = explore.explore_frame(engine, big, night, UNRESTRICTED, "reports", ("subject_gender",))
    genders = raw[raw["shift"] == "Night"]["subject_gender"].astype(object).fillna(NOT_RECORDED)
    expected = genders.value_counts().to_dict()
    assert as_dict(frame, "subject_gender", "reports") == expected


def test_teams_are_capped_with_the_rest_summed_into_other(engine, big, raw):
    frame = explore.explore_frame(engine, big, Filters(), UNRESTRICTED, "officer_injured", ("team",))
    cap = explore.CAPS_BY_KIND["bar"][0]
    named = frame[~frame["team"].map(explore.is_other) & (frame["team"] != NOT_RECORDED)]
    other = frame[frame["team"].map(explore.is_other)]
    assert len(named) == cap and len(other) == 1
    teams = raw["team"].dropna().astype(str).value_counts()
    assert other["team"].iloc[0] == f"Other ({teams.size - cap} groups)"
    # The largest teams are drawn; totals are conserved.
    assert named["reports"].min() >= teams.sort_values(ascending=False).iloc[cap]
    assert frame["reports"].sum() == len(raw)
    assert other["reports"].iloc[0] == teams.sum() - named["reports"].sum()
    injured = raw["officer_injured"]
    assert frame["yes"].sum() == int(injured.sum()) and frame["answered"].sum() == int(injured.notna().sum())
    assert as_dict(frame, "team", "reports")[NOT_RECORDED] == int(raw["team"].isna().sum())
    assert frame["team"].tolist()[-2:] == [other["team"].iloc[0], NOT_RECORDED]  # Other, then unknown, last
    assert "summed into “Other (" in explore_charts.caption(Filters(), "officer_injured", frame, ("team",))


@pytest.mark.parametrize(("measure", "dimensions", "facet"), [
    ("reports", ("team", "area"), None),
    ("officer_injured", ("team", "area"), "force"),
    ("officer_injured", ("month", "team"), "force"),
    ("reports", ("hour", "team"), "area"),
    ("subject_injured", ("area",), "team"),
])
def test_charts_never_receive_more_than_the_row_budget(engine, big, raw, measure, dimensions, facet):
    frame = explore.explore_frame(engine, big, Filters(), UNRESTRICTED, measure, dimensions, facet)
    assert 0 < len(frame) <= explore.MAX_ROWS
    assert frame["reports"].sum() == len(raw)  # merging groups never loses a report
    chart = explore_charts.explore_chart(frame, measure, dimensions, facet)
    assert max(len(rows) for rows in chart.to_dict()["datasets"].values()) <= len(frame)


def test_merging_is_skipped_when_it_would_save_nothing():
    frame = pd.DataFrame({"team": [f"T{i}" for i in range(26)], "reports": range(26, 0, -1)})
    assert explore.group_caps(frame, ("team",)) == {"team": 25}
    merged = explore._merge_smaller(frame, "team", 25)
    assert not merged["team"].map(explore.is_other).any()  # never "Other (1 groups)"


# --- from a click to a filter -------------------------------------------------------------


@pytest.mark.parametrize(("selection", "dimensions", "expected"), [
    ({"selection": {"pick": [{"shift": "Night"}]}}, ("shift",), Filters(shifts=("Night",))),
    ({"pick": [{"shift": "Night"}]}, ("shift",), Filters(shifts=("Night",))),  # the selection dict alone
    ({"selection": {"pick": [{"officer_role": "Response", "shift": "Late"}]}}, ("officer_role", "shift"),
     Filters(roles=("Response",), shifts=("Late",))),
    ({"selection": {"pick": [{"shift": "Early"}, {"shift": "Late"}]}}, ("shift",),
     Filters(shifts=("Early", "Late"))),  # shift-click picks several
    ({"selection": {"pick": [{"subject_age_band": "18-34", "force": "Kent Police"}]}}, ("subject_age_band",),
     Filters(age_bands=("18-34",))),  # only charted dimensions count
    ({"selection": {"pick": [{"force": "Kent Police", "month": 1704067200000}]}}, ("month", "force"),
     Filters(forces=("Kent Police",))),
    ({"selection": {"pick": [{"location_type": "Dwelling"}]}}, ("location_type",),
     Filters(location_types=("Dwelling",))),
])
def test_apply_selection_adds_the_clicked_values(selection, dimensions, expected):
    assert explore.apply_selection(Filters(), selection, dimensions) == expected


@pytest.mark.parametrize(("selection", "dimensions", "note"), [
    ({"selection": {"pick": [{"month": 1704067200000}]}}, ("month",), "set the dates in the sidebar"),
    ({"selection": {"pick": [{"hour": 3}]}}, ("hour",), "Hour of day is not one of the global filters"),
    ({"selection": {"pick": [{"weekday": "Monday"}]}}, ("weekday",), "Day of week is not one of the global filters"),
    ({"selection": {"pick": [{"team": "North Response A"}]}}, ("team",), "Team is not one of the global filters"),
    ({"selection": {"pick": [{"single_crewed": "Single crewed"}]}}, ("single_crewed",), "Crewing"),
    ({"selection": {"pick": [{"shift": NOT_RECORDED}]}}, ("shift",), "cannot be chosen in a filter"),
    ({"selection": {"pick": [{"area": "Other (12 groups)"}]}}, ("area",), "sums several groups"),
])
def test_clicks_that_cannot_filter_leave_the_filters_and_say_why(selection, dimensions, note):
    before = Filters(roles=("Custody",))
    assert explore.apply_selection(before, selection, dimensions) == before
    assert any(note in n for n in explore.picked(selection, dimensions).notes)


@pytest.mark.parametrize("selection", [None, {}, {"selection": {}}, {"selection": {"pick": []}},
                                       {"selection": {"pick": {}}}, {"selection": {"other": [{"shift": "Night"}]}}])
def test_no_click_changes_nothing(selection):
    assert explore.apply_selection(Filters(), selection, ("shift",)) == Filters()
    assert explore.picked(selection, ("shift",)) == explore.Pick()


def test_a_click_adds_to_existing_values_once():
    before = Filters(shifts=("Early",))
    after = explore.apply_selection(before, {"pick": [{"shift": "Night"}]}, ("shift",))
    assert after.shifts == ("Early", "Night")
    assert explore.apply_selection(after, {"pick": [{"shift": "Night"}]}, ("shift",)) == after


def test_filter_changes_are_what_the_sidebar_widgets_hold():
    before = Filters(shifts=("Early",))
    after = Filters(shifts=("Early", "Night"), roles=("Response",))
    assert explore.filter_changes(before, after) == {"shifts": ["Early", "Night"], "roles": ["Response"]}
    offered = {"shifts": ["Early", "Late"], "roles": ["Response"]}
    assert explore.filter_changes(before, after, offered) == {"shifts": ["Early"], "roles": ["Response"]}
    assert explore.filter_changes(before, before) == {}


def test_pick_sentence_names_the_filter():
    pick = explore.picked({"pick": [{"officer_role": "Response", "shift": "Night"}]}, ("officer_role", "shift"))
    assert explore.pick_sentence(pick) == "Response officers, Night shift"
    assert explore.pick_sentence(explore.Pick()) == ""


# --- chart builders -----------------------------------------------------------------------


def params(spec: dict) -> list[dict]:
    return [p for p in spec.get("params", []) if p.get("name") == "pick"]


@pytest.mark.parametrize("measure", ["reports", "officer_injured"])
@pytest.mark.parametrize(("dimensions", "facet", "fields"), [
    (("shift",), None, ["shift"]),
    (("month",), None, ["month"]),
    (("month", "officer_role"), None, ["officer_role"]),
    (("hour",), None, ["hour"]),
    (("officer_role", "shift"), None, ["officer_role", "shift"]),
    (("month", "hour"), None, ["month", "hour"]),
    (("shift",), "force", ["shift", "force"]),
    (("month", "shift"), "force", ["shift", "force"]),
    (("officer_role", "shift"), "area", ["officer_role", "shift", "area"]),
])
def test_builders_give_valid_specs_with_the_pick_selection(engine, small, measure, dimensions, facet, fields):
    frame = explore.explore_frame(engine, small, Filters(), UNRESTRICTED, measure, dimensions, facet)
    chart = explore_charts.explore_chart(frame, measure, dimensions, facet)
    spec = chart.to_dict()  # validates against the Vega-Lite schema
    (pick,) = params(spec)
    assert pick["select"]["type"] == "point" and pick["select"]["fields"] == fields
    assert "opacity" in json.dumps(spec) and '"param": "pick"' in json.dumps(spec)
    rows = [len(v) for v in spec["datasets"].values()]
    assert rows and max(rows) <= len(frame)
    assert spec["title"] == explore_charts.default_title(measure, dimensions, facet)
    text = json.dumps(spec)
    assert ("Reports (one officer, one subject)" in text) == (measure == "reports")
    if facet:
        assert spec["facet"]["field"] == facet


def test_rate_charts_draw_intervals_and_grey_out_thin_groups(engine, small):
    frame = explore.explore_frame(engine, small, Filters(), UNRESTRICTED, "officer_injured", ("shift",))
    text = json.dumps(explore_charts.measure_by_group(frame, "officer_injured", "shift").to_dict())
    assert '"x2": {"field": "high"' in text and explore_charts.TOO_FEW in text
    heat = explore.explore_frame(engine, small, Filters(), UNRESTRICTED, "officer_injured", ("officer_role", "shift"))
    text = json.dumps(explore_charts.measure_heatmap(heat, "officer_injured", ("officer_role", "shift")).to_dict())
    assert "#E5E5E5" in text  # grey cells
    line = explore.explore_frame(engine, small, Filters(), UNRESTRICTED, "officer_injured", ("month",))
    text = json.dumps(explore_charts.measure_over_time(line, "officer_injured", ("month",)).to_dict())
    assert '"y2": {"field": "high"' in text and '"area"' in text  # the interval band


def test_table_and_caption_read_like_prose(engine, small):
    frame = explore.explore_frame(engine, small, Filters(shifts=("Night",)), UNRESTRICTED, "officer_injured",
                                  ("month",))
    table = explore_charts.table(frame, "officer_injured", ("month",))
    assert list(table.columns) == ["Month", "Reports", "Officer injury: yes", "Reports answering",
                                   "Officer injury rate (%)", "95% from (%)", "95% to (%)",
                                   f"At least {MIN_DENOMINATOR} answering"]
    assert table["Month"].tolist() == ["Feb 2024", "Mar 2024"]
    text = explore_charts.caption(Filters(shifts=("Night",)), "officer_injured", frame, ("month",))
    assert text.startswith("Night shift. Counting unit: reports")
    assert list(explore_charts.table(frame, "reports", ("month",)).columns) == ["Month", "Reports"]


# --- the page -----------------------------------------------------------------------------




PAGE = "app_pages/explore.py"


def explore_page() -> AppTest:
    """Run the app and switch to the Explore page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    return at.switch_page(PAGE).run()


def chart_spec(at: AppTest) -> dict:
    (chart,) = at.get("vega_lite_chart")
    return json.loads(chart.proto.spec)


def test_explore_page_draws_a_chart_and_follows_its_widgets(fresh_caches):
    at = explore_page()
    assert not at.exception
    assert at.title[0].value == "Explore"
    spec = chart_spec(at)
    assert any(p.get("name") == "pick" for p in spec["params"])
    assert any("Counting unit: reports" in c.value for c in at.caption)
    assert len(at.expander) >= 1

    at.selectbox(key="explore_measure").set_value("reports").run()
    assert not at.exception and "Reports (one officer, one subject)" in json.dumps(chart_spec(at))

    at.multiselect(key="explore_dimensions").set_value(["month", "shift"]).run()
    assert not at.exception and chart_spec(at)["params"][0]["select"]["fields"] == ["shift"]

    at.selectbox(key="explore_facet").set_value("force").run()
    assert not at.exception and chart_spec(at)["facet"]["field"] == "force"

    at.multiselect(key="explore_dimensions").set_value(["force", "team"]).run()  # the facet is now charted
    assert not at.exception
    assert at.selectbox(key="explore_facet").value == "none"
    assert any("summed into" in c.value for c in at.caption)  # teams capped, and said so

    at.multiselect(key="explore_dimensions").set_value([]).run()
    assert not at.exception and not at.get("vega_lite_chart") and at.info


def test_explore_page_follows_the_global_filters(fresh_caches):
    at = explore_page()
    at.multiselect(key="flt_shifts").set_value(["Night"]).run()
    assert not at.exception
    assert any(c.value.startswith("1 Apr 2024 to 31 Mar 2025, Night shift") for c in at.caption)

