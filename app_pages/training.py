"""Training: is personal safety training reaching officers, and is it working; what debriefs teach."""
from __future__ import annotations

import streamlit as st

from lib.analysis import debriefs, training
from lib.present import charts, tables, wording
from lib.ui import cache, context, render, roster

OVERDUE_SHOWN = 1_000  # officers overdue listed on the page, furthest behind first; the downloads hold them all

ds, filters, scope, sentence = render.page_header("training", "Training")

with st.expander("Load an officer roster, training records or shifts worked (this session)"):
    files = st.file_uploader("Roster files: officers (id, role, team), training (officer, date, course, hours), "
                             "exposure (officer, month, shifts)", type=["csv", "xlsx", "parquet"],
                             accept_multiple_files=True, key="roster_files")
    if files and st.button("Read roster files"):
        roster.load_roster(ds, files)
    roster.roster_mapping_step(ds)

has_roster = roster.has_people(ds)
if not has_roster:
    st.info("This dataset has no officer roster with training records. Load one above to see compliance with the "
            "12-hours-a-year standard and whether training is working.")

if has_roster:
    # The effect of training is the page's costliest part: it starts now, on other threads, while compliance draws
    # (at 5,000,000 reports a first render here from about 2.6 s to 2.2 to 2.65 s: the fits already use both cores).
    roster.prefetch_training_results(ds, filters, scope)
    st.subheader("Who has had their 12 hours")
    as_of = ds.last.date()
    per_officer = roster.compliance(ds, scope, as_of)
    for group, label in (("officer_role", "Officer role"), ("team", "Team")):
        if group not in per_officer:
            continue
        summary = cache.protect(training.summarise_compliance,
                                roster.compliance_summary(ds, scope, as_of, per_officer, group))
        if group == "team":  # operational list of teams with enough officers to matter, lowest share first
            summary = training.lowest_shares(summary, group)
            label = f"Team (15 lowest shares, teams of {training.MIN_TEAM}+ officers)"
            if summary.empty:
                continue
        render.chart(charts.compliance_by_group, summary, group, label)
        render.table_behind(tables.compliance_table(summary, group),
                        f"Training hours in the 12 months to {as_of:%d %b %Y}. Counting unit: officers."
                        + (" Counts are published with a small adjustment (cell key method); shares and mean hours "
                           "are computed from them." if scope.perturbed else ""),
                        source=summary)
    short, officers = training.compliance_totals(per_officer, perturbed=scope.perturbed)
    st.caption(f"{render.count_phrase(short)} of {render.count_phrase(officers)} officers are short of "
               f"12 hours in the 12 months to {as_of:%d %b %Y}.")
    mine = roster.overdue_officers(ds, as_of)
    if mine is not None:
        with st.expander(f"Officers overdue you may see ({len(mine):,}, pseudonymised ids)"):
            render.table(tables.overdue_table(mine), "officers overdue", shown=OVERDUE_SHOWN)

    st.subheader("Is the training working?", help=wording.glossary("difference in differences", "interval"))
    results = roster.training_results(ds, filters, scope)
    if results is None:
        st.info("Shifts worked per officer-month are needed to compare rates before and after training; load an "
                "exposure file above.")
    else:
        found, study = results
        cols = st.columns(len(found))
        for col, (measure, result) in zip(cols, found.items(), strict=True):
            if result.get("estimate") is None:
                col.metric(f"Change in {training.MEASURES[measure]}", "suppressed",
                           help="Hidden: it rests on counts below the disclosure threshold.")
                continue
            # The interval under every estimate, grey: an estimate alone reads as more certain than it is.
            col.metric(f"Change in {training.MEASURES[measure]}", f"{result['estimate']:+.1%}",
                       f"95% interval {result['ci_low']:+.1%} to {result['ci_high']:+.1%}", delta_color="off",
                       delta_arrow="off",
                       help=f"95% interval {result['ci_low']:+.1%} to {result['ci_high']:+.1%}. {result['method']}. "
                            f"{training.verdict_label(result)}.")
        headline = found["reports"]
        st.markdown(f"**{training.verdict_label(headline)}.** {training.reading(headline)}")
        if headline.get("verdict") == "doubtful":
            st.warning(training.pre_trend_reading(headline))
        else:
            st.markdown(training.pre_trend_reading(headline))
        st.markdown(training.detectable_reading(headline))
        trained = render.count_text(headline["officers_trained"])
        untrained = render.count_text(headline["officers_comparison"])
        st.caption(f"Per 1,000 officer-shifts; {trained} trained officers against officers not yet trained and "
                   f"{untrained} never trained, same months; each training cohort compared only with officers not "
                   f"yet (or never) trained. {training.twfe_reading(headline)} {sentence}."
                   + (" Counts of officers and reports are published with a small adjustment (cell key method); "
                      "the estimates and intervals are the model's, fitted to the exact counts." if scope.perturbed
                      else ""))
        render.chart(charts.training_event_study, study, "use of force")
        render.table_behind(tables.event_study_table(study),
                        "Change by months since training, against officers not yet (or never) trained in the same "
                        "months; the months before training are the pre-trend test's. 95% intervals. Counting unit: "
                        "reports per 1,000 officer-shifts.", source=study)

st.subheader("Learning the lessons: debriefs")
records = roster.debrief_records(ds)
with st.expander("Load post-incident debriefs (report or incident id, date, contributing factors, learning, actions)",
                 expanded=records is None):
    upload = st.file_uploader("Debrief records", type=["csv", "xlsx", "parquet"], key="debrief_file")
    if upload is not None and st.button("Read debriefs"):
        roster.load_debriefs(ds, upload)
    if ds.name.startswith("Synthetic") and st.button("Use synthetic demo debriefs"):
        roster.demo_debriefs(ds)
    records = roster.debrief_records(ds)
if records is not None:
    missing, review, factors = debriefs.analyse(cache.engine(), ds, filters, scope, records)
    factors = cache.protect(debriefs.factor_table, factors)
    st.metric("Officer injured or assaulted, no debrief recorded", render.count_phrase(missing))
    st.caption(f"The supervisor's review list: reports where an officer was injured or assaulted and no debrief "
               f"names the report or its incident. {sentence}.")
    if context.officer_detail_shown("debrief review list"):
        with st.expander(f"Review list (latest {len(review):,})"):
            render.table(review, "debrief review list")
    if len(factors):
        render.chart(charts.forest_plot, factors.assign(group=factors["factor"], reference="debriefs without it"),
                                    "Officer injury rate")
        render.table_behind(tables.factors_table(factors),
                        "Among debriefed reports: the officer injury rate where the factor was named, against "
                        "debriefs that did not name it. Counting unit: debriefed reports."
                        + (" Counts are published with a small adjustment (cell key method); the ratios are computed "
                           "from them." if scope.perturbed else ""), source=factors)
