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
- Shrinkage: empirical-Bayes beta-binomial with the Beta prior estimated by maximum likelihood (the marginal
  beta-binomial likelihood over groups; the method of moments is kept for comparison). Where the likelihood is
  highest at infinite precision (groups do not differ), every group shrinks to the pooled rate.
- Heterogeneity (do groups differ beyond chance?): Tarone's (1979) score test for binomial overdispersion, its
  p-value from a parametric bootstrap under the common rate, so it holds its nominal level with small groups. The
  null datasets are drawn by group size (a multinomial of the counts of the groups of each size), exactly as if
  each group were drawn, with work that grows with the distinct sizes, not the groups.
- Rank intervals: quantiles of each group's place among draws of all groups' shrunken posteriors. When only a few
  groups are ranked (the officers listed), groups with identical posteriors are counted above each chosen draw by
  one binomial draw per class (the classes' CDFs interpolated on a grid checked to miscount under 1e-3 groups a
  draw): the same distribution of each chosen place, without drawing every group.
- Same-incident comparison: observed against expected events stratified by incident, each stratum's expectation
  and hypergeometric variance as in the Mantel-Haenszel / log-rank statistic.

Funnel verdicts (`judge_funnel`), the rules every "higher / lower than expected" follows:
- Test: exact one-sided mid-p (binomial for x of n answered reports; Poisson for observed against expected counts,
  indirect standardisation), at the 99.8% level: a tail of 0.1% each side. Mid-p, because the interpolated limits
  above flag a count whenever its exact quantile is crossed by any fraction (anti-conservative at small n: 0.51% of
  teams on permuted data for a nominal 0.1%), while the plain exact test is far below nominal. The limits drawn for
  the verdict (`calibrated_limits`) are the ones this test implies: the quantiles of R + V, V uniform on (-1/2, 1/2),
  so a point lies outside a line exactly when its mid-p is below the tail.
- Minimum volume: a group with fewer than FUNNEL_MIN_VOLUME answered reports (MIN_DENOMINATOR, 30) is drawn and
  listed but never judged ("too few to judge"), and is left out of the multiple-comparison family.
- Target: each group is judged against the others, never against itself: the pooled rate of all groups with
  Huber weights (a judged group whose z-score is beyond HUBER_C = 3 counts with weight 3 / |z|; see `robust_target`),
  with the group judged then left out. One hot borough therefore neither hides itself (it is not in its own target)
  nor pulls the others' target up (its weight is cut), so no normal borough is judged "lower than expected".
  Curves on the chart are drawn around the robust target of all groups.
