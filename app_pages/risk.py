"""Officer risk: who gets hurt, when, doing what; compared honestly, with intervals and funnel limits."""
from __future__ import annotations

import streamlit as st

from lib.analysis import adjust, risk
from lib.engine import query
from lib.engine.query import Filters, Scope
from lib.engine.store import Dataset
from lib.model import schema
from lib.present import charts, tables, wording
from lib.ui import cache, context, render
from lib.ui.filters import keep_in_link, linked

ds, filters, scope, sentence = render.page_header("risk", "Officer risk", "reports (one officer, one subject)")

# The page's choices travel in its link, like the filters (lib/ui/filters.py: linked, keep_in_link).
linked("risk_measure", list(schema.HARM_FIELDS))
measure = st.radio("Measure", list(schema.HARM_FIELDS), format_func=schema.HARM_FIELDS.get, horizontal=True,
                   key="risk_measure")
keep_in_link("risk_measure", measure, next(iter(schema.HARM_FIELDS)))
label = schema.HARM_FIELDS[measure]
now = cache.summary(ds, filters, scope)
render.stop_if_empty(now, sentence)
if label in wording.unavailable(now):
    st.info(wording.unavailable_message([label]))
    st.stop()
unit = now.rates[measure].unit  # incidents where the extract records this field once per incident
if not scope.perturbed and (early_scope := context.context().officer_scope) is not None:
    # The officer section's analysis is the page's costliest: it starts now, on another thread, while the
    # sections above it draw (at 5,000,000 reports, a first render from about 2.3 s to 2.15 s).
    cache.prefetch(risk.officer_exposure, ds, filters, early_scope, measure)
if unit != "reports":
    st.caption(wording.unit_note(now.rates[measure]))

st.subheader("By role and shift")
# Under disclosure control (a demonstration, a viewer) roles grouped: the smaller single roles would be hidden.
by_role = query.shown_dimension("officer_role", scope.perturbed)
grid = cache.cached_query(risk.rate_grid, ds, filters, scope, measure, by_role, "shift")
render.chart(charts.rate_heatmap, grid, by_role, "shift", query.DIMENSION_LABELS[by_role], "Shift", label,
                             row_order=[*query.DIMENSION_ORDER[by_role], query.NOT_RECORDED],
                             col_order=[*schema.SHIFTS, query.NOT_RECORDED], unit=unit)
render.table_behind(tables.grid_table(grid, by_role, "shift"),
                f"{sentence}. Per 100 {unit} answering; grey cells rest on fewer than {risk.MIN_CELL} answers "
                "and are not coloured." + (f" {wording.ROLE_GROUPING}" if scope.perturbed else ""),
                source=grid)

st.subheader("Month by month", help=wording.glossary("interval"))
monthly = render.mark_part_months(ds, filters, cache.breakdown(ds, filters, scope, ("month",)))
render.chart(charts.rate_by_month, monthly, measure, title="", unit=unit)
render.part_months(ds, filters)
render.table_behind(tables.rates_table(monthly, ("month",), now.per_incident),
                    f"{sentence}. {wording.counting_unit(now)} 95% interval band.", source=monthly)

st.subheader("By hour of day and day of week")
# Under disclosure control (a demonstration, a viewer) four-hour bands and weekdays together: single hours of seven
# days would hide most cells.
by_hour, by_day = query.shown_dimension("hour", scope.perturbed), query.shown_dimension("weekday", scope.perturbed)
hours = cache.cached_query(risk.rate_grid, ds, filters, scope, measure, by_day, by_hour)
if risk.no_time_of_day(hours, by_hour):
    st.info("This extract records no time of day (every report is at midnight), so reports cannot be placed by "
            "hour.")
else:
    render.chart(charts.rate_heatmap, hours, by_day, by_hour, query.DIMENSION_LABELS[by_day],
                 query.DIMENSION_LABELS[by_hour], label, row_order=list(query.DIMENSION_ORDER[by_day]), unit=unit)
    render.table_behind(tables.grid_table(hours, by_day, by_hour),
                        f"{sentence}. Per 100 {unit} answering; grey cells rest on fewer than {risk.MIN_CELL} "
                        "answers." + (" Four-hour bands, Monday to Friday together: single hours of single days "
                                      "would rest on too few reports to show." if scope.perturbed else ""),
                        source=hours)

