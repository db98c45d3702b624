"""Cells that list several officers (or subjects): split them in step into one row per item.

Some extracts keep one row per incident and join the officers' values inside cells, in step across
columns: officer 1's role, injury and force used are item 1 of each list (`Officer Injured =
"No | Yes"`, `Use of Force Type = "Hands | Taser"`). `explode` turns such a raw frame into one row per
officer item (x subject item where subjects are listed too), so a profile reads each item as it
reads a row of a one-row-per-officer file:
- a cell with one value where other columns of its group list k items was recorded once: it is
  given to all k items (so is an empty cell);
- a row whose lists in one group disagree in length (k1 != k2, both above 1) is set aside with a
  reason naming the columns and their lengths: guessing which officer a value belongs to would
  put one officer's injury on another;
- every other column (incident-level) is copied to each item.

The exploded frame keeps `_file` and `_row` (the raw row's number, shared by its items) and adds
`_item` (1-based position of the item in its row), so every report and every set-aside entry can
be traced back to its raw row and counted at both levels: incidents (raw rows) and items.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.ingest.formats import FILE, ROW, ROWS, quarantine_rows

ITEM = "_item"  # 1-based position of an exploded row's item within its raw row
ITEMS = "_items"  # how many list items a report (or a set-aside entry) stands for
SEPARATORS = (" | ", "|", ";")  # the separators the mapping step looks for, most specific first
MAX_ITEMS = 500  # reports one row may become: more is a damaged cell, not an incident (and a memory bomb)


@dataclass
class Exploded:
    """A raw frame split into one row per list item, and the raw rows set aside."""

    frame: pd.DataFrame
    set_aside: pd.DataFrame  # quarantine entries, one per raw row whose lists disagree
    items_in: int  # items in the rows that were split (rows set aside here are not counted)
    rows_split: int  # raw rows holding more than one item


def split_items(cells: pd.Series, separator: str) -> pd.Series:
    """Split each cell into its stripped items; an empty item is None, an empty cell one None."""
    token = separator.strip() or separator
    pattern = re.compile(r"\s*" + re.escape(token) + r"\s*")

    def split(cell: object) -> list[str | None]:
        if cell is None or cell is pd.NA or (isinstance(cell, float) and np.isnan(cell)):
            return [None]
        text = str(cell).strip()
        if not text:
            return [None]
        return [part.strip() or None for part in pattern.split(text)]

    return pd.Series([split(v) for v in cells.tolist()], index=cells.index, dtype=object)


def item_counts(cells: pd.Series, separator: str) -> pd.Series:
    """Return how many items each cell lists (1 for an empty cell or a single value)."""
    token = separator.strip() or separator
    text = cells.astype("string").str.strip().fillna("")
    return (text.str.count(re.escape(token)) + 1).astype("int64")


def explode(raw: pd.DataFrame, groups: list[list[str]], separator: str,
            names: tuple[str, ...] = ("officer", "subject")) -> Exploded:
    """Split the list columns of each group in step; one row per item of each group (a cross product)."""
    groups = [[c for c in g if c in raw.columns] for g in groups]
    groups = [g for g in groups if g]
    if not groups:
        frame = raw.reset_index(drop=True).assign(**{ITEM: 1})
        return Exploded(frame, quarantine_rows(raw, pd.Series(False, index=raw.index), ""), len(raw), 0)
    split = {c: split_items(raw[c], separator) for g in groups for c in g}
    lengths = {c: split[c].map(len).to_numpy(dtype=np.int64) for c in split}
    n = len(raw)
    sizes = []
    reason = np.full(n, None, dtype=object)
    for g, name in zip(groups, names, strict=False):
        k = np.max(np.column_stack([lengths[c] for c in g]), axis=1) if n else np.zeros(0, dtype=np.int64)
        sizes.append(k)
        bad = np.zeros(n, dtype=bool)
        for c in g:
            bad |= (lengths[c] != 1) & (lengths[c] != k)
        for i in np.flatnonzero(bad & pd.isna(reason)):
            reason[i] = (f"the {name} lists disagree in length ({_lengths({c: int(lengths[c][i]) for c in g})}); "
                         f"set aside rather than guess which {name} each value belongs to")
    # A cross product of long lists could turn one row into millions: such a row is set aside.
    total = np.ones(n, dtype=np.float64)
    for k in sizes:
        total *= k
    for i in np.flatnonzero((total > MAX_ITEMS) & pd.isna(reason)):
        reason[i] = (f"the lists name {int(total[i]):,} officers (or officer and subject pairs): more than "
                     f"{MAX_ITEMS:,} in one row, so the row is set aside rather than split")
    bad = pd.notna(reason)
    set_aside = quarantine_rows(raw, pd.Series(bad, index=raw.index),
                                pd.Series(reason, index=raw.index, dtype="string"))
    good = np.flatnonzero(~bad)
    per_row = np.prod(np.column_stack([k[good] for k in sizes]), axis=1) if len(good) else np.zeros(0, np.int64)
    rows = np.repeat(good, per_row)
    # Position of each exploded row within its raw row, then its item in each group (mixed radix).
    starts = np.repeat(np.cumsum(per_row) - per_row, per_row)
    position = np.arange(len(rows)) - starts
    frame = raw.iloc[rows].reset_index(drop=True)
    stride = np.ones(len(rows), dtype=np.int64)
    for g, k in reversed(list(zip(groups, sizes, strict=True))):
        size = k[rows]
        index = (position // stride) % size
        stride = stride * size
        for c in g:
            flat = split[c].explode().to_numpy(dtype=object)
            offsets = np.concatenate([[0], np.cumsum(lengths[c])])[:-1]
            at = offsets[rows] + np.where(lengths[c][rows] > 1, index, 0)
            frame[c] = pd.array(flat[at] if len(at) else [], dtype="string")
    frame[ITEM] = position + 1
    return Exploded(frame, set_aside, int(len(rows)), int((per_row > 1).sum()))


def _lengths(counts: dict[str, int]) -> str:
    """Say which columns list how many items, the odd ones out first ('A: 3 items; B, C: 2 items')."""
    by_length: dict[int, list[str]] = {}
    for col, n in counts.items():
        if n > 1:
            by_length.setdefault(n, []).append(col)
    parts = []
    for n, cols in sorted(by_length.items(), key=lambda kv: (len(kv[1]), kv[0])):
        named = ", ".join(cols) if len(cols) <= 4 else f"{', '.join(cols[:3])} and {len(cols) - 3} more"
        parts.append(f"{named}: {n} items")
    return "; ".join(parts)


def collapse(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Merge set-aside entries for the same raw row and reason (the items of one incident) into one."""
    if ITEMS not in quarantine.columns or not len(quarantine):
        return quarantine.drop(columns=[ITEMS], errors="ignore")
    key = [FILE, ROW, "reason"]
    first = quarantine.drop_duplicates(key).drop(columns=[ROWS, ITEMS])
    sums = quarantine.groupby(key, sort=False, dropna=False)[ROWS].sum().rename(ROWS).reset_index()
    out = first.merge(sums, on=key, how="left")
    ordered = [c for c in quarantine.columns if c != ITEMS]
    return out[ordered].astype({ROWS: "int64"}).reset_index(drop=True)


