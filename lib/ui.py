"""The Streamlit seam: the shared engine, cached queries, the dataset picker and global filters.

Only this module (with app.py, pages/ and lib/auth.py) imports streamlit. Caches are keyed on
small values (a Dataset, a Filters, a Scope), never on DataFrames.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from lib import query
from lib.query import FILTER_KINDS, Filters, Scope, Summary
from lib.store import SAMPLE_DIR, Dataset, DatasetError, Engine

CONTEXT_KEY = "_ose_context"
FILTER_DATASET_KEY = "_ose_filters_dataset"
DATES_KEY = "flt_dates"


def _widget_key(field: str) -> str:
    return f"flt_{field}"


# --- engine and cached queries ------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def engine() -> Engine:
    """Return the process-wide engine shared by every session."""
    return Engine()


@st.cache_data(show_spinner=False, max_entries=1024)
def summary(ds: Dataset, filters: Filters, scope: Scope) -> Summary:
    """Return headline measures (cached on the dataset, filters and scope)."""
    return query.summarise(engine(), ds, filters, scope)


@st.cache_data(show_spinner=False, max_entries=1024)
def breakdown(ds: Dataset, filters: Filters, scope: Scope, by: tuple[str, ...]) -> pd.DataFrame:
    """Return a breakdown by dimensions (cached on small keys)."""
    return query.breakdown(engine(), ds, filters, scope, by)


@st.cache_data(show_spinner=False, max_entries=1024)
def tactic_counts(ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports per tactic (cached on small keys)."""
    return query.tactic_counts(engine(), ds, filters, scope)


@st.cache_data(show_spinner=False, max_entries=256)
def filter_options(ds: Dataset, scope: Scope) -> dict[str, list[str]]:
    """Return the values each filter can take in this dataset and scope."""
    return query.filter_options(engine(), ds, scope)


# --- datasets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A dataset the picker offers."""

    key: str
    label: str
    path: str


def sources() -> list[Source]:
    """Return the datasets on offer: OSE_DATASET first when set, then the bundled sample."""
    found = []
    env = os.environ.get("OSE_DATASET", "").strip()
    if env:
        found.append(Source("env", f"{Path(env).name} (OSE_DATASET)", env))
    found.append(Source("sample", "Synthetic sample (not real data)", str(SAMPLE_DIR)))
    return found


def _open(source: Source) -> Dataset:
    return engine().open(source.path, name=source.label)


def _warn_unopened(source: Source, reason: str) -> None:
    if source.key == "env":
        st.sidebar.warning(f"Could not open OSE_DATASET={source.path}: {reason}. "
                           "Showing the synthetic sample instead.", icon="⚠️")
    else:
        st.sidebar.warning(f"Could not open {source.label} at {source.path}: {reason}.", icon="⚠️")


def dataset_picker() -> Dataset:
    """Draw the dataset picker and return the chosen dataset, falling back to the sample."""
    usable: list[tuple[Source, Dataset]] = []
    for source in sources():
        try:
            usable.append((source, _open(source)))
        except DatasetError as exc:
            _warn_unopened(source, str(exc))
        except Exception as exc:  # an unreadable file must never take the page down
            _warn_unopened(source, f"{type(exc).__name__}: {exc}")
    if not usable:
        st.error("No dataset could be opened, not even the bundled sample. Run `make sample`.")
        st.stop()
    labels = [s.label for s, _ in usable]
    wanted = st.query_params.get("dataset")
    keys = [s.key for s, _ in usable]
    if "dataset_choice" not in st.session_state or st.session_state["dataset_choice"] not in labels:
        st.session_state["dataset_choice"] = labels[keys.index(wanted)] if wanted in keys else labels[0]
    choice = st.sidebar.selectbox("Dataset", labels, key="dataset_choice")
    source, ds = usable[labels.index(choice)]
    # The URL names the dataset only when it is not the default, so plain links stay short.
    st.session_state["_ose_dataset_param"] = source.key if source.key != keys[0] else None
    return ds


# --- global filters -----------------------------------------------------------------------


def _filters_from_url(options: dict[str, list[str]]) -> Filters | None:
    params = st.query_params
    data: dict[str, object] = {}
    for kind in FILTER_KINDS:
        values = [v for v in params.get_all(kind.field) if v in options.get(kind.field, [])]
        if values:
            data[kind.field] = values
    for name, key in (("date_from", "from"), ("date_to", "to")):
        raw = params.get(key)
        if raw:
            try:
                data[name] = date.fromisoformat(raw)
            except ValueError:
                continue
    return query.filters_from_mapping(data) if data else None


