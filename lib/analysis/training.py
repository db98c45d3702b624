"""Personal safety training: compliance with the hours standard and its effect on use of force.

Inputs are plain DataFrames (reports, the officer roster, training events, shifts worked per
officer-month), so any engine can supply them; the analysis runs on an officer-month panel, a
few hundred thousand rows at most, in pandas, numpy and scipy.

The effect is a Poisson regression of officer-month counts on officer and calendar-month fixed
effects with log(shifts) as the offset. The officer effects are conditioned out exactly (the
conditional, multinomial form of the fixed-effects Poisson likelihood), leaving only the month
and treatment parameters to fit, and the interval is cluster-robust by officer.
"""
from __future__ import annotations

from collections.abc import Collection
from datetime import date
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # scipy loads with the first model fitted: the app imports this module at start
    from scipy import sparse

TRAINING_COLUMNS: dict[str, str] = {
    "officer_id": "string",
    "trained_on": "date",
    "course": "category",
    "hours": "float",
}
EXPOSURE_COLUMNS: dict[str, str] = {
    "officer_id": "string",
    "month": "date (first day of the month)",
    "shifts": "int",
}
MEASURES: dict[str, str] = {
    "reports": "use of force",
    "officer_injured": "officer injuries",
    "officer_assaulted": "assaults on officers",
}
PER_SHIFTS = 1_000
MIN_TRAINED_OFFICERS = 30
MIN_TEAM = 10  # teams smaller than this are listed, not charted: one officer moves their share too far
UNCLEAR_BOUND = 0.20  # an interval reaching both a 20% fall and a 20% rise cannot tell
METHOD = ("Poisson regression of officer-month counts on officer and calendar-month fixed effects, "
          "log(shifts) offset; trained officers after training against officers not yet (or never) "
          "trained in the same months; training month left out; 95% interval clustered by officer")


def officer_months(reports: pd.DataFrame, exposure: pd.DataFrame, officers: pd.DataFrame) -> pd.DataFrame:
    """Build the officer-month panel of counts, shifts worked and training status."""
    counts = pd.DataFrame({
        "officer_id": reports["officer_id"].astype(str).to_numpy(),
        "month": pd.to_datetime(reports["occurred_at"]).dt.to_period("M").dt.to_timestamp().to_numpy(),
        "reports": 1,
        **{field: reports[field].fillna(False).astype(bool).to_numpy()
           for field in ("officer_injured", "officer_assaulted") if field in reports},
    })
    counts = counts.groupby(["officer_id", "month"], sort=False).sum().astype("int64").reset_index()
    return panel_from_counts(counts, exposure, officers)


def officer_month_counts(engine: Any, ds: Any, filters: Any, scope: Any) -> pd.DataFrame:
    """Count use of force, injuries and assaults per officer-month in the engine (scope and filters apply)."""
    from lib.engine.query import filtered_reports

    t = filtered_reports(engine, ds, filters, scope)
    t = t.filter(t.officer_id.notnull())
    expr = t.group_by(officer_id=t.officer_id, month=t.occurred_at.truncate("M")).aggregate(
        reports=t.count(),
        officer_injured=t.officer_injured.sum().fill_null(0),
        officer_assaulted=t.officer_assaulted.sum().fill_null(0))
    return engine.execute(expr)


def panel_from_counts(counts: pd.DataFrame, exposure: pd.DataFrame, officers: pd.DataFrame) -> pd.DataFrame:
    """Build the officer-month panel from counts per officer-month, shifts worked and the roster."""
    counts = counts.assign(officer_id=counts["officer_id"].astype(str),
                           month=pd.to_datetime(counts["month"]).dt.to_period("M").dt.to_timestamp())
    worked = pd.DataFrame({
        "officer_id": exposure["officer_id"].astype(str).to_numpy(),
        "month": pd.to_datetime(exposure["month"]).dt.to_period("M").dt.to_timestamp().to_numpy(),
        "shifts": pd.to_numeric(exposure["shifts"]).astype("float64").to_numpy(),
    })
    worked = worked.groupby(["officer_id", "month"], sort=False)["shifts"].sum().reset_index()
    # Outer join: a report in a month with no recorded shifts stays visible (shifts is NaN).
    panel = worked.merge(counts, on=["officer_id", "month"], how="outer")
    for field in MEASURES:
        panel[field] = panel[field].fillna(0).astype("int64") if field in panel else 0
    roster = officers.assign(officer_id=officers["officer_id"].astype(str)).set_index("officer_id")
    trained_on = pd.to_datetime(roster["pst_trained_on"]).reindex(panel["officer_id"])
    for column in ("officer_role", "team"):
        if column in roster:
            panel[column] = roster[column].astype(str).reindex(panel["officer_id"]).to_numpy()
    month = pd.DatetimeIndex(panel["month"])
    month_index = month.year * 12 + month.month
    trained_index = trained_on.dt.year * 12 + trained_on.dt.month
    since = pd.array(month_index.to_numpy() - trained_index.to_numpy(), dtype="Int64")
    panel["trained"] = np.asarray((since > 0).fillna(False), dtype=bool)
    panel["months_since_training"] = since
    return panel.sort_values(["officer_id", "month"], ignore_index=True)


