"""Tests for lib/privacy/disclosure.py: small counts hidden, hidden cells not recoverable, every kind safe to draw."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date

import altair as alt
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from lib.analysis import debriefs, explore, quality, risk, tactics, training
from lib.engine import query
from lib.engine.query import UNRESTRICTED, Rate, Summary
from lib.engine.store import SAMPLE_DIR, Engine
from lib.ingest import debriefs as debrief_files
from lib.present import charts, explore_charts, tables, tactic_charts, wording
from lib.privacy import disclosure
from lib.privacy.disclosure import Count, DisclosureError, Spec

T = disclosure.DEFAULT_THRESHOLD
ONE_WAY = Spec((Count("reports"),), keys=("g",))
TWO_WAY = Spec((Count("reports"),), keys=("r", "c"))


def is_small(value: object, threshold: int = T) -> bool:
    return value is not None and not pd.isna(value) and 1 <= float(value) < threshold


# --- feasible ranges of hidden cells, by linear programming ---------------------------------


def feasible_ranges(true: np.ndarray, hidden: np.ndarray) -> list[tuple[float, float]]:
    """Min and max of each hidden cell: cells >= 0, row, column and grand totals fixed, published cells fixed."""
    n_rows, n_cols = true.shape
    a, b = [], []
    for i in range(n_rows):
        row = np.zeros(true.shape)
        row[i, :] = 1
        a.append(row.ravel())
        b.append(true[i].sum())
    for j in range(n_cols):
        col = np.zeros(true.shape)
        col[:, j] = 1
        a.append(col.ravel())
        b.append(true[:, j].sum())
    a.append(np.ones(true.size))
    b.append(true.sum())
    bounds = [(0, None) if h else (v, v) for v, h in zip(true.ravel(), hidden.ravel(), strict=True)]
    out = []
    for k in np.flatnonzero(hidden.ravel()):
        c = np.zeros(true.size)
        c[k] = 1
        low = linprog(c, A_eq=np.array(a), b_eq=np.array(b), bounds=bounds, method="highs")
        high = linprog(-c, A_eq=np.array(a), b_eq=np.array(b), bounds=bounds, method="highs")
        assert low.status == 0 and high.status == 0
        out.append((low.fun, -high.fun))
    return out


def two_way_frame(cells: list[list[int]]) -> pd.DataFrame:
    return pd.DataFrame([{"r": f"r{i}", "c": f"c{j}", "reports": v}
                         for i, row in enumerate(cells) for j, v in enumerate(row)])


small_or_any = st.one_of(st.integers(0, 12), st.integers(0, 60))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(small_or_any, min_size=2, max_size=12), threshold=st.integers(2, 12))
def test_one_way_publishes_no_small_count_and_no_hidden_cell_is_derivable(values: list[int], threshold: int) -> None:
    assume(sum(values) > 0)
    frame = pd.DataFrame({"g": [f"g{i}" for i in range(len(values))], "reports": values})
    out = disclosure.protect_frame(frame, ONE_WAY, threshold)
    hidden = out["reports"].isna().to_numpy()
    assert not any(is_small(v, threshold) for v in out["reports"])
    assert all(hidden[i] for i, v in enumerate(values) if 1 <= v < threshold)
    assert (out["suppressed"].to_numpy() == hidden).all()
    if hidden.any():  # the total is published: each hidden cell ranges over [0, sum of the hidden cells]
        assert hidden.sum() >= 2
        s = float(np.array(values)[hidden].sum())
        for k in np.flatnonzero(hidden):
            c = np.zeros(int(hidden.sum()))
            c[list(np.flatnonzero(hidden)).index(k)] = 1
            a = np.ones((1, int(hidden.sum())))
            low = linprog(c, A_eq=a, b_eq=[s], bounds=(0, None), method="highs").fun
            high = -linprog(-c, A_eq=a, b_eq=[s], bounds=(0, None), method="highs").fun
            assert low < high


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.tuples(st.integers(2, 5), st.integers(2, 5)), data=st.data(), threshold=st.integers(2, 12))
def test_two_way_publishes_no_small_count_and_no_hidden_cell_is_derivable(shape, data, threshold: int) -> None:
    rows, cols = shape
    cells = data.draw(st.lists(st.lists(small_or_any, min_size=cols, max_size=cols), min_size=rows, max_size=rows))
    true = np.array(cells, dtype=float)
    # A line of zeros pins every cell in it to 0, and then a lone cell beside it to its margin: no
    # suppression pattern can protect that, so the property is stated for tables without one.
    assume((true.sum(axis=0) > 0).all() and (true.sum(axis=1) > 0).all())
    out = disclosure.protect_frame(two_way_frame(cells), TWO_WAY, threshold)
    hidden = out["reports"].isna().to_numpy().reshape(rows, cols)
    assert not any(is_small(v, threshold) for v in out["reports"])
    assert hidden[(true >= 1) & (true < threshold)].all()
    for line in (*hidden, *hidden.T):
        assert line.sum() != 1
    for low, high in feasible_ranges(true, hidden):
        assert low < high - 1e-7


# --- hand-worked examples --------------------------------------------------------------------


@pytest.mark.parametrize("values, hidden", [
    ([20, 3, 15, 40], [False, True, True, False]),   # 3 is small; 15 is the smallest other cell
    ([0, 5, 30], [False, True, True]),               # zero is shown; a non-zero cell is preferred
    ([5, 0, 0], [True, True, False]),                # only zeros left: one of them goes
    ([12, 0, 30], [False, False, False]),            # nothing small, nothing hidden
    ([2, 4, 50], [True, True, False]),               # two small cells protect each other
])
def test_one_way_by_hand(values: list[int], hidden: list[bool]) -> None:
    frame = pd.DataFrame({"g": list("abc" if len(values) == 3 else "abcd"), "reports": values})
    out = disclosure.protect_frame(frame, ONE_WAY, 10)
    assert out["reports"].isna().tolist() == hidden
    assert out["suppressed"].tolist() == hidden
    assert [v for v, h in zip(out["reports"], hidden, strict=True) if not h] == \
        [v for v, h in zip(values, hidden, strict=True) if not h]


def test_two_way_by_hand() -> None:
    out = disclosure.protect_frame(two_way_frame([[20, 3, 25], [30, 40, 50]]), TWO_WAY, 10)
    hidden = out["reports"].isna().to_numpy().reshape(2, 3)
    # 3 is small; 20 hides beside it in its row; 30 and 40 in their columns; row 2 then holds two.
    assert hidden.tolist() == [[True, True, False], [True, True, False]]
    assert out.loc[~out["suppressed"], "reports"].tolist() == [25, 50]


def test_two_way_audit_hides_a_cell_the_margins_pin_down() -> None:
    # Rows and columns each hold two hidden cells after the line rule, but the 2x2 block of small cells
    # is joined to the rest by one cell only, which the margins would then fix: the audit hides more.
    cells = [[2, 3, 0, 50], [4, 5, 60, 0], [0, 70, 80, 90], [50, 0, 90, 80]]
    out = disclosure.protect_frame(two_way_frame(cells), TWO_WAY, 10)
    hidden = out["reports"].isna().to_numpy().reshape(4, 4)
    for low, high in feasible_ranges(np.array(cells, dtype=float), hidden):
        assert low < high


def test_rates_and_derived_columns_hide_with_their_counts() -> None:
    frame = query.add_rates(pd.DataFrame({
        "shift": ["Early", "Late", "Night"], "reports": [40, 50, 60],
        "officer_injured_yes": [4, 12, 15], "officer_injured_answered": [30, 45, 50],
        "officer_assaulted_yes": [0, 10, 11], "officer_assaulted_answered": [8, 45, 50],
        "subject_injured_yes": [10, 10, 10], "subject_injured_answered": [40, 50, 60],
    }))
    out = disclosure.protect(query.breakdown, frame, 10)
    # officer injured: 4 is small, 12 is the smallest other: both rates and intervals hidden.
    assert out["officer_injured_yes"].isna().tolist() == [True, True, False]
    for col in ("officer_injured_rate", "officer_injured_low", "officer_injured_high"):
        assert out[col].isna().tolist() == [True, True, False]
    # officer assaulted: the denominator 8 is small, so its numerator (0) goes too; 45 hides beside 8.
    assert out["officer_assaulted_answered"].isna().tolist() == [True, True, False]
    assert out["officer_assaulted_yes"].isna().tolist()[:2] == [True, True]
    assert out["officer_assaulted_rate"].isna().tolist() == out["officer_assaulted_yes"].isna().tolist()
    assert out["reports"].tolist() == [40, 50, 60]
    assert out["subject_injured_rate"].notna().all()
    assert out["suppressed"].tolist() == [True, True, False]
    assert disclosure.note(out) is not None and "hidden" in disclosure.note(out)


def test_nothing_small_changes_nothing_and_has_no_note() -> None:
    frame = pd.DataFrame({"g": ["a", "b"], "reports": [10, 0]})
    out = disclosure.protect_frame(frame, ONE_WAY, 10)
    assert out["reports"].tolist() == [10, 0]
    assert not out["suppressed"].any()
    assert disclosure.note(out) is None


def test_unknown_and_row_level_kinds_are_refused() -> None:
    with pytest.raises(DisclosureError):
        disclosure.protect(query.filter_options, pd.DataFrame(), 10)
    for kind in disclosure.ROW_LEVEL:
        assert not disclosure.row_level_allowed(kind)
        with pytest.raises(DisclosureError):
            disclosure.protect(kind, pd.DataFrame(), 10)
    assert disclosure.row_level_allowed(query.breakdown)


def test_threshold_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(disclosure.THRESHOLD_ENV, raising=False)
    assert disclosure.threshold_from_env() == 10
    monkeypatch.setenv(disclosure.THRESHOLD_ENV, "5")
    assert disclosure.threshold_from_env() == 5
    for bad in ("1", "ten", "2.5"):
        monkeypatch.setenv(disclosure.THRESHOLD_ENV, bad)
        with pytest.raises(ValueError, match=disclosure.THRESHOLD_ENV):
            disclosure.threshold_from_env()
    with pytest.raises(ValueError):
        disclosure.protect(query.breakdown, pd.DataFrame(), 1)


def test_summary_hides_small_counts_and_rates_on_them() -> None:
    summary = Summary(120, 80, 9, {
        "officer_injured": Rate("Officer injury rate", 4, 100, 20),
        "officer_assaulted": Rate("Officer assault rate", 30, 100, 20),
        "subject_injured": Rate("Subject injury rate", 0, 5, 115),
    })
    out = disclosure.protect_summary(summary, 10)
    assert (out.reports, out.incidents, out.officers) == (120, 80, None)
    assert out.rates["officer_injured"].numerator is None and np.isnan(out.rates["officer_injured"].rate)
    assert out.rates["officer_assaulted"].rate == pytest.approx(0.3)
    assert out.rates["subject_injured"].denominator is None and out.rates["subject_injured"].numerator is None
    assert wording.rate_value(out.rates["officer_injured"]) == "suppressed (<10)"
    assert "suppressed (<10)" in wording.rate_detail(out.rates["officer_injured"])
    assert "suppressed (<10)" in wording.rate_detail(out.rates["subject_injured"])
    assert wording.count(out.officers) == "suppressed (<10)" and wording.count(out.reports) == "120"
    assert wording.rate_change(out.rates["officer_injured"], summary.rates["officer_injured"]) is None
    assert wording.count_change(out.officers, 20) is None
    assert wording.unavailable(out) == []
    assert tactics.injury_measures(out) == ("officer_injured", "subject_injured")
    tiny = disclosure.protect_summary(Summary(5, 5, 2, {"officer_injured": Rate("x", 1, 5, 0)}), 10)
    assert tiny.reports is None and tiny.rates["officer_injured"].denominator is None
    assert "Too few reports" in wording.period_phrase(query.Filters(date(2024, 1, 1), date(2024, 1, 31)), tiny)


def test_training_effects_hide_small_counts_and_the_estimate() -> None:
    result = {"measure": "reports", "estimate": -0.1, "ci_low": -0.2, "ci_high": 0.0, "method": "m",
              "officers_trained": 6, "officers_comparison": 40, "events": 300,
              "rates": {"trained_before": {"events": 3, "shifts": 100.0, "rate": 30.0},
                        "trained_after": {"events": 50, "shifts": 900.0, "rate": 55.0},
                        "never_trained": {"events": 247, "shifts": 5000.0, "rate": 49.4}}}
    out = disclosure.protect(training.effects, {"reports": result}, 10)["reports"]
    assert out["officers_trained"] is None and out["estimate"] is None and out["suppressed"]
    assert out["rates"]["trained_before"]["events"] is None and out["rates"]["trained_after"]["rate"] is None
    assert out["rates"]["never_trained"]["events"] == 247
    assert training.reading(out).startswith("Too few officers")


def test_staggered_training_effect_hides_what_rests_on_small_counts() -> None:
    result = {"measure": "reports", "estimate": -0.1, "ci_low": -0.2, "ci_high": -0.01, "method": "m",
              "officers_trained": 6, "officers_comparison": 40, "events": 300, "observed_events": 120,
              "expected_events": 133.3, "minimum_detectable_effect": 0.09, "pre_trend_p": 0.4, "verdict": "fell",
              "twfe": {"estimate": -0.08, "ci_low": -0.15, "ci_high": -0.01}, "rates": {}}
    out = disclosure.protect(training.effects, {"reports": result}, 10)["reports"]
    assert out["estimate"] is None and out["minimum_detectable_effect"] is None and out["expected_events"] is None
    assert out["twfe"] == {"estimate": None, "ci_low": None, "ci_high": None}
    assert out["verdict"] == "too_few" and training.verdict_label(out) == "Too few officers to tell"
    assert training.detectable_reading(out).startswith("Too few officers")


# --- every kind, on real producers ---------------------------------------------------------


def chart_records(chart: alt.TopLevelMixin) -> list[dict]:
    spec = chart.to_dict()
    records = [r for rows in spec.get("datasets", {}).values() for r in rows]
    if isinstance(spec.get("data"), dict) and "values" in spec["data"]:
        records += spec["data"]["values"]
    return records


COUNT_WORDS = re.compile(r"\((\d[\d,]*)\)")


def assert_safe(protected: pd.DataFrame, kind: Callable, *outputs: object, threshold: int = T) -> None:
    """No count column of the protected frame, nor of any chart's data or table, holds a small count."""
    counts = {c.name for c in disclosure.SPECS[kind].counts} | {"other_reports"}
    for c in counts & set(protected.columns):
        assert not any(is_small(v, threshold) for v in protected[c]), (kind, c)
    for out in outputs:
        if isinstance(out, pd.DataFrame):  # built without error; hidden_values_stay_blank checks cells
            continue
        if isinstance(out, str):
            assert not any(is_small(int(m.replace(",", "")), threshold) for m in COUNT_WORDS.findall(out)), out
            continue
        records = chart_records(out)
        for record in records:
            for key, value in record.items():
                if key in counts:
                    assert not is_small(value, threshold), (kind, key, record)
                if isinstance(value, str):
                    for m in COUNT_WORDS.findall(value):
                        assert not is_small(int(m.replace(",", "")), threshold), (kind, key, value)


