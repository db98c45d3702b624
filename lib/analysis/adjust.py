"""Case-mix adjusted comparisons: modified Poisson regression with intervals clustered by incident.

Method (Zou 2004, "A modified Poisson regression approach to prospective studies with binary data",
Am J Epidemiol 159:702): a Poisson model with log link of a report's 0/1 harm outcome on the compared
dimension and the case-mix covariates, so exp(coefficient) is a risk ratio adjusted for the others.
The Poisson variance is wrong for a 0/1 outcome, so intervals use the robust (sandwich) variance, with
each incident's reports summed into one cluster where several officers share an incident (a report is its
own cluster when it has no incident id), and the small-sample factor G / (G - 1) over G clusters.

At scale the engine does the counting: reports collapse to covariate-pattern cells (reports and events
per pattern) and the model is fitted on the cells (IRLS, sparse design). Only incidents with two or more
answering reports are fetched, as (incident, pattern) cells, for the clustered part of the variance; a
report alone in its incident is taken from the pattern cells.

Unknown covariate values (null) are a level of their own, "Not recorded", so no report is dropped for a
missing covariate. A level with no events has a coefficient of minus infinity: its reports carry no
information about the other coefficients at the maximum, so they are left out of the fit (and a compared
group with no events gets no ratio).

Under a perturbed scope (viewers, demonstrations: the cell key method, lib/privacy/cellkey.py) every count
published beside a model's answer (a group's events and answering reports, a reference's, a funnel group's
observed count) is the published one: the pattern cells carry the key sums of their reports, and the counts
are adjusted from those. The model's estimates themselves (ratios, intervals, expected counts) stay model
estimates from the exact reports: they are not counts, and a fit on adjusted counts would answer a different
question. Expected counts are scaled to add up to the published observed ones, so their total is no exact count.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from lib.analysis import stats
from lib.engine import query
from lib.engine.query import NOT_RECORDED, Filters, Scope
from lib.engine.store import Dataset, Engine
from lib.model import schema
from lib.privacy import cellkey

if TYPE_CHECKING:
    from scipy import sparse

# Dimensions a comparison can be adjusted for: report columns (as text), and subject resistance.
# Team and area are left out: thousands of levels make the pattern cells as many as the reports.
COVARIATES: dict[str, Callable[[ibis.Table], ibis.Expr]] = {
    "officer_role": query.DIMENSIONS["officer_role"],
    "shift": query.DIMENSIONS["shift"],
    "resistance": lambda t: t.resistance.cast("string"),
    "single_crewed": query.DIMENSIONS["single_crewed"],
    "location_type": query.DIMENSIONS["location_type"],
    "subject_age_band": query.DIMENSIONS["subject_age_band"],
    "subject_gender": query.DIMENSIONS["subject_gender"],
    "subject_ethnicity": query.DIMENSIONS["subject_ethnicity"],
    "force": query.DIMENSIONS["force"],
    "weekday": query.DIMENSIONS["weekday"],
}
DEFAULT_ADJUSTMENT: tuple[str, ...] = ("officer_role", "shift", "resistance", "single_crewed", "location_type")
LABELS: dict[str, str] = {**query.DIMENSION_LABELS, "resistance": "Subject resistance", "tactic": "Each tactic"}
# Short names for sentences ("adjusted for role, shift, ...").
SHORT_NAMES: dict[str, str] = {
    "officer_role": "role", "shift": "shift", "resistance": "resistance", "single_crewed": "crewing",
    "location_type": "location type", "subject_age_band": "subject age", "subject_gender": "subject gender",
    "subject_ethnicity": "subject ethnicity", "force": "force", "weekday": "day of week",
}
TACTIC_DIMENSIONS = ("tactic_group", "tactic")
# A compared dimension that groups a finer one is not adjusted for that one: its groups are made of its values.
_GROUPS_OF = {grouped: fine for fine, grouped in query.GROUPED.items()}


def within(dimension: str) -> tuple[str, ...]:
    """Return the covariates a comparison of `dimension` cannot be adjusted for: itself, and what it groups."""
    return (dimension, *((_GROUPS_OF[dimension],) if dimension in _GROUPS_OF else ()))


METHOD = ("Poisson regression (log link, modified Poisson) with robust intervals clustered by incident")
CRUDE_METHOD = "crude (no adjustment): Katz log interval"
RATIO_COLUMNS = ["dimension", "group", "reference", "ratio", "ci_low", "ci_high", "yes", "answered",
                 "reference_yes", "reference_answered", "adjusted_for", "method"]
_Z = NormalDist().inv_cdf(0.975)
# A log-ratio standard error above this (an interval wider than a factor of e^20 each way) says nothing.
MAX_LOG_SE = 10.0


# --- the model on cells -------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """A fitted Poisson model: coefficients, the per-report mean of each cell, and which columns were fitted."""

    coef: np.ndarray  # -inf for a column whose reports had no events, NaN for a column with no reports
    mean: np.ndarray  # exp(x'b) per cell: the expected events per report
    fitted: np.ndarray  # bool per column: estimated (not dropped)
    converged: bool


def design(codes: np.ndarray, levels: Sequence[int], references: Sequence[int],
           extra: np.ndarray | None = None) -> sparse.csr_matrix:
    """Return the design matrix: intercept, one dummy per non-reference level of each coded column, extras."""
    from scipy import sparse  # here, not at module level: this module is imported at app start

    rows = codes.shape[0]
    blocks = [sparse.csr_matrix(np.ones((rows, 1)))]
    for j, (k, ref) in enumerate(zip(levels, references, strict=True)):
        keep = [v for v in range(k) if v != ref]
        position = np.full(k, -1)
        position[keep] = np.arange(len(keep))
        col = position[codes[:, j]]
        hit = col >= 0
        blocks.append(sparse.csr_matrix((np.ones(int(hit.sum())), (np.flatnonzero(hit), col[hit])),
                                        shape=(rows, len(keep))))
    if extra is not None:
        blocks.append(sparse.csr_matrix(extra.reshape(rows, -1).astype("float64")))
    return sparse.hstack(blocks, format="csr")


def fit(x: sparse.csr_matrix, yes: np.ndarray, n: np.ndarray, max_iter: int = 100, tol: float = 1e-11) -> Fit:
    """Fit log E[events] = log(reports) + x'b to cells by IRLS (Newton with step halving)."""
    yes, n = np.asarray(yes, dtype="float64"), np.asarray(n, dtype="float64")
    p = x.shape[1]
    rows = n > 0
    cols = np.ones(p, dtype=bool)
    zero_event = np.zeros(p, dtype=bool)
    # Drop columns with no events (their coefficient is -inf) with their cells, and columns left with no
    # reports, until none remain: what is left has a finite maximum unless patterns separate jointly.
    while True:
        xr = x[rows]
        events, reports = xr.T @ yes[rows], xr.T @ n[rows]
        empty = cols & (reports <= 0)
        no_events = cols & (events <= 0) & ~empty
        no_events[0] = False  # the intercept: no events at all is handled below
        if not (empty.any() or no_events.any()):
            break
        cols &= ~(empty | no_events)
        zero_event |= no_events
        if no_events.any():
            rows &= np.asarray(x[:, np.flatnonzero(no_events)].sum(axis=1) == 0).ravel()
    coef = np.full(p, np.nan)
    coef[zero_event] = -np.inf
    mean = np.zeros(len(n))
    total_yes, total_n = yes[rows].sum(), n[rows].sum()
    if total_yes <= 0 or total_n <= 0:
        return Fit(coef, mean, np.zeros(p, dtype=bool), False)
    xk = x[rows][:, np.flatnonzero(cols)].tocsr()
    yk, nk = yes[rows], n[rows]
    b = np.zeros(xk.shape[1])
    b[0] = np.log(total_yes / total_n)

    def loglik(beta: np.ndarray) -> float:
        eta = xk @ beta
        return float(yk @ eta - nk @ np.exp(eta))

    ll, converged = loglik(b), False
    for _ in range(max_iter):
        mu = nk * np.exp(xk @ b)
        score = xk.T @ (yk - mu)
        info = (xk.T @ xk.multiply(mu[:, None])).toarray()
        step = np.linalg.lstsq(info, score, rcond=None)[0]
        for _ in range(40):
            candidate = loglik(b + step)
            if candidate >= ll - 1e-12 * abs(ll):
                break
            step /= 2
        b, gain, ll = b + step, candidate - ll, candidate
        # Converged when the step is negligible, or when the likelihood no longer moves: then a coefficient
        # drifting towards -inf (levels jointly without events) has a vast variance and no usable interval.
        if np.max(np.abs(step)) < tol or abs(gain) < 1e-12 * (abs(ll) + 1):
            converged = True
            break
    coef[np.flatnonzero(cols)] = b
    mean[rows] = np.exp(xk @ b)
    return Fit(coef, mean, cols, converged)


