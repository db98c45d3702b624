"""Headless monitoring: the overall rate, rate ratios by shift and role, and groups above the funnel.

    python -m lib.summary DATASET [--by area|team|officer] [--measure officer_injured|...]
                          [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--force NAME] [--area NAME]
                          [--role NAME] [--shift NAME] [--tactic NAME] [--tactic-group NAME]
                          [--location-type NAME] [--age-band BAND] [--gender NAME] [--ethnicity NAME]
                          [--roster FOLDER_OR_FILE ...] [--adjust [--adjust-for DIMENSION ...]]
                          [--protect viewer]

DATASET is a folder written by lib.ingest or lib.synth, a saved dataset's name, or a CSV/Parquet
file. Every filter of the app's sidebar has a flag, repeatable (reports with any of the values), so any
view can be asked headlessly. It prints one JSON document; it exits 2 with a one-line reason when the
dataset cannot be opened.
With --adjust it adds `adjusted_rate_ratios`: the ratios by shift, role and type of force adjusted for case mix
(role, shift, resistance, crewing and location type unless --adjust-for names others), each row listing the
dimensions it is adjusted for (a dimension is never adjusted for itself).

With --protect viewer it gives exactly what a viewer sees in the app: the period widened to whole months,
nothing but a reason for a selection of fewer reports than the threshold, every count perturbed by the
cell key method (rates and intervals from the perturbed counts), small counts and what would give them
away hidden (`null`), and a `protection` key naming the method and its parameters.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lib import ingest
from lib.analysis import adjust, risk
from lib.engine import query
from lib.engine.filters import FILTER_KINDS
from lib.engine.query import UNRESTRICTED, Filters, Scope
from lib.engine.store import Dataset, DatasetError, Engine
from lib.ingest import library
from lib.model import schema

RATIO_DIMENSIONS = {"shift": "shift", "role": "officer_role"}
# The command-line flag of every filter kind a page's sidebar offers, so any view can be asked headlessly.
FILTER_FLAGS = {"forces": "--force", "areas": "--area", "roles": "--role", "shifts": "--shift",
                "tactic_groups": "--tactic-group", "tactics": "--tactic", "location_types": "--location-type",
                "age_bands": "--age-band", "genders": "--gender", "ethnicities": "--ethnicity"}
ADJUSTED_DIMENSIONS = {**RATIO_DIMENSIONS, "tactic_group": "tactic_group"}


def resolve(dataset: str) -> Path:
    """Return the path of a dataset given as a folder, a file, or a saved dataset's name."""
    path = Path(dataset).expanduser()
    if path.exists():
        return path
    try:
        saved = library.path_of(dataset)
    except library.LibraryError:
        saved = None
    if saved is not None and saved.exists():
        return saved
    raise DatasetError(f"{dataset} is neither a file, a dataset folder nor a saved dataset's name")


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 6)


def _count(value: object) -> int | None:
    """Return a count as an int, or None where disclosure control hid it."""
    return None if value is None or pd.isna(value) else int(value)


class Protection:
    """What a role's outputs pass through: none for analysts; for viewers, the app's disclosure control."""

    def __init__(self, threshold: int | None) -> None:
        self.threshold = threshold

    def table(self, kind: object, result: object) -> object:
        """Return a result as the role sees it (hidden values missing)."""
        if self.threshold is None:
            return result
        from lib.privacy import disclosure

        return disclosure.protect(kind, result, self.threshold)

    def count(self, value: int) -> int | None:
        """Return a single count as the role sees it (None where hidden)."""
        if self.threshold is None:
            return int(value)
        from lib.privacy import disclosure

        return disclosure.protect_count(value, self.threshold)

    def headline(self, summary: query.Summary) -> query.Summary:
        """Return the headline figures as the role sees them."""
        if self.threshold is None:
            return summary
        from lib.privacy import disclosure

        return disclosure.protect_summary(summary, self.threshold)


EXACT = Protection(None)


def summarise(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str, by: str,
              protection: Protection = EXACT) -> dict:
    """Return the monitoring summary for one measure as a JSON-ready dict (as the protection's role sees it)."""
    if measure not in schema.HARM_FIELDS:
        raise ValueError(f"unknown measure {measure!r}")
    headline = protection.headline(query.summarise(engine, ds, filters, scope))
    rate = headline.rates[measure]
    low, high = rate.interval if not rate.hidden else (math.nan, math.nan)
    ratios = {}
    for key, dimension in RATIO_DIMENSIONS.items():
        frame = protection.table(risk.rate_ratios, risk.rate_ratios(engine, ds, filters, scope, measure, dimension))
        frame = frame[frame["group"] != frame["reference"]]
        ratios[key] = [{"group": r.group, "reference": r.reference, "ratio": _number(r.ratio),
                        "ci_low": _number(r.ci_low), "ci_high": _number(r.ci_high),
                        "numerator": _count(r.yes), "denominator": _count(r.answered)} for r in frame.itertuples()]
    points, limits = protection.table(risk.funnel, risk.funnel(engine, ds, filters, scope, measure, by))
    outliers = [{"group": r.group, "level": by, "numerator": _count(r.yes), "denominator": _count(r.answered),
                 "rate": _number(r.rate), "expected": _number(r.expected), "upper_limit": _number(r.high),
                 "limit": "99.8%"} for r in risk.outliers(points).itertuples()]
    return {
        "measure": measure,
        "label": schema.HARM_FIELDS[measure],
        "dataset": ds.name,
        "filters": query.describe(filters),
        "overall": {"numerator": rate.numerator, "denominator": rate.denominator,
                    "rate": _number(rate.rate) if not rate.hidden else None,
                    "ci_low": _number(low), "ci_high": _number(high), "unanswered": rate.unanswered,
                    # What the rate counts (incidents for a field recorded once per incident); incidents is
                    # null when the extract records no incident id.
                    "unit": rate.unit, "reports": headline.reports, "incidents": headline.incidents},
        "rate_ratios": ratios,
        **risk.funnel_summary(points, limits),
        "outliers": outliers,
    }


