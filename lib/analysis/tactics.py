"""Tactics: which tactics were used, how often they worked, harm alongside them, and the Taser ladder.

Queries take `(engine, ds, filters, scope, ...)`, start from `query.filtered_reports` so the user's
scope and filters always apply, do their joins and counts in the engine, and return small frames
(drawn and tabled by lib/present/tactic_charts.py). A report is one officer's use of force on one
subject; a report can record several tactics, so counts per tactic do not add up to the number of reports.

Under a perturbed scope (viewers, demonstrations) every count is published through the cell key method
(lib/privacy/cellkey.py): its key sum is the sum of the record keys of the reports (or tactic uses) it
counts, and every share, rate and interval is computed from the published counts.

On the embedded engine the counts come from one scan per filter state (`fastpath.tactic_scan`: the filtered
reports by month and tactic mask), which the functions here expand into tactics; elsewhere, and where a scan
cannot answer, the Ibis queries join the tactics table. Both give the same frames (tests/test_tactics_figures.py).
"""
from __future__ import annotations

import ibis
import numpy as np
import pandas as pd

from lib.analysis.stats import wilson_interval
from lib.engine import fastpath
from lib.engine.fastpath import TacticScan
from lib.engine.query import (
    DIMENSIONS,
    Filters,
    Scope,
    Summary,
    add_rates,
    filtered_reports,
    harm_metrics,
    key_sum,
    require_keys,
)
from lib.engine.store import Dataset, Engine
from lib.model import schema
from lib.privacy import cellkey

UNCLASSIFIED = "Unclassified"
INJURY_MEASURES: tuple[str, ...] = ("officer_injured", "subject_injured")
TOP_TACTICS = 12
BY_LABELS: dict[str, str] = {"tactic": "Tactic", "tactic_group": "Type of force"}


# --- shared pieces ------------------------------------------------------------------------


CK = cellkey.key_column  # `reports` -> `reports__ck`: the key sum beside a count


def _used_tactics(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, keyed: bool = False) -> ibis.Table:
    """Return (report_id, tactic, tactic_group) of the filtered reports, one row per report and tactic.

    Keyed, each row also carries its report's record key, so a count of these rows has its key sum.
    """
    reports = filtered_reports(engine, ds, filters, scope)
    t = engine.tactics(ds)
    t = t.filter(t.report_id.isin(reports.report_id))
    used = t.select(report_id=t.report_id, tactic=t.tactic.cast("string"),
                    tactic_group=t.tactic_group.cast("string")).distinct()
    return used.join(_record_keys(reports), "report_id") if keyed else used


def _record_keys(reports: ibis.Table) -> ibis.Table:
    """Return each report's id and record key (the cell key method)."""
    return reports.select("report_id", cellkey.RECORD_KEY)


def _keyed(engine: Engine, ds: Dataset, scope: Scope) -> bool:
    """Say whether a scope's counts are published perturbed; raise DatasetError if the data carries no keys."""
    if scope.perturbed:
        require_keys(engine, ds)
    return scope.perturbed


def _counted(t: ibis.Table, keyed: bool, name: str = "reports") -> dict[str, ibis.Expr]:
    """Return the count of a table's rows, with its key sum beside it when keyed."""
    return {name: t.count(), **({CK(name): key_sum(t)} if keyed else {})}


def _vocabulary_order(values: pd.Series, vocabulary: tuple[str, ...]) -> list[str]:
    found = set(values.dropna())
    return [v for v in vocabulary if v in found] + sorted(found - set(vocabulary))


def _group_order(values: pd.Series) -> list[str]:
    return _vocabulary_order(values, (*schema.TACTIC_GROUPS, UNCLASSIFIED))


# --- 1. tactic use over time --------------------------------------------------------------


