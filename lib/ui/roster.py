"""Rosters (officers, training, exposure) and debriefs for a dataset, and the training results built on them."""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from pyarrow import ArrowException

from lib import ingest
from lib.analysis import debriefs, training, training_dense
from lib.engine.query import Filters, Scope
from lib.engine.store import Dataset
from lib.ingest import debriefs as debrief_files  # reading debrief files
from lib.ingest import roster as roster_files  # reading roster files (this module keeps them per session)
from lib.ingest import worker  # every upload is read in a worker process, inside the upload budget
from lib.model import paths
from lib.ui import cache, context

ROSTER_KEY = "_ose_roster"


ROSTER_MAPPING_KEY = "_ose_roster_mapping"


PEOPLE = ("officers", "training")  # the roster tables but the exposure (millions of officer-months)


def _uploaded(ds: Dataset) -> dict[str, pd.DataFrame] | None:
    """Return the roster tables uploaded this session for a dataset, if any."""
    return st.session_state.get(ROSTER_KEY, {}).get(ds.id)


def roster_tables(ds: Dataset, kinds: tuple[str, ...] = roster_files.FOLDER_TABLES) -> dict[str, pd.DataFrame]:
    """Return the roster tables for a dataset: uploaded this session, else those saved beside it (kinds of them)."""
    uploaded = _uploaded(ds)
    if uploaded:
        return uploaded
    return _saved_roster(ds, kinds)


# A resource, not data: the frames (3 million exposure rows at a million reports) are shared, not unpickled on
# every rerun; every caller derives new frames (filter, assign, copy) and never changes these in place.
@st.cache_resource(show_spinner=False, max_entries=32, hash_funcs=cache.KEYS)
def _saved_roster(ds: Dataset, kinds: tuple[str, ...] = roster_files.FOLDER_TABLES) -> dict[str, pd.DataFrame]:
    folder = Path(ds.source)
    # Pseudonymised as the engine pseudonymised the reports, so a folder of raw ids still joins.
    return roster_files.read_folder(folder, kinds) if folder.is_dir() else {}


def scoped_roster(ds: Dataset, scope: Scope, kinds: tuple[str, ...] = roster_files.FOLDER_TABLES
                  ) -> dict[str, pd.DataFrame]:
    """Return the roster tables a scope allows; perturbed, every officer carries a record key (the cell key method)."""
    tables = training.scoped_roster(roster_tables(ds, kinds), scope)
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
    if _uploaded(ds):
        return _compliance(scoped_roster(ds, scope), as_of)
    return _saved_compliance(ds, scope, as_of)


def compliance_summary(ds: Dataset, scope: Scope, as_of: date, per_officer: pd.DataFrame, group: str) -> pd.DataFrame:
    """Return `training.summarise_compliance` of per_officer by one group, with intervals (not yet protected).

    Kept per dataset version and scope, as the compliance it sums, unless the roster was uploaded this session.
    """
    if _uploaded(ds):
        return _compliance_summary(per_officer, group, scope.perturbed)
    return _saved_compliance_summary(ds, scope, as_of, group)


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs=cache.KEYS)
def _saved_compliance_summary(ds: Dataset, scope: Scope, as_of: date, group: str) -> pd.DataFrame:
    # No filter changes it: summed once, not on every rerun (a tenth of a second at national scale).
    return _compliance_summary(_saved_compliance(ds, scope, as_of), group, scope.perturbed)


def _compliance_summary(per_officer: pd.DataFrame, group: str, perturbed: bool) -> pd.DataFrame:
    return training.with_intervals(training.summarise_compliance(per_officer, by=(group,), perturbed=perturbed))


# A resource: shared, never changed in place (every caller derives new frames from it).
@st.cache_resource(show_spinner=False, max_entries=32, hash_funcs=cache.KEYS)
def _saved_compliance(ds: Dataset, scope: Scope, as_of: date) -> pd.DataFrame | None:
    # Kept on disk too: at national scale reading the roster and summing its training hours takes seconds.
    return _kept_on_disk(_derived_path(ds, "compliance", PEOPLE, (_roster_scope(scope), scope.perturbed, as_of),
                                       "parquet"),
                         lambda: _compliance(scoped_roster(ds, scope, PEOPLE), as_of))


