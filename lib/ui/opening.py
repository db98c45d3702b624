"""The Overview's opening view: its queries and charts in one place, run by the page and by the warm-up.

The warm-up at server start (lib/ui/warmup.py) computes exactly this before the first browser connects,
so the page's first run finds every result and chart spec in the caches (tests/test_warm_up.py checks it).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from lib.engine import query
from lib.engine.query import Filters, Scope, Summary
from lib.engine.store import Dataset
from lib.ui import cache, context, render

# The Overview's "By ..." sections, in order; roles grouped under disclosure control (query.shown_dimension).
GROUPS = ("officer_role", "shift")
GROUP_MEASURES = ("officer_injured", "officer_assaulted")  # the rates drawn by group, where the extract has them


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
                    monthly=render.mark_part_months(ds, filters, cache.breakdown(ds, filters, scope, ("month",))),
                    groups={d: cache.breakdown(ds, filters, scope, (d,))
                            for d in (query.shown_dimension(g, scope.perturbed) for g in GROUPS)},
                    tactics=cache.tactic_counts(ds, filters, scope))


ChartCall = tuple[Callable, tuple, dict]


def charts(view: Overview) -> dict[str, ChartCall | None]:
    """Return the Overview's charts as (builder, args, kwargs), by place; None where the data cannot draw it.

    The builders write Vega-Lite dicts directly (lib/present/vegalite.py): the same specs as the Altair
    builders of lib/present/charts.py, which took more CPU than the rest of an uncached rerun together.
    """
    from lib.present import vegalite as builders

    found: dict[str, ChartCall | None] = {
        "reports_by_month": (builders.reports_by_month, (view.monthly,), {"title": ""}),
        "injury_rate_by_month": ((builders.rate_by_month, (view.monthly, "officer_injured"),
                                  {"title": "", "unit": view.now.rates["officer_injured"].unit})
                                 if view.now.rates["officer_injured"].denominator else None),
    }
    # Only the rates the extract answers are drawn by group (an empty panel drew "0.000000%" axes): the officer
    # rates, else the subject's; none at all (an extract without injury fields), no chart.
    answered = [m for m, rate in view.now.rates.items() if rate.denominator]
    measures = (tuple(m for m in GROUP_MEASURES if m in answered)
                or tuple(m for m in answered if m not in GROUP_MEASURES))
    for dimension, frame in view.groups.items():
        options: dict[str, Any] = {"per_incident": view.now.per_incident} if view.now.per_incident else {}
        if measures != GROUP_MEASURES:
            options["measures"] = measures
        found[dimension] = None if not measures else (
            builders.harm_rates_by_group, (frame, dimension, query.DIMENSION_LABELS[dimension]), options)
    found["tactics"] = (builders.most_used_tactics, (view.tactics,), {})
    return found


def chart_specs(ds: Dataset, filters: Filters, scope: Scope,
                view: Overview | None = None) -> dict[str, dict[str, Any] | None]:
    """Return the Overview's Vega-Lite specs by place for this view, cached on small keys (None: not drawn).

    Keyed on the dataset, filters, scope and this run's disclosure threshold, never on the frames: hashing
    the frames to look a spec up cost more than writing it. `view` is this view's results when the caller
    has them already (the page): otherwise they are read from the query caches.
    """
    return _chart_specs(ds, filters, scope, context.disclosure_threshold(), view)


@st.cache_data(show_spinner=False, max_entries=1024, hash_funcs=cache.KEYS)
def _chart_specs(ds: Dataset, filters: Filters, scope: Scope, threshold: int | None,
                 _view: Overview | None) -> dict[str, dict[str, Any] | None]:
    # `threshold` is in the key only: the results are protected with this run's threshold, which is the same
    # one (a cached function runs on the caller's thread). `_view` is left out of the key (the underscore).
    view = _view if _view is not None else overview(ds, filters, scope)
    return {place: None if call is None else call[0](*call[1], **call[2]) for place, call in charts(view).items()}
