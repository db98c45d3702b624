"""Tactics, drawn and tabled: pure chart builders and table builders over the frames of lib/analysis/tactics.py.

Chart builders are `(frame, *, title=None) -> chart`; table builders rename an aggregate for people to read.
A report is one officer's use of force on one subject; a report can record several tactics, so counts per
tactic do not add up to the number of reports.
"""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from lib.analysis.tactics import INJURY_MEASURES, _group_order
from lib.model import schema
from lib.present.charts import (
    ACCENT,
    MAIN,
    MIN_DENOMINATOR,
    MUTED,
    TACTIC_GROUP_COLOURS,
    _has_part_months,
    _style,
    drop_hidden,
    part_tip,
)
from lib.present.tables import counts

ENOUGH = "Enough answers"


TOO_FEW = f"Under {MIN_DENOMINATOR} answering: too few to read"


def _group_scale(groups: list[str]) -> alt.Scale:
    return alt.Scale(domain=groups, range=[TACTIC_GROUP_COLOURS.get(g, MUTED) for g in groups])


def _reliability(answered: pd.Series) -> pd.Series:
    return (answered >= MIN_DENOMINATOR).map({True: ENOUGH, False: TOO_FEW})


RELIABILITY_DOMAIN = [ENOUGH, TOO_FEW]


def _title(title: str | None, default: str) -> dict[str, str]:
    """Return chart keyword arguments for a title: the default when None, none when empty."""
    title = default if title is None else title
    return {"title": title} if title else {}


def _percent(values: pd.Series, digits: int = 1) -> pd.Series:
    return (values * 100).round(digits)


def tactic_use_by_month(frame: pd.DataFrame, *, measure: str = "reports",
                        title: str | None = None) -> alt.TopLevelMixin:
    """Draw reports (or the share of reports) using each type of force per month, a line per type."""
    data = frame.assign(month=pd.to_datetime(frame["month"]).dt.strftime("%Y-%m-%d"))
    groups = _group_order(data["tactic_group"])
    share = measure == "share"
    y_title = "Share of the month's reports using it" if share else "Reports using the type of force"
    default = ("Share of reports using each type of force per month" if share
               else "Reports using each type of force per month")
    tooltip = [alt.Tooltip("yearmonth(month):T", title="Month", format="%B %Y"),
               alt.Tooltip("tactic_group:N", title="Type of force"),
               alt.Tooltip("reports:Q", title="Reports using it", format=","),
               alt.Tooltip("total_reports:Q", title="Reports that month", format=","),
               alt.Tooltip("share:Q", title="Share of the month's reports", format=".1%")]
    encoding = {"x": alt.X("yearmonth(month):T", title="Month", axis=alt.Axis(format="%b %Y", labelAngle=-45)),
                "y": alt.Y(f"{measure}:Q", title=y_title,
                           axis=alt.Axis(format="%") if share else alt.Axis(tickMinStep=1)),
                "color": alt.Color("tactic_group:N", title="Type of force", scale=_group_scale(groups),
                                   legend=alt.Legend(orient="right", columns=1))}
    if not _has_part_months(data):
        return _style(alt.Chart(data, **_title(title, default)).mark_line(point=True).encode(
            **encoding, tooltip=tooltip).properties(height=300))
    # A month holding part of its data (charts.mark_part_months): its points hollow, the note in their tooltip.
    lines = alt.Chart(data).mark_line(point=True).encode(**encoding, tooltip=tooltip)
    hollow = alt.Chart(data).mark_point(filled=True, fill="white", strokeWidth=2, size=60, opacity=1).encode(
        **encoding, stroke=alt.Stroke("tactic_group:N", scale=_group_scale(groups), legend=None),
        tooltip=[*tooltip, part_tip()]).transform_filter("datum.part_month")
    return _style(alt.layer(lines, hollow, **_title(title, default)).properties(height=300))


