"""One scan per filter state on the embedded DuckDB engine: the Overview's queries from two scans.

lib/engine/query.py asks here first (`_page_totals`, `_page_breakdown`, `_page_tactics`) and falls back
to its Ibis queries when these answer None (other backends, other dimensions).
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lib.engine import store
from lib.engine.filters import (
    DIMENSION_ORDER,
    Filters,
    _start_of,
    filtered_reports,
    previous_period,
)
from lib.engine.store import Dataset, Engine
from lib.model import schema
from lib.model.scope import Scope
from lib.privacy import cellkey

# --- one scan per filter state (embedded DuckDB) ----------------------------------------------
#
# A page asks for the summary of a filter state, the previous period's summary and several
# breakdowns and tactic counts; one query each scanned the same rows about ten times. On the
# embedded engine the reports table carries derived columns (store.DERIVED_COLUMNS), and two
# scans answer them all: the totals of this period and the previous one (split at the start of
# this one), and a GROUPING SETS query at the grain the breakdowns need, which numpy adds up
# exactly: months, roles and shifts, and tactic masks for a page that asks only for those (the
# Overview), or the finer month and week-hour and role, shift and area for one that asks for a
# weekday, an hour or an area. The small results
# are kept per engine and filter state, so the rest of the page reads them. Other backends, and
# other dimensions, run the Ibis queries above; tests check that both give the same frames.


PAGE_WHEN = ("month", "weekday", "hour")


PAGE_WHO = ("officer_role", "shift", "area")


T = TypeVar("T")


PAGE_STATES = 256  # filter states whose results an engine keeps (each a few small frames)


# The parts one scan counts together. Fewer groups to hash made the coarse family about half the CPU of the
# fine one (1,000,000 reports, one year in view): a page asking for months, roles or shifts only needs no more.
_FAMILIES = (("month", "role_shift", "tactics"), ("when", "who", "tactics"))


# A coarse part, and the fine part it can be added up from when that one is already counted.
_COARSER = {"month": "when", "role_shift": "who"}


ROLE_SHIFT = ("officer_role", "shift")


_COUNTS = ["reports", *(f"{c}_{k}" for c in schema.HARM_FIELDS for k in ("yes", "answered"))]


def _names(keyed: bool) -> list[str]:
    """Return the count columns of a scan, with their key sums (cell key method) after them when keyed."""
    return [*_COUNTS, *(cellkey.key_column(c) for c in _COUNTS)] if keyed else list(_COUNTS)


def _keys_sql(incident_level: tuple[str, ...] = ()) -> str:
    """Return the key sums of the scan's counts: the record keys of the reports each count counts."""
    parts = [f'coalesce(sum({cellkey.RECORD_KEY}), 0) AS "{cellkey.key_column("reports")}"']
    for c in schema.HARM_FIELDS:
        parts.append(f'coalesce(sum({cellkey.RECORD_KEY}) FILTER (WHERE "{c}"), 0) '
                     f'AS "{cellkey.key_column(f"{c}_yes")}"')
        parts.append(f'coalesce(sum({cellkey.RECORD_KEY}) FILTER (WHERE "{c}" IS NOT NULL), 0) '
                     f'AS "{cellkey.key_column(f"{c}_answered")}"')
    return ", ".join(parts)


_WEEKDAYS = np.array(DIMENSION_ORDER["weekday"], dtype=object)


@dataclass(frozen=True)
class _PageColumns:
    """What a dataset's reports table offers the one-scan queries."""

    officer_max: int | None
    incident_max: int | None
    tactic_bits: tuple[tuple[str | None, str | None], ...] | None
    who: tuple[str, ...]
    answers: bool = False  # the reports carry masks of the tactics answered effective (store.DERIVED_COLUMNS)

    def keys(self, part: str) -> list[str] | None:
        """Return the grouping columns of a part, or None if this dataset cannot give it."""
        if part == "when":
            return ["_month", "_weekhour"]
        if part == "month":
            return ["_month"]
        if part == "who":
            return list(self.who) or None
        if part == "role_shift":
            return [c for c in self.who if c in ROLE_SHIFT] or None
        return ["_tactics"] if self.tactic_bits is not None else None


@dataclass
class _PageState:
    """The results kept for one (dataset, filters, scope)."""

    totals: dict[str, int] | None = None
    span: tuple[str, str | None] | None = None  # compiled SQL over this and the previous period, and the split
    parts: dict[str, pd.DataFrame] = field(default_factory=dict)
    frames: dict[tuple[str, ...], pd.DataFrame] = field(default_factory=dict)
    tactic_scan: TacticScan | None = None
    kept: dict[str, object] = field(default_factory=dict)  # other pages' results of this state (`kept`)


