"""Self-service exploring: a measure by one or two dimensions, optionally in small multiples.

The user picks a measure (reports, or a harm rate over the reports that answered), one or two
dimensions from `query.DIMENSIONS` and an optional facet. A table of rules picks the chart; one
`query.breakdown` call gives the aggregate; high-cardinality dimensions (teams, areas) keep their
largest groups and sum the rest into one "Other (N groups)" so a chart receives a few hundred rows
at most. Every chart carries a point selection named "pick" on its dimension columns, so a click
can become a global filter through `apply_selection`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.analysis.stats import MIN_DENOMINATOR, wilson_interval
from lib.engine.query import (
    DIMENSION_LABELS,
    DIMENSION_ORDER,
    DIMENSIONS,
    FILTER_KINDS,
    GROUPED,
    NOT_RECORDED,
    FilterKind,
    Filters,
    Scope,
    breakdown,
    describe,
)
from lib.engine.store import Dataset, Engine
from lib.model import schema

REPORTS = "reports"
MEASURES: dict[str, str] = {REPORTS: "Reports", **schema.HARM_FIELDS}
# Dimensions that run along an x axis in time order: drawn as lines, never merged into "Other".
TIME_AXES: tuple[str, ...] = ("month", "hour")
# A facet draws one panel per group: time axes would give dozens of panels, so they are left out.
FACET_DIMENSIONS: tuple[str, ...] = tuple(d for d in DIMENSIONS if d not in TIME_AXES)
SELECTION = "pick"
UNIT = "reports (one officer's use of force on one subject)"


def dimension_choices(perturbed: bool, dimensions: tuple[str, ...] = tuple(DIMENSIONS)) -> list[str]:
    """Return the dimensions a view may break down by, in order: grouped ones under disclosure control
    (`query.GROUPED`), the fine ones otherwise."""
    left_out = set(GROUPED) if perturbed else set(GROUPED.values())
    return [d for d in dimensions if d not in left_out]


# --- choosing the chart -------------------------------------------------------------------


@dataclass(frozen=True)
class ChartRule:
    """One row of the chart table: the chart kind for a shape of question (None: any)."""

    kind: str
    facet: bool | None = None
    dimensions: int | None = None
    time_axes: int | None = None
    why: str = ""

    def matches(self, facet: bool, dimensions: int, time_axes: int) -> bool:
        """Say whether this rule applies to a question of this shape."""
        wanted = ((self.facet, facet), (self.dimensions, dimensions), (self.time_axes, time_axes))
        return all(rule is None or rule == actual for rule, actual in wanted)


# The first matching rule wins.
CHART_RULES: tuple[ChartRule, ...] = (
    ChartRule("small_multiples", facet=True, why="a facet draws one small chart per group"),
    ChartRule("heatmap", dimensions=2, time_axes=2, why="month by hour is a grid, not two lines"),
    ChartRule("line", time_axes=1, why="month or hour runs along the x axis; a second dimension gives one line each"),
    ChartRule("bar", dimensions=1, time_axes=0,
              why="one set of groups: bars for counts, a point and its interval for rates"),
    ChartRule("heatmap", dimensions=2, time_axes=0, why="two sets of groups cross in a grid"),
)


def _check(measure: str, dimensions: tuple[str, ...], facet: str | None) -> None:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; measures are {', '.join(MEASURES)}")
    if not 1 <= len(dimensions) <= 2:
        raise ValueError("choose one or two dimensions")
    if len(set(dimensions)) != len(dimensions):
        raise ValueError("choose two different dimensions")
    unknown = [d for d in (*dimensions, facet) if d is not None and d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s): {', '.join(unknown)}")
    if facet is not None and (facet in dimensions or facet not in FACET_DIMENSIONS):
        raise ValueError(f"{facet!r} cannot be the facet here: pick a group dimension not already charted")


def choose_chart(measure: str, dimensions: tuple[str, ...], facet: str | None = None) -> str:
    """Pick the chart kind for a measure, one or two dimensions and an optional facet."""
    dimensions = tuple(dimensions)
    _check(measure, dimensions, facet)
    time_axes = sum(d in TIME_AXES for d in dimensions)
    return next(r.kind for r in CHART_RULES if r.matches(facet is not None, len(dimensions), time_axes))


# --- the aggregate ------------------------------------------------------------------------

# How many groups of a dimension a chart shows, by the place it takes in the chart kind
# (first dimension, second dimension); the rest are summed into one "Other" group.
CAPS_BY_KIND: dict[str, tuple[int, ...]] = {"bar": (25,), "line": (7, 7), "heatmap": (25, 15)}
FACET_CAP = 9
# The row budget: caps shrink (largest first, down to MIN_KEEP) until the chart fits it.
MAX_ROWS = 500
MIN_KEEP = 3
OTHER = "Other ({} groups)"
_OTHER_PATTERN = re.compile(r"^Other \((\d+) groups\)$")


def is_other(value: object) -> bool:
    """Say whether a group is the "Other (N groups)" sum of the smaller groups."""
    return isinstance(value, str) and _OTHER_PATTERN.match(value) is not None


def category_order(frame: pd.DataFrame, dimension: str) -> list:
    """Return a dimension's groups in reading order: vocabulary or most reports first, then Other, Not recorded."""
    values = list(pd.unique(frame[dimension]))
    if dimension in TIME_AXES:
        return sorted(values)
    special = [v for v in values if is_other(v)] + [v for v in values if v == NOT_RECORDED]
    named = [v for v in values if v not in special]
    vocabulary = DIMENSION_ORDER.get(dimension)
    if vocabulary:
        rank = {v: i for i, v in enumerate(vocabulary)}
        named.sort(key=lambda v: (rank.get(v, len(rank)), str(v)))
    else:  # by volume, never by rate: a bare league table of rates misleads
        totals = frame.groupby(dimension)["reports"].sum()
        named.sort(key=lambda v: (-int(totals[v]), str(v)))
    return named + special


