"""The cell key method on the Officer risk and Explore pages, debrief factors and the national comparison.

Under a perturbed scope (viewers, demonstrations) every count these publish must be the count adjusted by the
key sum of the reports it counts, and every rate, interval, ratio, limit and verdict must come from those
published counts. Each test works the expected published counts out independently, in pandas over the sample
with record keys made from the same secret, and checks the analyst (an unperturbed scope) still gets exact ones.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lib import ingest
from lib.analysis import adjust, debriefs, explore, risk, stats
from lib.engine.query import NOT_RECORDED, Filters, Scope
from lib.engine.store import SAMPLE_DIR, Engine
from lib.ingest import debriefs as debrief_files
from lib.privacy import cellkey

SECRET = b"cell key tests of the risk pages: a secret of 32 bytes or more"
FORCE = "Greater Manchester Police"  # 2,812 reports of the sample: big groups and small ones
FILTERS = Filters(forces=(FORCE,))
MEASURE = "officer_injured"
PERTURBED = Scope(perturbed=True)
EXACT = Scope()


def keys_of(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pa.array(cellkey.record_keys(ids.to_numpy(zero_copy_only=False), SECRET), pa.int16())


@pytest.fixture(scope="module")
def keyed() -> Engine:
    return Engine(read_file=ingest.read_file, record_keys=keys_of)


@pytest.fixture(scope="module")
def sample(keyed):
    return keyed.open(SAMPLE_DIR)


@pytest.fixture(scope="module")
def reports() -> pd.DataFrame:
    """The force's reports, read apart from the engine, each with its record key made here."""
    frame = pd.read_parquet(SAMPLE_DIR / "reports.parquet")
    frame = frame[frame["force"].astype(str) == FORCE].reset_index(drop=True)
    frame["key"] = cellkey.record_keys(frame["report_id"].to_numpy(dtype=object), SECRET).astype("int64")
    frame["answered"] = frame[MEASURE].notna()
    frame["said_yes"] = frame[MEASURE].fillna(False).astype(bool)
    return frame


@pytest.fixture(scope="module")
def using(reports) -> dict[str, pd.DataFrame]:
    """The force's reports using each type of force (Tactical communication left out, as the ratios do)."""
    tactics = pd.read_parquet(SAMPLE_DIR / "tactics.parquet")
    tactics = tactics[tactics["report_id"].isin(reports["report_id"])]
    groups = tactics["tactic_group"].astype("string")
    out = {}
    for group in groups.dropna().unique():
        if group != "Tactical communication":
            ids = set(tactics.loc[groups == group, "report_id"])
            out[str(group)] = reports[reports["report_id"].isin(ids)]
    return out


def published(frame: pd.DataFrame) -> int:
    """Return a count of reports as the cell key method publishes it: adjusted by their key sum."""
    return cellkey.perturb_one(len(frame), int(frame["key"].sum()))


def nested_counts(frame: pd.DataFrame) -> tuple[int, int, int]:
    """Return reports, answered and yes as a breakdown publishes them: each adjusted, parts within wholes."""
    total = published(frame)
    answered = min(published(frame[frame["answered"]]), total)
    return total, answered, min(published(frame[frame["said_yes"]]), answered)


def answering_counts(frame: pd.DataFrame) -> tuple[int, int]:
    """Return answering reports and yes among them as published (the models' and tactic comparisons' counts)."""
    answered = published(frame[frame["answered"]])
    return answered, min(published(frame[frame["said_yes"]]), answered)


def labels(frame: pd.DataFrame, dimension: str) -> pd.Series:
    return frame[dimension].astype("string").fillna(NOT_RECORDED)


def test_the_sample_has_counts_the_method_changes(reports):
    by_role = reports.groupby(labels(reports, "officer_role"))
    changed = [name for name, cell in by_role if published(cell[cell["said_yes"]]) != cell["said_yes"].sum()]
    assert changed  # so every "equals the published count" below can tell published from exact


