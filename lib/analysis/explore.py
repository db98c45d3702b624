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
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from lib.analysis.stats import wilson_interval
from lib.engine.query import (
    DIMENSION_LABELS,
    DIMENSION_ORDER,
    DIMENSIONS,
    FILTER_KINDS,
    NOT_RECORDED,
    FilterKind,
    Filters,
    Scope,
    breakdown,
    describe,
)
from lib.engine.store import Dataset, Engine
from lib.model import schema
from lib.present.charts import ACCENT, MAIN, MIN_DENOMINATOR, MUTED, _style, drop_hidden
from lib.present.tables import counts

REPORTS = "reports"
MEASURES: dict[str, str] = {REPORTS: "Reports", **schema.HARM_FIELDS}
# Dimensions that run along an x axis in time order: drawn as lines, never merged into "Other".
TIME_AXES: tuple[str, ...] = ("month", "hour")
# A facet draws one panel per group: time axes would give dozens of panels, so they are left out.
FACET_DIMENSIONS: tuple[str, ...] = tuple(d for d in DIMENSIONS if d not in TIME_AXES)
SELECTION = "pick"
UNIT = "reports (one officer's use of force on one subject)"

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


# --- words --------------------------------------------------------------------------------


def _label(dimension: str) -> str:
    return DIMENSION_LABELS.get(dimension, dimension)


def default_title(measure: str, dimensions: tuple[str, ...], facet: str | None = None) -> str:
    """Name what a chart shows: measure, dimensions, facet, and the interval for rates."""
    labels = [_label(d).lower() for d in dimensions]
    text = f"{MEASURES[measure]} by {' and '.join(labels)}"
    if facet:
        text += f", one panel per {_label(facet).lower()}"
    return text + (", with 95% intervals" if measure != REPORTS else "")


def merged_groups(frame: pd.DataFrame, dimensions: tuple[str, ...]) -> list[str]:
    """Say, per dimension, how many smaller groups were summed into Other."""
    notes = []
    for d in dimensions:
        if d not in frame:
            continue
        for value in pd.unique(frame[d]):
            if is_other(value):
                n = int(_OTHER_PATTERN.match(value).group(1))
                kept = sum(1 for v in pd.unique(frame[d]) if not is_other(v) and v != NOT_RECORDED)
                notes.append(f"{_label(d)}: the {kept} groups with most reports are drawn and the other {n} "
                             f"are summed into “{value}”")
    return notes


def caption(filters: Filters, measure: str, frame: pd.DataFrame, dimensions: tuple[str, ...],
            facet: str | None = None) -> str:
    """Caption a chart: the filter sentence, the counting unit, how rates are counted, merged groups."""
    dims = (*dimensions, facet) if facet else tuple(dimensions)
    parts = [f"{describe(filters)}. Counting unit: {UNIT}."]
    if measure != REPORTS:
        parts.append(f"{MEASURES[measure]} is over the reports that answered the question, with 95% (Wilson) "
                     f"intervals; groups with fewer than {MIN_DENOMINATOR} answering are grey or hollow: "
                     "too few to read.")
    notes = merged_groups(frame, dims)
    if notes:
        parts.append("; ".join(notes) + ".")
    return " ".join(parts)


def table(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], facet: str | None = None) -> pd.DataFrame:
    """Return the aggregate behind the chart with readable headings (rates in %)."""
    dims = (*dimensions, facet) if facet else tuple(dimensions)
    out = pd.DataFrame()
    for d in dims:
        out[_label(d)] = pd.to_datetime(frame[d]).dt.strftime("%b %Y") if d == "month" else frame[d]
    out["Reports"] = counts(frame["reports"])
    if measure != REPORTS:
        label = MEASURES[measure]
        out[f"{label.removesuffix(' rate')}: yes"] = counts(frame["yes"].astype("float64"))
        out["Reports answering"] = counts(frame["answered"])
        out[f"{label} (%)"] = (frame["value"] * 100).round(2)
        out["95% from (%)"] = (frame["low"] * 100).round(2)
        out["95% to (%)"] = (frame["high"] * 100).round(2)
        out[f"At least {MIN_DENOMINATOR} answering"] = frame["enough"].map({True: "Yes", False: "No"})
    return out


# --- chart builders -----------------------------------------------------------------------

ENOUGH = "Enough answering"
TOO_FEW = f"Under {MIN_DENOMINATOR} answering: too few to read"


def _chart_data(frame: pd.DataFrame, measure: str, *, gaps: bool = False) -> pd.DataFrame:
    # Values disclosure control hid are not drawn: lines keep the row as a gap, other views drop it.
    data = frame.copy() if gaps else drop_hidden(frame, "value", "reports").copy()
    if "enough" in data:
        data["enough"] = data["enough"].fillna(False).astype(bool)
    if "month" in data:
        data["month"] = pd.to_datetime(data["month"]).dt.strftime("%Y-%m-%d")
    if measure == REPORTS:
        data = data.drop(columns=["yes", "low", "high"])
    data["reading"] = np.where(data["enough"], ENOUGH, TOO_FEW)
    return data


