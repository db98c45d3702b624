"""The shared engine and every cached query: results keyed on small values, disclosure applied on each read.

Caches are keyed on small values (a Dataset, a Filters, a Scope), never on DataFrames. Every result
reaches a page through `protect`: with disclosure control on, small counts are hidden before any chart,
table, tooltip or download is built from it. The cache holds the full result (keyed by scope, so it never
crosses forces); suppression is cheap and runs on each read.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from lib.engine import query
from lib.engine.query import Filters, Scope, Summary
from lib.engine.store import Dataset, Engine
from lib.ingest import library
from lib.model.settings import settings
from lib.privacy.budget import SelectionBudget
from lib.ui import context

_log = logging.getLogger(__name__)


def _repr_key(value: object) -> bytes:
    return repr(value).encode()


def _scope_key(scope: Scope) -> bytes:
    levels = (scope.forces, scope.areas, scope.teams)
    return repr((*(None if v is None else tuple(sorted(v)) for v in levels), scope.perturbed)).encode()


# How the caches hash the small values they are keyed on. Streamlit's own hasher walks a dataclass field by
# field in Python: with a dozen cached calls a rerun, that was about a fifth of an uncached Overview rerun's
# Python. A frozen Dataset or Filters says all it holds in its repr; a Scope's sets are written sorted.
KEYS: dict[type, Callable[[object], bytes]] = {Dataset: _repr_key, Filters: _repr_key, Scope: _scope_key}


def name_of(function: Callable) -> str:
    """Return a function's stable name, `module:qualified.name` (a cache key, and what the audit and errors say)."""
    return f"{function.__module__}:{function.__qualname__}"


@st.cache_resource(show_spinner=False)
def engine() -> Engine:
    """Return the process-wide engine shared by every session (the ingester reads single files, hashes officer ids)."""
    from lib import ingest

    return Engine(read_file=ingest.read_file, pseudonymise=ingest.pseudonymise_ids, record_keys=ingest.record_keys)


def selection_budget() -> SelectionBudget:
    """Return the server's budget of viewers' selections (one per process and limit, kept while it runs)."""
    return _selection_budget(settings().viewer_daily_selections)


@st.cache_resource
def _selection_budget(limit: int) -> SelectionBudget:
    return SelectionBudget(limit)


def protect(kind: Callable, result: object) -> object:
    """Apply disclosure control to a result produced by the lib function `kind`, when it is on."""
    threshold = context.disclosure_threshold()
    if threshold is None:
        return result
    from lib.privacy import disclosure

    return disclosure.protect(kind, result, threshold)


@st.cache_data(show_spinner=False, max_entries=1024, hash_funcs=KEYS)
def _summary(ds: Dataset, filters: Filters, scope: Scope) -> Summary:
    return query.summarise(engine(), ds, filters, scope)


def summary(ds: Dataset, filters: Filters, scope: Scope) -> Summary:
    """Return headline measures (cached on the dataset, filters and scope; small counts hidden if required)."""
    result = _summary(ds, filters, scope)
    threshold = context.disclosure_threshold()
    if threshold is None:
        return result
    from lib.privacy import disclosure

    return disclosure.protect_summary(result, threshold)


@st.cache_data(show_spinner=False, max_entries=1024, hash_funcs=KEYS)
def report_count(ds: Dataset, filters: Filters, scope: Scope) -> int:
    """Return how many reports a filter state selects (cached on small keys; never shown, only compared)."""
    return query.report_count(engine(), ds, filters, scope)


@st.cache_data(show_spinner=False, max_entries=1024, hash_funcs=KEYS)
def _breakdown(ds: Dataset, filters: Filters, scope: Scope, by: tuple[str, ...]) -> pd.DataFrame:
    return query.breakdown(engine(), ds, filters, scope, by)


def breakdown(ds: Dataset, filters: Filters, scope: Scope, by: tuple[str, ...]) -> pd.DataFrame:
    """Return a breakdown by dimensions (cached on small keys)."""
    return protect(query.breakdown, _breakdown(ds, filters, scope, by))