def viewer_view(engine: Engine, ds: Dataset, filters: Filters
                ) -> tuple[Scope, Protection, Filters, dict | None]:
    """Return what a viewer's query becomes (perturbed scope, protection, whole months), or why nothing is shown."""
    from dataclasses import replace

    from lib.model.settings import settings
    from lib.privacy import selection

    threshold = settings().disclosure_threshold
    scope = replace(UNRESTRICTED, perturbed=True)
    query.require_keys(engine, ds)
    first, last = (ds.first.date() if ds.first else None), (ds.last.date() if ds.last else None)
    filters = query.snap_to_months(filters, first, last)
    refused = None
    if selection.too_few_reports(query.report_count(engine, ds, filters, scope), threshold):
        refused = {"dataset": ds.name, "filters": query.describe(filters), "shown": False,
                   "reason": selection.too_few_message(threshold), "protection": protection_key(threshold)}
    return scope, Protection(threshold), filters, refused


def protection_key(threshold: int | None) -> dict:
    """Return the `protection` key: the role's disclosure control, its method and its parameters."""
    from lib.privacy import cellkey

    return {"role": "viewer", "perturbation": cellkey.describe(),
            "suppression": {"threshold": threshold, "rule": f"counts from 1 to {threshold - 1} hidden (null), with "
                            "the cells that would give them away"},
            "periods": "whole calendar months", "minimum_reports": threshold,
            "rates": "computed from the perturbed counts"}


def adjusted_summary(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str,
                     adjust_for: Sequence[str] = adjust.DEFAULT_ADJUSTMENT, protection: Protection = EXACT) -> dict:
    """Return rate ratios by shift, role and type of force adjusted for case mix, shaped like `rate_ratios`."""
    out: dict = {}
    for key, dimension in ADJUSTED_DIMENSIONS.items():
        frame = risk.rate_ratios(engine, ds, filters, scope, measure, dimension, None, tuple(adjust_for))
        frame = protection.table(risk.rate_ratios, frame)
        frame = frame[frame["group"] != frame["reference"]]
        out[key] = [{"group": r.group, "reference": r.reference, "ratio": _number(r.ratio),
                     "ci_low": _number(r.ci_low), "ci_high": _number(r.ci_high),
                     "numerator": _count(r.yes), "denominator": _count(r.answered),
                     "adjusted_for": list(r.adjusted_for), "method": r.method} for r in frame.itertuples()]
    return out


