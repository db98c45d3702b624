"""Measures and breakdowns of a view, as small frames: headline rates, breakdowns by dimension, tactic counts.

Every query starts from `scoped_reports` (lib/engine/filters.py), which applies the user's data scope
before anything else, so no page can forget it. On the embedded engine the Overview's queries are
answered from one scan per filter state (lib/engine/fastpath.py); elsewhere they run as Ibis expressions.
The names of lib/engine/filters.py are re-exported here, so a page imports a view's pieces from one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import numpy as np
import pandas as pd

from lib.analysis.stats import wilson_interval
from lib.engine import fastpath
from lib.engine.fastpath import _COUNTS, forget_page_results  # noqa: F401  (re-exported)
from lib.engine.filters import (  # noqa: F401  (re-exported: a view's filters, dimensions and periods)
    DIMENSION_LABELS,
    DIMENSION_ORDER,
    DIMENSIONS,
    FILTER_KINDS,
    GROUPED,
    NOT_RECORDED,
    FilterKind,
    Filters,
    default_filters,
    default_months,
    describe,
    describe_months,
    filtered_reports,
    filters_from_mapping,
    previous_period,
    scoped_reports,
    shown_dimension,
    snap_to_months,
)
from lib.engine.store import Dataset, DatasetError, Engine
from lib.model import schema
from lib.model.scope import UNRESTRICTED, Scope  # noqa: F401  (re-exported: pages and tests import them from here)
from lib.privacy import cellkey

# --- measures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A yes/no measure: yes count over the reports (or incidents) that answered, and how many did not.

    A count is None when disclosure control hides it; the rate and interval are then NaN. `unit` is
    what is counted: "reports", or "incidents" for a field recorded once per incident.
    """

    label: str
    numerator: int | None
    denominator: int | None
    unanswered: int | None
    unit: str = "reports"

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
    """Headline measures for one filter state (a count is None when disclosure control hides it).

    `incidents` is None too when the data record no incident id (`incidents_recorded` is then False):
    reports are not incidents, so no number is shown in their place.
    """

    reports: int | None
    incidents: int | None
    officers: int | None
    rates: dict[str, Rate] = field(default_factory=dict)
    incidents_recorded: bool = True

    @property
    def per_incident(self) -> tuple[str, ...]:
        """Return the measures whose rates count incidents rather than reports."""
        return tuple(k for k, r in self.rates.items() if r.unit == "incidents")


def per_incident(ds: Dataset) -> tuple[str, ...]:
    """Return the harm fields counted in incidents: recorded once per incident, in data with incident ids."""
    return tuple(c for c in schema.HARM_FIELDS if c in ds.incident_level) if ds.has_incidents else ()


def unit_of(ds: Dataset, measure: str) -> str:
    """Return the counting unit of a harm measure in a dataset: "incidents" or "reports"."""
    return "incidents" if measure in per_incident(ds) else "reports"


def incident_key(t: ibis.Table) -> ibis.Expr:
    """Return each report's incident: its incident id, else the report alone (one report, one incident)."""
    return t.incident_id.fill_null(t.report_id) if "incident_id" in t.columns else t.report_id


def key_sum(t: ibis.Table, where: ibis.Expr | None = None) -> ibis.Expr:
    """Return the sum of the record keys of the reports a count counts (its cell key, before the modulus)."""
    return t[cellkey.RECORD_KEY].sum(where=where).fill_null(0)


def harm_metrics(t: ibis.Table, incident_level: tuple[str, ...] = (), keyed: bool = False) -> dict[str, ibis.Expr]:
    """Return yes and answered counts of every harm field: reports, or distinct incidents for incident-level ones.

    Keyed (the cell key method), each count has its key sum beside it (`cellkey.key_column`): the record keys
    of the reports it counts; a count of distinct incidents takes the keys of the reports behind them.
    """
    metrics: dict[str, ibis.Expr] = {}
    if keyed:
        for col in schema.HARM_FIELDS:
            metrics[cellkey.key_column(f"{col}_yes")] = key_sum(t, t[col].fill_null(False))
            metrics[cellkey.key_column(f"{col}_answered")] = key_sum(t, t[col].notnull())
    key = incident_key(t) if incident_level else None
    for col in schema.HARM_FIELDS:
        if col in incident_level:
            # Recorded once per incident and copied to each officer's report: an incident counts once.
            metrics[f"{col}_yes"] = key.nunique(where=t[col].fill_null(False))
            metrics[f"{col}_answered"] = key.nunique(where=t[col].notnull())
        else:
            metrics[f"{col}_yes"] = t[col].sum().fill_null(0)
            metrics[f"{col}_answered"] = t[col].count()
    return metrics


def require_keys(engine: Engine, ds: Dataset) -> None:
    """Raise DatasetError if a dataset's reports carry no record keys (an engine built without `record_keys`)."""
    if cellkey.RECORD_KEY not in engine.reports(ds).columns:
        raise DatasetError(f"{ds.name} has no record keys, so its counts cannot be published under disclosure "
                           "control (open it with an engine given record_keys)")


def perturb_counts(counts: np.ndarray) -> np.ndarray:
    """Return the page counts (`_COUNTS` columns, their key sums after them) as published: adjusted, nested.

    A harm field's yes stays within its answered, and answered within reports, after adjustment.
    """
    n = len(_COUNTS)
    out = cellkey.perturb(counts[:, :n], counts[:, n:2 * n])
    out[:, 2::2] = np.minimum(out[:, 2::2], out[:, :1])  # answered <= reports
    out[:, 1::2] = np.minimum(out[:, 1::2], out[:, 2::2])  # yes <= answered
    return out


