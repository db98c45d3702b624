"""Filters compile to one engine expression; measures and breakdowns come back as small frames.

Every query starts from `scoped_reports`, which applies the user's data scope (the forces and
areas they may see) before anything else, so no page can forget it.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta

import ibis
import numpy as np
import pandas as pd
import pyarrow.compute as pc

from lib.analysis.stats import wilson_interval
from lib.engine import store
from lib.engine.store import Dataset, Engine
from lib.model import schema
from lib.model.scope import UNRESTRICTED, Scope  # noqa: F401  (re-exported: pages and tests import them from here)

NOT_RECORDED = "Not recorded"




@dataclass(frozen=True)
class FilterKind:
    """One kind of categorical filter: where its values live and how a sentence names them."""

    field: str
    column: str
    label: str
    phrase: str
    table: str = "reports"


FILTER_KINDS: tuple[FilterKind, ...] = (
    FilterKind("forces", "force", "Force", "{}"),
    FilterKind("areas", "area", "Area", "{}"),
    FilterKind("roles", "officer_role", "Officer role", "{} officers"),
    FilterKind("shifts", "shift", "Shift", "{} shift"),
    FilterKind("tactic_groups", "tactic_group", "Tactic group", "{} used", table="tactics"),
    FilterKind("tactics", "tactic", "Tactic", "{} used", table="tactics"),
    FilterKind("location_types", "location_type", "Location", "at {}"),
    FilterKind("age_bands", "subject_age_band", "Subject age", "subject aged {}"),
    FilterKind("genders", "subject_gender", "Subject gender", "{} subject"),
    FilterKind("ethnicities", "subject_ethnicity", "Subject ethnicity", "{} subject"),
)
KIND_BY_FIELD: dict[str, FilterKind] = {k.field: k for k in FILTER_KINDS}


@dataclass(frozen=True)
class Filters:
    """The global filter state: a date range (inclusive) and a set of values per filter kind."""

    date_from: date | None = None
    date_to: date | None = None
    forces: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    shifts: tuple[str, ...] = ()
    tactic_groups: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    location_types: tuple[str, ...] = ()
    age_bands: tuple[str, ...] = ()
    genders: tuple[str, ...] = ()
    ethnicities: tuple[str, ...] = ()

    def values(self, kind: FilterKind) -> tuple[str, ...]:
        """Return the selected values of one filter kind."""
        return getattr(self, kind.field)

    def with_values(self, kind_field: str, values: tuple[str, ...]) -> Filters:
        """Return a copy with one filter kind set to the given values."""
        return replace(self, **{kind_field: tuple(values)})


def _join_words(values: tuple[str, ...]) -> str:
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + " or " + values[-1]


def _format_day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def describe(filters: Filters) -> str:
    """Say in one human sentence which reports a filter state selects."""
    parts: list[str] = []
    if filters.date_from and filters.date_to:
        parts.append(f"{_format_day(filters.date_from)} to {_format_day(filters.date_to)}")
    elif filters.date_from:
        parts.append(f"from {_format_day(filters.date_from)}")
    elif filters.date_to:
        parts.append(f"up to {_format_day(filters.date_to)}")
    for kind in FILTER_KINDS:
        values = filters.values(kind)
        if values:
            parts.append(kind.phrase.format(_join_words(tuple(values))))
    if not parts:
        return "All reports"
    sentence = ", ".join(parts)
    return sentence[0].upper() + sentence[1:]


# --- compiling filters --------------------------------------------------------------------


def _start_of(d: date) -> datetime:
    return datetime.combine(d, time.min)


def scoped_reports(engine: Engine, ds: Dataset, scope: Scope) -> ibis.Table:
    """Return the reports a scope may see: every query starts here."""
    r = engine.reports(ds)
    preds = []
    for allowed, column in ((scope.forces, "force"), (scope.areas, "area"), (scope.teams, "team")):
        if allowed is None:
            continue
        # A dataset without the column cannot show that a row is in scope, so it shows none.
        if allowed and column in r.columns:
            preds.append(r[column].cast("string").isin(sorted(allowed)))
        else:
            preds.append(ibis.literal(False))
    return r.filter(*preds) if preds else r


def filtered_reports(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> ibis.Table:
    """Compile a filter state into one expression over the reports the scope may see."""
    r = scoped_reports(engine, ds, scope)
    preds = []
    if filters.date_from:
        preds.append(r.occurred_at >= _start_of(filters.date_from))
    if filters.date_to:
        preds.append(r.occurred_at < _start_of(filters.date_to + timedelta(days=1)))
    tactics = None
    for kind in FILTER_KINDS:
        values = list(filters.values(kind))
        if not values:
            continue
        if kind.table == "reports":
            preds.append(r[kind.column].isin(values))
        else:
            tactics = engine.tactics(ds) if tactics is None else tactics
            chosen = tactics.filter(tactics[kind.column].isin(values)).report_id
            preds.append(r.report_id.isin(chosen))
    return r.filter(*preds) if preds else r


# --- measures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A yes/no measure: yes count over the reports that answered, and how many did not.

    A count is None when disclosure control hides it; the rate and interval are then NaN.
    """

    label: str
    numerator: int | None
    denominator: int | None
    unanswered: int | None

    @property
    def hidden(self) -> bool:
        return self.numerator is None or self.denominator is None

    @property
    def rate(self) -> float:
        if self.hidden:
            return float("nan")
        return self.numerator / self.denominator if self.denominator else float("nan")

    @property
    def unanswered_share(self) -> float:
        if self.denominator is None or self.unanswered is None:
            return float("nan")
        total = self.denominator + self.unanswered
        return self.unanswered / total if total else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        if self.hidden:
            return float("nan"), float("nan")
        low, high = wilson_interval(self.numerator, self.denominator)
        return float(low), float(high)


