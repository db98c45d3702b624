"""Adjusted comparisons: the model matches an independent fit, the sandwich an independent sum, clusters widen it;
on synthetic data with no tactic effect planted the adjusted ratios cover 1, and the planted effects are found."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy import optimize

from lib import synth
from lib.analysis import adjust, risk
from lib.engine.query import NOT_RECORDED, UNRESTRICTED, Filters

ALL = Filters()


# --- an independent route: the row-level likelihood and sandwich ------------------------------------------------


def row_design(frame: pd.DataFrame, columns: list[str], references: dict[str, str]) -> tuple[np.ndarray, list[str]]:
    """Dense one-hot design, one row per report, built with pandas (not the module's sparse route)."""
    parts, names = [np.ones((len(frame), 1))], ["(intercept)"]
    for c in columns:
        values = frame[c].astype(str)
        for level in sorted(set(values) - {references[c]}):
            parts.append((values == level).to_numpy(dtype=float)[:, None])
            names.append(f"{c}={level}")
    return np.hstack(parts), names


def scipy_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Maximise the Poisson log-likelihood sum(y x'b - exp(x'b)) over rows with scipy's trust-region Newton."""
    def nll(b):
        eta = x @ b
        return -(y @ eta - np.exp(eta).sum())

    def grad(b):
        return -(x.T @ (y - np.exp(x @ b)))

    def hess(b):
        return (x * np.exp(x @ b)[:, None]).T @ x

    start = np.zeros(x.shape[1])
    start[0] = np.log(y.mean())
    found = optimize.minimize(nll, start, jac=grad, hess=hess, method="trust-exact", options={"gtol": 1e-9})
    # trust-exact can stop short at "failure to predict improvement": polish with plain row-level Newton steps.
    b = found.x
    for _ in range(20):
        step = np.linalg.solve(hess(b), grad(b))
        b = b - step
        if np.abs(step).max() < 1e-12:
            break
    assert np.abs(step).max() < 1e-9
    return b


def row_sandwich(x: np.ndarray, y: np.ndarray, b: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Sum each cluster's score (x (y - mu)) row by row, then B^-1 (sum s s') B^-1 G / (G - 1)."""
    mu = np.exp(x @ b)
    bread = (x * mu[:, None]).T @ x
    scores = pd.DataFrame(x * (y - mu)[:, None]).groupby(cluster).sum().to_numpy()
    meat = scores.T @ scores
    g = len(scores)
    inverse = np.linalg.inv(bread)
    return inverse @ meat @ inverse * g / (g - 1)


def simulate(seed: int, incidents: int = 1500, shared: float = 0.0) -> pd.DataFrame:
    """Reports in incidents of 1 to 4 officers; harm depends on group and shift; `shared` ties officers' outcomes."""
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 5, incidents)
    incident = np.repeat(np.arange(incidents), size)
    n = incident.size
    group = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    shift = rng.choice(["Early", "Late", "Night"], n)[incident] if shared else rng.choice(["Early", "Late", "Night"], n)
    p = 0.08 * np.select([group == "B", group == "C"], [1.5, 0.7], 1.0) * np.where(shift == "Night", 1.6, 1.0)
    # One uniform per incident, taken by each officer with probability `shared`: P(harm) stays p for everyone.
    u = np.where(rng.random(n) < shared, rng.random(incidents)[incident], rng.random(n))
    y = u < p
    return pd.DataFrame({"incident": incident, "group": group, "shift": shift, "y": y.astype(int)})