def robust_covariance(x: sparse.csr_matrix, result: Fit, yes: np.ndarray, n: np.ndarray,
                      cluster: np.ndarray | None = None, cell: np.ndarray | None = None,
                      cluster_n: np.ndarray | None = None, cluster_yes: np.ndarray | None = None) -> np.ndarray:
    """Return the sandwich covariance of the fitted coefficients, clustered where clusters are given.

    `cluster`, `cell`, `cluster_n`, `cluster_yes` list the reports of multi-report clusters by (cluster code,
    cell, reports, events); rows may be negative (a complement taken away). Every other report is a cluster
    of its own, taken from the cells. Returns a full p x p matrix, NaN in rows and columns not fitted.
    """
    from scipy import sparse

    yes, n = np.asarray(yes, dtype="float64"), np.asarray(n, dtype="float64")
    cols = np.flatnonzero(result.fitted)
    p = x.shape[1]
    out = np.full((p, p), np.nan)
    if not cols.size:
        return out
    xk = x[:, cols].tocsr()
    m = result.mean
    bread = (xk.T @ xk.multiply((n * m)[:, None])).toarray()
    inverse = np.linalg.pinv(bread, hermitian=True)
    single_n, single_yes, groups = n, yes, 0
    meat = np.zeros((cols.size, cols.size))
    if cluster is not None and len(cluster):
        cluster_index, codes = pd.factorize(np.asarray(cluster))  # hashing: no sort of a million clusters
        groups = len(codes)
        cn, cy = np.asarray(cluster_n, dtype="float64"), np.asarray(cluster_yes, dtype="float64")
        residual = cy - cn * m[cell]
        r = sparse.csr_matrix((residual, (cluster_index, cell)), shape=(groups, len(n)))
        scores = r @ xk
        meat += (scores.T @ scores).toarray()
        single_n = n - np.bincount(cell, weights=cn, minlength=len(n))
        single_yes = yes - np.bincount(cell, weights=cy, minlength=len(n))
    # A report alone in its cluster adds x x' (y - m)^2: summed over a cell's single reports.
    v = single_yes * (1 - m) ** 2 + (single_n - single_yes) * m**2
    meat += (xk.T @ xk.multiply(v[:, None])).toarray()
    clusters = groups + float(single_n.sum())
    factor = clusters / (clusters - 1) if clusters > 1 else np.nan
    out[np.ix_(cols, cols)] = inverse @ meat @ inverse * factor
    return out


