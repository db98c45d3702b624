"""This run's context: dataset, filters, user, scope and disclosure; page guards and the audit trail."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lib.engine.query import FILTER_KINDS, Filters, Scope
from lib.engine.store import Dataset
from lib.security import access, audit
from lib.ui.login import client_address

CONTEXT_KEY = "_ose_context"


def disclosure_threshold() -> int | None:
    """Return this run's disclosure threshold, or None when disclosure control is off (or outside a page run)."""
    if get_script_run_ctx(suppress_warning=True) is None:  # the warm-up thread: no session, nothing shown
        return None
    ctx = st.session_state.get(CONTEXT_KEY)
    return ctx.disclosure if ctx is not None else None


@dataclass(frozen=True)
class Context:
    """What every page needs: the dataset, the filters, the user, their data scope and disclosure setting.

    `officer_scope` is the scope of officer-level views (None: the user may not see officers one by one);
    `disclosure` is the threshold below which counts are hidden (None: disclosure control off);
    `min_reports` is the fewest reports a selection must hold to be shown at all (None: no such rule;
    set where disclosure control is forced, with the filters' period in whole months).
    """

    dataset: Dataset
    filters: Filters
    scope: Scope
    user: access.User = access.LOCAL_USER
    officer_scope: Scope | None = None
    disclosure: int | None = None
    demo: bool = False
    min_reports: int | None = None


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
    client = client_address()
    return lambda: audit.record(event, user=user.username, role=user.role, dataset=name, filters=filters,
                                rows=rows, detail=kept, client=client)


def audit_event(event: str, *, rows: int | None = None, dataset: str | None = None, **detail: object) -> None:
    """Write one audit record for this user, with the current dataset and filters (never data values)."""
    _audit_writer(event, rows, dataset, detail)()


def audit_rejected_upload(names: list[str], reason: object) -> None:
    """Write an upload_rejected record: the files' names and the first line of why (never their contents)."""
    text = str(reason).strip().splitlines()
    audit_event("upload_rejected", files=[str(n)[:audit.MAX_TEXT] for n in names[:audit.MAX_ITEMS]],
                reason=(text[0] if text else type(reason).__name__)[:audit.MAX_TEXT])


def _audit_once(event: str, section: str) -> None:
    # Once per session for each section, dataset and filter state: reruns of the same view are not new views.
    ctx = context()
    marker = (event, section, ctx.dataset.id, ctx.filters)
    seen = st.session_state.setdefault("_ose_audited", set())
    if marker not in seen:
        seen.add(marker)
        audit_event(event, section=section)


def audited(event: str, produce: Callable[[], bytes], *, rows: int | None = None, dataset: str | None = None,
            **detail: object) -> Callable[[], bytes]:
    """Wrap a download's file maker so the file is logged when it is made (a click, not each render).

    Streamlit runs the maker on its own thread after the click, outside the session: who, where and
    which filters are taken now, while drawing the button. `dataset` names the dataset the file comes
    from when it is not the open one (a saved dataset's set-aside rows).
    """
    write = _audit_writer(event, rows, dataset, detail)

    def make() -> bytes:
        data = produce()
        write()
        return data

    return make
