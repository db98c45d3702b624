"""Differencing attacks on what a viewer sees, asked through `python -m lib.summary DATASET --protect viewer`.

    python -m bench.differencing                    # the bundled sample, then 1,000,000 synthetic reports
    python -m bench.differencing --forces 4 --measures officer_injured
    python -m bench.differencing --many-paths "Kent Police"     # average every run of months instead
    make bench-differencing

A curious viewer has only the JSON the command prints (the same code as the app's viewer pages). For a
fixed sample of forces and each measure, the search looks for hidden (`null`) overall counts (the
measure's yes count and its answered count) and tries to recover each exactly:

- **date overlap**: a count hidden in one whole month is (a run of months starting with it) minus (the
  same run without it): months m..last minus m+1..last ("forward"), and first..m minus first..m-1
  ("backward"), two differencing paths over different reports' cells;
- **filter complement**: a count hidden for one value of a dimension within a force is (all the
  dimension's values) minus (all but this one), over the whole period; a second path adds that
  difference for each of the two years. Every report-level filter of the sidebar is searched, every
  value the force has. The tactic filters are left out: a report can record several tactics, so all
  tactics minus all but one is not the reports that used that one, even in exact figures.

Each estimate is compared with the exact count an analyst gets for the same question (`query.summarise`
unperturbed: the figures `lib.summary` prints without --protect). It prints, per dataset: hidden values
targeted, recovered exactly by one difference (the issue's attack) and by a sharper guess (the two
paths' mean, rounded and clamped to what a hidden count can be), the mean absolute perturbation of
every published count the search saw, and how often two paths that agree are exact;
then the same search with its paths asked of the analyst's exact figures, which gets every value back, and
the search on exact figures under suppression alone (what a viewer had before the cell key method).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from lib import ingest, summary
from lib.engine import query
from lib.engine.filters import FILTER_KINDS, month_end, month_start
from lib.engine.query import UNRESTRICTED
from lib.engine.store import Dataset, Engine
from lib.model import schema
from lib.model.settings import DEFAULT_DISCLOSURE_THRESHOLD
from lib.privacy import cellkey

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
FIELDS = ("numerator", "denominator")  # the overall yes count and answered count of the measure
# Report-level filters: one value per report, so a value's reports are all of them less the others'.
SEARCHED = tuple(k for k in FILTER_KINDS if k.table == "reports" and k.field != "forces")

# A hidden count was published from 1 to the threshold less one (zero is shown), so it is at least 1 and at most
# the threshold less one plus the largest adjustment: an attacker clamps an estimate to that range.
LOWEST, HIGHEST = 1, DEFAULT_DISCLOSURE_THRESHOLD - 1 + cellkey.MAX_ADJUSTMENT
Period = tuple[date, date]
Counts = dict[str, int | None]
Ask = Callable[[str, Period, dict[str, tuple[str, ...]]], Counts | None]


def engine_for_cli() -> Engine:
    """Return an engine built as `lib.summary` builds its own (record keys, pseudonymised ids)."""
    return Engine(read_file=ingest.read_file, pseudonymise=ingest.pseudonymise_ids, record_keys=ingest.record_keys)


class Viewer:
    """Ask `lib.summary ... --protect viewer` in-process (its `main`, stdout captured): what a viewer reads."""

    def __init__(self, dataset: Path, engine: Engine, by: str = "area") -> None:
        self.dataset, self.engine, self.by = dataset, engine, by
        self.asked = 0
        self._answers: dict[tuple[str, ...], Counts | None] = {}

    def argv(self, measure: str, period: Period, filters: dict[str, tuple[str, ...]]) -> list[str]:
        """Return the command line a viewer would type for one question."""
        argv = [str(self.dataset), "--by", self.by, "--measure", measure,
                "--from", period[0].isoformat(), "--to", period[1].isoformat(), "--protect", "viewer"]
        for name, values in sorted(filters.items()):
            for value in values:
                argv += [summary.FILTER_FLAGS[name], value]
        return argv

    def __call__(self, measure: str, period: Period, filters: dict[str, tuple[str, ...]]) -> Counts | None:
        """Return the overall counts as published (None for a refused selection; a hidden count is None)."""
        argv = self.argv(measure, period, filters)
        key = tuple(argv)
        if key not in self._answers:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = summary.main(argv, engine=self.engine)
            if code != 0:
                raise RuntimeError(f"lib.summary exited {code} for {argv}")
            self.asked += 1
            doc = json.loads(out.getvalue())
            self._answers[key] = None if doc.get("shown") is False else {f: doc["overall"][f] for f in FIELDS}
        return self._answers[key]


class Analyst:
    """The exact figures for the same questions: the unperturbed headline an analyst's `lib.summary` prints."""

    def __init__(self, engine: Engine, ds: Dataset) -> None:
        self.engine, self.ds = engine, ds
        self._answers: dict[tuple, dict[str, Counts]] = {}

    def __call__(self, measure: str, period: Period, filters: dict[str, tuple[str, ...]]) -> Counts:
        """Return the exact overall counts of a measure for one question."""
        key = (period, tuple(sorted(filters.items())))
        if key not in self._answers:
            chosen = query.filters_from_mapping({"date_from": period[0], "date_to": period[1], **filters})
            rates = query.summarise(self.engine, self.ds, chosen, UNRESTRICTED).rates
            self._answers[key] = {m: {"numerator": r.numerator, "denominator": r.denominator}
                                  for m, r in rates.items()}
        return self._answers[key][measure]


