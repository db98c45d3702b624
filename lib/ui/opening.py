"""The Overview's opening view: its queries and charts in one place, run by the page and by the warm-up.

The warm-up at server start (lib/ui/warmup.py) computes exactly this before the first browser connects,
so the page's first run finds every result and chart spec in the caches (tests/test_warm_up.py checks it).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from lib.engine import query
from lib.engine.query import Filters, Scope, Summary
from lib.engine.store import Dataset
from lib.ui import cache

GROUPS = ("officer_role", "shift")  # the Overview's "By ..." sections, in order


@dataclass(frozen=True)
class Overview:
    """What the Overview shows for one filter state (protected when disclosure control is on)."""

    now: Summary
    before: Summary | None  # the same length of time just before, when the data reach back that far
    previous_filters: Filters | None
    monthly: pd.DataFrame
    groups: dict[str, pd.DataFrame]
    tactics: pd.DataFrame


def overview(ds: Dataset, filters: Filters, scope: Scope) -> Overview:
    """Run (or find cached) every query of the Overview for this view."""
    previous = query.previous_period(filters, ds)
    return Overview(now=cache.summary(ds, filters, scope),
                    before=cache.summary(ds, previous, scope) if previous else None,
                    previous_filters=previous,
                    monthly=cache.breakdown(ds, filters, scope, ("month",)),
                    groups={d: cache.breakdown(ds, filters, scope, (d,)) for d in GROUPS},
                    tactics=cache.tactic_counts(ds, filters, scope))


ChartCall = tuple[Callable, tuple, dict]


def charts(view: Overview) -> dict[str, ChartCall | None]:
    """Return the Overview's charts as (builder, args, kwargs), by place; None where the data cannot draw it."""
    from lib.present import charts as builders

    found: dict[str, ChartCall | None] = {
        "reports_by_month": (builders.reports_by_month, (view.monthly,), {"title": ""}),
        "injury_rate_by_month": ((builders.rate_by_month, (view.monthly, "officer_injured"),
                                  {"title": "", "unit": view.now.rates["officer_injured"].unit})
                                 if view.now.rates["officer_injured"].denominator else None),
    }
    for dimension, frame in view.groups.items():
        found[dimension] = (builders.harm_rates_by_group, (frame, dimension, query.DIMENSION_LABELS[dimension]),
                            {"per_incident": view.now.per_incident} if view.now.per_incident else {})
    found["tactics"] = (builders.most_used_tactics, (view.tactics,), {})
    return found