def use_over_time_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return monthly use per type of force with readable headings."""
    part = {"Part month": frame["part_month"]} if "part_month" in frame.columns else {}
    return pd.DataFrame({
        "Month": pd.to_datetime(frame["month"]).dt.strftime("%b %Y"),
        **part,
        "Type of force": frame["tactic_group"],
        "Reports using it": counts(frame["reports"]),
        "Reports that month": counts(frame["total_reports"]),
        "Share of the month's reports (%)": _percent(frame["share"], 2),
    })


def effectiveness_by_tactic(frame: pd.DataFrame, *, title: str | None = None) -> alt.TopLevelMixin:
    """Draw the share of tactic uses recorded effective, with 95% intervals; thin tactics in grey."""
    data = frame[frame["answered"] > 0].assign(reliable=lambda d: _reliability(d["answered"]))
    y = alt.Y("tactic:N", title=None, sort=data["tactic"].tolist())
    colour = alt.Color("reliable:N", title=None, scale=alt.Scale(domain=RELIABILITY_DOMAIN, range=[MAIN, MUTED]))
    tooltip = [alt.Tooltip("tactic:N", title="Tactic"),
               alt.Tooltip("tactic_group:N", title="Type of force"),
               alt.Tooltip("rate:Q", title="Recorded effective", format=".1%"),
               alt.Tooltip("effective_yes:Q", title="Uses recorded effective", format=","),
               alt.Tooltip("answered:Q", title="Uses with an answer", format=","),
               alt.Tooltip("low:Q", title="95% interval from", format=".1%"),
               alt.Tooltip("high:Q", title="95% interval to", format=".1%"),
               alt.Tooltip("unanswered_share:Q", title="Uses not answered", format=".1%")]
    floor = _effective_floor(data)
    x_title = "Uses recorded effective, of uses with an answer (95% interval)"
    if floor > 0:
        x_title += f"; axis starts at {floor:.0%}"
    x_scale = alt.Scale(domain=[floor, 1])
    rule = alt.Chart(data).mark_rule(strokeWidth=2, clip=True).encode(
        y=y, x=alt.X("low:Q", title=x_title, axis=alt.Axis(format="%", tickCount=8), scale=x_scale),
        x2="high:Q", color=colour, tooltip=tooltip)
    point = alt.Chart(data).mark_point(filled=True, size=70, clip=True).encode(
        y=y, x=alt.X("rate:Q", scale=x_scale), color=colour, tooltip=tooltip)
    default = "How often each tactic was recorded effective (counting unit: tactic uses)"
    chart = alt.layer(rule, point, **_title(title, default)).properties(height=max(160, 22 * len(data)))
    return _style(chart)


def _effective_floor(frame: pd.DataFrame) -> float:
    """Return where the effectiveness axis starts: a round 10% below every readable interval.

    Effectiveness sits near 90% for most tactics; a 0-100% axis would hide every difference. Points
    and intervals (not bars) can start above zero, and the axis title says where it starts.
    """
    readable = frame.loc[frame["answered"] >= MIN_DENOMINATOR, "low"].dropna()
    if readable.empty:
        return 0.0
    return float(max(0.0, np.floor(readable.min() * 10) / 10 - 0.1))


def effectiveness_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return effectiveness per tactic with readable headings."""
    return pd.DataFrame({
        "Tactic": frame["tactic"],
        "Type of force": frame["tactic_group"],
        "Uses": counts(frame["uses"]),
        "Recorded effective": counts(frame["effective_yes"]),
        "Uses with an answer": counts(frame["answered"]),
        "Effective (%)": _percent(frame["rate"]),
        "95% from (%)": _percent(frame["low"]),
        "95% to (%)": _percent(frame["high"]),
        "Not answered (%)": _percent(frame["unanswered_share"]),
    })


