"""Overview: headline measures with change, monthly trend, role and shift, most-used tactics."""
from __future__ import annotations

import streamlit as st

from lib import ui
from lib.engine import query
from lib.present import charts, tables, wording

ds, filters, scope, sentence = ui.page_header("overview", "Overview")

now = ui.summary(ds, filters, scope)
previous_filters = query.previous_period(filters, ds)
before = ui.summary(ds, previous_filters, scope) if previous_filters else None
ui.stop_if_empty(now, sentence)

cols = st.columns(4)
cols[0].metric("Reports", ui.count_text(now.reports),
               wording.count_change(now.reports, before.reports if before else None),
               delta_color="off",
               help="One report is one officer's use of force on one subject.")
missing = wording.unavailable(now)
for col, field in zip(cols[1:], ("officer_injured", "officer_assaulted", "subject_injured"), strict=True):
    rate = now.rates[field]
    col.metric(rate.label, "Not recorded" if rate.label in missing else "Hidden" if rate.hidden
               else wording.percent(rate.rate),
               wording.rate_change(rate, before.rates[field] if before else None),
               delta_color="inverse", help=wording.rate_detail(rate))
if missing:
    st.info(wording.unavailable_message(missing))
st.caption(f"{ui.count_phrase(now.incidents)} incidents, {ui.count_phrase(now.officers)} officers. "
           + wording.period_phrase(previous_filters, before))
with st.expander("How these rates are counted"):
    for rate in now.rates.values():
        st.markdown("- " + wording.rate_detail(rate))

st.subheader("Monthly trend")
monthly = ui.breakdown(ds, filters, scope, ("month",))
left, right = st.columns(2)
# Headings sit outside charts that share a row: Streamlit clips a stretched chart's own title.
with left:
    st.markdown("**Reports per month**")
    ui.chart(charts.reports_by_month, monthly, title="")
with right:
    st.markdown("**Officer injury rate per month, with 95% interval**")
    if now.rates["officer_injured"].denominator:
        ui.chart(charts.rate_by_month, monthly, "officer_injured", title="")
    else:
        st.caption("Unavailable: this extract does not record whether an officer was injured.")
ui.table_behind(tables.rates_table(monthly, ("month",)), f"{sentence}. Counting unit: reports.", source=monthly)

for dimension in ("officer_role", "shift"):
    label = query.DIMENSION_LABELS[dimension]
    st.subheader(f"By {label.lower()}")
    frame = ui.breakdown(ds, filters, scope, (dimension,))
    ui.chart(charts.harm_rates_by_group, frame, dimension, label)
    ui.table_behind(tables.rates_table(frame, (dimension,)),
                    f"{sentence}. Counting unit: reports. Rates are over reports that answered; "
                    f"grey points rest on fewer than {charts.MIN_DENOMINATOR} answers.", source=frame)

st.subheader("Most-used tactics")
tactics = ui.tactic_counts(ds, filters, scope)
ui.chart(charts.most_used_tactics, tactics)
ui.table_behind(tables.tactics_table(tactics),
                f"{sentence}. Counting unit: reports using each tactic; a report can use several, "
                "and CED (Taser) counts once per report at its highest use.", source=tactics)

bench = ui.national()
if bench:
    st.subheader(f"Beside the national figures (Home Office, {bench['year']})")
    ui.table(ui.national_comparison(ds, filters, scope, bench), "beside the national figures")
    st.caption(f"This view: {sentence}. National: England and Wales, financial year {bench['year']}; "
               "a different period from this view, so read differences as context, not as a test.")