@dataclass
class Proposal:
    """Columns that look like officer lists in step, and the separator between their items."""

    separator: str
    columns: list[str]
    rows_split: int  # sampled rows listing more than one item
    agreement: float  # share of those rows where every proposed column lists the row's count (or one value)


MIN_LISTED_SHARE = 0.02  # of a column's non-empty cells holding the separator
MIN_AGREEMENT = 0.8  # of the rows where a column lists several items, the share matching the row's count


def detect(frame: pd.DataFrame, columns: list[str], limit: int = 5000) -> Proposal | None:
    """Find columns whose cells list several items in step (same count in a row); None if there are none.

    A column is a candidate when a share of its non-empty cells holds a separator; candidates are kept
    when, in the rows where they list several items, they list as many as the row's other lists do
    (the most common count). One column alone is not proposed: a single column with a separator is
    more likely a list of that field's values than several officers.
    """
    sample = frame[columns].head(limit)
    best: Proposal | None = None
    for token in dict.fromkeys(s.strip() for s in SEPARATORS):
        text = {c: sample[c].astype("string").str.strip() for c in columns}
        filled = {c: text[c].fillna("").ne("") for c in columns}
        holds = {c: text[c].str.contains(token, regex=False).fillna(False) for c in columns}
        candidates = [c for c in columns if int(holds[c].sum()) >= 2
                      and holds[c].sum() / max(int(filled[c].sum()), 1) >= MIN_LISTED_SHARE]
        kept, agreement, rows = _agreeing(pd.DataFrame({c: item_counts(text[c], token) for c in candidates},
                                                       index=sample.index))
        if len(kept) < 2 or (best is not None and len(kept) <= len(best.columns)):
            continue
        cells = pd.concat([text[c][holds[c]] for c in kept])
        spaced = cells.str.count(re.escape(f" {token} ")).sum() >= 0.8 * cells.str.count(re.escape(token)).sum()
        best = Proposal(f" {token} " if spaced else token, kept, rows, agreement)
    return best


def _agreeing(counts: pd.DataFrame) -> tuple[list[str], float, int]:
    """Keep the columns whose counts match each row's most common count above one; say how well."""
    kept = list(counts.columns)
    for _ in range(3):  # a free-text column with stray separators drops out, then the counts settle
        if len(kept) < 2:
            return kept, 0.0, 0
        k = _modal_count(counts[kept].to_numpy())
        share = {c: float((counts[c][counts[c] > 1] == k[counts[c] > 1]).mean()) for c in kept}
        agreeing = [c for c in kept if share[c] >= MIN_AGREEMENT]
        if agreeing == kept:
            break
        kept = agreeing
    if len(kept) < 2:
        return kept, 0.0, 0
    sub = counts[kept]
    listed = sub.max(axis=1) > 1
    k = sub.max(axis=1)
    fine = sub.eq(k, axis=0) | sub.eq(1)
    return kept, float(fine[listed].all(axis=1).mean()) if listed.any() else 0.0, int(listed.sum())


def _modal_count(counts: np.ndarray) -> np.ndarray:
    """Return each row's most common count above one (the smaller on ties; 0 where none is above one)."""
    out = np.zeros(len(counts), dtype=np.int64)
    best = np.zeros(len(counts), dtype=np.int64)
    for value in np.unique(counts[counts > 1]):
        tally = (counts == value).sum(axis=1)
        better = tally > best
        out[better], best[better] = value, tally[better]
    return out
