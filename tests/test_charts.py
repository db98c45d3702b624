"""Chart builders: valid Vega-Lite, aggregates only, units and intervals named, thin groups grey."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from lib.engine import query
from lib.engine.query import UNRESTRICTED, Filters
from lib.present import charts


def _datasets(spec: dict) -> list[list[dict]]:
    return list(spec.get("datasets", {}).values())


def _reliability(spec: dict) -> list[str]:
    """Every 'is this rate readable' verdict in a chart's data, one per group and rate."""
    return [v for d in _datasets(spec) for r in d for k, v in r.items() if k.endswith("_reliable")]


@pytest.fixture(scope="module")
def frames(engine, small):
    return {
        "month": query.breakdown(engine, small, Filters(), UNRESTRICTED, ("month",)),
        "shift": query.breakdown(engine, small, Filters(), UNRESTRICTED, ("shift",)),
        "tactics": query.tactic_counts(engine, small, Filters(), UNRESTRICTED),
    }


def test_reports_by_month_names_its_counting_unit(frames):
    spec = charts.reports_by_month(frames["month"]).to_dict()
    assert "Reports (one officer, one subject)" in json.dumps(spec)
    assert sum(len(d) for d in _datasets(spec)) == 4  # four monthly aggregates, no raw rows


def test_rate_by_month_draws_the_interval(frames):
    text = json.dumps(charts.rate_by_month(frames["month"]).to_dict())
    assert "officer_injured_low" in text and "officer_injured_high" in text
    assert "95% interval" in text


def test_harm_rates_grey_out_thin_groups(frames):
    spec = charts.harm_rates_by_group(frames["shift"], "shift", "Shift").to_dict()
    verdicts = _reliability(spec)
    # Every shift in the hand fixture has fewer than 30 answers: all must be grey, none coloured.
    assert len(verdicts) == 2 * 3 and all(v.startswith("Under 30") for v in verdicts)
    # The colour of each rate panel is that verdict, grey for too few.
    colours = [lay["encoding"]["color"] for panel in spec["hconcat"][1:] for lay in panel["layer"]]
    assert {c["field"] for c in colours} == {"officer_injured_reliable", "officer_assaulted_reliable"}
    assert all(dict(zip(c["scale"]["domain"], c["scale"]["range"], strict=True))[verdicts[0]] == charts.MUTED
               for c in colours)


def test_harm_rates_colour_groups_with_enough_reports(engine):
    from lib.engine.store import SAMPLE_DIR
    ds = engine.open(SAMPLE_DIR)
    frame = query.breakdown(engine, ds, Filters(), UNRESTRICTED, ("shift",))
    spec = charts.harm_rates_by_group(frame, "shift", "Shift").to_dict()
    assert set(_reliability(spec)) == {"Enough reports"}
    assert max(len(d) for d in _datasets(spec)) == 3  # one row per shift


def test_most_used_tactics_colours_by_type_of_force(frames):
    spec = charts.most_used_tactics(frames["tactics"], top=3).to_dict()
    assert max(len(d) for d in _datasets(spec)) == 3
    colour = spec["encoding"]["color"]
    assert colour["scale"]["domain"][0] == "Restraint"
    assert colour["scale"]["range"][0] == charts.TACTIC_GROUP_COLOURS["Restraint"]


def test_harm_rates_read_nullable_counts_with_gaps(frames):
    # Counts can arrive as nullable integers (another engine, or a hidden cell): a gap is not a crash,
    # and a group with no answers is grey, never coloured as readable.
    frame = frames["shift"].copy()
    for m in ("officer_injured", "officer_assaulted"):
        frame[f"{m}_answered"] = frame[f"{m}_answered"].astype("Int64")
    frame.loc[0, "officer_injured_answered"] = pd.NA
    verdicts = _reliability(charts.harm_rates_by_group(frame, "shift", "Shift").to_dict())
    assert len(verdicts) == 2 * len(frame) and all(v.startswith("Under 30") for v in verdicts)


