"""Hostile uploads, made in each test (never committed): refused fast, in one line, within a small memory,
and a read that outgrows the worker's budget fails alone, with the limit named."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lib import ingest
from lib.ingest import reading, worker
from lib.ingest.reading import Limits, RejectedFile

from .browser import browser_page, metric_value, running_app, settle
from .conftest import FIXTURES, ROOT

PEAK_MB = 2048  # the most memory `python -m lib.ingest` may take to refuse a hostile file


# --- the files ------------------------------------------------------------------------------


def write_parquet_bomb(path: Path, rows: int = 40, cell_mb: int = 100) -> Path:
    """40 rows, each one 100 MB cell of zeros: ~130 KB of zstd that expands to 3.7 GB."""
    row = pa.table({"notes": pa.array(["0" * (cell_mb * 1_000_000)], type=pa.large_string())})
    # One row per row group, so only one cell is ever held here; no statistics (min/max of 100 MB).
    with pq.ParquetWriter(path, row.schema, compression="zstd", use_dictionary=False,
                          write_statistics=False) as out:
        for _ in range(rows):
            out.write_table(row)
    return path


def write_amplification_parquet(path: Path, rows: int = 19_900_000) -> Path:
    """10 int8 columns of 19.9M rows (just under the row limit) with headers no format knows: ~740 KB."""
    column = pa.array(np.zeros(rows, dtype=np.int8))
    pq.write_table(pa.table({f"c{i}": column for i in range(10)}), path, compression="zstd")
    return path


XLSX_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                           'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                   'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
                   '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/'
                       'main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
                       '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                                  'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
                                  'openxmlformats.org/officeDocument/2006/relationships/worksheet" '
                                  'Target="worksheets/sheet1.xml"/></Relationships>',
}


def write_xlsx_bomb(path: Path, rows: int = 30_000_000, compresslevel: int = 9) -> Path:
    """A workbook of 30M inline-string rows and no <dimension> element: ~4 MB that expands to 1.4 GB."""
    block = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 100_000
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as book:
        for name, text in XLSX_PARTS.items():
            book.writestr(name, text)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:  # streamed, never held
            sheet.write(b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
                        b'2006/main"><sheetData>')
            for _ in range(rows // 100_000):
                sheet.write(block)
            sheet.write(b"</sheetData></worksheet>")
    return path


def write_dictionary_bomb(path: Path, rows: int = 5_000) -> Path:
    """A canonical extract whose every row shares one 900 KB dictionary value: 13 KB that decodes to 4.5 GB.

    Its footer looks harmless (under 1 MB expanded, 180 bytes a row), so only the memory budget stops it.
    """
    table = pa.table({"report_id": pa.array([f"R{i}" for i in range(rows)]),
                      "occurred_at": pa.array(["2024-01-01 10:00:00"] * rows),
                      "force": pa.array(["Kent Police"] * rows), "officer_id": pa.array(["OF1"] * rows),
                      "area": pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)),
                                                             pa.array(["x" * 900_000]))})
    pq.write_table(table, path, compression="zstd")
    return path


# --- the command line -------------------------------------------------------------------------

# Run in a fresh process, so its children's peak memory is this one run's (its worker's included).
MEASURED = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"code": run.returncode, "stdout": run.stdout, "stderr": run.stderr,
                  "seconds": round(time.perf_counter() - start, 2),
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def ingest_measured(path: Path, out: Path, env: dict[str, str] | None = None) -> dict:
    """Run `python -m lib.ingest PATH --out OUT`; return its exit code, output, seconds and peak memory (MB)."""
    done = subprocess.run([sys.executable, "-c", MEASURED, sys.executable, "-m", "lib.ingest", str(path),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})})
    return json.loads(done.stdout)


@pytest.mark.parametrize(("make", "name", "reason"), [
    (write_parquet_bomb, "bomb.parquet",
     "bomb.parquet: column 'notes' holds cells of about 95.4 MB each; the limit is 1,000,000 characters"),
    (write_xlsx_bomb, "bomb.xlsx", "bomb.xlsx: its part xl/worksheets/sheet1.xml expands"),
    (write_amplification_parquet, "amplify.parquet", "amplify.parquet: no known format recognises its header"),
])
def test_each_hostile_file_is_refused_in_one_line_within_a_small_memory(tmp_path, make, name, reason):
    path = make(tmp_path / name)
    assert path.stat().st_size < 5 << 20  # small files, every one
    run = ingest_measured(path, tmp_path / "out")
    print(f"{name}: {path.stat().st_size:,} bytes, exit {run['code']}, {run['seconds']} s, "
          f"peak {run['peak_mb']:,.0f} MB: {run['stderr'].strip()}")
    assert run["code"] == 2
    assert run["stderr"].startswith(f"rejected: {reason}")
    assert run["stderr"].count("\n") == 1 and "Traceback" not in run["stderr"]
    assert run["peak_mb"] < PEAK_MB
    assert not (tmp_path / "out").exists()


def test_the_library_command_refuses_a_hostile_file_as_the_ingester_does(tmp_path):
    path = write_parquet_bomb(tmp_path / "bomb.parquet")
    env = {**os.environ, "OSE_DATA_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-c", MEASURED, sys.executable, "-m", "lib.library", "save", "Bomb",
                           str(path)], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    run = json.loads(done.stdout)
    assert run["code"] == 2
    assert run["stderr"].startswith("save refused: bomb.parquet: column 'notes' holds cells of about 95.4 MB")
    assert run["stderr"].count("\n") == 1 and "Traceback" not in run["stderr"]
    assert run["peak_mb"] < PEAK_MB
    listed = subprocess.run([sys.executable, "-m", "lib.library", "list", "--json"], cwd=ROOT, capture_output=True,
                            text=True, check=True, env=env)
    assert json.loads(listed.stdout) == []  # nothing saved, not even half a dataset


def test_a_file_too_big_for_the_memory_budget_is_refused_naming_the_limit(tmp_path):
    path = write_dictionary_bomb(tmp_path / "shared.parquet")
    run = ingest_measured(path, tmp_path / "out", env={"OSE_UPLOAD_MEMORY_MB": "1024"})
    assert run["code"] == 2
    assert run["stderr"] == ("rejected: reading this upload needs more than 1.0 GB of memory; the limit is 1.0 GB "
                             "(OSE_UPLOAD_MEMORY_MB)\n")
    assert run["peak_mb"] < PEAK_MB


def test_a_normal_file_over_a_tiny_memory_budget_fails_alone_and_the_caller_goes_on(monkeypatch):
    monkeypatch.setenv("OSE_UPLOAD_MEMORY_MB", "100")
    small = (FIXTURES / "small_canonical.csv").read_bytes()
    with pytest.raises(RejectedFile, match=r"needs more than 100 MB of memory; the limit is 100 MB "
                                           r"\(OSE_UPLOAD_MEMORY_MB\)"):
        worker.run(ingest.ingest, [("small.csv", small)])
    monkeypatch.setenv("OSE_UPLOAD_MEMORY_MB", "4096")
    assert worker.run(ingest.ingest, [("small.csv", small)]).report["rows_loaded"] == 10


def test_a_read_past_the_time_budget_is_stopped_naming_the_limit():
    budget = worker.Budget(memory_bytes=4 << 30, seconds=1)
    with pytest.raises(RejectedFile, match=r"^reading took longer than 1 s; the limit is 1 s \(OSE_UPLOAD_SECONDS\)$"):
        worker.run(time.sleep, 60, budget=budget)


@pytest.mark.parametrize(("call", "args", "message"), [
    (os.abort, (), "needs more than 4.0 GB of memory"),  # how C++'s std::bad_alloc ends a process
    (os._exit, (7,), r"the reading worker stopped unexpectedly \(exit code 7\)"),
    (int, ("seven",), r"reading stopped on an unexpected error \(ValueError: invalid literal"),
])
def test_a_worker_that_dies_or_fails_becomes_a_one_line_refusal(call, args, message):
    with pytest.raises(RejectedFile, match=message):
        worker.run(call, *args, budget=worker.Budget(memory_bytes=4 << 30, seconds=60))


def _children() -> set[int]:
    """Return the ids of this process's live child processes."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if entry.name.isdigit() and int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(entry.name))
    return found