def _value_axis_title(measure: str, short: bool = False) -> str:
    if measure == REPORTS:
        return "Reports (one officer, one subject)"
    if short:  # side-by-side panels leave room for a few words only; the caption says the rest
        return MEASURES[measure]
    return f"{MEASURES[measure]} (% of answering reports)"


def _value_format(measure: str) -> str:
    return ",.0f" if measure == REPORTS else ".1~%"


def _tooltip(measure: str, dims: tuple[str, ...]) -> list[alt.Tooltip]:
    tips = [alt.Tooltip("yearmonth(month):T", title="Month", format="%B %Y") if d == "month"
            else alt.Tooltip(f"{d}:N", title=_label(d)) for d in dims]
    tips.append(alt.Tooltip("reports:Q", title="Reports", format=","))
    if measure != REPORTS:
        tips += [alt.Tooltip("value:Q", title=MEASURES[measure], format=".1%"),
                 alt.Tooltip("yes:Q", title="Yes", format=","),
                 alt.Tooltip("answered:Q", title="Reports answering", format=","),
                 alt.Tooltip("low:Q", title="95% interval from", format=".1%"),
                 alt.Tooltip("high:Q", title="95% interval to", format=".1%"),
                 alt.Tooltip("reading:N", title="Reading")]
    return tips


def _pick(fields: list[str], *, nearest: bool = False) -> alt.Parameter:
    return alt.selection_point(name=SELECTION, fields=fields, **({"nearest": True} if nearest else {}))


def _faded(pick: alt.Parameter) -> alt.OpacityValue:
    return alt.condition(pick, alt.value(1.0), alt.value(0.3))


def _named(data: pd.DataFrame, dims: tuple[str, ...]) -> pd.Series:
    """Mark rows whose groups are all named (not Other, not Not recorded)."""
    named = pd.Series(True, index=data.index)
    for d in dims:
        if d not in TIME_AXES:
            named &= ~data[d].map(is_other).astype(bool) & (data[d] != NOT_RECORDED).astype(bool)
    return named


def _scale_top(data: pd.DataFrame) -> float | None:
    """Return the largest named value when an Other group would dwarf the named ones, else None."""
    named, merged = data.loc[data["named"], "value"], data.loc[~data["named"], "value"]
    if named.empty or merged.empty or not named.max() > 0:
        return None
    return float(named.max()) if merged.max() > 1.5 * named.max() else None


def _time_x(x: str) -> alt.X:
    if x == "month":
        return alt.X("yearmonth(month):T", title="Month", axis=alt.Axis(format="%b %Y", labelAngle=-45))
    return alt.X(f"{x}:O", title=_label(x), axis=alt.Axis(labelAngle=0, values=list(range(0, 24, 3))))


def _reading_colour() -> alt.Color:
    return alt.Color("reading:N", title=None, scale=alt.Scale(domain=[ENOUGH, TOO_FEW], range=[ACCENT, MUTED]))


def _line_view(data: pd.DataFrame, measure: str, dimensions: tuple[str, ...],
               facet: str | None) -> alt.LayerChart:
    x = next(d for d in dimensions if d in TIME_AXES)
    series = next((d for d in dimensions if d not in TIME_AXES), None)
    # Points on a line are small targets: a click picks the nearest one.
    pick = _pick([series or x, *([facet] if facet else [])], nearest=True)
    single = ACCENT if measure != REPORTS else MAIN
    colour = (alt.Color(f"{series}:N", title=_label(series), sort=category_order(data, series),
                        legend=alt.Legend(symbolOpacity=1))
              if series else alt.value(single))
    base = alt.Chart(data).encode(x=_time_x(x), tooltip=_tooltip(measure, (*dimensions, *([facet] if facet else []))))
    y = alt.Y("value:Q", title=_value_axis_title(measure, short=facet is not None),
              axis=alt.Axis(format=_value_format(measure), tickCount=6))
    line = base.mark_line().encode(y=y, color=colour, opacity=_faded(pick))
    points = base.mark_point(filled=True, size=60).encode(y="value:Q", color=colour, opacity=_faded(pick))
    # A white centre makes a point hollow where it rests on too few answering reports to read (a second
    # colour channel would hide the series legend).
    hollow = base.transform_filter(~alt.datum.enough).mark_circle(color="white", size=16, opacity=1).encode(
        y="value:Q")
    layers = [line, points.add_params(pick), hollow]
    if measure != REPORTS:
        band = base.mark_area().encode(
            y=alt.Y("low:Q", title=_value_axis_title(measure, facet is not None)), y2="high:Q", color=colour,
            opacity=alt.condition(pick, alt.value(0.18), alt.value(0.05)))
        layers.insert(0, band)
    return alt.layer(*layers).properties(height=300 if facet is None else 200)


