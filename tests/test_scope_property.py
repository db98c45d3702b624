"""A user scoped to one force receives exactly what that force's data alone would give, in every frame.

Metamorphic: each frame a page hands to a chart, table or export is computed twice, once over the whole
dataset with the user's scope, once over a dataset holding only that force's rows with no scope. They must
be equal; any row from another force would change a count, a group or an average.
"""
from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.analysis import explore, quality, risk, tactics
from lib.engine import query
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.engine.store import SAMPLE_DIR
from lib.model import schema


def exposure_frame(exposure: risk.Exposure) -> pd.DataFrame:
    """The verdict (officers, p-value) beside the listed officers, as one frame to compare."""
    verdict = pd.DataFrame([{"officers": exposure.officers, "p_value": exposure.heterogeneity.p_value,
                             "differ": exposure.differ, "shared": exposure.shared_incidents}])
    return verdict.merge(exposure.table, how="cross") if len(exposure.table) else verdict


PRODUCERS = {
    "summary": lambda e, ds, f, s: pd.DataFrame([{"reports": (m := query.summarise(e, ds, f, s)).reports,
                                                  "incidents": m.incidents, "officers": m.officers,
                                                  **{k: r.numerator for k, r in m.rates.items()}}]),
    "breakdown month": lambda e, ds, f, s: query.breakdown(e, ds, f, s, ("month",)),
    "breakdown role x shift": lambda e, ds, f, s: query.breakdown(e, ds, f, s, ("officer_role", "shift")),
    "breakdown area": lambda e, ds, f, s: query.breakdown(e, ds, f, s, ("area",)),
    "tactic counts": query.tactic_counts,
    "rate grid": lambda e, ds, f, s: risk.rate_grid(e, ds, f, s, "officer_injured", "officer_role", "shift"),
    "rate ratios": lambda e, ds, f, s: risk.rate_ratios(e, ds, f, s, "officer_injured", "officer_role",
                                                        "Neighbourhood"),
    "funnel team": lambda e, ds, f, s: risk.funnel(e, ds, f, s, "officer_injured", "team")[0],
    "funnel officer": lambda e, ds, f, s: risk.funnel(e, ds, f, s, "officer_injured", "officer")[0],
    "officer exposure": lambda e, ds, f, s: exposure_frame(risk.officer_exposure(e, ds, f, s, "officer_injured")),
    "use over time": tactics.use_over_time,
    "effectiveness": tactics.effectiveness,
    "harm when used": lambda e, ds, f, s: tactics.harm_when_used(e, ds, f, s, "tactic"),
    "co-occurrence": lambda e, ds, f, s: tactics.co_occurrence(e, ds, f, s, tactics.TOP_TACTICS),
    "taser ladder": tactics.taser_ladder,
    "explore by force": lambda e, ds, f, s: explore.explore_frame(e, ds, f, s, "officer_injured",
                                                                  ("officer_role",), "force"),
    "completeness": quality.completeness,
    "completeness by force": lambda e, ds, f, s: quality.completeness_by(e, ds, f, s, level="force"),
    "contradictions": quality.contradictions,
    "coverage": quality.coverage,
    "contradiction rows": lambda e, ds, f, s: e.execute(
        quality.contradiction_rows(e, ds, f, s, "officer_level_not_injured")),
}


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype) or out[col].dtype == object:
            out[col] = out[col].astype(str)
    keys = [c for c in out.columns if out[c].dtype == object or str(out[c].dtype).startswith(("str", "string"))]
    if keys:
        out = out.sort_values(keys, kind="stable")
    return out.reset_index(drop=True)


@pytest.fixture(scope="module")
def forces(engine):
    """The sample, and for a few forces a dataset holding only that force's rows."""
    reports = pq.read_table(SAMPLE_DIR / "reports.parquet")
    tactic_rows = pq.read_table(SAMPLE_DIR / "tactics.parquet")
    whole = engine.open(SAMPLE_DIR)
    alone = {}
    for force in ("Cumbria Constabulary", "Thames Valley Police", "Metropolitan Police"):
        mine = reports.filter(pc.equal(reports["force"].cast("string"), force))
        used = tactic_rows.filter(pc.is_in(tactic_rows["report_id"], value_set=mine["report_id"]))
        key = "scope_" + "".join(c if c.isalnum() else "_" for c in force[:12])
        alone[force] = engine.add(f"only {force}", mine, used, key=key)
    return whole, alone


filters_strategy = st.builds(
    lambda shifts, roles, start: Filters(date_from=start, date_to=None, shifts=tuple(shifts), roles=tuple(roles)),
    st.lists(st.sampled_from(schema.SHIFTS), unique=True, max_size=2),
    st.lists(st.sampled_from(schema.OFFICER_ROLES), unique=True, max_size=2),
    st.sampled_from([None, date(2024, 4, 1), date(2025, 1, 1)]),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(force=st.sampled_from(["Cumbria Constabulary", "Thames Valley Police", "Metropolitan Police"]),
       filters=filters_strategy)
@pytest.mark.slow
def test_a_scoped_user_gets_exactly_their_forces_numbers(engine, forces, force, filters):
    whole, alone = forces
    scope = Scope(forces=frozenset({force}))
    for name, produce in PRODUCERS.items():
        scoped = normalised(produce(engine, whole, filters, scope))
        own = normalised(produce(engine, alone[force], filters, UNRESTRICTED))
        pd.testing.assert_frame_equal(scoped, own, check_dtype=False, check_exact=False, rtol=1e-9,
                                      check_categorical=False, obj=f"{name} for {force}")
        if "force" in scoped:
            assert set(scoped["force"]) <= {force}, name


def test_filter_options_and_cached_results_never_cross_forces(fresh_caches):
    from lib.ui import cache

    whole = cache.engine().open(SAMPLE_DIR)  # the app's own engine, as the cached wrappers use it
    engine = cache.engine()
    north = Scope(forces=frozenset({"Cumbria Constabulary"}))
    south = Scope(forces=frozenset({"Thames Valley Police"}))
    assert query.filter_options(engine, whole, north)["forces"] == ["Cumbria Constabulary"]
    f = query.default_filters(whole)
    a = cache._breakdown(whole, f, north, ("month",))  # the cache is keyed on the scope
    b = cache._breakdown(whole, f, south, ("month",))
    assert a["reports"].sum() == query.summarise(engine, whole, f, north).reports
    assert b["reports"].sum() == query.summarise(engine, whole, f, south).reports != a["reports"].sum()


def test_a_team_scope_keeps_a_supervisor_to_their_teams(engine, forces):
    whole, _ = forces
    teams = frozenset(query.breakdown(engine, whole, query.default_filters(whole), UNRESTRICTED,
                                      ("team",))["team"].astype(str).head(2))
    points, _ = risk.funnel(engine, whole, query.default_filters(whole), Scope(teams=teams), "officer_injured",
                            "team")
    assert set(points["group"].astype(str)) <= teams
