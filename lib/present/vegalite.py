"""The Overview's charts written as Vega-Lite dicts: the same specs as the Altair builders, built for a fraction.

An uncached Overview rerun spent more CPU building its five Altair charts (each layer and concatenation deep-
copies its parts, then `to_dict` walks them all again) than on its queries: about 80 ms against 2 ms for the
same dicts written out. Each function here returns exactly what `chartspec.to_spec(charts.<same name>(...))`
returns, key order and Arrow datasets included (tests/test_vegalite.py compares them on many frames), so the
Altair builders in lib/present/charts.py stay the one readable definition, validated against the schema by
their own tests, and a change there that is not made here fails those tests.
"""
from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from lib.analysis.stats import MIN_DENOMINATOR
from lib.model import schema
from lib.present import charts
from lib.present.chartspec import store_arrow

Spec = dict[str, Any]

# The x channel of the monthly charts, and the month in their tooltips.
_MONTH_AXIS = {"format": "%b %Y", "labelAngle": -45}


def _config() -> Spec:
    # As Altair writes the shared theme (charts._theme): its default view sizes first, then the rest by name.
    theme = charts._theme()
    config: Spec = {"view": {"continuousWidth": 300, "continuousHeight": 300, **theme["view"]}}
    config.update((key, theme[key]) for key in sorted(theme) if key != "view")
    return config


def _finish(spec: Spec, datasets: dict[str, bytes]) -> Spec:
    spec["$schema"] = alt.SCHEMA_URL
    spec["datasets"] = datasets
    return spec


def _month_x() -> Spec:
    return {"axis": dict(_MONTH_AXIS), "field": "month", "timeUnit": "yearmonth", "title": "Month",
            "type": "temporal"}


def _month_tip() -> Spec:
    return {"field": "month", "format": "%B %Y", "timeUnit": "yearmonth", "title": "Month", "type": "temporal"}


def _quantity(field: str, title: str, fmt: str) -> Spec:
    return {"field": field, "format": fmt, "title": title, "type": "quantitative"}


_PART_TIP: Spec = {"field": "part_month", "title": "Part month", "type": "nominal"}


def _months(frame: pd.DataFrame) -> pd.DataFrame:
    # As charts._months: the month as "YYYY-MM-DD" text (the Arrow bytes, and so the dataset names, must match).
    out = frame.copy()
    out["month"] = pd.to_datetime(out["month"]).dt.strftime("%Y-%m-%d")
    return out


def reports_by_month(frame: pd.DataFrame, *, title: str | None = None) -> Spec:
    """Return the spec of `charts.reports_by_month`: reports per month as bars, hidden months marked."""
    title = "Reports per month" if title is None else title
    datasets: dict[str, bytes] = {}
    shown = _months(charts.drop_hidden(frame, "reports"))
    encoding: Spec = {"tooltip": [_month_tip(), _quantity("reports", "Reports", ",")], "x": _month_x(),
                      "y": {"field": "reports", "title": "Reports (one officer, one subject)",
                            "type": "quantitative"}}
    if charts._has_part_months(shown):  # as charts.reports_by_month: a part month lighter, and named
        encoding = {"color": {"condition": {"test": "datum.part_month", "value": charts.PART},
                              "value": charts.MAIN}, **encoding}
        encoding["tooltip"].append(_PART_TIP)
    bars: Spec = {"data": store_arrow(shown, datasets), "mark": {"type": "bar", "color": charts.MAIN},
                  "encoding": encoding}
    if title:
        bars["title"] = title
    hidden = _months(frame[frame["reports"].isna()]) if "suppressed" in frame and len(frame) else frame.iloc[:0]
    spec: Spec = {"config": _config()}
    if len(hidden):
        marks = {"data": store_arrow(hidden[["month"]].assign(label="hidden"), datasets),
                 "mark": {"type": "text", "align": "left", "angle": 270, "color": charts.MUTED, "dy": 3,
                          "fontSize": 11},
                 "encoding": {"text": {"field": "label", "type": "nominal"},
                              "tooltip": [_month_tip(), {"field": "label", "title": "Reports", "type": "nominal"}],
                              "x": _month_x(), "y": {"datum": 0}}}
        spec["layer"] = [bars, marks]
        spec["height"] = 260
    else:
        spec.update(bars)
        spec["height"] = 260
        if title:  # a single chart's title follows its height
            spec["title"] = spec.pop("title")
    return _finish(spec, datasets)


