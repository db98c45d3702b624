"""Statistical disclosure control: hide small counts, and the cells that would give them away.

Every aggregate the app shows passes through `protect(kind, result, threshold)`, where `kind` is
the lib function that made it (`query.breakdown`, `risk.funnel`, ...). A spec per function says which columns are keys,
which are counts, which columns are derived from each count (rates, intervals, shares, flags) and
which count is another's denominator. The rules:

1. Primary: a count from 1 to threshold - 1 is hidden. Zero is shown.
2. A count whose denominator is hidden is hidden; every column derived from a hidden count is hidden.
3. Secondary: the total of every count column is taken to be published (the headline figures), and
   for two-way tables both margins. Any line (the column of a one-way table; each row and column of
   a two-way table, per facet) holding exactly one hidden cell has its smallest other cell hidden
   too, until no line does. Two-way tables are then audited with linear programming: a hidden cell
   whose value the margins pin down gets a neighbour hidden, until none is pinned down.

Hidden values become missing (NaN, None, NaT); a boolean `suppressed` column marks rows with any
hidden value and `note(frame)` words a caption. Unknown kinds raise `DisclosureError`, and
row-level frames (`ROW_LEVEL`) are never published under disclosure control.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from lib.analysis import debriefs, explore, quality, risk, tactics, training
from lib.engine import query
from lib.model import schema
from lib.model.settings import DEFAULT_DISCLOSURE_THRESHOLD, DISCLOSURE_THRESHOLD, settings

DEFAULT_THRESHOLD = DEFAULT_DISCLOSURE_THRESHOLD
THRESHOLD_ENV = DISCLOSURE_THRESHOLD
SUPPRESSED = "suppressed"
ATTRS_KEY = "disclosure"
HARM = tuple(schema.HARM_FIELDS)


class DisclosureError(ValueError):
    """A result that disclosure control cannot publish: an unknown or a row-level kind."""


def threshold_from_env() -> int:
    """Return the suppression threshold from OSE_DISCLOSURE_THRESHOLD (a whole number from 2 to 1000), else 10.

    A bad value raises SettingsError (a ValueError) naming the variable.
    """
    return settings().disclosure_threshold


# --- specs --------------------------------------------------------------------------------

Masks = dict[str, np.ndarray]


@dataclass(frozen=True)
class Count:
    """A count column: its denominator, the columns computed from it, and the cells it is kept in."""

    name: str
    denominator: str | None = None
    derived: tuple[str, ...] = ()
    # None: one cell per combination of the table's keys; (): one value for the whole frame;
    # otherwise the keys it varies by (a month's total repeated on each of the month's rows).
    keys: tuple[str, ...] | None = None
    # False where cells overlap or do not sum to anything published (completeness per field).
    additive: bool = True


@dataclass(frozen=True)
class Spec:
    """How one kind of result is protected."""

    counts: tuple[Count, ...]
    # None: every column not named as a count, a derived column or an attribute.
    keys: tuple[str, ...] | None = None
    attributes: tuple[str, ...] = ()
    # Keys whose values slice the table into separate tables (None: a third key is the facet).
    facets: tuple[str, ...] | None = None
    # False where two keys nest (areas within forces) rather than cross: one line over all rows.
    crossed: bool = True
    # Kind-specific links between cells (mirrors, complements, symmetry), run in the loop.
    link: Callable[[pd.DataFrame, Masks], None] | None = None
    # Kind-specific hiding after the counts are settled (cumulative shares).
    finish: Callable[[pd.DataFrame, Masks], None] | None = None

    def resolved_keys(self, frame: pd.DataFrame) -> tuple[str, ...]:
        """Return the key columns of a frame under this spec."""
        if self.keys is not None:
            return self.keys
        named = {c.name for c in self.counts} | {d for c in self.counts for d in c.derived}
        named |= set(self.attributes) | {SUPPRESSED}
        return tuple(c for c in frame.columns if c not in named)


def _harm_counts(prefix_rates: bool = True, extra_yes: tuple[str, ...] = (),
                 extra_answered: tuple[str, ...] = ()) -> tuple[Count, ...]:
    counts = [Count("reports", derived=("share",))]
    for m in HARM:
        counts.append(Count(f"{m}_answered", denominator="reports",
                            derived=(f"{m}_unanswered", *extra_answered)))
        counts.append(Count(f"{m}_yes", denominator=f"{m}_answered",
                            derived=(f"{m}_rate", f"{m}_low", f"{m}_high", *extra_yes) if prefix_rates else ()))
    return tuple(counts)


def _rate_counts(yes: str = "yes", answered: str = "answered", total: str | None = "reports",
                 rate_columns: tuple[str, ...] = (), answered_columns: tuple[str, ...] = ()) -> tuple[Count, ...]:
    counts = [Count(total)] if total else []
    counts.append(Count(answered, denominator=total, derived=answered_columns))
    counts.append(Count(yes, denominator=answered, derived=rate_columns))
    return tuple(counts)


# --- kind-specific links ------------------------------------------------------------------


def _hide_together(masks: Masks, *names: str) -> None:
    joined = np.logical_or.reduce([masks[n] for n in names])
    for n in names:
        masks[n] |= joined


def _link_ratios(frame: pd.DataFrame, masks: Masks) -> None:
    """Mirror the reference row's hiding; a complement (total minus the group) hides with the group."""
    if not len(frame):
        return
    groups = frame["group"].astype(str).to_numpy()
    reference = str(frame["reference"].iloc[0])
    if reference in groups:
        at = int(np.flatnonzero(groups == reference)[0])
        for own, ref in (("yes", "reference_yes"), ("answered", "reference_answered")):
            masks[ref] |= masks[own][at]
    else:
        _link_complements(frame, masks)