def _kept_on_disk(path: Path | None, build: Callable[[], Any], read: Callable[[Path], Any] = pd.read_parquet,
                  write: Callable[[Any, Path], None] = lambda frame, to: frame.to_parquet(to, index=False)) -> Any:
    """Return what is kept at path (a frame, or what read reads), or build it and keep it there.

    None: no path, or nothing to build. A file read marks itself used; one that cannot be read is rebuilt; a write
    goes to a partial file renamed whole, so a reader never sees half of one.
    """
    if path is None:
        return None
    with contextlib.suppress(OSError, ValueError, EOFError, ArrowException):
        found = read(path)
        _used(path)
        return found
    found = build()
    if found is not None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            write(found, partial)
            os.replace(partial, path)
        _prune(path.parent)
    return found


UNUSED_DAYS = 30  # a derived file no server has read for this long is removed when another is written beside it


def _used(path: Path) -> None:
    # Its modification time says when it was last read: the files of old dataset versions age out, in-use ones stay.
    with contextlib.suppress(OSError):
        os.utime(path)


def _prune(folder: Path) -> None:
    """Remove the derived files in folder unread for UNUSED_DAYS (old dataset versions), and day-old partial writes."""
    now = time.time()
    for path in folder.glob("*"):
        with contextlib.suppress(OSError):
            age = now - path.stat().st_mtime
            if age > UNUSED_DAYS * 86_400 or (path.name.endswith(".partial") and age > 86_400):
                path.unlink()


def has_people(ds: Dataset) -> bool:
    """Say whether a dataset has an officer roster with training records (uploaded this session, or saved)."""
    uploaded = _uploaded(ds)
    if uploaded:
        return all(kind in uploaded for kind in PEOPLE)
    folder = Path(ds.source)
    return all((folder / f"{kind}.parquet").exists() for kind in PEOPLE)


def _derived_path(ds: Dataset, kind: str, tables: tuple[str, ...], key: object, suffix: str) -> Path | None:
    """Return where something derived from a dataset's saved roster tables is kept (None: a table is missing)."""
    folder = Path(ds.source)
    files = [folder / f"{table}.parquet" for table in tables]
    if not all(path.exists() for path in files):
        return None
    stamp = [(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files]
    digest = hashlib.sha1(repr((training_dense.FORMAT, ds.id, stamp, key)).encode()).hexdigest()[:16]
    return paths.cache_dir() / kind / f"{digest}.{suffix}"


def _compliance(tables: dict[str, pd.DataFrame], as_of: date) -> pd.DataFrame | None:
    if "officers" not in tables or "training" not in tables:
        return None
    return training.compliance(tables["training"], tables["officers"], as_of)


def overdue_officers(ds: Dataset, as_of: date) -> pd.DataFrame | None:
    """Return the overdue officers this user may see one by one (a supervisor: their teams), or None."""
    if not context.officer_detail_shown("officers overdue"):
        return None
    scope = context.context().officer_scope
    if _uploaded(ds):
        per_officer = compliance(ds, scope, as_of)
        return None if per_officer is None else training.overdue(per_officer)
    return _saved_overdue(ds, scope, as_of)


# A resource, as the compliance it is drawn from: no filter changes it, and at national scale sorting a few hundred
# thousand officers on every rerun is a third of a second.
@st.cache_resource(show_spinner=False, max_entries=32, hash_funcs=cache.KEYS)
def _saved_overdue(ds: Dataset, scope: Scope, as_of: date) -> pd.DataFrame | None:
    def build() -> pd.DataFrame | None:
        per_officer = _saved_compliance(ds, scope, as_of)
        return None if per_officer is None else training.overdue(per_officer)

    # On disk beside the compliance it is drawn from (sorting the names is most of its cost).
    return _kept_on_disk(_derived_path(ds, "overdue", PEOPLE, (_roster_scope(scope), scope.perturbed, as_of),
                                       "parquet"), build)


def prefetch_training_results(ds: Dataset, filters: Filters, scope: Scope) -> None:
    """Start `training_results` on another thread (saved rosters only), while the page draws what comes first."""
    if not _uploaded(ds):
        cache.in_background(_saved_training_results, ds, filters, scope)


def training_results(ds: Dataset, filters: Filters, scope: Scope) -> tuple[dict, pd.DataFrame] | None:
    """Return the training effects and event study (cached unless the roster was uploaded this session)."""
    if _uploaded(ds):
        tables = training.scoped_roster(roster_tables(ds), scope)
        dense = _dense_roster(tables)
        keys = _officer_keys(dense) if scope.perturbed and dense is not None else None
        key_rows = _key_rows(ds, dense) if dense is not None else None
        results = _training_results(dense, keys, key_rows, ds, filters, scope)
    else:
        results = _saved_training_results(ds, filters, scope)
    if results is None:
        return None
    found, study = results
    return cache.protect(training.effects, found), cache.protect(training.event_profile, study)


@st.cache_data(show_spinner="Estimating the effect of training", max_entries=64, hash_funcs=cache.KEYS)
def _saved_training_results(ds: Dataset, filters: Filters, scope: Scope) -> tuple[dict, pd.DataFrame] | None:
    # Keyed on the scope, and so on `scope.perturbed`: published and exact results are cached apart.
    dense = _saved_dense_roster(ds, _roster_scope(scope))
    if dense is None:
        return None
    keys = _saved_officer_keys(ds, _roster_scope(scope)) if scope.perturbed else None
    return _training_results(dense, keys, _saved_key_rows(ds, _roster_scope(scope)), ds, filters, scope)


def _roster_scope(scope: Scope) -> tuple:
    # What of a scope chooses the roster's officers: one set of matrices serves viewers and analysts alike.
    return scope.forces, scope.areas, getattr(scope, "teams", None)


@st.cache_resource(show_spinner="Preparing shifts worked per officer and month", max_entries=16,
                   hash_funcs=cache.KEYS)
def _saved_dense_roster(ds: Dataset, roster_scope: tuple) -> training_dense.DenseRoster | None:
    # Once per dataset version and scope, and kept on disk: no filter changes shifts worked or training dates,
    # and at national scale reading and arranging millions of officer-months takes tens of seconds.
    path = _derived_path(ds, "training", ("officers", "exposure"), roster_scope, "pickle")
    if path is None:
        return None
    found = training_dense.load(path)
    if found is not None:
        _used(path)
        return found
    forces, areas, teams = roster_scope
    tables = training.scoped_roster(_saved_roster(ds), Scope(forces=forces, areas=areas, teams=teams))
    dense = _dense_roster(tables)
    if dense is not None:
        training_dense.save(dense, path)
        _prune(path.parent)
    return dense


def _dense_roster(tables: dict[str, pd.DataFrame]) -> training_dense.DenseRoster | None:
    if "exposure" not in tables or "officers" not in tables:
        return None
    return training_dense.DenseRoster(training.roster_months(tables["exposure"], tables["officers"]))


@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs=cache.KEYS)
def _saved_officer_keys(ds: Dataset, roster_scope: tuple) -> np.ndarray:
    # Hashed once per roster, not per filter state.
    return _officer_keys(_saved_dense_roster(ds, roster_scope))