# --- from the engine ----------------------------------------------------------------------


def _columns(adjust_for: Sequence[str]) -> list[str]:
    unknown = [d for d in adjust_for if d not in COVARIATES]
    if unknown:
        raise ValueError(f"cannot adjust for {', '.join(unknown)}; choose from {', '.join(COVARIATES)}")
    return list(dict.fromkeys(adjust_for))


def refuse_officer_level(scope: Scope, what: str) -> None:
    """Raise ValueError when an officer-level result is asked for under a perturbed scope: it is never published there.

    Viewers and demonstrations (the cell key method) see areas, teams and groups, never single officers; a page
    that offered them an officer-level view by mistake fails here rather than show exact counts per officer.
    """
    if scope.perturbed:
        raise ValueError(f"{what} is officer-level detail, never published under disclosure control "
                         "(a perturbed scope)")


def _answered(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
              dims: Sequence[str], extra: dict[str, Callable[[ibis.Table], ibis.Expr]] | None = None) -> ibis.Table:
    """Return the answering reports with each dimension as text ("Not recorded" for null) and a cluster key.

    Under a perturbed scope each report's record key comes too, for the key sums of the published counts.
    """
    if scope.perturbed:
        query.require_keys(engine, ds)
        extra = {**(extra or {}), cellkey.RECORD_KEY: lambda t: t[cellkey.RECORD_KEY]}
    t = query.filtered_reports(engine, ds, filters, scope)
    t = t.filter(t[measure].notnull())
    cluster = t.incident_id.fill_null(t.report_id) if "incident_id" in t.columns else t.report_id
    derived = {f"d{i}": (COVARIATES.get(d) or query.DIMENSIONS[d])(t).cast("string").fill_null(NOT_RECORDED)
               for i, d in enumerate(dims)}
    for name, expr in (extra or {}).items():
        derived[name] = expr(t)
    return t.select("report_id", _y=t[measure].ifelse(1, 0), _cluster=cluster, **derived)


