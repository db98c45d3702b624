"""Data quality: what is missing, what breaks the vocabularies, what contradicts itself, and gaps in time."""
from __future__ import annotations

import streamlit as st

from lib.analysis import quality
from lib.ingest import library
from lib.present import charts, tables
from lib.ui import cache, render
from lib.ui.filters import keep_in_link, linked

ds, filters, scope, sentence = render.page_header("quality", "Data quality", "reports")

encoding = tables.dataset_encoding_sentence(library.lines_read_as_cp1252(ds.source))  # saved datasets only
if encoding:
    st.warning(encoding)

st.subheader("How complete is each field?")
complete = cache.cached_query(quality.completeness, ds, filters, scope)
render.chart(charts.completeness_by_field, complete)
st.caption("Orange: fewer than 9 in 10 reports answer it. Injury levels count only reports where someone "
           "was injured. " + sentence + ".")
with st.expander("Table behind this chart"):
    render.table(tables.completeness_rows(complete), "completeness of each field")

# The page's choices travel in its link, like the filters.
linked("quality_level", ["force", "area"])
level = st.radio("Recorded characteristics by", ["force", "area"], horizontal=True, key="quality_level",
                 format_func=str.capitalize)
keep_in_link("quality_level", level, "force")
by = cache.cached_query(quality.completeness_by, ds, filters, scope, level)
render.table(tables.completeness_by_table(by), f"completeness by {level}")
st.caption("Percentage of reports recording each field (of the subject, unless it says otherwise), like "
           "HMICFRS's table of records with age, sex and ethnicity. " + sentence + ".")

st.subheader("Values outside the national vocabularies")
invalid = cache.cached_query(quality.invalid_codes, ds, filters, scope)
if len(invalid):
    render.table(tables.invalid_codes_table(invalid), "values outside the vocabularies")
else:
    st.success("Every recorded value is in the national vocabularies.")

st.subheader("Records that contradict themselves")
rules = cache.cached_query(quality.contradictions, ds, filters, scope)
render.table(tables.contradictions_table(rules), "contradictions")
broken = rules[rules["reports"].fillna(0) > 0]
if len(broken):
    linked("quality_rule", broken["rule"].tolist())
    rule = st.selectbox("Show the reports behind", broken["rule"].tolist(),
                        format_func=dict(zip(rules["rule"], rules["explanation"], strict=True)).get,
                        key="quality_rule")
    keep_in_link("quality_rule", rule, broken["rule"].iloc[0])
    rows = cache.contradiction_rows(ds, filters, scope, rule)
    if rows is None:
        st.caption("Single reports are not shown to your role, or while small numbers are hidden.")
    else:
        render.table(tables.report_rows(rows, quality.rule_columns(rule)), f"reports breaking {rule}", what="reports")
        st.caption(f"Up to 500 reports, oldest first. {sentence}.")

st.subheader("Coverage in time")
months = cache.cached_query(quality.coverage, ds, filters, scope)
if len(months):
    render.chart(charts.monthly_coverage, months)
    late = cache.cached_query(quality.late_recorded, ds, filters, scope)
    said = tables.coverage_sentence(months, late, (filters.date_from, filters.date_to))
    st.caption((said + " " if said else "") + f"{sentence}.")
    with st.expander("Table behind this chart"):
        render.table(tables.coverage_table(months), "coverage in time")
