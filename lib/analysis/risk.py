"""Officer risk analytics: rates by two dimensions, rate ratios against a reference, funnel plots.

Every function starts from `filtered_reports` (through `query.breakdown`), so scope and filters
apply, and returns a small frame with the counts behind every rate. Comparisons carry
intervals; groups are judged against funnel limits, never ranked bare.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.analysis import stats
from lib.engine import query
from lib.engine.query import Filters, Scope
from lib.engine.store import Dataset, Engine
from lib.model import schema

# Below this many answering reports a heatmap cell is greyed out rather than coloured.
MIN_CELL = 30
FUNNEL_LEVELS = ("area", "team")
# Officer-level views are personal data: only callers allowed to see them ask for this level.
OFFICER_LEVEL = "officer"
RATIO_DIMENSIONS = ("shift", "officer_role", "location_type", "single_crewed", "tactic_group")


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


def rate_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                dimension: str, reference: str | None = None) -> pd.DataFrame:
    """Return each group's rate ratio against a reference group (default: the largest), with 95% intervals."""
    _check_measure(measure)
    if dimension == "tactic_group":
        return tactic_group_ratios(engine, ds, filters, scope, measure)
    frame = query.breakdown(engine, ds, filters, scope, (dimension,))
    frame = frame[frame[dimension] != query.NOT_RECORDED]
    yes, answered = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    groups = frame[dimension].astype(str).tolist()
    if not groups:
        return pd.DataFrame(columns=["dimension", "group", "reference", "ratio", "ci_low", "ci_high",
                                     "yes", "answered", "reference_yes", "reference_answered"])
    if reference not in groups:
        reference = groups[int(np.argmax(answered))]
    ref = groups.index(reference)
    ratio = stats.rate_ratio(yes, answered, np.full(len(groups), yes[ref]), np.full(len(groups), answered[ref]))
    return pd.DataFrame({
        "dimension": dimension, "group": groups, "reference": reference,
        "ratio": ratio.ratio, "ci_low": ratio.low, "ci_high": ratio.high,
        "yes": yes, "answered": answered,
        "reference_yes": yes[ref], "reference_answered": answered[ref],
    })