def cell_route(frame: pd.DataFrame, clustered: bool = True):
    """Fit by the module's route: collapse to pattern cells, fit, sandwich from cells plus multi-report clusters."""
    codes = np.column_stack([pd.Categorical(frame["group"], ["A", "B", "C"]).codes,
                             pd.Categorical(frame["shift"], ["Early", "Late", "Night"]).codes]).astype(np.int64)
    cell_of = codes[:, 0] * 3 + codes[:, 1]
    y = frame["y"].to_numpy(dtype=float)
    n, yes = np.bincount(cell_of, minlength=9).astype(float), np.bincount(cell_of, weights=y, minlength=9)
    all_codes = np.array([(g, s) for g in range(3) for s in range(3)])
    x = adjust.design(all_codes, [3, 3], [0, 0])
    result = adjust.fit(x, yes, n)
    incident = frame["incident"].to_numpy()
    shared = np.bincount(incident)[incident] > 1
    if not clustered:
        shared[:] = False
    pairs, inverse = np.unique(np.column_stack([incident[shared], cell_of[shared]]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    per_n = np.bincount(inverse, minlength=len(pairs)).astype(float)
    per_yes = np.bincount(inverse, weights=y[shared], minlength=len(pairs))
    cov = adjust.robust_covariance(x, result, yes, n, pairs[:, 0], pairs[:, 1], per_n, per_yes)
    return result, cov


def test_cell_fit_equals_an_independent_row_level_maximum_likelihood_fit():
    frame = simulate(1)
    result, _ = cell_route(frame)
    x, _ = row_design(frame, ["group", "shift"], {"group": "A", "shift": "Early"})
    reference = scipy_fit(x, frame["y"].to_numpy(dtype=float))
    assert result.converged
    np.testing.assert_allclose(result.coef, reference, atol=1e-6)
    # Exp of a coefficient is the risk ratio: B against A, adjusted for shift (planted 1.5).
    assert 1.1 < np.exp(result.coef[1]) < 2.0


def test_sandwich_from_cells_equals_the_row_by_row_cluster_sum():
    frame = simulate(2, shared=0.5)
    result, cov = cell_route(frame)
    x, _ = row_design(frame, ["group", "shift"], {"group": "A", "shift": "Early"})
    reference = row_sandwich(x, frame["y"].to_numpy(dtype=float), result.coef, frame["incident"].to_numpy())
    np.testing.assert_allclose(cov, reference, rtol=1e-9, atol=1e-14)
    # Every report its own cluster: the plain (HC0-type) sandwich, also from cells alone.
    _, plain = cell_route(frame, clustered=False)
    alone = row_sandwich(x, frame["y"].to_numpy(dtype=float), result.coef, np.arange(len(frame)))
    np.testing.assert_allclose(plain, alone, rtol=1e-9, atol=1e-14)


def test_clustering_widens_intervals_when_officers_at_one_incident_share_the_outcome():
    correlated = simulate(3, shared=0.7)
    _, clustered = cell_route(correlated)
    _, plain = cell_route(correlated, clustered=False)
    # The shift is the incident's, so its coefficient rests on incidents, not reports: much wider.
    assert np.sqrt(clustered[4, 4] / plain[4, 4]) > 1.3
    independent = simulate(3)
    _, clustered = cell_route(independent)
    _, plain = cell_route(independent, clustered=False)
    assert np.sqrt(np.diag(clustered)[1:] / np.diag(plain)[1:]) == pytest.approx(1, abs=0.12)


@pytest.mark.slow
def test_clustered_intervals_cover_at_their_nominal_rate_when_outcomes_are_shared():
    """Seeds 0..199, fixed up front: B against A (planted 1.5) with outcomes shared within incidents."""
    covered = {"clustered": 0, "plain": 0}
    for seed in range(200):
        frame = simulate(seed, incidents=400, shared=0.7)
        for name, clustered in (("clustered", True), ("plain", False)):
            result, cov = cell_route(frame, clustered)
            low, high = np.exp(result.coef[4] + np.array([-1.96, 1.96]) * np.sqrt(cov[4, 4]))
            covered[name] += bool(low <= 1.6 <= high)  # Night against Early, an incident-level covariate
    assert covered["clustered"] >= 180  # 90% of 200 (nominal 95%)
    assert covered["plain"] < covered["clustered"]


def test_a_level_with_no_events_is_left_out_not_fitted_to_minus_infinity_slowly():
    cells = pd.DataFrame({"g": [0, 0, 1, 1, 2, 2], "s": [0, 1, 0, 1, 0, 1],
                          "n": [100, 120, 90, 80, 15, 10], "yes": [8, 14, 12, 15, 0, 0]})
    x = adjust.design(cells[["g", "s"]].to_numpy(), [3, 2], [0, 0])
    result = adjust.fit(x, cells["yes"].to_numpy(), cells["n"].to_numpy())
    assert result.converged and result.coef[2] == -np.inf  # g=2: no events
    kept = cells[cells["g"] < 2]
    x2 = adjust.design(kept[["g", "s"]].to_numpy(), [2, 2], [0, 0])
    alone = adjust.fit(x2, kept["yes"].to_numpy(), kept["n"].to_numpy())
    np.testing.assert_allclose(result.coef[[0, 1, 3]], alone.coef, atol=1e-10)
    assert (result.mean[cells["g"] == 2] == 0).all()


# --- through the engine ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(engine):
    data = synth.generate(30_000, seed=5)
    ds = engine.add("adjust", data.reports, data.tactics, data.officers, key="adjust000005")
    return ds, data


def reports_frame(data) -> pd.DataFrame:
    r = data.reports
    frame = pd.DataFrame({
        "report_id": r["report_id"].to_pylist(), "incident": r["incident_id"].to_pylist(),
        "y": r["officer_injured"].to_pandas(), "shift": r["shift"].to_pandas().astype(object),
        "officer_role": r["officer_role"].to_pandas().astype(object),
        "resistance": r["resistance"].to_pandas().astype(object),
        "single_crewed": r["single_crewed"].to_pandas().map({True: "Single crewed", False: "Double crewed"}),
        "location_type": r["location_type"].to_pandas().astype(object)})
    frame = frame[frame["y"].notna()].copy()
    frame["y"] = frame["y"].astype(int)
    for c in ("shift", "officer_role", "resistance", "single_crewed", "location_type"):
        frame[c] = frame[c].fillna(NOT_RECORDED)
    return frame


def test_engine_route_equals_the_row_level_fit_and_sandwich(engine, synthetic):
    ds, data = synthetic
    frame = reports_frame(data)
    found = risk.rate_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured", "shift", "Early",
                             adjust.DEFAULT_ADJUSTMENT).set_index("group")
    covariates = ["officer_role", "resistance", "single_crewed", "location_type"]
    largest = {c: frame[c].value_counts().index[0] for c in covariates}
    x, names = row_design(frame, ["shift", *covariates], {"shift": "Early", **largest})
    y = frame["y"].to_numpy(dtype=float)
    b = scipy_fit(x, y)
    v = row_sandwich(x, y, b, frame["incident"].to_numpy())
    for group in ("Late", "Night"):
        at = names.index(f"shift={group}")
        row = found.loc[group]
        assert row["ratio"] == pytest.approx(np.exp(b[at]), abs=1e-6)
        assert row["ci_high"] == pytest.approx(np.exp(b[at] + 1.959963984540054 * np.sqrt(v[at, at])), abs=1e-6)
        assert row["adjusted_for"] == ("officer_role", "resistance", "single_crewed", "location_type")
        assert (row["yes"], row["answered"]) == (frame.loc[frame["shift"] == group, "y"].sum(),
                                                  (frame["shift"] == group).sum())
    assert found.loc["Early", "ratio"] == 1.0


def test_engine_tactic_ratio_equals_the_row_level_fit(engine, synthetic):
    ds, data = synthetic
    frame = reports_frame(data)
    t = data.tactics
    unarmed = set(pc.filter(t["report_id"], pc.equal(t["tactic_group"].cast(pa.string()), "Unarmed skills"))
                  .to_pylist())
    frame["uses"] = np.where(frame["report_id"].isin(unarmed), "yes", "no")
    covariates = list(adjust.DEFAULT_ADJUSTMENT)
    largest = {c: frame[c].value_counts().index[0] for c in covariates}
    x, names = row_design(frame, [*covariates, "uses"], {**largest, "uses": "no"})
    y = frame["y"].to_numpy(dtype=float)
    b = scipy_fit(x, y)
    v = row_sandwich(x, y, b, frame["incident"].to_numpy())
    found = risk.tactic_group_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured",
                                     adjust.DEFAULT_ADJUSTMENT).set_index("group").loc["Using Unarmed skills"]
    at = names.index("uses=yes")
    assert found["ratio"] == pytest.approx(np.exp(b[at]), abs=1e-6)
    assert found["ci_low"] == pytest.approx(np.exp(b[at] - 1.959963984540054 * np.sqrt(v[at, at])), abs=1e-6)
    assert (found["answered"], found["reference_answered"]) == ((frame["uses"] == "yes").sum(),
                                                                 (frame["uses"] == "no").sum())


