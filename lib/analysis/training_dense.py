"""The training models on dense officer x month matrices: the roster's share is made once per dataset version.

`training.effects_and_profile` works on an officer-month panel of rows (15 million at 5 million reports) and
passes over it hundreds of times. Here the roster's share (shifts worked, who is judged, each officer's training
cohort) is an officers x months matrix built once per roster (`DenseRoster`), officers sorted by cohort; a filter
state brings only its counts, scattered into matrices of the same shape (`DensePanel`). Every model, ratio, rate
and count of `training` is computed on these matrices, cohort by cohort, as dense array and BLAS work. The figures
are the row panel's (`tests/test_training_dense.py` holds them equal to 1e-9; the pin of the page's figures runs
through this path); on the rare panel the cell fit refuses (an underflowing officer total) the row path answers.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from lib.analysis import grouped_poisson
from lib.analysis import training as tr
from lib.privacy import cellkey

THREADS = 2  # measures fitted at once (the machines this runs on have two cores or more)
FORMAT = 1  # the layout of a saved `DenseRoster`: a new number leaves older files unread


def save(roster: DenseRoster, path: Path) -> None:
    """Keep a roster's matrices on disk (written whole, then renamed: a reader never sees half a file)."""
    import pickle

    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as out:
            pickle.dump((FORMAT, roster), out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)
    except OSError:  # a read-only or full disk: the matrices are rebuilt next time, nothing is lost
        with contextlib.suppress(OSError):
            partial.unlink()


def load(path: Path) -> DenseRoster | None:
    """Return a roster's matrices kept by `save` (None: none kept, or of another format)."""
    import pickle

    try:
        with path.open("rb") as source:
            version, roster = pickle.load(source)  # the app's own file under its cache directory
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError):
        return None
    return roster if version == FORMAT and isinstance(roster, DenseRoster) else None


class _Refused(Exception):
    """The cell fit refused the panel (an officer's expected total underflowed): the row path must answer."""


