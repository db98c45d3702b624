"""Officer risk analytics: rates by two dimensions, rate ratios against a reference, funnel plots.

Every function starts from `filtered_reports` (through `query.breakdown`), so scope and filters
apply, and returns a small frame with the counts behind every rate. Comparisons carry
intervals; groups are judged against funnel limits, never ranked bare. Rate ratios are crude or adjusted
for case mix (lib/analysis/adjust.py), and the frame says which.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd

from lib.analysis import adjust, stats
from lib.engine import fastpath, query
from lib.engine.query import Filters, Scope
from lib.engine.store import Dataset, Engine
from lib.model import schema
from lib.privacy import cellkey

# Below this many answering reports a heatmap cell is greyed out rather than coloured.
MIN_CELL = 30
FUNNEL_LEVELS = ("area", "team")
# Funnel verdicts (see lib/analysis/stats.py): groups under this many answered reports are shown, never judged;
# a flag also needs a false discovery rate under FUNNEL_FDR.
FUNNEL_MIN_VOLUME = stats.FUNNEL_MIN_VOLUME
FUNNEL_FDR = stats.FUNNEL_FDR
# Officer-level views are personal data: only callers allowed to see them ask for this level.
OFFICER_LEVEL = "officer"
# "tactic" compares each tactic (Taser fired, drawn, ...) with reports not using it, beside the types of force.
RATIO_DIMENSIONS = ("shift", "officer_role", "location_type", "single_crewed", "tactic_group", "tactic")
RATIO_LABELS: dict[str, str] = adjust.LABELS  # the dimensions' names, and "Each tactic"


def ratio_dimensions(perturbed: bool) -> list[str]:
    """Return the groups a rate ratio may compare: roles grouped under disclosure control (a demonstration, a
    viewer), where the smaller single roles would be hidden."""
    return [query.shown_dimension(d, perturbed) for d in RATIO_DIMENSIONS]


def _check_measure(measure: str) -> None:
    if measure not in schema.HARM_FIELDS:
        raise ValueError(f"unknown measure {measure!r}; measures are {', '.join(schema.HARM_FIELDS)}")


def rate_grid(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
              rows: str, cols: str) -> pd.DataFrame:
    """Return the measure's rate per 100 answering reports for each pair of two dimensions."""
    _check_measure(measure)
    frame = query.breakdown(engine, ds, filters, scope, (rows, cols))
    out = pd.DataFrame({
        rows: frame[rows], cols: frame[cols], "reports": frame["reports"],
        "yes": frame[f"{measure}_yes"], "answered": frame[f"{measure}_answered"],
        "per_100": frame[f"{measure}_rate"] * 100,
        "low_100": frame[f"{measure}_low"] * 100, "high_100": frame[f"{measure}_high"] * 100,
    })
    out["enough"] = out["answered"] >= MIN_CELL
    return out


def no_time_of_day(grid: pd.DataFrame, hour: str = "hour") -> bool:
    """Say whether a grid by hour (or four-hour band) shows an extract with no time of day: nearly every report
    with a time at midnight (a date without a time is read as 00:00), which would draw as a spike at hour 0."""
    if hour not in grid or "reports" not in grid:
        return False
    first = 0 if hour == "hour" else query.DIMENSION_ORDER["hours"][0]
    known = grid[grid[hour].astype(str) != query.NOT_RECORDED]
    reports = pd.to_numeric(known["reports"], errors="coerce")
    total = float(reports.sum())
    at_first = float(reports[known[hour] == first].sum())
    others = reports[known[hour] != first]
    return total >= 20 and at_first / total >= 0.95 and not (others.fillna(0) >= MIN_CELL).any()


