"""Intervals checked against published values (Newcombe 1998, Table I, method 3: Wilson score)."""
from __future__ import annotations

import numpy as np
import pytest

from lib.analysis.stats import wilson_interval


@pytest.mark.parametrize(("x", "n", "low", "high"), [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombe(x, n, low, high):
    lo, hi = wilson_interval(x, n)
    assert float(lo) == pytest.approx(low, abs=1e-4)
    assert float(hi) == pytest.approx(high, abs=1e-4)


def test_wilson_is_vectorised_and_undefined_without_trials():
    lo, hi = wilson_interval(np.array([0, 5, 10, 0]), np.array([10, 10, 10, 0]))
    assert lo[0] == 0.0 and hi[2] == 1.0
    assert lo[1] == pytest.approx(1 - hi[1])  # symmetric at one half
    assert np.isnan(lo[3]) and np.isnan(hi[3])


def test_wilson_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    p, n = 0.05, 400
    x = rng.binomial(n, p, size=4000)
    lo, hi = wilson_interval(x, np.full_like(x, n))
    coverage = np.mean((lo <= p) & (p <= hi))
    assert 0.93 <= coverage <= 0.97
