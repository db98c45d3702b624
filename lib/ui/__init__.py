"""The Streamlit seam: the shared engine, cached queries, the dataset picker and global filters.

Only this module (with app.py, app_pages/ and lib/ui/login.py) imports streamlit. Caches are keyed on
small values (a Dataset, a Filters, a Scope), never on DataFrames.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from lib import ingest
from lib.engine import query
from lib.engine.query import FILTER_KINDS, Filters, Scope, Summary
from lib.engine.store import SAMPLE_DIR, Dataset, DatasetError, Engine
from lib.ingest import library
from lib.model import schema
from lib.present import export
from lib.security import access, audit

if TYPE_CHECKING:  # Altair loads with the first chart: the engine can load the sample meanwhile (warm_up)
    import altair as alt

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


# Every result below reaches a page through `protect`: with disclosure control on, small counts are
# hidden before any chart, table, tooltip or download is built from it. The cache holds the full
# result (keyed by scope, so it never crosses forces); suppression is cheap and runs on each read.


def disclosure_threshold() -> int | None:
    """Return this run's disclosure threshold, or None when disclosure control is off."""
    ctx = st.session_state.get(CONTEXT_KEY)
    return ctx.disclosure if ctx is not None else None


def protect(kind: str, result: object) -> object:
    """Apply disclosure control to a result produced by the lib function `kind`, when it is on."""
    threshold = disclosure_threshold()
    if threshold is None:
        return result
    from lib.privacy import disclosure

    return disclosure.protect(kind, result, threshold)


@st.cache_data(show_spinner=False, max_entries=1024)
def _summary(ds: Dataset, filters: Filters, scope: Scope) -> Summary:
    return query.summarise(engine(), ds, filters, scope)


def summary(ds: Dataset, filters: Filters, scope: Scope) -> Summary:
    """Return headline measures (cached on the dataset, filters and scope; small counts hidden if required)."""
    result = _summary(ds, filters, scope)
    threshold = disclosure_threshold()
    if threshold is None:
        return result
    from lib.privacy import disclosure

    return disclosure.protect_summary(result, threshold)


@st.cache_data(show_spinner=False, max_entries=1024)
def _breakdown(ds: Dataset, filters: Filters, scope: Scope, by: tuple[str, ...]) -> pd.DataFrame:
    return query.breakdown(engine(), ds, filters, scope, by)


def breakdown(ds: Dataset, filters: Filters, scope: Scope, by: tuple[str, ...]) -> pd.DataFrame:
    """Return a breakdown by dimensions (cached on small keys)."""
    return protect("lib.engine.query:breakdown", _breakdown(ds, filters, scope, by))


