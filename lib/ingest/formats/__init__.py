"""Format adapters: each turns a raw extract (all cells as text) into canonical reports and tactics.

The contract every adapter keeps, so that nothing a user uploads is lost:
- the raw frame holds one row per data row of the source, all cells as text (null for empty),
  plus `_file` (source file name) and `_row` (1-based data row number in that file);
- every raw row ends up either folded into exactly one report (`reports["_rows"]` counts the raw
  rows folded into each report; 1 when a row is a report) or in `quarantine` with a reason; a row
  whose cells list several officers (lib/ingest/formats/lists.py) is split into one report per
  officer item instead: its first item's report carries the row (`_rows` 1, the others 0), and
  `_items` counts the items each report or set-aside entry stands for, so items reconcile too;
- values outside a vocabulary are kept as they were and counted in `unmapped`, never dropped;
- `officer_id` holds the id as the source writes it, and `officer_id_columns` names the source
  columns it came from: the ingester pseudonymises both (lib/ingest/pseudonym.py) before anything is kept.

A format may also say which columns it reads, `columns_read(header) -> list[str]`. The ingester
then reads only those cells of a file up front and calls `adapt(raw, source=...)`, where `source`
(a `Source`) has the whole header and every cell of any row the format asks for: a set-aside row
is still kept, and judged, with all its cells.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

FILE, ROW, ROWS = "_file", "_row", "_rows"
QUARANTINE_COLUMNS = (FILE, ROW, ROWS, "reason")


@dataclass
class Adapted:
    """What an adapter returns: canonical reports and tactics, set-aside rows, and how it mapped."""

    reports: pd.DataFrame
    tactics: pd.DataFrame
    quarantine: pd.DataFrame = field(default_factory=lambda: empty_quarantine())
    mapping: dict[str, str] = field(default_factory=dict)
    unmapped: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    officer_id_columns: list[str] = field(default_factory=list)  # source columns holding officer ids
    # Where cells list several officers (lib/ingest/formats/lists.py): the items in the rows that were
    # split (None: this format reads one report per row or group), and the rows whose lists disagree.
    items_in: int | None = None
    rows_lists_disagree: int = 0
    incident_level: list[str] = field(default_factory=list)  # fields recorded once per incident (lib/model/incidents)


class Format(Protocol):
    """A source layout the ingester can read."""

    name: str
    label: str
    extra_header_rows: int

    def score(self, columns: list[str]) -> float:
        """Return how well a header matches this format, from 0 (not at all) to 1 (certainly)."""

    def adapt(self, raw: pd.DataFrame) -> Adapted:
        """Turn a raw extract into canonical tables."""


class Source(Protocol):
    """The whole extract behind a raw frame that holds only the columns a format reads."""

    columns: list[str]  # every column of the header, in order

    def cells(self, rows: Iterable[int]) -> pd.DataFrame:
        """Return every cell of the given data rows (by `_row`), with `_file` and `_row`."""


def empty_quarantine() -> pd.DataFrame:
    """Return an empty quarantine table."""
    return pd.DataFrame({FILE: pd.Series(dtype="string"), ROW: pd.Series(dtype="int64"),
                         ROWS: pd.Series(dtype="int64"), "reason": pd.Series(dtype="string")})


def quarantine_rows(raw: pd.DataFrame, mask: pd.Series, reason: str | pd.Series) -> pd.DataFrame:
    """Return quarantine entries (one per raw row) for the rows selected by a mask."""
    picked = raw.loc[mask, [FILE, ROW]]
    reasons = reason[mask] if isinstance(reason, pd.Series) else reason
    return pd.DataFrame({FILE: picked[FILE].astype("string"), ROW: picked[ROW].astype("int64"),
                         ROWS: 1, "reason": pd.Series(reasons, index=picked.index, dtype="string")})


def count_unmapped(values: pd.Series, vocabulary: tuple[str, ...]) -> dict[str, int]:
    """Count the non-null values that are not in a vocabulary."""
    outside = values.dropna().astype(str)
    outside = outside[~outside.isin(vocabulary)]
    return {str(k): int(v) for k, v in outside.value_counts().items()}


# A note that counts rows: the pattern that reads its numbers back, and how to write it for given numbers.
CountedNote = tuple[re.Pattern[str], Callable[..., str]]


def merge_notes(batches: Sequence[list[str]], counted: Sequence[CountedNote] = ()) -> list[str]:
    """Merge the notes an adapter wrote for each batch of one file into the notes it writes for the whole file.

    A note that says the same in every batch is kept once; a counted note (one of `counted`) is
    written again with its numbers summed over the batches. Each note keeps the place it has
    among the others, since an adapter writes its notes in one order.
    """
    order: list[object] = []
    sums: dict[int, list[int]] = {}
    for notes in batches:
        before = None
        for note in notes:
            key: object = note
            for i, (pattern, _) in enumerate(counted):
                if m := pattern.fullmatch(note):
                    numbers = [int(g.replace(",", "")) for g in m.groups()]
                    sums[i] = [a + b for a, b in zip(sums.get(i, [0] * len(numbers)), numbers, strict=True)]
                    key = i
                    break
            if key not in order:
                order.insert(order.index(before) + 1 if before is not None else 0, key)
            before = key
    return [counted[k][1](*sums[k]) if isinstance(k, int) else str(k) for k in order]
