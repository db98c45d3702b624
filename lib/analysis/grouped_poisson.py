"""The conditional (fixed-effects) Poisson fit of an officer-month panel, by design cells instead of rows.

In the training models every row's design depends only on its cell: the officer's training month (or never)
and the calendar month. The conditional likelihood of officer i is then

    sum_t y_it (log s_it + a_ct) - n_i log Z_i,   Z_i = sum_t s_it exp(a_ct),   a = A theta,

with s the shifts worked, c the officer's group and A the cells' design rows. Its gradient, information matrix
and cluster scores reduce to products of each group's dense officer x month matrix of shifts with vectors and a
weighted Gram matrix: BLAS work per officer-month, with no sparse design of millions of rows and no exponential per
row. The fit is the same as the row-wise one in `training._conditional_fit` (the same Newton steps and step
halving; the rounding differs), which stays for designs that are not built from cells.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


class _Groups:
    """Officers sorted by group, with each group's dense matrices of shifts and counts (officers x months)."""

    def __init__(self, unit: np.ndarray, column: np.ndarray, group: np.ndarray, y: np.ndarray,
                 shifts: np.ndarray, months: int) -> None:
        units = int(unit.max()) + 1
        unit_group = np.zeros(units, dtype=np.int64)
        unit_group[unit] = group
        self.order = np.argsort(unit_group, kind="stable")  # sorted position -> unit
        rank = np.empty(units, dtype=np.int64)
        rank[self.order] = np.arange(units)
        self.rank = rank  # unit -> sorted position
        sorted_group = unit_group[self.order]
        self.labels, starts = np.unique(sorted_group, return_index=True)
        self.slices = [slice(a, b) for a, b in zip(starts, [*starts[1:], units], strict=True)]
        self.shifts = np.zeros((units, months))
        self.counts = np.zeros((units, months))
        self.shifts[rank[unit], column] = shifts
        self.counts[rank[unit], column] = y
        self.months = months


def identified(colsum: np.ndarray, rows: float, month_columns: int = 0) -> np.ndarray:
    """Return which design columns a fit can estimate, from each column's rows in the fit (colsum) of rows.

    A column is identified only if it varies within some officer (else the officer effect absorbs it). The first
    month_columns columns are month indicators (every month but the first, the reference). Where the reference
    month has no row in the fit (a filter window that leaves the roster's first month out) they cover every row
    between them: with the officers' effects they are then collinear, the likelihood is flat along them all at
    once, and Newton's steps wander along that line without converging. The first month in the fit is then the
    reference instead; the fitted values, and every figure made from them, are the same.
    """
    used = (colsum > 0) & (colsum < rows)
    months = np.flatnonzero(used[:month_columns])
    if months.size and colsum[months].sum() >= rows:
        used[months[0]] = False
    return used


def applies(unit: np.ndarray, column: np.ndarray, group: np.ndarray, months: int) -> bool:
    """Say whether rows suit the cell form: one row per officer and month, and one group per officer."""
    if not unit.size:
        return True
    key = unit.astype(np.int64) * months + column
    if np.bincount(key).max() > 1:  # a count per officer-month: far cheaper than np.unique on millions of keys
        return False
    unit_group = np.zeros(int(unit.max()) + 1, dtype=np.int64)
    unit_group[unit] = group
    return bool(np.all(unit_group[unit] == group))