def _named_totals(frame: pd.DataFrame, dimension: str) -> pd.Series:
    totals = frame.groupby(dimension)["reports"].sum()
    totals = totals[[v != NOT_RECORDED for v in totals.index]]
    return totals.sort_index(key=lambda s: s.astype(str)).sort_values(ascending=False, kind="stable")


def _shown(named: int, cap: int) -> int:
    # Merging a single group into "Other (1 groups)" would save nothing, so it stays named.
    return named if named - cap < 2 else cap + 1


def group_caps(frame: pd.DataFrame, dimensions: tuple[str, ...], facet: str | None = None) -> dict[str, int]:
    """Return how many named groups to keep per categorical dimension so the chart fits the row budget."""
    inner = choose_chart(REPORTS, dimensions, None)
    wanted = {d: cap for d, cap in zip(dimensions, CAPS_BY_KIND[inner], strict=False) if d not in TIME_AXES}
    if facet is not None:
        wanted[facet] = FACET_CAP
    named = {d: len(_named_totals(frame, d)) for d in wanted}
    extra = {d: int((frame[d] == NOT_RECORDED).any()) for d in wanted}
    caps = {d: min(cap, named[d]) for d, cap in wanted.items()}
    fixed = math.prod(frame[d].nunique() for d in dimensions if d in TIME_AXES)

    def rows() -> int:
        return fixed * math.prod(_shown(named[d], caps[d]) + extra[d] for d in caps)

    while rows() > MAX_ROWS:
        movable = [d for d in caps if caps[d] > MIN_KEEP]
        if not movable:
            break
        largest = max(movable, key=lambda d: _shown(named[d], caps[d]))
        caps[largest] -= 1
    return caps


def _merge_smaller(frame: pd.DataFrame, dimension: str, keep: int) -> pd.DataFrame:
    totals = _named_totals(frame, dimension)
    rest = totals.index[keep:]
    if len(rest) < 2:
        return frame
    out = frame.copy()
    out[dimension] = out[dimension].where(~out[dimension].isin(rest), OTHER.format(len(rest)))
    return out


def _sort(frame: pd.DataFrame, by: tuple[str, ...]) -> pd.DataFrame:
    keys = {f"_k{i}": frame[d].map({v: n for n, v in enumerate(category_order(frame, d))})
            for i, d in enumerate(by)}
    return frame.assign(**keys).sort_values(list(keys), kind="stable").drop(columns=list(keys)).reset_index(drop=True)


def explore_frame(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                  dimensions: tuple[str, ...], facet: str | None = None) -> pd.DataFrame:
    """Return the measure per group of the dimensions (and facet), smaller groups summed into Other."""
    dimensions = tuple(dimensions)
    choose_chart(measure, dimensions, facet)  # refuses a question no chart can draw
    by = (*dimensions, facet) if facet else dimensions
    full = breakdown(engine, ds, filters, scope, by)
    frame = pd.DataFrame({d: full[d] for d in by})
    frame["reports"] = full["reports"].astype("int64")
    rate = measure != REPORTS
    frame["yes"] = full[f"{measure}_yes"].astype("int64") if rate else 0
    frame["answered"] = full[f"{measure}_answered"].astype("int64") if rate else frame["reports"]
    if len(frame):
        for d, keep in group_caps(frame, dimensions, facet).items():
            frame = _merge_smaller(frame, d, keep)
        frame = frame.groupby(list(by), sort=False, as_index=False)[["reports", "yes", "answered"]].sum()
    frame = _sort(frame, by)
    return _with_values(frame, measure)