class _PageMemo:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: OrderedDict[tuple, _PageState] = OrderedDict()
        self.columns: dict[str, _PageColumns | None] = {}
        self.enums: dict[tuple[str, str], tuple[str, ...] | None] = {}
        self.officers: OrderedDict[tuple, OfficerCounts] = OrderedDict()  # the last OFFICER_STATES states' counts


_MEMOS: weakref.WeakKeyDictionary[Engine, _PageMemo] = weakref.WeakKeyDictionary()


_MEMOS_LOCK = threading.Lock()


def forget_page_results(engine: Engine) -> None:
    """Drop the results an engine keeps per filter state (a benchmark times a fresh filter change)."""
    with _MEMOS_LOCK:
        memo = _MEMOS.get(engine)
    if memo is not None:
        with memo.lock:
            memo.states.clear()
            memo.officers.clear()


def _memo(engine: Engine) -> _PageMemo:
    with _MEMOS_LOCK:
        memo = _MEMOS.get(engine)
        if memo is None:
            memo = _MEMOS[engine] = _PageMemo()
        return memo


def _state(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> _PageState:
    memo, key = _memo(engine), (ds.id, filters, scope)
    with memo.lock:
        state = memo.states.get(key)
        if state is None:
            state = memo.states[key] = _PageState()
            while len(memo.states) > PAGE_STATES:
                memo.states.popitem(last=False)
        else:
            memo.states.move_to_end(key)
        return state


def kept(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, name: str, compute: Callable[[], T]) -> T:
    """Return a result kept for a filter state under `name`, computing it the first time (any backend).

    For a query whose result serves two of a page's functions: the second reads it instead of scanning again.
    """
    state = _state(engine, ds, filters, scope)
    if name not in state.kept:
        state.kept[name] = compute()
    return state.kept[name]  # type: ignore[return-value]


def _page_columns(engine: Engine, ds: Dataset) -> _PageColumns | None:
    """Return what the one-scan queries can use of a dataset, or None to use the Ibis queries."""
    memo = _memo(engine)
    with memo.lock:
        if ds.id in memo.columns:
            return memo.columns[ds.id]
    info = None
    if engine.backend.name == "duckdb":
        cols = set(engine.reports(ds).columns)
        needed = {"occurred_at", "report_id", *schema.HARM_FIELDS, *store.DERIVED_COLUMNS[:4]}
        if needed <= cols:
            con = engine.backend.con
            # The relation API, as Ibis uses: an execute() result left open on this cursor would block it.
            [(officer_max, incident_max)] = con.sql(
                f'SELECT max(_officer_key), max(_incident_key) FROM "{ds.reports_table}"').fetchall()
            bits = store.tactic_bits(con, ds.tactics_table) if "_tactics" in cols else None
            info = _PageColumns(officer_max, incident_max, None if bits is None else tuple(bits),
                                tuple(c for c in PAGE_WHO if c in cols),
                                answers={"_effective_yes", "_effective_answered"} <= cols)
    with memo.lock:
        memo.columns[ds.id] = info
    return info


def _counts_sql(incident_level: tuple[str, ...] = (), incident_max: int | None = None) -> str:
    parts = []
    for c in schema.HARM_FIELDS:
        if c in incident_level:  # recorded once per incident: count distinct incidents, as query.harm_metrics
            column = f'"{c}"'
            yes = _distinct_sql("_incident_key", incident_max, column)
            answered = _distinct_sql("_incident_key", incident_max, f"{column} IS NOT NULL")
            parts.append(f'{yes} AS "{c}_yes", {answered} AS "{c}_answered"')
        else:
            parts.append(f'coalesce(count_if("{c}"), 0) AS "{c}_yes", count("{c}") AS "{c}_answered"')
    return ", ".join(parts)


def _distinct_sql(column: str, top: int | None, where: str | None = None) -> str:
    # Dense integer keys: a bitmap counts distinct values exactly, far faster than hashing strings.
    if top is None:
        return "0"
    only = f" FILTER (WHERE {where})" if where else ""
    return f"coalesce(bit_count(bitstring_agg({column}, 0, {int(top)}){only}), 0)"


def _timestamp_sql(moment: datetime) -> str:
    # A literal rather than a bound value, so the scan can skip row groups by date; it is built
    # from a datetime, never from text.
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def _page_totals(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                 incident_level: tuple[str, ...] = ()) -> pd.Series | None:
    """Return the summary counts of a filter state from the one scan (with its previous period's).

    The harm fields in `incident_level` are counted in distinct incidents (the caller says which).
    """
    info = _page_columns(engine, ds)
    if info is None:
        return None
    state = _state(engine, ds, filters, scope)
    if state.totals is None:
        previous = previous_period(filters, ds)
        start = filters.date_from or (ds.first.date() if ds.first else None)
        if previous is None or start is None:
            span, split = filters, None
        else:  # this period and the one before are contiguous: one scan over both, split at the start
            span, split = replace(filters, date_from=previous.date_from), _timestamp_sql(_start_of(start))
        inner = engine.backend.compile(filtered_reports(engine, ds, span, scope))
        sql = (f"SELECT {f'occurred_at >= {split}' if split else 'TRUE'} AS current, count(*) AS reports, "
               f"{_counts_sql(incident_level, info.incident_max)}, "
               f"{_distinct_sql('_incident_key', info.incident_max)} AS incidents, "
               f"{_distinct_sql('_officer_key', info.officer_max)} AS officers"
               f"{', ' + _keys_sql() if scope.perturbed else ''} FROM ({inner}) AS f GROUP BY ALL")
        names = [*_COUNTS, "incidents", "officers", *_names(scope.perturbed)[len(_COUNTS):]]
        found = {bool(r[0]): dict(zip(names, (int(v) for v in r[1:]), strict=True))
                 for r in engine.backend.con.sql(sql).fetchall()}
        empty = dict.fromkeys(names, 0)
        state.span = inner, split
        state.totals = found.get(True, empty)
        if previous is not None and split is not None:
            _state(engine, ds, previous, scope).totals = found.get(False, empty)
    return pd.Series(state.totals)


def _page_part(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, part: str) -> pd.DataFrame | None:
    """Return one count table of a filter state: "month", "when", "role_shift", "who" or "tactics"."""
    info = _page_columns(engine, ds)
    if info is None or info.keys(part) is None:
        return None
    state = _state(engine, ds, filters, scope)
    if part not in state.parts:
        # A page that asked for the summary goes on to ask for breakdowns: count its part's family in one scan.
        family = next(f for f in _FAMILIES if part in f)
        wanted = [part] if state.span is None else [
            p for p in family if p not in state.parts and _COARSER.get(p) not in state.parts
            and info.keys(p) is not None]
        if state.span is None:
            source = engine.backend.compile(filtered_reports(engine, ds, filters, scope))
            where = ""
        else:
            source, split = state.span
            where = f" WHERE occurred_at >= {split}" if split else ""
        sets = ", ".join("(" + ", ".join(info.keys(p)) + ")" for p in wanted)
        columns = [c for p in wanted for c in info.keys(p)]
        flags = ", ".join(f"GROUPING({info.keys(p)[0]}) AS g_{p}" for p in wanted)
        selects = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" if c in PAGE_WHO else
                            f"CAST({c} AS UBIGINT) AS {c}" if c == "_tactics" else c for c in columns)
        keys = f", {_keys_sql()}" if scope.perturbed else ""
        sql = (f"SELECT {flags}, {selects}, count(*) AS reports, {_counts_sql()}{keys} "
               f"FROM ({source}) AS f{where} GROUP BY GROUPING SETS ({sets})")
        # Through Arrow, part by part: a 64-bit mask must not pass through a float column with nulls.
        table = engine.backend.con.sql(sql).to_arrow_table()
        for p in wanted:
            rows = table.filter(pc.equal(table[f"g_{p}"], 0)).select([*info.keys(p), *_names(scope.perturbed)])
            frame = rows.to_pandas(date_as_object=False)
            state.parts[p] = (_when_dimensions(frame) if p == "when" else
                              frame.assign(month=frame["_month"].astype("datetime64[s]")) if p == "month" else frame)
    return state.parts[part]