def hidden_values_stay_blank(protected: pd.DataFrame, table: pd.DataFrame, pairs: dict[str, str]) -> None:
    """A table shows a hidden count as blank, never as 0 or a number."""
    for source, heading in pairs.items():
        shown = table[heading].reset_index(drop=True)
        hidden = protected[source].isna().reset_index(drop=True)
        assert shown[hidden.to_numpy()].isna().all(), heading


@pytest.fixture(scope="module")
def sample_engine() -> tuple[Engine, object]:
    e = Engine()
    return e, e.open(str(SAMPLE_DIR))


def narrow_filters(ds) -> list[query.Filters]:
    base = query.default_filters(ds)
    return [base, replace(base, roles=("Dog handler",)), replace(base, forces=("Kent Police",), shifts=("Night",))]


@pytest.fixture(scope="module")
def views(sample_engine, engine, small) -> list[tuple[Engine, object, query.Filters]]:
    e, ds = sample_engine
    return [(e, ds, f) for f in narrow_filters(ds)] + [(engine, small, query.Filters())]


def run_views(views, kind: Callable, produce, draw) -> int:
    hidden = 0
    for e, ds, f in views:
        raw = produce(e, ds, f)
        protected = disclosure.protect(kind, raw, T)
        frame = protected[0] if isinstance(protected, tuple) else protected
        assert disclosure.SUPPRESSED in frame.columns
        hidden += int(frame[disclosure.SUPPRESSED].sum())
        assert_safe(frame, kind, *draw(protected, raw))
    return hidden