# Sections with their own choices are fragments: a choice there reruns that section alone, not the page's queries
# and charts above (a filter in the sidebar still reruns the page).
@st.fragment
def rate_ratio_section(ds: Dataset, filters: Filters, scope: Scope, measure: str, label: str, unit: str,
                       sentence: str) -> None:
    """Draw the rate ratios of the groups chosen, crude or adjusted, with their table."""
    st.subheader("Rate ratios, with 95% intervals", help=wording.glossary("rate ratio", "interval", "case mix"))
    dimensions = risk.ratio_dimensions(scope.perturbed)
    linked("risk_dimension", dimensions)
    dimension = st.selectbox("Compare groups of", dimensions, format_func=risk.RATIO_LABELS.get, key="risk_dimension")
    keep_in_link("risk_dimension", dimension, dimensions[0])
    reference = None
    if dimension not in adjust.TACTIC_DIMENSIONS:  # each tactic or type of force is compared with reports not using it
        groups = cache.breakdown(ds, filters, scope, (dimension,))[dimension].tolist()
        groups = [g for g in groups if g != query.NOT_RECORDED]
        if groups:
            linked(f"risk_reference_{dimension}", groups)
            reference = st.selectbox("Against the reference group", groups, key=f"risk_reference_{dimension}")
            keep_in_link(f"risk_reference_{dimension}", reference, groups[0])
    basis = st.radio("Comparison", ["Crude", "Adjusted for case mix"], horizontal=True, key="risk_basis",
                     help="Adjusted: a Poisson regression of each report's outcome on the compared groups and the case "
                          "mix chosen, with robust intervals clustered by incident.")
    adjust_for: tuple[str, ...] = ()
    if basis == "Adjusted for case mix":
        # Keyed per compared dimension: the options change with it (a dimension is not adjusted for itself).
        adjust_for = tuple(st.multiselect(
            "Adjust for", [d for d in adjust.COVARIATES if d not in adjust.within(dimension)],
            default=[d for d in adjust.DEFAULT_ADJUSTMENT if d not in adjust.within(dimension)],
            format_func=adjust.LABELS.get,
            key=f"risk_adjust_for_{dimension}"))
    ratios = cache.cached_query(risk.rate_ratios, ds, filters, scope, measure, dimension, reference, adjust_for)
    render.chart(charts.forest_plot, ratios, label)
    render.table_behind(tables.ratios_table(ratios), risk.ratios_caption(ratios, sentence, unit), source=ratios)