def _page_breakdown(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                    by: tuple[str, ...]) -> tuple[dict[str, pd.Series], np.ndarray] | None:
    """Return the groups and counts of a breakdown added up from the one scan, or None if it cannot."""
    if not by or not (set(by) <= set(PAGE_WHEN) or set(by) <= set(PAGE_WHO)):
        return None
    part = _part_for(engine, ds, filters, scope, by)
    fine = None if part is None else _page_part(engine, ds, filters, scope, part)
    if fine is None or not set(by) <= set(fine.columns):
        return None
    # Each group's counts are the sum of its finest-grain rows: number the groups, then add up.
    group = np.zeros(len(fine), dtype=np.int64)
    uniques = []
    for d in by:
        codes, values = pd.factorize(fine[d], use_na_sentinel=False)
        group = group * max(len(values), 1) + codes
        uniques.append(values)
    groups, first, inverse = np.unique(group, return_index=True, return_inverse=True)
    names = _names(scope.perturbed)  # key sums add up like the counts (they are sums of record keys)
    counts = np.zeros((len(groups), len(names)), dtype=np.int64)
    np.add.at(counts, inverse.reshape(-1), fine[names].to_numpy(dtype=np.int64))
    keys = {d: fine[d].iloc[first].reset_index(drop=True) for d in by}
    return keys, counts