def funnel(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
           level: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return each group's rate against volume with its verdict, and the 95% / 99.8% limit curves."""
    _check_measure(measure)
    if level not in (*FUNNEL_LEVELS, OFFICER_LEVEL):
        raise ValueError(f"funnel level must be one of {(*FUNNEL_LEVELS, OFFICER_LEVEL)}")
    frame = (by_officer(engine, ds, filters, scope) if level == OFFICER_LEVEL
             else query.breakdown(engine, ds, filters, scope, (level,)))
    frame = frame[(frame[level] != query.NOT_RECORDED) & (frame[f"{measure}_answered"] > 0)]
    x, n = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    if len(frame) == 0:
        empty = pd.DataFrame(columns=["group", "yes", "answered", "rate", "expected", "low", "high", "flag"])
        return empty, pd.DataFrame(columns=["denominator", "low_95", "high_95", "low_998", "high_998"])
    overall = float(x.sum() / n.sum())
    flags = stats.flag_outliers(x, n, level=0.998, overall=overall)
    points = pd.DataFrame({"group": frame[level].astype(str).to_numpy(), "yes": x, "answered": n,
                           "rate": flags["rate"].to_numpy(), "expected": flags["expected"].to_numpy(),
                           "low": flags["low"].to_numpy(), "high": flags["high"].to_numpy(),
                           "flag": flags["flag"].to_numpy()})
    grid = np.unique(np.round(np.geomspace(max(1, n.min()), n.max() * 1.05, 80)))
    limits = stats.funnel_limits(grid, overall)
    limits["overall"] = overall
    return points.sort_values("rate", ascending=False).reset_index(drop=True), limits


def outliers(points: pd.DataFrame) -> pd.DataFrame:
    """Return the groups above the upper 99.8% limit, highest rate first."""
    return points[points["flag"] == stats.HIGHER].sort_values("rate", ascending=False).reset_index(drop=True)


def funnel_sentence(points: pd.DataFrame, level: str) -> str:
    """Say what the funnel plot shows, without ranking groups."""
    if not len(points):
        return f"No {level} has answering reports in this view."
    high = int((points["flag"] == stats.HIGHER).sum())
    low = int((points["flag"] == stats.LOWER).sum())
    hidden = int(points["flag"].isna().sum())  # disclosure control hid their rates
    rest = len(points) - high - low - hidden
    text = f"Of {len(points):,} {level}s, {high} {'is' if high == 1 else 'are'} higher than expected"
    text += f" (above the 99.8% limit), {low} lower than expected, and {rest:,} not distinguishable from the average"
    if hidden:
        text += f"; {hidden:,} {'is' if hidden == 1 else 'are'} not shown: too few reports to publish"
    return text + "."


def by_officer(engine: Engine, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports and harm counts per (pseudonymised) officer, column `officer`."""
    t = query.filtered_reports(engine, ds, filters, scope)
    t = t.filter(t.officer_id.notnull())
    metrics = {}
    for col in schema.HARM_FIELDS:
        metrics[f"{col}_yes"] = t[col].sum().fill_null(0)
        metrics[f"{col}_answered"] = t[col].count()
    frame = engine.execute(t.group_by(officer=t.officer_id).aggregate(reports=t.count(), **metrics))
    return query.add_rates(frame)


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
    frame = by_officer(engine, ds, filters, scope)
    # Sorted by officer: the rank draws depend on the order of groups, and the engine's order is not fixed,
    # so without this the same view could show different rank intervals from one reload to the next.
    frame = frame[frame[f"{measure}_answered"] > 0].sort_values("officer", kind="stable").reset_index(drop=True)
    if frame.empty:
        nothing = stats.Heterogeneity(float("nan"), float("nan"), 0, 0)
        return Exposure(measure, 0, nothing, None, pd.DataFrame())
    x, n = frame[f"{measure}_yes"].to_numpy(), frame[f"{measure}_answered"].to_numpy()
    verdict = stats.heterogeneity_test(x, n, seed=0)
    shrinkage = stats.shrunken_rates(x, n)
    shared = shared_incident_count(engine, ds, filters, scope, measure)
    result = Exposure(measure, len(frame), verdict, shrinkage.prior, pd.DataFrame(), shared)
    if not result.differ:
        # Officers differ no more than chance makes them differ: any list of "the highest" would rank luck.
        return result
    ranks = stats.rank_intervals(x, n, draws=1000, seed=0)
    shrunk = shrinkage.table
    frame = frame.assign(shrunken=shrunk["shrunken"].to_numpy(), low=shrunk["low"].to_numpy(),
                         high=shrunk["high"].to_numpy(), rank_low=ranks["rank_low"].to_numpy(),
                         rank_high=ranks["rank_high"].to_numpy(), officers=len(frame))
    chosen = frame.sort_values(["shrunken", "officer"], ascending=[False, True], kind="stable").head(top)
    t = query.filtered_reports(engine, ds, filters, scope)
    tactics = engine.tactics(ds)
    mine = t.filter(t.officer_id.isin(chosen["officer"].tolist()))
    own = engine.execute(mine.group_by(officer=mine.officer_id).aggregate(**_mix(mine, tactics)))
    # Each officer's most frequent role, counted here: Spark has no mode() in Ibis (ties go to the first name).
    roles = engine.execute(mine.group_by(officer=mine.officer_id, role=mine.officer_role.cast("string"))
                           .aggregate(n=mine.count())).dropna(subset=["role"])
    roles = roles.sort_values(["officer", "n", "role"], ascending=[True, False, True]).drop_duplicates("officer")
    own = roles[["officer", "role"]].merge(own, on="officer", how="right")
    peers = engine.execute(t.group_by(role=t.officer_role.cast("string")).aggregate(
        **{f"peer_{k}": v for k, v in _mix(t, tactics).items()}))
    same = same_incident_comparison(engine, ds, filters, scope, measure, tuple(chosen["officer"]))
    out = chosen.merge(own, on="officer", how="left").merge(peers, on="role", how="left")
    out = out.merge(same, on="officer", how="left")
    table = out.sort_values(["shrunken", "officer"], ascending=[False, True]).reset_index(drop=True)
    return Exposure(measure, len(frame), verdict, shrinkage.prior, table, shared)


SAME_INCIDENT_COLUMNS = ("shared_incidents", "shared_informative", "shared_reports", "shared_yes", "shared_expected",
                         "shared_variance", "shared_ratio", "shared_low", "shared_high", "shared_p")


def _shared_cells(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str):
    # One row per (incident, officer) with the officer's answering reports and yes answers there, for incidents
    # where two or more officers answered: the strata of the same-incident comparison.
    t = query.filtered_reports(engine, ds, filters, scope)
    t = t.filter(t.officer_id.notnull(), t.incident_id.notnull(), t[measure].notnull())
    cells = t.group_by(incident=t.incident_id, officer=t.officer_id).aggregate(
        own=t.count(), yes=t[measure].cast("int64").sum())
    incidents = cells.group_by("incident").aggregate(size=cells.own.sum(), events=cells.yes.sum(),
                                                     present=cells.count())
    return cells, incidents.filter(incidents.present >= 2)


def shared_incident_count(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str) -> int:
    """Return how many incidents in view have answering reports from two or more officers."""
    _, incidents = _shared_cells(engine, ds, filters, scope, measure)
    return int(engine.execute(incidents.aggregate(n=incidents.count()))["n"].iloc[0])


def same_incident_comparison(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                             officers: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Compare each officer's harm with the other officers' at the same incidents (observed against expected)."""
    _check_measure(measure)
    cells, incidents = _shared_cells(engine, ds, filters, scope, measure)
    if officers is not None:
        cells = cells.filter(cells.officer.isin(list(officers)))
    joined = cells.join(incidents, "incident")
    rows = engine.execute(joined.select("incident", "officer", "own", "yes", "size", "events"))
    columns = ["officer", *SAME_INCIDENT_COLUMNS]
    if rows.empty:
        return pd.DataFrame(columns=columns)
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


def same_incident_note(exposure: Exposure) -> str:
    """Explain the same-incident comparison, or say why there is none."""
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


def tactic_group_ratios(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str) -> pd.DataFrame:
    """Return, per type of force, the rate in reports using it against the rate in reports not using it."""
    _check_measure(measure)
    t = query.filtered_reports(engine, ds, filters, scope)
    tactics = engine.tactics(ds)
    total = engine.execute(t.aggregate(yes=t[measure].sum().fill_null(0), answered=t[measure].count()))
    used = tactics.filter(tactics.report_id.isin(t.report_id))
    pairs = used.select(report_id=used.report_id, group=used.tactic_group.cast("string")).distinct()
    joined = pairs.join(t.select("report_id", measure), "report_id")
    frame = engine.execute(joined.group_by("group").aggregate(yes=joined[measure].sum().fill_null(0),
                                                              answered=joined[measure].count()))
    frame = frame[frame["group"].notna() & (frame["group"] != "Tactical communication")]
    x1, n1 = frame["yes"].to_numpy(), frame["answered"].to_numpy()
    x0, n0 = int(total["yes"].iloc[0]) - x1, int(total["answered"].iloc[0]) - n1
    ratio = stats.rate_ratio(x1, n1, x0, n0)
    return pd.DataFrame({
        "dimension": "tactic_group", "group": "Using " + frame["group"].to_numpy(dtype=object),
        "reference": "not using it", "ratio": ratio.ratio, "ci_low": ratio.low, "ci_high": ratio.high,
        "yes": x1, "answered": n1, "reference_yes": x0, "reference_answered": n0,
    }).sort_values("ratio", ascending=False).reset_index(drop=True)