def report_count(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> int:
    """Return how many reports a filter state selects within the scope (one count, nothing else).

    Under a perturbed scope it is the published count (the Overview's), so the rule of minimum reports does not
    reveal whether the exact count is just under or just over the threshold.
    """
    t = filtered_reports(engine, ds, filters, scope)
    if not scope.perturbed:
        return int(engine.execute(t.count()))
    require_keys(engine, ds)
    row = engine.execute(t.aggregate(n=t.count(), k=key_sum(t))).iloc[0]
    return cellkey.perturb_one(int(row["n"]), int(row["k"]))


def summarise(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> Summary:
    """Return reports, incidents, officers and the harm rates for a filter state."""
    counted = per_incident(ds)
    keyed = scope.perturbed
    if keyed:
        require_keys(engine, ds)
    row = fastpath._page_totals(engine, ds, filters, scope, counted)
    if row is None:
        t = filtered_reports(engine, ds, filters, scope)
        keys = {cellkey.key_column("reports"): key_sum(t)} if keyed else {}
        expr = t.aggregate(
            reports=t.count(),
            incidents=incident_key(t).nunique(),
            officers=t.officer_id.nunique(),
            **harm_metrics(t, counted, keyed),
            **keys,
        )
        row = engine.execute(expr).iloc[0]
    if keyed:
        row = _perturbed_totals(row, counted)
    reports = int(row["reports"])
    incidents = int(row["incidents"])
    rates = {}
    for col, label in schema.HARM_FIELDS.items():
        answered = int(row[f"{col}_answered"])
        # Unanswered in the measure's own unit: incidents with no report answering, or reports.
        unit, total = ("incidents", incidents) if col in counted else ("reports", reports)
        rates[col] = Rate(label, int(row[f"{col}_yes"]), answered, total - answered, unit)
    return Summary(reports, incidents if ds.has_incidents else None, int(row["officers"]), rates,
                   incidents_recorded=ds.has_incidents)


def _perturbed_totals(row: pd.Series, counted: tuple[str, ...]) -> pd.Series:
    """Return a summary's counts as published under the cell key method.

    Incidents and officers are counted over the same reports as the report count: they take its key sum,
    shifted by a fixed amount each, so the three are not adjusted alike.
    """
    names = fastpath._names(True)
    out = pd.Series(dict(zip(_COUNTS, perturb_counts(np.array([[int(row[c]) for c in names]]))[0], strict=True)))
    key = int(row[cellkey.key_column("reports")])
    out["incidents"] = cellkey.perturb_one(int(row["incidents"]), key + 101)
    out["officers"] = cellkey.perturb_one(int(row["officers"]), key + 203)
    for col in counted:  # a measure counted in incidents: answered within the incidents
        out[f"{col}_answered"] = min(out[f"{col}_answered"], out["incidents"])
        out[f"{col}_yes"] = min(out[f"{col}_yes"], out[f"{col}_answered"])
    return out


# --- breakdowns ---------------------------------------------------------------------------


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
    """Return reports and harm counts and rates per group of the given dimensions.

    A harm field recorded per incident is counted in distinct incidents of each group (`unit_of`).
    """
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension(s): {', '.join(unknown)}")
    counted = per_incident(ds)
    keyed = scope.perturbed
    if keyed:
        require_keys(engine, ds)
    # Distinct incidents do not add up from finer groups (an incident can span them): no one-scan sums then.
    found = None if counted else fastpath._page_breakdown(engine, ds, filters, scope, by)
    if found is None:
        t = filtered_reports(engine, ds, filters, scope)
        t = t.mutate(**{d: DIMENSIONS[d](t) for d in by})
        keys = {cellkey.key_column("reports"): key_sum(t)} if keyed else {}
        frame = engine.execute(t.group_by(list(by)).aggregate(reports=t.count(), **harm_metrics(t, counted, keyed),
                                                              **keys))
        found = {d: frame[d] for d in by}, frame[fastpath._names(keyed)].to_numpy(dtype="int64")
    groups, counts = found
    if keyed:  # published counts; every rate and interval below is computed from them
        counts = perturb_counts(counts)
    return _finish(by, groups, counts)


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
    keyed = scope.perturbed
    if keyed:
        require_keys(engine, ds)
    found = fastpath._page_tactics(engine, ds, filters, scope)
    if found is None:
        reports = filtered_reports(engine, ds, filters, scope)
        tactics = engine.tactics(ds)
        chosen = tactics.filter(tactics.report_id.isin(reports.report_id))
        group = dict(tactic=chosen.tactic.cast("string"), tactic_group=chosen.tactic_group.cast("string"))
        if keyed:  # each report once per tactic: its record key joined from the reports
            used = chosen.select("report_id", **group).distinct()
            used = used.join(reports.select("report_id", cellkey.RECORD_KEY), "report_id")
            expr = used.group_by(["tactic", "tactic_group"]).aggregate(
                reports=used.count(), **{cellkey.key_column("reports"): key_sum(used)})
            total = engine.execute(reports.aggregate(n=reports.count(), k=key_sum(reports))).iloc[0]
            found = engine.execute(expr), (int(total["n"]), int(total["k"]))
        else:
            expr = chosen.group_by(**group).aggregate(reports=chosen.report_id.nunique())
            found = engine.execute(expr), engine.execute(reports.count())
    frame, total = found
    if keyed:  # published counts, and the share of published reports
        total = cellkey.perturb_one(*total)
        frame = cellkey.perturb_frame(frame, ["reports"])
    frame["share"] = frame["reports"] / total if total else np.nan
    frame["tactic_group"] = frame["tactic_group"].fillna("Unclassified")
    return frame.sort_values(["reports", "tactic"], ascending=[False, True]).reset_index(drop=True)



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


