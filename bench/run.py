"""Benchmark: the queries behind a filter change on the Overview and Officer risk pages, against pandas.

    make bench            # 1,000,000 and 5,000,000 synthetic reports, cached under bench/cache/
    python -m bench.run --pages-only --sizes 1000000 [--page risk]   # only the pages part, one size

Times, as medians over repeated runs: (a) every query the Overview and Risk pages issue for one
filter change, through our real query layer; (b) the same results computed by plain pandas in the
same run; (c) one filtered group-by; (d) ingest of 1,000,000- and 5,000,000-row national-recording-form
CSVs, with the peak memory of the command and its worker;
(e) cold start: from launching `streamlit run app.py` to the first chart drawn in Debian chromium;
(f) peak memory; (g) every analysis page's first render at a new filter state and a filter change on it, in
AppTest (bench/pages.py), at each size. Prints a table, writes bench/RESULTS.md, and ends with one BENCH line.
`--pages-only` measures (g) alone and prints its table and BENCH keys without writing bench/RESULTS.md.

The engine keeps each filter state's small results (lib/engine/query.py, one scan per filter state), so
every timed run first forgets them: each run costs what a new filter change costs.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bench import pages
from lib import synth
from lib.analysis import risk
from lib.engine import query
from lib.engine.query import UNRESTRICTED, Filters
from lib.engine.store import Engine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHROMIUM = "/usr/bin/chromium"
CHART = ('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg, '
         '[data-testid="stArrowVegaLiteChart"] canvas, [data-testid="stArrowVegaLiteChart"] svg')
CACHE = HERE / "cache"
FILTER = Filters(shifts=("Night",), roles=("Response", "Neighbourhood"))


def dataset(n: int) -> Path:
    """Generate (once) and return a synthetic dataset folder of n reports."""
    out = CACHE / f"synth-{n}"
    if not synth.is_written(out):
        # A folder left by a run stopped part-way (before writes were atomic) is rebuilt, not read.
        shutil.rmtree(out, ignore_errors=True)
        synth.write(synth.generate(n, seed=1), out)
    return out


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Run fn once to warm up, then return the median wall time of `repeats` runs in milliseconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def page_queries(engine: Engine, ds, filters: Filters) -> None:
    """Issue every query the Overview and Officer risk pages run after a filter change."""
    query.forget_page_results(engine)  # a new filter state: nothing computed for it yet
    query.summarise(engine, ds, filters, UNRESTRICTED)
    previous = query.previous_period(filters, ds)
    if previous is not None:
        query.summarise(engine, ds, previous, UNRESTRICTED)
    for by in (("month",), ("officer_role",), ("shift",)):
        query.breakdown(engine, ds, filters, UNRESTRICTED, by)
    query.tactic_counts(engine, ds, filters, UNRESTRICTED)
    risk.rate_grid(engine, ds, filters, UNRESTRICTED, "officer_injured", "officer_role", "shift")
    risk.rate_grid(engine, ds, filters, UNRESTRICTED, "officer_injured", "weekday", "hour")
    risk.rate_ratios(engine, ds, filters, UNRESTRICTED, "officer_injured", "shift", None)
    risk.funnel(engine, ds, filters, UNRESTRICTED, "officer_injured", "area")


def pandas_queries(reports: pd.DataFrame, tactics: pd.DataFrame, filters: Filters) -> None:
    """Compute the same results with plain pandas over frames already in memory (the baseline)."""
    keep = reports["shift"].isin(filters.shifts) & reports["officer_role"].isin(filters.roles)
    if filters.date_from:
        keep &= reports["occurred_at"] >= pd.Timestamp(filters.date_from)
    if filters.date_to:
        keep &= reports["occurred_at"] < pd.Timestamp(filters.date_to) + pd.Timedelta(days=1)
    f = reports[keep]
    harm = ["officer_injured", "officer_assaulted", "subject_injured"]

    def counts(frame: pd.DataFrame, by: list) -> pd.DataFrame:
        g = frame.groupby(by, observed=True)
        return pd.concat([g.size().rename("reports")] + [g[h].sum().rename(f"{h}_yes") for h in harm]
                         + [g[h].count().rename(f"{h}_answered") for h in harm], axis=1)

    f[harm].sum(), f[harm].count(), f["officer_id"].nunique(), f["incident_id"].nunique()
    counts(f, [f["occurred_at"].dt.to_period("M")])
    counts(f, ["officer_role"])
    counts(f, ["shift"])
    tactics[tactics["report_id"].isin(f["report_id"])].groupby("tactic", observed=True)["report_id"].nunique()
    counts(f, ["officer_role", "shift"])
    counts(f, [f["occurred_at"].dt.day_name(), f["occurred_at"].dt.hour])
    counts(f, ["area"])


def one_group_by(engine: Engine, ds) -> None:
    """One filtered group-by: officer injury by role on Night shift."""
    query.forget_page_results(engine)
    query.breakdown(engine, ds, Filters(shifts=("Night",)), UNRESTRICTED, ("officer_role",))


INGEST_SIZES = (1_000_000, 5_000_000)
_SYNTH_ROWS = 1_000_000  # national-form rows generated at a time: a larger CSV joins such parts


def national_csv(n: int) -> Path:
    """Return an n-row national-recording-form CSV (cp1252), generated once in parts of a million rows."""
    csv = CACHE / f"national-{n}.csv"
    if csv.exists():
        return csv
    parts = []
    for i in range(-(-n // _SYNTH_ROWS)):
        part = CACHE / f"national-{n}.part{i}.csv"
        subprocess.run([sys.executable, "-m", "lib.synth.uk_national", "--reports",
                        str(min(_SYNTH_ROWS, n - i * _SYNTH_ROWS)), "--seed", str(1 + i), "--out", str(part)],
                       check=True)
        parts.append(part)
    partial = csv.with_suffix(".csv.partial")
    with open(partial, "wb") as out:
        for i, part in enumerate(parts):
            with open(part, "rb") as source:
                if i:
                    source.readline()  # one header
                shutil.copyfileobj(source, out, 16 << 20)
            part.unlink()
    partial.rename(csv)
    return csv


def _tree_rss(pid: int) -> int:
    """Return the resident bytes of a process and its descendants (0 once it has gone)."""
    total = 0
    try:
        with open(f"/proc/{pid}/statm") as statm:
            total = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            total += sum(_tree_rss(int(child)) for child in children.read().split())
    except (OSError, ValueError, IndexError):
        pass
    return total


def ingest_run(n: int) -> tuple[float, float]:
    """Time `python -m lib.ingest` on an n-row national-form CSV; return seconds and peak MB (it and its worker)."""
    csv = national_csv(n)
    # A 5,000,000-row extract is larger than the default upload limit of 1 GB.
    env = {**os.environ, "OSE_MAX_UPLOAD_MB": str(max(1024, csv.stat().st_size // 2 ** 20 + 1))}
    start = time.perf_counter()
    ingest = subprocess.Popen([sys.executable, "-m", "lib.ingest", str(csv), "--out", str(CACHE / f"national-{n}-out"),
                               "--force", "Metropolitan Police"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env)
    peak = 0
    while ingest.poll() is None:  # sampled: the process and its worker together, as the machine sees them
        peak = max(peak, _tree_rss(ingest.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    stderr = ingest.stderr.read() if ingest.stderr else b""
    if ingest.returncode:
        raise subprocess.CalledProcessError(ingest.returncode, ingest.args, stderr=stderr)
    return seconds, peak / 2 ** 20


def cold_start_seconds(runs: int = 3) -> float:
    """Return the median seconds from launching `streamlit run app.py` to its first chart in chromium."""
    from playwright.sync_api import sync_playwright  # a dev dependency, needed only here

    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        try:
            for _ in range(runs):
                times.append(_cold_start_once(browser))
        finally:
            browser.close()
    return statistics.median(times)


def _cold_start_once(browser) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSE_")}  # the bundled sample, local mode
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                             "--server.headless", "true", "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        while True:  # the browser asks as soon as the server answers, as a user's reload would
            try:
                page.goto(f"http://127.0.0.1:{port}/", timeout=2000)
                break
            except Exception:  # not listening yet
                if proc.poll() is not None or time.perf_counter() - start > 60:
                    raise RuntimeError("the app did not start") from None
                time.sleep(0.05)
        page.locator(CHART).first.wait_for(state="visible", timeout=60_000)
        return time.perf_counter() - start
    finally:
        page.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


THINK_S = 10.0  # a person reading a chart before the next change; `--load-think 2` is the stress case


def _load_section(many: dict) -> list[str]:
    from bench import load

    return [f"Load test (`bench/load.py`): {many['sessions']} sessions over Streamlit's websocket, each making "
            f"{many['changes']} filter changes (Shift or Officer role, random values, so most filter states are new "
            f"to the server's cache) with a mean of {many['think_s']:g} s between changes; two waves; "
            f"{many['reports']:,} reports loaded in {many['first_load_s']:.0f} s; server memory (the process and its "
            f"children) {many['rss_idle_mb']:,.0f} MB idle, {many['rss_before_mb']:,.0f} MB with the data"
            + ("; another process kept one core busy throughout (`--busy-core`)." if many.get("busy_core") else ".")
            + f" Server CPU {many['cpu_ms_per_run']:.0f} ms a run.", "",
            load.table(many), ""]


def _latency_section(browser: dict) -> list[str]:
    return [f"Browser latency (`bench/latency.py`, Debian chromium): {browser['changes']} Shift filter changes on "
            f"the Overview; click to the first chart redrawn p50 {browser['chart_p50_ms']:.0f} ms, p95 "
            f"{browser['chart_p95_ms']:.0f} ms; to the new Reports figure p50 {browser['metric_p50_ms']:.0f} ms; "
            f"to the last chart on the page p50 {browser['all_charts_p50_ms']:.0f} ms. {browser['changes_cold']} of "
            "the changes were filter states the server had not computed before.", ""]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the results table and the BENCH line."""
    load_before = os.getloadavg()[0]  # how busy the machine was: other work makes every figure slower
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ingest-rows", type=int, default=1_000_000)
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--load-sessions", type=int, default=30, help="concurrent sessions in the load test (0: skip)")
    parser.add_argument("--load-many", type=int, default=100,
                        help="concurrent sessions in the second load test, the machine to itself (0: skip)")
    parser.add_argument("--load-busy-core", action=argparse.BooleanOptionalAction, default=True,
                        help="keep one core busy with another process during the first load test")
    parser.add_argument("--load-changes", type=int, default=10, help="filter changes per session")
    parser.add_argument("--load-think", type=float, default=THINK_S,
                        help="mean seconds a person spends reading between filter changes")
    parser.add_argument("--latency-changes", type=int, default=15, help="browser filter changes (0: skip)")
    parser.add_argument("--pages-only", action="store_true",
                        help="measure only every page's first render and filter change (bench/pages.py) at --sizes; "
                             "print, do not write bench/RESULTS.md")
    parser.add_argument("--page", action="append", choices=pages.names(),
                        help="measure only this page in the pages part (repeatable; default: every page)")
    parser.add_argument("--page-timeout", type=float, default=pages.TIMEOUT_S,
                        help='seconds before a page run is shown as "> N s"')
    args = parser.parse_args(argv)
    CACHE.mkdir(exist_ok=True)
    if args.pages_only:
        return _pages_only(args, load_before)
    rows = []
    page_rows: list[dict] = []
    for n in args.sizes:
        folder = dataset(n)
        engine = Engine()
        ds = engine.open(folder)
        filters = query.default_filters(ds)
        filters = Filters(date_from=filters.date_from, date_to=filters.date_to, shifts=FILTER.shifts,
                          roles=FILTER.roles)
        ours = median_ms(lambda e=engine, d=ds, f=filters: page_queries(e, d, f), args.repeats)
        group_by = median_ms(lambda e=engine, d=ds: one_group_by(e, d), args.repeats)
        reports = pd.read_parquet(folder / "reports.parquet")
        tactics = pd.read_parquet(folder / "tactics.parquet", columns=["report_id", "tactic"])
        baseline = median_ms(lambda r=reports, t=tactics, f=filters: pandas_queries(r, t, f), max(3, args.repeats // 2))
        rows.append({"reports": n, "page_ms": ours, "pandas_ms": baseline, "ratio": baseline / ours,
                     "groupby_ms": group_by})
        del reports, tactics, engine, ds  # the pages part loads the dataset again, in the app's own engine
        print(f"{n:>10,} reports: page {ours:8.1f} ms  pandas {baseline:8.1f} ms  ratio {baseline / ours:5.1f}x  "
              f"group-by {group_by:6.1f} ms", flush=True)
        page_rows += pages.run(folder, n, pages.chosen(args.page), args.page_timeout)
    ingested = {n: ingest_run(n) for n in sorted({args.ingest_rows, *INGEST_SIZES})}
    ingest_s = ingested[args.ingest_rows][0]
    ingest_5m_s = ingested[max(INGEST_SIZES)][0]
    ingest_peak_mb = max(mb for _, mb in ingested.values())
    cold_s = cold_start_seconds(args.cold_starts)
    largest_n = max(args.sizes)
    many = most = browser = None
    if args.load_sessions:
        from bench import load

        many = load.run(reports=largest_n, sessions=args.load_sessions, changes=args.load_changes,
                        think_s=args.load_think, waves=2, busy=args.load_busy_core)
    if args.load_many:
        from bench import load

        most = load.run(reports=largest_n, sessions=args.load_many, changes=args.load_changes,
                        think_s=args.load_think, waves=2)
    if args.latency_changes:
        from bench import latency

        browser = latency.run(reports=largest_n, changes=args.latency_changes)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    largest = rows[-1]
    table = ["| reports | page queries (median ms) | pandas baseline (ms) | baseline / ours | one group-by (ms) |",
             "|---|---|---|---|---|"]
    table += [f"| {r['reports']:,} | {r['page_ms']:.1f} | {r['pandas_ms']:.1f} | {r['ratio']:.1f}x | "
              f"{r['groupby_ms']:.1f} |" for r in rows]
    targets = ["| measure | result | target (issue 7) |", "|---|---|---|",
               f"| page queries, {largest['reports']:,} reports | {largest['page_ms']:.1f} ms, "
               f"{largest['ratio']:.1f}x faster than pandas | at most 100 ms, at least 5x |",
               f"| one group-by, {largest['reports']:,} reports | {largest['groupby_ms']:.1f} ms | at most 25 ms |",
               f"| ingest, {args.ingest_rows:,} national-form rows | {ingest_s:.1f} s | at most 15 s |",
               f"| ingest, {max(INGEST_SIZES):,} national-form rows | {ingest_5m_s:.1f} s | at most 60 s (issue 17) |",
               f"| ingest peak memory (the command and its worker, any size) | {ingest_peak_mb:,.0f} MB | "
               "under 2,048 MB (issue 17) |",
               f"| cold start to first chart (bundled sample) | {cold_s:.1f} s | at most 3 s |"]
    if many is not None:
        busy = ", another process keeping one core busy" if many["busy_core"] else ""
        targets += [f"| {many['sessions']} sessions changing filters ({many['reports']:,} reports, a change every "
                    f"~{many['think_s']:g} s each{busy}) "
                    f"| p95 rerun {many['p95_s']:.2f} s, server peak "
                    f"{many['rss_peak_mb']:,.0f} MB, {many['errors']} errors | p95 under 2 s, under 2,048 MB |",
                    f"| memory after the sessions end (two waves) | {many['wave1']['rss_after_mb']:,.0f} MB, then "
                    f"{many['rss_after_mb']:,.0f} MB ({many['rss_growth_mb']:+,.0f} MB) | a plateau |"]
    if browser is not None:
        targets += [f"| browser: filter change to updated Overview chart ({browser['reports']:,} reports) | "
                    f"p50 {browser['chart_p50_ms']:.0f} ms (first-time filter states "
                    f"{browser['chart_p50_cold_ms']:.0f} ms, repeated {browser['chart_p50_warm_ms']:.0f} ms), "
                    f"p95 {browser['chart_p95_ms']:.0f} ms | "
                    "p50 at most 500 ms |"]
    first_max, change_max = pages.maxima(page_rows)
    targets += [f"| slowest page, first render at a new filter state ({largest['reports']:,} reports) | "
                f"{pages.seconds(first_max, args.page_timeout)} | at most 2 s (issue 17) |",
                f"| slowest page, filter change ({largest['reports']:,} reports) | "
                f"{pages.seconds(change_max, args.page_timeout)} | at most 1 s (issue 17) |"]
    if most is not None:
        targets += [f"| {most['sessions']} sessions changing filters, the machine to themselves | p95 rerun "
                    f"{most['p95_s']:.2f} s, server CPU {most['cpu_ms_per_run']:.0f} ms a run, {most['errors']} errors "
                    "| p95 under 2 s (issue 17) |"]
    bench = (f"BENCH page_ms={largest['page_ms']:.1f} pandas_ratio={largest['ratio']:.2f} "
             f"groupby_ms={largest['groupby_ms']:.1f} ingest_1m_s={ingest_s:.1f} ingest_5m_s={ingest_5m_s:.1f} "
             f"ingest_peak_mb={ingest_peak_mb:.0f} peak_mb={peak_mb:.0f} "
             f"{pages.bench_keys(page_rows)}" + (f" p95_100_s={most['p95_s']:.2f}" if most is not None else ""))
    text = "\n".join([
        "# Benchmark results", "",
        f"Measured by `make bench` (bench/run.py) on {time.strftime('%Y-%m-%d')}, one run, this machine "
        f"({os.cpu_count()} cores; load average {load_before:.1f} when the run began). Figures move by tens of "
        "percent from run to run, more when other work shares the machine.",
        f"Filter change measured: {query.describe(filters)}. Medians of {args.repeats} runs after a warm-up; "
        "the pandas baseline computes the same aggregates from frames already in memory.", "",
        *table, "", *targets, "",
        "Ingest of national-recording-form rows (CSV, cp1252) with `python -m lib.ingest`, read in batches: "
        + "; ".join(f"{n:,} rows {sec:.1f} s, peak {mb:,.0f} MB" for n, (sec, mb) in ingested.items())
        + f" (peak: the command and its worker together, sampled; largest child process of the run, generating "
        f"a CSV included: {peak_children_mb:,.0f} MB).",
        f"Peak memory of the benchmark process: {peak_mb:,.0f} MB.", "",
        f"Cold start on the bundled sample, from launching `streamlit run app.py` to the first chart drawn "
        f"in Debian chromium (median of {args.cold_starts}): {cold_s:.1f} s.", "",
        *pages.section(page_rows, args.page_timeout),
        *(_load_section(many) if many is not None else []),
        *(_load_section(most) if most is not None else []),
        *(_latency_section(browser) if browser is not None else []),
        "The query tests on PostgreSQL and Spark run in CI (`.ci/run`), not here.",
        "", "```", bench, "```", ""])
    (HERE / "RESULTS.md").write_text(text)
    print("\n".join(table))
    print("\n".join(targets))
    for n, (sec, mb) in ingested.items():
        print(f"ingest {n:,} national-form rows: {sec:.1f} s, peak {mb:,.0f} MB")
    print(f"cold start to first chart: {cold_s:.1f} s")
    print(pages.table(page_rows, args.page_timeout))
    print(bench)
    return 0


def _pages_only(args: argparse.Namespace, load_before: float) -> int:
    """Measure only the pages part at each size; print its section and a BENCH line of its keys."""
    rows: list[dict] = []
    for n in args.sizes:
        rows += pages.run(dataset(n), n, pages.chosen(args.page), args.page_timeout)
    print(f"\nPages only, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average "
          f"{load_before:.1f} when the run began, {os.getloadavg()[0]:.1f} at its end.\n")
    print("\n".join(pages.section(rows, args.page_timeout)))
    print(f"BENCH {pages.bench_keys(rows)}")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
