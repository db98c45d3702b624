"""Post-incident debriefs: read them safely, find recurring contributing factors, and list the gaps.

A debrief record names the report or incident it reviews, its date, the contributing factors
(a list), learning points and actions. The analysis joins debriefs to the reports they review:
which factors recur, how they relate to officer injury and assault, and which reports with an
officer injured or assaulted have no debrief recorded (the supervisor's review list).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib import ingest
from lib.analysis import stats
from lib.engine.query import Filters, Scope, filtered_reports
from lib.engine.store import Dataset, Engine
from lib.ingest.formats import FILE, ROW, ROWS, empty_quarantine, quarantine_rows
from lib.model import values

# canonical debrief column -> header names (normalised) that mean it
ALIASES: dict[str, tuple[str, ...]] = {
    "report_id": ("report id", "report", "form id", "uof number", "report number"),
    "incident_id": ("incident id", "incident", "incident number", "pib file number"),
    "debrief_date": ("debrief date", "date", "review date", "date of debrief"),
    "contributing_factors": ("contributing factors", "factors", "root causes", "root cause", "causes"),
    "learning_points": ("learning points", "learning", "lessons", "lessons learned"),
    "actions": ("actions", "actions agreed", "recommendations"),
}
LIST_SEPARATORS = r"[;,|]"
# Factors the synthetic debriefs draw from; "Single crewed on arrival" is planted to go with injury.
SYNTHETIC_FACTORS = ("Single crewed on arrival", "Late call information", "Radio coverage", "Tactical communication",
                     "Intoxicated subject", "Mental health crisis", "Equipment not to hand", "Dog or animal present")


@dataclass
class Debriefs:
    """Debrief records read from an upload, the rows set aside, and how columns were matched."""

    records: pd.DataFrame
    quarantine: pd.DataFrame = field(default_factory=empty_quarantine)
    mapping: dict[str, str] = field(default_factory=dict)

    @property
    def rows_in(self) -> int:
        return len(self.records) + int(self.quarantine[ROWS].sum()) if len(self.quarantine) else len(self.records)


def read(name: str, data: bytes, limits: ingest.Limits | None = None) -> Debriefs:
    """Read a debrief extract (CSV, Parquet or Excel); set aside rows with no report, incident or date."""
    raw = ingest.read_extract(name, data, limits or ingest.Limits.from_env())
    mapping = values.match_columns(raw.columns, ALIASES)
    if "report_id" not in mapping and "incident_id" not in mapping:
        raise ingest.RejectedFile(f"{name} has no report or incident id column (looked for "
                                  f"{', '.join(ALIASES['report_id'][:2] + ALIASES['incident_id'][:2])})")
    frame = raw.frame
    out = pd.DataFrame({FILE: frame[FILE], ROW: frame[ROW]}, index=frame.index)
    for canon in ("report_id", "incident_id", "learning_points", "actions"):
        out[canon] = values.blank_to_null(frame[mapping[canon]]) if canon in mapping else pd.NA
    out["debrief_date"] = values.to_datetime(frame[mapping["debrief_date"]]) if "debrief_date" in mapping else pd.NaT
    factors = values.blank_to_null(frame[mapping["contributing_factors"]]) if "contributing_factors" in mapping \
        else pd.Series(pd.NA, index=frame.index, dtype="string")
    out["contributing_factors"] = [
        [] if pd.isna(v) else [p.strip() for p in pd.Series([v]).str.split(LIST_SEPARATORS, regex=True)[0] if p.strip()]
        for v in factors.tolist()]
    no_id = out["report_id"].isna() & out["incident_id"].isna()
    quarantine = quarantine_rows(frame, no_id, "no report or incident id")
    out = out[~no_id]
    return Debriefs(out.reset_index(drop=True), pd.concat([raw.quarantine, quarantine], ignore_index=True), mapping)


def _reviewed(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, debriefs: pd.DataFrame) -> pd.DataFrame:
    """Return the filtered reports with their harm flags and whether a debrief reviews them."""
    t = filtered_reports(engine, ds, filters, scope)
    reports = engine.execute(t.select("report_id", "incident_id", "occurred_at", "force", "area",
                                      "officer_injured", "officer_assaulted"))
    by_report = set(debriefs["report_id"].dropna().astype(str))
    by_incident = set(debriefs["incident_id"].dropna().astype(str))
    reports["debriefed"] = reports["report_id"].astype(str).isin(by_report) | \
        reports["incident_id"].astype("string").isin(by_incident).fillna(False).astype(bool)
    return reports


def review_list(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, debriefs: pd.DataFrame,
                limit: int = 200) -> tuple[int, pd.DataFrame]:
    """Return how many reports with an officer injured or assaulted have no debrief, and the latest of them."""
    return _review(_reviewed(engine, ds, filters, scope, debriefs), limit)


def factor_table(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, debriefs: pd.DataFrame,
                 measure: str = "officer_injured") -> pd.DataFrame:
    """Return each contributing factor: debriefs naming it, and the measure's rate with it against without it."""
    return _factors(_reviewed(engine, ds, filters, scope, debriefs), debriefs, measure)


def analyse(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, debriefs: pd.DataFrame,
            limit: int = 200) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """Return the review list count, its latest rows and the factor table, reading the reports once."""
    reports = _reviewed(engine, ds, filters, scope, debriefs)
    missing, review = _review(reports, limit)
    return missing, review, _factors(reports, debriefs, "officer_injured")


def _review(reports: pd.DataFrame, limit: int) -> tuple[int, pd.DataFrame]:
    harmed = reports["officer_injured"].fillna(False).astype(bool) | \
        reports["officer_assaulted"].fillna(False).astype(bool)
    missing = reports[harmed & ~reports["debriefed"]].sort_values("occurred_at", ascending=False)
    return len(missing), missing.head(limit).drop(columns=["debriefed"]).reset_index(drop=True)


def _factors(reports: pd.DataFrame, debriefs: pd.DataFrame, measure: str) -> pd.DataFrame:
    joined = _debriefed_reports(reports, debriefs)
    if joined.empty:
        return pd.DataFrame(columns=["factor", "debriefs", "yes", "answered", "reference_yes", "reference_answered",
                                     "ratio", "ci_low", "ci_high"])
    answered = joined[measure].notna()
    rows = []
    factors = sorted({f for fs in joined["contributing_factors"] for f in fs})
    for factor in factors:
        has = joined["contributing_factors"].map(lambda fs, f=factor: f in fs)
        x1 = int((joined.loc[has & answered, measure]).astype(bool).sum())
        n1 = int((has & answered).sum())
        x0 = int((joined.loc[~has & answered, measure]).astype(bool).sum())
        n0 = int((~has & answered).sum())
        rows.append({"factor": factor, "debriefs": int(has.sum()), "yes": x1, "answered": n1,
                     "reference_yes": x0, "reference_answered": n0})
    table = pd.DataFrame(rows)
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