def test_breakdown(views) -> None:
    def draw(p, raw):
        out = [charts.reports_by_month(p) if "month" in p else charts.harm_rates_by_group(p, "shift", "Shift")]
        table = tables.rates_table(p, tuple(c for c in ("month", "shift") if c in p))
        hidden_values_stay_blank(p, table, {"reports": "Reports", "officer_injured_yes": "Officer injury rate: yes"})
        if "month" in p:
            out.append(charts.rate_by_month(p, "officer_injured"))
        return [*out, table]

    assert run_views(views, query.breakdown,
                     lambda e, ds, f: query.breakdown(e, ds, f, UNRESTRICTED, ("shift",)), draw) > 0
    run_views(views, query.breakdown, lambda e, ds, f: query.breakdown(e, ds, f, UNRESTRICTED, ("month",)), draw)


def test_tactic_counts(views) -> None:
    def draw(p, raw):
        return [charts.most_used_tactics(p), tables.tactics_table(p)]
    assert run_views(views, query.tactic_counts,
                     lambda e, ds, f: query.tactic_counts(e, ds, f, UNRESTRICTED), draw) > 0


def test_rate_grid(views) -> None:
    def draw(p, raw):
        rows, cols = p.columns[0], p.columns[1]
        table = tables.grid_table(p, rows, cols)
        hidden_values_stay_blank(p, table, {"yes": "Yes", "answered": "Answered", "reports": "Reports"})
        return [charts.rate_heatmap(p, rows, cols, "Rows", "Cols", "Officer injury"), table]
    for rows, cols in (("officer_role", "shift"), ("weekday", "hour")):
        assert run_views(views, risk.rate_grid, lambda e, ds, f, r=rows, c=cols: risk.rate_grid(
            e, ds, f, UNRESTRICTED, "officer_injured", r, c), draw) > 0


