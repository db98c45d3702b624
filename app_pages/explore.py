"""Explore: any measure by one or two dimensions, optionally in small multiples; a click can filter every page."""
from __future__ import annotations

import streamlit as st

from lib.analysis import explore, risk
from lib.engine import query
from lib.present import explore_charts, wording
from lib.ui import cache, render
from lib.ui.filters import keep_in_link, linked

ds, filters, scope, sentence = render.page_header("explore", "Explore", "reports (one officer, one subject)")

NO_FACET = "none"
# Under disclosure control roles come grouped and hours in four-hour bands: single ones would be mostly hidden.
choices = explore.dimension_choices(scope.perturbed)
facet_choices = explore.dimension_choices(scope.perturbed, explore.FACET_DIMENSIONS)
OPENING = {"explore_measure": "officer_injured", "explore_facet": NO_FACET,
           "explore_dimensions": [query.shown_dimension("officer_role", scope.perturbed)]}
# The page's choices travel in its link, like the filters (a shared link opens the same chart).
linked("explore_measure", list(explore.MEASURES))
linked("explore_dimensions", choices, many=True)
linked("explore_facet", facet_choices)
if "explore_measure" not in st.session_state:  # the opening question
    st.session_state["explore_measure"] = OPENING["explore_measure"]
    st.session_state.setdefault("explore_dimensions", OPENING["explore_dimensions"])
if any(d not in choices for d in st.session_state.get("explore_dimensions", [])):  # kept from a view that had them
    st.session_state["explore_dimensions"] = [d for d in st.session_state["explore_dimensions"] if d in choices]

left, middle, right = st.columns([1, 2, 1])
measure = left.selectbox("Measure", list(explore.MEASURES), format_func=explore.MEASURES.get, key="explore_measure",
                         help=wording.glossary("counting unit", "interval"))
dimensions = tuple(middle.multiselect(
    "By (one or two)", choices, format_func=query.DIMENSION_LABELS.get, max_selections=2,
    key="explore_dimensions", help="Month or hour draws lines; two sets of groups draw a grid."))
facets = [NO_FACET, *(d for d in facet_choices if d not in dimensions)]
# The facet's options change with the dimensions: reset a facet that is now charted, before drawing it.
if st.session_state.get("explore_facet", NO_FACET) not in facets:
    st.session_state["explore_facet"] = NO_FACET
facet = right.selectbox("One small chart per", facets, key="explore_facet",
                        format_func=lambda d: "No small multiples" if d == NO_FACET else query.DIMENSION_LABELS[d])
for key, value in (("explore_measure", measure), ("explore_dimensions", list(dimensions)),
                   ("explore_facet", facet)):
    keep_in_link(key, value, OPENING[key])
facet = None if facet == NO_FACET else facet

if not dimensions:
    st.info("Pick one or two dimensions to break the measure down by.")
    st.stop()

now = cache.summary(ds, filters, scope)
render.stop_if_empty(now, sentence)
if measure in now.rates and explore.MEASURES[measure] in wording.unavailable(now):
    st.info(wording.unavailable_message([explore.MEASURES[measure]]))
    st.stop()

frame = cache.cached_query(explore.explore_frame, ds, filters, scope, measure, dimensions, facet)
if "month" in dimensions:  # a line over months: the part months at either end are named on it
    frame = render.mark_part_months(ds, filters, frame)
timed = next((d for d in (*dimensions, facet) if d in ("hour", "hours")), None)
if timed and risk.no_time_of_day(frame, timed):  # not a spike at midnight: one plain sentence instead
    st.info(f"This extract records no time of day (every report is at midnight), so reports cannot be placed by "
            f"{query.DIMENSION_LABELS[timed].lower()}. Pick another dimension.")
    st.stop()
unit = now.rates[measure].unit if measure in now.rates else "reports"  # incidents for a field recorded per incident
spec = explore_charts.explore_chart(frame, measure, dimensions, facet, unit=unit)
event = st.altair_chart(spec, on_select="rerun", key="explore_chart", theme=None)

charted = (*dimensions, facet) if facet else dimensions
if "month" in dimensions:
    render.part_months(ds, filters, ("labelled 'part month'", "each labelled 'part month'"))
if "role_group" in charted:
    st.caption(wording.ROLE_GROUPING)
pick = explore.picked(event, charted)
chosen = explore.apply_selection(filters, event, charted)
changes = explore.filter_changes(filters, chosen, cache.filter_options(ds, scope))


def filter_every_page(new_values: dict[str, list[str]]) -> None:
    # The sidebar's filter widgets (keys flt_<field>) hold the global filters: set them and they apply everywhere.
    for field, values in new_values.items():
        st.session_state[f"flt_{field}"] = values


if changes:
    st.button(f"Filter every page to {explore.pick_sentence(pick)}", icon=":material/filter_alt:",
              on_click=filter_every_page, args=(changes,), type="primary")
elif pick.values:
    st.caption(f"Every page is already filtered to {explore.pick_sentence(pick)}.")
for note in pick.notes:
    st.caption(note)
if not pick.values and not pick.notes:
    st.caption("Click a bar, point or cell to filter every page to it.")

render.table_behind(explore_charts.table(frame, measure, dimensions, facet, unit),
                explore_charts.caption(filters, measure, frame, dimensions, facet, unit), source=frame)
