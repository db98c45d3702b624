"""Every analysis page: its first render at a filter state nothing has computed, then a filter change on it.

    python -m bench.run --pages-only --sizes 1000000       # or: python -m bench.pages --reports 1000000

Each page is measured in the app itself through Streamlit's AppTest, in this process, as issue 17's table
was, with OSE_DATASET pointing at the cached synthetic dataset (bench/cache/synth-<n>) and a temporary
OSE_DATA_DIR (local mode: the officer sections are shown). For each page, from empty caches:

1. load: the app's first run, the Overview at the default filters (opening the dataset; caches warm from
   the Overview only, as a user arriving would have them);
2. first render: switch to the page with Response and Neighbourhood officers chosen in the sidebar, a
   filter state nothing has computed yet (the Overview's own first render is then uncached too, unlike
   issue 17's table, whose Overview row repeated the state the Overview had just drawn);
3. filter change: Night shift added on that page (Night shift, Response or Neighbourhood officers).

Times are wall time of `AppTest.run` (the script, its queries, chart specs and the element tree). A run
longer than the timeout is a figure, not an error: it is shown as "> N s" and the change after it is not
measured. Caches are cleared between pages, so no page profits from another's queries.

What the app derives once per dataset version and keeps on disk (OSE_CACHE_DIR, here in the temporary data
folder: the Training page's officer x month matrices of shifts worked and officers' training hours) is built
before the pages are measured: `prepare` opens the Training page once and times it (the one-off build a
server makes the first time it sees a dataset version; the data folder's new pseudonymisation key makes each
run's dataset version new). The measured runs then read it from disk.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# (title, page file): every analysis page, the Officer risk page with its officer section (local mode).
PAGES = (("Overview", "app_pages/overview.py"), ("Officer risk", "app_pages/risk.py"),
         ("Tactics", "app_pages/tactics.py"), ("Explore", "app_pages/explore.py"),
         ("Training", "app_pages/training.py"), ("Data quality", "app_pages/quality.py"))
FIRST_ROLES = ["Response", "Neighbourhood"]  # the first render's filter state: new to every cache
CHANGE_SHIFTS = ["Night"]  # the filter change made on the page
TIMEOUT_S = 900.0  # a slow page is a figure: long enough that today's slowest finish at 5M
# Environment the app must not see here: a login file or demo mode would hide the officer sections.
LEFT_OUT = ("OSE_AUTH_CONFIG", "OSE_DEMO")


def names() -> list[str]:
    """Return the pages' short names (the page files' stems: overview, risk, ...), for --page."""
    return [Path(path).stem for _, path in PAGES]


def chosen(short_names: list[str] | None) -> tuple[tuple[str, str], ...]:
    """Return the pages named (all of them for none), in the table's order."""
    return tuple(p for p in PAGES if not short_names or Path(p[1]).stem in short_names)


@contextlib.contextmanager
def _app_environment(folder: Path) -> Iterator[None]:
    """Point the app at `folder` in local mode with a throwaway data folder; restore the environment after."""
    saved = {k: os.environ.get(k) for k in (*LEFT_OUT, "OSE_DATASET", "OSE_DATA_DIR", "OSE_CACHE_DIR")}
    with tempfile.TemporaryDirectory(prefix="ose-bench-pages-") as data_dir:
        for key in LEFT_OUT:
            os.environ.pop(key, None)
        os.environ.pop("OSE_CACHE_DIR", None)
        os.environ.update(OSE_DATASET=str(folder), OSE_DATA_DIR=data_dir)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _clear_caches() -> None:
    import streamlit as st

    # The engine is a cached resource: clearing it forgets the loaded dataset and every query result.
    st.cache_data.clear()
    st.cache_resource.clear()
    gc.collect()  # the old engine's memory goes before the next page loads the dataset again (5M: GBs)