@dataclass(frozen=True)
class Target:
    """One hidden value and the attacker's estimates of it, one per differencing path (None: a term was hidden)."""

    attack: str
    force: str
    measure: str
    field: str
    cell: str
    exact: int
    paths: tuple[int | None, ...]

    @property
    def difference(self) -> int | None:
        """Return the issue's attack: one difference (the first path that gives one), taken as it is."""
        return next((p for p in self.paths if p is not None), None)

    @property
    def estimate(self) -> int | None:
        """Return a sharper attacker's guess: the paths' mean, rounded, within what a hidden count can be."""
        given = [p for p in self.paths if p is not None]
        if not given:
            return None
        return int(min(max(round(sum(given) / len(given)), LOWEST), HIGHEST))

    @property
    def recovered(self) -> bool:
        """Say whether one difference gives the exact hidden value."""
        return self.difference == self.exact

    @property
    def guessed(self) -> bool:
        """Say whether the sharper guess (paths averaged, clamped) is the exact hidden value."""
        return self.estimate == self.exact


@dataclass
class Search:
    """What a search found: its targets and every published count it saw beside the exact one."""

    targets: list[Target] = field(default_factory=list)
    published: list[tuple[int, int]] = field(default_factory=list)  # (published, exact)

    def extend(self, other: Search) -> None:
        """Add another search's findings to this one."""
        self.targets += other.targets
        self.published += other.published

    def figures(self) -> dict[str, object]:
        """Return the search's figures: targeted, recovered, share, perturbation and path agreement."""
        recovered = sum(t.recovered for t in self.targets)
        two = [t for t in self.targets if len(t.paths) > 1 and None not in t.paths[:2]]
        agree = [t for t in two if t.paths[0] == t.paths[1]]
        diffs = np.array([abs(p - e) for p, e in self.published], dtype=float)
        guessed = sum(t.guessed for t in self.targets)
        # The yardstick of a guess with no differencing at all: the commonest hidden value, said for every one.
        common = Counter(t.exact for t in self.targets).most_common(1)
        return {"hidden_targeted": len(self.targets), "recovered_exactly": recovered,
                "share": recovered / len(self.targets) if self.targets else float("nan"),
                "guessed_exactly": guessed,
                "guessed_share": guessed / len(self.targets) if self.targets else float("nan"),
                "commonest_value": common[0][0] if common else None,
                "commonest_share": common[0][1] / len(self.targets) if common else float("nan"),
                "by_attack": {a: (sum(t.recovered for t in self.targets if t.attack == a),
                                  sum(t.attack == a for t in self.targets))
                              for a in sorted({t.attack for t in self.targets})},
                "published_counts_seen": len(self.published),
                "mean_absolute_perturbation": float(diffs.mean()) if len(diffs) else float("nan"),
                "share_perturbed": float((diffs > 0).mean()) if len(diffs) else float("nan"),
                "max_perturbation": int(diffs.max()) if len(diffs) else 0,
                "two_paths": len(two), "paths_agree": len(agree),
                # Agreeing paths as the attacker reads them: clamped to what a hidden count can be.
                "exact_when_agree": sum(t.guessed for t in agree),
                "exact_share_when_agree": sum(t.guessed for t in agree) / len(agree) if agree else float("nan"),
                "exact_share_when_disagree": (sum(t.guessed for t in two if t not in agree)
                                              / max(1, len(two) - len(agree)))}


