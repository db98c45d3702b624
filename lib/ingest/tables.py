"""One table adapter for the simple tables: canonical reports, roster tables and debriefs.

A table is described by a `TableSpec`: its columns, each with the header names that mean it
(aliases, normalised as `values.normalise_name` folds them), its kind (lib/model/kinds.py) and whether
a row needs a value in it. `read_table(spec, frame)` takes a raw text frame (every cell as text,
with `_file` and `_row`; see lib/ingest/formats/__init__.py), matches headers by alias (or takes the
user's mapping), parses each column with its kind's parser, and sets aside every row that lacks a
required value, with its reason:

- "<column> is empty", or the column's own wording (`Column.missing`, e.g. "no officer id");
- "<column> '<cell>' is not a date" (a number, yes or no) when the cell is there but unreadable;
- the reason of the first `TableSpec.one_of` group none of whose columns has a value;
- the reason of the first `TableSpec.checks` rule the parsed row breaks.

`<column>` is the source header as the file writes it; a row gets the first reason it earns.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from lib.ingest.formats import FILE, ROW, empty_quarantine, quarantine_rows
from lib.model import values
from lib.model.kinds import KINDS


@dataclass(frozen=True)
class Column:
    """One column of a table: its canonical name, kind, aliases and whether a row needs it."""

    name: str
    kind: str  # a key of lib.model.kinds.KINDS
    aliases: tuple[str, ...] = ()  # normalised header names that mean this column, best first
    required: bool = False  # a row with no readable value is set aside
    only_if_present: bool = False  # ... but only when the file has the column at all
    missing: str | None = None  # the reason for an empty value (default "<column> is empty")
    separator: str | None = None  # list columns: what separates the items (default the kind's)
    parse: Callable[[pd.Series], pd.Series] | None = None  # instead of the kind's parser

    def read(self, cells: pd.Series) -> pd.Series:
        """Parse text cells into this column's values (null where empty or unreadable)."""
        if self.parse is not None:
            return self.parse(cells)
        kind = KINDS[self.kind]
        return kind.parse(cells) if self.separator is None else kind.parse(cells, self.separator)


@dataclass(frozen=True)
class TableSpec:
    """A table's columns and the rules a row must keep to be loaded."""

    name: str
    columns: tuple[Column, ...]
    # (columns, reason): a row needs a value in at least one of the columns
    one_of: tuple[tuple[tuple[str, ...], str], ...] = ()
    # (rule, reason): the rule gets the parsed records and returns which rows break it
    checks: tuple[tuple[Callable[[pd.DataFrame], pd.Series], str], ...] = ()
    shown_chars: int = 40  # how much of a bad cell a reason quotes
    absent_as_null: bool = True  # a column the file lacks comes out all null (False: left out)

    @property
    def aliases(self) -> dict[str, tuple[str, ...]]:
        """Return canonical name -> aliases, in column order (what `values.match_columns` takes)."""
        return {c.name: c.aliases for c in self.columns}

    def match(self, header: Sequence[str]) -> dict[str, str]:
        """Map each column to the first header matching one of its aliases; a header is used once."""
        return values.match_columns(list(header), self.aliases)


@dataclass
class Table:
    """What `read_table` returns: every row parsed, which were set aside and why, and the mapping.

    Frames keep the raw frame's index (and `_file`, `_row`), so a reader can go back to the raw cells.
    """

    parsed: pd.DataFrame  # every row of the raw frame, parsed
    set_aside: pd.Series  # True for the rows in `quarantine`
    quarantine: pd.DataFrame = field(default_factory=empty_quarantine)
    mapping: dict[str, str] = field(default_factory=dict)

    @property
    def records(self) -> pd.DataFrame:
        """Return the rows that load (every required value there and readable)."""
        return self.parsed[~self.set_aside]


def read_table(spec: TableSpec, frame: pd.DataFrame, mapping: dict[str, str] | None = None) -> Table:
    """Parse a raw text frame into a table's records; set aside rows that lack a required value.

    `mapping` (canonical name -> source header) replaces the alias match when given: the user's
    own mapping, or a layout whose headers are the canonical names themselves.
    """
    mapping = spec.match([c for c in frame.columns if c not in (FILE, ROW)]) if mapping is None else mapping
    out = pd.DataFrame({FILE: frame[FILE], ROW: frame[ROW]}, index=frame.index)
    for col in spec.columns:
        if col.name in mapping:
            out[col.name] = col.read(frame[mapping[col.name]])
        elif spec.absent_as_null:
            out[col.name] = col.read(pd.Series(pd.NA, index=frame.index, dtype="string"))
    reasons = pd.Series("", index=frame.index, dtype="string")
    for col in spec.columns:
        if not col.required or (col.only_if_present and col.name not in mapping):
            continue
        _set_reasons(reasons, col, spec, frame, out, mapping)
    for names, reason in spec.one_of:
        none = pd.Series(True, index=frame.index)
        for name in names:
            if name in out:
                none &= out[name].isna()
        reasons[none & (reasons == "")] = reason
    for rule, reason in spec.checks:
        reasons[rule(out) & (reasons == "")] = reason
    bad = reasons != ""
    return Table(out, bad, quarantine_rows(frame, bad, reasons), mapping)


def _set_reasons(reasons: pd.Series, col: Column, spec: TableSpec, frame: pd.DataFrame, out: pd.DataFrame,
                 mapping: dict[str, str]) -> None:
    """Give each row with no readable value in a required column (and no reason yet) its reason."""
    shown_name = mapping.get(col.name, col.name)
    if col.name not in out:
        missing = pd.Series(True, index=frame.index)
    elif col.kind == "list":
        missing = out[col.name].map(len) == 0  # a list column's empty value is an empty list
    else:
        missing = out[col.name].isna()
    gap = missing & (reasons == "")
    if not gap.any():
        return
    cells = (values.blank_to_null(frame.loc[gap, mapping[col.name]]).fillna("") if col.name in mapping
             else pd.Series("", index=gap[gap].index, dtype="string"))
    noun, n = KINDS[col.kind].noun, spec.shown_chars
    empty = col.missing or f"{shown_name} is empty"
    reasons[gap] = cells.map(lambda v: f"{shown_name} '{v[:n]}' is not {noun}" if v else empty)
