"""Statistics for honest numbers: intervals for proportions (more arrive with the risk pages)."""
from __future__ import annotations

from statistics import NormalDist

import numpy as np


def wilson_interval(
    successes: np.ndarray | float, trials: np.ndarray | float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Return the Wilson score interval for successes out of trials (NaN where trials is 0)."""
    x = np.asarray(successes, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        low = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        high = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    # Exact ends: no successes means the lower limit is 0, all successes the upper limit is 1.
    low = np.where((n > 0) & (x == 0), 0.0, low)
    high = np.where((n > 0) & (x == n), 1.0, high)
    return low, high