def _shared(t: ibis.Table) -> ibis.Table:
    """Return the reports of incidents with two or more answering reports (a window only where it is needed)."""
    return t.filter(t.report_id.count().over(ibis.window(group_by=t._cluster)) > 1)


def _keyed(t: ibis.Table) -> bool:
    return cellkey.RECORD_KEY in t.columns


def _cells(engine: Engine, t: ibis.Table, keys: list[str]) -> pd.DataFrame:
    """Return reports and events per pattern of the keys (with their key sums when the reports carry record keys)."""
    sums = ({cellkey.key_column("n"): query.key_sum(t), cellkey.key_column("yes"): query.key_sum(t, t._y == 1)}
            if _keyed(t) else {})
    frame = engine.execute(t.group_by(keys).aggregate(n=t.count(), yes=t._y.sum(), **sums))
    frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    frame["n"] = frame["n"].astype("float64")
    frame["yes"] = frame["yes"].fillna(0).astype("float64")
    return frame


def _published(yes: ArrayLike, n: ArrayLike, yes_key: ArrayLike, n_key: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Return events and answering reports as published: each adjusted by its key sum, events within reports."""
    n_out = cellkey.perturb(np.asarray(n, dtype="int64"), n_key)
    return np.minimum(cellkey.perturb(np.asarray(yes, dtype="int64"), yes_key), n_out), n_out


def _multi(engine: Engine, t: ibis.Table, cells: pd.DataFrame, keys: list[str],
           extra: Sequence[str] = ()) -> pd.DataFrame:
    """Return (cluster, cell, reports, events) for the incidents with two or more answering reports."""
    patterns = ibis.memtable(cells[keys].assign(_cell=np.arange(len(cells))))
    joined = t.join(patterns, keys)
    grouped = joined.group_by([joined._cluster.hash().name("cluster"), "_cell", *extra]).aggregate(
        n=joined.count(), yes=joined._y.sum())
    frame = engine.execute(grouped)
    frame["yes"] = frame["yes"].fillna(0)
    return frame


def _codes(cells: pd.DataFrame, keys: list[str], references: dict[str, str]) -> tuple[np.ndarray, list[list[str]],
                                                                                    list[int]]:
    """Return integer codes per key column, each column's levels, and each reference level's code."""
    codes = np.zeros((len(cells), len(keys)), dtype=np.int64)
    levels, refs = [], []
    for j, k in enumerate(keys):
        values = cells[k].astype(str).to_numpy()
        names, inverse = np.unique(values, return_inverse=True)
        codes[:, j] = inverse.ravel()
        levels.append(list(names))
        wanted = references.get(k)
        if wanted in names:
            refs.append(int(np.flatnonzero(names == wanted)[0]))
        else:  # the covariate's largest level, so its dummies are estimated against plenty
            refs.append(int(np.argmax(np.bincount(inverse.ravel(), weights=cells["n"], minlength=len(names)))))
    return codes, levels, refs


def _interval(result: Fit, cov: np.ndarray, at: int) -> tuple[float, float, float]:
    """Return exp(b) and its 95% Wald interval on the log scale; NaN where the model gives no finite answer."""
    coef, variance = result.coef[at], cov[at, at]
    if not result.converged or not np.isfinite(coef) or not np.isfinite(variance) or variance < 0:
        return np.nan, np.nan, np.nan
    se = np.sqrt(variance)
    if se > MAX_LOG_SE:
        return np.nan, np.nan, np.nan
    with np.errstate(over="ignore"):
        values = np.exp([coef, coef - _Z * se, coef + _Z * se])
    if not np.isfinite(values).all():  # a group separated by its covariates: no usable interval
        return np.nan, np.nan, np.nan
    return float(values[0]), float(values[1]), float(values[2])


def adjusted_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str, dimension: str,
                    adjust_for: Sequence[str] = DEFAULT_ADJUSTMENT, reference: str | None = None) -> pd.DataFrame:
    """Return each group's rate ratio adjusted for case mix, shaped like risk.rate_ratios."""
    if measure not in schema.HARM_FIELDS:
        raise ValueError(f"unknown measure {measure!r}; measures are {', '.join(schema.HARM_FIELDS)}")
    covariates = [d for d in _columns(adjust_for) if d not in within(dimension)]
    if dimension in TACTIC_DIMENSIONS:
        return _using_ratios(engine, ds, filters, scope, measure, dimension, covariates)
    if dimension not in query.DIMENSIONS and dimension not in COVARIATES:
        raise ValueError(f"unknown dimension {dimension!r}")
    dims = [dimension, *covariates]
    keys = [f"d{i}" for i in range(len(dims))]
    t = _answered(engine, ds, filters, scope, measure, dims)
    cells = _cells(engine, t, keys)
    sums = [cellkey.key_column("yes"), cellkey.key_column("n")] if _keyed(t) else []
    by_group = cells.groupby("d0")[["yes", "n", *sums]].sum()
    if sums:  # each group's published counts (the fit below still runs on the exact cells)
        yes, n = _published(by_group["yes"], by_group["n"], by_group[sums[0]], by_group[sums[1]])
        by_group = by_group.assign(yes=yes, n=n).drop(columns=sums)
    groups = [g for g in by_group.index if g != NOT_RECORDED]
    if not groups:
        return pd.DataFrame(columns=RATIO_COLUMNS)
    if reference not in groups:
        reference = max(groups, key=lambda g: by_group.loc[g, "n"])
    codes, levels, refs = _codes(cells, keys, {"d0": reference})
    x = design(codes, [len(v) for v in levels], refs)
    result = fit(x, cells["yes"].to_numpy(), cells["n"].to_numpy())
    multi = _multi(engine, _shared(t), cells, keys)
    cov = robust_covariance(x, result, cells["yes"].to_numpy(), cells["n"].to_numpy(),
                            multi["cluster"].to_numpy(), multi["_cell"].to_numpy(dtype=np.int64),
                            multi["n"].to_numpy(), multi["yes"].to_numpy())
    order = query._sort_key(dimension, pd.Series(groups, dtype=object))
    groups = [groups[i] for i in np.argsort(order, kind="stable")]
    rows = []
    for g in groups:
        if g == reference:
            ratio, low, high = 1.0, np.nan, np.nan
        else:
            at = 1 + [v for i, v in enumerate(levels[0]) if i != refs[0]].index(g)
            ratio, low, high = _interval(result, cov, at)
        rows.append((g, ratio, low, high, by_group.loc[g, "yes"], by_group.loc[g, "n"]))
    frame = pd.DataFrame(rows, columns=["group", "ratio", "ci_low", "ci_high", "yes", "answered"])
    return _shape(frame, dimension, reference, by_group.loc[reference, "yes"], by_group.loc[reference, "n"],
                  covariates)


def _shape(frame: pd.DataFrame, dimension: str, reference: str | np.ndarray, reference_yes, reference_answered,
           covariates: Sequence[str]) -> pd.DataFrame:
    out = frame.assign(dimension=dimension, reference=reference, reference_yes=reference_yes,
                       reference_answered=reference_answered, adjusted_for=[tuple(covariates)] * len(frame),
                       method=METHOD)
    for c in ("yes", "answered", "reference_yes", "reference_answered"):
        out[c] = out[c].astype("int64")
    return out[RATIO_COLUMNS].reset_index(drop=True)


def _using_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str, column: str,
                  covariates: list[str]) -> pd.DataFrame:
    """Return, per tactic or type of force, the adjusted ratio of reports using it against those not using it."""
    from scipy import sparse

    keys = [f"d{i}" for i in range(len(covariates))]
    t = _answered(engine, ds, filters, scope, measure, covariates)
    cells = _cells(engine, t, keys) if keys else _cells(engine, t.mutate(_all=ibis.literal(0)), ["_all"])
    tactics = engine.tactics(ds)
    pairs = tactics.filter(tactics.report_id.isin(t.report_id)).select(
        report_id=tactics.report_id, _k=tactics[column].cast("string")).distinct()
    pairs = pairs.filter(pairs._k.notnull() & (pairs._k != "Tactical communication"))
    used = pairs.join(t, "report_id")
    pattern_keys = keys or ["_all"]
    if not keys:
        used = used.mutate(_all=ibis.literal(0))
    users = _cells(engine, used, [*pattern_keys, "_k"])
    index = cells[pattern_keys].assign(_cell=np.arange(len(cells)))
    users = users.merge(index, on=pattern_keys, how="left")
    codes, levels, refs = _codes(cells, keys, {})
    base = design(codes, [len(v) for v in levels], refs)
    size = len(cells)
    x = sparse.vstack([sparse.hstack([base, sparse.csr_matrix((size, 1))]),
                       sparse.hstack([base, sparse.csr_matrix(np.ones((size, 1)))])], format="csr")
    shared = _shared(t.mutate(_all=ibis.literal(0)) if not keys else t)
    multi = _multi(engine, shared, cells, pattern_keys)
    multi_used = _multi(engine, pairs.join(shared, "report_id"), cells, pattern_keys, extra=("_k",))
    present = set(users["_k"].astype(str))
    names = [k for k in tactic_order(column) if k in present]
    names += sorted(present - set(names))
    # Cluster codes once for every fit (the hashes of incidents with two or more answering reports).
    known, codes_all = np.unique(multi["cluster"].to_numpy(), return_inverse=True)
    multi = multi.assign(cluster=codes_all.ravel())
    multi_used = multi_used.assign(cluster=np.searchsorted(known, multi_used["cluster"].to_numpy()),
                                   _k=multi_used["_k"].astype(str))
    users = users.assign(_k=users["_k"].astype(str))
    total_yes, total_n = cells["yes"].to_numpy(), cells["n"].to_numpy()
    yes_key, n_key = cellkey.key_column("yes"), cellkey.key_column("n")
    keyed = _keyed(t)
    if keyed:  # all answering reports in view, as published
        shown_total_yes, shown_total_n = _published(total_yes.sum(), total_n.sum(), cells[yes_key].sum(),
                                                    cells[n_key].sum())
    rows = []
    for name in names:
        mine = users[users["_k"] == name]
        n1 = np.bincount(mine["_cell"], weights=mine["n"], minlength=size)
        y1 = np.bincount(mine["_cell"], weights=mine["yes"], minlength=size)
        yes_used, n_used = y1.sum(), n1.sum()
        ref_yes, ref_n = total_yes.sum() - yes_used, total_n.sum() - n_used
        shown = (yes_used, n_used, ref_yes, ref_n)
        if keyed:  # published: the users' counts adjusted, the others the published total less the users
            shown_yes, shown_n = _published(yes_used, n_used, mine[yes_key].sum(), mine[n_key].sum())
            shown_ref_n = max(int(shown_total_n) - int(shown_n), 0)
            shown = (int(shown_yes), int(shown_n), min(max(int(shown_total_yes) - int(shown_yes), 0), shown_ref_n),
                     shown_ref_n)
        ratio = low = high = np.nan
        # Compared only when the published counts (which say why a group is not compared) and the exact ones allow.
        if all(a >= stats.MIN_DENOMINATOR and b >= stats.MIN_DENOMINATOR and c > 0 and d > 0
               for a, b, c, d in ((n_used, ref_n, yes_used, ref_yes), (shown[1], shown[3], shown[0], shown[2]))):
            yes, n = np.concatenate([total_yes - y1, y1]), np.concatenate([total_n - n1, n1])
            result = fit(x, yes, n)
            part = multi_used[multi_used["_k"] == name]
            cell = np.concatenate([multi["_cell"], part["_cell"] + size, part["_cell"]]).astype(np.int64)
            cluster = np.concatenate([multi["cluster"], part["cluster"], part["cluster"]])
            cn = np.concatenate([multi["n"], part["n"], -part["n"]])
            cy = np.concatenate([multi["yes"], part["yes"], -part["yes"]])
            cov = robust_covariance(x, result, yes, n, cluster, cell, cn, cy)
            at = x.shape[1] - 1
            ratio, low, high = _interval(result, cov, at)
        rows.append(("Using " + name, ratio, low, high, *shown))
    frame = pd.DataFrame(rows, columns=["group", "ratio", "ci_low", "ci_high", "yes", "answered",
                                        "reference_yes", "reference_answered"])
    return _shape(frame, column, "not using it", frame["reference_yes"], frame["reference_answered"], covariates)


