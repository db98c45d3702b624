"""Explore, drawn and worded: the chart for a measure by one or two dimensions, its title, caption and table.

Pure builders over the frame of `lib.analysis.explore.explore_frame`. Every chart carries a point
selection named "pick" on its dimension columns, so a click can become a global filter through
`lib.analysis.explore.apply_selection`.
"""
from __future__ import annotations

from collections.abc import Callable

import altair as alt
import numpy as np
import pandas as pd

from lib.analysis.explore import (
    _OTHER_PATTERN,
    MEASURES,
    REPORTS,
    SELECTION,
    TIME_AXES,
    UNIT,
    category_order,
    choose_chart,
    dimension_label,
    is_other,
)
from lib.engine.query import NOT_RECORDED, Filters, describe
from lib.present.charts import (
    ACCENT,
    MAIN,
    MIN_DENOMINATOR,
    MUTED,
    _has_part_months,
    _style,
    drop_hidden,
    part_tip,
)
from lib.present.tables import counts


def default_title(measure: str, dimensions: tuple[str, ...], facet: str | None = None) -> str:
    """Name what a chart shows: measure, dimensions, facet, and the interval for rates."""
    labels = [dimension_label(d).lower() for d in dimensions]
    text = f"{MEASURES[measure]} by {' and '.join(labels)}"
    if facet:
        text += f", one panel per {dimension_label(facet).lower()}"
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
                notes.append(f"{dimension_label(d)}: the {kept} groups with most reports are drawn and the other {n} "
                             f"are summed into “{value}”")
    return notes


def caption(filters: Filters, measure: str, frame: pd.DataFrame, dimensions: tuple[str, ...],
            facet: str | None = None, unit: str = "reports") -> str:
    """Caption a chart: the filter sentence, the counting unit, how rates are counted, merged groups."""
    dims = (*dimensions, facet) if facet else tuple(dimensions)
    parts = [f"{describe(filters)}. Counting unit: {UNIT}."]
    if measure != REPORTS:
        if unit == "incidents":
            parts.append(f"{MEASURES[measure]} counts incidents: the extract records it once per incident, so an "
                         "incident counts once however many officers' reports repeat it (and once in each group "
                         "its reports fall in).")
        parts.append(f"{MEASURES[measure]} is over the {unit} that answered the question, with 95% (Wilson) "
                     f"intervals; groups with fewer than {MIN_DENOMINATOR} answering are grey or hollow: "
                     "too few to read.")
    notes = merged_groups(frame, dims)
    if notes:
        parts.append("; ".join(notes) + ".")
    return " ".join(parts)


def table(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], facet: str | None = None,
          unit: str = "reports") -> pd.DataFrame:
    """Return the aggregate behind the chart with readable headings (rates in %)."""
    dims = (*dimensions, facet) if facet else tuple(dimensions)
    out = pd.DataFrame()
    for d in dims:
        out[dimension_label(d)] = pd.to_datetime(frame[d]).dt.strftime("%b %Y") if d == "month" else frame[d]
    out["Reports"] = counts(frame["reports"])
    if measure != REPORTS:
        label = MEASURES[measure]
        out[f"{label.removesuffix(' rate')}: yes"] = counts(frame["yes"].astype("float64"))
        out[f"{unit.capitalize()} answering"] = counts(frame["answered"])
        out[f"{label} (%)"] = (frame["value"] * 100).round(2)
        out["95% from (%)"] = (frame["low"] * 100).round(2)
        out["95% to (%)"] = (frame["high"] * 100).round(2)
        out[f"At least {MIN_DENOMINATOR} answering"] = frame["enough"].map({True: "Yes", False: "No"})
    return out


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


def _value_axis_title(measure: str, short: bool = False, unit: str = "reports") -> str:
    if measure == REPORTS:
        return "Reports (one officer, one subject)"
    if short:  # side-by-side panels leave room for a few words only; the caption says the rest
        return MEASURES[measure]
    return f"{MEASURES[measure]} (% of answering {unit})"


def _value_format(measure: str) -> str:
    return ",.0f" if measure == REPORTS else ".1~%"