def test_rate_ratios(views) -> None:
    def draw(p, raw):
        hidden_ref = p["reference_yes"].isna() | p["reference_answered"].isna()
        assert p.loc[hidden_ref | p["yes"].isna(), "ratio"].isna().all()
        return [charts.forest_plot(p, "Officer injury rate"), tables.ratios_table(p)]
    for dimension in ("shift", "officer_role", "tactic_group"):
        run_views(views, risk.rate_ratios, lambda e, ds, f, d=dimension: risk.rate_ratios(
            e, ds, f, UNRESTRICTED, "officer_injured", d), draw)
    # Adjusted ratios and per-tactic ratios pass the same gate: their counts are the crude ones.
    for dimension in ("shift", "tactic"):
        run_views(views, risk.rate_ratios, lambda e, ds, f, d=dimension: risk.rate_ratios(
            e, ds, f, UNRESTRICTED, "officer_injured", d, None, ("officer_role", "resistance")), draw)


def test_funnel(views) -> None:
    def draw(protected, raw):
        points, limits = protected
        assert limits["denominator"].min() == 1  # the grid no longer starts at the smallest group's volume
        assert risk.outliers(points)["rate"].notna().all()
        # A group's target leaves it out of the pooled rate: with its p- and q-values it would give its counts away.
        assert points.loc[points["yes"].isna(), ["p_value", "q_value", "target", "expected"]].isna().all().all()
        sentence = risk.funnel_sentence(points, "team")
        if points["flag"].isna().any():
            assert "not shown" in sentence
        return [charts.funnel_plot(points, limits, "team", "Officer injury rate"), tables.funnel_table(points, "team"),
                sentence]
    for level in ("team", "area", "officer"):
        run_views(views, risk.funnel, lambda e, ds, f, lv=level: risk.funnel(
            e, ds, f, UNRESTRICTED, "officer_injured", lv), draw)


