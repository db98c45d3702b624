"""Ranking only the officers shown gives them exactly the rank intervals the full ranking gives them."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lib import synth
from lib.analysis import risk, stats
from lib.analysis.stats import _ranks_of
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
    subset = stats.rank_intervals(x, n, draws=draws, seed=seed, only=picks)
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
    subset = stats.rank_intervals(x, n, draws=900, seed=2, shrinkage=skewed, only=picks)
    pd.testing.assert_frame_equal(subset, full.iloc[picks], check_exact=True)
    # The zeros are spread over the bottom places, not all given the same rank.
    assert full.loc[x == 0, "rank_high"].nunique() > 1


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


def test_the_officers_listed_keep_the_rank_intervals_of_ranking_everyone(engine):
    data = synth.generate(40_000, seed=7)
    ds = engine.add("ranks listed", data.reports, data.tactics, data.officers, key="rank_subset7")
    exposure = risk.officer_exposure(engine, ds, Filters(), UNRESTRICTED, "officer_injured")
    assert exposure.differ and len(exposure.table) == 15
    # What officer_exposure computed before: every officer ranked, sorted by id, the listed ones looked up.
    frame = risk.by_officer(engine, ds, Filters(), UNRESTRICTED)
    frame = frame[frame["officer_injured_answered"] > 0].sort_values("officer", kind="stable")
    full = stats.rank_intervals(frame["officer_injured_yes"].to_numpy(), frame["officer_injured_answered"].to_numpy(),
                                draws=1000, seed=0)
    full.index = frame["officer"].to_numpy()
    expected = full.loc[exposure.table["officer"], ["rank_low", "rank_high"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(exposure.table[["rank_low", "rank_high"]], expected, check_exact=True)
    columns = list(exposure.table.columns)
    assert columns[columns.index("shrunken"):columns.index("officers") + 1] == [
        "shrunken", "low", "high", "rank_low", "rank_high", "officers"]
    assert (exposure.table["officers"] == exposure.officers).all()
    engine.drop(ds)