def test_rate_grid_publishes_perturbed_counts_and_rates_from_them(keyed, sample, reports):
    grid = risk.rate_grid(keyed, sample, FILTERS, PERTURBED, MEASURE, "officer_role", "shift")
    exact = risk.rate_grid(keyed, sample, FILTERS, EXACT, MEASURE, "officer_role", "shift")
    cells = dict(iter(reports.groupby([labels(reports, "officer_role"), labels(reports, "shift")])))
    assert len(grid) == len(cells) == len(exact)
    for row in grid.itertuples():
        assert (row.reports, row.answered, row.yes) == nested_counts(cells[(row.officer_role, row.shift)])
    for row in exact.itertuples():
        cell = cells[(row.officer_role, row.shift)]
        assert (row.reports, row.answered, row.yes) == (len(cell), cell["answered"].sum(), cell["said_yes"].sum())
    assert (grid[["reports", "answered", "yes"]].to_numpy() != exact[["reports", "answered", "yes"]].to_numpy()).any()
    yes, answered = grid["yes"].to_numpy(dtype=float), grid["answered"].to_numpy(dtype=float)
    low, high = stats.wilson_interval(yes, answered)
    np.testing.assert_allclose(grid["per_100"], np.where(answered > 0, 100 * yes / np.maximum(answered, 1), np.nan))
    np.testing.assert_allclose(grid["low_100"], 100 * np.asarray(low))
    np.testing.assert_allclose(grid["high_100"], 100 * np.asarray(high))
    assert grid["enough"].tolist() == (grid["answered"] >= risk.MIN_CELL).tolist()


def test_crude_rate_ratios_compare_published_counts(keyed, sample, reports):
    ratios = risk.rate_ratios(keyed, sample, FILTERS, PERTURBED, MEASURE, "officer_role")
    groups = dict(iter(reports.groupby(labels(reports, "officer_role"))))
    for row in ratios.itertuples():
        _, answered, yes = nested_counts(groups[row.group])
        assert (row.answered, row.yes) == (answered, yes)
        _, ref_answered, ref_yes = nested_counts(groups[row.reference])
        assert (row.reference_answered, row.reference_yes) == (ref_answered, ref_yes)
    # The reference is the group with the most published answering reports.
    assert ratios["reference"].iloc[0] == ratios.loc[ratios["answered"].idxmax(), "group"]
    expected = stats.rate_ratio(ratios["yes"], ratios["answered"], ratios["reference_yes"],
                                ratios["reference_answered"])
    np.testing.assert_allclose(ratios["ratio"], expected.ratio)
    np.testing.assert_allclose(ratios["ci_low"], expected.low)
    np.testing.assert_allclose(ratios["ci_high"], expected.high)
    exact = risk.rate_ratios(keyed, sample, FILTERS, EXACT, MEASURE, "officer_role").set_index("group")
    for group, row in exact.iterrows():
        assert (row["answered"], row["yes"]) == (groups[group]["answered"].sum(), groups[group]["said_yes"].sum())


def tactic_expectation(reports: pd.DataFrame, users: pd.DataFrame) -> tuple[int, int, int, int]:
    """Return yes, answered, reference yes and reference answered of reports using a type of force, as published.

    The reports not using it are the published total less the published users: nothing a viewer could not
    work out from the published counts.
    """
    answered, yes = answering_counts(users)
    total_answered, total_yes = answering_counts(reports)
    ref_answered = max(total_answered - answered, 0)
    return yes, answered, min(max(total_yes - yes, 0), ref_answered), ref_answered