@dataclass(frozen=True)
class Summary:
    """Headline measures for one filter state (a count is None when disclosure control hides it)."""

    reports: int | None
    incidents: int | None
    officers: int | None
    rates: dict[str, Rate] = field(default_factory=dict)


def _harm_metrics(t: ibis.Table) -> dict[str, ibis.Expr]:
    metrics: dict[str, ibis.Expr] = {}
    for col in schema.HARM_FIELDS:
        metrics[f"{col}_yes"] = t[col].sum().fill_null(0)
        metrics[f"{col}_answered"] = t[col].count()
    return metrics


def summarise(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> Summary:
    """Return reports, incidents, officers and the harm rates for a filter state."""
    row = _page_totals(engine, ds, filters, scope)
    if row is None:
        t = filtered_reports(engine, ds, filters, scope)
        expr = t.aggregate(
            reports=t.count(),
            incidents=t.incident_id.fill_null(t.report_id).nunique(),
            officers=t.officer_id.nunique(),
            **_harm_metrics(t),
        )
        row = engine.execute(expr).iloc[0]
    reports = int(row["reports"])
    rates = {}
    for col, label in schema.HARM_FIELDS.items():
        answered = int(row[f"{col}_answered"])
        rates[col] = Rate(label, int(row[f"{col}_yes"]), answered, reports - answered)
    return Summary(reports, int(row["incidents"]), int(row["officers"]), rates)


# --- breakdowns ---------------------------------------------------------------------------

# A dimension is a canonical column or a derived expression over the reports.
DIMENSIONS: dict[str, Callable[[ibis.Table], ibis.Expr]] = {
    "month": lambda t: t.occurred_at.truncate("M").cast("date"),
    "force": lambda t: t.force.cast("string"),
    "area": lambda t: t.area.cast("string"),
    "team": lambda t: t.team.cast("string"),
    "officer_role": lambda t: t.officer_role.cast("string"),
    "shift": lambda t: t.shift.cast("string"),
    "location_type": lambda t: t.location_type.cast("string"),
    "subject_age_band": lambda t: t.subject_age_band.cast("string"),
    "subject_gender": lambda t: t.subject_gender.cast("string"),
    "subject_ethnicity": lambda t: t.subject_ethnicity.cast("string"),
    "hour": lambda t: t.occurred_at.hour(),
    "weekday": lambda t: t.occurred_at.day_of_week.full_name(),
    # Unknown crewing stays unknown (ifelse would put it with "Double crewed").
    "single_crewed": lambda t: ibis.cases((t.single_crewed, "Single crewed"), (~t.single_crewed, "Double crewed")),
}
DIMENSION_LABELS: dict[str, str] = {
    "month": "Month", "force": "Force", "area": "Area", "team": "Team",
    "officer_role": "Officer role", "shift": "Shift", "location_type": "Location",
    "subject_age_band": "Subject age", "subject_gender": "Subject gender",
    "subject_ethnicity": "Subject ethnicity", "hour": "Hour of day", "weekday": "Day of week",
    "single_crewed": "Crewing", "tactic_group": "Type of force used",
}
# Vocabulary order for sorting breakdowns, so Early/Late/Night read in time order.
DIMENSION_ORDER: dict[str, tuple[str, ...]] = {
    "officer_role": schema.OFFICER_ROLES, "shift": schema.SHIFTS,
    "location_type": schema.LOCATION_TYPES, "subject_age_band": schema.AGE_BANDS,
    "subject_gender": schema.GENDERS, "subject_ethnicity": schema.ETHNICITIES,
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "single_crewed": ("Double crewed", "Single crewed"),
}


def add_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Add rate and 95% Wilson interval columns for every harm field counted in a frame."""
    yes = frame[[f"{c}_yes" for c in schema.HARM_FIELDS]].to_numpy(dtype="float64")
    answered = frame[[f"{c}_answered" for c in schema.HARM_FIELDS]].to_numpy(dtype="float64")
    rates = pd.DataFrame(_rate_columns(yes, answered), index=frame.index)
    return pd.concat([frame, rates], axis=1)


def _rate_columns(yes: np.ndarray, answered: np.ndarray) -> dict[str, np.ndarray]:
    """Return the rate, low and high columns of each harm field from (groups x fields) counts."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(answered > 0, yes / answered, np.nan)
    low, high = wilson_interval(yes, answered)
    columns = {}
    for i, col in enumerate(schema.HARM_FIELDS):
        columns[f"{col}_rate"], columns[f"{col}_low"], columns[f"{col}_high"] = rate[:, i], low[:, i], high[:, i]
    return columns


def breakdown(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
              by: tuple[str, ...]) -> pd.DataFrame:
    """Return reports and harm counts and rates per group of the given dimensions."""
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s): {', '.join(unknown)}")
    found = _page_breakdown(engine, ds, filters, scope, by)
    if found is None:
        t = filtered_reports(engine, ds, filters, scope)
        t = t.mutate(**{d: DIMENSIONS[d](t) for d in by})
        frame = engine.execute(t.group_by(list(by)).aggregate(reports=t.count(), **_harm_metrics(t)))
        found = {d: frame[d] for d in by}, frame[_COUNTS].to_numpy(dtype="int64")
    return _finish(by, *found)