def test_officer_exposure(views) -> None:
    # The result is a verdict with the list (empty when officers do not differ beyond chance): the list is
    # protected like a frame, the officer count like a headline count.
    hidden = 0
    for e, ds, f in views:
        raw = risk.officer_exposure(e, ds, f, UNRESTRICTED, "officer_injured")
        p = disclosure.protect(risk.officer_exposure, raw, T)
        assert disclosure.SUPPRESSED in p.table.columns
        assert p.officers == disclosure.protect_count(raw.officers, T) == p.heterogeneity.groups
        table = tables.exposure_table(p.table, "officer_injured")
        if len(p.table):
            gone = p.table["officer_injured_yes"].isna().to_numpy()
            assert table.loc[gone, "Rank"].isna().all() and table.loc[gone, "Shrunken rate (%)"].isna().all()
            assert p.table.loc[p.table["shared_yes"].isna(), "shared_ratio"].isna().all()
        hidden += int(p.table[disclosure.SUPPRESSED].sum())
        assert_safe(p.table, risk.officer_exposure, table, risk.exposure_verdict(p))
    assert hidden > 0


def test_use_over_time(views) -> None:
    def draw(p, raw):
        return [tactic_charts.tactic_use_by_month(p), tactic_charts.tactic_use_by_month(p, measure="share"),
                tactic_charts.use_over_time_table(p)]
    assert run_views(views, tactics.use_over_time,
                     lambda e, ds, f: tactics.use_over_time(e, ds, f, UNRESTRICTED), draw) > 0