def test_taser_fired_has_its_own_ratio_beside_the_types_of_force(engine, synthetic):
    ds, _ = synthetic
    for adjust_for in ((), adjust.DEFAULT_ADJUSTMENT):
        per_tactic = risk.tactic_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured", adjust_for)
        assert "Using CED fired" in set(per_tactic["group"])
        assert "Using Tactical communication" not in set(per_tactic["group"])
        assert (per_tactic["dimension"] == "tactic").all()


def test_expected_counts_add_up_to_the_observed_and_follow_case_mix(engine, synthetic):
    ds, data = synthetic
    expected = adjust.expected_counts(engine, ds, ALL, UNRESTRICTED, "officer_injured", "area")
    assert expected["expected"].sum() == pytest.approx(expected["observed"].sum(), rel=1e-9)
    frame = reports_frame(data)
    assert expected["observed"].sum() == frame["y"].sum()
    # A team's expected count is its reports' case-mix risk, not the average: it varies with the mix.
    teams = adjust.expected_counts(engine, ds, ALL, UNRESTRICTED, "officer_injured", "team")
    per_report = teams["expected"] / teams["reports"]
    assert per_report.std() > 0.005
    assert teams["expected"].sum() == pytest.approx(teams["observed"].sum(), rel=1e-9)