@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs=cache.KEYS)
def _saved_key_rows(ds: Dataset, roster_scope: tuple) -> np.ndarray | None:
    # Once per dataset version and roster scope, as the matrices are, and on disk beside them: matching a few
    # hundred thousand officer ids to the roster's takes a third of a second.
    dense = _saved_dense_roster(ds, roster_scope)
    if dense is None:
        return None
    return _kept_on_disk(_derived_path(ds, "training", ("officers", "exposure"), ("key rows", roster_scope), "npy"),
                         lambda: _key_rows(ds, dense), _read_rows, _write_rows)


def _read_rows(path: Path) -> np.ndarray:
    found = np.load(path, allow_pickle=False)
    if found.dtype != np.int64 or found.ndim != 1:
        raise ValueError(f"{path.name} holds no roster rows")
    return found


def _write_rows(rows: np.ndarray, path: Path) -> None:
    with path.open("wb") as out:  # a file, not a name: np.save would add ".npy" to a partial file's name
        np.save(out, rows, allow_pickle=False)


def _key_rows(ds: Dataset, dense: training_dense.DenseRoster) -> np.ndarray | None:
    return training_dense.key_rows(cache.engine(), ds, dense)


def _officer_keys(dense: training_dense.DenseRoster) -> np.ndarray:
    """Return each roster officer's record key, by row of the matrices."""
    return roster_files.officer_keys(dense.ids.take(dense.officers).to_numpy(dtype=object))


def _training_results(dense: training_dense.DenseRoster | None, keys: np.ndarray | None,
                      key_rows: np.ndarray | None, ds: Dataset, filters: Filters,
                      scope: Scope) -> tuple[dict, pd.DataFrame] | None:
    if dense is None:
        return None
    panel = training_dense.counted(cache.engine(), ds, filters, scope, dense, keys, key_rows)
    return training_dense.effects_or_rows(panel, perturbed=scope.perturbed)
