"""The column-mapping step: show a proposed profile as an editable table, and save the edit.

The app proposes where each canonical field comes from (header names and value sniffing, in
`lib.ingest.formats.profile.propose_profile`); the user confirms or changes each line; the result is
saved as a named profile that later extracts of the same layout reuse automatically. Example
values of the officer id column are shown as pseudonyms: the raw ids never reach the page.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pandas as pd

from lib.ingest import pseudonym
from lib.ingest.formats.lists import split_items
from lib.ingest.formats.profile import MAPPABLE_FIELDS, Profile, propose_profile, save_profile
from lib.model import schema, values

NONE = "(not in this extract)"
KEEP = "(keep as given)"
MAX_TACTIC_VALUES = 200
TACTICS_FIELD = "tactics"
# Fields the profile keeps in its own slots rather than in `columns`.
SLOTS: dict[str, str] = {
    "date": "date_column", "time": "time_column", "shift": "shift_column",
    "report_id": "report_id_column", "incident_id": "incident_id_column",
    "officer_id": "officer_id_column", "area": "area_column", "team": "team_column",
}
LABELS: dict[str, str] = {
    **schema.FIELD_LABELS,
    "date": "Date (or date and time)", "time": "Time of day", "shift": "Shift",
    "report_id": "Report id", "incident_id": "Incident id", "officer_id": "Officer id",
    "area": "Area", "team": "Team", TACTICS_FIELD: "Tactic (first of the tactic columns)",
}
# Every field the mapping step lists, in groups; the required one first.
FIELD_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Required", ("date",)),
    ("When", ("time", "shift")),
    ("Ids", ("report_id", "incident_id", "officer_id")),
    ("Officer and place", ("area", "team", "officer_role", "location_type", "single_crewed", "ced_trained",
                           "length_of_service_years")),
    ("Harm", ("officer_injured", "officer_injury_level", "officer_assaulted", "subject_injured",
              "subject_injury_level")),
    ("Subject", ("subject_age_band", "subject_gender", "subject_ethnicity", "subject_physical_disability",
                 "subject_mental_disability")),
    ("What happened", (TACTICS_FIELD, "resistance", "reasons", "impact_factors", "outcomes")),
)
# The proposal's confidence is kept under the canonical names; the mapping step's keys differ for two.
CONFIDENCE_KEYS = {"date": "occurred_at", TACTICS_FIELD: "tactic"}
PREVIEW_ROWS = 8


def propose(raw: pd.DataFrame, name: str) -> Profile:
    """Propose a profile for an unrecognised extract."""
    return propose_profile(raw, safe_name(name))


def safe_name(text: str) -> str:
    """Turn a file name into a profile name (letters, digits, '_', '.', '-')."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-._")
    return (name or "profile")[:48]


def _first(source: str | list[str] | None) -> str | None:
    if isinstance(source, list):
        return source[0] if source else None
    return source


def _sources(source: str | list[str] | None) -> list[str]:
    return [source] if isinstance(source, str) else list(source or [])


def _officer_examples(seen: pd.Series) -> str:
    """Return up to three distinct officer ids as pseudonyms (or say they are hidden if there is no key)."""
    try:
        shown = pseudonym.pseudonymise(seen.head(50).astype("string")).dropna().drop_duplicates().head(3)
    except pseudonym.PseudonymKeyError:
        return pseudonym.HIDDEN
    return ", ".join(shown) + " (pseudonymised)" if len(shown) else ""


def editor_frame(profile: Profile, raw: pd.DataFrame) -> pd.DataFrame:
    """Return one line per field: where the proposal takes it from, how sure, example values."""
    rows = []
    for fld in dict.fromkeys([*SLOTS, TACTICS_FIELD, *MAPPABLE_FIELDS]):
        source = proposed_source(profile, fld)
        rows.append({"Field": LABELS.get(fld, fld), "key": fld, "Source column": source or NONE,
                     "Confidence": round(float(profile.confidence.get(
                         CONFIDENCE_KEYS.get(fld, fld), 0.0 if not source else 0.5)), 2),
                     "Example values": example_values(profile, raw, fld, source)})
    return pd.DataFrame(rows)


def example_values(profile: Profile, raw: pd.DataFrame, key: str, source: str | None) -> str:
    """Return up to three distinct values of `source` as the field `key` would show them (officer ids pseudonymised)."""
    if not source or source not in raw.columns:
        return ""
    seen = _items(profile, raw, source).dropna().astype(str).str.strip()
    seen = seen[seen != ""].drop_duplicates()
    if key == "officer_id" or source in _sources(profile.officer_id_column) or pseudonym.is_officer_id_header(source):
        return _officer_examples(seen)
    return ", ".join(seen.head(3).str.slice(0, 24))


