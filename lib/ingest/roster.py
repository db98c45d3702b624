"""Officer roster extracts: officers, training events and exposure, read through the safe ingest reader.

A force's roster usually arrives as one or more spreadsheets: who the officers are (a pseudonymised
id, role, team), what training each received (date, course, hours), and how many shifts or hours
each worked per month (the exposure that turns counts into risk). Columns are matched by name;
rows that cannot be used are set aside with a reason and the counts reconcile. Officer ids are
pseudonymised as they are read, with the same key as the reports (lib/ingest/pseudonym.py), so a roster
joins to reports loaded before or after it and no raw id is kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from lib import ingest
from lib.ingest import pseudonym
from lib.ingest.formats import ROWS, empty_quarantine
from lib.ingest.pipeline import record_keys
from lib.ingest.tables import Column, TableSpec, read_table
from lib.model import values
from lib.privacy import cellkey

OFFICER_ID_ALIASES = ("officer id", "officer", "pseudonymised id", "staff id", "collar number", "pseudonym")


def _officer_ids(cells: pd.Series) -> pd.Series:
    """Pseudonymise officer ids as they are read, so no raw id is kept."""
    try:
        return pseudonym.pseudonymise(values.blank_to_null(cells))
    except pseudonym.PseudonymKeyError as exc:
        raise ingest.RejectedFile(f"officer ids cannot be pseudonymised: {exc}") from exc


def _negative_counts(records: pd.DataFrame) -> pd.Series:
    return (records["shifts"].fillna(0) < 0) | (records["hours_worked"].fillna(0) < 0)


_OFFICER_ID = Column("officer_id", "string", OFFICER_ID_ALIASES, required=True, missing="no officer id",
                     parse=_officer_ids)
# Each roster table: its columns with the header names (normalised) that mean them. A row needs an
# officer id, and a readable date where the table has a date column.
TABLES: dict[str, TableSpec] = {
    "officers": TableSpec("officers", (
        _OFFICER_ID,
        Column("officer_role", "category", ("role", "main duty", "officer role", "duty")),
        Column("team", "category", ("team", "unit", "shift team")),
        Column("force", "category", ("force", "police force")),
        Column("area", "category", ("area", "bcu", "division", "borough")),
        Column("length_of_service_years", "float", ("length of service", "years of service", "service years",
                                                    "length of service years")),
    ), shown_chars=30),
    "training": TableSpec("training", (
        _OFFICER_ID,
        Column("trained_on", "date", ("date", "training date", "trained on", "course date", "date completed"),
               required=True, only_if_present=True),
        Column("course", "category", ("course", "course name", "training", "module")),
        Column("hours", "float", ("hours", "training hours", "duration hours", "duration")),
    ), shown_chars=30),
    "exposure": TableSpec("exposure", (
        _OFFICER_ID,
        Column("month", "date", ("month", "period", "month starting"), required=True, only_if_present=True),
        Column("shifts", "float", ("shifts", "shifts worked", "tours", "duties")),
        Column("hours_worked", "float", ("hours worked", "hours on duty", "duty hours")),
    ), checks=((_negative_counts, "negative shifts or hours"),), shown_chars=30),
}
# table -> canonical column -> header names (normalised) that mean it
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {name: spec.aliases for name, spec in TABLES.items()}
# What marks each table out: the columns whose presence says which kind of roster file it is.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "training": ("trained_on", "course", "hours"),
    "exposure": ("month", "shifts", "hours_worked"),
    "officers": ("officer_role", "team"),
}


@dataclass
class RosterTable:
    """One roster table read from a file, the rows set aside, and how columns were matched."""

    kind: str
    records: pd.DataFrame
    quarantine: pd.DataFrame = field(default_factory=empty_quarantine)
    mapping: dict[str, str] = field(default_factory=dict)

    @property
    def rows_in(self) -> int:
        return len(self.records) + (int(self.quarantine[ROWS].sum()) if len(self.quarantine) else 0)


def _match(columns: list[str], kind: str) -> dict[str, str]:
    return TABLES[kind].match(columns)


def detect_kind(columns: list[str]) -> str | None:
    """Say whether a header is a training, exposure or officers table (None if it is none of them)."""
    best, score = None, 0
    for kind in ("training", "exposure", "officers"):
        mapping = _match(columns, kind)
        if "officer_id" not in mapping:
            continue
        hits = sum(c in mapping for c in SIGNATURES[kind])
        if hits > score:
            best, score = kind, hits
    return best


def propose(columns: list[str]) -> tuple[str, dict[str, str]]:
    """Propose a table kind and column mapping for a roster file whose headers were not recognised."""
    kind = detect_kind(columns) or "training"
    return kind, _match(columns, kind)


def read(name: str, data: bytes, kind: str | None = None, limits: ingest.Limits | None = None,
         mapping: dict[str, str] | None = None) -> RosterTable:
    """Read one roster file; set aside rows with no officer id or an unreadable date.

    `kind` and `mapping` (canonical column -> source column) come from the user's mapping step
    when the headers were not recognised by name.
    """
    raw = ingest.read_extract(name, data, limits or ingest.Limits.from_env())
    kind = kind or detect_kind(raw.columns)
    if kind is None:
        raise ingest.RejectedFile(f"{name} is not a roster: it needs an officer id column and role/team, "
                                  "training date/course/hours, or month/shifts columns")
    if kind not in ALIASES:
        raise ingest.RejectedFile(f"unknown roster table '{kind}'; tables are {', '.join(ALIASES)}")
    if mapping is not None:
        unknown = sorted(set(mapping.values()) - set(raw.columns))
        if unknown:
            raise ingest.RejectedFile(f"{name} has no column(s) {', '.join(unknown)}")
        mapping = {canon: col for canon, col in mapping.items() if canon in ALIASES[kind] and col}
    else:
        mapping = _match(raw.columns, kind)
    if "officer_id" not in mapping:
        raise ingest.RejectedFile(f"{name} has no officer id column")
    table = read_table(TABLES[kind], raw.frame, mapping)
    quarantine = pd.concat([raw.quarantine, table.quarantine], ignore_index=True)
    return RosterTable(kind, table.records.reset_index(drop=True), quarantine, mapping)


# The roster tables a dataset folder may hold beside its reports, as lib.synth writes them.
FOLDER_TABLES = ("officers", "training", "exposure")


def read_folder(folder: Path, kinds: tuple[str, ...] = FOLDER_TABLES) -> dict[str, pd.DataFrame]:
    """Return the roster tables saved in a dataset folder (officers/training/exposure.parquet), ids pseudonymised.

    A folder not written by the ingester (the bundled sample) holds raw officer ids: hashed here with the
    reports' key, they join to the reports the engine pseudonymised as it opened them, and no raw id is shown.
    kinds: the tables to read (the exposure table is the large one: millions of officer-months).
    """
    found = {}
    for kind in kinds:
        path = folder / f"{kind}.parquet"
        if path.exists():
            try:
                found[kind] = pseudonym.pseudonymise_columns(pd.read_parquet(path), ["officer_id"])
            except pseudonym.PseudonymKeyError as exc:
                raise ingest.RejectedFile(f"officer ids cannot be pseudonymised: {exc}") from exc
    return found


NONE = "(not in this file)"


# Beside each officer in a roster frame under the cell key method: their record key (`training.OFFICER_KEY`).
OFFICER_KEY = cellkey.key_column("officer_id")


def officer_keys(ids: pd.Series | np.ndarray) -> np.ndarray:
    """Return each officer's record key (0..255): a keyed hash of their pseudonym, as a report's is of its id.

    Under the installation's secret, so an officer keeps one key in every roster, session and query, and a
    count of officers is perturbed by the sum of their keys like a count of reports.
    """
    unique, inverse = np.unique(np.asarray(ids).astype(str), return_inverse=True)
    return record_keys(pa.array(unique, pa.string())).to_numpy().astype(np.int64)[inverse.reshape(-1)]


def with_officer_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a roster frame with each officer's record key beside them (`OFFICER_KEY`)."""
    return frame.assign(**{OFFICER_KEY: officer_keys(frame["officer_id"])})


def mapping_frame(kind: str, columns: list[str]) -> pd.DataFrame:
    """Return one line per roster field with the column proposed for it, for the user to edit."""
    proposed = _match(columns, kind)
    return pd.DataFrame({"Field": list(ALIASES[kind]),
                         "Source column": [proposed.get(f, NONE) for f in ALIASES[kind]]})


def mapping_from_frame(frame: pd.DataFrame) -> dict[str, str]:
    """Turn the user's edited mapping table back into canonical column -> source column."""
    return {row["Field"]: row["Source column"] for row in frame.to_dict("records")
            if row["Source column"] not in (NONE, "", None)}