def _timed_run(at, timeout_s: float) -> tuple[float, str | None]:
    """Run the app once; return (seconds, or inf past the timeout) and the first exception's message."""
    start = time.perf_counter()
    try:
        at.run(timeout=timeout_s)
    except RuntimeError as e:
        if "timed out" not in str(e):
            raise
        return math.inf, None
    seconds = time.perf_counter() - start
    return seconds, (at.exception[0].message if at.exception else None)


def measure_page(title: str, path: str, timeout_s: float = TIMEOUT_S) -> dict:
    """Measure one page from empty caches: load, first render at a new filter state, a filter change."""
    from streamlit.testing.v1 import AppTest

    _clear_caches()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout_s)
    row: dict = {"page": title, "load_s": math.nan, "first_s": math.nan, "change_s": math.nan, "error": None,
                 "sections": []}
    row["load_s"], row["error"] = _timed_run(at, timeout_s)
    if row["error"] or math.isinf(row["load_s"]):
        return row
    at.multiselect(key="flt_roles").set_value(FIRST_ROLES)
    at.switch_page(path)
    row["first_s"], row["error"] = _timed_run(at, timeout_s)
    if row["error"] or math.isinf(row["first_s"]):
        return row
    row["sections"] = [h.value for h in at.subheader]  # what was drawn: the officer section is one of them
    if not at.title or at.title[0].value != title:
        row["error"] = f"expected the {title} page, found {at.title[0].value if at.title else 'no title'}"
        return row
    at.multiselect(key="flt_shifts").set_value(CHANGE_SHIFTS)
    row["change_s"], row["error"] = _timed_run(at, timeout_s)
    return row


def prepare(timeout_s: float = TIMEOUT_S) -> dict:
    """Open the Training page once from empty caches: what it derives per dataset version is then kept on disk."""
    from streamlit.testing.v1 import AppTest

    _clear_caches()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout_s)
    load_s, error = _timed_run(at, timeout_s)
    if error:
        return {"prepare_s": math.nan, "error": error}
    at.switch_page("app_pages/training.py")
    prepare_s, error = _timed_run(at, timeout_s)
    return {"prepare_s": prepare_s, "error": error}


def run(folder: Path, reports: int, pages: tuple[tuple[str, str], ...] = PAGES, timeout_s: float = TIMEOUT_S,
        verbose: bool = True) -> list[dict]:
    """Measure every page on the dataset in `folder` (of `reports` reports); return one row per page."""
    rows = []
    with _app_environment(folder):
        try:
            # What a server imports at start, before any browser connects (scipy.stats among them: a second or
            # two on this machine, which the first Officer risk page here paid and no server's user does).
            from lib.ui import warmup

            warmup.warm_imports()
            if any(path.endswith("training.py") for _, path in pages):
                ready = prepare(timeout_s)
                if verbose:
                    print(f"{reports:>10,} reports, Training page's first visit (the officer x month matrices built "
                          f"once per dataset version, or read from disk): {seconds(ready['prepare_s'], timeout_s)}"
                          + (f"  ERROR {ready['error']}" if ready["error"] else ""), flush=True)
            for title, path in pages:
                row = measure_page(title, path, timeout_s) | {"reports": reports}
                rows.append(row)
                if verbose:
                    print(f"{reports:>10,} reports, {title:<13}: load {seconds(row['load_s'], timeout_s):>8}  "
                          f"first render {seconds(row['first_s'], timeout_s):>8}  "
                          f"filter change {seconds(row['change_s'], timeout_s):>8}"
                          + (f"  ERROR {row['error']}" if row["error"] else ""), flush=True)
        finally:
            _clear_caches()  # the engine and its dataset are not kept past the measurement
    return rows


def seconds(value: float, timeout_s: float) -> str:
    """Format a time in seconds: "> N s" past the timeout, "-" when not measured."""
    if math.isinf(value):
        return f"> {timeout_s:.0f} s"
    if math.isnan(value):
        return "-"
    return f"{value:.2f} s"


