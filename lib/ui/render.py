"""Drawing: charts from pure builders (specs cached), tables with our own audited downloads, page headers."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from lib.engine import query
from lib.engine.query import Filters, Scope, Summary
from lib.engine.store import Dataset
from lib.present import export
from lib.ui import cache, context

if TYPE_CHECKING:  # Altair loads with the first chart: the engine can load the sample meanwhile (warm-up)
    import altair as alt


def stop_if_empty(now: Summary, sentence: str) -> None:
    """Stop a page with a message when no report matches, or so few that disclosure control hides them."""
    if now.reports == 0:
        st.info(f"No reports match these filters ({sentence}). Widen the dates or clear a filter.")
        st.stop()
    if now.reports is None:
        st.info(f"Fewer than {context.disclosure_threshold()} reports match these filters ({sentence}): small numbers "
                "are hidden, so there is nothing to show. Widen the dates or clear a filter.")
        st.stop()


def count_text(n: object) -> str:
    """Format a count for a metric or table, or 'suppressed (<N)' when disclosure control hid it."""
    from lib.present import wording

    return wording.count(None if n is None or pd.isna(n) else int(n), context.disclosure_threshold() or 10)


def count_phrase(n: int | None) -> str:
    """Write a count for a sentence, or 'fewer than N' when disclosure control hides it."""
    threshold = context.disclosure_threshold()
    if n is None or (threshold is not None and 0 < n < threshold):
        return f"fewer than {threshold}" if threshold else "an unknown number of"
    return f"{n:,}"


def chart(builder: Callable[..., alt.TopLevelMixin] | alt.TopLevelMixin, *args: object, key: str | None = None,
          **kwargs: object) -> None:
    """Draw `builder(*args, **kwargs)` (a pure chart builder from lib) in the project's own theme.

    The finished Vega-Lite spec is cached on the builder and its small arguments: building an Altair
    chart and validating it against the schema cost more than the queries behind a cached rerun.
    A ready chart object is also accepted (drawn uncached).
    """
    import altair as alt

    from lib.present import chartspec

    vega_lite(chartspec.to_spec(builder) if isinstance(builder, alt.TopLevelMixin) else spec(builder, args, kwargs),
              key=key)


def vega_lite(drawn: dict, *, key: str | None = None) -> None:
    """Draw a finished Vega-Lite spec (from lib/present) in the project's own theme."""
    # Single and layered charts stretch to their column; concatenated panels keep their widths.
    stretch = not any(k in drawn for k in ("hconcat", "vconcat", "concat", "facet", "repeat"))
    st.vega_lite_chart(drawn, theme=None, width="stretch" if stretch else "content", key=key)


def draw(call: tuple[Callable[..., alt.TopLevelMixin], tuple, dict]) -> None:
    """Draw a chart given as (builder, args, kwargs), as lib/ui/opening.py lists them."""
    builder, args, kwargs = call
    chart(builder, *args, **kwargs)


def spec(builder: Callable[..., alt.TopLevelMixin], args: tuple = (), kwargs: dict | None = None) -> dict:
    """Return the Vega-Lite spec of `builder(*args, **kwargs)`, cached on the builder's name and its arguments."""
    from lib.ui.cache import name_of

    if not builder.__module__.startswith("lib."):
        raise ValueError(f"charts come from lib builders only, not {name_of(builder)}")
    return _chart_spec(name_of(builder), builder, args, tuple(sorted((kwargs or {}).items())))


@st.cache_data(show_spinner=False, max_entries=1024, hash_funcs=cache.KEYS)
def _chart_spec(name: str, _builder: Callable[..., alt.TopLevelMixin], args: tuple, kwargs: tuple) -> dict:
    # Keyed on the builder's `name` and the arguments (the underscore keeps the function out of the hash).
    # Frames reaching a chart are aggregates (an officer funnel has a point per officer), never raw
    # records: the engine aggregates first. Schema validation is left to the tests (test_charts,
    # test_disclosure and the page modules build and validate them): here it cost more than the queries.
    from lib.present import chartspec

    return chartspec.to_spec(_builder(*args, **dict(kwargs)))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:60] or "table"


def data_days(ds) -> tuple:
    """Return the dataset's first and last days (None when it is empty)."""
    return (ds.first.date() if ds.first else None, ds.last.date() if ds.last else None)


def part_months(ds, filters, drawn: tuple[str, str] | None = None) -> None:
    """Under a monthly trend: say which month at either end holds only part of a month's data (nothing if none).
    drawn: how the chart marks one part month, and several (the trends' lighter bars and hollow points if None)."""
    from lib.present import wording

    note = wording.part_months_note(filters, *data_days(ds), **({"drawn": drawn} if drawn else {}))
    if note:
        st.caption(note)


def mark_part_months(ds, filters, frame: pd.DataFrame) -> pd.DataFrame:
    """Return a monthly frame with its part months noted (`charts.mark_part_months`), for its chart and table."""
    from lib.present import charts, wording

    return charts.mark_part_months(frame, wording.part_month_marks(filters, *data_days(ds)))