def _finish(by: tuple[str, ...], keys: dict[str, pd.Series], counts: np.ndarray) -> pd.DataFrame:
    """Return a breakdown frame: the groups in display order, their counts, rates and intervals.

    Built from arrays in one go: a breakdown is asked for many times a page, and pandas costs a
    little per column operation.
    """
    values: dict[str, pd.Series] = {}
    for d in by:
        values[d] = keys[d].reset_index(drop=True)
        if d not in ("month", "hour"):
            filled = values[d].to_numpy(dtype=object, na_value=None, copy=True)
            filled[pd.isna(filled)] = NOT_RECORDED
            values[d] = pd.Series(filled, dtype=object)
    order = np.lexsort([_sort_key(d, values[d]) for d in reversed(by)]) if by else np.arange(len(counts))
    columns: dict[str, object] = {d: values[d].iloc[order].reset_index(drop=True) for d in by}
    counts = counts[order]
    for i, c in enumerate(_COUNTS):
        columns[c] = counts[:, i]
    yes, answered = counts[:, 1::2].astype("float64"), counts[:, 2::2].astype("float64")
    columns.update(_rate_columns(yes, answered))
    return pd.DataFrame(columns)


def _sort_key(dimension: str, values: pd.Series) -> np.ndarray:
    """Return integer sort keys: vocabulary order, else time or number order, else text; unknown last."""
    order = DIMENSION_ORDER.get(dimension)
    if order is not None:
        rank = {v: i for i, v in enumerate(order)}
        return np.fromiter((rank.get(v, len(rank)) for v in values.to_numpy(dtype=object)), dtype=np.int64,
                           count=len(values))
    if dimension in ("month", "hour"):
        codes, _ = pd.factorize(values, sort=True)  # missing values get -1: put them last
        return np.where(codes < 0, len(values), codes)
    return np.unique(values.astype(str).to_numpy(), return_inverse=True)[1].reshape(-1)


