"""Tactics: which tactics were used, how often they worked, harm alongside them, and the Taser ladder.

Queries take `(engine, ds, filters, scope, ...)`, start from `query.filtered_reports` so the user's
scope and filters always apply, do their joins and counts in the engine, and return small frames
(drawn and tabled by lib/present/tactic_charts.py). A report is one officer's use of force on one
subject; a report can record several tactics, so counts per tactic do not add up to the number of reports.
"""
from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

from lib.analysis.stats import wilson_interval
from lib.engine.query import DIMENSIONS, Filters, Scope, Summary, add_rates, filtered_reports, harm_metrics
from lib.engine.store import Dataset, Engine
from lib.model import schema

UNCLASSIFIED = "Unclassified"
INJURY_MEASURES: tuple[str, ...] = ("officer_injured", "subject_injured")
TOP_TACTICS = 12
BY_LABELS: dict[str, str] = {"tactic": "Tactic", "tactic_group": "Type of force"}


# --- shared pieces ------------------------------------------------------------------------


def _used_tactics(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> ibis.Table:
    """Return (report_id, tactic, tactic_group) of the filtered reports, one row per report and tactic."""
    reports = filtered_reports(engine, ds, filters, scope)
    t = engine.tactics(ds)
    t = t.filter(t.report_id.isin(reports.report_id))
    return t.select(report_id=t.report_id, tactic=t.tactic.cast("string"),
                    tactic_group=t.tactic_group.cast("string")).distinct()


def _vocabulary_order(values: pd.Series, vocabulary: tuple[str, ...]) -> list[str]:
    found = set(values.dropna())
    return [v for v in vocabulary if v in found] + sorted(found - set(vocabulary))


def _group_order(values: pd.Series) -> list[str]:
    return _vocabulary_order(values, (*schema.TACTIC_GROUPS, UNCLASSIFIED))


# --- 1. tactic use over time --------------------------------------------------------------


def use_over_time(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports using each type of force per month, the month's reports and the share using it."""
    reports = filtered_reports(engine, ds, filters, scope)
    months = reports.select(report_id=reports.report_id, month=DIMENSIONS["month"](reports))
    totals = engine.execute(months.group_by("month").aggregate(total_reports=months.count()))
    used = _used_tactics(engine, ds, filters, scope)
    pairs = used.select(used.report_id, tactic_group=used.tactic_group.fill_null(UNCLASSIFIED)).distinct()
    joined = pairs.join(months, "report_id")
    counts = engine.execute(joined.group_by(["month", "tactic_group"]).aggregate(reports=joined.count()))
    columns = ["month", "tactic_group", "reports", "total_reports", "share"]
    if totals.empty or counts.empty:
        return pd.DataFrame(columns=columns)
    # Every type of force seen in the period gets every month, so a month without it reads 0, not a gap.
    groups = _group_order(counts["tactic_group"])
    grid = pd.MultiIndex.from_product([sorted(totals["month"]), groups], names=["month", "tactic_group"])
    frame = (counts.set_index(["month", "tactic_group"])["reports"].reindex(grid, fill_value=0)
             .reset_index().merge(totals, on="month"))
    frame["reports"] = frame["reports"].astype("int64")
    frame["total_reports"] = frame["total_reports"].astype("int64")
    frame["share"] = frame["reports"] / frame["total_reports"]
    return frame[columns]


# --- 2. effectiveness ---------------------------------------------------------------------


def effectiveness(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return per tactic: uses, uses recorded effective of those answering, the rate and its interval."""
    reports = filtered_reports(engine, ds, filters, scope)
    t = engine.tactics(ds)
    t = t.filter(t.report_id.isin(reports.report_id))
    expr = t.group_by(tactic=t.tactic.cast("string"), tactic_group=t.tactic_group.cast("string")).aggregate(
        uses=t.count(),
        effective_yes=t.effective.sum().fill_null(0),
        answered=t.effective.count(),
    )
    frame = engine.execute(expr)
    frame["tactic_group"] = frame["tactic_group"].fillna(UNCLASSIFIED)
    for col in ("uses", "effective_yes", "answered"):
        frame[col] = frame[col].astype("int64")
    frame["unanswered"] = frame["uses"] - frame["answered"]
    yes, answered = frame["effective_yes"].to_numpy(), frame["answered"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["rate"] = np.where(answered > 0, yes / answered, np.nan)
        frame["unanswered_share"] = frame["unanswered"] / frame["uses"]
    frame["low"], frame["high"] = wilson_interval(yes, answered)
    order = {t: i for i, t in enumerate(_vocabulary_order(frame["tactic"], schema.TACTICS))}
    return frame.sort_values("tactic", key=lambda s: s.map(order)).reset_index(drop=True)


# --- 3. harm when each tactic was used ----------------------------------------------------


def harm_when_used(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                   by: str = "tactic") -> pd.DataFrame:
    """Return per tactic (or type of force) the reports using it and the harm rates among them."""
    if by not in BY_LABELS:
        raise ValueError(f"harm_when_used counts by tactic or tactic_group, not {by!r}")
    reports = filtered_reports(engine, ds, filters, scope)
    used = _used_tactics(engine, ds, filters, scope)
    keys = ["tactic", "tactic_group"] if by == "tactic" else ["tactic_group"]
    pairs = used.select("report_id", *keys)
    pairs = pairs.mutate(tactic_group=pairs.tactic_group.fill_null(UNCLASSIFIED)).distinct()
    harm = reports.select("report_id", *schema.HARM_FIELDS)
    joined = pairs.join(harm, "report_id")
    frame = engine.execute(joined.group_by(keys).aggregate(reports=joined.count(), **harm_metrics(joined)))
    overall = engine.execute(reports.aggregate(**harm_metrics(reports))).iloc[0]
    if "tactic" not in frame:
        frame["tactic"] = frame["tactic_group"]
    frame = add_rates(frame)
    for col in schema.HARM_FIELDS:
        yes, answered = int(overall[f"{col}_yes"]), int(overall[f"{col}_answered"])
        frame[f"{col}_overall"] = yes / answered if answered else np.nan
        # The counts behind the overall rate, so disclosure control can hide it with them.
        frame[f"{col}_overall_yes"], frame[f"{col}_overall_answered"] = yes, answered
        frame[f"{col}_unanswered"] = frame["reports"] - frame[f"{col}_answered"]
    vocabulary = schema.TACTICS if by == "tactic" else (*schema.TACTIC_GROUPS, UNCLASSIFIED)
    order = {t: i for i, t in enumerate(_vocabulary_order(frame["tactic"], vocabulary))}
    return frame.sort_values("tactic", key=lambda s: s.map(order)).reset_index(drop=True)


def injury_measures(summary: Summary) -> tuple[str, ...]:
    """Return the injury fields (officer, subject) that at least one report in view answers."""
    return tuple(m for m in INJURY_MEASURES if summary.rates[m].denominator != 0)  # None: hidden, not absent


def missing_injuries(summary: Summary) -> list[str]:
    """Return the labels of the injury rates no report in view answers (empty when all are there)."""
    return [schema.HARM_FIELDS[m] for m in INJURY_MEASURES if summary.rates[m].denominator == 0]


# --- 4. co-occurrence ---------------------------------------------------------------------


def co_occurrence(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                  top: int = TOP_TACTICS) -> pd.DataFrame:
    """Return, for the most-used tactics, reports using each pair and the share of the row tactic's reports."""
    used = _used_tactics(engine, ds, filters, scope)
    ranked = engine.execute(used.group_by("tactic").aggregate(reports=used.count()))
    columns = ["tactic", "other", "both", "tactic_reports", "other_reports", "share"]
    if ranked.empty:
        return pd.DataFrame(columns=columns)
    ranked = ranked.sort_values(["reports", "tactic"], ascending=[False, True]).head(top)
    chosen = ranked["tactic"].tolist()
    pairs = used.filter(used.tactic.isin(chosen)).select("report_id", "tactic")
    other = pairs.select(report_id=pairs.report_id, other=pairs.tactic)
    joined = pairs.join(other, "report_id")
    both = engine.execute(joined.group_by(["tactic", "other"]).aggregate(both=joined.count()))
    grid = pd.MultiIndex.from_product([chosen, chosen], names=["tactic", "other"])
    frame = both.set_index(["tactic", "other"])["both"].reindex(grid, fill_value=0).reset_index()
    frame["both"] = frame["both"].astype("int64")
    reports = dict(zip(ranked["tactic"], ranked["reports"].astype("int64"), strict=True))
    frame["tactic_reports"] = frame["tactic"].map(reports)
    frame["other_reports"] = frame["other"].map(reports)
    frame["share"] = frame["both"] / frame["tactic_reports"]
    return frame[columns]


# --- 5. the Taser (CED) ladder ------------------------------------------------------------


def taser_ladder(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports at each highest CED level, their share of CED reports and of all reports."""
    reports = filtered_reports(engine, ds, filters, scope)
    used = _used_tactics(engine, ds, filters, scope)
    ced = used.filter(used.tactic.isin(list(schema.CED_LADDER)))
    # The data already keeps one CED use per report; taking the highest again here makes the
    # ladder honest even for a dataset loaded from Parquet written elsewhere.
    ranked = ced.mutate(rank=ced.tactic.cases(*schema.CED_RANK.items()).cast("int64"))
    highest = ranked.group_by("report_id").aggregate(rank=ranked["rank"].max())
    counts = engine.execute(highest.group_by("rank").aggregate(reports=highest.count()))
    total = int(engine.execute(reports.count()))
    by_rank = dict(zip(counts["rank"].astype(int), counts["reports"].astype("int64"), strict=True))
    frame = pd.DataFrame({"level": list(schema.CED_LADDER), "rank": range(len(schema.CED_LADDER))})
    frame["reports"] = frame["rank"].map(by_rank).fillna(0).astype("int64")
    ced_reports = int(frame["reports"].sum())
    frame["ced_reports"] = ced_reports
    frame["all_reports"] = total
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["share"] = frame["reports"] / ced_reports if ced_reports else np.nan
        # Reaching at least a level: this level or any above it, counted down from the top.
        frame["at_least"] = frame["reports"][::-1].cumsum()[::-1] / ced_reports if ced_reports else np.nan
    frame["share_low"], frame["share_high"] = wilson_interval(frame["reports"].to_numpy(), ced_reports)
    frame["ced_share_of_reports"] = ced_reports / total if total else np.nan
    low, high = wilson_interval(ced_reports, total)
    frame["ced_share_low"], frame["ced_share_high"] = float(low), float(high)
    return frame


