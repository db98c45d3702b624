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

from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from lib.analysis import grouped_poisson
from lib.analysis import training as tr
from lib.privacy import cellkey


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

    def rows(self, ids: pd.Series) -> np.ndarray:
        """Return the row of each officer id (-1: not in the roster's judged officers)."""
        codes = self.ids.get_indexer(ids.astype(str))
        return np.where(codes >= 0, self.row_of[np.maximum(codes, 0)], -1)

    def columns(self, month: Any) -> np.ndarray:
        """Return the column of each month (-1: not a judged month)."""
        ordinal = tr._month_ordinal(pd.to_datetime(month).dt.to_period("M").dt.to_timestamp().to_numpy())
        at = np.searchsorted(self.month_ordinal, ordinal)
        found = at < self.months
        found[found] = self.month_ordinal[at[found]] == ordinal[found]
        return np.where(found, at, -1)


class DensePanel:
    """A filter state's counts (and, perturbed, their key sums) on a roster's officers x months."""

    def __init__(self, roster: DenseRoster, counts: pd.DataFrame, officer_keys: np.ndarray | None = None) -> None:
        self.roster = roster
        rows, cols = roster.rows(counts["officer_id"]), roster.columns(counts["month"])
        at = (rows >= 0) & (cols >= 0)
        rows, cols = rows[at], cols[at]
        self._columns: dict[str, np.ndarray] = {}
        for column in counts.columns.drop(["officer_id", "month"]):
            matrix = np.zeros(roster.shape)
            matrix[rows, cols] = counts[column].to_numpy(dtype=np.float64, na_value=0.0)[at]
            matrix[~roster.judged] = 0.0  # a count where no shifts were recorded (or the training month) is not judged
            self._columns[column] = matrix
        for measure in tr.MEASURES:
            self._columns.setdefault(measure, np.zeros(roster.shape))
        # Officer record keys by row (perturbed scopes): the sum over distinct officers perturbs a count of officers.
        self.officer_keys = officer_keys

    def values(self, column: str) -> np.ndarray:
        """Return a count (or key sum) by officer and month."""
        if column not in self._columns:
            raise ValueError(f"counts cannot be perturbed without their reports' key sums ({column}): build the "
                             "officer-month counts with a perturbed scope")
        return self._columns[column]


def effects_and_profile(panel: DensePanel, perturbed: bool = False) -> tuple[dict[str, dict[str, Any]], pd.DataFrame]:
    """Return `training.effects_and_profile` of the same panel: every measure's effect and the use-of-force profile."""
    if perturbed and panel.officer_keys is None:
        raise ValueError(f"officer counts cannot be perturbed without the officers' record keys ({tr.OFFICER_KEY})")
    found = {}
    for measure in tr.MEASURES:
        result = staggered_effect(panel, measure, perturbed=perturbed, profile=measure == "reports")
        old = difference_in_differences(panel, measure)
        result["twfe"] = {key: old[key] for key in ("estimate", "ci_low", "ci_high")}
        found[measure] = result
    return found, found["reports"].pop("profile")


def _expand(roster: DenseRoster, cells: np.ndarray) -> np.ndarray:
    """Return a cohorts x months mask as an officers x months mask."""
    return cells[roster.cohort]


def _officers_in(mask: np.ndarray) -> np.ndarray:
    return mask.any(axis=1)


def _distinct_published(panel: DensePanel, mask: np.ndarray) -> int:
    officers = _officers_in(mask)
    return cellkey.perturb_one(int(officers.sum()), int(panel.officer_keys[officers].sum()))


def _sum_published(y: np.ndarray, keys: np.ndarray, mask: np.ndarray) -> int:
    return cellkey.perturb_one(int(y[mask].sum()), int(keys[mask].sum()))


def _rates(panel: DensePanel, measure: str, perturbed: bool = False) -> dict[str, dict[str, float]]:
    """Crude rates per 1,000 officer-shifts over every judged officer-month, as `training._rates`."""
    roster = panel.roster
    y = panel.values(measure)
    keys = panel.values(cellkey.key_column(measure)) if perturbed else None
    since = roster.since
    groups = {"trained_before": since < 0, "trained_after": since > 0, "never_trained": np.isnan(since)}
    out = {}
    for name, cells in groups.items():
        total = float(roster.shift_totals[cells].sum())
        events, key_sum = 0, 0
        for cohort, s in enumerate(roster.slices):
            if cells[cohort].any():
                events += int(y[s][:, cells[cohort]].sum())
                if keys is not None:
                    key_sum += int(keys[s][:, cells[cohort]].sum())
        if keys is not None:
            events = cellkey.perturb_one(events, key_sum)
        out[name] = {"events": events, "shifts": total, "rate": events / total * tr.PER_SHIFTS if total else float("nan")}
    return out


