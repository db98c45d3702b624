"""The global filters in the sidebar, kept in the URL so a link opens the same view.

Under forced disclosure control (viewers, demonstrations) the period is whole calendar months: two
month pickers instead of the day picker, and whatever a shared link says is snapped to whole months,
so no two views a viewer can open differ by a few days (see `query.snap_to_months`).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import streamlit as st

from lib.engine import query
from lib.engine.query import FILTER_KINDS, Filters, Scope
from lib.engine.store import Dataset
from lib.ui import cache

FILTER_DATASET_KEY = "_ose_filters_dataset"


DATES_KEY = "flt_dates"
MONTH_FROM_KEY = "flt_month_from"
MONTH_TO_KEY = "flt_month_to"


def _widget_key(field: str) -> str:
    return f"flt_{field}"


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


def _months(ds: Dataset) -> list[str]:
    """Return the calendar months the dataset spans, oldest first, as "YYYY-MM"."""
    if ds.first is None or ds.last is None:
        return []
    first, last = ds.first.date(), ds.last.date()
    return [f"{i // 12}-{i % 12 + 1:02d}"
            for i in range(first.year * 12 + first.month - 1, last.year * 12 + last.month)]


def _month_words(month: str) -> str:
    return f"{date.fromisoformat(month + '-01'):%B %Y}"


def _apply_to_widgets(filters: Filters, options: dict[str, list[str]], months: list[str] | None = None) -> None:
    # Assigning the keys before the widgets are drawn keeps the browser's chips in step
    # with the server when the options change (a stale multiselect otherwise).
    for kind in FILTER_KINDS:
        allowed = set(options.get(kind.field, []))
        st.session_state[_widget_key(kind.field)] = [v for v in filters.values(kind) if v in allowed]
    if months:
        for key, day, fallback in ((MONTH_FROM_KEY, filters.date_from, months[0]),
                                   (MONTH_TO_KEY, filters.date_to, months[-1])):
            month = f"{day:%Y-%m}" if day else fallback
            st.session_state[key] = month if month in months else fallback
        return
    # date_input takes no None inside its range: an open end is left out of the tuple.
    st.session_state[DATES_KEY] = tuple(d for d in (filters.date_from, filters.date_to) if d)


def _opening(ds: Dataset, whole_months: bool) -> Filters:
    return query.default_months(ds) if whole_months else query.default_filters(ds)


def _reset(ds: Dataset, options: dict[str, list[str]], whole_months: bool = False) -> None:
    _apply_to_widgets(_opening(ds, whole_months), options, _months(ds) if whole_months else None)


def _day(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None


def _clamp(d: date | None, ds: Dataset) -> date | None:
    if d is None or ds.first is None or ds.last is None:
        return d
    return min(max(d, ds.first.date()), ds.last.date())


KEPT_KEY = "_ose_filters_kept"  # (dataset id, filters) of the last page that drew the filters


def filter_sidebar(ds: Dataset, scope: Scope, whole_months: bool = False, shown: bool = True) -> Filters:
    """Draw the global filters in the sidebar, keep them in the URL, and return them.

    With `whole_months` (forced disclosure control) the period is picked, and always returned, in
    whole calendar months, whatever the URL says. Not `shown` (a page the filters do not apply to, such as
    Data), nothing is drawn and the filters last drawn are returned; the next page that draws them starts from
    them (Streamlit forgets a widget's value in a run that does not draw it).
    """
    options = cache.filter_options(ds, scope)
    first, last = _day(ds.first), _day(ds.last)
    months = _months(ds) if whole_months else []
    kept = st.session_state.get(KEPT_KEY)
    if not shown:
        if kept is not None and kept[0] == ds.id:
            return kept[1]
        return _opening(ds, whole_months)
    if kept is not None and kept[0] == ds.id and st.session_state.get(FILTER_DATASET_KEY) == ds.id \
            and not all(_widget_key(kind.field) in st.session_state for kind in FILTER_KINDS):
        _apply_to_widgets(kept[1], options, months)  # back from a page without the filters
    if st.session_state.get(FILTER_DATASET_KEY) != ds.id:
        first_visit = FILTER_DATASET_KEY not in st.session_state
        initial = _opening(ds, whole_months)
        # A link whose dataset is not here (lib/ui/datasets.py) brings no filters: they were another dataset's.
        missed = st.session_state.pop("_ose_link_missed", None)
        shared = _filters_from_url(options) if first_visit and missed is None else None
        if shared is not None:  # a shared link: its values, the opening dates where it has none
            initial = replace(shared, date_from=shared.date_from or initial.date_from,
                              date_to=shared.date_to or initial.date_to)
        if whole_months:
            initial = query.snap_to_months(initial, first, last)
        else:
            initial = replace(initial, date_from=_clamp(initial.date_from, ds),
                              date_to=_clamp(initial.date_to, ds))
        _apply_to_widgets(initial, options, months)
        st.session_state[FILTER_DATASET_KEY] = ds.id

    side = st.sidebar
    side.markdown("**Filters** apply to every page")
    if months:
        start = side.selectbox("From month", months, key=MONTH_FROM_KEY, format_func=_month_words)
        end = side.selectbox("To month", months, key=MONTH_TO_KEY, format_func=_month_words)
        date_from, date_to = date.fromisoformat(f"{start}-01"), date.fromisoformat(f"{end}-01")
    elif whole_months:  # a dataset without dates: no period to pick
        date_from = date_to = None
    else:
        bounds = {}
        if first is not None and last is not None:
            bounds = {"min_value": first, "max_value": last}
        dates = side.date_input("Dates", key=DATES_KEY, format="DD/MM/YYYY", **bounds)
        dates = tuple(dates) if isinstance(dates, (tuple, list)) else (dates, None)
        date_from = dates[0] if len(dates) > 0 else None
        date_to = dates[1] if len(dates) > 1 else None
    if whole_months:  # the one rule, whatever the widgets hold: whole months within the dataset's
        period = query.snap_to_months(Filters(date_from=date_from, date_to=date_to), first, last)
        date_from, date_to = period.date_from, period.date_to
        if date_from is not None:
            side.caption(f"{query.describe_months(period, first, last)}, whole months for your role.")
    chosen: dict[str, tuple[str, ...]] = {}
    for kind in FILTER_KINDS:
        values = side.multiselect(kind.label, options.get(kind.field, []), key=_widget_key(kind.field),
                                  placeholder="All")
        chosen[kind.field] = tuple(values)
    side.button("Reset filters", on_click=_reset, args=(ds, options, whole_months), width="stretch")
    filters = Filters(date_from=date_from, date_to=date_to, **chosen)
    _write_url(filters)
    st.session_state[KEPT_KEY] = (ds.id, filters)
    return filters


# Page choices kept in the link beside the filters (a measure, a funnel level, a reference group): the parameter is
# the widget's key. `_write_url` keeps them when it rewrites the filters.
CHOICE_PREFIXES = ("risk_", "explore_", "tactics_", "quality_")


def linked(key: str, options: list, many: bool = False) -> None:
    """Before a page draws the widget `key`: take its value from the link if the session has none (a shared link).

    `many`: the widget holds a list (a multiselect); the link lists its values, and only known ones are taken.
    """
    if not key.startswith(CHOICE_PREFIXES):
        raise ValueError(f"{key} is not a page choice kept in links")
    if key in st.session_state:
        return
    if many:
        known = {str(o): o for o in options}
        picked = list(dict.fromkeys(known[w] for w in st.query_params.get_all(key) if w in known))  # the link's order
        if picked:
            st.session_state[key] = picked
        return
    wanted = st.query_params.get(key)
    match = next((o for o in options if str(o) == wanted), None)
    if match is not None:
        st.session_state[key] = match


def keep_in_link(key: str, value: object, default: object) -> None:
    """After a page drew the widget `key`: put its value in the link, or take it out when it is the default."""
    if isinstance(value, (list, tuple)):
        values = [str(v) for v in value]
        if not values or values == [str(v) for v in (default or [])]:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get_all(key) != values:
            st.query_params[key] = values
        return
    current = st.query_params.get(key)
    if value is None or value == default:
        if current is not None:
            del st.query_params[key]
    elif current != str(value):
        st.query_params[key] = str(value)


def _write_url(filters: Filters) -> None:
    params: dict[str, list[str]] = {k: st.query_params.get_all(k) for k in st.query_params
                                    if k.startswith(CHOICE_PREFIXES)}
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
