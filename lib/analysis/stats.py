"""Statistics for honest numbers: intervals, rate ratios, funnel limits, overdispersion, shrinkage and ranks.

Methods, chosen once here so every page says the same thing:
- Proportions: Wilson score (`wilson_interval`) for display, Clopper-Pearson (`exact_binomial_interval`) where an
  exact interval is wanted; rates per exposure: exact Poisson (gamma quantiles).
- Risk ratio: Katz log interval; a 0.5 continuity correction is added to all four cells only when a group has no
  events. Rate ratio: exact conditional interval (Clopper-Pearson on x1 of x1 + x0, mapped back with the exposures).
  Risk difference: Newcombe (1998) hybrid score interval, method 10.
- Funnel limits: Spiegelhalter (2005) exact binomial / Poisson limits with his interpolation between the discrete
  quantiles (Statist. Med. 24:1185, appendix A.1.1; the PHE / ONS funnel guidance uses the same). Overdispersion:
  Spiegelhalter (2005) "Handling over-dispersion of performance indicators" -- z-scores winsorised at 10%/90%,
  phi = mean squared z, and the DerSimonian-Laird additive random-effects tau^2; the widened limits are
  overall +/- z * sqrt(s^2 + tau^2) (not the multiplicative sqrt(phi) version).
- Shrinkage: empirical-Bayes beta-binomial with the Beta prior estimated by the method of moments.

scipy is imported inside the functions that need it: this module is imported at app start.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

Kind = Literal["proportion", "poisson"]

# Below this many answered reports a rate is too uncertain to compare (charts draw it grey).
MIN_DENOMINATOR = 30
HIGHER = "higher than expected"
LOWER = "lower than expected"
AVERAGE = "not distinguishable from the average"


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


def exact_binomial_interval(
    successes: ArrayLike, trials: ArrayLike, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Return the Clopper-Pearson interval for successes out of trials (NaN where trials is 0)."""
    from scipy.stats import beta

    x = np.asarray(successes, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    tail = (1 - level) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(x > 0, beta.ppf(tail, x, n - x + 1), 0.0)
        high = np.where(x < n, beta.ppf(1 - tail, x + 1, n - x), 1.0)
    valid = (n > 0) & (x >= 0) & (x <= n)
    return np.where(valid, low, np.nan), np.where(valid, high, np.nan)


def poisson_rate_interval(
    events: ArrayLike, exposure: ArrayLike, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the rate per unit of exposure and its exact Poisson interval (NaN where exposure is 0)."""
    from scipy.stats import gamma

    x = np.asarray(events, dtype="float64")
    e = np.asarray(exposure, dtype="float64")
    tail = (1 - level) / 2
    # Gamma quantiles are the chi-square ones halved: low = chi2(tail, 2x) / 2, high = chi2(1 - tail, 2x + 2) / 2.
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(x > 0, gamma.ppf(tail, x), 0.0) / e
        high = gamma.ppf(1 - tail, x + 1) / e
        rate = x / e
    valid = (e > 0) & (x >= 0)
    return tuple(np.where(valid, v, np.nan) for v in (rate, low, high))  # type: ignore[return-value]


@dataclass(frozen=True)
class Ratio:
    """A ratio of two rates (group 1 over group 0) with its interval and the counts behind it."""

    ratio: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    x1: float | np.ndarray
    n1: float | np.ndarray
    x0: float | np.ndarray
    n0: float | np.ndarray


@dataclass(frozen=True)
class Difference:
    """A difference of two proportions (group 1 minus group 0) with its interval and the counts behind it."""

    difference: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    x1: float | np.ndarray
    n1: float | np.ndarray
    x0: float | np.ndarray
    n0: float | np.ndarray


def rate_ratio(
    x1: ArrayLike, n1: ArrayLike, x0: ArrayLike, n0: ArrayLike, level: float = 0.95, kind: Kind = "proportion"
) -> Ratio:
    """Compare x1/n1 with x0/n0 as a risk ratio (Katz) or a Poisson rate ratio (exact conditional)."""
    _check_kind(kind)
    a1, m1, a0, m0 = (np.asarray(v, dtype="float64") for v in (x1, n1, x0, n0))
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "proportion":
            # A zero event count makes the log ratio and its Katz variance infinite: add 0.5 to each of the four
            # cells (events and non-events in both groups) for those comparisons only. Zero non-events need no
            # correction. No events in either group carries no information about the ratio: NaN.
            fix = ((a1 == 0) | (a0 == 0)).astype("float64") * 0.5
            c1, d1, c0, d0 = a1 + fix, m1 + 2 * fix, a0 + fix, m0 + 2 * fix
            ratio = (c1 / d1) / (c0 / d0)
            se = np.sqrt(1 / c1 - 1 / d1 + 1 / c0 - 1 / d0)
            low, high = ratio * np.exp(-z * se), ratio * np.exp(z * se)
            valid = (m1 > 0) & (m0 > 0) & (a1 + a0 > 0)
        else:
            # Given x1 + x0 events, x1 is binomial with p = n1 R / (n1 R + n0): an exact interval for p maps to
            # one for R through R = p / (1 - p) * n0 / n1.
            lo_p, hi_p = exact_binomial_interval(a1, a1 + a0, level)
            ratio = (a1 / m1) / (a0 / m0)
            low = lo_p / (1 - lo_p) * m0 / m1
            high = np.where(hi_p >= 1, np.inf, hi_p / (1 - hi_p) * m0 / m1)
            valid = (m1 > 0) & (m0 > 0) & (a1 + a0 > 0)
    ratio, low, high = (np.where(valid, v, np.nan) for v in (ratio, low, high))
    return Ratio(*(_unwrap(v) for v in (ratio, low, high, a1, m1, a0, m0)))


def rate_difference(x1: ArrayLike, n1: ArrayLike, x0: ArrayLike, n0: ArrayLike, level: float = 0.95) -> Difference:
    """Compare x1/n1 with x0/n0 as a difference of proportions with Newcombe's hybrid score interval."""
    a1, m1, a0, m0 = (np.asarray(v, dtype="float64") for v in (x1, n1, x0, n0))
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p0 = a1 / m1, a0 / m0
    l1, u1 = wilson_interval(a1, m1, level)
    l0, u0 = wilson_interval(a0, m0, level)
    # Newcombe (1998) method 10: combine each group's Wilson distances from its estimate.
    diff = p1 - p0
    low = diff - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = diff + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    valid = (m1 > 0) & (m0 > 0)
    diff, low, high = (np.where(valid, v, np.nan) for v in (diff, low, high))
    return Difference(*(_unwrap(v) for v in (diff, low, high, a1, m1, a0, m0)))


@dataclass(frozen=True)
class Overdispersion:
    """Spread of group rates beyond chance: phi (1 = none), DerSimonian-Laird tau2, and a chi-square p-value."""

    phi: float
    tau2: float
    groups: int
    p_value: float


def overdispersion_factor(
    x: ArrayLike, n: ArrayLike, overall: float | None = None, kind: Kind = "proportion"
) -> Overdispersion:
    """Estimate overdispersion of group rates around the overall rate (Spiegelhalter 2005, winsorised)."""
    from scipy.stats import chi2

    _check_kind(kind)
    counts, sizes = _pair(x, n)
    keep = sizes > 0
    counts, sizes = counts[keep], sizes[keep]
    groups = int(keep.sum())
    target = _overall(counts, sizes, overall)
    variance = _null_variance(target, sizes, kind)  # s_i^2 under "every group has the overall rate"
    if groups < 2 or not np.all(variance > 0):
        return Overdispersion(phi=float("nan"), tau2=0.0, groups=groups, p_value=float("nan"))
    z = (counts / sizes - target) / np.sqrt(variance)
    # Winsorise: the 10% most extreme z-scores at each end are pulled in to the 10th / 90th percentile, so the
    # estimate of spread is not driven by the very outliers the funnel is meant to find.
    low, high = np.percentile(z, [10, 90])
    phi = float(np.mean(np.clip(z, low, high) ** 2))
    w = 1 / variance
    excess = groups * phi - (groups - 1)
    tau2 = max(0.0, excess / (w.sum() - (w**2).sum() / w.sum())) if excess > 0 else 0.0
    return Overdispersion(phi=phi, tau2=float(tau2), groups=groups, p_value=float(chi2.sf(groups * phi, groups - 1)))


def funnel_limits(
    denominators: ArrayLike,
    overall_rate: float,
    levels: tuple[float, ...] = (0.95, 0.998),
    kind: Kind = "proportion",
    overdispersion: Overdispersion | float | None = None,
) -> pd.DataFrame:
    """Return funnel-plot control limits around overall_rate at each denominator, one low/high pair per level."""
    _check_kind(kind)
    if overall_rate < 0 or (kind == "proportion" and overall_rate > 1):
        raise ValueError(f"overall_rate {overall_rate} is not a valid {kind} rate")
    d = np.asarray(denominators, dtype="float64").reshape(-1)
    tau2 = overdispersion.tau2 if isinstance(overdispersion, Overdispersion) else float(overdispersion or 0.0)
    columns: dict[str, np.ndarray] = {"denominator": d}
    for level in levels:
        if tau2 > 0:
            low, high = _random_effects_limits(d, overall_rate, level, kind, tau2)
        else:
            low, high = _exact_limits(d, overall_rate, level, kind)
        label = f"{level * 100:g}".replace(".", "")
        columns[f"low_{label}"], columns[f"high_{label}"] = low, high
    return pd.DataFrame(columns)


def flag_outliers(
    x: ArrayLike,
    n: ArrayLike,
    level: float = 0.998,
    kind: Kind = "proportion",
    overdispersion: Overdispersion | float | None = None,
    overall: float | None = None,
) -> pd.DataFrame:
    """Flag groups whose rate lies outside the funnel limits at their own denominator."""
    counts, sizes = _pair(x, n)
    target = _overall(counts, sizes, overall)
    limits = funnel_limits(sizes, target, levels=(level,), kind=kind, overdispersion=overdispersion)
    low, high = limits.iloc[:, 1].to_numpy(), limits.iloc[:, 2].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(sizes > 0, counts / sizes, np.nan)
    flag = np.where(rate > high, HIGHER, np.where(rate < low, LOWER, AVERAGE))
    frame = {"x": _raw(x), "n": _raw(n), "rate": rate, "expected": sizes * target, "low": low, "high": high}
    return pd.DataFrame(frame | {"flag": flag}, index=_labels(x, n))


@dataclass(frozen=True)
class Shrinkage:
    """Shrunken group rates (columns x, n, rate, shrunken, low, high) and the Beta(a, b) prior behind them."""

    table: pd.DataFrame
    a: float
    b: float


def shrunken_rates(x: ArrayLike, n: ArrayLike, level: float = 0.95) -> Shrinkage:
    """Shrink group proportions towards the overall rate with an empirical-Bayes beta-binomial model."""
    from scipy.stats import beta

    counts, sizes = _pair(x, n)
    a, b = _beta_prior(counts, sizes)
    post_a, post_b = a + counts, b + sizes - counts
    tail = (1 - level) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(sizes > 0, counts / sizes, np.nan)
    table = pd.DataFrame(
        {
            "x": _raw(x),
            "n": _raw(n),
            "rate": rate,
            "shrunken": post_a / (post_a + post_b),
            "low": beta.ppf(tail, post_a, post_b),
            "high": beta.ppf(1 - tail, post_a, post_b),
        },
        index=_labels(x, n),
    )
    return Shrinkage(table=table, a=a, b=b)


def rank_intervals(
    x: ArrayLike, n: ArrayLike, draws: int = 2000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Rank groups by rate (1 = highest) with intervals from draws of their shrunken posteriors."""
    shrinkage = shrunken_rates(x, n, level)
    table = shrinkage.table
    groups = len(table)
    counts, sizes = _pair(x, n)
    post_a, post_b = shrinkage.a + counts, shrinkage.b + sizes - counts
    rng = np.random.default_rng(seed)
    ranks = np.empty((draws, groups), dtype="int32")
    places = np.arange(1, groups + 1, dtype="int32")
    # Chunks of draws keep memory bounded for thousands of officers; the sequence of draws, hence the result,
    # depends only on the seed.
    step = max(1, 2_000_000 // max(groups, 1))
    for start in range(0, draws, step):
        rows = min(step, draws - start)
        sample = rng.beta(post_a, post_b, size=(rows, groups))
        # Random tie-break: Beta draws can underflow to exactly 0 for very skewed posteriors.
        order = np.lexsort((rng.random((rows, groups)), -sample), axis=-1)
        np.put_along_axis(ranks[start : start + rows], order, np.broadcast_to(places, (rows, groups)), axis=1)
    tail = (1 - level) / 2
    if draws and groups:
        low, median, high = np.quantile(ranks, [tail, 0.5, 1 - tail], axis=0, method="inverted_cdf")
    else:
        low = median = high = np.full(groups, np.nan)
    return pd.DataFrame(
        {
            "x": table["x"],
            "n": table["n"],
            "shrunken": table["shrunken"],
            "rank_median": median,
            "rank_low": low,
            "rank_high": high,
        },
        index=table.index,
    )


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def _check_kind(kind: str) -> None:
    if kind not in ("proportion", "poisson"):
        raise ValueError(f"kind must be 'proportion' or 'poisson', not {kind!r}")


def _unwrap(values: np.ndarray) -> float | np.ndarray:
    return float(values) if np.ndim(values) == 0 else values


def _pair(x: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    counts = np.asarray(x, dtype="float64").reshape(-1)
    sizes = np.asarray(n, dtype="float64").reshape(-1)
    if counts.shape != sizes.shape:
        raise ValueError(f"x and n differ in length ({counts.size} and {sizes.size})")
    return counts, sizes


def _raw(values: ArrayLike) -> np.ndarray:
    # Counts go back to the caller as given (integers stay integers for display).
    return np.asarray(values).reshape(-1)


def _labels(*values: ArrayLike) -> pd.Index:
    for value in values:
        if isinstance(value, pd.Series):
            return value.index
    return pd.RangeIndex(np.asarray(values[0]).size)


def _overall(counts: np.ndarray, sizes: np.ndarray, overall: float | None) -> float:
    if overall is not None:
        return float(overall)
    total = sizes.sum()
    return float(counts.sum() / total) if total > 0 else float("nan")


def _null_variance(target: float, sizes: np.ndarray, kind: Kind) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return target * (1 - target) / sizes if kind == "proportion" else target / sizes


def _exact_limits(d: np.ndarray, target: float, level: float, kind: Kind) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

    tail = (1 - level) / 2
    if kind == "proportion":
        # The binomial needs a whole number of trials; a plotting grid of non-integers is rounded.
        size = np.rint(d)
        dist = stats.binom(np.maximum(size, 0), target)
        top = 1.0
    else:
        size = d
        dist = stats.poisson(np.maximum(target * d, 0))
        top = np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        # Spiegelhalter (2005) A.1.1: r is the smallest count with P(R <= r) >= p; the limit is (r - alpha) / n with
        # alpha = (P(R <= r) - p) / P(R = r), i.e. the p-quantile of R - U, U uniform on (0, 1), which moves the
        # limit smoothly between r - 1 and r. The upper tail uses the survival function to keep its precision.
        r = dist.ppf(tail)
        alpha = np.clip((dist.cdf(r) - tail) / dist.pmf(r), 0, 1)
        low = (r - alpha) / size
        r = dist.ppf(1 - tail)
        alpha = np.clip((tail - dist.sf(r)) / dist.pmf(r), 0, 1)
        high = (r - alpha) / size
    valid = size > 0
    return np.where(valid, np.clip(low, 0, top), np.nan), np.where(valid, np.clip(high, 0, top), np.nan)


def _random_effects_limits(
    d: np.ndarray, target: float, level: float, kind: Kind, tau2: float
) -> tuple[np.ndarray, np.ndarray]:
    # Spiegelhalter (2005), additive random effects: a group "in control" has a rate of target plus a random effect
    # of variance tau2, so the limits are target +/- z * sqrt(s^2 + tau2) on the normal (z-score) scale.
    half = _z(level) * np.sqrt(_null_variance(target, d, kind) + tau2)
    top = 1.0 if kind == "proportion" else np.inf
    low, high = np.clip(target - half, 0, top), np.clip(target + half, 0, top)
    return np.where(d > 0, low, np.nan), np.where(d > 0, high, np.nan)


def _beta_prior(counts: np.ndarray, sizes: np.ndarray) -> tuple[float, float]:
    # Method of moments for the beta-binomial, using its exact variance: with intra-group correlation
    # rho = 1 / (a + b + 1), E[sum n_i (p_i - p)^2] = mu (1 - mu) [(I - 1) + rho (N - sum n_i^2 / N - (I - 1))].
    # Solved for rho and capped so the prior never carries more information than the pooled data (a + b <= N + 1):
    # when the between-group variance estimate is <= 0 (or not estimable) every group shrinks to the overall rate,
    # with the Jeffreys posterior of the pooled rate, Beta(X + 1/2, N - X + 1/2), as the common prior.
    keep = sizes > 0
    k, m = counts[keep], sizes[keep]
    total, events, groups = m.sum(), k.sum(), int(keep.sum())
    pooled = (events + 0.5, total - events + 0.5)
    if groups < 2 or events <= 0 or events >= total:
        return pooled
    mu = events / total
    spread = np.sum(m * (k / m - mu) ** 2) / (mu * (1 - mu))
    information = total - np.sum(m**2) / total - (groups - 1)
    if information <= 0:
        return pooled
    rho = (spread - (groups - 1)) / information
    if rho <= 0:
        return pooled
    # rho >= 1 would be groups that are all-or-nothing; keep a proper (very flat) prior.
    strength = max(1 / min(rho, 1.0) - 1, 1e-2)
    if strength >= total + 1:
        return pooled
    return float(mu * strength), float((1 - mu) * strength)