def table(rows: list[dict], timeout_s: float = TIMEOUT_S) -> str:
    """Return the per-page table (Markdown): a column pair per size, first render and filter change."""
    sizes = sorted({r["reports"] for r in rows})
    head = "| page | " + " | ".join(f"first render, {n:,} | filter change, {n:,}" for n in sizes) + " |"
    lines = [head, "|---|" + "---|---|" * len(sizes)]
    for title in dict.fromkeys(r["page"] for r in rows):
        cells = []
        for n in sizes:
            row = next((r for r in rows if r["page"] == title and r["reports"] == n), None)
            if row is None:
                cells += ["-", "-"]
            elif row["error"]:
                cells += ["error", "error"]
            else:
                cells += [seconds(row["first_s"], timeout_s), seconds(row["change_s"], timeout_s)]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def maxima(rows: list[dict]) -> tuple[float, float]:
    """Return the slowest first render and filter change at the largest size measured (inf past a timeout)."""
    largest = max(r["reports"] for r in rows)
    at_largest = [r for r in rows if r["reports"] == largest]
    # A page that failed or was not measured has no time: nan, so the maximum cannot hide it.
    first = [r["first_s"] if not r["error"] else math.nan for r in at_largest]
    change = [r["change_s"] if not r["error"] else math.nan for r in at_largest]
    return _max(first), _max(change)


def _max(values: list[float]) -> float:
    return math.nan if any(math.isnan(v) for v in values) else max(values)


def bench_keys(rows: list[dict]) -> str:
    """Return the BENCH line's page keys: pages_max_first_s and pages_max_change_s ("inf" past a timeout)."""
    first, change = maxima(rows)
    return f"pages_max_first_s={first:.2f} pages_max_change_s={change:.2f}"


def section(rows: list[dict], timeout_s: float = TIMEOUT_S) -> list[str]:
    """Return the lines of RESULTS.md's pages section: what was measured, the table, the slowest."""
    first, change = maxima(rows)
    errors = [f"{r['page']} at {r['reports']:,}: {r['error']}" for r in rows if r["error"]]
    loads = ", ".join(f"{n:,}: {min(r['load_s'] for r in rows if r['reports'] == n):.1f} s"
                      for n in sorted({r["reports"] for r in rows}))
    return [
        "Every analysis page (`bench/pages.py`, AppTest in the benchmark's process): from empty caches, the "
        "app's first run draws the Overview at the default filters (loading the dataset; fastest load per size "
        f"{loads}); then the page's first render with Response and Neighbourhood officers chosen (a filter state "
        "no cache holds), then a filter change on it (Night shift added). Officer risk includes its officer "
        "section (local mode). Wall time of each run; caches cleared between pages. Target (issue 17): first "
        "render at most 2 s, filter change at most 1 s, at 5,000,000 reports. No pandas ratio per page: the "
        "benchmark's pandas baseline covers the aggregates behind the Overview and Officer risk (the page queries "
        "above), not a page's whole render (officer ranking, models, chart specs), so it has nothing comparable.",
        "",
        table(rows, timeout_s), "",
        f"Slowest at {max(r['reports'] for r in rows):,} reports: first render {seconds(first, timeout_s)}, "
        f"filter change {seconds(change, timeout_s)}." + (f" Errors: {'; '.join(errors)}." if errors else ""), ""]


def main(argv: list[str] | None = None) -> int:
    """Measure every page at one size and print the table and the page keys of the BENCH line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--page", action="append", choices=names(), help="measure only this page (repeatable)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds before a run is shown as > N s")
    args = parser.parse_args(argv)
    from bench.run import dataset  # generated once and shared with the rest of the benchmark

    rows = run(dataset(args.reports), args.reports, chosen(args.page), args.timeout)
    print("\n".join(section(rows, args.timeout)))
    print(f"BENCH {bench_keys(rows)}")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