def read_roster(paths: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Read roster tables from a folder of officers/training/exposure Parquet files, or roster extracts."""
    from lib.ingest import roster

    tables: dict[str, pd.DataFrame] = {}
    for text in paths:
        path = Path(text)
        if path.is_dir():
            tables.update(roster.read_folder(path))  # ids pseudonymised, as the engine's reports are
            continue
        table = roster.read(path.name, path.read_bytes())
        tables[table.kind] = table.records.drop(columns=["_file", "_row"])
    if "training" in tables and "officers" in tables and "pst_trained_on" not in tables["officers"]:
        first = tables["training"].groupby("officer_id")["trained_on"].min()
        tables["officers"] = tables["officers"].assign(pst_trained_on=tables["officers"]["officer_id"].map(first))
    return tables


def training_summary(engine: Engine, ds: Dataset, filters: Filters, scope: Scope,
                     tables: dict[str, pd.DataFrame], protection: Protection = EXACT) -> dict:
    """Return compliance with the hours standard and the training effect on use of force.

    Under a perturbed scope (a viewer's) the counts of officers and events are published by the cell key method,
    each officer keyed like a report, and the protection hides small ones, as the Training page does.
    """
    from lib.analysis import training
    from lib.ingest import roster

    perturbed = scope.perturbed
    if perturbed and "officers" in tables:
        tables = {**tables, "officers": roster.with_officer_keys(tables["officers"])}
    out: dict = {}
    if "officers" in tables and "training" in tables and ds.last is not None:
        per_officer = training.compliance(tables["training"], tables["officers"], ds.last.date())
        short, officers = training.compliance_totals(per_officer, perturbed=perturbed)
        officers_shown = protection.count(officers)
        compliant = protection.count(officers - short) if officers_shown is not None else None
        out["compliance"] = {"as_of": ds.last.date().isoformat(), "standard_hours": 12,
                             "officers": officers_shown, "compliant": compliant,
                             "share": _number(compliant / officers_shown) if officers_shown and compliant is not None
                             else None}
    if "officers" in tables and "exposure" in tables:
        counts = training.officer_month_counts(engine, ds, filters, scope)
        panel = training.panel_from_counts(counts, tables["exposure"], tables["officers"])
        if perturbed:
            panel = roster.with_officer_keys(panel)
        result = training.staggered_effect(panel, "reports", perturbed=perturbed)
        result = protection.table(training.effects, {"reports": result})["reports"]
        old = training.difference_in_differences(panel, "reports")
        if result["estimate"] is None:  # hidden with the counts it rests on
            old = dict.fromkeys(("estimate", "ci_low", "ci_high"), None) | {"method": old["method"]}
        out["effect"] = {"measure": "use of force per 1,000 officer-shifts", "estimate": _number(result["estimate"]),
                         "ci_low": _number(result["ci_low"]), "ci_high": _number(result["ci_high"]),
                         "method": result["method"], "officers_trained": _count(result["officers_trained"]),
                         "officers_comparison": _count(result["officers_comparison"]),
                         "verdict": result["verdict"],
                         "pre_trend_p": _number(result["pre_trend_p"]),
                         "minimum_detectable_effect": _number(result["minimum_detectable_effect"]),
                         "reading": training.reading(result),
                         "pre_trend_reading": training.pre_trend_reading(result),
                         "detectable_reading": training.detectable_reading(result),
                         "two_way_fixed_effects": {key: _number(old[key]) for key in ("estimate", "ci_low", "ci_high")}
                         | {"method": old["method"]}}
    return out


def main(argv: Sequence[str] | None = None, engine: Engine | None = None) -> int:
    """Command line: print the monitoring summary as JSON (in-process callers may pass one engine to reuse)."""
    parser = argparse.ArgumentParser(prog="python -m lib.summary", description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--by", default="team", choices=[*risk.FUNNEL_LEVELS, risk.OFFICER_LEVEL])
    parser.add_argument("--measure", default="officer_injured", choices=list(schema.HARM_FIELDS))
    parser.add_argument("--from", dest="date_from")
    parser.add_argument("--to", dest="date_to")
    for kind in FILTER_KINDS:
        parser.add_argument(FILTER_FLAGS[kind.field], dest=kind.field, action="append", default=[], metavar="VALUE",
                            help=f"only reports with this {kind.label.lower()} (repeat: any of them)")
    parser.add_argument("--roster", action="append", default=[],
                        help="a folder with officers/training/exposure.parquet, or roster files")
    parser.add_argument("--adjust", action="store_true",
                        help="add rate ratios adjusted for case mix (modified Poisson, clustered by incident)")
    parser.add_argument("--adjust-for", dest="adjust_for", action="append", choices=list(adjust.COVARIATES),
                        help=f"a dimension to adjust for (default: {', '.join(adjust.DEFAULT_ADJUSTMENT)})")
    parser.add_argument("--protect", choices=["viewer"],
                        help="give exactly what a viewer sees: whole months, perturbed counts, small numbers hidden")
    args = parser.parse_args(argv)
    try:
        filters = query.filters_from_mapping(vars(args))
    except ValueError as exc:
        print(f"rejected: a date is not YYYY-MM-DD ({exc})", file=sys.stderr)
        return 2
    if args.protect and args.by == risk.OFFICER_LEVEL:
        print("rejected: --by officer cannot be combined with --protect (a viewer never sees officer-level "
              "detail)", file=sys.stderr)
        return 2
    if engine is None:
        engine = Engine(read_file=ingest.read_file, pseudonymise=ingest.pseudonymise_ids,
                        record_keys=ingest.record_keys)
    try:
        path = resolve(args.dataset)
        # A saved dataset opens at its current version's folder: name it as the user did, not "000003".
        ds = engine.open(path, name=None if Path(args.dataset).expanduser().exists() else args.dataset)
    except DatasetError as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return 2
    scope, protection = UNRESTRICTED, EXACT
    if args.protect:
        try:
            scope, protection, filters, refused = viewer_view(engine, ds, filters)
        except DatasetError as exc:
            print(f"rejected: {exc}", file=sys.stderr)
            return 2
        if refused is not None:
            print(json.dumps(refused, indent=2))
            return 0
    out = summarise(engine, ds, filters, scope, args.measure, args.by, protection)
    if args.adjust or args.adjust_for:
        out["adjusted_rate_ratios"] = adjusted_summary(engine, ds, filters, scope, args.measure,
                                                       args.adjust_for or adjust.DEFAULT_ADJUSTMENT, protection)
    if args.protect:
        out["protection"] = protection_key(protection.threshold)
    if args.roster:
        try:
            tables = read_roster(args.roster)
        except (OSError, ingest.RejectedFile) as exc:
            print(f"rejected: roster: {exc}", file=sys.stderr)
            return 2
        out["training"] = training_summary(engine, ds, filters, scope, tables, protection)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
