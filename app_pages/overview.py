"""Overview: headline measures with change, monthly trend, role and shift, most-used tactics."""
from __future__ import annotations

import streamlit as st

from lib.engine import query
from lib.present import charts, tables, wording
from lib.ui import cache, opening, render

ds, filters, scope, sentence = render.page_header("overview", "Overview")

view = opening.overview(ds, filters, scope)  # every query of this page (the warm-up runs the same)
now, before, previous_filters = view.now, view.before, view.previous_filters
render.stop_if_empty(now, sentence)
drawn = opening.chart_specs(ds, filters, scope, view)  # Vega-Lite specs, by place (cached on the same keys)

cols = st.columns(4)
cols[0].metric("Reports", render.count_text(now.reports),
               wording.count_change(now.reports, before.reports if before else None),
               delta_color="off",
               help="One report is one officer's use of force on one subject.")
missing = wording.unavailable(now)
for col, field in zip(cols[1:], ("officer_injured", "officer_assaulted", "subject_injured"), strict=True):
    rate = now.rates[field]
    # The arrow is coloured only when the change is clear (its interval excludes no change); grey otherwise.
    verdict = wording.rate_change_verdict(rate, before.rates[field] if before else None)
    col.metric(rate.label, "Not recorded" if rate.label in missing else "Hidden" if rate.hidden
               else wording.percent(rate.rate),
               wording.rate_change(rate, before.rates[field] if before else None),
               delta_color="inverse" if verdict and verdict[0] else "off",
               help=wording.rate_detail(rate) + (f". {verdict[1]}" if verdict else ""))
    col.caption(wording.headline_interval(rate, before.rates[field] if before else None))
if missing:
    st.info(wording.unavailable_message(missing))
st.caption(f"{wording.incidents_phrase(now, render.count_phrase)}, "
           f"{wording.officers_phrase(now, render.count_phrase)}. "
           + (wording.counting_unit(now) + " " if now.per_incident else "")
           + wording.period_phrase(previous_filters, before, filters, *render.data_days(ds)))
with st.expander("How these rates are counted"):
    for rate in now.rates.values():
        st.markdown("- " + wording.rate_detail(rate))

st.subheader("Monthly trend")
monthly = view.monthly
left, right = st.columns(2)
# Headings sit outside charts that share a row: Streamlit clips a stretched chart's own title.
with left:
    st.markdown("**Reports per month**")
    render.vega_lite(drawn["reports_by_month"])
with right:
    st.markdown(f"**Officer injury rate per month ({now.rates['officer_injured'].unit}), with 95% interval**")
    if drawn["injury_rate_by_month"] is not None:
        render.vega_lite(drawn["injury_rate_by_month"])
    else:
        st.caption("Unavailable: this extract does not record whether an officer was injured.")
render.part_months(ds, filters)
render.table_behind(tables.rates_table(monthly, ("month",), now.per_incident),
                    f"{sentence}. {wording.counting_unit(now)}", source=monthly)

for dimension, frame in view.groups.items():
    label = query.DIMENSION_LABELS[dimension]
    st.subheader(f"By {label.lower()}")
    if drawn[dimension] is not None:
        render.vega_lite(drawn[dimension])
    else:  # one plain sentence, not a chart of empty rates
        st.caption(f"No injury or assault rate by {label.lower()}: this extract records none of them. The reports "
                   f"per {label.lower()} are in the table below.")
    render.table_behind(tables.rates_table(frame, (dimension,), now.per_incident),
                    f"{sentence}. {wording.counting_unit(now)} Rates are over those that answered; "
                    f"grey points rest on fewer than {charts.MIN_DENOMINATOR} answers."
                    + (f" {wording.ROLE_GROUPING}" if dimension == "role_group" else ""), source=frame)

st.subheader("Most-used tactics")
tactics = view.tactics
render.vega_lite(drawn["tactics"])
render.table_behind(tables.tactics_table(tactics),
                f"{sentence}. Counting unit: reports using each tactic; a report can use several, "
                "and CED (Taser) counts once per report at its highest use.", source=tactics)

bench = cache.national()
if bench:
    st.subheader(f"Beside the national figures (Home Office, {bench['year']})")
    render.table(cache.national_comparison(ds, filters, scope, bench), "beside the national figures")
    st.caption(f"This view: {sentence}. National: England and Wales, financial year {bench['year']}; "
               "a different period from this view, so read differences as context, not as a test.")