def _bar_view(data: pd.DataFrame, measure: str, dimensions: tuple[str, ...],
              facet: str | None) -> alt.LayerChart | alt.Chart:
    dim = dimensions[0]
    pick = _pick([dim, *([facet] if facet else [])])
    order = category_order(data, dim)
    y = alt.Y(f"{dim}:N", title=_label(dim), sort=order, axis=alt.Axis(labelLimit=260))
    tips = _tooltip(measure, (dim, *([facet] if facet else [])))
    height = max(120, 22 * len(order))
    if measure == REPORTS:
        data = data.assign(named=_named(data, (dim,)))
        top = _scale_top(data)
        bars = alt.Chart(data).mark_bar(clip=True).encode(
            y=y, x=alt.X("value:Q", title=_value_axis_title(measure, facet is not None),
                         scale=alt.Scale(domain=[0, top]) if top else alt.Undefined),
            color=alt.condition(alt.datum.named, alt.value(MAIN), alt.value(MUTED)),
            opacity=_faded(pick), tooltip=tips).add_params(pick)
        if not top:
            return bars.properties(height=height)
        # A merged group far larger than the rest is cut at the scale's end and its count written on it.
        note = alt.Chart(data).transform_filter(alt.datum.value > top).transform_calculate(
            off_scale="format(datum.value, ',') + ', off scale'").mark_text(
            align="right", dx=-6, color="white", fontWeight="bold").encode(
            y=y, x=alt.datum(top), text="off_scale:N")
        return alt.layer(bars, note).properties(height=height)
    title = _value_axis_title(measure, True) if facet else f"{_value_axis_title(measure)}, 95% interval"
    x = alt.X("low:Q", title=title,
              axis=alt.Axis(format=_value_format(measure), tickCount=8))
    # An invisible bar across each row makes the whole row clickable, not only the small point.
    target = alt.Chart(data).mark_bar(opacity=0).encode(y=y, x="high:Q", tooltip=tips).add_params(pick)
    rules = alt.Chart(data).mark_rule(strokeWidth=2).encode(
        y=y, x=x, x2="high:Q", color=_reading_colour(), opacity=_faded(pick), tooltip=tips)
    points = alt.Chart(data).mark_point(filled=True, size=70).encode(
        y=y, x="value:Q", color=_reading_colour(), opacity=_faded(pick), tooltip=tips)
    return alt.layer(target, rules, points).properties(height=height)


def _heatmap_view(data: pd.DataFrame, measure: str, dimensions: tuple[str, ...],
                  facet: str | None) -> alt.LayerChart:
    rows, cols = (dimensions if dimensions[1] != "month" else dimensions[::-1])
    pick = _pick([rows, cols, *([facet] if facet else [])])
    data = data.copy()
    if "month" in (rows, cols):  # a grid reads months as ordered labels
        data["month"] = pd.to_datetime(data["month"]).dt.strftime("%Y-%m")
    rate = measure != REPORTS
    # The colour scale spans the readable cells only: thin rate cells (grey) and a merged group's large
    # counts would otherwise wash the named cells out; cells beyond the scale saturate.
    readable = data["value"].where(data["enough"])
    top = (_scale_top(data.assign(named=_named(data, (rows, cols)))) if not rate else None) or readable.max()
    top = float(top) if pd.notna(top) and top > 0 else None
    data["label"] = [("" if not ok or pd.isna(v) else (f"{v:.0%}" if rate else f"{v:,.0f}"))
                     for v, ok in zip(data["value"], data["enough"], strict=True)]
    data["dark"] = (readable >= 0.6 * top) if top else False
    tips = _tooltip(measure, (rows, cols, *([facet] if facet else [])))
    tips = [alt.Tooltip(f"{d}:N", title=_label(d)) if d == "month" else t
            for d, t in zip((rows, cols), tips[:2], strict=True)] + tips[2:]
    base = alt.Chart(data).encode(
        x=alt.X(f"{cols}:O", title=_label(cols), sort=category_order(data, cols), axis=alt.Axis(labelAngle=-45)),
        y=alt.Y(f"{rows}:O", title=_label(rows), sort=category_order(data, rows), axis=alt.Axis(labelLimit=220)),
        tooltip=tips)
    scale = alt.Scale(scheme="orangered" if rate else "blues", zero=True,
                      **({"domain": [0, top], "clamp": True} if top else {}))
    fill = alt.Color("value:Q", title=_value_axis_title(measure), scale=scale,
                     legend=alt.Legend(format=_value_format(measure), titleLimit=400))
    cells = base.mark_rect(stroke="white").encode(
        color=alt.condition(alt.datum.enough, fill, alt.value("#E5E5E5")) if rate else fill,
        opacity=_faded(pick)).add_params(pick)
    text = base.mark_text(fontSize=10).encode(
        text="label:N", color=alt.condition(alt.datum.dark, alt.value("white"), alt.value("#222222")))
    cell = 26 if facet is None else 18
    return alt.layer(cells, text).properties(height=max(120, cell * data[rows].nunique()))