def compliance(training: pd.DataFrame, officers: pd.DataFrame, as_of: date, standard_hours: float = 12,
               courses: Collection[str] | None = None) -> pd.DataFrame:
    """Sum each officer's training hours in the 12 months to as_of and flag who meets the standard."""
    events = training if courses is None else training[training["course"].astype(str).isin(list(courses))]
    when = pd.to_datetime(events["trained_on"])
    end = pd.Timestamp(as_of)
    recent = (when > end - pd.DateOffset(months=12)) & (when <= end)
    ids = events["officer_id"].astype(str)
    hours = events.loc[recent, "hours"].astype("float64").groupby(ids[recent]).sum()
    last = when[when <= end].groupby(ids[when <= end]).max()
    columns = [c for c in ("officer_id", "officer_role", "team") if c in officers]
    out = officers[columns].copy()
    out["officer_id"] = out["officer_id"].astype(str)
    out["hours"] = hours.reindex(out["officer_id"]).fillna(0.0).to_numpy()
    out["last_trained_on"] = last.reindex(out["officer_id"]).dt.date.to_numpy()
    out["compliant"] = out["hours"] >= standard_hours
    out["shortfall"] = np.maximum(standard_hours - out["hours"], 0.0)
    return out.reset_index(drop=True)


def summarise_compliance(per_officer: pd.DataFrame, by: Collection[str] = ("officer_role",)) -> pd.DataFrame:
    """Count officers and compliant officers, with the share compliant, by role, team or both."""
    keys = list(by)
    grouped = per_officer.groupby(keys, observed=True, sort=True)
    out = grouped.agg(officers=("officer_id", "size"), compliant=("compliant", "sum"),
                      mean_hours=("hours", "mean")).reset_index()
    out["compliant"] = out["compliant"].astype("int64")
    out["share_compliant"] = out["compliant"] / out["officers"]
    return out


def overdue(per_officer: pd.DataFrame) -> pd.DataFrame:
    """List officers short of the standard, largest shortfall first."""
    late = per_officer[~per_officer["compliant"]]
    return late.sort_values(["shortfall", "officer_id"], ascending=[False, True], ignore_index=True)


def difference_in_differences(panel: pd.DataFrame, measure: str = "reports", level: float = 0.95) -> dict[str, Any]:
    """Estimate the relative change in a rate per 1,000 officer-shifts after training, with its interval."""
    rows = _usable(panel, measure)
    rows = rows[~(rows["months_since_training"] == 0).fillna(False).to_numpy(dtype=bool)]
    treated = rows["trained"].to_numpy(dtype=np.float64)
    fit = _fit_rows(rows, measure, treated[:, None])
    ever = rows["months_since_training"].notna().to_numpy()
    kept = fit["kept"]
    officers = rows["officer_id"].to_numpy()
    result: dict[str, Any] = {
        "measure": measure,
        "estimate": None, "ci_low": None, "ci_high": None,
        "method": METHOD,
        "officers_trained": int(pd.unique(officers[kept & (treated > 0)]).size),
        "officers_comparison": int(pd.unique(officers[kept & ~ever]).size),
        "events": int(rows[measure].to_numpy()[kept].sum()),
        "rates": _rates(rows, measure),
    }
    if fit["coef"] is not None and fit["columns"][-1]:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        coef, se = fit["coef"][-1], fit["se"][-1]
        result.update(estimate=float(np.expm1(coef)), ci_low=float(np.expm1(coef - z * se)),
                      ci_high=float(np.expm1(coef + z * se)))
    return result