def test_grouped_roles_are_compared_adjusted_for_the_rest_of_the_case_mix_but_not_for_the_roles_they_group(
        engine, synthetic):
    """A demonstration compares grouped roles; adjusting them for single roles would fit a group against its own
    parts (collinear): the role is left out of that adjustment and the rest kept, and the pages offer no such choice."""
    ds, _ = synthetic
    assert adjust.within("role_group") == ("role_group", "officer_role") and adjust.within("shift") == ("shift",)
    found = risk.rate_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured", "role_group", "Response",
                             adjust.DEFAULT_ADJUSTMENT)
    assert set(found["group"]) == {"Response", "Neighbourhood", "Custody", "Other roles"}
    assert set(found["adjusted_for"].iloc[0]) == {"shift", "resistance", "single_crewed", "location_type"}
    compared = found[found["group"] != "Response"]  # the reference's own row has no interval
    assert np.isfinite(compared["ratio"]).all() and (compared["ci_low"] < compared["ratio"]).all()
    # Neighbourhood officers are planted at a lower injury rate than Response: grouped, it is still found.
    assert found.set_index("group").loc["Neighbourhood", "ci_high"] < 1


def test_unknown_adjustment_is_refused(engine, synthetic):
    ds, _ = synthetic
    with pytest.raises(ValueError, match="cannot adjust for"):
        risk.rate_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured", "shift", None, ("horoscope",))


# --- calibration on synthetic data: nothing planted on tactics, role and shift planted ----------------------------

SEEDS = range(20)  # chosen up front, never tuned
CALIBRATION_REPORTS = 100_000


@pytest.fixture(scope="module")
def calibration(engine) -> pd.DataFrame:
    """One row per seed and ratio: the estimate, its interval, and the truth (1 for tactics, planted otherwise)."""
    rows = []
    for seed in SEEDS:
        data = synth.generate(CALIBRATION_REPORTS, seed=seed)
        planted = data.effects["officer_injured"]["rate_ratio"]
        ds = engine.add(f"calibration {seed}", data.reports, data.tactics, data.officers, key=f"adjcal{seed:06d}")
        found = [
            (risk.tactic_group_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured", adjust.DEFAULT_ADJUSTMENT),
             "adjusted", lambda g: 1.0),
            (risk.tactic_group_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured"), "crude", lambda g: 1.0),
            (risk.rate_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured", "shift", "Early",
                              adjust.DEFAULT_ADJUSTMENT), "adjusted", planted["shift"]["ratios"].get),
            (risk.rate_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured", "officer_role", "Neighbourhood",
                              adjust.DEFAULT_ADJUSTMENT), "adjusted", planted["officer_role"]["ratios"].get),
        ]
        for frame, kind, truth in found:
            for r in frame[frame["group"] != frame["reference"]].itertuples():
                rows.append({"seed": seed, "dimension": r.dimension, "group": r.group, "kind": kind,
                             "ratio": r.ratio, "low": r.ci_low, "high": r.ci_high, "truth": truth(r.group)})
        engine.drop(ds)
    out = pd.DataFrame(rows)
    out["covered"] = (out["low"] <= out["truth"]) & (out["truth"] <= out["high"])
    return out


def test_the_generator_plants_no_tactic_effect_on_harm():
    planted = synth.generate(2_000, seed=0).effects["officer_injured"]["rate_ratio"]
    assert set(planted) == {"shift", "officer_role", "single_crewed", "resistance"}  # harm ignores tactics


@pytest.mark.slow
def test_adjusted_tactic_group_ratios_cover_one_when_no_tactic_effect_is_planted(calibration):
    """Thresholds fixed before the run: each type of force covers 1 in at least 17 of 20 seeds (at a true 95%,
    fewer happens with probability 1.6%), and all of them together at least 19 times in 20 (the issue's bar,
    applied to the pooled coverage: one group in six falls to 18 of 20 about a quarter of the time by chance).

    Seeds 0..19 at 100,000 reports gave (see the closing note of issue 14): Restraint 19, Unarmed skills 19,
    Other equipment 20, Less lethal weapons 18, Firearms 20, Other 19 of 20; 115 of 120 in all.
    """
    adjusted = calibration[(calibration["dimension"] == "tactic_group") & (calibration["kind"] == "adjusted")]
    per_group = adjusted.groupby("group")["covered"].sum()
    assert len(per_group) == 6 and (adjusted.groupby("group").size() == len(SEEDS)).all()
    assert (per_group >= 17).all(), per_group.to_dict()
    assert adjusted["covered"].mean() >= 19 / 20, per_group.to_dict()
    # No group leans one way: the average log ratio is near 0 (unlike the crude ones below).
    assert adjusted.groupby("group")["ratio"].mean().between(0.95, 1.05).all()