def _saturated(panel: DensePanel, measure: str, lead_months: int = 0, start: np.ndarray | None = None) -> dict:
    """Fit `training._saturated`'s model on the matrices: cohort x month effects after training, optional leads."""
    from scipy import sparse

    roster = panel.roster
    y = panel.values(measure)
    months, since, cohorts = roster.months, roster.since, len(roster.slices)
    observed_month = y.sum(axis=0) > 0
    after = since >= 1
    not_after = observed_month[None, :] & ~after  # cohorts x months: observed and not after training
    before = np.zeros(roster.shape[0], dtype=bool)
    for cohort, s in enumerate(roster.slices):
        before[s] = (roster.judged[s] & not_after[cohort]).any(axis=1)
    compared_month = (roster.has_row & not_after).any(axis=0)
    keep_cells = observed_month[None, :] & (compared_month[None, :] | ~after)
    keep = roster.judged & before[:, None] & _expand(roster, keep_cells)
    # Design cells: each cohort's months with a judged row, numbered cohort by cohort.
    present = roster.has_row
    kinds = np.flatnonzero(present.ravel())
    kind_group, kind_month = kinds // months, kinds % months
    kind_since = since[kind_group, kind_month]
    kind_treated = (kind_since >= 1) & observed_month[kind_month] & compared_month[kind_month]
    kind_rows = _by_cell(roster, keep.astype(np.float64))[kind_group, kind_month]
    kind_events = _by_cell(roster, y * keep)[kind_group, kind_month]
    cohort_kinds = np.flatnonzero(kind_treated & (kind_rows > 0))
    cohort_key = (kind_month[cohort_kinds] - kind_since[cohort_kinds]).astype(np.int64) * months \
        + kind_month[cohort_kinds]
    order = np.argsort(cohort_key, kind="stable")
    cells = cohort_key[order]
    n_kinds = kinds.size
    columns = [sparse.csr_matrix((np.ones(n_kinds), (np.arange(n_kinds), kind_month)), shape=(n_kinds, months))[:, 1:],
               sparse.csr_matrix((np.ones(cohort_kinds.size), (cohort_kinds[order], np.arange(cells.size))),
                                 shape=(n_kinds, cells.size))]
    if lead_months:
        leads = np.column_stack([kind_since == -k for k in range(lead_months, 0, -1)]).astype(np.float64)
        columns.append(sparse.csr_matrix(leads.reshape(n_kinds, lead_months)))
    design = sparse.hstack(columns, format="csr")
    if start is not None and start.size < design.shape[1]:
        start = np.concatenate([start, np.zeros(design.shape[1] - start.size)])
    fitted_cells = np.zeros((cohorts, months), dtype=bool)
    fitted_cells[kind_group, kind_month] = ~kind_treated | (kind_events > 0)
    fitted = keep & _expand(roster, fitted_cells)
    blocks = _blocks(cells, months, kind_group[cohort_kinds[order]], lead_months)
    fit = _fit(roster, y, fitted, design, kind_group, kind_month, start=start, blocks=blocks)
    theta = np.zeros(design.shape[1])
    if fit["theta"] is not None:
        theta[fit["used"]] = fit["theta"]
    in_fit = fit["kept"]
    effect = np.zeros((cohorts, months))
    effect[kind_group, kind_month] = np.exp(design @ theta)
    fitted_scale = roster.shifts * _expand(roster, effect) * in_fit
    events = (y * in_fit).sum(axis=1)
    scale = fitted_scale.sum(axis=1)
    level = np.divide(events, scale, out=np.zeros_like(scale), where=scale > 0)
    month_effect = np.exp(np.concatenate([[0.0], theta[:months - 1]]))
    treated_cells = np.zeros((cohorts, months), dtype=bool)
    treated_cells[kind_group, kind_month] = kind_treated
    treated = keep & _expand(roster, treated_cells)
    untrained = np.where(treated, roster.shifts * month_effect[None, :] * level[:, None], 0.0)
    never = np.zeros(roster.shape[0], dtype=bool)
    never[roster.slices[-1]] = True
    return {"y": y, "design": design, "kind_group": kind_group, "kind_month": kind_month, "treated": treated,
            "fit": fit, "in_fit": in_fit, "fitted_scale": fitted_scale, "scale": scale, "untrained": untrained,
            "months": months, "keep": keep, "never": never, "theta": theta, "roster": roster}