def fit(y: np.ndarray, offset: np.ndarray, unit: np.ndarray, cell: np.ndarray, design: Any,
        cell_group: np.ndarray, cell_month: np.ndarray, months: int, *, tol: float = 1e-9, max_iter: int = 50,
        start: np.ndarray | None = None, blocks: np.ndarray | None = None,
        block_factor: Callable[[np.ndarray, np.ndarray], Any] | None = None,
        solve: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        inverse: Callable[[np.ndarray], np.ndarray] | None = None, month_columns: int = 0) -> dict[str, Any]:
    """Fit the conditional Poisson of rows whose design is `design[cell]`; return what `_conditional_fit` does.

    cell (per row) indexes the rows of `design` (cells x columns, sparse or dense); cell_group and cell_month give
    each cell's officer group and month column (0..months-1); an officer's rows share one group and no two of
    them share a month. Instead of a score matrix the result has `score_dot` (the scores times a vector, one
    value per officer kept) and `score_gram` (scores' scores), which are all the sandwich needs.
    """
    n_units = int(unit.max()) + 1 if unit.size else 0
    total = np.bincount(unit, weights=y, minlength=n_units)
    kept = total[unit] > 0 if unit.size else np.zeros(0, dtype=bool)
    p_all = design.shape[1]
    used = np.zeros(p_all, dtype=bool)
    empty = {"theta": None, "covariance": None, "solve": None, "scores": None, "clusters": 0, "unit_kept": None,
             "kept": kept, "used": used}
    if not kept.any():
        return empty
    cells = design.shape[0]
    rows_in_cell = np.bincount(cell[kept], minlength=cells).astype(np.float64)
    matrix = design.toarray() if hasattr(design, "toarray") else np.asarray(design, dtype=np.float64)
    # A column is identified only if it varies within some officer (else the officer effect absorbs it).
    used = identified(matrix.T @ rows_in_cell, int(kept.sum()), month_columns)
    matrix = matrix[:, used]
    # Kept officers renumbered 0..g-1 in the order of their codes (a count, not a hash of millions of rows).
    present = np.bincount(unit[kept], minlength=n_units) > 0
    unit_kept = np.flatnonzero(present)
    uk = (np.cumsum(present) - 1)[unit[kept]]
    ck = cell[kept]
    groups = _Groups(uk, cell_month[ck], cell_group[ck], y[kept], np.exp(offset[kept]), months)
    constant = float(y[kept] @ offset[kept])  # the log-likelihood's sum of y log(shifts): as the row-wise fit has it
    return fit_groups(groups, matrix, used, kept, unit_kept, constant, cell_group, cell_month, start=start,
                      max_iter=max_iter, tol=tol, blocks=blocks, block_factor=block_factor, solve=solve,
                      inverse=inverse)


@dataclass
class _Part:
    """One group's officer-months in a fit: rows (positions among the sorted officers), their shifts and counts
    (rows x the months fitted), the design of those months, and per officer the events n, n > 0 and sqrt(n)."""

    rows: np.ndarray
    shifts: np.ndarray
    counts: np.ndarray
    block: np.ndarray
    n: np.ndarray
    events: np.ndarray
    counted: np.ndarray
    root_n: np.ndarray
    total: float


