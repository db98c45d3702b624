"""Officer risk analytics: rates by two dimensions, rate ratios against a reference, funnel plots.

Every function starts from `filtered_reports` (through `query.breakdown`), so scope and filters
apply, and returns a small frame with the counts behind every rate. Comparisons carry
intervals; groups are judged against funnel limits, never ranked bare. Rate ratios are crude or adjusted
for case mix (lib/analysis/adjust.py), and the frame says which.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lib.analysis import adjust, stats
from lib.engine import query
from lib.engine.query import Filters, Scope
from lib.engine.store import Dataset, Engine
from lib.model import schema

# Below this many answering reports a heatmap cell is greyed out rather than coloured.
MIN_CELL = 30
FUNNEL_LEVELS = ("area", "team")
# Officer-level views are personal data: only callers allowed to see them ask for this level.
OFFICER_LEVEL = "officer"
# "tactic" compares each tactic (Taser fired, drawn, ...) with reports not using it, beside the types of force.
RATIO_DIMENSIONS = ("shift", "officer_role", "location_type", "single_crewed", "tactic_group", "tactic")
RATIO_LABELS: dict[str, str] = {**query.DIMENSION_LABELS, "tactic": "Each tactic"}


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
                dimension: str, reference: str | None = None, adjust_for: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return each group's rate ratio against a reference group (default: the largest), with 95% intervals.

    Crude when `adjust_for` is empty; otherwise adjusted for those dimensions by modified Poisson regression
    (lib/analysis/adjust.py). Columns `adjusted_for` and `method` say which.
    """
    _check_measure(measure)
    if adjust_for:
        return adjust.adjusted_ratios(engine, ds, filters, scope, measure, dimension, tuple(adjust_for), reference)
    if dimension in adjust.TACTIC_DIMENSIONS:
        return _using_ratios(engine, ds, filters, scope, measure, dimension)
    frame = query.breakdown(engine, ds, filters, scope, (dimension,))
    frame = frame[frame[dimension] != query.NOT_RECORDED]
    yes, answered = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    groups = frame[dimension].astype(str).tolist()
    if not groups:
        return pd.DataFrame(columns=adjust.RATIO_COLUMNS)
    if reference not in groups:
        reference = groups[int(np.argmax(answered))]
    ref = groups.index(reference)
    ratio = stats.rate_ratio(yes, answered, np.full(len(groups), yes[ref]), np.full(len(groups), answered[ref]))
    return pd.DataFrame({
        "dimension": dimension, "group": groups, "reference": reference,
        "ratio": ratio.ratio, "ci_low": ratio.low, "ci_high": ratio.high,
        "yes": yes, "answered": answered,
        "reference_yes": yes[ref], "reference_answered": answered[ref],
        "adjusted_for": [()] * len(groups), "method": adjust.CRUDE_METHOD,
    })


def ratios_caption(ratios: pd.DataFrame, sentence: str) -> str:
    """Say what a forest plot of rate ratios shows: the view, the unit, crude or adjusted, and what is not drawn."""
    text = (f"{sentence}. Counting unit: reports answering the question. Rate ratios {adjust.basis_of(ratios)}")
    if len(ratios) and "adjusted_for" in ratios.columns and ratios["adjusted_for"].iloc[0]:
        text += (" (Poisson regression with robust intervals clustered by incident; unknown values of an "
                 "adjustment are a level of their own)")
    return text + (f". A ratio of 2 means twice the reference's rate; an interval that crosses 1 cannot tell the "
                   f"group from the reference. Groups with fewer than {stats.MIN_DENOMINATOR} answering reports "
                   "(or a reference that small) are listed as too few to compare and groups with no events as "
                   "no events: neither is drawn or judged.")


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
    hidden = int(points["flag"].isna().sum())  # disclosure control hid their rates
    rest = len(points) - high - low - hidden
    text = f"Of {len(points):,} {level}s, {high} {'is' if high == 1 else 'are'} higher than expected"
    text += f" (above the 99.8% limit), {low} lower than expected, and {rest:,} not distinguishable from the average"
    if hidden:
        text += f"; {hidden:,} {'is' if hidden == 1 else 'are'} not shown: too few reports to publish"
    return text + "."