@pytest.mark.parametrize("adjust_for", [(), ("shift", "resistance")], ids=["crude", "adjusted"])
def test_tactic_comparisons_publish_perturbed_users_and_the_published_rest(keyed, sample, reports, using,
                                                                           adjust_for):
    ratios = risk.rate_ratios(keyed, sample, FILTERS, PERTURBED, MEASURE, "tactic_group", adjust_for=adjust_for)
    assert len(ratios) == len(using)
    for row in ratios.itertuples():
        users = using[row.group.removeprefix("Using ")]
        assert (row.yes, row.answered, row.reference_yes, row.reference_answered) == \
            tactic_expectation(reports, users)
    exact = risk.rate_ratios(keyed, sample, FILTERS, EXACT, MEASURE, "tactic_group", adjust_for=adjust_for)
    for row in exact.itertuples():
        users = using[row.group.removeprefix("Using ")]
        assert (row.yes, row.answered) == (users["said_yes"].sum(), users["answered"].sum())
        assert row.reference_answered == reports["answered"].sum() - users["answered"].sum()
    assert (ratios[["yes", "answered"]].to_numpy() != exact[["yes", "answered"]].to_numpy()).any()
    if not adjust_for:  # crude: the ratio and its interval are the published counts' own
        expected = stats.rate_ratio(ratios["yes"], ratios["answered"], ratios["reference_yes"],
                                    ratios["reference_answered"])
        np.testing.assert_allclose(ratios["ratio"], expected.ratio)
        np.testing.assert_allclose(ratios["ci_low"], expected.low)
    else:  # adjusted: a model's estimate from the exact reports (see lib/analysis/adjust.py), shown beside them
        np.testing.assert_allclose(ratios["ratio"], exact["ratio"])
        assert np.isfinite(ratios["ratio"]).any()


def test_adjusted_ratios_publish_each_groups_perturbed_counts(keyed, sample, reports):
    ratios = risk.rate_ratios(keyed, sample, FILTERS, PERTURBED, MEASURE, "officer_role", adjust_for=("shift",))
    exact = risk.rate_ratios(keyed, sample, FILTERS, EXACT, MEASURE, "officer_role", adjust_for=("shift",))
    groups = dict(iter(reports[reports["answered"]].groupby(labels(reports[reports["answered"]], "officer_role"))))
    for row in ratios.itertuples():
        assert (row.answered, row.yes) == answering_counts(groups[row.group])
        assert (row.reference_answered, row.reference_yes) == answering_counts(groups[row.reference])
    for row in exact.itertuples():
        assert (row.answered, row.yes) == (len(groups[row.group]), groups[row.group]["said_yes"].sum())
    assert (ratios[["yes", "answered"]].to_numpy() != exact[["yes", "answered"]].to_numpy()).any()
    assert ratios["method"].iloc[0] == adjust.METHOD and np.isfinite(ratios["ratio"]).sum() > 1


@pytest.mark.parametrize("level", risk.FUNNEL_LEVELS)
def test_crude_funnel_judges_the_published_counts(keyed, sample, reports, level):
    points, limits = risk.funnel(keyed, sample, FILTERS, PERTURBED, MEASURE, level)
    groups = dict(iter(reports.groupby(labels(reports, level))))
    assert len(points) == sum(1 for g, cell in groups.items() if g != NOT_RECORDED and cell["answered"].any())
    for row in points.itertuples():
        _, answered, yes = nested_counts(groups[row.group])
        assert (row.answered, row.yes) == (answered, yes)
    x, n = points["yes"].to_numpy(), points["answered"].to_numpy()
    np.testing.assert_allclose(points["rate"], x / n)
    verdicts = stats.judge_funnel(x, n).table  # the verdicts the published counts alone give
    for column in ("expected", "low", "high", "p_value", "q_value", "target"):
        np.testing.assert_allclose(points[column], verdicts[column], equal_nan=True)
    assert points["flag"].fillna("").tolist() == verdicts["flag"].fillna("").tolist()
    assert float(limits["overall"].iloc[0]) == pytest.approx(stats.judge_funnel(x, n).target)
    exact, _ = risk.funnel(keyed, sample, FILTERS, EXACT, MEASURE, level)
    exact = exact.set_index("group")
    assert all(exact.loc[g, "yes"] == cell["said_yes"].sum() for g, cell in groups.items() if g in exact.index)
    assert (exact.loc[points["group"], "yes"].to_numpy() != x).any()