def _difference(whole: Counts | None, part: Counts | None, name: str) -> int | None:
    if whole is None or part is None or whole[name] is None or part[name] is None:
        return None
    return int(whole[name]) - int(part[name])


def months_of(ds: Dataset) -> list[Period]:
    """Return the whole calendar months a dataset spans, first to last."""
    first, last = month_start(ds.first.date()), month_end(ds.last.date())
    out: list[Period] = []
    while first <= last:
        out.append((first, month_end(first)))
        first = date.fromordinal(month_end(first).toordinal() + 1)
    return out


def _see(search: Search, published: Counts | None, exact: Counts) -> None:
    """Note every count a viewer saw published beside its exact value (for the mean perturbation)."""
    if published is None:
        return
    for name in FIELDS:
        if published[name] is not None:
            search.published.append((int(published[name]), int(exact[name])))


def date_overlap(ask: Ask, truth: Ask, ds: Dataset, force: str, measure: str, terms: Ask | None = None) -> Search:
    """Recover counts hidden in single months from runs of months that overlap them (two paths).

    `terms`, when given, answers the paths' questions instead of `ask` (the exact figures: does the arithmetic
    give the hidden value back when nothing is perturbed?).
    """
    search = Search()
    months = months_of(ds)
    scope = {"forces": (force,)}

    def seen(period: Period) -> Counts | None:
        published = ask(measure, period, scope)
        _see(search, published, truth(measure, period, scope))
        return published

    def term(period: Period) -> Counts | None:
        return seen(period) if terms is None else terms(measure, period, scope)

    first, last = months[0][0], months[-1][1]
    for i, month in enumerate(months):
        single = seen(month)
        if single is None:
            continue
        for name in FIELDS:
            if single[name] is not None:
                continue
            forward = (_difference(term((month[0], last)), term((months[i + 1][0], last)), name)
                       if i + 1 < len(months) else None)
            backward = _difference(term((first, month[1])), term((first, months[i - 1][1])), name) if i else None
            search.targets.append(Target("date overlap", force, measure, name, f"{month[0]:%b %Y}",
                                         int(truth(measure, month, scope)[name]), (forward, backward)))
    return search


def date_many_paths(ask: Ask, truth: Ask, ds: Dataset, force: str, measure: str) -> Search:
    """Recover counts hidden in single months from every run of months that starts or ends with them.

    Each run with and without the month is another difference over other cells, so a determined viewer
    can average many of them: this measures how far that gets (many questions per hidden value).
    """
    search = Search()
    months = months_of(ds)
    scope = {"forces": (force,)}

    def seen(period: Period) -> Counts | None:
        published = ask(measure, period, scope)
        _see(search, published, truth(measure, period, scope))
        return published

    for i, month in enumerate(months):
        single = seen(month)
        if single is None:
            continue
        for name in FIELDS:
            if single[name] is not None:
                continue
            paths = [_difference(seen((month[0], end[1])), seen((months[i + 1][0], end[1])), name)
                     for end in months[i + 1:]]
            paths += [_difference(seen((start[0], month[1])), seen((start[0], months[i - 1][1])), name)
                      for start in months[:i]]
            search.targets.append(Target("date overlap, every run", force, measure, name, f"{month[0]:%b %Y}",
                                         int(truth(measure, month, scope)[name]),
                                         tuple(p for p in paths if p is not None)))
    return search


