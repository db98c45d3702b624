"""Personal safety training: compliance with the hours standard and its effect on use of force.

Inputs are plain DataFrames (reports, the officer roster, training events, shifts worked per
officer-month), so any engine can supply them; the analysis runs on an officer-month panel, a
few hundred thousand rows at most, in pandas, numpy and scipy.

The effect is a Poisson model of officer-month counts with officer and calendar-month fixed
effects and log(shifts) as the offset. The officer effects are conditioned out exactly (the
conditional, multinomial form of the fixed-effects Poisson likelihood), leaving only the month
and treatment parameters to fit, and intervals are cluster-robust by officer.

Training is rolled out at different dates, so the headline (`staggered_effect`) never lets an
already-trained officer serve as a control: every training cohort (officers first trained in the
same month) gets its own effect in every month after training, so the month effects are learnt
from officers not yet (or never) trained only (Wooldridge's extended two-way fixed effects, Poisson
form); the cohort effects are averaged over the trained officer-months, weighted by the counts
expected had they not been trained.
The older two-way fixed-effects estimate (`difference_in_differences`) is right when the effect is
constant but is pulled towards zero when it grows with time since training; it is kept for comparison.
"""
from __future__ import annotations

from collections.abc import Collection
from datetime import date
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lib.privacy import cellkey

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
# The panel columns the models and crude rates read (with the key sums a perturbed scope adds).
_MODEL_COLUMNS = ("officer_id", "month", "shifts", "trained", "months_since_training", *MEASURES,
                  *(cellkey.key_column(measure) for measure in MEASURES), cellkey.key_column("officer_id"))
# An officer's record key (0..255) for the cell key method: roster tables carry no report keys, so the
# page gives each officer one (a keyed hash of the pseudonym) and a count of officers takes their sum.
OFFICER_KEY = cellkey.key_column("officer_id")
MIN_TRAINED_OFFICERS = 30
# Fit the panel models by design cells (lib/analysis/grouped_poisson.py); False: row by row, as before (tests).
CELL_FIT = True
MIN_TEAM = 10  # teams smaller than this are listed, not charted: one officer moves their share too far
UNCLEAR_BOUND = 0.20  # an interval reaching both a 20% fall and a 20% rise cannot tell
STAGGERED_METHOD = ("Trained officers' counts after training against the counts expected had they not been trained: "
                    "Poisson model of officer-month counts with officer and calendar-month effects, a log(shifts) "
                    "offset and a separate effect for each training cohort in each month after training, so only "
                    "officers not yet (or never) trained serve as comparison; training month left out; 95% interval "
                    "clustered by officer (sandwich)")
PRE_TREND_MONTHS = 6  # months before training whose rates are tested against the comparison officers'
PRE_TREND_ALPHA = 0.05
PROFILE_MONTHS = 12  # months after training drawn in the event-time profile
POWER_Z = 0.8416  # standard normal quantile for 80% power: detectable effect = (1.96 + 0.84) x SE
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
    """Count use of force, injuries and assaults per officer-month in the engine (scope and filters apply).

    Under a perturbed scope each count has the sum of its reports' record keys beside it (`cellkey.key_column`),
    so any total of officer-months published from the panel can be perturbed by the keys of the reports it counts.
    """
    from lib.engine.query import filtered_reports, key_sum, require_keys

    t = filtered_reports(engine, ds, filters, scope)
    t = t.filter(t.officer_id.notnull())
    keys = {}
    if scope.perturbed:
        require_keys(engine, ds)
        keys = {cellkey.key_column("reports"): key_sum(t),
                **{cellkey.key_column(field): key_sum(t, t[field].fill_null(False))
                   for field in ("officer_injured", "officer_assaulted")}}
    expr = t.group_by(officer_id=t.officer_id, month=t.occurred_at.truncate("M")).aggregate(
        reports=t.count(),
        officer_injured=t.officer_injured.sum().fill_null(0),
        officer_assaulted=t.officer_assaulted.sum().fill_null(0),
        **keys)
    return engine.execute(expr)


def panel_from_counts(counts: pd.DataFrame, exposure: pd.DataFrame | None, officers: pd.DataFrame | None,
                      months: RosterMonths | None = None) -> pd.DataFrame:
    """Build the officer-month panel from counts per officer-month, shifts worked and the roster.

    months (`roster_months` of the same exposure and officers) saves the roster's share of the work, which no
    filter changes: a page builds it once per roster and passes it with every filter state's counts.
    """
    months = months if months is not None else roster_months(exposure, officers)
    ids = counts["officer_id"].astype(str)
    month = pd.to_datetime(counts["month"]).dt.to_period("M").dt.to_timestamp().to_numpy()
    codes = months.ids.get_indexer(ids)
    if (codes < 0).any():  # reports by officers absent from the roster and the shifts: widen the officer list
        months = months.widened(ids[codes < 0])
        codes = months.ids.get_indexer(ids)
    key = codes.astype(np.int64) * _MONTH_SPAN + _month_ordinal(month)
    # Outer join on (officer, month), sorted as (officer id, month): a report in a month with no recorded
    # shifts stays visible (shifts is NaN).
    keys, worked_at, counted_at = _merged_keys(months.keys, key)
    n = keys.size
    officer = keys // _MONTH_SPAN
    when = np.empty(n, dtype=np.result_type(months.month.dtype, month.dtype))
    when[worked_at], when[counted_at] = months.month, month
    shifts = np.full(n, np.nan)
    shifts[worked_at] = months.shifts
    panel = {"officer_id": months.ids.take(officer), "month": when, "shifts": shifts}
    for column in counts.columns.drop(["officer_id", "month"]):
        values = np.full(n, np.nan)
        values[counted_at] = counts[column].to_numpy(dtype=np.float64, na_value=np.nan)
        panel[column] = values
    panel = pd.DataFrame(panel, index=pd.RangeIndex(n))
    for field in MEASURES:
        panel[field] = panel[field].fillna(0).astype("int64") if field in panel else 0
        if cellkey.key_column(field) in panel:  # an officer-month with no reports has no keys to add
            panel[cellkey.key_column(field)] = panel[cellkey.key_column(field)].fillna(0).astype("int64")
    for column, values in months.attributes.items():
        panel[column] = values.take(officer)
    since = pd.array(_month_ordinal(when) - months.trained_index[officer], dtype="Int64")
    panel["trained"] = np.asarray((since > 0).fillna(False), dtype=bool)
    panel["months_since_training"] = since
    return panel