class DenseRoster:
    """The roster's share of the panel: officers (sorted by training month, never trained last) x judged months.

    shifts holds the shifts worked where an officer-month is judged (shifts recorded and not the training month
    itself) and zero elsewhere; `since` is each cohort's months since training by month (NaN: never trained).
    """

    def __init__(self, months: tr.RosterMonths) -> None:
        officer = months.keys // tr._MONTH_SPAN
        ordinal = months.keys % tr._MONTH_SPAN
        shifts = np.nan_to_num(months.shifts, nan=0.0)
        since = ordinal - months.trained_index[officer]
        judged = (shifts > 0) & (since != 0)  # NaN (never trained) is not 0
        self.month_ordinal = np.unique(ordinal[judged])
        self.months = int(self.month_ordinal.size)
        trained = months.trained_index
        listed = np.unique(officer[judged])  # officers with a judged month; the rest never enter a model
        cohorts = np.unique(trained[listed][~np.isnan(trained[listed])])
        self.cohort_trained = np.concatenate([cohorts, [np.nan]])  # never trained: the last cohort
        cohort_of = np.searchsorted(cohorts, trained[listed])
        cohort_of[np.isnan(trained[listed])] = cohorts.size
        order = np.argsort(cohort_of, kind="stable")  # within a cohort, officers stay in id order
        self.officers = listed[order]  # row -> officer code of `months.ids`
        self.ids = months.ids
        self._id_set = None
        self.cohort = cohort_of[order]
        row = np.full(months.ids.size, -1, dtype=np.int64)
        row[self.officers] = np.arange(self.officers.size)
        self.row_of = row  # officer code -> row (-1: not in any model)
        self.shape = (self.officers.size, self.months)
        self.shifts = np.zeros(self.shape)
        at = judged
        self.shifts[row[officer[at]], np.searchsorted(self.month_ordinal, ordinal[at])] = shifts[at]
        self.judged = self.shifts > 0
        bounds = np.searchsorted(self.cohort, np.arange(self.cohort_trained.size + 1))
        self.slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.since = self.month_ordinal[None, :] - self.cohort_trained[:, None]  # cohorts x months
        self.has_row = np.array([self.judged[s].any(axis=0) for s in self.slices]).reshape(-1, self.months)
        self.shift_totals = np.array([self.shifts[s].sum(axis=0) for s in self.slices]).reshape(-1, self.months)
        # Officers by cohort and pattern of judged months: the officers a filter state counts no report of enter the
        # event profile's counts of officers by pattern (a few hundred), not one by one.
        packed = np.packbits(self.judged, axis=1)
        signature = np.column_stack([self.cohort.astype(np.int64).view(np.uint8).reshape(-1, 8), packed])
        signature = np.ascontiguousarray(signature).view(np.dtype((np.void, signature.shape[1]))).ravel()
        _, first, self.pattern_of = np.unique(signature, return_index=True, return_inverse=True)
        self.pattern_of = self.pattern_of.reshape(-1)
        self.patterns = self.judged[first]
        self.pattern_cohort = self.cohort[first]
        self.pattern_count = np.bincount(self.pattern_of, minlength=first.size)
        self.any_judged = bool(self.judged.any())

    def rows(self, ids: pd.Series | Any) -> np.ndarray:
        """Return the row of each officer id (a Series or an Arrow string array; -1: not a judged officer, or null)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self._id_set is None:  # Arrow's hash lookup: a third of pandas' on millions of string ids
            self._id_set = pa.array(self.ids.to_numpy(dtype=object), pa.string())
        if isinstance(ids, pa.Array):
            values = ids.cast(pa.string())
        else:
            try:
                values = pa.array(ids, pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                values = pa.array(ids.astype(str).to_numpy(dtype=object), pa.string())
        codes = pc.index_in(values, value_set=self._id_set).fill_null(-1).to_numpy(zero_copy_only=False)
        return np.where(codes >= 0, self.row_of[np.maximum(codes, 0)], -1)

    def columns(self, month: Any) -> np.ndarray:
        """Return the column of each month (-1: not a judged month)."""
        month = pd.Series(month)
        if not pd.api.types.is_datetime64_dtype(month.dtype):
            month = pd.to_datetime(month)
            if getattr(month.dt, "tz", None) is not None:  # the local month, as `dt.to_period` reads it
                month = month.dt.tz_localize(None)
        ordinal = tr._month_ordinal(month.to_numpy())  # the month of a timestamp (truncated or not)
        at = np.searchsorted(self.month_ordinal, ordinal)
        found = at < self.months
        found[found] = self.month_ordinal[at[found]] == ordinal[found]
        return np.where(found, at, -1)


class _View:
    """Some of a roster's officers (rows, ascending: still sorted by cohort) with their matrices."""

    def __init__(self, roster: DenseRoster, rows: np.ndarray, columns: dict[str, np.ndarray],
                 officer_keys: np.ndarray | None) -> None:
        self.roster, self.rows, self._columns = roster, rows, columns
        self.shifts = roster.shifts[rows]
        self.judged = self.shifts > 0
        self.cohort = roster.cohort[rows]
        bounds = np.searchsorted(self.cohort, np.arange(len(roster.slices) + 1))
        self.slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.months, self.since, self.has_row = roster.months, roster.since, roster.has_row
        self.shape = (rows.size, roster.months)
        self.officer_keys = officer_keys  # every roster officer's (perturbed scopes), by roster row
        self._months: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # `months_of`, by months and matrix

    def months_of(self, months: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the shifts and a matrix of this view's (`values`) in some months only (kept for the next fit)."""
        if months.size == self.months:
            return self.shifts, values
        if months.size and months[-1] - months[0] + 1 == months.size:  # a run of months (a filter window): views
            run = slice(int(months[0]), int(months[-1]) + 1)
            return self.shifts[:, run], values[:, run]
        key = (months.tobytes(), id(values))
        found = self._months.get(key)
        if found is None:  # two threads may both make it: the same arrays, no harm
            found = self._months[key] = (np.ascontiguousarray(self.shifts[:, months]),
                                         np.ascontiguousarray(values[:, months]))
        return found

    def values(self, column: str) -> np.ndarray:
        """Return a count (or key sum) by officer and month."""
        if column not in self._columns:
            raise ValueError(f"counts cannot be perturbed without their reports' key sums ({column}): build the "
                             "officer-month counts with a perturbed scope")
        return self._columns[column]

    def keys(self) -> np.ndarray:
        """Return these officers' record keys."""
        if self.officer_keys is None:
            raise ValueError(f"officer counts cannot be perturbed without the officers' record keys ({tr.OFFICER_KEY})")
        return self.officer_keys[self.rows]

    def subset(self, mask: np.ndarray, columns: tuple[str, ...] | None = None) -> _View:
        """Return the officers in mask (with some of the counts only, if columns names them)."""
        return _View(self.roster, self.rows[mask], {k: v[mask] for k, v in self._columns.items()
                                                    if columns is None or k in columns}, self.officer_keys)


class DensePanel:
    """A filter state's counts (and, perturbed, their key sums) on a roster's officers x months.

    Only officers with a report counted in a judged month get rows: no model, ratio or count of events needs the
    others, and the event profile counts them by their pattern of judged months (`DenseRoster.patterns`).
    """

    def __init__(self, roster: DenseRoster, counts: pd.DataFrame, officer_keys: np.ndarray | None = None) -> None:
        """counts: per officer-month (officer_id, month and the counts, as `training.officer_month_counts`)."""
        self.roster = roster
        rows, cols = roster.rows(counts["officer_id"]), roster.columns(counts["month"])
        at = (rows >= 0) & (cols >= 0)
        at[at] = roster.judged[rows[at], cols[at]]  # a count where no shifts were recorded (or the training month)
        reports = counts["reports"].to_numpy(dtype=np.float64, na_value=0.0)
        counted = np.unique(rows[at & (reports > 0)])
        local = np.full(roster.shape[0], -1, dtype=np.int64)
        local[counted] = np.arange(counted.size)
        rows, cols = local[rows[at]], cols[at]
        columns = {}
        for column in counts.columns.drop(["officer_id", "month"]):
            matrix = np.zeros((counted.size, roster.months))
            matrix[rows, cols] = counts[column].to_numpy(dtype=np.float64, na_value=0.0)[at]
            columns[column] = matrix
        for measure in tr.MEASURES:
            columns.setdefault(measure, np.zeros((counted.size, roster.months)))
        self.view = _View(roster, counted, columns, officer_keys)
        self.officer_keys = officer_keys

    @classmethod
    def from_reports(cls, roster: DenseRoster, rows: np.ndarray, ordinal: np.ndarray, injured: np.ndarray,
                     assaulted: np.ndarray, record_keys: np.ndarray | None = None,
                     officer_keys: np.ndarray | None = None) -> DensePanel:
        """Count reports (each with its officer's roster row and month number) into the matrices.

        The same matrices as counting per officer-month first: counts are sums of 0s and 1s, exact in any order.
        """
        months = roster.months
        first = int(roster.month_ordinal[0]) if months else 0
        if months and int(roster.month_ordinal[-1]) - first + 1 == months:  # consecutive months: a subtraction
            cols = ordinal - first
            at = (rows >= 0) & (cols >= 0) & (cols < months)
        else:
            cols = np.searchsorted(roster.month_ordinal, ordinal)
            at = (rows >= 0) & (cols < months)
            at[at] = roster.month_ordinal[cols[at]] == ordinal[at]
        # Judged (shifts recorded, not the training month): one gather from the flat matrix.
        at &= np.ravel(roster.judged)[np.where(at, rows * months + cols, 0)]
        rows, cols = rows[at], cols[at]
        counted = np.flatnonzero(np.bincount(rows, minlength=roster.shape[0]) > 0)
        local = np.full(roster.shape[0], -1, dtype=np.int64)
        local[counted] = np.arange(counted.size)
        cell = local[rows] * roster.months + cols
        size = counted.size * roster.months

        def add(weights: np.ndarray | None) -> np.ndarray:
            found = np.bincount(cell, weights=weights, minlength=size)  # floats with weights: no copy then
            return found.astype(np.float64, copy=False).reshape(-1, roster.months)

        keys = None if record_keys is None else record_keys[at].astype(np.float64)
        # Weights of one: a float count directly (counted as integers, the matrix would be copied to floats).
        columns = {"reports": add(np.ones(cell.size))}
        if keys is not None:
            columns[cellkey.key_column("reports")] = add(keys)
        panel = cls.__new__(cls)
        panel.roster, panel.officer_keys = roster, officer_keys
        panel.view = _View(roster, counted, columns, officer_keys)
        panel._views = {"reports": panel.view}
        # Injuries and assaults: matrices of the officers with one only (`of` would otherwise cut them out of
        # matrices of every officer with a report, at national scale three times the rows).
        for measure, flags in (("officer_injured", injured[at]), ("officer_assaulted", assaulted[at])):
            hit = flags > 0
            officers = np.flatnonzero(np.bincount(rows[hit], minlength=roster.shape[0]) > 0)
            local[officers] = np.arange(officers.size)
            cell = local[rows[hit]] * roster.months + cols[hit]
            size = officers.size * roster.months
            columns = {measure: add(flags[hit].astype(np.float64))}
            if keys is not None:
                columns[cellkey.key_column(measure)] = add(keys[hit] * flags[hit])
            panel._views[measure] = _View(roster, officers, columns, officer_keys)
        return panel

    def views(self) -> list[_View]:
        """Return the views that hold the counts (one for every measure, or one per measure)."""
        return list(getattr(self, "_views", {"reports": self.view}).values())

    def of(self, measure: str) -> _View:
        """Return the officers with a count of measure (injuries and assaults are counted among reports)."""
        if measure in getattr(self, "_views", {}):
            return self._views[measure]
        if measure == "reports":
            return self.view
        return self.view.subset(self.view.values(measure).sum(axis=1) > 0, (measure, cellkey.key_column(measure)))


def key_rows(engine: Any, ds: Any, roster: DenseRoster) -> np.ndarray | None:
    """Return the roster row of each of a dataset's integer officer keys (-1: not in the roster), if it has them.

    The ids by key are the engine's, read once as the dataset opened (`fastpath.officer_names`).
    """
    from lib.engine import fastpath

    if not fastpath.has_officer_keys(engine, ds):
        return None
    return roster.rows(fastpath.officer_names(engine, ds).ids)


def counted(engine: Any, ds: Any, filters: Any, scope: Any, roster: DenseRoster,
            officer_keys: np.ndarray | None = None, rows_of_keys: np.ndarray | None = None) -> DensePanel:
    """Count a filter state's officer-months into a roster's matrices (the page's path).

    With `rows_of_keys` (`key_rows`, once per dataset version) and an engine that has them, the reports come
    from one scan as arrays of integer officer keys and months, added up here; otherwise the counts come from
    `training.officer_month_counts`.
    """
    from lib.engine import fastpath

    found = fastpath.officer_month_reports(engine, ds, filters, scope) if rows_of_keys is not None else None
    if found is not None:
        return DensePanel.from_reports(roster, rows_of_keys[found["officer"]], found["month"], found["injured"],
                                       found["assaulted"], found.get("record_key"), officer_keys)
    return DensePanel(roster, tr.officer_month_counts(engine, ds, filters, scope), officer_keys)


def effects_and_profile(panel: DensePanel, perturbed: bool = False) -> tuple[dict[str, dict[str, Any]], pd.DataFrame]:
    """Return `training.effects_and_profile` of the same panel: every measure's effect and the use-of-force profile."""
    if perturbed and panel.officer_keys is None:
        raise ValueError(f"officer counts cannot be perturbed without the officers' record keys ({tr.OFFICER_KEY})")
    from concurrent.futures import ThreadPoolExecutor

    views = {measure: panel.of(measure) for measure in tr.MEASURES}
    # Six pieces on two cores, the largest first: the matrix work releases the interpreter lock. A staggered
    # model hands its lead model (started from its estimates) to the pool and goes on with its ratios and profile;
    # it runs the lead model itself if no thread has taken it up by the time it needs the test.
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        staggered, two_way = {}, {}
        for measure in sorted(tr.MEASURES, key=lambda m: -views[m].shape[0]):
            staggered[measure] = pool.submit(staggered_effect, views[measure], measure, perturbed=perturbed,
                                             profile=measure == "reports", spawn=pool.submit)
            two_way[measure] = pool.submit(difference_in_differences, views[measure], measure)
        found = {}
        for measure in tr.MEASURES:
            result, old = staggered[measure].result(), two_way[measure].result()
            result["twfe"] = {key: old[key] for key in ("estimate", "ci_low", "ci_high")}
            found[measure] = result
    return found, found["reports"].pop("profile")


def _by_cohort(view: _View, values: np.ndarray, officers: np.ndarray | None = None) -> np.ndarray:
    """Sum an officers x months matrix by cohort, officers weighted by `officers` (flags or numbers) if given."""
    out = np.zeros((len(view.slices), view.months))
    for cohort, s in enumerate(view.slices):
        if s.start != s.stop:
            out[cohort] = values[s].sum(axis=0) if officers is None else officers[s].astype(np.float64) @ values[s]
    return out


def _per_officer(view: _View, values: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Return each officer's sum of an officers x months matrix over their cohort's cells (cohorts x months)."""
    out = np.zeros(view.shape[0])
    for cohort, s in enumerate(view.slices):
        if s.start != s.stop and cells[cohort].any():
            out[s] = values[s] @ cells[cohort].astype(np.float64)
    return out


def _published_officers(panel: _View, officers: np.ndarray) -> int:
    """Return the published count of the officers flagged."""
    return cellkey.perturb_one(int(officers.sum()), int(panel.keys()[officers].sum()))


def _rates(panel: _View, measure: str, perturbed: bool = False) -> dict[str, dict[str, float]]:
    """Crude rates per 1,000 officer-shifts over every judged officer-month, as `training._rates`."""
    roster = panel
    y = _by_cohort(panel, panel.values(measure))
    keys = _by_cohort(panel, panel.values(cellkey.key_column(measure))) if perturbed else None
    since = roster.since
    groups = {"trained_before": since < 0, "trained_after": since > 0, "never_trained": np.isnan(since)}
    out = {}
    for name, cells in groups.items():
        total = float(roster.roster.shift_totals[cells].sum())  # every officer's shifts, counted or not
        events = int(round(float(y[cells].sum())))
        if keys is not None:
            events = cellkey.perturb_one(events, int(round(float(keys[cells].sum()))))
        rate = events / total * tr.PER_SHIFTS if total else float("nan")
        out[name] = {"events": events, "shifts": total, "rate": rate}
    return out


def _cells(panel: _View, measure: str) -> dict[str, Any]:
    """Return what `training._saturated`'s models share, as cohort x month masks and flags per officer.

    An officer-month is kept when the officer has a judged month before training in an observed month
    (`before`) and its cohort's month is kept (`keep_cells`); its shifts are zero and it has no count where it
    is not judged, so no officers x months mask is made.
    """
    roster = panel
    y = panel.values(measure)
    months, since = roster.months, roster.since
    events = _by_cohort(panel, y)
    observed_month = events.sum(axis=0) > 0
    after = since >= 1
    not_after = observed_month[None, :] & ~after  # cohorts x months: observed and not after training
    before = _per_officer(panel, roster.shifts, not_after) > 0
    compared_month = (roster.has_row & not_after).any(axis=0)
    keep_cells = observed_month[None, :] & (compared_month[None, :] | ~after)
    # Design cells: each cohort's months with a judged row, numbered cohort by cohort.
    kinds = np.flatnonzero(roster.has_row.ravel())
    kind_group, kind_month = kinds // months, kinds % months
    kind_since = since[kind_group, kind_month]
    kind_treated = (kind_since >= 1) & observed_month[kind_month] & compared_month[kind_month]
    kind_rows = (_by_cohort(panel, roster.judged, before) * keep_cells)[kind_group, kind_month]
    kind_events = (_by_cohort(panel, y, before) * keep_cells)[kind_group, kind_month]
    cohort_kinds = np.flatnonzero(kind_treated & (kind_rows > 0))
    cohort_key = (kind_month[cohort_kinds] - kind_since[cohort_kinds]).astype(np.int64) * months \
        + kind_month[cohort_kinds]
    order = np.argsort(cohort_key, kind="stable")
    fitted_cells = np.zeros_like(keep_cells)
    fitted_cells[kind_group, kind_month] = ~kind_treated | (kind_events > 0)
    treated_cells = np.zeros_like(keep_cells)
    treated_cells[kind_group, kind_month] = kind_treated
    return {"y": y, "before": before, "not_after": not_after, "keep_cells": keep_cells,
            "fit_cells": keep_cells & fitted_cells, "treated_cells": treated_cells,
            "kind_group": kind_group, "kind_month": kind_month, "kind_since": kind_since,
            "cohort_kinds": cohort_kinds[order], "cells": cohort_key[order]}


def _saturated(panel: _View, measure: str, lead_months: int = 0, start: np.ndarray | None = None,
               shared: dict[str, Any] | None = None) -> dict:
    """Fit `training._saturated`'s model on the matrices: cohort x month effects after training, optional leads.

    Only officers with a count of the measure are in the view: the others have no level to fit and nothing to
    compare, and which months are compared and which cells exist is the whole roster's (`has_row`). shared:
    `_cells` of the same view and measure (the model with and without leads share them). With leads only the
    fit is returned (the pre-trend test needs no more).
    """
    from scipy import sparse

    roster = panel
    found = _cells(panel, measure) if shared is None else shared
    y, months, cohorts = found["y"], roster.months, len(roster.slices)
    kind_group, kind_month, kind_since = found["kind_group"], found["kind_month"], found["kind_since"]
    cohort_kinds, cells = found["cohort_kinds"], found["cells"]
    n_kinds = kind_group.size
    columns = [sparse.csr_matrix((np.ones(n_kinds), (np.arange(n_kinds), kind_month)), shape=(n_kinds, months))[:, 1:],
               sparse.csr_matrix((np.ones(cohort_kinds.size), (cohort_kinds, np.arange(cells.size))),
                                 shape=(n_kinds, cells.size))]
    if lead_months:
        leads = np.column_stack([kind_since == -k for k in range(lead_months, 0, -1)]).astype(np.float64)
        columns.append(sparse.csr_matrix(leads.reshape(n_kinds, lead_months)))
    design = sparse.hstack(columns, format="csr")
    if start is not None and start.size < design.shape[1]:
        start = np.concatenate([start, np.zeros(design.shape[1] - start.size)])
    blocks = _blocks(cells, months, kind_group[cohort_kinds], lead_months)
    fit_cells = found["fit_cells"]
    fit = _fit(roster, y, found["before"], fit_cells, design, kind_group, kind_month, start=start, blocks=blocks)
    if lead_months:
        return {"fit": fit}
    theta = np.zeros(design.shape[1])
    if fit["theta"] is not None:
        theta[fit["used"]] = fit["theta"]
    effect = np.zeros((cohorts, months))
    effect[kind_group, kind_month] = np.exp(design @ theta)
    fitted_effect = effect * fit_cells
    # Each officer's fitted scale: shifts x the cohort's month effect over the months fitted.
    scale = _per_officer(roster, roster.shifts, fitted_effect) * fit["in_fit"]
    level = np.divide(fit["events"], scale, out=np.zeros_like(scale), where=scale > 0)
    month_effect = np.exp(np.concatenate([[0.0], theta[:months - 1]]))
    never = np.zeros(roster.shape[0], dtype=bool)
    never[roster.slices[-1]] = True
    return {**found, "design": design, "fit": fit, "in_fit": fit["in_fit"], "fitted_effect": fitted_effect,
            "scale": scale, "level": level, "month_effect": month_effect, "months": months, "never": never,
            "theta": theta, "roster": roster, "judged_cells": found["treated_cells"] & found["keep_cells"]}


def _blocks(cells: np.ndarray, months: int, cell_cohort: np.ndarray, lead_months: int) -> np.ndarray | None:
    """Label the cohort x month columns by cohort, as `training._cohort_blocks` (None: a cohort spans two labels)."""
    label = pd.factorize(cells // months)[0] if cells.size else np.zeros(0, dtype=np.int64)
    if cells.size and pd.unique(pd.Series(cell_cohort * (label.size + 1) + label)).size != pd.unique(cell_cohort).size:
        return None
    return np.concatenate([np.full(months - 1, -1), label, np.full(lead_months, -1)]).astype(np.int64)


class _Groups:
    """A view's matrices in `grouped_poisson.fit_groups`' form (sorted by cohort already); rank: the kept rows."""

    def __init__(self, shifts: np.ndarray, counts: np.ndarray, cohort: np.ndarray, months: int,
                 rank: np.ndarray) -> None:
        self.shifts, self.counts, self.months, self.rank = shifts, counts, months, rank
        self.labels, starts = np.unique(cohort, return_index=True)
        self.slices = [slice(int(a), int(b)) for a, b in zip(starts, [*starts[1:], cohort.size], strict=True)]


def _fit(roster: _View, y: np.ndarray, included: np.ndarray | None, fit_cells: np.ndarray, design: Any,
         kind_group: np.ndarray, kind_month: np.ndarray, start: np.ndarray | None = None,
         blocks: np.ndarray | None = None) -> dict[str, Any]:
    """Fit the conditional Poisson on the officer-months of the officers included in their cohort's fit_cells.

    `training._cell_fit`'s result, with each officer's events in the fit (`events`) and a flag for the officers
    kept (`in_fit`: included, with an event in the fit).
    """
    events = _per_officer(roster, y, fit_cells)
    if included is not None:
        events *= included
    officers = events > 0
    used = np.zeros(design.shape[1], dtype=bool)
    empty = {"theta": None, "covariance": None, "solve": None, "scores": None, "clusters": 0, "unit_kept": None,
             "kept": officers, "used": used, "in_fit": officers, "events": events}
    if not officers.any():
        return empty
    rows_in_cell = (_by_cohort(roster, roster.judged, officers) * fit_cells)[kind_group, kind_month]
    matrix = design.toarray()
    used = grouped_poisson.identified(matrix.T @ rows_in_cell, rows_in_cell.sum(), roster.months - 1)
    unit_kept = np.flatnonzero(officers)
    # Only the months some cohort fits are passed over: a filter window shorter than the roster's months (the
    # page's default year of a two-year roster) halves every step's work.
    months_in = np.flatnonzero(fit_cells.any(axis=0))
    shifts, counts = roster.months_of(months_in, y)
    position = np.full(roster.months, -1, dtype=np.int64)
    position[months_in] = np.arange(months_in.size)
    cell_in = position[kind_month] >= 0
    groups = _Groups(shifts, counts, roster.cohort, months_in.size, unit_kept)
    fit = grouped_poisson.fit_groups(groups, matrix[cell_in][:, used], used, officers, unit_kept, 0.0,
                                     kind_group[cell_in], position[kind_month[cell_in]], start=start, blocks=blocks,
                                     block_factor=tr._block_factor, solve=tr._solve, inverse=tr._inverse,
                                     included=officers, masks=fit_cells[:, months_in])
    if fit.get("fallback"):
        raise _Refused
    return {**fit, "in_fit": officers, "events": events}


def _imputed_ratio(design: dict[str, Any], cells: np.ndarray) -> tuple[float, float, float, float] | None:
    """Return `training._imputed_ratio` over the treated officer-months in cells (a cohorts x months mask)."""
    return _imputed_ratios(design, [cells])[0]


def _imputed_ratios(design: dict[str, Any], masks: list[np.ndarray]) -> list[tuple[float, float, float, float] | None]:
    """Return `_imputed_ratio` for each of several cells masks, all in one pass over the matrices.

    An officer's expected events untrained are their shifts x the month effect x their level over the cells.
    Worked cohort by cohort; each matrix is read once for every mask (the event profile asks for a ratio per month
    since training, a dozen of them), and the influence of the model's estimates is one product for them all.
    """
    y, fit, scale, view = design["y"], design["fit"], design["scale"], design["roster"]
    fitted = scale > 0
    weight = np.where(fitted, design["level"], 0.0)  # a fitted officer's level; the others count nothing
    month_effect = design["month_effect"]
    cells = [mask & design["judged_cells"] for mask in masks]
    observed = np.zeros((len(cells), scale.size))
    expected = np.zeros((len(cells), scale.size))
    by_month = np.zeros((len(cells), view.months))
    for cohort, s in enumerate(view.slices):
        picked = [k for k, mask in enumerate(cells) if mask[cohort].any()]
        if not picked or s.start == s.stop:
            continue
        chosen = np.stack([cells[k][cohort] for k in picked]).astype(np.float64)  # masks x months
        effect = chosen * month_effect
        shifts = view.shifts[s]
        observed[picked, s] = (y[s] @ chosen.T).T * fitted[s]
        expected[picked, s] = (shifts @ effect.T).T * weight[s]
        by_month[picked] += effect * (weight[s] @ shifts)
    out: list[tuple[float, float, float, float] | None] = [None] * len(cells)
    totals = [(float(observed[k].sum()), float(expected[k].sum())) for k in range(len(cells))]
    live = [k for k, (obs, exp) in enumerate(totals) if obs > 0 and exp > 0]
    if not live:
        return out
    ratio = np.array([totals[k][0] / totals[k][1] for k in live])
    influence = observed[live] - ratio[:, None] * expected[live]
    if fit["theta"] is not None and fit["theta"].size:
        design_cells = design["design"]
        share = np.divide(expected[live], scale, out=np.zeros((len(live), scale.size)), where=fitted)
        weights = np.zeros((len(live), len(view.slices), view.months))
        for cohort, s in enumerate(view.slices):
            if s.start != s.stop:
                weights[:, cohort] = share[:, s] @ view.shifts[s]
        weights *= design["fitted_effect"]
        months = design["months"] - 1
        direct = np.zeros((len(live), design_cells.shape[1]))
        direct[:, :months] = by_month[live][:, 1:]
        gradient = (direct - (design_cells.T @ weights[:, design["kind_group"], design["kind_month"]].T).T)
        steps = fit["solve"](gradient[:, fit["used"]].T)  # columns x masks
        influence[:, fit["unit_kept"]] -= ratio[:, None] * fit["score_dot"](steps).T
    for at, k in enumerate(live):
        clusters = int(np.count_nonzero(influence[at]))
        if clusters < 2:
            continue
        observed_total, expected_total = totals[k]
        variance = float(influence[at] @ influence[at]) * clusters / (clusters - 1) / expected_total ** 2
        out[k] = (float(np.log(ratio[at])), float(np.sqrt(variance)) / ratio[at], observed_total, expected_total)
    return out


def _kept_in(panel: _View, design: dict[str, Any], cells: np.ndarray,
             event_keys: np.ndarray | None) -> tuple[int, int, int, int]:
    """Return the kept officer-months in cells (one month per cohort): officers, their key sum, events, key sum."""
    y, before, keep_cells = design["y"], design["before"], design["keep_cells"]
    officers = officer_keys = events = event_key_sum = 0
    for cohort, s in enumerate(panel.slices):
        cols = np.flatnonzero(cells[cohort])
        if not cols.size or s.start == s.stop or not keep_cells[cohort, cols[0]]:
            continue
        at = panel.judged[s][:, cols[0]] & before[s]
        officers += int(at.sum())
        events += int(y[s][:, cols[0]][at].sum())
        if event_keys is not None:
            officer_keys += int(panel.keys()[s][at].sum())
            event_key_sum += int(event_keys[s][:, cols[0]][at].sum())
    return officers, officer_keys, events, event_key_sum


def _whole(value: float) -> int:
    return int(round(value))


def staggered_effect(panel: _View, measure: str = "reports", level: float = 0.95,
                     lead_months: int = tr.PRE_TREND_MONTHS, perturbed: bool = False,
                     profile: bool = True, spawn: Callable[..., Future] | None = None) -> dict[str, Any]:
    """Return `training.staggered_effect` of the same panel.

    spawn: a pool's `submit`, to fit the lead model (from this model's estimates) while this one's ratios and
    profile are worked out; run here if the pool has not started it when its test is needed.
    """
    keys = (panel.values(cellkey.key_column(measure)),) if perturbed else None
    shared = _cells(panel, measure)
    design = _saturated(panel, measure, shared=shared)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    y, in_fit, judged_cells, fit_cells = design["y"], design["in_fit"], design["judged_cells"], design["fit_cells"]
    # Officers judged: fitted, with a treated month kept; their events outside the fit's months count too.
    judged = (design["scale"] > 0) & (_per_officer(panel, panel.shifts, judged_cells) > 0)
    comparison = in_fit & design["never"]
    beyond = judged_cells & ~fit_cells

    def events_of(values: np.ndarray) -> float:
        return float(_per_officer(panel, values, fit_cells)[in_fit].sum()
                     + _per_officer(panel, values, beyond)[judged].sum())

    events = _whole(events_of(y))
    result = tr.effect_result(measure, lead_months, int(judged.sum()), int(comparison.sum()), events,
                              _rates(panel, measure), _imputed_ratio(design, design["treated_cells"]), z)
    pending = None if spawn is None else spawn(pre_trend, panel, measure, lead_months, design["theta"], shared)
    by_month = _profile(panel, design, lead_months, z, keys[0] if keys is not None else None) if profile else None
    if pending is None or pending.cancel():
        result.update(pre_trend(panel, measure, lead_months, start=design["theta"], shared=shared))
    else:
        result.update(pending.result())
    if keys is not None:
        event_keys = keys[0]
        out: dict[str, Any] = {
            "officers_trained": _published_officers(panel, judged),
            "officers_comparison": _published_officers(panel, comparison),
            "events": cellkey.perturb_one(events, _whole(events_of(event_keys))),
        }
        if result["observed_events"] is not None:
            observed = cellkey.perturb_one(_whole(_per_officer(panel, y, judged_cells)[judged].sum()),
                                           _whole(_per_officer(panel, event_keys, judged_cells)[judged].sum()))
            out.update(observed_events=observed,
                       expected_events=result["expected_events"] * observed / result["observed_events"])
        result.update(out)
        result["rates"] = _rates(panel, measure, perturbed=True)
    result["verdict"] = tr.verdict(result)
    leads = result.pop("pre_trend")
    if by_month is not None:
        result["profile"] = _with_leads(by_month, leads)
    return result


def _with_leads(profile: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    """Fill a profile's months before training with the lead model's changes (`pre_trend`'s frame)."""
    lead = leads.set_index("months_since_training")
    before = profile["months_since_training"] < 0
    for key in ("estimate", "ci_low", "ci_high"):
        if key in lead:
            profile.loc[before, key] = lead[key].reindex(profile.loc[before, "months_since_training"]).to_numpy(
                dtype=np.float64)
    return profile


def _profile(panel: _View, design: dict[str, Any], lead_months: int, z: float, event_keys: np.ndarray | None,
             months_after: int = tr.PROFILE_MONTHS) -> pd.DataFrame:
    """Return `training._profile`: the change by months since training, with each month's officers and events.

    The months before training get their officers and events here; their changes are the lead model's
    (`_with_leads`), fitted meanwhile.

    Officers outside the view (no report counted) count too, by their pattern of judged months: kept as the
    model keeps officer-months (an observed month before training, a month with officers to compare).
    """
    roster = panel.roster
    others = roster.pattern_count - np.bincount(roster.pattern_of[panel.rows], minlength=roster.pattern_count.size)
    other_keys = None
    if event_keys is not None:
        keys = panel.officer_keys
        other_keys = np.bincount(roster.pattern_of, weights=keys, minlength=others.size) \
            - np.bincount(roster.pattern_of[panel.rows], weights=keys[panel.rows], minlength=others.size)
    patterns, cohort = roster.patterns, roster.pattern_cohort
    before = (patterns & design["not_after"][cohort]).any(axis=1)
    pattern_keep = patterns & before[:, None] & design["keep_cells"][cohort]
    records = []
    ratios = dict(zip(range(1, months_after + 1),
                      _imputed_ratios(design, [roster.since == k for k in range(1, months_after + 1)]), strict=True))
    for k in range(-lead_months, months_after + 1):
        at = roster.since == k
        outside = (pattern_keep & at[cohort]).any(axis=1)
        officers, officer_keys, events_at, event_key_sum = _kept_in(panel, design, at, event_keys)
        officers_at = officers + int(others[outside].sum())
        if event_keys is not None:
            officer_keys += int(round(other_keys[outside].sum()))
            officers_at = cellkey.perturb_one(officers_at, officer_keys)
            events_at = cellkey.perturb_one(events_at, event_key_sum)
        record = {"months_since_training": k, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                  "officers": officers_at, "events": events_at}
        if k > 0:
            ratio = ratios[k]
            if ratio is not None:
                log_ratio, se = ratio[:2]
                with np.errstate(over="ignore"):
                    record.update(estimate=float(np.expm1(log_ratio)), ci_low=float(np.expm1(log_ratio - z * se)),
                                  ci_high=float(np.expm1(log_ratio + z * se)))
        records.append(record)
    return pd.DataFrame.from_records(records)


def pre_trend(panel: _View, measure: str = "reports", lead_months: int = tr.PRE_TREND_MONTHS,
              start: np.ndarray | None = None, shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return `training.pre_trend` of the same panel (shared: `_cells` of it, if made already)."""
    out: dict[str, Any] = {"pre_trend_p": None, "pre_trend_df": 0,
                           "pre_trend": pd.DataFrame({"months_since_training": range(-lead_months, 0)})}
    if not panel.roster.any_judged:
        return out
    return tr.lead_test(_saturated(panel, measure, lead_months, start, shared)["fit"], lead_months, out)


def difference_in_differences(panel: _View, measure: str = "reports", level: float = 0.95) -> dict[str, Any]:
    """Return `training.difference_in_differences` of the same panel (the two-way estimate beside the headline)."""
    from scipy import sparse

    roster = panel
    y = panel.values(measure)
    months = roster.months
    kinds = np.flatnonzero(roster.has_row.ravel())
    kind_group, kind_month = kinds // months, kinds % months
    treated_cells = np.nan_to_num(roster.since, nan=0.0) > 0
    month_columns = sparse.csr_matrix((np.ones(kinds.size), (np.arange(kinds.size), kind_month)),
                                      shape=(kinds.size, months))[:, 1:]
    design = sparse.hstack([
        month_columns,
        sparse.csr_matrix(treated_cells[kind_group, kind_month].astype(np.float64)[:, None])], format="csr")
    # Every judged officer-month, but in months without an event: there the month effect's estimate is minus
    # infinity (the row-wise fit steps towards it until its last iteration, to a weight of e^-50), and those
    # officer-months weigh nothing in the limit. Left out, the fit converges in a few steps to the same figures.
    observed_month = _by_cohort(roster, y).sum(axis=0) > 0
    fit = _fit(roster, y, None, roster.has_row & observed_month[None, :], design, kind_group, kind_month)
    in_fit = fit["in_fit"]
    coef, se = tr._coefficients(fit, design.shape[1])
    never = np.zeros(roster.shape[0], dtype=bool)
    never[roster.slices[-1]] = True
    result: dict[str, Any] = {
        "measure": measure,
        "estimate": None, "ci_low": None, "ci_high": None,
        "method": tr.METHOD,
        "officers_trained": int((in_fit & (_per_officer(roster, roster.shifts, treated_cells) > 0)).sum()),
        "officers_comparison": int((in_fit & never).sum()),
        "events": _whole(fit["events"].sum()),
        "rates": _rates(panel, measure),
    }
    if coef is not None and fit["used"][-1]:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        with np.errstate(over="ignore"):
            result.update(estimate=float(np.expm1(coef[-1])), ci_low=float(np.expm1(coef[-1] - z * se[-1])),
                          ci_high=float(np.expm1(coef[-1] + z * se[-1])))
    return result


def row_panel(panel: DensePanel) -> pd.DataFrame:
    """Return the judged officer-months as `training`'s row panel (the path for a panel the cell fit refuses)."""
    roster = panel.roster
    rows, cols = np.nonzero(roster.judged)
    trained = roster.cohort_trained[roster.cohort[rows]]
    since = pd.array(roster.month_ordinal[cols] - trained, dtype="Int64")
    month = (roster.month_ordinal[cols] - 1970 * 12).astype("datetime64[M]").astype("datetime64[ns]")
    out = pd.DataFrame({"officer_id": roster.ids.take(roster.officers[rows]), "month": month,
                        "shifts": roster.shifts[rows, cols]})
    for view in panel.views():
        for column, matrix in view._columns.items():
            full = np.zeros(roster.shape)
            full[view.rows] = matrix
            out[column] = full[rows, cols].astype(np.int64)
    out["trained"] = np.asarray((since > 0).fillna(False), dtype=bool)
    out["months_since_training"] = since
    if panel.officer_keys is not None:
        out[tr.OFFICER_KEY] = panel.officer_keys[rows]
    return out


def effects_or_rows(panel: DensePanel, perturbed: bool = False) -> tuple[dict[str, dict[str, Any]], pd.DataFrame]:
    """Return the effects and profile by the matrices, or by the row panel where the cell fit refuses the panel."""
    try:
        return effects_and_profile(panel, perturbed=perturbed)
    except _Refused:
        return tr.effects_and_profile(row_panel(panel), perturbed=perturbed)