def test_funnel_against_the_case_mix_publishes_perturbed_observed_counts(keyed, sample, reports):
    adjustment = risk.funnel_adjustment("area")
    points, _ = risk.funnel(keyed, sample, FILTERS, PERTURBED, MEASURE, "area", adjustment)
    answering = reports[reports["answered"]]
    groups = dict(iter(answering.groupby(labels(answering, "area"))))
    for row in points.itertuples():
        assert (row.answered, row.yes) == answering_counts(groups[row.group])
    np.testing.assert_allclose(points["ratio"], points["yes"] / points["model_expected"])
    model = adjust.expected_counts(keyed, sample, FILTERS, PERTURBED, MEASURE, "area", adjustment)
    exact = adjust.expected_counts(keyed, sample, FILTERS, EXACT, MEASURE, "area", adjustment)
    assert (model["observed"].to_numpy() != exact["observed"].to_numpy()).any()
    # With an intercept a model's expected counts add up to the exact observed total: scaled to the published one.
    assert exact["expected"].sum() == pytest.approx(answering["said_yes"].sum())
    assert model["expected"].sum() == pytest.approx(model["observed"].sum())
    np.testing.assert_allclose(model["expected"] / exact["expected"],
                               model["observed"].sum() / answering["said_yes"].sum())


@pytest.mark.parametrize("measure", ["reports", MEASURE])
def test_explore_frame_shows_published_counts_and_sums_of_them(keyed, sample, reports, measure):
    frame = explore.explore_frame(keyed, sample, FILTERS, PERTURBED, measure, ("officer_role",))
    groups = dict(iter(reports.groupby(labels(reports, "officer_role"))))
    for row in frame.itertuples():
        total, answered, yes = nested_counts(groups[row.officer_role])
        assert row.reports == total
        if measure != "reports":
            assert (row.answered, row.yes) == (answered, yes)
            assert row.value == pytest.approx(yes / answered)
    # Teams: hundreds of groups, the smaller summed into "Other (N groups)": a sum of published counts.
    teams = explore.explore_frame(keyed, sample, FILTERS, PERTURBED, measure, ("team",))
    assert teams["team"].map(explore.is_other).any()
    by_team = reports.groupby(labels(reports, "team"))
    assert teams["reports"].sum() == sum(nested_counts(cell)[0] for _, cell in by_team)
    assert teams["reports"].sum() != len(reports)


def test_debrief_factors_publish_perturbed_counts_and_ratios_from_them(keyed, sample, reports):
    made = debriefs.synthesise(reports, seed=5)
    records = debrief_files.read("debriefs.csv", made.to_csv(index=False).encode()).records
    table = debriefs.factor_table(keyed, sample, FILTERS, PERTURBED, records).set_index("factor")
    exact = debriefs.factor_table(keyed, sample, FILTERS, EXACT, records).set_index("factor")
    named = records.set_index("report_id")["contributing_factors"]
    reviewed = reports[reports["report_id"].isin(named.index)]
    total_answered, total_yes = answering_counts(reviewed)
    for factor, row in table.iterrows():
        has = reviewed[reviewed["report_id"].map(lambda r, f=factor: f in named[r])]
        answered, yes = answering_counts(has)
        ref_answered = max(total_answered - answered, 0)
        assert (row["debriefs"], row["answered"], row["yes"]) == (published(has), answered, yes)
        assert (row["reference_answered"], row["reference_yes"]) == (
            ref_answered, min(max(total_yes - yes, 0), ref_answered))
        assert (exact.loc[factor, "debriefs"], exact.loc[factor, "yes"]) == (len(has), has["said_yes"].sum())
    counts = ["debriefs", "yes", "answered"]
    assert (table[counts] != exact.loc[table.index, counts]).any().any()
    expected = stats.rate_ratio(table["yes"], table["answered"], table["reference_yes"], table["reference_answered"])
    np.testing.assert_allclose(table["ratio"], expected.ratio)
    np.testing.assert_allclose(table["ci_high"], expected.high)
    # The supervisor's count of harmed reports with no debrief is published too (its rows never are).
    harmed = reports[(reports["officer_injured"].fillna(False) | reports["officer_assaulted"].fillna(False))
                     .astype(bool) & ~reports["report_id"].isin(named.index)]
    missing, _ = debriefs.review_list(keyed, sample, FILTERS, PERTURBED, records)
    assert missing == published(harmed)
    assert debriefs.review_list(keyed, sample, FILTERS, EXACT, records)[0] == len(harmed)


