"""Rosters (officers, training, exposure) and debriefs for a dataset, and the training results built on them."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from lib import ingest
from lib.analysis import debriefs, training
from lib.engine.query import Filters, Scope
from lib.engine.store import Dataset
from lib.ingest import debriefs as debrief_files  # reading debrief files
from lib.ingest import roster as roster_files  # reading roster files (this module keeps them per session)
from lib.ingest import worker  # every upload is read in a worker process, inside the upload budget
from lib.ui import cache, context

ROSTER_KEY = "_ose_roster"


ROSTER_MAPPING_KEY = "_ose_roster_mapping"


def roster_tables(ds: Dataset) -> dict[str, pd.DataFrame]:
    """Return the roster tables for a dataset: uploaded this session, else those saved beside it."""
    uploaded = st.session_state.get(ROSTER_KEY, {}).get(ds.id)
    if uploaded:
        return uploaded
    return _saved_roster(ds)


# A resource, not data: the frames (3 million exposure rows at a million reports) are shared, not unpickled on
# every rerun; every caller derives new frames (filter, assign, copy) and never changes these in place.
@st.cache_resource(show_spinner=False, max_entries=32, hash_funcs=cache.KEYS)
def _saved_roster(ds: Dataset) -> dict[str, pd.DataFrame]:
    folder = Path(ds.source)
    # Pseudonymised as the engine pseudonymised the reports, so a folder of raw ids still joins.
    return roster_files.read_folder(folder) if folder.is_dir() else {}


def scoped_roster(ds: Dataset, scope: Scope) -> dict[str, pd.DataFrame]:
    """Return the roster tables a scope allows; perturbed, every officer carries a record key (the cell key method)."""
    tables = training.scoped_roster(roster_tables(ds), scope)
    if scope.perturbed and "officers" in tables:
        tables["officers"] = roster_files.with_officer_keys(tables["officers"])
    return tables


def load_roster(ds: Dataset, files: list) -> None:
    """Read uploaded roster files (officers, training, exposure) for this session and dataset."""
    for f in files:
        try:
            table = worker.run(roster_files.read, f.name, f.getvalue())
        except ingest.RejectedFile as exc:
            st.warning(f"{f.name}: {exc}. Map its columns below.")
            st.session_state[ROSTER_MAPPING_KEY] = (f.name, f.getvalue())
            continue
        add_roster_table(ds, f.name, table)


def add_roster_table(ds: Dataset, name: str, table) -> None:
    """Attach one read roster table to this session's dataset and say what was loaded."""
    tables = dict(roster_tables(ds))
    records = table.records.drop(columns=["_file", "_row"])
    if table.kind == "officers" and "pst_trained_on" not in records:
        records["pst_trained_on"] = pd.NaT
    tables[table.kind] = records
    reasons = f" ({', '.join(sorted(set(table.quarantine['reason'])))})" if len(table.quarantine) else ""
    st.success(f"{name}: {table.kind} table, {table.rows_in:,} rows read, {len(table.records):,} loaded, "
               f"{table.rows_in - len(table.records):,} set aside{reasons}")
    if "training" in tables and "officers" in tables:
        first = tables["training"].groupby("officer_id")["trained_on"].min()
        officers = tables["officers"].copy()
        officers["pst_trained_on"] = officers["officer_id"].map(first)
        tables["officers"] = officers
    st.session_state.setdefault(ROSTER_KEY, {})[ds.id] = tables


def _panel(tables: dict[str, pd.DataFrame], ds: Dataset, filters: Filters, scope: Scope,
           months: training.RosterMonths | None = None) -> pd.DataFrame | None:
    if "exposure" not in tables or "officers" not in tables:
        return None
    if months is None:
        scoped = training.scoped_roster(tables, scope)
        months = training.roster_months(scoped["exposure"], scoped["officers"])
    counts = training.officer_month_counts(cache.engine(), ds, filters, scope)
    panel = training.panel_from_counts(counts, None, None, months=months)
    # Perturbed, the published counts of officers need each officer's key (counts of reports carry theirs):
    # hashed once per officer, not sorted over the panel's millions of officer-months.
    if scope.perturbed:
        codes, ids = pd.factorize(panel["officer_id"])
        panel[training.OFFICER_KEY] = roster_files.officer_keys(np.asarray(ids, dtype=object))[codes]
    return panel


DEBRIEFS_KEY = "_ose_debriefs"


def load_debriefs(ds: Dataset, uploaded) -> None:
    """Read an uploaded debrief file for this session and dataset."""
    try:
        read = worker.run(debrief_files.read, uploaded.name, uploaded.getvalue())
    except ingest.RejectedFile as exc:
        st.error(f"{uploaded.name}: {exc}")
        return
    st.session_state.setdefault(DEBRIEFS_KEY, {})[ds.id] = read.records
    set_aside = read.rows_in - len(read.records)
    st.success(f"{uploaded.name}: {read.rows_in:,} rows read, {len(read.records):,} debriefs loaded, "
               f"{set_aside:,} set aside" + (" (no report or incident id)" if set_aside else ""))