def _part_for(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, by: tuple[str, ...]) -> str | None:
    """Return the part to add a breakdown up from: one already counted if it can, else the coarsest that can."""
    wanted = set(by)
    if wanted <= set(PAGE_WHEN):
        candidates = ("month", "when") if wanted == {"month"} else ("when",)
    else:
        candidates = ("role_shift", "who") if wanted <= set(ROLE_SHIFT) else ("who",)
    info = _page_columns(engine, ds)
    usable = [p for p in candidates if info is not None and info.keys(p) is not None
              and (p in ("month", "when") or wanted <= set(info.keys(p)))]
    counted = _state(engine, ds, filters, scope).parts
    return next((p for p in usable if p in counted), usable[0] if usable else None)


def _when_dimensions(fine: pd.DataFrame) -> pd.DataFrame:
    """Return the "when" part with month, weekday and hour, as the Ibis dimensions give them."""
    weekhour = fine["_weekhour"]
    known = weekhour.notna().to_numpy()
    slot = np.where(known, weekhour.fillna(0).to_numpy(), 0).astype(np.int64)
    hour = pd.Series((slot % 24).astype(np.int32), index=fine.index)
    return fine.assign(  # month a timestamp, weekday a name, hour an int32 (a float when some are unknown)
        month=fine["_month"].astype("datetime64[s]"),
        weekday=pd.Series(np.where(known, _WEEKDAYS[slot // 24], None), index=fine.index),
        hour=hour if known.all() else hour.where(known))


def _page_tactics(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> tuple[pd.DataFrame, int] | None:
    """Return reports per (tactic, tactic group) and the reports in view, from the tactic masks."""
    masks = _page_part(engine, ds, filters, scope, "tactics")
    if masks is None:
        return None
    info = _page_columns(engine, ds)
    mask = masks["_tactics"].to_numpy(dtype=np.uint64)
    count = masks["reports"].to_numpy(dtype=np.int64)
    keyed = scope.perturbed
    key = masks[cellkey.key_column("reports")].to_numpy(dtype=np.int64) if keyed else count
    rows = []
    for bit, (tactic, group) in enumerate(info.tactic_bits):
        with_bit = (mask >> np.uint64(bit)) & np.uint64(1) == 1
        used = int(count[with_bit].sum())
        if used:
            rows.append((tactic, group, used, int(key[with_bit].sum())))
    frame = pd.DataFrame(rows, columns=["tactic", "tactic_group", "reports", cellkey.key_column("reports")])
    frame = frame.astype({"tactic": "str", "tactic_group": "str", "reports": "int64"})
    if not keyed:
        frame = frame.drop(columns=[cellkey.key_column("reports")])
    total = (int(count.sum()), int(key.sum())) if keyed else int(count.sum())
    return frame, total


# --- the Tactics page: one scan per filter state ---------------------------------------------
#
# Each Tactics query joined the tactics table (several rows per report) to the filtered reports
# again: five joins of millions of rows per filter state at 5,000,000 reports. The reports table
# already carries each report's tactics as a bit mask (and which were answered effective), so one
# scan of the filtered reports, grouped by month and mask, holds every count the page needs; the
# analysis expands the masks into tactics exactly (lib/analysis/tactics.py).


@dataclass(frozen=True)
class TacticScan:
    """A filter state's reports counted by month and tactic mask, and by the masks of answered tactics.

    `bits` names each bit of a mask: (tactic, tactic_group). `months` has `_month`, `_tactics` (uint64),
    the reports, the harm counts (`_COUNTS`) and, when keyed, their key sums. `answers` has `_tactics`,
    `_effective_yes`, `_effective_answered`, `reports` and, when keyed, its key sum; it is None when a
    report in view records one tactic twice (a use is then not one bit) or the data has no such masks.
    """

    bits: tuple[tuple[str | None, str | None], ...]
    months: pd.DataFrame
    answers: pd.DataFrame | None


def tactic_scan(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> TacticScan | None:
    """Return the Tactics page's counts of a filter state from one scan, or None to use the Ibis queries."""
    info = _page_columns(engine, ds)
    if info is None or info.tactic_bits is None:
        return None
    state = _state(engine, ds, filters, scope)
    if state.tactic_scan is None:
        source = engine.backend.compile(filtered_reports(engine, ds, filters, scope))
        keyed = scope.perturbed
        keys = f", {_keys_sql()}" if keyed else ""
        if info.answers:
            source = (f"SELECT *, coalesce(_effective_yes, 0)::UBIGINT AS _yes, coalesce(_effective_answered, "
                      f"0)::UBIGINT AS _answered, _effective_answered IS NULL AS _twice FROM ({source}) AS s")
            sets = "(_month, _tactics), (_tactics, _yes, _answered, _twice)"
            columns = "_month, CAST(_tactics AS UBIGINT) AS _tactics, _yes, _answered, _twice"
        else:
            sets, columns = "(_month, _tactics)", "_month, CAST(_tactics AS UBIGINT) AS _tactics"
        sql = (f"SELECT GROUPING(_month) AS by_answers, {columns}, count(*) AS reports, {_counts_sql()}{keys} "
               f"FROM ({source}) AS f GROUP BY GROUPING SETS ({sets})")
        table = engine.backend.con.sql(sql).to_arrow_table()
        # Through Arrow, part by part: a 64-bit mask must not pass through a float column with nulls.
        months = table.filter(pc.equal(table["by_answers"], 0)).select(["_month", "_tactics", *_names(keyed)])
        answers = None
        if info.answers:
            wanted = ["_tactics", "_yes", "_answered", "reports", *([cellkey.key_column("reports")] if keyed else [])]
            rows = table.filter(pc.equal(table["by_answers"], 1))
            if not pc.any(rows["_twice"]).as_py():
                answers = rows.select(wanted).rename_columns(
                    ["_tactics", "_effective_yes", "_effective_answered", *wanted[3:]]).to_pandas()
        state.tactic_scan = TacticScan(info.tactic_bits, months.to_pandas(date_as_object=False), answers)
    return state.tactic_scan


# --- the Data quality page: what a dataset's types already say ---------------------------------


def enum_values(engine: Engine, ds: Dataset, table: str, column: str) -> tuple[str, ...] | None:
    """Return every value a DuckDB ENUM column can hold (None if it is no ENUM, or not on DuckDB).

    The store makes a category column's ENUM from its vocabulary and the values it found outside it as the
    dataset loaded (store._enum_values), so a value outside the vocabulary is in the data if and only if it
    is in the ENUM: a check for codes outside the vocabulary need not scan a column whose ENUM has none.
    """
    if engine.backend.name != "duckdb":
        return None
    memo, name = _memo(engine), ds.reports_table if table == "reports" else ds.tactics_table
    with memo.lock:
        if (name, column) in memo.enums:
            return memo.enums[(name, column)]
    found = None
    if column in engine.reports(ds).columns if table == "reports" else column in engine.tactics(ds).columns:
        try:  # DESCRIBE would print every ENUM in full (thousands of areas and teams): ask this one column
            rows = engine.backend.con.sql(f'SELECT enum_range("{column}")::VARCHAR[] FROM "{name}" '
                                          f'WHERE "{column}" IS NOT NULL LIMIT 1').fetchall()
        except duckdb.Error:  # not an ENUM (an all-null column stays text): nothing known
            rows = None
        if rows is not None:
            found = tuple(rows[0][0]) if rows else ()
    with memo.lock:
        memo.enums[(name, column)] = found
    return found


def officer_month_reports(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> dict[str, np.ndarray] | None:
    """Return a filter state's reports with an officer as arrays: officer key, month number, injured, assaulted.

    Month number is year * 12 + month - 1; injured and assaulted are 0 or 1 (unknown: 0, as a count of them
    counts); under a perturbed scope each report's record key too. The caller adds them up per officer-month
    (a group-by into millions of officer-months costs the engine more than the additions). None where the
    one-scan columns are missing (other backends).
    """
    info = _page_columns(engine, ds)
    if info is None or info.officer_max is None:
        return None
    if scope.perturbed and cellkey.RECORD_KEY not in engine.reports(ds).columns:
        return None  # the Ibis query refuses it in words (`query.require_keys`)
    key = f", {cellkey.RECORD_KEY}::INTEGER AS record_key" if scope.perturbed else ""
    inner = engine.backend.compile(filtered_reports(engine, ds, filters, scope))
    sql = ("SELECT _officer_key::BIGINT AS officer, (year(_month) * 12 + month(_month) - 1)::BIGINT AS month, "
           "coalesce(officer_injured, FALSE)::UTINYINT AS injured, "
           f"coalesce(officer_assaulted, FALSE)::UTINYINT AS assaulted{key} FROM ({inner}) AS f "
           "WHERE _officer_key IS NOT NULL AND _month IS NOT NULL")
    return engine.backend.con.sql(sql).fetchnumpy()


def has_officer_keys(engine: Engine, ds: Dataset) -> bool:
    """Say whether a dataset's reports carry integer officer keys with their ids (`officer_names` can read them)."""
    info = _page_columns(engine, ds)
    return info is not None and info.officer_max is not None and "officer_id" in engine.reports(ds).columns


# --- the Officer risk page: officers counted by their integer keys ------------------------------
#
# The officer section grouped every report in view by its officer's id (a string), sorted the
# 400,000 officers of 5,000,000 reports by id in pandas, and counted shared incidents, peers' mix
# and the listed officers' mix in four more scans, two of them semi-joins with the tactics table.
# On the embedded engine the reports carry dense integer keys for officers and incidents and the
# tactics as a bit mask (store.DERIVED_COLUMNS): the officers are counted by key, put in id order
# by a permutation kept once per dataset, and named only where a page lists them; the mix reads
# the mask. Results are kept per filter state, so a change of measure scans nothing again.


OFFICER_STATES = 4  # filter states whose counts per officer an engine keeps (a change of measure reuses them)


@dataclass(frozen=True)
class OfficerNames:
    """A dataset's officer ids by integer key, and each key's place in id order (kept once per dataset)."""

    ids: pa.Array  # string: ids[key] is the officer id of `_officer_key` key
    place: np.ndarray  # int64: place[key] is that officer's position among all officers sorted by id

    def names(self, keys: np.ndarray) -> np.ndarray:
        """Return the officer ids of these keys (an object array)."""
        return self.ids.take(pa.array(np.asarray(keys, dtype=np.int64))).to_numpy(zero_copy_only=False)

    def keys(self, officers: tuple[str, ...]) -> np.ndarray:
        """Return the keys of these officer ids (those the dataset has), in key order."""
        found = pc.is_in(self.ids, value_set=pa.array(list(officers), type=pa.string()))
        return np.flatnonzero(found.to_numpy(zero_copy_only=False))


@dataclass(frozen=True)
class OfficerCounts:
    """A filter state's reports and harm counts per officer, officers in id order.

    `frame` has `_officer_key`, `reports` and each harm field's `_yes` and `_answered` (int64), one row per officer
    with reports in view, sorted by officer id.
    """

    frame: pd.DataFrame


_NAMES_LOCK = threading.Lock()
_NAMES: weakref.WeakKeyDictionary[Engine, dict[str, OfficerNames]] = weakref.WeakKeyDictionary()


def officer_names(engine: Engine, ds: Dataset) -> OfficerNames:
    """Return the dataset's officer ids by key and the id order of the keys, computed once per dataset."""
    with _NAMES_LOCK:
        found = _NAMES.setdefault(engine, {}).get(ds.id)
    if found is not None:
        return found
    # Sorted by the engine (byte order of UTF-8 is the order of code points, as Python and pandas sort the ids).
    table = engine.backend.con.sql(
        f'SELECT _officer_key, officer_id FROM (SELECT _officer_key, any_value(officer_id)::VARCHAR AS officer_id '
        f'FROM "{ds.reports_table}" WHERE _officer_key IS NOT NULL GROUP BY _officer_key) ORDER BY officer_id'
    ).to_arrow_table().combine_chunks()
    keys = table["_officer_key"].to_numpy().astype(np.int64)
    size = int(keys.max()) + 1 if len(keys) else 0
    place = np.full(size, size, dtype=np.int64)
    place[keys] = np.arange(len(keys), dtype=np.int64)
    row = np.full(size, -1, dtype=np.int64)  # each key's row in the table; keys are dense, but not trusted to be
    row[keys] = np.arange(len(keys), dtype=np.int64)
    ids = table["officer_id"].chunk(0) if table.num_rows else pa.array([], type=pa.string())
    found = OfficerNames(ids.take(pa.array(row, mask=row < 0)), place)
    with _NAMES_LOCK:
        _NAMES.setdefault(engine, {})[ds.id] = found
    return found


def prepare_officers(engine: Engine, ds: Dataset) -> None:
    """Put the dataset's officers in id order once, as it opens, so no page's first render waits for it."""
    info = _page_columns(engine, ds)
    if info is not None and info.officer_max is not None and "officer_id" in engine.reports(ds).columns:
        officer_names(engine, ds)


def _source(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> str:
    """Return the SQL of a filter state's reports, compiled once per state (Ibis takes tens of ms to compile it)."""
    return kept(engine, ds, filters, scope, "source_sql",
                lambda: engine.backend.compile(filtered_reports(engine, ds, filters, scope)))


def _officer_info(engine: Engine, ds: Dataset, scope: Scope) -> _PageColumns | None:
    """Return the dataset's scan columns if officers can be counted by key here (never under a perturbed scope)."""
    info = _page_columns(engine, ds)
    if info is None or scope.perturbed or info.officer_max is None or info.incident_max is None:
        return None
    cols = set(engine.reports(ds).columns)
    return info if {"officer_id", "incident_id"} <= cols else None


def officer_counts(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> OfficerCounts | None:
    """Return the reports and harm counts per officer of a filter state, in officer id order; None: use Ibis."""
    if _officer_info(engine, ds, scope) is None:
        return None

    def compute() -> OfficerCounts:
        source = _source(engine, ds, filters, scope)
        con = engine.backend.con
        # Counts as BIGINT (count_if gives HUGEINT, which reaches numpy as Python objects) straight into numpy.
        counts = ", ".join(f'count(*) FILTER (WHERE "{c}") AS "{c}_yes", count("{c}") AS "{c}_answered"'
                           for c in schema.HARM_FIELDS)
        found = con.sql(f"SELECT _officer_key, count(*) AS reports, {counts} FROM ({source}) AS f "
                        "WHERE _officer_key IS NOT NULL GROUP BY _officer_key").fetchnumpy()
        frame = pd.DataFrame({c: np.asarray(v).astype(np.int64) for c, v in found.items()})
        place = officer_names(engine, ds).place
        frame = frame.iloc[np.argsort(place[frame["_officer_key"].to_numpy()], kind="stable")]
        return OfficerCounts(frame.reset_index(drop=True))

    # Not kept with a state's small results: at 5,000,000 reports one state's counts per officer take about 25 MB.
    memo, key = _memo(engine), (ds.id, filters, scope)
    with memo.lock:
        found = memo.officers.get(key)
        if found is not None:
            memo.officers.move_to_end(key)
            return found
    found = compute()
    with memo.lock:
        memo.officers[key] = found
        while len(memo.officers) > OFFICER_STATES:
            memo.officers.popitem(last=False)
    return found


def shared_incidents(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str) -> int | None:
    """Return how many incidents in view have answering reports from two or more officers; None: use Ibis."""
    if measure not in schema.HARM_FIELDS or _officer_info(engine, ds, scope) is None:
        return None

    def compute() -> int:
        source = _source(engine, ds, filters, scope)
        # Two or more officers answered at an incident exactly when its smallest and largest officer key differ.
        [(found,)] = engine.backend.con.sql(
            f"SELECT count_if(lo <> hi) FROM (SELECT min(_officer_key) AS lo, max(_officer_key) AS hi "
            f'FROM ({source}) AS f WHERE _officer_key IS NOT NULL AND incident_id IS NOT NULL AND "{measure}" IS NOT '
            "NULL GROUP BY _incident_key) AS i").fetchall()
        return int(found or 0)

    return kept(engine, ds, filters, scope, f"shared_incidents/{measure}", compute)


def _mix_sql(info: _PageColumns) -> str:
    """Return the mix indicators of lib/analysis/risk.py (MIX_INDICATORS) as averages over the reports."""
    ced = _mask_of(info, lambda tactic: tactic in schema.CED_LADDER)
    ground = _mask_of(info, lambda tactic: tactic == "Ground restraint")
    return ", ".join([
        "avg((shift::VARCHAR = 'Night')::INTEGER) AS night",
        "avg(single_crewed::INTEGER) AS single",
        "avg((resistance::VARCHAR IN ('Aggressive resistance', 'Serious or aggravated resistance'))::INTEGER) "
        "AS resisting",
        "avg((location_type::VARCHAR = 'Dwelling')::INTEGER) AS dwelling",
        f"avg(((_tactics & {ced}::UBIGINT) <> 0)::INTEGER) AS ced",
        f"avg(((_tactics & {ground}::UBIGINT) <> 0)::INTEGER) AS ground",
    ])


def _mask_of(info: _PageColumns, wanted: Callable[[str | None], bool]) -> int:
    """Return the mask of the tactic bits whose tactic is wanted."""
    return sum(1 << bit for bit, (tactic, _) in enumerate(info.tactic_bits or ()) if wanted(tactic))


MIX_COLUMNS = {"shift", "single_crewed", "resistance", "location_type"}


def _mix_info(engine: Engine, ds: Dataset, scope: Scope) -> _PageColumns | None:
    info = _officer_info(engine, ds, scope)
    if info is None or info.tactic_bits is None or not MIX_COLUMNS <= set(engine.reports(ds).columns):
        return None
    return info


def peer_mix(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame | None:
    """Return the mix of every role's reports in view (columns `role`, `peer_<indicator>`); None: use Ibis."""
    info = _mix_info(engine, ds, scope)
    if info is None or "officer_role" not in engine.reports(ds).columns:
        return None

    def compute() -> pd.DataFrame:
        source = _source(engine, ds, filters, scope)
        frame = engine.backend.con.sql(f"SELECT officer_role::VARCHAR AS role, {_mix_sql(info)} FROM ({source}) AS f "
                                       "GROUP BY ALL").to_arrow_table().to_pandas()
        return frame.rename(columns={c: f"peer_{c}" for c in frame.columns if c != "role"})

    return kept(engine, ds, filters, scope, "peer_mix", compute)


def officer_mix(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                keys: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Return the mix of the officers' reports (`_officer_key`, indicators) and their reports per role; None: Ibis."""
    info = _mix_info(engine, ds, scope)
    if info is None or "officer_role" not in engine.reports(ds).columns:
        return None
    source = _source(engine, ds, filters, scope)
    chosen = ", ".join(str(int(k)) for k in keys) or "NULL"  # integers made here, never text from a user
    mine = f"SELECT * FROM ({source}) AS f WHERE _officer_key IN ({chosen})"
    # One scan: each officer's mix, and each officer's reports per role.
    both = engine.backend.con.sql(
        f"SELECT GROUPING(role) AS by_officer, _officer_key, role, count(*) AS n, {_mix_sql(info)} FROM "
        f"(SELECT *, officer_role::VARCHAR AS role FROM ({mine}) AS m) AS r "
        "GROUP BY GROUPING SETS ((_officer_key), (_officer_key, role))").to_arrow_table()
    own = both.filter(pc.equal(both["by_officer"], 1)).drop_columns(["by_officer", "role", "n"]).to_pandas()
    roles = both.filter(pc.equal(both["by_officer"], 0)).select(["_officer_key", "role", "n"]).to_pandas()
    return own, roles


def same_incident_cells(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                        keys: np.ndarray) -> pd.DataFrame | None:
    """Return the officers' (incident, officer) cells at incidents where two or more officers answered; None: Ibis.

    Columns `incident` and `officer` (integer keys), `own` and `yes` (the officer's answering reports and yes
    answers there), `size` and `events` (all officers' there), as lib/analysis/risk.py's `_shared_cells` joins them.
    """
    if measure not in schema.HARM_FIELDS or _officer_info(engine, ds, scope) is None:
        return None
    source = _source(engine, ds, filters, scope)
    chosen = ", ".join(str(int(k)) for k in keys) or "NULL"  # integers made here, never text from a user
    sql = (f'WITH t AS (SELECT _incident_key AS incident, _officer_key AS officer, "{measure}" AS m FROM ({source}) '
           f'AS f WHERE _officer_key IS NOT NULL AND incident_id IS NOT NULL AND "{measure}" IS NOT NULL), '
           f"mine AS (SELECT DISTINCT incident FROM t WHERE officer IN ({chosen})), "
           "cells AS (SELECT incident, officer, count(*) AS own, count(*) FILTER (WHERE m) AS yes FROM t "
           "SEMI JOIN mine USING (incident) GROUP BY incident, officer), "
           "incidents AS (SELECT incident, sum(own)::BIGINT AS size, sum(yes)::BIGINT AS events FROM cells "
           "GROUP BY incident HAVING count(*) >= 2) "
           "SELECT incident, officer, own, yes, size, events FROM cells JOIN incidents USING (incident) "
           f"WHERE officer IN ({chosen})")
    found = engine.backend.con.sql(sql).fetchnumpy()
    return pd.DataFrame({c: np.asarray(v).astype(np.int64) for c, v in found.items()})
