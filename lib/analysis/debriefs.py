"""Post-incident debriefs: find recurring contributing factors, and list the gaps.

A debrief record names the report or incident it reviews, its date, the contributing factors
(a list), learning points and actions. The analysis joins debriefs to the reports they review:
which factors recur, how they relate to officer injury and assault, and which reports with an
officer injured or assaulted have no debrief recorded (the supervisor's review list). Debriefs are
read from uploads by lib/ingest/debriefs.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lib.analysis import stats
from lib.engine.query import Filters, Scope, filtered_reports, require_keys
from lib.engine.store import Dataset, Engine
from lib.privacy import cellkey

# Factors the synthetic debriefs draw from; "Single crewed on arrival" is planted to go with injury.
SYNTHETIC_FACTORS = ("Single crewed on arrival", "Late call information", "Radio coverage", "Tactical communication",
                     "Intoxicated subject", "Mental health crisis", "Equipment not to hand", "Dog or animal present")


def _reviewed(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, debriefs: pd.DataFrame) -> pd.DataFrame:
    """Return the filtered reports with their harm flags and whether a debrief reviews them.

    Under a perturbed scope each report carries its record key, so every count made from them can be published.
    """
    t = filtered_reports(engine, ds, filters, scope)
    keys = [cellkey.RECORD_KEY] if scope.perturbed else []
    if keys:
        require_keys(engine, ds)
    reports = engine.execute(t.select("report_id", "incident_id", "occurred_at", "force", "area",
                                      "officer_injured", "officer_assaulted", *keys))
    by_report = set(debriefs["report_id"].dropna().astype(str))
    by_incident = set(debriefs["incident_id"].dropna().astype(str))
    reports["debriefed"] = reports["report_id"].astype(str).isin(by_report) | \
        reports["incident_id"].astype("string").isin(by_incident).fillna(False).astype(bool)
    return reports


def review_list(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, debriefs: pd.DataFrame,
                limit: int = 200) -> tuple[int, pd.DataFrame]:
    """Return how many reports with an officer injured or assaulted have no debrief, and the latest of them."""
    return _review(_reviewed(engine, ds, filters, scope, debriefs), limit, scope.perturbed)


def factor_table(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, debriefs: pd.DataFrame,
                 measure: str = "officer_injured") -> pd.DataFrame:
    """Return each contributing factor: debriefs naming it, and the measure's rate with it against without it."""
    return _factors(_reviewed(engine, ds, filters, scope, debriefs), debriefs, measure, scope.perturbed)


def analyse(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, debriefs: pd.DataFrame,
            limit: int = 200) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """Return the review list count, its latest rows and the factor table, reading the reports once.

    Under a perturbed scope the count and the factor table's counts are published (the cell key method: each
    adjusted by the key sum of the reports it counts) and the rate ratios are computed from them.
    """
    reports = _reviewed(engine, ds, filters, scope, debriefs)
    missing, review = _review(reports, limit, scope.perturbed)
    return missing, review, _factors(reports, debriefs, "officer_injured", scope.perturbed)


def _review(reports: pd.DataFrame, limit: int, perturbed: bool = False) -> tuple[int, pd.DataFrame]:
    harmed = reports["officer_injured"].fillna(False).astype(bool) | \
        reports["officer_assaulted"].fillna(False).astype(bool)
    missing = reports[harmed & ~reports["debriefed"]].sort_values("occurred_at", ascending=False)
    count = len(missing)
    if perturbed:
        count = cellkey.perturb_one(count, int(missing[cellkey.RECORD_KEY].astype("int64").sum()))
        missing = missing.drop(columns=[cellkey.RECORD_KEY])
    return count, missing.head(limit).drop(columns=["debriefed"]).reset_index(drop=True)