def table(frame: pd.DataFrame, name: str, *, what: str = "table", shown: int | None = None) -> None:
    """Show a table with our own download (formula-safe CSV and XLSX, audited) in place of Streamlit's.

    The frame is already disclosure-protected by the wrappers above, so what is shown and what is
    downloaded are the same. Streamlit's own toolbar download is hidden by the app's style (app.py).
    shown: show only the first rows on the page (a list of hundreds of thousands is read in a download, not in
    the browser); the downloads hold them all, and a caption says so.
    """
    on_page = frame.head(shown) if shown is not None and len(frame) > shown else frame
    readable, config = _readable(on_page)
    st.dataframe(readable, column_config=config, hide_index=True, width="stretch")
    if on_page is not frame:
        st.caption(f"The first {shown:,} of {len(frame):,} rows are shown; the downloads hold all {len(frame):,}.")
    download(frame, name, what=what)


def _readable(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Return a table as a person reads it: whole numbers with thousands separators (24,901), and an empty cell,
    not the word "None", where a text has no value. The downloads keep the frame as it is."""
    config = {c: st.column_config.NumberColumn(format="localized") for c in frame.columns
              if pd.api.types.is_integer_dtype(frame[c].dtype) and not pd.api.types.is_bool_dtype(frame[c].dtype)}
    texts = [c for c in frame.columns if frame[c].dtype == object and frame[c].isna().any()]
    if texts:
        frame = frame.assign(**{c: frame[c].where(frame[c].notna(), "") for c in texts})
    return frame, config


def download(frame: pd.DataFrame, name: str, *, what: str = "table", label: str | None = None,
             dataset: str | None = None) -> None:
    """Offer a frame as CSV and XLSX downloads; each download is written to the audit log.

    `dataset` names the dataset the frame comes from when it is not the open one, so the log names the object.
    """
    slug = _slug(name)
    ident = hashlib.sha1(repr((name, tuple(map(str, frame.columns)), len(frame))).encode()).hexdigest()[:10]
    left, right, _ = st.columns([1, 1, 4])
    for col, fmt in ((left, "csv"), (right, "xlsx")):
        writer, mime, suffix = export.FORMATS[fmt]
        data = context.audited("export", lambda w=writer: w(frame), rows=len(frame), dataset=dataset, what=what,
                               file=slug + suffix)
        col.download_button(label or f"Download {fmt.upper()}", data, file_name=slug + suffix, mime=mime,
                            key=f"dl_{ident}_{fmt}", on_click="ignore", icon=":material/download:", type="tertiary")


# Said under every page title (and in the sidebar) where counts are published through the cell key method.
PERTURBED_NOTE = ("Counts are adjusted by up to 3 either way to protect individuals (the same count always gets "
                  "the same adjustment); rates and intervals are worked out from the adjusted counts.")


def table_behind(frame: pd.DataFrame, caption: str, *, label: str = "Table behind this chart",
                 source: pd.DataFrame | None = None) -> None:
    """Caption a chart with the filter sentence and put the aggregate behind it in an expander.

    `source` is the protected frame the chart and table were built from: the caption says how many values
    disclosure control hid in it.
    """
    note = None
    if context.disclosure_threshold() is not None:
        from lib.privacy import disclosure

        note = disclosure.note(source if source is not None else frame)
    st.caption(caption + (f" {note}" if note else ""))
    with st.expander(label):
        table(frame, label if label != "Table behind this chart" else _caption_name(caption))


def _caption_name(caption: str) -> str:
    return caption.split(".")[0][:50]


def stop_if_too_few(ctx: context.Context) -> None:
    """Stop the page with a message, before anything is drawn from the data, when the rule of minimum reports applies.

    Every analysis page starts with `page_header`, so this one check covers them all: a viewer or a
    demonstration never sees a selection of fewer reports than the threshold, not even its zeros.
    """
    from lib.privacy import selection

    if ctx.min_reports is None:
        return
    if selection.too_few_reports(cache.report_count(ctx.dataset, ctx.filters, ctx.scope), ctx.min_reports):
        st.info(selection.too_few_message(ctx.min_reports), icon=":material/visibility_off:")
        st.stop()
    stop_if_over_budget(ctx)


def stop_if_over_budget(ctx: context.Context) -> None:
    """Stop a viewer's page when a new selection would pass their day's budget of selections (never in a demo).

    A demonstration shows synthetic data to an audience, not real people's records to a viewer: no budget.
    """
    from lib.privacy import budget

    if not ctx.scope.perturbed or ctx.demo:
        return
    admission = cache.selection_budget().admit(ctx.user.username, ctx.dataset.id, ctx.filters)
    if admission.allowed:
        return
    if admission.first_refusal:
        context.audit_event("selection_budget_reached", selections=admission.used, limit=admission.limit)
    st.warning(budget.refusal_message(admission), icon=":material/block:")
    st.stop()


def page_header(page: str, title: str, unit: str | None = None) -> tuple[Dataset, Filters, Scope, str]:
    """Check the user may open the page; draw its title and caption (dataset, filters, scope, unit)."""
    ctx = context.guard(page)
    sentence = query.describe(ctx.filters)
    st.title(title)
    caption = f"{ctx.dataset.name} · {sentence} · {ctx.scope.describe()}"
    caption += f". Counting unit: {unit}." if unit else ""
    if ctx.scope.perturbed:
        caption += f"{'' if unit else '.'} {PERTURBED_NOTE}"
    st.caption(caption)
    stop_if_too_few(ctx)
    return ctx.dataset, ctx.filters, ctx.scope, sentence
