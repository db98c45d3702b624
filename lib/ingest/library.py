"""Dataset library: named datasets saved as Parquet under OSE_DATA_DIR, with their provenance.

A saved dataset is a folder the engine opens directly (reports.parquet, tactics.parquet), plus
provenance.json (every load: files, when, by whom, row counts) and the rows set aside.
Appending de-duplicates on report id: a report already in the dataset is set aside, not doubled.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lib.ingest import pseudonym
from lib.ingest.formats import FILE, ROW, ROWS
from lib.ingest.pipeline import IngestResult, reason_counts, tables
from lib.model import incidents
from lib.model.paths import data_dir  # noqa: F401  (re-exported)

PROVENANCE = "provenance.json"
QUARANTINE = "quarantine.csv"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


class LibraryError(Exception):
    """A library action cannot be done; the message says why."""


@dataclass(frozen=True)
class Entry:
    """A saved dataset as the library lists it."""

    name: str
    path: Path
    reports: int
    loads: int
    updated: str


def root() -> Path:
    """Return the folder that holds saved datasets."""
    return data_dir() / "datasets"


def check_name(name: str) -> str:
    """Return a dataset name if it is safe as a folder name; raise LibraryError if not."""
    name = name.strip()
    if not _NAME_RE.match(name) or name in (".", "..") or ".." in name:
        raise LibraryError("a dataset name is 1-64 letters, digits, spaces, '.', '_' or '-', "
                           "starting with a letter or digit")
    return name


def path_of(name: str) -> Path:
    """Return the folder of a saved dataset."""
    return root() / check_name(name)


def entries() -> list[Entry]:
    """List saved datasets, newest change first."""
    if not root().is_dir():
        return []
    found = []
    for folder in root().iterdir():
        prov = folder / PROVENANCE
        if not (folder / "reports.parquet").exists() or not prov.exists():
            continue
        loads = json.loads(prov.read_text())
        found.append(Entry(folder.name, folder, pq.ParquetFile(folder / "reports.parquet").metadata.num_rows,
                           len(loads), loads[-1]["loaded_at"] if loads else ""))
    return sorted(found, key=lambda e: e.updated, reverse=True)


def provenance(name: str) -> list[dict]:
    """Return every load into a saved dataset, oldest first."""
    path = path_of(name) / PROVENANCE
    if not path.exists():
        raise LibraryError(f"there is no saved dataset called '{name}'")
    return json.loads(path.read_text())


def _load_record(result: IngestResult, user: str, action: str, extra: dict | None = None) -> dict:
    r = result.report
    return {"action": action, "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"), "by": user,
            "files": [f["name"] for f in r["files"]], "format": r["detected_format"],
            "rows_in": r["rows_in"], "rows_loaded": r["rows_loaded"],
            "rows_quarantined": r["rows_quarantined"], "incident_level": r.get("incident_level", []),
            **(extra or {})}


def save(name: str, result: IngestResult, user: str = "local user") -> Path:
    """Save an ingest result as a new named dataset; refuse to overwrite one that exists."""
    folder = path_of(name)
    if folder.exists():
        raise LibraryError(f"a dataset called '{name}' exists already: append to it or pick another name")
    tmp = folder.with_name(folder.name + ".saving")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    reports, tactics = tables(result)
    pq.write_table(reports, tmp / "reports.parquet")
    pq.write_table(tactics, tmp / "tactics.parquet")
    result.quarantine.astype("string").to_csv(tmp / QUARANTINE, index=False)
    (tmp / PROVENANCE).write_text(json.dumps([_load_record(result, user, "create")], indent=2))
    tmp.rename(folder)  # appear whole or not at all
    return folder


def append(name: str, result: IngestResult, user: str = "local user") -> dict:
    """Append an ingest result to a saved dataset, setting aside reports it already holds."""
    folder = path_of(name)
    if not (folder / "reports.parquet").exists():
        raise LibraryError(f"there is no saved dataset called '{name}'")
    old_reports = _pseudonymised(pq.read_table(folder / "reports.parquet"))
    old_tactics = pq.read_table(folder / "tactics.parquet")
    known = set(old_reports.column("report_id").to_pylist())
    new = result.reports
    repeat = new["report_id"].isin(known)
    set_aside = pd.DataFrame({FILE: new.loc[repeat, FILE].astype("string"),
                              ROW: new.loc[repeat, ROW].astype("int64"),
                              ROWS: new.loc[repeat, ROWS].astype("int64"),
                              "reason": ("report '" + new.loc[repeat, "report_id"].astype(str)
                                         + f"' is already in dataset '{name}'").astype("string")})
    kept = new[~repeat]
    kept_tactics = result.tactics[result.tactics["report_id"].isin(set(kept["report_id"]))]
    added = IngestResult(kept, kept_tactics, pd.concat([result.quarantine, set_aside], ignore_index=True),
                         result.report)
    reports, tactics = tables(added)
    merged_reports = pa.concat_tables([old_reports, reports.cast(old_reports.schema)],
                                      promote_options="permissive")
    # A field recorded per incident in either load is counted in incidents across the whole dataset.
    merged_reports = incidents.with_marking(merged_reports, [*incidents.marked(old_reports.schema),
                                                             *incidents.marked(reports.schema)])
    merged_tactics = pa.concat_tables([old_tactics, tactics.cast(old_tactics.schema)],
                                      promote_options="permissive")
    tmp = folder.with_name(folder.name + ".appending")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(folder, tmp)
    pq.write_table(merged_reports, tmp / "reports.parquet")
    pq.write_table(merged_tactics, tmp / "tactics.parquet")
    old_q = pd.read_csv(tmp / QUARANTINE, dtype=str) if (tmp / QUARANTINE).exists() else pd.DataFrame()
    old_q = pseudonym.pseudonymise_columns(old_q, [c for c in old_q.columns
                                                   if c == "officer_id" or pseudonym.is_officer_id_header(c)])
    pd.concat([old_q, added.quarantine.astype("string")], ignore_index=True).to_csv(tmp / QUARANTINE,
                                                                                  index=False)
    record = _load_record(result, user, "append", {
        "rows_loaded": int(kept[ROWS].sum()),
        "rows_quarantined": result.report["rows_quarantined"] + int(set_aside[ROWS].sum()),
        "already_in_dataset": int(set_aside[ROWS].sum()),
        "quarantine_reasons": reason_counts(added.quarantine)})
    loads = json.loads((tmp / PROVENANCE).read_text()) + [record]
    (tmp / PROVENANCE).write_text(json.dumps(loads, indent=2))
    backup = folder.with_name(folder.name + ".previous")
    shutil.rmtree(backup, ignore_errors=True)
    folder.rename(backup)
    tmp.rename(folder)
    shutil.rmtree(backup, ignore_errors=True)
    return record


def _pseudonymised(reports: pa.Table) -> pa.Table:
    """Return saved reports with pseudonymised officer ids (a dataset saved before pseudonymisation is fixed)."""
    if "officer_id" not in reports.column_names:
        return reports
    at = reports.column_names.index("officer_id")
    ids = pseudonym.pseudonymise(reports.column("officer_id"))
    return reports.set_column(at, pa.field("officer_id", ids.type), ids)


def delete(name: str) -> None:
    """Delete a saved dataset and everything in its folder."""
    folder = path_of(name)
    if not folder.exists():
        raise LibraryError(f"there is no saved dataset called '{name}'")
    shutil.rmtree(folder)


def quarantine(name: str) -> pd.DataFrame:
    """Return every row set aside across a saved dataset's loads."""
    path = path_of(name) / QUARANTINE
    return pd.read_csv(path, dtype=str) if path.exists() else pd.DataFrame(columns=[FILE, ROW, ROWS, "reason"])