@st.fragment
def funnel_section(ds: Dataset, filters: Filters, scope: Scope, measure: str, label: str, unit: str,
                   sentence: str) -> None:
    """Draw the funnel plot of the level chosen, crude or against the case mix, with the groups flagged."""
    # Officer-level views are never offered where counts are perturbed (viewers, demonstrations): see below. Nor
    # where no report in view carries an officer id: there is no officer to place.
    officers = context.may_see_officers() and not scope.perturbed and bool(cache.summary(ds, filters, scope).officers)
    st.subheader(f"{'Areas, teams and officers' if officers else 'Areas and teams'} against the average (funnel plot)",
                 help=wording.glossary("funnel plot", "case mix"))
    levels = [*risk.FUNNEL_LEVELS, *([risk.OFFICER_LEVEL] if officers else [])]
    linked("risk_level", levels)
    level = st.radio("Compare", levels, horizontal=True, key="risk_level", format_func=str.capitalize)
    keep_in_link("risk_level", level, levels[0])
    level_scope = context.officer_scope("officer funnel") if level == risk.OFFICER_LEVEL else scope
    funnel_basis = st.radio("Judge", ["Crude rates", "Observed against expected for the case mix"], horizontal=True,
                            key="risk_funnel_basis",
                            help="Expected: each group's reports given the same chance of harm as similar reports "
                                 "elsewhere (role, shift, resistance, crewing, location type), from a Poisson model.")
    funnel_adjust = risk.funnel_adjustment(level) if funnel_basis != "Crude rates" else ()
    points, limits = cache.cached_query(risk.funnel, ds, filters, level_scope, measure, level, funnel_adjust)
    if len(points):
        render.chart(charts.funnel_plot, points, limits, level, label)
        st.caption(risk.funnel_sentence(points, level, limits) + " Small groups sit in the wide mouth of the funnel: "
                   "their rates swing by chance, so they are judged against the limits, never ranked.")
        st.caption(risk.funnel_method(limits))
        flagged = risk.outliers(points)
        if len(flagged):
            st.markdown(f"**Higher than expected** ({len(flagged)}): above the 99.8% limit for their volume, "
                        f"with a false discovery rate under {risk.FUNNEL_FDR:.0%}")
            render.table(tables.funnel_flagged_table(flagged, level), f"higher than expected {level}")
        render.table_behind(tables.funnel_table(points, level),
                            f"{sentence}. Counting unit: {risk.funnel_unit(points, level, unit)}. "
                            f"{risk.funnel_method(limits)}", source=points)
    else:
        st.info(f"No {level} in this view has answering reports.")


rate_ratio_section(ds, filters, scope, measure, label, unit, sentence)
funnel_section(ds, filters, scope, measure, label, unit, sentence)

st.subheader("Officers with most exposure to harm", help=wording.glossary("shrunken rate", "rank interval", "interval"))
if not context.may_see_officers():
    st.info("Officer-level views are not open to your role: the sections above compare roles, shifts, areas "
            "and teams.")
    st.stop()
if scope.perturbed:  # a demonstration: counts per officer have no place beside perturbed counts, whatever the role
    st.info("Officer-level views are not shown under disclosure control: the sections above compare roles, "
            "shifts, areas and teams, with counts published through the cell key method.")
    st.stop()
officers_scope = context.officer_scope("officers with most exposure to harm")
if officers_scope is None:
    st.stop()
# The app's engine pseudonymises every dataset as it opens; were an id still raw, the page says so, not "pseudonymised".
ids = "raw officer ids, not pseudonymised" if ds.raw_officer_ids else "pseudonymised ids"
st.caption(f"Officer-level detail ({ids}). First a test of whether officers differ more than chance "
           "would make them differ; only if they do are the highest listed. Rates are shrunk towards the average, "
           "because a handful of reports says little about one officer; the rank interval says how sure the "
           "ordering is."
           + (f" Officers in {officers_scope.describe()} only." if officers_scope.teams is not None else ""))
exposure = cache.cached_query(risk.officer_exposure, ds, filters, officers_scope, measure)
if exposure.officers == 0:
    st.info("No officer identifiers in this view, so officer-level exposure is unavailable.")
elif not exposure.differ:
    st.info(risk.exposure_verdict(exposure))
else:
    st.markdown(risk.exposure_verdict(exposure))
    # On the page, the few columns a supervisor reads (each rate with its interval, the rank in words); every
    # column (counts, peers in the same role, the same incidents) in the expander and its downloads.
    st.dataframe(tables.exposure_summary(exposure.table, measure, raw_ids=ds.raw_officer_ids), hide_index=True,
                 width="stretch")
    with st.expander("Every column: raw rates, peers in the same role"
                     + (", the same incidents" if ds.has_incidents else "")):
        render.table(tables.exposure_table(exposure.table, measure, raw_ids=ds.raw_officer_ids,
                                           incidents=ds.has_incidents), "officers with most exposure")
    st.caption(f"{sentence}. Top {len(exposure.table)} of {render.count_text(exposure.officers)} officers by "
               "shrunken rate (empirical-Bayes beta-binomial, prior by maximum likelihood); mix compared with all "
               "officers in the same role. Counting unit: reports.")
    st.caption(risk.regression_note(exposure))
    st.caption(risk.same_incident_note(exposure, ds.has_incidents))
