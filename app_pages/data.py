"""Data: load extracts (CSV, Parquet, Excel), see what was set aside and why, keep datasets."""
from __future__ import annotations

import streamlit as st

from lib.present import tables
from lib.ui import cache, context, datasets, render, uploads

context.guard("data")
st.title("Data")
st.caption("Load your force's extracts. Rows that cannot be read are set aside with a reason: nothing is lost.")

upload_tab, library_tab, national_tab = st.tabs(["Load extracts", "Saved datasets", "National figures"])

with upload_tab:
    files = st.file_uploader("Extracts: CSV, Parquet or Excel (several at once, e.g. quarterly files)",
                             type=["csv", "parquet", "xlsx"], accept_multiple_files=True, key="upload_files")
    choices = uploads.format_choices()
    left, middle, right = st.columns(3)
    fmt = left.selectbox("Format", list(choices), format_func=choices.get, key="upload_format")
    force = middle.text_input("Force name, if the extract does not say", key="upload_force")
    dup_label = right.radio("Rows repeating a report id", ["Set later copies aside", "Keep them all"],
                            key="upload_duplicates")
    if st.button("Read files", type="primary", disabled=not files):
        uploads.read_uploads([(f.name, f) for f in files], fmt, force or None,
                        "set-aside" if dup_label == "Set later copies aside" else "keep-all")

    uploads.mapping_step()

    result = st.session_state.get(uploads.UPLOAD_KEY)
    if result is not None:
        report = result.report
        st.subheader("What was read")
        cols = st.columns(4)
        cols[0].metric("Incidents (rows) read" if "items_in" in report else "Rows read", f"{report['rows_in']:,}")
        cols[1].metric("Loaded", f"{report['rows_loaded']:,}")
        cols[2].metric("Set aside", f"{report['rows_quarantined']:,}")
        cols[3].metric("Reports", f"{report['reports_loaded']:,}")
        st.caption(tables.reconciliation_sentence(report) + f" Format: {report['detected_format']}.")
        if tables.items_sentence(report):  # cells listed several officers: the second level of the count
            st.caption(tables.items_sentence(report))
        if tables.encoding_sentence(report):  # some lines were not UTF-8: say so above the notes
            st.warning(tables.encoding_sentence(report))
        for note in report["notes"]:
            st.caption("· " + note)
        if report["rows_quarantined"]:
            st.markdown("**Why rows were set aside**")
            st.dataframe(tables.quarantine_reasons_table(report, result.quarantine), hide_index=True,
                         width="stretch")
            st.markdown("The rows set aside, with the reason for each, to fix and load again:")
            # Logged as the upload's rows (named by its files), not the dataset open in the picker.
            render.download(tables.set_aside_download(result.quarantine, report), "set-aside-rows",
                            what="rows set aside",
                            dataset=f"{uploads.upload_name(report)} (upload, not saved)")
        unmapped = tables.unmapped_table(report)
        if len(unmapped):
            with st.expander(f"Values kept as given ({len(unmapped)}): not in the national vocabularies"):
                st.dataframe(unmapped, hide_index=True, width="stretch")
        with st.expander("Completeness of each field, and where it came from"):
            st.dataframe(tables.completeness_table(report), hide_index=True, width="stretch")

        st.subheader("Use it")
        if report["reports_loaded"] == 0:
            st.warning("No report could be loaded from these files; see the reasons above.")
        else:
            a, b, c = st.columns(3)
            with a:
                st.markdown("**Explore now**, this session only")
                session_name = st.text_input("Name", value=uploads.upload_name(report), key="session_name")
                if st.button("Explore now"):
                    datasets.use_for_session(session_name, result)
                    st.switch_page("app_pages/overview.py")
            with b:
                st.markdown("**Save** as a named dataset")
                save_name = st.text_input("Dataset name", value=uploads.upload_name(report), key="save_name")
                if st.button("Save to library"):
                    uploads.save_upload(save_name, result)
            with c:
                st.markdown("**Append** to a saved dataset")
                names = [e.name for e in uploads.saved_entries() if not e.damaged]
                target = st.selectbox("Dataset", names, key="append_target", disabled=not names,
                                      placeholder="No saved dataset yet")
                if st.button("Append", disabled=not names):
                    uploads.append_upload(target, result)

with library_tab:
    entries = uploads.saved_entries()  # only those the user's force scope covers
    if not entries:
        st.info("No saved datasets yet. Load extracts and save them to keep them between sessions.")
    else:
        st.caption("Saved datasets of your forces. Each belongs to the forces of the user who saved it; "
                   "only they or an admin can delete it.")
    for entry in entries:
        title = (f"{entry.name}: DAMAGED, cannot be read" if entry.damaged else
                 f"{entry.name}: {entry.reports:,} reports, {entry.loads} load(s), version {entry.version}, "
                 f"updated {entry.updated}")
        with st.expander(title, expanded=bool(entry.damaged)):
            st.caption(f"Saved by {entry.owner or 'an operator (no owner recorded)'}, for {entry.belongs_to}.")
            versions = uploads.versions_of(entry.name)
            if entry.damaged:
                st.error(tables.damaged_advice(entry.damaged, [v.number for v in versions if not v.damaged]))
            else:
                st.dataframe(uploads.provenance_table(entry.name), hide_index=True, width="stretch")
                set_aside = uploads.set_aside_of(entry.name)
                if len(set_aside):
                    st.markdown(f"The {len(set_aside):,} rows set aside, with reasons:")
                    uploads.download_set_aside(entry.name, set_aside)
            st.markdown("**Versions kept**")
            st.dataframe(tables.versions_table(versions), hide_index=True, width="stretch")
            earlier = [v.number for v in versions if not v.current and not v.damaged]
            if uploads.may_roll_back() and uploads.may_change(entry) and earlier:
                pick, act = st.columns([2, 1])
                version = pick.selectbox("Roll back to version", earlier[::-1], key=f"rollback_to_{entry.name}")
                if act.button(f"Roll back {entry.name}", key=f"rollback_{entry.name}"):
                    uploads.roll_back_saved(entry.name, version)
                    st.rerun()
            elif earlier:
                st.caption("An admin can roll this dataset back to an earlier version.")
            if not uploads.may_change(entry):
                st.caption(f"Only {entry.owner}, who saved it, or an admin can delete this dataset." if entry.owner
                           else "Only an admin can delete this dataset: it has no recorded owner.")
            elif st.checkbox("I want to delete this dataset", key=f"confirm_{entry.name}"):
                if st.button(f"Delete {entry.name}", key=f"delete_{entry.name}"):
                    uploads.delete_saved(entry.name)
                    st.rerun()

with national_tab:
    st.markdown("Import the Home Office *Police use of force statistics* data tables (the `.ods` workbook) "
                "to set your own figures beside the national ones on the Overview.")
    workbook = st.file_uploader("Home Office data tables (.ods)", type=["ods"], key="national_upload")
    if workbook is not None and st.button("Import national figures"):
        uploads.import_national(workbook)
    bench = cache.national()
    if bench:
        st.caption(f"Imported: England and Wales {bench['year']}, {bench['incidents']:,} reports; officer injured "
                   f"in {bench['officer_injured_share_of_answered']:.1%} of reports answering.")