- Overdispersion: estimated on the judged groups around the robust target (Spiegelhalter's winsorised phi, above), and
  applied when present, meaning the chi-square test of phi gives p < OVERDISPERSION_P (0.05) and tau2 > 0. Then a
  group is also tested on the random-effects scale, z = (rate - target) / sqrt(s^2 + tau2), and its p-value is the
  larger of the exact mid-p and this one: the limits are the wider of the exact and the random-effects limits at every
  volume (random-effects limits alone are normal, and too narrow for the skewed counts of small groups).
- Multiple comparisons: Benjamini-Hochberg over both one-sided p-values of every judged group (2m hypotheses).
  "Higher than expected" needs BOTH the one-sided mid-p below 0.1% (outside the 99.8% limit on the chart) AND a
  q-value below FUNNEL_FDR (5%); "lower than expected" likewise. The limit keeps the verdict tied to the line a user
  sees; the q-value keeps the number of chance flags near zero when hundreds of teams are compared. By chance alone,
  about m x 0.001 judged groups lie above the 99.8% limit (`FunnelVerdicts.expected_by_chance`), and the page says so.

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
TOO_FEW = "too few to judge"
# Funnel verdicts: the level (two-sided; 0.1% in each tail), the minimum volume to judge a group (answered reports),
# the false-discovery rate a flag must also pass, when overdispersion counts as present, and the Huber constant of
# the robust target. See the module docstring.
FUNNEL_LEVEL = 0.998
FUNNEL_MIN_VOLUME = MIN_DENOMINATOR
FUNNEL_FDR = 0.05
OVERDISPERSION_P = 0.05
HUBER_C = 3.0


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
    """Flag groups whose rate lies outside the interpolated funnel limits at their own denominator.

    No minimum volume, no multiple-comparison control and a target that includes the group: verdicts shown to
    users come from `judge_funnel`.
    """
    counts, sizes = _pair(x, n)
    target = _overall(counts, sizes, overall)
    limits = funnel_limits(sizes, target, levels=(level,), kind=kind, overdispersion=overdispersion)
    low, high = limits.iloc[:, 1].to_numpy(), limits.iloc[:, 2].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(sizes > 0, counts / sizes, np.nan)
    flag = np.where(rate > high, HIGHER, np.where(rate < low, LOWER, AVERAGE))
    frame = {"x": _raw(x), "n": _raw(n), "rate": rate, "expected": sizes * target, "low": low, "high": high}
    return pd.DataFrame(frame | {"flag": flag}, index=_labels(x, n))


def midp_values(
    x: ArrayLike, size: ArrayLike, rate: ArrayLike, kind: Kind = "proportion"
) -> tuple[np.ndarray, np.ndarray]:
    """Return one-sided mid-p values (higher, lower) of x against Binomial(size, rate) or Poisson(size * rate)."""
    from scipy import stats as sps

    _check_kind(kind)
    counts = np.asarray(x, dtype="float64")
    sizes = np.asarray(size, dtype="float64")
    rates = np.asarray(rate, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "proportion":
            dist = sps.binom(np.rint(np.maximum(sizes, 0)), np.clip(rates, 0, 1))
        else:
            dist = sps.poisson(np.maximum(sizes * rates, 0))
        half = 0.5 * dist.pmf(counts)
        # Both tails computed directly (not 1 - the other), so a tiny p-value keeps its precision.
        high, low = dist.sf(counts) + half, dist.cdf(counts - 1) + half
    valid = (sizes > 0) & np.isfinite(rates) & np.isfinite(counts)
    return np.where(valid, high, np.nan), np.where(valid, low, np.nan)


def benjamini_hochberg(p_values: ArrayLike) -> np.ndarray:
    """Return Benjamini-Hochberg q-values (false-discovery-rate adjusted p-values); NaN p-values stay NaN."""
    p = np.asarray(p_values, dtype="float64").reshape(-1)
    q = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if not finite.size:
        return q
    order = finite[np.argsort(p[finite], kind="stable")]
    m = finite.size
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def robust_target(x: ArrayLike, n: ArrayLike, judged: ArrayLike | None = None, kind: Kind = "proportion",
                  c: float = HUBER_C) -> tuple[float, np.ndarray]:
    """Return the Huber-weighted pooled rate and each group's weight (judged groups beyond |z| = c count c / |z|)."""
    counts, sizes = _pair(x, n)
    keep = (sizes > 0) & np.isfinite(sizes) & np.isfinite(counts)
    judge = keep if judged is None else keep & np.asarray(judged, dtype=bool).reshape(-1)
    weights = keep.astype("float64")
    target = _weighted_rate(counts, sizes, weights)
    # Iteratively reweighted: z-scores against the current target give the weights, the weights the next target.
    # Groups too small to judge keep weight 1: their z-scores are far from normal (one injury in one report is
    # z = 4 at 5%), and cutting only the high ones would bias the target down.
    for _ in range(100):
        variance = _null_variance(target, sizes, kind)
        if not np.isfinite(target) or target <= 0 or (kind == "proportion" and target >= 1):
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(counts / sizes - target) / np.sqrt(variance)
            new = np.where(judge & (z > c), c / z, 1.0)
        new = np.where(keep, new, 0.0)
        updated = _weighted_rate(counts, sizes, new)
        weights = new
        if abs(updated - target) <= 1e-12 * max(target, 1e-300):
            target = updated
            break
        target = updated
    return target, weights


def calibrated_limits(
    denominators: ArrayLike,
    target: float,
    levels: tuple[float, ...] = (0.95, FUNNEL_LEVEL),
    kind: Kind = "proportion",
    tau2: float = 0.0,
) -> pd.DataFrame:
    """Return the funnel limits the mid-p verdicts imply (widened by random effects when tau2 > 0), per level."""
    _check_kind(kind)
    d = np.asarray(denominators, dtype="float64").reshape(-1)
    columns: dict[str, np.ndarray] = {"denominator": d}
    for level in levels:
        low, high = _midp_limits(d, np.full(d.shape, float(target)), level, kind, tau2)
        label = f"{level * 100:g}".replace(".", "")
        columns[f"low_{label}"], columns[f"high_{label}"] = low, high
    return pd.DataFrame(columns)


@dataclass(frozen=True)
class FunnelVerdicts:
    """Per-group funnel verdicts (`table`) and how they were reached: target, overdispersion, family size."""

    table: pd.DataFrame
    target: float
    overdispersion: Overdispersion
    applied: bool
    judged: int
    level: float
    min_volume: float
    fdr: float
    kind: Kind

    @property
    def tail(self) -> float:
        """Return the one-sided tail probability of the verdict (0.001 at 99.8%)."""
        return (1 - self.level) / 2

    @property
    def expected_by_chance(self) -> float:
        """Return how many judged groups would lie above the upper limit by chance alone."""
        return expected_by_chance(self.judged, self.level)


def expected_by_chance(judged: int, level: float = FUNNEL_LEVEL) -> float:
    """Return how many of `judged` groups would lie above the upper limit at `level` by chance alone."""
    return judged * (1 - level) / 2


def judge_funnel(
    x: ArrayLike,
    n: ArrayLike,
    *,
    expected: ArrayLike | None = None,
    kind: Kind = "proportion",
    level: float = FUNNEL_LEVEL,
    min_volume: float = FUNNEL_MIN_VOLUME,
    fdr: float = FUNNEL_FDR,
    overdispersion: bool = True,
) -> FunnelVerdicts:
    """Judge each group against a target set by the others: exact mid-p, minimum volume, overdispersion, FDR.

    x counts events of n answered reports. With `expected` (per-group expected counts from a case-mix model), each
    group's observed count is tested against its expected one (Poisson, on the observed / expected ratio); n is then
    only the volume that decides whether a group is judged.
    """
    counts, volume = _pair(x, n)
    if expected is not None:
        sizes = np.asarray(expected, dtype="float64").reshape(-1)
        if sizes.shape != counts.shape:
            raise ValueError(f"expected and x differ in length ({sizes.size} and {counts.size})")
        kind = "poisson"
    else:
        sizes = volume
    _check_kind(kind)
    tail = (1 - level) / 2
    valid = (sizes > 0) & np.isfinite(sizes) & np.isfinite(counts)
    judged = valid & (volume >= min_volume)
    target, weights = robust_target(counts, np.where(valid, sizes, 0.0), judged, kind)
    # Leave the judged group out of its own target: the others' weighted pooled rate.
    with np.errstate(divide="ignore", invalid="ignore"):
        rest_x, rest_n = (weights * counts)[valid].sum(), (weights * sizes)[valid].sum()
        own = np.where(valid, (rest_x - weights * counts) / (rest_n - weights * sizes), np.nan)
    own = np.where(np.isfinite(own), own, np.nan)
    judged &= np.isfinite(own)
    od = (overdispersion_factor(counts[judged], sizes[judged], overall=target, kind=kind)
          if judged.sum() >= 2 and np.isfinite(target) else Overdispersion(float("nan"), 0.0, int(judged.sum()),
                                                                            float("nan")))
    applied = bool(overdispersion and od.tau2 > 0 and np.isfinite(od.p_value) and od.p_value < OVERDISPERSION_P)
    tau2 = od.tau2 if applied else 0.0
    p_high, p_low = midp_values(counts, sizes, own, kind)
    if applied:
        from scipy.special import ndtr

        with np.errstate(divide="ignore", invalid="ignore"):
            z = (counts / sizes - own) / np.sqrt(_null_variance(own, sizes, kind) + tau2)
        p_high, p_low = np.fmax(p_high, ndtr(-z)), np.fmax(p_low, ndtr(z))
    # One family: both one-sided hypotheses of every judged group.
    q_high, q_low = np.full(counts.shape, np.nan), np.full(counts.shape, np.nan)
    q = benjamini_hochberg(np.concatenate([p_high[judged], p_low[judged]]))
    q_high[judged], q_low[judged] = q[: judged.sum()], q[judged.sum():]
    upper = p_high <= p_low
    p_value = np.where(judged, np.where(upper, p_high, p_low), np.nan)
    q_value = np.where(judged, np.where(upper, q_high, q_low), np.nan)
    higher = judged & (p_high < tail) & (q_high < fdr)
    lower = judged & (p_low < tail) & (q_low < fdr)
    flag = np.where(~judged, TOO_FEW, np.where(higher, HIGHER, np.where(lower, LOWER, AVERAGE)))
    low, high = _midp_limits(sizes, own, level, kind, tau2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(valid, counts / sizes, np.nan)
    table = pd.DataFrame({
        "x": _raw(x), "n": _raw(n), "size": sizes, "rate": rate, "target": own, "expected": sizes * own,
        "low": low, "high": high, "p_high": p_high, "p_low": p_low, "p_value": p_value, "q_value": q_value,
        "judged": judged, "flag": flag,
    }, index=_labels(x, n))
    return FunnelVerdicts(table=table, target=float(target), overdispersion=od, applied=applied,
                          judged=int(judged.sum()), level=level, min_volume=min_volume, fdr=fdr, kind=kind)


@dataclass(frozen=True)
class BetaPrior:
    """The Beta(a, b) prior of group rates: its mean, precision a + b (inf: groups do not differ) and method."""

    a: float
    b: float
    mean: float
    precision: float
    method: str
    # True when the fit sits at "no spread between groups": (a, b) is then the pooled rate's Jeffreys posterior.
    pooled: bool
    log_likelihood: float = float("nan")

    @property
    def spread(self) -> float:
        """Return the standard deviation of the groups' underlying rates (0 when they do not differ)."""
        if self.pooled or not np.isfinite(self.precision):
            return 0.0
        return float(np.sqrt(self.mean * (1 - self.mean) / (self.precision + 1)))


PriorMethod = Literal["likelihood", "moments"]
# Bounds of the precision a + b searched by maximum likelihood. Below 1e-2 groups are all-or-nothing; above 1e7
# betaln loses the digits that tell the beta-binomial from the binomial, which is then the better description.
_PRECISION_BOUNDS = (1e-2, 1e7)


def beta_binomial_prior(x: ArrayLike, n: ArrayLike, method: PriorMethod = "likelihood") -> BetaPrior:
    """Estimate the Beta prior of group rates by maximum likelihood (or the method of moments)."""
    counts, sizes = _pair(x, n)
    keep = sizes > 0
    k, m = counts[keep], sizes[keep]
    total, events = float(m.sum()), float(k.sum())
    pooled = _pooled_prior(events, total, method)
    if keep.sum() < 2 or events <= 0 or events >= total:
        return pooled
    if method == "moments":
        return _moment_prior(k, m, pooled)
    if method != "likelihood":
        raise ValueError(f"method must be 'likelihood' or 'moments', not {method!r}")
    return _likelihood_prior(k, m, pooled)


@dataclass(frozen=True)
class Shrinkage:
    """Shrunken group rates (columns x, n, rate, shrunken, low, high) and the Beta(a, b) prior behind them."""

    table: pd.DataFrame
    a: float
    b: float
    prior: BetaPrior | None = None


def shrunken_rates(x: ArrayLike, n: ArrayLike, level: float = 0.95, method: PriorMethod = "likelihood") -> Shrinkage:
    """Shrink group proportions towards the overall rate with an empirical-Bayes beta-binomial model."""
    from scipy.stats import beta

    counts, sizes = _pair(x, n)
    prior = beta_binomial_prior(counts, sizes, method)
    a, b = prior.a, prior.b
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
            "low": _per_pair(beta.ppf, tail, post_a, post_b),
            "high": _per_pair(beta.ppf, 1 - tail, post_a, post_b),
        },
        index=_labels(x, n),
    )
    return Shrinkage(table=table, a=a, b=b, prior=prior)


def _per_pair(quantile, level: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return quantile(level, a, b) per group, computed once per distinct (a, b): groups share few posteriors."""
    first, back, _ = _pair_classes(a, b)
    return quantile(level, a[first], b[first])[back]


def _pair_classes(first_key: np.ndarray, second_key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the distinct (first, second) pairs, in lexicographic order, as (a position of each, class of every
    position, members of each class).

    The same classes and order as np.unique(..., axis=0) on the two columns, in a small fraction of its time (it
    sorts the rows as bytes); a NaN is a class of its own.
    """
    order = np.lexsort((second_key, first_key))
    one, two = first_key[order], second_key[order]
    start = np.ones(order.size, dtype=bool)
    start[1:] = (one[1:] != one[:-1]) | (two[1:] != two[:-1])
    back = np.empty(order.size, dtype="int64")
    back[order] = np.cumsum(start) - 1
    heads = np.flatnonzero(start)
    return order[heads], back, np.diff(np.append(heads, order.size))


RankSampler = Literal["counts", "full"]
# The counts sampler counts a class of identical posteriors by one binomial draw per chosen group once it has this
# many members per chosen group; smaller classes are drawn member by member (those draws serve every chosen group).
_COUNTED_PER_CHOSEN = 4
# The counts sampler's interpolated CDFs may miscount, in any one draw, groups whose expected number is under this.
RANK_COUNT_TOLERANCE = 1e-3


def rank_intervals(
    x: ArrayLike, n: ArrayLike, draws: int = 2000, seed: int = 0, level: float = 0.95,
    method: PriorMethod = "likelihood", only: ArrayLike | None = None, shrinkage: Shrinkage | None = None,
    sampler: RankSampler = "counts",
) -> pd.DataFrame:
    """Rank groups by rate (1 = highest) with intervals from draws of their shrunken posteriors.

    `only` (positions of groups) ranks just those groups among all of them; `shrinkage` reuses a fit of the same x
    and n. With `only`, the "counts" sampler (the default) draws each chosen group's rank from the distribution the
    full ranking gives it (exact up to 1e-3 groups miscounted per draw), without drawing every group (see
    `_ranks_by_counts`), so its intervals
    differ from the full ranking's by Monte Carlo noise only; the "full" sampler draws every group, as the full
    ranking does, and gives the chosen groups exactly the full ranking's figures for the same seed.
    """
    if sampler not in ("counts", "full"):
        raise ValueError(f"sampler must be 'counts' or 'full', not {sampler!r}")
    if shrinkage is None:
        shrinkage = shrunken_rates(x, n, level, method)
    table = shrinkage.table
    counts, sizes = _pair(x, n)
    post_a, post_b = shrinkage.a + counts, shrinkage.b + sizes - counts
    chosen = None if only is None else np.asarray(only, dtype="int64").reshape(-1)
    rng = np.random.default_rng(seed)
    if chosen is not None and sampler == "counts":
        ranks = _ranks_by_counts(post_a, post_b, np.column_stack([counts, sizes]), chosen, draws, rng)
    else:
        ranks = _ranks_by_draws(post_a, post_b, chosen, draws, rng)
    tail = (1 - level) / 2
    kept = table if chosen is None else table.iloc[chosen]
    if draws and len(kept):
        low, median, high = np.quantile(ranks, [tail, 0.5, 1 - tail], axis=0, method="inverted_cdf")
    else:
        low = median = high = np.full(len(kept), np.nan)
    return pd.DataFrame(
        {
            "x": kept["x"],
            "n": kept["n"],
            "shrunken": kept["shrunken"],
            "rank_median": median,
            "rank_low": low,
            "rank_high": high,
        },
        index=kept.index,
    )


def _ranks_by_draws(post_a: np.ndarray, post_b: np.ndarray, chosen: np.ndarray | None, draws: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Return the places (1 = highest) of every group, or of the chosen ones, in draws of every group's posterior."""
    groups = post_a.size
    ranks = np.empty((draws, groups if chosen is None else chosen.size), dtype="int32")
    places = np.arange(1, groups + 1, dtype="int32")
    # Chunks of draws keep memory bounded for thousands of officers; the sequence of draws, hence the result,
    # depends only on the seed (the subset draws the same chunks, so it consumes the stream identically).
    step = max(1, 2_000_000 // max(groups, 1))
    for start in range(0, draws, step):
        rows = min(step, draws - start)
        sample = rng.beta(post_a, post_b, size=(rows, groups))
        # Random tie-break: Beta draws can underflow to exactly 0 for very skewed posteriors.
        tiebreak = rng.random((rows, groups))
        if chosen is None:
            order = np.lexsort((tiebreak, -sample), axis=-1)
            np.put_along_axis(ranks[start : start + rows], order, np.broadcast_to(places, (rows, groups)), axis=1)
        else:
            ranks[start : start + rows] = _ranks_of(sample, tiebreak, chosen)
    return ranks


def _ranks_by_counts(post_a: np.ndarray, post_b: np.ndarray, pairs: np.ndarray, chosen: np.ndarray, draws: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Return the places of the chosen groups in draws of the posteriors, counting identical posteriors by class.

    A chosen group's place is 1 + the number of other groups whose draw is higher than its draw v. Groups with the
    same (x, n) share a posterior Beta(a, b) and are drawn independently of v, so given v the number of the G
    members of such a class drawn higher is exactly Binomial(G, 1 - I_v(a, b)) (I the regularised incomplete beta
    function): one binomial draw replaces G beta draws. Classes with few members are drawn member by member, as
    are the chosen groups; those draws are compared directly and ties among them (draws that underflow to exactly
    0) are broken at random, as in the full ranking. Each chosen group's place therefore has the distribution it
    has when every group is drawn, exactly but for the interpolated CDFs (`_ClassCdf`: in any draw, the chance of
    a miscount and its expected size are under RANK_COUNT_TOLERANCE, 1e-3 groups), and the interval from its
    places differs from the full ranking's by Monte Carlo noise only. Only the margins are right: the places of
    two chosen groups in one draw come from separate binomial draws, and the intervals use only the margins. A
    class counted by the binomial never ties a chosen draw (a chosen draw of exactly 0 counts all of them above
    it), which matters only for posteriors so skewed that their draws underflow, never for groups with the highest
    shrunken rates.
    """

    first, cls, members = _pair_classes(pairs[:, 0], pairs[:, 1])
    others = members.copy()
    np.subtract.at(others, cls[chosen], 1)  # the chosen groups are drawn themselves
    counted = others >= _COUNTED_PER_CHOSEN * max(chosen.size, 1)
    is_chosen = np.zeros(post_a.size, dtype=bool)
    is_chosen[chosen] = True
    direct = np.flatnonzero(~is_chosen & ~counted[cls])
    class_a, class_b, class_n = post_a[first[counted]], post_b[first[counted]], others[counted]
    ranks = np.empty((draws, chosen.size), dtype="int32")
    drawn = rng.beta(post_a[chosen], post_b[chosen], size=(draws, chosen.size))
    below = _ClassCdf(class_a, class_b, class_n, drawn) if class_n.size and drawn.size else None
    width = chosen.size * (direct.size + class_n.size + chosen.size)
    step = max(1, 4_000_000 // max(width, 1))
    for start in range(0, draws, step):
        rows = min(step, draws - start)
        mine = drawn[start : start + rows]
        rest = rng.beta(post_a[direct], post_b[direct], size=(rows, direct.size))
        here = mine[:, :, None]
        ahead = (np.count_nonzero(mine[:, None, :] > here, axis=2)
                 + np.count_nonzero(rest[:, None, :] > here, axis=2))
        # Ties among the groups drawn: a chosen group's place among those tied with it is uniform.
        tied = (np.count_nonzero(mine[:, None, :] == here, axis=2) - 1
                + np.count_nonzero(rest[:, None, :] == here, axis=2))
        if tied.any():
            ahead += rng.integers(0, tied + 1)
        if below is not None:
            ahead += rng.binomial(class_n, np.clip(1 - below(mine), 0, 1)).sum(axis=2)
        ranks[start : start + rows] = ahead + 1
    return ranks


class _ClassCdf:
    """The CDFs I_v(a, b) of classes of posteriors at the chosen groups' draws v, interpolated on a checked grid.

    scipy's betainc costs about a third of a microsecond, and the counts sampler needs it for every draw, chosen
    group and class (millions at 5,000,000 reports). Between the smallest and largest draw the CDFs are instead
    tabulated with their densities on a regular grid and read off by cubic Hermite interpolation. The grid is
    refined until, at the midpoint of every cell (where a cubic's error is largest), the interpolation error
    summed over the members of every class, max |error| times the class's members, is under
    RANK_COUNT_TOLERANCE: by coupling, the chance that a draw's count of groups above v differs from the exact
    one, and the expected size of the difference, are both under it. Where no grid of up to 4,096 cells passes
    (or a draw sits on 0 or 1), the CDFs are computed exactly. 1 - I_v, not scipy's complement (several times
    slower): it loses only probabilities under 1e-16.
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, members: np.ndarray, draws: np.ndarray) -> None:
        from scipy import special

        self.a, self.b = a, b
        self.grid: np.ndarray | None = None
        low, high = float(draws.min()), float(draws.max())
        if not (0 < low < high < 1):
            return
        norm = special.betaln(a, b)
        for cells in (64, 128, 256, 512, 1024, 2048, 4096):
            grid = np.linspace(low, high, cells + 1)
            value = special.betainc(a, b, grid[:, None])
            slope = np.exp(special.xlogy(a - 1, grid[:, None]) + special.xlog1py(b - 1, -grid[:, None]) - norm)
            self.grid, self.value, self.slope = grid, value, slope
            middle = (grid[:-1] + grid[1:]) / 2
            error = np.abs(self._interpolate(middle) - special.betainc(a, b, middle[:, None])).max(axis=0)
            if float(np.sum(error * members)) <= RANK_COUNT_TOLERANCE:
                return
        self.grid = None

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """Return I_v(a, b) for every class: shape v.shape + (classes,)."""
        from scipy import special

        if self.grid is None:
            return special.betainc(self.a, self.b, v[..., None])
        return np.clip(self._interpolate(v), 0, 1)

    def _interpolate(self, v: np.ndarray) -> np.ndarray:
        grid = self.grid
        step = grid[1] - grid[0]
        cell = np.clip(((v - grid[0]) / step).astype("int64"), 0, grid.size - 2)
        t = ((v - grid[cell]) / step)[..., None]
        left, right = self.value[cell], self.value[cell + 1]
        return (left * ((1 + 2 * t) * (1 - t) ** 2) + self.slope[cell] * (step * t * (1 - t) ** 2)
                + right * (t * t * (3 - 2 * t)) + self.slope[cell + 1] * (step * t * t * (t - 1)))


def _ranks_of(sample: np.ndarray, tiebreak: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    # The place each chosen group takes in the lexsort of (-sample, tiebreak) of each row, without sorting: 1 + the
    # groups sorted before it. The lexsort puts NaN keys last and equal among themselves, and is stable, so a NaN
    # draw becomes +inf here, and on equal draws and equal tie-breaks the lower position comes first.
    key = -sample
    key[np.isnan(key)] = np.inf
    out = np.empty((key.shape[0], chosen.size), dtype="int32")
    positions = np.arange(key.shape[1])
    less, equal = np.empty(key.shape, dtype=bool), np.empty(key.shape, dtype=bool)
    for col, i in enumerate(chosen):
        mine = key[:, i : i + 1]
        np.less(key, mine, out=less)
        np.equal(key, mine, out=equal)
        # Counted a row at a time: a whole-row count_nonzero is several times faster than one along an axis.
        before = np.fromiter((np.count_nonzero(row) for row in less), dtype="int64", count=key.shape[0])
        # Ties are rare (underflow to 0, or equal posteriors drawn alike): resolve them only in rows that have any
        # besides the group itself.
        tied = np.flatnonzero(np.fromiter((np.count_nonzero(row) for row in equal), dtype="int64",
                                          count=key.shape[0]) > 1)
        if tied.size:
            same, breaks = equal[tied], tiebreak[tied]
            own = breaks[:, i : i + 1]
            before[tied] += np.count_nonzero(same & ((breaks < own) | ((breaks == own) & (positions < i))), axis=1)
        out[:, col] = before + 1
    return out


@dataclass(frozen=True)
class Heterogeneity:
    """Do group rates differ beyond chance? Tarone's score statistic and its p-value (NaN: cannot be tested)."""

    statistic: float
    p_value: float
    groups: int
    draws: int
    level: float = 0.05

    @property
    def differ(self) -> bool:
        """Say whether the groups differ beyond chance at the test's level."""
        return bool(np.isfinite(self.p_value) and self.p_value < self.level)


def heterogeneity_test(x: ArrayLike, n: ArrayLike, draws: int = 999, seed: int = 0,
                       level: float = 0.05, stop: int = 20) -> Heterogeneity:
    """Test whether group proportions differ beyond binomial chance (Tarone 1979; parametric bootstrap p-value).

    Tarone's statistic depends on the data only through sum k, sum k^2 and sum m k (k events of m answered reports
    per group), and under the null every group of the same size m is an independent Binomial(m, p0) draw, so the
    groups of one size are exchangeable: how many of the G_m groups of size m have each count 0..m is
    Multinomial(G_m, Binomial(m, p0) probabilities). Each null dataset is drawn that way (or group by group where a
    size has no more groups than counts), exactly the distribution of drawing every group, with work that grows
    with the distinct sizes rather than the groups.
    """
    counts, sizes = _pair(x, n)
    keep = sizes > 0
    k, m = counts[keep], sizes[keep]
    groups = int(keep.sum())
    # Groups of one report say nothing about spread (their variance is the same whatever the spread): the
    # statistic needs two groups and some group of two or more.
    if groups < 2 or k.sum() <= 0 or k.sum() >= m.sum() or np.all(m < 2):
        return Heterogeneity(statistic=float("nan"), p_value=float("nan"), groups=groups, draws=0, level=level)
    sizes = m.astype("int64")
    events = k.astype("int64")
    tarone = _Tarone(sizes)
    observed = float(tarone.statistic(np.array([events.sum()]), np.array([np.sum(events * events)]),
                                      np.array([np.sum(sizes * events)]))[0])
    if draws <= 0:
        # The statistic is asymptotically standard normal; one-sided, as only extra spread is evidence.
        return Heterogeneity(observed, 1 - NormalDist().cdf(observed), groups, 0, level)
    # The normal reference runs a little hot (about 6% for a nominal 5% with many small groups and a rare
    # outcome), so the p-value is the share of datasets drawn under one common rate with a statistic as large:
    # sequentially (Besag and Clifford 1991), stopping at the `stop`-th draw as large (p = stop / draws made),
    # else after `draws` (p = (1 + exceedances) / (1 + draws)). Both are valid p-values; where groups plainly do
    # not differ the test stops after a few dozen draws instead of a thousand.
    rng = np.random.default_rng(seed)
    overall = float(events.sum() / sizes.sum())
    classes, members = np.unique(sizes, return_counts=True)
    exceed, made = 0, 0
    step = 100
    while made < draws:
        rows = min(step, draws - made)
        hits = tarone.statistic(*_null_sums(rng, classes, members, overall, rows)) >= observed
        running = exceed + np.cumsum(hits)
        if running[-1] >= stop:
            at = made + int(np.argmax(running >= stop)) + 1
            return Heterogeneity(observed, stop / at, groups, at, level)
        exceed, made = int(running[-1]), made + rows
    return Heterogeneity(observed, (1 + exceed) / (1 + draws), groups, draws, level)


class _Tarone:
    """Tarone's Z from a dataset's sums, for fixed group sizes m."""

    def __init__(self, sizes: np.ndarray) -> None:
        m = sizes.astype("float64")
        self.total = float(m.sum())
        self.squares = float(np.sum(m * m))
        self.scale = float(np.sqrt(2 * np.sum(m * (m - 1))))

    def statistic(self, events: np.ndarray, squares: np.ndarray, weighted: np.ndarray) -> np.ndarray:
        """Return Z = (S - N) / sqrt(2 sum m (m - 1)) per dataset from sum k, sum k^2 and sum m k.

        S = sum (k - m p)^2 / (p (1 - p)) with p = sum k / N, expanded as sum k^2 - 2 p sum m k + p^2 sum m^2; a
        dataset with no events (or all) has no spread to show: -inf.
        """
        p = events / self.total
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = (squares - 2 * p * weighted + p * p * self.squares) / (p * (1 - p))
            z = (spread - self.total) / self.scale
        return np.where((p > 0) & (p < 1), z, -np.inf)


def _null_sums(rng: np.random.Generator, classes: np.ndarray, members: np.ndarray, rate: float,
               rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw `rows` datasets of groups with one common rate; return each one's sum k, sum k^2 and sum m k."""
    from scipy.stats import binom

    events, squares, weighted = (np.zeros(rows, dtype="int64") for _ in range(3))
    for size, many in zip(classes.tolist(), members.tolist(), strict=True):
        if many <= size + 1:
            # Fewer groups than possible counts: draw each group.
            k = rng.binomial(size, rate, size=(rows, many))
            s, s2 = k.sum(axis=1), np.einsum("ij,ij->i", k, k)
        else:
            # How many of the groups of this size have each count: one multinomial draw per dataset.
            values = np.arange(size + 1, dtype="int64")
            tally = rng.multinomial(many, binom.pmf(values, size, rate), size=rows)
            s, s2 = tally @ values, tally @ (values * values)
        events += s
        squares += s2
        weighted += size * s
    return events, squares, weighted


def stratum_expectation(own: ArrayLike, stratum_events: ArrayLike,
                        stratum_size: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return the expected events among `own` of a stratum's units, and the hypergeometric variance.

    Given a stratum (an incident) of `stratum_size` units of which `stratum_events` had the outcome, a group
    holding `own` of them expects own * events / size, with variance own (size - own) events (size - events) /
    (size^2 (size - 1)) if the outcome fell on the stratum's units at random.
    """
    r, y, big = (np.asarray(v, dtype="float64") for v in (own, stratum_events, stratum_size))
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(big > 0, r * y / big, np.nan)
        variance = np.where(big > 1, r * (big - r) * y * (big - y) / (big**2 * (big - 1)), 0.0)
    return expected, variance


@dataclass(frozen=True)
class ObservedExpected:
    """Observed against expected events: the ratio O/E with a normal interval, the z-score and two-sided p-value."""

    ratio: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    z: float | np.ndarray
    p_value: float | np.ndarray


def observed_expected(observed: ArrayLike, expected: ArrayLike, variance: ArrayLike,
                      level: float = 0.95) -> ObservedExpected:
    """Compare observed with expected events given the variance of O - E (stratified, Mantel-Haenszel style)."""
    from scipy.stats import norm

    o, e, v = (np.asarray(a, dtype="float64") for a in (observed, expected, variance))
    z_level = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(e > 0, o / e, np.nan)
        half = z_level * np.sqrt(v)
        # The interval for O (O +/- z sqrt(V)) scaled by the fixed E; no events can be fewer than none.
        low = np.where((e > 0) & (v > 0), np.maximum(o - half, 0) / e, np.nan)
        high = np.where((e > 0) & (v > 0), (o + half) / e, np.nan)
        z = np.where(v > 0, (o - e) / np.sqrt(v), np.nan)
    p = np.where(np.isfinite(z), 2 * norm.sf(np.abs(np.nan_to_num(z))), np.nan)
    return ObservedExpected(*(_unwrap(a) for a in (ratio, low, high, z, p)))


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
    size = np.rint(d) if kind == "proportion" else d
    top = 1.0 if kind == "proportion" else np.inf
    low, high = _interpolated(d, np.full(d.shape, target), level, kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = low / size, high / size
    valid = size > 0
    return np.where(valid, np.clip(low, 0, top), np.nan), np.where(valid, np.clip(high, 0, top), np.nan)


def _interpolated(d: np.ndarray, target: np.ndarray, level: float, kind: Kind) -> tuple[np.ndarray, np.ndarray]:
    """Return Spiegelhalter's interpolated quantiles of the count (not divided by the size, not clipped)."""
    from scipy import stats

    tail = (1 - level) / 2
    if kind == "proportion":
        # The binomial needs a whole number of trials; a plotting grid of non-integers is rounded.
        dist = stats.binom(np.maximum(np.rint(d), 0), np.clip(target, 0, 1))
    else:
        dist = stats.poisson(np.maximum(target * d, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        # Spiegelhalter (2005) A.1.1: r is the smallest count with P(R <= r) >= p; the limit is (r - alpha) / n with
        # alpha = (P(R <= r) - p) / P(R = r), i.e. the p-quantile of R - U, U uniform on (0, 1), which moves the
        # limit smoothly between r - 1 and r. The upper tail uses the survival function to keep its precision.
        r = dist.ppf(tail)
        low = r - np.clip((dist.cdf(r) - tail) / dist.pmf(r), 0, 1)
        r = dist.ppf(1 - tail)
        high = r - np.clip((tail - dist.sf(r)) / dist.pmf(r), 0, 1)
    return low, high


def _weighted_rate(counts: np.ndarray, sizes: np.ndarray, weights: np.ndarray) -> float:
    total = float((weights * sizes).sum())
    return float((weights * counts).sum() / total) if total > 0 else float("nan")


def _midp_limits(d: np.ndarray, target: np.ndarray, level: float, kind: Kind,
                 tau2: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    # The mid-p of a count x is P(R + V > x) with V uniform on (-1/2, 1/2): x is beyond the limit exactly when its
    # mid-p is below the tail. Spiegelhalter's interpolated limit is the quantile of R - U, U on (0, 1), so these
    # limits are his plus half a count.
    low, high = _interpolated(d, target, level, kind)
    size = np.rint(d) if kind == "proportion" else d
    top = 1.0 if kind == "proportion" else np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = (low + 0.5) / size, (high + 0.5) / size
        if tau2 > 0:
            half = _z(level) * np.sqrt(_null_variance(target, d, kind) + tau2)
            low, high = np.fmin(low, target - half), np.fmax(high, target + half)
    valid = (size > 0) & np.isfinite(target)
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


def _pooled_prior(events: float, total: float, method: str) -> BetaPrior:
    # No spread between groups: every group shrinks to the overall rate, with the Jeffreys posterior of the pooled
    # rate, Beta(X + 1/2, N - X + 1/2), as the common prior (proper even with no events).
    a, b = events + 0.5, total - events + 0.5
    return BetaPrior(a=a, b=b, mean=a / (a + b), precision=float("inf"), method=method, pooled=True)


def _moment_prior(k: np.ndarray, m: np.ndarray, pooled: BetaPrior) -> BetaPrior:
    # Method of moments for the beta-binomial, using its exact variance: with intra-group correlation
    # rho = 1 / (a + b + 1), E[sum n_i (p_i - p)^2] = mu (1 - mu) [(I - 1) + rho (N - sum n_i^2 / N - (I - 1))].
    # Solved for rho and capped so the prior never carries more information than the pooled data (a + b <= N + 1).
    # Kept for comparison: it swings between "no spread" and a strong prior on data where the likelihood does not.
    total, events, groups = m.sum(), k.sum(), k.size
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
    return BetaPrior(a=float(mu * strength), b=float((1 - mu) * strength), mean=float(mu), precision=float(strength),
                     method="moments", pooled=False)


def _polished(xs: np.ndarray, ys: np.ndarray, ns: np.ndarray, weight: np.ndarray, mu: float, precision: float,
              log_likelihood: float) -> tuple[float, float, float]:
    """Take Newton steps on (a, b) from an interior optimum until the gradient vanishes; return mean, precision, value.

    SLSQP stops where the likelihood stops rising by its tolerance, which on a flat top leaves the estimate a few parts
    in ten million from the optimum, and where exactly depends on the machine's rounding: the officers' simulated
    rank intervals then moved by places from one processor to another. Newton steps with the exact second
    derivatives end at the optimum itself. A step that would not raise the likelihood, or leave a, b > 0, is not taken.
    """
    from scipy import special

    def value(a: float, b: float) -> float:
        return float(np.sum(weight * (special.betaln(xs + a, ys + b) - special.betaln(a, b))))

    a, b = mu * precision, (1 - mu) * precision
    for _ in range(20):
        common = special.digamma(a + b) - special.digamma(ns + a + b)
        grad = np.array([np.sum(weight * (special.digamma(xs + a) - special.digamma(a) + common)),
                         np.sum(weight * (special.digamma(ys + b) - special.digamma(b) + common))])
        both = special.polygamma(1, a + b) - special.polygamma(1, ns + a + b)
        cross = float(np.sum(weight * both))
        hessian = np.array([[np.sum(weight * (special.polygamma(1, xs + a) - special.polygamma(1, a) + both)), cross],
                            [cross, np.sum(weight * (special.polygamma(1, ys + b) - special.polygamma(1, b) + both))]])
        try:
            step = np.linalg.solve(hessian, -grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or a + step[0] <= 0 or b + step[1] <= 0:
            break
        new = value(a + step[0], b + step[1])
        if not new >= log_likelihood - 1e-12 * abs(log_likelihood):
            break
        a, b, log_likelihood = a + step[0], b + step[1], new
        if np.max(np.abs(step) / np.array([a, b])) < 1e-14:
            break
    return float(a / (a + b)), float(a + b), float(log_likelihood)


def _likelihood_prior(k: np.ndarray, m: np.ndarray, pooled: BetaPrior) -> BetaPrior:
    # Maximise the marginal beta-binomial likelihood sum_i [betaln(x_i + a, n_i - x_i + b) - betaln(a, b)] (the
    # binomial coefficients do not depend on a, b) over the mean (logit) and the precision a + b (log). Groups with
    # the same (x, n) are counted once with a weight: a few hundred distinct pairs however many officers.
    from scipy import optimize, special

    first, _, weight = _pair_classes(k, m)
    xs, ns = k[first], m[first]
    ys = ns - xs
    total, events = m.sum(), k.sum()
    mu0 = events / total
    # At infinite precision the beta-binomial is the binomial with the pooled rate: the boundary to beat.
    boundary = float(np.sum(weight * (xs * np.log(mu0) + ys * np.log1p(-mu0))))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        mu, precision = special.expit(theta[0]), np.exp(theta[1])
        a, b = mu * precision, (1 - mu) * precision
        value = np.sum(weight * (special.betaln(xs + a, ys + b) - special.betaln(a, b)))
        # d/da and d/db of the log-likelihood, then the chain rule to (logit mean, log precision).
        common = special.digamma(precision) - special.digamma(ns + precision)
        da = np.sum(weight * (special.digamma(xs + a) - special.digamma(a) + common))
        db = np.sum(weight * (special.digamma(ys + b) - special.digamma(b) + common))
        grad = np.array([(da - db) * precision * mu * (1 - mu), da * a + db * b])
        return -float(value), -grad

    low, high = np.log(_PRECISION_BOUNDS[0]), np.log(_PRECISION_BOUNDS[1])
    # Start from the best precision on a coarse grid at the pooled mean: the optimiser then only refines.
    grid = np.linspace(low, high, 25)
    start = grid[int(np.argmin([objective(np.array([special.logit(mu0), s]))[0] for s in grid]))]
    edge = 1 - 1e-9
    # SLSQP: the same optimum as L-BFGS-B here, in a tenth of the time.
    fit = optimize.minimize(objective, np.array([special.logit(mu0), start]), jac=True, method="SLSQP",
                            bounds=[(special.logit(1 - edge), special.logit(edge)), (low, high)],
                            options={"ftol": 1e-12, "maxiter": 200})
    mu, precision = float(special.expit(fit.x[0])), float(np.exp(fit.x[1]))
    log_likelihood = -float(fit.fun)
    if low + 1e-6 < fit.x[1] < high - 1e-6:
        mu, precision, log_likelihood = _polished(xs, ys, ns, weight, mu, precision, log_likelihood)
    # The likelihood rises all the way to the binomial (no spread), or the fitted prior would outweigh all the
    # data pooled: groups do not differ enough to rank them, so all shrink to the pooled rate.
    if log_likelihood <= boundary + 1e-9 or fit.x[1] >= high - 1e-6 or precision >= total + 1:
        return BetaPrior(**{**pooled.__dict__, "method": "likelihood", "log_likelihood": boundary})
    return BetaPrior(a=mu * precision, b=(1 - mu) * precision, mean=mu, precision=precision, method="likelihood",
                     pooled=False, log_likelihood=log_likelihood)
