"""The canonical layout: what the app itself exports (one row per report, tactics as a list)."""
from __future__ import annotations

import pandas as pd

from lib.ingest.formats import FILE, ROW, ROWS, Adapted, count_unmapped, merge_notes
from lib.ingest.tables import Column, TableSpec, read_table
from lib.model import schema, values
from lib.model.kinds import LIST_SEPARATOR

# Every canonical report column, parsed by its kind; a row needs a readable date.
REPORTS = TableSpec("reports", tuple(Column(col, kind, required=col == "occurred_at")
                                     for col, kind in schema.REPORT_COLUMNS.items()),
                    absent_as_null=False)


class CanonicalFormat:
    """Files whose header uses the canonical column names."""

    name = "canonical"
    label = "Officer Safety Explorer canonical export"
    extra_header_rows = 0

    def score(self, columns: list[str]) -> float:
        """Return 1 when the required canonical columns are all present, else the share present."""
        names = {c.strip().lower() for c in columns}
        required = sum(c in names for c in schema.REQUIRED_REPORT_COLUMNS)
        if required == len(schema.REQUIRED_REPORT_COLUMNS):
            return 1.0
        return 0.5 * required / len(schema.REQUIRED_REPORT_COLUMNS)

    def adapt(self, raw: pd.DataFrame) -> Adapted:
        """Parse canonical columns from text; quarantine rows whose date cannot be read."""
        original = [c for c in raw.columns if c not in (FILE, ROW)]
        raw = raw.rename(columns={c: c.strip().lower() for c in original})
        # The headers are the canonical names themselves (any case): no aliases to match.
        read = read_table(REPORTS, raw, mapping={c: c for c in schema.REPORT_COLUMNS if c in raw.columns})
        out = read.parsed
        out.insert(2, ROWS, 1)
        unmapped: dict[str, dict[str, int]] = {}
        for col in read.mapping:
            vocab = schema.REPORT_VOCABULARIES.get(col)
            if vocab:
                found = count_unmapped(out[col], vocab)
                if found:
                    unmapped[col] = found
        quarantine = read.quarantine
        out = out[~read.set_aside]
        if "shift" in out.columns:
            out = schema.fill_shift(out)
        tactics = _tactics(raw.loc[out.index], out)
        found = count_unmapped(tactics["tactic"], schema.TACTICS)
        if found:
            unmapped["tactic"] = found
        mapping = dict(read.mapping)
        if "tactics" in raw.columns:
            mapping["tactics"] = "tactics (';'-separated)"
        officer_columns = [c for c in original if c.strip().lower() == "officer_id"]
        return Adapted(out, tactics, quarantine, mapping, unmapped, officer_id_columns=officer_columns)

    def merge_notes(self, batches: list[list[str]]) -> list[str]:
        """Return the notes adapt() writes for a whole file, from its notes for each batch (each row is one report)."""
        return merge_notes(batches)


def _tactics(raw: pd.DataFrame, reports: pd.DataFrame) -> pd.DataFrame:
    if "tactics" not in raw.columns or "report_id" not in reports.columns:
        return pd.DataFrame({"report_id": pd.Series(dtype="string"), "tactic": pd.Series(dtype="string"),
                             "effective": pd.Series(dtype="boolean")})
    lists = values.split_list(raw["tactics"], LIST_SEPARATOR)
    long = (pd.DataFrame({"report_id": reports["report_id"], "tactic": lists})
            .explode("tactic").dropna(subset=["tactic"]))
    long = long.assign(effective=pd.Series(pd.NA, index=long.index, dtype="boolean"))
    return long.reset_index(drop=True)