def tactic_counts(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return how many reports used each tactic (CED counted once, at its highest use)."""
    found = _page_tactics(engine, ds, filters, scope)
    if found is None:
        reports = filtered_reports(engine, ds, filters, scope)
        tactics = engine.tactics(ds)
        chosen = tactics.filter(tactics.report_id.isin(reports.report_id))
        expr = chosen.group_by(
            tactic=chosen.tactic.cast("string"), tactic_group=chosen.tactic_group.cast("string")
        ).aggregate(reports=chosen.report_id.nunique())
        found = engine.execute(expr), engine.execute(reports.count())
    frame, total = found
    frame["share"] = frame["reports"] / total if total else np.nan
    frame["tactic_group"] = frame["tactic_group"].fillna("Unclassified")
    return frame.sort_values(["reports", "tactic"], ascending=[False, True]).reset_index(drop=True)


# --- one scan per filter state (embedded DuckDB) ----------------------------------------------
#
# A page asks for the summary of a filter state, the previous period's summary and several
# breakdowns and tactic counts; one query each scanned the same rows about ten times. On the
# embedded engine the reports table carries derived columns (store.DERIVED_COLUMNS), and two
# scans answer them all: the totals of this period and the previous one (split at the start of
# this one), and a GROUPING SETS query at the finest grain the breakdowns need (month and
# week-hour; role, shift and area; tactic mask), which pandas adds up exactly. The small results
# are kept per engine and filter state, so the rest of the page reads them. Other backends, and
# other dimensions, run the Ibis queries above; tests check that both give the same frames.

PAGE_WHEN = ("month", "weekday", "hour")
PAGE_WHO = ("officer_role", "shift", "area")
PAGE_STATES = 256  # filter states whose results an engine keeps (each a few small frames)
_PARTS = ("when", "who", "tactics")
_COUNTS = ["reports", *(f"{c}_{k}" for c in schema.HARM_FIELDS for k in ("yes", "answered"))]
_WEEKDAYS = np.array(DIMENSION_ORDER["weekday"], dtype=object)


@dataclass(frozen=True)
class _PageColumns:
    """What a dataset's reports table offers the one-scan queries."""

    officer_max: int | None
    incident_max: int | None
    tactic_bits: tuple[tuple[str | None, str | None], ...] | None
    who: tuple[str, ...]

    def keys(self, part: str) -> list[str] | None:
        """Return the grouping columns of a part, or None if this dataset cannot give it."""
        if part == "when":
            return ["_month", "_weekhour"]
        if part == "who":
            return list(self.who) or None
        return ["_tactics"] if self.tactic_bits is not None else None


@dataclass
class _PageState:
    """The results kept for one (dataset, filters, scope)."""

    totals: dict[str, int] | None = None
    span: tuple[str, str | None] | None = None  # compiled SQL over this and the previous period, and the split
    parts: dict[str, pd.DataFrame] = field(default_factory=dict)
    frames: dict[tuple[str, ...], pd.DataFrame] = field(default_factory=dict)


class _PageMemo:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: OrderedDict[tuple, _PageState] = OrderedDict()
        self.columns: dict[str, _PageColumns | None] = {}


_MEMOS: weakref.WeakKeyDictionary[Engine, _PageMemo] = weakref.WeakKeyDictionary()
_MEMOS_LOCK = threading.Lock()


def forget_page_results(engine: Engine) -> None:
    """Drop the results an engine keeps per filter state (a benchmark times a fresh filter change)."""
    with _MEMOS_LOCK:
        memo = _MEMOS.get(engine)
    if memo is not None:
        with memo.lock:
            memo.states.clear()


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
                                tuple(c for c in PAGE_WHO if c in cols))
    with memo.lock:
        memo.columns[ds.id] = info
    return info


def _counts_sql() -> str:
    return ", ".join(f'coalesce(count_if("{c}"), 0) AS "{c}_yes", count("{c}") AS "{c}_answered"'
                     for c in schema.HARM_FIELDS)