def use_over_time(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports using each type of force per month, the month's reports and the share using it."""
    keyed = _keyed(engine, ds, scope)
    scan = fastpath.tactic_scan(engine, ds, filters, scope)
    if scan is not None:
        totals, counts = _scanned_use(scan, keyed)
    else:
        reports = filtered_reports(engine, ds, filters, scope)
        kept = {cellkey.RECORD_KEY: reports[cellkey.RECORD_KEY]} if keyed else {}
        months = reports.select(report_id=reports.report_id, month=DIMENSIONS["month"](reports), **kept)
        totals = engine.execute(months.group_by("month").aggregate(**_counted(months, keyed, "total_reports")))
        used = _used_tactics(engine, ds, filters, scope)
        pairs = used.select(used.report_id, tactic_group=used.tactic_group.fill_null(UNCLASSIFIED)).distinct()
        joined = pairs.join(months, "report_id")
        counts = engine.execute(joined.group_by(["month", "tactic_group"]).aggregate(**_counted(joined, keyed)))
    columns = ["month", "tactic_group", "reports", "total_reports", "share"]
    if totals.empty or counts.empty:
        return pd.DataFrame(columns=columns)
    # Every type of force seen in the period gets every month, so a month without it reads 0, not a gap.
    groups = _group_order(counts["tactic_group"])
    grid = pd.MultiIndex.from_product([sorted(totals["month"]), groups], names=["month", "tactic_group"])
    values = ["reports", CK("reports")] if keyed else ["reports"]
    frame = (counts.set_index(["month", "tactic_group"])[values].reindex(grid, fill_value=0)
             .reset_index().merge(totals, on="month"))
    frame["reports"] = frame["reports"].astype("int64")
    frame["total_reports"] = frame["total_reports"].astype("int64")
    if keyed:  # published counts: a type of force's reports within the month's
        frame = cellkey.perturb_frame(frame, ["reports", "total_reports"], nested=[("reports", "total_reports")])
    frame["share"] = frame["reports"] / frame["total_reports"]
    return frame[columns]


# --- 2. effectiveness ---------------------------------------------------------------------

_EFFECTIVENESS_COUNTS = ("uses", "answered", "effective_yes")


def effectiveness(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return per tactic: uses, uses recorded effective of those answering, the rate and its interval."""
    keyed = _keyed(engine, ds, scope)
    scan = fastpath.tactic_scan(engine, ds, filters, scope)
    if scan is not None and scan.answers is not None:
        frame = _scanned_effectiveness(scan, keyed)
    else:
        reports = filtered_reports(engine, ds, filters, scope)
        t = engine.tactics(ds)
        t = t.filter(t.report_id.isin(reports.report_id))
        keys: dict[str, ibis.Expr] = {}
        if keyed:  # each use carries its report's record key
            t = t.join(_record_keys(reports), "report_id")
            keys = {CK("uses"): key_sum(t), CK("effective_yes"): key_sum(t, t.effective.fill_null(False)),
                    CK("answered"): key_sum(t, t.effective.notnull())}
        expr = t.group_by(tactic=t.tactic.cast("string"), tactic_group=t.tactic_group.cast("string")).aggregate(
            uses=t.count(),
            effective_yes=t.effective.sum().fill_null(0),
            answered=t.effective.count(),
            **keys,
        )
        frame = engine.execute(expr)
    frame["tactic_group"] = frame["tactic_group"].fillna(UNCLASSIFIED)
    for col in _EFFECTIVENESS_COUNTS:
        frame[col] = frame[col].astype("int64")
    if keyed:  # published counts; answered within uses, effective within answered
        frame = cellkey.perturb_frame(frame, _EFFECTIVENESS_COUNTS,
                                      nested=[("answered", "uses"), ("effective_yes", "answered")])
    frame["unanswered"] = frame["uses"] - frame["answered"]
    yes, answered = frame["effective_yes"].to_numpy(), frame["answered"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["rate"] = np.where(answered > 0, yes / answered, np.nan)
        frame["unanswered_share"] = frame["unanswered"] / frame["uses"]
    frame["low"], frame["high"] = wilson_interval(yes, answered)
    order = {t: i for i, t in enumerate(_vocabulary_order(frame["tactic"], schema.TACTICS))}
    return frame.sort_values("tactic", key=lambda s: s.map(order)).reset_index(drop=True)


# --- 3. harm when each tactic was used ----------------------------------------------------


def harm_when_used(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                   by: str = "tactic") -> pd.DataFrame:
    """Return per tactic (or type of force) the reports using it and the harm rates among them."""
    if by not in BY_LABELS:
        raise ValueError(f"harm_when_used counts by tactic or tactic_group, not {by!r}")
    keyed = _keyed(engine, ds, scope)
    keys = ["tactic", "tactic_group"] if by == "tactic" else ["tactic_group"]
    scan = fastpath.tactic_scan(engine, ds, filters, scope)
    if scan is not None:
        frame, overall = _scanned_harm(scan, keys, keyed)
    else:
        reports = filtered_reports(engine, ds, filters, scope)
        used = _used_tactics(engine, ds, filters, scope)
        pairs = used.select("report_id", *keys)
        pairs = pairs.mutate(tactic_group=pairs.tactic_group.fill_null(UNCLASSIFIED)).distinct()
        harm = reports.select("report_id", *schema.HARM_FIELDS, *([cellkey.RECORD_KEY] if keyed else []))
        joined = pairs.join(harm, "report_id")
        frame = engine.execute(joined.group_by(keys).aggregate(**_counted(joined, keyed),
                                                               **harm_metrics(joined, keyed=keyed)))
        overall = engine.execute(reports.aggregate(**_counted(reports, keyed),
                                                   **harm_metrics(reports, keyed=keyed)))
    if keyed:  # published counts; every rate below, the overall ones too, is computed from them
        frame, overall = _published_harm(frame), _published_harm(overall)
    overall = overall.iloc[0]
    if "tactic" not in frame:
        frame["tactic"] = frame["tactic_group"]
    frame = add_rates(frame)
    for col in schema.HARM_FIELDS:
        yes, answered = int(overall[f"{col}_yes"]), int(overall[f"{col}_answered"])
        frame[f"{col}_overall"] = yes / answered if answered else np.nan
        # The counts behind the overall rate, so disclosure control can hide it with them.
        frame[f"{col}_overall_yes"], frame[f"{col}_overall_answered"] = yes, answered
        frame[f"{col}_unanswered"] = frame["reports"] - frame[f"{col}_answered"]
    vocabulary = schema.TACTICS if by == "tactic" else (*schema.TACTIC_GROUPS, UNCLASSIFIED)
    order = {t: i for i, t in enumerate(_vocabulary_order(frame["tactic"], vocabulary))}
    return frame.sort_values("tactic", key=lambda s: s.map(order)).reset_index(drop=True)


def _published_harm(frame: pd.DataFrame) -> pd.DataFrame:
    """Return reports and harm counts as published: perturbed, answered within reports, yes within answered."""
    answered = [(f"{c}_answered", "reports") for c in schema.HARM_FIELDS]
    yes = [(f"{c}_yes", f"{c}_answered") for c in schema.HARM_FIELDS]
    counts = ["reports", *(part for part, _ in answered), *(part for part, _ in yes)]
    return cellkey.perturb_frame(frame, counts, nested=[*answered, *yes])


def injury_measures(summary: Summary) -> tuple[str, ...]:
    """Return the injury fields (officer, subject) that at least one report in view answers."""
    return tuple(m for m in INJURY_MEASURES if summary.rates[m].denominator != 0)  # None: hidden, not absent


def missing_injuries(summary: Summary) -> list[str]:
    """Return the labels of the injury rates no report in view answers (empty when all are there)."""
    return [schema.HARM_FIELDS[m] for m in INJURY_MEASURES if summary.rates[m].denominator == 0]


# --- 4. co-occurrence ---------------------------------------------------------------------


def co_occurrence(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                  top: int = TOP_TACTICS) -> pd.DataFrame:
    """Return, for the most-used tactics, reports using each pair and the share of the row tactic's reports."""
    keyed = _keyed(engine, ds, scope)
    scan = fastpath.tactic_scan(engine, ds, filters, scope)
    if scan is not None:
        ranked = _scanned_ranks(scan, keyed)
    else:
        used = _used_tactics(engine, ds, filters, scope, keyed)
        ranked = engine.execute(used.group_by("tactic").aggregate(**_counted(used, keyed)))
    columns = ["tactic", "other", "both", "tactic_reports", "other_reports", "share"]
    if ranked.empty:
        return pd.DataFrame(columns=columns)
    if keyed:  # published counts, and the most-used tactics chosen by them
        ranked = cellkey.perturb_frame(ranked, ["reports"])
    ranked = ranked.sort_values(["reports", "tactic"], ascending=[False, True]).head(top)
    chosen = ranked["tactic"].tolist()
    if scan is not None:
        both = _scanned_pairs(scan, chosen, keyed)
    else:
        pairs = used.filter(used.tactic.isin(chosen)).select("report_id", "tactic",
                                                             *([cellkey.RECORD_KEY] if keyed else []))
        other = pairs.select(report_id=pairs.report_id, other=pairs.tactic)
        joined = pairs.join(other, "report_id")
        # A pair and its mirror count the same reports, so they get the same key sum and the same adjustment.
        both = engine.execute(joined.group_by(["tactic", "other"]).aggregate(**_counted(joined, keyed, "both")))
    grid = pd.MultiIndex.from_product([chosen, chosen], names=["tactic", "other"])
    values = ["both", CK("both")] if keyed else ["both"]
    frame = both.set_index(["tactic", "other"])[values].reindex(grid, fill_value=0).reset_index()
    frame["both"] = frame["both"].astype("int64")
    reports = dict(zip(ranked["tactic"], ranked["reports"].astype("int64"), strict=True))
    frame["tactic_reports"] = frame["tactic"].map(reports)
    frame["other_reports"] = frame["other"].map(reports)
    if keyed:  # a pair within each of its tactics' reports: the smaller of the two, so it stays symmetric
        frame = cellkey.perturb_frame(frame, ["both"],
                                      nested=[("both", "tactic_reports"), ("both", "other_reports")])
    frame["share"] = frame["both"] / frame["tactic_reports"]
    return frame[columns]


# --- 5. the Taser (CED) ladder ------------------------------------------------------------


def taser_ladder(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports at each highest CED level, their share of CED reports and of all reports."""
    keyed = _keyed(engine, ds, scope)
    scan = fastpath.tactic_scan(engine, ds, filters, scope)
    if scan is not None:
        counts, everything = _scanned_ladder(scan, keyed)
    else:
        reports = filtered_reports(engine, ds, filters, scope)
        used = _used_tactics(engine, ds, filters, scope, keyed)
        ced = used.filter(used.tactic.isin(list(schema.CED_LADDER)))
        # The data already keeps one CED use per report; taking the highest again here makes the
        # ladder honest even for a dataset loaded from Parquet written elsewhere.
        ranked = ced.mutate(rank=ced.tactic.cases(*schema.CED_RANK.items()).cast("int64"))
        per_report = {"rank": ranked["rank"].max()}
        if keyed:  # a report's rows all carry its one record key
            per_report[cellkey.RECORD_KEY] = ranked[cellkey.RECORD_KEY].max()
        highest = ranked.group_by("report_id").aggregate(**per_report)
        counts = engine.execute(highest.group_by("rank").aggregate(**_counted(highest, keyed)))
        everything = engine.execute(reports.aggregate(**_counted(reports, keyed))).iloc[0]
    total = int(everything["reports"])
    frame = pd.DataFrame({"level": list(schema.CED_LADDER), "rank": range(len(schema.CED_LADDER))})
    rank = counts["rank"].astype(int)
    frame["reports"] = frame["rank"].map(dict(zip(rank, counts["reports"], strict=True))).fillna(0).astype("int64")
    ced_reports = int(frame["reports"].sum())
    # Reaching at least a level: this level or any above it, counted down from the top.
    reaching = frame["reports"].to_numpy()[::-1].cumsum()[::-1]
    if keyed:
        keys = frame["rank"].map(dict(zip(rank, counts[CK("reports")], strict=True))).fillna(0).to_numpy("int64")
        level, reaching, ced_reports, total = _published_ladder(frame["reports"].to_numpy(), keys, total,
                                                                int(everything[CK("reports")]))
        frame["reports"] = level
    frame["ced_reports"] = ced_reports
    frame["all_reports"] = total
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["share"] = frame["reports"] / ced_reports if ced_reports else np.nan
        frame["at_least"] = reaching / ced_reports if ced_reports else np.nan
    frame["share_low"], frame["share_high"] = wilson_interval(frame["reports"].to_numpy(), ced_reports)
    frame["ced_share_of_reports"] = ced_reports / total if total else np.nan
    low, high = wilson_interval(ced_reports, total)
    frame["ced_share_low"], frame["ced_share_high"] = float(low), float(high)
    return frame


def _published_ladder(reports: np.ndarray, keys: np.ndarray, total: int,
                      total_key: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Return the ladder's published counts: reports per level, reaching each level, CED reports, all reports.

    Reaching at least a level is a count of its own (the reports at it or above, their keys summed), so the
    lowest level is reached by exactly the published CED reports; fewer never reach a lower level than a
    higher one, and a level holds no more reports than reach it.
    """
    everything = cellkey.perturb_one(total, total_key)
    ced = min(cellkey.perturb_one(int(reports.sum()), int(keys.sum())), everything)
    reaching = cellkey.perturb(reports[::-1].cumsum()[::-1], keys[::-1].cumsum()[::-1])
    reaching = np.minimum(np.maximum.accumulate(reaching[::-1])[::-1], ced)
    return np.minimum(cellkey.perturb(reports, keys), reaching), reaching, ced, everything


# --- the one-scan path: tactic masks expanded into tactics ------------------------------------
#
# Each function below returns the frame its Ibis query above returns (same columns, same counts), from
# `fastpath.tactic_scan`: reports counted by month and tactic mask, where bit b of a mask says the report
# recorded scan.bits[b] = (tactic, tactic_group). A report uses a label (a tactic, a type of force) when any
# of the label's bits is set; it holds as many (report, tactic) rows as it has bits of that tactic.


def _label_masks(bits: tuple[tuple[str | None, str | None], ...], label) -> tuple[list, np.ndarray]:
    """Return the distinct labels of the bits (in first-seen order) and, per label, the mask of its bits."""
    masks: dict[object, int] = {}
    for bit, pair in enumerate(bits):
        key = label(pair)
        masks[key] = masks.get(key, 0) | (1 << bit)
    return list(masks), np.array(list(masks.values()), dtype=np.uint64)


def _uses(masks: np.ndarray, label_masks: np.ndarray) -> np.ndarray:
    """Return (rows x labels): whether each row's mask sets any bit of each label."""
    return (masks[:, None] & label_masks[None, :]) != 0


def _bit_counts(masks: np.ndarray, label_masks: np.ndarray) -> np.ndarray:
    """Return (rows x labels): how many of each label's bits each row's mask sets."""
    return np.bitwise_count(masks[:, None] & label_masks[None, :]).astype(np.int64)


def _count_columns(keyed: bool, name: str = "reports") -> list[str]:
    return [name, CK(name)] if keyed else [name]


def _text(values: list) -> pd.Series:
    """Return labels as the engine gives text: a string column, unknown as missing."""
    return pd.Series(values, dtype="str")


def _scanned_use(scan: TacticScan, keyed: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return use_over_time's month totals and reports per month and type of force, from the scan."""
    rows = scan.months
    month = rows["_month"].astype("datetime64[s]")
    names = _count_columns(keyed)
    values = {n: rows[n].to_numpy(dtype=np.int64) for n in names}
    totals = pd.DataFrame({"month": month, **values}).groupby("month", sort=False, dropna=False).sum().reset_index()
    totals = totals.rename(columns=dict(zip(names, _count_columns(keyed, "total_reports"), strict=True)))
    groups, group_masks = _label_masks(scan.bits, lambda pair: pair[1] if pair[1] is not None else UNCLASSIFIED)
    row, group = np.nonzero(_uses(rows["_tactics"].to_numpy(dtype=np.uint64), group_masks))
    counts = pd.DataFrame({"month": month.to_numpy()[row], "tactic_group": _text([groups[g] for g in group]),
                           **{n: v[row] for n, v in values.items()}})
    counts = counts.groupby(["month", "tactic_group"], sort=False, dropna=False).sum().reset_index()
    return totals, counts


def _scanned_effectiveness(scan: TacticScan, keyed: bool) -> pd.DataFrame:
    """Return effectiveness's uses, answers and key sums per (tactic, tactic_group), from the scan."""
    rows = scan.answers
    count = rows["reports"].to_numpy(dtype=np.int64)
    key = rows[CK("reports")].to_numpy(dtype=np.int64) if keyed else None
    bit_masks = np.array([1 << b for b in range(len(scan.bits))], dtype=np.uint64)
    names = {"uses": "_tactics", "effective_yes": "_effective_yes", "answered": "_effective_answered"}
    hits = {name: _uses(rows[column].to_numpy(dtype=np.uint64), bit_masks) for name, column in names.items()}
    found = hits["uses"].any(axis=0)  # a pair no report in view uses is not a row
    frame = pd.DataFrame({"tactic": _text([p[0] for p in scan.bits]), "tactic_group": _text([p[1] for p in scan.bits])})
    for name, hit in hits.items():
        frame[name] = count @ hit
    if keyed:
        for name, hit in hits.items():
            frame[CK(name)] = key @ hit
    return frame[found].reset_index(drop=True)


def _scanned_harm(scan: TacticScan, keys: list[str], keyed: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return harm_when_used's counts per label and over all reports in view, from the scan."""
    rows = scan.months
    counts = rows[fastpath._names(keyed)].to_numpy(dtype=np.int64)
    # Columns in the order the Ibis query gives them: reports (and its key sum), then the harm metrics.
    harm = [f"{c}_{k}" for c in schema.HARM_FIELDS for k in ("yes", "answered")]
    order = [*_count_columns(keyed), *([CK(c) for c in harm] if keyed else []), *harm]
    at = {name: i for i, name in enumerate(fastpath._names(keyed))}
    columns = [at[name] for name in order]

    def label(pair: tuple[str | None, str | None]) -> tuple[str | None, str]:
        group = pair[1] if pair[1] is not None else UNCLASSIFIED
        return (pair[0], group) if "tactic" in keys else (group,)

    labels, label_masks = _label_masks(scan.bits, label)
    hit = _uses(rows["_tactics"].to_numpy(dtype=np.uint64), label_masks)
    sums = hit.T.astype(np.int64) @ counts[:, columns]
    found = hit.any(axis=0)
    frame = pd.DataFrame({k: _text([lab[i] for lab in labels]) for i, k in enumerate(keys)})
    frame = pd.concat([frame, pd.DataFrame(sums, columns=order)], axis=1)[found].reset_index(drop=True)
    overall = pd.DataFrame(counts[:, columns].sum(axis=0, keepdims=True), columns=order)
    return frame, overall


def _scanned_ranks(scan: TacticScan, keyed: bool) -> pd.DataFrame:
    """Return co_occurrence's (report, tactic) rows per tactic and their key sums, from the scan."""
    rows = scan.months
    tactics, tactic_masks = _label_masks(scan.bits, lambda pair: pair[0])
    per_row = _bit_counts(rows["_tactics"].to_numpy(dtype=np.uint64), tactic_masks)
    frame = pd.DataFrame({"tactic": _text(tactics)})
    for name in _count_columns(keyed):
        frame[name] = rows[name].to_numpy(dtype=np.int64) @ per_row
    return frame[per_row.any(axis=0)].reset_index(drop=True)


def _scanned_pairs(scan: TacticScan, chosen: list, keyed: bool) -> pd.DataFrame:
    """Return co_occurrence's rows per pair of chosen tactics (a report's rows of one times the other's)."""
    rows = scan.months
    known = [t for t in chosen if t is not None and not (isinstance(t, float) and np.isnan(t))]
    masks = np.array([sum(1 << b for b, pair in enumerate(scan.bits) if pair[0] == t) for t in known],
                     dtype=np.uint64)
    per_row = _bit_counts(rows["_tactics"].to_numpy(dtype=np.uint64), masks)
    values = {}
    for name, column in zip(_count_columns(keyed, "both"), _count_columns(keyed), strict=True):
        weights = rows[column].to_numpy(dtype=np.int64)
        values[name] = (per_row.T @ (per_row * weights[:, None])).reshape(-1)
    frame = pd.DataFrame({"tactic": _text([t for t in known for _ in known]),
                          "other": _text([o for _ in known for o in known]), **values})
    return frame[frame["both"] > 0].reset_index(drop=True)


def _scanned_ladder(scan: TacticScan, keyed: bool) -> tuple[pd.DataFrame, pd.Series]:
    """Return taser_ladder's reports (and key sums) per highest CED level and over all reports in view."""
    rows = scan.months
    masks = rows["_tactics"].to_numpy(dtype=np.uint64)
    highest = np.full(len(rows), -1, dtype=np.int64)
    for bit, (tactic, _) in enumerate(scan.bits):
        if tactic in schema.CED_RANK:
            used = (masks >> np.uint64(bit)) & np.uint64(1) == 1
            highest = np.where(used, np.maximum(highest, schema.CED_RANK[tactic]), highest)
    names = _count_columns(keyed)
    values = {n: rows[n].to_numpy(dtype=np.int64) for n in names}
    ced = highest >= 0
    counts = pd.DataFrame({"rank": highest[ced], **{n: v[ced] for n, v in values.items()}})
    counts = counts.groupby("rank", sort=False).sum().reset_index()
    everything = pd.Series({n: int(v.sum()) for n, v in values.items()})
    return counts, everything
