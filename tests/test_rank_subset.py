"""Ranking only the officers shown: the full sampler gives them exactly the full ranking's figures, the counts sampler
the same distribution of ranks (Monte Carlo noise only), and planted leaders their true places."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import special
from scipy import stats as sps

from lib import synth
from lib.analysis import risk, stats
from lib.analysis.stats import _ranks_by_counts, _ranks_by_draws, _ranks_of
from lib.engine.query import UNRESTRICTED, Filters


def _groups(seed: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    # Many tiny groups (ties in x and n, so equal posteriors) beside some large ones, and a rare outcome.
    rng = np.random.default_rng(seed)
    n = np.where(rng.random(groups) < 0.8, rng.integers(1, 4, groups), rng.integers(20, 400, groups))
    return rng.binomial(n, rng.beta(2, 60, groups)), n


def _picks(groups: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([[0, groups - 1], rng.choice(groups, 13, replace=False)])


@pytest.mark.parametrize(("groups", "draws", "seed"), [(3000, 1000, 0), (4500, 700, 3), (40, 50, 1)])
def test_the_subset_equals_the_full_ranking_for_the_chosen_groups(groups, draws, seed):
    # 3000 groups: 666 draws a chunk, so the subset must cross chunk boundaries as the full ranking does.
    x, n = _groups(seed, groups)
    labels = [f"OF{i:05d}" for i in range(groups)]
    x, n = pd.Series(x, index=labels), pd.Series(n, index=labels)
    full = stats.rank_intervals(x, n, draws=draws, seed=seed)
    picks = _picks(groups, seed)
    subset = stats.rank_intervals(x, n, draws=draws, seed=seed, only=picks, sampler="full")
    pd.testing.assert_frame_equal(subset, full.iloc[picks], check_exact=True)


def test_draws_underflowing_to_zero_are_ranked_as_the_full_ranking_ranks_them():
    # A prior with a tiny a makes most draws for groups with no events exactly 0: ties broken by the random draw.
    x, n = _groups(5, 2500)
    fitted = stats.shrunken_rates(x, n)
    skewed = dataclasses.replace(fitted, a=1e-4)
    full = stats.rank_intervals(x, n, draws=900, seed=2, shrinkage=skewed)
    zeros = np.random.default_rng(2).beta(skewed.a + x, skewed.b + n - x) == 0
    assert zeros.mean() > 0.3  # the case is really exercised
    picks = np.concatenate([np.flatnonzero(x == 0)[:10], _picks(2500, 5)])
    subset = stats.rank_intervals(x, n, draws=900, seed=2, shrinkage=skewed, only=picks, sampler="full")
    pd.testing.assert_frame_equal(subset, full.iloc[picks], check_exact=True)
    # The zeros are spread over the bottom places, not all given the same rank.
    assert full.loc[x == 0, "rank_high"].nunique() > 1


@pytest.mark.parametrize("seed", [0, 3])
def test_the_counts_sampler_draws_each_chosen_rank_from_the_full_rankings_distribution(seed):
    # 3000 groups, most in classes of hundreds of identical (x, n): the binomial counts are really used.
    x, n = _groups(seed, 3000)
    fit = stats.shrunken_rates(x, n)
    post_a, post_b = fit.a + x, fit.b + n - x
    picks = _picks(3000, seed)
    _, members = np.unique(np.column_stack([x, n]), axis=0, return_counts=True)
    assert members.max() >= stats._COUNTED_PER_CHOSEN * picks.size
    counted = _ranks_by_counts(post_a, post_b, np.column_stack([x, n]), picks, 2000, np.random.default_rng(seed))
    drawn = _ranks_by_draws(post_a, post_b, picks, 2000, np.random.default_rng(seed + 100))
    # Two samples of 2000 ranks per group from the same distribution: a two-sample KS test at 1e-4 each (15 tests;
    # a wrong count, such as counting the chosen group itself or ignoring a class, fails by far).
    for col in range(picks.size):
        assert sps.ks_2samp(counted[:, col], drawn[:, col]).pvalue > 1e-4, col
        assert abs(np.mean(counted[:, col]) - np.mean(drawn[:, col])) < 5 * np.std(drawn[:, col]) / np.sqrt(1000)


def test_among_identical_groups_each_place_is_equally_likely_and_none_beyond_the_last():
    # 300 groups with the same (x, n): a chosen group is drawn itself and is counted out of its class, so its place
    # is uniform on 1..300.
    x, n = np.full(300, 3), np.full(300, 40)
    fit = stats.shrunken_rates(x, n)
    picks = np.array([0, 7, 299])
    ranks = _ranks_by_counts(fit.a + x, fit.b + n - x, np.column_stack([x, n]), picks, 3000,
                             np.random.default_rng(4))
    assert ranks.min() >= 1 and ranks.max() <= 300
    for col in range(picks.size):
        assert sps.kstest(ranks[:, col], sps.randint(1, 301).cdf).pvalue > 1e-4


def test_planted_leaders_get_intervals_covering_their_true_places_close_to_the_full_ranking():
    # 2000 officers at 5% with 40 or 50 reports (classes of identical posteriors) and 8 with many reports at clearly
    # higher, well-separated rates: their true places are 1..8, and the intervals of both samplers say so.
    rng = np.random.default_rng(11)
    n = np.append(rng.choice([40, 50], 2000), np.full(8, 4000))
    truth = np.append(np.full(2000, 0.05), np.linspace(0.40, 0.26, 8))
    x = rng.binomial(n, truth)
    picks = np.arange(2000, 2008)
    counted = stats.rank_intervals(x, n, draws=1000, seed=1, only=picks)
    full = stats.rank_intervals(x, n, draws=1000, seed=1, only=picks, sampler="full")
    places = np.arange(1, 9)
    assert np.all((counted["rank_low"] <= places) & (places <= counted["rank_high"]))
    assert np.abs(counted["rank_low"] - full["rank_low"]).max() <= 2
    assert np.abs(counted["rank_high"] - full["rank_high"]).max() <= 2
    assert (counted["rank_high"] <= 10).all()  # no small officer overtakes them


def test_ties_among_drawn_groups_are_broken_at_random_in_the_counts_sampler():
    # A prior with a tiny a: most draws of groups with no events underflow to exactly 0, and tie.
    x, n = _groups(5, 2500)
    skewed = dataclasses.replace(stats.shrunken_rates(x, n), a=1e-4)
    zeros = np.flatnonzero(x == 0)[:10]
    ranks = stats.rank_intervals(x, n, draws=500, seed=2, shrinkage=skewed, only=zeros)
    # Spread over the bottom places, not all given the worst one.
    assert ranks["rank_low"].min() < ranks["rank_high"].max()
    assert ranks["rank_high"].max() <= 2500


def test_an_unknown_sampler_is_refused():
    x, n = _groups(7, 50)
    with pytest.raises(ValueError, match="sampler"):
        stats.rank_intervals(x, n, draws=10, only=[1], sampler="guess")


def test_places_match_the_lexsort_with_equal_draws_equal_tie_breaks_and_missing_draws():
    rng = np.random.default_rng(4)
    sample = rng.choice([0.0, 0.1, 0.2, np.nan], size=(60, 30))
    tiebreak = rng.choice([0.25, 0.5, 0.75], size=(60, 30))  # equal tie-breaks: the lower position goes first
    order = np.lexsort((tiebreak, -sample), axis=-1)
    places = np.empty_like(order)
    np.put_along_axis(places, order, np.broadcast_to(np.arange(1, 31), order.shape), axis=1)
    chosen = np.arange(30)
    assert np.array_equal(_ranks_of(sample.copy(), tiebreak, chosen), places)


def test_reusing_a_fit_gives_the_same_ranks():
    x, n = _groups(6, 500)
    once = stats.rank_intervals(x, n, draws=300, seed=9)
    reused = stats.rank_intervals(x, n, draws=300, seed=9, shrinkage=stats.shrunken_rates(x, n))
    pd.testing.assert_frame_equal(once, reused, check_exact=True)


def test_no_groups_chosen_gives_an_empty_table():
    x, n = _groups(7, 100)
    assert stats.rank_intervals(x, n, draws=100, only=[]).empty


def test_the_officers_listed_get_the_rank_intervals_of_ranking_everyone_within_monte_carlo_noise(engine):
    data = synth.generate(40_000, seed=7)
    ds = engine.add("ranks listed", data.reports, data.tactics, data.officers, key="rank_subset7")
    exposure = risk.officer_exposure(engine, ds, Filters(), UNRESTRICTED, "officer_injured")
    assert exposure.differ and len(exposure.table) == 15
    # What officer_exposure computed before: every officer ranked, sorted by id, the listed ones looked up; twice,
    # with two seeds, to see how far Monte Carlo noise alone moves the intervals.
    frame = risk.by_officer(engine, ds, Filters(), UNRESTRICTED)
    frame = frame[frame["officer_injured_answered"] > 0].sort_values("officer", kind="stable")
    x, n = frame["officer_injured_yes"].to_numpy(), frame["officer_injured_answered"].to_numpy()
    full = []
    for seed in (0, 1):
        ranks = stats.rank_intervals(x, n, draws=1000, seed=seed)
        ranks.index = frame["officer"].to_numpy()
        full.append(ranks.loc[exposure.table["officer"], ["rank_low", "rank_high"]].to_numpy())
    listed = exposure.table[["rank_low", "rank_high"]].to_numpy()
    noise = np.abs(full[1] - full[0]).max(axis=0)
    assert (np.abs(listed - full[0]).max(axis=0) <= 2 * noise + 2).all(), (listed, full[0], noise)
    columns = list(exposure.table.columns)
    assert columns[columns.index("shrunken"):columns.index("officers") + 1] == [
        "shrunken", "low", "high", "rank_low", "rank_high", "officers"]
    assert (exposure.table["officers"] == exposure.officers).all()
    engine.drop(ds)


def test_pair_classes_are_numpys_unique_rows_and_intervals_are_per_group_quantiles():
    x, n = _groups(8, 4000)
    first, back, members = stats._pair_classes(x.astype(float), n.astype(float))
    rows, index, inverse, counts = np.unique(np.column_stack([x, n]), axis=0, return_index=True,
                                             return_inverse=True, return_counts=True)
    assert np.array_equal(np.column_stack([x, n])[first], rows)
    assert np.array_equal(back, inverse.reshape(-1)) and np.array_equal(members, counts)
    fit = stats.shrunken_rates(x, n)
    a, b = fit.a + x, fit.b + n - x
    tail = (1 - 0.95) / 2  # as shrunken_rates computes it (not exactly 0.025)
    assert np.array_equal(fit.table["low"].to_numpy(), sps.beta.ppf(tail, a, b))
    assert np.array_equal(fit.table["high"].to_numpy(), sps.beta.ppf(1 - tail, a, b))


def test_interpolated_class_cdfs_miscount_fewer_groups_than_the_tolerance():
    # Classes of thousands of members with sharp posteriors (many reports): the hardest case for the grid.
    rng = np.random.default_rng(13)
    a, b = 2 + rng.integers(0, 60, 40).astype(float), 400 + rng.integers(0, 900, 40).astype(float)
    members = rng.integers(500, 5000, 40)
    draws = rng.beta(a[:15], b[:15], size=(2000, 15))
    cdf = stats._ClassCdf(a, b, members, draws)
    assert cdf.grid is not None  # interpolated, not the exact fallback
    error = np.abs(cdf(draws) - special.betainc(a, b, draws[..., None])).max(axis=(0, 1))
    assert float(np.sum(error * members)) <= stats.RANK_COUNT_TOLERANCE
    # A draw on 0 (an underflow) cannot be interpolated: exact values instead.
    draws[0, 0] = 0.0
    exact = stats._ClassCdf(a, b, members, draws)
    assert exact.grid is None
    np.testing.assert_array_equal(exact(draws), special.betainc(a, b, draws[..., None]))