def rate_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                dimension: str, reference: str | None = None, adjust_for: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return each group's rate ratio against a reference group (default: the largest), with 95% intervals.

    Crude when `adjust_for` is empty; otherwise adjusted for those dimensions by modified Poisson regression
    (lib/analysis/adjust.py). Columns `adjusted_for` and `method` say which.
    """
    _check_measure(measure)
    if adjust_for:
        return adjust.adjusted_ratios(engine, ds, filters, scope, measure, dimension, tuple(adjust_for), reference)
    if dimension in adjust.TACTIC_DIMENSIONS:
        return _using_ratios(engine, ds, filters, scope, measure, dimension)
    frame = query.breakdown(engine, ds, filters, scope, (dimension,))
    frame = frame[frame[dimension] != query.NOT_RECORDED]
    yes, answered = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    groups = frame[dimension].astype(str).tolist()
    if not groups:
        return pd.DataFrame(columns=adjust.RATIO_COLUMNS)
    if reference not in groups:
        reference = groups[int(np.argmax(answered))]
    ref = groups.index(reference)
    ratio = stats.rate_ratio(yes, answered, np.full(len(groups), yes[ref]), np.full(len(groups), answered[ref]))
    return pd.DataFrame({
        "dimension": dimension, "group": groups, "reference": reference,
        "ratio": ratio.ratio, "ci_low": ratio.low, "ci_high": ratio.high,
        "yes": yes, "answered": answered,
        "reference_yes": yes[ref], "reference_answered": answered[ref],
        "adjusted_for": [()] * len(groups), "method": adjust.CRUDE_METHOD,
    })


def ratios_caption(ratios: pd.DataFrame, sentence: str, unit: str = "reports") -> str:
    """Say what a forest plot of rate ratios shows: the view, the unit, crude or adjusted, and what is not drawn.

    `unit` is what the measure counts (incidents for a field recorded once per incident): crude ratios between
    groups count it, while the tactic comparisons and the model count reports.
    """
    adjusted = bool(len(ratios)) and "adjusted_for" in ratios.columns and bool(ratios["adjusted_for"].iloc[0])
    per_report = adjusted or (bool(len(ratios)) and str(ratios["dimension"].iloc[0]) in adjust.TACTIC_DIMENSIONS)
    text = (f"{sentence}. Counting unit: {'reports' if per_report else unit} answering the question. "
            f"Rate ratios {adjust.basis_of(ratios)}")
    if adjusted:
        text += (" (Poisson regression with robust intervals clustered by incident; unknown values of an "
                 "adjustment are a level of their own)")
    return text + (f". A ratio of 2 means twice the reference's rate; an interval that crosses 1 cannot tell the "
                   f"group from the reference. Groups with fewer than {stats.MIN_DENOMINATOR} answering reports "
                   "(or a reference that small) are listed as too few to compare and groups with no events as "
                   "no events: neither is drawn or judged.")


def funnel(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
           level: str, adjust_for: tuple[str, ...] = (), expected: pd.Series | None = None,
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return each group's rate against volume with its verdict, and the 95% / 99.8% limit curves.

    Verdicts follow `stats.judge_funnel`: exact mid-p against the other groups' robust rate, groups under
    FUNNEL_MIN_VOLUME answered reports shown but not judged, overdispersion applied when present, and a
    false-discovery-rate check. With `expected` (expected counts per group label, from a case-mix model) each group's
    observed count is judged against its expected one, and the points carry `model_expected` and `ratio` (O / E).
    With `adjust_for` the expected counts come from `adjust.expected_counts` (a Poisson model of the case mix named,
    without the level judged), and groups are counted in answering reports.
    """
    _check_measure(measure)
    if level not in (*FUNNEL_LEVELS, OFFICER_LEVEL):
        raise ValueError(f"funnel level must be one of {(*FUNNEL_LEVELS, OFFICER_LEVEL)}")
    if level == OFFICER_LEVEL:
        adjust.refuse_officer_level(scope, "an officer funnel")
    if adjust_for and expected is None:
        model = adjust.expected_counts(engine, ds, filters, scope, measure, level, tuple(adjust_for))
        frame = pd.DataFrame({level: model["group"], f"{measure}_yes": model["observed"],
                              f"{measure}_answered": model["reports"]})
        expected = pd.Series(model["expected"].to_numpy(), index=model["group"].astype(str))
    else:
        frame = (by_officer(engine, ds, filters, scope) if level == OFFICER_LEVEL
                 else query.breakdown(engine, ds, filters, scope, (level,)))
    frame = frame[(frame[level] != query.NOT_RECORDED) & (frame[f"{measure}_answered"] > 0)]
    basis = "crude" if expected is None else "expected"
    if len(frame) == 0:
        return pd.DataFrame(columns=POINT_COLUMNS), pd.DataFrame(columns=LIMIT_COLUMNS)
    groups = frame[level].astype(str).to_numpy()
    x, n = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    model = None if expected is None else expected.rename(index=str).reindex(groups).to_numpy(dtype="float64")
    verdicts = stats.judge_funnel(x, n, expected=model)
    table = verdicts.table
    points = pd.DataFrame({"group": groups, "yes": x, "answered": n,
                           "rate": np.where(n > 0, x / np.maximum(n, 1), np.nan),
                           "expected": table["expected"].to_numpy(), "low": table["low"].to_numpy(),
                           "high": table["high"].to_numpy(), "flag": table["flag"].to_numpy(),
                           "p_value": table["p_value"].to_numpy(), "q_value": table["q_value"].to_numpy(),
                           "judged": table["judged"].to_numpy(), "target": table["target"].to_numpy(),
                           "basis": basis})
    if model is not None:
        points["model_expected"] = model
        points["ratio"] = table["rate"].to_numpy()  # observed / model-expected
    # The x axis: answered reports (crude) or the model's expected count (against expected).
    axis = n.astype("float64") if model is None else model[np.isfinite(model) & (model > 0)]
    bottom = (max(1.0, float(axis.min())) if model is None else float(axis.min())) if axis.size else 1.0
    top = max(float(axis.max()), bottom) if axis.size else 1.0
    limits = funnel_curves(verdicts, np.geomspace(bottom, top * 1.05, 80), basis)
    sort = "rate" if model is None else "ratio"
    return points.sort_values(sort, ascending=False).reset_index(drop=True), limits