def _distinct_sql(column: str, top: int | None) -> str:
    # Dense integer keys: a bitmap counts distinct values exactly, far faster than hashing strings.
    if top is None:
        return "0"
    return f"coalesce(bit_count(bitstring_agg({column}, 0, {int(top)})), 0)"


def _timestamp_sql(moment: datetime) -> str:
    # A literal rather than a bound value, so the scan can skip row groups by date; it is built
    # from a datetime, never from text.
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def _page_totals(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.Series | None:
    """Return the summary counts of a filter state from the one scan (with its previous period's)."""
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
               f"{_counts_sql()}, {_distinct_sql('_incident_key', info.incident_max)} AS incidents, "
               f"{_distinct_sql('_officer_key', info.officer_max)} AS officers FROM ({inner}) AS f GROUP BY ALL")
        names = [*_COUNTS, "incidents", "officers"]
        found = {bool(r[0]): dict(zip(names, (int(v) for v in r[1:]), strict=True))
                 for r in engine.backend.con.sql(sql).fetchall()}
        empty = dict.fromkeys(names, 0)
        state.span = inner, split
        state.totals = found.get(True, empty)
        if previous is not None and split is not None:
            _state(engine, ds, previous, scope).totals = found.get(False, empty)
    return pd.Series(state.totals)


def _page_part(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, part: str) -> pd.DataFrame | None:
    """Return one finest-grain count table of a filter state: "when", "who" or "tactics"."""
    info = _page_columns(engine, ds)
    if info is None or info.keys(part) is None:
        return None
    state = _state(engine, ds, filters, scope)
    if part not in state.parts:
        # A page that asked for the summary goes on to ask for breakdowns: count them all in one scan.
        wanted = [part] if state.span is None else [
            p for p in _PARTS if p not in state.parts and info.keys(p) is not None]
        if state.span is None:
            source = engine.backend.compile(filtered_reports(engine, ds, filters, scope))
            where = ""
        else:
            source, split = state.span
            where = f" WHERE occurred_at >= {split}" if split else ""
        sets = ", ".join("(" + ", ".join(info.keys(p)) + ")" for p in wanted)
        columns = [c for p in wanted for c in info.keys(p)]
        flags = ", ".join(f"GROUPING({info.keys(p)[0]}) AS g_{p}" for p in wanted)
        selects = ", ".join(f"CAST({c} AS VARCHAR) AS {c}" if c in PAGE_WHO else c for c in columns)
        sql = (f"SELECT {flags}, {selects}, count(*) AS reports, {_counts_sql()} "
               f"FROM ({source}) AS f{where} GROUP BY GROUPING SETS ({sets})")
        # Through Arrow, part by part: a 64-bit mask must not pass through a float column with nulls.
        table = engine.backend.con.sql(sql).to_arrow_table()
        for p in wanted:
            rows = table.filter(pc.equal(table[f"g_{p}"], 0)).select([*info.keys(p), *_COUNTS])
            frame = rows.to_pandas(date_as_object=False)
            state.parts[p] = _when_dimensions(frame) if p == "when" else frame
    return state.parts[part]


def _page_breakdown(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                    by: tuple[str, ...]) -> tuple[dict[str, pd.Series], np.ndarray] | None:
    """Return the groups and counts of a breakdown added up from the one scan, or None if it cannot."""
    if not by or not (set(by) <= set(PAGE_WHEN) or set(by) <= set(PAGE_WHO)):
        return None
    part = "when" if set(by) <= set(PAGE_WHEN) else "who"
    fine = _page_part(engine, ds, filters, scope, part)
    if fine is None or (part == "who" and not set(by) <= set(fine.columns)):
        return None
    # Each group's counts are the sum of its finest-grain rows: number the groups, then add up.
    group = np.zeros(len(fine), dtype=np.int64)
    uniques = []
    for d in by:
        codes, values = pd.factorize(fine[d], use_na_sentinel=False)
        group = group * max(len(values), 1) + codes
        uniques.append(values)
    groups, first, inverse = np.unique(group, return_index=True, return_inverse=True)
    counts = np.zeros((len(groups), len(_COUNTS)), dtype=np.int64)
    np.add.at(counts, inverse.reshape(-1), fine[_COUNTS].to_numpy(dtype=np.int64))
    keys = {d: fine[d].iloc[first].reset_index(drop=True) for d in by}
    return keys, counts


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
    rows = []
    for bit, (tactic, group) in enumerate(info.tactic_bits):
        used = int(count[(mask >> np.uint64(bit)) & np.uint64(1) == 1].sum())
        if used:
            rows.append((tactic, group, used))
    frame = pd.DataFrame(rows, columns=["tactic", "tactic_group", "reports"])
    frame = frame.astype({"tactic": "str", "tactic_group": "str", "reports": "int64"})
    return frame, int(count.sum())