class Stopped(Exception):
    """What Streamlit raises into a script when the user starts another run."""


def test_a_caller_that_stops_following_stops_the_worker():
    before = _children()

    def stop(done: float, message: str) -> None:
        raise Stopped

    with pytest.raises(Stopped):
        worker.run(ingest.ingest, [("small.csv", (FIXTURES / "small_canonical.csv").read_bytes())], progress=stop)
    assert _children() == before  # no worker left reading


@pytest.mark.parametrize("name", ["small_canonical.csv", "uk_national_small.csv"])
def test_an_upload_read_in_the_worker_equals_one_read_in_process(name):
    files = [(name, (FIXTURES / name).read_bytes())]
    steps: list[tuple[float, str]] = []
    there = worker.run(ingest.ingest, files, force="Kent Police", progress=lambda done, say: steps.append((done, say)))
    here = ingest.ingest(files, force="Kent Police")
    assert {**there.report, "ingested_at": None} == {**here.report, "ingested_at": None}
    for mine, theirs in ((there.reports, here.reports), (there.tactics, here.tactics),
                         (there.quarantine, here.quarantine)):
        pd.testing.assert_frame_equal(mine, theirs)
    assert steps[0] == (0.0, f"Reading {name}") and steps[-1] == (1.0, "Done")  # the progress bar's steps


