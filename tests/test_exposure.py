"""Officer exposure: a maximum-likelihood prior, a calibrated test of spread first, and same-incident peers.

The verdict "officers differ beyond chance" is checked on null data (one common rate, and the generator's data with
the outcome permuted: it fires at about its nominal 5%) and on planted spread (it finds it, the prior does not
collapse, and the shrunken rates forecast the top officers' next period).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import special
from scipy import stats as sps

from lib import synth
from lib.analysis import risk, stats
from lib.engine.query import UNRESTRICTED, Filters
from lib.present import tables
from lib.privacy import disclosure

ALL = Filters()
SEEDS = range(10)
DO_NOT_DIFFER = ("These officers' injury rates do not differ more than chance would make them differ: "
                 "no officer is singled out")


def _officers(seed: int, precision: float | None, groups: int = 500, mean: float = 0.1):
    """Officers with 1 to 40 answering reports; true rates Beta(mean, precision), or all `mean` when None."""
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 41, size=groups)
    truth = np.full(groups, mean) if precision is None else rng.beta(mean * precision, (1 - mean) * precision, groups)
    return rng.binomial(n, truth), n, truth, rng


# --- the maximum-likelihood prior ----------------------------------------------------------------------------


def test_the_likelihood_prior_is_the_maximum_of_the_beta_binomial_likelihood():
    rng = np.random.default_rng(0)
    n = rng.integers(1, 30, size=60)
    x = rng.binomial(n, rng.beta(2, 18, size=60))
    prior = stats.beta_binomial_prior(x, n)
    assert prior.method == "likelihood" and not prior.pooled
    # Brute force: the log-likelihood on a fine grid of mean and precision; the fit is at least as high and lies
    # within a grid step of the grid's best point.
    mus = np.linspace(0.01, 0.4, 300)
    precisions = np.exp(np.linspace(np.log(0.5), np.log(500), 300))
    mu, precision = np.meshgrid(mus, precisions)
    a, b = mu * precision, (1 - mu) * precision
    grid = sum(special.betaln(xi + a, ni - xi + b) - special.betaln(a, b) for xi, ni in zip(x, n, strict=True))
    best = np.unravel_index(np.argmax(grid), grid.shape)
    assert prior.log_likelihood >= grid[best] - 1e-9
    assert prior.mean == pytest.approx(mu[best], abs=mus[1] - mus[0])
    assert np.log(prior.precision) == pytest.approx(np.log(precision[best]), abs=0.03)
    # The same likelihood as scipy's beta-binomial, once the binomial coefficients are added back.
    coefficients = np.sum(special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1))
    full = sps.betabinom.logpmf(x, n, prior.a, prior.b).sum()
    assert prior.log_likelihood + coefficients == pytest.approx(full, rel=1e-10)


def test_officers_with_one_report_say_nothing_about_spread():
    # Bernoulli outcomes have the same distribution whatever the spread: no test, and the pooled prior.
    x = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    n = np.ones_like(x)
    assert stats.beta_binomial_prior(x, n).pooled
    assert np.isnan(stats.heterogeneity_test(x, n).p_value)
    # Mixed with larger officers, the many single-report officers neither break nor dominate the fit.
    x2, n2, _, _ = _officers(1, precision=20, groups=200)
    rng = np.random.default_rng(1)
    ones = rng.binomial(1, 0.1, size=2000)
    both = stats.beta_binomial_prior(np.append(x2, ones), np.append(n2, np.ones(2000)))
    alone = stats.beta_binomial_prior(x2, n2)
    assert not both.pooled
    assert both.mean == pytest.approx(alone.mean, abs=0.01)
    assert both.precision == pytest.approx(alone.precision, rel=0.3)


def test_no_spread_sits_on_the_boundary_and_every_officer_gets_the_pooled_rate():
    x, n = np.array([10, 20, 30, 40]), np.array([100, 200, 300, 400])
    prior = stats.beta_binomial_prior(x, n)
    assert prior.pooled and prior.precision == np.inf and prior.spread == 0.0
    assert (prior.a, prior.b) == (100.5, 900.5)
    # The likelihood at the boundary is the binomial one with the pooled rate.
    assert prior.log_likelihood == pytest.approx(float(np.sum(x * np.log(0.1) + (n - x) * np.log(0.9))))


# --- planted spread ---------------------------------------------------------------------------------------------


def test_planted_spread_is_found_and_the_shrunken_ranking_beats_raw_rates():
    # 500 officers, 1-40 reports each, true rates Beta(2, 18): mean 10%, standard deviation 6.5 points.
    gains, forecast, next_rate, raw_top = [], [], [], []
    for seed in SEEDS:
        x, n, truth, rng = _officers(seed, precision=20)
        assert stats.heterogeneity_test(x, n, seed=seed).differ
        shrinkage = stats.shrunken_rates(x, n)
        prior = shrinkage.prior
        assert not prior.pooled  # the moments' collapse to one rate for everyone does not happen
        assert prior.mean == pytest.approx(0.1, abs=0.015)
        assert 10 < prior.precision < 45  # planted 20
        shrunk, raw = shrinkage.table["shrunken"].to_numpy(), x / n
        assert np.mean((shrunk - truth) ** 2) < 0.5 * np.mean((raw - truth) ** 2)
        gains.append(sps.spearmanr(shrunk, truth)[0] - sps.spearmanr(raw, truth)[0])
        # Next period, drawn from the true rates: the top 15 by shrunken rate keep most of their lead.
        top = np.argsort(-shrunk, kind="stable")[:15]
        n2 = rng.integers(1, 41, size=n.size)
        x2 = rng.binomial(n2, truth)
        forecast.append(shrunk[top].mean())
        next_rate.append(x2[top].sum() / n2[top].sum())
        raw_top.append(raw[top].mean())
    assert np.mean(gains) > 0.02 and sum(g > 0 for g in gains) >= 8
    # The shrunken rates forecast the next period (within 20%); the raw rates overshoot it by far.
    assert np.mean(next_rate) == pytest.approx(np.mean(forecast), rel=0.2)
    assert np.mean(raw_top) > 1.3 * np.mean(next_rate)
    assert np.mean(next_rate) > 2 * 0.1  # a real lead, not the pooled rate


# --- the null: one rate for everyone ----------------------------------------------------------------------------


def test_with_one_common_rate_the_test_fires_at_about_its_nominal_5_percent():
    fired, pooled = 0, 0
    for seed in range(200):
        x, n, _, _ = _officers(1000 + seed, precision=None, mean=0.05)
        fired += stats.heterogeneity_test(x, n, seed=seed).differ
        pooled += stats.beta_binomial_prior(x, n).pooled
    # 200 datasets: 5% is 10 (binomial sd about 3).
    assert 3 <= fired <= 18, fired
    assert pooled >= 80  # about half sit on the "no spread" boundary, as the 50:50 chi-bar-square says


def _tarone_by_group(k: np.ndarray, m: np.ndarray) -> np.ndarray:
    # Tarone's Z computed group by group, one row of groups per dataset: the definition the sums must reproduce.
    total = m.sum()
    p = k.sum(axis=1) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.sum((k - m * p[:, None]) ** 2, axis=1) / (p * (1 - p))
        z = (spread - total) / np.sqrt(2 * np.sum(m * (m - 1)))
    return np.where((p > 0) & (p < 1), z, -np.inf)


def _bootstrap_by_group(x: np.ndarray, n: np.ndarray, draws: int, seed: int) -> float:
    # The old p-value: every group drawn Binomial(n, p0) in every dataset, no early stop.
    observed = _tarone_by_group(x[None, :].astype(float), n.astype(float))[0]
    sims = np.random.default_rng(seed).binomial(n, x.sum() / n.sum(), size=(draws, n.size))
    return (1 + np.sum(_tarone_by_group(sims.astype(float), n.astype(float)) >= observed)) / (1 + draws)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_statistic_from_sums_equals_the_group_by_group_one(seed):
    x, n, _, rng = _officers(seed, precision=20)
    many = rng.binomial(n, 0.1, size=(50, n.size))
    sums = stats._Tarone(n).statistic(many.sum(axis=1), (many * many).sum(axis=1), (many * n).sum(axis=1))
    np.testing.assert_allclose(sums, _tarone_by_group(many.astype(float), n.astype(float)), rtol=1e-9, atol=1e-9)
    assert stats.heterogeneity_test(x, n).statistic == pytest.approx(
        _tarone_by_group(x[None, :].astype(float), n.astype(float))[0], rel=1e-9)


@pytest.mark.parametrize(("seed", "precision"), [(3, None), (4, None), (5, 400), (6, 150)])
def test_p_values_agree_with_drawing_every_group_within_monte_carlo_error(seed, precision):
    # Null and weak-spread data (p-values away from 0 and 1), 2000 draws each, no early stop: the two p-values
    # estimate the same probability, so they differ by at most four standard errors of their difference.
    x, n, _, _ = _officers(seed, precision=precision, groups=400, mean=0.08)
    new = stats.heterogeneity_test(x, n, draws=2000, seed=seed, stop=10**6).p_value
    old = _bootstrap_by_group(x, n, 2000, seed + 50)
    p = (new + old) / 2
    assert abs(new - old) <= 4 * np.sqrt(2 * p * (1 - p) / 2000) + 1e-3, (new, old)


def test_the_null_statistics_have_the_distribution_of_drawing_every_group():
    # Many groups of few sizes (the multinomial path) beside sizes held by one group (drawn one by one).
    rng = np.random.default_rng(9)
    n = np.append(rng.integers(1, 6, 3000), [40, 75, 120])
    classes, members = np.unique(n, return_counts=True)
    assert (members > classes + 1).any() and (members <= classes + 1).any()
    tarone = stats._Tarone(n)
    summed = tarone.statistic(*stats._null_sums(np.random.default_rng(1), classes, members, 0.07, 3000))
    drawn = _tarone_by_group(rng.binomial(n, 0.07, size=(3000, n.size)).astype(float), n.astype(float))
    assert sps.ks_2samp(summed, drawn).pvalue > 1e-3


def _permuted(data, seed: int) -> pa.Table:
    reports = data.reports
    column = reports["officer_injured"]
    order = np.random.default_rng(seed).permutation(len(column))
    return reports.set_column(reports.schema.get_field_index("officer_injured"), "officer_injured",
                              column.take(pa.array(order)))


@pytest.mark.slow
def test_generator_data_with_injury_permuted_shows_no_list(engine):
    data = synth.generate(40_000, seed=5)
    fired = 0
    for seed in SEEDS:
        ds = engine.add(f"permuted {seed}", _permuted(data, seed), data.tactics, data.officers,
                        key=f"exposure_perm{seed:02d}")
        exposure = risk.officer_exposure(engine, ds, ALL, UNRESTRICTED, "officer_injured")
        fired += exposure.differ
        if not exposure.differ:
            assert exposure.table.empty
            assert risk.exposure_verdict(exposure).startswith(DO_NOT_DIFFER)
        engine.drop(ds)
    assert fired <= 2, fired  # nominal 5% of 10: at most 2 (probability of 3 or more by chance: 1%)


def test_generator_data_where_officers_differ_gets_a_prior_the_moments_lost(engine):
    # Case mix (role, shift, resistance, outlier teams) makes officers' injury rates really differ. The method of
    # moments put every officer at one rate here; the likelihood finds the spread.
    data = synth.generate(100_000, seed=0)
    ds = engine.add("exposure planted", data.reports, data.tactics, data.officers, key="exposure_plant")
    frame = risk.by_officer(engine, ds, ALL, UNRESTRICTED)
    frame = frame[frame["officer_injured_answered"] > 0]
    x, n = frame["officer_injured_yes"], frame["officer_injured_answered"]
    assert stats.beta_binomial_prior(x, n, "moments").pooled
    prior = stats.beta_binomial_prior(x, n)
    assert not prior.pooled and 0.01 < prior.spread < 0.05
    assert stats.heterogeneity_test(x, n).differ
    engine.drop(ds)


# --- officer_exposure, its words and its protection -------------------------------------------------------------


def test_the_verdict_words_for_no_difference():
    verdict = stats.Heterogeneity(statistic=-0.3, p_value=0.61, groups=500, draws=999)
    prior = stats.BetaPrior(a=10.5, b=190.5, mean=0.05, precision=np.inf, method="likelihood", pooled=True)
    exposure = risk.Exposure("officer_injured", 500, verdict, prior, risk.pd.DataFrame())
    assert not exposure.differ
    text = risk.exposure_verdict(exposure)
    assert text.startswith(DO_NOT_DIFFER) and "p = 0.610" in text and "500 officers" in text
    # A significant test with a prior on the boundary is still nothing to rank.
    assert not risk.Exposure("officer_injured", 500, stats.Heterogeneity(3.0, 0.01, 500, 999), prior,
                             risk.pd.DataFrame()).differ
    assert "assault rates do not differ" in risk.exposure_verdict(
        risk.Exposure("officer_assaulted", 500, verdict, prior, risk.pd.DataFrame()))


def test_officers_who_differ_are_listed_with_regression_to_the_mean_and_same_incident_peers(engine):
    data = synth.generate(40_000, seed=7)
    ds = engine.add("exposure listed", data.reports, data.tactics, data.officers, key="exposure_list7")
    exposure = risk.officer_exposure(engine, ds, ALL, UNRESTRICTED, "officer_injured")
    assert exposure.differ and len(exposure.table) == 15
    top = exposure.table
    assert set(risk.SAME_INCIDENT_COLUMNS) <= set(top.columns)
    assert exposure.shared_incidents > 0
    raw = top["officer_injured_yes"].sum() / top["officer_injured_answered"].sum()
    note = risk.regression_note(exposure)
    assert "Regression to the mean" in note and f"{raw:.1%}" in note
    assert top["shrunken"].mean() < raw  # the forecast sits below what put them at the top
    shown = tables.exposure_table(top, "officer_injured")
    assert "Against the other officers at the same incidents" in shown.columns
    # lib.synth's raw ids, loaded by an engine given no pseudonymiser: the dataset says so, and so does the
    # heading the page gives them (raw_ids=ds.raw_officer_ids), never "pseudonym".
    assert ds.raw_officer_ids
    labelled = tables.exposure_table(top, "officer_injured", raw_ids=ds.raw_officer_ids)
    assert labelled.columns[0] == "Officer (raw id, not pseudonymised)"
    # Under disclosure control the officer count and small same-incident counts are protected.
    protected = disclosure.protect(risk.officer_exposure, exposure, 10)
    hidden = protected.table["shared_yes"].isna()
    assert protected.table.loc[hidden, "shared_ratio"].isna().all()
    assert protected.officers == exposure.officers  # thousands: shown
    engine.drop(ds)


# --- same-incident comparison -----------------------------------------------------------------------------------

# I1: A yes, B no (C unanswered). I2: A yes, B yes, C no. I3: A no, C no. I4: A alone. I5: A yes and no (two
# subjects), B no. R9: A, no incident id. Only incidents with two or more officers answering count.
INCIDENTS = """report_id,incident_id,occurred_at,force,officer_id,officer_injured
R1,I1,2024-01-05 08:00,Kent Police,A,Yes
R2,I1,2024-01-05 08:00,Kent Police,B,No
R3,I1,2024-01-05 08:00,Kent Police,C,
R4,I2,2024-01-06 08:00,Kent Police,A,Yes
R5,I2,2024-01-06 08:00,Kent Police,B,Yes
R6,I2,2024-01-06 08:00,Kent Police,C,No
R7,I3,2024-01-07 08:00,Kent Police,A,No
R8,I3,2024-01-07 08:00,Kent Police,C,No
R10,I4,2024-01-08 08:00,Kent Police,A,Yes
R11,I5,2024-01-09 08:00,Kent Police,A,Yes
R12,I5,2024-01-09 08:00,Kent Police,A,No
R13,I5,2024-01-09 08:00,Kent Police,B,No
R9,,2024-01-10 08:00,Kent Police,A,Yes
"""


def test_same_incident_observed_and_expected_by_hand(engine, tmp_path):
    path = tmp_path / "incidents.csv"
    path.write_text(INCIDENTS)
    ds = engine.open(path)
    assert risk.shared_incident_count(engine, ds, ALL, UNRESTRICTED, "officer_injured") == 4
    frame = risk.same_incident_comparison(engine, ds, ALL, UNRESTRICTED, "officer_injured")
    # Officer ids are pseudonymised on the way in; A, B and C share 4, 3 and 2 incidents with others.
    frame = frame.set_index(frame["shared_incidents"].map({4: "A", 3: "B", 2: "C"}))
    # A: I1 1 of 1 expected 1/2 (variance 1/4); I2 1 expected 2/3 (2/9); I3 none, no variance; I5 2 reports of 3,
    # 1 yes: expected 2/3 (2/9).
    # B: I1 expected 1/2 (1/4); I2 2/3 (2/9); I5 1/3 (2/9).  C: I2 2/3 (2/9); I3 0.
    expected = {"A": (4, 3, 5, 3, 11 / 6, 1 / 4 + 4 / 9), "B": (3, 3, 3, 1, 3 / 2, 1 / 4 + 4 / 9),
                "C": (2, 1, 2, 0, 2 / 3, 2 / 9)}
    for officer, (incidents, informative, reports, yes, e, v) in expected.items():
        row = frame.loc[officer]
        assert (row["shared_incidents"], row["shared_informative"], row["shared_reports"], row["shared_yes"]) == (
            incidents, informative, reports, yes), officer
        assert row["shared_expected"] == pytest.approx(e)
        assert row["shared_variance"] == pytest.approx(v)
        assert row["shared_ratio"] == pytest.approx(yes / e)
        z = (yes - e) / np.sqrt(v)
        assert row["shared_p"] == pytest.approx(2 * sps.norm.sf(abs(z)))
        assert row["shared_low"] == pytest.approx(max(yes - 1.959964 * np.sqrt(v), 0) / e, rel=1e-6)
    # Observed minus expected sums to zero over all officers: the incidents' own harm is the yardstick.
    assert (frame["shared_yes"] - frame["shared_expected"]).sum() == pytest.approx(0)
    # Three informative incidents are too few to judge anyone.
    assert "not judged" in risk.peer_verdict(frame.loc["A"])
    b = frame.loc["B", "officer"]
    only = risk.same_incident_comparison(engine, ds, ALL, UNRESTRICTED, "officer_injured", (b,))
    assert list(only["officer"]) == [b] and only["shared_expected"].iloc[0] == pytest.approx(1.5)


def test_peer_verdicts_name_the_direction_only_when_judged():
    base = {"shared_incidents": 20, "shared_informative": 12, "shared_yes": 9, "shared_expected": 4.0}
    assert risk.peer_verdict(risk.pd.Series({**base, "shared_p": 0.01})) == (
        "9 against 4.0 expected: more than the other officers at the same incidents")
    assert risk.peer_verdict(risk.pd.Series({**base, "shared_p": 0.3})).endswith("not distinguishable from the "
                                                                                  "other officers at the same "
                                                                                  "incidents")
    assert risk.peer_verdict(risk.pd.Series({"shared_incidents": np.nan})) is None


def test_observed_expected_against_hand_arithmetic():
    result = stats.observed_expected([12, 0], [8.0, 2.0], [4.0, 1.0])
    np.testing.assert_allclose(result.ratio, [1.5, 0.0])
    np.testing.assert_allclose(result.z, [2.0, -2.0])
    np.testing.assert_allclose(result.p_value, [0.0455003, 0.0455003], rtol=1e-5)
    np.testing.assert_allclose(result.high, [(12 + 1.959964 * 2) / 8, 1.959964 / 2], rtol=1e-6)
    assert result.low[1] == 0.0


def test_comparing_a_few_officers_gives_their_rows_of_the_comparison_of_everyone(engine):
    # The few officers' comparison counts only their incidents: the same strata, hence the same figures.
    data = synth.generate(20_000, seed=3)
    ds = engine.add("same incidents", data.reports, data.tactics, data.officers, key="exposure_same3")
    everyone = risk.same_incident_comparison(engine, ds, ALL, UNRESTRICTED, "officer_injured").set_index("officer")
    busiest = tuple(everyone.sort_values("shared_incidents", ascending=False).index[:12])
    few = risk.same_incident_comparison(engine, ds, ALL, UNRESTRICTED, "officer_injured", busiest).set_index("officer")
    pd.testing.assert_frame_equal(few, everyone.loc[sorted(busiest)], check_exact=False, rtol=1e-12)
    assert risk.shared_incident_count(engine, ds, ALL, UNRESTRICTED, "officer_injured") == int(
        data.reports.to_pandas().dropna(subset=["officer_id", "incident_id", "officer_injured"])
        .groupby("incident_id")["officer_id"].nunique().ge(2).sum())
    engine.drop(ds)