def by_officer(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports and harm counts per (pseudonymised) officer, column `officer`."""
    t = query.filtered_reports(engine, ds, filters, scope)
    t = t.filter(t.officer_id.notnull())
    metrics = {}
    for col in schema.HARM_FIELDS:
        metrics[f"{col}_yes"] = t[col].sum().fill_null(0)
        metrics[f"{col}_answered"] = t[col].count()
    frame = engine.execute(t.group_by(officer=t.officer_id).aggregate(reports=t.count(), **metrics))
    return query.add_rates(frame)


# What each officer's reports look like, against peers in the same role: the drivers of exposure.
MIX_INDICATORS: dict[str, str] = {
    "night": "Night shift",
    "single": "Single crewed",
    "resisting": "Aggressive or serious resistance",
    "dwelling": "In a dwelling",
    "ced": "Taser (CED) used",
    "ground": "Ground restraint used",
}


def _mix(t, tactics):
    ced = tactics.filter(tactics.tactic.cast("string").isin(list(schema.CED_LADDER))).report_id
    ground = tactics.filter(tactics.tactic.cast("string") == "Ground restraint").report_id
    return {
        "night": (t.shift.cast("string") == "Night").mean(),
        "single": t.single_crewed.mean(),
        "resisting": t.resistance.cast("string").isin(
            ["Aggressive resistance", "Serious or aggravated resistance"]).mean(),
        "dwelling": (t.location_type.cast("string") == "Dwelling").mean(),
        "ced": t.report_id.isin(ced).mean(),
        "ground": t.report_id.isin(ground).mean(),
    }


def officer_exposure(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                     top: int = 15) -> pd.DataFrame:
    """Return the officers with the highest shrunken rates, rank intervals, and their mix against peers."""
    _check_measure(measure)
    frame = by_officer(engine, ds, filters, scope)
    # Sorted by officer: the rank draws depend on the order of groups, and the engine's order is not fixed,
    # so without this the same view could show different rank intervals from one reload to the next.
    frame = frame[frame[f"{measure}_answered"] > 0].sort_values("officer", kind="stable").reset_index(drop=True)
    if frame.empty:
        return pd.DataFrame()
    x, n = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    ranks = stats.rank_intervals(x, n, draws=1000, seed=0)
    shrunk = stats.shrunken_rates(x, n).table
    frame = frame.assign(shrunken=shrunk["shrunken"].to_numpy(), low=shrunk["low"].to_numpy(),
                         high=shrunk["high"].to_numpy(), rank_low=ranks["rank_low"].to_numpy(),
                         rank_high=ranks["rank_high"].to_numpy(), officers=len(frame))
    chosen = frame.sort_values(["shrunken", "officer"], ascending=[False, True], kind="stable").head(top)
    t = query.filtered_reports(engine, ds, filters, scope)
    tactics = engine.tactics(ds)
    mine = t.filter(t.officer_id.isin(chosen["officer"].tolist()))
    own = engine.execute(mine.group_by(officer=mine.officer_id).aggregate(**_mix(mine, tactics)))
    # Each officer's most frequent role, counted here: Spark has no mode() in Ibis (ties go to the first name).
    roles = engine.execute(mine.group_by(officer=mine.officer_id, role=mine.officer_role.cast("string"))
                           .aggregate(n=mine.count())).dropna(subset=["role"])
    roles = roles.sort_values(["officer", "n", "role"], ascending=[True, False, True]).drop_duplicates("officer")
    own = roles[["officer", "role"]].merge(own, on="officer", how="right")
    peers = engine.execute(t.group_by(role=t.officer_role.cast("string")).aggregate(
        **{f"peer_{k}": v for k, v in _mix(t, tactics).items()}))
    out = chosen.merge(own, on="officer", how="left").merge(peers, on="role", how="left")
    return out.sort_values(["shrunken", "officer"], ascending=[False, True]).reset_index(drop=True)


def drivers(row: pd.Series, threshold: float = 1.5) -> str:
    """Say how an officer's reports differ from peers in the same role (shares at least 1.5 times theirs)."""
    found = []
    for key, label in MIX_INDICATORS.items():
        own, peer = row.get(key), row.get(f"peer_{key}")
        if pd.notna(own) and pd.notna(peer) and peer > 0 and own >= threshold * peer and own >= 0.2:
            found.append(f"{label} {own:.0%} (peers {peer:.0%})")
    return "; ".join(found) or "no mix much different from peers in the same role"


def tactic_group_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                        adjust_for: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return, per type of force, the rate in reports using it against the rate in reports not using it."""
    return rate_ratios(engine, ds, filters, scope, measure, "tactic_group", adjust_for=adjust_for)


def tactic_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                  adjust_for: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return, per tactic (Taser fired, drawn, ...), the rate in reports using it against reports not using it."""
    return rate_ratios(engine, ds, filters, scope, measure, "tactic", adjust_for=adjust_for)


def _using_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                  column: str) -> pd.DataFrame:
    """Return crude ratios of reports using each value of a tactics column against reports not using it."""
    t = query.filtered_reports(engine, ds, filters, scope)
    tactics = engine.tactics(ds)
    total = engine.execute(t.aggregate(yes=t[measure].sum().fill_null(0), answered=t[measure].count()))
    used = tactics.filter(tactics.report_id.isin(t.report_id))
    pairs = used.select(report_id=used.report_id, group=used[column].cast("string")).distinct()
    joined = pairs.join(t.select("report_id", measure), "report_id")
    frame = engine.execute(joined.group_by("group").aggregate(yes=joined[measure].sum().fill_null(0),
                                                              answered=joined[measure].count()))
    frame = frame[frame["group"].notna() & (frame["group"] != "Tactical communication")]
    order = {v: i for i, v in enumerate(adjust.tactic_order(column))}
    frame = frame.assign(_order=frame["group"].map(order).fillna(len(order))).sort_values(["_order", "group"])
    x1, n1 = frame["yes"].to_numpy(), frame["answered"].to_numpy()
    x0, n0 = int(total["yes"].iloc[0]) - x1, int(total["answered"].iloc[0]) - n1
    ratio = stats.rate_ratio(x1, n1, x0, n0)
    return pd.DataFrame({
        "dimension": column, "group": "Using " + frame["group"].to_numpy(dtype=object),
        "reference": "not using it", "ratio": ratio.ratio, "ci_low": ratio.low, "ci_high": ratio.high,
        "yes": x1, "answered": n1, "reference_yes": x0, "reference_answered": n0,
        "adjusted_for": [()] * len(frame), "method": adjust.CRUDE_METHOD,
    }).reset_index(drop=True)