def _funnel_frames(expected: bool = False):
    import numpy as np

    from lib.analysis import risk, stats

    x, n = np.array([1, 2, 10, 50, 200] + [50] * 10), np.array([1, 20, 100, 1000, 1000] + [1000] * 10)
    model = n * 0.07 if expected else None
    verdicts = stats.judge_funnel(x, n, expected=model)
    table = verdicts.table
    points = pd.DataFrame({"group": list("ABCDEFGHIJKLMNO"), "yes": x, "answered": n, "rate": x / n,
                           "expected": table["expected"], "low": table["low"], "high": table["high"],
                           "flag": table["flag"], "p_value": table["p_value"], "q_value": table["q_value"],
                           "judged": table["judged"], "target": table["target"],
                           "basis": "expected" if expected else "crude"})
    if expected:
        points = points.assign(model_expected=model, ratio=table["rate"])
    limits = risk.funnel_curves(verdicts, np.geomspace(1, 1000, 20), "expected" if expected else "crude")
    return points, limits


def test_funnel_draws_small_groups_hollow_and_grey_never_coloured_by_a_verdict():
    from lib.present import tables

    points, limits = _funnel_frames()
    spec = charts.funnel_plot(points, limits, "team", "Officer injury rate").to_dict()
    layers = spec["layer"]
    few = next(lay for lay in layers if lay["mark"].get("filled") is False)
    assert few["mark"]["color"] == charts.FAINT and "color" not in few.get("encoding", {})
    rows = {d["group"]: d for data in _datasets(spec) for d in data if "group" in d}
    assert set(rows) == set("ABCDEFGHIJKLMNO")
    assert rows["A"]["flag"] == rows["B"]["flag"] == "too few to judge"  # 1 of 1 and 2 of 20: shown, not judged
    assert rows["E"]["flag"] == "higher than expected"
    assert "Reports answering per team (volume)" in json.dumps(spec)
    table = tables.funnel_table(points, "team")
    assert list(table["Verdict"][:2]) == ["too few to judge"] * 2
    assert pd.isna(table["One-sided mid-p"].iloc[0]) and table["One-sided mid-p"].iloc[4] == "< 0.0001"


def test_funnel_against_expected_counts_draws_observed_over_expected():
    points, limits = _funnel_frames(expected=True)
    text = json.dumps(charts.funnel_plot(points, limits, "team", "Officer injury rate").to_dict())
    assert "observed / expected (reports)" in text and "model_expected" in text


@pytest.mark.parametrize("expected", [False, True])
def test_funnel_axis_stops_above_the_highest_judged_group_not_at_the_tiniest_groups_limit(expected):
    points, limits = _funnel_frames(expected=expected)
    # Limits drawn down to tiny volumes (an expected count of 0.01 has an upper O / E limit in the hundreds).
    limits = pd.concat([limits.iloc[:1].assign(denominator=0.01, high_998=300.0, high_95=150.0), limits])
    spec = charts.funnel_plot(points, limits, "team", "Officer injury rate").to_dict()
    domain = spec["layer"][0]["encoding"]["y"]["scale"]["domain"]
    y = points["ratio" if expected else "rate"]
    judged = points["judged"].astype(bool)
    ceiling = max(y[judged].max(), 2 * limits["overall"].iloc[0]) * 1.1
    assert domain == [0, min(ceiling, 1.0) if not expected else pytest.approx(ceiling)]
    assert (y[judged] <= domain[1]).all()  # every judged group is on the chart
    assert spec["layer"][0]["mark"]["clip"] is True  # the limit lines are cut at the ceiling
    # Small groups above the ceiling (1 of 1 is a rate of 100%) are cut too, and the chart says how many.
    above = int((y[~judged] > domain[1]).sum())
    assert above >= 1
    verb = "lie" if above != 1 else "lies"
    assert spec["title"]["text"].startswith(f"{above} team{'s' if above != 1 else ''} too small to judge {verb}")