def injury_rate_when_used(frame: pd.DataFrame, *, measures: tuple[str, ...] = INJURY_MEASURES,
                          label: str = "Tactic", title: str | None = None) -> alt.TopLevelMixin:
    """Draw reports using each tactic beside the injury rates among them, with intervals and the overall rate."""
    data = frame.copy()
    order = data["tactic"].tolist()
    bars = alt.Chart(drop_hidden(data, "reports")).mark_bar(color=MAIN).encode(
        y=alt.Y("tactic:N", title=None, sort=order, axis=alt.Axis(labelLimit=220)),
        x=alt.X("reports:Q", title="Reports using it", axis=alt.Axis(tickMinStep=1)),
        tooltip=[alt.Tooltip("tactic:N", title=label), alt.Tooltip("reports:Q", title="Reports", format=",")],
    ).properties(width=190, title="Reports using it")
    panels = [bars]
    # Rate panels share the first panel's rows, so they drop the repeated labels to fit the page.
    y = alt.Y("tactic:N", title=None, sort=order, axis=None)
    for measure in measures:
        name = schema.HARM_FIELDS[measure]
        m = data.assign(reliable=_reliability(data[f"{measure}_answered"]))
        m = drop_hidden(m[m[f"{measure}_answered"] > 0], f"{measure}_rate")
        colour = alt.Color("reliable:N", title=None,
                           scale=alt.Scale(domain=RELIABILITY_DOMAIN, range=[ACCENT, MUTED]))
        tooltip = [alt.Tooltip("tactic:N", title=label),
                   alt.Tooltip(f"{measure}_rate:Q", title=name, format=".1%"),
                   alt.Tooltip(f"{measure}_yes:Q", title="Injured", format=","),
                   alt.Tooltip(f"{measure}_answered:Q", title="Reports answering", format=","),
                   alt.Tooltip(f"{measure}_low:Q", title="95% interval from", format=".1%"),
                   alt.Tooltip(f"{measure}_high:Q", title="95% interval to", format=".1%"),
                   alt.Tooltip(f"{measure}_overall:Q", title="All reports in view", format=".1%")]
        scale = alt.Scale(domain=[0, _rate_edge(m, measure)])
        x = alt.X(f"{measure}_low:Q", title="% of reports answering (95% interval)",
                  axis=alt.Axis(format="%", tickCount=5), scale=scale)
        rule = alt.Chart(m).mark_rule(strokeWidth=2, clip=True).encode(
            y=y, x=x, x2=f"{measure}_high:Q", color=colour, tooltip=tooltip)
        point = alt.Chart(m).mark_point(filled=True, size=70, clip=True).encode(
            y=y, x=alt.X(f"{measure}_rate:Q", scale=scale), color=colour, tooltip=tooltip)
        # The dashed line is the rate over all reports in view: the yardstick for each tactic.
        yardstick = m[m[f"{measure}_overall"].notna()].head(1)
        overall = alt.Chart(yardstick).mark_rule(strokeDash=[4, 3], color="#555555").encode(
            x=alt.X(f"{measure}_overall:Q", scale=scale),
            tooltip=[alt.Tooltip(f"{measure}_overall:Q", title=f"{name}, all reports in view", format=".1%")])
        panels.append((overall + rule + point).properties(width=230, title=name))
    default = f"Injuries in reports using each {label.lower()} (counting unit: reports)"
    chart = alt.hconcat(*panels, **_title(title, default)).resolve_scale(y="shared")
    return _style(chart.properties(spacing=16))


def _rate_edge(frame: pd.DataFrame, measure: str) -> float:
    """Return the right edge of a rate axis: room for every readable interval and the overall rate.

    Intervals resting on too few answers can span most of 0-100%; letting them set the scale would
    squeeze every readable rate against zero, so they run off the edge instead (clipped, still hoverable).
    """
    readable = frame[frame[f"{measure}_answered"] >= MIN_DENOMINATOR]
    values = [*readable[f"{measure}_high"].dropna(), *frame[f"{measure}_overall"].dropna()]
    if readable.empty or not values:
        return 1.0
    return float(min(1.0, max(0.05, max(values) * 1.15)))