def _merged_keys(worked: np.ndarray, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the sorted union of two sets of keys and where each key of both lands in it.

    `worked` (the roster's officer-months) is sorted and distinct and holds nearly every counted key: only the few
    counted keys it lacks are sorted and slotted in, instead of sorting and searching the whole union.
    """
    # Searched in sorted order: numpy then walks the roster's keys forwards instead of jumping about in them.
    order = np.argsort(counted, kind="stable")
    at = np.empty(counted.size, dtype=np.int64)
    at[order] = np.searchsorted(worked, counted[order])
    found = np.zeros(counted.size, dtype=bool)
    inside = at < worked.size
    found[inside] = worked[at[inside]] == counted[inside]
    extra = _sorted_unique(counted[~found])
    if not extra.size:
        return worked, np.arange(worked.size), at
    # Each worked key moves up by the extra keys below it; each extra key by the worked keys below it.
    worked_at = np.arange(worked.size) + np.searchsorted(extra, worked)
    extra_at = np.arange(extra.size) + np.searchsorted(worked, extra)
    keys = np.empty(worked.size + extra.size, dtype=np.result_type(worked, extra))
    keys[worked_at], keys[extra_at] = worked, extra
    counted_at = np.empty(counted.size, dtype=np.int64)
    counted_at[found] = worked_at[at[found]]
    counted_at[~found] = extra_at[np.searchsorted(extra, counted[~found])]
    return keys, worked_at, counted_at


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Return the distinct integers in values, sorted (a sort and a comparison: cheaper than np.unique's hashing)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if values.size else values


_MONTH_SPAN = 1 << 20  # months are numbered year * 12 + month: far below this, so (officer, month) packs in one key


def _month_ordinal(month: np.ndarray) -> np.ndarray:
    """Number calendar months (year * 12 + month - 1) from datetimes."""
    return np.asarray(month, dtype="datetime64[M]").astype(np.int64) + 1970 * 12


class RosterMonths:
    """The roster's share of the officer-month panel: shifts worked per officer-month and each officer's training."""

    def __init__(self, ids: pd.Index, keys: np.ndarray, month: np.ndarray, shifts: np.ndarray,
                 officers: pd.DataFrame) -> None:
        self.ids, self.keys, self.month, self.shifts, self.officers = ids, keys, month, shifts, officers
        roster = officers.assign(officer_id=officers["officer_id"].astype(str)).set_index("officer_id")
        trained_on = pd.to_datetime(roster["pst_trained_on"]).reindex(ids)
        self.trained_index = (trained_on.dt.year * 12 + trained_on.dt.month - 1).to_numpy(dtype=np.float64,
                                                                                          na_value=np.nan)
        # Kept as the panel's string arrays: taking from them is far cheaper than rebuilding strings per filter state.
        self.attributes = {column: pd.Series(roster[column].astype(str).reindex(ids).to_numpy()).array
                           for column in ("officer_role", "team") if column in roster}

    def widened(self, more: pd.Series) -> RosterMonths:
        """Return these months over an officer list widened by more ids (keys renumbered, order kept)."""
        ids = pd.Index(np.union1d(self.ids.to_numpy(dtype=object), more.unique().astype(object)))
        codes = ids.get_indexer(self.ids)[self.keys // _MONTH_SPAN]
        keys = codes.astype(np.int64) * _MONTH_SPAN + self.keys % _MONTH_SPAN
        return RosterMonths(ids, keys, self.month, self.shifts, self.officers)


def roster_months(exposure: pd.DataFrame, officers: pd.DataFrame) -> RosterMonths:
    """Sum shifts worked per officer-month and index the roster's officers: what the panel needs of the roster."""
    month = pd.to_datetime(exposure["month"]).dt.to_period("M").dt.to_timestamp().to_numpy()
    exposure = exposure[~np.isnat(month)]  # a row with no month is no officer-month (as a group-by drops it)
    month = month[~np.isnat(month)]
    ids = exposure["officer_id"].astype(str)
    listed = officers["officer_id"].astype(str).unique().astype(object)
    known = pd.Index(np.union1d(ids.unique().astype(object), listed))
    key = known.get_indexer(ids).astype(np.int64) * _MONTH_SPAN + _month_ordinal(month)
    keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    shifts = np.bincount(inverse, weights=pd.to_numeric(exposure["shifts"]).to_numpy(dtype=np.float64),
                         minlength=keys.size)
    return RosterMonths(known, keys, month[first], shifts, officers)


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
    columns = [c for c in ("officer_id", "officer_role", "team", OFFICER_KEY) if c in officers]
    out = officers[columns].copy()
    out["officer_id"] = out["officer_id"].astype(str)
    out["hours"] = hours.reindex(out["officer_id"]).fillna(0.0).to_numpy()
    out["last_trained_on"] = last.reindex(out["officer_id"]).dt.date.to_numpy()
    out["compliant"] = out["hours"] >= standard_hours
    out["shortfall"] = np.maximum(standard_hours - out["hours"], 0.0)
    return out.reset_index(drop=True)


def summarise_compliance(per_officer: pd.DataFrame, by: Collection[str] = ("officer_role",),
                         perturbed: bool = False) -> pd.DataFrame:
    """Count officers and compliant officers, with the share compliant, by role, team or both.

    Perturbed (the cell key method, for viewers and demonstrations), each count of officers is published
    adjusted by the sum of its officers' record keys (`OFFICER_KEY`), and the share compliant and the mean
    hours are computed from the published counts.
    """
    keys = list(by)
    if perturbed:
        return _published_compliance(per_officer, keys)
    grouped = per_officer.groupby(keys, observed=True, sort=True)
    out = grouped.agg(officers=("officer_id", "size"), compliant=("compliant", "sum"),
                      mean_hours=("hours", "mean")).reset_index()
    out["compliant"] = out["compliant"].astype("int64")
    out["share_compliant"] = out["compliant"] / out["officers"]
    return out


def lowest_shares(summary: pd.DataFrame, group: str, n: int = 15) -> pd.DataFrame:
    """Return the groups of MIN_TEAM officers or more with the lowest shares compliant, n at most.

    Equal shares go larger group first, then by name: the same list on every machine (an unstable sort put
    teams of equal share in an order that depended on the processor).
    """
    kept = summary[summary["officers"] >= MIN_TEAM]
    return kept.sort_values(["share_compliant", "officers", group], ascending=[True, False, True],
                            kind="stable").head(n)


def _published_compliance(per_officer: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Summarise compliance with every count of officers perturbed, and the share and mean hours from those."""
    officer_keys = _officer_keys(per_officer)
    frame = per_officer.assign(_key=officer_keys, _compliant_key=np.where(per_officer["compliant"], officer_keys, 0))
    out = frame.groupby(keys, observed=True, sort=True).agg(
        officers=("officer_id", "size"), compliant=("compliant", "sum"), hours=("hours", "sum"),
        **{cellkey.key_column("officers"): ("_key", "sum"),
           cellkey.key_column("compliant"): ("_compliant_key", "sum")}).reset_index()
    out["compliant"] = out["compliant"].astype("int64")
    out = cellkey.perturb_frame(out, ["officers", "compliant"], nested=[("compliant", "officers")])
    # A published count is never zero where officers were counted, so neither division is by zero.
    out["mean_hours"] = out.pop("hours") / out["officers"]
    out["share_compliant"] = out["compliant"] / out["officers"]
    return out[[*keys, "officers", "compliant", "mean_hours", "share_compliant"]]


def compliance_totals(per_officer: pd.DataFrame, perturbed: bool = False) -> tuple[int, int]:
    """Return how many officers are short of the standard and how many officers there are (published if perturbed)."""
    short = ~per_officer["compliant"].to_numpy(dtype=bool)
    if not perturbed:
        return int(short.sum()), len(per_officer)
    keys = _officer_keys(per_officer)
    officers = cellkey.perturb_one(len(per_officer), int(keys.sum()))
    return min(cellkey.perturb_one(int(short.sum()), int(keys[short].sum())), officers), officers


def _officer_keys(frame: pd.DataFrame) -> np.ndarray:
    """Return each row's officer record key, refusing a frame without them (a perturbed count needs its keys)."""
    if OFFICER_KEY not in frame:
        raise ValueError(f"officer counts cannot be perturbed without the officers' record keys ({OFFICER_KEY})")
    return frame[OFFICER_KEY].to_numpy(dtype=np.int64)


def overdue(per_officer: pd.DataFrame) -> pd.DataFrame:
    """List officers short of the standard, largest shortfall first."""
    late = per_officer[~per_officer["compliant"]]
    return late.sort_values(["shortfall", "officer_id"], ascending=[False, True], ignore_index=True)


def difference_in_differences(panel: pd.DataFrame | _Panel, measure: str = "reports",
                              level: float = 0.95) -> dict[str, Any]:
    """Estimate the relative change in a rate per 1,000 officer-shifts after training, with its interval."""
    rows = _panel_of(panel, measure)
    treated = rows.values("trained")
    fit = _fit_rows(rows, measure, treated[:, None])
    ever = ~np.isnan(rows.since)
    kept = fit["kept"]
    officers = rows.officer  # integer codes: counting distinct officers on them is much faster than on ids
    result: dict[str, Any] = {
        "measure": measure,
        "estimate": None, "ci_low": None, "ci_high": None,
        "method": METHOD,
        "officers_trained": int(pd.unique(officers[kept & (treated > 0)]).size),
        "officers_comparison": int(pd.unique(officers[kept & ~ever]).size),
        "events": int(rows.values(measure)[kept].sum()),
        "rates": _rates(rows, measure),
    }
    if fit["coef"] is not None and fit["columns"][-1]:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        coef, se = fit["coef"][-1], fit["se"][-1]
        with np.errstate(over="ignore"):  # a tiny sample can give a huge SE: the bound is then +inf, read as unclear
            result.update(estimate=float(np.expm1(coef)), ci_low=float(np.expm1(coef - z * se)),
                          ci_high=float(np.expm1(coef + z * se)))
    return result


def staggered_effect(panel: pd.DataFrame, measure: str = "reports", level: float = 0.95,
                     lead_months: int = PRE_TREND_MONTHS, perturbed: bool = False,
                     profile: bool = True) -> dict[str, Any]:
    """Estimate the average change after training, each trained officer against officers not yet (or never) trained.

    Perturbed (the cell key method), every count in the result (officers, events, the crude rates' events and
    the profile's) is published adjusted by its key sum: the record keys of the reports it counts, or of the
    officers. The estimates and intervals stay the model's, fitted to the exact panel: they are not counts, and
    the counts they rest on are never published exactly.
    """
    rows = _panel_of(panel, measure)
    # Refused before the fit, not after it: a perturbed result cannot be made without every key.
    keys = (_keys_of(rows.rows, cellkey.key_column(measure)), _officer_keys(rows.rows)) if perturbed else None
    design = _saturated(rows, measure)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    officers = design["officer"]  # integer codes: counting distinct officers on them is much faster than on ids
    judged = design["treated"] & (design["scale"][design["officer"]] > 0)
    result = effect_result(measure, lead_months, int(pd.unique(officers[judged]).size),
                           int(pd.unique(officers[design["never"] & design["in_fit"]]).size),
                           int(design["y"][design["in_fit"] | judged].sum()), _rates(rows, measure),
                           _imputed_ratio(design, design["treated"]), z)
    result.update(pre_trend(rows, measure, lead_months, start=design["theta"]))
    if keys is not None:
        keys = (keys[0][design["rows"]], keys[1][design["rows"]])
        result.update(_published_effect(result, design, judged, officers, keys))
        result["rates"] = _rates(rows, measure, perturbed=True)
    result["verdict"] = verdict(result)  # on the published count of trained officers, as a viewer reads it
    leads = result.pop("pre_trend")
    if profile:  # thirteen more ratios, each with its sandwich: only when the profile is shown
        result["profile"] = _profile(design, leads, officers, z, keys)
    return result


def effect_result(measure: str, lead_months: int, trained: int, comparison: int, events: int,
                  rates: dict[str, dict[str, float]], ratio: tuple[float, float, float, float] | None,
                  z: float) -> dict[str, Any]:
    """Return a staggered effect's result from its counts and imputed ratio (log ratio, SE, observed, expected)."""
    result: dict[str, Any] = {
        "measure": measure, "estimate": None, "ci_low": None, "ci_high": None,
        "method": STAGGERED_METHOD, "officers_trained": trained, "officers_comparison": comparison,
        "events": events, "rates": rates, "expected_events": None, "observed_events": None,
        "minimum_detectable_effect": None, "pre_trend_p": None, "pre_trend_months": lead_months,
    }
    if ratio is not None:
        log_ratio, se, observed, expected = ratio
        with np.errstate(over="ignore"):
            result.update(estimate=float(np.expm1(log_ratio)), ci_low=float(np.expm1(log_ratio - z * se)),
                          ci_high=float(np.expm1(log_ratio + z * se)),
                          minimum_detectable_effect=float(-np.expm1(-(z + POWER_Z) * se)))
        result.update(observed_events=int(observed), expected_events=float(expected))
    return result


def _published_effect(result: dict[str, Any], design: dict[str, Any], judged: np.ndarray, officers: np.ndarray,
                      keys: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Return an effect's counts as published: each perturbed by the key sum of the reports or officers it counts."""
    event_keys, officer_keys = keys
    y = design["y"]
    out: dict[str, Any] = {
        "officers_trained": _distinct_published(officers, officer_keys, judged),
        "officers_comparison": _distinct_published(officers, officer_keys, design["never"] & design["in_fit"]),
        "events": _sum_published(y, event_keys, design["in_fit"] | judged),
    }
    if result["observed_events"] is not None:
        observed = _sum_published(y, event_keys, judged)
        # Expected scaled with observed: their ratio is the estimate, so exact expected would give exact observed back.
        out.update(observed_events=observed,
                   expected_events=result["expected_events"] * observed / result["observed_events"])
    return out


def _distinct_published(ids: np.ndarray, keys: np.ndarray, mask: np.ndarray) -> int:
    """Return the published count of distinct officers in mask: perturbed by the sum of their record keys."""
    unique, first = np.unique(ids[mask], return_index=True)
    return cellkey.perturb_one(unique.size, int(keys[mask][first].sum()))


def _sum_published(y: np.ndarray, keys: np.ndarray, mask: np.ndarray) -> int:
    """Return the published total of counts in mask: perturbed by the sum of their reports' key sums."""
    return cellkey.perturb_one(int(y[mask].sum()), int(keys[mask].sum()))


def _keys_of(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Return a panel's key sums of a count, refusing a panel without them (a perturbed count needs its keys)."""
    if column not in rows:
        raise ValueError(f"counts cannot be perturbed without their reports' key sums ({column}): build the "
                         "officer-month counts with a perturbed scope")
    return rows[column].to_numpy(dtype=np.int64)


def event_profile(panel: pd.DataFrame, measure: str = "reports", perturbed: bool = False) -> pd.DataFrame:
    """Estimate the change by months since training: before it, the pre-trend test's months; after, each month's."""
    return staggered_effect(panel, measure, perturbed=perturbed)["profile"]


def effects_and_profile(panel: pd.DataFrame, perturbed: bool = False) -> tuple[dict[str, dict[str, Any]], pd.DataFrame]:
    """Return the training effects on every measure and the use-of-force event profile, fitting each model once."""
    found = effects(panel, keep_profile=True, perturbed=perturbed)
    return found, found["reports"].pop("profile")


def _profile(design: dict[str, Any], leads: pd.DataFrame, officers: np.ndarray, z: float,
             keys: tuple[np.ndarray, np.ndarray] | None = None, months_after: int = PROFILE_MONTHS) -> pd.DataFrame:
    """Tabulate the change by months since training: before, the pre-trend leads; after, each month's ratio.

    With keys (event key sums and officer keys per row), each month's officers and events are published perturbed.
    """
    since, y = design["since"], design["y"]
    records = []
    for k in range(-len(leads), months_after + 1):
        at = since == k
        if keys is None:
            officers_at, events_at = int(pd.unique(officers[at]).size), int(y[at].sum())
        else:
            officers_at, events_at = _distinct_published(officers, keys[1], at), _sum_published(y, keys[0], at)
        record = {"months_since_training": k, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                  "officers": officers_at, "events": events_at}
        if k < 0:
            lead = leads.set_index("months_since_training").loc[k]
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


def pre_trend(rows: pd.DataFrame | _Panel, measure: str = "reports", lead_months: int = PRE_TREND_MONTHS,
              start: np.ndarray | None = None) -> dict[str, Any]:
    """Test jointly that trained officers' rates in the months before training moved like the comparison officers'."""
    rows = _panel_of(rows, measure)
    out: dict[str, Any] = {"pre_trend_p": None, "pre_trend_df": 0,
                           "pre_trend": pd.DataFrame({"months_since_training": range(-lead_months, 0)})}
    if not len(rows):
        return out
    return lead_test(_saturated(rows, measure, lead_months, start)["fit"], lead_months, out)


def lead_test(fit: dict[str, Any], lead_months: int, out: dict[str, Any]) -> dict[str, Any]:
    """Fill a pre-trend result from the lead model's fit: the joint test of the leads and each lead's change."""
    from scipy.special import chdtrc  # the chi-squared upper tail, without loading scipy.stats

    if fit["theta"] is None:
        return out
    used = fit["used"]
    lead_cols = np.flatnonzero(used[-lead_months:])
    position = np.searchsorted(np.flatnonzero(used), used.size - lead_months + lead_cols)
    beta = fit["theta"][position]
    cov = _covariance(fit, position)
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


def verdict(result: dict[str, Any]) -> str:
    """Classify an effect: fell (training worked), rose, no_clear_change, doubtful (pre-trend failed) or too_few."""
    trained = result.get("officers_trained")
    estimate, low, high = result.get("estimate"), result.get("ci_low"), result.get("ci_high")
    if trained is None or any(v is None for v in (estimate, low, high)) or not np.isfinite([estimate, low, high]).all():
        return "too_few"
    if trained < MIN_TRAINED_OFFICERS or (low < -UNCLEAR_BOUND and high > UNCLEAR_BOUND):
        return "too_few"
    if low <= 0 <= high:
        return "no_clear_change"
    p = result.get("pre_trend_p")
    if p is not None and p < PRE_TREND_ALPHA:
        return "doubtful"
    return "fell" if high < 0 else "rose"


VERDICT_LABELS: dict[str, str] = {
    "fell": "Training worked",
    "rose": "Higher after training",
    "no_clear_change": "No clear change",
    "doubtful": "Not clear the training did it",
    "too_few": "Too few officers to tell",
}


def verdict_label(result: dict[str, Any]) -> str:
    """Name the verdict in a few words ("Training worked" only when the whole interval is a fall)."""
    return VERDICT_LABELS[result.get("verdict") or verdict(result)]


def twfe_reading(result: dict[str, Any]) -> str:
    """Put the older two-way fixed-effects estimate beside the headline, saying why it is not the headline."""
    old = result.get("twfe") or {}
    estimate, low, high = old.get("estimate"), old.get("ci_low"), old.get("ci_high")
    if estimate is None or low is None or high is None or not np.isfinite([estimate, low, high]).all():
        return ""
    return (f"For comparison, the older two-way fixed-effects model gives {_percent(estimate)} (95% interval "
            f"{_percent(low)} to {_percent(high)}); it lets officers trained earlier serve as comparison, which pulls "
            "the estimate towards zero when the effect builds up over the months after training.")


def pre_trend_reading(result: dict[str, Any]) -> str:
    """Say in plain words whether trained officers' rates moved like the others' before training."""
    p, months = result.get("pre_trend_p"), result.get("pre_trend_months", PRE_TREND_MONTHS)
    trained = result.get("officers_trained")
    if p is None or trained is None or trained < MIN_TRAINED_OFFICERS:
        return "Too few officers before training to check whether their rates moved like the others'."
    if p < PRE_TREND_ALPHA:
        return (f"Warning: in the {months} months before training, trained officers' rates already moved differently "
                f"from the others' (test p = {p:.2f}), so a change after training may not be the training's doing.")
    return (f"Before training, trained officers' rates moved like the others' (test of the {months} months before "
            f"training: p = {p:.2f}), as a fair comparison needs.")


def detectable_reading(result: dict[str, Any]) -> str:
    """Say the smallest change the data could detect (80% power, 5% two-sided)."""
    mde = result.get("minimum_detectable_effect")
    if mde is None or not np.isfinite(mde) or result.get("estimate") is None:
        return "Too few officers to say how large a change these data could detect."
    return (f"The data could detect a change of about {mde:.0%} or more: a fall that large would be found "
            "8 times in 10; a smaller real effect could be missed.")


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
                with np.errstate(over="ignore"):
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
    if result.get("verdict") == "doubtful":
        direction = f"fell by about {abs(estimate):.0%}" if high < 0 else f"rose by about {estimate:.0%}"
        return (f"{what} per 1,000 officer-shifts {direction} after training {span}, {against}; but these officers' "
                "rates were already moving differently before training, so this cannot be credited to the training.")
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
    """Keep officer-months with shifts worked (the rate's denominator), and only the columns the models read."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {sorted(MEASURES)}, not {measure!r}")
    columns = [c for c in _MODEL_COLUMNS if c in panel]
    if len(columns) < panel.shape[1]:  # roles and teams are strings: carrying them through every subset costs
        panel = panel[columns]
    shifts = panel["shifts"].to_numpy(dtype=np.float64, na_value=np.nan)
    keep = np.nan_to_num(shifts, nan=0.0) > 0
    return panel if keep.all() else panel[keep]


def _judged(panel: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Keep the usable officer-months but the training month itself (neither before nor after training)."""
    rows = _usable(panel, measure)
    training_month = (rows["months_since_training"] == 0).fillna(False).to_numpy(dtype=bool)
    return rows[~training_month] if training_month.any() else rows


def _rates(rows: pd.DataFrame | _Panel, measure: str, perturbed: bool = False) -> dict[str, dict[str, float]]:
    """Crude rates per 1,000 officer-shifts: trained officers before and after, never-trained officers.

    Perturbed, each group's events are published adjusted by their reports' key sum, and the rate is theirs.
    """
    panel = rows if isinstance(rows, _Panel) else None
    since = panel.since if panel is not None else rows["months_since_training"].to_numpy(dtype=np.float64,
                                                                                          na_value=np.nan)
    shifts = panel.shifts if panel is not None else rows["shifts"].to_numpy(dtype=np.float64)
    y = panel.values(measure) if panel is not None else rows[measure].to_numpy(dtype=np.float64)
    frame = panel.rows if panel is not None else rows
    keys = _keys_of(frame, cellkey.key_column(measure)) if perturbed else None
    groups = {"trained_before": since < 0, "trained_after": since > 0, "never_trained": np.isnan(since)}
    out = {}
    for name, mask in groups.items():
        total = float(shifts[mask].sum())
        events = int(y[mask].sum())
        if keys is not None:
            events = cellkey.perturb_one(events, int(keys[mask].sum()))
        out[name] = {"events": events, "shifts": total,
                     "rate": events / total * PER_SHIFTS if total else float("nan")}
    return out


class _Panel:
    """The judged officer-months as arrays, shared by every model of one panel (factorised and grouped once).

    Each row's design depends only on its cell: the officer's training month (or never) and the calendar month.
    """

    def __init__(self, rows: pd.DataFrame) -> None:
        from lib.analysis import grouped_poisson

        self.rows = rows
        self.since = rows["months_since_training"].to_numpy(dtype=np.float64, na_value=np.nan)
        self.shifts = rows["shifts"].to_numpy(dtype=np.float64)
        self.officer = pd.factorize(rows["officer_id"])[0]
        self.month, month_values = pd.factorize(rows["month"], sort=True)
        self.months = int(self.month.max()) + 1 if self.month.size else 1
        self.kind, self.first, self.kind_group, self.kind_month = _design_cells(self.month, self.since, month_values,
                                                                              self.months)
        self.kind_since = np.full(self.kind_group.size, np.nan)
        self.kind_since[self.kind] = self.since
        self.cells_apply = grouped_poisson.applies(self.officer, self.month, self.kind_group[self.kind], self.months)
        self._columns: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.since.size

    def values(self, column: str) -> np.ndarray:
        """Return a column as float64 (measures; kept once read)."""
        if column not in self._columns:
            self._columns[column] = self.rows[column].to_numpy(dtype=np.float64)
        return self._columns[column]


def _panel_of(panel: pd.DataFrame | _Panel, measure: str) -> _Panel:
    """Return the judged rows of a panel as arrays (a `_Panel` passes through, its measure checked)."""
    if isinstance(panel, _Panel):
        if measure not in MEASURES:
            raise ValueError(f"measure must be one of {sorted(MEASURES)}, not {measure!r}")
        return panel
    return _Panel(_judged(panel, measure))


def _saturated(rows: pd.DataFrame | _Panel, measure: str, lead_months: int = 0,
               start: np.ndarray | None = None) -> dict[str, Any]:
    """Fit officer and month effects with one effect per training cohort and calendar month after training.

    Every trained officer-month gets its own cohort x month effect, so only officers not yet (or
    never) trained identify the month effects: no already-trained officer serves as a control
    (Wooldridge's extended two-way fixed effects, Poisson form). Optional pooled effects for the
    lead_months before training give the pre-trend test. Cells with no events are left out of the
    fit: their effect is minus infinity, and leaving them out gives the same fit of the rest.
    """
    from scipy import sparse

    panel = rows if isinstance(rows, _Panel) else _Panel(rows)
    since, shifts, officer, month, kind = panel.since, panel.shifts, panel.officer, panel.month, panel.kind
    y = panel.values(measure)
    months = panel.months
    n_officers = int(officer.max()) + 1 if officer.size else 0
    # A calendar month with no events at all (outside the date filter, or not yet recorded) says
    # nothing once months have their own effect (its effect is minus infinity): left out, so that it
    # is not taken for months before or after training.
    observed_month = np.bincount(month, weights=y, minlength=months) > 0
    observed = observed_month[month]
    after = since >= 1
    # An officer with no observed month before training (trained in the first month) has a level that
    # cannot be told apart from the training effect: left out, like their cohort's months after training.
    before = np.bincount(officer[observed], weights=~after[observed], minlength=n_officers) > 0
    # A month in which every officer had already been trained has no one to compare with: its trained
    # officer-months are left out (their month effect and cohort effects cannot be told apart).
    compared_month = np.bincount(month[observed & ~after], minlength=months) > 0
    keep = before[officer] & observed & (compared_month[month] | ~after)
    if not keep.all():  # usually every row is kept: no copies of millions of rows then
        y, shifts, officer, month, since, kind = (v[keep] for v in (y, shifts, officer, month, since, kind))
    n = y.size
    # The rest is decided per design cell (a few hundred), not per officer-month (millions): a kept row is
    # treated when its cell is after training in an observed month with officers to compare.
    kinds = panel.kind_group.size
    kind_since, kind_month = panel.kind_since, panel.kind_month
    kind_treated = (kind_since >= 1) & observed_month[kind_month] & compared_month[kind_month]
    treated = kind_treated[kind]
    kind_rows = np.bincount(kind, minlength=kinds)
    kind_events = np.bincount(kind, weights=y, minlength=kinds)
    # One effect per cohort x month cell with treated rows, ordered by (cohort, month) as the columns always were.
    cohort_kinds = np.flatnonzero(kind_treated & (kind_rows > 0))
    cohort_key = (kind_month[cohort_kinds] - kind_since[cohort_kinds]).astype(np.int64) * months \
        + kind_month[cohort_kinds]
    order = np.argsort(cohort_key, kind="stable")
    cells = cohort_key[order]
    kind_cell = np.full(kinds, -1, dtype=np.int64)
    kind_cell[cohort_kinds[order]] = np.arange(cells.size)
    cell = kind_cell[kind[treated]]
    fitted = (~kind_treated | (kind_events > 0))[kind]
    columns = [sparse.csr_matrix((np.ones(kinds), (np.arange(kinds), kind_month)), shape=(kinds, months))[:, 1:],
               sparse.csr_matrix((np.ones(cohort_kinds.size), (cohort_kinds[order], np.arange(cells.size))),
                                 shape=(kinds, cells.size))]
    if lead_months:
        leads = np.column_stack([kind_since == -k for k in range(lead_months, 0, -1)]).astype(np.float64)
        columns.append(sparse.csr_matrix(leads.reshape(kinds, lead_months)))
    design = sparse.hstack(columns, format="csr")
    if start is not None and start.size < design.shape[1]:
        start = np.concatenate([start, np.zeros(design.shape[1] - start.size)])
    every = fitted.all()
    fit = _cell_fit(y if every else y[fitted], np.log(shifts if every else shifts[fitted]),
                    officer if every else officer[fitted], kind if every else kind[fitted], design, panel.kind_group,
                    kind_month, months, start=start, apply=panel.cells_apply,
                    blocks=_cohort_blocks(cells, months, officer[treated], cell, lead_months))
    theta = np.zeros(design.shape[1])
    if fit["theta"] is not None:
        theta[fit["used"]] = fit["theta"]
    in_fit = np.zeros(n, dtype=bool)
    in_fit[np.flatnonzero(fitted)[fit["kept"]]] = True
    # Officer levels profiled out of the likelihood: events / expected events at level 1.
    fitted_scale = np.where(in_fit, shifts * np.exp(design @ theta)[kind], 0.0)
    events = np.bincount(officer[in_fit], weights=y[in_fit], minlength=n_officers)
    scale = np.bincount(officer, weights=fitted_scale, minlength=n_officers)
    level = np.divide(events, scale, out=np.zeros(n_officers), where=scale > 0)
    month_effect = np.concatenate([[0.0], theta[:months - 1]])
    untrained = np.where(treated, shifts * np.exp(month_effect[month]) * level[officer], 0.0)
    return {"y": y, "design": design, "kind": kind, "month": month, "officer": officer, "treated": treated,
            "fit": fit, "in_fit": in_fit,
            "fitted_scale": fitted_scale, "scale": scale, "untrained": untrained, "months": months,
            "never": np.isnan(since), "since": since, "cells": cells.size, "lead_months": lead_months, "rows": keep,
            "theta": theta}


def _cohort_blocks(cells: np.ndarray, months: int, officers: np.ndarray, cell: np.ndarray,
                   lead_months: int) -> np.ndarray | None:
    """Label the saturated design's cohort x month columns by cohort (-1: month and lead columns), if that blocks it.

    An officer belongs to one training cohort, so two cohorts' columns never meet in one officer's rows and the
    information matrix is block diagonal by cohort but for the shared columns. None if some officer's trained
    months fall in two labels (months missing from the panel shift the cohort arithmetic): solved whole then.
    """
    label = pd.factorize(cells // months)[0] if cells.size else np.zeros(0, dtype=np.int64)
    if officers.size:
        pairs = pd.unique(pd.Series(officers.astype(np.int64) * (label.size + 1) + label[cell]))
        if pairs.size != pd.unique(officers).size:
            return None
    return np.concatenate([np.full(months - 1, -1), label, np.full(lead_months, -1)]).astype(np.int64)


def _design_cells(month: np.ndarray, since: np.ndarray, month_values: Any,
                  months: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return each row's design cell (its officer's training month, or never, and its month) and the cells' rows.

    Returns (cell per row, a row of each cell, each cell's group, each cell's month column).
    """
    ordinal = _month_ordinal(np.asarray(month_values))[month] if month.size else np.zeros(0)
    trained = pd.factorize(ordinal - since)[0]  # NaN (never trained) is -1: a group of its own
    trained = np.where(trained < 0, trained.max(initial=-1) + 1, trained).astype(np.int64)
    key = trained * months + month
    # Numbered by a count over the few possible cells: np.unique would hash or sort millions of rows.
    present = np.bincount(key, minlength=1) > 0
    kinds = np.flatnonzero(present)
    number = np.cumsum(present) - 1
    kind = number[key]
    first = np.zeros(kinds.size, dtype=np.int64)
    first[kind] = np.arange(key.size)  # any row of a cell stands for it (the last here): their designs are equal
    return kind, first, kinds // months, kinds % months


def _cell_fit(y: np.ndarray, offset: np.ndarray, unit: np.ndarray, kind: np.ndarray, design: sparse.csr_matrix,
              kind_group: np.ndarray, kind_month: np.ndarray, months: int, start: np.ndarray | None = None,
              blocks: np.ndarray | None = None, apply: bool | None = None) -> dict[str, Any]:
    """Fit the conditional Poisson of rows whose design is `design[kind]`: by cells, else row by row.

    apply: whether the rows suit the cell form (`grouped_poisson.applies`), when the caller knows it already.
    The design's first months - 1 columns are the month indicators.
    """
    from lib.analysis import grouped_poisson

    if apply is None:
        apply = grouped_poisson.applies(unit, kind_month[kind], kind_group[kind], months)
    if CELL_FIT and apply:
        fit = grouped_poisson.fit(y, offset, unit, kind, design, kind_group, kind_month, months, start=start,
                                  blocks=blocks, block_factor=_block_factor, solve=_solve, inverse=_inverse,
                                  month_columns=months - 1)
        if not fit.get("fallback"):
            return fit
    return _conditional_fit(y, offset, unit, design[kind], start=start, blocks=blocks, month_columns=months - 1)


def _scores_times(fit: dict[str, Any], vector: np.ndarray) -> np.ndarray:
    """Return each kept officer's score times a vector (of the identified columns)."""
    return fit["score_dot"](vector) if fit.get("score_dot") is not None else fit["scores"] @ vector


def _imputed_ratio(design: dict[str, Any], subset: np.ndarray) -> tuple[float, float, float, float] | None:
    """Return log(observed / expected without training) over trained officer-months in subset, its SE and the sums.

    The SE stacks the ratio's estimating equation with the model's conditional-likelihood scores
    and linearises both per officer (a cluster-robust sandwich), so the uncertainty of the
    expected counts (month effects, cohort effects and officer levels) is carried into the interval.
    """
    y, officer, fit = design["y"], design["officer"], design["fit"]
    subset = subset & design["treated"] & (design["scale"][officer] > 0)
    expected = np.where(subset, design["untrained"], 0.0)
    observed_total, expected_total = float(y[subset].sum()), float(expected.sum())
    if observed_total <= 0 or expected_total <= 0:
        return None
    ratio = observed_total / expected_total
    n_officers = design["scale"].size
    observed_i = np.bincount(officer[subset], weights=y[subset], minlength=n_officers)
    expected_i = np.bincount(officer, weights=expected, minlength=n_officers)
    influence = observed_i - ratio * expected_i
    if fit["theta"] is not None and fit["theta"].size:
        # d(expected)/d(theta): + the expected counts on the month columns, - each officer's level
        # moving against the fitted scale of all its rows (the level is events / scale).
        cells, kind = design["design"], design["kind"]
        share = np.divide(expected_i, design["scale"], out=np.zeros(n_officers), where=design["scale"] > 0)
        months = design["months"] - 1
        direct = np.zeros(cells.shape[1])
        # The month columns are one per calendar month after the first: their rows' expected counts summed.
        direct[:months] = np.bincount(design["month"], weights=expected, minlength=months + 1)[1:]
        weights = np.bincount(kind, weights=share[officer] * design["fitted_scale"], minlength=cells.shape[0])
        gradient = (direct - cells.T @ weights)[fit["used"]]
        influence[fit["unit_kept"]] -= ratio * _scores_times(fit, fit["solve"](gradient))
    clusters = int(np.count_nonzero(influence))
    if clusters < 2:
        return None
    variance = float(influence @ influence) * clusters / (clusters - 1) / expected_total ** 2
    return float(np.log(ratio)), float(np.sqrt(variance)) / ratio, observed_total, expected_total


def _fit_rows(rows: pd.DataFrame | _Panel, measure: str, treatment: np.ndarray) -> dict[str, Any]:
    """Fit counts on officer and month fixed effects plus treatment columns; log(shifts) offset."""
    from scipy import sparse

    panel = rows if isinstance(rows, _Panel) else _Panel(rows)
    unit, month, months, kind, first = panel.officer, panel.month, panel.months, panel.kind, panel.first
    n = unit.size
    y, offset = panel.values(measure), np.log(panel.shifts)
    treatment = np.asarray(treatment, dtype=np.float64).reshape(n, -1)
    dummies = sparse.csr_matrix((np.ones(first.size), (np.arange(first.size), panel.kind_month)),
                                shape=(first.size, months))[:, 1:]
    design = sparse.hstack([dummies, sparse.csr_matrix(treatment[first])], format="csr")
    if np.array_equal(treatment[first][kind], treatment):  # the treatment is a function of the cell, as in the models
        fit = _cell_fit(y, offset, unit, kind, design, panel.kind_group, panel.kind_month, months,
                        apply=panel.cells_apply)
    else:
        rows_design = sparse.hstack([sparse.csr_matrix((np.ones(n), (np.arange(n), month)), shape=(n, months))[:, 1:],
                                     sparse.csr_matrix(treatment)], format="csr")
        fit = _conditional_fit(y, offset, unit, rows_design, month_columns=months - 1)
    coef, se = _coefficients(fit, design.shape[1])
    width = treatment.shape[1]
    return {"coef": None if coef is None else coef[-width:], "se": None if se is None else se[-width:],
            "kept": fit["kept"], "columns": fit["used"][-width:]}


def _coefficients(fit: dict[str, Any], columns: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return a fit's coefficients and cluster-robust standard errors over all columns (unidentified: 0 and NaN)."""
    if fit["theta"] is None:
        return None, None
    used = fit["used"]
    se_used = np.sqrt(np.maximum(np.diag(fit["covariance"]), 0.0))
    coef = np.zeros(columns)
    se = np.full(columns, np.nan)
    coef[used], se[used] = fit["theta"], se_used
    return coef, se


def _conditional_fit(y: np.ndarray, offset: np.ndarray, unit: np.ndarray, design: sparse.csr_matrix,
                     tol: float = 1e-9, max_iter: int = 50, start: np.ndarray | None = None,
                     blocks: np.ndarray | None = None, month_columns: int = 0) -> dict[str, Any]:
    """Fit the conditional (officer fixed effects) Poisson and keep what a sandwich needs.

    Returns theta (identified columns only), solve (the inverse information, the bread, applied to a
    vector or matrix), covariance (cluster-robust by unit; without blocks only, see `_covariance`),
    scores (one row per unit kept), unit_kept (the original unit of each score row), kept (rows used)
    and used (columns identified). blocks labels each design column (-1: shared by all units) so that
    no unit has entries in two labelled blocks; the information matrix is then block diagonal but for
    the shared columns, and is solved by blocks (the same solution, in a fraction of the time).
    month_columns: the design's first columns are that many month indicators (`grouped_poisson.identified`).
    """
    from scipy import sparse

    from lib.analysis import grouped_poisson

    n_units = int(unit.max()) + 1 if unit.size else 0
    total = np.bincount(unit, weights=y, minlength=n_units)
    # Officers with no events carry no information about rate ratios once their level is free.
    kept = total[unit] > 0 if unit.size else np.zeros(0, dtype=bool)
    p_all = design.shape[1]
    x = design[kept]
    used = np.zeros(p_all, dtype=bool)
    empty = {"theta": None, "covariance": None, "solve": None, "scores": None, "clusters": 0, "unit_kept": None,
             "kept": kept, "used": used}
    if not kept.any():
        return empty
    yk, ok = y[kept], offset[kept]
    uk, unit_kept = pd.factorize(unit[kept])
    g = int(uk.max()) + 1
    nk = np.bincount(uk, weights=yk, minlength=g)
    # A column is identified only if it varies within some officer (else the officer effect absorbs it).
    used = grouped_poisson.identified(np.asarray(x.sum(axis=0)).ravel(), x.shape[0], month_columns)
    x = x[:, np.flatnonzero(used)]
    members = sparse.csr_matrix((np.ones(uk.size), (uk, np.arange(uk.size))), shape=(g, uk.size))
    # A warm start (a nested model's estimates) saves Newton steps; it does not change the optimum.
    theta = np.zeros(x.shape[1]) if start is None else np.asarray(start, dtype=np.float64)[used].copy()
    labels = None if blocks is None or not x.shape[1] else np.asarray(blocks)[used]
    hessian = np.zeros((x.shape[1], x.shape[1]))
    factor = None
    p = _shares(ok + x @ theta, uk, g)
    loglik = _loglik(yk, p)
    for _ in range(max_iter):
        mu = nk[uk] * p
        gradient = x.T @ (yk - mu)
        m = members @ x.multiply(p[:, None]).tocsr()
        hessian = (x.T @ x.multiply(mu[:, None]).tocsr()).toarray() - (m.T @ m.multiply(nk[:, None]).tocsr()).toarray()
        factor = None if labels is None else _block_factor(hessian, labels)
        step = _solve(hessian, gradient) if factor is None else factor(gradient)
        # Halve a step that lowers the likelihood: thin cells in a small panel can make a full step overshoot.
        for _ in range(30):
            p_new = _shares(ok + x @ (theta + step), uk, g)
            loglik_new = _loglik(yk, p_new)
            if loglik_new >= loglik - 1e-9 * (1 + abs(loglik)):
                break
            step = step / 2
        theta += step
        p, loglik = p_new, loglik_new
        if np.max(np.abs(step), initial=0.0) < tol:
            break
    scores = (members @ x.multiply((yk - nk[uk] * p)[:, None]).tocsr()).toarray()
    out = {"theta": theta, "scores": scores, "clusters": g, "covariance": None,
           "unit_kept": np.asarray(unit_kept), "kept": kept, "used": used}
    if factor is not None:  # the last Newton step's information is the bread's: its factors serve both
        return {**out, "solve": factor}
    bread = _inverse(hessian)
    meat = scores.T @ scores * (g / max(g - 1, 1))
    return {**out, "covariance": bread @ meat @ bread, "solve": bread.__matmul__}


def _covariance(fit: dict[str, Any], positions: np.ndarray) -> np.ndarray:
    """Return the cluster-robust covariance of the fitted coefficients at positions (among the identified columns)."""
    if fit["covariance"] is not None:
        return fit["covariance"][np.ix_(positions, positions)]
    unit = np.zeros((fit["theta"].size, positions.size))
    unit[positions, np.arange(positions.size)] = 1.0
    bread = fit["solve"](unit)  # the bread's columns at positions (it is symmetric)
    g = fit["clusters"]
    if fit.get("score_gram") is not None:  # fitted by cells: the scores' Gram matrix stands for the scores
        return bread.T @ fit["score_gram"] @ bread * (g / max(g - 1, 1))
    lever = fit["scores"] @ bread
    return lever.T @ lever * (g / max(g - 1, 1))


DIRECT_FACTOR = 300  # information matrices up to this many columns are factored whole, not by blocks


def _block_factor(matrix: np.ndarray, labels: np.ndarray) -> Any:
    """Factor a positive definite matrix whose labelled blocks meet only through the shared columns (label -1).

    Returns a function solving matrix @ x = rhs (the Schur complement on the shared columns), or None when a
    block or the complement is not positive definite (the caller falls back to the whole matrix).
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    if matrix.shape[0] <= DIRECT_FACTOR:  # a few hundred columns: one factor beats a Python loop over the blocks
        try:
            whole = cho_factor(matrix, lower=True, check_finite=False)
        except LinAlgError:
            return None
        return lambda rhs: cho_solve(whole, np.asarray(rhs, dtype=np.float64), check_finite=False)
    shared = np.flatnonzero(labels < 0)
    rest = np.flatnonzero(labels >= 0)
    order = rest[np.argsort(labels[rest], kind="stable")]
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = np.split(order, bounds) if order.size else []
    try:
        factors = [cho_factor(matrix[np.ix_(group, group)], lower=True, check_finite=False) for group in groups]
        couplings = [matrix[np.ix_(shared, group)] for group in groups]
        # D^-1 B' per block: how each block's solution moves with the shared columns.
        moves = [cho_solve(f, c.T, check_finite=False) for f, c in zip(factors, couplings, strict=True)]
        complement = matrix[np.ix_(shared, shared)].copy()
        for c, move in zip(couplings, moves, strict=True):
            complement -= c @ move
        head = cho_factor(complement, lower=True, check_finite=False) if shared.size else None
    except LinAlgError:
        return None

    def solve(rhs: np.ndarray) -> np.ndarray:
        rhs = np.asarray(rhs, dtype=np.float64)
        out = np.empty_like(rhs)
        within = [cho_solve(f, rhs[group], check_finite=False) for f, group in zip(factors, groups, strict=True)]
        top = rhs[shared].copy()
        for c, part in zip(couplings, within, strict=True):
            top -= c @ part
        top = cho_solve(head, top, check_finite=False) if head is not None else top
        out[shared] = top
        for group, part, move in zip(groups, within, moves, strict=True):
            out[group] = part - move @ top
        return out

    return solve


def _shares(eta: np.ndarray, unit: np.ndarray, units: int) -> np.ndarray:
    """Each row's share of its unit's expected count (softmax within unit, shifted by the unit's maximum)."""
    top = np.full(units, -np.inf)
    np.maximum.at(top, unit, eta)
    w = np.exp(eta - top[unit])  # every unit keeps a row of weight 1, so no share is 0 / 0
    return w / np.bincount(unit, weights=w, minlength=units)[unit]


def _loglik(y: np.ndarray, share: np.ndarray) -> float:
    """Conditional (multinomial) log-likelihood, up to a constant."""
    with np.errstate(divide="ignore"):
        return float(np.sum(y[y > 0] * np.log(share[y > 0])))


def _solve(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Solve a symmetric system by Cholesky (fast), falling back to least squares when it is not positive definite."""
    try:
        factor = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(matrix, vector, rcond=None)[0]
    return np.linalg.solve(factor.T, np.linalg.solve(factor, vector))


def _inverse(matrix: np.ndarray) -> np.ndarray:
    """Invert a symmetric information matrix (Cholesky), or take its pseudo-inverse when it is singular."""
    try:
        factor = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(matrix)
    inverse_factor = np.linalg.solve(factor, np.eye(matrix.shape[0]))
    return inverse_factor.T @ inverse_factor


def with_intervals(summary: pd.DataFrame) -> pd.DataFrame:
    """Add 95% Wilson intervals to a compliance summary's share of compliant officers."""
    from lib.analysis.stats import wilson_interval

    low, high = wilson_interval(summary["compliant"].to_numpy(), summary["officers"].to_numpy())
    return summary.assign(low=low, high=high)


def effects(panel: pd.DataFrame, keep_profile: bool = False, perturbed: bool = False) -> dict[str, dict[str, Any]]:
    """Return the training effect on use of force, officer injuries and assaults (TWFE beside it for comparison).

    Perturbed, the counts are published (see `staggered_effect`); the two-way estimate beside it is a model
    estimate only (its counts are not kept).
    """
    out = {}
    # The same rows for every measure: subset, factorised and grouped once, not in every model.
    panel = _Panel(_judged(panel, "reports"))
    for measure in MEASURES:
        result = staggered_effect(panel, measure, perturbed=perturbed, profile=keep_profile and measure == "reports")
        old = difference_in_differences(panel, measure)
        result["twfe"] = {key: old[key] for key in ("estimate", "ci_low", "ci_high")}
        out[measure] = result
    return out


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