def test_effectiveness(views) -> None:
    def draw(p, raw):
        table = tactic_charts.effectiveness_table(p)
        hidden_values_stay_blank(p, table, {"effective_yes": "Recorded effective", "uses": "Uses"})
        return [tactic_charts.effectiveness_by_tactic(p), table]
    assert run_views(views, tactics.effectiveness,
                     lambda e, ds, f: tactics.effectiveness(e, ds, f, UNRESTRICTED), draw) > 0


def test_harm_when_used(views) -> None:
    def draw(p, raw):
        label = "Type of force" if p["tactic"].equals(p["tactic_group"]) else "Tactic"
        return [tactic_charts.injury_rate_when_used(p, label=label), tactic_charts.harm_table(p, label=label)]
    for by in ("tactic", "tactic_group"):
        assert run_views(views, tactics.harm_when_used, lambda e, ds, f, b=by: tactics.harm_when_used(
            e, ds, f, UNRESTRICTED, b), draw) > 0


def test_co_occurrence(views) -> None:
    def draw(p, raw):
        both = p.pivot(index="tactic", columns="other", values="both")
        assert (both.isna().to_numpy() == both.isna().to_numpy().T).all()  # symmetric: no cell by its mirror
        hidden_totals = set(p.loc[p["tactic_reports"].isna(), "tactic"])
        assert p.loc[p["other"].isin(hidden_totals), "other_reports"].isna().all()
        out = [tactic_charts.co_occurrence_table(p)]
        if p["tactic"].nunique() >= 2:
            out.append(tactic_charts.tactic_co_occurrence(p))
        return out
    assert run_views(views, tactics.co_occurrence,
                     lambda e, ds, f: tactics.co_occurrence(e, ds, f, UNRESTRICTED), draw) > 0


