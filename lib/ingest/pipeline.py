"""Ingest extracts: read CSV, Parquet or Excel safely, detect the format, adapt, quarantine, report.

Run headless for scheduled loads:

    python -m lib.ingest FILE... --out DIR [--format auto|canonical|uk-national|profile:NAME]

It writes the canonical dataset (Parquet) and DIR/report.json, exits 0 on success and 2 with a
one-line reason on stderr when a file is rejected. Nothing is lost: every data row is either
loaded or set aside in the quarantine with its reason, and rows_in = rows_loaded + rows_quarantined.
Officer ids are pseudonymised (lib/ingest/pseudonym.py) as the reports leave the format adapter, in the
reports and in the set-aside rows' cells alike, so no raw id is stored, shown or exported.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lib.ingest import pseudonym
from lib.ingest.batches import BatchSource, FileBatches, NotStreamable, ReadExactly, batch_rows, open_batches
from lib.ingest.formats import FILE, ROW, ROWS, Adapted, Format, empty_quarantine
from lib.ingest.formats.canonical import CanonicalFormat
from lib.ingest.formats.lists import ITEMS, collapse
from lib.ingest.reading import Limits, RawExtract, RejectedFile, read_extract
from lib.model import incidents, kinds, schema
from lib.model.files import write_whole_folder
from lib.model.paths import data_dir
from lib.model.settings import PSEUDONYM_KEY, SettingsError, settings

Progress = Callable[[float, str], None]
AUTO = "auto"
DUPLICATE_CHOICES = ("set-aside", "keep-all")
MIN_SCORE = 0.6
NO_FORMAT = "no known format recognises its header"
# Beside a dataset folder's tables when asked for (an app upload): each loaded report's file, row and row count,
# in the reports' order, so that appending it can name the rows a saved dataset already holds.
ORIGINS = "origins.parquet"


# --- formats ------------------------------------------------------------------------------


def profile_dir() -> Path:
    """Return where user-saved mapping profiles live (OSE_DATA_DIR/profiles)."""
    return data_dir() / "profiles"


def available_formats() -> list[Format]:
    """Return every format the ingester knows: canonical, national form, shipped and saved profiles."""
    from lib.ingest.formats.profile import ProfileFormat, load_profile, shipped_profiles
    from lib.ingest.formats.uk_national import UkNationalForm

    profiles = list(shipped_profiles())
    if profile_dir().is_dir():
        for path in sorted(profile_dir().glob("*.json")):
            try:
                profiles.append(load_profile(path))
            except (ValueError, OSError):  # one broken saved profile must not block every upload
                continue
    return [CanonicalFormat(), UkNationalForm(), *(ProfileFormat(p) for p in profiles)]


def _columns_read(columns: list[str], wanted: str, formats: Sequence[Format]) -> list[str] | None:
    """Return the columns the format chosen for this header reads (None: all, or no format yet)."""
    try:
        chosen, _ = choose_format(columns, wanted, formats)
    except RejectedFile:
        return None  # reported when the file has been read, as for any other file
    needs = getattr(chosen, "columns_read", None)
    return None if needs is None else needs(columns)


def _check_header(columns: list[str], name: str, wanted: str, formats: Sequence[Format]) -> None:
    """Refuse a file whose header no format recognises, before its rows are decoded."""
    if choose_format(columns, wanted, formats)[0] is None:
        raise RejectedFile(_no_format(name, columns))


# What to do about a layout no format knows, said after the reason (the app shows the reason and its own mapping step).
NO_FORMAT_ADVICE = ("; map its columns in the app, pass --format profile:NAME, or --accept-proposed-mapping to load "
                    "it with the mapping the app would propose")


def _no_format(name: str, columns: list[str]) -> str:
    return f"{name}: {NO_FORMAT} ({', '.join(columns[:6])}{' ...' if len(columns) > 6 else ''}){NO_FORMAT_ADVICE}"


def choose_format(columns: list[str], wanted: str = AUTO,
                  formats: Sequence[Format] | None = None) -> tuple[Format | None, dict[str, float]]:
    """Pick the named format, or the best-scoring one for this header; None if nothing fits."""
    formats = list(formats) if formats is not None else available_formats()
    scores = {f.name: round(float(f.score(columns)), 3) for f in formats}
    if wanted != AUTO:
        match = next((f for f in formats if f.name == wanted), None)
        if match is None:
            raise RejectedFile(f"unknown format '{wanted}'; known: {', '.join(f.name for f in formats)}")
        return match, scores
    best = max(formats, key=lambda f: scores[f.name])
    return (best if scores[best.name] >= MIN_SCORE else None), scores


# --- the pipeline -------------------------------------------------------------------------


@dataclass
class IngestResult:
    """Canonical tables ready for the store, the quarantine, and the report a user reads."""

    reports: pd.DataFrame
    tactics: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict


def ingest(files: Sequence[tuple[str, bytes]], *, fmt: str = AUTO, duplicates: str = "set-aside",
           force: str | None = None, limits: Limits | None = None,
           formats: Sequence[Format] | None = None, progress: Progress | None = None) -> IngestResult:
    """Read, adapt and validate one or more extracts of the same kind into canonical tables."""
    try:
        settings()  # every setting checked before reading anything (shift starts, size limit, key)
    except SettingsError as exc:
        unusable = "officer ids cannot be pseudonymised: " if PSEUDONYM_KEY in exc.variables else ""
        raise RejectedFile(f"{unusable}{exc}") from exc
    limits = limits or Limits.from_env()
    try:
        key = pseudonym.secret()  # before reading anything: no key, no load
    except pseudonym.PseudonymKeyError as exc:
        raise RejectedFile(f"officer ids cannot be pseudonymised: {exc}") from exc
    say = progress or (lambda fraction, message: None)
    formats = list(formats) if formats is not None else available_formats()
    parts: list[Adapted] = []
    file_reports = []
    raws: list[RawExtract] = []
    for i, (name, data) in enumerate(files):
        say(i / max(len(files), 1) * 0.8, f"Reading {name}")
        raw = read_extract(name, data, limits, columns=partial(_columns_read, wanted=fmt, formats=formats),
                           header=partial(_check_header, name=name, wanted=fmt, formats=formats))
        chosen, scores = choose_format(raw.columns, fmt, formats)
        if chosen is None:
            raise RejectedFile(_no_format(name, raw.columns))
        skipped = 0
        if chosen.extra_header_rows:
            skipped = min(chosen.extra_header_rows, len(raw.frame))
            raw.drop_leading_rows(chosen.extra_header_rows)
            raw.notes.append(f"{name}: skipped {skipped} extra header row(s)")
        say((i + 0.5) / max(len(files), 1) * 0.8, f"Mapping {name} as {chosen.label}")
        # A frame with only the columns the format reads comes with the extract for the rest.
        adapted = chosen.adapt(raw.frame) if raw.every_column_read else chosen.adapt(raw.frame, source=raw)
        _pseudonymise(adapted, raw, key)
        adapted.quarantine = pd.concat([raw.quarantine, adapted.quarantine], ignore_index=True)
        parts.append(adapted)
        raws.append(raw)
        file_reports.append({"name": name, "kind": raw.kind, "encoding": raw.encoding,
                             "lines_read_as_cp1252": len(raw.cp1252_lines),
                             "rows_in": raw.rows_in, "format": chosen.name, "scores": scores,
                             "header_lines": 1 + skipped})  # a set-aside row's line in the file: its row + these
    say(0.85, "Checking required fields and duplicates")
    reports, tactics, quarantine, dup = _finalise(parts, duplicates=duplicates, force=force)
    rows_in = sum(f["rows_in"] for f in file_reports)
    rows_loaded = int(reports[ROWS].sum()) if len(reports) else 0
    rows_quarantined = int(quarantine[ROWS].sum()) if len(quarantine) else 0
    if rows_in != rows_loaded + rows_quarantined:  # the promise to the user: nothing lost
        raise AssertionError(f"rows do not reconcile: {rows_in} in, {rows_loaded} loaded, "
                             f"{rows_quarantined} set aside")
    items = _reconcile_items(parts, reports, quarantine)
    quarantine = collapse(quarantine)
    report = _report(
        file_reports, rows_loaded=rows_loaded, rows_quarantined=rows_quarantined, reports_loaded=len(reports),
        tactics_loaded=len(tactics), items=items, mapping=_merge_dicts(p.mapping for p in parts),
        unmapped=_merge_counts(p.unmapped for p in parts), completeness=completeness(reports),
        quarantine=quarantine, dup=dup, notes=[n for r in raws for n in r.notes] + [n for p in parts for n in p.notes],
        incident_level=[f for p in parts for f in p.incident_level], date_range=_date_range(reports), key=key)
    quarantine = _with_raw_values(quarantine, raws, key)
    say(1.0, "Done")
    return IngestResult(reports, tactics, quarantine, report)


def _report(file_reports: list[dict], *, rows_loaded: int, rows_quarantined: int, reports_loaded: int,
            tactics_loaded: int, items: dict[str, int], mapping: dict, unmapped: dict, completeness: dict,
            quarantine: pd.DataFrame, dup: dict, notes: list[str], incident_level: list[str],
            date_range: dict, key: bytes) -> dict:
    """Return the report a user reads (report.json), the same whether the files were read whole or in batches."""
    names = sorted({f["format"] for f in file_reports})
    report = {
        "rows_in": sum(f["rows_in"] for f in file_reports),
        "rows_loaded": rows_loaded,
        "rows_quarantined": rows_quarantined,
        "reports_loaded": reports_loaded,
        "tactics_loaded": tactics_loaded,
        **items,
        # Lines of mostly UTF-8 files that were not UTF-8: read as cp1252, their rows kept but to check.
        "lines_read_as_cp1252": sum(f["lines_read_as_cp1252"] for f in file_reports),
        "detected_format": names[0] if len(names) == 1 else "mixed: " + ", ".join(names),
        "mapping": mapping,
        "unmapped": unmapped,
        "completeness": completeness,
        "quarantine_reasons": reason_counts(quarantine),
        "duplicates": dup,
        "files": file_reports,
        "notes": notes,
        # Fields recorded once per incident (a profile says which): measures on them count incidents.
        "incident_level": list(incidents.normalised(incident_level)),
        "date_range": date_range,
        "pseudonym_key": pseudonym.fingerprint(key),  # rosters join only to reports hashed with the same key
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if report["incident_level"]:
        report["notes"].append("Recorded once per incident, so counted in incidents rather than reports: "
                               + ", ".join(report["incident_level"]).replace("_", " ") + ".")
    return report


def _reconcile_items(parts: list[Adapted], reports: pd.DataFrame, quarantine: pd.DataFrame) -> dict[str, int]:
    """Count list items (officers listed in one row's cells) in, loaded and set aside; they must agree.

    Empty when no file listed several officers in a cell: then a row is a report (or a group of rows is).
    """
    split = [p.items_in for p in parts if p.items_in is not None]
    if not split:
        return {}
    items_in = int(sum(split))
    loaded = int(reports[ITEMS].sum()) if ITEMS in reports.columns else 0
    set_aside = int(quarantine[ITEMS].sum()) if ITEMS in quarantine.columns else 0
    if items_in != loaded + set_aside:  # the promise at the second level: no officer lost
        raise AssertionError(f"list items do not reconcile: {items_in} in, {loaded} loaded, {set_aside} set aside")
    return {"items_in": items_in, "items_loaded": loaded, "items_quarantined": set_aside,
            "rows_lists_disagree": int(sum(p.rows_lists_disagree for p in parts))}


def _pseudonymise(adapted: Adapted, raw: RawExtract, key: bytes) -> None:
    """Replace the adapted reports' officer ids by pseudonyms; note which raw columns hold officer ids."""
    if "officer_id" in adapted.reports.columns:
        adapted.reports["officer_id"] = pseudonym.pseudonymise(adapted.reports["officer_id"], key)
    named = [c for c in raw.columns if pseudonym.is_officer_id_header(c)]  # even when the format ignores it
    raw.officer_id_columns = list(dict.fromkeys([*adapted.officer_id_columns, *named]))


def _merge_dicts(dicts) -> dict:
    out: dict = {}
    for d in dicts:
        out.update(d)
    return out


def _merge_counts(dicts) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for d in dicts:
        for fld, counts in d.items():
            slot = out.setdefault(fld, {})
            for value, n in counts.items():
                slot[value] = slot.get(value, 0) + int(n)
    return {f: dict(sorted(c.items(), key=lambda kv: -kv[1])) for f, c in out.items()}


def _date_range(reports: pd.DataFrame) -> dict[str, str | None]:
    if not len(reports):
        return {"first": None, "last": None}
    return {"first": str(reports["occurred_at"].min()), "last": str(reports["occurred_at"].max())}


def _finalise(parts: list[Adapted], *, duplicates: str, force: str | None
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    if duplicates not in DUPLICATE_CHOICES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_CHOICES}")
    reports = pd.concat([p.reports for p in parts], ignore_index=True) if parts else pd.DataFrame()
    tactics = pd.concat([p.tactics for p in parts], ignore_index=True) if parts else pd.DataFrame()
    quarantine = [p.quarantine for p in parts]
    reports, incomplete = _set_aside_incomplete(_conform(reports, force))
    quarantine.append(incomplete)
    reports, dup_quarantine, dup = _deduplicate(reports, duplicates)
    quarantine.append(dup_quarantine)
    tactics = _conform_tactics(tactics, reports)
    q = pd.concat([x for x in quarantine if len(x)], ignore_index=True) if any(len(x) for x in quarantine) \
        else empty_quarantine()
    return reports.reset_index(drop=True), tactics, q, dup


def _set_aside_incomplete(reports: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Set aside conformed reports with no report id, date or force; return the rest and the set-aside entries."""
    missing = pd.Series("", index=reports.index, dtype="string")
    for col, label in (("report_id", "no report id"), ("occurred_at", "no date"),
                       ("force", "no force (name one with --force or in the upload form)")):
        gap = reports[col].isna() & (missing == "")
        missing[gap] = label
    bad = missing != ""
    set_aside = pd.DataFrame({FILE: reports.loc[bad, FILE].astype("string"),
                              ROW: reports.loc[bad, ROW].astype("int64"),
                              ROWS: reports.loc[bad, ROWS].astype("int64"),
                              "reason": missing[bad], **_items_of(reports, bad)})
    return reports[~bad], set_aside


def _items_of(reports: pd.DataFrame, mask: pd.Series) -> dict[str, pd.Series]:
    """Return the list items the selected reports stand for, as a quarantine column (none if not split)."""
    return {ITEMS: reports.loc[mask, ITEMS]} if ITEMS in reports.columns else {}


def _conform(reports: pd.DataFrame, force: str | None) -> pd.DataFrame:
    """Give a frame every canonical column with its canonical type; unknown stays null."""
    out = pd.DataFrame(index=reports.index)
    for meta in (FILE, ROW, ROWS):
        out[meta] = reports[meta] if meta in reports else (1 if meta == ROWS else pd.NA)
    if ITEMS in reports.columns:  # reports split from cells that list several officers
        out[ITEMS] = reports[ITEMS].astype("Int64")
    for col, name in schema.REPORT_COLUMNS.items():
        kind = kinds.KINDS[name]
        out[col] = kind.coerce(reports[col] if col in reports.columns else kind.nulls(reports.index))
    if force:
        out["force"] = out["force"].fillna(force)
    if "shift" not in reports.columns:
        # Only a layout with no shift at all gets one derived here; adapters that read a time
        # already derived it, and never from a date with no time (midnight is not Night).
        out = schema.fill_shift(out)
    out["shift"] = out["shift"].astype("string")
    return out


def _arrow_strings(values: pd.Series) -> pa.Array:
    """Return a column as one Arrow string array (no copy for Arrow-backed text)."""
    arr = pa.array(values.astype("string").array)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _repeats(columns: Sequence[pd.Series | np.ndarray]) -> np.ndarray:
    """Which rows repeat an earlier row's values in these columns (DataFrame.duplicated, on codes)."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for values in columns:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)  # nulls match each other, code -1
        key = key * (len(uniques) + 1) + (codes + 1)
    return pd.Series(key).duplicated(keep="first").to_numpy()


def _deduplicate(reports: pd.DataFrame, duplicates: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Report repeated report ids and identical rows; set later copies aside or keep them all."""
    repeated = reports["report_id"].duplicated(keep="first")
    # Identical rows share their report id, so only the rows whose id repeats are compared.
    shared = reports["report_id"].duplicated(keep=False) if repeated.any() else repeated
    identical = int(pd.Series(_row_hashes(reports[shared])).duplicated().sum()) if shared.any() else 0
    info = {"repeated_report_ids": int(repeated.sum()), "identical_rows": identical, "choice": duplicates}
    if not repeated.any():
        return reports, empty_quarantine(), info
    if duplicates == "keep-all":
        n = reports.groupby("report_id").cumcount() + 1
        reports = reports.assign(report_id=reports["report_id"].where(~repeated,
                                                                      reports["report_id"] + "-copy"
                                                                      + n.astype(str)))
        return reports, empty_quarantine(), info
    first = reports.loc[~repeated].set_index("report_id")
    later = reports.loc[repeated]
    where = first.loc[later["report_id"], [FILE, ROW]]
    reason = ("duplicate of report '" + later["report_id"].astype(str) + "' first seen in "
              + where[FILE].astype(str).to_numpy() + " row " + where[ROW].astype(str).to_numpy())
    q = pd.DataFrame({FILE: later[FILE].astype("string"), ROW: later[ROW].astype("int64"),
                      ROWS: later[ROWS].astype("int64"), "reason": reason.astype("string"),
                      **_items_of(reports, repeated)})
    return reports.loc[~repeated], q, info


def _row_hashes(reports: pd.DataFrame) -> np.ndarray:
    """Hash each report's canonical content (lists joined), so identical rows can be counted."""
    lists = [c for c, kind in schema.REPORT_COLUMNS.items() if kind == "list"]
    plain = [c for c in schema.REPORT_COLUMNS if c not in lists]
    combined = pd.util.hash_pandas_object(reports[plain], index=False).to_numpy()
    for col in lists:
        joined = reports[col].map(lambda items: "\x1f".join(items), na_action="ignore")
        combined = combined * np.uint64(1_000_003) ^ pd.util.hash_array(joined.fillna("").to_numpy(dtype=object))
    return combined


def _conform_tactics(tactics: pd.DataFrame, reports: pd.DataFrame) -> pd.DataFrame:
    if not len(tactics):
        return kinds.empty_frame(schema.TACTIC_COLUMNS)
    # Where each tactic's report id is among the loaded reports' (-1: not loaded). Equal ids get
    # equal positions, so the positions also stand for the ids when repeats are dropped.
    at = pc.index_in(_arrow_strings(tactics["report_id"]), value_set=_arrow_strings(reports["report_id"]))
    position = pc.fill_null(at, -1).to_numpy(zero_copy_only=False)
    keep = (position >= 0) & tactics["tactic"].notna().to_numpy()
    t = tactics[keep]
    t = t[~_repeats([position[keep], t["tactic"]])]  # one row per report and tactic
    t = schema.apply_ced_highest_use(t.reset_index(drop=True))
    effective = t["effective"].astype("boolean") if "effective" in t else pd.NA
    return pd.DataFrame({"report_id": kinds.as_string(t["report_id"]), "tactic": kinds.as_string(t["tactic"]),
                         "tactic_group": t["tactic"].map(schema.TACTIC_GROUP_OF).astype("string"),
                         "effective": effective}).reset_index(drop=True)


def _answered(reports: pd.DataFrame, distinct: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
              ) -> dict[str, int]:
    """Count the reports that answer each canonical field (`distinct`: `_distinct_lists` of them)."""
    out = {}
    for col, kind in schema.REPORT_COLUMNS.items():
        if kind == "list":
            items, at, _ = distinct[col] if col in distinct else _distinct_objects(reports[col])
            out[col] = int(np.array([len(v) > 0 for v in items], dtype=bool)[at].sum())
        else:
            out[col] = int(reports[col].notna().sum())
    return out


def completeness(reports: pd.DataFrame) -> dict[str, float]:
    """Return the share of loaded reports that answer each canonical field."""
    if not len(reports):
        return {c: 0.0 for c in schema.REPORT_COLUMNS}
    out = {}
    for col, kind in schema.REPORT_COLUMNS.items():
        if kind == "list":
            items, at, _ = _distinct_objects(reports[col])
            answered = np.array([len(v) > 0 for v in items], dtype=bool)[at]
        else:
            answered = reports[col].notna()
        out[col] = round(float(answered.mean()), 4)
    return out


def _distinct_objects(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an object column's distinct objects (by identity), where each row's is among them, and
    the first row holding each.

    Adapters give the rows that hold the same items one shared list, so a list column of a million
    rows holds only a few thousand objects: work on each once and spread the result by position.
    """
    cells = values.to_numpy(dtype=object)
    at, _ = pd.factorize(np.fromiter(map(id, cells), dtype=np.uintp, count=len(cells)))
    first = np.empty(at.max() + 1 if len(at) else 0, dtype=np.int64)
    first[at[::-1]] = np.arange(len(at) - 1, -1, -1)  # the last write for an object is its first row
    return cells[first], at, first


def reason_kinds(reasons: pd.Series) -> pd.Series:
    """Return the kind of each set-aside reason: its quoted values and numbers folded ("'…'", "N")."""
    return reasons.astype(str).str.replace(r"'[^']*'", "'…'", regex=True).str.replace(r"\d[\d,]*", "N", regex=True)


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """Count quarantined rows by the kind of reason (values in quotes folded together)."""
    if not len(quarantine):
        return {}
    kinds = reason_kinds(quarantine["reason"])
    counts = quarantine.groupby(kinds)[ROWS].sum().sort_values(ascending=False)
    return {str(k): int(v) for k, v in counts.items()}


def _with_raw_values(quarantine: pd.DataFrame, raws: list[RawExtract], key: bytes) -> pd.DataFrame:
    """Attach each set-aside row's original cells (officer ids pseudonymised), so the download shows what to fix."""
    if not len(quarantine):
        return quarantine
    pieces = []
    for raw in raws:
        rows = quarantine.loc[quarantine[FILE] == raw.name, ROW]
        if len(rows) and len(raw.frame):
            pieces.append(pseudonym.pseudonymise_columns(raw.cells(rows), raw.officer_id_columns, key))
    if not pieces:
        return quarantine
    original = pd.concat(pieces, ignore_index=True)
    return quarantine.merge(original, on=[FILE, ROW], how="left")


def _attach_cells(quarantine: pd.DataFrame, pieces: list[pd.DataFrame]) -> pd.DataFrame:
    """Attach the set-aside rows' original cells (as `_with_raw_values`, from cells already gathered)."""
    if not len(quarantine) or not pieces:
        return quarantine
    return quarantine.merge(pd.concat(pieces, ignore_index=True), on=[FILE, ROW], how="left")


# --- output -------------------------------------------------------------------------------


def tables(result: IngestResult) -> tuple[pa.Table, pa.Table]:
    """Return the loaded reports and tactics as Arrow tables in the canonical layout."""
    reports = _arrow_table(result.reports[list(schema.REPORT_COLUMNS)])
    # The marking travels in the table's schema metadata, so a saved Parquet dataset keeps it.
    reports = incidents.with_marking(reports, result.report.get("incident_level", ()))
    return reports, pa.Table.from_pandas(result.tactics, preserve_index=False)


def _distinct_lists(frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return `_distinct_objects` of each list column held as Python objects."""
    return {c: _distinct_objects(frame[c]) for c, kind in schema.REPORT_COLUMNS.items()
            if kind == "list" and c in frame.columns and frame[c].dtype == object}


def _arrow_table(frame: pd.DataFrame, distinct: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
                 ) -> pa.Table:
    """Return pa.Table.from_pandas(frame), converting each list object of a list column only once.

    `distinct` is `_distinct_lists(frame)` where the caller has it already.
    """
    distinct = _distinct_lists(frame) if distinct is None else distinct
    lists = list(distinct)
    if not len(frame) or not lists:
        return pa.Table.from_pandas(frame, preserve_index=False)
    # The rows holding every distinct list give Arrow the same types (and pandas metadata) as all rows.
    firsts = np.unique(np.concatenate([first for _, _, first in distinct.values()]))
    layout = pa.Table.from_pandas(frame.iloc[firsts], preserve_index=False).schema
    rest = pa.Table.from_pandas(frame.drop(columns=lists), preserve_index=False)
    columns = [pc.take(pa.array(distinct[c][0], type=layout.field(c).type, from_pandas=True),
                       pa.array(distinct[c][1])) if c in distinct else rest.column(c) for c in frame.columns]
    return pa.Table.from_arrays(columns, schema=layout)


def read_file(path: Path) -> tuple[tuple[pa.Table, pa.Table, None], dict]:
    """Read one extract into canonical tables for the engine (`Engine(read_file=read_file)`).

    Returns the reports and tactics tables (no roster) and the ingest report; a file that cannot be
    read, or whose every row is set aside, raises the engine's DatasetError with the reason.
    """
    from lib.engine.store import DatasetError

    try:
        result = ingest([(path.name, path.read_bytes())])
    except RejectedFile as exc:
        raise DatasetError(str(exc)) from exc
    except OSError as exc:
        raise DatasetError(f"{path.name} cannot be read: {exc.strerror or exc}") from exc
    if result.report["rows_loaded"] == 0:
        reasons = result.report["quarantine_reasons"]
        first = next(iter(reasons), "no data rows")
        raise DatasetError(f"none of the {result.report['rows_in']:,} rows in {path.name} could be loaded "
                           f"(most common reason: {first})")
    reports, tactics = tables(result)
    return (reports, tactics, None), result.report


def pseudonymise_ids(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Pseudonymise officer ids for the engine (`Engine(pseudonymise=pseudonymise_ids)`), with ingest's key.

    A dataset opened without the ingester (the bundled sample, a Parquet folder) then shows the same
    pseudonym for an officer as ingest would have stored; a missing or bad key raises the engine's DatasetError.
    """
    from lib.engine.store import DatasetError

    try:
        return pseudonym.pseudonymise(values)
    except pseudonym.PseudonymKeyError as exc:
        raise DatasetError(f"officer ids cannot be pseudonymised: {exc}") from exc


def record_keys(report_ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Return each report's record key for the cell key method (`Engine(record_keys=record_keys)`).

    A keyed hash of the report id under the installation's secret (the pseudonymisation key): the same
    report has the same key in every version, append and session. A missing or bad key raises DatasetError.
    """
    from lib.engine.store import DatasetError
    from lib.privacy import cellkey

    try:
        secret = pseudonym.secret()
    except pseudonym.PseudonymKeyError as exc:
        raise DatasetError(f"record keys cannot be made: {exc}") from exc
    return pa.array(cellkey.record_keys(report_ids.to_numpy(zero_copy_only=False), secret), pa.int16())


def write(result: IngestResult, out_dir: Path, *, origins: bool = False) -> None:
    """Write the canonical dataset, the quarantine and report.json (and, asked for, the origins) into a folder."""
    reports, tactics = tables(result)
    # The four files appear together (or, into a folder already holding files, each one whole).
    with write_whole_folder(out_dir) as tmp:
        pq.write_table(reports, tmp / "reports.parquet")
        pq.write_table(tactics, tmp / "tactics.parquet")
        if origins:
            pq.write_table(origins_table(result.reports), tmp / ORIGINS)
        result.quarantine.astype("string").to_csv(tmp / "quarantine.csv", index=False)
        (tmp / "report.json").write_text(json.dumps(result.report, indent=2, default=str))


def origins_table(reports: pd.DataFrame) -> pa.Table:
    """Return each report's id, file, row and row count (the columns an append's set-aside rows carry)."""
    return pa.table({"report_id": _arrow_strings(reports["report_id"]).cast(pa.string()),
                     FILE: _arrow_strings(reports[FILE]).cast(pa.string()),
                     ROW: pa.array(reports[ROW].to_numpy(dtype="int64")),
                     ROWS: pa.array(reports[ROWS].to_numpy(dtype="int64"))})


def read_paths(paths: Sequence[Path]) -> list[tuple[str, bytes]]:
    """Return each file's name and bytes; raise RejectedFile naming one that cannot be read."""
    files = []
    for path in paths:
        try:
            files.append((path.name, path.read_bytes()))
        except OSError as exc:
            raise RejectedFile(f"{path} cannot be read: {exc.strerror or exc}") from exc
    return files


def load(paths: Sequence[Path], out_dir: Path, *, fmt: str = AUTO, duplicates: str = "set-aside",
         force: str | None = None, origins: bool = False, progress: Progress | None = None,
         formats: Sequence[Format] | None = None) -> dict:
    """Ingest extract files into a dataset folder and return the report (the command line's and the app's work,
    in the worker).

    The files are read in batches (memory stays flat); a load that batches cannot give exactly as the
    whole-file reader would (Excel, a profile that folds rows, a report id seen in two batches) is read whole.
    With `origins`, the folder also holds ORIGINS (what an append to a saved dataset needs).
    """
    try:
        return load_in_batches(paths, out_dir, fmt=fmt, duplicates=duplicates, force=force, origins=origins,
                               progress=progress, formats=formats)
    except WholeFile:
        result = ingest(read_paths(paths), fmt=fmt, duplicates=duplicates, force=force, progress=progress,
                        formats=formats)
        write(result, out_dir, origins=origins)
        return result.report


def load_proposed(paths: Sequence[Path], out_dir: Path, *, duplicates: str = "set-aside",
                  force: str | None = None) -> dict:
    """Load files whose layout no format knows with the mapping step's own proposal, unchanged (`--accept-proposed-
    mapping`); a layout a format knows loads as usual. The proposal is kept in report.json ("proposed_mapping")."""
    from lib.ingest.formats.profile import ProfileFormat, propose_profile

    first = Path(paths[0])
    raw = read_extract(first.name, first.read_bytes())
    formats = available_formats()
    if choose_format(raw.columns, AUTO, formats)[0] is not None:
        return load(paths, out_dir, duplicates=duplicates, force=force, formats=formats)
    profile = propose_profile(raw.frame, f"proposed-{first.stem}")
    if force:
        profile.force = force.strip()
        profile.notes = [n for n in profile.notes if not n.startswith("force is not in the data")]
    if not profile.force and not profile.columns.get("force"):
        raise RejectedFile(f"{first.name}: the proposed mapping needs the force these records belong to: "
                           "pass --force NAME")
    if not profile.date_column:
        raise RejectedFile(f"{first.name}: the proposed mapping found no date column; map the file in the app")
    report = load(paths, out_dir, fmt=f"profile:{profile.name}", duplicates=duplicates, force=force,
                  formats=[*formats, ProfileFormat(profile)])
    report["proposed_mapping"] = json.loads(profile.to_json())
    (Path(out_dir) / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


# --- in batches -----------------------------------------------------------------------------


class WholeFile(Exception):
    """This load cannot be read in batches with the same outcome: read its files whole instead."""


def load_in_batches(paths: Sequence[Path], out_dir: Path, *, fmt: str = AUTO, duplicates: str = "set-aside",
                    force: str | None = None, limits: Limits | None = None, formats: Sequence[Format] | None = None,
                    rows: int | None = None, progress: Progress | None = None, origins: bool = False) -> dict:
    """Ingest files on disk into a dataset folder a batch of rows at a time; return the report.

    Reports, tactics, quarantine.csv and report.json (and ORIGINS) come out as `ingest` then `write` make them.
    Raises WholeFile, before anything is written, when a file must be read whole for that.
    """
    if duplicates not in DUPLICATE_CHOICES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_CHOICES}")
    try:
        settings()
    except SettingsError as exc:
        unusable = "officer ids cannot be pseudonymised: " if PSEUDONYM_KEY in exc.variables else ""
        raise RejectedFile(f"{unusable}{exc}") from exc
    limits = limits or Limits.from_env()
    try:
        key = pseudonym.secret()
    except pseudonym.PseudonymKeyError as exc:
        raise RejectedFile(f"officer ids cannot be pseudonymised: {exc}") from exc
    formats = list(formats) if formats is not None else available_formats()
    exact: set[Path] = set()
    while True:
        run = _Batched(key, limits, formats, fmt=fmt, duplicates=duplicates, force=force,
                       rows=rows or batch_rows(), exact=exact, say=progress or (lambda fraction, message: None),
                       origins=origins)
        try:
            return run.load([Path(p) for p in paths], Path(out_dir))
        except ReadExactly as exc:  # a malformed row: that file is read row by row, as the whole-file reader does
            if exc.path in exact:
                raise AssertionError(f"{exc.path.name} was read row by row and still failed") from exc
            exact.add(exc.path)


class _TableWriter:
    """One Parquet file written a batch at a time, in the layout of the first batch with rows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.empty: pa.Table | None = None
        self.items: dict[str, bool] = {}  # list columns: whether any list holds an item

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            self.empty = self.empty or table  # written only if no batch has rows
            return
        for fld in table.schema:
            if pa.types.is_list(fld.type):
                held = not pa.types.is_null(fld.type.value_type) and pc.sum(
                    pc.list_value_length(table.column(fld.name))).as_py() not in (None, 0)
                self.items[fld.name] = self.items.get(fld.name, False) or held
        table = _lists_of_text(table)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        elif not table.schema.equals(self.writer.schema, check_metadata=False):
            try:
                table = table.cast(self.writer.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise WholeFile(f"batches differ in layout: {exc}") from exc
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is None:
            if self.empty is not None:
                pq.write_table(self.empty, self.path)
            return
        self.writer.close()
        empty = [name for name, held in self.items.items() if not held]
        if empty:  # read whole, a list column with no item anywhere is typed as lists of nulls: so here too
            self._retype(empty)

    def _retype(self, columns: list[str]) -> None:
        """Write the file again, a row group at a time, with these list columns typed as lists of nulls."""
        source = pq.ParquetFile(self.path)
        layout = source.schema_arrow
        for name in columns:
            at = layout.get_field_index(name)
            layout = layout.set(at, layout.field(at).with_type(pa.list_(pa.null())))
        again = self.path.with_suffix(".retyped")
        with pq.ParquetWriter(again, layout) as writer:
            for i in range(source.num_row_groups):
                group = source.read_row_group(i)
                for name in columns:  # Arrow casts no text to null: the lists are rebuilt on their offsets
                    at = group.schema.get_field_index(name)
                    lists = [pa.ListArray.from_arrays(chunk.offsets, pa.nulls(0), mask=chunk.is_null())
                             for chunk in group.column(at).chunks]
                    group = group.set_column(at, layout.field(at), pa.chunked_array(lists, layout.field(at).type))
                writer.write_table(group.replace_schema_metadata(layout.metadata))
        os.replace(again, self.path)


def _lists_of_text(table: pa.Table) -> pa.Table:
    """Give list columns of only empty lists the type of text lists, so that every batch has one layout."""
    for i, fld in enumerate(table.schema):
        if pa.types.is_list(fld.type) and pa.types.is_null(fld.type.value_type):
            table = table.set_column(i, fld.with_type(pa.list_(pa.string())),
                                     table.column(i).cast(pa.list_(pa.string())))
    return table


class _Behind:
    """Work done on one thread behind the caller, a piece at a time: a piece waits for the one before.

    So at most one piece is in flight (memory holds one more batch), and its error reaches the caller
    at the next `submit` or at `wait`.
    """

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-write")
        self.pending: Future | None = None

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        self.wait()
        self.pending = self.pool.submit(fn, *args)

    def wait(self) -> None:
        """Wait for the piece in flight; raise its error."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Let the piece in flight finish (its error is dropped: the caller is already failing) and stop."""
        pending, self.pending = self.pending, None
        if pending is not None:
            wait([pending])
        self.pool.shutdown()


class _Batched:
    """One load in batches: what is kept across batches is small (counts, id hashes, the set-aside rows)."""

    def __init__(self, key: bytes, limits: Limits, formats: list[Format], *, fmt: str, duplicates: str,
                 force: str | None, rows: int, exact: set[Path], say: Progress, origins: bool = False) -> None:
        self.key, self.limits, self.formats = key, limits, formats
        self.fmt, self.duplicates, self.force, self.rows, self.exact, self.say = (
            fmt, duplicates, force, rows, exact, say)
        self.file_reports: list[dict] = []
        self.raw_notes: list[str] = []
        self.adapter_notes: list[str] = []
        self.mappings: list[dict] = []
        self.unmapped: list[dict] = []
        self.file_quarantine: list[pd.DataFrame] = []  # per file: malformed, long cells, the adapter's
        self.incomplete: list[pd.DataFrame] = []
        self.repeats: list[pd.DataFrame] = []
        self.cells: list[pd.DataFrame] = []  # every cell of the set-aside rows, officer ids pseudonymised
        self.seen = np.zeros(0, dtype=np.uint64)  # hashes of every report id met so far, sorted
        self.con: duckdb.DuckDBPyConnection | None = None  # hashes the ids
        # Converting and writing a batch (Parquet encoding frees the GIL) overlaps adapting the next.
        self.behind = _Behind()
        self.repeated = self.identical = 0
        self.answered = dict.fromkeys(schema.REPORT_COLUMNS, 0)
        self.reports_loaded = self.tactics_loaded = self.rows_loaded = 0
        self.first: pd.Timestamp | None = None
        self.last: pd.Timestamp | None = None
        self.origins = origins
        self.origins_out: _TableWriter | None = None

    def load(self, paths: list[Path], out_dir: Path) -> dict:
        with write_whole_folder(out_dir) as tmp:
            reports, tactics = _TableWriter(tmp / "reports.parquet"), _TableWriter(tmp / "tactics.parquet")
            self.origins_out = _TableWriter(tmp / ORIGINS) if self.origins else None
            try:
                for i, path in enumerate(paths):
                    self.read_file(path, i / max(len(paths), 1), reports, tactics)
                self.behind.wait()
            finally:
                self.behind.close()  # the writes finish before their files are closed
                if self.con is not None:
                    self.con.close()
                reports.close()
                tactics.close()
                if self.origins_out is not None:
                    self.origins_out.close()
            self.say(0.95, "Writing the report")
            quarantine = pd.concat([q for q in (*self.file_quarantine, *self.incomplete, *self.repeats) if len(q)],
                                   ignore_index=True) if any(
                len(q) for q in (*self.file_quarantine, *self.incomplete, *self.repeats)) else empty_quarantine()
            rows_in = sum(f["rows_in"] for f in self.file_reports)
            rows_quarantined = int(quarantine[ROWS].sum()) if len(quarantine) else 0
            if rows_in != self.rows_loaded + rows_quarantined:
                raise AssertionError(f"rows do not reconcile: {rows_in} in, {self.rows_loaded} loaded, "
                                     f"{rows_quarantined} set aside")
            quarantine = collapse(quarantine)
            n = self.reports_loaded
            report = _report(
                self.file_reports, rows_loaded=self.rows_loaded, rows_quarantined=rows_quarantined,
                reports_loaded=n, tactics_loaded=self.tactics_loaded, items={},
                mapping=_merge_dicts(self.mappings), unmapped=_merge_counts(self.unmapped),
                completeness={c: round(float(k / n), 4) if n else 0.0 for c, k in self.answered.items()},
                quarantine=quarantine,
                dup={"repeated_report_ids": self.repeated, "identical_rows": self.identical,
                     "choice": self.duplicates},
                notes=self.raw_notes + self.adapter_notes, incident_level=[],
                date_range={"first": str(self.first) if n else None, "last": str(self.last) if n else None},
                key=self.key)
            quarantine = _attach_cells(quarantine, self.cells)
            quarantine.astype("string").to_csv(tmp / "quarantine.csv", index=False)
            (tmp / "report.json").write_text(json.dumps(report, indent=2, default=str))
        return report

    def read_file(self, path: Path, done: float, reports: _TableWriter, tactics: _TableWriter) -> None:
        name = path.name
        self.say(done * 0.9, f"Reading {name}")
        try:
            source = open_batches(path, self.limits, self.rows,
                                  columns=partial(_columns_read, wanted=self.fmt, formats=self.formats),
                                  header=partial(_check_header, name=name, wanted=self.fmt, formats=self.formats),
                                  exact=path in self.exact)
        except NotStreamable as exc:
            raise WholeFile(name) from exc
        except OSError as exc:
            raise RejectedFile(f"{path} cannot be read: {exc.strerror or exc}") from exc
        try:
            chosen, scores = choose_format(source.columns, self.fmt, self.formats)
            if chosen is None:
                raise RejectedFile(_no_format(name, source.columns))
            merge_notes = getattr(chosen, "merge_notes", None)
            if merge_notes is None or chosen.extra_header_rows:
                raise WholeFile(f"{name}: {chosen.name} is read whole")
            malformed, long_cells, adapted_quarantine, notes, picked = [], [], [], [], []
            template: pd.DataFrame | None = None
            officer_columns: list[str] = []
            frame_rows = aside = 0
            for raw, bad in source.batches():
                adapted = (chosen.adapt(raw.frame) if source.every_column_read
                           else chosen.adapt(raw.frame, source=BatchSource(source, raw.frame)))
                if adapted.items_in is not None or adapted.incident_level:
                    raise WholeFile(f"{name}: rows split into several reports")
                _pseudonymise(adapted, raw, self.key)
                officer_columns = raw.officer_id_columns
                malformed.append(bad)
                long_cells.append(raw.quarantine)
                adapted_quarantine.append(adapted.quarantine)
                notes.append(adapted.notes)
                self.mappings.append(adapted.mapping)
                self.unmapped.append(adapted.unmapped)
                set_aside = self.add(adapted, reports, tactics)
                aside += len(set_aside)
                rows = pd.concat([adapted.quarantine[ROW], set_aside[ROW]]) if len(set_aside) else \
                    adapted.quarantine[ROW]
                if len(rows):
                    picked.append(raw.frame[raw.frame[ROW].isin(set(rows.tolist()))])
                template = raw.frame.iloc[:0] if template is None else template
                frame_rows += len(raw.frame)
                self.say(done * 0.9, f"Read {source.rows_in:,} rows of {name}")
            source.check_rows()
            self.file_quarantine.append(pd.concat([*malformed, *long_cells, *adapted_quarantine], ignore_index=True))
            self.raw_notes += source.notes
            self.adapter_notes += merge_notes(notes)
            self.file_reports.append({"name": name, "kind": source.kind, "encoding": source.encoding,
                                      "lines_read_as_cp1252": len(source.cp1252_lines), "rows_in": source.rows_in,
                                      "format": chosen.name, "scores": scores, "header_lines": 1})
            aside += sum(len(q) for q in (*malformed, *long_cells, *adapted_quarantine))
            if frame_rows and aside:  # as `_with_raw_values`: a file with set-aside rows and rows read
                self.cells.append(self.cells_of(source, picked, template, officer_columns))
        finally:
            source.close()

    def cells_of(self, source: FileBatches, picked: list[pd.DataFrame], template: pd.DataFrame | None,
                 officer_columns: list[str]) -> pd.DataFrame:
        """Return every cell of a file's set-aside rows that were read (as RawExtract.cells gives them)."""
        cells = pd.concat(picked) if picked else template
        assert cells is not None
        if not source.every_column_read and len(cells):
            rest = source.rest_cells(cells[ROW].to_numpy(dtype="int64"))
            rest.index = cells.index
            cells = pd.concat([cells, rest], axis=1)[[FILE, ROW, *source.columns]]
        return pseudonym.pseudonymise_columns(cells, officer_columns, self.key)

    def add(self, adapted: Adapted, reports_out: _TableWriter, tactics_out: _TableWriter) -> pd.DataFrame:
        """Check, deduplicate and write one batch's reports and tactics; return the rows set aside here."""
        reports = _conform(adapted.reports, self.force)
        self.check_ids(reports["report_id"], adapted.tactics)
        reports, incomplete = _set_aside_incomplete(reports)
        reports, repeats, dup = _deduplicate(reports, self.duplicates)
        self.incomplete.append(incomplete)
        self.repeats.append(repeats)
        self.repeated += dup["repeated_report_ids"]
        self.identical += dup["identical_rows"]
        tactics = _conform_tactics(adapted.tactics, reports)
        reports = reports.reset_index(drop=True)
        if len(reports):
            self.rows_loaded += int(reports[ROWS].sum())
            self.reports_loaded += len(reports)
            first, last = reports["occurred_at"].min(), reports["occurred_at"].max()
            self.first = first if self.first is None else min(self.first, first)
            self.last = last if self.last is None else max(self.last, last)
        self.tactics_loaded += len(tactics)
        self.behind.submit(self.write, reports, tactics, reports_out, tactics_out)
        return pd.concat([incomplete, repeats], ignore_index=True) if len(incomplete) or len(repeats) \
            else empty_quarantine()

    def write(self, reports: pd.DataFrame, tactics: pd.DataFrame, reports_out: _TableWriter,
              tactics_out: _TableWriter) -> None:
        """Count a batch's answered fields and write its reports and tactics (on the writing thread)."""
        distinct = _distinct_lists(reports)
        if len(reports):
            for col, k in _answered(reports, distinct).items():
                self.answered[col] += k
        table = _arrow_table(reports[list(schema.REPORT_COLUMNS)], distinct)
        reports_out.write(incidents.with_marking(table, ()))
        if self.origins_out is not None:
            self.origins_out.write(origins_table(reports))
        tactics_out.write(pa.Table.from_pandas(tactics, preserve_index=False))

    def check_ids(self, report_ids: pd.Series, tactics: pd.DataFrame) -> None:
        """Read the load whole when a report id (of a report or a tactic) was met in an earlier batch.

        Duplicates are judged, and tactics joined to reports, by report id: within one batch that is
        exact; across batches it would need every earlier row, which only the whole-file reader keeps.
        """
        ids = [_arrow_strings(report_ids)]
        if "report_id" in tactics.columns and len(tactics):
            ids.append(_arrow_strings(tactics["report_id"]))
        if self.con is None:
            self.con = duckdb.connect()
        hashes = _id_hashes(pa.chunked_array([a.cast(pa.large_string()) for a in ids], pa.large_string()), self.con)
        if not len(hashes):
            return
        if len(self.seen):
            at = np.minimum(np.searchsorted(self.seen, hashes), len(self.seen) - 1)
            if (self.seen[at] == hashes).any():
                raise WholeFile("a report id met in an earlier batch")
        self.seen = np.concatenate([self.seen, hashes])
        self.seen.sort(kind="stable")


def _id_hashes(ids: pa.ChunkedArray, con: duckdb.DuckDBPyConnection) -> np.ndarray:
    """Return the distinct 64-bit hashes of the non-null ids, sorted.

    DuckDB hashes Arrow text in place, ten times faster than pandas on Python strings; a collision
    only sends a load to the whole-file reader (no id is judged a repeat by its hash alone).
    """
    con.register("ids", pa.table({"id": ids}))
    try:
        hashes = con.execute("SELECT hash(id) AS h FROM ids WHERE id IS NOT NULL").fetchnumpy()["h"]
    finally:
        con.unregister("ids")
    return np.unique(np.asarray(hashes, dtype=np.uint64))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ingest files into a dataset folder; exit 2 with a reason if one is rejected.

    The files are read in a worker process inside the upload budget (lib/ingest/worker.py), as in the app.
    """
    from lib.ingest import worker  # here: `python -m lib.ingest.worker` imports this module first
    parser = argparse.ArgumentParser(prog="python -m lib.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--format", default=AUTO, help="auto | canonical | uk-national | profile:NAME")
    parser.add_argument("--force", help="force name for extracts that do not carry one")
    parser.add_argument("--duplicates", default="set-aside", choices=DUPLICATE_CHOICES)
    parser.add_argument("--accept-proposed-mapping", action="store_true",
                        help="load a layout no format knows with the mapping step's proposal, as the app would "
                             "propose it (kept in report.json)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        settings()  # a bad setting (the budget's included) is one line, before any worker starts
        if args.accept_proposed_mapping and args.format == AUTO:
            r = worker.run(load_proposed, args.files, args.out, duplicates=args.duplicates, force=args.force)
        else:
            r = worker.run(load, args.files, args.out, fmt=args.format, duplicates=args.duplicates,
                           force=args.force)
    except (RejectedFile, SettingsError) as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return 2
    print(f"{r['rows_in']:,} rows in, {r['rows_loaded']:,} loaded, {r['rows_quarantined']:,} set aside "
          f"({r['detected_format']}) -> {args.out} in {time.perf_counter() - started:.1f} s")
    if "items_in" in r:
        print(f"{r['items_in']:,} officer items in those rows, {r['items_loaded']:,} loaded as reports, "
              f"{r['items_quarantined']:,} set aside")
    if r["lines_read_as_cp1252"]:
        print(f"{r['lines_read_as_cp1252']:,} line(s) were not UTF-8 and were read as cp1252: "
              "check their accented letters (the notes in the report name them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