def proposed_source(profile: Profile, key: str) -> str | None:
    """Return the column the proposal reads a field from (the first, where it reads several)."""
    if key in SLOTS:
        return _first(getattr(profile, SLOTS[key]))
    if key == TACTICS_FIELD:
        return _first(profile.tactic_columns)
    return _first(profile.columns.get(key))


def chosen_frame(profile: Profile, raw: pd.DataFrame, chosen: dict[str, str | None]) -> pd.DataFrame:
    """Return the editor's table with the user's choice of column per field (None: not in this extract)."""
    table = editor_frame(profile, raw)
    table["Source column"] = [chosen.get(k) or NONE if k in chosen else s
                              for k, s in zip(table["key"], table["Source column"], strict=True)]
    return table


def date_readings(cells: pd.Series) -> dict[bool, tuple[pd.Series, str]]:
    """Return, for day-first (True) and month-first (False), the dates a column's cells read as and a sentence
    saying the range they span and how many cells do not read that way."""
    from lib.ingest.formats.profile import date_part

    text = values.blank_to_null(cells.astype("string")).dropna()
    out = {}
    for dayfirst in (True, False):
        dates = values.to_datetime(date_part(text), dayfirst=dayfirst, strict=True)
        read = dates.dropna()
        span = (f"from {read.min():%-d %b %Y} to {read.max():%-d %b %Y}" if len(read) else "no date at all")
        unread = int(dates.isna().sum())
        out[dayfirst] = (dates, span + (f"; {unread:,} of {len(text):,} cells do not read this way and would be "
                                        "set aside" if unread else ""))
    return out


def read_as(cell: str, dayfirst: bool) -> str:
    """Return the date one cell reads as in one order of day and month ("6 Mar 2014"), or say it does not read."""
    from lib.ingest.formats.profile import date_part

    read = values.to_datetime(date_part(pd.Series([cell], dtype="string")), dayfirst=dayfirst, strict=True).iloc[0]
    return f"{read:%-d %b %Y}" if pd.notna(read) else "not a date"