def _by_cell(roster: DenseRoster, values: np.ndarray) -> np.ndarray:
    """Sum an officers x months matrix by cohort: cohorts x months."""
    return np.array([values[s].sum(axis=0) for s in roster.slices]).reshape(-1, roster.months)


def _blocks(cells: np.ndarray, months: int, cell_cohort: np.ndarray, lead_months: int) -> np.ndarray | None:
    """Label the cohort x month columns by cohort, as `training._cohort_blocks` (None: a cohort spans two labels)."""
    label = pd.factorize(cells // months)[0] if cells.size else np.zeros(0, dtype=np.int64)
    if cells.size and pd.unique(pd.Series(cell_cohort * (label.size + 1) + label)).size != pd.unique(cell_cohort).size:
        return None
    return np.concatenate([np.full(months - 1, -1), label, np.full(lead_months, -1)]).astype(np.int64)


class _Groups:
    """The kept officers' matrices in `grouped_poisson.fit_groups`' form (sorted by cohort already)."""

    def __init__(self, shifts: np.ndarray, counts: np.ndarray, cohort: np.ndarray, months: int) -> None:
        self.shifts, self.counts, self.months = shifts, counts, months
        self.labels, starts = np.unique(cohort, return_index=True)
        self.slices = [slice(int(a), int(b)) for a, b in zip(starts, [*starts[1:], cohort.size], strict=True)]
        self.rank = np.arange(cohort.size)


def _fit(roster: DenseRoster, y: np.ndarray, rows: np.ndarray, design: Any, kind_group: np.ndarray,
         kind_month: np.ndarray, start: np.ndarray | None = None, blocks: np.ndarray | None = None) -> dict[str, Any]:
    """Fit the conditional Poisson on the officer-months in rows (`training._cell_fit`'s result, kept as a mask)."""
    counts = np.where(rows, y, 0.0)
    total = counts.sum(axis=1)
    officers = total > 0
    kept = rows & officers[:, None]
    used = np.zeros(design.shape[1], dtype=bool)
    empty = {"theta": None, "covariance": None, "solve": None, "scores": None, "clusters": 0, "unit_kept": None,
             "kept": kept, "used": used}
    if not officers.any():
        return empty
    rows_in_cell = _by_cell(roster, kept.astype(np.float64))[kind_group, kind_month]
    matrix = design.toarray()
    colsum = matrix.T @ rows_in_cell
    used = (colsum > 0) & (colsum < int(kept.sum()))
    unit_kept = np.flatnonzero(officers)
    shifts = np.where(kept[unit_kept], roster.shifts[unit_kept], 0.0)
    counts = counts[unit_kept]
    with np.errstate(divide="ignore"):
        constant = float(counts[counts > 0] @ np.log(shifts[counts > 0]))
    groups = _Groups(shifts, counts, roster.cohort[unit_kept], roster.months)
    fit = grouped_poisson.fit_groups(groups, matrix[:, used], used, kept, unit_kept, constant, kind_group, kind_month,
                                     start=start, blocks=blocks, block_factor=tr._block_factor, solve=tr._solve,
                                     inverse=tr._inverse)
    if fit.get("fallback"):
        raise _Refused
    return fit


def _imputed_ratio(design: dict[str, Any], subset: np.ndarray) -> tuple[float, float, float, float] | None:
    """Return `training._imputed_ratio` over the treated officer-months in subset (an officers x months mask)."""
    y, fit, scale = design["y"], design["fit"], design["scale"]
    subset = subset & design["treated"] & (scale > 0)[:, None]
    expected = np.where(subset, design["untrained"], 0.0)
    observed_total, expected_total = float(y[subset].sum()), float(expected.sum())
    if observed_total <= 0 or expected_total <= 0:
        return None
    ratio = observed_total / expected_total
    observed_i = np.where(subset, y, 0.0).sum(axis=1)
    expected_i = expected.sum(axis=1)
    influence = observed_i - ratio * expected_i
    if fit["theta"] is not None and fit["theta"].size:
        roster = design["roster"]
        cells = design["design"]
        share = np.divide(expected_i, scale, out=np.zeros_like(scale), where=scale > 0)
        months = design["months"] - 1
        direct = np.zeros(cells.shape[1])
        direct[:months] = expected.sum(axis=0)[1:]
        weights = np.array([share[s] @ design["fitted_scale"][s] for s in roster.slices]).reshape(-1, roster.months)
        gradient = (direct - cells.T @ weights[design["kind_group"], design["kind_month"]])[fit["used"]]
        influence[fit["unit_kept"]] -= ratio * fit["score_dot"](fit["solve"](gradient))
    clusters = int(np.count_nonzero(influence))
    if clusters < 2:
        return None
    variance = float(influence @ influence) * clusters / (clusters - 1) / expected_total ** 2
    return float(np.log(ratio)), float(np.sqrt(variance)) / ratio, observed_total, expected_total


def staggered_effect(panel: DensePanel, measure: str = "reports", level: float = 0.95,
                     lead_months: int = tr.PRE_TREND_MONTHS, perturbed: bool = False,
                     profile: bool = True) -> dict[str, Any]:
    """Return `training.staggered_effect` of the same panel."""
    keys = (panel.values(cellkey.key_column(measure)),) if perturbed else None
    design = _saturated(panel, measure)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    y = design["y"]
    judged = design["treated"] & (design["scale"] > 0)[:, None]
    comparison = design["in_fit"] & design["never"][:, None]
    result: dict[str, Any] = {
        "measure": measure, "estimate": None, "ci_low": None, "ci_high": None,
        "method": tr.STAGGERED_METHOD,
        "officers_trained": int(_officers_in(judged).sum()),
        "officers_comparison": int(_officers_in(comparison).sum()),
        "events": int(y[design["in_fit"] | judged].sum()),
        "rates": _rates(panel, measure),
        "expected_events": None, "observed_events": None,
        "minimum_detectable_effect": None, "pre_trend_p": None, "pre_trend_months": lead_months,
    }
    ratio = _imputed_ratio(design, design["treated"])
    if ratio is not None:
        log_ratio, se, observed, expected = ratio
        with np.errstate(over="ignore"):
            result.update(estimate=float(np.expm1(log_ratio)), ci_low=float(np.expm1(log_ratio - z * se)),
                          ci_high=float(np.expm1(log_ratio + z * se)),
                          minimum_detectable_effect=float(-np.expm1(-(z + tr.POWER_Z) * se)))
        result.update(observed_events=int(observed), expected_events=float(expected))
    result.update(pre_trend(panel, measure, lead_months, start=design["theta"]))
    if keys is not None:
        event_keys = keys[0]
        out: dict[str, Any] = {
            "officers_trained": _distinct_published(panel, judged),
            "officers_comparison": _distinct_published(panel, comparison),
            "events": _sum_published(y, event_keys, design["in_fit"] | judged),
        }
        if result["observed_events"] is not None:
            observed = _sum_published(y, event_keys, judged)
            out.update(observed_events=observed,
                       expected_events=result["expected_events"] * observed / result["observed_events"])
        result.update(out)
        result["rates"] = _rates(panel, measure, perturbed=True)
    result["verdict"] = tr.verdict(result)
    leads = result.pop("pre_trend")
    if profile:
        result["profile"] = _profile(panel, design, leads, z, keys[0] if keys is not None else None)
    return result


def _profile(panel: DensePanel, design: dict[str, Any], leads: pd.DataFrame, z: float, event_keys: np.ndarray | None,
             months_after: int = tr.PROFILE_MONTHS) -> pd.DataFrame:
    """Return `training._profile`: the change by months since training, with each month's officers and events."""
    roster, y, keep = panel.roster, design["y"], design["keep"]
    records = []
    lead_rows = leads.set_index("months_since_training")
    for k in range(-len(leads), months_after + 1):
        at = keep & _expand(roster, roster.since == k)
        if event_keys is None:
            officers_at, events_at = int(_officers_in(at).sum()), int(y[at].sum())
        else:
            officers_at, events_at = _distinct_published(panel, at), _sum_published(y, event_keys, at)
        record = {"months_since_training": k, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                  "officers": officers_at, "events": events_at}
        if k < 0:
            lead = lead_rows.loc[k]
            record.update({key: float(lead.get(key, np.nan)) for key in ("estimate", "ci_low", "ci_high")})
        elif k > 0:
            ratio = _imputed_ratio(design, at)
            if ratio is not None:
                log_ratio, se = ratio[:2]
                with np.errstate(over="ignore"):
                    record.update(estimate=float(np.expm1(log_ratio)), ci_low=float(np.expm1(log_ratio - z * se)),
                                  ci_high=float(np.expm1(log_ratio + z * se)))
        records.append(record)
    return pd.DataFrame.from_records(records)


def pre_trend(panel: DensePanel, measure: str = "reports", lead_months: int = tr.PRE_TREND_MONTHS,
              start: np.ndarray | None = None) -> dict[str, Any]:
    """Return `training.pre_trend` of the same panel."""
    from scipy.special import chdtrc

    out: dict[str, Any] = {"pre_trend_p": None, "pre_trend_df": 0,
                           "pre_trend": pd.DataFrame({"months_since_training": range(-lead_months, 0)})}
    if not panel.roster.judged.any():
        return out
    fit = _saturated(panel, measure, lead_months, start)["fit"]
    if fit["theta"] is None:
        return out
    used = fit["used"]
    lead_cols = np.flatnonzero(used[-lead_months:])
    position = np.searchsorted(np.flatnonzero(used), used.size - lead_months + lead_cols)
    beta = fit["theta"][position]
    cov = tr._covariance(fit, position)
    if beta.size:
        stat = float(beta @ np.linalg.pinv(cov) @ beta)
        df = int(np.linalg.matrix_rank(cov))
        out.update(pre_trend_p=float(chdtrc(df, stat)) if df else None, pre_trend_df=df)
    z = NormalDist().inv_cdf(0.975)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0)) if beta.size else np.zeros(0)
    estimate = np.full(lead_months, np.nan)
    low, high = estimate.copy(), estimate.copy()
    with np.errstate(over="ignore"):
        estimate[lead_cols] = np.expm1(beta)
        low[lead_cols], high[lead_cols] = np.expm1(beta - z * se), np.expm1(beta + z * se)
    out["pre_trend"] = out["pre_trend"].assign(estimate=estimate, ci_low=low, ci_high=high)
    return out