def test_taser_ladder(views) -> None:
    def draw(p, raw):
        hidden = np.flatnonzero(p["reports"].isna().to_numpy())
        if hidden.size:  # 'at least' from the top hidden level down would give that level away
            assert p["at_least"].iloc[: hidden.max() + 1].isna().all()
        return [tactic_charts.taser_ladder_shares(p), tactic_charts.ladder_table(p), tactic_charts.ladder_sentence(p)]
    assert run_views(views, tactics.taser_ladder,
                     lambda e, ds, f: tactics.taser_ladder(e, ds, f, UNRESTRICTED), draw) > 0


@pytest.mark.parametrize("measure, dimensions, facet", [
    ("reports", ("officer_role",), None), ("officer_injured", ("shift",), None),
    ("officer_injured", ("month",), None), ("reports", ("month", "shift"), None),
    ("officer_injured", ("officer_role", "shift"), None), ("reports", ("weekday", "hour"), None),
    ("officer_injured", ("shift",), "officer_role"), ("reports", ("month",), "shift"),
    ("officer_assaulted", ("team", "shift"), "force"),
])
def test_explore_frame(views, measure: str, dimensions: tuple[str, ...], facet: str | None) -> None:
    def draw(p, raw):
        table = explore_charts.table(p, measure, dimensions, facet)
        hidden_values_stay_blank(p, table, {"reports": "Reports"})
        return [explore_charts.explore_chart(p, measure, dimensions, facet), table,
                explore_charts.caption(query.Filters(), measure, p, dimensions, facet)]
    run_views(views, explore.explore_frame, lambda e, ds, f: explore.explore_frame(
        e, ds, f, UNRESTRICTED, measure, dimensions, facet), draw)


def test_quality_kinds(views) -> None:
    def completeness(p, raw):
        return [charts.completeness_by_field(p), tables.completeness_rows(p)]

    def by(p, raw):
        table = tables.completeness_by_table(p)
        assert not {"suppressed (%)", "suppressed", "Suppressed"} & set(table.columns)
        hidden = p["reports"].isna().to_numpy()
        assert table.loc[hidden].drop(columns=[c for c in ("Force", "Area") if c in table]).isna().all().all()
        return [table]

    def coverage(p, raw):
        return [charts.monthly_coverage(p), tables.coverage_sentence(p, p.tail(0))] if len(p) else []

    run_views(views, quality.completeness, lambda e, ds, f: quality.completeness(e, ds, f, UNRESTRICTED),
              completeness)
    for level in ("force", "area"):
        run_views(views, quality.completeness_by, lambda e, ds, f, lv=level: quality.completeness_by(
            e, ds, f, UNRESTRICTED, lv), by)
    run_views(views, quality.invalid_codes, lambda e, ds, f: quality.invalid_codes(e, ds, f, UNRESTRICTED),
              lambda p, raw: [tables.invalid_codes_table(p)])
    run_views(views, quality.contradictions, lambda e, ds, f: quality.contradictions(e, ds, f, UNRESTRICTED),
              lambda p, raw: [tables.contradictions_table(p)])
    run_views(views, quality.coverage, lambda e, ds, f: quality.coverage(e, ds, f, UNRESTRICTED), coverage)
    run_views(views, quality.late_recorded, lambda e, ds, f: quality.late_recorded(e, ds, f, UNRESTRICTED),
              lambda p, raw: [])


def test_coverage_hides_thin_months_and_their_dates(engine, small) -> None:
    raw = quality.coverage(engine, small, query.Filters(), UNRESTRICTED)
    p = disclosure.protect(quality.coverage, raw, 10)
    assert p["reports"].isna().all() and p["first"].isna().all() and p["gap"].isna().all()
    assert "hidden" in tables.coverage_sentence(p, p.tail(0))
    charts.monthly_coverage(p).to_dict()