def _link_complements(frame: pd.DataFrame, masks: Masks) -> None:
    # reference = (a total published elsewhere) - own: either one gives the other away.
    for own, ref in (("yes", "reference_yes"), ("answered", "reference_answered")):
        _hide_together(masks, own, ref)


def _link_co_occurrence(frame: pd.DataFrame, masks: Masks) -> None:
    """Keep the pair table symmetric, its diagonal with the tactic's total, other_reports with tactic_reports."""
    tactic, other = frame["tactic"].astype(str).to_numpy(), frame["other"].astype(str).to_numpy()
    index = {(t, o): i for i, (t, o) in enumerate(zip(tactic, other, strict=True))}
    both = masks["both"]
    for i, (t, o) in enumerate(zip(tactic, other, strict=True)):
        j = index.get((o, t))
        if j is not None and both[i] != both[j]:
            both[i] = both[j] = True
    diagonal = tactic == other
    hidden_total = {t for t, h in zip(tactic, masks["tactic_reports"], strict=True) if h}
    hidden_total |= {t for t, h, d in zip(tactic, both, diagonal, strict=True) if h and d}
    masks["tactic_reports"] |= np.isin(tactic, list(hidden_total))
    both |= diagonal & np.isin(tactic, list(hidden_total))


def _finish_co_occurrence(frame: pd.DataFrame, masks: Masks) -> None:
    hidden = set(frame.loc[masks["tactic_reports"], "tactic"].astype(str))
    masks["other_reports"] = frame["other"].astype(str).isin(hidden).to_numpy()


def _finish_ladder(frame: pd.DataFrame, masks: Masks) -> None:
    """Hide 'at least this level' from the top hidden level down: differences would give the level away."""
    hidden = np.flatnonzero(masks["reports"])
    cut = np.zeros(len(frame), dtype=bool)
    if hidden.size:
        rank = frame["rank"].to_numpy()
        cut = rank <= rank[hidden].max()
    if masks["ced_reports"].any():
        cut[:] = True
    masks["_at_least"] = cut


# --- the registry -------------------------------------------------------------------------

# An officer's own mix of reports (shares of their reports), beside peers in the same role.
MIX = ("night", "single", "resisting", "dwelling", "ced", "ground")
_BREAKDOWN = Spec(_harm_counts())

