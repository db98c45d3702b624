"""Chart builders: pure functions from a small aggregate frame to an Altair chart.

Every chart names its counting unit, shows intervals for rates, and greys out groups whose
denominator is too small to read a rate from. One theme, a colour-blind-safe palette.
"""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from lib.analysis.stats import (
    AVERAGE,
    HIGHER,
    LOWER,
    MIN_DENOMINATOR,  # noqa: F401 - the pages and builders read it here too
    TOO_FEW,
)
from lib.model import schema

# Altair validates every schema object against Vega-Lite's schema as it is made, and again each time it
# copies one (layering and concatenation copy every part): a third of a page's chart-building time. A
# finished chart is validated whole by its to_dict(), which the tests call on every builder.
alt.utils.schemapi.disable_debug_mode()

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MAIN, ACCENT, MUTED = "#0072B2", "#D55E00", "#B0B0B0"
FAINT = "#D9D9D9"  # groups too small to judge
PART = "#A6CBE3"  # a month holding only part of its data: MAIN, lighter
TACTIC_GROUP_COLOURS = dict(zip(schema.TACTIC_GROUPS, PALETTE, strict=False))


def drop_hidden(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Return the rows to draw: those disclosure control hid (any of the columns missing) are left out."""
    if "suppressed" not in frame.columns or not len(frame):
        return frame
    missing = frame[[c for c in columns if c in frame.columns]].isna().any(axis=1)
    return frame[~(frame["suppressed"].fillna(False).astype(bool) & missing)]


def _theme() -> dict:
    return {"font": "Source Sans Pro, Arial, sans-serif", "view": {"stroke": None},
            "axis": {"labelFontSize": 12, "titleFontSize": 12, "gridColor": "#EEEEEE"},
            "title": {"fontSize": 15, "anchor": "start", "fontWeight": "bold"},
            "range": {"category": list(PALETTE)},
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom", "labelLimit": 400, "columns": 4}}


def _style(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Apply the shared theme to a chart just built (in place, and returned)."""
    # Set, not chart.configure(...): that deep-copies the whole chart, data included, which was a third
    # of the time a page spent drawing a chart from a new result. (Likewise the builders here name every
    # channel with its class, alt.X2("f") rather than x2="f": Altair turns a bare string into a channel
    # by searching its whole schema, a millisecond or more each time.)
    chart.config = alt.Config(**_theme())
    return chart


def _months(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["month"] = pd.to_datetime(out["month"]).dt.strftime("%Y-%m-%d")
    return out


def mark_part_months(frame: pd.DataFrame, marks: dict) -> pd.DataFrame:
    """Return a monthly frame with a `part_month` note ("Data up to 15 Jun only", else "") from
    `wording.part_month_marks`; the monthly charts draw the months that have one apart. Unchanged if none."""
    if not marks or not len(frame):
        return frame
    months = pd.to_datetime(frame["month"]).dt.date
    notes = months.map(marks).fillna("").astype(str)
    return frame.assign(part_month=notes) if notes.ne("").any() else frame


def _has_part_months(data: pd.DataFrame) -> bool:
    return "part_month" in data.columns and bool(data["part_month"].ne("").any())


def part_tip() -> alt.Tooltip:
    return alt.Tooltip("part_month:N", title="Part month")


def reports_by_month(frame: pd.DataFrame, *, title: str | None = None) -> alt.TopLevelMixin:
    """Draw reports per month as bars (counting unit: reports); a part month (`mark_part_months`) lighter."""
    title = "Reports per month" if title is None else title
    data = _months(drop_hidden(frame, "reports"))
    x = alt.X("yearmonth(month):T", title="Month", axis=alt.Axis(format="%b %Y", labelAngle=-45))
    tooltip = [alt.Tooltip("yearmonth(month):T", title="Month", format="%B %Y"),
               alt.Tooltip("reports:Q", title="Reports", format=",")]
    part = {"color": alt.condition("datum.part_month", alt.value(PART), alt.value(MAIN))} \
        if _has_part_months(data) else {}
    chart = alt.Chart(data, **({"title": title} if title else {})).mark_bar(color=MAIN).encode(
        x=x,
        y=alt.Y("reports:Q", title="Reports (one officer, one subject)"),
        tooltip=tooltip + [part_tip()] if part else tooltip,
        **part,
    )
    hidden = _months(frame[frame["reports"].isna()]) if "suppressed" in frame and len(frame) else frame.iloc[:0]
    if len(hidden):
        # Months whose count disclosure control hid keep their place on the axis, marked, so the bars that
        # remain are not read as the whole year.
        marks = alt.Chart(hidden[["month"]].assign(label="hidden")).mark_text(
            angle=270, align="left", dy=3, color=MUTED, fontSize=11).encode(
            x=x, y=alt.datum(0), text=alt.Text("label:N"),
            tooltip=[alt.Tooltip("yearmonth(month):T", title="Month", format="%B %Y"),
                     alt.Tooltip("label:N", title="Reports")])
        chart = alt.layer(chart, marks)
    return _style(chart.properties(height=260))


def rate_by_month(frame: pd.DataFrame, measure: str = "officer_injured", *,
                  title: str | None = None, unit: str = "reports") -> alt.TopLevelMixin:
    """Draw a monthly harm rate (over answering reports, or incidents: `unit`) as a line with its 95% band."""
    label = schema.HARM_FIELDS[measure]
    data = _months(frame)
    base = alt.Chart(data).encode(
        x=alt.X("yearmonth(month):T", title="Month", axis=alt.Axis(format="%b %Y", labelAngle=-45)))
    band = base.mark_area(opacity=0.25, color=ACCENT).encode(
        y=alt.Y(f"{measure}_low:Q", title=f"% of answering {unit}",
                axis=alt.Axis(format="%")),
        y2=alt.Y2(f"{measure}_high"))
    tooltip = [alt.Tooltip("yearmonth(month):T", title="Month", format="%B %Y"),
               alt.Tooltip(f"{measure}_rate:Q", title=label, format=".1%"),
               alt.Tooltip(f"{measure}_yes:Q", title="Yes", format=","),
               alt.Tooltip(f"{measure}_answered:Q", title=f"{unit.capitalize()} answering", format=","),
               alt.Tooltip(f"{measure}_low:Q", title="95% interval from", format=".1%"),
               alt.Tooltip(f"{measure}_high:Q", title="95% interval to", format=".1%")]
    line = base.mark_line(point=alt.OverlayMarkDef(color=ACCENT), color=ACCENT).encode(
        y=alt.Y(f"{measure}_rate:Q"), tooltip=tooltip)
    layers = [band, line]
    if _has_part_months(data):  # a part month's rate as a hollow point over the filled one
        layers.append(base.mark_point(filled=True, color="white", stroke=ACCENT, strokeWidth=2, size=60,
                                      opacity=1).encode(y=alt.Y(f"{measure}_rate:Q"),
                                                        tooltip=tooltip + [part_tip()])
                      .transform_filter("datum.part_month"))
    title = f"{label} per month, with 95% interval" if title is None else title
    return _style(alt.layer(*layers, **({"title": title} if title else {})).properties(height=260))


# Three panels and their labels fit the page at 1,366 pixels wide (at 220 each the third was cut off).
GROUP_PANEL_WIDTH = 170


def harm_rates_by_group(frame: pd.DataFrame, dimension: str, dimension_label: str, *,
                        title: str | None = None,
                        measures: tuple[str, ...] = ("officer_injured", "officer_assaulted"),
                        per_incident: tuple[str, ...] = (),
                        ) -> alt.TopLevelMixin:
    """Draw reports per group beside each harm rate with its interval; thin groups in grey.

    The measures in `per_incident` count incidents (recorded once per incident), and say so.
    """
    thin = f"Under {MIN_DENOMINATOR} answering: too few to read"
    # One dataset for every panel; each panel leaves out the groups disclosure control hid from it.
    data = frame.assign(**{f"{m}_reliable": np.where(frame[f"{m}_answered"].astype("float64") >= MIN_DENOMINATOR,
                                                     "Enough reports", thin)
                           for m in measures})
    y = alt.Y(f"{dimension}:N", title=dimension_label, sort=frame[dimension].tolist())
    group = alt.Tooltip(f"{dimension}:N", title=dimension_label)
    counts = alt.Chart(title="Reports", width=GROUP_PANEL_WIDTH, transform=[_shown("reports")]).mark_bar(
        color=MAIN).encode(
        y=y, x=alt.X("reports:Q", title="Reports"),
        tooltip=[group, alt.Tooltip("reports:Q", title="Reports", format=",")])
    panels = [counts]
    scale = alt.Scale(domain=["Enough reports", thin], range=[ACCENT, MUTED])
    for measure in measures:
        label = schema.HARM_FIELDS[measure]
        unit = "incidents" if measure in per_incident else "reports"
        colour = alt.Color(f"{measure}_reliable:N", title=None, scale=scale)
        tooltip = [group,
                   alt.Tooltip(f"{measure}_rate:Q", title=label, format=".1%"),
                   alt.Tooltip(f"{measure}_yes:Q", title="Yes", format=","),
                   alt.Tooltip(f"{measure}_answered:Q", title=f"{unit.capitalize()} answering", format=","),
                   alt.Tooltip(f"{measure}_low:Q", title="95% interval from", format=".1%"),
                   alt.Tooltip(f"{measure}_high:Q", title="95% interval to", format=".1%")]
        rule = alt.Chart().mark_rule(strokeWidth=2).encode(
            y=y, x=alt.X(f"{measure}_low:Q", title=f"{label}, % of {unit} (95% interval)" if unit != "reports"
                         else f"{label} (95% interval)", axis=alt.Axis(format="%", tickCount=4)),
            x2=alt.X2(f"{measure}_high"), color=colour, tooltip=tooltip)
        point = alt.Chart().mark_point(filled=True, size=70).encode(
            y=y, x=alt.X(f"{measure}_rate:Q"), color=colour, tooltip=tooltip)
        panel_title = label + (" (per incident)" if unit != "reports" else "")
        panels.append(alt.LayerChart(layer=[rule, point], title=panel_title, width=GROUP_PANEL_WIDTH,
                                     transform=[_shown(f"{measure}_rate")]))
    chart = alt.HConcatChart(hconcat=panels, data=data, resolve=alt.Resolve(scale=alt.ScaleResolveMap(y="shared")),
                             **({"title": title} if title else {}))
    return _style(chart)


def _shown(column: str) -> alt.FilterTransform:
    """Keep the rows a panel draws: as drop_hidden(frame, column), in the browser."""
    return alt.FilterTransform(filter=f"!datum.suppressed || isValid(datum['{column}'])")


def most_used_tactics(frame: pd.DataFrame, *, top: int = 12,
                      title: str | None = None) -> alt.TopLevelMixin:
    """Draw the tactics used in most reports, coloured by Home Office type of force."""
    data = drop_hidden(frame.head(top), "reports").copy()
    groups = [g for g in schema.TACTIC_GROUPS if g in set(data["tactic_group"])]
    groups += sorted(set(data["tactic_group"]) - set(groups))
    chart = alt.Chart(data, title=title or "Most-used tactics (reports using each)").mark_bar().encode(
        y=alt.Y("tactic:N", title=None, sort=data["tactic"].tolist()),
        x=alt.X("reports:Q", title="Reports using the tactic"),
        color=alt.Color("tactic_group:N", title="Type of force",
                        legend=alt.Legend(orient="right", columns=1),
                        scale=alt.Scale(domain=groups,
                                        range=[TACTIC_GROUP_COLOURS.get(g, MUTED) for g in groups])),
        tooltip=[alt.Tooltip("tactic:N", title="Tactic"),
                 alt.Tooltip("tactic_group:N", title="Type of force"),
                 alt.Tooltip("reports:Q", title="Reports", format=","),
                 alt.Tooltip("share:Q", title="Share of reports", format=".1%")],
    ).properties(height=max(160, 24 * len(data)))
    return _style(chart)


def completeness_by_field(frame: pd.DataFrame, *, title: str | None = None) -> alt.TopLevelMixin:
    """Draw the share of reports answering each field, least complete first."""
    data = drop_hidden(frame, "share", "answered", "total")
    data = data.assign(missing=1 - data["share"], field=data["field"].map(lambda f: schema.FIELD_LABELS.get(f, f)))
    chart = alt.Chart(data, **({"title": title} if title else {})).mark_bar(color=MAIN).encode(
        y=alt.Y("field:N", title=None, sort=data["field"].tolist()),
        x=alt.X("share:Q", title="Share of reports answering", axis=alt.Axis(format="%", tickCount=5),
                scale=alt.Scale(domain=[0, 1])),
        color=alt.ColorValue(MAIN, condition={"test": "(datum.share < 0.9)", "value": ACCENT}),
        tooltip=[alt.Tooltip("field:N", title="Field"),
                 alt.Tooltip("answered:Q", title="Reports answering", format=","),
                 alt.Tooltip("total:Q", title="Reports it applies to", format=","),
                 alt.Tooltip("share:Q", title="Answered", format=".1%")],
    ).properties(height=max(160, 18 * len(data)))
    return _style(chart)


def monthly_coverage(frame: pd.DataFrame, *, title: str | None = None) -> alt.TopLevelMixin:
    """Draw reports per month, marking months with no reports or far fewer than usual."""
    data = _months(drop_hidden(frame, "reports")).assign(
        status=lambda d: np.select([d["gap"].fillna(False).astype(bool), d["thin"].fillna(False).astype(bool)],
                                   ["No reports", "Far fewer than usual"], "Typical"))
    domain = ["Typical", "Far fewer than usual", "No reports"]
    chart = alt.Chart(data, **({"title": title} if title else {})).mark_bar().encode(
        x=alt.X("yearmonth(month):T", title="Month", axis=alt.Axis(format="%b %Y", labelAngle=-45)),
        y=alt.Y("reports:Q", title="Reports"),
        color=alt.Color("status:N", title=None, scale=alt.Scale(domain=domain, range=[MAIN, ACCENT, "#000000"])),
        tooltip=[alt.Tooltip("yearmonth(month):T", title="Month", format="%B %Y"),
                 alt.Tooltip("reports:Q", title="Reports", format=","),
                 alt.Tooltip("share_of_median:Q", title="Of a typical month", format=".0%"),
                 alt.Tooltip("status:N", title="Status")],
    ).properties(height=220)
    return _style(chart)


# A funnel's volume axis: labels that would touch ("1,0001,100" at 1,366 pixels) are left out, not overlapped.
VOLUME_AXIS = alt.Axis(format=",d", labelOverlap="greedy", labelSeparation=12, tickCount=8)


def rate_heatmap(frame: pd.DataFrame, rows: str, cols: str, row_label: str, col_label: str, measure_label: str, *,
                 title: str | None = None, row_order: list | None = None,
                 col_order: list | None = None, unit: str = "reports") -> alt.TopLevelMixin:
    """Draw a rate per 100 reports (or incidents: `unit`) for each cell of two dimensions; thin cells are grey."""
    # Cells disclosure control hid stay in the grid, grey and marked, so the grid keeps its shape.
    data = frame.copy()
    hidden = data["per_100"].isna() & data.get("suppressed", pd.Series(False, index=data.index)).fillna(False)
    data["enough"] = data["enough"].fillna(False).astype(bool) & ~hidden
    data["label"] = np.where(data["enough"], data["per_100"].round(1).astype(str), np.where(hidden, "hidden", ""))
    # Colour from a copy with no gaps: Vega-Lite drops a mark whose colour field is empty, and a hidden cell
    # must still be drawn (grey). The tooltip keeps the real, possibly empty, value.
    data["shade"] = data["per_100"].where(data["enough"], 0.0)
    # White numbers on the darkest cells: black on dark red could not be read.
    top = float(data["shade"].max()) if len(data) else 0.0
    data["dark"] = data["shade"] > 0.6 * top if top > 0 else False
    tooltip = [alt.Tooltip(f"{rows}:O", title=row_label), alt.Tooltip(f"{cols}:O", title=col_label),
               alt.Tooltip("per_100:Q", title=f"{measure_label} per 100 {unit}", format=".1f"),
               alt.Tooltip("low_100:Q", title="95% interval from", format=".1f"),
               alt.Tooltip("high_100:Q", title="95% interval to", format=".1f"),
               alt.Tooltip("yes:Q", title="Yes", format=","),
               alt.Tooltip("answered:Q", title=f"{unit.capitalize()} answering", format=",")]
    base = alt.Chart(data, **({"title": title} if title else {})).encode(
        x=alt.X(f"{cols}:O", title=col_label, sort=col_order, axis=alt.Axis(labelAngle=0)),
        y=alt.Y(f"{rows}:O", title=row_label, sort=row_order), tooltip=tooltip)
    cells = base.mark_rect(stroke="white").encode(
        color=alt.ColorValue("#E5E5E5", condition={
            "test": "datum.enough", "field": "shade", "type": "quantitative",
            "title": f"{measure_label} per 100 {unit}", "scale": {"scheme": "orangered", "zero": True}}))
    text = base.mark_text(fontSize=11).encode(text=alt.Text("label:N"),
                                              color=alt.condition("datum.dark", alt.value("white"), alt.value("black")))
    # Streamlit fits the whole chart (axes and the legend below) into the height: leave room for them.
    return _style((cells + text).properties(height=max(120, 28 * data[rows].nunique()) + 110))


def ratio_domain(drawn: pd.DataFrame) -> list[float]:
    """Return a forest plot's log axis: the intervals drawn and 1 (no difference), a little room either side.

    Vega-Lite's own log axis rounds out to whole powers of ten: ratios of 1.1 to 1.6 drew on an axis to 10,
    squeezed into its first third.
    """
    ends = pd.to_numeric(pd.concat([drawn.get("ci_low", pd.Series(dtype=float)),
                                    drawn.get("ci_high", pd.Series(dtype=float))]), errors="coerce")
    ends = ends[np.isfinite(ends) & (ends > 0)]
    low, high = min(float(ends.min()) if len(ends) else 0.8, 1.0), max(float(ends.max()) if len(ends) else 1.25, 1.0)
    return [round(low / 1.12, 4), round(high * 1.12, 4)]


def forest_plot(frame: pd.DataFrame, measure_label: str, *, title: str | None = None,
                unit: str = "reports") -> alt.TopLevelMixin:
    """Draw rate ratios against each dimension's reference with 95% intervals on a log scale.

    Only compared groups get a point and an interval. A group under the minimum volume, or with no events, is
    listed with its reason in grey at the line of no difference, never drawn as an estimate.
    """
    from lib.analysis import adjust

    frame = drop_hidden(frame, "ratio", "ci_low", "ci_high")
    status = adjust.ratio_status(frame)
    # Tactics are each compared with the reports not using them: say it once in the axis title, so the labels
    # ("Using CED fired") fit instead of being cut short by a repeated "vs not using it".
    using = bool(len(frame)) and bool((frame["reference"].astype(str) == "not using it").all())
    data = frame.assign(label=frame["group"] if using else frame["group"] + " vs " + frame["reference"],
                        status=status)
    data = data[data["status"] != adjust.REFERENCE]
    drawn = data[data["status"] == adjust.COMPARED]
    listed = data[data["status"] != adjust.COMPARED].assign(one=1.0)
    listed = listed.assign(label=listed["label"] + " (" + listed["status"] + ")")
    labels = [*drawn["label"], *listed["label"]]
    counts = [alt.Tooltip("yes:Q", title=f"Yes (group, {unit})", format=","),
              alt.Tooltip("answered:Q", title=f"{unit.capitalize()} answering (group)", format=","),
              alt.Tooltip("reference_yes:Q", title=f"Yes (reference, {unit})", format=","),
              alt.Tooltip("reference_answered:Q", title=f"{unit.capitalize()} answering (reference)", format=",")]
    tooltip = [alt.Tooltip("label:N", title="Comparison"),
               alt.Tooltip("ratio:Q", title="Rate ratio", format=".2f"),
               alt.Tooltip("ci_low:Q", title="95% interval from", format=".2f"),
               alt.Tooltip("ci_high:Q", title="95% interval to", format=".2f"), *counts]
    basis = adjust.basis_of(frame)
    x = alt.X("ci_low:Q", scale=alt.Scale(type="log", domain=ratio_domain(drawn), nice=False),
              title=f"{measure_label}: rate ratio{', each against reports not using it' if using else ''}, {basis} "
                    f"(counting unit: {unit}; log scale, 95% interval)")
    y = alt.Y("label:N", title=None, sort=labels, scale=alt.Scale(domain=labels), axis=alt.Axis(labelLimit=360))
    rules = alt.Chart(drawn).mark_rule(strokeWidth=2, color=ACCENT).encode(
        y=y, x=x, x2=alt.X2("ci_high"), tooltip=tooltip)
    points = alt.Chart(drawn).mark_point(filled=True, size=70, color=ACCENT).encode(
        y=y, x=alt.X("ratio:Q"), tooltip=tooltip)
    notes = alt.Chart(listed).mark_text(align="left", dx=6, color=MUTED, fontStyle="italic").encode(
        y=y, x=alt.X("one:Q"), text=alt.Text("status:N"),
        tooltip=[alt.Tooltip("label:N", title="Comparison"), alt.Tooltip("status:N", title="Not compared"),
                 *counts])
    one = alt.Chart(pd.DataFrame({"one": [1.0]})).mark_rule(color="#555555", strokeDash=[4, 4]).encode(
        x=alt.X("one:Q"))
    chart = alt.layer(rules, points, notes, one, **({"title": title} if title else {}))
    return _style(chart.properties(height=max(120, 24 * len(labels))))


def funnel_plot(points: pd.DataFrame, limits: pd.DataFrame, level_label: str, measure_label: str, *,
                title: str | None = None) -> alt.TopLevelMixin:
    """Draw each group's rate against its volume inside the 95% and 99.8% limits; small groups grey, not judged."""
    expected = "basis" in points.columns and len(points) and str(points["basis"].iloc[0]) == "expected"
    x_field, y_field = ("model_expected", "ratio") if expected else ("answered", "rate")
    x_title = (f"Expected {measure_label.lower()} count from the case-mix model, per {level_label}" if expected
               else f"Reports answering per {level_label} (volume)")
    y_title = (f"{measure_label}: observed / expected (reports)" if expected
               else f"{measure_label} (% of answering reports)")
    y_axis = alt.Axis(format=".2f") if expected else alt.Axis(format="%")
    # The limits shoot up where the volume (or expected count) is tiny, and so do the rates of groups too small to
    # judge (1 event where 0.02 were expected is an O / E of 50): an axis stretched to them squashes every judged
    # group flat along the bottom. The ceiling leaves room above the highest judged group and twice the target;
    # the limit lines and the small groups above it are cut there, and the chart says how many were cut.
    visible = drop_hidden(points, y_field, "answered")
    ys = pd.to_numeric(visible[y_field], errors="coerce")
    small = ~(visible["judged"].fillna(False).astype(bool) if "judged" in visible.columns
              else visible["flag"] != TOO_FEW)
    target = float(limits["overall"].iloc[0]) if len(limits) else 0.0
    judged_ys = ys[~small].dropna()
    top = max(float(judged_ys.max()) if len(judged_ys) else 0.0, 2 * target) * 1.1 or 1.0
    top = min(top, 1.0) if not expected else top
    y_scale = alt.Scale(domain=[0, top], nice=False)
    above = int((ys[small] > top).sum())
    if above and title is None:
        title = alt.TitleParams(text=f"{above:,} {level_label}{'s' if above != 1 else ''} too small to judge "
                                     f"{'lie' if above != 1 else 'lies'} above the top of the axis (see the table)",
                                anchor="start", fontSize=12, fontWeight="normal", color=MUTED)
    lines = limits.melt(id_vars=["denominator"], value_vars=["low_95", "high_95", "low_998", "high_998"],
                        var_name="limit", value_name="rate")
    lines["band"] = np.where(lines["limit"].str.endswith("998"), "99.8% limits", "95% limits")
    limit_lines = alt.Chart(lines).mark_line(strokeDash=[4, 3], clip=True).encode(
        x=alt.X("denominator:Q", title=x_title, axis=VOLUME_AXIS),
        y=alt.Y("rate:Q", title=y_title, axis=y_axis, scale=y_scale),
        detail=alt.Detail("limit:N"),
        color=alt.Color("band:N", title=None, scale=alt.Scale(domain=["95% limits", "99.8% limits"],
                                                              range=["#999999", "#333333"])))
    overall = alt.Chart(pd.DataFrame({"overall": [float(limits["overall"].iloc[0])]})).mark_rule(
        color=MAIN).encode(y=alt.Y("overall:Q"))
    shown = drop_hidden(points, y_field, "answered")
    judged = (shown["judged"].fillna(False).astype(bool) if "judged" in shown.columns
              else shown["flag"] != TOO_FEW)
    tooltip = [alt.Tooltip("group:N", title=level_label.capitalize()),
               alt.Tooltip("rate:Q", title=measure_label, format=".1%"),
               alt.Tooltip("yes:Q", title="Yes", format=","),
               alt.Tooltip("answered:Q", title="Reports answering", format=","),
               alt.Tooltip("expected:Q", title="Expected at the target", format=",.1f"),
               alt.Tooltip("flag:N", title="Verdict")]
    tooltip += [alt.Tooltip(f"{c}:Q", title=t, format=".2g") for c, t in
                (("p_value", "One-sided mid-p"), ("q_value", "False discovery rate (q)")) if c in shown.columns]
    dots = alt.Chart(shown[judged]).mark_circle(size=45, opacity=0.8).encode(
        x=alt.X(f"{x_field}:Q"), y=alt.Y(f"{y_field}:Q"),
        color=alt.Color("flag:N", title=None, scale=alt.Scale(
            domain=[HIGHER, AVERAGE, LOWER, TOO_FEW], range=[ACCENT, MUTED, MAIN, FAINT])),
        tooltip=tooltip)
    # Groups under the minimum volume: drawn, hollow and faint, never coloured by a verdict.
    few = alt.Chart(shown[~judged]).mark_point(size=35, filled=False, color=FAINT, clip=True).encode(
        x=alt.X(f"{x_field}:Q"), y=alt.Y(f"{y_field}:Q"), tooltip=tooltip)
    chart = alt.layer(limit_lines, overall, few, dots, **({"title": title} if title else {}))
    chart = chart.resolve_scale(color="independent")
    return _style(chart.properties(height=360))


def training_event_study(frame: pd.DataFrame, measure_label: str, *, title: str | None = None) -> alt.TopLevelMixin:
    """Draw the change in a rate by months since training against the comparison officers, with 95% intervals."""
    frame = drop_hidden(frame, "estimate", "officers", "events")
    data = frame.assign(after=np.where(frame["months_since_training"] > 0, "After training", "Before training"))
    tooltip = [alt.Tooltip("months_since_training:Q", title="Months since training"),
               alt.Tooltip("estimate:Q", title="Change", format="+.1%"),
               alt.Tooltip("ci_low:Q", title="95% interval from", format="+.1%"),
               alt.Tooltip("ci_high:Q", title="95% interval to", format="+.1%"),
               alt.Tooltip("officers:Q", title="Officers", format=","),
               alt.Tooltip("events:Q", title="Events", format=",")]
    x = alt.X("months_since_training:Q", title="Months since training (0, the training month, is left out)",
              axis=alt.Axis(tickMinStep=1, format="d"))
    colour = alt.Color("after:N", title=None, scale=alt.Scale(domain=["Before training", "After training"],
                                                              range=[MUTED, ACCENT]))
    rules = alt.Chart(data).mark_rule(strokeWidth=2).encode(
        x=x, y=alt.Y("ci_low:Q", title=f"Change in {measure_label} per 1,000 shifts", axis=alt.Axis(format="%")),
        y2=alt.Y2("ci_high"), color=colour, tooltip=tooltip)
    points = alt.Chart(data).mark_point(filled=True, size=60).encode(x=x, y=alt.Y("estimate:Q"), color=colour,
                                                                     tooltip=tooltip)
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="#555555", strokeDash=[4, 4]).encode(
        y=alt.Y("zero:Q"))
    chart = alt.layer(rules, points, zero, **({"title": title} if title else {}))
    return _style(chart.properties(height=280))


def compliance_by_group(frame: pd.DataFrame, group: str, group_label: str, *,
                        title: str | None = None) -> alt.TopLevelMixin:
    """Draw the share of officers meeting the hours standard per group, with 95% intervals."""
    data = drop_hidden(frame, "share_compliant", "officers")
    y = alt.Y(f"{group}:N", title=group_label, sort=data[group].tolist())
    tooltip = [alt.Tooltip(f"{group}:N", title=group_label),
               alt.Tooltip("share_compliant:Q", title="Meeting the standard", format=".0%"),
               alt.Tooltip("compliant:Q", title="Officers meeting it", format=","),
               alt.Tooltip("officers:Q", title="Officers", format=","),
               alt.Tooltip("mean_hours:Q", title="Mean hours in 12 months", format=".1f")]
    bars = alt.Chart(data).mark_bar(color=MAIN).encode(
        y=y, x=alt.X("share_compliant:Q", title="Officers meeting the 12-hour standard (share, 95% interval)",
                     axis=alt.Axis(format="%", tickCount=5), scale=alt.Scale(domain=[0, 1])), tooltip=tooltip)
    rules = alt.Chart(data).mark_rule(color="#333333").encode(y=y, x=alt.X("low:Q"), x2=alt.X2("high"), tooltip=tooltip)
    chart = alt.layer(bars, rules, **({"title": title} if title else {}))
    return _style(chart.properties(height=max(120, 24 * len(data))))