def harm_table(frame: pd.DataFrame, *, label: str = "Tactic") -> pd.DataFrame:
    """Return reports and injury rates per tactic (or type of force) with readable headings."""
    out = pd.DataFrame({label: frame["tactic"]})
    if label == "Tactic":
        out["Type of force"] = frame["tactic_group"]
    out["Reports using it"] = counts(frame["reports"])
    for col in INJURY_MEASURES:
        name = schema.HARM_FIELDS[col]
        out[f"{name}: injured"] = counts(frame[f"{col}_yes"])
        out[f"{name}: answered"] = counts(frame[f"{col}_answered"])
        out[f"{name} (%)"] = _percent(frame[f"{col}_rate"])
        out[f"{name}: 95% from (%)"] = _percent(frame[f"{col}_low"])
        out[f"{name}: 95% to (%)"] = _percent(frame[f"{col}_high"])
        out[f"{name}: all reports in view (%)"] = _percent(frame[f"{col}_overall"])
    return out


def tactic_co_occurrence(frame: pd.DataFrame, *, title: str | None = None) -> alt.TopLevelMixin:
    """Draw a heatmap: of reports using the row tactic, the share also using the column tactic."""
    order = list(dict.fromkeys(frame["tactic"]))
    data = frame.assign(
        row=lambda d: d["tactic"] + " (" + d["tactic_reports"].map(_count_label) + ")",
        diagonal=lambda d: d["tactic"] == d["other"],
        reliable=lambda d: _reliability(d["tactic_reports"]),
        label=lambda d: [("" if pd.isna(s) else "<1%" if 0 < s < 0.005 else f"{s * 100:.0f}%") for s in d["share"]],
        dark=lambda d: (d["share"] > 0.55) & (d["reliable"] == ENOUGH),
    )
    rows = list(dict.fromkeys(data["row"]))
    off = drop_hidden(data[~data["diagonal"]], "share", "both")
    x = alt.X("other:N", title="…also using this tactic", sort=order,
              axis=alt.Axis(labelAngle=-35, orient="top", labelLimit=180))
    y = alt.Y("row:N", title="Of reports using this tactic (reports)", sort=rows, axis=alt.Axis(labelLimit=260))
    tooltip = [alt.Tooltip("tactic:N", title="Reports using"),
               alt.Tooltip("tactic_reports:Q", title="Reports using it", format=","),
               alt.Tooltip("other:N", title="Also using"),
               alt.Tooltip("both:Q", title="Reports using both", format=","),
               alt.Tooltip("share:Q", title="Share also using it", format=".1%"),
               alt.Tooltip("reliable:N", title="Reliability")]
    filled = alt.Chart(off[off["reliable"] == ENOUGH]).mark_rect().encode(
        x=x, y=y, tooltip=tooltip,
        color=alt.Color("share:Q", title="Of the row's reports, share also using the column's tactic",
                        scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        legend=alt.Legend(format="%", orient="bottom", gradientLength=300, titleLimit=500)))
    # Thin rows are a pale grey so their labels stay legible; their shares are too noisy to colour.
    thin = alt.Chart(off[off["reliable"] == TOO_FEW]).mark_rect(color=MUTED, opacity=0.5).encode(
        x=x, y=y, tooltip=tooltip)
    diagonal = alt.Chart(data[data["diagonal"]]).mark_rect(color="#F4F4F4").encode(x=x, y=y)
    text = alt.Chart(off).mark_text(fontSize=11).encode(
        x=x, y=y, text="label:N", tooltip=tooltip,
        color=alt.condition(alt.datum.dark, alt.value("white"), alt.value("#222222")))
    default = "Of reports using one tactic, the share also using another (counting unit: reports)"
    chart = alt.layer(diagonal, thin, filled, text, **_title(title, default)).properties(height=alt.Step(28))
    return _style(chart)