def _apply_to_widgets(filters: Filters, options: dict[str, list[str]]) -> None:
    # Assigning the keys before the widgets are drawn keeps the browser's chips in step
    # with the server when the options change (a stale multiselect otherwise).
    for kind in FILTER_KINDS:
        allowed = set(options.get(kind.field, []))
        st.session_state[_widget_key(kind.field)] = [v for v in filters.values(kind) if v in allowed]
    # date_input takes no None inside its range: an open end is left out of the tuple.
    st.session_state[DATES_KEY] = tuple(d for d in (filters.date_from, filters.date_to) if d)


def _reset(ds: Dataset, options: dict[str, list[str]]) -> None:
    _apply_to_widgets(query.default_filters(ds), options)


def _clamp(d: date | None, ds: Dataset) -> date | None:
    if d is None or ds.first is None or ds.last is None:
        return d
    return min(max(d, ds.first.date()), ds.last.date())


def filter_sidebar(ds: Dataset, scope: Scope) -> Filters:
    """Draw the global filters in the sidebar, keep them in the URL, and return them."""
    options = filter_options(ds, scope)
    if st.session_state.get(FILTER_DATASET_KEY) != ds.id:
        first_visit = FILTER_DATASET_KEY not in st.session_state
        initial = query.default_filters(ds)
        shared = _filters_from_url(options) if first_visit else None
        if shared is not None:  # a shared link: its values, the opening dates where it has none
            initial = replace(shared, date_from=shared.date_from or initial.date_from,
                              date_to=shared.date_to or initial.date_to)
        initial = replace(initial, date_from=_clamp(initial.date_from, ds),
                          date_to=_clamp(initial.date_to, ds))
        _apply_to_widgets(initial, options)
        st.session_state[FILTER_DATASET_KEY] = ds.id

    side = st.sidebar
    side.markdown("**Filters** apply to every page")
    bounds = {}
    if ds.first is not None and ds.last is not None:
        bounds = {"min_value": ds.first.date(), "max_value": ds.last.date()}
    dates = side.date_input("Dates", key=DATES_KEY, format="DD/MM/YYYY", **bounds)
    dates = tuple(dates) if isinstance(dates, (tuple, list)) else (dates, None)
    date_from = dates[0] if len(dates) > 0 else None
    date_to = dates[1] if len(dates) > 1 else None
    chosen: dict[str, tuple[str, ...]] = {}
    for kind in FILTER_KINDS:
        values = side.multiselect(kind.label, options.get(kind.field, []), key=_widget_key(kind.field),
                                  placeholder="All")
        chosen[kind.field] = tuple(values)
    side.button("Reset filters", on_click=_reset, args=(ds, options), width="stretch")
    filters = Filters(date_from=date_from, date_to=date_to, **chosen)
    _write_url(filters)
    return filters


def _write_url(filters: Filters) -> None:
    params: dict[str, list[str]] = {}
    key = st.session_state.get("_ose_dataset_param")
    if key:
        params["dataset"] = [key]
    if filters.date_from:
        params["from"] = [filters.date_from.isoformat()]
    if filters.date_to:
        params["to"] = [filters.date_to.isoformat()]
    for kind in FILTER_KINDS:
        values = filters.values(kind)
        if values:
            params[kind.field] = list(values)
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    if current != params:  # rewriting unchanged params would still push a browser history entry
        st.query_params.from_dict(params)


# --- page context -------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every page needs: the dataset, the filter state and the user's data scope."""

    dataset: Dataset
    filters: Filters
    scope: Scope


def set_context(ctx: Context) -> None:
    """Remember this run's context for the page that app.py is about to run."""
    st.session_state[CONTEXT_KEY] = ctx


def context() -> Context:
    """Return this run's context (set by app.py before the page runs)."""
    ctx = st.session_state.get(CONTEXT_KEY)
    if ctx is None:
        # Only the first run of a fresh server can run a page without app.py (Streamlit's old
        # folder navigation); send it through the router, which sets the context.
        st.switch_page("app.py")
    return ctx


def chart(spec: alt.TopLevelMixin, *, key: str | None = None) -> None:
    """Draw an Altair chart in the project's own theme (not Streamlit's)."""
    # Single and layered charts stretch to their column; concatenated panels keep their widths.
    stretch = isinstance(spec, (alt.Chart, alt.LayerChart))
    st.altair_chart(spec, theme=None, width="stretch" if stretch else "content", key=key)


def table_behind(frame: pd.DataFrame, caption: str, *, label: str = "Table behind this chart") -> None:
    """Caption a chart with the filter sentence and put the aggregate behind it in an expander."""
    st.caption(caption)
    with st.expander(label):
        st.dataframe(frame, hide_index=True, width="stretch")