POINT_COLUMNS = ["group", "yes", "answered", "rate", "expected", "low", "high", "flag", "p_value", "q_value", "judged",
                 "target", "basis"]
LIMIT_COLUMNS = ["denominator", "low_95", "high_95", "low_998", "high_998", "overall", "tau2", "phi", "phi_p_value",
                 "overdispersion_applied", "judged_groups", "expected_by_chance", "min_volume", "basis"]


def _curves(grid: np.ndarray, target: float, basis: str, tau2: float) -> pd.DataFrame:
    """Return the 95% and 99.8% limits around a target over a grid of volumes (or expected counts)."""
    kind = "proportion" if basis == "crude" else "poisson"
    # Whole numbers of answered reports on the crude axis; expected counts are continuous.
    points = np.unique(np.round(grid)) if basis == "crude" else np.unique(grid)
    return stats.calibrated_limits(points, target, kind=kind, tau2=tau2)


def funnel_curves(verdicts: stats.FunnelVerdicts, grid: np.ndarray, basis: str = "crude") -> pd.DataFrame:
    """Return the 95% and 99.8% curves around the robust target at each volume, with how they were drawn."""
    od = verdicts.overdispersion
    tau2 = od.tau2 if verdicts.applied else 0.0
    return _curves(grid, verdicts.target, basis, tau2).assign(
        overall=verdicts.target, tau2=tau2, phi=od.phi, phi_p_value=od.p_value,
        overdispersion_applied=verdicts.applied, judged_groups=verdicts.judged,
        expected_by_chance=verdicts.expected_by_chance, min_volume=verdicts.min_volume, basis=basis)


def redraw_limits(limits: pd.DataFrame, grid: np.ndarray) -> pd.DataFrame:
    """Return the same funnel curves drawn over another grid of volumes (the method columns kept)."""
    if not len(limits):
        return limits
    first = limits.iloc[0]
    out = _curves(grid, float(first["overall"]), str(first.get("basis", "crude")), float(first.get("tau2", 0.0)))
    for column in limits.columns:
        if column not in out.columns:
            out[column] = first[column]
    return out


def funnel_adjustment(level: str) -> tuple[str, ...]:
    """Return the case mix a funnel of this level is judged against: the default adjustment, less the level."""
    return tuple(d for d in adjust.DEFAULT_ADJUSTMENT if d != level)


def funnel_unit(points: pd.DataFrame, level: str, unit: str) -> str:
    """Say what a funnel counts: the measure's unit for areas and teams, reports for officers and the model."""
    expected = bool(len(points)) and "basis" in points.columns and str(points["basis"].iloc[0]) == "expected"
    return "reports" if level == OFFICER_LEVEL or expected else unit


def outliers(points: pd.DataFrame) -> pd.DataFrame:
    """Return the groups judged higher than expected (beyond the 99.8% limit and the FDR check), highest first."""
    sort = "ratio" if "ratio" in points.columns else "rate"
    return points[points["flag"] == stats.HIGHER].sort_values(sort, ascending=False).reset_index(drop=True)


def funnel_sentence(points: pd.DataFrame, level: str, limits: pd.DataFrame | None = None) -> str:
    """Say what the funnel plot shows, how many judged groups chance alone would flag, without ranking groups."""
    if not len(points):
        return f"No {level} has answering reports in this view."
    flags = points["flag"]
    judged = (points["judged"].fillna(False).astype(bool) if "judged" in points.columns
              else flags.notna() & (flags != stats.TOO_FEW))
    high = int((flags == stats.HIGHER).sum())
    low = int((flags == stats.LOWER).sum())
    few = int((flags == stats.TOO_FEW).sum())
    hidden = int(flags.isna().sum())  # disclosure control hid their rates
    rest = int(judged.sum()) - high - low
    plural = f"{level}s"
    count = int(judged.sum())
    text = (f"Of {len(points):,} {plural}, {count:,} {'has' if count == 1 else 'have'} at least "
            f"{stats.FUNNEL_MIN_VOLUME} answering reports and {'is' if count == 1 else 'are'} judged: "
            f"{high} {'is' if high == 1 else 'are'} higher than expected (above the 99.8% limit, with a false "
            f"discovery rate under {stats.FUNNEL_FDR:.0%}), {low} lower than expected, and {rest:,} not "
            "distinguishable from the average")
    if few:
        text += f"; {few:,} {'has' if few == 1 else 'have'} too few reports to judge and {'is' if few == 1 else 'are'}"
        text += " drawn in light grey"
    if hidden:
        text += f"; {hidden:,} {'is' if hidden == 1 else 'are'} not shown: too few reports to publish"
    chance = stats.expected_by_chance(int(judged.sum()))
    text += (f". By chance alone, about {about(chance)} of the {int(judged.sum()):,} judged {plural} would lie above "
             "the 99.8% limit.")
    if limits is not None and len(limits) and "overdispersion_applied" in limits.columns:
        first = limits.iloc[0]
        if bool(first["overdispersion_applied"]):
            text += (f" The {plural} differ more than chance allows (overdispersion {float(first['phi']):.2f}, "
                     f"p {_p_text(float(first['phi_p_value']))}), so the limits are widened for it (random effects).")
    return text