def _factors(reports: pd.DataFrame, debriefs: pd.DataFrame, measure: str, perturbed: bool = False) -> pd.DataFrame:
    joined = _debriefed_reports(reports, debriefs)
    if joined.empty:
        return pd.DataFrame(columns=["factor", "debriefs", "yes", "answered", "reference_yes", "reference_answered",
                                     "ratio", "ci_low", "ci_high"])
    answered = joined[measure].notna().to_numpy(dtype=bool)
    yes = joined[measure].fillna(False).astype(bool).to_numpy(dtype=bool)
    rows = []
    factors = sorted({f for fs in joined["contributing_factors"] for f in fs})
    counts = {"debriefs": lambda has: has, "yes": lambda has: has & yes, "answered": lambda has: has & answered,
              "reference_yes": lambda has: ~has & yes, "reference_answered": lambda has: ~has & answered}
    keys = joined[cellkey.RECORD_KEY].to_numpy(dtype=np.int64) if perturbed else None
    for factor in factors:
        has = joined["contributing_factors"].map(lambda fs, f=factor: f in fs).to_numpy(dtype=bool)
        row: dict[str, object] = {"factor": factor}
        for name, which in counts.items():
            chosen = which(has)
            row[name] = int(chosen.sum())
            if keys is not None:  # the reports each count counts: its key sum, for the cell key method
                row[cellkey.key_column(name)] = int(keys[chosen].sum())
        rows.append(row)
    table = pd.DataFrame(rows)
    if perturbed:  # published counts; the ratios below are computed from them
        table = cellkey.perturb_frame(table, list(counts), nested=[("answered", "debriefs"), ("yes", "answered"),
                                                                   ("reference_yes", "reference_answered")])
    ratio = stats.rate_ratio(table["yes"], table["answered"], table["reference_yes"], table["reference_answered"])
    table["ratio"], table["ci_low"], table["ci_high"] = (np.asarray(ratio.ratio), np.asarray(ratio.low),
                                                         np.asarray(ratio.high))
    return table.sort_values("debriefs", ascending=False).reset_index(drop=True)


def _debriefed_reports(reports: pd.DataFrame, debriefs: pd.DataFrame) -> pd.DataFrame:
    """Return one row per debriefed report with every factor its debriefs name."""
    by_report: dict[str, set[str]] = {}
    by_incident: dict[str, set[str]] = {}
    for rid, iid, factors in debriefs[["report_id", "incident_id", "contributing_factors"]].itertuples(index=False):
        if pd.notna(rid):
            by_report.setdefault(str(rid), set()).update(factors)
        if pd.notna(iid):
            by_incident.setdefault(str(iid), set()).update(factors)
    reviewed = reports[reports["debriefed"]].copy()
    reviewed["contributing_factors"] = [
        sorted(by_report.get(str(r), set()) | (by_incident.get(str(i), set()) if pd.notna(i) else set()))
        for r, i in zip(reviewed["report_id"], reviewed["incident_id"], strict=True)]
    return reviewed.reset_index(drop=True)


def synthesise(reports: pd.DataFrame, seed: int, harmed_share: float = 0.7, other_share: float = 0.05,
               planted_factor: str = SYNTHETIC_FACTORS[0]) -> pd.DataFrame:
    """Make synthetic debriefs for reports: most harmed ones reviewed, one factor planted to go with injury."""
    rng = np.random.default_rng(seed)
    injured = reports["officer_injured"].fillna(False).astype(bool).to_numpy()
    assaulted = reports["officer_assaulted"].fillna(False).astype(bool).to_numpy()
    harmed = injured | assaulted
    chosen = np.where(harmed, rng.random(len(reports)) < harmed_share, rng.random(len(reports)) < other_share)
    picked = reports.loc[chosen, ["report_id", "occurred_at"]].reset_index(drop=True)
    hurt = injured[chosen]
    others = [f for f in SYNTHETIC_FACTORS if f != planted_factor]
    factors = []
    for was_hurt in hurt:
        drawn = [f for f in others if rng.random() < 0.2]
        if rng.random() < (0.6 if was_hurt else 0.15):
            drawn.append(planted_factor)
        factors.append("; ".join(drawn))
    return pd.DataFrame({"Report ID": picked["report_id"],
                         "Debrief date": (pd.to_datetime(picked["occurred_at"]) + pd.Timedelta(days=7)).dt.strftime(
                             "%d/%m/%Y"),
                         "Contributing factors": factors,
                         "Learning points": "Reviewed at team briefing",
                         "Actions": np.where(hurt, "Refresher training booked", "None")})