def _tooltip(measure: str, dims: tuple[str, ...], unit: str = "reports") -> list[alt.Tooltip]:
    tips = [alt.Tooltip("yearmonth(month):T", title="Month", format="%B %Y") if d == "month"
            else alt.Tooltip(f"{d}:N", title=dimension_label(d)) for d in dims]
    tips.append(alt.Tooltip("reports:Q", title="Reports", format=","))
    if measure != REPORTS:
        tips += [alt.Tooltip("value:Q", title=MEASURES[measure], format=".1%"),
                 alt.Tooltip("yes:Q", title="Yes", format=","),
                 alt.Tooltip("answered:Q", title=f"{unit.capitalize()} answering", format=","),
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
    return alt.X(f"{x}:O", title=dimension_label(x), axis=alt.Axis(labelAngle=0, values=list(range(0, 24, 3))))


def _reading_colour() -> alt.Color:
    return alt.Color("reading:N", title=None, scale=alt.Scale(domain=[ENOUGH, TOO_FEW], range=[ACCENT, MUTED]))


def _line_view(data: pd.DataFrame, measure: str, dimensions: tuple[str, ...],
               facet: str | None, unit: str = "reports") -> alt.LayerChart:
    x = next(d for d in dimensions if d in TIME_AXES)
    series = next((d for d in dimensions if d not in TIME_AXES), None)
    # Points on a line are small targets: a click picks the nearest one.
    pick = _pick([series or x, *([facet] if facet else [])], nearest=True)
    single = ACCENT if measure != REPORTS else MAIN
    colour = (alt.Color(f"{series}:N", title=dimension_label(series), sort=category_order(data, series),
                        legend=alt.Legend(symbolOpacity=1))
              if series else alt.value(single))
    tips = _tooltip(measure, (*dimensions, *([facet] if facet else [])), unit)
    base = alt.Chart(data).encode(x=_time_x(x), tooltip=tips)
    y = alt.Y("value:Q", title=_value_axis_title(measure, short=facet is not None, unit=unit),
              axis=alt.Axis(format=_value_format(measure), tickCount=6))
    line = base.mark_line().encode(y=y, color=colour, opacity=_faded(pick))
    points = base.mark_point(filled=True, size=60).encode(y="value:Q", color=colour, opacity=_faded(pick))
    # A white centre makes a point hollow where it rests on too few answering reports to read (a second
    # colour channel would hide the series legend).
    hollow = base.transform_filter(~alt.datum.enough).mark_circle(color="white", size=16, opacity=1).encode(
        y="value:Q")
    layers = [line, points.add_params(pick), hollow]
    if x == "month" and _has_part_months(data):
        # A month holding part of its data (charts.mark_part_months): named at the top of its column, the note in
        # its tooltip (hollow points already mean too few answers here).
        layers.append(base.transform_filter("datum.part_month").mark_text(
            baseline="top", dy=2, color=MUTED, fontSize=10, fontStyle="italic").encode(
            y=alt.value(0), text=alt.value("part month"),
            tooltip=[alt.Tooltip("yearmonth(month):T", title="Month", format="%B %Y"), part_tip()]))
    if measure != REPORTS:
        band = base.mark_area().encode(
            y=alt.Y("low:Q", title=_value_axis_title(measure, facet is not None, unit)), y2="high:Q", color=colour,
            opacity=alt.condition(pick, alt.value(0.18), alt.value(0.05)))
        layers.insert(0, band)
    return alt.layer(*layers).properties(height=300 if facet is None else 200)


def _bar_view(data: pd.DataFrame, measure: str, dimensions: tuple[str, ...],
              facet: str | None, unit: str = "reports") -> alt.LayerChart | alt.Chart:
    dim = dimensions[0]
    pick = _pick([dim, *([facet] if facet else [])])
    order = category_order(data, dim)
    y = alt.Y(f"{dim}:N", title=dimension_label(dim), sort=order, axis=alt.Axis(labelLimit=260))
    tips = _tooltip(measure, (dim, *([facet] if facet else [])), unit)
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
    title = _value_axis_title(measure, True) if facet else f"{_value_axis_title(measure, unit=unit)}, 95% interval"
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
                  facet: str | None, unit: str = "reports") -> alt.LayerChart:
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
    tips = _tooltip(measure, (rows, cols, *([facet] if facet else [])), unit)
    tips = [alt.Tooltip(f"{d}:N", title=dimension_label(d)) if d == "month" else t
            for d, t in zip((rows, cols), tips[:2], strict=True)] + tips[2:]
    base = alt.Chart(data).encode(
        x=alt.X(f"{cols}:O", title=dimension_label(cols), sort=category_order(data, cols),
                axis=alt.Axis(labelAngle=-45)),
        y=alt.Y(f"{rows}:O", title=dimension_label(rows), sort=category_order(data, rows),
                axis=alt.Axis(labelLimit=220)),
        tooltip=tips)
    scale = alt.Scale(scheme="orangered" if rate else "blues", zero=True,
                      **({"domain": [0, top], "clamp": True} if top else {}))
    fill = alt.Color("value:Q", title=_value_axis_title(measure, unit=unit), scale=scale,
                     legend=alt.Legend(format=_value_format(measure), titleLimit=400))
    cells = base.mark_rect(stroke="white").encode(
        color=alt.condition(alt.datum.enough, fill, alt.value("#E5E5E5")) if rate else fill,
        opacity=_faded(pick)).add_params(pick)
    text = base.mark_text(fontSize=10).encode(
        text="label:N", color=alt.condition(alt.datum.dark, alt.value("white"), alt.value("#222222")))
    cell = 26 if facet is None else 18
    return alt.layer(cells, text).properties(height=max(120, cell * data[rows].nunique()))