SPECS: dict[Callable, Spec] = {
    query.breakdown: _BREAKDOWN,
    query.tactic_counts: Spec((Count("reports", derived=("share",)),), keys=("tactic",),
                                    attributes=("tactic_group",)),
    risk.rate_grid: Spec(_rate_counts(rate_columns=("per_100", "low_100", "high_100"),
                                            answered_columns=("enough",))),
    risk.rate_ratios: Spec(
        (Count("answered", derived=("ratio", "ci_low", "ci_high")),
         Count("yes", denominator="answered", derived=("ratio", "ci_low", "ci_high")),
         Count("reference_answered", additive=False, derived=("ratio", "ci_low", "ci_high")),
         Count("reference_yes", denominator="reference_answered", additive=False,
               derived=("ratio", "ci_low", "ci_high"))),
        keys=("group",), attributes=("dimension", "reference", "adjusted_for", "method"), link=_link_ratios),
    # A group's own target leaves it out of the pooled rate, so the target (like its p- and q-values) gives its
    # counts away: all hide with them.
    risk.funnel: Spec(
        (Count("answered", derived=("expected", "low", "high", "rate", "flag", "judged", "target", "p_value",
                                    "q_value", "model_expected", "ratio")),
         Count("yes", denominator="answered", derived=("rate", "flag", "target", "expected", "low", "high",
                                                       "p_value", "q_value", "ratio"))),
        keys=("group",), attributes=("basis",)),
    risk.officer_exposure: Spec(
        (Count("reports", derived=(*MIX, "shrunken", "low", "high", "rank_low", "rank_high")),
         *(c for m in HARM for c in (
             Count(f"{m}_answered", denominator="reports"),
             # The shrunken rate and its ranks belong to one measure the frame does not name:
             # any hidden harm count hides them.
             Count(f"{m}_yes", denominator=f"{m}_answered",
                   derived=(f"{m}_rate", f"{m}_low", f"{m}_high", "shrunken", "low", "high",
                            "rank_low", "rank_high")))),
         Count("officers", keys=(), additive=False, derived=("rank_low", "rank_high")),
         # Same-incident comparison: no total of these is published (only the listed officers' rows).
         Count("shared_incidents", additive=False),
         Count("shared_informative", additive=False, derived=("shared_ratio", "shared_low", "shared_high",
                                                              "shared_p")),
         Count("shared_reports", additive=False, derived=("shared_expected", "shared_variance")),
         Count("shared_yes", denominator="shared_reports", additive=False,
               derived=("shared_ratio", "shared_low", "shared_high", "shared_p"))),
        keys=("officer",), attributes=("role", *(f"peer_{k}" for k in MIX))),
    tactics.use_over_time: Spec(
        (Count("total_reports", keys=("month",)),
         Count("reports", denominator="total_reports", derived=("share",))),
        keys=("month", "tactic_group")),
    tactics.effectiveness: Spec(
        (Count("uses"),
         Count("answered", denominator="uses", derived=("unanswered", "unanswered_share")),
         Count("effective_yes", denominator="answered", derived=("rate", "low", "high"))),
        keys=("tactic",), attributes=("tactic_group",)),
    tactics.harm_when_used: Spec(
        (*(c for c in _harm_counts() if c.name != "reports"), Count("reports"),
         *(c for m in HARM for c in (
             Count(f"{m}_overall_answered", keys=(), additive=False, derived=(f"{m}_overall",)),
             Count(f"{m}_overall_yes", keys=(), additive=False, denominator=f"{m}_overall_answered",
                   derived=(f"{m}_overall",))))),
        keys=("tactic",), attributes=("tactic_group",)),
    tactics.co_occurrence: Spec(
        (Count("tactic_reports", keys=("tactic",)),
         Count("both", denominator="tactic_reports", derived=("share",))),
        keys=("tactic", "other"), attributes=("other_reports",), link=_link_co_occurrence,
        finish=_finish_co_occurrence),
    tactics.taser_ladder: Spec(
        (Count("all_reports", keys=(), additive=False),
         Count("ced_reports", keys=(), additive=False, denominator="all_reports",
               derived=("ced_share_of_reports", "ced_share_low", "ced_share_high")),
         Count("reports", denominator="ced_reports", derived=("share", "share_low", "share_high"))),
        keys=("level",), attributes=("rank", "at_least"), finish=_finish_ladder),
    explore.explore_frame: Spec(_rate_counts(rate_columns=("value", "low", "high", "enough"))
                                      + (Count("reports", derived=("value",)),)),
    quality.completeness: Spec(
        (Count("total", additive=False, derived=("share",)),
         Count("answered", denominator="total", additive=False, derived=("share",))),
        keys=("field",), attributes=("kind", "applies_when")),
    quality.completeness_by: Spec(
        (Count("reports", derived=tuple(c for c in schema.REPORT_COLUMNS if c not in ("force", "area"))),),
        crossed=False),
    quality.invalid_codes: Spec((Count("reports"),), keys=("field", "value"), facets=("field",)),
    quality.contradictions: Spec(
        (Count("total", keys=(), additive=False, derived=("share",)),
         Count("reports", denominator="total", additive=False, derived=("share",))),
        keys=("rule",), attributes=("explanation",)),
    quality.coverage: Spec(
        (Count("reports", derived=("first", "last", "share_of_median", "gap", "thin")),), keys=("month",)),
    training.summarise_compliance: Spec(
        (Count("officers", derived=("mean_hours",)),
         Count("compliant", denominator="officers", derived=("share_compliant", "low", "high"))),
        crossed=False),
    training.event_study: Spec(
        (Count("officers", additive=False, derived=("estimate", "ci_low", "ci_high")),
         Count("events", derived=("estimate", "ci_low", "ci_high"))), keys=("months_since_training",)),
    debriefs.factor_table: Spec(
        (Count("debriefs"),
         Count("answered", derived=("ratio", "ci_low", "ci_high")),
         Count("yes", denominator="answered", derived=("ratio", "ci_low", "ci_high")),
         Count("reference_answered", additive=False, derived=("ratio", "ci_low", "ci_high")),
         Count("reference_yes", denominator="reference_answered", additive=False,
               derived=("ratio", "ci_low", "ci_high"))),
        keys=("factor",), link=_link_complements),
}
SPECS[quality.late_recorded] = SPECS[quality.coverage]
SPECS[training.event_profile] = SPECS[training.event_study]  # the same columns, from the staggered estimator
# Kinds that are not frames with a spec but are protected here all the same.
SPECIAL_KINDS: frozenset[Callable] = frozenset({training.effects})
# Row-level results (one row per report or officer) are never published under disclosure control.
ROW_LEVEL: frozenset[Callable] = frozenset({
    quality.contradiction_rows, debriefs.review_list, debriefs.analyse,
    training.overdue, training.compliance, risk.by_officer,
})
KINDS: frozenset[Callable] = frozenset(SPECS) | SPECIAL_KINDS