@pytest.mark.slow
def test_crude_ratio_for_unarmed_skills_is_confounded_by_resistance(calibration):
    rows = calibration[calibration["group"] == "Using Unarmed skills"].set_index(["kind", "seed"])
    crude, adjusted = rows.loc["crude"], rows.loc["adjusted"]
    # Unarmed skills go with harder resistance, and so does injury: the crude ratio rises with nothing planted.
    assert crude["ratio"].mean() > 1.1 and crude["covered"].sum() <= 5
    assert 0.97 < adjusted["ratio"].mean() < 1.03


@pytest.mark.slow
def test_planted_role_and_shift_ratios_are_covered_by_the_adjusted_intervals(calibration):
    """Thresholds fixed before the run: each planted ratio covered in at least 16 of 20 seeds, 90% overall.

    Response's estimates lean high (about 1.57 against the planted 1.5): the generator's outlier teams, which
    triple harm, are among the busiest teams, mostly Response, and team is not adjusted for. With the outlier
    teams out of scope the average is 1.51 (see the closing note of issue 14).
    """
    planted = calibration[calibration["dimension"].isin(["shift", "officer_role"])]
    per_ratio = planted.groupby(["dimension", "group"])["covered"].sum()
    assert len(per_ratio) == 2 + 8
    assert (per_ratio >= 16).all(), per_ratio.to_dict()
    assert planted["covered"].mean() >= 0.90, per_ratio.to_dict()


@pytest.mark.slow  # 150,000 reports and a fit per tactic: a statistical check, run on DuckDB
def test_a_planted_taser_fired_effect_is_found_on_its_own_and_not_hidden_in_its_type_of_force(engine):
    """Seed 7, fixed up front: injuries thinned to 0.6x on reports where CED was fired (Taser fired)."""
    data = synth.generate(150_000, seed=7)
    t = data.tactics
    fired = set(pc.filter(t["report_id"], pc.equal(t["tactic"].cast(pa.string()), "CED fired")).to_pylist())
    injured = data.reports["officer_injured"].to_pandas()
    on_fired = data.reports["report_id"].to_pandas().isin(fired)
    keep = np.random.default_rng(7).random(len(injured)) < 0.6
    thinned = injured.where(~(on_fired & injured.fillna(False).astype(bool)) | keep, False)
    reports = data.reports.set_column(data.reports.schema.get_field_index("officer_injured"), "officer_injured",
                                      pa.array(thinned, type=pa.bool_(), from_pandas=True))
    ds = engine.add("taser fired", reports, data.tactics, data.officers, key="adjtaser0007")
    try:
        per_tactic = risk.tactic_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured",
                                        adjust.DEFAULT_ADJUSTMENT).set_index("group")
        groups = risk.tactic_group_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured",
                                          adjust.DEFAULT_ADJUSTMENT).set_index("group")
    finally:
        engine.drop(ds)
    row = per_tactic.loc["Using CED fired"]
    assert row["ci_low"] <= 0.6 <= row["ci_high"] and row["ci_high"] < 1, row
    # Its type of force mixes it with drawn and red-dot (no effect): the planted fall is diluted there.
    assert groups.loc["Using Less lethal weapons", "ratio"] > row["ratio"] + 0.1


@pytest.mark.parametrize(("dimension", "reference"), [("tactic_group", None), ("shift", "Early")])
def test_with_nothing_to_adjust_for_the_model_gives_the_crude_ratio(engine, synthetic, dimension, reference):
    ds, _ = synthetic
    model = adjust.adjusted_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured", dimension, (), reference)
    crude = risk.rate_ratios(engine, ds, ALL, UNRESTRICTED, "officer_injured", dimension, reference)
    both = model.merge(crude, on="group", suffixes=("", "_crude"))
    both = both[both["group"] != both["reference"]]
    assert len(both) >= 2
    np.testing.assert_allclose(both["ratio"], both["ratio_crude"], rtol=1e-9)
    # Robust (sandwich) and Katz intervals agree closely when nothing is shared within incidents.
    np.testing.assert_allclose(both[["ci_low", "ci_high"]].to_numpy(),
                               both[["ci_low_crude", "ci_high_crude"]].to_numpy(), rtol=0.01)