def test_the_mapping_preview_read_in_the_worker_equals_one_read_in_process():
    data = (FIXTURES / "small_canonical.csv").read_bytes()
    there = worker.run(ingest.read_extract, "small.csv", data, Limits())
    here = ingest.read_extract("small.csv", data, Limits())
    assert there.columns == here.columns
    pd.testing.assert_frame_equal(there.frame, here.frame)


# --- the checks before reading ------------------------------------------------------------------


def test_a_parquet_file_expanding_past_the_limit_is_refused_from_its_footer(tmp_path):
    data = write_parquet_bomb(tmp_path / "bomb.parquet").read_bytes()
    with pytest.raises(RejectedFile, match=r"^bomb.parquet expands to 3.7 GB when decompressed; the limit is 1.0 GB "
                                           r"\(OSE_MAX_EXPANDED_MB\)$"):
        reading.read_extract("bomb.parquet", data, Limits(max_expanded_bytes=1 << 30))


def test_a_parquet_file_of_huge_cells_is_refused_from_its_footer(tmp_path):
    path = write_parquet_bomb(tmp_path / "cells.parquet", rows=3, cell_mb=2)  # 6 MB: under the expanded limit
    with pytest.raises(RejectedFile, match=r"column 'notes' holds cells of about 1.9 MB each; the limit is "
                                           r"1,000,000 characters"):
        reading.read_extract("cells.parquet", path.read_bytes())


def test_the_header_is_refused_before_the_rows_are_decoded(tmp_path):
    path = write_amplification_parquet(tmp_path / "a.parquet", rows=1_000)
    seen: list[list[str]] = []

    def refuse(columns: list[str]) -> None:
        seen.append(columns)
        raise RejectedFile("not this header")

    with pytest.raises(RejectedFile, match="not this header"):
        reading.read_extract("a.parquet", path.read_bytes(), header=refuse)
    assert seen == [[f"c{i}" for i in range(10)]]


def test_rows_are_counted_as_a_sheet_streams_not_taken_from_its_dimension(tmp_path):
    # Compressed lightly (under 100:1), so the row count, not the ratio, refuses it.
    path = write_xlsx_bomb(tmp_path / "rows.xlsx", rows=300_000, compresslevel=1)
    with pytest.raises(RejectedFile, match=r"rows.xlsx holds more than 200,000 rows; the limit is 200,000"):
        reading.read_extract("rows.xlsx", path.read_bytes(), Limits(max_rows=200_000))


def test_a_workbook_declaring_more_than_the_expanded_limit_is_refused(tmp_path):
    path = write_xlsx_bomb(tmp_path / "big.xlsx", rows=300_000, compresslevel=1)
    with pytest.raises(RejectedFile, match=r"big.xlsx expands to 14.\d MB when decompressed; the limit is "
                                           r"10.0 MB \(OSE_MAX_EXPANDED_MB\)"):
        reading.read_extract("big.xlsx", path.read_bytes(), Limits(max_expanded_bytes=10 << 20))


def test_a_csv_over_the_row_limit_is_refused():
    data = b"report_id,force\n" + b"R1,Kent\n" * 11
    with pytest.raises(RejectedFile, match=r"holds 11 rows; the limit is 10 \(OSE_MAX_ROWS\)"):
        reading.read_extract("long.csv", data, Limits(max_rows=10))


# --- the app ----------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_parquet_bomb_uploaded_in_the_browser_is_refused_and_the_server_stays_up(tmp_path):
    bomb = write_parquet_bomb(tmp_path / "bomb.parquet")
    with running_app({"OSE_DATA_DIR": str(tmp_path / "var")}) as url, browser_page() as page:
        page.goto(url)
        settle(page)
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Data").first.click()
        settle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(bomb))
        settle(page)
        page.get_by_role("button", name="Read files").click()
        settle(page)
        refusal = page.locator('[data-testid="stAlertContentError"]').first
        refusal.wait_for(timeout=60_000)
        assert refusal.inner_text().strip() == ("This upload cannot be read: bomb.parquet: column 'notes' holds "
                                                "cells of about 95.4 MB each; the limit is 1,000,000 characters")
        page.screenshot(path=str(tmp_path / "refused-upload.png"))  # kept with the test's files, to look at
        # The server is still up: a good file reads, and the Overview opens.
        page.locator('[data-testid="stFileChipDeleteBtn"]').first.click()
        settle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(
            str(FIXTURES / "small_canonical.csv"))
        settle(page)
        page.get_by_role("button", name="Read files").click()
        settle(page)
        page.get_by_text("What was read").first.wait_for(timeout=60_000)
        assert metric_value(page, "Loaded") == "10"
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Overview").first.click()
        settle(page)
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].length >= 4", timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