@pytest.fixture(scope="module")
def roster() -> dict[str, pd.DataFrame]:
    return {kind: pd.read_parquet(SAMPLE_DIR / f"{kind}.parquet") for kind in ("officers", "training", "exposure")}


def test_training_kinds(sample_engine, roster) -> None:
    e, ds = sample_engine
    per_officer = training.compliance(roster["training"], roster["officers"], ds.last.date())
    small_teams = per_officer[per_officer["team"].isin(per_officer["team"].drop_duplicates().head(12))]
    for frame, group in ((per_officer, "officer_role"), (per_officer, "team"), (small_teams, "team")):
        raw = training.with_intervals(training.summarise_compliance(frame, by=(group,)))
        p = disclosure.protect(training.summarise_compliance, raw, T)
        assert_safe(p, training.summarise_compliance,
                    charts.compliance_by_group(p, group, group), tables.compliance_table(p, group))
    f = replace(query.default_filters(ds), roles=("Dog handler",))
    counts = training.officer_month_counts(e, ds, f, UNRESTRICTED)
    panel = training.panel_from_counts(counts, roster["exposure"], roster["officers"])
    study = disclosure.protect(training.event_study, training.event_study(panel), T)
    assert study["suppressed"].any()
    assert study.loc[study["events"].isna() | study["officers"].isna(), "estimate"].isna().all()
    assert_safe(study, training.event_study, charts.training_event_study(study, "use of force"),
                tables.event_study_table(study))
    raw, raw_profile = training.effects_and_profile(panel)
    profile = disclosure.protect(training.event_profile, raw_profile, T)
    assert profile.loc[profile["events"].isna() | profile["officers"].isna(), "estimate"].isna().all()
    assert_safe(profile, training.event_profile, charts.training_event_study(profile, "use of force"),
                tables.event_study_table(profile))
    found = disclosure.protect(training.effects, raw, T)
    for result in found.values():
        assert not is_small(result["officers_trained"]) and not is_small(result["events"])
        assert not is_small(result["observed_events"])
        training.reading(result)
        training.pre_trend_reading(result)
        training.detectable_reading(result)


def test_debrief_factor_table(sample_engine) -> None:
    e, ds = sample_engine
    f = replace(query.default_filters(ds), forces=("Kent Police",))
    reports = e.execute(query.filtered_reports(e, ds, f, UNRESTRICTED).select(
        "report_id", "occurred_at", "officer_injured", "officer_assaulted"))
    raw = debriefs.synthesise(reports, seed=3).to_csv(index=False).encode()
    records = debrief_files.read("debriefs.csv", raw).records
    factors = debriefs.factor_table(e, ds, f, UNRESTRICTED, records)
    p = disclosure.protect(debriefs.factor_table, factors, 40)
    assert p["suppressed"].any()
    assert p.loc[p["yes"].isna() | p["reference_yes"].isna(), "ratio"].isna().all()
    assert (p["yes"].isna() == p["reference_yes"].isna()).all()  # a complement gives the other away
    chart = charts.forest_plot(p.assign(group=p["factor"], reference="debriefs without it"), "Officer injury rate")
    assert_safe(p, debriefs.factor_table, chart, tables.factors_table(p), threshold=40)


def test_every_kind_is_tested() -> None:
    tested = {query.breakdown, query.tactic_counts, risk.rate_grid, risk.rate_ratios,
              risk.funnel, risk.officer_exposure, tactics.use_over_time,
              tactics.effectiveness, tactics.harm_when_used, tactics.co_occurrence,
              tactics.taser_ladder, explore.explore_frame, quality.completeness,
              quality.completeness_by, quality.invalid_codes, quality.contradictions,
              quality.coverage, quality.late_recorded, training.summarise_compliance,
              training.event_study, training.event_profile, training.effects, debriefs.factor_table}
    assert disclosure.KINDS == tested