def _count_label(value: float) -> str:
    return "count hidden" if pd.isna(value) else f"{int(value):,}"


def co_occurrence_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return each pair of different tactics with its counts and conditional share."""
    pairs = frame[frame["tactic"] != frame["other"]]
    return pd.DataFrame({
        "Reports using": pairs["tactic"],
        "Reports using it": counts(pairs["tactic_reports"]),
        "Also using": pairs["other"],
        "Reports using both": counts(pairs["both"]),
        "Share also using it (%)": _percent(pairs["share"]),
    }).reset_index(drop=True)


def taser_ladder_shares(frame: pd.DataFrame, *, title: str | None = None) -> alt.TopLevelMixin:
    """Draw the share of CED reports at each highest level, drawn to angle drive-stun, with share labels."""
    first = frame["ced_reports"].iloc[0] if len(frame) else 0
    ced_reports = int(first) if pd.notna(first) else 0
    data = drop_hidden(frame, "share", "reports")
    data = data.assign(label=[f"{s:.1%} ({int(r):,})" for s, r in zip(data["share"], data["reports"], strict=True)])
    top = float(data["share"].max()) if ced_reports and len(data) else 1.0
    y = alt.Y("level:N", title="Highest CED use", sort=list(schema.CED_LADDER))
    tooltip = [alt.Tooltip("level:N", title="Highest CED use"),
               alt.Tooltip("reports:Q", title="Reports", format=","),
               alt.Tooltip("share:Q", title="Share of CED reports", format=".1%"),
               alt.Tooltip("at_least:Q", title="Reaching at least this level", format=".1%"),
               alt.Tooltip("ced_reports:Q", title="CED reports", format=",")]
    thin = ced_reports < MIN_DENOMINATOR
    colour = MUTED if thin else TACTIC_GROUP_COLOURS["Less lethal weapons"]
    x_title = (f"Share of the {ced_reports:,} reports using CED" if pd.notna(first)
               else "Share of the reports using CED (count hidden: too few)")
    if thin:
        x_title += f" (under {MIN_DENOMINATOR}: too few to read)"
    bars = alt.Chart(data).mark_bar(color=colour).encode(
        y=y, x=alt.X("share:Q", title=x_title,
                     axis=alt.Axis(format="%", tickCount=6),
                     scale=alt.Scale(domain=[0, min(1.0, top * 1.25) or 1.0])),
        tooltip=tooltip)
    text = alt.Chart(data).mark_text(align="left", dx=4, fontSize=12).encode(
        y=y, x="share:Q", text="label:N", tooltip=tooltip)
    default = "CED (Taser) reports by their highest use (counting unit: reports using CED)"
    return _style(alt.layer(bars, text, **_title(title, default)).properties(height=240))


def ladder_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the CED ladder with readable headings."""
    return pd.DataFrame({
        "Highest CED use": frame["level"],
        "Reports": counts(frame["reports"]),
        "Share of CED reports (%)": _percent(frame["share"]),
        "95% from (%)": _percent(frame["share_low"]),
        "95% to (%)": _percent(frame["share_high"]),
        "Reaching at least this level (%)": _percent(frame["at_least"]),
    })


def ladder_sentence(frame: pd.DataFrame) -> str:
    """Say how many reports used CED, of how many, with the share's 95% interval."""
    row = frame.iloc[0]
    if pd.isna(row["all_reports"]):
        return "Too few reports in view to show how many used CED (Taser)."
    if pd.isna(row["ced_reports"]):
        return f"Too few of the {int(row['all_reports']):,} reports in view used CED (Taser) to show how many."
    ced, total = int(row["ced_reports"]), int(row["all_reports"])
    if not total:
        return "No reports in view."
    return (f"{ced:,} of {total:,} reports used CED (Taser): {row['ced_share_of_reports']:.1%} "
            f"(95% interval {row['ced_share_low']:.1%} to {row['ced_share_high']:.1%}).")