def event_study(panel: pd.DataFrame, window: tuple[int, int] = (-6, 12), measure: str = "reports",
                level: float = 0.95) -> pd.DataFrame:
    """Estimate the relative change by months since training, against the month before training."""
    low, high = window
    rows = _usable(panel, measure)
    since = rows["months_since_training"]
    inside = (since >= low) & (since <= high)
    rows = rows[(since.isna() | inside).fillna(False).to_numpy(dtype=bool)]
    since = rows["months_since_training"].to_numpy(dtype=np.float64, na_value=np.nan)
    ks = [k for k in range(low, high + 1) if k != -1]
    design = np.column_stack([since == k for k in ks]).astype(np.float64)
    fit = _fit_rows(rows, measure, design)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    kept = fit["kept"]
    y = rows[measure].to_numpy()
    officers = rows["officer_id"].to_numpy()
    records = []
    for k in range(low, high + 1):
        at = kept & (since == k)
        record = {"months_since_training": k, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                  "officers": int(pd.unique(officers[at]).size), "events": int(y[at].sum())}
        if k == -1:
            record.update(estimate=0.0, ci_low=0.0, ci_high=0.0)
        elif fit["coef"] is not None:
            j = ks.index(k)
            if fit["columns"][j]:
                coef, se = fit["coef"][j], fit["se"][j]
                record.update(estimate=float(np.expm1(coef)), ci_low=float(np.expm1(coef - z * se)),
                              ci_high=float(np.expm1(coef + z * se)))
        records.append(record)
    return pd.DataFrame.from_records(records)


def reading(result: dict[str, Any]) -> str:
    """Put a difference-in-differences result into one plain-language sentence."""
    what = MEASURES.get(result["measure"], result["measure"]).capitalize()
    trained = result.get("officers_trained", 0)
    estimate, low, high = result.get("estimate"), result.get("ci_low"), result.get("ci_high")
    if trained is None:  # disclosure control hid the count, and with it the estimate
        return "Too few officers to show: the number of trained officers is below the disclosure threshold."
    if estimate is None or low is None or high is None or not np.isfinite([estimate, low, high]).all():
        return f"Too few officers to tell: no estimate could be made from {trained:,} trained officers."
    span = f"(95% interval {_percent(low)} to {_percent(high)})"
    if trained < MIN_TRAINED_OFFICERS or (low < -UNCLEAR_BOUND and high > UNCLEAR_BOUND):
        return (f"Too few officers to tell: the estimate, {_percent(estimate)} {span} from {trained:,} trained "
                "officers, is consistent with a large fall or a large rise.")
    against = "compared with officers not yet (or never) trained over the same months"
    if high < 0:
        return (f"{what} per 1,000 officer-shifts fell by about {abs(estimate):.0%} after training {span}, "
                f"{against}.")
    if low > 0:
        return f"{what} per 1,000 officer-shifts rose by about {estimate:.0%} after training {span}, {against}."
    return (f"No clear change in {what.lower()} per 1,000 officer-shifts after training: the estimate is "
            f"{_percent(estimate)} {span}, {against}, so the data fit no effect as well as a small one.")


# --- estimation ---------------------------------------------------------------------------


def _percent(x: float) -> str:
    return f"{x:+.0%}".replace("+0%", "0%").replace("-0%", "0%")