def filter_options(engine: Engine, ds: Dataset, scope: Scope) -> dict[str, list[str]]:
    """Return the values present in the scoped data for each filter kind, in vocabulary order."""
    reports = scoped_reports(engine, ds, scope)
    tactics = engine.tactics(ds)
    tactics = tactics.filter(tactics.report_id.isin(reports.report_id))
    # One query for every filter: each query's compilation costs more than its scan of a small dataset.
    parts = []
    for kind in FILTER_KINDS:
        table = reports if kind.table == "reports" else tactics
        col = table[kind.column]
        parts.append(table.filter(col.notnull()).select(k=ibis.literal(kind.field), v=col.cast("string")).distinct())
    values = engine.execute(ibis.union(*parts))
    found_by_field = values.groupby("k")["v"].agg(set).to_dict()
    options: dict[str, list[str]] = {}
    for kind in FILTER_KINDS:
        found = found_by_field.get(kind.field, set())
        order = DIMENSION_ORDER.get(kind.column) or {
            "tactic": schema.TACTICS, "tactic_group": tuple(schema.TACTIC_GROUPS)
        }.get(kind.column, ())
        options[kind.field] = [v for v in order if v in found] + sorted(found - set(order))
    return options


# --- periods ------------------------------------------------------------------------------


def default_filters(ds: Dataset, months: int = 12) -> Filters:
    """Return the opening view: the latest twelve months of the dataset, nothing else filtered."""
    if ds.last is None:
        return Filters()
    end = ds.last.date()
    index = end.year * 12 + end.month - months  # the month after `end`, `months` months back
    start = date(index // 12, index % 12 + 1, 1)
    if end.day != _month_end(end).day:  # a part month at the end: take whole days instead
        start = end - timedelta(days=365 * months // 12 - 1)
    if ds.first is not None:
        start = max(start, ds.first.date())
    return Filters(date_from=start, date_to=end)


def _month_end(d: date) -> date:
    following = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return following - timedelta(days=1)


def previous_period(filters: Filters, ds: Dataset) -> Filters | None:
    """Return the same filters over the period of equal length just before; None if unbounded."""
    start = filters.date_from or (ds.first.date() if ds.first else None)
    end = filters.date_to or (ds.last.date() if ds.last else None)
    if start is None or end is None or end < start:
        return None
    if start.day == 1 and (end + timedelta(days=1)).day == 1:
        # Whole calendar months compare with the same number of months before, so a
        # financial year compares with the previous financial year whatever the leap days.
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        index = start.year * 12 + start.month - 1 - months
        prev_start = date(index // 12, index % 12 + 1, 1)
        return replace(filters, date_from=prev_start, date_to=start - timedelta(days=1))
    length = (end - start).days + 1
    return replace(filters, date_from=start - timedelta(days=length),
                   date_to=start - timedelta(days=1))


def filters_from_mapping(data: dict[str, object]) -> Filters:
    """Build Filters from a plain mapping (URL parameters, JSON); unknown keys are ignored."""
    kwargs: dict[str, object] = {}
    for f in fields(Filters):
        if f.name not in data or data[f.name] in (None, "", []):
            continue
        value = data[f.name]
        if f.name in ("date_from", "date_to"):
            kwargs[f.name] = value if isinstance(value, date) else date.fromisoformat(str(value))
        else:
            items = [value] if isinstance(value, str) else list(value)  # type: ignore[arg-type]
            kwargs[f.name] = tuple(str(v) for v in items)
    return Filters(**kwargs)