def _titled(chart: alt.TopLevelMixin, title: str) -> alt.TopLevelMixin:
    return chart.properties(title=title) if title else chart


def _fit_width(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    # Streamlit fits a stretched chart's whole height (title, axes, legend) into `height`, squeezing
    # the rows; fitting the width only keeps `height` for the plot itself.
    return chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def measure_over_time(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], *,
                      title: str | None = None, unit: str = "reports") -> alt.TopLevelMixin:
    """Draw the measure along month or hour, one line per group of a second dimension; rates with a band."""
    title = default_title(measure, dimensions) if title is None else title
    view = _line_view(_chart_data(frame, measure, gaps=True), measure, tuple(dimensions), None, unit)
    return _style(_fit_width(_titled(view, title)))


def measure_by_group(frame: pd.DataFrame, measure: str, dimension: str, *,
                     title: str | None = None, unit: str = "reports") -> alt.TopLevelMixin:
    """Draw reports per group as horizontal bars, or a rate per group as a point with its 95% interval."""
    title = default_title(measure, (dimension,)) if title is None else title
    view = _bar_view(_chart_data(frame, measure), measure, (dimension,), None, unit)
    return _style(_fit_width(_titled(view, title)))


def measure_heatmap(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], *,
                    title: str | None = None, unit: str = "reports") -> alt.TopLevelMixin:
    """Draw the measure for each pair of two dimensions; rate cells resting on too few answers are grey."""
    title = default_title(measure, dimensions) if title is None else title
    view = _heatmap_view(_chart_data(frame, measure), measure, tuple(dimensions), None, unit)
    return _style(_fit_width(_titled(view, title)))


def small_multiples(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], facet: str, *,
                    title: str | None = None, unit: str = "reports") -> alt.TopLevelMixin:
    """Draw one small chart per group of the facet dimension, all on shared scales."""
    dimensions = tuple(dimensions)
    title = default_title(measure, dimensions, facet) if title is None else title
    inner = choose_chart(measure, dimensions, None)
    data = _chart_data(frame, measure, gaps=inner == "line")
    view = VIEWS[inner](data, measure, dimensions, facet, unit).properties(width=220 if inner == "bar" else 260)
    chart = view.facet(facet=alt.Facet(f"{facet}:N", title=dimension_label(facet), sort=category_order(data, facet)),
                       columns=3)
    return _style(_titled(chart, title))


def explore_chart(frame: pd.DataFrame, measure: str, dimensions: tuple[str, ...], facet: str | None = None, *,
                  title: str | None = None, unit: str = "reports") -> alt.TopLevelMixin:
    """Draw the chart the rules pick for this measure, dimensions and facet (a rate over answering `unit`)."""
    dimensions = tuple(dimensions)
    kind = choose_chart(measure, dimensions, facet)
    builders: dict[str, Callable[[], alt.TopLevelMixin]] = {
        "line": lambda: measure_over_time(frame, measure, dimensions, title=title, unit=unit),
        "bar": lambda: measure_by_group(frame, measure, dimensions[0], title=title, unit=unit),
        "heatmap": lambda: measure_heatmap(frame, measure, dimensions, title=title, unit=unit),
        "small_multiples": lambda: small_multiples(frame, measure, dimensions, facet, title=title, unit=unit),
    }
    return builders[kind]()


VIEWS: dict[str, Callable[[pd.DataFrame, str, tuple[str, ...], str | None, str], alt.TopLevelMixin]] = {
    "line": _line_view, "bar": _bar_view, "heatmap": _heatmap_view,
}