def test_the_national_comparison_sets_the_published_figures_beside_the_national_ones(fresh_caches):
    from lib.ui import cache

    ds = cache.engine().open(SAMPLE_DIR)  # the app's engine: record keys under the installation's key
    frame = pd.read_parquet(SAMPLE_DIR / "reports.parquet")
    frame = frame[frame["force"].astype(str) == FORCE].reset_index(drop=True)
    frame["key"] = ingest.record_keys(pa.array(frame["report_id"].to_numpy(dtype=object))).to_numpy().astype("int64")
    frame["answered"], frame["said_yes"] = frame[MEASURE].notna(), frame[MEASURE].fillna(False).astype(bool)
    tactics = pd.read_parquet(SAMPLE_DIR / "tactics.parquet")
    handcuffed = frame[frame["report_id"].isin(tactics.loc[tactics["tactic"] == "Compliant handcuffing", "report_id"])]
    bench = {"officer_injured_share_of_answered": 0.1, "intentional_assault_share": 0.2,
             "tactic_mix": [{"canonical_tactic": "Compliant handcuffing", "incident_share": 0.4}]}
    shown = cache.national_comparison(ds, FILTERS, PERTURBED, bench).set_index("Measure")["This data (%)"]
    total, answered, yes = nested_counts(frame)
    assert shown["Officer injured (share of reports answering)"] == round(100 * yes / answered, 1)
    assert shown["Reports using Compliant handcuffing"] == round(100 * published(handcuffed) / total, 1)
    exact = cache.national_comparison(ds, FILTERS, EXACT, bench).set_index("Measure")["This data (%)"]
    assert exact["Reports using Compliant handcuffing"] == round(100 * len(handcuffed) / len(frame), 1)
    assert exact["Officer injured (share of reports answering)"] == round(
        100 * frame["said_yes"].sum() / frame["answered"].sum(), 1)


OFFICER_LEVEL_CALLS = {
    "counts per officer": lambda e, d, s: risk.by_officer(e, d, FILTERS, s),
    "officer exposure": lambda e, d, s: risk.officer_exposure(e, d, FILTERS, s, MEASURE),
    "officer funnel": lambda e, d, s: risk.funnel(e, d, FILTERS, s, MEASURE, risk.OFFICER_LEVEL),
    "officer funnel against the case mix": lambda e, d, s: risk.funnel(
        e, d, FILTERS, s, MEASURE, risk.OFFICER_LEVEL, risk.funnel_adjustment(risk.OFFICER_LEVEL)),
    "officers' expected counts": lambda e, d, s: adjust.expected_counts(e, d, FILTERS, s, MEASURE, "officer"),
    "same-incident comparison": lambda e, d, s: risk.same_incident_comparison(e, d, FILTERS, s, MEASURE),
    "shared incidents": lambda e, d, s: risk.shared_incident_count(e, d, FILTERS, s, MEASURE),
}


@pytest.mark.parametrize("call", list(OFFICER_LEVEL_CALLS.values()), ids=list(OFFICER_LEVEL_CALLS))
def test_nothing_officer_level_is_published_to_a_perturbed_scope(keyed, sample, call):
    with pytest.raises(ValueError, match="officer-level detail, never published under disclosure control"):
        call(keyed, sample, PERTURBED)


def test_officer_level_results_are_still_there_for_an_analyst(keyed, sample, reports):
    officers = risk.by_officer(keyed, sample, FILTERS, EXACT)
    assert officers["reports"].sum() == reports["officer_id"].notna().sum()


def test_a_demonstration_offers_no_officer_level_view_on_the_risk_page(fresh_caches, tmp_path):
    from streamlit.testing.v1 import AppTest

    from .conftest import ROOT

    fresh_caches.setenv("OSE_DEMO", "1")  # the local user is an analyst: officer views are open to the role
    fresh_caches.delenv("OSE_AUTH_CONFIG", raising=False)
    fresh_caches.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["forces"] = FORCE
    at.run()
    at.switch_page("app_pages/risk.py").run()
    assert not at.exception
    assert "Officer" not in at.radio(key="risk_level").options  # the options as shown
    assert any("not shown under disclosure control" in i.value for i in at.info)
    assert not any("Officer-level detail" in c.value for c in at.caption)


def test_the_viewers_summary_refuses_an_officer_funnel(capsys):
    from lib import summary

    assert summary.main([str(SAMPLE_DIR), "--protect", "viewer", "--by", "officer"]) == 2
    assert "officer-level" in capsys.readouterr().err