def demo_debriefs(ds: Dataset) -> None:
    """Make synthetic debriefs for the synthetic sample, so a demo can show the section."""
    reports = cache.engine().execute(cache.engine().reports(ds).select("report_id", "occurred_at", "officer_injured",
                                                            "officer_assaulted"))
    made = debriefs.synthesise(reports, seed=1)
    read = debrief_files.read("synthetic-debriefs.csv", made.to_csv(index=False).encode())
    st.session_state.setdefault(DEBRIEFS_KEY, {})[ds.id] = read.records


def debrief_records(ds: Dataset) -> pd.DataFrame | None:
    """Return the debriefs loaded this session for a dataset, if any."""
    return st.session_state.get(DEBRIEFS_KEY, {}).get(ds.id)


def roster_mapping_step(ds: Dataset) -> None:
    """Let the user map the columns of a roster file whose headers were not recognised."""
    pending = st.session_state.get(ROSTER_MAPPING_KEY)
    if not pending:
        return
    name, data, *read = pending
    if read:
        raw = read[0]
    else:  # read once, in the worker, and kept while the mapping is checked
        try:
            raw = worker.run(ingest.read_extract, name, data, ingest.Limits.from_env())
        except ingest.RejectedFile as exc:
            st.error(str(exc))
            st.session_state.pop(ROSTER_MAPPING_KEY, None)
            return
        st.session_state[ROSTER_MAPPING_KEY] = (name, data, raw)
    proposed_kind, _ = roster_files.propose(raw.columns)
    kinds = list(roster_files.ALIASES)
    kind = st.selectbox(f"What does {name} hold?", kinds, index=kinds.index(proposed_kind), key="roster_kind")
    edited = st.data_editor(roster_files.mapping_frame(kind, raw.columns), hide_index=True, width="stretch",
                            key=f"roster_mapping_{kind}", disabled=["Field"],
                            column_config={"Source column": st.column_config.SelectboxColumn(
                                options=[roster_files.NONE, *raw.columns], required=True)})
    if st.button("Read with this mapping"):
        try:
            table = worker.run(roster_files.read, name, data, kind=kind,
                               mapping=roster_files.mapping_from_frame(edited))
        except ingest.RejectedFile as exc:
            st.error(str(exc))
            return
        st.session_state.pop(ROSTER_MAPPING_KEY, None)
        add_roster_table(ds, name, table)


def compliance(ds: Dataset, scope: Scope, as_of: date) -> pd.DataFrame | None:
    """Return each officer's training hours against the standard in a scope (None without a roster).

    Kept per dataset version and scope unless the roster was uploaded this session: no filter changes it.
    """
    if st.session_state.get(ROSTER_KEY, {}).get(ds.id):
        return _compliance(scoped_roster(ds, scope), as_of)
    return _saved_compliance(ds, scope, as_of)


# A resource: shared, never changed in place (every caller derives new frames from it).
@st.cache_resource(show_spinner=False, max_entries=32, hash_funcs=cache.KEYS)
def _saved_compliance(ds: Dataset, scope: Scope, as_of: date) -> pd.DataFrame | None:
    return _compliance(scoped_roster(ds, scope), as_of)


def _compliance(tables: dict[str, pd.DataFrame], as_of: date) -> pd.DataFrame | None:
    if "officers" not in tables or "training" not in tables:
        return None
    return training.compliance(tables["training"], tables["officers"], as_of)


def overdue_officers(ds: Dataset, as_of: date) -> pd.DataFrame | None:
    """Return the overdue officers this user may see one by one (a supervisor: their teams), or None."""
    if not context.officer_detail_shown("officers overdue"):
        return None
    per_officer = compliance(ds, context.context().officer_scope, as_of)
    return None if per_officer is None else training.overdue(per_officer)


def training_results(ds: Dataset, filters: Filters, scope: Scope) -> tuple[dict, pd.DataFrame] | None:
    """Return the training effects and event study (cached unless the roster was uploaded this session)."""
    if st.session_state.get(ROSTER_KEY, {}).get(ds.id):
        results = _training_results(_panel(roster_tables(ds), ds, filters, scope), scope.perturbed)
    else:
        results = _saved_training_results(ds, filters, scope)
    if results is None:
        return None
    found, study = results
    return cache.protect(training.effects, found), cache.protect(training.event_profile, study)


@st.cache_data(show_spinner="Estimating the effect of training", max_entries=64, hash_funcs=cache.KEYS)
def _saved_training_results(ds: Dataset, filters: Filters, scope: Scope) -> tuple[dict, pd.DataFrame] | None:
    # Keyed on the scope, and so on `scope.perturbed`: published and exact results are cached apart.
    return _training_results(_panel(_saved_roster(ds), ds, filters, scope, _saved_roster_months(ds, scope)),
                             scope.perturbed)


@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs=cache.KEYS)
def _saved_roster_months(ds: Dataset, scope: Scope) -> training.RosterMonths | None:
    # Once per dataset version and scope, not per filter state: no filter changes shifts worked or training dates.
    tables = training.scoped_roster(_saved_roster(ds), scope)
    if "exposure" not in tables or "officers" not in tables:
        return None
    return training.roster_months(tables["exposure"], tables["officers"])


def _training_results(panel: pd.DataFrame | None, perturbed: bool) -> tuple[dict, pd.DataFrame] | None:
    if panel is None:
        return None
    return training.effects_and_profile(panel, perturbed=perturbed)