def difference_in_differences(panel: DensePanel, measure: str = "reports", level: float = 0.95) -> dict[str, Any]:
    """Return `training.difference_in_differences` of the same panel (the two-way estimate beside the headline)."""
    from scipy import sparse

    roster = panel.roster
    y = panel.values(measure)
    months = roster.months
    kinds = np.flatnonzero(roster.has_row.ravel())
    kind_group, kind_month = kinds // months, kinds % months
    treated_cells = np.nan_to_num(roster.since, nan=0.0) > 0
    design = sparse.hstack([
        sparse.csr_matrix((np.ones(kinds.size), (np.arange(kinds.size), kind_month)), shape=(kinds.size, months))[:, 1:],
        sparse.csr_matrix(treated_cells[kind_group, kind_month].astype(np.float64)[:, None])], format="csr")
    fit = _fit(roster, y, roster.judged, design, kind_group, kind_month)
    kept = fit["kept"]
    coef, se = tr._coefficients(fit, design.shape[1])
    never = np.zeros(roster.shape[0], dtype=bool)
    never[roster.slices[-1]] = True
    result: dict[str, Any] = {
        "measure": measure,
        "estimate": None, "ci_low": None, "ci_high": None,
        "method": tr.METHOD,
        "officers_trained": int(_officers_in(kept & _expand(roster, treated_cells)).sum()),
        "officers_comparison": int(_officers_in(kept & never[:, None]).sum()),
        "events": int(y[kept].sum()),
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
    out = pd.DataFrame({"officer_id": roster.ids.take(roster.officers[rows]),
                        "month": (roster.month_ordinal[cols] - 1970 * 12).astype("datetime64[M]").astype("datetime64[ns]"),
                        "shifts": roster.shifts[rows, cols]})
    for column, matrix in panel._columns.items():
        out[column] = matrix[rows, cols].astype(np.int64)
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
