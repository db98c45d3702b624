"""Reading post-incident debriefs: an upload (CSV, Parquet or Excel) into debrief records.

A debrief record names the report or incident it reviews, its date, the contributing factors
(a list), learning points and actions. Columns are matched by name; a row that names neither a
report nor an incident is set aside with its reason. The analysis is in lib/analysis/debriefs.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from lib import ingest
from lib.ingest.formats import ROWS, empty_quarantine
from lib.ingest.tables import Column, TableSpec, read_table
from lib.model import values

LIST_SEPARATORS = r"[;,|]"


def _factors(cells: pd.Series) -> pd.Series:
    """Split contributing factors on any of ; , | (every item kept as written, stripped)."""
    factors = values.blank_to_null(cells)
    return pd.Series([
        [] if pd.isna(v) else [p.strip() for p in pd.Series([v]).str.split(LIST_SEPARATORS, regex=True)[0] if p.strip()]
        for v in factors.tolist()], index=cells.index, dtype=object)


# The debrief table, in the order of its records' columns, with the header names (normalised) that mean each.
DEBRIEFS = TableSpec("debriefs", (
    Column("report_id", "string", ("report id", "report", "form id", "uof number", "report number")),
    Column("incident_id", "string", ("incident id", "incident", "incident number", "pib file number")),
    Column("learning_points", "string", ("learning points", "learning", "lessons", "lessons learned")),
    Column("actions", "string", ("actions", "actions agreed", "recommendations")),
    Column("debrief_date", "timestamp", ("debrief date", "date", "review date", "date of debrief")),
    Column("contributing_factors", "list", ("contributing factors", "factors", "root causes", "root cause",
                                            "causes"), parse=_factors),
), one_of=((("report_id", "incident_id"), "no report or incident id"),))
# canonical debrief column -> header names (normalised) that mean it
ALIASES: dict[str, tuple[str, ...]] = DEBRIEFS.aliases


@dataclass
class Debriefs:
    """Debrief records read from an upload, the rows set aside, and how columns were matched."""

    records: pd.DataFrame
    quarantine: pd.DataFrame = field(default_factory=empty_quarantine)
    mapping: dict[str, str] = field(default_factory=dict)

    @property
    def rows_in(self) -> int:
        return len(self.records) + int(self.quarantine[ROWS].sum()) if len(self.quarantine) else len(self.records)


def read(name: str, data: bytes, limits: ingest.Limits | None = None) -> Debriefs:
    """Read a debrief extract (CSV, Parquet or Excel); set aside rows with no report or incident id."""
    raw = ingest.read_extract(name, data, limits or ingest.Limits.from_env())
    mapping = DEBRIEFS.match(raw.columns)
    if "report_id" not in mapping and "incident_id" not in mapping:
        raise ingest.RejectedFile(f"{name} has no report or incident id column (looked for "
                                  f"{', '.join(ALIASES['report_id'][:2] + ALIASES['incident_id'][:2])})")
    table = read_table(DEBRIEFS, raw.frame, mapping)
    return Debriefs(table.records.reset_index(drop=True),
                    pd.concat([raw.quarantine, table.quarantine], ignore_index=True), mapping)
