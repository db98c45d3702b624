"""Officer risk analytics: rates by two dimensions, rate ratios against a reference, funnel plots.

Every function starts from `filtered_reports` (through `query.breakdown`), so scope and filters
apply, and returns a small frame with the counts behind every rate. Comparisons carry
intervals; groups are judged against funnel limits, never ranked bare.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lib import query, schema, stats
from lib.query import Filters, Scope
from lib.store import Dataset, Engine

# Below this many answering reports a heatmap cell is greyed out rather than coloured.
MIN_CELL = 30
FUNNEL_LEVELS = ("area", "team")
# Officer-level views are personal data: only callers allowed to see them ask for this level.
OFFICER_LEVEL = "officer"
RATIO_DIMENSIONS = ("shift", "officer_role", "location_type", "single_crewed")


def _check_measure(measure: str) -> None:
    if measure not in schema.HARM_FIELDS:
        raise ValueError(f"unknown measure {measure!r}; measures are {', '.join(schema.HARM_FIELDS)}")


def rate_grid(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
              rows: str, cols: str) -> pd.DataFrame:
    """Return the measure's rate per 100 answering reports for each pair of two dimensions."""
    _check_measure(measure)
    frame = query.breakdown(engine, ds, filters, scope, (rows, cols))
    out = pd.DataFrame({
        rows: frame[rows], cols: frame[cols], "reports": frame["reports"],
        "yes": frame[f"{measure}_yes"], "answered": frame[f"{measure}_answered"],
        "per_100": frame[f"{measure}_rate"] * 100,
        "low_100": frame[f"{measure}_low"] * 100, "high_100": frame[f"{measure}_high"] * 100,
    })
    out["enough"] = out["answered"] >= MIN_CELL
    return out


def rate_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                dimension: str, reference: str | None = None) -> pd.DataFrame:
    """Return each group's rate ratio against a reference group (default: the largest), with 95% intervals."""
    _check_measure(measure)
    frame = query.breakdown(engine, ds, filters, scope, (dimension,))
    frame = frame[frame[dimension] != query.NOT_RECORDED]
    yes, answered = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    groups = frame[dimension].astype(str).tolist()
    if not groups:
        return pd.DataFrame(columns=["dimension", "group", "reference", "ratio", "ci_low", "ci_high",
                                     "yes", "answered", "reference_yes", "reference_answered"])
    if reference not in groups:
        reference = groups[int(np.argmax(answered))]
    ref = groups.index(reference)
    ratio = stats.rate_ratio(yes, answered, np.full(len(groups), yes[ref]), np.full(len(groups), answered[ref]))
    return pd.DataFrame({
        "dimension": dimension, "group": groups, "reference": reference,
        "ratio": ratio.ratio, "ci_low": ratio.low, "ci_high": ratio.high,
        "yes": yes, "answered": answered,
        "reference_yes": yes[ref], "reference_answered": answered[ref],
    })


def funnel(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
           level: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return each group's rate against volume with its verdict, and the 95% / 99.8% limit curves."""
    _check_measure(measure)
    if level not in (*FUNNEL_LEVELS, OFFICER_LEVEL):
        raise ValueError(f"funnel level must be one of {(*FUNNEL_LEVELS, OFFICER_LEVEL)}")
    frame = (by_officer(engine, ds, filters, scope) if level == OFFICER_LEVEL
             else query.breakdown(engine, ds, filters, scope, (level,)))
    frame = frame[(frame[level] != query.NOT_RECORDED) & (frame[f"{measure}_answered"] > 0)]
    x, n = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    if len(frame) == 0:
        empty = pd.DataFrame(columns=["group", "yes", "answered", "rate", "expected", "low", "high", "flag"])
        return empty, pd.DataFrame(columns=["denominator", "low_95", "high_95", "low_998", "high_998"])
    overall = float(x.sum() / n.sum())
    flags = stats.flag_outliers(x, n, level=0.998, overall=overall)
    points = pd.DataFrame({"group": frame[level].astype(str).to_numpy(), "yes": x, "answered": n,
                           "rate": flags["rate"].to_numpy(), "expected": flags["expected"].to_numpy(),
                           "low": flags["low"].to_numpy(), "high": flags["high"].to_numpy(),
                           "flag": flags["flag"].to_numpy()})
    grid = np.unique(np.round(np.geomspace(max(1, n.min()), n.max() * 1.05, 80)))
    limits = stats.funnel_limits(grid, overall)
    limits["overall"] = overall
    return points.sort_values("rate", ascending=False).reset_index(drop=True), limits


def outliers(points: pd.DataFrame) -> pd.DataFrame:
    """Return the groups above the upper 99.8% limit, highest rate first."""
    return points[points["flag"] == stats.HIGHER].sort_values("rate", ascending=False).reset_index(drop=True)


def funnel_sentence(points: pd.DataFrame, level: str) -> str:
    """Say what the funnel plot shows, without ranking groups."""
    if not len(points):
        return f"No {level} has answering reports in this view."
    high = int((points["flag"] == stats.HIGHER).sum())
    low = int((points["flag"] == stats.LOWER).sum())
    rest = len(points) - high - low
    text = f"Of {len(points):,} {level}s, {high} {'is' if high == 1 else 'are'} higher than expected"
    text += f" (above the 99.8% limit), {low} lower than expected, and {rest:,} not distinguishable from the average."
    return text


def by_officer(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports and harm counts per (pseudonymised) officer, column `officer`."""
    t = query.filtered_reports(engine, ds, filters, scope)
    t = t.filter(t.officer_id.notnull())
    metrics = {}
    for col in schema.HARM_FIELDS:
        metrics[f"{col}_yes"] = t[col].cast("int64").sum().fill_null(0)
        metrics[f"{col}_answered"] = t[col].count()
    frame = engine.execute(t.group_by(officer=t.officer_id).aggregate(reports=t.count(), **metrics))
    return query.add_rates(frame)