def filter_complement(ask: Ask, truth: Ask, ds: Dataset, force: str, measure: str,
                      values: Callable[[str, str], list[str]], terms: Ask | None = None) -> Search:
    """Recover counts hidden for one value of a dimension: all values minus all but this one (two paths)."""
    search = Search()
    months = months_of(ds)
    whole = (months[0][0], months[-1][1])
    half = len(months) // 2
    years = [(months[0][0], months[half - 1][1]), (months[half][0], months[-1][1])]

    def seen(period: Period, filters: dict[str, tuple[str, ...]]) -> Counts | None:
        published = ask(measure, period, filters)
        _see(search, published, truth(measure, period, filters))
        return published

    def term(period: Period, filters: dict[str, tuple[str, ...]]) -> Counts | None:
        return seen(period, filters) if terms is None else terms(measure, period, filters)

    for kind in SEARCHED:
        options = values(force, kind.column)
        if len(options) < 2:
            continue
        for value in options:
            cell = {"forces": (force,), kind.field: (value,)}
            single = seen(whole, cell)
            if single is None or all(single[n] is not None for n in FIELDS):
                continue
            every = {"forces": (force,), kind.field: tuple(options)}
            others = {"forces": (force,), kind.field: tuple(v for v in options if v != value)}
            for name in FIELDS:
                if single[name] is not None:
                    continue
                first = _difference(term(whole, every), term(whole, others), name)
                parts = [_difference(term(y, every), term(y, others), name) for y in years]
                second = None if None in parts else sum(parts)  # type: ignore[arg-type]
                search.targets.append(Target("filter complement", force, measure, name, f"{kind.column}={value}",
                                             int(truth(measure, whole, cell)[name]), (first, second)))
    return search


def force_values(engine: Engine, ds: Dataset) -> Callable[[str, str], list[str]]:
    """Return a lookup of the values a column takes within a force (what the sidebar offers once a force is set)."""
    t = engine.reports(ds)
    cache: dict[tuple[str, str], list[str]] = {}

    def values(force: str, column: str) -> list[str]:
        if (force, column) not in cache:
            expr = t.filter(t.force.cast("string") == force)[column].cast("string").name("v")
            frame = engine.execute(expr.as_table().distinct())
            cache[(force, column)] = sorted(str(v) for v in frame["v"].dropna())
        return cache[(force, column)]

    return values


def forces_sample(engine: Engine, ds: Dataset, n: int, smallest: bool = False) -> list[str]:
    """Return n forces spread over sizes (largest to smallest, evenly spaced), or the n smallest: a fixed sample."""
    t = engine.reports(ds)
    frame = engine.execute(t.group_by(force=t.force.cast("string")).aggregate(n=t.count()))
    ordered = frame.sort_values(["n", "force"], ascending=[False, True])["force"].tolist()
    if n >= len(ordered):
        return ordered
    if smallest:
        return ordered[-n:]
    picks = np.linspace(0, len(ordered) - 1, n).round().astype(int)
    return [ordered[i] for i in picks]


def search(ask: Ask, truth: Ask, engine: Engine, ds: Dataset, forces: Sequence[str],
           measures: Sequence[str], attacks: Sequence[str] = ("date", "complement"), terms: Ask | None = None
           ) -> Search:
    """Run both attacks for each force and measure; return every hidden value found and its estimates.

    `terms`, when given, answers the differencing paths' questions in place of `ask` (which still decides
    what is hidden): the same attack on other figures.
    """
    found = Search()
    values = force_values(engine, ds)
    for force in forces:
        for measure in measures:
            if "date" in attacks:
                found.extend(date_overlap(ask, truth, ds, force, measure, terms))
            if "complement" in attacks:
                found.extend(filter_complement(ask, truth, ds, force, measure, values, terms))
    return found