VIEWS: dict[str, Callable[[pd.DataFrame, str, tuple[str, ...], str | None], alt.TopLevelMixin]] = {
    "line": _line_view, "bar": _bar_view, "heatmap": _heatmap_view,
}


def _titled(chart: alt.TopLevelMixin, title: str) -> alt.TopLevelMixin:
    return chart.properties(title=title) if title else chart


def _fit_width(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    # Streamlit fits a stretched chart's whole height (title, axes, legend) into `height`, squeezing
    # the rows; fitting the width only keeps `height` for the plot itself.
    return chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def measure_over_time(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], *,
                      title: str | None = None) -> alt.TopLevelMixin:
    """Draw the measure along month or hour, one line per group of a second dimension; rates with a band."""
    title = default_title(measure, dimensions) if title is None else title
    view = _line_view(_chart_data(frame, measure, gaps=True), measure, tuple(dimensions), None)
    return _style(_fit_width(_titled(view, title)))


def measure_by_group(frame: pd.DataFrame, measure: str, dimension: str, *,
                     title: str | None = None) -> alt.TopLevelMixin:
    """Draw reports per group as horizontal bars, or a rate per group as a point with its 95% interval."""
    title = default_title(measure, (dimension,)) if title is None else title
    view = _bar_view(_chart_data(frame, measure), measure, (dimension,), None)
    return _style(_fit_width(_titled(view, title)))


def measure_heatmap(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], *,
                    title: str | None = None) -> alt.TopLevelMixin:
    """Draw the measure for each pair of two dimensions; rate cells resting on too few answers are grey."""
    title = default_title(measure, dimensions) if title is None else title
    view = _heatmap_view(_chart_data(frame, measure), measure, tuple(dimensions), None)
    return _style(_fit_width(_titled(view, title)))


def small_multiples(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], facet: str, *,
                    title: str | None = None) -> alt.TopLevelMixin:
    """Draw one small chart per group of the facet dimension, all on shared scales."""
    dimensions = tuple(dimensions)
    title = default_title(measure, dimensions, facet) if title is None else title
    inner = choose_chart(measure, dimensions, None)
    data = _chart_data(frame, measure, gaps=inner == "line")
    view = VIEWS[inner](data, measure, dimensions, facet).properties(width=220 if inner == "bar" else 260)
    chart = view.facet(facet=alt.Facet(f"{facet}:N", title=_label(facet), sort=category_order(data, facet)),
                       columns=3)
    return _style(_titled(chart, title))


def explore_chart(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], facet: str | None = None, *,
                  title: str | None = None) -> alt.TopLevelMixin:
    """Draw the chart the rules pick for this measure, dimensions and facet."""
    dimensions = tuple(dimensions)
    kind = choose_chart(measure, dimensions, facet)
    builders: dict[str, Callable[[], alt.TopLevelMixin]] = {
        "line": lambda: measure_over_time(frame, measure, dimensions, title=title),
        "bar": lambda: measure_by_group(frame, measure, dimensions[0], title=title),
        "heatmap": lambda: measure_heatmap(frame, measure, dimensions, title=title),
        "small_multiples": lambda: small_multiples(frame, measure, dimensions, facet, title=title),
    }
    return builders[kind]()


# --- from a click to a filter -------------------------------------------------------------

# The dimensions a global filter can select, by column (team, crewing and the time axes cannot).
FILTER_BY_DIMENSION: dict[str, FilterKind] = {
    k.column: k for k in FILTER_KINDS if k.table == "reports" and k.column in DIMENSIONS
}
NOT_FILTERABLE_HINTS: dict[str, str] = {
    "month": "set the dates in the sidebar instead",
    "hour": "no filter selects hours of the day",
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
                note = f"{_label(d)} is not one of the global filters: {hint}."
            elif not isinstance(value, str):
                note = f"Only a single {_label(d).lower()} can become a filter."
            elif value == NOT_RECORDED:
                note = f"'{NOT_RECORDED}' ({_label(d).lower()}) cannot be chosen in a filter."
            elif is_other(value):
                note = f"'{value}' sums several groups: click a named {_label(d).lower()} to filter to it."
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