def _usable(panel: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Keep officer-months with shifts worked (the rate's denominator)."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {sorted(MEASURES)}, not {measure!r}")
    shifts = panel["shifts"].to_numpy(dtype=np.float64, na_value=np.nan)
    return panel[np.nan_to_num(shifts, nan=0.0) > 0]


def _rates(rows: pd.DataFrame, measure: str) -> dict[str, dict[str, float]]:
    """Crude rates per 1,000 officer-shifts: trained officers before and after, never-trained officers."""
    since = rows["months_since_training"]
    groups = {
        "trained_before": (since < 0).fillna(False),
        "trained_after": (since > 0).fillna(False),
        "never_trained": since.isna(),
    }
    out = {}
    for name, mask in groups.items():
        part = rows[mask.to_numpy(dtype=bool)]
        shifts = float(part["shifts"].sum())
        events = int(part[measure].sum())
        out[name] = {"events": events, "shifts": shifts,
                     "rate": events / shifts * PER_SHIFTS if shifts else float("nan")}
    return out


def _fit_rows(rows: pd.DataFrame, measure: str, treatment: np.ndarray) -> dict[str, Any]:
    from scipy import sparse

    """Fit counts on officer and month fixed effects plus treatment columns; log(shifts) offset."""
    unit = pd.factorize(rows["officer_id"])[0]
    month = pd.factorize(rows["month"], sort=True)[0]
    n = unit.size
    months = int(month.max()) + 1 if n else 0
    dummies = sparse.csr_matrix((np.ones(n), (np.arange(n), month)), shape=(n, max(months, 1)))[:, 1:]
    design = sparse.hstack([dummies, sparse.csr_matrix(treatment)], format="csr")
    coef, se, kept, used = _conditional_poisson(rows[measure].to_numpy(dtype=np.float64),
                                                np.log(rows["shifts"].to_numpy(dtype=np.float64)), unit, design)
    width = treatment.shape[1]
    return {"coef": None if coef is None else coef[-width:], "se": None if se is None else se[-width:],
            "kept": kept, "columns": used[-width:]}


def _conditional_poisson(y: np.ndarray, offset: np.ndarray, unit: np.ndarray, design: sparse.csr_matrix,
                         tol: float = 1e-9, max_iter: int = 50,
                         ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, np.ndarray]:
    """Fit Poisson with unit fixed effects by Newton on the conditional likelihood.

    Returns (coefficients, cluster-robust standard errors, rows used, columns identified);
    coefficients of unidentified columns (no variation in the rows used) are 0 with NaN error.
    """
    from scipy import sparse

    n_units = int(unit.max()) + 1 if unit.size else 0
    total = np.bincount(unit, weights=y, minlength=n_units)
    # Officers with no events carry no information about rate ratios once their level is free.
    kept = total[unit] > 0 if unit.size else np.zeros(0, dtype=bool)
    p_all = design.shape[1]
    x = design[kept]
    used = np.zeros(p_all, dtype=bool)
    if not kept.any():
        return None, None, kept, used
    yk, ok, uk = y[kept], offset[kept], pd.factorize(unit[kept])[0]
    g = int(uk.max()) + 1
    nk = np.bincount(uk, weights=yk, minlength=g)
    # A column is identified only if it varies within some officer (else the officer effect absorbs it).
    colsum = np.asarray(x.sum(axis=0)).ravel()
    used = (colsum > 0) & (colsum < x.shape[0])
    x = x[:, np.flatnonzero(used)]
    members = sparse.csr_matrix((np.ones(uk.size), (uk, np.arange(uk.size))), shape=(g, uk.size))
    theta = np.zeros(x.shape[1])
    hessian = np.zeros((x.shape[1], x.shape[1]))
    for _ in range(max_iter):
        eta = ok + x @ theta
        w = np.exp(eta - eta.max())
        p = w / np.bincount(uk, weights=w, minlength=g)[uk]
        mu = nk[uk] * p
        gradient = x.T @ (yk - mu)
        m = members @ x.multiply(p[:, None]).tocsr()
        hessian = (x.T @ x.multiply(mu[:, None]).tocsr()).toarray() - (m.T @ m.multiply(nk[:, None]).tocsr()).toarray()
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        theta += step
        if np.max(np.abs(step), initial=0.0) < tol:
            break
    eta = ok + x @ theta
    w = np.exp(eta - eta.max())
    p = w / np.bincount(uk, weights=w, minlength=g)[uk]
    scores = (members @ x.multiply((yk - nk[uk] * p)[:, None]).tocsr()).toarray()
    bread = np.linalg.pinv(hessian)
    meat = scores.T @ scores * (g / max(g - 1, 1))
    se_used = np.sqrt(np.maximum(np.diag(bread @ meat @ bread), 0.0))
    coef = np.zeros(p_all)
    se = np.full(p_all, np.nan)
    coef[used], se[used] = theta, se_used
    return coef, se, kept, used


def with_intervals(summary: pd.DataFrame) -> pd.DataFrame:
    """Add 95% Wilson intervals to a compliance summary's share of compliant officers."""
    from lib.analysis.stats import wilson_interval

    low, high = wilson_interval(summary["compliant"].to_numpy(), summary["officers"].to_numpy())
    return summary.assign(low=low, high=high)


def effects(panel: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Return the training effect on use of force, officer injuries and assaults."""
    return {measure: difference_in_differences(panel, measure) for measure in MEASURES}


def scoped_roster(tables: dict[str, pd.DataFrame], scope: Any) -> dict[str, pd.DataFrame]:
    """Keep only the officers (and their training and exposure) in the forces, areas and teams a scope allows."""
    officers = tables.get("officers")
    teams = getattr(scope, "teams", None)
    if officers is None or (scope.forces is None and scope.areas is None and teams is None):
        return dict(tables)
    keep = pd.Series(True, index=officers.index)
    if scope.forces is not None:
        keep &= officers["force"].astype(str).isin(scope.forces) if "force" in officers else False
    if scope.areas is not None:
        keep &= officers["area"].astype(str).isin(scope.areas) if "area" in officers else False
    if teams is not None:
        keep &= officers["team"].astype(str).isin(teams) if "team" in officers else False
    allowed = set(officers.loc[keep, "officer_id"].astype(str))
    return {kind: (frame[frame["officer_id"].astype(str).isin(allowed)] if "officer_id" in frame else frame)
            for kind, frame in tables.items()}