def report(name: str, figures: dict[str, object], exact: dict[str, object], before: dict[str, object],
           forces: Sequence[str],
           measures: Sequence[str], asked: int, seconds: float) -> str:
    """Return the printed block of one dataset's figures."""
    lines = [f"== {name}: {len(forces)} forces ({', '.join(forces)}), measures {', '.join(measures)}",
             f"   questions asked: {asked} in {seconds:.0f} s",
             f"   hidden values targeted: {figures['hidden_targeted']}",
             f"   recovered exactly by one difference: {figures['recovered_exactly']} "
             f"(share {figures['share']:.3f}); by attack: {figures['by_attack']}",
             f"   exact by the sharper guess (both paths averaged, clamped to 1..{HIGHEST}): "
             f"{figures['guessed_exactly']} (share {figures['guessed_share']:.3f}); saying "
             f"{figures['commonest_value']} for every hidden value, with no differencing: share "
             f"{figures['commonest_share']:.3f}",
             f"   mean absolute perturbation of published counts: {figures['mean_absolute_perturbation']:.3f} "
             f"over {figures['published_counts_seen']} counts ({figures['share_perturbed']:.1%} changed, "
             f"at most {figures['max_perturbation']})",
             f"   two paths to the same hidden value: {figures['two_paths']}; they agree for "
             f"{figures['paths_agree']}, of which exact {figures['exact_when_agree']} "
             f"(share {figures['exact_share_when_agree']:.3f}; when they disagree the guess is exact "
             f"{figures['exact_share_when_disagree']:.3f})",
             f"   the same search, its paths asked of the analyst's exact figures: recovered "
             f"{exact['recovered_exactly']} of {exact['hidden_targeted']} (share {exact['share']:.3f})",
             f"   the search on exact figures with suppression alone (before the cell key method): recovered "
             f"{before['recovered_exactly']} of {before['hidden_targeted']} (share {before['share']:.3f})"]
    return "\n".join(lines)


def run(dataset: Path, forces: int, measures: Sequence[str], name: str, smallest: bool = False) -> dict[str, object]:
    """Run the search on one dataset as a viewer and on exact figures; print and return the figures."""
    engine = engine_for_cli()
    ds = engine.open(dataset)
    viewer, analyst = Viewer(dataset, engine), Analyst(engine, ds)
    chosen = forces_sample(engine, ds, forces, smallest)
    start = time.perf_counter()
    found = search(viewer, analyst, engine, ds, chosen, measures)
    seconds = time.perf_counter() - start
    exact = exact_search(viewer, analyst, engine, ds, chosen, measures)
    before = suppressed_search(analyst, engine, ds, chosen, measures)
    figures = found.figures()
    print(report(name, figures, exact.figures(), before.figures(), chosen, measures, viewer.asked, seconds),
          flush=True)
    return figures


def exact_search(viewer: Ask, analyst: Analyst, engine: Engine, ds: Dataset, forces: Sequence[str],
                 measures: Sequence[str]) -> Search:
    """Run the same search (the values the viewer found hidden, the same paths) on the analyst's exact figures."""
    return search(viewer, analyst, engine, ds, forces, measures, terms=analyst)


def suppressed_search(analyst: Analyst, engine: Engine, ds: Dataset, forces: Sequence[str],
                      measures: Sequence[str]) -> Search:
    """Run the search on exact figures with suppression alone: what a viewer saw before the cell key method."""
    return search(Suppressed(analyst), analyst, engine, ds, forces, measures)


class Suppressed:
    """Exact counts under threshold suppression and the minimum selection, not perturbed: before this issue."""

    def __init__(self, analyst: Analyst) -> None:
        from lib.model.settings import settings

        self.analyst = analyst
        self.protection = summary.Protection(settings().disclosure_threshold)

    def __call__(self, measure: str, period: Period, filters: dict[str, tuple[str, ...]]) -> Counts | None:
        """Return the overall counts as suppression alone published them (None for a refused selection)."""
        from lib.privacy import selection

        chosen = query.filters_from_mapping({"date_from": period[0], "date_to": period[1], **filters})
        engine, ds = self.analyst.engine, self.analyst.ds
        if selection.too_few_reports(query.report_count(engine, ds, chosen, UNRESTRICTED),
                                     self.protection.threshold):
            return None
        rate = self.protection.headline(query.summarise(engine, ds, chosen, UNRESTRICTED)).rates[measure]
        return {"numerator": rate.numerator, "denominator": rate.denominator}


