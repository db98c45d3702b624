"""Fields recorded once per incident: which ones, and how a dataset's tables carry the marking.

Some extracts record a field per incident and copy it to every officer's report of that incident
(New Orleans: "an officer in the incident was hurt" on each officer's row). Counted per report, such
a field is inflated by the number of officers present; counted per incident it is right. A mapping
profile names these fields (`incident_level`); the ingester writes the list into the reports table's
schema metadata, so a saved dataset (Parquet) and a dataset read from one file both carry it, and
the engine reads it back when it loads the table.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

import pyarrow as pa

from lib.model import schema

METADATA_KEY = b"ose.incident_level"
# The keys of a report describe the report itself; every other report field may be recorded per incident.
NOT_INCIDENT_LEVEL = ("report_id", "incident_id", "officer_id")
ALLOWED = tuple(c for c in schema.REPORT_COLUMNS if c not in NOT_INCIDENT_LEVEL)


def problems(fields: object) -> list[str]:
    """Return what is wrong with a list of incident-level fields (empty when it can be used)."""
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        return ["incident_level must be a JSON list of canonical field names"]
    unknown = [f for f in fields if f not in ALLOWED]
    if unknown:
        return [f"incident_level: {', '.join(unknown)} cannot be recorded per incident "
                f"(a report field other than {', '.join(NOT_INCIDENT_LEVEL)})"]
    return []


def normalised(fields: Iterable[str]) -> tuple[str, ...]:
    """Return incident-level fields once each, in the canonical column order."""
    chosen = set(fields)
    return tuple(c for c in ALLOWED if c in chosen)


def marked(table_schema: pa.Schema | None) -> tuple[str, ...]:
    """Return the incident-level fields a reports table's schema metadata names (none if unmarked)."""
    metadata = (table_schema.metadata if table_schema is not None else None) or {}
    text = metadata.get(METADATA_KEY)
    if not text:
        return ()
    try:
        found = json.loads(text)
    except ValueError:
        return ()  # a damaged marking is no marking: measures count reports, as for any other extract
    return normalised(f for f in found if isinstance(f, str)) if isinstance(found, list) else ()


def with_marking(table: pa.Table, fields: Iterable[str]) -> pa.Table:
    """Return a reports table whose schema metadata names its incident-level fields (replacing any)."""
    metadata = dict(table.schema.metadata or {})
    metadata.pop(METADATA_KEY, None)
    chosen = normalised(fields)
    if chosen:
        metadata[METADATA_KEY] = json.dumps(list(chosen)).encode()
    return table.replace_schema_metadata(metadata or None)