@st.cache_data(show_spinner=False, max_entries=1024)
def _tactic_counts(ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    return query.tactic_counts(engine(), ds, filters, scope)


def tactic_counts(ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Return reports per tactic (cached on small keys)."""
    return protect("lib.engine.query:tactic_counts", _tactic_counts(ds, filters, scope))


@st.cache_data(show_spinner=False, max_entries=256)
def filter_options(ds: Dataset, scope: Scope) -> dict[str, list[str]]:
    """Return the values each filter can take in this dataset and scope."""
    return query.filter_options(engine(), ds, scope)


# --- datasets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A dataset the picker offers: a path the engine opens, or a dataset already loaded."""

    key: str
    label: str
    path: str | None = None
    dataset: Dataset | None = None


SAMPLE_SOURCE = Source("sample", "Synthetic sample (not real data)", str(SAMPLE_DIR))
SESSION_DATASET_KEY = "_ose_session_dataset"
PICK_NEXT_KEY = "_ose_pick_next"


def is_synthetic(path: str | Path) -> bool:
    """Say whether a dataset folder was written by the synthetic generator (it leaves effects.json)."""
    return (Path(path) / "effects.json").is_file()


def sources(demo: bool = False) -> list[Source]:
    """Return the datasets on offer: OSE_DATASET first when set, the sample, saved, this session's.

    In demo mode only synthetic data is offered: the sample, and OSE_DATASET if the generator wrote it.
    """
    found = []
    env = os.environ.get("OSE_DATASET", "").strip()
    if env and (not demo or is_synthetic(env)):
        found.append(Source("env", f"{Path(env).name} (OSE_DATASET)", env))
    found.append(SAMPLE_SOURCE)
    if demo:
        return found
    for entry in library.entries():
        found.append(Source(f"lib:{entry.name}", f"{entry.name} (saved)", str(entry.path)))
    session = st.session_state.get(SESSION_DATASET_KEY)
    if session is not None:
        found.append(Source("session", f"{session.name} (this session only)", dataset=session))
    return found


def _open(source: Source) -> Dataset:
    if source.dataset is not None:
        return source.dataset
    return engine().open(source.path, name=source.label)


def warm_up() -> None:
    """Get the opening page ready before the first browser connects: run once, on a thread, at server start.

    Streamlit runs app.py only when a browser connects, once it has loaded the page; app.py starts this
    as the server starts (its st.App lifespan), so the two overlap. It makes the first run's imports and,
    in local mode only, loads the bundled sample and computes its opening Overview for the local user
    into the caches the first run reads (which waits for anything not finished). With a users file it
    loads no data: nothing is read before someone signs in, and every result is keyed by their scope.
    """
    import threading

    from lib.security import users
    from lib.ui import login

    if users.config_path() is not None or not login.serves_this_machine():
        _warm_imports()
        return
    # DuckDB loads the sample with the interpreter mostly free: the other imports go meanwhile.
    imports = threading.Thread(target=_warm_imports, name="ose-warm-up-imports", daemon=True)
    imports.start()
    try:
        ds = _open(SAMPLE_SOURCE)  # the picker opens it on every first run
        if not os.environ.get("OSE_DATASET", "").strip():  # else the picker opens OSE_DATASET first
            _warm_overview(ds, access.LOCAL_USER.scope)
    finally:
        imports.join()


def _warm_overview(ds: Dataset, scope: Scope) -> None:
    # What app_pages/overview.py asks for on its opening view: the filters' values, the two summaries,
    # the breakdowns (one scan of the engine, lib/engine/query.py) and the charts. tests/test_warm_up.py fails
    # if the page's first run has to compute anything this left out.
    from lib.present import charts

    filter_options(ds, scope)
    filters = query.default_filters(ds)
    now = _summary(ds, filters, scope)
    previous = query.previous_period(filters, ds)
    if previous is not None:
        _summary(ds, previous, scope)
    monthly = _breakdown(ds, filters, scope, ("month",))
    _spec(charts.reports_by_month, (monthly,), {"title": ""})
    if now.rates["officer_injured"].denominator:
        _spec(charts.rate_by_month, (monthly, "officer_injured"), {"title": ""})
    for dimension in ("officer_role", "shift"):
        frame = _breakdown(ds, filters, scope, (dimension,))
        _spec(charts.harm_rates_by_group, (frame, dimension, query.DIMENSION_LABELS[dimension]), {})
    _spec(charts.most_used_tactics, (_tactic_counts(ds, filters, scope),), {})


def _warm_imports() -> None:
    # The first run's other imports: Altair and the chart builders, Ibis's DuckDB backend (loaded by the
    # first query), the login gate and the pages' helpers.
    import ibis.backends.duckdb  # noqa: F401

    from lib.analysis import reference  # noqa: F401
    from lib.present import charts, chartspec, tables, wording  # noqa: F401
    from lib.privacy import disclosure  # noqa: F401
    from lib.ui import login  # noqa: F401


def pick_next(label_key: str) -> None:
    """Make the picker show the dataset with this source key on the next run."""
    st.session_state[PICK_NEXT_KEY] = label_key


def use_for_session(name: str, result: ingest.IngestResult) -> Dataset:
    """Load an ingest result for this session only and make it the current dataset."""
    reports, tactics = ingest.tables(result)
    key = hashlib.sha1(f"{id(st.session_state)}:{name}:{datetime.now().isoformat()}".encode()).hexdigest()[:12]
    ds = engine().add(name, reports, tactics, key=key)
    previous = st.session_state.get(SESSION_DATASET_KEY)
    if previous is not None and previous.id != ds.id:
        engine().drop(previous)  # one session upload at a time: the old one goes
    st.session_state[SESSION_DATASET_KEY] = ds
    pick_next("session")
    audit_event("upload", dataset=name, rows=result.report["rows_loaded"],
                set_aside=result.report["rows_quarantined"], kept="this session")
    return ds


def _warn_unopened(source: Source, reason: str) -> None:
    if source.key == "env":
        st.sidebar.warning(f"Could not open OSE_DATASET={source.path}: {reason}. "
                           "Showing the synthetic sample instead.", icon="⚠️")
    else:
        st.sidebar.warning(f"Could not open {source.label} at {source.path}: {reason}.", icon="⚠️")


def dataset_picker(demo: bool = False) -> Dataset:
    """Draw the dataset picker and return the chosen dataset, falling back to the sample."""
    usable: list[tuple[Source, Dataset]] = []
    for source in sources(demo):
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
    keys = [s.key for s, _ in usable]
    wanted = st.session_state.pop(PICK_NEXT_KEY, None)
    if wanted in keys:
        st.session_state["dataset_choice"] = labels[keys.index(wanted)]
    if "dataset_choice" not in st.session_state or st.session_state["dataset_choice"] not in labels:
        wanted = st.query_params.get("dataset")
        st.session_state["dataset_choice"] = labels[keys.index(wanted)] if wanted in keys else labels[0]
    choice = st.sidebar.selectbox("Dataset", labels, key="dataset_choice")
    source, ds = usable[labels.index(choice)]
    # The URL names the dataset only when it is not the default, so plain links stay short.
    st.session_state["_ose_dataset_param"] = source.key if source.key != keys[0] else None
    return ds


def disclosure_default_threshold() -> int:
    """Return the disclosure threshold: the users file's, else OSE_DISCLOSURE_THRESHOLD, else 10."""
    from lib.privacy import disclosure
    from lib.ui import login

    cfg = login.config()
    if cfg is not None and cfg.disclosure_threshold:
        return cfg.disclosure_threshold
    try:
        return disclosure.threshold_from_env()
    except ValueError as exc:
        st.error(f"Officer Safety Explorer will not start: {exc}.")
        st.stop()


def disclosure_setting(user: access.User, demo: bool, threshold: int) -> int | None:
    """Return the disclosure threshold in force: always for viewers and demos, a sidebar choice for others."""
    if demo or user.suppression_forced:
        st.sidebar.caption(f"Small numbers hidden: counts below {threshold} are suppressed"
                           + (" (demonstration)." if demo else " for your role."))
        return threshold
    on = st.sidebar.toggle(f"Hide counts below {threshold}", key="ose_disclosure",
                           help="Disclosure control, as for publication: small counts, and counts that could be "
                                "worked out from totals, are hidden in every chart, table and download.")
    return threshold if on else None


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
    """What every page needs: the dataset, the filters, the user, their data scope and disclosure setting.

    `officer_scope` is the scope of officer-level views (None: the user may not see officers one by one);
    `disclosure` is the threshold below which counts are hidden (None: disclosure control off).
    """

    dataset: Dataset
    filters: Filters
    scope: Scope
    user: access.User = access.LOCAL_USER
    officer_scope: Scope | None = None
    disclosure: int | None = None
    demo: bool = False


def set_context(ctx: Context) -> None:
    """Remember this run's context for the page that app.py is about to run."""
    st.session_state[CONTEXT_KEY] = ctx


def context() -> Context:
    """Return this run's context (set by app.py before the page runs)."""
    ctx = st.session_state.get(CONTEXT_KEY)
    if ctx is None:  # a page is only ever run by app.py's navigation, which sets the context
        st.switch_page("app.py")
    return ctx


def guard(page: str) -> Context:
    """Refuse a page this user's roles do not open (a direct link or a stale tab); return the context."""
    ctx = context()
    if not ctx.user.may_open(page) or (ctx.demo and page not in access.allowed_pages(ctx.user, demo=True)):
        st.error("Your role does not open this page. Ask an administrator if you need it.")
        st.stop()
    return ctx


def may_see_officers() -> bool:
    """Say whether this user may see officer-level views at all."""
    return context().officer_scope is not None


def officer_scope(section: str) -> Scope | None:
    """Return the scope for an officer-level section and audit its view, or None if the user may not see it."""
    ctx = context()
    if ctx.officer_scope is None:
        return None
    _audit_once("officer_view", section)
    return ctx.officer_scope


def officer_detail_shown(section: str) -> bool:
    """Say whether an officer-level list may be shown here (never under disclosure control); audit it if so."""
    ctx = context()
    if ctx.officer_scope is None or ctx.disclosure is not None:
        return False
    _audit_once("officer_view", section)
    return True


def stop_if_empty(now: Summary, sentence: str) -> None:
    """Stop a page with a message when no report matches, or so few that disclosure control hides them."""
    if now.reports == 0:
        st.info(f"No reports match these filters ({sentence}). Widen the dates or clear a filter.")
        st.stop()
    if now.reports is None:
        st.info(f"Fewer than {disclosure_threshold()} reports match these filters ({sentence}): small numbers "
                "are hidden, so there is nothing to show. Widen the dates or clear a filter.")
        st.stop()


def count_text(n: object) -> str:
    """Format a count for a metric or table, or 'suppressed (<N)' when disclosure control hid it."""
    from lib.present import wording

    return wording.count(None if n is None or pd.isna(n) else int(n), disclosure_threshold() or 10)


def count_phrase(n: int | None) -> str:
    """Write a count for a sentence, or 'fewer than N' when disclosure control hides it."""
    threshold = disclosure_threshold()
    if n is None or (threshold is not None and 0 < n < threshold):
        return f"fewer than {threshold}" if threshold else "an unknown number of"
    return f"{n:,}"


def row_detail_allowed() -> bool:
    """Say whether this user may see single reports (never under disclosure control)."""
    ctx = context()
    return ctx.user.may(access.ROW_DETAIL) and ctx.disclosure is None


def _audit_filters(filters: Filters) -> dict:
    out: dict[str, object] = {}
    if filters.date_from:
        out["from"] = filters.date_from.isoformat()
    if filters.date_to:
        out["to"] = filters.date_to.isoformat()
    for kind in FILTER_KINDS:
        values = filters.values(kind)
        if values:
            out[kind.field] = [str(v)[:200] for v in values[:100]]
    return out


def _audit_writer(event: str, rows: int | None, dataset: str | None, detail: dict) -> Callable[[], None]:
    """Take who, which dataset and which filters from this run now; return what writes the record later."""
    ctx = st.session_state.get(CONTEXT_KEY)
    user = ctx.user if ctx is not None else access.LOCAL_USER
    name = dataset if dataset is not None else (ctx.dataset.name if ctx is not None else None)
    filters = _audit_filters(ctx.filters) if ctx is not None else None
    kept = {k: v for k, v in detail.items() if v is not None} or None
    return lambda: audit.record(event, user=user.username, role=user.role, dataset=name, filters=filters,
                                rows=rows, detail=kept)


def audit_event(event: str, *, rows: int | None = None, dataset: str | None = None, **detail: object) -> None:
    """Write one audit record for this user, with the current dataset and filters (never data values)."""
    _audit_writer(event, rows, dataset, detail)()


def _audit_once(event: str, section: str) -> None:
    # Once per session for each section, dataset and filter state: reruns of the same view are not new views.
    ctx = context()
    marker = (event, section, ctx.dataset.id, ctx.filters)
    seen = st.session_state.setdefault("_ose_audited", set())
    if marker not in seen:
        seen.add(marker)
        audit_event(event, section=section)


def chart(builder: Callable[..., alt.TopLevelMixin] | alt.TopLevelMixin, *args: object, key: str | None = None,
          **kwargs: object) -> None:
    """Draw `builder(*args, **kwargs)` (a pure chart builder from lib) in the project's own theme.

    The finished Vega-Lite spec is cached on the builder and its small arguments: building an Altair
    chart and validating it against the schema cost more than the queries behind a cached rerun.
    A ready chart object is also accepted (drawn uncached).
    """
    import altair as alt

    from lib.present import chartspec

    if isinstance(builder, alt.TopLevelMixin):
        spec = chartspec.to_spec(builder)
    else:
        spec = _spec(builder, args, kwargs)
    # Single and layered charts stretch to their column; concatenated panels keep their widths.
    stretch = not any(k in spec for k in ("hconcat", "vconcat", "concat", "facet", "repeat"))
    st.vega_lite_chart(spec, theme=None, width="stretch" if stretch else "content", key=key)


def _spec(builder: Callable[..., alt.TopLevelMixin], args: tuple, kwargs: dict) -> dict:
    return _chart_spec(f"{builder.__module__}:{builder.__qualname__}", args, tuple(sorted(kwargs.items())))


@st.cache_data(show_spinner=False, max_entries=1024)
def _chart_spec(path: str, args: tuple, kwargs: tuple) -> dict:
    import importlib

    from lib.present import chartspec

    module, _, name = path.partition(":")
    if not module.startswith("lib."):
        raise ValueError(f"charts come from lib builders only, not {path!r}")
    # Frames reaching a chart are aggregates (an officer funnel has a point per officer), never raw
    # records: the engine aggregates first. Schema validation is left to the tests (test_charts,
    # test_disclosure and the page modules build and validate them): here it cost more than the queries.
    return chartspec.to_spec(getattr(importlib.import_module(module), name)(*args, **dict(kwargs)))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:60] or "table"


def table(frame: pd.DataFrame, name: str, *, what: str = "table") -> None:
    """Show a table with our own download (formula-safe CSV and XLSX, audited) in place of Streamlit's.

    The frame is already disclosure-protected by the wrappers above, so what is shown and what is
    downloaded are the same. Streamlit's own toolbar download is hidden by the app's style (app.py).
    """
    st.dataframe(frame, hide_index=True, width="stretch")
    download(frame, name, what=what)


def download(frame: pd.DataFrame, name: str, *, what: str = "table", label: str | None = None) -> None:
    """Offer a frame as CSV and XLSX downloads; each download is written to the audit log."""
    slug = _slug(name)
    ident = hashlib.sha1(repr((name, tuple(map(str, frame.columns)), len(frame))).encode()).hexdigest()[:10]
    left, right, _ = st.columns([1, 1, 4])
    for col, fmt in ((left, "csv"), (right, "xlsx")):
        writer, mime, suffix = export.FORMATS[fmt]
        data = audited("export", lambda w=writer: w(frame), rows=len(frame), what=what, file=slug + suffix)
        col.download_button(label or f"Download {fmt.upper()}", data, file_name=slug + suffix, mime=mime,
                            key=f"dl_{ident}_{fmt}", on_click="ignore", icon=":material/download:", type="tertiary")


def audited(event: str, produce: Callable[[], bytes], *, rows: int | None = None,
            **detail: object) -> Callable[[], bytes]:
    """Wrap a download's file maker so the file is logged when it is made (a click, not each render).

    Streamlit runs the maker on its own thread after the click, outside the session: who, where and
    which filters are taken now, while drawing the button.
    """
    write = _audit_writer(event, rows, None, detail)

    def make() -> bytes:
        data = produce()
        write()
        return data

    return make


def table_behind(frame: pd.DataFrame, caption: str, *, label: str = "Table behind this chart",
                 source: pd.DataFrame | None = None) -> None:
    """Caption a chart with the filter sentence and put the aggregate behind it in an expander.

    `source` is the protected frame the chart and table were built from: the caption says how many values
    disclosure control hid in it.
    """
    note = None
    if disclosure_threshold() is not None:
        from lib.privacy import disclosure

        note = disclosure.note(source if source is not None else frame)
    st.caption(caption + (f" {note}" if note else ""))
    with st.expander(label):
        table(frame, label if label != "Table behind this chart" else _caption_name(caption))


def _caption_name(caption: str) -> str:
    return caption.split(".")[0][:50]


# --- uploads ------------------------------------------------------------------------------

UPLOAD_KEY = "_ose_upload"
MAPPING_KEY = "_ose_mapping"
AUTO_LABEL = "Detect automatically"
MAP_MYSELF = "map"


def format_choices() -> dict[str, str]:
    """Return the formats a user can pick for an upload, automatic detection first."""
    return {ingest.AUTO: AUTO_LABEL, **{f.name: f.label for f in ingest.available_formats()},
            MAP_MYSELF: "Map the columns myself"}


def read_uploads(payload: list[tuple[str, bytes]], fmt: str, force: str | None, duplicates: str) -> None:
    """Ingest uploaded files with a progress bar; keep the result, or start the mapping step."""
    st.session_state.pop(UPLOAD_KEY, None)
    st.session_state.pop(MAPPING_KEY, None)
    if fmt == MAP_MYSELF:
        st.session_state[MAPPING_KEY] = {"files": payload, "force": force, "duplicates": duplicates}
        return
    bar = st.progress(0.0, text="Reading")
    try:
        result = ingest.ingest(payload, fmt=fmt, force=force, duplicates=duplicates,
                               progress=lambda done, message: bar.progress(min(done, 1.0), text=message))
    except ingest.RejectedFile as exc:
        bar.empty()
        if ingest.NO_FORMAT in str(exc):
            st.session_state[MAPPING_KEY] = {"files": payload, "force": force, "duplicates": duplicates}
            st.warning(f"{exc}. Map its columns below; the mapping is saved as a profile for next time.")
        else:
            st.error(f"This upload cannot be read: {exc}")
        return
    except Exception as exc:  # a file we did not foresee must never show a traceback
        bar.empty()
        st.error(f"This upload cannot be read ({type(exc).__name__}: {exc}). Nothing was loaded.")
        return
    bar.empty()
    st.session_state[UPLOAD_KEY] = result


def upload_name(report: dict) -> str:
    """Propose a dataset name from the uploaded files."""
    names = [Path(f["name"]).stem for f in report["files"]]
    base = names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"
    return "".join(c if c.isalnum() or c in " _.-" else "-" for c in base)[:64].strip(" .-_") or "Upload"


def save_upload(name: str, result: ingest.IngestResult) -> None:
    """Save an upload to the library and open it."""
    try:
        library.save(name, result, user=context().user.username)
    except library.LibraryError as exc:
        st.error(str(exc))
        return
    audit_event("save", dataset=name.strip(), rows=result.report["rows_loaded"],
                set_aside=result.report["rows_quarantined"])
    pick_next(f"lib:{name.strip()}")
    st.success(f"Saved as '{name.strip()}'. It is now the current dataset.")
    st.rerun()


def append_upload(name: str, result: ingest.IngestResult) -> None:
    """Append an upload to a saved dataset and open it."""
    try:
        record = library.append(name, result, user=context().user.username)
    except library.LibraryError as exc:
        st.error(str(exc))
        return
    audit_event("append", dataset=name, rows=record["rows_loaded"], set_aside=record["rows_quarantined"])
    pick_next(f"lib:{name}")
    st.success(f"Appended {record['rows_loaded']:,} rows to '{name}'; {record['rows_quarantined']:,} set aside "
               f"({record['already_in_dataset']:,} already in the dataset).")


def delete_saved(name: str) -> None:
    """Delete a saved dataset."""
    try:
        library.delete(name)
    except library.LibraryError as exc:
        st.error(str(exc))
        return
    audit_event("delete", dataset=name)


def provenance_table(name: str) -> pd.DataFrame:
    """Return a saved dataset's loads as a table."""
    loads = library.provenance(name)
    return pd.DataFrame([{"When (UTC)": p["loaded_at"], "By": p["by"], "Action": p["action"],
                          "Files": ", ".join(p["files"]), "Format": p["format"], "Rows read": p["rows_in"],
                          "Loaded": p["rows_loaded"], "Set aside": p["rows_quarantined"]} for p in loads])


def mapping_step() -> None:
    """Let the user confirm a proposed column mapping for an unrecognised extract."""
    pending = st.session_state.get(MAPPING_KEY)
    if not pending:
        return
    from lib.ingest import mapping  # the mapping UI's pure parts

    name, data = pending["files"][0]
    try:
        raw = ingest.read_extract(name, data, ingest.Limits.from_env())
    except ingest.RejectedFile as exc:
        st.error(str(exc))
        return
    st.subheader("Map the columns")
    proposal = mapping.propose(raw.frame, Path(name).stem)
    st.caption("The app proposed where each field comes from, from the column names and the values. "
               "Check each line; pick '(not in this extract)' where a field is missing.")
    edited = st.data_editor(
        mapping.editor_frame(proposal, raw.frame), hide_index=True, width="stretch", key="mapping_editor",
        disabled=["Field", "Confidence", "Example values"],
        column_order=["Field", "Source column", "Confidence", "Example values"],
        column_config={"Source column": st.column_config.SelectboxColumn(
                           options=[mapping.NONE, *raw.columns], required=True),
                       "Confidence": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.1f")})
    tactic_names = mapping.tactic_frame(proposal, raw.frame)
    tactics_edited = None
    if len(tactic_names):
        st.markdown("**Tactic names**: match the extract's own names to the Home Office list. "
                    "Names kept as given still load, and are listed as values outside the vocabulary.")
        tactics_edited = st.data_editor(
            tactic_names, hide_index=True, width="stretch", key="tactic_editor",
            disabled=["Tactic in the extract", "Times used"],
            column_config={"Home Office tactic": st.column_config.SelectboxColumn(
                options=[mapping.KEEP, *schema.TACTICS], required=True)})
    left, right = st.columns(2)
    profile_name = left.text_input("Save this mapping as profile", value=mapping.safe_name(Path(name).stem),
                                   key="mapping_name")
    force = right.text_input("Force these records belong to", value=pending.get("force") or "",
                             key="mapping_force")
    if st.button("Save profile and read the files", type="primary"):
        try:
            fmt = mapping.save(proposal, edited, profile_name, ingest.profile_dir(), force, tactics_edited)
        except ValueError as exc:
            st.error(str(exc))
            return
        st.session_state.pop(MAPPING_KEY, None)
        read_uploads(pending["files"], fmt, pending["force"], pending["duplicates"])
        st.rerun()


# --- data quality (cached on small keys) --------------------------------------------------


def quality_check(check: str, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    """Run one data-quality check by name (completeness, invalid_codes, contradictions, ...)."""
    return protect(f"lib.analysis.quality:{check}", _quality_check(check, ds, filters, scope))


@st.cache_data(show_spinner=False, max_entries=256)
def _quality_check(check: str, ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame:
    from lib.analysis import quality

    checks = {"completeness": quality.completeness, "invalid_codes": quality.invalid_codes,
              "contradictions": quality.contradictions, "coverage": quality.coverage,
              "late_recorded": quality.late_recorded}
    return checks[check](engine(), ds, filters, scope)


def completeness_by(ds: Dataset, filters: Filters, scope: Scope, level: str) -> pd.DataFrame:
    """Return completeness per force or area (cached)."""
    return protect("lib.analysis.quality:completeness_by", _completeness_by(ds, filters, scope, level))


@st.cache_data(show_spinner=False, max_entries=256)
def _completeness_by(ds: Dataset, filters: Filters, scope: Scope, level: str) -> pd.DataFrame:
    from lib.analysis import quality

    return quality.completeness_by(engine(), ds, filters, scope, level=level)


def contradiction_rows(ds: Dataset, filters: Filters, scope: Scope, rule: str,
                       limit: int = 500) -> pd.DataFrame | None:
    """Return up to `limit` reports that break a rule, or None if this user may not see single reports."""
    if not row_detail_allowed():
        return None
    return _contradiction_rows(ds, filters, scope, rule, limit)


@st.cache_data(show_spinner=False, max_entries=128)
def _contradiction_rows(ds: Dataset, filters: Filters, scope: Scope, rule: str, limit: int) -> pd.DataFrame:
    from lib.analysis import quality

    expr = quality.contradiction_rows(engine(), ds, filters, scope, rule)
    return engine().execute(expr.limit(limit))


# --- national reference figures -----------------------------------------------------------


def reference_dir() -> Path:
    """Return where imported Home Office figures are kept (OSE_DATA_DIR/reference)."""
    return library.data_dir() / "reference"


def import_national(uploaded) -> None:
    """Read the Home Office data tables (.ods) and keep the national figures they give."""
    import tempfile

    from lib.analysis import reference

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tables.ods"
        path.write_bytes(uploaded.getvalue())
        try:
            with st.spinner("Reading the Home Office tables"):
                bench = reference.national_benchmarks(reference.read_ods_tables(path))
        except Exception as exc:  # any malformed workbook gets a message, never a traceback
            st.error(f"{uploaded.name} is not the Home Office use-of-force data tables workbook "
                     f"({type(exc).__name__}: {exc})")
            return
    reference.save_benchmarks(bench, reference_dir())
    st.success(f"Imported the national figures for {bench['year']}: {bench['incidents']:,} reports.")


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


# --- any lib query, cached on small keys --------------------------------------------------


def cached_query(path: str, ds: Dataset, filters: Filters, scope: Scope, *args: object) -> object:
    """Run `module:function(engine, ds, filters, scope, *args)` from lib, cached on small keys, then protect it.

    `path` names a function in code (for example "lib.analysis.tactics:use_over_time"), never user input;
    the arguments after the scope must be small values (strings, numbers, tuples).
    """
    return protect(path, _cached_query(path, ds, filters, scope, *args))


@st.cache_data(show_spinner=False, max_entries=2048)
def _cached_query(path: str, ds: Dataset, filters: Filters, scope: Scope, *args: object) -> object:
    import importlib

    module, _, name = path.partition(":")
    if not module.startswith("lib."):
        raise ValueError(f"cached_query runs lib functions only, not {path!r}")
    return getattr(importlib.import_module(module), name)(engine(), ds, filters, scope, *args)


# --- roster and training ------------------------------------------------------------------

ROSTER_KEY = "_ose_roster"
ROSTER_MAPPING_KEY = "_ose_roster_mapping"


def roster_tables(ds: Dataset) -> dict[str, pd.DataFrame]:
    """Return the roster tables for a dataset: uploaded this session, else those saved beside it."""
    uploaded = st.session_state.get(ROSTER_KEY, {}).get(ds.id)
    if uploaded:
        return uploaded
    return _saved_roster(ds)


@st.cache_data(show_spinner=False, max_entries=32)
def _saved_roster(ds: Dataset) -> dict[str, pd.DataFrame]:
    folder = Path(ds.source)
    found = {}
    if folder.is_dir():
        for kind in ("officers", "training", "exposure"):
            path = folder / f"{kind}.parquet"
            if path.exists():
                found[kind] = pd.read_parquet(path)
    return found


def load_roster(ds: Dataset, files: list) -> None:
    """Read uploaded roster files (officers, training, exposure) for this session and dataset."""
    from lib.ingest import roster

    for f in files:
        try:
            table = roster.read(f.name, f.getvalue())
        except ingest.RejectedFile as exc:
            st.warning(f"{f.name}: {exc}. Map its columns below.")
            st.session_state[ROSTER_MAPPING_KEY] = (f.name, f.getvalue())
            continue
        add_roster_table(ds, f.name, table)


def add_roster_table(ds: Dataset, name: str, table) -> None:
    """Attach one read roster table to this session's dataset and say what was loaded."""
    tables = dict(roster_tables(ds))
    records = table.records.drop(columns=["_file", "_row"])
    if table.kind == "officers" and "pst_trained_on" not in records:
        records["pst_trained_on"] = pd.NaT
    tables[table.kind] = records
    reasons = f" ({', '.join(sorted(set(table.quarantine['reason'])))})" if len(table.quarantine) else ""
    st.success(f"{name}: {table.kind} table, {table.rows_in:,} rows read, {len(table.records):,} loaded, "
               f"{table.rows_in - len(table.records):,} set aside{reasons}")
    if "training" in tables and "officers" in tables:
        first = tables["training"].groupby("officer_id")["trained_on"].min()
        officers = tables["officers"].copy()
        officers["pst_trained_on"] = officers["officer_id"].map(first)
        tables["officers"] = officers
    st.session_state.setdefault(ROSTER_KEY, {})[ds.id] = tables


def _panel(tables: dict[str, pd.DataFrame], ds: Dataset, filters: Filters, scope: Scope) -> pd.DataFrame | None:
    from lib.analysis import training

    if "exposure" not in tables or "officers" not in tables:
        return None
    scoped = training.scoped_roster(tables, scope)
    counts = training.officer_month_counts(engine(), ds, filters, scope)
    return training.panel_from_counts(counts, scoped["exposure"], scoped["officers"])


DEBRIEFS_KEY = "_ose_debriefs"


def load_debriefs(ds: Dataset, uploaded) -> None:
    """Read an uploaded debrief file for this session and dataset."""
    from lib.ingest import debriefs

    try:
        read = debriefs.read(uploaded.name, uploaded.getvalue())
    except ingest.RejectedFile as exc:
        st.error(f"{uploaded.name}: {exc}")
        return
    st.session_state.setdefault(DEBRIEFS_KEY, {})[ds.id] = read.records
    set_aside = read.rows_in - len(read.records)
    st.success(f"{uploaded.name}: {read.rows_in:,} rows read, {len(read.records):,} debriefs loaded, "
               f"{set_aside:,} set aside" + (" (no report or incident id)" if set_aside else ""))


def demo_debriefs(ds: Dataset) -> None:
    """Make synthetic debriefs for the synthetic sample, so a demo can show the section."""
    from lib.analysis import debriefs
    from lib.ingest import debriefs as debrief_files

    reports = engine().execute(engine().reports(ds).select("report_id", "occurred_at", "officer_injured",
                                                            "officer_assaulted"))
    made = debriefs.synthesise(reports, seed=1)
    read = debrief_files.read("synthetic-debriefs.csv", made.to_csv(index=False).encode())
    st.session_state.setdefault(DEBRIEFS_KEY, {})[ds.id] = read.records


def debrief_records(ds: Dataset) -> pd.DataFrame | None:
    """Return the debriefs loaded this session for a dataset, if any."""
    return st.session_state.get(DEBRIEFS_KEY, {}).get(ds.id)


def roster_mapping_step(ds: Dataset) -> None:
    """Let the user map the columns of a roster file whose headers were not recognised."""
    from lib.ingest import roster

    pending = st.session_state.get(ROSTER_MAPPING_KEY)
    if not pending:
        return
    name, data = pending
    try:
        raw = ingest.read_extract(name, data)
    except ingest.RejectedFile as exc:
        st.error(str(exc))
        st.session_state.pop(ROSTER_MAPPING_KEY, None)
        return
    proposed_kind, _ = roster.propose(raw.columns)
    kinds = list(roster.ALIASES)
    kind = st.selectbox(f"What does {name} hold?", kinds, index=kinds.index(proposed_kind), key="roster_kind")
    edited = st.data_editor(roster.mapping_frame(kind, raw.columns), hide_index=True, width="stretch",
                            key=f"roster_mapping_{kind}", disabled=["Field"],
                            column_config={"Source column": st.column_config.SelectboxColumn(
                                options=[roster.NONE, *raw.columns], required=True)})
    if st.button("Read with this mapping"):
        try:
            table = roster.read(name, data, kind=kind, mapping=roster.mapping_from_frame(edited))
        except ingest.RejectedFile as exc:
            st.error(str(exc))
            return
        st.session_state.pop(ROSTER_MAPPING_KEY, None)
        add_roster_table(ds, name, table)


def overdue_officers(ds: Dataset, as_of: date) -> pd.DataFrame | None:
    """Return the overdue officers this user may see one by one (a supervisor: their teams), or None."""
    from lib.analysis import training

    if not officer_detail_shown("officers overdue"):
        return None
    roster = training.scoped_roster(roster_tables(ds), context().officer_scope)
    if "officers" not in roster or "training" not in roster:
        return None
    return training.overdue(training.compliance(roster["training"], roster["officers"], as_of))


def training_results(ds: Dataset, filters: Filters, scope: Scope) -> tuple[dict, pd.DataFrame] | None:
    """Return the training effects and event study (cached unless the roster was uploaded this session)."""
    if st.session_state.get(ROSTER_KEY, {}).get(ds.id):
        results = _training_results(_panel(roster_tables(ds), ds, filters, scope))
    else:
        results = _saved_training_results(ds, filters, scope)
    if results is None:
        return None
    found, study = results
    return protect("lib.analysis.training:effects", found), protect("lib.analysis.training:event_study", study)


@st.cache_data(show_spinner="Estimating the effect of training", max_entries=64)
def _saved_training_results(ds: Dataset, filters: Filters, scope: Scope) -> tuple[dict, pd.DataFrame] | None:
    return _training_results(_panel(_saved_roster(ds), ds, filters, scope))


def _training_results(panel: pd.DataFrame | None) -> tuple[dict, pd.DataFrame] | None:
    from lib.analysis import training

    if panel is None:
        return None
    return training.effects(panel), training.event_study(panel)


def page_header(page: str, title: str, unit: str | None = None) -> tuple[Dataset, Filters, Scope, str]:
    """Check the user may open the page; draw its title and caption (dataset, filters, scope, unit)."""
    ctx = guard(page)
    sentence = query.describe(ctx.filters)
    st.title(title)
    caption = f"{ctx.dataset.name} · {sentence} · {ctx.scope.describe()}"
    st.caption(caption + (f". Counting unit: {unit}." if unit else ""))
    return ctx.dataset, ctx.filters, ctx.scope, sentence


# --- administration -----------------------------------------------------------------------


def accounts_table(cfg) -> pd.DataFrame:
    """Return the accounts in the users file, with live sessions and lockouts (never a password hash)."""
    from lib.ui import login

    live = login.store().live_sessions()
    locked = dict(login.store().locked_users())
    rows = []
    for username in sorted(cfg.users):
        user = cfg.user(username)
        rows.append({"Username": username, "Name": user.name, "Roles": ", ".join(user.roles),
                     "Force": ", ".join(sorted(user.forces)) if user.forces is not None else "every force",
                     "Areas": ", ".join(sorted(user.areas)) if user.areas is not None else "",
                     "Teams": ", ".join(sorted(user.teams)) if user.teams is not None else "",
                     "Live sessions": live.get(username, 0),
                     "Locked until (UTC)": (datetime.fromtimestamp(locked[username], UTC).strftime("%H:%M")
                                            if username in locked else "")})
    return pd.DataFrame(rows)


def unlock(username: str) -> None:
    """Clear a username's failed logins (administrator)."""
    from lib.ui import login

    login.store().clear_failures(username)
    audit_event("user_change", account=username, action="unlocked")


def sign_out_everywhere(username: str) -> int:
    """End every session of a user (administrator); return how many ended."""
    from lib.ui import login

    ended = login.store().revoke_user(username)
    audit_event("session_revoked", account=username, sessions_ended=ended)
    return ended


def save_account(cfg, username: str, name: str, role: str, force: str, teams: str,
                 password: str) -> tuple[str, bool]:
    """Create or update an account from the admin form; return a message and whether it worked."""
    from lib.security import users
    from lib.ui import login

    username = username.strip()
    team_list = [t.strip() for t in teams.split(",") if t.strip()]
    try:
        created = users.upsert_user(cfg.path, username, role=role, password=password or None, name=name or None,
                                    force=force.strip(), teams=team_list)
    except (ValueError, OSError) as exc:
        return f"Not saved: {exc}.", False
    ended = login.store().revoke_user(username) if password and not created else 0
    audit_event("user_change", account=username, action="created" if created else "updated", role=role)
    return (f"{'Created' if created else 'Updated'} {username}" + (f"; {ended} session(s) signed out" if ended else "")
            + "."), True