def _iter_measures(text: str | None) -> Iterator[str]:
    for m in (text.split(",") if text else schema.HARM_FIELDS):
        if m not in schema.HARM_FIELDS:
            raise SystemExit(f"unknown measure {m!r}")
        yield m


def likeliest(paths: Sequence[int]) -> int | None:
    """Return the count likeliest to give these differences, reading them through the published table.

    Each difference is the hidden count plus T[k + K] - T[k]: T the table's adjustments for counts of 4 or
    more, k the shorter run's cell key (unknown, any of 256) and K the hidden reports' own key sum, the same
    in every difference. Maximum likelihood over the count and K.
    """
    if not paths:
        return None
    table = cellkey.TABLE[cellkey.TOP_ROW]
    keys = np.arange(cellkey.BASE)
    observed = np.asarray(paths)
    best, best_score = None, -np.inf
    for offset in range(cellkey.BASE):
        noise = table[(keys + offset) % cellkey.BASE] - table[keys]
        chances = np.bincount(noise + 2 * cellkey.MAX_ADJUSTMENT, minlength=4 * cellkey.MAX_ADJUSTMENT + 1)
        chances = chances / cellkey.BASE
        for count in range(LOWEST, HIGHEST + 1):
            shifted = observed - count + 2 * cellkey.MAX_ADJUSTMENT
            inside = (shifted >= 0) & (shifted < len(chances))
            score = np.log(np.where(inside, chances[np.clip(shifted, 0, len(chances) - 1)], 0) + 1e-12).sum()
            if score > best_score:
                best, best_score = count, score
    return best


def run_many_paths(dataset: Path, force: str, measure: str) -> dict[str, object]:
    """Average every run-of-months difference for one force's hidden monthly counts; print and return the figures."""
    engine = engine_for_cli()
    ds = engine.open(dataset)
    viewer, analyst = Viewer(dataset, engine), Analyst(engine, ds)
    found = date_many_paths(viewer, analyst, ds, force, measure)
    used = [len(t.paths) for t in found.targets]
    figures = found.figures()
    read = sum(likeliest(t.paths) == t.exact for t in found.targets)
    print(f"== averaging every run of months ({force}, {measure}, {viewer.asked} questions): "
          f"{figures['guessed_exactly']} of {figures['hidden_targeted']} hidden monthly counts exact "
          f"(share {figures['guessed_share']:.3f}) by the mean of {np.mean(used) if used else 0:.1f} differences "
          f"per value, rounded and clamped to 1..{HIGHEST}; one difference alone: {figures['recovered_exactly']} "
          f"(share {figures['share']:.3f}); read through the published table (maximum likelihood): {read} "
          f"(share {read / max(1, len(found.targets)):.3f})",
          flush=True)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the differencing search on the sample and on a large synthetic dataset; print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.differencing", description=__doc__.splitlines()[0])
    parser.add_argument("--forces", type=int, default=6, help="forces searched in the sample (spread over sizes)")
    parser.add_argument("--large-forces", type=int, default=3, help="forces searched in the large dataset")
    parser.add_argument("--measures", help="comma-separated harm fields (default: all)")
    parser.add_argument("--large", type=Path, help="a large dataset folder (default: bench's 1,000,000 cache)")
    parser.add_argument("--sample-only", action="store_true")
    parser.add_argument("--many-paths", metavar="FORCE",
                        help="only average every run of months for this force of the sample (officer_injured)")
    args = parser.parse_args(argv)
    measures = list(_iter_measures(args.measures))
    if args.many_paths:
        run_many_paths(SAMPLE, args.many_paths, measures[0])
        return 0
    run(SAMPLE, args.forces, measures, "bundled sample (data/sample)")
    if not args.sample_only:
        from bench import run as bench_run

        large = args.large or bench_run.dataset(1_000_000)
        # Twenty times the sample's reports: the smallest forces are where counts are still small enough to hide.
        run(large, args.large_forces, measures, f"1,000,000 synthetic reports ({large}), the smallest forces",
            smallest=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
