"""Benchmark: the queries behind a filter change on the Overview and Officer risk pages, against pandas.

    make bench            # 1,000,000 and 5,000,000 synthetic reports, cached under bench/cache/

Times, as medians over repeated runs: (a) every query the Overview and Risk pages issue for one
filter change, through our real query layer; (b) the same results computed by plain pandas in the
same run; (c) one filtered group-by; (d) ingest of a 1,000,000-row national-recording-form CSV;
(e) peak memory. Prints a table, writes bench/RESULTS.md, and ends with one BENCH line.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lib import query, risk, synth
from lib.query import UNRESTRICTED, Filters
from lib.store import Engine

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
FILTER = Filters(shifts=("Night",), roles=("Response", "Neighbourhood"))


def dataset(n: int) -> Path:
    """Generate (once) and return a synthetic dataset folder of n reports."""
    out = CACHE / f"synth-{n}"
    if not (out / "reports.parquet").exists():
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
    query.breakdown(engine, ds, Filters(shifts=("Night",)), UNRESTRICTED, ("officer_role",))


def ingest_seconds(n: int) -> float:
    """Time `python -m lib.ingest` on an n-row national-recording-form CSV (generated once)."""
    csv = CACHE / f"national-{n}.csv"
    if not csv.exists():
        subprocess.run([sys.executable, "-m", "lib.formats.uk_national", "--reports", str(n), "--seed", "1",
                        "--out", str(csv)], check=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lib.ingest", str(csv), "--out", str(CACHE / f"national-{n}-out"),
                    "--force", "Metropolitan Police"], check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the results table and the BENCH line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ingest-rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    CACHE.mkdir(exist_ok=True)
    rows = []
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
        del reports, tactics
        print(f"{n:>10,} reports: page {ours:8.1f} ms  pandas {baseline:8.1f} ms  ratio {baseline / ours:5.1f}x  "
              f"group-by {group_by:6.1f} ms", flush=True)
    ingest_s = ingest_seconds(args.ingest_rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    largest = rows[-1]
    table = ["| reports | page queries (median ms) | pandas baseline (ms) | baseline / ours | one group-by (ms) |",
             "|---|---|---|---|---|"]
    table += [f"| {r['reports']:,} | {r['page_ms']:.1f} | {r['pandas_ms']:.1f} | {r['ratio']:.1f}x | "
              f"{r['groupby_ms']:.1f} |" for r in rows]
    bench = (f"BENCH page_ms={largest['page_ms']:.1f} pandas_ratio={largest['ratio']:.2f} "
             f"groupby_ms={largest['groupby_ms']:.1f} ingest_1m_s={ingest_s:.1f} peak_mb={peak_mb:.0f}")
    text = "\n".join([
        "# Benchmark results", "",
        f"Measured by `make bench` (bench/run.py) on {time.strftime('%Y-%m-%d')}, one run, this machine (2 cores).",
        f"Filter change measured: {query.describe(filters)}. Medians of {args.repeats} runs after a warm-up; "
        "the pandas baseline computes the same aggregates from frames already in memory.", "",
        *table, "",
        f"Ingest of {args.ingest_rows:,} national-recording-form rows (CSV, cp1252) with `python -m lib.ingest`: "
        f"{ingest_s:.1f} s (largest child process, generating the CSV or ingesting it: {peak_children_mb:,.0f} MB).",
        f"Peak memory of the benchmark process: {peak_mb:,.0f} MB.", "",
        "Not yet measured here: the many-users load test, browser latency, and the PostgreSQL and Spark backends.",
        "", "```", bench, "```", ""])
    (HERE / "RESULTS.md").write_text(text)
    print("\n".join(table))
    print(f"ingest {args.ingest_rows:,} national-form rows: {ingest_s:.1f} s")
    print(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