def rate_by_month(frame: pd.DataFrame, measure: str = "officer_injured", *,
                  title: str | None = None, unit: str = "reports") -> Spec:
    """Return the spec of `charts.rate_by_month`: a monthly harm rate as a line with its 95% band."""
    label = schema.HARM_FIELDS[measure]
    datasets: dict[str, bytes] = {}
    shown = _months(frame)
    data = store_arrow(shown, datasets)
    band = {"mark": {"type": "area", "color": charts.ACCENT, "opacity": 0.25},
            "encoding": {"x": _month_x(),
                         "y": {"axis": {"format": "%"}, "field": f"{measure}_low", "title": f"% of answering {unit}",
                               "type": "quantitative"},
                         "y2": {"field": f"{measure}_high"}}}
    line = {"mark": {"type": "line", "color": charts.ACCENT, "point": {"color": charts.ACCENT}},
            "encoding": {"tooltip": [_month_tip(), _quantity(f"{measure}_rate", label, ".1%"),
                                     _quantity(f"{measure}_yes", "Yes", ","),
                                     _quantity(f"{measure}_answered", f"{unit.capitalize()} answering", ","),
                                     _quantity(f"{measure}_low", "95% interval from", ".1%"),
                                     _quantity(f"{measure}_high", "95% interval to", ".1%")],
                         "x": _month_x(), "y": {"field": f"{measure}_rate", "type": "quantitative"}}}
    layers = [band, line]
    if charts._has_part_months(shown):  # as charts.rate_by_month: a part month's rate as a hollow point
        layers.append({"mark": {"type": "point", "color": "white", "filled": True, "opacity": 1, "size": 60,
                                "stroke": charts.ACCENT, "strokeWidth": 2},
                       "encoding": {"tooltip": [*line["encoding"]["tooltip"], _PART_TIP], "x": _month_x(),
                                    "y": {"field": f"{measure}_rate", "type": "quantitative"}},
                       "transform": [{"filter": "datum.part_month"}]})
    title = f"{label} per month, with 95% interval" if title is None else title
    spec: Spec = {"config": _config(), "layer": layers, "data": data, "height": 260}
    if title:
        spec["title"] = title
    return _finish(spec, datasets)


