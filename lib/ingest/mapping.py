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
    "date": "Date (or date and time)", "time": "Time of day", "shift": "Shift",
    "report_id": "Report id", "incident_id": "Incident id", "officer_id": "Officer id",
    "area": "Area", "team": "Team", TACTICS_FIELD: "Tactic (first of the tactic columns)",
}


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
    officer_columns = set(_sources(profile.officer_id_column))
    fields = [*SLOTS, TACTICS_FIELD, *MAPPABLE_FIELDS]
    for fld in dict.fromkeys(fields):
        if fld in SLOTS:
            source = _first(getattr(profile, SLOTS[fld]))
        elif fld == TACTICS_FIELD:
            source = _first(profile.tactic_columns)
        else:
            source = _first(profile.columns.get(fld))
        examples = ""
        if source and source in raw.columns:
            seen = _items(profile, raw, source).dropna().astype(str).str.strip()
            seen = seen[seen != ""].drop_duplicates()
            if fld == "officer_id" or source in officer_columns or pseudonym.is_officer_id_header(source):
                examples = _officer_examples(seen)
            else:
                examples = ", ".join(seen.head(3).str.slice(0, 24))
        rows.append({"Field": LABELS.get(fld, fld), "key": fld, "Source column": source or NONE,
                     "Confidence": round(float(profile.confidence.get(fld, 0.0 if not source else 0.5)), 2),
                     "Example values": examples})
    return pd.DataFrame(rows)


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
          list_separator: str | None = None) -> Profile:
    """Return the proposed profile changed to match the user's edited tables, force name and list columns.

    `list_columns` (None: as proposed) names the columns whose cells list several officers in step,
    split at `list_separator`; the date, time and id columns are never among them.
    """
    chosen = {row["key"]: (None if row["Source column"] in (NONE, "", None) else row["Source column"])
              for row in edited.to_dict("records")}
    if not chosen.get("date"):
        raise ValueError("pick the column that holds the date: every report needs one")
    force = (force or "").strip() or profile.force
    if not force and not chosen.get("force"):
        raise ValueError("name the force these records belong to: the extract has no force column")
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
    updated = replace(profile, name=safe_name(name), notes=notes, label=f"{name} (saved mapping)", columns=columns,
                      tactic_columns=tactics, force=force, tactic_map=tactic_map, list_columns=listed,
                      list_separator=separator if listed else profile.list_separator, **slots)
    return updated


def save(profile: Profile, edited: pd.DataFrame, name: str, directory: Path,
         force: str | None = None, tactics_edited: pd.DataFrame | None = None,
         list_columns: list[str] | None = None, list_separator: str | None = None) -> str:
    """Save the edited profile and return the format name to ingest with."""
    updated = apply(profile, edited, name, force, tactics_edited, list_columns, list_separator)
    save_profile(updated, directory)
    return f"profile:{updated.name}"