def fit_groups(groups: Any, matrix: np.ndarray, used: np.ndarray, kept: Any, unit_kept: np.ndarray,
               constant: float, cell_group: np.ndarray, cell_month: np.ndarray, *, tol: float = 1e-9,
               max_iter: int = 50, start: np.ndarray | None = None, blocks: np.ndarray | None = None,
               block_factor: Callable[[np.ndarray, np.ndarray], Any] | None = None,
               solve: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
               inverse: Callable[[np.ndarray], np.ndarray] | None = None, included: np.ndarray | None = None,
               masks: np.ndarray | None = None) -> dict[str, Any]:
    """Fit the conditional Poisson from each group's officer x month matrices (`_Groups`, or the same made densely).

    matrix holds the identified columns of the cells' design; kept and unit_kept are returned as given (what the
    caller counts as rows and officers kept). groups has shifts and counts (officers x months), slices (each group's
    officers), labels (each slice's group), rank (unit_kept order -> sorted position) and months.

    Without included and masks the matrices are zero off the fit's rows. With them they may hold more: the fit's
    officer-months are then those of the officers included (a flag per sorted position) in the months their group's
    mask (masks[label], a months mask of 0 and 1) holds. Those are gathered once per fit, group by group, so each
    Newton step reads only them (a staggered model's fit holds about a third of a view's officer-months).
    """
    months = groups.months
    g = unit_kept.size
    p = matrix.shape[1]
    empty = {"theta": None, "covariance": None, "solve": None, "scores": None, "clusters": 0, "unit_kept": None,
             "kept": kept, "used": used}
    inc = None if included is None else np.asarray(included, dtype=bool)
    # Each group's officer-months in the fit, gathered once: the officers included and the months its mask holds
    # (a trained cohort's fit keeps about two months in five). Every Newton step then works on these alone.
    # Each group's design by month column (months x identified columns); a month the group has no cell in (no
    # officer of the group has shifts there) is zero.
    fitted: list[_Part] = []
    for label, s in zip(groups.labels, groups.slices, strict=True):
        mine = np.flatnonzero(cell_group == label)
        block = np.zeros((months, p))
        block[cell_month[mine]] = matrix[mine]
        cols = np.arange(months) if masks is None else np.flatnonzero(np.asarray(masks[label]) != 0)
        rows = np.arange(s.stop - s.start) if inc is None else np.flatnonzero(inc[s])
        if not cols.size or not rows.size:
            continue  # nothing of this group is fitted: its officers' scores are zero
        whole = rows.size == s.stop - s.start and cols.size == months
        shifts = groups.shifts[s] if whole else groups.shifts[s][np.ix_(rows, cols)]
        counts = groups.counts[s] if whole else groups.counts[s][np.ix_(rows, cols)]
        n = counts.sum(axis=1)
        fitted.append(_Part(s.start + rows, shifts, counts, block[cols], n, counts.sum(axis=0), n > 0,
                            np.sqrt(n), float(n.sum())))
    theta = np.zeros(p) if start is None else np.asarray(start, dtype=np.float64)[used].copy()
    labels = None if blocks is None or not p else np.asarray(blocks)[used]

    def state(t: np.ndarray) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]] | None:
        # Per group: exp(a - max a) by month, and each officer's Z at that shift; None if some Z underflows.
        loglik, parts = constant, []
        for part in fitted:
            a = part.block @ t
            top = float(a.max())
            e = np.exp(a - top)
            z = part.shifts @ e
            if np.any((z <= 0) & part.counted):
                return None
            log_z = np.log(z, out=np.zeros_like(z), where=part.counted)
            loglik += float(part.events @ a) - float(part.n @ log_z) - top * part.total
            parts.append((e, z))
        return loglik, parts

    current = state(theta)
    if current is None:
        return {**empty, "fallback": True}
    loglik, parts = current
    hessian = np.zeros((p, p))
    factor = None
    # One scratch matrix per group, written in place every step: a fresh officers x months array each step costs
    # more in fresh memory pages than the product it feeds.
    scratch = [np.empty_like(part.shifts) for part in fitted]
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        gradient = np.zeros(p)
        hessian = np.zeros((p, p))
        for part, room, (e, z) in zip(fitted, scratch, parts, strict=True):
            positive = z > 0
            w = np.divide(part.n, z, out=np.zeros_like(z), where=positive)
            mu = e * (part.shifts.T @ w)  # expected events per month of the group
            gradient += part.block.T @ (part.events - mu)
            scaled = np.multiply(part.shifts, np.divide(part.root_n, z, out=np.zeros_like(z), where=positive)[:, None],
                                 out=room)
            cross = (scaled.T @ scaled) * np.outer(e, e)
            info = np.diag(mu) - cross
            hessian += part.block.T @ info @ part.block
        factor = None if labels is None or block_factor is None else block_factor(hessian, labels)
        step = solve(hessian, gradient) if factor is None else factor(gradient)
        # Halve a step that lowers the likelihood: thin cells in a small panel can make a full step overshoot.
        new = None
        for _ in range(30):
            new = state(theta + step)
            if new is not None and new[0] >= loglik - 1e-9 * (1 + abs(loglik)):
                break
            step = step / 2
        if new is None:
            return {**empty, "fallback": True}
        theta += step
        loglik, parts = new
        if np.max(np.abs(step), initial=0.0) < tol:
            break
    # Residuals per officer and month fitted: the scores are each group's design applied to them. They take the
    # scratch matrices' place (their memory is in use already). Officers and months outside the fit score zero.
    gram = np.zeros((p, p))
    for part, residuals, (e, z) in zip(fitted, scratch, parts, strict=True):
        w = np.divide(part.n, z, out=np.zeros_like(z), where=z > 0)
        np.multiply(part.shifts, e[None, :], out=residuals)  # counts - shifts * e * w, computed in place
        residuals *= w[:, None]
        np.subtract(part.counts, residuals, out=residuals)
        gram += part.block.T @ (residuals.T @ residuals) @ part.block

    def score_dot(vector: np.ndarray) -> np.ndarray:
        # A vector gives a value per officer; a matrix (columns x k) a row of k per officer.
        vector = np.asarray(vector)
        out = np.zeros((groups.counts.shape[0], *vector.shape[1:]))
        for part, residuals in zip(fitted, scratch, strict=True):
            out[part.rows] = residuals @ (part.block @ vector)
        return out[groups.rank]  # in the order of unit_kept

    out = {"theta": theta, "scores": None, "score_dot": score_dot, "score_gram": gram, "clusters": g,
           "covariance": None, "unit_kept": unit_kept, "kept": kept, "used": used, "iterations": iterations}
    if factor is not None:  # the last Newton step's information is the bread's: its factors serve both
        return {**out, "solve": factor}
    bread = inverse(hessian)
    meat = gram * (g / max(g - 1, 1))
    return {**out, "covariance": bread @ meat @ bread, "solve": bread.__matmul__}
