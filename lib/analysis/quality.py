"""Data quality of a loaded dataset: completeness, off-vocabulary codes, contradictions, coverage.

Every check runs in the engine over `filtered_reports`, so the user's scope and filters apply, and
returns a small frame. Missing data is shown, never hidden: a field the dataset lacks altogether
counts as answered by no report.

What does not depend on the filters is not scanned for again: on DuckDB a category column's ENUM type,
and the list columns' items the engine noted as the dataset loaded, say whether a column holds any value
outside its vocabulary, and the reports' tactic masks say which used CED. Completeness and the
contradictions share one scan per filter state, and the late-recorded months read the coverage's counts.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import ibis
import numpy as np
import pandas as pd

from lib.engine import fastpath
from lib.engine.query import NOT_RECORDED, Filters, Scope, filtered_reports
from lib.engine.store import Dataset, Engine
from lib.model import schema

ID_COLUMNS: tuple[str, ...] = ("report_id", "incident_id", "officer_id")
QUALITY_FIELDS: tuple[str, ...] = tuple(c for c in schema.REPORT_COLUMNS if c not in ID_COLUMNS)

# HMICFRS-style completeness table: the fields an inspection asks about first.
COMPLETENESS_BY_FIELDS: tuple[str, ...] = (
    "subject_age_band", "subject_gender", "subject_ethnicity", "subject_physical_disability",
    "subject_mental_disability", "officer_injured", "officer_assaulted", "subject_injured",
    "location_type", "reasons",
)
# Fields asked only when another says yes: their completeness is over the reports they apply to.
# A level given where the parent says no is a contradiction (see RULES), not an answer.
CONDITIONAL_FIELDS: dict[str, str] = {
    "officer_injury_level": "officer_injured",
    "subject_injury_level": "subject_injured",
}
LEVELS: dict[str, tuple[str, ...]] = {"force": ("force",), "area": ("force", "area")}

# A month is "thin" when it holds fewer reports than this share of the typical (median) month.
THIN_SHARE = 0.5
TRAILING_MONTHS = 12


def _present(t: ibis.Table) -> set[str]:
    """Return the columns that hold data of a known type.

    A column that was all null on loading is stored with DuckDB's NULL type, which Ibis sees as
    unknown and cannot aggregate; it is answered by no report, like a column that is absent.
    """
    return {name for name, dtype in t.schema().items()
            if not (dtype.is_unknown() or dtype.is_null())}


def _answered(t: ibis.Table, col: str, present: set[str]) -> ibis.Expr:
    """Count the reports that answered a field: non-null, and for list fields non-empty.

    A conditional field (an injury level) counts only where its question applies.
    """
    if col not in present:
        return ibis.literal(0, type="int64")
    given = _is_given(t, col)
    parent = CONDITIONAL_FIELDS.get(col)
    if parent is not None:
        given = given & (t[parent].fill_null(False) if parent in present else ibis.literal(False))
    return given.sum().fill_null(0)


def _is_given(t: ibis.Table, col: str) -> ibis.Expr:
    """True where a report answered a field: non-null, and for list fields non-empty."""
    if schema.REPORT_COLUMNS.get(col) == "list":
        return (t[col].length() > 0).fill_null(False)
    return t[col].notnull()


def _applicable(t: ibis.Table, col: str, present: set[str]) -> ibis.Expr:
    """Count the reports a field's question applies to: all, or those whose parent says yes."""
    parent = CONDITIONAL_FIELDS.get(col)
    if parent is None:
        return t.count()
    if parent not in present:
        return ibis.literal(0, type="int64")
    return t[parent].fill_null(False).sum().fill_null(0)


def _check_fields(fields: tuple[str, ...]) -> None:
    unknown = [f for f in fields if f not in schema.REPORT_COLUMNS]
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")


# --- completeness -------------------------------------------------------------------------