@st.cache_data(show_spinner=False, max_entries=1024, hash_funcs=KEYS)
def _tactic_counts(ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    return query.tactic_counts(engine(), ds, filters, scope)


def tactic_counts(ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports per tactic (cached on small keys)."""
    return protect(query.tactic_counts, _tactic_counts(ds, filters, scope))


@st.cache_data(show_spinner=False, max_entries=256, hash_funcs=KEYS)
def filter_options(ds: Dataset, scope: Scope) -> dict[str, list[str]]:
    """Return the values each filter can take in this dataset and scope."""
    return query.filter_options(engine(), ds, scope)


def contradiction_rows(ds: Dataset, filters: Filters, scope: Scope, rule: str,
                       limit: int = 500) -> pd.DataFrame | None:
    """Return up to `limit` reports that break a rule, or None if this user may not see single reports."""
    if not context.row_detail_allowed():
        return None
    return _contradiction_rows(ds, filters, scope, rule, limit)


@st.cache_data(show_spinner=False, max_entries=128, hash_funcs=KEYS)
def _contradiction_rows(ds: Dataset, filters: Filters, scope: Scope, rule: str, limit: int) -> pd.DataFrame:
    from lib.analysis import quality

    expr = quality.contradiction_rows(engine(), ds, filters, scope, rule)
    return engine().execute(expr.limit(limit))


def reference_dir() -> Path:
    """Return where imported Home Office figures are kept (OSE_DATA_DIR/reference)."""
    return library.data_dir() / "reference"


def national() -> dict | None:
    """Return the imported national figures (latest year), if any."""
    from lib.analysis import reference

    return reference.load_benchmarks(reference_dir())


def national_comparison(ds: Dataset, filters: Filters, scope: Scope, bench: dict) -> pd.DataFrame:
    """Return this view's injury share and tactic mix beside the national figures."""
    from lib.analysis import reference

    now = summary(ds, filters, scope)
    shares = tactic_counts(ds, filters, scope).set_index("tactic")["share"].to_dict()
    return reference.comparison({k: r.rate for k, r in now.rates.items()}, shares, bench)


def cached_query(function: Callable, ds: Dataset, filters: Filters, scope: Scope, *args: object) -> object:
    """Run `function(engine, ds, filters, scope, *args)`, a query from lib, cached on small keys; then protect it.

    The cache key is the function's module and qualified name with the small arguments (strings, numbers,
    tuples) that follow the scope; with disclosure control on, a function without disclosure rules is refused.
    """
    if not function.__module__.startswith("lib."):
        raise ValueError(f"cached_query runs lib queries only, not {name_of(function)}")
    return protect(function, _cached_query(name_of(function), function, ds, filters, scope, *args))


def prefetch(function: Callable, ds: Dataset, filters: Filters, scope: Scope, *args: object) -> None:
    """Start `cached_query(function, ds, filters, scope, *args)` on another thread and return at once.

    The page draws its other sections meanwhile; its own call later finds the result in the cache, or waits
    for it (Streamlit computes a cached value once, under a lock per key). Nothing is shown or audited here:
    the page's own call does that, and protects the result.
    """
    if not function.__module__.startswith("lib."):
        raise ValueError(f"prefetch runs lib queries only, not {name_of(function)}")
    in_background(_cached_query, name_of(function), function, ds, filters, scope, *args, label=function.__qualname__)


def in_background(cached: Callable, *args: object, label: str | None = None) -> None:
    """Call a cached function (st.cache_data or st.cache_resource) on another thread, to fill its cache early.

    The thread runs in the session's context, so the cache keys and logs are those of the page's own call, and
    as inside a cached function, so no spinner or other element is drawn from it (it would land anywhere on the
    page). An error is dropped: the page's own call computes again and meets it itself.
    """
    if _inside_cached is None:
        return

    def compute() -> None:
        _inside_cached.set(True)  # a new thread's own context: the page's thread is unaffected
        try:
            cached(*args)
        except Exception:  # the page's own call computes again, meets the error and reports it
            _log.debug("prefetch %s failed; the page computes it itself", label, exc_info=True)

    worker = threading.Thread(target=compute, name=f"prefetch {label or cached.__qualname__}", daemon=True)
    script = get_script_run_ctx(suppress_warning=True)
    if script is not None:
        add_script_run_ctx(worker, script)
    worker.start()


try:  # Streamlit's own flag for "inside a cached function" (no spinner then); without it, nothing is prefetched
    from streamlit.runtime.caching.cached_message_replay import in_cached_function as _inside_cached
except ImportError:  # pragma: no cover - another Streamlit than requirements.txt pins
    _inside_cached = None


@st.cache_data(show_spinner=False, max_entries=2048, hash_funcs=KEYS)
def _cached_query(name: str, _function: Callable, ds: Dataset, filters: Filters, scope: Scope,
                  *args: object) -> object:
    # Keyed on `name` (the underscore keeps the function object itself out of Streamlit's hashing).
    return _function(engine(), ds, filters, scope, *args)
