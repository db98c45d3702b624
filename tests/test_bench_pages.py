"""The benchmark's pages part (bench/pages.py): every analysis page measured, on a tiny synthetic dataset.

No wall-clock asserts: speed is the benchmark's to report. These check that every page is in the table with
a figure, that the officer section is part of what is measured, and what a run past the timeout shows.
"""
from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path

import pytest

from bench import pages, run

REPORTS = 2_000
NUMBER = r"\d+\.\d\d s"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset, made the way the benchmark makes its own."""
    cache = tmp_path_factory.mktemp("bench-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run, "CACHE", cache)
        return run.dataset(REPORTS)


@pytest.fixture(scope="module")
def rows(folder: Path) -> list[dict]:
    """Every page measured once on the tiny dataset."""
    return pages.run(folder, REPORTS, verbose=False)


def test_every_page_has_a_first_render_and_a_filter_change(rows):
    assert [r["page"] for r in rows] == ["Overview", "Officer risk", "Tactics", "Explore", "Training",
                                         "Data quality"]
    assert [r["error"] for r in rows] == [None] * len(rows)
    lines = pages.table(rows).splitlines()
    assert lines[0] == f"| page | first render, {REPORTS:,} | filter change, {REPORTS:,} |"
    for title, line in zip((r["page"] for r in rows), lines[2:], strict=True):
        assert re.fullmatch(rf"\| {title} \| {NUMBER} \| {NUMBER} \|", line), line


def test_officer_risk_is_measured_with_its_officer_section(rows):
    risk = next(r for r in rows if r["page"] == "Officer risk")
    assert "Officers with most exposure to harm" in risk["sections"]


def test_the_bench_keys_are_the_slowest_page(rows):
    keys = dict(item.split("=") for item in pages.bench_keys(rows).split())
    assert set(keys) == {"pages_max_first_s", "pages_max_change_s"}
    assert float(keys["pages_max_first_s"]) == pytest.approx(max(r["first_s"] for r in rows), abs=0.005)
    assert float(keys["pages_max_change_s"]) == pytest.approx(max(r["change_s"] for r in rows), abs=0.005)


def test_a_run_past_the_timeout_is_a_figure_and_a_failed_page_is_not_hidden():
    rows = [{"page": "Overview", "reports": 10, "first_s": 0.5, "change_s": 0.25, "error": None},
            {"page": "Training", "reports": 10, "first_s": math.inf, "change_s": math.nan, "error": None},
            {"page": "Overview", "reports": 20, "first_s": 0.75, "change_s": 0.5, "error": None},
            {"page": "Training", "reports": 20, "first_s": 1.0, "change_s": 0.5, "error": "boom"}]
    assert pages.table(rows, timeout_s=60).splitlines()[2:] == [
        "| Overview | 0.50 s | 0.25 s | 0.75 s | 0.50 s |",
        "| Training | > 60 s | - | error | error |"]
    first, change = pages.maxima(rows[:2])
    assert first == math.inf and math.isnan(change)  # the change after a timeout was not measured
    assert all(math.isnan(v) for v in pages.maxima(rows))  # the largest size had a failed page


def test_pages_only_measures_the_page_asked_for_and_leaves_the_results_file(folder, monkeypatch):
    monkeypatch.setattr(run, "CACHE", folder.parent)
    results = run.HERE / "RESULTS.md"
    before = results.read_text()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run.main(["--pages-only", "--sizes", str(REPORTS), "--page", "tactics"]) == 0
    printed = out.getvalue()
    assert re.search(rf"^\| Tactics \| {NUMBER} \| {NUMBER} \|$", printed, re.M)
    assert "| Overview |" not in printed
    assert re.search(r"^BENCH pages_max_first_s=\d+\.\d\d pages_max_change_s=\d+\.\d\d$", printed, re.M)
    assert results.read_text() == before