def completeness(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return answered, total and share answered per report field, worst first.

    `total` is the number of reports the question applies to: every report, except for the
    injury levels, which apply where the officer (or subject) was injured (`applies_when`).
    """
    row = _report_checks(engine, ds, filters, scope)
    frame = pd.DataFrame({
        "field": list(QUALITY_FIELDS),
        "kind": [schema.REPORT_COLUMNS[f] for f in QUALITY_FIELDS],
        "applies_when": [CONDITIONAL_FIELDS.get(f) for f in QUALITY_FIELDS],
        "answered": [int(row[f"{f}__answered"]) for f in QUALITY_FIELDS],
        "total": [int(row[f"{f}__total"]) for f in QUALITY_FIELDS],
    })
    frame["share"] = frame["answered"] / frame["total"].where(frame["total"] > 0)
    frame["_order"] = range(len(frame))
    frame = frame.sort_values(["share", "_order"], kind="stable", na_position="last")
    return frame.drop(columns="_order").reset_index(drop=True)


def completeness_by(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                    level: str = "force",
                    fields: tuple[str, ...] = COMPLETENESS_BY_FIELDS) -> pd.DataFrame:
    """Return reports and the share recorded of each field per force (or force and area).

    One column per field holds the share (0 to 1) of the reports it applies to that answered it.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    _check_fields(fields)
    keys = LEVELS[level]
    t = filtered_reports(engine, ds, filters, scope)
    present = _present(t)
    t = t.mutate(**{k: t[k].cast("string") for k in keys})
    metrics = {}
    for f in fields:
        metrics[f"{f}__answered"] = _answered(t, f, present)
        metrics[f"{f}__total"] = _applicable(t, f, present)
    frame = engine.execute(t.group_by(list(keys)).aggregate(reports=t.count(), **metrics))
    for k in keys:
        frame[k] = frame[k].astype("object").where(frame[k].notna(), NOT_RECORDED)
    for f in fields:
        total = frame[f"{f}__total"].astype("float64")
        frame[f] = frame[f"{f}__answered"].astype("float64") / total.where(total > 0)
    frame = frame[[*keys, "reports", *fields]]
    return frame.sort_values(list(keys), key=lambda s: s.astype(str)).reset_index(drop=True)


# --- codes outside the vocabulary ---------------------------------------------------------


def invalid_codes(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return each value outside the canonical vocabulary, per field, with its report count."""
    t = filtered_reports(engine, ds, filters, scope)
    present = _present(t)
    # On DuckDB a category column's type, and for a list column what the engine found as the dataset loaded,
    # say whether it holds any value outside the vocabulary at all: only those that may are counted.
    lists = engine.list_items_outside(ds) or {}
    parts: list[ibis.Table] = []
    for col, vocab in {**schema.REPORT_VOCABULARIES, **schema.LIST_VOCABULARIES}.items():
        if col not in present or _all_in_vocabulary(engine, ds, "reports", col, vocab):
            continue
        if col in schema.LIST_VOCABULARIES and lists.get(col) == ():
            continue
        if col in schema.LIST_VOCABULARIES:
            values = t.select(report_id=t.report_id, value=t[col].unnest().cast("string"))
        else:
            values = t.select(report_id=t.report_id, value=t[col].cast("string"))
        parts.append(_off_vocabulary(values, col, vocab))
    if not _all_in_vocabulary(engine, ds, "tactics", "tactic", schema.TACTICS):
        tactics = engine.tactics(ds)
        chosen = tactics.filter(tactics.report_id.isin(t.report_id))
        values = chosen.select(report_id=chosen.report_id, value=chosen.tactic.cast("string"))
        parts.append(_off_vocabulary(values, "tactic", schema.TACTICS))
    if not parts:
        return pd.DataFrame({"field": pd.Series(dtype="str"), "value": pd.Series(dtype="str"),
                             "reports": pd.Series(dtype="int64")})
    frame = engine.execute(ibis.union(*parts))
    order = {c: i for i, c in enumerate([*schema.REPORT_VOCABULARIES, *schema.LIST_VOCABULARIES,
                                         "tactic"])}
    frame = frame.assign(_order=frame["field"].map(order))
    frame = frame.sort_values(["_order", "reports", "value"], ascending=[True, False, True])
    return frame.drop(columns="_order").reset_index(drop=True)


def _all_in_vocabulary(engine: Engine, ds: Dataset, table: str, column: str, vocab: tuple[str, ...]) -> bool:
    """Say whether a column's type shows that every value it holds is in the vocabulary (False: unknown)."""
    values = fastpath.enum_values(engine, ds, table, column)
    return values is not None and set(values) <= set(vocab)


def _off_vocabulary(values: ibis.Table, field: str, vocab: tuple[str, ...]) -> ibis.Table:
    odd = values.filter(values.value.notnull(), ~values.value.isin(list(vocab)))
    counts = odd.group_by("value").aggregate(reports=odd.report_id.nunique())
    return counts.select(field=ibis.literal(field), value=counts.value, reports=counts.reports)


# --- contradictions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A consistency rule: the reports it selects contradict themselves."""

    name: str
    explanation: str
    columns: tuple[str, ...]
    # (reports, tactics: the table or the CED bits of the reports' tactic masks) -> boolean expression
    selects: Callable[[ibis.Table, ibis.Table | int], ibis.Expr]


def _ced_ids(tactics: ibis.Table) -> ibis.Expr:
    return tactics.filter(tactics.tactic.cast("string").isin(list(schema.CED_LADDER))).report_id


def _used_ced(reports: ibis.Table, tactics: ibis.Table | int) -> ibis.Expr:
    """True where a report records a CED use: from its tactic mask when given the mask's CED bits (an int)."""
    if isinstance(tactics, int):
        return (reports._tactics & ibis.literal(tactics, type="uint64")) != 0
    return reports.report_id.isin(_ced_ids(tactics))


def _rule_tactics(engine: Engine, ds: Dataset) -> ibis.Table | int:
    """Return what the rules read of the tactics: the CED bits of the reports' tactic masks on DuckDB, else the table.

    A semi-join of the reports with millions of tactic rows cost more than the rest of the checks together.
    """
    info = fastpath._page_columns(engine, ds)
    if info is None or info.tactic_bits is None:
        return engine.tactics(ds)
    return sum(1 << bit for bit, (tactic, _) in enumerate(info.tactic_bits) if tactic in schema.CED_RANK)


def _is_false(flag: ibis.Expr) -> ibis.Expr:
    """True where a yes/no field says no; unknown (null) is not no."""
    return (~flag).fill_null(False)


def _has(values: ibis.Expr, item: str) -> ibis.Expr:
    return values.contains(item).fill_null(False)


RULES: tuple[Rule, ...] = (
    Rule("officer_level_not_injured",
         "Officer recorded as not injured, yet an officer injury level is given "
         "(the Home Office notes such records in its Table 10).",
         ("officer_injured", "officer_injury_level"),
         lambda r, _: _is_false(r.officer_injured) & r.officer_injury_level.notnull()),
    Rule("officer_level_injury_unknown",
         "Officer injury not answered, yet an officer injury level is given.",
         ("officer_injured", "officer_injury_level"),
         lambda r, _: r.officer_injured.isnull() & r.officer_injury_level.notnull()),
    Rule("subject_level_not_injured",
         "Subject recorded as not injured, yet a subject injury level is given.",
         ("subject_injured", "subject_injury_level"),
         lambda r, _: _is_false(r.subject_injured) & r.subject_injury_level.notnull()),
    Rule("subject_level_injury_unknown",
         "Subject injury not answered, yet a subject injury level is given.",
         ("subject_injured", "subject_injury_level"),
         lambda r, _: r.subject_injured.isnull() & r.subject_injury_level.notnull()),
    Rule("death_fatality_disagree",
         "Subject injury level 'Death' and the outcome 'Fatality' do not agree.",
         ("subject_injury_level", "outcomes"),
         lambda r, _: (r.subject_injury_level.cast("string") == "Death").fill_null(False)
         != _has(r.outcomes, "Fatality")),
    Rule("ced_used_not_trained",
         "A CED (Taser) use is recorded by an officer recorded as not CED trained.",
         ("ced_trained",),
         lambda r, tac: _is_false(r.ced_trained) & _used_ced(r, tac)),
)
RULE_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}


def contradictions(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return each consistency rule with how many reports break it (null if it cannot be checked).

    A rule cannot be checked when the selected reports record none of a field it reads.
    """
    present = _present(filtered_reports(engine, ds, filters, scope))
    typed = [rule for rule in RULES if set(rule.columns) <= present]
    row = _report_checks(engine, ds, filters, scope)
    checkable = {rule.name for rule in typed if all(row[f"{c}__given"] > 0 for c in rule.columns)}
    total = int(row["_total"])
    counts = [int(row[rule.name]) if rule.name in checkable else pd.NA for rule in RULES]
    frame = pd.DataFrame({
        "rule": [rule.name for rule in RULES],
        "explanation": [rule.explanation for rule in RULES],
        "reports": pd.array(counts, dtype="Int64"),
        "total": total,
    })
    frame["share"] = (frame["reports"].astype("Float64") / total) if total else np.nan
    return frame


def _report_checks(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.Series:
    """Return completeness's and the contradictions' counts of a filter state from one scan (kept for the state)."""
    def compute() -> pd.Series:
        t = filtered_reports(engine, ds, filters, scope)
        present = _present(t)
        metrics = {}
        for f in QUALITY_FIELDS:
            metrics[f"{f}__answered"] = _answered(t, f, present)
            metrics[f"{f}__total"] = _applicable(t, f, present)
        tactics = _rule_tactics(engine, ds)
        typed = [rule for rule in RULES if set(rule.columns) <= present]
        needed = sorted({c for rule in typed for c in rule.columns})
        metrics |= {f"{c}__given": _is_given(t, c).sum().fill_null(0) for c in needed}
        metrics |= {rule.name: rule.selects(t, tactics).sum().fill_null(0) for rule in typed}
        return engine.execute(t.aggregate(_total=t.count(), **metrics)).iloc[0]

    return fastpath.kept(engine, ds, filters, scope, "quality.report_checks", compute)


def contradiction_rows(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                       rule: str) -> ibis.Table:
    """Return the reports (as an engine expression, oldest first) that break one rule."""
    if rule not in RULE_BY_NAME:
        raise ValueError(f"unknown rule {rule!r}; rules are {', '.join(RULE_BY_NAME)}")
    chosen = RULE_BY_NAME[rule]
    t = filtered_reports(engine, ds, filters, scope)
    missing = set(chosen.columns) - _present(t)
    if missing:
        raise ValueError(f"rule {rule!r} cannot be checked: this dataset records no "
                         f"{', '.join(sorted(missing))}")
    return t.filter(chosen.selects(t, _rule_tactics(engine, ds))).order_by(["occurred_at", "report_id"])


# --- coverage in time ---------------------------------------------------------------------


def _span(ds: Dataset, filters: Filters) -> tuple[date, date] | None:
    if ds.first is None or ds.last is None:
        return None
    start, end = ds.first.date(), ds.last.date()
    if filters.date_from:
        start = max(start, filters.date_from)
    if filters.date_to:
        end = min(end, filters.date_to)
    return (start, end) if start <= end else None


def coverage(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
             thin_share: float = THIN_SHARE) -> pd.DataFrame:
    """Return reports per month over the dataset's date span, flagging gaps and thin months.

    Columns: `month` (first day), `reports`, `first` and `last` (earliest and latest report in
    the month; their min and max are the first and last dates of the data), `share_of_median`
    (reports over the median of the months that have any), `gap` (no report at all) and `thin`
    (some reports, but fewer than `thin_share` of the median: possibly late-recorded or lost).
    The span is the whole dataset's, cut to the filter's dates, so a scope that has no reports
    in a month the dataset covers shows that month as a gap.
    """
    span = _span(ds, filters)
    columns = ["month", "reports", "first", "last", "share_of_median", "gap", "thin"]
    if span is None:
        return pd.DataFrame(columns=columns)
    def compute() -> pd.DataFrame:
        t = filtered_reports(engine, ds, filters, scope)
        t = t.filter(t.occurred_at.notnull()).mutate(month=t.occurred_at.truncate("M").cast("date"))
        return engine.execute(t.group_by("month").aggregate(
            reports=t.count(), first=t.occurred_at.min(), last=t.occurred_at.max()))

    # Kept for the filter state: late_recorded reads the same counts.
    counts = fastpath.kept(engine, ds, filters, scope, "quality.coverage", compute).copy()
    months = pd.period_range(span[0], span[1], freq="M").to_timestamp()
    counts["month"] = pd.to_datetime(counts["month"])
    frame = pd.DataFrame({"month": months}).merge(counts, on="month", how="left")
    frame["reports"] = frame["reports"].fillna(0).astype("int64")
    frame["month"] = frame["month"].dt.date
    busy = frame.loc[frame["reports"] > 0, "reports"]
    median = float(busy.median()) if len(busy) else np.nan
    frame["share_of_median"] = frame["reports"] / median if median else np.nan
    frame["gap"] = frame["reports"] == 0
    frame["thin"] = ~frame["gap"] & (frame["share_of_median"] < thin_share)
    return frame[columns]


def late_recorded(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                  thin_share: float = THIN_SHARE, window: int = TRAILING_MONTHS) -> pd.DataFrame:
    """Return the trailing months that look incomplete because forms were still coming in.

    The canonical data has no recorded-at (or submitted-at) column, so lateness cannot be seen
    per report. Instead, a "late-recorded month" is one of the run of months at the very end of
    the span whose report count is below `thin_share` (default 50%) of the median count of the
    last `window` (default 12) months. An extract taken before every form is in typically ends
    in such a run; counts and rates for those months will rise as forms arrive. The run stops
    at the first month, walking back from the latest, that is not below the threshold, so a
    thin month earlier in the series is not flagged here (`coverage` shows it). Columns: those
    of `coverage`, with `share_of_median` measured against the trailing median instead.
    """
    frame = coverage(engine, ds, filters, scope, thin_share)
    if frame.empty:
        return frame
    trailing_median = float(frame["reports"].tail(window).median())
    frame["share_of_median"] = (frame["reports"] / trailing_median if trailing_median
                                else np.nan)
    below = (frame["share_of_median"] < thin_share).to_numpy()
    run = 0
    while run < len(below) and below[len(below) - 1 - run]:
        run += 1
    return frame.iloc[len(frame) - run:].reset_index(drop=True)


def rule_columns(rule: str) -> tuple[str, ...]:
    """Return the report fields a contradiction rule reads, to show beside its reports."""
    return RULE_BY_NAME[rule].columns
