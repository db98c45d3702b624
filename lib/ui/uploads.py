"""Uploads on the Data page: reading with progress, the mapping step, saving, appending, national figures."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from lib import ingest
from lib.ingest import library, pipeline, staging, worker
from lib.model import schema
from lib.model.scope import Actor
from lib.present import tables
from lib.security import access
from lib.ui import cache, context, datasets, render

UPLOAD_KEY = "_ose_upload"


MAPPING_KEY = "_ose_mapping"


AUTO_LABEL = "Detect automatically"


MAP_MYSELF = "map"


def format_choices() -> dict[str, str]:
    """Return the formats a user can pick for an upload, automatic detection first."""
    return {ingest.AUTO: AUTO_LABEL, **{f.name: f.label for f in ingest.available_formats()},
            MAP_MYSELF: "Map the columns myself"}


def read_uploads(payload: Sequence[staging.Upload], fmt: str, force: str | None, duplicates: str) -> None:
    """Ingest uploaded files (names and their bytes or buffers) with a progress bar; keep the result, or start
    the mapping step."""
    st.session_state.pop(UPLOAD_KEY, None)
    st.session_state.pop(MAPPING_KEY, None)
    if fmt == MAP_MYSELF:
        st.session_state[MAPPING_KEY] = {"files": payload, "force": force, "duplicates": duplicates}
        return
    bar = st.progress(0.0, text="Reading")
    try:  # spooled to disk and read in a worker process inside the upload budget, in batches where it can be:
        # a hostile file cannot take the server down, and a large one never sits in its memory as frames
        result = staging.read_upload(payload, fmt=fmt, force=force, duplicates=duplicates,
                                     progress=lambda done, message: bar.progress(min(done, 1.0), text=message))
    except ingest.RejectedFile as exc:
        bar.empty()
        if ingest.NO_FORMAT in str(exc):
            st.session_state[MAPPING_KEY] = {"files": payload, "force": force, "duplicates": duplicates}
            said = str(exc).split(pipeline.NO_FORMAT_ADVICE)[0]  # the rest is the command line's advice
            st.warning(f"{said}. Map its columns below; the mapping is saved as a profile for next time.")
        else:
            st.error(f"This upload cannot be read: {exc}")
            context.audit_rejected_upload([name for name, _ in payload], exc)
        return
    except Exception as exc:  # a file we did not foresee must never show a traceback
        bar.empty()
        context.audit_rejected_upload([name for name, _ in payload], f"{type(exc).__name__}: {exc}")
        st.error(f"This upload cannot be read ({type(exc).__name__}: {exc}). Nothing was loaded.")
        return
    bar.empty()
    st.session_state[UPLOAD_KEY] = result


def upload_name(report: dict) -> str:
    """Propose a dataset name from the uploaded files."""
    names = [Path(f["name"]).stem for f in report["files"]]
    base = names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"
    return "".join(c if c.isalnum() or c in " _.-" else "-" for c in base)[:64].strip(" .-_") or "Upload"


def _actor() -> Actor:
    """Return the signed-in user as the library sees them: name, force scope, admin or not."""
    return context.context().user.actor


def saved_entries() -> list[library.Entry]:
    """List the saved datasets this user may see (their force scope covers the dataset's)."""
    return library.entries(actor=_actor())


def save_upload(name: str, result: ingest.IngestResult | staging.StagedUpload) -> None:
    """Save an upload to the library, as belonging to this user and their forces, and open it."""
    try:
        library.save(name, result, actor=_actor())
    except library.LibraryError as exc:
        st.error(str(exc))
        return
    context.audit_event("save", dataset=name.strip(), rows=result.report["rows_loaded"],
                set_aside=result.report["rows_quarantined"])
    datasets.pick_next(f"lib:{name.strip()}")
    st.success(f"Saved as '{name.strip()}'. It is now the current dataset.")
    st.rerun()


def append_upload(name: str, result: ingest.IngestResult | staging.StagedUpload) -> None:
    """Append an upload to a saved dataset and open it."""
    try:
        record = library.append(name, result, actor=_actor())
    except library.LibraryError as exc:
        st.error(str(exc))
        return
    context.audit_event("append", dataset=name, rows=record["rows_loaded"], set_aside=record["rows_quarantined"])
    datasets.pick_next(f"lib:{name}")
    st.success(f"Appended {record['rows_loaded']:,} rows to '{name}'; {record['rows_quarantined']:,} set aside "
               f"({record['already_in_dataset']:,} already in the dataset).")


def may_change(entry: library.Entry) -> bool:
    """Say whether this user may delete (or, with the permission, roll back) a dataset: they saved it, or admin."""
    actor = _actor()
    return actor.admin or (entry.owner is not None and entry.owner == actor.name)


def delete_saved(name: str) -> None:
    """Delete a saved dataset (the user who saved it, or an admin)."""
    try:
        library.delete(name, actor=_actor())
    except library.LibraryError as exc:
        st.error(str(exc))
        return
    context.audit_event("delete", dataset=name)


def provenance_table(name: str) -> pd.DataFrame:
    """Return a saved dataset's loads as a table (empty if it was changed past reading since it was listed)."""
    try:
        return tables.provenance_table(library.provenance(name, actor=_actor()))
    except library.LibraryError:
        return tables.provenance_table([])


def versions_of(name: str) -> list[library.Version]:
    """Return a saved dataset's kept versions ([] if another user deleted it since it was listed)."""
    try:
        return library.versions(name, actor=_actor())
    except library.LibraryError:
        return []


def set_aside_of(name: str) -> pd.DataFrame:
    """Return a saved dataset's set-aside rows (empty if another user deleted it since it was listed)."""
    try:
        return library.quarantine(name, actor=_actor())
    except library.LibraryError:
        return pd.DataFrame()


def download_set_aside(name: str, rows: pd.DataFrame) -> None:
    """Offer a saved dataset's set-aside rows for download, audited as that dataset's (not the open one's)."""
    render.download(tables.set_aside_download(rows), f"{name}-set-aside", what="rows set aside", dataset=name)


def may_roll_back() -> bool:
    """Say whether the signed-in user may roll a saved dataset back (admins only)."""
    return context.context().user.may(access.ROLL_BACK_DATA)


def roll_back_saved(name: str, version: int) -> None:
    """Roll a saved dataset back to an earlier version (admins only), audited like save and delete."""
    if not may_roll_back():
        st.error("Only an admin can roll a dataset back.")
        return
    try:
        number = library.rollback(name, version, actor=_actor())
    except library.LibraryError as exc:
        st.error(str(exc))
        return
    context.audit_event("rollback", dataset=name, to_version=version, new_version=number)
    datasets.pick_next(f"lib:{name}")
    st.success(f"'{name}' is back at version {version}'s content, kept as version {number}.")


def mapping_step() -> None:
    """Let the user confirm a proposed column mapping for an unrecognised extract.

    Every field is listed in groups (the required date first), each with its column and a few of that column's
    values, which follow the choice; the order of day and month is read from the date column's values (and asked
    when they do not settle it); the first rows are previewed as they will load.
    """
    pending = st.session_state.get(MAPPING_KEY)
    if not pending:
        return
    from lib.ingest import mapping  # the mapping UI's pure parts

    name, data = pending["files"][0]
    raw = pending.get("raw")
    if raw is None:  # read once, in the worker, and kept while the mapping is checked
        try:
            with st.spinner(f"Reading {name}"):
                raw = worker.run(ingest.read_extract, name, staging.content(data), ingest.Limits.from_env())
        except ingest.RejectedFile as exc:
            st.error(str(exc))
            return
        pending["raw"] = raw
        pending["proposal"] = mapping.propose(raw.frame, Path(name).stem)
        pending["token"] = hashlib.sha1(repr((name, raw.columns, len(raw.frame))).encode()).hexdigest()[:8]
    proposal, token, frame = pending["proposal"], pending["token"], raw.frame
    st.subheader("Map the columns")
    aggregate = mapping.aggregate_table(frame, proposal)
    if aggregate:
        st.warning(f"{name}: {aggregate}")
        return
    st.caption("The app proposed where each field comes from, from the column names and the values. Check each "
               "field: the values under it are from the column chosen. Pick '(not in this extract)' where a field "
               "is missing.")
    for note in proposal.notes:
        if not note.startswith("force is not in the data"):
            st.caption("· " + note)
    options = [mapping.NONE, *raw.columns]
    chosen: dict[str, str | None] = {}
    dayfirst = proposal.dayfirst
    # Read once per column while the mapping is checked: each choice reruns the page, and a column can be long.
    seen = pending.setdefault("seen", {})
    for group, keys in mapping.FIELD_GROUPS:
        st.markdown(f"**{group}**")
        cols = st.columns(3)
        for i, key in enumerate(keys):
            proposed = mapping.proposed_source(proposal, key)
            with cols[i % 3]:
                pick = st.selectbox(mapping.LABELS[key], options, key=f"map_{token}_{key}",
                                    index=options.index(proposed) if proposed in options else 0)
                chosen[key] = None if pick == mapping.NONE else pick
                if (key, chosen[key]) not in seen:
                    seen[key, chosen[key]] = mapping.example_values(proposal, frame, key, chosen[key])
                st.caption(seen[key, chosen[key]] or " ")
        if key == "shift" and chosen.get("date"):  # the end of the "When" group: the order of day and month
            dayfirst = _date_order_step(frame, chosen["date"], token, proposal.dayfirst, seen)
    tactic_names = mapping.tactic_frame(proposal, frame)
    tactics_edited = None
    if len(tactic_names):
        st.markdown("**Tactic names**: match the extract's own names to the Home Office list. "
                    "Names kept as given still load, and are listed as values outside the vocabulary.")
        tactics_edited = st.data_editor(
            tactic_names, hide_index=True, width="stretch", key="tactic_editor",
            disabled=["Tactic in the extract", "Times used"],
            column_config={"Home Office tactic": st.column_config.SelectboxColumn(
                options=[mapping.KEEP, *schema.TACTICS], required=True)})
    list_columns, separator = list_columns_step(proposal, raw.columns)
    left, right = st.columns(2)
    profile_name = left.text_input("Save this mapping as profile", value=mapping.safe_name(Path(name).stem),
                                   key="mapping_name")
    force = right.text_input("Force these records belong to", value=pending.get("force") or "",
                             key="mapping_force")
    edited = mapping.chosen_frame(proposal, frame, chosen)
    try:
        profile = mapping.apply(proposal, edited, profile_name, force or "(force not named yet)", tactics_edited,
                                list_columns, separator, dayfirst)
    except ValueError as exc:
        st.error(str(exc))
        return
    with st.expander("The first rows as they will load", expanded=True):
        shown, aside = mapping.preview(profile, frame)
        if not force:
            shown = shown.drop(columns=["Force"], errors="ignore")
        st.dataframe(shown, hide_index=True, width="stretch")
        if len(aside):
            st.markdown("Set aside among the first rows:")
            st.dataframe(aside, hide_index=True, width="stretch")
    if st.button("Save profile and read the files", type="primary"):
        try:
            fmt = mapping.save(proposal, edited, profile_name, ingest.profile_dir(), force, tactics_edited,
                               list_columns, separator, dayfirst)
        except ValueError as exc:
            st.error(str(exc))
            return
        st.session_state.pop(MAPPING_KEY, None)
        read_uploads(pending["files"], fmt, pending["force"], pending["duplicates"])
        st.rerun()


DAY_FIRST_LABEL = "Day first (UK): 06/07/2014 is 6 July 2014"
MONTH_FIRST_LABEL = "Month first (US): 06/07/2014 is 7 June 2014"


def _date_order_step(frame: pd.DataFrame, column: str, token: str, proposed: bool, seen: dict) -> bool:
    """Show how the date column's values read and let the user choose the order; return dayfirst.

    `seen` keeps what a column's values say (read once per column while the mapping step is open).
    """
    from lib.ingest import mapping
    from lib.ingest.formats.profile import date_order

    if ("order", column) not in seen:
        seen["order", column] = date_order(frame[column]), mapping.date_readings(frame[column])
    order, readings = seen["order", column]
    proven = order.dayfirst
    default = proposed if proven is None else proven
    if proven is not None:
        examples = ", ".join(order.examples)
        counted = order.month_first if proven is False else order.day_first
        st.caption(f"{column}: {counted:,} distinct dates such as {examples} read only "
                   f"{'day' if proven else 'month'} first, so every date is read that way. "
                   f"They run {readings[proven][1]}.")
    else:
        st.warning(f"{column}: no date settles whether the day or the month comes first "
                   f"({order.ambiguous:,} distinct dates such as {', '.join(order.examples)} read both ways). "
                   "Choose the reading that is right:")
        example = order.examples[0] if order.examples else ""
        st.dataframe(pd.DataFrame({"Reading": [DAY_FIRST_LABEL, MONTH_FIRST_LABEL],
                                   f"{example} reads as": [mapping.read_as(example, True),
                                                           mapping.read_as(example, False)],
                                   "The dates run": [readings[True][1], readings[False][1]]}),
                     hide_index=True, width="stretch")
    pick = st.radio(f"Order of day and month in {column}", [DAY_FIRST_LABEL, MONTH_FIRST_LABEL],
                    index=0 if default else 1, key=f"map_{token}_order_{column}", horizontal=True)
    return pick == DAY_FIRST_LABEL


def list_columns_step(proposal, columns: list[str]) -> tuple[list[str], str]:
    """Let the user confirm which columns list several officers in one cell, and the separator."""
    with st.expander("Several officers in one cell", expanded=bool(proposal.list_columns)):
        st.caption("Some extracts keep one row per incident and list each officer's value in one cell, "
                   "in the same order in every column (officer 1 first): 'No | Yes'. Pick those columns: "
                   "each officer then becomes one report, and a row whose lists have different lengths is "
                   "set aside with the reason.")
        listed = st.multiselect("Columns listing the officers' values", columns,
                                default=[c for c in proposal.list_columns if c in columns], key="mapping_lists")
        separator = st.text_input("Separator between officers", value=proposal.list_separator,
                                  key="mapping_separator")
    return listed, separator


def import_national(uploaded) -> None:
    """Read the Home Office data tables (.ods) and keep the national figures they give."""
    import tempfile

    from lib.analysis import reference

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tables.ods"
        path.write_bytes(uploaded.getvalue())
        try:
            with st.spinner("Reading the Home Office tables"):  # the workbook in the worker, as every upload
                bench = reference.national_benchmarks(worker.run(reference.read_ods_tables, path))
        except Exception as exc:  # any malformed workbook gets a message, never a traceback
            detail = str(exc) if isinstance(exc, ingest.RejectedFile) else f"{type(exc).__name__}: {exc}"
            st.error(f"{uploaded.name} is not the Home Office use-of-force data tables workbook ({detail})")
            return
    reference.save_benchmarks(bench, cache.reference_dir())
    st.success(f"Imported the national figures for {bench['year']}: {bench['incidents']:,} reports.")