def _with_values(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
    out = frame.copy()
    if measure == REPORTS:
        out["yes"] = np.nan  # a count answers no yes/no question
        out["value"] = out["reports"].astype("float64")
        out["low"] = out["high"] = np.nan
        out["enough"] = True
        return out
    yes, answered = out["yes"].to_numpy(dtype="float64"), out["answered"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["value"] = np.where(answered > 0, yes / answered, np.nan)
    low, high = wilson_interval(yes, answered)
    out["low"], out["high"] = np.asarray(low, dtype="float64"), np.asarray(high, dtype="float64")
    out["enough"] = out["answered"] >= MIN_DENOMINATOR
    return out


def dimension_label(dimension: str) -> str:
    return DIMENSION_LABELS.get(dimension, dimension)


# --- from a click to a filter -------------------------------------------------------------

# The dimensions a global filter can select, by column (team, crewing and the time axes cannot).
FILTER_BY_DIMENSION: dict[str, FilterKind] = {
    k.column: k for k in FILTER_KINDS if k.table == "reports" and k.column in DIMENSIONS
}
NOT_FILTERABLE_HINTS: dict[str, str] = {
    "month": "set the dates in the sidebar instead",
    "hour": "no filter selects hours of the day",
    "hours": "no filter selects hours of the day",
    "days": "no filter selects days of the week",
    "role_group": "choose the roles in the sidebar's Officer role filter instead",
    "weekday": "no filter selects days of the week",
    "team": "narrow by force or area in the sidebar instead",
    "single_crewed": "no filter selects single or double crewing",
}


@dataclass(frozen=True)
class Pick:
    """What a click on the chart chose: values that can become filters, and why the others cannot."""

    values: tuple[tuple[str, str], ...] = ()  # (filter field, value)
    notes: tuple[str, ...] = ()


def _selected_points(selection_event: object) -> list[Mapping]:
    if not isinstance(selection_event, Mapping):
        return []
    inner = selection_event.get("selection", selection_event)
    points = inner.get(SELECTION) if isinstance(inner, Mapping) else None
    if isinstance(points, Mapping):  # an interval or a single point given as a mapping
        points = [points]
    return [p for p in points or [] if isinstance(p, Mapping)]


def picked(selection_event: object, dimensions: tuple[str, ...]) -> Pick:
    """Read the chart's selection into filterable (field, value) pairs and notes on what cannot filter."""
    values: list[tuple[str, str]] = []
    notes: list[str] = []
    for point in _selected_points(selection_event):
        for d in dimensions:
            if d not in point:
                continue
            raw = point[d]
            value = raw[0] if isinstance(raw, list) and len(raw) == 1 else raw
            kind = FILTER_BY_DIMENSION.get(d)
            if kind is None:
                hint = NOT_FILTERABLE_HINTS.get(d, "no filter selects it")
                note = f"{dimension_label(d)} is not one of the global filters: {hint}."
            elif not isinstance(value, str):
                note = f"Only a single {dimension_label(d).lower()} can become a filter."
            elif value == NOT_RECORDED:
                note = f"'{NOT_RECORDED}' ({dimension_label(d).lower()}) cannot be chosen in a filter."
            elif is_other(value):
                note = f"'{value}' sums several groups: click a named {dimension_label(d).lower()} to filter to it."
            else:
                if (kind.field, value) not in values:
                    values.append((kind.field, value))
                continue
            if note not in notes:
                notes.append(note)
    return Pick(tuple(values), tuple(notes))


def apply_selection(filters: Filters, selection_event: object, dimensions: tuple[str, ...]) -> Filters:
    """Return the filters with the clicked values added to their filter kinds (others left unchanged)."""
    out = filters
    for field, value in picked(selection_event, dimensions).values:
        current = getattr(out, field)
        if value not in current:
            out = out.with_values(field, (*current, value))
    return out


def filter_changes(before: Filters, after: Filters,
                   options: Mapping[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Return the filter kinds whose values changed, as the lists the sidebar widgets hold."""
    changes = {}
    for kind in FILTER_KINDS:
        if before.values(kind) != after.values(kind):
            values = list(after.values(kind))
            if options is not None:  # a widget refuses values it does not offer
                values = [v for v in values if v in options.get(kind.field, [])]
            changes[kind.field] = values
    return changes


def pick_sentence(pick: Pick) -> str:
    """Say what a click would filter to ('Night shift, Response officers')."""
    chosen: dict[str, tuple[str, ...]] = {}
    for field, value in pick.values:
        chosen[field] = (*chosen.get(field, ()), value)
    sentence = describe(Filters(**chosen))
    return sentence if chosen else ""