def about(value: float) -> str:
    """Return a count expected by chance, rounded as it would be said: 0.2, 1.5, 12."""
    if not np.isfinite(value) or value <= 0:
        return "0"
    if value >= 10:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}".removesuffix(".0")
    return f"{value:.1g}"


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def by_officer(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports and harm counts per (pseudonymised) officer, column `officer` (never under a perturbed scope)."""
    adjust.refuse_officer_level(scope, "counts per officer")
    counts = fastpath.officer_counts(engine, ds, filters, scope)
    if counts is not None:
        return query.add_rates(_named(engine, ds, counts.frame))
    t = query.filtered_reports(engine, ds, filters, scope)
    t = t.filter(t.officer_id.notnull())
    metrics = {}
    for col in schema.HARM_FIELDS:
        metrics[f"{col}_yes"] = t[col].sum().fill_null(0)
        metrics[f"{col}_answered"] = t[col].count()
    frame = engine.execute(t.group_by(officer=t.officer_id).aggregate(reports=t.count(), **metrics))
    return query.add_rates(frame)


def _named(engine: Engine, ds: Dataset, frame: pd.DataFrame) -> pd.DataFrame:
    """Return officers counted by key (fastpath.officer_counts) with their ids in column `officer` instead."""
    named = frame.drop(columns="_officer_key").reset_index(drop=True)
    named.insert(0, "officer", fastpath.officer_names(engine, ds).names(frame["_officer_key"].to_numpy()))
    return named


# What each officer's reports look like, against peers in the same role: the drivers of exposure.
MIX_INDICATORS: dict[str, str] = {
    "night": "Night shift",
    "single": "Single crewed",
    "resisting": "Aggressive or serious resistance",
    "dwelling": "In a dwelling",
    "ced": "Taser (CED) used",
    "ground": "Ground restraint used",
}


def _mix(t, tactics):
    ced = tactics.filter(tactics.tactic.cast("string").isin(list(schema.CED_LADDER))).report_id
    ground = tactics.filter(tactics.tactic.cast("string") == "Ground restraint").report_id
    return {
        "night": (t.shift.cast("string") == "Night").mean(),
        "single": t.single_crewed.mean(),
        "resisting": t.resistance.cast("string").isin(
            ["Aggressive resistance", "Serious or aggravated resistance"]).mean(),
        "dwelling": (t.location_type.cast("string") == "Dwelling").mean(),
        "ced": t.report_id.isin(ced).mean(),
        "ground": t.report_id.isin(ground).mean(),
    }


# The same-incident comparison judges an officer only where the officers present differed in outcome at this many
# of the officer's shared incidents; below it the counts are shown but not judged.
MIN_INFORMATIVE_INCIDENTS = 5


@dataclass(frozen=True)
class Exposure:
    """Whether officers' rates differ beyond chance and, only when they do, those with the highest shrunken rates."""

    measure: str
    officers: int | None  # officers with answering reports (None: hidden by disclosure control)
    heterogeneity: stats.Heterogeneity
    prior: stats.BetaPrior | None
    table: pd.DataFrame  # the top officers; empty when they do not differ beyond chance
    shared_incidents: int = 0  # incidents in view with two or more officers reporting (the peer comparison's base)

    @property
    def differ(self) -> bool:
        """Say whether officers differ beyond chance, so that a list of the highest says something."""
        return self.heterogeneity.differ and self.prior is not None and not self.prior.pooled


def officer_exposure(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                     top: int = 15) -> Exposure:
    """Test whether officers' rates differ beyond chance; if they do, list the highest shrunken rates with peers."""
    _check_measure(measure)
    adjust.refuse_officer_level(scope, "officers' exposure to harm")
    counts = fastpath.officer_counts(engine, ds, filters, scope)
    if counts is None:
        frame = by_officer(engine, ds, filters, scope)
        # Sorted by officer: the rank draws depend on the order of groups, and the engine's order is not fixed,
        # so without this the same view could show different rank intervals from one reload to the next.
        frame = frame[frame[f"{measure}_answered"] > 0].sort_values("officer", kind="stable").reset_index(drop=True)
    else:  # counted by officer key, already in officer id order: officers are named only where listed
        frame = counts.frame[counts.frame[f"{measure}_answered"] > 0].reset_index(drop=True)
    if frame.empty:
        nothing = stats.Heterogeneity(float("nan"), float("nan"), 0, 0)
        return Exposure(measure, 0, nothing, None, pd.DataFrame())
    x, n = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    # The statistics run on two other threads while the engine counts on this one (the caller's thread, with its
    # own cursor or connection): the draws release the interpreter lock. Each piece is the same computation as
    # alone, so every figure is the same; at 5,000,000 reports this function's first call went from 1.8 s to 1.45 s.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="officer-exposure") as pool:
        testing = pool.submit(stats.heterogeneity_test, x, n, seed=0)
        shrinking = pool.submit(stats.shrunken_rates, x, n)
        shared = shared_incident_count(engine, ds, filters, scope, measure)
        verdict, shrinkage = testing.result(), shrinking.result()
        if not verdict.differ:
            # Officers differ no more than chance makes them differ: any list of "the highest" would rank luck.
            return Exposure(measure, len(frame), verdict, shrinkage.prior, pd.DataFrame(), shared)
        return _highest(engine, ds, filters, scope, measure, top, frame, counts, x, n, verdict, shrinkage,
                        shared, pool)


def _highest(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str, top: int,
             frame: pd.DataFrame, counts: fastpath.OfficerCounts | None, x: np.ndarray, n: np.ndarray,
             verdict: stats.Heterogeneity, shrinkage: stats.Shrinkage, shared: int,
             pool: ThreadPoolExecutor) -> Exposure:
    """The officer table of `officer_exposure` once officers differ: the highest shrunken rates, ranked, with peers."""
    shrunk = shrinkage.table
    shrunken = shrunk["shrunken"].to_numpy()
    # Highest shrunken rate first, ties in officer id order: the frame's rows are in officer id order.
    order = np.lexsort((np.arange(len(frame)), -shrunken))[:top]
    chosen = frame.iloc[order]
    if counts is not None:
        chosen = query.add_rates(_named(engine, ds, chosen)).set_axis(chosen.index)
    chosen = chosen.assign(shrunken=shrunken[order], low=shrunk["low"].to_numpy()[order],
                           high=shrunk["high"].to_numpy()[order])
    # Only the listed officers are ranked (among all of them): each one's place has the distribution it has when
    # everyone is ranked, drawn without drawing hundreds of thousands of officers a thousand times. The draws run
    # on the other thread while the engine counts the listed officers' mix and shared incidents here.
    ranking = pool.submit(stats.rank_intervals, x, n, draws=1000, seed=0, only=chosen.index.to_numpy(),
                          shrinkage=shrinkage)
    mix = (None if counts is None else
           fastpath.officer_mix(engine, ds, filters, scope, frame["_officer_key"].to_numpy()[order]))
    peers = None if counts is None else fastpath.peer_mix(engine, ds, filters, scope)
    if mix is None or peers is None:
        t = query.filtered_reports(engine, ds, filters, scope)
        tactics = engine.tactics(ds)
        mine = t.filter(t.officer_id.isin(chosen["officer"].tolist()))
        own = engine.execute(mine.group_by(officer=mine.officer_id).aggregate(**_mix(mine, tactics)))
        # Each officer's most frequent role, counted here: Spark has no mode() in Ibis (ties go to the first name).
        roles = engine.execute(mine.group_by(officer=mine.officer_id, role=mine.officer_role.cast("string"))
                               .aggregate(n=mine.count()))
        peers = engine.execute(t.group_by(role=t.officer_role.cast("string")).aggregate(
            **{f"peer_{k}": v for k, v in _mix(t, tactics).items()}))
    else:
        known = fastpath.officer_names(engine, ds)
        own, roles = (f.assign(_officer_key=known.names(f["_officer_key"].to_numpy())).rename(
            columns={"_officer_key": "officer"}) for f in mix)
    roles = roles.dropna(subset=["role"])
    roles = roles.sort_values(["officer", "n", "role"], ascending=[True, False, True]).drop_duplicates("officer")
    own = roles[["officer", "role"]].merge(own, on="officer", how="right")
    same = same_incident_comparison(engine, ds, filters, scope, measure, tuple(chosen["officer"]))
    ranks = ranking.result()
    chosen = chosen.assign(rank_low=ranks["rank_low"].to_numpy(), rank_high=ranks["rank_high"].to_numpy(),
                           officers=len(frame))
    out = chosen.merge(own, on="officer", how="left").merge(peers, on="role", how="left")
    out = out.merge(same, on="officer", how="left")
    table = out.sort_values(["shrunken", "officer"], ascending=[False, True]).reset_index(drop=True)
    return Exposure(measure, len(frame), verdict, shrinkage.prior, table, shared)


SAME_INCIDENT_COLUMNS = ("shared_incidents", "shared_informative", "shared_reports", "shared_yes", "shared_expected",
                         "shared_variance", "shared_ratio", "shared_low", "shared_high", "shared_p")


def _answering(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str) -> ibis.Table:
    # The reports in view with an officer, an incident and an answer: what the same-incident comparison counts.
    adjust.refuse_officer_level(scope, "the same-incident comparison of officers")
    t = query.filtered_reports(engine, ds, filters, scope)
    return t.filter(t.officer_id.notnull(), t.incident_id.notnull(), t[measure].notnull())


def _shared_cells(t: ibis.Table, measure: str) -> tuple[ibis.Table, ibis.Table]:
    # One row per (incident, officer) with the officer's answering reports and yes answers there, for incidents
    # where two or more officers answered: the strata of the same-incident comparison.
    cells = t.group_by(incident=t.incident_id, officer=t.officer_id).aggregate(
        own=t.count(), yes=t[measure].ifelse(1, 0).sum())
    incidents = cells.group_by("incident").aggregate(size=cells.own.sum(), events=cells.yes.sum(),
                                                     present=cells.count())
    return cells, incidents.filter(incidents.present >= 2)


def shared_incident_count(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str) -> int:
    """Return how many incidents in view have answering reports from two or more officers."""
    t = _answering(engine, ds, filters, scope, measure)
    found = fastpath.shared_incidents(engine, ds, filters, scope, measure)
    if found is not None:
        return found
    # Two or more officers answered exactly when the smallest and largest officer id differ: one pass over the
    # reports, not a count of (incident, officer) cells first.
    per = t.group_by(incident=t.incident_id).aggregate(first=t.officer_id.min(), last=t.officer_id.max())
    shared = per.filter(per.first != per.last)
    return int(engine.execute(shared.aggregate(n=shared.count()))["n"].iloc[0])


def same_incident_comparison(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                             officers: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Compare each officer's harm with the other officers' at the same incidents (observed against expected)."""
    _check_measure(measure)
    t = _answering(engine, ds, filters, scope, measure)
    rows = None if officers is None else _same_incident_rows(engine, ds, filters, scope, measure, officers)
    if rows is not None:
        return _same_incident_table(rows)
    if officers is not None:
        # Only the incidents of the officers asked about, with every officer's reports there: the strata are the
        # same, counted over a few thousand reports instead of every report in view.
        mine = t.filter(t.officer_id.isin(list(officers)))
        t = t.filter(t.incident_id.isin(mine.incident_id))
    cells, incidents = _shared_cells(t, measure)
    if officers is not None:
        cells = cells.filter(cells.officer.isin(list(officers)))
    joined = cells.join(incidents, "incident")
    return _same_incident_table(engine.execute(joined.select("incident", "officer", "own", "yes", "size", "events")))


def _same_incident_rows(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                        officers: tuple[str, ...]) -> pd.DataFrame | None:
    """Return the named officers' same-incident cells counted by integer keys (DuckDB), or None to use Ibis."""
    counts = fastpath.officer_counts(engine, ds, filters, scope)
    if counts is None:
        return None
    known = fastpath.officer_names(engine, ds)
    rows = fastpath.same_incident_cells(engine, ds, filters, scope, measure, known.keys(officers))
    return None if rows is None else rows.assign(officer=known.names(rows["officer"].to_numpy()))


def _same_incident_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Return each officer's observed and expected harm at shared incidents from their (incident, officer) cells."""
    columns = ["officer", *SAME_INCIDENT_COLUMNS]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    # The engine's row order is not fixed: sorted, the sums below come out to the same last digit every time.
    rows = rows.sort_values(["officer", "incident"], kind="stable").reset_index(drop=True)
    # Expected: the officer's reports times the incident's harm share among all officers present; a stratum
    # where everyone (or no one) was harmed has no variance and says nothing about the officer.
    expected, variance = stats.stratum_expectation(rows["own"], rows["events"], rows["size"])
    rows = rows.assign(expected=expected, variance=variance, informative=variance > 0)
    per = rows.groupby("officer", sort=True).agg(
        shared_incidents=("incident", "nunique"), shared_informative=("informative", "sum"),
        shared_reports=("own", "sum"), shared_yes=("yes", "sum"), shared_expected=("expected", "sum"),
        shared_variance=("variance", "sum")).reset_index()
    compared = stats.observed_expected(per["shared_yes"], per["shared_expected"], per["shared_variance"])
    per["shared_ratio"], per["shared_low"], per["shared_high"] = compared.ratio, compared.low, compared.high
    per["shared_p"] = compared.p_value
    for col in ("shared_incidents", "shared_informative", "shared_reports", "shared_yes"):
        per[col] = per[col].astype("int64")
    return per[columns]


def peer_verdict(row: pd.Series, level: float = 0.05) -> str | None:
    """Say how an officer's harm compares with the other officers' at the same incidents (None: no shared ones)."""
    if pd.isna(row.get("shared_incidents")) or not row.get("shared_incidents"):
        return None
    if pd.isna(row.get("shared_yes")) or pd.isna(row.get("shared_informative")):
        return "not shown: too few to publish"
    informative = int(row["shared_informative"])
    if informative < MIN_INFORMATIVE_INCIDENTS:
        return f"not judged: outcomes differed among the officers present at only {informative} shared incidents"
    head = f"{int(row['shared_yes'])} against {row['shared_expected']:.1f} expected"
    if row["shared_p"] < level:
        side = "more" if row["shared_yes"] > row["shared_expected"] else "less"
        return f"{head}: {side} than the other officers at the same incidents"
    return f"{head}: not distinguishable from the other officers at the same incidents"


def _noun(measure: str) -> str:
    # "Officer injury rate" -> "injury"; "Subject injury rate" -> "subject injury".
    return schema.HARM_FIELDS[measure].removesuffix(" rate").removeprefix("Officer ").lower()


def exposure_verdict(exposure: Exposure) -> str:
    """Say whether officers differ beyond chance, and so whether listing the highest means anything."""
    noun = _noun(exposure.measure)
    test = exposure.heterogeneity
    officers = "" if exposure.officers is None else f" over {exposure.officers:,} officers"
    if not np.isfinite(test.p_value):
        return (f"There is too little to test whether officers' {noun} rates differ (a test needs two or more "
                "officers with two or more answering reports, and some reports saying yes): no officer is "
                "singled out.")
    floor = 1 / (test.draws + 1) if test.draws else 0.0
    # A Monte Carlo p-value can be no smaller than 1 / (draws + 1): say "at most" there.
    p = f"p ≤ {test.p_value:.3f}" if test.p_value <= floor else f"p = {test.p_value:.3f}"
    where = f"Tarone's test for spread beyond chance{officers}: {p}"
    if not exposure.differ:
        return (f"These officers' {noun} rates do not differ more than chance would make them differ: no officer "
                f"is singled out ({where}). A list of the highest would rank luck.")
    spread = exposure.prior.spread if exposure.prior is not None else 0.0
    mean = exposure.prior.mean if exposure.prior is not None else float("nan")
    return (f"Officers' {noun} rates differ more than chance would make them differ ({where}): their underlying "
            f"rates spread around {mean:.1%} with a standard deviation of about {spread * 100:.1f} percentage "
            "points.")


def regression_note(exposure: Exposure) -> str:
    """Warn that the highest observed rates usually fall next period, with the listed officers' own figures."""
    table = exposure.table
    if table.empty:
        return ""
    yes, answered = table[f"{exposure.measure}_yes"], table[f"{exposure.measure}_answered"]
    shown = yes.notna() & answered.notna() & table["shrunken"].notna()
    text = ("Regression to the mean: officers reach the top of any list partly by chance, so the highest observed "
            "rates usually fall next period even if nothing changes.")
    if shown.any():
        raw = float(yes[shown].sum() / answered[shown].sum())
        text += (f" These officers' observed rate together is {raw:.1%}; their shrunken rates (average "
                 f"{table.loc[shown, 'shrunken'].mean():.1%}) are the model's forecast for them and already allow "
                 "for part of the fall. Read the list as where to look first, not as a finding about anyone.")
    return text


def same_incident_note(exposure: Exposure, incidents: bool = True) -> str:
    """Explain the same-incident comparison, or say why there is none (`incidents`: the extract records an id)."""
    if not incidents:
        return ("This extract records no incident id, so officers cannot be compared with the other officers at the "
                "same incidents.")
    if not exposure.shared_incidents:
        return ("No incident in this view has reports from two or more officers (or no incident ids are recorded), "
                "so officers cannot be compared with others at the same incidents.")
    return (f"Same incidents: each listed officer against the other officers at the same incidents "
            f"({exposure.shared_incidents:,} incidents in view have two or more officers reporting). Expected is "
            "the sum, over the officer's shared incidents, of the officer's reports times the share of all "
            "officers' reports there that said yes, so the place, the subject and how they resisted are held "
            "fixed. Incidents where everyone, or no one, said yes carry no information (injury recorded once "
            "per incident and copied to every officer gives none). Two-sided p-value from the hypergeometric "
            f"variance; judged only with {MIN_INFORMATIVE_INCIDENTS} or more informative incidents.")


def drivers(row: pd.Series, threshold: float = 1.5) -> str:
    """Say how an officer's reports differ from peers in the same role (shares at least 1.5 times theirs)."""
    found = []
    for key, label in MIX_INDICATORS.items():
        own, peer = row.get(key), row.get(f"peer_{key}")
        if pd.notna(own) and pd.notna(peer) and peer > 0 and own >= threshold * peer and own >= 0.2:
            found.append(f"{label} {own:.0%} (peers {peer:.0%})")
    return "; ".join(found) or "no mix much different from peers in the same role"


def tactic_group_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                        adjust_for: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return, per type of force, the rate in reports using it against the rate in reports not using it."""
    return rate_ratios(engine, ds, filters, scope, measure, "tactic_group", adjust_for=adjust_for)


def tactic_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                  adjust_for: tuple[str, ...] = ()) -> pd.DataFrame:
    """Return, per tactic (Taser fired, drawn, ...), the rate in reports using it against reports not using it."""
    return rate_ratios(engine, ds, filters, scope, measure, "tactic", adjust_for=adjust_for)


def _using_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                  column: str) -> pd.DataFrame:
    """Return crude ratios of reports using each value of a tactics column against reports not using it.

    Under a perturbed scope the counts of the reports using a tactic, and of all reports in view, are published
    through the cell key method; the reports not using it are the published total less the published users, so
    the comparison adds nothing a viewer could not work out from published counts.
    """
    keyed = scope.perturbed
    if keyed:
        query.require_keys(engine, ds)
    t = query.filtered_reports(engine, ds, filters, scope)
    tactics = engine.tactics(ds)
    total = engine.execute(t.aggregate(yes=t[measure].sum().fill_null(0), answered=t[measure].count(),
                                       **_yes_answered_keys(t, measure, keyed)))
    used = tactics.filter(tactics.report_id.isin(t.report_id))
    pairs = used.select(report_id=used.report_id, group=used[column].cast("string")).distinct()
    joined = pairs.join(t.select("report_id", measure, *([cellkey.RECORD_KEY] if keyed else [])), "report_id")
    frame = engine.execute(joined.group_by("group").aggregate(yes=joined[measure].sum().fill_null(0),
                                                              answered=joined[measure].count(),
                                                              **_yes_answered_keys(joined, measure, keyed)))
    frame = frame[frame["group"].notna() & (frame["group"] != "Tactical communication")]
    if keyed:  # published counts: every ratio and interval below is computed from them
        nested = [("yes", "answered")]
        total = cellkey.perturb_frame(total, ["yes", "answered"], nested)
        frame = cellkey.perturb_frame(frame, ["yes", "answered"], nested)
    order = {v: i for i, v in enumerate(adjust.tactic_order(column))}
    frame = frame.assign(_order=frame["group"].map(order).fillna(len(order))).sort_values(["_order", "group"])
    x1, n1 = frame["yes"].to_numpy(dtype="int64"), frame["answered"].to_numpy(dtype="int64")
    x0, n0 = int(total["yes"].iloc[0]) - x1, int(total["answered"].iloc[0]) - n1
    if keyed:  # a difference of two adjusted counts can fall below zero, or its part above its whole
        n0 = np.maximum(n0, 0)
        x0 = np.clip(x0, 0, n0)
    ratio = stats.rate_ratio(x1, n1, x0, n0)
    return pd.DataFrame({
        "dimension": column, "group": "Using " + frame["group"].to_numpy(dtype=object),
        "reference": "not using it", "ratio": ratio.ratio, "ci_low": ratio.low, "ci_high": ratio.high,
        "yes": x1, "answered": n1, "reference_yes": x0, "reference_answered": n0,
        "adjusted_for": [()] * len(frame), "method": adjust.CRUDE_METHOD,
    }).reset_index(drop=True)


def _yes_answered_keys(t: ibis.Table, measure: str, keyed: bool) -> dict[str, ibis.Expr]:
    """Return the key sums of a measure's yes and answered counts over a table's reports (none when not keyed)."""
    if not keyed:
        return {}
    return {cellkey.key_column("yes"): query.key_sum(t, t[measure].fill_null(False)),
            cellkey.key_column("answered"): query.key_sum(t, t[measure].notnull())}


def funnel_method(limits: pd.DataFrame) -> str:
    """Say how the funnel's verdicts were reached: test, target, minimum volume, overdispersion, FDR."""
    if not len(limits) or "overall" not in limits.columns:
        return ""
    first = limits.iloc[0]
    expected = str(first.get("basis", "crude")) == "expected"
    text = ("Crude rates (not adjusted for case mix). " if not expected else
            "Observed against expected counts from the case-mix model (indirect standardisation). ")
    text += (f"Each group is judged by an exact one-sided mid-p test ({'Poisson' if expected else 'binomial'}) "
             "against the other groups' pooled rate, outliers down-weighted (the line shows it for all groups); "
             f"groups under {stats.FUNNEL_MIN_VOLUME} answering reports are drawn but not judged; a flag needs both "
             f"the 99.8% limit and a false discovery rate (Benjamini-Hochberg) under {stats.FUNNEL_FDR:.0%}. ")
    phi, p = float(first.get("phi", np.nan)), float(first.get("phi_p_value", np.nan))
    if bool(first.get("overdispersion_applied", False)):
        text += (f"Overdispersion applied: the groups vary beyond chance (phi {phi:.2f}, p {_p_text(p)}), so the "
                 "limits are widened by random effects.")
    elif np.isfinite(phi):
        text += (f"No overdispersion beyond chance (phi {phi:.2f}, p {_p_text(p)}; applied only when p < "
                 f"{stats.OVERDISPERSION_P}): exact limits.")
    else:
        text += "Too few judged groups to estimate overdispersion: exact limits."
    return text


def funnel_summary(points: pd.DataFrame, limits: pd.DataFrame) -> dict:
    """Return how the funnel judged its groups, JSON-ready: method, minimum volume, counts, chance flags."""
    judged = int(points["judged"].fillna(False).astype(bool).sum()) if "judged" in points.columns else 0
    first = limits.iloc[0] if len(limits) else pd.Series(dtype=object)
    phi = float(first.get("phi", np.nan))
    return {
        "method": funnel_method(limits),
        "basis": str(first.get("basis", "crude")),
        "minimum_volume": int(stats.FUNNEL_MIN_VOLUME),
        "groups_compared": int(len(points)),
        "groups_judged": judged,
        "false_discovery_rate": stats.FUNNEL_FDR,
        "expected_by_chance": round(stats.expected_by_chance(judged), 6),
        "overdispersion_applied": bool(first.get("overdispersion_applied", False)),
        "overdispersion_phi": round(phi, 6) if np.isfinite(phi) else None,
    }