def harm_rates_by_group(frame: pd.DataFrame, dimension: str, dimension_label: str, *,
                        title: str | None = None,
                        measures: tuple[str, ...] = ("officer_injured", "officer_assaulted"),
                        per_incident: tuple[str, ...] = ()) -> Spec:
    """Return the spec of `charts.harm_rates_by_group`: reports per group beside each harm rate, thin groups grey."""
    thin = f"Under {MIN_DENOMINATOR} answering: too few to read"
    data = frame.assign(**{f"{m}_reliable": np.where(frame[f"{m}_answered"].astype("float64") >= MIN_DENOMINATOR,
                                                     "Enough reports", thin)
                           for m in measures})
    order = frame[dimension].tolist()

    def y() -> Spec:
        return {"field": dimension, "sort": list(order), "title": dimension_label, "type": "nominal"}

    def group() -> Spec:
        return {"field": dimension, "title": dimension_label, "type": "nominal"}

    panels: list[Spec] = [{"mark": {"type": "bar", "color": charts.MAIN},
                           "encoding": {"tooltip": [group(), _quantity("reports", "Reports", ",")],
                                        "x": {"field": "reports", "title": "Reports", "type": "quantitative"},
                                        "y": y()},
                           "title": "Reports", "transform": [_shown("reports")], "width": charts.GROUP_PANEL_WIDTH}]
    for measure in measures:
        label = schema.HARM_FIELDS[measure]
        unit = "incidents" if measure in per_incident else "reports"

        def colour(measure: str = measure) -> Spec:
            return {"field": f"{measure}_reliable",
                    "scale": {"domain": ["Enough reports", thin], "range": [charts.ACCENT, charts.MUTED]},
                    "title": None, "type": "nominal"}

        def tooltip(measure: str = measure, label: str = label, unit: str = unit) -> list[Spec]:
            return [group(), _quantity(f"{measure}_rate", label, ".1%"), _quantity(f"{measure}_yes", "Yes", ","),
                    _quantity(f"{measure}_answered", f"{unit.capitalize()} answering", ","),
                    _quantity(f"{measure}_low", "95% interval from", ".1%"),
                    _quantity(f"{measure}_high", "95% interval to", ".1%")]

        axis_title = (f"{label}, % of {unit} (95% interval)" if unit != "reports" else f"{label} (95% interval)")
        rule = {"mark": {"type": "rule", "strokeWidth": 2},
                "encoding": {"color": colour(), "tooltip": tooltip(),
                             "x": {"axis": {"format": "%", "tickCount": 4}, "field": f"{measure}_low",
                                   "title": axis_title, "type": "quantitative"},
                             "x2": {"field": f"{measure}_high"}, "y": y()}}
        point = {"mark": {"type": "point", "filled": True, "size": 70},
                 "encoding": {"color": colour(), "tooltip": tooltip(),
                              "x": {"field": f"{measure}_rate", "type": "quantitative"}, "y": y()}}
        panels.append({"layer": [rule, point], "title": label + (" (per incident)" if unit != "reports" else ""),
                       "transform": [_shown(f"{measure}_rate")], "width": charts.GROUP_PANEL_WIDTH})
    datasets: dict[str, bytes] = {}
    spec: Spec = {"config": _config(), "hconcat": panels, "data": store_arrow(data, datasets),
                  "resolve": {"scale": {"y": "shared"}}}
    if title:
        spec["title"] = title
    return _finish(spec, datasets)


def _shown(column: str) -> Spec:
    return {"filter": f"!datum.suppressed || isValid(datum['{column}'])"}


def most_used_tactics(frame: pd.DataFrame, *, top: int = 12, title: str | None = None) -> Spec:
    """Return the spec of `charts.most_used_tactics`: the tactics used in most reports, by type of force."""
    data = charts.drop_hidden(frame.head(top), "reports").copy()
    present = set(data["tactic_group"])
    groups = [g for g in schema.TACTIC_GROUPS if g in present]
    groups += sorted(present - set(groups))
    datasets: dict[str, bytes] = {}
    spec: Spec = {
        "config": _config(), "data": store_arrow(data, datasets), "mark": {"type": "bar"},
        "encoding": {
            "color": {"field": "tactic_group", "legend": {"columns": 1, "orient": "right"},
                      "scale": {"domain": groups, "range": [charts.TACTIC_GROUP_COLOURS.get(g, charts.MUTED)
                                                            for g in groups]},
                      "title": "Type of force", "type": "nominal"},
            "tooltip": [{"field": "tactic", "title": "Tactic", "type": "nominal"},
                        {"field": "tactic_group", "title": "Type of force", "type": "nominal"},
                        _quantity("reports", "Reports", ","), _quantity("share", "Share of reports", ".1%")],
            "x": {"field": "reports", "title": "Reports using the tactic", "type": "quantitative"},
            "y": {"field": "tactic", "sort": data["tactic"].tolist(), "title": None, "type": "nominal"}},
        "height": max(160, 24 * len(data)), "title": title or "Most-used tactics (reports using each)"}
    return _finish(spec, datasets)