def tactic_order(column: str) -> tuple[str, ...]:
    """Return the vocabulary order of a tactics column's values."""
    return tuple(schema.TACTIC_GROUPS) if column == "tactic_group" else schema.TACTICS


def expected_counts(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str, level: str,
                    adjust_for: Sequence[str] = DEFAULT_ADJUSTMENT) -> pd.DataFrame:
    """Return each group's observed and case-mix expected events (indirect standardisation).

    The model has the case-mix covariates only (not the level judged); a group's expected count is the sum of
    its reports' fitted means. With an intercept the expected counts add up to the observed ones.
    """
    if measure not in schema.HARM_FIELDS:
        raise ValueError(f"unknown measure {measure!r}")
    if level == "officer":
        refuse_officer_level(scope, "an officer funnel")
    covariates = [d for d in _columns(adjust_for) if d != level]
    keys = [f"d{i}" for i in range(len(covariates))]
    if level == "officer":
        extra = {"_group": lambda t: t.officer_id.cast("string").fill_null(NOT_RECORDED)}
    else:
        extra = {"_group": lambda t: query.DIMENSIONS[level](t).cast("string").fill_null(NOT_RECORDED)}
    t = _answered(engine, ds, filters, scope, measure, covariates, extra)
    pattern_keys = keys or ["_all"]
    if not keys:
        t = t.mutate(_all=ibis.literal(0))
    cells = _cells(engine, t, pattern_keys)
    codes, levels, refs = _codes(cells, keys, {})
    x = design(codes, [len(v) for v in levels], refs)
    result = fit(x, cells["yes"].to_numpy(), cells["n"].to_numpy())
    patterns = ibis.memtable(cells[pattern_keys].assign(_mean=result.mean))
    joined = t.join(patterns, pattern_keys)
    keyed = _keyed(t)
    sums = ({cellkey.key_column("reports"): query.key_sum(joined),
             cellkey.key_column("observed"): query.key_sum(joined, joined._y == 1)} if keyed else {})
    frame = engine.execute(joined.group_by(group=joined._group).aggregate(
        reports=joined.count(), observed=joined._y.sum(), expected=joined._mean.sum(), **sums))
    frame["observed"] = frame["observed"].fillna(0).astype("int64")
    if keyed:
        # Published observed counts; the expected ones (a model's, which add up to the exact observed total)
        # are scaled to add up to the published total instead, so their sum gives no exact count away.
        exact = int(frame["observed"].sum())
        frame = cellkey.perturb_frame(frame, ["reports", "observed"], [("observed", "reports")])
        if exact > 0:
            frame["expected"] = frame["expected"] * (int(frame["observed"].sum()) / exact)
    return frame[["group", "observed", "expected", "reports"]].sort_values("group").reset_index(drop=True)