def aggregate_table(raw: pd.DataFrame, profile: Profile) -> str | None:
    """Say why an upload is a table of counts (such as the Home Office tables), not one row per use of force."""
    from lib.ingest.formats import FILE, ROW

    columns = [c for c in raw.columns if c not in (FILE, ROW)]
    if profile.date_column or len(columns) < 3 or not len(raw):
        return None
    sample = raw[columns].head(500)
    counts = [c for c in columns if values.to_number(sample[c]).notna().mean() >= 0.9]
    named = [c for c in columns if re.search(r"(?i)\b(number of|total|count|times)\b|\byears\b|\bover\b", c)]
    places = [c for c in columns if re.search(r"(?i)\b(police force|force|region)\b", c)]
    if len(counts) >= max(3, len(columns) // 2) and places and named:
        return (f"This file is a table of counts ({len(counts)} of its {len(columns)} columns are numbers, such as "
                f"'{counts[-1]}', by '{places[0]}'), like the Home Office's national use-of-force tables: it has no "
                "row per use of force to map. To set your figures beside the national ones, import the Home Office "
                "data tables workbook (.ods) on the National figures tab.")
    return None


def preview(profile: Profile, raw: pd.DataFrame, rows: int = PREVIEW_ROWS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the first reports as they will load (friendly names, mapped fields only, officer ids pseudonymised)
    and the first rows set aside, with their reasons, reading only the first rows of the file."""
    from lib.ingest.formats import ROW
    from lib.ingest.formats.profile import ProfileFormat

    head = raw.head(max(rows * 10, 200))
    adapted = ProfileFormat(profile).adapt(head)
    reports = adapted.reports.head(rows)
    mapped = [c for c in schema.REPORT_COLUMNS if c in reports.columns
              and (reports[c].notna().any() if reports[c].dtype != object
                   else reports[c].map(lambda v: bool(v) if isinstance(v, list) else pd.notna(v)).any())]
    shown = reports[mapped].copy()
    if "officer_id" in shown:
        try:
            shown["officer_id"] = pseudonym.pseudonymise(shown["officer_id"].astype("string"))
        except pseudonym.PseudonymKeyError:
            shown["officer_id"] = pseudonym.HIDDEN
    for col in shown.columns:
        if shown[col].dtype == object:
            shown[col] = shown[col].map(lambda v: ", ".join(map(str, v)) if isinstance(v, list) else v)
    shown.insert(0, "Line in file", line_numbers(reports[ROW]) if ROW in reports else range(2, 2 + len(reports)))
    shown = shown.rename(columns=schema.FIELD_LABELS)
    set_aside = adapted.quarantine.head(rows)
    aside = pd.DataFrame({"Line in file": line_numbers(set_aside[ROW]) if ROW in set_aside else [],
                          "Why it is set aside": set_aside["reason"] if "reason" in set_aside else []})
    return shown.reset_index(drop=True), aside.reset_index(drop=True)


def line_numbers(rows: pd.Series, header_lines: int = 1) -> pd.Series:
    """Return the file line (as a spreadsheet numbers it, the header being line 1) of data rows numbered from 1."""
    return pd.to_numeric(rows, errors="coerce").astype("Int64") + header_lines


def _items(profile: Profile, raw: pd.DataFrame, column: str) -> pd.Series:
    """Return a column's cells, split into one value per officer where the profile says it lists them."""
    if column not in [*profile.list_columns, *profile.subject_list_columns]:
        return raw[column]
    return split_items(raw[column], profile.list_separator).explode().astype("string")


def tactic_frame(profile: Profile, raw: pd.DataFrame) -> pd.DataFrame:
    """Return each tactic name the extract uses with its proposed Home Office tactic."""
    cells = [values.split_list(_items(profile, raw, c).reset_index(drop=True)).explode().dropna()
             for c in profile.tactic_columns if c in raw.columns]
    if not cells:
        return pd.DataFrame(columns=["Tactic in the extract", "Times used", "Home Office tactic"])
    counts = pd.concat(cells).astype(str).value_counts().head(MAX_TACTIC_VALUES)
    lookup = {values.normalise_name(k): v for k, v in profile.tactic_map.items()}
    return pd.DataFrame({"Tactic in the extract": counts.index, "Times used": counts.to_numpy(),
                         "Home Office tactic": [lookup.get(values.normalise_name(v), KEEP) for v in counts.index]})


def apply(profile: Profile, edited: pd.DataFrame, name: str, force: str | None = None,
          tactics_edited: pd.DataFrame | None = None, list_columns: list[str] | None = None,
          list_separator: str | None = None, dayfirst: bool | None = None) -> Profile:
    """Return the proposed profile changed to match the user's edited tables, force name and list columns.

    `list_columns` (None: as proposed) names the columns whose cells list several officers in step,
    split at `list_separator`; the date, time and id columns are never among them. `dayfirst` (None: as
    proposed) is the order of day and month the date column is read in.
    """
    chosen = {row["key"]: (None if row["Source column"] in (NONE, "", None) else row["Source column"])
              for row in edited.to_dict("records")}
    if not chosen.get("date"):
        raise ValueError(f"{LABELS['date']}: pick the column that holds the date, under 'Required' at the top "
                         "of the fields: every report needs one")
    force = (force or "").strip() or profile.force
    if not force and not chosen.get("force"):
        raise ValueError("Force: name the force these records belong to, in 'Force these records belong to' "
                         "below the fields: the extract has no force column")
    slots = {SLOTS[k]: chosen.get(k) for k in SLOTS}
    columns = {f: chosen[f] for f in MAPPABLE_FIELDS if chosen.get(f)}
    tactics = list(profile.tactic_columns)
    picked = chosen.get(TACTICS_FIELD)
    if picked is None:
        tactics = []
    elif not tactics or tactics[0] != picked:
        tactics = [picked]
    tactic_map = dict(profile.tactic_map)
    if tactics_edited is not None:
        for row in tactics_edited.to_dict("records"):
            source, target = str(row["Tactic in the extract"]), row["Home Office tactic"]
            if target in schema.TACTICS:
                tactic_map[source] = target
            else:  # kept as given: shown as an unmapped value after loading, never dropped
                tactic_map.pop(source, None)
    notes = [n for n in profile.notes if not (force and n.startswith("force is not in the data"))]
    once = {chosen.get(k) for k in ("date", "time", "report_id", "incident_id")}
    listed = [c for c in (profile.list_columns if list_columns is None else list_columns) if c not in once]
    separator = profile.list_separator if list_separator is None else list_separator
    if listed and not separator.strip():
        raise ValueError("say what separates the officers' values in a cell (for example ' | ')")
    if not listed:
        notes = [n for n in notes if "list several officers" not in n]
    same_id = chosen.get("report_id") == _first(profile.report_id_column)  # the proposal's grouping went with its id
    if not same_id:
        notes = [n for n in notes if "rows are folded" not in n]
    group_by = profile.group_by if same_id else []
    updated = replace(profile, name=safe_name(name), notes=notes, label=f"{name} (saved mapping)", columns=columns,
                      tactic_columns=tactics, force=force, tactic_map=tactic_map, list_columns=listed,
                      list_separator=separator if listed else profile.list_separator, group_by=group_by,
                      dayfirst=profile.dayfirst if dayfirst is None else dayfirst, **slots)
    return updated


def save(profile: Profile, edited: pd.DataFrame, name: str, directory: Path,
         force: str | None = None, tactics_edited: pd.DataFrame | None = None,
         list_columns: list[str] | None = None, list_separator: str | None = None,
         dayfirst: bool | None = None) -> str:
    """Save the edited profile and return the format name to ingest with."""
    updated = apply(profile, edited, name, force, tactics_edited, list_columns, list_separator, dayfirst)
    save_profile(updated, directory)
    return f"profile:{updated.name}"