def row_level_allowed(kind: Callable) -> bool:
    """Say whether a kind may be shown at all under disclosure control (row-level kinds may not)."""
    return kind not in ROW_LEVEL


# --- the algorithm ------------------------------------------------------------------------


@dataclass
class _Cells:
    """One count column seen as cells: row -> cell, each cell's value, and the lines over cells."""

    row_cell: np.ndarray
    values: np.ndarray
    lines: list[np.ndarray] = field(default_factory=list)
    two_way: bool = False


def _numbers(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").astype("float64").to_numpy()


def _cells(frame: pd.DataFrame, count: Count, keys: tuple[str, ...], facets: tuple[str, ...] | None,
           crossed: bool = True) -> _Cells:
    values = _numbers(frame[count.name])
    own = keys if count.keys is None else count.keys
    if not own:
        return _Cells(np.zeros(len(frame), dtype=int), values[:1] if len(values) else values)
    grouped = frame.groupby(list(own), dropna=False, sort=False)
    row_cell = grouped.ngroup().to_numpy()
    first = pd.Series(values).groupby(row_cell).first()
    cell_values = first.reindex(range(int(row_cell.max()) + 1 if len(row_cell) else 0)).to_numpy()
    if not count.additive:
        return _Cells(row_cell, cell_values)
    cell_keys = frame[list(own)].groupby(row_cell).first().reset_index(drop=True)
    slice_keys = tuple(f for f in (facets if facets is not None else own[2:]) if f in own)
    inner = [k for k in own if k not in slice_keys]
    slices = ([np.arange(len(cell_keys))] if not slice_keys else
              [np.asarray(ix) for ix in cell_keys.groupby(list(slice_keys), dropna=False, sort=False).indices.values()])
    lines: list[np.ndarray] = []
    for members in slices:
        if len(inner) == 1 or (inner and not crossed):
            lines.append(members)
        elif len(inner) == 2:
            sub = cell_keys.iloc[members]
            for k in inner:
                lines += [members[np.asarray(ix)] for ix in sub.groupby(k, dropna=False, sort=False).indices.values()]
    return _Cells(row_cell, cell_values, [ln for ln in lines if len(ln) > 1], two_way=crossed and len(inner) == 2)


def _to_cells(mask: np.ndarray, cells: _Cells) -> np.ndarray:
    hidden = np.zeros(len(cells.values), dtype=bool)
    np.logical_or.at(hidden, cells.row_cell, mask)
    return hidden


def _pick(line: np.ndarray, values: np.ndarray, hidden: np.ndarray, cells: _Cells) -> int | None:
    """Return the cell to hide beside a lone hidden cell: the smallest non-zero, else a useful zero."""
    open_ = [c for c in line if not hidden[c] and not np.isnan(values[c])]
    if not open_:
        return None
    nonzero = [c for c in open_ if values[c] > 0]
    if nonzero:
        return min(nonzero, key=lambda c: values[c])
    # A zero helps only if its other line has something else to hide behind it.
    def other_total(c: int) -> float:
        return max((np.nansum(values[ln]) for ln in cells.lines if c in ln and not np.array_equal(ln, line)),
                   default=0.0)
    return max(open_, key=other_total)


def _secondary(cells: _Cells, hidden: np.ndarray) -> bool:
    changed = False
    again = True
    while again:
        again = False
        for line in cells.lines:
            if int(hidden[line].sum()) == 1:
                chosen = _pick(line, cells.values, hidden, cells)
                if chosen is not None:
                    hidden[chosen] = True
                    changed = again = True
    return changed


def _ranges(cells: _Cells, hidden: np.ndarray) -> dict[int, tuple[float, float]]:
    """Return the feasible (min, max) of each hidden cell given the published cells and the line totals."""
    from scipy.optimize import linprog

    unknown = [c for c in np.flatnonzero(hidden) if not np.isnan(cells.values[c])]
    if not unknown:
        return {}
    column = {c: i for i, c in enumerate(unknown)}
    rows, rhs = [], []
    for line in cells.lines:
        inside = [c for c in line if c in column]
        if not inside:
            continue
        row = np.zeros(len(unknown))
        row[[column[c] for c in inside]] = 1.0
        rows.append(row)
        rhs.append(float(np.nansum(cells.values[inside])))
    a, b = (np.array(rows), np.array(rhs)) if rows else (None, None)
    cap = float(np.nansum(cells.values)) or 1.0

    def solve(objective: np.ndarray) -> np.ndarray | None:
        out = linprog(objective, A_eq=a, b_eq=b, bounds=[(0, cap)] * len(unknown), method="highs")
        return out.x if out.status == 0 else None

    # A few random objectives find most cells that can move; only the rest are solved one by one.
    rng = np.random.default_rng(0)
    seen = [x for x in (solve(rng.normal(size=len(unknown))) for _ in range(4)) if x is not None]
    low = np.min(seen, axis=0) if seen else np.full(len(unknown), np.inf)
    high = np.max(seen, axis=0) if seen else np.full(len(unknown), -np.inf)
    out = {}
    for i, c in enumerate(unknown):
        if high[i] - low[i] <= 1e-6:
            unit = np.zeros(len(unknown))
            unit[i] = 1.0
            lo, hi = solve(unit), solve(-unit)
            low[i] = lo[i] if lo is not None else low[i]
            high[i] = hi[i] if hi is not None else high[i]
        out[c] = (float(low[i]), float(high[i]))
    return out


def _audit(cells: _Cells, hidden: np.ndarray) -> bool:
    """Hide a neighbour of every hidden cell the margins pin down; say whether anything changed."""
    if not cells.two_way or not hidden.any():
        return False
    changed = False
    for c, (low, high) in _ranges(cells, hidden).items():
        if high - low > 1e-6:
            continue
        for line in (ln for ln in cells.lines if c in ln):
            chosen = _pick(line, cells.values, hidden, cells)
            if chosen is not None:
                hidden[chosen] = changed = True
                break
    return changed


def _settle(frame: pd.DataFrame, spec: Spec, threshold: int) -> Masks:
    """Return, per count column, which rows hold a hidden value."""
    keys = spec.resolved_keys(frame)
    counts = [c for c in spec.counts if c.name in frame.columns]
    cells = {c.name: _cells(frame, c, keys, spec.facets, spec.crossed) for c in counts}
    known = {c.name: ~np.isnan(_numbers(frame[c.name])) for c in counts}
    masks: Masks = {}
    for c in counts:
        v = _numbers(frame[c.name])
        masks[c.name] = (v >= 1) & (v < threshold)

    def spread(name: str, step: Callable[[_Cells, np.ndarray], bool]) -> None:
        hidden = _to_cells(masks[name], cells[name])
        step(cells[name], hidden)
        masks[name] = hidden[cells[name].row_cell] & known[name]

    while True:
        before = {n: m.copy() for n, m in masks.items()}
        for _ in range(len(counts)):  # chains (yes -> answered -> reports) settle in as many passes
            for c in counts:
                if c.denominator in masks:
                    masks[c.name] |= masks[c.denominator]
        if spec.link is not None:
            spec.link(frame, masks)
        for c in counts:
            spread(c.name, _secondary)
        if any(not np.array_equal(before[n], masks[n]) for n in masks):
            continue
        for c in counts:  # the lines are settled: audit two-way tables by linear programming
            spread(c.name, _audit)
        if all(np.array_equal(before[n], masks[n]) for n in masks):
            return masks


def _hide(series: pd.Series, mask: np.ndarray) -> pd.Series:
    if not mask.any():
        return series
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("boolean").mask(mask, pd.NA)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series.mask(mask, pd.NaT)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64").mask(mask, np.nan)
    return series.astype("object").mask(mask, None)


def protect_frame(frame: pd.DataFrame, spec: Spec, threshold: int) -> pd.DataFrame:
    """Apply a spec to a frame: hide small counts, their dependants, and cells recoverable from totals."""
    _check_threshold(threshold)
    out = frame.copy()
    masks = _settle(frame, spec, threshold) if len(frame) else {}
    if spec.finish is not None and len(frame):
        spec.finish(frame, masks)
    any_hidden = np.zeros(len(frame), dtype=bool)
    hidden_values = 0
    counts = [c for c in spec.counts if c.name in frame.columns]
    for c in counts:
        mask = masks.get(c.name, np.zeros(len(frame), dtype=bool))
        out[c.name] = _numbers(out[c.name]) if not mask.any() else _hide(out[c.name], mask)
        cell = _cells(frame, replace(c, additive=False), spec.resolved_keys(frame), None) if len(frame) else None
        hidden_values += int(_to_cells(mask, cell).sum()) if cell is not None else 0
        any_hidden |= mask
        for d in c.derived:
            if d in out.columns:
                out[d] = _hide(out[d], mask)
    for name, mask in masks.items():
        if name.startswith("_") or name in {c.name for c in counts} or name not in out.columns:
            continue
        out[name] = _hide(out[name], mask)
    if "_at_least" in masks and "at_least" in out.columns:
        out["at_least"] = _hide(out["at_least"], masks["_at_least"])
    out[SUPPRESSED] = any_hidden
    out.attrs[ATTRS_KEY] = {"hidden": hidden_values, "threshold": threshold}
    return out


def _check_threshold(threshold: int) -> None:
    if not isinstance(threshold, (int, np.integer)) or threshold < 2:
        raise ValueError(f"the disclosure threshold must be a whole number of at least 2, not {threshold!r}")


# --- the public entry points --------------------------------------------------------------


def _name(function: Callable) -> str:
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"


def protect(kind: Callable, result: Any, threshold: int = DEFAULT_THRESHOLD) -> Any:
    """Return a result with small counts, their rates and the cells that would reveal them hidden."""
    _check_threshold(threshold)
    if kind in ROW_LEVEL:
        raise DisclosureError(f"{_name(kind)} returns row-level data, which is never shown under disclosure control")
    if kind == training.effects:
        return {m: _protect_effect(r, threshold) for m, r in result.items()}
    spec = SPECS.get(kind)
    if spec is None:
        raise DisclosureError(f"no disclosure rules for {_name(kind)}: it cannot be shown under disclosure control")
    if kind == risk.funnel:
        points, limits = result
        return protect_frame(points, spec, threshold), _safe_limits(points, limits, threshold)
    if kind == risk.officer_exposure:
        # The verdict (a p-value over all officers) is published; the officer count and the list are protected.
        officers = protect_count(result.officers, threshold)
        return replace(result, officers=officers, heterogeneity=replace(result.heterogeneity, groups=officers),
                       table=protect_frame(result.table, spec, threshold))
    if not isinstance(result, pd.DataFrame):
        raise DisclosureError(f"{_name(kind)} should give a DataFrame, not {type(result).__name__}")
    return protect_frame(result, spec, threshold)


def _safe_limits(points: pd.DataFrame, limits: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Redraw funnel limits from volume 1: the original grid starts at the smallest group's volume."""
    if not len(limits) or "overall" not in limits:
        return limits
    answered = _numbers(points["answered"]) if len(points) else np.array([])
    if "model_expected" in points.columns and len(points):
        # Against expected counts the axis is the model's expected count, continuous and often below 1.
        model = _numbers(points["model_expected"])[answered >= threshold]
        model = model[np.isfinite(model) & (model > 0)]
        return risk.redraw_limits(limits, np.geomspace(0.1, max(float(model.max()) if model.size else 1.0, 0.1)
                                                       * 1.05, 80))
    shown = answered[answered >= threshold]
    top = float(shown.max()) if shown.size else float(threshold)
    grid = np.unique(np.round(np.geomspace(1, max(top, threshold) * 1.05, 80)))
    return risk.redraw_limits(limits, grid)


def protect_count(value: int | None, threshold: int = DEFAULT_THRESHOLD) -> int | None:
    """Return a single count, or None when it is from 1 to threshold - 1."""
    _check_threshold(threshold)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return None if 1 <= value < threshold else int(value)


def _protect_effect(result: dict[str, Any], threshold: int) -> dict[str, Any]:
    out = dict(result)
    hidden = False
    for key in ("officers_trained", "officers_comparison", "events", "observed_events"):
        if key in out:
            out[key] = protect_count(out[key], threshold)
            hidden |= out[key] is None and result[key] is not None
    if hidden:
        # Everything computed from the hidden counts goes with them, and no verdict rests on them.
        out.update(estimate=None, ci_low=None, ci_high=None)
        for key in ("minimum_detectable_effect", "expected_events", "observed_events", "pre_trend_p"):
            if key in out:
                out[key] = None
        if "twfe" in out:
            out["twfe"] = dict.fromkeys(out["twfe"])
        if "verdict" in out:
            out["verdict"] = "too_few"
    rates = {}
    groups = result.get("rates", {})
    events = pd.Series({g: r["events"] for g, r in groups.items()}, dtype="float64")
    if len(events):
        cells = _Cells(np.arange(len(events)), events.to_numpy(), [np.arange(len(events))])
        small = (events >= 1) & (events < threshold)
        mask = small.to_numpy().copy()
        _secondary(cells, mask)
        for (g, r), m in zip(groups.items(), mask, strict=True):
            rates[g] = {**r, "events": None, "rate": None} if m else dict(r)
            hidden |= bool(m)
        out["rates"] = rates
    out[SUPPRESSED] = hidden
    return out


def protect_summary(summary: Any, threshold: int = DEFAULT_THRESHOLD) -> Any:
    """Return headline measures with small counts hidden; a rate on a hidden count has no rate shown."""
    from lib.engine.query import Rate, Summary

    _check_threshold(threshold)
    reports = protect_count(summary.reports, threshold)
    rates = {}
    for key, rate in summary.rates.items():
        denominator = protect_count(rate.denominator, threshold) if reports is not None else None
        numerator = protect_count(rate.numerator, threshold) if denominator is not None else None
        # Unanswered is reports minus answered: shown only beside both, like the tables' unanswered columns.
        unanswered = rate.unanswered if denominator is not None else None
        rates[key] = Rate(rate.label, numerator, denominator, unanswered, rate.unit)
    # Incidents not recorded stay None, and the flag that says so is kept: "not recorded" is not "hidden".
    return Summary(reports, protect_count(summary.incidents, threshold) if reports is not None else None,
                   protect_count(summary.officers, threshold) if reports is not None else None, rates,
                   incidents_recorded=summary.incidents_recorded)


def note(frame: pd.DataFrame) -> str | None:
    """Say how many values a protected frame hides and why, for a caption; None when it hides none."""
    info = frame.attrs.get(ATTRS_KEY) if hasattr(frame, "attrs") else None
    if info is not None:
        hidden, threshold = int(info["hidden"]), int(info["threshold"])
    elif SUPPRESSED in getattr(frame, "columns", ()):
        hidden, threshold = int(frame[SUPPRESSED].fillna(False).astype(bool).sum()), None
    else:
        return None
    if not hidden:
        return None
    what = f"{hidden:,} value{'s' if hidden != 1 else ''} hidden"
    under = f"fewer than {threshold:,} reports" if threshold else "too few reports"
    return f"{what}: {under}, or recoverable from totals."


def shown(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Return the rows whose given columns are all shown (not hidden), for charts that draw them."""
    keep = np.ones(len(frame), dtype=bool)
    for c in columns:
        if c in frame.columns:
            keep &= frame[c].notna().to_numpy()
    return frame[keep]