def basis(adjust_for: Sequence[str]) -> str:
    """Say what a comparison is adjusted for ('crude', or 'adjusted for role, shift and crewing')."""
    names = [SHORT_NAMES.get(d, LABELS.get(d, d).lower()) for d in adjust_for]
    if not names:
        return "crude (not adjusted for case mix)"
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"adjusted for {joined}"


# --- which comparisons are judged -----------------------------------------------------------

COMPARED = "compared"
REFERENCE = "reference"
TOO_FEW = "too few to compare"
NO_EVENTS = "no events"
NO_REFERENCE_EVENTS = "no events in the reference"
NOT_ESTIMABLE = "not estimable"
HIDDEN = "not shown (disclosure control)"


def ratio_status(frame: pd.DataFrame, minimum: int = stats.MIN_DENOMINATOR) -> pd.Series:
    """Say for each row of a ratios frame whether it is compared, or why not (too few, no events).

    Below `minimum` answering reports (in the group or its reference) a group is shown but never judged; a
    group with no events has no ratio to draw (a continuity-corrected point would invent one).
    """
    if not len(frame):
        return pd.Series([], dtype=object, index=frame.index)
    answered = pd.to_numeric(frame["answered"], errors="coerce").to_numpy(dtype="float64")
    ref_answered = pd.to_numeric(frame["reference_answered"], errors="coerce").to_numpy(dtype="float64")
    yes = pd.to_numeric(frame["yes"], errors="coerce").to_numpy(dtype="float64")
    ref_yes = pd.to_numeric(frame["reference_yes"], errors="coerce").to_numpy(dtype="float64")
    ratio = pd.to_numeric(frame["ratio"], errors="coerce").to_numpy(dtype="float64")
    is_reference = (frame["group"].astype(str) == frame["reference"].astype(str)).to_numpy()
    status = np.select(
        [is_reference, np.isnan(answered) | np.isnan(yes) | np.isnan(ref_answered) | np.isnan(ref_yes),
         (answered < minimum) | (ref_answered < minimum), yes == 0, ref_yes == 0,
         ~np.isfinite(ratio)],
        [REFERENCE, HIDDEN, TOO_FEW, NO_EVENTS, NO_REFERENCE_EVENTS, NOT_ESTIMABLE], COMPARED)
    return pd.Series(status, index=frame.index, dtype=object)


def basis_of(frame: pd.DataFrame) -> str:
    """Say whether a ratios frame is crude or adjusted, and for what."""
    if "adjusted_for" not in frame.columns or not len(frame):
        return basis(())
    return basis(tuple(frame["adjusted_for"].iloc[0] or ()))
