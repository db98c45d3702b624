"""Risk statistics checked against published tables, hand arithmetic, scipy, and simulations with planted effects."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from lib.analysis.stats import (
    AVERAGE,
    FUNNEL_MIN_VOLUME,
    HIGHER,
    LOWER,
    TOO_FEW,
    Overdispersion,
    benjamini_hochberg,
    calibrated_limits,
    exact_binomial_interval,
    flag_outliers,
    funnel_limits,
    judge_funnel,
    midp_values,
    overdispersion_factor,
    poisson_rate_interval,
    rank_intervals,
    rate_difference,
    rate_ratio,
    robust_target,
    shrunken_rates,
    wilson_interval,
)

# --- exact intervals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("x", "n", "low", "high"), [
    (0, 10, 0.0, 0.3085),
    (5, 10, 0.1871, 0.8129),
    # Newcombe (1998) "Two-sided confidence intervals for the single proportion", Table I, method 5 (exact).
    (81, 263, 0.2527, 0.3676),
    (15, 148, 0.0578, 0.1617),
    (0, 20, 0.0, 0.1684),
    (1, 29, 0.0009, 0.1776),
])
def test_clopper_pearson_matches_published_values(x, n, low, high):
    lo, hi = exact_binomial_interval(x, n)
    assert float(lo) == pytest.approx(low, abs=1e-4)
    assert float(hi) == pytest.approx(high, abs=1e-4)


def test_clopper_pearson_is_vectorised_and_undefined_without_trials():
    lo, hi = exact_binomial_interval(np.array([0, 5, 10, 0]), np.array([10, 10, 10, 0]))
    assert lo[0] == 0.0 and hi[2] == 1.0
    assert lo[1] == pytest.approx(1 - hi[1])
    assert np.isnan(lo[3]) and np.isnan(hi[3])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 500), share=st.floats(0, 1), level=st.sampled_from([0.9, 0.95, 0.99]))
def test_clopper_pearson_agrees_with_scipy_binomtest(n, share, level):
    x = round(share * n)
    ci = stats.binomtest(x, n).proportion_ci(confidence_level=level, method="exact")
    lo, hi = exact_binomial_interval(x, n, level)
    assert float(lo) == pytest.approx(ci.low, abs=1e-9)
    assert float(hi) == pytest.approx(ci.high, abs=1e-9)
    assert float(lo) <= x / n <= float(hi)


def test_clopper_pearson_never_covers_less_than_nominal():
    # Exact coverage (summing binomial probabilities, no simulation) over a grid of true proportions at n = 30.
    n, k = 30, np.arange(31)
    lo, hi = exact_binomial_interval(k, np.full_like(k, n))
    for p in np.linspace(0.01, 0.99, 99):
        assert stats.binom.pmf(k, n, p)[(lo <= p) & (p <= hi)].sum() >= 0.95 - 1e-12


@pytest.mark.parametrize(("events", "low", "high"), [
    # Standard tables of exact 95% limits for a Poisson count (e.g. Ulm 1990; Sahai & Khurshid 1993).
    (0, 0.0, 3.6889),
    (1, 0.0253, 5.5716),
    (2, 0.2422, 7.2247),
    (5, 1.6235, 11.6683),
    (10, 4.7954, 18.3904),
])
def test_poisson_interval_matches_tables(events, low, high):
    rate, lo, hi = poisson_rate_interval(events, 1)
    assert float(rate) == events
    assert float(lo) == pytest.approx(low, abs=1e-4)
    assert float(hi) == pytest.approx(high, abs=1e-4)


def test_poisson_interval_scales_with_exposure():
    # 5 injuries in 2,000 officer-shifts: 2.5 per 1,000 shifts, limits 1.6235 / 2 and 11.6683 / 2 per 1,000.
    rate, lo, hi = poisson_rate_interval(np.array([5, 3]), np.array([2000, 0]))
    assert rate[0] * 1000 == pytest.approx(2.5)
    assert lo[0] * 1000 == pytest.approx(1.6235 / 2, abs=1e-4)
    assert hi[0] * 1000 == pytest.approx(11.6683 / 2, abs=1e-4)
    assert np.isnan(rate[1]) and np.isnan(lo[1]) and np.isnan(hi[1])


# --- comparisons of two groups ---------------------------------------------------------------------------------


def test_risk_ratio_matches_hand_computed_katz_interval():
    # 20/100 injured on night shift against 10/100 on early shift:
    #   RR = 0.20 / 0.10 = 2
    #   SE(log RR) = sqrt(1/20 - 1/100 + 1/10 - 1/100) = sqrt(0.13) = 0.360555
    #   z = 1.959964, z * SE = 0.706676
    #   low = 2 * exp(-0.706676) = 2 * 0.493282 = 0.986563;  high = 2 * exp(0.706676) = 2 * 2.027240 = 4.054479
    r = rate_ratio(20, 100, 10, 100)
    assert (r.ratio, r.x1, r.n1, r.x0, r.n0) == (2.0, 20, 100, 10, 100)
    assert r.low == pytest.approx(0.986563, abs=1e-6)
    assert r.high == pytest.approx(4.054479, abs=1e-6)


def test_risk_ratio_corrects_only_when_a_group_has_no_events():
    # 0/100 against 10/100: 0.5 added to each cell, so 0.5/101 against 10.5/101.
    #   RR = 0.5 / 10.5 = 0.047619;  SE = sqrt(1/0.5 - 1/101 + 1/10.5 - 1/101) = sqrt(2.075436) = 1.440637
    r = rate_ratio(0, 100, 10, 100)
    se = math.sqrt(1 / 0.5 - 1 / 101 + 1 / 10.5 - 1 / 101)
    assert r.ratio == pytest.approx(0.5 / 10.5)
    assert r.low == pytest.approx(0.5 / 10.5 * math.exp(-1.959964 * se), rel=1e-6)
    assert r.high == pytest.approx(0.5 / 10.5 * math.exp(1.959964 * se), rel=1e-6)
    # Everyone injured in one group leaves the Katz variance finite: no correction.
    full = rate_ratio(10, 10, 5, 10)
    assert full.ratio == 2.0
    assert full.low == pytest.approx(2 * math.exp(-1.959964 * math.sqrt(1 / 10 - 1 / 10 + 1 / 5 - 1 / 10)), rel=1e-6)
    # No events anywhere says nothing about the ratio.
    assert math.isnan(rate_ratio(0, 50, 0, 80).ratio)


@pytest.mark.parametrize(("x1", "e1", "x0", "e0"), [(20, 1000, 10, 2000), (3, 150.5, 12, 400), (7, 10, 1, 90)])
def test_poisson_rate_ratio_is_the_exact_conditional_binomial_interval(x1, e1, x0, e0):
    r = rate_ratio(x1, e1, x0, e0, kind="poisson")
    ci = stats.binomtest(x1, x1 + x0).proportion_ci(method="exact")
    assert r.ratio == pytest.approx((x1 / e1) / (x0 / e0))
    assert r.low == pytest.approx(ci.low / (1 - ci.low) * e0 / e1)
    assert r.high == pytest.approx(ci.high / (1 - ci.high) * e0 / e1)


def test_poisson_rate_ratio_handles_zero_counts_and_vectors():
    r = rate_ratio(np.array([0, 5, 0]), 1000, np.array([4, 0, 0]), 2000, kind="poisson")
    assert r.ratio[0] == 0 and r.low[0] == 0 and np.isfinite(r.high[0])
    assert r.ratio[1] == np.inf and r.high[1] == np.inf and r.low[1] > 0
    assert np.isnan(r.ratio[2])


@pytest.mark.parametrize(("x1", "n1", "x0", "n0", "low", "high"), [
    # Newcombe (1998) "Interval estimation for the difference between independent proportions", Table II, method 10.
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0),
])
def test_newcombe_difference_matches_published_values(x1, n1, x0, n0, low, high):
    d = rate_difference(x1, n1, x0, n0)
    assert d.difference == pytest.approx(x1 / n1 - x0 / n0)
    assert d.low == pytest.approx(low, abs=1e-4)
    assert d.high == pytest.approx(high, abs=1e-4)


# --- funnel limits ----------------------------------------------------------------------------------------------


def test_funnel_limits_have_the_documented_columns():
    frame = funnel_limits([10, 100], 0.1)
    assert list(frame.columns) == ["denominator", "low_95", "high_95", "low_998", "high_998"]
    assert list(funnel_limits([10], 0.1, levels=(0.99, 0.999)).columns) == [
        "denominator", "low_99", "high_99", "low_999", "high_999",
    ]


def test_funnel_limit_matches_a_direct_scipy_computation():
    # Spiegelhalter (2005) A.1.1 at n = 100, p = 0.1, upper 99.8% limit (probability 0.999).
    n, p, q = 100, 0.1, 0.999
    r = stats.binom.ppf(q, n, p)  # smallest r with P(R <= r) >= q: 20
    alpha = (stats.binom.cdf(r, n, p) - q) / stats.binom.pmf(r, n, p)
    low_r = stats.binom.ppf(0.001, n, p)
    low_alpha = (stats.binom.cdf(low_r, n, p) - 0.001) / stats.binom.pmf(low_r, n, p)
    frame = funnel_limits([n], p)
    assert r == 20
    assert frame["high_998"].iloc[0] == pytest.approx((r - alpha) / n, abs=1e-9)
    assert frame["low_998"].iloc[0] == pytest.approx((low_r - low_alpha) / n, abs=1e-9)


def test_poisson_funnel_limit_matches_a_direct_scipy_computation():
    exposure, rate, q = 250.0, 0.04, 0.975  # expected 10 events
    r = stats.poisson.ppf(q, rate * exposure)
    alpha = (stats.poisson.cdf(r, rate * exposure) - q) / stats.poisson.pmf(r, rate * exposure)
    frame = funnel_limits([exposure], rate, kind="poisson")
    assert frame["high_95"].iloc[0] == pytest.approx((r - alpha) / exposure, abs=1e-9)


@pytest.mark.parametrize("p", [0.02, 0.1, 0.4])
def test_funnel_limits_approach_the_normal_limits_at_large_n(p):
    n = np.array([1e5, 1e6])
    frame = funnel_limits(n, p)
    half = 3.090232 * np.sqrt(p * (1 - p) / n)
    # Within 3% of the half-width at n = 100,000 and 1% at a million: what is left is the binomial's skew.
    for column, normal in (("high_998", p + half), ("low_998", p - half)):
        error = np.abs(frame[column].to_numpy() - normal) / half
        assert error[0] < 0.03 and error[1] < 0.01 and error[1] < error[0], column


@pytest.mark.parametrize("p", [0.01, 0.05, 0.1, 0.3, 0.5])
def test_funnel_limits_are_proportions_and_narrow_with_n(p):
    n = np.arange(1, 2001)
    frame = funnel_limits(n, p)
    limits = frame.drop(columns="denominator").to_numpy()
    assert np.all((limits >= 0) & (limits <= 1))
    # Nested: the 99.8% limits lie outside the 95% limits, which lie either side of... each other.
    assert np.all(frame["low_998"] <= frame["low_95"]) and np.all(frame["low_95"] <= frame["high_95"])
    assert np.all(frame["high_95"] <= frame["high_998"])
    # The interpolation leaves a small saw-tooth in the exact limits (a discrete count cannot be smoothed away
    # entirely), so monotone means: over n >= 10 the limits never move back by more than 5% of the half-width.
    for column in ("low_95", "low_998", "high_95", "high_998"):
        values = frame[column].to_numpy()[9:]
        steps = np.diff(values) * (1 if column.startswith("low") else -1)
        assert np.all(steps >= -0.05 * np.abs(values[1:] - p)), column
    # ... and on a plotting grid of denominators at least 25% apart they are monotone outright.
    grid = funnel_limits(np.unique(np.round(np.geomspace(10, 2000, 25))), p)
    assert np.all(np.diff(grid["high_998"]) <= 0) and np.all(np.diff(grid["low_998"]) >= 0)


def test_funnel_limits_are_undefined_without_a_denominator():
    frame = funnel_limits([0, 5], 0.2)
    assert frame.iloc[0, 1:].isna().all() and frame.iloc[1, 1:].notna().all()


# --- simulations with planted effects ---------------------------------------------------------------------------


def test_no_effect_flags_about_one_group_in_a_thousand():
    rng = np.random.default_rng(2024)
    n = rng.integers(50, 2000, size=2000)
    x = rng.binomial(n, 0.1)
    flags = flag_outliers(x, n)["flag"]
    assert 0 <= np.mean(flags == HIGHER) <= 0.004
    assert 0 <= np.mean(flags == LOWER) <= 0.004


@pytest.mark.parametrize("interval", [wilson_interval, exact_binomial_interval])
def test_intervals_cover_the_truth_about_95_percent_of_the_time(interval):
    rng = np.random.default_rng(7)
    p, n = 0.03, 1000
    x = rng.binomial(n, p, size=4000)
    lo, hi = interval(x, np.full_like(x, n))
    assert 0.93 <= np.mean((lo <= p) & (p <= hi)) <= 0.97


def test_planted_high_risk_groups_are_flagged():
    rng = np.random.default_rng(31)
    n = rng.integers(200, 800, size=300)
    p = np.full(300, 0.05)
    planted = np.array([3, 50, 120, 201, 299])
    p[planted] = 0.15
    x = rng.binomial(n, p)
    frame = flag_outliers(x, n)
    assert set(planted) <= set(np.flatnonzero(frame["flag"] == HIGHER))
    assert (frame["flag"] == HIGHER).sum() <= len(planted) + 2
    assert frame["expected"].to_numpy() == pytest.approx(n * x.sum() / n.sum())
    assert set(frame["flag"]) <= {HIGHER, LOWER, AVERAGE}


def test_flag_outliers_keeps_group_labels_and_handles_empty_groups():
    x = pd.Series([3, 40, 0], index=["Team A", "Team B", "Team C"])
    n = pd.Series([100, 100, 0], index=x.index)
    frame = flag_outliers(x, n, level=0.95)
    assert list(frame.index) == ["Team A", "Team B", "Team C"]
    assert list(frame.columns) == ["x", "n", "rate", "expected", "low", "high", "flag"]
    assert frame.loc["Team B", "flag"] == HIGHER and frame.loc["Team A", "flag"] == LOWER
    assert frame.loc["Team C", "flag"] == AVERAGE and np.isnan(frame.loc["Team C", "rate"])


# --- overdispersion ---------------------------------------------------------------------------------------------


def test_overdispersion_by_hand():
    # Ten groups of 100, five at 0.6 and five at 0.4: overall 0.5, s = sqrt(0.25 / 100) = 0.05, every z = +/-2,
    # so winsorising changes nothing and phi = 4. Weights w = 1 / 0.0025 = 400:
    #   tau2 = (10 * 4 - 9) / (4000 - 10 * 400**2 / 4000) = 31 / 3600
    od = overdispersion_factor([60, 40] * 5, [100] * 10)
    assert od.phi == pytest.approx(4.0)
    assert od.tau2 == pytest.approx(31 / 3600)
    assert od.groups == 10
    assert od.p_value == pytest.approx(stats.chi2.sf(40, 9))


def test_overdispersion_winsorises_the_extremes():
    # One wild group among twenty ordinary ones hardly moves phi once its z-score is pulled in to the 90th centile.
    x = np.array([10] * 10 + [12] * 5 + [8] * 5 + [90])
    n = np.full(21, 100)
    od = overdispersion_factor(x, n, overall=0.1)
    z = (x / n - 0.1) / np.sqrt(0.1 * 0.9 / n)
    assert od.phi < np.mean(z**2) / 10
    assert od.phi == pytest.approx(np.mean(np.clip(z, *np.percentile(z, [10, 90])) ** 2))


def test_overdispersed_groups_are_detected_and_the_widened_limits_flag_fewer():
    rng = np.random.default_rng(5)
    n = rng.integers(300, 3000, size=400)
    true_p = rng.beta(30, 270, size=400)  # mean 0.1, sd about 0.017: well beyond binomial noise at these n
    x = rng.binomial(n, true_p)
    od = overdispersion_factor(x, n)
    assert od.phi > 1.5 and od.tau2 > 0 and od.p_value < 0.001
    plain = (flag_outliers(x, n)["flag"] != AVERAGE).sum()
    widened = (flag_outliers(x, n, overdispersion=od)["flag"] != AVERAGE).sum()
    assert widened < plain
    # tau2 is on the proportion scale and of the order of the planted between-group variance, but below it:
    # winsorising at 10%/90% shrinks the mean squared z-score (to about 0.68 of its value for normal z-scores).
    assert 0.3 * stats.beta(30, 270).var() < od.tau2 < stats.beta(30, 270).var()


def test_no_overdispersion_leaves_the_exact_limits():
    rng = np.random.default_rng(9)
    n = rng.integers(100, 1000, size=200)
    od = overdispersion_factor(rng.binomial(n, 0.2), n)
    assert od.tau2 == 0.0
    pd.testing.assert_frame_equal(funnel_limits(n, 0.2, overdispersion=od), funnel_limits(n, 0.2))


def test_random_effects_limits_are_normal_with_the_added_variance():
    tau2, p = 0.0004, 0.1
    frame = funnel_limits([50, 500], p, overdispersion=Overdispersion(phi=2.0, tau2=tau2, groups=30, p_value=0.0))
    half = 1.959964 * np.sqrt(p * (1 - p) / np.array([50, 500]) + tau2)
    np.testing.assert_allclose(frame["high_95"], p + half, rtol=1e-6)
    np.testing.assert_allclose(frame["low_95"], p - half, rtol=1e-6)
    pd.testing.assert_frame_equal(frame, funnel_limits([50, 500], p, overdispersion=tau2))


# --- shrinkage --------------------------------------------------------------------------------------------------


def _planted_groups(seed: int, groups: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = rng.integers(5, 400, size=groups)
    truth = rng.beta(8, 72, size=groups)  # mean 0.1
    return rng.binomial(n, truth), n, truth


def test_shrinkage_beats_raw_rates_against_the_planted_truth():
    x, n, truth = _planted_groups(3)
    result = shrunken_rates(x, n)
    table = result.table
    assert list(table.columns) == ["x", "n", "rate", "shrunken", "low", "high"]
    assert np.mean((table["shrunken"] - truth) ** 2) < 0.6 * np.mean((table["rate"] - truth) ** 2)
    # The maximum-likelihood prior is near the planted Beta(8, 72).
    assert result.a / (result.a + result.b) == pytest.approx(0.1, abs=0.01)
    assert 40 < result.a + result.b < 160
    # Posterior intervals cover the planted truth at about their nominal rate.
    assert 0.9 <= np.mean((table["low"] <= truth) & (truth <= table["high"])) <= 0.99


def test_small_groups_shrink_more_than_large_ones():
    x, n, _ = _planted_groups(4)
    # Two extra groups with the same raw rate of 0.3, one of 10 officers and one of 1,000.
    table = shrunken_rates(np.append(x, [3, 300]), np.append(n, [10, 1000])).table
    overall = 0.1
    small, large = table.iloc[-2], table.iloc[-1]
    assert abs(small["shrunken"] - overall) < abs(large["shrunken"] - overall)
    assert large["shrunken"] == pytest.approx(0.3, abs=0.02)
    # Shrinkage moves every estimate towards the prior mean and never past it.
    result = shrunken_rates(x, n)
    prior_mean = result.a / (result.a + result.b)
    raw, shrunk = result.table["rate"], result.table["shrunken"]
    assert np.all(np.abs(shrunk - prior_mean) <= np.abs(raw - prior_mean) + 1e-12)


def test_a_group_with_no_denominator_gets_the_prior():
    x, n, _ = _planted_groups(5)
    result = shrunken_rates(np.append(x, 0), np.append(n, 0))
    empty = result.table.iloc[-1]
    assert np.isnan(empty["rate"])
    assert empty["shrunken"] == pytest.approx(result.a / (result.a + result.b))
    assert empty["low"] == pytest.approx(stats.beta.ppf(0.025, result.a, result.b))
    assert empty["high"] == pytest.approx(stats.beta.ppf(0.975, result.a, result.b))


def test_no_spread_between_groups_shrinks_everyone_to_the_overall_rate():
    # Identical rates in every group: the between-group variance estimate is negative, so the prior falls back to
    # the pooled rate's own (Jeffreys) posterior, Beta(X + 1/2, N - X + 1/2).
    x, n = np.array([10, 20, 30, 40]), np.array([100, 200, 300, 400])
    result = shrunken_rates(x, n)
    assert (result.a, result.b) == (100.5, 900.5)
    assert result.table["shrunken"].to_numpy() == pytest.approx(0.1, abs=0.001)
    # No events at all: still a proper prior and finite intervals.
    none = shrunken_rates([0, 0, 0], [10, 20, 30])
    assert (none.a, none.b) == (0.5, 60.5)
    assert np.all(np.isfinite(none.table[["shrunken", "low", "high"]].to_numpy()))


# --- rank intervals ---------------------------------------------------------------------------------------------


def test_a_clearly_highest_group_ranks_first():
    rng = np.random.default_rng(8)
    n = np.append(rng.integers(50, 500, size=40), 5000)
    x = rng.binomial(n, np.append(np.full(40, 0.1), 0.3))
    ranks = rank_intervals(x, n)
    assert list(ranks.columns) == ["x", "n", "shrunken", "rank_median", "rank_low", "rank_high"]
    top = ranks.iloc[-1]
    assert (top["rank_low"], top["rank_median"], top["rank_high"]) == (1, 1, 1)


def test_tiny_groups_get_wide_rank_intervals_and_large_groups_narrower():
    rng = np.random.default_rng(12)
    n = np.append(np.full(30, 3), np.full(30, 3000))
    truth = np.append(rng.beta(10, 90, size=30), rng.beta(10, 90, size=30))
    ranks = rank_intervals(rng.binomial(n, truth), n, draws=1000)
    width = ranks["rank_high"] - ranks["rank_low"]
    assert width.iloc[:30].min() > 30  # a group of three could sit almost anywhere among sixty
    assert width.iloc[:30].median() > 2 * width.iloc[30:].median()
    assert np.all((ranks["rank_low"] <= ranks["rank_median"]) & (ranks["rank_median"] <= ranks["rank_high"]))
    assert ranks[["rank_low", "rank_high"]].to_numpy().min() >= 1
    assert ranks[["rank_low", "rank_high"]].to_numpy().max() <= 60


def test_rank_intervals_are_deterministic_for_a_seed():
    x, n, _ = _planted_groups(6, groups=50)
    labels = pd.Index([f"officer {i}" for i in range(50)])
    first = rank_intervals(pd.Series(x, index=labels), pd.Series(n, index=labels), draws=500, seed=1)
    again = rank_intervals(pd.Series(x, index=labels), pd.Series(n, index=labels), draws=500, seed=1)
    other = rank_intervals(x, n, draws=500, seed=2)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.index) == list(labels)
    assert not np.array_equal(first["rank_median"].to_numpy(), other["rank_median"].to_numpy()) or not np.array_equal(
        first["rank_low"].to_numpy(), other["rank_low"].to_numpy()
    )


@settings(max_examples=80, deadline=None)
@given(
    n1=st.integers(1, 300), n0=st.integers(1, 300), s1=st.floats(0, 1), s0=st.floats(0, 1),
    kind=st.sampled_from(["proportion", "poisson"]),
)
def test_comparisons_contain_their_own_estimates(n1, n0, s1, s0, kind):
    x1, x0 = round(s1 * n1), round(s0 * n0)
    d = rate_difference(x1, n1, x0, n0)
    assert -1 <= d.low <= d.difference <= d.high <= 1
    r = rate_ratio(x1, n1, x0, n0, kind=kind)
    if x1 + x0 == 0:
        assert math.isnan(r.ratio)
    else:
        assert 0 <= r.low <= r.ratio <= r.high


# --- calibrated funnel verdicts ---------------------------------------------------------------------------------


def test_binomial_mid_p_by_hand():
    # 4 of 10 against 10%: P(X >= 5) = 0.0016349374, P(X = 4) = 210 * 0.1^4 * 0.9^6 = 0.0111602610.
    high, low = midp_values(4, 10, 0.1)
    assert high == pytest.approx(0.0016349374 + 0.0111602610 / 2, abs=1e-10)
    assert low == pytest.approx(1 - (0.0016349374 + 0.0111602610 / 2), abs=1e-10)  # mid-p tails sum to 1


def test_poisson_mid_p_by_hand():
    # 6 observed where 2 are expected: P(X = 6) = e^-2 2^6 / 720 = 0.0120298, P(X >= 7) = 0.0045338.
    high, low = midp_values(6, 2.0, 1.0, kind="poisson")
    assert high == pytest.approx(0.0045338 + 0.0120298 / 2, abs=1e-6)
    assert high + low == pytest.approx(1.0)
    # Zero observed: the lower mid-p is half the chance of a zero.
    assert midp_values(0, 3.0, 1.0, kind="poisson")[1] == pytest.approx(math.exp(-3) / 2)


def test_benjamini_hochberg_by_hand():
    # Sorted 0.005, 0.01, 0.03, 0.04 (m = 4): p * m / rank = 0.02, 0.02, 0.04, 0.04, already monotone.
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(q[:4], [0.02, 0.04, 0.04, 0.02])
    assert np.isnan(q[4])
    # The step-up makes q monotone in p: 0.001, 0.04 (m = 2) give 0.002 and 0.04.
    np.testing.assert_allclose(benjamini_hochberg([0.04, 0.001]), [0.04, 0.002])


@pytest.mark.parametrize(("p", "kind"), [(0.05, "proportion"), (0.3, "proportion"), (0.05, "poisson")])
def test_a_count_is_beyond_the_drawn_limit_exactly_when_its_mid_p_is_below_the_tail(p, kind):
    for n in (30, 31, 47, 100, 333, 1000):
        x = np.arange(0, n + 1)
        limits = calibrated_limits([n], p, levels=(0.998,), kind=kind)
        high, low = midp_values(x, np.full(x.shape, n), p, kind)
        above = x / n > limits["high_998"].iloc[0] + 1e-12
        below = x / n < limits["low_998"].iloc[0] - 1e-12
        np.testing.assert_array_equal(above, high < 0.001)
        np.testing.assert_array_equal(below, low < 0.001)


def test_mid_p_limits_are_half_a_count_outside_spiegelhalters_interpolated_ones():
    n = np.array([30, 200, 1000])
    interpolated = funnel_limits(n, 0.1, levels=(0.998,))
    mid = calibrated_limits(n, 0.1, levels=(0.998,))
    np.testing.assert_allclose(mid["high_998"], interpolated["high_998"] + 0.5 / n)


def test_one_injured_report_out_of_one_is_never_judged():
    x = np.array([1, 3, 29] + [50] * 40)
    n = np.array([1, 3, 29] + [1000] * 40)
    frame = judge_funnel(x, n).table
    assert list(frame["flag"][:3]) == [TOO_FEW] * 3  # every report injured, but too few to judge
    assert not frame["judged"][:3].any() and frame["q_value"][:3].isna().all()
    assert frame["judged"][3:].all()


def test_small_groups_are_left_out_of_the_multiple_comparison_family():
    rng = np.random.default_rng(4)
    n = np.concatenate([np.full(50, 500), rng.integers(1, FUNNEL_MIN_VOLUME, size=500)])
    x = rng.binomial(n, 0.1)
    x[0] = 110  # one large group well above 10% (z about 4.5)
    verdicts = judge_funnel(x, n)
    assert verdicts.judged == 50
    assert verdicts.expected_by_chance == pytest.approx(0.05)
    assert verdicts.table["flag"].iloc[0] == HIGHER


def test_one_hot_borough_neither_hides_itself_nor_makes_normal_boroughs_lower():
    # Ten boroughs of 20,000 reports, nine at 5% and one at 15% (3x). The pooled rate is 6%: against it every normal
    # borough would be 6 standard errors low.
    n = np.full(10, 20_000)
    x = np.array([1000] * 9 + [3000])
    naive = flag_outliers(x, n)
    assert (naive["flag"] == LOWER).sum() == 9  # the bug: the hot borough's pull makes the others "lower"
    verdicts = judge_funnel(x, n)
    flags = verdicts.table["flag"]
    assert flags.iloc[9] == HIGHER
    assert (flags.iloc[:9] == AVERAGE).all()
    assert verdicts.table["target"].iloc[9] == pytest.approx(0.05)  # the others' rate, itself left out
    assert verdicts.target == pytest.approx(0.05, abs=0.002)  # the line drawn sits near the normal boroughs


def test_a_group_is_judged_against_the_others_not_itself():
    # One force with half the reports at 6%, the rest at 5%: against a pooled rate that includes it (5.5%) it is
    # 3.4 standard errors high (not beyond 99.8%), against the others 6.5.
    n = np.array([100_000] + [5000] * 20)
    x = np.array([6000] + [250] * 20)
    verdicts = judge_funnel(x, n)
    assert verdicts.table["target"].iloc[0] == pytest.approx(0.05)
    assert verdicts.table["flag"].iloc[0] == HIGHER
    assert (verdicts.table["flag"].iloc[1:] == AVERAGE).all()


def test_robust_target_weights_only_judged_groups_beyond_the_huber_constant():
    target, weights = robust_target([1000] * 9 + [3000], [20_000] * 10)
    assert weights[:9].tolist() == [1.0] * 9 and weights[9] < 0.2
    z = (0.15 - target) / math.sqrt(target * (1 - target) / 20_000)
    assert weights[9] == pytest.approx(3 / z, rel=1e-6)


def test_overdispersion_is_applied_when_groups_vary_beyond_chance_and_tests_with_the_added_variance():
    rng = np.random.default_rng(5)
    n = rng.integers(300, 3000, size=400)
    x = rng.binomial(n, rng.beta(30, 270, size=400))  # sd of true rates about 0.017 around 0.1
    plain = judge_funnel(x, n, overdispersion=False)
    verdicts = judge_funnel(x, n)
    assert verdicts.applied and verdicts.overdispersion.p_value < 0.05 and verdicts.overdispersion.tau2 > 0
    assert not plain.applied
    assert (verdicts.table["flag"] != AVERAGE).sum() < (plain.table["flag"] != AVERAGE).sum()
    # Each group's p-value is the larger of the exact mid-p and the random-effects normal one.
    row = verdicts.table.iloc[int(np.argmax(x / n))]
    z = (row["rate"] - row["target"]) / math.sqrt(row["target"] * (1 - row["target"]) / row["n"]
                                                   + verdicts.overdispersion.tau2)
    exact = midp_values(row["x"], row["n"], row["target"])[0]
    assert row["p_high"] == pytest.approx(max(exact, stats.norm.sf(z)))


def test_no_overdispersion_is_applied_to_binomial_groups():
    applied = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = rng.integers(30, 2000, size=300)
        applied += judge_funnel(rng.binomial(n, 0.08), n).applied
    assert applied <= 3  # the chi-square test of phi at 5%: about 1 in 20 by chance (winsorising makes it fewer)


def test_null_binomial_groups_are_flagged_at_most_at_the_nominal_rate():
    # 20 x 2,000 groups at one rate, volumes from the minimum up: mid-p limits alone cross at about 0.1% per tail;
    # with the false discovery rate on top, chance flags almost vanish.
    crossed = flagged = judged = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        n = rng.integers(FUNNEL_MIN_VOLUME, 600, size=2000)
        table = judge_funnel(rng.binomial(n, 0.05), n).table
        crossed += int((table["p_high"] < 0.001).sum())
        flagged += int((table["flag"] == HIGHER).sum())
        judged += int(table["judged"].sum())
    assert crossed / judged <= 0.0015
    assert flagged / judged <= 0.0005


def test_observed_against_expected_counts_uses_poisson_mid_p_on_the_ratio():
    rng = np.random.default_rng(8)
    expected = rng.uniform(2, 40, size=300)
    volume = np.full(300, 100)
    observed = rng.poisson(expected)
    observed[7] = int(round(3 * expected[7])) + 10  # a planted 3x group
    verdicts = judge_funnel(observed, volume, expected=expected)
    table = verdicts.table
    assert verdicts.kind == "poisson"
    assert table["rate"].to_numpy() == pytest.approx(observed / expected)  # the O / E ratio
    assert table["flag"].iloc[7] == HIGHER
    assert (table["flag"] == HIGHER).sum() == 1 and (table["flag"] == LOWER).sum() == 0
    row = table.iloc[3]
    assert row["p_high"] == pytest.approx(midp_values(row["x"], row["size"], row["target"], "poisson")[0])
    # The target ratio for a group is the others' observed over their expected, the planted group down-weighted.
    _, w = robust_target(observed, expected, kind="poisson")
    assert w[7] < 0.5 and np.median(w) == 1
    others = np.arange(300) != 3
    assert table["target"].iloc[3] == pytest.approx((w * observed)[others].sum() / (w * expected)[others].sum())


def test_expected_counts_must_match_the_groups():
    with pytest.raises(ValueError, match="differ in length"):
        judge_funnel([1, 2], [30, 30], expected=[1.0])


def test_the_beta_binomial_prior_is_the_optimum_itself_not_where_the_optimiser_stopped() -> None:
    # SLSQP stops a few parts in ten million (on a flat top, per cent) from the optimum, where depending on the
    # processor's rounding: officers' simulated rank intervals then moved between machines. At the optimum the
    # likelihood's gradient in (a, b) vanishes.
    from scipy import special

    from lib.analysis.stats import beta_binomial_prior

    rng = np.random.default_rng(11)
    for spread in (40.0, 3000.0):  # a clear prior, and one close to pooling (the flat case)
        n = rng.integers(20, 400, 3000)
        x = rng.binomial(n, rng.beta(0.05 * spread, 0.95 * spread, n.size))
        prior = beta_binomial_prior(x, n)
        assert not prior.pooled
        a, b = prior.a, prior.b
        common = special.digamma(a + b) - special.digamma(n + a + b)
        da = np.sum(special.digamma(x + a) - special.digamma(a) + common)
        db = np.sum(special.digamma(n - x + b) - special.digamma(b) + common)
        scale = np.sum(np.abs(special.digamma(x + a) - special.digamma(a)))
        assert abs(da) < 1e-9 * scale and abs(db) < 1e-9 * scale
