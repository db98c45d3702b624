"""Tactics: use over time, effectiveness, injuries alongside each tactic, co-occurrence, the Taser ladder."""
from __future__ import annotations

import streamlit as st

from lib.analysis import tactics
from lib.present import charts, tactic_charts, wording
from lib.ui import cache, render
from lib.ui.filters import keep_in_link, linked

ds, filters, scope, sentence = render.page_header("tactics", "Tactics")

now = cache.summary(ds, filters, scope)
render.stop_if_empty(now, sentence)
if cache.tactic_counts(ds, filters, scope).empty:
    st.info(f"None of the {render.count_text(now.reports)} reports in view records a tactic ({sentence}), so there is "
            "nothing "
            "to show here. Check the Data quality page: the extract may not carry the tactics columns.")
    st.stop()

st.subheader("Tactic use over time", help=wording.glossary("counting unit"))
use = render.mark_part_months(ds, filters, cache.cached_query(tactics.use_over_time, ds, filters, scope))
# The page's choices travel in its link, like the filters. No `default=` on the controls: a value the link set in
# Session State would clash with it; the opening choice is set here instead, when the session has none.
SHOWN = ["Reports", "Share of reports"]
BY = ["Tactic", "Type of force"]
linked("tactics_use_measure", SHOWN)
st.session_state.setdefault("tactics_use_measure", SHOWN[0])
measure = st.segmented_control("Show", SHOWN, key="tactics_use_measure") or SHOWN[0]
keep_in_link("tactics_use_measure", measure, SHOWN[0])
render.chart(tactic_charts.tactic_use_by_month, use, measure="share" if measure == "Share of reports" else "reports")
render.part_months(ds, filters)
render.table_behind(tactic_charts.use_over_time_table(use),
                f"{sentence}. Counting unit: reports. A report using two types of force counts in both, so the "
                "lines add up to more than the month's reports; CED counts once per report, at its highest use.",
                source=use)

st.subheader("How often each tactic was effective", help=wording.glossary("interval"))
effective = cache.cached_query(tactics.effectiveness, ds, filters, scope)
if int(effective["answered"].sum()) == 0:
    st.info("Not in this extract: no tactic use records whether it was effective, so effectiveness cannot be "
            "shown. Unknown answers are never counted as 'No'.")
else:
    render.chart(tactic_charts.effectiveness_by_tactic, effective)
render.table_behind(tactic_charts.effectiveness_table(effective),
                f"{sentence}. Counting unit: tactic uses (one tactic recorded on one report). Rates are over "
                f"uses whose effectiveness was answered; grey points rest on fewer than {charts.MIN_DENOMINATOR} "
                "answers. 'Effective' is the officer's own judgement on the form.", source=effective)

st.subheader("Injuries when each tactic was used", help=wording.glossary("interval", "counting unit"))
measures = tactics.injury_measures(now)
missing = tactics.missing_injuries(now)
if missing:
    st.info(wording.unavailable_message(missing))
if measures:
    linked("tactics_harm_by", BY)
    st.session_state.setdefault("tactics_harm_by", BY[0])
    by_label = st.segmented_control("By", BY, key="tactics_harm_by") or BY[0]
    keep_in_link("tactics_harm_by", by_label, BY[0])
    by = "tactic_group" if by_label == "Type of force" else "tactic"
    harm = cache.cached_query(tactics.harm_when_used, ds, filters, scope, by)
    render.chart(tactic_charts.injury_rate_when_used, harm, measures=measures, label=by_label)
    render.table_behind(tactic_charts.harm_table(harm, label=by_label),
                    f"{sentence}. Counting unit: reports using the tactic; a report using several tactics counts "
                    "under each. Rates are over reports that answered; the dashed line is the rate over all "
                    f"reports in view; grey points rest on fewer than {charts.MIN_DENOMINATOR} answers. Tactics "
                    "are used in different situations, so these rates describe; they do not show that a tactic "
                    "causes or prevents injury.", source=harm)

st.subheader("Which tactics occur together")
pairs = cache.cached_query(tactics.co_occurrence, ds, filters, scope, tactics.TOP_TACTICS)
if pairs["tactic"].nunique() < 2:
    st.info("Only one tactic is recorded in these reports, so there are no pairs to show.")
else:
    render.chart(tactic_charts.tactic_co_occurrence, pairs)
    render.table_behind(tactic_charts.co_occurrence_table(pairs),
                    f"{sentence}. Counting unit: reports. Read across a row: of the reports using that tactic "
                    "(count in brackets), the share that also used the column's tactic. The "
                    f"{tactics.TOP_TACTICS} most-used tactics are shown; grey rows rest on fewer than "
                    f"{charts.MIN_DENOMINATOR} reports.", source=pairs)

st.subheader("The Taser ladder (highest use per report)", help=wording.glossary("highest use"))
ladder = cache.cached_query(tactics.taser_ladder, ds, filters, scope)
st.markdown(tactic_charts.ladder_sentence(ladder))
if ladder["ced_reports"].iloc[0] == 0:
    st.info("No report in view used CED (Taser).")
else:
    render.chart(tactic_charts.taser_ladder_shares, ladder)
    render.table_behind(tactic_charts.ladder_table(ladder),
                    f"{sentence}. Counting unit: reports using CED, each counted once at its highest use (the "
                    "national rule): a Taser drawn, aimed and then fired counts as fired only. 'Reaching at "
                    "least this level' adds the levels above it.", source=ladder)
