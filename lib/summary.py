"""Headless monitoring: the overall rate, rate ratios by shift and role, and groups above the funnel.

    python -m lib.summary DATASET [--by area|team|officer] [--measure officer_injured|...]
                          [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--force NAME] [--area NAME]
                          [--role NAME] [--shift NAME] [--tactic NAME] [--tactic-group NAME]

DATASET is a folder written by lib.ingest or lib.synth, a saved dataset's name, or a CSV/Parquet
file. It prints one JSON document; it exits 2 with a one-line reason when the dataset cannot be opened.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from lib import library, query, risk, schema
from lib.query import UNRESTRICTED, Filters, Scope
from lib.store import Dataset, DatasetError, Engine

RATIO_DIMENSIONS = {"shift": "shift", "role": "officer_role"}


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


def summarise(engine: Engine, ds: Dataset, filters: Filters, scope: Scope, measure: str, by: str) -> dict:
    """Return the monitoring summary for one measure as a JSON-ready dict."""
    if measure not in schema.HARM_FIELDS:
        raise ValueError(f"unknown measure {measure!r}")
    rate = query.summarise(engine, ds, filters, scope).rates[measure]
    low, high = rate.interval
    ratios = {}
    for key, dimension in RATIO_DIMENSIONS.items():
        frame = risk.rate_ratios(engine, ds, filters, scope, measure, dimension)
        frame = frame[frame["group"] != frame["reference"]]
        ratios[key] = [{"group": r.group, "reference": r.reference, "ratio": _number(r.ratio),
                        "ci_low": _number(r.ci_low), "ci_high": _number(r.ci_high),
                        "numerator": int(r.yes), "denominator": int(r.answered)} for r in frame.itertuples()]
    points, _ = risk.funnel(engine, ds, filters, scope, measure, by)
    outliers = [{"group": r.group, "level": by, "numerator": int(r.yes), "denominator": int(r.answered),
                 "rate": _number(r.rate), "expected": _number(r.expected), "upper_limit": _number(r.high),
                 "limit": "99.8%"} for r in risk.outliers(points).itertuples()]
    return {
        "measure": measure,
        "label": schema.HARM_FIELDS[measure],
        "dataset": ds.name,
        "filters": query.describe(filters),
        "overall": {"numerator": rate.numerator, "denominator": rate.denominator, "rate": _number(rate.rate),
                    "ci_low": _number(low), "ci_high": _number(high), "unanswered": rate.unanswered},
        "rate_ratios": ratios,
        "groups_compared": int(len(points)),
        "outliers": outliers,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the monitoring summary as JSON."""
    parser = argparse.ArgumentParser(prog="python -m lib.summary", description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--by", default="team", choices=[*risk.FUNNEL_LEVELS, risk.OFFICER_LEVEL])
    parser.add_argument("--measure", default="officer_injured", choices=list(schema.HARM_FIELDS))
    parser.add_argument("--from", dest="date_from")
    parser.add_argument("--to", dest="date_to")
    for flag, field in (("--force", "forces"), ("--area", "areas"), ("--role", "roles"), ("--shift", "shifts"),
                        ("--tactic", "tactics"), ("--tactic-group", "tactic_groups")):
        parser.add_argument(flag, dest=field, action="append", default=[])
    args = parser.parse_args(argv)
    try:
        filters = query.filters_from_mapping(vars(args))
    except ValueError as exc:
        print(f"rejected: a date is not YYYY-MM-DD ({exc})", file=sys.stderr)
        return 2
    engine = Engine()
    try:
        ds = engine.open(resolve(args.dataset))
    except DatasetError as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summarise(engine, ds, filters, UNRESTRICTED, args.measure, args.by), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
